//! `cordon_gpu_node` (operator mode): cordon or uncordon a node through the API server, after the caller's
//! confirmation; audited with an Event on the Node.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::cluster::CordonResult;
use crate::mcp::framework::action::{ClusterAction, OperatorOutput, headline};
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

pub struct CordonGpuNode;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CordonArgs {
    /// Why, recorded on the node and in the audit, e.g. `XID 79 on GPU 3`.
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
    /// Uncordon instead.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub uncordon: Option<bool>,
    /// Where the client can ask no one: the node name.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
}

impl Tool for CordonGpuNode {
    type Args = Node<CordonArgs>;
    type Output = OperatorOutput<CordonResult>;
    const NAME: &'static str = "cordon_gpu_node";
    const TITLE: &'static str = "Cordon or uncordon a GPU node";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. Cordon a node (no new pods; running pods stay) with a \
recorded reason, or uncordon it with uncordon=true. A person confirms; audited with an Event on the Node.";
    const HINTS: Hints = Hints {
        idempotent: true,
        ..Hints::DESTRUCTIVE
    };

    async fn run(
        cx: &Cx,
        Node { target: t, args: a }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        let op = ClusterAction::start(cx, Self::NAME, "to cordon", t)?;
        let on = !a.uncordon.unwrap_or(false);
        let action = if on {
            "cordon_gpu_node"
        } else {
            "uncordon_gpu_node"
        };
        let target = op.node().to_string();
        let summary = format!(
            "{} node {target}: {}",
            if on { "cordon" } else { "uncordon" },
            a.reason
        );
        let confirmed_by = op
            .confirm(action, &target, false, a.confirm.as_deref(), &summary)
            .await?;
        let outcome = op.cluster.cordon(op.context(), &target, &a.reason, on).await;
        op.finish(action, target, confirmed_by, outcome, |_| ("done", a.reason.clone()))
            .await
    }

    fn render(o: &Self::Output) -> String {
        let r = &o.report;
        let mut s = headline(o, false);
        s.push_str(&format!(
            "node {}: unschedulable {} -> {}{}\n",
            r.node,
            r.unschedulable_before,
            r.unschedulable,
            r.reason
                .as_deref()
                .map(|x| format!(" (reason: {x})"))
                .unwrap_or_default()
        ));
        s
    }
}
