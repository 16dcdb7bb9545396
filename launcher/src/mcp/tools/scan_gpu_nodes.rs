//! `scan_gpu_nodes`: one check on many nodes, bounded concurrency, per-node timeout, and a ranking of the
//! nodes that need attention. The ranking orders nodes by the severities the probe reported; it does not
//! judge facts itself.

use std::time::Instant;

use gpu_diag::command::Command;
use std::collections::BTreeMap;

use gpu_diag::finding::{ActionKind, Finding, Incident, Judged, Severity, Verdict};
use gpu_diag::incident::platform::{self, PlatformMark};
use gpu_diag::incident::rack::{NodeInDomain, RackIncident, rack_incidents};
use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mcp::framework::fanout::probe_nodes;
use crate::mcp::framework::node_mark::mark_flag;
use crate::mcp::render::text::sev_label;
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::MAX_CONTEXT_LEN;
use crate::mcp::framework::{Cx, Hints, Tool, ToolError};

pub struct ScanGpuNodes;

/// What `scan_gpu_nodes` checks on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum ScanCheck {
    /// Full health verdict (thermal, power, ECC, NVLink, XID, ...).
    #[default]
    Health,
    /// XID/SXid events in the kernel log.
    Xid,
    /// ECC counters and row remapping.
    Ecc,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanArgs {
    /// What to check on every node: `health` (default), `xid` or `ecc`.
    #[serde(default)]
    pub check: ScanCheck,
    /// Kubernetes label selector choosing the nodes (default: every GPU node).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
    /// How many nodes to probe at once (default 16).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 128))]
    pub concurrency: Option<u32>,
    /// How many of the ranked nodes to detail (default 25): the answer stays small on any fleet.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// Start the ranked list at this position (0 = the most urgent), to page through a long list.
    #[serde(default)]
    #[schemars(with = "u32")]
    pub offset: Option<u32>,
    /// Also name the healthy nodes (by default they are only counted).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub show_healthy: Option<bool>,
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

pub const DEFAULT_CONCURRENCY: u32 = 16;
pub const DEFAULT_LIMIT: u32 = 25;
/// Nodes named per shared cause; the rest of them are in the ranked list.
const GROUP_NAMES: usize = 5;

/// How one node's probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScanStatus {
    /// The probe answered with a report.
    Ok,
    /// No report: the probe failed, timed out or could not start.
    Failed,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct SeverityCounts {
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
}

/// A finding as the scan lists it: what and where. Its evidence and action are one node tool away
/// (`get_gpu_health`, `analyze_xid_errors` or `snapshot_ecc` on the node).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanFinding {
    pub code: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    pub summary: String,
    /// What it calls for (how disruptive: equally critical nodes rank by it).
    pub action: ActionKind,
}

/// One node's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
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
    /// The multi-node NVLink domain (an NVL72 rack) of its GPUs, from the probe or else GFD's clique label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<String>,
    pub millis: u64,
}

/// A node that needs attention, in rank order, with its findings.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttentionEntry {
    /// 1 = look at this node first.
    pub rank: usize,
    /// Why: the top finding, or the probe error.
    pub reason: String,
    #[serde(flatten)]
    pub result: NodeScanResult,
}

/// A cause several nodes share (the same top finding code, or the same probe error).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScanGroup {
    /// `critical`, `failed` or `warning`.
    pub class: String,
    /// The finding code, or the probe error's first line.
    pub cause: String,
    pub nodes_count: usize,
    /// The first few nodes in rank order.
    pub nodes: Vec<String>,
}

