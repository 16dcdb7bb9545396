//! What the kubelet assigned, read and located on this node: each pod's containers and their devices (device
//! plugin ids and DRA claim devices). The types every attribution step shares.

use serde::{Deserialize, Serialize};

use super::device::{DeviceIdForm, MigRef, ResourceKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PodAllocation {
    pub namespace: String,
    pub name: String,
    /// From the kubelet's pod log directory, where present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    pub containers: Vec<ContainerAllocation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerAllocation {
    /// Empty for a pod's claims only the API server names: any container of the pod.
    pub name: String,
    /// When the current container (re)started, from its log directory (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix: Option<f64>,
    pub devices: Vec<AllocatedDevice>,
}

/// One device id the kubelet assigned, read and located on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AllocatedDevice {
    pub resource_name: String,
    pub resource: ResourceKind,
    pub device_id: String,
    /// Absent when the id is not a known form (`error` says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<DeviceIdForm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigRef>,
    /// The DRA claim this device was allocated through (`resource_name` is then the driver).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<ClaimRef>,
    /// Why the id matches no GPU here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The claim a DRA device was allocated through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaimRef {
    pub namespace: String,
    pub name: String,
    /// The driver's pool (NVIDIA's: the node name).
    pub pool: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdi_ids: Vec<String>,
    /// Named by the API server's ResourceClaim (allocated here, reserved for the pod), not by the kubelet:
    /// which of the pod's containers uses it is not known.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_api_server: bool,
}

impl AllocatedDevice {
    /// A device as the kubelet named it, not yet located on this node's GPUs.
    pub fn unlocated(resource_name: &str, resource: ResourceKind, device_id: &str) -> Self {
        AllocatedDevice {
            resource_name: resource_name.to_string(),
            resource,
            device_id: device_id.to_string(),
            form: None,
            replica: None,
            gpu_index: None,
            gpu_uuid: None,
            mig: None,
            claim: None,
            error: None,
        }
    }
}
