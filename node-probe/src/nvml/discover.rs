//! Where the driver's NVML library can be: the loader's search path first, then the driver roots'
//! table under the host root (`crate::driver_roots`: platform layouts, a `--driver-root`, the toolkit's
//! configured root, the host's loader cache), then, in an ephemeral container, the roots of the
//! processes it can see.

use std::path::{Path, PathBuf};

use crate::driver_roots::Search;

/// What the dynamic loader is asked for first: found when the container toolkit injected the driver
/// (runtimeClassName: nvidia) or when running directly on the host.
pub const LOADER_NAME: &str = "libnvidia-ml.so.1";

/// The candidates that exist under the search's host root, as paths the probe can open, each with the
/// row (platform) or loader cache that named it.
pub fn existing(search: &Search, arch: &str) -> Vec<(PathBuf, String)> {
    search.libraries(LOADER_NAME, arch)
}

/// Set (to anything) in an ephemeral probe container: also look in the root filesystems of the processes the
/// probe can see. Sharing the target container's PID namespace, it reaches that container's root through
/// `/proc/<pid>/root`, where the NVIDIA container toolkit injected the driver's library.
pub const IN_CONTAINERS_ENV: &str = "NODE_PROBE_NVML_IN_CONTAINERS";

/// How many processes' roots are searched at most (an ephemeral container sees a handful).
const MAX_PROCESS_ROOTS: usize = 256;

