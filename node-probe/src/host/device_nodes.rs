//! The GPUs' device nodes: every process holding an open `/dev/nvidia*`, and a GPU's device-node minor as
//! the driver names it.

use std::path::Path;

use gpu_diag::facts::{FieldError, FieldErrorKind, NodeFacts, Reading, ScanGapsFacts};

use super::capped::{read_line, read_text};

/// How much of `/proc` one holder scan reads. A host may run many processes and one process may hold a
/// million open files (a leaky server, or a tenant's on purpose): past these the scan stops and says
/// what it did not read, which the preflights count as unknown, never as free.
#[derive(Debug, Clone, Copy)]
pub struct ScanBounds {
    pub pids: usize,
    pub fds_per_pid: usize,
    pub fds_total: usize,
}

pub const SCAN_BOUNDS: ScanBounds = ScanBounds {
    pids: 100_000,
    fds_per_pid: 65_536,
    fds_total: 2_000_000,
};

/// The open fds of every process on the host whose link target `keep` accepts, as (fd, target), one call
/// of `each` per process that holds any, and what the walk did not see: from `proc/<pid>/fd` (links read,
/// never followed; a target that is not UTF-8 is no device node), within the holder scan's bounds. The
/// one walk of `/proc` every holder list comes from: the node-wide scan ([`read_device_holders`]) and the
/// vendors' process lists (AMD's render nodes and KFD, Gaudi's accel nodes, Neuron's devices).
pub fn held_fds(
    files: super::files::HostFiles<'_>,
    keep: impl Fn(&str) -> bool,
    each: impl FnMut(u32, Vec<(String, String)>),
) -> Walked {
    walk(files, None, SCAN_BOUNDS, keep, each)
}

/// What one walk of `/proc` did not see ([`ScanGapsFacts`]), and how many fd tables it could not read
/// for another reason than a refusal (a loop, an I/O error; a process that exited is not counted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Walked {
    pub gaps: ScanGapsFacts,
    /// Refused fd tables, all of them (`gaps` lists the first pids).
    pub denied: u32,
    pub unreadable: u32,
}

fn walk(
    files: super::files::HostFiles<'_>,
    self_pid: Option<u32>,
    bounds: ScanBounds,
    keep: impl Fn(&str) -> bool,
    mut each: impl FnMut(u32, Vec<(String, String)>),
) -> Walked {
    let mut pids: Vec<u32> = files
        .names("proc")
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    pids.sort_unstable();
    let mut out = Walked::default();
    let mut budget = bounds.fds_total;
    for (n, pid) in pids.iter().copied().enumerate() {
        if Some(pid) == self_pid {
            continue;
        }
        if n >= bounds.pids || budget == 0 {
            out.gaps.pids_not_scanned = u32::try_from(pids.len() - n).unwrap_or(u32::MAX);
            break;
        }
        let limit = bounds.fds_per_pid.min(budget);
        // Read no further than the bound: a table of a million fds is not listed whole.
        let listed = files
            .path(format!("proc/{pid}/fd"))
            .and_then(|d| std::fs::read_dir(d).map_err(|e| super::capped::io_error(&e)));
        let mut fds: Vec<String> = match listed {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .take(limit.saturating_add(1))
                .collect(),
            Err(e) if e.error == FieldErrorKind::NotFound => continue,
            Err(e) => {
                // Refused, not gone: the process is there and may hold a device (proc(5): the fd
                // directory is governed by a ptrace access mode check; an LSM may refuse too). EACCES and
                // EPERM both read as `no_permission` (`capped::io_error`).
                if e.error == FieldErrorKind::NoPermission {
                    out.denied += 1;
                    if out.gaps.denied_pids.len() < MAX_CUT_LISTED {
                        out.gaps.denied_pids.push(pid);
                    }
                } else {
                    out.unreadable += 1;
                }
                continue;
            }
        };
        if fds.len() > limit {
            fds.truncate(limit);
            if out.gaps.fd_tables_cut.len() < MAX_CUT_LISTED {
                out.gaps.fd_tables_cut.push(pid);
            }
        }
        budget -= fds.len();
        let held: Vec<(String, String)> = fds
            .into_iter()
            .filter_map(|fd| {
                let target = files.link(format!("proc/{pid}/fd/{fd}"))?;
                let t = target.to_str()?;
                keep(t).then(|| (fd, t.to_string()))
            })
            .collect();
        if !held.is_empty() {
            each(pid, held);
        }
    }
    out
}

/// Pids listed in `fd_tables_cut`, at most.
const MAX_CUT_LISTED: usize = 64;

/// Queues read of one KFD process (a process has a few per GPU).
const MAX_KFD_QUEUES: usize = 4096;
const KFD_PROC: &str = "sys/class/kfd/kfd/proc";

