//! DCGM's diagnostic on the real node (issue 56): `run_gpu_diagnostic` runs node-probe copied into NVIDIA's
//! DCGM image as the node lists it (the testbed's [`node::DCGM_IMAGE`]: the Debian base with the fake dcgmi,
//! tests/fake-dcgm), by its digest, with nothing standing on the node; only idle GPUs are given to dcgmi,
//! and a cancelled task ends the run and its pod within seconds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolResponse, CancelTaskParams, GetTaskParams, TaskStatus};
use serde_json::{Value, json};

use crate::mcp::{self, harness};
use crate::testbed::User;
use crate::{Ctx, dra_device, node};

/// What the fake dcgmi recorded of its last run (arguments, working directory, LD_LIBRARY_PATH, PID), on the
/// node; the PID of its long-running child is beside it (`.child`).
fn record(c: &Ctx) -> PathBuf {
    c.node.host_path("/run/fake-dcgmi.record")
}

/// The fake dcgmi's settings for the cases below; they go when this drops, on every path.
struct FakeDcgmi<'a>(&'a Ctx);

impl<'a> FakeDcgmi<'a> {
    fn set(c: &'a Ctx, settings: &str) -> Self {
        let _ = std::fs::remove_file(record(c));
        let _ = std::fs::remove_file(record(c).with_extension("record.child"));
        c.node.set_fake_dcgmi(&format!(
            "{settings}\nFAKE_DCGMI_RECORD=/proc/1/root/run/fake-dcgmi.record\n"
        ));
        FakeDcgmi(c)
    }
}

impl Drop for FakeDcgmi<'_> {
    fn drop(&mut self) {
        self.0.node.set_fake_dcgmi("");
    }
}

/// The host's libc in the fake driver's directory for one case, removed when this drops.
struct HostLibcBesideTheDriver<'a>(&'a Ctx);

impl<'a> HostLibcBesideTheDriver<'a> {
    fn put(c: &'a Ctx) -> Self {
        let dir = std::path::Path::new(node::NODE_NVML_LIB).parent().unwrap();
        let out = c.node.in_ns(&[
            "cp",
            "-L",
            "/lib/x86_64-linux-gnu/libc.so.6",
            dir.join("libc.so.6").to_str().unwrap(),
        ]);
        assert!(out.status.success(), "copy the host's libc: {out:?}");
        HostLibcBesideTheDriver(c)
    }
}

impl Drop for HostLibcBesideTheDriver<'_> {
    fn drop(&mut self) {
        let dir = std::path::Path::new(node::NODE_NVML_LIB).parent().unwrap();
        let _ = self
            .0
            .node
            .in_ns(&["rm", "-f", dir.join("libc.so.6").to_str().unwrap()]);
    }
}

fn default_launcher_flags(c: &Ctx) -> Vec<String> {
    vec![
        "--probe-bin-dir".into(),
        c.images.bin_dir.to_str().unwrap().into(),
    ]
}

