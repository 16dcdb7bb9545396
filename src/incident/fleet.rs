//! A fleet's nodes judged together, as `scan_gpu_nodes` ranks them: each node's outcome counted by its
//! incidents (one fault once), the nodes that need attention ranked (critical, then failed probes, then
//! warnings), the causes several share, and the racks whose fabric fault shows on several trays. Pure
//! interpretation of what the probes and the API server said: no I/O, no clock.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::platform::{PlatformMark, clean};
use super::rack::{self, NodeInDomain, RackHints, RackIncident, RackSource};
use crate::finding::{ActionKind, Finding, Incident, Severity, Verdict};

/// Nodes named per shared cause; the rest of them are in the ranked list.
pub const GROUP_NAMES: usize = 5;
/// Signals kept per incident in the structured result (the node's `get_gpu_health` has them all).
pub const SIGNALS_KEPT: usize = 8;
/// Evidence lines kept per signal, and characters per line.
pub const EVIDENCE_LINES: usize = 3;
pub const EVIDENCE_CHARS: usize = 200;
/// Ranked nodes of a page whose incidents keep their signals and evidence; the others keep what and where.
pub const DETAILED_NODES: usize = 10;
/// Characters of signals and evidence a page keeps in all: the structured result stays far below its
/// 48 KiB however many incidents the detailed nodes have.
pub const DETAIL_BUDGET: usize = 16_000;

/// How one node's probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// The probe answered with a report.
    Ok,
    /// No report: the probe failed, timed out or could not start.
    Failed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct SeverityCounts {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

/// One signal of an incident as the scan keeps it: what it is and its evidence, bounded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanSignal {
    pub code: String,
    pub severity: Severity,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// A finding (an incident, where the node judges incidents) as the scan lists it: what and where, its
/// evidence, and for an incident seen through several signals each signal with its evidence, bounded
/// (`get_gpu_health` on the node has all of it).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanFinding {
    pub code: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    pub summary: String,
    /// What it calls for (how disruptive: equally critical nodes rank by it).
    pub action: ActionKind,
    /// Its evidence (a finding, or an incident of one signal): at most 3 lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// An incident's signals in causal order, each with its evidence: at most 8.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<ScanSignal>,
    /// Signals and evidence lines left out here to keep the answer bounded (the node's own tools have them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cut: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One node's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NodeScanResult {
    pub node: String,
    pub status: ScanStatus,
    /// The node verdict the probe reported, when its report has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The most severe finding's severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_severity: Option<Severity>,
    pub counts: SeverityCounts,
    /// Warning and critical findings as the probe reported them, most severe first.
    pub findings: Vec<ScanFinding>,
    /// Why there is no report (status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The multi-node NVLink domain (an NVL72 rack) of its GPUs, from the probe (NVML's cluster UUID and
    /// clique) or else what else names the rack (`rack_source`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<String>,
    /// What named `nvlink_domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack_source: Option<RackSource>,
    pub millis: u64,
}

/// A node that needs attention, in rank order, with its findings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttentionEntry {
    /// 1 = look at this node first.
    pub rank: usize,
    /// Why: the top finding, or the probe error.
    pub reason: String,
    #[serde(flatten)]
    pub result: NodeScanResult,
}

/// A cause several nodes share (the same top finding code, or the same probe error).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ScanGroup {
    /// `critical`, `failed` or `warning`.
    pub class: String,
    /// The finding code, or the probe error's first line.
    pub cause: String,
    pub nodes_count: usize,
    /// The first few nodes in rank order.
    pub nodes: Vec<String>,
}

/// A finding or an incident with its signals, as a node's outcome is counted from.
#[derive(Debug, Clone)]
pub struct Counted {
    pub finding: Finding,
    /// An incident's signals (empty for a plain finding).
    pub signals: Vec<Finding>,
}

impl From<Finding> for Counted {
    fn from(finding: Finding) -> Self {
        Counted {
            finding,
            signals: Vec::new(),
        }
    }
}

