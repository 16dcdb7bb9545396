//! `scan_gpu_nodes`: one check on many nodes, bounded concurrency, per-node timeout, and a ranking of the
//! nodes that need attention. This file fetches (the nodes, their platform marks and rack hints), fans the
//! probes out and renders; counting, ranking, urgency, shared causes and racks are the library's
//! (`gpu_diag::incident::fleet`), which judges no facts of its own: it orders what the probes reported.

use std::time::Instant;

use gpu_diag::command::Command;
use std::collections::BTreeMap;

use gpu_diag::finding::{Finding, Judged, Severity};
use gpu_diag::incident::fleet::{
    self, AttentionEntry, Counted, NodeScanResult, ScanGroup, ScanStatus, add_findings, counted,
    gpu_note, groups, incident_entry, own_incidents, rank, racks,
};
use gpu_diag::incident::platform::{self, PlatformMark};
use gpu_diag::incident::rack::{RackHints, RackIncident};
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
    /// `health` (default), `xid` or `ecc`.
    #[serde(default)]
    pub check: ScanCheck,
    /// Label selector of the nodes (default: every GPU node).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
    /// Nodes probed at once (default 16).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 128))]
    pub concurrency: Option<u32>,
    /// Ranked nodes detailed (default 25).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 200))]
    pub limit: Option<u32>,
    /// Position in the ranked list to start at (0: the most urgent).
    #[serde(default)]
    #[schemars(with = "u32")]
    pub offset: Option<u32>,
    /// Also name the healthy nodes (else counted).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub show_healthy: Option<bool>,
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

pub const DEFAULT_CONCURRENCY: u32 = 16;
pub const DEFAULT_LIMIT: u32 = 25;
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
    /// Findings of the page, past its 10 most urgent nodes, whose signals and evidence were left out to keep
    /// the answer bounded (each counts them in its `cut`; `get_gpu_health` on the node has them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub details_cut: usize,
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

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    const DESCRIPTION: &'static str = "Run one check (health, xid or ecc) on every GPU node of the cluster in \
parallel and rank the nodes that need attention, with the causes several share. Use it to find the bad nodes \
in a fleet, e.g. after a multi-node job failed.";
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
        // What names each node's rack besides its GPUs, for trays whose fabric never registered.
        let mut rack_hints: BTreeMap<String, RackHints> = BTreeMap::new();
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
                rack_hints = listed
                    .iter()
                    .map(|n| (n.name.clone(), n.rack_hints.clone()))
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
        fleet::place_in_racks(&mut results, &rack_hints);
        for r in &mut results {
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
        let groups = groups(&ranked);
        let next_offset = (next < ranked.len()).then_some(next);
        let needs_attention_total = ranked.len();
        let mut page: Vec<AttentionEntry> = ranked.into_iter().skip(offset).take(limit).collect();
        let details_cut = fleet::bound_details(&mut page);
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
            needs_attention_total,
            racks,
            nvlink_domains,
            groups,
            next_offset,
            needs_attention: page,
            details_cut,
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

fn node_result(
    node: String,
    report: gpu_diag::contract::Report,
    millis: u64,
    marks: &[PlatformMark],
) -> NodeScanResult {
    // A node that judges incidents is counted and ranked by them: one fault once, however many signals
    // show it (the platform's mark of the same fault among them); its history (informational, cleared)
    // counts as info.
    let findings: Vec<Counted> = match report.incidents() {
        Some(inc) => {
            let mut inc = inc.clone();
            platform::join(&mut inc, marks);
            inc.incidents
                .iter()
                .map(incident_entry)
                .chain(inc.history.into_iter().map(Counted::from))
                .collect()
        }
        None => report
            .findings()
            .into_iter()
            .cloned()
            .map(Counted::from)
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

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::finding::{ActionKind, Incident};

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
            inc.incidents.iter().map(incident_entry).collect(),
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
            details_cut: 0,
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
