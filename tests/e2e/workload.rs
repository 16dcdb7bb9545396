//! `diagnose_workload` on the real API server with kwok GPU nodes mapped to scenarios: workloads made of real
//! objects (a Job, a PyTorchJob of an installed CRD, labelled pods) whose pods carry the owner references
//! and labels their controllers set. No controller runs in the testbed, so the tests create the pods as the
//! controllers would; kwok runs the ones bound to its nodes. The scheduler's verdict on a Pending pod is
//! written to its status the way kube-scheduler writes it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp::{self, Launcher};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

struct Setup {
    tb: &'static Testbed,
    /// The probe namespace.
    ns: String,
    /// The workload's namespace.
    wl: String,
    nodes: Vec<String>,
}

/// `scenarios.len()` kwok GPU nodes, a probe namespace and a workload namespace.
fn setup(tag: &str, scenarios: &[&str]) -> Setup {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-{tag}"));
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let wl = unique(&format!("wl-{tag}"));
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {wl}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    let fake: Vec<FakeNode> = scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| FakeNode::gpu(&unique(&format!("{tag}-{i}")), s))
        .collect();
    let nodes = fake.iter().map(|n| n.name.clone()).collect();
    tb.add_nodes(&fake);
    Setup { tb, ns, wl, nodes }
}

impl Setup {
    async fn launcher(&self) -> Launcher {
        mcp::start(self.tb, User::Reader, &self.ns, &[]).await
    }

    fn uid(&self, kind: &str, name: &str) -> String {
        self.tb
            .kubectl(&[
                "-n",
                &self.wl,
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .trim()
            .to_string()
    }

    /// A pod as a controller makes it: owned by `owner` (`apiVersion kind name uid`), labelled, on `node`
    /// (Pending and unscheduled when `None`), holding `gpus`.
    fn pod(
        &self,
        name: &str,
        owner: (&str, &str, &str, &str),
        labels: &[(&str, String)],
        node: Option<&str>,
        gpus: u32,
    ) {
        let (api, kind, oname, uid) = owner;
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\""))
            .collect();
        let node = node
            .map(|n| format!("  nodeName: {n}\n"))
            .unwrap_or_default();
        self.tb.apply(&format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {wl}
  labels: {{{labels}}}
  ownerReferences:
  - {{apiVersion: {api}, kind: {kind}, name: {oname}, uid: {uid}, controller: true}}
spec:
{node}  containers:
  - name: train
    image: registry.invalid/train:1
    resources:
      limits: {{nvidia.com/gpu: "{gpus}"}}
"#,
            wl = self.wl,
            labels = labels.join(", ")
        ));
    }

    /// A batch Job with one pod per node (indexed, 8 GPUs each), as the Job controller would create them.
    fn job(&self, name: &str) {
        self.tb.apply(&format!(
            r#"apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: {wl}}}
spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {n}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: train
        image: registry.invalid/train:1
"#,
            wl = self.wl,
            n = self.nodes.len()
        ));
        let uid = self.uid("job", name);
        for (i, node) in self.nodes.iter().enumerate() {
            self.pod(
                &format!("{name}-{i}"),
                ("batch/v1", "Job", name, &uid),
                &[
                    ("batch.kubernetes.io/job-name", name.to_string()),
                    ("batch.kubernetes.io/job-completion-index", i.to_string()),
                ],
                Some(node),
                8,
            );
        }
    }

    fn assert_no_pods(&self) {
        if let Err(left) = self.tb.wait_no_pods(&self.ns, Duration::from_secs(120)) {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }
}

