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
//! Trust (`host/lib_trust.rs`): a privileged probe runs what it loads as root. The library is found only under
//! the host root (links resolved inside it); it, every directory on the way to it, and every host library
//! it pulls in (its `DT_NEEDED` from its own directory, the libdrm it `dlopen`s) must be root's and
//! writable by neither group nor others, or it is not loaded and `amd_smi` says why. The child loads the
//! checked files by their open descriptors (`/proc/self/fd/N`), so a file swapped after the check is not
//! the one loaded.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gpu_diag::facts::{AmdSmiLibraryFacts, FieldError, FieldErrorKind, Reading};

use crate::host::files::HostFiles;
use crate::host::lib_child;
use crate::host::root::resolve_file;

/// The hidden first argument that makes node-probe the library's reader.
pub const CHILD_ARG: &str = "__amd-smi-child";

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

/// Start reading the node's library; `None` where the node has none (then `amd_smi` stays absent), or
/// the inline error that stopped it before it ran.
pub enum Started {
    None,
    Failed(Reading<AmdSmiLibraryFacts>),
    Running(Pending),
}

/// A reading under way.
pub struct Pending(Box<lib_child::Pending>);

fn error(kind: FieldErrorKind, msg: String) -> Reading<AmdSmiLibraryFacts> {
    Reading::Err(FieldError::with_message(kind, msg))
}

pub fn start(root: &Path) -> Started {
    let Some(found) = find(root) else {
        return Started::None;
    };
    let rel = Path::new(found.host_path.trim_start_matches('/'));
    let chain = match crate::host::lib_trust::chain(root, rel, HOST_LIBS, HOST_LIB_DIRS) {
        Ok(c) => c,
        Err(why) => {
            return Started::Failed(error(
                FieldErrorKind::NoPermission,
                format!("{}: not loaded, {why}", found.host_path),
            ));
        }
    };
    match lib_child::start(
        "libamd_smi",
        CHILD_ARG,
        &found.host_path,
        &chain,
        &[found.major.to_string()],
    ) {
        Ok(p) => Started::Running(Pending(p)),
        Err(e) => Started::Failed(Reading::Err(e)),
    }
}

impl Pending {
    /// The reading, or an inline error once `deadline` passed (the child killed, never waited on
    /// past that: one stuck in the driver cannot hold the probe).
    pub fn finish(self, deadline: Instant) -> Reading<AmdSmiLibraryFacts> {
        self.0
            .finish(deadline, |f: &mut AmdSmiLibraryFacts, path| f.path = path)
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
