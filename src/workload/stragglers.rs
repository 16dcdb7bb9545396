//! Stragglers: a GPU the workload holds that lags its peers of the same model (held-down clocks, a
//! down-trained PCIe link, fewer NVLinks, idle while they work), with the comparison as evidence.

use std::collections::{BTreeMap, BTreeSet};

use super::answer::{Suspect, SuspectKind};
use super::holders::GpuHolders;
use super::input::WorkloadPod;
use super::merge::Candidate;
use super::node_report::WorkloadNodeReport;
use crate::analysis::telemetry::ReasonClass;
use crate::finding::Severity;

/// A straggler differs from the median of its peers by at least this many utilisation points (with the
/// peers busy), or sits this far below it in SM clock percentage.
pub const UTILIZATION_GAP_PCT: u32 = 50;
pub const CLOCK_GAP_PCT: u32 = 25;

/// A GPU's PCIe link: the generation and width it runs at and the most it can.
#[derive(Debug, Clone, Copy)]
struct PcieLink {
    generation: u32,
    max_generation: u32,
    width: u32,
    max_width: u32,
}

/// One GPU the workload holds, with what peers are compared on.
#[derive(Debug, Clone)]
pub(super) struct GpuSample {
    node: String,
    gpu: u32,
    uuid: Option<String>,
    model: String,
    pods: Vec<String>,
    ranks: Vec<String>,
    sm_pct: Option<u32>,
    harmful_reasons: Vec<String>,
    util_pct: Option<u32>,
    pcie: Option<PcieLink>,
    nvlinks_active: Option<usize>,
}

/// The GPUs the workload holds on one node, each with what its peers are compared on.
pub(super) fn samples(
    node: &str,
    report: &WorkloadNodeReport,
    held: &BTreeMap<u32, GpuHolders>,
    pods: &[&WorkloadPod],
) -> Vec<GpuSample> {
    let d = &report.describe;
    held.iter()
        .map(|(&gpu, GpuHolders { uuid, pods: names })| {
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
                Some(PcieLink {
                    generation: t.pcie.current_gen.get()?,
                    max_generation: t.pcie.max_gen.get()?,
                    width: t.pcie.current_width.get()?,
                    max_width: t.pcie.max_width.get()?,
                })
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
pub(super) fn stragglers(all: &[GpuSample]) -> Vec<Candidate> {
    let mut out = Vec::new();
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
            if let Some(PcieLink {
                generation: g,
                max_generation: mg,
                width: w,
                max_width: mw,
            }) = s.pcie
            {
                let pg = median(
                    others
                        .iter()
                        .filter_map(|o| o.pcie.map(|p| p.generation))
                        .collect(),
                );
                let pw = median(
                    others
                        .iter()
                        .filter_map(|o| o.pcie.map(|p| p.width))
                        .collect(),
                );
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
            out.push(Candidate {
                weight: 70,
                first: None,
                suspect: Suspect {
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
                    also: vec![],
                    first_seen: None,
                },
                peer_node: None,
            });
        }
    }
    node_wide(out)
}

/// GPUs of one node that lag alike (the same comparison, three or more of them) are one node-wide cause: the
/// node's hive reset or its power, cooling or fabric, not so many separate GPUs. One suspect names the node
/// and its GPUs.
fn node_wide(found: Vec<Candidate>) -> Vec<Candidate> {
    let mut groups: BTreeMap<(String, String), Vec<Candidate>> = BTreeMap::new();
    let mut out = Vec::new();
    for c in found {
        let key = (
            c.suspect.node.clone().unwrap_or_default(),
            c.suspect.evidence.join("\n"),
        );
        groups.entry(key).or_default().push(c);
    }
    for ((node, _), mut alike) in groups {
        if alike.len() < 3 {
            out.extend(alike);
            continue;
        }
        let gpus: Vec<String> = alike
            .iter()
            .filter_map(|c| c.suspect.gpu.map(|g| g.to_string()))
            .collect();
        let mut one = alike.remove(0);
        let n = gpus.len();
        one.suspect.summary = format!(
            "{n} of the workload's GPUs on {node} (GPUs {}) lag its other GPUs alike: a cause of the whole node \
             (a reset of its GPUs, its power, cooling or fabric), and every rank waits for them",
            gpus.join(", ")
        );
        one.suspect.gpu = None;
        one.suspect.gpu_uuid = None;
        for c in &alike {
            for p in &c.suspect.pods {
                if !one.suspect.pods.contains(p) {
                    one.suspect.pods.push(p.clone());
                }
            }
            for r in &c.suspect.ranks {
                if !one.suspect.ranks.contains(r) {
                    one.suspect.ranks.push(r.clone());
                }
            }
        }
        one.suspect
            .evidence
            .push(format!("alike on GPUs {} of {node}", gpus.join(", ")));
        out.push(one);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::*;

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

    /// A UMC error reset one MI300X node's hive: its seven other GPUs sit idle at low clocks. They are one
    /// node-wide lag, folded into that node's fault (the GPU at fault), not seven stragglers; the healthy
    /// nodes are no suspects.
    #[test]
    fn gpus_of_one_node_lagging_alike_are_one_node_wide_suspect() {
        let d = diagnose(&job(&[
            "mi300x-healthy",
            "mi300x-healthy",
            "mi300x-umc-ue-poison",
            "mi300x-healthy",
        ]));
        assert_eq!(d.suspects.len(), 1, "{:#?}", d.suspects);
        let s = &d.suspects[0];
        assert_eq!(s.code, "amd.ras_ue.umc");
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n2"), Some(3)));
        assert!(
            s.also.iter().any(|a| a == "straggler.clocks"),
            "{:?}",
            s.also
        );
        assert!(
            s.evidence
                .iter()
                .any(|e| e
                    .contains("8 of the workload's GPUs on n2 (GPUs 0, 1, 2, 3, 4, 5, 6, 7) lag")),
            "{:#?}",
            s.evidence
        );
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
}
