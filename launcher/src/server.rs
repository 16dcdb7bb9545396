//! The MCP server: the tool, prompt and resource routers, server info, and the shared plumbing tools use
//! (argument checks, one probe run, result building).

use std::sync::Arc;
use std::time::Instant;

use gpu_diag::contract::{ProbeDocument, ProbeMeta, Report};
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, prompt_handler, tool_handler};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cli::{Config, Mode};
use crate::cluster::ClusterBackend;
use crate::progress::Progress;
use crate::runner::{PhaseTiming, ProbeRequest, ProgressSink, RunError, Runner};

/// What the server runs probes with, and the cluster it asks about nodes (none in local mode).
pub struct Backends {
    pub runner: Arc<dyn Runner>,
    pub cluster: Option<Arc<dyn ClusterBackend>>,
}

pub struct Inner {
    pub cfg: Config,
    pub runner: Arc<dyn Runner>,
    pub cluster: Option<Arc<dyn ClusterBackend>>,
}

impl Inner {
    /// Run node-probe once; a probe-side failure document becomes an error message.
    pub async fn probe(
        &self,
        tool: &str,
        node: &str,
        context: Option<String>,
        args: Vec<String>,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> Result<ProbeResult, String> {
        let started = Instant::now();
        let req = ProbeRequest {
            node: node.to_string(),
            args,
            tool: tool.to_string(),
            context,
            timeout: self.cfg.probe_timeout,
        };
        let out = self
            .runner
            .run(req, progress, cancel)
            .await
            .map_err(|e| run_error_text(node, &e))?;
        match out.document {
            ProbeDocument::Failure { error, .. } => {
                let mut msg = format!(
                    "node-probe on `{node}` failed ({:?}): {}",
                    error.kind, error.message
                );
                if let Some(h) = &error.hint {
                    msg.push_str(&format!("\nhint: {h}"));
                }
                Err(msg)
            }
            ProbeDocument::Success { probe, report, .. } => Ok(ProbeResult {
                report,
                run: ProbeRun {
                    ran_in: out.ran_in,
                    exit_code: out.exit_code,
                    probe,
                    timings: out.timings,
                    total_millis: started.elapsed().as_millis() as u64,
                },
            }),
        }
    }
}

#[derive(Clone)]
pub struct Launcher {
    pub inner: Arc<Inner>,
    tool_router: ToolRouter<Launcher>,
    prompt_router: PromptRouter<Launcher>,
}

const INSTRUCTIONS: &str = "GPU node diagnostics for Kubernetes (or one local host). Start with \
list_gpu_nodes to find node names, then get_gpu_health for a verdict with explained findings. Use \
analyze_xid_errors when a GPU driver error (XID) or a crashed CUDA job is suspected, get_gpu_telemetry for \
throttling/temperature/power, inspect_topology for NCCL/NVLink/PCIe problems, snapshot_ecc for memory \
errors, get_gpu_processes and get_pod_gpu_allocation to see who uses the GPUs, describe_gpu_node for \
everything at once, scan_gpu_nodes to find the bad nodes in a fleet, check_cluster when probes fail \
with permission, namespace or admission errors. Every node tool starts a \
short-lived probe on the node; results carry evidence and a recommended action. The resource template \
xid://catalog/{code} explains any XID code.";

impl Launcher {
    pub fn new(cfg: Config, backends: Backends) -> Self {
        let mut tool_router = Self::read_only_router() + crate::check_tool::router();
        if cfg.mode == Mode::Operator {
            tool_router += crate::operator::router();
        }
        Launcher {
            inner: Arc::new(Inner {
                cfg,
                runner: backends.runner,
                cluster: backends.cluster,
            }),
            tool_router,
            prompt_router: Self::prompt_router(),
        }
    }

    pub fn is_local(&self) -> bool {
        self.inner.cluster.is_none()
    }

    pub fn runner(&self) -> &Arc<dyn Runner> {
        &self.inner.runner
    }

    /// The tools this server lists, for `call` help and tests.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Check `node_name` and `context` the same way for every node tool.
    pub fn check_target(&self, node: &str, context: Option<&str>) -> Result<(), String> {
        check_node_name(node)?;
        if self.is_local() {
            if node != "local" {
                return Err(format!(
                    "this server runs in local mode, where the only node is `local`; call again with \
                     node_name \"local\" (got `{node}`)"
                ));
            }
            if context.is_some() {
                return Err(
                    "`context` selects a kubeconfig context, which local mode does not use; call \
                     again without `context`"
                        .into(),
                );
            }
        }
        self.check_context(context)
    }

