//! DRA as real nodes show it (issue 54): the testbed's DRA plugin writes its claims' CDI specs to
//! `/var/run/cdi` as NVIDIA's driver does (through the host's `/var/run -> /run` link), names its devices by
//! minors that are not NVML's indices, and takes device taints on its ResourceSlice; the node's kubelet runs
//! with the gates of one before 1.34, so it names no claim and the API server's ResourceClaims must.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::evidence::bind_operator;
use crate::mcp::{self, has_str};
use crate::testbed::User;
use crate::{Ctx, DRA_DRIVER, dra_device, gpu_uuid, node};

/// The gates of a kubelet before 1.34 (both alpha, off): its PodResources List leaves DRA claims out and it
/// serves no Get.
const GATES_OFF: &str =
    "--feature-gates=KubeletPodResourcesDynamicResources=false,KubeletPodResourcesGet=false";

/// The node's kubelet restarted with `flags` for as long as this lives, then restarted as it started, on
/// every path (a failed assertion included), so the next case meets the kubelet it expects.
struct KubeletWith<'a>(&'a Ctx);

impl<'a> KubeletWith<'a> {
    fn start(c: &'a Ctx, flags: &[&str]) -> Self {
        c.node.restart_kubelet(flags);
        wait_node_serves_gpus(c);
        KubeletWith(c)
    }
}

impl Drop for KubeletWith<'_> {
    fn drop(&mut self) {
        self.0.node.restart_kubelet(&[]);
        wait_node_serves_gpus(self.0);
    }
}

