//! The node's AMD GPUs and how an action names one (`amd-smi`'s selector, the hive a reset covers).

use crate::facts::{AmdGpuFacts, GpuFacts, NodeFacts};

/// The node's AMD GPUs with their AMD-only facts.
pub fn amd_gpus(facts: &NodeFacts) -> impl Iterator<Item = (&GpuFacts, &AmdGpuFacts)> {
    facts.gpus.iter().filter_map(|g| Some((g, g.amd.as_ref()?)))
}

/// The `amd-smi` selector of a GPU: its PCI address (amd-smi's `-g` takes an index, a BDF or a UUID, and
/// its index need not be the probe's on a node with NVIDIA GPUs too).
pub(crate) fn smi_target(g: &GpuFacts) -> String {
    crate::analysis::canonical_bus_id(&g.pci_bus_id)
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
