//! `get_gpu_telemetry`: `node-probe telemetry` on one node.

use gpu_diag::command::Command;
use gpu_diag::analysis::telemetry::TelemetryReport;

use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError, target::NoArgs, pick};
use crate::mcp::render::text;

pub struct GpuTelemetry;

impl Tool for GpuTelemetry {
    type Args = Node<NoArgs>;
    type Output = NodeReport<TelemetryReport>;
    const NAME: &'static str = "get_gpu_telemetry";
    const TITLE: &'static str = "GPU telemetry of a node";
    const DESCRIPTION: &'static str = "Live readings of every GPU on one node: temperatures against their slowdown and \
shutdown thresholds, power draw against the limit, utilization, clocks, and decoded clock-throttle \
reasons. Use it when jobs are slower than expected, to tell thermal or power throttling from idle GPUs.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::probe(
            cx,
            Self::NAME,
            a.target,
            Command::Telemetry,
            pick!(Telemetry),
        )
        .await
    }

    fn render(out: &Self::Output) -> String {
        text::node_report("GPU telemetry", out)
    }
}
