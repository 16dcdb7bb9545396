//! [`ClusterBackend`] over kube: nodes with their GPU accounting, and the GPU pods of a node. Answered from
//! the API server alone (no probe). GPU allocation is computed from the pods bound to each node.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};

use gpu_diag::attribution::join::{ApiContainer, ApiPod, strip_runtime_scheme};
use gpu_diag::incident::platform::{self, GfdFacts, NodeCondition, PlatformMark};

use super::clients::Clients;
use crate::cluster::{BoxFut, ClusterBackend, ClusterError, GpuNode, PodGpuUse, WorkloadRef};

use super::gaudi::GAUDI_RESOURCE;
pub use super::gpu_resources::GPU_RESOURCE;
use super::gpu_resources::{
    NVIDIA_PREFIX, amd_resources, container_claims, container_use, nvidia_resources,
};
use gpu_diag::facts::GpuVendor;
/// Pods that hold no resources any more.
const ACTIVE_PODS: &str = "status.phase!=Succeeded,status.phase!=Failed";

pub struct KubeBackend {
    clients: Arc<Clients>,
}

impl KubeBackend {
    pub fn new(clients: Arc<Clients>) -> Self {
        KubeBackend { clients }
    }
}

fn api_err(action: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => {
            ClusterError::Forbidden(format!("{action}: {}", s.message))
        }
        e => ClusterError::Api(format!("{action}: {e}")),
    }
}

/// The pods on `node` that are its workload: every launcher's own probe pods are left out server-side, so a
/// probe running during the call is never counted, listed or joined as the node's workload.
fn node_workload_pods(node: &str) -> ListParams {
    ListParams::default()
        .fields(&format!("spec.nodeName={node}"))
        .labels(&format!(
            "{}!={}",
            super::labels::LABEL_MANAGED_BY,
            super::labels::MANAGED_BY
        ))
}

fn is_active(p: &Pod) -> bool {
    !matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Requests `nvidia.com/*` or an AMD GPU resource, or uses a ResourceClaim (which may hold GPUs through DRA).
fn has_gpu_resources(p: &Pod) -> bool {
    all_containers(p).any(|c| {
        let u = container_use(c);
        !u.requests.is_empty() || !u.limits.is_empty() || !container_claims(p, c).is_empty()
    })
}

/// Init containers, then the app containers, of a pod.
fn all_containers(p: &Pod) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Container> {
    p.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    })
}

pub fn pod_gpu_use(p: &Pod) -> PodGpuUse {
    PodGpuUse {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        phase: p
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        containers: all_containers(p)
            .map(|c| crate::cluster::ContainerGpuUse {
                claims: container_claims(p, c),
                ..container_use(c)
            })
            .filter(|u| !u.requests.is_empty() || !u.limits.is_empty() || !u.claims.is_empty())
            .collect(),
    }
}

/// A pod reduced to what the joins need: names, UIDs (its own and, for a static pod's mirror, the
/// kubelet's), phase, and per container its runtime id and GPU requests.
pub fn api_pod(p: &Pod) -> ApiPod {
    let status = p.status.as_ref();
    let ids: BTreeMap<&str, String> = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .chain(s.ephemeral_container_statuses.iter().flatten())
        })
        .filter_map(|c| {
            c.container_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .map(|id| (c.name.as_str(), strip_runtime_scheme(id)))
        })
        .collect();
    ApiPod {
        namespace: p.metadata.namespace.clone().unwrap_or_default(),
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        mirror_uid: p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/config.mirror"))
            .cloned(),
        phase: status.and_then(|s| s.phase.clone()),
        containers: all_containers(p)
            .map(|c| ApiContainer {
                name: c.name.clone(),
                container_id: ids.get(c.name.as_str()).cloned(),
                gpu_requests: container_use(c).requests,
                claims: container_claims(p, c),
            })
            .collect(),
    }
}

