//! The verdicts: each GPU's summary and findings from what the analysis kept for it, the node-level
//! findings (NVSwitch SXids, crash dumps, devices not tied to a GPU), and the node's verdict over them.

use super::gpu_identity::{GpuIdentity, gpu_label};
use super::gpu_state::GpuEventState;
use crate::finding::{Action, ActionKind, Finding, Verdict};
use crate::kernel_log::contract::{
    DecodedDetail, EventKind, GpuXidSummary, LogSummary, NodeXidVerdict, RecoveryAction,
};
use crate::kernel_log::correlate;
use crate::kernel_log::event::Pending;

fn recovery_name(v: u32) -> String {
    correlate::recovery_action_name(v).to_string()
}

/// One GPU's part of the report: its summary and its findings.
pub(super) struct GpuVerdict {
    pub summary: GpuXidSummary,
    pub findings: Vec<Finding>,
}

/// NVML's recovery action 5 and its name in an Xid 154 line (`Recover IMEX Domain`).
const RECOVER_IMEX_DOMAIN: u32 = 5;
const IMEX_RECOVERY: &str = "now Recover IMEX Domain";
use crate::finding::IMEX_KEY;

/// The driver's recovery action for a GPU (NVML field 230, nvml.h's `nvmlDeviceGpuRecoveryAction_t`) as a
/// finding; `None` for 0 (no recovery). Health and the kernel log both make it here, so a value reads alike.
pub fn recovery_action_finding(
    v: u32,
    index: Option<u32>,
    uuid: Option<String>,
    pci: Option<&str>,
) -> Option<Finding> {
    let class = correlate::recovery_class(v).filter(|_| v != 0)?;
    let label = gpu_label(index, pci);
    Some(Finding {
        code: "gpu.recovery_action".into(),
        severity: class.severity,
        gpu: index,
        gpu_uuid: uuid,
        // The step is the action's; the sentence carries it only where the action is the generic one
        // (the IMEX domain's recovery, an action this build does not know).
        summary: if class.action == ActionKind::Investigate {
            format!(
                "the driver reports recovery action {v} ({}) for {label}: {}",
                recovery_name(v),
                class.detail
            )
        } else {
            format!(
                "the driver reports recovery action {v} ({}) for {label}",
                recovery_name(v)
            )
        },
        evidence: vec![format!("nvml field 230 (GPU_RECOVERY_ACTION) = {v}")],
        action: Action {
            kind: class.action,
            detail: correlate::action_detail(class.action, index, pci),
        },
        about: if v == RECOVER_IMEX_DOMAIN {
            vec![IMEX_KEY.into()]
        } else {
            Vec::new()
        },
        first_seen: None,
    })
}

/// Per-GPU summary and findings from what the analysis kept for it.
pub(super) fn summarize_gpu(row: &GpuIdentity, mut st: GpuEventState) -> GpuVerdict {
    let label = gpu_label(row.index, row.pci.as_deref());
    // Fallen off the bus is Xid 79's condition: on a GPU that also logged a 79, one finding.
    if st.has_79
        && let Some(fallen) = st.tallies.remove("gpu.fallen_off_bus")
    {
        match st.tallies.get_mut("xid.79") {
            Some(a) => a.merge(fallen),
            None => {
                st.tallies.insert("xid.79".into(), fallen);
            }
        }
    }
    let mut findings = Vec::new();
    for (code, a) in &st.tallies {
        let first = &a.first;
        let what = describe(first);
        let class = a.class();
        let mut evidence: Vec<String> = Vec::new();
        if let (Some(i), Some(d)) = (
            &first.event.immediate_action,
            &first.event.investigatory_action,
        ) {
            evidence.push(format!(
                "catalog immediate_action = {i}, investigatory_action = {d}"
            ));
        } else if first.event.kind == EventKind::Xid {
            evidence
                .push(format!("catalog_status = {:?}", first.detail.catalog_status).to_lowercase());
        } else if let Some(source) = amd_source(first) {
            evidence.push(source);
        }
        evidence.extend(a.evidence());
        findings.push(Finding {
            code: code.clone(),
            severity: class.severity,
            gpu: row.index,
            gpu_uuid: row.uuid.clone(),
            summary: format!(
                "{what} seen {}× on {label}: {}",
                a.count,
                said_once(&what, &class.detail)
            ),
            evidence,
            action: Action {
                kind: class.action,
                detail: action_detail(first, class.action, row.index, row.pci.as_deref()),
            },
            // The driver asking to recover the IMEX domain is about the node's IMEX daemon: it joins
            // that incident (`crate::incident::rules`, `imex.domain`).
            about: if code == "xid.154" && class.detail.contains(IMEX_RECOVERY) {
                vec![IMEX_KEY.into()]
            } else {
                Vec::new()
            },
            first_seen: first.ts.and_then(crate::kernel_log::time::rfc3339),
        });
    }

    // The driver's own verdict (NVML field 230) drives a finding of its own.
    if let Some(v) = row.recovery_action
        && let Some(f) = recovery_action_finding(v, row.index, row.uuid.clone(), row.pci.as_deref())
    {
        findings.push(f);
    }

    let verdict = Verdict::from_findings(&findings, true);
    let (action, evidence) = pick_action(&findings);
    let (bursts, bursts_not_listed) = st.history.bursts();
    let summary = GpuXidSummary {
        pci_bus_id: row.pci.clone(),
        index: row.index,
        uuid: row.uuid.clone(),
        uuid_source: row.uuid_source.map(str::to_string),
        recovery_action: row.recovery_action.map(|v| RecoveryAction {
            value: v,
            name: recovery_name(v),
        }),
        last_recovery_transition: st.last_transition,
        events: st.events,
        xids: st.counts.into_values().collect(),
        bursts,
        bursts_not_listed,
        fallen_off_bus: st.fallen,
        verdict,
        action,
        evidence,
    };
    GpuVerdict { summary, findings }
}

