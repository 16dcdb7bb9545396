//! `telemetry`: temperatures against the GPU's own thresholds, power, utilization, memory, clocks, and the
//! clocks-event (throttle) reasons decoded by name and classed benign / informational / harmful, with a
//! one-line verdict per GPU that says why its clocks are where they are.
//!
//! This file assembles the report; each part has its own file: `report.rs` (the report's types),
//! `throttle.rs` (the clocks-event reasons decoded and classed), `verdict.rs` (the one-line verdict),
//! `findings.rs` (thermal, power and clock findings), `phrases.rs` (how readings are written in both) and
//! `units.rs` (watts, seconds, percentages).

mod findings;
mod phrases;
mod report;
mod throttle;
mod units;
mod verdict;

use crate::facts::{GpuFacts, NodeFacts, Reading};
use crate::finding::Finding;
use crate::options::AnalysisOptions;

use super::{GpuRef, mib};

use units::{pct, seconds, watts};

pub use findings::judge;
pub use report::{
    Clocks, ClocksEventTime, GpuTelemetry, MemoryUse, Power, TelemetryReport, Temperatures,
};
pub use throttle::{
    APPLICATIONS_CLOCKS_SETTING, ClocksEventReason, ClocksEvents, DISPLAY_CLOCK_SETTING, GPU_IDLE,
    HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, ReasonClass, SW_POWER_CAP,
    SW_THERMAL_SLOWDOWN, SYNC_BOOST, decode_reasons,
};
pub use verdict::verdict;

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> TelemetryReport {
    let mut report = TelemetryReport::default();
    for g in &facts.gpus {
        let (mut entry, mut findings) = gpu_telemetry(g);
        // A vendor's own words where it has them (AMD's throttle residencies, a Gaudi's status).
        if let Some(v) = crate::analysis::vendors::of(g.vendor).clocks_line(facts, g) {
            entry.verdict = v;
        }
        report.gpus.push(entry);
        report.findings.append(&mut findings);
    }
    report
}

/// One GPU's telemetry and the findings its thermal, power and clock facts support.
pub fn gpu_telemetry(g: &GpuFacts) -> (GpuTelemetry, Vec<Finding>) {
    let t = &g.thermal;
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    let events = g.clocks_event_reasons.map(|m| decode_reasons(*m, util));
    let sm = g.clocks.sm_mhz.get();
    let sm_max = g.clocks.sm_max_mhz.get();
    let sm_pct = match (sm, sm_max) {
        (Some(a), Some(b)) => pct(a, b).map_or(Reading::not_supported(), Reading::Ok),
        _ => Reading::Err(
            g.clocks
                .sm_mhz
                .err()
                .or(g.clocks.sm_max_mhz.err())
                .cloned()
                .unwrap_or_else(|| {
                    crate::facts::FieldError::new(crate::facts::FieldErrorKind::Unknown)
                }),
        ),
    };
    let headroom = match (t.gpu_temp_c.get(), t.slowdown_threshold_c.get()) {
        (Some(temp), Some(slow)) => Reading::Ok(i64::from(slow) - i64::from(temp)),
        _ => Reading::Err(
            t.gpu_temp_c
                .err()
                .or(t.slowdown_threshold_c.err())
                .cloned()
                .unwrap_or_else(|| {
                    crate::facts::FieldError::new(crate::facts::FieldErrorKind::Unknown)
                }),
        ),
    };
    let findings = judge(g);
    let entry = GpuTelemetry {
        gpu: GpuRef::of(g),
        temperature: Temperatures {
            gpu_c: t.gpu_temp_c.clone(),
            memory_c: t.memory_temp_c.clone(),
            slowdown_c: t.slowdown_threshold_c.clone(),
            shutdown_c: t.shutdown_threshold_c.clone(),
            gpu_max_operating_c: t.gpu_max_threshold_c.clone(),
            memory_max_operating_c: t.memory_max_threshold_c.clone(),
            headroom_to_slowdown_c: headroom,
        },
        fan_speed_pct: g.fan_speed_pct.clone(),
        power: Power {
            draw_w: watts(&g.power.usage_mw),
            limit_w: watts(&g.power.enforced_limit_mw),
            default_limit_w: watts(&g.power.default_limit_mw),
            max_limit_w: watts(&g.power.max_limit_mw),
        },
        utilization: g.utilization.clone(),
        memory: g.memory.map(|m| MemoryUse {
            total_mib: mib(m.total_bytes),
            used_mib: mib(m.used_bytes),
            free_mib: mib(m.free_bytes),
            used_pct: pct(
                (m.used_bytes / 1024 / 1024) as u32,
                (m.total_bytes / 1024 / 1024) as u32,
            )
            .unwrap_or(0),
        }),
        clocks: Clocks {
            sm_mhz: g.clocks.sm_mhz.clone(),
            sm_max_mhz: g.clocks.sm_max_mhz.clone(),
            sm_pct_of_max: sm_pct,
            graphics_mhz: g.clocks.graphics_mhz.clone(),
            graphics_max_mhz: g.clocks.graphics_max_mhz.clone(),
            memory_mhz: g.clocks.memory_mhz.clone(),
            memory_max_mhz: g.clocks.memory_max_mhz.clone(),
        },
        performance_state: g.performance_state.map(|p| format!("P{p}")),
        clocks_event_time_s: ClocksEventTime {
            sw_power_cap: seconds(&g.clocks_event_durations_ns.sw_power_cap),
            sw_thermal_slowdown: seconds(&g.clocks_event_durations_ns.sw_thermal_slowdown),
            hw_thermal_slowdown: seconds(&g.clocks_event_durations_ns.hw_thermal_slowdown),
            hw_power_brake_slowdown: seconds(&g.clocks_event_durations_ns.hw_power_brake_slowdown),
            sync_boost: seconds(&g.clocks_event_durations_ns.sync_boost),
        },
        verdict: verdict(g),
        clocks_event_reasons: events,
    };
    (entry, findings)
}

#[cfg(test)]
mod tests;
