//! One verdict for a whole workload (a training job's pods across its nodes): its pods and nodes as the API
//! server reports them, each node's probe report and the GPUs each pod holds, ranked into suspects with their
//! evidence. Pure: the launcher gathers the inputs.
//!
//! Suspects, most urgent first: hardware faults on GPUs the workload holds (XID, ECC, fallen off the bus,
//! NVLink, PCIe; the GPU that faulted first leads), Kubernetes causes (pods failed, restarting, OOMKilled or
//! Pending; nodes NotReady), faulty fabric ports of a multi-node job, stragglers (a GPU slower than its peers
//! of the same model: harmful clock events, PCIe trained below its peers and its maximum, fewer active
//! NVLinks, utilisation far from the peers'), then warnings. Faults on GPUs the workload does not hold are
//! listed apart, never as suspects.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::describe::DescribeReport;
use super::telemetry::ReasonClass;
use crate::attribution::AllocationReport;
use crate::finding::{Finding, Severity};

/// What `node-probe workload` reports for one node: everything `describe` reports, plus the kubelet's
/// assignment of GPUs to pods, from one probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadNodeReport {
    pub describe: DescribeReport,
    pub allocation: AllocationReport,
}

/// One pod of the workload, as the API server reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadPod {
    pub name: String,
    pub uid: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    pub phase: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// RFC 3339 (`status.startTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    /// The rank or replica index the workload publishes in its labels, with the label's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<String>,
    /// `nvidia.com/gpu` requested by all its containers.
    pub gpus_requested: u64,
    pub restarts: u32,
    /// Why a container last terminated, when not Completed (e.g. `OOMKilled`, `Error exit 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_termination: Option<String>,
    /// Why a container waits (e.g. `CrashLoopBackOff: back-off 5m0s restarting ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Why the pod is not scheduled (the scheduler's `PodScheduled=False` reason and message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<String>,
}

/// A node the workload runs on, as the API server reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadNode {
    pub name: String,
    pub ready: bool,
    pub unschedulable: bool,
    /// `key=value:Effect`.
    pub taints: Vec<String>,
    /// Conditions not in their healthy state (`MemoryPressure=True`, ...).
    pub problem_conditions: Vec<String>,
    pub gpu_capacity: u64,
    pub gpu_allocatable: u64,
}

/// Everything the diagnosis looks at.
#[derive(Debug, Clone, Default)]
pub struct WorkloadInput {
    /// `kind/name` of the workload, for the verdict.
    pub workload: String,
    pub pods: Vec<WorkloadPod>,
    /// The nodes the pods are bound to (absent when the API server could not be read for one).
    pub nodes: Vec<WorkloadNode>,
    /// Each node's probe report, or why there is none.
    pub probes: BTreeMap<String, Result<Box<WorkloadNodeReport>, String>>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SuspectKind {
    /// A fault on a GPU the workload holds.
    Hardware,
    /// A pod or node state Kubernetes reports.
    Kubernetes,
    /// A NIC port of a node of a multi-node job.
    Fabric,
    /// A GPU slower than its peers of the same model.
    Straggler,
}

/// One suspect with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Suspect {
    /// 1 = look here first.
    pub rank: usize,
    pub kind: SuspectKind,
    pub severity: Severity,
    /// A finding code (`xid.79`, `nic.link_flapping`) or the diagnosis's own (`pod.pending`,
    /// `straggler.clocks`).
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    /// The workload's pods on that GPU (or node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pods: Vec<String>,
    /// Their ranks, where the workload publishes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<String>,
    pub summary: String,
    pub evidence: Vec<String>,
}

/// How the diagnosis knows which GPUs a node's pods hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HeldSource {
    /// The kubelet's own assignment (PodResources), read by the probe.
    Kubelet,
    /// The pods request every GPU of the node, so they hold them all.
    AllRequested,
    /// Only the requests are known: which of the node's GPUs the pods hold is not.
    RequestsOnly,
    /// No probe report for the node.
    NotProbed,
}

/// One node of the workload in the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeSummary {
    pub node: String,
    pub pods: usize,
    /// GPU indices the workload holds there (empty when unknown).
    pub gpus_held: Vec<u32>,
    pub held_source: HeldSource,
    /// Why the node has no probe report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
}

