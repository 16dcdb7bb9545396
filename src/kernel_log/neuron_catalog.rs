//! The neuron driver's (AWS Trainium, Inferentia) kernel-log events as data: what each means, how bad it is
//! and what to do in AWS's own vocabulary (`neuron-ls`, `neuron-top`, `neuron-monitor`; the driver's reset,
//! a write to `/sys/class/neuron_device/neuron<N>/reset`, which it runs only while no process holds the
//! device open, neuron_cdev.c:2985-2986, and whose outcome it shows by reading `reset` back, 1 ready and 2
//! invalid, neuron_device.h:59-63). The counterpart of `habanalabs_catalog.rs` for the lines
//! `grammar/neuron_lines.rs` recognises.
//!
//! Sources: aws-neuron/aws-neuron-driver at commit fca19f7d (`neuron_reset.c`, `neuron_dma.c`,
//! `neuron_cdev.c`), and aws/eks-node-monitoring-agent at 51af5494 for the `NEURON_HW_ERR` lines (its rules,
//! `monitors/neuron/monitor.go:68-89`, and their meanings, `docs/node-health-issues.adoc:48-62`, each a
//! condition that sets `AcceleratedHardwareReady` false).

use crate::finding::{ActionKind, Severity};

/// One kind of neuron kernel-log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeuronCatalogEntry {
    /// Stable id, also the decoded detail's `event`.
    pub id: &'static str,
    pub mnemonic: &'static str,
    /// The finding code (`neuron.*`).
    pub finding: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub action: ActionKind,
    /// What it means and what to do, in AWS's and the driver's words.
    pub meaning: &'static str,
    pub source: &'static str,
}

macro_rules! entry {
    ($id:literal, $mn:literal, $finding:literal, $title:literal, $sev:ident, $act:ident, $meaning:literal, $source:literal) => {
        NeuronCatalogEntry {
            id: $id,
            mnemonic: $mn,
            finding: $finding,
            title: $title,
            severity: Severity::$sev,
            action: ActionKind::$act,
            meaning: $meaning,
            source: $source,
        }
    };
}

/// Every entry. Order is only for reading.
pub static ENTRIES: &[NeuronCatalogEntry] = &[
    entry!(
        "hw_hbm_ue",
        "HBM_UNCORRECTABLE_ERROR",
        "neuron.hbm_uncorrectable",
        "HBM uncorrectable error",
        Critical,
        DrainAndResetGpu,
        "NeuronHBMUncorrectableError: \"An HBM encountered an uncorrectable error and produced incorrect results.\" The work on the device is wrong; drain it and reset the device; a repeat needs the instance replaced",
        "aws/eks-node-monitoring-agent monitors/neuron/monitor.go:82, docs/node-health-issues.adoc:52-54"
    ),
    entry!(
        "hw_sram_ue",
        "SRAM_UNCORRECTABLE_ERROR",
        "neuron.sram_uncorrectable",
        "SRAM uncorrectable error",
        Critical,
        DrainAndResetGpu,
        "NeuronSRAMUncorrectableError: \"An on-chip SRAM encountered a parity error and produced incorrect results.\" Drain the device and reset it; a repeat needs the instance replaced",
        "aws/eks-node-monitoring-agent monitors/neuron/monitor.go:68, docs/node-health-issues.adoc:60-62"
    ),
    entry!(
        "hw_nc_ue",
        "NC_UNCORRECTABLE_ERROR",
        "neuron.nc_uncorrectable",
        "NeuronCore uncorrectable error",
        Critical,
        DrainAndResetGpu,
        "NeuronNCUncorrectableError: \"A Neuron Core uncorrectable memory error was detected.\" Drain the device and reset it; a repeat needs the instance replaced",
        "aws/eks-node-monitoring-agent monitors/neuron/monitor.go:75, docs/node-health-issues.adoc:56-58"
    ),
    entry!(
        "hw_dma_error",
        "DMA_ERROR",
        "neuron.dma_error",
        "DMA error",
        Critical,
        DrainAndResetGpu,
        "NeuronDMAError: \"A DMA engine encountered an unrecoverable error.\" Drain the device and reset it",
        "aws/eks-node-monitoring-agent monitors/neuron/monitor.go:89, docs/node-health-issues.adoc:48-50"
    ),
    entry!(
        "reset_start",
        "RESET",
        "neuron.reset",
        "reset started",
        Info,
        None,
        "the driver started a device or NeuronCore (TPB) reset (it resets every device as it loads, neuron_pci.c:125); the lines after it say whether it completed, and a device left in reset reads `reset` 0",
        "aws-neuron-driver neuron_reset.c:111"
    ),
    entry!(
        "reset_done",
        "RESET_DONE",
        "neuron.reset",
        "reset completed",
        Info,
        None,
        "the driver's reset completed; the device is ready (`reset` reads 1)",
        "aws-neuron-driver neuron_reset.c:148"
    ),
    entry!(
        "reset_failed",
        "RESET_FAILED",
        "neuron.reset_failed",
        "reset failed",
        Critical,
        RebootNode,
        "the driver could not start the device's reset; a whole-device request leaves it invalid (`reset` reads 2, neuron_reset.c:168-172): the driver gave the device up",
        "aws-neuron-driver neuron_reset.c:119"
    ),
    entry!(
        "reset_incomplete",
        "RESET_INCOMPLETE",
        "neuron.reset_failed",
        "reset did not complete",
        Critical,
        RebootNode,
        "the device's reset was started but did not complete; a whole-device request leaves it invalid (`reset` reads 2): the driver gave the device up",
        "aws-neuron-driver neuron_reset.c:129"
    ),
    entry!(
        "reset_dma_failed",
        "RESET_DMA_FAILED",
        "neuron.reset_failed",
        "DMA not initialised after reset",
        Critical,
        RebootNode,
        "the device reset but its DMA engines could not be initialised; the reset counts as failed and the device is left invalid",
        "aws-neuron-driver neuron_reset.c:137"
    ),
    entry!(
        "reset_config_failed",
        "RESET_CONFIG_FAILED",
        "neuron.reset_failed",
        "post-reset configuration failed",
        Critical,
        RebootNode,
        "the device reset but its post-reset configuration failed; the reset counts as failed and the device is left invalid",
        "aws-neuron-driver neuron_reset.c:144"
    ),
    entry!(
        "dma_timeout",
        "DMA_TIMEOUT",
        "neuron.dma_timeout",
        "DMA completion timeout",
        Warning,
        Investigate,
        "a DMA transfer the driver waited on did not complete in time (the device is slow or hung); watch for a reset or hardware error after it",
        "aws-neuron-driver neuron_dma.c:270"
    ),
    entry!(
        "hbm_scrub_failed",
        "HBM_SCRUB_FAILED",
        "neuron.hbm_scrub_failed",
        "HBM scrub failed",
        Warning,
        Investigate,
        "the driver's scrub of one HBM did not complete",
        "aws-neuron-driver neuron_cdev.c:2397"
    ),
];

