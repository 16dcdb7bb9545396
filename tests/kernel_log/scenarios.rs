//! The `xid` report of every built-in scenario, as a reviewed snapshot.

use std::collections::BTreeSet;

use gpu_diag::kernel_log::report::analyze;
use gpu_diag::options::AnalysisOptions;
use gpu_diag::scenarios::{self, BUILTIN};

#[test]
fn every_builtin_scenario() {
    assert!(!BUILTIN.is_empty());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/kernel_log"));
    settings.set_prepend_module_to_snapshot(false);
    for sc in BUILTIN {
        let facts = scenarios::parse(&sc.json()).unwrap_or_else(|e| panic!("{}: {e}", sc.name));
        let r = analyze(&facts, &AnalysisOptions::default());
        assert_eq!(r.events.len(), r.event_details.len());
        let v = serde_json::to_value(&r).unwrap();
        for e in v["events"].as_array().unwrap() {
            assert_eq!(e.as_object().unwrap().len(), 14, "{}: {e}", sc.name);
        }
        let codes: BTreeSet<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
        // Every finding code is one of the stable families.
        for c in &codes {
            assert!(
                [
                    "xid.",
                    "sxid.",
                    "gpu.",
                    "driver.",
                    "amdgpu.",
                    "habanalabs.",
                    "neuron."
                ]
                .iter()
                .any(|p| c.starts_with(p)),
                "{}: {c}",
                sc.name
            );
        }
        settings.bind(|| insta::assert_json_snapshot!(format!("scenario-{}", sc.name), r));
    }
}
