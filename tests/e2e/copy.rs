//! Copy delivery end to end (`--probe-delivery copy`): the probe pod runs a plain base image and the
//! launcher streams node-probe in over the exec websocket. kwok's exec runs the streamed script on this host,
//! so the whole path (node-probe on stdin through the real apiserver, length and checksum, run, cleanup) is
//! exercised; only the image itself is not real (kwok runs no containers).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::mcp::{self, Launcher};
use crate::testbed::{FakeNode, Testbed, User, pulled, skipped, unique};

/// A base image as copy delivery expects one (kwok pulls nothing; the name only shows up in errors).
/// By digest: the admission policies refuse a probe image named by tag.
const BASE_IMAGE: &str = "docker.io/library/debian@sha256:b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

/// A directory holding only `node-probe-linux-amd64`: this tree's node-probe, stripped (the debug build is
/// ~95 MB with debug info; stripped it streams in a fraction of the time; the testbed's policies list its
/// SHA-256). Inside the testbed's directory, removed with it.
pub(crate) fn amd64_only_bin_dir(tb: &Testbed) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tb.stripped_probe_dir())
}

/// Everything of a result that must not depend on how node-probe got there: all but the pod's name and
/// the timings.
fn comparable(mut v: Value) -> Value {
    if let Some(run) = v.get_mut("run").and_then(Value::as_object_mut) {
        run.remove("ran_in");
        run.remove("timings");
        run.remove("total_millis");
    }
    v
}

struct Setup {
    tb: &'static Testbed,
    ns: String,
}

fn setup(tag: &str) -> Setup {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-{tag}"));
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    Setup { tb, ns }
}

