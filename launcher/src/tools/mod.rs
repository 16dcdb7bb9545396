//! Every tool, one file each, and the registry that lists them. `tools/list` (and from it `k8s-gpu-mcp call
//! list` and the tests' tool lists) comes from the two lists below: adding a tool is its file plus one line
//! here, which also declares its module.

use rmcp::handler::server::router::tool::ToolRoute;

use crate::tool::{Host, route};

/// A registered tool: how to build its route.
pub struct Entry<S> {
    pub route: fn() -> ToolRoute<S>,
}

/// `module::Type` per tool: declares the module and lists the tool, read-only ones first (in the order the
/// instructions introduce them), then the operator tools listed only with `--mode operator`.
macro_rules! registry {
    (
        read_only: [$($r:ident :: $rt:ident),* $(,)?],
        operator: [$($o:ident :: $ot:ident),* $(,)?] $(,)?
    ) => {
        $(mod $r;)*
        $(mod $o;)*

        /// The tools every server lists.
        pub fn read_only<S: Host>() -> Vec<Entry<S>> {
            vec![$(Entry { route: route::<$r::$rt, S> }),*]
        }

        /// The tools that act on GPUs and nodes, listed only with `--mode operator`.
        pub fn operator<S: Host>() -> Vec<Entry<S>> {
            vec![$(Entry { route: route::<$o::$ot, S> }),*]
        }
    };
}

registry! {
    read_only: [
        list_gpu_nodes::ListGpuNodes,
        get_gpu_health::GpuHealth,
        analyze_xid_errors::AnalyzeXidErrors,
        get_gpu_telemetry::GpuTelemetry,
        inspect_topology::InspectTopology,
        snapshot_ecc::SnapshotEcc,
        get_gpu_processes::GetGpuProcesses,
        get_pod_gpu_allocation::GetPodGpuAllocation,
        get_gpu_inventory::GpuInventory,
        describe_gpu_node::DescribeGpuNode,
        scan_gpu_nodes::ScanGpuNodes,
        diagnose_workload::DiagnoseWorkload,
        check_cluster::CheckCluster,
        collect_evidence::CollectEvidence,
    ],
    operator: [
        kill_gpu_process::KillGpuProcess,
        reset_gpu::ResetGpu,
        cordon_gpu_node::CordonGpuNode,
        mark_gpu_node::MarkGpuNode,
        clear_gpu_node_mark::ClearGpuNodeMark,
    ],
}
