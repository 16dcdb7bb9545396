//! NVLinks: each link's state, far end and error counters judged as DCGM's NVLink health watch does, the
//! links between two GPUs (direct or through NVSwitches both reach), and a GPU's links in numbers.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::analysis::{canonical_bus_id, finding, gpu_label, show};
use crate::facts::{GpuFacts, NvLinkFacts, Reading};
use crate::finding::{ActionKind, Finding, Severity};

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

/// DCGM fails an NVLink whose CRC errors reach this rate.
const NVLINK_CRC_FAIL_PER_S: f64 = 100.0;

fn canonical(r: &Reading<String>) -> Option<String> {
    canonical_bus_id(r).ok().cloned()
}

/// The node's GPUs by canonical PCI id, to name the GPU at a link's far end.
pub(super) struct GpusByBus(Vec<(String, u32)>);

impl GpusByBus {
    pub(super) fn of(gpus: &[GpuFacts]) -> Self {
        GpusByBus(
            gpus.iter()
                .filter_map(|g| canonical(&g.pci_bus_id).map(|b| (b, g.index)))
                .collect(),
        )
    }

    fn index_at(&self, bus: &str) -> Option<u32> {
        self.0.iter().find(|(b, _)| b == bus).map(|(_, i)| *i)
    }
}

/// One link as the report lists it: its state, far end and counters, and the judgement on them.
pub(super) fn link_state(l: &NvLinkFacts, gpus: &GpusByBus) -> NvLinkState {
    let remote = canonical_bus_id(&l.remote_pci_bus_id);
    let remote_gpu = remote.ok().and_then(|r| gpus.index_at(r));
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
}

/// An active NVLink's far end: its canonical PCI id and device type (`gpu`, `switch`).
struct ActiveLink {
    remote: Option<String>,
    device_type: Option<String>,
}

/// Active NVLinks of `g`, with the canonical far end of each.
fn active_links(g: &GpuFacts) -> Vec<ActiveLink> {
    g.nvlinks
        .iter()
        .filter(|l| l.active.get() == Some(true))
        .map(|l| ActiveLink {
            remote: canonical(&l.remote_pci_bus_id),
            device_type: l.remote_device_type.ok().cloned(),
        })
        .collect()
}

/// The NVLinks two GPUs share, and how: `direct`, `nvswitch`, or None when they share none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinksBetween {
    pub count: u32,
    pub via: Option<&'static str>,
}

impl LinksBetween {
    const NONE: LinksBetween = LinksBetween {
        count: 0,
        via: None,
    };
}

/// NVLinks between two GPUs: direct links first; otherwise links through NVSwitches both reach.
pub fn nvlinks_between(a: &GpuFacts, b: &GpuFacts) -> LinksBetween {
    GpuLinks::of(a).between(&GpuLinks::of(b))
}

/// A GPU's canonical PCI id and active links, normalized once: a node's matrix compares every pair, and
/// normalizing each link's far end per pair was most of `health`'s time on an 8-GPU node.
pub struct GpuLinks {
    bus: Option<String>,
    links: Vec<ActiveLink>,
}

impl GpuLinks {
    pub fn of(g: &GpuFacts) -> Self {
        GpuLinks {
            bus: canonical(&g.pci_bus_id),
            links: active_links(g),
        }
    }

