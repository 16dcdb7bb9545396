//! A fleet of both vendors on the real API server: NVIDIA H100 nodes as the GPU Operator leaves them, AMD
//! MI300X nodes as AMD's GPU Operator leaves them (the NFD rule's `feature.node.kubernetes.io/amd-gpu`, the
//! labeller's `amd.com/gpu.*`, the device plugin's `amd.com/gpu` capacity; ROCm/gpu-operator and
//! ROCm/k8s-device-plugin, see `launcher/src/cluster/amd.rs`), and one node with a GPU of each. Every kwok
//! node's probe answers with a built-in scenario of its vendor. `list_gpu_nodes` lists all of them as GPU
//! nodes with their vendor, `scan_gpu_nodes` names the one sick node of each vendor with its own incident
//! (an Xid 79 on the H100, a consumed UMC poison on the MI300X) and the AMD action in AMD's words, and the
//! operator tools judge an AMD GPU in AMD's terms (a reset: `amd-smi`, its whole XGMI hive).

use serde_json::json;

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// Turn a node `testbed.sh node` made (NVIDIA's labels and capacity) into an AMD node with `amd` GPUs,
/// keeping `nvidia` NVIDIA GPUs (0: none).
fn make_amd(tb: &Testbed, name: &str, nvidia: u32, amd: u32, product: &str) {
    if nvidia == 0 {
        tb.kubectl(&[
            "label",
            "node",
            name,
            "nvidia.com/gpu.present-",
            "nvidia.com/gpu.product-",
            "nvidia.com/gpu.count-",
        ]);
    }
    tb.kubectl(&[
        "label",
        "node",
        name,
        "--overwrite",
        "feature.node.kubernetes.io/amd-gpu=true",
        &format!("amd.com/gpu.product-name={product}"),
        "amd.com/gpu.family=AI",
    ]);
    let nv = if nvidia == 0 {
        "null".to_string()
    } else {
        format!("\"{nvidia}\"")
    };
    tb.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"capacity":{{"nvidia.com/gpu":{nv},"amd.com/gpu":"{amd}"}},"allocatable":{{"nvidia.com/gpu":{nv},"amd.com/gpu":"{amd}"}}}}}}"#
        ),
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_both_vendors_is_listed_scanned_and_refused_in_each_vendors_terms() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-vendors");
    tb.probe_namespace(&ns, User::Operator);
    tb.bind_reader(User::Operator);
    crate::operator::bind_operator(tb, User::Operator);
    let group = unique("vendors");
    let h100_ok = unique("h100-ok");
    let h100_sick = unique("h100-xid79");
    let mi_ok = unique("mi300x-ok");
    let mi_sick = unique("mi300x-poison");
    let mixed = unique("mixed");
    let nodes = [
        (&h100_ok, "dgx-h100-healthy"),
        (&h100_sick, "dgx-h100-xid79"),
        (&mi_ok, "mi300x-healthy"),
        (&mi_sick, "mi300x-umc-ue-poison"),
        (&mixed, "mixed-h100-mi210"),
    ]
    .map(|(n, s)| FakeNode::gpu(n, s).label("e2e-group", &group));
    tb.add_nodes(&nodes);
    make_amd(tb, &mi_ok, 0, 8, "AMD_Instinct_MI300X_OAM");
    make_amd(tb, &mi_sick, 0, 8, "AMD_Instinct_MI300X_OAM");
    make_amd(tb, &mixed, 1, 1, "AMD_Instinct_MI210");

    let l = mcp::start(tb, User::Operator, &ns, &["--mode", "operator"]).await;
    let selector = format!("e2e-group={group}");

    // Every node is a GPU node, each with its vendor.
    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["count"], 5, "{t}");
    let node = |name: &str| crate::platform_marks::node(&v, "nodes", name).clone();
    let vendor = |name: &str| node(name)["vendor"].clone();
    assert_eq!(vendor(&mi_ok), "amd", "{t}");
    assert_eq!(vendor(&mi_sick), "amd", "{t}");
    // NVIDIA is the vendor an absent field means (every answer before AMD support).
    assert_eq!(vendor(&h100_ok), serde_json::Value::Null, "{t}");
    // A node with NVIDIA capacity counts as NVIDIA's first; its AMD GPU is counted too.
    assert_eq!(vendor(&mixed), serde_json::Value::Null, "{t}");
    assert!(
        t.contains("NVIDIA-H100-80GB-HBM3, AMD_Instinct_MI210"),
        "{t}"
    );
    assert!(!t.contains("AMD AMD_"), "{t}");
    let cap = |name: &str| node(name)["gpu_capacity"].clone();
    assert_eq!(cap(&mi_ok), 8, "{t}");
    assert_eq!(cap(&mixed), 2, "{t}");

    // One scan: the sick node of each vendor, each with its own incident and action.
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["nodes_total"], 5, "{t}");
    assert_eq!(v["nodes_ok"], 5, "{t}");
    let attention: Vec<&str> = v["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(attention.len(), 2, "{t}");
    assert!(attention.contains(&h100_sick.as_str()), "{t}");
    assert!(attention.contains(&mi_sick.as_str()), "{t}");
    assert!(t.contains("fell off the bus"), "{t}");
    assert!(t.contains("poison"), "{t}");
    assert!(!t.contains(&format!("{mi_ok}: UNHEALTHY")), "{t}");

    // The MI300X's incident, asked of that node alone: AMD's action, in AMD's words.
    let r = l
        .call("get_gpu_health", json!({"node_name": mi_sick}))
        .await;
    let t = mcp::text(&r);
    assert!(t.contains("amd-smi reset -G -g 0000:5c:00.0"), "{t}");
    assert!(!t.contains("nvidia-smi"), "{t}");

    // A reset of the AMD GPU is judged in AMD's terms, with no NVIDIA step: AMD's tool, the whole hive it
    // resets, each GPU of the hive asked for holders (a simulated node has no /proc to scan: refused as
    // not known, never passed); the mixed node's NVIDIA GPU is judged as NVIDIA's.
    let r = l
        .call(
            "reset_gpu",
            json!({"node_name": mi_sick, "gpu": "3", "dry_run": true}),
        )
        .await;
    let t = mcp::text(&r);
    assert!(t.contains("REFUSED"), "{t}");
    assert!(t.contains("amd-smi reset -G -g 0000:5c:00.0"), "{t}");
    assert!(t.contains("resets the whole XGMI hive"), "{t}");
    assert!(t.contains(": GPU 0-7;"), "{t}");
    assert!(
        t.contains(
            "BLOCK hive_device_holders: the holders of /dev/kfd and /dev/dri were not collected"
        ),
        "{t}"
    );
    assert!(
        !t.contains("nvidia-smi") && !t.contains("device_node_holders"),
        "{t}"
    );
    let r = l
        .call(
            "reset_gpu",
            json!({"node_name": mixed, "gpu": "0", "dry_run": true}),
        )
        .await;
    let t = mcp::text(&r);
    assert!(!t.contains("gpu_vendor"), "{t}");

    // DCGM is never run on an AMD node: its diagnostic is RVS's, in AMD's test runner image, which image
    // delivery (node-probe's own probe image) cannot give: not available, no pod.
    let e = l
        .err("run_gpu_diagnostic", json!({"node_name": mi_ok}))
        .await;
    assert!(
        e.contains("not available") && e.contains("rocm/test-runner") && !e.contains("DCGM"),
        "{e}"
    );
    // A node with GPUs of both vendors runs DCGM, which leaves its AMD GPU out in a line.
    let r = l
        .call("run_gpu_diagnostic", json!({"node_name": mixed}))
        .await;
    let t = mcp::text(&r);
    assert!(
        t.starts_with("DCGM diagnostic") && t.contains("not tested (other_vendor)"),
        "{t}"
    );
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}

