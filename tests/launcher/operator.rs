//! Operator mode through the real `k8s-gpu-mcp serve` binary and the rmcp client, in local simulated
//! mode (node-probe replays tests/operator/fixtures/h100-hgx.json: nothing real is signalled or reset):
//! the tools are absent in read-only mode and present with `--mode operator` with destructiveHint; the
//! `confirm` argument must repeat the target; a person confirms where the client allows it (elicitation on
//! 2025-11-25, an input request on 2026-07-28, forged or replayed requestState refused), and where it does
//! not, the answer and the audit say no person was asked; every action is a JSON audit line on stderr;
//! cordon needs a cluster.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::mcp::{connect, local_serve, request, structured, text_of, tool_names};
use common::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, InputRequest, InputRequiredResult,
    InputResponses, ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient};
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
    start_on(handler, extra, false).await
}

/// `start`, the client on protocol 2026-07-28 (`server/discover`, capabilities sent in every request's
/// `_meta`) when `modern`, else on 2025-11-25 (`initialize`).
async fn start_on<H: ClientHandler>(handler: H, extra: &[&str], modern: bool) -> Server<H> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("launcher.log");
    let mut cmd = local_serve(LAUNCHER, &fixture(), &node_probe());
    cmd.arg("--evidence-dir")
        .arg(dir.path().join("evidence"))
        .args(extra);
    let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
    let client = if modern {
        let (transport, _) = TokioChildProcess::builder(cmd)
            .stderr(stderr)
            .spawn()
            .expect("spawn k8s-gpu-mcp serve");
        handler
            .serve_with_lifecycle(
                transport,
                ClientLifecycleMode::Discover {
                    preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                },
            )
            .await
            .expect("server/discover")
    } else {
        connect(handler, cmd, stderr)
            .await
            .expect("handshake")
            .client
    };
    let want = if modern {
        ProtocolVersion::V_2026_07_28
    } else {
        ProtocolVersion::V_2025_11_25
    };
    assert_eq!(
        client.peer_info().expect("server info").protocol_version,
        want
    );
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

/// The override of unknown GPU holders is a person's, in the confirmation form: a tool argument naming it,
/// in any spelling, is refused as an argument the tool does not take, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_smuggled_as_an_argument_is_refused() {
    let s = start((), &["--mode", "operator"]).await;
    for (tool, mut args) in [
        (
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": "local/gpu/1"}),
        ),
        (
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4242"}),
        ),
    ] {
        for field in [
            "override_unknown_holders",
            "override",
            "overrideUnknownHolders",
        ] {
            args[field] = json!(true);
            let r = s.call(tool, args.clone()).await;
            assert_eq!(r.is_error, Some(true), "{tool} {field}");
            let t = text_of(&r);
            assert!(
                t.contains(field) && t.contains("unknown field"),
                "{tool} {field}: {t}"
            );
            args.as_object_mut().unwrap().remove(field);
        }
    }
    // Refused at the arguments: no action was audited, nothing was asked of the probe.
    assert!(s.audit_lines().is_empty(), "{:?}", s.audit_lines());
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
    assert_eq!(v["human_confirmed"], false);
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

