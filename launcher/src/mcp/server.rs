//! The MCP server: the tool routes from the registry (`crate::mcp::tools`), prompts, resources and server
//! info, and `serve` over stdio. What tools share is in the framework (`crate::mcp::framework`).

use std::process::ExitCode;
use std::sync::Arc;

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, CustomRequest, CustomResult,
    GetTaskParams, GetTaskResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, prompt_handler, tool_handler};

use crate::cluster::ClusterBackend;
use crate::config::Config;
use crate::mcp::framework::tasks::Tasks;
use crate::mcp::framework::{Env, ToolServer};
use crate::probe::local::{LocalRunner, find_probe_bin};
use crate::probe::runner::Runner;

/// What the server runs probes with, and the cluster it asks about nodes (none in local mode).
pub struct Backends {
    pub runner: Arc<dyn Runner>,
    pub cluster: Option<Arc<dyn ClusterBackend>>,
}

impl Backends {
    /// Local mode gets a child-process runner and no cluster; otherwise the Kubernetes runner and backend.
    pub async fn connect(cfg: &Config) -> Result<Backends, String> {
        if cfg.local || cfg.simulate.is_some() {
            let bin = find_probe_bin(cfg.probe_bin.as_deref())?;
            return Ok(Backends {
                runner: Arc::new(LocalRunner::new(bin, cfg.simulate.clone())),
                cluster: None,
            });
        }
        let (runner, cluster) = crate::probe::kube::connect(&cfg.k8s_config())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Backends {
            runner,
            cluster: Some(cluster),
        })
    }
}

#[derive(Clone)]
pub struct Launcher {
    pub env: Arc<Env>,
    /// `serve --http`: each person's environment; None over stdio (one person, the kubeconfig's).
    pub callers: Option<Arc<crate::mcp::framework::people::CallerEnvs>>,
    /// `serve --http`: each person's running tool calls, bounded (held by the calls themselves).
    pub calls: Option<Arc<crate::mcp::framework::people::CallSlots>>,
    /// The long tools' calls running as MCP tasks, this session's.
    pub tasks: Arc<Tasks>,
    tool_router: ToolRouter<Launcher>,
    prompt_router: PromptRouter<Launcher>,
}

/// What a model reads first, and what clients that defer tools search: where to start, the map of which
/// served tool answers which question in the words SREs use (`crate::mcp::tools::GUIDE`, so a new tool is
/// introduced here by its registry line), and what those words mean.
pub fn instructions(cfg: &Config) -> String {
    let served: Vec<&crate::mcp::tools::Guide> = crate::mcp::tools::GUIDE
        .iter()
        .filter(|g| cfg.serves(g.toolset))
        .collect();
    let is_served = |name: &str| served.iter().any(|g| g.name == name);
    let mut out = String::from(
        "GPU diagnostics for Kubernetes nodes (NVIDIA, AMD Instinct, Intel Gaudi, AWS Neuron) or one local host.",
    );
    if is_served("list_gpu_nodes") && is_served("get_gpu_health") {
        out.push_str(
            " Start with list_gpu_nodes for node names, then get_gpu_health for a verdict.",
        );
    }
    out.push_str(" Which tool for which question:\n");
    for g in &served {
        out.push_str(&format!("- {}: {}\n", g.name, g.when));
    }
    out.push_str(
        "Words: Xid/SXid and NVRM lines are NVIDIA driver errors in the kernel log; ECC, SBE/DBE, row remap, \
         RAS and bad pages are GPU memory errors; NVLink, NVSwitch, XGMI and PCIe are the links NCCL uses; \
         throttling is clocks held down by heat or a power cap.",
    );
    if is_served("get_gpu_health") {
        out.push_str(" \"Node sick\" or \"GPU bad\": get_gpu_health first.");
    }
    if is_served("diagnose_workload") {
        out.push_str(" \"Job stuck\" or \"training slow\": diagnose_workload, then watch_gpus.");
    }
    let node_names = if is_served("list_gpu_nodes") {
        "as list_gpu_nodes prints it"
    } else {
        "the Kubernetes node's name"
    };
    out.push_str(&format!(
        " Arguments: `node_name` {node_names} (`local` in local mode); `context` a kubeconfig context \
         (default: the server's). Node tools start a short-lived probe pod on the node; answers carry \
         evidence and a recommended action. xid://catalog/{{code}} explains an Xid code."
    ));
    if cfg.serves(crate::config::Toolset::Operator) {
        out.push_str(
            " Operator tools act only after a dry run and a person's confirmation, and are audited.",
        );
    }
    out
}

/// The first SIGINT or SIGTERM, by name. Hosts send SIGTERM to a server that is slow to exit, and a person
/// presses Ctrl-C; either way the running probes must be stopped and their pods deleted before exit.
pub async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        // No handler could be installed: never resolves (the default action stays).
        _ => std::future::pending().await,
    }
}

