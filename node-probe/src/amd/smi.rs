//! `libamd_smi` where the node has it (ROCm's `/opt/rocm[-X.Y]/lib/libamd_smi.so.<major>`): its path, the
//! version it reports and, per GPU joined by PCI address, its bad-page records by status.
//!
//! What it adds to sysfs: that the node's ROCm user space loads and opens its GPUs (the library a test
//! runner or exporter uses), its version, and the bad-page list of a GPU whose sysfs list the probe could
//! not read. Not read, because sysfs already gives them: ECC counts (the library reads the same `ras/`
//! files), violation status (`gpu_metrics`' residencies, read by `gpu_metrics.rs`), processes (KFD and
//! `fdinfo`). The project's AMD reference §5 has the sources.
//!
//! The library is C++, needs the host's libdrm and opens `/dev/dri` and `/dev/kfd`: loaded into the probe
//! it would bring the host's C++ runtime into a process of another glibc, and an abort or a hang in it
//! (a GPU whose firmware hangs) would take the whole probe down. So it is read in a short-lived child (this
//! binary re-run as `node-probe __amd-smi-child`) with an empty environment and a loader path of one
//! private directory (the host's whole library directory would also hand the child the host's libc),
//! killed at the deadline. Its one JSON line is parsed here, capped; anything else it does is an inline
//! error on `amd_smi`.
//!
//! Trust (`smi_trust.rs`): a privileged probe runs what it loads as root. The library is found only under
//! the host root (links resolved inside it); it, every directory on the way to it, and every host library
//! it pulls in (its `DT_NEEDED` from its own directory, the libdrm it `dlopen`s) must be root's and
//! writable by neither group nor others, or it is not loaded and `amd_smi` says why. The child loads the
//! checked files by their open descriptors (`/proc/self/fd/N`), so a file swapped after the check is not
//! the one loaded.

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_diag::facts::{AmdSmiLibraryFacts, FieldError, FieldErrorKind, Reading};

use crate::host::files::HostFiles;
use crate::host::root::resolve_file;

/// The hidden first argument that makes node-probe the library's reader.
pub const CHILD_ARG: &str = "__amd-smi-child";

/// The child's output is one short JSON line; more is a broken or hostile library.
const MAX_OUT: usize = 1 << 20;
const MAX_ERR: usize = 4 << 10;

/// Host libraries the library loads by soname (`dlopen("libdrm.so.2")`, `src/amd_smi/amd_smi_drm.cc:91`;
/// libdrm_amdgpu for the GPU's queries), where ROCm's amdgpu packages and the distributions put them.
const HOST_LIBS: &[&str] = &["libdrm.so.2", "libdrm_amdgpu.so.1"];
const HOST_LIB_DIRS: &[&str] = &[
    "opt/amdgpu/lib64",
    "opt/amdgpu/lib/x86_64-linux-gnu",
    "opt/amdgpu/lib/aarch64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "lib64",
];

/// The library found: its path as the host names it, the path the probe opens, and its soname major
/// (24 = ROCm 6.2/6.3, 25 = 6.4, 26 = 7.x), which decides the `amdsmi_version_t` layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub host_path: String,
    pub open: PathBuf,
    pub major: u32,
}

/// `libamd_smi.so.<major>` (the soname link) or `libamd_smi.so.<major>.<minor>.<release>`: the major.
fn soname_major(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("libamd_smi.so.")?;
    let major = rest.split('.').next()?;
    if major.is_empty() || major.len() > 4 || !rest.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    major.parse().ok()
}

