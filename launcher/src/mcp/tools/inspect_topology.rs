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
    /// `summary` (default): findings, the GPU matrix, NVLink/PCIe/fabric state summarised where alike and
    /// listed where not, NICs. `full`: every NVLink and GPU pair as the probe reported them.
    #[serde(default)]
    pub detail: Detail,
    /// Oldest reading of the node this answer may come from, in seconds: a reading an earlier call made
    /// within this time (at most the server's `--reading-max-age`, 20 s by default) answers with no new
    /// probe, and the answer says how old it is. 0 reads the node now. Omit for the server's setting.
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

impl Tool for InspectTopology {
    type Args = Node<TopologyArgs>;
    type Output = NodeReport<TopologyReport>;
    const NAME: &'static str = "inspect_topology";
    const TITLE: &'static str = "GPU interconnect topology of a node";
    const DESCRIPTION: &'static str = "The GPU-to-GPU connection matrix of one node (NVLink, PCIe switch, host bridge, \
cross-socket), P2P support, NVLink link state and error counters, NUMA/CPU affinity and NVSwitch fabric \
state. Use it when NCCL all-reduce is slow or hangs, when NVLink errors are suspected, or to check that \
GPUs talk over NVLink instead of PCIe.";
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
