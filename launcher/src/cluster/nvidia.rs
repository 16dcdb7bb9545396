//! How the cluster shows a node's NVIDIA GPUs: `nvidia.com/*` capacity (the device plugin's GPUs and MIG
//! slices) or a label of GFD or NFD that says they are present (the library's vendors' table says why
//! each).

use gpu_diag::facts::{GpuVendor, VendorInfo};
use k8s_openapi::api::core::v1::Node;

/// NVIDIA behind the cluster's seam.
pub struct Nvidia;

impl super::vendor::NodeVendor for Nvidia {
    fn info(&self) -> &'static VendorInfo {
        &gpu_diag::facts::vendor::NVIDIA
    }

    fn present(&self, n: &Node) -> bool {
        let capacity = n.status.as_ref().and_then(|s| s.capacity.as_ref());
        super::vendor::resources_of(capacity, GpuVendor::Nvidia)
            .values()
            .any(|v| *v > 0)
            || labelled(n)
    }
}

/// A label says NVIDIA GPUs are present.
pub fn labelled(n: &Node) -> bool {
    let labels = n.metadata.labels.as_ref();
    gpu_diag::facts::vendor::NVIDIA
        .present_labels
        .iter()
        .any(|k| labels.and_then(|l| l.get(*k)).is_some_and(|v| v == "true"))
}
