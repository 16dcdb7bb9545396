//! `watch_gpus`: a node's GPUs, or every node of a workload, sampled over a window (`node-probe watch`), read as
//! episodes and one pattern. A workload's probes start together on a common clock (each samples the same
//! instants: `framework::one_clock`), its GPUs are the ones its pods hold, and the window is joined to what its
//! ranks logged and to each node's incidents at the window's end (`gpu_diag::watch::join`). This file checks
//! the arguments and asks; the text and the chart are `render::watch`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use gpu_diag::command::Request;
use gpu_diag::contract::Report;
use gpu_diag::watch::join::{self, WorkloadWindows};
use gpu_diag::watch::{HistoryJoin, WatchOutput};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::cluster::{LogLimits, WorkloadRef, workload};
use crate::mcp::framework::one_clock::{LiveProgress, ticker, watch_nodes};
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::{
    MAX_CONTEXT_LEN, MAX_LABEL_LEN, MAX_OBJECT_NAME_LEN, NODE_NAME_PATTERN, NodeTarget, workload_ref,
};
use crate::mcp::framework::{Cx, Hints, Tool, ToolError};
use crate::mcp::render;

pub struct WatchGpus;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchArgs {
    /// A node (`local` in local mode), or a workload: namespace plus one of pod, job, jobset, pytorchjob,
    /// mpijob, rayjob, label_selector.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN), regex(pattern = NODE_NAME_PATTERN))]
    pub node_name: Option<String>,
    /// Namespace of the workload.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_LEN))]
    pub namespace: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub pod: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub job: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub jobset: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub pytorchjob: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub mpijob: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_OBJECT_NAME_LEN))]
    pub rayjob: Option<String>,
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
    /// Seconds to watch (default 30).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 5, max = 600))]
    pub seconds: Option<u32>,
    /// Milliseconds between samples (default 1000; at least 1000 for over 16 nodes).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 250, max = 60000))]
    pub interval_ms: Option<u32>,
    /// GPU indices on the node (default: all).
    #[serde(default)]
    #[schemars(with = "Vec<u32>", length(min = 1, max = 64))]
    pub gpus: Option<Vec<u32>>,
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

pub const DEFAULT_SECONDS: u32 = 30;
pub const DEFAULT_INTERVAL_MS: u32 = 1000;
/// Nodes of a workload watched at most (each is one probe pod held for the window).
const MAX_NODES: usize = 128;
/// Above this many nodes the interval is at least a second (the answer's timeline is bounded anyway).
const FAST_NODES: usize = 16;
/// Hours of recorded history read beside a window.
const HISTORY_HOURS: u32 = 6;

enum Target {
    Node(NodeTarget),
    Workload { namespace: String, what: WorkloadRef },
}

impl WatchArgs {
    fn target(&self) -> Result<Target, ToolError> {
        let given = [
            ("pod", &self.pod),
            ("job", &self.job),
            ("jobset", &self.jobset),
            ("pytorchjob", &self.pytorchjob),
            ("mpijob", &self.mpijob),
            ("rayjob", &self.rayjob),
            ("label_selector", &self.label_selector),
        ];
        let any_workload = given.iter().any(|(_, v)| v.is_some()) || self.namespace.is_some();
        match (&self.node_name, any_workload) {
            (Some(n), false) => Ok(Target::Node(NodeTarget {
                node_name: n.clone(),
                context: self.context.clone(),
            })),
            (None, true) => {
                if self.gpus.is_some() {
                    return Err(ToolError::Invalid(
                        "`gpus` selects GPUs of one node; a workload's GPUs are the ones its pods hold".into(),
                    ));
                }
                let Some(ns) = &self.namespace else {
                    return Err(ToolError::Invalid("a workload needs its `namespace`".into()));
                };
                Ok(Target::Workload {
                    namespace: ns.clone(),
                    what: workload_ref(&given)?,
                })
            }
            (Some(_), true) => Err(ToolError::Invalid(
                "give either node_name or a workload (namespace plus pod, job, jobset, pytorchjob, mpijob, rayjob or \
                 label_selector), not both"
                    .into(),
            )),
            (None, false) => Err(ToolError::Invalid(
                "name what to watch: node_name, or a workload (namespace plus pod, job, jobset, pytorchjob, mpijob, \
                 rayjob or label_selector)"
                    .into(),
            )),
        }
    }
}

