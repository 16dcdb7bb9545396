//! One GPU over a window: its readings' ranges, the time each throttle held it, its counters' growth, and
//! the episodes only it shows (throttling, a counter climbing, running hot, stopping to answer). What needs
//! its peers (idle among busy, slower) is `pattern.rs`.

use std::collections::BTreeSet;

use super::report::{
    CounterDelta, Episode, EpisodeKind, GpuWindow, NodeEpisode, Stat, ThrottleTime, WatchInput,
    WatchReport, bounded, secs, window_seconds,
};
use super::sample::{GpuIdentity, GpuSample, Throttle, counter_is_critical, counter_label};
use super::timeline::{self, BUSY_PCT, Interval, intervals};
use crate::finding::Severity;

/// A harmful throttle is an episode when it held the GPU at least this share of the window (and at least
/// one interval): a single sample of HW slowdown is noise a window should not report.
const THROTTLE_MIN_SHARE: f64 = 0.05;
/// Within this many degrees of its slowdown threshold, a GPU is about to throttle.
const HOT_MARGIN_C: u32 = 3;
/// A share of an interval counted as throttled when at least this much of it was.
const SPAN_SHARE: f64 = 0.5;

fn stat(values: impl Iterator<Item = f64>) -> Option<Stat> {
    let v: Vec<f64> = values.collect();
    if v.is_empty() {
        return None;
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    Some(Stat { min, mean, max })
}

/// A GPU's window: everything but its one-line summary, which needs the episodes of the whole node.
pub(super) fn window_of(
    input: &WatchInput,
    id: &GpuIdentity,
    held_by: Vec<String>,
    processes: Option<usize>,
) -> GpuWindow {
    let samples: Vec<&GpuSample> = input
        .ticks
        .iter()
        .filter_map(|t| t.gpus.iter().find(|g| g.index == id.index))
        .collect();
    let readable: Vec<&&GpuSample> = samples.iter().filter(|s| s.unreadable.is_none()).collect();
    let unreadable = (samples.len() - readable.len()) as u32;
    let util = stat(readable.iter().filter_map(|s| s.util_pct.map(f64::from)));
    let busy_n = readable
        .iter()
        .filter(|s| s.util_pct.is_some_and(|u| u >= BUSY_PCT))
        .count();
    let with_util = readable.iter().filter(|s| s.util_pct.is_some()).count();
    let busy_pct = (busy_n * 100).checked_div(with_util).unwrap_or(0) as u32;
    let ivs = intervals(input, id.index);
    let mut throttled = Vec::new();
    for r in Throttle::ALL {
        let seconds: f64 = ivs
            .iter()
            .map(|i| i.shares.get(&r).copied().unwrap_or(0.0) * (i.to_s - i.from_s))
            .sum();
        if seconds <= 0.0 {
            continue;
        }
        throttled.push(ThrottleTime {
            reason: r,
            seconds,
            spans: spans(&ivs, r).len() as u32,
        });
    }
    let mut counters = Vec::new();
    if let (Some(first), Some(last)) = (readable.first(), readable.last()) {
        for (k, &end) in &last.counters {
            let Some(&start) = first.counters.get(k) else {
                continue;
            };
            if end <= start {
                continue;
            }
            let delta = end - start;
            let under_load = growth_while_busy(&readable, k);
            counters.push(CounterDelta {
                key: k.clone(),
                delta,
                under_load_pct: ((under_load as f64 / delta as f64) * 100.0).round() as u32,
            });
        }
    }
    let mut traffic = Vec::new();
    if let (Some(first), Some(last)) = (readable.first(), readable.last()) {
        // The samples' own times, not the window asked for.
        let t = |s: &&&GpuSample| {
            input
                .ticks
                .iter()
                .find(|t| t.gpus.iter().any(|g| std::ptr::eq(g, **s)))
                .map(|t| t.t_s)
        };
        if let (Some(t0), Some(t1)) = (t(first), t(last))
            && t1 > t0
        {
            for (k, &end) in &last.traffic_kib {
                if let Some(&start) = first.traffic_kib.get(k)
                    && end >= start
                {
                    let mib_s = (end - start) as f64 / 1024.0 / (t1 - t0);
                    traffic.push((k.clone(), (mib_s * 10.0).round() / 10.0));
                }
            }
        }
    }
    GpuWindow {
        identity: id.clone(),
        held_by,
        processes,
        busy_pct,
        util_pct: util,
        util_samples: Some(with_util as u32),
        sm_mhz: stat(readable.iter().filter_map(|s| s.sm_mhz.map(f64::from))),
        power_w: stat(readable.iter().filter_map(|s| s.power_w)),
        temp_c: stat(readable.iter().filter_map(|s| s.temp_c.map(f64::from))),
        mem_used_mib_max: readable.iter().filter_map(|s| s.mem_used_mib).max(),
        throttled,
        counters,
        traffic_mib_s: traffic,
        unreadable_samples: unreadable,
        line: String::new(),
        timeline: timeline::of_gpu(input, id.index, &ivs),
    }
}

/// How much of a counter's growth came in intervals that ended busy.
fn growth_while_busy(samples: &[&&GpuSample], key: &str) -> u64 {
    samples
        .windows(2)
        .filter(|w| w.iter().any(|s| s.util_pct.is_some_and(|u| u >= BUSY_PCT)))
        .map(|w| match (w[0].counters.get(key), w[1].counters.get(key)) {
            (Some(&a), Some(&b)) if b > a => b - a,
            _ => 0,
        })
        .sum()
}

/// The spans (from, to) in which a throttle held at least half of each interval, neighbours merged.
pub(super) fn spans(ivs: &[Interval], r: Throttle) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for i in ivs {
        if i.shares.get(&r).copied().unwrap_or(0.0) < SPAN_SHARE {
            continue;
        }
        match out.last_mut() {
            Some(last) if (i.from_s - last.1).abs() < 1e-6 => last.1 = i.to_s,
            _ => out.push((i.from_s, i.to_s)),
        }
    }
    out
}

