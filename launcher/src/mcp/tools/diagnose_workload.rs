//! `diagnose_workload`: "why is the training job stuck?" for a whole workload: its pods (any phase) from the
//! API server, one `node-probe workload` per node it runs on (in parallel, bounded, under the probe
//! deadline), each pod's log read through the API at the same time (a bounded tail, a few pods at a time,
//! within a time budget; scanned by `gpu_diag::workload::joblog` as it streams in), and one cross-node verdict
//! with one suspect per thing at fault (`gpu_diag::workload`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::Instant;

use gpu_diag::command::Command;
use gpu_diag::workload::{
    HeldSource, Suspect, WorkloadDiagnosis, WorkloadInput, WorkloadNode, diagnose,
};
use gpu_diag::contract::Report;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::{WorkloadRef, workload};
use crate::cluster::LogLimits;
use crate::mcp::framework::fanout::probe_nodes;
use crate::mcp::render::text::sev_label;
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::{
    MAX_CONTEXT_LEN, MAX_LABEL_LEN, MAX_OBJECT_NAME_LEN, workload_ref,
};
use crate::mcp::framework::{Cx, Hints, Tool, ToolError};

pub struct DiagnoseWorkload;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnoseArgs {
    /// Namespace of the workload, named by exactly one of pod, job, jobset, pytorchjob, mpijob, rayjob or
    /// label_selector.
    #[schemars(length(min = 1, max = MAX_LABEL_LEN))]
    pub namespace: String,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub pod: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub job: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub jobset: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub pytorchjob: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub mpijob: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub rayjob: Option<String>,
    /// Pods matching this label selector, e.g. `app=trainer,run=42`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
    /// Nodes probed at once (default 64).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 128))]
    pub concurrency: Option<u32>,
    /// Log lines read per container (default 2000; 0: no logs).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 0, max = 20000))]
    pub log_tail_lines: Option<u32>,
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

pub const DEFAULT_CONCURRENCY: u32 = 64;
pub const DEFAULT_LOG_TAIL_LINES: u32 = 2000;
/// Bytes read per container log at most, pods whose logs are read at once, and the time all logs get.
const LOG_LIMIT_BYTES: i64 = 512 * 1024;
const LOG_CONCURRENCY: usize = 16;
const LOG_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);
/// Suspects detailed in the text (the structured result lists up to [`SUSPECTS_LISTED`]).
const SUSPECTS_SHOWN: usize = 8;
const SUSPECTS_LISTED: usize = 40;
const EVIDENCE_SHOWN: usize = 3;

/// `diagnose_workload` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkloadOutput {
    pub namespace: String,
    /// `kind/name` of the workload.
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub diagnosis: WorkloadDiagnosis,
    /// Suspects beyond the ones listed (the most urgent are listed).
    pub suspects_not_listed: usize,
    pub nodes_probed: usize,
    pub nodes_failed: usize,
    /// How the pods' logs were read (tail, bytes, concurrency, time budget), or why not.
    pub logs: String,
    pub log_millis: u64,
    pub total_millis: u64,
}

impl DiagnoseArgs {
    fn target(&self) -> Result<WorkloadRef, ToolError> {
        workload_ref(&[
            ("pod", &self.pod),
            ("job", &self.job),
            ("jobset", &self.jobset),
            ("pytorchjob", &self.pytorchjob),
            ("mpijob", &self.mpijob),
            ("rayjob", &self.rayjob),
            ("label_selector", &self.label_selector),
        ])
    }
}

