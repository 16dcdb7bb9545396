//! Operator mode through the real `k8s-gpu-mcp serve` binary and the rmcp client, in local simulated
//! mode (node-probe replays tests/operator/fixtures/h100-hgx.json: nothing real is signalled or reset):
//! the tools are absent in read-only mode and present with `--mode operator` with destructiveHint; the
//! `confirm` argument must repeat the target; elicitation confirms when the client supports it; every
//! action is a JSON audit line on stderr; cordon needs a cluster.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::mcp::{connect, local_serve, request, structured, text_of, tool_names};
use common::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, ElicitRequestParams, ElicitResult,
    ElicitationAction, ElicitationCapability,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};

/// The operator tools, written out: the tests below check that the registry puts exactly these (and only
/// these) behind `--mode operator`.
const OPERATOR_TOOLS: &[&str] = &[
    "kill_gpu_process",
    "reset_gpu",
    "cordon_gpu_node",
    "mark_gpu_node",
    "clear_gpu_node_mark",
];

fn fixture() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/operator/fixtures/h100-hgx.json"
    )
    .to_string()
}

struct Server<H: ClientHandler> {
    client: RunningService<RoleClient, H>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl<H: ClientHandler> Server<H> {
    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// The JSON audit lines the launcher wrote on stderr.
    fn audit_lines(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v.get("audit").cloned())
            .collect()
    }
    async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        self.client
            .call_tool(request(tool, args))
            .await
            .unwrap_or_else(|e| panic!("{tool}: JSON-RPC error {e}\n{}", self.stderr()))
    }
}

async fn start<H: ClientHandler>(handler: H, extra: &[&str]) -> Server<H> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("launcher.log");
    let mut cmd = local_serve(LAUNCHER, &fixture(), &node_probe());
    cmd.arg("--evidence-dir")
        .arg(dir.path().join("evidence"))
        .args(extra);
    let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
    let client = connect(handler, cmd, stderr)
        .await
        .expect("handshake")
        .client;
    Server {
        client,
        log,
        _dir: dir,
    }
}

/// A client that declares elicitation and answers every request with `approve`, counting them.
#[derive(Clone)]
struct Approver {
    approve: bool,
    asked: Arc<AtomicUsize>,
    last_message: Arc<std::sync::Mutex<String>>,
}

impl ClientHandler for Approver {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        info.capabilities.elicitation = Some(ElicitationCapability::new());
        info
    }
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            *self.last_message.lock().unwrap() = message.clone();
        }
        Ok(if self.approve {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }
}

