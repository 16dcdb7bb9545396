//! The node's RDMA NICs (InfiniBand and RoCE) as sysfs shows them: devices, ports with their counters
//! (sampled twice), and the ports' network interfaces.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// Port counters read a second time, `sample_interval_ms` after the first sample, to tell what is
/// increasing now from lifetime totals: the error counters and the two that congestion is judged from.
pub const RESAMPLED_PORT_COUNTERS: &[&str] = &[
    "symbol_error",
    "link_error_recovery",
    "link_downed",
    "port_rcv_errors",
    "port_rcv_remote_physical_errors",
    "local_link_integrity_errors",
    "excessive_buffer_overrun_errors",
    "port_xmit_discards",
    "port_xmit_wait",
    "port_xmit_data",
];

/// Netdev values read a second time (`carrier_changes` and `statistics/<name>`).
pub const RESAMPLED_NETDEV_COUNTERS: [&str; 4] =
    ["carrier_changes", "rx_errors", "rx_crc_errors", "tx_errors"];

/// The node's RDMA devices as sysfs shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RdmaFacts {
    /// Milliseconds between the two counter samples; absent when only one sample was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_ms: Option<u64>,
    #[serde(default)]
    pub devices: Vec<RdmaDeviceFacts>,
}

/// One RDMA device (`sys/class/infiniband/<name>`), usually one PCI function of a ConnectX adapter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RdmaDeviceFacts {
    /// `mlx5_0`.
    pub name: String,
    /// `hca_type` (`MT4129` is ConnectX-7): with the link layer, what "the same model" means.
    #[serde(default)]
    pub hca_type: Reading<String>,
    #[serde(default)]
    pub board_id: Reading<String>,
    #[serde(default)]
    pub fw_ver: Reading<String>,
    /// Canonical PCI address of the function (`device` symlink).
    #[serde(default)]
    pub pci_bus_id: Reading<String>,
    /// The function's place in the PCI hierarchy: the sysfs path below `sys/devices`, root complex
    /// first (`pci0000:17`, `0000:17:01.0`, ..., the function itself).
    #[serde(default)]
    pub pci_path: Reading<Vec<String>>,
    /// `device/numa_node` (-1: no NUMA affinity).
    #[serde(default)]
    pub numa_node: Reading<i32>,
    #[serde(default)]
    pub ports: Vec<RdmaPortFacts>,
    /// Network interfaces of the function (`device/net/*`): the RoCE netdev, or IPoIB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub netdevs: Vec<NetdevFacts>,
}

/// One port (`ports/<n>`): state files as the kernel prints them, counters as numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RdmaPortFacts {
    pub port: u32,
    /// `4: ACTIVE`, `1: DOWN`, `2: INIT`, `3: ARMED`.
    #[serde(default)]
    pub state: Reading<String>,
    /// `5: LinkUp`, `2: Polling`, `3: Disabled`, ...
    #[serde(default)]
    pub phys_state: Reading<String>,
    /// `400 Gb/sec (4X NDR)`.
    #[serde(default)]
    pub rate: Reading<String>,
    /// `InfiniBand` or `Ethernet` (RoCE).
    #[serde(default)]
    pub link_layer: Reading<String>,
    /// `counters/*` (first sample).
    #[serde(default)]
    pub counters: Reading<std::collections::BTreeMap<String, u64>>,
    /// `hw_counters/*` (driver-specific; first sample).
    #[serde(default)]
    pub hw_counters: Reading<std::collections::BTreeMap<String, u64>>,
    /// [`RESAMPLED_PORT_COUNTERS`] read again `sample_interval_ms` after `counters`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counters_later: std::collections::BTreeMap<String, u64>,
}

/// A network interface (`sys/class/net/<name>`) of an RDMA function.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetdevFacts {
    pub name: String,
    /// `up`, `down`, `lowerlayerdown`, ...
    #[serde(default)]
    pub operstate: Reading<String>,
    /// Mb/s; -1 while the link is down.
    #[serde(default)]
    pub speed_mbps: Reading<i64>,
    /// Carrier up and down transitions since the interface was created.
    #[serde(default)]
    pub carrier_changes: Reading<u64>,
    /// `statistics/*` (first sample).
    #[serde(default)]
    pub statistics: Reading<std::collections::BTreeMap<String, u64>>,
    /// [`RESAMPLED_NETDEV_COUNTERS`] read again `sample_interval_ms` later.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub later: std::collections::BTreeMap<String, u64>,
}
