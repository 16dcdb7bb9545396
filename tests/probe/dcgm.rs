//! `node-probe dcgm-diag` through the real binary: the H100 node of tests/operator as a fixture (its GPUs
//! made idle, or held by each kind of holder), and `tests/fake-dcgm/dcgmi` replaying the outputs of
//! tests/fixtures/dcgm: pass, fail, warning, refused, timeout, a cancel mid-run, no dcgmi, hostile output.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::NodeProbe;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn fake_dcgmi() -> PathBuf {
    repo("tests/fake-dcgm/dcgmi")
}

fn output(name: &str) -> PathBuf {
    repo(&format!("tests/fixtures/dcgm/{name}"))
}

/// The H100 node with no process on its GPUs; `edit` changes it (a holder) before it is written.
fn node(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("tests/operator/fixtures/h100-hgx.json")).unwrap(),
    )
    .unwrap();
    for g in v["gpus"].as_array_mut().unwrap() {
        g["processes"] = json!([]);
    }
    edit(&mut v);
    let p = dir.join("node.json");
    std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    p
}

struct Case {
    dir: tempfile::TempDir,
    facts: PathBuf,
}

impl Case {
    fn new(edit: impl FnOnce(&mut Value)) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let facts = node(dir.path(), edit);
        Case { dir, facts }
    }
    fn idle() -> Case {
        Case::new(|_| {})
    }
    fn record(&self) -> PathBuf {
        self.dir.path().join("record")
    }
    fn probe(&self, out: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> NodeProbe {
        let mut p = NodeProbe::new();
        p.args(["--fixture"])
            .arg(&self.facts)
            .args(["--node-name", "gpu-node-5", "dcgm-diag", "--dcgmi"])
            .arg(fake_dcgmi())
            .args(extra)
            .env("FAKE_DCGMI_RECORD", self.record());
        if let Some(o) = out {
            p.env("FAKE_DCGMI_OUTPUT", output(o));
        }
        p.envs(env.iter().copied());
        p
    }
    fn run(&self, out: &str, extra: &[&str]) -> Value {
        let d = self.probe(Some(out), extra, &[]).document();
        assert_eq!(d.code, 0, "{}", d.doc);
        d.doc["dcgm_diag"].clone()
    }
}

fn gpu_outcomes(r: &Value) -> Vec<String> {
    r["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{}={}", g["index"], g["outcome"].as_str().unwrap()))
        .collect()
}

