//! Many-node calls on the real API server: the one watch of a call's probe pods ignores pods that only copy
//! its label, and a scan the API server throttles (API Priority and Fairness answering 429) backs off and
//! still answers for every node, leaving no pod.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// The probe pod in `ns` that probes `node` (its node annotation), once the launcher created it.
fn wait_for_probe_of(tb: &Testbed, ns: &str, node: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list: Value =
            serde_json::from_str(&tb.kubectl(&["-n", ns, "get", "pods", "-o", "json"]))
                .expect("pod list json");
        if let Some(p) = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["metadata"]["annotations"]["k8s-gpu-mcp.io/node"] == node)
        {
            return p.clone();
        }
        assert!(Instant::now() < deadline, "no probe pod for {node} in {ns}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pod named `name` with `probe`'s labels (the call's batch label included) on `probe`'s node, whose status
/// says it failed: what a tenant who may create pods in the probe namespace could add.
fn create_failed_decoy(tb: &Testbed, probe: &Value, name: &str) {
    let meta = &probe["metadata"];
    let decoy = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "annotations": meta["annotations"],
        },
        "spec": {
            "nodeName": probe["spec"]["nodeName"],
            "restartPolicy": "Never",
            "containers": [{"name": "probe", "image": "registry.invalid/decoy:1"}],
        },
    });
    let out = tb.kubectl_as(
        User::Admin,
        &["create", "-f", "-"],
        Some(&decoy.to_string()),
    );
    assert!(
        out.status.success(),
        "create decoy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tb.kubectl(&[
        "-n",
        meta["namespace"].as_str().unwrap_or_default(),
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Failed","reason":"Evicted","message":"decoy"}}"#,
    ]);
}

/// A tenant copies the batch label of a running scan onto pods of its own that say the probe failed: the
/// scan's one watch sees them, and no probe takes their word. The stuck node's probe still waits for its own
/// pod (and times out as Pending), and the launcher deletes only its own pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_ignores_pods_that_copy_its_batch_label() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-fleet-decoy");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("fleet-decoy");
    let healthy = unique("gpu-fleet-ok");
    let stuck = unique("gpu-fleet-stuck");
    tb.add_nodes(&[
        FakeNode::gpu(&healthy, "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::without_kubelet(&stuck, true).label("e2e-group", &group),
    ]);
    let l = mcp::start(tb, User::Reader, &ns, &["--probe-timeout", "8"]).await;
    let decoys = {
        let ns = ns.clone();
        let stuck = stuck.clone();
        tokio::task::spawn_blocking(move || {
            let probe = wait_for_probe_of(Testbed::shared(), &ns, &stuck);
            assert!(
                probe["metadata"]["labels"]["k8s-gpu-mcp.io/batch"].is_string(),
                "a scan's probe pod carries its batch label: {probe}"
            );
            let name = probe["metadata"]["name"].as_str().unwrap_or_default();
            let decoys = [format!("{name}-decoy"), unique("decoy")];
            for d in &decoys {
                create_failed_decoy(Testbed::shared(), &probe, d);
            }
            (name.to_string(), decoys)
        })
    };
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": format!("e2e-group={group}"), "show_healthy": true}),
        )
        .await;
    let (probe, decoys) = decoys.await.expect("decoys made");
    let v = r.structured_content.clone().expect("structured");
    let t = mcp::text(&r);
    assert_eq!(v["nodes_total"], 2, "{t}");
    assert_eq!(v["nodes_ok"], 1, "{t}");
    assert_eq!(v["healthy_nodes"][0], healthy.as_str(), "{t}");
    let failed = v["needs_attention"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["node"] == stuck.as_str())
        .unwrap_or_else(|| panic!("the stuck node is not ranked: {t}"));
    let err = failed["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("still Pending"),
        "the stuck probe must time out waiting for its own pod: {err}"
    );
    assert!(
        !err.contains("Evicted") && !err.contains("decoy"),
        "a decoy's status reached the probe: {err}"
    );
    // The launcher deleted its pod and nobody else's.
    let left = tb.pods(&ns);
    assert!(!left.contains(&probe), "probe pod {probe} left: {left:?}");
    for d in &decoys {
        assert!(
            left.contains(d),
            "decoy {d} was deleted by the launcher: {left:?}"
        );
    }
    l.stop().await;
    for d in &decoys {
        tb.kubectl(&["-n", &ns, "delete", "pod", d, "--grace-period=0", "--force"]);
    }
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(60)) {
        panic!("pods left in {ns}: {left:?}");
    }
}

