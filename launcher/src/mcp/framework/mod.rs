//! The tool framework. It knows no tool by name: a tool is a type implementing [`Tool`] (name, title,
//! description, hints, argument and output types, `run`, `render`), and [`route`] turns it into the MCP
//! route with everything tools share done once: argument parsing, progress, cancellation, the
//! structured result beside its text, and errors with their hint. The tools themselves live in
//! `crate::mcp::tools`, one file each, listed by its registry.

pub mod action;
pub mod beside;
pub mod caller;
pub mod confirm;
pub mod error;
pub mod evidence;
pub mod fanout;
pub mod held_mark;
pub mod node_mark;
pub mod one_clock;
pub mod people;
pub mod readings;
pub mod reports;
pub mod schema;
pub mod target;
pub mod tasks;
pub mod tasks_2025;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gpu_diag::analysis::describe::DescribeReport;
use gpu_diag::command::{Command, Request};
use gpu_diag::contract::{ProbeDocument, ProbeMeta, Report};
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, RequestMetaObject, ToolAnnotations,
};
use rmcp::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterBackend;
use crate::config::Config;
use crate::mcp::progress::Progress;
use crate::probe::runner::{
    Batch, ImageNeed, Lines, PhaseTiming, ProbeRequest, ProgressSink, Runner,
};

pub use error::ToolError;
pub use target::{Node, NodeTarget};

/// What tools run with: the configuration, the probe runner and the cluster (none in local mode).
pub struct Env {
    pub cfg: Config,
    pub runner: Arc<dyn Runner>,
    pub cluster: Option<Arc<dyn ClusterBackend>>,
    /// Every probe's full report of this session, offered as resources.
    pub reports: reports::ReportStore,
    /// The node readings kept for the next questions (`--reading-max-age`), this person's.
    pub readings: readings::ReadingStore,
}

/// The MCP server the tool routes belong to (`crate::mcp::server::Launcher`): it hands
/// each call the tools' [`Env`].
pub trait ToolServer: Send + Sync + 'static {
    fn env(&self) -> &Arc<Env>;
    /// The environment of one request: over HTTP, its caller's (their Kubernetes identity, their
    /// resources); over stdio, the one environment.
    fn env_for(
        &self,
        _ctx: &rmcp::service::RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<Arc<Env>, rmcp::ErrorData>> + Send {
        let env = self.env().clone();
        async move { Ok(env) }
    }
}

/// The behaviour hints every tool advertises (MCP tool annotations).
#[derive(Debug, Clone, Copy)]
pub struct Hints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub open_world: bool,
}

impl Hints {
    /// Reads, and the same call gives the same answer (inventory, topology, ...).
    pub const READ_IDEMPOTENT: Hints = Hints {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: true,
    };
    /// Reads live values that change between calls (telemetry, health, ...).
    pub const READ_LIVE: Hints = Hints {
        idempotent: false,
        ..Hints::READ_IDEMPOTENT
    };
    /// Changes a GPU, a process or a node.
    pub const DESTRUCTIVE: Hints = Hints {
        read_only: false,
        destructive: true,
        idempotent: false,
        open_world: true,
    };

    fn annotations(self) -> ToolAnnotations {
        ToolAnnotations::from_raw(
            None,
            Some(self.read_only),
            Some(self.destructive),
            Some(self.idempotent),
            Some(self.open_world),
        )
    }
}

/// How much of a large report an answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum Detail {
    /// Everything that deviates in full, what is alike summarised (the default).
    #[default]
    Summary,
    /// The probe's whole report.
    Full,
}

/// One MCP tool.
pub trait Tool: Send + Sync + 'static {
    type Args: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Send + 'static;
    const NAME: &'static str;
    const TITLE: &'static str;
    const DESCRIPTION: &'static str;
    const HINTS: Hints;
    /// Long work (many nodes, minutes): runs as an MCP task for clients that declared the tasks extension
    /// ([`tasks`]), a plain call for the others.
    const TASK: bool = false;
    fn run(
        cx: &Cx,
        args: Self::Args,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
    /// The text beside the structured result: what a person or a model reads first.
    fn render(out: &Self::Output) -> String;
    /// Pictures beside the text (base64 data and MIME type): a chart of what the text says.
    fn images(_out: &Self::Output) -> Vec<(String, &'static str)> {
        Vec::new()
    }
}

