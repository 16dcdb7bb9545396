//! The launcher end to end: MCP over stdio -> probe pod on a kwok node through the real apiserver ->
//! websocket exec of node-probe -> the node's scenario -> delete. As deploy/'s least-privilege user.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp::{self, Launcher, has_str};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// The three simulated GPU nodes every cluster of these tests has, each with its own scenario.
const SCENARIOS: &[&str] = &[
    "dgx-h100-healthy",
    "dgx-h100-xid79",
    "dgx-a100-row-remap-pending",
];

/// A probe namespace bound like deploy/ binds gpu-diagnostics, plus three GPU nodes (one per scenario)
/// carrying a label unique to this test, so scans and listings see only them.
struct Cluster {
    tb: &'static Testbed,
    ns: String,
    group: String,
    nodes: Vec<(String, &'static str)>,
}

fn cluster(tag: &str) -> Cluster {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-{tag}"));
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique(tag);
    let nodes: Vec<(String, &'static str)> = SCENARIOS
        .iter()
        .enumerate()
        .map(|(i, s)| (unique(&format!("gpu-node-{}", i + 1)), *s))
        .collect();
    let fake: Vec<FakeNode> = nodes
        .iter()
        .map(|(n, s)| {
            let node = FakeNode::gpu(n, s).label("e2e-group", &group);
            if s.starts_with("dgx-a100") {
                node.product("NVIDIA-A100-SXM4-80GB")
            } else {
                node
            }
        })
        .collect();
    tb.add_nodes(&fake);
    Cluster {
        tb,
        ns,
        group,
        nodes,
    }
}

impl Cluster {
    fn selector(&self) -> String {
        format!("e2e-group={}", self.group)
    }
    async fn launcher(&self, user: User, extra: &[&str]) -> Launcher {
        mcp::start(self.tb, user, &self.ns, extra).await
    }
    /// The syringe's promise: nothing left in the probe namespace.
    fn assert_no_pods(&self) {
        if let Err(left) = self.tb.wait_no_pods(&self.ns, Duration::from_secs(120)) {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }
    fn add(&self, node: FakeNode) -> String {
        let name = node.name.clone();
        self.tb
            .add_nodes(&[node.label("e2e-group-extra", &self.group)]);
        name
    }
}

fn source(v: &Value) -> &str {
    v["run"]["probe"]["source"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_tool_answers_for_each_node() {
    if skipped() {
        return;
    }
    let c = cluster("tools");
    let l = c.launcher(User::Reader, &[]).await;
    for (node, scenario) in &c.nodes {
        for tool in &mcp::tools::node_tools(mcp::LAUNCHER) {
            let v = l.ok(tool, json!({"node_name": node})).await;
            assert_eq!(v["node"], node.as_str(), "{tool}: {v}");
            assert_eq!(
                source(&v),
                format!("simulated:{scenario}"),
                "{tool} on {node}: {v}"
            );
            assert_eq!(v["run"]["probe"]["node_name"], node.as_str(), "{tool}: {v}");
            let ran_in = v["run"]["ran_in"].as_str().unwrap_or_default();
            assert!(
                ran_in.starts_with(&format!("{}/", c.ns)),
                "{tool}: ran in {ran_in}"
            );
            assert!(!v["report"].is_null(), "{tool}: no report: {v}");
            c.assert_no_pods();
        }
    }
    // Each node answers with its own facts: the A100 scenario on node 3, two distinct H100 systems on 1 and 2.
    let mut uuids = Vec::new();
    for (node, scenario) in &c.nodes {
        let inv = l.ok("get_gpu_inventory", json!({"node_name": node})).await;
        let gpu0 = &inv["report"]["gpus"][0];
        let want = if scenario.contains("a100") {
            "A100"
        } else {
            "H100"
        };
        assert!(
            gpu0["name"].as_str().unwrap_or_default().contains(want),
            "{node}: {gpu0}"
        );
        assert_eq!(inv["report"]["device_count"], 8, "{node}: {inv}");
        uuids.push(gpu0["uuid"].as_str().unwrap_or_default().to_string());
    }
    assert!(uuids[0] != uuids[1] && uuids[1] != uuids[2], "{uuids:?}");
    l.stop().await;
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_gpu_node_joins_probe_and_api_server() {
    if skipped() {
        return;
    }
    let c = cluster("describe");
    let l = c.launcher(User::Reader, &[]).await;
    for (node, scenario) in &c.nodes {
        let v = l.ok("describe_gpu_node", json!({"node_name": node})).await;
        // Kubernetes half: GFD labels and GPU capacity from the API server.
        assert!(
            has_str(&v, "nvidia.com/gpu.product") || has_str(&v, "NVIDIA-"),
            "{v}"
        );
        // Probe half: that node's scenario.
        assert!(has_str(&v, &format!("simulated:{scenario}")), "{node}: {v}");
        c.assert_no_pods();
    }
    // The probe fails on a NotReady node, the Kubernetes half still answers.
    let down = c.add(FakeNode::without_kubelet(&unique("gpu-down"), false));
    let r = l
        .call("describe_gpu_node", json!({"node_name": down}))
        .await;
    let body = format!(
        "{} {}",
        mcp::text(&r),
        serde_json::to_string(&r.structured_content).unwrap()
    );
    assert!(body.contains(&down), "{body}");
    assert!(body.to_lowercase().contains("not ready"), "{body}");
    l.stop().await;
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_tools_read_nodes_and_allocations() {
    if skipped() {
        return;
    }
    let c = cluster("clustertools");
    // A training pod holding 2 GPUs on the first node (kwok marks it running).
    let wl = unique("e2e-workloads");
    let node = &c.nodes[0].0;
    c.tb.apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {wl}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: default, namespace: {wl}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: trainer-0, namespace: {wl}}}
spec:
  nodeName: {node}
  containers:
  - name: train
    image: registry.invalid/train:1
    resources:
      limits: {{nvidia.com/gpu: "2"}}
"#
    ));
    let l = c.launcher(User::Reader, &[]).await;
    let v = l
        .ok("list_gpu_nodes", json!({"label_selector": c.selector()}))
        .await;
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{v}");
    for n in nodes {
        assert_eq!(n["gpu_capacity"], 8, "{n}");
        assert_eq!(n["ready"], true, "{n}");
        assert!(n["gpu_labels"]["nvidia.com/gpu.product"].is_string(), "{n}");
    }
    let first = nodes
        .iter()
        .find(|n| n["name"] == node.as_str())
        .expect("node listed");
    assert_eq!(first["gpu_allocated"], 2, "{first}");

    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": node}))
        .await;
    assert!(has_str(&v, "trainer-0"), "{v}");
    assert!(v.to_string().contains("nvidia.com/gpu"), "{v}");
    l.stop().await;
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_gpu_nodes_covers_every_selected_node() {
    if skipped() {
        return;
    }
    let c = cluster("scan");
    let l = c.launcher(User::Reader, &[]).await;
    for check in ["health", "xid", "ecc"] {
        let v = l
            .ok(
                "scan_gpu_nodes",
                json!({"check": check, "label_selector": c.selector(), "show_healthy": true}),
            )
            .await;
        assert_eq!(v["nodes_total"], 3, "{check}: {v}");
        assert_eq!(v["nodes_ok"], 3, "{check}: {v}");
        assert_eq!(v["nodes_failed"], 0, "{check}: {v}");
        // Every node is either ranked or named healthy.
        for (node, _) in &c.nodes {
            assert!(has_str(&v, node), "{check}: {node} missing: {v}");
        }
        assert_eq!(
            v["needs_attention_total"].as_u64().unwrap() + v["nodes_healthy"].as_u64().unwrap(),
            3,
            "{check}: {v}"
        );
        c.assert_no_pods();
    }
    // The healthy node is never ranked above the one whose GPU fell off the bus.
    let v = l
        .ok(
            "scan_gpu_nodes",
            json!({"check": "health", "label_selector": c.selector()}),
        )
        .await;
    let ranked: Vec<&str> = v["needs_attention"]
        .as_array()
        .expect("needs_attention")
        .iter()
        .filter_map(|e| e["node"].as_str())
        .collect();
    let pos = |n: &str| ranked.iter().position(|r| *r == n);
    // The node whose GPU fell off the bus is ranked (else the order below would hold vacuously).
    let sick = pos(&c.nodes[1].0).unwrap_or_else(|| panic!("the XID 79 node is not ranked: {v}"));
    if let Some(healthy) = pos(&c.nodes[0].0) {
        assert!(sick < healthy, "{v}");
    }
    l.stop().await;
    c.assert_no_pods();
}

/// A fleet answer stays small: 80 healthy nodes are counted, not listed, while the sick ones are ranked in
/// full and pages reach every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_and_list_of_many_nodes_rank_problems_and_count_the_rest() {
    if skipped() {
        return;
    }
    let c = cluster("fleet");
    for i in 0..80 {
        c.add(FakeNode::gpu(
            &unique(&format!("fleet-{i}")),
            "dgx-h100-healthy",
        ));
    }
    let sick = [
        c.add(FakeNode::gpu(&unique("fleet-xid79"), "dgx-h100-xid79")),
        c.add(FakeNode::gpu(&unique("fleet-ib"), "dgx-h100-ib-flapping")),
    ];
    let extra = format!("e2e-group-extra={}", c.group);
    let l = c.launcher(User::Reader, &[]).await;
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": extra, "concurrency": 32, "limit": 1}),
        )
        .await;
    let (t, v) = (
        mcp::text(&r),
        r.structured_content.clone().expect("structured"),
    );
    assert_eq!(v["nodes_total"], 82, "{t}");
    assert_eq!(v["nodes_healthy"], 80, "{t}");
    assert_eq!(v["needs_attention_total"], 2, "{t}");
    // The fallen-off-the-bus node first, alone on this page; the page after it has the other.
    let page = v["needs_attention"].as_array().unwrap();
    assert_eq!(page.len(), 1, "{t}");
    assert_eq!(page[0]["node"], sick[0].as_str(), "{t}");
    assert_eq!(v["next_offset"], 1, "{t}");
    assert!(t.contains("More: call again with offset=1."), "{t}");
    assert!(t.contains("80 healthy node(s) not named"), "{t}");
    assert!(!t.contains("fleet-0"), "healthy nodes named: {t}");
    assert!(t.len() <= 8 * 1024, "{} bytes: {t}", t.len());
    assert!(
        v.to_string().len() <= 48 * 1024,
        "{} bytes",
        v.to_string().len()
    );
    let v = l
        .ok(
            "scan_gpu_nodes",
            json!({"label_selector": extra, "concurrency": 32, "offset": 1, "show_healthy": true}),
        )
        .await;
    assert_eq!(v["needs_attention"][0]["node"], sick[1].as_str(), "{v}");
    assert_eq!(v["needs_attention"][0]["rank"], 2, "{v}");
    assert_eq!(v["healthy_nodes"].as_array().unwrap().len(), 80, "{v}");

    // list_gpu_nodes: groups cover every node, one page is listed, the next page continues it.
    let r = l
        .call(
            "list_gpu_nodes",
            json!({"label_selector": extra, "limit": 50}),
        )
        .await;
    let (t, v) = (
        mcp::text(&r),
        r.structured_content.clone().expect("structured"),
    );
    assert_eq!(v["count"], 82, "{t}");
    assert_eq!(v["nodes"].as_array().unwrap().len(), 50, "{t}");
    assert_eq!(v["groups"][0]["nodes_count"], 82, "{t}");
    assert_eq!(v["next_offset"], 50, "{t}");
    assert!(
        t.contains("Listed 1-50 of 82; call again with offset=50"),
        "{t}"
    );
    let v2 = l
        .ok(
            "list_gpu_nodes",
            json!({"label_selector": extra, "limit": 50, "offset": 50}),
        )
        .await;
    assert_eq!(v2["nodes"].as_array().unwrap().len(), 32, "{v2}");
    assert!(v2.get("next_offset").is_none(), "{v2}");
    let mut names: Vec<String> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v2["nodes"].as_array().unwrap())
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 82);
    l.stop().await;
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_not_ready_is_refused_clearly() {
    if skipped() {
        return;
    }
    let c = cluster("notready");
    let down = c.add(FakeNode::without_kubelet(&unique("gpu-down"), false));
    let l = c.launcher(User::Reader, &[]).await;
    let err = l.err("get_gpu_health", json!({"node_name": down})).await;
    assert!(err.contains(&down), "{err}");
    assert!(err.to_lowercase().contains("not ready"), "{err}");
    // The probe pod is created while the node is read (image delivery): gone by the time the call answers.
    assert_eq!(c.tb.pods(&c.ns), Vec::<String>::new());
    // A node that does not exist at all.
    let err = l
        .err("get_gpu_health", json!({"node_name": "gpu-node-absent"}))
        .await;
    assert!(
        err.contains("gpu-node-absent") && err.contains("not"),
        "{err}"
    );
    assert_eq!(c.tb.pods(&c.ns), Vec::<String>::new());
    l.stop().await;
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_pod_that_never_starts_times_out_and_is_deleted() {
    if skipped() {
        return;
    }
    let c = cluster("nostart");
    let stuck = c.add(FakeNode::without_kubelet(&unique("gpu-stuck"), true));
    let l = c.launcher(User::Reader, &["--probe-timeout", "6"]).await;
    let t = Instant::now();
    let err = l.err("get_gpu_health", json!({"node_name": stuck})).await;
    // 6 s of probe timeout, then the pod's deletion: far below the default timeout on any machine.
    assert!(
        t.elapsed() < Duration::from_secs(90),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains(&stuck), "{err}");
    c.assert_no_pods();
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_failure_document_is_reported() {
    if skipped() {
        return;
    }
    let c = cluster("probefail");
    // node-probe exits non-zero with its failure document: the fixture does not exist.
    let bad = c.add(FakeNode::gpu(
        &unique("gpu-bad"),
        "/nonexistent/fixture.json",
    ));
    let l = c.launcher(User::Reader, &[]).await;
    let err = l.err("get_gpu_health", json!({"node_name": bad})).await;
    assert!(
        err.contains("cannot read fixture"),
        "the probe's own error should reach the user: {err}"
    );
    c.assert_no_pods();
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_printing_garbage_is_reported() {
    if skipped() {
        return;
    }
    let c = cluster("garbage");
    let node = c.add(FakeNode::garbage(&unique("gpu-garbage")));
    let l = c.launcher(User::Reader, &[]).await;
    let err = l.err("get_gpu_health", json!({"node_name": node})).await;
    assert!(err.contains(&node), "{err}");
    assert!(
        err.contains("garbage on stderr"),
        "stderr tail should be shown: {err}"
    );
    c.assert_no_pods();
    // The launcher is still fine.
    l.ok("get_gpu_health", json!({"node_name": c.nodes[0].0}))
        .await;
    l.stop().await;
    c.assert_no_pods();
}

/// Wait until a probe pod exists in `ns`.
fn wait_for_pod(tb: &Testbed, ns: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(p) = tb.pods(ns).into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "no probe pod appeared in {ns}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_mid_call_deletes_the_pod() {
    if skipped() {
        return;
    }
    let c = cluster("cancel");
    let stuck = c.add(FakeNode::without_kubelet(&unique("gpu-stuck"), true));
    let l = c.launcher(User::Reader, &["--probe-timeout", "120"]).await;
    let handle = l
        .start_call("get_gpu_health", json!({"node_name": stuck}))
        .await;
    let pod = wait_for_pod(c.tb, &c.ns);
    handle
        .cancel(Some("test cancels".into()))
        .await
        .expect("send cancel");
    let t = Instant::now();
    if let Err(left) = c.tb.wait_no_pods(&c.ns, Duration::from_secs(120)) {
        panic!(
            "pod {pod} not deleted after cancel: {left:?}\n{}",
            l.stderr()
        );
    }
    eprintln!("pod {pod} gone {:?} after cancel", t.elapsed());
    // The launcher keeps serving.
    l.ok("get_gpu_health", json!({"node_name": c.nodes[0].0}))
        .await;
    l.stop().await;
    c.assert_no_pods();
}

/// Whether process `pid` has exited (gone, or a zombie its parent has not reaped yet).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

fn signal(sig: &str, pid: u32) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A host stopping a slow server (SIGTERM) or a person's Ctrl-C (SIGINT) mid-call: `serve` cancels the call,
/// deletes its probe pod and exits within seconds; `call` does the same and exits 128 + the signal's number.
/// Before, `serve` exited at once on SIGTERM and left its pods until their deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_mid_call_deletes_the_probe_pod_before_exit() {
    if skipped() {
        return;
    }
    let c = cluster("signal");
    let stuck = c.add(FakeNode::without_kubelet(&unique("gpu-stuck"), true));
    for sig in ["TERM", "INT"] {
        let l = c.launcher(User::Reader, &["--probe-timeout", "120"]).await;
        let _call = l
            .start_call("get_gpu_health", json!({"node_name": stuck}))
            .await;
        let pod = wait_for_pod(c.tb, &c.ns);
        let t = Instant::now();
        signal(sig, l.pid);
        while !exited(l.pid) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "serve still running {:?} after SIG{sig}\n{}",
                t.elapsed(),
                l.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = t.elapsed();
        let left = c.tb.pods(&c.ns);
        assert!(
            left.is_empty() || c.tb.wait_no_pods(&c.ns, Duration::from_secs(5)).is_ok(),
            "serve exited on SIG{sig} leaving {left:?}\n{}",
            l.stderr()
        );
        assert!(
            l.stderr().contains("stopping: no new probes"),
            "{}",
            l.stderr()
        );
        eprintln!("serve: SIG{sig} -> pod {pod} deleted and exit in {took:?}");
    }
    // `call` from a shell: the same, with the exit status a shell reports for the signal.
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let child = tokio::process::Command::new(mcp::LAUNCHER)
            .arg("--kubeconfig")
            .arg(c.tb.kubeconfig(User::Reader))
            .args(["--namespace", &c.ns, "--probe-image", mcp::E2E_PROBE_IMAGE])
            .args(["--probe-timeout", "120", "call", "get_gpu_health"])
            .args(["--arg", &format!("node_name={stuck}")])
            .env_remove("KUBECONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start k8s-gpu-mcp call");
        let pod = wait_for_pod(c.tb, &c.ns);
        let t = Instant::now();
        signal(sig, child.id().unwrap());
        let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("call still running 20 s after SIG{sig}"))
            .unwrap();
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("SIG{sig}: stopping the probes")),
            "{err}"
        );
        let left = c.tb.pods(&c.ns);
        assert!(
            left.is_empty() || c.tb.wait_no_pods(&c.ns, Duration::from_secs(5)).is_ok(),
            "call exited on SIG{sig} leaving {left:?}\n{err}"
        );
        eprintln!("call: SIG{sig} -> pod {pod} deleted and exit {code} in {took:?}");
    }
    c.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_launcher_leftover_is_swept_on_restart() {
    if skipped() {
        return;
    }
    let c = cluster("sigkill");
    let stuck = c.add(FakeNode::without_kubelet(&unique("gpu-stuck"), true));
    // A short pod deadline so the leftover is past it (plus the sweep's slack) soon.
    let l = c
        .launcher(
            User::Reader,
            &["--probe-timeout", "120", "--probe-deadline", "1"],
        )
        .await;
    let _handle = l
        .start_call("get_gpu_health", json!({"node_name": stuck}))
        .await;
    let pod = wait_for_pod(c.tb, &c.ns);
    l.kill9();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        c.tb.pods(&c.ns),
        vec![pod.clone()],
        "the leftover should still be there"
    );
    // Past activeDeadlineSeconds (1 s) + the sweep's 30 s slack.
    std::thread::sleep(Duration::from_secs(32));
    let l2 = c.launcher(User::Reader, &[]).await;
    l2.ok("list_gpu_nodes", json!({"label_selector": c.selector()}))
        .await;
    if let Err(left) = c.tb.wait_no_pods(&c.ns, Duration::from_secs(120)) {
        panic!("restart sweep left {left:?}\n{}", l2.stderr());
    }
    l2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denied_is_reported_not_hidden() {
    if skipped() {
        return;
    }
    let c = cluster("rbac");
    // No binding at all.
    let l = c.launcher(User::Nobody, &[]).await;
    let err = l.err("list_gpu_nodes", json!({})).await;
    assert!(err.to_lowercase().contains("forbidden"), "{err}");
    let err = l
        .err("get_gpu_health", json!({"node_name": c.nodes[0].0}))
        .await;
    assert!(
        err.to_lowercase().contains("forbidden") || err.contains("not allowed"),
        "{err}"
    );
    l.stop().await;
    // The reader role, but a probe namespace where it has no RoleBinding: pod create is refused.
    let other = unique("e2e-unbound");
    c.tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {other}\n  labels: {{pod-security.kubernetes.io/enforce: privileged}}\n"
    ));
    let l = mcp::start(c.tb, User::Reader, &other, &[]).await;
    let err = l
        .err("get_gpu_health", json!({"node_name": c.nodes[0].0}))
        .await;
    assert!(
        err.to_lowercase().contains("forbidden") || err.contains("not allowed"),
        "{err}"
    );
    assert!(c.tb.pods(&other).is_empty());
    l.stop().await;
    c.assert_no_pods();
}

