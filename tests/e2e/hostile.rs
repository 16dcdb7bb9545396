//! Workload objects at the API's maximum sizes (SECURITY.md, "The node and its tenants"): a tenant names
//! its namespace, pods, containers, labels and annotations as long as the API server allows (names of
//! 253 and 63 characters, label values of 63, annotations of nearly 256 KiB per pod), on a kwok GPU node.
//! The tools that list or join pods answer within their budgets, without an error or a panic.

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// `prefix` padded with `c` to exactly `len` characters.
fn padded(prefix: &str, c: char, len: usize) -> String {
    let mut s = prefix.to_string();
    while s.len() < len {
        s.push(c);
    }
    s
}

fn pod(ns: &str, i: usize, node: &str, selector_value: &str) -> Value {
    // 253 characters, the most a pod name may have; alike up to the end, as a generated name would be.
    let name = padded(&format!("p{i:02}-"), 'a', 252) + "z";
    let mut labels = serde_json::Map::new();
    labels.insert("hostile.example.com/run".into(), json!(selector_value));
    for k in 0..8 {
        labels.insert(
            format!(
                "{}/{}",
                padded("l.example.com", 'l', 60),
                padded(&format!("k{k}"), 'k', 63)
            ),
            json!(padded(&format!("v{k}"), 'v', 63)),
        );
    }
    // Just under the 256 KiB the API server allows for all annotations of an object.
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "hostile.example.com/big".into(),
        json!("A".repeat(200 * 1024)),
    );
    for k in 0..5 {
        annotations.insert(
            format!("hostile.example.com/a{k}"),
            json!("B".repeat(10 * 1024)),
        );
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "containers": [{
                "name": padded("c", 'c', 63),
                "image": format!("registry.invalid/{}:1", padded("img", 'i', 200)),
                "resources": {"limits": {"nvidia.com/gpu": if i < 8 { "1" } else { "0" }}}
            }]
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_objects_at_the_apis_maximum_sizes_answer_within_budgets() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let probe_ns = unique("e2e-hostile");
    tb.probe_namespace(&probe_ns, User::Reader);
    tb.bind_reader(User::Reader);
    let node = unique("hostile-node");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    // A 63-character namespace.
    let wl = padded(&(unique("hostile-wl") + "-"), 'n', 63);
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    let selector_value = padded("run", 'r', 63);
    for i in 0..12 {
        // `create`, not `apply`: apply would copy the object into an annotation and pass the limit.
        let out = tb.kubectl_as(
            User::Admin,
            &["create", "-f", "-"],
            Some(&pod(&wl, i, &node, &selector_value).to_string()),
        );
        assert!(
            out.status.success(),
            "create pod {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let l = mcp::start(tb, User::Reader, &probe_ns, &[]).await;
    let calls = [
        ("list_gpu_nodes", json!({})),
        ("get_pod_gpu_allocation", json!({"node_name": node})),
        ("get_gpu_processes", json!({"node_name": node})),
        ("describe_gpu_node", json!({"node_name": node})),
        (
            "diagnose_workload",
            json!({"namespace": wl, "label_selector": format!("hostile.example.com/run={selector_value}")}),
        ),
    ];
    for (tool, args) in calls {
        let r = l.call(tool, args).await;
        let text = mcp::text(&r);
        assert_ne!(r.is_error, Some(true), "{tool}: {text}");
        let structured = serde_json::to_string(r.structured_content.as_ref().expect("structured"))
            .unwrap()
            .len();
        let (text_max, json_max) = if tool == "describe_gpu_node" {
            (24 * 1024, 96 * 1024)
        } else {
            (12 * 1024, 48 * 1024)
        };
        eprintln!(
            "{tool}: text {} bytes, structured {structured} bytes",
            text.len()
        );
        assert!(
            text.len() <= text_max,
            "{tool}: text of {} bytes",
            text.len()
        );
        assert!(
            structured <= json_max,
            "{tool}: structured {structured} bytes"
        );
        let v = r.structured_content.as_ref().unwrap();
        match tool {
            "diagnose_workload" => assert_eq!(v["diagnosis"]["pods"], 12, "{text}"),
            "get_pod_gpu_allocation" => {
                assert_eq!(v["requested_by_resource"]["nvidia.com/gpu"], 8, "{text}")
            }
            _ => {}
        }
        // No annotation value ever reaches an answer.
        assert!(
            !text.contains(&"A".repeat(64)),
            "{tool}: an annotation in the text"
        );
    }
    l.stop().await;
    tb.kubectl(&["delete", "namespace", &wl, "--wait=false"]);
}
