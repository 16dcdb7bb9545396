//! The NIC section's one summary line.

use std::collections::BTreeMap;

use crate::analysis::show;

use super::contract::NicPort;

/// Deviating ports named in the summary line.
const SUMMARY_PORTS: usize = 4;

/// `8 ports: 8 x InfiniBand 400 Gb/s (MT4129); all up, no error counts` or the deviating ports.
pub(super) fn summarize(ports: &[NicPort]) -> String {
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
