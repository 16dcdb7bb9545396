//! The verdict line and what could not be examined: the first suspect in one line, or why there is none
//! (no pods, gaps in what was examined, symptoms without a cause, or a healthy job said as such).

use std::collections::BTreeMap;

use super::answer::{NodeSummary, WorkloadDiagnosis};
use super::input::WorkloadInput;

/// The diagnosis's one line, from the rest of it.
pub(super) fn verdict_line(input: &WorkloadInput, d: &WorkloadDiagnosis) -> String {
    let (suspects, nodes, consequences) = (&d.suspects, &d.nodes, &d.consequences);
    let incomplete = if d.not_examined.is_empty() {
        String::new()
    } else {
        format!(" (incomplete: {})", short_gaps(input, nodes))
    };
    match suspects.first() {
        Some(s) => {
            let place = match (&s.node, s.gpu) {
                (Some(n), Some(g)) => format!(" on {n} GPU {g}"),
                (Some(n), None) => format!(" on {n}"),
                _ => String::new(),
            };
            let who = match s.pods.as_slice() {
                [one] => format!(" (pod {one})"),
                [_, _, ..] if s.gpu.is_some() => format!(
                    " (held by one of {} pods: which one is not known)",
                    s.pods.len()
                ),
                _ => String::new(),
            };
            format!(
                "{}: {} suspect(s); first: {}{place}{who}: {}{incomplete}",
                input.workload,
                suspects.len(),
                s.code,
                s.summary
            )
        }
        None if input.pods.is_empty() => format!("{}: no pods found", input.workload),
        None if !d.not_examined.is_empty() => format!(
            "{}: diagnosis incomplete, {}: no cause found in what could be examined, which is not a clean \
             bill of health; see not_examined for how to complete it",
            input.workload,
            short_gaps(input, nodes)
        ),
        // Symptoms without a cause: say what was seen, and where the cause may still be.
        None if !consequences.is_empty() => format!(
            "{}: no cause found, but the job is not well: {}; the cause may be earlier than the log lines read \
             (raise log_tail_lines) or in the application",
            input.workload,
            consequences.join("; ")
        ),
        None => format!(
            "{}: nothing wrong found: {} pod(s) ({}) on {} node(s), every node probed: no fault or straggler on \
             its {} GPU(s), no pod or node problem; {} pod log(s) read ({} KiB): no failure signature",
            input.workload,
            input.pods.len(),
            d.pods_by_phase
                .iter()
                .map(|(p, n)| format!("{n} {p}"))
                .collect::<Vec<_>>()
                .join(", "),
            nodes.len(),
            d.gpus_held,
            d.logs_read,
            d.log_bytes / 1024
        ),
    }
}

/// The nodes and logs not examined, in a few words for the verdict.
pub(super) fn short_gaps(input: &WorkloadInput, nodes: &[NodeSummary]) -> String {
    let mut parts = Vec::new();
    let unprobed = nodes.iter().filter(|n| n.probe_error.is_some()).count();
    if unprobed > 0 {
        parts.push(format!("{unprobed} of {} node(s) not probed", nodes.len()));
    }
    let scheduled = input.pods.iter().filter(|p| p.node.is_some()).count();
    match &input.logs {
        None if scheduled > 0 => parts.push("pod logs not read".to_string()),
        Some(l) => {
            let failed = l.values().filter(|r| r.is_err()).count();
            if failed > 0 {
                parts.push(format!("{failed} of {} pod log(s) not read", l.len()));
            }
        }
        None => {}
    }
    parts.join(", ")
}

