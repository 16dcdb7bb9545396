//! End-to-end tests on a real node: a kubelet, containerd and runc (tests/testbed/realnode.sh) joined to the
//! testbed's real kube-apiserver, so probe pods really start containers from imported images, exec really
//! enters them, node-probe reads the fake NVML through the node's GPU Operator driver root under /host, the
//! real /dev/kmsg and the kubelet's PodResources socket, and the kubelet enforces deadlines.
//!
//! One node serves the whole binary, and the cases run one after another in one test ([`real_node_suite`]):
//! they share the node's pods and kernel log, and the suite ends by checking that nothing is left, neither a
//! pod in the API nor a task in containerd. Each case runs isolated (a panic fails that case, the rest still
//! run) and the test fails listing every failed case.
//!
//! Needs root (mount namespaces, cgroups, runc). `SKIP_E2E=1` skips it with the rest of the end-to-end
//! suite; `SKIP_REALNODE=1` skips only this binary.

#[path = "../e2e/testbed.rs"]
mod testbed;

#[path = "../e2e/mcp.rs"]
mod mcp;

#[path = "../support/amdgpu_tree.rs"]
mod amdgpu_tree;
#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
#[path = "../support/oidc.rs"]
mod oidc;

mod amd;
use amd::{
    amds_device_plugin_gives_a_pod_gpus_the_launcher_attributes_by_pci_address,
    amds_device_plugin_in_mixed_mode_gives_a_pod_cpx_partitions_of_their_gpus,
};

mod dcgm;
mod dra;
mod evidence;
mod node;
mod readings;
use readings::a_conversation_about_the_real_node_costs_one_probe_pod;
mod server;
use server::the_team_servers_image_answers_a_persons_first_call;
mod trust;
mod watch;
use dcgm::{
    a_cancelled_diagnostic_task_leaves_no_pod_and_no_process,
    keep_pods_off_cordons_the_node_for_the_run_only,
    run_gpu_diagnostic_tests_only_idle_gpus_in_nvidias_dcgm_image,
    the_gpu_operators_dcgm_engine_runs_the_diagnostic,
};
use dra::{
    a_dra_claimed_gpu_runs_and_the_kubelet_reports_it,
    a_kubelet_that_reports_no_dra_claims_still_holds_claimed_gpus,
    a_tainted_dra_device_is_an_incident_of_its_gpu,
    gpus_claimed_through_dra_are_held_in_every_answer,
};
use evidence::{
    collect_evidence_cuts_a_hung_bug_report_at_its_limit_with_all_it_started,
    collect_evidence_runs_the_nodes_bug_report_and_leaves_nothing,
    reset_gpu_keeps_the_evidence_first_and_the_audit_names_it,
};
use trust::{
    a_re_pointed_trusted_tag_does_not_run_other_content,
    default_delivery_never_runs_an_untrusted_image_named_like_a_base,
};
use watch::{
    a_watch_on_the_real_node_plays_the_fake_nvml_script,
    top_on_the_real_node_follows_the_fake_nvml_as_it_samples,
};

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use mcp::{Launcher, has_str};
use node::{Images, RealNode};
use testbed::{Testbed, User, skipped, unique};

/// The fake NVML's GPUs (tests/fake-nvml/fake_nvml.c), which the testbed's device plugin also advertises.
fn gpu_uuid(i: usize) -> String {
    format!("GPU-5f1c1a5e-0000-4000-8000-00000000000{i}")
}

/// The DRA driver of the testbed's DRA plugin (tests/testbed/dra-plugin), NVIDIA's name; also the name of
/// its device class. Its pool is the node's name, its devices `gpu-<minor>`; the node's minors are not NVML's
/// indices (realnode.sh: GPU 0 has minor 1, 1 has 0, 2 has 3, 3 has 2), as [`dra_device`] says.
const DRA_DRIVER: &str = "gpu.nvidia.com";

/// The DRA device of NVML GPU `index` on the real node (realnode.sh's FAKE_NVML_MINORS `1,0,3,2`).
pub fn dra_device(index: usize) -> String {
    format!("gpu-{}", [1, 0, 3, 2][index])
}

/// A workload pod of [`Ctx::dra_workload_pod`].
pub struct DraPod {
    pub uid: String,
    /// Its ResourceClaim, in the workload namespace.
    pub claim: String,
    pub claim_uid: String,
}

impl DraPod {
    /// The CDI device id the DRA plugin gives `device` of this claim: NVIDIA's claim-scoped form.
    fn cdi_device(&self, device: &str) -> String {
        format!("k8s.gpu.nvidia.com/claim={}-{device}", self.claim_uid)
    }
}

pub struct Ctx {
    pub tb: &'static Testbed,
    pub node: RealNode,
    pub images: Images,
    /// The probe namespace (Pod Security `privileged`, the reader's roles bound in it).
    pub ns: String,
    /// A namespace for workload pods.
    pub wl: String,
}

impl Ctx {
    pub fn name(&self) -> &str {
        &self.node.name
    }

    pub async fn launcher(&self, extra: &[&str]) -> Launcher {
        mcp::start(self.tb, User::Reader, &self.ns, extra).await
    }

    pub async fn image_launcher(&self) -> Launcher {
        self.launcher(&["--probe-image", node::PROBE_IMAGE]).await
    }

    async fn copy_launcher(&self, base: &str) -> Launcher {
        let bins = self.images.bin_dir.to_str().unwrap().to_string();
        self.launcher(&[
            "--probe-delivery",
            "copy",
            "--probe-image",
            base,
            "--probe-bin-dir",
            &bins,
        ])
        .await
    }

