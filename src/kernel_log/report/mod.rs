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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::GpuVendor;

    /// The analysis is named by the families it read, each in its own words: a Trainium node's is no
    /// "XID analysis" (every non-NVIDIA node's was).
    #[test]
    fn the_analysis_is_named_by_the_families_it_read() {
        for (scenario, title) in [
            (
                include_str!("../../scenarios/dgx-h100-healthy.json"),
                "XID analysis",
            ),
            (
                include_str!("../../scenarios/trn2-healthy.json"),
                "neuron kernel log analysis",
            ),
            (
                include_str!("../../scenarios/gaudi2-healthy.json"),
                "habanalabs kernel log analysis",
            ),
            (
                include_str!("../../scenarios/mi300x-healthy.json"),
                "amdgpu kernel log analysis",
            ),
            (
                include_str!("../../scenarios/mixed-h100-gaudi2.json"),
                "XID and habanalabs kernel log analysis",
            ),
        ] {
            let facts: NodeFacts = serde_json::from_str(scenario).unwrap();
            let r = analyze(&facts, &AnalysisOptions::default());
            assert_eq!(r.title(), title);
        }
        // A node that lists no device: the events say whose they are, and NVIDIA's where none.
        let mut facts: NodeFacts =
            serde_json::from_str(include_str!("../../scenarios/trn2-hbm-ue.json")).unwrap();
        facts.gpus.clear();
        let r = analyze(&facts, &AnalysisOptions::default());
        assert!(!r.events.is_empty());
        assert_eq!(r.families, [GpuVendor::Neuron]);
        assert_eq!(
            analyze(&NodeFacts::default(), &AnalysisOptions::default()).title(),
            "XID analysis"
        );
    }
}
