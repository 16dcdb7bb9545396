//! The MCP tool `check_cluster`: `k8s-gpu-mcp check` for an AI host, so "is this cluster ready?" has an
//! answer before the first probe fails. Read-only, like the command (crate::check).

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::check::{Check, CheckOptions, CheckReport, Status, render_text};
use crate::server::Launcher;

pub fn router() -> ToolRouter<Launcher> {
    Launcher::check_router()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckClusterArgs {
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
    /// Check only the GPU nodes matching this label selector (default: every GPU node).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 1024))]
    pub label_selector: Option<String>,
}

#[tool_router(router = check_router, vis = "pub(crate)")]
impl Launcher {
    #[tool(
        name = "check_cluster",
        title = "Check that the cluster is ready for GPU probes",
        description = "Check what this server needs from the cluster: kubeconfig and context, API server, the \
probe namespace and its Pod Security label, each RBAC permission, the GPU nodes and their readiness, an image \
for the probe on each node, and a server-side dry run of a probe pod. Use it when node tools fail with \
permission, namespace or admission errors, or before the first probe on a new cluster. Returns a checklist; \
every failure comes with the command that fixes it (for a cluster admin to run).",
        annotations(read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<CheckReport>(),
        input_schema = crate::server::input_schema::<CheckClusterArgs>()
    )]
    async fn check_cluster(&self, Parameters(a): Parameters<CheckClusterArgs>) -> CallToolResult {
        let cfg = &self.inner.cfg;
        let report = if self.is_local() {
            local_report(cfg)
        } else {
            let mut k8s = crate::k8s_config(cfg);
            if a.context.is_some() {
                k8s.context = a.context;
            }
            crate::check::run(&CheckOptions {
                k8s,
                mode: cfg.mode,
                selector: a.label_selector,
            })
            .await
        };
        let text = render_text(&report);
        crate::server::structured_result(&report, text)
    }
}

/// Local mode has no cluster to check: one line saying where node-probe runs.
fn local_report(cfg: &crate::cli::Config) -> CheckReport {
    let detail = match &cfg.simulate {
        Some(s) => format!("local mode: node-probe runs here, simulating {s}; no cluster is used"),
        None => "local mode: node-probe runs on this machine; no cluster is used".into(),
    };
    CheckReport {
        ok: true,
        context: None,
        namespace: cfg.cluster.namespace.clone(),
        mode: "local".into(),
        user: None,
        checks: vec![Check {
            name: "local".into(),
            status: Status::Ok,
            detail,
            fix: None,
        }],
    }
}
