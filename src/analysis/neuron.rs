//! What only AWS Neuron devices (Trainium, Inferentia) show, judged in AWS's words: the device state the
//! neuron driver reports (`reset`: a device it gave up on reads invalid), the firmware's uncorrected ECC
//! counts (`stats/hardware/`), and each NeuronCore's uncorrectable-error counts. Formats: the facts'
//! module (`crate::facts::neuron`), which cites the driver's printers.

use crate::facts::neuron::{
    NEURON_DEVICE_STATE_INVALID, NEURON_DEVICE_STATE_RESET, NeuronGpuFacts,
};
use crate::facts::{FieldError, FieldErrorKind, GpuFacts, GpuVendor, NodeFacts, Reading};
use crate::finding::{ActionKind, Finding, Severity};
use crate::kernel_log::neuron_catalog::action_detail;
use crate::options::AnalysisOptions;

use super::ecc_entry::{EccCounts, GpuEcc};
use super::vendor::{EccEntry, VendorAnalysis, VendorEcc};
use super::{GpuRef, finding, gpu_label};

fn devices(facts: &NodeFacts) -> impl Iterator<Item = (&GpuFacts, &NeuronGpuFacts)> {
    facts
        .gpus
        .iter()
        .filter_map(|g| g.neuron.as_ref().map(|n| (g, n)))
}

fn core_total(
    n: &NeuronGpuFacts,
    f: fn(&crate::facts::neuron::NeuronCoreFacts) -> &Reading<u64>,
) -> u64 {
    n.cores.iter().filter_map(|c| f(c).get()).sum()
}

/// An NVML-shaped field the neuron driver does not show.
fn none_here<T>() -> Reading<T> {
    Reading::Err(FieldError::with_message(
        FieldErrorKind::NotSupported,
        "not in the neuron driver's sysfs",
    ))
}

/// AWS Neuron behind the analysis's seam.
pub struct Neuron;

