//! One GPU: its identity and inventory (names, ids, memory, MIG), holding each subject's facts about it.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::rdma::RdmaDeviceFacts;

use super::amd::AmdGpuFacts;
use super::ecc::EccFacts;
use super::gaudi::GaudiGpuFacts;
use super::interconnect::{FabricFacts, NvLinkFacts, PcieFacts};
use super::neuron::NeuronGpuFacts;
use super::processes::GpuProcessFacts;
use super::reading::{FieldError, Reading};
use super::telemetry::{
    ClockEventDurations, ClockFacts, PowerFacts, ThermalFacts, UtilizationFacts,
};
use super::vendor::GpuVendor;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuFacts {
    /// The probe's index: NVML's for NVIDIA GPUs; for AMD GPUs their order by PCI address, after the
    /// node's NVIDIA GPUs on a node with both.
    pub index: u32,
    /// Absent means NVIDIA (every document before AMD support).
    #[serde(default, skip_serializing_if = "GpuVendor::is_nvidia")]
    pub vendor: GpuVendor,
    /// Set when `nvmlDeviceGetHandleByIndex` itself failed: nothing else about this GPU is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_error: Option<FieldError>,
    #[serde(default)]
    pub name: Reading<String>,
    #[serde(default)]
    pub uuid: Reading<String>,
    #[serde(default)]
    pub serial: Reading<String>,
    #[serde(default)]
    pub board_part_number: Reading<String>,
    /// PCI bus id as NVML prints it (`00000000:3B:00.0`); analysis normalises it.
    #[serde(default)]
    pub pci_bus_id: Reading<String>,
    /// PCI device id (`0x233010DE`).
    #[serde(default)]
    pub pci_device_id: Reading<u32>,
    #[serde(default)]
    pub vbios_version: Reading<String>,
    /// `Ampere`, `Hopper`, `Ada`, `Turing`, `Blackwell`, ...
    #[serde(default)]
    pub architecture: Reading<String>,
    /// (major, minor).
    #[serde(default)]
    pub cuda_compute_capability: Reading<(i32, i32)>,
    #[serde(default)]
    pub memory: Reading<MemoryFacts>,
    #[serde(default)]
    pub mig_mode: Reading<MigModeFacts>,
    #[serde(default)]
    pub mig_devices: Vec<MigDeviceFacts>,
    #[serde(default)]
    pub persistence_mode: Reading<bool>,
    /// `default`, `exclusive_process`, `prohibited`.
    #[serde(default)]
    pub compute_mode: Reading<String>,
    #[serde(default)]
    pub pcie: PcieFacts,
    #[serde(default)]
    pub nvlinks: Vec<NvLinkFacts>,
    #[serde(default)]
    pub thermal: ThermalFacts,
    /// Percent, per fan. Passively cooled boards report not_supported.
    #[serde(default)]
    pub fan_speed_pct: Reading<Vec<u32>>,
    #[serde(default)]
    pub power: PowerFacts,
    #[serde(default)]
    pub utilization: Reading<UtilizationFacts>,
    #[serde(default)]
    pub clocks: ClockFacts,
    /// P-state number (0 = P0).
    #[serde(default)]
    pub performance_state: Reading<u32>,
    /// Raw `nvmlDeviceGetCurrentClocksEventReasons` bitmask.
    #[serde(default)]
    pub clocks_event_reasons: Reading<u64>,
    /// Accumulated time (ns) in each clocks-event reason since driver load, where supported.
    #[serde(default)]
    pub clocks_event_durations_ns: ClockEventDurations,
    #[serde(default)]
    pub ecc: EccFacts,
    /// NVML field 230 `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`: see [`RECOVERY_ACTIONS`].
    #[serde(default)]
    pub recovery_action: Reading<u32>,
    #[serde(default)]
    pub fabric: Reading<FabricFacts>,
    #[serde(default)]
    pub processes: Reading<Vec<GpuProcessFacts>>,
    #[serde(default)]
    pub numa_node: Reading<i32>,
    /// CPUs in the GPU's affinity set.
    #[serde(default)]
    pub cpu_affinity: Reading<Vec<u32>>,
    /// Minor number of the GPU's device node (`/dev/nvidia<minor>`), from NVML or the driver's
    /// `/proc/driver/nvidia/gpus/<bdf>/information`; absent unless collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor_number: Option<Reading<u32>>,
    /// The GPU's place in the PCI hierarchy (as [`RdmaDeviceFacts::pci_path`]), read only when the node
    /// has RDMA devices: the GPU-NIC affinity is judged from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_path: Option<Reading<Vec<String>>>,
    /// What only an AMD GPU has (RAS blocks, bad pages, XGMI, partitions, KFD); absent on NVIDIA's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd: Option<AmdGpuFacts>,
    /// What only an Intel Gaudi device has (device status, reset counts, module id, firmware versions);
    /// absent on other vendors'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaudi: Option<GaudiGpuFacts>,
    /// What only an AWS Neuron device has (device state, NeuronCores, wiring, error counters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neuron: Option<NeuronGpuFacts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryFacts {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct MigModeFacts {
    pub current: bool,
    pub pending: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MigDeviceFacts {
    pub index: u32,
    #[serde(default)]
    pub uuid: Reading<String>,
    #[serde(default)]
    pub gpu_instance_id: Reading<u32>,
    #[serde(default)]
    pub compute_instance_id: Reading<u32>,
    /// Profile name as NVML names the device (`NVIDIA A100-SXM4-80GB MIG 3g.40gb`).
    #[serde(default)]
    pub name: Reading<String>,
    #[serde(default)]
    pub memory: Reading<MemoryFacts>,
}

/// One of NVML's GPU recovery actions (field 230, `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`, and the target of
/// Xid 154): the one table every reader names them from (health, the Xid engine, the reset preflight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryAction {
    pub value: u32,
    /// snake_case, as answers name it (`drain_and_reset`).
    pub key: &'static str,
    /// As NVIDIA's nvidia-smi and Xid catalog name it (`Drain and Reset`).
    pub name: &'static str,
    /// What it means for a GPU reset: `None` proceeds, `Some((blocks, why))` warns or blocks.
    pub reset: Option<(bool, &'static str)>,
}

/// NVML's recovery actions (nvml.h `nvmlDeviceGpuRecoveryAction_t`: 0 none … 5 recover IMEX domain).
pub const RECOVERY_ACTIONS: &[RecoveryAction] = &[
    RecoveryAction {
        value: 0,
        key: "none",
        name: "None",
        reset: None,
    },
    RecoveryAction {
        value: 1,
        key: "gpu_reset",
        name: "GPU Reset Required",
        reset: None,
    },
    RecoveryAction {
        value: 2,
        key: "node_reboot",
        name: "Node Reboot Required",
        reset: Some((
            true,
            "the driver asks for a node reboot: a GPU reset will not recover it",
        )),
    },
    RecoveryAction {
        value: 3,
        key: "drain_p2p",
        name: "Drain P2P",
        reset: Some((
            false,
            "the driver asks to drain peer-to-peer traffic; a reset is not what it asks for",
        )),
    },
    RecoveryAction {
        value: 4,
        key: "drain_and_reset",
        name: "Drain and Reset",
        reset: None,
    },
    RecoveryAction {
        value: 5,
        key: "recover_imex_domain",
        name: "Recover IMEX Domain",
        reset: Some((
            false,
            "the driver asks to recover the node's IMEX domain (its daemon and peers): a GPU reset is not what it asks for",
        )),
    },
];

/// The table's row for `v`; `None` for a value this build does not know.
pub fn recovery_action(v: u32) -> Option<&'static RecoveryAction> {
    RECOVERY_ACTIONS.iter().find(|a| a.value == v)
}
