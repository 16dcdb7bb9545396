//! What the diagnosis reads: the workload's pods and nodes as the API server reports them, each node's probe
//! report and each pod's scanned log (the launcher gathers them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::node_report::WorkloadNodeReport;
use crate::workload::joblog::PodLogScan;

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
    /// What the platform's health agents say about the node (recognised conditions in their fault state).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform: Vec<crate::incident::platform::PlatformMark>,
    pub gpu_capacity: u64,
    pub gpu_allocatable: u64,
    /// `status.addresses` (InternalIP, ExternalIP, Hostname): where a rank's NCCL peer address may point
    /// (host-network pods share their node's address).
    pub addresses: Vec<String>,
    /// GFD's `nvidia.com/gpu.clique`: the multi-node NVLink domain, when the node is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clique: Option<String>,
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
