//! The inventory as text: the GPU count and driver, one line per group of alike GPUs ([`summary`]), and
//! every identity, version, mode and link capability ([`details`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use gpu_diag::analysis::inventory::{GpuInventory, InventoryReport, MigDeviceInventory};
use gpu_diag::facts::{FieldErrorKind, Reading};

use crate::mcp::render::details::{Entry, Fields, failed};
use crate::mcp::render::reading::{on_off, value_or_unknown as show};
use crate::mcp::render::topology::alike;

/// The inventory: the GPU count and driver(s) in one line, then one line per group of alike GPUs (model,
/// memory, VBIOS, and persistence and MIG mode on NVIDIA or the partition modes on AMD); a `lost` GPU
/// says so in words. Each vendor in its own words: an AMD-only node names amdgpu and ROCm, never a CUDA.
pub fn summary(inv: &InventoryReport, lost: &BTreeSet<u32>, out: &mut String) {
    let mut drivers = Vec::new();
    if let Some(d) = &inv.driver {
        drivers.push(format!(
            "driver {}, CUDA {}",
            show(&d.driver_version),
            show(&d.cuda_driver_version)
        ));
    }
    if let Some(a) = &inv.amd_driver {
        let rocm = match &a.rocm_version {
            Reading::Ok(v) => format!(", ROCm {v}"),
            Reading::Err(_) => String::new(),
        };
        let amd_smi = match &a.amd_smi {
            Some(Reading::Ok(v)) => format!("; libamd_smi {v}"),
            Some(Reading::Err(e)) => format!(
                "; libamd_smi not read: {}",
                e.message.as_deref().unwrap_or("error")
            ),
            None => String::new(),
        };
        let lead = if inv.driver.is_none() { "AMD, " } else { "" };
        drivers.push(format!(
            "{lead}amdgpu {}{rocm}{amd_smi}",
            show(&a.amdgpu_version)
        ));
    }
    if inv.gpus.iter().any(|g| g.gaudi.is_some()) {
        let lead = if drivers.is_empty() {
            "Intel Gaudi, "
        } else {
            ""
        };
        drivers.push(format!(
            "{lead}habanalabs on kernel {}",
            show(&inv.node.kernel_release)
        ));
    }
    // A vendor with no driver line here (AWS Neuron) says no empty one.
    let drivers = if drivers.is_empty() {
        String::new()
    } else {
        format!("; {}", drivers.join("; "))
    };
    let _ = writeln!(out, "GPUs: {} enumerated{drivers}", show(&inv.device_count));
    let lines = inv.gpus.iter().map(|g| {
        let line = if lost.contains(&g.index) {
            format!(
                "{}, lost: NVML answers GPU_IS_LOST, so its telemetry, links, ECC and processes \
                 cannot be read (see the findings)",
                show(&g.name)
            )
        } else if let Some(h) = &g.gaudi {
            // The driver's own words: its device type, status and the device CPU's firmware.
            format!(
                "{} ({}, {}), status {}, CPU-CP firmware {}",
                show(&g.name),
                show(&h.device_type),
                show(&g.board_part_number),
                show(&h.status),
                show(&h.cpucp_version)
            )
        } else if let Some(a) = &g.amd {
            // Partitions exist from MI300 on; an older GPU's `not_supported` says nothing worth a `?`.
            let partitions = match &a.compute_partition {
                Reading::Err(e) if e.error == FieldErrorKind::NotSupported => String::new(),
                _ => format!(
                    ", compute partition {}, memory partition {}",
                    show(&a.compute_partition),
                    show(&a.memory_partition)
                ),
            };
            format!(
                "{}, {} MiB, VBIOS {}{partitions}",
                show(&g.name),
                show(&g.memory_total_mib),
                show(&g.vbios_version)
            )
        } else if g.persistence_mode.is_none() && g.mig_mode.is_none() {
            // A device with none of NVML's fields (the library leaves them out for another vendor's): its
            // name and what was read of the shared ones, never NVIDIA's modes as unknown.
            let memory = g
                .memory_total_mib
                .get()
                .map_or_else(String::new, |m| format!(", {m} MiB"));
            format!("{}{memory}", show(&g.name))
        } else {
            format!(
                "{}, {} MiB, VBIOS {}, persistence {}, MIG {}",
                show(&g.name),
                show(&g.memory_total_mib),
                show(&g.vbios_version),
                on_off(g.persistence_mode.as_ref().and_then(Reading::get)),
                on_off(g.mig_mode.as_ref().and_then(|m| m.ok()).map(|m| m.current))
            )
        };
        (g.index, line)
    });
    alike(lines.collect(), out);
}