/// Requests of priority level `pl` the API server rejected (429) so far.
fn rejected(tb: &Testbed, pl: &str) -> u64 {
    let label = format!("priority_level=\"{pl}\"");
    tb.kubectl(&["get", "--raw", "/metrics"])
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_flowcontrol_rejected_requests_total{") && l.contains(&label)
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The seats the API server gives priority level `pl` (0 until it configured it).
fn seats(tb: &Testbed, pl: &str) -> u64 {
    let label = format!("priority_level=\"{pl}\"");
    tb.kubectl(&["get", "--raw", "/metrics"])
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_flowcontrol_nominal_limit_seats{") && l.contains(&label)
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// API Priority and Fairness gives the launcher's identity (a service account of this test's own) a priority
/// level of a few seats that rejects what does not fit: a scan at concurrency 64 then really gets 429s. The
/// launcher retries them after the server's Retry-After, starts fewer probes while they come, and every node
/// still answers; no probe pod is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_scan_backs_off_and_every_node_answers() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-fleet-429");
    tb.probe_namespace(&ns, User::Reader);
    let sa = "launcher";
    tb.apply(&format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: {sa}, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: k8s-gpu-mcp-probe-{sa}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-probe}}
subjects: [{{kind: ServiceAccount, name: {sa}, namespace: {ns}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: k8s-gpu-mcp-reader-{ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-reader}}
subjects: [{{kind: ServiceAccount, name: {sa}, namespace: {ns}}}]
"#
    ));
    let token = tb.kubectl(&["-n", &ns, "create", "token", sa, "--duration=1h"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("launcher.kubeconfig");
    let reader = std::fs::read_to_string(tb.kubeconfig(User::Reader)).expect("reader kubeconfig");
    std::fs::write(
        &kubeconfig,
        reader.replace(tb.token(User::Reader), token.trim()),
    )
    .expect("write kubeconfig");

    // One share among the built-in levels' 245 of the server's 600 seats: 3 seats, none lent or borrowed,
    // and what does not fit is rejected at once (no queue).
    let pl = unique("e2e-fleet-429");
    tb.apply(&format!(
        r#"apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: {{name: {pl}}}
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: {{type: Reject}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {{name: {pl}}}
spec:
  priorityLevelConfiguration: {{name: {pl}}}
  matchingPrecedence: 100
  distinguisherMethod: {{type: ByUser}}
  rules:
  - subjects: [{{kind: ServiceAccount, serviceAccount: {{name: {sa}, namespace: {ns}}}}}]
    resourceRules:
    - {{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}}
    nonResourceRules:
    - {{verbs: ["*"], nonResourceURLs: ["*"]}}
"#
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while seats(tb, &pl) == 0 {
        assert!(
            Instant::now() < deadline,
            "the API server never configured priority level {pl}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let nominal = seats(tb, &pl);

    let group = unique("fleet-429");
    let nodes: Vec<FakeNode> = (0..40)
        .map(|i| {
            FakeNode::gpu(&unique(&format!("gpu-429-{i}")), "dgx-h100-healthy")
                .label("e2e-group", &group)
        })
        .collect();
    tb.add_nodes(&nodes);
    let l = mcp::start_with_kubeconfig(&kubeconfig, &ns, &[]).await;
    let before = rejected(tb, &pl);
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": format!("e2e-group={group}"), "concurrency": 64}),
        )
        .await;
    let t = mcp::text(&r);
    let v = r
        .structured_content
        .clone()
        .unwrap_or_else(|| panic!("{t}\n{}", l.stderr()));
    let throttled = rejected(tb, &pl) - before;
    eprintln!(
        "priority level {pl}: {nominal} seats; {throttled} requests rejected with 429 during the scan"
    );
    assert!(
        throttled > 0,
        "the API server never answered 429 ({nominal} seats): the test proves nothing\n{t}"
    );
    assert_eq!(v["nodes_total"], 40, "{t}");
    assert_eq!(
        v["nodes_ok"],
        40,
        "every node answers despite the 429s: {t}\n{}",
        l.stderr()
    );
    assert_eq!(v["nodes_failed"], 0, "{t}");
    assert!(
        l.stderr().contains("fewer probes at once"),
        "the fan-out did not shrink:\n{}",
        l.stderr()
    );
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
    tb.kubectl(&["delete", "flowschema", &pl]);
    tb.kubectl(&["delete", "prioritylevelconfiguration", &pl]);
    tb.kubectl(&[
        "delete",
        "clusterrolebinding",
        &format!("k8s-gpu-mcp-reader-{ns}"),
    ]);
}
