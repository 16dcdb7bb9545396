//! One probe command on many nodes: a bounded number at a time, fewer while the API server answers 429
//! ([`AdaptiveLimit`]), each under the probe deadline, progress per node, the runs sharing what the runner
//! lets them ([`crate::probe::runner::Runner::batch`]: one watch, one node list), and every probe awaited
//! (also after a cancellation) so none outlives the call.

use crate::probe::runner::Lines;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_diag::command::Request;
use gpu_diag::finding::{Judged, Severity};
use tokio::task::JoinSet;

use super::{Cx, ProbeResult};
use crate::cluster::pressure::AdaptiveLimit;
use crate::mcp::progress::null_sink;

/// How one node's probe ended.
pub struct NodeOutcome {
    pub node: String,
    /// The report, or the error text (with its hint) when there is none.
    pub result: Result<ProbeResult, String>,
    pub millis: u64,
}

/// Run `request` on every node, at most `concurrency` at a time, and give each outcome to `summarize` as it
/// comes (a fleet's whole reports are never held at once). Summaries come in completion order. A node's
/// deadline starts when its probe does: waiting for a slot, throttled or not, never fails it.
pub async fn probe_nodes<T>(
    cx: &Cx,
    tool: &'static str,
    nodes: &[String],
    context: Option<String>,
    request: Request,
    concurrency: usize,
    summarize: impl FnMut(NodeOutcome) -> T,
) -> Vec<T> {
    probe_nodes_streamed(
        cx,
        tool,
        nodes,
        context,
        request,
        concurrency,
        None,
        summarize,
    )
    .await
}

/// Each node's streamed lines, to the sink this gives for it.
pub type LinesFor = Arc<dyn Fn(&str) -> Lines + Send + Sync>;

/// [`probe_nodes`], each node's streamed lines (a window's) to `lines_for(node)` as they arrive.
#[allow(clippy::too_many_arguments)]
pub async fn probe_nodes_streamed<T>(
    cx: &Cx,
    tool: &'static str,
    nodes: &[String],
    context: Option<String>,
    request: Request,
    concurrency: usize,
    lines_for: Option<LinesFor>,
    mut summarize: impl FnMut(NodeOutcome) -> T,
) -> Vec<T> {
    let total = nodes.len();
    if total > 0 {
        cx.progress.report(
            0.5,
            Some(total as f64),
            format!("probing {total} node(s), {concurrency} at a time"),
        );
    }
    let batch = cx.env.runner.batch(context.as_deref(), nodes);
    let limit = Arc::new(AdaptiveLimit::new(concurrency, batch.pressure()));
    // The runner enforces the probe deadline; this outer bound only guards against a runner that does not.
    let hard_limit = cx.env.deadline(&request).1 + Duration::from_secs(10);
    let mut set = JoinSet::new();
    let mut out = Vec::with_capacity(total);
    // What was found so far, for the progress message (a task's status message).
    let (mut with_findings, mut failed) = (0usize, 0usize);
    let mut done =
        |joined: Result<NodeOutcome, tokio::task::JoinError>, out: &mut Vec<T>| match joined {
            Ok(o) => {
                match &o.result {
                    Ok(r) if has_findings(r) => with_findings += 1,
                    Ok(_) => {}
                    Err(_) => failed += 1,
                }
                // After a cancellation the nodes that end are stopped, not answered: the count stays.
                if !cx.cancel.is_cancelled() {
                    cx.progress.report(
                        (out.len() + 1) as f64,
                        Some(total as f64),
                        progress_message(out.len() + 1, total, with_findings, failed, &o.node),
                    );
                }
                out.push(summarize(o));
            }
            Err(e) => tracing::error!(error = %e, "probe task failed"),
        };
    // A task per node only once it has its slot: a fleet of 10,000 is never 10,000 waiting tasks.
    for (i, node) in nodes.iter().enumerate() {
        let permit = tokio::select! {
            p = limit.acquire_owned() => p,
            _ = cx.cancel.cancelled() => {
                for node in &nodes[i..] {
                    done(Ok(NodeOutcome {
                        node: node.clone(),
                        result: Err("the call was cancelled".into()),
                        millis: 0,
                    }), &mut out);
                }
                break;
            }
        };
        while let Some(joined) = set.try_join_next() {
            done(joined, &mut out);
        }
        let env = cx.env.clone();
        let cancel = cx.cancel.child_token();
        let request = request.clone();
        let context = context.clone();
        let batch = batch.clone();
        let node = node.clone();
        let lines = lines_for.as_ref().map(|f| f(&node));
        set.spawn(async move {
            let _permit = permit;
            let t = Instant::now();
            let run = env.probe_lines(
                tool,
                &node,
                context,
                &request,
                null_sink(),
                cancel.clone(),
                batch,
                lines,
            );
            let result = match tokio::time::timeout(hard_limit, run).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => {
                    cancel.cancel();
                    Err(format!(
                        "probe of `{node}` did not finish within {} s",
                        hard_limit.as_secs()
                    ))
                }
            };
            NodeOutcome {
                node,
                result,
                millis: t.elapsed().as_millis() as u64,
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        done(joined, &mut out);
    }
    if limit.lowest() < concurrency {
        tracing::info!(
            nodes = total,
            concurrency,
            lowest = limit.lowest(),
            "the API server pushed back (429); probes ran fewer at a time meanwhile"
        );
    }
    out
}

/// A report with a warning or critical finding.
fn has_findings(r: &ProbeResult) -> bool {
    r.report
        .findings()
        .iter()
        .any(|f| f.severity >= Severity::Warning)
}

/// `37 of 200 nodes answered; 3 with findings, 1 failed (last: gpu-7)`.
fn progress_message(
    answered: usize,
    total: usize,
    with_findings: usize,
    failed: usize,
    last: &str,
) -> String {
    let mut s = format!("{answered} of {total} nodes answered; {with_findings} with findings");
    if failed > 0 {
        s.push_str(&format!(", {failed} failed"));
    }
    s.push_str(&format!(" (last: {last})"));
    s
}

#[cfg(test)]
mod tests {
    use super::progress_message;

    #[test]
    fn the_progress_message_counts_answers_findings_and_failures() {
        assert_eq!(
            progress_message(37, 200, 3, 0, "gpu-7"),
            "37 of 200 nodes answered; 3 with findings (last: gpu-7)"
        );
        assert_eq!(
            progress_message(1, 1, 0, 1, "local"),
            "1 of 1 nodes answered; 0 with findings, 1 failed (last: local)"
        );
    }
}
