//! `get_gpu_inventory`: the inventory part of the node's reading (`node-probe describe`, kept for the next
//! questions).

use gpu_diag::command::Command;
use gpu_diag::analysis::inventory::InventoryReport;

use crate::mcp::framework::readings::MaxAge;
use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::{gpus, text};

pub struct GpuInventory;

impl Tool for GpuInventory {
    type Args = Node<MaxAge>;
    type Output = NodeReport<InventoryReport>;
    const NAME: &'static str = "get_gpu_inventory";
    const TITLE: &'static str = "GPU inventory of a node";
    const DESCRIPTION: &'static str = "Every GPU on a node: model, UUID, serial, PCI bus id, VBIOS/firmware, \
memory, MIG and compute modes, driver and CUDA versions. Use it for 'what GPUs does this node have', a \
missing GPU, or to compare firmware across nodes.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::read(cx, Self::NAME, a.target, Command::Inventory, a.args, |d| d.inventory.clone()).await
    }

    fn render(out: &Self::Output) -> String {
        let mut s = text::header("GPU inventory", &out.node, out.context.as_deref(), &out.run);
        text::report_body(&out.report, &gpus::inventory::details(&out.report), &mut s);
        s
    }
}
