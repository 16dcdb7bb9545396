//! The wire format, pinned: `tools/list` (names, titles, descriptions, input/output schemas, annotations) in
//! read-only and operator mode, the server's instructions, and one full `tools/call` result per tool
//! (structuredContent and text, errors included) in local simulated mode. Refactoring the tool layer must
//! leave every one of these snapshots unchanged; a deliberate change of what clients see shows up here.

mod common;

use std::process::Stdio;

use common::mcp::{connect, local_serve, request};
use common::*;
use rmcp::RoleClient;
use rmcp::service::RunningService;
use serde_json::{Value, json};

/// The operator fixture has processes and GPUs the operator tools can be aimed at; the read-only tools run
/// against it too, so one server answers everything.
fn fixture() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/operator/fixtures/h100-hgx.json"
    )
    .to_string()
}

async fn start(extra: &[&str]) -> RunningService<RoleClient, ()> {
    let mut cmd = local_serve(LAUNCHER, &fixture(), &node_probe());
    cmd.arg("--evidence-dir")
        .arg(evidence_dir())
        .args(extra)
        // The audit user of operator results is `local:$USER`.
        .env("USER", "golden");
    connect((), cmd, Stdio::null())
        .await
        .expect("handshake")
        .client
}

/// Zero what differs from run to run (wall-clock durations, collection timestamps), everywhere.
fn redact(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                let timing = k.ends_with("millis") || k.ends_with("_ms") || k == "millis";
                let stamp = k == "collected_at" || k == "ts" || k == "started_at";
                // The evidence archive holds its collection time: its size and digest vary.
                let varies = k == "bytes";
                if (timing || varies) && x.is_number() {
                    *x = json!(0);
                } else if stamp && x.is_string() {
                    *x = json!("<time>");
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::String(s) => *s = redact_text(s),
        _ => {}
    }
}

/// Where the golden calls' evidence archives go (one per test process, removed with the temp dir).
fn evidence_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .join("evidence")
}

/// Durations in renderings (`1.2 s`, `35 ms`), RFC 3339 times of the collection, and the fixture's path
/// (it depends on where the repository is checked out).
fn redact_text(s: &str) -> String {
    let s = s.replace(&fixture(), "<fixture>");
    let s = s.replace(&evidence_dir().display().to_string(), "<evidence-dir>");
    static RE: std::sync::OnceLock<[regex::Regex; 5]> = std::sync::OnceLock::new();
    let [dur, ts, file, digest, bytes] = RE.get_or_init(|| {
        [
            regex::Regex::new(r"\b\d+(\.\d+)? ?(ms|s)\b").unwrap(),
            regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap(),
            regex::Regex::new(r"evidence-local-\d{8}T\d{6}Z-[0-9a-f]{12}\.tar\.gz").unwrap(),
            regex::Regex::new(r"\b[0-9a-f]{64}\b").unwrap(),
            regex::Regex::new(r"\b\d+ bytes\b").unwrap(),
        ]
    });
    let s = dur.replace_all(&s, "<dur>");
    let s = file.replace_all(&s, "<evidence-file>");
    let s = digest.replace_all(&s, "<sha256>");
    let s = bytes.replace_all(&s, "<n> bytes");
    ts.replace_all(&s, "<time>").into_owned()
}

fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/golden"));
    s.set_prepend_module_to_snapshot(false);
    s
}

