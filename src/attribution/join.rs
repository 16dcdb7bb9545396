//! Joins of what the probe saw on the node with what the API server says about the node's pods. The
//! launcher lists the pods (one list call) and hands them here as [`ApiPod`]s; the rules that name
//! processes and reconcile the kubelet's assignment with the pods' requests live here, pure and tested.
//!
//! - [`join_processes`]: each GPU process's cgroup pod UID / container id → namespace, pod, container.
//! - [`join_allocation`]: the kubelet's device assignment (PodResources) beside the pods' GPU requests,
//!   pod by pod, keeping the pods only one side knows visible.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{AllocatedDevice, AllocationReport};
use crate::analysis::processes::ProcessesReport;
use crate::finding::{Action, ActionKind, Finding, Severity};

/// A pod as the API server lists it, reduced to what the joins need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiPod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `kubernetes.io/config.mirror`: a static pod's mirror carries the UID the kubelet (and the cgroups)
    /// use for the static pod, which differs from the mirror's own UID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror_uid: Option<String>,
    /// `status.phase`; absent when the API server has none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub containers: Vec<ApiContainer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ApiContainer {
    pub name: String,
    /// From `status.*containerStatuses[].containerID`, without the runtime scheme (`containerd://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// GPU resources (`nvidia.com/*`) requested, the scheduler's view (a limit counts as the request).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gpu_requests: BTreeMap<String, u64>,
    /// ResourceClaims (object names) the container uses: DRA devices, GPUs or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
}

impl ApiPod {
    fn requests_gpus(&self) -> bool {
        self.containers
            .iter()
            .any(|c| c.gpu_requests.values().any(|v| *v > 0))
    }
    fn uses_claims(&self) -> bool {
        self.containers.iter().any(|c| !c.claims.is_empty())
    }
    fn finished(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Succeeded" | "Failed"))
    }
    fn phase_label(&self) -> &str {
        self.phase.as_deref().unwrap_or("no phase")
    }
}

/// `containerd://3f2a…` → `3f2a…` (lowercase); what cgroup paths carry.
pub fn strip_runtime_scheme(container_id: &str) -> String {
    container_id
        .rsplit_once("://")
        .map_or(container_id, |(_, id)| id)
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------------
// Processes.

/// Whose a GPU process is, after the join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessOwnerKind {
    /// A pod the API server lists on this node.
    Pod,
    /// Its cgroup names a pod UID the API server does not list on this node: the pod was deleted (or
    /// moved) while its process kept running and holding GPU memory.
    PodNotInApi,
    /// Its cgroup names no pod: a host service, an SSH session, a plain `docker run`.
    OutsidePod,
    /// In a pod, but pod names could not be looked up (local mode, or the pod list failed).
    PodUnnamed,
    /// The host's `/proc` entry could not be read, so where it runs is unknown.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessOwner {
    pub gpu: u32,
    pub pid: u32,
    /// `/proc/<pid>/comm`, where read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_memory_mib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Named by container id when the API server reports container ids (kwok and pending pods do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_phase: Option<String>,
    pub owner: ProcessOwnerKind,
}

