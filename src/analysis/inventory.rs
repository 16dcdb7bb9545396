//! `inventory`: what is in the node. Identities, PCI ids, firmware, memory, modes, link capabilities and
//! driver versions, with no judgement beyond stating facts in canonical units. Each vendor in its own
//! words: NVIDIA's driver, CUDA, MIG, persistence and NVLink only where an NVIDIA GPU (or no amdgpu) is
//! there; amdgpu's driver, ROCm, partition modes and XGMI hive on AMD GPUs; the habanalabs driver's device
//! type, status, module id and firmware versions on Intel Gaudi devices (no VBIOS, memory size or PCIe
//! capability in its sysfs: those say so).

use serde::{Deserialize, Serialize};

use crate::facts::{FieldError, FieldErrorKind, GpuVendor, MigModeFacts, NodeFacts, Reading};
use crate::finding::{Finding, Judged};
use crate::options::AnalysisOptions;

use super::canonical_bus_id;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InventoryReport {
    pub node: NodeInfo,
    /// The NVIDIA driver and NVML; absent on a node with amdgpu and no NVIDIA GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverInfo>,
    /// The amdgpu driver, the ROCm release and `libamd_smi`; absent on a node without amdgpu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd_driver: Option<AmdDriverInfo>,
    /// What NVML (or amdgpu, on an AMD node) enumerated. More than `gpus` answered means some handles
    /// failed.
    pub device_count: Reading<u32>,
    pub gpus: Vec<GpuInventory>,
}