/// Level 1 on all four GPUs with no flag but the builds' directory: the probe pod runs NVIDIA's DCGM image by
/// the digest the node lists; GPU 0 (a pod's DRA claim and a process), GPU 1 (NVML cannot list its processes)
/// and GPU 2 (NVML cannot open it) are not tested and say why, naming the holders; only GPU 3 goes to dcgmi,
/// which finds the host driver's libraries; it passes, nothing reads "fail", and no pod is left. In the probe
/// image (image delivery) nothing runs, and the answer names the flag to set.
pub async fn run_gpu_diagnostic_tests_only_idle_gpus_in_nvidias_dcgm_image(c: &Ctx) {
    let _fake = FakeDcgmi::set(
        c,
        "FAKE_DCGMI_OUTPUT=/opt/fake-dcgmi/v4-level1-pass-gpu3.0.json",
    );
    // GPU 0 through a DRA claim (it has a process too). In the fake NVML, GPU 1's processes cannot be listed
    // and GPU 2 cannot be opened: GPU 3 is the one idle GPU.
    let held = [dra_device(0)];
    let devices: Vec<u32> = held
        .iter()
        .map(|d| d.trim_start_matches("gpu-").parse().unwrap())
        .collect();
    let _pod = c.dra_workload_pod("dcgm-busy", &devices, node::BASE_IMAGE);

    // The driver's directory holds the host's libc too, as Ubuntu's /usr/lib/x86_64-linux-gnu does; the
    // DCGM image's glibc is another (realnode.sh builds it on trixie): given that directory, the image's
    // loader would load the host's libc and dcgmi (here its shell) would not start.
    let _libc = HostLibcBesideTheDriver::put(c);
    let flags = default_launcher_flags(c);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let l = c.launcher(&flags).await;
    let r = l
        .call(
            "run_gpu_diagnostic",
            json!({"node_name": c.name(), "gpus": "0,1,2,3", "level": 1}),
        )
        .await;
    let log = l.stderr();
    l.stop().await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}\n{log}");
    let v = r.structured_content.clone().expect("structured content");
    let report = &v["report"];
    let tested: Vec<(Value, Value)> = report["gpus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["index"].clone(), g["outcome"].clone()))
        .collect();
    assert_eq!(tested, vec![(json!(3), json!("passed"))], "{report:#}");
    assert_eq!(report["outcome"], "passed", "{report:#}");
    let why: Vec<(Value, Value)> = report["not_tested"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| (g["index"].clone(), g["why"].clone()))
        .collect();
    assert_eq!(
        why,
        vec![
            (json!(0), json!("held")),
            (json!(1), json!("unverified")),
            (json!(2), json!("unreadable")),
        ],
        "{report:#}"
    );
    let not_tested = report["not_tested"][0].to_string();
    for needle in ["dcgm-busy", "4242"] {
        assert!(
            not_tested.contains(needle),
            "{needle} not named among the holders: {not_tested}"
        );
    }
    assert!(
        !text.to_lowercase().contains("fail"),
        "a held or passing GPU reads as failed: {text}"
    );
    // The image: NVIDIA's DCGM repository, by the digest the node lists.
    assert!(
        log.contains("image=nvcr.io/nvidia/cloud-native/dcgm@sha256:")
            && log.contains(&format!("name={}", node::DCGM_IMAGE)),
        "not run in the node's DCGM image by digest: {log}"
    );
    // What dcgmi got: the idle GPU only, and the node's driver libraries through the host root.
    let rec = std::fs::read_to_string(record(c)).expect("the fake dcgmi ran");
    assert!(rec.contains("args=diag -r 1 -j -i 3\n"), "{rec}");
    // Through a private directory of links to the driver's files alone, never the host's directory.
    let field = |k: &str| {
        rec.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_default()
            .to_string()
    };
    let ld = field("ld_library_path=");
    assert!(
        ld.contains("k8s-gpu-mcp-dcgm.") && ld.ends_with("/lib"),
        "dcgmi's LD_LIBRARY_PATH is not the run's own directory: {rec}"
    );
    let libs = field("ld_libs=");
    assert!(
        libs.split_whitespace().any(|l| l == "libnvidia-ml.so.1")
            && !libs.split_whitespace().any(|l| l.starts_with("libc.")),
        "dcgmi was not given the host driver's libraries alone: {rec}"
    );
    let host_glibc = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let image_glibc = field("glibc=");
    assert!(
        image_glibc.starts_with("glibc ") && image_glibc != host_glibc,
        "the DCGM image's glibc ({image_glibc}) is not another than the host's ({host_glibc}): {rec}"
    );
    c.delete_dra_workload("dcgm-busy");

    // The probe image (image delivery) has no dcgmi: not run, and the answer says what to set.
    let l = c.image_launcher().await;
    let v = l
        .ok(
            "run_gpu_diagnostic",
            json!({"node_name": c.name(), "gpus": "3", "level": 1}),
        )
        .await;
    l.stop().await;
    assert_eq!(v["report"]["outcome"], "not_run", "{v:#}");
    assert!(
        v["report"]["not_run_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no dcgmi") && r.contains("--dcgm-image")),
        "{v:#}"
    );
    c.assert_no_probe_pods();
}