/// `scan_gpu_nodes` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScanOutput {
    pub check: ScanCheck,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    pub concurrency: u32,
    pub nodes_total: usize,
    pub nodes_ok: usize,
    pub nodes_failed: usize,
    /// Nodes that answered with no warning or critical finding.
    pub nodes_healthy: usize,
    /// Nodes that need attention, all of them (the ranked list below may be one page of it).
    pub needs_attention_total: usize,
    /// One fabric fault of a multi-node NVLink domain (an NVL72 rack) seen on several of its nodes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub racks: Vec<RackIncident>,
    /// Nodes per multi-node NVLink domain, where the nodes are in one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nvlink_domains: BTreeMap<String, usize>,
    /// Causes shared by two or more nodes that need attention, most urgent first.
    pub groups: Vec<ScanGroup>,
    /// Nodes to look at, most urgent first (critical findings, then failed probes, then warnings):
    /// positions `offset`.. of the ranking, at most `limit` of them.
    pub needs_attention: Vec<AttentionEntry>,
    pub offset: usize,
    pub limit: usize,
    /// Call again with this `offset` for the next page of the ranking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// The healthy nodes by name (only with `show_healthy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy_nodes: Option<Vec<String>>,
    /// Nodes carrying the scheduler mark of `mark_gpu_node` (the API server's view, whatever the probes
    /// found), with its reason and since when.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub marked: Vec<MarkedNode>,
    pub total_millis: u64,
}

/// A node with the mark of `mark_gpu_node`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MarkedNode {
    pub node: String,
    pub mark: crate::cluster::NodeMark,
}

