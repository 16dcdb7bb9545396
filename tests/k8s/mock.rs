//! A scripted API server behind `tower_test::mock::pair` + `kube::Client::new`, and a fake exec.

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

use crate::probe::exec::{ExecError, ExecFuture, ExecOutput, ProbeExec};

/// One request the mocked API server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
}

pub type Log = Arc<Mutex<Vec<Recorded>>>;

/// A client whose every request is answered by `respond` (status, JSON body) and recorded.
pub fn mock_client(
    mut respond: impl FnMut(&Recorded) -> (u16, String) + Send + 'static,
) -> (Client, Log) {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let rec = Recorded {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            };
            let (code, body) = respond(&rec);
            log2.lock().unwrap().push(rec);
            send.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(body.into_bytes()))
                    .unwrap(),
            );
        }
    });
    (Client::new(svc, "default"), log)
}

pub fn status(code: u16, reason: &str, message: &str) -> String {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
    .to_string()
}

pub fn node_json(name: &str, ready: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "resourceVersion": "5",
                     "labels": {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                                "kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "capacity": {"cpu": "96", "nvidia.com/gpu": "8"},
            "allocatable": {"cpu": "95", "nvidia.com/gpu": "8"},
            "conditions": [{"type": "Ready", "status": ready, "reason": if ready == "True" {"KubeletReady"} else {"KubeletNotReady"},
                            "message": "kubelet says so"}]
        }
    })
}

/// The probe pod named `name` in a given state: `running`, `pending`, or a waiting reason.
pub fn probe_pod_json(name: &str, rv: &str, state: &str) -> Value {
    let (phase, cstate) = match state {
        "running" => (
            "Running",
            json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}}),
        ),
        "pending" => (
            "Pending",
            json!({"waiting": {"reason": "ContainerCreating"}}),
        ),
        reason => (
            "Pending",
            json!({"waiting": {"reason": reason, "message": "Back-off pulling image \"ghcr.io/x/node-probe:v0\""}}),
        ),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "gpu-diagnostics", "resourceVersion": rv},
        "spec": {"nodeName": "gpu-node-5", "containers": [{"name": "probe", "image": "x"}]},
        "status": {"phase": phase, "containerStatuses": [{"name": "probe", "image": "x", "imageID": "", "ready": false,
                   "restartCount": 0, "state": cstate}]}
    })
}

pub fn watch_events(events: &[Value]) -> String {
    events
        .iter()
        .map(|o| json!({"type": "MODIFIED", "object": o}).to_string() + "\n")
        .collect()
}

/// Exec that returns a canned result (or never returns), recording the argv it got.
pub struct FakeExec {
    pub reply: Mutex<Option<Result<ExecOutput, ExecError>>>,
    pub hang: bool,
    pub calls: Mutex<Vec<(String, String, Vec<String>)>>,
    /// Whether the container runs: until then an exec is answered as the kubelet does ("container not
    /// found"), without counting as a call. The pod runner's mock API sets it when it shows a running pod.
    pub running: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for FakeExec {
    fn default() -> Self {
        FakeExec {
            reply: Mutex::default(),
            hang: false,
            calls: Mutex::default(),
            running: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

impl FakeExec {
    pub fn replying(r: Result<ExecOutput, ExecError>) -> Arc<Self> {
        Arc::new(FakeExec {
            reply: Mutex::new(Some(r)),
            ..Default::default()
        })
    }
    pub fn hanging() -> Arc<Self> {
        Arc::new(FakeExec {
            hang: true,
            ..Default::default()
        })
    }
    pub fn ok_stdout(stdout: &str, exit_code: i32) -> Arc<Self> {
        Self::replying(Ok(ExecOutput {
            stdout: stdout.as_bytes().to_vec(),
            stdout_truncated: false,
            stderr_tail: "probe log line".into(),
            exit_code,
        }))
    }
}

impl ProbeExec for FakeExec {
    fn exec<'a>(
        &'a self,
        _client: Client,
        _namespace: &'a str,
        pod: &'a str,
        container: &'a str,
        argv: Vec<String>,
    ) -> ExecFuture<'a> {
        if !self.running.load(std::sync::atomic::Ordering::SeqCst) {
            return Box::pin(async {
                Err(ExecError::NotRunning(
                    "unable to upgrade connection: container not found (\"probe\")".into(),
                ))
            });
        }
        self.calls
            .lock()
            .unwrap()
            .push((pod.to_string(), container.to_string(), argv));
        Box::pin(async move {
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.reply
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Err(ExecError::Failed("exec called twice".into())))
        })
    }
}

/// A valid contract document (version report) as node-probe prints it.
pub fn version_document() -> String {
    let doc = gpu_diag::contract::ProbeDocument::success(
        None,
        gpu_diag::contract::Report::Version(gpu_diag::contract::VersionReport {
            probe_version: "0.1.0".into(),
            schema_version: gpu_diag::contract::SCHEMA_VERSION,
        }),
    );
    serde_json::to_string(&doc).unwrap()
}
