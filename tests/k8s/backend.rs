//! The cluster backend against a mocked API server: GPU accounting computed from pods, GFD labels,
//! conditions, taints, cordon; GPU pods of a node; contexts.

use std::sync::Arc;

use serde_json::{Value, json};

use super::mock::{mock_client, status};
use crate::cluster::backend::KubeBackend;
use crate::cluster::clients::Clients;
use crate::cluster::{ClusterBackend, ClusterError};

fn nodes() -> Value {
    json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {"resourceVersion": "10"}, "items": [
        {"metadata": {"name": "gpu-b", "labels": {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
                                                  "nvidia.com/gpu.count": "8", "kubernetes.io/os": "linux"}},
         "spec": {"unschedulable": true, "taints": [
             {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
             {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]},
         "status": {"capacity": {"cpu": "96", "nvidia.com/gpu": "8", "nvidia.com/mig-1g.10gb": "0"},
                    "allocatable": {"nvidia.com/gpu": "7"},
                    "conditions": [{"type": "Ready", "status": "True"},
                                   {"type": "MemoryPressure", "status": "False"},
                                   {"type": "KernelDeadlock", "status": "True", "reason": "DockerHung"}],
                    "nodeInfo": {"architecture": "amd64", "kubeletVersion": "v1.33.2", "bootID": "", "containerRuntimeVersion": "",
                                 "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux",
                                 "osImage": "", "systemUUID": ""}}},
        {"metadata": {"name": "gpu-a", "labels": {}},
         "status": {"capacity": {"nvidia.com/gpu": "4"}, "allocatable": {"nvidia.com/gpu": "4"},
                    "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]}},
        {"metadata": {"name": "cpu-1", "labels": {}},
         "status": {"capacity": {"cpu": "8"}, "conditions": [{"type": "Ready", "status": "True"}]}}
    ]})
}

fn gpu_pod(
    ns: &str,
    name: &str,
    node: &str,
    phase: &str,
    req: Option<u32>,
    limit: Option<u32>,
) -> Value {
    let mut res = json!({});
    if let Some(r) = req {
        res["requests"] = json!({"nvidia.com/gpu": r.to_string(), "cpu": "1"});
    }
    if let Some(l) = limit {
        res["limits"] = json!({"nvidia.com/gpu": l.to_string()});
    }
    json!({"metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}")},
           "spec": {"nodeName": node, "containers": [{"name": "main", "resources": res},
                                                     {"name": "sidecar", "resources": {"requests": {"cpu": "100m"}}}]},
           "status": {"phase": phase}})
}

fn pods() -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "11"}, "items": [
        gpu_pod("ml", "train-0", "gpu-b", "Running", Some(4), Some(4)),
        // limit only: the request defaults to the limit
        gpu_pod("ml", "train-1", "gpu-b", "Pending", None, Some(2)),
        gpu_pod("ml", "eval", "gpu-a", "Running", Some(1), Some(1)),
        gpu_pod("web", "nginx", "gpu-b", "Running", None, None),
    ]})
}

