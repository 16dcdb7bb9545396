//! `scan_gpu_nodes`: one check on many nodes, bounded concurrency, per-node timeout, and a ranking of the
//! nodes that need attention. The ranking orders nodes by the severities the probe reported; it does not
//! judge facts itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_diag::finding::{Finding, Severity, Verdict};
use std::fmt::Write;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::progress::null_sink;
use crate::tool::text::{findings_in, sev_label, verdict_in};
use crate::tool::{Cx, Hints, Tool, ToolError};

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
    #[schemars(with = "String", length(min = 1, max = 1024))]
    pub label_selector: Option<String>,
    /// How many nodes to probe at once (default 16).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 128))]
    pub concurrency: Option<u32>,
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
}

pub const DEFAULT_CONCURRENCY: u32 = 16;

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
    pub findings: Vec<Finding>,
    /// Why there is no report (status `failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub millis: u64,
}

/// A node that needs attention, in rank order.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttentionEntry {
    /// 1 = look at this node first.
    pub rank: usize,
    pub node: String,
    /// Why: the top finding, or the probe error.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_severity: Option<Severity>,
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
    /// Nodes to look at, most urgent first: critical findings, then failed probes, then warnings.
    pub needs_attention: Vec<AttentionEntry>,
    /// Every node's outcome, in node-name order.
    pub results: Vec<NodeScanResult>,
    pub total_millis: u64,
}

impl Tool for ScanGpuNodes {
    type Args = ScanArgs;
    type Output = ScanOutput;
    const NAME: &'static str = "scan_gpu_nodes";
    const TITLE: &'static str = "Scan many GPU nodes";
    const DESCRIPTION: &'static str = "Run one check (`health`, `xid` or `ecc`) on every GPU node (or those matching \
label_selector), several at a time, and rank the nodes that need attention (critical findings first, \
then nodes whose probe failed, then warnings). Returns per-node verdicts, findings and errors. Use it to \
find the bad nodes in a fleet, e.g. after a failed multi-node training job.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let started = Instant::now();
        let concurrency = a.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=128).contains(&concurrency) {
            return Err(ToolError::Invalid(format!(
                "`concurrency` must be between 1 and 128 (got {concurrency}); omit it for the default of {DEFAULT_CONCURRENCY}"
            )));
        }
        let mut nodes: Vec<String> = match &cx.env.cluster {
            Some(cluster) => {
                cx.check_context(a.context.as_deref())?;
                let listed = tokio::select! {
                    r = cluster.list_gpu_nodes(a.context.as_deref(), a.label_selector.as_deref()) => r,
                    _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
                };
                listed?.into_iter().map(|n| n.name).collect()
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
        let command: Vec<String> = match a.check {
            ScanCheck::Health => vec!["health".into()],
            ScanCheck::Xid => vec!["xid".into()],
            ScanCheck::Ecc => vec!["ecc".into()],
        };
        if total > 0 {
            cx.progress.report(
                0.5,
                Some(total as f64),
                format!("scanning {total} node(s), {concurrency} at a time"),
            );
        }

        let sem = Arc::new(Semaphore::new(concurrency as usize));
        // The runner enforces the probe deadline; this outer bound only guards against a runner that does not.
        let hard_limit = cx.env.cfg.probe_timeout + Duration::from_secs(10);
        let mut set = JoinSet::new();
        for node in nodes.iter().cloned() {
            let env = cx.env.clone();
            let sem = sem.clone();
            let cancel = cx.cancel.child_token();
            let args = command.clone();
            let context = a.context.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let t = Instant::now();
                let run = env.probe(
                    Self::NAME,
                    &node,
                    context,
                    args,
                    null_sink(),
                    cancel.clone(),
                );
                let res = match tokio::time::timeout(hard_limit, run).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => {
                        cancel.cancel();
                        Err(format!(
                            "probe of `{node}` did not finish within {} s",
                            hard_limit.as_secs()
                        ))
                    }
                };
                (node, res, t.elapsed().as_millis() as u64)
            });
        }

        let mut results = Vec::with_capacity(total);
        let mut done = 0usize;
        // Every task is awaited, also after cancellation, so no probe outlives the call.
        while let Some(joined) = set.join_next().await {
            done += 1;
            let (node, res, millis) = match joined {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "scan task failed");
                    continue;
                }
            };
            let r = match res {
                Ok(pr) => node_result(node, pr.report, millis),
                Err(error) => NodeScanResult {
                    node,
                    status: ScanStatus::Failed,
                    verdict: None,
                    worst_severity: None,
                    counts: SeverityCounts::default(),
                    findings: vec![],
                    error: Some(error),
                    millis,
                },
            };
            cx.progress.report(
                done as f64,
                Some(total as f64),
                format!("{} done ({done} of {total})", r.node),
            );
            results.push(r);
        }
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Invalid(
                "the call was cancelled; every started probe was stopped".into(),
            ));
        }
        results.sort_by(|x, y| x.node.cmp(&y.node));
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
            needs_attention: rank(&results),
            results,
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
            "Scan ({check}) of {} node(s): {} answered, {} failed; {} need attention",
            s.nodes_total,
            s.nodes_ok,
            s.nodes_failed,
            s.needs_attention.len()
        );
        for a in &s.needs_attention {
            let sev = a.worst_severity.map(sev_label).unwrap_or("FAILED");
            let sev = if s
                .results
                .iter()
                .any(|r| r.node == a.node && r.status == ScanStatus::Failed)
            {
                "FAILED"
            } else {
                sev
            };
            let _ = writeln!(out, "{}. {} [{}] {}", a.rank, a.node, sev, a.reason);
        }
        let fine: Vec<&str> = s
            .results
            .iter()
            .filter(|r| !s.needs_attention.iter().any(|a| a.node == r.node))
            .map(|r| r.node.as_str())
            .collect();
        if !fine.is_empty() {
            let _ = writeln!(out, "no attention needed: {}", fine.join(", "));
        }
        out
    }
}

