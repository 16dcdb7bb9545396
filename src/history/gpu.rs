//! One GPU's window judged: the share of its time each throttle reason held and the harmful episodes,
//! the Xids its last-Xid gauge changed to, how its error counters grew, power against its limit,
//! utilization, temperature and clocks, and where it had no data.

use std::collections::BTreeSet;

use crate::analysis::telemetry::{
    APPLICATIONS_CLOCKS_SETTING, HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN,
    SW_POWER_CAP, SW_THERMAL_SLOWDOWN, SYNC_BOOST,
};
use crate::finding::{Severity, Verdict};
use crate::kernel_log::correlate;
use crate::kernel_log::nvidia_catalog;

use super::input::{GpuGrid, HistoryInput};
use super::report::{
    CounterGrowth, Episode, GpuHistory, PowerSummary, Range, ThrottleShare, XidSeen,
};
use super::signals::{AmdViolation, CounterKind, Exporter, Signal};
use super::words;

/// Harmful throttling above this share of a GPU's time with data makes it degraded; below it is said.
pub const THROTTLE_WARN_FRACTION: f64 = 0.05;
/// A GPU with data for less of the window than this cannot be called healthy.
pub const MIN_COVERAGE: f64 = 0.9;
/// Harmful throttle episodes listed per GPU (the longest, in time order).
pub const MAX_EPISODES: usize = 8;
/// Gaps listed per GPU and per node.
pub const MAX_GAPS: usize = 8;
/// Power at or above this share of the limit reads as at the limit.
const AT_LIMIT: f64 = 0.97;
/// PCIe replays in one window above which the link is worth a look.
const PCIE_REPLAYS_WARN: f64 = 100.0;

/// NVML's harmful clocks-event reasons, by name (`analysis::telemetry::throttle` classes them).
const NVIDIA_HARMFUL: &[(u64, &str)] = &[
    (HW_SLOWDOWN, "HwSlowdown"),
    (SW_THERMAL_SLOWDOWN, "SwThermalSlowdown"),
    (HW_THERMAL_SLOWDOWN, "HwThermalSlowdown"),
    (HW_POWER_BRAKE_SLOWDOWN, "HwPowerBrakeSlowdown"),
];
/// The others worth a share in the answer (idle and display clocks are not).
const NVIDIA_OTHER: &[(u64, &str)] = &[
    (SW_POWER_CAP, "SwPowerCap"),
    (SYNC_BOOST, "SyncBoost"),
    (APPLICATIONS_CLOCKS_SETTING, "ApplicationsClocksSetting"),
];
const AMD_VIOLATIONS: &[AmdViolation] = &[
    AmdViolation::SocketThermal,
    AmdViolation::VrThermal,
    AmdViolation::HbmThermal,
    AmdViolation::ProcessorHot,
    AmdViolation::Ppt,
];

/// What judging one GPU needs of the node.
pub struct Ctx<'a> {
    pub input: &'a HistoryInput,
    pub steps: usize,
    /// Steps where some GPU of the node had data.
    pub node_presence: &'a [bool],
    pub long_window: bool,
}

impl Ctx<'_> {
    fn clock(&self, k: usize) -> String {
        words::clock(self.input.at(k), self.long_window)
    }

    fn episode(&self, from: usize, to: usize, what: String) -> Episode {
        Episode {
            start: words::rfc3339(self.input.at(from)),
            end: words::rfc3339(self.input.at(to)),
            seconds: ((to - from + 1) as i64 * self.input.step) as u64,
            what,
        }
    }
}

/// Runs of consecutive steps where `on` holds: (first, last).
pub fn runs(on: impl IntoIterator<Item = bool>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut last = 0;
    for (k, v) in on.into_iter().enumerate() {
        match (v, start) {
            (true, None) => start = Some(k),
            (false, Some(s)) => {
                out.push((s, k - 1));
                start = None;
            }
            _ => {}
        }
        last = k;
    }
    if let Some(s) = start {
        out.push((s, last));
    }
    out
}

