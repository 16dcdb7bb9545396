//! Evidence before action on the real node: `collect_evidence` runs the node's own `nvidia-bug-report.sh`
//! from the GPU Operator's driver root (chrooted there, as on a real node) and the archive comes back over
//! the real exec stream; a hung script is cut at its limit with everything it started; `reset_gpu` keeps
//! the archive before `nvidia-smi -r` runs, and its audit names it.
//!
//! The driver root (`/run/nvidia/driver` in the node's mount namespace) holds only the fake NVML, so each
//! case gives it a static busybox as `/bin/sh` and the tools the scripts use, and takes everything away
//! again at the end. The scripts follow NVIDIA's interface: `--safe-mode --output-file NAME`, writing
//! `NAME.gz`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::testbed::{User, unique};
use crate::{Ctx, node};

const DRIVER_ROOT: &str = "/run/nvidia/driver";
/// What the cases add under the driver root, removed by [`DriverRoot::drop`].
const ADDED: [&str; 4] = ["bin", "usr/bin", "tmp", "calls.log"];

/// The driver root made able to run shell scripts, for one case.
struct DriverRoot<'a> {
    c: &'a Ctx,
}

impl<'a> DriverRoot<'a> {
    fn new(c: &'a Ctx) -> Self {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox (realnode.sh installs busybox-static)");
        let mut setup = format!(
            "set -e; cd {DRIVER_ROOT}; mkdir -p bin usr/bin tmp; cp {busybox} bin/busybox; chmod 1777 tmp; "
        );
        for applet in [
            "sh", "cat", "cp", "echo", "gzip", "sleep", "seq", "mkdir", "date", "rm",
        ] {
            setup.push_str(&format!("ln -sf busybox bin/{applet}; "));
        }
        let out = c.node.in_ns(&["sh", "-c", &setup]);
        assert!(out.status.success(), "driver root setup: {out:?}");
        DriverRoot { c }
    }

    /// Install `body` as an executable under the driver root (`in_ns` gives no stdin: copied from a file
    /// of ours, which the node's mount namespace sees).
    fn script(&self, rel: &str, body: &str) {
        let path = format!("{DRIVER_ROOT}/{rel}");
        let tmp = self.c.tb.dir.join(unique("script"));
        std::fs::write(&tmp, body).unwrap();
        let out = self.c.node.in_ns(&[
            "sh",
            "-c",
            &format!("cp {} {path} && chmod 755 {path}", tmp.display()),
        ]);
        let _ = std::fs::remove_file(&tmp);
        assert!(out.status.success(), "write {path}: {out:?}");
    }

