//! The per-port rules: a port's state, rate and counters judged, each rule one finding code.

use crate::analysis::show;
use crate::facts::{NetdevFacts, RdmaPortFacts, Reading};
use crate::finding::{ActionKind, Severity};

use super::counters::{Counter, netdev_counter, port_counter};
use super::thresholds::*;

/// `400 Gb/sec (4X NDR)` -> 400.
pub fn parse_rate_gbps(rate: &str) -> Option<f64> {
    rate.split_whitespace().next()?.parse().ok()
}

/// The state word of `4: ACTIVE` / `5: LinkUp`.
pub(super) fn state_word(r: &Reading<String>) -> String {
    match r.ok() {
        Some(s) => s
            .split_once(':')
            .map_or(s.as_str(), |(_, w)| w)
            .trim()
            .to_string(),
        None => show(r),
    }
}

/// The rules, one finding each: code, judgement word, what it means, action.
pub(super) struct Rule {
    pub(super) code: &'static str,
    pub(super) word: &'static str,
    pub(super) what: &'static str,
    pub(super) kind: ActionKind,
    pub(super) detail: &'static str,
}

const PORT_DOWN: Rule = Rule {
    code: "nic.port_down",
    word: "down",
    what: "not ACTIVE/LinkUp, so no RDMA traffic passes and a job using it fails or runs on fewer rails",
    kind: ActionKind::CheckMechanicals,
    detail: "check the cable, transceiver and switch port (`ibstat`, the switch's port state); a port in INIT or ARMED waits for the subnet manager",
};
pub(super) const RATE: Rule = Rule {
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
pub(super) const GPU_FAR: Rule = Rule {
    code: "nic.gpu_far",
    word: "far",
    what: "",
    kind: ActionKind::Investigate,
    detail: "check which PCIe slots the NICs sit in against the GPUs, and that the job pins each rank to its nearest NIC (NCCL picks by topology)",
};

pub(super) const RULES: &[&Rule] = &[
    &PORT_DOWN,
    &FLAPPING,
    &INTEGRITY,
    &OVERRUN,
    &RATE,
    &SYMBOL,
    &RECEIVE,
    &CONGESTION,
];

pub(super) fn is_up(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> bool {
    let active = p.state.ok().is_some_and(|s| s.contains("ACTIVE"));
    let link_up = p.phys_state.ok().is_some_and(|s| s.contains("LinkUp"));
    let carrier = netdev.is_none_or(|n| n.operstate.ok().is_none_or(|s| s == "up"));
    active && link_up && carrier
}

pub(super) fn rate_gbps(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> Option<f64> {
    p.rate.ok().and_then(|r| parse_rate_gbps(r)).or_else(|| {
        netdev
            .and_then(|n| n.speed_mbps.get())
            .filter(|s| *s > 0)
            .map(|s| s as f64 / 1000.0)
    })
}

/// A port that never carried a byte nor lost a link since its counters were cleared (a spare port of a
/// dual-port adapter, say): being down is its normal state.
pub(super) fn never_carried_traffic(p: &RdmaPortFacts, netdev: Option<&NetdevFacts>) -> bool {
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
pub(super) struct RuleTripped {
    pub(super) rule: &'static Rule,
    pub(super) severity: Severity,
    pub(super) evidence: Vec<String>,
}

/// The judgements of one port: each rule it trips.
pub(super) fn judge_port(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate_gbps("400 Gb/sec (4X NDR)"), Some(400.0));
        assert_eq!(parse_rate_gbps("12.5 Gb/sec (1X FDR)"), Some(12.5));
        assert_eq!(parse_rate_gbps("garbage"), None);
    }
}
