//! `diagnose_workload` on the real API server with kwok GPU nodes mapped to scenarios: workloads made of real
//! objects (a Job, a PyTorchJob of an installed CRD, labelled pods) whose pods carry the owner references
//! and labels their controllers set. No controller runs in the testbed, so the tests create the pods as the
//! controllers would; kwok runs the ones bound to its nodes. The scheduler's verdict on a Pending pod is
//! written to its status the way kube-scheduler writes it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp::{self, Launcher, has_str};
use crate::testbed::{FakeNode, LogLine, PodLog, Testbed, User, skipped, unique};

pub(crate) struct Setup {
    pub(crate) tb: &'static Testbed,
    /// The probe namespace.
    pub(crate) ns: String,
    /// The workload's namespace.
    pub(crate) wl: String,
    pub(crate) nodes: Vec<String>,
}

/// `scenarios.len()` kwok GPU nodes, a probe namespace and a workload namespace.
pub(crate) fn setup(tag: &str, scenarios: &[&str]) -> Setup {
    let nodes: Vec<(&str, u32)> = scenarios.iter().map(|s| (*s, 8)).collect();
    setup_with(tag, &nodes)
}

/// [`setup`] with each node's GPU count (a node's `nvidia.com/gpu` capacity matches its scenario's GPUs).
fn setup_with(tag: &str, scenarios: &[(&str, u32)]) -> Setup {
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
        .map(|(i, (s, gpus))| FakeNode {
            gpus: *gpus,
            ..FakeNode::gpu(&unique(&format!("{tag}-{i}")), s)
        })
        .collect();
    let nodes = fake.iter().map(|n| n.name.clone()).collect();
    tb.add_nodes(&fake);
    Setup { tb, ns, wl, nodes }
}

impl Setup {
    pub(crate) async fn launcher(&self) -> Launcher {
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
        self.tb
            .apply(&self.pod_yaml(name, owner, labels, node, gpus));
    }

