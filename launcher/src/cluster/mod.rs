//! The API server's reads and writes that are not probe running: what the tools need from the Kubernetes
//! API, behind a trait ([`ClusterBackend`]) so tools don't depend on kube directly and local mode (no
//! cluster) is simply "no backend". Implemented for kube by [`backend::KubeBackend`] over one client per
//! context ([`clients`]), with the GPU resources of pods ([`gpu_resources`]), the workloads of
//! `diagnose_workload` ([`workload`]) and the operator tools' node writes and audit events ([`operator`]); each client retries what the API
//! server pushed back ([`retry`]) and tells fan-outs about it ([`pressure`]).

pub mod amd;
pub mod backend;
pub mod clients;
pub mod compute_domains;
pub mod dcgm_engine;
pub mod dra_api;
pub mod exec_protocol;
pub mod gaudi;
pub mod gpu_resources;
pub mod labels;
pub mod neuron;
pub mod nvidia;
pub mod operator;
pub mod pressure;
pub mod prometheus;
pub mod resource_slices;
pub mod retry;
pub mod run_mark;
pub mod shared_reads;
pub mod slice_watch;
pub mod vendor;
pub mod vendors;
pub mod workload;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use gpu_diag::workload::joblog::PodLogScan;

use serde::{Deserialize, Serialize};

pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClusterError>> + Send + 'a>>;

/// What a backend answers for a call it does not implement (the trait's defaults): `message` says which.
fn unsupported<'a, T: 'a>(message: &'static str) -> BoxFut<'a, T> {
    Box::pin(async move { Err(ClusterError::Api(message.into())) })
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("node `{0}` not found")]
    NodeNotFound(String),
    #[error("forbidden by RBAC: {0}")]
    Forbidden(String),
    #[error("unknown kubeconfig context `{context}`; known contexts: {known}")]
    UnknownContext { context: String, known: String },
    #[error("invalid label selector `{0}`")]
    BadSelector(String),
    #[error("Kubernetes API error: {0}")]
    Api(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    KindNotInstalled(String),
}

/// How much of the pods' logs is read: a bounded tail of each container, a few pods at a time, all within
/// one time budget, so a job of hundreds of pods costs bounded memory and time.
#[derive(Debug, Clone)]
pub struct LogLimits {
    pub tail_lines: i64,
    pub limit_bytes: i64,
    pub since_seconds: Option<i64>,
    pub concurrency: usize,
    pub budget: Duration,
}

impl LogLimits {
    /// The limits in words, for the answer.
    pub fn describe(&self) -> String {
        format!(
            "the last {} lines and at most {} KiB of each container's log{} (the previous run's too for restarted \
             containers), {} pods at a time within {} s",
            self.tail_lines,
            self.limit_bytes / 1024,
            self.since_seconds
                .map(|s| format!(" from the last {s} s"))
                .unwrap_or_default(),
            self.concurrency,
            self.budget.as_secs()
        )
    }
}

/// Each pod's log scan, or why it could not be read.
pub type PodLogs = BTreeMap<String, Result<PodLogScan, String>>;

/// A workload as `diagnose_workload` names it (always within one namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadRef {
    Pod(String),
    Job(String),
    JobSet(String),
    PyTorchJob(String),
    MpiJob(String),
    RayJob(String),
    /// Pods matching a label selector.
    Selector(String),
}

impl WorkloadRef {
    /// The object's name (the selector for `Selector`).
    pub fn name(&self) -> &str {
        match self {
            WorkloadRef::Pod(n)
            | WorkloadRef::Job(n)
            | WorkloadRef::JobSet(n)
            | WorkloadRef::PyTorchJob(n)
            | WorkloadRef::MpiJob(n)
            | WorkloadRef::RayJob(n)
            | WorkloadRef::Selector(n) => n,
        }
    }
}

