//! `snapshot_ecc`: the ECC part of the node's reading (`node-probe describe`, kept for the next questions).

use gpu_diag::command::Command;
use gpu_diag::analysis::ecc::EccReport;

use crate::mcp::framework::readings::MaxAge;
use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::text;

pub struct SnapshotEcc;

impl Tool for SnapshotEcc {
    type Args = Node<MaxAge>;
    type Output = NodeReport<EccReport>;
    const NAME: &'static str = "snapshot_ecc";
    const TITLE: &'static str = "ECC and memory-error snapshot of a node";
    const DESCRIPTION: &'static str = "ECC mode and error counters (volatile and aggregate, corrected and uncorrected, by \
location), retired pages and remapped rows of every GPU on one node, with what they require (reset, \
drain, RMA). Use it after XID 48/63/64/94/95, on memory errors in jobs, or before deciding whether a GPU \
must be replaced.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::read(cx, Self::NAME, a.target, Command::Ecc, a.args, |d| d.ecc.clone()).await
    }

    fn render(out: &Self::Output) -> String {
        text::node_report("ECC snapshot", out)
    }
}