impl Setup {
    async fn launcher(&self, extra: &[&str]) -> Launcher {
        mcp::start(self.tb, User::Reader, &self.ns, extra).await
    }
    fn assert_no_pods(&self) {
        if let Err(left) = self.tb.wait_no_pods(&self.ns, Duration::from_secs(120)) {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }
}

/// The delivery script's private directories (kwok runs it without the pod's NODE_PROBE_DIR: /tmp).
fn delivery_dirs() -> Vec<String> {
    std::fs::read_dir("/tmp")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("node-probe."))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mode_answers_like_image_mode_for_every_node_tool() {
    if skipped() {
        return;
    }
    let s = setup("copy-same");
    let nodes: Vec<(String, &str)> = ["dgx-h100-healthy", "dgx-h100-xid79"]
        .iter()
        .map(|sc| (unique("copy-node"), *sc))
        .collect();
    let fake: Vec<FakeNode> = nodes.iter().map(|(n, sc)| FakeNode::gpu(n, sc)).collect();
    s.tb.add_nodes(&fake);
    let bins = amd64_only_bin_dir(s.tb).to_str().unwrap().to_string();
    // Every call probes (no kept reading), so each tool's answer is a delivery of its own.
    let image = s.launcher(&["--reading-max-age", "0"]).await;
    // Compressed although the API server is on this machine: the first calls take the plain archive, the
    // ones after the background compression the gzip one; every answer must be image mode's.
    let copy = mcp::start_with_env(
        s.tb,
        User::Reader,
        &s.ns,
        &[
            "--reading-max-age",
            "0",
            "--probe-delivery",
            "copy",
            "--probe-bin-dir",
            &bins,
            "--probe-image",
            BASE_IMAGE,
        ],
        &[("K8S_GPU_MCP_PROBE_GZIP", "always")],
    )
    .await;
    for (node, scenario) in &nodes {
        for tool in &mcp::tools::node_tools(mcp::LAUNCHER) {
            let args = json!({"node_name": node});
            let a = image.ok(tool, args.clone()).await;
            let b = copy.ok(tool, args).await;
            assert_eq!(
                b["run"]["probe"]["source"],
                format!("simulated:{scenario}"),
                "{tool} on {node}: {b}"
            );
            assert_eq!(
                comparable(a),
                comparable(b),
                "{tool} on {node}: copy mode answered differently from image mode"
            );
            s.assert_no_pods();
        }
    }
    let log = copy.stderr();
    assert!(log.contains("probe delivery: copy"), "{log}");
    assert!(
        log.contains("node-probe build compressed for copy delivery"),
        "{log}"
    );
    // Hashed and archived once for all 14 calls.
    assert_eq!(
        log.matches("node-probe build ready for copy delivery")
            .count(),
        1,
        "{log}"
    );
    image.stop().await;
    copy.stop().await;
    s.assert_no_pods();
    // The script removed its private directory after every run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !delivery_dirs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(delivery_dirs(), Vec::<String>::new());
}

/// The launcher's `--driver-root` reaches node-probe's argv, through the exec admission policy, in image and in
/// copy delivery. Observed through node-probe itself: `collect_evidence` runs `node-probe evidence`, which kwok
/// runs on this host (no nvidia-bug-report.sh here; the scenario map does not stop the script search), and
/// whose answer names every place it looked for the script, the given driver root first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_root_reaches_node_probe_in_image_and_copy_delivery() {
    if skipped() {
        return;
    }
    let s = setup("drv-root");
    let node = unique("drv-node");
    s.tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    let bins = amd64_only_bin_dir(s.tb).to_str().unwrap().to_string();
    let root = format!("/opt/{}", unique("e2e-driver"));
    let bug_report = |v: &Value| {
        v["evidence"]["bug_report"]["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no bug report detail: {v:#}"))
            .to_string()
    };
    let copy = [
        "--probe-delivery",
        "copy",
        "--probe-bin-dir",
        bins.as_str(),
        "--probe-image",
        BASE_IMAGE,
    ];
    for (how, delivery) in [("image", &[][..]), ("copy", &copy[..])] {
        let mut args = delivery.to_vec();
        // Given unnormalized: node-probe gets the normalized form.
        let given = format!("{root}//./");
        args.extend(["--driver-root", given.as_str()]);
        let l = s.launcher(&args).await;
        let v = l.ok("collect_evidence", json!({"node_name": node})).await;
        let detail = bug_report(&v);
        assert!(
            detail.contains(&format!("--driver-root {root} {root}/{{usr/bin")),
            "{how}: {detail}"
        );
        let h = l.ok("get_gpu_health", json!({"node_name": node})).await;
        assert_eq!(h["run"]["probe"]["node_name"], node.as_str(), "{how}");
        let log = l.stderr();
        assert!(
            log.contains(&format!("probe delivery: {how}")) || how == "image",
            "{log}"
        );
        l.stop().await;
        s.assert_no_pods();
    }
    // Without the flag node-probe names no such root (so the assertion above can fail).
    let l = s.launcher(&[]).await;
    let v = l.ok("collect_evidence", json!({"node_name": node})).await;
    let detail = bug_report(&v);
    assert!(!detail.contains(&root), "{detail}");
    l.stop().await;
    s.assert_no_pods();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mode_failures_are_clear_and_leave_no_pod() {
    if skipped() {
        return;
    }
    let s = setup("copy-fail");
    let arm = unique("copy-arm64");
    let notee = unique("copy-notee");
    let ok = unique("copy-ok");
    s.tb.add_nodes(&[
        FakeNode::gpu(&arm, "dgx-h100-healthy").arch("arm64"),
        FakeNode::without_tee(&notee, "dgx-h100-healthy"),
        FakeNode::gpu(&ok, "dgx-h100-healthy"),
    ]);
    let bins = amd64_only_bin_dir(s.tb).to_str().unwrap().to_string();
    // `auto` with a bin dir is copy (the documented rule).
    let l = s
        .launcher(&["--probe-bin-dir", &bins, "--probe-image", BASE_IMAGE])
        .await;

    // The node's architecture has no build: refused before any pod exists, naming what was looked for.
    let e = l.err("get_gpu_health", json!({"node_name": arm})).await;
    assert!(
        e.contains("no node-probe build for architecture `arm64`"),
        "{e}"
    );
    assert!(e.contains("node-probe-linux-arm64"), "{e}");
    assert!(e.contains("--probe-delivery image"), "{e}");
    s.assert_no_pods();

    // An image without tee.
    let e = l.err("get_gpu_health", json!({"node_name": notee})).await;
    assert!(e.contains("has no `tee`"), "{e}");
    assert!(e.contains(BASE_IMAGE), "{e}");
    s.assert_no_pods();

    // The same launcher still works on a good node.
    let v = l.ok("get_gpu_health", json!({"node_name": ok})).await;
    assert_eq!(v["run"]["probe"]["node_name"], ok.as_str());
    assert!(l.stderr().contains("probe delivery: copy"));
    l.stop().await;

    // A payload altered after hashing (test-only switch of debug builds): the container refuses to run it.
    let l = mcp::start_with_env(
        s.tb,
        User::Reader,
        &s.ns,
        &["--probe-bin-dir", &bins, "--probe-image", BASE_IMAGE],
        &[("K8S_GPU_MCP_TEST_CORRUPT_PROBE_PAYLOAD", "1")],
    )
    .await;
    let e = l.err("get_gpu_health", json!({"node_name": ok})).await;
    assert!(e.contains("checksum mismatch"), "{e}");
    assert!(e.contains("nothing was run"), "{e}");
    l.stop().await;
    s.assert_no_pods();
}

