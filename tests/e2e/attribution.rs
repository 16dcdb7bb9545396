//! GPU ↔ pod attribution end to end (issue 7): `get_pod_gpu_allocation` and `get_gpu_processes` through the
//! real launcher, apiserver, probe pod and node-probe, on kwok nodes whose pods request `nvidia.com/gpu`.
//!
//! kwok nodes have neither a kubelet PodResources socket nor NVML, so node-probe answers from the node's
//! fixture (the scenario map). Pod UIDs are assigned by the apiserver, so the test creates the GPU pods
//! first, reads their UIDs, and only then writes the fixture that stands for what the kubelet and the
//! node's `/proc` would say about them: the kubelet's device ids for those pods and the cgroup paths of
//! their processes. node-probe reads the fixture at each run, so writing it after the node exists is
//! enough. The launcher's join (UID → namespace/name, container id → container) then runs against the
//! real pod list, and the request view comes from the real pods' specs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp::{self, has_str};
use crate::testbed::{FakeNode, Testbed, User, probe_dir, skipped, unique};

/// The container id the test gives `trainer-0`'s container (kwok reports no container ids; the test
/// patches the pod's status as a kubelet would).
const CID: &str = "5e1c0a9f3b7d4e2a8c6f1b0d9e7a5c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b";
/// A pod UID the API server does not know: the pod was deleted, its process lives on.
const GONE_UID: &str = "deadbeef-0000-4000-8000-00000000dead";

fn pod_yaml(ns: &str, name: &str, node: &str, gpus: u32) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  nodeName: {node}
  containers:
  - name: train
    image: registry.invalid/train:1
    resources:
      limits: {{nvidia.com/gpu: "{gpus}"}}
"#
    )
}

fn systemd_cgroup(uid: &str, cid: &str) -> String {
    format!(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{cid}.scope",
        uid.replace('-', "_")
    )
}

