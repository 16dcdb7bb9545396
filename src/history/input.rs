//! What the reader hands over: the series Prometheus answered, as they came (labels untrusted), and the
//! window's step grid. [`gpus`] sorts them into one grid of readings per GPU and signal.

use std::collections::BTreeMap;

use crate::incident::platform::clean;

use super::signals::{self, Exporter, Signal};

/// Longest label value kept (a GPU index, a UUID, a model name); longer ones are cut.
pub const MAX_LABEL_CHARS: usize = 64;
/// Most GPUs one node's answer describes; more (a relabelling that merged nodes) are counted.
pub const MAX_GPUS: usize = 64;
/// Most steps a window has: the reader picks the step so the window fits.
pub const MAX_STEPS: usize = 2_000;

/// The series of one node over one window, as the reader got them.
#[derive(Debug, Clone, Default)]
pub struct HistoryInput {
    pub node: String,
    /// Where they came from, in words (already clean: the launcher's own configuration or a Service's name).
    pub source: String,
    /// The label that carried the node's name.
    pub matched_label: String,
    /// Unix seconds of the first and last step, and the step.
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub series: Vec<RawSeries>,
    /// What the reader left out (series over its bound, a cut answer), in words.
    pub left_out: Vec<String>,
}

/// One series: its labels (with `__name__`) and its points (unix seconds, value).
#[derive(Debug, Clone, Default)]
pub struct RawSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

impl HistoryInput {
    /// Steps in the window, `start` and `end` included, at most [`MAX_STEPS`].
    pub fn steps(&self) -> usize {
        if self.step <= 0 || self.end < self.start {
            return 0;
        }
        (((self.end - self.start) / self.step) as usize + 1).min(MAX_STEPS)
    }

    /// The unix second of step `k`.
    pub fn at(&self, k: usize) -> i64 {
        self.start + self.step * k as i64
    }
}

/// A GPU as its exporter names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GpuKey {
    pub exporter: Exporter,
    /// The index, numeric ones in numeric order.
    pub index: Option<u32>,
    pub id: String,
}

/// One GPU's readings: per signal, the value at each step (none where there was no sample).
#[derive(Debug, Clone)]
pub struct GpuGrid {
    pub key: GpuKey,
    pub uuid: Option<String>,
    pub model: Option<String>,
    pub signals: BTreeMap<Signal, Vec<Option<f64>>>,
}

impl GpuGrid {
    pub fn signal(&self, s: Signal) -> Option<&[Option<f64>]> {
        self.signals.get(&s).map(Vec::as_slice)
    }

    /// Steps with any reading.
    pub fn presence(&self, steps: usize) -> Vec<bool> {
        let mut p = vec![false; steps];
        for grid in self.signals.values() {
            for (k, v) in grid.iter().enumerate() {
                if v.is_some() {
                    p[k] = true;
                }
            }
        }
        p
    }
}

/// What sorting the series into GPUs left out.
#[derive(Debug, Default, Clone)]
pub struct Sorted {
    pub gpus: Vec<GpuGrid>,
    /// Series of metrics that are not read, or naming no GPU.
    pub ignored_series: usize,
    /// GPUs beyond [`MAX_GPUS`].
    pub gpus_left_out: usize,
}

fn label<'a>(s: &'a RawSeries, k: &str) -> Option<&'a str> {
    s.labels
        .get(k)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Sort the series into GPUs: the index label of the series' exporter names the GPU; per signal, the
/// metric listed first in [`signals::METRICS`] that has points wins; two series of one metric and GPU
/// (merged pods, two scrape jobs) take the larger value per step.
pub fn gpus(input: &HistoryInput) -> Sorted {
    let steps = input.steps();
    let mut out = Sorted::default();
    // (gpu) -> signal -> (metric rank, grid)
    let mut by_gpu: BTreeMap<GpuKey, (GpuGrid, BTreeMap<Signal, usize>)> = BTreeMap::new();
    for s in &input.series {
        let Some(m) = label(s, "__name__").and_then(signals::metric) else {
            out.ignored_series += 1;
            continue;
        };
        let rank = signals::METRICS
            .iter()
            .position(|x| x.name == m.name)
            .unwrap_or(usize::MAX);
        let (index_label, uuid_label, model_label) = match m.exporter {
            Exporter::Dcgm => (("gpu", "UUID"), "UUID", "modelName"),
            Exporter::Amd => (("gpu_id", "serial_number"), "serial_number", "card_model"),
            // HLML's serial is what the device plugin and the probe name a Gaudi by; no model label.
            Exporter::Gaudi => (("id", "Serial"), "Serial", ""),
        };
        let Some(id) = label(s, index_label.0).or_else(|| label(s, index_label.1)) else {
            out.ignored_series += 1;
            continue;
        };
        let id = clean(id, MAX_LABEL_CHARS);
        let key = GpuKey {
            exporter: m.exporter,
            index: id.parse().ok(),
            id,
        };
        if !by_gpu.contains_key(&key) && by_gpu.len() >= MAX_GPUS {
            out.gpus_left_out += 1;
            continue;
        }
        let (grid, ranks) = by_gpu.entry(key.clone()).or_insert_with(|| {
            (
                GpuGrid {
                    key,
                    uuid: None,
                    model: None,
                    signals: BTreeMap::new(),
                },
                BTreeMap::new(),
            )
        });
        if grid.uuid.is_none() {
            grid.uuid = label(s, uuid_label).map(|v| clean(v, MAX_LABEL_CHARS));
        }
        if grid.model.is_none() {
            grid.model = label(s, model_label).map(|v| clean(v, MAX_LABEL_CHARS));
        }
        let mut points = vec![None; steps];
        let mut any = false;
        for &(t, v) in &s.points {
            if !v.is_finite() || !t.is_finite() || input.step <= 0 {
                continue;
            }
            let k = ((t - input.start as f64) / input.step as f64).round();
            if k < 0.0 || k >= steps as f64 {
                continue;
            }
            points[k as usize] = Some(v * m.scale);
            any = true;
        }
        if !any {
            continue;
        }
        match ranks.get(&m.signal) {
            Some(&r) if r < rank => continue,
            Some(&r) if r == rank => {
                let g = grid
                    .signals
                    .get_mut(&m.signal)
                    .expect("ranked signals have a grid");
                for (a, b) in g.iter_mut().zip(points) {
                    *a = match (*a, b) {
                        (Some(x), Some(y)) => Some(x.max(y)),
                        (x, y) => x.or(y),
                    };
                }
            }
            _ => {
                ranks.insert(m.signal, rank);
                grid.signals.insert(m.signal, points);
            }
        }
    }
    out.gpus = by_gpu
        .into_values()
        .map(|(g, _)| g)
        .filter(|g| !g.signals.is_empty())
        .collect();
    out.gpus.sort_by(|a, b| {
        (a.key.exporter, a.key.index.unwrap_or(u32::MAX), &a.key.id).cmp(&(
            b.key.exporter,
            b.key.index.unwrap_or(u32::MAX),
            &b.key.id,
        ))
    });
    out
}
