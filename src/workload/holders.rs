//! Which pod holds which GPU on a node: the kubelet's assignment, else the pods' requests (all of the
//! node's GPUs) narrowed by the ranks' NCCL init lines (the PCI address of each rank's GPU).

use std::collections::{BTreeMap, BTreeSet};

use super::answer::HeldSource;
use super::input::{WorkloadInput, WorkloadNode, WorkloadPod};
use super::node_report::WorkloadNodeReport;
use crate::workload::joblog::PodLogScan;

/// The GPUs the workload's pods hold on one node, and how that is known.
#[derive(Debug, Clone)]
pub(super) struct HeldGpus {
    /// By GPU index.
    pub gpus: BTreeMap<u32, GpuHolders>,
    pub source: HeldSource,
}

/// One held GPU: its UUID where known and the workload's pods holding it.
#[derive(Debug, Clone)]
pub(super) struct GpuHolders {
    pub uuid: Option<String>,
    pub pods: Vec<String>,
}

/// A GPU of a node by its index, with its UUID where known.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GpuId {
    pub index: u32,
    pub uuid: Option<String>,
}

/// A GPU's PCI address in canonical form (`0000:9a:00.0`).
#[derive(Debug, Clone, PartialEq)]
struct GpuBusId {
    index: u32,
    bus: String,
}

pub(super) fn held_gpus(
    report: &WorkloadNodeReport,
    pods: &[&WorkloadPod],
    node: Option<&WorkloadNode>,
) -> HeldGpus {
    let mut held: BTreeMap<u32, GpuHolders> = BTreeMap::new();
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
                    let e = held.entry(i).or_insert(GpuHolders {
                        uuid: d.gpu_uuid.clone(),
                        pods: vec![],
                    });
                    if !e.pods.contains(&ours.name) {
                        e.pods.push(ours.name.clone());
                    }
                }
            }
        }
        return HeldGpus {
            gpus: held,
            source: HeldSource::Kubelet,
        };
    }
    let gpus: Vec<GpuId> = report
        .describe
        .inventory
        .gpus
        .iter()
        .map(|g| GpuId {
            index: g.index,
            uuid: g.uuid.ok().cloned(),
        })
        .collect();
    let requested: u64 = pods.iter().map(|p| p.gpus_requested).sum();
    let capacity = node
        .map(|n| n.gpu_capacity)
        .filter(|c| *c > 0)
        .unwrap_or(gpus.len() as u64);
    if requested > 0 && requested >= capacity {
        let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
        for g in gpus {
            held.insert(
                g.index,
                GpuHolders {
                    uuid: g.uuid,
                    pods: names.clone(),
                },
            );
        }
        return HeldGpus {
            gpus: held,
            source: HeldSource::AllRequested,
        };
    }
    HeldGpus {
        gpus: held,
        source: HeldSource::RequestsOnly,
    }
}

/// Where the pods request every GPU of a node, which pod holds which GPU is not known, unless a rank's NCCL
/// init line names its GPU by PCI address: that GPU is then held by the pods naming it, and a pod whose
/// named GPUs cover its request holds no other. Without that, a fault on one GPU would name every pod of
/// the node. A GPU is never left without holders (a log that contradicts the requests changes nothing).
/// Returns, for each GPU a log named, how that is known (evidence for its suspect).
pub(super) fn narrow_by_nccl_devices(
    held: &mut HeldGpus,
    report: &WorkloadNodeReport,
    pods: &[&WorkloadPod],
    logs: Option<&BTreeMap<String, Result<PodLogScan, String>>>,
) -> BTreeMap<u32, String> {
    let mut how = BTreeMap::new();
    let Some(logs) = logs else { return how };
    if held.source != HeldSource::AllRequested {
        return how;
    }
    let bus_of = bus_ids(report);
    let mut naming: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    for p in pods {
        let Some(Ok(scan)) = logs.get(&p.name) else {
            continue;
        };
        let mut mine: BTreeSet<u32> = BTreeSet::new();
        for d in &scan.rank_devices {
            let Some(bus) = d.pci_bus_id.as_deref() else {
                continue;
            };
            if let Some(g) = bus_of.iter().find(|g| g.bus == bus) {
                mine.insert(g.index);
                how.entry(g.index).or_insert_with(|| {
                    format!(
                        "rank {}'s NCCL init line names this GPU's PCI address ({bus})",
                        d.rank
                    )
                });
            }
        }
        if !mine.is_empty() && mine.len() as u64 >= p.gpus_requested {
            placed.insert(p.name.as_str());
        }
        for g in mine {
            naming.entry(g).or_default().push(p.name.clone());
        }
    }
    for (g, holders) in held.gpus.iter_mut() {
        let narrowed: Vec<String> = match naming.get(g) {
            Some(names) => names.clone(),
            None => holders
                .pods
                .iter()
                .filter(|h| !placed.contains(h.as_str()))
                .cloned()
                .collect(),
        };
        if !narrowed.is_empty() {
            holders.pods = narrowed;
        }
    }
    how
}

