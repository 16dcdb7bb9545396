//! `watch_gpus`: a node's GPUs, or every node of a workload, sampled over a window (`node-probe watch`), read as
//! episodes and one pattern. A workload's probes start together on a common clock (each samples the same
//! instants), its GPUs are the ones its pods hold, and the window is joined to what its ranks logged and to
//! each node's incidents at the window's end (`gpu_diag::workload::diagnose`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpu_diag::command::Request;
use gpu_diag::contract::Report;
use gpu_diag::finding::{Judged, Severity, Verdict};
use gpu_diag::watch::{
    Episode, GpuInUse, GpuWindow, Pattern, PatternKind, WatchReport, pattern, secs,
    timeline::{sparkline, throttle_marks},
};
use gpu_diag::workload::{Suspect, WorkloadInput, WorkloadNode, diagnose};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::{LogLimits, WorkloadRef, workload};
use crate::mcp::framework::fanout::probe_nodes;
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::{
    MAX_CONTEXT_LEN, MAX_LABEL_LEN, MAX_OBJECT_NAME_LEN, NODE_NAME_PATTERN, NodeTarget, workload_ref,
};
use crate::mcp::framework::{Cx, Hints, Tool, ToolError};
use crate::mcp::render::text::{sev_label, verdict_label};

pub struct WatchGpus;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchArgs {
    /// One node to watch (`local` in local mode). Give either node_name, or a workload (namespace plus one of
    /// pod, job, jobset, pytorchjob, mpijob, rayjob, label_selector).
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
    /// Seconds to watch (default 30, 5 to 600).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 5, max = 600))]
    pub seconds: Option<u32>,
    /// Milliseconds between samples (default 1000; 250 to 60000; 1000 or more for a workload of over 16 nodes).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 250, max = 60000))]
    pub interval_ms: Option<u32>,
    /// GPU indices to watch on the node (default: all); not with a workload, whose GPUs are its pods'.
    #[serde(default)]
    #[schemars(with = "Vec<u32>", length(min = 1, max = 64))]
    pub gpus: Option<Vec<u32>>,
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
}

pub const DEFAULT_SECONDS: u32 = 30;
pub const DEFAULT_INTERVAL_MS: u32 = 1000;
/// A workload's probes start this far ahead of the call, on one clock: time for every pod to come up.
const START_LEAD: Duration = Duration::from_secs(5);
/// Nodes of a workload watched at most (each is one probe pod held for the window).
const MAX_NODES: usize = 128;
/// Above this many nodes the interval is at least a second (the answer's timeline is bounded anyway).
const FAST_NODES: usize = 16;
/// Episodes and suspects listed in the structured result, and shown in the text.
const EPISODES_LISTED: usize = 40;
const EPISODES_SHOWN: usize = 10;
const SUSPECTS_SHOWN: usize = 5;
/// GPUs shown with their own lines and sparklines in the text.
const GPUS_SHOWN: usize = 8;

/// An episode with the node it happened on.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NodeEpisode {
    pub node: String,
    #[serde(flatten)]
    pub episode: Episode,
}

/// One node's window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeWindow {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// Why the node has no window (the probe failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The GPUs watched (a workload's: the ones its pods hold), each with its readings' ranges, throttle
    /// times, counters and bounded timeline. A workload of many nodes lists only the GPUs that deviated.
    pub gpus: Vec<GpuWindow>,
    /// The GPUs not listed, in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady: Option<String>,
    /// How the workload's GPUs on this node are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    /// The node's incidents at the window's end, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<String>,
    /// The node's full report for this session (resources/read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_uri: Option<String>,
}

/// The workload's own side: what its ranks logged and its pods' states, joined to the nodes' ends.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WorkloadJoin {
    pub verdict: String,
    pub suspects: Vec<Suspect>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_examined: Vec<String>,
    pub logs: String,
}

/// A node's recorded history beside the window.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HistoryJoin {
    pub node: String,
    pub hours: u32,
    /// Where it came from and which series label named the node.
    pub source: String,
    pub verdict: Verdict,
    pub headline: String,
    /// The GPUs whose history deviates, a line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<String>,
}

/// Hours of recorded history read beside a window.
const HISTORY_HOURS: u32 = 6;