/// The diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadDiagnosis {
    /// One line: what is most likely wrong, or that no hardware or node cause was found.
    pub verdict: String,
    /// True when at least one suspect was found.
    pub cause_found: bool,
    pub pods: usize,
    pub pods_by_phase: BTreeMap<String, usize>,
    pub gpus_held: usize,
    pub suspects: Vec<Suspect>,
    /// Faults on GPUs of the workload's nodes that the workload does not hold: not suspects.
    pub not_held: Vec<Suspect>,
    pub nodes: Vec<NodeSummary>,
}

/// A straggler differs from the median of its peers by at least this many utilisation points (with the
/// peers busy), or sits this far below it in SM clock percentage.
pub const UTILIZATION_GAP_PCT: u32 = 50;
pub const CLOCK_GAP_PCT: u32 = 25;

pub fn diagnose(input: &WorkloadInput) -> WorkloadDiagnosis {
    let multi_node = input
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect::<BTreeSet<_>>()
        .len()
        > 1;
    let mut suspects: Vec<(u32, Option<String>, Suspect)> = Vec::new();
    let mut not_held = Vec::new();
    let mut nodes = Vec::new();
    let mut peers: Vec<GpuSample> = Vec::new();

    kubernetes_suspects(input, &mut suspects);

    let node_names: BTreeSet<&str> = input
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect();
    for node in node_names {
        let pods: Vec<&WorkloadPod> = input
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(node))
            .collect();
        let report = match input.probes.get(node) {
            Some(Ok(r)) => r,
            other => {
                let err = match other {
                    Some(Err(e)) => e.clone(),
                    _ => "not probed".to_string(),
                };
                nodes.push(NodeSummary {
                    node: node.to_string(),
                    pods: pods.len(),
                    gpus_held: vec![],
                    held_source: HeldSource::NotProbed,
                    probe_error: Some(err),
                });
                continue;
            }
        };
        let held = held_gpus(report, &pods, input.nodes.iter().find(|n| n.name == node));
        let (held_set, source) = (&held.0, held.1);
        nodes.push(NodeSummary {
            node: node.to_string(),
            pods: pods.len(),
            gpus_held: held_set.keys().copied().collect(),
            held_source: source,
            probe_error: None,
        });
        let first_xid = first_xid_times(&report.describe);
        let d = &report.describe;
        let findings = d
            .health
            .gpus
            .iter()
            .flat_map(|g| g.findings.iter())
            .chain(d.health.node_findings.iter());
        for f in findings.filter(|f| f.severity >= Severity::Warning) {
            let is_nic = f.code.starts_with("nic.");
            let on_held = match f.gpu {
                Some(g) => held_set.contains_key(&g) || source == HeldSource::RequestsOnly,
                None => true,
            };
            let (kind, weight) = if is_nic {
                (
                    SuspectKind::Fabric,
                    if f.severity == Severity::Critical {
                        80
                    } else {
                        65
                    },
                )
            } else if f.severity == Severity::Critical {
                (SuspectKind::Hardware, 100)
            } else {
                (SuspectKind::Hardware, 60)
            };
            let mut s = suspect_of(node, f, held_set, &pods, kind);
            if source == HeldSource::RequestsOnly && f.gpu.is_some() {
                s.evidence.push(format!(
                    "which GPUs the pods hold is unknown (the kubelet could not be asked): they request {} of the \
                     node's GPUs",
                    pods.iter().map(|p| p.gpus_requested).sum::<u64>()
                ));
            }
            let first = f.gpu.and_then(|g| first_xid.get(&g).cloned());
            if let Some(t) = &first
                && f.code.starts_with("xid.")
            {
                s.evidence.push(format!("first XID on this GPU at {t}"));
                if let Some(started) = pods.iter().filter_map(|p| p.started.as_deref()).min() {
                    let when = if t.as_str() >= started {
                        "after"
                    } else {
                        "before"
                    };
                    s.evidence
                        .push(format!("{when} the workload's pods started ({started})"));
                }
            }
            // NIC ports matter to a job that talks across nodes; a one-node job's ports are not suspects.
            if (is_nic && !multi_node) || !on_held {
                not_held.push(s);
            } else {
                suspects.push((weight, first.filter(|_| !is_nic), s));
            }
        }
        peers.extend(samples(node, report, held_set, &pods));
    }
    stragglers(&peers, &mut suspects);

    // Most urgent first; among equals the fault seen first, then by node.
    suspects.sort_by(|(wa, ta, a), (wb, tb, b)| {
        wb.cmp(wa)
            .then_with(|| match (ta, tb) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.gpu.cmp(&b.gpu))
    });
    let suspects: Vec<Suspect> = suspects
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, mut s))| {
            s.rank = i + 1;
            s
        })
        .collect();
    for (i, s) in not_held.iter_mut().enumerate() {
        s.rank = i + 1;
    }
    let mut pods_by_phase = BTreeMap::new();
    for p in &input.pods {
        *pods_by_phase.entry(p.phase.clone()).or_insert(0) += 1;
    }
    let gpus_held = nodes.iter().map(|n| n.gpus_held.len()).sum();
    let missing = nodes.iter().filter(|n| n.probe_error.is_some()).count();
    let verdict = match suspects.first() {
        Some(s) => {
            let place = match (&s.node, s.gpu) {
                (Some(n), Some(g)) => format!(" on {n} GPU {g}"),
                (Some(n), None) => format!(" on {n}"),
                _ => String::new(),
            };
            format!(
                "{}: {} suspect(s); first: {}{place}: {}",
                input.workload,
                suspects.len(),
                s.code,
                s.summary
            )
        }
        None if input.pods.is_empty() => format!("{}: no pods found", input.workload),
        None => {
            let gaps = if missing > 0 {
                format!(" ({missing} node(s) could not be probed: see nodes)")
            } else {
                String::new()
            };
            format!(
                "{}: no hardware or node cause found on its {} pod(s) and {} GPU(s){gaps}; look at the \
                 software: NCCL settings and logs, the application, its data and checkpoints",
                input.workload,
                input.pods.len(),
                gpus_held
            )
        }
    };
    WorkloadDiagnosis {
        verdict,
        cause_found: !suspects.is_empty(),
        pods: input.pods.len(),
        pods_by_phase,
        gpus_held,
        suspects,
        not_held,
        nodes,
    }
}

