//! The cluster's own history of a node's GPUs: what dcgm-exporter (NVIDIA) or AMD's device-metrics-exporter
//! recorded in the cluster's Prometheus over the last hours, judged. The launcher reads the series
//! (`launcher/src/cluster/prometheus/`); everything here is pure: [`analyze`] takes the series as they came,
//! labels untrusted, and answers one [`NodeHistory`]: per GPU the share of the window each throttle reason
//! held and the harmful episodes, the Xids seen (decoded with the XID catalog), how the ECC, row-remap and
//! PCIe counters grew, power against its limit, utilization; a verdict and a line per GPU, the GPUs that are
//! alike and fine in one line, and the gaps in the data said as gaps, never as health.
//!
//! Not to be confused with `kernel_log::history` (earlier boots' kernel logs on the node itself).

pub mod gpu;
pub mod input;
pub mod report;
pub mod signals;
pub mod words;

#[cfg(test)]
mod tests;

use crate::analysis::index_ranges;
use crate::finding::Verdict;

pub use input::{HistoryInput, RawSeries};
pub use report::{Episode, GpuHistory, NodeHistory, WindowSpan};
pub use signals::Exporter;

use signals::Missing;

/// Judge a node's series over the window.
pub fn analyze(input: &HistoryInput) -> NodeHistory {
    let steps = input.steps();
    let sorted = input::gpus(input);
    let long_window = input.end - input.start > 86_400;
    let mut node_presence = vec![false; steps];
    for g in &sorted.gpus {
        for (k, p) in g.presence(steps).into_iter().enumerate() {
            node_presence[k] |= p;
        }
    }
    let cx = gpu::Ctx {
        input,
        steps,
        node_presence: &node_presence,
        long_window,
    };
    let gpus: Vec<GpuHistory> = sorted.gpus.iter().map(|g| gpu::judge(g, &cx)).collect();

    let present = node_presence.iter().filter(|p| **p).count();
    let coverage = present as f64 / steps.max(1) as f64;
    let gap_runs = gpu::runs(node_presence.iter().map(|p| !p));
    let gaps: Vec<Episode> = gap_runs
        .iter()
        .take(gpu::MAX_GAPS)
        .map(|&(a, b)| Episode {
            start: words::rfc3339(input.at(a)),
            end: words::rfc3339(input.at(b)),
            seconds: ((b - a + 1) as i64 * input.step) as u64,
            what: "no data from any GPU: the exporter down, or not scraped".into(),
        })
        .collect();

    let mut exporters: Vec<Exporter> = sorted.gpus.iter().map(|g| g.key.exporter).collect();
    exporters.sort();
    exporters.dedup();

    let mut not_exported = Vec::new();
    for e in &exporters {
        for (what, read) in [
            (Missing::ThrottleReasons, "throttle"),
            (Missing::Xid, "xid"),
            (Missing::Ecc, "ecc"),
            (Missing::PowerLimit, "power_limit"),
        ] {
            let how = signals::how_to_export(*e, what);
            let none_has = gpus
                .iter()
                .filter(|g| g.exporter == *e)
                .all(|g| !g.read.iter().any(|r| r == read));
            if !how.is_empty() && none_has {
                not_exported.push(how.to_string());
            }
        }
    }

    let mut left_out = input.left_out.clone();
    if sorted.gpus_left_out > 0 {
        left_out.push(format!(
            "{} GPUs past the first {} (the node label matched more GPUs than a node has: check the scrape's relabelling)",
            sorted.gpus_left_out,
            input::MAX_GPUS
        ));
    }

    let verdict = gpus
        .iter()
        .map(|g| g.verdict)
        .max()
        .map(|v| {
            if v == Verdict::Healthy && coverage < gpu::MIN_COVERAGE {
                Verdict::Unknown
            } else {
                v
            }
        })
        .unwrap_or(Verdict::Unknown);
    let window_words = words::window(input.end - input.start);
    let uniform = uniform_line(&gpus);
    let headline = headline(input, &gpus, &gap_runs, verdict, &window_words);

    NodeHistory {
        node: input.node.clone(),
        window: WindowSpan {
            start: words::rfc3339(input.start),
            end: words::rfc3339(input.end),
            hours: (input.end - input.start) as f64 / 3600.0,
            step_secs: input.step.max(0) as u64,
        },
        source: input.source.clone(),
        matched_label: input.matched_label.clone(),
        exporters,
        verdict,
        headline,
        uniform,
        gaps,
        coverage,
        not_exported,
        gpus,
        left_out,
    }
}