/// A level-1 run as an MCP task whose dcgmi runs on (the fake's long child, as nvvs is dcgmi's): `tasks/cancel`
/// stops it in order (node-probe gets SIGTERM first and gives dcgmi its own stop) and then deletes the probe
/// pod, within seconds; the run's processes are gone from the node, and the task settles cancelled.
pub async fn a_cancelled_diagnostic_task_leaves_no_pod_and_no_process(c: &Ctx) {
    let _fake = FakeDcgmi::set(
        c,
        "FAKE_DCGMI_OUTPUT=/opt/fake-dcgmi/v4-level1-pass.0.json\nFAKE_DCGMI_SLEEP=600",
    );
    let flags = default_launcher_flags(c);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let l = mcp::start_with_tasks(c.tb, User::Reader, &c.ns, &flags).await;
    let args = json!({"node_name": c.name(), "gpus": "3", "level": 1});
    let task = match l
        .client
        .call_tool_once(harness::request("run_gpu_diagnostic", args.clone()))
        .await
    {
        Ok(CallToolResponse::Task(t)) => t.task,
        other => panic!("expected a task, got {other:?}\n{}", l.stderr()),
    };
    // dcgmi is running once its child's PID is recorded.
    let child_file = record(c).with_extension("record.child");
    let deadline = Instant::now() + Duration::from_secs(90);
    let child: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&child_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        let t = l
            .client
            .get_task(GetTaskParams::new(task.task_id.clone()))
            .await
            .expect("tasks/get");
        assert!(
            !t.task.status().is_terminal(),
            "the task ended before dcgmi ran: {t:?}\n{}",
            l.stderr()
        );
        assert!(
            Instant::now() < deadline,
            "dcgmi did not start in 90 s\n{}",
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The PID is the node's (its own PID namespace, which the hostPID pod shares): read its /proc.
    let alive = |pid: u32| c.node.host_path(&format!("/proc/{pid}")).exists();
    assert!(
        alive(child),
        "the fake dcgmi's child {child} is not running"
    );

    let t0 = Instant::now();
    l.client
        .cancel_task(CancelTaskParams::new(task.task_id.clone()))
        .await
        .expect("tasks/cancel");
    if let Err(left) = c.tb.wait_no_pods(&c.ns, Duration::from_secs(15)) {
        panic!(
            "probe pods 15 s after tasks/cancel: {left:?}\n{}",
            l.stderr()
        );
    }
    let pods_gone = t0.elapsed();
    while alive(child) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the diagnostic's process {child} still runs 20 s after tasks/cancel"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let procs_gone = t0.elapsed();
    // Stopped in order: node-probe got the cancel first and gave dcgmi its own stop (SIGTERM, which the real
    // dcgmi turns into dcgmStopDiagnostic) before the pod went; a pod deleted at once kills both outright.
    let rec = std::fs::read_to_string(record(c)).unwrap_or_default();
    assert!(
        rec.lines().any(|l| l == "stopped=TERM"),
        "dcgmi was not stopped through its own stop before the pod went: {rec}\n{}",
        l.stderr()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = l
            .client
            .get_task(GetTaskParams::new(task.task_id.clone()))
            .await
            .expect("tasks/get");
        if t.task.status().is_terminal() {
            assert_eq!(t.task.status(), TaskStatus::Cancelled);
            break;
        }
        assert!(Instant::now() < deadline, "the task did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "run_gpu_diagnostic task cancelled: 0 probe pods after {pods_gone:?}, dcgmi's child gone after {procs_gone:?}"
    );
    l.stop().await;
}

/// Level 2 with `keep_pods_off`, confirmed by the `confirm` argument (the test's client can ask no one): the
/// node carries the run's own NoSchedule taint while dcgmi runs (the probe pod, which tolerates everything, is
/// admitted by the real kubelet beside it), never `spec.unschedulable`, and the taint is gone once it answered.
/// The fake dcgmi runs 20 s: the node is read once it started, well inside that even on a loaded machine.
pub async fn keep_pods_off_cordons_the_node_for_the_run_only(c: &Ctx) {
    let _fake = FakeDcgmi::set(
        c,
        "FAKE_DCGMI_OUTPUT=/opt/fake-dcgmi/v4-level1-pass-gpu3.0.json\nFAKE_DCGMI_SLEEP=20",
    );
    crate::evidence::bind_operator(c);
    let bins = c.images.bin_dir.to_str().unwrap().to_string();
    let l = mcp::start(
        c.tb,
        User::Operator,
        &c.ns,
        &["--mode", "operator", "--probe-bin-dir", &bins],
    )
    .await;
    let args = json!({"node_name": c.name(), "gpus": "3", "level": 2, "keep_pods_off": true,
        "confirm": format!("{}/gpus/3/level-2", c.name())});
    let unschedulable = || {
        c.tb.kubectl(&[
            "get",
            "node",
            c.name(),
            "-o",
            "jsonpath={.spec.unschedulable}/{range .spec.taints[*]}{.key}:{.effect} {end}",
        ])
    };
    let child_file = record(c).with_extension("record.child");
    let during = async {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !child_file.exists() {
            assert!(Instant::now() < deadline, "dcgmi did not start in 90 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::task::block_in_place(unschedulable)
    };
    let (r, during) = tokio::join!(l.call("run_gpu_diagnostic", args), during);
    let log = l.stderr();
    l.stop().await;
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}\n{log}");
    let (cordon, taints) = during.trim().split_once('/').unwrap_or_default();
    assert_ne!(cordon, "true", "the run cordoned the node");
    assert!(
        taints.contains("keep-pods-off.k8s-gpu-mcp.io/run-") && taints.contains(":NoSchedule"),
        "the node had no run taint during the run: {during}"
    );
    let v = r.structured_content.clone().unwrap();
    assert!(
        v["kept_pods_off"]["after"]
            .as_str()
            .is_some_and(|k| k.contains("lifted")),
        "{v:#}"
    );
    let after = unschedulable();
    assert!(
        !after.contains("keep-pods-off.k8s-gpu-mcp.io/") && !after.starts_with("true"),
        "the run's taint or a cordon stays after the run: {after}"
    );
    c.assert_no_probe_pods();
}

/// Where the GPU Operator runs its standalone DCGM (DaemonSet `nvidia-dcgm` in `gpu-operator`, port 5555
/// named `dcgm`, as NVIDIA/gpu-operator `assets/state-dcgm/0400_dcgm.yml` makes it), the run goes to that
/// engine by its pod's IP address, with heartbeat (its image is DCGM 4.6), for the operator. Look-alikes (a tenant's
/// namespace, a bare pod, another owner) are `launcher::cluster::dcgm_engine`'s unit tests. The testbed has
/// no DaemonSet controller, so the engine pod is made as the controller would make it: owned by the
/// DaemonSet, on the node.
pub async fn the_gpu_operators_dcgm_engine_runs_the_diagnostic(c: &Ctx) {
    let _fake = FakeDcgmi::set(
        c,
        "FAKE_DCGMI_OUTPUT=/opt/fake-dcgmi/v4-level1-pass-gpu3.0.json",
    );
    let node_name = c.name().to_string();
    let image = node::DCGM_IMAGE;
    let engine_pod = |ns: &str, name: &str, uid: &str| {
        let owner = format!(
            "\n  ownerReferences: [{{apiVersion: apps/v1, kind: DaemonSet, name: nvidia-dcgm, uid: {uid}, controller: true}}]"
        );
        format!(
            r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: nvidia-dcgm}}{owner}
spec:
  nodeName: {node_name}
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: nvidia-dcgm-ctr
    image: {image}
    imagePullPolicy: Never
    command: [sleep, "3600"]
    ports: [{{name: dcgm, containerPort: 5555}}]
"#
        )
    };
    c.tb.apply(&format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: gpu-operator, labels: {{pod-security.kubernetes.io/enforce: privileged}}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: default, namespace: gpu-operator}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: nvidia-dcgm, namespace: gpu-operator, labels: {{app: nvidia-dcgm}}}}
