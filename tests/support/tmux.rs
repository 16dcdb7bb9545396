//! A terminal program driven as a person drives it: in tmux (its own server, `-L`), keys sent with `send-keys`,
//! the screen read with `capture-pane`. tmux sizes the pane and sends SIGHUP when its session is killed, as a
//! closed terminal does.

#![allow(dead_code)] // each suite uses some of these

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    /// `cmd` (a shell command line) in a new tmux server of `w`×`h`, with `envs`; its exit status lands
    /// in a file [`Tmux::exited`] reads.
    pub fn start(w: u16, h: u16, cmd: &str, envs: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = format!(
            "k8s-gpu-mcp-tmux-{}-{}",
            std::process::id(),
            unique_suffix()
        );
        let status = dir.path().join("status");
        let cmd = format!("{cmd}; echo $? > {}; sleep 600", status.display());
        let out = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", &w.to_string(), "-y", &h.to_string(), &cmd])
            .envs(envs.iter().copied())
            .output()
            .expect("tmux is installed (.ci/run installs it)");
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { socket, dir }
    }

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p"])
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", k]);
            // Apart, as typed: an Esc followed at once by a key reads as Alt+key.
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// The screen once `pred` holds on it, or a failure that shows it.
    pub fn until(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "{what} not on screen within {secs} s:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The view's exit status, once it exited.
    pub fn exited(&self, secs: u64) -> Option<i32> {
        let p = self.dir.path().join("status");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            if let Ok(s) = std::fs::read_to_string(&p)
                && let Ok(c) = s.trim().parse()
            {
                return Some(c);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The PID of the launcher the pane runs (the shell's child).
    pub fn launcher_pid(&self) -> i32 {
        let shell = self.tmux(&["list-panes", "-F", "#{pane_pid}"]);
        let out = Command::new("pgrep")
            .args(["-P", shell.trim(), "-f", "k8s-gpu-mcp"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no launcher under the pane's shell {shell}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Send `sig` (a name kill(1) knows) to `pid`.
pub fn kill(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}
