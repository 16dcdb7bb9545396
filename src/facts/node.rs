//! The envelope: [`NodeFacts`], everything one probe run learned about a node, each subject in its own
//! section (a scenario file is one of these).

use serde::{Deserialize, Serialize};

use super::amd::AmdDriverFacts;
use super::events::{KernelLogFacts, NvmlEventsFacts, NvmlXidEventFacts};
use super::gpu::GpuFacts;
use super::host::{DriverFacts, HostFacts, ServiceFacts};
use super::imex::ImexFacts;
use super::interconnect::GpuPairFacts;
use super::kubelet::{DraHostFacts, KubeletLogFacts, PodResourcesFacts};
use super::processes::{DeviceHoldersFacts, HostProcessFacts};
use super::rdma::RdmaFacts;
use super::reading::Reading;

/// Everything one probe run learned about a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeFacts {
    /// `nvml` for real hardware, `simulated:<name>` for a scenario.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub host: HostFacts,
    #[serde(default)]
    pub driver: DriverFacts,
    /// What `nvmlDeviceGetCount` returned. Fewer `gpus` than this means a handle failed.
    #[serde(default)]
    pub device_count: Reading<u32>,
    #[serde(default)]
    pub gpus: Vec<GpuFacts>,
    /// Pairwise topology, one entry per unordered pair (a < b by index).
    #[serde(default)]
    pub topology: Vec<GpuPairFacts>,
    /// Kernel log records as read (raw kmsg records, dmesg or syslog lines), in order.
    #[serde(default)]
    pub kernel_log: Reading<KernelLogFacts>,
    /// XID events NVML delivered while `node-probe xid --watch SECONDS` waited (NVML reports only new
    /// events). `not_collected` unless a watch ran.
    #[serde(default)]
    pub nvml_xid_events: Reading<Vec<NvmlXidEventFacts>>,
    /// Host processes of interest (those NVML reported on a GPU), from `{host-root}/proc`.
    #[serde(default)]
    pub host_processes: Vec<HostProcessFacts>,
    /// Host services relevant to GPUs (nvidia-fabricmanager, nvidia-persistenced, ...), where known.
    #[serde(default)]
    pub services: Vec<ServiceFacts>,
    /// What the kubelet's PodResources API answered (`allocation` only; absent when not collected).
    #[serde(default, skip_serializing_if = "Reading::is_not_collected")]
    pub pod_resources: Reading<PodResourcesFacts>,
    /// The kubelet's pod and container log entries under `{host-root}/var/log`: they name the pod UIDs
    /// and container ids that cgroups carry (`allocation` only; absent when not collected).
    #[serde(default, skip_serializing_if = "Reading::is_not_collected")]
    pub kubelet_logs: Reading<KubeletLogFacts>,
    /// DRA drivers registered with the kubelet and the GPU claims they prepared (`allocation` and
    /// `reset`; absent when not collected).
    #[serde(default, skip_serializing_if = "Reading::is_not_collected")]
    pub dra: Reading<DraHostFacts>,
    /// The ResourceClaims the API server has allocated on this node, given by the launcher
    /// (`--api-claims`); absent when not given (local mode, no DRA API, the list refused or too long).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_claims: Option<Vec<super::ApiClaimFacts>>,
    /// NVML events received while the probe waited for them (`--watch SECONDS`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_events: Option<NvmlEventsFacts>,
    /// Processes holding an open `/dev/nvidia*` node, from `{host-root}/proc/*/fd` (operator reset
    /// preflight); absent unless collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_holders: Option<Reading<DeviceHoldersFacts>>,
    /// What the walk of `/proc/*/fd` that listed AMD's, Gaudi's or Neuron's processes did not see; absent
    /// where it saw every process, where no such list was read (NVML lists NVIDIA's), or in a scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_scan_gaps: Option<super::ScanGapsFacts>,
    /// RDMA devices (InfiniBand and RoCE NICs) from `{host-root}/sys/class/infiniband`: an empty list
    /// when the node has none; absent when not collected (older probes, scenarios without NICs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<Reading<RdmaFacts>>,
    /// The node's IMEX daemon and its domain as its command service answered; absent when no IMEX daemon
    /// runs on the node (most nodes: IMEX runs only for a multi-node NVLink job) or it was not collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imex: Option<ImexFacts>,
    /// A simulated node's values over time (`node-probe watch` plays it); absent on real nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<super::timeline::Timeline>,
    /// The amdgpu driver and the node's AMD GPU PCI functions; absent on a node without amdgpu (or a
    /// probe before AMD support).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd_driver: Option<AmdDriverFacts>,
    /// Intel's libhlml on a Gaudi node: the library read, or why it was not (untrusted, crashed, timed
    /// out); absent where the node has no libhlml (or no Gaudi device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hlml: Option<Reading<super::HlmlFacts>>,
}
