//! The startup sweep / gc: leftover probe pods are selected by label and judged by age.

use serde_json::{Value, json};

use super::mock::{mock_client, status};
use crate::probe::pod::probe_selector;
use crate::probe::sweep::{leftover_reason, sweep};

fn probe(name: &str, created: &str, phase: &str) -> Value {
    json!({"metadata": {"name": name, "namespace": "gpu-diagnostics", "creationTimestamp": created,
                        "annotations": {"k8s-gpu-mcp.io/deadline-seconds": "120"},
                        "labels": {"app.kubernetes.io/managed-by": "k8s-gpu-mcp", "app.kubernetes.io/name": "node-probe"}},
           "status": {"phase": phase}})
}

fn ts(secs_ago: i64) -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs_ago)).to_string()
}

#[test]
fn leftover_is_judged_by_deadline_and_phase() {
    let now = jiff::Timestamp::now();
    let p = |v: Value| serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(v).unwrap();
    assert!(leftover_reason(&p(probe("young", &ts(10), "Running")), now, false).is_none());
    assert!(leftover_reason(&p(probe("in-slack", &ts(140), "Running")), now, false).is_none());
    let old = leftover_reason(&p(probe("old", &ts(600), "Running")), now, false).unwrap();
    assert!(old.contains("deadline 120"), "{old}");
    assert!(leftover_reason(&p(probe("failed", &ts(5), "Failed")), now, false).is_some());
    assert!(leftover_reason(&p(probe("young", &ts(10), "Running")), now, true).is_some());
}

#[tokio::test]
async fn sweep_deletes_only_leftovers_and_reports_failures() {
    let (young, old, stuck) = (ts(10), ts(600), ts(900));
    let (client, log) = mock_client(move |r| match r.method.as_str() {
        "GET" => (
            200,
            json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                probe("gpu-probe-a", &young, "Running"),
                probe("gpu-probe-b", &old, "Running"),
                probe("gpu-probe-c", &stuck, "Failed"),
            ]})
            .to_string(),
        ),
        "DELETE" if r.path.ends_with("gpu-probe-c") => (403, status(403, "Forbidden", "no delete")),
        "DELETE" => (200, probe("x", &ts(0), "Running").to_string()),
        _ => (404, status(404, "NotFound", "")),
    });
    let pods = kube::Api::namespaced(client, "gpu-diagnostics");
    let rep = sweep(&pods, "gpu-diagnostics", false).await.unwrap();
    assert_eq!(rep.kept, ["gpu-probe-a"]);
    assert_eq!(rep.deleted, ["gpu-probe-b"]);
    assert_eq!(rep.failed, ["gpu-probe-c"]);
    let log = log.lock().unwrap();
    let list = &log[0];
    let sel = probe_selector()
        .replace('/', "%2F")
        .replace('=', "%3D")
        .replace(',', "%2C");
    assert!(list.query.contains(&sel), "{} vs {sel}", list.query);
    assert!(
        !log.iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("gpu-probe-a"))
    );
}
