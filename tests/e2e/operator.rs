//! Operator mode end to end on the real control plane: the tools are absent without `--mode operator`;
//! cordon/uncordon through the API server with an audit Event on the Node; the reader role is refused
//! with a clear message and the operator role allowed; kill/reset preflight through a probe pod (kwok
//! runs node-probe with the node's scenario, so nothing real is signalled).
//!
//! Wiring: `mod mcp; mod operator;` in tests/e2e/main.rs (with the launcher suite, once cluster mode is
//! served by `k8s-gpu-mcp serve`).

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// deploy/rbac.yaml's operator ClusterRole bound to `user` (as bindings-example.yaml does).
pub fn bind_operator(tb: &Testbed, user: User) {
    let name = user.name();
    tb.apply(&format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: k8s-gpu-mcp-operator-{name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-operator}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {name}}}]
"#
    ));
}

fn setup(tag: &str) -> (&'static Testbed, String, String) {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-op-{tag}"));
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    bind_operator(tb, User::Operator);
    let node = unique("gpu-node-op");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    (tb, ns, node)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The audit Events the launcher created on `node`.
pub fn events(tb: &Testbed, node: &str) -> Vec<Value> {
    let v = json_of(&tb.kubectl(&[
        "-n",
        "default",
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.kind=Node,involvedObject.name={node}"),
        "-o",
        "json",
    ]));
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| {
            e["source"]["component"] == "k8s-gpu-mcp" || e["reportingComponent"] == "k8s-gpu-mcp"
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tools_are_listed_only_in_operator_mode() {
    if skipped() {
        return;
    }
    let (tb, ns, _) = setup("list");
    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let names = mcp::harness::tool_names(&l.client).await;
    // The registry's operator tools (tests/launcher/operator.rs checks them against its written-out list).
    let operator_tools = mcp::tools::operator_only_tools(mcp::LAUNCHER);
    for t in &operator_tools {
        assert!(!names.contains(t), "{t} listed in read-only mode");
    }
    l.stop().await;
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let tools = l.client.list_all_tools().await.unwrap();
    for t in &operator_tools {
        let tool = tools
            .iter()
            .find(|x| x.name == t.as_str())
            .unwrap_or_else(|| panic!("{t} missing"));
        assert_eq!(
            tool.annotations.as_ref().and_then(|a| a.destructive_hint),
            Some(true),
            "{t}"
        );
    }
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cordon_with_event_reader_refused_operator_allowed() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("cordon");

    // The reader role in operator mode: the API server refuses the patch; the answer says so clearly.
    let l = mcp::start(tb, User::Reader, &ns, &["--mode", "operator"]).await;
    let err = l
        .err(
            "cordon_gpu_node",
            json!({"node_name": node, "reason": "e2e", "confirm": node}),
        )
        .await;
    assert!(err.to_lowercase().contains("forbidden"), "{err}");
    assert!(err.contains("k8s-gpu-mcp-operator"), "{err}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert_ne!(n["spec"]["unschedulable"], true, "reader cordoned the node");
    // The refusal is still audited on stderr (the reader may not create Events).
    assert!(
        l.stderr().contains("\"result\":\"refused\""),
        "{}",
        l.stderr()
    );
    l.stop().await;

    // The operator role: cordon, Event on the Node with action, target, user and result.
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let err = l
        .err(
            "cordon_gpu_node",
            json!({"node_name": node, "reason": "e2e", "confirm": "some-other-node"}),
        )
        .await;
    assert!(err.contains("confirmation mismatch"), "{err}");
    let v = l
        .ok(
            "cordon_gpu_node",
            json!({"node_name": node, "reason": "XID 79 on GPU 3", "confirm": node}),
        )
        .await;
    assert_eq!(v["result"], "done", "{v}");
    assert_eq!(v["report"]["unschedulable"], true, "{v}");
    assert_eq!(v["audit"]["user"], "launcher-operator", "{v}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert_eq!(n["spec"]["unschedulable"], true);
    assert_eq!(
        n["metadata"]["annotations"]["k8s-gpu-mcp.io/cordon-reason"],
        "XID 79 on GPU 3"
    );
    let evs = events(tb, &node);
    let done = evs
        .iter()
        .find(|e| {
            e["action"] == "cordon_gpu_node"
                && e["message"].as_str().unwrap_or("").contains("result=done")
        })
        .unwrap_or_else(|| panic!("no cordon Event: {evs:#?}"));
    let msg = done["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("target={node}")) && msg.contains("user=launcher-operator"),
        "{msg}"
    );
    // The mismatch was audited as refused too.
    assert!(
        evs.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("result=refused")),
        "{evs:#?}"
    );
    let v = l
        .ok(
            "cordon_gpu_node",
            json!({"node_name": node, "reason": "fixed", "uncordon": true, "confirm": node}),
        )
        .await;
    assert_eq!(v["report"]["unschedulable"], false, "{v}");
    l.stop().await;
}

/// A person confirms on each protocol version: through elicitation on 2025-11-25 and through the input
/// request on 2026-07-28, having seen the node and the reason; a decline changes nothing; a client that can
/// ask no one acts on `confirm`, and the Event says no person was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_asked_of_the_user_on_each_protocol_version() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("confirm");
    let unschedulable = |tb: &Testbed| {
        json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]))["spec"]["unschedulable"] == true
    };
    for (modern, how, note) in [
        (false, "elicitation", "confirmed by a person (elicitation)"),
        (
            true,
            "input_request",
            "confirmed by a person (input request)",
        ),
    ] {
        // Declined: nothing changes, refused.
        let no = mcp::Confirmer::default();
        let l = mcp::start_confirming(
            tb,
            User::Operator,
            &ns,
            &["--mode", "operator"],
            no.clone(),
            modern,
        )
        .await;
        let err = l
            .err(
                "cordon_gpu_node",
                json!({"node_name": node, "reason": "e2e decline"}),
            )
            .await;
        assert!(err.contains("declined"), "{how}: {err}");
        assert_eq!(no.asked().len(), 1, "{how}");
        assert!(!unschedulable(tb), "{how}: a declined cordon cordoned");
        l.stop().await;
        // Approved: cordoned, by a person who saw the node and the reason.
        let yes = mcp::Confirmer {
            approve: true,
            ..Default::default()
        };
        let l = mcp::start_confirming(
            tb,
            User::Operator,
            &ns,
            &["--mode", "operator"],
            yes.clone(),
            modern,
        )
        .await;
        let reason = format!("XID 79 ({how})");
        let v = l
            .ok(
                "cordon_gpu_node",
                json!({"node_name": node, "reason": reason}),
            )
            .await;
        assert_eq!(v["result"], "done", "{v}");
        assert_eq!(v["confirmed_by"], how, "{v}");
        assert_eq!(v["human_confirmed"], true, "{v}");
        let asked = yes.asked();
        assert_eq!(asked.len(), 1, "{how}: {asked:?}");
        assert!(
            asked[0].contains(&node) && asked[0].contains(&reason),
            "{asked:?}"
        );
        assert!(unschedulable(tb), "{how}");
        let evs = events(tb, &node);
        assert!(
            evs.iter().any(|e| {
                let m = e["message"].as_str().unwrap_or("");
                m.contains("result=done") && m.contains(&reason) && m.contains(note)
            }),
            "{how}: {evs:#?}"
        );
        let v = l
            .ok(
                "cordon_gpu_node",
                json!({"node_name": node, "reason": "fixed", "uncordon": true}),
            )
            .await;
        assert_eq!(v["report"]["unschedulable"], false, "{v}");
        assert_eq!(yes.asked().len(), 2, "{how}");
        l.stop().await;
    }
    // No way to ask: `confirm` decides, and the answer and the Event say no person was asked.
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let v = l
        .ok(
            "cordon_gpu_node",
            json!({"node_name": node, "reason": "XID 79 (confirm)", "confirm": node}),
        )
        .await;
    assert_eq!(v["confirmed_by"], "confirm_argument", "{v}");
    assert_eq!(v["human_confirmed"], false, "{v}");
    let evs = events(tb, &node);
    assert!(
        evs.iter().any(|e| e["message"]
            .as_str()
            .unwrap_or("")
            .contains("XID 79 (confirm); confirmed by the confirm argument only")
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains("no person was asked")),
        "{evs:#?}"
    );
    l.ok(
        "cordon_gpu_node",
        json!({"node_name": node, "reason": "fixed", "uncordon": true, "confirm": node}),
    )
    .await;
    l.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_reset_preflight_through_a_probe_pod() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("preflight");
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    // pid 1 is refused by the probe's preflight (simulated node: nothing is signalled).
    let v = l
        .ok(
            "kill_gpu_process",
            json!({"node_name": node, "pid": 1, "confirm": format!("{node}/pid/1")}),
        )
        .await;
    assert_eq!(v["result"], "refused", "{v}");
    assert!(
        v["report"]["reasons"].to_string().contains("not_init"),
        "{v}"
    );
    // The evidence was kept first (its own probe pod), and the audit Event names it.
    let name = v["evidence"]["name"].as_str().expect("evidence kept first");
    assert!(
        events(tb, &node)
            .iter()
            .any(|e| e.to_string().contains(name)),
        "no Event names {name}"
    );
    let v = l
        .ok(
            "reset_gpu",
            json!({"node_name": node, "gpu": "0", "dry_run": true}),
        )
        .await;
    assert_eq!(v["report"]["simulated"], true, "{v}");
    assert!(v["audit"]["event"].is_string(), "{v}");
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// A reset a person approved acts through the exec policy on every API server (issue 90): its argv carries
/// `--approved` (the GPU the person saw and the digests of the unknowns they overrode) after the API server's
/// DRA claims where the server serves DRA, and without them where it serves none (before 1.34 by default),
/// which the policy refused until it took `--approved` on its own. The node is the built-in T4 (idle), with
/// its device nodes' holders collected (none): the preflight passes and the act runs. Nothing is reset: the
/// probe's report says what it would have done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_reset_acts_through_the_policies() {
    if skipped() {
        return;
    }
    let (tb, ns, _) = setup("approved");
    let node = unique("gpu-node-t4");
    let mut facts: Value =
        serde_json::from_str(&gpu_diag::scenarios::find("t4-single").unwrap().json()).unwrap();
    facts["device_holders"] = json!({"holders": [], "unreadable_pids": 0});
    let fixture = tb.dir.join(format!("{node}.json"));
    std::fs::write(&fixture, facts.to_string()).unwrap();
    tb.add_nodes(&[FakeNode::gpu(&node, fixture.to_str().unwrap())]);
    for modern in [false, true] {
        let yes = mcp::Confirmer {
            approve: true,
            ..Default::default()
        };
        let l = mcp::start_confirming(
            tb,
            User::Operator,
            &ns,
            &["--mode", "operator"],
            yes.clone(),
            modern,
        )
        .await;
        let v = l
            .ok(
                "reset_gpu",
                json!({"node_name": node, "gpu": "0", "skip_evidence": true}),
            )
            .await;
        let dra = tb.var("TESTBED_DRA_VERSION");
        assert_eq!(
            v["result"],
            "simulated",
            "1.{} (resource.k8s.io {dra}): {v}",
            tb.var("TESTBED_K8S_MINOR")
        );
        assert_eq!(v["human_confirmed"], true, "{v}");
        assert_eq!(yes.asked().len(), 1, "{:?}", yes.asked());
        // The act, as the probe ran it: bound to the GPU the person saw.
        assert!(
            !v.to_string().contains("denied request"),
            "refused by admission: {v}"
        );
        let v = l
            .ok(
                "kill_gpu_process",
                json!({"node_name": node, "pid": 4242, "skip_evidence": true}),
            )
            .await;
        assert!(
            !v.to_string().contains("denied request"),
            "kill refused by admission: {v}"
        );
        assert!(v["report"].is_object(), "{v}");
        l.stop().await;
    }
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

const MARK_KEY: &str = "gpu-diag.k8s-gpu-mcp.io/unhealthy";

/// Our condition on the node as the API server has it.
fn mark_condition(n: &Value) -> Option<Value> {
    n["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "GpuDiagUnhealthy")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_and_clear_taint_label_condition_audited_reader_refused() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("mark");
    // Someone else's taint and label, which mark and clear must leave alone.
    tb.kubectl(&[
        "taint",
        "node",
        &node,
        "example.com/maintenance=soon:PreferNoSchedule",
    ]);
    tb.kubectl(&[
        "label",
        "node",
        &node,
        "nvidia.com/gpu.deploy.dcgm=true",
        "--overwrite",
    ]);
    tb.kubectl(&["label", "node", &node, &format!("e2e-mark={node}")]);
    let selector = format!("e2e-mark={node}");
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mark = json!({
        "node_name": node, "gpu": "3", "reason": "XidError79",
        "message": "GPU 3 fell off the bus (XID 79)", "evidence_sha256": digest,
    });
    let with = |extra: Value| {
        let mut m = mark.clone();
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let target = format!("{node}/gpu/3");

    // Without --mode operator the tools are not there at all: calling one is a protocol error.
    let l = mcp::start(tb, User::Operator, &ns, &[]).await;
    let args = with(json!({"confirm": target}));
    let r = l
        .client
        .call_tool(
            rmcp::model::CallToolRequestParams::new("mark_gpu_node")
                .with_arguments(args.as_object().cloned().unwrap()),
        )
        .await;
    let err = r.expect_err("mark_gpu_node answered without --mode operator");
    assert!(err.to_string().contains("tool not found"), "{err}");
    l.stop().await;

    // The reader role in operator mode: refused by RBAC, naming what is missing; nothing stored.
    let l = mcp::start(tb, User::Reader, &ns, &["--mode", "operator"]).await;
    let err = l
        .err("mark_gpu_node", with(json!({"confirm": target})))
        .await;
    assert!(err.to_lowercase().contains("forbidden"), "{err}");
    assert!(err.contains("patch") && err.contains("nodes"), "{err}");
    assert!(err.contains("k8s-gpu-mcp-operator"), "{err}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert!(n["metadata"]["labels"][MARK_KEY].is_null(), "{n}");
    assert!(mark_condition(&n).is_none(), "{n}");
    assert!(
        l.stderr().contains("\"result\":\"refused\""),
        "{}",
        l.stderr()
    );
    l.stop().await;

    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    // Hostile arguments are refused before anything is sent.
    for bad in [
        json!({"reason": "Xid 79; rm -rf"}),
        json!({"message": "line\ninjected"}),
        json!({"gpu": "../3"}),
        json!({"evidence_sha256": "sha256:xyz"}),
    ] {
        let err = l.err("mark_gpu_node", with(bad.clone())).await;
        assert!(!err.is_empty(), "{bad}");
    }
    // Unconfirmed: refused; a dry run: checked by the API server, nothing stored.
    let err = l.err("mark_gpu_node", mark.clone()).await;
    assert!(err.contains(&format!("confirm=\"{target}\"")), "{err}");
    let v = l.ok("mark_gpu_node", with(json!({"dry_run": true}))).await;
    assert_eq!(v["result"], "dry_run", "{v}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert!(
        mark_condition(&n).is_none(),
        "dry run stored a condition: {n}"
    );
    assert!(n["metadata"]["labels"][MARK_KEY].is_null(), "{n}");

    let v = l
        .ok("mark_gpu_node", with(json!({"confirm": target})))
        .await;
    assert_eq!(v["result"], "done", "{v}");
    assert!(v["audit"]["event"].is_string(), "{v}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert_eq!(n["metadata"]["labels"][MARK_KEY], "XidError79", "{n}");
    assert_eq!(
        n["metadata"]["labels"]["nvidia.com/gpu.deploy.dcgm"], "true",
        "{n}"
    );
    let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
    assert!(
        taints.iter().any(|t| t["key"] == MARK_KEY
            && t["value"] == "XidError79"
            && t["effect"] == "NoSchedule"),
        "{taints:?}"
    );
    assert!(
        taints.iter().any(|t| t["key"] == "example.com/maintenance"),
        "{taints:?}"
    );
    let c = mark_condition(&n).unwrap_or_else(|| panic!("no condition: {n}"));
    assert_eq!(c["status"], "True", "{c}");
    assert_eq!(c["reason"], "XidError79", "{c}");
    let msg = c["message"].as_str().unwrap();
    assert!(
        msg.contains("XID 79") && msg.contains("gpu 3") && msg.contains(&digest),
        "{msg}"
    );
    assert!(c["lastTransitionTime"].is_string(), "{c}");
    // The node's other conditions (kwok's Ready) are still there.
    assert!(
        n["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready"),
        "{n}"
    );
    // Audited: an Event on the Node naming the action and the target.
    let evs = events(tb, &node);
    assert!(
        evs.iter().any(|e| e["action"] == "mark_gpu_node"
            && e["message"].as_str().unwrap_or("").contains("result=done")
            && e["message"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("target={target}"))),
        "{evs:#?}"
    );

    // The list and the scan show the mark, its reason and since when.
    let v = l
        .ok("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let listed = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == node.as_str())
        .cloned();
    let listed = listed.unwrap_or_else(|| panic!("{node} not listed: {v}"));
    assert_eq!(listed["mark"]["reason"], "XidError79", "{listed}");
    assert_eq!(listed["mark"]["since"], c["lastTransitionTime"], "{listed}");
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"check": "xid", "label_selector": selector}),
        )
        .await;
    let text = mcp::text(&r);
    assert!(
        text.contains(&format!("{node} marked XidError79 since")),
        "{text}"
    );

    // Clear: exactly ours removed, the condition False, the other taint and label kept.
    let v = l
        .ok(
            "clear_gpu_node_mark",
            json!({"node_name": node, "reason": "GPU 3 replaced", "confirm": node}),
        )
        .await;
    assert_eq!(v["result"], "done", "{v}");
    let n = json_of(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert!(n["metadata"]["labels"][MARK_KEY].is_null(), "{n}");
    assert_eq!(
        n["metadata"]["labels"]["nvidia.com/gpu.deploy.dcgm"], "true",
        "{n}"
    );
    let taints = n["spec"]["taints"].as_array().cloned().unwrap_or_default();
    assert!(!taints.iter().any(|t| t["key"] == MARK_KEY), "{taints:?}");
    assert!(
        taints.iter().any(|t| t["key"] == "example.com/maintenance"),
        "{taints:?}"
    );
    let c = mark_condition(&n).unwrap_or_else(|| panic!("condition gone: {n}"));
    assert_eq!(c["status"], "False", "{c}");
    assert_eq!(c["reason"], "GpuDiagMarkCleared", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("GPU 3 replaced"),
        "{c}"
    );
    let evs = events(tb, &node);
    assert!(
        evs.iter().any(|e| e["action"] == "clear_gpu_node_mark"),
        "{evs:#?}"
    );
    let v = l
        .ok("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let listed = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == node.as_str())
        .cloned()
        .unwrap();
    assert!(listed["mark"].is_null(), "{listed}");
    l.stop().await;
}
