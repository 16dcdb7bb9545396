//! The one-line verdict per GPU: what limits its clocks now and why.

use crate::analysis::{error_name, show};
use crate::facts::{GpuFacts, Reading};

use super::phrases::{power_text, sm_text, temp_text, util_text};
use super::throttle::{
    APPLICATIONS_CLOCKS_SETTING, DISPLAY_CLOCK_SETTING, GPU_IDLE, HEAVY_LOAD_PCT,
    HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, KNOWN, SW_POWER_CAP,
    SW_THERMAL_SLOWDOWN, SYNC_BOOST,
};

/// The one-line answer to "why are this GPU's clocks where they are?".
pub fn verdict(g: &GpuFacts) -> String {
    let mask = match &g.clocks_event_reasons {
        Reading::Ok(m) => *m,
        Reading::Err(e) => {
            return format!(
                "Unknown: clocks-event reasons unreadable ({}).",
                error_name(e.error)
            );
        }
    };
    let temp = g.thermal.gpu_temp_c.get();
    let slowdown = g.thermal.slowdown_threshold_c.get();
    let hot = matches!((temp, slowdown), (Some(t), Some(s)) if t >= s);
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    if mask & HW_THERMAL_SLOWDOWN != 0
        || (mask & HW_SLOWDOWN != 0 && hot && mask & HW_POWER_BRAKE_SLOWDOWN == 0)
    {
        let threshold = match (temp, slowdown) {
            (Some(t), Some(s)) if t >= s => format!("at or above its {s} C slowdown threshold"),
            (_, Some(s)) => format!("slowdown threshold {s} C"),
            _ => "slowdown threshold unreadable".into(),
        };
        return format!(
            "HW thermal slowdown (harmful): {} at {}, {threshold}; the GPU is overheating and its clocks are cut.",
            sm_text(g),
            temp_text(g)
        );
    }
    if mask & HW_POWER_BRAKE_SLOWDOWN != 0 {
        return format!(
            "HW power brake slowdown (harmful): an external power-brake signal holds {} at {} and {}, so neither heat nor the GPU's own power limit is the cause; check the platform's power supplies.",
            sm_text(g),
            temp_text(g),
            power_text(g)
        );
    }
    if mask & HW_SLOWDOWN != 0 {
        return format!(
            "HW slowdown (harmful): {} with neither the thermal nor the power-brake bit set, at {} and {}.",
            sm_text(g),
            temp_text(g),
            power_text(g)
        );
    }
    if mask & SW_THERMAL_SLOWDOWN != 0 {
        return format!(
            "SW thermal slowdown (harmful): {} at {} (max operating {} C, memory {} of max {} C); cooling is marginal.",
            sm_text(g),
            temp_text(g),
            show(&g.thermal.gpu_max_threshold_c),
            show(&g.thermal.memory_temp_c),
            show(&g.thermal.memory_max_threshold_c)
        );
    }
    if mask & SW_POWER_CAP != 0 {
        return if util.is_some_and(|u| u >= HEAVY_LOAD_PCT) {
            format!(
                "Power-capped at full load (benign): drawing {} at {}, {}.",
                power_text(g),
                util_text(g),
                sm_text(g)
            )
        } else {
            format!(
                "Power-capped at low load (informational): drawing {} at {}, {}; the power limit may be set too low (default {} mW).",
                power_text(g),
                util_text(g),
                sm_text(g),
                show(&g.power.default_limit_mw)
            )
        };
    }
    if mask & SYNC_BOOST != 0 {
        return format!(
            "Held by sync boost (informational): {} follows the slowest GPU of its group.",
            sm_text(g)
        );
    }
    if mask & APPLICATIONS_CLOCKS_SETTING != 0 {
        return format!(
            "Limited by application clocks (informational): {}; reset with nvidia-smi -rac if unintended.",
            sm_text(g)
        );
    }
    if mask & (GPU_IDLE | DISPLAY_CLOCK_SETTING) != 0 {
        return format!(
            "Idle (benign): nothing running, clocks lowered to save power ({}).",
            sm_text(g)
        );
    }
    if mask & !KNOWN != 0 {
        return format!(
            "Only unknown clocks-event bits {:#x} set (informational): {}.",
            mask & !KNOWN,
            sm_text(g)
        );
    }
    format!(
        "Clocks unrestricted (healthy): {} at {}, {}.",
        sm_text(g),
        util_text(g),
        temp_text(g)
    )
}
