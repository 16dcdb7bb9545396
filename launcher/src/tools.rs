//! The read-only tool surface. Every tool checks its arguments, runs node-probe through the runner (or asks
//! the cluster backend), and returns `structuredContent` with a text rendering of the same result.
//! Tools never know which runner they use.

use std::collections::BTreeMap;

use gpu_diag::analysis::{
    describe::DescribeReport, ecc::EccReport, health::HealthReport, inventory::InventoryReport,
    processes::ProcessesReport, telemetry::TelemetryReport, topology::TopologyReport,
};
use gpu_diag::attribution::AllocationReport;
use gpu_diag::attribution::join::{ApiContainer, ApiPod, PodAssignment, ProcessOwner};
use gpu_diag::contract::Report;
use gpu_diag::finding::Finding;
use gpu_diag::xid::report::XidReport;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, RequestMetaObject};
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::{GpuNode, PodGpuUse};
use crate::progress::Progress;
use crate::render;
use crate::server::{Launcher, ProbeRun, error_result, structured_result};

// ---------------------------------------------------------------------------------------------------
// Arguments. Optional fields are plain types in the schema (no `["string","null"]` unions, which some
// clients mishandle) and simply absent when not given.

/// Arguments of a node tool.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeArgs {
    /// Kubernetes node name as `list_gpu_nodes` or `kubectl get nodes` prints it; `local` in local mode.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// Kubeconfig context of the cluster the node is in. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// Kubernetes node name as `list_gpu_nodes` or `kubectl get nodes` prints it; `local` in local mode.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// Kubeconfig context of the cluster the node is in. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
    /// GPUs the node should have (e.g. 8); fewer answering GPUs becomes a "GPU missing" finding.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 1024))]
    pub expect_gpus: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Kubernetes node name as `list_gpu_nodes` or `kubectl get nodes` prints it; `local` in local mode.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// Kubeconfig context of the cluster the node is in. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
    /// Only events in this window before now: a number and a unit s, m, h or d (e.g. `30m`, `2h`, `7d`).
    /// Omit for everything in the kernel log since boot.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub since: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNodesArgs {
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
    /// Kubernetes label selector to narrow the nodes, e.g. `nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 1024))]
    pub label_selector: Option<String>,
}

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

// ---------------------------------------------------------------------------------------------------
// Results.

/// One node's probe report with the run that produced it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeReport<R> {
    /// The node that was probed.
    pub node: String,
    /// Kubeconfig context used (absent: the default, or local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// How the probe ran.
    pub run: ProbeRun,
    /// The probe's report, as node-probe produced it.
    pub report: R,
}

/// `list_gpu_nodes` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeList {
    /// `local` (one host, no cluster) or `cluster`.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    pub count: usize,
    pub nodes: Vec<GpuNode>,
    /// In local mode: the inventory probe run that found the local GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_probe: Option<ProbeRun>,
}

/// The Kubernetes side of a node: its GPU accounting and the pods using GPUs there.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KubeNodeView {
    pub node: GpuNode,
    pub pods: Vec<PodGpuUse>,
}

/// `describe_gpu_node` result: the probe's full report plus what Kubernetes says about the node.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DescribeOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub run: ProbeRun,
    pub report: DescribeReport,
    /// What the API server says (absent in local mode or when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeNodeView>,
    /// Why `kubernetes` is missing, when it should be there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_error: Option<String>,
}

/// `get_pod_gpu_allocation` result: the API server's request-based view and, when the probe could ask the
/// kubelet, its exact device assignment, joined pod by pod.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PodAllocation {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// True when the device ids and GPU indices are the kubelet's own assignment (PodResources API, read
    /// by the probe on the node); false when only the pods' requests are known.
    pub exact: bool,
    /// Why the assignment is not exact: the probe's reason (kubelet socket missing, ...), or
    /// `probe failed: ...` when the probe itself could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// `status.capacity["nvidia.com/gpu"]` (absent in local mode: no API server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_allocatable: Option<u64>,
    /// Sum of the GPU requests of the node's active pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_allocated: Option<u64>,
    /// Requested count per GPU resource name over all listed pods.
    pub requested_by_resource: BTreeMap<String, u64>,
    /// Pods bound to the node that request GPUs, per the API server (the request-based view; empty in
    /// local mode).
    pub pods: Vec<PodGpuUse>,
    /// Why the API server's view is missing (local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_why: Option<String>,
    /// Both views joined per pod: requests beside the kubelet's device ids with their GPU index, UUID and
    /// MIG instance. Pods only one side knows are listed too (`seen_by`). Empty unless `exact` and in a
    /// cluster (in local mode `report.pods` holds the kubelet's assignment alone).
    pub assignment: Vec<PodAssignment>,
    /// Findings of the join (pods assigned GPUs the API server does not know, running pods without their
    /// devices); the probe's own findings are in `report.findings`.
    pub join_findings: Vec<Finding>,
    /// The probe run (absent when it failed; `why` says how).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<ProbeRun>,
    /// node-probe's `allocation` report: per GPU the holders the kubelet assigned and the processes on it
    /// attributed through their cgroups, with the probe's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<AllocationReport>,
}

