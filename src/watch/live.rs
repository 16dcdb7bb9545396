//! A window as it is taken. `node-probe watch --stream` prints one JSON line per interval as soon as the
//! sample is read, and the window's document as the last line: one JSON value per line, the last one the
//! document. The launcher reads the lines as they arrive, for `watch_gpus`'s progress and for `top`'s rows.
//!
//! A line is bounded and typed like any probe output: [`parse_line`] refuses a line that is too long, not
//! JSON, or not one of these shapes, so a pasted or hostile line never reaches a screen or a model unread.
//! The judgments (which throttle held, which counter moved, what a kernel line means) are the window's own,
//! made by the same functions as its final answer.

use serde::{Deserialize, Serialize};

use super::sample::{GpuIdentity, GpuSample, Throttle, counter_is_critical, counter_label};
use super::{Episode, MAX_SAMPLES, WatchInput, secs};
use crate::facts::NodeFacts;
use crate::finding::Severity;
use crate::options::AnalysisOptions;

/// The longest line a stream may carry: a sample of 64 GPUs with every NVLink counter is about 40 KiB.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Lines a window may print before its document: a start, one per sample.
pub const MAX_LINES: usize = MAX_SAMPLES as usize + 1;
/// Kernel events carried on one line; more in one interval are counted, not sent.
pub const MAX_EVENTS_PER_LINE: usize = 16;

/// One line of a streamed window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "live", rename_all = "snake_case", deny_unknown_fields)]
pub enum Live {
    /// Once, with the first sample: the window's clock and the GPUs it samples.
    Start {
        started_unix: f64,
        interval_ms: u32,
        seconds: u32,
        gpus: Vec<GpuIdentity>,
        /// Who holds each GPU at the start, as the node's allocation says (`namespace/pod`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        holders: Vec<Holder>,
    },
    /// Each interval: the samples, and the kernel events that arrived since the last line, judged as the
    /// window's answer judges them.
    Sample {
        t_s: f64,
        gpus: Vec<GpuSample>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        events: Vec<Episode>,
        #[serde(default, skip_serializing_if = "is_zero")]
        events_dropped: u32,
    },
    /// An instant whose read outlasted its interval: nothing was sampled then.
    Missed { t_s: f64 },
}

/// A pod that holds a GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    pub gpu: u32,
    /// `namespace/pod`.
    pub pod: String,
}

/// The holders the node's allocation names (the kubelet's assignment, or the processes' cgroups).
pub fn holders_of(alloc: &crate::attribution::AllocationReport) -> Vec<Holder> {
    alloc
        .gpus
        .iter()
        .flat_map(|g| {
            g.allocated_to.iter().map(move |h| Holder {
                gpu: g.gpu.index,
                pod: format!("{}/{}", h.namespace, h.pod),
            })
        })
        .collect()
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a streamed line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("a streamed line of {0} bytes is over the {MAX_LINE_BYTES}-byte bound")]
    TooLong(usize),
    #[error("a streamed line is not a window's sample: {0}")]
    Shape(String),
}

/// Read one line of a stream (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Live, LineError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong(line.len()));
    }
    let text = std::str::from_utf8(line).map_err(|e| LineError::Shape(e.to_string()))?;
    serde_json::from_str(text.trim()).map_err(|e| LineError::Shape(e.to_string()))
}

impl Live {
    /// The line as the probe prints it: one line of JSON.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The kernel events among `lines` (seconds since the window's start, the line), judged as the window's
/// answer judges them, GPUs named from `facts` (the node at the window's start).
pub fn events_of(lines: &[(f64, String)], facts: &NodeFacts) -> (Vec<Episode>, u32) {
    if lines.is_empty() {
        return (Vec::new(), 0);
    }
    let input = WatchInput {
        kernel: lines.to_vec(),
        ..WatchInput::default()
    };
    let mut events = super::kernel_events(&input, facts, &AnalysisOptions::default());
    let dropped = events.len().saturating_sub(MAX_EVENTS_PER_LINE) as u32;
    events.truncate(MAX_EVENTS_PER_LINE);
    (events, dropped)
}

/// One accelerator at one instant, as a live view shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Row {
    pub index: u32,
    /// The model as the driver names it.
    pub model: String,
    pub util_pct: Option<u32>,
    pub mem_used_mib: Option<u64>,
    pub mem_total_mib: Option<u64>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub temp_c: Option<u32>,
    pub sm_mhz: Option<u32>,
    /// The throttles that held during the last interval, in the vendor's words, the most harmful first.
    pub throttles: Vec<&'static str>,
    /// Error counters that moved during the last interval: "corrected ECC errors +3".
    pub counters_moving: Vec<String>,
    /// A counter that moved is one that needs attention (uncorrectable memory errors).
    pub critical: bool,
    /// Why the GPU could not be read at this instant.
    pub unreadable: Option<String>,
}