fn suspects(v: &Value) -> &Vec<Value> {
    v["diagnosis"]["suspects"].as_array().expect("suspects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_node_job_with_a_gpu_off_the_bus_names_it_first() {
    if skipped() {
        return;
    }
    let mut scenarios = vec!["dgx-h100-healthy"; 16];
    scenarios[9] = "dgx-h100-xid79";
    let s = setup("wl16", &scenarios);
    s.job("train");
    let l = s.launcher().await;
    let r = l
        .call(
            "diagnose_workload",
            json!({"namespace": s.wl, "job": "train"}),
        )
        .await;
    let text = mcp::text(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    let v = r.structured_content.clone().expect("structured");
    assert_eq!(v["nodes_probed"], 16, "{text}");
    assert_eq!(v["nodes_failed"], 0, "{text}");
    assert_eq!(v["diagnosis"]["pods"], 16, "{text}");
    assert_eq!(v["diagnosis"]["gpus_held"], 128, "{text}");
    let first = &suspects(&v)[0];
    assert_eq!(first["kind"], "hardware", "{text}");
    assert_eq!(first["node"], s.nodes[9].as_str(), "{text}");
    assert_eq!(first["gpu"], 4, "{text}");
    assert!(
        first["gpu_uuid"]
            .as_str()
            .is_some_and(|u| u.starts_with("GPU-")),
        "{first}"
    );
    assert_eq!(first["pods"], json!(["train-9"]), "{first}");
    assert_eq!(first["ranks"], json!(["index 9"]), "{first}");
    assert!(text.contains(&format!("{} GPU 4", s.nodes[9])), "{text}");
    assert!(text.len() <= 12 * 1024, "{} bytes:\n{text}", text.len());
    assert!(
        v.to_string().len() <= 48 * 1024,
        "{} bytes",
        v.to_string().len()
    );
    l.stop().await;
    s.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pytorchjob_with_a_straggler_and_a_pending_pod() {
    if skipped() {
        return;
    }
    let s = setup(
        "wlpt",
        &[
            "dgx-h100-healthy",
            "dgx-h100-healthy",
            "dgx-h100-straggler-brake",
            "dgx-h100-healthy",
        ],
    );
    s.tb.apply(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: pytorchjobs.kubeflow.org}
spec:
  group: kubeflow.org
  names: {kind: PyTorchJob, plural: pytorchjobs, singular: pytorchjob, listKind: PyTorchJobList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#,
    );
    s.tb.kubectl(&[
        "wait",
        "--for=condition=established",
        "--timeout=180s",
        "crd/pytorchjobs.kubeflow.org",
    ]);
    s.tb.apply(&format!(
        "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {{name: llm, namespace: {}}}\nspec: {{}}\n",
        s.wl
    ));
    let uid = s.uid("pytorchjob", "llm");
    let owner = ("kubeflow.org/v1", "PyTorchJob", "llm", uid.as_str());
    let labels = |t: &str, i: usize| {
        vec![
            ("training.kubeflow.org/job-name", "llm".to_string()),
            ("training.kubeflow.org/replica-type", t.to_string()),
            ("training.kubeflow.org/replica-index", i.to_string()),
        ]
    };
    for (i, node) in s.nodes.iter().enumerate() {
        let (t, idx) = if i == 0 {
            ("master", 0)
        } else {
            ("worker", i - 1)
        };
        s.pod(
            &format!("llm-{t}-{idx}"),
            owner,
            &labels(t, idx),
            Some(node),
            8,
        );
    }
    // A fifth rank the scheduler could not place.
    s.pod("llm-worker-3", owner, &labels("worker", 3), None, 8);
    s.tb.kubectl(&[
        "-n",
        &s.wl,
        "patch",
        "pod",
        "llm-worker-3",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/20 nodes are available: 20 Insufficient nvidia.com/gpu."}]}}"#,
    ]);
    let l = s.launcher().await;
    let r = l
        .call(
            "diagnose_workload",
            json!({"namespace": s.wl, "pytorchjob": "llm"}),
        )
        .await;
    let text = mcp::text(&r);
    assert_eq!(r.is_error, Some(false), "{text}");
    let v = r.structured_content.clone().expect("structured");
    assert_eq!(v["diagnosis"]["pods"], 5, "{text}");
    assert_eq!(v["diagnosis"]["pods_by_phase"]["Pending"], 1, "{text}");
    let all = suspects(&v);
    let pending = &all[0];
    assert_eq!(pending["code"], "pod.pending", "{text}");
    assert!(
        pending["summary"]
            .as_str()
            .unwrap()
            .contains("Insufficient nvidia.com/gpu"),
        "{text}"
    );
    assert_eq!(pending["ranks"], json!(["worker 3"]), "{text}");
    let straggler = all
        .iter()
        .find(|x| x["kind"] == "straggler")
        .unwrap_or_else(|| panic!("no straggler:\n{text}"));
    assert_eq!(straggler["node"], s.nodes[2].as_str(), "{text}");
    assert_eq!(straggler["gpu"], 5, "{text}");
    assert_eq!(straggler["ranks"], json!(["worker 1"]), "{text}");
    let ev = straggler["evidence"].to_string();
    assert!(ev.contains("peers") && ev.contains("SM clock"), "{ev}");
    assert!(text.contains("straggler"), "{text}");
    l.stop().await;
    s.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_and_flapping_fabric_jobs_by_selector_and_missing_kinds() {
    if skipped() {
        return;
    }
    let s = setup(
        "wlsel",
        &[
            "dgx-h100-healthy",
            "dgx-h100-healthy",
            "dgx-h100-healthy",
            "dgx-h100-ib-flapping",
        ],
    );
    // Two selector-named workloads: ranks on the three healthy nodes, and the same plus the flapping one.
    s.tb.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: owner, namespace: {}}}\n",
        s.wl
    ));
    let uid = s.uid("configmap", "owner");
    let owner = ("v1", "ConfigMap", "owner", uid.as_str());
    for (i, node) in s.nodes.iter().enumerate() {
        let run = if i < 3 { "a" } else { "b" };
        s.pod(
            &format!("rank-{i}"),
            owner,
            &[("run", run.to_string())],
            Some(node),
            8,
        );
    }
    let l = s.launcher().await;
    let v = l
        .ok(
            "diagnose_workload",
            json!({"namespace": s.wl, "label_selector": "run=a"}),
        )
        .await;
    assert_eq!(v["diagnosis"]["cause_found"], false, "{v}");
    let verdict = v["diagnosis"]["verdict"].as_str().unwrap();
    // kwok serves no pod logs here (no Logs resource): the ranks' own output was not examined, and the
    // verdict says so instead of a clean bill of health.
    assert!(
        verdict.contains("diagnosis incomplete") && verdict.contains("3 of 3 pod log(s) not read"),
        "{verdict}"
    );
    assert!(!verdict.contains("look at the"), "{verdict}");
    assert!(
        v["diagnosis"]["not_examined"][0]
            .as_str()
            .is_some_and(|g| g.contains("pod log(s) not read")),
        "{v}"
    );

    let r = l
        .call(
            "diagnose_workload",
            json!({"namespace": s.wl, "label_selector": "run in (a,b)"}),
        )
        .await;
    let text = mcp::text(&r);
    let v = r.structured_content.clone().expect("structured");
    let first = &suspects(&v)[0];
    assert_eq!(first["kind"], "fabric", "{text}");
    assert_eq!(first["node"], s.nodes[3].as_str(), "{text}");
    assert!(
        first["code"].as_str().unwrap().starts_with("nic."),
        "{text}"
    );
    assert!(
        suspects(&v).iter().all(|x| x["kind"] != "hardware"),
        "{text}"
    );

    // A kind the cluster does not serve, a workload that does not exist, two names at once.
    let err = l
        .err(
            "diagnose_workload",
            json!({"namespace": s.wl, "rayjob": "tune"}),
        )
        .await;
    assert!(err.contains("RayJob") && err.contains("KubeRay"), "{err}");
    let err = l
        .err(
            "diagnose_workload",
            json!({"namespace": s.wl, "job": "absent"}),
        )
        .await;
    assert!(err.contains("absent") && err.contains("hint:"), "{err}");
    let err = l
        .err(
            "diagnose_workload",
            json!({"namespace": s.wl, "job": "a", "pod": "b"}),
        )
        .await;
    assert!(err.contains("exactly one"), "{err}");
    l.stop().await;
    s.assert_no_pods();
}