/// `k8s-gpu-mcp serve`: MCP over stdio until the client ends the session, or SIGINT/SIGTERM.
pub async fn serve_stdio(launcher: Launcher) -> ExitCode {
    let runner = launcher.runner().clone();
    let tasks = launcher.tasks.clone();
    // Through the pumps that give protocol 2025-11-25's tasks what rmcp does not model (tasks_2025).
    let (pipes, stdout_pump) =
        crate::mcp::framework::tasks_2025::stdio(launcher.tasks.tools().cloned().collect());
    let service = match launcher.serve(pipes).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "MCP session did not start");
            runner.shutdown().await;
            return ExitCode::from(1);
        }
    };
    // A signal ends the session as a closed stdin does: the service's token cancels every request in
    // flight, and each running probe call deletes its pod (its delete guard) before `shutdown` returns.
    let token = service.cancellation_token();
    let signalled = tokio::spawn(async move {
        let name = stop_signal().await;
        tracing::info!(
            signal = name,
            "stopping: no new probes; running probe pods are being deleted"
        );
        token.cancel();
        name
    });
    let reason = service.waiting().await;
    tracing::info!(?reason, "MCP session ended; cleaning up");
    // Tasks outlive the requests that started them: they are cancelled and awaited here (their probe pods
    // deleted) before the runner's own shutdown.
    tasks.end_session().await;
    // Cleanups that outlived their calls (e.g. a probe pod delete after cancellation) finish before exit.
    runner.shutdown().await;
    crate::cluster::run_mark::lifts_done().await;
    // The session's last answers reach stdout (rmcp's end of the pipe is closed by now).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stdout_pump).await;
    if signalled.is_finished() {
        // 128 + the signal's number, as a shell reports a process ended by it.
        return match signalled.await {
            Ok("SIGINT") => ExitCode::from(130),
            _ => ExitCode::from(143),
        };
    }
    signalled.abort();
    ExitCode::SUCCESS
}

impl Launcher {
    /// The server for `cfg`, its backends connected (`serve` and `call`).
    pub async fn connect(cfg: Config) -> Result<Launcher, String> {
        let backends = Backends::connect(&cfg).await?;
        Ok(Launcher::new(cfg, backends))
    }

    pub fn new(mut cfg: Config, backends: Backends) -> Self {
        cfg.tool_groups = crate::config::Toolset::ALL
            .iter()
            .map(|t| (*t, crate::mcp::tools::tools_of(*t).collect()))
            .collect();
        let entries: Vec<_> = crate::mcp::tools::all::<Launcher>()
            .into_iter()
            .filter(|e| cfg.serves(e.toolset))
            .collect();
        let mut tool_router = ToolRouter::new();
        let mut task_tools = Vec::new();
        for e in &entries {
            let route = (e.route)();
            if e.task {
                task_tools.push(route.attr.name.to_string());
            }
            tool_router.add_route(route);
        }
        Launcher {
            callers: None,
            calls: None,
            tasks: Arc::new(Tasks::new(task_tools)),
            env: Arc::new(Env {
                readings: crate::mcp::framework::readings::ReadingStore::new(cfg.reading_max_age),
                cfg,
                runner: backends.runner,
                cluster: backends.cluster,
                reports: Default::default(),
            }),
            tool_router,
            prompt_router: Self::prompt_router(),
        }
    }

    pub fn runner(&self) -> &Arc<dyn Runner> {
        &self.env.runner
    }

    /// Serve many people (`serve --http`): every call acts as its caller, tasks are each person's own.
    /// `replica`: this replica's name, in the ids of its tasks, where several serve behind one Service.
    pub fn for_people(
        mut self,
        tasks_per_person: usize,
        tasks_in_all: usize,
        replica: Option<String>,
    ) -> Self {
        self.callers = Some(Arc::new(crate::mcp::framework::people::CallerEnvs::new(
            people_config(&self.env.cfg, replica.is_some()),
        )));
        if let Some(r) = &replica {
            crate::mcp::framework::confirm::name_replica(r);
        }
        self.tasks = Arc::new(
            Tasks::new(self.tasks.tools().cloned())
                .per_person(tasks_per_person)
                .in_all(tasks_in_all)
                .replica(replica),
        );
        self
    }

    /// Each person at most `per_person` tool calls running at once, whatever became of their connections
    /// (`limits.calls_per_person`; [`crate::mcp::framework::people::CallSlots`]).
    pub fn limit_calls(mut self, per_person: usize) -> Self {
        self.calls = Some(crate::mcp::framework::people::CallSlots::new(per_person));
        self
    }

