//! One verdict for a whole workload (a training job's pods across its nodes): its pods and nodes as the API
//! server reports them, each node's probe report and the GPUs each pod holds, ranked into suspects with their
//! evidence. Pure: the launcher gathers the inputs.
//!
//! A suspect is one thing that can be at fault (a GPU, a rank's pod, a node, a node's fabric, a pod's NCCL
//! configuration) with all of its evidence: the probe's findings (XID, ECC, fallen off the bus, NVLink, PCIe),
//! Kubernetes states (pods failed, restarting, OOMKilled or Pending; nodes NotReady, cordoned), straggler
//! comparisons (a GPU slower than its peers of the same model) and the ranks' own log lines
//! ([`super::joblog`]: CUDA errors, NCCL errors, torch elastic's root cause). A rank's pod maps to its node
//! and GPUs through the allocation (or NCCL's PCI address for its device, where the pods request every GPU
//! and the kubelet's assignment is not known), so a rank's CUDA ECC error and an Xid 48 on its GPU are one
//! suspect.
//! Order: the faults first, causes (an out-of-memory or CUDA error, a lost GPU, a failed NIC port) before
//! how they showed, the first to fail in time leading; a rank whose collective sequence number lags the
//! others' (the rank they all wait for) is a suspect even when it logged nothing, and where its own error
//! is known that error names the suspect and the waiting is how it showed. What followed from a cause is
//! counted as a consequence, never listed as another suspect: the other ranks' timeouts, a rank's torch
//! elastic "root cause" that is its own abort after its watchdog timed out, pods restarted after waiting.
//! The pod that holds a faulty GPU comes from the kubelet's assignment, else the ranks' NCCL init lines
//! (`busId`), else it is said to be one of the node's pods. What could not be examined (nodes not probed, logs not read) is
//! said, and then no verdict reads as a clean bill of health. Faults on GPUs the workload does not hold are
//! listed apart, never as suspects.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::describe::DescribeReport;
use super::joblog::{CudaErrorKind, LogEvent, NcclProblem, PodLogScan, Signature, Transport};
use super::telemetry::ReasonClass;
use crate::attribution::AllocationReport;
use crate::facts::NodeFacts;
use crate::finding::{Finding, Judged, Severity, Verdict, distinct};
use crate::options::AnalysisOptions;

/// What `node-probe workload` reports for one node: everything `describe` reports, plus the kubelet's
/// assignment of GPUs to pods, from one probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadNodeReport {
    pub describe: DescribeReport,
    pub allocation: AllocationReport,
}

impl Judged for WorkloadNodeReport {
    fn verdict(&self) -> Option<Verdict> {
        self.describe.verdict()
    }
    fn findings(&self) -> Vec<&Finding> {
        distinct(
            self.allocation
                .findings()
                .into_iter()
                .chain(self.describe.findings()),
        )
    }
}

/// `node-probe workload`'s analysis: `describe` and `allocation` of the same facts.
pub fn analyze_node(facts: &NodeFacts, opts: &AnalysisOptions) -> WorkloadNodeReport {
    WorkloadNodeReport {
        describe: super::describe::analyze(facts, opts),
        allocation: crate::attribution::analyze(facts, opts),
    }
}

/// One pod of the workload, as the API server reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadPod {
    pub name: String,
    pub uid: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// RFC 3339 (`status.startTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// The rank or replica index the workload publishes in its labels, with the label's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    /// `nvidia.com/gpu` requested by all its containers.
    pub gpus_requested: u64,
    pub restarts: u32,
    /// Why a container last terminated, when not Completed (e.g. `OOMKilled`, `Error exit 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<String>,
    /// Why a container waits (e.g. `CrashLoopBackOff: back-off 5m0s restarting ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why the pod is not scheduled (the scheduler's `PodScheduled=False` reason and message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<String>,
    /// `status.podIP`: NCCL names a peer by its address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Its containers that have started, and whether each has restarted (then its previous log holds what
    /// the last run said).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<PodContainer>,
}

/// A container of a workload pod whose log can be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PodContainer {
    pub name: String,
    pub restarted: bool,
}

/// A node the workload runs on, as the API server reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadNode {
    pub name: String,
    pub ready: bool,
    pub unschedulable: bool,
    /// `key=value:Effect`.
    pub taints: Vec<String>,
    /// Conditions not in their healthy state (`MemoryPressure=True`, ...).
    pub problem_conditions: Vec<String>,
    pub gpu_capacity: u64,
    pub gpu_allocatable: u64,
}

/// Everything the diagnosis looks at.
#[derive(Debug, Clone, Default)]
pub struct WorkloadInput {
    /// `kind/name` of the workload, for the verdict.
    pub workload: String,
    pub pods: Vec<WorkloadPod>,
    /// The nodes the pods are bound to (absent when the API server could not be read for one).
    pub nodes: Vec<WorkloadNode>,
    /// Each node's probe report, or why there is none.
    pub probes: BTreeMap<String, Result<Box<WorkloadNodeReport>, String>>,
    /// Each pod's log as scanned, or why it could not be read; None when no log was read at all.
    pub logs: Option<BTreeMap<String, Result<PodLogScan, String>>>,
    /// The limits logs were read under (said in the answer), e.g. `last 2000 lines, 1 MiB per container`.
    pub log_limits: Option<String>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SuspectKind {
    /// A fault on a GPU the workload holds.
    Hardware,
    /// A pod or node state Kubernetes reports.
    Kubernetes,
    /// A NIC port of a node of a multi-node job.
    Fabric,
    /// A GPU slower than its peers of the same model.
    Straggler,
    /// A rank (its pod) by its own log: its own error, or the rank the others wait for.
    Rank,
    /// A pod's configuration (NCCL fell back to sockets where its peers use InfiniBand).
    Configuration,
}

/// One suspect with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Suspect {
    /// 1 = look here first.
    pub rank: usize,
    pub kind: SuspectKind,
    pub severity: Severity,
    /// A finding code (`xid.79`, `nic.link_flapping`) or the diagnosis's own (`pod.pending`,
    /// `straggler.clocks`).
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    /// The workload's pods on that GPU (or node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// Their ranks, where the workload publishes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<String>,
    pub summary: String,
    pub evidence: Vec<String>,
    /// The other codes merged into this suspect (the same thing seen by other sources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
    /// When its first evidence happened (RFC 3339), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

/// How the diagnosis knows which GPUs a node's pods hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeldSource {
    /// The kubelet's own assignment (PodResources), read by the probe.
    Kubelet,
    /// The pods request every GPU of the node, so they hold them all.
    AllRequested,
    /// Only the requests are known: which of the node's GPUs the pods hold is not.
    RequestsOnly,
    /// No probe report for the node.
    NotProbed,
}

/// One node of the workload in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeSummary {
    pub node: String,
    pub pods: usize,
    /// GPU indices the workload holds there (empty when unknown).
    pub gpus_held: Vec<u32>,
    pub held_source: HeldSource,
    /// Why the node has no probe report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
}

/// The diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadDiagnosis {
    /// One line: what is most likely wrong, or that no hardware or node cause was found.
    pub verdict: String,
    /// True when at least one suspect was found.
    pub cause_found: bool,
    pub pods: usize,
    pub pods_by_phase: BTreeMap<String, usize>,
    pub gpus_held: usize,
    pub suspects: Vec<Suspect>,
    /// What the rest of the job did because of it (other ranks timing out, losing their peer), summarised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
    /// What could not be examined, why, and how to fix it; empty when everything was.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_examined: Vec<String>,
    pub logs_read: usize,
    pub log_bytes: u64,
    /// Faults on GPUs of the workload's nodes that the workload does not hold: not suspects.
    pub not_held: Vec<Suspect>,
    pub nodes: Vec<NodeSummary>,
}

/// Evidence lines kept per suspect.
pub const EVIDENCE_KEPT: usize = 24;
/// Evidence lines a merged source adds beside its summary.
const MERGED_EVIDENCE: usize = 2;

/// A straggler differs from the median of its peers by at least this many utilisation points (with the
/// peers busy), or sits this far below it in SM clock percentage.
pub const UTILIZATION_GAP_PCT: u32 = 50;
pub const CLOCK_GAP_PCT: u32 = 25;

pub fn diagnose(input: &WorkloadInput) -> WorkloadDiagnosis {
    let multi_node = input
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let mut suspects: Vec<(u32, Option<String>, Suspect)> = Vec::new();
    let mut not_held = Vec::new();
    let mut nodes = Vec::new();
    let mut peers: Vec<GpuSample> = Vec::new();
    let mut helds: BTreeMap<String, Held> = BTreeMap::new();

    kubernetes_suspects(input, &mut suspects);

    let node_names: BTreeSet<&str> = input
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect();
    for node in node_names {
        let pods: Vec<&WorkloadPod> = input
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(node))
            .collect();
        let report = match input.probes.get(node) {
            Some(Ok(r)) => r,
            other => {
                let err = match other {
                    Some(Err(e)) => e.clone(),
                    _ => "not probed".to_string(),
                };
                nodes.push(NodeSummary {
                    node: node.to_string(),
                    pods: pods.len(),
                    gpus_held: vec![],
                    held_source: HeldSource::NotProbed,
                    probe_error: Some(err),
                });
                continue;
            }
        };
        let mut held = held_gpus(report, &pods, input.nodes.iter().find(|n| n.name == node));
        let named = narrow_by_nccl_devices(&mut held, report, &pods, input.logs.as_ref());
        let (held_set, source) = (&held.0, held.1);
        nodes.push(NodeSummary {
            node: node.to_string(),
            pods: pods.len(),
            gpus_held: held_set.keys().copied().collect(),
            held_source: source,
            probe_error: None,
        });
        let first_xid = first_xid_times(&report.describe);
        let d = &report.describe;
        for f in d
            .health
            .findings()
            .into_iter()
            .filter(|f| f.severity >= Severity::Warning)
        {
            let is_nic = f.code.starts_with("nic.");
            let on_held = match f.gpu {
                Some(g) => held_set.contains_key(&g) || source == HeldSource::RequestsOnly,
                None => true,
            };
            let (kind, weight) = if is_nic {
                // A failed port is the cause its ranks' NCCL errors show (`nccl.ib_completion_error`, 90).
                (
                    SuspectKind::Fabric,
                    if f.severity == Severity::Critical {
                        91
                    } else {
                        65
                    },
                )
            } else if f.severity == Severity::Critical {
                (SuspectKind::Hardware, 100)
            } else {
                (SuspectKind::Hardware, 60)
            };
            let mut s = suspect_of(node, f, held_set, &pods, kind);
            if source == HeldSource::RequestsOnly && f.gpu.is_some() {
                s.evidence.push(format!(
                    "which GPUs the pods hold is unknown (the kubelet could not be asked): they request {} of the \
                     node's GPUs",
                    pods.iter().map(|p| p.gpus_requested).sum::<u64>()
                ));
            }
            if let Some(g) = f.gpu
                && let Some(line) = holder_line(g, &s.pods, source, &named)
            {
                // Right after the cause's own first line: who is hit is the next thing a reader asks.
                s.evidence.insert(s.evidence.len().min(1), line);
            }
            let first = f.gpu.and_then(|g| first_xid.get(&g).cloned());
            if let Some(t) = &first
                && f.code.starts_with("xid.")
            {
                s.evidence.push(format!("first XID on this GPU at {t}"));
                if let Some(started) = pods.iter().filter_map(|p| p.started.as_deref()).min() {
                    let when = if t.as_str() >= started {
                        "after"
                    } else {
                        "before"
                    };
                    s.evidence
                        .push(format!("{when} the workload's pods started ({started})"));
                }
            }
            // NIC ports matter to a job that talks across nodes; a one-node job's ports are not suspects.
            if (is_nic && !multi_node) || !on_held {
                not_held.push(s);
            } else {
                suspects.push((weight, first.filter(|_| !is_nic), s));
            }
        }
        peers.extend(samples(node, report, held_set, &pods));
        helds.insert(node.to_string(), held);
    }
    stragglers(&peers, &mut suspects);
    let mut consequences = Vec::new();
    log_suspects(input, &helds, &mut suspects, &mut consequences);

    let suspects = restarts_after_the_cause(input, merge_by_thing(suspects), &mut consequences);
    for (i, s) in not_held.iter_mut().enumerate() {
        s.rank = i + 1;
    }
    let mut pods_by_phase = BTreeMap::new();
    for p in &input.pods {
        *pods_by_phase.entry(p.phase.clone()).or_insert(0) += 1;
    }
    let gpus_held = nodes.iter().map(|n| n.gpus_held.len()).sum();
    let not_examined = not_examined(input, &nodes);
    let (logs_read, log_bytes) =
        input
            .logs
            .iter()
            .flatten()
            .fold((0, 0), |(n, b), (_, r)| match r {
                Ok(s) => (n + 1, b + s.bytes),
                Err(_) => (n, b),
            });
    let incomplete = if not_examined.is_empty() {
        String::new()
    } else {
        format!(" (incomplete: {})", short_gaps(input, &nodes))
    };
    let verdict = match suspects.first() {
        Some(s) => {
            let place = match (&s.node, s.gpu) {
                (Some(n), Some(g)) => format!(" on {n} GPU {g}"),
                (Some(n), None) => format!(" on {n}"),
                _ => String::new(),
            };
            let who = match s.pods.as_slice() {
                [one] => format!(" (pod {one})"),
                [_, _, ..] if s.gpu.is_some() => format!(
                    " (held by one of {} pods: which one is not known)",
                    s.pods.len()
                ),
                _ => String::new(),
            };
            format!(
                "{}: {} suspect(s); first: {}{place}{who}: {}{incomplete}",
                input.workload,
                suspects.len(),
                s.code,
                s.summary
            )
        }
        None if input.pods.is_empty() => format!("{}: no pods found", input.workload),
        None if !not_examined.is_empty() => format!(
            "{}: diagnosis incomplete, {}: no cause found in what could be examined, which is not a clean \
             bill of health; see not_examined for how to complete it",
            input.workload,
            short_gaps(input, &nodes)
        ),
        // Symptoms without a cause: say what was seen, and where the cause may still be.
        None if !consequences.is_empty() => format!(
            "{}: no cause found, but the job is not well: {}; the cause may be earlier than the log lines read \
             (raise log_tail_lines) or in the application",
            input.workload,
            consequences.join("; ")
        ),
        None => format!(
            "{}: nothing wrong found: {} pod(s) ({}) on {} node(s), every node probed: no fault or straggler on \
             its {} GPU(s), no pod or node problem; {} pod log(s) read ({} KiB): no failure signature",
            input.workload,
            input.pods.len(),
            pods_by_phase
                .iter()
                .map(|(p, n)| format!("{n} {p}"))
                .collect::<Vec<_>>()
                .join(", "),
            nodes.len(),
            gpus_held,
            logs_read,
            log_bytes / 1024
        ),
    };
    WorkloadDiagnosis {
        verdict,
        cause_found: !suspects.is_empty(),
        pods: input.pods.len(),
        pods_by_phase,
        gpus_held,
        suspects,
        consequences,
        not_examined,
        logs_read,
        log_bytes,
        not_held,
        nodes,
    }
}