/// An incident as the scan counts it: one finding, with its signals.
pub fn incident_entry(i: &Incident) -> Counted {
    Counted {
        finding: Finding {
            code: i.code.clone(),
            severity: i.severity,
            gpu: i.gpu,
            gpu_uuid: i.gpu_uuid.clone(),
            summary: i.summary.clone(),
            evidence: Vec::new(),
            action: i.action.clone(),
            about: Vec::new(),
            first_seen: i.first_seen.clone(),
        },
        signals: i.signals.clone(),
    }
}

/// The platform's marks alone, each its own incident.
pub fn own_incidents(marks: &[PlatformMark]) -> Vec<Counted> {
    marks
        .iter()
        .map(|m| incident_entry(&m.incident()))
        .collect()
}

/// A node that answered, counted by its findings' severities.
pub fn counted(node: String, mut findings: Vec<Counted>, millis: u64) -> NodeScanResult {
    let mut counts = SeverityCounts::default();
    for f in &findings {
        count(&mut counts, f.finding.severity);
    }
    let worst_severity = findings.iter().map(|f| f.finding.severity).max();
    findings.retain(|f| f.finding.severity >= Severity::Warning);
    findings.sort_by_key(|f| std::cmp::Reverse((f.finding.severity, f.finding.action.kind)));
    NodeScanResult {
        node,
        status: ScanStatus::Ok,
        verdict: None,
        worst_severity,
        counts,
        findings: findings.into_iter().map(brief).collect(),
        error: None,
        nvlink_domain: None,
        rack_source: None,
        millis,
    }
}

fn count(c: &mut SeverityCounts, s: Severity) {
    match s {
        Severity::Critical => c.critical += 1,
        Severity::Warning => c.warning += 1,
        Severity::Info => c.info += 1,
    }
}

/// Findings the API server's objects say about a node (its ComputeDomain's IMEX daemon), beside the probe's.
pub fn add_findings(r: &mut NodeScanResult, extra: Vec<Finding>) {
    for f in &extra {
        count(&mut r.counts, f.severity);
    }
    r.worst_severity = r.worst_severity.max(extra.iter().map(|f| f.severity).max());
    r.findings.extend(
        extra
            .into_iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(|f| brief(f.into())),
    );
    r.findings
        .sort_by_key(|f| std::cmp::Reverse((f.severity, f.action)));
}

/// Evidence as the scan keeps it: at most [`EVIDENCE_LINES`] lines of [`EVIDENCE_CHARS`], each one line
/// with control and bidirectional characters removed (node data); returns the lines and how many were cut.
fn bounded_evidence(ev: &[String]) -> (Vec<String>, usize) {
    let kept = ev
        .iter()
        .take(EVIDENCE_LINES)
        .map(|l| clean(l, EVIDENCE_CHARS))
        .collect();
    (kept, ev.len().saturating_sub(EVIDENCE_LINES))
}

fn brief(c: Counted) -> ScanFinding {
    let f = c.finding;
    let mut cut = 0;
    // One signal is the finding itself: its evidence is the finding's, said once.
    let (evidence, signals) = match c.signals.as_slice() {
        [] => (f.evidence.as_slice(), &[][..]),
        [one] => (one.evidence.as_slice(), &[][..]),
        many => (&[][..], many),
    };
    let (evidence, n) = bounded_evidence(evidence);
    cut += n;
    let signals = signals
        .iter()
        .take(SIGNALS_KEPT)
        .map(|s| {
            let (evidence, n) = bounded_evidence(&s.evidence);
            cut += n;
            ScanSignal {
                code: s.code.clone(),
                severity: s.severity,
                summary: s.summary.clone(),
                evidence,
            }
        })
        .collect();
    cut += c.signals.len().saturating_sub(SIGNALS_KEPT.max(1));
    ScanFinding {
        code: f.code,
        severity: f.severity,
        gpu: f.gpu,
        summary: f.summary,
        action: f.action.kind,
        evidence,
        signals,
        cut,
    }
}