impl Tool for ScanGpuNodes {
    type Args = ScanArgs;
    type Output = ScanOutput;
    const NAME: &'static str = "scan_gpu_nodes";
    const TITLE: &'static str = "Scan many GPU nodes";
    const DESCRIPTION: &'static str = "Run one check (`health`, `xid` or `ecc`) on every GPU node (or those matching \
label_selector), several at a time, and rank the nodes that need attention (critical findings first, \
then nodes whose probe failed, then warnings). Returns the ranked nodes with their findings or probe errors \
(a page of `limit` from `offset`), causes shared by several nodes, and the count of healthy nodes (named \
with show_healthy=true). Use it to find the bad nodes in a fleet, e.g. after a failed multi-node training job.";
    const HINTS: Hints = Hints::READ_LIVE;
    // A fleet takes seconds to minutes: a task where the client can take one.
    const TASK: bool = true;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let started = Instant::now();
        let concurrency = a.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=128).contains(&concurrency) {
            return Err(ToolError::Invalid(format!(
                "`concurrency` must be between 1 and 128 (got {concurrency}); omit it for the default of {DEFAULT_CONCURRENCY}"
            )));
        }
        let limit = a.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=200).contains(&limit) {
            return Err(ToolError::Invalid(format!(
                "`limit` must be between 1 and 200 (got {limit}); omit it for the default of {DEFAULT_LIMIT}"
            )));
        }
        let mut marked = Vec::new();
        let mut platform: BTreeMap<String, Vec<PlatformMark>> = BTreeMap::new();
        let mut cliques: BTreeMap<String, String> = BTreeMap::new();
        // IMEX daemons their ComputeDomain reports not ready: only nodes a ComputeDomain runs on.
        let mut imex: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
        let mut nodes: Vec<String> = match &cx.env.cluster {
            Some(cluster) => {
                cx.check_context(a.context.as_deref())?;
                let listed = tokio::select! {
                    r = cluster.list_gpu_nodes(a.context.as_deref(), a.label_selector.as_deref()) => r,
                    _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
                };
                let listed = listed?;
                marked = listed
                    .iter()
                    .filter_map(|n| {
                        n.mark.clone().map(|mark| MarkedNode {
                            node: n.name.clone(),
                            mark,
                        })
                    })
                    .collect();
                platform = listed
                    .iter()
                    .filter(|n| !n.platform.is_empty())
                    .map(|n| (n.name.clone(), n.platform.clone()))
                    .collect();
                cliques = listed
                    .iter()
                    .filter_map(|n| Some((n.name.clone(), n.gfd.clique.clone()?)))
                    .collect();
                imex = listed
                    .iter()
                    .map(|n| (n.name.clone(), gpu_diag::incident::imex::findings(&n.imex)))
                    .filter(|(_, f)| !f.is_empty())
                    .collect();
                listed.into_iter().map(|n| n.name).collect()
            }
            None => {
                if a.context.is_some() || a.label_selector.is_some() {
                    return Err(ToolError::Invalid(
                        "local mode scans the single node `local`; call again without `context` and \
                         `label_selector`"
                            .into(),
                    ));
                }
                vec!["local".into()]
            }
        };
        nodes.sort();
        nodes.dedup();
        let total = nodes.len();
        let command = match a.check {
            ScanCheck::Health => Command::Health,
            ScanCheck::Xid => Command::Xid,
            ScanCheck::Ecc => Command::Ecc,
        };
        let mut results = probe_nodes(
            cx,
            Self::NAME,
            &nodes,
            a.context.clone(),
            command.into(),
            concurrency as usize,
            |o| {
                let marks = platform.get(&o.node).map(Vec::as_slice).unwrap_or_default();
                match o.result {
                    Ok(pr) => node_result(o.node, pr.report, o.millis, marks),
                    // The platform's marks stand without the probe.
                    Err(error) => NodeScanResult {
                        error: Some(error),
                        status: ScanStatus::Failed,
                        verdict: None,
                        ..counted(o.node, own_incidents(marks), o.millis)
                    },
                }
            },
        )
        .await;
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Invalid(
                "the call was cancelled; every started probe was stopped".into(),
            ));
        }
        results.sort_by(|x, y| x.node.cmp(&y.node));
        for r in &mut results {
            if r.nvlink_domain.is_none() {
                r.nvlink_domain = cliques.get(&r.node).cloned();
            }
            // The ComputeDomain's word on the node's IMEX daemon, unless the node's own daemon already
            // answered the probe with an IMEX incident (`imex.domain`): one fault, said once.
            if let Some(f) = imex.remove(&r.node)
                && !r.findings.iter().any(|x| x.code.starts_with("imex."))
            {
                add_findings(r, f);
            }
        }
        let racks = racks(&results);
        let mut nvlink_domains: BTreeMap<String, usize> = BTreeMap::new();
        for d in results.iter().filter_map(|r| r.nvlink_domain.clone()) {
            *nvlink_domains.entry(d).or_default() += 1;
        }
        let ranked = rank(results.to_vec());
        let healthy: Vec<String> = results
            .iter()
            .filter(|r| !ranked.iter().any(|a| a.result.node == r.node))
            .map(|r| r.node.clone())
            .collect();
        let offset = a.offset.unwrap_or(0) as usize;
        let limit = limit as usize;
        let next = offset.saturating_add(limit);
        Ok(ScanOutput {
            check: a.check,
            context: a.context,
            label_selector: a.label_selector,
            concurrency,
            nodes_total: total,
            nodes_ok: results
                .iter()
                .filter(|r| r.status == ScanStatus::Ok)
                .count(),
            nodes_failed: results
                .iter()
                .filter(|r| r.status == ScanStatus::Failed)
                .count(),
            nodes_healthy: healthy.len(),
            needs_attention_total: ranked.len(),
            racks,
            nvlink_domains,
            groups: groups(&ranked),
            next_offset: (next < ranked.len()).then_some(next),
            needs_attention: ranked.into_iter().skip(offset).take(limit).collect(),
            offset,
            limit,
            healthy_nodes: a.show_healthy.unwrap_or(false).then_some(healthy),
            marked: {
                marked.sort_by(|x: &MarkedNode, y| x.node.cmp(&y.node));
                marked
            },
            total_millis: started.elapsed().as_millis() as u64,
        })
    }

    fn render(s: &Self::Output) -> String {
        let mut out = String::new();
        let check = serde_json::to_value(s.check)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "Scan ({check}) of {} node(s): {} answered, {} failed; {} need attention, {} healthy",
            s.nodes_total, s.nodes_ok, s.nodes_failed, s.needs_attention_total, s.nodes_healthy
        );
        for r in &s.racks {
            let _ = writeln!(
                out,
                "RACK [{}] {}: {}. Nodes: {}. Next: {}",
                sev_label(r.severity),
                r.code,
                r.summary,
                r.nodes.join(", "),
                r.action.detail
            );
        }
        if !s.nvlink_domains.is_empty() {
            let list: Vec<String> = s
                .nvlink_domains
                .iter()
                .map(|(d, n)| format!("{d} ({n} nodes)"))
                .collect();
            let _ = writeln!(out, "NVLink domains: {}", list.join(", "));
        }
        if !s.groups.is_empty() {
            out.push_str("Shared causes:\n");
            for g in &s.groups {
                let more = g.nodes_count - g.nodes.len();
                let _ = writeln!(
                    out,
                    "  {} [{}] on {} nodes: {}{}",
                    g.cause,
                    g.class.to_uppercase(),
                    g.nodes_count,
                    g.nodes.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                );
            }
        }
        if !s.needs_attention.is_empty() {
            let first = s.needs_attention[0].rank;
            let last = s.needs_attention[s.needs_attention.len() - 1].rank;
            if first > 1 || last < s.needs_attention_total {
                let _ = writeln!(out, "Ranked {first}-{last} of {}:", s.needs_attention_total);
            }
        }
        for a in &s.needs_attention {
            let r = &a.result;
            let sev = match (r.status, r.worst_severity) {
                // The platform's critical mark of a node its probe could not read.
                (ScanStatus::Failed, Some(Severity::Critical)) => "CRITICAL",
                (ScanStatus::Failed, _) => "FAILED",
                (ScanStatus::Ok, w) => w.map(sev_label).unwrap_or("FAILED"),
            };
            let _ = writeln!(out, "{}. {} [{}] {}", a.rank, r.node, sev, a.reason);
            // The top finding is the reason; the others follow, a few per node.
            for f in r.findings.iter().skip(1).take(FINDINGS_SHOWN) {
                let gpu = gpu_note(f).map(|g| format!("{g} ")).unwrap_or_default();
                let _ = writeln!(
                    out,
                    "   - {} {gpu}{}: {}",
                    sev_label(f.severity),
                    f.code,
                    f.summary
                );
            }
            let hidden = r.findings.len().saturating_sub(1 + FINDINGS_SHOWN);
            if hidden > 0 {
                let _ = writeln!(out, "   - (+{hidden} more findings)");
            }
        }
        if let Some(n) = s.next_offset {
            let _ = writeln!(out, "More: call again with offset={n}.");
        }
        if !s.marked.is_empty() {
            let shown: Vec<String> = s
                .marked
                .iter()
                .take(MARKED_SHOWN)
                .map(|m| format!("{} {}", m.node, mark_flag(&m.mark)))
                .collect();
            let more = s.marked.len().saturating_sub(MARKED_SHOWN);
            let _ = writeln!(
                out,
                "Marked for the scheduler ({}): {}{}",
                s.marked.len(),
                shown.join("; "),
                if more > 0 {
                    format!(" (+{more} more in `marked`)")
                } else {
                    String::new()
                }
            );
        }
        match &s.healthy_nodes {
            Some(names) if !names.is_empty() => {
                let _ = writeln!(out, "Healthy: {}", names.join(", "));
            }
            None if s.nodes_healthy > 0 => {
                let _ = writeln!(
                    out,
                    "{} healthy node(s) not named (show_healthy=true names them).",
                    s.nodes_healthy
                );
            }
            _ => {}
        }
        out
    }
}