    pub fn assert_no_probe_pods(&self) {
        if let Err(left) = self.tb.wait_no_pods(&self.ns, Duration::from_secs(120)) {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }

    /// A workload pod on the node (hostNetwork: no pod network is needed), Running when this returns.
    fn workload_pod(&self, name: &str, gpus: u32, image: &str) -> String {
        self.workload_pod_with(name, gpus, image, "")
    }

    /// [`Self::workload_pod`] with more of the pod spec (`extra`: indented YAML under `spec:`, after
    /// the container, which may name volumes and its own `volumeMounts` at the container's level).
    fn workload_pod_with(&self, name: &str, gpus: u32, image: &str, extra: &str) -> String {
        self.tb.apply(&format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {wl}}}
spec:
  nodeName: {node}
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    resources: {{limits: {{nvidia.com/gpu: {gpus}}}}}
{extra}"#,
            wl = self.wl,
            node = self.name(),
        ));
        self.wait_workload_running(name)
    }

    /// Waits until the workload pod `name` is Running and returns its uid.
    fn wait_workload_running(&self, name: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let phase = self.tb.kubectl(&[
                "-n",
                &self.wl,
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.phase}",
            ]);
            if phase.trim() == "Running" {
                break;
            }
            // Rejected or evicted (a full disk gives the node DiskPressure): no use waiting.
            assert!(
                Instant::now() < deadline && phase.trim() != "Failed",
                "workload pod {name} not Running: {}",
                self.tb
                    .kubectl(&["-n", &self.wl, "get", "pod", name, "-o", "yaml"])
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        self.tb
            .kubectl(&[
                "-n",
                &self.wl,
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .trim()
            .to_string()
    }

    /// Before each case: the node runs nothing of an earlier case, whatever that case did or where it
    /// failed. The workload pods go (a failed case never reached its own cleanup), then this waits until
    /// the API server lists no pod on the node and containerd has no task left (a deleted pod's containers
    /// stop after it left the API). Cases that count the node's pods count only their own.
    fn settle(&self) {
        self.tb.kubectl(&[
            "-n",
            &self.wl,
            "delete",
            "pods,resourceclaims",
            "--all",
            "--grace-period=0",
            "--force",
            "--wait=true",
        ]);
        // Generous: a loaded machine stops containers slowly; nothing here waits longer than it must.
        let deadline = Instant::now() + Duration::from_secs(180);
        let field = format!("spec.nodeName={}", self.name());
        loop {
            let pods = self.tb.kubectl(&[
                "get",
                "pods",
                "--all-namespaces",
                "--field-selector",
                &field,
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}",
            ]);
            let tasks = self.node.tasks();
            // A DRA claim stays prepared (its CDI spec on the node) until the kubelet unprepares it, after
            // its pod is gone: until then it holds its GPUs.
            let prepared: Vec<String> = std::fs::read_dir(self.node.host_path("/run/cdi"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("k8s.gpu.nvidia.com-claim_"))
                .collect();
            if pods.trim().is_empty() && tasks.is_empty() && prepared.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the node still runs what earlier cases started: pods [{}], containerd tasks {tasks:?}, \
                 prepared claims {prepared:?}",
                pods.trim()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A workload pod whose GPUs come through DRA: `devices` are the node's `gpu-N` (the DRA plugin's pool
    /// is the node), held by the ResourceClaim `<name>-gpus` (one request `gpu` of the device class
    /// gpu.nvidia.com). The testbed has no scheduler, so this does what it would, in its order: the claim
    /// and the pod (no node yet) are created, the claim's status gets the allocation and the pod's
    /// reservation, and only then is the pod bound to the node. A pod created on the node before its
    /// claim is reserved fails FailedPrepareDynamicResources and the kubelet retries only at its next pod
    /// sync (about a minute later). Running when this returns; [`Self::delete_dra_workload`] removes it.
    pub fn dra_workload_pod(&self, name: &str, devices: &[u32], image: &str) -> DraPod {
        let claim = format!("{name}-gpus");
        let wl = &self.wl;
        self.tb.apply(&format!(
            r#"apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {{name: {claim}, namespace: {wl}}}
spec:
  devices:
    requests:
    - name: gpu
      exactly: {{deviceClassName: {DRA_DRIVER}, allocationMode: ExactCount, count: {count}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {wl}}}
spec:
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  resourceClaims: [{{name: gpus, resourceClaimName: {claim}}}]
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    resources: {{claims: [{{name: gpus}}]}}
"#,
            count = devices.len(),
        ));
        let uids = self.tb.kubectl(&[
            "-n",
            wl,
            "get",
            &format!("pod/{name}"),
            &format!("resourceclaim/{claim}"),
            "-o",
            "jsonpath={.items[*].metadata.uid}",
        ]);
        let (pod_uid, claim_uid) = uids
            .split_once(' ')
            .unwrap_or_else(|| panic!("uids of pod {name} and claim {claim}: {uids:?}"));
        let node = self.name();
        let results: Vec<Value> = devices
            .iter()
            .map(|n| json!({"request": "gpu", "driver": DRA_DRIVER, "pool": node, "device": format!("gpu-{n}")}))
            .collect();
        let status = json!({"status": {
            "allocation": {
                "devices": {"results": results},
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]},
            },
            "reservedFor": [{"resource": "pods", "name": name, "uid": pod_uid}],
        }});
        self.tb.kubectl(&[
            "-n",
            wl,
            "patch",
            "resourceclaim",
            &claim,
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        let out = self.tb.kubectl_as(
            User::Admin,
            &[
                "create",
                "--raw",
                &format!("/api/v1/namespaces/{wl}/pods/{name}/binding"),
                "-f",
                "-",
            ],
            Some(&binding.to_string()),
        );
        assert!(
            out.status.success(),
            "binding {name} to {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uid = self.wait_workload_running(name);
        assert_eq!(uid, pod_uid, "pod {name} was replaced");
        DraPod {
            uid,
            claim,
            claim_uid: claim_uid.trim().to_string(),
        }
    }

    /// Deletes a [`Self::dra_workload_pod`]: the pod, then its claim.
    pub fn delete_dra_workload(&self, name: &str) {
        self.delete_workload(name);
        self.tb.kubectl(&[
            "-n",
            &self.wl,
            "delete",
            "resourceclaim",
            &format!("{name}-gpus"),
            "--wait=true",
        ]);
    }

    fn delete_workload(&self, name: &str) {
        self.tb.kubectl(&[
            "-n",
            &self.wl,
            "delete",
            "pod",
            name,
            "--grace-period=0",
            "--force",
            "--wait=true",
        ]);
    }
}

/// The parts of a result that must not depend on how node-probe got into the container: all but the probe
/// pod's name, the timings and what changes between two reads of live hardware counters.
fn comparable(mut v: Value) -> Value {
    if let Some(run) = v.get_mut("run").and_then(Value::as_object_mut) {
        run.remove("ran_in");
        run.remove("timings");
        run.remove("total_millis");
        // From the probe's document (or a kept reading) to the answer: each launcher's own time.
        run.remove("after_probe_millis");
        // How old a kept reading was when it answered: each launcher's own clock.
        run.remove("reading_age_s");
    }
    strip_keys(
        &mut v,
        // `started_at`/`elapsed_ms`: when and how long a DCGM diagnostic ran (run_gpu_diagnostic).
        &[
            "collected_at_unix",
            "duration_ms",
            "sample_interval_ms",
            "started_at",
            "elapsed_ms",
        ],
    );
    strip_live_kernel_log(&mut v);
    // The current boot's last kernel message is the machine's live log (any subsystem adds lines between
    // two calls); earlier boots are this suite's own journal and compare whole.
    if let Some(boots) = v
        .pointer_mut("/report/history/boots")
        .and_then(Value::as_array_mut)
    {
        for b in boots.iter_mut().filter(|b| b["current"] == true) {
            if let Some(b) = b.as_object_mut() {
                b.remove("last");
            }
        }
    }
    // A relative window (`since: 7d`) is anchored at each call's own now.
    if let Some(log) = v.pointer_mut("/report/log").and_then(Value::as_object_mut) {
        log.remove("since");
    }
    v
}

/// The live /dev/kmsg is shared by the whole machine: any subsystem (a veth of the next node, a mount)
/// adds lines between two reads. What this suite controls is the NVIDIA part (only it writes NVRM lines,
/// under the shared e2e lock); the log's size and the events' positions in it are the kernel's, so they
/// are left out of the comparison: the line and record counts, each event's line number, and the
/// `line N` references in evidence.
fn strip_live_kernel_log(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.get("origin").and_then(Value::as_str) == Some("kmsg") {
                o.remove("lines");
                o.remove("records");
            }
            if o.contains_key("kind") {
                o.remove("line");
            }
            o.values_mut().for_each(strip_live_kernel_log);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_live_kernel_log),
        Value::String(s) if s.contains("line ") => *s = without_line_numbers(s),
        _ => {}
    }
}

/// `line 17 …` -> `line N …`.
fn without_line_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

fn strip_keys(v: &mut Value, keys: &[&str]) {
    match v {
        Value::Object(o) => {
            for k in keys {
                o.remove(*k);
            }
            o.values_mut().for_each(|x| strip_keys(x, keys));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_keys(x, keys)),
        _ => {}
    }
}

type CaseFn = for<'a> fn(&'a Ctx) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

macro_rules! case {
    ($f:ident) => {
        (stringify!($f), (|c| Box::pin($f(c))) as CaseFn)
    };
}

#[test]
fn real_node_suite() {
    if skipped() {
        return;
    }
    if std::env::var("SKIP_REALNODE").as_deref() == Ok("1") {
        testbed::gate::skip("SKIP_REALNODE=1: real-node suite");
        return;
    }
    let cases: Vec<(&str, CaseFn)> = vec![
        case!(every_node_tool_answers_alike_in_image_and_copy_delivery),
        case!(default_delivery_needs_no_flags_and_no_published_image),
        case!(a_conversation_about_the_real_node_costs_one_probe_pod),
        case!(a_userspace_write_into_the_real_kmsg_is_no_kernel_event),
        case!(previous_boots_are_read_from_the_node_journal),
        case!(allocation_is_exact_from_the_kubelet_and_processes_are_named),
        case!(diagnose_workload_reads_the_ranks_logs_and_a_restarted_containers_previous_log),
        case!(ephemeral_container_in_a_real_pod),
        case!(tainted_gpu_node_is_probed),
        case!(node_under_disk_pressure_admits_the_critical_probe_pod),
        case!(copy_delivery_into_broken_images_fails_clearly),
        case!(a_fallback_pull_that_fails_is_a_clear_error_within_seconds),
        case!(pod_security_denial_names_the_namespace_and_the_fix),
        case!(launcher_killed_mid_call_leaves_a_pod_the_kubelet_ends_and_gc_removes),
        case!(check_passes_and_finds_the_probe_image_on_the_real_node),
        case!(default_delivery_never_runs_an_untrusted_image_named_like_a_base),
        case!(a_re_pointed_trusted_tag_does_not_run_other_content),
        case!(collect_evidence_runs_the_nodes_bug_report_and_leaves_nothing),
        case!(collect_evidence_cuts_a_hung_bug_report_at_its_limit_with_all_it_started),
        case!(reset_gpu_keeps_the_evidence_first_and_the_audit_names_it),
        case!(a_dra_claimed_gpu_runs_and_the_kubelet_reports_it),
        case!(gpus_claimed_through_dra_are_held_in_every_answer),
        case!(a_kubelet_that_reports_no_dra_claims_still_holds_claimed_gpus),
        case!(a_tainted_dra_device_is_an_incident_of_its_gpu),
        case!(run_gpu_diagnostic_tests_only_idle_gpus_in_nvidias_dcgm_image),
        case!(a_cancelled_diagnostic_task_leaves_no_pod_and_no_process),
        case!(keep_pods_off_cordons_the_node_for_the_run_only),
        case!(the_gpu_operators_dcgm_engine_runs_the_diagnostic),
        case!(the_team_servers_image_answers_a_persons_first_call),
        case!(a_watch_on_the_real_node_plays_the_fake_nvml_script),
        case!(top_on_the_real_node_follows_the_fake_nvml_as_it_samples),
        // Last: after AMD's plugin stops, the kubelet keeps its resources in the node's capacity (allocatable
        // 0) for its endpoint grace period, which would change the GPU counts of a later case.
        case!(amds_device_plugin_gives_a_pod_gpus_the_launcher_attributes_by_pci_address),
        case!(amds_device_plugin_in_mixed_mode_gives_a_pod_cpx_partitions_of_their_gpus),
    ];
    // `REALNODE_ONLY=ephemeral`: only the cases whose name holds it (a quick rerun of one case).
    // A filter that selects nothing is a mistake, not a pass (checked before any node starts); under CI
    // every case runs.
    let only = std::env::var("REALNODE_ONLY").unwrap_or_default();
    if !only.is_empty() {
        testbed::gate::skip(&format!("REALNODE_ONLY={only}: the cases not named"));
    }
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(n, _)| n.contains(only.as_str()))
        .collect();
    assert!(
        !cases.is_empty(),
        "REALNODE_ONLY={only} selects no case of the real-node suite"
    );
    assert!(
        is_root(),
        "the real-node suite needs root (mount namespaces, cgroups, runc); run as root or set \
         SKIP_REALNODE=1 to skip it deliberately"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tb = Testbed::shared();
    let t = Instant::now();
    let images = Images::build(tb);
    eprintln!("images ready in {:?}", t.elapsed());
    let t = Instant::now();
    let node = RealNode::start(tb, &images);
    eprintln!("real node {} up in {:?}", node.name, t.elapsed());
    let ns = unique("rn-probe");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let wl = unique("rn-work");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {wl}\n  labels: {{pod-security.kubernetes.io/enforce: privileged}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {wl}}}\n"
    ));
    // Shared by the spawned cases for the rest of the test binary's life.
    let ctx: &'static Ctx = Box::leak(Box::new(Ctx {
        tb,
        node,
        images,
        ns,
        wl,
    }));

    let mut failed = Vec::new();
    for (name, f) in cases {
        eprintln!("\n=== real node: {name}");
        let t = Instant::now();
        // A case's panic stays in its task; the suite goes on and reports it.
        let r = rt.block_on(async move {
            tokio::spawn(async move {
                tokio::task::block_in_place(|| ctx.settle());
                f(ctx).await
            })
            .await
        });
        match r {
            Ok(()) => eprintln!("=== ok: {name} ({:?})", t.elapsed()),
            Err(e) => {
                eprintln!("=== FAILED: {name} ({:?}): {e}", t.elapsed());
                failed.push(name);
            }
        }
    }
    // After the suite: no probe pod in the API, and no task in containerd once the workloads are gone.
    let left = ctx.tb.pods(&ctx.ns);
    ctx.tb.kubectl(&[
        "-n",
        &ctx.wl,
        "delete",
        "pods",
        "--all",
        "--grace-period=0",
        "--force",
        "--wait=true",
    ]);
    let tasks = ctx.node.wait_no_tasks(Duration::from_secs(120));
    drop(rt);
    ctx.node.stop();
    let left_on_host = ctx.node.leftovers();
    assert!(left_on_host.is_empty(), "teardown left {left_on_host:?}");
    assert!(failed.is_empty(), "real-node cases failed: {failed:?}");
    assert!(left.is_empty(), "probe pods left after the suite: {left:?}");
    assert!(
        tasks.is_empty(),
        "containerd tasks left after the suite: {tasks:?}"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

async fn every_node_tool_answers_alike_in_image_and_copy_delivery(c: &Ctx) {
    // A pod holding GPUs, so allocation and processes have something to say.
    c.workload_pod("alike", 1, node::BASE_IMAGE);
    // An Xid of this case's own in the node's journal (an earlier boot, under a boot id of this case), so
    // the kernel-log tools have one finding both deliveries must report alike. Not the live /dev/kmsg:
    // what userspace writes there is stamped LOG_USER by the kernel and is rightly no kernel event (the
    // boundary case below).
    let boot = unique_boot_id();
    write_previous_boot_journal(c, &boot, "rnalike", "1b");
    let image = c.image_launcher().await;
    let copy = c.copy_launcher(node::BASE_IMAGE).await;
    // run_gpu_diagnostic runs only in NVIDIA's DCGM image, never in the probe image (its cases: dcgm.rs).
    for tool in mcp::tools::node_tools(mcp::LAUNCHER)
        .iter()
        .filter(|t| *t != "run_gpu_diagnostic")
    {
        let args = if *tool == "analyze_xid_errors" {
            json!({"node_name": c.name(), "since": "7d"})
        } else {
            json!({"node_name": c.name()})
        };
        let a = image.ok(tool, args.clone()).await;
        let b = copy.ok(tool, args).await;
        // From the fake NVML through the driver root, in a real container.
        if *tool != "get_pod_gpu_allocation" {
            assert!(
                has_str(&a, &gpu_uuid(0)) || has_str(&a, "5f1c1a5e"),
                "{tool}: no fake-NVML GPU in the answer: {a:#}"
            );
        }
        assert!(
            a["run"]["ran_in"]
                .as_str()
                .is_some_and(|r| r.starts_with(&format!("{}/gpu-probe-", c.ns))),
            "{tool}: {a:#}"
        );
        // This machine has no RDMA device: the topology says so plainly, and no NIC finding appears.
        if *tool == "inspect_topology" {
            assert!(
                has_str(&a, "none: this node has no RDMA device"),
                "{tool}: no plain NIC answer: {a:#}"
            );
        }
        assert!(
            !has_str(&a, "RDMA port") && !has_str(&a, "nearest RDMA NIC"),
            "{tool}: a NIC finding on a node without NICs"
        );
        if *tool == "analyze_xid_errors" {
            for (delivery, v) in [("image", &a), ("copy", &b)] {
                assert!(
                    has_str(v, &boot),
                    "{tool}: {delivery} delivery did not see this case's journal Xid: {v:#}"
                );
            }
        }
        assert_eq!(
            comparable(a.clone()),
            comparable(b.clone()),
            "{tool}: image and copy delivery disagree"
        );
        eprintln!(
            "{tool}: image {} ms, copy {} ms",
            a["run"]["total_millis"], b["run"]["total_millis"]
        );
    }
    image.stop().await;
    copy.stop().await;
    let _ = std::fs::remove_dir_all(c.node.dir.join("varlog/journal"));
    c.delete_workload("alike");
    c.assert_no_probe_pods();
}

/// No delivery flags at all: the launcher copies the node-probe next to it into an image the node already
/// has (the plain Debian base here; the probe image on the node is not a base it knows and is not chosen).
async fn default_delivery_needs_no_flags_and_no_published_image(c: &Ctx) {
    // An installed launcher: k8s-gpu-mcp with node-probe (stripped, as a release build is) beside it.
    let dir = c.tb.dir.join("installed");
    std::fs::create_dir_all(&dir).unwrap();
    let launcher = dir.join("k8s-gpu-mcp");
    if std::fs::hard_link(mcp::LAUNCHER, &launcher).is_err() {
        std::fs::copy(mcp::LAUNCHER, &launcher).unwrap();
    }
    std::fs::copy(
        c.images.bin_dir.join("node-probe-linux-amd64"),
        dir.join("node-probe"),
    )
    .unwrap();
    let l = mcp::start_exact(c.tb, User::Reader, &c.ns, &launcher, &[], &[]).await;
    for tool in &mcp::tools::node_tools(mcp::LAUNCHER) {
        let v = l.ok(tool, json!({"node_name": c.name()})).await;
        assert_eq!(v["node"], c.name(), "{tool}: {v:#}");
        eprintln!("{tool}: default delivery {} ms", v["run"]["total_millis"]);
    }
    let log = l.stderr();
    assert!(
        log.contains("probe delivery: copy into an image from the node"),
        "{log}"
    );
    assert!(
        log.contains(&format!("name={}", node::BASE_IMAGE))
            && log.contains("image=docker.io/library/debian@sha256:"),
        "the node's Debian base was not chosen by its digest: {log}"
    );
    l.stop().await;
    c.assert_no_probe_pods();
}

/// The real kernel's boundary: a process writing an Xid line into /dev/kmsg (as a hostile tenant's
/// privileged container could) gets it stamped LOG_USER by the kernel (`devkmsg_write`), and the probe reads
/// the record but never takes it for an event of the driver.
async fn a_userspace_write_into_the_real_kmsg_is_no_kernel_event(c: &Ctx) {
    let marker = unique("rnforged");
    // The kernel's ring buffer is shared by everything on this machine: the marker names our line. The
    // `<4>` asks for facility 0 (kernel); the kernel keeps the level and forces the facility to user.
    let line = format!(
        "<4>NVRM: Xid (PCI:0000:1b:00): 79, pid=4242, name={marker}, GPU has fallen off the bus.\n"
    );
    std::fs::write("/dev/kmsg", line).expect("write /dev/kmsg (root)");
    // The record is in the ring at facility user: /dev/kmsg's prefix is facility x 8 + level, so 12.
    // (Read directly: util-linux 2.38's `dmesg -r` prints facility + level, `<5>`, for the same record.)
    let ours = kmsg_records()
        .into_iter()
        .find(|r| r.contains(&marker))
        .unwrap_or_default();
    assert!(ours.starts_with("12,"), "not a LOG_USER record: {ours:?}");
    let l = c.image_launcher().await;
    let v = l
        .ok(
            "analyze_xid_errors",
            json!({"node_name": c.name(), "since": "10m"}),
        )
        .await;
    assert!(
        !has_str(&v["report"]["events"], &marker) && !has_str(&v["report"]["findings"], &marker),
        "a userspace write into /dev/kmsg was read as the driver's event: {v:#}"
    );
    let gpu0 = v["report"]["gpus"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["index"] == 0))
        .cloned()
        .unwrap_or_default();
    assert_eq!(gpu0["verdict"], "healthy", "{gpu0:#}");
    // The probe did read the live ring (the marker's record among them), not some other source.
    let log = &v["report"]["log"];
    assert_eq!(
        log["origin"], "kmsg",
        "the source is not /dev/kmsg: {log:#}"
    );
    assert!(log["records"].as_u64().unwrap_or(0) > 0, "{log:#}");
    let text = mcp::text(
        &l.call(
            "analyze_xid_errors",
            json!({"node_name": c.name(), "since": "10m"}),
        )
        .await,
    );
    assert!(!text.contains(&marker), "{text}");
    l.stop().await;
    c.assert_no_probe_pods();
}

