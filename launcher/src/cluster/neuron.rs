//! How the cluster shows a node's AWS Neuron devices: the Neuron device plugin's resources
//! (`aws.amazon.com/neuron`, `neurondevice`, `neuroncore`). No label says it (NFD's `pci-1d0f` is every
//! Nitro instance's: see the library's vendors' table).

use gpu_diag::facts::{GpuVendor, VendorInfo};
use k8s_openapi::api::core::v1::Node;

/// AWS Neuron behind the cluster's seam.
pub struct Neuron;

impl super::vendor::NodeVendor for Neuron {
    fn info(&self) -> &'static VendorInfo {
        &gpu_diag::facts::vendor::AWS_NEURON
    }

    fn present(&self, n: &Node) -> bool {
        let capacity = n.status.as_ref().and_then(|s| s.capacity.as_ref());
        super::vendor::resources_of(capacity, GpuVendor::Neuron)
            .values()
            .any(|v| *v > 0)
    }
}
