//! `get_gpu_health`: the health part of the node's reading (`node-probe describe`, kept for the next
//! questions; `node-probe health` where an expected GPU count is given), the verdict with explained findings.

use gpu_diag::command::{Command, Request};
use gpu_diag::analysis::describe::DescribeReport;
use gpu_diag::analysis::health::HealthReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::readings::{MAX_ASKED_AGE_SECS, MaxAge};
use crate::mcp::framework::target::MAX_GPUS_PER_NODE;
use crate::mcp::framework::{Cx, Hints, Node, NodeReport, Tool, ToolError, beside, pick};
use crate::cluster::GpuNode;
use crate::mcp::render::{incidents, text};

pub struct GpuHealth;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthArgs {
    /// GPUs the node should have (e.g. 8): fewer is a "GPU missing" finding.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = MAX_GPUS_PER_NODE))]
    pub expect_gpus: Option<u32>,
    /// Oldest kept reading to answer from, in seconds (0, or with `expect_gpus`: read now).
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

impl Tool for GpuHealth {
    type Args = Node<HealthArgs>;
    type Output = NodeReport<HealthReport>;
    const NAME: &'static str = "get_gpu_health";
    const TITLE: &'static str = "GPU health verdict of a node";
    const DESCRIPTION: &'static str = "Is this node sick? A verdict per GPU and node from explained findings \
(thermals, power, ECC, row remapping, NVLink, fabric, Xid, missing GPUs) with evidence and a recommended \
action. Use it first.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let expect_gpus = a.args.expect_gpus;
        if let Some(n) = expect_gpus
            && !(1..=MAX_GPUS_PER_NODE).contains(&n)
        {
            return Err(ToolError::Invalid(format!(
                "`expect_gpus` must be between 1 and {MAX_GPUS_PER_NODE} (got {n}); omit it to skip the \
                 check"
            )));
        }
        let request = Request::Health { expect_gpus };
        // What the API server says about the node (its platform marks, the DRA drivers' device taints, the
        // kubelet's device health) is read beside the probe and joined into its incidents.
        let node = async {
            match &cx.env.cluster {
                Some(c) if cx.check_target(&a.target).is_ok() => Some(
                    c.get_node(a.target.context.as_deref(), &a.target.node_name)
                        .await,
                ),
                _ => None,
            }
        };
        // The node's reading holds health as node-probe judged it without an expected GPU count; a count
        // is judged by a probe of its own.
        let age = MaxAge {
            max_age_s: a.args.max_age_s,
        };
        let t = a.target.clone();
        let health = async {
            match expect_gpus {
                None => {
                    let part = |d: &DescribeReport| d.health.clone();
                    NodeReport::read(cx, Self::NAME, t, Command::Health, age, part).await
                }
                Some(_) => NodeReport::probe(cx, Self::NAME, t, request, pick!(Health)).await,
            }
        };
        let (mut out, node) = beside::probe_and_read(health, node, beside::AFTER_PROBE).await?;
        const WHAT: &str = "the node's platform marks and device taints (API server)";
        match node.read {
            Some(Some(Ok(n))) => add_platform(&mut out.report, &n),
            Some(Some(Err(e))) => out.report.unreadable.push(format!("{WHAT}: {e}")),
            Some(None) => return Ok(out),
            None => out.report.unreadable.push(beside::too_slow(WHAT)),
        }
        out.run.after_probe_millis = Some(node.waited_millis);
        Ok(out)
    }

    fn render(out: &Self::Output) -> String {
        let mut text = text::header("GPU health", &out.node, out.context.as_deref(), &out.run);
        incidents::health_body(&out.report, &mut text);
        text
    }
}

/// What the API server says of the node joined into the probe's health (the library's
/// [`gpu_diag::analysis::health::join_platform`]).
pub fn add_platform(h: &mut HealthReport, node: &GpuNode) {
    gpu_diag::analysis::health::join_platform(
        h,
        &node.platform,
        node.device_taints_unreadable.as_deref(),
    );
}
