//! Test fixtures shared by the host readers' tests: a fake host root in a temporary directory.

use std::path::Path;

/// A fake host root in a temporary directory (ripgrep's `Dir` idea).
pub(super) struct Dir(tempfile::TempDir);

impl Dir {
    pub(super) fn new() -> Self {
        Dir(tempfile::tempdir().unwrap())
    }
    pub(super) fn path(&self) -> &Path {
        self.0.path()
    }
    pub(super) fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }
}

pub(super) fn node_root() -> Dir {
    let d = Dir::new();
    d.file("etc/hostname", "gpu-node-5\n")
        .file("proc/sys/kernel/hostname", "probe-pod-xyz\n")
        .file(
            "proc/sys/kernel/random/boot_id",
            "0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20\n",
        )
        .file("proc/sys/kernel/osrelease", "6.8.0-1015-nvidia\n")
        .file(
            "proc/stat",
            "cpu  1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\nbtime 1763700000\nprocesses 9\n",
        )
        .file("proc/uptime", "3600.50 7000.00\n")
        .file("sys/devices/system/cpu/possible", "0-223\n")
        .file("proc/4242/comm", "python3\n")
        .file("proc/4242/cmdline", b"python3\0train.py\0--epochs\x003\0")
        .file(
            "proc/4242/cgroup",
            "0::/kubepods.slice/kubepods-pod1234.slice/cri-containerd-abcd.scope\n",
        )
        // Started 1000 s (100000 ticks) after boot, 2600 s ago at uptime 3600.5.
        .file(
            "proc/4242/stat",
            "4242 (python3) R 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 8 0 100000 0 0\n",
        )
        .file("proc/77/comm", "nv-fabricmanage\n")
        .file("proc/78/comm", "nvidia-persiste\n")
        .file(
            "sys/bus/pci/devices/0000:3b:00.0/aer_dev_correctable",
            "RxErr 2\nBadTLP 1\nTOTAL_ERR_COR 3\n",
        )
        .file(
            "sys/bus/pci/devices/0000:3b:00.0/aer_dev_nonfatal",
            "Undefined 0\nTOTAL_ERR_NONFATAL 0\n",
        )
        .file(
            "sys/bus/pci/devices/0000:3b:00.0/aer_dev_fatal",
            "Undefined 0\nTOTAL_ERR_FATAL 1\n",
        );
    d
}
