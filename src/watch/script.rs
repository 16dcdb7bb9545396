//! Plays a simulated node's [`Timeline`]: the node's facts at any second of a window, so `node-probe watch
//! --simulate` samples a scenario as it samples NVML or sysfs, and the analysis cannot tell them apart.

use crate::analysis::telemetry::{
    HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, SW_POWER_CAP, SW_THERMAL_SLOWDOWN,
};
use crate::facts::{
    AmdGpuMetricsFacts, AmdRasBlockFacts, AmdThrottleSampleFacts, FieldError, FieldErrorKind,
    GpuFacts, GpuVendor, NodeFacts, Reading, Segment, Throttle, Timeline,
};

/// Segments and kernel lines a timeline may hold.
pub const MAX_SEGMENTS: usize = 512;
pub const MAX_LINES: usize = 4_096;

const COUNTER_KINDS: &[&str] = &[
    "ecc_corrected",
    "ecc_uncorrected",
    "pcie_replay",
    "nvlink_replay",
    "nvlink_recovery",
    "nvlink_crc",
    "ras_ue",
    "ras_ce",
    "ras_de",
    "xgmi_errors",
];

/// A timeline's mistakes, each in words a scenario's author can fix.
pub fn validate(t: &Timeline, facts: &NodeFacts) -> Result<(), String> {
    if t.segments.len() > MAX_SEGMENTS || t.kernel_log.len() > MAX_LINES {
        return Err(format!(
            "a timeline holds at most {MAX_SEGMENTS} segments and {MAX_LINES} kernel-log lines"
        ));
    }
    for (i, s) in t.segments.iter().enumerate() {
        let at = |m: String| format!("timeline segment {i}: {m}");
        if !s.from_s.is_finite() || s.from_s < 0.0 {
            return Err(at("from_s must be a number of seconds, 0 or more".into()));
        }
        if let Some(to) = s.to_s
            && !(to.is_finite() && to > s.from_s)
        {
            return Err(at("to_s must be after from_s".into()));
        }
        match (s.every_s, s.on_s) {
            (None, None) => {}
            (Some(e), Some(o)) if e.is_finite() && o.is_finite() && e > 0.0 && o > 0.0 && o < e => {
            }
            _ => {
                return Err(at(
                    "every_s and on_s go together, with 0 < on_s < every_s".into()
                ));
            }
        }
        for g in s.gpus.iter().flatten() {
            if !facts.gpus.iter().any(|f| f.index == *g) {
                return Err(at(format!("the node has no GPU {g}")));
            }
        }
        for (k, rate) in &s.counters {
            let kind = k.split(':').next().unwrap_or(k);
            if !COUNTER_KINDS.contains(&kind) {
                return Err(at(format!(
                    "unknown counter `{k}` (known: {})",
                    COUNTER_KINDS.join(", ")
                )));
            }
            if !(rate.is_finite() && *rate >= 0.0) {
                return Err(at(format!(
                    "counter `{k}` needs a rate of 0 or more per second"
                )));
            }
        }
        if s.util_pct.is_some_and(|u| u > 100) || s.memory_util_pct.is_some_and(|u| u > 100) {
            return Err(at("utilization is a percentage, 0 to 100".into()));
        }
        if s.power_w.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
            return Err(at("power_w must be 0 or more".into()));
        }
    }
    for l in &t.kernel_log {
        if !(l.at_s.is_finite() && l.at_s >= 0.0) {
            return Err("a timeline kernel-log line needs at_s, 0 or more seconds".into());
        }
    }
    Ok(())
}

/// Seconds of `[0, t)` the segment is on.
fn on_time(s: &Segment, t: f64) -> f64 {
    let end = s.to_s.map_or(t, |to| to.min(t));
    if end <= s.from_s {
        return 0.0;
    }
    let span = end - s.from_s;
    match (s.every_s, s.on_s) {
        (Some(e), Some(o)) => {
            let whole = (span / e).floor();
            whole * o + (span - whole * e).min(o)
        }
        _ => span,
    }
}