/// A training Job on four MI300X nodes (one pod per node holding its 8 `amd.com/gpu`, as AMD's device plugin
/// grants them), one node's GPU 3 with a consumed UMC poison: `diagnose_workload` probes every node of the
/// Job, counts the Job's 32 GPUs (its pods request every GPU of their nodes) and leads with that GPU, in AMD's
/// words; the three healthy AMD nodes are no suspects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_amd_nodes_is_diagnosed() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-amdjob");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let wl = unique("wl-amd");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    let scenarios = [
        "mi300x-healthy",
        "mi300x-healthy",
        "mi300x-umc-ue-poison",
        "mi300x-healthy",
    ];
    let names: Vec<String> = (0..scenarios.len())
        .map(|i| unique(&format!("amdjob-{i}")))
        .collect();
    let fake: Vec<FakeNode> = names
        .iter()
        .zip(scenarios)
        .map(|(n, s)| FakeNode::gpu(n, s))
        .collect();
    tb.add_nodes(&fake);
    for n in &names {
        make_amd(tb, n, 0, 8, "AMD_Instinct_MI300X_OAM");
    }
    tb.apply(&format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: train, namespace: {wl}}}\nspec:\n  completionMode: Indexed\n  completions: 4\n  parallelism: 4\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: train\n        image: registry.invalid/train:1\n"
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
    let mut yaml = String::new();
    for (i, n) in names.iter().enumerate() {
        yaml += &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: train-{i}\n  namespace: {wl}\n  labels: {{batch.kubernetes.io/job-name: train, batch.kubernetes.io/job-completion-index: \"{i}\"}}\n  ownerReferences:\n  - {{apiVersion: batch/v1, kind: Job, name: train, uid: {uid}, controller: true}}\nspec:\n  nodeName: {n}\n  containers:\n  - name: train\n    image: registry.invalid/train:1\n    resources:\n      limits: {{amd.com/gpu: \"8\"}}\n---\n"
        );
    }
    tb.apply(&yaml);

    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let t = the_jobs_first_suspect(&l, &wl, 32, &names[2], 3, "amd.ras_ue.umc").await;
    assert!(t.contains("poisoned data consumed"), "{t}");
    assert!(!t.contains("nvidia-smi") && !t.contains("Xid"), "{t}");
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}

