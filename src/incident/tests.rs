use super::*;
use crate::analysis::health;
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
    assert_eq!(i.code, "gpu.memory_uncorrectable");
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
    assert_eq!((i.code.as_str(), i.gpu), ("gpu.memory_uncorrectable", Some(5)));
    assert_eq!(i.action.kind, ActionKind::Rma);
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
    for c in ["xid.74", "sxid.fatal", "nvlink.link_down", "nvlink.errors", "xid.154"] {
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
        ["nic.link_flapping", "nic.symbol_errors", "nic.receive_errors"]
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
        // History is informational only; incidents never are.
        assert!(h.incidents.history.iter().all(|f| f.severity == Severity::Info));
        assert!(h.incidents.incidents.iter().all(|i| i.severity > Severity::Info));
    }
}

fn f(code: &str, sev: Severity, gpu: Option<u32>, kind: ActionKind) -> Finding {
    Finding {
        code: code.into(),
        severity: sev,
        gpu,
        gpu_uuid: None,
        summary: format!("{code} summary"),
        evidence: vec![],
        action: Action {
            kind,
            detail: format!("{kind:?}"),
        },
        about: vec![],
        first_seen: None,
    }
}

#[test]
fn faults_of_two_gpus_stay_two_incidents_and_a_verdict_alone_is_its_own() {
    let name = |i: u32| format!("GPU {i}");
    let r = group(
        &[
            f("xid.48", Severity::Critical, Some(0), ActionKind::DrainAndResetGpu),
            f("xid.48", Severity::Critical, Some(1), ActionKind::DrainAndResetGpu),
            f("gpu.recovery_action", Severity::Critical, Some(1), ActionKind::DrainAndResetGpu),
            f("gpu.recovery_action", Severity::Critical, Some(2), ActionKind::ResetGpu),
            f("xid.154", Severity::Critical, Some(2), ActionKind::ResetGpu),
        ],
        &name,
    );
    let got: Vec<(&str, Option<u32>, usize)> = r
        .incidents
        .iter()
        .map(|i| (i.code.as_str(), i.gpu, i.signals.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("gpu.memory_uncorrectable", Some(0), 1),
            ("gpu.memory_uncorrectable", Some(1), 2),
            ("gpu.recovery", Some(2), 2),
        ]
    );
}

#[test]
fn a_rule_is_never_stated_from_the_drivers_conclusion_alone_nor_an_unrelated_switch() {
    let name = |i: u32| format!("GPU {i}");
    let mut sx = f("sxid.fatal", Severity::Critical, None, ActionKind::ResetGpu);
    sx.about = vec!["nvswitch:0000:07:00.0".into()];
    let mut down = f("nvlink.link_down", Severity::Critical, Some(3), ActionKind::ResetGpu);
    down.about = vec!["nvlink:3/7".into(), "nvswitch:0000:06:00.0".into()];
    let r = group(&[sx, down], &name);
    let got: Vec<(&str, usize)> = r
        .incidents
        .iter()
        .map(|i| (i.code.as_str(), i.signals.len()))
        .collect();
    assert_eq!(got, [("nvlink.fault", 1), ("sxid.fatal", 1)]);
    assert_eq!(r.incidents[1].component, "nvswitch 0000:07:00.0");
}

#[test]
fn informational_and_cleared_findings_are_history_oldest_first() {
    let name = |i: u32| format!("GPU {i}");
    let mut a = f("xid.154", Severity::Info, Some(0), ActionKind::None);
    a.first_seen = Some("2026-11-25T10:00:00Z".into());
    let mut b = f("xid.43", Severity::Info, Some(1), ActionKind::None);
    b.first_seen = Some("2026-11-25T09:00:00Z".into());
    let r = group(&[a, b], &name);
    assert!(r.incidents.is_empty());
    let got: Vec<&str> = r.history.iter().map(|h| h.code.as_str()).collect();
    assert_eq!(got, ["xid.43", "xid.154"]);
}

#[test]
fn every_rule_is_anchored_by_its_own_signals_and_explained() {
    for r in rules::RULES {
        assert!(!r.reason.is_empty() && !r.source.is_empty(), "{}", r.code);
        for a in r.anchors {
            assert!(r.signals.contains(a), "{}: anchor {a} is not a signal", r.code);
        }
    }
}