spec:
  selector: {{matchLabels: {{app: nvidia-dcgm}}}}
  template:
    metadata: {{labels: {{app: nvidia-dcgm}}}}
    spec:
      containers: [{{name: nvidia-dcgm-ctr, image: {image}, ports: [{{name: dcgm, containerPort: 5555}}]}}]
"#
    ));
    let ds_uid = c.tb.kubectl(&[
        "-n",
        "gpu-operator",
        "get",
        "daemonset/nvidia-dcgm",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let ds_uid = ds_uid.trim().to_string();
    c.tb.apply(&engine_pod("gpu-operator", "nvidia-dcgm-rn1", &ds_uid));
    let ip = wait_ready_ip(c, "gpu-operator", "nvidia-dcgm-rn1");

    // Directing the run at an engine is the operator role's (a reader's runs on its own: tests/e2e/run_marks.rs).
    crate::evidence::bind_operator(c);
    let flags = default_launcher_flags(c);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let l = mcp::start(c.tb, User::Operator, &c.ns, &flags).await;
    let r = l
        .call(
            "run_gpu_diagnostic",
            json!({"node_name": c.name(), "gpus": "3", "level": 1}),
        )
        .await;
    let log = l.stderr();
    l.stop().await;
    let text = mcp::text(&r);
    // The pod and the DaemonSet go; the namespace stays (the testbed has no namespace controller to end it).
    c.tb.kubectl(&[
        "-n",
        "gpu-operator",
        "delete",
        "pod/nvidia-dcgm-rn1",
        "daemonset/nvidia-dcgm",
        "--grace-period=0",
        "--wait=false",
    ]);
    assert_ne!(r.is_error, Some(true), "{text}\n{log}");
    let v = r.structured_content.clone().expect("structured content");
    assert_eq!(v["report"]["outcome"], "passed", "{v:#}");
    let engine = v["engine"].as_str().unwrap_or_default();
    assert!(
        engine.contains("gpu-operator/nvidia-dcgm-rn1") && engine.contains("with heartbeat"),
        "{v:#}"
    );
    assert!(text.contains("GPU Operator's DCGM host engine"), "{text}");
    let rec = std::fs::read_to_string(record(c)).expect("the fake dcgmi ran");
    assert!(
        rec.contains(&format!(
            "args=diag -r 1 -j -i 3 --host {ip}:5555 --enable-heartbeat\n"
        )),
        "dcgmi was not sent to the operator's engine at {ip}: {rec}"
    );
    c.assert_no_probe_pods();
}

/// The pod's IP once it runs and is ready (the kubelet's word; 120 s at most).
pub(crate) fn wait_ready_ip(c: &Ctx, ns: &str, pod: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = c.tb.kubectl(&[
            "-n",
            ns,
            "get",
            "pod",
            pod,
            "-o",
            r#"jsonpath={.status.podIP} {.status.conditions[?(@.type=="Ready")].status}"#,
        ]);
        if let Some((ip, "True")) = out.trim().split_once(' ') {
            return ip.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{ns}/{pod} not ready in 120 s: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