/// `get_gpu_processes` result: the probe's processes report, and each process's pod named from the API
/// server's list of the node's pods.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ProcessesOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub run: ProbeRun,
    /// The probe's report, as node-probe produced it (pod UIDs and container ids from cgroups).
    pub report: ProcessesReport,
    /// Every GPU process with its owner: the pod's namespace, name and container from the API server, or
    /// why it has none (outside any pod, pod no longer in the API server, names not looked up).
    pub owners: Vec<ProcessOwner>,
    /// Findings only the join reveals (processes of deleted or finished pods).
    pub join_findings: Vec<Finding>,
    /// How many pods the API server lists on the node (absent when names were not looked up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods_listed: Option<usize>,
    /// Why pods were not named (local mode, or the pod list failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub names_why: Option<String>,
}

// ---------------------------------------------------------------------------------------------------

/// Per-request plumbing every tool gets from rmcp: progress and cancellation.
pub struct CallCtx {
    pub progress: Progress,
    pub cancel: CancellationToken,
}

impl CallCtx {
    pub fn new(
        meta: &RequestMetaObject,
        peer: &Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Self {
        CallCtx {
            progress: Progress::new(meta, peer),
            cancel,
        }
    }
}

macro_rules! pick {
    ($variant:ident) => {
        |r: Report| match r {
            Report::$variant(x) => Some(x),
            _ => None,
        }
    };
}

#[tool_router(router = read_only_router, vis = "pub(crate)")]
impl Launcher {
    #[tool(
        name = "list_gpu_nodes",
        title = "List GPU nodes",
        description = "List the nodes that carry NVIDIA GPUs, with GPU capacity/allocatable/allocated \
counts, MIG resources, readiness, problem conditions, taints and cordon state. Use it first to find node \
names for the other tools, or to spot nodes that are NotReady, cordoned or have fewer allocatable GPUs \
than capacity. In local mode it returns the single node `local` found by an inventory probe.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeList>(),
        input_schema = crate::server::input_schema::<ListNodesArgs>()
    )]
    async fn list_gpu_nodes(
        &self,
        Parameters(a): Parameters<ListNodesArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self.do_list_gpu_nodes(a, &ctx).await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "get_gpu_inventory",
        title = "GPU inventory of a node",
        description = "Identify every GPU on one node: model, UUID, serial, PCI bus id, VBIOS/firmware, \
memory size, MIG/persistence/compute modes, driver and CUDA versions. Use it to answer 'what GPUs does \
this node have', to check that a node sees all its GPUs, or before comparing firmware across nodes.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<InventoryReport>>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn get_gpu_inventory(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self
            .node_tool(
                "get_gpu_inventory",
                a.node_name,
                a.context,
                vec!["inventory".into()],
                &ctx,
                pick!(Inventory),
                render::inventory,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "get_gpu_telemetry",
        title = "GPU telemetry of a node",
        description = "Live readings of every GPU on one node: temperatures against their slowdown and \
shutdown thresholds, power draw against the limit, utilization, clocks, and decoded clock-throttle \
reasons. Use it when jobs are slower than expected, to tell thermal or power throttling from idle GPUs.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<TelemetryReport>>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn get_gpu_telemetry(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self
            .node_tool(
                "get_gpu_telemetry",
                a.node_name,
                a.context,
                vec!["telemetry".into()],
                &ctx,
                pick!(Telemetry),
                render::telemetry,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "inspect_topology",
        title = "GPU interconnect topology of a node",
        description = "The GPU-to-GPU connection matrix of one node (NVLink, PCIe switch, host bridge, \
cross-socket), P2P support, NVLink link state and error counters, NUMA/CPU affinity and NVSwitch fabric \
state. Use it when NCCL all-reduce is slow or hangs, when NVLink errors are suspected, or to check that \
GPUs talk over NVLink instead of PCIe.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<TopologyReport>>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn inspect_topology(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self
            .node_tool(
                "inspect_topology",
                a.node_name,
                a.context,
                vec!["topology".into()],
                &ctx,
                pick!(Topology),
                render::topology,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "analyze_xid_errors",
        title = "Analyze XID errors on a node",
        description = "Read the node's kernel log for NVIDIA XID/SXid events, decode each against NVIDIA's \
catalog (meaning, likely cause, required action) and correlate them (e.g. XID 79 'fallen off the bus' \
with PCIe errors). Use it when a CUDA job crashed or hung, a GPU disappeared, or the kernel log mentions \
NVRM. Returns decoded events per GPU and findings with the recommended action.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<XidReport>>(),
        input_schema = crate::server::input_schema::<XidArgs>()
    )]
    async fn analyze_xid_errors(
        &self,
        Parameters(a): Parameters<XidArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let mut args = vec!["xid".to_string()];
        if let Some(s) = &a.since {
            if let Err(e) = check_since(s) {
                return error_result(e);
            }
            args.push("--since".into());
            args.push(s.clone());
        }
        let r = self
            .node_tool(
                "analyze_xid_errors",
                a.node_name,
                a.context,
                args,
                &ctx,
                pick!(Xid),
                render::xid,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "snapshot_ecc",
        title = "ECC and memory-error snapshot of a node",
        description = "ECC mode and error counters (volatile and aggregate, corrected and uncorrected, by \
location), retired pages and remapped rows of every GPU on one node, with what they require (reset, \
drain, RMA). Use it after XID 48/63/64/94/95, on memory errors in jobs, or before deciding whether a GPU \
must be replaced.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<EccReport>>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn snapshot_ecc(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self
            .node_tool(
                "snapshot_ecc",
                a.node_name,
                a.context,
                vec!["ecc".into()],
                &ctx,
                pick!(Ecc),
                render::ecc,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "get_gpu_health",
        title = "GPU health verdict of a node",
        description = "A per-GPU and node verdict (healthy, degraded, unhealthy, unknown) made of explained \
findings: each names the GPU, the evidence (counter = value) and the recommended action. Covers \
thermals, power, ECC and row remapping, NVLink, fabric, XID events and missing GPUs. Use it first when \
asked whether a node's GPUs are OK or why work on a node fails.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<NodeReport<HealthReport>>(),
        input_schema = crate::server::input_schema::<HealthArgs>()
    )]
    async fn get_gpu_health(
        &self,
        Parameters(a): Parameters<HealthArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let mut args = vec!["health".to_string()];
        if let Some(n) = a.expect_gpus {
            if !(1..=1024).contains(&n) {
                return error_result(format!(
                    "`expect_gpus` must be between 1 and 1024 (got {n}); omit it to skip the check"
                ));
            }
            args.push("--expect-gpus".into());
            args.push(n.to_string());
        }
        let r = self
            .node_tool(
                "get_gpu_health",
                a.node_name,
                a.context,
                args,
                &ctx,
                pick!(Health),
                render::health,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "describe_gpu_node",
        title = "Describe a GPU node (everything)",
        description = "Everything about one node in one probe run: inventory, telemetry, topology, ECC, \
processes, kernel-log XIDs and the health verdict, plus (in cluster mode) the node's Kubernetes GPU \
accounting, conditions, taints and the pods holding GPUs. Use it for a full picture before a decision \
(drain, reset, RMA) or when unsure which narrower tool fits; it is slower and larger than the others.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<DescribeOutput>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn describe_gpu_node(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self.do_describe(a, &ctx).await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "get_pod_gpu_allocation",
        title = "Pods holding GPUs on a node",
        description = "Which pod holds which GPU on one node. Reads the pods' GPU requests from the API \
server and runs a probe that asks the node's kubelet (PodResources API) for the exact device ids, each \
mapped to its GPU index, UUID and MIG instance (`exact: true`); when the kubelet cannot be asked, returns \
the request-based view with `exact: false` and why. Pods only one side knows are listed too, and the \
processes on each GPU are attributed to pods through their cgroups. Use it for 'which pod is using GPU 3?', \
to find whose job runs on a suspect GPU, or why GPU pods stay Pending. One node per call; in local mode \
only the kubelet's view is shown.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<PodAllocation>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn get_pod_gpu_allocation(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self.do_pod_allocation(a, &ctx).await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "get_gpu_processes",
        title = "Processes on the GPUs of a node",
        description = "The processes using each GPU on one node (compute and graphics), with PID, host \
command line, GPU memory used, and the pod (namespace, name, container) each runs in: pod UIDs come from \
the processes' cgroups and are named from the API server's list of the node's pods. Flags processes of \
deleted or finished pods, zombies and processes outside any pod. Use it to see who holds a GPU, find a \
stuck or leaking process, or before resetting a GPU.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<ProcessesOutput>(),
        input_schema = crate::server::input_schema::<NodeArgs>()
    )]
    async fn get_gpu_processes(
        &self,
        Parameters(a): Parameters<NodeArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self.do_processes(a, &ctx).await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "scan_gpu_nodes",
        title = "Scan many GPU nodes",
        description = "Run one check (`health`, `xid` or `ecc`) on every GPU node (or those matching \
label_selector), several at a time, and rank the nodes that need attention (critical findings first, \
then nodes whose probe failed, then warnings). Returns per-node verdicts, findings and errors. Use it to \
find the bad nodes in a fleet, e.g. after a failed multi-node training job.",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<crate::scan::ScanOutput>(),
        input_schema = crate::server::input_schema::<ScanArgs>()
    )]
    async fn scan_gpu_nodes(
        &self,
        Parameters(a): Parameters<ScanArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = crate::scan::scan(self, a, &ctx).await;
        ctx.progress.finish().await;
        r
    }
}

pub fn check_since(s: &str) -> Result<(), String> {
    let ok = s.len() >= 2
        && s.len() <= 7
        && s[..s.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !s.starts_with('0')
        && matches!(s.as_bytes()[s.len() - 1], b's' | b'm' | b'h' | b'd');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`since` must be a number and a unit s, m, h or d, like `30m`, `2h` or `7d` (got `{s}`); \
             omit it for the whole kernel log"
        ))
    }
}

