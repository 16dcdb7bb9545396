//! `node-probe rvs-diag` through the real binary: fake AMD Instinct hosts (`tests/support/amdgpu_tree.rs`)
//! read into facts, then replayed with `tests/fake-rvs/rvs` (written from RVS's source: its logger and each
//! module's records) running the probe's own recipe: a pass with a held GPU left out and never touched, a
//! failure landing on the GPU of its KFD gpu_id, a GPU failing babel (rvs aborts) read failed, a missing
//! pbqt record read not run, one GPU leaving out pbqt with the reason in the answer, small gpu_ids never
//! read as indexes, a hang stopped by SIGTERM and one killed at its deadline (no process left), no rvs, no
//! recipe, partitioned GPUs, and hostile arguments and output.

#[path = "../support/amdgpu_tree.rs"]
mod amdgpu_tree;
#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amdgpu_tree::{Gpu, Node};
use host_root::HostRoot;
use node_probe::NodeProbe;
use serde_json::Value;

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

fn fake_rvs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-rvs/rvs")
}

struct Case {
    dir: tempfile::TempDir,
    facts: PathBuf,
    conf: PathBuf,
    /// KFD gpu_id of each GPU, as the facts read them.
    ids: Vec<u64>,
}

impl Case {
    /// `node` with `edit` applied to its host tree (processes), read by `node-probe facts` into a fixture,
    /// and a conf directory with RVS's recipes: `gpup_single`, `gst_single` and MI300X's levels.
    fn new(node: &Node, edit: impl FnOnce(&HostRoot)) -> Case {
        let root = HostRoot::new();
        root.file("proc/uptime", "3600.0 7000.0\n")
            .file("etc/hostname", "mi300x-node-1\n");
        node.write(root.path());
        edit(&root);
        let d = NodeProbe::new()
            .args(["--nvml-lib", NO_NVML, "facts"])
            .host_root(root.path())
            .document();
        assert_eq!(d.code, 0, "{}", d.doc);
        let facts_v = &d.doc["facts"];
        let ids = facts_v["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["amd"]["kfd_nodes"][0]["gpu_id"].as_u64().unwrap())
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let facts = dir.path().join("node.json");
        std::fs::write(&facts, serde_json::to_vec(facts_v).unwrap()).unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(conf.join("MI300X/levels")).unwrap();
        for (f, text) in [
            ("gpup_single.conf", GPUP_SINGLE),
            ("gst_single.conf", GST_SINGLE),
            ("pbqt_single.conf", PBQT_SINGLE),
            ("MI300X/levels/rvs_level_2.conf", LEVEL_2),
        ] {
            std::fs::write(conf.join(f), text).unwrap();
        }
        Case {
            dir,
            facts,
            conf,
            ids,
        }
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("record")
    }

    fn touched_file(&self) -> PathBuf {
        self.dir.path().join("touched")
    }

    /// Each action rvs ran, with the GPUs it selected: `<action> <module> device=<ids> peers=<ids>`.
    fn touched(&self) -> Vec<String> {
        std::fs::read_to_string(self.touched_file())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn ids_of(&self, gpus: &[usize]) -> String {
        gpus.iter()
            .map(|i| self.ids[*i].to_string())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn probe(&self, args: &[&str], env: &[(&str, &str)]) -> NodeProbe {
        let mut p = NodeProbe::new();
        p.args(["--fixture"])
            .arg(&self.facts)
            .args(["--node-name", "mi300x-node-1", "rvs-diag", "--rvs"])
            .arg(fake_rvs())
            .arg("--conf-dir")
            .arg(&self.conf)
            .args(args)
            .env("FAKE_RVS_RECORD", self.record())
            .env("FAKE_RVS_TOUCHED", self.touched_file())
            .env(
                "FAKE_RVS_GPUS",
                self.ids
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
        p.envs(env.iter().copied());
        p
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let d = self.probe(args, env).document();
        assert_eq!(d.code, 0, "{}", d.doc);
        d.doc["rvs_diag"].clone()
    }

    fn recorded(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.record())
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
    }
}

/// Recipes with the actions RVS ships (ROCm/ROCmValidationSuite `rvs/conf/` @21584e1, keys trimmed).
const GPUP_SINGLE: &str =
    "actions:\n- name: RVS-GPUP-TC1\n  device: all\n  module: gpup\n  properties:\n    all:\n";
const GST_SINGLE: &str = "actions:\n- name: gst-1215Tflops-4K4K8K-rand-fp8\n  device: all\n  module: gst\n  parallel: false\n\
- name: gst-1000Tflops-8KB-fp16\n  device: all\n  module: gst\n";
const PBQT_SINGLE: &str = "actions:\n- name: pbqt-unidir-xgmi\n  device: all\n  module: pbqt\n  peers: all\n  test_bandwidth: true\n";
/// `rvs/conf/MI300X/levels/rvs_level_2.conf`.
const LEVEL_2: &str = "actions:\n- name: pcie_capability\n  device: all\n  module: peqt\n  capability:\n    link_cap_max_speed:\n\n\
- name: hbm_basic\n  device: all\n  module: babel\n  parallel: true\n  count: 1\n  test_type: 1\n\n\
- name: xgmi_interface\n  device: all\n  module: pbqt\n  duration: 20000\n  peers: all\n  test_bandwidth: true\n  device_id: all\n\n\
- name: pcie_interface\n  device: all\n  module: pebb\n  duration: 20000\n  host_to_device: true\n";

fn mi300x(n: u32) -> Node {
    Node::new((0..n).map(Gpu::mi300x).collect())
}

fn outcomes(r: &Value) -> Vec<String> {
    r["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{}={}", g["index"], g["outcome"].as_str().unwrap()))
        .collect()
}

fn no_fail(r: &Value) {
    assert_ne!(r["outcome"], "failed", "{r}");
    assert!(
        r["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["outcome"] != "failed"),
        "{r}"
    );
}

#[test]
fn a_pass_on_the_idle_gpus_by_kfd_gpu_id_and_a_held_gpu_left_out() {
    // GPU 1 (renderD129) is held by a process with /dev/kfd open.
    let c = Case::new(&mi300x(3), |root| {
        root.fds(4242, &["/dev/kfd", "/dev/dri/renderD129"])
            .file("proc/4242/comm", "python3\n");
    });
    let r = c.run(&["--level", "1", "--gpus", "all"], &[]);
    assert_eq!(r["outcome"], "passed", "{r}");
    assert_eq!(r["recipe"], "gpup_single");
    assert_eq!(outcomes(&r), ["0=passed", "2=passed"]);
    // rvs got a recipe of the run's own naming the idle GPUs' KFD gpu_ids, never the held one's, and no
    // `-i` (rvs/src/rvsexec_do_yaml.cpp:944-981 reads small values as indexes).
    assert_eq!(c.recorded("ids").unwrap(), "");
    assert_eq!(
        c.touched(),
        [format!(
            "RVS-GPUP-TC1 gpup device={} peers=",
            c.ids_of(&[0, 2])
        )]
    );
    let private = PathBuf::from(c.recorded("conf").unwrap());
    assert_ne!(private, c.conf.join("gpup_single.conf"));
    assert!(!private.exists(), "the run's recipe was left behind");
    let given = std::fs::read_to_string(format!("{}.conf", c.record().display())).unwrap();
    assert!(
        given.contains(&format!("device: {}\n", c.ids_of(&[0, 2]))),
        "{given}"
    );
    assert_eq!(
        r["conf"],
        c.conf.join("gpup_single.conf").display().to_string()
    );
    assert_eq!(r["gpus"][1]["gpu_id"], c.ids[2]);
    assert_eq!(r["gpus"][1]["pci_bus_id"], "0000:46:00.0");
    assert_eq!(r["gpus"][0]["tests"].as_array().unwrap().len(), 1);
    assert_eq!(r["gpus"][0]["tests"][0]["module"], "gpup");
    assert_eq!(r["gpus"][0]["tests"][0]["result"], "passed");
    let nt = r["not_tested"].as_array().unwrap();
    assert_eq!(nt.len(), 1, "{nt:?}");
    assert_eq!(
        (nt[0]["index"].as_u64(), nt[0]["why"].as_str()),
        (Some(1), Some("held"))
    );
    assert!(nt[0]["detail"].as_str().unwrap().contains("4242"), "{nt:?}");
    assert_eq!(r["rvs"]["version"], "1.0");
    assert!(r["raw_output"].as_str().unwrap().contains("RVS-GPUP-TC1"));
    // The stray trailing braces of RVS 7.1.1 are read through.
    let r = c.run(
        &["--level", "1", "--gpus", "0"],
        &[("FAKE_RVS_MODE", "stray")],
    );
    assert_eq!(r["outcome"], "passed", "{r}");
}

#[test]
fn a_failure_lands_on_the_gpu_of_its_gpu_id() {
    let c = Case::new(&mi300x(2), |_| {});
    let fail = format!("gst-1000Tflops-8KB-fp16={}", c.ids[1]);
    let r = c.run(
        &["--tests", "gst_single", "--gpus", "0,1"],
        &[("FAKE_RVS_FAIL", &fail)],
    );
    assert_eq!(r["outcome"], "failed", "{r}");
    assert_eq!(outcomes(&r), ["0=passed", "1=failed"]);
    let bad: Vec<&Value> = r["gpus"][1]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["result"] == "failed")
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["module"], "gst");
    assert_eq!(bad[0]["action"], "gst-1000Tflops-8KB-fp16");
    // A failed action does not fail rvs's exit (rvs/src/rvsexec_do_yaml.cpp:812-836).
    assert_eq!(r["rvs"]["exit_status"], 0);
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("GPU 1 failed gst/gst-1000Tflops-8KB-fp16"),
        "{}",
        r["summary"]
    );
    // gst's `err` record (gst.so/src/gst_worker.cpp:610-616): failed too, with RVS's words.
    let r = c.run(
        &["--tests", "gst_single", "--gpus", "0,1"],
        &[("FAKE_RVS_FAIL", &fail), ("FAKE_RVS_GST_ERR", "1")],
    );
    assert_eq!(outcomes(&r), ["0=passed", "1=failed"]);
    assert!(
        r["gpus"][1]["tests"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("hipMalloc failed"),
        "{r}"
    );
}

#[test]
fn level_2_a_gpu_failing_babel_reads_failed_not_passed() {
    // babel writes only pass "true" (babel.so/src/rvs_stress.cpp:442-528) and a GPU error aborts rvs
    // (babel.so/include/rvs_memworker.h:77-98): the GPU without its record in the cut file failed it.
    // Before, GPU 1's peqt pass with no failing record read "passed".
    let c = Case::new(&mi300x(2), |_| {});
    let fail = format!("hbm_basic={}", c.ids[1]);
    let r = c.run(
        &["--level", "2", "--gpus", "0,1"],
        &[("FAKE_RVS_FAIL", &fail)],
    );
    assert_eq!(r["outcome"], "failed", "{r}");
    assert_eq!(r["rvs"]["signal"], 6, "{r}");
    assert_eq!(outcomes(&r), ["0=incomplete", "1=failed"]);
    let t1 = &r["gpus"][1]["tests"];
    assert_eq!(t1[0]["result"], "passed", "{r}");
    assert_eq!(t1[1]["module"], "babel");
    assert_eq!(t1[1]["result"], "failed", "{r}");
    // What never ran after the abort is not run, never passed.
    assert_eq!(r["gpus"][0]["tests"][2]["result"], "not_run");
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("GPU 1 failed babel/hbm_basic"),
        "{r}"
    );
}