/// Every record of the live /dev/kmsg as the kernel hands them out (`PRI,seq,usec,flags;text`), read
/// non-blocking to the end.
fn kmsg_records() -> Vec<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg (root)");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            // EPIPE: records overwritten under the reader; go on with the next.
            Err(e) if e.raw_os_error() == Some(32) => continue,
            Err(_) => break,
        }
    }
    out
}

/// A boot id no other case or run uses: the journal's entries are told apart by it.
fn unique_boot_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:032x}", nanos ^ ((std::process::id() as u128) << 96))
}

/// An earlier boot's journal (written by systemd's own journal-remote) under the node's /var/log, with the
/// kernel's Xid 79 for the GPU on bus `bus` 15 minutes before this machine booted. `prefix` names the
/// case in the line's process name, so a person reading the journal tells this run's entry from others.
fn write_previous_boot_journal(c: &Ctx, boot: &str, prefix: &str, bus: &str) {
    let journal_remote = "/lib/systemd/systemd-journal-remote";
    assert!(
        Path::new(journal_remote).exists(),
        "{journal_remote} missing: apt-get install systemd-journal-remote (.ci/run does)"
    );
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
        .expect("btime");
    let marker = unique(prefix);
    let mut export = String::new();
    for (ts, msg) in [
        (
            btime - 86400.0,
            "Linux version 6.8.0-48-generic (buildd@lcy02) #48-Ubuntu SMP".to_string(),
        ),
        (
            btime - 900.0,
            format!(
                "NVRM: Xid (PCI:0000:{bus}:00): 79, pid=4321, name={marker}, GPU has fallen off the bus."
            ),
        ),
    ] {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID={boot}\n\
             _TRANSPORT=kernel\nPRIORITY=4\nSYSLOG_IDENTIFIER=kernel\n_MACHINE_ID=0123456789abcdef0123456789abcdef\n\
             MESSAGE={msg}\n\n",
            (ts * 1e6) as u64
        ));
    }
    // The node's /var/log is its own directory (realnode.sh binds it).
    let dir = c
        .node
        .dir
        .join("varlog/journal/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(journal_remote)
        .arg("-o")
        .arg(dir.join("system.journal"))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run systemd-journal-remote");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), export.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "journal-remote failed");
}

