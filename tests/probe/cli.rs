//! node-probe's command line, run as a real binary: bad flags and inputs give one JSON error document with
//! the documented exit status; every command prints exactly one JSON document.

#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use host_root::HostRoot;
use node_probe::NodeProbe;

#[test]
fn unknown_flag_is_usage_error_exit_2() {
    let out = NodeProbe::new().args(["--bogus", "health"]).run();
    let err = out.failure(2, "usage");
    assert!(
        err["message"].as_str().unwrap().contains("--bogus"),
        "{err}"
    );
    assert!(err["hint"].as_str().unwrap().contains("--help"));
}

#[test]
fn unknown_command_and_missing_command_are_usage_errors() {
    NodeProbe::new()
        .args(["frobnicate"])
        .run()
        .failure(2, "usage");
    NodeProbe::new().run().failure(2, "usage");
}

#[test]
fn invalid_flag_values_are_usage_errors() {
    for args in [
        vec!["health", "--simulate", "t4-single", "--expect-gpus", "0"],
        vec!["health", "--simulate", "t4-single", "--expect-gpus", "many"],
        vec!["xid", "--simulate", "t4-single", "--since", "yesterday"],
        vec!["health", "--simulate", "t4-single", "--fixture", "x.json"],
    ] {
        NodeProbe::new().args(&args).run().failure(2, "usage");
    }
}

#[test]
fn unknown_scenario_names_the_known_ones() {
    let out = NodeProbe::new()
        .args(["health", "--simulate", "dgx-h200-on-fire"])
        .run();
    let err = out.failure(2, "invalid_scenario");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("dgx-h200-on-fire")
    );
    let hint = err["hint"].as_str().unwrap();
    for name in node_probe::scenarios() {
        assert!(hint.contains(&name), "hint lacks {name}: {hint}");
    }
}

#[test]
fn bad_fixture_files_are_invalid_scenarios() {
    let dir = HostRoot::new();
    let not_json = dir.write("broken.json", "{\"gpus\": [");
    let wrong_shape = dir.write(
        "wrong.json",
        "{\"gpus\": [{\"index\": 0, \"temprature\": 41}]}",
    );
    let wrong_type = dir.write("type.json", "{\"gpus\": [{\"index\": \"zero\"}]}");
    let missing = dir.path().join("nope.json");
    for path in [&not_json, &wrong_shape, &wrong_type, &missing] {
        let out = NodeProbe::new()
            .args(["health", "--fixture"])
            .arg(path)
            .run();
        let err = out.failure(2, "invalid_scenario");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains(&*path.to_string_lossy()),
            "message names the file: {err}"
        );
    }
}

#[test]
fn fixture_in_the_builtin_format_runs() {
    let dir = HostRoot::new();
    let t4 = include_str!("../../src/scenarios/t4-single.json");
    let hot = t4.replace("\"gpu_temp_c\": 31", "\"gpu_temp_c\": 97");
    assert_ne!(t4, hot, "fixture edit applied");
    let path = dir.write("hot-t4.json", &hot);
    let doc = NodeProbe::new()
        .args(["health", "--fixture"])
        .arg(&path)
        .run()
        .success();
    assert_eq!(doc["probe"]["source"], "simulated:hot-t4");
    assert_eq!(doc["health"]["verdict"], "unhealthy");
    assert_eq!(
        doc["health"]["gpus"][0]["findings"][0]["code"],
        "thermal.at_shutdown"
    );
}

#[test]
fn missing_nvml_library_is_exit_3() {
    let out = NodeProbe::new()
        .args(["health", "--nvml-lib", "/nonexistent/libnvidia-ml.so.1"])
        .run();
    let err = out.failure(3, "nvml_unavailable");
    assert!(
        err["hint"].as_str().is_some_and(|h| !h.is_empty()),
        "a hint says what to do: {err}"
    );
}

#[test]
fn every_command_prints_exactly_one_document() {
    let analyses = gpu_diag::command::Command::ALL.iter().map(|c| c.name());
    for cmd in analyses.chain(["scenarios", "version"]) {
        let out = NodeProbe::new().args([cmd, "--simulate", "a100-mig"]).run();
        let doc = out.success();
        assert_eq!(doc["schema_version"], 1, "{cmd}");
        assert_eq!(out.stdout.lines().count(), 1, "{cmd}: compact, one line");
        // The report is keyed by the command that produced it.
        assert!(doc.get(cmd).is_some(), "{cmd}: {doc}");
        // And the launcher's strict reader accepts it.
        gpu_diag::contract::parse_document(out.stdout.as_bytes())
            .unwrap_or_else(|e| panic!("{cmd}: contract rejects the document: {e}"));
    }
}

#[test]
fn scenarios_lists_the_required_ones() {
    let doc = NodeProbe::new().args(["scenarios"]).run().success();
    let list = doc["scenarios"]["scenarios"].as_array().unwrap();
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in [
        "dgx-h100-healthy",
        "dgx-h100-xid79",
        "dgx-a100-row-remap-pending",
        "dgx-a100-row-remap-failure",
        "h100-xid48-dbe",
        "h100-thermal-slowdown",
        "h100-power-brake",
        "dgx-h100-nvlink-errors",
        "l40s-pcie-degraded",
        "a100-mig",
        "h100-zombie-process",
        "t4-single",
        "dgx-h100-ib-port-down",
        "dgx-h100-ib-flapping",
        "dgx-h100-ib-rate-degraded",
        "h100-roce-carrier-flaps",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    for s in list {
        let d = s["description"].as_str().unwrap();
        assert!(!d.is_empty() && !d.contains('\n'), "one line: {d}");
    }
}

#[test]
fn expect_gpus_reports_missing_gpus() {
    let doc = NodeProbe::new()
        .args([
            "health",
            "--simulate",
            "h100-thermal-slowdown",
            "--expect-gpus",
            "4",
        ])
        .run()
        .success();
    assert_eq!(doc["health"]["verdict"], "unhealthy");
    assert_eq!(doc["health"]["gpus_expected"], 4);
    let node = doc["health"]["node_findings"].as_array().unwrap();
    assert_eq!(node[0]["code"], "gpu.missing");
    assert!(
        node[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 GPU(s) missing")
    );
}

#[test]
fn node_name_is_reported_and_picks_from_a_scenario_map() {
    let dir = HostRoot::new();
    let map = dir.write(
        "map.json",
        r#"{"gpu-node-5": "h100-xid48-dbe", "gpu-node-6": "t4-single"}"#,
    );
    let doc = NodeProbe::new()
        .env("NODE_PROBE_SCENARIO_MAP", &map)
        .args(["health", "--node-name", "gpu-node-5"])
        .run()
        .success();
    assert_eq!(doc["probe"]["source"], "simulated:h100-xid48-dbe");
    assert_eq!(doc["probe"]["node_name"], "gpu-node-5");
    NodeProbe::new()
        .env("NODE_PROBE_SCENARIO_MAP", &map)
        .args(["health", "--node-name", "gpu-node-99"])
        .run()
        .failure(2, "invalid_scenario");
}

#[test]
fn output_is_deterministic() {
    let a = NodeProbe::new()
        .args(["describe", "--simulate", "dgx-h100-xid79"])
        .run();
    let b = NodeProbe::new()
        .args(["describe", "--simulate", "dgx-h100-xid79"])
        .run();
    assert_eq!(a.stdout, b.stdout);
}
