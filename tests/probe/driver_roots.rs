//! The driver roots table end to end: for each platform, the fake NVML (tests/fake-nvml) is installed under
//! a temporary host root the way that platform installs the driver (a versioned file and a
//! `libnvidia-ml.so.1` soname link, absolute where the platform's packages make it absolute), and the real
//! node-probe, given only `--host-root`, must find it and report the fake's GPUs. Also: a directory only the
//! host's loader cache names (a cache written by `ldconfig`), a root named with `--driver-root` or by the
//! container toolkit's config, a link that tries to leave the host root, and a node with nothing at all.
//! Each platform's paths and their public sources are in node-probe/src/driver_roots.rs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
use fake_nvml::fake_lib;

#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::NodeProbe;

#[path = "../support/host_root.rs"]
mod host_root;
use host_root::HostRoot;

const VERSIONED: &str = "libnvidia-ml.so.580.95.05";

/// Whether this machine's own loader finds a real NVML: it is tried first, so nothing here can be staged.
fn loader_has_nvml() -> bool {
    let found = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libnvidia-ml.so.1"))
        .unwrap_or(false);
    if found {
        eprintln!(
            "skipped: this machine's loader finds a real libnvidia-ml.so.1, which comes first"
        );
    }
    found
}

fn probe(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let run = NodeProbe::new()
        .args(args)
        .envs(env.iter().copied())
        .document();
    (run.code, run.doc)
}

/// Install the fake as `dir/VERSIONED` with `dir/libnvidia-ml.so.1` linking to it: by absolute path (as
/// the host sees it) or by name. Returns the versioned file's path.
fn install(root: &HostRoot, dir: &str, absolute_link: bool) -> PathBuf {
    let lib = fake_lib().expect("checked by the caller");
    let real = root.path().join(dir).join(VERSIONED);
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::copy(lib, &real).unwrap();
    let target = if absolute_link {
        format!("/{dir}/{VERSIONED}")
    } else {
        VERSIONED.to_string()
    };
    root.symlink(&format!("{dir}/libnvidia-ml.so.1"), target);
    real
}

