//! Host facts read under the host root (`/` on the host, `/host` in a probe pod, a temporary directory in
//! tests): identity of the node and boot, `/proc` entries of the processes NVML reported, PCIe AER counters,
//! and which GPU services run. Every failure is reported inline on its field.

use std::io::ErrorKind as IoKind;
use std::path::Path;

use gpu_diag::facts::{
    AerFacts, FieldError, FieldErrorKind, HostFacts, HostProcessFacts, NodeFacts, Reading,
    Sections, ServiceFacts,
};

/// GPU services and the process name (`/proc/<pid>/comm`, at most 15 bytes) each runs as.
pub const SERVICES: &[(&str, &str)] = &[
    ("nvidia-fabricmanager", "nv-fabricmanager"),
    ("nvidia-persistenced", "nvidia-persistenced"),
    ("nv-hostengine", "nv-hostengine"),
    ("dcgm-exporter", "dcgm-exporter"),
];

/// `/proc` facts of every process NVML reported on a GPU, and of `extra` (an operator's target).
pub fn fill_processes(facts: &mut NodeFacts, host_root: &Path, extra: Option<u32>) {
    let mut pids: Vec<u32> = facts
        .gpus
        .iter()
        .filter_map(|g| g.processes.ok())
        .flatten()
        .map(|p| p.pid)
        .chain(extra)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let uptime = read_uptime(host_root);
    facts.host_processes = pids
        .into_iter()
        .map(|pid| read_process(host_root, pid, uptime))
        .collect();
}

/// Fill the host parts of `facts`. Runs after the GPU source, so it knows the GPUs' PCI ids and processes.
pub fn fill(facts: &mut NodeFacts, host_root: &Path, sections: Sections) {
    facts.host = read_host(host_root);
    if sections.processes {
        fill_processes(facts, host_root, None);
    }
    if sections.telemetry || sections.topology {
        for gpu in &mut facts.gpus {
            if let Some(bus_id) = gpu.pci_bus_id.ok() {
                gpu.pcie.aer = read_aer(host_root, bus_id);
            }
        }
    }
    if sections.topology {
        // NVML's memory affinity is missing from old drivers and unsupported on some platforms; the
        // kernel knows the PCI device's node too.
        for gpu in &mut facts.gpus {
            if let (Reading::Err(e), Some(bus_id)) = (&gpu.numa_node, gpu.pci_bus_id.ok())
                && matches!(
                    e.error,
                    FieldErrorKind::NotSupported | FieldErrorKind::FunctionNotFound
                )
            {
                gpu.numa_node = read_numa_node(host_root, bus_id);
            }
        }
    }
    if sections.ecc || sections.topology {
        facts.services = read_services(host_root);
    }
}

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

/// Seconds since boot (`proc/uptime`), to age processes.
pub fn read_uptime(root: &Path) -> Option<f64> {
    read_text(&root.join("proc/uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What `proc/<pid>` says about a process NVML reported.
pub fn read_process(root: &Path, pid: u32, uptime: Option<f64>) -> HostProcessFacts {
    let dir = root.join("proc").join(pid.to_string());
    let cmdline = read_cmdline(&dir.join("cmdline"));
    let (state, age_seconds, ppid, stat_flags) = match read_text(&dir.join("stat")) {
        Ok(stat) => {
            let (state, age) = parse_stat(&stat, uptime, clock_ticks());
            let (ppid, flags) = parse_stat_ids(&stat);
            (state, age, ppid, flags)
        }
        Err(e) => (Reading::Err(e.clone()), Reading::Err(e), None, None),
    };
    HostProcessFacts {
        pid,
        ppid,
        stat_flags,
        name: read_line(&dir.join("comm")),
        cmdline,
        cgroup: match read_text_max(&dir.join("cgroup"), MAX_CGROUP) {
            Ok(t) => Reading::Ok(t.trim_end().to_string()),
            Err(e) => Reading::Err(e),
        },
        state,
        age_seconds,
    }
}

fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// State letter and age from `proc/<pid>/stat`. The command name may contain spaces and parentheses, so
/// fields are counted after the last `)`: state is field 3, start time (clock ticks after boot) field 22.
pub fn parse_stat(
    stat: &str,
    uptime: Option<f64>,
    ticks_per_sec: u64,
) -> (Reading<String>, Reading<u64>) {
    fn bad<T>(what: &str) -> Reading<T> {
        Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("cannot parse {what} from proc stat"),
        ))
    }
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (bad("state"), bad("start time"));
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = match fields.first() {
        Some(s) => Reading::Ok(s.to_string()),
        None => bad("state"),
    };
    let start: Option<u64> = fields.get(19).and_then(|s| s.parse().ok());
    let age = match (start, uptime) {
        (Some(start), Some(up)) if ticks_per_sec > 0 => {
            let started = start as f64 / ticks_per_sec as f64;
            Reading::Ok((up - started).max(0.0) as u64)
        }
        (None, _) => bad("start time"),
        _ => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "proc/uptime is unreadable",
        )),
    };
    (state, age)
}