    /// A slot for the call of `context`'s person, held by the call's handler (None over stdio: one person).
    fn call_slot(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<crate::mcp::framework::people::CallSlot>, ErrorData> {
        match (
            &self.calls,
            crate::mcp::framework::caller::caller_of(context),
        ) {
            (Some(slots), Some(caller)) => slots.take(&caller.user).map(Some),
            _ => Ok(None),
        }
    }

    /// The server stops: every task is cancelled and awaited, every person's probes cleaned up, then the
    /// server's own runner.
    pub async fn end_all(&self) {
        self.tasks.end_session().await;
        if let Some(c) = &self.callers {
            c.shutdown().await;
        }
        self.env.runner.shutdown().await;
        crate::cluster::run_mark::lifts_done().await;
    }

    /// The tools this server lists, for `call` help and tests.
    pub fn tool_names(&self) -> Vec<String> {
        self.tools()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// The tools as `tools/list` describes them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }
}

impl ToolServer for Launcher {
    fn env(&self) -> &Arc<Env> {
        &self.env
    }

    async fn env_for(&self, ctx: &RequestContext<RoleServer>) -> Result<Arc<Env>, ErrorData> {
        match &self.callers {
            Some(c) => c.env_for(ctx).await,
            None => Ok(self.env.clone()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for Launcher {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_prompts()
                .enable_resources()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_title("Kubernetes GPU diagnostics"),
        )
        .with_instructions(instructions(&self.env.cfg))
    }

    /// A long tool's call runs as a task where the request declares the tasks extension in its `_meta`; the rest
    /// as always (2025-11-25's `params.task` arrives at `on_custom_request`).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.tasks.wants(&request.name, &context) {
            self.tasks.room(&context)?;
            let this = self.clone();
            let task = self.tasks.spawn(context, move |context| async move {
                let call = ToolCallContext::new(&this, request, context);
                this.tool_router.call(call).await
            })?;
            return Ok(CallToolResponse::Task(task));
        }
        // Taken before the tool runs and dropped with this future: the slot lasts as long as the call's
        // work, not as long as its client's connection.
        let _slot = self.call_slot(&context)?;
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn get_task(
        &self,
        r: GetTaskParams,
        c: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.tasks.owned(&r.task_id, &c)?;
        self.tasks.get(&r.task_id).map(GetTaskResult::new)
    }

    async fn update_task(
        &self,
        r: UpdateTaskParams,
        c: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.owned(&r.task_id, &c)?;
        self.tasks.update(&r.task_id, r.input_responses)
    }

    async fn cancel_task(
        &self,
        r: CancelTaskParams,
        c: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.owned(&r.task_id, &c)?;
        self.tasks.cancel(&r.task_id)
    }

    /// Protocol 2025-11-25's tasks (SEP-1686), which rmcp does not model: the transports rename their
    /// requests to reach here (`framework::tasks_2025`).
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        if !crate::mcp::framework::tasks_2025::handles(&request.method) {
            return Err(ErrorData::new(
                rmcp::model::ErrorCode::METHOD_NOT_FOUND,
                request.method,
                None,
            ));
        }
        let this = self.clone();
        let call = move |request, context| async move {
            let call = ToolCallContext::new(&this, request, context);
            this.tool_router.call(call).await
        };
        crate::mcp::framework::tasks_2025::handle(&self.tasks, request, context, call).await
    }

    async fn list_resources(
        &self,
        _r: Option<PaginatedRequestParams>,
        c: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let env = self.env_for(&c).await?;
        Ok(ListResourcesResult {
            resources: crate::mcp::resources::list(&env.reports),
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult {
            resource_templates: crate::mcp::resources::templates(),
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        r: ReadResourceRequestParams,
        c: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let env = self.env_for(&c).await?;
        crate::mcp::resources::read(&env.reports, &r.uri).map(Into::into)
    }
}

/// The people's environments' configuration. Among replicas, no node reading is kept: an act drops the
/// readings of the replica that ran it (`readings`: a generation per node), but never another replica's,
/// and a 2026-07-28 request goes to any replica, so a reading another replica kept could answer from before
/// the act (docs/team-server.md, "Kept readings and replicas").
pub fn people_config(cfg: &crate::config::Config, replicated: bool) -> crate::config::Config {
    let mut cfg = cfg.clone();
    if replicated && !cfg.reading_max_age.is_zero() {
        tracing::info!(
            "replicas: node readings are not kept (an act on one replica cannot drop another's); every \
             read-only node question reads the node"
        );
        cfg.reading_max_age = std::time::Duration::ZERO;
    }
    cfg
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Replicas keep no reading (another replica's act could not drop it); a lone server keeps its setting.
    #[test]
    fn replicas_keep_no_reading() {
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "k8s-gpu-mcp",
            "--local",
            "--reading-max-age",
            "20",
            "serve",
        ])
        .unwrap();
        let cfg = cli.global.config().unwrap();
        assert_eq!(
            super::people_config(&cfg, true).reading_max_age,
            Duration::ZERO
        );
        assert_eq!(
            super::people_config(&cfg, false).reading_max_age,
            Duration::from_secs(20)
        );
    }
}
