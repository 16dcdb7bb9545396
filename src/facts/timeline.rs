//! A simulated node's values over time: what `node-probe watch --simulate` plays (`crate::watch::script`).
//! Real nodes have none; a scenario or fixture may carry one, so a time script goes through the same
//! sampling and analysis as a real node's GPUs.
//!
//! Times are seconds since the window's start. A segment sets readings while it lasts (`every_s`/`on_s`
//! make it repeat: on for `on_s` of every `every_s`) and makes counters grow at a rate; the last segment
//! that covers an instant wins for a reading, and rates add up.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::telemetry::Throttle;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    #[serde(default)]
    pub segments: Vec<Segment>,
    /// Kernel-log records that appear during the window, each at its time.
    #[serde(default)]
    pub kernel_log: Vec<TimedLine>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The GPUs (indices) it applies to; absent: every GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Vec<u32>>,
    #[serde(default)]
    pub from_s: f64,
    /// Absent: to the end of any window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_s: Option<f64>,
    /// Repeats every this many seconds from `from_s`, on for `on_s` of each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_pct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_util_pct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_mhz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<u32>,
    /// The throttles active while it lasts (NVIDIA: the clocks-event mask and duration counters; AMD: the
    /// residency accumulators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Vec<Throttle>>,
    /// Counters growing at this many per second while it lasts: `ecc_corrected`, `ecc_uncorrected`,
    /// `pcie_replay`, `nvlink_replay:LINK`, `nvlink_recovery:LINK`, `nvlink_crc:LINK`, `ras_ue:BLOCK`,
    /// `ras_ce:BLOCK`, `xgmi_errors`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, f64>,
    /// The GPU stops answering (NVML's GPU_IS_LOST, a sysfs read failing) while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimedLine {
    pub at_s: f64,
    pub line: String,
}