/// Pods that restarted or failed only because their rank waited for another (its watchdog timed out, or
/// NCCL lost the peer) are not suspects once a cause is named: they are counted as consequences.
fn restarts_after_the_cause(
    input: &WorkloadInput,
    suspects: Vec<Suspect>,
    consequences: &mut Vec<String>,
) -> Vec<Suspect> {
    let Some(logs) = &input.logs else {
        return suspects;
    };
    let waited = |pod: &String| match logs.get(pod) {
        Some(Ok(s)) => {
            let own = s
                .first_fault
                .as_ref()
                .is_some_and(|f| !matches!(f.signature, Signature::ElasticRootCause { .. }));
            !own && (s.waited()
                || s.events.iter().any(|e| {
                    matches!(
                        e.signature,
                        Signature::Nccl {
                            problem: NcclProblem::RemoteExited
                                | NcclProblem::ConnectionClosed { .. }
                        }
                    )
                }))
        }
        _ => false,
    };
    let caused = suspects
        .iter()
        .any(|s| !is_symptom(&s.code) && s.severity == Severity::Critical);
    if !caused {
        return suspects;
    }
    let (after, keep): (Vec<Suspect>, Vec<Suspect>) = suspects.into_iter().partition(|s| {
        let codes = std::iter::once(&s.code).chain(&s.also);
        !s.pods.is_empty()
            && s.gpu.is_none()
            && codes.into_iter().all(|c| {
                matches!(
                    c.as_str(),
                    "pod.restarting" | "pod.failed" | "elastic.root_cause"
                )
            })
            && s.pods.iter().all(&waited)
    });
    if !after.is_empty() {
        let pods: Vec<&str> = after
            .iter()
            .flat_map(|s| &s.pods)
            .map(String::as_str)
            .collect();
        consequences.push(format!(
            "{} pod(s) restarted or failed after their rank timed out waiting (the cause above, not another): \
             {}{}",
            pods.len(),
            pods.iter().take(4).copied().collect::<Vec<_>>().join(", "),
            if pods.len() > 4 { ", ..." } else { "" }
        ));
    }
    keep.into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.rank = i + 1;
            s
        })
        .collect()
}

/// What a suspect is about: evidence about the same thing becomes one suspect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Thing {
    Gpu(String, u32),
    Node(String),
    Fabric(String),
    Pod(String),
    Config(String),
    Other(String),
}

fn thing_of(s: &Suspect) -> Thing {
    let node = s.node.clone().unwrap_or_default();
    match (s.kind, s.gpu) {
        (SuspectKind::Configuration, _) => Thing::Config(s.pods.join(",")),
        (SuspectKind::Fabric, _) if s.pods.len() == 1 && s.code.starts_with("nccl.") => {
            Thing::Pod(s.pods[0].clone())
        }
        (SuspectKind::Fabric, _) => Thing::Fabric(node),
        (_, Some(g)) if s.node.is_some() => Thing::Gpu(node, g),
        _ if s.code.starts_with("pod.") || s.kind == SuspectKind::Rank => {
            Thing::Pod(s.pods.first().cloned().unwrap_or_default())
        }
        _ if s.node.is_some() => Thing::Node(node),
        _ => Thing::Other(s.code.clone()),
    }
}

/// RFC 3339 times compared to the second first (precisions differ between sources), then in full.
fn time_key(t: &Option<String>) -> (bool, &str, &str) {
    match t {
        Some(t) => (false, t.get(..19).unwrap_or(t), t.as_str()),
        None => (true, "", ""),
    }
}

struct Piece {
    /// The heaviest of what it merged (its place in the order).
    weight: u32,
    /// The weight of the piece that names it (a symptom merged in does not outweigh another cause).
    lead: u32,
    /// A cause (a fault, an error of the rank's own) rather than how one showed (see [`is_symptom`]).
    cause: bool,
    first: Option<String>,
    s: Suspect,
    /// The pods whose rank's own evidence (its log) is in this piece.
    rank_pods: BTreeSet<String>,
}

/// Codes that say how a cause showed, not what it was: a rank the others wait for (it stopped: why is the
/// cause), a pod that restarted or failed, torch elastic's first failure, a peer that went away, a node
/// cordoned or with a GPU withdrawn after a fault, a GPU idle while its peers work.
const SYMPTOMS: &[&str] = &[
    "collective.lagging_rank",
    "pod.restarting",
    "pod.failed",
    "elastic.root_cause",
    "nccl.peer_lost",
    "node.cordoned_or_tainted",
    "node.gpu_withdrawn",
    "node.condition",
    "straggler.utilization",
];

pub fn is_symptom(code: &str) -> bool {
    SYMPTOMS.contains(&code)
}

/// What a lagging rank's summary says the others did (`15 pod(s) timed out in ALLREDUCE SeqNum=100`).
fn waited_phrase(lagging_summary: &str) -> Option<&str> {
    let (_, rest) = lagging_summary.split_once("wait for: ")?;
    Some(rest.split("; it ").next().unwrap_or(rest))
}

/// Fold `b` into `a`: the cause names the suspect (the heavier piece among causes, or among symptoms), the
/// other's code and evidence join it, so a rank's out-of-memory error leads and the others waiting for that
/// rank is how it showed.
fn absorb(a: &mut Piece, mut b: Piece) {
    if (b.cause, b.lead) > (a.cause, a.lead) {
        std::mem::swap(a, &mut b);
        // Keep the evidence of what was there first in front of the newcomer's explanation.
    }
    a.weight = a.weight.max(b.weight);
    a.rank_pods.append(&mut b.rank_pods);
    let cause = a.cause;
    let (a_s, b_s) = (&mut a.s, b.s);
    if a_s.code != b_s.code && !a_s.also.contains(&b_s.code) {
        a_s.also.push(b_s.code.clone());
    }
    for c in b_s.also {
        if c != a_s.code && !a_s.also.contains(&c) {
            a_s.also.push(c);
        }
    }
    if cause
        && b_s.code == "collective.lagging_rank"
        && let Some(w) = waited_phrase(&b_s.summary)
        && !a_s.summary.contains("; then ")
    {
        a_s.summary = format!(
            "{}; then {w}, waiting for it",
            a_s.summary.trim_end_matches('.')
        );
    }
    if b_s.summary != a_s.summary {
        a_s.evidence.push(format!("{}: {}", b_s.code, b_s.summary));
    }
    // A merged source adds its summary and its first lines: the whole of it stays in its own report.
    for e in b_s.evidence.into_iter().take(MERGED_EVIDENCE) {
        if !a_s.evidence.contains(&e) {
            a_s.evidence.push(e);
        }
    }
    a_s.evidence.truncate(EVIDENCE_KEPT);
    a_s.severity = a_s.severity.max(b_s.severity);
    // A fabric suspect is about a node's ports, not one GPU.
    if a_s.kind != SuspectKind::Fabric {
        if a_s.gpu.is_none() {
            a_s.gpu = b_s.gpu;
        }
        if a_s.gpu_uuid.is_none() {
            a_s.gpu_uuid = b_s.gpu_uuid;
        }
    }
    if a_s.node.is_none() {
        a_s.node = b_s.node;
    }
    for p in b_s.pods {
        if !a_s.pods.contains(&p) {
            a_s.pods.push(p);
        }
    }
    for r in b_s.ranks {
        if !a_s.ranks.contains(&r) {
            a_s.ranks.push(r);
        }
    }
    if time_key(&b.first) < time_key(&a.first) {
        a.first = b.first;
    }
}

