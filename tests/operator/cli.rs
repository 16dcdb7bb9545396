//! node-probe `kill` and `reset` through the real binary: every preflight outcome on simulated NVML facts
//! (tests/operator/fixtures/*.json) with fake host roots (a `/proc` tree with fd symlinks, driver
//! information files), snapshot-tested; refusal paths on the NVML source (fake libnvidia-ml); one real
//! kill of a child process this test spawns itself; and AMD resets on a fake MI300X host (amdgpu's sysfs
//! and KFD under the host root, `tests/support/amdgpu_tree.rs`) with a fake `amd-smi` run chrooted there.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/operator/fixtures/{name}.json"))
}

#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::{Document as Run, NodeProbe};

#[path = "../support/host_root.rs"]
mod host_root;
use host_root::HostRoot;

#[path = "../support/fake_kubelet.rs"]
mod fake_kubelet;

#[path = "../support/amdgpu_tree.rs"]
mod amdgpu_tree;

#[path = "../support/gaudi_tree.rs"]
mod gaudi_tree;

#[path = "../support/neuron_tree.rs"]
mod neuron_tree;

#[path = "../support/gate.rs"]
mod gate;
use fake_kubelet::{Kubelet, Served};

/// A fake node: its host root and the kubelet serving PodResources inside it (which the destructive
/// preflights ask: a GPU no source vouches for is refused).
struct Node {
    root: HostRoot,
    _kubelet: Served,
}

impl std::ops::Deref for Node {
    type Target = HostRoot;
    fn deref(&self) -> &HostRoot {
        &self.root
    }
}

impl Node {
    fn new(root: HostRoot, kubelet: Kubelet) -> Node {
        let served = fake_kubelet::serve(root.path(), kubelet);
        Node {
            root,
            _kubelet: served,
        }
    }
}

/// What these tests' nodes hold besides files.
impl HostRoot {
    /// A process: comm, cmdline, and a stat line with state, ppid and kernel flags.
    fn process(
        &self,
        pid: u32,
        comm: &str,
        cmdline: &[&str],
        state: &str,
        ppid: u32,
        flags: u64,
    ) -> &Self {
        let mut cl = Vec::new();
        for a in cmdline {
            cl.extend_from_slice(a.as_bytes());
            cl.push(0);
        }
        self.file(&format!("proc/{pid}/comm"), format!("{comm}\n"))
            .file(&format!("proc/{pid}/cmdline"), cl)
            .file(
                &format!("proc/{pid}/stat"),
                format!("{pid} ({comm}) {state} {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 1000 0 0\n"),
            )
            .file(&format!("proc/{pid}/cgroup"), "0::/system.slice\n")
    }
    /// The driver's information file of a GPU: its device minor.
    fn minor(&self, bdf: &str, minor: u32) -> &Self {
        self.file(
            &format!("proc/driver/nvidia/gpus/{bdf}/information"),
            format!("Model: \t\t NVIDIA GPU\nBus Location: \t {bdf}\nDevice Minor: \t {minor}\n"),
        )
    }
}

/// gpu-node-5 as its /proc shows it: init, a kernel worker, a shell, the training job on GPU 0 (pid 4242)
/// and its zombie child 5151, the device plugin on the control node; its kubelet assigns GPU 0 to the
/// training pod. `dcgm` adds DCGM's host engine holding GPU 1's node.
fn h100_root(dcgm: bool) -> Node {
    let d = HostRoot::short("op");
    d.file("proc/uptime", "5000.0 9000.0\n")
        .process(1, "systemd", &["/sbin/init"], "S", 0, 0x400100)
        .process(57, "kworker/3:1-events", &[], "I", 2, 0x208040)
        .process(3000, "bash", &["-bash"], "S", 1, 0x400000)
        .process(4242, "python3", &["python3", "train.py"], "S", 1, 0x400000)
        .process(5151, "python3", &[], "Z", 4242, 0x40040c)
        .process(
            2200,
            "nvidia-device-p",
            &["nvidia-device-plugin"],
            "S",
            1,
            0x400000,
        )
        .fds(
            4242,
            &[
                "/dev/nvidiactl",
                "/dev/nvidia0",
                "/dev/nvidia-uvm",
                "/dev/null",
            ],
        )
        .fds(2200, &["/dev/nvidiactl"])
        .minor("0000:18:00.0", 0)
        .minor("0000:2a:00.0", 1);
    if dcgm {
        d.process(
            2101,
            "nv-hostengine",
            &["nv-hostengine", "-n"],
            "S",
            1,
            0x400000,
        )
        .fds(2101, &["/dev/nvidiactl", "/dev/nvidia1", "/dev/nvidia0"]);
    }
    let kubelet = Kubelet {
        pods: vec![fake_kubelet::pod(
            "ml",
            "trainer-0",
            &[(
                "train",
                "nvidia.com/gpu",
                &["GPU-e40a74e1-49d6-4b35-0aed-94b89c21ff2e"],
            )],
        )],
        allocatable: None,
    };
    Node::new(d, kubelet)
}

/// gpu-node-7 (A100 HGX): nothing holds a GPU, and its kubelet lists no pod; Fabric Manager runs only
/// when `fm`.
fn a100_root(fm: bool) -> Node {
    Node::new(a100_host(fm), Kubelet::default())
}

/// gpu-node-7's host root alone, with no kubelet serving in it.
fn a100_host(fm: bool) -> HostRoot {
    let d = HostRoot::short("op");
    d.file("proc/uptime", "5000.0 9000.0\n")
        .process(1, "systemd", &["/sbin/init"], "S", 0, 0x400100)
        .minor("0000:07:00.0", 0)
        .minor("0000:0f:00.0", 1);
    if fm {
        d.process(
            77,
            "nv-fabricmanage",
            &["/usr/bin/nv-fabricmanager"],
            "S",
            1,
            0x400000,
        );
    }
    d
}

fn probe(args: &[&str], env: &[(&str, &str)]) -> Run {
    NodeProbe::new()
        .args(args)
        .envs(env.iter().copied())
        .document()
}

/// A simulated run: fixture facts, and the fake host root's /proc when given.
fn sim(fixture_name: &str, root: Option<&Node>, args: &[&str]) -> Value {
    sim_in(fixture_name, root.map(|n| &n.root), args)
}

/// `sim` on a bare host root (no kubelet unless the test serves one).
fn sim_in(fixture_name: &str, root: Option<&HostRoot>, args: &[&str]) -> Value {
    let fx = fixture(fixture_name);
    let mut all: Vec<&str> = vec![
        "--fixture",
        fx.to_str().unwrap(),
        "--node-name",
        "gpu-node-5",
    ];
    let root_s;
    if let Some(r) = root {
        root_s = r.path().to_str().unwrap().to_string();
        all.extend(["--host-root", root_s.as_str()]);
    }
    all.extend(args);
    let run = probe(&all, &[]);
    assert_eq!(
        run.code, 0,
        "refusals are successful documents: {}",
        run.doc
    );
    run.doc
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/operator"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_json_snapshot!($name, $value, {".probe.probe_version" => "[version]"});
        });
    };
}

fn blocked(doc: &Value, report: &str) -> Vec<String> {
    doc[report]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "block")
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

fn status_of(doc: &Value, report: &str, check: &str) -> String {
    doc[report]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check} in {doc}"))["status"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---- kill ---------------------------------------------------------------------------------------

#[test]
fn kill_allowed_simulated() {
    let root = h100_root(false);
    let doc = sim(
        "h100-hgx",
        Some(&root),
        &["kill", "--pid", "4242", "--grace-seconds", "30"],
    );
    let k = &doc["kill"];
    assert_eq!(k["allowed"], true);
    assert_eq!(k["simulated"], true);
    assert_eq!(k["result"], "simulated");
    assert_eq!(k["gpus"], serde_json::json!([0]));
    assert_eq!(k["cmdline"], "python3 train.py");
    assert!(
        k.get("outcome").is_none(),
        "nothing is signalled in simulated mode"
    );
    snap!("kill_allowed_simulated", doc);
}

#[test]
fn kill_dry_run() {
    let root = h100_root(false);
    let doc = sim(
        "h100-hgx",
        Some(&root),
        &["kill", "--pid", "4242", "--dry-run"],
    );
    assert_eq!(doc["kill"]["result"], "dry_run");
    assert_eq!(doc["kill"]["grace_seconds"], 10);
    snap!("kill_dry_run", doc);
}

#[test]
fn kill_refuses_init() {
    let root = h100_root(false);
    let doc = sim("h100-hgx", Some(&root), &["kill", "--pid", "1"]);
    assert_eq!(doc["kill"]["allowed"], false);
    assert_eq!(doc["kill"]["result"], "refused");
    assert_eq!(blocked(&doc, "kill"), ["not_init", "uses_gpu_on_node"]);
    snap!("kill_refuses_init", doc);
}

