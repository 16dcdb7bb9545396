//! `analyze_xid_errors`: `node-probe xid` on one node, kernel-log XID/SXid events decoded and correlated.

use std::fmt::Write;

use gpu_diag::command::{Request, Since};
use gpu_diag::contract::Report;
use gpu_diag::kernel_log::report::XidReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::{details, incidents, text};

pub struct AnalyzeXidErrors;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct XidArgs {
    /// Only events in this window before now: a number and a unit s, m, h or d (e.g. `30m`, `2h`, `7d`).
    /// Omit for everything in the kernel log since boot.
    #[serde(default)]
    #[schemars(with = "String", regex(pattern = Since::PATTERN))]
    pub since: Option<String>,
}

impl Tool for AnalyzeXidErrors {
    type Args = Node<XidArgs>;
    type Output = NodeReport<XidReport>;
    const NAME: &'static str = "analyze_xid_errors";
    const TITLE: &'static str = "Analyze XID errors on a node";
    const DESCRIPTION: &'static str = "Read the node's kernel log for NVIDIA XID/SXid events, decode each against NVIDIA's \
catalog (meaning, likely cause, required action) and correlate them (e.g. XID 79 'fallen off the bus' \
with PCIe errors). Use it when a CUDA job crashed or hung, a GPU disappeared, or the kernel log mentions \
NVRM. Returns decoded events per GPU and findings with the recommended action.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let since = a.args.since.as_deref().map(parse_since).transpose()?;
        let request = Request::Xid { since };
        NodeReport::probe(cx, Self::NAME, a.target, request, |r| match r {
            Report::Xid(x) => Some(*x),
            _ => None,
        })
        .await
    }

    fn render(out: &Self::Output) -> String {
        let mut t = text::header("XID analysis", &out.node, out.context.as_deref(), &out.run);
        let r = &out.report;
        let _ = writeln!(t, "verdict: {}", text::verdict_label(r.node.verdict));
        // Each code's finding under the incident it belongs to: one fault once.
        let name = |i: u32| {
            let pci = r.gpus.iter().find(|g| g.index == Some(i)).and_then(|g| g.pci_bus_id.as_deref());
            gpu_diag::kernel_log::report::gpu_label(Some(i), pci)
        };
        incidents::render(&gpu_diag::incident::group(&r.findings, &name), &mut t);
        let mut body = String::new();
        details::write_entry(&text::serialized_details(r), 0, &mut body);
        if !body.trim().is_empty() {
            t.push_str("details:\n");
            for line in body.lines() {
                let _ = writeln!(t, "  {line}");
            }
        }
        t
    }
}

/// The argument as a [`Since`], or the error the caller reads.
fn parse_since(s: &str) -> Result<Since, ToolError> {
    s.parse().map_err(|e| {
        ToolError::Invalid(format!(
            "`since` {e}; omit it for the whole kernel log"
        ))
    })
}
