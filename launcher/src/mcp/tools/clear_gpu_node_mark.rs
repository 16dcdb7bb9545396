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
    /// Why, e.g. `GPU 3 replaced` (recorded).
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
    /// Server-side dry run only; no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Where the client can ask no one: the node name.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
}

impl Tool for ClearGpuNodeMark {
    type Args = Node<ClearArgs>;
    type Output = OperatorOutput<MarkResult>;
    const NAME: &'static str = "clear_gpu_node_mark";
    const TITLE: &'static str = "Clear a GPU node's scheduler mark";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. Undo mark_gpu_node: remove its taint and label, set \
the GpuDiagUnhealthy condition False; a cordon stays. dry_run=true checks it; otherwise a person confirms; \
audited.";
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