/// Inventory judges nothing: no verdict, no findings.
impl Judged for InventoryReport {
    fn findings(&self) -> Vec<&Finding> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeInfo {
    pub hostname: Reading<String>,
    pub boot_id: Reading<String>,
    pub kernel_release: Reading<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DriverInfo {
    pub driver_version: Reading<String>,
    /// `12.4` form (NVML encodes 12040).
    pub cuda_driver_version: Reading<String>,
    pub nvml_version: Reading<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AmdDriverInfo {
    /// `6.12.12 (out-of-tree)` from `/sys/module/amdgpu/version` (ROCm's DKMS driver), else
    /// `in-tree (kernel <release>)`: the in-tree driver has no version of its own.
    pub amdgpu_version: Reading<String>,
    /// The host's ROCm release (`/opt/rocm/.info/version`); `not_found` where none is installed.
    pub rocm_version: Reading<String>,
    /// The `libamd_smi` the probe loaded from the host (`25.1.0 at /opt/rocm/lib/...`), or why it could
    /// not be read; absent where the node has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd_smi: Option<Reading<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuInventory {
    pub index: u32,
    /// Set when NVML could not even open the GPU: nothing else is known about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle_error: Option<FieldError>,
    pub name: Reading<String>,
    pub uuid: Reading<String>,
    pub serial: Reading<String>,
    pub board_part_number: Reading<String>,
    /// Canonical `dddd:bb:dd.f`, lowercase.
    pub pci_bus_id: Reading<String>,
    /// `10de:2330` (vendor:device).
    pub pci_device_id: Reading<String>,
    pub vbios_version: Reading<String>,
    pub architecture: Reading<String>,
    /// `9.0`. NVIDIA GPUs only, as are the MIG, persistence, compute-mode and NVLink fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_compute_capability: Option<Reading<String>>,
    pub memory_total_mib: Reading<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<Reading<MigModeFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig_devices: Option<Vec<MigDeviceInventory>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence_mode: Option<Reading<bool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_mode: Option<Reading<String>>,
    pub pcie: PcieCapability,
    /// Links NVML enumerated for this GPU, and how many are active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_active: Option<u32>,
    /// AMD GPUs only: partition modes, XGMI hive and IP versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amd: Option<AmdGpuInventory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaudi: Option<GaudiGpuInventory>,
}

/// An Intel Gaudi device as the habanalabs driver names it (Linux 6.12 `common/sysfs.c`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GaudiGpuInventory {
    /// The accel class device (`accel0`) or, before Linux 6.2, `hl0`.
    pub device: String,
    /// `device_type`: `GAUDI2`, `GAUDI2B`, ...
    pub device_type: Reading<String>,
    /// `status` in the driver's words: `Operational`, `In reset`, `Disabled` (a malfunction), `Needs reset`.
    pub status: Reading<String>,
    /// `module_id`: the card's location (OAM slot).
    pub module_id: Reading<u32>,
    pub hard_reset_count: Reading<u64>,
    pub security_enabled: Reading<bool>,
    /// `cpucp_ver`: the device CPU's firmware.
    pub cpucp_version: Reading<String>,
    pub fw_os_version: Reading<String>,
    pub preboot_btl_version: Reading<String>,
    pub cpld_version: Reading<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AmdGpuInventory {
    /// `current_compute_partition` (`SPX`, `CPX`, ...); `not_supported` before MI300.
    pub compute_partition: Reading<String>,
    /// `current_memory_partition` (`NPS1`, `NPS4`, ...); `not_supported` before MI300.
    pub memory_partition: Reading<String>,
    /// The XGMI hive (`xgmi_hive_info/xgmi_hive_id`, KFD's `hive_id`); `not_supported` on a board with
    /// no XGMI.
    pub xgmi_hive_id: Reading<u64>,
    /// The MP0 (PSP) IP version from the IP discovery table (`13.0.6`).
    pub mp0_version: Reading<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PcieCapability {
    /// Max generation of this GPU in this system.
    pub max_link_gen: Reading<u32>,
    /// The GPU's own maximum; higher than `max_link_gen` means the slot or platform limits it.
    pub gpu_max_link_gen: Reading<u32>,
    pub max_link_width: Reading<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigDeviceInventory {
    pub index: u32,
    pub uuid: Reading<String>,
    pub gpu_instance_id: Reading<u32>,
    pub compute_instance_id: Reading<u32>,
    /// Profile, e.g. `3g.40gb`, taken from the MIG device name.
    pub profile: Reading<String>,
    pub memory_total_mib: Reading<u64>,
}

/// `12040` -> `12.4`, `11080` -> `11.8`.
pub fn cuda_version(encoded: i32) -> String {
    format!("{}.{}", encoded / 1000, (encoded % 1000) / 10)
}

/// NVML's `0x233010DE` (device << 16 | vendor) as `10de:2330`.
pub fn pci_device_id(raw: u32) -> String {
    format!("{:04x}:{:04x}", raw & 0xffff, raw >> 16)
}

/// The profile part of a MIG device name (`NVIDIA A100 80GB PCIe MIG 3g.40gb` -> `3g.40gb`).
fn mig_profile(name: &str) -> Option<String> {
    let (_, tail) = name.rsplit_once(" MIG ")?;
    let tail = tail.trim();
    (!tail.is_empty()).then(|| tail.to_string())
}

/// The amdgpu driver, ROCm and `libamd_smi` of a node with amdgpu.
fn amd_driver(facts: &NodeFacts) -> Option<AmdDriverInfo> {
    let d = facts.amd_driver.as_ref()?;
    let amdgpu_version = match (&d.version, &facts.host.kernel_release) {
        (Reading::Ok(v), _) => Reading::Ok(format!("{v} (out-of-tree)")),
        (Reading::Err(e), Reading::Ok(k)) if e.error == FieldErrorKind::NotFound => {
            Reading::Ok(format!("in-tree (kernel {k})"))
        }
        (Reading::Err(e), _) => Reading::Err(e.clone()),
    };
    Some(AmdDriverInfo {
        amdgpu_version,
        rocm_version: d.rocm_version.clone(),
        amd_smi: d
            .amd_smi
            .as_ref()
            .map(|r| r.map(|l| format!("{} at {}", l.version, l.path))),
    })
}

fn amd_gpu(g: &crate::facts::GpuFacts) -> Option<AmdGpuInventory> {
    let a = g.amd.as_ref()?;
    let part = |f: fn(&crate::facts::AmdPartitionFacts) -> &Reading<String>| match &a.partition {
        Reading::Ok(p) => f(p).clone(),
        Reading::Err(e) => Reading::Err(e.clone()),
    };
    // The hive as the XGMI files name it, else as KFD's node does (`hive_id`, read with the inventory;
    // 0 means none): the inventory does not collect the XGMI section.
    let from_xgmi = a.xgmi.ok().and_then(|x| x.hive_id);
    let from_kfd = a
        .kfd_nodes
        .ok()
        .and_then(|k| k.iter().find_map(|k| k.hive_id));
    let xgmi_hive_id = match (from_xgmi.or(from_kfd).filter(|h| *h != 0), &a.xgmi) {
        (Some(h), _) => Reading::Ok(h),
        (None, Reading::Err(e)) if e.error != FieldErrorKind::NotCollected => {
            Reading::Err(e.clone())
        }
        (None, _) => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "in no XGMI hive",
        )),
    };
    Some(AmdGpuInventory {
        compute_partition: part(|p| &p.compute),
        memory_partition: part(|p| &p.memory),
        xgmi_hive_id,
        mp0_version: a.mp0_version.clone(),
    })
}

fn gaudi_gpu(g: &crate::facts::GpuFacts) -> Option<GaudiGpuInventory> {
    let h = g.gaudi.as_ref()?;
    Some(GaudiGpuInventory {
        device: h.device.clone(),
        device_type: h.device_type.clone(),
        status: h.status.clone(),
        module_id: h.module_id.clone(),
        hard_reset_count: h.hard_reset_count.clone(),
        security_enabled: h.security_enabled.clone(),
        cpucp_version: h.firmware.cpucp.clone(),
        fw_os_version: h.firmware.fw_os.clone(),
        preboot_btl_version: h.firmware.preboot_btl.clone(),
        cpld_version: h.firmware.cpld.clone(),
    })
}

/// What the habanalabs driver does not show, said where a Gaudi's field would otherwise read
/// `not_collected` as if the probe had skipped it.
fn not_in_habanalabs<T>(r: &Reading<T>, what: &str, instead: &str) -> Reading<T>
where
    T: Clone,
{
    match r {
        Reading::Err(e) if e.error == FieldErrorKind::NotCollected => {
            Reading::Err(FieldError::with_message(
                FieldErrorKind::NotSupported,
                format!("Gaudi: the habanalabs driver shows no {what}{instead}"),
            ))
        }
        other => other.clone(),
    }
}

/// A field the probe does not read on Gaudi devices yet, said so.
fn not_read_for_gaudi<T: Clone>(r: &Reading<T>, what: &str) -> Reading<T> {
    match r {
        Reading::Err(e) if e.error == FieldErrorKind::NotCollected => {
            Reading::Err(FieldError::with_message(
                FieldErrorKind::NotCollected,
                format!("Gaudi: this probe does not read {what} yet"),
            ))
        }
        other => other.clone(),
    }
}

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> InventoryReport {
    let nvidia_gpu = facts.gpus.iter().any(|g| g.vendor == GpuVendor::Nvidia);
    let other_vendor_seen = facts.gpus.iter().any(|g| g.vendor != GpuVendor::Nvidia);
    // NVML's answers mean something where an NVIDIA GPU is, or where no other vendor's device or driver is
    // (an NVIDIA node whose GPUs all failed still says why).
    let nvidia = nvidia_gpu || (facts.amd_driver.is_none() && !other_vendor_seen);
    InventoryReport {
        node: NodeInfo {
            hostname: facts.host.hostname.clone(),
            boot_id: facts.host.boot_id.clone(),
            kernel_release: facts.host.kernel_release.clone(),
        },
        driver: nvidia.then(|| DriverInfo {
            driver_version: facts.driver.driver_version.clone(),
            cuda_driver_version: facts.driver.cuda_driver_version.map(|v| cuda_version(*v)),
            nvml_version: facts.driver.nvml_version.clone(),
        }),
        amd_driver: amd_driver(facts),
        device_count: facts.device_count.clone(),
        gpus: facts
            .gpus
            .iter()
            .map(|g| {
                let nv = g.vendor == GpuVendor::Nvidia;
                let hl = g.vendor == GpuVendor::Intel;
                let hl_none = |r: &Reading<String>, what: &str, instead: &str| {
                    if hl {
                        not_in_habanalabs(r, what, instead)
                    } else {
                        r.clone()
                    }
                };
                GpuInventory {
                    index: g.index,
                    handle_error: g.handle_error.clone(),
                    name: g.name.clone(),
                    uuid: g.uuid.clone(),
                    serial: g.serial.clone(),
                    board_part_number: g.board_part_number.clone(),
                    pci_bus_id: canonical_bus_id(&g.pci_bus_id),
                    pci_device_id: g.pci_device_id.map(|d| pci_device_id(*d)),
                    vbios_version: hl_none(
                        &g.vbios_version,
                        "VBIOS",
                        " (its firmware versions are under `gaudi`)",
                    ),
                    architecture: hl_none(
                        &g.architecture,
                        "architecture",
                        " (its ASIC is `gaudi.device_type`)",
                    ),
                    cuda_compute_capability: nv.then(|| {
                        g.cuda_compute_capability
                            .map(|(maj, min)| format!("{maj}.{min}"))
                    }),
                    memory_total_mib: {
                        let m = g.memory.map(|m| super::mib(m.total_bytes));
                        if hl {
                            not_in_habanalabs(&m, "memory size in sysfs", " (HLML and `hl-smi -q` read it)")
                        } else {
                            m
                        }
                    },
                    mig_mode: nv.then(|| g.mig_mode.clone()),
                    mig_devices: nv.then(|| {
                        g.mig_devices
                            .iter()
                            .map(|m| MigDeviceInventory {
                                index: m.index,
                                uuid: m.uuid.clone(),
                                gpu_instance_id: m.gpu_instance_id.clone(),
                                compute_instance_id: m.compute_instance_id.clone(),
                                profile: match &m.name {
                                    Reading::Ok(n) => mig_profile(n)
                                        .map_or_else(|| Reading::Ok(n.clone()), Reading::Ok),
                                    Reading::Err(e) => Reading::Err(e.clone()),
                                },
                                memory_total_mib: m.memory.map(|mem| super::mib(mem.total_bytes)),
                            })
                            .collect()
                    }),
                    persistence_mode: nv.then(|| g.persistence_mode.clone()),
                    compute_mode: nv.then(|| g.compute_mode.clone()),
                    pcie: {
                        // The PCI core's link files, which the Gaudi reader does not read yet.
                        let link = |r: &Reading<u32>| {
                            if hl {
                                not_read_for_gaudi(r, "the PCIe link (the PCI core's max_link_speed and max_link_width)")
                            } else {
                                r.clone()
                            }
                        };
                        PcieCapability {
                            max_link_gen: link(&g.pcie.max_link_gen),
                            gpu_max_link_gen: link(&g.pcie.gpu_max_link_gen),
                            max_link_width: link(&g.pcie.max_link_width),
                        }
                    },
                    nvlink_count: nv.then_some(g.nvlinks.len() as u32),
                    nvlink_active: nv.then(|| {
                        g.nvlinks
                            .iter()
                            .filter(|l| l.active.get() == Some(true))
                            .count() as u32
                    }),
                    amd: if nv { None } else { amd_gpu(g) },
                    gaudi: gaudi_gpu(g),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::GpuFacts;

    #[test]
    fn encodings() {
        assert_eq!(cuda_version(12040), "12.4");
        assert_eq!(cuda_version(12080), "12.8");
        assert_eq!(cuda_version(11080), "11.8");
        assert_eq!(pci_device_id(0x233010DE), "10de:2330");
        assert_eq!(
            mig_profile("NVIDIA A100 80GB PCIe MIG 3g.40gb").as_deref(),
            Some("3g.40gb")
        );
        assert_eq!(mig_profile("NVIDIA A100 80GB PCIe"), None);
    }

    #[test]
    fn failed_handle_and_lost_fields_stay_inline() {
        let facts = NodeFacts {
            device_count: Reading::Ok(2),
            gpus: vec![
                GpuFacts {
                    index: 0,
                    handle_error: Some(FieldError::new(FieldErrorKind::Unknown)),
                    ..Default::default()
                },
                GpuFacts {
                    index: 1,
                    name: Reading::Ok("NVIDIA H100 80GB HBM3".into()),
                    pci_bus_id: Reading::Ok("00000000:9A:00.0".into()),
                    memory: Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = analyze(&facts, &AnalysisOptions::default());
        assert!(r.gpus[0].handle_error.is_some());
        assert_eq!(r.gpus[1].pci_bus_id, Reading::Ok("0000:9a:00.0".into()));
        assert_eq!(
            r.gpus[1].memory_total_mib.err().unwrap().error,
            FieldErrorKind::GpuIsLost
        );
        // Uncollected facts say so rather than pretending to be zero.
        assert_eq!(
            r.driver
                .as_ref()
                .unwrap()
                .driver_version
                .err()
                .unwrap()
                .error,
            FieldErrorKind::NotCollected
        );
    }
}
