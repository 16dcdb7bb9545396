//! The kubelet's answers: its PodResources device assignment and its pod and container log directories.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// The kubelet PodResources API's answers (`v1.PodResourcesLister`), as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesFacts {
    /// The socket as addressed, relative to the host root.
    pub socket: String,
    /// `List`: devices per container of each active pod.
    #[serde(default)]
    pub pods: Vec<PodResourcesPodFacts>,
    /// `GetAllocatableResources`: every device the node can assign. Kubelets before 1.21 answer
    /// unimplemented (not_supported).
    #[serde(default)]
    pub allocatable: Reading<Vec<ContainerDevicesFacts>>,
    /// Whether the kubelet serves `Get` (gate KubeletPodResourcesGet), from its answer for a pod that does
    /// not exist: "not found" is served, "Get method disabled" is not; absent when neither was said.
    /// Kubernetes turned it on by default in 1.34 together with KubeletPodResourcesDynamicResources (both
    /// alpha and off in 1.27-1.33, kubernetes/website feature-gates pages), so it tells a kubelet whose
    /// empty DRA answer means "no claim" from one whose empty answer means "not reported".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_served: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesPodFacts {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub containers: Vec<PodResourcesContainerFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesContainerFacts {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<ContainerDevicesFacts>,
    /// Devices allocated through DRA ResourceClaims (`dynamic_resources`); empty where the kubelet does not
    /// report them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimFacts>,
}

/// One ResourceClaim a container uses, as the kubelet reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimFacts {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub devices: Vec<ClaimDeviceFacts>,
}

/// One allocated device: `<driver>/<pool>/<device>` names it in the driver's ResourceSlices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDeviceFacts {
    pub driver: String,
    pub pool: String,
    pub device: String,
    /// The CDI device names the driver prepared (`k8s.gpu.nvidia.com/claim=<claim uid>-gpu-0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdi_ids: Vec<String>,
}

/// What the node shows of DRA drivers without asking the kubelet: which drivers registered with it, and
/// the claims a driver prepared (its per-claim CDI spec files). A claim prepared here that the kubelet's
/// answer does not list is a GPU in use that attribution would otherwise miss.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraHostFacts {
    /// Driver names from the kubelet's plugin registry (`plugins_registry/<driver>[-<uid>]-reg.sock`).
    #[serde(default)]
    pub registered: Vec<String>,
    /// Per-claim CDI spec files of GPU drivers.
    #[serde(default)]
    pub claim_specs: Vec<CdiClaimSpecFacts>,
}

/// A per-claim CDI spec file (`/var/run/cdi/k8s.gpu.nvidia.com-claim_<claim uid>.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdiClaimSpecFacts {
    /// The file, relative to the host root.
    pub file: String,
    /// The CDI `kind` (`k8s.gpu.nvidia.com/claim`).
    pub kind: String,
    pub claim_uid: String,
    /// Device names in the spec (`<claim uid>-gpu-0`).
    #[serde(default)]
    pub devices: Vec<String>,
}

/// One resource's device ids (`nvidia.com/gpu`: `GPU-<uuid>`, `MIG-<uuid>`, `nvidia0/gi1`, `<id>::2`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerDevicesFacts {
    pub resource_name: String,
    #[serde(default)]
    pub device_ids: Vec<String>,
    /// NUMA nodes of the devices, where the device plugin reports topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numa_nodes: Vec<i64>,
}

/// The kubelet's log layout, which ties cgroup ids to names without asking the API server:
/// `var/log/pods/<namespace>_<pod>_<uid>/<container>/` and
/// `var/log/containers/<pod>_<namespace>_<container>-<container id>.log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletLogFacts {
    #[serde(default)]
    pub pods: Vec<PodLogDirFacts>,
    /// File names in `var/log/containers`.
    #[serde(default)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodLogDirFacts {
    /// Directory name, `<namespace>_<pod>_<uid>`.
    pub name: String,
    #[serde(default)]
    pub containers: Vec<ContainerLogDirFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerLogDirFacts {
    pub name: String,
    /// Modification time of the container's log directory (unix seconds): the kubelet adds a log file
    /// there at each (re)start, so it dates the current container.
    #[serde(default)]
    pub modified_unix: Option<f64>,
}