fn range(values: impl Iterator<Item = f64>) -> Option<Range> {
    let (mut n, mut sum, mut min, mut max) = (0usize, 0.0, f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        n += 1;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    }
    (n > 0).then(|| Range {
        min,
        mean: sum / n as f64,
        max,
    })
}

fn values(grid: Option<&[Option<f64>]>) -> impl Iterator<Item = f64> + '_ {
    grid.into_iter().flatten().flatten().copied()
}

/// Per step, the share of it a harmful reason held (NVIDIA: the bit was set; AMD: the worst harmful
/// residency), the reasons by step, and every reason's share.
struct Throttle {
    harmful: Vec<Option<f64>>,
    reasons_at: Vec<BTreeSet<&'static str>>,
    shares: Vec<ThrottleShare>,
}

fn throttle(g: &GpuGrid, cx: &Ctx) -> Option<Throttle> {
    let steps = cx.steps;
    let step = cx.input.step.max(0) as f64;
    let mut harmful = vec![None; steps];
    let mut reasons_at = vec![BTreeSet::new(); steps];
    let mut shares = Vec::new();
    match g.key.exporter {
        Exporter::Dcgm => {
            let masks = g.signal(Signal::ClocksEventReasons)?;
            let with_data = masks.iter().flatten().count();
            if with_data == 0 {
                return None;
            }
            for (k, m) in masks.iter().enumerate() {
                let Some(m) = m else { continue };
                // A bitmask read as a float: only whole non-negative values below 2^53 are masks.
                let mask = if *m >= 0.0 && m.fract() == 0.0 && *m < 9.0e15 {
                    *m as u64
                } else {
                    0
                };
                let mut h = 0.0;
                for (bit, name) in NVIDIA_HARMFUL {
                    if mask & bit != 0 {
                        h = 1.0;
                        reasons_at[k].insert(*name);
                    }
                }
                harmful[k] = Some(h);
            }
            for (bit, name, is_harmful) in NVIDIA_HARMFUL
                .iter()
                .map(|(b, n)| (b, n, true))
                .chain(NVIDIA_OTHER.iter().map(|(b, n)| (b, n, false)))
            {
                let n = masks
                    .iter()
                    .flatten()
                    .filter(|m| **m >= 0.0 && **m < 9.0e15 && (**m as u64) & bit != 0)
                    .count();
                if n > 0 {
                    shares.push(ThrottleShare {
                        reason: (*name).into(),
                        harmful: is_harmful,
                        fraction: n as f64 / with_data as f64,
                        seconds: (n as f64 * step) as u64,
                    });
                }
            }
        }
        Exporter::Amd => {
            let mut any = false;
            for v in AMD_VIOLATIONS {
                let Some(grid) = g.signal(Signal::Violation(*v)) else {
                    continue;
                };
                let with_data = grid.iter().flatten().count();
                if with_data == 0 {
                    continue;
                }
                any = true;
                let mut sum = 0.0;
                for (k, r) in grid.iter().enumerate() {
                    let Some(r) = r else { continue };
                    let share = (r / 100.0).clamp(0.0, 1.0);
                    sum += share;
                    if v.harmful() {
                        let h = harmful[k].get_or_insert(0.0);
                        *h = f64::max(*h, share);
                        if share >= 0.5 {
                            reasons_at[k].insert(v.name());
                        }
                    }
                }
                if sum > 0.0 {
                    shares.push(ThrottleShare {
                        reason: v.name().into(),
                        harmful: v.harmful(),
                        fraction: sum / with_data as f64,
                        seconds: (sum * step) as u64,
                    });
                }
            }
            if !any {
                return None;
            }
        }
        // Intel's exporter publishes no throttle reasons.
        Exporter::Gaudi => return None,
    }
    shares.sort_by(|a, b| {
        b.harmful
            .cmp(&a.harmful)
            .then(b.fraction.total_cmp(&a.fraction))
    });
    Some(Throttle {
        harmful,
        reasons_at,
        shares,
    })
}