/// The MCP route of tool `T` on server `S`.
pub fn route<T: Tool, S: ToolServer>() -> ToolRoute<S> {
    let input = schema::input_schema::<T::Args>();
    let attr = rmcp::model::Tool::new(T::NAME, T::DESCRIPTION, input.clone())
        .with_title(T::TITLE)
        .with_raw_output_schema(schema::output_schema::<T::Output>())
        .with_annotations(T::HINTS.annotations());
    ToolRoute::new_dyn(attr, move |mut tc: ToolCallContext<'_, S>| {
        let input = input.clone();
        Box::pin(async move {
            // Arguments may come from prompt-injected text: the limits the schema advertises are
            // enforced here, before the tool sees them, and an error never echoes a long value.
            let raw = rmcp::model::JsonObject::from_context_part(&mut tc)?;
            // Answers to an earlier input request (2026-07-28), checked by the confirmation.
            let (input_responses, request_state) =
                (tc.input_responses.take(), tc.request_state.take());
            if let Err(m) = schema::check_args(&input, &raw) {
                return Ok(error_result(m).into());
            }
            let args_digest = confirm::CallConfirm::digest(&raw);
            let args: T::Args = match serde_json::from_value(serde_json::Value::Object(raw)) {
                Ok(a) => a,
                Err(e) => {
                    return Ok(
                        error_result(format!("failed to deserialize parameters: {e}")).into(),
                    );
                }
            };
            let meta = RequestMetaObject::from_context_part(&mut tc)?;
            let peer = Peer::<RoleServer>::from_context_part(&mut tc)?;
            let cancel = CancellationToken::from_context_part(&mut tc)?;
            // A call that runs as a task reports to the task's status message (`tasks::Tasks::spawn`).
            let progress = match tc.request_context.extensions.get::<tasks::TaskProgress>() {
                Some(task) => Progress::for_task(task.0.clone()),
                None => Progress::new(&meta, &peer),
            };
            let env = tc.service.env_for(&tc.request_context).await?;
            let cx = Cx {
                env,
                progress,
                confirm: confirm::CallConfirm {
                    channel: confirm::Channel::of(&meta, &peer),
                    args_digest,
                    input_responses,
                    request_state,
                    person: caller::caller_of(&tc.request_context).map(|c| c.user),
                },
                peer,
                cancel,
            };
            let result: CallToolResponse = match T::run(&cx, args).await {
                Ok(out) => {
                    let mut r = structured_result(&out, T::render(&out));
                    if r.is_error != Some(true) {
                        for (data, mime) in T::images(&out) {
                            r.content.push(ContentBlock::image(data, mime));
                        }
                    }
                    r.into()
                }
                Err(ToolError::InputRequired(ask)) => CallToolResponse::InputRequired(*ask),
                Err(e) => error_result(e.to_string()).into(),
            };
            cx.progress.finish().await;
            Ok(result)
        })
    })
}

/// A successful tool result: the rendering for people and models, plus the structured value.
fn structured_result<T: Serialize>(value: &T, text: String) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => {
            let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
            r.structured_content = Some(v);
            r
        }
        Err(e) => error_result(format!("internal error: cannot serialize the result: {e}")),
    }
}

fn error_result(msg: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(schema::bounded_message(&msg))])
}

/// One call's context: the environment, progress, cancellation and the client (for confirmations).
pub struct Cx {
    pub env: Arc<Env>,
    pub progress: Progress,
    pub cancel: CancellationToken,
    pub peer: Peer<RoleServer>,
    /// How this call can ask a person to confirm, and its answers to an earlier input request.
    pub confirm: confirm::CallConfirm,
}

impl Cx {
    pub fn is_local(&self) -> bool {
        self.env.cluster.is_none()
    }

    /// The ResourceClaims the API server has allocated on the node, for node-probe's `--api-claims`
    /// (DRA's second source after the kubelet); local mode has none.
    pub async fn dra_claims(&self, t: &NodeTarget) -> crate::cluster::dra_api::NodeClaims {
        match &self.env.cluster {
            Some(c) => c.dra_claims_on(t.context.as_deref(), &t.node_name).await,
            None => {
                crate::cluster::dra_api::NodeClaims::NotAsked("local mode: no API server".into())
            }
        }
    }