/// Where no person can be asked, a dry run gives `confirm_with` (the target and the GPU it showed); an act
/// given it is bound to that GPU: the probe checks it, a pin naming another GPU refuses, a pin carrying an
/// override or on another action is refused before anything runs, and the audit says what bound the act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_argument_from_a_dry_run_pins_the_gpu() {
    let s = start((), &["--mode", "operator"]).await;
    let r = s
        .call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "dry_run": true}),
        )
        .await;
    let v = structured(&r);
    let with = v["confirm_with"]
        .as_str()
        .expect("a dry run gives confirm_with")
        .to_string();
    let pci = v["report"]["target"]["pci_bus_id"].as_str().unwrap();
    assert!(
        with.starts_with("local/gpu/1@") && with.contains(pci),
        "{with}"
    );
    assert!(
        text_of(&r).contains(&format!("confirm=\"{with}\"")),
        "{}",
        text_of(&r)
    );
    // The act with it: the probe checked the GPU against the pin, and the audit names the binding.
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": with, "skip_evidence": true}),
        )
        .await,
    );
    assert_eq!(v["result"], "simulated", "{v}");
    assert_gpu_pinned(&v, "1");
    let audit = s.audit_lines();
    let msg = audit.last().unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("bound by confirm to pci="), "{msg}");
    // A pin naming another GPU (GPU 0's PCI address): the probe refuses, naming the mismatch.
    let other = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "0", "dry_run": true}),
        )
        .await,
    );
    let other_pci = other["report"]["target"]["pci_bus_id"].as_str().unwrap();
    assert_ne!(other_pci, pci);
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": format!("local/gpu/1@pci={other_pci}"),
                   "skip_evidence": true}),
        )
        .await,
    );
    assert_eq!(v["result"], "refused", "{v}");
    assert!(
        v["report"]["reasons"].to_string().contains(other_pci),
        "{v}"
    );
    // Refused before anything runs: an override in `confirm`, an empty or malformed pin, a pin on a kill,
    // a pin after another target.
    for (tool, args) in [
        (
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": format!("{with};seen=0011223344556677")}),
        ),
        (
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": "local/gpu/1@"}),
        ),
        (
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": "local/gpu/1@pci"}),
        ),
        (
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "confirm": format!("local/gpu/0@pci={pci}")}),
        ),
        (
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4242@pci=x"}),
        ),
    ] {
        let before = s.audit_lines().len();
        let r = s.call(tool, args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}: {}", text_of(&r));
        assert!(text_of(&r).contains("Nothing was done"), "{}", text_of(&r));
        let after = s.audit_lines();
        assert_eq!(after.len(), before + 1, "{args}");
        assert_eq!(after.last().unwrap()["result"], "refused");
    }
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

/// The act's report shows the probe checked the GPU against the one the preflight showed the person.
fn assert_gpu_pinned(v: &Value, gpu: &str) {
    let target = &v["report"]["target"];
    assert_eq!(target["index"].to_string(), gpu, "{v}");
    let id = v["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "gpu_identity")
        .unwrap_or_else(|| panic!("the act was not pinned: {v}"));
    assert_eq!(id["status"], "pass", "{id}");
    let said = id["evidence"].as_str().unwrap();
    for field in ["pci_bus_id", "uuid"] {
        assert!(said.contains(target[field].as_str().unwrap()), "{said}");
    }
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
    assert_eq!(v["human_confirmed"], true);
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    let audit = s.audit_lines();
    assert_eq!(audit[0]["confirmed_by"], "elicitation", "{audit:?}");
    assert_eq!(audit[0]["human_confirmed"], true);
    assert!(a.last_message.lock().unwrap().contains("local/pid/4242"));
    // A reset's act is pinned to the GPU the person saw.
    let v = structured(
        &s.call("reset_gpu", json!({"node_name": "local", "gpu": "1"}))
            .await,
    );
    assert_eq!(v["confirmed_by"], "elicitation", "{v}");
    assert_gpu_pinned(&v, "1");
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
    // A refused preflight is answered without asking.
    let v = structured(
        &s.call("kill_gpu_process", json!({"node_name": "local", "pid": 1}))
            .await,
    );
    assert_eq!(v["result"], "refused");
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
    // A wrong `confirm` is refused without asking.
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/9"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
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

/// run_gpu_diagnostic: level 1 reads and asks no one; levels 2-3 load the GPUs, so they need operator mode and a
/// person's confirmation (the `confirm` argument where no one can be asked, elicitation on 2025-11-25, an input
/// request on 2026-07-28), audited with the run's outcome; they keep their own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcgm_levels_2_3_need_operator_mode_and_a_person() {
    let level2 = json!({"node_name": "local", "gpus": "1", "level": 2});
    // Read-only mode: refused, whatever the deadline.
    let s = start((), &["--probe-timeout", "1000"]).await;
    let r = s.call("run_gpu_diagnostic", level2.clone()).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("only in operator mode"),
        "{}",
        text_of(&r)
    );
    // Level 1 runs without asking (the simulated node has no dcgmi: not run, said).
    let v = structured(
        &s.call("run_gpu_diagnostic", json!({"node_name": "local"}))
            .await,
    );
    assert_eq!(v["report"]["outcome"], "not_run", "{v}");
    assert!(v.get("confirmed_by").is_none());
    s.client.cancel().await.unwrap();

    // Operator mode with the launcher's default probe deadline (120 s): level 2 keeps its own deadline, so
    // it goes straight to the confirmation, not to a refusal naming flags.
    let s = start((), &["--mode", "operator"]).await;
    let r = s.call("run_gpu_diagnostic", level2.clone()).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("needs confirmation") && !text_of(&r).contains("--probe-timeout"),
        "{}",
        text_of(&r)
    );
    // Level 2 needs an explicit GPU list.
    let r = s
        .call(
            "run_gpu_diagnostic",
            json!({"node_name": "local", "level": 2}),
        )
        .await;
    assert!(text_of(&r).contains("level 1 only"), "{}", text_of(&r));
    s.client.cancel().await.unwrap();

    // No way to ask a person: `confirm` must repeat the target.
    let s = start((), &["--mode", "operator", "--probe-timeout", "1000"]).await;
    let r = s.call("run_gpu_diagnostic", level2.clone()).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("local/gpus/1/level-2"),
        "{}",
        text_of(&r)
    );
    let mut confirmed = level2.clone();
    confirmed["confirm"] = json!("local/gpus/1/level-2");
    let v = structured(&s.call("run_gpu_diagnostic", confirmed).await);
    assert_eq!(v["confirmed_by"], "confirm_argument", "{v}");
    s.client.cancel().await.unwrap();

    // Elicitation: a person approves; the audit names the run's outcome.
    let a = approver(true);
    let s = start(
        a.clone(),
        &["--mode", "operator", "--probe-timeout", "1000"],
    )
    .await;
    let v = structured(&s.call("run_gpu_diagnostic", level2.clone()).await);
    assert_eq!(v["confirmed_by"], "elicitation", "{v}");
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    assert!(
        a.last_message
            .lock()
            .unwrap()
            .contains("local/gpus/1/level-2")
    );
    let last = s.audit_lines().pop().unwrap();
    assert_eq!(last["action"], "run_gpu_diagnostic");
    assert_eq!(last["result"], "not_run", "{last}");
    s.client.cancel().await.unwrap();

    // Protocol 2026-07-28: an input request; a `confirm` the model filled in does not replace the person,
    // and a declined run does nothing and is audited as refused.
    let a = approver(true);
    let s = start_on(a.clone(), &["--mode", "operator"], true).await;
    let mut with_confirm = level2.clone();
    with_confirm["confirm"] = json!("local/gpus/1/level-2");
    let v = structured(&s.call("run_gpu_diagnostic", with_confirm).await);
    assert_eq!(v["confirmed_by"], "input_request", "{v}");
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    assert!(
        a.last_message
            .lock()
            .unwrap()
            .contains("local/gpus/1/level-2")
    );
    s.client.cancel().await.unwrap();
    let d = approver(false);
    let s = start_on(d.clone(), &["--mode", "operator"], true).await;
    let r = s.call("run_gpu_diagnostic", level2.clone()).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    assert_eq!(d.asked.load(Ordering::SeqCst), 1);
    let audit = s.audit_lines();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["result"], "refused", "{audit:?}");
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

