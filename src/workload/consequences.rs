//! What followed from the cause: pods that restarted or failed only because their rank waited for another
//! are counted as consequences once a cause is named, never listed as suspects of their own.

use super::answer::Suspect;
use super::input::WorkloadInput;
use super::merge::is_symptom;
use crate::finding::Severity;
use crate::workload::joblog::{NcclProblem, Signature};

/// Pods that restarted or failed only because their rank waited for another (its watchdog timed out, or
/// NCCL lost the peer) are not suspects once a cause is named: they are counted as consequences.
pub(super) fn restarts_after_the_cause(
    input: &WorkloadInput,
    suspects: Vec<Suspect>,
    consequences: &mut Vec<String>,
) -> Vec<Suspect> {
    let Some(logs) = &input.logs else {
        return suspects;
    };
    let waited = |pod: &String| match logs.get(pod) {
        Some(Ok(s)) => {
            let own = s
                .first_fault
                .as_ref()
                .is_some_and(|f| !matches!(f.signature, Signature::ElasticRootCause { .. }));
            !own && (s.waited()
                || s.events.iter().any(|e| {
                    matches!(
                        e.signature,
                        Signature::Nccl {
                            problem: NcclProblem::RemoteExited
                                | NcclProblem::ConnectionClosed { .. }
                        }
                    )
                }))
        }
        _ => false,
    };
    let caused = suspects
        .iter()
        .any(|s| !is_symptom(&s.code) && s.severity == Severity::Critical);
    if !caused {
        return suspects;
    }
    let (after, keep): (Vec<Suspect>, Vec<Suspect>) = suspects.into_iter().partition(|s| {
        let codes = std::iter::once(&s.code).chain(&s.also);
        !s.pods.is_empty()
            && s.gpu.is_none()
            && codes.into_iter().all(|c| {
                matches!(
                    c.as_str(),
                    "pod.restarting" | "pod.failed" | "elastic.root_cause"
                )
            })
            && s.pods.iter().all(&waited)
    });
    if !after.is_empty() {
        let pods: Vec<&str> = after
            .iter()
            .flat_map(|s| &s.pods)
            .map(String::as_str)
            .collect();
        consequences.push(format!(
            "{} pod(s) restarted or failed after their rank timed out waiting (the cause above, not another): \
             {}{}",
            pods.len(),
            pods.iter().take(4).copied().collect::<Vec<_>>().join(", "),
            if pods.len() > 4 { ", ..." } else { "" }
        ));
    }
    keep.into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.rank = i + 1;
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn an_out_of_memory_rank_is_the_cause_and_the_others_waiting_is_how_it_showed() {
        let d = diagnose(&oom_job());
        assert_eq!(d.suspects.len(), 1, "{d:#?}");
        let s = &d.suspects[0];
        assert_eq!(s.code, "cuda.out_of_memory", "{s:#?}");
        assert_eq!(s.pods, ["train-11"]);
        assert!(s.summary.contains("ran out of GPU memory"), "{}", s.summary);
        assert!(
            s.summary
                .contains("then 15 pod(s) timed out in ALLREDUCE SeqNum=100, waiting for it"),
            "{}",
            s.summary
        );
        // The cause's own line first, then how it showed.
        assert!(
            s.evidence[0].contains("CUDA out of memory"),
            "{:?}",
            s.evidence
        );
        assert!(
            s.evidence[1].starts_with("collective.lagging_rank:"),
            "{:?}",
            s.evidence
        );
        assert!(s.also.contains(&"collective.lagging_rank".to_string()));
        assert!(
            d.verdict
                .starts_with("job/train: 1 suspect(s); first: cuda.out_of_memory on n11 GPU 0 (pod train-11): rank 11"),
            "{}",
            d.verdict
        );
        // Rank 0's elastic root cause (its own abort after its timeout) and the 15 restarts are counted.
        assert!(d.suspects.iter().all(|s| s.code != "elastic.root_cause"));
        let c = d.consequences.join("\n");
        assert!(
            c.contains("15 of 16 pod(s) timed out waiting in ALLREDUCE SeqNum=100"),
            "{c}"
        );
        assert!(
            c.contains("1 torch elastic root cause(s) are a rank's own abort"),
            "{c}"
        );
        assert!(
            c.contains("15 pod(s) restarted or failed after their rank timed out waiting"),
            "{c}"
        );
    }
}
