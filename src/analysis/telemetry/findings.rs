//! A GPU's thermal, power and clock findings: temperatures against the GPU's own thresholds, and the
//! clocks-event reasons that cost performance.

use crate::analysis::{finding, gpu_label, show};
use crate::facts::GpuFacts;
use crate::finding::{ActionKind, Finding, Severity};

use super::phrases::{power_text, sm_text, temp_text, util_text};
use super::throttle::{
    HEAVY_LOAD_PCT, HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, KNOWN, SW_POWER_CAP,
    SW_THERMAL_SLOWDOWN, reasons_evidence,
};
use super::units::watts;

/// Thermal, power and clock findings for one GPU.
pub fn judge(g: &GpuFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    let t = &g.thermal;
    let temp = t.gpu_temp_c.get();
    let mask = g.clocks_event_reasons.get();
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    let sm_ev = format!(
        "sm_clock_mhz = {} of max {}",
        show(&g.clocks.sm_mhz),
        show(&g.clocks.sm_max_mhz)
    );
    let temp_ev = format!("gpu_temp_c = {}", show(&t.gpu_temp_c));
    let d = &g.clocks_event_durations_ns;

    // Temperature against the GPU's own thresholds (never hard-coded: they differ per SKU).
    if let (Some(tc), Some(sd)) = (temp, t.shutdown_threshold_c.get())
        && tc >= sd
    {
        out.push(finding(
            "thermal.at_shutdown",
            Severity::Critical,
            Some(g),
            format!("{who} is at {tc} C, at or above its {sd} C HW shutdown threshold."),
            vec![temp_ev.clone(), format!("shutdown_threshold_c = {sd}")],
            ActionKind::CheckCooling,
            "stop work on this GPU now and fix cooling (fans, airflow, inlet temperature, heatsink seating)".into(),
        ));
    }
    let hot = matches!((temp, t.slowdown_threshold_c.get()), (Some(a), Some(b)) if a >= b);
    let brake = mask.is_some_and(|m| m & HW_POWER_BRAKE_SLOWDOWN != 0);
    let hw_thermal = mask
        .is_some_and(|m| m & HW_THERMAL_SLOWDOWN != 0 || (m & HW_SLOWDOWN != 0 && hot && !brake));
    if let Some(m) = mask
        && hw_thermal
    {
        let mut ev = vec![
            reasons_evidence(m, util),
            temp_ev.clone(),
            format!("slowdown_threshold_c = {}", show(&t.slowdown_threshold_c)),
            sm_ev.clone(),
        ];
        if let Some(ns) = d.hw_thermal_slowdown.get() {
            ev.push(format!(
                "hw_thermal_slowdown_time_s = {:.1}",
                ns as f64 / 1e9
            ));
        }
        if t.memory_temp_c.is_ok() {
            ev.push(format!(
                "memory_temp_c = {} (max operating {})",
                show(&t.memory_temp_c),
                show(&t.memory_max_threshold_c)
            ));
        }
        out.push(finding(
            "thermal.hw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is in HW thermal slowdown (harmful): {} at {}; work on it runs at a fraction of its speed.",
                sm_text(g),
                temp_text(g)
            ),
            ev,
            ActionKind::CheckCooling,
            "check the chassis fans, airflow and inlet temperature at this GPU's slot, and whether its heatsink is seated; the slowdown lifts when the temperature falls".into(),
        ));
    } else if hot {
        out.push(finding(
            "thermal.above_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is at {}, at or above its HW slowdown threshold, though no slowdown is reported yet.",
                temp_text(g)
            ),
            vec![temp_ev.clone(), format!("slowdown_threshold_c = {}", show(&t.slowdown_threshold_c))],
            ActionKind::CheckCooling,
            "check the chassis fans, airflow and inlet temperature at this GPU's slot".into(),
        ));
    } else if let Some(m) = mask
        && m & SW_THERMAL_SLOWDOWN != 0
    {
        out.push(finding(
            "thermal.sw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is in SW thermal slowdown: above its max operating temperature, clocks capped ({}).",
                sm_text(g)
            ),
            vec![
                reasons_evidence(m, util),
                temp_ev.clone(),
                format!("gpu_max_threshold_c = {}", show(&t.gpu_max_threshold_c)),
                format!(
                    "memory_temp_c = {} (max operating {})",
                    show(&t.memory_temp_c),
                    show(&t.memory_max_threshold_c)
                ),
            ],
            ActionKind::CheckCooling,
            "improve cooling for this GPU (airflow, inlet temperature)".into(),
        ));
    }
    if let (Some(mt), Some(mmax)) = (t.memory_temp_c.get(), t.memory_max_threshold_c.get())
        && mt >= mmax
        && !hw_thermal
    {
        out.push(finding(
            "thermal.memory_hot",
            Severity::Warning,
            Some(g),
            format!(
                "{who} memory is at {mt} C, at or above its {mmax} C max operating temperature."
            ),
            vec![
                format!("memory_temp_c = {mt}"),
                format!("memory_max_threshold_c = {mmax}"),
            ],
            ActionKind::CheckCooling,
            "check airflow over the GPU; HBM above its limit triggers SW thermal slowdown".into(),
        ));
    }
    let Some(m) = mask else {
        return out;
    };
    if m & HW_POWER_BRAKE_SLOWDOWN != 0 {
        let mut ev = vec![
            reasons_evidence(m, util),
            sm_ev.clone(),
            temp_ev.clone(),
            format!(
                "power_draw_w = {} of limit {}",
                show(&watts(&g.power.usage_mw)),
                show(&watts(&g.power.enforced_limit_mw))
            ),
        ];
        if let Some(ns) = d.hw_power_brake_slowdown.get() {
            ev.push(format!(
                "hw_power_brake_slowdown_time_s = {:.1}",
                ns as f64 / 1e9
            ));
        }
        out.push(finding(
            "power.hw_brake",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is held down by the HW power-brake signal (harmful): {} at {} and {}.",
                sm_text(g),
                temp_text(g),
                power_text(g)
            ),
            ev,
            ActionKind::CheckPower,
            "check the node's power supplies (failed or missing PSU, lost redundancy), power cabling and the BMC's power-capping log; the brake is asserted by the platform, not the GPU".into(),
        ));
    } else if m & HW_SLOWDOWN != 0 && !hw_thermal {
        out.push(finding(
            "clocks.hw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} reports HW slowdown without the thermal or power-brake bit: {}.",
                sm_text(g)
            ),
            vec![reasons_evidence(m, util), sm_ev.clone(), temp_ev.clone()],
            ActionKind::Investigate,
            "sample again (HW slowdown can flicker during P-state changes); if it persists, check the BMC's thermal and power logs".into(),
        ));
    }
    if m & SW_POWER_CAP != 0 && util.is_some_and(|u| u < HEAVY_LOAD_PCT) {
        out.push(finding(
            "power.capped_at_low_load",
            Severity::Info,
            Some(g),
            format!(
                "{who} is power-capped at {}: the power limit may be set too low.",
                util_text(g)
            ),
            vec![
                reasons_evidence(m, util),
                format!(
                    "power_limit_w = {} (default {})",
                    show(&watts(&g.power.enforced_limit_mw)),
                    show(&watts(&g.power.default_limit_mw))
                ),
            ],
            ActionKind::Investigate,
            "compare the enforced power limit with the default (nvidia-smi -q -d POWER)".into(),
        ));
    }
    if m & !KNOWN != 0 {
        out.push(finding(
            "clocks.unknown_reason",
            Severity::Info,
            Some(g),
            format!(
                "{who} reports clocks-event bits {:#x} this build does not know; they are shown but not judged.",
                m & !KNOWN
            ),
            vec![format!("clocks_event_reasons = {m:#x}")],
            ActionKind::UpdateSoftware,
            "update node-probe to a release that knows the driver's newer clocks-event reasons".into(),
        ));
    }
    if let (Some(l), Some(dl)) = (
        g.power.enforced_limit_mw.get(),
        g.power.default_limit_mw.get(),
    ) && l < dl
    {
        out.push(finding(
            "power.limit_below_default",
            Severity::Info,
            Some(g),
            format!(
                "{who} runs with a power limit of {} W, below its default {} W.",
                l / 1000,
                dl / 1000
            ),
            vec![
                format!("enforced_limit_mw = {l}"),
                format!("default_limit_mw = {dl}"),
            ],
            ActionKind::Investigate,
            "confirm the lowered limit is intended (nvidia-smi -pl)".into(),
        ));
    }
    out
}