/// The arguments of a tool call, as a JSON object.
fn args_of(v: Value) -> rmcp::model::JsonObject {
    v.as_object().cloned().expect("a JSON object")
}

/// The input request of a first round: its requestState, after checking it carries one elicitation.
fn state_of(r: &InputRequiredResult) -> String {
    let reqs = r.input_requests.as_ref().expect("inputRequests");
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs.values()
            .all(|q| matches!(q, InputRequest::Elicitation(_))),
        "{reqs:?}"
    );
    r.request_state.clone().expect("requestState")
}

/// A retry answering `key` with `answer`.
fn retry(tool: &str, args: Value, state: &str, key: &str, answer: Value) -> CallToolRequestParams {
    let mut responses = InputResponses::new();
    responses.insert(key.to_string(), answer);
    CallToolRequestParams::new(tool.to_string())
        .with_arguments(args_of(args))
        .with_request_state(state)
        .with_input_responses(responses)
}

async fn once<H: ClientHandler>(s: &Server<H>, p: CallToolRequestParams) -> CallToolResponse {
    s.client
        .call_tool_once(p)
        .await
        .unwrap_or_else(|e| panic!("JSON-RPC error {e}\n{}", s.stderr()))
}

fn complete(r: CallToolResponse) -> CallToolResult {
    match r {
        CallToolResponse::Complete(r) => r,
        other => panic!("expected a final result, got {other:?}"),
    }
}

fn input_required(r: CallToolResponse) -> InputRequiredResult {
    match r {
        CallToolResponse::InputRequired(r) => r,
        other => panic!("expected an input request, got {other:?}"),
    }
}