/// Each GPU's PCI address in canonical form: NVML's, else the kernel log's (an Xid line names the address
/// of a GPU NVML can no longer read).
fn bus_ids(report: &WorkloadNodeReport) -> Vec<GpuBusId> {
    let d = &report.describe;
    let mut out: Vec<GpuBusId> = d
        .inventory
        .gpus
        .iter()
        .filter_map(|g| {
            Some(GpuBusId {
                index: g.index,
                bus: crate::pci::normalize_bus_id(g.pci_bus_id.ok()?)?,
            })
        })
        .collect();
    for x in &d.xid.gpus {
        if let (Some(i), Some(b)) = (x.index, x.pci_bus_id.as_deref())
            && !out.iter().any(|g| g.index == i)
            && let Some(b) = crate::pci::normalize_bus_id(b)
        {
            out.push(GpuBusId { index: i, bus: b });
        }
    }
    out
}

/// Who holds GPU `g`, from the best source there is: the kubelet's assignment, a rank's NCCL init line,
/// else the pods that may hold it, said as such.
pub(super) fn holder_line(
    g: u32,
    holders: &[String],
    source: HeldSource,
    named: &BTreeMap<u32, String>,
) -> Option<String> {
    let [one] = holders else {
        return (holders.len() > 1).then(|| {
            format!(
                "held by one of {} pods on the node ({}{}): they request all its GPUs and no rank's NCCL init \
                 line names this one",
                holders.len(),
                holders.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                if holders.len() > 3 { ", ..." } else { "" }
            )
        });
    };
    match (source, named.get(&g)) {
        (HeldSource::Kubelet, _) => Some(format!(
            "held by pod {one} (the kubelet's device assignment)"
        )),
        (_, Some(how)) => Some(format!("held by pod {one}: {how}")),
        (HeldSource::AllRequested, None) => Some(format!(
            "held by pod {one} (it requests every GPU of the node)"
        )),
        _ => None,
    }
}

