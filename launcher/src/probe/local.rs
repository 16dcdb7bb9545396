//! Local mode: node-probe runs as a child process of the launcher (no cluster, no shell).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::runner::{
    Phase, PhaseTiming, ProbeOutput, ProbeRequest, ProgressSink, RunError, RunFuture, Runner,
};

/// node-probe prints one JSON document; anything beyond this is a runaway probe, not a report.
pub const STDOUT_CAP: usize = 16 * 1024 * 1024;
/// How much of node-probe's stderr is kept for error messages.
pub const STDERR_TAIL: usize = 4 * 1024;

pub struct LocalRunner {
    probe_bin: PathBuf,
    simulate: Option<String>,
}

impl LocalRunner {
    pub fn new(probe_bin: PathBuf, simulate: Option<String>) -> Self {
        LocalRunner {
            probe_bin,
            simulate,
        }
    }

    /// The full argv after the program name: global flags first, then the command and its flags.
    pub fn argv(&self, req: &ProbeRequest) -> Vec<String> {
        let mut argv = vec!["--node-name".to_string(), "local".to_string()];
        if let Some(s) = &self.simulate {
            // A path selects a scenario file; a bare name selects a built-in scenario.
            if s.ends_with(".json") || s.contains('/') {
                argv.push("--fixture".into());
            } else {
                argv.push("--simulate".into());
            }
            argv.push(s.clone());
        }
        // `--pid-file` names a fixed path that is private to a probe container, where the pod runner's
        // orderly stop finds node-probe. Here /tmp is the host's, shared by every run and every user: two
        // diagnostics at once would take each other's file. This runner stops its child by its own PID
        // (stop_in_order), so the flag is left out.
        let mut args = req.args.iter();
        while let Some(a) = args.next() {
            if a == "--pid-file" {
                args.next();
                continue;
            }
            argv.push(a.clone());
        }
        argv
    }
}

/// Resolve the node-probe binary: an explicit path, else `node-probe` next to this executable, else this
/// machine's build in `probes/` beside it, else PATH.
pub fn find_probe_bin(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(format!(
            "--probe-bin {} does not exist or is not a file",
            p.display()
        ));
    }
    if let Some(dir) = super::delivery::exe_dir() {
        // `cargo install` puts node-probe beside the launcher; a release archive has this machine's Linux
        // build under probes/ (packaging/release.sh).
        let own = format!("node-probe-linux-{}", super::delivery::launcher_arch());
        for candidate in [
            dir.join("node-probe"),
            dir.join(super::delivery::PROBES_DIR).join(own),
        ] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("node-probe");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(
        "node-probe not found next to k8s-gpu-mcp, in probes/ beside it, or on PATH; install it or pass --probe-bin PATH"
            .into(),
    )
}

/// Read a stream to its end, keeping at most `cap` bytes; returns (bytes, overflowed).
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut overflow = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if out.len() + n > cap {
                    out.extend_from_slice(&buf[..cap - out.len()]);
                    overflow = true;
                    // Keep draining so the child never blocks on a full pipe.
                } else if !overflow {
                    out.extend_from_slice(&buf[..n]);
                }
            }
        }
    }
    (out, overflow)
}

/// Read a stream to its end, keeping only the last `keep` bytes.
async fn read_tail<R: AsyncRead + Unpin>(mut r: R, keep: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 2 * keep {
                    out.drain(..out.len() - keep);
                }
            }
        }
    }
    if out.len() > keep {
        out.drain(..out.len() - keep);
    }
    out
}

