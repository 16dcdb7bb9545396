//! Telemetry as text: one line per group of GPUs with the same clocks verdict, each reading as a range over
//! them ([`summary`]), and every reading with thresholds and clock-event times ([`details`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use gpu_diag::analysis::telemetry::{ClocksEvents, GpuTelemetry, TelemetryReport};
use gpu_diag::facts::{FieldErrorKind, Reading};

use super::gpu_ref;
use crate::mcp::render::details::{Entry, Fields, serde_name};
use crate::mcp::render::topology::gpu_set;

/// The GPUs whose telemetry NVML answered with GPU_IS_LOST (for a report without a health verdict).
pub fn lost(gpus: &[GpuTelemetry]) -> BTreeSet<u32> {
    let is_lost = |e: Option<&gpu_diag::facts::FieldError>| {
        e.is_some_and(|e| e.error == FieldErrorKind::GpuIsLost)
    };
    gpus.iter()
        .filter(|t| is_lost(t.utilization.err()) || is_lost(t.clocks.sm_mhz.err()))
        .map(|t| t.gpu.index)
        .collect()
}

/// The telemetry's details: every reading of every GPU, thresholds and clock-event times included.
pub fn details(r: &TelemetryReport) -> Entry {
    let mut f = Fields::default();
    f.list("gpus", r.gpus.iter().map(gpu_telemetry));
    Entry::Fields(f)
}

fn gpu_telemetry(t: &GpuTelemetry) -> Fields {
    let c = &t.temperature;
    let mut temperature = Fields::default();
    temperature
        .reading("gpu_c", &c.gpu_c)
        .reading("memory_c", &c.memory_c)
        .reading("slowdown_c", &c.slowdown_c)
        .reading("shutdown_c", &c.shutdown_c)
        .reading("gpu_max_operating_c", &c.gpu_max_operating_c)
        .reading("memory_max_operating_c", &c.memory_max_operating_c)
        .reading("headroom_to_slowdown_c", &c.headroom_to_slowdown_c);
    let p = &t.power;
    let mut power = Fields::default();
    power
        .decimal("draw_w", &p.draw_w)
        .decimal("limit_w", &p.limit_w)
        .decimal("default_limit_w", &p.default_limit_w)
        .decimal("max_limit_w", &p.max_limit_w);
    let utilization = Entry::of_reading(&t.utilization, |u| {
        let mut f = Fields::default();
        f.text("gpu_pct", u.gpu_pct)
            .text("memory_pct", u.memory_pct);
        Entry::Fields(f)
    });
    let memory = Entry::of_reading(&t.memory, |m| {
        let mut f = Fields::default();
        f.text("total_mib", m.total_mib)
            .text("used_mib", m.used_mib)
            .text("free_mib", m.free_mib)
            .text("used_pct", m.used_pct);
        Entry::Fields(f)
    });
    let k = &t.clocks;
    let mut clocks = Fields::default();
    clocks
        .reading("sm_mhz", &k.sm_mhz)
        .reading("sm_max_mhz", &k.sm_max_mhz)
        .reading("sm_pct_of_max", &k.sm_pct_of_max)
        .reading("graphics_mhz", &k.graphics_mhz)
        .reading("graphics_max_mhz", &k.graphics_max_mhz)
        .reading("memory_mhz", &k.memory_mhz)
        .reading("memory_max_mhz", &k.memory_max_mhz);
    let e = &t.clocks_event_time_s;
    let mut event_time = Fields::default();
    event_time
        .decimal("sw_power_cap", &e.sw_power_cap)
        .decimal("sw_thermal_slowdown", &e.sw_thermal_slowdown)
        .decimal("hw_thermal_slowdown", &e.hw_thermal_slowdown)
        .decimal("hw_power_brake_slowdown", &e.hw_power_brake_slowdown)
        .decimal("sync_boost", &e.sync_boost);
    // The verdict is left out, as the header's verdict is: the summary line shows it.
    let mut f = Fields::default();
    gpu_ref(&mut f, &t.gpu);
    f.nested("temperature", temperature)
        .values("fan_speed_pct", &t.fan_speed_pct)
        .nested("power", power)
        .entry("utilization", utilization)
        .entry("memory", memory)
        .nested("clocks", clocks)
        .reading("performance_state", &t.performance_state)
        .entry(
            "clocks_event_reasons",
            Entry::of_reading(&t.clocks_event_reasons, clocks_events),
        )
        .nested("clocks_event_time_s", event_time);
    f
}

