//! The peer comparison: ports of the same adapter model and link layer, how many are up and the fastest
//! rate among them, against which a port's being down or slow is judged.

use std::collections::BTreeMap;

use crate::analysis::show;
use crate::facts::{RdmaDeviceFacts, RdmaPortFacts};
use crate::finding::Severity;

use super::port_rules::{RATE, RuleTripped, is_up, rate_gbps};

/// The adapter model: `hca_type` (`MT4129`), else the board id.
pub(super) fn model(d: &RdmaDeviceFacts) -> String {
    d.hca_type
        .ok()
        .or(d.board_id.ok())
        .cloned()
        .unwrap_or_else(|| "?".into())
}

/// Ports compared with each other: the same adapter model and link layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct PeerGroup {
    model: String,
    link_layer: String,
}

impl PeerGroup {
    pub(super) fn of(d: &RdmaDeviceFacts, p: &RdmaPortFacts) -> PeerGroup {
        PeerGroup {
            model: model(d),
            link_layer: show(&p.link_layer),
        }
    }
}

/// Per peer group, the ports up and the fastest rate among them.
pub(super) struct PeerRates {
    best_rate: BTreeMap<PeerGroup, f64>,
    up_count: BTreeMap<PeerGroup, usize>,
}

impl PeerRates {
    pub(super) fn of(devices: &[RdmaDeviceFacts]) -> PeerRates {
        let mut best_rate: BTreeMap<PeerGroup, f64> = BTreeMap::new();
        let mut up_count: BTreeMap<PeerGroup, usize> = BTreeMap::new();
        for d in devices {
            for p in &d.ports {
                let nd = d.netdevs.first();
                if is_up(p, nd) {
                    *up_count.entry(PeerGroup::of(d, p)).or_default() += 1;
                    if let Some(r) = rate_gbps(p, nd) {
                        let e = best_rate.entry(PeerGroup::of(d, p)).or_insert(r);
                        *e = e.max(r);
                    }
                }
            }
        }
        PeerRates {
            best_rate,
            up_count,
        }
    }

    /// Whether ports of the group other than this one (`up` or not) are up.
    pub(super) fn others_up(&self, group: &PeerGroup, up: bool) -> bool {
        self.up_count.get(group).copied().unwrap_or(0) > usize::from(up)
    }

    /// `rate_degraded`: an up port trained below the fastest up port of its group.
    pub(super) fn rate_degraded(
        &self,
        group: &PeerGroup,
        p: &RdmaPortFacts,
        rate: Option<f64>,
        up: bool,
    ) -> Option<RuleTripped> {
        if up
            && let (Some(r), Some(best)) = (rate, self.best_rate.get(group))
            && r < *best
        {
            return Some(RuleTripped {
                rule: &RATE,
                severity: Severity::Warning,
                evidence: vec![
                    format!("rate = {}", show(&p.rate)),
                    format!(
                        "other {} {} ports run at {best} Gb/s",
                        group.model, group.link_layer
                    ),
                ],
            });
        }
        None
    }
}