/// The segment is on at `t`.
fn on_at(s: &Segment, t: f64) -> bool {
    if t < s.from_s || s.to_s.is_some_and(|to| t >= to) {
        return false;
    }
    match (s.every_s, s.on_s) {
        (Some(e), Some(o)) => (t - s.from_s) % e < o,
        _ => true,
    }
}

fn applies(s: &Segment, g: &GpuFacts) -> bool {
    s.gpus.as_ref().is_none_or(|v| v.contains(&g.index))
}

/// The node's facts at `t` seconds into the window.
pub fn facts_at(base: &NodeFacts, t: f64) -> NodeFacts {
    let mut f = base.clone();
    let Some(tl) = base.timeline.as_ref() else {
        return f;
    };
    f.timeline = None;
    for g in &mut f.gpus {
        let mine: Vec<&Segment> = tl.segments.iter().filter(|s| applies(s, g)).collect();
        let mut active: Vec<Throttle> = Vec::new();
        for s in mine.iter().filter(|s| on_at(s, t)) {
            set_readings(g, s);
            if let Some(th) = &s.throttle {
                active = th.clone();
            }
            if let Some(why) = &s.unreadable {
                g.handle_error = Some(FieldError::with_message(
                    FieldErrorKind::GpuIsLost,
                    why.clone(),
                ));
            }
        }
        throttles(g, &mine, &active, t);
        for s in &mine {
            let on = on_time(s, t);
            for (k, rate) in &s.counters {
                add_counter(g, k, (rate * on).round() as u64);
            }
        }
    }
    f
}

fn set_readings(g: &mut GpuFacts, s: &Segment) {
    if s.util_pct.is_some() || s.memory_util_pct.is_some() {
        let mut u = g.utilization.ok().copied().unwrap_or_default();
        if let Some(v) = s.util_pct {
            u.gpu_pct = v;
        }
        if let Some(v) = s.memory_util_pct {
            u.memory_pct = v;
        }
        g.utilization = Reading::Ok(u);
    }
    if let Some(v) = s.sm_mhz {
        g.clocks.sm_mhz = Reading::Ok(v);
        g.clocks.graphics_mhz = Reading::Ok(v);
    }
    if let Some(v) = s.power_w {
        g.power.usage_mw = Reading::Ok((v * 1000.0).round() as u32);
    }
    if let Some(v) = s.temp_c {
        g.thermal.gpu_temp_c = Reading::Ok(v);
        if let Some(a) = g.amd.as_mut() {
            a.edge_temp_c = Reading::Ok(v);
        }
    }
}

fn nvidia_bit(t: Throttle) -> u64 {
    match t {
        Throttle::PowerCap => SW_POWER_CAP,
        Throttle::HwSlowdown => HW_SLOWDOWN,
        Throttle::HwThermal => HW_THERMAL_SLOWDOWN,
        Throttle::SwThermal => SW_THERMAL_SLOWDOWN,
        Throttle::PowerBrake => HW_POWER_BRAKE_SLOWDOWN,
        _ => 0,
    }
}

