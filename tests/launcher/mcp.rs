//! Drives the real `k8s-gpu-mcp serve` binary over stdio with the rmcp client: both handshakes, the tool
//! surface, every tool in local simulated mode (structuredContent validated against the advertised
//! outputSchema), bad arguments, progress, cancellation, timeouts and cleanup on EOF.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::mcp::{assert_schema_valid, call, local_serve, plain_client, text_of, tool_names};
use common::*;
use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientRequest,
    GetPromptRequestParams, GetTaskParams, ProgressNotificationParam, ProtocolVersion,
    ReadResourceRequestParams, Request, ServerResult, TaskPayload, TaskStatus, Tool,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt, object};
use serde_json::{Value, json};
use tokio::process::Command;

fn serve_cmd(extra: &[&str]) -> Command {
    let mut cmd = local_serve(LAUNCHER, &main_scenario(), &node_probe());
    // collect_evidence writes here, not in the user's state dir.
    cmd.arg("--evidence-dir")
        .arg(std::env::temp_dir().join(format!("k8s-gpu-mcp-test-evidence-{}", std::process::id())))
        .args(extra);
    cmd
}

async fn connect(extra: &[&str]) -> RunningService<RoleClient, ()> {
    plain_client(serve_cmd(extra)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_handshake_reports_this_crate() {
    let client = connect(&[]).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let server = info.server_info.clone().expect("serverInfo");
    assert_eq!(server.name, "k8s-gpu-mcp");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(
        info.capabilities.tools.is_some()
            && info.capabilities.prompts.is_some()
            && info.capabilities.resources.is_some()
    );
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or("")
            .contains("list_gpu_nodes")
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_handshake_2026_and_a_tool_call() {
    let client = ()
        .serve_with_lifecycle(
            TokioChildProcess::new(serve_cmd(&[])).unwrap(),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("server/discover handshake");
    let info = client.peer_info().expect("server info");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("k8s-gpu-mcp")
    );
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), tools::read_only_tools(LAUNCHER).len());
    let r = call(&client, "get_gpu_health", json!({"node_name": "local"})).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    assert!(r.structured_content.is_some());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_is_the_read_only_surface_with_schemas_and_annotations() {
    let client = connect(&[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort();
    assert_eq!(names, tools::read_only_tools(LAUNCHER));
    let operator = tools::operator_only_tools(LAUNCHER);
    assert!(!operator.is_empty(), "operator mode adds no tool");
    for op in &operator {
        assert!(
            !names.contains(&op.as_str()),
            "{op} listed in read-only mode"
        );
    }
    for t in &tools {
        let name = t.name.as_ref();
        assert!(
            t.title.as_deref().is_some_and(|s| !s.is_empty()),
            "{name}: no title"
        );
        assert!(
            t.description.as_deref().is_some_and(|d| d.len() > 80),
            "{name}: description too thin"
        );
        let ann = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no annotations"));
        assert_eq!(ann.read_only_hint, Some(true), "{name}");
        assert_eq!(ann.destructive_hint, Some(false), "{name}");
        assert_eq!(ann.open_world_hint, Some(true), "{name}");
        assert!(t.output_schema.is_some(), "{name}: no outputSchema");
        let input = Value::Object(t.input_schema.as_ref().clone());
        assert_eq!(input["type"], "object", "{name}");
        assert_eq!(
            input["additionalProperties"], false,
            "{name}: unknown arguments must be refused"
        );
        // No `["string","null"]` type unions: some clients send such values as strings.
        let s = input.to_string();
        assert!(
            !s.contains("\"type\":["),
            "{name}: type union in inputSchema: {s}"
        );
        jsonschema::validator_for(&input).unwrap_or_else(|e| panic!("{name}: bad inputSchema {e}"));
        if let Some(node) = input["properties"].get("node_name") {
            // A node, or a workload in its stead (watch_gpus): then neither is required by the schema.
            if input["properties"].get("namespace").is_some() {
                assert!(
                    input.get("required").is_none_or(|r| r == &json!([])),
                    "{name}"
                );
            } else {
                assert_eq!(input["required"], json!(["node_name"]), "{name}");
            }
            assert_eq!(node["maxLength"], 253, "{name}");
            assert!(
                node["pattern"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("^[a-z0-9]")),
                "{name}"
            );
        }
    }
    let scan = tools.iter().find(|t| t.name == "scan_gpu_nodes").unwrap();
    let props = &Value::Object(scan.input_schema.as_ref().clone())["properties"];
    assert_eq!(props["concurrency"]["minimum"], 1);
    assert_eq!(props["concurrency"]["maximum"], 128);
    let check = props["check"].to_string();
    for c in ["health", "xid", "ecc"] {
        assert!(
            check.contains(&format!("\"{c}\"")),
            "check enum lacks {c}: {check}"
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_mode_adds_no_stubs() {
    // The operator router is plugged in only with --mode operator; until its tools exist it adds none.
    let client = connect(&["--mode", "operator"]).await;
    let names = tool_names(&client).await;
    for t in tools::read_only_tools(LAUNCHER) {
        assert!(names.contains(&t), "{t} missing in operator mode");
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tool_answers_in_local_mode_and_matches_its_output_schema() {
    let client = connect(&[]).await;
    let tools = client.list_all_tools().await.unwrap();
    let calls: Vec<(&str, Value)> = vec![
        ("list_gpu_nodes", json!({})),
        ("get_gpu_inventory", json!({"node_name": "local"})),
        ("get_gpu_telemetry", json!({"node_name": "local"})),
        ("inspect_topology", json!({"node_name": "local"})),
        ("analyze_xid_errors", json!({"node_name": "local"})),
        ("snapshot_ecc", json!({"node_name": "local"})),
        (
            "get_gpu_health",
            json!({"node_name": "local", "expect_gpus": 8}),
        ),
        ("describe_gpu_node", json!({"node_name": "local"})),
        ("get_gpu_processes", json!({"node_name": "local"})),
        ("get_pod_gpu_allocation", json!({"node_name": "local"})),
        ("scan_gpu_nodes", json!({"check": "health"})),
        ("scan_gpu_nodes", json!({"check": "xid", "concurrency": 2})),
        ("scan_gpu_nodes", json!({"check": "ecc"})),
        ("check_cluster", json!({})),
        (
            "watch_gpus",
            json!({"node_name": "local", "seconds": 5, "interval_ms": 1000}),
        ),
    ];
    // Every other listed tool (a new one, say) is called too, with the arguments its schema requires.
    let mut calls: Vec<(String, Value)> =
        calls.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
    for t in &tools {
        if calls.iter().any(|(n, _)| n == t.name.as_ref()) {
            continue;
        }
        let input = Value::Object(t.input_schema.as_ref().clone());
        let required = input["required"].as_array().cloned().unwrap_or_default();
        // Workload tools read a namespace's pods from a cluster: in local mode they refuse, saying why.
        if required.contains(&json!("namespace")) {
            let r = call(&client, &t.name, json!({"namespace": "ml", "job": "train"})).await;
            assert_eq!(r.is_error, Some(true), "{}: {}", t.name, text_of(&r));
            assert!(
                text_of(&r).contains("local mode"),
                "{}: {}",
                t.name,
                text_of(&r)
            );
            continue;
        }
        let mut args = serde_json::Map::new();
        for r in &required {
            match r.as_str() {
                Some("node_name") => args.insert("node_name".into(), json!("local")),
                other => panic!("{}: add a call with a value for {other:?} here", t.name),
            };
        }
        calls.push((t.name.to_string(), Value::Object(args)));
    }
    for (name, args) in calls {
        let name = name.as_str();
        let tool = tools.iter().find(|t| t.name == name).unwrap();
        let r = call(&client, name, args.clone()).await;
        assert_eq!(r.is_error, Some(false), "{name} {args}: {}", text_of(&r));
        let sc = r
            .structured_content
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no structuredContent"));
        assert_schema_valid(tool, sc);
        let text = text_of(&r);
        assert!(!text.trim().is_empty(), "{name}: empty text");
        assert!(
            !text.trim_start().starts_with('{'),
            "{name}: text is a JSON dump, not a rendering"
        );
        match name {
            "list_gpu_nodes" => {
                assert_eq!(sc["mode"], "local");
                assert_eq!(sc["nodes"][0]["name"], "local");
                assert_eq!(sc["local_probe"]["ran_in"], "local");
            }
            "check_cluster" => {
                assert_eq!(sc["ok"], true);
                assert_eq!(sc["mode"], "local");
                assert_eq!(sc["checks"][0]["name"], "local");
                assert!(text.contains("[ok]   local: local mode"), "{text}");
            }
            "scan_gpu_nodes" => {
                assert_eq!(sc["nodes_total"], 1);
                assert_eq!(sc["nodes_ok"], 1);
                // The one node is either ranked or counted healthy, never both, never neither.
                let ranked = sc["needs_attention"].as_array().unwrap();
                assert_eq!(
                    ranked.len() + sc["nodes_healthy"].as_u64().unwrap() as usize,
                    1,
                    "{sc}"
                );
                // dgx-h100-xid79's GPU 4 fell off the bus (XID 79): the health and XID scans must rank
                // it, whichever way the ECC scan reads a lost GPU.
                if args["check"] != "ecc" {
                    assert_eq!(
                        ranked.len(),
                        1,
                        "{} scan missed XID 79: {sc}",
                        args["check"]
                    );
                }
                if let Some(e) = ranked.first() {
                    assert_eq!(e["node"], "local");
                    assert_eq!(e["status"], "ok");
                }
                assert_eq!(sc["check"], args["check"]);
            }
            // Local mode with no --prometheus: no probe runs, and the answer says in one line how to
            // name a Prometheus.
            "get_gpu_history" => {
                assert_eq!(sc["node"], "local");
                assert_eq!(sc["status"], "no_prometheus", "{sc}");
                assert!(
                    sc["summary"].as_str().unwrap().contains("--prometheus URL"),
                    "{sc}"
                );
                assert!(sc.get("history").is_none(), "{sc}");
                assert!(text.contains("GPU history of node local"), "{text}");
            }
            "collect_evidence" => {
                assert_eq!(sc["node"], "local");
                assert_eq!(sc["evidence"]["sha256"].as_str().unwrap().len(), 64, "{sc}");
                assert_eq!(sc["evidence"]["bug_report"]["status"], "absent");
                assert!(
                    sc["evidence"]["index_uri"]
                        .as_str()
                        .unwrap()
                        .starts_with("probe://")
                );
                assert!(text.contains("evidence of local"), "{text}");
            }
            "watch_gpus" => {
                assert_eq!(sc["target"], "node local");
                assert_eq!(sc["nodes"][0]["node"], "local");
                assert_eq!(
                    sc["nodes"][0]["gpus"].as_array().map(Vec::len),
                    Some(8),
                    "{sc}"
                );
                assert!(sc["pattern"]["kind"].is_string(), "{sc}");
                assert!(text.contains("GPU watch of node local"), "{text}");
                // The picture beside the text, a PNG.
                let image = r
                    .content
                    .iter()
                    .find_map(|c| c.as_image())
                    .expect("an image");
                assert_eq!(image.mime_type, "image/png");
                assert!(image.data.starts_with("iVBORw0KGgo"), "not a PNG");
            }
            _ => {
                assert_eq!(sc["node"], "local", "{name}");
                assert_eq!(sc["run"]["ran_in"], "local");
                assert_eq!(sc["run"]["exit_code"], 0);
                assert_eq!(sc["run"]["probe"]["node_name"], "local");
                assert!(
                    sc["run"]["probe"]["source"]
                        .as_str()
                        .unwrap()
                        .starts_with("simulated:")
                );
                assert!(sc.get("report").is_some(), "{name}: no report");
                assert!(text.contains("node local"), "{name}: {text}");
            }
        }
    }
    client.cancel().await.unwrap();
}

/// `serve --local` against one built-in scenario (or any probe binary).
async fn connect_to(scenario: &str, probe: &std::path::Path) -> RunningService<RoleClient, ()> {
    plain_client(local_serve(LAUNCHER, scenario, probe)).await
}

/// A successful call whose structuredContent matches the tool's advertised outputSchema.
async fn ok_valid(
    client: &RunningService<RoleClient, ()>,
    tools: &[Tool],
    tool: &str,
    args: Value,
) -> (Value, String) {
    let r = call(client, tool, args).await;
    assert_eq!(r.is_error, Some(false), "{tool}: {}", text_of(&r));
    let sc = r.structured_content.clone().expect("structuredContent");
    assert_schema_valid(tools.iter().find(|t| t.name == tool).unwrap(), &sc);
    (sc, text_of(&r))
}

/// Local mode has no API server: get_pod_gpu_allocation shows the kubelet's assignment alone (exact when
/// the probe reached the kubelet) and get_gpu_processes leaves pods unnamed, saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_and_process_owners_in_local_mode() {
    if !scenarios().iter().any(|s| s == "h100-zombie-process") {
        panic!("node-probe lacks the h100-zombie-process scenario");
    }
    let client = connect_to("h100-zombie-process", &node_probe()).await;
    let tools = client.list_all_tools().await.unwrap();

    let (sc, text) = ok_valid(
        &client,
        &tools,
        "get_pod_gpu_allocation",
        json!({"node_name": "local"}),
    )
    .await;
    assert_eq!(sc["exact"], true, "{sc:#}");
    assert!(sc.get("why").is_none(), "{sc:#}");
    assert!(
        sc["api_why"].as_str().unwrap().contains("local mode"),
        "{sc:#}"
    );
    // No API server: no request counts, no join, nothing invented.
    assert!(
        sc.get("gpu_capacity").is_none() && sc["pods"] == json!([]),
        "{sc:#}"
    );
    assert_eq!(sc["assignment"], json!([]));
    let pods = sc["report"]["pods"].as_array().unwrap();
    let bob = pods
        .iter()
        .find(|p| p["name"] == "notebook-bob")
        .expect("notebook-bob");
    assert_eq!(bob["namespace"], "research");
    let dev = &bob["containers"][0]["devices"][0];
    assert_eq!(dev["device_id"], "GPU-db91480c-f2e3-a360-5c93-df231f4d8309");
    assert_eq!(dev["form"], "gpu_uuid");
    assert_eq!(dev["gpu_index"], 0);
    assert_eq!(sc["report"]["gpus"][1]["allocated_to"][0]["pod"], "train-0");
    let codes: Vec<&str> = sc["report"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"alloc.zombie_process"), "{codes:?}");
    assert!(
        text.contains("assignment: exact")
            && text.contains("nvidia.com/gpu GPU-db91480c-f2e3-a360-5c93-df231f4d8309 -> GPU 0")
            && text.contains("PID 48213 (python3) 30720 MiB in pod UID 0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d [zombie]"),
        "{text}"
    );

    let (sc, text) = ok_valid(
        &client,
        &tools,
        "get_gpu_processes",
        json!({"node_name": "local"}),
    )
    .await;
    assert!(
        sc["names_why"].as_str().unwrap().contains("local mode"),
        "{sc:#}"
    );
    assert!(sc.get("pods_listed").is_none());
    let owners = sc["owners"].as_array().unwrap();
    let got: Vec<(u64, &str, Option<&str>)> = owners
        .iter()
        .map(|o| {
            (
                o["pid"].as_u64().unwrap(),
                o["owner"].as_str().unwrap(),
                o["pod_uid"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                48213,
                "pod_unnamed",
                Some("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
            ),
            (39977, "unknown", None),
            (
                51022,
                "pod_unnamed",
                Some("6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e")
            ),
        ]
    );
    assert!(
        owners
            .iter()
            .all(|o| o.get("namespace").is_none() && o.get("pod").is_none())
    );
    assert_eq!(sc["join_findings"], json!([]));
    assert!(
        text.contains(
            "- GPU 1 PID 51022 (python3) 57579 MiB -> pod UID 6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e"
        ),
        "{text}"
    );
    client.cancel().await.unwrap();

    // A scenario without kubelet facts: not exact, and the probe's reason says why.
    let client = connect_to("dgx-h100-healthy", &node_probe()).await;
    let (sc, text) = ok_valid(
        &client,
        &tools,
        "get_pod_gpu_allocation",
        json!({"node_name": "local"}),
    )
    .await;
    assert_eq!(sc["exact"], false);
    assert!(
        sc["why"]
            .as_str()
            .unwrap()
            .contains("PodResources API was not queried"),
        "{sc:#}"
    );
    assert_eq!(sc["report"]["gpus"].as_array().unwrap().len(), 8);
    assert!(text.contains("NOT exact"), "{text}");
    client.cancel().await.unwrap();

    // The probe itself fails: still an answer, not exact, with the probe's failure as why.
    let dir = tempfile::tempdir().unwrap();
    let garbage = fake_probe(dir.path(), "garbage", "echo not-json; exit 1");
    let client = connect_to("dgx-h100-healthy", &garbage).await;
    let (sc, _) = ok_valid(
        &client,
        &tools,
        "get_pod_gpu_allocation",
        json!({"node_name": "local"}),
    )
    .await;
    assert_eq!(sc["exact"], false);
    let why = sc["why"].as_str().unwrap();
    assert!(
        why.starts_with("probe failed: ") && why.contains("unusable output"),
        "{why}"
    );
    assert!(
        sc.get("report").is_none() && sc.get("run").is_none(),
        "{sc:#}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_come_back_as_tool_errors_that_say_how_to_fix_the_call() {
    let client = connect(&[]).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "get_gpu_health",
            json!({"node_name": "GPU_Node!"}),
            "not a valid node name",
        ),
        ("get_gpu_health", json!({"node_name": ""}), "empty"),
        (
            "get_gpu_health",
            json!({"node_name": "gpu-node-5"}),
            "node_name \"local\"",
        ),
        ("get_gpu_health", json!({}), "missing field `node_name`"),
        (
            "get_gpu_health",
            json!({"node_name": "local", "bogus": 1}),
            "unknown field `bogus`",
        ),
        (
            "get_gpu_health",
            json!({"node_name": "local", "expect_gpus": 0}),
            "between 1 and 1024",
        ),
        (
            "get_gpu_health",
            json!({"node_name": "local", "context": "prod"}),
            "without `context`",
        ),
        (
            "analyze_xid_errors",
            json!({"node_name": "local", "since": "yesterday"}),
            "`30m`",
        ),
        (
            "scan_gpu_nodes",
            json!({"concurrency": 500}),
            "between 1 and 128",
        ),
        (
            "scan_gpu_nodes",
            json!({"check": "temperature"}),
            "unknown variant",
        ),
        (
            "list_gpu_nodes",
            json!({"label_selector": "a=b"}),
            "local mode",
        ),
        ("inspect_topology", json!({"node_name": 5}), "invalid type"),
    ];
    for (tool, args, needle) in cases {
        let r = call(&client, tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{tool} {args} should fail");
        let t = text_of(&r);
        assert!(
            t.contains(needle),
            "{tool} {args}: message lacks `{needle}`: {t}"
        );
    }
    client.cancel().await.unwrap();
}

/// Records every progress notification it receives.
#[derive(Clone, Default)]
struct Recorder {
    progress: ProgressDispatcher,
    count: Arc<AtomicUsize>,
    seen: Arc<std::sync::Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push(p.clone());
        self.progress.handle_notification(p).await;
    }
}

#[test]
fn no_progress_without_a_token() {
    // The rmcp client attaches a progress token to every request, so speak raw JSON-RPC here.
    use std::io::{BufRead, BufReader, Write};
    let mut child = std::process::Command::new(LAUNCHER)
        .args([
            "serve",
            "--local",
            "--simulate",
            &main_scenario(),
            "--probe-bin",
        ])
        .arg(node_probe())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let msgs = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_gpu_health","arguments":{"node_name":"local"}}}),
        // A window, whose values stream as progress only to a client that asked (issue 92).
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"watch_gpus","arguments":{"node_name":"local","seconds":5}}}),
    ];
    for m in msgs {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server closed stdout early: {lines:?}"
        );
        let v: Value = serde_json::from_str(&line).expect("stdout carries only JSON-RPC");
        lines.push(v.clone());
        if v["id"] == 2 || v["id"] == 3 {
            assert_eq!(v["result"]["isError"], false, "{v}");
        }
        if lines
            .iter()
            .filter(|l| l["id"] == 2 || l["id"] == 3)
            .count()
            == 2
        {
            break;
        }
    }
    assert!(
        !lines
            .iter()
            .any(|l| l["method"] == "notifications/progress"),
        "progress without a token: {lines:?}"
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_sent_in_order_with_a_token() {
    let rec = Recorder {
        progress: ProgressDispatcher::new(),
        ..Default::default()
    };
    let client = common::mcp::connect(rec.clone(), serve_cmd(&[]), std::process::Stdio::inherit())
        .await
        .unwrap()
        .client;

    // With a token (the cancellable request API attaches one).
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("get_gpu_health")
                    .with_arguments(object!({"node_name": "local"})),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let resp = handle.await_response().await.unwrap();
    assert!(matches!(resp, ServerResult::CallToolResult(_)), "{resp:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = rec.seen.lock().unwrap().clone();
    // The server sends in order; the client may dispatch notifications concurrently, so sort by value.
    let mut seen = seen;
    seen.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    let msgs: Vec<(f64, String)> = seen
        .iter()
        .map(|p| (p.progress, p.message.clone().unwrap_or_default()))
        .collect();
    assert!(
        seen.len() >= 3,
        "expected starting/probing/done, got {msgs:?}"
    );
    assert!(msgs[0].1.contains("starting probe"), "{msgs:?}");
    assert!(
        msgs.iter().any(|m| m.1.contains("probing local")),
        "{msgs:?}"
    );
    assert!(msgs.last().unwrap().1.contains("done"), "{msgs:?}");
    assert!(
        seen.windows(2).all(|w| w[1].progress > w[0].progress),
        "progress values repeat: {msgs:?}"
    );
    assert!(seen.iter().all(|p| p.total == Some(5.0)));

    // A scan reports n of N.
    rec.seen.lock().unwrap().clear();
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("scan_gpu_nodes")
                    .with_arguments(object!({"check": "xid"})),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    handle.await_response().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = rec.seen.lock().unwrap().clone();
    let last = seen
        .iter()
        .max_by(|a, b| a.progress.total_cmp(&b.progress))
        .expect("scan progress");
    assert_eq!((last.progress, last.total), (1.0, Some(1.0)));
    assert!(
        last.message.as_deref().unwrap_or("").contains("1 of 1"),
        "{seen:?}"
    );
    client.cancel().await.unwrap();
}

/// watch_gpus sends each interval's values in its progress while the window runs (issue 92), to a client of
/// either protocol generation: the script's Xid of second 8 is in the progress of second 8, and the final
/// answer is the window's as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_progress_carries_each_intervals_values_on_both_protocol_generations() {
    let run = |version: ProtocolVersion| async move {
        let rec = Recorder {
            progress: ProgressDispatcher::new(),
            ..Default::default()
        };
        let cmd = local_serve(LAUNCHER, "dgx-h100-watch-xid79", &node_probe());
        let transport = TokioChildProcess::new(cmd).unwrap();
        let client = if version == ProtocolVersion::V_2026_07_28 {
            rec.clone()
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![version.clone()],
                    },
                )
                .await
                .unwrap()
        } else {
            rec.clone().serve(transport).await.unwrap()
        };
        assert_eq!(client.peer_info().unwrap().protocol_version, version);
        let handle = client
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(
                    CallToolRequestParams::new("watch_gpus").with_arguments(object!({
                        "node_name": "local", "seconds": 10, "interval_ms": 1000
                    })),
                )),
                PeerRequestOptions::no_options(),
            )
            .await
            .unwrap();
        let resp = handle.await_response().await.unwrap();
        let ServerResult::CallToolResult(r) = resp else {
            panic!("{version}: {resp:?}")
        };
        assert_eq!(r.is_error, Some(false), "{version}: {}", text_of(&r));
        assert!(text_of(&r).contains("Xid 79"), "{version}: {}", text_of(&r));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut seen = rec.seen.lock().unwrap().clone();
        seen.sort_by(|a, b| a.progress.total_cmp(&b.progress));
        let msgs: Vec<String> = seen
            .iter()
            .map(|p| p.message.clone().unwrap_or_default())
            .collect();
        // One summary per second of the window, each with the GPUs' values.
        let values: Vec<&String> = msgs
            .iter()
            .filter(|m| m.contains(" of 10 s: 8 GPU(s)"))
            .collect();
        assert!(values.len() >= 9, "{version}: {msgs:#?}");
        assert!(
            values
                .iter()
                .any(|m| m.starts_with("0 s of 10 s: 8 GPU(s) 98% busy")),
            "{version}: {msgs:#?}"
        );
        let at_8 = values
            .iter()
            .find(|m| m.starts_with("8 s of 10 s"))
            .unwrap_or_else(|| panic!("{version}: no summary of second 8: {msgs:#?}"));
        assert!(
            at_8.contains("critical: Xid 79 on GPU 4") && at_8.contains("GPU 4 unreadable"),
            "{version}: {at_8}"
        );
        // Nothing of it before its second.
        assert!(
            !values
                .iter()
                .filter(|m| m.starts_with("7 s of"))
                .any(|m| m.contains("Xid")),
            "{version}: {msgs:#?}"
        );
        assert!(
            seen.windows(2).all(|w| w[1].progress > w[0].progress),
            "{version}: {msgs:#?}"
        );
        assert!(
            seen.iter().all(|p| p.progress <= 10.0),
            "{version}: {msgs:#?}"
        );
        client.cancel().await.unwrap();
    };
    tokio::join!(
        run(ProtocolVersion::V_2025_11_25),
        run(ProtocolVersion::V_2026_07_28)
    );
}

/// A probe that records its PID and then hangs.
fn hanging_probe(dir: &std::path::Path) -> std::path::PathBuf {
    let pidfile = dir.join("pid");
    fake_probe(
        dir,
        "hang-probe",
        &format!("echo $$ > {}\nexec sleep 60", pidfile.display()),
    )
}

fn hang_cmd(probe: &std::path::Path, extra: &[&str]) -> Command {
    let probe = probe.to_path_buf();
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Command::new(LAUNCHER).configure(move |c| {
        c.args(["serve", "--local", "--probe-bin"])
            .arg(&probe)
            .args(&extra)
            .env("RUST_LOG", "warn");
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_kills_the_probe_before_the_server_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let probe = hanging_probe(dir.path());
    let client = plain_client(hang_cmd(&probe, &[])).await;
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("get_gpu_health")
                    .with_arguments(object!({"node_name": "local"})),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let pid = wait_pid(&dir.path().join("pid"), 10);
    assert!(alive(pid));
    handle.cancel(Some("user gave up".into())).await.unwrap();
    assert!(wait_dead(pid, 5), "probe {pid} survived cancellation");
    // The server is still healthy after the cancellation.
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), tools::read_only_tools(LAUNCHER).len());
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_probe_times_out_with_an_explained_error() {
    let dir = tempfile::tempdir().unwrap();
    let probe = hanging_probe(dir.path());
    let client = plain_client(hang_cmd(&probe, &["--probe-timeout", "1"])).await;
    let started = std::time::Instant::now();
    let r = call(&client, "get_gpu_telemetry", json!({"node_name": "local"})).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("did not finish within 1 s"),
        "{}",
        text_of(&r)
    );
    let pid = wait_pid(&dir.path().join("pid"), 1);
    assert!(wait_dead(pid, 5), "timed-out probe {pid} still running");

    // A scan is bounded by the same deadline and reports the node as failed, ranked for attention.
    let r = call(&client, "scan_gpu_nodes", json!({})).await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let sc = r.structured_content.unwrap();
    assert_eq!(sc["nodes_failed"], 1);
    assert_eq!(sc["needs_attention"][0]["status"], "failed");
    assert_eq!(sc["needs_attention"][0]["node"], "local");
    client.cancel().await.unwrap();
}

/// A streamed window's lines are bounded and typed like any probe output (issue 92): an overlong line, or a
/// kernel line pasted where a sample belongs, refuses the run in words that say which line and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_streamed_lines_are_refused_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"schema_version":1,"error":{"kind":"internal","message":"unused"}}"#;
    for (name, body, want) in [
        (
            "overlong",
            format!(
                "printf '{{\"live\":\"missed\",\"t_s\":0}}\\n'; head -c 300000 /dev/zero | tr '\\0' x; echo; echo '{doc}'"
            ),
            "line 2: a streamed line of 300000 bytes is over the 262144-byte bound",
        ),
        (
            "pasted",
            format!(
                "echo 'NVRM: Xid (PCI:0000:9a:00): 79, pid=1, name=x, GPU has fallen off the bus.'; echo '{doc}'"
            ),
            "line 1: a streamed line is not a window's sample",
        ),
    ] {
        let probe = fake_probe(dir.path(), name, &body);
        let client = plain_client(hang_cmd(&probe, &[])).await;
        let r = call(
            &client,
            "watch_gpus",
            json!({"node_name": "local", "seconds": 5}),
        )
        .await;
        assert_eq!(r.is_error, Some(true), "{name}: {}", text_of(&r));
        let t = text_of(&r);
        assert!(
            t.contains("unusable output") && t.contains(want),
            "{name}: {t}"
        );
        client.cancel().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_failing_probes_are_reported_not_crashed_on() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = fake_probe(
        dir.path(),
        "garbage",
        "echo 'Segmentation fault' >&2; echo not-json; exit 139",
    );
    let client = plain_client(hang_cmd(&garbage, &[])).await;
    let r = call(&client, "snapshot_ecc", json!({"node_name": "local"})).await;
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("unusable output") && t.contains("Segmentation fault"),
        "{t}"
    );
    client.cancel().await.unwrap();

    // A probe-side failure document: its message and hint reach the caller.
    let client = plain_client(serve_cmd(&[])).await;
    drop(client);
    let failing = fake_probe(
        dir.path(),
        "failing",
        r#"echo '{"schema_version":1,"error":{"kind":"nvml_unavailable","message":"libnvidia-ml.so.1 not found","hint":"install the driver"}}'; exit 3"#,
    );
    let client = plain_client(hang_cmd(&failing, &[])).await;
    let r = call(&client, "get_gpu_inventory", json!({"node_name": "local"})).await;
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("libnvidia-ml.so.1 not found") && t.contains("hint: install the driver"),
        "{t}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_eof_stops_running_probes_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let probe = hanging_probe(dir.path());
    let mut child = std::process::Command::new(LAUNCHER)
        .args(["serve", "--local", "--probe-bin"])
        .arg(&probe)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let inited = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    let callmsg = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_gpu_health","arguments":{"node_name":"local"}}});
    for m in [init, inited, callmsg] {
        writeln!(stdin, "{m}").unwrap();
    }
    stdin.flush().unwrap();
    let pid = wait_pid(&dir.path().join("pid"), 10);
    drop(stdin); // EOF
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not exit after EOF"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(!alive(pid), "probe {pid} outlived the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_steer_to_the_tools() {
    let client = connect(&[]).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    for n in [
        "triage_gpu_node",
        "investigate_xid",
        "training_job_hung_or_slow",
    ] {
        let p = prompts
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("{n} missing: {names:?}"));
        let args = p.arguments.clone().unwrap_or_default();
        if n == "training_job_hung_or_slow" {
            // Named by its namespace and name, or by its nodes: neither alone is required.
            for a in ["namespace", "job", "nodes"] {
                assert!(args.iter().any(|x| x.name == a), "{n} lacks {a}");
            }
        } else {
            assert!(args.iter().any(|a| a.required == Some(true)), "{n}");
        }
    }
    let get = |name: &str, args: Value| {
        let Value::Object(args) = args else {
            unreachable!()
        };
        GetPromptRequestParams::new(name.to_string()).with_arguments(args)
    };
    let r = client
        .get_prompt(get("triage_gpu_node", json!({"node_name": "gpu-node-5"})))
        .await
        .unwrap();
    let t = serde_json::to_string(&r.messages).unwrap();
    assert!(
        t.contains("gpu-node-5") && t.contains("get_gpu_health"),
        "{t}"
    );
    assert!(
        t.find("get_gpu_health") < t.find("get_gpu_processes"),
        "health must come first: {t}"
    );
    let r = client
        .get_prompt(get(
            "investigate_xid",
            json!({"node_name": "n1", "xid": "79"}),
        ))
        .await
        .unwrap();
    let t = serde_json::to_string(&r.messages).unwrap();
    assert!(
        t.contains("analyze_xid_errors") && t.contains("xid://catalog/79"),
        "{t}"
    );
    let r = client
        .get_prompt(get(
            "training_job_hung_or_slow",
            json!({"nodes": "a,b", "symptom": "slow"}),
        ))
        .await
        .unwrap();
    let t = serde_json::to_string(&r.messages).unwrap();
    assert!(
        t.contains("inspect_topology") && t.contains("NVLink") && t.contains("scan_gpu_nodes"),
        "{t}"
    );
    // With the job's namespace and name the workload diagnosis comes first.
    let r = client
        .get_prompt(get(
            "training_job_hung_or_slow",
            json!({"namespace": "ml", "job": "llama", "symptom": "hung"}),
        ))
        .await
        .unwrap();
    let t = serde_json::to_string(&r.messages).unwrap();
    assert!(t.contains("diagnose_workload") && t.contains("`ml`"), "{t}");
    assert!(
        t.find("diagnose_workload") < t.find("scan_gpu_nodes"),
        "{t}"
    );
    client.cancel().await.unwrap();
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The prompts are written by hand: every tool-shaped name in them (snake_case, not an argument name, not
/// part of a dotted finding code like `xid.*` or `collective.lagging_rank`) must be a registered tool, and
/// together they must name every read-only tool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_name_only_registered_tools_and_every_read_only_one() {
    use std::collections::BTreeSet;
    let listed = tools::listed(LAUNCHER, true);
    let registered: BTreeSet<String> = listed
        .iter()
        .filter_map(|t| t["name"].as_str().map(String::from))
        .collect();
    let mut not_tools: BTreeSet<String> = listed
        .iter()
        .filter_map(|t| t["inputSchema"]["properties"].as_object())
        .flat_map(|p| p.keys().cloned())
        .collect();
    let client = connect(&[]).await;
    let prompts = client.list_all_prompts().await.unwrap();
    let mut texts = Vec::new();
    for p in &prompts {
        let args = p.arguments.clone().unwrap_or_default();
        not_tools.insert(p.name.clone());
        not_tools.extend(args.iter().map(|a| a.name.clone()));
        // Once with every argument, once with the required ones only: the texts differ.
        for all in [true, false] {
            let given: serde_json::Map<String, Value> = args
                .iter()
                .filter(|a| all || a.required == Some(true))
                .map(|a| (a.name.clone(), json!("x")))
                .collect();
            let r = client
                .get_prompt(GetPromptRequestParams::new(p.name.clone()).with_arguments(given))
                .await
                .unwrap_or_else(|e| panic!("get_prompt {}: {e}", p.name));
            strings(&serde_json::to_value(&r.messages).unwrap(), &mut texts);
        }
    }
    client.cancel().await.unwrap();
    let word = regex::Regex::new(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+").unwrap();
    let mut named = BTreeSet::new();
    for t in &texts {
        for m in word.find_iter(t) {
            let before = t[..m.start()].chars().next_back();
            let after = t[m.end()..].chars().next();
            let dotted = before == Some('.')
                || (after == Some('.')
                    && t[m.end() + 1..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '*'));
            let inside_word = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                || after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !dotted && !inside_word && !not_tools.contains(m.as_str()) {
                named.insert(m.as_str().to_string());
            }
        }
    }
    let unknown: Vec<&String> = named.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "the prompts name tools that are not registered: {unknown:?}"
    );
    let missing: Vec<String> = tools::read_only_tools(LAUNCHER)
        .into_iter()
        .filter(|t| !named.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "no prompt names these read-only tools: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xid_catalog_resources() {
    let client = connect(&[]).await;
    let resources = client.list_all_resources().await.unwrap();
    assert!(
        resources.iter().any(|r| r.uri == "xid://catalog"),
        "{resources:?}"
    );
    let templates = client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|t| t.uri_template == "xid://catalog/{code}"),
        "{templates:?}"
    );
    let index = client
        .read_resource(ReadResourceRequestParams::new("xid://catalog"))
        .await
        .unwrap();
    let body = serde_json::to_string(&index.contents).unwrap();
    assert!(body.contains("NVIDIA XID catalog"), "{body}");
    assert!(
        body.contains("| 79 | ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS |"),
        "{body}"
    );
    let one = client
        .read_resource(ReadResourceRequestParams::new("xid://catalog/79"))
        .await
        .unwrap();
    let text = one.contents[0].clone();
    let v = serde_json::to_value(&text).unwrap();
    let entry: Value = serde_json::from_str(v["text"].as_str().unwrap()).unwrap();
    assert_eq!(entry["code"], 79);
    assert_eq!(
        entry["entry"]["mnemonic"],
        "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"
    );
    assert_eq!(entry["entry"]["immediate_action"], "RESTART_BM");
    let missing = client
        .read_resource(ReadResourceRequestParams::new("xid://catalog/9999"))
        .await;
    assert!(missing.is_err());
    let bad = client
        .read_resource(ReadResourceRequestParams::new("xid://catalog/not-a-number"))
        .await;
    assert!(bad.is_err());
    client.cancel().await.unwrap();
}

