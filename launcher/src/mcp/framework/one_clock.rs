//! A window sampled on many nodes on one common clock: every probe is told the same start a little ahead of
//! the call (time for each pod to come up), so each samples the same instants, and the fan-out
//! ([`super::fanout::probe_nodes`]) runs them all at once, since each is held for the window. The progress
//! follows the window's own clock meanwhile ([`ticker`]): the probes answer only at its end.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpu_diag::command::Request;
use gpu_diag::contract::Report;
use gpu_diag::watch::Episode;
use gpu_diag::watch::join::NodeResult;
use gpu_diag::watch::live::{self, Follow};

use super::fanout::{LinesFor, probe_nodes_streamed};
use super::{Cx, ToolError};
use crate::probe::runner::Lines;

/// The probes start this far ahead of the call, on one clock: time for every pod to come up.
pub const START_LEAD: Duration = Duration::from_secs(5);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Sample `nodes` for `seconds` every `interval_ms` from one common start; the start (Unix milliseconds) and
/// each node's window with its kept report's URI, or why it has none, in the order they answered.
pub async fn watch_nodes(
    cx: &Cx,
    tool: &'static str,
    nodes: &[String],
    context: Option<String>,
    seconds: u32,
    interval_ms: u32,
) -> Result<(u64, Vec<(String, NodeResult)>), ToolError> {
    let start_at = now_ms() + START_LEAD.as_millis() as u64;
    let request = Request::Watch {
        seconds,
        interval_ms,
        start_at_ms: Some(start_at),
        gpus: Vec::new(),
    };
    let tick = ticker(cx, seconds, START_LEAD, nodes.len());
    let live = LiveProgress::new(cx, seconds, nodes.len(), &tick);
    let lines_for: LinesFor = Arc::new(move |node: &str| live.lines(node));
    let windows = probe_nodes_streamed(
        cx,
        tool,
        nodes,
        context,
        request,
        nodes.len(),
        Some(lines_for),
        |o| {
        let r = match o.result {
            Ok(pr) => match pr.report {
                Report::Watch(w) => Ok((*w, pr.run.report_uri)),
                _ => Err("node-probe answered with another report than `watch`: the probe and launcher versions \
                          probably differ"
                    .to_string()),
            },
            Err(e) => Err(e),
        };
            (o.node, r)
        },
    )
    .await;
    tick.abort();
    if cx.cancel.is_cancelled() {
        return Err(ToolError::Cancelled);
    }
    Ok((start_at, windows))
}

/// Reports the window's progress on its own clock while the probes sample (they answer only at its end).
pub fn ticker(cx: &Cx, seconds: u32, lead: Duration, nodes: usize) -> tokio::task::JoinHandle<()> {
    let report = cx.progress.reporter();
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        let begin = Instant::now() + lead;
        let total = Some(f64::from(seconds));
        report(
            0.01,
            total,
            format!("starting {nodes} probe(s) on one clock"),
        );
        let step = Duration::from_secs(if seconds > 60 { 5 } else { 1 });
        loop {
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = cancel.cancelled() => return,
            }
            let now = Instant::now();
            if now < begin {
                // Above the fan-out's own "probing N node(s)" (0.5), below the window's first second.
                let left = (begin - now).as_secs_f64();
                let share = 1.0 - left / lead.as_secs_f64().max(0.001);
                report(
                    0.6 + 0.3 * share,
                    total,
                    format!("starting {nodes} probe(s): the window begins in {left:.0} s"),
                );
                continue;
            }
            let done = (now - begin).as_secs().min(u64::from(seconds));
            if done >= u64::from(seconds) {
                report(
                    f64::from(seconds),
                    total,
                    "window over: reading each node's end and the answers".into(),
                );
                return;
            }
            report(
                done as f64 + 0.02,
                total,
                format!("sampling {done} of {seconds} s on {nodes} node(s)"),
            );
        }
    })
}

/// The window's progress from its probes' streamed lines (`node-probe watch --stream`): each interval's
/// short summary, across every node once each has sent that instant, in place of the clock's ticks.
pub struct LiveProgress {
    report: Arc<dyn Fn(f64, Option<f64>, String) + Send + Sync>,
    seconds: u32,
    /// The clock's ticker, stopped at the first summary.
    ticker: tokio::task::AbortHandle,
    nodes: usize,
    state: Mutex<LiveState>,
}

#[derive(Default)]
struct LiveState {
    follows: BTreeMap<String, Follow>,
    /// The instant last summarised.
    summarised: f64,
    /// Kernel events not yet in a summary, with their node.
    events: Vec<(String, Episode)>,
}

impl LiveProgress {
    pub fn new(
        cx: &Cx,
        seconds: u32,
        nodes: usize,
        ticker: &tokio::task::JoinHandle<()>,
    ) -> Arc<Self> {
        Arc::new(LiveProgress {
            report: cx.progress.reporter(),
            seconds,
            ticker: ticker.abort_handle(),
            nodes,
            state: Mutex::new(LiveState {
                summarised: -1.0,
                ..LiveState::default()
            }),
        })
    }

    /// The sink for `node`'s lines.
    pub fn lines(self: &Arc<Self>, node: &str) -> Lines {
        let me = self.clone();
        let node = node.to_string();
        Lines::new(move |line| {
            // A line that is no window's (the document itself, or garbage) is the final parse's to refuse.
            if let Ok(l) = live::parse_line(line) {
                me.take(&node, l);
            }
        })
    }

    fn take(&self, node: &str, line: live::Live) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let f = st.follows.entry(node.to_string()).or_default();
        if !f.feed(line) {
            return;
        }
        let fresh: Vec<Episode> = f.events.clone();
        st.events
            .extend(fresh.into_iter().map(|e| (node.to_string(), e)));
        // An instant is summarised once every node that streams has sent it (a node that never started
        // streaming does not hold the others back).
        let t = st
            .follows
            .values()
            .filter(|f| !f.ids.is_empty())
            .map(|f| f.t_s)
            .fold(f64::INFINITY, f64::min);
        if !t.is_finite() || t <= st.summarised {
            return;
        }
        st.summarised = t;
        let many = self.nodes > 1;
        let named: Vec<(String, &live::Row)> = st
            .follows
            .iter()
            .flat_map(|(n, f)| {
                f.rows.iter().map(move |r| {
                    let name = if many {
                        format!("{n} GPU {}", r.index)
                    } else {
                        format!("GPU {}", r.index)
                    };
                    (name, r)
                })
            })
            .collect();
        let events: Vec<Episode> = st
            .events
            .iter()
            .map(|(n, e)| {
                let mut e = e.clone();
                if many {
                    e.text = format!("{n}: {}", e.text);
                }
                e
            })
            .collect();
        let line = live::summary(t, self.seconds, st.follows.len(), &named, &events);
        st.events.clear();
        self.ticker.abort();
        let s = f64::from(self.seconds.max(1));
        // Above the lead's ticks (at most 0.9), reaching the window's length at its end.
        let progress = ((0.95 + t.clamp(0.0, s) * (s - 0.95) / s) * 100.0).round() / 100.0;
        (self.report)(progress, Some(s), line);
    }
}