/// Every process holding an open GPU device node, from the `proc/<pid>/fd` symlinks under the host
/// root (links read, never followed), and every process KFD lists with the GPUs it has state on.
/// `self_pid` (the probe, when it shares the host's pid namespace) is left out and recorded.
/// `is_gpu_device` says which links are GPU device nodes (`source::is_device_node`: each vendor names
/// its own).
pub fn read_device_holders(
    root: &Path,
    self_pid: Option<u32>,
    is_gpu_device: fn(&str) -> bool,
) -> Reading<gpu_diag::facts::DeviceHoldersFacts> {
    read_device_holders_bounded(root, self_pid, SCAN_BOUNDS, is_gpu_device)
}

fn read_device_holders_bounded(
    root: &Path,
    self_pid: Option<u32>,
    bounds: ScanBounds,
    is_gpu_device: fn(&str) -> bool,
) -> Reading<gpu_diag::facts::DeviceHoldersFacts> {
    let files = super::files::HostFiles::new(root);
    if let Err(e) = files.names("proc") {
        return Reading::Err(e);
    }
    let mut holders = Vec::new();
    let walked = walk(files, self_pid, bounds, is_gpu_device, |pid, held| {
        let mut devices: Vec<String> = held.into_iter().map(|(_, t)| t).collect();
        devices.sort();
        devices.dedup();
        holders.push(gpu_diag::facts::DeviceHolderFacts {
            pid,
            name: read_line(&root.join(format!("proc/{pid}/comm"))),
            devices,
            kfd: None,
        });
    });
    let mut out = gpu_diag::facts::DeviceHoldersFacts {
        holders,
        // The refused ones count among the unreadable, as the record has always said.
        unreadable_pids: walked.unreadable.saturating_add(walked.denied),
        denied_pids: walked.gaps.denied_pids,
        fd_tables_cut: walked.gaps.fd_tables_cut,
        pids_not_scanned: walked.gaps.pids_not_scanned,
        excluded_self_pid: self_pid,
    };
    add_kfd_processes(&mut out, root, self_pid, bounds.pids);
    out.holders.sort_by_key(|h| h.pid);
    Reading::Ok(out)
}

/// KFD's own process list: the GPUs each process has state on. A process KFD lists but the fd scan
/// did not see (its fd table unreadable or cut, or in another mount of `/dev`) is added.
fn add_kfd_processes(
    out: &mut gpu_diag::facts::DeviceHoldersFacts,
    root: &Path,
    self_pid: Option<u32>,
    max: usize,
) {
    let files = super::files::HostFiles::new(root);
    let Ok(names) = files.names(KFD_PROC) else {
        return;
    };
    for pid in names
        .iter()
        .filter_map(|n| n.parse::<u32>().ok())
        .filter(|p| Some(*p) != self_pid)
        .take(max)
    {
        let kfd = kfd_process(files, pid);
        match out.holders.iter_mut().find(|h| h.pid == pid) {
            Some(h) => h.kfd = Some(kfd),
            None => out.holders.push(gpu_diag::facts::DeviceHolderFacts {
                pid,
                name: read_line(&root.join(format!("proc/{pid}/comm"))),
                devices: Vec::new(),
                kfd: Some(kfd),
            }),
        }
    }
}

