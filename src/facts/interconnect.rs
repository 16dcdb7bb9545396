//! How a GPU connects: its PCIe link (with AER totals), its NVLinks, its NVSwitch fabric registration,
//! and the pairwise topology and P2P capabilities of the node's GPUs.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcieFacts {
    /// Max generation with this GPU and this system (`nvmlDeviceGetMaxPcieLinkGeneration`).
    #[serde(default)]
    pub max_link_gen: Reading<u32>,
    /// The GPU's own capability (`nvmlDeviceGetGpuMaxPcieLinkGeneration`).
    #[serde(default)]
    pub gpu_max_link_gen: Reading<u32>,
    #[serde(default)]
    pub max_link_width: Reading<u32>,
    #[serde(default)]
    pub current_link_gen: Reading<u32>,
    #[serde(default)]
    pub current_link_width: Reading<u32>,
    #[serde(default)]
    pub replay_counter: Reading<u64>,
    /// `{host-root}/sys/bus/pci/devices/<bdf>/aer_dev_{correctable,nonfatal,fatal}` totals.
    #[serde(default)]
    pub aer: Reading<AerFacts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AerFacts {
    pub correctable: u64,
    pub nonfatal: u64,
    pub fatal: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvLinkFacts {
    pub link: u32,
    #[serde(default)]
    pub active: Reading<bool>,
    #[serde(default)]
    pub version: Reading<u32>,
    /// PCI bus id of the device at the other end, as NVML reports it.
    #[serde(default)]
    pub remote_pci_bus_id: Reading<String>,
    /// `gpu`, `switch`, `ibmnpu`, `unknown`.
    #[serde(default)]
    pub remote_device_type: Reading<String>,
    #[serde(default)]
    pub replay_errors: Reading<u64>,
    #[serde(default)]
    pub recovery_errors: Reading<u64>,
    #[serde(default)]
    pub crc_flit_errors: Reading<u64>,
    #[serde(default)]
    pub crc_data_errors: Reading<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FabricFacts {
    /// 0 not supported, 1 not started, 2 in progress, 3 completed.
    pub state: u32,
    /// nvmlReturn_t of the registration; meaningful only when state is completed (0 = success).
    #[serde(default)]
    pub status: Option<u32>,
    #[serde(default)]
    pub clique_id: Option<u32>,
    #[serde(default)]
    pub cluster_uuid: Option<String>,
    #[serde(default)]
    pub health_mask: Option<u32>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct P2pFacts {
    /// NVML P2P status per capability: 0 = OK, otherwise nvmlGpuP2PStatus_t.
    #[serde(default)]
    pub read: Option<u32>,
    #[serde(default)]
    pub write: Option<u32>,
    #[serde(default)]
    pub nvlink: Option<u32>,
    #[serde(default)]
    pub atomics: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuPairFacts {
    pub a: u32,
    pub b: u32,
    /// nvmlGpuTopologyLevel_t: 0 internal, 10 single switch, 20 multiple switches, 30 host bridge,
    /// 40 NUMA node, 50 system.
    #[serde(default)]
    pub common_ancestor: Reading<u32>,
    #[serde(default)]
    pub p2p: P2pFacts,
}
