//! Every node tool on Intel Gaudi nodes in local mode, answering in Gaudi's words: the built-in Gaudi 2
//! scenarios (`tests/support/generate_scenarios.py`, data from Linux 6.12's habanalabs printers) healthy and
//! faulty, and a Gaudi 2 host tree (`tests/support/gaudi_tree.rs`) read by the real probe through
//! NODE_PROBE_HOST_ROOT, with a process holding `/dev/accel/accel1`. Each answer names the device status
//! in the driver's words and carries no NVIDIA-only field (CUDA, NVML, VBIOS as if unread).

mod common;
#[path = "../support/gaudi_tree.rs"]
mod gaudi_tree;
#[path = "../support/host_root.rs"]
mod host_root;

use std::process::Command;

use common::*;

/// The tool's text answer on a built-in scenario (exit status checked).
fn sim(scenario: &str, tool: &str) -> String {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--arg", "node_name=local"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp");
    assert!(
        out.status.success(),
        "{tool} on {scenario}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tool's structured result on a built-in scenario.
fn sim_json(scenario: &str, tool: &str) -> serde_json::Value {
    let out = Command::new(LAUNCHER)
        .args(["--local", "--simulate", scenario, "--probe-bin"])
        .arg(node_probe())
        .args(["call", tool, "--arg", "node_name=local", "--output", "json"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp");
    assert!(out.status.success(), "{tool} on {scenario}");
    serde_json::from_slice(&out.stdout).expect("json")
}

/// NVIDIA's words that must not appear on a Gaudi-only node.
fn no_nvidia_words(tool: &str, text: &str) {
    for w in [
        "cuda_driver_version",
        "nvml_version",
        "CUDA",
        "nvidia-smi",
        "persistence mode",
        "vbios_version=<not_collected>",
        "memory_total_mib=<not_collected>",
        "<not_collected>\n      volatile",
    ] {
        assert!(!text.contains(w), "{tool}: `{w}` in:\n{text}");
    }
}

const NODE_TOOLS: &[&str] = &[
    "get_gpu_inventory",
    "get_gpu_health",
    "get_gpu_processes",
    "analyze_xid_errors",
    "inspect_topology",
    "get_gpu_telemetry",
    "snapshot_ecc",
    "describe_gpu_node",
];

#[test]
fn every_node_tool_answers_on_the_gaudi_scenarios() {
    for scenario in [
        "gaudi2-healthy",
        "gaudi2-hbm-ecc",
        "gaudi2-in-reset",
        "gaudi2-malfunction",
        "gaudi2-roce-port-down",
        "gaudi3-healthy",
        "gaudi3-thermal",
        "gaudi3-nic-link-down",
    ] {
        for tool in NODE_TOOLS.iter().chain(&["run_gpu_diagnostic"]) {
            let text = sim(scenario, tool);
            no_nvidia_words(tool, &text);
            // Nor AMD's: a Gaudi is not the other vendor DCGM leaves out.
            assert!(!text.contains("AMD"), "{tool} on {scenario}: {text}");
            assert!(
                text.contains(&format!("source simulated:{scenario}")),
                "{tool}: {text}"
            );
        }
    }
}

/// A node with an H100 and a Gaudi 2: every tool answers, each device in its own vendor's words (the
/// H100's driver and CUDA, the Gaudi's driver status and accel node), nothing of AMD's; the Gaudi's
/// process is the holder of its own node, and a reset of either judges it by its own vendor's rules.
#[test]
fn every_node_tool_answers_on_a_node_with_an_h100_and_a_gaudi() {
    let s = "mixed-h100-gaudi2";
    for tool in NODE_TOOLS.iter().chain(&["run_gpu_diagnostic"]) {
        let text = sim(s, tool);
        assert!(!text.contains("AMD"), "{tool}: {text}");
        assert!(
            text.contains(&format!("source simulated:{s}")),
            "{tool}: {text}"
        );
    }
    let inv = sim(s, "get_gpu_inventory");
    assert!(
        inv.contains("NVIDIA H100") && inv.contains("Intel Gaudi 2"),
        "{inv}"
    );
    assert!(inv.contains("status=Operational"), "{inv}");
    let h = sim(s, "get_gpu_health");
    assert!(h.contains("verdict: healthy"), "{h}");
    let p = sim_json(s, "get_gpu_processes");
    assert!(p.to_string().contains("48811"), "{p}");
    let r = operate(s, "reset_gpu", &["gpu=1"]);
    assert!(
        r.contains("habanalabs driver's own `hard_reset` file"),
        "{r}"
    );
    assert!(!r.contains("nvidia-smi") && !r.contains("amd-smi"), "{r}");
    let r = operate(s, "reset_gpu", &["gpu=0"]);
    assert!(
        !r.contains("hard_reset") && !r.contains("habanalabs"),
        "{r}"
    );
}

#[test]
fn healthy_gaudi2_in_its_own_words() {
    let inv = sim("gaudi2-healthy", "get_gpu_inventory");
    assert!(inv.contains("device_type=GAUDI2"), "{inv}");
    assert!(inv.contains("status=Operational"), "{inv}");
    assert!(
        inv.contains("cpucp_version=1.17.0-fw-51.2.0-sec-9"),
        "{inv}"
    );
    // What the driver does not show is said once for the node, not as an empty field on every device.
    assert!(
        inv.contains("gaudi_not_read=architecture, memory_total_mib, serial, uuid, vbios_version (not in the habanalabs driver's sysfs"),
        "{inv}"
    );
    assert_eq!(inv.matches("not_supported").count(), 0, "{inv}");
    let health = sim("gaudi2-healthy", "get_gpu_health");
    assert!(health.contains("verdict: healthy"), "{health}");
    assert!(health.contains("Intel Gaudi 2: healthy"), "{health}");
    // One process per device, each named with its pod from its cgroup.
    let procs = sim("gaudi2-healthy", "get_gpu_processes");
    assert!(procs.contains("1 process each"), "{procs}");
    assert!(procs.contains("pid=61200"), "{procs}");
    let ecc = sim("gaudi2-healthy", "snapshot_ecc");
    assert!(
        ecc.contains("Intel Gaudi: the habanalabs driver shows no ECC counters"),
        "{ecc}"
    );
    let ecc = sim_json("gaudi2-healthy", "snapshot_ecc");
    for g in ecc["report"]["gpus"].as_array().unwrap() {
        let v = g["verdict"].as_str().unwrap();
        assert!(
            v.starts_with("Gaudi: no ECC or HBM error in the kernel log"),
            "{v}"
        );
    }
    let xid = sim("gaudi2-healthy", "analyze_xid_errors");
    assert!(!xid.contains("[CRITICAL]"), "{xid}");
    let describe = sim("gaudi2-healthy", "describe_gpu_node");
    assert!(
        describe.contains("Intel Gaudi, habanalabs on kernel 6.8.0-51-generic"),
        "{describe}"
    );
    assert!(
        describe.contains("Intel Gaudi 2 (GAUDI2, HL-225), status Operational"),
        "{describe}"
    );
}

#[test]
fn faulty_gaudi2_nodes_name_the_device_and_the_drivers_status() {
    // Malfunction: the failed reset leaves `Disabled`, one incident on device 6 with Intel's reset command.
    let h = sim("gaudi2-malfunction", "get_gpu_health");
    assert!(h.contains("verdict: UNHEALTHY"), "{h}");
    assert!(h.contains("GPU 6 (0000:b3:00.0)"), "{h}");
    assert!(h.contains("gaudi.status"), "{h}");
    assert!(h.contains("hl-smi -r -i 0000:b3:00.0"), "{h}");
    let inv = sim("gaudi2-malfunction", "get_gpu_inventory");
    assert!(inv.contains("status=Disabled"), "{inv}");
    let describe = sim("gaudi2-malfunction", "describe_gpu_node");
    assert!(describe.contains("status Disabled"), "{describe}");

    // In reset: the status as the driver prints it, a warning, the device's reads refused (ENODEV).
    let h = sim("gaudi2-in-reset", "get_gpu_health");
    assert!(h.contains("`In reset`"), "{h}");
    assert!(h.contains("GPU 5 (0000:9b:00.0)"), "{h}");
    let procs = sim("gaudi2-in-reset", "get_gpu_processes");
    assert!(!procs.contains("pid=61255"), "{procs}");

    // HBM ECC: the DERR, the reset and its end in the kernel log; ECC's own answer points at them.
    let xid = sim("gaudi2-hbm-ecc", "analyze_xid_errors");
    assert!(xid.contains("habanalabs.hbm_derr"), "{xid}");
    assert!(xid.contains("GPU 2 (0000:33:00.0)"), "{xid}");
    let ecc = sim("gaudi2-hbm-ecc", "snapshot_ecc");
    assert!(ecc.contains("GPU 2 habanalabs.hbm_derr"), "{ecc}");
    let ecc = sim_json("gaudi2-hbm-ecc", "snapshot_ecc");
    let verdicts: Vec<&str> = ecc["report"]["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["verdict"].as_str().unwrap())
        .collect();
    // The node has libhlml: its counters fill the device's ECC counts (sysfs has none), the DERR it
    // counted joins the kernel log's, and a device with rows pending replacement and no log line is said.
    assert!(
        verdicts[2].contains("habanalabs.hbm_derr")
            && verdicts[2].contains("libhlml reads gaudi.ecc_uncorrected"),
        "{verdicts:?}"
    );
    assert_eq!(ecc["report"]["gpus"][2]["volatile"]["uncorrected"], 1);
    assert_eq!(ecc["report"]["gpus"][5]["volatile"]["corrected"], 14);
    assert!(
        verdicts[5] == "Gaudi: libhlml reads gaudi.rows_pending: see the findings",
        "{verdicts:?}"
    );
    assert!(
        verdicts[3].starts_with(
            "Gaudi: no ECC or HBM error in the kernel log, no uncorrected error or row pending replacement in libhlml"
        ),
        "{verdicts:?}"
    );
    let h = sim("gaudi2-hbm-ecc", "get_gpu_health");
    assert!(h.contains("verdict: UNHEALTHY"), "{h}");
    assert!(h.contains("gpu.memory"), "{h}");
    assert!(
        h.contains(
            "GPU 5 (0000:9b:00.0) has HBM rows with ECC errors pending replacement (libhlml)"
        ),
        "{h}"
    );
}

/// A Gaudi 2 host tree through the launcher in local mode (the real probe, `--host-root` from
/// NODE_PROBE_HOST_ROOT): every node tool answers; a process holding `/dev/accel/accel1` is that device's
/// process and no other's; the malfunctioning device is named.
#[test]
fn every_node_tool_on_a_gaudi2_host_tree() {
    let root = host_root::HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "gaudi-tree-1\n");
    let mut devs: Vec<gaudi_tree::Device> = (0..4).map(gaudi_tree::Device::gaudi2).collect();
    devs[3].status = "Disabled";
    gaudi_tree::Node::new(devs.clone()).write(root.path());
    // A trainer holding accel1 (and an unrelated file); another process with no device node.
    root.fds(4242, &["/dev/accel/accel1", "/tmp/x"])
        .file("proc/4242/comm", "python3\n")
        .file("proc/4242/cmdline", "python3\0train.py\0")
        .fds(4343, &["/dev/null"]);
    let run = |tool: &str| {
        let out = Command::new(LAUNCHER)
            .args(["--local", "--probe-bin"])
            .arg(node_probe())
            .args(["call", tool, "--arg", "node_name=local", "--output", "json"])
            .env("NODE_PROBE_HOST_ROOT", root.path())
            .env("RUST_LOG", "warn")
            .output()
            .expect("run k8s-gpu-mcp");
        assert!(
            out.status.success(),
            "{tool}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    for tool in NODE_TOOLS {
        let doc = run(tool);
        assert!(doc["report"].is_object(), "{tool}: {doc:#}");
    }
    let procs = run("get_gpu_processes");
    let gpus = procs["report"]["gpus"].as_array().unwrap();
    let pids = |i: usize| -> Vec<u64> {
        gpus[i]["processes"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|p| p["pid"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(pids(1), [4242], "{procs:#}");
    for i in [0, 2, 3] {
        assert!(pids(i).is_empty(), "device {i}: {procs:#}");
    }
    let health = run("get_gpu_health");
    assert_eq!(health["report"]["verdict"], "unhealthy", "{health:#}");
    assert_eq!(health["report"]["gpus"][3]["verdict"], "unhealthy");
    let inv = run("get_gpu_inventory");
    assert_eq!(inv["report"]["gpus"][3]["gaudi"]["status"], "Disabled");
    assert!(inv["report"].get("driver").is_none(), "{inv:#}");
}

/// A Gaudi's own scale-out RoCE port down: the health answer names the port and the device it belongs to,
/// the topology answer puts each device's ports beside it (its own PCI function), and nothing else is wrong.
#[test]
fn a_gaudi_roce_port_down_names_the_port_and_its_device() {
    let h = sim("gaudi2-roce-port-down", "get_gpu_health");
    assert!(h.contains("hbl_4/2 (0000:9a:00.0, serves GPU 4)"), "{h}");
    // A RoCE port: no InfiniBand subnet manager in its action.
    assert!(h.contains("rdma link") && !h.contains("ibstat"), "{h}");
    assert!(
        !h.contains("hbl_3"),
        "a healthy device's port is named: {h}"
    );
    let v = sim_json("gaudi2-roce-port-down", "get_gpu_health");
    let incidents = v["report"]["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{h}");
    let t = sim("gaudi2-roce-port-down", "inspect_topology");
    assert!(t.contains("hbl_4"), "{t}");
}

/// Gaudi 3 reads as Gaudi 3 (its product, card and limits), never as Gaudi 2, and is healthy.
#[test]
fn healthy_gaudi3_in_its_own_words() {
    let inv = sim("gaudi3-healthy", "get_gpu_inventory");
    assert!(inv.contains("Intel Gaudi 3"), "{inv}");
    assert!(inv.contains("HL-325L"), "{inv}");
    assert!(!inv.contains("Gaudi 2") && !inv.contains("HL-225"), "{inv}");
    let h = sim_json("gaudi3-healthy", "get_gpu_health");
    assert_eq!(h["report"]["verdict"], "healthy", "{h}");
}

/// A Gaudi 3 throttling for heat: one overheating incident on device 3 that joins libhlml's THERMAL reason
/// and the driver's lines, with a cooling action; the power-limited device 6 stays information; the
/// telemetry line of each says libhlml's reasons in words.
#[test]
fn a_gaudi3_throttling_for_heat_is_one_cooling_incident() {
    let h = sim_json("gaudi3-thermal", "get_gpu_health");
    let r = &h["report"];
    assert_eq!(r["verdict"], "degraded", "{h}");
    let incidents = r["incidents"].as_array().unwrap();
    let hot: Vec<&serde_json::Value> = incidents
        .iter()
        .filter(|i| i["code"] == "gpu.thermal")
        .collect();
    assert_eq!(hot.len(), 1, "{h}");
    assert_eq!(hot[0]["gpu"], 3, "{h}");
    let signals: Vec<&str> = hot[0]["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    assert!(signals.contains(&"gaudi.throttle.thermal"), "{signals:?}");
    assert!(signals.contains(&"habanalabs.thermal"), "{signals:?}");
    assert_eq!(hot[0]["action"]["kind"], "check_cooling", "{h}");
    assert!(
        incidents
            .iter()
            .all(|i| i["gpu"] != 6 || i["severity"] == "info"),
        "{h}"
    );
    let t = sim("gaudi3-thermal", "get_gpu_telemetry");
    // Each reason its own line: the hot device, the power-limited one, the others.
    assert!(
        t.contains(
            "  GPU 3: 96 C, 431/900 W, SM 1150/1900 MHz, util ?%, mem ?; Gaudi status Operational, \
             throttled for heat (THERMAL) (libhlml): clock 1150 of 1900 MHz."
        ),
        "{t}"
    );
    assert!(
        t.contains(
            "  GPU 6: 65 C, 897/900 W, SM 1900/1900 MHz, util ?%, mem ?; Gaudi status Operational, \
             throttled for its power limit (POWER) (libhlml): clock 1900 of 1900 MHz."
        ),
        "{t}"
    );
    assert!(t.contains("  GPU 0-2, 4-5, 7: "), "{t}");
}

/// A Gaudi 3 board whose NIC links only libhlml reads: the two devices with a link down are named with their
/// ports in Intel's terms (external, internal), the board link asks for the device's hard reset, the cable
/// for its mechanicals; the other six are healthy.
#[test]
fn gaudi3_nic_links_down_from_libhlml() {
    let h = sim_json("gaudi3-nic-link-down", "get_gpu_health");
    let r = &h["report"];
    let mut down: Vec<(u64, &str)> = r["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["code"] == "gaudi.nic_port_down")
        .map(|i| {
            (
                i["gpu"].as_u64().unwrap(),
                i["action"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    down.sort();
    assert_eq!(
        down,
        [(1, "drain_and_reset_gpu"), (5, "check_mechanicals")],
        "{h}"
    );
    let t = sim("gaudi3-nic-link-down", "get_gpu_health");
    assert!(
        t.contains("internal (scale-up, to another Gaudi on the board) port 9"),
        "{t}"
    );
    assert!(t.contains("external (scale-out) port 22"), "{t}");
    assert!(t.contains("GPU 0, 2-4, 6-7 Intel Gaudi 3: healthy"), "{t}");
    // The fabric view has no RDMA device for these NICs: it lists libhlml's ports, the down ones named.
    let topo = sim("gaudi3-nic-link-down", "inspect_topology");
    assert!(
        topo.contains("  GPU 1: 24 ports (3 external), down: 9 (internal)\n"),
        "{topo}"
    );
    assert!(
        topo.contains("  GPU 0, 2-4, 6-7: 24 ports (3 external), all up\n"),
        "{topo}"
    );
    // Where the RDMA core shows a Gaudi's NIC, libhlml's ports are not listed again.
    let roce = sim("gaudi2-roce-port-down", "inspect_topology");
    assert!(!roce.contains("Gaudi NIC ports (libhlml"), "{roce}");
}

/// An operator tool's text on a built-in scenario, in operator mode, as a dry run.
fn operate(scenario: &str, tool: &str, args: &[&str]) -> String {
    let out = Command::new(LAUNCHER)
        .args([
            "--local",
            "--simulate",
            scenario,
            "--mode",
            "operator",
            "--probe-bin",
        ])
        .arg(node_probe())
        .args([
            "call",
            tool,
            "--arg",
            "node_name=local",
            "--arg",
            "dry_run=true",
        ])
        .args(args.iter().flat_map(|a| ["--arg", a]))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Operator mode on a Gaudi node: a reset is judged in Intel's words, through the driver's own
/// `hard_reset` file (before, it was judged as an AMD GPU's hive reset with `amd-smi`, then refused); a
/// scenario has no holder scan, so it is refused naming the device node. A kill names the process by the
/// device node it holds.
#[test]
fn operator_tools_on_a_gaudi_node_speak_intels_words() {
    let r = operate("gaudi2-malfunction", "reset_gpu", &["gpu=6"]);
    assert!(r.contains("REFUSED"), "{r}");
    assert!(r.contains("GPU 6 Intel Gaudi 2 0000:b3:00.0\n"), "{r}");
    assert!(
        r.contains("habanalabs driver's own `hard_reset` file"),
        "{r}"
    );
    assert!(
        r.contains(
            "BLOCK device_node_holders: the holders of /dev/accel/accel6 were not collected"
        ),
        "{r}"
    );
    assert!(
        !r.contains("amd-smi") && !r.contains("XGMI") && !r.contains("AMD"),
        "{r}"
    );
    let k = operate("gaudi2-healthy", "kill_gpu_process", &["pid=61211"]);
    assert!(
        k.contains("/dev/accel holders (habanalabs) lists pid 61211"),
        "{k}"
    );
    assert!(!k.contains("KFD") && !k.contains("NVML"), "{k}");
}
