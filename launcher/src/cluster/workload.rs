//! A workload's pods, from the API server: one pod, a batch Job, a JobSet, a PyTorchJob, an MPIJob, a RayJob
//! (custom kinds read through discovery and the dynamic API, so no CRD crate is needed), or a label
//! selector. Pods of any phase are kept: Pending, failed and restarting pods are evidence.
//!
//! Owner kinds are followed down their ownerReferences: the workload owns pods directly (Job, PyTorchJob,
//! MPIJob workers) or through Jobs (JobSet, the MPIJob launcher, the RayJob submitter) and RayClusters
//! (RayJob).

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::{AsyncBufReadExt, TryStreamExt};
use gpu_diag::workload::PodContainer;
use gpu_diag::workload::joblog::PodLogScan;
use kube::api::LogParams;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;

use gpu_diag::workload::WorkloadPod;

use crate::cluster::{ClusterError, LogLimits, PodLogs, WorkloadRef};

/// A custom workload kind: its API group and kind, and what installs it (for the error when it is absent).
struct CustomKind {
    group: &'static str,
    kind: &'static str,
    installed_by: &'static str,
}

fn custom(r: &WorkloadRef) -> Option<CustomKind> {
    let (group, kind, installed_by) = match r {
        WorkloadRef::JobSet(_) => ("jobset.x-k8s.io", "JobSet", "the JobSet controller"),
        WorkloadRef::PyTorchJob(_) => (
            "kubeflow.org",
            "PyTorchJob",
            "the Kubeflow Training Operator",
        ),
        WorkloadRef::MpiJob(_) => ("kubeflow.org", "MPIJob", "the MPI Operator"),
        WorkloadRef::RayJob(_) => ("ray.io", "RayJob", "KubeRay"),
        _ => return None,
    };
    Some(CustomKind {
        group,
        kind,
        installed_by,
    })
}

fn api_err(action: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => {
            ClusterError::Forbidden(format!("{action}: {}", s.message))
        }
        kube::Error::Api(s) if s.code == 404 => {
            ClusterError::NotFound(format!("{action}: {}", s.message))
        }
        e => ClusterError::Api(format!("{action}: {e}")),
    }
}

/// The API resource of a custom kind, or a clear error when the cluster does not serve it.
async fn resource_of(client: &kube::Client, k: &CustomKind) -> Result<ApiResource, ClusterError> {
    let missing = || {
        ClusterError::KindNotInstalled(format!(
            "this cluster serves no {} ({}); {} is not installed, or the workload is of another kind",
            k.kind, k.group, k.installed_by
        ))
    };
    let group = match kube::discovery::group(client, k.group).await {
        Ok(g) => g,
        Err(kube::Error::Api(s)) if s.code == 404 => return Err(missing()),
        Err(kube::Error::Discovery(_)) => return Err(missing()),
        Err(e) => return Err(api_err(&format!("discover {}", k.group), e)),
    };
    group
        .recommended_kind(k.kind)
        .map(|(ar, _)| ar)
        .ok_or_else(missing)
}

/// `kind/name` as the answer names the workload.
/// A GPU node as a workload's diagnosis reads its Kubernetes side.
pub fn node_of(n: &crate::cluster::GpuNode) -> gpu_diag::workload::WorkloadNode {
    gpu_diag::workload::WorkloadNode {
        name: n.name.clone(),
        ready: n.ready,
        unschedulable: n.unschedulable,
        taints: n.taints.clone(),
        problem_conditions: n.problem_conditions.clone(),
        platform: n.platform.clone(),
        gpu_capacity: n.gpu_capacity,
        gpu_allocatable: n.gpu_allocatable,
        addresses: n.addresses.clone(),
        clique: n.gfd.clique.clone(),
    }
}

pub fn label(r: &WorkloadRef) -> String {
    match r {
        WorkloadRef::Pod(n) => format!("pod/{n}"),
        WorkloadRef::Job(n) => format!("job/{n}"),
        WorkloadRef::JobSet(n) => format!("jobset/{n}"),
        WorkloadRef::PyTorchJob(n) => format!("pytorchjob/{n}"),
        WorkloadRef::MpiJob(n) => format!("mpijob/{n}"),
        WorkloadRef::RayJob(n) => format!("rayjob/{n}"),
        WorkloadRef::Selector(s) => format!("pods matching `{s}`"),
    }
}