/// Marked nodes named in the text (the structured result has them all).
const MARKED_SHOWN: usize = 10;

/// Findings shown per ranked node in the text, besides its reason (the structured result has them all).
const FINDINGS_SHOWN: usize = 3;

/// An incident as the scan counts it: one finding.
fn incident_finding(i: &Incident) -> Finding {
    Finding {
        code: i.code.clone(),
        severity: i.severity,
        gpu: i.gpu,
        gpu_uuid: i.gpu_uuid.clone(),
        summary: i.summary.clone(),
        evidence: Vec::new(),
        action: i.action.clone(),
        about: Vec::new(),
        first_seen: i.first_seen.clone(),
    }
}

/// The platform's marks alone, each its own incident.
fn own_incidents(marks: &[PlatformMark]) -> Vec<Finding> {
    marks.iter().map(|m| incident_finding(&m.incident())).collect()
}

fn node_result(
    node: String,
    report: gpu_diag::contract::Report,
    millis: u64,
    marks: &[PlatformMark],
) -> NodeScanResult {
    // A node that judges incidents is counted and ranked by them: one fault once, however many signals
    // show it (the platform's mark of the same fault among them); its history (informational, cleared)
    // counts as info.
    let findings: Vec<Finding> = match report.incidents() {
        Some(inc) => {
            let mut inc = inc.clone();
            platform::join(&mut inc, marks);
            inc.incidents
                .iter()
                .map(incident_finding)
                .chain(inc.history)
                .collect()
        }
        None => report
            .findings()
            .into_iter()
            .cloned()
            .chain(own_incidents(marks))
            .collect(),
    };
    NodeScanResult {
        // Whatever the check's report judged (the XID check's verdict was lost while reports were read as
        // JSON by field name).
        verdict: report.verdict(),
        nvlink_domain: report.nvlink_domain().map(String::from),
        ..counted(node, findings, millis)
    }
}

