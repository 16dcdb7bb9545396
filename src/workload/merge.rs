//! Suspect merging: what every step found about the same subject (a GPU, a node, its fabric, a pod) becomes
//! one suspect, named by its cause; a rank's pod and a node's own findings fold into the one faulty GPU they
//! sit on; then the suspects are ordered, the first to fail leading.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use super::answer::{EVIDENCE_KEPT, Suspect, SuspectKind};
use super::time::cmp_times;

/// Evidence lines a merged source adds beside its summary.
const MERGED_EVIDENCE: usize = 2;

/// A suspect as one step found it, before merging: its weight (its place in the order; 85 and above is a
/// fault) and when its evidence first showed (RFC 3339), where known.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub weight: u32,
    pub first: Option<String>,
    pub suspect: Suspect,
    /// For a rank's fabric error: the node of the peer its NCCL error names (the other end of the link).
    pub peer_node: Option<String>,
}

/// What a suspect is about: evidence about the same subject becomes one suspect.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SuspectSubject {
    Gpu(String, u32),
    Node(String),
    Fabric(String),
    Pod(String),
    Config(String),
    Other(String),
}

fn subject_of(s: &Suspect) -> SuspectSubject {
    let node = s.node.clone().unwrap_or_default();
    match (s.kind, s.gpu) {
        (SuspectKind::Configuration, _) => SuspectSubject::Config(s.pods.join(",")),
        (SuspectKind::Fabric, _) if s.pods.len() == 1 && s.code.starts_with("nccl.") => {
            SuspectSubject::Pod(s.pods[0].clone())
        }
        (SuspectKind::Fabric, _) => SuspectSubject::Fabric(node),
        (_, Some(g)) if s.node.is_some() => SuspectSubject::Gpu(node, g),
        _ if s.code.starts_with("pod.") || s.kind == SuspectKind::Rank => {
            SuspectSubject::Pod(s.pods.first().cloned().unwrap_or_default())
        }
        _ if s.node.is_some() => SuspectSubject::Node(node),
        _ => SuspectSubject::Other(s.code.clone()),
    }
}

/// A suspect being merged, with what orders it.
struct MergedSuspect {
    /// The heaviest of what it merged (its place in the order).
    weight: u32,
    /// The weight of the candidate that names it (a symptom merged in does not outweigh another cause).
    lead: u32,
    /// A cause (a fault, an error of the rank's own) rather than how one showed (see [`is_symptom`]).
    cause: bool,
    first: Option<String>,
    s: Suspect,
    /// The pods whose rank's own evidence (its log) is in this suspect.
    rank_pods: BTreeSet<String>,
    /// The node at the other end of a rank's fabric error.
    peer_node: Option<String>,
}

impl MergedSuspect {
    fn new(c: Candidate) -> Self {
        let rank_pods = match c.suspect.kind {
            SuspectKind::Rank => c.suspect.pods.iter().cloned().collect(),
            _ => BTreeSet::new(),
        };
        MergedSuspect {
            weight: c.weight,
            lead: c.weight,
            cause: !is_symptom(&c.suspect.code),
            first: c.first,
            s: c.suspect,
            rank_pods,
            peer_node: c.peer_node,
        }
    }

    /// A fault (rather than a warning) leads the answer.
    fn is_fault(&self) -> bool {
        self.weight >= 85
    }
}

/// Codes that say how a cause showed, not what it was: a rank the others wait for (it stopped: why is the
/// cause), a pod that restarted or failed, torch elastic's first failure, a peer that went away, a node
/// cordoned or with a GPU withdrawn after a fault, a GPU idle while its peers work.
const SYMPTOMS: &[&str] = &[
    "collective.lagging_rank",
    "pod.restarting",
    "pod.failed",
    "elastic.root_cause",
    "nccl.peer_lost",
    "node.cordoned_or_tainted",
    "node.gpu_withdrawn",
    "node.condition",
    "straggler.utilization",
];

pub fn is_symptom(code: &str) -> bool {
    SYMPTOMS.contains(&code)
}

/// What a lagging rank's summary says the others did (`15 pod(s) timed out in ALLREDUCE SeqNum=100`).
fn waited_phrase(lagging_summary: &str) -> Option<&str> {
    let (_, rest) = lagging_summary.split_once("wait for: ")?;
    Some(rest.split("; it ").next().unwrap_or(rest))
}