impl Runner for LocalRunner {
    fn run<'a>(
        &'a self,
        req: ProbeRequest,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> RunFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let mut timings = Vec::new();
            progress(Phase::StartingProbe);
            let argv = self.argv(&req);
            tracing::debug!(tool = %req.tool, probe = %self.probe_bin.display(), ?argv, "spawning node-probe");
            let mut child = Command::new(&self.probe_bin)
                .args(&argv)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    RunError::Exec(format!("cannot start {}: {e}", self.probe_bin.display()))
                })?;
            timings.push(PhaseTiming {
                phase: Phase::StartingProbe,
                millis: started.elapsed().as_millis() as u64,
            });
            // The child runs: what the pod runner waits for (a container to start) is already done here.
            progress(Phase::WaitingForProbe);
            progress(Phase::Probing);
            let probing = Instant::now();
            let stdout = child.stdout.take().expect("stdout is piped");
            let stderr = child.stderr.take().expect("stderr is piped");
            let out_task = match req.lines.clone() {
                Some(l) => tokio::spawn(async move {
                    let mut stdout = stdout;
                    super::exec_result::read_lines(&mut stdout, STDOUT_CAP, &l)
                        .await
                        .unwrap_or_default()
                }),
                None => tokio::spawn(read_capped(stdout, STDOUT_CAP)),
            };
            let err_task = tokio::spawn(read_tail(stderr, STDERR_TAIL));

            let remaining = req.timeout.saturating_sub(started.elapsed());
            let waited = tokio::select! {
                status = child.wait() => Ok(status),
                _ = tokio::time::sleep(remaining) => Err(RunError::Timeout {
                    node: req.node.clone(),
                    secs: req.timeout.as_secs(),
                }),
                _ = cancel.cancelled() => Err(RunError::Cancelled),
            };
            let status = match waited {
                Ok(Ok(status)) => status,
                Ok(Err(e)) => {
                    let _ = child.kill().await;
                    return Err(RunError::Exec(format!("waiting for node-probe: {e}")));
                }
                Err(e) => {
                    // Kill and reap before replying, so no probe outlives its call. A cancelled DCGM run
                    // stops in order first: SIGTERM, which node-probe turns into dcgmi's own stop.
                    progress(Phase::CleaningUp);
                    if matches!(e, RunError::Cancelled) && req.image.diagnostic_pid_file().is_some()
                    {
                        stop_in_order(&mut child).await;
                    }
                    let _ = child.kill().await;
                    out_task.abort();
                    err_task.abort();
                    tracing::info!(tool = %req.tool, error = %e, "node-probe stopped");
                    return Err(e);
                }
            };
            // The child has exited: reaped, its pipes drained below.
            progress(Phase::CleaningUp);
            let (stdout, overflow) = out_task.await.unwrap_or_default();
            let stderr_tail =
                String::from_utf8_lossy(&err_task.await.unwrap_or_default()).into_owned();
            timings.push(PhaseTiming {
                phase: Phase::Probing,
                millis: probing.elapsed().as_millis() as u64,
            });
            let exit_code = status.code().unwrap_or(-1);
            if overflow {
                return Err(RunError::Exec(format!(
                    "node-probe printed more than {} MiB on stdout; refusing its output",
                    STDOUT_CAP / (1024 * 1024)
                )));
            }
            let parsed = match req.lines {
                Some(_) => gpu_diag::contract::parse_streamed(&stdout).map(|(_, d)| d),
                None => gpu_diag::contract::parse_document(&stdout),
            };
            let document = parsed.map_err(|error| RunError::BadOutput {
                node: req.node.clone(),
                exit_code,
                error,
                stderr_tail,
            })?;
            progress(Phase::Done);
            Ok(ProbeOutput {
                document,
                exit_code,
                timings,
                ran_in: "local".into(),
            })
        })
    }
}

/// SIGTERM to node-probe and a bounded wait for it to end (stop_first.rs says why; same wait).
async fn stop_in_order(child: &mut tokio::process::Child) {
    let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    else {
        return;
    };
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    match tokio::time::timeout(super::stop_first::STOP_WAIT, child.wait()).await {
        Ok(_) => tracing::info!("node-probe's diagnostic run stopped in order"),
        Err(_) => tracing::warn!(
            "node-probe's diagnostic run still ran {} s after its SIGTERM; killing it",
            super::stop_first::STOP_WAIT.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_run_locally_keeps_no_pid_file_in_the_hosts_tmp() {
        let runner = LocalRunner::new(PathBuf::from("node-probe"), Some("dgx-h100".into()));
        let req = gpu_diag::command::Request::DcgmDiag {
            run: gpu_diag::dcgm::request::DiagRun::Level(1),
            gpus: Vec::new(),
            timeout_secs: None,
            api_claims: None,
            engine: None,
        };
        let args = req.argv();
        assert!(
            args.iter().any(|a| a == "--pid-file"),
            "the pod's argv carries the stop's pid file: {args:?}"
        );
        let probe = ProbeRequest {
            lines: None,
            node: "local".into(),
            args,
            tool: "run_gpu_diagnostic".into(),
            context: None,
            timeout: std::time::Duration::from_secs(60),
            batch: Default::default(),
            image: super::super::runner::ImageNeed::Dcgm,
        };
        let argv = runner.argv(&probe);
        assert!(
            !argv
                .iter()
                .any(|a| a == "--pid-file" || a.ends_with(".pid")),
            "{argv:?}"
        );
        assert!(
            argv.iter().any(|a| a == "--level"),
            "the rest is kept: {argv:?}"
        );
    }
}
