//! AMD Instinct nodes as the API server shows them: the resources AMD's device plugin advertises, the
//! labels of its node labeller and of the GPU Operator's Node Feature Discovery rule, and what AMD's DRA
//! driver publishes in ResourceSlices. Which nodes are AMD GPU nodes, and what the listing says of them
//! (vendor, product, count, partition mode).
//!
//! Sources (public): ROCm/k8s-device-plugin (`amd.com/gpu`, or `amd.com/<compute>_<memory>` with
//! `--resource_naming_strategy mixed`; the labeller's `amd.com/gpu.*` labels, `beta.amd.com/gpu.*` the
//! legacy prefix, and `amd.com/compute-memory-partition`: docs/user-guide/configuration.md,
//! docs/advanced/node-labelling.md), ROCm/gpu-operator (NFD rule `feature.node.kubernetes.io/amd-gpu`:
//! helm-charts-k8s/templates/gpu-nfd-default-rule.yaml), ROCm/k8s-gpu-dra-driver (driver `gpu.amd.com`,
//! device attributes `type`, `productName`, `partitionProfile`, `pciAddr`: docs).
//!
//! Labels are written by the labeller's service account, yet anyone who can label nodes can write them:
//! every value is bounded and stripped ([`platform::clean`]) before it is shown.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use serde::{Deserialize, Serialize};

use gpu_diag::incident::platform::{self, MAX_NAME};

/// AMD's device plugin resource for whole GPUs (naming strategy `single`).
pub const AMD_GPU_RESOURCE: &str = gpu_diag::facts::vendor::AMD.whole_gpu_resource;
/// AMD's DRA driver.
pub const AMD_DRA_DRIVER: &str = gpu_diag::attribution::dra::AMD_DRIVER;

/// Labels that say a node has AMD GPUs: the library's vendors' table (`gpu_diag::facts::vendor::AMD`:
/// the GPU Operator's NFD rule, NFD's PCI labels for vendor 1002 with the class MI300-class GPUs show).
const AMD_PRESENT_LABELS: &[&str] = gpu_diag::facts::vendor::AMD.present_labels;

/// The labeller's label prefixes: current, then legacy.
const LABEL_PREFIXES: &[&str] = &["amd.com/gpu.", "beta.amd.com/gpu."];

/// What the API server says about a node's AMD GPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AmdNodeFacts {
    /// `amd.com/gpu.product-name` (`AMD_Instinct_MI300X_OAM`), else the DRA devices' `productName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// `amd.com/gpu.device-id` (`74a1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// `amd.com/gpu.vram` (`192G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram: Option<String>,
    /// `amd.com/gpu.driver-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// The compute and memory partition mode: `amd.com/compute-memory-partition` (`cpx_nps4`), else the DRA
    /// devices' `partitionProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Partition resources (`amd.com/cpx_nps4`: capacity), with the device plugin's `mixed` naming.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partition_resources: BTreeMap<String, u64>,
    /// Whole GPUs and partitions AMD's DRA driver publishes in the node's ResourceSlices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra_gpus: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra_partitions: Option<u64>,
}

impl AmdNodeFacts {
    /// `AMD_Instinct_MI300X_OAM, partition cpx_nps4 (amd.com/cpx_nps4=32), DRA 8 GPUs`: what the node line
    /// says after the GPU counts.
    pub fn brief(&self) -> String {
        let mut parts = vec![
            gpu_diag::facts::GpuVendor::Amd
                .info()
                .product_label(self.product.as_deref()),
        ];
        if let Some(d) = &self.driver {
            parts.push(format!("driver {d}"));
        }
        if let Some(p) = &self.partition {
            parts.push(format!("partition {p}"));
        }
        if !self.partition_resources.is_empty() {
            let r: Vec<String> = self
                .partition_resources
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(r.join(" "));
        }
        match (self.dra_gpus, self.dra_partitions) {
            (Some(g), Some(p)) if p > 0 => {
                parts.push(format!("{AMD_DRA_DRIVER}: {g} GPU(s), {p} partition(s)"))
            }
            (Some(g), _) => parts.push(format!("{AMD_DRA_DRIVER}: {g} GPU(s)")),
            _ => {}
        }
        parts.join(", ")
    }
}