/// One suspect per thing, then a rank's pod and a node's own findings fold into the one faulty GPU they
/// sit on; ordered and numbered.
fn merge_by_thing(parts: Vec<(u32, Option<String>, Suspect)>) -> Vec<Suspect> {
    let mut things: BTreeMap<Thing, Piece> = BTreeMap::new();
    for (weight, first, s) in parts {
        let rank_pods = match s.kind {
            SuspectKind::Rank => s.pods.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        let piece = Piece {
            weight,
            lead: weight,
            cause: !is_symptom(&s.code),
            first,
            s,
            rank_pods,
        };
        match things.entry(thing_of(&piece.s)) {
            std::collections::btree_map::Entry::Occupied(mut e) => absorb(e.get_mut(), piece),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(piece);
            }
        }
    }
    let gpu_of = |things: &BTreeMap<Thing, Piece>, k: &Thing| -> Option<Thing> {
        let p = &things[k];
        let faulty = |t: &Thing| {
            matches!(t, Thing::Gpu(..))
                && matches!(
                    things[t].s.kind,
                    SuspectKind::Hardware | SuspectKind::Straggler
                )
        };
        match k {
            Thing::Pod(pod) => {
                // A rank's fabric error joins its node's faulty NIC ports: one cause, seen twice.
                if p.s.kind == SuspectKind::Fabric
                    && let Some(n) = &p.s.node
                {
                    let t = Thing::Fabric(n.clone());
                    if things.contains_key(&t) {
                        return Some(t);
                    }
                }
                if let (Some(n), Some(g)) = (&p.s.node, p.s.gpu) {
                    let t = Thing::Gpu(n.clone(), g);
                    return things.contains_key(&t).then_some(t);
                }
                // The GPU its rank's own log names comes first: a restart is about that rank, not
                // about another faulty GPU the pod also holds.
                let own: Vec<&Thing> = things
                    .keys()
                    .filter(|t| matches!(t, Thing::Gpu(..)) && things[*t].rank_pods.contains(pod))
                    .collect();
                if let [t] = own.as_slice() {
                    return Some((*t).clone());
                }
                let on: Vec<&Thing> = things
                    .keys()
                    .filter(|t| faulty(t) && things[*t].s.pods.contains(pod))
                    .collect();
                (on.len() == 1).then(|| on[0].clone())
            }
            Thing::Node(node) => {
                let on: Vec<&Thing> = things
                    .keys()
                    .filter(|t| faulty(t) && matches!(t, Thing::Gpu(n, _) if n == node))
                    .collect();
                (on.len() == 1).then(|| on[0].clone())
            }
            _ => None,
        }
    };
    let keys: Vec<Thing> = things.keys().cloned().collect();
    for k in keys {
        if let Some(target) = gpu_of(&things, &k)
            && target != k
            && let Some(mut piece) = things.remove(&k)
            && let Some(t) = things.get_mut(&target)
        {
            if matches!(k, Thing::Node(_)) && matches!(target, Thing::Gpu(..)) {
                // A node's own finding names every pod of the node; the GPU's holders stay its holders.
                piece.s.pods.clear();
                piece.s.ranks.clear();
            }
            absorb(t, piece);
        }
    }
    let mut pieces: Vec<Piece> = things.into_values().collect();
    // The faults first, the first to fail in time leading; then by weight, node and GPU.
    pieces.sort_by(|a, b| {
        let fault = |p: &Piece| p.weight >= 85;
        fault(b)
            .cmp(&fault(a))
            .then_with(|| b.cause.cmp(&a.cause))
            .then_with(|| {
                if fault(a) {
                    time_key(&a.first).cmp(&time_key(&b.first))
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| b.weight.cmp(&a.weight))
            .then_with(|| time_key(&a.first).cmp(&time_key(&b.first)))
            .then_with(|| a.s.node.cmp(&b.s.node))
            .then_with(|| a.s.gpu.cmp(&b.s.gpu))
    });
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = p.s;
            s.rank = i + 1;
            s.first_seen = p.first;
            s
        })
        .collect()
}

/// The nodes and logs not examined, in a few words for the verdict.
fn short_gaps(input: &WorkloadInput, nodes: &[NodeSummary]) -> String {
    let mut parts = Vec::new();
    let unprobed = nodes.iter().filter(|n| n.probe_error.is_some()).count();
    if unprobed > 0 {
        parts.push(format!("{unprobed} of {} node(s) not probed", nodes.len()));
    }
    let scheduled = input.pods.iter().filter(|p| p.node.is_some()).count();
    match &input.logs {
        None if scheduled > 0 => parts.push("pod logs not read".to_string()),
        Some(l) => {
            let failed = l.values().filter(|r| r.is_err()).count();
            if failed > 0 {
                parts.push(format!("{failed} of {} pod log(s) not read", l.len()));
            }
        }
        None => {}
    }
    parts.join(", ")
}

/// Each gap with why and how to close it.
fn not_examined(input: &WorkloadInput, nodes: &[NodeSummary]) -> Vec<String> {
    let mut out = Vec::new();
    let failed: Vec<&NodeSummary> = nodes.iter().filter(|n| n.probe_error.is_some()).collect();
    if !failed.is_empty() {
        let mut why: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for n in &failed {
            let e = n.probe_error.as_deref().unwrap_or_default();
            let first = e.lines().next().unwrap_or(e).chars().take(300).collect();
            why.entry(first).or_default().push(&n.node);
        }
        for (e, ns) in why.iter().take(3) {
            out.push(format!(
                "{} node(s) not probed ({}{}): {e}",
                ns.len(),
                ns.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if ns.len() > 3 { ", ..." } else { "" }
            ));
        }
        out.push(
            "their GPUs, XIDs and fabric were not examined: fix what the error says (e.g. a probe image that \
             the nodes can pull: --probe-image <image with node-probe>, or RBAC per `k8s-gpu-mcp check`), then \
             ask again"
                .to_string(),
        );
    }
    let scheduled = input.pods.iter().filter(|p| p.node.is_some()).count();
    match &input.logs {
        None if scheduled > 0 => out.push(
            "the pods' logs were not read: the ranks' own errors (NCCL, CUDA, PyTorch) were not examined".into(),
        ),
        Some(l) => {
            let mut why: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (pod, r) in l {
                if let Err(e) = r {
                    why.entry(e.as_str()).or_default().push(pod);
                }
            }
            for (e, pods) in why.iter().take(3) {
                out.push(format!(
                    "{} pod log(s) not read ({}{}): {}",
                    pods.len(),
                    pods.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if pods.len() > 3 { ", ..." } else { "" },
                    e.chars().take(300).collect::<String>()
                ));
            }
        }
        None => {}
    }
    out
}

fn pod_of_ip<'a>(input: &'a WorkloadInput, peer: &str) -> Option<&'a WorkloadPod> {
    // NCCL writes `addr<port>`; IPv6 may come bracketed.
    let addr = peer
        .split('<')
        .next()?
        .trim_matches(|c| c == '[' || c == ']');
    input.pods.iter().find(|p| p.ip.as_deref() == Some(addr))
}

fn describe_event(e: &LogEvent) -> String {
    let when = e
        .time
        .as_deref()
        .map(|t| format!("{t} "))
        .unwrap_or_default();
    let src = e
        .source
        .as_deref()
        .map(|s| format!("[{s}] "))
        .unwrap_or_default();
    format!("{when}{src}log: {}", e.line)
}

/// Which of the node's GPUs a pod's faulting rank ran on: NCCL's PCI address, else the pod's only GPU, else
/// NCCL's NVML index where the pod sees every GPU.
fn gpu_of_pod(
    input: &WorkloadInput,
    pod: &WorkloadPod,
    scan: &PodLogScan,
    helds: &BTreeMap<String, Held>,
) -> Option<(u32, Option<String>)> {
    let node = pod.node.as_deref()?;
    let (held, source) = helds.get(node)?;
    let report = match input.probes.get(node) {
        Some(Ok(r)) => r,
        _ => return None,
    };
    let dev = scan.device_of_faulting_rank();
    if let Some(bus) = dev.and_then(|d| d.pci_bus_id.as_deref())
        && let Some((i, _)) = bus_ids(report).into_iter().find(|(_, b)| b == bus)
    {
        let uuid = report
            .describe
            .inventory
            .gpus
            .iter()
            .find(|g| g.index == i)
            .and_then(|g| g.uuid.ok().cloned());
        return Some((i, uuid));
    }
    let mine: Vec<_> = held
        .iter()
        .filter(|(_, (_, p))| p.contains(&pod.name))
        .collect();
    if let [(g, (uuid, _))] = mine.as_slice() {
        return Some((**g, uuid.clone()));
    }
    if *source == HeldSource::AllRequested
        && let Some(i) = dev.and_then(|d| d.nvml_dev)
        && let Some((uuid, _)) = held.get(&i)
    {
        return Some((i, uuid.clone()));
    }
    None
}