/// One node as the API server sees it, with its GPU accounting.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuNode {
    pub name: String,
    /// `status.capacity["nvidia.com/gpu"]` plus `["amd.com/gpu"]`, as integers (MIG and AMD partition
    /// resources are counted apart).
    pub gpu_capacity: u64,
    pub gpu_allocatable: u64,
    /// Sum of GPU requests of non-terminated pods bound to the node.
    pub gpu_allocated: u64,
    /// Other GPU-like extended resources (`nvidia.com/mig-1g.10gb`: count).
    pub mig_resources: std::collections::BTreeMap<String, u64>,
    /// GPU Feature Discovery labels (`nvidia.com/*`), hints that may be stale.
    pub gpu_labels: std::collections::BTreeMap<String, String>,
    pub ready: bool,
    /// Conditions that are not in their healthy state (`Ready=False`, `MemoryPressure=True`, ...) and that
    /// no platform agent of `platform` is known to set.
    pub problem_conditions: Vec<String>,
    /// What the platform's health agents already say about the node (EKS node monitoring agent, AKS node
    /// problem detector, NVSentinel, node-problem-detector): each recognised condition in its fault state,
    /// with its source and since when (`gpu_diag::incident::platform`); the DRA drivers' device taints
    /// (ResourceSlices) and the kubelet's unhealthy devices of the node's pods (`allocatedResourcesStatus`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform: Vec<gpu_diag::incident::platform::PlatformMark>,
    /// Why the DRA drivers' device taints (ResourceSlices) could not be read: then they are unknown, not
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_taints_unreadable: Option<String>,
    /// GPU DRA driver -> the devices its ResourceSlices publish on this node: GPUs allocated through DRA
    /// claims, counted in no `*/gpu` capacity (all a node has in NVIDIA's GPU Operator's DRA-only mode).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dra_devices: std::collections::BTreeMap<String, usize>,
    /// Whose GPUs the node carries: `amd` where only AMD's signals are on it (left out for NVIDIA's).
    #[serde(default, skip_serializing_if = "gpu_diag::facts::GpuVendor::is_nvidia")]
    pub vendor: gpu_diag::facts::GpuVendor,
    /// AMD's word on the node's GPUs (labeller, device plugin partitions, DRA driver), where it has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd: Option<amd::AmdNodeFacts>,
    /// GPU Feature Discovery's facts (product, driver, NVLink clique), from its labels.
    #[serde(
        default,
        skip_serializing_if = "gpu_diag::incident::platform::GfdFacts::is_empty"
    )]
    pub gfd: gpu_diag::incident::platform::GfdFacts,
    /// The ComputeDomains (NVIDIA's DRA driver) that run an IMEX daemon here, with its status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imex: Vec<gpu_diag::incident::imex::ImexMembership>,
    pub taints: Vec<String>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// The scheduler signal `mark_gpu_node` set (our condition True, or our taint or label), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<NodeMark>,
    pub architecture: Option<String>,
    pub kubelet_version: Option<String>,
    /// `status.addresses`: what a rank's NCCL peer address is matched against (host-network pods). Not
    /// part of the answers.
    #[serde(skip)]
    #[schemars(skip)]
    pub addresses: Vec<String>,
    /// What names the node's rack besides its GPUs (GFD's clique, its ComputeDomains, the platform's
    /// topology label): `scan_gpu_nodes` groups trays whose fabric never registered by it. Not part of the
    /// answers.
    #[serde(skip)]
    #[schemars(skip)]
    pub rack_hints: gpu_diag::incident::rack::RackHints,
}

/// A pod on a node with its GPU requests.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PodGpuUse {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub phase: String,
    pub containers: Vec<ContainerGpuUse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerGpuUse {
    pub name: String,
    /// Resource name (`nvidia.com/gpu`, `nvidia.com/mig-3g.40gb`) -> requested count.
    pub requests: std::collections::BTreeMap<String, u64>,
    pub limits: std::collections::BTreeMap<String, u64>,
    /// ResourceClaims (object names) it uses: GPUs allocated through DRA request no `nvidia.com/*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
}

