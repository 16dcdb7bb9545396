//! A diagnostic run's own mark (`run_gpu_diagnostic keep_pods_off`, issue 62) on the real API server: a
//! NoSchedule taint that names the run, set and lifted alone. A person's `kubectl cordon` during the run stays
//! after it; two runs on one node each hold and lift their own taint; a crashed launcher's mark is left while
//! its deadline runs and swept by `gc` and by a launcher's start once it passed.
//!
//! The runs that must stay in flight go to a node with no kubelet (the probe pod stays pending until the call
//! is cancelled); the run that must answer goes to a kwok node, where node-probe answers at once (no dcgmi).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp;
use crate::operator::bind_operator;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

const PREFIX: &str = "keep-pods-off.k8s-gpu-mcp.io/";

fn node_json(tb: &Testbed, node: &str) -> Value {
    serde_json::from_str(&tb.kubectl(&["get", "node", node, "-o", "json"])).unwrap()
}

/// The node's run marks (taint keys under our prefix), in order.
fn marks(tb: &Testbed, node: &str) -> Vec<String> {
    node_json(tb, node)["spec"]["taints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["key"].as_str())
        .filter(|k| k.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

fn cordoned(tb: &Testbed, node: &str) -> bool {
    node_json(tb, node)["spec"]["unschedulable"] == true
}

/// Wait until `ok` holds of the node's run marks; they are returned.
async fn wait_marks(
    tb: &Testbed,
    node: &str,
    what: &str,
    ok: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = marks(tb, node);
        if ok(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what}: run marks now {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn setup(tag: &str) -> (&'static Testbed, String) {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-mark-{tag}"));
    tb.probe_namespace(&ns, User::Operator);
    tb.bind_reader(User::Operator);
    bind_operator(tb, User::Operator);
    (tb, ns)
}

fn args(node: &str, gpu: &str) -> Value {
    json!({"node_name": node, "gpus": gpu, "level": 2, "keep_pods_off": true,
           "confirm": format!("{node}/gpus/{gpu}/level-2")})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_hold_their_own_marks_and_a_cordon_during_them_stays() {
    if skipped() {
        return;
    }
    let (tb, ns) = setup("two");
    let node = unique("mark-stuck");
    tb.add_nodes(&[FakeNode::without_kubelet(&node, true)]);
    // Someone else's taint, which no run may touch.
    tb.kubectl(&[
        "taint",
        "node",
        &node,
        "example.com/maintenance=soon:PreferNoSchedule",
    ]);
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let a = l.start_call("run_gpu_diagnostic", args(&node, "3")).await;
    let first = wait_marks(tb, &node, "the first run's mark", |m| m.len() == 1).await;
    // A person cordons the node during the run.
    tb.kubectl(&["cordon", &node]);
    let b = l.start_call("run_gpu_diagnostic", args(&node, "2")).await;
    let both = wait_marks(tb, &node, "the second run's mark", |m| m.len() == 2).await;
    assert_eq!(both[0], first[0], "the second run changed the first's mark");
    let value = node_json(tb, &node)["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == both[1])
        .cloned()
        .unwrap();
    assert_eq!(value["effect"], "NoSchedule", "{value}");
    assert!(
        value["value"]
            .as_str()
            .is_some_and(|v| v.len() == 33 && v.contains("Z_")),
        "the value is not <set>_<deadline>: {value}"
    );
    // The first run ends (cancelled): only its own mark goes.
    a.cancel(Some("test cancels the first run".into()))
        .await
        .expect("cancel");
    let left = wait_marks(tb, &node, "the first run's lift", |m| m.len() == 1).await;
    assert_eq!(
        left,
        vec![both[1].clone()],
        "the first run lifted the second's mark"
    );
    assert!(
        cordoned(tb, &node),
        "the first run's end undid the person's cordon"
    );
    b.cancel(Some("test cancels the second run".into()))
        .await
        .expect("cancel");
    wait_marks(tb, &node, "the second run's lift", <[String]>::is_empty).await;
    assert!(
        cordoned(tb, &node),
        "the runs' ends undid the person's cordon"
    );
    let taints = node_json(tb, &node)["spec"]["taints"].clone();
    assert!(
        taints
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["key"] == "example.com/maintenance")),
        "someone's taint went: {taints}"
    );
    l.stop().await;
    tb.kubectl(&["uncordon", &node]);
}

/// A run that answers: the answer says which taint was set, that it was lifted, and that the person's
/// cordon found on the node was left; the cordon is still there after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_says_what_was_set_lifted_and_left() {
    if skipped() {
        return;
    }
    let (tb, ns) = setup("answer");
    let node = unique("mark-kwok");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    tb.kubectl(&["cordon", &node]);
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let r = l.call("run_gpu_diagnostic", args(&node, "3")).await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}\n{}", l.stderr());
    l.stop().await;
    let v = r.structured_content.unwrap();
    let k = &v["kept_pods_off"];
    assert!(
        k["taint"]
            .as_str()
            .is_some_and(|t| t.starts_with(PREFIX) && t.ends_with(":NoSchedule")),
        "{v:#}"
    );
    assert!(
        k["after"]
            .as_str()
            .is_some_and(|a| a.contains("lifted") && a.contains("cordon")),
        "{v:#}"
    );
    assert!(
        mcp::has_str(&k["left_alone"], "spec.unschedulable"),
        "{v:#}"
    );
    assert!(
        text.contains("new pods kept off for the run by taint"),
        "{text}"
    );
    assert_eq!(marks(tb, &node), Vec::<String>::new());
    assert!(cordoned(tb, &node), "the run undid the person's cordon");
    tb.kubectl(&["uncordon", &node]);
}

/// A launcher killed mid-run leaves its mark, which no sweep lifts while its deadline runs; a mark whose
/// deadline passed (a run gone long ago, forged here: a real one lives 17 minutes) is lifted by `gc` and by a
/// launcher's start, each touching nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_runs_mark_is_swept_once_its_deadline_passed() {
    if skipped() {
        return;
    }
    let (tb, ns) = setup("crash");
    let node = unique("mark-crash");
    tb.add_nodes(&[FakeNode::without_kubelet(&node, true)]);
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let _call = l.start_call("run_gpu_diagnostic", args(&node, "3")).await;
    let live = wait_marks(tb, &node, "the run's mark", |m| m.len() == 1).await;
    l.kill9();
    drop(l);
    let gone =
        |n: u32| format!("{PREFIX}run-00000000000{n}=20260101T000000Z_20260101T001900Z:NoSchedule");
    tb.kubectl(&["taint", "node", &node, &gone(1)]);
    let gc = std::process::Command::new(mcp::LAUNCHER)
        .args(["gc", "--namespace", &ns, "--kubeconfig"])
        .arg(tb.kubeconfig(User::Operator))
        .env_remove("KUBECONFIG")
        .output()
        .expect("run k8s-gpu-mcp gc");
    let report: Value = serde_json::from_slice(&gc.stdout).unwrap_or_else(|e| {
        panic!(
            "gc printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&gc.stdout),
            String::from_utf8_lossy(&gc.stderr)
        )
    });
    assert!(gc.status.success(), "{report:#}");
    let lifted = report["run_marks"]["lifted"].to_string();
    assert!(
        lifted.contains(&format!("{node}: {PREFIX}run-000000000001")),
        "{report:#}"
    );
    assert!(
        !lifted.contains(&live[0]),
        "gc lifted a mark within its deadline: {report:#}"
    );
    assert_eq!(marks(tb, &node), live, "gc: {report:#}");
    // A launcher's start sweeps too.
    tb.kubectl(&["taint", "node", &node, &gone(2)]);
    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let left = wait_marks(tb, &node, "the startup sweep", |m| m.len() == 1).await;
    assert_eq!(left, live);
    let log = l.stderr();
    l.stop().await;
    assert!(log.contains("run-000000000002"), "{log}");
    // The killed run's mark, removed by hand as a person would (`kubectl taint node N KEY-`).
    tb.kubectl(&["taint", "node", &node, &format!("{}-", live[0])]);
}

/// The GPU Operator's DCGM host engine on the node (issue 62): directing a run at an engine is the operator
/// role's. A reader's level 1 there runs on an engine of its own and says why (had `--engine` been sent, the
/// exec policy would have refused the probe and the call would have failed); the operator's goes to the
/// engine pod's address. The testbed runs no DaemonSet controller: the pod is made as it would make it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_operator_directs_a_run_at_the_gpu_operators_engine() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-engine");
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    bind_operator(tb, User::Operator);
    let node = unique("engine-kwok");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    let ds = unique("nvidia-dcgm-e2e");
    tb.apply(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: gpu-operator}\n---\napiVersion: v1\n\
         kind: ServiceAccount\nmetadata: {name: default, namespace: gpu-operator}\n",
    );
    tb.apply(
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: nvidia-dcgm, namespace: gpu-operator}\n\
         spec:\n  selector: {matchLabels: {app: nvidia-dcgm}}\n  template:\n    metadata: {labels: {app: \
         nvidia-dcgm}}\n    spec:\n      containers: [{name: nvidia-dcgm-ctr, image: \
         'nvcr.io/nvidia/cloud-native/dcgm:4.5.2-1-ubuntu22.04', ports: [{name: dcgm, containerPort: 5555}]}]\n",
    );
    let uid = tb.kubectl(&[
        "-n",
        "gpu-operator",
        "get",
        "daemonset/nvidia-dcgm",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    tb.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {ds}\n  namespace: gpu-operator\n  labels: {{app: \
         nvidia-dcgm}}\n  ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: nvidia-dcgm, uid: \
         {}, controller: true}}]\nspec:\n  nodeName: {node}\n  automountServiceAccountToken: false\n  \
         containers: [{{name: nvidia-dcgm-ctr, image: 'nvcr.io/nvidia/cloud-native/dcgm:4.5.2-1-ubuntu22.04', \
         ports: [{{name: dcgm, containerPort: 5555}}]}}]\n",
        uid.trim()
    ));
    let status = json!({"status": {"phase": "Running", "podIP": "10.9.8.7", "podIPs": [{"ip": "10.9.8.7"}],
                        "conditions": [{"type": "Ready", "status": "True"}]}});
    tb.kubectl(&[
        "-n",
        "gpu-operator",
        "patch",
        "pod",
        &ds,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
    let diag = json!({"node_name": node, "gpus": "3", "level": 1});

    let reader = mcp::start(tb, User::Reader, &ns, &[]).await;
    let r = reader.call("run_gpu_diagnostic", diag.clone()).await;
    let log = reader.stderr();
    reader.stop().await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "the reader's run: {text}\n{log}");
    let v = r.structured_content.clone().expect("structured content");
    let said = v["engine"].as_str().unwrap_or_default();
    assert!(
        said.contains(&format!("not run on gpu-operator/{ds}")) && said.contains("operator role"),
        "the reader's run named no refusal of the engine: {v:#}"
    );
    assert!(text.contains("needs the operator role"), "{text}");

    let operator = mcp::start(tb, User::Operator, &ns, &[]).await;
    let r = operator.call("run_gpu_diagnostic", diag).await;
    let log = operator.stderr();
    operator.stop().await;
    tb.kubectl(&[
        "-n",
        "gpu-operator",
        "delete",
        "pod",
        &ds,
        "--grace-period=0",
        "--wait=false",
    ]);
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "the operator's run: {text}\n{log}");
    let v = r.structured_content.clone().expect("structured content");
    let said = v["engine"].as_str().unwrap_or_default();
    assert!(
        said.starts_with(&format!(
            "run on the GPU Operator's DCGM host engine gpu-operator/{ds}"
        )) && said.contains(":5555"),
        "the operator's run did not go to the engine: {v:#}"
    );
}
