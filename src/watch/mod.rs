//! `watch`: a node's GPUs sampled over a window, read as episodes rather than samples. A hung collective, a
//! straggler, throttling in bursts, a counter that climbs only under load or an Xid that arrives while one
//! looks show over seconds, not at an instant.
//!
//! node-probe samples (`node-probe watch`), each sample made from the collector's facts by
//! [`sample::sample_of`] so a simulated node (played by [`script`]) and a real one are read alike; this module
//! turns the samples into one GPU's window (`episodes.rs`), the node's pattern across its GPUs in use
//! (`pattern.rs`, which the launcher also applies across a job's nodes), and a bounded timeline
//! (`timeline.rs`); `join.rs` makes the launcher's answer of it: one node's window, or a workload's windows
//! joined to its pods, its ranks' logs and a node's history. Pure: no clock, no I/O.

mod episodes;
pub mod join;
pub mod live;
pub mod pattern;
mod report;
pub mod sample;
pub mod script;
#[cfg(test)]
mod tests;
pub mod timeline;

use crate::facts::{KernelLogFacts, NodeFacts, Reading};
use crate::finding::{Judged, Severity, Verdict};
use crate::kernel_log::report::EventKind;
use crate::options::AnalysisOptions;
use crate::workload::WorkloadNodeReport;
pub use episodes::{EPISODES_LISTED, listed};
pub use pattern::GpuInUse;
pub use report::{
    CounterDelta, Episode, EpisodeKind, GpuTimeline, GpuWindow, HistoryJoin, INTERVAL_MS,
    MAX_KERNEL_LINES, MAX_SAMPLES, NodeEpisode, NodeWindow, Pattern, PatternKind, SECONDS, Stat,
    ThrottleTime, Tick, WatchInput, WatchOutput, WatchReport, Window, WorkloadJoin, bounded, secs,
    window_seconds,
};
pub use sample::{GpuIdentity, GpuSample, Throttle};

/// Read a window. `facts` is the node as collected at the window's start (the GPUs' identities, to name the
/// GPU of each kernel-log line); `node` the end-of-window report, when the probe made one.
pub fn analyze(
    input: &WatchInput,
    facts: &NodeFacts,
    node: Option<WorkloadNodeReport>,
    opts: &AnalysisOptions,
) -> WatchReport {
    let holders = node.as_ref().map(holders_of).unwrap_or_default();
    let mut gpus: Vec<GpuWindow> = input
        .identities
        .iter()
        .map(|id| {
            let held = holders
                .iter()
                .filter(|(i, _)| *i == id.index)
                .map(|(_, h)| h.clone())
                .collect();
            let procs = input
                .processes
                .iter()
                .filter(|(i, _)| *i == id.index)
                .map(|(_, n)| *n)
                .max();
            episodes::window_of(input, id, held, procs)
        })
        .collect();
    let mut episodes: Vec<Episode> = gpus
        .iter()
        .flat_map(|g| episodes::of_gpu(input, g))
        .collect();
    episodes.extend(kernel_events(input, facts, opts));
    let in_use: Vec<GpuInUse<'_>> = gpus.iter().map(|g| GpuInUse::new(None, g)).collect();
    let pattern = pattern::classify(&in_use, window_seconds(input));
    episodes.extend(pattern.episodes.iter().cloned());
    episodes.extend(onset(input, &gpus, &pattern));
    merge_bursts(&mut episodes, &gpus);
    episodes.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.from_s.total_cmp(&b.from_s))
            .then(a.gpu.cmp(&b.gpu))
    });
    for g in &mut gpus {
        g.line = episodes::line(g, &episodes);
    }
    let worst = episodes.iter().map(|e| e.severity).max();
    let node_verdict = node.as_ref().and_then(Judged::verdict);
    let verdict = match (worst, node_verdict) {
        (Some(Severity::Critical), _) | (_, Some(Verdict::Unhealthy)) => Verdict::Unhealthy,
        (Some(Severity::Warning), _) | (_, Some(Verdict::Degraded)) => Verdict::Degraded,
        _ if input.ticks.len() < 2 || pattern.kind == PatternKind::Unknown => Verdict::Unknown,
        _ => Verdict::Healthy,
    };
    let mut headline = headline(&pattern, &episodes, input);
    // Nothing in the window, but the node's own read at its end found a fault: say it first.
    if !episodes.iter().any(|e| e.severity >= Severity::Warning)
        && let Some(i) = node
            .as_ref()
            .and_then(Judged::incidents)
            .and_then(|i| i.incidents.iter().find(|x| x.severity >= Severity::Warning))
    {
        headline = format!(
            "{}; at the window's end the node shows: {}",
            headline, i.summary
        );
    }
    WatchReport {
        window: Window {
            started_unix: input.started_unix,
            seconds: input.seconds,
            covered_s: window_seconds(input),
            interval_ms: input.interval_ms,
            samples: input.ticks.len() as u32,
            missed: input.missed,
            stopped_early: input.stopped_early,
        },
        verdict,
        headline,
        pattern,
        episodes,
        gpus,
        kernel_lines: input.kernel.len(),
        kernel_dropped: input.kernel_dropped,
        kernel_unreadable: input.kernel_unreadable.clone(),
        node: node.map(Box::new),
    }
}