    fn pod_yaml(
        &self,
        name: &str,
        owner: (&str, &str, &str, &str),
        labels: &[(&str, String)],
        node: Option<&str>,
        gpus: u32,
    ) -> String {
        let (api, kind, oname, uid) = owner;
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}: \"{v}\""))
            .collect();
        let node = node
            .map(|n| format!("  nodeName: {n}\n"))
            .unwrap_or_default();
        format!(
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
---
"#,
            wl = self.wl,
            labels = labels.join(", ")
        )
    }

    /// A batch Job with one pod per node (indexed, 8 GPUs each), as the Job controller would create them.
    pub(crate) fn job(&self, name: &str) {
        let placement: Vec<(&str, u32)> = self.nodes.iter().map(|n| (n.as_str(), 8)).collect();
        self.job_placed(name, &placement);
    }

    /// A batch Job whose pod `i` (completion index `i`) runs on `placement[i].0` holding `placement[i].1` GPUs.
    fn job_placed(&self, name: &str, placement: &[(&str, u32)]) {
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
            n = placement.len()
        ));
        let uid = self.uid("job", name);
        // One apply for all the pods: a Job of dozens of pods in one API round of kubectl.
        let mut yaml = String::new();
        for (i, (node, gpus)) in placement.iter().enumerate() {
            yaml += &self.pod_yaml(
                &format!("{name}-{i}"),
                ("batch/v1", "Job", name, &uid),
                &[
                    ("batch.kubernetes.io/job-name", name.to_string()),
                    ("batch.kubernetes.io/job-completion-index", i.to_string()),
                ],
                Some(node),
                *gpus,
            );
        }
        self.tb.apply(&yaml);
    }

    /// A PyTorchJob object (its CRD installed as the Kubeflow Training Operator installs it; no operator runs).
    fn pytorchjob_object(&self, name: &str) {
        self.tb.apply(
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
        self.tb.kubectl(&[
            "wait",
            "--for=condition=established",
            "--timeout=180s",
            "crd/pytorchjobs.kubeflow.org",
        ]);
        self.tb.apply(&format!(
            "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata: {{name: {name}, namespace: {}}}\nspec: {{}}\n",
            self.wl
        ));
    }

    /// PyTorchJob `job`'s pod for global rank `k`, as the Training Operator names it: rank 0 is
    /// `JOB-master-0`, rank `k` is `JOB-worker-{k-1}`.
    fn pytorchjob_pod_name(job: &str, k: usize) -> String {
        match k {
            0 => format!("{job}-master-0"),
            _ => format!("{job}-worker-{}", k - 1),
        }
    }

    /// That pod as the Training Operator makes it: owned by the PyTorchJob (`uid`), labelled with its
    /// replica type and index, on `node` (Pending and unscheduled when `None`), holding `gpus`.
    fn pytorchjob_pod_yaml(
        &self,
        job: &str,
        uid: &str,
        k: usize,
        node: Option<&str>,
        gpus: u32,
    ) -> String {
        let (t, idx) = if k == 0 {
            ("master", 0)
        } else {
            ("worker", k - 1)
        };
        self.pod_yaml(
            &Self::pytorchjob_pod_name(job, k),
            ("kubeflow.org/v1", "PyTorchJob", job, uid),
            &[
                ("training.kubeflow.org/job-name", job.to_string()),
                ("training.kubeflow.org/replica-type", t.to_string()),
                ("training.kubeflow.org/replica-index", idx.to_string()),
            ],
            node,
            gpus,
        )
    }

    /// A PyTorchJob of `placement.len()` ranks as the Training Operator makes its pods: rank `k` on
    /// `placement[k].0` holding `placement[k].1` GPUs. Its pods keep running (kwok completes only a batch
    /// Job's pods), as a hung job's do. Returns the pod names by rank.
    fn pytorchjob_placed(&self, name: &str, placement: &[(&str, u32)]) -> Vec<String> {
        self.pytorchjob_object(name);
        let uid = self.uid("pytorchjob", name);
        let yaml: String = placement
            .iter()
            .enumerate()
            .map(|(k, (node, gpus))| self.pytorchjob_pod_yaml(name, &uid, k, Some(node), *gpus))
            .collect();
        self.tb.apply(&yaml);
        (0..placement.len())
            .map(|k| Self::pytorchjob_pod_name(name, k))
            .collect()
    }

    /// `ranks` one-GPU ranks, eight to a node in the nodes' order.
    fn one_gpu_ranks(&self, ranks: usize) -> Vec<(&str, u32)> {
        (0..ranks)
            .map(|i| (self.nodes[i / 8].as_str(), 1))
            .collect()
    }

    /// [`Self::pytorchjob_placed`], once kwok runs every pod, with their IPs.
    fn pytorchjob_running(&self, name: &str, placement: &[(&str, u32)]) -> RunningJob {
        let pods = self.pytorchjob_placed(name, placement);
        self.wait_running();
        RunningJob {
            pods,
            ips: self.pod_ips(),
        }
    }

    /// Merge `patch` (`{"status": ...}`) into pod `pod`'s status, as the kubelet or the scheduler writes it.
    fn patch_status(&self, pod: &str, patch: &str) {
        self.tb.kubectl(&[
            "-n",
            &self.wl,
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            patch,
        ]);
    }

    /// Wait until kwok runs every pod of the workload (a pod's log is read once its container has started).
    fn wait_running(&self) {
        self.tb.kubectl(&[
            "-n",
            &self.wl,
            "wait",
            "--for=condition=Ready",
            "pod",
            "--all",
            "--timeout=300s",
        ]);
    }

    /// Each pod's IP, as kwok gave it (NCCL names a peer by its address).
    fn pod_ips(&self) -> BTreeMap<String, String> {
        self.tb
            .kubectl(&[
                "-n",
                &self.wl,
                "get",
                "pods",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{\"\\n\"}{end}",
            ])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(p, ip)| (p.to_string(), ip.to_string()))
            .collect()
    }

    /// `diagnose_workload` of the workload named `name` by `selector` (`job`, `pytorchjob`,
    /// `label_selector`, ...); the answer must not be an error.
    async fn diagnose(&self, l: &Launcher, selector: &str, name: &str) -> Answer {
        let mut args = json!({"namespace": self.wl});
        args[selector] = json!(name);
        let t = Instant::now();
        let r = l.call("diagnose_workload", args).await;
        let wall = t.elapsed();
        let text = mcp::text(&r);
        assert_eq!(r.is_error, Some(false), "{text}");
        let v = r.structured_content.clone().expect("structured");
        Answer { text, v, wall }
    }

    /// The end of a case: the launcher stops, and no probe pod is left behind.
    pub(crate) async fn finish(&self, l: Launcher) {
        l.stop().await;
        self.assert_no_pods();
    }

    fn assert_no_pods(&self) {
        if let Err(left) = self.tb.wait_no_pods(&self.ns, Duration::from_secs(120)) {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }
}

/// A PyTorchJob whose pods kwok runs.
struct RunningJob {
    /// By rank.
    pods: Vec<String>,
    /// Each pod's IP.
    ips: BTreeMap<String, String>,
}

/// One `diagnose_workload` answer.
struct Answer {
    text: String,
    /// The structured content.
    v: Value,
    wall: Duration,
}

impl Answer {
    fn diagnosis(&self) -> &Value {
        &self.v["diagnosis"]
    }

    fn suspects(&self) -> &Vec<Value> {
        self.diagnosis()["suspects"].as_array().expect("suspects")
    }

    fn first(&self) -> &Value {
        &self.suspects()[0]
    }

    fn verdict(&self) -> &str {
        self.diagnosis()["verdict"].as_str().expect("verdict")
    }

    /// An answer stays small at any scale: 12 KiB of text, 48 KiB of structured content.
    fn assert_small(&self) {
        let text = &self.text;
        assert!(text.len() <= 12 * 1024, "{} bytes:\n{text}", text.len());
        let json = self.v.to_string().len();
        assert!(json <= 48 * 1024, "{json} bytes");
    }

    /// The answer's sizes and its text, for the notes.
    fn print_sizes(&self, case: &str) {
        eprintln!(
            "figures [{case}]: text {} bytes, structured {} bytes\n{}",
            self.text.len(),
            self.v.to_string().len(),
            self.text
        );
    }
}

/// A suspect's code and the codes merged into it.
fn codes(suspect: &Value) -> Vec<&str> {
    std::iter::once(&suspect["code"])
        .chain(suspect["also"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect()
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
    let a = s.diagnose(&l, "job", "train").await;
    let (text, v) = (&a.text, &a.v);
    assert_eq!(v["nodes_probed"], 16, "{text}");
    assert_eq!(v["nodes_failed"], 0, "{text}");
    assert_eq!(v["diagnosis"]["pods"], 16, "{text}");
    assert_eq!(v["diagnosis"]["gpus_held"], 128, "{text}");
    let first = a.first();
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
    a.assert_small();
    s.finish(l).await;
}

/// A job on four healthy-looking nodes, one of which AKS's node problem detector marks with inactive
/// NVLinks (a condition the agent sets on the Node, learn.microsoft.com/azure/aks/gpu-health-monitoring):
/// the probes find nothing, and the platform's mark names that node as the job's first suspect, with its
/// source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_its_platform_marks_is_a_suspect_of_the_job() {
    if skipped() {
        return;
    }
    let s = setup("wlmark", &["dgx-h100-healthy"; 4]);
    s.job("train");
    let marked = &s.nodes[2];
    let patch = json!({"status": {"conditions": [{
        "type": "NVLinkStatusInactive", "status": "True", "reason": "NVLinkStatusInactive",
        "message": "NVLink is inactive on GPU 3",
        "lastHeartbeatTime": "2026-11-20T10:00:00Z", "lastTransitionTime": "2026-11-20T10:00:00Z",
    }]}});
    s.tb.kubectl(&[
        "patch",
        "node",
        marked,
        "--subresource=status",
        "--type=strategic",
        "-p",
        &patch.to_string(),
    ]);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "job", "train").await;
    let first = a.first();
    assert_eq!(first["node"], marked.as_str(), "{}", a.text);
    assert!(
        has_str(first, "AKS node problem detector") && has_str(first, "NVLinkStatusInactive"),
        "{first:#}"
    );
    assert!(a.text.contains(marked.as_str()), "{}", a.text);
    a.assert_small();
    s.finish(l).await;
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
    let placement: Vec<(&str, u32)> = s.nodes.iter().map(|n| (n.as_str(), 8)).collect();
    s.pytorchjob_placed("llm", &placement);
    // A fifth rank the scheduler could not place.
    let uid = s.uid("pytorchjob", "llm");
    s.tb.apply(&s.pytorchjob_pod_yaml("llm", &uid, 4, None, 8));
    s.patch_status(
        "llm-worker-3",
        r#"{"status":{"phase":"Pending","conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":"0/20 nodes are available: 20 Insufficient nvidia.com/gpu."}]}}"#,
    );
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    let (text, v) = (&a.text, &a.v);
    assert_eq!(v["diagnosis"]["pods"], 5, "{text}");
    assert_eq!(v["diagnosis"]["pods_by_phase"]["Pending"], 1, "{text}");
    let pending = a.first();
    assert_eq!(pending["code"], "pod.pending", "{text}");
    assert!(
        pending["summary"]
            .as_str()
            .unwrap()
            .contains("Insufficient nvidia.com/gpu"),
        "{text}"
    );
    assert_eq!(pending["ranks"], json!(["worker 3"]), "{text}");
    let straggler = a
        .suspects()
        .iter()
        .find(|x| x["kind"] == "straggler")
        .unwrap_or_else(|| panic!("no straggler:\n{text}"));
    assert_eq!(straggler["node"], s.nodes[2].as_str(), "{text}");
    assert_eq!(straggler["gpu"], 5, "{text}");
    assert_eq!(straggler["ranks"], json!(["worker 1"]), "{text}");
    let ev = straggler["evidence"].to_string();
    assert!(ev.contains("peers") && ev.contains("SM clock"), "{ev}");
    assert!(text.contains("straggler"), "{text}");
    s.finish(l).await;
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
    let a = s.diagnose(&l, "label_selector", "run=a").await;
    let v = &a.v;
    assert_eq!(v["diagnosis"]["cause_found"], false, "{v}");
    let verdict = a.verdict();
    // kwok serves no log for these pods (no kwok `Logs` object names them): the ranks' own output was not
    // examined, and the verdict says so instead of a clean bill of health.
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

    let a = s.diagnose(&l, "label_selector", "run in (a,b)").await;
    let text = &a.text;
    let first = a.first();
    assert_eq!(first["kind"], "fabric", "{text}");
    assert_eq!(first["node"], s.nodes[3].as_str(), "{text}");
    assert!(
        first["code"].as_str().unwrap().starts_with("nic."),
        "{text}"
    );
    assert!(
        a.suspects().iter().all(|x| x["kind"] != "hardware"),
        "{text}"
    );

    // A kind the cluster does not serve, a workload that does not exist, two names at once.
    let err = |args: Value| l.err("diagnose_workload", args);
    let e = err(json!({"namespace": s.wl, "rayjob": "tune"})).await;
    assert!(e.contains("RayJob") && e.contains("KubeRay"), "{e}");
    let e = err(json!({"namespace": s.wl, "job": "absent"})).await;
    assert!(e.contains("absent") && e.contains("hint:"), "{e}");
    let e = err(json!({"namespace": s.wl, "job": "a", "pod": "b"})).await;
    assert!(e.contains("exactly one"), "{e}");
    s.finish(l).await;
}

// ---- The ranks' own logs, served by kwok (`Logs` objects naming CRI-format files) ----
//
// The lines are written here from the public formats: PyTorch's ProcessGroupNCCL watchdog
// (torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp), NCCL's `NCCL_DEBUG=INFO` init lines and `NCCL WARN`
// lines, and the CUDA runtime's error strings as PyTorch raises them.

/// Milliseconds after midnight of `day` as the RFC 3339 time a kubelet writes before each log line.
fn at(day: &str, ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "{day}T{:02}:{:02}:{:02}.{:03}000000Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// A built-in scenario's GPUs: (UUID, NCCL's `busId` for its PCI address, e.g. `ab000` for 0000:ab:00.0).
fn scenario_gpus(name: &str) -> Vec<(String, String)> {
    let path = crate::testbed::repo_root().join(format!("src/scenarios/{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("scenario file"))
        .expect("scenario JSON");
    v["gpus"]
        .as_array()
        .expect("gpus")
        .iter()
        .map(|g| {
            let bus = g["pci_bus_id"].as_str().expect("pci_bus_id");
            let b = bus.split(':').nth(1).expect("bus number").to_lowercase();
            (
                g["uuid"].as_str().expect("uuid").to_string(),
                format!("{b}000"),
            )
        })
        .collect()
}

/// One rank of a job, one GPU in its pod (the container sees only that GPU: cudaDev and nvmlDev 0).
struct RankLog<'a> {
    pod: &'a str,
    rank: u32,
    nranks: u32,
    bus: &'a str,
    ip: &'a str,
    day: &'a str,
}

impl RankLog<'_> {
    fn line(&self, ms: u64, text: String) -> LogLine {
        (at(self.day, ms), text)
    }

    fn pid(&self) -> u32 {
        1000 + self.rank * 13 % 977
    }

    /// NCCL_DEBUG=INFO's lines naming the network and, at the end of init, the rank's device.
    fn nccl_init(&self, ms: u64) -> Vec<LogLine> {
        let (h, p) = (self.pod, self.pid());
        vec![
            self.line(ms, format!("{h}:{p}:{p} [0] NCCL INFO Bootstrap : Using eth0:{}<0>", self.ip)),
            self.line(ms + 40, format!("{h}:{p}:{p} [0] NCCL INFO NCCL version 2.21.5+cuda12.4")),
            self.line(
                ms + 180,
                format!(
                    "{h}:{p}:{p} [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB [2]mlx5_2:1/IB \
                     [3]mlx5_3:1/IB [RO]; OOB eth0:{}<0>",
                    self.ip
                ),
            ),
            self.line(ms + 181, format!("{h}:{p}:{p} [0] NCCL INFO Using network IB")),
            self.line(
                ms + 2400,
                format!(
                    "{h}:{p}:{} [0] NCCL INFO comm 0x{:x} rank {} nranks {} cudaDev 0 nvmlDev 0 busId {} \
                     commId 0x3f6a91c0d25e7b14 - Init COMPLETE",
                    p + 41,
                    0x55d0_0000_u64 + u64::from(self.rank) * 0x1000,
                    self.rank,
                    self.nranks,
                    self.bus
                ),
            ),
        ]
    }

    /// The training loop's own progress lines (no failure signature): the bulk of a real log.
    fn steps(&self, from_ms: u64, count: u64, every_ms: u64) -> Vec<LogLine> {
        (0..count)
            .map(|i| {
                let loss = 2.0 + ((i * 7919 + u64::from(self.rank)) % 1000) as f64 / 2000.0;
                self.line(
                    from_ms + i * every_ms,
                    format!(
                        "[rank{}] step {:>6} | loss {loss:.4} | lr 2.50e-04 | grad_norm {:.3} | {} ms/step",
                        self.rank,
                        41000 + i,
                        0.8 + (i % 13) as f64 / 50.0,
                        every_ms - 3 + i % 7
                    ),
                )
            })
            .collect()
    }

    /// PyTorch's watchdog giving up on collective `seq`, and the process going down.
    fn watchdog_timeout(&self, ms: u64, seq: u64, op: &str) -> Vec<LogLine> {
        let r = self.rank;
        let pre = |ms: u64, line: u32| {
            let s = ms / 1000;
            format!(
                "[rank{r}]:[E1122 {:02}:{:02}:{:02}.{:03}{:03} {} torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:{line}] \
                 [PG ID 0 PG GUID 0(default_pg) Rank {r}]",
                s / 3600,
                s / 60 % 60,
                s % 60,
                ms % 1000,
                r % 1000,
                self.pid() + 57
            )
        };
        vec![
            self.line(
                ms,
                format!(
                    "{} Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType={op}, \
                     NumelIn=262144, NumelOut=262144, Timeout(ms)=600000) ran for {} milliseconds before timing out.",
                    pre(ms, 616),
                    600_000 + u64::from(r) % 90
                ),
            ),
            self.line(
                ms + 1,
                format!(
                    "{} Exception (either an error or timeout) detected by watchdog at work: {seq}, last enqueued \
                     NCCL work: {seq}, last completed NCCL work: {}.",
                    pre(ms + 1, 1785),
                    seq - 1
                ),
            ),
            self.line(
                ms + 2,
                format!(
                    "{} Some NCCL operations have failed or timed out. Due to the asynchronous nature of CUDA \
                     kernels, subsequent GPU operations might run on corrupted/incomplete data.",
                    pre(ms + 2, 1831)
                ),
            ),
            self.line(
                ms + 3,
                format!(
                    "{} To avoid data inconsistency, we are taking the entire process down.",
                    pre(ms + 3, 1837)
                ),
            ),
        ]
    }
}

// ---- Cases built like the judged ones (issue 36): the answer leads with the cause ----

impl RankLog<'_> {
    /// PyTorch's caching allocator refusing an allocation (c10/cuda/CUDACachingAllocator.cpp), as
    /// `torch.OutOfMemoryError` prints it, then torch elastic's table naming this rank.
    fn out_of_memory(&self, ms: u64) -> Vec<LogLine> {
        let r = self.rank;
        let mut lines = vec![
            self.line(ms, format!("[rank{r}]: Traceback (most recent call last):")),
            self.line(ms, format!("[rank{r}]:   File \"/workspace/train.py\", line 212, in <module>")),
            self.line(
                ms + 1,
                format!(
                    "[rank{r}]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 3.50 GiB. GPU 0 has a \
                     total capacity of 79.11 GiB of which 1.21 GiB is free. Process 2210 has 77.88 GiB memory in \
                     use. Of the allocated memory 74.02 GiB is allocated by PyTorch, and 2.31 GiB is reserved by \
                     PyTorch but unallocated."
                ),
            ),
        ];
        lines.extend(self.elastic_root_cause(ms + 900, 1, None));
        lines
    }

    /// torch elastic's ChildFailedError table (torch/distributed/elastic/multiprocessing/errors/__init__.py)
    /// naming this rank's exit.
    fn elastic_root_cause(&self, ms: u64, exitcode: i32, signal: Option<&str>) -> Vec<LogLine> {
        let tb = match signal {
            Some(s) => format!("  traceback : Signal 6 ({s}) received by PID {}", self.pid()),
            None => "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html".into(),
        };
        [
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:".to_string(),
            "============================================================".into(),
            "train.py FAILED".into(),
            "------------------------------------------------------------".into(),
            "Failures:".into(),
            "  <NO_OTHER_FAILURES>".into(),
            "------------------------------------------------------------".into(),
            "Root Cause (first observed failure):".into(),
            "[0]:".into(),
            "  time      : 2026-11-22_10:31:07".into(),
            format!("  host      : {}", self.pod),
            format!("  rank      : {} (local_rank: 0)", self.rank),
            format!("  exitcode  : {exitcode} (pid: {})", self.pid()),
            "  error_file: <N/A>".into(),
            tb,
            "============================================================".into(),
        ]
        .into_iter()
        .map(|l| self.line(ms, l))
        .collect()
    }
}

/// What a rank's container logged: its current run and, for a restarted container, its previous one.
struct ContainerLog {
    current: Vec<LogLine>,
    previous: Option<Vec<LogLine>>,
}

impl From<Vec<LogLine>> for ContainerLog {
    fn from(current: Vec<LogLine>) -> Self {
        ContainerLog {
            current,
            previous: None,
        }
    }
}

impl RunningJob {
    /// One log per rank (its pod's `train` container, the job's rank count as NCCL's `nranks`): rank `i` on
    /// the GPU whose NCCL `busId` is `bus(i)`, on `day`, saying what `write` gives it.
    fn logs(
        &self,
        day: &str,
        bus: impl Fn(usize) -> String,
        write: impl Fn(usize, &RankLog) -> ContainerLog,
    ) -> Vec<PodLog> {
        self.pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let bus = bus(i);
                let r = RankLog {
                    pod,
                    rank: i as u32,
                    nranks: self.pods.len() as u32,
                    bus: &bus,
                    ip: &self.ips[pod],
                    day,
                };
                let log = write(i, &r);
                PodLog {
                    pod: pod.clone(),
                    container: "train".into(),
                    current: log.current,
                    previous: log.previous,
                }
            })
            .collect()
    }
}

