//! The GPU identity table: which GPU (index, UUID, MIG devices) an event's PCI id names, from the inventory
//! and the identity lines of the log; and the one way a GPU is named in prose, [`gpu_label`].

use crate::facts::NodeFacts;
use crate::kernel_log::contract::EventKind;
use crate::kernel_log::correlate::GpuView;
use crate::kernel_log::event::Pending;
use crate::kernel_log::grammar::normalize_gpu_uuid;
use crate::pci::normalize_bus_id;

/// `GPU 3 (0000:5d:00.0)`: how findings name a GPU in prose, from what is known of it (the log can name a
/// GPU the inventory lacks, and the inventory can hold a GPU whose PCI id is unreadable).
pub fn gpu_label(index: Option<u32>, pci: Option<&str>) -> String {
    match (index, pci) {
        (Some(i), Some(p)) => format!("GPU {i} ({p})"),
        (Some(i), None) => format!("GPU {i}"),
        (None, Some(p)) => format!("GPU at {p}"),
        (None, None) => "unknown GPU".into(),
    }
}

/// A MIG device of a GPU, to name the device an Xid's instance ids point at.
pub(super) struct MigDevice {
    gpu_instance_id: Option<u32>,
    compute_instance_id: Option<u32>,
    uuid: Option<String>,
}

/// One GPU as the analysis knows it: from the inventory (index, NVML's UUID and verdicts) or only from the
/// log (PCI id, maybe the UUID of its identity line).
pub(super) struct GpuIdentity {
    /// Canonical PCI id: the key events are attributed by.
    pub pci: Option<String>,
    /// The device as its driver names it where its lines carry no PCI address (AWS Neuron's `neuron3`,
    /// its lines' `nd3`): the key such events are attributed by.
    pub device: Option<String>,
    pub index: Option<u32>,
    pub uuid: Option<String>,
    /// `nvml`, `amdgpu` (its sysfs) or `kernel_log`.
    pub uuid_source: Option<&'static str>,
    pub recovery_action: Option<u32>,
    pub sram_threshold_exceeded: Option<bool>,
    mig: Vec<MigDevice>,
}

impl GpuIdentity {
    /// The key its events are attributed by: its PCI id, else its driver's name for it.
    pub(super) fn key(&self) -> Option<&str> {
        self.pci.as_deref().or(self.device.as_deref())
    }

    fn from_log(pci: &str, uuid: Option<&str>) -> Self {
        GpuIdentity {
            pci: Some(pci.to_string()),
            device: None,
            index: None,
            uuid: uuid.map(str::to_string),
            uuid_source: uuid.map(|_| "kernel_log"),
            recovery_action: None,
            sram_threshold_exceeded: None,
            mig: Vec::new(),
        }
    }
}

/// The node's GPUs, inventory first, then those only the log names (in the order it names them).
pub(super) struct GpuTable {
    rows: Vec<GpuIdentity>,
}

