//! Operator actions (kill a GPU process, reset a GPU): preflight rules as pure functions over facts.
//!
//! Each rule is a named [`Check`] with a status (`pass`, `warn`, `block`) and the evidence it judged. An
//! action is allowed only when no check blocks; a refusal is a normal report (`allowed: false` with the
//! reasons), never an error. The probe executes an allowed plan and records what happened in the
//! report's `outcome`; the rules here never touch a process or a GPU.

pub mod holders;
pub mod kill;
pub mod reset;
pub mod scan;

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, HostProcessFacts, NodeFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    /// Allowed, but the operator should know (it changes what the action does or what follows it).
    Warn,
    /// The action is refused.
    Block,
}

/// One preflight or verification rule as judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// Stable rule name (`not_init`, `device_node_holders`, ...).
    pub check: String,
    pub status: CheckStatus,
    /// What was seen, in one or two sentences, with the values.
    pub evidence: String,
    /// Set on a block that stands only because these sources could not say who holds the GPU (see
    /// [`holders`]): a person may override it in the confirmation. Empty on every other check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_sources: Vec<String>,
    /// What exactly was not known, one item each (`GPU 3: <source>: <why>`, `GPU 3: pid 5000 (python3)
    /// has /dev/kfd open ...`), on the block and on the warning a person's override turns it into: the
    /// confirmation carries the items the person saw, and an act that finds another refuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_holders: Vec<String>,
}

impl Check {
    pub fn new(check: &str, status: CheckStatus, evidence: impl Into<String>) -> Self {
        Self {
            check: check.to_string(),
            status,
            evidence: evidence.into(),
            unknown_sources: Vec::new(),
            unknown_holders: Vec::new(),
        }
    }
    pub fn pass(check: &str, evidence: impl Into<String>) -> Self {
        Self::new(check, CheckStatus::Pass, evidence)
    }
    pub fn warn(check: &str, evidence: impl Into<String>) -> Self {
        Self::new(check, CheckStatus::Warn, evidence)
    }
    pub fn block(check: &str, evidence: impl Into<String>) -> Self {
        Self::new(check, CheckStatus::Block, evidence)
    }
}

/// The checks of one action and their overall answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preflight {
    /// True when no check blocks.
    pub allowed: bool,
    /// The evidence of every blocking check: why the action is refused.
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
}

impl Preflight {
    pub fn from_checks(checks: Vec<Check>) -> Self {
        let reasons: Vec<String> = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Block)
            .map(|c| format!("{}: {}", c.check, c.evidence))
            .collect();
        Self {
            allowed: reasons.is_empty(),
            reasons,
            checks,
        }
    }
    pub fn get(&self, check: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.check == check)
    }

    /// The result the action's plan leads to before it runs. `dry_run`/`simulated` only shape it.
    pub fn result(&self, dry_run: bool, simulated: bool) -> ActionResult {
        if !self.allowed {
            ActionResult::Refused
        } else if dry_run {
            ActionResult::DryRun
        } else if simulated {
            ActionResult::Simulated
        } else {
            // Until the probe records what happened: it replaces this with Done or Failed.
            ActionResult::Failed
        }
    }
}

/// One step of what an allowed action does, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanStep {
    /// `sigterm`, `wait`, `sigkill`, `persistence_off`, `reset`, `verify`, `persistence_on`, ...
    pub action: String,
    pub detail: String,
}

impl PlanStep {
    pub fn new(action: &str, detail: impl Into<String>) -> Self {
        Self {
            action: action.to_string(),
            detail: detail.into(),
        }
    }
}

/// How an operator action ended, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionResult {
    /// A preflight check blocked it; nothing was done.
    Refused,
    /// Preflight only (`--dry-run`); nothing was done.
    DryRun,
    /// Simulated source: allowed, and nothing was done (what would be done is the plan).
    Simulated,
    /// Executed and verified.
    Done,
    /// Executed, but a step or the verification failed.
    Failed,
}

/// What every operator report carries besides its own facts (its preflight's answer, its plan, how it
/// ended): what the launcher audits and renders the same way for each action.
pub trait ActionReport {
    fn result(&self) -> ActionResult;
    /// True when the facts come from a simulated scenario: nothing is ever done.
    fn simulated(&self) -> bool;
    /// Why it was refused (the blocking checks), empty when allowed.
    fn reasons(&self) -> &[String];
    fn checks(&self) -> &[Check];
    fn plan(&self) -> &[PlanStep];
    /// The step or re-collection that failed while the plan ran, verbatim.
    fn error(&self) -> Option<&str>;
    /// Where it was refused only because some sources could not say who holds a GPU: those sources,
    /// which a person may override in the confirmation. `None` when allowed or when any other check
    /// blocks (a holder named by a source, or anything else, is never overridden).
    fn unknown_holders(&self) -> Option<Vec<String>> {
        overridable(self.checks())
    }
}