/// The cluster-facing half of the tools.
pub trait ClusterBackend: Send + Sync {
    /// Nodes that carry GPUs of either vendor (capacity `nvidia.com/gpu` or `amd.com/gpu` > 0, GFD's or
    /// AMD's labels, AMD's DRA slices), optionally filtered by a label selector.
    fn list_gpu_nodes<'a>(
        &'a self,
        context: Option<&'a str>,
        selector: Option<&'a str>,
    ) -> BoxFut<'a, Vec<GpuNode>>;
    /// One node, GPU or not.
    fn get_node<'a>(&'a self, context: Option<&'a str>, node: &'a str) -> BoxFut<'a, GpuNode>;
    /// Pods bound to `node` that request or limit GPU resources.
    fn pods_with_gpus<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> BoxFut<'a, Vec<PodGpuUse>>;
    /// `get_node` and `pods_with_gpus` together. Backends can answer both from one read of the node and one
    /// list of its pods; this default asks twice.
    fn node_and_gpu_pods<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> BoxFut<'a, (GpuNode, Vec<PodGpuUse>)> {
        Box::pin(async move {
            let n = self.get_node(context, node).await?;
            let pods = self.pods_with_gpus(context, node).await?;
            Ok((n, pods))
        })
    }
    /// The ResourceClaims the API server has allocated on `node` ([`dra_api::claims_on`]); never an
    /// error: what could not be read says why.
    fn dra_claims_on<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
    ) -> Pin<Box<dyn Future<Output = dra_api::NodeClaims> + Send + 'a>> {
        Box::pin(async { dra_api::NodeClaims::NotAsked("this backend reads no DRA claims".into()) })
    }
    /// The GPU Operator's standalone DCGM host engine on `node` ([`dcgm_engine::on_node`]); Ok(None) where
    /// none runs; Err where it could not be looked for.
    fn dcgm_engine_on<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Option<dcgm_engine::NodeEngine>, String>> + Send + 'a>>
    {
        Box::pin(async { Ok(None) })
    }
    /// Whether the caller holds the operator role ([`dcgm_engine::holds_operator_role`]); Err where it
    /// could not be asked. A backend that cannot ask says no.
    fn holds_operator_role<'a>(
        &'a self,
        _context: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        Box::pin(async { Ok(false) })
    }
    /// `node`'s GPUs over the last `hours` from the cluster's own Prometheus ([`prometheus::gpu_history`]):
    /// the one `setting` names, else one found through the API server as the caller. A backend without a
    /// client reads only a URL.
    fn gpu_history<'a>(
        &'a self,
        _context: Option<&'a str>,
        setting: &'a prometheus::PrometheusSetting,
        node: &'a str,
        hours: u32,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<gpu_diag::history::NodeHistory, prometheus::HistoryError>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(prometheus::gpu_history(None, setting, node, hours))
    }
    /// Kubeconfig contexts this launcher can use (for validating a tool's `context` argument).
    fn contexts(&self) -> Vec<String>;

    /// Every pod bound to `node` (any phase), reduced to what the process and allocation joins need: one
    /// list call with a `spec.nodeName` field selector.
    fn pods_on_node<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
    ) -> BoxFut<'a, Vec<gpu_diag::attribution::join::ApiPod>> {
        unsupported("listing a node's pods is not supported by this backend")
    }

    /// Every pod of a workload (any phase), with what a diagnosis needs of each.
    fn workload_pods<'a>(
        &'a self,
        _context: Option<&'a str>,
        _namespace: &'a str,
        _workload: &'a WorkloadRef,
    ) -> BoxFut<'a, Vec<gpu_diag::workload::WorkloadPod>> {
        unsupported("workloads are not supported by this backend")
    }

    /// Each pod's log (current and, for restarted containers, previous), scanned as it streams in, within
    /// `limits`; a pod whose log could not be read says why.
    fn workload_logs<'a>(
        &'a self,
        _context: Option<&'a str>,
        _namespace: &'a str,
        _pods: &'a [gpu_diag::workload::WorkloadPod],
        _limits: &'a LogLimits,
    ) -> BoxFut<'a, PodLogs> {
        unsupported("reading pod logs is not supported by this backend")
    }

    /// Operator mode: cordon (`on`) or uncordon a node; `reason` is recorded on the node.
    fn cordon<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
        _reason: &'a str,
        _on: bool,
    ) -> BoxFut<'a, CordonResult> {
        unsupported("cordon is not supported by this backend")
    }

    /// Operator mode: put a run's own mark on `node` ([`run_mark::set`]): a NoSchedule taint that names
    /// the run, beside every other taint.
    fn set_run_mark<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
        _mark: &'a RunMark,
    ) -> BoxFut<'a, MarkSet> {
        unsupported("run marks are not supported by this backend")
    }

    /// Lift the run mark `key` from `node` ([`run_mark::lift`]), touching nothing else; says what became
    /// of it.
    fn lift_run_mark<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
        _key: &'a str,
    ) -> BoxFut<'a, String> {
        unsupported("run marks are not supported by this backend")
    }

    /// Lift the marks of runs that are gone ([`run_mark::sweep`]), on `node` or on every node; `live`:
    /// this process's runs, never lifted.
    fn sweep_run_marks<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: Option<&'a str>,
        _live: &'a std::collections::BTreeSet<String>,
    ) -> BoxFut<'a, MarkSweep> {
        unsupported("run marks are not supported by this backend")
    }

    /// Operator mode: set the scheduler signal of `mark_gpu_node` (taint, label, condition).
    fn mark_node<'a>(
        &'a self,
        _context: Option<&'a str>,
        _req: &'a MarkRequest,
    ) -> BoxFut<'a, MarkResult> {
        unsupported("marking nodes is not supported by this backend")
    }

    /// Operator mode: remove what `mark_node` set (and nothing else); `note` goes into the cleared condition.
    fn clear_node_mark<'a>(
        &'a self,
        _context: Option<&'a str>,
        _node: &'a str,
        _note: &'a str,
        _dry_run: bool,
    ) -> BoxFut<'a, MarkResult> {
        unsupported("clearing node marks is not supported by this backend")
    }

    /// Operator mode audit trail: an Event on the Node. Returns the Event's name.
    fn record_event<'a>(
        &'a self,
        _context: Option<&'a str>,
        _event: &'a AuditEvent,
    ) -> BoxFut<'a, String> {
        unsupported("events are not supported by this backend")
    }

    /// Who the API server says the kubeconfig user is (SelfSubjectReview), for the audit trail.
    fn whoami<'a>(&'a self, _context: Option<&'a str>) -> BoxFut<'a, String> {
        unsupported("whoami is not supported by this backend")
    }
}

