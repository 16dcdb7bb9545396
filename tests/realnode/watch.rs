//! `watch_gpus` on the real node (issue 65): node-probe samples the fake NVML through the node's driver root
//! for a window while the fake plays a time script, a userspace line written into the real /dev/kmsg
//! mid-window is no event, the window's throttling and counter growth land on the scripted GPU, and the pod
//! is gone after the answer.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Ctx;
use crate::testbed::unique;

/// GPU 0 busy at 690 W with NVLink 0 replaying 4/s from 1 s and HW slowdown from 2 to 4 s; GPU 3 busy at
/// 650 W (GPU 1 is lost at its PCI read and GPU 2 has no handle: the fake's fixed faults).
const SCRIPT: &str = "0:0-999:util=100,power=690000;0:1-999:replay=4;0:2-4:reasons=8,sm=1100;3:0-999:util=100,power=650000";

pub async fn a_watch_on_the_real_node_plays_the_fake_nvml_script(c: &Ctx) {
    c.node.set_fake_nvml("FAKE_NVML_SCRIPT", SCRIPT);
    let l = c.image_launcher().await;
    let marker = unique("rnwatch");
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let line = format!(
            "<4>NVRM: Xid (PCI:0000:1b:00): 79, pid=4242, name={marker}, GPU has fallen off the bus.\n"
        );
        std::fs::write("/dev/kmsg", line).expect("write /dev/kmsg (root)");
        marker
    });
    let t = Instant::now();
    let v = l
        .ok(
            "watch_gpus",
            json!({"node_name": c.name(), "seconds": 6, "interval_ms": 500}),
        )
        .await;
    let wall = t.elapsed();
    c.node.clear_fake_nvml("FAKE_NVML_SCRIPT");
    let marker = writer.await.unwrap();
    let episodes = v["episodes"].as_array().cloned().unwrap_or_default();
    let find = |code: &str| episodes.iter().find(|e| e["code"] == code).cloned();
    let replay = find("counter.nvlink_replay:0")
        .unwrap_or_else(|| panic!("no NVLink replay episode: {v:#}"));
    assert_eq!(replay["gpu"], 0, "{replay}");
    let throttle = episodes
        .iter()
        .find(|e| e["code"] == "throttle.hw_slowdown" && e["gpu"] == 0)
        .unwrap_or_else(|| panic!("no HW slowdown on GPU 0: {v:#}"));
    // Scripted from 2 to 4 s of the fake's clock: about 2 s of the window, one span.
    let text = throttle["text"].as_str().unwrap();
    assert!(text.contains("HW slowdown"), "{text}");
    let g0 = v["nodes"][0]["gpus"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["index"] == 0))
        .cloned()
        .unwrap();
    let secs = g0["throttled"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["reason"] == "hw_slowdown"))
        .and_then(|t| t["seconds"].as_f64())
        .unwrap_or(0.0);
    assert!(
        (1.0..=3.0).contains(&secs),
        "HW slowdown {secs} s of the window: {g0:#}"
    );
    assert_eq!(g0["power_w"]["max"], 690.0, "{g0:#}");
    // The forged line is in the real ring but no kernel event of the window.
    assert!(
        !v.to_string().contains(&marker),
        "a userspace write into /dev/kmsg became an event of the window: {v:#}"
    );
    assert!(
        episodes.iter().all(|e| e["kind"] != "kernel_event"),
        "{episodes:#?}"
    );
    assert_eq!(v["nodes_failed"], 0);
    eprintln!(
        "watch_gpus on the real node, 6 s at 500 ms: wall {wall:?}, {} episodes, verdict {}",
        episodes.len(),
        v["verdict"]
    );
    l.stop().await;
}

#[path = "../support/tmux.rs"]
mod tmux;

/// `top` on the real node through the default copy delivery (issue 92): the probe's lines cross the kubelet's
/// exec stream as they are taken, GPU 0's scripted load shows on screen while the window runs, the GPUs the
/// fake NVML cannot read say why, and q leaves no probe pod.
pub async fn top_on_the_real_node_follows_the_fake_nvml_as_it_samples(c: &Ctx) {
    c.node
        .set_fake_nvml("FAKE_NVML_SCRIPT", "0:0-999:util=100,power=690000");
    let kc = c.tb.kubeconfig(crate::testbed::User::Reader);
    let bins = c.images.bin_dir.display().to_string();
    let tm = tmux::Tmux::start(
        120,
        30,
        &format!(
            "env -u KUBECONFIG {} top {} --kubeconfig {} --namespace {} --probe-delivery copy --probe-image {} \
             --probe-bin-dir {bins} --renew-seconds 30",
            crate::mcp::LAUNCHER,
            c.name(),
            kc.display(),
            c.ns,
            crate::node::BASE_IMAGE
        ),
        &[("RUST_LOG", "info,k8s_gpu_mcp=debug")],
    );
    let t = Instant::now();
    let name = c.name().to_string();
    let screen = tm.until("GPU 0 at its scripted load", 90, |s| {
        s.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // The fake states no enforced limit: the power reads 690 alone.
            w.first() == Some(&name.as_str())
                && w.get(1) == Some(&"0")
                && w.contains(&"100%")
                && w.iter().any(|x| *x == "690" || x.starts_with("690/"))
        })
    });
    eprintln!(
        "top on the real node: GPU 0 on screen after {:?}",
        t.elapsed()
    );
    // The header's clock moves: samples keep arriving over the same exec stream.
    let clock = |s: &str| {
        s.lines()
            .next()
            .and_then(|l| l.split("UTC").next())
            .map(str::to_string)
    };
    let first = clock(&screen);
    tm.until("a later sample", 10, |s| clock(s) != first);
    tm.keys(&["q"]);
    assert_eq!(
        tm.exited(30),
        Some(0),
        "q did not end the view:\n{}",
        tm.screen()
    );
    c.node.clear_fake_nvml("FAKE_NVML_SCRIPT");
    c.assert_no_probe_pods();
}