fn no_fail(r: &Value) {
    assert!(
        r["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["outcome"] != "failed"),
        "{r}"
    );
    assert_ne!(r["outcome"], "failed", "{r}");
}

#[test]
fn a_pass_runs_dcgmi_on_the_idle_gpus_with_the_levels_arguments() {
    let c = Case::idle();
    let r = c.run("v4-level2-pass.0.json", &["--level", "2", "--gpus", "0,1"]);
    assert_eq!(r["outcome"], "passed", "{r}");
    assert_eq!(gpu_outcomes(&r), ["0=passed", "1=passed"]);
    assert_eq!(
        r["dcgm"]["argv"],
        json!(["diag", "-r", "2", "-j", "-i", "0,1"])
    );
    assert_eq!(r["dcgm"]["deadline_secs"], 900);
    let rec = std::fs::read_to_string(c.record()).unwrap();
    assert!(rec.contains("args=diag -r 2 -j -i 0,1"), "{rec}");
    // It ran in a private directory, removed afterwards.
    let cwd = rec.lines().find_map(|l| l.strip_prefix("cwd=")).unwrap();
    assert!(cwd.contains("k8s-gpu-mcp-dcgm."), "{cwd}");
    assert!(!Path::new(cwd).exists());
    // dcgmi's output as printed travels in the document, for the launcher's resource.
    assert!(
        r["raw_output"]
            .as_str()
            .unwrap()
            .contains("\"DCGM Diagnostic\"")
    );
    let passes: Vec<&str> = r["incidents"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "dcgm.passed")
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    assert_eq!(passes.len(), 2, "{r}");
    assert!(
        passes[0].starts_with("GPU 0 passed DCGM level 2 at 20"),
        "{passes:?}"
    );
}

#[test]
fn named_tests_and_uuids() {
    let c = Case::idle();
    let facts: Value = serde_json::from_str(&std::fs::read_to_string(&c.facts).unwrap()).unwrap();
    let uuid = facts["gpus"][1]["uuid"].as_str().unwrap().to_string();
    let r = c.run(
        "v4-level2-pass.0.json",
        &["--tests", "pcie,memory", "--gpus", &uuid],
    );
    assert_eq!(
        r["dcgm"]["argv"],
        json!(["diag", "-r", "pcie,memory", "-j", "-i", "1"])
    );
    assert_eq!(r["run"], "tests pcie, memory");
}

#[test]
fn all_gpus_at_level_1_only() {
    let c = Case::idle();
    let r = c.run("v4-level1-pass.0.json", &["--level", "1", "--gpus", "all"]);
    assert_eq!(
        r["dcgm"]["argv"],
        json!(["diag", "-r", "1", "-j", "-i", "0,1"])
    );
    assert_eq!(r["requested_gpus"], json!(["all"]));
    let d = c
        .probe(None, &["--level", "2", "--gpus", "all"], &[])
        .document();
    assert_eq!(d.code, 2, "{}", d.doc);
    assert!(
        d.doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("level 1 only")
    );
}

#[test]
fn failures_and_warnings_of_both_versions() {
    let c = Case::idle();
    for (out, outcome, gpus) in [
        (
            "v4-memory-fail.205.json",
            "failed",
            ["0=passed", "1=failed"],
        ),
        (
            "v3-memory-fail.205.json",
            "failed",
            ["0=passed", "1=failed"],
        ),
        ("v4-pcie-fail.226.json", "failed", ["0=failed", "1=passed"]),
        (
            "v4-persistence-warn.226.json",
            "warnings",
            ["0=warnings", "1=warnings"],
        ),
        (
            "v3-persistence-warn.0.json",
            "warnings",
            ["0=warnings", "1=warnings"],
        ),
    ] {
        let r = c.run(out, &["--level", "2", "--gpus", "0,1"]);
        assert_eq!(r["outcome"], outcome, "{out}: {r}");
        assert_eq!(gpu_outcomes(&r), gpus, "{out}");
    }
    let r = c.run(
        "v4-memory-fail.205.json",
        &["--level", "2", "--gpus", "0,1"],
    );
    let inc = &r["incidents"]["incidents"][0];
    assert_eq!(
        (inc["code"].as_str(), inc["gpu"].as_u64()),
        (Some("gpu.memory"), Some(1))
    );
    assert!(
        r["summary"]
            .as_str()
            .unwrap()
            .contains("DCGM_FR_FAULTY_MEMORY"),
        "{r}"
    );
}

#[test]
fn refusals_are_not_run_never_fail() {
    let c = Case::idle();
    for out in [
        "v4-in-use.222.json",
        "v4-already-running.217.json",
        "v4-mig-refused.226.json",
    ] {
        let r = c.run(out, &["--level", "1", "--gpus", "0,1"]);
        assert_eq!(r["outcome"], "not_run", "{out}: {r}");
        no_fail(&r);
        assert!(r["not_run_reason"].as_str().unwrap().len() > 10);
    }
    let r = c.run("v4-in-use.222.json", &["--level", "1", "--gpus", "0,1"]);
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("another diagnostic holds the DCGM host engine")
    );
    let r = c.run("v4-timeout.245.json", &["--level", "1", "--gpus", "0,1"]);
    assert_eq!(r["outcome"], "timed_out");
    no_fail(&r);
    let r = c.run("v4-killed.203.json", &["--level", "1", "--gpus", "0,1"]);
    assert_eq!(r["outcome"], "stopped");
    no_fail(&r);
}

#[test]
fn the_deadline_stops_dcgmi_and_its_children() {
    let c = Case::idle();
    let started = Instant::now();
    let d = c
        .probe(
            Some("v4-level1-pass.0.json"),
            &["--level", "1", "--gpus", "0", "--timeout-secs", "1"],
            &[("FAKE_DCGMI_SLEEP", "60")],
        )
        .document();
    assert!(started.elapsed() < Duration::from_secs(20));
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "timed_out", "{r}");
    assert_eq!(r["dcgm"]["stopped_by"], "deadline");
    assert_eq!(r["dcgm"]["exit_status"], 203);
    no_fail(r);
    assert_gone(&c);
}

#[test]
fn a_dcgmi_that_ignores_its_stop_is_killed_with_its_group() {
    let c = Case::idle();
    let started = Instant::now();
    let d = c
        .probe(
            Some("v4-level1-pass.0.json"),
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
            &[("FAKE_DCGMI_SLEEP", "60"), ("FAKE_DCGMI_IGNORE_TERM", "1")],
        )
        .document();
    assert!(started.elapsed() < Duration::from_secs(20));
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "timed_out", "{r}");
    assert_eq!(r["dcgm"]["killed"], true);
    no_fail(r);
    assert_gone(&c);
}

