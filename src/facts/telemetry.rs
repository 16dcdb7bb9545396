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
