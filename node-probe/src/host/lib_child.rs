//! Running a vendor library's reader: this binary re-run as a hidden subcommand (`__amd-smi-child`,
//! `__hlml-child`) that loads the library checked by [`super::lib_trust`] and prints one JSON line, a
//! `Reading<T>`. Shared by `amd/smi.rs` (libamd_smi) and `gaudi/hlml.rs` (libhlml).
//!
//! A vendor library loaded into the probe would bring the host's runtime into a process of another glibc,
//! and an abort or a hang in it (a device whose firmware hangs) would take the whole probe down. So the
//! child runs with an empty environment and a loader path of one private directory (links to the checked
//! descriptors; the host's whole library directory would also hand it the host's libc), in its own process
//! group, killed with that group at the deadline. Its output is read capped; anything else it does is an
//! inline error on the reading.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_diag::facts::{FieldError, FieldErrorKind, Reading};

use super::lib_trust::Chain;

/// The child's output is one short JSON line; more is a broken or hostile library.
const MAX_OUT: usize = 1 << 20;
const MAX_ERR: usize = 4 << 10;

/// The child's first descriptor: the library; its host libraries follow (`FIRST_FD + 1 + i`).
pub const FIRST_FD: i32 = 3;

/// A reader under way.
pub struct Pending {
    host_path: String,
    child: Child,
    out: mpsc::Receiver<(Vec<u8>, bool)>,
    err: mpsc::Receiver<(Vec<u8>, bool)>,
    links: Option<PathBuf>,
}

fn error(kind: FieldErrorKind, msg: String) -> FieldError {
    FieldError::with_message(kind, msg)
}

/// Start `node-probe <child_arg> /proc/self/fd/3 <args>` on the checked `chain` (the library as
/// descriptor 3, its host libraries after it, each by soname in the child's private loader directory).
/// `host_path` names the library in messages; `what` names it in the reader's own (`libhlml`).
pub fn start(
    what: &str,
    child_arg: &str,
    host_path: &str,
    chain: &Chain,
    args: &[String],
) -> Result<Box<Pending>, FieldError> {
    // Each checked descriptor duplicated above the numbers the child receives them at, so that placing
    // one (dup2 in the child) never overwrites another.
    let n = 1 + chain.deps.len() as i32;
    let mut high: Vec<OwnedFd> = Vec::new();
    for f in std::iter::once(&chain.lib.file).chain(chain.deps.iter().map(|(_, c)| &c.file)) {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor this process owns; the result is owned here.
        let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FIRST_FD + n) };
        if fd < 0 {
            return Err(error(
                FieldErrorKind::Unknown,
                format!(
                    "cannot pass {host_path} to its reader: {}",
                    std::io::Error::last_os_error()
                ),
            ));
        }
        // SAFETY: `fd` was just returned by fcntl and nothing else owns it.
        high.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let names: Vec<(String, i32)> = chain
        .deps
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.clone(), FIRST_FD + 1 + i as i32))
        .collect();
    let links = link_fds(what, &names).map_err(|e| {
        error(
            FieldErrorKind::Unknown,
            format!("cannot make the {what} reader's library directory: {e}"),
        )
    })?;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            remove_links(&links);
            return Err(error(
                FieldErrorKind::Unknown,
                format!("cannot re-run node-probe to read {host_path}: {e}"),
            ));
        }
    };
    let raw: Vec<i32> = high.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(exe);
    cmd.arg(child_arg)
        .arg(format!("/proc/self/fd/{FIRST_FD}"))
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a kill at the deadline reaches whatever the library started.
        .process_group(0);
    if let Some(l) = &links {
        cmd.env("LD_LIBRARY_PATH", l);
    }
    // SAFETY: dup2 is async-signal-safe; the sources are all above the targets (see above), and dup2
    // leaves the targets without close-on-exec, so the child receives exactly these.
    unsafe {
        cmd.pre_exec(move || {
            for (i, fd) in raw.iter().enumerate() {
                if libc::dup2(*fd, FIRST_FD + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    drop(high);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            remove_links(&links);
            return Err(error(
                FieldErrorKind::Unknown,
                format!("cannot start the {what} reader: {e}"),
            ));
        }
    };
    Ok(Box::new(Pending {
        out: drain(what, child.stdout.take(), MAX_OUT),
        err: drain(what, child.stderr.take(), MAX_ERR),
        host_path: host_path.to_string(),
        child,
        links,
    }))
}

/// Read a pipe to its end on a thread (capped, the rest drained so the child never blocks on it).
fn drain(
    what: &str,
    r: Option<impl Read + Send + 'static>,
    cap: usize,
) -> mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut r) = r {
        let _ = std::thread::Builder::new()
            .name(format!("{what}-pipe"))
            .spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let mut cut = false;
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = cap.saturating_sub(buf.len());
                            cut |= n > room;
                            buf.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    }
                }
                let _ = tx.send((buf, cut));
            });
    }
    rx
}