impl VendorAnalysis for Neuron {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Neuron
    }

    fn judge(&self, facts: &NodeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        for (g, n) in devices(facts) {
            let who = gpu_label(g);
            let dev = if n.device.is_empty() {
                "the device"
            } else {
                n.device.as_str()
            };
            match n.device_state.get() {
                Some(NEURON_DEVICE_STATE_INVALID) => out.push(finding(
                    "neuron.device_invalid",
                    Severity::Critical,
                    Some(g),
                    format!("{who} ({dev}): the neuron driver gave the device up (state invalid: its last reset failed or its reset thread stopped); no work can run on it."),
                    vec![format!("/sys/class/neuron_device/{dev}/reset = {NEURON_DEVICE_STATE_INVALID} (invalid)")],
                    ActionKind::RebootNode,
                    action_detail(ActionKind::RebootNode, Some(dev)),
                )),
                Some(NEURON_DEVICE_STATE_RESET) => out.push(finding(
                    "neuron.device_in_reset",
                    Severity::Warning,
                    Some(g),
                    format!("{who} ({dev}) is being reset by the neuron driver: work on it was stopped."),
                    vec![format!("/sys/class/neuron_device/{dev}/reset = {NEURON_DEVICE_STATE_RESET} (in reset)")],
                    ActionKind::Monitor,
                    "read the device again in a minute: a reset that does not finish leaves it invalid".into(),
                )),
                _ => {}
            }
            let hw = &n.hardware;
            let hbm = hw.mem_ecc_uncorrected.get().unwrap_or(0);
            let sram = hw.sram_ecc_uncorrected.get().unwrap_or(0);
            let hbm_ue_runs = core_total(n, |c| &c.hbm_ue_error);
            let nc_ue_runs = core_total(n, |c| &c.nc_ue_error);
            if hbm > 0 || sram > 0 {
                out.push(finding(
                    "neuron.ecc_uncorrectable",
                    Severity::Critical,
                    Some(g),
                    format!("{who} ({dev}) has {hbm} uncorrectable HBM and {sram} uncorrectable SRAM error(s) the device's ECC could not correct or repair: work on it was corrupted or ended."),
                    vec![
                        format!("stats/hardware: mem_ecc_uncorrected = {hbm}, sram_ecc_uncorrected = {sram}"),
                        format!("NeuronCore executions ended by HBM UE: {hbm_ue_runs}, by NeuronCore UE: {nc_ue_runs}"),
                    ],
                    ActionKind::Rma,
                    action_detail(ActionKind::Rma, Some(dev)),
                ));
            } else if hbm_ue_runs > 0 || nc_ue_runs > 0 {
                out.push(finding(
                    "neuron.core_uncorrectable",
                    Severity::Critical,
                    Some(g),
                    format!("{who} ({dev}): {} NeuronCore execution(s) ended by an uncorrectable error ({hbm_ue_runs} HBM, {nc_ue_runs} NeuronCore)", hbm_ue_runs + nc_ue_runs),
                    vec![format!("neuron_core<n>/stats/status: hw_hbm_ue_error = {hbm_ue_runs}, hw_nc_ue_error = {nc_ue_runs}")],
                    ActionKind::Rma,
                    action_detail(ActionKind::Rma, Some(dev)),
                ));
            }
            let repairable = hw.mem_ecc_repairable_uncorrected.get().unwrap_or(0);
            if repairable > 0 {
                out.push(finding(
                    "neuron.hbm_repair_pending",
                    Severity::Warning,
                    Some(g),
                    format!("{who} ({dev}) has {repairable} uncorrected HBM error(s) whose repair is pending: the repair takes effect when the device is reset."),
                    vec![format!("stats/hardware: mem_ecc_repairable_uncorrected = {repairable}")],
                    ActionKind::ResetGpuWhenDrained,
                    action_detail(ActionKind::ResetGpuWhenDrained, Some(dev)),
                ));
            }
        }
        out
    }

    /// The driver's state in its words, and why the shared telemetry fields are empty: the neuron driver's
    /// sysfs has no temperature, power, clock or utilization file (neuron_sysfs_metrics.c's tree is error
    /// and memory-use counters); the runtime's `neuron-monitor` and `neuron-top` report them.
    fn clocks_line(&self, _facts: &NodeFacts, g: &GpuFacts) -> Option<String> {
        let n = g.neuron.as_ref()?;
        let state = match n.device_state.get() {
            Some(NEURON_DEVICE_STATE_INVALID) => "invalid (given up by the driver)".to_string(),
            Some(NEURON_DEVICE_STATE_RESET) => "in reset".to_string(),
            Some(s) if s == crate::facts::neuron::NEURON_DEVICE_STATE_READY => "ready".to_string(),
            Some(s) => format!("{s} (not a state the driver defines)"),
            None => "unreadable".to_string(),
        };
        Some(format!(
            "neuron driver state {state}; no temperature, power, clock or utilization in the neuron driver's sysfs (`neuron-monitor` and `neuron-top` report them)."
        ))
    }

    /// No NVML-shaped counter: the driver's uncorrected counts are the device firmware's (see
    /// [`Self::ecc_caveat`]).
    fn ecc(&self, facts: &NodeFacts, _: &AnalysisOptions, gpus: &[&GpuFacts]) -> VendorEcc {
        let findings: Vec<Finding> = self
            .judge(facts)
            .into_iter()
            .filter(|f| f.code.contains("ecc") || f.code.contains("hbm"))
            .collect();
        let entries = gpus
            .iter()
            .map(|g| {
                let hw = g
                    .neuron
                    .as_ref()
                    .map(|n| n.hardware.clone())
                    .unwrap_or_default();
                let count = |r: &Reading<u64>| {
                    r.get()
                        .map_or_else(|| "unreadable".to_string(), |v| v.to_string())
                };
                EccEntry::Own(Box::new(GpuEcc {
                    gpu: GpuRef::of(g),
                    mode: none_here(),
                    volatile: EccCounts {
                        corrected: none_here(),
                        uncorrected: none_here(),
                    },
                    aggregate: EccCounts {
                        corrected: none_here(),
                        uncorrected: hw.mem_ecc_uncorrected.clone(),
                    },
                    by_location: Vec::new(),
                    retired_pages: none_here(),
                    remapped_rows: none_here(),
                    row_remapper_histogram: none_here(),
                    sram_threshold_exceeded: none_here(),
                    volatile_counters_reliable: none_here(),
                    verdict: format!(
                        "AWS Neuron: HBM uncorrected {}, repair pending {}; SRAM uncorrected {}",
                        count(&hw.mem_ecc_uncorrected),
                        count(&hw.mem_ecc_repairable_uncorrected),
                        count(&hw.sram_ecc_uncorrected)
                    ),
                }))
            })
            .collect();
        VendorEcc { entries, findings }
    }

    fn ecc_caveat(&self) -> &'static str {
        "AWS Neuron: the neuron driver's stats/hardware counts (mem_ecc_uncorrected, mem_ecc_repairable_uncorrected, sram_ecc_uncorrected) are the device firmware's uncorrected errors; it shows no corrected counts and no row remapping."
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::neuron::{NEURON_DEVICE_STATE_READY, NeuronHardwareFacts};

    fn node(state: u32, hbm: u64, repairable: u64) -> NodeFacts {
        NodeFacts {
            gpus: vec![GpuFacts {
                index: 0,
                vendor: GpuVendor::Neuron,
                neuron: Some(NeuronGpuFacts {
                    device: "neuron0".into(),
                    device_state: Reading::Ok(state),
                    hardware: NeuronHardwareFacts {
                        mem_ecc_uncorrected: Reading::Ok(hbm),
                        mem_ecc_repairable_uncorrected: Reading::Ok(repairable),
                        sram_ecc_uncorrected: Reading::Ok(0),
                    },
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.code.as_str(), f.severity)).collect()
    }

    /// A ready device without errors says nothing; a device the driver gave up on, or with an
    /// uncorrectable HBM error, is critical on that device; a pending repair is a warning.
    #[test]
    fn the_drivers_state_and_uncorrected_counts_are_judged_on_the_device() {
        assert!(
            Neuron
                .judge(&node(NEURON_DEVICE_STATE_READY, 0, 0))
                .is_empty()
        );
        let f = Neuron.judge(&node(NEURON_DEVICE_STATE_INVALID, 0, 0));
        assert_eq!(codes(&f), [("neuron.device_invalid", Severity::Critical)]);
        assert_eq!(f[0].gpu, Some(0));
        let f = Neuron.judge(&node(NEURON_DEVICE_STATE_READY, 2, 1));
        assert_eq!(
            codes(&f),
            [
                ("neuron.ecc_uncorrectable", Severity::Critical),
                ("neuron.hbm_repair_pending", Severity::Warning)
            ]
        );
        // Health reads them through the seam, and the ECC report gives its own entry.
        let facts = node(NEURON_DEVICE_STATE_READY, 2, 0);
        let h = super::super::health::analyze(&facts, &AnalysisOptions::default());
        assert_eq!(h.verdict, crate::finding::Verdict::Unhealthy);
        let e = super::super::ecc::analyze(&facts, &AnalysisOptions::default());
        assert_eq!(e.gpus.len(), 1);
        assert!(
            e.gpus[0]
                .verdict
                .starts_with("AWS Neuron: HBM uncorrected 2")
        );
        assert!(e.persistence_caveat.starts_with("AWS Neuron:"));
    }
}