/// GPU index -> (UUID, pods holding it) on one node, and how that is known.
type Held = (BTreeMap<u32, (Option<String>, Vec<String>)>, HeldSource);

fn held_gpus(
    report: &WorkloadNodeReport,
    pods: &[&WorkloadPod],
    node: Option<&WorkloadNode>,
) -> Held {
    let mut held: BTreeMap<u32, (Option<String>, Vec<String>)> = BTreeMap::new();
    let alloc = &report.allocation;
    if alloc.exact {
        for p in &alloc.pods {
            let Some(ours) = pods
                .iter()
                .find(|w| p.uid.as_deref() == Some(w.uid.as_str()) || p.name == w.name)
            else {
                continue;
            };
            for d in p.containers.iter().flat_map(|c| c.devices.iter()) {
                if let Some(i) = d.gpu_index {
                    let e = held.entry(i).or_insert((d.gpu_uuid.clone(), vec![]));
                    if !e.1.contains(&ours.name) {
                        e.1.push(ours.name.clone());
                    }
                }
            }
        }
        return (held, HeldSource::Kubelet);
    }
    let gpus: Vec<(u32, Option<String>)> = report
        .describe
        .inventory
        .gpus
        .iter()
        .map(|g| (g.index, g.uuid.ok().cloned()))
        .collect();
    let requested: u64 = pods.iter().map(|p| p.gpus_requested).sum();
    let capacity = node
        .map(|n| n.gpu_capacity)
        .filter(|c| *c > 0)
        .unwrap_or(gpus.len() as u64);
    if requested > 0 && requested >= capacity {
        let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        for (i, uuid) in gpus {
            held.insert(i, (uuid, names.clone()));
        }
        return (held, HeldSource::AllRequested);
    }
    (held, HeldSource::RequestsOnly)
}

