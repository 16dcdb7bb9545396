//! `inspect_topology`: the topology part of the node's reading (`node-probe describe`, kept for the next
//! questions), summarised unless `detail` is `full`.

use gpu_diag::command::Command;
use gpu_diag::analysis::topology::{TopologyReport, summarize};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::readings::{MAX_ASKED_AGE_SECS, MaxAge};
use crate::mcp::framework::{Cx, Detail, Hints, Node, NodeReport, Tool, ToolError};
use crate::mcp::render::{text, topology};

pub struct InspectTopology;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologyArgs {
    /// `summary` (default): alike links summarised; `full`: every link and GPU pair.
    #[serde(default)]
    pub detail: Detail,
    /// Oldest kept reading to answer from, in seconds (0: read now).
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

impl Tool for InspectTopology {
    type Args = Node<TopologyArgs>;
    type Output = NodeReport<TopologyReport>;
    const NAME: &'static str = "inspect_topology";
    const TITLE: &'static str = "GPU interconnect topology of a node";
    const DESCRIPTION: &'static str = "A node's GPU interconnect: NVLink, NVSwitch or AMD XGMI links with \
state and error counters, PCIe paths, P2P, NUMA affinity and InfiniBand/RoCE NICs. Use it when NCCL \
all-reduce is slow or hangs, or link errors are suspected.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let mut r =
            NodeReport::read(cx, Self::NAME, a.target, Command::Topology, MaxAge { max_age_s: a.args.max_age_s }, |d| d.topology.clone()).await?;
        if a.args.detail == Detail::Summary {
            summarize(&mut r.report);
        }
        Ok(r)
    }

    fn render(r: &Self::Output) -> String {
        let mut out = text::header("GPU topology", &r.node, r.context.as_deref(), &r.run);
        text::render_findings(r.report.findings.clone(), &[], &mut out);
        topology::render(&r.report, &mut out);
        out
    }
}