/// The processes report's processes with their pods named. `pods` is `None` when no pod list could be had
/// (local mode, or the list failed): processes in pods are then [`ProcessOwnerKind::PodUnnamed`].
pub fn join_processes(report: &ProcessesReport, pods: Option<&[ApiPod]>) -> ProcessesJoin {
    let by_uid: BTreeMap<&str, &ApiPod> = pods
        .into_iter()
        .flatten()
        .flat_map(|p| {
            std::iter::once((p.uid.as_str(), p)).chain(p.mirror_uid.as_deref().map(|m| (m, p)))
        })
        .collect();
    let mut owners = Vec::new();
    let mut findings = Vec::new();
    for g in &report.gpus {
        let Some(procs) = g.processes.ok() else {
            continue;
        };
        for p in procs {
            let proc_read = p.name.is_ok() || p.state.is_ok() || p.cmdline.is_ok();
            let api = p
                .pod_uid
                .as_deref()
                .and_then(|u| by_uid.get(u.to_ascii_lowercase().as_str()).copied());
            let container = match (api, &p.container_id) {
                (Some(pod), Some(id)) => pod
                    .containers
                    .iter()
                    .find(|c| c.container_id.as_deref() == Some(id.as_str()))
                    .map(|c| c.name.clone()),
                _ => None,
            };
            let owner = match (&p.pod_uid, api) {
                (Some(_), Some(_)) => ProcessOwnerKind::Pod,
                (Some(_), None) if pods.is_some() => ProcessOwnerKind::PodNotInApi,
                (Some(_), None) => ProcessOwnerKind::PodUnnamed,
                (None, _) if proc_read => ProcessOwnerKind::OutsidePod,
                (None, _) => ProcessOwnerKind::Unknown,
            };
            let o = ProcessOwner {
                gpu: g.gpu.index,
                pid: p.pid,
                process_name: p.name.ok().cloned(),
                used_memory_mib: p.used_memory_mib,
                pod_uid: p.pod_uid.clone(),
                container_id: p.container_id.clone(),
                namespace: api.map(|a| a.namespace.clone()),
                pod: api.map(|a| a.name.clone()),
                container,
                pod_phase: api.and_then(|a| a.phase.clone()),
                owner,
            };
            if let Some(f) = process_finding(&o, api, g.gpu.uuid.ok()) {
                findings.push(f);
            }
            owners.push(o);
        }
    }
    ProcessesJoin { owners, findings }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessesJoin {
    /// One entry per GPU process, in the report's order.
    pub owners: Vec<ProcessOwner>,
    /// What only the join reveals (a process whose pod the API server no longer has, or whose pod finished).
    pub findings: Vec<Finding>,
}

fn who(o: &ProcessOwner) -> String {
    match &o.process_name {
        Some(n) => format!("PID {} ({n})", o.pid),
        None => format!("PID {}", o.pid),
    }
}

fn held(o: &ProcessOwner) -> String {
    match o.used_memory_mib {
        Some(m) => format!("{m} MiB"),
        None => "GPU memory (amount not reported)".into(),
    }
}

fn process_finding(
    o: &ProcessOwner,
    api: Option<&ApiPod>,
    uuid: Option<&String>,
) -> Option<Finding> {
    if o.used_memory_mib == Some(0) {
        return None;
    }
    let mut evidence = vec![format!("pid = {}", o.pid)];
    if let Some(m) = o.used_memory_mib {
        evidence.push(format!("used_memory_mib = {m}"));
    }
    if let Some(u) = &o.pod_uid {
        evidence.push(format!("pod_uid = {u}"));
    }
    let (code, summary) = match (o.owner, api) {
        (ProcessOwnerKind::PodNotInApi, _) => {
            evidence.push("api_server = no pod with this UID on the node".into());
            (
                "alloc.process_pod_not_in_api",
                format!(
                    "{} holds {} on GPU {} but runs in pod UID {}, which the API server no longer lists on this node: the pod was deleted while its process kept the GPU, and the scheduler may already have given the GPU to another pod.",
                    who(o),
                    held(o),
                    o.gpu,
                    o.pod_uid.as_deref().unwrap_or_default()
                ),
            )
        }
        (ProcessOwnerKind::Pod, Some(p)) if p.finished() => {
            evidence.push(format!("pod = {}/{}", p.namespace, p.name));
            evidence.push(format!("pod_phase = {}", p.phase_label()));
            (
                "alloc.process_in_finished_pod",
                format!(
                    "{} holds {} on GPU {} but its pod {}/{} is {}: the GPU counts as free to the scheduler while this process still uses it.",
                    who(o),
                    held(o),
                    o.gpu,
                    p.namespace,
                    p.name,
                    p.phase_label()
                ),
            )
        }
        _ => return None,
    };
    Some(Finding {
        code: code.into(),
        severity: Severity::Warning,
        gpu: Some(o.gpu),
        gpu_uuid: uuid.cloned(),
        summary,
        evidence,
        action: Action {
            kind: ActionKind::Investigate,
            detail: format!(
                "kill PID {} on the host (kill_gpu_process in operator mode); if the memory stays held, drain the GPU and reset it",
                o.pid
            ),
        },
        about: Vec::new(),
        first_seen: None,
    })
}

// ---------------------------------------------------------------------------------------------------
// Allocation.

/// Which side knows a pod with GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeenBy {
    /// The API server lists it with GPU requests and the kubelet assigned it devices.
    Both,
    /// The API server lists it with GPU requests; the kubelet assigned it no GPU device.
    ApiOnly,
    /// The kubelet assigned it GPU devices; the API server does not list it on this node with GPU requests.
    KubeletOnly,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PodAssignment {
    pub namespace: String,
    pub name: String,
    /// From the API server, else from the kubelet's log layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub seen_by: SeenBy,
    pub containers: Vec<ContainerAssignment>,
    /// Why the two views differ, when they do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContainerAssignment {
    pub name: String,
    /// GPU resources the container requests (API server).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, u64>,
    /// ResourceClaims it uses (API server), by object name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    /// Devices the kubelet assigned it, each located on the node's GPUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<AllocatedDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AllocationJoin {
    /// Every pod with GPUs on either side, sorted by namespace and name.
    pub pods: Vec<PodAssignment>,
    pub findings: Vec<Finding>,
}

/// The kubelet's assignment (an exact [`AllocationReport`]) beside the API server's GPU pods on the node.
/// A non-exact report holds no assignment: the join is then the API side alone, all `api_only`, with no
/// findings (nothing could be compared).
pub fn join_allocation(report: &AllocationReport, pods: &[ApiPod]) -> AllocationJoin {
    let api: BTreeMap<(&str, &str), &ApiPod> = pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let kubelet: BTreeMap<(&str, &str), &super::PodAllocation> = report
        .pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    let keys: BTreeSet<(&str, &str)> = api
        .iter()
        .filter(|(_, p)| p.requests_gpus())
        .map(|(k, _)| *k)
        .chain(kubelet.keys().copied())
        .collect();
    let mut out = AllocationJoin::default();
    for key in keys {
        let a = api.get(&key).copied();
        let k = kubelet.get(&key).copied();
        let mut containers: Vec<ContainerAssignment> = Vec::new();
        for c in a.into_iter().flat_map(|a| &a.containers) {
            if c.gpu_requests.is_empty()
                && k.is_none_or(|k| !k.containers.iter().any(|kc| kc.name == c.name))
            {
                continue;
            }
            containers.push(ContainerAssignment {
                name: c.name.clone(),
                requests: c.gpu_requests.clone(),
                claims: c.claims.clone(),
                devices: Vec::new(),
            });
        }
        for kc in k.into_iter().flat_map(|k| &k.containers) {
            match containers.iter_mut().find(|c| c.name == kc.name) {
                Some(c) => c.devices = kc.devices.clone(),
                None => containers.push(ContainerAssignment {
                    name: kc.name.clone(),
                    requests: BTreeMap::new(),
                    claims: Vec::new(),
                    devices: kc.devices.clone(),
                }),
            }
        }
        let (ns, name) = key;
        // A pod that gets its GPUs through claims requests none: the kubelet's claim devices are its GPUs.
        let a_gpu = a.filter(|a| a.requests_gpus() || (k.is_some() && a.uses_claims()));
        let seen_by = match (a_gpu, k) {
            (Some(_), Some(_)) => SeenBy::Both,
            (Some(_), None) => SeenBy::ApiOnly,
            _ => SeenBy::KubeletOnly,
        };
        let note = if !report.exact {
            None
        } else {
            match seen_by {
                SeenBy::Both => count_mismatch(&containers),
                SeenBy::ApiOnly => Some(api_only_note(a_gpu.expect("api side"), &mut out.findings)),
                SeenBy::KubeletOnly => Some(kubelet_only_note(
                    ns,
                    name,
                    a,
                    &containers,
                    &mut out.findings,
                )),
            }
        };
        out.pods.push(PodAssignment {
            namespace: ns.to_string(),
            name: name.to_string(),
            uid: a
                .map(|a| a.uid.clone())
                .or_else(|| k.and_then(|k| k.uid.clone())),
            phase: a.and_then(|a| a.phase.clone()),
            seen_by,
            containers,
            note,
        });
    }
    out
}

/// Requests and assigned devices per resource disagree (e.g. 2 requested, 1 device id).
fn count_mismatch(containers: &[ContainerAssignment]) -> Option<String> {
    let mut diffs = Vec::new();
    for c in containers {
        let mut assigned: BTreeMap<&str, u64> = BTreeMap::new();
        // A claim's device count is the claim's business (its requests live in the ResourceClaim).
        for d in c.devices.iter().filter(|d| d.claim.is_none()) {
            *assigned.entry(d.resource_name.as_str()).or_insert(0) += 1;
        }
        let names: BTreeSet<&str> = c
            .requests
            .keys()
            .map(String::as_str)
            .chain(assigned.keys().copied())
            .collect();
        for r in names {
            let req = c.requests.get(r).copied().unwrap_or(0);
            let got = assigned.get(r).copied().unwrap_or(0);
            if req != got {
                diffs.push(format!(
                    "container {} requests {req} {r}, the kubelet assigned {got}",
                    c.name
                ));
            }
        }
    }
    (!diffs.is_empty()).then(|| diffs.join("; "))
}

fn api_only_note(a: &ApiPod, findings: &mut Vec<Finding>) -> String {
    match a.phase.as_deref() {
        Some("Succeeded" | "Failed") => format!(
            "the pod is {}: it holds no devices any more",
            a.phase_label()
        ),
        Some("Pending") | None => {
            "the pod is not running yet: the kubelet assigns devices when it admits the pod".into()
        }
        Some(phase) => {
            let requested: Vec<String> = a
                .containers
                .iter()
                .flat_map(|c| {
                    c.gpu_requests
                        .iter()
                        .map(move |(r, n)| format!("{}: {r}={n}", c.name))
                })
                .collect();
            findings.push(Finding {
                code: "alloc.requested_not_assigned".into(),
                severity: Severity::Warning,
                gpu: None,
                gpu_uuid: None,
                summary: format!(
                    "{}/{} is {phase} and requests GPUs, but the kubelet lists no GPU device for it: its containers may run without the GPUs they asked for, or the kubelet lost its device checkpoint.",
                    a.namespace, a.name
                ),
                evidence: vec![
                    format!("pod = {}/{}", a.namespace, a.name),
                    format!("phase = {phase}"),
                    format!("requests = {}", requested.join(", ")),
                    "kubelet_devices = 0".into(),
                ],
                action: Action {
                    kind: ActionKind::Investigate,
                    detail: "check the device plugin's logs and the kubelet's device-manager checkpoint; recreate the pod if it runs without its GPUs".into(),
                },
                about: Vec::new(),
                first_seen: None,
            });
            format!("the pod is {phase} but the kubelet assigned it no GPU device")
        }
    }
}

fn kubelet_only_note(
    ns: &str,
    name: &str,
    api: Option<&ApiPod>,
    containers: &[ContainerAssignment],
    findings: &mut Vec<Finding>,
) -> String {
    let devices: Vec<String> = containers
        .iter()
        .flat_map(|c| c.devices.iter().map(|d| d.device_id.clone()))
        .collect();
    let gpus: BTreeSet<u32> = containers
        .iter()
        .flat_map(|c| c.devices.iter().filter_map(|d| d.gpu_index))
        .collect();
    let (why, note) = match api {
        Some(_) => (
            "the API server lists the pod on this node without GPU requests",
            "the API server lists this pod without GPU requests, yet the kubelet assigned it GPU devices",
        ),
        None => (
            "the API server does not list the pod on this node",
            "the API server does not list this pod on this node (deleted while the kubelet still tears it down, or a static pod without a mirror)",
        ),
    };
    findings.push(Finding {
        code: "alloc.assigned_not_in_api".into(),
        severity: Severity::Warning,
        gpu: (gpus.len() == 1).then(|| gpus.iter().next().copied()).flatten(),
        gpu_uuid: None,
        summary: format!(
            "The kubelet still assigns {} GPU device(s) to {ns}/{name}, but {why}: the scheduler counts those GPUs as free.",
            devices.len()
        ),
        evidence: vec![
            format!("pod = {ns}/{name}"),
            format!("device_ids = {}", devices.join(", ")),
            format!(
                "gpus = {}",
                gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        ],
        action: Action {
            kind: ActionKind::Investigate,
            detail: "check the kubelet's log for the pod's teardown; if it is stuck, restart the kubelet or remove the static pod manifest".into(),
        },
        about: Vec::new(),
        first_seen: None,
    });
    note.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::GpuRef;
    use crate::analysis::processes::{GpuProcesses, ProcessReport};
    use crate::attribution::device::{DeviceIdForm, ResourceKind};
    use crate::attribution::{ContainerAllocation, PodAllocation};
    use crate::facts::{FieldError, FieldErrorKind, Reading};

    const UID_A: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const UID_GONE: &str = "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e";
    const CID: &str = "3f2a8c1b9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    fn proc(pid: u32, uid: Option<&str>, cid: Option<&str>, readable: bool) -> ProcessReport {
        let r = |s: &str| {
            if readable {
                Reading::Ok(s.to_string())
            } else {
                Reading::Err(FieldError::new(FieldErrorKind::NotFound))
            }
        };
        ProcessReport {
            pid,
            kind: "compute".into(),
            name: r("python3"),
            cmdline: r("python3 train.py"),
            state: r("S"),
            used_memory_mib: Some(1024),
            gpu_instance_id: None,
            compute_instance_id: None,
            mig_device_uuid: None,
            pod_uid: uid.map(String::from),
            container_id: cid.map(String::from),
            age_seconds: Reading::Ok(10),
        }
    }

    fn report(procs: Vec<ProcessReport>) -> ProcessesReport {
        ProcessesReport {
            gpus: vec![GpuProcesses {
                gpu: GpuRef {
                    index: 3,
                    uuid: Reading::Ok("GPU-00000000-0000-0000-0000-000000000003".into()),
                    pci_bus_id: Reading::default(),
                },
                memory_used_mib: Reading::Ok(4096),
                processes: Reading::Ok(procs),
            }],
            findings: vec![],
        }
    }

    fn api_pod(ns: &str, name: &str, uid: &str, phase: &str, gpus: u64) -> ApiPod {
        ApiPod {
            namespace: ns.into(),
            name: name.into(),
            uid: uid.into(),
            mirror_uid: None,
            phase: Some(phase.into()),
            containers: vec![ApiContainer {
                name: "train".into(),
                container_id: Some(CID.into()),
                gpu_requests: if gpus > 0 {
                    BTreeMap::from([("nvidia.com/gpu".to_string(), gpus)])
                } else {
                    BTreeMap::new()
                },
                claims: vec![],
            }],
        }
    }

    /// A pod that gets its GPU through a DRA claim requests no `nvidia.com/*`: the kubelet's claim devices are
    /// its GPUs (seen by both, no count mismatch, no "assigned but not in the API" warning); a pod whose claims
    /// the kubelet lists no GPU for (a NIC claim, say) is not a GPU pod.
    #[test]
    fn a_dra_pod_is_seen_by_both_sides() {
        let mut dev = device("gpu-3", 3);
        dev.resource_name = "gpu.nvidia.com".into();
        dev.resource = ResourceKind::Claim;
        dev.form = Some(DeviceIdForm::DraName);
        dev.claim = Some(crate::attribution::ClaimRef {
            namespace: "ml".into(),
            name: "train-gpus".into(),
            pool: "node-a".into(),
            cdi_ids: vec![],
            from_api_server: false,
        });
        let r = alloc(true, vec![kubelet_pod("ml", "train-0", vec![dev])]);
        let mut train = api_pod("ml", "train-0", UID_A, "Running", 0);
        train.containers[0].claims = vec!["train-gpus".into()];
        let mut nic = api_pod("ml", "nic-user", UID_GONE, "Running", 0);
        nic.containers[0].claims = vec!["rdma".into()];
        let j = join_allocation(&r, &[train, nic]);
        assert_eq!(j.pods.len(), 1, "{:?}", j.pods);
        assert_eq!(j.pods[0].seen_by, SeenBy::Both);
        assert_eq!(j.pods[0].note, None);
        assert_eq!(j.pods[0].containers[0].claims, vec!["train-gpus"]);
        assert!(j.findings.is_empty(), "{:?}", j.findings);
    }

    #[test]
    fn runtime_scheme_is_stripped() {
        assert_eq!(strip_runtime_scheme(&format!("containerd://{CID}")), CID);
        assert_eq!(
            strip_runtime_scheme(&format!("cri-o://{}", CID.to_uppercase())),
            CID
        );
        assert_eq!(strip_runtime_scheme(CID), CID);
    }

    #[test]
    fn processes_are_named_from_the_pod_list() {
        let r = report(vec![
            proc(10, Some(UID_A), Some(CID), true),
            proc(11, Some(UID_GONE), None, true),
            proc(12, None, None, true),
            proc(13, None, None, false),
        ]);
        let pods = [api_pod("ml", "train-0", UID_A, "Running", 1)];
        let j = join_processes(&r, Some(&pods));
        let kinds: Vec<ProcessOwnerKind> = j.owners.iter().map(|o| o.owner).collect();
        assert_eq!(
            kinds,
            [
                ProcessOwnerKind::Pod,
                ProcessOwnerKind::PodNotInApi,
                ProcessOwnerKind::OutsidePod,
                ProcessOwnerKind::Unknown
            ]
        );
        let o = &j.owners[0];
        assert_eq!(
            (
                o.namespace.as_deref(),
                o.pod.as_deref(),
                o.container.as_deref(),
                o.gpu
            ),
            (Some("ml"), Some("train-0"), Some("train"), 3)
        );
        assert_eq!(o.pod_phase.as_deref(), Some("Running"));
        assert_eq!(j.findings.len(), 1, "{:?}", j.findings);
        assert_eq!(j.findings[0].code, "alloc.process_pod_not_in_api");
        assert_eq!(j.findings[0].gpu, Some(3));
        assert!(j.findings[0].summary.contains(UID_GONE));
    }

    #[test]
    fn without_a_pod_list_pods_stay_unnamed_and_nothing_is_judged() {
        let r = report(vec![
            proc(10, Some(UID_A), Some(CID), true),
            proc(12, None, None, true),
        ]);
        let j = join_processes(&r, None);
        assert_eq!(j.owners[0].owner, ProcessOwnerKind::PodUnnamed);
        assert_eq!(j.owners[0].pod, None);
        assert_eq!(j.owners[1].owner, ProcessOwnerKind::OutsidePod);
        assert!(j.findings.is_empty());
    }

    #[test]
    fn static_pods_match_by_mirror_uid_and_finished_pods_are_flagged() {
        let r = report(vec![proc(10, Some(UID_A), None, true)]);
        let mut mirror = api_pod("kube-system", "dcgm-node-1", UID_GONE, "Succeeded", 0);
        mirror.mirror_uid = Some(UID_A.into());
        let j = join_processes(&r, Some(&[mirror]));
        assert_eq!(j.owners[0].owner, ProcessOwnerKind::Pod);
        assert_eq!(j.owners[0].pod.as_deref(), Some("dcgm-node-1"));
        // No container id from the cgroup: the container is not guessed.
        assert_eq!(j.owners[0].container, None);
        assert_eq!(j.findings[0].code, "alloc.process_in_finished_pod");
    }

    fn device(id: &str, gpu: u32) -> AllocatedDevice {
        AllocatedDevice {
            resource_name: "nvidia.com/gpu".into(),
            resource: ResourceKind::Gpu,
            device_id: id.into(),
            form: Some(DeviceIdForm::GpuUuid),
            replica: None,
            gpu_index: Some(gpu),
            gpu_uuid: Some(id.into()),
            mig: None,
            claim: None,
            error: None,
        }
    }

    fn kubelet_pod(ns: &str, name: &str, devices: Vec<AllocatedDevice>) -> PodAllocation {
        PodAllocation {
            namespace: ns.into(),
            name: name.into(),
            uid: None,
            containers: vec![ContainerAllocation {
                name: "train".into(),
                started_unix: None,
                devices,
            }],
        }
    }

    fn alloc(exact: bool, pods: Vec<PodAllocation>) -> AllocationReport {
        AllocationReport {
            exact,
            why: (!exact).then(|| "not queried".into()),
            kubelet_socket: None,
            allocatable: Reading::default(),
            dra: None,
            gpus: vec![],
            pods,
            findings: vec![],
        }
    }

    #[test]
    fn allocation_join_keeps_both_sides_visible() {
        let g1 = "GPU-00000000-0000-0000-0000-000000000001";
        let g2 = "GPU-00000000-0000-0000-0000-000000000002";
        let r = alloc(
            true,
            vec![
                kubelet_pod("ml", "train-0", vec![device(g1, 1), device(g2, 2)]),
                kubelet_pod("ml", "ghost", vec![device(g2, 2)]),
                kubelet_pod("ml", "short", vec![device(g1, 1)]),
            ],
        );
        let pods = [
            api_pod("ml", "train-0", UID_A, "Running", 2),
            api_pod("ml", "pending", UID_GONE, "Pending", 1),
            api_pod(
                "ml",
                "lost",
                "11111111-2222-4333-8444-555555555555",
                "Running",
                1,
            ),
            api_pod(
                "ml",
                "short",
                "11111111-2222-4333-8444-666666666666",
                "Running",
                2,
            ),
            api_pod(
                "ml",
                "cpu-only",
                "11111111-2222-4333-8444-777777777777",
                "Running",
                0,
            ),
        ];
        let j = join_allocation(&r, &pods);
        let got: Vec<(&str, SeenBy)> = j
            .pods
            .iter()
            .map(|p| (p.name.as_str(), p.seen_by))
            .collect();
        assert_eq!(
            got,
            [
                ("ghost", SeenBy::KubeletOnly),
                ("lost", SeenBy::ApiOnly),
                ("pending", SeenBy::ApiOnly),
                ("short", SeenBy::Both),
                ("train-0", SeenBy::Both),
            ]
        );
        let train = &j.pods[4];
        assert_eq!(train.uid.as_deref(), Some(UID_A));
        assert_eq!(train.note, None);
        assert_eq!(train.containers[0].requests["nvidia.com/gpu"], 2);
        let idx: Vec<Option<u32>> = train.containers[0]
            .devices
            .iter()
            .map(|d| d.gpu_index)
            .collect();
        assert_eq!(idx, [Some(1), Some(2)]);
        assert!(
            j.pods[3]
                .note
                .as_deref()
                .unwrap()
                .contains("requests 2 nvidia.com/gpu, the kubelet assigned 1")
        );
        assert!(
            j.pods[2]
                .note
                .as_deref()
                .unwrap()
                .contains("not running yet")
        );
        let codes: Vec<&str> = j.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            ["alloc.assigned_not_in_api", "alloc.requested_not_assigned"]
        );
        assert_eq!(j.findings[0].gpu, Some(2));
        assert!(j.findings[1].summary.contains("ml/lost"));
    }

    #[test]
    fn a_non_exact_report_joins_nothing_and_judges_nothing() {
        let j = join_allocation(
            &alloc(false, vec![]),
            &[api_pod("ml", "train-0", UID_A, "Running", 2)],
        );
        assert_eq!(j.pods.len(), 1);
        assert_eq!(j.pods[0].seen_by, SeenBy::ApiOnly);
        assert_eq!(j.pods[0].note, None);
        assert!(j.findings.is_empty());
    }
}