impl Launcher {
    /// The shape shared by the single-node probe tools.
    #[allow(clippy::too_many_arguments)]
    async fn node_tool<R: Serialize>(
        &self,
        tool: &str,
        node: String,
        context: Option<String>,
        args: Vec<String>,
        ctx: &CallCtx,
        pick: impl Fn(Report) -> Option<R>,
        render: fn(&NodeReport<R>) -> String,
    ) -> CallToolResult {
        if let Err(e) = self.check_target(&node, context.as_deref()) {
            return error_result(e);
        }
        let res = match self
            .probe(
                tool,
                &node,
                context.clone(),
                args,
                &ctx.progress,
                ctx.cancel.clone(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return error_result(e),
        };
        let Some(report) = pick(res.report) else {
            return error_result(format!(
                "node-probe on `{node}` answered with a different report than `{tool}` asked for; \
                 the probe and launcher versions probably differ"
            ));
        };
        let out = NodeReport {
            node,
            context,
            run: res.run,
            report,
        };
        let text = render(&out);
        structured_result(&out, text)
    }

    async fn do_list_gpu_nodes(&self, a: ListNodesArgs, ctx: &CallCtx) -> CallToolResult {
        if let Some(cluster) = &self.inner.cluster {
            if let Err(e) = self.check_context(a.context.as_deref()) {
                return error_result(e);
            }
            ctx.progress
                .report(1.0, Some(2.0), "listing nodes from the API server");
            let nodes = tokio::select! {
                r = cluster.list_gpu_nodes(a.context.as_deref(), a.label_selector.as_deref()) => r,
                _ = ctx.cancel.cancelled() => return error_result("the call was cancelled"),
            };
            let nodes = match nodes {
                Ok(n) => n,
                Err(e) => return error_result(cluster_error_text(&e)),
            };
            ctx.progress.report(2.0, Some(2.0), "done");
            let out = NodeList {
                mode: "cluster".into(),
                context: a.context,
                label_selector: a.label_selector,
                count: nodes.len(),
                nodes,
                local_probe: None,
            };
            let text = render::node_list(&out);
            return structured_result(&out, text);
        }
        if a.context.is_some() {
            return error_result(
                "`context` selects a kubeconfig context, which local mode does not use; call again \
                 without `context`",
            );
        }
        if a.label_selector.is_some() {
            return error_result(
                "`label_selector` filters cluster nodes; local mode has the single node `local`. Call \
                 again without `label_selector`",
            );
        }
        let res = match self
            .probe(
                "list_gpu_nodes",
                "local",
                None,
                vec!["inventory".into()],
                &ctx.progress,
                ctx.cancel.clone(),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return error_result(e),
        };
        let gpus = match &res.report {
            Report::Inventory(inv) => render::gpu_count(inv),
            _ => None,
        }
        .unwrap_or(0);
        let node = GpuNode {
            name: "local".into(),
            gpu_capacity: gpus,
            gpu_allocatable: gpus,
            gpu_allocated: 0,
            mig_resources: BTreeMap::new(),
            gpu_labels: BTreeMap::new(),
            ready: true,
            problem_conditions: vec![],
            taints: vec![],
            unschedulable: false,
            architecture: Some(std::env::consts::ARCH.to_string()),
            kubelet_version: None,
        };
        let out = NodeList {
            mode: "local".into(),
            context: None,
            label_selector: None,
            count: 1,
            nodes: vec![node],
            local_probe: Some(res.run),
        };
        let text = render::node_list(&out);
        structured_result(&out, text)
    }

    async fn do_describe(&self, a: NodeArgs, ctx: &CallCtx) -> CallToolResult {
        if let Err(e) = self.check_target(&a.node_name, a.context.as_deref()) {
            return error_result(e);
        }
        let node = a.node_name;
        let probe = self.probe(
            "describe_gpu_node",
            &node,
            a.context.clone(),
            vec!["describe".into()],
            &ctx.progress,
            ctx.cancel.clone(),
        );
        // The API-server half runs alongside the probe; it is cheap and independent.
        let kube = async {
            match &self.inner.cluster {
                None => None,
                Some(c) => Some(
                    c.node_and_gpu_pods(a.context.as_deref(), &node)
                        .await
                        .map(|(n, pods)| KubeNodeView { node: n, pods }),
                ),
            }
        };
        let (res, kube) = tokio::join!(probe, kube);
        let res = match res {
            Ok(r) => r,
            Err(e) => return error_result(e),
        };
        let Report::Describe(report) = res.report else {
            return error_result(format!(
                "node-probe on `{node}` answered with a different report than describe; the probe and \
                 launcher versions probably differ"
            ));
        };
        let (kubernetes, kubernetes_error) = match kube {
            None => (None, None),
            Some(Ok(v)) => (Some(v), None),
            Some(Err(e)) => (None, Some(cluster_error_text(&e))),
        };
        let out = DescribeOutput {
            node,
            context: a.context,
            run: res.run,
            report: *report,
            kubernetes,
            kubernetes_error,
        };
        let text = render::describe(&out);
        structured_result(&out, text)
    }

    async fn do_pod_allocation(&self, a: NodeArgs, ctx: &CallCtx) -> CallToolResult {
        if let Err(e) = self.check_target(&a.node_name, a.context.as_deref()) {
            return error_result(e);
        }
        let ctxn = a.context.as_deref();
        // Both halves at once: the API server's request view (two requests) and node-probe asking the
        // kubelet. The probe's failure costs exactness, never the request view.
        let api = async {
            match &self.inner.cluster {
                None => Ok(None),
                Some(cluster) => cluster
                    .node_and_gpu_pods(ctxn, &a.node_name)
                    .await
                    .map(Some),
            }
        };
        let probe = self.probe(
            "get_pod_gpu_allocation",
            &a.node_name,
            a.context.clone(),
            vec!["allocation".into()],
            &ctx.progress,
            ctx.cancel.clone(),
        );
        let (api, probe) = tokio::select! {
            r = async { tokio::join!(api, probe) } => r,
            // The probe also sees the token and deletes its pod; the API requests are simply dropped.
            _ = ctx.cancel.cancelled() => return error_result("the call was cancelled"),
        };
        if ctx.cancel.is_cancelled() {
            return error_result("the call was cancelled");
        }
        let api = match api {
            Ok(v) => v,
            Err(e) => return error_result(cluster_error_text(&e)),
        };
        let (run, report, probe_error) = match probe {
            Ok(res) => match res.report {
                Report::Allocation(r) => (Some(res.run), Some(r), None),
                _ => (
                    Some(res.run),
                    None,
                    Some(format!(
                        "node-probe on `{}` answered with a different report than allocation; the \
                         probe and launcher versions probably differ",
                        a.node_name
                    )),
                ),
            },
            Err(e) => (None, None, Some(e)),
        };
        let exact = report.as_ref().is_some_and(|r| r.exact);
        let why = match (&report, &probe_error) {
            (_, Some(e)) => Some(format!("probe failed: {e}")),
            (Some(r), None) if !r.exact => Some(
                r.why
                    .clone()
                    .unwrap_or_else(|| "the probe could not ask the kubelet".into()),
            ),
            _ => None,
        };
        let has_api = api.is_some();
        let (n, pods) = match api {
            Some((n, pods)) => (Some(n), pods),
            None => (None, Vec::new()),
        };
        let mut requested_by_resource = BTreeMap::new();
        for p in &pods {
            for c in &p.containers {
                for (k, v) in &c.requests {
                    *requested_by_resource.entry(k.clone()).or_insert(0) += v;
                }
            }
        }
        // Without an API server there is nothing to join: the report's own pods are the whole answer.
        let (assignment, join_findings) = match report.as_ref().filter(|r| r.exact && has_api) {
            Some(r) => {
                let api_pods: Vec<ApiPod> = pods.iter().map(api_pod_of).collect();
                let j = gpu_diag::attribution::join::join_allocation(r, &api_pods);
                (j.pods, j.findings)
            }
            None => (Vec::new(), Vec::new()),
        };
        let out = PodAllocation {
            node: a.node_name,
            context: a.context,
            exact,
            why,
            gpu_capacity: n.as_ref().map(|n| n.gpu_capacity),
            gpu_allocatable: n.as_ref().map(|n| n.gpu_allocatable),
            gpu_allocated: n.as_ref().map(|n| n.gpu_allocated),
            requested_by_resource,
            pods,
            api_why: self.is_local().then(|| {
                "local mode: no API server, so pods' requests are not known; the kubelet's view is \
                 shown alone"
                    .to_string()
            }),
            assignment,
            join_findings,
            run,
            report,
        };
        let text = render::pod_allocation(&out);
        structured_result(&out, text)
    }

    async fn do_processes(&self, a: NodeArgs, ctx: &CallCtx) -> CallToolResult {
        if let Err(e) = self.check_target(&a.node_name, a.context.as_deref()) {
            return error_result(e);
        }
        let probe = self.probe(
            "get_gpu_processes",
            &a.node_name,
            a.context.clone(),
            vec!["processes".into()],
            &ctx.progress,
            ctx.cancel.clone(),
        );
        // One list of the node's pods, beside the probe; never one request per process.
        let names = async {
            match &self.inner.cluster {
                None => Err(
                    "local mode: no API server to name pods; pod UIDs and container ids come \
                             from the processes' cgroups"
                        .to_string(),
                ),
                Some(c) => c
                    .pods_on_node(a.context.as_deref(), &a.node_name)
                    .await
                    .map_err(|e| format!("could not list the node's pods: {e}")),
            }
        };
        let (res, names) = tokio::join!(probe, names);
        let res = match res {
            Ok(r) => r,
            Err(e) => return error_result(e),
        };
        let Report::Processes(report) = res.report else {
            return error_result(format!(
                "node-probe on `{}` answered with a different report than `get_gpu_processes` asked \
                 for; the probe and launcher versions probably differ",
                a.node_name
            ));
        };
        let (pods, names_why) = match names {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        };
        let join = gpu_diag::attribution::join::join_processes(&report, pods.as_deref());
        let out = ProcessesOutput {
            node: a.node_name,
            context: a.context,
            run: res.run,
            report,
            owners: join.owners,
            join_findings: join.findings,
            pods_listed: pods.as_ref().map(Vec::len),
            names_why,
        };
        let text = render::processes(&out);
        structured_result(&out, text)
    }
}

/// The request view's pod in the join's shape (no container ids: the allocation join matches by name).
fn api_pod_of(p: &PodGpuUse) -> ApiPod {
    ApiPod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        uid: p.uid.clone(),
        mirror_uid: None,
        phase: Some(p.phase.clone()),
        containers: p
            .containers
            .iter()
            .map(|c| ApiContainer {
                name: c.name.clone(),
                container_id: None,
                gpu_requests: c.requests.clone(),
            })
            .collect(),
    }
}

pub fn cluster_error_text(e: &crate::cluster::ClusterError) -> String {
    use crate::cluster::ClusterError as E;
    let hint = match e {
        E::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
        E::Forbidden(_) => "bind the launcher's user to the reader ClusterRole in deploy/",
        E::UnknownContext { .. } => "omit `context` to use the default context",
        E::BadSelector(_) => {
            "use Kubernetes label-selector syntax, e.g. `key=value,other!=x` or `key in (a,b)`"
        }
        E::Api(_) => "check that the API server is reachable (`kubectl get nodes`)",
    };
    format!("{e}\nhint: {hint}")
}
