//! Every tool, one file each, and the registry that lists them. `tools/list` (and from it `k8s-gpu-mcp call
//! list` and the tests' tool lists), the server's instructions and the tool groups (`--toolsets`) come from
//! the lists below: adding a tool is its file plus one line here, which also declares its module and names its
//! group.

use rmcp::handler::server::router::tool::ToolRoute;

use crate::config::Toolset;
use crate::mcp::framework::{Tool, ToolServer, route};

/// A registered tool: how to build its route, and its group.
pub struct Entry<S> {
    pub route: fn() -> ToolRoute<S>,
    /// Runs as an MCP task where the client can take one ([`Tool::TASK`]).
    pub task: bool,
    pub toolset: Toolset,
}

/// One line of the map the server's instructions carry: a tool, its group, and the questions it answers in
/// the words an SRE uses.
pub struct Guide {
    pub name: &'static str,
    pub toolset: Toolset,
    pub when: &'static str,
}

/// `module::Type => Group, "when"` per tool: declares the module and lists the tool, read-only ones first (in
/// the order the instructions introduce them), then the operator tools (group `Operator`, listed only with
/// `--mode operator`).
macro_rules! registry {
    (
        read_only: [$($r:ident :: $rt:ident => $rg:ident, $rwhen:literal),* $(,)?],
        operator: [$($o:ident :: $ot:ident => $owhen:literal),* $(,)?] $(,)?
    ) => {
        $(mod $r;)*
        $(mod $o;)*

        /// Every tool's name, group and the questions it answers, in registry order: the server's
        /// instructions (`crate::mcp::server::instructions`), `check_cluster`'s and `setup`'s lists of groups
        /// are written from it, so none is left out.
        pub const GUIDE: &[Guide] = &[
            $(Guide { name: <$r::$rt as Tool>::NAME, toolset: Toolset::$rg, when: $rwhen },)*
            $(Guide { name: <$o::$ot as Tool>::NAME, toolset: Toolset::Operator, when: $owhen },)*
        ];

        /// Every tool's route, read-only ones first; the server keeps those of the groups it serves.
        pub fn all<S: ToolServer>() -> Vec<Entry<S>> {
            vec![
                $(Entry { route: route::<$r::$rt, S>, task: <$r::$rt as Tool>::TASK, toolset: Toolset::$rg },)*
                $(Entry { route: route::<$o::$ot, S>, task: <$o::$ot as Tool>::TASK, toolset: Toolset::Operator },)*
            ]
        }
    };
}

/// The tools of group `t`, in registry order.
pub fn tools_of(t: Toolset) -> impl Iterator<Item = &'static str> {
    GUIDE.iter().filter(move |g| g.toolset == t).map(|g| g.name)
}

registry! {
    read_only: [
        list_gpu_nodes::ListGpuNodes => Node, "which nodes of the cluster have GPUs, node names, free and allocated GPUs, NotReady or cordoned nodes",
        get_gpu_health::GpuHealth => Node, "is a node sick or healthy: a verdict per GPU with explained findings",
        analyze_xid_errors::AnalyzeXidErrors => Node, "Xid or SXid errors, NVRM lines in dmesg, a GPU fallen off the bus, a crashed CUDA job",
        get_gpu_telemetry::GpuTelemetry => Node, "throttling, clocks, GPUs running hot, power draw and utilization now",
        inspect_topology::InspectTopology => Node, "NVLink, NVSwitch, XGMI, PCIe or InfiniBand/RoCE links, slow or hanging NCCL",
        snapshot_ecc::SnapshotEcc => Node, "ECC memory errors (single-bit, double-bit), retired pages, row remapping, AMD RAS and bad pages",
        get_gpu_processes::GetGpuProcesses => Node, "which processes use a GPU and its memory, a leaking or zombie process",
        get_pod_gpu_allocation::GetPodGpuAllocation => Node, "which pod or container holds which GPU, device plugin and DRA claims, GPU pods Pending",
        get_gpu_inventory::GpuInventory => Node, "GPU models, UUIDs, serials, driver and CUDA versions, firmware, MIG, a GPU missing from nvidia-smi",
        describe_gpu_node::DescribeGpuNode => Node, "everything about a node at once, before a drain, reset or RMA",
        scan_gpu_nodes::ScanGpuNodes => Fleet, "the bad nodes of the whole cluster, ranked",
        diagnose_workload::DiagnoseWorkload => Workload, "a training job (PyTorchJob, MPIJob, JobSet, RayJob) stuck, hung, slow or crashing: its pods, nodes, GPUs and ranks' logs (NCCL timeouts)",
        check_cluster::CheckCluster => Fleet, "probes failing with permission, namespace or admission errors; is the cluster ready",
        collect_evidence::CollectEvidence => Diagnostics, "keep the nvidia-bug-report and kernel log as an archive before escalating (RMA, support case)",
        run_gpu_diagnostic::RunGpuDiagnostic => Diagnostics, "is this GPU really bad: DCGM diag or AMD RVS stress test on idle GPUs",
        watch_gpus::WatchGpus => Workload, "stuck or slow, a hang or straggler, utilization dropping, throttling in bursts: a node's or job's GPUs over a window",
        get_gpu_history::GetGpuHistory => History, "what happened over the last hours or overnight, from Prometheus (dcgm-exporter): throttling, Xids, ECC, power",
    ],
    operator: [
        kill_gpu_process::KillGpuProcess => "kill a process holding a GPU",
        reset_gpu::ResetGpu => "reset a hung or faulty GPU (nvidia-smi -r, amd-smi reset) instead of rebooting the node",
        cordon_gpu_node::CordonGpuNode => "cordon or uncordon a node",
        mark_gpu_node::MarkGpuNode => "mark a node unhealthy (taint, label, condition) so the scheduler avoids it",
        clear_gpu_node_mark::ClearGpuNodeMark => "clear that mark (its unhealthy taint, label, condition) once the GPU is fixed or replaced",
    ],
}
