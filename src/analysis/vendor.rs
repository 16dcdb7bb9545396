//! The analysis's vendor seam: what each vendor judges only it can, behind one interface, with NVIDIA a
//! vendor like the others. Health and describe take their vendors' findings from here, telemetry a GPU's
//! clocks line, the ECC report each vendor's entries and caveat; a vendor added to the vendors' table
//! (`facts::VENDORS`) gets one arm in [`of`].

use crate::facts::{GpuFacts, GpuVendor, NodeFacts};
use crate::finding::Finding;
use crate::options::AnalysisOptions;

use super::ecc::GpuEcc;

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
    /// The ECC report's entries for its GPUs (`gpus`, in the node's order) and its memory findings.
    fn ecc(
        &self,
        facts: &NodeFacts,
        opts: &AnalysisOptions,
        gpus: &[&GpuFacts],
        persistenced: Option<bool>,
    ) -> (Vec<GpuEcc>, Vec<Finding>);
    /// What its memory counters cover, said once in the ECC report.
    fn ecc_caveat(&self) -> &'static str;
}

/// The one place an analysis is chosen by vendor.
pub fn of(v: GpuVendor) -> &'static dyn VendorAnalysis {
    match v {
        GpuVendor::Nvidia => &super::nvidia::Nvidia,
        GpuVendor::Amd => &super::amd::Amd,
        GpuVendor::Intel => &super::gaudi::Gaudi,
    }
}

/// Every vendor's analysis, in the vendors' table's order.
pub fn all() -> impl Iterator<Item = &'static dyn VendorAnalysis> {
    crate::facts::VENDORS.iter().map(|v| of(v.vendor))
}

/// Every vendor's own findings about the node, in the vendors' table's order.
pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    all().flat_map(|v| v.judge(facts)).collect()
}