async fn tools_list(client: &RunningService<RoleClient, ()>) -> Value {
    let tools = client.list_all_tools().await.expect("tools/list");
    serde_json::to_value(&tools).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_and_instructions() {
    let ro = start(&[]).await;
    let ro_tools = tools_list(&ro).await;
    let instructions = ro
        .peer_info()
        .and_then(|i| i.instructions.clone())
        .unwrap_or_default();
    ro.cancel().await.unwrap();
    // Written from the registry (launcher/src/mcp/tools/mod.rs): every read-only tool is introduced.
    for t in tools::read_only_tools(LAUNCHER) {
        assert!(
            instructions.contains(&t),
            "the instructions omit {t}: {instructions}"
        );
    }
    let op = start(&["--mode", "operator"]).await;
    let op_tools = tools_list(&op).await;
    op.cancel().await.unwrap();
    snapshot_settings().bind(|| {
        insta::assert_snapshot!("instructions", instructions);
        insta::assert_json_snapshot!("tools_list_read_only", ro_tools);
        insta::assert_json_snapshot!("tools_list_operator", op_tools);
    });
}

/// One call per tool (and a few argument errors), each snapshot being the whole result as a client gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_result_per_tool() {
    let node = json!({"node_name": "local"});
    let calls: Vec<(&str, &str, Value)> = vec![
        ("list_gpu_nodes", "list_gpu_nodes", json!({})),
        ("get_gpu_inventory", "get_gpu_inventory", node.clone()),
        ("get_gpu_telemetry", "get_gpu_telemetry", node.clone()),
        ("inspect_topology", "inspect_topology", node.clone()),
        (
            "analyze_xid_errors",
            "analyze_xid_errors",
            json!({"node_name": "local", "since": "7d"}),
        ),
        ("snapshot_ecc", "snapshot_ecc", node.clone()),
        (
            "get_gpu_health",
            "get_gpu_health",
            json!({"node_name": "local", "expect_gpus": 8}),
        ),
        ("describe_gpu_node", "describe_gpu_node", node.clone()),
        (
            "get_pod_gpu_allocation",
            "get_pod_gpu_allocation",
            node.clone(),
        ),
        ("get_gpu_processes", "get_gpu_processes", node.clone()),
        ("scan_gpu_nodes", "scan_gpu_nodes", json!({"check": "xid"})),
        ("check_cluster", "check_cluster", json!({})),
        (
            "collect_evidence",
            "collect_evidence",
            json!({"node_name": "local", "time_limit_secs": 20}),
        ),
        (
            "kill_gpu_process",
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "grace_seconds": 5, "confirm": "local/pid/4242"}),
        ),
        (
            "reset_gpu",
            "reset_gpu",
            json!({"node_name": "local", "gpu": 1, "dry_run": true}),
        ),
        (
            "cordon_gpu_node",
            "cordon_gpu_node",
            json!({"node_name": "local", "reason": "XID 79 on GPU 3", "confirm": "local"}),
        ),
        (
            "mark_gpu_node",
            "mark_gpu_node",
            json!({"node_name": "local", "reason": "XidError79", "message": "XID 79 on GPU 3", "gpu": "3", "confirm": "local/gpu/3"}),
        ),
        (
            "clear_gpu_node_mark",
            "clear_gpu_node_mark",
            json!({"node_name": "local", "reason": "GPU 3 replaced", "confirm": "local"}),
        ),
        // Errors are wire format too: a wrong node, a bad argument, a missing confirmation.
        (
            "error_wrong_node",
            "get_gpu_health",
            json!({"node_name": "gpu-node-5"}),
        ),
        (
            "error_bad_since",
            "analyze_xid_errors",
            json!({"node_name": "local", "since": "yesterday"}),
        ),
        (
            "error_unknown_argument",
            "get_gpu_inventory",
            json!({"node_name": "local", "verbose": true}),
        ),
        (
            "error_context_in_local_mode",
            "list_gpu_nodes",
            json!({"context": "prod"}),
        ),
        (
            "error_workload_in_local_mode",
            "diagnose_workload",
            json!({"namespace": "ml", "job": "train"}),
        ),
        (
            "error_kill_unconfirmed",
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242}),
        ),
    ];
    // The list above is kept by hand: it calls every registered tool and no other (diagnose_workload only as
    // an error, since it needs a cluster).
    let mut called: Vec<String> = calls.iter().map(|(_, tool, _)| tool.to_string()).collect();
    called.sort();
    called.dedup();
    let mut registered = tools::read_only_tools(LAUNCHER);
    registered.extend(tools::operator_only_tools(LAUNCHER));
    registered.sort();
    assert_eq!(
        called, registered,
        "the golden calls must name exactly the registered tools (launcher/src/mcp/tools/mod.rs)"
    );
    let client = start(&["--mode", "operator"]).await;
    let mut results = Vec::new();
    for (name, tool, args) in calls {
        let r = client.call_tool(request(tool, args)).await;
        let mut v = match r {
            Ok(r) => serde_json::to_value(&r).unwrap(),
            Err(e) => json!({"jsonrpc_error": e.to_string()}),
        };
        redact(&mut v);
        results.push((name, v));
    }
    client.cancel().await.unwrap();
    snapshot_settings().bind(|| {
        for (name, v) in results {
            insta::assert_json_snapshot!(format!("call__{name}"), v);
        }
    });
}
