//! node-probe on NVML, end to end, without a GPU: the real binary loads a fake libnvidia-ml built from
//! tests/fake-nvml/fake_nvml.c (4 GPUs: one healthy, one lost mid-collection, one without a handle, one in
//! MIG mode; most NVML symbols absent) and reads a fake host root.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
use fake_nvml::fake_lib;

#[path = "../support/host_root.rs"]
mod host_root;
use host_root::HostRoot;

#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::{Document as Run, NodeProbe};

/// The node the fake GPUs live in: GPU 0 (bus 1b) runs pid 4242; fabric manager and persistenced run.
fn host_root() -> HostRoot {
    let d = HostRoot::new();
    d.file("etc/hostname", "gpu-node-5\n")
        .file(
            "proc/sys/kernel/random/boot_id",
            "0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20\n",
        )
        .file("proc/sys/kernel/osrelease", "6.8.0-1015-nvidia\n")
        .file(
            "proc/stat",
            "cpu  1 2 3 4\ncpu0 1 2 3 4\nbtime 1763700000\n",
        )
        .file("proc/uptime", "3600.50 7000.00\n")
        .file("sys/devices/system/cpu/possible", "0-127\n")
        .file("proc/4242/comm", "python3\n")
        .file("proc/4242/cmdline", b"python3\0train.py\0")
        .file(
            "proc/4242/cgroup",
            "0::/kubepods.slice/kubepods-podabc.slice\n",
        )
        .file(
            "proc/4242/stat",
            "4242 (python3) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 8 0 100000 0 0\n",
        )
        .file("proc/77/comm", "nv-fabricmanage\n")
        .file("proc/78/comm", "nvidia-persiste\n")
        .file(
            "sys/bus/pci/devices/0000:1b:00.0/aer_dev_correctable",
            "RxErr 4\nTOTAL_ERR_COR 4\n",
        )
        .file(
            "sys/bus/pci/devices/0000:1b:00.0/aer_dev_nonfatal",
            "TOTAL_ERR_NONFATAL 0\n",
        )
        .file(
            "sys/bus/pci/devices/0000:1b:00.0/aer_dev_fatal",
            "TOTAL_ERR_FATAL 0\n",
        )
        .file("sys/bus/pci/devices/0000:c3:00.0/numa_node", "1\n");
    d
}

fn probe(args: &[&str], env: &[(&str, &Path)]) -> Run {
    NodeProbe::new()
        .args(args)
        .envs(env.iter().copied())
        .document()
}

fn run_fake(lib: &Path, root: &HostRoot, cmd: &str) -> Run {
    run_fake_with(lib, root, &[cmd], &[])
}

