//! The per-node report of `node-probe workload`: `describe` and `allocation` of the same facts, from one
//! probe run.

use serde::{Deserialize, Serialize};

use crate::analysis::describe::DescribeReport;
use crate::attribution::AllocationReport;
use crate::facts::NodeFacts;
use crate::finding::{Finding, Judged, Verdict, distinct};
use crate::options::AnalysisOptions;

/// What `node-probe workload` reports for one node: everything `describe` reports, plus the kubelet's
/// assignment of GPUs to pods, from one probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadNodeReport {
    pub describe: DescribeReport,
    pub allocation: AllocationReport,
}

impl Judged for WorkloadNodeReport {
    fn verdict(&self) -> Option<Verdict> {
        self.describe.verdict()
    }
    fn findings(&self) -> Vec<&Finding> {
        distinct(
            self.allocation
                .findings()
                .into_iter()
                .chain(self.describe.findings()),
        )
    }
    fn incidents(&self) -> Option<&crate::finding::Incidents> {
        self.describe.incidents()
    }
}

/// `node-probe workload`'s analysis: `describe` and `allocation` of the same facts.
pub fn analyze_node(facts: &NodeFacts, opts: &AnalysisOptions) -> WorkloadNodeReport {
    WorkloadNodeReport {
        describe: crate::analysis::describe::analyze(facts, opts),
        allocation: crate::attribution::analyze(facts, opts),
    }
}