    /// A file under the driver root, as the node has it.
    fn read(&self, rel: &str) -> String {
        let out = self.c.node.in_ns(&["cat", &format!("{DRIVER_ROOT}/{rel}")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What is left in the driver root's `/tmp` (node-probe's private directories go there).
    fn tmp_entries(&self) -> Vec<String> {
        let out = self
            .c
            .node
            .in_ns(&["ls", "-A", &format!("{DRIVER_ROOT}/tmp")]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for DriverRoot<'_> {
    fn drop(&mut self) {
        let paths: Vec<String> = ADDED.iter().map(|p| format!("{DRIVER_ROOT}/{p}")).collect();
        let mut args = vec!["rm", "-rf"];
        args.extend(paths.iter().map(String::as_str));
        let _ = self.c.node.in_ns(&args);
    }
}

/// A bug-report script of NVIDIA's interface: safe mode required, `NAME.gz` written, a line appended to
/// `/calls.log` (in the driver root) so the order of what ran on the node can be read back.
fn writing_bug_report(marker: &str) -> String {
    format!(
        "#!/bin/sh\nsafe=no\nwhile [ $# -gt 0 ]; do case \"$1\" in --safe-mode) safe=yes;; \
         --output-file) out=\"$2\"; shift;; esac; shift; done\n\
         [ \"$safe\" = yes ] || exit 9\n\
         echo \"bug-report $out\" >> /calls.log\n\
         {{ echo '{marker}'; seq 1 20000; }} | gzip -c > \"$out.gz\"\n\
         echo 'Running nvidia-bug-report.sh... complete.'\n"
    )
}

/// The archive the answer names, checked against its size and SHA-256, unpacked into a new directory.
fn archive(v: &Value) -> (PathBuf, PathBuf) {
    let e = &v["evidence"];
    let file = Path::new(e["dir"].as_str().expect("dir")).join(e["name"].as_str().expect("name"));
    let bytes = std::fs::read(&file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
    assert_eq!(Some(bytes.len() as u64), e["bytes"].as_u64(), "{e}");
    let sum = Command::new("sha256sum").arg(&file).output().unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(
        sum.split_whitespace().next(),
        e["sha256"].as_str(),
        "the archive on disk is not the one the answer names"
    );
    let out = file.with_extension("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&file)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success(), "tar -xzf {}", file.display());
    (file, out)
}

fn gunzip(path: &Path) -> String {
    let out = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(out.status.success(), "gzip -dc {}", path.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn evidence_dir(c: &Ctx, tag: &str) -> PathBuf {
    c.tb.dir.join(unique(tag))
}

pub async fn collect_evidence_runs_the_nodes_bug_report_and_leaves_nothing(c: &Ctx) {
    let root = DriverRoot::new(c);
    let marker = unique("rnbugreport");
    root.script("usr/bin/nvidia-bug-report.sh", &writing_bug_report(&marker));
    let dir = evidence_dir(c, "rn-evidence");
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            dir.to_str().unwrap(),
        ])
        .await;
    let t = Instant::now();
    let v = l
        .ok("collect_evidence", json!({"node_name": c.name()}))
        .await;
    eprintln!(
        "collect_evidence on the real node: {} ms, archive {} bytes",
        t.elapsed().as_millis(),
        v["evidence"]["bytes"]
    );
    l.stop().await;
    let bug = &v["evidence"]["bug_report"];
    assert_eq!(bug["status"], "collected", "{v:#}");
    assert_eq!(bug["member"], "nvidia-bug-report.log.gz", "{bug}");
    // Found in the driver root and run chrooted there, as NVIDIA's own script would be.
    assert!(
        bug["argv"].to_string().contains(DRIVER_ROOT),
        "not run in the driver root: {bug}"
    );
    let (_, unpacked) = archive(&v);
    let report = gunzip(&unpacked.join("nvidia-bug-report.log.gz"));
    let mut lines = report.lines();
    assert_eq!(
        lines.next(),
        Some(marker.as_str()),
        "not the script's output"
    );
    assert_eq!(lines.count(), 20000, "the script's output was cut");
    for m in [
        "index.json",
        "describe.json",
        "xid-history.json",
        "kmsg.txt",
    ] {
        assert!(unpacked.join(m).is_file(), "{m} missing from the archive");
    }
    let describe: Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("describe.json")).unwrap()).unwrap();
    assert!(
        describe.to_string().contains(&crate::gpu_uuid(0)),
        "describe.json is not the node's (no fake NVML GPU)"
    );
    assert_eq!(
        root.read("calls.log").lines().count(),
        1,
        "the script ran once"
    );
    assert!(
        root.tmp_entries().is_empty(),
        "left on the node: {:?}",
        root.tmp_entries()
    );
    c.assert_no_probe_pods();
}

/// `pgrep -f` on the whole machine: the node's processes are this machine's.
fn running(pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep"))
        .map(str::to_string)
        .collect()
}

pub async fn collect_evidence_cuts_a_hung_bug_report_at_its_limit_with_all_it_started(c: &Ctx) {
    let root = DriverRoot::new(c);
    let marker = unique("rnhung");
    // A child that would outlive the script unless its whole process group is killed, then a hang.
    root.script(
        "usr/bin/nvidia-bug-report.sh",
        &format!(
            "#!/bin/sh\necho starting\nsh -c 'sleep 1001; echo {marker}' &\nsleep 1002\necho {marker}\n"
        ),
    );
    let dir = evidence_dir(c, "rn-evidence-hung");
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            dir.to_str().unwrap(),
        ])
        .await;
    let limit = 3;
    let t = Instant::now();
    let v = l
        .ok(
            "collect_evidence",
            json!({"node_name": c.name(), "time_limit_secs": limit}),
        )
        .await;
    let took = t.elapsed();
    eprintln!("hung nvidia-bug-report.sh, limit {limit} s: the call took {took:?}");
    l.stop().await;
    let bug = &v["evidence"]["bug_report"];
    assert_eq!(bug["status"], "timed_out", "{v:#}");
    assert!(
        bug["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("cut at its {limit} s limit"))),
        "{bug}"
    );
    let elapsed = bug["elapsed_ms"].as_u64().unwrap();
    assert!(
        (limit * 1000..(limit + 10) * 1000).contains(&elapsed),
        "cut after {elapsed} ms, limit {limit} s"
    );
    // The whole call stays far from the script's 1000 s (pod start and transfer on a busy machine aside).
    assert!(took < Duration::from_secs(90), "{took:?}");
    // The rest of the archive came anyway.
    let (_, unpacked) = archive(&v);
    assert!(unpacked.join("describe.json").is_file());
    assert!(!unpacked.join("nvidia-bug-report.log.gz").exists());
    // Nothing it started runs on: the kill is immediate, give the kernel a moment to reap.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !running(&marker).is_empty() || !running("sleep 100[12]").is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running after the cut: {:?} {:?}",
            running(&marker),
            running("sleep 100[12]")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        root.tmp_entries().is_empty(),
        "left on the node: {:?}",
        root.tmp_entries()
    );
    c.assert_no_probe_pods();
}

/// The operator's roles for the operator user: the probe namespace and the cluster-wide operator role.
fn bind_operator(c: &Ctx) {
    c.tb.probe_namespace(&c.ns, User::Operator);
    c.tb.bind_reader(User::Operator);
    let name = User::Operator.name();
    c.tb.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: rn-operator-{name}}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-operator}}\n\
         subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {name}}}]\n"
    ));
}

