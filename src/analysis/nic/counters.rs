//! A port's and its netdev's error counters: the first sample, the increase during the sampling window,
//! saturation, and the non-zero ones as the report lists them.

use crate::facts::{NetdevFacts, RdmaPortFacts};

use super::thresholds::CARRIER_CHANGES_LIFETIME;

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
pub(super) struct Counter {
    pub(super) name: String,
    pub(super) total: u64,
    pub(super) delta: Option<u64>,
}

impl Counter {
    pub(super) fn evidence(&self, window_s: Option<f64>) -> String {
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

pub(super) fn port_counter(p: &RdmaPortFacts, name: &str) -> Option<Counter> {
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

pub(super) fn netdev_counter(n: &NetdevFacts, name: &str) -> Option<Counter> {
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

/// Non-zero error counters of a port and its netdev, for the report.
pub(super) fn error_lines(
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