fn approver(approve: bool) -> Approver {
    Approver {
        approve,
        asked: Arc::default(),
        last_message: Arc::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tools_absent_in_read_only_mode_present_in_operator_mode() {
    let s = start((), &[]).await;
    let names = tool_names(&s.client).await;
    for &t in OPERATOR_TOOLS {
        assert!(
            !names.contains(&t.to_string()),
            "{t} listed in read-only mode"
        );
    }
    // Calling one anyway is refused: the tool does not exist here.
    let r = s
        .client
        .call_tool(
            CallToolRequestParams::new("kill_gpu_process").with_arguments(
                json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4242"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await;
    assert!(
        r.is_err() || r.as_ref().is_ok_and(|x| x.is_error == Some(true)),
        "{r:?}"
    );
    assert!(s.audit_lines().is_empty());
    s.client.cancel().await.unwrap();

    let s = start((), &["--mode", "operator"]).await;
    let tools = s.client.list_all_tools().await.unwrap();
    let mut expected: Vec<String> = OPERATOR_TOOLS.iter().map(|t| t.to_string()).collect();
    expected.sort();
    assert_eq!(
        tools::operator_only_tools(LAUNCHER),
        expected,
        "the tools only --mode operator lists (launcher/src/mcp/tools/mod.rs)"
    );
    for &t in OPERATOR_TOOLS {
        let tool = tools
            .iter()
            .find(|x| x.name == t)
            .unwrap_or_else(|| panic!("{t} missing in operator mode"));
        let ann = tool.annotations.as_ref().expect("annotations");
        assert_eq!(ann.destructive_hint, Some(true), "{t}");
        assert_eq!(ann.read_only_hint, Some(false), "{t}");
        assert!(tool.output_schema.is_some(), "{t}");
        let schema = serde_json::to_value(&tool.input_schema).unwrap();
        assert!(schema["properties"]["confirm"].is_object(), "{t}: {schema}");
    }
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_must_repeat_the_target() {
    let s = start((), &["--mode", "operator"]).await;
    // Mismatch: refused with the expected target named, nothing run, audited.
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4243"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    let t = text_of(&r);
    assert!(
        t.contains("confirmation mismatch")
            && t.contains("expected `local/pid/4242`, got `local/pid/4243`")
            && t.contains("Nothing was done"),
        "{t}"
    );
    // Missing: refused with what to send.
    let r = s
        .call("reset_gpu", json!({"node_name": "local", "gpu": "1"}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("confirm=\"local/gpu/1\""),
        "{}",
        text_of(&r)
    );
    let audit = s.audit_lines();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["action"], "kill_gpu_process");
    assert_eq!(audit[0]["target"], "local/pid/4242");
    assert_eq!(audit[0]["result"], "refused");
    assert!(audit[0]["user"].as_str().unwrap().starts_with("local:"));
    assert_eq!(audit[1]["target"], "local/gpu/1");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_actions_run_the_probe_simulated() {
    let s = start((), &["--mode", "operator"]).await;
    let v = structured(
        &s.call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "grace_seconds": 5, "confirm": "local/pid/4242"}),
        )
        .await,
    );
    assert_eq!(v["result"], "simulated", "{v}");
    assert_eq!(v["confirmed_by"], "confirm_argument");
    assert_eq!(v["report"]["simulated"], true);
    assert_eq!(v["report"]["gpus"], json!([0]));
    // pid 1: the probe's preflight refuses; a refusal is a result, not a tool error.
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 1, "confirm": "local/pid/1"}),
        )
        .await;
    let v = structured(&r);
    assert_eq!(v["result"], "refused", "{v}");
    assert!(text_of(&r).contains("REFUSED"), "{}", text_of(&r));
    assert!(v["report"]["reasons"].to_string().contains("not_init"));
    // Reset: GPU 0 is busy (refused), GPU 1 allowed; a dry run needs no confirmation.
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "0", "confirm": "local/gpu/0"}),
        )
        .await,
    );
    assert_eq!(v["result"], "refused", "{v}");
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "dry_run": true}),
        )
        .await,
    );
    assert_eq!(v["result"], "dry_run", "{v}");
    assert_eq!(v["confirmed_by"], "not_needed");
    let results: Vec<String> = s
        .audit_lines()
        .iter()
        .map(|a| a["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(results, ["simulated", "refused", "refused", "dry_run"]);
    // Bad arguments are refused before anything runs.
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "grace_seconds": 100000, "confirm": "local/pid/4242"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    s.client.cancel().await.unwrap();
}

/// A destructive action keeps the evidence archive first and its audit record names it; an explicit
/// skip acts without one and the audit says so; a dry run collects nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_kept_before_acting_and_named_in_the_audit() {
    let s = start((), &["--mode", "operator"]).await;
    let dir = s._dir.path().join("evidence");
    let v = structured(
        &s.call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "grace_seconds": 5, "confirm": "local/pid/4242"}),
        )
        .await,
    );
    assert_eq!(v["result"], "simulated", "{v}");
    let name = v["evidence"]["name"].as_str().expect("evidence name");
    let sha = v["evidence"]["sha256"].as_str().unwrap();
    let bytes = std::fs::read(dir.join(name)).expect("the archive is on disk");
    assert_eq!(v["evidence"]["bytes"], bytes.len());
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, sha);
    let audit = s.audit_lines();
    let msg = audit[0]["message"].as_str().unwrap();
    assert!(msg.contains(name) && msg.contains(sha), "{msg}");
    let v = structured(
        &s.call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "grace_seconds": 5,
                   "confirm": "local/pid/4242", "skip_evidence": true}),
        )
        .await,
    );
    assert_eq!(v["evidence_skipped"], true, "{v}");
    assert!(v.get("evidence").is_none());
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "dry_run": true}),
        )
        .await,
    );
    assert!(
        v.get("evidence").is_none() && v.get("evidence_skipped").is_none(),
        "{v}"
    );
    let audit = s.audit_lines();
    assert!(
        audit[1]["message"]
            .as_str()
            .unwrap()
            .contains("evidence skipped (skip_evidence=true)"),
        "{}",
        audit[1]
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elicitation_asks_the_user() {
    // Approved: the user saw the preflight, no `confirm` needed.
    let a = approver(true);
    let s = start(a.clone(), &["--mode", "operator"]).await;
    let v = structured(
        &s.call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242}),
        )
        .await,
    );
    assert_eq!(v["result"], "simulated", "{v}");
    assert_eq!(v["confirmed_by"], "elicitation");
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    assert!(a.last_message.lock().unwrap().contains("local/pid/4242"));
    // A refused preflight is answered without asking.
    let v = structured(
        &s.call("kill_gpu_process", json!({"node_name": "local", "pid": 1}))
            .await,
    );
    assert_eq!(v["result"], "refused");
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    // A wrong `confirm` is refused without asking.
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/9"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    s.client.cancel().await.unwrap();

    // Declined: nothing is done, and it is audited as refused.
    let d = approver(false);
    let s = start(d.clone(), &["--mode", "operator"]).await;
    let r = s
        .call("reset_gpu", json!({"node_name": "local", "gpu": "1"}))
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    assert_eq!(d.asked.load(Ordering::SeqCst), 1);
    let last = s.audit_lines().pop().unwrap();
    assert_eq!(last["result"], "refused");
    s.client.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_needs_a_cluster() {
    let s = start((), &["--mode", "operator"]).await;
    let r = s
        .call(
            "cordon_gpu_node",
            json!({"node_name": "local", "reason": "test", "confirm": "local"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("needs a cluster"), "{}", text_of(&r));
    s.client.cancel().await.unwrap();
}
