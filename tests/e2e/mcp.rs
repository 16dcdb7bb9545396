//! The launcher under test: `k8s-gpu-mcp serve --kubeconfig …` driven over stdio by the rmcp client.

#![allow(dead_code)]

#[path = "../support/mcp.rs"]
pub mod harness;
#[path = "../support/tools.rs"]
pub mod tools;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use std::sync::{Arc, Mutex};

use rmcp::handler::client::progress::ProgressDispatcher;
use rmcp::model::{
    CallToolResult, ClientCapabilities, ClientConfig, ClientRequest, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, ProgressNotificationParam,
    ProtocolVersion, Request,
};
use rmcp::service::{
    NotificationContext, PeerRequestOptions, RequestContext, RequestHandle, RunningService,
};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, ErrorData, RoleClient};
use serde_json::Value;

use crate::testbed::{Testbed, User, unique};
use harness::Connected;

pub const LAUNCHER: &str = env!("CARGO_BIN_EXE_k8s-gpu-mcp");

/// The probe image the kwok tests name (kwok pulls nothing; exec finds node-probe on its PATH). By digest, from a
/// source the testbed's admission policies trust (`registry.invalid/`), as the policies require.
pub const E2E_PROBE_IMAGE: &str = "registry.invalid/k8s-gpu-mcp/node-probe@sha256:e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0";

pub struct ProgressClient {
    pub progress: ProgressDispatcher,
    /// Declares the MCP tasks extension (`io.modelcontextprotocol/tasks`): long tools answer with a task.
    pub tasks: bool,
    /// A user who answers confirmations (the client then declares elicitation); none: it declares none.
    pub user: Option<Confirmer>,
}

