//! A conversation about the real node costs one probe pod: five different read-only node tools in a row, and
//! the Xid question after them, start one pod, and each later answer says how old its reading is. The node's fake NVML has a GPU off the bus
//! (GPU 1) and one NVML refuses (GPU 2): facts the probe could not read are part of that reading, said again
//! from it, not a reason to probe again. An operator action drops the reading, so the next question starts a
//! fresh pod, and `max_age_s: 0` asks for one.

use serde_json::json;

use crate::Ctx;
use crate::evidence::bind_operator;
use crate::mcp::{self, CONVERSATION, assert_reused, fresh, has_str};
use crate::node;
use crate::testbed::User;

pub async fn a_conversation_about_the_real_node_costs_one_probe_pod(c: &Ctx) {
    bind_operator(c);
    let l = mcp::start(
        c.tb,
        User::Operator,
        &c.ns,
        &["--mode", "operator", "--probe-image", node::PROBE_IMAGE],
    )
    .await;
    let n = c.name();
    let mut first = serde_json::Value::Null;
    for (i, tool) in CONVERSATION.iter().enumerate() {
        let r = l.call(tool, json!({"node_name": n})).await;
        let text = mcp::text(&r);
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        let v = r.structured_content.expect("structured");
        if i == 0 {
            assert!(fresh(&v), "{tool}: {}", v["run"]);
            // The partial reading this case is about: the lost GPU is in it.
            assert!(has_str(&v, "gpu_is_lost"), "{tool}: no lost GPU: {v:#}");
            first = v["run"]["ran_in"].clone();
        } else {
            assert_reused(tool, &v, &text, &first);
        }
        eprintln!(
            "{tool}: {} ms, reading {} s old",
            v["run"]["total_millis"], v["run"]["reading_age_s"]
        );
    }
    assert_eq!(l.pods_created(n), 1, "five questions, one probe pod");
    // The Xid question too: the node's kernel log as the reading read it, its age said, no pod.
    let r = l.call("analyze_xid_errors", json!({"node_name": n})).await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "analyze_xid_errors: {text}");
    let v = r.structured_content.expect("structured");
    assert_reused("analyze_xid_errors", &v, &text, &first);
    assert_eq!(l.pods_created(n), 1, "six questions, one probe pod");
    // A reused answer still says what the reading could not read.
    let v = l.ok("get_gpu_health", json!({"node_name": n})).await;
    assert_eq!(v["run"]["reading_reused"], true, "{}", v["run"]);
    assert!(
        has_str(&v, "gpu_is_lost"),
        "the kept reading lost its lost GPU: {v:#}"
    );
    // An operator action (kill's preflight in a pod; refused for init) drops the node's reading.
    let before = l.pods_created(n);
    let _ = l
        .call(
            "kill_gpu_process",
            json!({"node_name": n, "pid": 1, "confirm": format!("{n}/pid/1")}),
        )
        .await;
    let after = l.pods_created(n);
    assert!(after > before, "the action probed the node");
    let v = l.ok("get_gpu_telemetry", json!({"node_name": n})).await;
    assert!(fresh(&v), "read afresh after the action: {}", v["run"]);
    assert_eq!(l.pods_created(n), after + 1);
    // The caller asks for a fresh reading.
    let v = l
        .ok("snapshot_ecc", json!({"node_name": n, "max_age_s": 0}))
        .await;
    assert!(fresh(&v), "max_age_s 0: {}", v["run"]);
    assert_eq!(l.pods_created(n), after + 2);
    l.stop().await;
    c.assert_no_probe_pods();
}
