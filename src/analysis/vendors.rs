//! The analysis's vendors: the registry of `super::vendor::VendorAnalysis` (a file of its own, so a
//! vendor's module and the trait it implements never import the list that names it).

use crate::facts::{GpuVendor, NodeFacts};
use crate::finding::Finding;

use super::vendor::VendorAnalysis;

/// The one place an analysis is chosen by vendor.
pub fn of(v: GpuVendor) -> &'static dyn VendorAnalysis {
    match v {
        GpuVendor::Nvidia => &super::nvidia::Nvidia,
        GpuVendor::Amd => &super::amd::Amd,
        GpuVendor::Intel => &super::gaudi::Gaudi,
        GpuVendor::Neuron => &super::neuron::Neuron,
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
