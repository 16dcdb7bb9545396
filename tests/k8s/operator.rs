//! Operator-mode API calls against a mocked API server: cordon/uncordon patches, the audit Event on the
//! Node, whoami, and RBAC refusals with a clear message. (Compiled into the launcher's unit tests with the rest
//! of tests/k8s/, to reuse its mock.)

use std::sync::Arc;

use serde_json::{Value, json};

use super::mock::{mock_client, node_json, status};
use crate::cluster::backend::KubeBackend;
use crate::cluster::clients::Clients;
use crate::cluster::operator::{audit_event, cordon_patch};
use crate::cluster::{AuditEvent, ClusterBackend, ClusterError};

fn backend(client: kube::Client) -> KubeBackend {
    KubeBackend::new(Arc::new(Clients::from_client(client)))
}

fn event() -> AuditEvent {
    AuditEvent {
        node: "gpu-node-5".into(),
        action: "kill_gpu_process".into(),
        target: "gpu-node-5/pid/12345".into(),
        user: "system:serviceaccount:ops:alice@example.com".into(),
        result: "refused".into(),
        message: "not_init: pid 1 is the host's init".into(),
    }
}

#[test]
fn cordon_patch_sets_and_clears_the_reason() {
    assert_eq!(
        cordon_patch("xid 79 on GPU 3", true),
        json!({"spec": {"unschedulable": true},
               "metadata": {"annotations": {"k8s-gpu-mcp.io/cordon-reason": "xid 79 on GPU 3"}}})
    );
    assert_eq!(
        cordon_patch("", false)["metadata"]["annotations"]["k8s-gpu-mcp.io/cordon-reason"],
        Value::Null
    );
}

#[test]
fn audit_event_shape() {
    let now = jiff::Timestamp::from_second(1_795_600_000).unwrap();
    let e = audit_event(&event(), Some("uid-1".into()), now);
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["involvedObject"]["kind"], "Node");
    assert_eq!(v["involvedObject"]["name"], "gpu-node-5");
    assert_eq!(v["involvedObject"]["uid"], "uid-1");
    assert_eq!(v["metadata"]["namespace"], "default");
    assert_eq!(v["metadata"]["generateName"], "gpu-node-5.k8s-gpu-mcp.");
    assert_eq!(v["reason"], "KillGpuProcess");
    assert_eq!(v["type"], "Warning");
    assert_eq!(v["action"], "kill_gpu_process");
    assert_eq!(
        v["message"],
        "action=kill_gpu_process target=gpu-node-5/pid/12345 user=system:serviceaccount:ops:alice@example.com result=refused: not_init: pid 1 is the host's init"
    );
    assert_eq!(v["metadata"]["labels"]["k8s-gpu-mcp.io/result"], "refused");
    assert_eq!(
        v["metadata"]["annotations"]["k8s-gpu-mcp.io/user"],
        "system:serviceaccount:ops:alice@example.com"
    );
    assert_eq!(v["source"]["component"], "k8s-gpu-mcp");
    let mut done = event();
    done.result = "done".into();
    done.message = "x".repeat(5000);
    let v = serde_json::to_value(audit_event(&done, None, now)).unwrap();
    assert_eq!(v["type"], "Normal");
    assert!(v["message"].as_str().unwrap().len() <= 1024);
}

#[tokio::test]
async fn cordon_and_uncordon_patch_the_node() {
    let (client, log) = mock_client(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/nodes/gpu-node-5") => (200, node_json("gpu-node-5", "True").to_string()),
        ("PATCH", "/api/v1/nodes/gpu-node-5") => {
            let patch: Value = serde_json::from_str(&r.body).unwrap();
            let mut n = node_json("gpu-node-5", "True");
            n["spec"]["unschedulable"] = patch["spec"]["unschedulable"].clone();
            if let Some(reason) =
                patch["metadata"]["annotations"]["k8s-gpu-mcp.io/cordon-reason"].as_str()
            {
                n["metadata"]["annotations"] = json!({"k8s-gpu-mcp.io/cordon-reason": reason});
            }
            (200, n.to_string())
        }
        _ => (404, status(404, "NotFound", "no")),
    });
    let b = backend(client);
    let r = b.cordon(None, "gpu-node-5", "xid 79", true).await.unwrap();
    assert!(!r.unschedulable_before && r.unschedulable);
    assert_eq!(r.reason.as_deref(), Some("xid 79"));
    let r = b.cordon(None, "gpu-node-5", "", false).await.unwrap();
    assert!(!r.unschedulable);
    assert_eq!(r.reason, None);
    let log = log.lock().unwrap();
    let patches: Vec<_> = log.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(patches.len(), 2);
    assert!(patches[0].body.contains("\"unschedulable\":true"));
}

