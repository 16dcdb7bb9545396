//! Snapshots of the text renderings (what a model reads first) for every built-in scenario and node tool,
//! produced end to end: `k8s-gpu-mcp call TOOL --output text` against node-probe's simulated scenarios.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;

/// Both tests below read every node tool's text answer on every scenario (about 600 launcher runs, most of
/// this binary's time): each answer is made once, by whichever test asks first, and read by both.
fn render(scenario: &str, tool: &str) -> String {
    type Cell = Arc<OnceLock<String>>;
    static TEXTS: OnceLock<Mutex<HashMap<(String, String), Cell>>> = OnceLock::new();
    let cell = TEXTS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry((scenario.to_string(), tool.to_string()))
        .or_default()
        .clone();
    cell.get_or_init(|| render_uncached(scenario, tool)).clone()
}

fn render_uncached(scenario: &str, tool: &str) -> String {
    let mut cmd = Command::new(LAUNCHER);
    cmd.args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--output", "text"]);
    if tool != "list_gpu_nodes" {
        cmd.args(["--arg", "node_name=local"]);
    }
    let out = cmd.env("RUST_LOG", "warn").output().unwrap();
    assert!(
        out.status.success(),
        "{scenario}/{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn renderings_per_scenario() {
    // Every built-in scenario, plus a node where nothing could be collected.
    let mut scenarios: Vec<(String, String)> =
        scenarios().into_iter().map(|s| (s.clone(), s)).collect();
    scenarios.push(("empty-node".into(), empty_fixture()));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../snapshots/launcher"
    ));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        // list_gpu_nodes and every node tool (scan_gpu_nodes is rendered below, with its argument).
        let mut tools = vec!["list_gpu_nodes".to_string()];
        tools.extend(tools::node_tools(LAUNCHER));
        for (name, sc) in &scenarios {
            for tool in &tools {
                let text = render(sc, tool);
                assert!(
                    text.contains(&format!("simulated:{name}")),
                    "{name}/{tool}: {text}"
                );
                insta::assert_snapshot!(format!("{name}__{tool}"), text);
            }
            let scan = {
                let out = Command::new(LAUNCHER)
                    .args(["--local", "--simulate", sc, "--probe-bin"])
                    .arg(node_probe())
                    .args(["call", "scan_gpu_nodes", "--arg", "check=health"])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                String::from_utf8(out.stdout).unwrap()
            };
            insta::assert_snapshot!(format!("{name}__scan_gpu_nodes"), scan);
        }
    });
}

fn call(scenario: &str, tool: &str, output: &str) -> String {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--output", output, "--arg", "node_name=local"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "{scenario}/{tool}");
    String::from_utf8(out.stdout).unwrap()
}

