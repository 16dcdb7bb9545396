//! A window's bounded timeline: each GPU's samples folded into at most [`BUCKETS`] equal spans, what a chart
//! draws and what a text line shows as a sparkline.

use std::collections::BTreeMap;

use super::report::{GpuTimeline, WatchInput, window_seconds};
use super::sample::{GpuSample, Throttle};

/// Utilization at or above which a sample counts as busy.
pub const BUSY_PCT: u32 = 50;
/// Buckets per GPU at most, whatever the window's samples.
pub const BUCKETS: usize = 30;

fn mean<T: Into<f64> + Copy>(v: &[T]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().map(|&x| x.into()).sum::<f64>() / v.len() as f64)
    }
}

pub(super) fn of_gpu(input: &WatchInput, index: u32, ivs: &[Interval]) -> GpuTimeline {
    let span = window_seconds(input);
    let n = input.ticks.len().clamp(1, BUCKETS);
    let bucket_s = if span > 0.0 { span / n as f64 } else { 1.0 };
    let start = input.ticks.first().map_or(0.0, |t| t.t_s);
    let slot = |t: f64| (((t - start) / bucket_s) as usize).min(n - 1);
    let mut util: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut sm: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut power: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut temp: Vec<Option<u32>> = vec![None; n];
    for t in &input.ticks {
        let Some(g) = t
            .gpus
            .iter()
            .find(|g| g.index == index && g.unreadable.is_none())
        else {
            continue;
        };
        let i = slot(t.t_s);
        util[i].extend(g.util_pct);
        sm[i].extend(g.sm_mhz);
        power[i].extend(g.power_w);
        if let Some(c) = g.temp_c {
            temp[i] = Some(temp[i].map_or(c, |m| m.max(c)));
        }
    }
    let mut throttled = vec![0.0_f64; n];
    let mut covered = vec![0.0_f64; n];
    for iv in ivs {
        let harmful: f64 = iv
            .shares
            .iter()
            .filter(|(r, _)| r.harmful())
            .map(|(_, s)| *s)
            .fold(0.0, f64::max);
        let i = slot((iv.from_s + iv.to_s) / 2.0);
        let dt = iv.to_s - iv.from_s;
        throttled[i] += harmful * dt;
        covered[i] += dt;
    }
    GpuTimeline {
        bucket_s: (bucket_s * 1000.0).round() / 1000.0,
        util_pct: util
            .iter()
            .map(|v| mean(v).map(|m| m.round() as u8))
            .collect(),
        sm_mhz: sm
            .iter()
            .map(|v| mean(v).map(|m| m.round() as u32))
            .collect(),
        power_w: power
            .iter()
            .map(|v| mean(v).map(|m| m.round() as u32))
            .collect(),
        temp_c: temp,
        throttled_pct: throttled
            .iter()
            .zip(&covered)
            .map(|(t, c)| {
                if *c > 0.0 {
                    (t / c * 100.0).round() as u8
                } else {
                    0
                }
            })
            .collect(),
    }
}

/// Separate runs of busy samples.
pub(super) fn busy_spans(input: &WatchInput, index: u32) -> u32 {
    let mut spans = 0;
    let mut was_busy = false;
    for t in &input.ticks {
        let busy = t
            .gpus
            .iter()
            .find(|g| g.index == index)
            .and_then(|g| g.util_pct)
            .is_some_and(|u| u >= BUSY_PCT);
        if busy && !was_busy {
            spans += 1;
        }
        was_busy = busy;
    }
    spans
}

/// A line of block characters for values 0–100 (`·` where nothing was read): `▁▁▇██▇▁`.
pub fn sparkline(values: &[Option<u8>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| match v {
            None => '·',
            Some(p) => BARS[(usize::from(*p.min(&100)) * 7 + 50) / 100],
        })
        .collect()
}

/// Marks where a harmful throttle held at least a quarter of the bucket: `^` there, space elsewhere.
pub fn throttle_marks(t: &GpuTimeline) -> String {
    t.throttled_pct
        .iter()
        .map(|p| if *p >= 25 { '^' } else { ' ' })
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// For each interval (sample i-1 to i) of one GPU: its length in seconds, the share of it each throttle
/// held, and whether the GPU was busy.
pub(super) struct Interval {
    pub from_s: f64,
    pub to_s: f64,
    pub shares: BTreeMap<Throttle, f64>,
}

pub(super) fn intervals(input: &WatchInput, index: u32) -> Vec<Interval> {
    let mut out = Vec::new();
    let samples: Vec<(f64, &GpuSample)> = input
        .ticks
        .iter()
        .filter_map(|t| t.gpus.iter().find(|g| g.index == index).map(|g| (t.t_s, g)))
        .filter(|(_, g)| g.unreadable.is_none())
        .collect();
    for w in samples.windows(2) {
        let ((t0, a), (t1, b)) = (w[0], w[1]);
        let dt = t1 - t0;
        if dt <= 0.0 {
            continue;
        }
        let shares = shares(a, b, dt);
        out.push(Interval {
            from_s: t0,
            to_s: t1,
            shares,
        });
    }
    out
}

/// The share of the interval `a` to `b` (`dt` seconds) each throttle held: from its counters where the GPU
/// counts them (NVIDIA in nanoseconds, AMD against its own accumulation clock), else from the mask at `b`.
pub(super) fn shares(a: &GpuSample, b: &GpuSample, dt: f64) -> BTreeMap<Throttle, f64> {
    let mut shares = BTreeMap::new();
    for r in Throttle::ALL {
        let counted = match (a.throttle_counters.get(&r), b.throttle_counters.get(&r)) {
            (Some(&x), Some(&y)) if y >= x => {
                let span = match (a.throttle_clock, b.throttle_clock) {
                    (Some(c0), Some(c1)) if c1 > c0 => Some((c1 - c0) as f64),
                    (None, None) => Some(dt * 1e9),
                    _ => None,
                };
                span.map(|s| ((y - x) as f64 / s).clamp(0.0, 1.0))
            }
            _ => None,
        };
        // A reason without a duration counter (HW slowdown) is known only at the instant: the mask says.
        let share = counted.unwrap_or(if b.active.contains(&r) { 1.0 } else { 0.0 });
        if share > 0.0 {
            shares.insert(r, share);
        }
    }
    shares
}