fn suspect_of(
    node: &str,
    f: &Finding,
    held: &BTreeMap<u32, (Option<String>, Vec<String>)>,
    pods: &[&WorkloadPod],
    kind: SuspectKind,
) -> Suspect {
    let holders: Vec<String> = match f.gpu.and_then(|g| held.get(&g)) {
        Some((_, names)) => names.clone(),
        None => pods.iter().map(|p| p.name.clone()).collect(),
    };
    let ranks = pods
        .iter()
        .filter(|p| holders.contains(&p.name))
        .filter_map(|p| p.rank.clone())
        .collect();
    Suspect {
        rank: 0,
        kind,
        severity: f.severity,
        code: f.code.clone(),
        node: Some(node.to_string()),
        gpu: f.gpu,
        gpu_uuid: f
            .gpu_uuid
            .clone()
            .or_else(|| f.gpu.and_then(|g| held.get(&g).and_then(|h| h.0.clone()))),
        pods: holders,
        ranks,
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
    }
}

/// The first XID time per GPU index (RFC 3339), from the node's XID report.
fn first_xid_times(d: &DescribeReport) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for g in &d.xid.gpus {
        let (Some(i), Some(first)) = (g.index, g.xids.iter().filter_map(|c| c.first.clone()).min())
        else {
            continue;
        };
        out.insert(i, first);
    }
    out
}