/// The step for an action, in the vocabulary of the event's vendor (its kernel-log family's).
fn action_detail(p: &Pending, kind: ActionKind, index: Option<u32>, pci: Option<&str>) -> String {
    correlate::of(p.event.kind).step(kind, index, pci)
}

/// Where a finding's meaning comes from, as an evidence line, where its family's catalog says.
fn amd_source(p: &Pending) -> Option<String> {
    correlate::of(p.event.kind).catalog_source(p)
}

/// A class's detail without the catalog description its title already gives in parentheses (Xid 94's
/// `Contained memory error: the driver says …` under `Xid 94 … (Contained memory error)`): the detail
/// stands alone elsewhere (a workload's reason), the summary says it once.
fn said_once<'a>(title: &str, detail: &'a str) -> &'a str {
    let desc = title
        .strip_suffix(')')
        .and_then(|t| t.rfind('(').map(|o| &t[o + 1..]))
        .filter(|d| !d.is_empty());
    desc.and_then(|d| detail.strip_prefix(d))
        .and_then(|t| t.strip_prefix(": "))
        .unwrap_or(detail)
}

fn describe(p: &Pending) -> String {
    correlate::title(p)
}

/// The most disruptive action among the findings of the highest severity, and their summaries.
fn pick_action(findings: &[Finding]) -> (Action, Vec<String>) {
    let Some(worst) = findings.iter().map(|f| f.severity).max() else {
        return (
            Action {
                kind: ActionKind::None,
                detail: "no kernel-log event asks for action".into(),
            },
            Vec::new(),
        );
    };
    let top: Vec<&Finding> = findings.iter().filter(|f| f.severity == worst).collect();
    let best = top
        .iter()
        .max_by_key(|f| f.action.kind)
        .map(|f| f.action.clone())
        .unwrap_or(Action {
            kind: ActionKind::None,
            detail: String::new(),
        });
    let evidence = top
        .iter()
        .map(|f| format!("{}: {}", f.code, f.summary))
        .collect();
    (best, evidence)
}

/// Findings not tied to one GPU: SXids (NVSwitch), crash dumps, init failures on unknown devices.
pub(super) fn node_level_findings(mut st: GpuEventState) -> Vec<Finding> {
    st.tally_order
        .iter()
        .filter_map(|key| {
            let a = st.tallies.remove(key)?;
            let code = key.split('@').next().unwrap_or(key).to_string();
            let first = &a.first;
            let class = a.class();
            let whom = match (&first.event.kind, &first.event.pci_bus_id) {
                (EventKind::Sxid, Some(pci)) => match &first.detail.decoded {
                    Some(DecodedDetail::Sxid {
                        device: Some(d), ..
                    }) => format!(" on {d} ({pci})"),
                    _ => format!(" on the NVSwitch at {pci}"),
                },
                (_, Some(pci)) => format!(" on {pci}"),
                _ => String::new(),
            };
            Some(Finding {
                code,
                severity: class.severity,
                gpu: None,
                gpu_uuid: None,
                summary: format!(
                    "{}{whom} seen {}×: {}",
                    describe(first),
                    a.count,
                    class.detail
                ),
                evidence: a.evidence(),
                action: Action {
                    kind: class.action,
                    detail: action_detail(first, class.action, None, None),
                },
                // An NVSwitch's SXid joins the NVLink incident of a GPU whose link ends on that switch.
                about: match (&first.event.kind, &first.event.pci_bus_id) {
                    (EventKind::Sxid, Some(pci)) => vec![format!(
                        "nvswitch:{}",
                        crate::pci::normalize_bus_id(pci).unwrap_or_else(|| pci.clone())
                    )],
                    _ => Vec::new(),
                },
                first_seen: first.ts.and_then(crate::kernel_log::time::rfc3339),
            })
        })
        .collect()
}

pub(super) fn node_verdict(
    findings: &[Finding],
    complete: bool,
    log: &LogSummary,
) -> NodeXidVerdict {
    let verdict = Verdict::from_findings(findings, complete);
    let (mut action, mut evidence) = pick_action(findings);
    if let Some(e) = &log.error {
        evidence.push(format!(
            "kernel log not read: {:?}{}",
            e.error,
            e.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
        if findings.is_empty() {
            action.detail =
                "the kernel log could not be read; nothing can be said about XIDs".into();
        }
    }
    if log.truncated {
        evidence
            .push("the kernel log was truncated while reading: older events may be missing".into());
    }
    NodeXidVerdict {
        verdict,
        action,
        evidence,
    }
}

#[cfg(test)]
mod tests {
    /// The catalog description in the title's parentheses is not said again in the summary's detail.
    #[test]
    fn the_catalog_description_is_said_once() {
        let t = "Xid 94 ROBUST_CHANNEL_CONTAINED_ERROR (Contained memory error)";
        assert_eq!(
            super::said_once(t, "Contained memory error: the driver says RST: No"),
            "the driver says RST: No"
        );
        assert_eq!(super::said_once(t, "the driver says"), "the driver says");
        assert_eq!(
            super::said_once("Xid 13", "Contained memory error: x"),
            "Contained memory error: x"
        );
    }
}
