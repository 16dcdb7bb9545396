//! What only AWS Neuron devices show, judged: the neuron driver's device state (`reset` read back) and the
//! firmware's uncorrected ECC counts. Codes are `neuron.*` (the kernel log's too, its findings named by the
//! catalog); actions in AWS's words (`neuron_catalog::action_detail`: the driver's reset, `neuron-ls`).
//!
//! Meanings: `enum neuron_device_state` (aws-neuron-driver neuron_device.h:59-63): 2, invalid, is what the
//! driver sets when a device's reset failed (neuron_reset.c:168-172) or its reset thread stopped (:218);
//! `stats/hardware/mem_ecc_uncorrected` counts HBM errors with no repair pending, `…_repairable_…` those a
//! reset repairs (v3/neuron_dhal_v3.c:1078-1115), `sram_ecc_uncorrected` on-chip SRAM errors.

use crate::facts::{GpuFacts, NEURON_DEVICE_STATE_INVALID, NeuronGpuFacts, NodeFacts};
use crate::finding::{ActionKind, Finding, Severity};
use crate::kernel_log::neuron_catalog::action_detail;

use super::{finding, gpu_label};

/// One finding per fault on a device: the driver giving it up first, then its memory.
pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    facts
        .gpus
        .iter()
        .filter_map(|g| Some((g, g.neuron.as_ref()?)))
        .flat_map(|(g, n)| device(g, n))
        .collect()
}

fn device(g: &GpuFacts, n: &NeuronGpuFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let dev = Some(n.device.as_str());
    if n.device_state.get() == Some(NEURON_DEVICE_STATE_INVALID) {
        out.push(finding(
            "neuron.device_invalid",
            Severity::Critical,
            Some(g),
            format!("{} ({}): the neuron driver gave the device up (its state is invalid: its last reset failed).", gpu_label(g), n.device),
            vec![format!("/sys/class/neuron_device/{}/reset = 2 (NEURON_DEVICE_STATE_INVALID)", n.device)],
            ActionKind::RebootNode,
            action_detail(ActionKind::RebootNode, dev),
        ));
    }
    let hw = &n.hardware;
    let counts = [
        (
            "mem_ecc_uncorrected",
            hw.mem_ecc_uncorrected.get(),
            "HBM",
            ActionKind::Rma,
        ),
        (
            "sram_ecc_uncorrected",
            hw.sram_ecc_uncorrected.get(),
            "on-chip SRAM",
            ActionKind::DrainAndResetGpu,
        ),
        (
            "mem_ecc_repairable_uncorrected",
            hw.mem_ecc_repairable_uncorrected.get(),
            "HBM (repair pending)",
            ActionKind::DrainAndResetGpu,
        ),
    ];
    if let Some((file, c, what, kind)) = counts.iter().find(|(_, c, _, _)| c.is_some_and(|c| c > 0))
    {
        let evidence = counts
            .iter()
            .filter_map(|(f, c, _, _)| {
                c.filter(|c| *c > 0)
                    .map(|c| format!("stats/hardware/{f} = {c}"))
            })
            .collect();
        out.push(finding(
            "neuron.ecc_uncorrected",
            Severity::Critical,
            Some(g),
            format!(
                "{} ({}): {} uncorrectable {what} memory error(s) ({file}).",
                gpu_label(g),
                n.device,
                c.unwrap_or(0)
            ),
            evidence,
            *kind,
            action_detail(*kind, dev),
        ));
    }
    out
}