/// One run's mark (`keep_pods_off`, [`run_mark`]): its id and times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMark {
    /// `run-` and 12 hex digits.
    pub id: String,
    pub set: jiff::Timestamp,
    pub deadline: jiff::Timestamp,
}

/// What a run's mark did to its node when set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkSet {
    /// The taint, as `kubectl describe node` shows it.
    pub taint: String,
    /// Whether the node was cordoned already (someone's `spec.unschedulable`, left as it is).
    pub cordoned_before: bool,
    /// Other runs' marks on the node when this one was set.
    pub other_runs: Vec<String>,
}

/// What a sweep of run marks did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MarkSweep {
    /// `node: key (why)` lifted.
    pub lifted: Vec<String>,
    /// `node: key (why)` left.
    pub kept: Vec<String>,
    /// `node: key (error)` that could not be lifted.
    pub failed: Vec<String>,
}

/// What a cordon or uncordon did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CordonResult {
    pub node: String,
    /// `spec.unschedulable` before and after.
    pub unschedulable_before: bool,
    pub unschedulable: bool,
    /// The reason recorded in the node's annotation (cordon), or None (uncordon).
    pub reason: Option<String>,
}

/// A node's mark as the list and scan tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeMark {
    /// The reason code (condition reason, else the taint's or label's value).
    pub reason: String,
    /// When the condition turned True (its lastTransitionTime); absent when only a taint or label is left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The condition's message: verdict, GPU, evidence digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Which parts are present: `taint`, `label`, `condition`.
    pub parts: Vec<String>,
}

/// What `mark_gpu_node` asks for; the arguments are validated by the tool.
#[derive(Debug, Clone)]
pub struct MarkRequest {
    pub node: String,
    /// CamelCase reason code: the condition's reason, the taint's and the label's value.
    pub reason: String,
    /// The condition's message.
    pub message: String,
    /// `NoSchedule` or `NoExecute`; None: no taint.
    pub taint_effect: Option<String>,
    pub label: bool,
    /// Server-side dry run: everything is checked by the API server (RBAC, admission), nothing is stored.
    pub dry_run: bool,
}

/// What a mark or clear did (or, in a dry run, would do), read back from the API server's answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MarkResult {
    pub node: String,
    pub dry_run: bool,
    /// Our taint after the call (`key=value:effect`), absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taint: Option<String>,
    /// Our label after the call (`key=value`), absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Our condition after the call (`Type=Status (Reason)`), absent when the node never had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// lastTransitionTime of our condition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// What the call changed (`taint set`, `label removed`, ...); empty when nothing needed changing.
    pub changed: Vec<String>,
}

/// One operator action for the audit trail: an Event on the Node and a JSON log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    pub node: String,
    /// `kill_gpu_process`, `reset_gpu`, `cordon_gpu_node`, `uncordon_gpu_node`.
    pub action: String,
    /// `gpu-node-5/pid/12345`, `gpu-node-5/gpu/3`, `gpu-node-5`.
    pub target: String,
    /// The kubeconfig user as the API server knows it.
    pub user: String,
    /// `done`, `refused`, `dry_run`, `simulated`, `failed`, `error`.
    pub result: String,
    /// One line of detail (reasons of a refusal, error text).
    pub message: String,
}
