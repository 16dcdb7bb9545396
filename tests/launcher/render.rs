//! Snapshots of the text renderings (what a model reads first) for every built-in scenario and node tool,
//! produced end to end: `k8s-gpu-mcp call TOOL --output text` against node-probe's simulated scenarios.

mod common;

use std::process::Command;

use common::*;

fn render(scenario: &str, tool: &str) -> String {
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