/// Each gap with why and how to close it.
pub(super) fn not_examined(input: &WorkloadInput, nodes: &[NodeSummary]) -> Vec<String> {
    let mut out = Vec::new();
    let failed: Vec<&NodeSummary> = nodes.iter().filter(|n| n.probe_error.is_some()).collect();
    if !failed.is_empty() {
        let mut why: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for n in &failed {
            let e = n.probe_error.as_deref().unwrap_or_default();
            let first = e.lines().next().unwrap_or(e).chars().take(300).collect();
            why.entry(first).or_default().push(&n.node);
        }
        for (e, ns) in why.iter().take(3) {
            out.push(format!(
                "{} node(s) not probed ({}{}): {e}",
                ns.len(),
                ns.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                if ns.len() > 3 { ", ..." } else { "" }
            ));
        }
        out.push(
            "their GPUs, XIDs and fabric were not examined: fix what the error says (e.g. a probe image that \
             the nodes can pull: --probe-image <image with node-probe>, or RBAC per `k8s-gpu-mcp check`), then \
             ask again"
                .to_string(),
        );
    }
    let scheduled = input.pods.iter().filter(|p| p.node.is_some()).count();
    match &input.logs {
        None if scheduled > 0 => out.push(
            "the pods' logs were not read: the ranks' own errors (NCCL, CUDA, PyTorch) were not examined".into(),
        ),
        Some(l) => {
            let mut why: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (pod, r) in l {
                if let Err(e) = r {
                    why.entry(e.as_str()).or_default().push(pod);
                }
            }
            for (e, pods) in why.iter().take(3) {
                out.push(format!(
                    "{} pod log(s) not read ({}{}): {}",
                    pods.len(),
                    pods.iter().take(3).copied().collect::<Vec<_>>().join(", "),
                    if pods.len() > 3 { ", ..." } else { "" },
                    e.chars().take(300).collect::<String>()
                ));
            }
        }
        None => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::test_support::*;
    use super::super::*;
    use crate::workload::joblog::PodLogScan;

    #[test]
    fn a_healthy_job_with_clean_logs_reads_healthy() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        input.logs = Some(
            input
                .pods
                .iter()
                .map(|p| (p.name.clone(), Ok(PodLogScan::default())))
                .collect(),
        );
        let d = diagnose(&input);
        assert!(!d.cause_found, "{:#?}", d.suspects);
        assert!(d.not_examined.is_empty(), "{:?}", d.not_examined);
        assert!(
            d.verdict.contains("nothing wrong found") && d.verdict.contains("4 pod log(s) read"),
            "{}",
            d.verdict
        );
    }

    #[test]
    fn nothing_examined_is_not_a_clean_bill_of_health() {
        let mut input = job(&["dgx-h100-healthy"; 6]);
        for r in input.probes.values_mut() {
            *r =
                Err("no image on the node could run the probe; give one with --probe-image".into());
        }
        let d = diagnose(&input);
        assert!(!d.cause_found);
        assert!(d.verdict.contains("diagnosis incomplete"), "{}", d.verdict);
        assert!(
            d.verdict.contains("6 of 6 node(s) not probed"),
            "{}",
            d.verdict
        );
        assert!(d.verdict.contains("pod logs not read"), "{}", d.verdict);
        assert!(!d.verdict.contains("look at the"), "{}", d.verdict);
        let gaps = d.not_examined.join(" | ");
        assert!(
            gaps.contains("6 node(s) not probed") && gaps.contains("--probe-image"),
            "{gaps}"
        );
        // Logs that could not be read are said too, with why.
        input.logs = Some(
            input
                .pods
                .iter()
                .map(|p| (p.name.clone(), Err("forbidden: get pods/log".to_string())))
                .collect(),
        );
        let d = diagnose(&input);
        assert!(
            d.verdict.contains("6 of 6 pod log(s) not read"),
            "{}",
            d.verdict
        );
        assert!(
            d.not_examined.iter().any(|g| g.contains("forbidden")),
            "{:?}",
            d.not_examined
        );
    }

    #[test]
    fn a_healthy_job_reads_healthy_without_advice() {
        let mut input = job(&["dgx-h100-healthy"; 2]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let lines = vec![
                init_line(i as u32 * 8, 16, 0),
                format!(
                    "2026-11-22T09:10:00.000000000Z [rank{}] step 41000 | loss 2.1345 | 497 ms/step",
                    i * 8
                ),
            ];
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert!(!d.cause_found);
        assert!(d.suspects.is_empty() && d.consequences.is_empty(), "{d:#?}");
        assert!(
            d.verdict
                .starts_with("job/train: nothing wrong found: 2 pod(s) (2 Running) on 2 node(s)"),
            "{}",
            d.verdict
        );
        assert!(
            d.verdict.contains("16 GPU(s)") && d.verdict.contains("2 pod log(s) read"),
            "{}",
            d.verdict
        );
        assert!(!d.verdict.contains("look at"), "{}", d.verdict);
    }

    #[test]
    fn timeouts_without_a_cause_are_said_as_symptoms_not_health() {
        // Every rank timed out at the same collective: nobody lags, nothing else is wrong.
        let mut input = hung_job(4, 0);
        let logs = input.logs.as_mut().unwrap();
        logs.insert(
            "train-0".into(),
            Ok(scan_of(&[timeout_line(
                0,
                100,
                "2026-11-22T10:10:00.000000000Z",
            )])),
        );
        let d = diagnose(&input);
        assert!(d.suspects.is_empty(), "{d:#?}");
        assert!(
            d.verdict
                .contains("no cause found, but the job is not well: 4 of 4 pod(s) timed out"),
            "{}",
            d.verdict
        );
    }
}