/// The answer is a summary; the probe's whole report stays one resources/read away for the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_reports_are_resources_linked_from_the_answer() {
    let client = connect(&[]).await;
    let r = call(&client, "inspect_topology", json!({"node_name": "local"})).await;
    let sc = r.structured_content.clone().unwrap();
    let uri = sc["run"]["report_uri"]
        .as_str()
        .expect("report_uri")
        .to_string();
    assert!(
        uri.starts_with("probe://") && uri.ends_with("/local/inspect_topology"),
        "{uri}"
    );
    assert!(text_of(&r).contains(&uri), "{}", text_of(&r));
    let listed = client.list_all_resources().await.unwrap();
    assert!(listed.iter().any(|x| x.uri == uri), "{listed:?}");
    let read = client
        .read_resource(ReadResourceRequestParams::new(uri.clone()))
        .await
        .unwrap();
    let json = match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => text.clone(),
        other => panic!("{other:?}"),
    };
    let full: Value = serde_json::from_str(&json).unwrap();
    // The summary left the healthy NVLinks and GPU pairs out; the resource has every one.
    let links = |v: &Value| -> usize {
        v["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["nvlinks"].as_array().unwrap().len())
            .sum()
    };
    let full = &full["topology"];
    assert!(links(full) > links(&sc["report"]), "{json}");
    assert_eq!(full["pairs"].as_array().unwrap().len(), 28);
    // An unknown or evicted report is a clear error.
    let err = client
        .read_resource(ReadResourceRequestParams::new("probe://999999/local/x"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no report `probe://999999/local/x` of yours")
            && err.to_string().contains("oldest dropped first"),
        "{err}"
    );
    client.cancel().await.unwrap();
}

/// `gpu` narrows describe_gpu_node to one GPU (and the node's own findings); an absent GPU is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_narrows_to_one_gpu() {
    let client = connect(&[]).await;
    let r = call(
        &client,
        "describe_gpu_node",
        json!({"node_name": "local", "gpu": 4}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text_of(&r));
    let rep = &r.structured_content.clone().unwrap()["report"];
    for part in ["inventory", "telemetry", "ecc", "processes"] {
        let gpus = rep[part]["gpus"].as_array().unwrap();
        assert!(gpus.len() <= 1, "{part}: {gpus:?}");
    }
    assert_eq!(rep["inventory"]["gpus"][0]["index"], 4);
    let mut codes = Vec::new();
    for g in rep["health"]["gpus"].as_array().unwrap() {
        assert_eq!(g["index"], 4);
        codes.extend(
            g["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["code"].clone()),
        );
    }
    assert!(codes.contains(&json!("xid.79")), "{codes:?}");
    let r = call(
        &client,
        "describe_gpu_node",
        json!({"node_name": "local", "gpu": 9}),
    )
    .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("no GPU 9"), "{}", text_of(&r));
    client.cancel().await.unwrap();
}

/// A client that declares the tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663).
fn tasks_client() -> rmcp::model::ClientConfig {
    rmcp::model::ClientConfig::new(
        rmcp::model::ClientCapabilities::builder()
            .enable_tasks()
            .build(),
        rmcp::model::Implementation::new("tasks-test", "0"),
    )
}

/// Start `tool` as a task: its id.
async fn start_task<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> String {
    match client
        .call_tool_once(common::mcp::request(tool, args))
        .await
        .unwrap()
    {
        CallToolResponse::Task(t) => t.task.task_id,
        other => panic!("{tool}: expected a task, got {other:?}"),
    }
}

/// Poll `tasks/get` until the task settles.
async fn settled<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    id: &str,
) -> rmcp::model::DetailedTask {
    for _ in 0..600 {
        let t = client.get_task(GetTaskParams::new(id)).await.unwrap().task;
        if t.status().is_terminal() {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("task {id} did not settle in 30 s");
}

/// Connect as [`tasks_client`] on `version`: 2026-07-28 by `server/discover` (the extension declared in each
/// request's `_meta`), older by `initialize` (declared there only).
async fn tasks_session(
    cmd: Command,
    version: ProtocolVersion,
) -> RunningService<RoleClient, rmcp::model::ClientConfig> {
    let transport = TokioChildProcess::new(cmd).unwrap();
    if version == ProtocolVersion::V_2026_07_28 {
        tasks_client()
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![version],
                },
            )
            .await
            .unwrap()
    } else {
        tasks_client().serve(transport).await.unwrap()
    }
}