    /// `node`'s GPUs over the last `hours` from the cluster's own Prometheus (`--prometheus`, else the one
    /// the cluster exposes, read as the caller): what `get_gpu_history` answers, and what another tool joins
    /// to its own answer. Local mode reads only a `--prometheus` URL.
    pub async fn gpu_history(
        &self,
        context: Option<&str>,
        node: &str,
        hours: u32,
    ) -> Result<gpu_diag::history::NodeHistory, crate::cluster::prometheus::HistoryError> {
        let setting = &self.env.cfg.cluster.prometheus;
        match &self.env.cluster {
            Some(c) => c.gpu_history(context, setting, node, hours).await,
            None => crate::cluster::prometheus::gpu_history(None, setting, node, hours).await,
        }
    }

    /// Check a node target the same way for every node tool.
    pub fn check_target(&self, t: &NodeTarget) -> Result<(), ToolError> {
        target::check_node_name(&t.node_name)?;
        if self.is_local() {
            if t.node_name != "local" {
                return Err(ToolError::Invalid(format!(
                    "this server runs in local mode, where the only node is `local`; call again with \
                     node_name \"local\" (got `{}`)",
                    t.node_name
                )));
            }
            if t.context.is_some() {
                return Err(ToolError::Invalid(
                    "`context` selects a kubeconfig context, which local mode does not use; call \
                     again without `context`"
                        .into(),
                ));
            }
        }
        self.check_context(t.context.as_deref())
    }

    /// The cluster an API-only operator tool acts on; in local mode a clear error naming the tool and
    /// what it would have done (`to cordon`, ...).
    pub fn cluster_for(
        &self,
        tool: &str,
        what: &str,
    ) -> Result<Arc<dyn ClusterBackend>, ToolError> {
        self.env.cluster.clone().ok_or_else(|| {
            ToolError::Invalid(format!(
                "{tool} needs a cluster: this server runs in local mode, where there is no node {what}"
            ))
        })
    }

    pub fn check_context(&self, context: Option<&str>) -> Result<(), ToolError> {
        let (Some(ctx), Some(cluster)) = (context, &self.env.cluster) else {
            return Ok(());
        };
        let known = cluster.contexts();
        if !known.iter().any(|k| k == ctx) {
            return Err(ToolError::Invalid(format!(
                "unknown kubeconfig context `{ctx}`; use one of: {} (or omit `context` for the default)",
                known.join(", ")
            )));
        }
        Ok(())
    }

    /// Run node-probe once on the target, reporting phases as progress.
    pub async fn probe(
        &self,
        tool: &str,
        t: &NodeTarget,
        request: impl Into<Request>,
    ) -> Result<ProbeResult, ToolError> {
        self.env
            .probe(
                tool,
                &t.node_name,
                t.context.clone(),
                &request.into(),
                self.progress.phase_sink(&t.node_name),
                self.cancel.clone(),
                Batch::default(),
            )
            .await
    }

    /// A part of the node's reading (`node-probe describe`, whose report holds what the read-only node tools
    /// answer): this person's kept reading where it is at most `max_age` old ([`readings`]), else one read
    /// now and kept for the next questions. `part` takes the tool's report from it; the run says the
    /// reading's age (`reading_age_s`, `reading_reused`). `command`: the probe command whose report the
    /// part is, which names it in the session's resource as that command's run would.
    pub async fn read<R: Serialize>(
        &self,
        tool: &str,
        t: &NodeTarget,
        command: Command,
        max_age: readings::MaxAge,
        part: impl FnOnce(&DescribeReport) -> R,
    ) -> Result<(R, ProbeRun), ToolError> {
        let started = Instant::now();
        let store = &self.env.readings;
        let (ctx, node) = (t.context.as_deref(), t.node_name.as_str());
        let allowed = store.allowed(max_age.max_age_s);
        let _flight = if allowed.is_zero() {
            None
        } else {
            if let Some((r, age)) = store.get(ctx, node, allowed) {
                return Ok(self.answer_kept(tool, node, command, &r, age, started, part));
            }
            // One probe per person and node at a time: a question asked while another's probe of the node
            // runs waits for its reading rather than starting a second pod.
            let flight = store.flight(ctx, node).await;
            if let Some((r, age)) = store.get(ctx, node, allowed) {
                return Ok(self.answer_kept(tool, node, command, &r, age, started, part));
            }
            Some(flight)
        };
        // An act on the node that begins or ends from here on makes this reading one from before it.
        let generation = store.generation(node);
        let res = self
            .env
            .probe_unkept(
                tool,
                node,
                t.context.clone(),
                &Request::Plain(Command::Describe),
                self.progress.phase_sink(node),
                self.cancel.clone(),
                Batch::default(),
                None,
            )
            .await?;
        let (Report::Describe(report), mut run) = (res.report, res.run) else {
            return Err(ToolError::WrongReport {
                node: node.to_string(),
                tool: tool.to_string(),
            });
        };
        run.reading_age_s = Some(0);
        let out = part(&report);
        run.report_uri = self.keep_report(node, tool, command, &out);
        if !store.max_age().is_zero() {
            let bytes = serde_json::to_string(&report).map_or(usize::MAX, |j| j.len());
            let reading = readings::Reading {
                report: *report,
                ran_in: run.ran_in.clone(),
                exit_code: run.exit_code,
                probe: run.probe.clone(),
                // The node was read after this; counting from the call's start never understates the age.
                taken: started,
            };
            store.put(ctx, node, generation, reading, bytes);
        }
        Ok((out, run))
    }