#[test]
fn level_2_a_missing_pbqt_record_reads_not_run_and_the_run_is_no_pass() {
    // GPU 2 has no XGMI link to the others: pbqt writes no pair with it (pbqt.so/src/action.cpp:504-545).
    let c = Case::new(&mi300x(3), |_| {});
    let no_peer = c.ids[2].to_string();
    let r = c.run(
        &["--level", "2", "--gpus", "0,1,2"],
        &[("FAKE_RVS_NO_PEER", &no_peer)],
    );
    assert_ne!(r["outcome"], "passed", "{r}");
    no_fail(&r);
    assert_eq!(outcomes(&r), ["0=passed", "1=passed", "2=incomplete"]);
    let t = &r["gpus"][2]["tests"][2];
    assert_eq!(
        (&t["module"], &t["result"]),
        (&"pbqt".into(), &"not_run".into()),
        "{r}"
    );
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("not passed: no result for GPU 2 (pbqt/xgmi_interface)"),
        "{r}"
    );
    // A transfer that measured nothing fails both of its GPUs (pbqt.so/src/action.cpp:873-882,941).
    let fail = format!("xgmi_interface={}", c.ids[1]);
    let r = c.run(
        &["--level", "2", "--gpus", "0,1"],
        &[("FAKE_RVS_FAIL", &fail)],
    );
    assert_eq!(outcomes(&r), ["0=failed", "1=failed"], "{r}");
}

