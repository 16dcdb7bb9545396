//! Findings and verdicts: the explained, evidence-carrying output of every interpretation rule.

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing, no action needed.
    Info,
    /// Degraded or needs attention soon.
    Warning,
    /// The GPU or node cannot be trusted with work until acted on.
    Critical,
}

/// Overall state of a GPU or a node.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    /// Some facts could not be read, so health cannot be stated (and nothing bad was seen).
    Unknown,
    Degraded,
    Unhealthy,
}

impl Verdict {
    /// The verdict that a set of findings implies, given whether the facts were complete enough to judge.
    pub fn from_findings<'a>(
        findings: impl IntoIterator<Item = &'a Finding>,
        facts_complete: bool,
    ) -> Verdict {
        let worst = findings.into_iter().map(|f| f.severity).max();
        match worst {
            Some(Severity::Critical) => Verdict::Unhealthy,
            Some(Severity::Warning) => Verdict::Degraded,
            _ if !facts_complete => Verdict::Unknown,
            _ => Verdict::Healthy,
        }
    }
}

/// What an SRE should do, from least to most disruptive. The order matters: the node's recommended
/// action is the most disruptive action any critical finding asks for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    None,
    Monitor,
    Investigate,
    RestartApplication,
    CheckCooling,
    CheckPower,
    UpdateSoftware,
    RestartFabricManager,
    ResetGpuWhenDrained,
    ResetGpu,
    DrainAndResetGpu,
    CheckMechanicals,
    RebootNode,
    Rma,
    ContactSupport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Action {
    pub kind: ActionKind,
    /// The concrete step, e.g. "drain the node, then `nvidia-smi -r -i 3`".
    pub detail: String,
}

/// What every report answers, whatever its shape: the node's verdict where it judges one, and every
/// finding it holds. Renderings, the scan and the workload ranking read reports through this, so a renamed
/// field fails to compile instead of silently dropping out of an answer.
pub trait Judged {
    /// The node's verdict, for the reports that make one.
    fn verdict(&self) -> Option<Verdict> {
        None
    }
    /// Every finding the report holds, each once (a section's findings reappear in health's merge).
    fn findings(&self) -> Vec<&Finding>;
}

/// `findings` without repeats, in their first order.
pub fn distinct<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Vec<&'a Finding> {
    let mut out: Vec<&Finding> = Vec::new();
    for f in findings {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// One observation with its evidence and the action it calls for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Finding {
    /// Stable machine-readable identifier (`thermal.hw_slowdown`, `ecc.remap_pending`, `xid.79`, ...).
    pub code: String,
    pub severity: Severity,
    /// GPU index the finding is about; absent for node-level findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    /// One sentence saying what is wrong and why it matters.
    pub summary: String,
    /// The facts that drove the finding, as `name = value` statements.
    pub evidence: Vec<String>,
    pub action: Action,
}