/// The episodes one GPU shows on its own.
pub(super) fn of_gpu(input: &WatchInput, g: &GpuWindow) -> Vec<Episode> {
    let idx = g.identity.index;
    let window = window_seconds(input);
    let mut out = Vec::new();
    if g.unreadable_samples > 0 {
        let first = input.ticks.iter().find(|t| {
            t.gpus
                .iter()
                .any(|s| s.index == idx && s.unreadable.is_some())
        });
        let why = first
            .and_then(|t| t.gpus.iter().find(|s| s.index == idx))
            .and_then(|s| s.unreadable.clone())
            .unwrap_or_default();
        let at = first.map_or(0.0, |t| t.t_s);
        let total = input.ticks.len();
        out.push(Episode {
            kind: EpisodeKind::Unreadable,
            severity: Severity::Critical,
            gpu: Some(idx),
            from_s: at,
            to_s: window,
            text: format!(
                "GPU {idx} could not be read in {} of {total} samples, first at {} ({})",
                g.unreadable_samples,
                secs(at),
                bounded(&why, 120)
            ),
            code: "watch.unreadable".into(),
        });
    }
    let ivs = intervals(input, idx);
    for t in &g.throttled {
        let share = if window > 0.0 {
            t.seconds / window
        } else {
            0.0
        };
        let min_s = f64::from(input.interval_ms) / 1000.0;
        if t.reason.harmful() {
            if share < THROTTLE_MIN_SHARE || t.seconds < min_s * 0.99 {
                continue;
            }
            let sp = spans(&ivs, t.reason);
            let (from, to) = (
                sp.first().map_or(0.0, |s| s.0),
                sp.last().map_or(window, |s| s.1),
            );
            let clocks = match (g.sm_mhz, g.identity.sm_max_mhz) {
                (Some(s), Some(max)) => {
                    format!("; SM clock {:.0}–{:.0} MHz of {max}", s.min, s.max)
                }
                _ => String::new(),
            };
            let bursts = if t.spans >= 2 {
                format!(", in {} bursts", t.spans)
            } else {
                String::new()
            };
            out.push(Episode {
                kind: EpisodeKind::Throttled,
                severity: Severity::Warning,
                gpu: Some(idx),
                from_s: from,
                to_s: to,
                text: format!(
                    "GPU {idx} throttled {} of {} ({}){bursts}{clocks}",
                    secs(t.seconds),
                    secs(window),
                    t.reason.label()
                ),
                code: format!("throttle.{}", serde_code(t.reason)),
            });
        } else if share >= 0.5 {
            // The power cap of a busy GPU is its normal state; capped while mostly idle is a lowered limit.
            let busy = g.busy_pct >= 50;
            let power = match (g.power_w, g.identity.power_limit_w) {
                (Some(p), Some(l)) => format!(" ({:.0} W of {:.0} W)", p.mean, l),
                _ => String::new(),
            };
            out.push(Episode {
                kind: EpisodeKind::PowerCapped,
                severity: Severity::Info,
                gpu: Some(idx),
                from_s: 0.0,
                to_s: window,
                text: if busy {
                    format!(
                        "GPU {idx} at its power cap {:.0}% of the window under load{power}: expected at full load",
                        share * 100.0
                    )
                } else {
                    format!(
                        "GPU {idx} power-capped {:.0}% of the window while mostly idle{power}: its limit may have been lowered",
                        share * 100.0
                    )
                },
                code: "throttle.power_cap".into(),
            });
        }
    }
    for c in &g.counters {
        let rate = if window > 0.0 {
            format!(" ({:.1}/s)", c.delta as f64 / window)
        } else {
            String::new()
        };
        let load = if c.under_load_pct >= 80 && g.busy_pct < 100 {
            " under load"
        } else {
            ""
        };
        out.push(Episode {
            kind: EpisodeKind::Counter,
            severity: if counter_is_critical(&c.key) {
                Severity::Critical
            } else {
                Severity::Warning
            },
            gpu: Some(idx),
            from_s: 0.0,
            to_s: window,
            text: format!(
                "GPU {idx}: +{} {}{load}{rate}",
                c.delta,
                counter_label(&c.key)
            ),
            code: format!("counter.{}", c.key),
        });
    }
    if let (Some(t), Some(slow)) = (g.temp_c, g.identity.slowdown_c)
        && t.max as u32 + HOT_MARGIN_C >= slow
    {
        out.push(Episode {
            kind: EpisodeKind::Hot,
            severity: Severity::Warning,
            gpu: Some(idx),
            from_s: 0.0,
            to_s: window,
            text: if t.max as u32 >= slow {
                format!(
                    "GPU {idx} reached {:.0} °C, at or above its slowdown threshold ({slow} °C)",
                    t.max
                )
            } else {
                format!(
                    "GPU {idx} reached {:.0} °C, {} °C from its slowdown threshold ({slow} °C)",
                    t.max,
                    slow - t.max as u32
                )
            },
            code: "thermal.near_slowdown".into(),
        });
    }
    // Work in bursts: several busy spans with idle between them, busy a fifth to four fifths of the time.
    let busy_spans = timeline::busy_spans(input, idx);
    if busy_spans >= 3 && (20..=80).contains(&g.busy_pct) {
        out.push(Episode {
            kind: EpisodeKind::Bursty,
            severity: Severity::Info,
            gpu: Some(idx),
            from_s: 0.0,
            to_s: window,
            text: format!(
                "GPU {idx} worked in {busy_spans} bursts, busy {}% of the window: input-bound, or waiting on a slower peer between steps",
                g.busy_pct
            ),
            code: "utilization.bursty".into(),
        });
    }
    out
}

