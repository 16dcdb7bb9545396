//! The probe pod lifecycle against a mocked API server: every error path ends with the delete attempted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::mock::{
    FakeExec, Log, Recorded, mock_client, node_json, probe_pod_json, status, version_document,
    watch_events,
};
use crate::cluster::clients::Clients;
use crate::probe::exec::{ExecError, ExecOutput};
use crate::probe::pod::ProbePodOptions;
use crate::probe::pod_runner::PodRunner;
use crate::probe::runner::{Phase, ProbeRequest, ProgressSink, RunError, Runner};

const PODS: &str = "/api/v1/namespaces/gpu-diagnostics/pods";

/// How the scripted API server behaves.
#[derive(Clone)]
struct Api {
    node_ready: Option<&'static str>,
    /// POST answer: 201 (created), 409 (AlreadyExists, as after a retried create), 403.
    create: u16,
    /// States the watch reports, in order.
    watch: Vec<&'static str>,
    /// State a GET of the pod returns (after AlreadyExists).
    get_state: &'static str,
    delete: u16,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            node_ready: Some("True"),
            create: 201,
            watch: vec!["running"],
            get_state: "running",
            delete: 200,
        }
    }
}

/// `running`: set once the API has shown the pod running, as a kubelet then takes execs (FakeExec).
fn serve(
    api: Api,
    running: Arc<std::sync::atomic::AtomicBool>,
) -> impl FnMut(&Recorded) -> (u16, String) + Send + 'static {
    let created_name: Arc<Mutex<String>> = Arc::default();
    let shown = move |state: &str| {
        if state == "running" {
            running.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    move |r: &Recorded| {
        let name_of = |path: &str| path.rsplit('/').next().unwrap_or_default().to_string();
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/v1/nodes/gpu-node-5") => match api.node_ready {
                Some(ready) => (200, node_json("gpu-node-5", ready).to_string()),
                None => (
                    404,
                    status(404, "NotFound", "nodes \"gpu-node-5\" not found"),
                ),
            },
            ("POST", PODS) => {
                let pod: Value = serde_json::from_str(&r.body).unwrap();
                let name = pod["metadata"]["name"].as_str().unwrap().to_string();
                *created_name.lock().unwrap() = name.clone();
                match api.create {
                    201 => (201, probe_pod_json(&name, "1", "pending").to_string()),
                    409 => (
                        409,
                        status(
                            409,
                            "AlreadyExists",
                            &format!("pods \"{name}\" already exists"),
                        ),
                    ),
                    code => (
                        code,
                        status(
                            code,
                            "Forbidden",
                            "pods is forbidden: User \"sre\" cannot create resource \"pods\"",
                        ),
                    ),
                }
            }
            ("GET", PODS) if r.query.contains("watch=true") => {
                let name = created_name.lock().unwrap().clone();
                api.watch.iter().for_each(|s| shown(s));
                let events: Vec<Value> = api
                    .watch
                    .iter()
                    .enumerate()
                    .map(|(i, s)| probe_pod_json(&name, &(i + 2).to_string(), s))
                    .collect();
                (200, watch_events(&events))
            }
            ("GET", p) if p.starts_with(PODS) => {
                shown(api.get_state);
                (
                    200,
                    probe_pod_json(&name_of(p), "7", api.get_state).to_string(),
                )
            }
            ("DELETE", p) if p.starts_with(PODS) => match api.delete {
                200 => (200, probe_pod_json(&name_of(p), "9", "running").to_string()),
                code => (
                    code,
                    status(code, "InternalError", "etcdserver: request timed out"),
                ),
            },
            _ => (
                404,
                status(
                    404,
                    "NotFound",
                    &format!("unexpected {} {}", r.method, r.path),
                ),
            ),
        }
    }
}

fn runner(api: Api, exec: Arc<FakeExec>) -> (PodRunner, Log) {
    exec.running
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let (client, log) = mock_client(serve(api, exec.running.clone()));
    let mut r = PodRunner::new(
        Arc::new(Clients::from_client(client)),
        "gpu-diagnostics".into(),
        ProbePodOptions {
            image: "ghcr.io/k8s-gpu-mcp/node-probe:v0.1.0".into(),
            ..Default::default()
        },
        exec,
    );
    r.delete_timeout = Duration::from_secs(2);
    (r, log)
}