fn label<'a>(n: &'a Node, key: &str) -> Option<&'a str> {
    n.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// A labeller label, current prefix first.
fn labeller(n: &Node, field: &str) -> Option<String> {
    LABEL_PREFIXES
        .iter()
        .find_map(|p| label(n, &format!("{p}{field}")))
        .map(|v| platform::clean(v, MAX_NAME))
        .filter(|v| !v.is_empty())
}

/// Whether the node's labels or its AMD GPU capacity (`cap`, from `gpu_resources::amd_resources`) say it
/// has AMD GPUs.
pub fn has_amd_gpus(n: &Node, cap: &BTreeMap<String, u64>) -> bool {
    cap.values().any(|v| *v > 0)
        || AMD_PRESENT_LABELS
            .iter()
            .any(|k| label(n, k).is_some_and(|v| v == "true"))
        || n.metadata.labels.iter().flatten().any(|(k, _)| {
            LABEL_PREFIXES.iter().any(|p| k.starts_with(p))
                || k == "amd.com/compute-memory-partition"
        })
}

/// The node's AMD facts, or `None` where nothing on the Node object says it has AMD GPUs.
pub fn node_facts(n: &Node, cap: &BTreeMap<String, u64>) -> Option<AmdNodeFacts> {
    if !has_amd_gpus(n, cap) {
        return None;
    }
    Some(AmdNodeFacts {
        product: labeller(n, "product-name"),
        device_id: labeller(n, "device-id"),
        vram: labeller(n, "vram"),
        driver: labeller(n, "driver-version"),
        partition: label(n, "amd.com/compute-memory-partition")
            .map(|v| platform::clean(v, MAX_NAME))
            .filter(|v| !v.is_empty()),
        partition_resources: cap
            .iter()
            .filter(|(k, _)| *k != AMD_GPU_RESOURCE)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        dra_gpus: None,
        dra_partitions: None,
    })
}

/// What AMD's DRA driver publishes for one node, summed over its slices.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SliceDevices {
    pub gpus: u64,
    pub partitions: u64,
    pub product: Option<String>,
    pub partition_profile: Option<String>,
}

impl SliceDevices {
    /// One device of a `gpu.amd.com` slice (`body`: the device, or v1beta1's `basic`): its `type`
    /// attribute says whole GPU (`amdgpu`) or partition (`amdgpu-partition`).
    pub fn add(&mut self, body: &serde_json::Value) {
        let attr = |k: &str| {
            body.get("attributes")
                .and_then(|a| a.get(k))
                .and_then(|v| v.get("string"))
                .and_then(serde_json::Value::as_str)
                .map(|v| platform::clean(v, MAX_NAME))
                .filter(|v| !v.is_empty())
        };
        match attr("type").as_deref() {
            Some("amdgpu-partition") => self.partitions += 1,
            _ => self.gpus += 1,
        }
        if self.product.is_none() {
            self.product = attr("productName");
        }
        if self.partition_profile.is_none() {
            self.partition_profile = attr("partitionProfile");
        }
    }

    /// Adds the slices' word to a node's facts (the labels win where both say).
    pub fn fill(&self, facts: &mut AmdNodeFacts) {
        facts.dra_gpus = Some(self.gpus);
        facts.dra_partitions = Some(self.partitions);
        if facts.product.is_none() {
            facts.product = self.product.clone();
        }
        if facts.partition.is_none() {
            facts.partition = self.partition_profile.clone();
        }
    }
}

/// AMD behind the cluster's seam.
pub struct Amd;

