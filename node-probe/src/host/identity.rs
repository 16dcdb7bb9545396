//! The node and its boot: hostname, boot id, kernel release, boot time, the clock and the CPU count.

use std::path::Path;

use gpu_diag::facts::{FieldError, FieldErrorKind, HostFacts, Reading};

use super::capped::{read_line, read_text, shown};

pub fn read_host(root: &Path) -> HostFacts {
    HostFacts {
        hostname: read_hostname(root),
        boot_id: read_line(&root.join("proc/sys/kernel/random/boot_id")),
        kernel_release: read_line(&root.join("proc/sys/kernel/osrelease")),
        boot_time_unix: read_boot_time(root),
        now_unix: now_unix(),
        cpu_count: read_cpu_count(root),
    }
}

/// The kernel's hostname is the truth, but `proc/sys/kernel/hostname` shows the *reader's* UTS namespace:
/// in a pod without hostNetwork that is the pod's name. So the kernel's answer comes first only when this
/// process shares the host's UTS namespace (same `ns/uts` as the host's pid 1), else the host's
/// `etc/hostname` does.
pub fn read_hostname(root: &Path) -> Reading<String> {
    let kernel = root.join("proc/sys/kernel/hostname");
    let file = root.join("etc/hostname");
    let ours = std::fs::read_link("/proc/self/ns/uts").ok();
    let hosts = std::fs::read_link(root.join("proc/1/ns/uts")).ok();
    let host_uts = root == Path::new("/") || (ours.is_some() && ours == hosts);
    let order = if host_uts {
        [kernel, file]
    } else {
        [file, kernel]
    };
    let first = read_line(&order[0]);
    match first {
        Reading::Ok(ref s) if !s.is_empty() => first,
        _ => match read_line(&order[1]) {
            Reading::Ok(s) if !s.is_empty() => Reading::Ok(s),
            other if first.is_ok() => other,
            _ => first,
        },
    }
}

/// `btime` of `proc/stat`: when the host booted (unix seconds).
pub fn read_boot_time(root: &Path) -> Reading<f64> {
    let text = match read_text(&root.join("proc/stat")) {
        Ok(t) => t,
        Err(e) => return Reading::Err(e),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(Reading::Ok)
        .unwrap_or_else(|| {
            Reading::Err(FieldError::with_message(
                FieldErrorKind::NotFound,
                "no btime line in proc/stat",
            ))
        })
}

pub fn now_unix() -> Reading<f64> {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Reading::Ok(d.as_secs_f64()),
        Err(e) => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("system clock before 1970: {e}"),
        )),
    }
}

/// The host's CPU count (possible CPU ids), not this process's affinity or cgroup quota.
pub fn read_cpu_count(root: &Path) -> Reading<u32> {
    match read_text(&root.join("sys/devices/system/cpu/possible")) {
        Ok(t) => match cpu_list(t.trim()) {
            Some(cpus) if !cpus.is_empty() => Reading::Ok(cpus.iter().max().map_or(0, |m| m + 1)),
            _ => Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("cannot parse cpu list `{}`", shown(t.trim())),
            )),
        },
        Err(first) => match read_text(&root.join("proc/stat")) {
            Ok(stat) => {
                let n = stat
                    .lines()
                    .filter(|l| {
                        l.strip_prefix("cpu")
                            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                    })
                    .count();
                if n > 0 {
                    Reading::Ok(n as u32)
                } else {
                    Reading::Err(first)
                }
            }
            Err(_) => Reading::Err(first),
        },
    }
}

/// Parse a kernel cpu list (`0-63,128-191`). A list naming more than 65536 CPUs in all (the kernel's
/// NR_CPUS is at most 8192) is refused, so a hostile file cannot make it allocate without bound.
pub fn cpu_list(s: &str) -> Option<Vec<u32>> {
    const MAX_CPUS: usize = 65536;
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || (b - a) as usize >= MAX_CPUS - out.len().min(MAX_CPUS) {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
        if out.len() > MAX_CPUS {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_support::node_root;

    #[test]
    fn kernel_hostname_first_when_sharing_the_hosts_uts_namespace() {
        let Ok(ours) = std::fs::read_link("/proc/self/ns/uts") else {
            return;
        };
        let d = node_root();
        std::fs::create_dir_all(d.path().join("proc/1/ns")).unwrap();
        // A hostNetwork pod: the host's pid 1 is in our UTS namespace, so the kernel's name is the host's.
        std::os::unix::fs::symlink(&ours, d.path().join("proc/1/ns/uts")).unwrap();
        assert_eq!(read_hostname(d.path()), Reading::Ok("probe-pod-xyz".into()));
        // A different namespace: the host's etc/hostname.
        std::fs::remove_file(d.path().join("proc/1/ns/uts")).unwrap();
        std::os::unix::fs::symlink("uts:[1]", d.path().join("proc/1/ns/uts")).unwrap();
        assert_eq!(read_hostname(d.path()), Reading::Ok("gpu-node-5".into()));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,8"), Some(vec![0, 1, 2, 3, 8]));
        assert_eq!(cpu_list("0"), Some(vec![0]));
        assert_eq!(cpu_list("3-1"), None);
        assert_eq!(cpu_list("x"), None);
        assert_eq!(cpu_list("0-65535").map(|v| v.len()), Some(65536));
        // Many ranges that are each allowed but together name a million CPUs.
        assert_eq!(cpu_list(&"0-60000,".repeat(20)), None);
        assert_eq!(cpu_list(&"7,".repeat(70000)), None);
    }
}