/// `GPU 0-2, 4-7` for numeric indices, else the ids listed.
fn gpu_set(gpus: &[&GpuHistory]) -> String {
    let idx: Option<Vec<u32>> = gpus.iter().map(|g| g.gpu.parse().ok()).collect();
    match idx {
        Some(i) => format!("GPU {}", index_ranges(&i, ", ")),
        None => format!(
            "GPU {}",
            gpus.iter()
                .map(|g| g.gpu.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn span(values: impl Iterator<Item = f64>, unit: &str) -> Option<String> {
    let v: Vec<f64> = values.collect();
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.is_empty() {
        None
    } else if (max - min).round() == 0.0 {
        Some(format!("{min:.0}{unit}"))
    } else {
        Some(format!("{min:.0}-{max:.0}{unit}"))
    }
}

/// The GPUs that are healthy with nothing to say, in one line with their readings as ranges.
fn uniform_line(gpus: &[GpuHistory]) -> Option<String> {
    let plain: Vec<&GpuHistory> = gpus.iter().filter(|g| gpu::is_plain(g)).collect();
    if plain.is_empty() {
        return None;
    }
    let mut readings = Vec::new();
    if let Some(s) = span(
        plain
            .iter()
            .filter_map(|g| g.utilization.as_ref().map(|u| u.mean)),
        "%",
    ) {
        readings.push(format!("util {s} avg"));
    }
    if let Some(s) = span(
        plain
            .iter()
            .filter_map(|g| g.power.as_ref().map(|p| p.mean_watts)),
        " W",
    ) {
        readings.push(format!("{s} avg"));
    }
    if let Some(s) = span(
        plain
            .iter()
            .filter_map(|g| g.temperature.as_ref().map(|t| t.max)),
        " °C",
    ) {
        readings.push(format!("max {s}"));
    }
    let all_read = |what: &str| plain.iter().all(|g| g.read.iter().any(|r| r == what));
    let mut said = Vec::new();
    if all_read("throttle") {
        said.push("no harmful throttling");
    }
    if all_read("xid") {
        said.push("no Xid");
    }
    if all_read("ecc") {
        said.push("error counters flat");
    }
    let state = if said.is_empty() {
        "no throttle reasons or Xids exported, nothing judged".to_string()
    } else {
        format!("steady — {}", said.join(", "))
    };
    Some(format!(
        "{}: {state}{}{}",
        gpu_set(&plain),
        if readings.is_empty() { "" } else { "; " },
        readings.join(", ")
    ))
}

fn headline(
    input: &HistoryInput,
    gpus: &[GpuHistory],
    gap_runs: &[(usize, usize)],
    verdict: Verdict,
    window: &str,
) -> String {
    let odd: Vec<&GpuHistory> = gpus.iter().filter(|g| !gpu::is_plain(g)).collect();
    let gap_secs: i64 = gap_runs
        .iter()
        .map(|(a, b)| (b - a + 1) as i64 * input.step)
        .sum();
    let gaps = if gap_secs > 0 {
        format!(
            "; no data for {} of the {window} (exporter down or not scraped)",
            words::duration(gap_secs as u64)
        )
    } else {
        String::new()
    };
    if gpus.is_empty() {
        return format!("{}: no GPU series over the last {window}", input.node);
    }
    let lead = match verdict {
        Verdict::Unhealthy => "unhealthy",
        Verdict::Degraded => "degraded",
        Verdict::Unknown => "unknown",
        Verdict::Healthy => "healthy",
    };
    if odd.is_empty() {
        return format!(
            "{}: {lead} over the last {window} — {} GPUs steady{gaps}",
            input.node,
            gpus.len()
        );
    }
    let worst: Vec<String> = {
        let mut o = odd.clone();
        o.sort_by_key(|g| std::cmp::Reverse(g.verdict));
        o.iter()
            .take(3)
            .map(|g| {
                // The model is in each GPU's own line; the headline names the GPU by its index alone.
                let l = g.line.split(" — ").next().unwrap_or(&g.line);
                let l = l.strip_prefix(&format!("{}: ", gpu::name(g))).unwrap_or(l);
                crate::incident::platform::clean(&format!("GPU {}: {l}", g.gpu), 240)
            })
            .collect()
    };
    let more = if odd.len() > 3 {
        format!("; {} more GPUs below", odd.len() - 3)
    } else {
        String::new()
    };
    let rest = gpus.len() - odd.len();
    let steady = if rest > 0 {
        format!("; {rest} other{} steady", if rest == 1 { "" } else { "s" })
    } else {
        String::new()
    };
    format!(
        "{}: {lead} over the last {window} (times UTC) — {}{more}{steady}{gaps}",
        input.node,
        worst.join("; ")
    )
}
