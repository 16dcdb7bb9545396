//! node-probe on fake AWS Neuron hosts (`tests/support/neuron_tree.rs`, written from aws-neuron-driver's
//! sysfs printers): the real binary with `--host-root` on a trn2 tree, no NVIDIA library, asserting that
//! every field reads the value the builder wrote for it (each value unique to its field), devices in the
//! driver's index order, the class's own attributes not taken for devices, the holders of `/dev/neuron<N>`
//! as the device's processes, and what the driver's sysfs cannot say (the PCI address of one device among
//! many) an inline error saying why.

#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/neuron_scenarios.rs"]
mod neuron_scenarios;
#[path = "../support/neuron_tree.rs"]
mod neuron_tree;
#[path = "../support/node_probe.rs"]
mod node_probe;

use host_root::HostRoot;
use neuron_tree::{Device, Node};
use node_probe::NodeProbe;
use serde_json::Value;

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

fn facts_in(root: &HostRoot, node: &Node) -> Value {
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "trn2-node-1\n");
    node.write(root.path());
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "facts"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("NEURON_DUMP").is_some() {
        eprintln!("{:#}", run.doc);
    }
    run.doc["facts"].clone()
}

/// Every field of one device against what the builder wrote.
fn assert_device(g: &Value, d: &Device, index: u64) {
    assert_eq!(g["index"], index, "{g:#}");
    assert_eq!(g["vendor"], "neuron");
    assert_eq!(g["name"], "AWS Trainium2");
    assert_eq!(g["pci_device_id"], (0x7364u64 << 16) | 0x1d0f);
    assert_eq!(g["serial"], format!("{:016x}", d.serial.unwrap()));
    assert_eq!(g["uuid"]["error"], "not_supported");
    let n = &g["neuron"];
    assert_eq!(n["device"], format!("neuron{}", d.index));
    assert_eq!(n["device_state"], d.device_state);
    assert_eq!(n["core_count"], d.core_count);
    assert_eq!(n["connected_devices"], serde_json::json!(d.connected));
    assert_eq!(n["arch_type"], "NDv3");
    assert_eq!(n["instance_type"], "Trn2");
    assert_eq!(n["device_name"], "Trainium2");
    let hw = &n["hardware"];
    assert_eq!(hw["sram_ecc_uncorrected"], d.sram_ecc_uncorrected);
    assert_eq!(hw["mem_ecc_uncorrected"], d.mem_ecc_uncorrected);
    assert_eq!(
        hw["mem_ecc_repairable_uncorrected"],
        d.mem_ecc_repairable_uncorrected
    );
    let cores = n["cores"].as_array().unwrap();
    assert_eq!(cores.len(), d.cores.len());
    for (c, (got, want)) in cores.iter().zip(&d.cores).enumerate() {
        assert_eq!(got["core"], c as u64);
        assert_eq!(got["hw_error"], want.hw_error);
        assert_eq!(got["hbm_ue_error"], want.hw_hbm_ue_error);
        assert_eq!(got["nc_ue_error"], want.hw_nc_ue_error);
        assert_eq!(got["dma_abort_error"], want.hw_dma_abort_error);
        assert_eq!(
            got["repairable_hbm_ue_error"],
            want.hw_repairable_hbm_ue_error
        );
        assert_eq!(got["reset_fail_count"], want.reset_fail_count);
        assert_eq!(got["reset_req_count"], want.reset_req_count);
    }
}

#[test]
fn trn2_node_reads_every_field_in_the_drivers_order() {
    let mut node = Node::trn2(16);
    // Distinct values in every field of device 5, and a device the driver gave up on.
    node.devices[5].sram_ecc_uncorrected = 7;
    node.devices[5].mem_ecc_uncorrected = 11;
    node.devices[5].mem_ecc_repairable_uncorrected = 13;
    node.devices[9].device_state = 2;
    node.devices[12].connected = Vec::new();
    let root = HostRoot::new();
    let f = facts_in(&root, &node);
    assert_eq!(f["source"], "neuron");
    assert_eq!(f["device_count"], 16);
    let got = f["gpus"].as_array().unwrap();
    assert_eq!(
        got.len(),
        16,
        "the class's node_id/server_id are not devices"
    );
    for (i, d) in node.devices.iter().enumerate() {
        assert_device(&got[i], d, i as u64);
        // Sixteen functions, no pairing in sysfs: the address is an inline error naming neuron-ls.
        assert_eq!(got[i]["pci_bus_id"]["error"], "not_supported");
        let why = got[i]["pci_bus_id"]["message"].as_str().unwrap();
        assert!(why.contains("neuron-ls") && why.contains("16 PCI"), "{why}");
    }
    // Numbered from 10 on device 5's cores: each counter its own value.
    assert_eq!(got[5]["neuron"]["cores"][1]["nc_ue_error"], 5013);
    assert_eq!(got[9]["neuron"]["device_state"], 2);
    assert_eq!(
        got[12]["neuron"]["connected_devices"],
        serde_json::json!([])
    );
}

