//! The window's types: what node-probe gathered (`WatchInput`), what one GPU did (`GpuWindow`), the episodes
//! and pattern, and the report; with the few helpers every step of the reading shares.

use serde::{Deserialize, Serialize};

use super::sample::{GpuIdentity, GpuSample, Throttle};
use crate::finding::{Judged, Severity, Verdict};
use crate::workload::{Suspect, WorkloadNodeReport};

/// Seconds a window may last, and its sampling interval in milliseconds (the node bears 10 samples a second
/// of its GPUs' counters; a minute apart is still a window).
pub const SECONDS: std::ops::RangeInclusive<u32> = 1..=600;
pub const INTERVAL_MS: std::ops::RangeInclusive<u32> = 100..=60_000;
/// Samples per window at most: the probe's memory is bounded whatever the two above.
pub const MAX_SAMPLES: u32 = 3_600;
/// Kernel-log lines kept from a window (a storm is counted, not kept).
pub const MAX_KERNEL_LINES: usize = 2_000;

/// One instant of a window: every GPU's sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    /// Seconds since the window's start.
    pub t_s: f64,
    pub gpus: Vec<GpuSample>,
}

/// What node-probe gathered over a window.
#[derive(Debug, Clone, Default)]
pub struct WatchInput {
    pub started_unix: f64,
    pub seconds: u32,
    pub interval_ms: u32,
    pub ticks: Vec<Tick>,
    /// The GPUs watched (the `--gpus` selection), with what does not change.
    pub identities: Vec<GpuIdentity>,
    /// Processes on each GPU at the window's start and end (index, count), where the collector reads them.
    pub processes: Vec<(u32, usize)>,
    /// Kernel-log records that arrived during the window: seconds since the start, the record's text.
    pub kernel: Vec<(f64, String)>,
    /// More records arrived than [`MAX_KERNEL_LINES`]: how many were dropped.
    pub kernel_dropped: u64,
    /// Why the kernel log could not be followed, where it could not.
    pub kernel_unreadable: Option<String>,
    /// Ticks the sampler missed because a read took longer than the interval.
    pub missed: u32,
    /// The window ended early (the probe was asked to stop).
    pub stopped_early: bool,
}

/// The window's frame: when, how long, how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window {
    /// Unix time of the first sample.
    pub started_unix: f64,
    /// Seconds asked for.
    pub seconds: u32,
    /// Seconds the samples span.
    pub covered_s: f64,
    pub interval_ms: u32,
    pub samples: u32,
    /// Samples skipped because a read outlasted the interval.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub missed: u32,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped_early: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What kind of thing an episode is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeKind {
    /// The GPU stopped answering during the window.
    Unreadable,
    /// A kernel-log event (Xid, SXid, amdgpu) arrived during the window.
    KernelEvent,
    /// An error counter grew.
    Counter,
    /// Clocks held down by a harmful throttle.
    Throttled,
    /// At its power limit (expected under full load; a lowered limit when not loaded).
    PowerCapped,
    /// Ran slower (lower clocks) than its peers.
    Slower,
    /// Idle while its peers were busy.
    IdleAmongBusy,
    /// Busy while its peers were idle.
    BusyAmongIdle,
    /// Work came in bursts.
    Bursty,
    /// Close to its slowdown temperature.
    Hot,
    /// No GPU in use made progress (all idle or spinning).
    NoProgress,
    /// The pattern changed during the window (a stall that began mid-window).
    Onset,
}

/// One thing that happened on a GPU (or the node) during the window, in a sentence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Episode {
    pub kind: EpisodeKind,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// Seconds since the window's start.
    pub from_s: f64,
    pub to_s: f64,
    pub text: String,
    /// A stable key (`throttle.hw_slowdown`, `counter.nvlink_replay:4`, `xid.79`, ...).
    pub code: String,
}

/// A throttle's share of the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThrottleTime {
    pub reason: Throttle,
    pub seconds: f64,
    /// Separate spans of it (bursts).
    pub spans: u32,
}

/// An error counter's growth over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CounterDelta {
    pub key: String,
    pub delta: u64,
    /// Share of the growth that came while the GPU was busy (0–100).
    pub under_load_pct: u32,
}

/// Minimum, mean and maximum of a reading over the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stat {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

/// One GPU over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuWindow {
    #[serde(flatten)]
    pub identity: GpuIdentity,
    /// Pods holding it at the window's end (`namespace/pod`), where the kubelet said.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_by: Vec<String>,
    /// Processes on it (at the start or end, the larger count), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<usize>,
    /// Share of readable samples with utilization at or above 50 % (0–100).
    pub busy_pct: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_pct: Option<Stat>,
    /// Readable samples with a utilization reading: a pattern needs a few of them per GPU
    /// (`pattern::MIN_SAMPLES`). None from a probe that did not count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub util_samples: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_mhz: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temp_c: Option<Stat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_used_mib_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttled: Vec<ThrottleTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counters: Vec<CounterDelta>,
    /// Traffic over the window in MiB per second by link (`xgmi:3`), where the device counts it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_mib_s: Vec<(String, f64)>,
    /// Samples in which it could not be read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_samples: u32,
    /// Its state in one line.
    pub line: String,
    pub timeline: GpuTimeline,
}