impl GpuTable {
    pub(super) fn of(facts: &NodeFacts) -> Self {
        let rows = facts
            .gpus
            .iter()
            .map(|g| GpuIdentity {
                pci: g.pci_bus_id.ok().and_then(|p| normalize_bus_id(p)),
                device: g.neuron.as_ref().map(|n| n.device.clone()),
                index: Some(g.index),
                uuid: g.uuid.ok().map(|u| normalize_gpu_uuid(u)),
                // AMD GPUs' ids come from amdgpu's sysfs, not NVML.
                uuid_source: g.uuid.is_ok().then_some(if g.vendor.is_nvidia() {
                    "nvml"
                } else {
                    "amdgpu"
                }),
                recovery_action: g.recovery_action.get(),
                sram_threshold_exceeded: g.ecc.sram_threshold_exceeded.get(),
                mig: g
                    .mig_devices
                    .iter()
                    .map(|m| MigDevice {
                        gpu_instance_id: m.gpu_instance_id.get(),
                        compute_instance_id: m.compute_instance_id.get(),
                        uuid: m.uuid.ok().cloned(),
                    })
                    .collect(),
            })
            .collect();
        GpuTable { rows }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &GpuIdentity> {
        self.rows.iter()
    }

    /// The row an event key names: a PCI id, or a driver's device name.
    pub(super) fn find(&self, key: &str) -> Option<&GpuIdentity> {
        self.rows
            .iter()
            .find(|r| r.pci.as_deref() == Some(key) || r.device.as_deref() == Some(key))
    }

    /// An identity line (`NVRM: GPU at PCI:…: GPU-<uuid>`): the UUID of a GPU, or a GPU only the log knows.
    pub(super) fn learn(&mut self, pci: &str, uuid: &str) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.pci.as_deref() == Some(pci)) {
            if r.uuid.is_none() {
                r.uuid = Some(uuid.to_string());
                r.uuid_source = Some("kernel_log");
            }
            return;
        }
        // The inventory may know the UUID under another PCI form only if normalisation failed; match by UUID.
        if let Some(r) = self.rows.iter_mut().find(|r| {
            r.uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
        }) {
            if r.pci.is_none() {
                r.pci = Some(pci.to_string());
            }
            return;
        }
        self.rows.push(GpuIdentity::from_log(pci, Some(uuid)));
    }

    /// Map an event to its GPU (creating a row for a GPU only the log knows) and fill UUID and MIG device.
    pub(super) fn attribute(&mut self, p: &mut Pending) {
        if matches!(p.event.kind, EventKind::Sxid | EventKind::CrashDump) {
            return;
        }
        // A line without a PCI address that names its device the driver's way is attributed by that
        // name, to the device the inventory read under it (none: no GPU, as before).
        let Some(pci) = p.event.pci_bus_id.clone() else {
            if let Some(d) = p.detail.decoded.as_ref().and_then(|d| d.device_name())
                && let Some(row) = self
                    .rows
                    .iter()
                    .find(|r| r.pci.is_none() && r.device.as_deref() == Some(d))
            {
                p.gpu_key = Some(d.to_string());
                p.detail.gpu_index = row.index;
            }
            return;
        };
        let pos = match self
            .rows
            .iter()
            .position(|r| r.pci.as_deref() == Some(pci.as_str()))
        {
            Some(i) => i,
            None => {
                self.rows.push(GpuIdentity::from_log(&pci, None));
                self.rows.len() - 1
            }
        };
        let row = &self.rows[pos];
        p.gpu_key = Some(pci);
        p.detail.gpu_index = row.index;
        if p.event.gpu_uuid.is_none() {
            p.event.gpu_uuid = row.uuid.clone();
        }
        if let Some(gi) = p.event.gpu_instance_id {
            let ci = p.event.compute_instance_id;
            p.detail.mig_device_uuid = row
                .mig
                .iter()
                .find(|m| {
                    m.gpu_instance_id == Some(gi) && (ci.is_none() || m.compute_instance_id == ci)
                })
                .and_then(|m| m.uuid.clone());
        }
    }

    /// What correlation knows of the GPU an event key names (None for events tied to no GPU).
    pub(super) fn view(&self, key: &Option<String>) -> Option<GpuView> {
        let r = self.find(key.as_deref()?)?;
        Some(GpuView {
            key: r.pci.clone().or_else(|| r.device.clone()),
            index: r.index,
            recovery_action: r.recovery_action,
            sram_threshold_exceeded: r.sram_threshold_exceeded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_what_is_known() {
        assert_eq!(
            gpu_label(Some(3), Some("0000:5d:00.0")),
            "GPU 3 (0000:5d:00.0)"
        );
        assert_eq!(gpu_label(Some(3), None), "GPU 3");
        assert_eq!(gpu_label(None, Some("0000:5d:00.0")), "GPU at 0000:5d:00.0");
        assert_eq!(gpu_label(None, None), "unknown GPU");
    }
}