fn backend() -> (KubeBackend, super::mock::Log) {
    let (client, log) = mock_client(|r| match (r.method.as_str(), r.path.as_str()) {
        ("GET", "/api/v1/nodes") if r.query.contains("labelSelector=bad") => (
            400,
            status(400, "BadRequest", "unable to parse requirement"),
        ),
        ("GET", "/api/v1/nodes") => (200, nodes().to_string()),
        ("GET", "/api/v1/nodes/gpu-b") => (200, nodes()["items"][0].to_string()),
        ("GET", "/api/v1/nodes/nope") => (404, status(404, "NotFound", "nodes \"nope\" not found")),
        ("GET", "/api/v1/pods") => {
            // honour the node field selector like the API server would
            let mut list = pods();
            if let Some(node) = r.query.split("spec.nodeName%3D").nth(1) {
                let node = node.split(['%', '&']).next().unwrap().to_string();
                let items: Vec<Value> = list["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["spec"]["nodeName"] == node.as_str())
                    .cloned()
                    .collect();
                list["items"] = Value::Array(items);
            }
            (200, list.to_string())
        }
        _ => (404, status(404, "NotFound", "unexpected")),
    });
    (
        KubeBackend::new(Arc::new(Clients::from_client(client))),
        log,
    )
}

#[tokio::test]
async fn list_gpu_nodes_accounts_gpus_from_pods() {
    let (b, log) = backend();
    let nodes = b.list_gpu_nodes(None, None).await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["gpu-a", "gpu-b"], "CPU node left out, sorted");
    let a = &nodes[0];
    assert_eq!(
        (a.gpu_capacity, a.gpu_allocatable, a.gpu_allocated),
        (4, 4, 1)
    );
    assert!(!a.ready);
    assert_eq!(a.problem_conditions, ["Ready=False (KubeletNotReady)"]);
    let b_ = &nodes[1];
    assert_eq!(
        (b_.gpu_capacity, b_.gpu_allocatable, b_.gpu_allocated),
        (8, 7, 6)
    );
    assert!(b_.ready && b_.unschedulable);
    // node-problem-detector's condition is the platform's mark, not listed a second time.
    assert!(
        b_.problem_conditions.is_empty(),
        "{:?}",
        b_.problem_conditions
    );
    // The GPU allocatable below capacity is NVIDIA's device plugin's withdrawal, a mark of its own.
    let marks: Vec<String> = b_.platform.iter().map(|m| m.line()).collect();
    assert_eq!(
        marks,
        [
            "node-problem-detector: KernelDeadlock=True (DockerHung)",
            "NVIDIA device plugin: 1 of 8 nvidia.com/gpu withdrawn (allocatable 7) (NVML Xid critical-error event)"
        ]
    );
    assert_eq!(
        b_.taints,
        [
            "nvidia.com/gpu=present:NoSchedule",
            "node.kubernetes.io/unschedulable:NoSchedule"
        ]
    );
    assert_eq!(
        b_.gpu_labels.len(),
        3,
        "only nvidia.com/* labels: {:?}",
        b_.gpu_labels
    );
    assert_eq!(b_.mig_resources.get("nvidia.com/mig-1g.10gb"), Some(&0));
    assert_eq!(b_.kubelet_version.as_deref(), Some("v1.33.2"));
    // the pods list excludes terminated pods server-side
    let log = log.lock().unwrap();
    let pods_req = log.iter().find(|r| r.path == "/api/v1/pods").unwrap();
    assert!(
        pods_req.query.contains("status.phase%21%3DSucceeded"),
        "{}",
        pods_req.query
    );
}

#[tokio::test]
async fn bad_selector_is_reported_as_such() {
    let (b, _) = backend();
    let e = b.list_gpu_nodes(None, Some("bad==")).await.unwrap_err();
    assert!(matches!(e, ClusterError::BadSelector(_)), "{e:?}");
}

#[tokio::test]
async fn get_node_and_missing_node() {
    let (b, _) = backend();
    let n = b.get_node(None, "gpu-b").await.unwrap();
    assert_eq!(n.gpu_allocated, 6);
    let e = b.get_node(None, "nope").await.unwrap_err();
    assert!(
        matches!(&e, ClusterError::NodeNotFound(n) if n == "nope"),
        "{e:?}"
    );
}

#[tokio::test]
async fn pods_with_gpus_lists_gpu_containers_only() {
    let (b, _) = backend();
    let pods = b.pods_with_gpus(None, "gpu-b").await.unwrap();
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["train-0", "train-1"], "nginx has no GPU resources");
    assert_eq!(pods[1].phase, "Pending");
    assert_eq!(pods[1].containers.len(), 1, "only the GPU container");
    assert_eq!(pods[1].containers[0].requests["nvidia.com/gpu"], 2);
    assert_eq!(pods[1].containers[0].limits["nvidia.com/gpu"], 2);
    assert!(matches!(
        b.pods_with_gpus(None, "nope").await.unwrap_err(),
        ClusterError::NodeNotFound(_)
    ));
}