/// The long tools answer with an extension task (SEP-2663) only a request that itself declares the tasks
/// extension in its `_meta` (2026-07-28); the result is read with tasks/get. A 2025-11-25 client that
/// declared the extension at initialize only gets plain results (that revision's own tasks are asked for
/// with `params.task`: tests/mcp-sdk/client.mjs). Short tools stay plain calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tools_run_as_tasks_only_where_the_request_declares_the_extension() {
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let client = tasks_session(serve_cmd(&[]), version.clone()).await;
        assert_eq!(client.peer_info().unwrap().protocol_version, version);
        assert!(
            client.peer_info().unwrap().capabilities.supports_tasks(),
            "{version}: the server does not declare the tasks extension"
        );
        match client
            .call_tool_once(common::mcp::request(
                "get_gpu_health",
                json!({"node_name": "local"}),
            ))
            .await
            .unwrap()
        {
            CallToolResponse::Complete(r) => assert_eq!(r.is_error, Some(false)),
            other => panic!("{version}: a short tool became {other:?}"),
        }
        if version == ProtocolVersion::V_2025_11_25 {
            match client
                .call_tool_once(common::mcp::request("scan_gpu_nodes", json!({})))
                .await
                .unwrap()
            {
                CallToolResponse::Complete(r) => {
                    assert!(r.structured_content.unwrap()["nodes_total"] == 1)
                }
                other => panic!("{version}: declared at initialize only, got {other:?}"),
            }
            client.cancel().await.unwrap();
            continue;
        }
        for (tool, args, key) in [
            ("scan_gpu_nodes", json!({}), "nodes_total"),
            (
                "collect_evidence",
                json!({"node_name": "local", "time_limit_secs": 5}),
                "evidence",
            ),
        ] {
            let id = start_task(&client, tool, args).await;
            let t = settled(&client, &id).await;
            let TaskPayload::Completed { result } = &t.payload else {
                panic!("{version} {tool}: {t:?}")
            };
            assert!(
                result["structuredContent"].get(key).is_some(),
                "{version} {tool}: {result:?}"
            );
            if tool == "scan_gpu_nodes" {
                assert_eq!(
                    t.task.status_message.as_deref(),
                    Some(
                        format!(
                            "1 of 1 nodes answered; {} with findings (last: local)",
                            result["structuredContent"]["needs_attention_total"]
                        )
                        .as_str()
                    )
                );
            }
        }
        // An unknown task id is a protocol error (-32602), not someone else's result.
        let err = client
            .get_task(GetTaskParams::new("00000000-0000-4000-8000-000000000000"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("unknown task"), "{err}");
        client.cancel().await.unwrap();
    }
}

