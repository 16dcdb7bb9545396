//! `collect_evidence`: `node-probe evidence` on one node (the node's own nvidia-bug-report.sh in safe mode
//! under a time limit, plus describe, the XID history and the kernel ring buffer), written as one
//! `tar.gz` under `--evidence-dir` on the launcher's machine. Also run first by the destructive operator
//! tools, whose audit record names the archive.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mcp::framework::evidence::{Evidence, collect};
use crate::mcp::framework::{Cx, Hints, Node, ProbeRun, Tool, ToolError};

pub struct CollectEvidence;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceArgs {
    /// Seconds nvidia-bug-report.sh may run (default 60); the rest is collected either way.
    #[serde(default)]
    #[schemars(with = "u64", range(min = 1, max = 600))]
    pub time_limit_secs: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EvidenceOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub evidence: Evidence,
    pub run: ProbeRun,
}

impl Tool for CollectEvidence {
    type Args = Node<EvidenceArgs>;
    type Output = EvidenceOutput;
    const NAME: &'static str = "collect_evidence";
    const TITLE: &'static str = "Collect a node's GPU evidence archive";
    const DESCRIPTION: &'static str = "Keep the evidence NVIDIA support asks for before a reset or reboot \
destroys it: the node's nvidia-bug-report.sh, the probe's full report, Xid history and kernel log, as one \
tar.gz on the launcher's machine. Use it before escalating (RMA, support case).";
    const HINTS: Hints = Hints::READ_LIVE;
    // nvidia-bug-report.sh runs for up to minutes: a task where the client can take one.
    const TASK: bool = true;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        cx.check_target(&a.target)?;
        let (evidence, run) = collect(cx, &a.target, a.args.time_limit_secs).await?;
        Ok(EvidenceOutput {
            node: a.target.node_name,
            context: a.target.context,
            evidence,
            run,
        })
    }

    fn render(o: &Self::Output) -> String {
        let e = &o.evidence;
        let mut s = format!(
            "evidence of {}: {} ({} bytes, sha256 {})\nin {}\n",
            o.node, e.name, e.bytes, e.sha256, e.dir
        );
        s.push_str(&format!(
            "nvidia-bug-report.sh: {}: {}\n",
            e.bug_report.status, e.bug_report.detail
        ));
        if e.bug_report.status != "collected"
            && e.bug_report.status != "absent"
            && !e.bug_report.output_tail.is_empty()
        {
            s.push_str(&format!("its output ends: {}\n", e.bug_report.output_tail));
        }
        s.push_str("members: ");
        s.push_str(
            &e.members
                .iter()
                .map(|m| format!("{} ({} bytes)", m.name, m.bytes))
                .collect::<Vec<_>>()
                .join(", "),
        );
        s.push('\n');
        for n in &e.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        if let Some(u) = &e.index_uri {
            s.push_str(&format!("index: {u}\n"));
        }
        s
    }
}
