//! A watch's answer: one node's window as it stands, or a workload's windows joined. Across a workload's
//! nodes the GPUs are the ones its pods hold, the pattern is read again over the windows that coincide
//! (`pattern::join_windows`), each node's own episodes on those GPUs are kept, and the whole is joined to what
//! its ranks logged and each node's end (`workload::diagnose`) and, beside it, to a node's recorded history.
//! Pure: the probes' windows, the pods, their logs and the history come in as data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::episodes::{listed, on_gpus};
use super::pattern::{self, GpuInUse};
use super::report::{
    GpuWindow, HistoryJoin, NodeEpisode, NodeWindow, Pattern, PatternKind, WatchOutput,
    WatchReport, WorkloadJoin,
};
use crate::finding::{Judged, Severity, Verdict};
use crate::history::NodeHistory;
use crate::workload::joblog::PodLogScan;
use crate::workload::{WorkloadInput, WorkloadNode, WorkloadPod, diagnose};

/// Suspects of the workload's side kept in the answer.
const SUSPECTS_LISTED: usize = 10;
/// GPUs of a node's history named in the answer.
const HISTORY_GPUS: usize = 8;

/// A node's window and its kept report's URI, or why it has none.
pub type NodeResult = Result<(WatchReport, Option<String>), String>;

/// The node's history beside a window: its verdict and the GPUs that deviate, a line each.
pub fn history_join(node: &str, hours: u32, h: &NodeHistory) -> HistoryJoin {
    HistoryJoin {
        node: node.to_string(),
        hours,
        source: format!("{} (label {})", h.source, h.matched_label),
        verdict: h.verdict,
        headline: h.headline.clone(),
        gpus: h
            .gpus
            .iter()
            .filter(|g| g.verdict != Verdict::Healthy)
            .take(HISTORY_GPUS)
            .map(|g| format!("GPU {}: {}", g.gpu, g.line))
            .collect(),
    }
}

/// One node's window as the answer: its episodes (bounded), its GPUs and its incidents at the end. The
/// history, the timing and the chart are the caller's to add.
pub fn of_node(
    node: &str,
    context: Option<String>,
    seconds: u32,
    interval_ms: u32,
    w: &WatchReport,
    report_uri: Option<String>,
) -> WatchOutput {
    let episodes: Vec<NodeEpisode> = w
        .episodes
        .iter()
        .map(|e| NodeEpisode {
            node: node.to_string(),
            episode: e.clone(),
        })
        .collect();
    let (episodes, not_listed) = listed(episodes);
    let window = NodeWindow {
        node: node.to_string(),
        verdict: Some(w.verdict),
        headline: Some(w.headline.clone()),
        error: None,
        gpus: w.gpus.clone(),
        steady: None,
        held: None,
        incidents: incidents_of(w),
        report_uri,
    };
    WatchOutput {
        target: format!("node {node}"),
        context,
        seconds,
        interval_ms,
        started_at: rfc3339(w.window.started_unix),
        verdict: w.verdict,
        headline: w.headline.clone(),
        pattern: w.pattern.clone(),
        episodes,
        episodes_not_listed: not_listed,
        nodes: vec![window],
        nodes_failed: 0,
        workload: None,
        history: None,
        chart_uri: None,
        total_millis: 0,
        chart_png: None,
    }
}

/// A workload's windows, taken on one clock, with what the API server said of it.
pub struct WorkloadWindows {
    /// `kind/name`.
    pub label: String,
    pub namespace: String,
    pub context: Option<String>,
    pub seconds: u32,
    pub interval_ms: u32,
    /// The common clock's start (Unix milliseconds).
    pub start_at_ms: u64,
    pub pods: Vec<WorkloadPod>,
    /// The pods' nodes as the API server lists them.
    pub nodes: Vec<WorkloadNode>,
    pub logs: Option<BTreeMap<String, Result<PodLogScan, String>>>,
    /// The limits the logs were read under.
    pub log_limits: String,
    /// Each node's window, or why it has none.
    pub windows: Vec<(String, NodeResult)>,
}