/// The first library under `/opt/rocm/lib`, then `/opt/rocm-X.Y.Z/lib` newest first (the name's numbers
/// compared, so 6.10 is after 6.9); within a directory the highest soname major.
pub fn find(root: &Path) -> Option<Found> {
    let files = HostFiles::new(root);
    let mut dirs = vec!["opt/rocm/lib".to_string()];
    let mut versions: Vec<(Vec<u32>, String)> = files
        .names("opt")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| {
            let v = n.strip_prefix("rocm-")?;
            let nums: Option<Vec<u32>> = v.split('.').map(|p| p.parse().ok()).collect();
            Some((nums?, n))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versions.into_iter().map(|(_, n)| format!("opt/{n}/lib")));
    for dir in dirs {
        let Ok(names) = files.names(&dir) else {
            continue;
        };
        let mut libs: Vec<(u32, String)> = names
            .into_iter()
            .filter_map(|n| Some((soname_major(&n)?, n)))
            .collect();
        // Highest major first; the soname link before the versioned file it names.
        libs.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.len().cmp(&b.1.len())));
        for (major, name) in libs {
            let rel = format!("{dir}/{name}");
            if let Some(open) = resolve_file(root, &rel) {
                return Some(Found {
                    host_path: format!("/{rel}"),
                    open,
                    major,
                });
            }
        }
    }
    None
}

/// A reading under way.
pub struct Pending {
    found: Found,
    child: Child,
    out: mpsc::Receiver<(Vec<u8>, bool)>,
    err: mpsc::Receiver<(Vec<u8>, bool)>,
    links: Option<PathBuf>,
}

/// Start reading the node's library; `None` where the node has none (then `amd_smi` stays absent), or
/// the inline error that stopped it before it ran.
pub enum Started {
    None,
    Failed(Reading<AmdSmiLibraryFacts>),
    Running(Box<Pending>),
}

fn error(kind: FieldErrorKind, msg: String) -> Reading<AmdSmiLibraryFacts> {
    Reading::Err(FieldError::with_message(kind, msg))
}

/// The child's first descriptor: the library; its host libraries follow (`FIRST_FD + 1 + i`).
const FIRST_FD: i32 = 3;

pub fn start(root: &Path) -> Started {
    let Some(found) = find(root) else {
        return Started::None;
    };
    let rel = Path::new(found.host_path.trim_start_matches('/'));
    let chain = match super::smi_trust::chain(root, rel, HOST_LIBS, HOST_LIB_DIRS) {
        Ok(c) => c,
        Err(why) => {
            return Started::Failed(error(
                FieldErrorKind::NoPermission,
                format!("{}: not loaded, {why}", found.host_path),
            ));
        }
    };
    // Each checked descriptor duplicated above the numbers the child receives them at, so that placing
    // one (dup2 in the child) never overwrites another.
    let n = 1 + chain.deps.len() as i32;
    let mut high: Vec<OwnedFd> = Vec::new();
    for f in std::iter::once(&chain.lib.file).chain(chain.deps.iter().map(|(_, c)| &c.file)) {
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor this process owns; the result is owned here.
        let fd = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FIRST_FD + n) };
        if fd < 0 {
            return Started::Failed(error(
                FieldErrorKind::Unknown,
                format!(
                    "cannot pass {} to its reader: {}",
                    found.host_path,
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
    let links = match link_fds(&names) {
        Ok(l) => l,
        Err(e) => {
            return Started::Failed(error(
                FieldErrorKind::Unknown,
                format!("cannot make the libamd_smi reader's library directory: {e}"),
            ));
        }
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            remove_links(&links);
            return Started::Failed(error(
                FieldErrorKind::Unknown,
                format!("cannot re-run node-probe to read {}: {e}", found.host_path),
            ));
        }
    };
    let raw: Vec<i32> = high.iter().map(|f| f.as_raw_fd()).collect();
    let mut cmd = Command::new(exe);
    cmd.arg(CHILD_ARG)
        .arg(format!("/proc/self/fd/{FIRST_FD}"))
        .arg(found.major.to_string())
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
            return Started::Failed(error(
                FieldErrorKind::Unknown,
                format!("cannot start the libamd_smi reader: {e}"),
            ));
        }
    };
    Started::Running(Box::new(Pending {
        out: drain(child.stdout.take(), MAX_OUT),
        err: drain(child.stderr.take(), MAX_ERR),
        found,
        child,
        links,
    }))
}