/// Every finding (code and GPU) anywhere in a structured result.
fn findings(v: &serde_json::Value, out: &mut Vec<(String, Option<u64>)>) {
    match v {
        serde_json::Value::Object(o) => {
            if let (Some(code), Some(_)) =
                (o.get("code").and_then(|c| c.as_str()), o.get("severity"))
                && o.contains_key("summary")
            {
                out.push((code.to_string(), o.get("gpu").and_then(|g| g.as_u64())));
            }
            o.values().for_each(|x| findings(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| findings(x, out)),
        _ => {}
    }
}

/// The context budgets of an answer (issue 14): text at most 12 KiB (8 KiB on a healthy node, 24 KiB for
/// describe_gpu_node, 3 KiB for get_gpu_health), structured content at most 48 KiB (96 KiB for describe_gpu_node) per eight devices; every finding of
/// the structured content named in the text with its GPU.
#[test]
fn every_node_tool_answer_fits_the_budget_and_names_every_finding() {
    let mut worst = Vec::new();
    for sc in scenarios() {
        for tool in tools::node_tools(LAUNCHER) {
            let text = render(&sc, &tool);
            let json = call(&sc, &tool, "json");
            let describe = tool == "describe_gpu_node";
            let healthy = sc.ends_with("-healthy");
            let text_max = match (describe, healthy) {
                // A node's health leads with its incidents, each fault once (issue 43): 3 KB.
                _ if tool == "get_gpu_health" => 3 * 1024,
                (true, _) => 24 * 1024,
                (false, true) => 8 * 1024,
                (false, false) => 12 * 1024,
            };
            // Per 8 devices: a 16-device node (a trn2.48xlarge) carries twice an 8-GPU node's rows. Text
            // stays within the fixed budget above.
            let per8 = gpu_diag::scenarios::find(&sc)
                .and_then(|s| gpu_diag::scenarios::parse(&s.json()).ok())
                .map_or(1, |f| f.gpus.len().div_ceil(8).max(1));
            let json_max = per8 * if describe { 96 * 1024 } else { 48 * 1024 };
            assert!(
                text.len() <= text_max,
                "{sc}/{tool}: text {} bytes",
                text.len()
            );
            // Measured as the wire carries structuredContent (compact JSON), not as `--output json` prints it
            // for a person (indented: a third larger).
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let wire = serde_json::to_string(&v).unwrap().len();
            assert!(wire <= json_max, "{sc}/{tool}: structured {wire} bytes");
            let mut fs = Vec::new();
            findings(&v, &mut fs);
            for (code, gpu) in fs {
                let named = text.lines().any(|l| {
                    l.contains(&code) && gpu.is_none_or(|g| l.contains(&format!("GPU {g}")))
                });
                assert!(
                    named,
                    "{sc}/{tool}: finding {code} (GPU {gpu:?}) not in the text:\n{text}"
                );
            }
            worst.push((text.len(), wire, format!("{sc}/{tool}")));
        }
    }
    worst.sort();
    eprintln!("largest text: {:?}", worst.last());
}

/// Issue 77 item 5: a DGX H100 with a double-bit ECC error on GPU 1 (the 2-GPU `h100-xid48-dbe` node's
/// counters and log lines moved onto GPU 1 of `dgx-h100-healthy`) and GPU 6 in HW thermal slowdown
/// (`h100-thermal-slowdown`'s GPU 1). Its health answer says the first incident's action once (no "first
/// action" line repeating it) and no catalog cell the signal's sentence already cites, while every signal
/// and its values stay; it was 3,382 bytes before, 3,204 after. Then (the same item) each signal about the
/// GPU its incident's header names says just "GPU 1", the bus once in the header, and an Xid signal's
/// catalog description once (in its parentheses, not again after the GPU): 3,204 bytes before, 3,062 after.
#[test]
fn a_two_fault_node_says_each_thing_once() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../src/scenarios");
    let read = |n: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{n}.json")).unwrap()).unwrap()
    };
    let mut node = read("dgx-h100-healthy");
    let dbe = read("h100-xid48-dbe");
    let hot = read("h100-thermal-slowdown");
    for k in ["ecc", "recovery_action"] {
        node["gpus"][1][k] = dbe["gpus"][1][k].clone();
    }
    for k in [
        "thermal",
        "clocks",
        "clocks_event_reasons",
        "clocks_event_durations_ns",
        "performance_state",
    ] {
        node["gpus"][6][k] = hot["gpus"][1][k].clone();
    }
    // The Xid lines, re-addressed to GPU 1's bus and UUID, ten minutes before the reading.
    let uptime = node["host"]["now_unix"].as_f64().unwrap()
        - node["host"]["boot_time_unix"].as_f64().unwrap()
        - 600.0;
    let bus = node["gpus"][1]["pci_bus_id"].as_str().unwrap()[4..14].to_lowercase();
    let uuid = node["gpus"][1]["uuid"].as_str().unwrap().to_string();
    let lines: Vec<serde_json::Value> = dbe["kernel_log"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str()?.split_once(';').map(|(_, m)| m))
        .filter(|m| m.contains("NVRM: Xid") || m.contains("NVRM: GPU"))
        .enumerate()
        .map(|(k, m)| {
            let m = m
                .replace("0000:ca:00", &bus)
                .replace("GPU-a3790582-792b-7cce-3ac8-5e3452aa0509", &uuid);
            format!("[{:13.6}] {m}", uptime + k as f64 * 7e-5).into()
        })
        .collect();
    node["kernel_log"]["lines"]
        .as_array_mut()
        .unwrap()
        .extend(lines);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("dgx-h100-dbe-thermal.json");
    std::fs::write(&path, node.to_string()).unwrap();
    let text = call(path.to_str().unwrap(), "get_gpu_health", "text");

    for code in [
        "1. [CRITICAL] gpu.memory: GPU 1",
        "xid.48",
        "ecc.volatile_uncorrected",
        "xid.63",
        "xid.94",
        "xid.154",
        "gpu.recovery_action",
        "2. [WARNING] gpu.thermal (thermal.hw_slowdown): GPU 6",
        "gpu_temp_c = 90",
        "(WORKFLOW_XID_48)",
        // A catalog cell the sentence does not say stays.
        "catalog immediate_action = RESTART_APP",
    ] {
        assert!(text.contains(code), "{code} is gone:\n{text}");
    }
    assert!(!text.contains("first action"), "{text}");
    assert_eq!(
        text.matches("then `nvidia-smi -r -i 1`").count(),
        1,
        "the action twice:\n{text}"
    );
    assert!(!text.contains("= WORKFLOW_XID_48"), "{text}");
    assert!(!text.contains("immediate_action = IGNORE"), "{text}");
    // Within the 3 KiB of a built-in scenario: the header names GPU 1 with its bus, its signals say
    // "GPU 1".
    eprintln!("{} bytes", text.len());
    assert!(text.len() <= 3 * 1024, "{} bytes:\n{text}", text.len());
    assert_eq!(
        text.matches(&format!("{bus}.0")).count(),
        1,
        "the bus id more than once:\n{text}"
    );
}