impl Pending {
    /// The reading, or an inline error once `deadline` passed (the child killed, never waited on past
    /// that: one stuck in the driver cannot hold the probe). `set_path` names the library on a reading
    /// (the child does not know the host's name for the file it loaded).
    pub fn finish<T: serde::de::DeserializeOwned>(
        mut self,
        deadline: Instant,
        set_path: impl FnOnce(&mut T, String),
    ) -> Reading<T> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) | Err(_) => break None,
            }
        };
        let host_path = self.host_path.clone();
        let r = match status {
            None => {
                let pid = self.child.id() as i32;
                if let Some(pgid) = rustix::process::Pid::from_raw(pid) {
                    let _ =
                        rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
                }
                let _ = self.child.kill();
                // Reaped if it died at once; a child stuck in the kernel is left to init.
                std::thread::sleep(Duration::from_millis(20));
                let _ = self.child.try_wait();
                Reading::Err(error(
                    FieldErrorKind::Timeout,
                    format!(
                        "{host_path} did not answer in time (killed): the GPU's driver or firmware may be hung"
                    ),
                ))
            }
            Some(s) => {
                let wait = Duration::from_secs(1);
                let (out, cut) = self.out.recv_timeout(wait).unwrap_or_default();
                let (err, _) = self.err.recv_timeout(wait).unwrap_or_default();
                parse(&host_path, s, &out, cut, &err, set_path)
            }
        };
        remove_links(&self.links);
        r
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    host_path: &str,
    status: std::process::ExitStatus,
    out: &[u8],
    cut: bool,
    err: &[u8],
    set_path: impl FnOnce(&mut T, String),
) -> Reading<T> {
    use std::os::unix::process::ExitStatusExt;
    let last_err = String::from_utf8_lossy(err)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| {
            let l: String = l.chars().filter(|c| !c.is_control()).take(200).collect();
            format!(": {l}")
        })
        .unwrap_or_default();
    if !status.success() || out.is_empty() {
        let how = match (status.code(), status.signal()) {
            (_, Some(sig)) => format!("was killed by signal {sig}"),
            (Some(c), _) => format!("exited with status {c}"),
            _ => "stopped".to_string(),
        };
        return Reading::Err(error(
            FieldErrorKind::Unknown,
            format!("reading {host_path} failed: the reader {how}{last_err}"),
        ));
    }
    if cut {
        return Reading::Err(error(
            FieldErrorKind::Unknown,
            format!("reading {host_path}: more than {MAX_OUT} bytes of output; not read"),
        ));
    }
    match serde_json::from_slice::<Reading<T>>(out) {
        Ok(Reading::Ok(mut f)) => {
            set_path(&mut f, host_path.to_string());
            Reading::Ok(f)
        }
        Ok(Reading::Err(e)) => Reading::Err(e),
        Err(e) => Reading::Err(error(
            FieldErrorKind::Unknown,
            format!("reading {host_path}: the reader's output is not a reading ({e})"),
        )),
    }
}

/// The child's loader path: a private directory whose entries, named by soname, link to the child's own
/// descriptors (`/proc/self/fd/N`, resolved in the child); `None` when there is nothing to link.
fn link_fds(what: &str, names: &[(String, i32)]) -> std::io::Result<Option<PathBuf>> {
    if names.is_empty() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!(
        "node-probe-{what}.{}.{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    for (name, fd) in names {
        if let Err(e) = std::os::unix::fs::symlink(format!("/proc/self/fd/{fd}"), dir.join(name)) {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    }
    Ok(Some(dir))
}

fn remove_links(dir: &Option<PathBuf>) {
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
}