/// The last third of the window read alone: a stall that began mid-window (the ranks spinning since a GPU
/// fell off the bus) shows there while the whole window's means still look busy.
fn onset(input: &WatchInput, gpus: &[GpuWindow], whole: &Pattern) -> Option<Episode> {
    let span = window_seconds(input);
    let first = input.ticks.first()?.t_s;
    let from = first + span * 2.0 / 3.0;
    let tail = WatchInput {
        ticks: input
            .ticks
            .iter()
            .filter(|t| t.t_s >= from)
            .cloned()
            .collect(),
        kernel: Vec::new(),
        ..input.clone()
    };
    if tail.ticks.len() < 3 {
        return None;
    }
    let windows: Vec<GpuWindow> = gpus
        .iter()
        .map(|g| episodes::window_of(&tail, &g.identity, g.held_by.clone(), g.processes))
        .collect();
    let in_use: Vec<GpuInUse<'_>> = windows.iter().map(|g| GpuInUse::new(None, g)).collect();
    let p = pattern::classify(&in_use, window_seconds(&tail));
    let stalled = matches!(
        p.kind,
        PatternKind::AllIdle | PatternKind::BusyWhileOthersWait | PatternKind::IdleWhileOthersRun
    );
    if !stalled || p.kind == whole.kind {
        return None;
    }
    let at = tail.ticks.first().map_or(from, |t| t.t_s);
    Some(Episode {
        kind: EpisodeKind::Onset,
        severity: Severity::Warning,
        gpu: None,
        from_s: at,
        to_s: span,
        text: format!("from {} on: {}", secs(at), p.summary),
        code: format!(
            "pattern.onset.{}",
            serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ),
    })
}

/// Every GPU in use working in bursts is one fact of the node (steps with gaps), not one per GPU.
fn merge_bursts(episodes: &mut Vec<Episode>, gpus: &[GpuWindow]) {
    let bursty: Vec<u32> = episodes
        .iter()
        .filter(|e| e.kind == EpisodeKind::Bursty)
        .filter_map(|e| e.gpu)
        .collect();
    if bursty.len() < 2 || bursty.len() < gpus.iter().filter(|g| g.busy_pct > 0).count() {
        return;
    }
    let busy: Vec<u32> = gpus
        .iter()
        .filter(|g| bursty.contains(&g.identity.index))
        .map(|g| g.busy_pct)
        .collect();
    let mean = busy.iter().sum::<u32>() / busy.len().max(1) as u32;
    let first = episodes.iter().position(|e| e.kind == EpisodeKind::Bursty);
    let template = first.map(|i| episodes[i].clone());
    episodes.retain(|e| e.kind != EpisodeKind::Bursty);
    if let Some(mut e) = template {
        e.gpu = None;
        e.text = format!(
            "all {} GPUs worked in bursts together, busy {mean}% of the window: steps with idle gaps between them \
             (input-bound, checkpointing or host-side stalls), not one GPU's fault",
            bursty.len()
        );
        episodes.push(e);
    }
}

/// (GPU index, `namespace/pod`) for each holder the node's allocation names.
fn holders_of(node: &WorkloadNodeReport) -> Vec<(u32, String)> {
    node.allocation
        .gpus
        .iter()
        .flat_map(|g| {
            g.allocated_to
                .iter()
                .map(move |h| (g.gpu.index, format!("{}/{}", h.namespace, h.pod)))
        })
        .collect()
}