/// `node-probe facts --host-root ROOT` finds the fake at `expect` and answers with its four GPUs.
fn assert_found(root: &HostRoot, extra: &[&str], env: &[(&str, &str)], expect: &Path) {
    let mut args = vec!["--host-root", root.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("facts");
    let (code, doc) = probe(&args, env);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["facts"]["driver"]["nvml_library"],
        expect.to_str().unwrap(),
        "{doc}"
    );
    assert_eq!(doc["facts"]["device_count"], 4);
    assert_eq!(doc["facts"]["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
}

/// (row, library directory relative to the host root, whether that platform's link is absolute)
const ROWS: &[(&str, &str, bool)] = &[
    // The GPU Operator's Ubuntu driver image, and its RHEL/RHCOS one.
    (
        "gpu operator ubuntu",
        "run/nvidia/driver/usr/lib/x86_64-linux-gnu",
        true,
    ),
    ("gpu operator rhel", "run/nvidia/driver/usr/lib64", true),
    ("ubuntu / dgx os host", "usr/lib/x86_64-linux-gnu", true),
    (
        "debian host",
        "usr/lib/x86_64-linux-gnu/nvidia/current",
        true,
    ),
    // RHEL/Rocky and Amazon Linux 2023 share /usr/lib64; the RPMs' links are absolute.
    ("rhel / rocky / al2023 host", "usr/lib64", true),
    (
        "gke installer (cos, ubuntu)",
        "home/kubernetes/bin/nvidia/lib64",
        true,
    ),
    // Bottlerocket's spec links by name (`ln -s "${lib}" .../${soname}`).
    ("bottlerocket nvidia", "usr/lib/nvidia/tesla", false),
    ("talos extension", "usr/local/glibc/usr/lib64", true),
    ("talos extension (1.12)", "usr/local/glibc/usr/lib", true),
    ("talos extension (older)", "usr/local/glibc/lib", true),
    // Grace hosts: searched first on aarch64, last (after every x86_64 place) elsewhere.
    ("grace (aarch64) host", "usr/lib/aarch64-linux-gnu", true),
];

#[test]
fn each_platforms_layout_is_found_with_only_the_host_root() {
    if fake_lib().is_none() || loader_has_nvml() {
        return;
    }
    for (row, dir, absolute) in ROWS {
        let root = HostRoot::new();
        let real = install(&root, dir, *absolute);
        eprintln!("{row}: {dir}");
        assert_found(&root, &[], &[], &real);
    }
}

#[test]
fn the_operator_root_wins_over_a_stale_host_library() {
    if fake_lib().is_none() || loader_has_nvml() {
        return;
    }
    let root = HostRoot::new();
    // A host library that is not NVML (a leftover), and the operator's real one.
    root.write(
        "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "not an ELF file",
    );
    let real = install(&root, "run/nvidia/driver/usr/lib64", true);
    assert_found(&root, &[], &[], &real);
}

/// node-probe refuses a driver root that would not mean what it says, by flag or environment, as a usage error
/// naming the flag (it used to drop `..` and a relative path's missing `/` silently: `/a/../b` searched `/a/b`).
#[test]
fn a_relative_climbing_or_pseudo_filesystem_driver_root_is_refused() {
    let root = HostRoot::new();
    let host = root.path().to_str().unwrap();
    for (bad, why) in [
        ("opt/nvidia/driver", "absolute path"),
        ("/opt/../../etc", "`..`"),
        ("/proc/1/root/usr/lib64", "under /proc"),
        ("/", "host's own root"),
    ] {
        for (args, env) in [
            (
                vec!["--host-root", host, "--driver-root", bad, "facts"],
                vec![],
            ),
            (
                vec!["--host-root", host, "facts"],
                vec![("NODE_PROBE_DRIVER_ROOT", bad)],
            ),
        ] {
            let (code, doc) = probe(&args, &env);
            let msg = doc["error"]["message"].as_str().unwrap_or_default();
            assert_eq!(doc["error"]["kind"], "usage", "{bad}: {doc}");
            assert_ne!(code, 0, "{bad}: {doc}");
            assert!(
                msg.contains("--driver-root") && msg.contains(why),
                "{bad}: {msg}"
            );
        }
    }
}

#[test]
fn a_driver_root_named_by_flag_env_or_the_toolkit_config() {
    if fake_lib().is_none() || loader_has_nvml() {
        return;
    }
    // A GPU Operator installed with hostPaths.driverInstallDir=/opt/nvidia/driver.
    let root = HostRoot::new();
    let real = install(&root, "opt/nvidia/driver/usr/lib/x86_64-linux-gnu", true);
    let (code, doc) = probe(
        &["--host-root", root.path().to_str().unwrap(), "facts"],
        &[],
    );
    assert_eq!(code, 3, "not in the table, so not found: {doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("--driver-root"),
        "{doc}"
    );
    assert_found(&root, &["--driver-root", "/opt/nvidia/driver"], &[], &real);
    assert_found(
        &root,
        &[],
        &[("NODE_PROBE_DRIVER_ROOT", "/opt/nvidia/driver")],
        &real,
    );
    // The operator's container toolkit records that root in its config: found with no flag at all.
    root.write(
        "usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml",
        "accept-nvidia-visible-devices-as-volume-mounts = true\n\n[nvidia-container-cli]\n\
         ldconfig = \"@/run/nvidia/driver/sbin/ldconfig.real\"\nroot = \"/opt/nvidia/driver\"\n",
    );
    assert_found(&root, &[], &[], &real);
}

/// A library in a directory only the host's `ld.so.conf` names, found through the cache `ldconfig` wrote
/// for that root (each of the formats this machine's ldconfig writes).
#[test]
fn a_directory_only_the_loader_cache_names() {
    if fake_lib().is_none() || loader_has_nvml() {
        return;
    }
    for format in ["new", "compat", "old"] {
        let root = HostRoot::new();
        let real = install(&root, "opt/acme/gpu/lib", false);
        root.write("etc/ld.so.conf", "/opt/acme/gpu/lib\n");
        let out = Command::new("ldconfig")
            .args(["-c", format, "-r"])
            .arg(root.path())
            .args(["-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf"])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                eprintln!(
                    "skipped {format}: ldconfig -r needs root here: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                continue;
            }
            Err(e) => {
                eprintln!("skipped: no ldconfig ({e})");
                return;
            }
        }
        // ldconfig links the soname by name; the probe opens what the cache names, inside the root.
        assert_found(&root, &[], &[], &real);
    }
}

#[test]
fn a_corrupt_loader_cache_is_skipped_and_said() {
    if loader_has_nvml() {
        return;
    }
    let root = HostRoot::new();
    root.write(
        "etc/ld.so.cache",
        b"glibc-ld.so.cache1.1\xff\xff\xff\xff garbage",
    );
    let (code, doc) = probe(
        &["--host-root", root.path().to_str().unwrap(), "inventory"],
        &[],
    );
    assert_eq!(code, 3, "{doc}");
    let msg = doc["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("loader cache /etc/ld.so.cache: truncated"),
        "{msg}"
    );
}

/// A link that climbs out of the host root (or points at an absolute path outside it) must not load a
/// library from the probe's own filesystem.
#[test]
fn links_never_leave_the_host_root() {
    if fake_lib().is_none() || loader_has_nvml() {
        return;
    }
    let outside = HostRoot::new();
    let lib = install(&outside, "elsewhere", false);
    let root = HostRoot::new();
    let up = format!("../../../../../../../../../..{}", lib.display());
    root.symlink("usr/lib64/libnvidia-ml.so.1", &up);
    root.symlink("usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", &lib);
    root.symlink(
        "home/kubernetes/bin/nvidia/lib64",
        outside.path().join("elsewhere"),
    );
    let (code, doc) = probe(
        &["--host-root", root.path().to_str().unwrap(), "facts"],
        &[],
    );
    assert_eq!(code, 3, "loaded a library outside the host root: {doc}");
    assert_eq!(doc["error"]["kind"], "nvml_unavailable");
}

#[test]
fn nothing_found_says_every_place_and_the_flag() {
    if loader_has_nvml() {
        return;
    }
    let root = HostRoot::new();
    let r = root.path().to_str().unwrap();
    let (code, doc) = probe(&["--host-root", r, "inventory"], &[]);
    assert_eq!(code, 3, "{doc}");
    let msg = doc["error"]["message"].as_str().unwrap();
    for place in [
        format!("libnvidia-ml.so.1 under host root {r}: "),
        "GPU Operator driver container /run/nvidia/driver/{usr/lib/x86_64-linux-gnu,".to_string(),
        "Ubuntu/DGX OS/Debian host (x86_64) /{usr/lib/x86_64-linux-gnu,".to_string(),
        "RHEL/Rocky/Amazon Linux 2023 host /{usr/lib64,".to_string(),
        "GKE driver installer (COS, Ubuntu) /{home/kubernetes/bin/nvidia/lib64}".to_string(),
        "Bottlerocket NVIDIA variant /{usr/lib/nvidia/tesla}".to_string(),
        "Talos NVIDIA extension /{usr/local/glibc/usr/lib64,".to_string(),
        "/{usr/lib/aarch64-linux-gnu,".to_string(),
        "loader cache /etc/ld.so.cache: No such file".to_string(),
        "loader cache /usr/local/glibc/etc/ld.so.cache".to_string(),
    ] {
        assert!(msg.contains(&place), "lacks {place}: {msg}");
    }
    // Compact: one line per platform, not one per file.
    assert!(msg.len() < 1400, "{} bytes: {msg}", msg.len());
    let hint = doc["error"]["hint"].as_str().unwrap();
    assert!(hint.contains("--driver-root DIR"), "{hint}");
    assert!(hint.contains("--nvml-lib"), "{hint}");
}
