//! GPU ↔ pod ↔ process attribution: what the kubelet assigned (PodResources `List` and
//! `GetAllocatableResources`), what runs on each GPU (NVML processes), and where each process lives
//! (`/proc/<pid>/cgroup` → pod UID and container id, named through the kubelet's log layout).
//!
//! Pure: every input is a raw fact in [`NodeFacts`]. When the kubelet could not be asked, the report says
//! so (`exact: false` with why) and still attributes processes to pods through their cgroups.

pub mod assigned;
pub mod cgroup;
pub mod device;
pub mod dra;
pub mod join;
pub mod kubelet;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::analysis::{GpuRef, error_name, gpu_label, mib};
use crate::facts::{
    ContainerDevicesFacts, FieldError, FieldErrorKind, GpuFacts, GpuProcessFacts, GpuVendor,
    HostProcessFacts, NodeFacts, Reading,
};
use crate::finding::{Action, ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;
pub use assigned::{AllocatedDevice, ClaimRef, ContainerAllocation, PodAllocation};
use cgroup::CgroupAttribution;
use device::{MigRef, ResourceKind};

/// An allocated GPU with no process for this long is reported as idle.
pub const IDLE_ALLOCATION_SECS: f64 = 3600.0;

/// `node-probe allocation`: which pod holds which GPU, and whose processes use it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AllocationReport {
    /// True when the kubelet answered: the device ids and GPU indices are its own assignment.
    pub exact: bool,
    /// Why the assignment is not exact (the kubelet could not be asked); absent when exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The PodResources socket, relative to the host root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_socket: Option<String>,
    /// Whether `GetAllocatableResources` answered (kubelets before 1.21 do not implement it).
    pub allocatable: Reading<bool>,
    /// GPUs allocated through DRA ResourceClaims; absent where the node shows no DRA driver or claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra: Option<dra::DraAllocation>,
    pub gpus: Vec<GpuAllocation>,
    /// Pods holding at least one NVIDIA device, as the kubelet listed them.
    pub pods: Vec<PodAllocation>,
    pub findings: Vec<Finding>,
}

impl Judged for AllocationReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuAllocation {
    #[serde(flatten)]
    pub gpu: GpuRef,
    /// Whether the kubelet can assign this GPU (or any of its MIG devices); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<bool>,
    /// Containers the kubelet assigned this GPU (or one of its MIG devices / replicas) to, through the
    /// device plugin or a DRA claim.
    pub allocated_to: Vec<Holder>,
    /// UIDs of claims prepared for this GPU that the kubelet did not report (their pods are not named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreported_claims: Vec<String>,
    pub processes: Reading<Vec<AttributedProcess>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Holder {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub resource_name: String,
    pub device_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// `namespace/name` of the DRA claim it holds the GPU through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

/// Where a GPU process belongs, from the most to the least alarming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessStatus {
    /// The process is a zombie (or dead) yet the driver still accounts GPU memory to it.
    Zombie,
    /// The PID is gone from the host's /proc, yet NVML still lists it.
    ProcessGone,
    /// It runs in a pod the kubelet no longer runs (deleted or finished).
    PodGone,
    /// Its container is not among the kubelet's current containers of the pod.
    ContainerExited,
    /// It runs in a pod the kubelet did not assign this GPU to.
    NotAllocated,
    /// It runs outside any pod.
    OutsidePod,
    /// It runs in a pod the kubelet assigned this GPU to.
    Allocated,
    /// In a pod, but the assignment could not be checked (kubelet unreachable or names unknown).
    Unverified,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttributedProcess {
    pub pid: u32,
    pub kind: String,
    #[serde(default)]
    pub used_memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub cgroup: Reading<CgroupAttribution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub status: ProcessStatus,
}

/// Names from the kubelet's log layout.
#[derive(Default)]
struct Names {
    readable: bool,
    pod_by_uid: BTreeMap<String, (String, String)>,
    uid_by_pod: BTreeMap<(String, String), String>,
    /// container id → (namespace, pod, container)
    containers: BTreeMap<String, (String, String, String)>,
    /// (namespace, pod, container) → log directory mtime
    started: BTreeMap<(String, String, String), f64>,
}

impl Names {
    fn of(facts: &NodeFacts) -> Names {
        let Some(logs) = facts.kubelet_logs.ok() else {
            return Names::default();
        };
        let mut n = Names {
            readable: true,
            ..Names::default()
        };
        for dir in &logs.pods {
            let Some(p) = kubelet::parse_pod_dir(&dir.name) else {
                continue;
            };
            for c in &dir.containers {
                if let Some(t) = c.modified_unix {
                    n.started
                        .insert((p.namespace.clone(), p.name.clone(), c.name.clone()), t);
                }
            }
            n.uid_by_pod
                .insert((p.namespace.clone(), p.name.clone()), p.uid.clone());
            n.pod_by_uid.insert(p.uid, (p.namespace, p.name));
        }
        for file in &logs.containers {
            if let Some(c) = kubelet::parse_container_log(file) {
                n.containers
                    .insert(c.container_id, (c.namespace, c.pod, c.container));
            }
        }
        n
    }
}

/// Read and locate one device id of a GPU resource.
fn allocated_device(
    resource_name: &str,
    kind: ResourceKind,
    id: &str,
    gpus: &[GpuFacts],
) -> AllocatedDevice {
    let mut d = AllocatedDevice::unlocated(resource_name, kind, id);
    match device::parse_resource_device_id(resource_name, id) {
        Ok(p) => {
            d.form = Some(p.form);
            d.replica = p.replica;
            match device::locate(&p.target, gpus) {
                Ok(l) => {
                    d.gpu_index = Some(l.gpu);
                    d.gpu_uuid = l.gpu_uuid;
                    d.mig = l.mig;
                }
                Err(e) => d.error = Some(e),
            }
        }
        Err(e) => d.error = Some(e),
    }
    d
}

pub(crate) fn gpu_devices<'a>(
    devices: &'a [ContainerDevicesFacts],
    gpus: &'a [GpuFacts],
) -> impl Iterator<Item = AllocatedDevice> + 'a {
    devices.iter().flat_map(move |d| {
        let kind = device::classify_resource(&d.resource_name);
        d.device_ids.iter().filter_map(move |id| {
            kind.clone()
                .map(|k| allocated_device(&d.resource_name, k, id, gpus))
        })
    })
}

