//! `kill_gpu_process` (operator mode): end one process that uses a GPU, after the probe's preflight and
//! the caller's confirmation; audited.

use gpu_diag::contract::Report;
use gpu_diag::operator::kill::KillReport;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::mcp::framework::action::{OperatorOutput, ProbeAction, render_action};
use crate::mcp::framework::{Cx, Hints, Node, Tool, ToolError};

pub struct KillGpuProcess;

/// Longest grace period a kill may ask for (the probe refuses more).
const MAX_GRACE: u32 = gpu_diag::operator::kill::MAX_GRACE_SECONDS;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillArgs {
    /// Host pid, as `get_gpu_processes` reports it.
    #[schemars(range(min = 2, max = 4194304))]
    pub pid: u32,
    /// Seconds from SIGTERM to SIGKILL (default 10).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 0, max = 300))]
    pub grace_seconds: Option<u32>,
    /// Preflight only: nothing signalled, no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Where the client can ask no one: `<node_name>/pid/<pid>`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Act without keeping the evidence archive first (audited).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub skip_evidence: Option<bool>,
}

impl Tool for KillGpuProcess {
    type Args = Node<KillArgs>;
    type Output = OperatorOutput<KillReport>;
    const NAME: &'static str = "kill_gpu_process";
    const TITLE: &'static str = "Kill a GPU process on a node";
    const DESCRIPTION: &'static str = "OPERATOR ACTION. End one process holding a GPU on a node (SIGTERM, \
then SIGKILL) after a preflight that refuses anything but a GPU process whose holders are known. \
dry_run=true shows the preflight; otherwise a person confirms, evidence is kept first, audited.";
    const HINTS: Hints = Hints::DESTRUCTIVE;

    async fn run(
        cx: &Cx,
        Node {
            target: node,
            args: a,
        }: Self::Args,
    ) -> Result<Self::Output, ToolError> {
        let grace = a.grace_seconds.unwrap_or(10);
        let deadline = cx.env.cfg.probe_timeout.as_secs();
        if grace > MAX_GRACE {
            return Err(ToolError::Invalid(format!(
                "grace_seconds {grace} is more than {MAX_GRACE}; nothing was done"
            )));
        }
        if u64::from(grace) + 30 > deadline {
            return Err(ToolError::Invalid(format!(
                "grace_seconds {grace} does not fit in the probe deadline ({deadline} s, --probe-timeout): use \
                 at most {} or restart the launcher with a longer --probe-timeout; nothing was done",
                deadline.saturating_sub(30)
            )));
        }
        // Who holds the GPUs the process uses: the API server's claims are one of the preflight's sources.
        let claims = cx.dra_claims(&node).await;
        ProbeAction {
            action: Self::NAME,
            target: format!("{}/pid/{}", node.node_name, a.pid),
            node,
            request: gpu_diag::command::Request::Kill {
                pid: a.pid,
                grace_seconds: grace,
                dry_run: false,
                api_claims: claims.arg(),
                override_unknown: false,
                seen: None,
            },
            dry_run: a.dry_run.unwrap_or(false),
            confirm: a.confirm,
            skip_evidence: a.skip_evidence.unwrap_or(false),
            pick: |r| match r {
                Report::Kill(k) => Some(*k),
                _ => None,
            },
            outcome_of: kill_outcome,
            // The act signals the process of the preflight the person saw (its start time and pod: a
            // reused pid is another process), and an override covers the unknowns that preflight showed.
            seen_of: |x| {
                Some(gpu_diag::operator::reset::Seen {
                    pin: None,
                    unknown: gpu_diag::operator::unknown_items(&x.checks),
                    process: x.process.clone(),
                })
            },
        }
        .run(cx)
        .await
    }

    fn render(o: &Self::Output) -> String {
        let r = &o.report;
        let process = r.process_name.as_ref().map(|name| {
            format!(
                "process: pid {} {name} `{}` on GPU(s) {:?}\n",
                r.pid,
                r.cmdline.as_deref().unwrap_or(""),
                r.gpus
            )
        });
        render_action(o, process, |s| {
            let Some(oc) = &r.outcome else {
                return;
            };
            s.push_str(&format!(
                "outcome: SIGTERM sent {}, exited after SIGTERM {}, SIGKILL sent {}, exited {}, waited {} ms, \
                 still on a GPU {}\n",
                oc.sigterm_sent,
                oc.exited_after_sigterm,
                oc.sigkill_sent,
                oc.exited,
                oc.waited_ms,
                oc.still_on_gpu
            ));
            for (b, a) in oc.memory_before.iter().zip(&oc.memory_after) {
                let mib =
                    |v: Option<u64>| v.map_or("?".to_string(), |b| format!("{} MiB", gpu_diag::analysis::mib(b)));
                s.push_str(&format!(
                    "  GPU {}: used {} -> {}\n",
                    b.gpu,
                    mib(b.used_bytes),
                    mib(a.used_bytes)
                ));
            }
        })
    }
}

/// How the kill ended, for the audit.
fn kill_outcome(r: &KillReport) -> Option<String> {
    let o = r.outcome.as_ref()?;
    Some(
        if o.exited_after_sigterm {
            "exited after SIGTERM"
        } else if o.sigkill_sent && o.exited {
            "killed with SIGKILL"
        } else {
            "still running"
        }
        .to_string(),
    )
}