    /// A part of the node's kept reading, with no probe, for a tool whose own command reads more than
    /// `describe` may hold (the kernel log's analysis): [`Kept::Answer`] when this person's reading is at most
    /// `max_age` old and `part` can answer from it, [`Kept::Cannot`] with `part`'s reason when a reading is on
    /// hand that cannot answer (the caller reads afresh and says why), [`Kept::None`] when no reading is.
    pub fn kept<R: Serialize>(
        &self,
        tool: &str,
        t: &NodeTarget,
        command: Command,
        max_age: readings::MaxAge,
        part: impl FnOnce(&DescribeReport) -> Result<R, String>,
    ) -> Kept<R> {
        let started = Instant::now();
        let store = &self.env.readings;
        let allowed = store.allowed(max_age.max_age_s);
        let Some((r, age)) = store.get(t.context.as_deref(), &t.node_name, allowed) else {
            return Kept::None;
        };
        match part(&r.report) {
            Ok(out) => {
                let (out, run) =
                    self.answer_kept(tool, &t.node_name, command, &r, age, started, |_| out);
                Kept::Answer(out, Box::new(run))
            }
            Err(why) => Kept::Cannot(why),
        }
    }

    /// An answer from a kept reading: its run with no phases of its own, and its age.
    #[allow(clippy::too_many_arguments)]
    fn answer_kept<R: Serialize>(
        &self,
        tool: &str,
        node: &str,
        command: Command,
        reading: &readings::Reading,
        age: Duration,
        started: Instant,
        part: impl FnOnce(&DescribeReport) -> R,
    ) -> (R, ProbeRun) {
        let out = part(&reading.report);
        let run = ProbeRun {
            ran_in: reading.ran_in.clone(),
            exit_code: reading.exit_code,
            probe: reading.probe.clone(),
            timings: Vec::new(),
            after_probe_millis: None,
            reading_age_s: Some(age.as_secs()),
            reading_reused: true,
            read_afresh_because: None,
            report_uri: self.keep_report(node, tool, command, &out),
            total_millis: started.elapsed().as_millis() as u64,
        };
        (out, run)
    }

    /// The tool's whole report as this session's resource, in the shape of the command's own report
    /// (`{"topology": {..}}`).
    fn keep_report(
        &self,
        node: &str,
        tool: &str,
        command: Command,
        report: &impl Serialize,
    ) -> Option<String> {
        serde_json::to_string(&serde_json::json!({ command.name(): report }))
            .ok()
            .and_then(|json| self.env.reports.put(node, tool, json))
    }

    /// Run node-probe once and take the report of the expected kind (`pick`).
    pub async fn probe_report<R>(
        &self,
        tool: &str,
        t: &NodeTarget,
        request: impl Into<Request>,
        pick: impl FnOnce(Report) -> Option<R>,
    ) -> Result<(R, ProbeRun), ToolError> {
        let res = self.probe(tool, t, request).await?;
        match pick(res.report) {
            Some(r) => Ok((r, res.run)),
            None => Err(ToolError::WrongReport {
                node: t.node_name.clone(),
                tool: tool.to_string(),
            }),
        }
    }
}

