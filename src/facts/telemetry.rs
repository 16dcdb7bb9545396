//! A GPU's telemetry: temperatures and their thresholds, power, utilization, clocks and the time spent in
//! each clocks-event reason.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThermalFacts {
    #[serde(default)]
    pub gpu_temp_c: Reading<u32>,
    #[serde(default)]
    pub memory_temp_c: Reading<u32>,
    #[serde(default)]
    pub shutdown_threshold_c: Reading<u32>,
    #[serde(default)]
    pub slowdown_threshold_c: Reading<u32>,
    /// "Max operating" (GPU_MAX): above it the GPU may throttle below base clock.
    #[serde(default)]
    pub gpu_max_threshold_c: Reading<u32>,
    #[serde(default)]
    pub memory_max_threshold_c: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerFacts {
    #[serde(default)]
    pub usage_mw: Reading<u32>,
    #[serde(default)]
    pub enforced_limit_mw: Reading<u32>,
    #[serde(default)]
    pub default_limit_mw: Reading<u32>,
    #[serde(default)]
    pub max_limit_mw: Reading<u32>,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct UtilizationFacts {
    pub gpu_pct: u32,
    pub memory_pct: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockFacts {
    #[serde(default)]
    pub sm_mhz: Reading<u32>,
    #[serde(default)]
    pub sm_max_mhz: Reading<u32>,
    #[serde(default)]
    pub graphics_mhz: Reading<u32>,
    #[serde(default)]
    pub graphics_max_mhz: Reading<u32>,
    #[serde(default)]
    pub memory_mhz: Reading<u32>,
    #[serde(default)]
    pub memory_max_mhz: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockEventDurations {
    #[serde(default)]
    pub sw_power_cap: Reading<u64>,
    #[serde(default)]
    pub sw_thermal_slowdown: Reading<u64>,
    #[serde(default)]
    pub hw_thermal_slowdown: Reading<u64>,
    #[serde(default)]
    pub hw_power_brake_slowdown: Reading<u64>,
    #[serde(default)]
    pub sync_boost: Reading<u64>,
}

/// Why a GPU's clocks were held down, in one vocabulary for both vendors.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Throttle {
    /// NVIDIA SwPowerCap, AMD PPT: the board's power limit. Expected on a GPU at full load.
    PowerCap,
    /// NVIDIA HwSlowdown: the board's external slowdown signal (power supply, thermal or brake).
    HwSlowdown,
    /// NVIDIA HwThermalSlowdown.
    HwThermal,
    /// NVIDIA SwThermalSlowdown.
    SwThermal,
    /// NVIDIA HwPowerBrakeSlowdown: the power-brake line asserted by the system.
    PowerBrake,
    /// AMD PROCHOT residency: the processor-hot line.
    Prochot,
    /// AMD socket thermal limit residency.
    SocketThermal,
    /// AMD voltage-regulator thermal limit residency.
    VrThermal,
    /// AMD HBM thermal limit residency.
    HbmThermal,
}

impl Throttle {
    /// Costs throughput because of heat, power delivery or hardware (the power cap of a busy GPU does not).
    pub fn harmful(self) -> bool {
        !matches!(self, Throttle::PowerCap)
    }

    /// How the vendor's tools name it.
    pub fn label(self) -> &'static str {
        match self {
            Throttle::PowerCap => "power cap",
            Throttle::HwSlowdown => "HW slowdown",
            Throttle::HwThermal => "HW thermal slowdown",
            Throttle::SwThermal => "SW thermal slowdown",
            Throttle::PowerBrake => "HW power brake",
            Throttle::Prochot => "PROCHOT",
            Throttle::SocketThermal => "socket thermal limit",
            Throttle::VrThermal => "VR thermal limit",
            Throttle::HbmThermal => "HBM thermal limit",
        }
    }

    pub const ALL: [Throttle; 9] = [
        Throttle::PowerCap,
        Throttle::HwSlowdown,
        Throttle::HwThermal,
        Throttle::SwThermal,
        Throttle::PowerBrake,
        Throttle::Prochot,
        Throttle::SocketThermal,
        Throttle::VrThermal,
        Throttle::HbmThermal,
    ];
}
