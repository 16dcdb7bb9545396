//! Golden answers from the testbed: what the tools that need a cluster answer when they succeed — the
//! operator tools' dry runs and confirmed actions through the real API server, and `diagnose_workload` over
//! a Job on two kwok GPU nodes — each checked against the tool's declared outputSchema and pinned whole
//! (generated names, uids and times redacted) in snapshots/golden/testbed__*.snap. The local-mode goldens
//! (tests/launcher/golden.rs) can only show these tools refusing. Regenerate after a deliberate change with
//! `INSTA_UPDATE=always cargo test -p k8s-gpu-mcp --test e2e golden` and read the diff.

use serde_json::{Value, json};

#[path = "../support/golden.rs"]
mod wire;

use crate::mcp;
use crate::operator::bind_operator;
use crate::testbed::{FakeNode, PodLog, User, skipped, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_answers_of_the_cluster_tools() {
    if skipped() {
        return;
    }
    let tb = crate::testbed::Testbed::shared();
    let ns = unique("e2e-golden");
    tb.probe_namespace(&ns, User::Operator);
    tb.bind_reader(User::Operator);
    bind_operator(tb, User::Operator);
    let wl = unique("wl-golden");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    let healthy = unique("golden-a");
    let sick = unique("golden-b");
    // The operator fixture (tests/operator/fixtures/h100-hgx.json) has what the built-in scenarios lack for
    // a kill and a reset the preflight allows: the /proc facts and device holders of an idle GPU 1, pid 4242.
    let idle = unique("golden-c");
    let fixture = crate::testbed::repo_root().join("tests/operator/fixtures/h100-hgx.json");
    tb.add_nodes(&[
        FakeNode::gpu(&healthy, "dgx-h100-healthy"),
        FakeNode::gpu(&sick, "dgx-h100-xid79"),
        FakeNode::gpu(&idle, fixture.to_str().unwrap()),
    ]);
    // A batch Job of two indexed pods, one per node, as the Job controller makes them.
    tb.apply(&format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: train, namespace: {wl}}}\nspec:\n  completionMode: Indexed\n  completions: 2\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: train, image: registry.invalid/train:1}}]\n"
    ));
    let uid = tb
        .kubectl(&[
            "-n",
            &wl,
            "get",
            "job",
            "train",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .trim()
        .to_string();
    let mut pods = String::new();
    for (i, node) in [&healthy, &sick].into_iter().enumerate() {
        pods += &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: train-{i}
  namespace: {wl}
  labels: {{batch.kubernetes.io/job-name: train, batch.kubernetes.io/job-completion-index: "{i}"}}
  ownerReferences:
  - {{apiVersion: batch/v1, kind: Job, name: train, uid: {uid}, controller: true}}
spec:
  nodeName: {node}
  containers:
  - name: train
    image: registry.invalid/train:1
    resources:
      limits: {{nvidia.com/gpu: "8"}}
---
"#
        );
    }
    tb.apply(&pods);
    // Each rank's log, as kwok serves it; rank 1's ends with the CUDA error its lost GPU gives.
    let line = |t: &str, l: &str| (format!("2026-11-23T10:{t}.000000000Z"), l.to_string());
    tb.serve_pod_logs(
        &wl,
        &[
            PodLog {
                pod: "train-0".into(),
                container: "train".into(),
                current: vec![
                    line("00:00", "rank 0: step 1200 loss 2.31"),
                    line("00:05", "rank 0: step 1201 loss 2.30"),
                ],
                previous: None,
            },
            PodLog {
                pod: "train-1".into(),
                container: "train".into(),
                current: vec![
                    line("00:00", "rank 1: step 1200 loss 2.31"),
                    line(
                        "00:04",
                        "RuntimeError: CUDA error: unspecified launch failure",
                    ),
                ],
                previous: None,
            },
        ],
    );
    // kwok runs a batch Job's pods to completion: wait for it, so the answer does not depend on when the
    // call lands (Running or Succeeded).
    tb.kubectl(&[
        "-n",
        &wl,
        "wait",
        "--for=jsonpath={.status.phase}=Succeeded",
        "pod/train-0",
        "pod/train-1",
        "--timeout=120s",
    ]);

    // dgx-h100-xid79: GPU 4 fell off the bus (marked, cordoned); the fixture's node: kill and reset.
    let at = |node: &str, extra: Value| {
        let mut a = json!({"node_name": node});
        a.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        a
    };
    let on = |extra: Value| at(&sick, extra);
    let on_idle = |extra: Value| at(&idle, extra);
    let calls: Vec<(&str, &str, Value)> = vec![
        (
            "diagnose_workload",
            "diagnose_workload",
            json!({"namespace": wl, "job": "train"}),
        ),
        (
            "cordon_gpu_node",
            "cordon_gpu_node",
            on(json!({"reason": "XID 79 on GPU 4", "confirm": sick})),
        ),
        (
            "cordon_gpu_node__uncordon",
            "cordon_gpu_node",
            on(json!({"reason": "GPU 4 replaced", "uncordon": true, "confirm": sick})),
        ),
        (
            "mark_gpu_node__dry_run",
            "mark_gpu_node",
            on(
                json!({"reason": "XidError79", "message": "XID 79 on GPU 4", "gpu": "4", "dry_run": true}),
            ),
        ),
        (
            "mark_gpu_node",
            "mark_gpu_node",
            on(
                json!({"reason": "XidError79", "message": "XID 79 on GPU 4", "gpu": "4", "confirm": format!("{sick}/gpu/4")}),
            ),
        ),
        (
            "clear_gpu_node_mark__dry_run",
            "clear_gpu_node_mark",
            on(json!({"reason": "GPU 4 replaced", "dry_run": true})),
        ),
        (
            "clear_gpu_node_mark",
            "clear_gpu_node_mark",
            on(json!({"reason": "GPU 4 replaced", "confirm": sick})),
        ),
        (
            "kill_gpu_process__dry_run",
            "kill_gpu_process",
            on_idle(json!({"pid": 4242, "dry_run": true})),
        ),
        (
            "kill_gpu_process",
            "kill_gpu_process",
            on_idle(
                json!({"pid": 4242, "grace_seconds": 5, "confirm": format!("{idle}/pid/4242")}),
            ),
        ),
        (
            "reset_gpu__dry_run",
            "reset_gpu",
            on_idle(json!({"gpu": 1, "dry_run": true})),
        ),
        (
            "reset_gpu",
            "reset_gpu",
            on_idle(json!({"gpu": 1, "confirm": format!("{idle}/gpu/1")})),
        ),
    ];
    // Every tool that needs a cluster to succeed is here (the registry's operator tools, and
    // diagnose_workload), kept by hand.
    let mut called: Vec<String> = calls.iter().map(|(_, t, _)| t.to_string()).collect();
    called.sort();
    called.dedup();
    let mut want = mcp::tools::operator_only_tools(mcp::LAUNCHER);
    want.push("diagnose_workload".into());
    want.sort();
    assert_eq!(called, want, "the testbed goldens must cover these tools");

    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let tools = l.client.list_all_tools().await.expect("tools/list");
    let volatile = wire::Volatile {
        literals: vec![
            (sick.clone(), "<node-b>"),
            (idle.clone(), "<node-c>"),
            (fixture.display().to_string(), "<fixture>"),
            // Where mcp::start puts the evidence archives (the temp dir differs between machines).
            (
                std::env::temp_dir()
                    .join("k8s-gpu-mcp-e2e-evidence")
                    .display()
                    .to_string(),
                "<evidence-dir>",
            ),
            (healthy.clone(), "<node-a>"),
            (wl.clone(), "<workload-ns>"),
            (ns.clone(), "<probe-ns>"),
        ],
        object_uids: true,
        // Probe pods and audit Events are named by the launcher and the API server (generateName).
        patterns: vec![
            (
                r"gpu-probe-(<node-[abc]>)-[0-9a-z]{10}\b",
                "gpu-probe-$1-<suffix>",
            ),
            (
                r"(<node-[abc]>)\.k8s-gpu-mcp\.[0-9a-z]{5}\b",
                "$1.k8s-gpu-mcp.<suffix>",
            ),
            // The simulated Xid is at the scenario's fixed time, the pods start at the wall clock's: which
            // comes first depends on the day the test runs (the rule itself: workload::node_findings's
            // `the_first_xid_is_placed_before_or_after_the_pods_started`).
            (
                r"\b(after|before) the workload's pods started",
                "<after|before> the workload's pods started",
            ),
        ],
    };
    let mut results = Vec::new();
    for (name, tool, args) in calls {
        let r = l.call(tool, args.clone()).await;
        assert_ne!(
            r.is_error,
            Some(true),
            "{tool} {args}: {}\nlauncher stderr:\n{}",
            mcp::text(&r),
            l.stderr()
        );
        assert!(mcp::harness::check_output_schema(&tools, tool, &r));
        // An operator action's answer here is a success: allowed (a dry run, done, or simulated on a
        // simulated node), never a refusal.
        if tool != "diagnose_workload" {
            let result = &r.structured_content.as_ref().unwrap()["result"];
            assert!(
                ["dry_run", "done", "simulated"].contains(&result.as_str().unwrap_or("")),
                "{tool} {args}: result {result}: {}",
                mcp::text(&r)
            );
        }
        let mut v = serde_json::to_value(&r).unwrap();
        wire::redact(&mut v, &volatile);
        results.push((name, v));
    }
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
    wire::settings().bind(|| {
        for (name, v) in results {
            insta::assert_json_snapshot!(format!("testbed__{name}"), v);
        }
    });
}
