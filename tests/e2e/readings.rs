//! A conversation's questions about a node cost one probe pod, on the real API server with kwok nodes: five
//! different read-only tools in a row on one node start one pod (counted by the API server's own request
//! counters), each later answer says how old its reading is; another node gets its own pod; an operator
//! action drops the node's reading, so the next question starts a fresh pod.

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

const FIVE: [&str; 5] = [
    "get_gpu_health",
    "get_gpu_processes",
    "inspect_topology",
    "snapshot_ecc",
    "get_gpu_inventory",
];

/// Pods created in the API server so far (its `apiserver_request_total`, verb `POST`, resource `pods`).
fn pods_created(tb: &Testbed) -> u64 {
    let counts = tb.request_counts();
    let n = counts
        .iter()
        .filter(|(k, _)| matches!(k.to_lowercase().as_str(), "create pods" | "post pods"))
        .map(|(_, v)| *v)
        .sum();
    assert!(
        counts.keys().any(|k| k.to_lowercase().ends_with(" pods")),
        "no pod requests counted: {counts:?}"
    );
    n
}

fn fresh(v: &Value) -> bool {
    v["run"]["reading_age_s"] == 0 && v["run"].get("reading_reused").is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_about_a_node_costs_one_probe_pod() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-readings");
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    crate::operator::bind_operator(tb, User::Operator);
    let (node, other) = (unique("gpu-node-conv"), unique("gpu-node-conv2"));
    tb.add_nodes(&[
        FakeNode::gpu(&node, "dgx-h100-healthy"),
        FakeNode::gpu(&other, "dgx-h100-xid79"),
    ]);
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let start = pods_created(tb);
    let mut pod = None;
    for (i, tool) in FIVE.iter().enumerate() {
        let r = l.call(tool, json!({"node_name": node})).await;
        let text = mcp::text(&r);
        let v = r.structured_content.clone().expect("structured");
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        assert_eq!(v["run"]["probe"]["source"], "simulated:dgx-h100-healthy");
        if i == 0 {
            assert!(fresh(&v), "{tool}: {}", v["run"]);
            pod = Some(v["run"]["ran_in"].clone());
        } else {
            assert_eq!(v["run"]["reading_reused"], true, "{tool}: {}", v["run"]);
            let age = v["run"]["reading_age_s"].as_u64().expect("age");
            assert!(age <= 20, "{tool}: {}", v["run"]);
            assert!(
                text.contains(&format!("read {age} s ago")),
                "{tool}: {text}"
            );
            assert_eq!(
                Some(v["run"]["ran_in"].clone()),
                pod,
                "the first call's pod"
            );
        }
    }
    assert_eq!(pods_created(tb) - start, 1, "five questions, one probe pod");
    // Another node: its own reading, its own pod.
    let v = l.ok("get_gpu_health", json!({"node_name": other})).await;
    assert!(fresh(&v), "{}", v["run"]);
    assert_eq!(v["run"]["probe"]["source"], "simulated:dgx-h100-xid79");
    assert_eq!(pods_created(tb) - start, 2);
    // An operator action (kill's preflight through a pod; refused on this node) drops the reading.
    let before = pods_created(tb);
    let _ = l
        .call(
            "kill_gpu_process",
            json!({"node_name": node, "pid": 1, "confirm": format!("{node}/pid/1")}),
        )
        .await;
    assert!(pods_created(tb) > before, "the action probed the node");
    let before = pods_created(tb);
    let v = l.ok("get_gpu_telemetry", json!({"node_name": node})).await;
    assert!(fresh(&v), "read afresh after the action: {}", v["run"]);
    assert_eq!(pods_created(tb) - before, 1);
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}
