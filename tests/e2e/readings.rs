//! A conversation's questions about a node cost one probe pod, on the real API server with kwok nodes: five
//! different read-only tools in a row on one node start one pod (counted in the launcher's log), each later
//! answer says how old its reading is; another node gets its own pod; an operator action drops the node's
//! reading, so the next question starts a fresh pod. The Xid question answers from the kept reading as the
//! others do, the same as the node's log read afresh; a window reads afresh and says why. On the team server, two people on one node: each
//! reading is made and served with its own person's rights.

use serde_json::json;

use crate::mcp::{self, CONVERSATION as FIVE, assert_reused, fresh};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

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
    let mut pod = serde_json::Value::Null;
    for (i, tool) in FIVE.iter().enumerate() {
        let r = l.call(tool, json!({"node_name": node})).await;
        let text = mcp::text(&r);
        let v = r.structured_content.clone().expect("structured");
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        assert_eq!(v["run"]["probe"]["source"], "simulated:dgx-h100-healthy");
        if i == 0 {
            assert!(fresh(&v), "{tool}: {}", v["run"]);
            pod = v["run"]["ran_in"].clone();
        } else {
            assert_reused(tool, &v, &text, &pod);
        }
    }
    assert_eq!(l.pods_created(&node), 1, "five questions, one probe pod");
    // Another node: its own reading, its own pod.
    let v = l.ok("get_gpu_health", json!({"node_name": other})).await;
    assert!(fresh(&v), "{}", v["run"]);
    assert_eq!(v["run"]["probe"]["source"], "simulated:dgx-h100-xid79");
    assert_eq!(l.pods_created(&other), 1);
    assert_eq!(l.pods_created(&node), 1);
    // The Xid question after it: from that reading, no pod, its age said, and the same events and
    // findings as the node's whole log read afresh (`max_age_s` 0, a pod of its own).
    let r = l
        .call("analyze_xid_errors", json!({"node_name": other}))
        .await;
    let (text, kept) = (mcp::text(&r), r.structured_content.clone().unwrap());
    let first = v["run"]["ran_in"].clone();
    assert_reused("analyze_xid_errors", &kept, &text, &first);
    assert_eq!(l.pods_created(&other), 1, "the Xid question probed: {text}");
    assert!(text.contains("xid.79"), "{text}");
    let r = l
        .call(
            "analyze_xid_errors",
            json!({"node_name": other, "max_age_s": 0}),
        )
        .await;
    let read = r.structured_content.clone().unwrap();
    assert!(fresh(&read), "{}", read["run"]);
    assert!(
        read["run"].get("read_afresh_because").is_none(),
        "asked for"
    );
    assert_eq!(l.pods_created(&other), 2);
    for part in ["events", "event_details", "gpus", "node", "findings"] {
        assert_eq!(kept["report"][part], read["report"][part], "{part}");
    }
    // A window reads the node's log afresh although a reading is kept, and says why in one line.
    let r = l
        .call(
            "analyze_xid_errors",
            json!({"node_name": other, "since": "1h"}),
        )
        .await;
    let (text, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert!(fresh(&v), "{}", v["run"]);
    assert_eq!(l.pods_created(&other), 3);
    assert!(
        text.contains("read afresh, not from the node's kept reading: a `since` window"),
        "{text}"
    );
    // An operator action (kill's preflight through a pod; refused on this node) drops the reading.
    let before = l.pods_created(&node);
    let _ = l
        .call(
            "kill_gpu_process",
            json!({"node_name": node, "pid": 1, "confirm": format!("{node}/pid/1")}),
        )
        .await;
    let after = l.pods_created(&node);
    assert!(after > before, "the action probed the node");
    let v = l.ok("get_gpu_telemetry", json!({"node_name": node})).await;
    assert!(fresh(&v), "read afresh after the action: {}", v["run"]);
    assert_eq!(l.pods_created(&node), after + 1);
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// Two people on the team server ask about the same node: each reading is made with its own person's rights
/// and never answers the other. Alice's reading is kept; Bob (who may probe too) gets his own probe pod, not
/// hers; a person without the rights is refused by the API server even while Alice's reading is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_team_server_a_reading_serves_only_its_person() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-readings-http");
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    let node = unique("gpu-node-people");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    let people = crate::http::Issued::start(tb, &ns, "scopes: [gpu-mcp]\n").await;
    let url = people.server.url.clone();
    let ask = |who: String, tool: &'static str| {
        let (url, node) = (url.clone(), node.clone());
        async move {
            let a = crate::http::rpc(
                &url,
                Some(&who),
                "tools/call",
                Some(tool),
                json!({"name": tool, "arguments": {"node_name": node}}),
                false,
            )
            .await;
            assert_eq!(a.status, 200, "{tool}: {}", a.body);
            a.json()["result"].clone()
        }
    };
    let (alice, bob, nobody) = (
        people.token(User::Reader.name()),
        people.token(User::Operator.name()),
        people.token(User::Nobody.name()),
    );
    let a1 = ask(alice.clone(), "get_gpu_health").await;
    assert_ne!(a1["isError"], true, "alice: {a1}");
    let a1 = &a1["structuredContent"];
    assert!(fresh(a1), "{}", a1["run"]);
    let a2 = ask(alice.clone(), "snapshot_ecc").await;
    assert_eq!(
        a2["structuredContent"]["run"]["reading_reused"], true,
        "{a2}"
    );
    // Bob, on the same node within the reading's age: his own probe pod, not Alice's reading.
    let b1 = ask(bob.clone(), "snapshot_ecc").await;
    assert_ne!(b1["isError"], true, "bob: {b1}");
    let b1 = &b1["structuredContent"];
    assert!(
        fresh(b1),
        "bob got a reading made as someone else: {}",
        b1["run"]
    );
    assert_ne!(b1["run"]["ran_in"], a1["run"]["ran_in"]);
    let b2 = ask(bob.clone(), "get_gpu_inventory").await;
    assert_eq!(
        b2["structuredContent"]["run"]["ran_in"], b1["run"]["ran_in"],
        "{b2}"
    );
    // Someone without the rights: refused by the API server, Alice's reading notwithstanding.
    let n = ask(nobody, "get_gpu_health").await;
    assert_eq!(
        n["isError"], true,
        "a person without rights was answered: {n}"
    );
    assert!(
        n.get("structuredContent").is_none_or(|s| s.is_null()),
        "{n}"
    );
    // Alice still reads her own.
    let a3 = ask(alice, "get_gpu_telemetry").await;
    assert_eq!(
        a3["structuredContent"]["run"]["ran_in"], a1["run"]["ran_in"],
        "{a3}"
    );
}
