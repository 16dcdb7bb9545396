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
}
