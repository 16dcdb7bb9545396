//! node-probe on fake AMD Instinct hosts (`tests/support/amdgpu_tree.rs`): the real binary with
//! `--host-root` on MI300X (SPX and CPX), MI325X, MI355X, MI250X and MI210 trees, no NVIDIA library
//! (`--nvml-lib` names none), asserting the facts it reads: identity, partitions, RAS counts in both
//! layouts, bad pages and their threshold, an XGMI link down, throttle residencies, a function bound to
//! no driver, processes through `/dev/kfd`, and hostile files read as inline errors, never a panic.

#[path = "../support/amdgpu_tree.rs"]
mod amdgpu_tree;
#[path = "../support/fake_amdsmi.rs"]
mod fake_amdsmi;
#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use amdgpu_tree::{Gpu, Metrics, Node};
use host_root::HostRoot;
use node_probe::NodeProbe;
use serde_json::Value;

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

fn run(root: &HostRoot, cmd: &str) -> Value {
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, cmd])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{cmd}: {}\n{}", run.doc, run.stderr);
    run.doc
}

fn facts(root: &HostRoot) -> Value {
    let doc = run(root, "facts");
    if std::env::var_os("AMD_DUMP").is_some() {
        eprintln!("{doc:#}");
    }
    doc["facts"].clone()
}

fn host(node: &Node) -> HostRoot {
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "mi300x-node-1\n");
    node.write(root.path());
    root
}

fn block<'a>(g: &'a Value, name: &str) -> &'a Value {
    g["amd"]["ras"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["block"] == name)
        .unwrap_or_else(|| panic!("no RAS block {name} in {}", g["amd"]["ras"]))
}

