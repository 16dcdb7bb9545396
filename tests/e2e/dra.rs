//! DRA through the real API server (1.35, DRADeviceTaints on as a cluster that uses device taints has it):
//! the DRA driver's word on its devices (ResourceSlice taints in NVIDIA's driver's shape, v0.4.0:
//! `gpu.nvidia.com/xid=<code>:NoSchedule`, `gpu.nvidia.com/gpu-lost:NoSchedule`, the GPU's `uuid` attribute)
//! joined into the probe's incidents or standing as their own, and the ResourceClaims allocated on a node
//! read by the launcher and given to the probe, which names the holders a kubelet without DRA reporting
//! leaves out.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

const SINCE: &str = "2026-11-24T08:30:00Z";

fn uuids(scenario: &str) -> Vec<String> {
    let f =
        gpu_diag::scenarios::parse(&gpu_diag::scenarios::find(scenario).unwrap().json()).unwrap();
    f.gpus
        .iter()
        .map(|g| g.uuid.ok().unwrap().clone())
        .collect()
}

/// NVIDIA's GPU driver's slice for `node`: one device per GPU (`gpu-<minor>`, minor = 7 - index here, so
/// names are not indices), each with its UUID; `taints` by device index.
fn slice(node: &str, uuids: &[String], taints: &[(usize, Value)]) -> String {
    let devices: Vec<Value> = uuids
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut d = json!({"name": format!("gpu-{}", 7 - i),
                               "attributes": {"uuid": {"string": u}, "type": {"string": "gpu"}}});
            let t: Vec<&Value> = taints
                .iter()
                .filter(|(j, _)| *j == i)
                .map(|(_, t)| t)
                .collect();
            if !t.is_empty() {
                d["taints"] = json!(t);
            }
            d
        })
        .collect();
    json!({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
           "metadata": {"name": format!("{node}-gpu.nvidia.com")},
           "spec": {"driver": "gpu.nvidia.com", "nodeName": node,
                    "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                    "devices": devices}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_taints_are_incidents_and_api_claims_name_their_pods() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-dra");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("dra");
    // xid: the probe finds Xid 79 on GPU 4 and the driver tainted that GPU's device (one incident);
    // lost: the probe finds nothing, the driver says GPU 2 is lost (its own incident, with source and time).
    let [xid, lost] = ["xid", "lost"].map(|n| unique(&format!("dra-{n}")));
    tb.add_nodes(&[
        FakeNode::gpu(&xid, "dgx-h100-xid79").label("e2e-group", &group),
        FakeNode::gpu(&lost, "dgx-h100-healthy").label("e2e-group", &group),
    ]);
    let xid_gpus = uuids("dgx-h100-xid79");
    let lost_gpus = uuids("dgx-h100-healthy");
    tb.apply(&slice(
        &xid,
        &xid_gpus,
        &[(4, json!({"key": "gpu.nvidia.com/xid", "value": "79", "effect": "NoSchedule", "timeAdded": SINCE}))],
    ));
    tb.apply(&slice(
        &lost,
        &lost_gpus,
        &[
            (2, json!({"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule", "timeAdded": SINCE})),
            // Xid 13 is in the driver's ignore list: effect None, informational.
            (5, json!({"key": "gpu.nvidia.com/xid", "value": "13", "effect": "None", "timeAdded": SINCE})),
        ],
    ));
    // The API server kept the taints (the gate is on).
    let kept = tb.kubectl(&[
        "get",
        "resourceslice",
        &format!("{lost}-gpu.nvidia.com"),
        "-o",
        "jsonpath={.spec.devices[2].taints[0].key}",
    ]);
    assert_eq!(kept.trim(), "gpu.nvidia.com/gpu-lost");

    // A claim allocated on `lost`, reserved for a pod: gpu-4 is NVML GPU 3 there.
    let claim_ns = unique("e2e-dra-ml");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {claim_ns}}}\n---\napiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {{name: train-0-gpu, namespace: {claim_ns}}}\nspec:\n  devices:\n    requests: [{{name: gpu, exactly: {{deviceClassName: gpu.nvidia.com}}}}]\n"
    ));
    let status = json!({"status": {
        "allocation": {
            "devices": {"results": [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": lost, "device": "gpu-4"}]},
            "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": [lost]}]}]}},
        "reservedFor": [{"resource": "pods", "name": "train-0", "uid": "0d3c4b1e-1111-4222-8333-444455556666"}]}});
    tb.kubectl(&[
        "-n",
        &claim_ns,
        "patch",
        "resourceclaim",
        "train-0-gpu",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);

    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    // list_gpu_nodes: each node's enforced taint in a line with the driver, the device, its GPU and time.
    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let t = mcp::text(&r);
    assert!(
        t.contains(&format!(
            "gpu.nvidia.com/xid=79:NoSchedule on gpu.nvidia.com/{xid}/gpu-3 ({})",
            xid_gpus[4]
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "gpu.nvidia.com/gpu-lost:NoSchedule on gpu.nvidia.com/{lost}/gpu-5"
        )),
        "{t}"
    );
    assert!(t.contains(&format!("since {SINCE}")), "{t}");

    // get_gpu_health on `lost`: the probe sees nothing wrong, the driver's lost GPU is a critical incident
    // of GPU 2 with its source; the informational Xid 13 taint is not an incident.
    let r = l.call("get_gpu_health", json!({"node_name": lost})).await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert!(t.contains("ResourceSlice taint"), "{t}");
    let incidents = v["report"]["incidents"]
        .as_array()
        .or_else(|| v["incidents"].as_array())
        .unwrap_or_else(|| panic!("{v:#}"));
    let lost_inc: Vec<&Value> = incidents
        .iter()
        .filter(|i| i.to_string().contains("gpu-lost"))
        .collect();
    assert_eq!(lost_inc.len(), 1, "{v:#}");
    assert_eq!(lost_inc[0]["severity"], "critical", "{v:#}");
    assert!(
        !incidents.iter().any(|i| i.to_string().contains("xid=13")),
        "an informational taint is no incident: {v:#}"
    );

    // The next calls read `lost`'s slices from the watch its first call started (issue 64): the driver's
    // change reaches them, both ways, with no list of its own. The reader's role (deploy/rbac.yaml) may
    // watch them: no watch was refused or ended.
    let log = l.stderr();
    assert!(
        !log.contains("ResourceSlice watch refused") && !log.contains("ResourceSlice watch ended"),
        "{log}"
    );
    let lost_taint = |v: &Value| {
        v["report"]["incidents"]
            .as_array()
            .or_else(|| v["incidents"].as_array())
            .into_iter()
            .flatten()
            .any(|i| i.to_string().contains("gpu-lost"))
    };
    for (taints, want) in [
        (
            vec![(
                5,
                json!({"key": "gpu.nvidia.com/xid", "value": "13", "effect": "None", "timeAdded": SINCE}),
            )],
            false,
        ),
        (
            vec![(
                2,
                json!({"key": "gpu.nvidia.com/gpu-lost", "effect": "NoSchedule", "timeAdded": SINCE}),
            )],
            true,
        ),
    ] {
        tb.apply(&slice(&lost, &lost_gpus, &taints));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = l.call("get_gpu_health", json!({"node_name": lost})).await;
            let v = r.structured_content.clone().unwrap();
            if lost_taint(&v) == want {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the slice's change (gpu-lost taint {}) did not reach get_gpu_health in 10 s: {v:#}",
                if want { "added" } else { "lifted" }
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    // scan_gpu_nodes: on `xid` the taint is a signal of the probe's Xid 79 incident, not a second one.
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let v = r.structured_content.clone().unwrap();
    let sick = v["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == xid.as_str() || n["name"] == xid.as_str())
        .unwrap_or_else(|| panic!("{v:#}"));
    let with_taint: Vec<&Value> = sick["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f.to_string().contains("gpu.nvidia.com/xid=79"))
        .collect();
    assert_eq!(with_taint.len(), 1, "one fault, one incident: {sick:#}");
    assert_eq!(with_taint[0]["code"], "gpu.off_bus", "{sick:#}");

    // get_pod_gpu_allocation on `lost`: the simulated kubelet says nothing of DRA; the API server's claim
    // names the pod and its device (gpu-4) goes to the probe.
    let r = l
        .call("get_pod_gpu_allocation", json!({"node_name": lost}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["report"]["dra"]["claims_from_api_server"], 1, "{v:#}");
    let pod = &v["report"]["pods"][0];
    assert_eq!(
        (pod["namespace"].as_str(), pod["name"].as_str()),
        (Some(claim_ns.as_str()), Some("train-0")),
        "{v:#}"
    );
    let dev = &pod["containers"][0]["devices"][0];
    assert_eq!(dev["device_id"], "gpu-4", "{v:#}");
    assert_eq!(dev["claim"]["from_api_server"], true, "{v:#}");
    assert!(t.contains("the API server's 1 ResourceClaim(s)"), "{t}");
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// The request of a ResourceClaim as `version` spells it: v1 and v1beta2 put the class under `exactly`,
/// v1beta1 on the request itself.
fn claim_request(version: &str) -> &'static str {
    if version == "v1beta1" {
        "{name: gpu, deviceClassName: gpu.nvidia.com}"
    } else {
        "{name: gpu, exactly: {deviceClassName: gpu.nvidia.com}}"
    }
}

/// DRA as each version serves it (issue 90), on the testbed's kube-apiserver whatever its version and
/// TESTBED_DRA: where resource.k8s.io is served (v1 from 1.34; v1beta2 or v1beta1 where 1.32 or 1.33 turned
/// it on), a node whose GPUs exist only as NVIDIA's ResourceSlices (the GPU Operator's DRA-only mode: no
/// `nvidia.com/gpu` capacity, no GFD labels) is a GPU node and its pod's claim, written in that version's
/// shape, is attributed; where it is not served, the allocation answer says "not served", never "not
/// readable", and no taint is "unknown".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_read_through_the_version_the_server_serves() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let served = tb.var("TESTBED_DRA_VERSION").to_string();
    let ns = unique("e2e-dra-ver");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("dra-ver");
    let node = unique("dra-only");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy").label("e2e-group", &group)]);
    // As the GPU Operator's DRA-only mode leaves it: no device plugin capacity, no GFD labels.
    tb.kubectl(&[
        "label",
        "node",
        &node,
        "nvidia.com/gpu.present-",
        "nvidia.com/gpu.count-",
        "nvidia.com/gpu.product-",
    ]);
    tb.kubectl(&[
        "patch",
        "node",
        &node,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"capacity":{"nvidia.com/gpu":null},"allocatable":{"nvidia.com/gpu":null}}}"#,
    ]);
    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    if served == "none" {
        let r = l
            .call("list_gpu_nodes", json!({"label_selector": selector}))
            .await;
        let t = mcp::text(&r);
        assert!(
            !t.contains("not readable") && !t.contains("taints unknown"),
            "no DRA API is no unknown: {t}"
        );
        let r = l
            .call("get_pod_gpu_allocation", json!({"node_name": node}))
            .await;
        let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
        let why = v["claims_why"].as_str().unwrap_or_else(|| panic!("{v:#}"));
        assert!(
            why.starts_with("not served: ") && why.contains("resource.k8s.io"),
            "{why}"
        );
        assert!(t.contains("DRA claims: not served: "), "{t}");
    } else {
        let gpus = uuids("dgx-h100-healthy");
        let slice = slice(&node, &gpus, &[]).replace(
            "resource.k8s.io/v1\"",
            &format!("resource.k8s.io/{served}\""),
        );
        // v1beta1 nests a device's attributes under `basic`.
        let slice = if served == "v1beta1" {
            let mut v: Value = serde_json::from_str(&slice).unwrap();
            for d in v["spec"]["devices"].as_array_mut().unwrap() {
                let attrs = d["attributes"].take();
                d.as_object_mut().unwrap().remove("attributes");
                d["basic"] = json!({"attributes": attrs});
            }
            v.to_string()
        } else {
            slice
        };
        tb.apply(&slice);
        let claim_ns = unique("e2e-dra-ver-ml");
        tb.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {claim_ns}}}\n---\napiVersion: resource.k8s.io/{served}\nkind: ResourceClaim\nmetadata: {{name: train-0-gpu, namespace: {claim_ns}}}\nspec:\n  devices:\n    requests: [{}]\n",
            claim_request(&served)
        ));
        let status = json!({"status": {
            "allocation": {
                "devices": {"results": [{"request": "gpu", "driver": "gpu.nvidia.com", "pool": node, "device": "gpu-4"}]},
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]}},
            "reservedFor": [{"resource": "pods", "name": "train-0", "uid": "0d3c4b1e-1111-4222-8333-444455556666"}]}});
        tb.kubectl(&[
            "-n",
            &claim_ns,
            "patch",
            &format!("resourceclaims.{served}.resource.k8s.io"),
            "train-0-gpu",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
        // The DRA-only node is a GPU node, by its slices.
        let r = l
            .call("list_gpu_nodes", json!({"label_selector": selector}))
            .await;
        let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
        assert_eq!(
            v["count"], 1,
            "{served}: the DRA-only node is a GPU node: {t}"
        );
        assert!(
            t.contains("DRA devices 8 by gpu.nvidia.com"),
            "{served}: {t}"
        );
        // Its pod's claim, read through the served version, is attributed.
        let r = l
            .call("get_pod_gpu_allocation", json!({"node_name": node}))
            .await;
        let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
        assert_eq!(
            v["report"]["dra"]["claims_from_api_server"], 1,
            "{served}: {v:#}"
        );
        let pod = &v["report"]["pods"][0];
        assert_eq!(
            (pod["namespace"].as_str(), pod["name"].as_str()),
            (Some(claim_ns.as_str()), Some("train-0")),
            "{served}: {v:#}"
        );
        assert_eq!(
            pod["containers"][0]["devices"][0]["device_id"], "gpu-4",
            "{v:#}"
        );
        assert!(v.get("claims_why").is_none(), "{served}: {v:#}");
        assert!(t.contains("the API server's 1 ResourceClaim(s)"), "{t}");
    }
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}
