//! How the cluster shows each vendor's nodes, behind one interface: whether a Node object says it
//! carries a vendor's devices, and the counts every vendor's whole-device resource adds to. A vendor of
//! the library's table (`gpu_diag::facts::VENDORS`) gets one arm in `super::vendors::of` and a file of its
//! own here.

use std::collections::BTreeMap;

use gpu_diag::facts::{GpuVendor, VendorInfo, gpu_resource_vendor};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// What the cluster shows of one vendor's nodes.
pub trait NodeVendor: Sync {
    fn info(&self) -> &'static VendorInfo;
    /// Whether the Node object (its capacity, its labels) says it carries this vendor's devices.
    fn present(&self, n: &Node) -> bool;
}

/// A resource list's GPU resources of one vendor, as integers; which resources are GPUs is the library's
/// vendors' table's (`gpu_diag::facts::gpu_resource`), the one list.
pub fn resources_of(
    map: Option<&BTreeMap<String, Quantity>>,
    v: GpuVendor,
) -> BTreeMap<String, u64> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| gpu_resource_vendor(k) == Some(v))
        .map(|(k, q)| (k.clone(), count(q)))
        .collect()
}

/// An integer count from a quantity (`8`, `8k`, `1Ki`); extended resources are integers.
pub fn count(q: &Quantity) -> u64 {
    let s = q.0.trim();
    let (num, mult) = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ]
    .iter()
    .find_map(|(suffix, m)| s.strip_suffix(suffix).map(|n| (n, *m)))
    .unwrap_or((s, 1));
    num.parse::<u64>()
        .map(|n| n.saturating_mul(mult))
        .or_else(|_| num.parse::<f64>().map(|f| (f * mult as f64) as u64))
        .unwrap_or(0)
}