    /// The links this GPU and `other` share (see [`nvlinks_between`]).
    pub fn between(&self, other: &GpuLinks) -> LinksBetween {
        let (la, lb) = (&self.links, &other.links);
        let (Some(bus_a), Some(bus_b)) = (&self.bus, &other.bus) else {
            return LinksBetween::NONE;
        };
        let to = |links: &[ActiveLink], bus: &str| {
            links
                .iter()
                .filter(|l| l.remote.as_deref() == Some(bus))
                .count()
        };
        let direct = to(la, bus_b) + to(lb, bus_a);
        if direct > 0 {
            // Each physical link is seen from both ends; NVML lists it once per GPU.
            return LinksBetween {
                count: (direct / 2).max(1) as u32,
                via: Some("direct"),
            };
        }
        fn switches(links: &[ActiveLink]) -> BTreeSet<&str> {
            links
                .iter()
                .filter(|l| l.device_type.as_deref() == Some("switch"))
                .filter_map(|l| l.remote.as_deref())
                .collect()
        }
        let (sa, sb) = (switches(la), switches(lb));
        let shared: BTreeSet<&str> = sa.intersection(&sb).copied().collect();
        if shared.is_empty() {
            return LinksBetween::NONE;
        }
        let count = |links: &[ActiveLink]| {
            links
                .iter()
                .filter(|l| l.remote.as_deref().is_some_and(|r| shared.contains(r)))
                .count() as u32
        };
        LinksBetween {
            count: count(la).min(count(lb)),
            via: Some("nvswitch"),
        }
    }
}

fn is_active(l: &NvLinkState) -> bool {
    l.state.ok().is_some_and(|s| s == "active")
}

impl NvLinkState {
    /// The replay, recovery, CRC flit and CRC data error counters.
    fn error_counters(&self) -> [&Reading<u64>; 4] {
        [
            &self.replay_errors,
            &self.recovery_errors,
            &self.crc_flit_errors,
            &self.crc_data_errors,
        ]
    }
}

/// Replay, recovery and CRC errors of a link, over the counters that could be read.
fn error_count(l: &NvLinkState) -> u64 {
    l.error_counters()
        .into_iter()
        .filter_map(Reading::get)
        .sum::<u64>()
}

/// A GPU's links counted (None for a GPU without NVLinks), for a summarised report.
pub(super) fn summary(links: &[NvLinkState]) -> Option<NvLinkSummary> {
    if links.is_empty() {
        return None;
    }
    let mut versions: Vec<u32> = links
        .iter()
        .filter(|l| is_active(l))
        .filter_map(|l| l.version.get())
        .collect();
    versions.sort_unstable();
    versions.dedup();
    Some(NvLinkSummary {
        links: links.len() as u32,
        active: links.iter().filter(|l| is_active(l)).count() as u32,
        versions,
        errors: links.iter().map(error_count).sum(),
        counters_unreadable: links
            .iter()
            .filter(|l| l.error_counters().iter().any(|c| c.get().is_none()))
            .count() as u32,
    })
}

/// Keeps the links that deviate (not active, errors, or judged other than ok); returns how many went.
pub(super) fn keep_deviating(links: &mut Vec<NvLinkState>) -> usize {
    let before = links.len();
    links.retain(|l| !is_active(l) || error_count(l) > 0 || l.judgement != "ok");
    before - links.len()
}

/// NVLink state and counters, judged as DCGM's NVLink health watch does.
pub fn nvlink_findings(
    g: &GpuFacts,
    node_uses_nvlink: bool,
    uptime_s: Option<f64>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    let down: Vec<&NvLinkFacts> = g
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
        // The links and the switches they end on: an NVSwitch's SXid joins this GPU's NVLink incident.
        let mut about: Vec<String> = down
            .iter()
            .map(|l| format!("nvlink:{}/{}", g.index, l.link))
            .collect();
        for l in &down {
            if let Some(sw) = canonical(&l.remote_pci_bus_id)
                && l.remote_device_type
                    .ok()
                    .is_some_and(|t| t.contains("switch"))
            {
                let key = format!("nvswitch:{sw}");
                if !about.contains(&key) {
                    about.push(key);
                }
            }
        }
        let mut f = finding(
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
        );
        f.about = about;
        out.push(f);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::topology::test_facts::{gpu, link};
    use crate::facts::{FieldError, FieldErrorKind};

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
        assert_eq!(
            nvlinks_between(&a, &b),
            LinksBetween {
                count: 2,
                via: Some("direct")
            }
        );
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
        assert_eq!(
            nvlinks_between(&c, &d),
            LinksBetween {
                count: 2,
                via: Some("nvswitch")
            }
        );
        let e = gpu(4, "0000:3a:00.0", vec![]);
        assert_eq!(nvlinks_between(&c, &e), LinksBetween::NONE);
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
}