/// A person's override covers the unknowns they saw, not one found since: each found now (on the
/// overridden warnings) must be among the digests (`reset::unknown_digest`) the confirmation carries; an
/// override that carries none covers nothing. The same rule for every action a person may override.
pub fn override_as_confirmed(
    mut checks: Vec<Check>,
    overridden: bool,
    seen: Option<&[String]>,
) -> Vec<Check> {
    if !overridden {
        return checks;
    }
    let seen = seen.unwrap_or_default();
    let now = unknown_items(&checks);
    let new: Vec<&String> = now
        .iter()
        .filter(|i| !seen.contains(&reset::unknown_digest(i)))
        .collect();
    checks.push(if new.is_empty() {
        Check::pass(
            "override_as_confirmed",
            format!(
                "the unknowns found now are among the {} the person saw when they overrode",
                seen.len()
            ),
        )
    } else {
        Check::block(
            "override_as_confirmed",
            format!(
                "found since the person overrode, so not covered by it: {}. Call again: the person is \
                 asked anew with what is unknown now",
                new.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    });
    checks
}

/// Every unknown item of `checks` (blocks and overridden warnings), sorted, once each.
pub fn unknown_items(checks: &[Check]) -> Vec<String> {
    let mut out: Vec<String> = checks
        .iter()
        .flat_map(|c| c.unknown_holders.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The unknown sources of `checks`' blocks, where every block is one (see [`ActionReport::unknown_holders`]).
pub fn overridable(checks: &[Check]) -> Option<Vec<String>> {
    let blocks: Vec<&Check> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Block)
        .collect();
    if blocks.is_empty() || blocks.iter().any(|c| c.unknown_sources.is_empty()) {
        return None;
    }
    let mut out: Vec<String> = blocks
        .iter()
        .flat_map(|c| c.unknown_sources.iter().cloned())
        .collect();
    out.sort();
    out.dedup();
    Some(out)
}

/// [`ActionReport`] for an operator report: every one has the same fields for it (`result`, `simulated`,
/// `reasons`, `checks`, `plan`, and an `outcome` with its `error`).
macro_rules! action_report {
    ($report:ty) => {
        impl $crate::operator::ActionReport for $report {
            fn result(&self) -> $crate::operator::ActionResult {
                self.result
            }
            fn simulated(&self) -> bool {
                self.simulated
            }
            fn reasons(&self) -> &[String] {
                &self.reasons
            }
            fn checks(&self) -> &[$crate::operator::Check] {
                &self.checks
            }
            fn plan(&self) -> &[$crate::operator::PlanStep] {
                &self.plan
            }
            fn error(&self) -> Option<&str> {
                self.outcome.as_ref().and_then(|o| o.error.as_deref())
            }
        }
    };
}
pub(crate) use action_report;

/// GPU memory in use, per GPU, before or after an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuMemoryUse {
    pub gpu: u32,
    /// Used bytes on the whole GPU, when NVML answered.
    pub used_bytes: Option<u64>,
    /// Bytes the target process held on this GPU, when NVML reported it.
    pub process_used_bytes: Option<u64>,
}

/// Memory use of every GPU, and what `pid` held on each (pure: reads the facts).
pub fn memory_use(facts: &NodeFacts, pid: Option<u32>) -> Vec<GpuMemoryUse> {
    facts
        .gpus
        .iter()
        .map(|g| GpuMemoryUse {
            gpu: g.index,
            used_bytes: g.memory.ok().map(|m| m.used_bytes),
            process_used_bytes: pid.and_then(|pid| {
                g.processes
                    .ok()
                    .and_then(|ps| ps.iter().find(|p| p.pid == pid))
                    .and_then(|p| p.used_memory_bytes)
            }),
        })
        .collect()
}

pub(crate) fn host_process(facts: &NodeFacts, pid: u32) -> Option<&HostProcessFacts> {
    facts.host_processes.iter().find(|p| p.pid == pid)
}

/// `pid 4242 (python3)`: how checks name a process.
pub(crate) fn process_label(facts: &NodeFacts, pid: u32) -> String {
    match host_process(facts, pid).and_then(|p| p.name.ok()) {
        Some(name) => format!("pid {pid} ({name})"),
        None => format!("pid {pid}"),
    }
}

pub(crate) fn gpu_name(g: &GpuFacts) -> String {
    let label = crate::analysis::gpu_label(g);
    match g.uuid.ok() {
        Some(u) => format!("{label} {u}"),
        None => label,
    }
}
