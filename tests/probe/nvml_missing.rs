//! node-probe without a usable NVML library: one JSON error document, kind `nvml_unavailable`, exit 3,
//! and a hint that says where it looked and what to do.

use std::path::Path;
use std::process::Command;

#[path = "../support/gate.rs"]
mod gate;
#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::NodeProbe;

fn probe(args: &[&str]) -> (i32, serde_json::Value) {
    let run = NodeProbe::new().args(args).document();
    (run.code, run.doc)
}

/// Whether this machine's loader finds a real NVML (a GPU host): then "no library" cannot be staged.
fn loader_has_nvml() -> bool {
    Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libnvidia-ml.so.1"))
        .unwrap_or(false)
}

#[test]
fn explicit_library_that_does_not_exist() {
    for cmd in ["inventory", "telemetry", "ecc", "describe", "facts"] {
        let (code, doc) = probe(&["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", cmd]);
        assert_eq!(code, 3, "{cmd}: {doc}");
        assert_eq!(doc["error"]["kind"], "nvml_unavailable");
        let msg = doc["error"]["message"].as_str().unwrap();
        assert!(msg.contains("/nonexistent/libnvidia-ml.so.1"), "{msg}");
        assert!(
            doc["error"]["hint"]
                .as_str()
                .unwrap()
                .contains("--nvml-lib")
        );
    }
}

#[test]
fn a_file_that_is_not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("libnvidia-ml.so.1");
    std::fs::write(&bogus, "not an ELF file").unwrap();
    let (code, doc) = probe(&["--nvml-lib", bogus.to_str().unwrap(), "inventory"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "nvml_unavailable");
}

#[test]
fn host_root_without_a_library_says_where_it_looked() {
    if loader_has_nvml() {
        gate::skip("this machine's loader finds libnvidia-ml.so.1, so it is used first");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    // A driver root that exists but holds no library must not count as found.
    std::fs::create_dir_all(root.path().join("run/nvidia/driver/usr/lib64")).unwrap();
    let root_s = root.path().to_str().unwrap();
    let (code, doc) = probe(&["--host-root", root_s, "inventory"]);
    assert_eq!(code, 3, "{doc}");
    assert_eq!(doc["error"]["kind"], "nvml_unavailable");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("host root {root_s}")), "{msg}");
    assert!(msg.contains("/run/nvidia/driver/{"), "{msg}");
    assert!(msg.contains("usr/lib64"), "{msg}");
    assert!(msg.contains("libnvidia-ml.so.1"), "{msg}");
    let hint = doc["error"]["hint"].as_str().unwrap();
    for want in ["runtimeClassName: nvidia", "/host", "--nvml-lib"] {
        assert!(hint.contains(want), "hint lacks {want}: {hint}");
    }
    assert!(!Path::new(root_s).join("usr").exists());
}