/// node-probe on the fake library and host root, with more arguments and environment.
fn run_fake_with(lib: &Path, root: &HostRoot, args: &[&str], env: &[(&str, &Path)]) -> Run {
    let mut all = vec![
        "--nvml-lib",
        lib.to_str().unwrap(),
        "--host-root",
        root.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    probe(&all, env)
}

fn err_kind(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not an inline error: {v}"))
}

#[test]
fn facts_from_the_fake_library() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    let r = run_fake(lib, &root, "facts");
    assert_eq!(r.code, 0, "{}\n{}", r.doc, r.stderr);
    let f = &r.doc["facts"];
    assert_eq!(f["source"], "nvml");
    assert_eq!(r.doc["probe"]["hostname"], "gpu-node-5");

    // Driver and library.
    assert_eq!(f["driver"]["driver_version"], "580.95.05");
    assert_eq!(f["driver"]["cuda_driver_version"], 13000);
    assert_eq!(f["driver"]["nvml_version"], "13.580.95.05");
    assert_eq!(f["driver"]["nvml_library"], lib.to_str().unwrap());
    assert_eq!(f["device_count"], 4);
    let gpus = f["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 4);

    // GPU 0: values from the fake, and absent symbols inline as function_not_found.
    let g = &gpus[0];
    assert_eq!(g["index"], 0);
    assert_eq!(g["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(g["uuid"], "GPU-5f1c1a5e-0000-4000-8000-000000000000");
    assert_eq!(g["serial"], "1654922000000");
    assert_eq!(g["pci_bus_id"], "00000000:1B:00.0");
    assert_eq!(g["pci_device_id"], 0x233010DEu32);
    assert_eq!(g["architecture"], "Hopper");
    assert_eq!(g["cuda_compute_capability"], serde_json::json!([9, 0]));
    assert_eq!(err_kind(&g["vbios_version"]), "function_not_found");
    assert!(
        g["vbios_version"]["message"]
            .as_str()
            .unwrap()
            .contains("nvmlDeviceGetVbiosVersion")
    );
    assert_eq!(err_kind(&g["persistence_mode"]), "function_not_found");
    // Memory through the v1 fallback (the fake has no nvmlDeviceGetMemoryInfo_v2).
    assert_eq!(g["memory"]["total_bytes"], 85520809984u64);
    assert_eq!(g["memory"]["used_bytes"], 1073741824u64);
    assert_eq!(
        g["mig_mode"],
        serde_json::json!({"current": false, "pending": false})
    );
    assert_eq!(g["compute_mode"], "exclusive_process");
    let pcie = &g["pcie"];
    assert_eq!(pcie["max_link_gen"], 5);
    assert_eq!(pcie["max_link_width"], 16);
    assert_eq!(pcie["current_link_width"], 8);
    assert_eq!(pcie["replay_counter"], 12);
    assert_eq!(err_kind(&pcie["gpu_max_link_gen"]), "function_not_found");
    assert_eq!(
        pcie["aer"],
        serde_json::json!({"correctable": 4, "nonfatal": 0, "fatal": 0})
    );

    // NVLink: links until INVALID_ARGUMENT (two), remote by PCI id.
    let links = g["nvlinks"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0]["active"], true);
    assert_eq!(links[1]["active"], false);
    assert_eq!(links[0]["version"], 4);
    assert_eq!(links[0]["remote_pci_bus_id"], "00000000:C3:00.0");
    assert_eq!(err_kind(&links[1]["remote_pci_bus_id"]), "not_supported");
    assert_eq!(links[0]["crc_flit_errors"], 5);
    assert_eq!(links[0]["replay_errors"], 0);
    assert_eq!(
        err_kind(&links[0]["remote_device_type"]),
        "function_not_found"
    );

    // Telemetry.
    let t = &g["thermal"];
    assert_eq!(t["gpu_temp_c"], 41);
    assert_eq!(t["memory_temp_c"], 45);
    assert_eq!(t["shutdown_threshold_c"], 92);
    assert_eq!(t["slowdown_threshold_c"], 89);
    assert_eq!(t["gpu_max_threshold_c"], 87);
    assert_eq!(t["memory_max_threshold_c"], 95);
    // No fans (count 0): not supported, though the per-fan call answers INVALID_ARGUMENT.
    assert_eq!(err_kind(&g["fan_speed_pct"]), "not_supported");
    assert!(
        g["fan_speed_pct"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nvmlDeviceGetNumFans = 0")),
        "{}",
        g["fan_speed_pct"]
    );
    assert_eq!(g["power"]["usage_mw"], 312000);
    assert_eq!(
        err_kind(&g["power"]["enforced_limit_mw"]),
        "function_not_found"
    );
    assert_eq!(err_kind(&g["utilization"]), "function_not_found");
    assert_eq!(g["clocks"]["sm_mhz"], 1980);
    assert_eq!(g["clocks"]["memory_max_mhz"], 2619);
    assert_eq!(g["performance_state"], 0);
    // The raw bitmask keeps bit 40, which no header the probe knows names.
    assert_eq!(g["clocks_event_reasons"], 0x1u64 | 0x4 | (1u64 << 40));
    // Duration counters: ids 269-271 asked of a 580.95 driver (renumbered field ids).
    let dur = &g["clocks_event_durations_ns"];
    assert_eq!(dur["sw_power_cap"], 1234);
    assert_eq!(dur["sw_thermal_slowdown"], 111);
    assert_eq!(dur["hw_thermal_slowdown"], 222);
    assert_eq!(dur["hw_power_brake_slowdown"], 333);
    assert_eq!(err_kind(&dur["sync_boost"]), "not_supported");

    // ECC, remapped rows (raw call), recovery action (field 230).
    let e = &g["ecc"];
    assert_eq!(
        e["mode"],
        serde_json::json!({"current": true, "pending": true})
    );
    assert_eq!(e["volatile_corrected"], 10);
    assert_eq!(e["aggregate_uncorrected"], 2);
    let locs = e["by_location"].as_array().unwrap();
    assert_eq!(locs.len(), 1, "only dram is supported: {locs:?}");
    assert_eq!(locs[0]["location"], "dram");
    assert_eq!(locs[0]["aggregate_corrected"], 70);
    assert_eq!(
        e["remapped_rows"],
        serde_json::json!({"correctable": 1, "uncorrectable": 0, "pending": true, "failure": false})
    );
    assert_eq!(err_kind(&e["retired_pages"]), "function_not_found");
    assert_eq!(err_kind(&e["row_remapper_histogram"]), "function_not_found");
    assert_eq!(
        err_kind(&e["sram_threshold_exceeded"]),
        "function_not_found"
    );
    assert_eq!(g["recovery_action"], 1);

    // Topology facts of the GPU; fabric through the v2 struct after the v3 one was refused.
    assert_eq!(g["numa_node"], 0);
    assert_eq!(
        g["cpu_affinity"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7])
    );
    assert_eq!(g["fabric"]["state"], 3);
    assert_eq!(g["fabric"]["status"], 0);
    assert_eq!(g["fabric"]["clique_id"], 7);
    assert_eq!(
        g["fabric"]["cluster_uuid"],
        "10111213-1415-1617-1819-1a1b1c1d1e1f"
    );
    assert_eq!(g["fabric"]["health_mask"], 0);

    // Processes and what the host's /proc says about them.
    let procs = g["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 1);
    assert_eq!(procs[0]["pid"], 4242);
    assert_eq!(procs[0]["kind"], "compute");
    assert_eq!(procs[0]["used_memory_bytes"], 1048576000u64);
    let hp = f["host_processes"].as_array().unwrap();
    assert_eq!(hp.len(), 1);
    assert_eq!(hp[0]["pid"], 4242);
    assert_eq!(hp[0]["name"], "python3");
    assert_eq!(hp[0]["cmdline"], "python3 train.py");
    assert_eq!(hp[0]["state"], "S");

    // GPU 1 answered name, uuid, serial, then fell off the bus: everything after is gpu_is_lost.
    let g1 = &gpus[1];
    assert_eq!(g1["uuid"], "GPU-5f1c1a5e-0000-4000-8000-000000000001");
    for field in [
        "pci_bus_id",
        "memory",
        "compute_mode",
        "processes",
        "fabric",
    ] {
        assert_eq!(err_kind(&g1[field]), "gpu_is_lost", "{field}");
    }
    assert_eq!(err_kind(&g1["thermal"]["gpu_temp_c"]), "gpu_is_lost");
    assert_eq!(err_kind(&g1["ecc"]["remapped_rows"]), "gpu_is_lost");
    assert_eq!(err_kind(&g1["recovery_action"]), "gpu_is_lost");
    assert!(g1.get("handle_error").is_none());

    // GPU 2: no handle at all.
    assert_eq!(gpus[2]["handle_error"]["error"], "no_permission");
    assert_eq!(err_kind(&gpus[2]["name"]), "not_collected");

    // GPU 3: MIG mode with one MIG device; remapped rows unsupported with MIG instances.
    let g3 = &gpus[3];
    assert_eq!(
        g3["mig_mode"],
        serde_json::json!({"current": true, "pending": true})
    );
    let migs = g3["mig_devices"].as_array().unwrap();
    assert_eq!(migs.len(), 1, "{migs:?}");
    assert_eq!(migs[0]["uuid"], "MIG-1b2c3d4e-0000-4000-8000-000000000003");
    assert_eq!(migs[0]["gpu_instance_id"], 1);
    assert_eq!(migs[0]["compute_instance_id"], 0);
    assert_eq!(migs[0]["name"], "NVIDIA H100 80GB HBM3 MIG 3g.40gb");
    assert_eq!(migs[0]["memory"]["total_bytes"], 42949672960u64);
    assert_eq!(err_kind(&g3["ecc"]["remapped_rows"]), "not_supported");
    assert_eq!(g3["clocks_event_reasons"], 0x48);
    assert_eq!(g3["clocks"]["sm_mhz"], 705);
    assert_eq!(
        g3["clocks_event_durations_ns"]["hw_thermal_slowdown"],
        9000000000u64
    );
    assert_eq!(g3["thermal"]["gpu_temp_c"], 91);
    assert_eq!(g3["cpu_affinity"], serde_json::json!([64, 65]));
    // NVML's memory affinity is unsupported for GPU 3: the node comes from sysfs.
    assert_eq!(g3["numa_node"], 1);
    assert_eq!(err_kind(&g3["fabric"]), "not_supported");
    assert_eq!(err_kind(&g3["pcie"]["aer"]), "not_found");

    // Pairs among GPUs with handles; pairs with the lost GPU say so.
    let pairs = f["topology"].as_array().unwrap();
    let pair = |a: u64, b: u64| {
        pairs
            .iter()
            .find(|p| p["a"] == a && p["b"] == b)
            .unwrap_or_else(|| panic!("no pair {a}-{b}: {pairs:?}"))
    };
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    assert_eq!(pair(0, 3)["common_ancestor"], 40);
    assert_eq!(
        pair(0, 3)["p2p"],
        serde_json::json!({"read": 0, "write": 0, "nvlink": 4, "atomics": null})
    );
    assert_eq!(err_kind(&pair(0, 1)["common_ancestor"]), "gpu_is_lost");
    assert_eq!(err_kind(&pair(1, 3)["common_ancestor"]), "gpu_is_lost");

    // Host facts and services.
    assert_eq!(f["host"]["boot_id"], "0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20");
    assert_eq!(f["host"]["kernel_release"], "6.8.0-1015-nvidia");
    assert_eq!(f["host"]["boot_time_unix"], 1763700000.0);
    assert_eq!(f["host"]["cpu_count"], 128);
    let svc: Vec<(String, Value)> = f["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["running"].clone(),
            )
        })
        .collect();
    assert!(
        svc.contains(&("nvidia-fabricmanager".into(), Value::Bool(true))),
        "{svc:?}"
    );
    assert!(
        svc.contains(&("nvidia-persistenced".into(), Value::Bool(true))),
        "{svc:?}"
    );
    assert!(
        svc.contains(&("nv-hostengine".into(), Value::Bool(false))),
        "{svc:?}"
    );
}

#[test]
fn every_command_runs_on_the_fake_library() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    for cmd in gpu_diag::command::Command::ALL.iter().map(|c| c.name()) {
        let r = run_fake(lib, &root, cmd);
        assert_eq!(r.code, 0, "{cmd}: {}\n{}", r.doc, r.stderr);
        assert!(
            r.doc.get(cmd).is_some(),
            "{cmd}: no `{cmd}` report: {}",
            r.doc
        );
        let p = &r.doc["probe"];
        assert_eq!(p["source"], "nvml", "{cmd}");
        assert_eq!(p["hostname"], "gpu-node-5", "{cmd}");
        assert_eq!(
            p["boot_id"], "0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20",
            "{cmd}"
        );
    }
}

