//! What the history of a node's GPUs says: [`NodeHistory`], per GPU its throttling, Xids, counters, power,
//! utilization and the gaps in its data, each GPU with a verdict and one line.

use serde::{Deserialize, Serialize};

use crate::finding::{ActionKind, Severity, Verdict};

use super::signals::Exporter;

/// The window read, as the query asked for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowSpan {
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    pub hours: f64,
    /// Seconds between the points read: shorter throttle bursts are sampled, not measured.
    pub step_secs: u64,
}

/// A stretch of the window: a throttle episode, or a gap in the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Episode {
    pub start: String,
    pub end: String,
    pub seconds: u64,
    /// What held then (`HwThermalSlowdown`, `no data`).
    pub what: String,
}

/// The share of a GPU's time with data that one throttle reason held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThrottleShare {
    /// NVML's reason name (`HwThermalSlowdown`) or AMD's violation (`SocketThermal`).
    pub reason: String,
    pub harmful: bool,
    /// Of the time with data, 0 to 1.
    pub fraction: f64,
    pub seconds: u64,
}

/// An Xid the GPU's last-Xid gauge changed to within the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidSeen {
    pub code: u32,
    /// The catalog's mnemonic, when the code is in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnemonic: Option<String>,
    /// The catalog's description (`GPU has fallen off the bus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// As every tool names it (`Xid 48 ROBUST_CHANNEL_GPU_ECC_DBE (Double Bit ECC Error)`).
    pub title: String,
    /// The kernel log's judgment of the code, and what the code alone does not tell.
    pub meaning: String,
    /// The kernel log's action for the code.
    pub action: ActionKind,
    pub severity: Severity,
    /// When the gauge first showed it.
    pub first_seen: String,
    /// How many times the gauge changed to it (the same code twice in a row reads as once).
    pub times: u32,
    /// The gauge already held it when the window began: an Xid from before the window.
    pub before_window: bool,
}

/// How much a counter grew within the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterGrowth {
    pub counter: String,
    pub increase: f64,
    /// The counter's last value.
    pub last: f64,
    /// When it first grew.
    pub first_increase: String,
    pub severity: Severity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerSummary {
    pub mean_watts: f64,
    pub max_watts: f64,
    /// The power limit last read, where exported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_watts: Option<f64>,
    /// Of the time with power readings, the share at 97 % of the limit or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_limit_fraction: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Range {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

/// One GPU's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuHistory {
    /// The exporter's GPU index (`gpu`, `gpu_id`) as it gave it, cleaned.
    pub gpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub exporter: Exporter,
    pub verdict: Verdict,
    /// The verdict with its evidence, in one line.
    pub line: String,
    /// Of the window, the share with data, 0 to 1.
    pub coverage: f64,
    /// Which of the judged signals the exporter gave for this GPU (`throttle`, `xid`, `ecc`, `power_limit`,
    /// `pending_rows`):
    /// one missing is unknown, never fine.
    pub read: Vec<String>,
    /// Where this GPU had no data while others of the node had (the node's own gaps are the node's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Episode>,
    /// Every reason that held at some point, harmful first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle: Vec<ThrottleShare>,
    /// Harmful throttling, episode by episode (the longest 8, in time order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_episodes: Vec<Episode>,
    /// Harmful throttling episodes not listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttle_episodes_left_out: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xids: Vec<XidSeen>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<CounterGrowth>,
    /// The row-remap failure gauge was set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub row_remap_failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerSummary>,
    /// Percent busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<Range>,
    /// °C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<Range>,
    /// MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_clock: Option<Range>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A node's GPUs over the window, as the cluster's own metrics recorded them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeHistory {
    pub node: String,
    pub window: WindowSpan,
    /// Where the series came from (the Prometheus URL or the Service read through the API server).
    pub source: String,
    /// The series label that carried the node's name (`Hostname`, `node`, `instance`, `hostname`).
    pub matched_label: String,
    pub exporters: Vec<Exporter>,
    pub verdict: Verdict,
    /// The node's verdict with what leads it, in one line.
    pub headline: String,
    /// The GPUs that are alike and fine, in one line (`GPU 0-2, 4-7: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<String>,
    /// Where no GPU of the node had data (the exporter down, or not scraped): never read as healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Episode>,
    /// Of the window, the share with data from any GPU.
    pub coverage: f64,
    /// Signals no GPU had, with how to export them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_exported: Vec<String>,
    pub gpus: Vec<GpuHistory>,
    /// What was left out to keep the answer bounded (series, GPUs, points), in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}