fn kubernetes_suspects(input: &WorkloadInput, out: &mut Vec<(u32, Option<String>, Suspect)>) {
    let k8s = |weight: u32,
               severity,
               code: &str,
               node: Option<&str>,
               pod: Option<&WorkloadPod>,
               summary: String,
               evidence: Vec<String>| {
        (
            weight,
            None,
            Suspect {
                rank: 0,
                kind: SuspectKind::Kubernetes,
                severity,
                code: code.to_string(),
                node: node.map(String::from),
                gpu: None,
                gpu_uuid: None,
                pods: pod.map(|p| vec![p.name.clone()]).unwrap_or_default(),
                ranks: pod.and_then(|p| p.rank.clone()).into_iter().collect(),
                summary,
                evidence,
            },
        )
    };
    for p in &input.pods {
        let node = p.node.as_deref();
        if p.phase == "Pending" && p.node.is_none() {
            let why = p
                .unschedulable
                .clone()
                .unwrap_or_else(|| "not scheduled yet (no scheduler verdict recorded)".into());
            out.push(k8s(
                85,
                Severity::Critical,
                "pod.pending",
                None,
                Some(p),
                format!("pod {} is Pending: {why}", p.name),
                vec![format!("requests {} GPU(s)", p.gpus_requested)],
            ));
        } else if p.phase == "Failed" {
            out.push(k8s(
                90,
                Severity::Critical,
                "pod.failed",
                node,
                Some(p),
                format!(
                    "pod {} failed{}",
                    p.name,
                    p.last_termination
                        .as_deref()
                        .map(|t| format!(": {t}"))
                        .unwrap_or_default()
                ),
                vec![],
            ));
        } else if p
            .last_termination
            .as_deref()
            .is_some_and(|t| t.contains("OOMKilled"))
        {
            out.push(k8s(
                90,
                Severity::Critical,
                "pod.oom_killed",
                node,
                Some(p),
                format!(
                    "pod {} was OOMKilled (host memory, not GPU memory); restarts: {}",
                    p.name, p.restarts
                ),
                p.waiting.iter().cloned().collect(),
            ));
        } else if p.restarts > 0 || p.waiting.is_some() {
            let mut ev = vec![format!("restarts: {}", p.restarts)];
            ev.extend(
                p.last_termination
                    .iter()
                    .map(|t| format!("last termination: {t}")),
            );
            ev.extend(p.waiting.iter().map(|w| format!("waiting: {w}")));
            out.push(k8s(
                if p.waiting.is_some() { 88 } else { 55 },
                if p.waiting.is_some() {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                "pod.restarting",
                node,
                Some(p),
                format!("pod {} restarted {} time(s)", p.name, p.restarts),
                ev,
            ));
        }
    }
    for n in &input.nodes {
        let ours: Vec<&WorkloadPod> = input
            .pods
            .iter()
            .filter(|p| p.node.as_deref() == Some(n.name.as_str()))
            .collect();
        let names = |s: &mut Suspect| {
            s.pods = ours.iter().map(|p| p.name.clone()).collect();
            s.ranks = ours.iter().filter_map(|p| p.rank.clone()).collect();
        };
        if !n.ready {
            let mut s = k8s(
                90,
                Severity::Critical,
                "node.not_ready",
                Some(&n.name),
                None,
                format!("node {} is NotReady", n.name),
                n.problem_conditions.clone(),
            );
            names(&mut s.2);
            out.push(s);
        } else if !n.problem_conditions.is_empty() {
            let mut s = k8s(
                50,
                Severity::Warning,
                "node.condition",
                Some(&n.name),
                None,
                format!(
                    "node {} reports {}",
                    n.name,
                    n.problem_conditions.join(", ")
                ),
                vec![],
            );
            names(&mut s.2);
            out.push(s);
        }
        // Health monitors cordon and taint a node they find faulty; the scheduler's own taints for
        // NotReady/unreachable say the same as the condition above.
        let monitor: Vec<&String> = n
            .taints
            .iter()
            .filter(|t| !t.starts_with("node.kubernetes.io/") && !t.starts_with("nvidia.com/gpu"))
            .collect();
        if n.unschedulable || !monitor.is_empty() {
            let mut ev = Vec::new();
            if n.unschedulable {
                ev.push("cordoned (spec.unschedulable)".to_string());
            }
            ev.extend(monitor.iter().map(|t| format!("taint {t}")));
            let mut s = k8s(
                50,
                Severity::Warning,
                "node.cordoned_or_tainted",
                Some(&n.name),
                None,
                format!(
                    "node {} is cordoned or tainted, often by a health monitor",
                    n.name
                ),
                ev,
            );
            names(&mut s.2);
            out.push(s);
        }
        if n.gpu_allocatable < n.gpu_capacity {
            let mut s = k8s(
                75,
                Severity::Critical,
                "node.gpu_withdrawn",
                Some(&n.name),
                None,
                format!(
                    "node {} has {} of its {} GPUs allocatable: the device plugin withdrew an unhealthy GPU",
                    n.name, n.gpu_allocatable, n.gpu_capacity
                ),
                vec![format!(
                    "nvidia.com/gpu capacity {}, allocatable {}",
                    n.gpu_capacity, n.gpu_allocatable
                )],
            );
            names(&mut s.2);
            out.push(s);
        }
    }
}

/// One GPU the workload holds, with what peers are compared on.
#[derive(Debug, Clone)]
struct GpuSample {
    node: String,
    gpu: u32,
    uuid: Option<String>,
    model: String,
    pods: Vec<String>,
    ranks: Vec<String>,
    sm_pct: Option<u32>,
    harmful_reasons: Vec<String>,
    util_pct: Option<u32>,
    pcie: Option<(u32, u32, u32, u32)>,
    nvlinks_active: Option<usize>,
}

fn samples(
    node: &str,
    report: &WorkloadNodeReport,
    held: &BTreeMap<u32, (Option<String>, Vec<String>)>,
    pods: &[&WorkloadPod],
) -> Vec<GpuSample> {
    let d = &report.describe;
    held.iter()
        .map(|(&gpu, (uuid, names))| {
            let tel = d.telemetry.gpus.iter().find(|t| t.gpu.index == gpu);
            let topo = d.topology.gpus.iter().find(|t| t.gpu.index == gpu);
            let inv = d.inventory.gpus.iter().find(|g| g.index == gpu);
            let harmful_reasons = tel
                .and_then(|t| t.clocks_event_reasons.ok())
                .map(|c| {
                    c.reasons
                        .iter()
                        .filter(|r| r.class == ReasonClass::Harmful)
                        .map(|r| r.name.clone())
                        .collect()
                })
                .unwrap_or_default();
            let pcie = topo.and_then(|t| {
                Some((
                    t.pcie.current_gen.get()?,
                    t.pcie.max_gen.get()?,
                    t.pcie.current_width.get()?,
                    t.pcie.max_width.get()?,
                ))
            });
            let nvlinks_active = topo.filter(|t| !t.nvlinks.is_empty()).map(|t| {
                t.nvlinks
                    .iter()
                    .filter(|l| l.state.ok().is_some_and(|s| s == "active"))
                    .count()
            });
            GpuSample {
                node: node.to_string(),
                gpu,
                uuid: uuid.clone(),
                model: inv
                    .and_then(|g| g.name.ok().cloned())
                    .unwrap_or_else(|| "unknown model".into()),
                pods: names.clone(),
                ranks: pods
                    .iter()
                    .filter(|p| names.contains(&p.name))
                    .filter_map(|p| p.rank.clone())
                    .collect(),
                sm_pct: tel.and_then(|t| t.clocks.sm_pct_of_max.get()),
                harmful_reasons,
                util_pct: tel.and_then(|t| t.utilization.ok().map(|u| u.gpu_pct)),
                pcie,
                nvlinks_active,
            }
        })
        .collect()
}

fn median(mut xs: Vec<u32>) -> Option<u32> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_unstable();
    Some(xs[xs.len() / 2])
}

