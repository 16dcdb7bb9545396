//! One verdict for a whole workload (a training job's pods across its nodes): its pods and nodes as the API
//! server reports them, each node's probe report and the GPUs each pod holds, ranked into suspects with their
//! evidence. Pure: the launcher gathers the inputs.
//!
//! A suspect is one thing that can be at fault (a GPU, a rank's pod, a node, a node's fabric, a pod's NCCL
//! configuration) with all of its evidence: the probe's findings (XID, ECC, fallen off the bus, NVLink, PCIe),
//! Kubernetes states (pods failed, restarting, OOMKilled or Pending; nodes NotReady, cordoned), straggler
//! comparisons (a GPU slower than its peers of the same model) and the ranks' own log lines
//! ([`joblog`], the ranks' log grammar: CUDA errors, NCCL errors, torch elastic's root cause). A rank's pod maps to its node
//! and GPUs through the allocation (or NCCL's PCI address for its device, where the pods request every GPU
//! and the kubelet's assignment is not known), so a rank's CUDA ECC error and an Xid 48 on its GPU are one
//! suspect.
//! Order: the faults first, causes (an out-of-memory or CUDA error, a lost GPU, a failed NIC port) before
//! how they showed, the first to fail in time leading; a rank whose collective sequence number lags the
//! others' (the rank they all wait for) is a suspect even when it logged nothing, and where its own error
//! is known that error names the suspect and the waiting is how it showed. What followed from a cause is
//! counted as a consequence, never listed as another suspect: the other ranks' timeouts, a rank's torch
//! elastic "root cause" that is its own abort after its watchdog timed out, pods restarted after waiting.
//! The pod that holds a faulty GPU comes from the kubelet's assignment, else the ranks' NCCL init lines
//! (`busId`), else it is said to be one of the node's pods. What could not be examined (nodes not probed, logs not read) is
//! said, and then no verdict reads as a clean bill of health. Faults on GPUs the workload does not hold are
//! listed apart, never as suspects.
//!
//! The steps, one file each: `kubernetes.rs` (pod and node states), `node_findings.rs` (each node's probe
//! findings, on the GPUs `holders.rs` says the pods hold), `stragglers.rs`, `ranks.rs` (the ranks' logs),
//! each giving candidates to `merge.rs` (one suspect per subject, ordered), then `consequences.rs` (restarts
//! that followed the cause) and `verdict.rs`. `node_report.rs` is the `workload` probe command's per-node
//! report the launcher gathers for it.

use std::collections::BTreeMap;

mod answer;
mod consequences;
mod holders;
mod input;
pub mod joblog;
mod kubernetes;
mod merge;
mod node_findings;
mod node_report;
mod ranks;
mod stragglers;
#[cfg(test)]
mod test_support;
mod time;
mod verdict;

pub use answer::{EVIDENCE_KEPT, HeldSource, NodeSummary, Suspect, SuspectKind, WorkloadDiagnosis};
pub use input::{PodContainer, WorkloadInput, WorkloadNode, WorkloadPod};
pub use merge::is_symptom;
pub use node_report::{WorkloadNodeReport, analyze_node};
pub use stragglers::{CLOCK_GAP_PCT, UTILIZATION_GAP_PCT};