/// `run_gpu_diagnostic` on AMD nodes (issue 63 item 6): AMD's ROCm Validation Suite (node-probe `rvs-diag`) in
/// AMD's test runner image as the node lists it by digest, the way DCGM's runs in NVIDIA's DCGM image. A node
/// without that image answers "not available" and no pod is made; with it, the probe pod runs the test runner
/// image (node-probe copied in) and the held and partitioned GPUs are left out, each with its reason, and
/// nothing run is "not run", never failed (kwok's node-probe is simulated: it has no rvs to run, so a failed
/// RVS test's answer is the tool's unit test `an_rvs_answer_names_the_failed_gpu_and_action_...` and
/// node-probe's tests/probe/rvs.rs). A cancelled run leaves no pod; an NVIDIA node still runs DCGM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_nodes_run_rvs_in_the_test_runner_image_or_answer_not_available() {
    use std::time::{Duration, Instant};
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-rvs");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let runner = crate::testbed::pulled("docker.io/rocm/test-runner:v1.4.0");
    let runner_digest = runner.split_once('+').unwrap().1.to_string();
    assert!(
        runner_digest.starts_with("docker.io/rocm/test-runner@sha256:"),
        "{runner_digest}"
    );
    let bare = unique("mi300x-bare");
    let busy = unique("mi300x-busy");
    let cpx = unique("mi300x-cpx");
    let stuck = unique("mi300x-stuck");
    let h100 = unique("h100-dcgm");
    tb.add_nodes(&[
        FakeNode::gpu(&bare, "mi300x-healthy"),
        FakeNode::gpu(&busy, "mi300x-healthy").images(&[&runner]),
        FakeNode::gpu(&cpx, "mi300x-cpx").images(&[&runner]),
        FakeNode::without_kubelet(&stuck, true).images(&[&runner]),
        FakeNode::gpu(&h100, "dgx-h100-healthy"),
    ]);
    for n in [&bare, &busy, &cpx, &stuck] {
        make_amd(tb, n, 0, 8, "AMD_Instinct_MI300X_OAM");
    }
    // The default delivery (node-probe copied into a base the node lists): what a test runner image needs.
    let bins = crate::copy::amd64_only_bin_dir(tb)
        .to_str()
        .unwrap()
        .to_string();
    let l = mcp::start(tb, User::Reader, &ns, &["--probe-bin-dir", &bins]).await;

    // No test runner image on the node: not available, and no pod was ever made for it.
    let e = l
        .err("run_gpu_diagnostic", json!({"node_name": bare}))
        .await;
    assert!(
        e.contains(&format!(
            "not available: node {bare} has no AMD test runner image (rocm/test-runner)"
        )) && e.contains("no pod was started"),
        "{e}"
    );
    assert!(!e.contains("dcgm"), "an AMD node's answer names DCGM: {e}");
    assert_eq!(tb.pods(&ns), Vec::<String>::new());
    let log = l.stderr();
    assert!(
        !log.lines()
            .any(|x| x.contains("creating probe pod") && x.contains(bare.as_str())),
        "a probe pod was made on the node without the image: {log}"
    );

    // Every GPU held by a training process: left out with its holder; nothing ran, which is not a failure.
    let r = l
        .call(
            "run_gpu_diagnostic",
            json!({"node_name": busy, "gpus": "0,1"}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_ne!(r.is_error, Some(true), "{t}\n{}", l.stderr());
    assert!(t.starts_with("RVS diagnostic (AMD) of node"), "{t}");
    assert_eq!(v["report"]["recipe"], "gpup_single", "{v}");
    assert_eq!(v["report"]["outcome"], "not_run", "{v}");
    let left: Vec<(&str, &str)> = v["report"]["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["requested"].as_str().unwrap(), n["why"].as_str().unwrap()))
        .collect();
    assert_eq!(left, [("0", "held"), ("1", "held")], "{t}");
    assert!(
        t.contains("GPU 0, 1 not tested (held)") && t.contains("pid 52110"),
        "{t}"
    );
    assert!(!t.contains("FAILED"), "{t}");
    let log = l.stderr();
    assert!(
        log.lines()
            .any(|x| x.contains("AMD test runner image for the diagnostic")
                && x.contains(&format!("image={runner_digest}"))),
        "the run's pod was not the node's test runner image: {log}"
    );

    // Partitioned GPUs (CPX) are not for AMD's test runner: left out with that line, not run.
    let v = l
        .ok("run_gpu_diagnostic", json!({"node_name": cpx, "level": 1}))
        .await;
    assert_eq!(v["report"]["outcome"], "not_run", "{v}");
    let nt = v["report"]["not_tested"].as_array().unwrap();
    assert!(
        !nt.is_empty() && nt.iter().all(|n| n["why"] == "partitioned"),
        "{v}"
    );

    // AMD GPUs by index only, RVS's recipes only; a recipe that loads the GPUs only in operator mode.
    let e = l
        .err(
            "run_gpu_diagnostic",
            json!({"node_name": busy, "gpus": "GPU-00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert!(e.contains("by index"), "{e}");
    let e = l
        .err(
            "run_gpu_diagnostic",
            json!({"node_name": busy, "tests": "pcie"}),
        )
        .await;
    assert!(e.contains("unknown RVS recipe"), "{e}");
    let e = l
        .err(
            "run_gpu_diagnostic",
            json!({"node_name": busy, "gpus": "0", "tests": "gst_single"}),
        )
        .await;
    assert!(
        e.contains("RVS recipe gst_single loads the GPUs") && e.contains("operator mode"),
        "{e}"
    );

    // A run whose pod never starts (no kubelet), cancelled: its pod (the test runner image) goes.
    let handle = l
        .start_call(
            "run_gpu_diagnostic",
            json!({"node_name": stuck, "level": 1}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let pod = loop {
        if let Some(p) = tb.pods(&ns).into_iter().next() {
            break p;
        }
        assert!(Instant::now() < deadline, "no probe pod\n{}", l.stderr());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let image = tb.kubectl(&[
        "get",
        "pod",
        "-n",
        &ns,
        &pod,
        "-o",
        "jsonpath={.spec.containers[0].image} {.spec.activeDeadlineSeconds}",
    ]);
    let (image, secs) = image.trim().split_once(' ').unwrap();
    assert_eq!(image, runner_digest, "{pod}");
    // The pod lives to the run's own deadline (level 1: 120 s, and 90 s for its start and stop) at least.
    assert!(secs.parse::<u64>().unwrap() >= 210, "{pod}: {secs}");
    handle
        .cancel(Some("test cancels".into()))
        .await
        .expect("send cancel");
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(60)) {
        panic!(
            "pod {pod} not deleted after cancel: {left:?}\n{}",
            l.stderr()
        );
    }

    // An NVIDIA node still runs DCGM's diagnostic.
    let r = l
        .call(
            "run_gpu_diagnostic",
            json!({"node_name": h100, "gpus": "0"}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_ne!(r.is_error, Some(true), "{t}");
    assert!(t.starts_with("DCGM diagnostic of node"), "{t}");
    assert!(v["report"].get("recipe").is_none(), "{v}");
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(60)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// RVS's level 2 on an AMD node under DCGM's rules: operator mode and a person's confirmation (the `confirm`
/// argument, the target repeated, where the client can ask no one), audited on the node with the run's outcome;
/// `keep_pods_off` sets the run's own NoSchedule taint and lifts it after. Every GPU of the node is held by a
/// training process, so the run is "not run", never failed, and its mark still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amd_level_2_needs_a_person_is_audited_and_keeps_pods_off_for_the_run() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-rvs-op");
    tb.probe_namespace(&ns, User::Operator);
    tb.bind_reader(User::Operator);
    crate::operator::bind_operator(tb, User::Operator);
    let runner = crate::testbed::pulled("docker.io/rocm/test-runner:v1.4.0");
    let node = unique("mi300x-op");
    tb.add_nodes(&[FakeNode::gpu(&node, "mi300x-healthy").images(&[&runner])]);
    make_amd(tb, &node, 0, 8, "AMD_Instinct_MI300X_OAM");
    let bins = crate::copy::amd64_only_bin_dir(tb)
        .to_str()
        .unwrap()
        .to_string();
    let l = mcp::start(
        tb,
        User::Operator,
        &ns,
        &["--mode", "operator", "--probe-bin-dir", &bins],
    )
    .await;
    let target = format!("{node}/gpus/0/level-2");
    // Unconfirmed: refused, naming the target to repeat; nothing ran.
    let e = l
        .err(
            "run_gpu_diagnostic",
            json!({"node_name": node, "gpus": "0", "level": 2}),
        )
        .await;
    assert!(e.contains(&target), "{e}");
    assert!(tb.pods(&ns).is_empty());
    // `all` is for level 1 only.
    let e = l
        .err(
            "run_gpu_diagnostic",
            json!({"node_name": node, "level": 2, "confirm": format!("{node}/gpus/all/level-2")}),
        )
        .await;
    assert!(e.contains("name them"), "{e}");
    let v = l
        .ok(
            "run_gpu_diagnostic",
            json!({"node_name": node, "gpus": "0", "level": 2, "keep_pods_off": true, "confirm": target}),
        )
        .await;
    assert_eq!(v["report"]["recipe"], "levels/rvs_level_2", "{v}");
    assert_eq!(v["report"]["outcome"], "not_run", "{v}");
    assert!(v["confirmed_by"].is_string(), "{v}");
    let taint = v["kept_pods_off"]["taint"].as_str().unwrap_or_default();
    assert!(
        taint.starts_with("keep-pods-off.k8s-gpu-mcp.io/run-"),
        "{v}"
    );
    assert!(
        v["kept_pods_off"]["after"]
            .as_str()
            .is_some_and(|a| a.contains("lifted")),
        "{v}"
    );
    let taints = tb.kubectl(&["get", "node", &node, "-o", "jsonpath={.spec.taints[*].key}"]);
    assert!(
        !taints.contains("keep-pods-off"),
        "the run's mark stayed: {taints}"
    );
    // The audit: the refusal and the run, with its outcome, as Events on the node.
    let events = crate::operator::events(tb, &node);
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    assert!(
        events.iter().any(|e| e.contains("run_gpu_diagnostic")
            && e.contains("RVS level 2 (levels/rvs_level_2) not run")
            && e.contains("confirmed by the confirm argument only")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("run_gpu_diagnostic") && e.contains("refused")),
        "{events:?}"
    );
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, std::time::Duration::from_secs(60)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// `diagnose_workload` on Job `train` in `wl`, whose pods sit on four nodes holding `gpus_held` devices in
/// all: every node probed, none failed, and the first suspect the hardware fault on `sick`'s GPU `gpu`
/// (its code starting with `code`), no other node a suspect. Returns the answer's text.
async fn the_jobs_first_suspect(
    l: &mcp::Launcher,
    wl: &str,
    gpus_held: u64,
    sick: &str,
    gpu: u64,
    code: &str,
) -> String {
    let r = l
        .call(
            "diagnose_workload",
            json!({"namespace": wl, "job": "train"}),
        )
        .await;
    let t = mcp::text(&r);
    assert_eq!(r.is_error, Some(false), "{t}");
    let v = r.structured_content.clone().unwrap();
    assert_eq!(v["nodes_probed"], 4, "{t}");
    assert_eq!(v["nodes_failed"], 0, "{t}");
    assert_eq!(v["diagnosis"]["pods"], 4, "{t}");
    assert_eq!(v["diagnosis"]["gpus_held"], gpus_held, "{t}");
    let suspects = v["diagnosis"]["suspects"].as_array().unwrap();
    let first = &suspects[0];
    assert_eq!(first["kind"], "hardware", "{t}");
    assert_eq!(first["node"], sick, "{t}");
    assert_eq!(first["gpu"], gpu, "{t}");
    assert!(first["code"].as_str().unwrap().starts_with(code), "{t}");
    assert!(
        suspects
            .iter()
            .all(|s| s["node"].is_null() || s["node"] == sick),
        "a healthy node is a suspect: {t}"
    );
    t
}

/// Turn a node `testbed.sh node` made into an Intel Gaudi node with `gaudi` devices, as Intel's stack leaves
/// it: Node Feature Discovery's label for PCI vendor 1da3 (Intel's Gaudi provisioning guide) and the device
/// plugin's `habana.ai/gaudi` capacity (HabanaAI/habanalabs-k8s-device-plugin 1.16.0 `main.go:89`), nothing
/// of NVIDIA's.
fn make_gaudi(tb: &Testbed, name: &str, gaudi: u32) {
    make_gaudi_allocatable(tb, name, gaudi, gaudi);
}

/// [`make_gaudi`] with `allocatable` of its `gaudi` devices allocatable: the rest withdrawn by the device
/// plugin, as it does on HLML's critical-error event (`habanalabs.go` `watchXIDs`).
fn make_gaudi_allocatable(tb: &Testbed, name: &str, gaudi: u32, allocatable: u32) {
    tb.kubectl(&[
        "label",
        "node",
        name,
        "nvidia.com/gpu.present-",
        "nvidia.com/gpu.product-",
        "nvidia.com/gpu.count-",
    ]);
    tb.kubectl(&[
        "label",
        "node",
        name,
        "--overwrite",
        "feature.node.kubernetes.io/pci-1da3.present=true",
    ]);
    tb.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"capacity":{{"nvidia.com/gpu":null,"habana.ai/gaudi":"{gaudi}"}},"allocatable":{{"nvidia.com/gpu":null,"habana.ai/gaudi":"{allocatable}"}}}}}}"#
        ),
    ]);
}

/// An Indexed training Job `train` in a new namespace `wl`, one pod per node of `nodes` (pod `train-<i>`
/// with completion index `i`) asking `limits` (`habana.ai/gaudi: "8"`), and beside the Job a server `serve`
/// on `nodes[0]` asking `serve_limits`: kwok completes a Job's pods at once, so the server is what still
/// holds devices. Returns once kwok has settled the pods (rather than race it on a loaded machine).
fn training_job(tb: &Testbed, wl: &str, nodes: &[String], limits: &str, serve_limits: &str) {
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: train, namespace: {wl}}}\nspec:\n  completionMode: Indexed\n  completions: {n}\n  parallelism: {n}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: train\n        image: registry.invalid/train:1\n",
        n = nodes.len()
    ));
    let uid = tb
        .kubectl(&[
            "-n",
            wl,
            "get",
            "job",
            "train",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .trim()
        .to_string();
    let mut yaml = String::new();
    for (i, n) in nodes.iter().enumerate() {
        yaml += &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: train-{i}\n  namespace: {wl}\n  labels: {{batch.kubernetes.io/job-name: train, batch.kubernetes.io/job-completion-index: \"{i}\"}}\n  ownerReferences:\n  - {{apiVersion: batch/v1, kind: Job, name: train, uid: {uid}, controller: true}}\nspec:\n  nodeName: {n}\n  containers:\n  - name: train\n    image: registry.invalid/train:1\n    resources:\n      limits: {{{limits}}}\n---\n"
        );
    }
    yaml += &format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: serve, namespace: {wl}}}\nspec:\n  nodeName: {}\n  containers:\n  - name: serve\n    image: registry.invalid/serve:1\n    resources:\n      limits: {{{serve_limits}}}\n",
        nodes[0]
    );
    tb.apply(&yaml);
    let settled = || {
        tb.kubectl(&[
            "-n",
            wl,
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
        ])
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let want = |p: &str| {
        (0..nodes.len()).all(|i| p.contains(&format!("train-{i}=Succeeded")))
            && p.contains("serve=Running")
    };
    let mut phases = settled();
    while !want(&phases) {
        assert!(
            std::time::Instant::now() < deadline,
            "kwok did not settle the pods: {phases}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        phases = settled();
    }
}

/// A fleet of three vendors (issue 78): four Gaudi 2 nodes beside an H100 and an MI300X node. The list names
/// each node's vendor and counts `habana.ai/gaudi`; a scan names the one sick Gaudi node; and a training Job
/// on the four Gaudi nodes (one pod per node holding its 8 `habana.ai/gaudi`) is diagnosed: every Gaudi node
/// probed, the Job's 32 devices counted, and the first suspect the device with the HBM double-bit error
/// (`gaudi2-hbm-ecc`'s device 2), in Intel's words; the other vendors' nodes are not the Job's and no
/// healthy Gaudi node is a suspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_on_gaudi_nodes_in_a_fleet_of_three_vendors_is_diagnosed() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-gaudi");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("three");
    let h100 = unique("h100");
    let mi = unique("mi300x");
    let scenarios = [
        "gaudi2-healthy",
        "gaudi2-healthy",
        "gaudi2-hbm-ecc",
        "gaudi2-healthy",
    ];
    let gaudis: Vec<String> = (0..scenarios.len())
        .map(|i| unique(&format!("gaudi-{i}")))
        .collect();
    let mut fake = vec![
        FakeNode::gpu(&h100, "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::gpu(&mi, "mi300x-healthy").label("e2e-group", &group),
    ];
    fake.extend(
        gaudis
            .iter()
            .zip(scenarios)
            .map(|(n, s)| FakeNode::gpu(n, s).label("e2e-group", &group)),
    );
    tb.add_nodes(&fake);
    make_amd(tb, &mi, 0, 8, "AMD_Instinct_MI300X_OAM");
    for n in &gaudis {
        make_gaudi(tb, n, 8);
    }
    let wl = unique("wl-gaudi");
    training_job(
        tb,
        &wl,
        &gaudis,
        "habana.ai/gaudi: \"8\"",
        "habana.ai/gaudi: \"2\"",
    );

    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    // Each node with its vendor; a Gaudi node's devices counted and allocated from `habana.ai/gaudi`.
    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["count"], 6, "{t}");
    let node = |name: &str| crate::platform_marks::node(&v, "nodes", name).clone();
    assert_eq!(node(&h100)["vendor"], serde_json::Value::Null, "{t}");
    assert_eq!(node(&mi)["vendor"], "amd", "{t}");
    for (i, g) in gaudis.iter().enumerate() {
        let n = node(g);
        assert_eq!(n["vendor"], "intel", "{t}");
        assert_eq!(n["gpu_capacity"], 8, "{t}");
        assert_eq!(n["gpu_allocated"], if i == 0 { 2 } else { 0 }, "{t}");
    }
    assert!(t.contains("Intel Gaudi"), "{t}");
    assert!(!t.contains("AMD (no product label)"), "{t}");

    // One scan: the sick Gaudi node alone needs attention, with Intel's action.
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["nodes_total"], 6, "{t}");
    let attention: Vec<&str> = v["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(attention, [gaudis[2].as_str()], "{t}");
    assert!(t.contains("HBM"), "{t}");

    // The Job on the Gaudi nodes: its four nodes, 32 devices, the HBM device first, in Intel's words.
    let t = the_jobs_first_suspect(&l, &wl, 32, &gaudis[2], 2, "habanalabs.").await;
    // The rank on that device is the pod the Job placed there.
    assert!(t.contains("pods: train-2; ranks: index 2"), "{t}");
    assert!(
        !t.contains("nvidia-smi") && !t.contains("Xid") && !t.contains("amd-smi"),
        "{t}"
    );
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}