/// Protocol 2026-07-28: the client declares elicitation in each request's `_meta`; the launcher answers
/// with an input request showing the preflight, and the client's retry carries the user's answer. rmcp's
/// `call_tool` drives the rounds through the handler, as a host does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_request_asks_the_user_on_2026_07_28() {
    let a = approver(true);
    let s = start_on(a.clone(), &["--mode", "operator"], true).await;
    // Approved: acted, confirmed by the input request, the user saw the preflight's warnings.
    let v = structured(
        &s.call("reset_gpu", json!({"node_name": "local", "gpu": "1"}))
            .await,
    );
    assert_eq!(v["result"], "simulated", "{v}");
    assert_eq!(v["confirmed_by"], "input_request");
    assert_eq!(v["human_confirmed"], true);
    assert_eq!(a.asked.load(Ordering::SeqCst), 1);
    let asked = a.last_message.lock().unwrap().clone();
    assert!(
        asked.contains("local/gpu/1") && asked.contains("persistence_mode"),
        "the user sees the target and the preflight: {asked}"
    );
    // The act of the retry is pinned to the GPU the first round showed (kept by the launcher between the
    // rounds): its PCI address and UUID, checked by the probe before anything else.
    assert_gpu_pinned(&v, "1");
    // `confirm` filled in by the model does not replace the person.
    let v = structured(
        &s.call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4242"}),
        )
        .await,
    );
    assert_eq!(v["confirmed_by"], "input_request", "{v}");
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
    // A refused preflight and a wrong `confirm` are answered without asking.
    let v = structured(
        &s.call("kill_gpu_process", json!({"node_name": "local", "pid": 1}))
            .await,
    );
    assert_eq!(v["result"], "refused");
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/9"}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text_of(&r).contains("confirmation mismatch"),
        "{}",
        text_of(&r)
    );
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
    // A dry run needs no confirmation.
    let v = structured(
        &s.call(
            "reset_gpu",
            json!({"node_name": "local", "gpu": "1", "dry_run": true}),
        )
        .await,
    );
    assert_eq!(v["confirmed_by"], "not_needed", "{v}");
    assert_eq!(a.asked.load(Ordering::SeqCst), 2);
    let audit = s.audit_lines();
    assert_eq!(audit[0]["confirmed_by"], "input_request", "{audit:?}");
    assert_eq!(audit[0]["human_confirmed"], true);
    assert!(
        audit[0]["message"]
            .as_str()
            .unwrap()
            .contains("confirmed by a person (input request)"),
        "{}",
        audit[0]
    );
    s.client.cancel().await.unwrap();

    // Declined: nothing is done, audited as refused.
    let d = approver(false);
    let s = start_on(d.clone(), &["--mode", "operator"], true).await;
    let r = s
        .call(
            "kill_gpu_process",
            json!({"node_name": "local", "pid": 4242}),
        )
        .await;
    assert_eq!(r.is_error, Some(true));
    assert!(text_of(&r).contains("declined"), "{}", text_of(&r));
    assert_eq!(d.asked.load(Ordering::SeqCst), 1);
    let audit = s.audit_lines();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["result"], "refused");
    assert!(audit[0]["message"].as_str().unwrap().contains("declined"));
    s.client.cancel().await.unwrap();
}

