//! Every tool, one file each, and the registry that lists them. `tools/list` (and from it `k8s-gpu-mcp call
//! list` and the tests' tool lists) comes from the two lists below: adding a tool is its file plus one line
//! here, which also declares its module.

use rmcp::handler::server::router::tool::ToolRoute;

use crate::mcp::framework::{Tool, ToolServer, route};

/// A registered tool: how to build its route.
pub struct Entry<S> {
    pub route: fn() -> ToolRoute<S>,
    /// Runs as an MCP task where the client can take one ([`Tool::TASK`]).
    pub task: bool,
}

/// `module::Type` per tool: declares the module and lists the tool, read-only ones first (each with when to use
/// it, in the order the instructions introduce them), then the operator tools listed only with `--mode operator`.
macro_rules! registry {
    (
        read_only: [$($r:ident :: $rt:ident => $when:literal),* $(,)?],
        operator: [$($o:ident :: $ot:ident),* $(,)?] $(,)?
    ) => {
        $(mod $r;)*
        $(mod $o;)*

        /// Each read-only tool's name and when to use it, in registry order: the server's instructions
        /// (`crate::mcp::server::instructions`) are written from this list, so none is left out.
        pub const GUIDE: &[(&str, &str)] = &[$((<$r::$rt as Tool>::NAME, $when)),*];

        /// The tools every server lists.
        pub fn read_only<S: ToolServer>() -> Vec<Entry<S>> {
            vec![$(Entry { route: route::<$r::$rt, S>, task: <$r::$rt as Tool>::TASK }),*]
        }

        /// The tools that act on GPUs and nodes, listed only with `--mode operator`.
        pub fn operator<S: ToolServer>() -> Vec<Entry<S>> {
            vec![$(Entry { route: route::<$o::$ot, S>, task: <$o::$ot as Tool>::TASK }),*]
        }
    };
}

registry! {
    read_only: [
        list_gpu_nodes::ListGpuNodes => "to find node names",
        get_gpu_health::GpuHealth => "for a verdict with explained findings",
        analyze_xid_errors::AnalyzeXidErrors => "when a GPU driver error (XID) or a crashed CUDA job is suspected",
        get_gpu_telemetry::GpuTelemetry => "for throttling/temperature/power",
        inspect_topology::InspectTopology => "for NCCL/NVLink/PCIe problems",
        snapshot_ecc::SnapshotEcc => "for memory errors",
        get_gpu_processes::GetGpuProcesses => "to see which processes use the GPUs",
        get_pod_gpu_allocation::GetPodGpuAllocation => "to see which pods hold which GPUs",
        get_gpu_inventory::GpuInventory => "for the GPUs present (models, driver, a missing GPU)",
        describe_gpu_node::DescribeGpuNode => "for everything at once",
        scan_gpu_nodes::ScanGpuNodes => "to find the bad nodes in a fleet",
        diagnose_workload::DiagnoseWorkload => "when a training job is stuck or slow (its pods, nodes, GPUs and ranks' logs)",
        check_cluster::CheckCluster => "when probes fail with permission, namespace or admission errors",
        collect_evidence::CollectEvidence => "to keep the node's nvidia-bug-report and kernel log as an archive before escalating",
        run_gpu_diagnostic::RunGpuDiagnostic => "to test idle GPUs with NVIDIA DCGM's active diagnostic (is this GPU really bad?)",
        watch_gpus::WatchGpus => "when a snapshot cannot tell stuck from slow: a node's or a job's GPUs over a window (hang, straggler, throttle bursts, counters under load)",
        get_gpu_history::GetGpuHistory => "for what the cluster's Prometheus recorded over the last hours (throttling, Xids, ECC, power), with no probe",
    ],
    operator: [
        kill_gpu_process::KillGpuProcess,
        reset_gpu::ResetGpu,
        cordon_gpu_node::CordonGpuNode,
        mark_gpu_node::MarkGpuNode,
        clear_gpu_node_mark::ClearGpuNodeMark,
    ],
}
