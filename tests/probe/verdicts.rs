//! The verdicts each built-in scenario must produce, asserted on the real binary's output: these are the
//! facts-to-verdict promises the snapshots also show, kept as explicit checks so a blindly re-accepted
//! snapshot cannot hide a wrong verdict.

mod util;

use serde_json::Value;
use util::TestCommand;

fn health(scenario: &str) -> Value {
    TestCommand::new()
        .args(["health", "--simulate", scenario])
        .run()
        .success()["health"]
        .clone()
}

fn findings(h: &Value) -> Vec<Value> {
    let mut all: Vec<Value> = h["node_findings"].as_array().unwrap().clone();
    for g in h["gpus"].as_array().unwrap() {
        all.extend(g["findings"].as_array().unwrap().iter().cloned());
    }
    all
}

fn find<'a>(all: &'a [Value], code: &str) -> &'a Value {
    all.iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {all:#?}"))
}

fn has_evidence(f: &Value, needle: &str) -> bool {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains(needle))
}

#[test]
fn healthy_dgx_has_no_warning_findings() {
    let h = health("dgx-h100-healthy");
    assert_eq!(h["verdict"], "healthy");
    assert_eq!(h["action"]["kind"], "none");
    for f in findings(&h) {
        assert_eq!(f["severity"], "info", "{f}");
    }
    for g in h["gpus"].as_array().unwrap() {
        assert_eq!(g["verdict"], "healthy");
        assert_eq!(g["recovery_action"], "none");
    }
}

#[test]
fn xid79_is_unhealthy_with_reboot() {
    let h = health("dgx-h100-xid79");
    assert_eq!(h["verdict"], "unhealthy");
    assert_eq!(h["action"]["kind"], "reboot_node");
    assert_eq!(h["gpus"][4]["verdict"], "unhealthy");
    let all = findings(&h);
    let lost = find(&all, "gpu.lost");
    assert_eq!(lost["gpu"], 4);
    assert!(has_evidence(lost, "gpu_is_lost"));
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(h["gpus"][i]["verdict"], "healthy", "GPU {i}");
    }
}

#[test]
fn thermal_slowdown_is_named_harmful() {
    let doc = TestCommand::new()
        .args(["telemetry", "--simulate", "h100-thermal-slowdown"])
        .run()
        .success();
    let g = &doc["telemetry"]["gpus"][1];
    assert!(
        g["verdict"]
            .as_str()
            .unwrap()
            .starts_with("HW thermal slowdown (harmful)")
    );
    let reasons = g["clocks_event_reasons"]["reasons"].as_array().unwrap();
    let hw = reasons
        .iter()
        .find(|r| r["name"] == "HwThermalSlowdown")
        .unwrap();
    assert_eq!(hw["class"], "harmful");
    let h = health("h100-thermal-slowdown");
    let f = find(&findings(&h), "thermal.hw_slowdown").clone();
    assert_eq!(f["action"]["kind"], "check_cooling");
    assert!(has_evidence(&f, "gpu_temp_c = 90") && has_evidence(&f, "slowdown_threshold_c = 89"));
}

#[test]
fn remap_pending_says_reset_when_drained() {
    let h = health("dgx-a100-row-remap-pending");
    assert_eq!(h["verdict"], "degraded");
    assert_eq!(h["action"]["kind"], "reset_gpu_when_drained");
    let f = find(&findings(&h), "ecc.remap_pending").clone();
    assert_eq!(f["gpu"], 2);
    assert!(has_evidence(&f, "pending true"));
}

#[test]
fn remap_failure_says_rma() {
    let h = health("dgx-a100-row-remap-failure");
    assert_eq!(h["verdict"], "unhealthy");
    assert_eq!(h["action"]["kind"], "rma");
    let f = find(&findings(&h), "ecc.remap_failure").clone();
    assert_eq!(f["gpu"], 5);
    assert!(has_evidence(&f, "failure true"));
}

#[test]
fn nvlink_errors_are_flagged_with_link_evidence() {
    let h = health("dgx-h100-nvlink-errors");
    assert_eq!(h["verdict"], "unhealthy");
    let all = findings(&h);
    let down = find(&all, "nvlink.link_down");
    assert_eq!(down["gpu"], 3);
    assert!(has_evidence(down, "nvlink[7] = inactive"));
    let errs = find(&all, "nvlink.errors");
    assert!(has_evidence(
        errs,
        "nvlink[5]: replay = 1523, recovery = 12"
    ));
}

#[test]
fn pcie_degraded_is_flagged_with_width_evidence() {
    let h = health("l40s-pcie-degraded");
    assert_eq!(h["verdict"], "degraded");
    let f = find(&findings(&h), "pcie.width_degraded").clone();
    assert_eq!(f["gpu"], 2);
    assert!(has_evidence(&f, "link = Gen4 x8 (max Gen4 x16)"));
}

#[test]
fn other_scenarios() {
    let h = health("h100-xid48-dbe");
    assert_eq!(h["verdict"], "unhealthy");
    assert_eq!(h["action"]["kind"], "drain_and_reset_gpu");
    assert_eq!(h["gpus"][1]["recovery_action"], "drain_and_reset");
    let h = health("h100-power-brake");
    assert_eq!(
        find(&findings(&h), "power.hw_brake")["action"]["kind"],
        "check_power"
    );
    let h = health("h100-zombie-process");
    assert_eq!(find(&findings(&h), "process.zombie")["gpu"], 0);
    let h = health("a100-mig");
    assert_eq!(find(&findings(&h), "mig.mode_pending")["gpu"], 1);
    let ecc = TestCommand::new()
        .args(["ecc", "--simulate", "a100-mig"])
        .run()
        .success();
    let rows = &ecc["ecc"]["gpus"][0]["remapped_rows"];
    assert_eq!(rows["error"], "not_supported");
    assert!(rows["message"].as_str().unwrap().contains("MIG"));
    let h = health("t4-single");
    assert_eq!(h["verdict"], "healthy");
}
