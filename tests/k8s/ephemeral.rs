//! Ephemeral-container mode against a mocked API server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::mock::{FakeExec, mock_client, status, version_document, watch_events};
use crate::cluster::clients::Clients;
use crate::probe::ephemeral::{EphemeralRunner, TargetPod};
use crate::probe::pod::ProbePodOptions;
use crate::probe::runner::{ProbeRequest, RunError, Runner};

const POD: &str = "/api/v1/namespaces/ml/pods/train-0";

fn target(phase: &str, ephemeral: Option<(&str, &str)>) -> Value {
    let mut p = json!({"metadata": {"name": "train-0", "namespace": "ml", "resourceVersion": "3"},
        "spec": {"nodeName": "gpu-node-5", "containers": [{"name": "trainer", "image": "pytorch"}]},
        "status": {"phase": phase}});
    if let Some((name, state)) = ephemeral {
        let st = if state == "running" {
            json!({"running": {}})
        } else {
            json!({"waiting": {"reason": state}})
        };
        p["status"]["ephemeralContainerStatuses"] = json!([{"name": name, "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": st}]);
    }
    p
}

fn runner(
    phase: &'static str,
    end_state: &'static str,
    exec: Arc<FakeExec>,
) -> (EphemeralRunner, super::mock::Log) {
    let ec_name: Arc<Mutex<String>> = Arc::default();
    // As a kubelet: the exec finds the container only once it runs.
    let running = exec.running.clone();
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let (client, log) = mock_client(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", POD) => (200, target(phase, None).to_string()),
        ("PATCH", p) if p == format!("{POD}/ephemeralcontainers") => {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            let name = body["spec"]["ephemeralContainers"][0]["name"]
                .as_str()
                .unwrap()
                .to_string();
            *ec_name.lock().unwrap() = name.clone();
            (
                200,
                target(phase, Some((&name, "ContainerCreating"))).to_string(),
            )
        }
        ("GET", "/api/v1/namespaces/ml/pods") => {
            let name = ec_name.lock().unwrap().clone();
            if end_state == "running" {
                running.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            (
                200,
                watch_events(&[target(phase, Some((&name, end_state)))]),
            )
        }
        _ => (404, status(404, "NotFound", "unexpected")),
    });
    let r = EphemeralRunner {
        clients: Arc::new(Clients::from_client(client)),
        target: "ml/train-0".parse().unwrap(),
        opts: ProbePodOptions::default(),
        probe_command: vec!["node-probe".into()],
        exec,
        max_stdout: 1 << 20,
        live: Default::default(),
    };
    (r, log)
}

fn req(node: &str) -> ProbeRequest {
    ProbeRequest {
        lines: None,
        node: node.into(),
        args: vec!["processes".into()],
        tool: "get_gpu_processes".into(),
        context: None,
        timeout: Duration::from_secs(5),
        batch: Default::default(),
        image: Default::default(),
    }
}

#[tokio::test]
async fn ephemeral_container_is_added_awaited_and_execed() {
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    let (r, log) = runner("Running", "running", exec.clone());
    let out = r
        .run(
            req("gpu-node-5"),
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
        .await
        .expect("runs");
    let log = log.lock().unwrap();
    let patch = log.iter().find(|r| r.method == "PATCH").unwrap();
    let body: Value = serde_json::from_str(&patch.body).unwrap();
    let ec = &body["spec"]["ephemeralContainers"][0];
    assert_eq!(ec["targetContainerName"], "trainer");
    assert_eq!(ec["command"], json!(["sleep", "10"]));
    assert!(
        ec.get("volumeMounts").is_none(),
        "ephemeral containers cannot add volumes"
    );
    let calls = exec.calls.lock().unwrap();
    assert_eq!(calls[0].0, "train-0");
    assert_eq!(calls[0].1, ec["name"].as_str().unwrap());
    assert!(
        out.ran_in
            .starts_with("ml/train-0 (ephemeral container node-probe-")
    );
    assert!(
        !log.iter().any(|r| r.method == "DELETE"),
        "nothing can be deleted"
    );
}

#[tokio::test]
async fn ephemeral_wrong_node_and_stuck_image() {
    let (r, _) = runner("Running", "running", FakeExec::ok_stdout("", 0));
    let e = r
        .run(
            req("gpu-node-9"),
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RunError::Other(m) if m.contains("runs on node `gpu-node-5`")),
        "{e:?}"
    );

    let (r, _) = runner("Running", "ErrImagePull", FakeExec::ok_stdout("", 0));
    let e = r
        .run(
            req("gpu-node-5"),
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RunError::ProbeNotStarted { reason, .. } if reason.contains("ErrImagePull")),
        "{e:?}"
    );

    let (r, _) = runner("Pending", "running", FakeExec::ok_stdout("", 0));
    let e = r
        .run(
            req("gpu-node-5"),
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RunError::Other(m) if m.contains("is Pending")),
        "{e:?}"
    );
}