/// A Gaudi node whose device plugin withdrew a device (allocatable 7 of 8 `habana.ai/gaudi`, the kubelet's
/// word on the API server) reads critical before any probe, in Habana's words, and an H100 node whose
/// plugin withdrew two GPUs in NVIDIA's: the list names the mark under each node, and a scan of them and a
/// healthy Gaudi node names those two alone, the probe's healthy reading beside the plugin's mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_withdrawn_by_its_device_plugin_is_named_before_any_probe() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-gaudi-w");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("withdrawn");
    let (ok, withdrawn) = (unique("gaudi-ok"), unique("gaudi-w"));
    let h100 = unique("h100-w");
    tb.add_nodes(&[
        FakeNode::gpu(&ok, "gaudi2-healthy").label("e2e-group", &group),
        FakeNode::gpu(&withdrawn, "gaudi2-healthy").label("e2e-group", &group),
        FakeNode::gpu(&h100, "dgx-h100-healthy").label("e2e-group", &group),
    ]);
    make_gaudi(tb, &ok, 8);
    make_gaudi_allocatable(tb, &withdrawn, 8, 7);
    tb.kubectl(&[
        "patch",
        "node",
        &h100,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"allocatable":{"nvidia.com/gpu":"6"}}}"#,
    ]);
    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    let node = |name: &str| crate::platform_marks::node(&v, "nodes", name).clone();
    let w = node(&withdrawn);
    assert_eq!(
        (w["gpu_capacity"].as_u64(), w["gpu_allocatable"].as_u64()),
        (Some(8), Some(7)),
        "{t}"
    );
    assert_eq!(w["platform"][0]["source"], "gaudi_device_plugin", "{t}");
    assert_eq!(w["platform"][0]["severity"], "critical", "{t}");
    assert!(
        node(&ok)["platform"]
            .as_array()
            .is_none_or(|p| p.is_empty()),
        "{t}"
    );
    assert!(
        t.contains(
            "Habana device plugin (habana.ai/gaudi): 1 of 8 Gaudi devices withdrawn (allocatable 7) \
             (HLML event registration failed for the withdrawn devices)"
        ),
        "{t}"
    );
    let h = node(&h100);
    assert_eq!(h["platform"][0]["source"], "nvidia_device_plugin", "{t}");
    assert!(
        t.contains(
            "NVIDIA device plugin: 2 of 8 nvidia.com/gpu withdrawn (allocatable 6) (NVML Xid critical-error \
             event)"
        ),
        "{t}"
    );

    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    let mut attention: Vec<&str> = v["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    attention.sort();
    let mut want = [withdrawn.as_str(), h100.as_str()];
    want.sort();
    assert_eq!(attention, want, "{t}");
    assert!(t.contains("Habana device plugin"), "{t}");
    assert!(t.contains("NVIDIA device plugin"), "{t}");
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}