/// Parent pid (field 4) and kernel task flags (field 9, where `PF_KTHREAD` lives) from `proc/<pid>/stat`,
/// counted after the last `)` like [`parse_stat`].
pub fn parse_stat_ids(stat: &str) -> (Option<u32>, Option<u64>) {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (None, None);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (
        fields.get(1).and_then(|s| s.parse().ok()),
        fields.get(6).and_then(|s| s.parse().ok()),
    )
}

/// Every process holding an open `/dev/nvidia*` node, from the `proc/<pid>/fd` symlinks under the host
/// root. `self_pid` (the probe, when it shares the host's pid namespace) is left out and recorded.
pub fn read_device_holders(
    root: &Path,
    self_pid: Option<u32>,
) -> Reading<gpu_diag::facts::DeviceHoldersFacts> {
    let rd = match std::fs::read_dir(root.join("proc")) {
        Ok(rd) => rd,
        Err(e) => return Reading::Err(io_error(&e)),
    };
    let mut pids: Vec<u32> = rd
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    let mut out = gpu_diag::facts::DeviceHoldersFacts {
        excluded_self_pid: self_pid,
        ..Default::default()
    };
    for pid in pids {
        if Some(pid) == self_pid {
            continue;
        }
        let dir = root.join("proc").join(pid.to_string());
        let fds = match std::fs::read_dir(dir.join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == IoKind::NotFound => continue,
            Err(_) => {
                out.unreadable_pids += 1;
                continue;
            }
        };
        let mut devices: Vec<String> = fds
            .filter_map(Result::ok)
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter_map(|t| t.to_str().map(str::to_string))
            .filter(|t| t.starts_with("/dev/nvidia"))
            .collect();
        if devices.is_empty() {
            continue;
        }
        devices.sort();
        devices.dedup();
        out.holders.push(gpu_diag::facts::DeviceHolderFacts {
            pid,
            name: read_line(&dir.join("comm")),
            devices,
        });
    }
    Reading::Ok(out)
}

/// The GPU's device-node minor from the driver's `proc/driver/nvidia/gpus/<bdf>/information`
/// (`Device Minor:  3`).
pub fn read_minor_number(root: &Path, nvml_bus_id: &str) -> Reading<u32> {
    let Some(bdf) = gpu_diag::pci::normalize_bus_id(nvml_bus_id) else {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        ));
    };
    let path = root
        .join("proc/driver/nvidia/gpus")
        .join(bdf)
        .join("information");
    match read_text(&path) {
        Ok(t) => t
            .lines()
            .find_map(|l| l.strip_prefix("Device Minor:"))
            .and_then(|v| v.trim().parse().ok())
            .map(Reading::Ok)
            .unwrap_or_else(|| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    "no `Device Minor:` line in the driver's information file",
                ))
            }),
        Err(e) => Reading::Err(e),
    }
}

/// PCIe AER totals of a GPU from sysfs (`aer_dev_*`, Linux 4.19+).
pub fn read_aer(root: &Path, nvml_bus_id: &str) -> Reading<AerFacts> {
    let Some(bdf) = gpu_diag::pci::normalize_bus_id(nvml_bus_id) else {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        ));
    };
    let dir = root.join("sys/bus/pci/devices").join(&bdf);
    let total = |file: &str, key: &str| -> Result<u64, FieldError> {
        let text = read_text(&dir.join(file))?;
        text.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key))
                    .then(|| it.next().and_then(|v| v.parse::<u64>().ok()))
                    .flatten()
            })
            .ok_or_else(|| {
                FieldError::with_message(FieldErrorKind::Unknown, format!("no {key} in {file}"))
            })
    };
    let r = (|| {
        Ok(AerFacts {
            correctable: total("aer_dev_correctable", "TOTAL_ERR_COR")?,
            nonfatal: total("aer_dev_nonfatal", "TOTAL_ERR_NONFATAL")?,
            fatal: total("aer_dev_fatal", "TOTAL_ERR_FATAL")?,
        })
    })();
    r.into()
}

