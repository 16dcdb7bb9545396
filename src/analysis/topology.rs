//! `topology`: how the GPUs connect. The GPU x GPU matrix as `nvidia-smi topo -m` prints it (NV#, PIX, PXB,
//! PHB, NODE, SYS), P2P status per pair, every NVLink with its state, the device at its far end by PCI id
//! and its error counters judged by DCGM's thresholds, the PCIe link against what it should be, CPU/NUMA
//! affinity, and the NVSwitch fabric registration where the GPU has one.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::facts::{AerFacts, FabricFacts, GpuFacts, NodeFacts, P2pFacts, Reading};
use crate::finding::{ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;

use super::{GpuRef, canonical_bus_id, cpu_list, finding, gpu_label, show};

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

/// A GPU's NVLinks in numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NvLinkSummary {
    pub links: u32,
    pub active: u32,
    /// NVLink versions seen on its active links.
    pub versions: Vec<u32>,
    /// Replay, recovery and CRC errors over all its links whose counters could be read.
    pub errors: u64,
    /// Links whose error counters could not be read (their errors are unknown, not zero).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub counters_unreadable: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PcieLink {
    pub current_gen: Reading<u32>,
    pub max_gen: Reading<u32>,
    pub gpu_max_gen: Reading<u32>,
    pub current_width: Reading<u32>,
    pub max_width: Reading<u32>,
    /// Link-level replays since the driver loaded.
    pub replay_counter: Reading<u64>,
    /// `replay_counter` averaged over the uptime, per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_rate_per_min: Option<f64>,
    /// DCGM's budget for this generation and width (10^-12 BER), per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_budget_per_min: Option<u32>,
    pub aer: Reading<AerFacts>,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NvLinkState {
    pub link: u32,
    /// `active` or `inactive`.
    pub state: Reading<String>,
    pub version: Reading<u32>,
    /// Canonical PCI id of the far end, as NVML reports it.
    pub remote_pci_bus_id: Reading<String>,
    pub remote_device_type: Reading<String>,
    /// Index of the GPU at the far end, when the far end's PCI id is one of this node's GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_gpu: Option<u32>,
    pub replay_errors: Reading<u64>,
    pub recovery_errors: Reading<u64>,
    pub crc_flit_errors: Reading<u64>,
    pub crc_data_errors: Reading<u64>,
    /// `ok`, `down`, `errors` or `unknown`.
    pub judgement: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fabric {
    /// `not_supported`, `not_started`, `in_progress`, `completed`.
    pub state: String,
    /// Registration result once completed: `success`, or the NVML error number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clique_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_uuid: Option<String>,
    /// Decoded health mask fields, e.g. `degraded_bandwidth=false`.
    pub health: Vec<String>,
}

/// `nvmlGpuTopologyLevel_t` as `nvidia-smi topo -m` names it.
pub fn pcie_level(level: u32) -> &'static str {
    match level {
        0 | 10 => "PIX",
        20 => "PXB",
        30 => "PHB",
        40 => "NODE",
        50 => "SYS",
        _ => "?",
    }
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

fn fabric_state(state: u32) -> String {
    match state {
        0 => "not_supported".into(),
        1 => "not_started".into(),
        2 => "in_progress".into(),
        3 => "completed".into(),
        n => format!("state_{n}"),
    }
}

/// The 2-bit tri-state fields of the fabric health mask (NVML_GPU_FABRIC_HEALTH_MASK_*): 0 not
/// supported, 1 true, 2 false. Returns (name, Some(true|false)) for the supported ones.
fn fabric_flags(mask: u32) -> Vec<(&'static str, Option<bool>)> {
    [
        ("degraded_bandwidth", 0),
        ("route_recovery_in_progress", 2),
        ("route_unhealthy", 4),
        ("access_timeout_recovery", 6),
    ]
    .into_iter()
    .map(|(name, shift)| {
        (
            name,
            match (mask >> shift) & 0x3 {
                1 => Some(true),
                2 => Some(false),
                _ => None,
            },
        )
    })
    .collect()
}

/// Incorrect-configuration field (4 bits at 8): 0 not supported, 1 none, 2.. a named misconfiguration.
fn fabric_config(mask: u32) -> Option<&'static str> {
    match (mask >> 8) & 0xf {
        0 => None,
        1 => Some("none"),
        2 => Some("incorrect_sysguid"),
        3 => Some("incorrect_chassis_serial"),
        4 => Some("no_partition"),
        5 => Some("insufficient_nvlinks"),
        _ => Some("unknown"),
    }
}

fn decode_fabric(f: &FabricFacts) -> Fabric {
    let mut health = Vec::new();
    if let Some(mask) = f.health_mask {
        for (name, v) in fabric_flags(mask) {
            if let Some(v) = v {
                health.push(format!("{name}={v}"));
            }
        }
        if let Some(c) = fabric_config(mask) {
            health.push(format!("incorrect_configuration={c}"));
        }
    }
    Fabric {
        state: fabric_state(f.state),
        status: (f.state == 3).then(|| match f.status {
            Some(0) => "success".to_string(),
            Some(n) => format!("nvml_error_{n}"),
            None => "unknown".to_string(),
        }),
        clique_id: f.clique_id,
        cluster_uuid: f.cluster_uuid.clone(),
        health,
    }
}

/// DCGM's PCIe replay budget per minute: ceil(10^-12 BER x line rate x 60 per lane x lanes).
pub fn replay_budget_per_min(generation: u32, width: u32) -> Option<u32> {
    let per_lane = match generation {
        1 => 0.15,
        2 => 0.3,
        3 => 0.48,
        4 => 0.96,
        5 => 1.92,
        6 => 3.84,
        _ => return None,
    };
    Some((per_lane * f64::from(width)).ceil() as u32)
}

/// Utilization at or above which a lowered PCIe generation is a fault rather than power saving.
const LOADED_PCT: u32 = 50;
/// DCGM fails an NVLink whose CRC errors reach this rate.
const NVLINK_CRC_FAIL_PER_S: f64 = 100.0;

fn canonical(r: &Reading<String>) -> Option<String> {
    canonical_bus_id(r).ok().cloned()
}

/// Active NVLinks of `g`, with the canonical far end of each.
fn active_links(g: &GpuFacts) -> Vec<(Option<String>, Option<String>)> {
    g.nvlinks
        .iter()
        .filter(|l| l.active.get() == Some(true))
        .map(|l| {
            (
                canonical(&l.remote_pci_bus_id),
                l.remote_device_type.ok().cloned(),
            )
        })
        .collect()
}

/// NVLinks between two GPUs: direct links first; otherwise links through NVSwitches both reach.
pub fn nvlinks_between(a: &GpuFacts, b: &GpuFacts) -> (u32, Option<&'static str>) {
    let la = active_links(a);
    let lb = active_links(b);
    let (Some(bus_a), Some(bus_b)) = (canonical(&a.pci_bus_id), canonical(&b.pci_bus_id)) else {
        return (0, None);
    };
    let direct = la
        .iter()
        .filter(|(r, _)| r.as_deref() == Some(&bus_b))
        .count()
        + lb.iter()
            .filter(|(r, _)| r.as_deref() == Some(&bus_a))
            .count();
    if direct > 0 {
        // Each physical link is seen from both ends; NVML lists it once per GPU.
        return ((direct / 2).max(1) as u32, Some("direct"));
    }
    let switches = |links: &[(Option<String>, Option<String>)]| -> BTreeSet<String> {
        links
            .iter()
            .filter(|(_, t)| t.as_deref() == Some("switch"))
            .filter_map(|(r, _)| r.clone())
            .collect()
    };
    let (sa, sb) = (switches(&la), switches(&lb));
    let shared: BTreeSet<&String> = sa.intersection(&sb).collect();
    if shared.is_empty() {
        return (0, None);
    }
    let count = |links: &[(Option<String>, Option<String>)]| {
        links
            .iter()
            .filter(|(r, _)| r.as_ref().is_some_and(|r| shared.contains(r)))
            .count() as u32
    };
    (count(&la).min(count(&lb)), Some("nvswitch"))
}

/// The report as a model reads it first: every finding, the matrix, PCIe and fabric per GPU, NICs; of the
/// NVLinks only those that are not active and error-free (the rest counted per GPU in `nvlink_summary`), of
/// the GPU pairs only those whose peer-to-peer is not fully supported. `omitted` says what was left out.
pub fn summarize(r: &mut TopologyReport) {
    let mut links_left = 0usize;
    for g in &mut r.gpus {
        let errors = |l: &NvLinkState| {
            [
                l.replay_errors.get(),
                l.recovery_errors.get(),
                l.crc_flit_errors.get(),
                l.crc_data_errors.get(),
            ]
            .into_iter()
            .flatten()
            .sum::<u64>()
        };
        let active = |l: &NvLinkState| l.state.ok().is_some_and(|s| s == "active");
        let mut versions: Vec<u32> = g
            .nvlinks
            .iter()
            .filter(|l| active(l))
            .filter_map(|l| l.version.get())
            .collect();
        versions.sort_unstable();
        versions.dedup();
        if !g.nvlinks.is_empty() {
            g.nvlink_summary = Some(NvLinkSummary {
                links: g.nvlinks.len() as u32,
                active: g.nvlinks.iter().filter(|l| active(l)).count() as u32,
                versions,
                errors: g.nvlinks.iter().map(errors).sum(),
                counters_unreadable: g
                    .nvlinks
                    .iter()
                    .filter(|l| {
                        [
                            &l.replay_errors,
                            &l.recovery_errors,
                            &l.crc_flit_errors,
                            &l.crc_data_errors,
                        ]
                        .iter()
                        .any(|c| c.get().is_none())
                    })
                    .count() as u32,
            });
        }
        let before = g.nvlinks.len();
        g.nvlinks
            .retain(|l| !active(l) || errors(l) > 0 || l.judgement != "ok");
        links_left += before - g.nvlinks.len();
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

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> TopologyReport {
    let mut report = TopologyReport::default();
    let uptime = super::uptime_s(facts);
    let node_uses_nvlink = facts
        .gpus
        .iter()
        .any(|g| g.nvlinks.iter().any(|l| l.active.get() == Some(true)));
    let bus_to_gpu: Vec<(String, u32)> = facts
        .gpus
        .iter()
        .filter_map(|g| canonical(&g.pci_bus_id).map(|b| (b, g.index)))
        .collect();

    for g in &facts.gpus {
        let (pcie, mut f) = pcie_link(g, uptime);
        report.findings.append(&mut f);
        let nvlinks: Vec<NvLinkState> = g
            .nvlinks
            .iter()
            .map(|l| {
                let remote = canonical_bus_id(&l.remote_pci_bus_id);
                let remote_gpu = remote
                    .ok()
                    .and_then(|r| bus_to_gpu.iter().find(|(b, _)| b == r).map(|(_, i)| *i));
                let errors = [
                    &l.replay_errors,
                    &l.recovery_errors,
                    &l.crc_flit_errors,
                    &l.crc_data_errors,
                ]
                .iter()
                .any(|c| c.get().is_some_and(|v| v > 0));
                let judgement = match l.active.get() {
                    None => "unknown",
                    Some(false) => "down",
                    Some(true) if errors => "errors",
                    Some(true) => "ok",
                };
                NvLinkState {
                    link: l.link,
                    state: l
                        .active
                        .map(|a| if *a { "active" } else { "inactive" }.to_string()),
                    version: l.version.clone(),
                    remote_pci_bus_id: remote,
                    remote_device_type: l.remote_device_type.clone(),
                    remote_gpu,
                    replay_errors: l.replay_errors.clone(),
                    recovery_errors: l.recovery_errors.clone(),
                    crc_flit_errors: l.crc_flit_errors.clone(),
                    crc_data_errors: l.crc_data_errors.clone(),
                    judgement: judgement.to_string(),
                }
            })
            .collect();
        report
            .findings
            .append(&mut nvlink_findings(g, node_uses_nvlink, uptime));
        report.findings.append(&mut fabric_findings(g));
        report.gpus.push(GpuTopology {
            gpu: GpuRef::of(g),
            numa_node: g.numa_node.clone(),
            cpu_affinity: g.cpu_affinity.map(|c| cpu_list(c)),
            pcie,
            nvlinks,
            fabric: g.fabric.map(decode_fabric),
            nvlink_summary: None,
        });
    }

    // Pairs: the facts list each unordered pair once; fill the matrix both ways.
    let n = facts.gpus.len();
    let mut cells = vec![vec!["?".to_string(); n]; n];
    for (i, row) in cells.iter_mut().enumerate() {
        row[i] = "X".into();
    }
    let pos = |idx: u32| facts.gpus.iter().position(|g| g.index == idx);
    for p in &facts.topology {
        let (Some(ia), Some(ib)) = (pos(p.a), pos(p.b)) else {
            continue;
        };
        let (ga, gb) = (&facts.gpus[ia], &facts.gpus[ib]);
        let (links, via) = nvlinks_between(ga, gb);
        let pcie_path = p.common_ancestor.map(|l| pcie_level(*l).to_string());
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
    report.matrix = TopologyMatrix {
        columns: facts
            .gpus
            .iter()
            .map(|g| format!("GPU{}", g.index))
            .collect(),
        rows: facts
            .gpus
            .iter()
            .zip(cells)
            .map(|(g, cells)| MatrixRow {
                gpu: format!("GPU{}", g.index),
                cells,
                cpu_affinity: g
                    .cpu_affinity
                    .ok()
                    .map(|c| cpu_list(c))
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
    report.findings.append(&mut fabric_manager_findings(facts));
    let (nics, mut nic_findings) = super::nic::analyze(facts);
    report.nics = nics;
    report.findings.append(&mut nic_findings);
    report
}

fn p2p_report(p: &P2pFacts) -> P2pReport {
    P2pReport {
        read: p.read.map(p2p_status),
        write: p.write.map(p2p_status),
        nvlink: p.nvlink.map(p2p_status),
        atomics: p.atomics.map(p2p_status),
    }
}

/// The PCIe link against its capability and DCGM's replay budget.
pub fn pcie_link(g: &GpuFacts, uptime_s: Option<f64>) -> (PcieLink, Vec<Finding>) {
    let p = &g.pcie;
    let who = gpu_label(g);
    let mut out = Vec::new();
    let (cg, mg, cw, mw) = (
        p.current_link_gen.get(),
        p.max_link_gen.get(),
        p.current_link_width.get(),
        p.max_link_width.get(),
    );
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    let budget = match (cg, cw) {
        (Some(generation), Some(w)) => replay_budget_per_min(generation, w),
        _ => None,
    };
    let rate = match (p.replay_counter.get(), uptime_s) {
        (Some(r), Some(up)) if up > 0.0 => Some((r as f64 / (up / 60.0) * 10.0).round() / 10.0),
        _ => None,
    };
    let aer_ev = format!(
        "aer = {}",
        match p.aer.ok() {
            Some(a) => format!(
                "correctable {}, nonfatal {}, fatal {}",
                a.correctable, a.nonfatal, a.fatal
            ),
            None => show(&p.aer.map(|_| "")),
        }
    );
    let link_ev = format!(
        "link = Gen{} x{} (max Gen{} x{})",
        show(&p.current_link_gen),
        show(&p.current_link_width),
        show(&p.max_link_gen),
        show(&p.max_link_width)
    );
    let replay_ev = format!(
        "replay_counter = {}{}",
        show(&p.replay_counter),
        match (rate, budget) {
            (Some(r), Some(b)) => format!(" ({r}/min averaged since boot; DCGM budget {b}/min)"),
            _ => String::new(),
        }
    );
    let mut verdict = match (cg, mg, cw, mw) {
        (Some(cg), Some(mg), Some(cw), Some(mw)) => {
            if cw < mw {
                format!("Gen{cg} x{cw} of Gen{mg} x{mw}: width degraded (lanes lost; never normal)")
            } else if cg < mg && util.is_some_and(|u| u >= LOADED_PCT) {
                format!("Gen{cg} x{cw} of Gen{mg} x{mw}: generation lowered under load")
            } else if cg < mg {
                format!(
                    "Gen{cg} x{cw} of Gen{mg} x{mw}: generation lowered while idle (normal power saving)"
                )
            } else {
                format!("Gen{cg} x{cw}: full speed")
            }
        }
        _ => "link state unreadable".to_string(),
    };
    if let (Some(cw), Some(mw)) = (cw, mw)
        && cw < mw
    {
        out.push(finding(
            "pcie.width_degraded",
            Severity::Warning,
            Some(g),
            format!(
                "{who} PCIe link trained at x{cw} of x{mw}: host transfers run at {}% of their bandwidth.",
                cw * 100 / mw
            ),
            vec![link_ev.clone(), replay_ev.clone(), aer_ev.clone()],
            ActionKind::CheckMechanicals,
            "drain the node, then reseat the GPU (and its riser/cable) and check the slot; a width drop is never power saving".into(),
        ));
    }
    if let (Some(cg), Some(mg)) = (cg, mg)
        && cg < mg
        && util.is_some_and(|u| u >= LOADED_PCT)
    {
        out.push(finding(
            "pcie.gen_degraded",
            Severity::Warning,
            Some(g),
            format!("{who} PCIe link runs at Gen{cg} of Gen{mg} while the GPU is busy."),
            vec![
                link_ev.clone(),
                format!("gpu_utilization_pct = {}", util.unwrap_or(0)),
            ],
            ActionKind::CheckMechanicals,
            "check the slot and the platform's PCIe settings; reseat if it persists".into(),
        ));
    }
    if let (Some(r), Some(b)) = (rate, budget)
        && r >= f64::from(b)
    {
        verdict.push_str("; replay rate above DCGM's budget");
        out.push(finding(
            "pcie.replay_rate",
            Severity::Warning,
            Some(g),
            format!(
                "{who} PCIe link replays {r}/min on average since boot, above DCGM's {b}/min budget for this link: the link is marginal."
            ),
            vec![replay_ev.clone(), link_ev.clone(), aer_ev.clone()],
            ActionKind::CheckMechanicals,
            "reseat the GPU and its riser/cable; if replays continue, have the slot or GPU serviced".into(),
        ));
    }
    if let Some(a) = p.aer.ok() {
        if a.fatal > 0 {
            out.push(finding(
                "pcie.aer_fatal",
                Severity::Critical,
                Some(g),
                format!("{who} logged {} fatal PCIe AER error(s).", a.fatal),
                vec![aer_ev.clone(), link_ev.clone()],
                ActionKind::RebootNode,
                "drain and reboot the node; if fatal errors recur, reseat or replace the GPU"
                    .into(),
            ));
        } else if a.nonfatal > 0 {
            out.push(finding(
                "pcie.aer_nonfatal",
                Severity::Warning,
                Some(g),
                format!(
                    "{who} logged {} uncorrectable non-fatal PCIe AER error(s).",
                    a.nonfatal
                ),
                vec![aer_ev.clone(), link_ev.clone()],
                ActionKind::CheckMechanicals,
                "watch for Xid 79/fallen-off-bus; reseat the GPU at the next maintenance window"
                    .into(),
            ));
        }
    }
    if let (Some(mg), Some(gm)) = (mg, p.gpu_max_link_gen.get())
        && mg < gm
    {
        out.push(finding(
            "pcie.platform_limited",
            Severity::Info,
            Some(g),
            format!("{who} supports PCIe Gen{gm} but this slot/platform allows Gen{mg}."),
            vec![
                format!("max_link_gen = {mg}"),
                format!("gpu_max_link_gen = {gm}"),
            ],
            ActionKind::None,
            "expected on older platforms; check BIOS PCIe settings if not".into(),
        ));
    }
    let link = PcieLink {
        current_gen: p.current_link_gen.clone(),
        max_gen: p.max_link_gen.clone(),
        gpu_max_gen: p.gpu_max_link_gen.clone(),
        current_width: p.current_link_width.clone(),
        max_width: p.max_link_width.clone(),
        replay_counter: p.replay_counter.clone(),
        replay_rate_per_min: rate,
        replay_budget_per_min: budget,
        aer: p.aer.clone(),
        verdict,
    };
    (link, out)
}

/// NVLink state and counters, judged as DCGM's NVLink health watch does.
pub fn nvlink_findings(
    g: &GpuFacts,
    node_uses_nvlink: bool,
    uptime_s: Option<f64>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    let down: Vec<&crate::facts::NvLinkFacts> = g
        .nvlinks
        .iter()
        .filter(|l| l.active.get() == Some(false))
        .collect();
    // A GPU whose links are all inactive on a node without NVLink (PCIe boards without bridges) is normal.
    if !down.is_empty() && node_uses_nvlink {
        let active = g
            .nvlinks
            .iter()
            .filter(|l| l.active.get() == Some(true))
            .count();
        let mut ev: Vec<String> = down
            .iter()
            .map(|l| {
                format!(
                    "nvlink[{}] = inactive (remote {} {})",
                    l.link,
                    show(&l.remote_device_type),
                    canonical(&l.remote_pci_bus_id).unwrap_or_else(|| show(&l.remote_pci_bus_id))
                )
            })
            .collect();
        ev.push(format!("active_links = {active} of {}", g.nvlinks.len()));
        let links: Vec<String> = down.iter().map(|l| l.link.to_string()).collect();
        out.push(finding(
            "nvlink.link_down",
            Severity::Critical,
            Some(g),
            format!(
                "{who} NVLink {} {} down ({active} of {} active): NVLink bandwidth to its peers is reduced and NCCL jobs may hang or slow down.",
                links.join(", "),
                if down.len() == 1 { "is" } else { "are" },
                g.nvlinks.len()
            ),
            ev,
            ActionKind::ResetGpu,
            format!(
                "drain the GPU, then reset it (nvidia-smi -r -i {}) to retrain the link; if the link stays down, check/reseat the NVLink connection and run field diagnostics",
                g.index
            ),
        ));
    }
    let mut ev = Vec::new();
    let mut crc_fail = false;
    for l in &g.nvlinks {
        let v = |r: &Reading<u64>| r.get().unwrap_or(0);
        let (rp, rc, cf, cd) = (
            v(&l.replay_errors),
            v(&l.recovery_errors),
            v(&l.crc_flit_errors),
            v(&l.crc_data_errors),
        );
        if rp + rc + cf + cd == 0 {
            continue;
        }
        let crc_rate = uptime_s.map(|u| (cf + cd) as f64 / u);
        if crc_rate.is_some_and(|r| r >= NVLINK_CRC_FAIL_PER_S) {
            crc_fail = true;
        }
        ev.push(format!(
            "nvlink[{}]: replay = {rp}, recovery = {rc}, crc_flit = {cf}, crc_data = {cd}{}",
            l.link,
            crc_rate.map_or(String::new(), |r| format!(
                " (CRC {:.2}/s averaged since boot)",
                r
            ))
        ));
    }
    if !ev.is_empty() {
        ev.push("DCGM fails a link on any replay/recovery increase and on CRC >= 100/s; counters here are totals since the driver loaded".into());
        out.push(finding(
            "nvlink.errors",
            if crc_fail { Severity::Critical } else { Severity::Warning },
            Some(g),
            format!("{who} NVLink error counters are non-zero: the link(s) retransmit or retrain, costing bandwidth and risking Xid 74."),
            ev,
            ActionKind::ResetGpuWhenDrained,
            "run topology again to see whether the counters still rise; if they do, reset the GPU when drained and check the NVLink connection".into(),
        ));
    }
    out
}

fn fabric_findings(g: &GpuFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(f) = g.fabric.ok() else {
        return out;
    };
    let who = gpu_label(g);
    let state_ev = format!(
        "fabric.state = {}, status = {}",
        fabric_state(f.state),
        f.status.map_or("none".into(), |s| s.to_string())
    );
    match f.state {
        0 => {}
        3 if f.status.is_some_and(|s| s != 0) => out.push(finding(
            "fabric.registration_failed",
            Severity::Critical,
            Some(g),
            format!("{who} failed to register with the NVLink fabric: it has no NVLink P2P to its peers."),
            vec![state_ev],
            ActionKind::RestartFabricManager,
            "check nvidia-fabricmanager's log and that its version matches the driver; restart it, then reset the GPU".into(),
        )),
        3 => {}
        _ => out.push(finding(
            "fabric.not_registered",
            Severity::Critical,
            Some(g),
            format!(
                "{who} has not finished NVLink fabric registration (state {}): CUDA reports the system not ready and NVLink P2P is unavailable.",
                fabric_state(f.state)
            ),
            vec![state_ev],
            ActionKind::RestartFabricManager,
            "start or restart nvidia-fabricmanager (its version must match the driver) and wait for registration".into(),
        )),
    }
    if let Some(mask) = f.health_mask {
        for (name, v) in fabric_flags(mask) {
            if v != Some(true) {
                continue;
            }
            let severity = if name == "route_unhealthy" {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(finding(
                &format!("fabric.{name}"),
                severity,
                Some(g),
                format!("{who} fabric health reports {} (health mask {mask:#x}).", name.replace('_', " ")),
                vec![format!("fabric.health_mask = {mask:#x}"), format!("{name} = true")],
                ActionKind::ResetGpuWhenDrained,
                "check its NVLinks (topology) and nvidia-fabricmanager; reset the GPU when drained if it persists".into(),
            ));
        }
        if let Some(c) = fabric_config(mask)
            && c != "none"
        {
            out.push(finding(
                "fabric.incorrect_configuration",
                Severity::Critical,
                Some(g),
                format!("{who} fabric reports an incorrect configuration: {c}."),
                vec![format!("fabric.health_mask = {mask:#x}")],
                ActionKind::ContactSupport,
                "check the NVLink partition/system configuration with the platform vendor".into(),
            ));
        }
    }
    out
}

/// NVSwitch systems need nvidia-fabricmanager running (A100 and H100 HGX).
fn fabric_manager_findings(facts: &NodeFacts) -> Vec<Finding> {
    let switched = facts.gpus.iter().any(|g| {
        g.nvlinks
            .iter()
            .any(|l| l.remote_device_type.ok().map(String::as_str) == Some("switch"))
    });
    let fm = facts
        .services
        .iter()
        .find(|s| s.name == "nvidia-fabricmanager");
    match (switched, fm.and_then(|s| s.running.get())) {
        (true, Some(false)) => vec![finding(
            "fabric.manager_not_running",
            Severity::Critical,
            None,
            "nvidia-fabricmanager is not running on an NVSwitch system: GPUs cannot (re)join the NVLink fabric, and on A100 GPUs cannot be reset individually.".into(),
            vec!["service nvidia-fabricmanager running = false".into(), "nvlink remote_device_type = switch".into()],
            ActionKind::RestartFabricManager,
            "systemctl start nvidia-fabricmanager (the version must match the driver), then check each GPU's fabric state".into(),
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{
        FieldError, FieldErrorKind, GpuPairFacts, NvLinkFacts, PcieFacts, UtilizationFacts,
    };

    fn link(n: u32, remote: &str, kind: &str, active: bool) -> NvLinkFacts {
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

    fn gpu(index: u32, bus: &str, links: Vec<NvLinkFacts>) -> GpuFacts {
        GpuFacts {
            index,
            pci_bus_id: Reading::Ok(bus.into()),
            nvlinks: links,
            ..Default::default()
        }
    }

    #[test]
    fn levels_and_statuses() {
        assert_eq!(pcie_level(10), "PIX");
        assert_eq!(pcie_level(20), "PXB");
        assert_eq!(pcie_level(30), "PHB");
        assert_eq!(pcie_level(40), "NODE");
        assert_eq!(pcie_level(50), "SYS");
        assert_eq!(pcie_level(77), "?");
        assert_eq!(p2p_status(0), "ok");
        assert_eq!(p2p_status(3), "ioh_topology_not_supported");
        assert_eq!(p2p_status(42), "status_42");
        assert_eq!(replay_budget_per_min(4, 16), Some(16));
        assert_eq!(replay_budget_per_min(5, 16), Some(31));
        assert_eq!(replay_budget_per_min(4, 8), Some(8));
        assert_eq!(replay_budget_per_min(9, 16), None);
    }

    #[test]
    fn direct_and_switched_links_count_once_per_link() {
        let a = gpu(
            0,
            "0000:07:00.0",
            vec![
                link(0, "0000:0f:00.0", "gpu", true),
                link(1, "0000:0f:00.0", "gpu", true),
            ],
        );
        let b = gpu(
            1,
            "0000:0f:00.0",
            vec![
                link(0, "0000:07:00.0", "gpu", true),
                link(1, "0000:07:00.0", "gpu", true),
            ],
        );
        assert_eq!(nvlinks_between(&a, &b), (2, Some("direct")));
        let sw = |i: u32, up: bool| link(i, "00000000:05:00.0", "switch", up);
        let c = gpu(
            2,
            "0000:18:00.0",
            vec![sw(0, true), sw(1, true), sw(2, true)],
        );
        let d = gpu(
            3,
            "0000:2a:00.0",
            vec![sw(0, true), sw(1, false), sw(2, true)],
        );
        assert_eq!(nvlinks_between(&c, &d), (2, Some("nvswitch")));
        let e = gpu(4, "0000:3a:00.0", vec![]);
        assert_eq!(nvlinks_between(&c, &e), (0, None));
    }

    #[test]
    fn link_down_is_critical_only_where_the_node_uses_nvlink() {
        let sw = |i: u32, up: bool| link(i, "0000:05:00.0", "switch", up);
        let g = gpu(3, "0000:5d:00.0", vec![sw(0, true), sw(1, false)]);
        let f = nvlink_findings(&g, true, Some(1000.0));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "nvlink.link_down");
        assert_eq!(f[0].severity, Severity::Critical);
        assert!(f[0].evidence[0].contains("nvlink[1] = inactive"));
        // A PCIe board with no bridge: every link inactive and nothing on the node uses NVLink.
        let pcie = gpu(0, "0000:17:00.0", vec![sw(0, false)]);
        assert!(nvlink_findings(&pcie, false, None).is_empty());
        // Lost GPU: link state unreadable, nothing judged here.
        let mut lost = sw(0, true);
        lost.active = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        assert!(nvlink_findings(&gpu(4, "0000:9a:00.0", vec![lost]), true, None).is_empty());
    }

    #[test]
    fn nvlink_counters_warn_and_crc_rate_fails() {
        let mut l = link(5, "0000:06:00.0", "switch", true);
        l.replay_errors = Reading::Ok(3);
        let f = nvlink_findings(&gpu(0, "0000:18:00.0", vec![l.clone()]), true, Some(3600.0));
        assert_eq!(f[0].code, "nvlink.errors");
        assert_eq!(f[0].severity, Severity::Warning);
        l.crc_flit_errors = Reading::Ok(1_000_000);
        let f = nvlink_findings(&gpu(0, "0000:18:00.0", vec![l]), true, Some(3600.0));
        assert_eq!(f[0].severity, Severity::Critical);
    }

    fn pcie(cg: u32, cw: u32, replay: u64) -> GpuFacts {
        GpuFacts {
            index: 2,
            pci_bus_id: Reading::Ok("0000:c1:00.0".into()),
            utilization: Reading::Ok(UtilizationFacts {
                gpu_pct: 90,
                memory_pct: 10,
            }),
            pcie: PcieFacts {
                max_link_gen: Reading::Ok(4),
                gpu_max_link_gen: Reading::Ok(4),
                max_link_width: Reading::Ok(16),
                current_link_gen: Reading::Ok(cg),
                current_link_width: Reading::Ok(cw),
                replay_counter: Reading::Ok(replay),
                aer: Reading::not_supported(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn pcie_width_gen_and_replay_rules() {
        let (l, f) = pcie_link(&pcie(4, 8, 52_140), Some(3.0 * 3600.0));
        let codes: Vec<_> = f.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["pcie.width_degraded", "pcie.replay_rate"]);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e == "link = Gen4 x8 (max Gen4 x16)")
        );
        assert_eq!(l.replay_budget_per_min, Some(8));
        assert!(l.verdict.contains("width degraded"));
        let (_, f) = pcie_link(&pcie(4, 16, 10), Some(3600.0));
        assert!(f.is_empty());
        let (_, f) = pcie_link(&pcie(1, 16, 0), None);
        assert_eq!(f[0].code, "pcie.gen_degraded", "Gen1 under load");
        let mut idle = pcie(1, 16, 0);
        idle.utilization = Reading::Ok(UtilizationFacts {
            gpu_pct: 0,
            memory_pct: 0,
        });
        let (l, f) = pcie_link(&idle, None);
        assert!(f.is_empty(), "Gen drop at idle is power saving");
        assert!(l.verdict.contains("normal power saving"));
    }

    #[test]
    fn fabric_states_and_health() {
        let mut g = gpu(0, "0000:18:00.0", vec![]);
        let healthy = 2 | (2 << 2) | (2 << 4) | (2 << 6) | (1 << 8);
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(0),
            health_mask: Some(healthy),
            ..Default::default()
        });
        assert!(fabric_findings(&g).is_empty());
        let d = decode_fabric(g.fabric.ok().unwrap());
        assert_eq!(d.status.as_deref(), Some("success"));
        assert!(d.health.contains(&"degraded_bandwidth=false".to_string()));
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(0),
            health_mask: Some(healthy & !0x3 | 1),
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.degraded_bandwidth");
        g.fabric = Reading::Ok(FabricFacts {
            state: 2,
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.not_registered");
        g.fabric = Reading::Ok(FabricFacts {
            state: 3,
            status: Some(999),
            ..Default::default()
        });
        assert_eq!(fabric_findings(&g)[0].code, "fabric.registration_failed");
        g.fabric = Reading::not_supported();
        assert!(fabric_findings(&g).is_empty());
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
