//! The trust boundary of the default delivery on the real node: what runs as root in a probe pod is a base
//! image from a trusted source, run by the digest the node lists, whatever else a tenant has put on the node.
//!
//! The node has, from its start, [`node::PLANTED_IMAGE`]: named like the Debian base but from another
//! registry, smaller than it, with its own digest name, and with `sh`/`sleep`/`tee`/... that write under
//! [`node::PLANTED_MARK`] on the node before doing their job.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node;
use crate::testbed::User;
use crate::{Ctx, mcp};

fn mark(c: &Ctx) -> PathBuf {
    c.node.dir.join(node::PLANTED_MARK)
}

fn clear_mark(c: &Ctx) {
    let _ = std::fs::remove_dir_all(mark(c));
}

/// The names the kubelet lists for the image that has `name` among its names.
fn listed_names(c: &Ctx, name: &str) -> Vec<String> {
    let images: Value = serde_json::from_str(&c.tb.kubectl(&[
        "get",
        "node",
        c.name(),
        "-o",
        "jsonpath={.status.images}",
    ]))
    .unwrap_or(Value::Null);
    images
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            i["names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .find(|names| names.iter().any(|n| n == name))
        .unwrap_or_default()
}

/// Wait (on the kubelet's own image list refresh, not a fixed time) until `ok` holds for the node's images.
fn wait_for_status(c: &Ctx, what: &str, ok: impl Fn(&Ctx) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ok(c) {
        assert!(
            Instant::now() < deadline,
            "the kubelet did not list {what} in 180 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `k8s-gpu-mcp check --output json` as the reader, with `extra` flags.
pub fn check_json(c: &Ctx, extra: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8s-gpu-mcp"))
        .arg("--kubeconfig")
        .arg(c.tb.kubeconfig(User::Reader))
        .args(["--namespace", &c.ns])
        .args(extra)
        .args(["check", "--output", "json"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}

/// The marker works: a user who names the planted image explicitly (`--probe-image`) runs it, and its tools
/// leave the mark. Without that, "no mark" below would prove nothing.
async fn the_planted_image_marks_the_host_when_it_does_run(c: &Ctx) {
    clear_mark(c);
    let l = c.copy_launcher(node::PLANTED_IMAGE).await;
    l.ok("get_gpu_health", json!({"node_name": c.name()})).await;
    l.stop().await;
    c.assert_no_probe_pods();
    let ran = std::fs::read_to_string(mark(c).join("ran")).unwrap_or_default();
    assert!(
        ran.contains("sleep") && ran.contains("tee"),
        "the planted image ran but left no mark: {ran:?}"
    );
    clear_mark(c);
}

/// With no flags at all, every node tool runs in the genuine Debian base by its digest; the planted image,
/// smaller and tied on name rank, never runs; `check` names it as refused and why.
pub async fn default_delivery_never_runs_an_untrusted_image_named_like_a_base(c: &Ctx) {
    the_planted_image_marks_the_host_when_it_does_run(c).await;
    let planted_names = listed_names(c, node::PLANTED_IMAGE);
    assert!(
        planted_names
            .iter()
            .any(|n| n.starts_with("registry.example.com/library/debian@sha256:")),
        "the planted image is listed with a digest, as a pulled one would be: {planted_names:?}"
    );
    let genuine = listed_names(c, node::BASE_IMAGE)
        .into_iter()
        .find(|n| n.starts_with("docker.io/library/debian@sha256:"))
        .expect("the node lists the Debian base by digest");

    let l = c
        .launcher(&["--probe-bin-dir", c.images.bin_dir.to_str().unwrap()])
        .await;
    for tool in &mcp::tools::node_tools(mcp::LAUNCHER) {
        let v = l.ok(tool, json!({"node_name": c.name()})).await;
        assert_eq!(v["node"], c.name(), "{tool}: {v:#}");
    }
    let log = l.stderr();
    l.stop().await;
    c.assert_no_probe_pods();
    assert!(
        log.contains(&format!("image={genuine}")),
        "the genuine base was not run by its digest: {log}"
    );
    assert!(!log.contains("image=registry.example.com"), "{log}");
    assert!(
        !mark(c).exists(),
        "the planted image ran on the node: {:?}",
        std::fs::read_to_string(mark(c).join("ran"))
    );

    // check: the image it would use, and the planted one refused with its reason.
    let check = check_json(c, &[]);
    let detail = check["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["name"] == format!("image/{}", c.name()))
        .cloned()
        .unwrap_or(Value::Null);
    let d = detail["detail"].as_str().unwrap_or_default();
    assert_eq!(detail["status"], "ok", "{detail:#}");
    assert!(d.contains(&genuine), "{d}");
    assert!(
        d.contains("registry.example.com/library/debian:bookworm (untrusted source)"),
        "{d}"
    );
}

/// The trusted tag re-pointed on the node at the planted content: the tag now names a tenant's image, and the
/// kubelet lists it so. The default delivery still runs the genuine content, by the digest the node lists
/// for it; the planted image stays refused (untrusted, and the trusted tag has no digest for it).
pub async fn a_re_pointed_trusted_tag_does_not_run_other_content(c: &Ctx) {
    clear_mark(c);
    let genuine = listed_names(c, node::BASE_IMAGE)
        .into_iter()
        .find(|n| n.starts_with("docker.io/library/debian@sha256:"))
        .expect("the node lists the Debian base by digest");
    c.node.ctr(&[
        "images",
        "tag",
        "--force",
        node::PLANTED_IMAGE,
        node::BASE_IMAGE,
    ]);
    let restore = || {
        c.node
            .ctr(&["images", "tag", "--force", &genuine, node::BASE_IMAGE]);
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for_status(c, "the re-pointed tag", |c| {
            listed_names(c, node::BASE_IMAGE)
                .iter()
                .any(|n| n == node::PLANTED_IMAGE)
        });
    }));
    if let Err(e) = r {
        restore();
        std::panic::resume_unwind(e);
    }
    let l = c
        .launcher(&["--probe-bin-dir", c.images.bin_dir.to_str().unwrap()])
        .await;
    let v = l
        .call("get_gpu_health", json!({"node_name": c.name()}))
        .await;
    let log = l.stderr();
    l.stop().await;
    restore();
    c.assert_no_probe_pods();
    assert_ne!(v.is_error, Some(true), "{}", mcp::text(&v));
    assert!(
        log.contains(&format!("image={genuine}")),
        "the genuine base was not run by its digest: {log}"
    );
    assert!(
        !mark(c).exists(),
        "the planted content ran under the trusted tag: {:?}",
        std::fs::read_to_string(mark(c).join("ran"))
    );
    wait_for_status(c, "the restored tag", |c| {
        listed_names(c, node::BASE_IMAGE).contains(&genuine)
    });
}