/// The `watch` report of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WatchReport {
    pub window: Window,
    pub verdict: Verdict,
    /// The window in one sentence, most important first.
    pub headline: String,
    pub pattern: Pattern,
    /// Most severe first, then in time order.
    pub episodes: Vec<Episode>,
    pub gpus: Vec<GpuWindow>,
    /// Kernel-log lines that arrived during the window and were kept / dropped; why it was not followed.
    pub kernel_lines: usize,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub kernel_dropped: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_unreadable: Option<String>,
    /// The node at the window's end: incidents, who holds which GPU (the `workload` command's report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Box<WorkloadNodeReport>>,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Judged for WatchReport {
    fn verdict(&self) -> Option<Verdict> {
        Some(self.verdict)
    }
    fn findings(&self) -> Vec<&crate::finding::Finding> {
        self.node
            .as_deref()
            .map(Judged::findings)
            .unwrap_or_default()
    }
    fn incidents(&self) -> Option<&crate::finding::Incidents> {
        self.node.as_deref().and_then(Judged::incidents)
    }
}

/// One GPU's window in buckets of equal time (`bucket_s` each); a bucket without a readable sample is null.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuTimeline {
    pub bucket_s: f64,
    /// Mean utilization, %.
    pub util_pct: Vec<Option<u8>>,
    /// Mean SM (AMD: graphics) clock, MHz.
    pub sm_mhz: Vec<Option<u32>>,
    /// Mean power, W.
    pub power_w: Vec<Option<u32>>,
    /// Highest temperature, °C.
    pub temp_c: Vec<Option<u32>>,
    /// Share of the bucket held by a harmful throttle, %.
    pub throttled_pct: Vec<u8>,
}

/// The window's pattern, in one vocabulary for a node and a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// No GPU was in use (no holder, no process, no load).
    NothingRunning,
    /// Every GPU in use was busy and none lagged.
    Progressing,
    /// Every GPU in use idled the whole window.
    AllIdle,
    /// A few GPUs busy while the rest idled: those wait for them.
    BusyWhileOthersWait,
    /// A few GPUs idle while the rest ran.
    IdleWhileOthersRun,
    /// All busy, one or a few slower than their peers.
    SlowerPeer,
    /// Busy and idle in no pattern of the above.
    Mixed,
    /// Too few samples to say.
    Unknown,
}

impl PatternKind {
    /// Nothing about the GPUs together needs attention.
    pub fn is_steady(self) -> bool {
        matches!(
            self,
            PatternKind::NothingRunning | PatternKind::Progressing | PatternKind::Unknown
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pattern {
    pub kind: PatternKind,
    pub summary: String,
    pub gpus_in_use: u32,
    /// The GPUs the pattern points at (`GPU 3`, `node-a GPU 3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspects: Vec<String>,
    /// The pattern's own episodes (idle among busy, busy among idle, slower).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub episodes: Vec<Episode>,
    /// Across nodes: the nodes the pattern did not read, each with why (its probe failed, it took no
    /// sample, its window does not overlap the others').
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// Seconds between the first and last sample.
pub fn window_seconds(input: &WatchInput) -> f64 {
    match (input.ticks.first(), input.ticks.last()) {
        (Some(a), Some(b)) => (b.t_s - a.t_s).max(0.0),
        _ => 0.0,
    }
}

pub fn bounded(s: &str, n: usize) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= n {
        clean
    } else {
        format!("{}…", clean.chars().take(n).collect::<String>())
    }
}

/// `12 s`, `1.5 s`.
pub fn secs(s: f64) -> String {
    if (s - s.round()).abs() < 0.05 || s >= 10.0 {
        format!("{} s", s.round() as i64)
    } else {
        format!("{s:.1} s")
    }
}

/// An episode with the node it happened on.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct NodeEpisode {
    pub node: String,
    #[serde(flatten)]
    pub episode: Episode,
}

/// One node's window.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NodeWindow {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// Why the node has no window (the probe failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The GPUs watched (a workload's: the ones its pods hold), each with its readings' ranges, throttle
    /// times, counters and bounded timeline. A workload of many nodes lists only the GPUs that deviated.
    pub gpus: Vec<GpuWindow>,
    /// The GPUs not listed, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady: Option<String>,
    /// How the workload's GPUs on this node are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The node's incidents at the window's end, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
    /// The node's full report for this session (resources/read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_uri: Option<String>,
}

/// The workload's own side: what its ranks logged and its pods' states, joined to the nodes' ends.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WorkloadJoin {
    pub verdict: String,
    pub suspects: Vec<Suspect>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_examined: Vec<String>,
    pub logs: String,
}

/// A node's recorded history beside the window.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HistoryJoin {
    pub node: String,
    pub hours: u32,
    /// Where it came from and which series label named the node.
    pub source: String,
    pub verdict: Verdict,
    pub headline: String,
    /// The GPUs whose history deviates, a line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
}

/// `watch_gpus` result.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct WatchOutput {
    /// `node NAME`, or `kind/name in namespace NS`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub seconds: u32,
    pub interval_ms: u32,
    /// When the window began (RFC 3339, UTC).
    pub started_at: String,
    pub verdict: Verdict,
    /// The window in one sentence, most important first.
    pub headline: String,
    /// The pattern across every GPU watched (a workload's across its nodes).
    pub pattern: Pattern,
    /// Most severe first.
    pub episodes: Vec<NodeEpisode>,
    #[serde(skip_serializing_if = "is_zero_usize")]
    pub episodes_not_listed: usize,
    pub nodes: Vec<NodeWindow>,
    pub nodes_failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadJoin>,
    /// What the cluster's own Prometheus recorded of the node's GPUs over the last hours (the watched node,
    /// or a workload's first suspect node), where one is named or found (`get_gpu_history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryJoin>,
    /// The window as a chart (PNG: per GPU utilization, SM clock, power and temperature, throttle strips and
    /// kernel events), kept for this session (resources/read); also the image beside the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_uri: Option<String>,
    pub total_millis: u64,
    /// The chart itself, base64: the image content, not part of the structured result.
    #[serde(skip)]
    #[schemars(skip)]
    pub chart_png: Option<String>,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}