impl super::vendor::NodeVendor for Amd {
    fn info(&self) -> &'static gpu_diag::facts::VendorInfo {
        &gpu_diag::facts::vendor::AMD
    }

    fn present(&self, n: &Node) -> bool {
        let capacity = n.status.as_ref().and_then(|s| s.capacity.as_ref());
        has_amd_gpus(
            n,
            &super::vendor::resources_of(capacity, gpu_diag::facts::GpuVendor::Amd),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    /// The node's AMD GPU capacity as the backend reads it (whole counts here).
    fn cap(n: &Node) -> BTreeMap<String, u64> {
        n.status
            .iter()
            .flat_map(|s| s.capacity.iter().flatten())
            .filter(|(k, _)| {
                gpu_diag::facts::gpu_resource_vendor(k) == Some(gpu_diag::facts::GpuVendor::Amd)
            })
            .map(|(k, v)| (k.clone(), v.0.parse().unwrap()))
            .collect()
    }

    fn facts(n: &Node) -> Option<AmdNodeFacts> {
        node_facts(n, &cap(n))
    }

    /// An MI300X node as the labeller labels it (ROCm/k8s-device-plugin docs: `amd.com/gpu.cu-count=304`,
    /// `device-id=74a1`, `family=AI`, `product-name=AMD_Instinct_MI300X_OAM`, `simd-count=1216`,
    /// `vram=192G`) with the device plugin's capacity; a CPX/NPS4 node in `mixed` naming; a node with only
    /// the operator's NFD label; an AMD NIC node and a CPU node are none.
    #[test]
    fn amd_nodes_from_labels_and_capacity() {
        let mi300x = node(serde_json::json!({
            "metadata": {"name": "mi300x-0", "labels": {
                "amd.com/gpu.cu-count": "304", "amd.com/gpu.device-id": "74a1", "amd.com/gpu.family": "AI",
                "amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM", "amd.com/gpu.simd-count": "1216",
                "amd.com/gpu.vram": "192G", "beta.amd.com/gpu.product-name": "ignored-legacy"}},
            "status": {"capacity": {"amd.com/gpu": "8", "cpu": "192"}}
        }));
        let f = facts(&mi300x).unwrap();
        assert_eq!(f.product.as_deref(), Some("AMD_Instinct_MI300X_OAM"));
        assert_eq!(f.device_id.as_deref(), Some("74a1"));
        assert_eq!(f.vram.as_deref(), Some("192G"));
        assert!(f.partition_resources.is_empty());

        let cpx = node(serde_json::json!({
            "metadata": {"name": "mi300x-cpx", "labels": {
                "beta.amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM",
                "amd.com/compute-memory-partition": "cpx_nps4"}},
            "status": {"capacity": {"amd.com/cpx_nps4": "64", "amd.com/nic": "8"}}
        }));
        let f = facts(&cpx).unwrap();
        assert_eq!(f.product.as_deref(), Some("AMD_Instinct_MI300X_OAM"));
        assert_eq!(f.partition.as_deref(), Some("cpx_nps4"));
        assert_eq!(
            f.partition_resources,
            BTreeMap::from([("amd.com/cpx_nps4".to_string(), 64)])
        );
        assert_eq!(
            f.brief(),
            "AMD_Instinct_MI300X_OAM, partition cpx_nps4, amd.com/cpx_nps4=64"
        );

        let nfd = node(serde_json::json!({"metadata": {"name": "n", "labels": {
            "feature.node.kubernetes.io/amd-gpu": "true"}}}));
        assert!(has_amd_gpus(&nfd, &cap(&nfd)));
        for none in [
            serde_json::json!({"metadata": {"name": "nic"}, "status": {"capacity": {"amd.com/nic": "8"}}}),
            serde_json::json!({"metadata": {"name": "cpu", "labels": {
                "feature.node.kubernetes.io/pci-1022.present": "true",
                "feature.node.kubernetes.io/amd-gpu": "false"}}}),
        ] {
            assert!(facts(&node(none)).is_none());
        }
    }

    #[test]
    fn hostile_label_values_are_bounded() {
        let n = node(serde_json::json!({"metadata": {"name": "n", "labels": {
            "amd.com/gpu.product-name": format!("MI300X\u{202e}{}", "x".repeat(500))}}}));
        let p = facts(&n).unwrap().product.unwrap();
        assert!(!p.contains('\u{202e}'));
        assert!(p.chars().count() <= MAX_NAME);
    }
}