/// A release archive's layout (packaging/release.sh): the launcher with `probes/node-probe-linux-*` beside
/// it, and no flag naming them. `K8S_GPU_MCP_RELEASE_DIR` names an unpacked archive (packaging/test-release.sh
/// sets it); without it the layout is made here from this tree's builds, so the e2e suite always checks it.
/// The launcher runs with PATH holding only its own directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_layout_copies_the_probe_found_beside_the_launcher() {
    if skipped() {
        return;
    }
    let s = setup("copy-release");
    let dir = match std::env::var_os("K8S_GPU_MCP_RELEASE_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let dir = s.tb.dir.join(unique("release-layout"));
            std::fs::create_dir_all(dir.join("probes")).unwrap();
            std::fs::copy(mcp::LAUNCHER, dir.join("k8s-gpu-mcp")).unwrap();
            std::fs::copy(
                amd64_only_bin_dir(s.tb).join("node-probe-linux-amd64"),
                dir.join("probes/node-probe-linux-amd64"),
            )
            .unwrap();
            dir
        }
    };
    let probe = dir.join("probes/node-probe-linux-amd64");
    assert!(probe.is_file(), "{} missing", probe.display());
    let node = unique("release-node");
    let debian = pulled("docker.io/library/debian:bookworm-slim");
    s.tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-xid79").images(&[&debian])]);
    let path = dir.to_str().unwrap().to_string();
    let l = mcp::start_exact(
        s.tb,
        User::Reader,
        &s.ns,
        &dir.join("k8s-gpu-mcp"),
        &[],
        &[("PATH", &path)],
    )
    .await;
    let v = l.ok("get_gpu_health", json!({"node_name": node})).await;
    assert_eq!(v["run"]["probe"]["node_name"], node.as_str());
    assert_eq!(v["run"]["probe"]["source"], "simulated:dgx-h100-xid79");
    let log = l.stderr();
    assert!(
        log.contains("probe delivery: copy into an image from the node"),
        "{log}"
    );
    // The build streamed is the one under probes/, found without --probe-bin-dir.
    let found = std::fs::canonicalize(&probe).unwrap();
    assert!(
        log.contains(&format!("path={}", found.display())),
        "expected node-probe from {}: {log}",
        found.display()
    );
    l.stop().await;
    s.assert_no_pods();
}

