//! `inspect_topology`: `node-probe topology` on one node.

use gpu_diag::analysis::topology::TopologyReport;

use crate::pick;
use crate::tool::{Cx, Hints, Node, NodeReport, Tool, ToolError, target::NoArgs, text};

pub struct InspectTopology;

impl Tool for InspectTopology {
    type Args = Node<NoArgs>;
    type Output = NodeReport<TopologyReport>;
    const NAME: &'static str = "inspect_topology";
    const TITLE: &'static str = "GPU interconnect topology of a node";
    const DESCRIPTION: &'static str = "The GPU-to-GPU connection matrix of one node (NVLink, PCIe switch, host bridge, \
cross-socket), P2P support, NVLink link state and error counters, NUMA/CPU affinity and NVSwitch fabric \
state. Use it when NCCL all-reduce is slow or hangs, when NVLink errors are suspected, or to check that \
GPUs talk over NVLink instead of PCIe.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        NodeReport::probe(
            cx,
            Self::NAME,
            a.target,
            vec!["topology".into()],
            pick!(Topology),
        )
        .await
    }

    fn render(r: &Self::Output) -> String {
        let mut report = serde_json::to_value(&r.report).unwrap_or(serde_json::Value::Null);
        let mut out = text::header("GPU topology", &r.node, r.context.as_deref(), &r.run);
        let nics = text::take_nics(&mut report);
        text::report_body_with(&report, &[], &nics, &mut out);
        out
    }
}
