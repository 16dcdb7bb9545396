//! `inventory`: what is in the node. Identities, PCI ids, firmware, memory, modes, link capabilities and
//! driver versions, with no judgement beyond stating facts in canonical units.

use serde::{Deserialize, Serialize};

use crate::facts::{FieldError, MigModeFacts, NodeFacts, Reading};
use crate::finding::{Finding, Judged};
use crate::options::AnalysisOptions;

use super::canonical_bus_id;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InventoryReport {
    pub node: NodeInfo,
    pub driver: DriverInfo,
    /// What NVML enumerated. More than `gpus` answered means some handles failed.
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
    /// AMD nodes: the `libamd_smi` the probe loaded from the host (`25.1.0 at /opt/rocm/lib/...`), or why
    /// it could not be read; absent where the node has none.
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
    /// `9.0`.
    pub cuda_compute_capability: Reading<String>,
    pub memory_total_mib: Reading<u64>,
    pub mig_mode: Reading<MigModeFacts>,
    pub mig_devices: Vec<MigDeviceInventory>,
    pub persistence_mode: Reading<bool>,
    pub compute_mode: Reading<String>,
    pub pcie: PcieCapability,
    /// Links NVML enumerated for this GPU, and how many are active.
    pub nvlink_count: u32,
    pub nvlink_active: u32,
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

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> InventoryReport {
    InventoryReport {
        node: NodeInfo {
            hostname: facts.host.hostname.clone(),
            boot_id: facts.host.boot_id.clone(),
            kernel_release: facts.host.kernel_release.clone(),
        },
        driver: DriverInfo {
            driver_version: facts.driver.driver_version.clone(),
            cuda_driver_version: facts.driver.cuda_driver_version.map(|v| cuda_version(*v)),
            nvml_version: facts.driver.nvml_version.clone(),
            amd_smi: facts
                .amd_driver
                .as_ref()
                .and_then(|d| d.amd_smi.as_ref())
                .map(|r| r.map(|l| format!("{} at {}", l.version, l.path))),
        },
        device_count: facts.device_count.clone(),
        gpus: facts
            .gpus
            .iter()
            .map(|g| GpuInventory {
                index: g.index,
                handle_error: g.handle_error.clone(),
                name: g.name.clone(),
                uuid: g.uuid.clone(),
                serial: g.serial.clone(),
                board_part_number: g.board_part_number.clone(),
                pci_bus_id: canonical_bus_id(&g.pci_bus_id),
                pci_device_id: g.pci_device_id.map(|d| pci_device_id(*d)),
                vbios_version: g.vbios_version.clone(),
                architecture: g.architecture.clone(),
                cuda_compute_capability: g
                    .cuda_compute_capability
                    .map(|(maj, min)| format!("{maj}.{min}")),
                memory_total_mib: g.memory.map(|m| super::mib(m.total_bytes)),
                mig_mode: g.mig_mode.clone(),
                mig_devices: g
                    .mig_devices
                    .iter()
                    .map(|m| MigDeviceInventory {
                        index: m.index,
                        uuid: m.uuid.clone(),
                        gpu_instance_id: m.gpu_instance_id.clone(),
                        compute_instance_id: m.compute_instance_id.clone(),
                        profile: match &m.name {
                            Reading::Ok(n) => {
                                mig_profile(n).map_or_else(|| Reading::Ok(n.clone()), Reading::Ok)
                            }
                            Reading::Err(e) => Reading::Err(e.clone()),
                        },
                        memory_total_mib: m.memory.map(|mem| super::mib(mem.total_bytes)),
                    })
                    .collect(),
                persistence_mode: g.persistence_mode.clone(),
                compute_mode: g.compute_mode.clone(),
                pcie: PcieCapability {
                    max_link_gen: g.pcie.max_link_gen.clone(),
                    gpu_max_link_gen: g.pcie.gpu_max_link_gen.clone(),
                    max_link_width: g.pcie.max_link_width.clone(),
                },
                nvlink_count: g.nvlinks.len() as u32,
                nvlink_active: g
                    .nvlinks
                    .iter()
                    .filter(|l| l.active.get() == Some(true))
                    .count() as u32,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FieldErrorKind, GpuFacts};

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
            r.driver.driver_version.err().unwrap().error,
            FieldErrorKind::NotCollected
        );
    }
}
