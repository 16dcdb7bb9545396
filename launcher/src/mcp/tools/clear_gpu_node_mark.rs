//! `clear_gpu_node_mark` (operator mode): undo `mark_gpu_node`, exactly: our taint and label are removed
//! and our condition is set False (reason GpuDiagMarkCleared, when and why in it), as Node Problem
//! Detector leaves a resolved problem's condition: the node keeps a record of when it was cleared, and
//! readers that treat a False condition as healthy see it so. Nothing else on the node is touched.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::cluster::MarkResult;
use crate::mcp::framework::action::{ClusterAction, OperatorOutput};
use crate::mcp::framework::node_mark::{judge_mark, render_mark};
use crate::mcp::framework::schema::check_not_blank;
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

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
    /// Confirmation: the node name repeated exactly. Not needed for a dry run, nor where the client can ask
    /// the user (input request on 2026-07-28, elicitation before); otherwise required, and the answer then
    /// says no person was asked.
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
server-side; otherwise a person confirms (input request on 2026-07-28, elicitation before), or, where the \
client can ask no one, `confirm` = `<node_name>` (the answer then says no person was asked). Audited with \
an Event on the Node.";
    const HINTS: Hints = Hints {
        idempotent: true,
        ..Hints::DESTRUCTIVE
    };

    async fn run(
        cx: &Cx,
        Node { target: t, args: a }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        let op = ClusterAction::start(cx, Self::NAME, "mark", t)?;
        // Length and control characters: the schema's limits, checked before `run`.
        check_not_blank("reason", &a.reason).map_err(ToolError::Invalid)?;
        let dry_run = a.dry_run.unwrap_or(false);
        let target = op.node().to_string();
        let note = format!("cleared by k8s-gpu-mcp: {}", a.reason.trim());
        let summary = format!("clear the mark of node {target}: {}", a.reason);
        let confirmed_by = op
            .confirm(Self::NAME, &target, dry_run, a.confirm.as_deref(), &summary)
            .await?;
        let outcome = op.cluster.clear_node_mark(op.context(), &target, &note, dry_run).await;
        op.finish(Self::NAME, target, confirmed_by, outcome, judge_mark(&note))
            .await
    }

    fn render(o: &Self::Output) -> String {
        render_mark(o)
    }
}
