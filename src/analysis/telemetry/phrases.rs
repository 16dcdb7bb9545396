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
        (Some(u), Some(l)) => format!("{} of {} W", u / 1000, l / 1000),
        (Some(u), None) => format!("{} W", u / 1000),
        _ => "unreadable power".into(),
    }
}

pub(super) fn util_text(g: &GpuFacts) -> String {
    match g.utilization.ok() {
        Some(u) => format!("{}% utilization", u.gpu_pct),
        None => format!("utilization {}", show(&g.utilization.map(|u| u.gpu_pct))),
    }
}