/// Neither the fake dcgmi nor its child (the `sleep`, as nvvs) is left.
fn assert_gone(c: &Case) {
    let rec = std::fs::read_to_string(c.record()).unwrap();
    let pid: i32 = rec
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
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
fn sigterm_mid_run_stops_the_run_and_leaves_nothing() {
    let c = Case::idle();
    let mut cmd = c
        .probe(
            Some("v4-level2-pass.0.json"),
            &["--level", "2", "--gpus", "0,1"],
            &[("FAKE_DCGMI_SLEEP", "60")],
        )
        .command();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let waited = Instant::now();
    while !Path::new(&format!("{}.child", c.record().display())).exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "dcgmi never started"
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
    let r = &doc["dcgm_diag"];
    assert_eq!(r["outcome"], "stopped", "{r}");
    assert_eq!(r["dcgm"]["stopped_by"], "cancelled");
    assert!(waited.elapsed() < Duration::from_secs(20));
    no_fail(r);
    assert_gone(&c);
}

#[test]
fn a_killed_probe_still_stops_dcgmi() {
    let c = Case::idle();
    let mut cmd = c
        .probe(
            Some("v4-level2-pass.0.json"),
            &["--level", "2", "--gpus", "0,1"],
            &[("FAKE_DCGMI_SLEEP", "60")],
        )
        .command();
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let waited = Instant::now();
    while !Path::new(&format!("{}.child", c.record().display())).exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "dcgmi never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGKILL: node-probe gets no chance to stop dcgmi itself (a local runner's cancel).
    child.kill().unwrap();
    child.wait().unwrap();
    // dcgmi's parent-death signal is SIGTERM: it exits as its stop does. Its `sleep` child is its own
    // group's; the fake (unlike nvvs under a real engine) leaves it, so only dcgmi itself is checked.
    let rec = std::fs::read_to_string(c.record()).unwrap();
    let pid: i32 = rec
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    let gone = Instant::now();
    loop {
        // SAFETY: signal 0 only checks that the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
        if !alive {
            break;
        }
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "dcgmi {pid} outlived node-probe"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The fake's `sleep`, which this test's node-probe started: not left behind.
    let sleep: i32 = std::fs::read_to_string(format!("{}.child", c.record().display()))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: a signal to the `sleep` this test's fake dcgmi started.
    unsafe { libc::kill(sleep, libc::SIGKILL) };
}

#[test]
fn busy_gpus_of_every_holder_kind_are_not_run_and_never_fail() {
    // A process on GPU 0 (NVML lists it).
    let c = Case::new(|v| {
        v["gpus"][0]["processes"] =
            json!([{"pid": 4242, "kind": "compute", "used_memory_bytes": 1073741824}]);
    });
    let r = c.run("v4-memory-fail.205.json", &["--level", "2", "--gpus", "0"]);
    assert_eq!(r["outcome"], "not_run", "{r}");
    assert_eq!(r["not_tested"][0]["why"], "held");
    assert!(r["dcgm"].is_null(), "dcgmi must not run: {r}");
    assert!(!c.record().exists(), "dcgmi ran");
    no_fail(&r);

    // A device-plugin pod on GPU 0 and a DRA claim on GPU 1, as the kubelet names them: nothing runs.
    let c = Case::new(|v| {
        let uuid0 = v["gpus"][0]["uuid"].clone();
        let minor1 = v["gpus"][1]["minor_number"].clone();
        v["pod_resources"] = json!({
            "socket": "var/lib/kubelet/pod-resources/kubelet.sock",
            "pods": [
                {"name": "train-0", "namespace": "ml", "containers": [
                    {"name": "main", "devices": [{"resource_name": "nvidia.com/gpu", "device_ids": [uuid0]}]}]},
                {"name": "infer-0", "namespace": "serve", "containers": [
                    {"name": "main", "claims": [{"name": "gpu-claim", "namespace": "serve", "devices": [
                        {"driver": "gpu.nvidia.com", "pool": "gpu-node-5", "device": format!("gpu-{minor1}")}]}]}]}
            ],
            "allocatable": []
        });
    });
    let r = c.run(
        "v4-memory-fail.205.json",
        &["--level", "2", "--gpus", "0,1"],
    );
    assert_eq!(r["outcome"], "not_run", "{r}");
    assert!(!c.record().exists(), "dcgmi ran");
    let details: Vec<&str> = r["not_tested"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["detail"].as_str().unwrap())
        .collect();
    assert!(details[0].contains("ml/train-0"), "{details:?}");
    assert!(details[1].contains("DRA claim"), "{details:?}");
    no_fail(&r);

    // One held, one idle: only the idle one is tested, and a failure printed for the held one is ignored.
    let c = Case::new(|v| {
        v["gpus"][1]["processes"] = json!([{"pid": 4242, "kind": "compute"}]);
    });
    let r = c.run(
        "v4-memory-fail.205.json",
        &["--level", "2", "--gpus", "0,1"],
    );
    assert_eq!(
        r["dcgm"]["argv"],
        json!(["diag", "-r", "2", "-j", "-i", "0"])
    );
    assert_eq!(gpu_outcomes(&r), ["0=passed"]);
    assert_eq!(r["not_tested"][0]["index"], 1);
}

#[test]
fn no_dcgmi_is_a_clear_answer() {
    let c = Case::idle();
    let d = NodeProbe::new()
        .args(["--fixture"])
        .arg(&c.facts)
        .args([
            "dcgm-diag",
            "--level",
            "1",
            "--gpus",
            "0",
            "--dcgmi",
            "/nonexistent/dcgmi",
        ])
        .document();
    assert_eq!(d.code, 0);
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "not_run");
    assert!(
        r["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("is not a file")
    );
    // A simulated node without --dcgmi never runs anything.
    let d = NodeProbe::new()
        .args(["--fixture"])
        .arg(&c.facts)
        .args(["dcgm-diag", "--level", "1", "--gpus", "0"])
        .document();
    assert!(
        d.doc["dcgm_diag"]["not_run_reason"]
            .as_str()
            .unwrap()
            .contains("--dcgmi")
    );
}

#[test]
fn the_grammar_is_closed() {
    let c = Case::idle();
    for args in [
        vec!["--level", "4", "--gpus", "0"],
        vec!["--level", "1;reboot", "--gpus", "0"],
        vec!["--tests", "memtest", "--gpus", "0"],
        vec!["--level", "2", "--gpus", "all"],
        vec!["--level", "1", "--gpus", "0,0"],
        vec!["--level", "1", "--gpus", "0", "--timeout-secs", "9999"],
    ] {
        let d = NodeProbe::new()
            .args(["--fixture"])
            .arg(&c.facts)
            .arg("dcgm-diag")
            .args(&args)
            .document();
        assert_eq!(d.code, 2, "{args:?}: {}", d.doc);
        assert_eq!(d.doc["error"]["kind"], "usage");
    }
}

#[test]
fn hostile_output_is_bounded_or_a_clear_error() {
    let c = Case::idle();
    // Huge: 40 MB of results; the probe reads 4 MiB, says so, and fails no GPU.
    let big = c.dir.path().join("huge.0.json");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        write!(f, r#"{{"DCGM Diagnostic":{{"test_categories":[{{"category":"Hardware","tests":[{{"name":"memory","results":["#).unwrap();
        let r = format!(
            r#"{{"entity_group":"GPU","entity_id":1,"status":"Fail","warnings":[{{"warning":"{}","error_id":52}}]}}"#,
            "x".repeat(4000)
        );
        for i in 0..10_000 {
            if i > 0 {
                write!(f, ",").unwrap();
            }
            write!(f, "{r}").unwrap();
        }
        write!(f, "]}}]}}]}}}}").unwrap();
    }
    let d = c
        .probe(None, &["--level", "2", "--gpus", "0,1"], &[])
        .env("FAKE_DCGMI_OUTPUT", &big)
        .document();
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "error", "{}", r["summary"]);
    assert!(
        r["dcgm"]["output_error"]
            .as_str()
            .unwrap()
            .contains("more than"),
        "{r}"
    );
    assert!(d.doc.to_string().len() < 400 << 10);
    assert!(
        r["raw_output"]
            .as_str()
            .unwrap()
            .ends_with("more bytes not kept]")
    );
    no_fail(r);
    // Malformed.
    let bad = c.dir.path().join("bad.226.json");
    std::fs::write(&bad, "Error: something {\"DCGM Diagnostic\": [").unwrap();
    let d = c
        .probe(None, &["--level", "2", "--gpus", "0,1"], &[])
        .env("FAKE_DCGMI_OUTPUT", &bad)
        .document();
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "error");
    assert!(
        r["dcgm"]["output_error"]
            .as_str()
            .unwrap()
            .contains("not JSON"),
        "{r}"
    );
    no_fail(r);
}

#[test]
fn amd_gpus_are_not_dcgms_and_the_answer_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    // Every GPU AMD's: nothing runs, and the reason is the vendor, not "held".
    let d = NodeProbe::new()
        .args([
            "--simulate",
            "mi300x-healthy",
            "dcgm-diag",
            "--level",
            "1",
            "--gpus",
            "all",
            "--dcgmi",
        ])
        .arg(fake_dcgmi())
        .env("FAKE_DCGMI_RECORD", &record)
        .env("FAKE_DCGMI_OUTPUT", output("v4-level1-pass.0.json"))
        .document();
    assert_eq!(d.code, 0, "{}", d.doc);
    let r = &d.doc["dcgm_diag"];
    assert_eq!(r["outcome"], "not_run", "{r}");
    let why = r["not_run_reason"].as_str().unwrap();
    assert!(
        why.contains("every requested device is an AMD GPU"),
        "{why}"
    );
    assert!(
        r["not_tested"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["why"] == "other_vendor")
    );
    assert!(!record.exists(), "dcgmi ran on an AMD node");
}
