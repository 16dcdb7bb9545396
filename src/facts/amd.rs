//! What only AMD Instinct GPUs have: the amdgpu driver's sysfs and KFD view of a GPU (its card and render
//! nodes, KFD node, compute and memory partitions), its RAS counters per block, its retired bad pages and
//! their threshold, its XGMI hive and links, and the `gpu_metrics` accumulators (throttle residencies, PCIe
//! recoveries) that NVML has no equivalent for. What both vendors share (identity, PCI, memory,
//! temperatures, power, utilization, clocks, processes) stays in [`GpuFacts`](super::GpuFacts)'s common fields.
//!
//! Formats: the amdgpu driver's sysfs (`drivers/gpu/drm/amd/amdgpu/amdgpu_ras.c`, `amdgpu_xgmi.c`,
//! `amdgpu_gfx.c`, `amdgpu_gmc.c`), KFD (`amdkfd/kfd_topology.c`) and `include/kgd_pp_interface.h`
//! (`gpu_metrics`), as summarised with sources in the project's AMD reference.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// The node's amdgpu driver, its module parameters and the AMD SMI library where the node has one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdDriverFacts {
    /// `/sys/module/amdgpu/version` (the out-of-tree DKMS driver has one; the in-tree driver reads
    /// `not_found`, and the kernel release names it).
    #[serde(default)]
    pub version: Reading<String>,
    /// `/sys/module/amdgpu/parameters/ras_enable` (-1 default, 0 off, 1 on).
    #[serde(default)]
    pub ras_enable: Reading<i64>,
    /// `/sys/module/amdgpu/parameters/ras_mask` (bit = RAS block index).
    #[serde(default)]
    pub ras_mask: Reading<u64>,
    /// `/sys/module/amdgpu/parameters/bad_page_threshold`: -1 the default threshold (warn only), 0
    /// retirement off, -2 one page per 100 MB of VRAM, > 0 a user threshold (the GPU is retired, RMA, when
    /// reached).
    #[serde(default)]
    pub bad_page_threshold_param: Reading<i64>,
    /// PCI functions of vendor 0x1002 with a GPU class (display 0x03xx, processing accelerator 0x12xx),
    /// as `{host-root}/sys/bus/pci/devices` lists them, whether or not amdgpu bound them: one bound to no
    /// driver, or missing from `gpus`, failed init or fell off the bus.
    #[serde(default)]
    pub pci_functions: Reading<Vec<AmdPciFunctionFacts>>,
    /// `libamd_smi` where the node has it: its path under the host root and the version it reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd_smi: Option<Reading<AmdSmiLibraryFacts>>,
    /// The ROCm release installed on the host: `{host-root}/opt/rocm/.info/version` (`6.4.1-120`);
    /// `not_found` where the host has no ROCm install (the driver works without one).
    #[serde(default)]
    pub rocm_version: Reading<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdPciFunctionFacts {
    /// `0000:1c:00.0`.
    pub bdf: String,
    /// Device id without `0x` (`74a1`).
    pub device_id: String,
    /// The bound driver's name (`amdgpu`, `vfio-pci`), `None` when unbound.
    #[serde(default)]
    pub driver: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdSmiLibraryFacts {
    /// The file loaded, named from the host's `/` (`/opt/rocm-6.4.0/lib/libamd_smi.so.25`).
    pub path: String,
    /// `amdsmi_get_lib_version` as AMD prints it: ROCm 6.x `year.major.minor.release` (`24.7.1.0`), 7.x
    /// `major.minor.release` (`26.1.0`).
    pub version: String,
    /// The GPUs the library enumerates (`amdsmi_get_processor_handles`), by PCI address: what joins its
    /// readings to the sysfs GPU of the same `pci_bus_id`.
    #[serde(default)]
    pub gpus: Reading<Vec<AmdSmiGpuFacts>>,
}

/// One GPU as `libamd_smi` sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdSmiGpuFacts {
    /// `amdsmi_get_gpu_device_bdf`, as sysfs names it (`0000:05:00.0`).
    pub bdf: String,
    /// `amdsmi_get_gpu_bad_page_info`: the retired-page records counted by status.
    #[serde(default)]
    pub bad_pages: Reading<AmdSmiBadPagesFacts>,
}

/// `amdsmi_retired_page_record_t.status` counted: `AMDSMI_MEM_PAGE_STATUS_RESERVED` (0), `_PENDING` (1),
/// `_UNRESERVABLE` (2), the same three states as sysfs's `R`/`P`/`F`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AmdSmiBadPagesFacts {
    pub reserved: u32,
    pub pending: u32,
    pub unreservable: u32,
}