/// The ranks' own evidence: each pod's first own fault, the rank the others wait for (its collective
/// sequence number lags, or it logged no timeout while the others did), the peer NCCL lost, and a rank on
/// sockets where its peers use InfiniBand; the collateral timeouts become consequences.
fn log_suspects(
    input: &WorkloadInput,
    helds: &BTreeMap<String, Held>,
    out: &mut Vec<(u32, Option<String>, Suspect)>,
    consequences: &mut Vec<String>,
) {
    let Some(logs) = &input.logs else { return };
    let read: Vec<(&WorkloadPod, &PodLogScan)> = input
        .pods
        .iter()
        .filter_map(|p| match logs.get(&p.name) {
            Some(Ok(s)) => Some((p, s)),
            _ => None,
        })
        .collect();
    let base = |p: &WorkloadPod, s: &PodLogScan, kind, severity, code: &str, summary: String| {
        let mut ranks: Vec<String> = p.rank.iter().cloned().collect();
        ranks.extend(s.ranks.iter().take(4).map(|r| format!("rank {r}")));
        let gpu = gpu_of_pod(input, p, s, helds);
        Suspect {
            rank: 0,
            kind,
            severity,
            code: code.to_string(),
            node: p.node.clone(),
            gpu: gpu.as_ref().map(|g| g.0),
            gpu_uuid: gpu.and_then(|g| g.1),
            pods: vec![p.name.clone()],
            ranks,
            summary,
            evidence: vec![],
            also: vec![],
            first_seen: None,
        }
    };
    let rank_label = |p: &WorkloadPod, s: &PodLogScan| match s.ranks.first() {
        Some(r) => format!("rank {r} (pod {})", p.name),
        None => format!("pod {}", p.name),
    };

    // 1. Each rank's own fault.
    let mut aborted_after_timeout: Vec<String> = Vec::new();
    for (p, s) in &read {
        let Some(f) = &s.first_fault else { continue };
        let (code, kind, weight, what): (String, SuspectKind, u32, String) = match &f.signature {
            Signature::CudaError { error } => {
                let (c, w, what) = match error {
                    CudaErrorKind::EccUncorrectable => (
                        "ecc_uncorrectable",
                        96,
                        "hit an uncorrectable ECC error on its GPU (the GPU's memory, not the program)",
                    ),
                    CudaErrorKind::IllegalAddress => (
                        "illegal_address",
                        93,
                        "hit an illegal memory access (a program bug, or a GPU fault when an Xid 13/31/43 matches)",
                    ),
                    CudaErrorKind::LaunchFailure => (
                        "launch_failure",
                        94,
                        "hit an unspecified launch failure (often a GPU or driver fault: look for an Xid)",
                    ),
                    CudaErrorKind::OutOfMemory => (
                        "out_of_memory",
                        91,
                        "ran out of GPU memory (its batch, model or memory fragmentation: the program, not a hardware \
                         fault)",
                    ),
                };
                (format!("cuda.{c}"), SuspectKind::Rank, w, what.to_string())
            }
            Signature::ElasticRootCause {
                rank,
                host,
                exitcode,
                ..
            } => (
                "elastic.root_cause".into(),
                SuspectKind::Rank,
                92,
                format!(
                    "is torch elastic's first observed failure{}{}{}",
                    rank.map(|r| format!(": rank {r}")).unwrap_or_default(),
                    host.as_deref()
                        .map(|h| format!(" on host {h}"))
                        .unwrap_or_default(),
                    exitcode
                        .map(|e| format!(", exit code {e}"))
                        .unwrap_or_default()
                ),
            ),
            Signature::Nccl {
                problem:
                    NcclProblem::IbCompletion {
                        peer,
                        status,
                        vendor_err,
                    },
            } => (
                "nccl.ib_completion_error".into(),
                SuspectKind::Fabric,
                90,
                format!(
                    "got an InfiniBand completion error{}{}{} (its node's NIC or link, or the peer's)",
                    status.map(|s| format!(" status {s}")).unwrap_or_default(),
                    vendor_err
                        .map(|v| format!(", vendor syndrome {v}"))
                        .unwrap_or_default(),
                    peer.as_deref()
                        .map(|p| format!(" from peer {p}"))
                        .unwrap_or_default()
                ),
            ),
            _ => (
                "nccl.system_error".into(),
                SuspectKind::Rank,
                86,
                "hit an NCCL unhandled system error (a socket, memory or driver call failed)"
                    .into(),
            ),
        };
        // torch elastic's agent may name a rank on another pod: the suspect is the pod named as host.
        let (pod, scan) = match &f.signature {
            Signature::ElasticRootCause { host: Some(h), .. } => read
                .iter()
                .find(|(q, _)| &q.name == h || h.starts_with(&format!("{}.", q.name)))
                .map(|(q, s)| (*q, *s))
                .unwrap_or((*p, *s)),
            _ => (*p, *s),
        };
        // torch elastic names the first rank to exit; when that rank's own watchdog had timed out (and
        // took the process down: SIGABRT, exit -6), the exit is the wait ending, not a cause.
        if matches!(f.signature, Signature::ElasticRootCause { .. }) && scan.waited() {
            aborted_after_timeout.push(rank_label(pod, scan));
            continue;
        }
        let mut sus = base(
            pod,
            scan,
            kind,
            Severity::Critical,
            &code,
            format!("{} {what}", rank_label(pod, scan)),
        );
        sus.evidence.push(describe_event(f));
        if kind == SuspectKind::Fabric {
            sus.gpu = None;
            sus.gpu_uuid = None;
        }
        out.push((weight, f.time.clone(), sus));
    }

    // 2. The rank everyone waits for.
    let timed_out: Vec<(&WorkloadPod, &PodLogScan, u64)> = read
        .iter()
        .filter_map(|(p, s)| s.timed_out_seq.map(|q| (*p, *s, q)))
        .collect();
    if let Some(max_seq) = timed_out.iter().map(|t| t.2).max() {
        let at_max: Vec<&(&WorkloadPod, &PodLogScan, u64)> =
            timed_out.iter().filter(|t| t.2 == max_seq).collect();
        let op = at_max
            .iter()
            .find_map(|t| t.1.timed_out_op.clone())
            .unwrap_or_else(|| "a collective".into());
        let timeout = at_max.iter().find_map(|t| t.1.timeout_ms);
        let first_at = at_max.iter().filter_map(|t| t.1.timed_out_at.clone()).min();
        let lagging: Vec<(&WorkloadPod, &PodLogScan)> = read
            .iter()
            .filter(|(p, s)| p.phase != "Pending" && s.timed_out_seq.is_none_or(|q| q < max_seq))
            .map(|(p, s)| (*p, *s))
            .collect();
        consequences.push(format!(
            "{} of {} pod(s) timed out waiting in {op} SeqNum={max_seq}{}{}",
            at_max.len(),
            input.pods.len(),
            timeout
                .map(|t| format!(" after {t} ms"))
                .unwrap_or_default(),
            first_at
                .map(|t| format!(", the first at {t}"))
                .unwrap_or_default()
        ));
        // A lagging minority is who the rest waits for; when most lag, the comparison names nobody.
        if !lagging.is_empty() && lagging.len() * 4 <= read.len().max(4) {
            for (p, s) in lagging {
                let (what, ev) = match s.timed_out_seq {
                    Some(q) => (
                        format!("timed out earlier, at SeqNum={q}"),
                        format!("its own watchdog timed out at SeqNum={q} < {max_seq}"),
                    ),
                    None => (
                        "logged no timeout: it never reached that collective".to_string(),
                        format!(
                            "no watchdog timeout in its log while {} rank(s) time out at SeqNum={max_seq}",
                            at_max.len()
                        ),
                    ),
                };
                let mut sus = base(
                    p,
                    s,
                    SuspectKind::Rank,
                    Severity::Critical,
                    "collective.lagging_rank",
                    format!(
                        "{} is the rank the others wait for: {} pod(s) timed out in {op} SeqNum={max_seq}; it {what}",
                        rank_label(p, s),
                        at_max.len()
                    ),
                );
                sus.evidence.push(ev);
                // Keyed as the rank's own fabric error is (a node's ports, not a GPU), so the two are one.
                if s.first_fault.as_ref().is_some_and(|f| {
                    matches!(
                        f.signature,
                        Signature::Nccl {
                            problem: NcclProblem::IbCompletion { .. }
                        }
                    )
                }) {
                    sus.gpu = None;
                    sus.gpu_uuid = None;
                }
                if let Some(c) = s.last_completed {
                    sus.evidence
                        .push(format!("its last completed collective: {c}"));
                }
                out.push((95, None, sus));
            }
        }
    }

    // 3. Peers NCCL lost: the peer named by address, and the ranks that only lost a peer.
    let mut lost: BTreeMap<&str, (usize, Option<String>)> = BTreeMap::new();
    let mut remote_exited = 0;
    for (_, s) in &read {
        for e in &s.events {
            match &e.signature {
                Signature::Nccl {
                    problem: NcclProblem::ConnectionClosed { peer: Some(peer) },
                } => {
                    if let Some(q) = pod_of_ip(input, peer) {
                        let en = lost.entry(q.name.as_str()).or_insert((0, None));
                        en.0 += 1;
                        if time_key(&e.time) < time_key(&en.1) {
                            en.1 = e.time.clone();
                        }
                    }
                }
                Signature::Nccl {
                    problem: NcclProblem::RemoteExited,
                } => remote_exited += 1,
                _ => {}
            }
        }
    }
    for (name, (n, first)) in lost {
        let Some((p, s)) = read.iter().find(|(p, _)| p.name == name) else {
            continue;
        };
        let mut sus = base(
            p,
            s,
            SuspectKind::Rank,
            Severity::Critical,
            "nccl.peer_lost",
            format!(
                "{} went away: {n} log line(s) of its peers say NCCL's connection to it closed",
                rank_label(p, s)
            ),
        );
        sus.evidence.push(format!(
            "NCCL: connection closed by remote peer {} (its pod IP){}",
            p.ip.as_deref().unwrap_or("?"),
            first
                .as_deref()
                .map(|t| format!(", first at {t}"))
                .unwrap_or_default()
        ));
        out.push((89, first, sus));
    }
    if remote_exited > 0 {
        let pods = read
            .iter()
            .filter(|(_, s)| {
                s.events.iter().any(|e| {
                    matches!(
                        e.signature,
                        Signature::Nccl {
                            problem: NcclProblem::RemoteExited
                        }
                    )
                })
            })
            .count();
        consequences.push(format!(
            "{pods} pod(s) report NCCL `remote process exited or there was a network error`: they lost a peer"
        ));
    }

    // 4. A rank on sockets where its peers use InfiniBand.
    let ib = read
        .iter()
        .filter(|(_, s)| s.transport == Some(Transport::Ib))
        .count();
    if ib > 0 {
        for (p, s) in read
            .iter()
            .filter(|(_, s)| s.transport == Some(Transport::Socket))
        {
            let mut sus = base(
                p,
                s,
                SuspectKind::Configuration,
                Severity::Warning,
                "nccl.socket_fallback",
                format!(
                    "{} runs NCCL over NET/Socket while {ib} of its peers use NET/IB: every collective runs at \
                     TCP speed (no RDMA device in the pod, or NCCL_IB_DISABLE / NCCL_NET set)",
                    rank_label(p, s)
                ),
            );
            if let Some(n) = &s.nics {
                sus.evidence.push(format!("NCCL: NET/Socket : Using {n}"));
            }
            sus.gpu = None;
            sus.gpu_uuid = None;
            out.push((72, None, sus));
        }
    }
    let hangs = read
        .iter()
        .filter(|(_, s)| s.events.iter().any(|e| e.signature == Signature::Hang))
        .count();
    if hangs > 0 {
        consequences.push(format!(
            "{hangs} pod(s) print a hang notice (heartbeat monitor, rendezvous or store timeout)"
        ));
    }
    if !aborted_after_timeout.is_empty() {
        consequences.push(format!(
            "{} torch elastic root cause(s) are a rank's own abort after its watchdog timed out (PyTorch takes \
             the process down, SIGABRT): {}{}",
            aborted_after_timeout.len(),
            aborted_after_timeout
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if aborted_after_timeout.len() > 3 { ", ..." } else { "" }
        ));
    }
}

/// GPU index -> (UUID, pods holding it) on one node, and how that is known.
type Held = (BTreeMap<u32, (Option<String>, Vec<String>)>, HeldSource);

fn held_gpus(
    report: &WorkloadNodeReport,
    pods: &[&WorkloadPod],
    node: Option<&WorkloadNode>,
) -> Held {
    let mut held: BTreeMap<u32, (Option<String>, Vec<String>)> = BTreeMap::new();
    let alloc = &report.allocation;
    if alloc.exact {
        for p in &alloc.pods {
            let Some(ours) = pods
                .iter()
                .find(|w| p.uid.as_deref() == Some(w.uid.as_str()) || p.name == w.name)
            else {
                continue;
            };
            for d in p.containers.iter().flat_map(|c| c.devices.iter()) {
                if let Some(i) = d.gpu_index {
                    let e = held.entry(i).or_insert((d.gpu_uuid.clone(), vec![]));
                    if !e.1.contains(&ours.name) {
                        e.1.push(ours.name.clone());
                    }
                }
            }
        }
        return (held, HeldSource::Kubelet);
    }
    let gpus: Vec<(u32, Option<String>)> = report
        .describe
        .inventory
        .gpus
        .iter()
        .map(|g| (g.index, g.uuid.ok().cloned()))
        .collect();
    let requested: u64 = pods.iter().map(|p| p.gpus_requested).sum();
    let capacity = node
        .map(|n| n.gpu_capacity)
        .filter(|c| *c > 0)
        .unwrap_or(gpus.len() as u64);
    if requested > 0 && requested >= capacity {
        let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        for (i, uuid) in gpus {
            held.insert(i, (uuid, names.clone()));
        }
        return (held, HeldSource::AllRequested);
    }
    (held, HeldSource::RequestsOnly)
}

/// Where the pods request every GPU of a node, which pod holds which GPU is not known, unless a rank's NCCL
/// init line names its GPU by PCI address: that GPU is then held by the pods naming it, and a pod whose
/// named GPUs cover its request holds no other. Without that, a fault on one GPU would name every pod of
/// the node. A GPU is never left without holders (a log that contradicts the requests changes nothing).
/// Returns, for each GPU a log named, how that is known (evidence for its suspect).
fn narrow_by_nccl_devices(
    held: &mut Held,
    report: &WorkloadNodeReport,
    pods: &[&WorkloadPod],
    logs: Option<&BTreeMap<String, Result<PodLogScan, String>>>,
) -> BTreeMap<u32, String> {
    let mut how = BTreeMap::new();
    let Some(logs) = logs else { return how };
    if held.1 != HeldSource::AllRequested {
        return how;
    }
    let bus_of = bus_ids(report);
    let mut naming: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for p in pods {
        let Some(Ok(scan)) = logs.get(&p.name) else {
            continue;
        };
        let mut mine: BTreeSet<u32> = BTreeSet::new();
        for d in &scan.rank_devices {
            let Some(bus) = d.pci_bus_id.as_deref() else {
                continue;
            };
            if let Some((g, _)) = bus_of.iter().find(|(_, b)| b == bus) {
                mine.insert(*g);
                how.entry(*g).or_insert_with(|| {
                    format!(
                        "rank {}'s NCCL init line names this GPU's PCI address ({bus})",
                        d.rank
                    )
                });
            }
        }
        if !mine.is_empty() && mine.len() as u64 >= p.gpus_requested {
            placed.insert(p.name.as_str());
        }
        for g in mine {
            naming.entry(g).or_default().push(p.name.clone());
        }
    }
    for (g, (_, holders)) in held.0.iter_mut() {
        let narrowed: Vec<String> = match naming.get(g) {
            Some(names) => names.clone(),
            None => holders
                .iter()
                .filter(|h| !placed.contains(h.as_str()))
                .cloned()
                .collect(),
        };
        if !narrowed.is_empty() {
            *holders = narrowed;
        }
    }
    how
}

/// Each GPU's PCI address in canonical form: NVML's, else the kernel log's (an Xid line names the address
/// of a GPU NVML can no longer read).
fn bus_ids(report: &WorkloadNodeReport) -> Vec<(u32, String)> {
    let d = &report.describe;
    let mut out: Vec<(u32, String)> = d
        .inventory
        .gpus
        .iter()
        .filter_map(|g| Some((g.index, crate::pci::normalize_bus_id(g.pci_bus_id.ok()?)?)))
        .collect();
    for x in &d.xid.gpus {
        if let (Some(i), Some(b)) = (x.index, x.pci_bus_id.as_deref())
            && !out.iter().any(|(g, _)| *g == i)
            && let Some(b) = crate::pci::normalize_bus_id(b)
        {
            out.push((i, b));
        }
    }
    out
}