/// Keeps the signals and evidence of the page's most urgent findings: those of its first
/// [`DETAILED_NODES`] entries, in rank order, while they fit in [`DETAIL_BUDGET`] characters; the others keep
/// what and where, counting in their `cut` what was left out. Returns how many findings lost their detail.
pub fn bound_details(page: &mut [AttentionEntry]) -> usize {
    let mut budget = DETAIL_BUDGET;
    let mut stripped = 0;
    for (i, e) in page.iter_mut().enumerate() {
        for f in &mut e.result.findings {
            let size = f.evidence.iter().map(String::len).sum::<usize>()
                + f.signals
                    .iter()
                    .map(|s| {
                        s.code.len()
                            + s.summary.len()
                            + s.evidence.iter().map(String::len).sum::<usize>()
                    })
                    .sum::<usize>();
            if i < DETAILED_NODES && size <= budget {
                budget -= size;
                continue;
            }
            let n = f.evidence.len()
                + f.signals
                    .iter()
                    .map(|s| 1 + s.evidence.len())
                    .sum::<usize>();
            if n > 0 {
                f.cut += n;
                f.evidence.clear();
                f.signals.clear();
                stripped += 1;
            }
        }
    }
    stripped
}

/// `GPU n` for a finding whose summary does not already name its GPU.
pub fn gpu_note(f: &ScanFinding) -> Option<String> {
    let g = format!("GPU {}", f.gpu?);
    (!f.summary.contains(&g)).then_some(g)
}

/// How urgently a ranked node needs attention, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Urgency {
    Critical,
    /// The probe failed: nothing is known, which is worse than a warning.
    Failed,
    Warning,
}

impl Urgency {
    /// As a group's `class` names it.
    pub fn name(self) -> &'static str {
        match self {
            Urgency::Critical => "critical",
            Urgency::Failed => "failed",
            Urgency::Warning => "warning",
        }
    }
}

/// A node's urgency; `None` for a healthy node.
pub fn urgency(r: &NodeScanResult) -> Option<Urgency> {
    match (r.status, r.worst_severity) {
        // A node its platform marks critical is critical, whether or not the probe answered.
        (_, Some(Severity::Critical)) => Some(Urgency::Critical),
        (ScanStatus::Failed, _) => Some(Urgency::Failed),
        (_, Some(Severity::Warning)) => Some(Urgency::Warning),
        _ => match r.verdict {
            Some(Verdict::Unhealthy) => Some(Urgency::Critical),
            Some(Verdict::Degraded) => Some(Urgency::Warning),
            _ => None,
        },
    }
}

/// What a ranked node is grouped by: its top finding's code, or its probe error's first line.
pub fn cause(r: &NodeScanResult) -> String {
    match (&r.error, r.findings.first()) {
        (Some(e), _) => {
            // The node's own name is in the message; without it, one cause on many nodes reads alike.
            let line = e.lines().next().unwrap_or(e);
            let line = line
                .strip_prefix(&format!("probe of `{}` failed: ", r.node))
                .unwrap_or(line);
            format!("probe failed: {}", line.replace(&r.node, "<node>"))
        }
        (None, Some(f)) => f.code.clone(),
        (None, None) => format!("verdict {:?}", r.verdict.unwrap_or(Verdict::Unknown)),
    }
}

