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

impl Severity {
    /// The word a text answer shows: loud for what needs acting on, quiet for what is only worth knowing.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::Warning => "WARNING",
            Severity::Info => "info",
        }
    }
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
    /// The node's faults, each once with its findings as signals, for the reports that judge a node.
    fn incidents(&self) -> Option<&Incidents> {
        None
    }
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

/// The `about` key of what concerns the node's IMEX daemon (its findings, and the driver's request to
/// recover the IMEX domain on a GPU): the incident `imex.domain` joins them.
pub const IMEX_KEY: &str = "imex";

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
    /// The components it is about besides its GPU, as `kind:id` keys that incidents join on:
    /// `nic:mlx5_5/1` (an RDMA port), `nvswitch:0000:06:00.0`, `nvlink:3/7` (GPU 3's link 7), `gpu:4` (a
    /// node-level finding about GPU 4, such as a GPU NVML cannot open), `imex` (the node's IMEX daemon).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub about: Vec<String>,
    /// When the first event behind it happened (RFC 3339, UTC), where a log dates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
}

/// One fault of one component, with the findings that show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    /// The fault (`gpu.memory`, `nvlink.fault`, ...), or the code of a lone finding.
    pub code: String,
    pub severity: Severity,
    /// The GPU it is about; absent for a port, a switch or the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    /// The component in words: `GPU 1 (0000:ca:00.0)`, `RDMA port mlx5_5/1`, `node`.
    pub component: String,
    /// The fault in a few words (`uncorrectable memory error`); a lone finding's code.
    pub title: String,
    /// One sentence: the component, the fault and how many signals show it.
    pub summary: String,
    /// The strongest action its signals call for.
    pub action: Action,
    /// The earliest time any signal is dated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<String>,
    /// Why the signals are one fault, and the public source (absent for a lone finding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<IncidentRule>,
    /// The findings that show it, in causal order: what happened, then what the driver concluded.
    pub signals: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IncidentRule {
    pub reason: String,
    pub source: String,
}

/// A node's findings as incidents (worst first) and history (informational findings, oldest first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incidents {
    pub incidents: Vec<Incident>,
    pub history: Vec<Finding>,
}