/// The workload's windows joined into one answer. The history (of the pattern's first suspect node), the
/// timing and the chart are the caller's to add.
pub fn of_workload(input: WorkloadWindows) -> WatchOutput {
    let WorkloadWindows {
        label,
        namespace,
        context,
        seconds,
        interval_ms,
        start_at_ms,
        pods,
        nodes: k8s_nodes,
        logs,
        log_limits,
        mut windows,
    } = input;
    windows.sort_by(|a, b| a.0.cmp(&b.0));
    let pods_of_workload: BTreeSet<String> = pods
        .iter()
        .map(|p| format!("{namespace}/{}", p.name))
        .collect();
    // Each node's GPUs of the workload: those its pods hold, where the kubelet said; else every GPU watched.
    let mut job_gpus: Vec<(String, GpuWindow)> = Vec::new();
    let mut held_note: BTreeMap<String, String> = BTreeMap::new();
    for (node, r) in &windows {
        let Ok((w, _)) = r else { continue };
        let held: Vec<&GpuWindow> = w
            .gpus
            .iter()
            .filter(|g| g.held_by.iter().any(|h| pods_of_workload.contains(h)))
            .collect();
        let chosen: Vec<&GpuWindow> = if held.is_empty() {
            held_note.insert(
                node.clone(),
                "the kubelet named no holder of the workload: every GPU of the node watched".into(),
            );
            w.gpus.iter().collect()
        } else {
            held_note.insert(
                node.clone(),
                format!("{} GPU(s) held by the workload's pods", held.len()),
            );
            held
        };
        job_gpus.extend(chosen.into_iter().map(|g| (node.clone(), g.clone())));
    }
    let in_use: Vec<GpuInUse<'_>> = job_gpus
        .iter()
        .map(|(n, g)| GpuInUse::new(Some(n.as_str()), g))
        .collect();
    // Only windows that coincide are compared; the nodes left out are named (pattern::join_windows).
    let spans: Vec<pattern::NodeSpan<'_>> = windows
        .iter()
        .map(|(n, r)| pattern::NodeSpan {
            node: n,
            window: r.as_ref().map(|(w, _)| &w.window).map_err(String::as_str),
        })
        .collect();
    let joined = pattern::join_windows(&spans);
    let pat = pattern::classify_joined(&in_use, f64::from(seconds), &joined);
    // Each node's own episodes on the workload's GPUs, then the pattern's, which name their node.
    let mut episodes: Vec<NodeEpisode> = Vec::new();
    for (node, r) in &windows {
        let Ok((w, _)) = r else { continue };
        let mine: BTreeSet<u32> = job_gpus
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, g)| g.identity.index)
            .collect();
        episodes.extend(on_gpus(node, w, &mine));
    }
    let suspect_node = first_suspect_node(&pat).unwrap_or_default();
    for e in &pat.episodes {
        episodes.push(NodeEpisode {
            node: suspect_node.clone(),
            episode: e.clone(),
        });
    }
    episodes.sort_by(|a, b| {
        b.episode
            .severity
            .cmp(&a.episode.severity)
            .then(a.episode.from_s.total_cmp(&b.episode.from_s))
    });
    // The workload's own side, with each node's end-of-window picture as its probe.
    let probes_for_diagnosis = windows
        .iter()
        .map(|(n, r)| {
            let end = match r {
                Ok((w, _)) => w
                    .node
                    .clone()
                    .ok_or_else(|| "the window ended before the node was read again".to_string()),
                Err(e) => Err(e.clone()),
            };
            (n.clone(), end)
        })
        .collect();
    let d = diagnose(&WorkloadInput {
        workload: label.clone(),
        pods,
        nodes: k8s_nodes,
        probes: probes_for_diagnosis,
        logs,
        log_limits: Some(log_limits.clone()),
    });
    let failed = windows.iter().filter(|(_, r)| r.is_err()).count();
    let worst = episodes.iter().map(|e| e.episode.severity).max();
    let verdict = match worst {
        Some(Severity::Critical) => Verdict::Unhealthy,
        Some(Severity::Warning) => Verdict::Degraded,
        _ if !pat.kind.is_steady() => Verdict::Degraded,
        _ if failed > 0 || pat.kind == PatternKind::Unknown || !pat.left_out.is_empty() => {
            Verdict::Unknown
        }
        _ => Verdict::Healthy,
    };
    let headline = workload_headline(&pat, &episodes, failed, windows.len(), seconds);
    let many = windows.len() > 2;
    let suspects: BTreeSet<String> = pat.suspects.iter().cloned().collect();
    let nodes = windows
        .into_iter()
        .map(|(node, r)| match r {
            Ok((w, uri)) => {
                let gpus: Vec<GpuWindow> = job_gpus
                    .iter()
                    .filter(|(n, _)| *n == node)
                    .map(|(_, g)| g.clone())
                    .collect();
                let (shown, steady) = if many {
                    split_steady(&node, gpus, &episodes, &suspects)
                } else {
                    (gpus, None)
                };
                NodeWindow {
                    verdict: Some(w.verdict),
                    headline: Some(w.headline.clone()),
                    error: None,
                    gpus: shown,
                    steady,
                    held: held_note.get(&node).cloned(),
                    incidents: incidents_of(&w),
                    report_uri: uri,
                    node,
                }
            }
            Err(e) => NodeWindow {
                node,
                verdict: None,
                headline: None,
                error: Some(e),
                gpus: Vec::new(),
                steady: None,
                held: None,
                incidents: Vec::new(),
                report_uri: None,
            },
        })
        .collect();
    let (episodes, not_listed) = listed(episodes);
    let mut suspects_d = d.suspects;
    suspects_d.truncate(SUSPECTS_LISTED);
    WatchOutput {
        target: format!("{label} in namespace {namespace}"),
        context,
        seconds,
        interval_ms,
        started_at: rfc3339(start_at_ms as f64 / 1000.0),
        verdict,
        headline,
        pattern: pat,
        episodes,
        episodes_not_listed: not_listed,
        nodes,
        nodes_failed: failed,
        workload: Some(WorkloadJoin {
            verdict: d.verdict,
            suspects: suspects_d,
            consequences: d.consequences,
            not_examined: d.not_examined,
            logs: log_limits,
        }),
        history: None,
        chart_uri: None,
        total_millis: 0,
        chart_png: None,
    }
}

