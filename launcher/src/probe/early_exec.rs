//! Exec as soon as the container can take it, not when the pod's status says Running.
//!
//! The kubelet reports a started container as Running only on its next relist (PLEG, every second), but the
//! runtime accepts an exec from the moment the container runs. On the real-node testbed the status said
//! Running about 0.9 s after the create while an exec already worked at about 0.5 s (see
//! tests/bench/realnode.sh). So the runner starts exec attempts right after the create and retries them
//! while the kubelet answers that the container does not exist yet, and meanwhile watches the pod for the
//! reasons it never will run (image pull errors, a terminated container, the deadline, a deletion): those
//! end the call at once, as before.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::exec::{ExecError, ExecOutput};
use super::lifecycle::WaitError;

/// Retry every [`FAST_RETRY`] for the first [`FAST_FOR`] (a container usually starts within it, and each
/// early attempt is one cheap round trip to the kubelet), then every [`SLOW_RETRY`] (an image being pulled).
const FAST_RETRY: Duration = Duration::from_millis(25);
const FAST_FOR: Duration = Duration::from_secs(2);
const SLOW_RETRY: Duration = Duration::from_millis(200);
/// After the status says Running the container exists: a few more "not found" answers (a stale kubelet
/// cache) are retried, then the error stands.
const RETRIES_AFTER_RUNNING: u32 = 3;
/// The watch starts once the first attempt has failed or is still out after this long: a container that
/// takes the first exec (kwok, a pod that started at once) then costs no watch request at all, and a
/// watch started late misses nothing, since it begins at the created pod's resourceVersion. Longer than
/// an exec that works takes (100 ms was passed by 5 % of the kwok benchmark's execs on a busy machine, 40 %
/// with a debug build, each then a watch request more); a pod that will never run fails its exec at once
/// (no container), which starts the watch then.
const WATCH_AFTER: Duration = Duration::from_secs(2);

pub enum EarlyError {
    /// The watch saw the pod fail before any exec worked.
    Wait(WaitError),
    /// The exec failed for good.
    Exec(ExecError),
}

/// What the successful attempt gave, and when it started (the time before it is waiting for the container).
pub struct Early {
    pub output: ExecOutput,
    pub attempt_started: Instant,
    pub attempts: u32,
}