/// The inventory's details: every identity, version, mode and link capability of every GPU.
pub fn details(inv: &InventoryReport) -> Entry {
    let mut node = Fields::default();
    node.reading("hostname", &inv.node.hostname)
        .reading("boot_id", &inv.node.boot_id)
        .reading("kernel_release", &inv.node.kernel_release);
    let mut f = Fields::default();
    f.nested("node", node);
    if let Some(d) = &inv.driver {
        let mut driver = Fields::default();
        driver
            .reading("driver_version", &d.driver_version)
            .reading("cuda_driver_version", &d.cuda_driver_version)
            .reading("nvml_version", &d.nvml_version);
        f.nested("driver", driver);
    }
    if let Some(a) = &inv.amd_driver {
        let mut amd = Fields::default();
        amd.reading("amdgpu_version", &a.amdgpu_version)
            .reading("rocm_version", &a.rocm_version);
        if let Some(r) = &a.amd_smi {
            amd.reading("amd_smi", r);
        }
        f.nested("amd_driver", amd);
    }
    f.reading("device_count", &inv.device_count);
    // A Gaudi device lists only what the habanalabs driver shows; the shared fields it cannot fill are
    // named once for the node (why is in the structured result, field by field), not on every device.
    let gaudi = inv.gpus.iter().filter(|g| g.gaudi.is_some());
    let unread: BTreeSet<&str> = gaudi
        .clone()
        .flat_map(|g| shared_fields(g).filter(|(_, ok)| !ok).map(|(name, _)| name))
        .collect();
    if !unread.is_empty() {
        f.text("gaudi_not_read", gaudi_not_read(unread.into_iter()));
    }
    if gaudi.clone().any(|g| !pcie_read(g)) {
        f.text("gaudi_pcie", GAUDI_PCIE);
    }
    // Likewise a device of a vendor whose driver's sysfs is all the probe reads (AWS Neuron): named by
    // its PCI vendor id, its unread shared fields and link said once in that vendor's words.
    let sysfs_only: Vec<&GpuInventory> = inv
        .gpus
        .iter()
        .filter(|g| sysfs_only_vendor(g).is_some())
        .collect();
    if let Some(v) = sysfs_only.first().and_then(|g| sysfs_only_vendor(g)) {
        let unread: BTreeSet<&str> = sysfs_only
            .iter()
            .flat_map(|g| shared_fields(g).filter(|(_, ok)| !ok).map(|(name, _)| name))
            .collect();
        if !unread.is_empty() {
            f.text("not_read", sysfs_not_read(unread.into_iter(), v));
        }
        if sysfs_only.iter().any(|g| !pcie_read(g)) {
            f.text("pcie", sysfs_pcie(v));
        }
    }
    f.list("gpus", inv.gpus.iter().map(gpu_inventory));
    Entry::Fields(f)
}

const GAUDI_PCIE: &str = "the PCIe link is not read for Gaudi devices yet";
#[cfg(test)]
const SHARED_FIELDS: [&str; 6] = [
    "uuid",
    "serial",
    "board_part_number",
    "vbios_version",
    "architecture",
    "memory_total_mib",
];

fn gaudi_not_read<'a>(fields: impl Iterator<Item = &'a str>) -> String {
    format!(
        "{} (not in the habanalabs driver's sysfs; HLML and hl-smi read them from the firmware)",
        fields.collect::<Vec<_>>().join(", ")
    )
}