/// Ready, with the device plugin's 4 GPUs allocatable again (it registers with the new kubelet by itself).
fn wait_node_serves_gpus(c: &Ctx) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = c.tb.kubectl(&[
            "get",
            "node",
            c.name(),
            "-o",
            r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.allocatable.nvidia\.com/gpu}"#,
        ]);
        if got.trim() == "True/4" {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted kubelet's node is not Ready with 4 GPUs: {got}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The reset preflight's `not_assigned_to_a_pod` check of a `reset_gpu` answer.
fn assigned_check(v: &Value) -> Value {
    v["report"]["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["check"] == "not_assigned_to_a_pod"))
        .cloned()
        .unwrap_or_else(|| panic!("no not_assigned_to_a_pod check: {v:#}"))
}

/// An operator's launcher (image delivery) for the reset preflight's dry runs.
async fn operator(c: &Ctx) -> mcp::Launcher {
    bind_operator(c);
    mcp::start(
        c.tb,
        User::Operator,
        &c.ns,
        &["--mode", "operator", "--probe-image", node::PROBE_IMAGE],
    )
    .await
}

/// The pod `name` in a `get_pod_gpu_allocation` answer.
fn allocated_pod<'v>(v: &'v Value, name: &str) -> &'v Value {
    v["report"]["pods"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in the allocation: {v:#}"))
}

/// A kubelet with the gates of one before 1.34 (it names no DRA claim and serves no PodResources Get) and a
/// pod holding GPUs 0 and 3 through a claim (by minor: devices gpu-1 and gpu-2). The driver's per-claim CDI
/// spec is on the node, written to `/var/run/cdi` as NVIDIA's driver (v25.12+) writes it: for a reader who
/// may not list ResourceClaims, the probe pod reads it through the host's `/var/run -> /run` link and holds
/// both GPUs for an unnamed pod. With the API server's claims the pod is named and the spec is the same
/// claim. Then the spec goes (NVIDIA's driver before v25.12 writes none for a plain GPU claim) and only the
/// API server names the claim. The pod's process on GPU 0 is its own, the reset of idle GPU 3 is refused
/// naming the pod, and once the pod and its claim are gone the reset passes.
pub async fn a_kubelet_that_reports_no_dra_claims_still_holds_claimed_gpus(c: &Ctx) {
    let kubelet = KubeletWith::start(c, &[GATES_OFF]);
    let (busy, idle) = (dra_device(0), dra_device(3));
    let devices: Vec<u32> = [&busy, &idle]
        .iter()
        .map(|d| d.trim_start_matches("gpu-").parse().unwrap())
        .collect();
    let pod = c.dra_workload_pod("dra-silent", &devices, node::BASE_IMAGE);

    // The kubelet lists the pod and says nothing of its claim: the gate is off.
    let list = c.node.pod_resources(None);
    let entry = list["pod_resources"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "dra-silent"))
        .unwrap_or_else(|| panic!("dra-silent not in the kubelet's List: {list:#}"));
    assert!(
        !has_str(entry, DRA_DRIVER) && !entry.to_string().contains("dynamic_resources\":[{"),
        "a kubelet with KubeletPodResourcesDynamicResources off reported the claim: {entry:#}"
    );
    // NVIDIA's per-claim spec, where its chart's CDI_ROOT puts it, on the node's own /run.
    let spec = format!("k8s.gpu.nvidia.com-claim_{}.yaml", pod.claim_uid);
    let on_node = c.node.host_path(&format!("/run/cdi/{spec}"));
    assert!(
        on_node.exists(),
        "the DRA plugin wrote no CDI spec at /var/run/cdi/{spec}"
    );

    let pid = c.node.container_pid(&c.wl, "dra-silent");

    // Claims only the node shows: a reader who may not list ResourceClaims gets no claim from the API
    // server, and the probe pod reads the spec through the host's `/var/run -> /run` link (its own
    // container's /var/run is the image's). The claim's GPUs are held, its pod is not named, nothing is
    // accused, and the claim is not "unnamed".
    bind_reader_without_claims(c);
    let blind = mcp::start(
        c.tb,
        User::Nobody,
        &c.ns,
        &["--probe-image", node::PROBE_IMAGE],
    )
    .await;
    let v = blind
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    let dra = &v["report"]["dra"];
    assert!(
        dra.get("claims_from_api_server").is_none() && dra.get("unnamed").is_none(),
        "node only: {v:#}"
    );
    let unreported = dra["unreported_claims"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let from_spec = unreported
        .iter()
        .find(|u| u["claim_uid"] == pod.claim_uid.as_str())
        .unwrap_or_else(|| panic!("the node's CDI spec was not read: {v:#}"));
    assert!(
        from_spec["file"]
            .as_str()
            .is_some_and(|f| f.ends_with(&spec)),
        "{from_spec:#}"
    );
    let held: Vec<Value> = from_spec["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["gpu_index"].clone())
        .collect();
    assert_eq!(held, vec![json!(0), json!(3)], "{from_spec:#}");
    blind.stop().await;

    let l = c.image_launcher().await;
    let check_named = |v: &Value, stage: &str| {
        let dra = &v["report"]["dra"];
        assert_eq!(dra["claims_from_api_server"], 1, "{stage}: {v:#}");
        assert!(
            dra.get("unnamed").is_none(),
            "{stage}: claims read as unnamed: {v:#}"
        );
        let job = allocated_pod(v, "dra-silent");
        let located: Vec<(Value, Value, Value)> = job["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["devices"].as_array().into_iter().flatten())
            .map(|d| {
                (
                    d["device_id"].clone(),
                    d["gpu_index"].clone(),
                    d["claim"]["from_api_server"].clone(),
                )
            })
            .collect();
        assert_eq!(
            located,
            vec![
                (json!(busy), json!(0), json!(true)),
                (json!(idle), json!(3), json!(true)),
            ],
            "{stage}: {job:#}"
        );
    };
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    check_named(&v, "with the CDI spec");
    // The spec and the API server's claim are one claim: its pod is named, so it is not "unreported".
    assert!(
        v["report"]["dra"].get("unreported_claims").is_none()
            && v["report"]["dra"].get("partial").is_none(),
        "a claim the API server names reads as unreported: {v:#}"
    );

    // The claim's own process on GPU 0 is not accused of bypassing the device plugin.
    c.node.set_fake_nvml("FAKE_NVML_PID", &pid.to_string());
    let procs = l
        .ok("get_gpu_processes", json!({"node_name": c.name()}))
        .await;
    c.node.clear_fake_nvml("FAKE_NVML_PID");
    assert!(
        !has_str(&procs, "did not assign") && !has_str(&procs, "bypass"),
        "the claim's process reads as a bypass: {procs:#}"
    );

    // NVIDIA's driver before v25.12: no per-claim spec. The API server alone names the claim.
    std::fs::remove_file(&on_node).expect("remove the claim's CDI spec");
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    check_named(&v, "without the CDI spec");
    let text = mcp::text(
        &l.call("get_pod_gpu_allocation", json!({"node_name": c.name()}))
            .await,
    );
    assert!(
        text.contains("the API server's 1 ResourceClaim(s)"),
        "{text}"
    );
    l.stop().await;

    let op = operator(c).await;
    let args = json!({"node_name": c.name(), "gpu": "3", "dry_run": true});
    let v = op.ok("reset_gpu", args.clone()).await;
    let check = assigned_check(&v);
    assert_eq!(check["status"], "block", "{v:#}");
    assert!(
        has_str(&check["evidence"], "dra-silent")
            && has_str(&check["evidence"], "API server ResourceClaims: DRA claim"),
        "{check:#}"
    );
    assert_ne!(v["result"], "done", "{v:#}");

    c.delete_dra_workload("dra-silent");
    let v = op.ok("reset_gpu", args).await;
    assert_eq!(assigned_check(&v)["status"], "pass", "{v:#}");
    op.stop().await;
    drop(kubelet);
    c.assert_no_probe_pods();
}

/// deploy/'s reader role without ResourceClaims, bound to [`User::Nobody`] with the probe namespace: a reader
/// of an older role, whose launcher cannot read the API server's claims.
fn bind_reader_without_claims(c: &Ctx) {
    let role =
        c.tb.kubectl(&["get", "clusterrole", "k8s-gpu-mcp-reader", "-o", "json"]);
    let role: Value = serde_json::from_str(&role).expect("the reader role as JSON");
    let rules: Vec<Value> = role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|r| {
            let mut r = r.clone();
            let kept: Vec<Value> = r["resources"]
                .as_array()?
                .iter()
                .filter(|x| *x != "resourceclaims")
                .cloned()
                .collect();
            (!kept.is_empty()).then(|| {
                r["resources"] = Value::Array(kept);
                r
            })
        })
        .collect();
    let name = User::Nobody.name();
    let objects = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "rn-reader-without-claims"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": format!("rn-reader-without-claims-{name}")},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "rn-reader-without-claims"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}]},
    ]});
    c.tb.apply(&objects.to_string());
    c.tb.probe_namespace(&c.ns, User::Nobody);
}