/// Candidates under `/proc/<pid>/root` of the visible processes other than this one, lowest PID first.
///
/// That root belongs to a workload, whose owner controls its files: a library shipped in the image or
/// written at run time there would run as this privileged probe. So a candidate counts only where the
/// runtime put it: a read-only mount of that very file (`/proc/<pid>/mountinfo`), as the NVIDIA container
/// toolkit and CDI bind the driver's files, whose source is not a kubelet volume (a pod can mount its
/// own ConfigMap or emptyDir read-only over a path, never a host file).
pub fn in_process_roots(proc_dir: &Path, own_pid: u32, arch: &str) -> Vec<PathBuf> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| p != own_pid)
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let mut out: Vec<PathBuf> = Vec::new();
    for pid in pids.into_iter().take(MAX_PROCESS_ROOTS) {
        let root = proc_dir.join(pid.to_string()).join("root");
        let found: Vec<PathBuf> = existing(&Search::container(&root), arch)
            .into_iter()
            .map(|f| f.0)
            .collect();
        if found.is_empty() {
            continue;
        }
        let mounts = match std::fs::File::open(proc_dir.join(pid.to_string()).join("mountinfo")) {
            Ok(f) => {
                use std::io::Read;
                let mut s = String::new();
                // A mount table is a few KiB; a huge one is cut, never read whole.
                let _ = f.take(4 << 20).read_to_string(&mut s);
                s
            }
            Err(_) => continue,
        };
        for p in found {
            let inside = Path::new("/").join(p.strip_prefix(&root).unwrap_or(&p));
            if runtime_mounted(&mounts, &inside) && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `/proc/<pid>/mountinfo` text `mounts` has a read-only mount of exactly `file` whose source
/// path is not under a kubelet's pod or plugin directories (a pod's own volumes).
/// Fields: `id parent major:minor root mountpoint options [optional...] - fstype source superopts`.
pub fn runtime_mounted(mounts: &str, file: &Path) -> bool {
    let Some(file) = file.to_str() else {
        return false;
    };
    mounts.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let (Some(root), Some(point), Some(opts)) = (f.get(3), f.get(4), f.get(5)) else {
            return false;
        };
        // mountinfo escapes space, tab, newline and backslash as octal; library paths have none.
        *point == file
            && opts.split(',').any(|o| o == "ro")
            && !root.contains("/kubelet/pods/")
            && !root.contains("/kubelet/plugins")
            && !root.contains("/volumes/kubernetes.io~")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_roots_are_searched_lowest_pid_first_without_our_own() {
        let proc_dir = tempfile::tempdir().unwrap();
        for (pid, has) in [(7, true), (1, true), (42, false), (99, true)] {
            let root = proc_dir.path().join(pid.to_string()).join("root");
            let lib = root.join("usr/lib/x86_64-linux-gnu");
            std::fs::create_dir_all(&lib).unwrap();
            if has {
                std::fs::write(lib.join("libnvidia-ml.so.1"), b"x").unwrap();
            }
            std::fs::write(
                proc_dir.path().join(pid.to_string()).join("mountinfo"),
                TOOLKIT_MOUNTS,
            )
            .unwrap();
        }
        std::fs::create_dir_all(proc_dir.path().join("self")).unwrap();
        let found = in_process_roots(proc_dir.path(), 99, "x86_64");
        let pids: Vec<String> = found
            .iter()
            .map(|p| {
                p.strip_prefix(proc_dir.path())
                    .unwrap()
                    .components()
                    .next()
                    .unwrap()
                    .as_os_str()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(pids, ["1", "7"]);
    }

    /// What the NVIDIA container toolkit leaves in a GPU container's mountinfo (trimmed), plus what a
    /// tenant can add: a ConfigMap mounted read-only over the library's path.
    const TOOLKIT_MOUNTS: &str = "\
1290 1201 0:351 / / rw,relatime master:446 - overlay overlay rw,lowerdir=/var/lib/containerd/a
1305 1290 259:1 /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.570.133.20 /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 ro,nosuid,nodev,relatime master:1 - ext4 /dev/nvme0n1p1 rw
1306 1290 259:1 /var/lib/kubelet/pods/4b1e/volume-subpaths/lib/trainer/0 /usr/lib64/libnvidia-ml.so.1 ro,relatime - ext4 /dev/nvme0n1p1 rw
1307 1290 259:1 /usr/bin/nvidia-smi /usr/lib/libnvidia-ml.so.1 rw,nosuid - ext4 /dev/nvme0n1p1 rw
";

    #[test]
    fn only_a_read_only_runtime_mount_of_the_library_counts() {
        let m = |p: &str| runtime_mounted(TOOLKIT_MOUNTS, Path::new(p));
        assert!(m("/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"));
        // A pod's own volume, read-only over the path: the tenant's file.
        assert!(!m("/usr/lib64/libnvidia-ml.so.1"));
        // Writable.
        assert!(!m("/usr/lib/libnvidia-ml.so.1"));
        // Not a mount at all: a file of the image or written at run time.
        assert!(!m("/lib64/libnvidia-ml.so.1"));
    }

    #[test]
    fn a_library_the_workload_put_in_its_own_root_is_never_loaded() {
        let proc_dir = tempfile::tempdir().unwrap();
        let root = proc_dir.path().join("7/root");
        for dir in ["usr/lib/x86_64-linux-gnu", "usr/lib64"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
            std::fs::write(root.join(dir).join("libnvidia-ml.so.1"), b"x").unwrap();
        }
        // Only the image's root is mounted: both files are the workload's own.
        std::fs::write(
            proc_dir.path().join("7/mountinfo"),
            TOOLKIT_MOUNTS.lines().next().unwrap(),
        )
        .unwrap();
        assert!(in_process_roots(proc_dir.path(), 99, "x86_64").is_empty());
        // No mount table readable: nothing is trusted either.
        std::fs::remove_file(proc_dir.path().join("7/mountinfo")).unwrap();
        assert!(in_process_roots(proc_dir.path(), 99, "x86_64").is_empty());
        // The toolkit's read-only bind: that one, and not the ConfigMap's.
        std::fs::write(proc_dir.path().join("7/mountinfo"), TOOLKIT_MOUNTS).unwrap();
        assert_eq!(
            in_process_roots(proc_dir.path(), 99, "x86_64"),
            vec![root.join("usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")]
        );
    }
}