/// requestState comes back from the client and may be forged: only a nonce this launcher issued, unused,
/// for the same tool, target and arguments, with the user's explicit approval, lets the action run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_replayed_request_state_is_refused() {
    let s = start_on(approver(true), &["--mode", "operator"], true).await;
    let args = json!({"node_name": "local", "pid": 4242, "skip_evidence": true});
    let first = input_required(once(&s, request("kill_gpu_process", args.clone())).await);
    let state = state_of(&first);
    let key = first
        .input_requests
        .as_ref()
        .and_then(|r| r.keys().next().cloned())
        .unwrap();
    let yes = json!({"action": "accept", "content": {"approve": true}});
    let refused = |r: CallToolResult, words: &str| {
        assert_eq!(r.is_error, Some(true), "{r:?}");
        let t = text_of(&r);
        assert!(
            t.contains(words) && t.contains("Nothing was done"),
            "{words}: {t}"
        );
    };
    // Forged state: refused, and the genuine one still stands.
    let r = complete(
        once(
            &s,
            retry(
                "kill_gpu_process",
                args.clone(),
                "forged",
                &key,
                yes.clone(),
            ),
        )
        .await,
    );
    refused(r, "unknown, already used or expired");
    // The genuine state for other arguments (a longer grace) or another tool: refused (and used up).
    let other =
        json!({"node_name": "local", "pid": 4242, "skip_evidence": true, "grace_seconds": 60});
    let r = complete(
        once(
            &s,
            retry("kill_gpu_process", other, &state, &key, yes.clone()),
        )
        .await,
    );
    refused(r, "other arguments");
    let r = complete(
        once(
            &s,
            retry("kill_gpu_process", args.clone(), &state, &key, yes.clone()),
        )
        .await,
    );
    refused(r, "unknown, already used or expired");
    // A fresh state, answered with accept but not approve: refused.
    let state = state_of(&input_required(
        once(&s, request("kill_gpu_process", args.clone())).await,
    ));
    let r = complete(
        once(
            &s,
            retry(
                "kill_gpu_process",
                args.clone(),
                &state,
                &key,
                json!({"action": "accept", "content": {"approve": false}}),
            ),
        )
        .await,
    );
    refused(r, "did not approve");
    // A fresh state approved: acts once; the same retry replayed is refused.
    let state = state_of(&input_required(
        once(&s, request("kill_gpu_process", args.clone())).await,
    ));
    let ok = retry("kill_gpu_process", args.clone(), &state, &key, yes.clone());
    let v = structured(&complete(once(&s, ok.clone()).await));
    assert_eq!(v["result"], "simulated", "{v}");
    assert_eq!(v["confirmed_by"], "input_request");
    refused(
        complete(once(&s, ok).await),
        "unknown, already used or expired",
    );
    // A state issued for kill_gpu_process does not confirm reset_gpu.
    let state = state_of(&input_required(
        once(&s, request("kill_gpu_process", args.clone())).await,
    ));
    let r = complete(
        once(
            &s,
            retry(
                "reset_gpu",
                json!({"node_name": "local", "gpu": "1", "skip_evidence": true}),
                &state,
                &key,
                yes,
            ),
        )
        .await,
    );
    refused(r, "issued for kill_gpu_process");
    // Only the approved retry acted.
    let results: Vec<String> = s
        .audit_lines()
        .iter()
        .map(|a| a["result"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        results,
        [
            "refused",
            "refused",
            "refused",
            "refused",
            "simulated",
            "refused",
            "refused"
        ]
    );
    s.client.cancel().await.unwrap();
}

/// A client that declares neither elicitation nor input requests (on either protocol) must send `confirm`,
/// and the answer and the audit record say that no person was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_way_to_ask_confirm_decides_and_says_no_person_was_asked() {
    for modern in [false, true] {
        let s = start_on((), &["--mode", "operator"], modern).await;
        let r = s
            .call(
                "kill_gpu_process",
                json!({"node_name": "local", "pid": 4242}),
            )
            .await;
        assert_eq!(r.is_error, Some(true));
        assert!(
            text_of(&r).contains("declares neither elicitation nor input requests")
                && text_of(&r).contains("confirm=\"local/pid/4242\""),
            "{}",
            text_of(&r)
        );
        let r = s
            .call(
                "kill_gpu_process",
                json!({"node_name": "local", "pid": 4242, "confirm": "local/pid/4242"}),
            )
            .await;
        let v = structured(&r);
        assert_eq!(v["result"], "simulated", "{v}");
        assert_eq!(v["confirmed_by"], "confirm_argument");
        assert_eq!(v["human_confirmed"], false);
        assert!(
            text_of(&r).contains("NO PERSON WAS ASKED"),
            "{}",
            text_of(&r)
        );
        let audit = s.audit_lines();
        assert_eq!(audit.len(), 2, "{audit:?}");
        assert_eq!(audit[0]["result"], "refused");
        assert_eq!(audit[1]["confirmed_by"], "confirm_argument");
        assert_eq!(audit[1]["human_confirmed"], false);
        assert!(
            audit[1]["message"]
                .as_str()
                .unwrap()
                .contains("no person was asked"),
            "{}",
            audit[1]
        );
        // A requestState this launcher never issued does not stand in for `confirm`.
        let r = complete(
            once(
                &s,
                retry(
                    "kill_gpu_process",
                    json!({"node_name": "local", "pid": 4242}),
                    "forged",
                    "confirm",
                    json!({"action": "accept", "content": {"approve": true}}),
                ),
            )
            .await,
        );
        assert_eq!(r.is_error, Some(true), "modern={modern}: {r:?}");
        s.client.cancel().await.unwrap();
    }
}