impl Tool for WatchGpus {
    type Args = WatchArgs;
    type Output = WatchOutput;
    const NAME: &'static str = "watch_gpus";
    const TITLE: &'static str = "Watch GPUs over a window";
    const DESCRIPTION: &'static str = "Is the job making progress, stuck or slow? Samples a node's or a \
workload's GPUs over a window and answers in episodes: throttling and its duration, errors climbing under \
load, an Xid mid-window, the pattern (a hang in a collective, a straggler).";
    const HINTS: Hints = Hints::READ_LIVE;
    const TASK: bool = true;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let started = Instant::now();
        let target = a.target()?;
        let seconds = a.seconds.unwrap_or(DEFAULT_SECONDS);
        if !(5..=600).contains(&seconds) {
            return Err(ToolError::Invalid(format!(
                "`seconds` must be between 5 and 600 (got {seconds})"
            )));
        }
        let interval_ms = a.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS);
        if !(250..=60_000).contains(&interval_ms) || interval_ms > seconds * 1000 {
            return Err(ToolError::Invalid(format!(
                "`interval_ms` must be between 250 and 60000 and at most the window (got {interval_ms})"
            )));
        }
        if let Some(g) = &a.gpus
            && (g.is_empty() || g.len() > 64 || g.iter().any(|&i| i > 1023))
        {
            return Err(ToolError::Invalid(
                "`gpus` lists 1 to 64 GPU indices (0 to 1023)".into(),
            ));
        }
        cx.check_context(a.context.as_deref())?;
        match target {
            Target::Node(t) => watch_node(cx, t, seconds, interval_ms, a.gpus.unwrap_or_default(), started).await,
            Target::Workload { namespace, what } => {
                watch_workload(cx, &namespace, &what, a.context, seconds, interval_ms, started).await
            }
        }
    }

    fn render(o: &Self::Output) -> String {
        render::watch::render(o)
    }

    fn images(o: &Self::Output) -> Vec<(String, &'static str)> {
        o.chart_png.iter().map(|p| (p.clone(), "image/png")).collect()
    }
}

/// The node's history, or nothing where no Prometheus is named or found (the window stands alone; a
/// Prometheus that fails is said in the log, not in the window's answer).
async fn history(cx: &Cx, context: Option<&str>, node: &str) -> Option<HistoryJoin> {
    match cx.gpu_history(context, node, HISTORY_HOURS).await {
        Ok(h) => Some(join::history_join(node, HISTORY_HOURS, &h)),
        Err(e) => {
            tracing::debug!(node, kind = e.kind(), error = %e, "no history beside the window");
            None
        }
    }
}

/// The answer with its timing and its chart, kept in the person's store (its URI and base64 data).
fn finish(cx: &Cx, mut o: WatchOutput, started: Instant) -> WatchOutput {
    use base64::Engine;
    o.total_millis = started.elapsed().as_millis() as u64;
    if let Some(bytes) = render::watch::chart(&o) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let node = o.nodes.first().map_or("watch", |n| n.node.as_str());
        o.chart_uri = cx.env.reports.put(node, "watch_gpus.png", b64.clone());
        o.chart_png = Some(b64);
    }
    o
}