/// `sys/bus/pci/devices/<bdf>/numa_node` (-1: no NUMA affinity).
pub fn read_numa_node(root: &Path, nvml_bus_id: &str) -> Reading<i32> {
    let Some(bdf) = gpu_diag::pci::normalize_bus_id(nvml_bus_id) else {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        ));
    };
    match read_text(&root.join("sys/bus/pci/devices").join(bdf).join("numa_node")) {
        Ok(t) => t
            .trim()
            .parse::<i32>()
            .map_err(|e| {
                FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!("numa_node `{}`: {e}", shown(t.trim())),
                )
            })
            .into(),
        Err(e) => Reading::Err(e),
    }
}

/// Which GPU services have a running process, from `proc/*/comm`.
pub fn read_services(root: &Path) -> Vec<ServiceFacts> {
    let comms = match std::fs::read_dir(root.join("proc")) {
        Ok(rd) => Ok(rd
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            })
            .filter_map(|e| read_text_max(&e.path().join("comm"), 4096).ok())
            .map(|c| c.trim_end().to_string())
            .collect::<Vec<_>>()),
        Err(e) => Err(io_error(&e)),
    };
    SERVICES
        .iter()
        .map(|(name, process)| {
            // The kernel keeps 15 bytes of a process name.
            let comm: String = process.chars().take(15).collect();
            ServiceFacts {
                name: name.to_string(),
                running: match &comms {
                    Ok(list) => Reading::Ok(list.contains(&comm)),
                    Err(e) => Reading::Err(e.clone()),
                },
            }
        })
        .collect()
}

/// The most of a `/proc` or sysfs file that is read. The kernel's own files are far smaller (a sysfs
/// attribute is at most a page; `proc/stat` of a 4096-CPU host is well under 1 MiB), so only a hostile
/// or damaged host root (a huge or endless file where an attribute should be) reaches it.
pub const MAX_TEXT: usize = 4 << 20;
/// The most of a one-line attribute that is read (the kernel's are at most a page).
pub const MAX_ATTR: usize = 64 * 1024;
/// What is kept of a process's `cmdline`: enough to recognise the program and its main arguments.
/// A process can make its own `cmdline` megabytes long, and every GPU process's lands in the document.
pub const MAX_CMDLINE: usize = 4096;
/// The most of `proc/<pid>/cgroup` that is read (a workload can nest cgroups deeply under its own).
pub const MAX_CGROUP: usize = 64 * 1024;

/// Read at most `max` bytes of `path`; the flag says the file had more. Opened non-blocking, so a FIFO
/// planted where a file is expected answers at once instead of hanging the probe (for regular, proc and
/// sysfs files the flag changes nothing). Symlink loops fail with the kernel's ELOOP.
pub(crate) fn read_capped(path: &Path, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let mut out = Vec::new();
    let mut file = std::fs::File::from(fd).take(max as u64 + 1);
    loop {
        match file.read_to_end(&mut out) {
            Ok(_) => break,
            Err(e) if e.kind() == IoKind::Interrupted => continue,
            // A FIFO or socket with nothing to read: nothing more comes.
            Err(e) if e.kind() == IoKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    let cut = out.len() > max;
    out.truncate(max);
    Ok((out, cut))
}

/// A whole text file of at most `max` bytes; a larger one is an error, never half-parsed.
pub(crate) fn read_text_max(path: &Path, max: usize) -> Result<String, FieldError> {
    let (bytes, cut) = read_capped(path, max).map_err(|e| io_error(&e))?;
    if cut {
        return Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{} is larger than {max} bytes; not read", path.display()),
        ));
    }
    String::from_utf8(bytes).map_err(|_| {
        FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{} is not UTF-8 text", path.display()),
        )
    })
}

pub(crate) fn read_text(path: &Path) -> Result<String, FieldError> {
    read_text_max(path, MAX_TEXT)
}

/// `proc/<pid>/cmdline`: NUL-separated arguments joined with spaces, invalid UTF-8 replaced, cut at
/// [`MAX_CMDLINE`] bytes (marked with a trailing ` …`).
pub fn read_cmdline(path: &Path) -> Reading<String> {
    match read_capped(path, MAX_CMDLINE) {
        Ok((bytes, cut)) => {
            let args: Vec<String> = bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let mut s = args.join(" ");
            if cut {
                s.push_str(" …");
            }
            Reading::Ok(s)
        }
        Err(e) => Reading::Err(io_error(&e)),
    }
}

