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
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
    /// Only the GPU nodes matching this label selector.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
}

impl Tool for CheckCluster {
    type Args = CheckClusterArgs;
    type Output = CheckReport;
    const NAME: &'static str = "check_cluster";
    const TITLE: &'static str = "Check that the cluster is ready for GPU probes";
    const DESCRIPTION: &'static str = "Is the cluster ready for this server? Checks kubeconfig, API server, \
probe namespace, RBAC permissions, GPU nodes, probe images and a dry-run probe pod, each failure with its \
fix, and the tool groups served. Use it when tools fail with permission or admission errors.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let cfg = &cx.env.cfg;
        let mut report = if cx.is_local() {
            local_report(cfg)
        } else {
            let mut k8s = cfg.k8s_config();
            if a.context.is_some() {
                k8s.context = a.context;
            }
            readiness::run(&CheckOptions {
                k8s,
                mode: cfg.mode,
                selector: a.label_selector,
            })
            .await
        };
        // Which groups of tools exist and which this server lists: a missing tool is then explained.
        report.checks.push(ReadinessCheck {
            name: "toolsets".into(),
            status: Status::Ok,
            detail: cfg.toolsets_line(),
            fix: None,
        });
        Ok(report)
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
