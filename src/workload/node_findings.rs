//! Each probed node's findings as suspects: a fault on a GPU the workload holds (or on its node's NIC ports,
//! for a job across nodes) with who holds it and when it first showed; faults on GPUs it does not hold
//! apart. Also what each node's GPUs give the straggler comparison.

use std::collections::{BTreeMap, BTreeSet};

use super::answer::{HeldSource, NodeSummary, Suspect, SuspectKind};
use super::holders::{HeldGpus, held_gpus, holder_line, narrow_by_nccl_devices};
use super::input::{WorkloadInput, WorkloadPod};
use super::merge::Candidate;
use super::node_report::WorkloadNodeReport;
use super::stragglers::{GpuSample, samples};
use super::time::{cmp_times, earliest};
use crate::analysis::describe::DescribeReport;
use crate::finding::{Finding, Severity};

/// What the nodes' probe reports say, for the later steps.
pub(super) struct NodeExamination {
    /// Every node of the workload's pods, probed or not.
    pub nodes: Vec<NodeSummary>,
    /// Which GPUs the workload holds, by node (probed nodes only).
    pub held: BTreeMap<String, HeldGpus>,
    pub candidates: Vec<Candidate>,
    /// Faults on GPUs the workload does not hold (and a one-node job's NIC ports).
    pub not_held: Vec<Suspect>,
    /// The held GPUs, for the straggler comparison.
    pub samples: Vec<GpuSample>,
}

/// One probed node of the workload, as the findings are read against it.
struct ProbedNode<'a> {
    name: &'a str,
    report: &'a WorkloadNodeReport,
    /// The workload's pods on it.
    pods: Vec<&'a WorkloadPod>,
    held: HeldGpus,
    /// For each GPU a rank's NCCL init line named, how that is known.
    named: BTreeMap<u32, String>,
}

pub(super) fn examine_nodes(input: &WorkloadInput) -> NodeExamination {
    let node_names: BTreeSet<&str> = input
        .pods
        .iter()
        .filter_map(|p| p.node.as_deref())
        .collect();
    let multi_node = node_names.len() > 1;
    let mut out = NodeExamination {
        nodes: Vec::new(),
        held: BTreeMap::new(),
        candidates: Vec::new(),
        not_held: Vec::new(),
        samples: Vec::new(),
    };
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
                out.nodes.push(NodeSummary {
                    node: node.to_string(),
                    pods: pods.len(),
                    gpus_held: vec![],
                    held_source: HeldSource::NotProbed,
                    probe_error: Some(err),
                    nvlink_domain: clique_of(input, node),
                });
                continue;
            }
        };
        let mut held = held_gpus(report, &pods, input.nodes.iter().find(|n| n.name == node));
        let named = narrow_by_nccl_devices(&mut held, report, &pods, input.logs.as_ref());
        out.nodes.push(NodeSummary {
            node: node.to_string(),
            pods: pods.len(),
            gpus_held: held.gpus.keys().copied().collect(),
            held_source: held.source,
            probe_error: None,
            nvlink_domain: report
                .describe
                .health
                .nvlink_domain
                .clone()
                .or_else(|| clique_of(input, node)),
        });
        let probed = ProbedNode {
            name: node,
            report,
            pods,
            held,
            named,
        };
        finding_suspects(&probed, multi_node, &mut out);
        out.samples
            .extend(samples(node, report, &probed.held.gpus, &probed.pods));
        out.held.insert(node.to_string(), probed.held);
    }
    out
}

