//! The wire format, pinned: `tools/list` (names, titles, descriptions, input/output schemas, annotations) in
//! read-only and operator mode, the server's instructions, and one full `tools/call` result per tool
//! (structuredContent and text, errors included) in local simulated mode. Refactoring the tool layer must
//! leave every one of these snapshots unchanged; a deliberate change of what clients see shows up here.

mod common;
#[path = "../support/golden.rs"]
mod golden;

use std::process::Stdio;

use common::mcp::{check_output_schema, connect, local_serve, request};
use common::*;
use golden::{Volatile, redact};
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
    start_on(&fixture(), extra).await
}

/// A server in local simulated mode on `scenario` (a fact file or a built-in scenario's name).
async fn start_on(scenario: &str, extra: &[&str]) -> RunningService<RoleClient, ()> {
    let mut cmd = local_serve(LAUNCHER, scenario, &node_probe());
    cmd.arg("--evidence-dir")
        .arg(evidence_dir())
        // Every call reads the node itself, so each answer is the same whatever ran before it (answers
        // from a kept reading are pinned by `launcher_mcp`'s `a_conversation_costs_one_probe`).
        .args(["--reading-max-age", "0"])
        .args(extra)
        // The audit user of operator results is `local:$USER`.
        .env("USER", "golden");
    connect((), cmd, Stdio::null())
        .await
        .expect("handshake")
        .client
}

/// Where the golden calls' evidence archives go (one per test process, removed with the temp dir).
fn evidence_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .join("evidence")
}

/// The fixture's path and the evidence directory depend on where the repository is checked out.
fn volatile() -> Volatile<'static> {
    Volatile {
        literals: vec![
            (fixture(), "<fixture>"),
            (evidence_dir().display().to_string(), "<evidence-dir>"),
        ],
        object_uids: false,
        patterns: Vec::new(),
    }
}

fn snapshot_settings() -> insta::Settings {
    golden::settings()
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
        // A simulated node has no DCGM: the answer says so (tests/probe/dcgm.rs replays real outputs).
        (
            "run_gpu_diagnostic",
            "run_gpu_diagnostic",
            json!({"node_name": "local", "gpus": "0,1"}),
        ),
        // A window of the fixture's node, which does not change: steady, nothing invented.
        (
            "watch_gpus",
            "watch_gpus",
            json!({"node_name": "local", "seconds": 5, "interval_ms": 1000}),
        ),
        (
            "error_watch_node_and_workload",
            "watch_gpus",
            json!({"node_name": "local", "namespace": "ml", "job": "train"}),
        ),
        // Local mode with no --prometheus: no history, said in one line with how to name a Prometheus.
        ("get_gpu_history", "get_gpu_history", node.clone()),
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
            "error_diagnostic_level_2_unconfirmed",
            "run_gpu_diagnostic",
            json!({"node_name": "local", "gpus": "0", "level": 2}),
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
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut results = Vec::new();
    for (name, tool, args) in calls {
        let r = client.call_tool(request(tool, args)).await;
        let mut v = match r {
            Ok(r) => {
                // What a host's SDK does with it: a successful answer must fit the declared outputSchema.
                check_output_schema(&tools, tool, &r);
                serde_json::to_value(&r).unwrap()
            }
            Err(e) => json!({"jsonrpc_error": e.to_string()}),
        };
        redact(&mut v, &volatile());
        results.push((name, v));
    }
    client.cancel().await.unwrap();
    snapshot_settings().bind(|| {
        for (name, v) in results {
            insta::assert_json_snapshot!(format!("call__{name}"), v);
        }
    });
}

/// The built-in scenario the full-node goldens read: every section of an 8-GPU H100 node collected, with
/// NVLink errors on it (the operator fixture above carries only what the operator tools need).
const FULL_SCENARIO: &str = "dgx-h100-nvlink-errors";

/// Telemetry, describe, topology and ECC on a node whose every section was collected: the answers a
/// real node gives, not the "not collected" of a sparse fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_node_results() {
    let node = json!({"node_name": "local"});
    let calls = [
        "get_gpu_telemetry",
        "describe_gpu_node",
        "inspect_topology",
        "snapshot_ecc",
    ];
    let client = start_on(FULL_SCENARIO, &[]).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut results = Vec::new();
    for tool in calls {
        let r = client
            .call_tool(request(tool, node.clone()))
            .await
            .unwrap_or_else(|e| panic!("{tool}: JSON-RPC error {e}"));
        assert!(
            check_output_schema(&tools, tool, &r),
            "{tool} failed on {FULL_SCENARIO}: {r:?}"
        );
        let sc = r.structured_content.as_ref().unwrap().to_string();
        // A full scenario: no section of these answers is missing.
        assert!(
            !sc.contains("not_collected") && !sc.contains("not collected"),
            "{tool} on {FULL_SCENARIO} left something uncollected: {sc}"
        );
        let mut v = serde_json::to_value(&r).unwrap();
        redact(&mut v, &volatile());
        results.push((tool, v));
    }
    client.cancel().await.unwrap();
    snapshot_settings().bind(|| {
        for (tool, v) in results {
            insta::assert_json_snapshot!(format!("full__{tool}"), v);
        }
    });
}
