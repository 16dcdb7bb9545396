//! How a GPU's clocks, temperature, power and utilization are written in its verdict and findings.

use crate::analysis::show;
use crate::facts::GpuFacts;

use super::units::pct;

/// `SM 825 of 1755 MHz (47%)`.
pub(super) fn sm_text(g: &GpuFacts) -> String {
    match (g.clocks.sm_mhz.get(), g.clocks.sm_max_mhz.get()) {
        (Some(a), Some(b)) => match pct(a, b) {
            Some(p) => format!("SM {a} of {b} MHz ({p}%)"),
            None => format!("SM {a} MHz"),
        },
        (Some(a), None) => format!("SM {a} MHz"),
        _ => "SM clock unreadable".into(),
    }
}

pub(super) fn temp_text(g: &GpuFacts) -> String {
    match g.thermal.gpu_temp_c.get() {
        Some(t) => format!("{t} C"),
        None => "an unreadable temperature".into(),
    }
}

pub(super) fn power_text(g: &GpuFacts) -> String {
    match (g.power.usage_mw.get(), g.power.enforced_limit_mw.get()) {
        // Rounded as the answer's per-GPU line rounds the same reading (seen on an H200: "689/700 W;
        // ... drawing 688 of 700 W" when both truncated and rounded 688.6 W were printed).
        (Some(u), Some(l)) => format!("{} of {} W", mw_to_w(u), mw_to_w(l)),
        (Some(u), None) => format!("{} W", mw_to_w(u)),
        _ => "unreadable power".into(),
    }
}

fn mw_to_w(mw: u32) -> u32 {
    mw.saturating_add(500) / 1000
}

pub(super) fn util_text(g: &GpuFacts) -> String {
    match g.utilization.ok() {
        Some(u) => format!("{}% utilization", u.gpu_pct),
        None => format!("utilization {}", show(&g.utilization.map(|u| u.gpu_pct))),
    }
}

#[cfg(test)]
mod tests {
    use super::mw_to_w;

    #[test]
    fn watts_round_as_the_per_gpu_line_does() {
        assert_eq!(mw_to_w(688_600), 689);
        assert_eq!(mw_to_w(688_499), 688);
        assert_eq!(mw_to_w(0), 0);
        assert_eq!(mw_to_w(u32::MAX), u32::MAX / 1000);
    }
}