/// The launcher's peak resident set so far (VmHWM, kB): the launcher under test is a fresh process per test.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The figures of a diagnose call at scale, for the notes, and its text.
fn print_figures(case: &str, a: &Answer, written: u64, rss: Option<u64>) {
    let v = &a.v;
    eprintln!(
        "figures [{case}]: diagnose_workload {} ms wall (total_millis {}, log_millis {}); logs: {} pod(s) read, \
         {} bytes through the API ({} bytes of CRI log files on kwok's side, {}); answer: text {} bytes, \
         structured {} bytes; launcher peak RSS (VmHWM) {} kB",
        a.wall.as_millis(),
        v["total_millis"],
        v["log_millis"],
        v["diagnosis"]["logs_read"],
        v["diagnosis"]["log_bytes"],
        written,
        v["logs"].as_str().unwrap_or_default(),
        a.text.len(),
        v.to_string().len(),
        rss.map_or("unknown".to_string(), |k| k.to_string())
    );
    eprintln!("{}", a.text);
}

/// A 64-rank answer: every node probed, every pod's log read, and "63 of 64 pod(s) timed out waiting in
/// ALLREDUCE SeqNum=`seq`" first among the consequences.
fn assert_64_ranks_examined_and_63_waited(a: &Answer, nodes: usize, seq: u64) {
    let (text, d) = (&a.text, a.diagnosis());
    assert_eq!(a.v["nodes_probed"], nodes, "{text}");
    assert_eq!(a.v["nodes_failed"], 0, "{text}");
    assert_eq!(d["pods"], 64, "{text}");
    assert_eq!(d["logs_read"], 64, "{text}");
    assert!(
        d["not_examined"].is_null(),
        "everything was examined: {text}"
    );
    assert!(
        d["consequences"][0]
            .as_str()
            .is_some_and(|c| c.starts_with(&format!(
                "63 of 64 pod(s) timed out waiting in ALLREDUCE SeqNum={seq}"
            ))),
        "{text}"
    );
}