/// Evidence that survives a reboot, on a real node: a journal of an earlier boot (written by systemd's own
/// journal-remote) under the node's /var/log, read by the node's journalctl through the host root.
async fn previous_boots_are_read_from_the_node_journal(c: &Ctx) {
    let boot = unique_boot_id();
    write_previous_boot_journal(c, &boot, "rnhist", "9a");
    let l = c.image_launcher().await;
    let r = l
        .call(
            "analyze_xid_errors",
            json!({"node_name": c.name(), "since": "7d"}),
        )
        .await;
    let text = mcp::text(&r);
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    assert_ne!(r.is_error, Some(true), "{text}");
    assert!(
        has_str(&v, "history.previous_boot"),
        "no previous-boot finding: {v:#}"
    );
    let f = v["report"]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["code"] == "history.previous_boot"))
        .cloned()
        .unwrap_or_default();
    assert!(
        has_str(&f, "Xid 79") && has_str(&f, "on 0000:9a:00.0") && has_str(&f, &boot),
        "the previous boot's Xid 79 and GPU are not named: {f:#}"
    );
    assert!(
        v["report"]["history"]["sources"]
            .as_array()
            .is_some_and(|s| s
                .iter()
                .any(|s| s["kind"] == "journal" && s["status"] == "read")),
        "{v:#}"
    );
    assert!(text.contains("9a:00"), "{text}");
    l.stop().await;
    let _ = std::fs::remove_dir_all(c.node.dir.join("varlog/journal"));
    c.assert_no_probe_pods();
}

