//! NICs: the node's RDMA ports (InfiniBand and RoCE) judged by state, by rate against their peers of the
//! same model, and by their error counters, both as lifetime totals and as what rose during the probe's
//! sampling window; and the GPU ↔ NIC affinity from PCI paths and NUMA nodes, in the terms of
//! `nvidia-smi topo -m` (PIX, PXB, PHB, NODE, SYS).
//!
//! A faulty port stalls every rank of a multi-node job without any Xid, so each finding names the port,
//! its counters and the GPUs that port serves. Findings are node-level (the GPUs themselves are fine) and
//! one per code, listing every port it applies to.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, NetdevFacts, NodeFacts, RdmaDeviceFacts, RdmaPortFacts, Reading};
use crate::finding::{ActionKind, Finding, Severity};

use super::topology::PciRelation;
use super::{canonical_bus_id, finding, show};

/// An IBTA-compliant link runs at a bit error rate of 10^-12 or better, which allows about 120 symbol
/// errors an hour; a lifetime average above it is a marginal link (cable, transceiver, port).
pub const ERRORS_PER_HOUR_BUDGET: f64 = 120.0;
/// Symbol errors rising faster than this during the sampling window: the link is degrading now. On PAM4
/// links (HDR, NDR) some raw errors are normal, so a rate, not "any error", is judged (the rate NVIDIA's
/// NVSentinel NIC health monitor design uses).
pub const SYMBOL_ERRORS_PER_S: f64 = 10.0;
/// Link-down events (or link error recoveries) since the counters were cleared at or above which a port
/// has flapped, rather than seen one re-cabling or switch reboot.
pub const FLAPS_LIFETIME: u64 = 3;
/// `carrier_changes` counts both directions and an interface brought up once shows 1 or 2: this many
/// means at least [`FLAPS_LIFETIME`] down/up cycles.
pub const CARRIER_CHANGES_LIFETIME: u64 = 2 * FLAPS_LIFETIME + 1;
/// Carrier changes during the window that make a flap in progress (down and up again).
pub const CARRIER_CHANGES_WINDOW: u64 = 2;
/// Congestion: during the window the port waited for credits (`port_xmit_wait`, in ticks) at least this
/// many times per 4-byte word it sent (`port_xmit_data`): sending is starved by the fabric, not the node.
pub const XMIT_WAIT_PER_WORD: f64 = 1.0;

