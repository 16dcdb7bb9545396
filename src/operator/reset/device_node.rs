//! Who holds one device node, for a vendor whose driver resets through sysfs (Gaudi's `hard_reset`,
//! Neuron's `reset`): the holders the node-wide scan found, each named with its pod where its cgroup
//! says, and what the scan could not see as unknown, never as free.

use super::request::ResetRequest;
use crate::facts::{DeviceHolderFacts, DeviceHoldersFacts, GpuFacts, NodeFacts, Reading};
use crate::incident::platform::clean;
use crate::operator::Check;
use crate::operator::scan::{self, Said};

/// The check's name in every such preflight.
const NAME: &str = "device_node_holders";

/// `pid 4242 (python3) in pod <uid>`: the name cleaned and bounded (a tenant names it, so it is never a
/// verdict), the pod from the process's cgroup (the kubelet's path) where the probe read it; `monitor`
/// is a vendor tool's process name and what it is, said beside it (the name proves nothing).
fn label(facts: &NodeFacts, h: &DeviceHolderFacts, monitor: Option<(&str, &str)>) -> String {
    let pod = crate::operator::host_process(facts, h.pid)
        .and_then(|p| p.cgroup.ok())
        .and_then(|c| crate::attribution::cgroup::parse_proc_cgroup(c).ok())
        .and_then(|a| a.pod_uid)
        .map(|u| format!(" in pod {u}"))
        .unwrap_or_default();
    match h.name.ok().map(|n| clean(n, 32)) {
        Some(n) if monitor.is_some_and(|(m, _)| m == n) => {
            let what = monitor.map_or("", |(_, w)| w);
            format!("pid {} ({n}){pod} [{what}]", h.pid)
        }
        Some(n) => format!("pid {} ({n}){pod}", h.pid),
        None => format!("pid {}{pod}", h.pid),
    }
}

/// What the holder scan says of device node `node`: a holder is yes; a process the scan did not see
/// (`scan::gaps`) is unknown.
pub(super) fn said_on(
    facts: &NodeFacts,
    scan: &DeviceHoldersFacts,
    node: &str,
    self_pid: Option<u32>,
    monitor: Option<(&str, &str)>,
) -> Said {
    let on: Vec<String> = scan
        .holders
        .iter()
        .filter(|h| Some(h.pid) != self_pid)
        .filter(|h| h.devices.iter().any(|d| d == node))
        .map(|h| label(facts, h, monitor))
        .collect();
    let gaps = scan::gaps(scan);
    if !on.is_empty() {
        Said::Yes(on)
    } else if !gaps.is_empty() {
        Said::Unknown(gaps)
    } else {
        Said::No
    }
}

/// The preflight's check of `node` for GPU `g`: a holder blocks (`why_free` says why the device must be
/// free for this driver's reset); a scan that could not see everything blocks unless a person overrode
/// it in the confirmation.
pub(super) fn check(
    facts: &NodeFacts,
    g: &GpuFacts,
    node: &str,
    req: &ResetRequest,
    why_free: &str,
    monitor: Option<(&str, &str)>,
) -> Check {
    let scan: &DeviceHoldersFacts = match &facts.device_holders {
        Some(Reading::Ok(h)) => h,
        None => {
            return Check::block(
                NAME,
                format!(
                    "the holders of {node} were not collected: cannot verify the device is free"
                ),
            );
        }
        Some(Reading::Err(e)) => {
            return Check::block(
                NAME,
                format!(
                    "cannot scan /proc for holders of {node} ({})",
                    crate::analysis::error_name(e.error)
                ),
            );
        }
    };
    match said_on(facts, scan, node, req.self_pid, monitor) {
        Said::Yes(on) => Check::block(
            NAME,
            format!(
                "{} process(es) hold {node} of GPU {}: {}. {why_free}: stop them first (kill_gpu_process, \
                 or drain the pods)",
                on.len(),
                g.index,
                on.join("; ")
            ),
        ),
        Said::Unknown(items) => unknown(NAME, node, items, req),
        Said::No => Check::pass(NAME, format!("no process holds {node}")),
    }
}

/// Check `name` of device node `node` where no process the scan read holds it but the scan did not see
/// everything (`items`, [`scan::gaps`]): a block a person may override in the confirmation, the same for
/// every vendor's reset.
pub(super) fn unknown(name: &str, node: &str, items: Vec<String>, req: &ResetRequest) -> Check {
    let text = format!(
        "no process the scan read holds {node}, but the scan is incomplete: {}",
        items.join("; ")
    );
    let mut c = if req.override_unknown {
        Check::warn(
            name,
            format!("OVERRIDDEN by the person who confirmed: {text}"),
        )
    } else {
        let mut c = Check::block(
            name,
            format!(
                "{text}. If you know they do not use this device, have a person override this in the \
                 confirmation (a client with elicitation or input requests; the `confirm` argument cannot \
                 override)"
            ),
        );
        c.unknown_sources = vec![format!("open {node} files (the /proc fd scan)")];
        c
    };
    c.unknown_holders = items;
    c
}

/// The processes whose fd tables could not be read for another reason than a refusal (a loop, an I/O
/// error; a process that exited is not counted): said, not judged (a refusal is, in [`scan::gaps`]).
pub(super) fn unreadable(scan: &DeviceHoldersFacts) -> Option<Check> {
    let denied = u32::try_from(scan.denied_pids.len()).unwrap_or(u32::MAX);
    let n = scan.unreadable_pids.saturating_sub(denied);
    (n > 0).then(|| {
        Check::warn(
            "holder_scan_complete",
            format!(
                "the fd tables of {n} process(es) could not be read (not for lack of permission: a loop, \
                 an I/O error): holders among them are not seen"
            ),
        )
    })
}