/// An AMD GPU resource of the device plugin or AMD's DRA driver.
fn is_amd_resource(name: &str) -> bool {
    crate::facts::gpu_resource_vendor(name).or_else(|| GpuVendor::of_dra_driver(name))
        == Some(GpuVendor::Amd)
}

/// Does an assigned device cover a process on GPU `gpu` (in GPU instance `gi`, when MIG)?
fn covers(d: &AllocatedDevice, gpu: u32, gi: Option<u32>) -> bool {
    d.gpu_index == Some(gpu)
        && match (&d.mig, gi) {
            (Some(m), Some(gi)) => m.gpu_instance_id.is_none_or(|x| x == gi),
            _ => true,
        }
}

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> AllocationReport {
    let names = Names::of(facts);
    let (exact, why, socket, listed, allocatable) = match &facts.pod_resources {
        Reading::Ok(pr) => (
            true,
            None,
            Some(pr.socket.clone()),
            Some(&pr.pods),
            pr.allocatable.map(|a| a.clone()),
        ),
        Reading::Err(e) => (
            false,
            Some(why_not_exact(e)),
            None,
            None,
            Reading::Err(e.clone()),
        ),
    };

    let mut pods: Vec<PodAllocation> = Vec::new();
    for p in listed.into_iter().flatten() {
        let containers: Vec<ContainerAllocation> = p
            .containers
            .iter()
            .map(|c| ContainerAllocation {
                name: c.name.clone(),
                started_unix: names
                    .started
                    .get(&(p.namespace.clone(), p.name.clone(), c.name.clone()))
                    .copied(),
                devices: gpu_devices(&c.devices, &facts.gpus)
                    .chain(c.claims.iter().flat_map(|cl| {
                        cl.devices
                            .iter()
                            .filter_map(|d| dra::claim_device(cl, d, &facts.gpus))
                    }))
                    .collect(),
            })
            .filter(|c| !c.devices.is_empty())
            .collect();
        if containers.is_empty() {
            continue;
        }
        pods.push(PodAllocation {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            uid: names
                .uid_by_pod
                .get(&(p.namespace.clone(), p.name.clone()))
                .cloned(),
            containers,
        });
    }
    let active: BTreeSet<(String, String)> = listed
        .into_iter()
        .flatten()
        .map(|p| (p.namespace.clone(), p.name.clone()))
        .collect();
    let allocatable_gpus: Option<BTreeSet<u32>> = allocatable.ok().map(|devs| {
        gpu_devices(devs, &facts.gpus)
            .filter_map(|d| d.gpu_index)
            .collect()
    });

    // The kubelet is the first authority on DRA claims; where it names none, the API server's claims
    // allocated on this node (given by the launcher) name the holders.
    let kubelet_named_claims = pods
        .iter()
        .flat_map(|p| &p.containers)
        .flat_map(|c| &c.devices)
        .any(|d| d.claim.is_some());
    let api_unreserved = match &facts.api_claims {
        Some(claims) if !kubelet_named_claims => {
            dra::add_api_claims(claims, &facts.gpus, &mut pods)
        }
        _ => Vec::new(),
    };
    let dra = dra::summarize(facts, &pods, api_unreserved);
    // A claim nothing names may hold any GPU: the assignment is not exact, so no process is judged against
    // it (a job's own process on its claimed GPU is not a bypass).
    let (exact, why) = match dra.as_ref().and_then(|d| d.unnamed.as_ref()) {
        Some(u) if exact => (false, Some(u.clone())),
        _ => (exact, why),
    };
    // Gaudi devices are assigned by HLML serial, which the driver does not show in sysfs: without a serial
    // read here, which pod holds which device is unknown, not wrong (no "device not found", no bypass).
    let serial_unread = !facts.gpus.iter().any(|g| g.serial.ok().is_some())
        && pods
            .iter()
            .flat_map(|p| &p.containers)
            .flat_map(|c| &c.devices)
            .any(|d| d.form == Some(device::DeviceIdForm::Serial));
    let (exact, why) = if serial_unread && exact {
        (
            false,
            Some(
                "the Gaudi device plugin names devices by HLML serial, and no serial was read on this node (the habanalabs driver shows none in sysfs)"
                    .to_string(),
            ),
        )
    } else {
        (exact, why)
    };
    // A GPU a DRA driver manages is not in the device plugins' allocatable list: unknown, not "no".
    let dra_gpu_driver = dra.as_ref().is_some_and(|d| {
        d.registered.iter().any(|r| dra::is_gpu_driver(r)) || d.claims_reported > 0
    });
    let mut findings = Vec::new();
    let mut gpus = Vec::new();
    for g in &facts.gpus {
        let mut allocated_to = Vec::new();
        for p in &pods {
            for c in &p.containers {
                for d in c.devices.iter().filter(|d| d.gpu_index == Some(g.index)) {
                    allocated_to.push(Holder {
                        namespace: p.namespace.clone(),
                        pod: p.name.clone(),
                        container: c.name.clone(),
                        resource_name: d.resource_name.clone(),
                        device_id: d.device_id.clone(),
                        mig: d.mig.clone(),
                        replica: d.replica,
                        claim: d
                            .claim
                            .as_ref()
                            .map(|c| format!("{}/{}", c.namespace, c.name)),
                    });
                }
            }
        }
        let processes = g.processes.map(|procs| {
            procs
                .iter()
                .map(|p| attribute(g, p, facts, &names, exact, &active, &pods))
                .collect::<Vec<_>>()
        });
        if let Reading::Ok(procs) = &processes {
            for p in procs {
                process_finding(g, p, &mut findings);
            }
        }
        idle_findings(g, &processes, &pods, &names, facts, &mut findings);
        gpus.push(GpuAllocation {
            gpu: GpuRef::of(g),
            allocatable: allocatable_gpus.as_ref().and_then(|s| {
                (s.contains(&g.index) || !dra_gpu_driver).then(|| s.contains(&g.index))
            }),
            unreported_claims: dra
                .iter()
                .flat_map(|d| &d.unreported_claims)
                .filter(|c| c.devices.iter().any(|d| d.gpu_index == Some(g.index)))
                .map(|c| c.claim_uid.clone())
                .collect(),
            allocated_to,
            processes,
        });
    }
    for p in &pods {
        for c in &p.containers {
            let unread = |d: &&AllocatedDevice| {
                serial_unread && d.form == Some(device::DeviceIdForm::Serial)
            };
            for d in c.devices.iter().filter(|d| d.error.is_some() && !unread(d)) {
                let through = match &d.claim {
                    Some(cl) => format!(" through claim {}/{}", cl.namespace, cl.name),
                    None => String::new(),
                };
                findings.push(Finding {
                    code: "alloc.device_not_found".into(),
                    severity: Severity::Warning,
                    gpu: None,
                    gpu_uuid: None,
                    summary: format!(
                        "The kubelet assigned {} device `{}` to {}/{} (container {}){through}, but no GPU on this node answers to it: the GPU may have fallen off the bus or the device plugin or DRA driver reports stale devices.",
                        d.resource_name, d.device_id, p.namespace, p.name, c.name
                    ),
                    evidence: vec![
                        format!("device_id = {}", d.device_id),
                        format!("why = {}", d.error.as_deref().unwrap_or_default()),
                        format!("gpus_answering = {}", facts.gpus.len()),
                    ],
                    action: Action {
                        kind: ActionKind::Investigate,
                        detail: if is_amd_resource(&d.resource_name) {
                            "compare `amd-smi list` with the device plugin's devices; restart the device plugin if its list is stale"
                        } else if d.resource_name == device::GAUDI_RESOURCE {
                            "compare the serial numbers `hl-smi -L` lists with the device plugin's devices; restart the device plugin if its list is stale"
                        } else {
                            "compare `nvidia-smi -L` with the device plugin's devices; restart the device plugin if its list is stale"
                        }
                        .into(),
                    },
                    about: Vec::new(),
                    first_seen: None,
                });
            }
        }
    }

    if let Some(d) = &dra {
        dra_findings(d, &gpus, &mut findings);
    }
    AllocationReport {
        exact,
        why,
        kubelet_socket: socket,
        allocatable: allocatable.map(|_| true),
        dra,
        gpus,
        pods,
        findings,
    }
}