fn request(timeout: Duration) -> ProbeRequest {
    ProbeRequest {
        lines: None,
        node: "gpu-node-5".into(),
        args: vec!["health".into()],
        tool: "get_gpu_health".into(),
        context: None,
        timeout,
        batch: Default::default(),
        image: Default::default(),
    }
}

fn phases() -> (ProgressSink, Arc<Mutex<Vec<Phase>>>) {
    let seen: Arc<Mutex<Vec<Phase>>> = Arc::default();
    let s = seen.clone();
    (Arc::new(move |p| s.lock().unwrap().push(p)), seen)
}

/// The name of the created pod, and whether a grace-0 DELETE of exactly that pod was sent.
fn created_and_deleted(log: &Log) -> (String, usize) {
    let log = log.lock().unwrap();
    let post = log
        .iter()
        .find(|r| r.method == "POST")
        .expect("a create was sent");
    let name = serde_json::from_str::<Value>(&post.body).unwrap()["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let deletes = log
        .iter()
        .filter(|r| {
            r.method == "DELETE"
                && r.path == format!("{PODS}/{name}")
                && r.body.contains("\"gracePeriodSeconds\":0")
        })
        .count();
    (name, deletes)
}

async fn run(
    r: &PodRunner,
    timeout: Duration,
) -> (
    Result<crate::probe::runner::ProbeOutput, RunError>,
    Vec<Phase>,
) {
    let (sink, seen) = phases();
    let res = r
        .run(request(timeout), sink, CancellationToken::new())
        .await;
    let seen = seen.lock().unwrap().clone();
    (res, seen)
}

#[tokio::test]
async fn success_parses_document_times_phases_and_deletes() {
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    let (r, log) = runner(Api::default(), exec.clone());
    let (res, seen) = run(&r, Duration::from_secs(10)).await;
    let out = res.expect("probe succeeds");
    assert!(matches!(
        out.document,
        gpu_diag::contract::ProbeDocument::Success { .. }
    ));
    assert_eq!(out.exit_code, 0);
    let timed: Vec<Phase> = out.timings.iter().map(|t| t.phase).collect();
    assert_eq!(
        timed,
        [
            Phase::StartingProbe,
            Phase::WaitingForProbe,
            Phase::Probing,
            Phase::CleaningUp
        ]
    );
    assert_eq!(
        seen,
        [
            Phase::StartingProbe,
            Phase::WaitingForProbe,
            Phase::Probing,
            Phase::CleaningUp,
            Phase::Done
        ]
    );
    let (name, deletes) = created_and_deleted(&log);
    assert_eq!(deletes, 1);
    assert_eq!(out.ran_in, format!("gpu-diagnostics/{name}"));
    // exec'd in the created pod's probe container, argv without a shell, node name appended
    let calls = exec.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, name);
    assert_eq!(calls[0].1, "probe");
    assert_eq!(
        calls[0].2,
        ["node-probe", "health", "--node-name", "gpu-node-5"]
    );
    // the created pod is the rendered probe pod: pinned to the node, privileged, no GPU request
    let log = log.lock().unwrap();
    let post: Value =
        serde_json::from_str(&log.iter().find(|r| r.method == "POST").unwrap().body).unwrap();
    assert_eq!(post["spec"]["nodeName"], "gpu-node-5");
    assert_eq!(
        post["spec"]["containers"][0]["securityContext"]["privileged"],
        true
    );
    assert!(!post.to_string().contains("nvidia.com/gpu\""));
    // the node was checked before the create
    let first_post = log.iter().position(|r| r.method == "POST").unwrap();
    assert!(
        log[..first_post]
            .iter()
            .any(|r| r.path == "/api/v1/nodes/gpu-node-5")
    );
}