/// One AMD GPU's vendor-only facts (beside [`GpuFacts`](super::GpuFacts)'s shared ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdGpuFacts {
    /// DRM card node name (`card1`) under `/sys/class/drm`.
    #[serde(default)]
    pub card: Reading<String>,
    /// `renderD<minor>`'s minor (`/dev/dri/renderD128`).
    #[serde(default)]
    pub render_minor: Reading<u32>,
    /// `unique_id` (hex as sysfs prints it, `%016llx`): the same value KFD prints in decimal.
    #[serde(default)]
    pub unique_id: Reading<String>,
    /// `board_info` `type : oam|cem|unknown`.
    #[serde(default)]
    pub board_type: Reading<String>,
    /// The MP0 (PSP) IP version from the IP discovery table, `major.minor.revision`
    /// (`ip_discovery/die/0/MP0/0/{major,minor,revision}`): the driver keys its default bad-page
    /// threshold on it (`amdgpu_ras_init_reserved_vram_size`).
    #[serde(default)]
    pub mp0_version: Reading<String>,
    /// The UMC (memory controller) IP version, same layout: it picks the RAS EEPROM table format and so
    /// the table's record count (`amdgpu_ras_set_eeprom_table_version`).
    #[serde(default)]
    pub umc_version: Reading<String>,
    /// KFD topology node(s) of this GPU: one per compute partition.
    #[serde(default)]
    pub kfd_nodes: Reading<Vec<KfdNodeFacts>>,
    /// Compute and memory partitions; `not_supported` before MI300.
    #[serde(default)]
    pub partition: Reading<AmdPartitionFacts>,
    /// RAS counters per block (both layouts).
    #[serde(default)]
    pub ras: Reading<AmdRasFacts>,
    /// `gpu_vram_bad_pages` and the threshold that applies.
    #[serde(default)]
    pub bad_pages: Reading<AmdBadPagesFacts>,
    /// XGMI hive and links; `not_supported` on a PCIe-only board.
    #[serde(default)]
    pub xgmi: Reading<AmdXgmiFacts>,
    /// What `gpu_metrics` adds to the shared telemetry.
    #[serde(default)]
    pub metrics: Reading<AmdGpuMetricsFacts>,
    /// Edge temperature (hwmon `temp1_input`, °C); MI300-class GPUs have none (`not_found`). The shared
    /// `thermal.gpu_temp_c` is the junction (hotspot) temperature.
    #[serde(default)]
    pub edge_temp_c: Reading<u32>,
}

/// One KFD topology node (`/sys/class/kfd/kfd/topology/nodes/<N>/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KfdNodeFacts {
    /// The topology node number `<N>`.
    pub node: u32,
    /// `gpu_id` (a CRC that changes with the partition mode): what the test runner keys results by.
    pub gpu_id: u32,
    /// `gfx_target_version` (`90402` = gfx942).
    #[serde(default)]
    pub gfx_target_version: Option<u32>,
    #[serde(default)]
    pub simd_count: Option<u32>,
    #[serde(default)]
    pub drm_render_minor: Option<u32>,
    /// `location_id` (`(bus << 8) | devfn`, with the partition index ORed in).
    #[serde(default)]
    pub location_id: Option<u32>,
    /// `hive_id` (0 = none).
    #[serde(default)]
    pub hive_id: Option<u64>,
    #[serde(default)]
    pub num_xcc: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdPartitionFacts {
    /// `current_compute_partition`: `SPX`, `DPX`, `TPX`, `QPX` or `CPX`.
    #[serde(default)]
    pub compute: Reading<String>,
    /// `current_memory_partition`: `NPS1` … `NPS8`.
    #[serde(default)]
    pub memory: Reading<String>,
    /// The partitions' own DRM nodes (`/sys/devices/platform/amdgpu_xcp_<n>`), in order; empty in SPX.
    #[serde(default)]
    pub xcps: Vec<AmdXcpFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdXcpFacts {
    /// `amdgpu_xcp_<n>`: the device plugin's device id for a partition.
    pub name: String,
    #[serde(default)]
    pub render_minor: Option<u32>,
    /// Its `card<N>`'s minor, where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_minor: Option<u32>,
    /// KFD `gpu_id` of the partition's node.
    #[serde(default)]
    pub gpu_id: Option<u32>,
}

/// `ras/` of one GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdRasFacts {
    /// `features` (`feature mask: 0x%x`): the blocks RAS covers.
    #[serde(default)]
    pub features_mask: Option<u32>,
    /// Per block, in the order found.
    #[serde(default)]
    pub blocks: Vec<AmdRasBlockFacts>,
    /// `event_state`: fatal and poison event counts, where the driver has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_state: Option<AmdRasEventStateFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdRasBlockFacts {
    /// `umc`, `gfx`, `sdma`, `mmhub`, `xgmi_wafl`, `pcie_bif`, `hdp`, ...
    pub block: String,
    /// `aca` (`ras/aca_<block>`, MI300-class) or `legacy` (`ras/<block>_err_count`).
    pub layout: String,
    /// Uncorrectable, correctable and deferred (poison) counts; `None` where the file has no such line.
    #[serde(default)]
    pub ue: Option<u64>,
    #[serde(default)]
    pub ce: Option<u64>,
    #[serde(default)]
    pub de: Option<u64>,
    /// Set when the file said `Query currently inaccessible` or could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AmdRasEventStateFacts {
    pub seqno: u64,
    pub fatal: u64,
    pub poison_creation: u64,
    pub poison_consumption: u64,
}