/// The serialized inventory as [`details`] renders it: a Gaudi device's unread shared fields and PCIe link
/// said once for the node. What the typed-details tests compare with, so that they still prove every
/// other field is rendered.
#[cfg(test)]
pub fn as_rendered(inv: &mut serde_json::Value) {
    let failed = |v: Option<&serde_json::Value>| v.is_some_and(|v| v.get("error").is_some());
    let (mut unread, mut pcie) = (BTreeSet::new(), false);
    let Some(gpus) = inv.get_mut("gpus").and_then(|g| g.as_array_mut()) else {
        return;
    };
    let mut other: Option<gpu_diag::facts::GpuVendor> = None;
    let (mut other_unread, mut other_pcie) = (BTreeSet::new(), false);
    for g in gpus.iter_mut() {
        let Ok(typed) = serde_json::from_value::<GpuInventory>(g.clone()) else {
            continue;
        };
        let Some(v) = sysfs_only_vendor(&typed) else {
            continue;
        };
        other = Some(v);
        let Some(o) = g.as_object_mut() else { continue };
        for k in SHARED_FIELDS {
            if failed(o.get(k)) {
                o.remove(k);
                other_unread.insert(k);
            }
        }
        if !pcie_read(&typed) {
            o.remove("pcie");
            other_pcie = true;
        }
    }
    for g in gpus.iter_mut().filter(|g| g.get("gaudi").is_some()) {
        let Some(o) = g.as_object_mut() else { continue };
        for k in SHARED_FIELDS {
            if failed(o.get(k)) {
                o.remove(k);
                unread.insert(k);
            }
        }
        let link = o.get("pcie");
        if failed(link.and_then(|p| p.get("max_link_gen")))
            && failed(link.and_then(|p| p.get("max_link_width")))
        {
            o.remove("pcie");
            pcie = true;
        }
    }
    if !unread.is_empty() {
        inv["gaudi_not_read"] = gaudi_not_read(unread.into_iter()).into();
    }
    if pcie {
        inv["gaudi_pcie"] = GAUDI_PCIE.into();
    }
    if let Some(v) = other {
        if !other_unread.is_empty() {
            inv["not_read"] = sysfs_not_read(other_unread.into_iter(), v).into();
        }
        if other_pcie {
            inv["pcie"] = sysfs_pcie(v).into();
        }
    }
}

/// The shared identity fields a vendor may leave unread, and whether each was read.
fn shared_fields(g: &GpuInventory) -> impl Iterator<Item = (&'static str, bool)> + '_ {
    [
        ("uuid", g.uuid.is_ok()),
        ("serial", g.serial.is_ok()),
        ("board_part_number", g.board_part_number.is_ok()),
        ("vbios_version", g.vbios_version.is_ok()),
        ("architecture", g.architecture.is_ok()),
        ("memory_total_mib", g.memory_total_mib.is_ok()),
    ]
    .into_iter()
}

/// The vendor of a device that is neither NVIDIA's, AMD's nor a Gaudi (its own section says those), by
/// the PCI vendor id the probe read.
fn sysfs_only_vendor(g: &GpuInventory) -> Option<gpu_diag::facts::GpuVendor> {
    use gpu_diag::facts::GpuVendor;
    let id = g.pci_device_id.ok()?.split(':').next()?;
    let v = GpuVendor::of_pci_vendor_id(u16::from_str_radix(id, 16).ok()?)?;
    (v != GpuVendor::Nvidia && v != GpuVendor::Amd && g.gaudi.is_none()).then_some(v)
}

fn sysfs_not_read<'a>(
    fields: impl Iterator<Item = &'a str>,
    v: gpu_diag::facts::GpuVendor,
) -> String {
    let info = v.info();
    format!(
        "{} (not in the {} driver's sysfs; {} read them)",
        fields.collect::<Vec<_>>().join(", "),
        info.kernel_driver,
        info.tools.join(", ")
    )
}

fn sysfs_pcie(v: gpu_diag::facts::GpuVendor) -> String {
    format!(
        "the PCIe link is not read for {} devices yet",
        v.info().name
    )
}

fn pcie_read(g: &GpuInventory) -> bool {
    g.pcie.max_link_gen.is_ok() || g.pcie.max_link_width.is_ok()
}