/// Run `attempt` until it gets past "container not running yet", while `watch` (which resolves when the pod
/// runs, or fails when it never will) is polled alongside. No timeout here: the caller bounds it.
pub async fn exec_when_startable<W, F, Fut>(watch: W, mut attempt: F) -> Result<Early, EarlyError>
where
    W: Future<Output = Result<(), WaitError>>,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ExecOutput, ExecError>>,
{
    let mut watch = std::pin::pin!(watch);
    let mut running = false;
    let began = Instant::now();
    let mut armed = std::pin::pin!(tokio::time::sleep(WATCH_AFTER));
    let mut watching = false;
    let mut after_running = 0u32;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let started = Instant::now();
        let mut current = std::pin::pin!(attempt());
        // The attempt in flight is never dropped for the watch: it may be the one that works.
        let result = loop {
            tokio::select! {
                biased;
                w = &mut watch, if watching && !running => match w {
                    Ok(()) => running = true,
                    Err(e) => return Err(EarlyError::Wait(e)),
                },
                _ = &mut armed, if !watching => watching = true,
                r = &mut current => break r,
            }
        };
        watching = true;
        // The watch may already know the pod runs (it was not asked during the first attempt): what it says
        // decides whether this failure is retried.
        if !running
            && result.is_err()
            && let std::task::Poll::Ready(w) = futures::poll!(watch.as_mut())
        {
            match w {
                Ok(()) => running = true,
                Err(e) => return Err(EarlyError::Wait(e)),
            }
        }
        // Before the status says Running, any failure to exec may be the container not being there yet
        // (the kubelet may not even know the pod): retry, as waiting for Running did. After it, only "not
        // running" is retried, a few times.
        let retry = match &result {
            Err(ExecError::NotRunning(_)) => true,
            Err(ExecError::Failed(_)) => !running,
            _ => false,
        };
        if !retry {
            return match result {
                Ok(output) => Ok(Early {
                    output,
                    attempt_started: started,
                    attempts,
                }),
                Err(e) => Err(EarlyError::Exec(e)),
            };
        }
        if running {
            after_running += 1;
            if after_running > RETRIES_AFTER_RUNNING {
                let m = match result {
                    Err(ExecError::NotRunning(m) | ExecError::Failed(m)) => m,
                    _ => String::new(),
                };
                return Err(EarlyError::Exec(ExecError::Failed(m)));
            }
        }
        let wait = if began.elapsed() < FAST_FOR {
            FAST_RETRY
        } else {
            SLOW_RETRY
        };
        let mut pause = std::pin::pin!(tokio::time::sleep(wait));
        loop {
            tokio::select! {
                biased;
                w = &mut watch, if !running => match w {
                    Ok(()) => running = true,
                    Err(e) => return Err(EarlyError::Wait(e)),
                },
                _ = &mut pause => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn ok() -> ExecOutput {
        ExecOutput {
            stdout: b"{}".to_vec(),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_container_takes_the_exec_before_the_status_says_running() {
        let n = AtomicU32::new(0);
        let watch = std::future::pending::<Result<(), WaitError>>();
        let r = exec_when_startable(watch, || async {
            if n.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(ExecError::NotRunning("container not found".into()))
            } else {
                Ok(ok())
            }
        })
        .await;
        let Ok(e) = r else {
            panic!("expected the 4th attempt to work")
        };
        assert_eq!(e.attempts, 4);
        assert_eq!(e.output.stdout, b"{}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_exec_that_works_costs_no_watch() {
        let polled = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            polled.store(true, Ordering::SeqCst);
            std::future::pending::<Result<(), WaitError>>().await
        };
        let r = exec_when_startable(watch, || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(ok())
        })
        .await;
        assert!(matches!(r, Ok(Early { attempts: 1, .. })));
        assert!(!polled.load(Ordering::SeqCst), "the watch was started");
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_exec_that_hangs_starts_the_watch_and_its_failure_ends_the_wait() {
        let watch = async { Err(WaitError::NotStarted("ErrImagePull: not found".into())) };
        let t = Instant::now();
        let r = exec_when_startable(watch, || async {
            std::future::pending::<Result<ExecOutput, ExecError>>().await
        })
        .await;
        assert!(matches!(r, Err(EarlyError::Wait(_))));
        assert_eq!(t.elapsed(), WATCH_AFTER);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_pod_ends_the_wait_at_once() {
        let watch = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(WaitError::NotStarted("ErrImagePull: not found".into()))
        };
        let t = Instant::now();
        let r = exec_when_startable(watch, || async {
            Err::<ExecOutput, _>(ExecError::NotRunning("container not found".into()))
        })
        .await;
        match r {
            Err(EarlyError::Wait(WaitError::NotStarted(m))) => assert!(m.contains("ErrImagePull")),
            _ => panic!("expected the watch's failure"),
        }
        assert!(t.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn not_found_after_running_is_an_error_after_a_few_retries() {
        let n = AtomicU32::new(0);
        let r = exec_when_startable(std::future::ready(Ok(())), || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<ExecOutput, _>(ExecError::NotRunning("container not found".into()))
        })
        .await;
        assert!(matches!(r, Err(EarlyError::Exec(ExecError::Failed(_)))));
        assert_eq!(n.load(Ordering::SeqCst), RETRIES_AFTER_RUNNING + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn other_exec_errors_are_retried_only_until_the_pod_runs() {
        let n = AtomicU32::new(0);
        let watch = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        };
        let r = exec_when_startable(watch, || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<ExecOutput, _>(ExecError::Failed("pod not found on the kubelet".into()))
        })
        .await;
        assert!(matches!(r, Err(EarlyError::Exec(ExecError::Failed(_)))));
        assert!(
            n.load(Ordering::SeqCst) > 2,
            "retried while the pod was not running"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_exec_errors_after_running_are_not_retried() {
        let n = AtomicU32::new(0);
        let r = exec_when_startable(std::future::ready(Ok(())), || async {
            n.fetch_add(1, Ordering::SeqCst);
            Err::<ExecOutput, _>(ExecError::Failed("executable file not found".into()))
        })
        .await;
        assert!(matches!(r, Err(EarlyError::Exec(ExecError::Failed(_)))));
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }
}