impl Env {
    /// The image a request needs and its run's deadline, start to cleanup.
    pub fn deadline(&self, request: &Request) -> (ImageNeed, Duration) {
        match request {
            // DCGM's diagnostic runs in NVIDIA's DCGM image for as long as its level may take (the run's own
            // deadline, dcgmi's stop of up to 30 s, and the pod's start and the holders' read before it).
            Request::DcgmDiag { run, .. } => (
                ImageNeed::Dcgm,
                self.cfg.probe_timeout.max(Duration::from_secs(
                    gpu_diag::dcgm::request::deadline_secs(run.level()) + 90,
                )),
            ),
            // RVS's as DCGM's: in AMD's test runner image, for the run's own deadline, rvs's stop (node-probe's
            // grace of 10 s) and the pod's start and the holders' read before it.
            Request::RvsDiag { run, .. } => (
                ImageNeed::Rvs,
                self.cfg
                    .probe_timeout
                    .max(Duration::from_secs(run.deadline_secs() + 90)),
            ),
            // A watch lasts its window, after its start (up to a minute ahead), then reads the node once
            // more: the probe's own deadline covers the pod's start and that read. Its pod lives as long
            // (`probe::pod::lengthen`), and no longer: a killed `top` leaves pods for a window and this.
            Request::Watch {
                seconds,
                start_at_ms,
                ..
            } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                let ahead = start_at_ms.map_or(0, |s| s.saturating_sub(now).div_ceil(1000).min(60));
                (
                    ImageNeed::Any,
                    self.cfg.probe_timeout + Duration::from_secs(u64::from(*seconds) + ahead),
                )
            }
            _ => (ImageNeed::Any, self.cfg.probe_timeout),
        }
    }

    /// Run node-probe once (as part of `batch`, a many-node call, or alone with `Batch::default()`); a
    /// probe-side failure document becomes an error. The whole report is kept as the session's resource.
    /// A request that changes the node (kill, reset, an active diagnostic, a watch) drops everyone's kept
    /// readings of it before and after it runs, whatever its outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn probe(
        &self,
        tool: &str,
        node: &str,
        context: Option<String>,
        request: &Request,
        progress: ProgressSink,
        cancel: CancellationToken,
        batch: Batch,
    ) -> Result<ProbeResult, ToolError> {
        self.probe_lines(tool, node, context, request, progress, cancel, batch, None)
            .await
    }

    /// [`Env::probe`], a streamed request's lines to `lines` as they arrive.
    #[allow(clippy::too_many_arguments)]
    pub async fn probe_lines(
        &self,
        tool: &str,
        node: &str,
        context: Option<String>,
        request: &Request,
        progress: ProgressSink,
        cancel: CancellationToken,
        batch: Batch,
        lines: Option<Lines>,
    ) -> Result<ProbeResult, ToolError> {
        let changes = readings::changes_node(request);
        if changes {
            self.readings.forget_node(node);
        }
        let res = self
            .probe_unkept(tool, node, context, request, progress, cancel, batch, lines)
            .await;
        if changes {
            self.readings.forget_node(node);
        }
        let mut res = res?;
        // An evidence archive is no report to keep in memory: its tool stores the index instead.
        res.run.report_uri = (!matches!(res.report, Report::Evidence(_)))
            .then(|| serde_json::to_string(&res.report).ok())
            .flatten()
            .and_then(|json| self.reports.put(node, tool, json));
        Ok(res)
    }

    /// [`Env::probe`] without keeping the report as a resource.
    #[allow(clippy::too_many_arguments)]
    async fn probe_unkept(
        &self,
        tool: &str,
        node: &str,
        context: Option<String>,
        request: &Request,
        progress: ProgressSink,
        cancel: CancellationToken,
        batch: Batch,
        lines: Option<Lines>,
    ) -> Result<ProbeResult, ToolError> {
        let started = Instant::now();
        // A streamed request's output is read as lines whether or not the caller wants them.
        let lines = lines.or_else(|| request.streams().then(|| Lines::new(|_| {})));
        // DCGM's diagnostic runs in NVIDIA's DCGM image for as long as its level may take (the run's own
        // deadline, dcgmi's stop of up to 30 s, and the pod's start and the holders' read before it).
        let (image, timeout) = self.deadline(request);
        let req = ProbeRequest {
            node: node.to_string(),
            args: {
                let mut a = request.argv();
                a.extend(self.cfg.probe_args_suffix());
                a
            },
            tool: tool.to_string(),
            context,
            timeout,
            batch,
            image,
            lines,
        };
        let out = self
            .runner
            .run(req, progress, cancel)
            .await
            .map_err(|err| ToolError::Run {
                node: node.to_string(),
                err,
            })?;
        match out.document {
            ProbeDocument::Failure { error, .. } => Err(ToolError::ProbeFailed {
                node: node.to_string(),
                error,
            }),
            ProbeDocument::Success { probe, report, .. } => Ok(ProbeResult {
                report,
                run: ProbeRun {
                    ran_in: out.ran_in,
                    exit_code: out.exit_code,
                    probe,
                    timings: out.timings,
                    total_millis: started.elapsed().as_millis() as u64,
                    after_probe_millis: None,
                    report_uri: None,
                    reading_age_s: None,
                    reading_reused: false,
                    read_afresh_because: None,
                },
            }),
        }
    }
}