/// Fold `b` into `a`: the cause names the suspect (the heavier one among causes, or among symptoms), the
/// other's code and evidence join it, so a rank's out-of-memory error leads and the others waiting for that
/// rank is how it showed.
fn merge_into(a: &mut MergedSuspect, mut b: MergedSuspect) {
    if (b.cause, b.lead) > (a.cause, a.lead) {
        std::mem::swap(a, &mut b);
        // Keep the evidence of what was there first in front of the newcomer's explanation.
    }
    a.weight = a.weight.max(b.weight);
    a.rank_pods.append(&mut b.rank_pods);
    let cause = a.cause;
    let (a_s, b_s) = (&mut a.s, b.s);
    if a_s.code != b_s.code && !a_s.also.contains(&b_s.code) {
        a_s.also.push(b_s.code.clone());
    }
    for c in b_s.also {
        if c != a_s.code && !a_s.also.contains(&c) {
            a_s.also.push(c);
        }
    }
    if cause
        && b_s.code == "collective.lagging_rank"
        && let Some(w) = waited_phrase(&b_s.summary)
        && !a_s.summary.contains("; then ")
    {
        a_s.summary = format!(
            "{}; then {w}, waiting for it",
            a_s.summary.trim_end_matches('.')
        );
    }
    if b_s.summary != a_s.summary {
        a_s.evidence.push(format!("{}: {}", b_s.code, b_s.summary));
    }
    // A merged source adds its summary and its first lines: the whole of it stays in its own report.
    for e in b_s.evidence.into_iter().take(MERGED_EVIDENCE) {
        if !a_s.evidence.contains(&e) {
            a_s.evidence.push(e);
        }
    }
    a_s.evidence.truncate(EVIDENCE_KEPT);
    a_s.severity = a_s.severity.max(b_s.severity);
    // A fabric suspect is about a node's ports, not one GPU.
    if a_s.kind != SuspectKind::Fabric {
        if a_s.gpu.is_none() {
            a_s.gpu = b_s.gpu;
        }
        if a_s.gpu_uuid.is_none() {
            a_s.gpu_uuid = b_s.gpu_uuid;
        }
    }
    if a_s.node.is_none() {
        a_s.node = b_s.node;
    }
    for p in b_s.pods {
        if !a_s.pods.contains(&p) {
            a_s.pods.push(p);
        }
    }
    for r in b_s.ranks {
        if !a_s.ranks.contains(&r) {
            a_s.ranks.push(r);
        }
    }
    if cmp_times(b.first.as_deref(), a.first.as_deref()).is_lt() {
        a.first = b.first;
    }
}

/// One suspect per subject, then a rank's pod and a node's own findings fold into the one faulty GPU they
/// sit on; ordered and numbered.
pub(super) fn merge_by_subject(candidates: Vec<Candidate>) -> Vec<Suspect> {
    let mut subjects: BTreeMap<SuspectSubject, MergedSuspect> = BTreeMap::new();
    for c in candidates {
        let merged = MergedSuspect::new(c);
        match subjects.entry(subject_of(&merged.s)) {
            Entry::Occupied(mut e) => merge_into(e.get_mut(), merged),
            Entry::Vacant(e) => {
                e.insert(merged);
            }
        }
    }
    let keys: Vec<SuspectSubject> = subjects.keys().cloned().collect();
    for k in keys {
        if let Some(target) = folds_into(&subjects, &k)
            && target != k
            && let Some(mut merged) = subjects.remove(&k)
            && let Some(t) = subjects.get_mut(&target)
        {
            if matches!(k, SuspectSubject::Node(_)) && matches!(target, SuspectSubject::Gpu(..)) {
                // A node's own finding names every pod of the node; the GPU's holders stay its holders.
                merged.s.pods.clear();
                merged.s.ranks.clear();
            }
            merge_into(t, merged);
        }
    }
    let mut merged: Vec<MergedSuspect> = subjects.into_values().collect();
    merged.sort_by(lead_order);
    merged
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut s = p.s;
            s.rank = i + 1;
            s.first_seen = p.first;
            s
        })
        .collect()
}

