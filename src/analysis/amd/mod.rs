//! What only AMD Instinct GPUs show, judged: RAS counters per block (`ras.rs`), retired bad pages against
//! the driver's threshold (`bad_pages.rs`), XGMI links, the `gpu_metrics` throttle residencies and PCIe
//! recoveries (`links.rs`), and AMD GPU PCI functions that no driver bound or KFD does not list
//! (`presence.rs`). Temperatures, power, clocks and memory go through the shared telemetry rules, which
//! read the shared fields the probe fills for both vendors. Codes are `amd.*` (the kernel log's are
//! `amdgpu.*`); actions are in AMD's vocabulary (`amd-smi reset -G -g <bdf>`, the Service Action Guide).
//!
//! Formats and meanings: the project's AMD reference (`amdgpu_ras.c`, `amdgpu_ras_eeprom.c`,
//! `amdgpu_xgmi.c`, `smu_v13_0_6_ppt.c`, `kgd_pp_interface.h`).

mod bad_pages;
mod links;
mod presence;
mod ras;

use crate::facts::{AmdGpuFacts, GpuFacts, NodeFacts};
use crate::finding::Finding;

pub use bad_pages::rma_threshold;

/// Every AMD finding of the node: per AMD GPU, then the node's PCI functions.
pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let uptime = super::uptime_s(facts);
    for (g, amd) in amd_gpus(facts) {
        out.extend(ras::judge(g, amd, uptime));
        out.extend(bad_pages::judge(g, amd, facts));
        out.extend(links::judge(g, amd, uptime));
    }
    out.extend(presence::judge(facts));
    out
}

/// The node's AMD GPUs with their AMD-only facts.
pub fn amd_gpus(facts: &NodeFacts) -> impl Iterator<Item = (&GpuFacts, &AmdGpuFacts)> {
    facts.gpus.iter().filter_map(|g| Some((g, g.amd.as_ref()?)))
}

/// The `amd-smi` selector of a GPU: its PCI address (amd-smi's `-g` takes an index, a BDF or a UUID, and
/// its index need not be the probe's on a node with NVIDIA GPUs too).
pub(crate) fn smi_target(g: &GpuFacts) -> String {
    super::canonical_bus_id(&g.pci_bus_id)
        .ok()
        .cloned()
        .unwrap_or_else(|| g.index.to_string())
}

/// How a reset of this GPU reaches further: a reset covers the whole XGMI hive [K4][K5].
pub(crate) fn reset_step(g: &GpuFacts, amd: &AmdGpuFacts) -> String {
    let hive = amd
        .xgmi
        .ok()
        .and_then(|x| x.hive_id)
        .filter(|&h| h != 0)
        .map_or(String::new(), |h| {
            format!(" (a reset covers the whole XGMI hive 0x{h:x}: drain every GPU of it first)")
        });
    format!(
        "`amd-smi reset -G -g {}` as root when no work runs on it{hive}",
        smi_target(g)
    )
}

#[cfg(test)]
mod tests;
