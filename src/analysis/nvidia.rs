//! What only NVIDIA's GPUs show, judged: NVML's GPU recovery action, a pending MIG mode change, NVML
//! itself hung, the IMEX domain; and the ECC report's NVML fields (`super::ecc`, shared with AMD's, which
//! fill the same fields). Xids are the kernel log's (`crate::kernel_log`).

use crate::facts::{FieldErrorKind, GpuFacts, GpuVendor, NodeFacts};
use crate::finding::{ActionKind, Finding, Severity};
use crate::options::AnalysisOptions;

use super::vendor::{EccEntry, VendorAnalysis, VendorEcc};
use super::{finding, gpu_label};

/// Said once per report because it changes what every volatile count means.
pub const PERSISTENCE_CAVEAT: &str = "Volatile ECC counters reset whenever the driver loads. Without persistence mode (or nvidia-persistenced) the driver unloads when the last GPU client exits, so volatile counts then cover only the time since the current client started; aggregate counters are lifetime totals.";

/// NVIDIA behind the analysis's seam.
pub struct Nvidia;

impl VendorAnalysis for Nvidia {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Nvidia
    }

    fn gpu_findings(&self, g: &GpuFacts) -> Vec<Finding> {
        let who = gpu_label(g);
        let i = g.index;
        let mut out = Vec::new();
        // NVML's GPU recovery action judged once, where the kernel log judges it and an Xid 154's target: one
        // finding for a value, whoever reads it.
        if let Some(v) = g.recovery_action.get()
            && let Some(f) = crate::kernel_log::report::recovery_action_finding(
                v,
                Some(i),
                g.uuid.ok().cloned(),
                super::canonical_bus_id(&g.pci_bus_id)
                    .ok()
                    .map(String::as_str),
            )
        {
            out.push(f);
        }
        if let Some(m) = g.mig_mode.ok()
            && m.current != m.pending
        {
            out.push(finding(
                "mig.mode_pending",
                Severity::Warning,
                Some(g),
                format!(
                    "{who} has a MIG mode change pending (current {}, pending {}): it applies only after a GPU reset, and until then the GPU is not in the mode it was configured for.",
                    on_off(m.current),
                    on_off(m.pending)
                ),
                vec![format!("mig_mode = current {}, pending {}", on_off(m.current), on_off(m.pending))],
                ActionKind::ResetGpuWhenDrained,
                format!("reset GPU {i} when drained (nvidia-smi -r -i {i}) to apply the MIG mode, then recreate instances"),
            ));
        }
        out
    }

    fn judge(&self, facts: &NodeFacts) -> Vec<Finding> {
        let mut out = Vec::new();
        if let Some(e) = facts.device_count.err()
            && e.error == FieldErrorKind::Timeout
        {
            // NVML blocking is itself the symptom: a GPU or GSP firmware not answering the driver.
            out.push(finding(
                "nvml.hung",
                Severity::Critical,
                None,
                "NVML did not answer: a GPU or the driver is hung, so no GPU on this node can be read and work on it is likely stuck.".into(),
                vec![format!(
                    "device_count = timeout{}",
                    e.message.as_deref().map_or(String::new(), |m| format!(" ({m})"))
                )],
                ActionKind::RebootNode,
                "read the kernel log (analyze_xid_errors) for Xid 79, 119, 120 or 154 to find the GPU, then drain the node and reboot it; an in-band GPU reset needs a responsive driver".into(),
            ));
        }
        out.extend(crate::incident::imex::node_findings(facts.imex.as_ref()));
        out
    }

    fn ecc(&self, _: &NodeFacts, _: &AnalysisOptions, gpus: &[&GpuFacts]) -> VendorEcc {
        VendorEcc {
            entries: gpus
                .iter()
                .map(|_| EccEntry::NvmlShaped { line: None })
                .collect(),
            findings: Vec::new(),
        }
    }

    fn ecc_caveat(&self) -> &'static str {
        PERSISTENCE_CAVEAT
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}
