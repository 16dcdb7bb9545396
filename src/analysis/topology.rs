//! `topology` report (placeholder until its interpretation lands).

use serde::{Deserialize, Serialize};

use crate::AnalysisOptions;
use crate::facts::NodeFacts;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TopologyReport {}

pub fn analyze(_facts: &NodeFacts, _opts: &AnalysisOptions) -> TopologyReport {
    TopologyReport {}
}
