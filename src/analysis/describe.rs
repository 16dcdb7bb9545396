//! `describe`: every report in one run (what the launcher's describe call shows), with health built from
//! the same findings the other reports carry, so the document never contradicts itself.

use serde::{Deserialize, Serialize};

use crate::facts::NodeFacts;
use crate::finding::{Finding, Judged, Verdict, distinct};
use crate::kernel_log::report::XidReport;
use crate::options::AnalysisOptions;

use super::ecc::EccReport;
use super::health::HealthReport;
use super::inventory::InventoryReport;
use super::processes::ProcessesReport;
use super::telemetry::TelemetryReport;
use super::topology::TopologyReport;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DescribeReport {
    pub health: HealthReport,
    pub inventory: InventoryReport,
    pub telemetry: TelemetryReport,
    pub topology: TopologyReport,
    pub ecc: EccReport,
    pub processes: ProcessesReport,
    pub xid: XidReport,
}

impl Judged for DescribeReport {
    fn verdict(&self) -> Option<Verdict> {
        self.health.verdict()
    }
    fn incidents(&self) -> Option<&crate::finding::Incidents> {
        self.health.incidents()
    }
    /// The sections in name order, the order answers have always listed equally severe findings in.
    fn findings(&self) -> Vec<&Finding> {
        let sections = [
            self.ecc.findings(),
            self.health.findings(),
            self.inventory.findings(),
            self.processes.findings(),
            self.telemetry.findings(),
            self.topology.findings(),
            self.xid.findings(),
        ];
        distinct(sections.into_iter().flatten())
    }
}

pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> DescribeReport {
    super::health::memoized(facts, || describe(facts, opts))
}

fn describe(facts: &NodeFacts, opts: &AnalysisOptions) -> DescribeReport {
    let inventory = super::inventory::analyze(facts, opts);
    let telemetry = super::telemetry::analyze(facts, opts);
    let topology = super::topology::analyze(facts, opts);
    let ecc = super::ecc::analyze(facts, opts);
    let processes = super::processes::analyze(facts, opts);
    let xid = crate::kernel_log::report::analyze(facts, opts);
    let mut findings = super::health::judge(facts, opts);
    // In `health::all_findings`' order, so that describe's health is health's.
    let vendors = super::vendors::judge(facts);
    for part in [
        &telemetry.findings,
        &topology.findings,
        &ecc.findings,
        &processes.findings,
        &vendors,
        &xid.findings,
    ] {
        findings.extend(part.iter().cloned());
    }
    DescribeReport {
        health: super::health::assemble(facts, opts, findings),
        inventory,
        telemetry,
        topology,
        ecc,
        processes,
        xid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_health_equals_health() {
        for s in crate::scenarios::BUILTIN {
            let facts = crate::scenarios::parse(&s.json()).unwrap();
            let opts = AnalysisOptions::default();
            assert_eq!(
                analyze(&facts, &opts).health,
                super::super::health::analyze(&facts, &opts),
                "{}",
                s.name
            );
        }
    }
}
