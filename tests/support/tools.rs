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

/// `tools/list` of a local server started with `args` (e.g. `--toolsets node`, `--mode operator`).
pub fn listed_with(launcher: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new(launcher)
        .args(["--local", "--simulate", "dgx-h100-healthy"])
        .args(args)
        .args(["call", "list", "--output", "json"])
        .output()
        .expect("run k8s-gpu-mcp call list");
    assert!(
        out.status.success(),
        "k8s-gpu-mcp {args:?} call list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(tools)) => tools,
        other => panic!("call list --output json is not a list of tools: {other:?}"),
    }
}

/// The names `tools` lists, sorted.
pub fn names_of(tools: &[Value]) -> Vec<String> {
    names(tools)
}

/// The `initialize` result of an MCP server started as `cmd` (a stdio server), and its `tools/list`: what a
/// client reads before anything else. Plain JSON-RPC lines, as every stdio client sends them.
pub fn handshake(mut cmd: Command) -> (Value, Vec<Value>) {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the MCP server");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut answer = |id: u64| -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                stdout.read_line(&mut line).expect("read") > 0,
                "the server closed stdout before answering request {id}"
            );
            let v: Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if v["id"] == id {
                return v["result"].clone();
            }
        }
    };
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        writeln!(stdin, "{v}").expect("write");
        stdin.flush().expect("flush");
    };
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "catalog-test", "version": "0"}}}),
    );
    let init = answer(1);
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    send(
        &mut stdin,
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    );
    let list = answer(2);
    let _ = child.kill();
    let _ = child.wait();
    let tools = match &list["tools"] {
        Value::Array(t) => t.clone(),
        other => panic!("tools/list has no tools: {other}"),
    };
    (init, tools)
}

/// The launcher's server instructions and `tools/list` over stdio in local mode, started with `args`.
pub fn served(launcher: &str, args: &[&str]) -> (String, Vec<Value>) {
    let mut cmd = Command::new(launcher);
    cmd.args(["--local", "--simulate", "dgx-h100-healthy"])
        .args(args)
        .arg("serve");
    let (init, tools) = handshake(cmd);
    let instructions = init["instructions"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (instructions, tools)
}