/// Turn a node `testbed.sh node` made into an EKS trn2.48xlarge as AWS's stack leaves it: the Neuron device
/// plugin's `aws.amazon.com/neuron` (whole devices) and `aws.amazon.com/neuroncore` capacity (8 NeuronCores
/// per Trainium2 device), the instance type label, nothing of NVIDIA's. No label says Neuron (see
/// `launcher/src/cluster/neuron.rs`).
fn make_trn2(tb: &Testbed, name: &str, devices: u32) {
    tb.kubectl(&[
        "label",
        "node",
        name,
        "nvidia.com/gpu.present-",
        "nvidia.com/gpu.product-",
        "nvidia.com/gpu.count-",
    ]);
    tb.kubectl(&[
        "label",
        "node",
        name,
        "--overwrite",
        "node.kubernetes.io/instance-type=trn2.48xlarge",
    ]);
    let cores = devices * 8;
    tb.kubectl(&[
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"capacity":{{"nvidia.com/gpu":null,"aws.amazon.com/neuron":"{devices}","aws.amazon.com/neuroncore":"{cores}"}},"allocatable":{{"nvidia.com/gpu":null,"aws.amazon.com/neuron":"{devices}","aws.amazon.com/neuroncore":"{cores}"}}}}}}"#
        ),
    ]);
}