#[test]
fn kill_refuses_kernel_thread() {
    let root = h100_root(false);
    let doc = sim("h100-hgx", Some(&root), &["kill", "--pid", "57"]);
    assert_eq!(
        blocked(&doc, "kill"),
        ["not_kernel_thread", "uses_gpu_on_node"]
    );
    snap!("kill_refuses_kernel_thread", doc);
}

#[test]
fn kill_refuses_a_process_not_on_a_gpu() {
    let root = h100_root(false);
    let doc = sim("h100-hgx", Some(&root), &["kill", "--pid", "3000"]);
    assert_eq!(blocked(&doc, "kill"), ["uses_gpu_on_node"]);
    assert!(
        doc["kill"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("NVML lists no process 3000")
    );
    snap!("kill_refuses_not_on_gpu", doc);
}

#[test]
fn kill_refuses_a_zombie() {
    let root = h100_root(false);
    let doc = sim("h100-hgx", Some(&root), &["kill", "--pid", "5151"]);
    assert_eq!(blocked(&doc, "kill"), ["process_state"]);
    assert!(
        doc["kill"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("parent (pid 4242)")
    );
    snap!("kill_refuses_zombie", doc);
}

#[test]
fn kill_refuses_a_vanished_process_and_a_long_grace() {
    // NVML still lists 4242 but the host's /proc has no such process.
    let root = a100_root(false);
    let doc = sim(
        "h100-hgx",
        Some(&root),
        &["kill", "--pid", "4242", "--grace-seconds", "900"],
    );
    assert_eq!(
        blocked(&doc, "kill"),
        [
            "grace_period",
            "process_exists",
            "not_kernel_thread",
            "process_state"
        ]
    );
    snap!("kill_refuses_vanished_long_grace", doc);
}

// ---- reset --------------------------------------------------------------------------------------

#[test]
fn reset_allowed_on_an_idle_hopper_gpu() {
    let root = h100_root(false);
    let doc = sim("h100-hgx", Some(&root), &["reset", "--gpu", "1"]);
    let r = &doc["reset"];
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(r["result"], "simulated");
    assert_eq!(status_of(&doc, "reset", "nvswitch_fabric_manager"), "pass");
    // The device plugin holds only the control node; persistence is on.
    assert_eq!(status_of(&doc, "reset", "control_node_holders"), "warn");
    assert_eq!(status_of(&doc, "reset", "persistence_mode"), "warn");
    let plan: Vec<&str> = r["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        plan,
        ["persistence_off", "reset", "verify", "persistence_on"]
    );
    snap!("reset_allowed_hopper", doc);
}

#[test]
fn reset_refuses_a_busy_gpu() {
    let root = h100_root(false);
    let doc = sim(
        "h100-hgx",
        Some(&root),
        &["reset", "--gpu", "0", "--dry-run"],
    );
    assert_eq!(doc["reset"]["result"], "refused");
    // The kubelet names the training pod's hold on GPU 0 too.
    assert_eq!(
        blocked(&doc, "reset"),
        [
            "no_gpu_processes",
            "device_node_holders",
            "not_assigned_to_a_pod"
        ]
    );
    assert!(
        doc["reset"]["checks"]
            .to_string()
            .contains("ml/trainer-0 (container train) holds it through nvidia.com/gpu"),
        "{doc}"
    );
    snap!("reset_refuses_busy_gpu", doc);
}

#[test]
fn reset_refuses_while_dcgm_holds_the_device_node() {
    let root = h100_root(true);
    let doc = sim(
        "h100-hgx",
        Some(&root),
        &["reset", "--gpu", "GPU-7c1b2a90-3f4e-4d21-8b6a-5e9f0c1d2e3f"],
    );
    assert_eq!(blocked(&doc, "reset"), ["device_node_holders"]);
    let why = doc["reset"]["reasons"][0].as_str().unwrap();
    assert!(
        why.contains("pid 2101 nv-hostengine") && why.contains("DCGM host engine"),
        "{why}"
    );
    snap!("reset_refuses_dcgm_holder", doc);
}

#[test]
fn reset_ampere_nvswitch_needs_fabric_manager() {
    let root = a100_root(false);
    let doc = sim("a100-hgx", Some(&root), &["reset", "--gpu", "0"]);
    assert_eq!(blocked(&doc, "reset"), ["nvswitch_fabric_manager"]);
    snap!("reset_refuses_ampere_without_fm", doc);

    let root = a100_root(true);
    let doc = sim("a100-hgx", Some(&root), &["reset", "--gpu", "0"]);
    assert_eq!(doc["reset"]["allowed"], true, "{doc}");
    // The reset applies the pending MIG mode and the pending row remap.
    assert_eq!(status_of(&doc, "reset", "mig"), "warn");
    assert!(
        doc["reset"]["checks"]
            .to_string()
            .contains("row remapping pending: the reset applies it")
    );
    snap!("reset_allowed_ampere_with_fm_pending_mig_remap", doc);
}

#[test]
fn reset_refuses_a_lost_gpu_and_pre_ampere_nvlink() {
    // Facts of /proc come from the scenario itself (no host root).
    let doc = sim("v100-nvlink", None, &["reset", "--gpu", "0"]);
    assert!(blocked(&doc, "reset").contains(&"gpu_on_bus".to_string()));
    assert!(
        doc["reset"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("reboot")
    );
    snap!("reset_refuses_lost_gpu", doc);

    let doc = sim("v100-nvlink", None, &["reset", "--gpu", "1"]);
    assert_eq!(
        blocked(&doc, "reset"),
        ["device_node_holders", "nvswitch_fabric_manager"]
    );
    snap!("reset_refuses_pre_ampere_nvlink", doc);
}

#[test]
fn reset_refuses_an_unknown_gpu_and_rejects_a_bad_selector() {
    let doc = sim("a100-hgx", None, &["reset", "--gpu", "9"]);
    assert_eq!(blocked(&doc, "reset"), ["gpu_found"]);
    snap!("reset_refuses_unknown_gpu", doc);

    let fx = fixture("a100-hgx");
    let run = probe(
        &[
            "--fixture",
            fx.to_str().unwrap(),
            "reset",
            "--gpu",
            "nvidia3",
        ],
        &[],
    );
    assert_eq!(run.code, 2);
    assert_eq!(run.doc["error"]["kind"], "usage");
    let run = probe(
        &["--fixture", fx.to_str().unwrap(), "kill", "--pid", "-3"],
        &[],
    );
    assert_eq!(run.code, 2);
}

/// A kubelet that cannot answer (no socket: not running, or its root elsewhere; a socket file nobody
/// serves: it died) vouches for nothing: an idle GPU's reset is refused with the reason and the fix, and
/// goes ahead only where a person overrides, which the answer says.
#[test]
fn a_kubelet_that_cannot_answer_refuses_the_reset_unless_a_person_overrides() {
    for dead in [false, true] {
        let root = a100_host(true);
        if dead {
            let sock = fake_kubelet::socket_path(root.path());
            std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
            // Bound and closed: the file stays, and a connect is refused.
            drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        }
        let doc = sim_in("a100-hgx", Some(&root), &["reset", "--gpu", "1"]);
        assert_eq!(doc["reset"]["allowed"], false, "dead={dead}: {doc}");
        assert_eq!(
            blocked(&doc, "reset"),
            ["not_assigned_to_a_pod"],
            "dead={dead}"
        );
        let why = doc["reset"]["checks"].to_string();
        assert!(
            why.contains(
                "kubelet PodResources (device plugins): the kubelet's PodResources did not answer"
            ) && why.contains("restart the kubelet")
                && why.contains("override"),
            "dead={dead}: {why}"
        );
        // The person overrides what they saw: the unknowns of the refusal travel with the override.
        let seen = seen_arg(&unknown_items(&doc["reset"]));
        let args = vec![
            "reset",
            "--gpu",
            "1",
            "--approved",
            &seen,
            "--override-unknown-holders",
        ];
        let doc = sim_in("a100-hgx", Some(&root), &args);
        assert_eq!(doc["reset"]["allowed"], true, "dead={dead}: {doc}");
        assert_eq!(status_of(&doc, "reset", "not_assigned_to_a_pod"), "warn");
        assert!(doc["reset"]["checks"].to_string().contains("OVERRIDDEN"));
    }
    // The same node with its kubelet serving and listing no pod: the GPU is free, no override needed.
    let node = a100_root(true);
    let doc = sim("a100-hgx", Some(&node), &["reset", "--gpu", "1"]);
    assert_eq!(doc["reset"]["allowed"], true, "{doc}");
    assert_eq!(status_of(&doc, "reset", "not_assigned_to_a_pod"), "pass");
}

#[test]
fn simulated_holder_scan_without_host_root_blocks() {
    // a100-hgx carries no device-holder facts and no host root was given: the reset cannot be verified
    // safe, so it is refused rather than assumed free.
    let doc = sim("a100-hgx", None, &["reset", "--gpu", "1"]);
    assert!(blocked(&doc, "reset").contains(&"device_node_holders".to_string()));
}

// ---- NVML source (fake libnvidia-ml) ------------------------------------------------------------

#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
use fake_nvml::fake_lib;

#[test]
fn nvml_kill_refusals_never_signal() {
    let Some(lib) = fake_lib() else { return };
    let root = h100_root(false);
    let r = root.path().to_str().unwrap();
    // pid 1 and a pid the fake NVML does not list: refused; the fake host root's /proc/self is absent,
    // so signals could not reach its pids anyway and that is a reason too.
    for pid in ["1", "3000"] {
        let run = probe(
            &[
                "--nvml-lib",
                lib.to_str().unwrap(),
                "--host-root",
                r,
                "kill",
                "--pid",
                pid,
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.doc);
        let k = &run.doc["kill"];
        assert_eq!(k["allowed"], false, "{k}");
        assert_eq!(k["simulated"], false);
        assert!(k.get("outcome").is_none());
        assert!(
            blocked(&run.doc, "kill").contains(&"same_pid_namespace".to_string()),
            "{k}"
        );
    }
}

#[test]
fn nvml_reset_refusal_and_dry_run() {
    let Some(lib) = fake_lib() else { return };
    let root = h100_root(false);
    let r = root.path().to_str().unwrap();
    // GPU 0 of the fake runs pid 4242: refused, nothing run.
    let run = probe(
        &[
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--host-root",
            r,
            "reset",
            "--gpu",
            "0",
        ],
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.doc);
    assert_eq!(run.doc["reset"]["allowed"], false);
    assert!(blocked(&run.doc, "reset").contains(&"no_gpu_processes".to_string()));
    // No nvidia-smi under the fake root: that blocks too.
    assert!(blocked(&run.doc, "reset").contains(&"reset_tool".to_string()));
    assert!(run.doc["reset"].get("outcome").is_none());
}

#[test]
fn nvml_reset_runs_nvidia_smi_and_verifies() {
    let Some(lib) = fake_lib() else { return };
    let root = a100_root(false);
    let log = root.path().join("smi.log");
    let smi = root.path().join("fake-nvidia-smi");
    std::fs::write(
        &smi,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\necho \"GPU reset ok\"\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = root.path().to_str().unwrap();
    let args = |gpu: &str, dry: bool| {
        let mut a = vec![
            "--nvml-lib".to_string(),
            lib.to_str().unwrap().to_string(),
            "--host-root".into(),
            r.to_string(),
            "reset".into(),
            "--gpu".into(),
            gpu.to_string(),
            "--nvidia-smi".into(),
            smi.to_str().unwrap().to_string(),
        ];
        if dry {
            a.push("--dry-run".into());
        }
        a
    };
    // Dry run: preflight only, the tool is not run.
    let a = args("3", true);
    let run = probe(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let rep = &run.doc["reset"];
    if rep["allowed"] != true {
        panic!("fake GPU 3 should be resettable: {rep}");
    }
    assert_eq!(rep["result"], "dry_run");
    assert!(!log.exists(), "dry run ran nvidia-smi");

    let a = args("3", false);
    let run = probe(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    let rep = &run.doc["reset"];
    let outcome = &rep["outcome"];
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(calls.lines().any(|l| l == "-r -i 3"), "{calls}");
    assert_eq!(
        outcome["commands"].as_array().unwrap().last().unwrap()["exit_code"],
        0,
        "{rep}"
    );
    assert!(
        outcome["verification"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "gpu_back" && c["status"] == "pass"),
        "{rep}"
    );
    // The fake GPU comes back after its reset, so the action is verified and done (an expected value of
    // its own, not read back from the answer's `verified`).
    assert_eq!(outcome["verified"], true, "{rep}");
    assert_eq!(rep["result"], "done", "{rep}");
}

/// A real kill, of a child this test spawns itself and nothing else: the fake NVML reports the child's
/// pid on GPU 0 (FAKE_NVML_PID), the host root is `/` (this machine's /proc, same pid namespace). The test
/// sends the child nothing before it has looked: the child must already be dead of SIGKILL when the probe
/// returns: `try_wait` (waitpid with WNOHANG, which sends nothing) reaps the zombie, or says it still runs.
#[test]
fn nvml_real_kill_of_our_own_child() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;

    /// Kills and reaps the child only if the test ends without having reaped it (a failed assertion), so
    /// no stray process outlives the test.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    let Some(lib) = fake_lib() else { return };
    // A child that ignores SIGTERM, so the grace period and SIGKILL are exercised. It says "ready" once the
    // trap is set: a SIGTERM before that would end it early and prove nothing about SIGKILL.
    let mut child = Reap(
        Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sh"),
    );
    let mut ready = String::new();
    std::io::BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut ready)
        .expect("read the child's ready line");
    assert_eq!(ready, "ready\n");
    let pid = child.0.id().to_string();
    // The preflight the person sees, then the act bound to it, as the launcher makes them.
    let approved = approval_of(lib, &pid);
    let run = probe(
        &[
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--host-root",
            "/",
            "kill",
            "--pid",
            &pid,
            "--grace-seconds",
            "1",
            "--approved",
            &approved,
            // This machine runs no kubelet at `/`: no source can vouch for the GPU, so a person overrides.
            "--override-unknown-holders",
        ],
        &[("FAKE_NVML_PID", pid.as_str())],
    );
    // Before anything here signals it: the child has ended, and of SIGKILL (it ignores SIGTERM).
    let status = child
        .0
        .try_wait()
        .expect("waitpid on the child")
        .unwrap_or_else(|| {
            panic!(
                "the child {pid} still runs after the probe's kill: {}",
                run.doc
            )
        });
    assert_eq!(
        status.signal(),
        Some(9),
        "the child did not die of SIGKILL ({status}): {}",
        run.doc
    );
    let k = &run.doc["kill"];
    assert_eq!(k["allowed"], true, "{k}");
    assert_eq!(k["result"], "done", "{k}");
    assert_eq!(status_of(&run.doc, "kill", "gpu_holders_known"), "warn");
    assert!(k["checks"].to_string().contains("OVERRIDDEN"), "{k}");
    let o = &k["outcome"];
    assert_eq!(o["sigterm_sent"], true, "{k}");
    assert_eq!(o["exited_after_sigterm"], false, "{k}");
    assert_eq!(o["sigkill_sent"], true, "{k}");
    assert_eq!(o["exited"], true, "{k}");
    assert!(o["waited_ms"].as_u64().unwrap() >= 1000);
    assert!(
        o["memory_before"][0]["process_used_bytes"]
            .as_u64()
            .is_some(),
        "{k}"
    );
    assert!(!o["memory_after"].as_array().unwrap().is_empty());
    assert_eq!(
        status_of(&run.doc, "kill", "same_process_as_approved"),
        "pass"
    );
}

/// What a person approves in a kill's dry run (pid `pid` on this machine, the fake NVML naming it): the
/// process (start time, pod) and the unknowns they saw, as node-probe's `--approved` carries them.
fn approval_of(lib: &std::path::Path, pid: &str) -> String {
    let pre = probe(
        &[
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--host-root",
            "/",
            "kill",
            "--pid",
            pid,
            "--dry-run",
        ],
        &[("FAKE_NVML_PID", pid)],
    );
    let k = &pre.doc["kill"];
    let start = k["process"]["start_ticks"]
        .as_u64()
        .unwrap_or_else(|| panic!("{k}"));
    let seen: Vec<String> = k["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["unknown_holders"].as_array().cloned().unwrap_or_default())
        .map(|i| gpu_diag::operator::reset::unknown_digest(i.as_str().unwrap()))
        .collect();
    assert!(!seen.is_empty(), "no kubelet here: unknown holders ({k})");
    format!("start={start};pod=-;seen={}", seen.join(","))
}

/// A pid the person approved that now names another process (its start time differs: the one approved
/// exited and the kernel gave its pid to another) is refused and never signalled. The "other" process is a
/// child of this test whose start time is not the one approved.
#[test]
fn a_kill_of_a_pid_reused_since_the_approval_signals_nothing() {
    let Some(lib) = fake_lib() else { return };
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let pid = child.id().to_string();
    let approved = approval_of(lib, &pid);
    // The approval was of a process that started one tick earlier.
    let (start, rest) = approved
        .strip_prefix("start=")
        .unwrap()
        .split_once(';')
        .unwrap();
    let earlier = format!("start={};{rest}", start.parse::<u64>().unwrap() - 1);
    let run = probe(
        &[
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--host-root",
            "/",
            "kill",
            "--pid",
            &pid,
            "--grace-seconds",
            "1",
            "--approved",
            &earlier,
            "--override-unknown-holders",
        ],
        &[("FAKE_NVML_PID", pid.as_str())],
    );
    let still = child.try_wait().expect("waitpid").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(still, "the reused pid was signalled: {}", run.doc);
    let k = &run.doc["kill"];
    assert_eq!(k["result"], "refused", "{k}");
    assert_eq!(blocked(&run.doc, "kill"), ["same_process_as_approved"]);
    assert!(k.get("outcome").is_none(), "{k}");
    // A malformed approval is a usage error, never a kill.
    let bad = probe(
        &[
            "--nvml-lib",
            lib.to_str().unwrap(),
            "--host-root",
            "/",
            "kill",
            "--pid",
            &pid,
            "--approved",
            "start=1",
        ],
        &[],
    );
    assert_eq!(bad.doc["error"]["kind"], "usage", "{}", bad.doc);
}

#[test]
fn simulated_without_host_root_uses_the_scenarios_own_proc_facts() {
    // h100-hgx.json carries /proc facts and device holders of its own (what the launcher's local
    // simulated mode replays).
    let doc = sim("h100-hgx", None, &["kill", "--pid", "4242"]);
    assert_eq!(doc["kill"]["allowed"], true, "{doc}");
    assert_eq!(doc["kill"]["result"], "simulated");
    let doc = sim("h100-hgx", None, &["kill", "--pid", "5151"]);
    assert_eq!(blocked(&doc, "kill"), ["process_state"]);
    let doc = sim("h100-hgx", None, &["reset", "--gpu", "1"]);
    assert_eq!(doc["reset"]["allowed"], true, "{doc}");
    let doc = sim("h100-hgx", None, &["reset", "--gpu", "0"]);
    assert_eq!(
        blocked(&doc, "reset"),
        ["no_gpu_processes", "device_node_holders"]
    );
}

// ---- AMD ----------------------------------------------------------------------------------------

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

/// An MI300X node as the reset sees it: eight GPUs in one XGMI hive (amdgpu's sysfs and KFD), init, a
/// kernel log with one record from before, and a kubelet that lists no pod.
fn mi300x_node() -> Node {
    let d = HostRoot::short("amd");
    d.file("proc/uptime", "5000.0 9000.0\n")
        .process(1, "systemd", &["/sbin/init"], "S", 0, 0x400100)
        .file("dev/kmsg", "6,9000,100,-;Linux version 6.8.0-60-generic\n");
    amdgpu_tree::Node::new((0..8).map(amdgpu_tree::Gpu::mi300x).collect()).write(d.path());
    Node::new(d, Kubelet::default())
}

/// KFD's `gpu_id` of GPU `i` of `mi300x_node` (one KFD node per GPU after two CPU nodes).
fn mi300x_gpu_id(i: u32) -> u32 {
    10000 + (2 + i) * 7 + 1
}

/// `reset` of GPU `gpu` on `root`'s AMD GPUs (no NVIDIA library on the node).
fn amd_reset(root: &HostRoot, gpu: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "--nvml-lib",
        NO_NVML,
        "--host-root",
        root.path().to_str().unwrap(),
        "reset",
        "--gpu",
        gpu,
    ];
    args.extend(extra);
    let run = probe(&args, &[]);
    assert_eq!(run.code, 0, "{}", run.doc);
    if std::env::var_os("AMD_DUMP").is_some() {
        eprintln!("{:#}", run.doc["reset"]);
    }
    run.doc
}

/// How the fake `amd-smi`'s reset ends.
#[derive(Clone, Copy, PartialEq)]
enum AmdSmiEnds {
    /// amdgpu logs `GPU reset(1) succeeded!`; amd-smi prints its success line.
    Reset,
    /// amdgpu logs `GPU reset(1) failed`; amd-smi prints its failure line.
    KernelFailed,
    /// The library call failed before the driver reset anything (the kernel logs no reset line): amd-smi
    /// prints its failure line.
    LibraryFailed,
}

/// A fake `amd-smi` at `/opt/rocm/bin` in the host root, which node-probe finds and runs chrooted there:
/// it records its argv in `/amd-smi.argv`, logs the kernel's reset lines for `bdf` into `/dev/kmsg` as
/// amdgpu does, and prints amd-smi's result for the GPU. As amd-smi's source does, it exits 0 whether the
/// reset succeeded or not: ROCm/amdsmi 0ceca28 `amdsmi_cli/amdsmi_commands.py:4283-4294` stores
/// `'Successfully reset GPU'` or `"Failed to reset GPU"` under `gpu_reset` and returns normally, the
/// human format prints `GPU: <id>` then the key upper-cased (`amdsmi_cli/amdsmi_logger.py:96`), and
/// `amdsmi_cli/amdsmi_cli.py:134-138` prints any library exception without an exit status. `/bin/sh` and
/// its libraries are copied in for the chroot. False (after `gate::skip`) where this process may not
/// chroot (not root).
fn fake_amd_smi(root: &HostRoot, bdf: &str) -> bool {
    fake_amd_smi_ending(root, bdf, AmdSmiEnds::Reset)
}

fn fake_amd_smi_ending(root: &HostRoot, bdf: &str, ends: AmdSmiEnds) -> bool {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        gate::skip("the fake amd-smi runs chrooted into the fake host root, which needs root");
        return false;
    }
    let ldd = Command::new("ldd").arg("/bin/sh").output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let to = root.path().join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, to).unwrap();
    }
    let sh = root.path().join("bin/sh");
    std::fs::create_dir_all(sh.parent().unwrap()).unwrap();
    std::fs::copy("/bin/sh", &sh).unwrap();
    let kernel = match ends {
        AmdSmiEnds::Reset => format!(
            "printf '4,9001,200,-;amdgpu {bdf}: amdgpu: GPU reset begin!\\n' >> /dev/kmsg\n\
             printf '6,9002,300,-;amdgpu {bdf}: amdgpu: MODE1 reset\\n' >> /dev/kmsg\n\
             printf '6,9003,400,-;amdgpu {bdf}: amdgpu: GPU reset(1) succeeded!\\n' >> /dev/kmsg\n"
        ),
        AmdSmiEnds::KernelFailed => format!(
            "printf '4,9001,200,-;amdgpu {bdf}: amdgpu: GPU reset begin!\\n' >> /dev/kmsg\n\
             printf '6,9002,300,-;amdgpu {bdf}: amdgpu: MODE1 reset\\n' >> /dev/kmsg\n\
             printf '3,9003,400,-;amdgpu {bdf}: amdgpu: GPU reset(1) failed\\n' >> /dev/kmsg\n"
        ),
        AmdSmiEnds::LibraryFailed => String::new(),
    };
    let result = if ends == AmdSmiEnds::Reset {
        "Successfully reset GPU"
    } else {
        "Failed to reset GPU"
    };
    let script = format!(
        "#!/bin/sh\n\
         echo \"$@\" >> /amd-smi.argv\n\
         {kernel}\
         printf 'GPU: 0\\n    GPU_RESET: {result}\\n\\n'\n\
         exit 0\n"
    );
    let p = root.write("opt/rocm/bin/amd-smi", script);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(root.path().join("opt/rocm/lib")).unwrap();
    true
}

fn check_of(rep: &Value, name: &str) -> Value {
    rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {rep}"))
        .clone()
}

#[test]
fn amd_reset_of_an_idle_hive_runs_amd_smi_chrooted_and_verifies_the_hive() {
    let node = mi300x_node();
    let bdf = "0000:26:00.0";
    if !fake_amd_smi(&node, bdf) {
        return;
    }
    let argv = node.path().join("amd-smi.argv");
    // Dry run: the preflight says what it will run; nothing runs.
    let doc = amd_reset(&node, "1", &["--dry-run"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], true, "{rep}");
    assert_eq!(rep["result"], "dry_run");
    let tool = check_of(rep, "reset_tool");
    assert_eq!(
        tool["evidence"],
        format!(
            "will run `chroot {} /opt/rocm/bin/amd-smi reset -G -g {bdf}`",
            node.path().display()
        ),
        "{rep}"
    );
    assert!(
        check_of(rep, "reset_scope")["evidence"]
            .as_str()
            .unwrap()
            .contains(": GPU 0-7;"),
        "{rep}"
    );
    assert!(!argv.exists(), "the dry run ran amd-smi");

    let doc = amd_reset(&node, "1", &[]);
    let rep = &doc["reset"];
    let calls = std::fs::read_to_string(&argv).unwrap();
    assert_eq!(calls, format!("reset -G -g {bdf}\n"));
    let o = &rep["outcome"];
    let run = &o["commands"][0];
    assert_eq!(run["argv"][0], "chroot", "{rep}");
    assert_eq!(run["exit_code"], 0, "{rep}");
    assert_eq!(
        run["stdout"],
        "GPU: 0\n    GPU_RESET: Successfully reset GPU"
    );
    let v = |name: &str| {
        o["verification"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} in {o}"))
            .clone()
    };
    assert_eq!(v("gpus_back")["status"], "pass", "{o}");
    assert_eq!(
        v("ras_read_back")["evidence"],
        "GPU 0-7: RAS ue 0 ce 0 de 0, bad pages 0 retired 0 pending, as before"
    );
    assert_eq!(
        v("kernel_log_reset")["evidence"],
        format!(
            "the kernel logged: \"{bdf}: GPU reset begin!\", \"{bdf}: MODE1 reset\", \"{bdf}: GPU reset(1) \
             succeeded!\""
        )
    );
    assert_eq!(o["verified"], true, "{rep}");
    assert_eq!(rep["result"], "done", "{rep}");
}

#[test]
fn amd_reset_is_refused_when_a_hive_peer_is_held_through_kfd_naming_the_peer_and_holder() {
    let node = mi300x_node();
    // A tenant's job on GPU 6 (0000:c6:00.0), named like the AMD device plugin: a name proves nothing.
    node.process(
        4242,
        "k8s-device-plug",
        &["python3", "train.py"],
        "S",
        1,
        0x400000,
    )
    .fds(4242, &["/dev/kfd", "/dev/null"])
    .file(
        "proc/4242/cgroup",
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1f2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n",
    )
    .file(
        &format!("sys/class/kfd/kfd/proc/4242/vram_{}", mi300x_gpu_id(6)),
        "1073741824\n",
    );
    let ran = fake_amd_smi(&node, "0000:26:00.0");
    let doc = amd_reset(&node, "1", &["--override-unknown-holders"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    assert_eq!(blocked(&doc, "reset"), ["hive_device_holders"], "{rep}");
    let h = check_of(rep, "hive_device_holders");
    assert!(
        h["evidence"].as_str().unwrap().starts_with(&format!(
            "GPU 6 (0000:c6:00.0): yes: pid 4242 (k8s-device-plug) in pod \
             6b1f2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d [AMD device plugin: stop its daemonset pod on this node]: \
             KFD state on gpu_id {}",
            mi300x_gpu_id(6)
        )),
        "{h}"
    );
    assert!(
        h["evidence"].as_str().unwrap().contains("GPU 0-5,7: no"),
        "{h}"
    );
    assert!(rep.get("outcome").is_none());
    if ran {
        assert!(
            !node.path().join("amd-smi.argv").exists(),
            "a refused reset ran amd-smi"
        );
    }
}

#[test]
fn amd_reset_with_kfd_open_on_an_unknown_gpu_is_refused_as_unknown_and_no_amd_smi_is_said() {
    let node = mi300x_node();
    // /dev/kfd open, not in KFD's process list: which GPU it uses cannot be told. A second process's fd
    // directory loops: unreadable, said, not a hang.
    node.process(5000, "python3", &["python3"], "S", 1, 0x400000)
        .fds(5000, &["/dev/kfd"])
        .symlink("proc/5001/fd", "fd");
    let doc = amd_reset(&node, "0", &[]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    let h = check_of(rep, "hive_device_holders");
    assert_eq!(h["status"], "block");
    assert!(
        h["evidence"]
            .as_str()
            .unwrap()
            .contains("pid 5000 (python3) has /dev/kfd open and is not in KFD's process list"),
        "{h}"
    );
    assert_eq!(
        h["unknown_sources"],
        serde_json::json!([
            "open /dev/kfd and /dev/dri files (the /proc fd scan and KFD's process list)"
        ])
    );
    assert_eq!(
        check_of(rep, "holder_scan_complete")["status"],
        "warn",
        "{rep}"
    );
    // No amd-smi under the host root: said with what to install.
    let tool = check_of(rep, "reset_tool");
    assert_eq!(tool["status"], "block");
    let why = tool["evidence"].as_str().unwrap();
    assert!(
        why.starts_with("amd-smi is not available on the node"),
        "{why}"
    );
    assert!(why.contains("amd-smi-lib"), "{why}");
    // A person's override of what they saw lifts the unknown holder, never the missing tool.
    let seen = seen_arg(&unknown_items(rep));
    let args = vec!["--approved", &seen, "--override-unknown-holders"];
    let doc = amd_reset(&node, "0", &args);
    assert_eq!(blocked(&doc, "reset"), ["reset_tool"], "{doc}");
    assert!(
        check_of(&doc["reset"], "hive_device_holders")["evidence"]
            .as_str()
            .unwrap()
            .starts_with("OVERRIDDEN")
    );
}

#[test]
fn amd_reset_that_fails_is_said_with_the_kernels_failed_line() {
    let node = mi300x_node();
    let bdf = "0000:05:00.0";
    if !fake_amd_smi_ending(&node, bdf, AmdSmiEnds::KernelFailed) {
        return;
    }
    let doc = amd_reset(&node, "0", &[]);
    let rep = &doc["reset"];
    let o = &rep["outcome"];
    assert_eq!(rep["result"], "failed", "{rep}");
    assert_eq!(o["verified"], false);
    assert_eq!(o["commands"][0]["exit_code"], 0, "{o}");
    assert_eq!(
        o["error"],
        format!(
            "amd-smi reset -G exited 0 but did not reset {bdf}: amd-smi reported \"Failed to reset GPU\" for \
             the GPU (it exits 0 after a failed reset)"
        )
    );
    let k = o["verification"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "kernel_log_reset")
        .unwrap()
        .clone();
    assert_eq!(k["status"], "block", "{k}");
    assert!(
        k["evidence"]
            .as_str()
            .unwrap()
            .contains(&format!("\"{bdf}: GPU reset(1) failed\"")),
        "{k}"
    );
}

/// amd-smi's library call failed before any reset: it prints "Failed to reset GPU" and exits 0, and the
/// GPUs were never away, so they read "back". Not done: failed, with amd-smi's words and the kernel's
/// silence.
#[test]
fn amd_reset_that_amd_smi_failed_with_exit_0_is_not_done() {
    let node = mi300x_node();
    let bdf = "0000:05:00.0";
    if !fake_amd_smi_ending(&node, bdf, AmdSmiEnds::LibraryFailed) {
        return;
    }
    let doc = amd_reset(&node, "0", &[]);
    let rep = &doc["reset"];
    let o = &rep["outcome"];
    assert_eq!(rep["result"], "failed", "{rep}");
    assert_eq!(o["verified"], false, "{o}");
    assert!(
        o["error"]
            .as_str()
            .unwrap()
            .contains("\"Failed to reset GPU\""),
        "{o}"
    );
    let k = o["verification"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "kernel_log_reset")
        .unwrap()
        .clone();
    assert_eq!(k["status"], "block", "{k}");
    assert!(
        k["evidence"].as_str().unwrap().contains("not verified"),
        "{k}"
    );
}

#[test]
fn amd_reset_of_a_cpx_gpu_counts_its_partitions_and_a_peers_partition_holder() {
    let d = HostRoot::short("amd");
    d.file("proc/uptime", "5000.0 9000.0\n").process(
        1,
        "systemd",
        &["/sbin/init"],
        "S",
        0,
        0x400100,
    );
    amdgpu_tree::Node::mi300x_cpx().write(d.path());
    // GPU 1's first partition device: after the eight GPUs' renderD128..135 and GPU 0's seven.
    d.process(7000, "python3", &["python3"], "S", 1, 0x400000)
        .fds(7000, &["/dev/dri/renderD143"]);
    let node = Node::new(d, Kubelet::default());
    let doc = amd_reset(&node, "0", &["--dry-run"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    let p = check_of(rep, "partitions");
    assert_eq!(p["status"], "warn");
    assert!(
        p["evidence"]
            .as_str()
            .unwrap()
            .starts_with("GPU 0 in CPX/NPS4 (7 more partition device(s)), GPU 1 in CPX/NPS4"),
        "{p}"
    );
    let h = check_of(rep, "hive_device_holders");
    assert!(
        h["evidence"]
            .as_str()
            .unwrap()
            .starts_with("GPU 1 (0000:26:00.0): yes: pid 7000 (python3): /dev/dri/renderD143"),
        "{h}"
    );
}

/// `--approved`'s `seen=` field: the digests of the unknowns a person saw, as the launcher passes them.
fn seen_arg(items: &[String]) -> String {
    let d: Vec<String> = items
        .iter()
        .map(|i| gpu_diag::operator::reset::unknown_digest(i))
        .collect();
    format!("seen={}", d.join(","))
}

/// Every unknown item of a report's checks: what the person saw, as the launcher passes it on.
fn unknown_items(rep: &Value) -> Vec<String> {
    let mut out: Vec<String> = rep["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["unknown_holders"].as_array().cloned().unwrap_or_default())
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The act carries the identity of the GPU the person approved. When the index it names is another GPU
/// by then (NVML fell silent and the AMD GPUs were numbered from 0), it is refused and nothing runs; the
/// same GPU named by its PCI address is reset.
#[test]
fn amd_reset_act_pinned_to_the_approved_gpu_refuses_another_at_its_index() {
    let node = mi300x_node();
    let bdf = "0000:26:00.0";
    let ran = fake_amd_smi(&node, bdf);
    let shown = amd_reset(&node, "1", &["--dry-run"]);
    let t = &shown["reset"]["target"];
    assert_eq!(t["pci_bus_id"], bdf, "{t}");
    let uid = t["uuid"].as_str().unwrap().to_string();
    let approved = format!("pci={bdf};uuid={uid}");
    let pin = ["--approved", approved.as_str()];
    // "GPU 0" is now another GPU than the one approved.
    let doc = amd_reset(&node, "0", &pin);
    let rep = &doc["reset"];
    assert_eq!(blocked(&doc, "reset"), ["gpu_identity"], "{rep}");
    let why = check_of(rep, "gpu_identity")["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        why.contains(&format!("PCI address 0000:05:00.0 (approved: {bdf})")),
        "{why}"
    );
    assert!(rep.get("outcome").is_none(), "{rep}");
    if !ran {
        return;
    }
    assert!(!node.path().join("amd-smi.argv").exists(), "amd-smi ran");
    // By its PCI address (and by its unique id) it is the approved GPU wherever it is numbered.
    let doc = amd_reset(&node, bdf, &pin);
    let rep = &doc["reset"];
    assert_eq!(check_of(rep, "gpu_identity")["status"], "pass", "{rep}");
    assert_eq!(rep["result"], "done", "{rep}");
    assert_eq!(
        std::fs::read_to_string(node.path().join("amd-smi.argv")).unwrap(),
        format!("reset -G -g {bdf}\n")
    );
    let by_uid = amd_reset(&node, &uid, &["--dry-run"]);
    assert_eq!(by_uid["reset"]["target"]["pci_bus_id"], bdf);
}

/// A person overrode the unknown holder they saw (pid 5000); a job started since (pid 6000, /dev/kfd open,
/// not in KFD's list) is not covered: the act refuses, naming it, and amd-smi does not run.
#[test]
fn amd_reset_override_does_not_cover_a_job_started_after_the_person_looked() {
    let node = mi300x_node();
    node.process(5000, "python3", &["python3"], "S", 1, 0x400000)
        .fds(5000, &["/dev/kfd"]);
    let ran = fake_amd_smi(&node, "0000:05:00.0");
    let shown = amd_reset(&node, "0", &["--dry-run"]);
    let saw = unknown_items(&shown["reset"]);
    assert!(
        saw.iter().any(|i| i.contains("pid 5000 (python3)")),
        "{saw:?}"
    );
    let seen = seen_arg(&saw);
    let args = vec!["--approved", &seen, "--override-unknown-holders"];
    if ran {
        // An override that carries no list of what the person saw covers nothing.
        let doc = amd_reset(&node, "0", &["--override-unknown-holders"]);
        assert!(
            blocked(&doc, "reset").contains(&"override_as_confirmed".to_string()),
            "an override without the list covers nothing: {doc}"
        );
    }
    node.process(6000, "torchrun", &["torchrun"], "S", 1, 0x400000)
        .fds(6000, &["/dev/kfd"]);
    let doc = amd_reset(&node, "0", &args);
    let rep = &doc["reset"];
    let mut b = blocked(&doc, "reset");
    b.retain(|c| c != "reset_tool");
    assert_eq!(b, ["override_as_confirmed"], "{rep}");
    let why = check_of(rep, "override_as_confirmed")["evidence"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("pid 6000 (torchrun)"), "{why}");
    assert!(!why.contains("pid 5000"), "{why}");
    // The act's report lists both, for the audit.
    let now = unknown_items(rep);
    assert!(now.iter().any(|i| i.contains("pid 6000")), "{now:?}");
    assert!(rep.get("outcome").is_none());
    if ran {
        assert!(!node.path().join("amd-smi.argv").exists(), "amd-smi ran");
    }
}

/// The AMD device plugin gave a pod `amdgpu_xcp_5`, a partition device the probe cannot place (the GPUs
/// read SPX, no partition files): every AMD GPU is unknown for the kubelet's device plugins, not "not
/// assigned".
#[test]
fn amd_reset_with_an_unplaceable_partition_device_is_unknown() {
    let d = HostRoot::short("amd");
    d.file("proc/uptime", "5000.0 9000.0\n").process(
        1,
        "systemd",
        &["/sbin/init"],
        "S",
        0,
        0x400100,
    );
    amdgpu_tree::Node::new((0..8).map(amdgpu_tree::Gpu::mi300x).collect()).write(d.path());
    let node = Node::new(
        d,
        Kubelet {
            pods: vec![fake_kubelet::pod(
                "ml",
                "train-0",
                &[("main", "amd.com/gpu", &["amdgpu_xcp_5"])],
            )],
            ..Default::default()
        },
    );
    let doc = amd_reset(&node, "0", &["--dry-run"]);
    let rep = &doc["reset"];
    let a = check_of(rep, "hive_not_assigned");
    assert_eq!(a["status"], "block", "{a}");
    let why = a["evidence"].as_str().unwrap();
    assert!(
        why.contains("kubelet PodResources (device plugins)")
            && why.contains("ml/train-0 (container main) holds amd.com/gpu amdgpu_xcp_5"),
        "{why}"
    );
    assert_eq!(
        a["unknown_sources"],
        serde_json::json!(["kubelet PodResources (device plugins)"])
    );
}

/// node-probe as a host's LSM would leave it: without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (setpriv),
/// with the fd directory of `pid` mode 000, so the kernel refuses it as on a real host. `None` where that
/// cannot be arranged here (not root, no util-linux setpriv): the caller skips.
fn probe_with_a_refused_fd_table(root: &Path, pid: u32, args: &[&str]) -> Option<Value> {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0"
        || Command::new("setpriv").arg("--version").output().is_err()
    {
        gate::skip(
            "dropping the DAC capabilities with setpriv needs root and util-linux's setpriv",
        );
        return None;
    }
    let fd = root.join(format!("proc/{pid}/fd"));
    std::fs::set_permissions(&fd, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let drop = "-dac_override,-dac_read_search";
    let out = Command::new("setpriv")
        .args([
            &format!("--inh-caps={drop}"),
            &format!("--bounding-set={drop}"),
            "--",
            env!("CARGO_BIN_EXE_node-probe"),
            "--nvml-lib",
            NO_NVML,
            "--host-root",
            root.to_str().unwrap(),
        ])
        .args(args)
        .env_remove("NODE_PROBE_HOST_ROOT")
        .output()
        .unwrap();
    std::fs::set_permissions(&fd, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    Some(
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr))),
    )
}

/// A process whose fd table the kernel refuses (EACCES: an LSM, ptrace rules) may hold any GPU of the
/// hive: unknown, which refuses the reset, not a warning.
#[test]
fn amd_reset_with_a_refused_fd_table_is_unknown_not_a_warning() {
    let node = mi300x_node();
    node.process(5000, "python3", &["python3"], "S", 1, 0x400000)
        .fds(5000, &["/dev/kfd"]);
    let Some(doc) =
        probe_with_a_refused_fd_table(node.path(), 5000, &["reset", "--gpu", "0", "--dry-run"])
    else {
        return;
    };
    let rep = &doc["reset"];
    let h = check_of(rep, "hive_device_holders");
    assert_eq!(h["status"], "block", "{rep}");
    assert!(
        h["evidence"]
            .as_str()
            .unwrap()
            .contains("the open files of pid 5000 could not be read (permission denied"),
        "{h}"
    );
    assert!(
        rep["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["check"] != "holder_scan_complete"),
        "{rep}"
    );
}

// ---- Intel Gaudi --------------------------------------------------------------------------------

/// A Gaudi 2 node as the reset sees it: eight devices under the habanalabs driver (Linux 6.12's sysfs,
/// `tests/support/gaudi_tree.rs`), device 6 (`accel6`, 0000:b3:00.0) `Disabled` (a malfunction), init,
/// a kernel log with one record, and a kubelet that lists `pods`.
fn gaudi2_node(pods: Vec<fake_kubelet::api::PodResources>) -> (Node, gaudi_tree::Device) {
    let d = HostRoot::short("hl");
    d.file("proc/uptime", "5000.0 9000.0\n")
        .process(1, "systemd", &["/sbin/init"], "S", 0, 0x400100)
        .file("dev/kmsg", "6,9000,100,-;Linux version 6.12.0-amd64\n");
    let mut devices: Vec<gaudi_tree::Device> = (0..8).map(gaudi_tree::Device::gaudi2).collect();
    devices[6].status = "Disabled";
    let six = devices[6].clone();
    gaudi_tree::Node::new(devices).write(d.path());
    (
        Node::new(
            d,
            Kubelet {
                pods,
                ..Default::default()
            },
        ),
        six,
    )
}

/// The habanalabs driver as this test plays it, from its own code: a write to `hard_reset` logs
/// "Hard-Reset requested through sysfs" (`common/sysfs.c` `hard_reset_store`) and "Going to reset device"
/// (`common/device.c:1741`) while the device reads `In reset`; then the count grows, success or not
/// (`:1982`, `:2017`), with "Successfully finished resetting the <BDF> device" (`:1974`) and the device
/// `Operational`, or "<BDF> Failed to reset! Device is NOT usable" (`:2015`) and the device `Disabled`.
/// Returns whether a write came within 60 s.
fn habanalabs(
    root: &Path,
    d: &gaudi_tree::Device,
    succeeds: bool,
) -> std::thread::JoinHandle<bool> {
    use std::io::Write;
    let attrs = root.join(d.pci_dir());
    let kmsg = root.join("dev/kmsg");
    let (bdf, count) = (d.bdf.clone(), d.hard_reset_cnt);
    std::thread::spawn(move || {
        let log = |line: String| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&kmsg)
                .unwrap();
            writeln!(f, "{line}").unwrap();
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::read(attrs.join("hard_reset"))
            .unwrap_or_default()
            .is_empty()
        {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::fs::write(attrs.join("status"), "In reset\n").unwrap();
        log(format!(
            "4,9001,200,-;habanalabs {bdf}: Hard-Reset requested through sysfs"
        ));
        log(format!(
            "6,9002,210,-;habanalabs {bdf}: Going to reset device"
        ));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        std::fs::write(attrs.join("hard_reset_cnt"), format!("{}\n", count + 1)).unwrap();
        if succeeds {
            log(format!(
                "6,9003,9000,-;habanalabs {bdf}: Successfully finished resetting the {bdf} device"
            ));
            std::fs::write(attrs.join("status"), "Operational\n").unwrap();
        } else {
            log(format!(
                "3,9003,9000,-;habanalabs {bdf}: {bdf} Failed to reset! Device is NOT usable"
            ));
            std::fs::write(attrs.join("status"), "Disabled\n").unwrap();
        }
        true
    })
}

fn gaudi_reset(root: &HostRoot, gpu: &str, extra: &[&str]) -> Value {
    amd_reset(root, gpu, extra)
}

#[test]
fn gaudi_reset_writes_the_drivers_hard_reset_file_and_verifies_the_device_back() {
    let (node, six) = gaudi2_node(vec![]);
    let file = node.path().join(six.pci_dir()).join("hard_reset");
    let doc = gaudi_reset(&node, "6", &["--dry-run"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], true, "{rep}");
    assert_eq!(
        check_of(rep, "reset_tool")["evidence"],
        "will run `echo 1 > /sys/class/accel/accel6/device/hard_reset`"
    );
    assert_eq!(
        check_of(rep, "gaudi_status")["evidence"],
        "the driver reads the device `Disabled`: a hard reset is the driver's remedy"
    );
    assert!(
        std::fs::read(&file).unwrap().is_empty(),
        "the dry run wrote"
    );

    let driver = habanalabs(node.path(), &six, true);
    let doc = gaudi_reset(&node, "0000:b3:00.0", &[]);
    assert!(driver.join().unwrap());
    let rep = &doc["reset"];
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");
    let o = &rep["outcome"];
    assert_eq!(o["commands"][0]["exit_code"], 0, "{rep}");
    let v = |name: &str| {
        o["verification"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} in {o}"))
            .clone()
    };
    assert_eq!(
        v("gpu_back")["evidence"],
        "GPU 6 (0000:b3:00.0) reads `Operational` after the reset"
    );
    assert_eq!(
        v("reset_counted")["evidence"],
        format!(
            "the driver counted the hard reset: hard_reset_cnt {} -> {}",
            six.hard_reset_cnt,
            six.hard_reset_cnt + 1
        )
    );
    assert_eq!(
        v("kernel_log_reset")["evidence"],
        "the kernel logged: \"Hard-Reset requested through sysfs\", \"Going to reset device\", \
         \"Successfully finished resetting the 0000:b3:00.0 device\""
    );
    assert_eq!(o["verified"], true, "{rep}");
    assert_eq!(rep["result"], "done", "{rep}");
}

#[test]
fn gaudi_reset_that_the_driver_fails_is_not_done_though_it_counted() {
    let (node, six) = gaudi2_node(vec![]);
    let driver = habanalabs(node.path(), &six, false);
    let doc = gaudi_reset(&node, "6", &[]);
    assert!(driver.join().unwrap());
    let rep = &doc["reset"];
    let o = &rep["outcome"];
    assert_eq!(o["verified"], false, "{rep}");
    assert_eq!(rep["result"], "failed", "{rep}");
    let blocked: Vec<&str> = o["verification"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "block")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(blocked, ["gpu_back", "kernel_log_reset"], "{o}");
}

/// A tenant's process on the device, named like Intel's own tool (a name proves nothing), and a pod
/// the kubelet assigned a Gaudi by serial: both refuse, and nothing is written.
#[test]
fn gaudi_reset_is_refused_for_a_holder_or_an_assignment_and_writes_nothing() {
    let (node, six) = gaudi2_node(vec![]);
    let file = node.path().join(six.pci_dir()).join("hard_reset");
    node.process(4242, "hl-smi", &["python3", "train.py"], "S", 1, 0x400000)
        .fds(4242, &["/dev/accel/accel6", "/dev/null"]);
    let doc = gaudi_reset(&node, "6", &["--override-unknown-holders"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    let h = check_of(rep, "device_node_holders");
    assert_eq!(h["status"], "block");
    assert!(
        h["evidence"]
            .as_str()
            .unwrap()
            .starts_with("1 process(es) hold /dev/accel/accel6 of GPU 6: pid 4242 (hl-smi)"),
        "{h}"
    );
    assert!(
        std::fs::read(&file).unwrap().is_empty(),
        "a refused reset wrote"
    );

    let (node, six) = gaudi2_node(vec![fake_kubelet::pod(
        "ml",
        "train-0",
        &[("main", "habana.ai/gaudi", &["AM23145678"])],
    )]);
    let file = node.path().join(six.pci_dir()).join("hard_reset");
    let doc = gaudi_reset(&node, "6", &[]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    let a = check_of(rep, "not_assigned_to_a_pod");
    assert_eq!(a["status"], "block", "{a}");
    assert!(
        a["evidence"]
            .as_str()
            .unwrap()
            .contains("ml/train-0 (container main) holds habana.ai/gaudi AM23145678"),
        "{a}"
    );
    assert!(
        std::fs::read(&file).unwrap().is_empty(),
        "a refused reset wrote"
    );
}

// ---- AWS Neuron ---------------------------------------------------------------------------------

/// A trn2 node as the reset sees it: sixteen Trainium2 devices under the neuron driver
/// (`tests/support/neuron_tree.rs`, from aws-neuron-driver fca19f7's printers), init, a kernel log with
/// one record, and an empty kubelet.
fn trn2_node() -> Node {
    let d = HostRoot::short("nr");
    d.file("proc/uptime", "5000.0 9000.0\n")
        .process(1, "systemd", &["/sbin/init"], "S", 0, 0x400100)
        .file("dev/kmsg", "6,9000,100,-;Linux version 6.1.0-aws\n");
    neuron_tree::Node::trn2(16).write(d.path());
    Node::new(d, Kubelet::default())
}

/// How the played driver answers a write to `reset`.
#[derive(Clone, Copy, PartialEq)]
enum NeuronEnds {
    Completed,
    Failed,
    /// A process opened the device after the scan: the write is ignored (neuron_cdev.c:2985).
    Ignored,
}

/// The neuron driver as this test plays it, from its own code: a write to device `i`'s `reset` (seen as
/// the file's change) queues a device reset, so every NeuronCore's `reset_req_count` grows and the state
/// reads 0 (`nr_start_ncs`, neuron_reset.c:267-278); its reset thread logs "nd<i>: initiating device reset
/// request 4294967295" (:110-113, `NEURON_RESET_REQUEST_ALL`, :18 of neuron_reset.h), then sets 1 and
/// logs "reset request 4294967295 completed" (:150, :165-166), or counts a failure (`reset_fail_count`,
/// :121), logs "reset request 4294967295 failed" (:119) and sets 2 (:168). Returns whether a write came
/// within 60 s.
fn neuron_driver(root: &Path, i: u32, ends: NeuronEnds) -> std::thread::JoinHandle<bool> {
    use std::io::Write;
    let dev = root.join(format!("sys/devices/virtual/neuron_device/neuron{i}"));
    let kmsg = root.join("dev/kmsg");
    let written = std::fs::metadata(dev.join("reset"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::spawn(move || {
        let log = |line: String| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&kmsg)
                .unwrap();
            writeln!(f, "{line}").unwrap();
        };
        let bump = |name: &str| {
            for c in 0..8 {
                let f = dev.join(format!("neuron_core{c}/stats/other_info/{name}/total"));
                let n: u64 = std::fs::read_to_string(&f).unwrap().trim().parse().unwrap();
                std::fs::write(&f, format!("{}\n", n + 1)).unwrap();
            }
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::fs::metadata(dev.join("reset"))
            .unwrap()
            .modified()
            .unwrap()
            == written
        {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if ends == NeuronEnds::Ignored {
            std::fs::write(dev.join("reset"), "1\n").unwrap();
            return true;
        }
        bump("reset_req_count");
        std::fs::write(dev.join("reset"), "0\n").unwrap();
        log(format!(
            "6,9001,200,-;neuron:nr_reset_thread_fn: nd{i}: initiating device reset request 4294967295"
        ));
        std::thread::sleep(std::time::Duration::from_millis(1500));
        if ends == NeuronEnds::Completed {
            log(format!(
                "6,9002,9000,-;neuron:nr_reset_thread_fn: nd{i}: reset request 4294967295 completed"
            ));
            std::fs::write(dev.join("reset"), "1\n").unwrap();
        } else {
            bump("reset_fail_count");
            log(format!(
                "6,9002,9000,-;neuron:nr_reset_thread_fn: nd{i}: reset request 4294967295 failed"
            ));
            std::fs::write(dev.join("reset"), "2\n").unwrap();
        }
        true
    })
}

/// Device `i`'s reset requests as the tree writes them: the sum over its NeuronCores.
fn requests(i: u32) -> u64 {
    neuron_tree::Device::trn2(i)
        .cores
        .iter()
        .map(|c| c.reset_req_count)
        .sum()
}

fn verification_of(rep: &Value, name: &str) -> Value {
    rep["outcome"]["verification"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {rep}"))
        .clone()
}

#[test]
fn neuron_reset_writes_the_drivers_reset_file_and_verifies_the_device_back() {
    let node = trn2_node();
    let file = node
        .path()
        .join("sys/devices/virtual/neuron_device/neuron9/reset");
    let doc = amd_reset(&node, "9", &["--dry-run"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], true, "{rep}");
    assert_eq!(
        check_of(rep, "reset_tool")["evidence"],
        "will run `echo 1 > /sys/class/neuron_device/neuron9/reset`"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");

    let driver = neuron_driver(node.path(), 9, NeuronEnds::Completed);
    let doc = amd_reset(&node, "9", &[]);
    assert!(driver.join().unwrap());
    let rep = &doc["reset"];
    assert_eq!(rep["outcome"]["commands"][0]["exit_code"], 0, "{rep}");
    let was = requests(9);
    assert_eq!(
        verification_of(rep, "reset_taken")["evidence"],
        format!(
            "the driver queued the reset: reset_req_count {was} -> {}",
            was + 8
        )
    );
    assert_eq!(
        verification_of(rep, "gpu_back")["evidence"],
        "GPU 9 (neuron9) reads ready (1) after the reset"
    );
    assert_eq!(
        verification_of(rep, "kernel_log_reset")["evidence"],
        "the kernel logged: \"initiating device reset request 4294967295\", \"reset request 4294967295 completed\""
    );
    assert_eq!(rep["outcome"]["verified"], true, "{rep}");
    assert_eq!(rep["result"], "done", "{rep}");
}

#[test]
fn neuron_reset_that_fails_or_is_ignored_is_not_done() {
    let node = trn2_node();
    let driver = neuron_driver(node.path(), 3, NeuronEnds::Failed);
    let doc = amd_reset(&node, "3", &[]);
    assert!(driver.join().unwrap());
    let rep = &doc["reset"];
    assert_eq!(rep["result"], "failed", "{rep}");
    let blocked: Vec<&str> = rep["outcome"]["verification"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "block")
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        blocked,
        ["gpu_back", "reset_failed_count", "kernel_log_reset"],
        "{rep}"
    );

    // The device opened after the scan: the driver ignores the write and the device still reads ready.
    let node = trn2_node();
    let driver = neuron_driver(node.path(), 3, NeuronEnds::Ignored);
    let doc = amd_reset(&node, "3", &[]);
    assert!(driver.join().unwrap());
    let rep = &doc["reset"];
    assert_eq!(rep["result"], "failed", "{rep}");
    assert_eq!(verification_of(rep, "gpu_back")["status"], "pass", "{rep}");
    let taken = verification_of(rep, "reset_taken");
    assert_eq!(taken["status"], "block", "{rep}");
    assert!(
        taken["evidence"]
            .as_str()
            .unwrap()
            .contains(&format!("still {}", requests(3))),
        "{taken}"
    );
}

/// A tenant's process holding /dev/neuron5 refuses its reset (nothing written) and is the device's
/// process that `kill` may stop; a process holding another device is not.
#[test]
fn neuron_holders_refuse_the_reset_and_are_what_kill_stops() {
    let node = trn2_node();
    node.process(4242, "python3", &["python3", "train.py"], "S", 1, 0x400000)
        .fds(4242, &["/dev/neuron5", "/dev/null"])
        .process(4343, "python3", &["python3", "eval.py"], "S", 1, 0x400000)
        .fds(4343, &["/dev/neuron6"]);
    let file = node
        .path()
        .join("sys/devices/virtual/neuron_device/neuron5/reset");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    let doc = amd_reset(&node, "5", &["--override-unknown-holders"]);
    let rep = &doc["reset"];
    assert_eq!(rep["allowed"], false, "{rep}");
    let h = check_of(rep, "device_node_holders");
    assert_eq!(h["status"], "block");
    assert!(
        h["evidence"]
            .as_str()
            .unwrap()
            .starts_with("1 process(es) hold /dev/neuron5 of GPU 5: pid 4242 (python3)"),
        "{h}"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before,
        "a refused reset wrote"
    );

    let run = probe(
        &[
            "--nvml-lib",
            NO_NVML,
            "--host-root",
            node.path().to_str().unwrap(),
            "kill",
            "--pid",
            "4242",
            "--dry-run",
        ],
        &[],
    );
    let k = &run.doc["kill"];
    // The fake root's /proc/self is absent (signals could not reach its pids): the only refusal.
    assert_eq!(blocked(&run.doc, "kill"), ["same_pid_namespace"], "{k}");
    assert_eq!(k["gpus"], serde_json::json!([5]), "{k}");
    let uses = k["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "uses_gpu_on_node")
        .unwrap();
    assert!(
        uses["evidence"]
            .as_str()
            .unwrap()
            .starts_with("/dev/neuron holders (neuron) lists pid 4242"),
        "{uses}"
    );
}

/// One walk of `/proc`, one set of unknowns: on a Gaudi node with a refused fd table, the process list
/// names the holder it saw and says it may be incomplete, in the words the reset's refusal uses; it never
/// reads "no process" as free.
#[test]
fn a_refused_fd_table_leaves_a_gaudis_process_list_incomplete_in_the_resets_words() {
    let (node, _) = gaudi2_node(vec![]);
    node.process(4242, "python3", &["python3", "train.py"], "S", 1, 0x400000)
        .fds(4242, &["/dev/accel/accel1"])
        .process(5000, "python3", &["python3"], "S", 1, 0x400000)
        .fds(5000, &["/dev/accel/accel0"]);
    let Some(doc) = probe_with_a_refused_fd_table(node.path(), 5000, &["processes"]) else {
        return;
    };
    let said = "the open files of pid 5000 could not be read (permission denied";
    let r = &doc["processes"];
    let gpus = r["gpus"].as_array().unwrap_or_else(|| panic!("{doc:#}"));
    let pids = |i: usize| -> Vec<u64> {
        gpus[i]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(pids(1), [4242], "{r:#}");
    assert!(pids(0).is_empty(), "{r:#}");
    let f: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "process.list_incomplete")
        .collect();
    assert_eq!(f.len(), 1, "{r:#}");
    let summary = f[0]["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("The process lists of Intel Gaudi 0-7 may be incomplete")
            && summary.contains(said),
        "{summary}"
    );
    assert_eq!(f[0]["severity"], "info", "{}", f[0]);
    // The reset of device 0 refuses on the same unknown, in the same words.
    let doc =
        probe_with_a_refused_fd_table(node.path(), 5000, &["reset", "--gpu", "0", "--dry-run"])
            .unwrap();
    let h = check_of(&doc["reset"], "device_node_holders");
    assert_eq!(h["status"], "block", "{h}");
    assert!(h["evidence"].as_str().unwrap().contains(said), "{h}");
}
