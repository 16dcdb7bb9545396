//! The verdicts each built-in scenario must produce, asserted on the real binary's output: these are the
//! facts-to-verdict promises the snapshots also show, kept as explicit checks so a blindly re-accepted
//! snapshot cannot hide a wrong verdict.

#[path = "../support/node_probe.rs"]
mod node_probe;

use node_probe::NodeProbe;
use serde_json::Value;

fn health(scenario: &str) -> Value {
    NodeProbe::new()
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
    // In words, once, with what was still read and the kernel's Xid; never one line per field.
    assert!(has_evidence(lost, "GPU_IS_LOST for every reading"));
    assert!(has_evidence(lost, "kernel log: "));
    assert!(has_evidence(
        lost,
        "Xid 79 ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"
    ));
    assert!(!has_evidence(lost, "field(s)"));
    assert!(lost["evidence"].as_array().unwrap().len() <= 3, "{lost}");
    for i in [0, 1, 2, 3, 5, 6, 7] {
        assert_eq!(h["gpus"][i]["verdict"], "healthy", "GPU {i}");
    }
}

#[test]
fn thermal_slowdown_is_named_harmful() {
    let doc = NodeProbe::new()
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
    let ecc = NodeProbe::new()
        .args(["ecc", "--simulate", "a100-mig"])
        .run()
        .success();
    let rows = &ecc["ecc"]["gpus"][0]["remapped_rows"];
    assert_eq!(rows["error"], "not_supported");
    assert!(rows["message"].as_str().unwrap().contains("MIG"));
    let h = health("t4-single");
    assert_eq!(h["verdict"], "healthy");
}

/// Every GPU of a scenario is healthy: the NIC findings are node-level and leave the GPUs alone.
fn gpus_all_healthy(h: &Value) {
    for g in h["gpus"].as_array().unwrap() {
        assert_eq!(g["verdict"], "healthy", "{g}");
    }
}

#[test]
fn healthy_fabric_has_no_nic_finding_and_one_line() {
    let h = health("dgx-h100-healthy");
    assert!(
        findings(&h)
            .iter()
            .all(|f| !f["code"].as_str().unwrap().starts_with("nic."))
    );
    let topo = NodeProbe::new()
        .args(["topology", "--simulate", "dgx-h100-healthy"])
        .run()
        .success();
    let nics = &topo["topology"]["nics"];
    assert_eq!(
        nics["summary"],
        "8 port(s): 8 x InfiniBand 400 Gb/s (MT4129); all up, no error counts"
    );
    // One rail per GPU on the GPU's own PCIe switch.
    for (i, row) in nics["affinity"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        assert_eq!(row["nearest"], "PIX", "{row}");
        assert_eq!(row["nearest_nics"][0], format!("mlx5_{i}"));
    }
}

#[test]
fn ib_port_down_is_named_with_its_gpu() {
    let h = health("dgx-h100-ib-port-down");
    assert_eq!(h["verdict"], "unhealthy");
    gpus_all_healthy(&h);
    let all = findings(&h);
    let f = find(&all, "nic.port_down");
    assert_eq!(f["severity"], "critical");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("mlx5_3/1 (0000:5e:00.0, serves GPU 3)"),
        "{f}"
    );
    assert!(has_evidence(f, "state = 1: DOWN, phys_state = 2: Polling"));
    assert_eq!(h["action"]["kind"], "check_mechanicals");
}

#[test]
fn ib_flapping_port_is_critical_with_counters() {
    let h = health("dgx-h100-ib-flapping");
    assert_eq!(h["verdict"], "unhealthy");
    gpus_all_healthy(&h);
    let all = findings(&h);
    let f = find(&all, "nic.link_flapping");
    assert_eq!(f["severity"], "critical");
    assert!(f["summary"].as_str().unwrap().contains("mlx5_5/1"));
    assert!(has_evidence(f, "link_downed = 37 (+1 in 1.0 s)"));
    assert!(has_evidence(
        find(&all, "nic.symbol_errors"),
        "symbol_error = 8812 (+81 in 1.0 s)"
    ));
    assert!(has_evidence(
        find(&all, "nic.receive_errors"),
        "port_rcv_errors = 214 (+5 in 1.0 s)"
    ));
}

#[test]
fn ib_port_at_lower_rate_is_degraded() {
    let h = health("dgx-h100-ib-rate-degraded");
    assert_eq!(h["verdict"], "degraded");
    gpus_all_healthy(&h);
    let all = findings(&h);
    assert_eq!(all.len(), 1, "{all:#?}");
    let f = find(&all, "nic.rate_degraded");
    assert!(
        f["summary"]
            .as_str()
            .unwrap()
            .contains("mlx5_6/1 (0000:bb:00.0, serves GPU 6)")
    );
    assert!(has_evidence(f, "rate = 200 Gb/sec (4X HDR)"));
    assert!(has_evidence(f, "run at 400 Gb/s"));
}

#[test]
fn roce_carrier_flaps_and_far_gpu() {
    let h = health("h100-roce-carrier-flaps");
    assert_eq!(h["verdict"], "unhealthy");
    let all = findings(&h);
    let f = find(&all, "nic.link_flapping");
    assert_eq!(f["severity"], "critical");
    assert!(has_evidence(
        f,
        "ens1f0np0.carrier_changes = 23 (+2 in 1.0 s)"
    ));
    assert!(has_evidence(
        find(&all, "nic.receive_errors"),
        "ens1f0np0.rx_crc_errors = 1410"
    ));
    let far = find(&all, "nic.gpu_far");
    assert!(
        far["summary"].as_str().unwrap().starts_with("GPU 1 "),
        "{far}"
    );
    assert!(!far["summary"].as_str().unwrap().contains("GPU 0"));
}

#[test]
fn scenarios_without_nics_have_no_nic_section() {
    let topo = NodeProbe::new()
        .args(["topology", "--simulate", "dgx-h100-xid79"])
        .run()
        .success();
    assert!(
        topo["topology"].get("nics").is_none(),
        "not collected stays absent"
    );
}
