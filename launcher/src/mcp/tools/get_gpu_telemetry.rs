//! `get_gpu_telemetry`: the telemetry part of the node's reading (`node-probe describe`, kept for the next
//! questions).

use gpu_diag::command::Command;
use gpu_diag::analysis::telemetry::TelemetryReport;

use crate::mcp::framework::readings::MaxAge;
use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError};
use std::fmt::Write;

use gpu_diag::finding::Judged;

use crate::mcp::render::{gpus, text};

pub struct GpuTelemetry;

impl Tool for GpuTelemetry {
    type Args = Node<MaxAge>;
    type Output = NodeReport<TelemetryReport>;
    const NAME: &'static str = "get_gpu_telemetry";
    const TITLE: &'static str = "GPU telemetry of a node";
    const DESCRIPTION: &'static str = "Are the GPUs running hot, throttled or power-capped? Live \
temperatures, power draw against its limit, utilization, clocks and decoded clock-throttle reasons of every \
GPU on a node. Use it when jobs run slower than expected.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::read(cx, Self::NAME, a.target, Command::Telemetry, a.args, |d| d.telemetry.clone()).await
    }

    /// Verdict and findings, then one line per group of alike GPUs (the readings as ranges); thresholds,
    /// memory clocks and clock-event times per GPU stay in the structured result and the full report.
    fn render(out: &Self::Output) -> String {
        let r = &out.report;
        let mut s = text::header("GPU telemetry", &out.node, out.context.as_deref(), &out.run);
        if let Some(v) = r.verdict() {
            let _ = writeln!(s, "verdict: {}", text::verdict_label(v));
        }
        text::render_findings(r.findings().into_iter().cloned().collect(), &[], &mut s);
        let _ = writeln!(s, "GPUs ({}):", r.gpus.len());
        gpus::telemetry::summary(&r.gpus, &gpus::telemetry::lost(&r.gpus), &mut s);
        s.push_str(
            "per GPU in the structured result: temperature thresholds and headroom, memory clocks, clock-event \
             reasons and times\n",
        );
        s
    }
}