/// Findings the API server's objects say about a node (its ComputeDomain's IMEX daemon), beside the probe's.
fn add_findings(r: &mut NodeScanResult, extra: Vec<Finding>) {
    for f in &extra {
        match f.severity {
            Severity::Critical => r.counts.critical += 1,
            Severity::Warning => r.counts.warning += 1,
            Severity::Info => r.counts.info += 1,
        }
    }
    r.worst_severity = r.worst_severity.max(extra.iter().map(|f| f.severity).max());
    r.findings.extend(
        extra
            .into_iter()
            .filter(|f| f.severity >= Severity::Warning)
            .map(brief),
    );
    r.findings
        .sort_by_key(|f| std::cmp::Reverse((f.severity, f.action)));
}

/// The fabric faults several nodes of one NVLink domain share: one incident of the rack each.
fn racks(results: &[NodeScanResult]) -> Vec<RackIncident> {
    let nodes: Vec<NodeInDomain> = results
        .iter()
        .map(|r| NodeInDomain {
            node: &r.node,
            domain: r.nvlink_domain.as_deref(),
            incidents: r
                .findings
                .iter()
                .map(|f| (f.code.as_str(), f.severity))
                .collect(),
        })
        .collect();
    rack_incidents(&nodes)
}

/// A node that answered, counted by its findings' severities.
fn counted(node: String, mut findings: Vec<Finding>, millis: u64) -> NodeScanResult {
    let mut counts = SeverityCounts::default();
    for f in &findings {
        match f.severity {
            Severity::Critical => counts.critical += 1,
            Severity::Warning => counts.warning += 1,
            Severity::Info => counts.info += 1,
        }
    }
    let worst_severity = findings.iter().map(|f| f.severity).max();
    findings.retain(|f| f.severity >= Severity::Warning);
    findings.sort_by_key(|f| std::cmp::Reverse((f.severity, f.action.kind)));
    NodeScanResult {
        node,
        status: ScanStatus::Ok,
        verdict: None,
        worst_severity,
        counts,
        findings: findings.into_iter().map(brief).collect(),
        error: None,
        nvlink_domain: None,
        millis,
    }
}

/// `GPU n` for a finding whose summary does not already name its GPU.
fn gpu_note(f: &ScanFinding) -> Option<String> {
    let g = format!("GPU {}", f.gpu?);
    (!f.summary.contains(&g)).then_some(g)
}

fn brief(f: Finding) -> ScanFinding {
    ScanFinding {
        code: f.code,
        severity: f.severity,
        gpu: f.gpu,
        summary: f.summary,
        action: f.action.kind,
    }
}

/// How urgently a ranked node needs attention, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Urgency {
    Critical,
    /// The probe failed: nothing is known, which is worse than a warning.
    Failed,
    Warning,
}

impl Urgency {
    /// As a group's `class` names it.
    fn name(self) -> &'static str {
        match self {
            Urgency::Critical => "critical",
            Urgency::Failed => "failed",
            Urgency::Warning => "warning",
        }
    }
}