/// `gpu_vram_bad_pages` and the threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdBadPagesFacts {
    /// Pages retired (`R`).
    pub reserved: u32,
    /// Pages pending retirement (`P`).
    pub pending: u32,
    /// Pages the driver could not reserve (`F`).
    pub unreservable: u32,
    /// The first pages as listed (GPU page frame number, 4 KiB pages), bounded.
    #[serde(default)]
    pub first_pages: Vec<AmdBadPageFacts>,
    /// The threshold in pages as the driver applies it (debugfs `ras/bad_page_cnt_threshold`); `None`
    /// where debugfs could not be read (the analysis then works it out from the kernel's rule).
    #[serde(default)]
    pub threshold: Option<u32>,
    /// Where `threshold` came from: `debugfs` (older probes also wrote `parameter` and
    /// `default_for_generation`, estimates the analysis no longer trusts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_source: Option<String>,
    /// The RAS EEPROM table's capacity in records, from debugfs `ras/ras_eeprom_size`
    /// (`%d bytes or %d records`): the cap on any threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eeprom_max_records: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdBadPageFacts {
    pub pfn: u64,
    pub size: u64,
    /// `R`, `P` or `F`.
    pub flag: String,
}

/// The GPU's XGMI hive and links.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdXgmiFacts {
    /// `xgmi_hive_info/xgmi_hive_id` (0 or absent: no hive).
    #[serde(default)]
    pub hive_id: Option<u64>,
    #[serde(default)]
    pub device_id: Option<u64>,
    #[serde(default)]
    pub physical_id: Option<u32>,
    /// Link states from `gpu_metrics.xgmi_link_status[]` (1 = active), with the traffic counters.
    #[serde(default)]
    pub links: Vec<AmdXgmiLinkFacts>,
    /// `gpu_metrics` link width and speed (Gbps).
    #[serde(default)]
    pub link_width: Option<u32>,
    #[serde(default)]
    pub link_speed_gbps: Option<u32>,
    /// `xgmi_error` (cleared on read, so read once per probe run).
    #[serde(default)]
    pub error_count: Reading<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdXgmiLinkFacts {
    pub link: u32,
    #[serde(default)]
    pub active: Reading<bool>,
    #[serde(default)]
    pub read_kb: Option<u64>,
    #[serde(default)]
    pub write_kb: Option<u64>,
}

/// What `gpu_metrics` adds (each field `None` where the layout lacks it or the SMU left it all-ones).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmdGpuMetricsFacts {
    /// Header `format_revision.content_revision` (`1.7`).
    pub version: String,
    /// The throttle residency accumulators, read once or twice (the probe's interval apart): a residency
    /// that grew between two reads is a throttle active now.
    #[serde(default)]
    pub throttle_samples: Vec<AmdThrottleSampleFacts>,
    #[serde(default)]
    pub pcie_l0_to_recov_count_acc: Option<u64>,
    #[serde(default)]
    pub pcie_replay_count_acc: Option<u64>,
    #[serde(default)]
    pub pcie_nak_sent_count_acc: Option<u64>,
    #[serde(default)]
    pub pcie_nak_rcvd_count_acc: Option<u64>,
}

/// One read of the residency accumulators (raw; compare deltas against `accumulation_counter`'s).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AmdThrottleSampleFacts {
    #[serde(default)]
    pub accumulation_counter: Option<u64>,
    /// `prochot_residency_acc`: the processor-hot line (`Prochot`).
    #[serde(default)]
    pub prochot: Option<u64>,
    /// `ppt_residency_acc`: package power tracking, the power cap (`PPT`).
    #[serde(default)]
    pub ppt: Option<u64>,
    /// `socket_thm_residency_acc`: the socket's thermal limit (`SOC`).
    #[serde(default)]
    pub socket_thermal: Option<u64>,
    /// `vr_thm_residency_acc`: the voltage regulators' thermal limit (`VR`).
    #[serde(default)]
    pub vr_thermal: Option<u64>,
    /// `hbm_thm_residency_acc`: the HBM's thermal limit (`HBM`).
    #[serde(default)]
    pub hbm_thermal: Option<u64>,
}