async fn watch_node(
    cx: &Cx,
    t: NodeTarget,
    seconds: u32,
    interval_ms: u32,
    gpus: Vec<u32>,
    started: Instant,
) -> Result<WatchOutput, ToolError> {
    cx.check_target(&t)?;
    let request = Request::Watch {
        seconds,
        interval_ms,
        start_at_ms: None,
        gpus,
    };
    let tick = ticker(cx, seconds, Duration::from_millis(500), 1);
    let live = LiveProgress::new(cx, seconds, 1, &tick);
    let past = history(cx, t.context.as_deref(), &t.node_name);
    let run = cx.env.probe_lines(
        WatchGpus::NAME,
        &t.node_name,
        t.context.clone(),
        &request,
        crate::mcp::progress::null_sink(),
        cx.cancel.clone(),
        crate::probe::runner::Batch::default(),
        Some(live.lines(&t.node_name)),
    );
    let (res, past) = tokio::join!(run, past);
    tick.abort();
    let res = res?;
    let Report::Watch(w) = res.report else {
        return Err(ToolError::WrongReport {
            node: t.node_name.clone(),
            tool: WatchGpus::NAME.into(),
        });
    };
    let mut o = join::of_node(&t.node_name, t.context, seconds, interval_ms, &w, res.run.report_uri.clone());
    o.history = past;
    Ok(finish(cx, o, started))
}

async fn watch_workload(
    cx: &Cx,
    namespace: &str,
    what: &WorkloadRef,
    context: Option<String>,
    seconds: u32,
    interval_ms: u32,
    started: Instant,
) -> Result<WatchOutput, ToolError> {
    let Some(cluster) = cx.env.cluster.clone() else {
        return Err(ToolError::Invalid(
            "a workload's pods come from a cluster: this server runs in local mode; watch node_name \"local\" instead"
                .into(),
        ));
    };
    let ctx = context.as_deref();
    let label = workload::label(what);
    cx.progress.report(0.0, None, format!("reading {label} from the API server"));
    let pods = tokio::select! {
        r = cluster.workload_pods(ctx, namespace, what) => r?,
        _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
    };
    let node_names: Vec<String> = pods
        .iter()
        .filter_map(|p| p.node.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if node_names.is_empty() {
        return Err(ToolError::Invalid(format!(
            "{label} in namespace {namespace} has no pod on a node ({} pod(s), none scheduled): nothing to watch",
            pods.len()
        )));
    }
    if node_names.len() > MAX_NODES {
        return Err(ToolError::Invalid(format!(
            "{label} runs on {} nodes; watch_gpus watches at most {MAX_NODES} at once (each holds a probe pod for \
             the window): watch a part of it with label_selector",
            node_names.len()
        )));
    }
    let interval_ms = if node_names.len() > FAST_NODES {
        interval_ms.max(1000)
    } else {
        interval_ms
    };
    let (start_at, windows) =
        watch_nodes(cx, WatchGpus::NAME, &node_names, context.clone(), seconds, interval_ms).await?;
    // The ranks' logs of the window (and a little before it), read once the window is over.
    let limits = LogLimits {
        tail_lines: 2000,
        limit_bytes: 512 * 1024,
        since_seconds: Some(i64::from(seconds) + 120),
        concurrency: 16,
        budget: Duration::from_secs(20),
    };
    cx.progress
        .report(f64::from(seconds) + 0.5, Some(f64::from(seconds) + 1.0), "reading the ranks' logs");
    let logs = match cluster.workload_logs(ctx, namespace, &pods, &limits).await {
        Ok(l) => Some(l),
        Err(e) => {
            let why = e.to_string();
            Some(
                pods.iter()
                    .filter(|p| p.node.is_some())
                    .map(|p| (p.name.clone(), Err(why.clone())))
                    .collect(),
            )
        }
    };
    // The pods' nodes, each end-of-window picture joined to them as its probe.
    let mut nodes = Vec::new();
    if let Ok(list) = cluster.list_gpu_nodes(ctx, None).await {
        for n in list.iter().filter(|n| node_names.contains(&n.name)) {
            nodes.push(workload::node_of(n));
        }
    }
    let mut o = join::of_workload(WorkloadWindows {
        label,
        namespace: namespace.to_string(),
        context,
        seconds,
        interval_ms,
        start_at_ms: start_at,
        pods,
        nodes,
        logs,
        log_limits: limits.describe(),
        windows,
    });
    // The recorded history of the node the pattern suspects first.
    if let Some(n) = join::first_suspect_node(&o.pattern) {
        o.history = history(cx, o.context.as_deref(), &n).await;
    }
    Ok(finish(cx, o, started))
}