#[test]
fn one_device_has_its_address_and_holders_are_its_processes() {
    let mut node = Node::trn2(1);
    node.devices[0].serial = None;
    let root = HostRoot::new();
    root.fds(4242, &["/dev/neuron0", "/dev/null"])
        .fds(4343, &["/dev/neuron0", "/dev/neuron0"])
        .fds(4444, &["/dev/neuron_core0", "/dev/nvidia0"]);
    let f = facts_in(&root, &node);
    let g = &f["gpus"][0];
    assert_eq!(g["pci_bus_id"], "0000:10:00.0");
    // `"\n"` where the firmware did not answer: said so, not an empty serial.
    assert_eq!(g["serial"]["error"], "unknown", "{:#}", g["serial"]);
    let pids: Vec<u64> = g["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("{:#}", g["processes"]))
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, vec![4242, 4343]);
}

#[test]
fn health_names_the_device_the_driver_gave_up_and_its_uncorrectable_memory() {
    let mut node = Node::trn2(16);
    node.devices[5].mem_ecc_uncorrected = 3;
    node.devices[9].device_state = 2;
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "trn2-node-2\n")
        // The driver's own line for device 9's failed reset (neuron_reset.c:119), from the kernel.
        .file(
            "dev/kmsg",
            "6,1,3000000000,-;neuron:nr_reset_thread_fn: nd9: reset request 1 failed\n",
        );
    node.write(root.path());
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "health"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("NEURON_DUMP").is_some() {
        eprintln!("{:#}", run.doc);
    }
    let h = &run.doc["health"];
    let findings: Vec<&Value> = h["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["findings"].as_array().unwrap())
        .chain(h["node_findings"].as_array().into_iter().flatten())
        .collect();
    let find = |code: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
    };
    let ecc = find("neuron.ecc_uncorrectable");
    assert_eq!(
        (ecc["gpu"].as_u64(), ecc["severity"].as_str()),
        (Some(5), Some("critical"))
    );
    assert!(
        ecc["summary"].as_str().unwrap().contains("neuron5"),
        "{ecc}"
    );
    let gone = find("neuron.device_invalid");
    assert_eq!(
        (gone["gpu"].as_u64(), gone["severity"].as_str()),
        (Some(9), Some("critical"))
    );
    assert!(
        gone["action"]["detail"]
            .as_str()
            .unwrap()
            .contains("neuron-ls"),
        "{gone}"
    );
    // The kernel log's line for the same device, named by the driver's index.
    let log = find("neuron.reset_failed");
    assert!(
        log["summary"].as_str().unwrap().contains("neuron9"),
        "{log}"
    );
}

/// The built-in Neuron scenarios (`src/scenarios/trn2-*.json`) are this probe's reading of the host trees in
/// `tests/support/neuron_scenarios.rs`, with only the clock fixed: each file must equal what the probe reads
/// now. `NEURON_SCENARIOS=write` rewrites them (then `python3 tests/support/generate_scenarios.py` keeps
/// their format); review the diff.
#[test]
fn the_neuron_scenarios_are_the_probes_reading_of_their_trees() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../src/scenarios");
    let write = std::env::var("NEURON_SCENARIOS").as_deref() == Ok("write");
    for s in neuron_scenarios::all() {
        let root = HostRoot::new();
        s.write(&root);
        let run = NodeProbe::new()
            .args(["--nvml-lib", NO_NVML, "facts"])
            .host_root(root.path())
            .document();
        assert_eq!(run.code, 0, "{}: {}\n{}", s.name, run.doc, run.stderr);
        let mut facts = run.doc["facts"].clone();
        // NVIDIA's library is absent: said as every built-in non-NVIDIA scenario says it (the search's own
        // message names this test's stand-in path, and a search of the test machine would not be
        // hermetic).
        let e = &mut facts["driver"]["driver_version"];
        assert_eq!(e["error"], "not_found", "{e}");
        e["message"] = serde_json::json!("no NVIDIA driver: libnvidia-ml.so.1 not found");
        // The clock is the only value not read from the tree.
        facts["host"]["now_unix"] = serde_json::json!(neuron_scenarios::NOW);
        let path = dir.join(format!("{}.json", s.name));
        if write {
            let text = serde_json::to_string_pretty(&facts).unwrap() + "\n";
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let committed: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == facts,
            "{}: not what node-probe reads of its tree (NEURON_SCENARIOS=write to rewrite, then review):\n{facts:#}",
            s.name
        );
    }
}