impl Tool for DiagnoseWorkload {
    type Args = DiagnoseArgs;
    type Output = WorkloadOutput;
    const NAME: &'static str = "diagnose_workload";
    const TITLE: &'static str = "Diagnose a workload across its nodes and GPUs";
    const DESCRIPTION: &'static str = "Why is a training job stuck, slow or failing? Examines a workload's \
pods, nodes, GPUs and ranks' logs (NCCL timeouts, CUDA errors) and answers with ranked suspects and \
evidence: a faulty GPU, a straggler rank, Pending or OOMKilled pods, a NotReady node.";
    const HINTS: Hints = Hints::READ_LIVE;
    // A large job's nodes take seconds per hundred: a task where the client can take one.
    const TASK: bool = true;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let started = Instant::now();
        let target = a.target()?;
        let Some(cluster) = cx.env.cluster.clone() else {
            return Err(ToolError::Invalid(
                "diagnose_workload reads the workload's pods from a cluster: this server runs in local mode; \
                 use get_gpu_health or describe_gpu_node on `local` instead"
                    .into(),
            ));
        };
        cx.check_context(a.context.as_deref())?;
        let concurrency = a.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=128).contains(&concurrency) {
            return Err(ToolError::Invalid(format!(
                "`concurrency` must be between 1 and 128 (got {concurrency}); omit it for the default of \
                 {DEFAULT_CONCURRENCY}"
            )));
        }
        let ctx = a.context.as_deref();
        cx.progress
            .report(0.1, None, format!("reading {} from the API server", workload::label(&target)));
        let pods = tokio::select! {
            r = cluster.workload_pods(ctx, &a.namespace, &target) => r?,
            _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        let node_names: Vec<String> = pods
            .iter()
            .filter_map(|p| p.node.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // The nodes' Kubernetes side: one list of the GPU nodes; a node not in it (no GPUs) is read alone.
        let mut nodes: BTreeMap<String, WorkloadNode> = BTreeMap::new();
        if !node_names.is_empty() {
            for n in cluster.list_gpu_nodes(ctx, None).await? {
                if node_names.contains(&n.name) {
                    nodes.insert(n.name.clone(), workload::node_of(&n));
                }
            }
            for name in &node_names {
                if !nodes.contains_key(name)
                    && let Ok(n) = cluster.get_node(ctx, name).await
                {
                    nodes.insert(name.clone(), workload::node_of(&n));
                }
            }
        }
        let tail = a.log_tail_lines.unwrap_or(DEFAULT_LOG_TAIL_LINES);
        if tail > 20000 {
            return Err(ToolError::Invalid(format!(
                "`log_tail_lines` must be between 0 and 20000 (got {tail})"
            )));
        }
        let limits = LogLimits {
            tail_lines: i64::from(tail),
            limit_bytes: LOG_LIMIT_BYTES,
            since_seconds: None,
            concurrency: LOG_CONCURRENCY,
            budget: LOG_BUDGET,
        };
        let log_started = Instant::now();
        let read_logs = async {
            if tail == 0 {
                return (None, 0);
            }
            let r = cluster
                .workload_logs(ctx, &a.namespace, &pods, &limits)
                .await;
            let ms = log_started.elapsed().as_millis() as u64;
            match r {
                Ok(l) => (Some(l), ms),
                Err(e) => {
                    let why = e.to_string();
                    let all = pods
                        .iter()
                        .filter(|p| p.node.is_some())
                        .map(|p| (p.name.clone(), Err(why.clone())))
                        .collect();
                    (Some(all), ms)
                }
            }
        };
        let probes_run = probe_nodes(
            cx,
            Self::NAME,
            &node_names,
            a.context.clone(),
            Command::Workload.into(),
            concurrency as usize,
            |o| o,
        );
        let (outcomes, (logs, log_millis)) = tokio::join!(probes_run, read_logs);
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let mut probes = BTreeMap::new();
        let mut failed = 0;
        for o in outcomes {
            let r = match o.result {
                Ok(pr) => match pr.report {
                    Report::Workload(w) => Ok(w),
                    _ => Err("node-probe answered with another report than `workload`: the probe and \
                              launcher versions probably differ"
                        .to_string()),
                },
                Err(e) => Err(e),
            };
            failed += usize::from(r.is_err());
            probes.insert(o.node, r);
        }
        let logs_text = if tail == 0 {
            "not read (log_tail_lines = 0)".to_string()
        } else {
            limits.describe()
        };
        let input = WorkloadInput {
            workload: workload::label(&target),
            pods,
            nodes: nodes.into_values().collect(),
            probes,
            logs,
            log_limits: Some(logs_text.clone()),
        };
        let mut diagnosis = diagnose(&input);
        let not_listed = diagnosis.suspects.len().saturating_sub(SUSPECTS_LISTED);
        diagnosis.suspects.truncate(SUSPECTS_LISTED);
        diagnosis.not_held.truncate(SUSPECTS_LISTED);
        Ok(WorkloadOutput {
            namespace: a.namespace,
            workload: input.workload,
            context: a.context,
            diagnosis,
            suspects_not_listed: not_listed,
            nodes_probed: node_names.len(),
            nodes_failed: failed,
            logs: logs_text,
            log_millis,
            total_millis: started.elapsed().as_millis() as u64,
        })
    }

    fn render(o: &Self::Output) -> String {
        let d = &o.diagnosis;
        let mut out = String::new();
        let _ = writeln!(out, "Workload {} in namespace {}", o.workload, o.namespace);
        let _ = writeln!(out, "verdict: {}", d.verdict);
        let phases: Vec<String> = d
            .pods_by_phase
            .iter()
            .map(|(p, n)| format!("{n} {p}"))
            .collect();
        let _ = writeln!(
            out,
            "pods: {} ({}); nodes: {} probed, {} failed; GPUs held: {}{}",
            d.pods,
            phases.join(", "),
            o.nodes_probed,
            o.nodes_failed,
            d.gpus_held,
            held_note(d)
        );
        let _ = writeln!(
            out,
            "logs: {} pod(s) read, {} KiB ({})",
            d.logs_read,
            d.log_bytes / 1024,
            o.logs
        );
        if !d.not_examined.is_empty() {
            let _ = writeln!(out, "not examined (the diagnosis is incomplete):");
            for g in &d.not_examined {
                let _ = writeln!(out, "  - {g}");
            }
        }
        if !d.suspects.is_empty() {
            let _ = writeln!(out, "suspects ({}):", d.suspects.len() + o.suspects_not_listed);
            for s in d.suspects.iter().take(SUSPECTS_SHOWN) {
                suspect_lines(s, &mut out);
            }
            let more = d.suspects.len().saturating_sub(SUSPECTS_SHOWN) + o.suspects_not_listed;
            if more > 0 {
                let _ = writeln!(out, "  (+{more} more suspects in the structured result)");
            }
        }
        if !d.consequences.is_empty() {
            let _ = writeln!(out, "consequences (the rest of the job, not suspects):");
            for c in &d.consequences {
                let _ = writeln!(out, "  - {c}");
            }
        }
        if let Some(span) = &d.nvlink_span {
            let _ = writeln!(out, "NVLink: {span}");
        }
        if !d.not_held.is_empty() {
            let codes: Vec<String> = d
                .not_held
                .iter()
                .take(5)
                .map(|s| {
                    format!(
                        "{} on {}{}",
                        s.code,
                        s.node.as_deref().unwrap_or("?"),
                        s.gpu.map(|g| format!(" GPU {g}")).unwrap_or_default()
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "not the workload's (its GPUs are not affected; not suspects): {}{}",
                codes.join("; "),
                if d.not_held.len() > 5 {
                    format!(" (+{} more)", d.not_held.len() - 5)
                } else {
                    String::new()
                }
            );
        }
        out
    }
}


/// How the held GPUs are known, when not from the kubelet everywhere.
fn held_note(d: &WorkloadDiagnosis) -> String {
    let count = |s: HeldSource| d.nodes.iter().filter(|n| n.held_source == s).count();
    let (kubelet, all, req) = (
        count(HeldSource::Kubelet),
        count(HeldSource::AllRequested),
        count(HeldSource::RequestsOnly),
    );
    let mut parts = Vec::new();
    if kubelet > 0 {
        parts.push(format!("{kubelet} node(s) by the kubelet's assignment"));
    }
    if all > 0 {
        parts.push(format!("{all} node(s) where the pods request every GPU"));
    }
    if req > 0 {
        parts.push(format!("{req} node(s) by requests only (which GPUs is unknown)"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn suspect_lines(s: &Suspect, out: &mut String) {
    let place = match (&s.node, s.gpu) {
        (Some(n), Some(g)) => format!(
            " {n} GPU {g}{}",
            s.gpu_uuid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default()
        ),
        (Some(n), None) => format!(" {n}"),
        _ => String::new(),
    };
    let kind = serde_json::to_value(s.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{}. [{}] {kind} {}{place}: {}",
        s.rank,
        sev_label(s.severity),
        s.code,
        s.summary
    );
    if !s.also.is_empty() || s.first_seen.is_some() {
        let mut line = String::from("  ");
        if let Some(t) = &s.first_seen {
            let _ = write!(line, " first seen {t};");
        }
        if !s.also.is_empty() {
            let _ = write!(line, " also: {}", s.also.join(", "));
        }
        let _ = writeln!(out, "{}", line.trim_end_matches(';'));
    }
    if !s.pods.is_empty() {
        let mut who = format!("   pods: {}", s.pods.iter().take(4).cloned().collect::<Vec<_>>().join(", "));
        if s.pods.len() > 4 {
            let _ = write!(who, " (+{})", s.pods.len() - 4);
        }
        if !s.ranks.is_empty() {
            let _ = write!(who, "; ranks: {}", s.ranks.iter().take(4).cloned().collect::<Vec<_>>().join(", "));
        }
        let _ = writeln!(out, "{who}");
    }
    for e in s.evidence.iter().take(EVIDENCE_SHOWN) {
        let _ = writeln!(out, "   - {e}");
    }
    if s.evidence.len() > EVIDENCE_SHOWN {
        let _ = writeln!(out, "   - (+{} more)", s.evidence.len() - EVIDENCE_SHOWN);
    }
}