/// Lines `function gpu` the fake logged while node-probe ran `cmd`.
fn calls(lib: &Path, root: &HostRoot, cmd: &str) -> Vec<String> {
    let log = root.path().join(format!("nvml-{cmd}.log"));
    let r = run_fake_with(lib, root, &[cmd], &[("FAKE_NVML_LOG", &log)]);
    assert_eq!(r.code, 0, "{cmd}: {}", r.doc);
    std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn called(calls: &[String], function: &str) -> bool {
    calls.iter().any(|c| c.split(' ').next() == Some(function))
}

#[test]
fn each_command_queries_only_what_it_needs() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    let telemetry_only = [
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetClockInfo",
        "nvmlDeviceGetPowerUsage",
    ];
    let ecc_only = ["nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetRemappedRows"];
    let topology_only = [
        "nvmlDeviceGetTopologyCommonAncestor",
        "nvmlDeviceGetNvLinkErrorCounter",
        "nvmlDeviceGetGpuFabricInfoV",
    ];
    let processes_only = ["nvmlDeviceGetComputeRunningProcesses_v3"];

    let inv = calls(lib, &root, "inventory");
    assert!(called(&inv, "nvmlDeviceGetName"));
    assert!(called(&inv, "nvmlDeviceGetPciInfo_v3"));
    for f in telemetry_only
        .iter()
        .chain(&ecc_only)
        .chain(&topology_only)
        .chain(&processes_only)
        .chain(&["nvmlDeviceGetFieldValues"])
    {
        assert!(!called(&inv, f), "inventory called {f}");
    }

    let tel = calls(lib, &root, "telemetry");
    for f in telemetry_only.iter().chain(&["nvmlDeviceGetFieldValues"]) {
        assert!(called(&tel, f), "telemetry did not call {f}");
    }
    for f in ecc_only.iter().chain(&topology_only).chain(&processes_only) {
        assert!(!called(&tel, f), "telemetry called {f}");
    }

    let ecc = calls(lib, &root, "ecc");
    for f in &ecc_only {
        assert!(called(&ecc, f), "ecc did not call {f}");
    }
    for f in telemetry_only.iter().chain(&topology_only) {
        assert!(!called(&ecc, f), "ecc called {f}");
    }

    // Once GPU 1 is lost, nothing more is asked of it.
    let all = calls(lib, &root, "describe");
    let gpu1: Vec<&String> = all.iter().filter(|c| c.ends_with(" 1")).collect();
    assert_eq!(
        gpu1.last().map(|s| s.as_str()),
        Some("nvmlDeviceGetPciInfo_v3 1"),
        "{gpu1:?}"
    );
    for f in topology_only.iter().chain(&processes_only) {
        assert!(called(&all, f), "describe did not call {f}");
    }
}

