//! The analysis's vendor seam: what each vendor judges only it can, behind one interface, with NVIDIA a
//! vendor like the others. Health and describe take their vendors' findings from here, telemetry a GPU's
//! clocks line, the ECC report each vendor's entries and caveat; a vendor added to the vendors' table
//! (`facts::VENDORS`) gets one arm in `super::vendors::of`.

use crate::facts::{GpuFacts, GpuVendor, NodeFacts};
use crate::finding::Finding;
use crate::options::AnalysisOptions;

use super::ecc_entry::GpuEcc;

/// What one vendor's analysis provides.
pub trait VendorAnalysis: Sync {
    fn vendor(&self) -> GpuVendor;
    /// Findings about one of its GPUs among health's own rules (NVML's recovery action, a pending MIG
    /// change): said in the GPU's place, after "could not be read".
    fn gpu_findings(&self, _g: &GpuFacts) -> Vec<Finding> {
        Vec::new()
    }
    /// Findings only it makes about the node and its GPUs (RAS, bad pages, a Gaudi's status, IMEX).
    fn judge(&self, _facts: &NodeFacts) -> Vec<Finding> {
        Vec::new()
    }
    /// A GPU's clocks line in its words; `None`: the shared line read from the shared fields.
    fn clocks_line(&self, _facts: &NodeFacts, _g: &GpuFacts) -> Option<String> {
        None
    }
    /// The ECC report's entries for its GPUs (`gpus`, in the node's order, one entry each) and its
    /// memory findings.
    fn ecc(&self, facts: &NodeFacts, opts: &AnalysisOptions, gpus: &[&GpuFacts]) -> VendorEcc;
    /// What its memory counters cover, said once in the ECC report.
    fn ecc_caveat(&self) -> &'static str;
}

/// One GPU's entry of the ECC report as its vendor gives it.
pub enum EccEntry {
    /// Read through NVML's ECC fields (NVIDIA's; AMD's probe fills the same fields), judged by the shared
    /// rules, with the vendor's own memory line where it has one.
    NvmlShaped { line: Option<String> },
    /// The vendor's own entry.
    Own(Box<GpuEcc>),
}

/// A vendor's part of the ECC report.
pub struct VendorEcc {
    pub entries: Vec<EccEntry>,
    pub findings: Vec<Finding>,
}