/// The subject a pod's or a node's suspect folds into: its node's faulty NIC ports (a rank's fabric error),
/// the GPU its rank's own log names, else the one faulty GPU it sits on.
fn folds_into(
    subjects: &BTreeMap<SuspectSubject, MergedSuspect>,
    k: &SuspectSubject,
) -> Option<SuspectSubject> {
    let p = &subjects[k];
    let faulty = |t: &SuspectSubject| {
        matches!(t, SuspectSubject::Gpu(..))
            && matches!(
                subjects[t].s.kind,
                SuspectKind::Hardware | SuspectKind::Straggler
            )
    };
    match k {
        SuspectSubject::Pod(pod) => {
            // A rank's fabric error joins its node's faulty NIC ports: one cause, seen twice. Where its own
            // node's ports are healthy and the peer's are not, it is the other end of that fault: it joins
            // the peer's (a healthy node never leads for a fault both ends report).
            if p.s.kind == SuspectKind::Fabric {
                for n in [&p.s.node, &p.peer_node].into_iter().flatten() {
                    let t = SuspectSubject::Fabric(n.clone());
                    if subjects.contains_key(&t) {
                        return Some(t);
                    }
                }
            }
            if let (Some(n), Some(g)) = (&p.s.node, p.s.gpu) {
                let t = SuspectSubject::Gpu(n.clone(), g);
                return subjects.contains_key(&t).then_some(t);
            }
            // The GPU its rank's own log names comes first: a restart is about that rank, not
            // about another faulty GPU the pod also holds.
            let own: Vec<&SuspectSubject> = subjects
                .keys()
                .filter(|t| {
                    matches!(t, SuspectSubject::Gpu(..)) && subjects[*t].rank_pods.contains(pod)
                })
                .collect();
            if let [t] = own.as_slice() {
                return Some((*t).clone());
            }
            let on: Vec<&SuspectSubject> = subjects
                .keys()
                .filter(|t| faulty(t) && subjects[*t].s.pods.contains(pod))
                .collect();
            (on.len() == 1).then(|| on[0].clone())
        }
        SuspectSubject::Node(node) => {
            let on: Vec<&SuspectSubject> = subjects
                .keys()
                .filter(|t| faulty(t) && matches!(t, SuspectSubject::Gpu(n, _) if n == node))
                .collect();
            (on.len() == 1).then(|| on[0].clone())
        }
        _ => None,
    }
}

