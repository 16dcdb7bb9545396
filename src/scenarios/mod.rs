//! Built-in simulated nodes. Each scenario is a [`NodeFacts`] JSON file in this folder, embedded at
//! build time: raw facts only (what NVML, sysfs, /proc and the kernel log would return), never verdicts.

use crate::facts::NodeFacts;

/// A built-in scenario: its name, one-line description and the embedded JSON.
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    pub json: &'static str,
}

/// The default scenario for commands run with no GPU and no flags in the README.
pub const DEFAULT: &str = "dgx-h100-healthy";

pub const BUILTIN: &[Scenario] = &[];

pub fn find(name: &str) -> Option<&'static Scenario> {
    BUILTIN.iter().find(|s| s.name == name)
}

/// Parse a scenario or fixture file.
pub fn parse(json: &str) -> Result<NodeFacts, serde_json::Error> {
    serde_json::from_str(json)
}