/// GPUs that lag the others of the same model, with the comparison as evidence.
fn stragglers(all: &[GpuSample], out: &mut Vec<(u32, Option<String>, Suspect)>) {
    let models: BTreeSet<&str> = all.iter().map(|s| s.model.as_str()).collect();
    for model in models {
        let group: Vec<&GpuSample> = all.iter().filter(|s| s.model == model).collect();
        // A comparison needs peers: with fewer than three GPUs there is no majority to lag behind.
        if group.len() < 3 {
            continue;
        }
        for s in &group {
            let others: Vec<&&GpuSample> =
                group.iter().filter(|o| !std::ptr::eq(**o, *s)).collect();
            let mut evidence = Vec::new();
            let mut codes = Vec::new();
            let peers_throttled = others
                .iter()
                .filter(|o| !o.harmful_reasons.is_empty())
                .count();
            if !s.harmful_reasons.is_empty() && peers_throttled * 2 < others.len() {
                codes.push("straggler.clocks");
                let peer_sm = median(others.iter().filter_map(|o| o.sm_pct).collect());
                evidence.push(format!(
                    "clocks held down by {} while {} of its {} peers ({model}) run without a harmful clock event{}",
                    s.harmful_reasons.join(", "),
                    others.len() - peers_throttled,
                    others.len(),
                    match (s.sm_pct, peer_sm) {
                        (Some(a), Some(b)) => format!("; SM clock {a}% of max vs the peers' median {b}%"),
                        _ => String::new(),
                    }
                ));
            } else if let (Some(a), Some(b)) = (
                s.sm_pct,
                median(others.iter().filter_map(|o| o.sm_pct).collect()),
            ) && a + CLOCK_GAP_PCT <= b
            {
                codes.push("straggler.clocks");
                evidence.push(format!(
                    "SM clock {a}% of max vs the peers' median {b}% ({} peers, {model})",
                    others.len()
                ));
            }
            if let Some((g, mg, w, mw)) = s.pcie {
                let pg = median(others.iter().filter_map(|o| o.pcie.map(|p| p.0)).collect());
                let pw = median(others.iter().filter_map(|o| o.pcie.map(|p| p.2)).collect());
                let below_peers = pg.is_some_and(|pg| g < pg) || pw.is_some_and(|pw| w < pw);
                if below_peers && (g < mg || w < mw) {
                    codes.push("straggler.pcie");
                    evidence.push(format!(
                        "PCIe link Gen{g} x{w} (max Gen{mg} x{mw}) while its peers run at Gen{} x{}",
                        pg.unwrap_or(g),
                        pw.unwrap_or(w)
                    ));
                }
            }
            if let Some(a) = s.nvlinks_active
                && let Some(pm) = median(
                    others
                        .iter()
                        .filter_map(|o| o.nvlinks_active.map(|x| x as u32))
                        .collect(),
                )
                && (a as u32) < pm
            {
                codes.push("straggler.nvlink");
                evidence.push(format!("{a} NVLinks active vs {pm} on its peers (median)"));
            }
            if let (Some(u), Some(pm)) = (
                s.util_pct,
                median(others.iter().filter_map(|o| o.util_pct).collect()),
            ) && pm >= UTILIZATION_GAP_PCT
                && u + UTILIZATION_GAP_PCT <= pm
            {
                codes.push("straggler.utilization");
                evidence.push(format!(
                    "GPU utilisation {u}% vs the peers' median {pm}%: this rank may be waiting or hung"
                ));
            }
            if codes.is_empty() {
                continue;
            }
            out.push((
                70,
                None,
                Suspect {
                    rank: 0,
                    kind: SuspectKind::Straggler,
                    severity: Severity::Warning,
                    code: codes[0].to_string(),
                    node: Some(s.node.clone()),
                    gpu: Some(s.gpu),
                    gpu_uuid: s.uuid.clone(),
                    pods: s.pods.clone(),
                    ranks: s.ranks.clone(),
                    summary: format!(
                        "GPU {} on {} is slower than the workload's other {model} GPUs: it holds back every \
                         rank in the collectives",
                        s.gpu, s.node
                    ),
                    evidence,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Report;
    use crate::{AnalysisOptions, Command};

    fn node_report(scenario: &str) -> Box<WorkloadNodeReport> {
        let s = crate::scenarios::find(scenario).expect("built-in scenario");
        let facts = crate::scenarios::parse(s.json).expect("scenario parses");
        match crate::analyze(Command::Workload, &facts, &AnalysisOptions::default()) {
            Report::Workload(r) => r,
            other => panic!("not a workload report: {other:?}"),
        }
    }

    /// One 8-GPU pod per node (rank = its index), nodes named `n0..`, each node simulated by `scenario`.
    fn job(scenarios: &[&str]) -> WorkloadInput {
        let mut input = WorkloadInput {
            workload: "job/train".into(),
            ..Default::default()
        };
        for (i, sc) in scenarios.iter().enumerate() {
            let node = format!("n{i}");
            input.pods.push(WorkloadPod {
                name: format!("train-{i}"),
                uid: format!("uid-{i}"),
                phase: "Running".into(),
                node: Some(node.clone()),
                started: Some("2025-01-01T00:00:00Z".into()),
                rank: Some(format!("replica-index={i}")),
                gpus_requested: 8,
                ..Default::default()
            });
            input.nodes.push(WorkloadNode {
                name: node.clone(),
                ready: true,
                gpu_capacity: 8,
                gpu_allocatable: 8,
                ..Default::default()
            });
            input.probes.insert(node, Ok(node_report(sc)));
        }
        input
    }

    #[test]
    fn a_gpu_off_the_bus_is_named_first() {
        let mut scs = vec!["dgx-h100-healthy"; 16];
        scs[11] = "dgx-h100-xid79";
        let d = diagnose(&job(&scs));
        assert!(d.cause_found);
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Hardware, "{d:#?}");
        assert_eq!(first.node.as_deref(), Some("n11"));
        assert_eq!(first.gpu, Some(4), "{first:?}");
        assert!(first.gpu_uuid.is_some());
        assert_eq!(first.pods, ["train-11"]);
        assert_eq!(first.ranks, ["replica-index=11"]);
        assert!(d.verdict.contains("n11 GPU 4"), "{}", d.verdict);
        assert!(
            d.nodes
                .iter()
                .all(|n| n.held_source == HeldSource::AllRequested)
        );
        assert_eq!(d.gpus_held, 128);
    }

    #[test]
    fn a_healthy_job_points_at_the_software() {
        let d = diagnose(&job(&["dgx-h100-healthy"; 4]));
        assert!(!d.cause_found, "{:#?}", d.suspects);
        assert!(
            d.verdict.contains("no hardware or node cause found"),
            "{}",
            d.verdict
        );
        assert!(d.verdict.contains("NCCL"), "{}", d.verdict);
    }

    #[test]
    fn a_braked_gpu_is_a_straggler_with_the_comparison() {
        let mut scs = vec!["dgx-h100-healthy"; 4];
        scs[2] = "dgx-h100-straggler-brake";
        let d = diagnose(&job(&scs));
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Straggler, "{d:#?}");
        assert_eq!((first.node.as_deref(), first.gpu), (Some("n2"), Some(5)));
        let ev = first.evidence.join(" | ");
        assert!(ev.contains("peers") && ev.contains("SM clock"), "{ev}");
    }

    #[test]
    fn a_downtrained_pcie_link_is_a_straggler() {
        let mut scs = vec!["dgx-h100-healthy"; 3];
        scs[0] = "dgx-h100-pcie-downtrained";
        let d = diagnose(&job(&scs));
        let s = d
            .suspects
            .iter()
            .find(|s| s.kind == SuspectKind::Straggler)
            .expect("a straggler");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(2)));
        assert!(s.evidence.join(" ").contains("Gen3 x8"), "{s:?}");
    }

    #[test]
    fn a_flapping_port_leads_a_multi_node_job_but_not_a_single_node_one() {
        let mut scs = vec!["dgx-h100-healthy"; 4];
        scs[1] = "dgx-h100-ib-flapping";
        let d = diagnose(&job(&scs));
        let first = &d.suspects[0];
        assert_eq!(first.kind, SuspectKind::Fabric, "{d:#?}");
        assert_eq!(first.node.as_deref(), Some("n1"));
        assert!(first.code.starts_with("nic."), "{first:?}");
        let single = diagnose(&job(&["dgx-h100-ib-flapping"]));
        assert!(
            single
                .suspects
                .iter()
                .all(|s| s.kind != SuspectKind::Fabric),
            "{single:#?}"
        );
        assert!(!single.not_held.is_empty());
    }

    #[test]
    fn a_pending_pod_says_why() {
        let mut input = job(&["dgx-h100-healthy"; 2]);
        input.pods.push(WorkloadPod {
            name: "train-2".into(),
            uid: "uid-2".into(),
            phase: "Pending".into(),
            gpus_requested: 8,
            unschedulable: Some(
                "Unschedulable: 0/2 nodes are available: 2 Insufficient nvidia.com/gpu".into(),
            ),
            ..Default::default()
        });
        let d = diagnose(&input);
        let first = &d.suspects[0];
        assert_eq!(first.code, "pod.pending", "{d:#?}");
        assert!(
            first.summary.contains("Insufficient nvidia.com/gpu"),
            "{first:?}"
        );
        assert_eq!(d.pods_by_phase.get("Pending"), Some(&1));
    }

    #[test]
    fn faults_on_gpus_the_workload_does_not_hold_are_apart() {
        // The pod holds GPUs 0-3 by the kubelet's word; GPU 4 fell off the bus.
        let mut input = job(&["dgx-h100-xid79"]);
        input.pods[0].gpus_requested = 4;
        if let Some(Ok(r)) = input.probes.get_mut("n0") {
            r.allocation.exact = true;
            r.allocation.pods = vec![crate::attribution::PodAllocation {
                namespace: "ml".into(),
                name: "train-0".into(),
                uid: Some("uid-0".into()),
                containers: vec![crate::attribution::ContainerAllocation {
                    name: "main".into(),
                    started_unix: None,
                    devices: (0..4)
                        .map(|i| crate::attribution::AllocatedDevice {
                            resource_name: "nvidia.com/gpu".into(),
                            resource: crate::attribution::device::ResourceKind::Gpu,
                            device_id: format!("GPU-{i}"),
                            form: None,
                            replica: None,
                            gpu_index: Some(i),
                            gpu_uuid: None,
                            mig: None,
                            error: None,
                        })
                        .collect(),
                }],
            }];
        }
        let d = diagnose(&input);
        assert!(d.suspects.iter().all(|s| s.gpu != Some(4)), "{d:#?}");
        assert!(d.not_held.iter().any(|s| s.gpu == Some(4)), "{d:#?}");
        assert_eq!(d.nodes[0].held_source, HeldSource::Kubelet);
        assert_eq!(d.nodes[0].gpus_held, [0, 1, 2, 3]);
    }
}
