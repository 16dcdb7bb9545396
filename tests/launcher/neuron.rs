//! Every node tool on AWS Neuron (Trainium2) nodes in local mode, answering in AWS's words: the built-in
//! trn2 scenarios (node-probe's reading of host trees written from aws-neuron-driver's printers,
//! `tests/support/neuron_scenarios.rs`), healthy and faulty. Each answer names the device by the driver's
//! class device (`neuron9`) and its state, and carries no NVIDIA-only word (CUDA, NVML, VBIOS as if unread)
//! and no other vendor's.

mod common;

use std::process::Command;

use common::*;

/// The tool's text answer on a built-in scenario (exit status checked).
fn sim(scenario: &str, tool: &str) -> String {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--arg", "node_name=local"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp");
    assert!(
        out.status.success(),
        "{tool} on {scenario}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tool's structured result on a built-in scenario.
#[allow(dead_code)] // kept beside `sim` for the checks of structured answers to come
fn sim_json(scenario: &str, tool: &str) -> serde_json::Value {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--arg", "node_name=local", "--output", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp");
    assert!(out.status.success(), "{tool} on {scenario}");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// NVIDIA's words that must not appear on a Neuron-only node, nor another vendor's.
fn no_other_vendors_words(tool: &str, text: &str) {
    for w in [
        "cuda_driver_version",
        "nvml_version",
        "CUDA",
        "NVML",
        "nvidia-smi",
        "persistence mode",
        "vbios_version=<not_collected>",
        "board_part_number=<not_collected>",
        "memory_total_mib=<not_collected>",
        "<not_collected>\n      volatile",
        // The analyze tool's own title is "XID analysis" for every vendor; no event may be called one.
        "Xid",
        "AMD",
        "Gaudi",
        "habanalabs",
    ] {
        assert!(!text.contains(w), "{tool}: `{w}` in:\n{text}");
    }
}

const SCENARIOS: &[&str] = &["trn2-healthy", "trn2-hbm-ue", "trn2-device-failed"];

const NODE_TOOLS: &[&str] = &[
    "get_gpu_inventory",
    "get_gpu_health",
    "get_gpu_processes",
    "analyze_xid_errors",
    "inspect_topology",
    "get_gpu_telemetry",
    "snapshot_ecc",
    "describe_gpu_node",
];

#[test]
fn every_node_tool_answers_on_the_neuron_scenarios() {
    for scenario in SCENARIOS {
        for tool in NODE_TOOLS {
            let text = sim(scenario, tool);
            no_other_vendors_words(tool, &text);
            assert!(
                text.contains(&format!("source simulated:{scenario}")),
                "{tool}: {text}"
            );
        }
    }
}

/// The device the driver gave up on is named with its state; the others' state is said in the driver's
/// words, and the telemetry line says why NVML's fields are empty instead of `Unknown`.
#[test]
fn a_device_the_driver_gave_up_on_is_named_in_awss_words() {
    let h = sim("trn2-device-failed", "get_gpu_health");
    assert!(h.contains("verdict: UNHEALTHY"), "{h}");
    assert!(h.contains("GPU 9 (neuron9)"), "{h}");
    assert!(h.contains("reset request 4294967295 failed"), "{h}");
    let t = sim("trn2-device-failed", "get_gpu_telemetry");
    assert!(
        t.contains("GPU 9: ") && t.contains("neuron driver state invalid"),
        "{t}"
    );
    assert!(!t.contains("; Unknown"), "{t}");
    let ok = sim("trn2-healthy", "get_gpu_health");
    assert!(ok.contains("verdict: healthy"), "{ok}");
    let ecc = sim("trn2-hbm-ue", "get_gpu_health");
    assert!(
        ecc.contains("GPU 6 (neuron6) has 1 uncorrectable HBM"),
        "{ecc}"
    );
}
