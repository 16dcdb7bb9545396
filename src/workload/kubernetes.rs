//! What Kubernetes says of the workload: pods Pending, failed, OOMKilled or restarting, and its nodes
//! NotReady, under pressure, cordoned or tainted, or with a GPU withdrawn by the device plugin.

use super::answer::{Suspect, SuspectKind};
use super::input::{WorkloadInput, WorkloadPod};
use super::merge::Candidate;
use crate::finding::Severity;

/// One candidate per pod or node state that can stop a job.
pub(super) fn kubernetes_suspects(input: &WorkloadInput) -> Vec<Candidate> {
    let mut out = Vec::new();
    let k8s = |weight: u32,
               severity,
               code: &str,
               node: Option<&str>,
               pod: Option<&WorkloadPod>,
               summary: String,
               evidence: Vec<String>| {
        Candidate {
            weight,
            first: None,
            suspect: Suspect {
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
                also: vec![],
                first_seen: None,
            },
            peer_node: None,
        }
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
            names(&mut s.suspect);
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
            names(&mut s.suspect);
            out.push(s);
        }
        // The platform's own health agent already says the node is faulty: a critical GPU fault is a fault
        // of the node (it folds into the node's one faulty GPU where the probe found it), a warning is
        // weighed as a node condition.
        for m in &n.platform {
            let mut s = k8s(
                if m.severity == Severity::Critical {
                    86
                } else {
                    50
                },
                m.severity,
                &m.code(),
                Some(&n.name),
                None,
                format!(
                    "node {}: {} reports {}",
                    n.name,
                    m.source.name(),
                    m.fault.title()
                ),
                std::iter::once(m.line())
                    .chain(m.message.iter().map(|t| format!("message = {t}")))
                    .collect(),
            );
            s.first = m.since.clone();
            s.suspect.first_seen = m.since.clone();
            names(&mut s.suspect);
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
            names(&mut s.suspect);
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
            names(&mut s.suspect);
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

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

    fn eks_xid79() -> crate::incident::platform::PlatformMark {
        crate::incident::platform::classify(&crate::incident::platform::NodeCondition {
            kind: "AcceleratedHardwareReady",
            status: "False",
            reason: Some("NvidiaXID79Error"),
            message: Some("detected XID-79 on the instance"),
            since: Some("2026-11-20T10:00:00Z"),
        })
        .expect("recognised")
    }

    #[test]
    fn a_platform_mark_is_a_suspect_even_where_the_probe_sees_nothing() {
        let mut input = job(&["dgx-h100-healthy"; 2]);
        input.nodes[1].platform.push(eks_xid79());
        let d = diagnose(&input);
        let first = &d.suspects[0];
        assert_eq!(first.code, "platform.xid.79", "{d:#?}");
        assert_eq!(first.node.as_deref(), Some(input.nodes[1].name.as_str()));
        assert!(
            first.evidence.iter().any(|e| e
                == "EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since 2026-11-20T10:00:00Z"),
            "{first:?}"
        );
    }

    #[test]
    fn a_platform_mark_of_the_probes_fault_is_part_of_its_suspect() {
        let mut input = job(&["dgx-h100-xid79", "dgx-h100-healthy"]);
        input.nodes[0].platform.push(eks_xid79());
        let d = diagnose(&input);
        let on_node: Vec<&Suspect> = d
            .suspects
            .iter()
            .filter(|s| s.node.as_deref() == Some(input.nodes[0].name.as_str()))
            .collect();
        assert_eq!(on_node.len(), 1, "{d:#?}");
        assert!(on_node[0].gpu.is_some(), "{:?}", on_node[0]);
        assert!(
            on_node[0].also.iter().any(|c| c == "platform.xid.79"),
            "{:?}",
            on_node[0]
        );
    }
}