/// tasks/cancel stops the task's probe (the process, in local mode) and the task settles `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_stops_its_probe() {
    let dir = tempfile::tempdir().unwrap();
    let probe = hanging_probe(dir.path());
    let client = tasks_session(hang_cmd(&probe, &[]), ProtocolVersion::V_2026_07_28).await;
    let id = start_task(&client, "scan_gpu_nodes", json!({})).await;
    let pid = wait_pid(&dir.path().join("pid"), 10);
    assert!(alive(pid));
    let t = client.get_task(GetTaskParams::new(&id)).await.unwrap().task;
    assert_eq!(t.status(), TaskStatus::Working);
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .unwrap();
    assert!(wait_dead(pid, 5), "probe {pid} survived tasks/cancel");
    assert_eq!(settled(&client, &id).await.status(), TaskStatus::Cancelled);
    client.cancel().await.unwrap();
}

/// A conversation about one node: five different read-only tools in a row cost one probe run (node-probe
/// `describe`, counted by a wrapper), and each later answer says it came from that reading and how old it
/// is; `max_age_s: 0` reads the node again; an operator action drops the reading, so the next question
/// probes afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_costs_one_probe() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs");
    let probe = fake_probe(
        dir.path(),
        "counting-probe",
        &format!(
            "echo \"$*\" >> {}\nexec {} \"$@\"",
            log.display(),
            node_probe().display()
        ),
    );
    let describes = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split_whitespace().any(|w| w == "describe"))
            .count()
    };
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/operator/fixtures/h100-hgx.json"
    );
    let mut cmd = local_serve(LAUNCHER, fixture, &probe);
    cmd.arg("--evidence-dir")
        .arg(dir.path().join("evidence"))
        .args(["--mode", "operator"]);
    let client = plain_client(cmd).await;
    let node = json!({"node_name": "local"});
    let tools = [
        "get_gpu_health",
        "get_gpu_processes",
        "inspect_topology",
        "snapshot_ecc",
        "get_gpu_inventory",
    ];
    let mut first_ran_in = None;
    for (i, tool) in tools.iter().enumerate() {
        let r = call(&client, tool, node.clone()).await;
        let sc = common::mcp::structured(&r);
        let run = &sc["run"];
        let text = text_of(&r);
        if i == 0 {
            assert_eq!(run["reading_age_s"], 0, "{tool}: {run}");
            assert!(run.get("reading_reused").is_none(), "{tool}: {run}");
            assert!(!text.contains(" s ago"), "{text}");
            first_ran_in = Some(run["ran_in"].clone());
        } else {
            assert_eq!(run["reading_reused"], true, "{tool}: {run}");
            let age = run["reading_age_s"].as_u64().expect("reading_age_s");
            assert!(age <= 20, "{tool}: {run}");
            assert!(
                text.contains(&format!("read {age} s ago")),
                "{tool}: the text says the reading's age: {text}"
            );
            assert_eq!(run["timings"], json!([]), "{tool}: no phase ran: {run}");
            assert_eq!(Some(run["ran_in"].clone()), first_ran_in);
        }
        assert_eq!(describes(), 1, "after {tool}: one probe run in all");
    }
    // The age grows with the reading's.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = call(&client, "get_gpu_telemetry", node.clone()).await;
    let run = &common::mcp::structured(&r)["run"];
    assert!(run["reading_age_s"].as_u64().unwrap() >= 1, "{run}");
    assert_eq!(describes(), 1);
    // The caller asks for a fresher reading than the kept one: the node is read now.
    let r = call(
        &client,
        "describe_gpu_node",
        json!({"node_name": "local", "max_age_s": 0}),
    )
    .await;
    let run = &common::mcp::structured(&r)["run"];
    assert_eq!(run["reading_age_s"], 0, "{run}");
    assert_eq!(describes(), 2);
    // ...and that new reading answers the next question.
    let r = call(&client, "get_gpu_health", node.clone()).await;
    assert_eq!(common::mcp::structured(&r)["run"]["reading_reused"], true);
    assert_eq!(describes(), 2);
    // An operator action (here its preflight: a dry run) drops the node's reading.
    let r = call(
        &client,
        "kill_gpu_process",
        json!({"node_name": "local", "pid": 4242, "grace_seconds": 5, "dry_run": true}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text_of(&r));
    let r = call(&client, "get_gpu_health", node.clone()).await;
    let run = &common::mcp::structured(&r)["run"];
    assert_eq!(
        run["reading_age_s"], 0,
        "read afresh after the action: {run}"
    );
    assert!(run.get("reading_reused").is_none(), "{run}");
    assert_eq!(describes(), 3);
    client.cancel().await.unwrap();

    // `--reading-max-age 0` keeps nothing: every question probes.
    std::fs::remove_file(&log).unwrap();
    let mut cmd = local_serve(LAUNCHER, fixture, &probe);
    cmd.args(["--reading-max-age", "0"]);
    let client = plain_client(cmd).await;
    for tool in &tools[1..4] {
        let r = call(&client, tool, node.clone()).await;
        assert!(
            common::mcp::structured(&r)["run"]
                .get("reading_reused")
                .is_none()
        );
    }
    assert_eq!(describes(), 3);
    client.cancel().await.unwrap();
}
