//! Every tool, one file each, and the registry that lists them. `tools/list`, the server instructions,
//! `k8s-gpu-mcp call list` and the tests' tool lists all come from [`READ_ONLY`] and [`OPERATOR`]: adding
//! a tool is its file plus one line here.

mod analyze_xid_errors;
mod check_cluster;
mod cordon_gpu_node;
mod describe_gpu_node;
mod get_gpu_health;
mod get_gpu_inventory;
mod get_gpu_processes;
mod get_gpu_telemetry;
mod get_pod_gpu_allocation;
mod inspect_topology;
mod kill_gpu_process;
mod list_gpu_nodes;
mod reset_gpu;
mod scan_gpu_nodes;
mod snapshot_ecc;

use rmcp::handler::server::router::tool::ToolRoute;

use crate::tool::{Host, route};

/// A registered tool: how to build its route.
pub struct Entry<S> {
    pub route: fn() -> ToolRoute<S>,
}

macro_rules! entry {
    ($t:ty) => {
        Entry {
            route: route::<$t, S>,
        }
    };
}

/// The tools every server lists, in the order the instructions introduce them.
pub fn read_only<S: Host>() -> Vec<Entry<S>> {
    vec![
        entry!(list_gpu_nodes::ListGpuNodes),
        entry!(get_gpu_health::GpuHealth),
        entry!(analyze_xid_errors::AnalyzeXidErrors),
        entry!(get_gpu_telemetry::GpuTelemetry),
        entry!(inspect_topology::InspectTopology),
        entry!(snapshot_ecc::SnapshotEcc),
        entry!(get_gpu_processes::GetGpuProcesses),
        entry!(get_pod_gpu_allocation::GetPodGpuAllocation),
        entry!(get_gpu_inventory::GpuInventory),
        entry!(describe_gpu_node::DescribeGpuNode),
        entry!(scan_gpu_nodes::ScanGpuNodes),
        entry!(check_cluster::CheckCluster),
    ]
}

/// The tools that act on GPUs and nodes, listed only with `--mode operator`.
pub fn operator<S: Host>() -> Vec<Entry<S>> {
    vec![
        entry!(kill_gpu_process::KillGpuProcess),
        entry!(reset_gpu::ResetGpu),
        entry!(cordon_gpu_node::CordonGpuNode),
    ]
}