#[tokio::test]
async fn node_and_gpu_pods_answers_both_in_two_requests() {
    let (b, log) = backend();
    let (n, pods) = b.node_and_gpu_pods(None, "gpu-b").await.unwrap();
    // One node read, one pod list, one discovery of resource.k8s.io (404 here: no DRA, so no slice list).
    let paths: Vec<String> = log.lock().unwrap().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(
        paths.contains(&"/apis/resource.k8s.io".to_string()),
        "{paths:?}"
    );
    // The same answer as the two separate calls.
    let alone = b.get_node(None, "gpu-b").await.unwrap();
    assert_eq!(n.gpu_allocated, alone.gpu_allocated);
    assert_eq!(n.gpu_capacity, alone.gpu_capacity);
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["train-0", "train-1"]);
    assert_eq!(pods[1].containers[0].requests["nvidia.com/gpu"], 2);
    assert!(matches!(
        b.node_and_gpu_pods(None, "nope").await.unwrap_err(),
        ClusterError::NodeNotFound(_)
    ));
}

#[tokio::test]
async fn unknown_context_lists_the_known_ones() {
    let (b, _) = backend();
    assert!(b.contexts().is_empty());
    let e = b.list_gpu_nodes(Some("prod"), None).await.unwrap_err();
    assert!(matches!(e, ClusterError::UnknownContext { .. }), "{e:?}");
}

#[test]
fn quantities_and_effective_requests() {
    use crate::cluster::gpu_resources::{count, pod_request};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    assert_eq!(count(&Quantity("8".into())), 8);
    assert_eq!(count(&Quantity("2k".into())), 2000);
    assert_eq!(count(&Quantity("garbage".into())), 0);
    // init containers run before the app: the effective request is the larger of the two
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "spec": {"initContainers": [{"name": "warm", "resources": {"limits": {"nvidia.com/gpu": "3"}}}],
                 "containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                                {"name": "b", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}
    }))
    .unwrap();
    assert_eq!(pod_request(&p, "nvidia.com/gpu"), 3);
}

#[tokio::test]
async fn pods_on_node_is_one_list_of_every_pod_there() {
    let (b, log) = backend();
    let pods = b.pods_on_node(None, "gpu-b").await.unwrap();
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["train-0", "train-1", "nginx"],
        "every phase, GPU or not"
    );
    assert_eq!(pods[0].uid, "uid-train-0");
    assert_eq!(pods[1].phase.as_deref(), Some("Pending"));
    assert_eq!(pods[0].containers[0].gpu_requests["nvidia.com/gpu"], 4);
    assert!(pods[2].containers.iter().all(|c| c.gpu_requests.is_empty()));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "one request: {log:?}");
    assert!(
        log[0].query.contains("spec.nodeName%3Dgpu-b"),
        "{}",
        log[0].query
    );
    assert!(!log[0].query.contains("status.phase"), "{}", log[0].query);
}

#[test]
fn api_pod_takes_container_ids_and_the_static_pod_uid() {
    use crate::cluster::backend::api_pod;
    let cid = "3f2a8c1b9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"namespace": "kube-system", "name": "dcgm-gpu-b", "uid": "mirror-uid",
                     "annotations": {"kubernetes.io/config.mirror": "static-uid"}},
        "spec": {"initContainers": [{"name": "init"}],
                 "containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}},
                                {"name": "side"}]},
        "status": {"phase": "Running",
                   "initContainerStatuses": [{"name": "init", "image": "", "imageID": "", "ready": false,
                                              "restartCount": 0, "containerID": "cri-o://ABCDEF"}],
                   "containerStatuses": [{"name": "main", "image": "", "imageID": "", "ready": true,
                                          "restartCount": 0, "containerID": format!("containerd://{cid}")},
                                         {"name": "side", "image": "", "imageID": "", "ready": false,
                                          "restartCount": 0}]}
    }))
    .unwrap();
    let a = api_pod(&p);
    assert_eq!(a.mirror_uid.as_deref(), Some("static-uid"));
    assert_eq!(a.phase.as_deref(), Some("Running"));
    let c: Vec<(&str, Option<&str>)> = a
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.container_id.as_deref()))
        .collect();
    assert_eq!(
        c,
        [
            ("init", Some("abcdef")),
            ("main", Some(cid)),
            ("side", None)
        ]
    );
    assert_eq!(a.containers[1].gpu_requests["nvidia.com/gpu"], 1);
}

