//! `watch_gpus`' answer as text: the verdict and headline, the suspects, the episodes (most severe first),
//! the GPUs that deviated with their sparklines and the steady rest in a line per node, each node's
//! incidents at the end, the workload's side and the node's history; and the chart beside it
//! ([`super::chart`]).

use std::fmt::Write;

use gpu_diag::finding::Severity;
use gpu_diag::watch::join::uniform_line;
use gpu_diag::watch::timeline::{sparkline, throttle_marks};
use gpu_diag::watch::{
    EpisodeKind, GpuWindow, NodeEpisode, NodeWindow, PatternKind, WatchOutput, secs,
};

use super::chart::{Line, Mark, png};
use super::text::{sev_label, verdict_label};

/// Episodes and suspects shown in the text (the structured result lists more).
const EPISODES_SHOWN: usize = 10;
const SUSPECTS_SHOWN: usize = 5;
/// GPUs shown with their own lines and sparklines in the text.
const GPUS_SHOWN: usize = 8;

/// The chart of an answer's listed GPUs (a PNG), or none when it lists no GPU.
pub fn chart(o: &WatchOutput) -> Option<Vec<u8>> {
    let multi = o.nodes.len() > 1;
    let lines: Vec<Line<'_>> = o
        .nodes
        .iter()
        .flat_map(|n| {
            n.gpus.iter().map(move |g| Line {
                label: if multi {
                    format!("{} G{}", n.node, g.identity.index)
                } else {
                    format!("GPU {}", g.identity.index)
                },
                gpu: g,
            })
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    let marks: Vec<Mark> = o
        .episodes
        .iter()
        .filter(|e| e.episode.kind == EpisodeKind::KernelEvent)
        .map(|e| Mark {
            at_s: e.episode.from_s,
            label: e.episode.code.to_uppercase(),
        })
        .collect();
    let title = format!("{} - {} S AT {} MS", o.target, o.seconds, o.interval_ms);
    Some(png(&title, f64::from(o.seconds), &lines, &marks))
}

/// The answer as text.
pub fn render(o: &WatchOutput) -> String {
    let mut s = String::new();
    let gpus: usize = o.nodes.iter().map(|n| n.gpus.len()).sum();
    let _ = writeln!(
        s,
        "GPU watch of {}: {} s at {} ms{}",
        o.target,
        o.seconds,
        o.interval_ms,
        o.context
            .as_deref()
            .map(|c| format!(" (context {c})"))
            .unwrap_or_default()
    );
    let _ = writeln!(s, "verdict: {}", verdict_label(o.verdict));
    let _ = writeln!(s, "{}", o.headline);
    if o.pattern.kind != PatternKind::Progressing
        && !o.pattern.suspects.is_empty()
        && o.pattern.kind != PatternKind::AllIdle
    {
        let _ = writeln!(s, "suspects: {}", o.pattern.suspects.join(", "));
    }
    let shown: Vec<&NodeEpisode> = o.episodes.iter().take(EPISODES_SHOWN).collect();
    if !shown.is_empty() {
        let _ = writeln!(
            s,
            "episodes ({}):",
            o.episodes.len() + o.episodes_not_listed
        );
        let multi = o.nodes.len() > 1;
        for e in shown {
            let when = if (e.episode.to_s - e.episode.from_s).abs() < 0.01 {
                secs(e.episode.from_s)
            } else {
                format!(
                    "{}–{}",
                    secs(e.episode.from_s).trim_end_matches(" s"),
                    secs(e.episode.to_s)
                )
            };
            let at = if multi && !e.node.is_empty() && !e.episode.text.contains(&e.node) {
                format!("{}: ", e.node)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  [{}] {when} {at}{}",
                sev_label(e.episode.severity),
                e.episode.text
            );
        }
        let more = o.episodes.len().saturating_sub(EPISODES_SHOWN) + o.episodes_not_listed;
        if more > 0 {
            let _ = writeln!(s, "  (+{more} more in the structured result)");
        }
    }
    // GPUs: the deviating ones with their sparkline, the rest in a line per node.
    let mut listed = 0;
    // Many nodes: those with nothing to show are counted in one line, not listed one by one.
    let quiet = |n: &&NodeWindow| n.error.is_none() && n.gpus.is_empty() && n.incidents.is_empty();
    let many = o.nodes.len() > 4;
    let quiet_nodes: Vec<&NodeWindow> = if many {
        o.nodes.iter().filter(quiet).collect()
    } else {
        Vec::new()
    };
    if let Some(first) = quiet_nodes.first() {
        let _ = writeln!(
            s,
            "{} node(s) steady, e.g. {}: {}",
            quiet_nodes.len(),
            first.node,
            first.steady.as_deref().unwrap_or("no GPU of the workload")
        );
    }
    for n in &o.nodes {
        if many && quiet(&n) {
            continue;
        }
        if let Some(e) = &n.error {
            let _ = writeln!(s, "{}: not watched: {e}", n.node);
            continue;
        }
        let (dev, steady): (Vec<&GpuWindow>, Vec<&GpuWindow>) = n.gpus.iter().partition(|g| {
            o.episodes.iter().any(|e| {
                (e.node == n.node || o.nodes.len() == 1)
                    && e.episode.gpu == Some(g.identity.index)
                    && e.episode.severity >= Severity::Warning
            }) || o.pattern.suspects.iter().any(|x| {
                x == &format!("GPU {}", g.identity.index)
                    || x == &format!("{} GPU {}", n.node, g.identity.index)
            })
        });
        let prefix = if o.nodes.len() > 1 {
            format!("{}: ", n.node)
        } else {
            String::new()
        };
        let steady_line = match (&n.steady, steady.is_empty()) {
            (Some(line), _) => Some(line.clone()),
            (None, false) => Some(uniform_line(
                &steady.iter().map(|g| (*g).clone()).collect::<Vec<_>>(),
            )),
            _ => None,
        };
        if let Some(line) = steady_line {
            let _ = writeln!(s, "{prefix}steady: {line}");
        }
        for g in dev {
            if listed >= GPUS_SHOWN {
                break;
            }
            listed += 1;
            let _ = writeln!(s, "{prefix}GPU {}: {}", g.identity.index, g.line);
            let _ = writeln!(s, "    util {}", sparkline(&g.timeline.util_pct));
            let marks = throttle_marks(&g.timeline);
            if !marks.is_empty() {
                let _ = writeln!(s, "    thr  {marks}");
            }
        }
        for i in &n.incidents {
            let _ = writeln!(s, "{prefix}at the end: {i}");
        }
    }
    if let Some(w) = &o.workload {
        let _ = writeln!(s, "the workload's side: {}", w.verdict);
        for x in w.suspects.iter().take(SUSPECTS_SHOWN) {
            let place = match (&x.node, x.gpu) {
                (Some(n), Some(g)) => format!(" {n} GPU {g}"),
                (Some(n), None) => format!(" {n}"),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {}. [{}] {}{place}: {}",
                x.rank,
                sev_label(x.severity),
                x.code,
                x.summary
            );
        }
        for c in w.not_examined.iter().take(3) {
            let _ = writeln!(s, "  not examined: {c}");
        }
    }
    if let Some(h) = &o.history {
        let _ = writeln!(
            s,
            "the last {} h of {} ({}): {}",
            h.hours, h.node, h.source, h.headline
        );
        for g in &h.gpus {
            let _ = writeln!(s, "  {g}");
        }
    }
    if let Some(u) = &o.chart_uri {
        let _ = writeln!(s, "chart: {u} (the image beside this text)");
    }
    if gpus > 0 {
        s.push_str("per GPU in the structured result: readings' ranges, throttle times, counter deltas, a timeline of up to 30 buckets\n");
    }
    s
}