    pub fn check_context(&self, context: Option<&str>) -> Result<(), String> {
        let (Some(ctx), Some(cluster)) = (context, &self.inner.cluster) else {
            return Ok(());
        };
        let known = cluster.contexts();
        if !known.iter().any(|k| k == ctx) {
            return Err(format!(
                "unknown kubeconfig context `{ctx}`; use one of: {} (or omit `context` for the default)",
                known.join(", ")
            ));
        }
        Ok(())
    }

    /// Run node-probe once on `node`, reporting phases as progress.
    pub async fn probe(
        &self,
        tool: &str,
        node: &str,
        context: Option<String>,
        args: Vec<String>,
        progress: &Progress,
        cancel: CancellationToken,
    ) -> Result<ProbeResult, String> {
        self.inner
            .probe(tool, node, context, args, progress.phase_sink(node), cancel)
            .await
    }
}

pub fn run_error_text(node: &str, e: &RunError) -> String {
    let hint = match e {
        RunError::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
        RunError::Timeout { .. } => {
            "the node may be overloaded or its GPUs hung; try again, or check the node with kubectl"
        }
        RunError::Cancelled => "",
        RunError::Forbidden(m) if !m.contains("deploy/rbac.yaml") => {
            "the launcher's credentials lack the RBAC rules in deploy/rbac.yaml (bind them as \
             deploy/bindings-example.yaml shows)"
        }
        _ => "",
    };
    if hint.is_empty() {
        format!("probe of `{node}` failed: {e}")
    } else {
        format!("probe of `{node}` failed: {e}\nhint: {hint}")
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
}

/// RFC 1123 subdomain (what Kubernetes allows as a node name); `local` passes too.
pub fn check_node_name(s: &str) -> Result<(), String> {
    let fix = "use the node name exactly as `list_gpu_nodes` or `kubectl get nodes` prints it \
               (lowercase letters, digits, '-' and '.', at most 253 characters), or `local` in local mode";
    if s.is_empty() {
        return Err(format!("`node_name` is empty; {fix}"));
    }
    if s.len() > 253 {
        return Err(format!("`node_name` is {} characters long; {fix}", s.len()));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!("`node_name` `{s}` is not a valid node name; {fix}"));
        }
    }
    Ok(())
}

/// The pattern advertised in input schemas (same rule as [`check_node_name`]).
pub const NODE_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Output schema of a tool: schemars' serialize schema without its Rust-only `format`s (`uint32`, `double`,
/// ...), which JSON Schema validators in clients (ajv in the TypeScript SDK) warn about on every call.
pub fn output_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    clean(rmcp::handler::server::tool::schema_for_output::<T>())
}

/// Input schema of a tool, cleaned the same way.
pub fn input_schema<T: schemars::JsonSchema + 'static>() -> Arc<rmcp::model::JsonObject> {
    clean(
        rmcp::handler::server::common::schema_for_input::<T>()
            .unwrap_or_else(|e| panic!("input schema of {}: {e}", std::any::type_name::<T>())),
    )
}

fn clean(schema: Arc<rmcp::model::JsonObject>) -> Arc<rmcp::model::JsonObject> {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::String(f)) = o.get("format")
                    && matches!(
                        f.as_str(),
                        "uint"
                            | "uint8"
                            | "uint16"
                            | "uint32"
                            | "uint64"
                            | "int"
                            | "int8"
                            | "int16"
                            | "int32"
                            | "int64"
                            | "float"
                            | "double"
                    )
                {
                    o.remove("format");
                }
                o.values_mut().for_each(walk);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = serde_json::Value::Object(schema.as_ref().clone());
    walk(&mut v);
    match v {
        serde_json::Value::Object(o) => Arc::new(o),
        _ => schema,
    }
}

/// A successful tool result: the rendering for people and models, plus the structured value.
pub fn structured_result<T: Serialize>(value: &T, text: String) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => {
            let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
            r.structured_content = Some(v);
            r
        }
        Err(e) => error_result(format!("internal error: cannot serialize the result: {e}")),
    }
}

pub fn error_result(msg: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.into())])
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
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_title("Kubernetes GPU diagnostics"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult {
            resources: crate::resources::list(),
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _r: Option<PaginatedRequestParams>,
        _c: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult {
            resource_templates: crate::resources::templates(),
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        r: ReadResourceRequestParams,
        _c: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        crate::resources::read(&r.uri).map(Into::into)
    }
}
