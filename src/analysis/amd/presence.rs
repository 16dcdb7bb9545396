//! AMD GPUs that are on the PCI bus but not in service: a function of vendor 0x1002 with a GPU class that
//! no driver bound, or that amdgpu bound but the probe has no GPU for (failed init: the device is absent
//! from KFD [K5]), and a GPU amdgpu brought up but KFD does not list (ROCm cannot run work on it). The
//! shared `gpu.missing` code: the meaning is NVIDIA's "GPU missing".

use crate::analysis::{finding, gpu_label};
use crate::facts::NodeFacts;
use crate::finding::{ActionKind, Finding, Severity};

pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(functions) = facts.amd_driver.as_ref().and_then(|d| d.pci_functions.ok()) else {
        return out;
    };
    let known: Vec<String> = super::gpus::amd_gpus(facts)
        .filter_map(|(g, _)| {
            crate::analysis::canonical_bus_id(&g.pci_bus_id)
                .ok()
                .cloned()
        })
        .collect();
    let mut missing = Vec::new();
    for f in functions {
        let bdf = crate::pci::normalize_bus_id(&f.bdf).unwrap_or_else(|| f.bdf.clone());
        match f.driver.as_deref() {
            // Handed to a VM on purpose: not this node's GPU.
            Some("vfio-pci") => {}
            Some("amdgpu") if known.contains(&bdf) => {}
            Some("amdgpu") => missing.push(format!(
                "{bdf} [1002:{}]: bound to amdgpu but not brought up (no DRM/KFD device: failed init)",
                f.device_id
            )),
            Some(other) => missing.push(format!(
                "{bdf} [1002:{}]: bound to {other}, not amdgpu",
                f.device_id
            )),
            None => missing.push(format!(
                "{bdf} [1002:{}]: bound to no driver",
                f.device_id
            )),
        }
    }
    if !missing.is_empty() {
        let n = missing.len();
        out.push(finding(
            "gpu.missing",
            Severity::Critical,
            None,
            format!(
                "{n} AMD GPU(s) on the PCI bus are not in service: amdgpu did not bring them up."
            ),
            missing,
            ActionKind::RebootNode,
            "drain the node, read the kernel log for amdgpu init failures (`hw_init of IP block`, `Fatal error during GPU init`, RAS records past the threshold) and reboot; if a GPU stays missing, reseat it or open an RMA".into(),
        ));
    }
    for (g, amd) in super::gpus::amd_gpus(facts) {
        if let Some(nodes) = amd.kfd_nodes.ok()
            && nodes.is_empty()
        {
            let who = gpu_label(g);
            let mut f = finding(
                "gpu.missing",
                Severity::Critical,
                Some(g),
                format!("{who} has a DRM device but no KFD node: ROCm cannot run work on it."),
                vec!["kfd topology: no node with this GPU's PCI location or unique_id".into()],
                ActionKind::RebootNode,
                "read the kernel log for this GPU's init (KFD `added device` line, init failures); reload the driver or reboot the node".into(),
            );
            f.about = vec![format!("gpu:{}", g.index)];
            out.push(f);
        }
    }
    out
}