/// The rows of one instant: `cur` against the sample before it (`prev`, `dt` seconds earlier), each GPU
/// named from the window's identities.
pub fn rows(
    ids: &[GpuIdentity],
    prev: Option<&[GpuSample]>,
    cur: &[GpuSample],
    dt: f64,
) -> Vec<Row> {
    cur.iter()
        .map(|s| {
            let id = ids.iter().find(|i| i.index == s.index);
            let before = prev.and_then(|p| p.iter().find(|b| b.index == s.index));
            let mut shares: Vec<(Throttle, f64)> = match before {
                Some(b) if b.unreadable.is_none() && dt > 0.0 => {
                    super::timeline::shares(b, s, dt).into_iter().collect()
                }
                _ => s.active.iter().map(|&t| (t, 1.0)).collect(),
            };
            shares.sort_by(|a, b| b.0.harmful().cmp(&a.0.harmful()).then(b.1.total_cmp(&a.1)));
            let moving: Vec<(String, u64)> = before
                .map(|b| {
                    s.counters
                        .iter()
                        .filter_map(|(k, &v)| {
                            let was = *b.counters.get(k)?;
                            (v > was).then(|| (k.clone(), v - was))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Row {
                index: s.index,
                model: id.and_then(|i| i.name.clone()).unwrap_or_default(),
                util_pct: s.util_pct,
                mem_used_mib: s.mem_used_mib,
                mem_total_mib: id.and_then(|i| i.mem_total_mib),
                power_w: s.power_w,
                power_limit_w: id.and_then(|i| i.power_limit_w),
                temp_c: s.temp_c,
                sm_mhz: s.sm_mhz,
                throttles: shares.iter().map(|(t, _)| t.label()).collect(),
                critical: moving.iter().any(|(k, _)| counter_is_critical(k)),
                counters_moving: moving
                    .iter()
                    .map(|(k, d)| format!("{} +{d}", counter_label(k)))
                    .collect(),
                unreadable: s.unreadable.clone(),
            }
        })
        .collect()
}

/// One interval in one line, for a model reading progress: the spread of the values across the GPUs, then
/// what stands out (a GPU unreadable, a harmful throttle, a counter moving, a kernel event). Each GPU comes
/// with the name the line gives it ("GPU 3", or "gpu-node-5 GPU 3" across nodes); `nodes` counts them.
pub fn summary(
    t_s: f64,
    of_s: u32,
    nodes: usize,
    gpus: &[(String, &Row)],
    events: &[Episode],
) -> String {
    let rows: Vec<&Row> = gpus.iter().map(|(_, r)| *r).collect();
    let spread = |v: Vec<f64>, unit: &str| -> Option<String> {
        let lo = v.iter().copied().reduce(f64::min)?;
        let hi = v.iter().copied().reduce(f64::max)?;
        Some(if (hi - lo).abs() < 0.5 {
            format!("{lo:.0}{unit}")
        } else {
            format!("{lo:.0}-{hi:.0}{unit}")
        })
    };
    let util = spread(
        rows.iter()
            .filter_map(|r| r.util_pct)
            .map(f64::from)
            .collect(),
        "% busy",
    );
    let power = spread(rows.iter().filter_map(|r| r.power_w).collect(), " W");
    let temp = spread(
        rows.iter()
            .filter_map(|r| r.temp_c)
            .map(f64::from)
            .collect(),
        " C",
    );
    let values: Vec<String> = [util, power, temp].into_iter().flatten().collect();
    let on = if nodes > 1 {
        format!(" on {nodes} nodes")
    } else {
        String::new()
    };
    let mut out = format!(
        "{} of {of_s} s: {} GPU(s){on}{}{}",
        secs(t_s),
        rows.len(),
        if values.is_empty() { "" } else { " " },
        values.join(", ")
    );
    let mut notes: Vec<String> = Vec::new();
    for (name, r) in gpus {
        if let Some(why) = &r.unreadable {
            notes.push(format!("{name} unreadable ({})", super::bounded(why, 60)));
            continue;
        }
        let harmful: Vec<&str> = r
            .throttles
            .iter()
            .copied()
            .filter(|l| Throttle::ALL.iter().any(|t| t.label() == *l && t.harmful()))
            .collect();
        if !harmful.is_empty() {
            notes.push(format!("{name} {}", harmful.join(", ")));
        }
        if !r.counters_moving.is_empty() {
            notes.push(format!("{name} {}", r.counters_moving.join(", ")));
        }
    }
    let mut events: Vec<&Episode> = events.iter().collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.severity));
    for e in events {
        let tag = match e.severity {
            Severity::Critical => "critical: ",
            Severity::Warning => "warning: ",
            _ => "",
        };
        notes.push(format!("{tag}{}", e.text));
    }
    const NOTES: usize = 4;
    let more = notes.len().saturating_sub(NOTES);
    notes.truncate(NOTES);
    if !notes.is_empty() {
        out.push_str("; ");
        out.push_str(&notes.join("; "));
    }
    if more > 0 {
        out.push_str(&format!("; {more} more"));
    }
    out
}

/// One node's stream followed line by line: the window's GPUs, the latest rows, and what arrived.
#[derive(Debug, Clone, Default)]
pub struct Follow {
    pub started_unix: Option<f64>,
    pub seconds: u32,
    pub ids: Vec<GpuIdentity>,
    pub holders: Vec<Holder>,
    /// The instant of the latest rows (seconds since the window's start).
    pub t_s: f64,
    pub rows: Vec<Row>,
    /// The kernel events of the latest line.
    pub events: Vec<Episode>,
    pub events_dropped: u32,
    pub missed: u32,
    prev: Option<(f64, Vec<GpuSample>)>,
}

impl Follow {
    /// Take one line; true when it brought new rows.
    pub fn feed(&mut self, line: Live) -> bool {
        match line {
            Live::Start {
                started_unix,
                seconds,
                gpus,
                holders,
                ..
            } => {
                self.started_unix = Some(started_unix);
                self.seconds = seconds;
                self.ids = gpus;
                self.holders = holders;
                false
            }
            Live::Missed { .. } => {
                self.missed += 1;
                false
            }
            Live::Sample {
                t_s,
                gpus,
                events,
                events_dropped,
            } => {
                let prev = self.prev.take();
                let dt = prev.as_ref().map_or(0.0, |(t, _)| t_s - t);
                self.rows = rows(
                    &self.ids,
                    prev.as_ref().map(|(_, g)| g.as_slice()),
                    &gpus,
                    dt,
                );
                self.t_s = t_s;
                self.events = events;
                self.events_dropped = events_dropped;
                self.prev = Some((t_s, gpus));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::EpisodeKind;

    fn sample(index: u32, util: u32, ecc: u64, hw_slowdown_ns: u64) -> GpuSample {
        let mut s = GpuSample {
            index,
            util_pct: Some(util),
            power_w: Some(400.0 + f64::from(util)),
            temp_c: Some(60 + util / 10),
            mem_used_mib: Some(1024),
            ..GpuSample::default()
        };
        s.counters.insert("ecc_uncorrected".into(), ecc);
        s.throttle_counters
            .insert(Throttle::HwThermal, hw_slowdown_ns);
        s
    }

    #[test]
    fn a_line_round_trips_and_a_hostile_one_is_refused() {
        let l = Live::Sample {
            t_s: 2.0,
            gpus: vec![sample(0, 90, 0, 0)],
            events: Vec::new(),
            events_dropped: 0,
        };
        assert_eq!(parse_line(l.to_line().as_bytes()).unwrap(), l);
        assert!(matches!(
            parse_line(br#"{"live":"sample","t_s":1,"gpus":[],"extra":1}"#),
            Err(LineError::Shape(_))
        ));
        assert!(matches!(
            parse_line(br#"{"schema_version":1}"#),
            Err(LineError::Shape(_))
        ));
        let long = vec![b' '; MAX_LINE_BYTES + 1];
        assert_eq!(
            parse_line(&long),
            Err(LineError::TooLong(MAX_LINE_BYTES + 1))
        );
    }

    #[test]
    fn rows_say_which_throttle_held_and_which_counter_moved() {
        let ids = vec![GpuIdentity {
            index: 0,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            power_limit_w: Some(700.0),
            mem_total_mib: Some(81559),
            ..GpuIdentity::default()
        }];
        let a = [sample(0, 90, 0, 0)];
        // Half of one second in HW thermal slowdown, and two uncorrectable errors.
        let b = [sample(0, 95, 2, 500_000_000)];
        let r = rows(&ids, Some(&a), &b, 1.0);
        assert_eq!(r[0].throttles, vec!["HW thermal slowdown"]);
        assert_eq!(r[0].counters_moving, vec!["uncorrected ECC errors +2"]);
        assert!(r[0].critical);
        assert_eq!(r[0].mem_total_mib, Some(81559));
        // Nothing moved in the next interval.
        let c = [sample(0, 95, 2, 500_000_000)];
        let r = rows(&ids, Some(&b), &c, 1.0);
        assert!(r[0].throttles.is_empty() && r[0].counters_moving.is_empty() && !r[0].critical);
        let line = summary(3.0, 30, 1, &[("GPU 0".into(), &r[0])], &[]);
        assert!(line.starts_with("3 s of 30 s: 1 GPU(s) 95% busy"), "{line}");
    }

    #[test]
    fn the_summary_names_what_stands_out_first_by_severity() {
        let ids = Vec::new();
        let a = [sample(0, 10, 0, 0), sample(1, 99, 0, 0)];
        let b = [sample(0, 12, 0, 0), sample(1, 99, 0, 900_000_000)];
        let r = rows(&ids, Some(&a), &b, 1.0);
        let ev = Episode {
            kind: EpisodeKind::KernelEvent,
            severity: Severity::Critical,
            gpu: Some(1),
            from_s: 4.0,
            to_s: 4.0,
            text: "Xid 79 on GPU 1 at 4 s: GPU has fallen off the bus".into(),
            code: "xid.79".into(),
        };
        let named: Vec<(String, &Row)> =
            r.iter().map(|x| (format!("GPU {}", x.index), x)).collect();
        let line = summary(4.0, 30, 1, &named, &[ev]);
        assert!(line.contains("12-99% busy"), "{line}");
        assert!(line.contains("GPU 1 HW thermal slowdown"), "{line}");
        assert!(line.contains("critical: Xid 79 on GPU 1"), "{line}");
    }
}