/// The node's history, or nothing where no Prometheus is named or found (the window stands alone; a
/// Prometheus that fails is said in the log, not in the window's answer).
async fn history(cx: &Cx, context: Option<&str>, node: &str) -> Option<HistoryJoin> {
    match cx.gpu_history(context, node, HISTORY_HOURS).await {
        Ok(h) => Some(HistoryJoin {
            node: node.to_string(),
            hours: HISTORY_HOURS,
            source: format!("{} (label {})", h.source, h.matched_label),
            verdict: h.verdict,
            headline: h.headline.clone(),
            gpus: h
                .gpus
                .iter()
                .filter(|g| g.verdict != Verdict::Healthy)
                .take(8)
                .map(|g| format!("GPU {}: {}", g.gpu, g.line))
                .collect(),
        }),
        Err(e) => {
            tracing::debug!(node, kind = e.kind(), error = %e, "no history beside the window");
            None
        }
    }
}

/// `watch_gpus` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WatchOutput {
    /// `node NAME`, or `kind/name in namespace NS`.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub seconds: u32,
    pub interval_ms: u32,
    /// When the window began (RFC 3339, UTC).
    pub started_at: String,
    pub verdict: Verdict,
    /// The window in one sentence, most important first.
    pub headline: String,
    /// The pattern across every GPU watched (a workload's across its nodes).
    pub pattern: Pattern,
    /// Most severe first.
    pub episodes: Vec<NodeEpisode>,
    #[serde(skip_serializing_if = "is_zero")]
    pub episodes_not_listed: usize,
    pub nodes: Vec<NodeWindow>,
    pub nodes_failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadJoin>,
    /// What the cluster's own Prometheus recorded of the node's GPUs over the last hours (the watched node,
    /// or a workload's first suspect node), where one is named or found (`get_gpu_history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryJoin>,
    /// The window as a chart (PNG: per GPU utilization, SM clock, power and temperature, throttle strips and
    /// kernel events), kept for this session (resources/read); also the image beside the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_uri: Option<String>,
    pub total_millis: u64,
    /// The chart itself, base64: the image content, not part of the structured result.
    #[serde(skip)]
    #[schemars(skip)]
    pub chart_png: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Tool for WatchGpus {
    type Args = WatchArgs;
    type Output = WatchOutput;
    const NAME: &'static str = "watch_gpus";
    const TITLE: &'static str = "Watch GPUs over a window";
    const DESCRIPTION: &'static str = "Is the job making progress? Samples a node's GPUs, or every node of a \
workload (namespace plus one of pod, job, jobset, pytorchjob, mpijob, rayjob or label_selector) on one common clock, \
every interval for a window (default 30 s at 1 s): utilization, SM clocks and throttle reasons with their \
durations, power against its cap, temperatures, memory, error counters (ECC, NVLink, PCIe, AMD RAS and XGMI) and \
kernel events (Xid, amdgpu) as they arrive. Answers with episodes, not samples (\"GPU 3 throttled 12 s of 30 \
(HW slowdown)\", \"+120 NVLink replays on link 4 under load\", \"Xid 79 on GPU 4 at 8 s\") and the pattern across \
the GPUs in use: all pegged at 100% but drawing idle power (a hang in a collective), one computing while the \
others wait (a straggler or deadlock), one idle while the others run, one slower (throttled), or progressing; \
for a workload, joined to its ranks' logs and each node's incidents at the window's end. Use it when a snapshot \
cannot say whether a job is stuck or slow. Runs as a task with progress; cancelling stops every probe.";
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
        render(o)
    }

    fn images(o: &Self::Output) -> Vec<(String, &'static str)> {
        o.chart_png.iter().map(|p| (p.clone(), "image/png")).collect()
    }
}