/// A node with its GPU accounting; `pods` are the pods bound to it (any phase; terminated ones don't count).
pub fn gpu_node(n: &Node, pods: &[&Pod]) -> GpuNode {
    let status = n.status.as_ref();
    let capacity = nvidia_resources(status.and_then(|s| s.capacity.as_ref()));
    let allocatable = nvidia_resources(status.and_then(|s| s.allocatable.as_ref()));
    let amd_capacity = amd_resources(status.and_then(|s| s.capacity.as_ref()));
    let amd_allocatable = amd_resources(status.and_then(|s| s.allocatable.as_ref()));
    let amd = super::amd::node_facts(n, &amd_capacity);
    let gaudi_capacity = super::gaudi::devices(status.and_then(|s| s.capacity.as_ref()));
    let gaudi_allocatable = super::gaudi::devices(status.and_then(|s| s.allocatable.as_ref()));
    let mig_resources = capacity
        .iter()
        .filter(|(k, _)| k.as_str() != GPU_RESOURCE)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let gpu_labels = n
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(NVIDIA_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rack_hints = gpu_diag::incident::rack::RackHints::from_labels(
        n.metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let gfd = GfdFacts::from_labels(
        n.metadata
            .labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut problem_conditions = Vec::new();
    let mut platform: Vec<PlatformMark> = n
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter_map(|(k, v)| platform::classify_annotation(k, v))
        .collect();
    let mut ready = false;
    for c in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        // Our own mark is shown as `mark`, not as a problem condition a second time.
        if c.type_ == super::operator::MARK_CONDITION {
            continue;
        }
        if c.type_ == "Ready" {
            ready = c.status == "True";
        }
        let known = platform::classify(&NodeCondition {
            kind: &c.type_,
            status: &c.status,
            reason: c.reason.as_deref(),
            message: c.message.as_deref(),
            since: c
                .last_transition_time
                .as_ref()
                .map(|t| t.0.to_string())
                .as_deref(),
        });
        if let Some(mark) = known {
            // One mark per condition type, so a node object listing a type many times stays as small as
            // the table of known types.
            if !platform.iter().any(|m| m.condition == mark.condition) {
                platform.push(mark);
            }
        } else if !condition_healthy(&c.type_, &c.status) {
            problem_conditions.push(format!(
                "{}={}{}",
                c.type_,
                c.status,
                c.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
    }
    // The taints a GPU health agent sets (AMD's GPU Operator remediating the node).
    for t in n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
    {
        let since = t.time_added.as_ref().map(|x| x.0.to_string());
        if let Some(m) =
            platform::classify_node_taint(&t.key, t.value.as_deref(), &t.effect, since.as_deref())
            && !platform.iter().any(|o| o.condition == m.condition)
        {
            platform.push(m);
        }
    }
    for p in pods {
        for m in pod_device_health(p) {
            if platform.len() >= super::resource_slices::MAX_MARKS_PER_NODE * 2 {
                break;
            }
            platform.push(m);
        }
    }
    let taints = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| match &t.value {
            Some(v) if !v.is_empty() => format!("{}={}:{}", t.key, v, t.effect),
            _ => format!("{}:{}", t.key, t.effect),
        })
        .collect();
    // Each device plugin's resource with devices withdrawn (allocatable below capacity); a resource the
    // node's allocatable does not list is not judged (the kubelet lists every resource it has capacity for).
    let gaudi = BTreeMap::from([(GAUDI_RESOURCE.to_string(), gaudi_capacity)]);
    let gaudi_alloc: BTreeMap<String, u64> = status
        .and_then(|s| s.allocatable.as_ref())
        .is_some_and(|m| m.contains_key(GAUDI_RESOURCE))
        .then(|| (GAUDI_RESOURCE.to_string(), gaudi_allocatable))
        .into_iter()
        .collect();
    let withdrawn = [
        (
            platform::PlatformSource::NvidiaDevicePlugin,
            &capacity,
            &allocatable,
        ),
        (
            platform::PlatformSource::AmdDevicePlugin,
            &amd_capacity,
            &amd_allocatable,
        ),
        (
            platform::PlatformSource::GaudiDevicePlugin,
            &gaudi,
            &gaudi_alloc,
        ),
    ]
    .into_iter()
    .flat_map(|(source, cap, alloc)| {
        cap.iter().filter_map(move |(resource, c)| {
            platform::devices_withdrawn(source, resource, *c, *alloc.get(resource)?)
        })
    });
    platform.extend(withdrawn);
    let info = status.and_then(|s| s.node_info.as_ref());
    GpuNode {
        name: n.metadata.name.clone().unwrap_or_default(),
        gpu_capacity: super::vendors::whole_devices(status.and_then(|s| s.capacity.as_ref())),
        gpu_allocatable: super::vendors::whole_devices(status.and_then(|s| s.allocatable.as_ref())),
        gpu_allocated: pods
            .iter()
            .filter(|p| is_active(p))
            .map(|p| super::vendors::pod_devices(p))
            .sum(),
        vendor: super::vendors::of_node(n),
        amd,
        mig_resources,
        gpu_labels,
        ready,
        problem_conditions,
        platform,
        device_taints_unreadable: None,
        dra_devices: Default::default(),
        gfd,
        imex: Vec::new(),
        taints,
        unschedulable: n
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        mark: super::operator::node_mark(n),
        architecture: info.map(|i| i.architecture.clone()),
        kubelet_version: info.map(|i| i.kubelet_version.clone()),
        addresses: status
            .and_then(|s| s.addresses.as_ref())
            .into_iter()
            .flatten()
            .map(|a| a.address.clone())
            .collect(),
        rack_hints,
    }
}

/// The kubelet's unhealthy devices of a pod (KEP-4680 `status.containerStatuses[].allocatedResourcesStatus`),
/// one mark each; the GPU's UUID is filled in from the ResourceSlices ([`super::resource_slices`]).
pub fn pod_device_health(p: &Pod) -> Vec<PlatformMark> {
    let pod = format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    );
    let mut out: Vec<PlatformMark> = Vec::new();
    let statuses = p.status.iter().flat_map(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
    });
    for c in statuses {
        for r in c.allocated_resources_status.iter().flatten() {
            for h in r.resources.iter().flatten() {
                let Some(m) = platform::classify_resource_health(&platform::ResourceHealth {
                    pod: &pod,
                    name: &r.name,
                    resource_id: &h.resource_id,
                    health: h.health.as_deref().unwrap_or_default(),
                    message: None,
                    gpu_uuid: None,
                }) else {
                    continue;
                };
                // Containers sharing a claim report the same device: one mark for it.
                if !out
                    .iter()
                    .any(|o| o.condition == m.condition && o.device == m.device)
                {
                    out.push(m);
                }
            }
        }
    }
    out
}

/// Adds the slices' word to a node: its devices' taints, the UUIDs of its pods' unhealthy devices, AMD's
/// DRA devices, or why the slices could not be read.
fn add_device_word(n: &mut GpuNode, word: &super::resource_slices::DeviceWord) {
    if let Some(devices) = word.amd.get(&n.name) {
        let facts = n.amd.get_or_insert_with(Default::default);
        devices.fill(facts);
        // A node AMD's driver publishes GPUs for, that nothing of NVIDIA's marks, is AMD's.
        if n.gpu_capacity == 0 && n.gpu_labels.is_empty() && n.mig_resources.is_empty() {
            n.vendor = GpuVendor::Amd;
        }
    }
    if let Some(d) = word.gpu_devices.get(&n.name) {
        n.dra_devices = d.clone();
        // A node only one vendor's DRA driver names (no capacity or label of any vendor) is that vendor's.
        let mut vendors = d.keys().filter_map(|k| GpuVendor::of_dra_driver(k));
        if let (Some(v), None) = (vendors.next(), vendors.next())
            && n.gpu_capacity == 0
            && n.gpu_labels.is_empty()
            && n.mig_resources.is_empty()
        {
            n.vendor = v;
        }
    }
    word.fill_uuids(&mut n.platform);
    n.platform
        .extend(word.marks.get(&n.name).into_iter().flatten().cloned());
    n.device_taints_unreadable = word.unreadable.clone();
}

/// Whether a node condition is in its healthy state. `Ready` and the conditions named like it are healthy
/// when True: EKS's node monitoring agent sets `AcceleratedHardwareReady`, `KernelReady`,
/// `NetworkingReady`, `StorageReady` and `ContainerRuntimeReady` True on a healthy node
/// (docs.aws.amazon.com/eks/latest/userguide/node-health.html). The others (MemoryPressure, DiskPressure,
/// PIDPressure, NetworkUnavailable, node-problem-detector's KernelDeadlock, AKS's GPUMissing or XIDErrors)
/// are problems when True.
pub fn condition_healthy(kind: &str, status: &str) -> bool {
    if kind.ends_with("Ready") {
        status == "True"
    } else {
        status != "True"
    }
}

/// Carries accelerators of any vendor ([`super::vendors::is_gpu_node`]).
pub fn is_gpu_node(n: &Node) -> bool {
    super::vendors::is_gpu_node(n)
}

impl KubeBackend {
    /// Every active pod of the cluster: one list for all nodes.
    async fn active_pods(&self, client: kube::Client) -> Result<Vec<Pod>, ClusterError> {
        let pods: Api<Pod> = Api::all(client);
        Ok(pods
            .list(&ListParams::default().fields(ACTIVE_PODS))
            .await
            .map_err(|e| api_err("list pods", e))?
            .items)
    }
}

/// Nodes per list page (`list_gpu_nodes`).
const NODE_PAGE: u32 = 500;

/// Node name -> indices of its pods in the list of active pods.
type PodsByNode = BTreeMap<String, Vec<usize>>;

impl ClusterBackend for KubeBackend {
    fn list_gpu_nodes<'a>(
        &'a self,
        context: Option<&'a str>,
        selector: Option<&'a str>,
    ) -> BoxFut<'a, Vec<GpuNode>> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            let api: Api<Node> = Api::all(client.clone());
            // Page by page, each page's GPU nodes summarised at once: a 10,000-node fleet's whole list would
            // be tens of megabytes of JSON and more once parsed.
            let mut lp = ListParams::default().limit(NODE_PAGE);
            if let Some(sel) = selector.filter(|s| !s.trim().is_empty()) {
                lp = lp.labels(sel);
            }
            // The fleet's ResourceSlices first: a node only a GPU DRA driver names (no device plugin capacity,
            // no labeller: NVIDIA's GPU Operator in its DRA-only mode, AMD's DRA driver) is a GPU node too.
            let word =
                super::resource_slices::read(&self.clients.reads, context, client.clone(), None)
                    .await;
            // One list of all active pods instead of one per node, once the first GPU node is seen.
            let mut pods: Option<(Vec<Pod>, PodsByNode)> = None;
            let mut out: Vec<GpuNode> = Vec::new();
            loop {
                let page = match api.list(&lp).await {
                    Ok(l) => l,
                    Err(kube::Error::Api(s)) if s.code == 400 => {
                        return Err(ClusterError::BadSelector(format!(
                            "{}: {}",
                            selector.unwrap_or_default(),
                            s.message
                        )));
                    }
                    Err(e) => return Err(api_err("list nodes", e)),
                };
                let gpu: Vec<&Node> = page
                    .items
                    .iter()
                    .filter(|n| {
                        is_gpu_node(n)
                            || n.metadata
                                .name
                                .as_ref()
                                .is_some_and(|name| word.gpu_devices.contains_key(name))
                    })
                    .collect();
                if !gpu.is_empty() {
                    if pods.is_none() {
                        let all = self.active_pods(client.clone()).await?;
                        let mut by_node: BTreeMap<String, Vec<usize>> = BTreeMap::new();
                        for (i, p) in all.iter().enumerate() {
                            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
                                by_node.entry(n.to_string()).or_default().push(i);
                            }
                        }
                        pods = Some((all, by_node));
                    }
                    let (all, by_node) = pods.as_ref().expect("pods listed above");
                    out.extend(gpu.iter().map(|n| {
                        let name = n.metadata.name.as_deref().unwrap_or_default();
                        let on: Vec<&Pod> = by_node
                            .get(name)
                            .into_iter()
                            .flatten()
                            .map(|&i| &all[i])
                            .collect();
                        gpu_node(n, &on)
                    }));
                }
                match page.metadata.continue_ {
                    Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                    _ => break,
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            // One list for the call, and none where no GPU node matched.
            let domains = if out.is_empty() {
                Vec::new()
            } else {
                super::compute_domains::list(client.clone()).await
            };
            for n in &mut out {
                add_device_word(n, &word);
                n.imex = gpu_diag::incident::imex::memberships(&domains, &n.name);
                n.rack_hints.compute_domains = domains
                    .iter()
                    .filter_map(|d| {
                        let m = d.nodes.iter().find(|m| m.name == n.name)?;
                        Some((format!("{}/{}", d.namespace, d.name), m.clique.clone()))
                    })
                    .collect();
            }
            Ok(out)
        })
    }

    fn get_node<'a>(&'a self, context: Option<&'a str>, node: &'a str) -> BoxFut<'a, GpuNode> {
        Box::pin(async move { Ok(self.node_and_gpu_pods(context, node).await?.0) })
    }

    fn node_and_gpu_pods<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> BoxFut<'a, (GpuNode, Vec<PodGpuUse>)> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            // One list of every phase serves both: the allocation counts only active pods (as list_gpu_nodes'
            // field selector does), the GPU pod list keeps finished ones as evidence. The three reads go
            // out together; the node's is shared with the probe's own readiness check when both run at once.
            let pods: Api<Pod> = Api::all(client.clone());
            let lp = node_workload_pods(node);
            let (n, list, word) = tokio::join!(
                self.clients.reads.node(context, &client, node),
                pods.list(&lp),
                super::resource_slices::read(
                    &self.clients.reads,
                    context,
                    client.clone(),
                    Some(node)
                )
            );
            let n = n
                .map_err(|e| api_err(&format!("get node {node}"), e))?
                .ok_or_else(|| ClusterError::NodeNotFound(node.to_string()))?;
            let list = list.map_err(|e| api_err("list pods", e))?;
            let active: Vec<&Pod> = list.items.iter().filter(|p| is_active(p)).collect();
            let mut gpu_pods: Vec<PodGpuUse> = list
                .items
                .iter()
                .filter(|p| has_gpu_resources(p))
                .map(pod_gpu_use)
                .collect();
            gpu_pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            let mut n = gpu_node(&n, &active);
            add_device_word(&mut n, &word);
            Ok((n, gpu_pods))
        })
    }

    fn dra_claims_on<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = super::dra_api::NodeClaims> + Send + 'a>>
    {
        Box::pin(async move {
            match self.clients.get(context).await {
                Ok(client) => {
                    super::dra_api::claims_on(&self.clients.reads, context, client, node).await
                }
                Err(e) => super::dra_api::NodeClaims::Unreadable(e.to_string()),
            }
        })
    }

    fn pods_with_gpus<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> BoxFut<'a, Vec<PodGpuUse>> {
        Box::pin(async move { Ok(self.node_and_gpu_pods(context, node).await?.1) })
    }

    fn dcgm_engine_on<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Option<super::dcgm_engine::NodeEngine>, String>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let client = self.clients.get(context).await.map_err(|e| e.to_string())?;
            super::dcgm_engine::on_node(client, node).await
        })
    }

    fn gpu_history<'a>(
        &'a self,
        context: Option<&'a str>,
        setting: &'a super::prometheus::PrometheusSetting,
        node: &'a str,
        hours: u32,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<
                        gpu_diag::history::NodeHistory,
                        super::prometheus::HistoryError,
                    >,
                > + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            let client = match setting {
                // A URL needs no cluster: a client that cannot be made does not stop it.
                super::prometheus::PrometheusSetting::Url(_) => {
                    self.clients.get(context).await.ok()
                }
                _ => Some(self.clients.get(context).await.map_err(|e| {
                    super::prometheus::HistoryError::Unreachable {
                        from: "the API server".into(),
                        reason: e.to_string(),
                    }
                })?),
            };
            super::prometheus::gpu_history(client, setting, node, hours).await
        })
    }

    fn holds_operator_role<'a>(
        &'a self,
        context: Option<&'a str>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, String>> + Send + 'a>>
    {
        Box::pin(async move {
            let client = self.clients.get(context).await.map_err(|e| e.to_string())?;
            super::dcgm_engine::holds_operator_role(client).await
        })
    }

    fn workload_pods<'a>(
        &'a self,
        context: Option<&'a str>,
        namespace: &'a str,
        workload: &'a WorkloadRef,
    ) -> BoxFut<'a, Vec<gpu_diag::workload::WorkloadPod>> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::workload::pods(client, namespace, workload).await
        })
    }

    fn workload_logs<'a>(
        &'a self,
        context: Option<&'a str>,
        namespace: &'a str,
        pods: &'a [gpu_diag::workload::WorkloadPod],
        limits: &'a crate::cluster::LogLimits,
    ) -> BoxFut<'a, crate::cluster::PodLogs> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            Ok(super::workload::read_logs(client, namespace, pods, limits).await)
        })
    }

    fn contexts(&self) -> Vec<String> {
        self.clients.contexts()
    }

    fn pods_on_node<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
    ) -> BoxFut<'a, Vec<ApiPod>> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            // Every phase: a process of a Succeeded pod still on a GPU is exactly what the join must name.
            let pods: Api<Pod> = Api::all(client);
            let list = pods
                .list(&node_workload_pods(node))
                .await
                .map_err(|e| api_err("list pods", e))?;
            Ok(list.items.iter().map(api_pod).collect())
        })
    }

    fn cordon<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
        reason: &'a str,
        on: bool,
    ) -> BoxFut<'a, crate::cluster::CordonResult> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::operator::cordon(client, node, reason, on).await
        })
    }

    fn set_run_mark<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
        mark: &'a crate::cluster::run_mark::RunMark,
    ) -> BoxFut<'a, crate::cluster::run_mark::MarkSet> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::run_mark::set(client, node, mark).await
        })
    }

    fn lift_run_mark<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
        key: &'a str,
    ) -> BoxFut<'a, String> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::run_mark::lift(client, node, key).await
        })
    }

    fn sweep_run_marks<'a>(
        &'a self,
        context: Option<&'a str>,
        node: Option<&'a str>,
        live: &'a std::collections::BTreeSet<String>,
    ) -> BoxFut<'a, crate::cluster::run_mark::MarkSweep> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::run_mark::sweep(client, node, live).await
        })
    }

    fn mark_node<'a>(
        &'a self,
        context: Option<&'a str>,
        req: &'a crate::cluster::MarkRequest,
    ) -> BoxFut<'a, crate::cluster::MarkResult> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::operator::mark(client, req).await
        })
    }

    fn clear_node_mark<'a>(
        &'a self,
        context: Option<&'a str>,
        node: &'a str,
        note: &'a str,
        dry_run: bool,
    ) -> BoxFut<'a, crate::cluster::MarkResult> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::operator::clear(client, node, note, dry_run).await
        })
    }

    fn record_event<'a>(
        &'a self,
        context: Option<&'a str>,
        event: &'a crate::cluster::AuditEvent,
    ) -> BoxFut<'a, String> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::operator::record_event(client, event).await
        })
    }

    fn whoami<'a>(&'a self, context: Option<&'a str>) -> BoxFut<'a, String> {
        Box::pin(async move {
            let client = self.clients.get(context).await?;
            super::operator::whoami(client).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{api_pod, condition_healthy, gpu_node, is_gpu_node};

    /// A DRA node has no `nvidia.com/gpu` capacity and, without GFD, only Node Feature Discovery's PCI
    /// labels; a CPU node with an NVIDIA NIC's vendor only (Mellanox, 15b3) is not a GPU node.
    #[test]
    fn nodes_labelled_by_nfd_alone_are_gpu_nodes() {
        let node = |labels: serde_json::Value| -> k8s_openapi::api::core::v1::Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n", "labels": labels}}))
                .unwrap()
        };
        assert!(is_gpu_node(&node(
            serde_json::json!({"feature.node.kubernetes.io/pci-10de.present": "true"})
        )));
        assert!(is_gpu_node(&node(
            serde_json::json!({"feature.node.kubernetes.io/pci-0302_10de.present": "true"})
        )));
        assert!(!is_gpu_node(&node(
            serde_json::json!({"feature.node.kubernetes.io/pci-15b3.present": "true"})
        )));
        assert!(!is_gpu_node(&node(
            serde_json::json!({"feature.node.kubernetes.io/pci-10de.present": "false"})
        )));
    }

    /// A container's claims by object name: named directly, or generated from a template (named in the
    /// pod's status, absent until then); a claim the container does not use is not its.
    #[test]
    fn containers_name_the_resource_claims_they_use() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ml", "uid": "u"},
            "spec": {
                "resourceClaims": [
                    {"name": "gpus", "resourceClaimName": "train-gpus"},
                    {"name": "imex", "resourceClaimTemplateName": "cd-channel"},
                    {"name": "nic", "resourceClaimTemplateName": "rdma"}
                ],
                "containers": [
                    {"name": "main", "resources": {"claims": [{"name": "gpus"}, {"name": "imex"}, {"name": "nic"}]}},
                    {"name": "sidecar"}
                ]
            },
            "status": {"resourceClaimStatuses": [{"name": "imex", "resourceClaimName": "p-imex-x7k2p"}]}
        }))
        .unwrap();
        let a = api_pod(&pod);
        assert_eq!(a.containers[0].claims, ["train-gpus", "p-imex-x7k2p"]);
        assert!(a.containers[1].claims.is_empty());
    }
    use gpu_diag::incident::platform::{PlatformFault, PlatformSource};

    #[test]
    fn recognised_conditions_are_platform_marks_and_the_others_stay_problem_conditions() {
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "labels": {
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                "nvidia.com/cuda.driver-version.full": "550.54.15"
            }, "annotations": {"quarantineHealthEventIsCordoned": "True"}},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "AcceleratedHardwareReady", "status": "False", "reason": "NvidiaXID79Error",
                 "message": "detected XID-79 on the instance", "lastTransitionTime": "2026-11-20T10:00:00Z"},
                {"type": "AcceleratedHardwareReady", "status": "False", "reason": "NvidiaXID79Error"},
                {"type": "KernelReady", "status": "True"},
                {"type": "VendorThing", "status": "True", "reason": "Odd"}
            ]}
        }))
        .unwrap();
        let g = gpu_node(&node, &[]);
        assert_eq!(g.problem_conditions, ["VendorThing=True (Odd)"]);
        let marks: Vec<_> = g.platform.iter().map(|m| (m.source, m.fault)).collect();
        assert_eq!(
            marks,
            [
                (PlatformSource::NvSentinel, PlatformFault::Quarantined),
                (
                    PlatformSource::EksNodeMonitoringAgent,
                    PlatformFault::Xid { code: Some(79) }
                ),
            ]
        );
        assert_eq!(g.platform[1].since.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert_eq!(g.gfd.driver.as_deref(), Some("550.54.15"));
    }

    /// A Gaudi node whose `habana.ai/gaudi` allocatable is below its capacity carries the device plugin's
    /// withdrawal as a critical mark, in Intel's words; a whole one carries none.
    #[test]
    fn a_gaudi_withdrawn_by_its_device_plugin_is_a_platform_mark() {
        use gpu_diag::facts::GpuVendor;
        use gpu_diag::finding::Severity;
        let node = |allocatable: &str| -> k8s_openapi::api::core::v1::Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "gaudi-0"},
                "status": {"capacity": {"habana.ai/gaudi": "8"},
                           "allocatable": {"habana.ai/gaudi": allocatable},
                           "conditions": [{"type": "Ready", "status": "True"}]}
            }))
            .unwrap()
        };
        let g = gpu_node(&node("7"), &[]);
        assert_eq!(g.vendor, GpuVendor::Intel);
        assert_eq!((g.gpu_capacity, g.gpu_allocatable), (8, 7));
        assert_eq!(g.platform.len(), 1, "{:?}", g.platform);
        let m = &g.platform[0];
        assert_eq!(m.source, PlatformSource::GaudiDevicePlugin);
        assert_eq!(m.severity, Severity::Critical);
        assert_eq!(
            m.line(),
            "Habana device plugin (habana.ai/gaudi): 1 of 8 Gaudi devices withdrawn (allocatable 7) \
             (HLML event registration failed for the withdrawn devices)"
        );
        assert!(gpu_node(&node("8"), &[]).platform.is_empty());
        // None allocatable is also a stopped plugin (the kubelet keeps its capacity for a while): both named.
        let none = gpu_node(&node("0"), &[]);
        assert_eq!(
            none.platform[0].reason.as_deref(),
            Some(
                "an HLML critical-error event whose device HLML could not name, HLML event registration \
                 failed for every device, or the device plugin stopped"
            )
        );
    }

    /// NVIDIA's and AMD's device plugins' withdrawals are marks too, one per resource, each in its vendor's
    /// words; a resource the node's allocatable does not list is not judged, and a whole one carries none.
    #[test]
    fn nvidia_and_amd_gpus_withdrawn_by_their_device_plugins_are_platform_marks() {
        use gpu_diag::finding::Severity;
        let node = |status: serde_json::Value| -> k8s_openapi::api::core::v1::Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}, "status": status}))
                .unwrap()
        };
        let lines = |n: &k8s_openapi::api::core::v1::Node| -> Vec<String> {
            gpu_node(n, &[]).platform.iter().map(|m| m.line()).collect()
        };
        let h100 = node(serde_json::json!({
            "capacity": {"nvidia.com/gpu": "8", "nvidia.com/mig-1g.10gb": "14"},
            "allocatable": {"nvidia.com/gpu": "7", "nvidia.com/mig-1g.10gb": "14"}}));
        let g = gpu_node(&h100, &[]);
        assert_eq!(g.platform.len(), 1, "{:?}", g.platform);
        assert_eq!(g.platform[0].source, PlatformSource::NvidiaDevicePlugin);
        assert_eq!(g.platform[0].severity, Severity::Critical);
        assert_eq!(
            lines(&h100),
            [
                "NVIDIA device plugin: 1 of 8 nvidia.com/gpu withdrawn (allocatable 7) (NVML Xid critical-error event)"
            ]
        );
        let mi300x = node(serde_json::json!({
            "capacity": {"amd.com/gpu": "8"}, "allocatable": {"amd.com/gpu": "0"}}));
        let g = gpu_node(&mi300x, &[]);
        assert_eq!(g.platform[0].source, PlatformSource::AmdDevicePlugin);
        assert_eq!(
            lines(&mi300x),
            [
                "AMD device plugin: 8 of 8 amd.com/gpu withdrawn (allocatable 0) (AMD Device Metrics Exporter health \
              or the plugin's KFD topology check failed for every GPU, or the device plugin stopped)"
            ]
        );
        // Not judged: no allocatable listed for the resource; whole.
        for status in [
            serde_json::json!({"capacity": {"nvidia.com/gpu": "8"}}),
            serde_json::json!({"capacity": {"amd.com/gpu": "8"}, "allocatable": {"cpu": "96"}}),
            serde_json::json!({"capacity": {"habana.ai/gaudi": "8"}, "allocatable": {}}),
            serde_json::json!({"capacity": {"nvidia.com/gpu": "8"}, "allocatable": {"nvidia.com/gpu": "8"}}),
        ] {
            assert!(lines(&node(status.clone())).is_empty(), "{status}");
        }
    }

    /// AMD nodes (labels and capacity as ROCm/k8s-device-plugin documents them) are GPU nodes of vendor AMD
    /// with their count, allocation and the GPU Operator's remediation taint as a platform mark; a node
    /// with both vendors' GPUs counts both and stays NVIDIA's by vendor.
    #[test]
    fn amd_nodes_are_gpu_nodes_of_vendor_amd() {
        use gpu_diag::facts::GpuVendor;
        let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "mi300x-0", "labels": {
                "amd.com/gpu.product-name": "AMD_Instinct_MI300X_OAM", "amd.com/gpu.device-id": "74a1"}},
            "spec": {"taints": [{"key": "amd-gpu-unhealthy", "effect": "NoSchedule",
                                 "timeAdded": "2026-11-20T10:05:00Z"}]},
            "status": {"capacity": {"amd.com/gpu": "8"}, "allocatable": {"amd.com/gpu": "8"},
                       "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "train", "namespace": "ml"},
            "spec": {"nodeName": "mi300x-0", "containers": [
                {"name": "main", "resources": {"limits": {"amd.com/gpu": "2", "amd.com/nic": "1"}}}]},
            "status": {"phase": "Running"}
        }))
        .unwrap();
        assert!(is_gpu_node(&node));
        let g = gpu_node(&node, &[&pod]);
        assert_eq!(g.vendor, GpuVendor::Amd);
        assert_eq!(
            (g.gpu_capacity, g.gpu_allocatable, g.gpu_allocated),
            (8, 8, 2)
        );
        assert_eq!(
            g.amd.as_ref().unwrap().product.as_deref(),
            Some("AMD_Instinct_MI300X_OAM")
        );
        assert_eq!(g.platform.len(), 1);
        assert_eq!(g.platform[0].source, PlatformSource::AmdGpuOperator);
        assert_eq!(g.taints, ["amd-gpu-unhealthy:NoSchedule"]);
        let u = super::pod_gpu_use(&pod);
        assert_eq!(
            u.containers[0].requests,
            std::collections::BTreeMap::from([("amd.com/gpu".to_string(), 2)])
        );

        let both: k8s_openapi::api::core::v1::Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "both", "labels": {"nvidia.com/gpu.present": "true",
                "amd.com/gpu.product-name": "AMD_Instinct_MI210"}},
            "status": {"capacity": {"amd.com/gpu": "2", "nvidia.com/gpu": "4"}}
        }))
        .unwrap();
        let g = gpu_node(&both, &[]);
        assert_eq!((g.vendor, g.gpu_capacity), (GpuVendor::Nvidia, 6));
        assert!(g.amd.is_some());
    }

    #[test]
    fn ready_like_conditions_are_healthy_when_true_and_the_others_when_not() {
        for (kind, status, healthy) in [
            ("Ready", "True", true),
            ("Ready", "Unknown", false),
            ("AcceleratedHardwareReady", "True", true),
            ("AcceleratedHardwareReady", "False", false),
            ("NetworkingReady", "False", false),
            ("MemoryPressure", "False", true),
            ("MemoryPressure", "True", false),
            ("XIDErrors", "True", false),
            ("GPUMissing", "False", true),
        ] {
            assert_eq!(condition_healthy(kind, status), healthy, "{kind}={status}");
        }
    }
}
