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

/// JSON merge patch (RFC 7386): objects merge, null deletes, anything else replaces.
fn merge(into: &mut Value, patch: &Value) {
    match (into.as_object_mut(), patch.as_object()) {
        (Some(o), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    o.remove(k);
                } else {
                    merge(o.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *into = patch.clone(),
    }
}

/// An API server holding one node: GET reads it (and a list of it), a merge PATCH naming a stale
/// resourceVersion is refused with 409 as the real one does; `meanwhile` runs once before the first
/// PATCH is judged (someone else's change between the run's read and its patch).
fn node_server(
    node: Value,
    meanwhile: impl FnOnce(&mut Value) + Send + 'static,
) -> (
    kube::Client,
    super::mock::Log,
    std::sync::Arc<std::sync::Mutex<Value>>,
) {
    let state = std::sync::Arc::new(std::sync::Mutex::new(node));
    let s2 = state.clone();
    let mut meanwhile = Some(meanwhile);
    let (client, log) = mock_client(move |r| {
        let mut n = s2.lock().unwrap();
        match r.method.as_str() {
            "GET" if r.path.ends_with("/nodes") => (
                200,
                json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [*n]})
                    .to_string(),
            ),
            "GET" => (200, n.to_string()),
            "PATCH" => {
                if let Some(f) = meanwhile.take() {
                    f(&mut n);
                }
                let p: Value = serde_json::from_str(&r.body).unwrap();
                let rv = n["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string();
                if p["metadata"]["resourceVersion"]
                    .as_str()
                    .is_some_and(|v| v != rv)
                {
                    return (409, status(409, "Conflict", "the object has been modified"));
                }
                merge(&mut n, &p);
                let next = rv.parse::<u64>().unwrap() + 1;
                n["metadata"]["resourceVersion"] = json!(next.to_string());
                (200, n.to_string())
            }
            _ => (500, status(500, "InternalError", "unexpected")),
        }
    });
    (client, log, state)
}

fn taint_keys(n: &Value) -> Vec<String> {
    n["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["key"].as_str().unwrap().to_string())
        .collect()
}

/// A run's mark on a node someone cordoned, beside another run's mark: set beside them, lifted alone; the
/// cordon (`spec.unschedulable` and its taint) and the other run's mark stay, and the answer says so.
#[tokio::test]
async fn a_runs_mark_touches_no_cordon_and_no_other_runs_mark() {
    use crate::cluster::run_mark::RunMark;
    let now = jiff::Timestamp::now();
    let other = RunMark::new(now, 900).unwrap();
    let ours = RunMark::new(now, 900).unwrap();
    let mut n = node_json("gpu-node-5", "True");
    n["spec"] = json!({"unschedulable": true, "taints": [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
        serde_json::to_value(other.taint()).unwrap(),
    ]});
    let (client, log, state) = node_server(n, |_| {});
    let b = backend(client);
    let set = b.set_run_mark(None, "gpu-node-5", &ours).await.unwrap();
    assert!(set.cordoned_before);
    assert_eq!(set.other_runs, vec![other.key()]);
    assert_eq!(set.taint, ours.text());
    {
        let n = state.lock().unwrap();
        assert_eq!(
            taint_keys(&n),
            vec![
                "node.kubernetes.io/unschedulable".to_string(),
                other.key(),
                ours.key()
            ]
        );
        assert_eq!(n["spec"]["unschedulable"], true);
    }
    // Set twice (a retried call): nothing patched the second time.
    let patches = |log: &super::mock::Log| {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "PATCH")
            .count()
    };
    assert_eq!(patches(&log), 1);
    b.set_run_mark(None, "gpu-node-5", &ours).await.unwrap();
    assert_eq!(patches(&log), 1);
    // Every patch names the taints only, with the resourceVersion it read: never spec.unschedulable.
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.method == "PATCH")
            .all(|r| {
                !r.body.contains("unschedulable\":") && r.body.contains("resourceVersion")
            })
    );
    let said = b
        .lift_run_mark(None, "gpu-node-5", &ours.key())
        .await
        .unwrap();
    assert!(
        said.contains("lifted") && said.contains("its cordon") && said.contains(&other.key()),
        "{said}"
    );
    {
        let n = state.lock().unwrap();
        assert_eq!(
            taint_keys(&n),
            vec!["node.kubernetes.io/unschedulable".to_string(), other.key()]
        );
        assert_eq!(
            n["spec"]["unschedulable"], true,
            "someone's cordon was undone"
        );
    }
    let said = b
        .lift_run_mark(None, "gpu-node-5", &ours.key())
        .await
        .unwrap();
    assert!(said.contains("already gone"), "{said}");
}

/// Someone taints the node between the run's read and its patch: the patch carries the resourceVersion
/// it read, the API server refuses it (409), and the run reads again: their taint and the run's both stay.
/// The same for the lift.
#[tokio::test]
async fn a_change_meanwhile_is_read_again_not_overwritten() {
    use crate::cluster::run_mark::RunMark;
    let ours = RunMark::new(jiff::Timestamp::now(), 900).unwrap();
    let someone = |n: &mut Value| {
        let mut t = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
        t.push(json!({"key": format!("example.com/m{}", t.len()), "effect": "NoSchedule"}));
        n["spec"]["taints"] = json!(t);
        let rv = n["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap();
        n["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
    };
    let (client, log, state) = node_server(node_json("gpu-node-5", "True"), someone);
    let b = backend(client);
    b.set_run_mark(None, "gpu-node-5", &ours).await.unwrap();
    assert_eq!(
        taint_keys(&state.lock().unwrap()),
        vec!["example.com/m0".to_string(), ours.key()]
    );
    let statuses: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(
        statuses,
        ["GET", "PATCH", "GET", "PATCH"],
        "no read again after the 409"
    );
    let (client, _, state) = node_server(state.lock().unwrap().clone(), someone);
    backend(client)
        .lift_run_mark(None, "gpu-node-5", &ours.key())
        .await
        .unwrap();
    assert_eq!(
        taint_keys(&state.lock().unwrap()),
        // Someone's second taint is named by the list's length then: m2.
        vec!["example.com/m0".to_string(), "example.com/m2".to_string()]
    );
}

/// The sweep lifts a gone run's mark (deadline passed, not live here) and keeps one within its deadline
/// and one of a live run of this process even past it.
#[tokio::test]
async fn a_sweep_lifts_gone_runs_marks_only() {
    use crate::cluster::run_mark::{Live, RunMark};
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    let gone = RunMark::new(long_ago, 60).unwrap();
    let live_late = RunMark::new(long_ago, 60).unwrap();
    let going = RunMark::new(jiff::Timestamp::now(), 900).unwrap();
    let mut n = node_json("gpu-node-5", "True");
    n["spec"] = json!({"taints": [gone.taint(), live_late.taint(), going.taint()]});
    let (client, _, state) = node_server(n, |_| {});
    let _held = Live::hold(&live_late.id);
    let m = backend(client)
        .sweep_run_marks(None, None, &crate::cluster::run_mark::live())
        .await
        .unwrap();
    assert_eq!(m.lifted.len(), 1, "{m:?}");
    assert!(m.lifted[0].contains(&gone.key()), "{m:?}");
    assert_eq!(m.kept.len(), 2, "{m:?}");
    assert_eq!(
        taint_keys(&state.lock().unwrap()),
        vec![live_late.key(), going.key()]
    );
}