/// The NIC section of the topology report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicReport {
    /// One line: the ports by kind and rate and whether they are all fine, or that the node has no RDMA
    /// device, or why it could not be read.
    pub summary: String,
    /// Milliseconds between the two counter samples ("now" increases are over this window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_interval_ms: Option<u64>,
    pub ports: Vec<NicPort>,
    /// GPU x NIC relations, one row per GPU (empty when there are no NICs or no GPUs).
    pub affinity: NicAffinity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicPort {
    /// `mlx5_3/1`: device and port.
    pub port: String,
    pub device: String,
    pub pci_bus_id: Reading<String>,
    pub numa_node: Reading<i32>,
    /// `hca_type` (`MT4129`), or the board id when that is unreadable.
    pub model: String,
    /// `InfiniBand` or `Ethernet` (RoCE).
    pub link_layer: Reading<String>,
    /// `ACTIVE/LinkUp`, `DOWN/Polling`, ...; for RoCE the netdev's operstate follows.
    pub state: String,
    pub rate_gbps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netdev: Option<String>,
    /// Non-zero error counters: `symbol_error = 1432 (+61 in 1.0 s)`.
    pub errors: Vec<String>,
    /// GPUs whose nearest NIC this is.
    pub serves_gpus: Vec<u32>,
    /// `ok`, or the finding kinds that name this port (`down`, `rate_degraded`, `flapping`, ...).
    pub judgement: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicAffinity {
    /// NIC device names, in the order of each row's cells.
    pub columns: Vec<String>,
    pub rows: Vec<NicAffinityRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NicAffinityRow {
    pub gpu: u32,
    /// `PIX`, `PXB`, `PHB`, `NODE`, `SYS`, or `?` when unknown.
    pub cells: Vec<String>,
    /// The closest relation in the row.
    pub nearest: String,
    /// The NICs at that relation.
    pub nearest_nics: Vec<String>,
}

/// `400 Gb/sec (4X NDR)` -> 400.
pub fn parse_rate_gbps(rate: &str) -> Option<f64> {
    rate.split_whitespace().next()?.parse().ok()
}

/// The state word of `4: ACTIVE` / `5: LinkUp`.
fn state_word(r: &Reading<String>) -> String {
    match r.ok() {
        Some(s) => s
            .split_once(':')
            .map_or(s.as_str(), |(_, w)| w)
            .trim()
            .to_string(),
        None => show(r),
    }
}

/// Widths of the IBA PortCounters fields the kernel shows: they stop at their maximum instead of
/// wrapping, so a value there means "at least".
fn counter_max(name: &str) -> Option<u64> {
    match name {
        "symbol_error"
        | "port_rcv_errors"
        | "port_rcv_remote_physical_errors"
        | "port_xmit_discards" => Some(0xffff),
        "link_error_recovery" | "link_downed" => Some(0xff),
        "local_link_integrity_errors" | "excessive_buffer_overrun_errors" => Some(0xf),
        _ => None,
    }
}

/// One counter as the first sample, the second, and the increase between them.
struct Counter {
    name: String,
    total: u64,
    delta: Option<u64>,
}

impl Counter {
    fn evidence(&self, window_s: Option<f64>) -> String {
        let saturated = counter_max(&self.name).is_some_and(|m| self.total >= m);
        let mut s = format!("{} = {}", self.name, self.total);
        if saturated {
            s.push_str(" (saturated: at least)");
        }
        if let (Some(d), Some(w)) = (self.delta, window_s) {
            s.push_str(&format!(" (+{d} in {w:.1} s)"));
        }
        s
    }
}

fn port_counter(p: &RdmaPortFacts, name: &str) -> Option<Counter> {
    let total = p
        .counters
        .ok()
        .and_then(|c| c.get(name))
        .or_else(|| p.hw_counters.ok().and_then(|c| c.get(name)))
        .copied()?;
    Some(Counter {
        name: name.to_string(),
        total,
        delta: p
            .counters_later
            .get(name)
            .map(|later| later.saturating_sub(total)),
    })
}

fn netdev_counter(n: &NetdevFacts, name: &str) -> Option<Counter> {
    let total = if name == "carrier_changes" {
        n.carrier_changes.get()?
    } else {
        *n.statistics.ok()?.get(name)?
    };
    Some(Counter {
        name: format!("{}.{name}", n.name),
        total,
        delta: n.later.get(name).map(|l| l.saturating_sub(total)),
    })
}

/// What one rule concluded about one port, as the node-level finding lists it.
struct PortFinding {
    severity: Severity,
    /// The port with its PCI address and GPUs, for the summary.
    port: String,
    /// `mlx5_3/1`, to tell evidence lines apart when a finding names several ports.
    label: String,
    evidence: Vec<String>,
}

/// The rules, one finding each: code, judgement word, what it means, action.
struct Rule {
    code: &'static str,
    word: &'static str,
    what: &'static str,
    kind: ActionKind,
    detail: &'static str,
}

const PORT_DOWN: Rule = Rule {
    code: "nic.port_down",
    word: "down",
    what: "not ACTIVE/LinkUp, so no RDMA traffic passes and a job using it fails or runs on fewer rails",
    kind: ActionKind::CheckMechanicals,
    detail: "check the cable, transceiver and switch port (`ibstat`, the switch's port state); a port in INIT or ARMED waits for the subnet manager",
};
const RATE: Rule = Rule {
    code: "nic.rate_degraded",
    word: "rate_degraded",
    what: "trained below the rate of the node's other ports of the same model, and collectives run at the slowest rail's speed",
    kind: ActionKind::CheckMechanicals,
    detail: "reseat or replace the cable or transceiver and check the switch port's configured speed; then the port retrains",
};
const FLAPPING: Rule = Rule {
    code: "nic.link_flapping",
    word: "flapping",
    what: "the link went down and up (link_downed, link_error_recovery or carrier changes); every flap stalls or kills the collectives running over it",
    kind: ActionKind::CheckMechanicals,
    detail: "drain multi-node work from the node, then check or replace the cable and transceiver and the switch port; rising counters during the probe mean it is flapping now",
};
const SYMBOL: Rule = Rule {
    code: "nic.symbol_errors",
    word: "symbol_errors",
    what: "symbol errors above the IBTA 10^-12 bit error budget, a marginal physical link that retransmits and may fail",
    kind: ActionKind::CheckMechanicals,
    detail: "check or replace the cable and transceiver; run the probe again to see whether the counters still rise",
};
const RECEIVE: Rule = Rule {
    code: "nic.receive_errors",
    word: "receive_errors",
    what: "malformed or corrupted packets received (port_rcv_errors, remote physical errors, CRC), dropped and retransmitted",
    kind: ActionKind::CheckMechanicals,
    detail: "check the cable, transceiver and the far end's port; run the probe again to see whether the counters still rise",
};
const INTEGRITY: Rule = Rule {
    code: "nic.link_integrity",
    word: "link_integrity",
    what: "the link exceeded its local physical error limit (local_link_integrity_errors) and runs outside its specification",
    kind: ActionKind::CheckMechanicals,
    detail: "drain multi-node work from the node and replace the cable or transceiver",
};
const OVERRUN: Rule = Rule {
    code: "nic.buffer_overrun",
    word: "buffer_overrun",
    what: "receive buffer overruns (excessive_buffer_overrun_errors), packets dropped on a fabric that assumes none are",
    kind: ActionKind::Investigate,
    detail: "check the port's flow control and the switch's credit configuration; the job using it may need a restart",
};
const CONGESTION: Rule = Rule {
    code: "nic.congestion",
    word: "congestion",
    what: "waited for fabric credits more than it sent during the probe (port_xmit_wait) or discarded packets; the fabric, not this node, slows the job",
    kind: ActionKind::Investigate,
    detail: "look at the switch ports and other jobs on the fabric (congestion control, adaptive routing); this node's hardware is not implicated",
};
const GPU_FAR: Rule = Rule {
    code: "nic.gpu_far",
    word: "far",
    what: "",
    kind: ActionKind::Investigate,
    detail: "check which PCIe slots the NICs sit in against the GPUs, and that the job pins each rank to its nearest NIC (NCCL picks by topology)",
};

const RULES: &[&Rule] = &[
    &PORT_DOWN,
    &FLAPPING,
    &INTEGRITY,
    &OVERRUN,
    &RATE,
    &SYMBOL,
    &RECEIVE,
    &CONGESTION,
];

fn is_up(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> bool {
    let active = p.state.ok().is_some_and(|s| s.contains("ACTIVE"));
    let link_up = p.phys_state.ok().is_some_and(|s| s.contains("LinkUp"));
    let carrier = netdev.is_none_or(|n| n.operstate.ok().is_none_or(|s| s == "up"));
    active && link_up && carrier
}

fn model(d: &RdmaDeviceFacts) -> String {
    d.hca_type
        .ok()
        .or(d.board_id.ok())
        .cloned()
        .unwrap_or_else(|| "?".into())
}

fn rate_gbps(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> Option<f64> {
    p.rate.ok().and_then(|r| parse_rate_gbps(r)).or_else(|| {
        netdev
            .and_then(|n| n.speed_mbps.get())
            .filter(|s| *s > 0)
            .map(|s| s as f64 / 1000.0)
    })
}

/// A port that never carried a byte nor lost a link since its counters were cleared (a spare port of a
/// dual-port adapter, say): being down is its normal state.
fn never_carried_traffic(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> bool {
    let zero = |name: &str| port_counter(p, name).is_some_and(|k| k.total == 0);
    let ib = zero("port_xmit_data") && zero("port_rcv_data") && zero("link_downed");
    let eth = netdev.is_none_or(|n| {
        n.statistics.ok().is_some_and(|s| {
            s.get("rx_bytes").copied().unwrap_or(0) + s.get("tx_bytes").copied().unwrap_or(0) == 0
        })
    });
    ib && eth
}

/// A rule a port trips, how badly, and why.
struct RuleTripped {
    rule: &'static Rule,
    severity: Severity,
    evidence: Vec<String>,
}

/// The judgements of one port: each rule it trips.
fn judge_port(
    p: &RdmaPortFacts,
    netdev: Option<&NetdevFacts>,
    peers_up: bool,
    window_s: Option<f64>,
    uptime_s: Option<f64>,
) -> Vec<RuleTripped> {
    let mut out = Vec::new();
    let c = |name: &str| port_counter(p, name);
    let ev = |cs: &[&Counter]| cs.iter().map(|c| c.evidence(window_s)).collect::<Vec<_>>();
    let per_hour = |total: u64| uptime_s.map(|u| total as f64 / (u / 3600.0));
    let state_ev = format!(
        "state = {}, phys_state = {}{}",
        show(&p.state),
        show(&p.phys_state),
        netdev.map_or(String::new(), |n| format!(
            ", {}.operstate = {}",
            n.name,
            show(&n.operstate)
        ))
    );

    if !is_up(p, netdev) {
        let mut e = vec![state_ev.clone()];
        let never_used = never_carried_traffic(p, netdev);
        e.push(if never_used {
            "no traffic and no link-down event since the counters were cleared: an unused or uncabled port?".into()
        } else if peers_up {
            "other ports of the same model are up".into()
        } else {
            "no other port of this model is up (an unused or uncabled adapter?)".into()
        });
        let sev = if never_used {
            Severity::Info
        } else if peers_up {
            Severity::Critical
        } else {
            Severity::Warning
        };
        out.push(RuleTripped {
            rule: &PORT_DOWN,
            severity: sev,
            evidence: e,
        });
        // A down port's rate and error counters say nothing more.
        return out;
    }

    // Flaps: link_downed and link_error_recovery (IB), carrier changes (RoCE netdev), each with the rise
    // during the window that is critical (none for recoveries) and the lifetime total that warns.
    let mut flap: Option<Severity> = None;
    let mut flap_ev = Vec::new();
    let mut flaps: Vec<(Counter, Option<u64>, u64)> =
        [("link_downed", Some(1)), ("link_error_recovery", None)]
            .into_iter()
            .filter_map(|(name, critical)| Some((c(name)?, critical, FLAPS_LIFETIME)))
            .collect();
    if let Some(k) = netdev.and_then(|n| netdev_counter(n, "carrier_changes")) {
        flaps.push((k, Some(CARRIER_CHANGES_WINDOW), CARRIER_CHANGES_LIFETIME));
    }
    for (k, critical, lifetime) in flaps {
        let now = k.delta.unwrap_or(0);
        let sev = if critical.is_some_and(|t| now >= t) {
            Severity::Critical
        } else if now > 0 || k.total >= lifetime {
            Severity::Warning
        } else {
            continue;
        };
        flap = flap.max(Some(sev));
        flap_ev.push(k.evidence(window_s));
    }
    if let Some(s) = flap {
        out.push(RuleTripped {
            rule: &FLAPPING,
            severity: s,
            evidence: flap_ev,
        });
    }

    for (rule, name) in [
        (&INTEGRITY, "local_link_integrity_errors"),
        (&OVERRUN, "excessive_buffer_overrun_errors"),
    ] {
        if let Some(k) = c(name)
            && k.total > 0
        {
            let sev = if k.delta.unwrap_or(0) > 0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(RuleTripped {
                rule,
                severity: sev,
                evidence: ev(&[&k]),
            });
        }
    }

    if let Some(k) = c("symbol_error") {
        let now_rate = match (k.delta, window_s) {
            (Some(d), Some(w)) if w > 0.0 => Some(d as f64 / w),
            _ => None,
        };
        let avg = per_hour(k.total);
        if now_rate.is_some_and(|r| r > SYMBOL_ERRORS_PER_S)
            || avg.is_some_and(|a| a > ERRORS_PER_HOUR_BUDGET)
        {
            let mut e = ev(&[&k]);
            if let Some(a) = avg {
                e.push(format!("{a:.0}/h averaged since boot"));
            }
            out.push(RuleTripped {
                rule: &SYMBOL,
                severity: Severity::Warning,
                evidence: e,
            });
        }
    }

    let mut rcv: Vec<Counter> = ["port_rcv_errors", "port_rcv_remote_physical_errors"]
        .iter()
        .filter_map(|n| c(n))
        .collect();
    if let Some(n) = netdev {
        rcv.extend(
            ["rx_crc_errors", "rx_errors"]
                .iter()
                .filter_map(|name| netdev_counter(n, name)),
        );
    }
    let rising = rcv.iter().any(|k| k.delta.unwrap_or(0) > 0);
    let over = rcv
        .iter()
        .any(|k| per_hour(k.total).is_some_and(|a| a > ERRORS_PER_HOUR_BUDGET));
    if rising || over {
        let e: Vec<String> = rcv
            .iter()
            .filter(|k| k.total > 0)
            .map(|k| k.evidence(window_s))
            .collect();
        out.push(RuleTripped {
            rule: &RECEIVE,
            severity: Severity::Warning,
            evidence: e,
        });
    }

    if let (Some(wait), Some(data)) = (c("port_xmit_wait"), c("port_xmit_data")) {
        let (dw, dd) = (wait.delta.unwrap_or(0), data.delta.unwrap_or(0));
        let discards = c("port_xmit_discards").filter(|k| k.delta.unwrap_or(0) > 0);
        if (dw > 0 && dw as f64 >= XMIT_WAIT_PER_WORD * dd as f64) || discards.is_some() {
            let mut e = vec![wait.evidence(window_s), data.evidence(window_s)];
            if let Some(k) = discards {
                e.push(k.evidence(window_s));
            }
            out.push(RuleTripped {
                rule: &CONGESTION,
                severity: Severity::Warning,
                evidence: e,
            });
        }
    }
    out
}

/// The stated thresholds of a rule, as the finding's last evidence line.
fn thresholds(code: &str) -> Option<String> {
    Some(match code {
        "nic.port_down" => "threshold: state ACTIVE and phys_state LinkUp (and the netdev up); critical when other ports of the model are up, info for a port that never carried traffic".into(),
        "nic.link_flapping" => format!(
            "thresholds: critical when link_downed or >= {CARRIER_CHANGES_WINDOW} carrier changes rise during the window; warning for a link error recovery during it, or >= {FLAPS_LIFETIME} downs or recoveries ({CARRIER_CHANGES_LIFETIME} carrier changes) since the counters were cleared"
        ),
        "nic.link_integrity" | "nic.buffer_overrun" => {
            "thresholds: any count is a fault; rising during the window is critical".into()
        }
        "nic.symbol_errors" => format!(
            "thresholds: > {SYMBOL_ERRORS_PER_S}/s during the window, or > {ERRORS_PER_HOUR_BUDGET}/h averaged since boot (10^-12 BER)"
        ),
        "nic.receive_errors" => format!(
            "thresholds: any increase during the window, or > {ERRORS_PER_HOUR_BUDGET}/h averaged since boot"
        ),
        "nic.congestion" => format!(
            "threshold: port_xmit_wait rising by >= {XMIT_WAIT_PER_WORD} x port_xmit_data (4-byte words) during the window, or any port_xmit_discards increase"
        ),
        "nic.rate_degraded" => "threshold: below the fastest active port of the same model and link layer".into(),
        _ => return None,
    })
}

/// Non-zero error counters of a port and its netdev, for the report.
fn error_lines(
    p: &RdmaPortFacts,
    netdev: Option<&NetdevFacts>,
    window_s: Option<f64>,
) -> Vec<String> {
    let mut out: Vec<String> = crate::facts::RESAMPLED_PORT_COUNTERS
        .iter()
        .filter(|n| !matches!(**n, "port_xmit_wait" | "port_xmit_data"))
        .filter_map(|n| port_counter(p, n))
        .filter(|k| k.total > 0)
        .map(|k| k.evidence(window_s))
        .collect();
    if let Some(n) = netdev {
        out.extend(
            crate::facts::RESAMPLED_NETDEV_COUNTERS
                .iter()
                .filter_map(|name| netdev_counter(n, name))
                // An interface brought up once has a carrier change or two: not an error.
                .filter(|k| {
                    !k.name.ends_with(".carrier_changes")
                        || k.total >= CARRIER_CHANGES_LIFETIME
                        || k.delta.unwrap_or(0) > 0
                })
                .filter(|k| k.total > 0)
                .map(|k| k.evidence(window_s)),
        );
    }
    out
}

/// The GPU x NIC matrix, and each GPU's nearest NICs (its rail, whether that port is up or not: a down
/// port is its own finding).
fn affinity(gpus: &[GpuFacts], devices: &[RdmaDeviceFacts]) -> NicAffinity {
    let mut out = NicAffinity {
        columns: devices.iter().map(|d| d.name.clone()).collect(),
        rows: Vec::new(),
    };
    for g in gpus {
        let gpath: &[String] = g
            .pci_path
            .as_ref()
            .and_then(|p| p.ok())
            .map_or(&[], Vec::as_slice);
        let gnuma = g.numa_node.get();
        let relations: Vec<PciRelation> = devices
            .iter()
            .map(|d| {
                let dpath: &[String] = d.pci_path.ok().map_or(&[], Vec::as_slice);
                PciRelation::from_paths(gpath, gnuma, dpath, d.numa_node.get())
            })
            .collect();
        let best = relations
            .iter()
            .copied()
            .min()
            .unwrap_or(PciRelation::Unknown);
        // An unknown relation could be closer than anything known, short of PIX.
        let nearest = if relations.contains(&PciRelation::Unknown) && best > PciRelation::Pix {
            PciRelation::Unknown
        } else {
            best
        };
        let nearest_nics = if nearest == PciRelation::Unknown {
            Vec::new()
        } else {
            devices
                .iter()
                .zip(&relations)
                .filter(|(_, r)| **r == nearest)
                .map(|(d, _)| d.name.clone())
                .collect()
        };
        let cells = relations.iter().map(|r| r.as_str().to_string()).collect();
        let nearest = nearest.as_str().to_string();
        out.rows.push(NicAffinityRow {
            gpu: g.index,
            cells,
            nearest,
            nearest_nics,
        });
    }
    out
}

/// Ports compared with each other: the same adapter model and link layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PeerGroup {
    model: String,
    link_layer: String,
}

/// The NIC section and its findings; `None` when the facts hold no NIC collection.
pub fn analyze(facts: &NodeFacts) -> (Option<NicReport>, Vec<Finding>) {
    let Some(rdma) = &facts.rdma else {
        return (None, Vec::new());
    };
    let rdma = match rdma {
        Reading::Ok(r) => r,
        Reading::Err(e) => {
            return (
                Some(NicReport {
                    summary: format!(
                        "RDMA devices unreadable: {}{}",
                        super::error_name(e.error),
                        e.message
                            .as_deref()
                            .map_or(String::new(), |m| format!(" ({m})"))
                    ),
                    ..Default::default()
                }),
                Vec::new(),
            );
        }
    };
    if rdma.devices.is_empty() {
        return (
            Some(NicReport {
                summary: "none: this node has no RDMA device (no InfiniBand or RoCE NIC under /sys/class/infiniband)".into(),
                ..Default::default()
            }),
            Vec::new(),
        );
    }
    let window_s = rdma.sample_interval_ms.map(|ms| ms as f64 / 1000.0);
    let uptime = super::uptime_s(facts);
    let aff = affinity(&facts.gpus, &rdma.devices);
    let serves = |dev: &str| -> Vec<u32> {
        aff.rows
            .iter()
            .filter(|r| r.nearest_nics.iter().any(|n| n == dev))
            .map(|r| r.gpu)
            .collect()
    };

    // Peers: ports of the same model and link layer.
    let key = |d: &RdmaDeviceFacts, p: &RdmaPortFacts| PeerGroup {
        model: model(d),
        link_layer: show(&p.link_layer),
    };
    let mut best_rate: BTreeMap<PeerGroup, f64> = BTreeMap::new();
    let mut up_count: BTreeMap<PeerGroup, usize> = BTreeMap::new();
    for d in &rdma.devices {
        for p in &d.ports {
            let nd = d.netdevs.first();
            if is_up(p, nd) {
                *up_count.entry(key(d, p)).or_default() += 1;
                if let Some(r) = rate_gbps(p, nd) {
                    let e = best_rate.entry(key(d, p)).or_insert(r);
                    *e = e.max(r);
                }
            }
        }
    }

    let mut ports = Vec::new();
    let mut hits: BTreeMap<&'static str, Vec<PortFinding>> = BTreeMap::new();
    for d in &rdma.devices {
        let nd = d.netdevs.first();
        let gpus = serves(&d.name);
        for p in &d.ports {
            let label = format!("{}/{}", d.name, p.port);
            let up = is_up(p, nd);
            let k = key(d, p);
            let peers_up = up_count.get(&k).copied().unwrap_or(0) > usize::from(up);
            let mut judged = judge_port(p, nd, peers_up, window_s, uptime);
            let rate = rate_gbps(p, nd);
            if up
                && let (Some(r), Some(best)) = (rate, best_rate.get(&k))
                && r < *best
            {
                judged.push(RuleTripped {
                    rule: &RATE,
                    severity: Severity::Warning,
                    evidence: vec![
                        format!("rate = {}", show(&p.rate)),
                        format!(
                            "other {} {} ports run at {best} Gb/s",
                            k.model, k.link_layer
                        ),
                    ],
                });
            }
            let who = describe_port(&label, d, &gpus);
            let mut judgement: Vec<String> = Vec::new();
            for RuleTripped {
                rule,
                severity,
                evidence,
            } in judged
            {
                judgement.push(rule.word.to_string());
                hits.entry(rule.code).or_default().push(PortFinding {
                    severity,
                    port: who.clone(),
                    label: label.clone(),
                    evidence,
                });
            }
            if judgement.is_empty() {
                judgement.push("ok".into());
            }
            ports.push(NicPort {
                port: label,
                device: d.name.clone(),
                pci_bus_id: canonical_bus_id(&d.pci_bus_id),
                numa_node: d.numa_node.clone(),
                model: model(d),
                link_layer: p.link_layer.clone(),
                state: format!(
                    "{}/{}{}",
                    state_word(&p.state),
                    state_word(&p.phys_state),
                    nd.map_or(String::new(), |n| format!(
                        ", {} {}",
                        n.name,
                        show(&n.operstate)
                    ))
                ),
                rate_gbps: rate,
                netdev: nd.map(|n| n.name.clone()),
                errors: error_lines(p, nd, window_s),
                serves_gpus: gpus.clone(),
                judgement,
            });
        }
    }

    let mut findings = Vec::new();
    for rule in RULES {
        let Some(list) = hits.get(rule.code) else {
            continue;
        };
        let severity = list
            .iter()
            .map(|h| h.severity)
            .max()
            .unwrap_or(Severity::Warning);
        let names: Vec<&str> = list.iter().map(|h| h.port.as_str()).collect();
        let one = if list.len() == 1 { "port" } else { "ports" };
        findings.push(finding(
            rule.code,
            severity,
            None,
            format!("RDMA {one} {}: {}.", names.join("; "), rule.what),
            evidence_of(list, rule.code),
            rule.kind,
            rule.detail.to_string(),
        ));
    }
    let far: Vec<&NicAffinityRow> = aff
        .rows
        .iter()
        .filter(|r| PciRelation::parse(&r.nearest) == Some(PciRelation::Sys))
        .collect();
    if !far.is_empty() {
        let names: Vec<String> = far.iter().map(|r| format!("GPU {}", r.gpu)).collect();
        findings.push(finding(
            GPU_FAR.code,
            Severity::Warning,
            None,
            format!(
                "{} {} the nearest RDMA NIC only across the CPU interconnect (SYS): GPUDirect RDMA traffic crosses sockets, costing bandwidth and latency for multi-node jobs.",
                names.join(", "),
                if names.len() == 1 { "reaches" } else { "reach" }
            ),
            far.iter()
                .map(|r| format!("GPU {}: nearest NIC {} ({})", r.gpu, r.nearest_nics.join(", "), r.nearest))
                .collect(),
            GPU_FAR.kind,
            GPU_FAR.detail.to_string(),
        ));
    }

    let summary = summarize(&ports);
    (
        Some(NicReport {
            summary,
            sample_interval_ms: rdma.sample_interval_ms,
            ports,
            affinity: aff,
        }),
        findings,
    )
}

/// The evidence of every port a finding names (prefixed by the port when there are several), then the
/// thresholds once.
fn evidence_of(list: &[PortFinding], code: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .iter()
        .flat_map(|h| {
            h.evidence.iter().map(move |e| {
                if list.len() > 1 {
                    format!("{}: {e}", h.label)
                } else {
                    e.clone()
                }
            })
        })
        .collect();
    out.extend(thresholds(code));
    out
}

/// `mlx5_3/1 (0000:5c:00.0, serves GPU 3)`.
fn describe_port(label: &str, d: &RdmaDeviceFacts, gpus: &[u32]) -> String {
    let mut parts = Vec::new();
    if let Some(b) = canonical_bus_id(&d.pci_bus_id).ok() {
        parts.push(b.clone());
    }
    if !gpus.is_empty() {
        let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
        parts.push(format!("serves GPU {}", list.join(", ")));
    }
    if parts.is_empty() {
        label.to_string()
    } else {
        format!("{label} ({})", parts.join(", "))
    }
}

/// Deviating ports named in the summary line.
const SUMMARY_PORTS: usize = 4;

/// `8 ports: 8 x InfiniBand 400 Gb/s (MT4129); all up, no error counts` or the deviating ports.
fn summarize(ports: &[NicPort]) -> String {
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for p in ports {
        let rate = p.rate_gbps.map_or("?".to_string(), |r| format!("{r} Gb/s"));
        *groups
            .entry(format!("{} {rate} ({})", show(&p.link_layer), p.model))
            .or_default() += 1;
    }
    let kinds: Vec<String> = groups.iter().map(|(k, n)| format!("{n} x {k}")).collect();
    let mut bad: Vec<String> = ports
        .iter()
        .filter(|p| p.judgement != ["ok"])
        .map(|p| format!("{} {}", p.port, p.judgement.join("+")))
        .collect();
    // One line however many ports deviate: the ports list has the rest.
    if bad.len() > SUMMARY_PORTS {
        let more = bad.len() - SUMMARY_PORTS;
        bad.truncate(SUMMARY_PORTS);
        bad.push(format!("and {more} more"));
    }
    let errors = ports.iter().any(|p| !p.errors.is_empty());
    let tail = if !bad.is_empty() {
        format!("not fine: {}", bad.join(", "))
    } else if errors {
        "all up; error counts within thresholds".into()
    } else {
        "all up, no error counts".into()
    };
    format!("{} port(s): {}; {tail}", ports.len(), kinds.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::RdmaFacts;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    #[test]
    fn the_contract_stays_compatible_both_ways() {
        // A document from a probe without the NIC section parses here (`nics` stays absent) ...
        let old =
            r#"{"matrix":{"columns":[],"rows":[],"legend":[]},"pairs":[],"gpus":[],"findings":[]}"#;
        let r: super::super::topology::TopologyReport = serde_json::from_str(old).unwrap();
        assert!(r.nics.is_none());
        // ... and a reader without it ignores the section: reports do not deny unknown fields, and NIC
        // findings use action kinds older readers know.
        #[derive(Deserialize)]
        struct OldTopology {
            findings: Vec<Finding>,
        }
        let facts = crate::scenarios::parse(
            &crate::scenarios::find("dgx-h100-ib-flapping")
                .unwrap()
                .json(),
        )
        .unwrap();
        let new =
            super::super::topology::analyze(&facts, &crate::options::AnalysisOptions::default());
        assert!(new.nics.is_some());
        let text = serde_json::to_string(&new).unwrap();
        let read: OldTopology = serde_json::from_str(&text).unwrap();
        assert!(read.findings.iter().any(|f| f.code == "nic.link_flapping"));
    }

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate_gbps("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(parse_rate_gbps("12.5 Gb/sec (1X FDR)"), Some(12.5));
        assert_eq!(parse_rate_gbps("garbage"), None);
    }

    fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn ib_port(
        state: &str,
        phys: &str,
        rate: &str,
        c: &[(&str, u64)],
        later: &[(&str, u64)],
    ) -> RdmaPortFacts {
        let mut all = counters(&[
            ("symbol_error", 0),
            ("link_downed", 0),
            ("link_error_recovery", 0),
            ("port_rcv_errors", 0),
            ("local_link_integrity_errors", 0),
            ("excessive_buffer_overrun_errors", 0),
            ("port_xmit_wait", 1000),
            ("port_xmit_data", 1_000_000),
        ]);
        all.extend(counters(c));
        let mut l = all.clone();
        l.retain(|k, _| crate::facts::RESAMPLED_PORT_COUNTERS.contains(&k.as_str()));
        l.extend(counters(later));
        RdmaPortFacts {
            port: 1,
            state: Reading::Ok(state.into()),
            phys_state: Reading::Ok(phys.into()),
            rate: Reading::Ok(rate.into()),
            link_layer: Reading::Ok("InfiniBand".into()),
            counters: Reading::Ok(all),
            hw_counters: Reading::not_supported(),
            counters_later: l,
        }
    }

    fn dev(i: u32, port: RdmaPortFacts) -> RdmaDeviceFacts {
        RdmaDeviceFacts {
            name: format!("mlx5_{i}"),
            hca_type: Reading::Ok("MT4129".into()),
            pci_bus_id: Reading::Ok(format!("0000:{:02x}:00.0", 0x20 + i)),
            pci_path: Reading::Ok(path(&format!(
                "pci0000:{0:02x}/0000:{0:02x}:01.0/0000:{1:02x}:00.0/0000:{2:02x}:04.0/0000:{3:02x}:00.0",
                0x10 * i,
                0x10 * i + 1,
                0x10 * i + 2,
                0x20 + i
            ))),
            numa_node: Reading::Ok(if i < 2 { 0 } else { 1 }),
            ports: vec![port],
            ..Default::default()
        }
    }

    fn ok_port() -> RdmaPortFacts {
        ib_port("4: ACTIVE", "5: LinkUp", "400 Gb/sec (4X NDR)", &[], &[])
    }

    fn node(devices: Vec<RdmaDeviceFacts>) -> NodeFacts {
        NodeFacts {
            rdma: Some(Reading::Ok(RdmaFacts {
                sample_interval_ms: Some(1000),
                devices,
            })),
            ..Default::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.code.as_str(), f.severity)).collect()
    }

    #[test]
    fn healthy_ports_have_no_findings_and_one_line() {
        let (r, f) = analyze(&node((0..4).map(|i| dev(i, ok_port())).collect()));
        assert!(f.is_empty(), "{f:?}");
        let r = r.unwrap();
        assert_eq!(
            r.summary,
            "4 port(s): 4 x InfiniBand 400 Gb/s (MT4129); all up, no error counts"
        );
        assert!(r.ports.iter().all(|p| p.judgement == ["ok"]));
    }

    #[test]
    fn no_rdma_says_so_and_not_collected_says_nothing() {
        let (r, f) = analyze(&node(vec![]));
        assert!(
            r.unwrap()
                .summary
                .starts_with("none: this node has no RDMA device")
        );
        assert!(f.is_empty());
        assert_eq!(analyze(&NodeFacts::default()), (None, Vec::new()));
    }

    #[test]
    fn down_slow_flapping_and_errors() {
        let down = ib_port("1: DOWN", "2: Polling", "10 Gb/sec (4X SDR)", &[], &[]);
        let slow = ib_port("4: ACTIVE", "5: LinkUp", "200 Gb/sec (4X HDR)", &[], &[]);
        let flapping = ib_port(
            "4: ACTIVE",
            "5: LinkUp",
            "400 Gb/sec (4X NDR)",
            &[("link_downed", 14), ("symbol_error", 40_000)],
            &[("link_downed", 15), ("symbol_error", 40_100)],
        );
        let (r, f) = analyze(&node(vec![
            dev(0, ok_port()),
            dev(1, down),
            dev(2, slow),
            dev(3, flapping),
        ]));
        assert_eq!(
            codes(&f),
            [
                ("nic.port_down", Severity::Critical),
                ("nic.link_flapping", Severity::Critical),
                ("nic.rate_degraded", Severity::Warning),
                ("nic.symbol_errors", Severity::Warning),
            ]
        );
        assert!(
            f[0].summary.contains("mlx5_1/1 (0000:21:00.0)"),
            "{}",
            f[0].summary
        );
        assert!(
            f[1].evidence
                .iter()
                .any(|e| e == "link_downed = 14 (+1 in 1.0 s)"),
            "{:?}",
            f[1].evidence
        );
        assert!(
            f[3].evidence
                .iter()
                .any(|e| e.contains("symbol_error = 40000 (+100 in 1.0 s)"))
        );
        let r = r.unwrap();
        assert!(
            r.summary.contains(
                "not fine: mlx5_1/1 down, mlx5_2/1 rate_degraded, mlx5_3/1 flapping+symbol_errors"
            ),
            "{}",
            r.summary
        );
    }

    #[test]
    fn several_ports_make_one_finding_per_code() {
        let down = || ib_port("1: DOWN", "2: Polling", "10 Gb/sec (4X SDR)", &[], &[]);
        let (_, f) = analyze(&node(vec![
            dev(0, ok_port()),
            dev(1, down()),
            dev(2, down()),
        ]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Critical)]);
        assert!(
            f[0].summary.starts_with(
                "RDMA ports mlx5_1/1 (0000:21:00.0); mlx5_2/1 (0000:22:00.0): not ACTIVE"
            ),
            "{}",
            f[0].summary
        );
        assert_eq!(
            f[0].evidence[0],
            "mlx5_1/1: state = 1: DOWN, phys_state = 2: Polling"
        );
        assert!(f[0].evidence.last().unwrap().starts_with("threshold: "));
        assert_eq!(
            f[0].evidence
                .iter()
                .filter(|e| e.contains("threshold"))
                .count(),
            1
        );
    }

    #[test]
    fn a_port_that_never_carried_traffic_is_only_info() {
        let spare = ib_port(
            "1: DOWN",
            "3: Disabled",
            "10 Gb/sec (4X SDR)",
            &[("port_xmit_data", 0), ("port_rcv_data", 0)],
            &[],
        );
        let (_, f) = analyze(&node(vec![dev(0, ok_port()), dev(1, spare)]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Info)]);
    }

    #[test]
    fn a_lone_down_port_is_only_a_warning() {
        let down = ib_port("1: DOWN", "3: Disabled", "10 Gb/sec (4X SDR)", &[], &[]);
        let (_, f) = analyze(&node(vec![dev(0, down)]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Warning)]);
    }

    #[test]
    fn integrity_overrun_and_congestion() {
        let p = ib_port(
            "4: ACTIVE",
            "5: LinkUp",
            "400 Gb/sec (4X NDR)",
            &[
                ("local_link_integrity_errors", 15),
                ("excessive_buffer_overrun_errors", 2),
            ],
            &[
                ("local_link_integrity_errors", 15),
                ("excessive_buffer_overrun_errors", 3),
                ("port_xmit_wait", 9_000_000),
                ("port_xmit_data", 3_000_000),
            ],
        );
        let (_, f) = analyze(&node(vec![dev(0, p), dev(1, ok_port())]));
        assert_eq!(
            codes(&f),
            [
                ("nic.link_integrity", Severity::Warning),
                ("nic.buffer_overrun", Severity::Critical),
                ("nic.congestion", Severity::Warning),
            ]
        );
        assert!(
            f[0].evidence[0].contains("(saturated: at least)"),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn roce_carrier_changes_flap() {
        let mut p = ok_port();
        p.link_layer = Reading::Ok("Ethernet".into());
        let mut d = dev(0, p);
        d.netdevs = vec![NetdevFacts {
            name: "ens1f0np0".into(),
            operstate: Reading::Ok("up".into()),
            speed_mbps: Reading::Ok(400_000),
            carrier_changes: Reading::Ok(9),
            statistics: Reading::Ok(counters(&[("rx_errors", 0), ("rx_crc_errors", 0)])),
            later: counters(&[
                ("carrier_changes", 11),
                ("rx_errors", 0),
                ("rx_crc_errors", 0),
            ]),
        }];
        let (r, f) = analyze(&node(vec![d.clone()]));
        assert_eq!(codes(&f), [("nic.link_flapping", Severity::Critical)]);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e == "ens1f0np0.carrier_changes = 9 (+2 in 1.0 s)")
        );
        assert_eq!(r.unwrap().ports[0].netdev.as_deref(), Some("ens1f0np0"));
        // Lifetime only, below the threshold: nothing.
        d.netdevs[0].carrier_changes = Reading::Ok(2);
        d.netdevs[0].later.insert("carrier_changes".into(), 2);
        assert!(analyze(&node(vec![d.clone()])).1.is_empty());
        // Operstate down makes the port down whatever the RDMA state says.
        d.netdevs[0].operstate = Reading::Ok("down".into());
        assert_eq!(
            codes(&analyze(&node(vec![d])).1),
            [("nic.port_down", Severity::Warning)]
        );
    }

    #[test]
    fn gpus_far_from_every_nic_are_flagged() {
        let mut facts = node(vec![dev(0, ok_port()), dev(1, ok_port())]);
        let gpu = |i: u32, p: &str, numa: i32| GpuFacts {
            index: i,
            numa_node: Reading::Ok(numa),
            pci_path: Some(Reading::Ok(path(p))),
            ..Default::default()
        };
        facts.gpus = vec![
            gpu(
                0,
                "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0",
                0,
            ),
            gpu(
                1,
                "pci0000:10/0000:10:01.0/0000:11:00.0/0000:12:08.0/0000:14:00.0/0000:15:00.0/0000:16:00.0",
                0,
            ),
            gpu(2, "pci0000:a0/0000:a0:01.0/0000:a1:00.0", 1),
        ];
        let (r, f) = analyze(&facts);
        let r = r.unwrap();
        assert_eq!(r.affinity.columns, ["mlx5_0", "mlx5_1"]);
        assert_eq!(r.affinity.rows[0].cells, ["PIX", "NODE"]);
        assert_eq!(r.affinity.rows[1].cells, ["NODE", "PXB"]);
        assert_eq!(r.affinity.rows[2].cells, ["SYS", "SYS"]);
        // GPU 2 is equally far from both.
        assert_eq!(r.ports[0].serves_gpus, [0, 2]);
        assert_eq!(r.ports[1].serves_gpus, [1, 2]);
        assert_eq!(codes(&f), [("nic.gpu_far", Severity::Warning)]);
        assert!(f[0].summary.starts_with("GPU 2 reaches the nearest"));
        // A NIC whose relation is unknown might be nearer: no claim, no finding.
        facts.gpus[2].pci_path = None;
        facts.gpus[2].numa_node = Reading::not_supported();
        let (r, f) = analyze(&facts);
        assert_eq!(r.unwrap().affinity.rows[2].nearest, "?");
        assert!(f.is_empty(), "{f:?}");
    }
}