/// The throttles at `t`: NVIDIA's mask and cumulative durations (ns), AMD's residency accumulators (one
/// count per millisecond, as the accumulation counter).
fn throttles(g: &mut GpuFacts, segs: &[&Segment], active: &[Throttle], t: f64) {
    let time_in = |r: Throttle| -> f64 {
        segs.iter()
            .filter(|s| s.throttle.as_ref().is_some_and(|v| v.contains(&r)))
            .map(|s| on_time(s, t))
            .sum()
    };
    match g.vendor {
        GpuVendor::Nvidia => {
            if segs.iter().all(|s| s.throttle.is_none()) {
                return;
            }
            let base = g.clocks_event_reasons.ok().copied().unwrap_or(0)
                & !(SW_POWER_CAP
                    | HW_SLOWDOWN
                    | HW_THERMAL_SLOWDOWN
                    | SW_THERMAL_SLOWDOWN
                    | HW_POWER_BRAKE_SLOWDOWN);
            let mask = active.iter().fold(base, |m, r| m | nvidia_bit(*r));
            g.clocks_event_reasons = Reading::Ok(mask);
            let ns = |r: Throttle| Reading::Ok((time_in(r) * 1e9) as u64);
            let d = &mut g.clocks_event_durations_ns;
            d.sw_power_cap = ns(Throttle::PowerCap);
            d.sw_thermal_slowdown = ns(Throttle::SwThermal);
            d.hw_thermal_slowdown = ns(Throttle::HwThermal);
            d.hw_power_brake_slowdown = ns(Throttle::PowerBrake);
        }
        // Gaudi's throttles are not sampled (its sysfs has no throttle reasons).
        GpuVendor::Intel | GpuVendor::Neuron => {}
        GpuVendor::Amd => {
            let Some(a) = g.amd.as_mut() else { return };
            let ms = |r: Throttle| Some((time_in(r) * 1000.0) as u64);
            let sample = AmdThrottleSampleFacts {
                accumulation_counter: Some((t * 1000.0) as u64),
                prochot: ms(Throttle::Prochot),
                ppt: ms(Throttle::PowerCap),
                socket_thermal: ms(Throttle::SocketThermal),
                vr_thermal: ms(Throttle::VrThermal),
                hbm_thermal: ms(Throttle::HbmThermal),
            };
            let mut m = a
                .metrics
                .ok()
                .cloned()
                .unwrap_or_else(|| AmdGpuMetricsFacts {
                    version: "1.5".into(),
                    ..AmdGpuMetricsFacts::default()
                });
            m.throttle_samples = vec![sample];
            a.metrics = Reading::Ok(m);
        }
    }
}

fn add_counter(g: &mut GpuFacts, key: &str, n: u64) {
    if n == 0 {
        return;
    }
    let (kind, part) = key
        .split_once(':')
        .map_or((key, None), |(k, p)| (k, Some(p)));
    let bump = |r: &mut Reading<u64>| *r = Reading::Ok(r.ok().copied().unwrap_or(0) + n);
    match kind {
        "ecc_corrected" => bump(&mut g.ecc.volatile_corrected),
        "ecc_uncorrected" => bump(&mut g.ecc.volatile_uncorrected),
        "pcie_replay" => match g.amd.as_mut().and_then(|a| match &mut a.metrics {
            Reading::Ok(m) => Some(m),
            _ => None,
        }) {
            Some(m) => m.pcie_replay_count_acc = Some(m.pcie_replay_count_acc.unwrap_or(0) + n),
            None => bump(&mut g.pcie.replay_counter),
        },
        "nvlink_replay" | "nvlink_recovery" | "nvlink_crc" => {
            let link: u32 = part.and_then(|p| p.parse().ok()).unwrap_or(0);
            if let Some(l) = g.nvlinks.iter_mut().find(|l| l.link == link) {
                match kind {
                    "nvlink_replay" => bump(&mut l.replay_errors),
                    "nvlink_recovery" => bump(&mut l.recovery_errors),
                    _ => bump(&mut l.crc_flit_errors),
                }
            }
        }
        "ras_ue" | "ras_ce" | "ras_de" => {
            let Some(a) = g.amd.as_mut() else { return };
            let Reading::Ok(ras) = &mut a.ras else { return };
            let block = part.unwrap_or("umc").to_string();
            let b = match ras.blocks.iter().position(|b| b.block == block) {
                Some(i) => &mut ras.blocks[i],
                None => {
                    ras.blocks.push(AmdRasBlockFacts {
                        block,
                        layout: "err_count".into(),
                        ..AmdRasBlockFacts::default()
                    });
                    ras.blocks.last_mut().expect("just pushed")
                }
            };
            let slot = match kind {
                "ras_ue" => &mut b.ue,
                "ras_ce" => &mut b.ce,
                _ => &mut b.de,
            };
            *slot = Some(slot.unwrap_or(0) + n);
        }
        "xgmi_errors" => {
            if let Some(a) = g.amd.as_mut()
                && let Reading::Ok(x) = &mut a.xgmi
            {
                bump(&mut x.error_count);
            }
        }
        _ => {}
    }
}

/// The timeline's kernel-log lines in `[from, to)` seconds.
pub fn lines_between(t: &Timeline, from: f64, to: f64) -> impl Iterator<Item = (f64, &str)> {
    t.kernel_log
        .iter()
        .filter(move |l| l.at_s >= from && l.at_s < to)
        .map(|l| (l.at_s, l.line.as_str()))
}
