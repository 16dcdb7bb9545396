//! The `xid` report (placeholder until the grammar lands).

use serde::{Deserialize, Serialize};

use crate::AnalysisOptions;
use crate::facts::NodeFacts;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidReport {
    /// Kernel-log findings, merged into `health` by the health analysis.
    pub findings: Vec<crate::finding::Finding>,
}

pub fn analyze(_facts: &NodeFacts, _opts: &AnalysisOptions) -> XidReport {
    XidReport::default()
}