/// The node's warnings and faults, each a candidate (or apart, when not on what the workload holds).
fn finding_suspects(n: &ProbedNode, multi_node: bool, out: &mut NodeExamination) {
    let first_xid = first_xid_times(&n.report.describe);
    let source = n.held.source;
    // One suspect per incident: its leading signal (the first in causal order of the incident's
    // severity) speaks for it, with the incident's summary, and its other signals are `also`.
    let leads: Vec<(Finding, Vec<String>)> = n
        .report
        .describe
        .health
        .incidents
        .incidents
        .iter()
        .filter(|i| i.severity >= Severity::Warning)
        .filter_map(|i| {
            let lead = i.signals.iter().find(|s| s.severity == i.severity)?;
            let mut f = lead.clone();
            // What happened (the log line, the reading) before the catalog's classification of it.
            f.evidence.sort_by_key(|e| e.starts_with("catalog "));
            if i.signals.len() > 1 {
                f.summary = i.summary.clone();
                // The other signals in causal order, each in its own words.
                f.evidence.extend(
                    i.signals
                        .iter()
                        .filter(|s| s.code != lead.code)
                        .map(|s| format!("{}: {}", s.code, s.summary)),
                );
            }
            let also = i
                .signals
                .iter()
                .filter(|s| s.code != lead.code)
                .map(|s| s.code.clone())
                .collect();
            Some((f, also))
        })
        .collect();
    for (f, also) in &leads {
        let is_nic = f.code.starts_with("nic.");
        let on_held = match f.gpu {
            Some(g) => n.held.gpus.contains_key(&g) || source == HeldSource::RequestsOnly,
            None => true,
        };
        let (kind, weight) = if is_nic {
            // A failed port is the cause its ranks' NCCL errors show (`nccl.ib_completion_error`, 90).
            (
                SuspectKind::Fabric,
                if f.severity == Severity::Critical {
                    91
                } else {
                    65
                },
            )
        } else if f.severity == Severity::Critical {
            (SuspectKind::Hardware, 100)
        } else {
            (SuspectKind::Hardware, 60)
        };
        let mut s = suspect_of(n, f, kind);
        s.also = also.clone();
        if source == HeldSource::RequestsOnly && f.gpu.is_some() {
            s.evidence.push(format!(
                "which GPUs the pods hold is unknown (the kubelet could not be asked): they request {} of the \
                 node's GPUs",
                n.pods.iter().map(|p| p.gpus_requested).sum::<u64>()
            ));
        }
        if let Some(g) = f.gpu
            && let Some(line) = holder_line(g, &s.pods, source, &n.named)
        {
            // Right after the cause's own first line: who is hit is the next thing a reader asks.
            s.evidence.insert(s.evidence.len().min(1), line);
        }
        let first = f.gpu.and_then(|g| first_xid.get(&g).cloned());
        if let Some(t) = &first
            && f.code.starts_with("xid.")
        {
            s.evidence.push(format!("first XID on this GPU at {t}"));
            if let Some(started) = earliest(n.pods.iter().filter_map(|p| p.started.as_deref())) {
                let when = if cmp_times(Some(t), Some(started)).is_ge() {
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
            out.not_held.push(s);
        } else {
            out.candidates.push(Candidate {
                weight,
                first: first.filter(|_| !is_nic),
                suspect: s,
                peer_node: None,
            });
        }
    }
}

fn suspect_of(n: &ProbedNode, f: &Finding, kind: SuspectKind) -> Suspect {
    let held = &n.held.gpus;
    let holders: Vec<String> = match f.gpu.and_then(|g| held.get(&g)) {
        Some(h) => h.pods.clone(),
        None => n.pods.iter().map(|p| p.name.clone()).collect(),
    };
    let ranks = n
        .pods
        .iter()
        .filter(|p| holders.contains(&p.name))
        .filter_map(|p| p.rank.clone())
        .collect();
    Suspect {
        rank: 0,
        kind,
        severity: f.severity,
        code: f.code.clone(),
        node: Some(n.name.to_string()),
        gpu: f.gpu,
        gpu_uuid: f.gpu_uuid.clone().or_else(|| {
            f.gpu
                .and_then(|g| held.get(&g).and_then(|h| h.uuid.clone()))
        }),
        pods: holders,
        ranks,
        summary: f.summary.clone(),
        evidence: f.evidence.clone(),
        also: vec![],
        first_seen: None,
    }
}

/// The first XID time per GPU index (RFC 3339), from the node's XID report.
fn first_xid_times(d: &DescribeReport) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for g in &d.xid.gpus {
        let (Some(i), Some(first)) = (
            g.index,
            earliest(g.xids.iter().filter_map(|c| c.first.as_deref())),
        ) else {
            continue;
        };
        out.insert(i, first.to_string());
    }
    out
}

/// GFD's clique label of `node`, as the API server lists it.
fn clique_of(input: &WorkloadInput, node: &str) -> Option<String> {
    input
        .nodes
        .iter()
        .find(|n| n.name == node)
        .and_then(|n| n.clique.clone())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

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
        // Every source's view of that GPU is one suspect.
        let on_it = d
            .suspects
            .iter()
            .filter(|s| s.node.as_deref() == Some("n11"))
            .count();
        assert_eq!(on_it, 1, "{:#?}", d.suspects);
        assert!(!first.also.is_empty(), "{first:#?}");
        assert!(first.first_seen.is_some(), "{first:#?}");
        assert!(
            d.nodes
                .iter()
                .all(|n| n.held_source == HeldSource::AllRequested)
        );
        assert_eq!(d.gpus_held, 128);
    }

    /// The first Xid against the pods' start: the scenario's Xid is at 2026-11-25T08:16:40Z (its fixed clock).
    #[test]
    fn the_first_xid_is_placed_before_or_after_the_pods_started() {
        let evidence_for = |started: &str| {
            let mut input = job(&["dgx-h100-xid79"]);
            input.pods[0].started = Some(started.into());
            let d = diagnose(&input);
            d.suspects[0].evidence.join("\n")
        };
        let e = evidence_for("2026-11-25T08:00:00Z");
        assert!(
            e.contains("after the workload's pods started (2026-11-25T08:00:00Z)"),
            "{e}"
        );
        let e = evidence_for("2026-11-25T09:00:00Z");
        assert!(
            e.contains("before the workload's pods started (2026-11-25T09:00:00Z)"),
            "{e}"
        );
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
                            claim: None,
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