fn clocks_events(c: &ClocksEvents) -> Entry {
    let reasons = c.reasons.iter().map(|r| {
        let mut f = Fields::default();
        f.text("name", &r.name)
            .text("bit", &r.bit)
            .text("class", serde_name(&r.class))
            .text("meaning", &r.meaning);
        f
    });
    let mut f = Fields::default();
    f.text("mask", &c.mask)
        .list("reasons", reasons)
        .optional("worst", c.worst.as_ref().map(serde_name));
    Entry::Fields(f)
}

/// `a` or `a-b` over the values read; `?` when none was.
fn span(values: impl Iterator<Item = Option<u64>>) -> String {
    let read: Vec<u64> = values.flatten().collect();
    match (read.iter().min(), read.iter().max()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "?".to_string(),
    }
}

fn int<T: Copy + Into<u64>>(r: &Reading<T>) -> Option<u64> {
    r.get().map(Into::into)
}

/// The part of a clocks verdict before its figures (`Clocks unrestricted (healthy)`).
fn verdict_class(v: &str) -> &str {
    v.split_once(": ").map_or(v, |(c, _)| c)
}

/// Telemetry, one line per group of GPUs with the same clocks verdict and model limits; `lost` GPUs (NVML
/// answers GPU_IS_LOST or has no handle) in one line of words.
pub fn summary(gpus: &[GpuTelemetry], lost: &BTreeSet<u32>, out: &mut String) {
    let mut groups: Vec<(String, Vec<&GpuTelemetry>)> = Vec::new();
    for t in gpus.iter().filter(|t| !lost.contains(&t.gpu.index)) {
        let key = format!(
            "{}|{:?}|{:?}|{:?}",
            verdict_class(&t.verdict),
            t.clocks.sm_max_mhz.get(),
            t.power.limit_w.get().map(|w| w.round() as u64),
            t.memory.ok().map(|m| m.total_mib)
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(t),
            None => groups.push((key, vec![t])),
        }
    }
    for (_, g) in &groups {
        let idx: Vec<u32> = g.iter().map(|t| t.gpu.index).collect();
        let first = g[0];
        let draw = span(
            g.iter()
                .map(|t| t.power.draw_w.get().map(|w| w.round() as u64)),
        );
        let limit = span(
            g.iter()
                .map(|t| t.power.limit_w.get().map(|w| w.round() as u64)),
        );
        let mem = match first.memory.ok() {
            Some(m) => format!(
                "mem {}/{} MiB",
                span(g.iter().map(|t| t.memory.ok().map(|m| m.used_mib))),
                m.total_mib
            ),
            None => "mem ?".to_string(),
        };
        let verdict = if g.len() == 1 {
            first.verdict.clone()
        } else {
            verdict_class(&first.verdict).to_string()
        };
        let _ = writeln!(
            out,
            "  {}: {} C, {draw}/{limit} W, SM {}/{} MHz, util {}%, {mem}; {verdict}",
            gpu_set(&idx),
            span(g.iter().map(|t| int(&t.temperature.gpu_c))),
            span(g.iter().map(|t| int(&t.clocks.sm_mhz))),
            span(g.iter().map(|t| int(&t.clocks.sm_max_mhz))),
            span(
                g.iter()
                    .map(|t| t.utilization.ok().map(|u| u64::from(u.gpu_pct)))
            ),
        );
    }
    let gone: Vec<u32> = gpus
        .iter()
        .map(|t| t.gpu.index)
        .filter(|i| lost.contains(i))
        .collect();
    if !gone.is_empty() {
        let _ = writeln!(
            out,
            "  {}: lost (NVML answers GPU_IS_LOST): no readings",
            gpu_set(&gone)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_values_only() {
        assert_eq!(span([Some(58), Some(60), None].into_iter()), "58-60");
        assert_eq!(span([Some(7), Some(7)].into_iter()), "7");
        assert_eq!(span([None, None].into_iter()), "?");
        assert_eq!(
            verdict_class("Clocks unrestricted (healthy): SM 1980 of 1980 MHz"),
            "Clocks unrestricted (healthy)"
        );
    }
}