#[test]
fn finds_the_library_under_the_host_root() {
    let Some(lib) = fake_lib() else { return };
    let on_loader_path = Command::new("ldconfig")
        .arg("-p")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("libnvidia-ml.so.1"))
        .unwrap_or(false);
    if on_loader_path {
        fake_nvml::gate::skip(
            "this machine's loader finds a real libnvidia-ml.so.1, which comes first",
        );
        return;
    }
    let root = host_root();
    // As the GPU Operator lays it out, with an absolute link that must resolve inside the host root.
    let dir = format!(
        "run/nvidia/driver/usr/lib/{}-linux-gnu",
        std::env::consts::ARCH
    );
    let real = root.path().join(&dir).join("libnvidia-ml.so.580.95.05");
    std::fs::create_dir_all(real.parent().unwrap()).unwrap();
    std::fs::copy(lib, &real).unwrap();
    std::os::unix::fs::symlink(
        format!("/{dir}/libnvidia-ml.so.580.95.05"),
        root.path().join(&dir).join("libnvidia-ml.so.1"),
    )
    .unwrap();
    let r = probe(
        &["--host-root", root.path().to_str().unwrap(), "facts"],
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.doc, r.stderr);
    assert_eq!(
        r.doc["facts"]["driver"]["nvml_library"],
        real.to_str().unwrap()
    );
    assert_eq!(r.doc["facts"]["gpus"][0]["name"], "NVIDIA H100 80GB HBM3");
}