#[tokio::test]
async fn cordon_of_a_missing_node_and_without_rbac() {
    let (client, _) = mock_client(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/nodes/gpu-node-5") => (200, node_json("gpu-node-5", "True").to_string()),
        ("PATCH", _) => (
            403,
            status(
                403,
                "Forbidden",
                "nodes \"gpu-node-5\" is forbidden: User \"reader\" cannot patch resource \"nodes\"",
            ),
        ),
        _ => (404, status(404, "NotFound", "nodes \"nope\" not found")),
    });
    let b = backend(client);
    match b.cordon(None, "nope", "r", true).await {
        Err(ClusterError::NodeNotFound(n)) => assert_eq!(n, "nope"),
        other => panic!("{other:?}"),
    }
    let e = b.cordon(None, "gpu-node-5", "r", true).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ClusterError::Forbidden(_)), "{text}");
    assert!(
        text.contains("cannot patch resource \"nodes\"") && text.contains("k8s-gpu-mcp-operator"),
        "{text}"
    );
}

#[tokio::test]
async fn record_event_posts_a_node_event_and_whoami_reads_the_review() {
    let (client, log) = mock_client(|r| {
        match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/nodes/gpu-node-5") => {
            let mut n = node_json("gpu-node-5", "True");
            n["metadata"]["uid"] = json!("node-uid-5");
            (200, n.to_string())
        }
        ("POST", "/api/v1/namespaces/default/events") => {
            let mut e: Value = serde_json::from_str(&r.body).unwrap();
            e["metadata"]["name"] = json!("gpu-node-5.k8s-gpu-mcp.abcde");
            (201, e.to_string())
        }
        ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews") => (
            201,
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
                   "status": {"userInfo": {"username": "alice", "groups": ["ops"]}}})
            .to_string(),
        ),
        _ => (404, status(404, "NotFound", "no")),
    }
    });
    let b = backend(client);
    let name = b.record_event(None, &event()).await.unwrap();
    assert_eq!(name, "gpu-node-5.k8s-gpu-mcp.abcde");
    assert_eq!(b.whoami(None).await.unwrap(), "alice");
    let log = log.lock().unwrap();
    let post = log.iter().find(|r| r.path.ends_with("/events")).unwrap();
    let body: Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["involvedObject"]["uid"], "node-uid-5");
    assert_eq!(
        body["metadata"]["labels"]["k8s-gpu-mcp.io/action"],
        "kill_gpu_process"
    );
}

/// A run's own cordon is lifted only while it is still the run's: a node someone cordoned again for another
/// reason during the run stays cordoned, one already uncordoned is left, and a change between the read and the
/// patch (409, the patch names the resourceVersion it read) is read again, not overwritten.
#[tokio::test]
async fn a_runs_cordon_is_lifted_only_while_it_is_still_the_runs() {
    let node = |reason: Option<&str>, rv: &str| {
        let mut n = node_json("gpu-node-5", "True");
        n["spec"]["unschedulable"] = json!(reason.is_some());
        n["metadata"]["resourceVersion"] = json!(rv);
        if let Some(r) = reason {
            n["metadata"]["annotations"] = json!({"k8s-gpu-mcp.io/cordon-reason": r});
        }
        n
    };
    // Someone else's cordon now: nothing patched.
    let (client, log) = mock_client(move |r| match r.method.as_str() {
        "GET" => (200, node(Some("draining for maintenance"), "7").to_string()),
        _ => (500, status(500, "InternalError", "no patch expected")),
    });
    let b = backend(client);
    let said = b
        .uncordon_if_ours(None, "gpu-node-5", "run 1")
        .await
        .unwrap();
    assert!(
        said.contains("stays cordoned") && said.contains("draining for maintenance"),
        "{said}"
    );
    assert!(log.lock().unwrap().iter().all(|r| r.method == "GET"));
    // Still ours, but changed between the read and the patch: the first patch gets 409, the second goes.
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r2 = reads.clone();
    let (client, log) = mock_client(move |r| match r.method.as_str() {
        "GET" => {
            let n = r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (200, node(Some("run 1"), &format!("{}", 10 + n)).to_string())
        }
        _ if r.body.contains("\"resourceVersion\":\"10\"") => {
            (409, status(409, "Conflict", "the object has been modified"))
        }
        _ => (200, node(None, "12").to_string()),
    });
    let b = backend(client);
    let said = b
        .uncordon_if_ours(None, "gpu-node-5", "run 1")
        .await
        .unwrap();
    assert_eq!(said, "node gpu-node-5 uncordoned after the run");
    {
        let log = log.lock().unwrap();
        let patches: Vec<_> = log.iter().filter(|r| r.method == "PATCH").collect();
        assert_eq!(patches.len(), 2, "{log:?}");
        assert!(
            patches[1].body.contains("\"unschedulable\":false")
                && patches[1].body.contains("\"11\"")
        );
    }
    // Already uncordoned by someone: left.
    let (client, _) = mock_client(move |_| (200, node(None, "3").to_string()));
    let said = backend(client)
        .uncordon_if_ours(None, "gpu-node-5", "run 1")
        .await
        .unwrap();
    assert_eq!(said, "node gpu-node-5 was already uncordoned");
}