/// The whole diagnosis: every step's suspects, merged and ordered, what followed from them and what could
/// not be examined, in one verdict.
pub fn diagnose(input: &WorkloadInput) -> WorkloadDiagnosis {
    // The order the candidates come in is the order ties merge in.
    let mut candidates = kubernetes::kubernetes_suspects(input);
    let examined = node_findings::examine_nodes(input);
    candidates.extend(examined.candidates);
    candidates.extend(stragglers::stragglers(&examined.samples));
    let ranks = ranks::rank_suspects(input, &examined.held);
    candidates.extend(ranks.candidates);
    let mut consequences = ranks.consequences;
    let suspects = consequences::restarts_after_the_cause(
        input,
        merge::merge_by_subject(candidates),
        &mut consequences,
    );
    let mut not_held = examined.not_held;
    for (i, s) in not_held.iter_mut().enumerate() {
        s.rank = i + 1;
    }
    let nodes = examined.nodes;
    let mut pods_by_phase = BTreeMap::new();
    for p in &input.pods {
        *pods_by_phase.entry(p.phase.clone()).or_insert(0) += 1;
    }
    let (logs_read, log_bytes) =
        input
            .logs
            .iter()
            .flatten()
            .fold((0, 0), |(n, b), (_, r)| match r {
                Ok(s) => (n + 1, b + s.bytes),
                Err(_) => (n, b),
            });
    let mut d = WorkloadDiagnosis {
        verdict: String::new(),
        cause_found: !suspects.is_empty(),
        pods: input.pods.len(),
        pods_by_phase,
        gpus_held: nodes.iter().map(|n| n.gpus_held.len()).sum(),
        suspects,
        consequences,
        not_examined: verdict::not_examined(input, &nodes),
        logs_read,
        log_bytes,
        not_held,
        nvlink_span: nvlink_span(&nodes),
        nodes,
    };
    d.verdict = verdict::verdict_line(input, &d);
    d
}

/// A job whose nodes sit in more than one multi-node NVLink domain, or partly outside any: said in one line.
/// Jobs on nodes without a domain (most of the world) or within one are not remarked on.
fn nvlink_span(nodes: &[answer::NodeSummary]) -> Option<String> {
    let mut domains: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outside = 0;
    for n in nodes {
        match n.nvlink_domain.as_deref() {
            Some(d) => *domains.entry(d).or_default() += 1,
            None => outside += 1,
        }
    }
    if domains.is_empty() || (domains.len() == 1 && outside == 0) {
        return None;
    }
    let mut parts: Vec<String> = domains.iter().map(|(d, n)| format!("{n} in {d}")).collect();
    if outside > 0 {
        parts.push(format!("{outside} in none"));
    }
    Some(format!(
        "the job's {} nodes span {} NVLink domain(s) ({}): NVLink between nodes works only within a domain, so ranks in \
         different domains talk over the network (keep a job in one with a nodeAffinity or topology constraint on \
         nvidia.com/gpu.clique, or a ComputeDomain)",
        nodes.len(),
        domains.len(),
        parts.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn a_job_across_two_nvlink_domains_is_said_once() {
        let node = |n: &str, d: Option<&str>| answer::NodeSummary {
            node: n.into(),
            pods: 1,
            gpus_held: vec![0],
            held_source: answer::HeldSource::Kubelet,
            probe_error: None,
            nvlink_domain: d.map(String::from),
        };
        let (a, b) = ("aaaa.1", "bbbb.1");
        assert_eq!(
            nvlink_span(&[node("n1", Some(a)), node("n2", Some(a))]),
            None
        );
        assert_eq!(nvlink_span(&[node("n1", None), node("n2", None)]), None);
        let s = nvlink_span(&[
            node("n1", Some(a)),
            node("n2", Some(b)),
            node("n3", Some(b)),
        ])
        .unwrap();
        assert!(
            s.starts_with("the job's 3 nodes span 2 NVLink domain(s) (1 in aaaa.1, 2 in bbbb.1)"),
            "{s}"
        );
        let s = nvlink_span(&[node("n1", Some(a)), node("n2", None)]).unwrap();
        assert!(s.contains("(1 in aaaa.1, 1 in none)"), "{s}");
    }

    #[test]
    fn a_512_rank_answer_stays_small() {
        // 64 nodes of 8 one-GPU ranks is the shape; the size must not grow with the ranks.
        let size = |n: usize| {
            serde_json::to_string(&diagnose(&hung_job(n, 3)))
                .unwrap()
                .len()
        };
        let (small, big) = (size(64), size(512));
        assert!(big < 48 * 1024, "{big} bytes for 512 ranks");
        let per_node = (big - small) / (512 - 64);
        // Only the node list grows: a few dozen bytes per node, nothing per log line or rank timeout.
        assert!(per_node < 160, "{per_node} bytes per extra node");
        let d = diagnose(&hung_job(512, 3));
        assert_eq!(d.suspects.len(), 1, "{:#?}", d.suspects);
        assert_eq!(d.consequences.len(), 1);
    }
}