/// The kernel-log lines of the window, decoded by the same analysis as `xid`, each an episode at its time.
pub(crate) fn kernel_events(
    input: &WatchInput,
    facts: &NodeFacts,
    opts: &AnalysisOptions,
) -> Vec<Episode> {
    if input.kernel.is_empty() {
        return Vec::new();
    }
    let mut f = facts.clone();
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "kmsg".into(),
        lines: input.kernel.iter().map(|(_, l)| l.clone()).collect(),
        ..KernelLogFacts::default()
    });
    let report = crate::kernel_log::report::analyze(&f, opts);
    let mut out = Vec::new();
    for (i, e) in report.events.iter().enumerate() {
        let Some(line) = e.line else { continue };
        let at = input.kernel.get(line - 1).map_or(0.0, |(t, _)| *t);
        let gpu = e
            .pci_bus_id
            .as_deref()
            .and_then(|p| facts.gpus.iter().find(|g| same_bus(g.pci_bus_id.ok(), p)))
            .map(|g| g.index);
        let vendor_line = matches!(e.kind, EventKind::Amdgpu | EventKind::Habanalabs);
        // An Xid's finding ends in its number; an amdgpu or habanalabs line has none, and its finding
        // quotes it by line number (`line 13 ...`).
        let quoted = format!("line {line} ");
        let finding = report.findings.iter().find(|x| {
            x.gpu == gpu
                && (e.code.is_some_and(|c| x.code.ends_with(&format!(".{c}")))
                    || vendor_line && x.evidence.iter().any(|l| l.starts_with(&quoted)))
        });
        let judged = report
            .event_details
            .iter()
            .find(|d| d.event == i)
            .and_then(|d| d.severity);
        let severity = finding
            .map(|x| x.severity)
            .or(judged.filter(|_| vendor_line))
            .unwrap_or(Severity::Warning);
        let code = finding.map_or_else(
            || {
                e.code.map_or_else(
                    || format!("{:?}", e.kind).to_lowercase(),
                    |c| format!("xid.{c}"),
                )
            },
            |x| x.code.clone(),
        );
        // A vendor line in its own words: its mnemonic is the catalog's key, not a sentence.
        let what = if vendor_line {
            e.message.clone()
        } else {
            e.mnemonic.clone().unwrap_or_else(|| e.message.clone())
        };
        let name = match (e.kind, e.code) {
            (EventKind::Xid, Some(c)) => format!("Xid {c}"),
            (EventKind::Sxid, Some(c)) => format!("SXid {c}"),
            _ => code.clone(),
        };
        let on = gpu.map_or_else(String::new, |g| format!(" on GPU {g}"));
        out.push(Episode {
            kind: EpisodeKind::KernelEvent,
            severity,
            gpu,
            from_s: at,
            to_s: at,
            text: format!("{name}{on} at {}: {}", secs(at), bounded(&what, 160)),
            code,
        });
        if out.len() >= 32 {
            break;
        }
    }
    out
}

fn same_bus(a: Option<&String>, b: &str) -> bool {
    a.is_some_and(|a| {
        let norm = |s: &str| crate::pci::normalize_bus_id(s).unwrap_or_else(|| s.to_lowercase());
        let (x, y) = (norm(a), norm(b));
        // Xid lines carry no function: compare domain, bus and device.
        x.get(..10) == y.get(..10)
    })
}

fn headline(p: &Pattern, episodes: &[Episode], input: &WatchInput) -> String {
    let w = secs(window_seconds(input));
    if input.ticks.len() < 2 {
        return format!(
            "only {} sample(s) in the window: too few to read a change",
            input.ticks.len()
        );
    }
    let first_bad = episodes.iter().find(|e| {
        e.severity >= Severity::Warning
            && !matches!(
                e.kind,
                EpisodeKind::IdleAmongBusy
                    | EpisodeKind::BusyAmongIdle
                    | EpisodeKind::Slower
                    | EpisodeKind::NoProgress
            )
    });
    match first_bad {
        Some(e) if p.kind.is_steady() => format!("{} ({w} watched)", e.text),
        Some(e) => format!("{}; {} ({w} watched)", p.summary, e.text),
        None => format!("{} ({w} watched)", p.summary),
    }
}
