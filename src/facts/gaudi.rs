//! What only Intel Gaudi accelerators have: the habanalabs driver's view of a device (its accel minor,
//! ASIC type, device status, reset counts, module id, security, firmware versions). What every vendor
//! shares (identity, PCI, clocks, power, temperature) stays in [`GpuFacts`](super::GpuFacts)'s common
//! fields, each valid or absent on its own.
//!
//! Formats: Linux 6.12 `drivers/accel/habanalabs/common/sysfs.c` (the printers, file:line in
//! `tests/support/gaudi_tree.rs`) and `Documentation/ABI/testing/sysfs-driver-habanalabs`.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// One Gaudi device as the habanalabs driver shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaudiGpuFacts {
    /// The class device the driver's attributes were found through: `accel0` (Linux 6.2+,
    /// `/sys/class/accel`) or `hl0` (older kernels, `/sys/class/habanalabs`).
    #[serde(default)]
    pub device: String,
    /// `device_type`: the ASIC (`GAUDI2`, `GAUDI2B`, …).
    #[serde(default)]
    pub device_type: Reading<String>,
    /// `status` as the driver prints it (`Operational`, `In reset`, `Disabled` (a malfunction: "Device is
    /// not usable"), `Needs reset`, `In device creation`, `In reset after device release`).
    #[serde(default)]
    pub status: Reading<String>,
    /// `hard_reset_cnt`: hard resets since the driver loaded.
    #[serde(default)]
    pub hard_reset_count: Reading<u64>,
    /// `soft_reset_cnt`: compute resets; the driver offers it only on inference devices, so a Gaudi
    /// reads `not_found`.
    #[serde(default)]
    pub soft_reset_count: Reading<u64>,
    /// `module_id`: the firmware's card location (the OAM slot on an HLS board).
    #[serde(default)]
    pub module_id: Reading<u32>,
    /// `security_enabled`: firmware-level security.
    #[serde(default)]
    pub security_enabled: Reading<bool>,
    /// `max_power`, milliwatts (also the shared power limit).
    #[serde(default)]
    pub max_power_mw: Reading<u64>,
    #[serde(default)]
    pub firmware: GaudiFirmwareFacts,
}

/// The device's firmware versions as the driver prints them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaudiFirmwareFacts {
    /// `cpucp_ver` (older kernels: `armcp_ver`): the CPU-CP firmware.
    #[serde(default)]
    pub cpucp: Reading<String>,
    /// `cpucp_kernel_ver` (`armcp_kernel_ver`): the Linux kernel of the device's CPU.
    #[serde(default)]
    pub cpucp_kernel: Reading<String>,
    #[serde(default)]
    pub uboot: Reading<String>,
    #[serde(default)]
    pub preboot_btl: Reading<String>,
    #[serde(default)]
    pub fuse: Reading<String>,
    #[serde(default)]
    pub thermal: Reading<String>,
    #[serde(default)]
    pub fw_os: Reading<String>,
    /// `cpld_ver`: `0x` + timestamp and version, 8 hex digits each.
    #[serde(default)]
    pub cpld: Reading<String>,
    /// `vrm_ver`: the Infineon voltage regulator's version(s).
    #[serde(default)]
    pub vrm: Reading<String>,
}

/// Intel's management library, `libhlml.so`, where the node has it (`/usr/lib/habanalabs/libhlml.so`,
/// pyhlml's default, `pyhlml/hlml_lib.py:9`): read in a child process by node-probe. Its devices are joined
/// to sysfs's by PCI address; their serials fill [`GpuFacts::serial`](super::GpuFacts) (the device ids of
/// Habana's device plugin, `habana.ai/gaudi`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HlmlFacts {
    /// The file loaded, named from the host's `/` (`/usr/lib/habanalabs/libhlml.so`).
    pub path: String,
    /// `hlml_get_hlml_version`: the library's own version.
    #[serde(default)]
    pub version: Reading<String>,
    /// `hlml_get_driver_version`: the habanalabs driver's, as the library reads it.
    #[serde(default)]
    pub driver_version: Reading<String>,
    /// The devices the library enumerates (`hlml_device_get_count`), in its order.
    #[serde(default)]
    pub devices: Reading<Vec<HlmlDeviceFacts>>,
}

/// One device as libhlml sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HlmlDeviceFacts {
    /// Its index in the library's enumeration (`hlml_device_get_handle_by_index`).
    pub index: u32,
    /// `hlml_device_get_pci_info`'s `bus_id`, as sysfs names the function (`0000:19:00.0`): what joins it to
    /// the sysfs device of the same `pci_bus_id`.
    pub bus_id: String,
    /// `hlml_device_get_serial`: the board's serial number.
    #[serde(default)]
    pub serial: Reading<String>,
    /// `hlml_device_get_module_id`: the firmware's module id (sysfs's `module_id`).
    #[serde(default)]
    pub module_id: Reading<u32>,
    /// `hlml_device_get_total_ecc_errors`, per error type and counter.
    #[serde(default)]
    pub ecc: HlmlEccFacts,
    /// `hlml_device_get_replaced_rows_pending_status`: rows waiting for a reset to be replaced.
    #[serde(default)]
    pub replaced_rows_pending: Reading<bool>,
    /// The device's NIC ports (`hlml_get_mac_addr_info`'s port mask) and each one's link
    /// (`hlml_nic_get_link`), in port order.
    #[serde(default)]
    pub nic_ports: Reading<Vec<HlmlNicPortFacts>>,
    /// `hlml_device_get_current_clocks_throttle_reasons`: why the clocks are held down now, a mask of
    /// [`HLML_THROTTLE_POWER`] and [`HLML_THROTTLE_THERMAL`]. The habanalabs sysfs has no such field.
    #[serde(default)]
    pub clocks_throttle_reasons: Reading<u64>,
}

/// `HLML_CLOCKS_THROTTLE_REASON_POWER` and `_THERMAL` (pyhlml `pyhlml_types_generated.py:264-265`, checked
/// against every pyhlml release by node-probe's `abi_matches_pypi_pyhlml`).
pub const HLML_THROTTLE_POWER: u64 = 1 << 0;
pub const HLML_THROTTLE_THERMAL: u64 = 1 << 1;

/// One NIC port of a Gaudi device as libhlml sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HlmlNicPortFacts {
    pub port: u32,
    /// In the external-port mask (a scale-out port, cabled off the board), not an internal one.
    pub external: bool,
    /// `hlml_nic_get_link`: the link is up.
    #[serde(default)]
    pub up: Reading<bool>,
}

/// `hlml_device_get_total_ecc_errors(error type, counter type)`: corrected (single-bit) and uncorrected
/// (double-bit), volatile (since the driver loaded) and aggregate (the device's lifetime).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HlmlEccFacts {
    #[serde(default)]
    pub corrected_volatile: Reading<u64>,
    #[serde(default)]
    pub uncorrected_volatile: Reading<u64>,
    #[serde(default)]
    pub corrected_aggregate: Reading<u64>,
    #[serde(default)]
    pub uncorrected_aggregate: Reading<u64>,
}