/// Claims the kubelet did not report, and GPUs handed out twice (device plugin and DRA both).
fn dra_findings(d: &dra::DraAllocation, gpus: &[GpuAllocation], out: &mut Vec<Finding>) {
    if let Some(unnamed) = &d.unnamed {
        out.push(Finding {
            code: "alloc.dra_claims_unnamed".into(),
            severity: Severity::Warning,
            gpu: None,
            gpu_uuid: None,
            summary: format!(
                "Attribution is incomplete: {unnamed}. Every GPU counts as possibly claimed: no process is judged \
                 against the assignment, and resets and kills are refused."
            ),
            evidence: vec![
                format!("dra_drivers_registered = {}", d.registered.join(", ")),
                format!("dra_claims_reported_by_kubelet = {}", d.claims_reported),
                "cdi_claim_specs = 0".into(),
            ],
            action: Action {
                kind: ActionKind::Investigate,
                detail: dra::UNNAMED_FIX.into(),
            },
            about: Vec::new(),
            first_seen: None,
        });
    }
    if let Some(partial) = &d.partial {
        out.push(Finding {
            code: "alloc.dra_claims_unreported".into(),
            severity: Severity::Warning,
            gpu: None,
            gpu_uuid: None,
            summary: format!("{partial}."),
            evidence: d
                .unreported_claims
                .iter()
                .map(|c| {
                    format!(
                        "claim {} ({}): {}",
                        c.claim_uid,
                        c.file,
                        c.devices
                            .iter()
                            .map(|d| match d.gpu_index {
                                Some(i) => format!("{} = GPU {i}", d.device_id),
                                None => d.device_id.clone(),
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect(),
            action: Action {
                kind: ActionKind::Investigate,
                detail: "run the kubelet with KubeletPodResourcesDynamicResources on (1.34+ default) to name the pods; until then treat these GPUs as in use".into(),
            },
            about: Vec::new(),
            first_seen: None,
        });
    }
    for g in gpus {
        let plugin: BTreeSet<(&str, &str)> = g
            .allocated_to
            .iter()
            .filter(|h| h.claim.is_none())
            .map(|h| (h.namespace.as_str(), h.pod.as_str()))
            .collect();
        let claimed: BTreeSet<(&str, &str)> = g
            .allocated_to
            .iter()
            .filter(|h| h.claim.is_some())
            .map(|h| (h.namespace.as_str(), h.pod.as_str()))
            .collect();
        if plugin.is_empty() || claimed.is_empty() || plugin == claimed {
            continue;
        }
        let names = |s: &BTreeSet<(&str, &str)>| {
            s.iter()
                .map(|(ns, p)| format!("{ns}/{p}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(Finding {
            code: "alloc.gpu_allocated_twice".into(),
            severity: Severity::Critical,
            gpu: Some(g.gpu.index),
            gpu_uuid: g.gpu.uuid.ok().cloned(),
            summary: format!(
                "GPU {} is handed out twice: by the device plugin to {} and through a DRA claim to {}. Both jobs share one GPU's memory and compute.",
                g.gpu.index,
                names(&plugin),
                names(&claimed)
            ),
            evidence: g
                .allocated_to
                .iter()
                .map(|h| match &h.claim {
                    Some(c) => format!("{}/{} claim {c} device {}", h.namespace, h.pod, h.device_id),
                    None => format!("{}/{} {} {}", h.namespace, h.pod, h.resource_name, h.device_id),
                })
                .collect(),
            action: Action {
                kind: ActionKind::Investigate,
                detail: "let one manager own the node's GPUs: disable the device plugin where the DRA driver runs (NVIDIA's DRA driver expects the GPU Operator's devicePlugin.enabled=false), then restart one of the jobs".into(),
            },
            about: Vec::new(),
            first_seen: None,
        });
    }
}

fn why_not_exact(e: &FieldError) -> String {
    let base = match e.error {
        FieldErrorKind::NotFound => "the kubelet PodResources socket is not there",
        FieldErrorKind::NoPermission => "no permission to use the kubelet PodResources socket",
        FieldErrorKind::Timeout => "the kubelet PodResources API did not answer in time",
        FieldErrorKind::NotCollected => "the kubelet PodResources API was not queried",
        FieldErrorKind::NotSupported => "this kubelet does not serve the PodResources API",
        _ => "the kubelet PodResources API failed",
    };
    match &e.message {
        Some(m) => format!("{base}: {m}"),
        None => base.to_string(),
    }
}

fn attribute(
    g: &GpuFacts,
    p: &GpuProcessFacts,
    facts: &NodeFacts,
    names: &Names,
    exact: bool,
    active: &BTreeSet<(String, String)>,
    pods: &[PodAllocation],
) -> AttributedProcess {
    let host: Option<&HostProcessFacts> = facts.host_processes.iter().find(|h| h.pid == p.pid);
    let cgroup: Reading<CgroupAttribution> = match host.map(|h| &h.cgroup) {
        Some(Reading::Ok(text)) => match cgroup::parse_proc_cgroup(text) {
            Ok(a) => Reading::Ok(a),
            Err(e) => Reading::Err(FieldError::with_message(FieldErrorKind::Unknown, e)),
        },
        Some(Reading::Err(e)) => Reading::Err(e.clone()),
        None => Reading::default(),
    };
    let state = host.and_then(|h| h.state.ok().cloned());
    let gone = host.is_some_and(|h| {
        [h.state.err(), h.cgroup.err()]
            .iter()
            .all(|e| e.is_some_and(|e| e.error == FieldErrorKind::NotFound))
    });
    let att = cgroup.ok();
    let pod_uid = att.and_then(|a| a.pod_uid.clone());
    let pod_names = pod_uid.as_ref().and_then(|u| names.pod_by_uid.get(u));
    let container = att
        .and_then(|a| a.container_id.as_ref())
        .and_then(|id| names.containers.get(id));
    let status = if matches!(state.as_deref(), Some("Z" | "X" | "x")) {
        ProcessStatus::Zombie
    } else if gone {
        ProcessStatus::ProcessGone
    } else if let Some(a) = att {
        match (&a.pod_uid, pod_names) {
            (None, _) => ProcessStatus::OutsidePod,
            (Some(_), None) if names.readable => ProcessStatus::PodGone,
            (Some(_), None) => ProcessStatus::Unverified,
            (Some(_), Some(_))
                if names.readable
                    && a.container_id.is_some()
                    && a.runtime.as_deref() != Some("crio-conmon")
                    && container.is_none() =>
            {
                ProcessStatus::ContainerExited
            }
            (Some(_), Some((ns, pod))) if exact => {
                if !active.contains(&(ns.clone(), pod.clone())) {
                    ProcessStatus::PodGone
                } else {
                    let held = pods
                        .iter()
                        .filter(|x| &x.namespace == ns && &x.name == pod)
                        .flat_map(|x| &x.containers)
                        // An unnamed container is the API server's claim: any of the pod's.
                        .filter(|c| {
                            c.name.is_empty()
                                || container.is_none_or(|(_, _, name)| &c.name == name)
                        })
                        .flat_map(|c| &c.devices)
                        .any(|d| covers(d, g.index, p.gpu_instance_id));
                    if held {
                        ProcessStatus::Allocated
                    } else {
                        ProcessStatus::NotAllocated
                    }
                }
            }
            _ => ProcessStatus::Unverified,
        }
    } else {
        ProcessStatus::Unverified
    };
    AttributedProcess {
        pid: p.pid,
        kind: p.kind.clone(),
        used_memory_bytes: p.used_memory_bytes,
        gpu_instance_id: p.gpu_instance_id,
        compute_instance_id: p.compute_instance_id,
        name: host.and_then(|h| h.name.ok().cloned()),
        state,
        namespace: pod_names.map(|(ns, _)| ns.clone()),
        pod: pod_names.map(|(_, n)| n.clone()),
        container: container.map(|(_, _, c)| c.clone()),
        cgroup,
        status,
    }
}

fn who(p: &AttributedProcess) -> String {
    match &p.name {
        Some(n) => format!("PID {} ({n})", p.pid),
        None => format!("PID {}", p.pid),
    }
}

fn memory(p: &AttributedProcess) -> String {
    match p.used_memory_bytes {
        Some(b) => format!("{} MiB", mib(b)),
        None => "GPU memory (amount not reported)".into(),
    }
}

fn pod_label(p: &AttributedProcess) -> Option<String> {
    match (
        &p.namespace,
        &p.pod,
        p.cgroup.ok().and_then(|c| c.pod_uid.as_ref()),
    ) {
        (Some(ns), Some(pod), _) => Some(format!("{ns}/{pod}")),
        (_, _, Some(uid)) => Some(format!("pod UID {uid}")),
        _ => None,
    }
}

fn process_evidence(p: &AttributedProcess) -> Vec<String> {
    let mut ev = vec![format!("pid = {}", p.pid)];
    if let Some(b) = p.used_memory_bytes {
        ev.push(format!("used_memory_mib = {}", mib(b)));
    }
    if let Some(gi) = p.gpu_instance_id {
        ev.push(format!("gpu_instance_id = {gi}"));
    }
    if let Some(s) = &p.state {
        ev.push(format!("state = {s}"));
    }
    match &p.cgroup {
        Reading::Ok(c) => {
            ev.push(format!("cgroup = {}", c.path));
            if let Some(u) = &c.pod_uid {
                ev.push(format!("pod_uid = {u}"));
            }
            if let Some(id) = &c.container_id {
                ev.push(format!("container_id = {id}"));
            }
        }
        Reading::Err(e) => ev.push(format!("cgroup = <{}>", error_name(e.error))),
    }
    if let (Some(ns), Some(pod)) = (&p.namespace, &p.pod) {
        ev.push(format!("pod = {ns}/{pod}"));
    }
    ev.push(format!(
        "status = {}",
        serde_json::to_value(p.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    ));
    ev
}

fn process_finding(g: &GpuFacts, p: &AttributedProcess, out: &mut Vec<Finding>) {
    if p.used_memory_bytes == Some(0) {
        return;
    }
    let gpu = gpu_label(g);
    let (code, summary, kind, detail) = match p.status {
        ProcessStatus::Zombie | ProcessStatus::ProcessGone => {
            let what = if p.status == ProcessStatus::Zombie {
                format!("{} is a zombie", who(p))
            } else {
                format!("PID {} is gone from the host's /proc", p.pid)
            };
            let owner = pod_label(p).map(|l| format!(" (from {l})")).unwrap_or_default();
            (
                "alloc.zombie_process",
                format!(
                    "{what}{owner} yet the driver still holds {} for it on {gpu}: that memory is lost to every pod until it is released.",
                    memory(p)
                ),
                ActionKind::ResetGpuWhenDrained,
                format!(
                    "end the zombie's parent (or its pod) so the context is released; if the memory stays held, drain the GPU and `nvidia-smi -r -i {}`",
                    g.index
                ),
            )
        }
        ProcessStatus::PodGone | ProcessStatus::ContainerExited => (
            "alloc.process_in_exited_container",
            format!(
                "{} holds {} on {gpu} but its {} no longer runs on this node ({}): a leaked process the scheduler believes is gone.",
                who(p),
                memory(p),
                if p.status == ProcessStatus::PodGone { "pod" } else { "container" },
                pod_label(p).unwrap_or_else(|| "unknown pod".into())
            ),
            ActionKind::Investigate,
            format!(
                "kill PID {} on the host; if the memory stays held, drain the GPU and reset it",
                p.pid
            ),
        ),
        ProcessStatus::OutsidePod => (
            "alloc.process_outside_pod",
            format!(
                "{} runs outside any pod and holds {} on {gpu}: the scheduler does not know this GPU is in use.",
                who(p),
                memory(p)
            ),
            ActionKind::Investigate,
            "find who started it (its cgroup path names the service or session); stop it or cordon the node".into(),
        ),
        ProcessStatus::NotAllocated => (
            "alloc.process_not_allocated",
            format!(
                "{} in {} uses {gpu}, which the kubelet did not assign to it: the pod bypasses the device plugin (NVIDIA_VISIBLE_DEVICES=all, privileged, or /dev/nvidia* mounted) and competes with the GPU's rightful holder.",
                who(p),
                pod_label(p).unwrap_or_default()
            ),
            ActionKind::Investigate,
            "remove the bypass from the pod spec; request the GPU through nvidia.com/gpu".into(),
        ),
        ProcessStatus::Allocated | ProcessStatus::Unverified => return,
    };
    out.push(Finding {
        code: code.into(),
        severity: Severity::Warning,
        gpu: Some(g.index),
        gpu_uuid: g.uuid.ok().cloned(),
        summary,
        evidence: process_evidence(p),
        action: Action { kind, detail },
        about: Vec::new(),
        first_seen: None,
    });
}

/// Containers assigned this GPU (or a MIG device of it) for a long time with no process on it.
fn idle_findings(
    g: &GpuFacts,
    processes: &Reading<Vec<AttributedProcess>>,
    pods: &[PodAllocation],
    names: &Names,
    facts: &NodeFacts,
    out: &mut Vec<Finding>,
) {
    let (Reading::Ok(procs), Some(now)) = (processes, facts.host.now_unix.get()) else {
        return;
    };
    for p in pods {
        for c in &p.containers {
            let Some(started) = c.started_unix else {
                continue;
            };
            let idle = now - started;
            if idle < IDLE_ALLOCATION_SECS {
                continue;
            }
            let uid = names.uid_by_pod.get(&(p.namespace.clone(), p.name.clone()));
            for d in c.devices.iter().filter(|d| d.gpu_index == Some(g.index)) {
                // Dead processes and other pods' processes (a bypass, a leak) are not this pod's use; a
                // process whose pod is unknown might be.
                let used = procs.iter().any(|x| {
                    let live = matches!(
                        x.status,
                        ProcessStatus::Allocated
                            | ProcessStatus::NotAllocated
                            | ProcessStatus::Unverified
                    );
                    let x_uid = x.cgroup.ok().and_then(|cg| cg.pod_uid.as_ref());
                    live && covers(d, g.index, x.gpu_instance_id)
                        && (uid.is_none() || x_uid.is_none() || x_uid == uid)
                });
                if used {
                    continue;
                }
                let what = match d.mig.as_ref().and_then(|m| m.gpu_instance_id) {
                    Some(gi) => format!("MIG instance {gi} of {}", gpu_label(g)),
                    None => gpu_label(g),
                };
                out.push(Finding {
                    code: "alloc.allocated_idle".into(),
                    severity: Severity::Warning,
                    gpu: Some(g.index),
                    gpu_uuid: g.uuid.ok().cloned(),
                    summary: format!(
                        "{what} has been assigned to {}/{} (container {}) for {} with no process on it: a reserved GPU doing no work.",
                        p.namespace,
                        p.name,
                        c.name,
                        duration(idle)
                    ),
                    evidence: vec![
                        format!("device_id = {}", d.device_id),
                        format!("container_started_unix = {started}"),
                        format!("idle_seconds = {}", idle as u64),
                        "processes_on_device = 0".into(),
                    ],
                    action: Action {
                        kind: ActionKind::Investigate,
                        detail: format!(
                            "check whether {}/{} is stuck (logs, init, data loading); delete it to free the GPU if it is",
                            p.namespace, p.name
                        ),
                    },
                    about: Vec::new(),
                    first_seen: None,
                });
            }
        }
    }
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(59.0), "0m");
        assert_eq!(duration(3700.0), "1h 01m");
        assert_eq!(duration(90000.0), "1d 1h");
        assert_eq!(duration(-5.0), "0m");
    }

    /// An AMD node: one pod holds a whole GPU by its PCI address (`amd.com/gpu`, naming strategy
    /// `single`), another a compute partition by its platform device (`amd.com/cpx_nps4`, `mixed`), as
    /// ROCm/k8s-device-plugin reports them to the kubelet; an id no GPU answers to is a finding that names
    /// AMD's tool.
    #[test]
    fn amd_devices_are_attributed_by_pci_address_and_partition() {
        use crate::facts::{
            AmdGpuFacts, AmdPartitionFacts, AmdXcpFacts, GpuVendor, PodResourcesContainerFacts,
            PodResourcesFacts, PodResourcesPodFacts,
        };
        let gpu = |index: u32, bdf: &str, xcps: &[&str]| GpuFacts {
            index,
            vendor: GpuVendor::Amd,
            pci_bus_id: Reading::Ok(bdf.into()),
            amd: Some(AmdGpuFacts {
                partition: Reading::Ok(AmdPartitionFacts {
                    xcps: xcps
                        .iter()
                        .map(|n| AmdXcpFacts {
                            name: n.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let pod = |name: &str, resource: &str, ids: &[&str]| PodResourcesPodFacts {
            name: name.into(),
            namespace: "ml".into(),
            containers: vec![PodResourcesContainerFacts {
                name: "main".into(),
                devices: vec![ContainerDevicesFacts {
                    resource_name: resource.into(),
                    device_ids: ids.iter().map(|s| s.to_string()).collect(),
                    numa_nodes: vec![],
                }],
                ..Default::default()
            }],
        };
        let facts = NodeFacts {
            gpus: vec![
                gpu(0, "0000:19:00.0", &[]),
                gpu(1, "0000:3b:00.0", &["amdgpu_xcp_8", "amdgpu_xcp_9"]),
            ],
            pod_resources: Reading::Ok(PodResourcesFacts {
                socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
                pods: vec![
                    pod("train", "amd.com/gpu", &["0000:19:00.0"]),
                    pod("infer", "amd.com/cpx_nps4", &["amdgpu_xcp_9"]),
                    pod("stale", "amd.com/gpu", &["0000:5d:00.0"]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = analyze(&facts, &AnalysisOptions::default());
        let holders = |i: usize| -> Vec<(String, String)> {
            r.gpus[i]
                .allocated_to
                .iter()
                .map(|h| (h.pod.clone(), h.device_id.clone()))
                .collect()
        };
        assert_eq!(
            holders(0),
            [("train".to_string(), "0000:19:00.0".to_string())]
        );
        assert_eq!(
            holders(1),
            [("infer".to_string(), "amdgpu_xcp_9".to_string())]
        );
        assert_eq!(
            r.pods[1].containers[0].devices[0].resource,
            ResourceKind::Partition {
                profile: "cpx_nps4".into()
            }
        );
        let stale = r
            .findings
            .iter()
            .find(|f| f.code == "alloc.device_not_found")
            .expect("the stale id is a finding");
        assert!(stale.summary.contains("0000:5d:00.0"), "{}", stale.summary);
        assert!(
            stale.action.detail.contains("amd-smi"),
            "{}",
            stale.action.detail
        );
    }

    /// A Gaudi node: Intel's device plugin names each device by its HLML serial
    /// (HabanaAI/habanalabs-k8s-device-plugin 1.16.0 `habanalabs.go:88`) under `habana.ai/gaudi`. Where a
    /// serial was read, the id lands on its device and a stale one names Intel's tool; where none was (sysfs
    /// has none), the assignment is unknown: not exact, and no "device not found" for every device.
    #[test]
    fn gaudi_devices_are_attributed_by_serial_only_where_serials_were_read() {
        use crate::facts::{
            GpuVendor, PodResourcesContainerFacts, PodResourcesFacts, PodResourcesPodFacts,
        };
        let gpu = |index: u32, serial: Option<&str>| GpuFacts {
            index,
            vendor: GpuVendor::Intel,
            serial: match serial {
                Some(s) => Reading::Ok(s.into()),
                None => Reading::Err(FieldError::new(FieldErrorKind::NotSupported)),
            },
            ..Default::default()
        };
        let pod = |name: &str, ids: &[&str]| PodResourcesPodFacts {
            name: name.into(),
            namespace: "ml".into(),
            containers: vec![PodResourcesContainerFacts {
                name: "main".into(),
                devices: vec![ContainerDevicesFacts {
                    resource_name: "habana.ai/gaudi".into(),
                    device_ids: ids.iter().map(|s| s.to_string()).collect(),
                    numa_nodes: vec![],
                }],
                ..Default::default()
            }],
        };
        let node = |gpus: Vec<GpuFacts>| NodeFacts {
            gpus,
            pod_resources: Reading::Ok(PodResourcesFacts {
                socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
                pods: vec![pod("train", &["AN00000421"]), pod("stale", &["AN00000999"])],
                ..Default::default()
            }),
            ..Default::default()
        };

        let read = analyze(
            &node(vec![gpu(0, Some("AN00000420")), gpu(1, Some("AN00000421"))]),
            &AnalysisOptions::default(),
        );
        assert!(read.exact, "{:?}", read.why);
        assert_eq!(read.gpus[1].allocated_to[0].pod, "train");
        assert!(read.gpus[0].allocated_to.is_empty());
        let d = &read.pods[0].containers[0].devices[0];
        assert_eq!(
            (d.resource.clone(), d.form),
            (ResourceKind::Gpu, Some(device::DeviceIdForm::Serial))
        );
        let stale = read
            .findings
            .iter()
            .find(|f| f.code == "alloc.device_not_found")
            .expect("the stale serial is a finding");
        assert!(stale.summary.contains("AN00000999"), "{}", stale.summary);
        assert!(
            stale.action.detail.contains("hl-smi -L"),
            "{}",
            stale.action.detail
        );

        let unread = analyze(
            &node(vec![gpu(0, None), gpu(1, None)]),
            &AnalysisOptions::default(),
        );
        assert!(!unread.exact);
        assert!(
            unread.why.as_deref().unwrap().contains("HLML serial"),
            "{:?}",
            unread.why
        );
        assert!(
            !unread
                .findings
                .iter()
                .any(|f| f.code == "alloc.device_not_found"),
            "{:?}",
            unread.findings
        );
        assert!(unread.gpus.iter().all(|g| g.allocated_to.is_empty()));
        assert_eq!(unread.pods.len(), 2, "the pods still hold their devices");
    }

    #[test]
    fn no_kubelet_no_facts_is_not_exact_and_quiet() {
        let r = analyze(&NodeFacts::default(), &AnalysisOptions::default());
        assert!(!r.exact);
        assert!(r.why.unwrap().contains("not queried"));
        assert!(r.findings.is_empty());
    }
}