/// Probe pods ask for the system-node-critical priority class (the kubelet admits them under node pressure).
/// A cluster that refuses it for the probe namespace (here a ResourceQuota allowing no pods of that class) still
/// gets its probe: the pod is created again without the class, and later calls skip it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_priority_class_falls_back_to_none() {
    if skipped() {
        return;
    }
    let c = cluster("prio");
    c.tb.apply(&format!(
        r#"apiVersion: v1
kind: ResourceQuota
metadata: {{name: no-critical, namespace: {ns}}}
spec:
  hard: {{pods: "0"}}
  scopeSelector:
    matchExpressions:
    - {{operator: In, scopeName: PriorityClass, values: [system-node-critical]}}
"#,
        ns = c.ns
    ));
    // No controller-manager here computes the quota's status, and admission enforces only a quota with one.
    c.tb.kubectl(&[
        "-n",
        &c.ns,
        "patch",
        "resourcequota",
        "no-critical",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"hard":{"pods":"0"},"used":{"pods":"0"}}}"#,
    ]);
    let l = c.launcher(User::Reader, &[]).await;
    let node = c.nodes[0].0.clone();
    for _ in 0..2 {
        let v = l.ok("get_gpu_health", json!({"node_name": node})).await;
        assert_eq!(v["run"]["probe"]["node_name"], node.as_str());
    }
    let log = l.stderr();
    assert_eq!(
        log.matches("refuses the probe pod's priority class")
            .count(),
        1,
        "one refusal, then remembered: {log}"
    );
    l.stop().await;
    c.assert_no_pods();
}
