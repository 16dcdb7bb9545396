//! The GPUs' device nodes: every process holding an open `/dev/nvidia*`, and a GPU's device-node minor as
//! the driver names it.

use std::io::ErrorKind as IoKind;
use std::path::Path;

use gpu_diag::facts::{FieldError, FieldErrorKind, NodeFacts, Reading};

use super::capped::{io_error, read_line, read_text};

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
}
