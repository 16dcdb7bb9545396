//! `check_cluster`: `k8s-gpu-mcp check` for an AI host, so "is this cluster ready?" has an answer before
//! the first probe fails. Read-only: the readiness checks of `crate::readiness`, as the command runs them.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::Config;
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::MAX_CONTEXT_LEN;
use crate::mcp::framework::{Cx, Hints, Tool, ToolError};
use crate::readiness::{self, CheckOptions, CheckReport, ReadinessCheck, Status, render_text};

pub struct CheckCluster;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckClusterArgs {
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
    /// Check only the GPU nodes matching this label selector (default: every GPU node).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
}

impl Tool for CheckCluster {
    type Args = CheckClusterArgs;
    type Output = CheckReport;
    const NAME: &'static str = "check_cluster";
    const TITLE: &'static str = "Check that the cluster is ready for GPU probes";
    const DESCRIPTION: &'static str = "Check what this server needs from the cluster: kubeconfig and context, API server, the \
probe namespace and its Pod Security label, each RBAC permission, the GPU nodes and their readiness, an image \
for the probe on each node, and a server-side dry run of a probe pod. Use it when node tools fail with \
permission, namespace or admission errors, or before the first probe on a new cluster. Returns a checklist; \
every failure comes with the command that fixes it (for a cluster admin to run).";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let cfg = &cx.env.cfg;
        if cx.is_local() {
            return Ok(local_report(cfg));
        }
        let mut k8s = cfg.k8s_config();
        if a.context.is_some() {
            k8s.context = a.context;
        }
        Ok(readiness::run(&CheckOptions {
            k8s,
            mode: cfg.mode,
            selector: a.label_selector,
        })
        .await)
    }

    fn render(report: &Self::Output) -> String {
        render_text(report)
    }
}

/// Local mode has no cluster to check: one line saying where node-probe runs.
fn local_report(cfg: &Config) -> CheckReport {
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
        checks: vec![ReadinessCheck {
            name: "local".into(),
            status: Status::Ok,
            detail,
            fix: None,
        }],
    }
}