/// The faults first, the first to fail in time leading; then by weight, node and GPU.
fn lead_order(a: &MergedSuspect, b: &MergedSuspect) -> Ordering {
    let first = || cmp_times(a.first.as_deref(), b.first.as_deref());
    b.is_fault()
        .cmp(&a.is_fault())
        .then_with(|| b.cause.cmp(&a.cause))
        .then_with(|| {
            if a.is_fault() {
                first()
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| b.weight.cmp(&a.weight))
        .then_with(first)
        .then_with(|| a.s.node.cmp(&b.s.node))
        .then_with(|| a.s.gpu.cmp(&b.s.gpu))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn a_ranks_ecc_error_and_the_xid_48_on_its_gpu_are_one_suspect() {
        // Two one-GPU pods per 2-GPU node, by the kubelet's assignment; n1's GPU 1 had Xid 48.
        let mut input = job(&["h100-xid48-dbe", "h100-xid48-dbe", "h100-xid48-dbe"]);
        input.pods.clear();
        for n in 0..3 {
            input.nodes[n].gpu_capacity = 2;
            input.nodes[n].gpu_allocatable = 2;
            let node = format!("n{n}");
            let mut alloc = vec![];
            for g in 0..2u32 {
                let name = format!("train-{n}-{g}");
                input.pods.push(WorkloadPod {
                    name: name.clone(),
                    uid: format!("uid-{n}-{g}"),
                    phase: "Running".into(),
                    node: Some(node.clone()),
                    started: Some("2020-01-01T00:00:00Z".into()),
                    gpus_requested: 1,
                    ..Default::default()
                });
                alloc.push(crate::attribution::PodAllocation {
                    namespace: "ml".into(),
                    name,
                    uid: Some(format!("uid-{n}-{g}")),
                    containers: vec![crate::attribution::ContainerAllocation {
                        name: "main".into(),
                        started_unix: None,
                        devices: vec![crate::attribution::AllocatedDevice {
                            resource_name: "nvidia.com/gpu".into(),
                            resource: crate::attribution::device::ResourceKind::Gpu,
                            device_id: format!("GPU-{g}"),
                            form: None,
                            replica: None,
                            gpu_index: Some(g),
                            gpu_uuid: None,
                            mig: None,
                            claim: None,
                            error: None,
                        }],
                    }],
                });
            }
            if let Some(Ok(r)) = input.probes.get_mut(&node) {
                r.allocation.exact = true;
                r.allocation.pods = alloc;
            }
        }
        // Only n1's GPU 1 is faulty in this test: the other nodes' copies of the scenario are not held there.
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32;
            let mut lines = vec![init_line(r, 6, 0)];
            if p.name == "train-1-1" {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: uncorrectable ECC error encountered"
                        .into(),
                );
            } else {
                lines.push(timeout_line(r, 40, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = d
            .suspects
            .iter()
            .find(|s| s.pods.contains(&"train-1-1".to_string()))
            .expect("a suspect for the pod");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n1"), Some(1)), "{d:#?}");
        let codes: Vec<&str> = std::iter::once(s.code.as_str())
            .chain(s.also.iter().map(String::as_str))
            .collect();
        assert!(codes.contains(&"cuda.ecc_uncorrectable"), "{codes:?}");
        assert!(codes.iter().any(|c| c.starts_with("xid.48")), "{codes:?}");
        assert!(
            s.evidence
                .iter()
                .any(|e| e.contains("uncorrectable ECC error encountered")),
            "{s:#?}"
        );
        assert_eq!(
            d.suspects
                .iter()
                .filter(|x| x.node.as_deref() == Some("n1") && x.gpu == Some(1))
                .count(),
            1,
            "{d:#?}"
        );
    }

    #[test]
    fn a_restarted_ranks_pod_and_its_cuda_error_are_one_suspect() {
        // Healthy GPUs: the rank's own error is the only fault, and its pod restarted because of it.
        let mut input = job(&["dgx-h100-healthy"; 2]);
        input.pods[1].restarts = 1;
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let mut lines = vec![init_line(i as u32 * 8, 16, 0)];
            if i == 1 {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: an illegal memory access was \
                     encountered"
                        .into(),
                );
            } else {
                lines.push(timeout_line(0, 40, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let about: Vec<&Suspect> = d
            .suspects
            .iter()
            .filter(|s| s.pods.contains(&"train-1".to_string()))
            .collect();
        assert_eq!(about.len(), 1, "{d:#?}");
        let codes: Vec<&str> = std::iter::once(about[0].code.as_str())
            .chain(about[0].also.iter().map(String::as_str))
            .collect();
        assert!(codes.contains(&"pod.restarting"), "{codes:?}");
        assert!(codes.iter().any(|c| c.starts_with("cuda.")), "{codes:?}");
        assert_eq!(d.suspects[0].pods, ["train-1"], "{d:#?}");
    }

    #[test]
    fn a_restarted_ranks_pod_joins_its_error_on_a_gpu_with_only_a_warning() {
        // GPU 0 of this node is only throttled (a warning); the rank on it died on a CUDA ECC error and its
        // container restarted. The rank's error outweighs the warning and names the GPU's suspect; the
        // pod's restart is about the same rank and joins it.
        let mut input = job(&["h100-thermal-slowdown"]);
        input.nodes[0].gpu_capacity = 2;
        input.nodes[0].gpu_allocatable = 2;
        let p = &mut input.pods[0];
        p.gpus_requested = 2;
        p.restarts = 1;
        p.last_termination = Some("Error (exit 1)".into());
        let lines = [
            "h:1:2 [0] NCCL INFO comm 0x1 rank 0 nranks 2 cudaDev 0 nvmlDev 0 busId 17000 commId 0x2 - Init COMPLETE"
                .to_string(),
            "2026-11-22T10:00:05.000000000Z RuntimeError: CUDA error: uncorrectable ECC error encountered".into(),
        ];
        input.logs = Some([("train-0".to_string(), Ok(scan_of(&lines)))].into());
        let d = diagnose(&input);
        let codes = |s: &Suspect| {
            std::iter::once(s.code.clone())
                .chain(s.also.iter().cloned())
                .collect::<Vec<_>>()
        };
        let s = d
            .suspects
            .iter()
            .find(|s| codes(s).contains(&"cuda.ecc_uncorrectable".to_string()))
            .expect("the rank's suspect");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(0)), "{d:#?}");
        assert!(codes(s).contains(&"pod.restarting".to_string()), "{d:#?}");
        assert_eq!(
            d.suspects
                .iter()
                .filter(|x| x.pods.contains(&"train-0".to_string()) && x.gpu.is_none())
                .count(),
            0,
            "{d:#?}"
        );
    }

    #[test]
    fn a_failing_nic_is_the_cause_its_ranks_nccl_errors_show() {
        let mut input = job(&[
            "dgx-h100-healthy",
            "dgx-h100-healthy",
            "dgx-h100-ib-flapping",
            "dgx-h100-healthy",
        ]);
        for (i, p) in input.pods.iter_mut().enumerate() {
            p.ip = Some(format!("10.4.0.{i}"));
        }
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32 * 8;
            let mut lines = vec![init_line(r, 32, 0)];
            if i == 2 {
                lines.push(
                    "2026-11-22T10:00:05.000000000Z train-2:211:305 [0] NCCL WARN NET/IB : Got completion from peer \
                     10.4.0.3<50113> with status=12 opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.2 \
                     remoteGid ::ffff:10.4.0.3"
                        .into(),
                );
            } else {
                lines.push(timeout_line(r, 55, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = &d.suspects[0];
        assert_eq!(s.kind, SuspectKind::Fabric, "{d:#?}");
        assert!(s.code.starts_with("nic."), "{s:#?}");
        assert_eq!(s.node.as_deref(), Some("n2"));
        assert!(
            s.also.contains(&"nccl.ib_completion_error".to_string()),
            "{s:#?}"
        );
        assert!(
            d.suspects
                .iter()
                .filter(|x| x.node.as_deref() == Some("n2"))
                .count()
                == 1,
            "{d:#?}"
        );
    }

    /// A job of four nodes whose ranks on `reporters` (index, peer index) each report an InfiniBand
    /// completion error naming their own HCA and the peer; the others time out. Host-network pods: the
    /// peer address is the node's own.
    fn both_ends(scenarios: &[&str], reporters: &[(usize, usize)]) -> WorkloadDiagnosis {
        let mut input = job(scenarios);
        for (i, n) in input.nodes.iter_mut().enumerate() {
            n.addresses = vec![format!("10.4.0.{i}"), format!("n{i}")];
        }
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32 * 8;
            let mut lines = vec![init_line(r, 32, 0)];
            match reporters.iter().find(|(a, _)| *a == i) {
                Some((_, peer)) => lines.push(format!(
                    "2026-11-22T10:00:0{i}.000000000Z train-{i}:211:305 [0] NCCL WARN NET/IB : Got completion \
                     from peer 10.4.0.{peer}<50113> with status=12 opcode=0 len=0 vendor err 129 (Recv) \
                     localGid ::ffff:10.4.0.{i} remoteGid ::ffff:10.4.0.{peer} hca mlx5_5"
                )),
                None => lines.push(timeout_line(r, 55, "2026-11-22T10:10:05.000000000Z")),
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        diagnose(&input)
    }

    const FLAPPING_N2: [&str; 4] = [
        "dgx-h100-healthy",
        "dgx-h100-healthy",
        "dgx-h100-ib-flapping",
        "dgx-h100-healthy",
    ];

    #[test]
    fn a_nic_fault_both_ends_report_leads_with_the_failing_end() {
        // n2's mlx5_5/1 flaps; its rank and n3's rank both report the link, each from its own side. The
        // healthy end (n3) reported first.
        for reporters in [[(3, 2), (2, 3)], [(2, 3), (3, 2)]] {
            let d = both_ends(&FLAPPING_N2, &reporters);
            let s = &d.suspects[0];
            assert_eq!(s.kind, SuspectKind::Fabric, "{d:#?}");
            assert_eq!(s.node.as_deref(), Some("n2"), "{d:#?}");
            assert!(s.code.starts_with("nic."), "{s:#?}");
            // The other end's error is its consequence, in this suspect: no suspect of its own on n3.
            assert!(s.pods.contains(&"train-3".to_string()), "{s:#?}");
            assert!(
                !d.suspects.iter().any(|x| x.node.as_deref() == Some("n3")),
                "{d:#?}"
            );
            let ev = s.evidence.join("\n");
            assert!(
                ev.contains("this end: HCA mlx5_5 on n2, which the probe found failing (nic.link_flapping on mlx5_5/1"),
                "{ev}"
            );
            assert!(
                ev.contains("other end: 10.4.0.2<50113> on n2, where the probe found"),
                "{ev}"
            );
        }
    }

    #[test]
    fn a_nic_fault_reported_only_from_the_healthy_end_still_names_the_failing_end() {
        let d = both_ends(&FLAPPING_N2, &[(3, 2)]);
        let s = &d.suspects[0];
        assert_eq!(
            (s.kind, s.node.as_deref()),
            (SuspectKind::Fabric, Some("n2")),
            "{d:#?}"
        );
        assert!(s.pods.contains(&"train-3".to_string()), "{s:#?}");
    }

    #[test]
    fn a_link_both_ends_report_with_no_port_faulty_names_both_ports_healthy() {
        let d = both_ends(&["dgx-h100-healthy"; 4], &[(3, 2), (2, 3)]);
        let fabric: Vec<&Suspect> = d
            .suspects
            .iter()
            .filter(|x| x.code == "nccl.ib_completion_error")
            .collect();
        assert_eq!(fabric.len(), 2, "{d:#?}");
        for s in fabric {
            let ev = s.evidence.join("\n");
            assert!(ev.contains("which the probe found healthy"), "{ev}");
            assert!(
                ev.contains("whose RDMA ports the probe found healthy"),
                "{ev}"
            );
        }
    }
}