/// Who holds GPU `g`, from the best source there is: the kubelet's assignment, a rank's NCCL init line,
/// else the pods that may hold it, said as such.
fn holder_line(
    g: u32,
    holders: &[String],
    source: HeldSource,
    named: &BTreeMap<u32, String>,
) -> Option<String> {
    let [one] = holders else {
        return (holders.len() > 1).then(|| {
            format!(
                "held by one of {} pods on the node ({}{}): they request all its GPUs and no rank's NCCL init \
                 line names this one",
                holders.len(),
                holders.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if holders.len() > 3 { ", ..." } else { "" }
            )
        });
    };
    match (source, named.get(&g)) {
        (HeldSource::Kubelet, _) => Some(format!(
            "held by pod {one} (the kubelet's device assignment)"
        )),
        (_, Some(how)) => Some(format!("held by pod {one}: {how}")),
        (HeldSource::AllRequested, None) => Some(format!(
            "held by pod {one} (it requests every GPU of the node)"
        )),
        _ => None,
    }
}

fn suspect_of(
    node: &str,
    f: &Finding,
    held: &BTreeMap<u32, (Option<String>, Vec<String>)>,
    pods: &[&WorkloadPod],
    kind: SuspectKind,
) -> Suspect {
    let holders: Vec<String> = match f.gpu.and_then(|g| held.get(&g)) {
        Some((_, names)) => names.clone(),
        None => pods.iter().map(|p| p.name.clone()).collect(),
    };
    let ranks = pods
        .iter()
        .filter(|p| holders.contains(&p.name))
        .filter_map(|p| p.rank.clone())
        .collect();
    Suspect {
        rank: 0,
        kind,
        severity: f.severity,
        code: f.code.clone(),
        node: Some(node.to_string()),
        gpu: f.gpu,
        gpu_uuid: f
            .gpu_uuid
            .clone()
            .or_else(|| f.gpu.and_then(|g| held.get(&g).and_then(|h| h.0.clone()))),
        pods: holders,
        ranks,
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
        also: vec![],
        first_seen: None,
    }
}

/// The first XID time per GPU index (RFC 3339), from the node's XID report.
fn first_xid_times(d: &DescribeReport) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for g in &d.xid.gpus {
        let (Some(i), Some(first)) = (g.index, g.xids.iter().filter_map(|c| c.first.clone()).min())
        else {
            continue;
        };
        out.insert(i, first);
    }
    out
}

fn kubernetes_suspects(input: &WorkloadInput, out: &mut Vec<(u32, Option<String>, Suspect)>) {
    let k8s = |weight: u32,
               severity,
               code: &str,
               node: Option<&str>,
               pod: Option<&WorkloadPod>,
               summary: String,
               evidence: Vec<String>| {
        (
            weight,
            None,
            Suspect {
                rank: 0,
                kind: SuspectKind::Kubernetes,
                severity,
                code: code.to_string(),
                node: node.map(String::from),
                gpu: None,
                gpu_uuid: None,
                pods: pod.map(|p| vec![p.name.clone()]).unwrap_or_default(),
                ranks: pod.and_then(|p| p.rank.clone()).into_iter().collect(),
                summary,
                evidence,
                also: vec![],
                first_seen: None,
            },
        )
    };
    for p in &input.pods {
        let node = p.node.as_deref();
        if p.phase == "Pending" && p.node.is_none() {
            let why = p
                .unschedulable
                .clone()
                .unwrap_or_else(|| "not scheduled yet (no scheduler verdict recorded)".into());
            out.push(k8s(
                85,
                Severity::Critical,
                "pod.pending",
                None,
                Some(p),
                format!("pod {} is Pending: {why}", p.name),
                vec![format!("requests {} GPU(s)", p.gpus_requested)],
            ));
        } else if p.phase == "Failed" {
            out.push(k8s(
                90,
                Severity::Critical,
                "pod.failed",
                node,
                Some(p),
                format!(
                    "pod {} failed{}",
                    p.name,
                    p.last_termination
                        .as_deref()
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default()
                ),
                vec![],
            ));
        } else if p
            .last_termination
            .as_deref()
            .is_some_and(|t| t.contains("OOMKilled"))
        {
            out.push(k8s(
                90,
                Severity::Critical,
                "pod.oom_killed",
                node,
                Some(p),
                format!(
                    "pod {} was OOMKilled (host memory, not GPU memory); restarts: {}",
                    p.name, p.restarts
                ),
                p.waiting.iter().cloned().collect(),
            ));
        } else if p.restarts > 0 || p.waiting.is_some() {
            let mut ev = vec![format!("restarts: {}", p.restarts)];
            ev.extend(
                p.last_termination
                    .iter()
                    .map(|t| format!("last termination: {t}")),
            );
            ev.extend(p.waiting.iter().map(|w| format!("waiting: {w}")));
            out.push(k8s(
                if p.waiting.is_some() { 88 } else { 55 },
                if p.waiting.is_some() {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                "pod.restarting",
                node,
                Some(p),
                format!("pod {} restarted {} time(s)", p.name, p.restarts),
                ev,
            ));
        }
    }
    for n in &input.nodes {
        let ours: Vec<&WorkloadPod> = input
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(n.name.as_str()))
            .collect();
        let names = |s: &mut Suspect| {
            s.pods = ours.iter().map(|p| p.name.clone()).collect();
            s.ranks = ours.iter().filter_map(|p| p.rank.clone()).collect();
        };
        if !n.ready {
            let mut s = k8s(
                90,
                Severity::Critical,
                "node.not_ready",
                Some(&n.name),
                None,
                format!("node {} is NotReady", n.name),
                n.problem_conditions.clone(),
            );
            names(&mut s.2);
            out.push(s);
        } else if !n.problem_conditions.is_empty() {
            let mut s = k8s(
                50,
                Severity::Warning,
                "node.condition",
                Some(&n.name),
                None,
                format!(
                    "node {} reports {}",
                    n.name,
                    n.problem_conditions.join(", ")
                ),
                vec![],
            );
            names(&mut s.2);
            out.push(s);
        }
        // Health monitors cordon and taint a node they find faulty; the scheduler's own taints for
        // NotReady/unreachable say the same as the condition above.
        let monitor: Vec<&String> = n
            .taints
            .iter()
            .filter(|t| !t.starts_with("node.kubernetes.io/") && !t.starts_with("nvidia.com/gpu"))
            .collect();
        if n.unschedulable || !monitor.is_empty() {
            let mut ev = Vec::new();
            if n.unschedulable {
                ev.push("cordoned (spec.unschedulable)".to_string());
            }
            ev.extend(monitor.iter().map(|t| format!("taint {t}")));
            let mut s = k8s(
                50,
                Severity::Warning,
                "node.cordoned_or_tainted",
                Some(&n.name),
                None,
                format!(
                    "node {} is cordoned or tainted, often by a health monitor",
                    n.name
                ),
                ev,
            );
            names(&mut s.2);
            out.push(s);
        }
        if n.gpu_allocatable < n.gpu_capacity {
            let mut s = k8s(
                75,
                Severity::Critical,
                "node.gpu_withdrawn",
                Some(&n.name),
                None,
                format!(
                    "node {} has {} of its {} GPUs allocatable: the device plugin withdrew an unhealthy GPU",
                    n.name, n.gpu_allocatable, n.gpu_capacity
                ),
                vec![format!(
                    "nvidia.com/gpu capacity {}, allocatable {}",
                    n.gpu_capacity, n.gpu_allocatable
                )],
            );
            names(&mut s.2);
            out.push(s);
        }
    }
}

/// One GPU the workload holds, with what peers are compared on.
#[derive(Debug, Clone)]
struct GpuSample {
    node: String,
    gpu: u32,
    uuid: Option<String>,
    model: String,
    pods: Vec<String>,
    ranks: Vec<String>,
    sm_pct: Option<u32>,
    harmful_reasons: Vec<String>,
    util_pct: Option<u32>,
    pcie: Option<(u32, u32, u32, u32)>,
    nvlinks_active: Option<usize>,
}