/// `hw_slowdown` for [`Throttle::HwSlowdown`].
fn serde_code(t: Throttle) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The GPU's state in one line: its readings' ranges, then what deviated.
pub(super) fn line(g: &GpuWindow, episodes: &[Episode]) -> String {
    let mut parts = Vec::new();
    if let Some(u) = g.util_pct {
        parts.push(format!("util {:.0}% (busy {}%)", u.mean, g.busy_pct));
    }
    if let Some(s) = g.sm_mhz {
        parts.push(format!("SM {:.0}–{:.0} MHz", s.min, s.max));
    }
    if let Some(p) = g.power_w {
        match g.identity.power_limit_w {
            Some(l) => parts.push(format!("{:.0}–{:.0} W of {l:.0}", p.min, p.max)),
            None => parts.push(format!("{:.0}–{:.0} W", p.min, p.max)),
        }
    }
    if let Some(t) = g.temp_c {
        parts.push(format!("{:.0}–{:.0} °C", t.min, t.max));
    }
    let own: Vec<&str> = episodes
        .iter()
        .filter(|e| e.gpu == Some(g.identity.index) && e.severity > Severity::Info)
        .map(|e| e.code.as_str())
        .collect();
    if !own.is_empty() {
        parts.push(format!("episodes: {}", own.join(", ")));
    }
    if parts.is_empty() {
        "no readings".into()
    } else {
        parts.join(", ")
    }
}

/// Episodes listed in a watch's structured result; the rest are counted, not listed.
pub const EPISODES_LISTED: usize = 40;

/// The first [`EPISODES_LISTED`] episodes (most severe first, as given), and how many were left out.
pub fn listed(mut v: Vec<NodeEpisode>) -> (Vec<NodeEpisode>, usize) {
    let more = v.len().saturating_sub(EPISODES_LISTED);
    v.truncate(EPISODES_LISTED);
    (v, more)
}

/// A node's own episodes on a workload's GPUs (`mine`): throttling, counters, kernel events, a GPU lost. The
/// node's pattern episodes are left out: across a workload's nodes the pattern is read again, whole.
pub(super) fn on_gpus<'a>(
    node: &'a str,
    w: &'a WatchReport,
    mine: &'a BTreeSet<u32>,
) -> impl Iterator<Item = NodeEpisode> + 'a {
    w.episodes
        .iter()
        .filter(move |e| {
            let node_pattern = matches!(
                e.kind,
                EpisodeKind::IdleAmongBusy
                    | EpisodeKind::BusyAmongIdle
                    | EpisodeKind::Slower
                    | EpisodeKind::NoProgress
                    | EpisodeKind::Bursty
                    | EpisodeKind::Onset
            );
            !(node_pattern || e.gpu.is_some_and(|g| !mine.contains(&g)))
        })
        .map(move |e| NodeEpisode {
            node: node.to_string(),
            episode: e.clone(),
        })
}

impl NodeEpisode {
    /// Not one of the pattern's own episodes (those the headline already says).
    pub fn node_specific(&self) -> bool {
        !matches!(
            self.episode.kind,
            EpisodeKind::IdleAmongBusy
                | EpisodeKind::BusyAmongIdle
                | EpisodeKind::Slower
                | EpisodeKind::NoProgress
        )
    }
}
