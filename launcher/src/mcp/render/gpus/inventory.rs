//! The inventory as text: the GPU count and driver, one line per group of alike GPUs ([`summary`]), and
//! every identity, version, mode and link capability ([`details`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use gpu_diag::analysis::inventory::{GpuInventory, InventoryReport, MigDeviceInventory};
use gpu_diag::facts::Reading;

use crate::mcp::render::details::{Entry, Fields, failed};
use crate::mcp::render::reading::{on_off, value_or_unknown as show};
use crate::mcp::render::topology::alike;

/// The inventory: the GPU count and driver in one line, then one line per group of alike GPUs (model,
/// memory, VBIOS, persistence and MIG mode); a `lost` GPU says so in words.
pub fn summary(inv: &InventoryReport, lost: &BTreeSet<u32>, out: &mut String) {
    // An AMD node's ROCm library, where the probe read one (its version; why not, where it failed).
    let amd_smi = match &inv.driver.amd_smi {
        Some(Reading::Ok(v)) => format!("; libamd_smi {v}"),
        Some(Reading::Err(e)) => format!(
            "; libamd_smi not read: {}",
            e.message.as_deref().unwrap_or("error")
        ),
        None => String::new(),
    };
    // An AMD-only node (PCI vendor 1002 on every GPU) has no NVIDIA driver or CUDA to report: its driver
    // is amdgpu, and `driver ?, CUDA ?` would read as a fault.
    let amd_only = !inv.gpus.is_empty()
        && inv.gpus.iter().all(|g| {
            g.pci_device_id
                .ok()
                .is_some_and(|id| id.starts_with("1002:"))
        });
    if amd_only {
        let _ = writeln!(
            out,
            "GPUs: {} enumerated; AMD, amdgpu driver{amd_smi}",
            show(&inv.device_count)
        );
    } else {
        let _ = writeln!(
            out,
            "GPUs: {} enumerated; driver {}, CUDA {}{amd_smi}",
            show(&inv.device_count),
            show(&inv.driver.driver_version),
            show(&inv.driver.cuda_driver_version)
        );
    }
    let lines = inv.gpus.iter().map(|g| {
        let line = if lost.contains(&g.index) {
            format!(
                "{}, lost: NVML answers GPU_IS_LOST, so its telemetry, links, ECC and processes \
                 cannot be read (see the findings)",
                show(&g.name)
            )
        } else {
            format!(
                "{}, {} MiB, VBIOS {}, persistence {}, MIG {}",
                show(&g.name),
                show(&g.memory_total_mib),
                show(&g.vbios_version),
                on_off(g.persistence_mode.get()),
                on_off(g.mig_mode.ok().map(|m| m.current))
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
    let mut driver = Fields::default();
    driver
        .reading("driver_version", &inv.driver.driver_version)
        .reading("cuda_driver_version", &inv.driver.cuda_driver_version)
        .reading("nvml_version", &inv.driver.nvml_version);
    if let Some(r) = &inv.driver.amd_smi {
        driver.reading("amd_smi", r);
    }
    let mut f = Fields::default();
    f.nested("node", node)
        .nested("driver", driver)
        .reading("device_count", &inv.device_count)
        .list("gpus", inv.gpus.iter().map(gpu_inventory));
    Entry::Fields(f)
}

fn gpu_inventory(g: &GpuInventory) -> Fields {
    let mut pcie = Fields::default();
    pcie.reading("max_link_gen", &g.pcie.max_link_gen)
        .reading("gpu_max_link_gen", &g.pcie.gpu_max_link_gen)
        .reading("max_link_width", &g.pcie.max_link_width);
    let mig_mode = Entry::of_reading(&g.mig_mode, |m| {
        let mut f = Fields::default();
        f.text("current", m.current).text("pending", m.pending);
        Entry::Fields(f)
    });
    let mut f = Fields::default();
    f.text("index", g.index)
        .optional("handle_error", g.handle_error.as_ref().map(failed))
        .reading("name", &g.name)
        .reading("uuid", &g.uuid)
        .reading("serial", &g.serial)
        .reading("board_part_number", &g.board_part_number)
        .reading("pci_bus_id", &g.pci_bus_id)
        .reading("pci_device_id", &g.pci_device_id)
        .reading("vbios_version", &g.vbios_version)
        .reading("architecture", &g.architecture)
        .reading("cuda_compute_capability", &g.cuda_compute_capability)
        .reading("memory_total_mib", &g.memory_total_mib)
        .entry("mig_mode", mig_mode)
        .list("mig_devices", g.mig_devices.iter().map(mig_device))
        .reading("persistence_mode", &g.persistence_mode)
        .reading("compute_mode", &g.compute_mode)
        .nested("pcie", pcie)
        .text("nvlink_count", g.nvlink_count)
        .text("nvlink_active", g.nvlink_active);
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
        let mut inv = InventoryReport::default();
        let line = |inv: &InventoryReport| {
            let mut out = String::new();
            summary(inv, &BTreeSet::new(), &mut out);
            out.lines().next().unwrap_or_default().to_string()
        };
        assert!(!line(&inv).contains("libamd_smi"), "{}", line(&inv));
        inv.driver.amd_smi = Some(Reading::Ok(
            "25.1.0 at /opt/rocm/lib/libamd_smi.so.25".into(),
        ));
        assert!(
            line(&inv).ends_with("; libamd_smi 25.1.0 at /opt/rocm/lib/libamd_smi.so.25"),
            "{}",
            line(&inv)
        );
        inv.driver.amd_smi = Some(Reading::Err(FieldError::with_message(
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
