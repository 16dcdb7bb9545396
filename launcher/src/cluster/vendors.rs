//! The cluster's vendors: the registry of `super::vendor::NodeVendor` (a file of its own, so a vendor's
//! file and the trait it implements never import the list that names it).

use gpu_diag::facts::{GpuVendor, VENDORS};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::vendor::NodeVendor;

/// The one place a node's vendor facts are chosen by vendor.
pub fn of(v: GpuVendor) -> &'static dyn NodeVendor {
    match v {
        GpuVendor::Nvidia => &super::nvidia::Nvidia,
        GpuVendor::Amd => &super::amd::Amd,
        GpuVendor::Intel => &super::gaudi::Gaudi,
        GpuVendor::Neuron => &super::neuron::Neuron,
    }
}

/// Every vendor, in the table's order.
pub fn all() -> impl Iterator<Item = &'static dyn NodeVendor> {
    VENDORS.iter().map(|v| of(v.vendor))
}

/// The node's vendor: the first whose devices it shows, in the table's order (NVIDIA's first: a node
/// with another vendor's devices beside NVIDIA's counts as NVIDIA's); NVIDIA where none shows.
pub fn of_node(n: &Node) -> GpuVendor {
    all()
        .find(|v| v.present(n))
        .map_or(GpuVendor::Nvidia, |v| v.info().vendor)
}

/// Carries accelerators of any vendor, by its capacity or labels. A node only a DRA driver's slices
/// name is added by `list_gpu_nodes` from the slices.
pub fn is_gpu_node(n: &Node) -> bool {
    all().any(|v| v.present(n))
}

/// Whole devices of every vendor in a resource list (capacity, allocatable).
pub fn whole_devices(map: Option<&BTreeMap<String, Quantity>>) -> u64 {
    VENDORS
        .iter()
        .filter_map(|v| map.and_then(|m| m.get(v.whole_gpu_resource)))
        .map(super::vendor::count)
        .sum()
}

/// Whole devices of every vendor a pod requests (a pod on an AMD node requests `amd.com/gpu`).
pub fn pod_devices(p: &Pod) -> u64 {
    VENDORS
        .iter()
        .map(|v| super::gpu_resources::pod_request(p, v.whole_gpu_resource))
        .sum()
}
