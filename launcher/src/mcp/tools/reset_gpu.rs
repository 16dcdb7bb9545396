//! `reset_gpu` (operator mode): reset one GPU with the host's `nvidia-smi -r` (an AMD GPU: `amd-smi reset
//! -G`, its whole XGMI hive; an Intel Gaudi: its driver's `hard_reset` file) after the probe's preflight
//! and the caller's confirmation; audited.

use gpu_diag::contract::Report;
use gpu_diag::operator::reset::ResetReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::action::{
    OperatorOutput, ProbeAction, evidence_first_doc, render_action, render_checks,
};
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

pub struct ResetGpu;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetArgs {
    /// GPU index (`3`), UUID (`GPU-...`), AMD unique id (16 hex digits) or PCI address
    /// (`0000:65:00.0`), as `get_gpu_inventory` reports it. An index is the probe's numbering (NVIDIA's
    /// GPUs first, then AMD's) and shifts when a vendor's library stops answering; the act is refused
    /// when the GPU found is not the one the person approved.
    #[serde(deserialize_with = "string_or_index")]
    #[schemars(
        length(min = 1, max = 100),
        regex(
            pattern = r"^([0-9]{1,4}|[Gg][Pp][Uu]-[0-9A-Za-z-]{1,96}|(0[xX])?[0-9A-Fa-f]{16}|([0-9A-Fa-f]{1,8}:)?[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])$"
        )
    )]
    pub gpu: String,
    /// Run the preflight only (who holds the GPU, MIG, Fabric Manager, ...): no reset, no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Confirmation: the target repeated exactly, `<node_name>/gpu/<gpu>` (e.g. `gpu-node-5/gpu/3`), or
    /// the dry run's `confirm_with` (the target, `@`, the GPU it showed), which makes the act reset that
    /// GPU or nothing. Required only where the client can ask the user neither by input request
    /// (2026-07-28) nor by elicitation; the answer then says no person was asked.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Act without first collecting the evidence archive (`collect_evidence`) that is otherwise kept
    /// before the action; the audit record says it was skipped.
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
    const DESCRIPTION: &'static str = concat!(
        "OPERATOR ACTION. Reset one GPU with the host's `nvidia-smi -r` after a preflight: no \
process on the GPU and no holder of its /dev/nvidia* node (device plugin, DCGM, dcgm-exporter, GFD, \
persistenced), no pod holding it by any source (kubelet PodResources, the API server's ResourceClaims, \
the node's DRA claim specs; a GPU no source can vouch for is refused unless the person who confirms \
overrides it, never one a source names), the GPU still on the bus (a lost GPU needs a reboot), Fabric Manager running on Ampere \
NVSwitch systems (Hopper+ do not need it), pre-Ampere NVLink GPUs refused; MIG, persistence and pending \
row remaps are reported. Then verifies the GPU answers with recovery action none. An AMD GPU is reset \
with the host's `amd-smi reset -G -g <BDF>`, which resets its whole XGMI hive: every GPU of the hive must \
have no holder of /dev/kfd (KFD's process list says which GPU; an open /dev/kfd whose GPU it does not name \
is unknown) or of its /dev/dri nodes and no pod holding it, with the same override rule; then each GPU of \
the hive is verified back with its unique_id, its RAS counters read back and the kernel's reset lines \
quoted. An Intel Gaudi is hard-reset through its habanalabs driver's `hard_reset` sysfs file, with no \
holder of its /dev/accel node and no pod holding it (the same override rule), and verified back \
`Operational` with the reset counted. An AWS Neuron device is reset through the neuron driver's `reset` \
sysfs file, which the driver ignores while any process holds /dev/neuron<N>: no holder and no pod holding \
it (the same override rule), then verified from the driver's own request count grown and the device read \
back ready. dry_run=true returns the preflight only. Needs confirmation by a person: input request (2026-07-28) or \
elicitation, after seeing the preflight; where the client can ask no one, `confirm` = the dry run's \
`confirm_with` (`<node_name>/gpu/<gpu>@pci=...`, which binds the act to the GPU the dry run showed) or \
`<node_name>/gpu/<gpu>` (the answer then says no person was asked). Audited.",
        evidence_first_doc!()
    );
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