/// The facts of `dgx-h100-healthy` (8 H100s, one process each) rewritten to what this node's kubelet and
/// `/proc` say about the test's pods: trainer-0 holds GPUs 0 and 1 and runs a process on each; GPU 2
/// runs a process of a deleted pod; GPU 3 a process outside any pod; the kubelet still assigns GPU 4 to
/// `ghost-0`, which the API server does not know. `late-0` (requests 1 GPU) has no device.
fn fixture(ns: &str, trainer_uid: &str) -> (Value, Vec<String>) {
    let out = std::process::Command::new(probe_dir().join("node-probe"))
        .args(["facts", "--simulate", "dgx-h100-healthy"])
        .output()
        .expect("run node-probe facts");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("facts document");
    let mut facts = doc["facts"].clone();
    let uuids: Vec<String> = facts["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["uuid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(uuids.len(), 8);
    let cgroups = [
        systemd_cgroup(trainer_uid, CID),
        systemd_cgroup(trainer_uid, CID),
        systemd_cgroup(GONE_UID, &"ab".repeat(32)),
        "0::/system.slice/sshd.service".to_string(),
    ];
    let mut keep = Vec::new();
    for (i, g) in facts["gpus"].as_array_mut().unwrap().iter_mut().enumerate() {
        if i >= cgroups.len() {
            g["processes"] = json!([]);
        } else {
            keep.push(g["processes"][0]["pid"].as_u64().unwrap());
        }
    }
    let procs: Vec<Value> = facts["host_processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| keep.contains(&p["pid"].as_u64().unwrap()))
        .cloned()
        .collect();
    facts["host_processes"] = Value::Array(
        procs
            .into_iter()
            .zip(cgroups.iter())
            .map(|(mut p, cg)| {
                p["cgroup"] = json!(cg);
                p
            })
            .collect(),
    );
    facts["pod_resources"] = json!({
        "socket": "var/lib/kubelet/pod-resources/kubelet.sock",
        "pods": [
            {"name": "trainer-0", "namespace": ns, "containers": [{"name": "train", "devices": [
                {"resource_name": "nvidia.com/gpu", "device_ids": [uuids[0], uuids[1]]}]}]},
            {"name": "ghost-0", "namespace": ns, "containers": [{"name": "main", "devices": [
                {"resource_name": "nvidia.com/gpu", "device_ids": [uuids[4]]}]}]},
            {"name": "cpu-only", "namespace": ns, "containers": [{"name": "main", "devices": []}]}
        ],
        "allocatable": [{"resource_name": "nvidia.com/gpu", "device_ids": uuids}],
    });
    facts["kubelet_logs"] = json!({
        "pods": [{"name": format!("{ns}_trainer-0_{trainer_uid}"), "containers": [{"name": "train"}]}],
        "containers": [format!("trainer-0_{ns}_train-{CID}.log")],
    });
    (facts, uuids)
}

fn uid_of(tb: &Testbed, ns: &str, pod: &str) -> String {
    tb.kubectl(&[
        "-n",
        ns,
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
}

fn wait_ready(tb: &Testbed, ns: &str, pods: &[&str]) {
    let mut args = vec!["-n", ns, "wait", "--for=condition=Ready", "--timeout=180s"];
    let names: Vec<String> = pods.iter().map(|p| format!("pod/{p}")).collect();
    args.extend(names.iter().map(String::as_str));
    tb.kubectl(&args);
}

fn codes(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(String::from))
        .collect()
}

fn find<'a>(list: &'a Value, key: &str, want: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|x| x[key] == want))
        .unwrap_or_else(|| panic!("no {key}={want} in {list:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_and_processes_are_joined_with_real_pods() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let probe_ns = unique("e2e-attr");
    tb.probe_namespace(&probe_ns, User::Reader);
    tb.bind_reader(User::Reader);
    let dir = tempfile::tempdir().unwrap();
    let exact_node = unique("attr-exact");
    let plain_node = unique("attr-plain");
    let broken_node = unique("attr-broken");
    let fixture_path = dir.path().join(format!("{exact_node}.json"));
    std::fs::write(&fixture_path, "{}").unwrap();
    tb.add_nodes(&[
        FakeNode::gpu(&exact_node, fixture_path.to_str().unwrap()),
        FakeNode::gpu(&plain_node, "dgx-h100-healthy"),
        FakeNode::garbage(&broken_node),
    ]);

    // Workloads: real pods, UIDs assigned by the apiserver, marked Running by kwok.
    let wl = unique("e2e-attr-wl");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    tb.apply(&pod_yaml(&wl, "trainer-0", &exact_node, 2));
    tb.apply(&pod_yaml(&wl, "late-0", &exact_node, 1));
    tb.apply(&pod_yaml(&wl, "trainer-1", &plain_node, 1));
    tb.apply(&pod_yaml(&wl, "trainer-2", &broken_node, 4));
    wait_ready(tb, &wl, &["trainer-0", "late-0", "trainer-1", "trainer-2"]);
    let trainer_uid = uid_of(tb, &wl, "trainer-0");
    assert_eq!(trainer_uid.len(), 36, "{trainer_uid}");
    // What a kubelet reports and kwok does not: the container's runtime id.
    let started = tb.kubectl(&[
        "-n",
        &wl,
        "get",
        "pod",
        "trainer-0",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.running.startedAt}",
    ]);
    let patch = json!({"status": {"containerStatuses": [{
        "name": "train", "image": "registry.invalid/train:1", "imageID": "", "ready": true,
        "restartCount": 0, "started": true, "containerID": format!("containerd://{CID}"),
        "state": {"running": {"startedAt": started}}}]}});
    tb.kubectl(&[
        "-n",
        &wl,
        "patch",
        "pod",
        "trainer-0",
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    let (facts, uuids) = fixture(&wl, &trainer_uid);
    std::fs::write(&fixture_path, facts.to_string()).unwrap();

    let l = mcp::start(tb, User::Reader, &probe_ns, &[]).await;
    let no_pods = || {
        if let Err(left) = tb.wait_no_pods(&probe_ns, Duration::from_secs(120)) {
            panic!("probe pods left in {probe_ns}: {left:?}");
        }
    };

    // --- exact: the kubelet's assignment joined with the pods' requests.
    let r = l
        .call("get_pod_gpu_allocation", json!({"node_name": exact_node}))
        .await;
    let text = mcp::text(&r);
    let v = r.structured_content.clone().expect("structuredContent");
    assert_ne!(r.is_error, Some(true), "{text}");
    no_pods();
    assert_eq!(v["exact"], true, "{v:#}");
    assert!(v.get("why").is_none(), "{v:#}");
    assert_eq!(v["gpu_capacity"], 8);
    assert_eq!(v["gpu_allocated"], 3, "{v:#}");
    assert_eq!(v["requested_by_resource"]["nvidia.com/gpu"], 3);
    assert!(
        v["run"]["ran_in"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{probe_ns}/")),
        "{v:#}"
    );
    let a = &v["assignment"];
    let trainer = find(a, "name", "trainer-0");
    assert_eq!(trainer["namespace"], wl.as_str());
    assert_eq!(trainer["seen_by"], "both");
    assert_eq!(trainer["uid"], trainer_uid.as_str());
    assert_eq!(trainer["phase"], "Running");
    assert!(trainer.get("note").is_none(), "{trainer:#}");
    let c = &trainer["containers"][0];
    assert_eq!(c["name"], "train");
    assert_eq!(c["requests"]["nvidia.com/gpu"], 2);
    let devs: Vec<(u64, &str, &str)> = c["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["gpu_index"].as_u64().unwrap(),
                d["gpu_uuid"].as_str().unwrap(),
                d["form"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        devs,
        [
            (0, uuids[0].as_str(), "gpu_uuid"),
            (1, uuids[1].as_str(), "gpu_uuid")
        ]
    );
    let late = find(a, "name", "late-0");
    assert_eq!(late["seen_by"], "api_only", "{late:#}");
    assert!(
        late["note"]
            .as_str()
            .unwrap()
            .contains("assigned it no GPU device"),
        "{late:#}"
    );
    let ghost = find(a, "name", "ghost-0");
    assert_eq!(ghost["seen_by"], "kubelet_only", "{ghost:#}");
    assert_eq!(ghost["containers"][0]["devices"][0]["gpu_index"], 4);
    // A pod the kubelet lists without GPU devices is no GPU pod.
    assert!(!has_str(a, "cpu-only"), "cpu-only pod listed: {a:#}");
    assert_eq!(
        codes(&v["join_findings"]),
        ["alloc.assigned_not_in_api", "alloc.requested_not_assigned"]
    );
    assert_eq!(v["join_findings"][0]["gpu"], 4);
    assert_eq!(v["report"]["gpus"][4]["allocated_to"][0]["pod"], "ghost-0");
    // The probe named trainer-0's process through the kubelet's log layout and found it on its own GPU.
    let p0 = &v["report"]["gpus"][0]["processes"][0];
    assert_eq!(p0["pod"], "trainer-0", "{p0:#}");
    assert_eq!(p0["status"], "allocated", "{p0:#}");
    assert!(
        text.contains("assignment: exact")
            && text.contains(&format!("nvidia.com/gpu {} -> GPU 1", uuids[1]))
            && text.contains(&format!("- {wl}/ghost-0 [kubelet only]")),
        "{text}"
    );

    // --- not exact: this node's probe could not ask a kubelet; the request view stays.
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": plain_node}))
        .await;
    no_pods();
    assert_eq!(v["exact"], false, "{v:#}");
    assert!(
        v["why"]
            .as_str()
            .unwrap()
            .contains("PodResources API was not queried"),
        "{v:#}"
    );
    assert_eq!(v["assignment"], json!([]));
    let p = find(&v["pods"], "name", "trainer-1");
    assert_eq!(p["uid"], uid_of(tb, &wl, "trainer-1").as_str());
    assert_eq!(p["containers"][0]["requests"]["nvidia.com/gpu"], 1);
    assert_eq!(v["report"]["exact"], false);

    // --- the probe itself fails (garbage output): still the request view, with why.
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": broken_node}))
        .await;
    no_pods();
    assert_eq!(v["exact"], false, "{v:#}");
    let why = v["why"].as_str().unwrap();
    assert!(why.starts_with("probe failed: "), "{why}");
    assert!(v.get("report").is_none(), "{v:#}");
    assert_eq!(
        find(&v["pods"], "name", "trainer-2")["containers"][0]["requests"]["nvidia.com/gpu"],
        4
    );
    assert_eq!(v["gpu_allocated"], 4);

    // --- processes: pod UIDs from cgroups named from one list of the node's pods.
    let r = l
        .call("get_gpu_processes", json!({"node_name": exact_node}))
        .await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    let v = r.structured_content.clone().expect("structuredContent");
    no_pods();
    assert!(v.get("names_why").is_none(), "{v:#}");
    // trainer-0, late-0 and the probe pod itself (running while the list was made, or not yet).
    assert!(v["pods_listed"].as_u64().unwrap() >= 2, "{v:#}");
    // The count names what it counted.
    let named: Vec<&str> = v["pods_named"]
        .as_array()
        .expect("pods_named")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(Some(named.len() as u64), v["pods_listed"].as_u64(), "{v:#}");
    assert!(
        named.contains(&format!("{wl}/trainer-0 (Running)").as_str()),
        "{named:?}"
    );
    assert!(
        text.contains(&format!("{wl}/trainer-0 (Running)")),
        "{text}"
    );
    let owners = &v["owners"];
    assert_eq!(owners.as_array().unwrap().len(), 4, "{owners:#}");
    for (i, o) in owners.as_array().unwrap().iter().enumerate().take(2) {
        assert_eq!(o["gpu"], i as u64, "{o:#}");
        assert_eq!(o["owner"], "pod", "{o:#}");
        assert_eq!(o["namespace"], wl.as_str());
        assert_eq!(o["pod"], "trainer-0");
        assert_eq!(o["container"], "train", "{o:#}");
        assert_eq!(o["pod_uid"], trainer_uid.as_str());
        assert_eq!(o["pod_phase"], "Running");
    }
    assert_eq!(owners[2]["owner"], "pod_not_in_api", "{owners:#}");
    assert_eq!(owners[2]["pod_uid"], GONE_UID);
    assert!(owners[2].get("pod").is_none());
    assert_eq!(owners[3]["owner"], "outside_pod", "{owners:#}");
    assert_eq!(codes(&v["join_findings"]), ["alloc.process_pod_not_in_api"]);
    assert_eq!(v["join_findings"][0]["gpu"], 2);
    assert!(
        text.contains(&format!("-> {wl}/trainer-0, container train (Running)"))
            && text.contains(&format!("pod UID {GONE_UID}: NOT in the API server")),
        "{text}"
    );
    l.stop().await;
    no_pods();
    // The workloads go too (no controller-manager here would empty a deleted namespace).
    tb.kubectl(&[
        "-n",
        &wl,
        "delete",
        "pods",
        "--all",
        "--grace-period=0",
        "--wait=false",
    ]);
}
