//! `get_gpu_history`: one node's GPUs over the last hours, as the cluster's own metrics recorded them
//! (dcgm-exporter's or AMD's exporter's series in Prometheus), answered locally: no probe pod, nothing
//! installed. Reading is `cluster::prometheus`, judging `gpu_diag::history`; this file asks and renders.

use std::fmt::Write;

use gpu_diag::history::{Episode, NodeHistory};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::prometheus::{DEFAULT_HOURS, MAX_HOURS};
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError, target};
use crate::mcp::render::text;

pub struct GetGpuHistory;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// Hours back to read (default 6).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 168))]
    pub hours: Option<u32>,
}

/// The answer: the node's history, or in one line why there is none and what to do.
#[derive(Debug, Serialize, JsonSchema)]
pub struct GpuHistoryAnswer {
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub hours: u32,
    /// `history`, or why there is none: `no_prometheus`, `unreachable`, `no_series`.
    pub status: String,
    /// The verdict with what leads it, or why there is no history and what to do, in one line.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<NodeHistory>,
}

impl Tool for GetGpuHistory {
    type Args = Node<HistoryArgs>;
    type Output = GpuHistoryAnswer;
    const NAME: &'static str = "get_gpu_history";
    const TITLE: &'static str = "GPU history of a node from the cluster's Prometheus";
    const DESCRIPTION: &'static str = "What the cluster's Prometheus recorded for a node's GPUs over the last \
hours (dcgm-exporter, AMD or Gaudi exporters): throttling, Xids, ECC and PCIe errors, power, temperature. \
Use it for 'was this GPU throttling or erroring before I looked?'; no probe.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let t = a.target;
        target::check_node_name(&t.node_name)?;
        if cx.is_local() && t.context.is_some() {
            return Err(ToolError::Invalid(
                "`context` selects a kubeconfig context, which local mode does not use; call again without \
                 `context`"
                    .into(),
            ));
        }
        cx.check_context(t.context.as_deref())?;
        let hours = a.args.hours.unwrap_or(DEFAULT_HOURS);
        if !(1..=MAX_HOURS).contains(&hours) {
            return Err(ToolError::Invalid(format!(
                "`hours` is 1 to {MAX_HOURS} (got {hours})"
            )));
        }
        let (status, summary, history) = match cx.gpu_history(t.context.as_deref(), &t.node_name, hours).await
        {
            Ok(h) => ("history".to_string(), h.headline.clone(), Some(h)),
            Err(e) => (e.kind().to_string(), e.to_string(), None),
        };
        Ok(GpuHistoryAnswer {
            node: t.node_name,
            context: t.context,
            hours,
            status,
            summary,
            history,
        })
    }

    fn render(out: &Self::Output) -> String {
        let mut s = format!("GPU history of node {}", out.node);
        if let Some(c) = &out.context {
            let _ = write!(s, " (context {c})");
        }
        let Some(h) = &out.history else {
            let _ = writeln!(s, ", last {} h: none\n{}", out.hours, out.summary);
            return s;
        };
        let exporters: Vec<&str> = h.exporters.iter().map(|e| e.name()).collect();
        let _ = writeln!(
            s,
            " · {} from {} · node matched on label `{}` · a point every {} s",
            exporters.join(" and "),
            h.source,
            h.matched_label,
            h.window.step_secs
        );
        let _ = writeln!(s, "verdict: {}", text::verdict_label(h.verdict));
        let _ = writeln!(s, "{}", h.headline);
        let long = h.window.hours > 24.0;
        for g in h.gpus.iter().filter(|g| !gpu_diag::history::gpu::is_plain(g)) {
            let _ = writeln!(s, "- {}", g.line);
            if g.throttle_episodes.len() > 1 {
                let eps: Vec<String> = g
                    .throttle_episodes
                    .iter()
                    .map(|e| format!("{} {}", span(e, long), e.what))
                    .collect();
                let more = match g.throttle_episodes_left_out {
                    0 => String::new(),
                    n => format!(" (+{n} shorter)"),
                };
                let _ = writeln!(s, "  throttle episodes: {}{more}", eps.join(", "));
            }
            for x in g.xids.iter().filter(|x| !x.before_window) {
                let _ = writeln!(s, "  Xid {}: {}", x.code, x.meaning);
            }
            for gap in &g.gaps {
                let _ = writeln!(s, "  no data {}", span(gap, long));
            }
        }
        if let Some(u) = &h.uniform {
            let _ = writeln!(s, "- {u}");
        }
        if !h.gaps.is_empty() {
            let gaps: Vec<String> = h.gaps.iter().map(|g| span(g, long)).collect();
            let _ = writeln!(
                s,
                "no data from any GPU: {} (exporter down or not scraped: unknown, not healthy)",
                gaps.join(", ")
            );
        }
        for n in &h.not_exported {
            let _ = writeln!(s, "{n}");
        }
        for l in &h.left_out {
            let _ = writeln!(s, "left out: {l}");
        }
        s
    }
}

/// `09:40–10:52` (UTC), with the date in a window over a day.
fn span(e: &Episode, long: bool) -> String {
    let fmt = if long { "%m-%d %H:%M" } else { "%H:%M" };
    let t = |v: &str| {
        v.parse::<jiff::Timestamp>()
            .map(|t| t.strftime(fmt).to_string())
            .unwrap_or_else(|_| v.to_string())
    };
    format!("{}–{}", t(&e.start), t(&e.end))
}