#[tokio::test]
async fn a_node_read_in_flight_is_shared_and_the_next_call_reads_afresh() {
    let (client, log) = mock_client(|r| match r.path.as_str() {
        "/api/v1/nodes/gpu-b" => (200, nodes()["items"][0].to_string()),
        _ => (404, status(404, "NotFound", "unexpected")),
    });
    let clients = Clients::from_client(client.clone());
    let gets = || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/api/v1/nodes/gpu-b")
            .count()
    };
    // The probe's readiness check and the tool's platform join, started together.
    let (a, b) = tokio::join!(
        clients.reads.node(None, &client, "gpu-b"),
        clients.reads.node(None, &client, "gpu-b")
    );
    assert_eq!(a.unwrap().unwrap().metadata.name.as_deref(), Some("gpu-b"));
    assert_eq!(b.unwrap().unwrap().metadata.name.as_deref(), Some("gpu-b"));
    assert_eq!(gets(), 1, "two reads at once, one request");
    // Nothing is kept once the read is done: a later call sees the node as it is then.
    clients.reads.node(None, &client, "gpu-b").await.unwrap();
    assert_eq!(gets(), 2);
    // Another context's read of the same node name is its own.
    let (c, d) = tokio::join!(
        clients.reads.node(None, &client, "gpu-b"),
        clients.reads.node(Some("other"), &client, "gpu-b")
    );
    assert!(c.is_ok() && d.is_ok());
    assert_eq!(gets(), 4);
}

#[tokio::test]
async fn dra_discovery_is_asked_once_and_again_after_a_404() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let gone = Arc::new(AtomicBool::new(false));
    let gone2 = gone.clone();
    let (client, log) = mock_client(move |r| {
        match r.path.as_str() {
        "/api/v1/nodes/gpu-b" => (200, nodes()["items"][0].to_string()),
        "/api/v1/pods" => (200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}).to_string()),
        "/apis/resource.k8s.io" => (
            200,
            json!({"kind": "APIGroup", "apiVersion": "v1", "name": "resource.k8s.io",
                   "versions": [{"groupVersion": "resource.k8s.io/v1", "version": "v1"}],
                   "preferredVersion": {"groupVersion": "resource.k8s.io/v1", "version": "v1"}})
            .to_string(),
        ),
        "/apis/resource.k8s.io/v1/resourceslices" if gone2.load(Ordering::SeqCst) => {
            (404, status(404, "NotFound", "the server could not find the requested resource"))
        }
        "/apis/resource.k8s.io/v1/resourceslices" => (
            200,
            json!({"kind": "ResourceSliceList", "apiVersion": "resource.k8s.io/v1", "metadata": {}, "items": []})
                .to_string(),
        ),
        _ => (404, status(404, "NotFound", "unexpected")),
    }
    });
    let b = KubeBackend::new(Arc::new(Clients::from_client(client)));
    let count = |p: &str| log.lock().unwrap().iter().filter(|r| r.path == p).count();
    for _ in 0..3 {
        let (n, _) = b.node_and_gpu_pods(None, "gpu-b").await.unwrap();
        assert_eq!(n.device_taints_unreadable, None);
    }
    assert_eq!(
        count("/apis/resource.k8s.io"),
        1,
        "discovery once for three calls"
    );
    assert_eq!(count("/apis/resource.k8s.io/v1/resourceslices"), 3);
    // The group changed under us (DRA turned off, an upgrade): said, and discovery is asked again.
    gone.store(true, Ordering::SeqCst);
    let (n, _) = b.node_and_gpu_pods(None, "gpu-b").await.unwrap();
    let why = n.device_taints_unreadable.expect("slices unreadable");
    assert!(why.contains("not served any more"), "{why}");
    gone.store(false, Ordering::SeqCst);
    b.node_and_gpu_pods(None, "gpu-b").await.unwrap();
    assert_eq!(count("/apis/resource.k8s.io"), 2);
}