fn xids(g: &GpuGrid, cx: &Ctx) -> Vec<XidSeen> {
    let Some(grid) = g.signal(Signal::LastXid) else {
        return Vec::new();
    };
    let mut seen: Vec<XidSeen> = Vec::new();
    let mut prev: Option<f64> = None;
    let mut first = true;
    for (k, v) in grid.iter().enumerate() {
        let Some(v) = *v else { continue };
        let code = (v >= 1.0 && v.fract() == 0.0 && v <= u32::MAX as f64).then_some(v as u32);
        let changed = prev != Some(v);
        let before_window = first;
        first = false;
        prev = Some(v);
        let (Some(code), true) = (code, changed) else {
            continue;
        };
        if let Some(x) = seen.iter_mut().find(|x| x.code == code) {
            x.times += 1;
            continue;
        }
        // An Xid past a bound of distinct codes is counted on the last one's line rather than listed.
        if seen.len() >= 16 {
            continue;
        }
        // The kernel log's own judgment of the code, so an Xid reads alike in every tool; the gauge gives
        // the code without its line or burst, and the judgment says what that leaves unknown.
        let class = correlate::xid_by_code(code);
        let entry = nvidia_catalog::lookup(code);
        seen.push(XidSeen {
            code,
            mnemonic: entry.map(|e| e.mnemonic.clone()),
            description: entry.map(|e| e.description.clone()),
            title: correlate::xid_title(code),
            meaning: class.detail,
            action: class.action,
            // What the gauge held at the window's start came before it: history, not this window's news.
            severity: if before_window {
                Severity::Info
            } else {
                class.severity
            },
            first_seen: cx.clock(k),
            times: 1,
            before_window,
        });
    }
    seen
}

fn counters(g: &GpuGrid, cx: &Ctx) -> Vec<CounterGrowth> {
    let kinds = [
        CounterKind::EccUncorrectable,
        CounterKind::RemappedRowsUncorrectable,
        CounterKind::EccCorrectable,
        CounterKind::RemappedRowsCorrectable,
        CounterKind::PcieReplays,
    ];
    let mut out = Vec::new();
    for kind in kinds {
        let Some(grid) = g.signal(Signal::Counter(kind)) else {
            continue;
        };
        let (mut increase, mut prev, mut first_at, mut last) = (0.0, None::<f64>, None, 0.0);
        for (k, v) in grid.iter().enumerate() {
            let Some(v) = *v else { continue };
            if let Some(p) = prev {
                // A counter that went down was reset (a driver reload): what it shows now is new.
                let d = if v >= p { v - p } else { v };
                if d > 0.0 {
                    increase += d;
                    first_at.get_or_insert(k);
                }
            }
            prev = Some(v);
            last = v;
        }
        let Some(first_at) = first_at else { continue };
        let severity = match kind {
            CounterKind::EccUncorrectable | CounterKind::RemappedRowsUncorrectable => {
                Severity::Critical
            }
            CounterKind::PcieReplays if increase >= PCIE_REPLAYS_WARN => Severity::Warning,
            _ => Severity::Info,
        };
        out.push(CounterGrowth {
            counter: kind.describe().into(),
            increase,
            last,
            first_increase: cx.clock(first_at),
            severity,
        });
    }
    out
}

fn power(g: &GpuGrid) -> Option<PowerSummary> {
    let p = range(values(g.signal(Signal::Power)))?;
    let limit = g
        .signal(Signal::PowerLimit)
        .and_then(|l| l.iter().rev().flatten().next().copied())
        .filter(|l| *l > 0.0);
    let at_limit_fraction = limit.map(|l| {
        let all = values(g.signal(Signal::Power)).count().max(1);
        values(g.signal(Signal::Power))
            .filter(|w| *w >= AT_LIMIT * l)
            .count() as f64
            / all as f64
    });
    Some(PowerSummary {
        mean_watts: p.mean,
        max_watts: p.max,
        limit_watts: limit,
        at_limit_fraction,
    })
}

/// `GPU 3 (NVIDIA H100 80GB HBM3)`.
pub fn name(g: &GpuHistory) -> String {
    match &g.model {
        Some(m) => format!("GPU {} ({m})", g.gpu),
        None => format!("GPU {}", g.gpu),
    }
}