/// The chart of an answer's listed GPUs, kept in the person's store; its URI and base64 data.
fn chart(cx: &Cx, o: &WatchOutput) -> (Option<String>, Option<String>) {
    use base64::Engine;
    use crate::mcp::render::chart::{Line, Mark, png};
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
        return (None, None);
    }
    let marks: Vec<Mark> = o
        .episodes
        .iter()
        .filter(|e| e.episode.kind == gpu_diag::watch::EpisodeKind::KernelEvent)
        .map(|e| Mark {
            at_s: e.episode.from_s,
            label: e.episode.code.to_uppercase(),
        })
        .collect();
    let title = format!("{} - {} S AT {} MS", o.target, o.seconds, o.interval_ms);
    let bytes = png(&title, f64::from(o.seconds), &lines, &marks);
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let node = o.nodes.first().map_or("watch", |n| n.node.as_str());
    let uri = cx.env.reports.put(node, "watch_gpus.png", b64.clone());
    (uri, Some(b64))
}

/// Reports the window's progress on its own clock while the probes sample (they answer only at its end).
fn ticker(cx: &Cx, seconds: u32, lead: Duration, nodes: usize) -> tokio::task::JoinHandle<()> {
    let report = cx.progress.reporter();
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        let begin = Instant::now() + lead;
        let total = Some(f64::from(seconds));
        report(0.01, total, format!("starting {nodes} probe(s) on one clock"));
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
    let past = history(cx, t.context.as_deref(), &t.node_name);
    let run = cx
        .env
        .probe(
            WatchGpus::NAME,
            &t.node_name,
            t.context.clone(),
            &request,
            crate::mcp::progress::null_sink(),
            cx.cancel.clone(),
            crate::probe::runner::Batch::default(),
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
    let w = *w;
    let episodes: Vec<NodeEpisode> = w
        .episodes
        .iter()
        .map(|e| NodeEpisode {
            node: t.node_name.clone(),
            episode: e.clone(),
        })
        .collect();
    let (episodes, not_listed) = bounded(episodes);
    let node = NodeWindow {
        node: t.node_name.clone(),
        verdict: Some(w.verdict),
        headline: Some(w.headline.clone()),
        error: None,
        gpus: w.gpus.clone(),
        steady: None,
        held: None,
        incidents: incidents_of(&w),
        report_uri: res.run.report_uri.clone(),
    };
    Ok(WatchOutput {
        target: format!("node {}", t.node_name),
        context: t.context,
        seconds,
        interval_ms,
        started_at: rfc3339(w.window.started_unix),
        verdict: w.verdict,
        headline: w.headline.clone(),
        pattern: w.pattern.clone(),
        episodes,
        episodes_not_listed: not_listed,
        nodes: vec![node],
        nodes_failed: 0,
        workload: None,
        history: past,
        chart_uri: None,
        total_millis: started.elapsed().as_millis() as u64,
        chart_png: None,
    })
    .map(|mut o| {
        (o.chart_uri, o.chart_png) = chart(cx, &o);
        o
    })
}

fn bounded(mut v: Vec<NodeEpisode>) -> (Vec<NodeEpisode>, usize) {
    let more = v.len().saturating_sub(EPISODES_LISTED);
    v.truncate(EPISODES_LISTED);
    (v, more)
}

fn rfc3339(unix: f64) -> String {
    gpu_diag::xid::time::rfc3339(unix).unwrap_or_else(|| format!("{unix:.0}"))
}

/// The node's incidents at the window's end, a line each.
fn incidents_of(w: &WatchReport) -> Vec<String> {
    w.incidents()
        .map(|i| {
            i.incidents
                .iter()
                .filter(|x| x.severity >= Severity::Warning)
                .take(5)
                .map(|x| format!("[{}] {}", sev_label(x.severity), x.summary))
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
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
    let start_at = now_ms() + START_LEAD.as_millis() as u64;
    let request = Request::Watch {
        seconds,
        interval_ms,
        start_at_ms: Some(start_at),
        gpus: Vec::new(),
    };
    let tick = ticker(cx, seconds, START_LEAD, node_names.len());
    let pods_of_workload: BTreeSet<String> =
        pods.iter().map(|p| format!("{namespace}/{}", p.name)).collect();
    let probes = probe_nodes(
        cx,
        WatchGpus::NAME,
        &node_names,
        context.clone(),
        request,
        node_names.len(),
        |o| o,
    )
    .await;
    tick.abort();
    if cx.cancel.is_cancelled() {
        return Err(ToolError::Cancelled);
    }
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
    let mut windows: Vec<(String, NodeResult)> = Vec::new();
    for o in probes {
        let r = match o.result {
            Ok(pr) => match pr.report {
                Report::Watch(w) => Ok((*w, pr.run.report_uri)),
                _ => Err("node-probe answered with another report than `watch`: the probe and launcher versions \
                          probably differ"
                    .to_string()),
            },
            Err(e) => Err(e),
        };
        windows.push((o.node, r));
    }
    windows.sort_by(|a, b| a.0.cmp(&b.0));
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
            held_note.insert(node.clone(), format!("{} GPU(s) held by the workload's pods", held.len()));
            held
        };
        job_gpus.extend(chosen.into_iter().map(|g| (node.clone(), g.clone())));
    }
    let in_use: Vec<GpuInUse<'_>> = job_gpus
        .iter()
        .map(|(n, g)| GpuInUse::new(Some(n.as_str()), g))
        .collect();
    // Only windows that coincide are compared; the nodes left out are named (gpu_diag::watch::pattern).
    let spans: Vec<pattern::NodeSpan<'_>> = windows
        .iter()
        .map(|(n, r)| pattern::NodeSpan {
            node: n,
            window: r.as_ref().map(|(w, _)| &w.window).map_err(String::as_str),
        })
        .collect();
    let joined = pattern::join_windows(&spans);
    let pat = pattern::classify_joined(&in_use, f64::from(seconds), &joined);
    // Each node's own episodes on the workload's GPUs (throttling, counters, kernel events, a GPU lost), then
    // the pattern's, which name their node.
    let mut episodes: Vec<NodeEpisode> = Vec::new();
    for (node, r) in &windows {
        let Ok((w, _)) = r else { continue };
        let mine: BTreeSet<u32> = job_gpus
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, g)| g.identity.index)
            .collect();
        for e in &w.episodes {
            let node_pattern = matches!(
                e.kind,
                gpu_diag::watch::EpisodeKind::IdleAmongBusy
                    | gpu_diag::watch::EpisodeKind::BusyAmongIdle
                    | gpu_diag::watch::EpisodeKind::Slower
                    | gpu_diag::watch::EpisodeKind::NoProgress
                    | gpu_diag::watch::EpisodeKind::Bursty
                    | gpu_diag::watch::EpisodeKind::Onset
            );
            if node_pattern || e.gpu.is_some_and(|g| !mine.contains(&g)) {
                continue;
            }
            episodes.push(NodeEpisode {
                node: node.clone(),
                episode: e.clone(),
            });
        }
    }
    for e in &pat.episodes {
        let node = pat
            .suspects
            .first()
            .and_then(|s| s.split(" GPU ").next())
            .unwrap_or_default()
            .to_string();
        episodes.push(NodeEpisode {
            node,
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
    let mut k8s_nodes: Vec<WorkloadNode> = Vec::new();
    if let Ok(list) = cluster.list_gpu_nodes(ctx, None).await {
        for n in list.iter().filter(|n| node_names.contains(&n.name)) {
            k8s_nodes.push(workload::node_of(n));
        }
    }
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
    let input = WorkloadInput {
        workload: label.clone(),
        pods,
        nodes: k8s_nodes,
        probes: probes_for_diagnosis,
        logs,
        log_limits: Some(limits.describe()),
    };
    let d = diagnose(&input);
    let suspect_node = pat
        .suspects
        .first()
        .and_then(|s| s.split(" GPU ").next())
        .map(String::from);
    let past = match &suspect_node {
        Some(n) => history(cx, ctx, n).await,
        None => None,
    };
    let failed = windows.iter().filter(|(_, r)| r.is_err()).count();
    let worst = episodes.iter().map(|e| e.episode.severity).max();
    let verdict = match worst {
        Some(Severity::Critical) => Verdict::Unhealthy,
        Some(Severity::Warning) => Verdict::Degraded,
        _ if !pat.kind.is_steady() => Verdict::Degraded,
        _ if failed > 0 || pat.kind == PatternKind::Unknown || !pat.left_out.is_empty() => Verdict::Unknown,
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
    let (episodes, not_listed) = bounded(episodes);
    let mut suspects_d = d.suspects;
    suspects_d.truncate(SUSPECTS_SHOWN * 2);
    Ok(WatchOutput {
        target: format!("{label} in namespace {namespace}"),
        context,
        seconds,
        interval_ms,
        started_at: rfc3339(start_at as f64 / 1000.0),
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
            logs: limits.describe(),
        }),
        history: past,
        chart_uri: None,
        total_millis: started.elapsed().as_millis() as u64,
        chart_png: None,
    })
    .map(|mut o| {
        (o.chart_uri, o.chart_png) = chart(cx, &o);
        o
    })
}

/// A node's window and its kept report's URI, or why it has none.
type NodeResult = Result<(WatchReport, Option<String>), String>;


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
                e.node == node && e.episode.gpu == Some(g.identity.index) && e.episode.severity >= Severity::Warning
            })
    };
    let (shown, rest): (Vec<GpuWindow>, Vec<GpuWindow>) = gpus.into_iter().partition(deviates);
    let steady = (!rest.is_empty()).then(|| uniform_line(&rest));
    (shown, steady)
}