/// Four accelerator families in one conversation (issue 89): an H100, an MI300X and a Gaudi 2 node beside
/// four trn2 nodes, one of which (`trn2-hbm-ue`: device 6's HBM uncorrectable error) EKS's node monitoring
/// agent has also marked (`AcceleratedHardwareReady=False`, `NeuronHBMUncorrectableError`, the agent's own
/// reason, pkg/reasons/reasons.go:35). The list names each node's vendor and counts `aws.amazon.com/neuron`;
/// one scan names that trn2 alone, the agent's mark joined to the probe's incident; a Job on the trn2 nodes
/// (one pod per node holding its 16 devices) is diagnosed with device 6 first in AWS's words; describing
/// the node says the same incident once; and no probe pod is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_four_accelerator_families_is_diagnosed_in_one_conversation() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-neuron");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("four");
    let h100 = unique("h100");
    let mi = unique("mi300x");
    let gaudi = unique("gaudi");
    let scenarios = [
        "trn2-healthy",
        "trn2-healthy",
        "trn2-hbm-ue",
        "trn2-healthy",
    ];
    let trn2s: Vec<String> = (0..scenarios.len())
        .map(|i| unique(&format!("trn2-{i}")))
        .collect();
    let mut fake = vec![
        FakeNode::gpu(&h100, "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::gpu(&mi, "mi300x-healthy").label("e2e-group", &group),
        FakeNode::gpu(&gaudi, "gaudi2-healthy").label("e2e-group", &group),
    ];
    fake.extend(
        trn2s
            .iter()
            .zip(scenarios)
            .map(|(n, s)| FakeNode::gpu(n, s).label("e2e-group", &group)),
    );
    tb.add_nodes(&fake);
    make_amd(tb, &mi, 0, 8, "AMD_Instinct_MI300X_OAM");
    make_gaudi(tb, &gaudi, 8);
    for n in &trn2s {
        make_trn2(tb, n, 16);
    }
    crate::platform_marks::set_condition(
        tb,
        &trn2s[2],
        "AcceleratedHardwareReady",
        "False",
        "NeuronHBMUncorrectableError",
        "NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR affecting neuron devices",
    );
    let wl = unique("wl-trn2");
    training_job(
        tb,
        &wl,
        &trn2s,
        "aws.amazon.com/neuron: \"16\"",
        "aws.amazon.com/neuron: \"2\"",
    );

    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    // Each node with its vendor; a trn2's devices counted and allocated from `aws.amazon.com/neuron`.
    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["count"], 7, "{t}");
    let node = |name: &str| crate::platform_marks::node(&v, "nodes", name).clone();
    assert_eq!(node(&mi)["vendor"], "amd", "{t}");
    assert_eq!(node(&gaudi)["vendor"], "intel", "{t}");
    for (i, n) in trn2s.iter().enumerate() {
        let n = node(n);
        assert_eq!(n["vendor"], "neuron", "{t}");
        assert_eq!(n["gpu_capacity"], 16, "{t}");
        assert_eq!(n["gpu_allocated"], if i == 0 { 2 } else { 0 }, "{t}");
    }
    assert!(t.contains("AWS Neuron"), "{t}");
    assert!(t.contains("NeuronHBMUncorrectableError"), "{t}");

    // One scan: the marked trn2 alone needs attention, one incident on device 6 with the agent's word in it.
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["nodes_total"], 7, "{t}");
    assert_eq!(v["nodes_failed"], 0, "{t}");
    let attention: Vec<&str> = v["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].as_str().unwrap())
        .collect();
    assert_eq!(attention, [trn2s[2].as_str()], "{t}");
    assert!(t.contains("HBM"), "{t}");
    assert!(
        t.contains("Also reported by EKS node monitoring agent"),
        "the agent's mark is not joined to the probe's incident: {t}"
    );

    // The Job on the trn2 nodes: its four nodes, 64 devices, device 6 of the sick node first, in AWS's words.
    let t = the_jobs_first_suspect(&l, &wl, 64, &trn2s[2], 6, "neuron.").await;
    assert!(t.contains("pods: train-2; ranks: index 2"), "{t}");
    for word in ["nvidia-smi", "Xid", "amd-smi", "hl-smi"] {
        assert!(!t.contains(word), "{word} in {t}");
    }

    // The node itself: the same incident, once, with the agent's mark as one of its signals.
    let r = l
        .call("describe_gpu_node", json!({"node_name": trn2s[2]}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(r.is_error, Some(false), "{t}");
    let incidents = v["report"]["health"]["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("no incidents in {v:#}"));
    assert_eq!(incidents.len(), 1, "{t}");
    assert_eq!(incidents[0]["code"], "neuron.ecc_uncorrectable", "{t}");
    assert_eq!(incidents[0]["severity"], "critical", "{t}");
    assert!(t.contains("neuron-ls"), "AWS's tool in the action: {t}");
    assert!(
        incidents[0]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["code"] == "platform.memory"),
        "{t}"
    );

    // "Is this device really bad?": no diagnostic of another vendor's is started on it, and the answer
    // says AWS's own, in AWS's words, before any pod.
    let pods_before = tb.pods(&ns).len();
    let r = l
        .call("run_gpu_diagnostic", json!({"node_name": trn2s[2]}))
        .await;
    let t = mcp::text(&r);
    assert_eq!(r.is_error, Some(true), "{t}");
    assert!(
        t.contains("has AWS Neuron devices: AWS Neuron's diagnostic is `nccom-test`"),
        "{t}"
    );
    for word in ["DCGM", "AMD", "Gaudi", "NVIDIA"] {
        assert!(!t.contains(word), "{word} in {t}");
    }
    assert_eq!(
        tb.pods(&ns).len(),
        pods_before,
        "a pod for a run that cannot happen"
    );
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}