/// The window of one GPU judged.
pub fn judge(g: &GpuGrid, cx: &Ctx) -> GpuHistory {
    let steps = cx.steps.max(1);
    let step = cx.input.step.max(0) as u64;
    let presence = g.presence(cx.steps);
    let present = presence.iter().filter(|p| **p).count();
    let coverage = present as f64 / steps as f64;
    let gaps: Vec<Episode> = runs(
        presence
            .iter()
            .zip(cx.node_presence)
            .map(|(p, node)| !p && *node),
    )
    .into_iter()
    .take(MAX_GAPS)
    .map(|(a, b)| cx.episode(a, b, "no data from this GPU".into()))
    .collect();

    let mut severities = Vec::new();
    let mut parts: Vec<String> = Vec::new();

    let t = throttle(g, cx);
    let (mut episodes, mut left_out) = (Vec::new(), 0u32);
    if let Some(t) = &t {
        let with_data = t.harmful.iter().flatten().count().max(1);
        let harmful_sum: f64 = t.harmful.iter().flatten().sum();
        let fraction = harmful_sum / with_data as f64;
        let mut list: Vec<(usize, usize)> =
            runs(t.harmful.iter().map(|h| h.is_some_and(|h| h >= 0.5)));
        if !list.is_empty() {
            let longest = list
                .iter()
                .max_by_key(|(a, b)| (b - a, usize::MAX - a))
                .copied();
            if list.len() > MAX_EPISODES {
                left_out = (list.len() - MAX_EPISODES) as u32;
                list.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
                list.truncate(MAX_EPISODES);
                list.sort();
            }
            episodes = list
                .iter()
                .map(|&(a, b)| {
                    let reasons: BTreeSet<&str> =
                        t.reasons_at[a..=b].iter().flatten().copied().collect();
                    cx.episode(a, b, reasons.into_iter().collect::<Vec<_>>().join("+"))
                })
                .collect();
            let reasons: Vec<&str> = t
                .shares
                .iter()
                .filter(|s| s.harmful)
                .map(|s| s.reason.as_str())
                .collect();
            let n = list.len() + left_out as usize;
            let when = match longest {
                Some((a, b)) if n == 1 => format!(
                    "; {} from {}",
                    words::duration(((b - a + 1) as u64) * step),
                    cx.clock(a)
                ),
                Some((a, b)) => format!(
                    "; {n} episodes, longest {} from {}",
                    words::duration(((b - a + 1) as u64) * step),
                    cx.clock(a)
                ),
                None => String::new(),
            };
            parts.push(format!(
                "throttled {} of {} with data ({}{when})",
                words::pct(fraction),
                words::duration(with_data as u64 * step),
                reasons.join(", "),
            ));
        } else if fraction > 0.0 {
            parts.push(format!(
                "briefly throttled ({} of the time)",
                words::pct(fraction)
            ));
        }
        severities.push(if fraction >= THROTTLE_WARN_FRACTION {
            Severity::Warning
        } else {
            Severity::Info
        });
    }

    let xids = xids(g, cx);
    for x in &xids {
        severities.push(x.severity);
        let name = x
            .description
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        parts.push(if x.before_window {
            format!("last Xid {}{name} from before the window", x.code)
        } else {
            format!(
                "Xid {}{name} at {}{}",
                x.code,
                x.first_seen,
                if x.times > 1 {
                    format!(" ({} times)", x.times)
                } else {
                    String::new()
                }
            )
        });
    }
    let counters = counters(g, cx);
    for c in &counters {
        severities.push(c.severity);
        parts.push(format!(
            "+{} {} from {}",
            words::count(c.increase),
            c.counter,
            c.first_increase
        ));
    }
    let row_remap_failed = values(g.signal(Signal::RowRemapFailure)).any(|v| v >= 1.0);
    if row_remap_failed {
        severities.push(Severity::Critical);
        parts.push("row remapping failed".into());
    }
    // HBM rows waiting for a reset to be replaced: the newest value is what is still pending.
    for (double_bit, what) in [(true, "double-bit"), (false, "single-bit")] {
        let last = g
            .signal(Signal::PendingRows { double_bit })
            .and_then(|grid| grid.iter().rev().flatten().next().copied());
        if let Some(n) = last.filter(|n| *n >= 1.0) {
            severities.push(if double_bit {
                Severity::Warning
            } else {
                Severity::Info
            });
            parts.push(format!(
                "{} HBM row(s) with {what} ECC errors pending replacement (the device's next reset replaces them)",
                words::count(n)
            ));
        }
    }

    let power = power(g);
    let utilization = range(values(g.signal(Signal::Utilization)));
    let temperature = range(values(g.signal(Signal::Temperature)));
    let sm_clock = range(values(g.signal(Signal::SmClock)));
    let mut readings = Vec::new();
    if let Some(u) = &utilization {
        readings.push(format!("util {:.0}% avg", u.mean));
    }
    if let Some(p) = &power {
        readings.push(match p.limit_watts {
            Some(l) => format!("{:.0} W avg of {:.0} W limit", p.mean_watts, l),
            None => format!("{:.0} W avg (max {:.0} W)", p.mean_watts, p.max_watts),
        });
    }
    if let Some(t) = &temperature {
        readings.push(format!("max {:.0} °C", t.max));
    }
    if coverage < MIN_COVERAGE {
        parts.push(format!("data for {} of the window", words::pct(coverage)));
    }

    let worst = severities.iter().copied().max();
    let read = read(g);
    // Utilization and power alone judge nothing: without throttle reasons or Xids health is unknown.
    let judged = read.iter().any(|r| r == "throttle" || r == "xid");
    let verdict = match worst {
        Some(Severity::Critical) => Verdict::Unhealthy,
        Some(Severity::Warning) => Verdict::Degraded,
        _ if coverage < MIN_COVERAGE || !judged => Verdict::Unknown,
        _ => Verdict::Healthy,
    };
    let mut history = GpuHistory {
        gpu: g.key.id.clone(),
        uuid: g.uuid.clone(),
        model: g.model.clone(),
        exporter: g.key.exporter,
        verdict,
        line: String::new(),
        coverage,
        read,
        gaps,
        throttle: t.map(|t| t.shares).unwrap_or_default(),
        throttle_episodes: episodes,
        throttle_episodes_left_out: left_out,
        xids,
        counters,
        row_remap_failed,
        power,
        utilization,
        temperature,
        sm_clock,
    };
    let lead = if parts.is_empty() {
        "steady".to_string()
    } else {
        parts.join("; ")
    };
    history.line = if readings.is_empty() {
        format!("{}: {lead}", name(&history))
    } else {
        format!("{}: {lead} — {}", name(&history), readings.join(", "))
    };
    history
}