pub fn lookup(id: &str) -> Option<&'static NeuronCatalogEntry> {
    ENTRIES.iter().find(|e| e.id == id)
}

/// The concrete step for an action on a Neuron device, in AWS's tools; `device` is its class device
/// (`neuron3`), where known.
pub fn action_detail(kind: ActionKind, device: Option<&str>) -> String {
    let d = device.unwrap_or("neuron<N>");
    let reset = format!(
        "`echo 1 > /sys/class/neuron_device/{d}/reset` (the driver resets only a device no process holds open; `reset_gpu` in operator mode checks that and verifies the reset) and read `reset` back: 1 is ready, 2 the driver gave the device up"
    );
    match kind {
        ActionKind::None => "no action needed".into(),
        ActionKind::Monitor => "keep watching: `neuron-top`, and re-run `node-probe xid --since 1h`".into(),
        ActionKind::Investigate => "investigate: collect `neuron-ls`, `neuron-monitor` output and the kernel log lines above; escalate to AWS support if it repeats".into(),
        ActionKind::RestartApplication => "restart the affected application or pod; the device needs no reset".into(),
        ActionKind::CheckCooling | ActionKind::CheckPower | ActionKind::CheckMechanicals => "cordon and drain the node and replace the instance (stop and start it to move to other hardware)".into(),
        ActionKind::UpdateSoftware => "update the Neuron driver (aws-neuronx-dkms) and runtime".into(),
        ActionKind::RestartFabricManager => "restart the Neuron runtime's services".into(),
        ActionKind::ResetGpuWhenDrained => format!("when the device's work has drained, reset it: {reset}"),
        ActionKind::ResetGpu | ActionKind::DrainAndResetGpu => format!("cordon the node, stop the pods holding /dev/{d}, then {reset}; replace the instance if it repeats"),
        ActionKind::RebootNode => "cordon and drain the node and reboot it (the driver reloads and retries the device); replace the instance if the device stays invalid (`neuron-ls` misses it)".into(),
        // AWS's remedy for a device failed in hardware: a stopped and started instance lands on other
        // hardware (EKS's node monitoring agent marks such a node `AcceleratedHardwareReady=False`).
        ActionKind::Rma => "cordon and drain the node, then stop and start the instance so it moves to healthy hardware (a reboot keeps the same device); `neuron-ls` shows the devices afterwards".into(),
        ActionKind::ContactSupport => "collect `neuron-ls`, `neuron-monitor` output and the kernel log and contact AWS support".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_findings_use_the_driver_prefix() {
        let mut ids: Vec<&str> = ENTRIES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len());
        for e in ENTRIES {
            assert!(e.finding.starts_with("neuron."), "{}", e.id);
        }
        assert!(
            action_detail(ActionKind::DrainAndResetGpu, Some("neuron3"))
                .contains("/sys/class/neuron_device/neuron3/reset")
        );
    }
}
