//! `describe_gpu_node`: everything about one node in one probe run (`node-probe describe`), beside what the
//! API server says about the node and the pods holding its GPUs.

use std::fmt::Write;

use gpu_diag::analysis::describe::DescribeReport;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::cluster::{GpuNode, PodGpuUse};
use crate::pick;
use crate::tool::text::{header, render_value, report_body_with, take_nics};
use crate::tool::{Cx, Hints, Node, ProbeRun, Tool, ToolError, target::NoArgs};

pub struct DescribeGpuNode;

/// The Kubernetes side of a node: its GPU accounting and the pods using GPUs there.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KubeNodeView {
    pub node: GpuNode,
    pub pods: Vec<PodGpuUse>,
}

/// `describe_gpu_node` result: the probe's full report plus what Kubernetes says about the node.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DescribeOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub run: ProbeRun,
    pub report: DescribeReport,
    /// What the API server says (absent in local mode or when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeNodeView>,
    /// Why `kubernetes` is missing, when it should be there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_error: Option<String>,
}

impl Tool for DescribeGpuNode {
    type Args = Node<NoArgs>;
    type Output = DescribeOutput;
    const NAME: &'static str = "describe_gpu_node";
    const TITLE: &'static str = "Describe a GPU node (everything)";
    const DESCRIPTION: &'static str = "Everything about one node in one probe run: inventory, telemetry, topology, ECC, \
processes, kernel-log XIDs and the health verdict, plus (in cluster mode) the node's Kubernetes GPU \
accounting, conditions, taints and the pods holding GPUs. Use it for a full picture before a decision \
(drain, reset, RMA) or when unsure which narrower tool fits; it is slower and larger than the others.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let t = a.target;
        cx.check_target(&t)?;
        let probe = cx.probe_report(Self::NAME, &t, vec!["describe".into()], pick!(Describe));
        // The API-server half runs alongside the probe; it is cheap and independent.
        let kube = async {
            match &cx.env.cluster {
                None => None,
                Some(c) => Some(
                    c.node_and_gpu_pods(t.context.as_deref(), &t.node_name)
                        .await
                        .map(|(n, pods)| KubeNodeView { node: n, pods }),
                ),
            }
        };
        let (res, kube) = tokio::join!(probe, kube);
        let (report, run) = res?;
        let (kubernetes, kubernetes_error) = match kube {
            None => (None, None),
            Some(Ok(v)) => (Some(v), None),
            Some(Err(e)) => (None, Some(ToolError::Cluster(e).to_string())),
        };
        Ok(DescribeOutput {
            node: t.node_name,
            context: t.context,
            run,
            report: *report,
            kubernetes,
            kubernetes_error,
        })
    }

    fn render(d: &Self::Output) -> String {
        let mut report = serde_json::to_value(&d.report).unwrap_or(Value::Null);
        let mut out = header("Node description", &d.node, d.context.as_deref(), &d.run);
        let nics = take_nics(&mut report);
        report_body_with(&report, &[], &nics, &mut out);
        match (&d.kubernetes, &d.kubernetes_error) {
            (Some(k), _) => {
                out.push_str("\nKubernetes:\n");
                let v = serde_json::to_value(k).unwrap_or(Value::Null);
                render_value(&v, 1, &mut out);
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "\nKubernetes: could not read the node: {e}");
            }
            (None, None) => {}
        }
        out
    }
}