/// The judged signal families the GPU's exporter gave.
fn read(g: &GpuGrid) -> Vec<String> {
    let has = |f: &dyn Fn(&Signal) -> bool| g.signals.keys().any(f);
    let mut out = Vec::new();
    if has(&|s| matches!(s, Signal::ClocksEventReasons | Signal::Violation(_))) {
        out.push("throttle".to_string());
    }
    if has(&|s| matches!(s, Signal::LastXid)) {
        out.push("xid".into());
    }
    if has(&|s| {
        matches!(
            s,
            Signal::Counter(CounterKind::EccCorrectable | CounterKind::EccUncorrectable)
        )
    }) {
        out.push("ecc".into());
    }
    if has(&|s| matches!(s, Signal::PowerLimit)) {
        out.push("power_limit".into());
    }
    if has(&|s| matches!(s, Signal::PendingRows { .. })) {
        out.push("pending_rows".into());
    }
    out
}

/// Whether a GPU is alike and fine: healthy, with nothing to say but its readings.
pub fn is_plain(g: &GpuHistory) -> bool {
    matches!(g.verdict, Verdict::Healthy | Verdict::Unknown)
        && g.coverage >= MIN_COVERAGE
        && g.gaps.is_empty()
        && g.xids.is_empty()
        && g.counters.is_empty()
        && !g.row_remap_failed
        && g.throttle.iter().all(|s| !s.harmful)
}