#[test]
fn captured_facts_replay_as_a_fixture() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    let captured = run_fake(lib, &root, "facts");
    assert_eq!(captured.code, 0);
    let file = root.path().join("node.json");
    std::fs::write(&file, captured.doc.to_string()).unwrap();
    let replay = probe(&["--fixture", file.to_str().unwrap(), "facts"], &[]);
    assert_eq!(replay.code, 0, "{}", replay.doc);
    let mut want = captured.doc["facts"].clone();
    want["source"] = Value::String("simulated:node".into());
    assert_eq!(replay.doc["facts"], want);
    for cmd in ["inventory", "health", "describe"] {
        let r = probe(&["--fixture", file.to_str().unwrap(), cmd], &[]);
        assert_eq!(r.code, 0, "{cmd}: {}", r.doc);
    }
}

#[test]
fn watch_records_nvml_events() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    let r = run_fake_with(lib, &root, &["facts", "--watch", "5"], &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.doc, r.stderr);
    let w = &r.doc["facts"]["nvml_events"];
    assert_eq!(w["watched_seconds"], 5);
    let reg = w["registered"].as_array().unwrap();
    assert_eq!(reg.len(), 4);
    // GPU 0 registers what it supports of XID | double-bit ECC | recovery action (not P-state 0x4).
    assert_eq!(reg[0]["event_types"], 0x8 | 0x2 | 0x8000);
    assert_eq!(err_kind(&reg[1]["event_types"]), "gpu_is_lost");
    assert_eq!(err_kind(&reg[2]["event_types"]), "no_permission");
    assert_eq!(err_kind(&reg[3]["event_types"]), "not_supported");
    let ev = w["events"].as_array().unwrap();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        (
            ev[0]["gpu"].clone(),
            ev[0]["event_type"].clone(),
            ev[0]["event_data"].clone()
        ),
        (0.into(), 8.into(), 79.into())
    );
    assert!(ev[0]["gpu_instance_id"].is_null());
    assert_eq!(ev[1]["event_type"], 0x8000);
    assert_eq!(ev[1]["event_data"], 2);
    assert_eq!(ev[1]["gpu_instance_id"], 1);
    assert_eq!(ev[1]["compute_instance_id"], 0);
    assert!(ev[1]["received_unix"].as_f64().unwrap() > 1.7e9);
    assert!(w.get("stopped_early").is_none(), "{w}");

    // Without --watch there is no event section at all.
    let r = run_fake(lib, &root, "facts");
    assert!(r.doc["facts"].get("nvml_events").is_none());
}

