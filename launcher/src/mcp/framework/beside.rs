//! Reads of the API server started beside the probe (a node's platform marks, its pods): they run while the
//! probe does, and once the probe has answered the answer waits for them only [`AFTER_PROBE`] more. A read
//! still out then is left out of the answer with that said, rather than holding the answer without bound.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How long an answer waits for its API reads after the probe answered. The reads take milliseconds on a
/// healthy API server (a node's ResourceSlices list took 53 ms on a busy one) and start with the probe,
/// which takes hundreds; this bound only cuts the wait on an API server that stopped answering (the
/// client's own read timeout is minutes), with room for a loaded one.
pub const AFTER_PROBE: Duration = Duration::from_secs(5);

/// What the read gave, if it finished in time, and how long the answer waited for it after the probe.
pub struct Beside<T> {
    pub read: Option<T>,
    pub waited_millis: u64,
}

/// Run `probe` and `read` together. A failed probe returns at once (the read is dropped); a successful
/// one waits at most `grace` for the read.
pub async fn probe_and_read<T, E, R>(
    probe: impl Future<Output = Result<T, E>>,
    read: impl Future<Output = R>,
    grace: Duration,
) -> Result<(T, Beside<R>), E> {
    let mut probe = std::pin::pin!(probe);
    let mut read = std::pin::pin!(read);
    let mut done = None;
    let out = loop {
        // The probe is polled first: its requests (the node read it shares, the create) take the client's
        // idle connections, and a read beside it, not the create, waits for a new one's TLS handshake.
        tokio::select! {
            biased;
            p = &mut probe => break p?,
            r = &mut read, if done.is_none() => done = Some(r),
        }
    };
    let t = Instant::now();
    if done.is_none() {
        done = tokio::time::timeout(grace, read).await.ok();
    }
    Ok((
        out,
        Beside {
            read: done,
            waited_millis: u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
    ))
}

/// The line an answer carries for a read that did not finish in time.
pub fn too_slow(what: &str) -> String {
    format!(
        "{what}: not read within {} s of the probe's answer (the API server is slow); the answer is given \
         without it, call again for it",
        AFTER_PROBE.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_slow_read_is_left_out_after_the_grace() {
        let probe = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, ()>(1)
        };
        let read = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            2
        };
        let t = tokio::time::Instant::now();
        let (p, b) = probe_and_read(probe, read, AFTER_PROBE).await.unwrap();
        assert_eq!((p, b.read), (1, None));
        assert_eq!(t.elapsed(), Duration::from_millis(300) + AFTER_PROBE);
        assert_eq!(b.waited_millis, 5000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_done_before_the_probe_costs_no_wait() {
        let probe = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, ()>(1)
        };
        let (p, b) = probe_and_read(probe, async { 2 }, AFTER_PROBE)
            .await
            .unwrap();
        assert_eq!((p, b.read, b.waited_millis), (1, Some(2), 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_does_not_wait_for_the_read() {
        let read = std::future::pending::<()>();
        let t = tokio::time::Instant::now();
        let r = probe_and_read(async { Err::<(), _>("no") }, read, AFTER_PROBE).await;
        assert!(r.is_err());
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
