//! `node-probe xid --log-file` end to end: the binary, the corpus files, the JSON document on stdout.

#[path = "../support/node_probe.rs"]
mod node_probe;

use std::collections::BTreeSet;
use std::path::Path;

use node_probe::NodeProbe;

fn corpus(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/kernel_log/corpus")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn run(args: &[&str]) -> (i32, serde_json::Value) {
    let run = NodeProbe::new()
        // No NVML on a build machine: point the search at nothing so the result does not depend on it.
        .host_root(Path::new("/nonexistent-host-root"))
        .args(args)
        .document();
    (run.code, run.doc)
}

#[test]
fn log_file_events_have_exactly_the_contract_fields() {
    let want: BTreeSet<&str> = [
        "kind",
        "code",
        "pci_bus_id",
        "pid",
        "process_name",
        "gpu_instance_id",
        "compute_instance_id",
        "gpu_uuid",
        "message",
        "timestamp",
        "line",
        "mnemonic",
        "immediate_action",
        "investigatory_action",
    ]
    .into_iter()
    .collect();
    for name in [
        "dmesg-r535.log",
        "kmsg-r570.log",
        "syslog-r575.log",
        "dmesg-legacy-r470.log",
    ] {
        let (code, doc) = run(&["xid", "--log-file", &corpus(name)]);
        assert_eq!(code, 0, "{name}: {doc}");
        let events = doc["xid"]["events"].as_array().expect("events");
        assert!(!events.is_empty(), "{name}");
        for e in events {
            let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys, want, "{name}: {e}");
            assert!(
                e["line"].as_u64().is_some(),
                "file input carries line numbers: {e}"
            );
        }
        assert!(doc["xid"]["node"]["verdict"].is_string());
    }
}

#[test]
fn distractors_give_no_events() {
    let (code, doc) = run(&["xid", "--log-file", &corpus("distractors.log")]);
    assert_eq!(code, 0);
    assert_eq!(doc["xid"]["events"].as_array().unwrap().len(), 0, "{doc}");
}

#[test]
fn missing_log_file_is_a_clear_error() {
    let (code, doc) = run(&["xid", "--log-file", "/nonexistent/kern.log"]);
    assert_ne!(code, 0);
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/kern.log"),
        "{doc}"
    );
}

#[test]
fn simulated_scenario_log_with_since() {
    let (code, doc) = run(&["--simulate", "dgx-h100-xid79", "xid"]);
    assert_eq!(code, 0, "{doc}");
    let all = doc["xid"]["events"].as_array().unwrap().len();
    assert!(all > 0);
    let (_, doc) = run(&["--simulate", "dgx-h100-xid79", "xid", "--since", "1s"]);
    let recent = doc["xid"]["events"].as_array().unwrap().len();
    assert!(
        recent < all,
        "--since narrows the window ({recent} of {all})"
    );
}
