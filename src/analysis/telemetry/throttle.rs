//! The clocks-event (throttle) reasons: NVML's bits, each decoded by name and classed benign,
//! informational or harmful.

use serde::{Deserialize, Serialize};

/// The decoded `nvmlDeviceGetCurrentClocksEventReasons` bitmask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEvents {
    /// Raw mask, `0x0000000000000048`.
    pub mask: String,
    pub reasons: Vec<ClocksEventReason>,
    /// The worst class among `reasons`; absent when no reason is active (clocks unrestricted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<ReasonClass>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEventReason {
    /// NVML constant name without prefix (`HwThermalSlowdown`), or `Unknown` for bits NVML 12 does not define.
    pub name: String,
    pub bit: String,
    pub class: ReasonClass,
    pub meaning: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// Expected and harmless (idle, power-capped at full load).
    Benign,
    /// Worth knowing; a configuration or group effect rather than a fault.
    Informational,
    /// Costs performance because of heat, power delivery or hardware: act on it.
    Harmful,
}

pub const GPU_IDLE: u64 = 0x1;
pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
pub const SW_POWER_CAP: u64 = 0x4;
pub const HW_SLOWDOWN: u64 = 0x8;
pub const SYNC_BOOST: u64 = 0x10;
pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;
pub(super) const KNOWN: u64 = 0x1ff;

/// Utilization at or above which power capping is the expected state of a busy GPU.
pub(super) const HEAVY_LOAD_PCT: u32 = 50;

/// Decode a clocks-event mask. `utilization` decides whether SwPowerCap is benign (busy GPU) or
/// informational (capped while mostly idle: a lowered power limit).
pub fn decode_reasons(mask: u64, utilization: Option<u32>) -> ClocksEvents {
    let table: &[(u64, &str, ReasonClass, &str)] = &[
        (
            GPU_IDLE,
            "GpuIdle",
            ReasonClass::Benign,
            "nothing is running; clocks drop to save power",
        ),
        (
            APPLICATIONS_CLOCKS_SETTING,
            "ApplicationsClocksSetting",
            ReasonClass::Informational,
            "clocks limited by the application-clocks setting (nvidia-smi -ac)",
        ),
        (
            SW_POWER_CAP,
            "SwPowerCap",
            if utilization.is_some_and(|u| u >= HEAVY_LOAD_PCT) {
                ReasonClass::Benign
            } else {
                ReasonClass::Informational
            },
            "software power scaling holds clocks to stay under the power limit",
        ),
        (
            HW_SLOWDOWN,
            "HwSlowdown",
            ReasonClass::Harmful,
            "hardware slowdown (clocks cut by half or more), set with HW thermal slowdown or HW power brake",
        ),
        (
            SYNC_BOOST,
            "SyncBoost",
            ReasonClass::Informational,
            "held to the slowest GPU of its sync-boost group",
        ),
        (
            SW_THERMAL_SLOWDOWN,
            "SwThermalSlowdown",
            ReasonClass::Harmful,
            "software thermal capping: GPU or memory above its max operating temperature",
        ),
        (
            HW_THERMAL_SLOWDOWN,
            "HwThermalSlowdown",
            ReasonClass::Harmful,
            "hardware thermal slowdown: the GPU is too hot, clocks cut by half or more",
        ),
        (
            HW_POWER_BRAKE_SLOWDOWN,
            "HwPowerBrakeSlowdown",
            ReasonClass::Harmful,
            "an external power-brake signal (power supply or platform) forces clocks down",
        ),
        (
            DISPLAY_CLOCK_SETTING,
            "DisplayClockSetting",
            ReasonClass::Benign,
            "display clock setting (Volta only)",
        ),
    ];
    let mut reasons: Vec<ClocksEventReason> = table
        .iter()
        .filter(|(bit, ..)| mask & bit != 0)
        .map(|(bit, name, class, meaning)| ClocksEventReason {
            name: (*name).to_string(),
            bit: format!("{bit:#06x}"),
            class: *class,
            meaning: (*meaning).to_string(),
        })
        .collect();
    let unknown = mask & !KNOWN;
    if unknown != 0 {
        reasons.push(ClocksEventReason {
            name: "Unknown".into(),
            bit: format!("{unknown:#x}"),
            class: ReasonClass::Informational,
            meaning: "bits this build does not know (newer driver?); not judged".into(),
        });
    }
    ClocksEvents {
        mask: format!("{mask:#018x}"),
        worst: reasons.iter().map(|r| r.class).max(),
        reasons,
    }
}

pub(super) fn reasons_evidence(mask: u64, util: Option<u32>) -> String {
    let names: Vec<String> = decode_reasons(mask, util)
        .reasons
        .into_iter()
        .map(|r| r.name)
        .collect();
    format!("clocks_event_reasons = {mask:#x} ({})", names.join("|"))
}
