//! A window sampled on many nodes on one common clock: every probe is told the same start a little ahead of
//! the call (time for each pod to come up), so each samples the same instants, and the fan-out
//! ([`super::fanout::probe_nodes`]) runs them all at once, since each is held for the window. The progress
//! follows the window's own clock meanwhile ([`ticker`]): the probes answer only at its end.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpu_diag::command::Request;
use gpu_diag::contract::Report;
use gpu_diag::watch::join::NodeResult;

use super::fanout::probe_nodes;
use super::{Cx, ToolError};

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
    let windows = probe_nodes(cx, tool, nodes, context, request, nodes.len(), |o| {
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
    })
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
