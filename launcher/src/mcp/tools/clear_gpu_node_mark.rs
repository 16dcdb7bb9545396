//! `clear_gpu_node_mark` (operator mode): undo `mark_gpu_node`, exactly: our taint and label are removed
//! and our condition is set False (reason GpuDiagMarkCleared, when and why in it), as Node Problem
//! Detector leaves a resolved problem's condition: the node keeps a record of when it was cleared, and
//! readers that treat a False condition as healthy see it so. Nothing else on the node is touched.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::cluster::MarkResult;
use crate::mcp::framework::action::{Confirmed, OperatorOutput, confirm, refuse_early};
use crate::mcp::framework::target::check_node_name;
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

use super::mark_gpu_node::{check_text, finish, render_mark};

pub struct ClearGpuNodeMark;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearArgs {
    /// Why the mark is cleared (e.g. `GPU 3 replaced`), recorded in the cleared condition and the audit.
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
    /// Only check (a server-side dry run), store nothing. Needs no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Confirmation: the node name repeated exactly. Required unless the client supports elicitation or
    /// this is a dry run.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
}

impl Tool for ClearGpuNodeMark {
    type Args = Node<ClearArgs>;
    type Output = OperatorOutput<MarkResult>;
    const NAME: &'static str = "clear_gpu_node_mark";
    const TITLE: &'static str = "Clear a GPU node's scheduler mark";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. Undo mark_gpu_node: remove the \
`gpu-diag.k8s-gpu-mcp.io/unhealthy` taint and label and set the GpuDiagUnhealthy condition False (reason \
GpuDiagMarkCleared). Nothing else is touched (a cordon stays: uncordon with cordon_gpu_node). Needs \
`patch` on nodes and nodes/status (the k8s-gpu-mcp-operator ClusterRole). dry_run=true checks it \
server-side; otherwise confirmation: elicitation, or `confirm` = `<node_name>`. Audited with an Event on \
the Node.";
    const HINTS: Hints = Hints {
        idempotent: true,
        ..Hints::DESTRUCTIVE
    };

    async fn run(
        cx: &Cx,
        Node { target: t, args: a }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        let cluster = cx.cluster_for(Self::NAME, "mark")?;
        check_node_name(&t.node_name)?;
        cx.check_context(t.context.as_deref())?;
        check_text("reason", &a.reason, 256)?;
        let dry_run = a.dry_run.unwrap_or(false);
        let node = t.node_name.clone();
        let target = node.clone();
        let ctx = t.context.as_deref();
        let action = Self::NAME;
        let note = format!("cleared by k8s-gpu-mcp: {}", a.reason.trim());
        let confirmed_by = if dry_run {
            "not_needed"
        } else {
            let summary = format!("clear the mark of node {node}: {}", a.reason);
            match confirm(&cx.peer, Self::NAME, &target, a.confirm.as_deref(), &summary).await {
                Confirmed::Yes(how) => how,
                Confirmed::No(why) => {
                    return Err(refuse_early(cx, ctx, &node, action, &target, why).await);
                }
            }
        };
        let outcome = cluster.clear_node_mark(ctx, &node, &note, dry_run).await;
        finish(cx, ctx, &t, action, target, confirmed_by, &note, outcome).await
    }

    fn render(o: &Self::Output) -> String {
        render_mark(o)
    }
}
