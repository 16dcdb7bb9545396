//! Intel Gaudi nodes as the cluster shows them: the device plugin's `habana.ai/gaudi` capacity (one
//! resource for Gaudi, Gaudi 2 and Gaudi 3: HabanaAI/habanalabs-k8s-device-plugin 1.16.0 `main.go:89`, the
//! family from gohlml v1.14.0 `getDeviceName`), and Node Feature Discovery's PCI label for vendor 1da3,
//! which Intel's Gaudi provisioning guide for OpenShift checks before anything else is installed
//! (intel/intel-technology-enabling-for-openshift `gaudi/README.md`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub use gpu_diag::attribution::device::GAUDI_RESOURCE;

/// Node Feature Discovery's label for a PCI device of Habana Labs' vendor id (the library's vendors' table).
const PRESENT_LABELS: &[&str] = gpu_diag::facts::vendor::INTEL_GAUDI.present_labels;

/// The Gaudi devices a resource list offers or asks for.
pub fn devices(map: Option<&BTreeMap<String, Quantity>>) -> u64 {
    map.and_then(|m| m.get(GAUDI_RESOURCE))
        .map_or(0, super::vendor::count)
}

/// Whether the node's capacity or labels say it carries Gaudi devices.
pub fn has_gaudi(n: &Node) -> bool {
    let capacity = n.status.as_ref().and_then(|s| s.capacity.as_ref());
    let labels = n.metadata.labels.as_ref();
    devices(capacity) > 0
        || PRESENT_LABELS
            .iter()
            .any(|k| labels.and_then(|l| l.get(*k)).is_some_and(|v| v == "true"))
}

/// Intel Gaudi behind the cluster's seam.
pub struct Gaudi;

impl super::vendor::NodeVendor for Gaudi {
    fn info(&self) -> &'static gpu_diag::facts::VendorInfo {
        &gpu_diag::facts::vendor::INTEL_GAUDI
    }

    fn present(&self, n: &Node) -> bool {
        has_gaudi(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn gaudi_nodes_from_capacity_or_the_nfd_label() {
        let plugin = node(serde_json::json!({
            "metadata": {"name": "g"},
            "status": {"capacity": {"habana.ai/gaudi": "8", "cpu": "160"}}
        }));
        assert!(has_gaudi(&plugin));
        assert_eq!(
            devices(plugin.status.as_ref().unwrap().capacity.as_ref()),
            8
        );
        let nfd = node(serde_json::json!({
            "metadata": {"name": "g", "labels": {"feature.node.kubernetes.io/pci-1da3.present": "true"}}
        }));
        assert!(has_gaudi(&nfd));
        // Zero capacity (the plugin not yet running) and NVIDIA's or AMD's labels are not Gaudi's.
        let other = node(serde_json::json!({
            "metadata": {"name": "n", "labels": {"feature.node.kubernetes.io/pci-10de.present": "true",
                "feature.node.kubernetes.io/pci-1da3.present": "false"}},
            "status": {"capacity": {"habana.ai/gaudi": "0", "amd.com/gpu": "8"}}
        }));
        assert!(!has_gaudi(&other));
    }
}