fn node_result(node: String, report: gpu_diag::contract::Report, millis: u64) -> NodeScanResult {
    let value = serde_json::to_value(&report).unwrap_or_default();
    let mut findings = findings_in(&value);
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
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    NodeScanResult {
        node,
        status: ScanStatus::Ok,
        verdict: verdict_in(&value),
        worst_severity,
        counts,
        findings,
        error: None,
        millis,
    }
}

/// Critical first, then failed probes, then warnings; more findings first within a class; then by name.
pub fn rank(results: &[NodeScanResult]) -> Vec<AttentionEntry> {
    let class = |r: &NodeScanResult| -> Option<u8> {
        match (r.status, r.worst_severity) {
            (ScanStatus::Failed, _) => Some(1),
            (_, Some(Severity::Critical)) => Some(0),
            (_, Some(Severity::Warning)) => Some(2),
            _ => match r.verdict {
                Some(Verdict::Unhealthy) => Some(0),
                Some(Verdict::Degraded) => Some(2),
                _ => None,
            },
        }
    };
    let mut picked: Vec<(u8, &NodeScanResult)> = results
        .iter()
        .filter_map(|r| class(r).map(|c| (c, r)))
        .collect();
    picked.sort_by(|(ca, a), (cb, b)| {
        ca.cmp(cb)
            .then((b.counts.critical, b.counts.warning).cmp(&(a.counts.critical, a.counts.warning)))
            .then(a.node.cmp(&b.node))
    });
    picked
        .into_iter()
        .enumerate()
        .map(|(i, (_, r))| AttentionEntry {
            rank: i + 1,
            node: r.node.clone(),
            reason: match (&r.error, r.findings.first()) {
                (Some(e), _) => format!("probe failed: {}", e.lines().next().unwrap_or(e)),
                (None, Some(f)) => {
                    let more = r.findings.len() - 1;
                    if more > 0 {
                        format!("{}: {} (+{more} more)", f.code, f.summary)
                    } else {
                        format!("{}: {}", f.code, f.summary)
                    }
                }
                (None, None) => format!("verdict {:?}", r.verdict.unwrap_or(Verdict::Unknown)),
            },
            worst_severity: r.worst_severity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::finding::{Action, ActionKind};

    fn finding(code: &str, sev: Severity) -> Finding {
        Finding {
            code: code.into(),
            severity: sev,
            gpu: Some(0),
            gpu_uuid: None,
            summary: format!("{code} seen"),
            evidence: vec![],
            action: Action {
                kind: ActionKind::Investigate,
                detail: "look".into(),
            },
        }
    }

    fn ok(node: &str, f: Vec<Finding>) -> NodeScanResult {
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
            millis: 1,
        }
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
        let r = rank(&results);
        let order: Vec<&str> = r.iter().map(|e| e.node.as_str()).collect();
        assert_eq!(order, ["n5", "n4", "n3", "n1"]);
        assert_eq!(r[0].rank, 1);
        assert!(r[0].reason.contains("+1 more"), "{}", r[0].reason);
        assert!(r[2].reason.starts_with("probe failed"), "{}", r[2].reason);
    }
}