/// A node's urgency; `None` for a healthy node.
fn urgency(r: &NodeScanResult) -> Option<Urgency> {
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
fn cause(r: &NodeScanResult) -> String {
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
fn groups(ranked: &[AttentionEntry]) -> Vec<ScanGroup> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &str, sev: Severity) -> ScanFinding {
        ScanFinding {
            code: code.into(),
            severity: sev,
            gpu: Some(0),
            summary: format!("{code} seen"),
            action: ActionKind::Investigate,
        }
    }

    fn ok(node: &str, f: Vec<ScanFinding>) -> NodeScanResult {
        let mut counts = SeverityCounts::default();
        for x in &f {
            match x.severity {
                Severity::Critical => counts.critical += 1,
                Severity::Warning => counts.warning += 1,
                Severity::Info => counts.info += 1,
            }
        }
        NodeScanResult {
            node: node.into(),
            status: ScanStatus::Ok,
            verdict: None,
            worst_severity: f.iter().map(|x| x.severity).max(),
            counts,
            findings: f,
            error: None,
            nvlink_domain: None,
            millis: 1,
        }
    }

    /// Four trays of one NVL72 rack (two with the fabric degraded), and a tray of another rack with the same
    /// fault: one rack incident, named with its two nodes, first in the text; the other rack's single node
    /// stays a node's fault.
    #[test]
    fn a_fabric_fault_on_several_trays_of_a_rack_is_one_rack_incident() {
        let rack = "6e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a14.1";
        let tray = |n: &str, d: &str, bad: bool| NodeScanResult {
            nvlink_domain: Some(d.into()),
            ..ok(
                n,
                if bad {
                    vec![finding("fabric.degraded", Severity::Warning)]
                } else {
                    vec![]
                },
            )
        };
        let results = vec![
            tray("tray01", rack, false),
            tray("tray02", rack, true),
            tray("tray03", rack, true),
            tray("tray04", rack, false),
            tray("other-tray", "0e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a15.1", true),
        ];
        let r = racks(&results);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!((r[0].domain.as_str(), r[0].nodes.clone()), (rack, vec!["tray02".to_string(), "tray03".into()]));
        assert_eq!(r[0].domain_nodes, 4);
    }

    #[test]
    fn ranks_critical_then_failed_then_warning_and_skips_healthy() {
        let failed = NodeScanResult {
            status: ScanStatus::Failed,
            error: Some("probe of `n3` failed: timeout".into()),
            ..ok("n3", vec![])
        };
        let results = vec![
            ok("n1", vec![finding("thermal.slowdown", Severity::Warning)]),
            ok("n2", vec![]),
            failed,
            ok("n4", vec![finding("xid.79", Severity::Critical)]),
            ok(
                "n5",
                vec![
                    finding("xid.79", Severity::Critical),
                    finding("ecc.remap_pending", Severity::Critical),
                ],
            ),
        ];
        let r = rank(results);
        let order: Vec<&str> = r.iter().map(|e| e.result.node.as_str()).collect();
        assert_eq!(order, ["n5", "n4", "n3", "n1"]);
        assert_eq!(r[0].rank, 1);
        assert!(r[0].reason.contains("+1 more"), "{}", r[0].reason);
        assert!(r[2].reason.starts_with("probe failed"), "{}", r[2].reason);
        // n4 and n5 share their top finding; the one-node causes are not groups.
        let g = groups(&r);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!((g[0].cause.as_str(), g[0].nodes_count), ("xid.79", 2));
        assert_eq!(g[0].nodes, ["n5", "n4"]);
    }

    #[test]
    fn one_probe_error_on_many_nodes_is_one_cause() {
        let failed = |n: &str| NodeScanResult {
            status: ScanStatus::Failed,
            error: Some(format!(
                "probe of `{n}` failed: pods is forbidden on {n}\nhint: bind the RBAC rules"
            )),
            ..ok(n, vec![])
        };
        let r = rank((0..40).map(|i| failed(&format!("gpu-{i:02}"))).collect());
        let g = groups(&r);
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].cause, "probe failed: pods is forbidden on <node>");
        assert_eq!(g[0].nodes_count, 40);
        assert_eq!(g[0].nodes.len(), GROUP_NAMES);
    }

    #[test]
    fn a_node_its_platform_marks_critical_ranks_critical_even_when_its_probe_failed() {
        let mark = platform::classify(&platform::NodeCondition {
            kind: "GPUMissing",
            status: "True",
            reason: Some("GPUMissing"),
            message: None,
            since: Some("2026-11-20T10:00:00Z"),
        })
        .expect("AKS GPUMissing");
        let failed = NodeScanResult {
            error: Some("probe of `n2` failed: timeout".into()),
            status: ScanStatus::Failed,
            ..counted("n2".into(), own_incidents(&[mark]), 1)
        };
        let plain_failure = NodeScanResult {
            status: ScanStatus::Failed,
            error: Some("probe of `n3` failed: timeout".into()),
            ..ok("n3", vec![])
        };
        let r = rank(vec![
            plain_failure,
            ok("n1", vec![finding("thermal.slowdown", Severity::Warning)]),
            failed,
        ]);
        let order: Vec<&str> = r.iter().map(|e| e.result.node.as_str()).collect();
        assert_eq!(order, ["n2", "n3", "n1"]);
        assert!(
            r[0].reason.starts_with("platform.gpu_missing: AKS node problem detector reports GPU missing: GPUMissing=True (GPUMissing) since 2026-11-20T10:00:00Z"),
            "{}",
            r[0].reason
        );
        assert!(r[0].reason.ends_with("probe failed: timeout"), "{}", r[0].reason);
    }

    /// The scan's text when a platform mark joins the probe's incident, stands alone, or outlives a failed
    /// probe.
    #[test]
    fn platform_marks_in_the_scan_text() {
        use gpu_diag::finding::{Action, Incidents};
        let mark = |kind, status, reason| {
            platform::classify(&platform::NodeCondition {
                kind,
                status,
                reason: Some(reason),
                message: None,
                since: Some("2026-11-20T10:00:00Z"),
            })
            .expect("recognised")
        };
        let lost = Finding {
            code: "xid.79".into(),
            severity: Severity::Critical,
            gpu: Some(3),
            gpu_uuid: None,
            summary: "Xid 79".into(),
            evidence: vec![],
            action: Action {
                kind: ActionKind::RebootNode,
                detail: "reboot".into(),
            },
            about: vec![],
            first_seen: None,
        };
        let mut inc = Incidents {
            incidents: vec![Incident {
                code: "gpu.off_bus".into(),
                severity: Severity::Critical,
                gpu: Some(3),
                gpu_uuid: None,
                component: "GPU 3 (0000:9d:00.0)".into(),
                title: "GPU fell off the bus".into(),
                summary: "GPU 3 (0000:9d:00.0): GPU fell off the bus (Xid 79).".into(),
                action: lost.action.clone(),
                first_seen: None,
                rule: None,
                signals: vec![lost],
            }],
            history: vec![],
        };
        platform::join(
            &mut inc,
            &[mark("AcceleratedHardwareReady", "False", "NvidiaXID79Error")],
        );
        let joined = counted(
            "gpu-a".into(),
            inc.incidents.iter().map(incident_finding).collect(),
            1,
        );
        let alone = counted(
            "gpu-b".into(),
            own_incidents(&[mark("NVLinkStatusInactive", "True", "NVLinkStatusInactive")]),
            1,
        );
        let failed = NodeScanResult {
            error: Some("probe of `gpu-c` failed: timeout".into()),
            status: ScanStatus::Failed,
            ..counted(
                "gpu-c".into(),
                own_incidents(&[mark("AcceleratedHardwareReady", "False", "NvidiaDoubleBitError")]),
                1,
            )
        };
        let ranked = rank(vec![joined, alone, failed]);
        let out = ScanOutput {
            check: ScanCheck::Health,
            context: None,
            label_selector: None,
            concurrency: 16,
            nodes_total: 4,
            nodes_ok: 2,
            nodes_failed: 1,
            nodes_healthy: 1,
            needs_attention_total: ranked.len(),
            racks: vec![],
            nvlink_domains: BTreeMap::new(),
            groups: groups(&ranked),
            needs_attention: ranked,
            offset: 0,
            limit: 25,
            next_offset: None,
            healthy_nodes: None,
            marked: vec![],
            total_millis: 1,
        };
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/launcher"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!("scan_gpu_nodes_platform_marks", ScanGpuNodes::render(&out));
        });
    }
}
