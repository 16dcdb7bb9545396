//! The tools the launcher registers, as the tests need them. Read from `k8s-gpu-mcp call list --output json`
//! (what `tools/list` answers, built from the registry in launcher/src/mcp/tools/mod.rs), so no test keeps a list
//! of its own and a new tool is covered by every test that walks them.
#![allow(dead_code)] // each test binary uses some of these

use std::process::Command;

use serde_json::Value;

/// `tools/list` of a local server, read-only or operator mode.
pub fn listed(launcher: &str, operator: bool) -> Vec<Value> {
    let mut cmd = Command::new(launcher);
    cmd.args(["--local", "--simulate", "dgx-h100-healthy"]);
    if operator {
        cmd.args(["--mode", "operator"]);
    }
    let out = cmd
        .args(["call", "list", "--output", "json"])
        .output()
        .expect("run k8s-gpu-mcp call list");
    assert!(
        out.status.success(),
        "k8s-gpu-mcp call list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(tools)) => tools,
        other => panic!("call list --output json is not a list of tools: {other:?}"),
    }
}

fn names(tools: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = tools
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    n.sort();
    n
}

/// Every tool of read-only mode, sorted.
pub fn read_only_tools(launcher: &str) -> Vec<String> {
    names(&listed(launcher, false))
}

/// The tools only operator mode adds, sorted.
pub fn operator_only_tools(launcher: &str) -> Vec<String> {
    let ro = read_only_tools(launcher);
    names(&listed(launcher, true))
        .into_iter()
        .filter(|n| !ro.contains(n))
        .collect()
}

/// Read-only tools whose only required argument is `node_name`: each answers with one probe of that node
/// (collect_evidence and get_gpu_history aside, see below).
pub fn node_tools(launcher: &str) -> Vec<String> {
    let tools: Vec<Value> = listed(launcher, false)
        .into_iter()
        .filter(|t| t["inputSchema"]["required"] == serde_json::json!(["node_name"]))
        // collect_evidence answers with an archive named by its time and digest, new on every call, and writes
        // it on the launcher's machine: the walks that compare or snapshot answers cannot hold it.
        // tests/launcher/mcp.rs, tests/e2e/operator.rs and tests/realnode/evidence.rs cover it.
        .filter(|t| t["name"] != "collect_evidence")
        // get_gpu_history starts no probe: it reads the cluster's Prometheus (tests/e2e/history.rs; in local
        // mode without one, tests/launcher/mcp.rs and golden.rs).
        .filter(|t| t["name"] != "get_gpu_history")
        .collect();
    let n = names(&tools);
    assert!(!n.is_empty(), "no node tools listed");
    n
}
