//! A window's bounded timeline: each GPU's samples folded into at most [`BUCKETS`] equal spans, what a chart
//! draws and what a text line shows as a sparkline.

use serde::{Deserialize, Serialize};

use super::WatchInput;
use super::episodes::Interval;

/// Utilization at or above which a sample counts as busy.
pub const BUSY_PCT: u32 = 50;
/// Buckets per GPU at most, whatever the window's samples.
pub const BUCKETS: usize = 30;

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

fn mean<T: Into<f64> + Copy>(v: &[T]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().map(|&x| x.into()).sum::<f64>() / v.len() as f64)
    }
}

pub(super) fn of_gpu(input: &WatchInput, index: u32, ivs: &[Interval]) -> GpuTimeline {
    let span = super::window_seconds(input);
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
