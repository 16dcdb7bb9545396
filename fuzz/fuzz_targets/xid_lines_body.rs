//! The body of the `xid_lines` fuzz target, shared with the stable test suite (tests/kernel_log/props.rs includes
//! it with `#[path]`): cargo-fuzz needs nightly, so CI compiles and runs this body on stable, replaying the
//! kernel-log corpus and random bytes through it.
//!
//! Any bytes, split into lines, must give a report (never a panic) whose events and details stay in step.

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::{grammar, report};
use gpu_diag::options::AnalysisOptions;

/// Runs the grammar and the whole analysis over `data`; returns the report for callers that check more.
pub fn check(data: &[u8]) -> report::XidReport {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for l in &lines {
        let _ = grammar::parse_line(l);
    }
    let mut facts = NodeFacts::default();
    facts.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    facts.host.now_unix = Reading::Ok(1_795_262_400.0);
    facts.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "fuzz".into(),
        lines,
        truncated: false,
    });
    let opts = AnalysisOptions {
        since_unix: Some(1_795_250_000.0),
        ..AnalysisOptions::default()
    };
    let r = report::analyze(&facts, &opts);
    assert_eq!(r.events.len(), r.event_details.len());
    serde_json::to_string(&r).expect("a report serialises");
    r
}
