//! What uses the GPU: the processes NVML lists on it and every holder of its `/dev/nvidia<minor>` (or of
//! the driver's shared control nodes), named with what each usually is and how to stop it.

use super::request::ResetRequest;
use crate::analysis::error_name;
use crate::facts::{DeviceHolderFacts, GpuFacts, NodeFacts, Reading};
use crate::operator::{Check, process_label};

/// Device nodes that are the driver's shared control nodes, not one GPU's.
fn is_gpu_node(dev: &str) -> Option<u32> {
    dev.strip_prefix("/dev/nvidia")?.parse().ok()
}

/// What a holder of NVIDIA device nodes usually is, and how to stop it.
pub fn holder_hint(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let table: &[(&str, &str)] = &[
        (
            "nv-hostengine",
            "DCGM host engine: stop the DCGM service or daemonset",
        ),
        (
            "dcgm-exporter",
            "dcgm-exporter: scale its daemonset off this node",
        ),
        ("dcgmi", "DCGM client"),
        (
            "nvidia-device-p",
            "device plugin: stop the nvidia-device-plugin daemonset pod on this node",
        ),
        (
            "gpu-feature-dis",
            "GPU Feature Discovery: stop its pod on this node",
        ),
        (
            "nvidia-persiste",
            "nvidia-persistenced: stop the service for the reset",
        ),
        ("nvidia-smi", "another nvidia-smi (monitoring)"),
        ("nv-fabricmanage", "Fabric Manager"),
    ];
    table
        .iter()
        .find(|(k, _)| n.starts_with(k))
        .map(|(_, v)| *v)
}

fn holder_label(h: &DeviceHolderFacts) -> String {
    let name = h.name.ok().map(String::as_str).unwrap_or("?");
    let hint = holder_hint(name)
        .map(|x| format!(" [{x}]"))
        .unwrap_or_default();
    format!("pid {} {name} ({}){hint}", h.pid, h.devices.join(", "))
}

