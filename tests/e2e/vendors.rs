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
    let node = |name: &str| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {t}"))
            .clone()
    };
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

    // DCGM is never run on an AMD GPU: a node of AMD GPUs answers so in a line.
    let r = l
        .call("run_gpu_diagnostic", json!({"node_name": mi_ok}))
        .await;
    let t = mcp::text(&r);
    assert!(t.contains("every requested GPU is an AMD GPU"), "{t}");
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
    assert_eq!(v["diagnosis"]["gpus_held"], 32, "{t}");
    let suspects = v["diagnosis"]["suspects"].as_array().unwrap();
    let first = &suspects[0];
    assert_eq!(first["kind"], "hardware", "{t}");
    assert_eq!(first["node"], names[2].as_str(), "{t}");
    assert_eq!(first["gpu"], 3, "{t}");
    assert!(
        suspects
            .iter()
            .all(|s| s["node"].is_null() || s["node"] == names[2].as_str()),
        "a healthy AMD node is a suspect: {t}"
    );
    assert_eq!(first["code"], "amd.ras_ue.umc", "{t}");
    assert!(t.contains("poisoned data consumed"), "{t}");
    assert!(!t.contains("nvidia-smi") && !t.contains("Xid"), "{t}");
    l.stop().await;
    assert!(tb.pods(&ns).is_empty(), "probe pods left in {ns}");
}
