//! The raw-fact model: what NVML, sysfs, `/proc` and the kernel log returned on one node, and nothing else.
//!
//! A simulated scenario is a serialized [`NodeFacts`]; the NVML collector in `node-probe` fills the same type.
//! Facts never carry verdicts: every judgement is made by the analysis modules from these values, so a
//! simulated node and a real one go through exactly the same interpretation.

use serde::{Deserialize, Serialize};

/// Why one field could not be read. Reported inline; it never fails the whole document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldErrorKind {
    /// The GPU or driver does not support this query (NVML_ERROR_NOT_SUPPORTED).
    NotSupported,
    /// Insufficient privileges (NVML_ERROR_NO_PERMISSION, EACCES).
    NoPermission,
    /// The GPU stopped answering (NVML_ERROR_GPU_IS_LOST): treat as off the bus.
    GpuIsLost,
    /// The driver's NVML lacks the symbol or field (older driver).
    FunctionNotFound,
    /// A file or entry that should exist does not.
    NotFound,
    /// The query timed out.
    Timeout,
    /// The collector did not gather this field for the command that ran.
    NotCollected,
    /// Any other failure; `message` says what.
    Unknown,
}

/// An inline per-field failure: `{"error": "not_supported"}` or `{"error": "unknown", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    pub error: FieldErrorKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl FieldError {
    pub fn new(error: FieldErrorKind) -> Self {
        Self {
            error,
            message: None,
        }
    }
    pub fn with_message(error: FieldErrorKind, message: impl Into<String>) -> Self {
        Self {
            error,
            message: Some(message.into()),
        }
    }
}

/// One reading: the value, or why there is none. Serialized untagged, so a scenario file writes plain
/// values (`"temperature_c": 41`) and only failures need the `{"error": ..}` form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Reading<T> {
    // Err first: a FieldError denies unknown fields, so a plain value never deserializes as one.
    Err(FieldError),
    Ok(T),
}

impl<T> Default for Reading<T> {
    fn default() -> Self {
        Reading::Err(FieldError::new(FieldErrorKind::NotCollected))
    }
}

impl<T> Reading<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Reading::Ok(v) => Some(v),
            Reading::Err(_) => None,
        }
    }
    pub fn err(&self) -> Option<&FieldError> {
        match self {
            Reading::Ok(_) => None,
            Reading::Err(e) => Some(e),
        }
    }
    pub fn is_ok(&self) -> bool {
        matches!(self, Reading::Ok(_))
    }
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Reading<U> {
        match self {
            Reading::Ok(v) => Reading::Ok(f(v)),
            Reading::Err(e) => Reading::Err(e.clone()),
        }
    }
    pub fn not_supported() -> Self {
        Reading::Err(FieldError::new(FieldErrorKind::NotSupported))
    }
    /// True for the default "the collector did not gather this" state (lets optional sections stay
    /// out of serialized facts).
    pub fn is_not_collected(&self) -> bool {
        matches!(self, Reading::Err(e) if e.error == FieldErrorKind::NotCollected && e.message.is_none())
    }
}

impl<T: Copy> Reading<T> {
    pub fn get(&self) -> Option<T> {
        self.ok().copied()
    }
}

impl<T> From<Result<T, FieldError>> for Reading<T> {
    fn from(r: Result<T, FieldError>) -> Self {
        match r {
            Ok(v) => Reading::Ok(v),
            Err(e) => Reading::Err(e),
        }
    }
}

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
    /// NVML events received while the probe waited for them (`--watch SECONDS`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_events: Option<NvmlEventsFacts>,
    /// Processes holding an open `/dev/nvidia*` node, from `{host-root}/proc/*/fd` (operator reset
    /// preflight); absent unless collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_holders: Option<Reading<DeviceHoldersFacts>>,
    /// RDMA devices (InfiniBand and RoCE NICs) from `{host-root}/sys/class/infiniband`: an empty list
    /// when the node has none; absent when not collected (older probes, scenarios without NICs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<Reading<RdmaFacts>>,
}

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