#[test]
fn level_2_touches_only_the_selected_gpus_and_one_gpu_leaves_out_pbqt() {
    // GPU 1 is held: before, `-i` left pbqt's `peers: all`, so it got transfers.
    let c = Case::new(&mi300x(3), |root| {
        root.fds(4242, &["/dev/kfd", "/dev/dri/renderD129"])
            .file("proc/4242/comm", "python3\n");
    });
    let r = c.run(&["--level", "2", "--gpus", "0,1,2"], &[]);
    assert_eq!(r["outcome"], "passed", "{r}");
    let sel = c.ids_of(&[0, 2]);
    assert_eq!(
        c.touched(),
        [
            format!("pcie_capability peqt device={sel} peers="),
            format!("hbm_basic babel device={sel} peers="),
            format!("xgmi_interface pbqt device={sel} peers={sel}"),
            format!("pcie_interface pebb device={sel} peers="),
        ]
    );
    assert_eq!(outcomes(&r), ["0=passed", "2=passed"]);

    // One GPU: pbqt (transfers between GPUs) is left out, and the answer says so.
    std::fs::remove_file(c.touched_file()).unwrap();
    let r = c.run(&["--level", "2", "--gpus", "2"], &[]);
    assert_eq!(r["outcome"], "passed", "{r}");
    let one = c.ids_of(&[2]);
    assert_eq!(
        c.touched(),
        [
            format!("pcie_capability peqt device={one} peers="),
            format!("hbm_basic babel device={one} peers="),
            format!("pcie_interface pebb device={one} peers="),
        ]
    );
    assert_eq!(r["gpus"][0]["tests"].as_array().unwrap().len(), 3);
    let left = r["actions_left_out"][0].as_str().unwrap();
    assert!(
        left.starts_with("xgmi_interface (pbqt): transfers between GPUs need two or more"),
        "{r}"
    );
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("left out: xgmi_interface (pbqt)"),
        "{r}"
    );
    // A recipe of nothing but transfers between GPUs does not run on one.
    std::fs::remove_file(c.touched_file()).unwrap();
    let r = c.run(&["--tests", "pbqt_single", "--gpus", "0"], &[]);
    assert_eq!(r["outcome"], "not_run", "{r}");
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("needs two or more GPUs"),
        "{r}"
    );
    assert!(c.touched().is_empty());
}

