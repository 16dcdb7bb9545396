//! What the diagnosis answers: the suspects with their evidence, the nodes it looked at, what followed from
//! the cause and what could not be examined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

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
    /// The multi-node NVLink domain (an NVL72 rack) of its GPUs: the probe's, else GFD's clique label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<String>,
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
    /// Where the job's nodes sit in multi-node NVLink domains, when they do not all share one: NVLink
    /// between nodes works only within a domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_span: Option<String>,
}

/// Evidence lines kept per suspect.
pub const EVIDENCE_KEPT: usize = 24;