#[test]
fn hung_nvml_is_reported_with_the_kernel_log_not_waited_for() {
    let Some(lib) = fake_lib() else { return };
    let root = host_root();
    let log = root.path().join("kern.log");
    std::fs::write(
        &log,
        "[ 1234.567890] NVRM: Xid (PCI:0000:1b:00): 119, pid=4242, name=python3, Timeout after 6s of waiting for RPC response from GPU0 GSP! Expected function 76 (GSP_RM_CONTROL) (0x20800a4c 0x4).\n",
    )
    .unwrap();
    let hang = Path::new("600");
    let started = std::time::Instant::now();
    let hang_env = [("FAKE_NVML_HANG_SECS", hang)];
    let r = run_fake_with(lib, &root, &["--nvml-timeout", "1", "health"], &hang_env);
    let took = started.elapsed();
    // Bounded by the timeout, not by the 600 s hang (generous margin for a loaded machine).
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    assert_eq!(r.code, 0, "{}", r.doc);
    let findings = r.doc["health"]["node_findings"]
        .as_array()
        .expect("findings");
    let hung = findings
        .iter()
        .find(|f| f["code"] == "nvml.hung")
        .unwrap_or_else(|| panic!("no nvml.hung finding: {}", r.doc));
    assert_eq!(hung["severity"], "critical");
    assert!(
        hung["evidence"][0].as_str().unwrap().contains("within 1 s"),
        "{hung}"
    );
    assert!(r.stderr.contains("NVML did not answer"), "{}", r.stderr);

    // The kernel log is still read and decoded while NVML hangs.
    let x = run_fake_with(
        lib,
        &root,
        &[
            "--nvml-timeout",
            "1",
            "xid",
            "--log-file",
            log.to_str().unwrap(),
        ],
        &hang_env,
    );
    assert_eq!(x.code, 0, "{}", x.doc);
    let events = x.doc["xid"]["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{}", x.doc);
    assert_eq!(events[0]["code"], 119, "{}", x.doc);
}