const DAY_HANG: &str = "2026-11-22";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_rank_job_where_one_rank_hangs_names_the_rank_the_others_wait_for() {
    if skipped() {
        return;
    }
    // 8 DGX nodes with 8 one-GPU ranks each: the job holds every GPU, and which one a rank has is what its
    // NCCL init line says (busId).
    const NODES: usize = 8;
    const HUNG: usize = 37;
    const SEQ: u64 = 48_213;
    let s = setup("wlhang", &["dgx-h100-healthy"; NODES]);
    let job = s.pytorchjob_running("llm", &s.one_gpu_ranks(64));
    let gpus = scenario_gpus("dgx-h100-healthy");
    let t0 = (9 * 3600 + 40 * 60) * 1000;
    let logs = job.logs(
        DAY_HANG,
        |i| gpus[i % 8].1.clone(),
        |i, r| {
            let mut lines = r.nccl_init(t0);
            // 10 minutes of training, then rank 37 stops answering: every other rank's watchdog gives up
            // on the all-reduce it never joined, 10 minutes later; rank 37 itself says nothing more.
            lines.extend(r.steps(t0 + 5_000, 1_200, 500));
            if i != HUNG {
                lines.extend(r.watchdog_timeout(t0 + 1_205_000 + i as u64 * 3, SEQ, "ALLREDUCE"));
            }
            lines.into()
        },
    );
    let written = s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    print_figures("64 ranks, one hung", &a, written, peak_rss_kib(l.pid));
    assert_64_ranks_examined_and_63_waited(&a, NODES, SEQ);
    let text = &a.text;
    assert_eq!(a.diagnosis()["pods_by_phase"]["Running"], 64, "{text}");
    let hung = &job.pods[HUNG];
    let first = a.first();
    assert_eq!(first["code"], "collective.lagging_rank", "{text}");
    assert_eq!(first["kind"], "rank", "{text}");
    assert_eq!(first["pods"], json!([hung]), "{first:#}");
    assert_eq!(first["node"], s.nodes[HUNG / 8].as_str(), "{first:#}");
    assert_eq!(first["gpu"], HUNG % 8, "{first:#}");
    assert_eq!(first["gpu_uuid"], gpus[HUNG % 8].0.as_str(), "{first:#}");
    let ranks = first["ranks"].to_string();
    // The operator's replica label and NCCL's global rank.
    assert!(
        ranks.contains("worker 36") && ranks.contains("rank 37"),
        "{ranks}"
    );
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("63 pod(s) timed out in ALLREDUCE SeqNum={SEQ}")),
        "{first:#}"
    );
    // One suspect: the 63 ranks that timed out are consequences, not suspects.
    assert_eq!(a.suspects().len(), 1, "{text}");
    let verdict = a.verdict();
    assert!(
        verdict.contains(hung.as_str())
            && verdict.contains(&format!("{} GPU {}", s.nodes[HUNG / 8], HUNG % 8)),
        "{verdict}"
    );
    a.assert_small();
    s.finish(l).await;
}