#[test]
fn mi300x_spx_identity_kfd_and_telemetry() {
    let root = host(&Node::new((0..8).map(Gpu::mi300x).collect()));
    let f = facts(&root);
    assert_eq!(f["source"], "amdgpu");
    assert_eq!(f["device_count"], 8);
    let gpus = f["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8);
    let g = &gpus[0];
    assert_eq!(g["vendor"], "amd");
    assert_eq!(g["index"], 0);
    assert_eq!(g["pci_bus_id"], "0000:05:00.0");
    assert_eq!(gpus[7]["pci_bus_id"], "0000:e5:00.0", "PCI address order");
    assert_eq!(g["name"], "AMD Instinct MI300X OAM");
    assert_eq!(g["serial"], "692335000000");
    assert_eq!(g["pci_device_id"], (0x74a1u64 << 16) | 0x1002);
    assert_eq!(g["architecture"], "CDNA3");
    assert_eq!(g["amd"]["unique_id"], "e3aa140f9a5f9e31");
    assert_eq!(g["amd"]["board_type"], "oam");
    assert_eq!(g["amd"]["card"], "card1");
    assert_eq!(g["amd"]["render_minor"], 128);
    let kfd = g["amd"]["kfd_nodes"].as_array().unwrap();
    assert_eq!(kfd.len(), 1, "{kfd:?}");
    assert_eq!(kfd[0]["gfx_target_version"], 90402);
    assert_eq!(kfd[0]["simd_count"], 1216);
    assert_eq!(g["amd"]["partition"]["compute"], "SPX");
    assert_eq!(g["amd"]["partition"]["memory"], "NPS1");
    assert_eq!(g["amd"]["partition"]["xcps"], serde_json::json!([]));
    // hwmon: junction is the GPU temperature; MI300-class has no edge sensor.
    assert_eq!(g["thermal"]["gpu_temp_c"], 48);
    assert_eq!(g["thermal"]["memory_temp_c"], 41);
    assert_eq!(g["thermal"]["slowdown_threshold_c"], 110);
    assert_eq!(g["amd"]["edge_temp_c"]["error"], "not_found");
    assert_eq!(g["power"]["usage_mw"], 260_000);
    assert_eq!(g["power"]["enforced_limit_mw"], 750_000);
    assert_eq!(g["pcie"]["current_link_gen"], 5);
    assert_eq!(g["pcie"]["current_link_width"], 16);
    assert_eq!(g["memory"]["total_bytes"], 192u64 << 30);
    assert_eq!(g["numa_node"], 0);
    assert_eq!(gpus[4]["numa_node"], 1);
    assert_eq!(g["amd"]["metrics"]["version"], "1.7");
    assert_eq!(g["amd"]["xgmi"]["hive_id"], 0x1234_5678_9abc_def0u64);
    assert_eq!(g["amd"]["xgmi"]["error_count"], 0);
    // Seven links reported active, the eighth left unreported (0xFFFF) by the SMU.
    let links = g["amd"]["xgmi"]["links"].as_array().unwrap();
    assert_eq!(links.len(), 7, "{links:?}");
    assert!(links.iter().all(|l| l["active"] == true));
    assert_eq!(g["ecc"]["volatile_uncorrected"]["error"], "not_supported");
    // ACA layout, all zero.
    assert_eq!(block(g, "umc")["layout"], "aca");
    assert_eq!(block(g, "umc")["ue"], 0);
    assert_eq!(f["amd_driver"]["bad_page_threshold_param"], -1);
    assert_eq!(
        f["amd_driver"]["pci_functions"].as_array().unwrap().len(),
        8
    );
    // The pipeline answers on it (interpretation is not this suite's subject).
    for cmd in ["health", "inventory", "describe"] {
        let doc = run(&root, cmd);
        assert!(doc.get("error").is_none(), "{cmd}: {doc}");
    }
}

#[test]
fn mi300x_cpx_partitions_and_their_kfd_nodes() {
    let root = host(&Node::mi300x_cpx());
    let started = std::time::Instant::now();
    let f = facts(&root);
    // Printed, never asserted: a loaded machine is slow at random.
    eprintln!(
        "facts of 8 MI300X in CPX (64 KFD nodes): {} ms",
        started.elapsed().as_millis()
    );
    let gpus = f["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8, "partitions are not GPUs");
    for (i, g) in gpus.iter().enumerate() {
        assert_eq!(g["amd"]["partition"]["compute"], "CPX");
        assert_eq!(g["amd"]["partition"]["memory"], "NPS4");
        let kfd = g["amd"]["kfd_nodes"].as_array().unwrap();
        assert_eq!(kfd.len(), 8, "GPU {i}: {kfd:?}");
        assert!(
            kfd.iter()
                .all(|k| k["simd_count"] == 152 && k["num_xcc"] == 1)
        );
        let xcps = g["amd"]["partition"]["xcps"].as_array().unwrap();
        assert_eq!(xcps.len(), 7, "GPU {i}: {xcps:?}");
        assert_eq!(xcps[0]["name"], format!("amdgpu_xcp_{}", 7 * i));
        assert!(xcps.iter().all(|x| x["gpu_id"].is_u64()));
    }
    // A partition's own card and render nodes (after the eight GPUs' card1..8 and renderD128..135): what
    // a reset's holder check counts as its GPU's.
    let x0 = &gpus[0]["amd"]["partition"]["xcps"][0];
    assert_eq!(
        (x0["card_minor"].clone(), x0["render_minor"].clone()),
        (9.into(), 136.into()),
        "{x0}"
    );
    // CPX partitions of 05:00.0 read location_id 1280..1287 (AMD's recorded topo-mi300-cpx).
    let locs: Vec<u64> = gpus[0]["amd"]["kfd_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["location_id"].as_u64().unwrap())
        .collect();
    assert_eq!(locs, (1280..1288).collect::<Vec<_>>());
}

#[test]
fn mi325x_and_mi355x_identity_and_metrics_revisions() {
    let root = host(&Node::new(vec![Gpu::mi325x(0), Gpu::mi355x(1)]));
    let f = facts(&root);
    let g = &f["gpus"];
    assert_eq!(g[0]["pci_device_id"], (0x74a5u64 << 16) | 0x1002);
    assert_eq!(g[0]["name"], "AMD Instinct MI325X OAM");
    assert_eq!(g[0]["amd"]["metrics"]["version"], "1.7");
    assert_eq!(g[1]["architecture"], "CDNA4");
    assert_eq!(g[1]["amd"]["metrics"]["version"], "1.8");
    assert_eq!(g[1]["amd"]["xgmi"]["links"].as_array().unwrap().len(), 7);
}

/// Every `gpu_metrics` revision a node can show, 1.3 to 1.9, read through the real binary: the fake host
/// writes each at the offsets cc computes from the kernel's structs (v1.9: the attribute list), with a value
/// per member that no other member has, and hwmon removed so the temperatures and power come from the
/// table (the fallback). A member read at a shifted offset reads another member's value, or 0xFF.
#[test]
fn every_gpu_metrics_revision_decodes_what_was_written() {
    let revisions = [
        Metrics::V1_3,
        Metrics::V1_4,
        Metrics::V1_5,
        Metrics::V1_6,
        Metrics::V1_7,
        Metrics::V1_8,
        Metrics::V1_9,
    ];
    for (k, m) in revisions.into_iter().enumerate() {
        let (_, crev) = m.revision().unwrap();
        let k16 = k as u16;
        let k64 = k as u64;
        let mut g = if crev == 3 {
            Gpu::mi250x(0)
        } else {
            Gpu::mi300x(0)
        };
        g.metrics = m;
        g.edge_c = 31 + k16;
        g.hotspot_c = 61 + k16;
        g.mem_c = 51 + k16;
        g.power_w = 401 + k16;
        g.xgmi_width_speed = (16, 40 + k16);
        g.residency = [9_100_000, 11 + k as u32, 22, 33, 44, 55];
        g.l0_to_recov = 7_000 + k64;
        g.replays = 8_000 + k64;
        g.nak = (90 + k as u32, 95 + k as u32);
        g.xgmi_links = [1, 0, 1, 1, 1, 0, 1, 0xFFFF];
        g.xgmi_read_kb = [1_001, 1_002, 1_003, 1_004, 1_005, 1_006, 1_007, 1_008];
        let node = Node::new(vec![g.clone()]);
        let root = host(&node);
        std::fs::remove_dir_all(root.path().join(format!("{}/hwmon", g.dir()))).unwrap();
        let f = facts(&root);
        let d = &f["gpus"][0];
        let v = format!("1.{crev}");
        let metrics = &d["amd"]["metrics"];
        assert_eq!(metrics["version"], v.as_str(), "{d:#}");
        assert_eq!(d["thermal"]["gpu_temp_c"], 61 + k64, "{v} hotspot");
        assert_eq!(d["thermal"]["memory_temp_c"], 51 + k64, "{v} mem");
        assert_eq!(d["power"]["usage_mw"], (401 + k64) * 1000, "{v} power");
        if crev == 3 {
            // v1.3 (MI200): an edge sensor, no XGMI, PCIe or residency members.
            assert_eq!(d["amd"]["edge_temp_c"], 31 + k64, "{v} edge");
            assert!(metrics["pcie_replay_count_acc"].is_null(), "{metrics}");
            assert!(d["amd"]["xgmi"]["links"].as_array().unwrap().is_empty());
            continue;
        }
        let x = &d["amd"]["xgmi"];
        assert_eq!(x["link_width"], 16, "{v} xgmi width");
        assert_eq!(x["link_speed_gbps"], 40 + k64, "{v} xgmi speed");
        assert_eq!(metrics["pcie_l0_to_recov_count_acc"], 7_000 + k64, "{v}");
        assert_eq!(metrics["pcie_replay_count_acc"], 8_000 + k64, "{v}");
        if crev >= 5 {
            assert_eq!(metrics["pcie_nak_sent_count_acc"], 90 + k64, "{v}");
            assert_eq!(metrics["pcie_nak_rcvd_count_acc"], 95 + k64, "{v}");
        } else {
            assert!(metrics["pcie_nak_sent_count_acc"].is_null(), "{v}");
        }
        let samples = metrics["throttle_samples"].as_array().unwrap();
        if crev >= 6 {
            let s = &samples[0];
            assert_eq!(s["accumulation_counter"], 9_100_000, "{v}");
            assert_eq!(s["prochot"], 11 + k64, "{v}");
            assert_eq!(
                [
                    &s["ppt"],
                    &s["socket_thermal"],
                    &s["vr_thermal"],
                    &s["hbm_thermal"]
                ],
                [22, 33, 44, 55],
                "{v}"
            );
        } else {
            assert!(samples.is_empty(), "{v} has no residencies: {samples:?}");
        }
        let links = x["links"].as_array().unwrap();
        assert_eq!(
            links.len(),
            7,
            "{v}: the eighth link is unreported: {links:?}"
        );
        for (i, l) in links.iter().enumerate() {
            assert_eq!(l["link"], i as u64);
            assert_eq!(l["read_kb"], 1_001 + i as u64, "{v} link {i}");
            assert_eq!(l["write_kb"], 2 * (1_001 + i as u64), "{v} link {i}");
            if crev >= 7 {
                assert_eq!(l["active"], i != 1 && i != 5, "{v} link {i}");
            } else {
                assert_eq!(
                    l["active"]["error"], "not_supported",
                    "{v} has no link status"
                );
            }
        }
    }
}

#[test]
fn ras_counts_in_both_layouts_with_bad_pages_and_threshold() {
    let mut mi300 = Gpu::mi300x(0);
    mi300.ras[0] = ("umc", 2, 17, 1);
    mi300.bad_pages = vec![(0x1, 'R'), (0x2, 'R'), (0x3, 'P'), (0x4, 'F')];
    let mut mi355 = Gpu::mi355x(1);
    mi355.bad_pages = (0..130).map(|p| (p, 'R')).collect();
    let root = host(&Node::new(vec![mi300, mi355]));
    // The driver's own threshold, where debugfs is readable, is read with the EEPROM table's capacity
    // (`%d bytes or %d records`, amdgpu_ras_eeprom.c:1039 in Linux 6.12); elsewhere the probe reports
    // none and the analysis works it out from the kernel's rule.
    root.file("sys/kernel/debug/dri/2/ras/bad_page_cnt_threshold", "200\n");
    root.file(
        "sys/kernel/debug/dri/2/ras/ras_eeprom_size",
        "262144 bytes or 10911 records\n",
    );
    let f = facts(&root);
    let g0 = &f["gpus"][0];
    let umc = block(g0, "umc");
    assert_eq!(
        (umc["ue"].as_u64(), umc["ce"].as_u64(), umc["de"].as_u64()),
        (Some(2), Some(17), Some(1))
    );
    let bp = &g0["amd"]["bad_pages"];
    assert_eq!(
        (
            bp["reserved"].as_u64(),
            bp["pending"].as_u64(),
            bp["unreservable"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(
        bp["first_pages"][0],
        serde_json::json!({"pfn": 1, "size": 4096, "flag": "R"})
    );
    assert!(bp["threshold"].is_null(), "{bp}");
    assert!(bp.get("threshold_source").is_none(), "{bp}");
    assert!(bp.get("eeprom_max_records").is_none(), "{bp}");
    assert_eq!(g0["amd"]["mp0_version"], "13.0.6");
    assert_eq!(f["gpus"][1]["amd"]["mp0_version"], "13.0.14");
    // The fake lists no UMC block: the reading says why.
    assert_eq!(g0["amd"]["umc_version"]["error"], "not_found");
    let bp1 = &f["gpus"][1]["amd"]["bad_pages"];
    assert_eq!(bp1["reserved"], 130);
    assert_eq!(bp1["first_pages"].as_array().unwrap().len(), 16, "bounded");
    assert_eq!(bp1["threshold"], 200);
    assert_eq!(bp1["threshold_source"], "debugfs");
    assert_eq!(bp1["eeprom_max_records"], 10911);

    // MI250X: `<block>_err_count`, gfx without `de`; a user threshold from the module parameter.
    let mut mi250 = Gpu::mi250x(0);
    mi250.ras[1] = ("gfx", 1, 4, 0);
    let mut node = Node::new(vec![mi250, Gpu::mi210(1)]);
    node.bad_page_threshold = 64;
    let root = host(&node);
    let f = facts(&root);
    let g = &f["gpus"][0];
    let gfx = block(g, "gfx");
    assert_eq!(gfx["layout"], "legacy");
    assert_eq!((gfx["ue"].as_u64(), gfx["ce"].as_u64()), (Some(1), Some(4)));
    assert!(gfx["de"].is_null());
    assert_eq!(block(g, "umc")["de"], 0);
    // The parameter is the module's; the probe leaves the threshold to the analysis.
    assert_eq!(f["amd_driver"]["bad_page_threshold_param"], 64);
    assert!(g["amd"]["bad_pages"]["threshold"].is_null());
    assert_eq!(g["amd"]["mp0_version"], "13.0.2");
    assert_eq!(g["architecture"], "CDNA2");
    assert_eq!(g["amd"]["partition"]["error"], "not_supported");
    assert_eq!(g["amd"]["metrics"]["version"], "1.3");
    assert_eq!(g["amd"]["edge_temp_c"], 39);
    assert_eq!(g["pcie"]["current_link_gen"], 4);
    // MI210: a PCIe card, no hive.
    assert_eq!(f["gpus"][1]["amd"]["xgmi"]["error"], "not_supported");
    assert_eq!(f["gpus"][1]["name"], "AMD Instinct MI210");
}

#[test]
fn xgmi_link_down_throttle_residency_and_an_unbound_function() {
    let mut hot = Gpu::mi300x(0);
    hot.xgmi_links[3] = 0;
    hot.xgmi_error = 5;
    hot.residency = [1_000_000, 0, 400_000, 0, 0, 250_000];
    hot.hotspot_c = 104;
    hot.replays = 12;
    let mut dead = Gpu::mi300x(1);
    dead.driver = None;
    let root = host(&Node::new(vec![hot, dead, Gpu::mi300x(2)]));
    let f = facts(&root);
    let gpus = f["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "only amdgpu's GPUs are read");
    let g = &gpus[0];
    let link3 = &g["amd"]["xgmi"]["links"][3];
    assert_eq!(link3["link"], 3);
    assert_eq!(link3["active"], false);
    assert_eq!(g["amd"]["xgmi"]["error_count"], 5);
    let samples = g["amd"]["metrics"]["throttle_samples"].as_array().unwrap();
    assert_eq!(samples.len(), 2, "read twice: {samples:?}");
    assert_eq!(samples[0]["ppt"], 400_000);
    assert_eq!(samples[0]["hbm_thermal"], 250_000);
    assert_eq!(samples[0]["accumulation_counter"], 1_000_000);
    assert_eq!(g["thermal"]["gpu_temp_c"], 104);
    assert_eq!(g["pcie"]["replay_counter"], 12);
    assert_eq!(g["amd"]["metrics"]["pcie_replay_count_acc"], 12);
    // The function amdgpu did not take is listed, unbound; the next GPU is index 1.
    let funcs = f["amd_driver"]["pci_functions"].as_array().unwrap();
    let unbound: Vec<&Value> = funcs.iter().filter(|x| x["driver"].is_null()).collect();
    assert_eq!(unbound.len(), 1, "{funcs:?}");
    assert_eq!(unbound[0]["bdf"], "0000:26:00.0");
    assert_eq!(unbound[0]["device_id"], "74a1");
    assert_eq!(gpus[1]["index"], 1);
    assert_eq!(gpus[1]["pci_bus_id"], "0000:46:00.0");
}

#[test]
fn processes_through_kfd_render_nodes_and_fdinfo() {
    let root = host(&Node::new(vec![Gpu::mi300x(0), Gpu::mi300x(1)]));
    root.fds(4242, &["/dev/null", "/dev/kfd", "/dev/dri/renderD129", "/dev/dri/renderD129"])
        .file("proc/4242/comm", "python3\n")
        .file("proc/4242/fdinfo/5", "pos:\t0\ndrm-driver:\tamdgpu\ndrm-pdev:\t0000:26:00.0\ndrm-client-id:\t17\ndrm-memory-vram:\t2048 KiB\n")
        .file("proc/4242/fdinfo/6", "drm-driver:\tamdgpu\ndrm-pdev:\t0000:26:00.0\ndrm-client-id:\t17\ndrm-memory-vram:\t2048 KiB\n")
        // A graphics client on GPU 0 known only by its render node (no fdinfo).
        .fds(77, &["/dev/dri/renderD128"])
        .file("proc/77/comm", "Xorg\n");
    let f = facts(&root);
    let p1 = f["gpus"][1]["processes"].as_array().unwrap();
    assert_eq!(p1.len(), 1, "{p1:?}");
    assert_eq!(p1[0]["pid"], 4242);
    assert_eq!(p1[0]["kind"], "compute");
    assert_eq!(
        p1[0]["used_memory_bytes"],
        2 << 20,
        "one client counted once"
    );
    let p0 = f["gpus"][0]["processes"].as_array().unwrap();
    assert_eq!(p0.len(), 1, "{p0:?}");
    assert_eq!(
        (p0[0]["pid"].as_u64(), p0[0]["kind"].as_str()),
        (Some(77), Some("graphics"))
    );
    let names: Vec<u64> = f["host_processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(names, vec![77, 4242]);
}

#[test]
fn hostile_files_are_inline_errors() {
    let mut garbage = Gpu::mi300x(1);
    garbage.metrics = Metrics::None;
    let root = host(&Node::new(vec![
        Gpu::mi300x(0),
        garbage,
        Gpu::mi300x(2),
        Gpu::mi300x(3),
    ]));
    let d0 = Gpu::mi300x(0).dir();
    let d1 = Gpu::mi300x(1).dir();
    let d2 = Gpu::mi300x(2).dir();
    let d3 = Gpu::mi300x(3).dir();
    // A secret outside the host root, and links that try to reach it.
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(outside.path(), "SECRET\n").unwrap();
    std::fs::remove_file(root.path().join(format!("{d0}/serial_number"))).unwrap();
    root.symlink(&format!("{d0}/serial_number"), outside.path());
    std::fs::remove_file(root.path().join(format!("{d0}/product_name"))).unwrap();
    root.symlink(
        &format!("{d0}/product_name"),
        format!("../../../../../../../../../..{}", outside.path().display()),
    );
    // A huge bad-page list, a truncated and a garbage gpu_metrics, non-UTF-8 and an unready RAS block.
    root.file(&format!("{d0}/ras/gpu_vram_bad_pages"), vec![b'x'; 5 << 20]);
    root.file(
        &format!("{d1}/gpu_metrics"),
        (0..4096u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let mut short = amdgpu_tree::gpu_metrics(&Gpu::mi300x(2));
    short.truncate(300);
    root.file(&format!("{d2}/gpu_metrics"), short);
    root.file(&format!("{d3}/vbios_version"), b"\xff\xfe\x80bios\n");
    root.file(
        &format!("{d3}/ras/aca_umc"),
        "Query currently inaccessible\n",
    );
    root.file(&format!("{d3}/current_link_speed"), "fast\n");
    let f = facts(&root);
    let text = f.to_string();
    assert!(
        !text.contains("SECRET"),
        "read through a link out of the host root"
    );
    let g = &f["gpus"];
    assert_eq!(g[0]["serial"]["error"], "not_found", "{}", g[0]["serial"]);
    assert_eq!(
        g[0]["name"], "AMD Instinct MI300X",
        "the device id's name when the FRU has none"
    );
    assert!(
        g[0]["amd"]["bad_pages"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than")
    );
    assert!(
        g[1]["amd"]["metrics"]["message"].as_str().is_some(),
        "{}",
        g[1]["amd"]["metrics"]
    );
    assert!(
        g[2]["amd"]["metrics"]["message"]
            .as_str()
            .unwrap()
            .contains("truncated")
    );
    assert!(
        g[3]["vbios_version"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );
    assert!(
        block(&g[3], "umc")["error"]
            .as_str()
            .unwrap()
            .contains("inaccessible")
    );
    assert!(
        g[3]["pcie"]["current_link_gen"]["message"]
            .as_str()
            .unwrap()
            .contains("fast")
    );
    // The GPUs still answer everything else.
    assert_eq!(g[1]["thermal"]["gpu_temp_c"], 48);
    assert_eq!(g[2]["amd"]["xgmi"]["hive_id"], 0x1234_5678_9abc_def0u64);
}

#[test]
fn a_node_without_amd_gpus_answers_as_before() {
    let root = HostRoot::new();
    // An amdgpu module loaded for an APU's display, no AMD GPU function: still no GPU library, exit 3.
    root.file("sys/module/amdgpu/parameters/ras_enable", "-1\n");
    root.file("sys/bus/pci/devices/0000:00:02.0/vendor", "0x8086\n");
    root.file("sys/bus/pci/devices/0000:00:02.0/class", "0x030000\n");
    let out = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "inventory"])
        .host_root(root.path())
        .run();
    out.failure(3, "nvml_unavailable");
}

#[test]
fn a_node_with_both_vendors_lists_nvidia_then_amd() {
    let Some(lib) = fake_nvml::fake_lib() else {
        return;
    };
    let root = host(&Node::new(vec![Gpu::mi300x(0), Gpu::mi300x(1)]));
    let run = NodeProbe::new()
        .args(["--nvml-lib", lib.to_str().unwrap(), "facts"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    let f = &run.doc["facts"];
    assert_eq!(f["source"], "nvml");
    let gpus = f["gpus"].as_array().unwrap();
    let nvidia = gpus.iter().filter(|g| g.get("vendor").is_none()).count();
    assert!(nvidia > 0, "the fake NVML's GPUs: {f}");
    assert_eq!(gpus.len(), nvidia + 2);
    assert_eq!(f["device_count"], gpus.len());
    for (i, g) in gpus.iter().enumerate() {
        assert_eq!(g["index"], i, "one index space");
        assert_eq!(
            g.get("vendor").is_some(),
            i >= nvidia,
            "NVIDIA first, then AMD"
        );
    }
    assert_eq!(gpus[nvidia]["pci_bus_id"], "0000:05:00.0");
    assert_eq!(f["driver"]["driver_version"], "580.95.05");
    assert!(f["amd_driver"]["pci_functions"].is_array());
}

// libamd_smi (node-probe/src/amd/smi.rs): the fake library of tests/fake-amdsmi under the host root.

fn run_with(root: &HostRoot, args: &[&str]) -> (Value, std::time::Duration) {
    let t = std::time::Instant::now();
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML])
        .args(args)
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.doc, run.stderr);
    (run.doc, t.elapsed())
}

fn two_mi300x() -> HostRoot {
    host(&Node::new(vec![Gpu::mi300x(0), Gpu::mi300x(1)]))
}

#[test]
fn amd_smi_version_is_read_with_each_majors_layout() {
    let bdf0 = Gpu::mi300x(0).bdf;
    let bdf1 = Gpu::mi300x(1).bdf;
    // ROCm 6.x reports {year, major, minor, release} with `year` its soname major, printed as AMD's CLI
    // prints it (amdsmi_cli/amdsmi_commands.py:107); 7.x {major, minor, release}.
    for (major, version) in [(24, "24.7.1.0"), (25, "25.3.0.0"), (26, "26.5.0")] {
        let root = two_mi300x();
        let conf = format!("version {version}\ngpu {bdf1} 0 0 0\ngpu {bdf0} 0 0 0\n");
        if fake_amdsmi::install(root.path(), "opt/rocm/lib", major, &conf).is_none() {
            return;
        }
        let f = facts(&root);
        let smi = &f["amd_driver"]["amd_smi"];
        assert_eq!(smi["version"], version, "major {major}: {smi}");
        assert_eq!(
            smi["path"],
            format!("/opt/rocm/lib/libamd_smi.so.{major}"),
            "named from the host's /"
        );
        let bdfs: Vec<&str> = smi["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["bdf"].as_str().unwrap())
            .collect();
        assert_eq!(bdfs, vec![bdf1.as_str(), bdf0.as_str()]);
        // The inventory names it, in the amdgpu section; an AMD-only node has no NVIDIA driver section.
        let inv = run(&root, "inventory");
        assert!(inv["inventory"].get("driver").is_none(), "{inv}");
        assert!(
            inv["inventory"]["gpus"][0]
                .get("cuda_compute_capability")
                .is_none(),
            "{inv}"
        );
        // AMD's own fields: partitions and the hive KFD names (the inventory reads no XGMI files).
        let amd = &inv["inventory"]["gpus"][0]["amd"];
        assert_eq!(
            (&amd["compute_partition"], &amd["memory_partition"]),
            (&serde_json::json!("SPX"), &serde_json::json!("NPS1")),
            "{inv}"
        );
        assert_eq!(amd["xgmi_hive_id"], 0x1234_5678_9abc_def0u64, "{inv}");
        assert_eq!(amd["mp0_version"], "13.0.6", "{inv}");
        let named = inv["inventory"]["amd_driver"]["amd_smi"]
            .as_str()
            .unwrap_or_default();
        assert!(
            named.starts_with(&format!("{version} at /opt/rocm")),
            "{inv}"
        );
    }
    // A library whose soname says 26 but which reports 24 (ROCm 6's layout read as 7's would shift
    // every field): an inline error, not a wrong version.
    let root = two_mi300x();
    let Some(lib) = fake_amdsmi::fake_lib(24) else {
        return;
    };
    fake_amdsmi::plain_dirs(root.path(), "opt/rocm-7.0.0/lib");
    std::fs::copy(
        &lib,
        root.path().join("opt/rocm-7.0.0/lib/libamd_smi.so.26"),
    )
    .unwrap();
    root.file("opt/rocm-7.0.0/lib/fake_amdsmi.conf", "version 24.7.1.0\n");
    let f = facts(&root);
    let smi = &f["amd_driver"]["amd_smi"];
    assert_eq!(smi["error"], "unknown", "{smi}");
    assert!(
        smi["message"]
            .as_str()
            .unwrap()
            .contains("(major 24) but its soname major is 26"),
        "{smi}"
    );
    // ROCm 6's own check is on `year`: a 6.x library whose year is not its soname major is refused too
    // (and shut down on the way out: the fake exits 99 otherwise).
    let root = two_mi300x();
    let conf = "version 24.7.1.0\n";
    fake_amdsmi::install(root.path(), "opt/rocm/lib", 25, conf).unwrap();
    let smi = facts(&root)["amd_driver"]["amd_smi"].clone();
    assert!(
        smi["message"]
            .as_str()
            .unwrap()
            .contains("reports version 24.7.1.0 (year 24) but its soname major is 25"),
        "{smi}"
    );
}

/// The fake answers as upstream's amd_smi.cc does (NOT_INIT before amdsmi_init, :81-85 and :1988), so a
/// reader that asks for the version first fails against it; each ABI's struct as its release has it.
#[test]
fn the_fake_library_refuses_calls_before_init_as_upstream() {
    type Init = unsafe extern "C" fn(u64) -> i32;
    type Plain = unsafe extern "C" fn() -> i32;
    type Version = unsafe extern "C" fn(*mut [u32; 8]) -> i32;
    for (major, conf, words) in [
        (24, "version 24.7.1.0\n", [24, 7, 1, 0]),
        (26, "version 26.1.2\n", [26, 1, 2, 0]),
    ] {
        let root = HostRoot::new();
        let Some(path) = fake_amdsmi::install(root.path(), "lib", major, conf) else {
            return;
        };
        // SAFETY: the fake's own functions, with the signatures of amdsmi.h.
        unsafe {
            let lib = libloading::Library::new(&path).unwrap();
            let init: Init = *lib.get(b"amdsmi_init").unwrap();
            let shut: Plain = *lib.get(b"amdsmi_shut_down").unwrap();
            let version: Version = *lib.get(b"amdsmi_get_lib_version").unwrap();
            let mut v = [0u32; 8];
            assert_eq!(version(&mut v), 32, "AMDSMI_STATUS_NOT_INIT before init");
            assert_eq!(init(1 << 1), 0);
            assert_eq!(version(&mut v), 0);
            assert_eq!(v[..4], words, "major {major}");
            assert_eq!(shut(), 0);
            assert_eq!(version(&mut v), 32, "and after shut-down");
        }
    }
}

#[test]
fn amd_smi_bad_pages_join_their_gpu_by_bdf_and_count_once() {
    // GPU 0: sysfs lists 1 pending page, the library the same; GPU 1: sysfs's list unreadable, the
    // library has 2 pending and 1 unreservable. Listed by the library in the other order.
    let mut g0 = Gpu::mi300x(0);
    g0.bad_pages = vec![(0x10, 'P')];
    let g1 = Gpu::mi300x(1);
    let (bdf0, bdf1, d1) = (g0.bdf.clone(), g1.bdf.clone(), g1.dir());
    let root = host(&Node::new(vec![g0, g1]));
    root.file(&format!("{d1}/ras/gpu_vram_bad_pages"), "garbage\n");
    let conf = format!("version 25.1.0.0\ngpu {bdf1} 0 2 1\ngpu {bdf0} 0 1 0\n");
    if fake_amdsmi::install(root.path(), "opt/rocm-6.4.0/lib", 25, &conf).is_none() {
        return;
    }
    let f = facts(&root);
    let smi = &f["amd_driver"]["amd_smi"];
    assert_eq!(smi["path"], "/opt/rocm-6.4.0/lib/libamd_smi.so.25");
    assert_eq!(
        smi["gpus"][0],
        serde_json::json!({"bdf": bdf1, "bad_pages": {"reserved": 0, "pending": 2, "unreservable": 1}})
    );
    let health = run(&root, "health");
    let findings: Vec<&Value> = health["health"]["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["findings"].as_array().unwrap())
        .collect();
    let of = |code: &str, gpu: u64| -> Vec<&Value> {
        findings
            .iter()
            .copied()
            .filter(|x| x["code"] == code && x["gpu"] == gpu)
            .collect()
    };
    let p0 = of("amd.bad_pages.pending", 0);
    assert_eq!(p0.len(), 1, "one incident per fault: {findings:#?}");
    let ev0 = p0[0]["evidence"].to_string();
    assert!(
        ev0.contains("ras/gpu_vram_bad_pages: 0 retired (R), 1 pending"),
        "{ev0}"
    );
    assert!(
        !ev0.contains("libamd_smi"),
        "sysfs read, the library not added: {ev0}"
    );
    let p1 = of("amd.bad_pages.pending", 1);
    assert_eq!(p1.len(), 1, "{findings:#?}");
    assert!(
        p1[0]["summary"]
            .as_str()
            .unwrap()
            .contains("has 2 bad VRAM pages pending")
    );
    let ev1 = p1[0]["evidence"].to_string();
    assert!(
        ev1.contains("libamd_smi 25.1.0.0 amdsmi_get_gpu_bad_page_info"),
        "{ev1}"
    );
    assert_eq!(of("amd.bad_pages.unreservable", 1).len(), 1);
    assert_eq!(of("amd.bad_pages.unreservable", 0).len(), 0);
}

#[test]
fn amd_smi_absent_failing_or_hung_never_stops_the_probe() {
    // No library: facts as before, no `amd_smi` and nothing about it on stderr.
    let root = two_mi300x();
    let out = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "facts"])
        .host_root(root.path())
        .document();
    assert_eq!(out.code, 0);
    assert!(out.doc["facts"]["amd_driver"].get("amd_smi").is_none());
    assert!(!out.stderr.contains("amd_smi"), "{}", out.stderr);

    let bdf0 = Gpu::mi300x(0).bdf;
    // A function the library lacks would be named; here the library returns NOT_SUPPORTED.
    let root = two_mi300x();
    let conf = format!("version 26.0.0\nno_bad_pages 1\ngpu {bdf0} 0 0 0\n");
    if fake_amdsmi::install(root.path(), "opt/rocm/lib", 26, &conf).is_none() {
        return;
    }
    let f = facts(&root);
    assert_eq!(
        f["amd_driver"]["amd_smi"]["gpus"][0]["bad_pages"]["error"],
        "not_supported"
    );

    // An older library without amdsmi_get_gpu_bad_page_info: that field says so, the rest is read.
    let root = two_mi300x();
    let old = fake_amdsmi::fake_old_lib(24).unwrap();
    let conf = format!("version 24.7.1.0\ngpu {bdf0} 0 0 0\n");
    fake_amdsmi::install_lib(root.path(), "opt/rocm/lib", &old, 24, &conf).unwrap();
    let f = facts(&root);
    let smi = &f["amd_driver"]["amd_smi"];
    assert_eq!(smi["version"], "24.7.1.0", "{smi}");
    let bp = &smi["gpus"][0]["bad_pages"];
    assert_eq!(bp["error"], "not_supported", "{smi}");
    assert_eq!(
        bp["message"],
        "amdsmi_get_gpu_bad_page_info is not in libamd_smi 24.7.1.0"
    );

    for (mode, kind, words) in [
        (
            "init_fail",
            "unknown",
            "amdsmi_init returned amdsmi status 6",
        ),
        ("abort", "unknown", "killed by signal 6"),
        ("hang", "timeout", "did not answer in time"),
    ] {
        let root = two_mi300x();
        let conf = format!("version 24.7.1.0\nmode {mode}\ngpu {bdf0} 0 0 0\n");
        fake_amdsmi::install(root.path(), "opt/rocm/lib", 24, &conf).unwrap();
        let (doc, took) = run_with(&root, &["--nvml-timeout", "2", "facts"]);
        let smi = &doc["facts"]["amd_driver"]["amd_smi"];
        assert_eq!(smi["error"], kind, "{mode}: {smi}");
        assert!(
            smi["message"].as_str().unwrap().contains(words),
            "{mode}: {smi}"
        );
        // The sysfs facts are all there.
        assert_eq!(doc["facts"]["gpus"].as_array().unwrap().len(), 2, "{mode}");
        assert!(doc["facts"]["gpus"][0]["handle_error"].is_null(), "{mode}");
        assert!(
            took < std::time::Duration::from_secs(10),
            "{mode}: the deadline bounds it ({took:?})"
        );
    }
}

#[test]
fn amd_smi_outside_the_host_root_or_writable_is_never_loaded() {
    let bdf0 = Gpu::mi300x(0).bdf;
    let conf = format!("version 24.7.1.0\ngpu {bdf0} 0 0 0\n");
    // A real (fake) library outside the host root, and links that try to reach it.
    let outside = tempfile::tempdir().unwrap();
    let Some(lib) = fake_amdsmi::install(outside.path(), "lib", 24, &conf) else {
        return;
    };
    let root = two_mi300x();
    std::fs::create_dir_all(root.path().join("opt/rocm/lib")).unwrap();
    root.symlink("opt/rocm/lib/libamd_smi.so.24", &lib);
    let up = "../".repeat(12) + lib.to_str().unwrap().trim_start_matches('/');
    std::fs::create_dir_all(root.path().join("opt/rocm-6.3.0/lib")).unwrap();
    root.symlink("opt/rocm-6.3.0/lib/libamd_smi.so.24", &up);
    let f = facts(&root);
    assert!(
        f["amd_driver"].get("amd_smi").is_none(),
        "a link out of the host root names the root's own path, which has no library: {}",
        f["amd_driver"]
    );

    // A library group- or world-writable: named, not loaded.
    let root = two_mi300x();
    let to = fake_amdsmi::install(root.path(), "opt/rocm/lib", 24, &conf).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o666)).unwrap();
    let f = facts(&root);
    let smi = &f["amd_driver"]["amd_smi"];
    assert_eq!(smi["error"], "no_permission", "{smi}");
    assert!(
        smi["message"].as_str().unwrap().contains("writable"),
        "{smi}"
    );
}

/// node-probe/src/host/lib_trust.rs: the library, every directory on the way to it and every host library
/// it pulls in (here the libdrm it dlopens by soname) must be root's and not group/world-writable; the
/// child loads the checked files by descriptor. A refused chain never runs the library (the fake marks
/// each load with `fake_amdsmi.loaded` beside its real file).
#[test]
fn amd_smi_loads_only_a_root_owned_chain_by_descriptor() {
    use std::os::unix::fs::PermissionsExt;
    let bdf0 = Gpu::mi300x(0).bdf;
    let conf = format!("version 24.7.1.0\ndrm 1\ngpu {bdf0} 0 0 0\n");
    let Some(drm) = fake_amdsmi::fake_libdrm() else {
        return;
    };
    let drm_dir = "usr/lib/x86_64-linux-gnu";
    let mode = |root: &HostRoot, rel: &str, m: u32| {
        std::fs::set_permissions(root.path().join(rel), std::fs::Permissions::from_mode(m)).unwrap()
    };
    // ROCm's layout: /opt/rocm -> rocm-6.3.0, the soname a link to the versioned file, libdrm's soname
    // a link to its file in the distribution's directory.
    let node = || {
        let root = two_mi300x();
        let lib = fake_amdsmi::install(root.path(), "opt/rocm-6.3.0/lib", 24, &conf)?;
        std::fs::rename(&lib, lib.with_extension("24.7.1")).unwrap();
        root.symlink(
            "opt/rocm-6.3.0/lib/libamd_smi.so.24",
            "libamd_smi.so.24.7.1",
        );
        root.symlink("opt/rocm", "rocm-6.3.0");
        fake_amdsmi::plain_dirs(root.path(), drm_dir);
        std::fs::copy(&drm, root.path().join(drm_dir).join("libdrm.so.2.4.0")).unwrap();
        mode(&root, &format!("{drm_dir}/libdrm.so.2.4.0"), 0o755);
        root.symlink(&format!("{drm_dir}/libdrm.so.2"), "libdrm.so.2.4.0");
        Some(root)
    };
    let loaded = |root: &HostRoot| {
        root.path()
            .join("opt/rocm-6.3.0/lib/fake_amdsmi.loaded")
            .exists()
    };
    let refused = |root: &HostRoot, words: &[&str]| {
        let smi = facts(root)["amd_driver"]["amd_smi"].clone();
        assert_eq!(smi["error"], "no_permission", "{smi}");
        let m = smi["message"].as_str().unwrap();
        assert!(
            m.starts_with("/opt/rocm/lib/libamd_smi.so.24: not loaded, "),
            "{m}"
        );
        for w in words {
            assert!(m.contains(w), "{w:?} in {m}");
        }
        assert!(!loaded(root), "a refused library never runs: {m}");
    };

    // The trusted chain: loaded through /proc/self/fd, and the libdrm it dlopens by soname is the
    // host's (the fake fails init with any other).
    let Some(root) = node() else {
        return;
    };
    let smi = facts(&root)["amd_driver"]["amd_smi"].clone();
    assert_eq!(smi["version"], "24.7.1.0", "{smi}");
    assert_eq!(smi["gpus"][0]["bdf"], bdf0.as_str(), "{smi}");
    assert!(loaded(&root));

    // A world-writable directory on the way to the library: refused, the directory named.
    let root = node().unwrap();
    mode(&root, "opt/rocm-6.3.0", 0o777);
    refused(
        &root,
        &["directory /opt/rocm-6.3.0 is writable by group or others (mode 777)"],
    );
    // ... or on the way to its libdrm.
    let root = node().unwrap();
    mode(&root, drm_dir, 0o775);
    refused(
        &root,
        &[
            "directory /usr/lib/x86_64-linux-gnu is writable",
            "libdrm.so.2, needed by dlopen",
        ],
    );

    // A soname link swapped to a tenant-writable file elsewhere in the root: refused, the file named.
    let root = node().unwrap();
    fake_amdsmi::plain_dirs(root.path(), "home/user");
    std::fs::copy(&drm, root.path().join("home/user/libdrm.so.2")).unwrap();
    mode(&root, "home/user/libdrm.so.2", 0o666);
    std::fs::remove_file(root.path().join(drm_dir).join("libdrm.so.2")).unwrap();
    root.symlink(&format!("{drm_dir}/libdrm.so.2"), "/home/user/libdrm.so.2");
    refused(
        &root,
        &["/home/user/libdrm.so.2 is writable by group or others (mode 666)"],
    );
    // The library's own link, likewise.
    let root = node().unwrap();
    let lib = root.path().join("opt/rocm-6.3.0/lib/libamd_smi.so.24.7.1");
    std::fs::copy(&lib, root.path().join("home-lib.so")).unwrap();
    mode(&root, "home-lib.so", 0o666);
    std::fs::remove_file(root.path().join("opt/rocm-6.3.0/lib/libamd_smi.so.24")).unwrap();
    root.symlink("opt/rocm-6.3.0/lib/libamd_smi.so.24", "/home-lib.so");
    let smi = facts(&root)["amd_driver"]["amd_smi"].clone();
    assert!(
        smi["message"]
            .as_str()
            .unwrap()
            .contains("/home-lib.so is writable by group or others"),
        "{smi}"
    );
    assert!(!root.path().join("fake_amdsmi.loaded").exists());

    // A sibling the loader would take first (libdrm.so.2 in the library's own directory), not root's.
    if rustix::process::geteuid().is_root() {
        let root = node().unwrap();
        let sib = root.path().join("opt/rocm-6.3.0/lib/libdrm.so.2");
        std::fs::copy(&drm, &sib).unwrap();
        mode(&root, "opt/rocm-6.3.0/lib/libdrm.so.2", 0o755);
        std::os::unix::fs::chown(&sib, Some(4242), Some(4242)).unwrap();
        refused(
            &root,
            &["/opt/rocm-6.3.0/lib/libdrm.so.2 is owned by uid 4242, not root"],
        );
        // A sibling nothing asks for is not on the child's loader path: no reason to refuse.
        let root = node().unwrap();
        let other = root.path().join("opt/rocm-6.3.0/lib/libunrelated.so.1");
        std::fs::copy(&drm, &other).unwrap();
        std::os::unix::fs::chown(&other, Some(4242), Some(4242)).unwrap();
        let smi = facts(&root)["amd_driver"]["amd_smi"].clone();
        assert_eq!(smi["version"], "24.7.1.0", "{smi}");
    } else {
        eprintln!("not root: the uid-owned sibling cases need chown (CI runs them as root)");
    }
}