/// A person at the host: approves or declines every confirmation, and keeps what each asked.
#[derive(Clone, Default)]
pub struct Confirmer {
    pub approve: bool,
    /// With the approval, override a refusal for unknown GPU holders where the form offers it.
    pub override_unknown: bool,
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl Confirmer {
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for ProgressClient {
    fn get_info(&self) -> ClientConfig {
        let mut info = ClientConfig::default();
        if self.tasks {
            info.capabilities = ClientCapabilities::builder().enable_tasks().build();
        }
        if self.user.is_some() {
            info.capabilities.elicitation = Some(ElicitationCapability::new());
        }
        info
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let Some(user) = &self.user else {
            return Err(ErrorData::invalid_request(
                "this client declared no elicitation",
                None,
            ));
        };
        if let ElicitRequestParams::FormElicitationParams { message, .. } = &request {
            user.asked.lock().unwrap().push(message.clone());
        }
        Ok(if user.approve {
            let mut content = serde_json::json!({"approve": true});
            if user.override_unknown {
                content["override_unknown_holders"] = true.into();
            }
            ElicitResult::new(ElicitationAction::Accept).with_content(content)
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.progress.handle_notification(params).await;
    }
}

pub struct Launcher {
    pub client: RunningService<RoleClient, ProgressClient>,
    pub pid: u32,
    pub log: PathBuf,
    _log_cleanup: RemoveUnlessPanicking,
}

/// Removes the launcher's log when the test passes; a failing test keeps it for the post-mortem (its path
/// is in the panic messages).
struct RemoveUnlessPanicking(PathBuf);

impl Drop for RemoveUnlessPanicking {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// `k8s-gpu-mcp serve` as `user` (its own kubeconfig file; KUBECONFIG cleared), probe pods in `ns`.
pub async fn start(tb: &Testbed, user: User, ns: &str, extra: &[&str]) -> Launcher {
    start_with_env(tb, user, ns, extra, &[]).await
}

/// [`start`] with extra environment variables for the launcher.
pub async fn start_with_env(
    tb: &Testbed,
    user: User,
    ns: &str,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Launcher {
    let mut extra: Vec<&str> = extra.to_vec();
    // kwok runs no containers: image delivery (node-probe on kwok's PATH) unless the test picks a delivery.
    // The default delivery (copy into an image the node has) has its own tests, here and on the real node.
    if !extra.iter().any(|a| {
        a.starts_with("--probe-image")
            || a.starts_with("--probe-delivery")
            || a.starts_with("--probe-bin-dir")
    }) {
        extra.extend(["--probe-image", E2E_PROBE_IMAGE]);
    }
    start_exact(tb, user, ns, std::path::Path::new(LAUNCHER), &extra, envs).await
}

/// [`start`] as a client that declares the tasks extension: on protocol 2026-07-28, where each request
/// declares it in its `_meta` (an extension task is answered only there).
pub async fn start_with_tasks(tb: &Testbed, user: User, ns: &str, extra: &[&str]) -> Launcher {
    let mut extra: Vec<&str> = extra.to_vec();
    extra.extend(["--probe-image", E2E_PROBE_IMAGE]);
    let handler = ProgressClient {
        progress: ProgressDispatcher::new(),
        tasks: true,
        user: None,
    };
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let launcher = std::path::Path::new(LAUNCHER);
    start_as(
        &tb.kubeconfig(user),
        ns,
        launcher,
        &extra,
        &[],
        handler,
        Some(lifecycle),
    )
    .await
}

/// `launcher serve` with exactly these flags (no delivery chosen for the test).
pub async fn start_exact(
    tb: &Testbed,
    user: User,
    ns: &str,
    launcher: &std::path::Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Launcher {
    start_kubeconfig(&tb.kubeconfig(user), ns, launcher, extra, envs).await
}

/// [`start`] with a person at the host who answers confirmations (`user`), the client on protocol 2026-07-28
/// (`server/discover`; the launcher asks through an input request) when `modern`, else on 2025-11-25
/// (`initialize`; through elicitation).
pub async fn start_confirming(
    tb: &Testbed,
    user: User,
    ns: &str,
    extra: &[&str],
    person: Confirmer,
    modern: bool,
) -> Launcher {
    let mut extra: Vec<&str> = extra.to_vec();
    extra.extend(["--probe-image", E2E_PROBE_IMAGE]);
    let handler = ProgressClient {
        progress: ProgressDispatcher::new(),
        tasks: false,
        user: Some(person),
    };
    let lifecycle = modern.then(|| ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    });
    let launcher = std::path::Path::new(LAUNCHER);
    start_as(
        &tb.kubeconfig(user),
        ns,
        launcher,
        &extra,
        &[],
        handler,
        lifecycle,
    )
    .await
}

/// [`start`] with a kubeconfig of the test's own (another identity than the testbed's users).
pub async fn start_with_kubeconfig(
    kubeconfig: &std::path::Path,
    ns: &str,
    extra: &[&str],
) -> Launcher {
    let mut extra: Vec<&str> = extra.to_vec();
    extra.extend(["--probe-image", E2E_PROBE_IMAGE]);
    start_kubeconfig(kubeconfig, ns, std::path::Path::new(LAUNCHER), &extra, &[]).await
}

async fn start_kubeconfig(
    kubeconfig: &std::path::Path,
    ns: &str,
    launcher: &std::path::Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> Launcher {
    start_client(kubeconfig, ns, launcher, extra, envs, false).await
}

/// The launcher with a client that declares the tasks extension or not.
async fn start_client(
    kubeconfig: &std::path::Path,
    ns: &str,
    launcher: &std::path::Path,
    extra: &[&str],
    envs: &[(&str, &str)],
    tasks: bool,
) -> Launcher {
    let handler = ProgressClient {
        progress: ProgressDispatcher::new(),
        tasks,
        user: None,
    };
    start_as(kubeconfig, ns, launcher, extra, envs, handler, None).await
}

/// The launcher with `handler` as its client, by `initialize` unless `lifecycle` says otherwise.
async fn start_as(
    kubeconfig: &std::path::Path,
    ns: &str,
    launcher: &std::path::Path,
    extra: &[&str],
    envs: &[(&str, &str)],
    handler: ProgressClient,
    lifecycle: Option<ClientLifecycleMode>,
) -> Launcher {
    let log = std::env::temp_dir().join(format!("{}.log", unique("k8s-gpu-mcp-e2e-launcher")));
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let ns = ns.to_string();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cmd = tokio::process::Command::new(launcher).configure(|c| {
        c.arg("serve")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--namespace", &ns])
            .args(&extra)
            .env_remove("KUBECONFIG")
            // Evidence archives (operator actions keep one first) go to the temp dir, not $HOME.
            .env(
                "K8S_GPU_MCP_EVIDENCE_DIR",
                std::env::temp_dir().join("k8s-gpu-mcp-e2e-evidence"),
            )
            .env("RUST_LOG", "info,k8s_gpu_mcp=debug")
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    });
    let stderr = Stdio::from(std::fs::File::create(&log).expect("launcher log"));
    let failed = |e: &dyn std::fmt::Display| -> ! {
        panic!(
            "MCP handshake with the launcher failed: {e}\nlauncher stderr:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    };
    let (client, pid) = match lifecycle {
        None => {
            let Connected { client, pid, .. } = harness::connect(handler, cmd, stderr)
                .await
                .unwrap_or_else(|e| failed(&e));
            (client, pid)
        }
        Some(lifecycle) => {
            let (transport, _) = TokioChildProcess::builder(cmd)
                .stderr(stderr)
                .spawn()
                .expect("spawn k8s-gpu-mcp serve");
            let pid = transport.id().expect("the launcher's pid");
            let client = handler
                .serve_with_lifecycle(transport, lifecycle)
                .await
                .unwrap_or_else(|e| failed(&e));
            (client, pid)
        }
    };
    Launcher {
        client,
        pid,
        _log_cleanup: RemoveUnlessPanicking(log.clone()),
        log,
    }
}

/// A conversation about one node: five different read-only node tools in a row, as an AI host asks them
/// (`tests/e2e/readings.rs`, `tests/realnode/readings.rs`).
pub const CONVERSATION: [&str; 5] = [
    "get_gpu_health",
    "get_gpu_processes",
    "inspect_topology",
    "snapshot_ecc",
    "get_gpu_inventory",
];

/// Whether an answer read the node itself (a fresh reading, age 0) rather than a kept one.
pub fn fresh(v: &Value) -> bool {
    v["run"]["reading_age_s"] == 0 && v["run"].get("reading_reused").is_none()
}

/// A conversation's later answer: from the kept reading the first answer made (`first_ran_in`, its pod),
/// at most 20 s old, its age said in the text.
pub fn assert_reused(tool: &str, v: &Value, text: &str, first_ran_in: &Value) {
    assert_eq!(v["run"]["reading_reused"], true, "{tool}: {}", v["run"]);
    let age = v["run"]["reading_age_s"].as_u64().expect("age");
    assert!(age <= 20, "{tool}: {}", v["run"]);
    assert!(
        text.contains(&format!("read {age} s ago")),
        "{tool}: {text}"
    );
    assert_eq!(
        &v["run"]["ran_in"], first_ran_in,
        "{tool}: not the first call's pod"
    );
}

impl Launcher {
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Probe pods this launcher created on `node`, from its log (other tests run beside one on the same API
    /// server, so its request counters count their pods too; node names are unique to a test).
    pub fn pods_created(&self, node: &str) -> usize {
        let on = format!("node={node} ");
        self.stderr()
            .lines()
            .filter(|line| line.contains("creating probe pod") && line.contains(&on))
            .count()
    }

    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let params = harness::request(tool, args.clone());
        match tokio::time::timeout(Duration::from_secs(120), self.client.call_tool(params)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => panic!(
                "{tool} {args}: MCP error {e}\nlauncher stderr:\n{}",
                self.stderr()
            ),
            Err(_) => panic!(
                "{tool} {args}: no answer in 120 s\nlauncher stderr:\n{}",
                self.stderr()
            ),
        }
    }

    /// A call that must succeed: its structuredContent.
    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        let r = self.call(tool, args.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "{tool} {args} failed: {}\nlauncher stderr:\n{}",
            text(&r),
            self.stderr()
        );
        let t = text(&r);
        r.structured_content
            .unwrap_or_else(|| panic!("{tool} {args}: no structuredContent: {t}"))
    }

    /// A call that must fail as a tool error (isError: true): its text.
    pub async fn err(&self, tool: &str, args: Value) -> String {
        let r = self.call(tool, args.clone()).await;
        assert_eq!(
            r.is_error,
            Some(true),
            "{tool} {args} should have failed: {}",
            serde_json::to_string(&r.structured_content).unwrap()
        );
        text(&r)
    }

    /// Start a call that can be cancelled.
    pub async fn start_call(&self, tool: &str, args: Value) -> RequestHandle<RoleClient> {
        let params = harness::request(tool, args);
        self.client
            .send_cancellable_request(
                ClientRequest::CallToolRequest(Request::new(params)),
                PeerRequestOptions::no_options(),
            )
            .await
            .expect("send request")
    }

    /// SIGKILL the launcher (no cleanup chance).
    pub fn kill9(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
    }

    /// Close stdin and wait for the launcher to finish its cleanup and exit.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(20), self.client.cancel()).await;
    }
}

/// Every text block of a result, joined.
pub use harness::text_of as text;

/// Whether any string in `v` contains `needle`.
pub fn has_str(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s.contains(needle),
        Value::Array(a) => a.iter().any(|x| has_str(x, needle)),
        Value::Object(o) => o.values().any(|x| has_str(x, needle)),
        _ => false,
    }
}