async fn allocation_is_exact_from_the_kubelet_and_processes_are_named(c: &Ctx) {
    let uid = c.workload_pod("trainer", 2, node::BASE_IMAGE);
    let l = c.image_launcher().await;
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    assert_eq!(v["exact"], true, "{v:#}");
    let a = v["assignment"].as_array().expect("assignment");
    let trainer = a
        .iter()
        .find(|p| p["name"] == "trainer")
        .unwrap_or_else(|| panic!("trainer not in {v:#}"));
    assert_eq!(trainer["seen_by"], "both", "{trainer:#}");
    assert_eq!(trainer["uid"], uid.as_str());
    let devs = trainer["containers"][0]["devices"]
        .as_array()
        .expect("devices");
    assert_eq!(devs.len(), 2, "{trainer:#}");
    // The device plugin's ids are the fake NVML's UUIDs; each is matched to its GPU, except GPU 2, which
    // the fake NVML cannot open (the device is then named with the reason).
    for d in devs {
        let id = d["device_id"].as_str().unwrap_or_default();
        assert!(id.starts_with("GPU-5f1c1a5e-"), "{d:#}");
        if id == gpu_uuid(2) {
            assert!(has_str(&d["error"], id), "{d:#}");
        } else {
            assert_eq!(d["gpu_uuid"], id, "{d:#}");
        }
    }
    // The fake NVML reports the trainer's main process on GPU 0 (its host PID, as NVML would).
    let pid = c.node.container_pid(&c.wl, "trainer");
    c.node.set_fake_nvml("FAKE_NVML_PID", &pid.to_string());
    let v = l
        .ok("get_gpu_processes", json!({"node_name": c.name()}))
        .await;
    c.node.clear_fake_nvml("FAKE_NVML_PID");
    let owners = v["owners"].as_array().expect("owners");
    let o = owners
        .iter()
        .find(|o| o["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} not among {v:#}"));
    assert_eq!(o["owner"], "pod", "{o:#}");
    assert_eq!(o["pod"], "trainer", "{o:#}");
    assert_eq!(o["namespace"], c.wl.as_str(), "{o:#}");
    assert_eq!(o["container"], "main", "{o:#}");
    // The launcher's own probe pod (running during the call) is never listed as the node's workload.
    assert!(
        owners.iter().all(|o| !o["pod"]
            .as_str()
            .unwrap_or_default()
            .starts_with("gpu-probe-")),
        "a probe pod was reported as workload: {v:#}"
    );
    // The suite settled the node before this case: the trainer is its only workload, and the answer
    // names what it counted.
    assert_eq!(
        (v["pods_listed"].as_u64(), v["pods_named"].clone()),
        (Some(1), json!([format!("{}/trainer (Running)", c.wl)])),
        "only the trainer is the node's workload: {v:#}"
    );
    // The same pod as a workload: its GPUs come from the kubelet's assignment, read by the one probe.
    let v = l
        .ok(
            "diagnose_workload",
            json!({"namespace": c.wl, "pod": "trainer"}),
        )
        .await;
    let d = &v["diagnosis"];
    assert_eq!(
        (v["nodes_probed"].as_u64(), v["nodes_failed"].as_u64()),
        (Some(1), Some(0)),
        "{v:#}"
    );
    assert_eq!(d["pods"], 1, "{v:#}");
    assert_eq!(d["nodes"][0]["held_source"], "kubelet", "{v:#}");
    // GPU 0 and 1 are named; GPU 2 (which the fake NVML cannot open) may be the other device.
    assert!(
        d["gpus_held"]
            .as_u64()
            .is_some_and(|n| (1..=2).contains(&n)),
        "{v:#}"
    );
    l.stop().await;
    c.delete_workload("trainer");
    c.assert_no_probe_pods();
}

/// A rank of a small training job on the real node: a container that prints what a PyTorch/NCCL rank
/// prints (written here from the public formats: NCCL's `NCCL_DEBUG=INFO` init lines, PyTorch's
/// ProcessGroupNCCL watchdog, the CUDA runtime's error string as PyTorch raises it). Its NCCL busId is
/// that of the GPU the kubelet gave it (the device plugin's NVIDIA_VISIBLE_DEVICES, the fake NVML's PCI
/// buses). No `$$` or `$(`: the kubelet expands `$(VAR)` in a container's command and turns `$$` into `$`.
/// `crash`: its first run dies on a CUDA ECC error (exit 1) and the restarted run prints nothing
/// of use, so the error is only in the previous log.
fn rank_script(pod: &str, rank: u32, crash: bool) -> String {
    let mut s = format!(
        r#"case "$NVIDIA_VISIBLE_DEVICES" in *0) bus=1b000 ;; *1) bus=43000 ;; *2) bus=52000 ;; *) bus=c3000 ;; esac
if [ -e /state/ran ]; then
  echo "[rank{rank}] train.py started again (attempt 2); waiting for the other ranks"
  exec sleep 3600
fi
touch /state/ran
echo "{pod}:4{rank}17:4{rank}17 [0] NCCL INFO Bootstrap : Using eth0:10.4.0.1{rank}<0>"
echo "{pod}:4{rank}17:4{rank}17 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB eth0:10.4.0.1{rank}<0>"
echo "{pod}:4{rank}17:4{rank}17 [0] NCCL INFO Using network IB"
echo "{pod}:4{rank}17:4{rank}58 [0] NCCL INFO comm 0x5581e3c0{rank}000 rank {rank} nranks 3 cudaDev 0 nvmlDev 0 busId $bus commId 0x9c1e22d04b7a3f15 - Init COMPLETE"
for i in 1 2 3 4 5; do echo "[rank{rank}] step 730$i | loss 2.41$i | lr 2.50e-04 | 512 ms/step"; done
"#
    );
    if crash {
        s.push_str(&format!(
            r#"echo "[rank{rank}]: Traceback (most recent call last):" >&2
echo "[rank{rank}]:   File \"/workspace/train.py\", line 188, in <module>" >&2
echo "[rank{rank}]:     loss.backward()" >&2
echo "[rank{rank}]: RuntimeError: CUDA error: uncorrectable ECC error encountered" >&2
echo "[rank{rank}]: CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect." >&2
exit 1
"#
        ));
    } else {
        let pre = format!(
            "[rank{rank}]:[E1123 00:52:11.40{rank}113 {} torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:616] [PG ID 0 PG GUID 0(default_pg) Rank {rank}]",
            4100 + rank
        );
        s.push_str(&format!(
            r#"echo "{pre} Watchdog caught collective operation timeout: WorkNCCL(SeqNum=733, OpType=ALLREDUCE, NumelIn=4096, NumelOut=4096, Timeout(ms)=600000) ran for 60001{rank} milliseconds before timing out." >&2
echo "{pre} Exception (either an error or timeout) detected by watchdog at work: 733, last enqueued NCCL work: 733, last completed NCCL work: 732." >&2
exec sleep 3600
"#
        ));
    }
    s
}

