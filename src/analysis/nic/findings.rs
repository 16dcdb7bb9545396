//! The node-level findings: one per rule, naming every port that tripped it with its evidence.

use crate::analysis::{canonical_bus_id, finding};
use crate::facts::RdmaDeviceFacts;
use crate::finding::{Finding, Severity};

use std::collections::BTreeMap;

use super::port_rules::RULES;
use super::thresholds::thresholds;

/// What one rule concluded about one port, as the node-level finding lists it.
pub(super) struct PortFinding {
    pub(super) severity: Severity,
    /// The port with its PCI address and GPUs, for the summary.
    pub(super) port: String,
    /// `mlx5_3/1`, to tell evidence lines apart when a finding names several ports.
    pub(super) label: String,
    pub(super) evidence: Vec<String>,
    /// A RoCE port (link layer Ethernet): no subnet manager, and its link is its netdev's.
    pub(super) ethernet: bool,
}

/// A down RoCE port's action: InfiniBand's (`ibstat`, the subnet manager) does not apply to it.
const ROCE_DOWN_DETAIL: &str = "check the cable, transceiver and switch port (`ip link` on its netdev, `rdma link`, the switch's port state); RoCE has no subnet manager to wait for";

/// The evidence of every port a finding names (prefixed by the port when there are several), then the
/// thresholds once.
fn evidence_of(list: &[PortFinding], code: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .flat_map(|h| {
            h.evidence.iter().map(move |e| {
                if list.len() > 1 {
                    format!("{}: {e}", h.label)
                } else {
                    e.clone()
                }
            })
        })
        .collect();
    out.extend(thresholds(code));
    out
}

/// `mlx5_3/1 (0000:5c:00.0, serves GPU 3)`.
pub(super) fn describe_port(label: &str, d: &RdmaDeviceFacts, gpus: &[u32]) -> String {
    let mut parts = Vec::new();
    if let Some(b) = canonical_bus_id(&d.pci_bus_id).ok() {
        parts.push(b.clone());
    }
    if !gpus.is_empty() {
        let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
        parts.push(format!("serves GPU {}", list.join(", ")));
    }
    if parts.is_empty() {
        label.to_string()
    } else {
        format!("{label} ({})", parts.join(", "))
    }
}

/// One finding per rule tripped, in the order of [`RULES`], naming every port that tripped it.
pub(super) fn rule_findings(hits: &BTreeMap<&'static str, Vec<PortFinding>>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for rule in RULES {
        let Some(list) = hits.get(rule.code) else {
            continue;
        };
        let severity = list
            .iter()
            .map(|h| h.severity)
            .max()
            .unwrap_or(Severity::Warning);
        let names: Vec<&str> = list.iter().map(|h| h.port.as_str()).collect();
        let one = if list.len() == 1 { "port" } else { "ports" };
        let mut f = finding(
            rule.code,
            severity,
            None,
            format!("RDMA {one} {}: {}.", names.join("; "), rule.what),
            evidence_of(list, rule.code),
            rule.kind,
            if rule.code == "nic.port_down" && list.iter().all(|h| h.ethernet) {
                ROCE_DOWN_DETAIL.to_string()
            } else {
                rule.detail.to_string()
            },
        );
        // Each port by name, so that the findings of one port make one incident.
        f.about = list.iter().map(|h| format!("nic:{}", h.label)).collect();
        findings.push(f);
    }
    findings
}