/// Critical first, then failed probes, then warnings; more findings first within a class; then by name.
pub fn rank(results: Vec<NodeScanResult>) -> Vec<AttentionEntry> {
    let mut picked: Vec<(Urgency, NodeScanResult)> = results
        .into_iter()
        .filter_map(|r| urgency(&r).map(|u| (u, r)))
        .collect();
    // Within a class: more faults first, then the more disruptive first action (a GPU off the bus before a
    // flapping port), then by name.
    let top = |r: &NodeScanResult| r.findings.first().map(|f| f.action);
    picked.sort_by(|(ca, a), (cb, b)| {
        ca.cmp(cb)
            .then((b.counts.critical, b.counts.warning).cmp(&(a.counts.critical, a.counts.warning)))
            .then(top(b).cmp(&top(a)))
            .then(a.node.cmp(&b.node))
    });
    picked
        .into_iter()
        .enumerate()
        .map(|(i, (_, r))| AttentionEntry {
            rank: i + 1,
            reason: match (&r.error, r.findings.first()) {
                (Some(_), Some(f)) => format!("{}: {}; {}", f.code, f.summary, cause(&r)),
                (Some(_), None) => cause(&r),
                (None, Some(f)) => {
                    let more = r.findings.len() - 1;
                    let gpu = gpu_note(f).map(|g| format!(" ({g})")).unwrap_or_default();
                    if more > 0 {
                        format!("{}{gpu}: {} (+{more} more)", f.code, f.summary)
                    } else {
                        format!("{}{gpu}: {}", f.code, f.summary)
                    }
                }
                (None, None) => cause(&r),
            },
            result: r,
        })
        .collect()
}

/// Causes shared by two or more ranked nodes, in the order their first node ranks.
pub fn groups(ranked: &[AttentionEntry]) -> Vec<ScanGroup> {
    let mut out: Vec<ScanGroup> = Vec::new();
    for a in ranked {
        let class = urgency(&a.result).unwrap_or(Urgency::Warning).name();
        let cause = cause(&a.result);
        match out
            .iter_mut()
            .find(|g| g.class == class && g.cause == cause)
        {
            Some(g) => {
                g.nodes_count += 1;
                if g.nodes.len() < GROUP_NAMES {
                    g.nodes.push(a.result.node.clone());
                }
            }
            None => out.push(ScanGroup {
                class: class.to_string(),
                cause,
                nodes_count: 1,
                nodes: vec![a.result.node.clone()],
            }),
        }
    }
    out.retain(|g| g.nodes_count > 1);
    out
}

/// Names each node's rack: the probe's NVLink domain (NVML) where it read one, else what else names the
/// rack (`hints`, per node), by [`rack::assign`].
pub fn place_in_racks(results: &mut [NodeScanResult], hints: &BTreeMap<String, RackHints>) {
    let none = RackHints::default();
    let candidates: Vec<Vec<(RackSource, String)>> = results
        .iter()
        .map(|r| {
            let mut c = rack::candidates(
                r.nvlink_domain.as_deref(),
                hints.get(&r.node).unwrap_or(&none),
            );
            // A topology label names a place, not an NVLink domain: it groups only a node known to be in
            // one (another source names it) or whose GPUs show a fabric fault; an 8-GPU node with a GKE
            // sub-block label is in no rack.
            let fabric = r
                .findings
                .iter()
                .any(|f| rack::RACK_CODES.iter().any(|(c, _)| *c == f.code));
            if !fabric && c.iter().all(|(s, _)| *s == RackSource::TopologyLabel) {
                c.clear();
            }
            c
        })
        .collect();
    for (r, placed) in results.iter_mut().zip(rack::assign(&candidates)) {
        (r.rack_source, r.nvlink_domain) = match placed {
            Some((s, d)) => (Some(s), Some(d)),
            None => (None, None),
        };
    }
}

/// The fabric faults several nodes of one rack share: one incident of the rack each.
pub fn racks(results: &[NodeScanResult]) -> Vec<RackIncident> {
    let nodes: Vec<NodeInDomain> = results
        .iter()
        .map(|r| NodeInDomain {
            node: &r.node,
            domain: r.nvlink_domain.as_deref(),
            source: r.rack_source.unwrap_or(RackSource::Nvml),
            incidents: r
                .findings
                .iter()
                .map(|f| (f.code.as_str(), f.severity))
                .collect(),
        })
        .collect();
    rack::rack_incidents(&nodes)
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