/// An InfiniBand device on the PCI function `path` (below sys/devices), one port, as sysfs links it.
fn add_ib(root: &HostRoot, name: &str, path: &str, numa: i32, up: bool, link_downed: u64) {
    let dev = format!("sys/devices/{path}/infiniband/{name}");
    root.file(
        &format!("sys/devices/{path}/numa_node"),
        format!("{numa}\n"),
    )
    .file(&format!("{dev}/hca_type"), "MT4129\n")
    .file(&format!("{dev}/ports/1/link_layer"), "InfiniBand\n")
    .file(&format!("{dev}/ports/1/rate"), "400 Gb/sec (4X NDR)\n")
    .file(
        &format!("{dev}/ports/1/state"),
        if up { "4: ACTIVE\n" } else { "1: DOWN\n" },
    )
    .file(
        &format!("{dev}/ports/1/phys_state"),
        if up { "5: LinkUp\n" } else { "2: Polling\n" },
    )
    .file(
        &format!("{dev}/ports/1/counters/link_downed"),
        format!("{link_downed}\n"),
    )
    .file(&format!("{dev}/ports/1/counters/symbol_error"), "0\n");
    let link = |rel: &str, target: &str| {
        let p = root.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    };
    link(
        &format!("sys/class/infiniband/{name}"),
        &format!("../../devices/{path}/infiniband/{name}"),
    );
    link(&format!("{dev}/device"), "../..");
}

#[test]
fn nics_from_a_fake_sysfs_and_a_node_without_any() {
    let Some(lib) = fake_lib() else { return };
    // No RDMA device: the section says so plainly and nothing is judged.
    let plain = host_root();
    let r = run_fake_with(lib, &plain, &["topology"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nics = &r.doc["topology"]["nics"];
    assert!(
        nics["summary"]
            .as_str()
            .unwrap()
            .starts_with("none: this node has no RDMA device"),
        "{nics}"
    );
    assert!(nics["ports"].as_array().unwrap().is_empty());

    // GPU 0 (bus 1b) shares a PCIe switch with mlx5_0, whose link went down 4 times; mlx5_1 sits on
    // the other socket and is down.
    let root = host_root();
    let gpu0 = "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:00.0/0000:1b:00.0";
    std::fs::create_dir_all(
        root.path()
            .join(format!("sys/devices/{gpu0}"))
            .parent()
            .unwrap(),
    )
    .unwrap();
    std::fs::rename(
        root.path().join("sys/bus/pci/devices/0000:1b:00.0"),
        root.path().join(format!("sys/devices/{gpu0}")),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        format!("../../../devices/{gpu0}"),
        root.path().join("sys/bus/pci/devices/0000:1b:00.0"),
    )
    .unwrap();
    add_ib(
        &root,
        "mlx5_0",
        "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.0",
        0,
        true,
        4,
    );
    add_ib(
        &root,
        "mlx5_1",
        "pci0000:c0/0000:c0:01.0/0000:c1:00.0",
        1,
        false,
        0,
    );
    let r = run_fake_with(lib, &root, &["--nic-interval-ms", "50", "topology"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nics = &r.doc["topology"]["nics"];
    assert!(nics["sample_interval_ms"].as_u64().unwrap() >= 50, "{nics}");
    let rows = nics["affinity"]["rows"].as_array().unwrap();
    let gpu0_row = rows.iter().find(|r| r["gpu"] == 0).unwrap();
    assert_eq!(
        gpu0_row["cells"],
        serde_json::json!(["PIX", "SYS"]),
        "{gpu0_row}"
    );
    assert_eq!(nics["ports"][0]["serves_gpus"][0], 0);

    let h = run_fake_with(lib, &root, &["--nic-interval-ms", "0", "health"], &[]);
    let codes: Vec<&str> = h.doc["health"]["node_findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"nic.link_flapping"), "{codes:?}");
    assert!(codes.contains(&"nic.port_down"), "{codes:?}");
    let flap = h.doc["health"]["node_findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "nic.link_flapping")
        .unwrap();
    assert!(
        flap["summary"]
            .as_str()
            .unwrap()
            .contains("mlx5_0/1 (0000:1c:00.0, serves GPU 0)"),
        "{flap}"
    );
    assert_eq!(
        flap["severity"], "warning",
        "lifetime only: no second sample"
    );
}
