//! NVML's units as the report gives them: milliwatts as watts, nanoseconds as seconds, a part as a
//! percentage.

use crate::facts::Reading;

pub(super) fn watts(mw: &Reading<u32>) -> Reading<f64> {
    mw.map(|v| f64::from(*v) / 1000.0)
}

pub(super) fn seconds(ns: &Reading<u64>) -> Reading<f64> {
    ns.map(|v| (*v as f64 / 1e8).round() / 10.0)
}

pub(super) fn pct(part: u32, whole: u32) -> Option<u32> {
    (whole > 0).then(|| ((u64::from(part) * 100 + u64::from(whole) / 2) / u64::from(whole)) as u32)
}