#[tokio::test]
async fn create_conflict_on_retry_is_success() {
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    let (r, log) = runner(
        Api {
            create: 409,
            ..Default::default()
        },
        exec.clone(),
    );
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    res.expect("AlreadyExists of our own unique name is our pod");
    let (name, deletes) = created_and_deleted(&log);
    assert_eq!(deletes, 1);
    // without the create's response the runner read the pod, then exec'd into it
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("{PODS}/{name}"))
    );
    assert_eq!(exec.calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn pod_never_starts_image_pull_backoff_fails_fast() {
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    let (r, log) = runner(
        Api {
            watch: vec!["pending", "ImagePullBackOff"],
            ..Default::default()
        },
        exec.clone(),
    );
    let started = std::time::Instant::now();
    let (res, _) = run(&r, Duration::from_secs(30)).await;
    match res {
        Err(RunError::ProbeNotStarted { node, reason }) => {
            assert_eq!(node, "gpu-node-5");
            assert!(reason.contains("ImagePullBackOff"), "{reason}");
            assert!(reason.contains("--probe-image"), "{reason}");
        }
        other => panic!("expected ProbeNotStarted, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "must not wait for the timeout (30 s)"
    );
    assert_eq!(created_and_deleted(&log).1, 1);
    assert!(exec.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn pod_stuck_pending_times_out_with_its_state_and_deletes() {
    let (r, log) = runner(
        Api {
            watch: vec!["pending"],
            ..Default::default()
        },
        FakeExec::ok_stdout(&version_document(), 0),
    );
    let (res, _) = run(&r, Duration::from_secs(1)).await;
    match res {
        Err(RunError::ProbeNotStarted { reason, .. }) => {
            assert!(
                reason.contains("still Pending (ContainerCreating)"),
                "{reason}"
            )
        }
        other => panic!("expected ProbeNotStarted, got {other:?}"),
    }
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn exec_failure_is_reported_and_pod_deleted() {
    let exec = FakeExec::replying(Err(ExecError::Failed(
        "node-probe could not be started: executable file not found in $PATH".into(),
    )));
    let (r, log) = runner(Api::default(), exec);
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    match res {
        Err(RunError::Exec(m)) => {
            assert!(m.contains("executable file not found"), "{m}");
            // The image has no node-probe: say which image and that copy delivery exists.
            assert!(m.contains("ghcr.io/k8s-gpu-mcp/node-probe:v0.1.0"), "{m}");
            assert!(m.contains("--probe-delivery copy"), "{m}");
        }
        other => panic!("expected Exec, got {other:?}"),
    }
    assert_eq!(created_and_deleted(&log).1, 1);
}

/// Copy delivery picks the build by the node's architecture before any pod exists: a node that reports none
/// (or one without a build) fails with the reason, and no pod is created.
#[tokio::test]
async fn copy_delivery_without_a_build_creates_no_pod() {
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    let (mut r, log) = runner(Api::default(), exec);
    let dir = tempfile::tempdir().unwrap();
    r.copy = Some(Arc::new(crate::probe::delivery::ProbeBinaries::new(
        dir.path().into(),
    )));
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    match res {
        Err(RunError::Other(m)) => assert!(m.contains("reports no architecture"), "{m}"),
        other => panic!("expected the delivery error, got {other:?}"),
    }
    assert!(
        !log.lock().unwrap().iter().any(|r| r.method == "POST"),
        "no pod may be created"
    );
}

#[tokio::test]
async fn exec_forbidden_is_forbidden() {
    let exec = FakeExec::replying(Err(ExecError::Forbidden(
        "exec needs get+create on pods/exec".into(),
    )));
    let (r, log) = runner(Api::default(), exec);
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    assert!(matches!(res, Err(RunError::Forbidden(_))), "{res:?}");
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn garbage_output_is_bad_output_with_stderr_and_pod_deleted() {
    let exec = FakeExec::ok_stdout("Segmentation fault (core dumped)\n", 139);
    let (r, log) = runner(Api::default(), exec);
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    match res {
        Err(RunError::BadOutput {
            node,
            exit_code,
            error,
            stderr_tail,
        }) => {
            assert_eq!(node, "gpu-node-5");
            assert_eq!(exit_code, 139);
            assert!(matches!(
                error,
                gpu_diag::contract::ContractError::NotJson(_)
            ));
            assert_eq!(stderr_tail, "probe log line");
        }
        other => panic!("expected BadOutput, got {other:?}"),
    }
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn truncated_output_is_bad_output() {
    let exec = FakeExec::replying(Ok(ExecOutput {
        stdout: version_document().into_bytes(),
        stdout_truncated: true,
        stderr_tail: String::new(),
        exit_code: 0,
    }));
    let (r, log) = runner(Api::default(), exec);
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    assert!(
        matches!(&res, Err(RunError::BadOutput { error: gpu_diag::contract::ContractError::Shape(m), .. }) if m.contains("cap")),
        "{res:?}"
    );
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn delete_failure_still_returns_the_result_after_retrying() {
    let (r, log) = runner(
        Api {
            delete: 500,
            ..Default::default()
        },
        FakeExec::ok_stdout(&version_document(), 0),
    );
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    res.expect("the probe's answer is still good; the pod ends at its deadline");
    assert_eq!(created_and_deleted(&log).1, 2, "one retry");
}

#[tokio::test]
async fn cancellation_deletes_before_returning() {
    let (r, log) = runner(Api::default(), FakeExec::hanging());
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let (sink, _) = phases();
    let res = r.run(request(Duration::from_secs(30)), sink, cancel).await;
    assert!(matches!(res, Err(RunError::Cancelled)), "{res:?}");
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn timeout_during_exec_deletes() {
    let (r, log) = runner(Api::default(), FakeExec::hanging());
    let (res, _) = run(&r, Duration::from_millis(800)).await;
    assert!(
        matches!(&res, Err(RunError::Timeout { node, secs: 0 }) if node == "gpu-node-5"),
        "{res:?}"
    );
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn dropped_call_is_cleaned_up_by_shutdown() {
    let (r, log) = runner(Api::default(), FakeExec::hanging());
    let (sink, _) = phases();
    // The MCP layer may drop the call's future instead of cancelling it.
    let fut = r.run(
        request(Duration::from_secs(30)),
        sink,
        CancellationToken::new(),
    );
    let dropped = tokio::time::timeout(Duration::from_millis(400), fut).await;
    assert!(dropped.is_err());
    r.shutdown().await;
    assert_eq!(created_and_deleted(&log).1, 1);
}

/// Image delivery creates the pod while it reads the node: the node's verdict is the answer, and the pod
/// created meanwhile is deleted before the call returns.
#[tokio::test]
async fn missing_node_is_the_answer_and_the_pod_is_deleted() {
    let exec = FakeExec::ok_stdout("", 0);
    let (r, log) = runner(
        Api {
            node_ready: None,
            ..Default::default()
        },
        exec.clone(),
    );
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    assert!(
        matches!(&res, Err(RunError::NodeNotFound(n)) if n == "gpu-node-5"),
        "{res:?}"
    );
    assert_eq!(created_and_deleted(&log).1, 1);
    assert!(exec.calls.lock().unwrap().is_empty(), "node-probe ran");
}

#[tokio::test]
async fn not_ready_node_is_the_answer_and_the_pod_is_deleted() {
    let exec = FakeExec::ok_stdout("", 0);
    let (r, log) = runner(
        Api {
            node_ready: Some("Unknown"),
            ..Default::default()
        },
        exec.clone(),
    );
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    match res {
        Err(RunError::NodeNotReady { node, reason }) => {
            assert_eq!(node, "gpu-node-5");
            assert!(reason.contains("Ready=Unknown"), "{reason}");
        }
        other => panic!("expected NodeNotReady, got {other:?}"),
    }
    assert_eq!(created_and_deleted(&log).1, 1);
    assert!(exec.calls.lock().unwrap().is_empty(), "node-probe ran");
}

#[tokio::test]
async fn forbidden_create_says_what_is_missing_and_still_deletes() {
    let (r, log) = runner(
        Api {
            create: 403,
            ..Default::default()
        },
        FakeExec::ok_stdout("", 0),
    );
    let (res, _) = run(&r, Duration::from_secs(10)).await;
    match res {
        Err(RunError::Forbidden(m)) => {
            assert!(
                m.contains("create probe pod in namespace gpu-diagnostics"),
                "{m}"
            );
            assert!(m.contains("deploy/rbac.yaml"), "{m}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    // a create whose answer was lost could still have made the pod: the delete is always attempted
    assert_eq!(created_and_deleted(&log).1, 1);
}

#[tokio::test]
async fn unknown_context_is_rejected() {
    let (r, _log) = runner(Api::default(), FakeExec::ok_stdout("", 0));
    let mut req = request(Duration::from_secs(5));
    req.context = Some("nope".into());
    let (sink, _) = phases();
    let res = r.run(req, sink, CancellationToken::new()).await;
    assert!(
        matches!(&res, Err(RunError::Other(m)) if m.contains("unknown kubeconfig context `nope`")),
        "{res:?}"
    );
}

/// Exec that works in a pod once the mocked watch has shown it running, and answers with a version document.
struct ShownExec {
    shown: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl crate::probe::exec::ProbeExec for ShownExec {
    fn exec<'a>(
        &'a self,
        _client: kube::Client,
        _namespace: &'a str,
        pod: &'a str,
        _container: &'a str,
        _argv: Vec<String>,
    ) -> crate::probe::exec::ExecFuture<'a> {
        let shown = self.shown.lock().unwrap().contains(pod);
        Box::pin(async move {
            if !shown {
                return Err(ExecError::NotRunning("container not found".into()));
            }
            Ok(ExecOutput {
                stdout: version_document().into_bytes(),
                ..Default::default()
            })
        })
    }
}

/// The runs of one batch share one list of their nodes and a watch of their pods by the batch's label: per
/// node only the create and the delete reach the API server (the exec, here a fake, is the third request),
/// never a get of the node or a watch of one pod.
#[tokio::test]
async fn a_batch_lists_its_nodes_once_and_watches_its_pods_by_label() {
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let shown: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let (c, s) = (created.clone(), shown.clone());
    let (client, log) =
        mock_client(
            move |r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
                ("GET", "/api/v1/nodes") => {
                    let items: Vec<Value> = (1..=3)
                        .map(|i| node_json(&format!("gpu-node-{i}"), "True"))
                        .collect();
                    let list = serde_json::json!({"apiVersion": "v1", "kind": "NodeList",
                    "metadata": {"resourceVersion": "5"}, "items": items});
                    (200, list.to_string())
                }
                ("POST", PODS) => {
                    let pod: Value = serde_json::from_str(&r.body).unwrap();
                    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
                    c.lock().unwrap().push(name.clone());
                    (201, probe_pod_json(&name, "1", "pending").to_string())
                }
                ("GET", PODS) if r.query.contains("watch=true") => {
                    let names = c.lock().unwrap().clone();
                    s.lock().unwrap().extend(names.iter().cloned());
                    let events: Vec<Value> = names
                        .iter()
                        .map(|n| probe_pod_json(n, "2", "running"))
                        .collect();
                    (200, watch_events(&events))
                }
                ("DELETE", p) if p.starts_with(PODS) => {
                    let name = p.rsplit('/').next().unwrap_or_default();
                    (200, probe_pod_json(name, "9", "running").to_string())
                }
                _ => (
                    404,
                    status(
                        404,
                        "NotFound",
                        &format!("unexpected {} {}", r.method, r.path),
                    ),
                ),
            },
        );
    let r = PodRunner::new(
        Arc::new(Clients::from_client(client)),
        "gpu-diagnostics".into(),
        ProbePodOptions {
            image: "ghcr.io/k8s-gpu-mcp/node-probe:v0.1.0".into(),
            ..Default::default()
        },
        Arc::new(ShownExec { shown }),
    );
    let nodes: Vec<String> = (1..=3).map(|i| format!("gpu-node-{i}")).collect();
    let batch = r.batch(None, &nodes);
    let runs = nodes.iter().map(|n| {
        r.run(
            ProbeRequest {
                lines: None,
                node: n.clone(),
                args: vec!["version".into()],
                tool: "scan_gpu_nodes".into(),
                context: None,
                timeout: Duration::from_secs(10),
                batch: batch.clone(),
                image: Default::default(),
            },
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
    });
    for out in futures::future::join_all(runs).await {
        out.expect("every node of the batch answers");
    }
    drop(batch);
    let log = log.lock().unwrap();
    let count = |m: &str, p: &str| log.iter().filter(|r| r.method == m && r.path == p).count();
    assert_eq!(count("GET", "/api/v1/nodes"), 1, "one list of the nodes");
    assert!(
        !log.iter().any(|r| r.path.starts_with("/api/v1/nodes/")),
        "no get of a node: {log:?}"
    );
    assert_eq!(count("POST", PODS), 3);
    assert_eq!(
        log.iter().filter(|r| r.method == "DELETE").count(),
        3,
        "each pod deleted once"
    );
    let posts: Vec<Value> = log
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let batch_label = posts[0]["metadata"]["labels"]["k8s-gpu-mcp.io/batch"]
        .as_str()
        .expect("the pod carries the batch label")
        .to_string();
    assert!(
        posts
            .iter()
            .all(|p| p["metadata"]["labels"]["k8s-gpu-mcp.io/batch"] == batch_label.as_str())
    );
    let watches: Vec<&Recorded> = log
        .iter()
        .filter(|r| r.query.contains("watch=true"))
        .collect();
    assert!(!watches.is_empty(), "the pods were watched");
    for w in watches {
        assert!(
            w.query.contains(&format!(
                "labelSelector=k8s-gpu-mcp.io%2Fbatch%3D{batch_label}"
            )) && !w.query.contains("fieldSelector"),
            "a watch of one pod, or not by the batch's label: {}",
            w.query
        );
    }
}
