//! Shared helpers for the launcher's integration tests: the real binaries, scenarios, fake probes.
#![allow(dead_code)]

#[path = "../../support/mcp.rs"]
pub mod mcp;
#[path = "../../support/tools.rs"]
pub mod tools;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const LAUNCHER: &str = env!("CARGO_BIN_EXE_k8s-gpu-mcp");

/// The node-probe binary next to the launcher; built on first use when `cargo test -p k8s-gpu-mcp` did not
/// build it (cargo builds only the tested package's binaries).
pub fn node_probe() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = Path::new(LAUNCHER).with_file_name("node-probe");
        if !bin.is_file() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "-p", "node-probe"])
                .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
                .status()
                .expect("run cargo build -p node-probe");
            assert!(status.success(), "building node-probe failed");
        }
        assert!(bin.is_file(), "node-probe not found at {}", bin.display());
        bin
    })
    .clone()
}

/// The built-in scenarios node-probe knows (from `node-probe scenarios`).
pub fn scenarios() -> Vec<String> {
    let out = std::process::Command::new(node_probe())
        .arg("scenarios")
        .output()
        .expect("run node-probe scenarios");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("scenarios JSON");
    // The report is keyed by its command: {"scenarios": {"scenarios": [..]}}.
    v["scenarios"]["scenarios"]
        .as_array()
        .map(|a| {
            a.iter()
                // The time scripts `watch` plays: their node is a built-in scenario's, walked already.
                .filter(|s| {
                    !s["description"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("Time script")
                })
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The scenario the tools run against: `dgx-h100-xid79`, built into node-probe. It must be there: a silent
/// fallback to an empty fact file would let every assertion about its GPUs and XIDs go untested.
pub fn main_scenario() -> String {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        let known = scenarios();
        assert!(
            known.iter().any(|s| s == "dgx-h100-xid79"),
            "node-probe lacks the built-in scenario dgx-h100-xid79: {known:?}"
        );
        "dgx-h100-xid79".into()
    })
    .clone()
}

/// A file under cargo's per-target scratch directory (not /tmp, so nothing piles up there). Test binaries run
/// in parallel and share it: write to a private name, then rename, so a reader never sees a partial file.
fn write_shared_file(name: &str, content: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("launcher-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let tmp = dir.join(format!("{name}.{}", std::process::id()));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// A fake node-probe written as a script: lets tests make the probe hang, crash or print garbage.
pub fn fake_probe(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Whether a process is still alive (a zombie counts as gone: it was killed and only awaits reaping).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Wait up to `secs` for a file to appear and hold a PID.
pub fn wait_pid(path: &Path, secs: u64) -> u32 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && let Ok(pid) = s.trim().parse()
        {
            return pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "fake probe never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn wait_dead(pid: u32, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    !alive(pid)
}

/// A scenario file with no facts at all (`simulated:empty-node`): the shape of a node where nothing
/// could be collected.
pub fn empty_fixture() -> String {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| {
        write_shared_file("empty-node.json", "{}")
            .display()
            .to_string()
    })
    .clone()
}
