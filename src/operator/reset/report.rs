//! The `reset` report: the GPU targeted, the preflight's answer and plan, and what running it did.

use serde::{Deserialize, Serialize};

use crate::operator::{ActionResult, Check, PlanStep};

/// The identity of the GPU a reset targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetTarget {
    pub index: u32,
    #[serde(default)]
    pub uuid: Option<String>,
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// An AMD GPU's partition mode (`CPX/NPS4`), where readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl ResetTarget {
    /// What the act is pinned to: this GPU's PCI address, unique id and partition mode.
    pub fn pin(&self) -> super::request::ResetPin {
        super::request::ResetPin {
            pci_bus_id: self.pci_bus_id.clone(),
            uuid: self.uuid.clone(),
            partition: self.partition.clone(),
        }
    }
}

/// The `reset` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetReport {
    /// The GPU as requested (index or UUID).
    pub gpu: String,
    #[serde(default)]
    pub target: Option<ResetTarget>,
    pub dry_run: bool,
    /// True when the facts come from a simulated scenario: nothing is ever run.
    pub simulated: bool,
    pub result: ActionResult,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    pub plan: Vec<PlanStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<ResetOutcome>,
}

crate::operator::action_report!(ResetReport);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetOutcome {
    /// Every command run, in order.
    pub commands: Vec<CommandRun>,
    /// The checks on the GPU as re-read after the reset.
    pub verification: Vec<Check>,
    /// True when the reset command succeeded and no verification check blocks.
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CommandRun {
    pub argv: Vec<String>,
    /// None when it could not start or was killed by a signal.
    pub exit_code: Option<i32>,
    /// Output, trimmed and capped.
    pub stdout: String,
    pub stderr: String,
}
