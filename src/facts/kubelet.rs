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