/// Ranks whose containers print real-format NCCL, PyTorch and CUDA lines, read end to end through the API
/// server from the kubelet's container logs; rank 1 died on a CUDA ECC error and was restarted, so its
/// error is only in its previous log.
async fn diagnose_workload_reads_the_ranks_logs_and_a_restarted_containers_previous_log(c: &Ctx) {
    let run = unique("rnlog");
    let pods: Vec<String> = (0..3).map(|r| format!("rn-rank-{r}")).collect();
    let mut yaml = String::new();
    for (r, pod) in pods.iter().enumerate() {
        // The script as a JSON string (a valid YAML scalar): no quoting of its own to get right.
        let script = serde_json::to_string(&rank_script(pod, r as u32, r == 1)).unwrap();
        yaml += &format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  namespace: {wl}
  labels: {{run: {run}, batch.kubernetes.io/job-completion-index: "{r}"}}
spec:
  nodeName: {node}
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  restartPolicy: Always
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: [sh, -c, {script}]
    resources: {{limits: {{nvidia.com/gpu: 1}}}}
    volumeMounts: [{{name: state, mountPath: /state}}]
  volumes: [{{name: state, emptyDir: {{}}}}]
---
"#,
            wl = c.wl,
            node = c.name(),
            image = node::BASE_IMAGE,
        );
    }
    c.tb.apply(&yaml);
    // Rank 1 has run, failed and runs again (restartCount >= 1, running); ranks 0 and 2 have logged their
    // timeouts. The kubelet's back-off decides when the restart comes: a generous deadline, no fixed wait.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let state = c.tb.kubectl(&[
            "-n",
            &c.wl,
            "get",
            "pod",
            &pods[1],
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}",
        ]);
        let mut f = state.split_whitespace();
        let restarted = f.next().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) >= 1;
        let running = f.next().is_some();
        let logged = [&pods[0], &pods[2]].iter().all(|p| {
            c.tb.kubectl_as(User::Admin, &["-n", &c.wl, "logs", p], None)
                .stdout
                .windows(b"Watchdog caught".len())
                .any(|w| w == b"Watchdog caught")
        });
        if restarted && running && logged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rank 1 not restarted and running ({state}), or the others' timeouts not logged: {}",
            c.tb.kubectl(&["-n", &c.wl, "get", "pods", "-o", "wide"])
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let l = c.image_launcher().await;
    let r = l
        .call(
            "diagnose_workload",
            json!({"namespace": c.wl, "label_selector": format!("run={run}")}),
        )
        .await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}");
    let v = r.structured_content.clone().expect("structured");
    eprintln!("{text}");
    let d = &v["diagnosis"];
    assert_eq!(d["pods"], 3, "{text}");
    assert_eq!(d["logs_read"], 3, "{text}");
    assert!(
        d["not_examined"].is_null(),
        "everything was examined: {text}"
    );
    // Rank 1's own evidence is one suspect (its pod, or the GPU it sits on when the probe finds that GPU
    // faulty): its error from the previous run's log, the collective it left the others waiting in, its
    // restart. Node-wide findings (the fake NVML's missing GPU) name every pod of the node besides.
    let all = d["suspects"].as_array().expect("suspects");
    let codes_of = |s: &Value| -> Vec<String> {
        std::iter::once(&s["code"])
            .chain(s["also"].as_array().into_iter().flatten())
            .filter_map(|c| c.as_str().map(String::from))
            .collect()
    };
    let holding: Vec<&Value> = all
        .iter()
        .filter(|s| codes_of(s).iter().any(|c| c == "cuda.ecc_uncorrectable"))
        .collect();
    assert_eq!(holding.len(), 1, "{text}");
    let s = holding[0];
    assert_eq!(s["node"], c.name(), "{s:#}");
    let ranks = s["ranks"].to_string();
    assert!(
        ranks.contains("index 1") && ranks.contains("rank 1"),
        "{s:#}"
    );
    assert!(
        s["pods"]
            .as_array()
            .is_some_and(|p| p.contains(&json!(pods[1]))),
        "{s:#}"
    );
    let codes = codes_of(s);
    for c in ["collective.lagging_rank", "pod.restarting"] {
        assert!(codes.iter().any(|x| x == c), "{c} not in {codes:?}");
        assert_eq!(
            all.iter()
                .filter(|x| codes_of(x).iter().any(|y| y == c))
                .count(),
            1,
            "{c} in more than one suspect: {text}"
        );
    }
    assert!(
        s["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().is_some_and(|e| e.contains("[previous] log:")
                && e.contains("RuntimeError: CUDA error: uncorrectable ECC error encountered"))),
        "the previous run's error is not quoted: {s:#}"
    );
    // Its GPU is the one the kubelet gave it (the device plugin's NVIDIA_VISIBLE_DEVICES names the fake
    // NVML's UUID, which ends in the index), except GPU 2, whose handle the fake NVML refuses: no probe can
    // say which GPU that is.
    let visible = c.tb.kubectl(&[
        "-n",
        &c.wl,
        "exec",
        &pods[1],
        "--",
        "printenv",
        "NVIDIA_VISIBLE_DEVICES",
    ]);
    let index = visible
        .trim()
        .chars()
        .last()
        .and_then(|d| d.to_digit(10))
        .unwrap_or_else(|| panic!("NVIDIA_VISIBLE_DEVICES={visible}"));
    eprintln!("rank 1 holds {} (GPU {index})", visible.trim());
    if index != 2 {
        assert_eq!(s["gpu"], index, "{s:#}");
    }
    // The ranks that waited are consequences, not suspects.
    assert!(
        d["consequences"][0].as_str().is_some_and(
            |c| c.starts_with("2 of 3 pod(s) timed out waiting in ALLREDUCE SeqNum=733")
        ),
        "{text}"
    );
    for p in [&pods[0], &pods[2]] {
        assert!(
            all.iter()
                .all(|s| s["kind"] != "rank" || !s["pods"].to_string().contains(p.as_str())),
            "{p} is no rank suspect: {text}"
        );
    }
    l.stop().await;
    for p in &pods {
        c.delete_workload(p);
    }
    c.assert_no_probe_pods();
}

