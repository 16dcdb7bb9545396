//! The incidents of the built-in scenarios: each one fault that shows through several findings is one
//! incident carrying them (the grouping's own rules are tested in `incident/tests.rs`).

use crate::analysis::health;
use crate::finding::{ActionKind, Finding, Incident, Incidents, Severity};
use crate::options::AnalysisOptions;

fn incidents_of(scenario: &str) -> Incidents {
    let s = crate::scenarios::find(scenario).unwrap();
    let facts = crate::scenarios::parse(&s.json()).unwrap();
    health::analyze(&facts, &AnalysisOptions::default()).incidents
}

fn codes(i: &Incident) -> Vec<&str> {
    i.signals.iter().map(|s| s.code.as_str()).collect()
}

#[test]
fn one_memory_error_is_one_incident_with_its_signals_in_causal_order() {
    let r = incidents_of("h100-xid48-dbe");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!(i.code, "gpu.memory");
    assert_eq!((i.gpu, i.severity), (Some(1), Severity::Critical));
    assert_eq!(i.action.kind, ActionKind::DrainAndResetGpu);
    // What happened first, the driver's conclusion last.
    assert_eq!(
        codes(i),
        [
            "xid.48",
            "ecc.volatile_uncorrected",
            "xid.63",
            "xid.94",
            "xid.154",
            "gpu.recovery_action"
        ]
    );
    assert_eq!(i.first_seen.as_deref(), Some("2026-11-25T09:21:40.881140Z"));
    assert!(i.rule.is_some());
}

#[test]
fn a_failed_row_remap_is_one_incident_that_asks_for_rma() {
    let r = incidents_of("dgx-a100-row-remap-failure");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!((i.code.as_str(), i.gpu), ("gpu.memory", Some(5)));
    assert_eq!(i.action.kind, ActionKind::Rma);
    assert_eq!(
        i.title,
        "row remap failed: the GPU can no longer repair its memory"
    );
    assert!(codes(i).contains(&"ecc.remap_failure") && codes(i).contains(&"xid.64"));
}

#[test]
fn a_gpu_off_the_bus_carries_its_xids_and_the_crash_dump_of_its_burst() {
    let r = incidents_of("dgx-h100-xid79");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!((i.code.as_str(), i.gpu), ("gpu.off_bus", Some(4)));
    assert_eq!(i.action.kind, ActionKind::RebootNode);
    assert_eq!(
        codes(i),
        ["xid.79", "gpu.lost", "driver.crash_dump", "xid.154"]
    );
    assert!(i.summary.contains("4 signals"), "{}", i.summary);
}

#[test]
fn a_power_brake_on_every_gpu_is_one_fault_of_the_node() {
    let r = incidents_of("h100-power-brake");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!((i.code.as_str(), i.gpu), ("node.power_brake", None));
    assert_eq!(i.component, "the node (GPU 0, 1)");
    assert_eq!(i.signals.len(), 2);
}

#[test]
fn an_nvlink_fault_joins_the_switch_at_the_far_end_of_the_link() {
    let r = incidents_of("dgx-h100-nvlink-errors");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!((i.code.as_str(), i.gpu), ("nvlink.fault", Some(3)));
    for c in [
        "xid.74",
        "sxid.fatal",
        "nvlink.link_down",
        "nvlink.errors",
        "xid.154",
    ] {
        assert!(codes(i).contains(&c), "{c} missing: {:?}", codes(i));
    }
    assert_eq!(i.action.kind, ActionKind::CheckMechanicals);
}

#[test]
fn a_flapping_port_with_its_errors_is_one_link() {
    let r = incidents_of("dgx-h100-ib-flapping");
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    let i = &r.incidents[0];
    assert_eq!(i.code, "nic.link_fault");
    assert_eq!(i.component, "RDMA port mlx5_5/1");
    assert_eq!(
        codes(i),
        [
            "nic.link_flapping",
            "nic.symbol_errors",
            "nic.receive_errors"
        ]
    );
}

#[test]
fn every_finding_is_a_signal_or_history_on_every_scenario() {
    for s in crate::scenarios::BUILTIN {
        let facts = crate::scenarios::parse(&s.json()).unwrap();
        let h = health::analyze(&facts, &AnalysisOptions::default());
        let mut all: Vec<&Finding> = h
            .incidents
            .incidents
            .iter()
            .flat_map(|i| &i.signals)
            .chain(&h.incidents.history)
            .collect();
        let mut want = crate::finding::Judged::findings(&h);
        let key = |f: &&Finding| (f.code.clone(), f.gpu, f.summary.clone());
        all.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(all, want, "{}", s.name);
        // Incidents are never informational (that, and what the driver cleared, is history).
        assert!(
            h.incidents
                .incidents
                .iter()
                .all(|i| i.severity > Severity::Info)
        );
    }
}