/// Read a pipe to its end on a thread (capped, the rest drained so the child never blocks on it).
fn drain(r: Option<impl Read + Send + 'static>, cap: usize) -> mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut r) = r {
        let _ = std::thread::Builder::new()
            .name("amd-smi-pipe".into())
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
    /// The reading, or an inline error once `deadline` passed (the child killed, never waited on
    /// past that: one stuck in the driver cannot hold the probe).
    pub fn finish(mut self, deadline: Instant) -> Reading<AmdSmiLibraryFacts> {
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) | Err(_) => break None,
            }
        };
        let host_path = self.found.host_path.clone();
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
                error(
                    FieldErrorKind::Timeout,
                    format!(
                        "{host_path} did not answer in time (killed): the GPU's driver or firmware may be hung"
                    ),
                )
            }
            Some(s) => {
                let wait = Duration::from_secs(1);
                let (out, cut) = self.out.recv_timeout(wait).unwrap_or_default();
                let (err, _) = self.err.recv_timeout(wait).unwrap_or_default();
                parse(&host_path, s, &out, cut, &err)
            }
        };
        remove_links(&self.links);
        r
    }
}

fn parse(
    host_path: &str,
    status: std::process::ExitStatus,
    out: &[u8],
    cut: bool,
    err: &[u8],
) -> Reading<AmdSmiLibraryFacts> {
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
        return error(
            FieldErrorKind::Unknown,
            format!("reading {host_path} failed: the reader {how}{last_err}"),
        );
    }
    if cut {
        return error(
            FieldErrorKind::Unknown,
            format!("reading {host_path}: more than {MAX_OUT} bytes of output; not read"),
        );
    }
    match serde_json::from_slice::<Reading<AmdSmiLibraryFacts>>(out) {
        Ok(Reading::Ok(mut f)) => {
            f.path = host_path.to_string();
            Reading::Ok(f)
        }
        Ok(Reading::Err(e)) => Reading::Err(e),
        Err(e) => error(
            FieldErrorKind::Unknown,
            format!("reading {host_path}: the reader's output is not a reading ({e})"),
        ),
    }
}

/// The child's loader path: a private directory whose entries, named by soname, link to the child's own
/// descriptors (`/proc/self/fd/N`, resolved in the child); `None` when there is nothing to link.
fn link_fds(names: &[(String, i32)]) -> std::io::Result<Option<PathBuf>> {
    if names.is_empty() {
        return Ok(None);
    }
    let dir = std::env::temp_dir().join(format!(
        "node-probe-amdsmi.{}.{:x}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sonames_and_their_majors() {
        assert_eq!(soname_major("libamd_smi.so.24"), Some(24));
        assert_eq!(soname_major("libamd_smi.so.26.5.0"), Some(26));
        assert_eq!(soname_major("libamd_smi.so"), None);
        assert_eq!(soname_major("libamd_smi.so.x"), None);
        assert_eq!(soname_major("libamd_smi.so.24/../x"), None);
        assert_eq!(soname_major("libamd_smi.so.99999"), None);
    }

    #[test]
    fn the_newest_rocm_and_the_soname_link_are_found_first() {
        let t = std::env::temp_dir().join(format!("amdsmi-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        for (dir, name) in [
            ("opt/rocm-6.9.0/lib", "libamd_smi.so.24"),
            ("opt/rocm-6.10.0/lib", "libamd_smi.so.25.1.0"),
            ("opt/rocm-6.10.0/lib", "libamd_smi.so.25"),
        ] {
            std::fs::create_dir_all(t.join(dir)).unwrap();
            std::fs::write(t.join(dir).join(name), b"x").unwrap();
        }
        let f = find(&t).unwrap();
        assert_eq!(f.host_path, "/opt/rocm-6.10.0/lib/libamd_smi.so.25");
        assert_eq!(f.major, 25);
        std::fs::create_dir_all(t.join("opt/rocm/lib")).unwrap();
        std::fs::write(t.join("opt/rocm/lib/libamd_smi.so.26"), b"x").unwrap();
        assert_eq!(
            find(&t).unwrap().host_path,
            "/opt/rocm/lib/libamd_smi.so.26"
        );
        let _ = std::fs::remove_dir_all(&t);
    }
}