/// The default delivery (no --probe-image): node-probe copied into an image the node already lists in
/// status.images, the best-ranked one; the notee node's image lacks tee, so the next one is tried and that
/// choice is remembered. With `--no-pull`, a node whose images are all unusable is refused before any pod
/// exists, naming them; without it, such a node pulls the fallback base by digest, and never an untrusted
/// image named like a base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_delivery_copies_into_an_image_the_node_already_has() {
    if skipped() {
        return;
    }
    let s = setup("copy-default");
    let plain = unique("default-plain");
    let notee = unique("default-notee");
    let none = unique("default-none");
    let untrusted = unique("default-untrusted");
    let tagonly = unique("default-tagonly");
    let (pause, cuda, debian) = (
        pulled("registry.k8s.io/pause:3.10"),
        pulled("nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
        pulled("docker.io/library/debian:bookworm-slim"),
    );
    let (ubuntu, driver) = (
        pulled("docker.io/library/ubuntu:24.04"),
        pulled("nvcr.io/nvidia/driver:550.54.15-ubuntu22.04"),
    );
    let planted = [
        pulled("registry.example.com/library/debian:bookworm"),
        pulled("registry.example.com/team/ubuntu:24.04"),
        pulled("docker.io/someone/debian:12"),
    ];
    s.tb.add_nodes(&[
        FakeNode::gpu(&plain, "dgx-h100-healthy").images(&[&pause, &cuda, &debian, &planted[0]]),
        // kwok's notee kubelet runs every command without tee: whichever image is chosen lacks it.
        FakeNode::without_tee(&notee, "dgx-h100-healthy").images(&[&ubuntu, &driver]),
        FakeNode::gpu(&none, "dgx-h100-healthy").images(&[
            "gcr.io/distroless/static-debian12:nonroot",
            "docker.io/library/alpine:3.20",
        ]),
        // Named like bases, from sources nobody vouched for: refused, never run.
        FakeNode::gpu(&untrusted, "dgx-h100-healthy").images(&[
            &planted[0],
            &planted[1],
            &planted[2],
        ]),
        // A trusted name the node lists by tag only: refused (a tag can be re-pointed).
        FakeNode::gpu(&tagonly, "dgx-h100-healthy")
            .images(&["docker.io/library/debian:bookworm-slim"]),
    ]);
    let bins = amd64_only_bin_dir(s.tb).to_str().unwrap().to_string();
    let l = s.launcher(&["--probe-bin-dir", &bins, "--no-pull"]).await;

    let v = l.ok("get_gpu_health", json!({"node_name": plain})).await;
    assert_eq!(v["run"]["probe"]["node_name"], plain.as_str());
    let log = l.stderr();
    assert!(
        log.contains("probe delivery: copy into an image from the node"),
        "{log}"
    );
    let debian_digest = debian.split('+').nth(1).unwrap();
    assert!(
        log.contains(&format!("image={debian_digest}"))
            && log.contains("name=docker.io/library/debian:bookworm-slim"),
        "the plain trusted base is ranked first, run by its digest: {log}"
    );
    assert!(!log.contains("image=registry.example.com"), "{log}");
    s.assert_no_pods();

    // Both images lack tee here: each is tried once (a pod each), then the error says what was tried.
    let e = l.err("get_gpu_health", json!({"node_name": notee})).await;
    assert!(e.contains("tried: docker.io/library/ubuntu:24.04"), "{e}");
    assert!(
        e.contains("nvcr.io/nvidia/driver:550.54.15-ubuntu22.04"),
        "{e}"
    );
    assert!(e.contains("--probe-image"), "{e}");
    s.assert_no_pods();
    // Remembered: the next call fails at once, without a pod.
    let e = l.err("get_gpu_health", json!({"node_name": notee})).await;
    assert!(
        e.contains("has no image node-probe can be copied into"),
        "{e}"
    );

    let e = l.err("get_gpu_health", json!({"node_name": none})).await;
    assert!(
        e.contains("has no image node-probe can be copied into"),
        "{e}"
    );
    assert!(
        e.contains("gcr.io/distroless/static-debian12:nonroot"),
        "{e}"
    );
    assert!(e.contains("--probe-image"), "{e}");
    s.assert_no_pods();

    // No pod is ever made with an untrusted image: the call is refused before, naming each and why.
    let e = l
        .err("get_gpu_health", json!({"node_name": untrusted}))
        .await;
    for p in [
        "registry.example.com/library/debian:bookworm",
        "registry.example.com/team/ubuntu:24.04",
        "docker.io/someone/debian:12",
    ] {
        assert!(e.contains(&format!("{p} (untrusted source)")), "{e}");
    }
    assert!(e.contains("--trust-image"), "{e}");
    let e = l.err("get_gpu_health", json!({"node_name": tagonly})).await;
    assert!(
        e.contains("docker.io/library/debian:bookworm-slim (no digest listed)"),
        "{e}"
    );
    s.assert_no_pods();
    let log = l.stderr();
    l.stop().await;
    for p in ["image=registry.example.com", "image=docker.io/someone"] {
        assert!(
            !log.contains(p),
            "a probe pod was made with an untrusted image: {log}"
        );
    }
    // Without --no-pull: the nodes with nothing usable pull the fallback base (kwok pulls nothing; the pod
    // names it by digest), and the untrusted images stay unused.
    let l = s.launcher(&["--probe-bin-dir", &bins]).await;
    for node in [&none, &untrusted] {
        let v = l.ok("get_gpu_health", json!({"node_name": node})).await;
        assert_eq!(v["run"]["probe"]["node_name"], node.as_str(), "{v}");
    }
    s.assert_no_pods();
    let log = l.stderr();
    l.stop().await;
    assert_eq!(
        log.matches("pulling the fallback base by digest").count(),
        2,
        "{log}"
    );
    assert!(
        log.contains("image=docker.io/library/debian@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251"),
        "{log}"
    );
    for p in ["image=registry.example.com", "image=docker.io/someone"] {
        assert!(
            !log.contains(p),
            "a probe pod was made with an untrusted image: {log}"
        );
    }
}