#[test]
fn small_gpu_ids_are_never_read_as_indexes() {
    // KFD gpu_ids 2 and 1 on a node of three GPUs: as `-i 2,1`, RVS would read indexes 2 and 1
    // (src/gpu_util.cpp:824-834) and test GPUs 2 and 1, the wrong pair. In `device:` they are gpu_ids.
    let mut c = Case::new(&mi300x(3), |_| {});
    let text = std::fs::read_to_string(&c.facts).unwrap();
    let mut facts: Value = serde_json::from_str(&text).unwrap();
    for (i, id) in [2u64, 1, 40000].iter().enumerate() {
        facts["gpus"][i]["amd"]["kfd_nodes"][0]["gpu_id"] = (*id).into();
        c.ids[i] = *id;
    }
    std::fs::write(&c.facts, serde_json::to_vec(&facts).unwrap()).unwrap();
    let r = c.run(&["--level", "2", "--gpus", "0,1"], &[]);
    assert_eq!(r["outcome"], "passed", "{r}");
    assert!(
        c.touched().iter().all(|l| l.contains("device=2 1 ")),
        "{:?}",
        c.touched()
    );
}

fn assert_gone(c: &Case) {
    let pid: i32 = c.recorded("pid").unwrap().parse().unwrap();
    let child: i32 = std::fs::read_to_string(format!("{}.child", c.record().display()))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for p in [pid, child] {
        // SAFETY: signal 0 only checks that the pid exists.
        let alive = unsafe { libc::kill(p, 0) } == 0;
        let zombie = std::fs::read_to_string(format!("/proc/{p}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        assert!(!alive || zombie, "pid {p} is still running");
    }
}

#[test]
fn sigterm_mid_run_stops_rvs_and_leaves_nothing() {
    let c = Case::new(&mi300x(2), |_| {});
    let mut cmd = c
        .probe(
            &["--tests", "gst_single", "--gpus", "0,1"],
            &[("FAKE_RVS_SLEEP", "60")],
        )
        .command();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let waited = Instant::now();
    while !Path::new(&format!("{}.child", c.record().display())).exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "rvs never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: a signal to the node-probe this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &doc["rvs_diag"];
    assert_eq!(r["outcome"], "stopped", "{r}");
    assert_eq!(r["rvs"]["stopped_by"], "cancelled");
    assert!(waited.elapsed() < Duration::from_secs(20));
    assert_eq!(c.recorded("stopped").as_deref(), Some("TERM"));
    no_fail(r);
    assert_gone(&c);
}

#[test]
fn a_hang_that_ignores_its_stop_is_killed_at_the_deadline() {
    let c = Case::new(&mi300x(1), |_| {});
    let t = Instant::now();
    let r = c.run(
        &[
            "--level",
            "1",
            "--gpus",
            "0",
            "--timeout-secs",
            "1",
            "--stop-grace-secs",
            "1",
        ],
        &[("FAKE_RVS_SLEEP", "60"), ("FAKE_RVS_IGNORE_TERM", "1")],
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(r["outcome"], "timed_out", "{r}");
    assert_eq!(r["rvs"]["killed"], true);
    assert_eq!(r["rvs"]["deadline_secs"], 1);
    assert_eq!(outcomes(&r), ["0=incomplete"]);
    no_fail(&r);
    assert_gone(&c);
}

#[test]
fn no_rvs_no_recipe_or_no_result_is_not_run_never_fail() {
    let c = Case::new(&mi300x(1), |_| {});
    let d = NodeProbe::new()
        .args(["--fixture"])
        .arg(&c.facts)
        .args([
            "rvs-diag",
            "--level",
            "1",
            "--gpus",
            "0",
            "--rvs",
            "/nonexistent/rvs",
        ])
        .document();
    assert_eq!(d.code, 0, "{}", d.doc);
    let r = &d.doc["rvs_diag"];
    assert_eq!(r["outcome"], "not_run", "{r}");
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("is not a file"),
        "{r}"
    );
    assert!(r.get("rvs").is_none());

    // A simulated node without --rvs: nothing runs, and it says how to replay one.
    let d = NodeProbe::new()
        .args(["--fixture"])
        .arg(&c.facts)
        .args(["rvs-diag", "--level", "1", "--gpus", "0"])
        .document();
    assert!(
        d.doc["rvs_diag"]["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("--rvs"),
        "{}",
        d.doc
    );

    for (mode, says) in [
        ("none", "wrote no result file"),
        ("garbage", "not JSON"),
        ("huge", "larger than 8 MiB"),
    ] {
        let r = c.run(&["--level", "1", "--gpus", "0"], &[("FAKE_RVS_MODE", mode)]);
        assert_eq!(r["outcome"], "error", "{mode}: {r}");
        assert!(
            r["rvs"]["error"].as_str().unwrap().contains(says),
            "{mode}: {r}"
        );
        assert!(
            r["summary"].as_str().unwrap().contains("not a failure"),
            "{mode}: {r}"
        );
        no_fail(&r);
    }

    // Level 2 is a platform's recipe: an MI210 has none in this conf directory.
    let c = Case::new(&Node::new(vec![Gpu::mi210(0)]), |_| {});
    let r = c.run(&["--level", "2", "--gpus", "0"], &[]);
    assert_eq!(r["outcome"], "not_run", "{r}");
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("no levels/rvs_level_2.conf"),
        "{r}"
    );
    assert!(!c.record().exists(), "rvs ran without its recipe");
}

#[test]
fn level_2_runs_the_platforms_recipe() {
    let c = Case::new(&mi300x(2), |_| {});
    let r = c.run(&["--level", "2", "--gpus", "1"], &[]);
    assert_eq!(r["outcome"], "passed", "{r}");
    assert_eq!(
        r["conf"],
        c.conf
            .join("MI300X/levels/rvs_level_2.conf")
            .display()
            .to_string()
    );
    assert_eq!(
        c.touched()[0],
        format!("pcie_capability peqt device={} peers=", c.ids[1])
    );
}

#[test]
fn partitioned_gpus_are_refused_with_a_clear_line() {
    let c = Case::new(&Node::mi300x_cpx(), |_| {});
    let r = c.run(&["--level", "1", "--gpus", "0,1"], &[]);
    assert_eq!(r["outcome"], "not_run", "{r}");
    let nt = r["not_tested"].as_array().unwrap();
    assert_eq!(nt.len(), 2);
    for n in nt {
        assert_eq!(n["why"], "partitioned", "{n}");
        assert!(n["detail"].as_str().unwrap().contains("CPX"), "{n}");
    }
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("partitioned"),
        "{r}"
    );
    assert!(!c.record().exists(), "rvs ran on a partitioned GPU");
}

#[test]
fn hostile_arguments_are_refused_and_forged_results_ignored() {
    let c = Case::new(&mi300x(2), |root| {
        root.fds(4242, &["/dev/kfd", "/dev/dri/renderD129"])
            .file("proc/4242/comm", "python3\n");
    });
    for args in [
        ["--level", "1", "--gpus", "0;rm -rf /"],
        ["--level", "1", "--gpus", "0 -i 1"],
        ["--tests", "../../../etc/passwd", "--gpus", "0"],
        ["--tests", "gst_single,babel", "--gpus", "0"],
        ["--level", "5", "--gpus", "0"],
        ["--tests", "gst_single", "--gpus", "all"],
    ] {
        c.probe(&args, &[]).run().failure(2, "usage");
        assert!(!c.record().exists(), "rvs ran for {args:?}");
    }
    // An rvs (a tenant's image) that reports a failure on the held GPU 1, which it was never given: the
    // result is ignored and listed, GPU 1 stays not tested, and the run passes on GPU 0.
    let forged = c.ids[1].to_string();
    let r = c.run(
        &["--level", "1", "--gpus", "0,1"],
        &[("FAKE_RVS_MODE", "forge"), ("FAKE_RVS_FORGE_ID", &forged)],
    );
    assert_eq!(
        c.touched(),
        [format!("RVS-GPUP-TC1 gpup device={} peers=", c.ids[0])]
    );
    assert_eq!(r["outcome"], "passed", "{r}");
    assert_eq!(outcomes(&r), ["0=passed"]);
    let ignored = r["ignored_results"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{r}");
    assert!(
        ignored[0]
            .as_str()
            .unwrap()
            .contains(&format!("gpu_id {forged}, not given to rvs: fail"))
    );
}
