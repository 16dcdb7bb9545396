//! A cancelled DCGM (or RVS) run stops in order before its pod goes: node-probe `dcgm-diag` gets SIGTERM (it writes
//! its PID to [`PID_FILE`] in the container), sends dcgmi its own SIGTERM, which dcgmi turns into
//! `dcgmStopDiagnostic` (the engine stops nvvs), and ends once dcgmi has; only then is the pod deleted.
//! A pod deleted at once would SIGKILL node-probe and dcgmi together: DCGM's stop would never run, and a
//! host engine outside the pod (the GPU Operator's, without heartbeat) would go on loading the GPUs.
//! node-probe `rvs-diag` stops the same way (its own pid file, [`RVS_PID_FILE`]): rvs gets SIGTERM and, after
//! node-probe's grace, its process group is killed, so no rvs worker outlives the pod's exec.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;

use super::exec::ProbeExec;

/// Where node-probe `dcgm-diag` keeps its PID and start time in the probe container (`--pid-file`).
pub use gpu_diag::dcgm::request::PID_FILE;
/// Where node-probe `rvs-diag` keeps its PID and start time (`--pid-file`).
pub use gpu_diag::rvs::request::PID_FILE as RVS_PID_FILE;

/// How long the stop waits for node-probe to end: past its own grace for dcgmi (`--stop-grace-secs`, 30 s
/// by default, itself past dcgmi's 25 s wait for the engine), so node-probe's kill of dcgmi's group comes
/// first.
pub const STOP_WAIT: Duration = Duration::from_secs(35);

/// The stop, in the container's shell (DCGM's images and every copy-delivery base have one): SIGTERM to
/// the process the file names if it is still that process (same start time: the probe pod shares the
/// node's PIDs, so a reused PID is another process of the node, which must never be signalled), then wait.
/// Prints `ended` (nothing to stop), `stopped`, or `running` (still there after the wait, exit 3).
pub const SCRIPT: &str = r#"f=$1 w=$2
[ -r "$f" ] && read -r p s <"$f" || { echo ended; exit 0; }
case $p in ''|*[!0-9]*) echo ended; exit 0;; esac
same() {
  st=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
  st=${st##*) }
  set -- $st
  [ "${20}" = "$s" ]
}
same || { echo ended; exit 0; }
kill -TERM "$p" 2>/dev/null || { echo ended; exit 0; }
i=0
while same; do
  i=$((i+1))
  [ "$i" -gt $((w*5)) ] && { echo running; exit 3; }
  sleep 0.2 2>/dev/null || sleep 1
done
echo stopped
"#;

/// What the stop found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopOutcome {
    /// node-probe had ended already (or never wrote its file).
    Ended,
    /// node-probe ended after the SIGTERM: dcgmi was stopped through DCGM's own stop path.
    Stopped,
    /// Not confirmed: node-probe still ran after the wait, or the exec failed (why).
    Unconfirmed(String),
}

/// The stop of one probe pod's run: through the same exec transport as the run.
#[derive(Clone)]
pub struct StopFirst {
    pub exec: Arc<dyn ProbeExec>,
    pub client: Client,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The run's pid file: [`PID_FILE`] or [`RVS_PID_FILE`] (the policy admits these two only).
    pub pid_file: &'static str,
}

/// The exec argv of the stop of the run whose node-probe keeps its PID in `pid_file`.
pub fn argv(wait: Duration, pid_file: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "sh".into(),
        pid_file.into(),
        wait.as_secs().max(1).to_string(),
    ]
}

impl StopFirst {
    pub async fn stop(&self) -> StopOutcome {
        let run = self.exec.exec(
            self.client.clone(),
            &self.namespace,
            &self.pod,
            &self.container,
            argv(STOP_WAIT, self.pid_file),
        );
        let out = match tokio::time::timeout(STOP_WAIT + Duration::from_secs(10), run).await {
            Err(_) => {
                return StopOutcome::Unconfirmed(format!(
                    "the stop's exec gave no answer within {} s",
                    (STOP_WAIT + Duration::from_secs(10)).as_secs()
                ));
            }
            Ok(Err(e)) => return StopOutcome::Unconfirmed(format!("the stop's exec failed: {e}")),
            Ok(Ok(o)) => o,
        };
        let said = String::from_utf8_lossy(&out.stdout);
        match (said.trim(), out.exit_code) {
            ("ended", 0) => StopOutcome::Ended,
            ("stopped", 0) => StopOutcome::Stopped,
            ("running", _) => StopOutcome::Unconfirmed(format!(
                "node-probe still ran {} s after its SIGTERM",
                STOP_WAIT.as_secs()
            )),
            (other, code) => StopOutcome::Unconfirmed(format!(
                "the stop exited {code} saying {:?} ({})",
                other.chars().take(200).collect::<String>(),
                out.stderr_tail.trim().chars().take(200).collect::<String>()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The script as the container's shell runs it, against processes of this machine.
    fn run(pid_file: &std::path::Path, wait: u64) -> (String, i32) {
        let a = argv(Duration::from_secs(wait), &pid_file.display().to_string());
        let out = Command::new(&a[0]).args(&a[1..]).output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            out.status.code().unwrap_or(-1),
        )
    }

    fn start_time(pid: u32) -> String {
        let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        st.rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(19)
            .unwrap()
            .to_string()
    }

    #[test]
    fn each_diagnostic_has_its_own_fixed_pid_file() {
        assert_eq!(
            argv(STOP_WAIT, PID_FILE)[4],
            "/tmp/k8s-gpu-mcp-dcgm-diag.pid"
        );
        assert_eq!(
            argv(STOP_WAIT, RVS_PID_FILE)[4],
            "/tmp/k8s-gpu-mcp-rvs-diag.pid"
        );
        assert_eq!(argv(STOP_WAIT, RVS_PID_FILE)[5], "35");
    }

    #[test]
    fn a_running_process_of_the_same_start_is_stopped() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pid");
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&f, format!("{} {}\n", child.id(), start_time(child.id()))).unwrap();
        // The child ends on SIGTERM but stays a zombie until reaped: reap it as the script waits.
        let waiter = std::thread::spawn(move || child.wait().unwrap());
        assert_eq!(run(&f, 5), ("stopped".into(), 0));
        assert!(!waiter.join().unwrap().success());
    }

    #[test]
    fn a_reused_pid_of_another_start_is_never_signalled() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pid");
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        std::fs::write(&f, format!("{} 1\n", child.id())).unwrap();
        assert_eq!(run(&f, 1), ("ended".into(), 0));
        assert_eq!(
            child.try_wait().unwrap(),
            None,
            "the other process was signalled"
        );
        child.kill().unwrap();
        let _ = child.wait();
    }

    #[test]
    fn no_file_or_a_bad_one_is_nothing_to_stop() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(run(&d.path().join("none"), 1), ("ended".into(), 0));
        let f = d.path().join("pid");
        std::fs::write(&f, "1;reboot 5\n").unwrap();
        assert_eq!(run(&f, 1), ("ended".into(), 0));
    }

    #[test]
    fn a_process_that_ignores_the_stop_is_reported_running() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pid");
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30"])
            .spawn()
            .unwrap();
        // The shell must have set its trap before the signal.
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(&f, format!("{} {}\n", child.id(), start_time(child.id()))).unwrap();
        assert_eq!(run(&f, 1), ("running".into(), 3));
        child.kill().unwrap();
        let _ = child.wait();
    }
}