/// Every pod of the workload, in name order.
pub async fn pods(
    client: kube::Client,
    ns: &str,
    r: &WorkloadRef,
) -> Result<Vec<WorkloadPod>, ClusterError> {
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let mut pods: Vec<Pod> = match r {
        WorkloadRef::Pod(name) => vec![
            pods_api
                .get(name)
                .await
                .map_err(|e| api_err(&format!("get pod {ns}/{name}"), e))?,
        ],
        WorkloadRef::Selector(sel) => {
            pods_api
                .list(&ListParams::default().labels(sel))
                .await
                .map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 400 => ClusterError::BadSelector(sel.clone()),
                    e => api_err("list pods", e),
                })?
                .items
        }
        WorkloadRef::Job(name) => {
            let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
            let job = jobs
                .get(name)
                .await
                .map_err(|e| api_err(&format!("get job {ns}/{name}"), e))?;
            let uid = job.metadata.uid.unwrap_or_default();
            owned_by(&pods_api, &[uid]).await?
        }
        other => {
            let kind = custom(other).expect("custom kinds are the rest");
            let ar = resource_of(&client, &kind).await?;
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
            let name = other.name();
            let root = api
                .get(name)
                .await
                .map_err(|e| api_err(&format!("get {} {ns}/{name}", kind.kind), e))?;
            let root_uid = root.metadata.uid.unwrap_or_default();
            // Intermediate owners: Jobs (JobSet, MPIJob launcher, RayJob submitter), RayClusters (RayJob).
            let mut owners = vec![root_uid.clone()];
            let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
            for j in jobs
                .list(&ListParams::default())
                .await
                .map_err(|e| api_err("list jobs", e))?
                .items
            {
                if owned(&j.metadata.owner_references, &root_uid) {
                    owners.extend(j.metadata.uid);
                }
            }
            if matches!(other, WorkloadRef::RayJob(_)) {
                let rc = resource_of(
                    &client,
                    &CustomKind {
                        group: "ray.io",
                        kind: "RayCluster",
                        installed_by: "KubeRay",
                    },
                )
                .await?;
                let clusters: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &rc);
                for c in clusters
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| api_err("list rayclusters", e))?
                    .items
                {
                    if owned(&c.metadata.owner_references, &root_uid) {
                        owners.extend(c.metadata.uid);
                    }
                }
            }
            owned_by(&pods_api, &owners).await?
        }
    };
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(pods.iter().map(workload_pod).collect())
}

fn owned(
    refs: &Option<Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>>,
    uid: &str,
) -> bool {
    refs.iter().flatten().any(|o| o.uid == uid)
}

/// The namespace's pods whose owner is one of `uids` (one list call).
async fn owned_by(api: &Api<Pod>, uids: &[String]) -> Result<Vec<Pod>, ClusterError> {
    let uids: BTreeSet<&str> = uids.iter().map(String::as_str).collect();
    Ok(api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_err("list pods", e))?
        .items
        .into_iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| uids.contains(o.uid.as_str()))
        })
        .collect())
}

/// The rank or replica a pod has in its workload, from the labels the common operators set.
fn rank(p: &Pod) -> Option<String> {
    let l = p.metadata.labels.as_ref()?;
    let get = |k: &str| l.get(k).map(String::as_str);
    if let Some(i) = get("training.kubeflow.org/replica-index") {
        let t = get("training.kubeflow.org/replica-type").unwrap_or("replica");
        return Some(format!("{t} {i}"));
    }
    if let Some(j) = get("jobset.sigs.k8s.io/job-index") {
        let rj = get("jobset.sigs.k8s.io/replicatedjob-name").unwrap_or("job");
        let c = get("batch.kubernetes.io/job-completion-index")
            .map(|c| format!(" pod {c}"))
            .unwrap_or_default();
        return Some(format!("{rj} {j}{c}"));
    }
    if let Some(c) = get("batch.kubernetes.io/job-completion-index") {
        return Some(format!("index {c}"));
    }
    get("ray.io/node-type").map(|t| format!("ray {t}"))
}

fn workload_pod(p: &Pod) -> WorkloadPod {
    let status = p.status.as_ref();
    let statuses = status
        .into_iter()
        .flat_map(|s| s.container_statuses.iter().flatten());
    let mut restarts = 0u32;
    let mut last_termination = None;
    let mut waiting = None;
    let mut containers = Vec::new();
    for c in statuses {
        restarts += c.restart_count.max(0) as u32;
        let started = c.restart_count > 0
            || c.state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
        if started {
            containers.push(PodContainer {
                name: c.name.clone(),
                restarted: c.restart_count > 0,
            });
        }
        if let Some(t) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref())
            && t.reason.as_deref() != Some("Completed")
        {
            last_termination = Some(format!(
                "{} (exit {})",
                t.reason.as_deref().unwrap_or("terminated"),
                t.exit_code
            ));
        }
        if let Some(t) = c.state.as_ref().and_then(|s| s.terminated.as_ref())
            && t.reason.as_deref() != Some("Completed")
            && last_termination.is_none()
        {
            last_termination = Some(format!(
                "{} (exit {})",
                t.reason.as_deref().unwrap_or("terminated"),
                t.exit_code
            ));
        }
        if let Some(w) = c.state.as_ref().and_then(|s| s.waiting.as_ref())
            && w.reason.as_deref() != Some("ContainerCreating")
        {
            waiting = Some(match &w.message {
                Some(m) => format!("{}: {m}", w.reason.as_deref().unwrap_or("waiting")),
                None => w.reason.clone().unwrap_or_else(|| "waiting".into()),
            });
        }
    }
    let unschedulable = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        })
        .map(|c| {
            format!(
                "{}: {}",
                c.reason.as_deref().unwrap_or("not scheduled"),
                c.message.as_deref().unwrap_or("")
            )
        });
    WorkloadPod {
        name: p.metadata.name.clone().unwrap_or_default(),
        uid: p.metadata.uid.clone().unwrap_or_default(),
        phase: status
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "Unknown".into()),
        node: p.spec.as_ref().and_then(|s| s.node_name.clone()),
        started: status
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.to_string()),
        rank: rank(p),
        // Whole devices of any vendor.
        gpus_requested: super::vendors::pod_devices(p),
        restarts,
        last_termination,
        waiting,
        unschedulable,
        ip: status.and_then(|s| s.pod_ip.clone()),
        containers,
    }
}