async fn ephemeral_container_in_a_real_pod(c: &Ctx) {
    // The driver's library as the NVIDIA container toolkit injects it: the node's file, bound read-only
    // over the path in the container (the image's own copy there is hidden).
    c.workload_pod_with(
        "target",
        1,
        node::GPU_WORKLOAD_IMAGE,
        &format!(
            "    volumeMounts:\n    - {{name: nvml, mountPath: {lib}, readOnly: true}}\n  volumes:\n  - name: nvml\n    hostPath: {{path: {node_lib}, type: File}}\n",
            lib = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
            node_lib = node::NODE_NVML_LIB,
        ),
    );
    let target = format!("{}/target", c.wl);
    // Ephemeral containers are operator-only (deploy/rbac.yaml): bind that role in the workload's namespace.
    c.tb.kubectl(&[
        "-n",
        &c.wl,
        "create",
        "rolebinding",
        "rn-ephemeral",
        "--clusterrole=k8s-gpu-mcp-operator",
        &format!("--user={}", User::Reader.name()),
    ]);
    let l = c
        .launcher(&[
            "--probe-mode",
            "ephemeral",
            "--target-pod",
            &target,
            "--probe-image",
            node::PROBE_IMAGE,
        ])
        .await;
    let r = l
        .call("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    let text = mcp::text(&r);
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    assert_ne!(r.is_error, Some(true), "{text}");
    assert!(
        v["run"]["ran_in"]
            .as_str()
            .is_some_and(|s| s.contains("ephemeral container")),
        "{v:#}"
    );
    // The GPUs come from the driver library injected into the target container, found through its root:
    // the probe image has no libnvidia-ml and an ephemeral container has no host root.
    assert_eq!(v["run"]["probe"]["source"], "nvml", "{v:#}");
    assert!(has_str(&v, &gpu_uuid(0)), "{v:#}");
    // Privileged, it still reads the kernel log. The first call's container still runs: this call execs in
    // it instead of adding another (the kubelet would start that only after its next relist). `max_age_s`
    // 0: the node read now, not the first call's kept reading.
    let x = l
        .ok(
            "analyze_xid_errors",
            json!({"node_name": c.name(), "max_age_s": 0}),
        )
        .await;
    let first = v["run"]["ran_in"].as_str().unwrap_or_default();
    let name = first
        .split("ephemeral container ")
        .nth(1)
        .unwrap_or_default()
        .trim_end_matches(')');
    assert!(
        x["run"]["ran_in"]
            .as_str()
            .is_some_and(|s| s.contains(&format!("{name}, added by an earlier call"))),
        "{x:#}"
    );
    l.stop().await;
    c.delete_workload("target");

    // The same image without the runtime's mount: its libnvidia-ml is the workload's own file (a tenant
    // can ship any), which the privileged probe must never load (SECURITY.md, ephemeral delivery).
    c.workload_pod("planted", 1, node::GPU_WORKLOAD_IMAGE);
    let l = c
        .launcher(&[
            "--probe-mode",
            "ephemeral",
            "--target-pod",
            &format!("{}/planted", c.wl),
            "--probe-image",
            node::PROBE_IMAGE,
        ])
        .await;
    let r = l
        .call("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    assert!(
        !has_str(&v, &gpu_uuid(0)),
        "the workload's own libnvidia-ml was loaded: {v:#}"
    );
    assert_ne!(v["run"]["probe"]["source"], "nvml", "{v:#}");
    l.stop().await;
    c.delete_workload("planted");
}

/// A cordoned GPU node tainted as GPU nodes are (`nvidia.com/gpu:NoSchedule`, then GKE's
/// `nvidia.com/gpu=present:NoSchedule`) and with a custom `NoExecute` taint, which the real kubelet enforces
/// at admission (a pod that does not tolerate it is rejected): probe pods of both deliveries run there.
async fn tainted_gpu_node_is_probed(c: &Ctx) {
    let n = c.name();
    c.tb.kubectl(&["cordon", n]);
    let taints = [
        "testbed/broken=yes:NoExecute",
        "nvidia.com/gpu:NoSchedule",
        "nvidia.com/gpu=present:NoSchedule",
    ];
    c.tb.kubectl(&["taint", "node", n, taints[0], taints[1]]);
    let image = c.image_launcher().await;
    let copy = c.copy_launcher(node::BASE_IMAGE).await;
    let mut results = Vec::new();
    for round in 0..2 {
        if round == 1 {
            // GKE's form of the GPU taint (same key and effect: it replaces the first).
            c.tb.kubectl(&["taint", "node", n, taints[2], "--overwrite"]);
        }
        for l in [&image, &copy] {
            results.push(l.call("get_gpu_health", json!({"node_name": n})).await);
        }
    }
    let spec =
        c.tb.kubectl(&["get", "node", n, "-o", "jsonpath={.spec.taints}"]);
    c.tb.kubectl(&["taint", "node", n, "testbed/broken-", "nvidia.com/gpu-"]);
    c.tb.kubectl(&["uncordon", n]);
    assert!(
        spec.contains("NoExecute") && spec.contains("\"value\":\"present\""),
        "{spec}"
    );
    for r in &results {
        assert_ne!(r.is_error, Some(true), "{}", mcp::text(r));
    }
    image.stop().await;
    copy.stop().await;
    c.assert_no_probe_pods();
}

/// Under DiskPressure the kubelet rejects every pod but critical ones: the probe asks for
/// system-node-critical, so it is admitted exactly when a node is in trouble; without the class it is not.
async fn node_under_disk_pressure_admits_the_critical_probe_pod(c: &Ctx) {
    let tb = c.tb;
    let images = &c.images;
    let n = tokio::task::block_in_place(|| RealNode::start_with(tb, images, true));
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let cond = c.tb.kubectl(&[
            "get",
            "node",
            &n.name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"DiskPressure\")].status}",
        ]);
        if cond.trim() == "True" {
            break;
        }
        assert!(Instant::now() < deadline, "no DiskPressure on {}", n.name);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let l = c.image_launcher().await;
    let v = l.ok("get_gpu_health", json!({"node_name": n.name})).await;
    assert_eq!(v["node"], n.name.as_str());
    l.stop().await;
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--probe-priority-class",
            "",
        ])
        .await;
    let err = l.err("get_gpu_health", json!({"node_name": n.name})).await;
    assert!(err.contains("DiskPressure"), "{err}");
    l.stop().await;
    c.assert_no_probe_pods();
    tokio::task::block_in_place(|| n.stop());
    let left = n.leftovers();
    assert!(left.is_empty(), "teardown left {left:?}");
}

/// A node that lists no trusted base (only the pause image and the untrusted probe image), as a managed
/// platform's GPU node does: with no flags the launcher pulls the fallback base by digest, and this machine
/// reaches no registry, so the real kubelet's pull fails. The call must end within seconds with the image,
/// the registry and the flags named, not at its timeout, and leave no pod. `--no-pull` never tries.
async fn a_fallback_pull_that_fails_is_a_clear_error_within_seconds(c: &Ctx) {
    let tb = c.tb;
    let bare = Images {
        archives: c
            .images
            .archives
            .iter()
            .filter(|p| {
                let f = p.file_name().unwrap().to_string_lossy();
                f == "pause.tar" || f == "probe-image.tar"
            })
            .cloned()
            .collect(),
        bin_dir: c.images.bin_dir.clone(),
    };
    assert_eq!(bare.archives.len(), 2, "{:?}", c.images.archives);
    let n = tokio::task::block_in_place(|| RealNode::start_with(tb, &bare, false));
    let bins = c.images.bin_dir.to_str().unwrap().to_string();
    let l = mcp::start_exact(
        c.tb,
        User::Reader,
        &c.ns,
        Path::new(mcp::LAUNCHER),
        &["--probe-bin-dir", &bins, "--probe-timeout", "90"],
        &[],
    )
    .await;
    let t = Instant::now();
    let err = l.err("get_gpu_health", json!({"node_name": n.name})).await;
    let took = t.elapsed();
    eprintln!("fallback pull failed after {} ms: {err}", took.as_millis());
    for want in [
        "pulling the fallback base debian:bookworm-20260918-slim (docker.io/library/debian@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251) from Docker Hub (docker.io) failed",
        "ErrImagePull",
        "--probe-image IMAGE@sha256:DIGEST",
        "--no-pull",
    ] {
        assert!(err.contains(want), "no `{want}` in: {err}");
    }
    // Seconds, not the 90 s timeout: the kubelet's first failed pull ends the call.
    assert!(took < Duration::from_secs(45), "took {took:?}: {err}");
    l.stop().await;
    c.assert_no_probe_pods();
    let l = mcp::start_exact(
        c.tb,
        User::Reader,
        &c.ns,
        Path::new(mcp::LAUNCHER),
        &["--probe-bin-dir", &bins, "--no-pull"],
        &[],
    )
    .await;
    let err = l.err("get_gpu_health", json!({"node_name": n.name})).await;
    assert!(
        err.contains("has no image node-probe can be copied into"),
        "{err}"
    );
    assert!(err.contains("--no-pull is set"), "{err}");
    assert!(!l.stderr().contains("creating probe pod"), "{}", l.stderr());
    l.stop().await;
    c.assert_no_probe_pods();
    tokio::task::block_in_place(|| n.stop());
    let left = n.leftovers();
    assert!(left.is_empty(), "teardown left {left:?}");
}