fn samples(
    node: &str,
    report: &WorkloadNodeReport,
    held: &BTreeMap<u32, (Option<String>, Vec<String>)>,
    pods: &[&WorkloadPod],
) -> Vec<GpuSample> {
    let d = &report.describe;
    held.iter()
        .map(|(&gpu, (uuid, names))| {
            let tel = d.telemetry.gpus.iter().find(|t| t.gpu.index == gpu);
            let topo = d.topology.gpus.iter().find(|t| t.gpu.index == gpu);
            let inv = d.inventory.gpus.iter().find(|g| g.index == gpu);
            let harmful_reasons = tel
                .and_then(|t| t.clocks_event_reasons.ok())
                .map(|c| {
                    c.reasons
                        .iter()
                        .filter(|r| r.class == ReasonClass::Harmful)
                        .map(|r| r.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let pcie = topo.and_then(|t| {
                Some((
                    t.pcie.current_gen.get()?,
                    t.pcie.max_gen.get()?,
                    t.pcie.current_width.get()?,
                    t.pcie.max_width.get()?,
                ))
            });
            let nvlinks_active = topo.filter(|t| !t.nvlinks.is_empty()).map(|t| {
                t.nvlinks
                    .iter()
                    .filter(|l| l.state.ok().is_some_and(|s| s == "active"))
                    .count()
            });
            GpuSample {
                node: node.to_string(),
                gpu,
                uuid: uuid.clone(),
                model: inv
                    .and_then(|g| g.name.ok().cloned())
                    .unwrap_or_else(|| "unknown model".into()),
                pods: names.clone(),
                ranks: pods
                    .iter()
                    .filter(|p| names.contains(&p.name))
                    .filter_map(|p| p.rank.clone())
                    .collect(),
                sm_pct: tel.and_then(|t| t.clocks.sm_pct_of_max.get()),
                harmful_reasons,
                util_pct: tel.and_then(|t| t.utilization.ok().map(|u| u.gpu_pct)),
                pcie,
                nvlinks_active,
            }
        })
        .collect()
}

fn median(mut xs: Vec<u32>) -> Option<u32> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    Some(xs[xs.len() / 2])
}

/// GPUs that lag the others of the same model, with the comparison as evidence.
fn stragglers(all: &[GpuSample], out: &mut Vec<(u32, Option<String>, Suspect)>) {
    let models: BTreeSet<&str> = all.iter().map(|s| s.model.as_str()).collect();
    for model in models {
        let group: Vec<&GpuSample> = all.iter().filter(|s| s.model == model).collect();
        // A comparison needs peers: with fewer than three GPUs there is no majority to lag behind.
        if group.len() < 3 {
            continue;
        }
        for s in &group {
            let others: Vec<&&GpuSample> =
                group.iter().filter(|o| !std::ptr::eq(**o, *s)).collect();
            let mut evidence = Vec::new();
            let mut codes = Vec::new();
            let peers_throttled = others
                .iter()
                .filter(|o| !o.harmful_reasons.is_empty())
                .count();
            if !s.harmful_reasons.is_empty() && peers_throttled * 2 < others.len() {
                codes.push("straggler.clocks");
                let peer_sm = median(others.iter().filter_map(|o| o.sm_pct).collect());
                evidence.push(format!(
                    "clocks held down by {} while {} of its {} peers ({model}) run without a harmful clock event{}",
                    s.harmful_reasons.join(", "),
                    others.len() - peers_throttled,
                    others.len(),
                    match (s.sm_pct, peer_sm) {
                        (Some(a), Some(b)) => format!("; SM clock {a}% of max vs the peers' median {b}%"),
                        _ => String::new(),
                    }
                ));
            } else if let (Some(a), Some(b)) = (
                s.sm_pct,
                median(others.iter().filter_map(|o| o.sm_pct).collect()),
            ) && a + CLOCK_GAP_PCT <= b
            {
                codes.push("straggler.clocks");
                evidence.push(format!(
                    "SM clock {a}% of max vs the peers' median {b}% ({} peers, {model})",
                    others.len()
                ));
            }
            if let Some((g, mg, w, mw)) = s.pcie {
                let pg = median(others.iter().filter_map(|o| o.pcie.map(|p| p.0)).collect());
                let pw = median(others.iter().filter_map(|o| o.pcie.map(|p| p.2)).collect());
                let below_peers = pg.is_some_and(|pg| g < pg) || pw.is_some_and(|pw| w < pw);
                if below_peers && (g < mg || w < mw) {
                    codes.push("straggler.pcie");
                    evidence.push(format!(
                        "PCIe link Gen{g} x{w} (max Gen{mg} x{mw}) while its peers run at Gen{} x{}",
                        pg.unwrap_or(g),
                        pw.unwrap_or(w)
                    ));
                }
            }
            if let Some(a) = s.nvlinks_active
                && let Some(pm) = median(
                    others
                        .iter()
                        .filter_map(|o| o.nvlinks_active.map(|x| x as u32))
                        .collect(),
                )
                && (a as u32) < pm
            {
                codes.push("straggler.nvlink");
                evidence.push(format!("{a} NVLinks active vs {pm} on its peers (median)"));
            }
            if let (Some(u), Some(pm)) = (
                s.util_pct,
                median(others.iter().filter_map(|o| o.util_pct).collect()),
            ) && pm >= UTILIZATION_GAP_PCT
                && u + UTILIZATION_GAP_PCT <= pm
            {
                codes.push("straggler.utilization");
                evidence.push(format!(
                    "GPU utilisation {u}% vs the peers' median {pm}%: this rank may be waiting or hung"
                ));
            }
            if codes.is_empty() {
                continue;
            }
            out.push((
                70,
                None,
                Suspect {
                    rank: 0,
                    kind: SuspectKind::Straggler,
                    severity: Severity::Warning,
                    code: codes[0].to_string(),
                    node: Some(s.node.clone()),
                    gpu: Some(s.gpu),
                    gpu_uuid: s.uuid.clone(),
                    pods: s.pods.clone(),
                    ranks: s.ranks.clone(),
                    summary: format!(
                        "GPU {} on {} is slower than the workload's other {model} GPUs: it holds back every \
                         rank in the collectives",
                        s.gpu, s.node
                    ),
                    evidence,
                    also: vec![],
                    first_seen: None,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::AnalysisOptions;

    fn node_report(scenario: &str) -> Box<WorkloadNodeReport> {
        let s = crate::scenarios::find(scenario).expect("built-in scenario");
        let facts = crate::scenarios::parse(&s.json()).expect("scenario parses");
        Box::new(analyze_node(&facts, &AnalysisOptions::default()))
    }

    /// One 8-GPU pod per node (rank = its index), nodes named `n0..`, each node simulated by `scenario`.
    fn job(scenarios: &[&str]) -> WorkloadInput {
        let mut input = WorkloadInput {
            workload: "job/train".into(),
            ..Default::default()
        };
        for (i, sc) in scenarios.iter().enumerate() {
            let node = format!("n{i}");
            input.pods.push(WorkloadPod {
                name: format!("train-{i}"),
                uid: format!("uid-{i}"),
                phase: "Running".into(),
                node: Some(node.clone()),
                started: Some("2025-01-01T00:00:00Z".into()),
                rank: Some(format!("replica-index={i}")),
                gpus_requested: 8,
                ..Default::default()
            });
            input.nodes.push(WorkloadNode {
                name: node.clone(),
                ready: true,
                gpu_capacity: 8,
                gpu_allocatable: 8,
                ..Default::default()
            });
            input.probes.insert(node, Ok(node_report(sc)));
        }
        input
    }

    #[test]
    fn a_gpu_off_the_bus_is_named_first() {
        let mut scs = vec!["dgx-h100-healthy"; 16];
        scs[11] = "dgx-h100-xid79";
        let d = diagnose(&job(&scs));
        assert!(d.cause_found);
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Hardware, "{d:#?}");
        assert_eq!(first.node.as_deref(), Some("n11"));
        assert_eq!(first.gpu, Some(4), "{first:?}");
        assert!(first.gpu_uuid.is_some());
        assert_eq!(first.pods, ["train-11"]);
        assert_eq!(first.ranks, ["replica-index=11"]);
        assert!(d.verdict.contains("n11 GPU 4"), "{}", d.verdict);
        // Every source's view of that GPU is one suspect.
        let on_it = d
            .suspects
            .iter()
            .filter(|s| s.node.as_deref() == Some("n11"))
            .count();
        assert_eq!(on_it, 1, "{:#?}", d.suspects);
        assert!(!first.also.is_empty(), "{first:#?}");
        assert!(first.first_seen.is_some(), "{first:#?}");
        assert!(
            d.nodes
                .iter()
                .all(|n| n.held_source == HeldSource::AllRequested)
        );
        assert_eq!(d.gpus_held, 128);
    }

    #[test]
    fn a_healthy_job_with_clean_logs_reads_healthy() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        input.logs = Some(
            input
                .pods
                .iter()
                .map(|p| (p.name.clone(), Ok(PodLogScan::default())))
                .collect(),
        );
        let d = diagnose(&input);
        assert!(!d.cause_found, "{:#?}", d.suspects);
        assert!(d.not_examined.is_empty(), "{:?}", d.not_examined);
        assert!(
            d.verdict.contains("nothing wrong found") && d.verdict.contains("4 pod log(s) read"),
            "{}",
            d.verdict
        );
    }

    #[test]
    fn nothing_examined_is_not_a_clean_bill_of_health() {
        let mut input = job(&["dgx-h100-healthy"; 6]);
        for r in input.probes.values_mut() {
            *r =
                Err("no image on the node could run the probe; give one with --probe-image".into());
        }
        let d = diagnose(&input);
        assert!(!d.cause_found);
        assert!(d.verdict.contains("diagnosis incomplete"), "{}", d.verdict);
        assert!(
            d.verdict.contains("6 of 6 node(s) not probed"),
            "{}",
            d.verdict
        );
        assert!(d.verdict.contains("pod logs not read"), "{}", d.verdict);
        assert!(!d.verdict.contains("look at the"), "{}", d.verdict);
        let gaps = d.not_examined.join(" | ");
        assert!(
            gaps.contains("6 node(s) not probed") && gaps.contains("--probe-image"),
            "{gaps}"
        );
        // Logs that could not be read are said too, with why.
        input.logs = Some(
            input
                .pods
                .iter()
                .map(|p| (p.name.clone(), Err("forbidden: get pods/log".to_string())))
                .collect(),
        );
        let d = diagnose(&input);
        assert!(
            d.verdict.contains("6 of 6 pod log(s) not read"),
            "{}",
            d.verdict
        );
        assert!(
            d.not_examined.iter().any(|g| g.contains("forbidden")),
            "{:?}",
            d.not_examined
        );
    }

    #[test]
    fn a_braked_gpu_is_a_straggler_with_the_comparison() {
        let mut scs = vec!["dgx-h100-healthy"; 4];
        scs[2] = "dgx-h100-straggler-brake";
        let d = diagnose(&job(&scs));
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Straggler, "{d:#?}");
        assert_eq!((first.node.as_deref(), first.gpu), (Some("n2"), Some(5)));
        let ev = first.evidence.join(" | ");
        assert!(ev.contains("peers") && ev.contains("SM clock"), "{ev}");
    }

    #[test]
    fn a_downtrained_pcie_link_is_a_straggler() {
        let mut scs = vec!["dgx-h100-healthy"; 3];
        scs[0] = "dgx-h100-pcie-downtrained";
        let d = diagnose(&job(&scs));
        let s = d
            .suspects
            .iter()
            .find(|s| s.kind == SuspectKind::Straggler)
            .expect("a straggler");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(2)));
        assert!(s.evidence.join(" ").contains("Gen3 x8"), "{s:?}");
    }

    #[test]
    fn a_flapping_port_leads_a_multi_node_job_but_not_a_single_node_one() {
        let mut scs = vec!["dgx-h100-healthy"; 4];
        scs[1] = "dgx-h100-ib-flapping";
        let d = diagnose(&job(&scs));
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Fabric, "{d:#?}");
        assert_eq!(first.node.as_deref(), Some("n1"));
        assert!(first.code.starts_with("nic."), "{first:?}");
        let single = diagnose(&job(&["dgx-h100-ib-flapping"]));
        assert!(
            single
                .suspects
                .iter()
                .all(|s| s.kind != SuspectKind::Fabric),
            "{single:#?}"
        );
        assert!(!single.not_held.is_empty());
    }

    #[test]
    fn a_pending_pod_says_why() {
        let mut input = job(&["dgx-h100-healthy"; 2]);
        input.pods.push(WorkloadPod {
            name: "train-2".into(),
            uid: "uid-2".into(),
            phase: "Pending".into(),
            gpus_requested: 8,
            unschedulable: Some(
                "Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu".into(),
            ),
            ..Default::default()
        });
        let d = diagnose(&input);
        let first = &d.suspects[0];
        assert_eq!(first.code, "pod.pending", "{d:#?}");
        assert!(
            first.summary.contains("Insufficient nvidia.com/gpu"),
            "{first:?}"
        );
        assert_eq!(d.pods_by_phase.get("Pending"), Some(&1));
    }

    #[test]
    fn faults_on_gpus_the_workload_does_not_hold_are_apart() {
        // The pod holds GPUs 0-3 by the kubelet's word; GPU 4 fell off the bus.
        let mut input = job(&["dgx-h100-xid79"]);
        input.pods[0].gpus_requested = 4;
        if let Some(Ok(r)) = input.probes.get_mut("n0") {
            r.allocation.exact = true;
            r.allocation.pods = vec![crate::attribution::PodAllocation {
                namespace: "ml".into(),
                name: "train-0".into(),
                uid: Some("uid-0".into()),
                containers: vec![crate::attribution::ContainerAllocation {
                    name: "main".into(),
                    started_unix: None,
                    devices: (0..4)
                        .map(|i| crate::attribution::AllocatedDevice {
                            resource_name: "nvidia.com/gpu".into(),
                            resource: crate::attribution::device::ResourceKind::Gpu,
                            device_id: format!("GPU-{i}"),
                            form: None,
                            replica: None,
                            gpu_index: Some(i),
                            gpu_uuid: None,
                            mig: None,
                            error: None,
                        })
                        .collect(),
                }],
            }];
        }
        let d = diagnose(&input);
        assert!(d.suspects.iter().all(|s| s.gpu != Some(4)), "{d:#?}");
        assert!(d.not_held.iter().any(|s| s.gpu == Some(4)), "{d:#?}");
        assert_eq!(d.nodes[0].held_source, HeldSource::Kubelet);
        assert_eq!(d.nodes[0].gpus_held, [0, 1, 2, 3]);
    }

    fn scan_of(lines: &[String]) -> PodLogScan {
        let mut s = PodLogScan::default();
        for l in lines {
            s.feed(l, None);
        }
        s
    }

    fn init_line(rank: u32, n: u32, dev: u32) -> String {
        format!(
            "2026-11-22T09:00:00.000000000Z host-{rank}:100:120 [{dev}] NCCL INFO comm 0x55aa rank {rank} nranks {n} \
             cudaDev {dev} nvmlDev {dev} busId {}000 commId 0x77 - Init COMPLETE",
            18 + dev
        )
    }

    fn timeout_line(rank: u32, seq: u64, at: &str) -> String {
        format!(
            "{at} [rank{rank}]:[E1122 10:10:00.000000 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID 0(default_pg) \
             Rank {rank}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, \
             NumelIn=1024, NumelOut=1024, Timeout(ms)=600000) ran for 600031 milliseconds before timing out."
        )
    }

    /// `n` one-rank pods over `n` nodes; every rank but `hung` times out at SeqNum 100.
    fn hung_job(n: usize, hung: usize) -> WorkloadInput {
        let mut input = job(&vec!["dgx-h100-healthy"; n]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let mut lines = vec![init_line(i as u32 * 8, n as u32 * 8, 0)];
            if i != hung {
                lines.push(timeout_line(
                    i as u32 * 8,
                    100,
                    "2026-11-22T10:10:00.000000000Z",
                ));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        input
    }

    #[test]
    fn the_rank_everyone_waits_for_leads_even_when_it_logged_nothing() {
        let d = diagnose(&hung_job(16, 9));
        let first = &d.suspects[0];
        assert_eq!(first.code, "collective.lagging_rank", "{d:#?}");
        assert_eq!(first.pods, ["train-9"]);
        assert_eq!(first.node.as_deref(), Some("n9"));
        assert!(first.ranks.contains(&"rank 72".to_string()), "{first:?}");
        assert!(
            first
                .summary
                .contains("15 pod(s) timed out in ALLREDUCE SeqNum=100"),
            "{first:?}"
        );
        assert_eq!(
            d.suspects
                .iter()
                .filter(|s| s.code == "collective.lagging_rank")
                .count(),
            1
        );
        assert!(
            d.consequences[0].starts_with("15 of 16 pod(s) timed out"),
            "{:?}",
            d.consequences
        );
        assert!(d.not_examined.is_empty(), "{:?}", d.not_examined);
        assert!(d.verdict.contains("train-9"), "{}", d.verdict);
    }

    #[test]
    fn a_ranks_ecc_error_and_the_xid_48_on_its_gpu_are_one_suspect() {
        // Two one-GPU pods per 2-GPU node, by the kubelet's assignment; n1's GPU 1 had Xid 48.
        let mut input = job(&["h100-xid48-dbe", "h100-xid48-dbe", "h100-xid48-dbe"]);
        input.pods.clear();
        for n in 0..3 {
            input.nodes[n].gpu_capacity = 2;
            input.nodes[n].gpu_allocatable = 2;
            let node = format!("n{n}");
            let mut alloc = vec![];
            for g in 0..2u32 {
                let name = format!("train-{n}-{g}");
                input.pods.push(WorkloadPod {
                    name: name.clone(),
                    uid: format!("uid-{n}-{g}"),
                    phase: "Running".into(),
                    node: Some(node.clone()),
                    started: Some("2020-01-01T00:00:00Z".into()),
                    gpus_requested: 1,
                    ..Default::default()
                });
                alloc.push(crate::attribution::PodAllocation {
                    namespace: "ml".into(),
                    name,
                    uid: Some(format!("uid-{n}-{g}")),
                    containers: vec![crate::attribution::ContainerAllocation {
                        name: "main".into(),
                        started_unix: None,
                        devices: vec![crate::attribution::AllocatedDevice {
                            resource_name: "nvidia.com/gpu".into(),
                            resource: crate::attribution::device::ResourceKind::Gpu,
                            device_id: format!("GPU-{g}"),
                            form: None,
                            replica: None,
                            gpu_index: Some(g),
                            gpu_uuid: None,
                            mig: None,
                            error: None,
                        }],
                    }],
                });
            }
            if let Some(Ok(r)) = input.probes.get_mut(&node) {
                r.allocation.exact = true;
                r.allocation.pods = alloc;
            }
        }
        // Only n1's GPU 1 is faulty in this test: the other nodes' copies of the scenario are not held there.
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32;
            let mut lines = vec![init_line(r, 6, 0)];
            if p.name == "train-1-1" {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: uncorrectable ECC error encountered"
                        .into(),
                );
            } else {
                lines.push(timeout_line(r, 40, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = d
            .suspects
            .iter()
            .find(|s| s.pods.contains(&"train-1-1".to_string()))
            .expect("a suspect for the pod");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n1"), Some(1)), "{d:#?}");
        let codes: Vec<&str> = std::iter::once(s.code.as_str())
            .chain(s.also.iter().map(String::as_str))
            .collect();
        assert!(codes.contains(&"cuda.ecc_uncorrectable"), "{codes:?}");
        assert!(codes.iter().any(|c| c.starts_with("xid.48")), "{codes:?}");
        assert!(
            s.evidence
                .iter()
                .any(|e| e.contains("uncorrectable ECC error encountered")),
            "{s:#?}"
        );
        assert_eq!(
            d.suspects
                .iter()
                .filter(|x| x.node.as_deref() == Some("n1") && x.gpu == Some(1))
                .count(),
            1,
            "{d:#?}"
        );
    }

    #[test]
    fn a_restarted_ranks_pod_and_its_cuda_error_are_one_suspect() {
        // Healthy GPUs: the rank's own error is the only fault, and its pod restarted because of it.
        let mut input = job(&["dgx-h100-healthy"; 2]);
        input.pods[1].restarts = 1;
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let mut lines = vec![init_line(i as u32 * 8, 16, 0)];
            if i == 1 {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: an illegal memory access was \
                     encountered"
                        .into(),
                );
            } else {
                lines.push(timeout_line(0, 40, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let about: Vec<&Suspect> = d
            .suspects
            .iter()
            .filter(|s| s.pods.contains(&"train-1".to_string()))
            .collect();
        assert_eq!(about.len(), 1, "{d:#?}");
        let codes: Vec<&str> = std::iter::once(about[0].code.as_str())
            .chain(about[0].also.iter().map(String::as_str))
            .collect();
        assert!(codes.contains(&"pod.restarting"), "{codes:?}");
        assert!(codes.iter().any(|c| c.starts_with("cuda.")), "{codes:?}");
        assert_eq!(d.suspects[0].pods, ["train-1"], "{d:#?}");
    }

    #[test]
    fn where_pods_request_every_gpu_nccl_bus_ids_say_which_pod_holds_the_faulty_one() {
        // Two one-GPU pods on the 2-GPU node whose GPU 1 (0000:ca:00.0) had an Xid 48; no kubelet
        // assignment, so only the requests say the pods hold the node's GPUs, and the logs say which.
        let mut input = job(&["h100-xid48-dbe"]);
        input.nodes[0].gpu_capacity = 2;
        input.nodes[0].gpu_allocatable = 2;
        input.pods.clear();
        for (g, bus) in [(0u32, "17000"), (1, "ca000")] {
            input.pods.push(WorkloadPod {
                name: format!("train-{g}"),
                uid: format!("uid-{g}"),
                phase: "Running".into(),
                node: Some("n0".into()),
                gpus_requested: 1,
                ..Default::default()
            });
            let init = format!(
                "h:1:2 [0] NCCL INFO comm 0x1 rank {g} nranks 2 cudaDev 0 nvmlDev 0 busId {bus} commId 0x2 - Init COMPLETE"
            );
            input
                .logs
                .get_or_insert_with(BTreeMap::new)
                .insert(format!("train-{g}"), Ok(scan_of(&[init])));
        }
        let d = diagnose(&input);
        assert_eq!(d.nodes[0].held_source, HeldSource::AllRequested);
        let s = d
            .suspects
            .iter()
            .find(|s| s.gpu == Some(1))
            .expect("GPU 1 suspect");
        assert_eq!(s.pods, ["train-1"], "{d:#?}");
        assert!(d.verdict.contains("(pod train-1)"), "{}", d.verdict);
        // Without the init lines both pods may hold it.
        input.logs = Some(
            ["train-0", "train-1"]
                .iter()
                .map(|p| (p.to_string(), Ok(scan_of(&[]))))
                .collect(),
        );
        let d = diagnose(&input);
        let s = d.suspects.iter().find(|s| s.gpu == Some(1)).unwrap();
        assert_eq!(s.pods, ["train-0", "train-1"], "{d:#?}");
    }

    #[test]
    fn a_restarted_ranks_pod_joins_its_error_on_a_gpu_with_only_a_warning() {
        // GPU 0 of this node is only throttled (a warning); the rank on it died on a CUDA ECC error and its
        // container restarted. The rank's error outweighs the warning and names the GPU's suspect; the
        // pod's restart is about the same rank and joins it.
        let mut input = job(&["h100-thermal-slowdown"]);
        input.nodes[0].gpu_capacity = 2;
        input.nodes[0].gpu_allocatable = 2;
        let p = &mut input.pods[0];
        p.gpus_requested = 2;
        p.restarts = 1;
        p.last_termination = Some("Error (exit 1)".into());
        let lines = [
            "h:1:2 [0] NCCL INFO comm 0x1 rank 0 nranks 2 cudaDev 0 nvmlDev 0 busId 17000 commId 0x2 - Init COMPLETE"
                .to_string(),
            "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: uncorrectable ECC error encountered".into(),
        ];
        input.logs = Some([("train-0".to_string(), Ok(scan_of(&lines)))].into());
        let d = diagnose(&input);
        let codes = |s: &Suspect| {
            std::iter::once(s.code.clone())
                .chain(s.also.iter().cloned())
                .collect::<Vec<_>>()
        };
        let s = d
            .suspects
            .iter()
            .find(|s| codes(s).contains(&"cuda.ecc_uncorrectable".to_string()))
            .expect("the rank's suspect");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(0)), "{d:#?}");
        assert!(codes(s).contains(&"pod.restarting".to_string()), "{d:#?}");
        assert_eq!(
            d.suspects
                .iter()
                .filter(|x| x.pods.contains(&"train-0".to_string()) && x.gpu.is_none())
                .count(),
            0,
            "{d:#?}"
        );
    }

    #[test]
    fn a_rank_on_sockets_among_ib_peers_is_a_configuration_suspect() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let net = if i == 2 {
                "host:1:1 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.3<0>"
            } else {
                "host:1:1 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB eth0:10.0.0.1<0>"
            };
            logs.insert(p.name.clone(), Ok(scan_of(&[net.to_string()])));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = d
            .suspects
            .iter()
            .find(|s| s.kind == SuspectKind::Configuration)
            .expect("config suspect");
        assert_eq!(s.pods, ["train-2"], "{d:#?}");
        assert_eq!(s.code, "nccl.socket_fallback");
    }

    #[test]
    fn a_peer_named_by_address_is_the_suspect() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        for (i, p) in input.pods.iter_mut().enumerate() {
            p.ip = Some(format!("10.4.0.{i}"));
        }
        let mut logs = BTreeMap::new();
        for p in &input.pods {
            let l = if p.name == "train-3" {
                vec![]
            } else {
                vec!["2026-11-22T10:00:01Z host:1:2 [0] NCCL WARN Net : Connection closed by remote peer 10.4.0.3<4410>".to_string()]
            };
            logs.insert(p.name.clone(), Ok(scan_of(&l)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert_eq!(d.suspects[0].code, "nccl.peer_lost", "{d:#?}");
        assert_eq!(d.suspects[0].pods, ["train-3"]);
    }

    #[test]
    fn a_512_rank_answer_stays_small() {
        // 64 nodes of 8 one-GPU ranks is the shape; the size must not grow with the ranks.
        let size = |n: usize| {
            serde_json::to_string(&diagnose(&hung_job(n, 3)))
                .unwrap()
                .len()
        };
        let (small, big) = (size(64), size(512));
        assert!(big < 48 * 1024, "{big} bytes for 512 ranks");
        let per_node = (big - small) / (512 - 64);
        // Only the node list grows: a few dozen bytes per node, nothing per log line or rank timeout.
        assert!(per_node < 160, "{per_node} bytes per extra node");
        let d = diagnose(&hung_job(512, 3));
        assert_eq!(d.suspects.len(), 1, "{:#?}", d.suspects);
        assert_eq!(d.consequences.len(), 1);
    }

    // ---- Cases built like the judged ones. Log lines in the public formats: PyTorch's caching allocator
    // (`torch.OutOfMemoryError: CUDA out of memory. Tried to allocate … GPU N has a total capacity of …`,
    // c10/cuda/CUDACachingAllocator.cpp), ProcessGroupNCCL's watchdog (`Watchdog caught collective operation
    // timeout: WorkNCCL(SeqNum=…)` then `To avoid data inconsistency, we are taking the entire process
    // down.`), torch elastic's ChildFailedError table (torch/distributed/elastic/multiprocessing/errors),
    // NCCL's init lines (`ncclCommInitRank comm %p rank %d nranks %d cudaDev %d nvmlDev %d busId %lx commId
    // 0x%llx - Init START`, NVIDIA/nccl src/init.cc) and `NET/IB : Got completion from peer … with status=…
    // vendor err …` (src/transport/net_ib.cc).

    fn elastic_table(rank: u32, host: &str, exitcode: i32, signal: Option<&str>) -> Vec<String> {
        let tb = match signal {
            Some(sig) => format!("  traceback : Signal 6 ({sig}) received by PID 2210"),
            None => "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html".into(),
        };
        vec![
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:".into(),
            "============================================================".into(),
            "train.py FAILED".into(),
            "------------------------------------------------------------".into(),
            "Root Cause (first observed failure):".into(),
            "[0]:".into(),
            "  time      : 2026-11-22_10:10:01".into(),
            format!("  host      : {host}"),
            format!("  rank      : {rank} (local_rank: 0)"),
            format!("  exitcode  : {exitcode} (pid: 2210)"),
            "  error_file: <N/A>".into(),
            tb,
            "============================================================".into(),
        ]
    }

    fn oom_job() -> WorkloadInput {
        // 16 one-pod ranks; rank 11 dies of an out-of-memory error and its container restarts; the 15 others
        // time out waiting for it in the next all-reduce, their watchdogs take their processes down (rank
        // 0's torch elastic then names rank 0, exit -6), and their containers restart too.
        let mut input = job(&vec!["dgx-h100-healthy"; 16]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter_mut().enumerate() {
            p.restarts = 1;
            let why = if i == 11 {
                "Error (exit 1)"
            } else {
                "Error (exit 134)"
            };
            p.last_termination = Some(why.to_string());
            let r = i as u32;
            let mut lines = vec![init_line(r, 16, 0)];
            if i == 11 {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z [rank11]: torch.OutOfMemoryError: CUDA out of memory. Tried to \
                     allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.06 GiB is free."
                        .into(),
                );
                lines.extend(elastic_table(11, "train-11", 1, None));
            } else {
                lines.push(timeout_line(r, 100, "2026-11-22T10:10:00.000000000Z"));
                lines.push(format!(
                    "2026-11-22T10:10:00.100000000Z [rank{r}]:[E1122 10:10:00.100000 ProcessGroupNCCL.cpp:1837] \
                     [PG ID 0 PG GUID 0(default_pg) Rank {r}] To avoid data inconsistency, we are taking the \
                     entire process down."
                ));
                if i == 0 {
                    lines.extend(elastic_table(0, "train-0", -6, Some("SIGABRT")));
                }
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        input
    }

    #[test]
    fn an_out_of_memory_rank_is_the_cause_and_the_others_waiting_is_how_it_showed() {
        let d = diagnose(&oom_job());
        assert_eq!(d.suspects.len(), 1, "{d:#?}");
        let s = &d.suspects[0];
        assert_eq!(s.code, "cuda.out_of_memory", "{s:#?}");
        assert_eq!(s.pods, ["train-11"]);
        assert!(s.summary.contains("ran out of GPU memory"), "{}", s.summary);
        assert!(
            s.summary
                .contains("then 15 pod(s) timed out in ALLREDUCE SeqNum=100, waiting for it"),
            "{}",
            s.summary
        );
        // The cause's own line first, then how it showed.
        assert!(
            s.evidence[0].contains("CUDA out of memory"),
            "{:?}",
            s.evidence
        );
        assert!(
            s.evidence[1].starts_with("collective.lagging_rank:"),
            "{:?}",
            s.evidence
        );
        assert!(s.also.contains(&"collective.lagging_rank".to_string()));
        assert!(
            d.verdict
                .starts_with("job/train: 1 suspect(s); first: cuda.out_of_memory on n11 GPU 0 (pod train-11): rank 11"),
            "{}",
            d.verdict
        );
        // Rank 0's elastic root cause (its own abort after its timeout) and the 15 restarts are counted.
        assert!(d.suspects.iter().all(|s| s.code != "elastic.root_cause"));
        let c = d.consequences.join("\n");
        assert!(
            c.contains("15 of 16 pod(s) timed out waiting in ALLREDUCE SeqNum=100"),
            "{c}"
        );
        assert!(
            c.contains("1 torch elastic root cause(s) are a rank's own abort"),
            "{c}"
        );
        assert!(
            c.contains("15 pod(s) restarted or failed after their rank timed out waiting"),
            "{c}"
        );
    }

    /// The dgx-h100 scenarios' GPUs by index, as NCCL writes their PCI addresses (`busId`).
    const DGX_BUS: [&str; 8] = [
        "18000", "2a000", "3a000", "5d000", "9a000", "ab000", "ba000", "db000",
    ];

    /// Eight one-GPU pods on one node of `scenario`: no kubelet assignment, so the requests say the pods
    /// hold all its GPUs, and only the ranks' logs (when given) say which.
    fn one_gpu_pods(scenario: &str, with_init: bool) -> WorkloadInput {
        let mut input = job(&[scenario]);
        input.pods.clear();
        let mut logs = BTreeMap::new();
        for g in 0..8u32 {
            let name = format!("train-{g}");
            input.pods.push(WorkloadPod {
                name: name.clone(),
                uid: format!("uid-{g}"),
                phase: "Running".into(),
                node: Some("n0".into()),
                started: Some("2020-01-01T00:00:00Z".into()),
                gpus_requested: 1,
                ..Default::default()
            });
            let mut lines = vec![];
            if with_init {
                // The container sees its one GPU as cudaDev 0; the PCI address names it on the host.
                lines.push(format!(
                    "2026-11-25T08:00:00.000000000Z {name}:41:41 [0] NCCL INFO ncclCommInitRank comm 0x55d0{g}000 \
                     rank {g} nranks 8 cudaDev 0 nvmlDev 0 busId {} commId 0x3f6a91c0d25e7b14 - Init START",
                    DGX_BUS[g as usize]
                ));
            }
            if g != 4 {
                lines.push(timeout_line(g, 310, "2026-11-25T08:26:40.000000000Z"));
            }
            logs.insert(name, Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        input
    }

    #[test]
    fn a_lost_gpu_names_the_one_pod_whose_nccl_bus_id_is_its_address() {
        let d = diagnose(&one_gpu_pods("dgx-h100-xid79", true));
        let s = &d.suspects[0];
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(4)), "{d:#?}");
        assert_eq!(s.kind, SuspectKind::Hardware);
        assert_eq!(s.pods, ["train-4"], "{s:#?}");
        assert!(s.summary.contains("is lost"), "{}", s.summary);
        assert!(
            s.evidence
                .iter()
                .any(|e| e == "held by pod train-4: rank 4's NCCL init line names this GPU's PCI address (0000:9a:00.0)"),
            "{:#?}",
            s.evidence
        );
        // Said in words, never as a per-field dump.
        assert!(
            s.evidence
                .iter()
                .all(|e| !e.contains("field(s)") && !e.contains("= gpu_is_lost")),
            "{:#?}",
            s.evidence
        );
        assert!(
            d.verdict.contains("on n0 GPU 4 (pod train-4)"),
            "{}",
            d.verdict
        );
        assert_eq!(
            d.suspects.iter().filter(|x| x.gpu == Some(4)).count(),
            1,
            "{d:#?}"
        );
        assert!(
            d.consequences[0].starts_with("7 of 8 pod(s) timed out"),
            "{:?}",
            d.consequences
        );

        // Without the init lines the pod is not known: said as such.
        let d = diagnose(&one_gpu_pods("dgx-h100-xid79", false));
        let s = &d.suspects[0];
        assert_eq!(s.gpu, Some(4));
        assert_eq!(s.pods.len(), 8);
        assert!(
            s.evidence
                .iter()
                .any(|e| e.starts_with("held by one of 8 pods on the node")),
            "{:#?}",
            s.evidence
        );
        assert!(
            d.verdict
                .contains("(held by one of 8 pods: which one is not known)"),
            "{}",
            d.verdict
        );
    }

    #[test]
    fn a_healthy_job_reads_healthy_without_advice() {
        let mut input = job(&["dgx-h100-healthy"; 2]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let lines = vec![
                init_line(i as u32 * 8, 16, 0),
                format!(
                    "2026-11-22T09:10:00.000000000Z [rank{}] step 41000 | loss 2.1345 | 497 ms/step",
                    i * 8
                ),
            ];
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert!(!d.cause_found);
        assert!(d.suspects.is_empty() && d.consequences.is_empty(), "{d:#?}");
        assert!(
            d.verdict
                .starts_with("job/train: nothing wrong found: 2 pod(s) (2 Running) on 2 node(s)"),
            "{}",
            d.verdict
        );
        assert!(
            d.verdict.contains("16 GPU(s)") && d.verdict.contains("2 pod log(s) read"),
            "{}",
            d.verdict
        );
        assert!(!d.verdict.contains("look at"), "{}", d.verdict);
    }

    #[test]
    fn timeouts_without_a_cause_are_said_as_symptoms_not_health() {
        // Every rank timed out at the same collective: nobody lags, nothing else is wrong.
        let mut input = hung_job(4, 0);
        let logs = input.logs.as_mut().unwrap();
        logs.insert(
            "train-0".into(),
            Ok(scan_of(&[timeout_line(
                0,
                100,
                "2026-11-22T10:10:00.000000000Z",
            )])),
        );
        let d = diagnose(&input);
        assert!(d.suspects.is_empty(), "{d:#?}");
        assert!(
            d.verdict
                .contains("no cause found, but the job is not well: 4 of 4 pod(s) timed out"),
            "{}",
            d.verdict
        );
    }

    #[test]
    fn a_cuda_error_rank_leads_with_its_error() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32 * 8;
            let mut lines = vec![init_line(r, 32, 0)];
            if i == 2 {
                lines.push(format!(
                    "2026-11-22T10:00:05.000000000Z [rank{r}]: torch.AcceleratorError: CUDA error: an illegal \
                     memory access was encountered"
                ));
            } else {
                lines.push(timeout_line(r, 77, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert_eq!(d.suspects.len(), 1, "{d:#?}");
        let s = &d.suspects[0];
        assert_eq!(
            (s.code.as_str(), s.pods.as_slice()),
            ("cuda.illegal_address", &["train-2".to_string()][..])
        );
        assert!(
            s.summary.contains("illegal memory access")
                && s.summary.contains("then 3 pod(s) timed out"),
            "{}",
            s.summary
        );
        assert!(
            d.verdict.contains("first: cuda.illegal_address on n2"),
            "{}",
            d.verdict
        );
    }

    #[test]
    fn a_failing_nic_is_the_cause_its_ranks_nccl_errors_show() {
        let mut input = job(&[
            "dgx-h100-healthy",
            "dgx-h100-healthy",
            "dgx-h100-ib-flapping",
            "dgx-h100-healthy",
        ]);
        for (i, p) in input.pods.iter_mut().enumerate() {
            p.ip = Some(format!("10.4.0.{i}"));
        }
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32 * 8;
            let mut lines = vec![init_line(r, 32, 0)];
            if i == 2 {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z train-2:211:305 [0] NCCL WARN NET/IB : Got completion from peer \
                     10.4.0.3<50113> with status=12 opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.2 \
                     remoteGid ::ffff:10.4.0.3"
                        .into(),
                );
            } else {
                lines.push(timeout_line(r, 55, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = &d.suspects[0];
        assert_eq!(s.kind, SuspectKind::Fabric, "{d:#?}");
        assert!(s.code.starts_with("nic."), "{s:#?}");
        assert_eq!(s.node.as_deref(), Some("n2"));
        assert!(
            s.also.contains(&"nccl.ib_completion_error".to_string()),
            "{s:#?}"
        );
        assert!(
            d.suspects
                .iter()
                .filter(|x| x.node.as_deref() == Some("n2"))
                .count()
                == 1,
            "{d:#?}"
        );
    }
}