/// Device taints on the real node's ResourceSlice clear when this drops, on every path.
struct Taints<'a>(&'a Ctx);

impl<'a> Taints<'a> {
    fn set(c: &'a Ctx, lines: &str, expect_key: &str) -> Self {
        c.node.set_dra_taints(lines);
        wait_slice_taint(c, expect_key);
        Taints(c)
    }
}

impl Drop for Taints<'_> {
    fn drop(&mut self) {
        self.0.node.set_dra_taints("");
        wait_slice_taint(self.0, "");
    }
}

/// Until the node's ResourceSlice of the DRA driver carries `key` on some device ("": none).
fn wait_slice_taint(c: &Ctx, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let keys = c.tb.kubectl(&[
            "get",
            "resourceslices",
            "--field-selector",
            &format!("spec.nodeName={}", c.name()),
            "-o",
            "jsonpath={.items[*].spec.devices[*].taints[*].key}",
        ]);
        if keys.trim() == key || (!key.is_empty() && keys.split_whitespace().any(|k| k == key)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the DRA plugin's slice has taints [{}], not [{key}]",
            keys.trim()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The DRA driver takes GPU 0 (its device gpu-1) out of service with a taint, as NVIDIA's driver does on an
/// Xid: `list_gpu_nodes` shows the taint with its device and GPU, and `get_gpu_health` makes it one critical
/// incident of that GPU with its source, whatever else the live kernel log holds.
pub async fn a_tainted_dra_device_is_an_incident_of_its_gpu(c: &Ctx) {
    let dev = dra_device(0);
    let _taints = Taints::set(
        c,
        &format!("{dev} gpu.nvidia.com/xid=79:NoSchedule\n"),
        "gpu.nvidia.com/xid",
    );
    let l = c.image_launcher().await;
    let r = l
        .call(
            "list_gpu_nodes",
            json!({"label_selector": "testbed.k8s-gpu-mcp.io/real-node=true"}),
        )
        .await;
    let t = mcp::text(&r);
    assert!(
        t.contains(&format!(
            "gpu.nvidia.com/xid=79:NoSchedule on {DRA_DRIVER}/{}/{dev} ({})",
            c.name(),
            gpu_uuid(0)
        )),
        "{t}"
    );

    let r = l
        .call("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert!(t.contains("ResourceSlice taint"), "{t}");
    let incidents = v["report"]["incidents"]
        .as_array()
        .or_else(|| v["incidents"].as_array())
        .unwrap_or_else(|| panic!("no incidents: {v:#}"));
    let tainted: Vec<&Value> = incidents
        .iter()
        .filter(|i| i.to_string().contains("gpu.nvidia.com/xid=79"))
        .collect();
    assert_eq!(tainted.len(), 1, "one fault, one incident: {v:#}");
    assert_eq!(tainted[0]["severity"], "critical", "{:#}", tainted[0]);
    assert!(
        tainted[0].to_string().contains(&gpu_uuid(0)),
        "the taint's incident is not GPU 0's: {:#}",
        tainted[0]
    );
    l.stop().await;
    c.assert_no_probe_pods();
}

/// A GPU allocated through DRA (the testbed's plugin, driver gpu.nvidia.com) to a real pod: the container
/// starts (the node's containerd 1.6 ignores the CDI id), and the kubelet's PodResources API, read on the
/// node without node-probe, reports the claim with its driver, pool, device and CDI id, and nothing from
/// the device plugin for that pod. After the pod's deletion the kubelet no longer reports it.
pub async fn a_dra_claimed_gpu_runs_and_the_kubelet_reports_it(c: &Ctx) {
    let pod = c.dra_workload_pod("dra-trainer", &[2], node::BASE_IMAGE);
    let expected = json!([{
        "claim_name": pod.claim,
        "claim_namespace": c.wl,
        "claim_resources": [{
            "cdi_devices": [{"name": pod.cdi_device("gpu-2")}],
            "driver_name": DRA_DRIVER,
            "pool_name": c.name(),
            "device_name": "gpu-2",
        }],
    }]);
    let list = c.node.pod_resources(None);
    let entry = list["pod_resources"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|p| p["name"] == "dra-trainer" && p["namespace"] == c.wl.as_str())
        })
        .unwrap_or_else(|| panic!("dra-trainer not in the kubelet's List: {list:#}"));
    assert_eq!(
        entry["containers"],
        json!([{"name": "main", "dynamic_resources": expected}]),
        "List: {entry:#}"
    );
    // Get (the kubelet's per-pod call) says the same.
    let get = c.node.pod_resources(Some((&c.wl, "dra-trainer")));
    assert_eq!(get["pod_resources"], *entry, "Get: {get:#}");

    c.delete_dra_workload("dra-trainer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = c.node.pod_resources(None);
        let listed = list["pod_resources"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "dra-trainer"));
        if !listed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kubelet still lists the deleted dra-trainer: {list:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// GPUs a pod holds through a DRA claim (GPU 0, where the fake NVML puts the pod's process, and GPU 3, idle;
/// devices gpu-1 and gpu-2, since the node's minors are not NVML's indices) read as held through the launcher: the allocation names the claim on both sides, the process on GPU 0 is
/// the pod's by its claim, `diagnose_workload` counts both GPUs from the kubelet, and `reset_gpu` (a dry run)
/// refuses GPU 3, which nothing runs on, because the claim holds it. After the pod is gone the check passes.
pub async fn gpus_claimed_through_dra_are_held_in_every_answer(c: &Ctx) {
    let pod = c.dra_workload_pod("dra-job", &[1, 2], node::BASE_IMAGE);
    let l = c.image_launcher().await;
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    assert_eq!(v["exact"], true, "{v:#}");
    let job = v["assignment"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "dra-job"))
        .unwrap_or_else(|| panic!("dra-job not in {v:#}"));
    assert_eq!(job["seen_by"], "both", "{job:#}");
    assert_eq!(job["uid"], pod.uid.as_str());
    assert!(job.get("note").is_none(), "{job:#}");
    let main = &job["containers"][0];
    assert_eq!(main["claims"], json!([pod.claim]), "{job:#}");
    let located: Vec<(Value, Value, Value)> = main["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["device_id"].clone(),
                d["gpu_index"].clone(),
                d["claim"]["name"].clone(),
            )
        })
        .collect();
    assert_eq!(
        located,
        vec![
            (json!("gpu-1"), json!(0), json!(pod.claim)),
            (json!("gpu-2"), json!(3), json!(pod.claim)),
        ],
        "{job:#}"
    );
    assert_eq!(main["devices"][1]["gpu_uuid"], gpu_uuid(3));
    let text = mcp::text(
        &l.call("get_pod_gpu_allocation", json!({"node_name": c.name()}))
            .await,
    );
    assert!(
        text.contains(&format!("main: claims {}", pod.claim))
            && text.contains(&format!(
                "gpu.nvidia.com gpu-2 -> GPU 3 [{}] (claim {}/{})",
                gpu_uuid(3),
                c.wl,
                pod.claim
            ))
            && text.contains("2 through DRA claims"),
        "{text}"
    );

    let pid = c.node.container_pid(&c.wl, "dra-job");
    c.node.set_fake_nvml("FAKE_NVML_PID", &pid.to_string());
    let v = l
        .ok("get_gpu_processes", json!({"node_name": c.name()}))
        .await;
    c.node.clear_fake_nvml("FAKE_NVML_PID");
    let o = v["owners"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["pid"] == pid))
        .unwrap_or_else(|| panic!("pid {pid} not among {v:#}"));
    assert_eq!(
        (o["pod"].as_str(), o["owner"].as_str()),
        (Some("dra-job"), Some("pod")),
        "{o:#}"
    );
    assert!(
        !has_str(&v, "did not assign"),
        "the claim's process reads as running on a GPU its pod was not given: {v:#}"
    );

    let v = l
        .ok(
            "diagnose_workload",
            json!({"namespace": c.wl, "pod": "dra-job"}),
        )
        .await;
    let d = &v["diagnosis"];
    assert_eq!(d["nodes"][0]["held_source"], "kubelet", "{v:#}");
    assert_eq!(d["gpus_held"], 2, "{v:#}");
    l.stop().await;

    let op = operator(c).await;
    let args = json!({"node_name": c.name(), "gpu": "3", "dry_run": true});
    let v = op.ok("reset_gpu", args.clone()).await;
    let check = assigned_check(&v);
    assert_eq!(check["status"], "block", "{v:#}");
    assert!(
        has_str(
            &check["evidence"],
            &format!(
                "kubelet PodResources (DRA claims): {}/dra-job (container main) holds gpu.nvidia.com device",
                c.wl
            )
        ) && has_str(
            &check["evidence"],
            &format!("through DRA claim {}/{}", c.wl, pod.claim)
        ),
        "{check:#}"
    );
    assert_ne!(v["result"], "done", "{v:#}");
    c.delete_dra_workload("dra-job");
    // The kubelet lists a deleted pod until its containers are gone, and unprepares its claim after that:
    // until the driver removed the claim's CDI spec, the claim still holds GPU 3 (and the reset says so).
    let spec = c.node.host_path(&format!(
        "/run/cdi/k8s.gpu.nvidia.com-claim_{}.yaml",
        pod.claim_uid
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    while has_str(&c.node.pod_resources(None), "dra-job") || spec.exists() {
        assert!(
            Instant::now() < deadline,
            "the kubelet still lists dra-job or its claim is still prepared ({})",
            spec.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let v = op.ok("reset_gpu", args).await;
    assert_eq!(assigned_check(&v)["status"], "pass", "{v:#}");
    op.stop().await;
    c.assert_no_probe_pods();
}