async fn scan_container(
    api: &Api<Pod>,
    pod: &str,
    container: &str,
    previous: bool,
    limits: &LogLimits,
    into: &mut PodLogScan,
) -> Result<(), String> {
    let lp = LogParams {
        container: Some(container.to_string()),
        previous,
        tail_lines: Some(limits.tail_lines),
        limit_bytes: Some(limits.limit_bytes),
        since_seconds: limits.since_seconds,
        timestamps: true,
        ..Default::default()
    };
    let stream = api.log_stream(pod, &lp).await.map_err(|e| match e {
        kube::Error::Api(s) if s.is_forbidden() => format!(
            "forbidden: the launcher's identity may not get pods/log in this namespace (the log-reader role \
             grants it, cluster-wide or per namespace: `k8s-gpu-mcp setup --namespaces`): {}",
            s.message
        ),
        kube::Error::Api(s) => format!("{}: {}", s.code, s.message),
        e => e.to_string(),
    })?;
    let source = previous.then_some("previous");
    let mut lines = stream.lines();
    while let Some(line) = lines.try_next().await.map_err(|e| e.to_string())? {
        into.feed(&line, source);
    }
    Ok(())
}

/// Read and scan every started pod's log (see [`LogLimits`]); Pending pods have none and are left out.
pub async fn read_logs(
    client: kube::Client,
    ns: &str,
    pods: &[WorkloadPod],
    limits: &LogLimits,
) -> PodLogs {
    let api: Api<Pod> = Api::namespaced(client, ns);
    let sem = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = JoinSet::new();
    let mut out = PodLogs::new();
    for p in pods.iter().filter(|p| p.node.is_some()) {
        if p.containers.is_empty() {
            out.insert(p.name.clone(), Err("no container has started yet".into()));
            continue;
        }
        let (api, sem, limits, p) = (api.clone(), sem.clone(), limits.clone(), p.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let mut scan = PodLogScan::default();
            let mut errors = Vec::new();
            for c in &p.containers {
                if c.restarted
                    && let Err(e) = scan_container(&api, &p.name, &c.name, true, &limits, &mut scan).await
                {
                    errors.push(format!("{} (previous): {e}", c.name));
                }
                if let Err(e) = scan_container(&api, &p.name, &c.name, false, &limits, &mut scan).await {
                    errors.push(format!("{}: {e}", c.name));
                }
            }
            // A pod counts as read when any of its logs was; the errors of the others are only logged.
            let r = if scan.lines == 0 && !errors.is_empty() {
                Err(errors.join("; "))
            } else {
                if !errors.is_empty() {
                    tracing::debug!(pod = %p.name, errors = %errors.join("; "), "some container logs not read");
                }
                Ok(scan)
            };
            (p.name, r)
        });
    }
    let waiting: BTreeSet<String> = pods
        .iter()
        .filter(|p| p.node.is_some() && !p.containers.is_empty())
        .map(|p| p.name.clone())
        .collect();
    let deadline = tokio::time::Instant::now() + limits.budget;
    let mut left = waiting;
    loop {
        match tokio::time::timeout_at(deadline, set.join_next()).await {
            Ok(Some(Ok((name, r)))) => {
                left.remove(&name);
                out.insert(name, r);
            }
            Ok(Some(Err(e))) => tracing::error!(error = %e, "log reader task failed"),
            Ok(None) => break,
            Err(_) => {
                set.abort_all();
                break;
            }
        }
    }
    for name in left {
        out.insert(
            name,
            Err(format!(
                "not read within the {} s budget for logs",
                limits.budget.as_secs()
            )),
        );
    }
    out
}
