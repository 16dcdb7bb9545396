//! GPU resources as pods request them and nodes offer them: `nvidia.com/*` and AMD's GPU resources
//! (`amd.com/gpu`, `amd.com/<cp>_<nps>`: [`super::amd`]) and Intel's Gaudi (`habana.ai/gaudi`) as integers, per container and per pod (the
//! scheduler's effective request).

use std::collections::BTreeMap;

use gpu_diag::facts::{GpuVendor, gpu_resource_vendor, vendor};
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::cluster::ContainerGpuUse;

pub use super::vendor::{count, resources_of};

pub const GPU_RESOURCE: &str = vendor::NVIDIA.whole_gpu_resource;
pub const NVIDIA_PREFIX: &str = vendor::NVIDIA.resource_domain;

pub fn nvidia_resources(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, u64> {
    resources_of(map, GpuVendor::Nvidia)
}

/// AMD's GPU resources (`amd.com/gpu`, `amd.com/<cp>_<nps>`) of a resource list, as integers.
pub fn amd_resources(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, u64> {
    resources_of(map, GpuVendor::Amd)
}

/// The GPU resources of every vendor in a resource list (Intel's Gaudi: `habana.ai/gaudi`).
pub fn gpu_resources(map: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, u64> {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| gpu_resource_vendor(k).is_some())
        .map(|(k, q)| (k.clone(), count(q)))
        .collect()
}

/// Per-container GPU requests and limits (extended resources: a request defaults to the limit).
pub fn container_use(c: &Container) -> ContainerGpuUse {
    let res = c.resources.as_ref();
    let limits = gpu_resources(res.and_then(|r| r.limits.as_ref()));
    let mut requests = gpu_resources(res.and_then(|r| r.requests.as_ref()));
    for (k, v) in &limits {
        requests.entry(k.clone()).or_insert(*v);
    }
    ContainerGpuUse {
        name: c.name.clone(),
        requests,
        limits,
        claims: Vec::new(),
    }
}

/// The ResourceClaims (object names) a container uses: its `resources.claims` name entries of
/// `spec.resourceClaims`, each a claim named directly or generated from a template (then named in
/// `status.resourceClaimStatuses`; absent until the controller created it).
pub fn container_claims(p: &Pod, c: &Container) -> Vec<String> {
    let Some(spec) = p.spec.as_ref() else {
        return Vec::new();
    };
    let generated = |name: &str| {
        p.status
            .as_ref()
            .and_then(|s| s.resource_claim_statuses.as_ref())
            .into_iter()
            .flatten()
            .find(|s| s.name == name)
            .and_then(|s| s.resource_claim_name.clone())
    };
    c.resources
        .as_ref()
        .and_then(|r| r.claims.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|rc| {
            let pc = spec
                .resource_claims
                .as_ref()?
                .iter()
                .find(|pc| pc.name == rc.name)?;
            pc.resource_claim_name
                .clone()
                .or_else(|| generated(&pc.name))
        })
        .collect()
}

/// The pod's effective request of `resource` as the scheduler counts it: the larger of the app containers
/// (plus restartable init "sidecars") and the largest regular init container.
pub fn pod_request(p: &Pod, resource: &str) -> u64 {
    let Some(spec) = p.spec.as_ref() else {
        return 0;
    };
    let req = |c: &Container| {
        container_use(c)
            .requests
            .get(resource)
            .copied()
            .unwrap_or(0)
    };
    let mut app: u64 = spec.containers.iter().map(req).sum();
    let mut init_max = 0;
    for c in spec.init_containers.iter().flatten() {
        if c.restart_policy.as_deref() == Some("Always") {
            app += req(c);
        } else {
            init_max = init_max.max(req(c));
        }
    }
    app.max(init_max)
}