fn gpu_inventory(g: &GpuInventory) -> Fields {
    // Gaudi (and a sysfs-only vendor's device): the fields its driver does not show are named once
    // above, not here.
    let gaudi = g.gaudi.is_some() || sysfs_only_vendor(g).is_some();
    let shown = |r: bool| !gaudi || r;
    let mut pcie = Fields::default();
    pcie.reading("max_link_gen", &g.pcie.max_link_gen)
        .reading("gpu_max_link_gen", &g.pcie.gpu_max_link_gen)
        .reading("max_link_width", &g.pcie.max_link_width);
    let mut f = Fields::default();
    f.text("index", g.index)
        .optional("handle_error", g.handle_error.as_ref().map(failed))
        .reading("name", &g.name);
    if shown(g.uuid.is_ok()) {
        f.reading("uuid", &g.uuid);
    }
    if shown(g.serial.is_ok()) {
        f.reading("serial", &g.serial);
    }
    if shown(g.board_part_number.is_ok()) {
        f.reading("board_part_number", &g.board_part_number);
    }
    f.reading("pci_bus_id", &g.pci_bus_id)
        .reading("pci_device_id", &g.pci_device_id);
    if shown(g.vbios_version.is_ok()) {
        f.reading("vbios_version", &g.vbios_version);
    }
    if shown(g.architecture.is_ok()) {
        f.reading("architecture", &g.architecture);
    }
    if let Some(r) = &g.cuda_compute_capability {
        f.reading("cuda_compute_capability", r);
    }
    if shown(g.memory_total_mib.is_ok()) {
        f.reading("memory_total_mib", &g.memory_total_mib);
    }
    if let Some(m) = &g.mig_mode {
        let mig_mode = Entry::of_reading(m, |m| {
            let mut f = Fields::default();
            f.text("current", m.current).text("pending", m.pending);
            Entry::Fields(f)
        });
        f.entry("mig_mode", mig_mode);
    }
    if let Some(d) = &g.mig_devices {
        f.list("mig_devices", d.iter().map(mig_device));
    }
    if let Some(r) = &g.persistence_mode {
        f.reading("persistence_mode", r);
    }
    if let Some(r) = &g.compute_mode {
        f.reading("compute_mode", r);
    }
    if shown(pcie_read(g)) {
        f.nested("pcie", pcie);
    }
    f.optional("nvlink_count", g.nvlink_count)
        .optional("nvlink_active", g.nvlink_active);
    if let Some(a) = &g.amd {
        let mut amd = Fields::default();
        amd.reading("compute_partition", &a.compute_partition)
            .reading("memory_partition", &a.memory_partition)
            .reading("xgmi_hive_id", &a.xgmi_hive_id)
            .reading("mp0_version", &a.mp0_version);
        f.nested("amd", amd);
    }
    if let Some(h) = &g.gaudi {
        let mut gaudi = Fields::default();
        gaudi
            .text("device", &h.device)
            .reading("device_type", &h.device_type)
            .reading("status", &h.status)
            .reading("module_id", &h.module_id)
            .reading("hard_reset_count", &h.hard_reset_count)
            .reading("security_enabled", &h.security_enabled)
            .reading("cpucp_version", &h.cpucp_version)
            .reading("fw_os_version", &h.fw_os_version)
            .reading("preboot_btl_version", &h.preboot_btl_version)
            .reading("cpld_version", &h.cpld_version);
        f.nested("gaudi", gaudi);
    }
    f
}

fn mig_device(m: &MigDeviceInventory) -> Fields {
    let mut f = Fields::default();
    f.text("index", m.index)
        .reading("uuid", &m.uuid)
        .reading("gpu_instance_id", &m.gpu_instance_id)
        .reading("compute_instance_id", &m.compute_instance_id)
        .reading("profile", &m.profile)
        .reading("memory_total_mib", &m.memory_total_mib);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::facts::{FieldError, FieldErrorKind};

    #[test]
    fn the_driver_line_names_libamd_smi_only_where_the_probe_read_one() {
        let mut inv = InventoryReport {
            amd_driver: Some(Default::default()),
            ..InventoryReport::default()
        };
        let line = |inv: &InventoryReport| {
            let mut out = String::new();
            summary(inv, &BTreeSet::new(), &mut out);
            out.lines().next().unwrap_or_default().to_string()
        };
        assert!(!line(&inv).contains("libamd_smi"), "{}", line(&inv));
        inv.amd_driver.as_mut().unwrap().amd_smi = Some(Reading::Ok(
            "25.1.0 at /opt/rocm/lib/libamd_smi.so.25".into(),
        ));
        assert!(
            line(&inv).ends_with("; libamd_smi 25.1.0 at /opt/rocm/lib/libamd_smi.so.25"),
            "{}",
            line(&inv)
        );
        inv.amd_driver.as_mut().unwrap().amd_smi = Some(Reading::Err(FieldError::with_message(
            FieldErrorKind::Timeout,
            "did not answer in time",
        )));
        assert!(
            line(&inv).ends_with("; libamd_smi not read: did not answer in time"),
            "{}",
            line(&inv)
        );
    }
}