/// The node of the pattern's first suspect (`NODE GPU n`), whose history a workload's answer reads.
pub fn first_suspect_node(p: &Pattern) -> Option<String> {
    p.suspects
        .first()
        .and_then(|s| s.split(" GPU ").next())
        .map(String::from)
}

fn rfc3339(unix: f64) -> String {
    crate::kernel_log::time::rfc3339(unix).unwrap_or_else(|| format!("{unix:.0}"))
}

/// The node's incidents at the window's end, a line each.
pub fn incidents_of(w: &WatchReport) -> Vec<String> {
    w.incidents()
        .map(|i| {
            i.incidents
                .iter()
                .filter(|x| x.severity >= Severity::Warning)
                .take(5)
                .map(|x| format!("[{}] {}", x.severity.label(), x.summary))
                .collect()
        })
        .unwrap_or_default()
}

/// A node's GPUs that deviated (an episode, or named by the pattern), and the rest in one line.
fn split_steady(
    node: &str,
    gpus: Vec<GpuWindow>,
    episodes: &[NodeEpisode],
    suspects: &BTreeSet<String>,
) -> (Vec<GpuWindow>, Option<String>) {
    let deviates = |g: &GpuWindow| {
        suspects.contains(&format!("{node} GPU {}", g.identity.index))
            || episodes.iter().any(|e| {
                e.node == node
                    && e.episode.gpu == Some(g.identity.index)
                    && e.episode.severity >= Severity::Warning
            })
    };
    let (shown, rest): (Vec<GpuWindow>, Vec<GpuWindow>) = gpus.into_iter().partition(deviates);
    let steady = (!rest.is_empty()).then(|| uniform_line(&rest));
    (shown, steady)
}

/// `7 GPUs: util 97–99%, SM 1980 MHz, 610–690 W, 58–66 °C`.
pub fn uniform_line(gpus: &[GpuWindow]) -> String {
    let range = |f: &dyn Fn(&GpuWindow) -> Option<(f64, f64)>| {
        let v: Vec<(f64, f64)> = gpus.iter().filter_map(f).collect();
        if v.is_empty() {
            return None;
        }
        let lo = v.iter().map(|x| x.0).fold(f64::INFINITY, f64::min);
        let hi = v.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max);
        Some(if (hi - lo).abs() < 0.5 {
            format!("{lo:.0}")
        } else {
            format!("{lo:.0}–{hi:.0}")
        })
    };
    let mut parts = vec![format!("{} GPU(s)", gpus.len())];
    if let Some(r) = range(&|g| g.util_pct.map(|s| (s.mean, s.mean))) {
        parts.push(format!("util {r}%"));
    }
    if let Some(r) = range(&|g| g.sm_mhz.map(|s| (s.min, s.max))) {
        parts.push(format!("SM {r} MHz"));
    }
    if let Some(r) = range(&|g| g.power_w.map(|s| (s.min, s.max))) {
        parts.push(format!("{r} W"));
    }
    if let Some(r) = range(&|g| g.temp_c.map(|s| (s.min, s.max))) {
        parts.push(format!("{r} °C"));
    }
    if parts.len() == 1 {
        parts.push("no readings".into());
    }
    parts.join(", ")
}

fn workload_headline(
    p: &Pattern,
    episodes: &[NodeEpisode],
    failed: usize,
    total: usize,
    seconds: u32,
) -> String {
    let bad = episodes
        .iter()
        .find(|e| e.episode.severity >= Severity::Warning && e.node_specific());
    let mut s = match bad {
        Some(e) if p.kind.is_steady() => format!("{}: {}", e.node, e.episode.text),
        Some(e) => format!("{}; first sign: {}: {}", p.summary, e.node, e.episode.text),
        None => p.summary.clone(),
    };
    let _ = write!(s, " ({seconds} s watched on {} node(s)", total - failed);
    if failed > 0 {
        let _ = write!(s, "; {failed} failed");
    }
    s.push(')');
    s
}