/// `sys/class/kfd/kfd/proc/<pid>/`: `vram_<gpu_id>`, `sdma_<gpu_id>`, `stats_<gpu_id>/`,
/// `counters_<gpu_id>/` and `queues/<qid>/gpuid` (`amdkfd/kfd_process.c`).
fn kfd_process(files: super::files::HostFiles<'_>, pid: u32) -> gpu_diag::facts::KfdProcessFacts {
    let dir = format!("{KFD_PROC}/{pid}");
    let mut ids: Vec<u32> = files
        .names(&dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| {
            ["vram_", "sdma_", "stats_", "counters_"]
                .iter()
                .find_map(|p| n.strip_prefix(p))
                .and_then(|id| id.parse().ok())
        })
        .collect();
    let queues = files.names(format!("{dir}/queues")).unwrap_or_default();
    for q in queues.iter().take(MAX_KFD_QUEUES) {
        if let Some(id) = files.parse::<u32>(format!("{dir}/queues/{q}/gpuid")).get() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    gpu_diag::facts::KfdProcessFacts {
        gpu_ids: ids,
        queues: u32::try_from(queues.len()).unwrap_or(u32::MAX),
    }
}

/// Each GPU's minor where NVML did not give it, from the driver's files.
pub fn fill_minor_numbers(facts: &mut NodeFacts, root: &Path) {
    for g in &mut facts.gpus {
        if g.minor_number.as_ref().is_none_or(|m| m.ok().is_none())
            && let Some(bus) = g.pci_bus_id.ok()
        {
            g.minor_number = Some(read_minor_number(root, bus));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::test_support::{Dir, node_root};

    /// The walk's own tests name GPU nodes by prefix; each vendor's matcher is tested in its module
    /// (`source::is_device_node`), which this layer may not import.
    fn gpu(t: &str) -> bool {
        [
            "/dev/nvidia",
            "/dev/kfd",
            "/dev/dri/renderD",
            "/dev/dri/card",
            "/dev/accel/",
            "/dev/hl",
        ]
        .iter()
        .any(|p| t.starts_with(p))
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
        let r = read_device_holders(d.path(), Some(500), gpu);
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
            read_device_holders(&empty.path().join("nope"), None, gpu)
                .err()
                .unwrap()
                .error,
            FieldErrorKind::NotFound
        );
    }

    fn link(d: &Dir, pid: u32, fd: u32, target: &str) {
        let dir = d.path().join(format!("proc/{pid}/fd"));
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(target, dir.join(fd.to_string())).unwrap();
    }

    #[test]
    fn amd_holders_from_fds_and_kfds_own_process_list() {
        let d = node_root();
        link(&d, 4242, 3, "/dev/kfd");
        link(&d, 4242, 4, "/dev/dri/renderD131");
        link(&d, 4242, 5, "/dev/dri/card4");
        link(&d, 4242, 6, "/dev/dri/by-path/pci-0000:5c:00.0-render");
        link(&d, 500, 3, "/dev/kfd");
        let kfd = "sys/class/kfd/kfd/proc";
        d.file(&format!("{kfd}/4242/pasid"), "0\n")
            .file(&format!("{kfd}/4242/vram_57"), "1073741824\n")
            .file(&format!("{kfd}/4242/stats_57/cu_occupancy"), "12\n")
            .file(&format!("{kfd}/4242/queues/0/gpuid"), "57\n")
            .file(&format!("{kfd}/4242/queues/1/gpuid"), "64\n")
            .file(&format!("{kfd}/4242/queues/2/gpuid"), "not a number\n")
            // Listed by KFD only (its fds not seen), with no GPU named.
            .file(&format!("{kfd}/6000/pasid"), "0\n")
            .file("proc/6000/comm", "rocminfo\n")
            .file(&format!("{kfd}/500/vram_57"), "1\n");
        let h = read_device_holders(d.path(), Some(500), gpu)
            .ok()
            .unwrap()
            .clone();
        type Seen<'a> = (u32, Vec<&'a str>, Option<(Vec<u32>, u32)>);
        let got: Vec<Seen> = h
            .holders
            .iter()
            .map(|x| {
                (
                    x.pid,
                    x.devices.iter().map(String::as_str).collect(),
                    x.kfd.as_ref().map(|k| (k.gpu_ids.clone(), k.queues)),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    4242,
                    vec!["/dev/dri/card4", "/dev/dri/renderD131", "/dev/kfd"],
                    Some((vec![57, 64], 3))
                ),
                (6000, vec![], Some((vec![], 0))),
            ]
        );
        assert_eq!(h.holders[1].name, Reading::Ok("rocminfo".into()));
    }

    #[test]
    fn huge_fd_tables_and_many_processes_are_read_bounded_and_said() {
        let d = node_root();
        // 41 open files, one the GPU's: the scan reads 16 of them (in directory order, so the GPU's may be
        // among them or not) and says the table was cut, which the preflights count as unknown.
        for fd in 0..40 {
            link(&d, 4242, fd, "/dev/null");
        }
        link(&d, 4242, 99, "/dev/kfd");
        for pid in 5000..5004 {
            link(&d, pid, 3, "/dev/kfd");
        }
        let bounds = ScanBounds {
            pids: 1_000,
            fds_per_pid: 16,
            fds_total: 16 + 2,
        };
        let h = read_device_holders_bounded(d.path(), None, bounds, gpu)
            .ok()
            .unwrap()
            .clone();
        assert_eq!(h.fd_tables_cut, [4242]);
        // The total budget ran out after two more processes: the rest are counted, not read.
        assert_eq!(
            h.holders
                .iter()
                .map(|x| x.pid)
                .filter(|p| *p != 4242)
                .collect::<Vec<_>>(),
            [5000, 5001]
        );
        assert_eq!(h.pids_not_scanned, 2);
        let few = ScanBounds {
            pids: 1,
            ..SCAN_BOUNDS
        };
        let h = read_device_holders_bounded(d.path(), None, few, gpu)
            .ok()
            .unwrap()
            .clone();
        // Of node_root's 77, 78 and 4242 and the four above, only the first is read.
        assert_eq!(h.pids_not_scanned, 6);
    }

    #[test]
    fn symlink_loops_in_proc_are_unreadable_processes_not_hangs() {
        let d = node_root();
        // An fd directory that loops, and an fd link that points at itself.
        std::fs::create_dir_all(d.path().join("proc/77")).unwrap();
        std::os::unix::fs::symlink("fd", d.path().join("proc/77/fd")).unwrap();
        link(&d, 78, 3, "/proc/78/fd/3");
        link(&d, 78, 4, "/dev/kfd");
        let h = read_device_holders(d.path(), None, gpu)
            .ok()
            .unwrap()
            .clone();
        assert_eq!(h.unreadable_pids, 1);
        assert_eq!(h.holders.len(), 1);
        assert_eq!(h.holders[0].devices, ["/dev/kfd"]);
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
}