/// `7 GPUs: util 97–99%, SM 1980 MHz, 610–690 W, 58–66 °C`.
fn uniform_line(gpus: &[GpuWindow]) -> String {
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

fn workload_headline(p: &Pattern, episodes: &[NodeEpisode], failed: usize, total: usize, seconds: u32) -> String {
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

impl NodeEpisode {
    /// Not one of the pattern's own episodes (those the headline already says).
    fn node_specific(&self) -> bool {
        !matches!(
            self.episode.kind,
            gpu_diag::watch::EpisodeKind::IdleAmongBusy
                | gpu_diag::watch::EpisodeKind::BusyAmongIdle
                | gpu_diag::watch::EpisodeKind::Slower
                | gpu_diag::watch::EpisodeKind::NoProgress
        )
    }
}

fn render(o: &WatchOutput) -> String {
    let mut s = String::new();
    let gpus: usize = o.nodes.iter().map(|n| n.gpus.len()).sum();
    let _ = writeln!(
        s,
        "GPU watch of {}: {} s at {} ms{}",
        o.target,
        o.seconds,
        o.interval_ms,
        o.context.as_deref().map(|c| format!(" (context {c})")).unwrap_or_default()
    );
    let _ = writeln!(s, "verdict: {}", verdict_label(o.verdict));
    let _ = writeln!(s, "{}", o.headline);
    if o.pattern.kind != PatternKind::Progressing && !o.pattern.suspects.is_empty() && o.pattern.kind != PatternKind::AllIdle {
        let _ = writeln!(s, "suspects: {}", o.pattern.suspects.join(", "));
    }
    let shown: Vec<&NodeEpisode> = o.episodes.iter().take(EPISODES_SHOWN).collect();
    if !shown.is_empty() {
        let _ = writeln!(s, "episodes ({}):", o.episodes.len() + o.episodes_not_listed);
        let multi = o.nodes.len() > 1;
        for e in shown {
            let when = if (e.episode.to_s - e.episode.from_s).abs() < 0.01 {
                secs(e.episode.from_s)
            } else {
                format!("{}–{}", secs(e.episode.from_s).trim_end_matches(" s"), secs(e.episode.to_s))
            };
            let at = if multi && !e.node.is_empty() && !e.episode.text.contains(&e.node) {
                format!("{}: ", e.node)
            } else {
                String::new()
            };
            let _ = writeln!(s, "  [{}] {when} {at}{}", sev_label(e.episode.severity), e.episode.text);
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
    let quiet_nodes: Vec<&NodeWindow> = if many { o.nodes.iter().filter(quiet).collect() } else { Vec::new() };
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
                x == &format!("GPU {}", g.identity.index) || x == &format!("{} GPU {}", n.node, g.identity.index)
            })
        });
        let prefix = if o.nodes.len() > 1 { format!("{}: ", n.node) } else { String::new() };
        let steady_line = match (&n.steady, steady.is_empty()) {
            (Some(line), _) => Some(line.clone()),
            (None, false) => Some(uniform_line(&steady.iter().map(|g| (*g).clone()).collect::<Vec<_>>())),
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
            let _ = writeln!(s, "  {}. [{}] {}{place}: {}", x.rank, sev_label(x.severity), x.code, x.summary);
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
