//! A fake host root (ripgrep's `Dir` idea): a temporary directory laid out like a node's `/` (`proc/…`,
//! `sys/…`, `dev/kmsg`, log files, fixtures), handed to node-probe with `--host-root` or used as a scratch
//! directory; removed on drop. The one copy every suite includes with
//! `#[path = "…/support/host_root.rs"] mod host_root;`; what a suite's node looks like (its processes, driver
//! files, journal) is written by that suite with `file`.
#![allow(dead_code)] // each test binary uses some of these

use std::path::{Path, PathBuf};

pub struct HostRoot(tempfile::TempDir);

impl HostRoot {
    pub fn new() -> Self {
        HostRoot(tempfile::tempdir().expect("create a temporary host root"))
    }

    /// Under /tmp with a short name: a unix socket inside must fit in 108 bytes of path.
    pub fn short(prefix: &str) -> Self {
        HostRoot(
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in("/tmp")
                .expect("create a temporary host root under /tmp"),
        )
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Write `contents` to `rel` (parents created) and return its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a file under the root"))
            .expect("create parents");
        std::fs::write(&p, contents).expect("write a host root file");
        p
    }

    /// `write`, chained: `root.file("etc/hostname", "n\n").file("proc/uptime", "1.0 2.0\n")`.
    pub fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        self.write(rel, contents);
        self
    }

    /// A symlink at `rel` (parents created) pointing at `target`.
    pub fn symlink(&self, rel: &str, target: impl AsRef<Path>) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("a link under the root"))
            .expect("create parents");
        std::os::unix::fs::symlink(target, p).expect("create a host root symlink");
        self
    }

    /// Open file descriptors 3, 4, … of `pid`, as `/proc/<pid>/fd` symlinks to these paths.
    pub fn fds(&self, pid: u32, targets: &[&str]) -> &Self {
        std::fs::create_dir_all(self.path().join(format!("proc/{pid}/fd")))
            .expect("create the fd directory");
        for (i, t) in targets.iter().enumerate() {
            self.symlink(&format!("proc/{pid}/fd/{}", i + 3), t);
        }
        self
    }
}