/// A one-line attribute (hostname, boot id, a sysfs value): at most [`MAX_ATTR`] bytes, trimmed.
pub(crate) fn read_line(path: &Path) -> Reading<String> {
    read_text_max(path, MAX_ATTR)
        .map(|t| t.trim().to_string())
        .into()
}

/// A file's content quoted in an error: its first 64 characters (a hostile file can be megabytes).
pub(crate) fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
    }
}

pub(crate) fn io_error(e: &std::io::Error) -> FieldError {
    match e.kind() {
        IoKind::NotFound => FieldError::new(FieldErrorKind::NotFound),
        IoKind::PermissionDenied => FieldError::new(FieldErrorKind::NoPermission),
        _ => FieldError::with_message(FieldErrorKind::Unknown, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::facts::GpuFacts;
    use gpu_diag::facts::GpuProcessFacts;

    /// A fake host root in a temporary directory (ripgrep's `Dir` idea).
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Dir(tempfile::tempdir().unwrap())
        }
        fn path(&self) -> &Path {
            self.0.path()
        }
        fn file(&self, rel: &str, contents: impl AsRef<[u8]>) -> &Self {
            let p = self.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
            self
        }
    }

    fn node_root() -> Dir {
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

    #[test]
    fn reads_a_fake_host_root() {
        let d = node_root();
        let mut facts = NodeFacts::default();
        facts.gpus.push(GpuFacts {
            pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
            processes: Reading::Ok(vec![
                GpuProcessFacts {
                    pid: 4242,
                    kind: "compute".into(),
                    ..Default::default()
                },
                GpuProcessFacts {
                    pid: 999,
                    kind: "compute".into(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        // A GPU whose bus id is unknown keeps its AER not_collected.
        facts.gpus.push(GpuFacts::default());
        fill(&mut facts, d.path(), Sections::ALL);

        let h = &facts.host;
        // Under a host root the host's etc/hostname wins over the reader's UTS namespace.
        assert_eq!(h.hostname, Reading::Ok("gpu-node-5".into()));
        assert_eq!(
            h.boot_id,
            Reading::Ok("0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20".into())
        );
        assert_eq!(h.kernel_release, Reading::Ok("6.8.0-1015-nvidia".into()));
        assert_eq!(h.boot_time_unix, Reading::Ok(1763700000.0));
        assert_eq!(h.cpu_count, Reading::Ok(224));
        assert!(h.now_unix.get().unwrap() > 1.7e9);

        assert_eq!(facts.host_processes.len(), 2);
        let p = &facts.host_processes[1];
        assert_eq!(p.pid, 4242);
        assert_eq!(p.name, Reading::Ok("python3".into()));
        assert_eq!(p.cmdline, Reading::Ok("python3 train.py --epochs 3".into()));
        assert!(p.cgroup.ok().unwrap().contains("kubepods-pod1234"));
        assert_eq!(p.state, Reading::Ok("R".into()));
        if clock_ticks() == 100 {
            assert_eq!(p.age_seconds, Reading::Ok(2600));
        }
        // A pid that exited between NVML's answer and the read.
        let gone = &facts.host_processes[0];
        assert_eq!(gone.pid, 999);
        assert_eq!(gone.name.err().unwrap().error, FieldErrorKind::NotFound);
        assert_eq!(gone.state.err().unwrap().error, FieldErrorKind::NotFound);

        assert_eq!(
            facts.gpus[0].pcie.aer,
            Reading::Ok(AerFacts {
                correctable: 3,
                nonfatal: 0,
                fatal: 1
            })
        );
        assert_eq!(
            facts.gpus[1].pcie.aer.err().unwrap().error,
            FieldErrorKind::NotCollected
        );

        let running: Vec<(&str, Option<bool>)> = facts
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.running.get()))
            .collect();
        assert_eq!(
            running,
            vec![
                ("nvidia-fabricmanager", Some(true)),
                ("nvidia-persistenced", Some(true)),
                ("nv-hostengine", Some(false)),
                ("dcgm-exporter", Some(false)),
            ]
        );
    }

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
    fn sections_limit_what_is_read() {
        let d = node_root();
        let mut facts = NodeFacts::default();
        facts.gpus.push(GpuFacts {
            pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
            ..Default::default()
        });
        let inventory = Sections {
            identity: true,
            ..Sections::default()
        };
        fill(&mut facts, d.path(), inventory);
        assert!(facts.host.hostname.is_ok());
        assert!(facts.host_processes.is_empty());
        assert!(facts.services.is_empty());
        assert!(!facts.gpus[0].pcie.aer.is_ok());
    }

    #[test]
    fn an_empty_root_fails_inline() {
        let d = Dir::new();
        let mut facts = NodeFacts::default();
        facts.gpus.push(GpuFacts {
            pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
            ..Default::default()
        });
        fill(&mut facts, d.path(), Sections::ALL);
        let nf = |r: Option<&FieldError>| r.map(|e| e.error);
        assert_eq!(
            nf(facts.host.hostname.err()),
            Some(FieldErrorKind::NotFound)
        );
        assert_eq!(nf(facts.host.boot_id.err()), Some(FieldErrorKind::NotFound));
        assert_eq!(
            nf(facts.host.cpu_count.err()),
            Some(FieldErrorKind::NotFound)
        );
        assert_eq!(
            nf(facts.host.boot_time_unix.err()),
            Some(FieldErrorKind::NotFound)
        );
        assert_eq!(
            nf(facts.gpus[0].pcie.aer.err()),
            Some(FieldErrorKind::NotFound)
        );
        assert!(facts.services.iter().all(|s| s.running.err().is_some()));
        // The kernel name is the fallback when etc/hostname is missing.
        let d = Dir::new();
        d.file("proc/sys/kernel/hostname", "node-a\n");
        assert_eq!(read_hostname(d.path()), Reading::Ok("node-a".into()));
    }

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let stat = "4242 (python3 (train) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 3 0 150000 1 1";
        let (state, age) = parse_stat(stat, Some(2000.0), 100);
        assert_eq!(state, Reading::Ok("S".to_string()));
        // Started 1500 s after boot, now 2000 s after boot.
        assert_eq!(age, Reading::Ok(500));
        let (state, age) = parse_stat("garbage", Some(1.0), 100);
        assert!(state.err().is_some() && age.err().is_some());
        let (_, age) = parse_stat(stat, None, 100);
        assert_eq!(age.err().unwrap().error, FieldErrorKind::NotFound);
    }

    #[test]
    fn stat_ids_and_kernel_thread_flags() {
        // kthreadd child: ppid 2, flags 0x208040 (PF_KTHREAD set).
        let stat = "57 (kworker/3:1-events) I 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 120 0 0";
        assert_eq!(parse_stat_ids(stat), (Some(2), Some(0x208040)));
        assert_eq!(parse_stat_ids("garbage"), (None, None));
    }

    #[test]
    fn device_holders_from_fd_symlinks() {
        let d = node_root();
        let link = |pid: u32, fd: u32, target: &str| {
            let dir = d.path().join(format!("proc/{pid}/fd"));
            std::fs::create_dir_all(&dir).unwrap();
            std::os::unix::fs::symlink(target, dir.join(fd.to_string())).unwrap();
        };
        link(4242, 0, "/dev/null");
        link(4242, 5, "/dev/nvidia3");
        link(4242, 6, "/dev/nvidiactl");
        link(4242, 7, "/dev/nvidia3");
        link(77, 3, "/dev/nvidiactl");
        link(78, 3, "socket:[1234]");
        link(500, 9, "/dev/nvidia0");
        let r = read_device_holders(d.path(), Some(500));
        let h = r.ok().unwrap();
        assert_eq!(h.excluded_self_pid, Some(500));
        let got: Vec<(u32, Vec<&str>)> = h
            .holders
            .iter()
            .map(|x| (x.pid, x.devices.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (77, vec!["/dev/nvidiactl"]),
                (4242, vec!["/dev/nvidia3", "/dev/nvidiactl"])
            ]
        );
        assert_eq!(h.holders[1].name, Reading::Ok("python3".into()));
        let empty = Dir::new();
        assert_eq!(
            read_device_holders(&empty.path().join("nope"), None)
                .err()
                .unwrap()
                .error,
            FieldErrorKind::NotFound
        );
    }

    #[test]
    fn minor_number_from_the_driver() {
        let d = Dir::new();
        d.file(
            "proc/driver/nvidia/gpus/0000:3b:00.0/information",
            "Model: \t\t NVIDIA H100\nIRQ:   \t\t 35\nDevice Minor: \t 3\n",
        );
        assert_eq!(
            read_minor_number(d.path(), "00000000:3B:00.0"),
            Reading::Ok(3)
        );
        assert_eq!(
            read_minor_number(d.path(), "00000000:5D:00.0")
                .err()
                .unwrap()
                .error,
            FieldErrorKind::NotFound
        );
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