/// Who holds the NVIDIA device nodes open, as `/proc/*/fd` symlinks say.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHoldersFacts {
    pub holders: Vec<DeviceHolderFacts>,
    /// Processes whose `fd` directory could not be read (exited meanwhile, or no permission).
    #[serde(default)]
    pub unreadable_pids: u32,
    /// The probe's own pid, left out of `holders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_self_pid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceHolderFacts {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    #[serde(default)]
    pub name: Reading<String>,
    /// Distinct device paths held (`/dev/nvidia3`, `/dev/nvidiactl`, `/dev/nvidia-uvm`, ...), sorted.
    pub devices: Vec<String>,
}

/// What an NVML event watch saw. NVML only reports events that happen while registered: history comes
/// from the kernel log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventsFacts {
    pub watched_seconds: u32,
    /// Per GPU: the event-type mask registered, or why registration failed.
    #[serde(default)]
    pub registered: Vec<NvmlEventRegistration>,
    /// In arrival order.
    #[serde(default)]
    pub events: Vec<NvmlEventFacts>,
    /// Why the wait ended before `watched_seconds` (e.g. gpu_is_lost), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<FieldError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventRegistration {
    pub gpu: u32,
    /// nvmlEventType bits registered (0x8 XID critical error, 0x8000 GPU recovery action, ...).
    pub event_types: Reading<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventFacts {
    /// Index of the GPU the event names, when it is one of the enumerated GPUs.
    #[serde(default)]
    pub gpu: Option<u32>,
    /// The nvmlEventType bit: 0x8 XID critical error, 0x8000 GPU recovery action, 0x2 double-bit ECC, ...
    pub event_type: u64,
    /// For 0x8 the XID number; for 0x8000 the recovery action (as field 230).
    pub event_data: u64,
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
    /// Wall clock when the probe received it (unix seconds).
    pub received_unix: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    #[serde(default)]
    pub hostname: Reading<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    #[serde(default)]
    pub boot_id: Reading<String>,
    #[serde(default)]
    pub kernel_release: Reading<String>,
    /// Wall-clock boot time (unix seconds), to turn kmsg monotonic microseconds into timestamps.
    #[serde(default)]
    pub boot_time_unix: Reading<f64>,
    /// Wall clock when the facts were collected (unix seconds). Fixed in scenarios so output is stable.
    #[serde(default)]
    pub now_unix: Reading<f64>,
    /// Number of CPUs, for reading CPU affinity masks.
    #[serde(default)]
    pub cpu_count: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverFacts {
    #[serde(default)]
    pub driver_version: Reading<String>,
    /// As NVML encodes it: 1000 * major + 10 * minor (12040 = 12.4).
    #[serde(default)]
    pub cuda_driver_version: Reading<i32>,
    #[serde(default)]
    pub nvml_version: Reading<String>,
    /// Path of the NVML library the probe loaded (the loader's name, or a file under the host root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_library: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuFacts {
    pub index: u32,
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
    /// NVML field 230 `NVML_FI_DEV_GET_GPU_RECOVERY_ACTION`: 0 none, 1 GPU reset, 2 node reboot,
    /// 3 drain P2P, 4 drain and reset.
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
pub struct ThermalFacts {
    #[serde(default)]
    pub gpu_temp_c: Reading<u32>,
    #[serde(default)]
    pub memory_temp_c: Reading<u32>,
    #[serde(default)]
    pub shutdown_threshold_c: Reading<u32>,
    #[serde(default)]
    pub slowdown_threshold_c: Reading<u32>,
    /// "Max operating" (GPU_MAX): above it the GPU may throttle below base clock.
    #[serde(default)]
    pub gpu_max_threshold_c: Reading<u32>,
    #[serde(default)]
    pub memory_max_threshold_c: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerFacts {
    #[serde(default)]
    pub usage_mw: Reading<u32>,
    #[serde(default)]
    pub enforced_limit_mw: Reading<u32>,
    #[serde(default)]
    pub default_limit_mw: Reading<u32>,
    #[serde(default)]
    pub max_limit_mw: Reading<u32>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct UtilizationFacts {
    pub gpu_pct: u32,
    pub memory_pct: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockFacts {
    #[serde(default)]
    pub sm_mhz: Reading<u32>,
    #[serde(default)]
    pub sm_max_mhz: Reading<u32>,
    #[serde(default)]
    pub graphics_mhz: Reading<u32>,
    #[serde(default)]
    pub graphics_max_mhz: Reading<u32>,
    #[serde(default)]
    pub memory_mhz: Reading<u32>,
    #[serde(default)]
    pub memory_max_mhz: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockEventDurations {
    #[serde(default)]
    pub sw_power_cap: Reading<u64>,
    #[serde(default)]
    pub sw_thermal_slowdown: Reading<u64>,
    #[serde(default)]
    pub hw_thermal_slowdown: Reading<u64>,
    #[serde(default)]
    pub hw_power_brake_slowdown: Reading<u64>,
    #[serde(default)]
    pub sync_boost: Reading<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EccFacts {
    #[serde(default)]
    pub mode: Reading<EccModeFacts>,
    /// Totals: `nvmlDeviceGetTotalEccErrors`.
    #[serde(default)]
    pub volatile_corrected: Reading<u64>,
    #[serde(default)]
    pub volatile_uncorrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_corrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_uncorrected: Reading<u64>,
    /// Per memory location (`l1`, `l2`, `dram`, `register_file`, `texture`, `texture_shm`, `cbu`, `sram`).
    #[serde(default)]
    pub by_location: Vec<EccLocationFacts>,
    /// Pre-Ampere page retirement; not_supported on A100/H100.
    #[serde(default)]
    pub retired_pages: Reading<RetiredPagesFacts>,
    /// Ampere+ row remapping (`nvmlDeviceGetRemappedRows`); not_supported with active MIG instances.
    #[serde(default)]
    pub remapped_rows: Reading<RemappedRowsFacts>,
    /// Per-bank remap availability histogram, where available.
    #[serde(default)]
    pub row_remapper_histogram: Reading<RowRemapHistogram>,
    /// SRAM uncorrectable-error threshold flag (Ampere+), where available.
    #[serde(default)]
    pub sram_threshold_exceeded: Reading<bool>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct EccModeFacts {
    pub current: bool,
    pub pending: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EccLocationFacts {
    pub location: String,
    #[serde(default)]
    pub volatile_corrected: Reading<u64>,
    #[serde(default)]
    pub volatile_uncorrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_corrected: Reading<u64>,
    #[serde(default)]
    pub aggregate_uncorrected: Reading<u64>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RetiredPagesFacts {
    pub single_bit: u32,
    pub double_bit: u32,
    pub pending: bool,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RemappedRowsFacts {
    pub correctable: u32,
    pub uncorrectable: u32,
    pub pending: bool,
    pub failure: bool,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct RowRemapHistogram {
    pub max: u32,
    pub high: u32,
    pub partial: u32,
    pub low: u32,
    pub none: u32,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpuProcessFacts {
    pub pid: u32,
    /// `compute` or `graphics`.
    pub kind: String,
    /// None when NVML cannot report it (e.g. without privilege or in some MIG/vGPU setups).
    #[serde(default)]
    pub used_memory_bytes: Option<u64>,
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
}

/// What the host's `/proc/<pid>` says about a process NVML reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostProcessFacts {
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    #[serde(default)]
    pub name: Reading<String>,
    /// `/proc/<pid>/cmdline`, NUL-separated arguments joined with spaces.
    #[serde(default)]
    pub cmdline: Reading<String>,
    /// Raw `/proc/<pid>/cgroup` contents.
    #[serde(default)]
    pub cgroup: Reading<String>,
    /// Process state letter from `/proc/<pid>/stat` (`R`, `S`, `Z`, ...).
    #[serde(default)]
    pub state: Reading<String>,
    /// Seconds since the process started, where derivable.
    #[serde(default)]
    pub age_seconds: Reading<u64>,
    /// Parent pid (`/proc/<pid>/stat` field 4), where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// Kernel `task->flags` (`/proc/<pid>/stat` field 9; `PF_KTHREAD` = 0x00200000), where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_flags: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFacts {
    /// `nvidia-fabricmanager`, `nvidia-persistenced`, `nv-hostengine`, ...
    pub name: String,
    /// Whether a process of that name runs on the host.
    pub running: Reading<bool>,
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

/// The kernel ring buffer (or a log file) as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelLogFacts {
    /// `kmsg`, `file:<path>` or `simulated`.
    pub origin: String,
    /// Records in read order: raw kmsg records (`pri,seq,usec,flags;text`), dmesg lines or syslog lines.
    pub lines: Vec<String>,
    /// True when the reader stopped early (size cap) or records were overwritten while reading.
    #[serde(default)]
    pub truncated: bool,
}

/// The kubelet PodResources API's answers (`v1.PodResourcesLister`), as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesFacts {
    /// The socket as addressed, relative to the host root.
    pub socket: String,
    /// `List`: devices per container of each active pod.
    #[serde(default)]
    pub pods: Vec<PodResourcesPodFacts>,
    /// `GetAllocatableResources`: every device the node can assign. Kubelets before 1.21 answer
    /// unimplemented (not_supported).
    #[serde(default)]
    pub allocatable: Reading<Vec<ContainerDevicesFacts>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesPodFacts {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub containers: Vec<PodResourcesContainerFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesContainerFacts {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<ContainerDevicesFacts>,
}

/// One resource's device ids (`nvidia.com/gpu`: `GPU-<uuid>`, `MIG-<uuid>`, `nvidia0/gi1`, `<id>::2`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerDevicesFacts {
    pub resource_name: String,
    #[serde(default)]
    pub device_ids: Vec<String>,
    /// NUMA nodes of the devices, where the device plugin reports topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numa_nodes: Vec<i64>,
}

/// The kubelet's log layout, which ties cgroup ids to names without asking the API server:
/// `var/log/pods/<namespace>_<pod>_<uid>/<container>/` and
/// `var/log/containers/<pod>_<namespace>_<container>-<container id>.log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletLogFacts {
    #[serde(default)]
    pub pods: Vec<PodLogDirFacts>,
    /// File names in `var/log/containers`.
    #[serde(default)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodLogDirFacts {
    /// Directory name, `<namespace>_<pod>_<uid>`.
    pub name: String,
    #[serde(default)]
    pub containers: Vec<ContainerLogDirFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerLogDirFacts {
    pub name: String,
    /// Modification time of the container's log directory (unix seconds): the kubelet adds a log file
    /// there at each (re)start, so it dates the current container.
    #[serde(default)]
    pub modified_unix: Option<f64>,
}

/// One `nvmlEventTypeXidCriticalError` event as NVML delivered it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlXidEventFacts {
    /// Index of the GPU whose handle the event came from.
    pub gpu_index: u32,
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// PCI bus id as NVML prints it.
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    /// The event data: the Xid code.
    pub code: u64,
    /// MIG attribution (0xFFFFFFFF from NVML, meaning none, is stored as absent).
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
    /// Wall clock when the probe received it (unix seconds).
    #[serde(default)]
    pub received_unix: Option<f64>,
}

/// What a command needs collected. The NVML collector skips the rest (they stay `not_collected`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sections {
    pub identity: bool,
    pub telemetry: bool,
    pub topology: bool,
    pub ecc: bool,
    pub processes: bool,
    pub kernel_log: bool,
    /// RDMA devices, their counters (two samples) and the GPUs' PCI paths.
    pub nics: bool,
    /// The kubelet's answers: its PodResources device assignment and its pod log directories
    /// (`pod_resources`, `kubelet_logs`).
    pub kubelet: bool,
}

impl Sections {
    /// Every section.
    pub const ALL: Sections = Sections {
        kubelet: true,
        ..Sections::GPUS_AND_HOST
    };

    /// Every fact of the GPUs and the host: all sections but the kubelet's.
    pub const GPUS_AND_HOST: Sections = Sections {
        identity: true,
        telemetry: true,
        topology: true,
        ecc: true,
        processes: true,
        kernel_log: true,
        nics: true,
        kubelet: false,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe's clock reading, written and read back, is the same number: replays of captured
    /// facts compare exactly. These values came back 1 ulp off with serde_json's default parser.
    #[test]
    fn host_clock_readings_survive_a_json_round_trip() {
        for t in [1795398777.0001767_f64, 1795398777.0001903, 0.1 + 0.2] {
            let host = HostFacts {
                now_unix: Reading::Ok(t),
                boot_time_unix: Reading::Ok(t / 3.0),
                ..HostFacts::default()
            };
            let back: HostFacts =
                serde_json::from_str(&serde_json::to_string(&host).unwrap()).unwrap();
            assert_eq!(back, host, "{t}");
        }
    }
}