pub fn check_processes(facts: &NodeFacts, g: &GpuFacts) -> Check {
    const NAME: &str = "no_gpu_processes";
    match &g.processes {
        Reading::Ok(ps) if ps.is_empty() => {
            Check::pass(NAME, "NVML lists no compute or graphics process on the GPU")
        }
        Reading::Ok(ps) => Check::block(
            NAME,
            format!(
                "{} process(es) use the GPU: {}. Stop them first (kill_gpu_process, or drain the pods)",
                ps.len(),
                ps.iter()
                    .map(|p| format!("{} {}", process_label(facts, p.pid), p.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Reading::Err(e) => Check::block(
            NAME,
            format!(
                "NVML could not list the GPU's processes ({}): cannot verify it is idle",
                error_name(e.error)
            ),
        ),
    }
}

/// Holders of the GPU's own device node block; holders of only the shared control nodes warn; a scan that
/// could not see every process blocks unless a person overrode it, as every vendor's reset does
/// (`device_node::unknown`): a holder without a CUDA context is in no NVML list.
pub fn check_device_holders(facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
    let self_pid = req.self_pid;
    const NAME: &str = "device_node_holders";
    const OTHER: &str = "control_node_holders";
    let holders = match &facts.device_holders {
        None => {
            return vec![Check::block(
                NAME,
                "the holders of /dev/nvidia* were not collected: cannot verify the GPU is free",
            )];
        }
        Some(Reading::Err(e)) => {
            return vec![Check::block(
                NAME,
                format!(
                    "cannot scan /proc for holders of /dev/nvidia* ({}{})",
                    error_name(e.error),
                    e.message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )];
        }
        Some(Reading::Ok(h)) => h,
    };
    let minor = g.minor_number.as_ref().and_then(|m| m.get());
    // Holders of AMD's device files only are no holders of an NVIDIA GPU.
    let others: Vec<&DeviceHolderFacts> = holders
        .holders
        .iter()
        .filter(|h| Some(h.pid) != self_pid)
        .filter(|h| h.devices.iter().any(|d| d.starts_with("/dev/nvidia")))
        .collect();
    let (on_gpu, control): (Vec<&DeviceHolderFacts>, Vec<&DeviceHolderFacts>) =
        others.iter().partition(|h| {
            h.devices.iter().any(|d| match (is_gpu_node(d), minor) {
                (Some(m), Some(want)) => m == want,
                // Unknown minor: any GPU node may be this GPU's.
                (Some(_), None) => true,
                (None, _) => false,
            })
        });
    let mut out = Vec::new();
    let node = match minor {
        Some(m) => format!("/dev/nvidia{m}"),
        None => "the GPU's device node (minor number unknown, so every /dev/nvidiaN counts)".into(),
    };
    let gaps = crate::operator::scan::gaps(holders);
    if on_gpu.is_empty() && gaps.is_empty() {
        out.push(Check::pass(NAME, format!("no process holds {node}")));
    } else if on_gpu.is_empty() {
        out.push(super::device_node::unknown(NAME, &node, gaps, req));
    } else {
        out.push(Check::block(
            NAME,
            format!(
                "{} process(es) hold {node}: {}. nvidia-smi refuses to reset a GPU in use",
                on_gpu.len(),
                on_gpu
                    .iter()
                    .map(|h| holder_label(h))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    if !control.is_empty() {
        out.push(Check::warn(
            OTHER,
            format!(
                "{} process(es) hold only the driver's shared nodes (not this GPU's): {}. They may \
                 open the GPU again during the reset",
                control.len(),
                control
                    .iter()
                    .map(|h| holder_label(h))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    out.extend(super::device_node::unreadable(holders));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{DeviceHoldersFacts, FieldError, FieldErrorKind, GpuProcessFacts};
    use crate::operator::CheckStatus;
    use crate::operator::reset::request::GpuSelector;
    use crate::operator::reset::test_support::{gpu, holder, node, req};

    fn r(self_pid: Option<u32>) -> ResetRequest {
        ResetRequest {
            self_pid,
            ..req(GpuSelector::Index(0))
        }
    }

    #[test]
    fn processes_block_and_unreadable_lists_block() {
        let mut g = gpu(0, "Hopper");
        g.processes = Reading::Ok(vec![GpuProcessFacts {
            pid: 4242,
            kind: "compute".into(),
            ..Default::default()
        }]);
        let f = node(vec![g.clone()], vec![]);
        let c = check_processes(&f, &g);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("pid 4242 compute"));
        g.processes = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
        assert!(check_processes(&f, &g).evidence.contains("no_permission"));
    }

    #[test]
    fn device_node_holders_are_named_with_hints() {
        let g = gpu(3, "Hopper");
        let f = node(
            vec![g.clone()],
            vec![
                holder(2101, "nv-hostengine", &["/dev/nvidia3", "/dev/nvidiactl"]),
                holder(2200, "nvidia-device-plugin", &["/dev/nvidia3"]),
                holder(
                    2300,
                    "dcgm-exporter",
                    &["/dev/nvidiactl", "/dev/nvidia-uvm"],
                ),
                holder(2400, "python3", &["/dev/nvidia2"]),
            ],
        );
        let cs = check_device_holders(&f, &g, &r(Some(4000)));
        assert_eq!(cs[0].status, CheckStatus::Block);
        assert!(
            cs[0]
                .evidence
                .starts_with("2 process(es) hold /dev/nvidia3")
        );
        assert!(cs[0].evidence.contains("pid 2101 nv-hostengine"));
        assert!(cs[0].evidence.contains("DCGM host engine"));
        assert!(cs[0].evidence.contains("device plugin"));
        assert!(!cs[0].evidence.contains("python3"));
        assert_eq!(cs[1].check, "control_node_holders");
        assert_eq!(cs[1].status, CheckStatus::Warn);
        assert!(cs[1].evidence.contains("dcgm-exporter"));
        // Minor unknown: every GPU node counts.
        let mut g2 = g.clone();
        g2.minor_number = None;
        let cs = check_device_holders(&f, &g2, &r(None));
        assert!(
            cs[0].evidence.starts_with("3 process(es)"),
            "{}",
            cs[0].evidence
        );
    }

    #[test]
    fn holder_scan_missing_or_failed_blocks_and_unreadable_warns() {
        let g = gpu(0, "Hopper");
        let mut f = node(vec![g.clone()], vec![]);
        f.device_holders = None;
        assert_eq!(
            check_device_holders(&f, &g, &r(None))[0].status,
            CheckStatus::Block
        );
        f.device_holders = Some(Reading::Err(FieldError::with_message(
            FieldErrorKind::NoPermission,
            "proc",
        )));
        let c = &check_device_holders(&f, &g, &r(None))[0];
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("no_permission: proc"));
        f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
            holders: vec![],
            unreadable_pids: 3,
            ..Default::default()
        }));
        let cs = check_device_holders(&f, &g, &r(None));
        assert_eq!(cs[0].status, CheckStatus::Pass);
        assert_eq!(cs[1].check, "holder_scan_complete");
        assert_eq!(cs[1].status, CheckStatus::Warn);
        assert_eq!(
            cs[1].evidence,
            "the fd tables of 3 process(es) could not be read (not for lack of permission: a loop, an I/O \
             error): holders among them are not seen"
        );
    }

    /// What the scan did not see is unknown on an NVIDIA GPU as on every vendor's: a block a person may
    /// override, not a warning (a holder without a CUDA context is in no NVML list).
    #[test]
    fn an_incomplete_scan_blocks_unless_a_person_overrode() {
        let g = gpu(0, "Hopper");
        let mut f = node(vec![g.clone()], vec![]);
        for (scan, said) in [
            (
                DeviceHoldersFacts {
                    unreadable_pids: 1,
                    denied_pids: vec![31337],
                    ..Default::default()
                },
                "the open files of pid 31337 could not be read (permission denied",
            ),
            (
                DeviceHoldersFacts {
                    fd_tables_cut: vec![9],
                    ..Default::default()
                },
                "the open files of pid 9 were read only in part",
            ),
            (
                DeviceHoldersFacts {
                    pids_not_scanned: 12,
                    ..Default::default()
                },
                "12 process(es) were not scanned",
            ),
        ] {
            f.device_holders = Some(Reading::Ok(scan));
            let cs = check_device_holders(&f, &g, &r(None));
            assert_eq!(cs.len(), 1, "{cs:?}");
            assert_eq!(cs[0].status, CheckStatus::Block, "{}", cs[0].evidence);
            assert!(
                cs[0].evidence.starts_with(
                    "no process the scan read holds /dev/nvidia0, but the scan is incomplete: "
                ) && cs[0].evidence.contains(said),
                "{}",
                cs[0].evidence
            );
            assert_eq!(cs[0].unknown_holders.len(), 1);
            assert_eq!(
                cs[0].unknown_sources,
                vec!["open /dev/nvidia0 files (the /proc fd scan)".to_string()]
            );
            let over = ResetRequest {
                override_unknown: true,
                ..r(None)
            };
            let c = &check_device_holders(&f, &g, &over)[0];
            assert_eq!(c.status, CheckStatus::Warn);
            assert!(
                c.evidence
                    .starts_with("OVERRIDDEN by the person who confirmed")
            );
        }
        // A holder seen blocks as a holder, whatever else the scan missed.
        f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
            holders: vec![holder(77, "python3", &["/dev/nvidia0"])],
            pids_not_scanned: 1,
            ..Default::default()
        }));
        let c = &check_device_holders(&f, &g, &r(None))[0];
        assert!(
            c.evidence.starts_with("1 process(es) hold /dev/nvidia0"),
            "{}",
            c.evidence
        );
    }
}
