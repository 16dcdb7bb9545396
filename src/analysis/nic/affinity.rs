//! The GPU <-> NIC affinity: each GPU's relation to each NIC by PCI path and NUMA node (PIX ... SYS), its
//! nearest NICs, and the finding for GPUs that reach every NIC only across sockets.

use crate::analysis::finding;
use crate::analysis::pci_relation::PciRelation;
use crate::facts::{GpuFacts, RdmaDeviceFacts};
use crate::finding::{Finding, Severity};

use super::contract::{NicAffinity, NicAffinityRow};
use super::port_rules::GPU_FAR;

/// The GPU x NIC matrix, and each GPU's nearest NICs (its rail, whether that port is up or not: a down
/// port is its own finding).
pub(super) fn affinity(gpus: &[GpuFacts], devices: &[RdmaDeviceFacts]) -> NicAffinity {
    let mut out = NicAffinity {
        columns: devices.iter().map(|d| d.name.clone()).collect(),
        rows: Vec::new(),
    };
    for g in gpus {
        let gpath: &[String] = g
            .pci_path
            .as_ref()
            .and_then(|p| p.ok())
            .map_or(&[], Vec::as_slice);
        let gnuma = g.numa_node.get();
        let relations: Vec<PciRelation> = devices
            .iter()
            .map(|d| {
                let dpath: &[String] = d.pci_path.ok().map_or(&[], Vec::as_slice);
                PciRelation::from_paths(gpath, gnuma, dpath, d.numa_node.get())
            })
            .collect();
        let best = relations
            .iter()
            .copied()
            .min()
            .unwrap_or(PciRelation::Unknown);
        // An unknown relation could be closer than anything known, short of PIX.
        let nearest = if relations.contains(&PciRelation::Unknown) && best > PciRelation::Pix {
            PciRelation::Unknown
        } else {
            best
        };
        let nearest_nics = if nearest == PciRelation::Unknown {
            Vec::new()
        } else {
            devices
                .iter()
                .zip(&relations)
                .filter(|(_, r)| **r == nearest)
                .map(|(d, _)| d.name.clone())
                .collect()
        };
        let cells = relations.iter().map(|r| r.as_str().to_string()).collect();
        let nearest = nearest.as_str().to_string();
        out.rows.push(NicAffinityRow {
            gpu: g.index,
            cells,
            nearest,
            nearest_nics,
        });
    }
    out
}

/// GPUs whose nearest NIC is across the CPU interconnect (SYS): one finding naming them all.
pub(super) fn far_gpus_finding(aff: &NicAffinity) -> Option<Finding> {
    let far: Vec<&NicAffinityRow> = aff
        .rows
        .iter()
        .filter(|r| PciRelation::parse(&r.nearest) == Some(PciRelation::Sys))
        .collect();
    if far.is_empty() {
        return None;
    }
    let names: Vec<String> = far.iter().map(|r| format!("GPU {}", r.gpu)).collect();
    Some(finding(
        GPU_FAR.code,
        Severity::Warning,
        None,
        format!(
            "{} {} the nearest RDMA NIC only across the CPU interconnect (SYS): GPUDirect RDMA traffic crosses sockets, costing bandwidth and latency for multi-node jobs.",
            names.join(", "),
            if names.len() == 1 { "reaches" } else { "reach" }
        ),
        far.iter()
            .map(|r| {
                format!(
                    "GPU {}: nearest NIC {} ({})",
                    r.gpu,
                    r.nearest_nics.join(", "),
                    r.nearest
                )
            })
            .collect(),
        GPU_FAR.kind,
        GPU_FAR.detail.to_string(),
    ))
}
