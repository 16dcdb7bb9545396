//! `node-probe evidence` with fake `nvidia-bug-report.sh` scripts of the real interface (`--safe-mode
//! --output-file NAME`, writing `NAME.gz` when the node has gzip and `NAME` when not, as NVIDIA's script
//! does): one that writes a known archive, one that hangs, none at all. The real binary
//! runs; the archive is decoded and unpacked as the launcher would.

#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use base64::Engine;
use host_root::HostRoot;
use node_probe::NodeProbe;

const SCENARIO: &str = "dgx-h100-healthy";

fn script(dir: &HostRoot, name: &str, body: &str) -> PathBuf {
    let p = dir.write(name, format!("#!/bin/sh\n{body}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The archive's members, name → bytes, in order.
fn unpack(report: &serde_json::Value) -> Vec<(String, Vec<u8>)> {
    let b64 = report["archive_base64"].as_str().expect("archive_base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    tar.entries()
        .expect("tar")
        .map(|e| {
            let mut e = e.expect("entry");
            let name = e.path().unwrap().display().to_string();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            (name, b)
        })
        .collect()
}

fn evidence(tmp: &Path, args: &[&str]) -> serde_json::Value {
    let out = NodeProbe::new()
        .env("TMPDIR", tmp)
        .args(["--simulate", SCENARIO, "evidence"])
        .args(args)
        .run();
    out.success()["evidence"].clone()
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// A script of NVIDIA's interface that writes `fixture` as its output: as `NAME.gz` with `gzip`, else as
/// `NAME` (the real script appends `.gz` itself when it can compress; an earlier probe passed a name
/// ending in `.gz` and never found the output of the real script).
fn writing_script(dir: &HostRoot, fixture: &Path, gzip: bool) -> PathBuf {
    let suffix = if gzip { ".gz" } else { "" };
    script(
        dir,
        "nvidia-bug-report.sh",
        &format!(
            "safe=no\nwhile [ $# -gt 0 ]; do case \"$1\" in --safe-mode) safe=yes;; \
             --output-file) out=\"$2\"; shift;; esac; shift; done\n\
             [ \"$safe\" = yes ] || exit 9\n\
             cp {} \"$out{suffix}\"\necho 'Complete.'\n",
            fixture.display()
        ),
    )
}

#[test]
fn a_written_bug_report_arrives_intact_with_the_probes_own_view_and_nothing_left() {
    for (gzip, name) in [
        (true, "nvidia-bug-report.log.gz"),
        (false, "nvidia-bug-report.log"),
    ] {
        let dir = HostRoot::new();
        let tmp = HostRoot::new();
        // Not text: any byte must survive the trip.
        let known: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let fixture = dir.path().join("known");
        std::fs::write(&fixture, &known).unwrap();
        let s = writing_script(&dir, &fixture, gzip);
        let r = evidence(tmp.path(), &["--bug-report", s.to_str().unwrap()]);
        let bug = &r["index"]["bug_report"];
        assert_eq!(bug["status"], "collected", "gzip {gzip}: {bug}");
        assert_eq!(bug["exit_code"], 0);
        assert_eq!(bug["member"], name);
        assert!(
            bug["argv"]
                .as_array()
                .unwrap()
                .last()
                .and_then(|a| a.as_str())
                .is_some_and(|a| a.ends_with("/nvidia-bug-report.log")),
            "the script is given the base name: {bug}"
        );
        assert!(bug["output_tail"].as_str().unwrap().contains("Complete."));
        let members = unpack(&r);
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(
            names,
            ["index.json", "describe.json", "xid-history.json", name]
        );
        assert_eq!(
            members[3].1, known,
            "the script's output changed on the way"
        );
        let index: serde_json::Value = serde_json::from_slice(&members[0].1).unwrap();
        assert_eq!(index, r["index"]);
        let describe: serde_json::Value = serde_json::from_slice(&members[1].1).unwrap();
        assert!(
            describe["describe"]["inventory"]["gpus"]
                .as_array()
                .is_some_and(|g| g.len() == 8),
            "{}",
            &describe.to_string()[..300]
        );
        assert!(empty(tmp.path()), "the private directory was left behind");
    }
}

#[test]
fn a_hung_bug_report_is_cut_at_its_limit_with_its_children() {
    let dir = HostRoot::new();
    let tmp = HostRoot::new();
    let pidfile = dir.path().join("child.pid");
    let s = script(
        &dir,
        "nvidia-bug-report.sh",
        &format!(
            "sleep 1000 &\necho $! > {}\necho 'Running nvidia-smi...'\nwait\n",
            pidfile.display()
        ),
    );
    let t0 = Instant::now();
    let r = evidence(
        tmp.path(),
        &["--bug-report", s.to_str().unwrap(), "--time-limit", "2"],
    );
    let took = t0.elapsed();
    let bug = &r["index"]["bug_report"];
    assert_eq!(bug["status"], "timed_out", "{bug}");
    assert!(
        bug["detail"]
            .as_str()
            .unwrap()
            .contains("cut at its 2 s limit"),
        "{bug}"
    );
    assert!(
        bug["output_tail"]
            .as_str()
            .unwrap()
            .contains("Running nvidia-smi")
    );
    assert!(bug["elapsed_ms"].as_u64().unwrap() >= 2000);
    // The cut is the limit plus at most the 5 s grace, not the script's 1000 s.
    assert!(took.as_secs() < 60, "took {took:?}");
    let names: Vec<String> = unpack(&r).into_iter().map(|m| m.0).collect();
    assert_eq!(names, ["index.json", "describe.json", "xid-history.json"]);
    // The background child was in the group: it is gone (or a zombie awaiting its new parent).
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim().chars().next();
    assert!(
        matches!(state, None | Some('Z') | Some('X')),
        "child still alive: {stat}"
    );
    assert!(empty(tmp.path()), "the private directory was left behind");
}

#[test]
fn a_node_without_the_script_gets_the_rest_and_is_told() {
    let host = HostRoot::new();
    let tmp = HostRoot::new();
    // A real (not simulated) run on a bare host root: no NVML, no kmsg, no script; still an archive.
    let out = NodeProbe::new()
        .env("TMPDIR", tmp.path())
        .args([
            "--host-root",
            host.path().to_str().unwrap(),
            "--nvml-timeout",
            "5",
        ])
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "evidence"])
        .run();
    let r = out.success()["evidence"].clone();
    let bug = &r["index"]["bug_report"];
    assert_eq!(bug["status"], "absent");
    assert!(
        bug["detail"]
            .as_str()
            .unwrap()
            .contains("no nvidia-bug-report.sh")
            && bug["detail"]
                .as_str()
                .unwrap()
                .contains("run/nvidia/driver"),
        "{bug}"
    );
    let names: Vec<String> = unpack(&r).into_iter().map(|m| m.0).collect();
    assert_eq!(names, ["index.json", "describe.json", "xid-history.json"]);
    let notes = r["index"]["notes"].to_string();
    assert!(notes.contains("kmsg.txt"), "{notes}");
}

#[test]
fn a_simulated_node_does_not_run_the_launchers_own_script() {
    let tmp = HostRoot::new();
    let r = evidence(tmp.path(), &[]);
    let bug = &r["index"]["bug_report"];
    assert_eq!(bug["status"], "absent");
    assert!(
        bug["detail"].as_str().unwrap().contains("simulated"),
        "{bug}"
    );
}

#[test]
fn a_missing_explicit_script_and_a_bad_limit_are_usage_errors() {
    NodeProbe::new()
        .args([
            "--simulate",
            SCENARIO,
            "evidence",
            "--bug-report",
            "/nonexistent/x.sh",
        ])
        .run()
        .failure(2, "usage");
    for bad in ["0", "601", "soon"] {
        NodeProbe::new()
            .args(["--simulate", SCENARIO, "evidence", "--time-limit", bad])
            .run()
            .failure(2, "usage");
    }
}
