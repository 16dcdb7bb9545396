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
/// describe_gpu_node, 3 KiB for get_gpu_health), structured content at most 48 KiB (96 KiB for describe_gpu_node); every finding of
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
            let json_max = if describe { 96 * 1024 } else { 48 * 1024 };
            assert!(
                text.len() <= text_max,
                "{sc}/{tool}: text {} bytes",
                text.len()
            );
            assert!(
                json.len() <= json_max,
                "{sc}/{tool}: structured {} bytes",
                json.len()
            );
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
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
            worst.push((text.len(), json.len(), format!("{sc}/{tool}")));
        }
    }
    worst.sort();
    eprintln!("largest text: {:?}", worst.last());
}