/// A report with the run that produced it.
pub struct ProbeResult {
    pub report: Report,
    pub run: ProbeRun,
}

/// How a probe run went: where it ran, what it reported about itself, how long each phase took.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProbeRun {
    /// `local`, or the probe pod's namespace/name.
    pub ran_in: String,
    /// node-probe's exit status.
    pub exit_code: i32,
    /// The probe's own metadata (version, GPU source, host, boot id, collection time).
    pub probe: Option<ProbeMeta>,
    pub timings: Vec<PhaseTiming>,
    /// Wall time of the whole run as the launcher saw it.
    pub total_millis: u64,
    /// How long the answer then waited for the API server's reads started beside the probe (at most 5 s;
    /// what is not read by then is said in the answer); absent where the tool reads nothing beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_probe_millis: Option<u64>,
    /// The probe's whole report, kept for this session as an MCP resource (read it with
    /// resources/read when the answer's summary is not enough).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_uri: Option<String>,
    /// How old the node reading this answer comes from is, in seconds: 0 when this call read the node,
    /// more when it answered from a reading an earlier call made (`reading_reused`). Absent where the tool
    /// always reads afresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reading_age_s: Option<u64>,
    /// No probe ran for this answer: it came from the node's reading kept by an earlier call (`ran_in` and
    /// `probe` are that reading's; call again with `max_age_s: 0` to read the node now).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reading_reused: bool,
    /// Why this call read the node although a reading of it was kept (the reading could not answer it);
    /// absent where no reading was on hand or the call asked for a fresh one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_afresh_because: Option<String>,
}

/// What a node's kept reading gives a tool that may need more than it holds ([`Cx::kept`]).
pub enum Kept<R> {
    /// The answer, from the reading, and the run that says its age.
    Answer(R, Box<ProbeRun>),
    /// A reading is on hand but cannot answer this call: why, in one line for the answer.
    Cannot(String),
    /// No reading is kept within the age allowed.
    None,
}

/// One node's probe report with the run that produced it: the output of the plain node tools.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeReport<R> {
    /// The node that was probed.
    pub node: String,
    /// Kubeconfig context used (absent: the default, or local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// How the probe ran.
    pub run: ProbeRun,
    /// The probe's report, as node-probe produced it.
    pub report: R,
}

impl<R> NodeReport<R> {
    /// The usual read-only node tool: check the target, answer its part of the node's reading
    /// ([`Cx::read`]).
    pub async fn read(
        cx: &Cx,
        tool: &str,
        t: NodeTarget,
        command: Command,
        max_age: readings::MaxAge,
        part: impl FnOnce(&DescribeReport) -> R,
    ) -> Result<Self, ToolError>
    where
        R: Serialize,
    {
        cx.check_target(&t)?;
        let (report, run) = cx.read(tool, &t, command, max_age, part).await?;
        Ok(NodeReport {
            node: t.node_name,
            context: t.context,
            run,
            report,
        })
    }

    /// The usual node tool: check the target, run one probe command, keep its report.
    pub async fn probe(
        cx: &Cx,
        tool: &str,
        t: NodeTarget,
        request: impl Into<Request>,
        pick: impl FnOnce(Report) -> Option<R>,
    ) -> Result<Self, ToolError> {
        cx.check_target(&t)?;
        let (report, run) = cx.probe_report(tool, &t, request, pick).await?;
        Ok(NodeReport {
            node: t.node_name,
            context: t.context,
            run,
            report,
        })
    }
}

/// `pick!(Health)`: the report of that kind, or `None`.
macro_rules! pick {
    ($variant:ident) => {
        |r: gpu_diag::contract::Report| match r {
            gpu_diag::contract::Report::$variant(x) => Some(x),
            _ => None,
        }
    };
}
pub(crate) use pick;
