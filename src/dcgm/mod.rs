//! Active diagnostics on idle GPUs through NVIDIA's DCGM (`dcgmi diag`): what a run asks for, how its
//! output (DCGM 3.x and 4.x JSON) and exit status read, which GPUs it may load, and its report.
//!
//! node-probe's `dcgm-diag` runs `dcgmi` and reads the node; everything it then decides is here, pure:
//! `request.rs` (the closed grammar of levels, tests and GPUs; deadlines; dcgmi's argv), `select.rs` (idle
//! first: GPUs a pod, a DRA claim or a process holds are never tested), `parse.rs` (`dcgmi diag -j`
//! output, bounded by `limits.rs`), `codes.rs` (the `DCGM_FR_*` table, `dcgm-fr.csv`), `exit.rs` (the exit
//! status), `interpret.rs` (one result: pass, warn, fail, skip), `state.rs` (NVML state and Xids before and
//! after), `report.rs` (the report) and `incident.rs` (its findings joined to the GPUs' incidents).
//! Facts and sources: ../shared/reference/dcgm.md.

pub mod codes;
pub mod exit;
pub mod incident;
pub mod interpret;
pub mod limits;
pub mod parse;
pub mod report;
pub mod request;
pub mod select;
pub mod state;

#[cfg(test)]
mod tests;

pub use report::{DcgmDiagReport, DiagInput, Execution, RunOutcome, StopCause};

/// The report of one run: assembled from what node-probe saw, with its findings joined to the tested GPUs'
/// incidents.
pub fn analyze(facts: &crate::facts::NodeFacts, input: &DiagInput) -> DcgmDiagReport {
    let mut r = report::assemble(facts, input);
    r.findings = incident::findings(&r);
    r.incidents = incident::join(input.incidents_after.clone(), &r);
    r
}

/// The `node-probe` subcommand.
pub const COMMAND: &str = "dcgm-diag";
