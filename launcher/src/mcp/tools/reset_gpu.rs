//! `reset_gpu` (operator mode): reset one GPU with the host's `nvidia-smi -r` (an AMD GPU: `amd-smi reset
//! -G`, its whole XGMI hive; an Intel Gaudi: its driver's `hard_reset` file) after the probe's preflight
//! and the caller's confirmation; audited.

use gpu_diag::contract::Report;
use gpu_diag::operator::reset::ResetReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::action::{
    OperatorOutput, ProbeAction, render_action, render_checks,
};
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

pub struct ResetGpu;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetArgs {
    /// Index, UUID, AMD unique id or PCI address, as `get_gpu_inventory` reports it.
    #[serde(deserialize_with = "string_or_index")]
    #[schemars(
        length(min = 1, max = 100),
        regex(
            pattern = r"^([0-9]{1,4}|[Gg][Pp][Uu]-[0-9A-Za-z-]{1,96}|(0[xX])?[0-9A-Fa-f]{16}|([0-9A-Fa-f]{1,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])$"
        )
    )]
    pub gpu: String,
    /// Preflight only: no reset, no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Where the client can ask no one: the dry run's `confirm_with`, or `<node_name>/gpu/<gpu>`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Act without keeping the evidence archive first (audited).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub skip_evidence: Option<bool>,
}

fn string_or_index<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Gpu {
        S(String),
        N(u32),
    }
    Ok(match Gpu::deserialize(d)? {
        Gpu::S(s) => s,
        Gpu::N(n) => n.to_string(),
    })
}

impl Tool for ResetGpu {
    type Args = Node<ResetArgs>;
    type Output = OperatorOutput<ResetReport>;
    const NAME: &'static str = "reset_gpu";
    const TITLE: &'static str = "Reset a GPU on a node";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. Reset one hung or faulty GPU (nvidia-smi -r; amd-smi \
reset of its XGMI hive; the Gaudi or Neuron driver's reset) after a preflight refusing a GPU any process or \
pod holds, then verify it came back. dry_run=true shows the preflight; otherwise a person confirms, evidence \
is kept first, audited.";
    const HINTS: Hints = Hints::DESTRUCTIVE;

    async fn run(
        cx: &Cx,
        Node {
            target: node,
            args: a,
        }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        // The API server's claims on the node are one of the preflight's sources of who holds the GPU,
        // read whatever the kubelet answers.
        let claims = cx.dra_claims(&node).await;
        ProbeAction {
            action: Self::NAME,
            target: format!("{}/gpu/{}", node.node_name, a.gpu),
            node,
            request: gpu_diag::command::Request::Reset {
                gpu: a.gpu,
                dry_run: false,
                api_claims: claims.arg(),
                override_unknown: false,
                seen: None,
            },
            dry_run: a.dry_run.unwrap_or(false),
            confirm: a.confirm,
            skip_evidence: a.skip_evidence.unwrap_or(false),
            pick: |r| match r {
                Report::Reset(x) => Some(*x),
                _ => None,
            },
            outcome_of: |x| {
                let o = x.outcome.as_ref()?;
                Some(if o.verified { "reset and verified" } else { "reset not verified" }.into())
            },
            // The act resets the GPU of the preflight the person saw (its PCI address, unique id and
            // partition mode), and an override covers the unknowns that preflight showed.
            seen_of: |x| {
                Some(gpu_diag::operator::reset::Seen {
                    pin: x.target.as_ref().map(|t| t.pin()).filter(|p| !p.is_empty()),
                    unknown: gpu_diag::operator::unknown_items(&x.checks),
                    process: None,
                })
            },
        }
        .run(cx)
        .await
    }

    fn render(o: &Self::Output) -> String {
        let r = &o.report;
        let gpu = r.target.as_ref().map(|t| {
            let parts: Vec<&str> = [&t.name, &t.uuid, &t.pci_bus_id]
                .into_iter()
                .filter_map(|p| p.as_deref())
                .filter(|p| !p.is_empty())
                .collect();
            format!("GPU {} {}\n", t.index, parts.join(" "))
        });
        render_action(o, gpu, |s| {
            let Some(oc) = &r.outcome else {
                return;
            };
            for c in &oc.commands {
                s.push_str(&format!(
                    "ran `{}`: exit {:?}\n",
                    c.argv.join(" "),
                    c.exit_code
                ));
            }
            s.push_str(&format!("verified: {}\n", oc.verified));
            render_checks(s, &oc.verification);
        })
    }
}
