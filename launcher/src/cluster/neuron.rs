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

#[cfg(test)]
mod tests {
    use super::super::vendor::NodeVendor;
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("a Node")
    }

    /// Any of the device plugin's three resources with a count makes a Neuron node; NFD's Amazon PCI label
    /// (every Nitro instance's ENA and NVMe), EFA's resource, a zero count or another vendor's do not.
    #[test]
    fn neuron_nodes_from_the_device_plugins_capacity_only() {
        for resource in [
            "aws.amazon.com/neuron",
            "aws.amazon.com/neurondevice",
            "aws.amazon.com/neuroncore",
        ] {
            let n = node(serde_json::json!({
                "metadata": {"name": "trn2"},
                "status": {"capacity": {resource: "16", "cpu": "192"}}
            }));
            assert!(Neuron.present(&n), "{resource}");
        }
        for not in [
            serde_json::json!({"metadata": {"name": "n", "labels": {
                "feature.node.kubernetes.io/pci-1d0f.present": "true",
                "node.kubernetes.io/instance-type": "trn2.48xlarge"}}}),
            serde_json::json!({"metadata": {"name": "n"}, "status": {"capacity": {
                "vpc.amazonaws.com/efa": "16", "aws.amazon.com/neuron": "0"}}}),
            serde_json::json!({"metadata": {"name": "n"}, "status": {"capacity": {
                "nvidia.com/gpu": "8", "habana.ai/gaudi": "8", "amd.com/gpu": "8"}}}),
            serde_json::json!({"metadata": {"name": "n"}}),
        ] {
            assert!(!Neuron.present(&node(not.clone())), "{not}");
        }
        assert_eq!(Neuron.info().vendor, GpuVendor::Neuron);
    }
}