/// Which of the node's GPUs a pod's faulting rank ran on: NCCL's PCI address, else the pod's only GPU, else
/// NCCL's NVML index where the pod sees every GPU.
pub(super) fn gpu_of_pod(
    input: &WorkloadInput,
    pod: &WorkloadPod,
    scan: &PodLogScan,
    helds: &BTreeMap<String, HeldGpus>,
) -> Option<GpuId> {
    let node = pod.node.as_deref()?;
    let held = helds.get(node)?;
    let report = match input.probes.get(node) {
        Some(Ok(r)) => r,
        _ => return None,
    };
    let dev = scan.device_of_faulting_rank();
    if let Some(bus) = dev.and_then(|d| d.pci_bus_id.as_deref())
        && let Some(g) = bus_ids(report).into_iter().find(|g| g.bus == bus)
    {
        let uuid = report
            .describe
            .inventory
            .gpus
            .iter()
            .find(|i| i.index == g.index)
            .and_then(|i| i.uuid.ok().cloned());
        return Some(GpuId {
            index: g.index,
            uuid,
        });
    }
    let mine: Vec<_> = held
        .gpus
        .iter()
        .filter(|(_, h)| h.pods.contains(&pod.name))
        .collect();
    if let [(g, h)] = mine.as_slice() {
        return Some(GpuId {
            index: **g,
            uuid: h.uuid.clone(),
        });
    }
    if held.source == HeldSource::AllRequested
        && let Some(i) = dev.and_then(|d| d.nvml_dev)
        && let Some(h) = held.gpus.get(&i)
    {
        return Some(GpuId {
            index: i,
            uuid: h.uuid.clone(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn where_pods_request_every_gpu_nccl_bus_ids_say_which_pod_holds_the_faulty_one() {
        // Two one-GPU pods on the 2-GPU node whose GPU 1 (0000:ca:00.0) had an Xid 48; no kubelet
        // assignment, so only the requests say the pods hold the node's GPUs, and the logs say which.
        let mut input = job(&["h100-xid48-dbe"]);
        input.nodes[0].gpu_capacity = 2;
        input.nodes[0].gpu_allocatable = 2;
        input.pods.clear();
        for (g, bus) in [(0u32, "17000"), (1, "ca000")] {
            input.pods.push(WorkloadPod {
                name: format!("train-{g}"),
                uid: format!("uid-{g}"),
                phase: "Running".into(),
                node: Some("n0".into()),
                gpus_requested: 1,
                ..Default::default()
            });
            let init = format!(
                "h:1:2 [0] NCCL INFO comm 0x1 rank {g} nranks 2 cudaDev 0 nvmlDev 0 busId {bus} commId 0x2 - Init COMPLETE"
            );
            input
                .logs
                .get_or_insert_with(BTreeMap::new)
                .insert(format!("train-{g}"), Ok(scan_of(&[init])));
        }
        let d = diagnose(&input);
        assert_eq!(d.nodes[0].held_source, HeldSource::AllRequested);
        let s = d
            .suspects
            .iter()
            .find(|s| s.gpu == Some(1))
            .expect("GPU 1 suspect");
        assert_eq!(s.pods, ["train-1"], "{d:#?}");
        assert!(d.verdict.contains("(pod train-1)"), "{}", d.verdict);
        // Without the init lines both pods may hold it.
        input.logs = Some(
            ["train-0", "train-1"]
                .iter()
                .map(|p| (p.to_string(), Ok(scan_of(&[]))))
                .collect(),
        );
        let d = diagnose(&input);
        let s = d.suspects.iter().find(|s| s.gpu == Some(1)).unwrap();
        assert_eq!(s.pods, ["train-0", "train-1"], "{d:#?}");
    }

    #[test]
    fn a_lost_gpu_names_the_one_pod_whose_nccl_bus_id_is_its_address() {
        let d = diagnose(&one_gpu_pods("dgx-h100-xid79", true));
        let s = &d.suspects[0];
        assert_eq!((s.node.as_deref(), s.gpu), (Some("n0"), Some(4)), "{d:#?}");
        assert_eq!(s.kind, SuspectKind::Hardware);
        assert_eq!(s.pods, ["train-4"], "{s:#?}");
        // The incident speaks for its signals (Xid 79, the lost GPU, the recovery action).
        assert!(s.summary.contains("fell off the bus"), "{}", s.summary);
        assert!(s.also.iter().any(|c| c == "gpu.lost"), "{:?}", s.also);
        assert!(
            s.evidence
                .iter()
                .any(|e| e == "held by pod train-4: rank 4's NCCL init line names this GPU's PCI address (0000:9a:00.0)"),
            "{:#?}",
            s.evidence
        );
        // Said in words, never as a per-field dump.
        assert!(
            s.evidence
                .iter()
                .all(|e| !e.contains("field(s)") && !e.contains("= gpu_is_lost")),
            "{:#?}",
            s.evidence
        );
        assert!(
            d.verdict.contains("on n0 GPU 4 (pod train-4)"),
            "{}",
            d.verdict
        );
        assert_eq!(
            d.suspects.iter().filter(|x| x.gpu == Some(4)).count(),
            1,
            "{d:#?}"
        );
        assert!(
            d.consequences[0].starts_with("7 of 8 pod(s) timed out"),
            "{:?}",
            d.consequences
        );

        // Without the init lines the pod is not known: said as such.
        let d = diagnose(&one_gpu_pods("dgx-h100-xid79", false));
        let s = &d.suspects[0];
        assert_eq!(s.gpu, Some(4));
        assert_eq!(s.pods.len(), 8);
        assert!(
            s.evidence
                .iter()
                .any(|e| e.starts_with("held by one of 8 pods on the node")),
            "{:#?}",
            s.evidence
        );
        assert!(
            d.verdict
                .contains("(held by one of 8 pods: which one is not known)"),
            "{}",
            d.verdict
        );
    }
}