async fn copy_delivery_into_broken_images_fails_clearly(c: &Ctx) {
    for (image, expect) in [
        (node::NOSHELL_IMAGE, "sh"),
        (node::MUSL_IMAGE, "glibc"),
        (node::NOSLEEP_IMAGE, "sleep"),
    ] {
        let l = c.copy_launcher(image).await;
        let err = l
            .err("get_gpu_health", json!({"node_name": c.name()}))
            .await;
        eprintln!("{image}: {err}");
        assert!(
            err.contains(image),
            "the error does not name {image}: {err}"
        );
        assert!(
            err.contains(expect),
            "the error for {image} does not say `{expect}`: {err}"
        );
        l.stop().await;
        c.assert_no_probe_pods();
    }
}

async fn pod_security_denial_names_the_namespace_and_the_fix(c: &Ctx) {
    let ns = unique("rn-baseline");
    // The reader's roles, but no Pod Security label: the cluster default (baseline) refuses the probe.
    c.tb.probe_namespace(&ns, User::Reader);
    c.tb.kubectl(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce-",
    ]);
    let l = mcp::start(
        c.tb,
        User::Reader,
        &ns,
        &["--probe-image", node::PROBE_IMAGE],
    )
    .await;
    let err = l
        .err("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    assert!(err.contains("PodSecurity"), "{err}");
    assert!(
        err.contains(&format!("Pod Security admission of namespace {ns}")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "kubectl label namespace {ns} pod-security.kubernetes.io/enforce=privileged"
        )),
        "{err}"
    );
    assert!(!err.contains("RBAC"), "not an RBAC problem: {err}");
    l.stop().await;
}

/// `k8s-gpu-mcp check` against a real kubelet: the node's Ready condition and its image list are the
/// kubelet's own, and the probe image the suite imported into containerd is found there.
async fn check_passes_and_finds_the_probe_image_on_the_real_node(c: &Ctx) {
    // By the digest the node lists for it: a tag would only be warned about.
    let by_digest =
        c.tb.kubectl(&[
            "get",
            "node",
            c.name(),
            "-o",
            "jsonpath={.status.images[*].names}",
        ])
        .split(['[', ']', ',', '"', ' '])
        .find(|n| n.starts_with("testbed.invalid/node-probe@sha256:"))
        .expect("the node lists the probe image by digest")
        .to_string();
    for (image, status) in [(by_digest.as_str(), "ok"), (node::PROBE_IMAGE, "warn")] {
        let report = trust::check_json(c, &["--probe-image", image]);
        assert_eq!(report["ok"], true, "{report:#}");
        let check = |name: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
                .clone()
        };
        let node = check(&format!("node/{}", c.name()));
        assert_eq!(node["status"], "ok", "{node}");
        let image_check = check(&format!("image/{}", c.name()));
        assert_eq!(image_check["status"], status, "{image_check}");
        let detail = image_check["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with(&format!("{image} is on the node")),
            "{detail}"
        );
        if status == "warn" {
            assert!(detail.contains("given by tag"), "{detail}");
        }
        assert_eq!(check("admission")["status"], "ok");
    }
}

async fn launcher_killed_mid_call_leaves_a_pod_the_kubelet_ends_and_gc_removes(c: &Ctx) {
    // NVML hangs in this call, so the launcher is killed while its probe pod runs.
    c.node.set_fake_nvml("FAKE_NVML_HANG_SECS", "120");
    let deadline_secs = 8;
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--probe-deadline",
            &deadline_secs.to_string(),
        ])
        .await;
    let _pending = l
        .start_call("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    let t = Instant::now();
    let pod = loop {
        let running = c.tb.kubectl(&[
            "-n",
            &c.ns,
            "get",
            "pods",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        if let Some(p) = running.split_whitespace().next() {
            break p.to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no probe pod started: {}",
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Wait until the exec reached node-probe (its process runs in the pod's cgroup), then kill the
    // launcher without a chance to clean up.
    let uid = c.tb.kubectl(&[
        "-n",
        &c.ns,
        "get",
        "pod",
        &pod,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    // On a loaded machine the kubelet may end the pod at its deadline first: the rest holds as well.
    let t = Instant::now();
    while !node_probe_runs_in(uid.trim()) {
        let phase = c.tb.kubectl(&[
            "-n",
            &c.ns,
            "get",
            "pod",
            &pod,
            "-o",
            "jsonpath={.status.phase}",
        ]);
        if phase.trim() != "Running" {
            eprintln!("{pod} ended ({}) before node-probe ran", phase.trim());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "node-probe never ran in {pod}: {}",
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    l.kill9();
    c.node.clear_fake_nvml("FAKE_NVML_HANG_SECS");
    // The kubelet ends the pod at its activeDeadlineSeconds.
    let t = Instant::now();
    let (phase, reason) = loop {
        let s = c.tb.kubectl(&[
            "-n",
            &c.ns,
            "get",
            "pod",
            &pod,
            "-o",
            "jsonpath={.status.phase}/{.status.reason}",
        ]);
        let s = s.trim().to_string();
        if s.starts_with("Failed") || t.elapsed() > Duration::from_secs(deadline_secs + 120) {
            let (p, r) = s.split_once('/').unwrap_or((&s, ""));
            break (p.to_string(), r.to_string());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!(
        "kubelet ended {pod}: {phase}/{reason} after {:?}",
        t.elapsed()
    );
    assert_eq!(phase, "Failed");
    assert_eq!(reason, "DeadlineExceeded");
    // The next start's housekeeping: `gc` deletes what a dead launcher left.
    let out = Command::new(mcp::LAUNCHER)
        .args(["gc", "--namespace", &c.ns, "--kubeconfig"])
        .arg(c.tb.kubeconfig(User::Reader))
        .env_remove("KUBECONFIG")
        .output()
        .expect("run k8s-gpu-mcp gc");
    assert!(
        out.status.success(),
        "gc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(&pod), "gc did not name {pod}: {report}");
    c.assert_no_probe_pods();
}

/// Whether a `node-probe` process runs in the pod of this UID (its cgroup path names the pod; the
/// systemd cgroup driver writes the UID with underscores).
fn node_probe_runs_in(uid: &str) -> bool {
    let underscored = uid.replace('-', "_");
    // An unreadable /proc would read as "no probe runs": the check this answers could not fail.
    let procs = std::fs::read_dir("/proc").expect("/proc");
    procs.flatten().any(|p| {
        let dir = p.path();
        std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == "node-probe")
            && std::fs::read_to_string(dir.join("cgroup"))
                .is_ok_and(|cg| cg.contains(uid) || cg.contains(&underscored))
    })
}