#[test]
fn target_pod_parses() {
    let t: TargetPod = "ml/train-0/trainer".parse().unwrap();
    assert_eq!(t.container.as_deref(), Some("trainer"));
    assert!("train-0".parse::<TargetPod>().is_err());
    assert!("ml//x".parse::<TargetPod>().is_err());
}

/// A second call while the first call's container still runs execs in it: no second container is added to
/// the pod (the kubelet would start it only after its next relist). A container that is gone is replaced.
#[tokio::test]
async fn a_later_call_reuses_the_running_container_of_an_earlier_one() {
    let added: Arc<Mutex<Vec<String>>> = Arc::default();
    let with_uid = |mut p: Value| {
        p["metadata"]["uid"] = json!("uid-1");
        p
    };
    let names = added.clone();
    let exec = FakeExec::ok_stdout(&version_document(), 0);
    // As a kubelet: a container added runs (the exec finds it).
    let runs = exec.running.clone();
    let (client, log) = mock_client(move |r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", POD) => {
            let last = names.lock().unwrap().last().cloned();
            (
                200,
                with_uid(target("Running", last.as_deref().map(|n| (n, "running")))).to_string(),
            )
        }
        ("PATCH", p) if p == format!("{POD}/ephemeralcontainers") => {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            let name = body["spec"]["ephemeralContainers"][0]["name"]
                .as_str()
                .unwrap()
                .to_string();
            names.lock().unwrap().push(name.clone());
            runs.store(true, std::sync::atomic::Ordering::SeqCst);
            (
                200,
                with_uid(target("Running", Some((&name, "ContainerCreating")))).to_string(),
            )
        }
        ("GET", "/api/v1/namespaces/ml/pods") => {
            let name = names.lock().unwrap().last().cloned().unwrap();
            (
                200,
                watch_events(&[with_uid(target("Running", Some((&name, "running"))))]),
            )
        }
        _ => (404, status(404, "NotFound", "unexpected")),
    });
    let r = EphemeralRunner {
        clients: Arc::new(Clients::from_client(client)),
        target: "ml/train-0".parse().unwrap(),
        opts: ProbePodOptions::default(),
        probe_command: vec!["node-probe".into()],
        exec: exec.clone(),
        max_stdout: 1 << 20,
        live: Default::default(),
    };
    let call = || {
        r.run(
            req("gpu-node-5"),
            Arc::new(|_| {}),
            CancellationToken::new(),
        )
    };
    let first = call().await.expect("first call runs");
    *exec.reply.lock().unwrap() = Some(Ok(version_output()));
    let second = call().await.expect("second call runs");
    let patches = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 1, "the second call added no container");
    let calls = exec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, calls[1].1, "both ran in the same container");
    assert!(
        second.ran_in.contains("added by an earlier call"),
        "{}",
        second.ran_in
    );
    assert!(!first.ran_in.contains("earlier call"), "{}", first.ran_in);

    // The container is gone (the kubelet says not found): the call adds a new one.
    exec.running
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let flip = exec.running.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        flip.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    *exec.reply.lock().unwrap() = Some(Ok(version_output()));
    let third = call().await.expect("third call runs");
    assert_eq!(added.lock().unwrap().len(), 2, "a new container was added");
    assert!(!third.ran_in.contains("earlier call"), "{}", third.ran_in);
}

fn version_output() -> crate::probe::exec::ExecOutput {
    crate::probe::exec::ExecOutput {
        stdout: version_document().into_bytes(),
        ..Default::default()
    }
}
