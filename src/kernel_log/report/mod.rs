//! The `xid` analysis: kernel-log lines in, the bounded report out. Lines stream through the grammar,
//! extraction and correlation one at a time, so time is linear and memory is bounded whatever the log's
//! size: counts, bursts and findings are exact; the per-event list is complete for a small log and
//! holds a few samples per GPU and code for a large one.
//!
//! In three parts: `analyzer.rs` (the streaming [`XidAnalyzer`]), `gpu_identity.rs` (the table of the node's
//! GPUs that events are attributed to) and `verdicts.rs` (each GPU's summary and findings, the node's
//! verdict), with `gpu_state.rs` what the analyzer keeps per GPU for the verdicts.

mod analyzer;
mod gpu_identity;
mod gpu_state;
mod verdicts;

use crate::facts::{NodeFacts, Reading};
use crate::options::AnalysisOptions;

pub use analyzer::{LogEnd, MAX_EVENT_GROUPS, MAX_LISTED_EVENTS, SAMPLES_PER_GROUP, XidAnalyzer};
pub use gpu_identity::gpu_label;
pub use verdicts::recovery_action_finding;

pub use super::contract::{
    Burst, CatalogStatus, CodeCount, DecodedDetail, EventDetail, EventKind, GpuXidSummary,
    LogSummary, NodeXidVerdict, RecoveryAction, XidEvent, XidReport,
};

/// Interpret the kernel log (and NVML XID events) of one node.
pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> XidReport {
    let mut a = XidAnalyzer::new(facts, opts);
    match &facts.kernel_log {
        Reading::Ok(k) => {
            a.set_origin(&k.origin);
            for l in &k.lines {
                a.push_line(l);
            }
            a.finish(LogEnd::Read {
                truncated: k.truncated,
            })
        }
        Reading::Err(e) => a.finish(LogEnd::Unreadable(e.clone())),
    }
}
