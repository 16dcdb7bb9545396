//! `topology`: how the GPUs connect. The GPU x GPU matrix as `nvidia-smi topo -m` prints it (NV#, PIX, PXB,
//! PHB, NODE, SYS), P2P status per pair, every NVLink with its state, the device at its far end by PCI id
//! and its error counters judged by DCGM's thresholds, the PCIe link against what it should be, CPU/NUMA
//! affinity, and the NVSwitch fabric registration where the GPU has one.
//!
//! This file assembles the report (per GPU, then the GPU pairs and the matrix); each part is judged in its
//! own file: `pcie.rs` (the PCIe link), `nvlink.rs` and `fabric.rs` (NVSwitch fabric registration). The
//! relation of a GPU pair (PIX ... SYS) is `analysis::pci_relation`'s, which the NIC affinity of
//! `analysis::nic` reads too; the NIC section (`analysis::nic`) is judged there and only placed here.

mod fabric;
mod nvlink;
mod pcie;

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, NodeFacts, P2pFacts, Reading};
use crate::finding::{ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;

use super::pci_relation::PciRelation;
use super::{GpuRef, finding, index_ranges};

pub use fabric::{Fabric, nvlink_domain};
pub use nvlink::{
    GpuLinks, LinksBetween, NvLinkState, NvLinkSummary, nvlink_findings, nvlinks_between,
};
pub use pcie::{PcieLink, pcie_link, replay_budget_per_min};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopologyReport {
    pub matrix: TopologyMatrix,
    pub pairs: Vec<PairTopology>,
    pub gpus: Vec<GpuTopology>,
    pub findings: Vec<Finding>,
    /// RDMA NICs (InfiniBand, RoCE) and the GPU-NIC affinity; absent when the probe did not collect them
    /// (older probes, scenarios without NICs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nics: Option<super::nic::NicReport>,
    /// Intel Gaudi devices' own NIC ports as libhlml reads them, where the RDMA core does not show them
    /// (Intel's `habanalabs_ib` not loaded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaudi_nic: Vec<super::gaudi::GaudiNicLinks>,
    /// What a summarised report leaves out, and how to get it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omitted: Option<String>,
}

impl Judged for TopologyReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

/// The `nvidia-smi topo -m` view: one row per GPU, `X` on the diagonal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopologyMatrix {
    pub columns: Vec<String>,
    pub rows: Vec<MatrixRow>,
    pub legend: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MatrixRow {
    pub gpu: String,
    pub cells: Vec<String>,
    pub cpu_affinity: String,
    pub numa_node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairTopology {
    pub a: u32,
    pub b: u32,
    /// The matrix cell: `NV18`, `PIX`, `PXB`, `PHB`, `NODE`, `SYS`, or `?` when unknown.
    pub connection: String,
    /// Active NVLinks usable between the pair (direct, or via NVSwitch: the fewer of the two GPUs' links
    /// to switches they share).
    pub nvlinks: u32,
    /// `direct`, `nvswitch` or absent when the pair talks over PCIe only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_via: Option<String>,
    /// The PCIe path alone (what the pair falls back to without NVLink).
    pub pcie_path: Reading<String>,
    pub p2p: P2pReport,
}

/// NVML P2P status per capability: `ok`, or why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct P2pReport {
    pub read: Option<String>,
    pub write: Option<String>,
    pub nvlink: Option<String>,
    pub atomics: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuTopology {
    #[serde(flatten)]
    pub gpu: GpuRef,
    pub numa_node: Reading<i32>,
    /// Kernel range form, `0-55,112-167`.
    pub cpu_affinity: Reading<String>,
    pub pcie: PcieLink,
    pub nvlinks: Vec<NvLinkState>,
    pub fabric: Reading<Fabric>,
    /// The NVLinks counted, in a summarised report (where `nvlinks` keeps only the links that deviate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_summary: Option<NvLinkSummary>,
}

pub fn p2p_status(code: u32) -> String {
    match code {
        0 => "ok",
        1 => "chipset_not_supported",
        2 => "gpu_not_supported",
        3 => "ioh_topology_not_supported",
        4 => "disabled_by_regkey",
        5 => "not_supported",
        6 => "unknown",
        _ => return format!("status_{code}"),
    }
    .to_string()
}

/// The report as a model reads it first: every finding, the matrix, PCIe and fabric per GPU, NICs; of the
/// NVLinks only those that are not active and error-free (the rest counted per GPU in `nvlink_summary`), of
/// the GPU pairs only those whose peer-to-peer is not fully supported. `omitted` says what was left out.
pub fn summarize(r: &mut TopologyReport) {
    let mut links_left = 0usize;
    for g in &mut r.gpus {
        if let Some(s) = nvlink::summary(&g.nvlinks) {
            g.nvlink_summary = Some(s);
        }
        links_left += nvlink::keep_deviating(&mut g.nvlinks);
    }
    let before = r.pairs.len();
    let ok = |v: &Option<String>| v.as_deref().is_none_or(|s| s == "ok");
    r.pairs.retain(|p| {
        !(ok(&p.p2p.read) && ok(&p.p2p.write) && ok(&p.p2p.nvlink) && ok(&p.p2p.atomics))
    });
    let pairs_left = before - r.pairs.len();
    let mut left = Vec::new();
    if links_left > 0 {
        left.push(format!(
            "{links_left} NVLinks that are active without errors (counted in nvlink_summary)"
        ));
    }
    if pairs_left > 0 {
        left.push(format!(
            "{pairs_left} GPU pairs with full peer-to-peer support (their connection is in the matrix)"
        ));
    }
    if !left.is_empty() {
        r.omitted = Some(format!(
            "{} are not listed; call again with detail=\"full\" to list them",
            left.join(" and ")
        ));
    }
}

/// A CPU set in the kernel's list form (`0-55,112-167`): sorted, each CPU once.
fn cpu_ranges(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    index_ranges(&sorted, ",")
}

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> TopologyReport {
    let mut report = TopologyReport::default();
    let uptime = super::uptime_s(facts);
    let node_uses_nvlink = facts
        .gpus
        .iter()
        .any(|g| g.nvlinks.iter().any(|l| l.active.get() == Some(true)));
    let gpus_by_bus = nvlink::GpusByBus::of(&facts.gpus);
    for g in &facts.gpus {
        let (pcie, mut f) = pcie_link(g, uptime);
        report.findings.append(&mut f);
        let nvlinks: Vec<NvLinkState> = g
            .nvlinks
            .iter()
            .map(|l| nvlink::link_state(l, &gpus_by_bus))
            .collect();
        report
            .findings
            .append(&mut nvlink_findings(g, node_uses_nvlink, uptime));
        report.findings.append(&mut fabric::fabric_findings(g));
        report.gpus.push(GpuTopology {
            gpu: GpuRef::of(g),
            numa_node: g.numa_node.clone(),
            cpu_affinity: g.cpu_affinity.map(|c| cpu_ranges(c)),
            pcie,
            nvlinks,
            fabric: g.fabric.map(fabric::decode_fabric),
            nvlink_summary: None,
        });
    }
    let cells = pairs(facts, &mut report);
    report.matrix = matrix(&facts.gpus, cells);
    report
        .findings
        .append(&mut fabric::fabric_manager_findings(facts));
    let (nics, mut nic_findings) = super::nic::analyze(facts);
    report.nics = nics;
    report.findings.append(&mut nic_findings);
    report.gaudi_nic = super::gaudi::nic_links(facts);
    report
        .findings
        .append(&mut super::gaudi::nic_findings(facts));
    report
}

/// The GPU pairs with their NVLinks, PCIe path and P2P status, and their P2P findings; returns the
/// matrix cells, filled both ways (the facts list each unordered pair once).
fn pairs(facts: &NodeFacts, report: &mut TopologyReport) -> Vec<Vec<String>> {
    let n = facts.gpus.len();
    let mut cells = vec![vec!["?".to_string(); n]; n];
    for (i, row) in cells.iter_mut().enumerate() {
        row[i] = "X".into();
    }
    let pos = |idx: u32| facts.gpus.iter().position(|g| g.index == idx);
    let gpu_links: Vec<GpuLinks> = facts.gpus.iter().map(GpuLinks::of).collect();
    for p in &facts.topology {
        let (Some(ia), Some(ib)) = (pos(p.a), pos(p.b)) else {
            continue;
        };
        let ga = &facts.gpus[ia];
        let LinksBetween { count: links, via } = gpu_links[ia].between(&gpu_links[ib]);
        let pcie_path = p
            .common_ancestor
            .map(|l| PciRelation::from_nvml_level(*l).as_str().to_string());
        let connection = if links > 0 {
            format!("NV{links}")
        } else {
            pcie_path.ok().cloned().unwrap_or_else(|| "?".into())
        };
        cells[ia][ib] = connection.clone();
        cells[ib][ia] = connection.clone();
        if links > 0
            && let Some(code) = p.p2p.nvlink
            && code != 0
        {
            report.findings.push(finding(
                "p2p.nvlink_unavailable",
                Severity::Warning,
                Some(ga),
                format!(
                    "GPU {} and GPU {} share {connection} but NVML reports P2P over NVLink as {}: collective traffic falls back to PCIe.",
                    p.a,
                    p.b,
                    p2p_status(code)
                ),
                vec![format!("p2p.nvlink({},{}) = {}", p.a, p.b, p2p_status(code)), format!("connection = {connection}")],
                ActionKind::RestartFabricManager,
                "check nvidia-fabricmanager and the GPUs' fabric state; if it stays, reset the GPUs when drained".into(),
            ));
        }
        report.pairs.push(PairTopology {
            a: p.a,
            b: p.b,
            connection,
            nvlinks: links,
            nvlink_via: via.map(str::to_string),
            pcie_path,
            p2p: p2p_report(&p.p2p),
        });
    }
    xgmi_cells(&facts.gpus, &mut cells);
    cells
}

/// AMD GPUs of one XGMI hive (the same non-zero `xgmi_hive_id`, `amdgpu_xgmi.c`) reach each other over
/// XGMI, as `amd-smi topology` / `rocm-smi --showtopotype` name the link; NVML's pair facts do not cover
/// them, so their cells would otherwise read `?`.
fn xgmi_cells(gpus: &[GpuFacts], cells: &mut [Vec<String>]) {
    let hive = |g: &GpuFacts| {
        g.amd
            .as_ref()
            .and_then(|a| a.xgmi.ok())
            .and_then(|x| x.hive_id)
            .filter(|h| *h != 0)
    };
    for (ia, ga) in gpus.iter().enumerate() {
        for (ib, gb) in gpus.iter().enumerate() {
            if ia != ib
                && cells[ia][ib] == "?"
                && let (Some(a), Some(b)) = (hive(ga), hive(gb))
                && a == b
            {
                cells[ia][ib] = "XGMI".into();
            }
        }
    }
}

/// The `nvidia-smi topo -m` view of the pairs' cells, with each GPU's CPU and NUMA affinity.
fn matrix(gpus: &[GpuFacts], cells: Vec<Vec<String>>) -> TopologyMatrix {
    let xgmi = cells.iter().flatten().any(|c| c == "XGMI");
    let mut m = TopologyMatrix {
        columns: gpus.iter().map(|g| format!("GPU{}", g.index)).collect(),
        rows: gpus
            .iter()
            .zip(cells)
            .map(|(g, cells)| MatrixRow {
                gpu: format!("GPU{}", g.index),
                cells,
                cpu_affinity: g
                    .cpu_affinity
                    .ok()
                    .map(|c| cpu_ranges(c))
                    .unwrap_or_else(|| "N/A".into()),
                numa_node: match g.numa_node.get() {
                    Some(n) if n >= 0 => n.to_string(),
                    _ => "N/A".into(),
                },
            })
            .collect(),
        legend: vec![
            "X = self".into(),
            "SYS = PCIe + the SMP interconnect between NUMA nodes (e.g. QPI/UPI)".into(),
            "NODE = PCIe + the interconnect between PCIe host bridges within a NUMA node".into(),
            "PHB = PCIe + a PCIe host bridge (typically the CPU)".into(),
            "PXB = multiple PCIe bridges (without traversing the PCIe host bridge)".into(),
            "PIX = at most a single PCIe bridge".into(),
            "NV# = a bonded set of # NVLinks (direct or through NVSwitch)".into(),
        ],
    };
    if xgmi {
        m.legend
            .push("XGMI = AMD GPUs of one XGMI hive (Infinity Fabric links)".into());
    }
    m
}

fn p2p_report(p: &P2pFacts) -> P2pReport {
    P2pReport {
        read: p.read.map(p2p_status),
        write: p.write.map(p2p_status),
        nvlink: p.nvlink.map(p2p_status),
        atomics: p.atomics.map(p2p_status),
    }
}

/// Facts the tests of this folder build GPUs and links from.
#[cfg(test)]
pub(crate) mod test_facts {
    use crate::facts::{GpuFacts, NvLinkFacts, Reading};

    pub fn link(n: u32, remote: &str, kind: &str, active: bool) -> NvLinkFacts {
        NvLinkFacts {
            link: n,
            active: Reading::Ok(active),
            remote_pci_bus_id: Reading::Ok(remote.into()),
            remote_device_type: Reading::Ok(kind.into()),
            replay_errors: Reading::Ok(0),
            recovery_errors: Reading::Ok(0),
            crc_flit_errors: Reading::Ok(0),
            crc_data_errors: Reading::Ok(0),
            ..Default::default()
        }
    }

    pub fn gpu(index: u32, bus: &str, links: Vec<NvLinkFacts>) -> GpuFacts {
        GpuFacts {
            index,
            pci_bus_id: Reading::Ok(bus.into()),
            nvlinks: links,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_facts::{gpu, link};
    use super::*;
    use crate::facts::{FieldError, FieldErrorKind, GpuPairFacts};

    #[test]
    fn p2p_statuses() {
        assert_eq!(p2p_status(0), "ok");
        assert_eq!(p2p_status(3), "ioh_topology_not_supported");
        assert_eq!(p2p_status(42), "status_42");
    }

    #[test]
    fn cpu_sets_are_sorted_once_each() {
        assert_eq!(cpu_ranges(&[]), "");
        assert_eq!(cpu_ranges(&[3]), "3");
        assert_eq!(cpu_ranges(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(cpu_ranges(&[5, 4, 4, 6]), "4-6");
    }

    #[test]
    fn amd_gpus_of_one_hive_are_xgmi() {
        use crate::facts::{AmdGpuFacts, AmdXgmiFacts, GpuVendor};
        let amd = |index: u32, hive: Option<u64>| GpuFacts {
            index,
            vendor: GpuVendor::Amd,
            amd: Some(AmdGpuFacts {
                xgmi: match hive {
                    Some(h) => Reading::Ok(AmdXgmiFacts {
                        hive_id: Some(h),
                        ..AmdXgmiFacts::default()
                    }),
                    None => Reading::not_supported(),
                },
                ..AmdGpuFacts::default()
            }),
            ..GpuFacts::default()
        };
        let facts = NodeFacts {
            gpus: vec![
                amd(0, Some(7)),
                amd(1, Some(7)),
                amd(2, None),
                amd(3, Some(0)),
            ],
            ..NodeFacts::default()
        };
        let r = analyze(&facts, &AnalysisOptions::default());
        assert_eq!(r.matrix.rows[0].cells, ["X", "XGMI", "?", "?"]);
        assert_eq!(r.matrix.rows[1].cells, ["XGMI", "X", "?", "?"]);
        assert_eq!(
            r.matrix.rows[3].cells,
            ["?", "?", "?", "X"],
            "hive 0 is none"
        );
        assert!(r.matrix.legend.iter().any(|l| l.starts_with("XGMI")));
        let lone = NodeFacts {
            gpus: vec![amd(0, None)],
            ..NodeFacts::default()
        };
        let r = analyze(&lone, &AnalysisOptions::default());
        assert!(!r.matrix.legend.iter().any(|l| l.starts_with("XGMI")));
    }

    #[test]
    fn matrix_is_symmetric_and_lost_pairs_are_unknown() {
        let sw = |i: u32| link(i, "0000:05:00.0", "switch", true);
        let facts = NodeFacts {
            gpus: vec![
                gpu(0, "0000:18:00.0", vec![sw(0), sw(1)]),
                gpu(1, "0000:2a:00.0", vec![sw(0), sw(1)]),
                gpu(2, "0000:3a:00.0", vec![]),
            ],
            topology: vec![
                GpuPairFacts {
                    a: 0,
                    b: 1,
                    common_ancestor: Reading::Ok(40),
                    p2p: P2pFacts {
                        nvlink: Some(0),
                        ..Default::default()
                    },
                },
                GpuPairFacts {
                    a: 0,
                    b: 2,
                    common_ancestor: Reading::Ok(50),
                    ..Default::default()
                },
                GpuPairFacts {
                    a: 1,
                    b: 2,
                    common_ancestor: Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let r = analyze(&facts, &AnalysisOptions::default());
        assert_eq!(r.matrix.rows[0].cells, ["X", "NV2", "SYS"]);
        assert_eq!(r.matrix.rows[1].cells, ["NV2", "X", "?"]);
        assert_eq!(r.matrix.rows[2].cells, ["SYS", "?", "X"]);
        assert_eq!(r.pairs[0].pcie_path, Reading::Ok("NODE".into()));
        assert_eq!(r.pairs[0].nvlink_via.as_deref(), Some("nvswitch"));
        assert!(r.findings.is_empty());
    }
}