pub async fn reset_gpu_keeps_the_evidence_first_and_the_audit_names_it(c: &Ctx) {
    let root = DriverRoot::new(c);
    let marker = unique("rnreset");
    root.script("usr/bin/nvidia-bug-report.sh", &writing_bug_report(&marker));
    // The driver's nvidia-smi, as the reset runs it (chrooted in the driver root): it records each call
    // after what ran before it.
    root.script(
        "usr/bin/nvidia-smi",
        "#!/bin/sh\necho \"nvidia-smi $*\" >> /calls.log\n",
    );
    bind_operator(c);
    // GPU 0 idle, so the preflight lets the reset run.
    c.node.set_fake_nvml("FAKE_NVML_PID", "none");
    let dir = evidence_dir(c, "rn-evidence-reset");
    let l = crate::mcp::start(
        c.tb,
        User::Operator,
        &c.ns,
        &[
            "--mode",
            "operator",
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            dir.to_str().unwrap(),
        ],
    )
    .await;
    let v = l
        .ok(
            "reset_gpu",
            json!({"node_name": c.name(), "gpu": "0", "confirm": format!("{}/gpu/0", c.name())}),
        )
        .await;
    let stderr = l.stderr();
    l.stop().await;
    c.node.clear_fake_nvml("FAKE_NVML_PID");
    let calls = root.read("calls.log");
    eprintln!(
        "reset_gpu on the real node: {}\ncalls: {calls}",
        v["result"]
    );
    let name = v["evidence"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence kept: {v:#}"));
    let sha = v["evidence"]["sha256"].as_str().unwrap();
    // The archive is whole on disk and holds the node's state from before the reset.
    let (_, unpacked) = archive(&v);
    let report = gunzip(&unpacked.join("nvidia-bug-report.log.gz"));
    assert!(report.starts_with(&marker), "not this case's bug report");
    // On the node: the bug report ran, and only then nvidia-smi -r.
    let order: Vec<&str> = calls.lines().collect();
    let bug_at = order.iter().position(|l| l.starts_with("bug-report"));
    let reset_at = order.iter().position(|l| l.contains("-r -i 0"));
    assert!(
        bug_at.is_some() && reset_at.is_some() && bug_at < reset_at,
        "the evidence was not kept before the reset ran: {order:?}\n{v:#}"
    );
    // The audit: the stderr line and the Node Event name the archive and its digest.
    let audit: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["audit"]["action"] == "reset_gpu")
        .collect();
    assert!(
        audit.iter().any(|a| {
            let m = a["audit"]["message"].as_str().unwrap_or("");
            m.contains(name) && m.contains(sha)
        }),
        "no audit line names {name} and {sha}: {audit:?}"
    );
    let events = c.tb.kubectl(&[
        "-n",
        "default",
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.kind=Node,involvedObject.name={}", c.name()),
        "-o",
        "json",
    ]);
    let ev: Value = serde_json::from_str(&events).unwrap_or(Value::Null);
    assert!(
        ev["items"].as_array().into_iter().flatten().any(|e| {
            let s = e.to_string();
            s.contains("reset_gpu") && s.contains(name) && s.contains(sha)
        }),
        "no Node Event names {name} and {sha}"
    );
    assert!(
        root.tmp_entries().is_empty(),
        "left on the node: {:?}",
        root.tmp_entries()
    );
    c.assert_no_probe_pods();
}