/// The day of the Xid 48 in the `h100-xid48-dbe` scenario (its kernel log, from the scenario's boot time).
const DAY_ECC: &str = "2026-11-25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ranks_cuda_ecc_error_and_the_xid_48_on_its_gpu_are_one_suspect_at_64_ranks() {
    if skipped() {
        return;
    }
    // 64 one-GPU ranks: 62 on eight healthy DGX nodes, the last two on the 2-GPU node whose GPU 1 had an
    // Xid 48 (double-bit ECC error) at 09:21:40.881 (the only scenario with an Xid 48; it is on GPU 1).
    const BAD: usize = 63;
    const SEQ: u64 = 2_915;
    let mut scenarios = vec![("dgx-h100-healthy", 8); 8];
    scenarios.push(("h100-xid48-dbe", 2));
    let s = setup_with("wlecc", &scenarios);
    let xid_node = s.nodes[8].clone();
    let mut placement = s.one_gpu_ranks(62);
    placement.extend([(xid_node.as_str(), 1); 2]);
    let job = s.pytorchjob_running("llm", &placement);
    let dgx = scenario_gpus("dgx-h100-healthy");
    let h100 = scenario_gpus("h100-xid48-dbe");
    // The rank's container died on the error (exit 1) and was restarted: the error is in its previous
    // log only, as the kubelet reports it (restartCount 1, last state terminated).
    let bad = job.pods[BAD].clone();
    s.patch_status(
        &bad,
        r#"{"status":{"containerStatuses":[{"name":"train","image":"registry.invalid/train:1","imageID":"","ready":true,"started":true,"restartCount":1,"state":{"running":{"startedAt":"2026-11-25T09:21:52Z"}},"lastState":{"terminated":{"exitCode":1,"reason":"Error","startedAt":"2026-11-25T09:11:20Z","finishedAt":"2026-11-25T09:21:42Z"}}}]}}"#,
    );
    let t0: u64 = (9 * 3600 + 11 * 60 + 30) * 1000;
    let fail_at: u64 = (9 * 3600 + 21 * 60 + 41) * 1000 + 200;
    let logs = job.logs(
        DAY_ECC,
        |i| {
            if i < 62 {
                dgx[i % 8].1.clone()
            } else {
                h100[i - 62].1.clone()
            }
        },
        |i, r| {
            let mut lines = r.nccl_init(t0);
            lines.extend(r.steps(t0 + 5_000, 1_210, 500));
            if i == BAD {
                let p = |ms: u64, l: &str| (at(DAY_ECC, ms), format!("[rank{i}]: {l}"));
                let mut previous = lines;
                previous.extend([
                    p(fail_at, "Traceback (most recent call last):"),
                    p(fail_at, "  File \"/workspace/train.py\", line 188, in <module>"),
                    p(fail_at, "    loss.backward()"),
                    p(fail_at + 1, "RuntimeError: CUDA error: uncorrectable ECC error encountered"),
                    p(
                        fail_at + 1,
                        "CUDA kernel errors might be asynchronously reported at some other API call, so the \
                         stacktrace below might be incorrect.",
                    ),
                    p(fail_at + 1, "For debugging consider passing CUDA_LAUNCH_BLOCKING=1"),
                ]);
                // The new run joins NCCL again, then waits for peers that are stuck in the old collective.
                return ContainerLog {
                    current: r.nccl_init(fail_at + 12_000),
                    previous: Some(previous),
                };
            }
            if i == 0 {
                // Its ring peer on the network went away.
                lines.push(r.line(
                    fail_at + 300,
                    format!(
                        "{}:{p}:{t} [0] NCCL WARN Net : Connection closed by remote peer {}<45170>",
                        r.pod,
                        job.ips[&bad],
                        p = r.pid(),
                        t = r.pid() + 44
                    ),
                ));
            }
            lines.extend(r.watchdog_timeout(fail_at + 600_000 + i as u64 * 3, SEQ, "ALLREDUCE"));
            lines.into()
        },
    );
    let written = s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    print_figures(
        "64 ranks, CUDA ECC error + Xid 48",
        &a,
        written,
        peak_rss_kib(l.pid),
    );
    assert_64_ranks_examined_and_63_waited(&a, 9, SEQ);
    let text = &a.text;
    let first = a.first();
    assert_eq!(first["node"], xid_node.as_str(), "{first:#}");
    assert_eq!(first["gpu"], 1, "{first:#}");
    assert_eq!(first["gpu_uuid"], h100[1].0.as_str(), "{first:#}");
    // The node's pods request both its GPUs; the rank's NCCL init line (busId ca000) says it is this one,
    // not its neighbour on GPU 0.
    assert_eq!(first["pods"], json!([bad]), "{first:#}");
    assert_eq!(first["ranks"], json!(["worker 62", "rank 63"]), "{first:#}");
    let codes = codes(first);
    assert!(codes.contains(&"cuda.ecc_uncorrectable"), "{codes:?}");
    assert!(codes.iter().any(|c| c.starts_with("xid.48")), "{codes:?}");
    let ev = first["evidence"].to_string();
    assert!(
        ev.contains("[previous] log:") && ev.contains("uncorrectable ECC error encountered"),
        "the rank's own line, from its previous run: {ev}"
    );
    // One suspect for that GPU, and none for the rank's pod apart from it.
    let about = |pred: &dyn Fn(&Value) -> bool| a.suspects().iter().filter(|x| pred(x)).count();
    assert_eq!(
        about(&|x| x["node"] == xid_node.as_str() && x["gpu"] == 1),
        1,
        "{text}"
    );
    assert_eq!(
        about(&|x| x["pods"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(bad)))),
        1,
        "{text}"
    );
    assert!(
        a.verdict()
            .contains(&format!("{xid_node} GPU 1 (pod {bad})")),
        "{}",
        a.verdict()
    );
    // The text names both sources of that one suspect (their lines are in the structured evidence).
    assert!(
        text.contains("xid.48") && text.contains("cuda.ecc_uncorrectable"),
        "{text}"
    );
    a.assert_small();
    s.finish(l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_rank_job_where_one_rank_ran_out_of_memory_leads_with_the_oom() {
    if skipped() {
        return;
    }
    // Two DGX nodes, 16 one-GPU ranks. Rank 11 dies of an out-of-memory error; the other 15 time out in
    // the all-reduce it never joins and their watchdogs take their processes down; rank 0's torch elastic
    // then reports rank 0 (exit -6, SIGABRT) as the "root cause", which is its own abort.
    const OOM: usize = 11;
    const SEQ: u64 = 9_120;
    let s = setup("wloom", &["dgx-h100-healthy"; 2]);
    let job = s.pytorchjob_running("llm", &s.one_gpu_ranks(16));
    let gpus = scenario_gpus("dgx-h100-healthy");
    let t0 = (10 * 3600 + 20 * 60) * 1000;
    let logs = job.logs(
        DAY_HANG,
        |i| gpus[i % 8].1.clone(),
        |i, r| {
            let mut lines = r.nccl_init(t0);
            lines.extend(r.steps(t0 + 5_000, 600, 500));
            if i == OOM {
                lines.extend(r.out_of_memory(t0 + 306_000));
            } else {
                lines.extend(r.watchdog_timeout(t0 + 906_000 + i as u64 * 3, SEQ, "ALLREDUCE"));
                if i == 0 {
                    lines.extend(r.elastic_root_cause(t0 + 907_000, -6, Some("SIGABRT")));
                }
            }
            lines.into()
        },
    );
    s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    a.print_sizes("16 ranks, one OOM");
    let (text, d) = (&a.text, a.diagnosis());
    assert_eq!(d["logs_read"], 16, "{text}");
    // One suspect: the rank that ran out of memory, its error named first.
    assert_eq!(a.suspects().len(), 1, "{text}");
    let first = a.first();
    assert_eq!(first["code"], "cuda.out_of_memory", "{text}");
    assert_eq!(first["pods"], json!([job.pods[OOM]]), "{text}");
    assert_eq!(first["gpu"], OOM % 8, "{text}");
    assert!(
        first["evidence"][0]
            .as_str()
            .is_some_and(|e| e.contains("torch.OutOfMemoryError: CUDA out of memory")),
        "{first:#}"
    );
    let verdict = a.verdict();
    assert!(
        verdict.contains("first: cuda.out_of_memory")
            && verdict.contains("ran out of GPU memory")
            && verdict.contains(&format!(
                "then 15 pod(s) timed out in ALLREDUCE SeqNum={SEQ}"
            )),
        "{verdict}"
    );
    let c = d["consequences"].to_string();
    assert!(c.contains("15 of 16 pod(s) timed out waiting"), "{c}");
    assert!(
        c.contains("1 torch elastic root cause(s) are a rank's own abort"),
        "{c}"
    );
    assert!(!text.contains("elastic.root_cause"), "{text}");
    assert!(text.len() <= 12 * 1024, "{} bytes:\n{text}", text.len());
    s.finish(l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nic_fault_both_ends_report_leads_with_the_end_the_probe_finds_failing() {
    if skipped() {
        return;
    }
    // Two DGX nodes, 16 one-GPU ranks. The second node's mlx5_5/1 (serving GPU 5) flaps. Rank 13 (GPU 5 on
    // that node) and its ring peer rank 5 (GPU 5 on the healthy node) each log NCCL's InfiniBand completion
    // error from their own side, naming their own HCA and the other's address (NCCL 2.19+ `net_ib.cc`
    // format); the healthy end's error comes first. The others time out.
    const SEQ: u64 = 4_410;
    let s = setup("wlibends", &["dgx-h100-healthy", "dgx-h100-ib-flapping"]);
    let job = s.pytorchjob_running("ends", &s.one_gpu_ranks(16));
    let gpus = scenario_gpus("dgx-h100-healthy");
    let t0 = (11 * 3600) * 1000;
    let (healthy_end, failing_end) = (5usize, 13usize);
    let ip = |i: usize| job.ips[&job.pods[i]].clone();
    let logs = job.logs(
        DAY_HANG,
        |i| gpus[i % 8].1.clone(),
        |i, r| {
            let mut lines = r.nccl_init(t0);
            lines.extend(r.steps(t0 + 5_000, 600, 500));
            let peer = match i {
                _ if i == healthy_end => Some((ip(failing_end), 100)),
                _ if i == failing_end => Some((ip(healthy_end), 900)),
                _ => None,
            };
            match peer {
                Some((peer, ms)) => lines.push(r.line(
                    t0 + 300_000 + ms,
                    format!(
                        "{}:{p}:{t} [0] NCCL WARN NET/IB : Got completion from peer {peer}<50113> with status=12 \
                         opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:{me} remoteGid ::ffff:{peer} hca mlx5_5",
                        r.pod,
                        p = r.pid(),
                        t = r.pid() + 7,
                        me = ip(i),
                    ),
                )),
                None => lines.extend(r.watchdog_timeout(t0 + 906_000 + i as u64 * 3, SEQ, "ALLREDUCE")),
            }
            lines.into()
        },
    );
    s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "ends").await;
    let text = &a.text;
    let first = a.first();
    assert_eq!(first["kind"], "fabric", "{text}");
    assert_eq!(first["node"], s.nodes[1].as_str(), "{text}");
    assert!(
        first["code"].as_str().unwrap().starts_with("nic."),
        "{text}"
    );
    // The healthy end's error is the failing end's consequence: in that suspect, never a suspect leading.
    let pods = first["pods"].to_string();
    assert!(pods.contains(&job.pods[healthy_end]), "{text}");
    assert!(
        !a.suspects()
            .iter()
            .any(|x| x["node"] == s.nodes[0].as_str() && x["kind"] == "fabric"),
        "{text}"
    );
    let ev = first["evidence"].to_string();
    assert!(
        ev.contains("which the probe found failing (nic.link_flapping on mlx5_5/1"),
        "{first:#}"
    );
    assert!(text.len() <= 12 * 1024, "{} bytes:\n{text}", text.len());
    s.finish(l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_gpu_among_eight_one_gpu_pods_names_the_pod_from_its_nccl_bus_id() {
    if skipped() {
        return;
    }
    // One DGX node whose GPU 4 (0000:9a:00.0) fell off the bus (Xid 79), running the 8 one-GPU pods of a
    // PyTorchJob. The pods request all 8 GPUs; the ranks' NCCL init lines say which pod has which.
    let s = setup("wlx79", &["dgx-h100-xid79"]);
    let job = s.pytorchjob_running("llm", &s.one_gpu_ranks(8));
    let gpus = scenario_gpus("dgx-h100-xid79");
    let t0 = (8 * 3600) * 1000;
    let logs = job.logs(
        "2026-11-25",
        |i| gpus[i].1.clone(),
        |i, r| {
            let mut lines = r.nccl_init(t0);
            lines.extend(r.steps(t0 + 5_000, 300, 500));
            if i != 4 {
                lines.extend(r.watchdog_timeout(t0 + 1_600_000 + i as u64, 3_301, "ALLREDUCE"));
            }
            lines.into()
        },
    );
    s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    a.print_sizes("8 one-GPU pods, Xid 79");
    let text = &a.text;
    let first = a.first();
    assert_eq!(first["kind"], "hardware", "{text}");
    assert_eq!(first["gpu"], 4, "{text}");
    let held = &job.pods[4];
    assert_eq!(first["pods"], json!([held]), "{text}");
    let ev = first["evidence"].to_string();
    assert!(
        ev.contains(&format!("held by pod {held}: rank 4's NCCL init line")),
        "{ev}"
    );
    assert!(
        !ev.contains("field(s)") && !ev.contains("= gpu_is_lost"),
        "{ev}"
    );
    assert!(!text.contains("field(s) returned"), "{text}");
    let verdict = a.verdict();
    assert!(
        verdict.contains(&format!("{} GPU 4 (pod {held})", s.nodes[0])),
        "{verdict}"
    );
    assert_eq!(a.suspects().len(), 1, "{text}");
    s.finish(l).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_job_with_its_logs_read_reads_healthy() {
    if skipped() {
        return;
    }
    let s = setup("wlok", &["dgx-h100-healthy"; 2]);
    let job = s.pytorchjob_running("llm", &s.one_gpu_ranks(16));
    let gpus = scenario_gpus("dgx-h100-healthy");
    let t0 = (9 * 3600) * 1000;
    let logs = job.logs(
        DAY_HANG,
        |i| gpus[i % 8].1.clone(),
        |_, r| {
            let mut lines = r.nccl_init(t0);
            lines.extend(r.steps(t0 + 5_000, 400, 500));
            lines.into()
        },
    );
    s.tb.serve_pod_logs(&s.wl, &logs);
    let l = s.launcher().await;
    let a = s.diagnose(&l, "pytorchjob", "llm").await;
    a.print_sizes("16 ranks, healthy");
    let (text, d) = (&a.text, a.diagnosis());
    assert_eq!(d["cause_found"], false, "{text}");
    assert_eq!(d["logs_read"], 16, "{text}");
    let verdict = a.verdict();
    assert!(
        verdict.contains("nothing wrong found: 16 pod(s) (16 Running) on 2 node(s)"),
        "{verdict}"
    );
    assert!(!verdict.contains("look at"), "{verdict}");
    s.finish(l).await;
}
