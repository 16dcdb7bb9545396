//! The telemetry report's types: per GPU its temperatures against its thresholds, power, utilization,
//! memory, clocks and clocks-event reasons, with the one-line verdict.

use serde::{Deserialize, Serialize};

use crate::analysis::GpuRef;
use crate::facts::{Reading, UtilizationFacts};
use crate::finding::{Finding, Judged, distinct};

use super::throttle::ClocksEvents;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TelemetryReport {
    pub gpus: Vec<GpuTelemetry>,
    pub findings: Vec<Finding>,
}

impl Judged for TelemetryReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuTelemetry {
    #[serde(flatten)]
    pub gpu: GpuRef,
    pub temperature: Temperatures,
    pub fan_speed_pct: Reading<Vec<u32>>,
    pub power: Power,
    pub utilization: Reading<UtilizationFacts>,
    pub memory: Reading<MemoryUse>,
    pub clocks: Clocks,
    /// `P0` (max performance) .. `P12` (min).
    pub performance_state: Reading<String>,
    pub clocks_event_reasons: Reading<ClocksEvents>,
    /// Time spent in each reason since the driver loaded, in seconds (where the driver counts it).
    pub clocks_event_time_s: ClocksEventTime,
    /// One line: what limits the clocks now and why.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Temperatures {
    pub gpu_c: Reading<u32>,
    pub memory_c: Reading<u32>,
    /// HW slowdown starts here.
    pub slowdown_c: Reading<u32>,
    /// HW protection shutdown.
    pub shutdown_c: Reading<u32>,
    /// Above it the GPU may run below base clock (SW thermal slowdown).
    pub gpu_max_operating_c: Reading<u32>,
    pub memory_max_operating_c: Reading<u32>,
    /// Degrees left before HW slowdown (negative: already past it).
    pub headroom_to_slowdown_c: Reading<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Power {
    pub draw_w: Reading<f64>,
    pub limit_w: Reading<f64>,
    pub default_limit_w: Reading<f64>,
    pub max_limit_w: Reading<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryUse {
    pub total_mib: u64,
    pub used_mib: u64,
    pub free_mib: u64,
    pub used_pct: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Clocks {
    pub sm_mhz: Reading<u32>,
    pub sm_max_mhz: Reading<u32>,
    pub sm_pct_of_max: Reading<u32>,
    pub graphics_mhz: Reading<u32>,
    pub graphics_max_mhz: Reading<u32>,
    pub memory_mhz: Reading<u32>,
    pub memory_max_mhz: Reading<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEventTime {
    pub sw_power_cap: Reading<f64>,
    pub sw_thermal_slowdown: Reading<f64>,
    pub hw_thermal_slowdown: Reading<f64>,
    pub hw_power_brake_slowdown: Reading<f64>,
    pub sync_boost: Reading<f64>,
}
