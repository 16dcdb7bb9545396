//! node-probe on fake Intel Gaudi hosts (`tests/support/gaudi_tree.rs`, written from Linux 6.12's habanalabs
//! printers): the real binary with `--host-root` on a Gaudi 2 and a Gaudi 3 tree and on the pre-6.2
//! `/sys/class/habanalabs` layout, no NVIDIA library, asserting that every field reads the value the
//! builder wrote for it (each value unique to its field), devices in PCI order, a device bound to no driver
//! left out, and a status other than operational read as the driver printed it.

#[path = "../support/fake_hlml.rs"]
mod fake_hlml;
#[path = "../support/gaudi_tree.rs"]
mod gaudi_tree;
#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use gaudi_tree::{Device, Node};
use host_root::HostRoot;
use node_probe::NodeProbe;
use serde_json::Value;

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";

fn facts(node: &Node) -> Value {
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "gaudi-node-1\n");
    node.write(root.path());
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "facts"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("GAUDI_DUMP").is_some() {
        eprintln!("{:#}", run.doc);
    }
    run.doc["facts"].clone()
}

/// Every field of one device against what the builder wrote.
fn assert_device(g: &Value, d: &Device, index: u64, product: &str, class_dev: &str) {
    // A reading serializes as its value, or as `{error, message}`.
    let ok = |v: &Value| v.clone();
    assert_eq!(g["index"], index, "{g:#}");
    assert_eq!(g["vendor"], "intel");
    assert_eq!(ok(&g["name"]), product);
    assert_eq!(ok(&g["pci_bus_id"]), d.bdf.as_str());
    let pci_id = (u64::from_str_radix(d.device_id, 16).unwrap() << 16) | 0x1da3;
    assert_eq!(ok(&g["pci_device_id"]), pci_id);
    assert_eq!(ok(&g["board_part_number"]), d.card_name);
    assert_eq!(ok(&g["numa_node"]), d.numa);
    assert_eq!(ok(&g["clocks"]["sm_mhz"]), d.clk_cur_mhz);
    assert_eq!(ok(&g["clocks"]["sm_max_mhz"]), d.clk_max_mhz);
    assert_eq!(ok(&g["thermal"]["gpu_temp_c"]), d.temp_millic / 1000);
    assert_eq!(ok(&g["power"]["usage_mw"]), d.power_uw / 1000);
    assert_eq!(ok(&g["power"]["enforced_limit_mw"]), d.max_power_mw);
    // What sysfs does not have is an inline error saying so, not a guess.
    assert_eq!(g["serial"]["error"], "not_supported", "{:#}", g["serial"]);
    assert_eq!(g["uuid"]["error"], "not_supported");
    let h = &g["gaudi"];
    assert_eq!(h["device"], class_dev);
    assert_eq!(ok(&h["device_type"]), d.device_type);
    assert_eq!(ok(&h["status"]), d.status);
    assert_eq!(ok(&h["hard_reset_count"]), d.hard_reset_cnt);
    assert_eq!(
        h["soft_reset_count"]["error"], "not_found",
        "no Gaudi has soft_reset_cnt"
    );
    assert_eq!(ok(&h["module_id"]), d.module_id);
    assert_eq!(ok(&h["security_enabled"]), d.security_enabled);
    assert_eq!(ok(&h["max_power_mw"]), d.max_power_mw);
    let fw = &h["firmware"];
    assert_eq!(ok(&fw["cpucp"]), d.cpucp_ver);
    assert_eq!(ok(&fw["cpucp_kernel"]), d.cpucp_kernel_ver);
    assert_eq!(ok(&fw["uboot"]), d.uboot_ver);
    assert_eq!(ok(&fw["preboot_btl"]), d.preboot_btl_ver);
    assert_eq!(ok(&fw["fuse"]), d.fuse_ver);
    assert_eq!(ok(&fw["thermal"]), d.thermal_ver);
    assert_eq!(ok(&fw["fw_os"]), d.fw_os_ver);
    assert_eq!(
        ok(&fw["cpld"]),
        format!("0x{:08x}{:08x}", d.cpld.0, d.cpld.1)
    );
    assert_eq!(ok(&fw["vrm"]), format!("{:#04x}", d.vrm));
}

fn gpus(f: &Value) -> &Vec<Value> {
    f["gpus"].as_array().unwrap()
}

#[test]
fn gaudi2_node_reads_every_field_in_pci_order() {
    // Written out of PCI order: the probe lists them by address.
    let mut devs: Vec<Device> = (0..4).map(Device::gaudi2).collect();
    devs.reverse();
    devs[1].status = "In reset";
    let f = facts(&Node::new(devs.clone()));
    assert_eq!(f["source"], "habanalabs");
    assert_eq!(f["device_count"], 4);
    devs.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    let got = gpus(&f);
    assert_eq!(got.len(), 4);
    for (i, d) in devs.iter().enumerate() {
        assert_device(
            &got[i],
            d,
            i as u64,
            "Intel Gaudi 2",
            &format!("accel{}", d.minor),
        );
    }
    assert!(got.iter().any(|g| g["gaudi"]["status"] == "In reset"));
}

#[test]
fn gaudi3_node_reads_every_field() {
    let mut devs: Vec<Device> = (0..8).map(Device::gaudi3).collect();
    devs[5].status = "Disabled";
    devs[5].hard_reset_cnt = 42;
    let f = facts(&Node::new(devs.clone()));
    let got = gpus(&f);
    assert_eq!(got.len(), 8);
    for (i, d) in devs.iter().enumerate() {
        assert_device(
            &got[i],
            d,
            i as u64,
            "Intel Gaudi 3",
            &format!("accel{}", d.minor),
        );
    }
    assert_eq!(got[5]["gaudi"]["status"], "Disabled");
}

#[test]
fn the_older_habanalabs_class_and_unbound_devices() {
    let mut devs: Vec<Device> = (0..3).map(Device::gaudi2).collect();
    // A Gaudi function the driver did not take (failed init): not a device the driver runs.
    devs[2].driver = None;
    let node = Node {
        devices: devs.clone(),
        legacy: true,
    };
    let f = facts(&node);
    let got = gpus(&f);
    assert_eq!(got.len(), 2, "{:#}", f["gpus"]);
    for (i, d) in devs[..2].iter().enumerate() {
        assert_device(
            &got[i],
            d,
            i as u64,
            "Intel Gaudi 2",
            &format!("hl{}", d.minor),
        );
    }
}

#[test]
fn hostile_files_are_bounded_inline_errors() {
    let devs: Vec<Device> = (0..2).map(Device::gaudi2).collect();
    let node = Node::new(devs.clone());
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/shadow", "root:secret-of-the-host-root\n");
    node.write(root.path());
    let a0 = format!("sys/devices/pci0000:00/{}", devs[0].bdf);
    let a1 = format!("sys/devices/pci0000:00/{}", devs[1].bdf);
    // A firmware string far longer than any the driver prints; a count that is not a number; an
    // absolute link out of the tree, which names the host root's own file, never the probe's.
    std::fs::write(
        root.path().join(format!("{a0}/uboot_ver")),
        "U".repeat(20_000),
    )
    .unwrap();
    std::fs::write(root.path().join(format!("{a0}/hard_reset_cnt")), "lots\n").unwrap();
    std::fs::remove_file(root.path().join(format!("{a1}/status"))).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", root.path().join(format!("{a1}/status"))).unwrap();
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "facts"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    let got = gpus(&run.doc["facts"]).clone();
    let uboot = got[0]["gaudi"]["firmware"]["uboot"].as_str().unwrap();
    assert!(uboot.chars().count() <= 257, "{}", uboot.len());
    assert_eq!(got[0]["gaudi"]["hard_reset_count"]["error"], "unknown");
    assert_eq!(got[1]["gaudi"]["status"], "root:secret-of-the-host-root");
}

/// A Gaudi 2 node where the driver's hard reset of one device failed: its status reads `Disabled`, its
/// reset count rose, and the kernel log holds the DERR and the failed reset, printed as Linux 6.12 prints
/// them (`tests/kernel_log/habanalabs/kernel-formats.tsv`). `health` in local mode names that device, in Intel's
/// words, and no other.
#[test]
fn health_on_a_gaudi_node_with_a_failed_reset() {
    let mut devs: Vec<Device> = (0..4).map(Device::gaudi2).collect();
    for d in &mut devs {
        d.hard_reset_cnt = 0;
    }
    devs[2].status = "Disabled";
    devs[2].hard_reset_cnt = 2;
    let bad = devs[2].bdf.clone();
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "gaudi-node-2\n");
    Node::new(devs).write(root.path());
    let lines = [
        format!(
            "habanalabs {bad}: HBM_0_MC0_ECC_DERR: ECC error detected. address: 0x1f00. Syndrome: 0x3. wrapper id 2. block id 0x10. critical 1."
        ),
        format!("habanalabs {bad}: Going to reset device"),
        format!("habanalabs {bad}: Killing user process pid=4242"),
        format!("habanalabs {bad}: {bad} Failed to reset! Device is NOT usable"),
    ];
    let records: String = lines
        .iter()
        .enumerate()
        .map(|(seq, text)| {
            format!(
                "3,{seq},{},-;{text}\n",
                3_000_000_000u64 + seq as u64 * 1000
            )
        })
        .collect();
    root.file("dev/kmsg", records);
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "health"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("GAUDI_DUMP").is_some() {
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
    let on = |code: &str| {
        findings
            .iter()
            .find(|f| f["code"] == code)
            .unwrap_or_else(|| panic!("no {code}: {findings:#?}"))
    };
    let status = on("gaudi.status");
    assert_eq!(status["gpu"], 2);
    assert_eq!(status["severity"], "critical");
    assert!(
        status["summary"]
            .as_str()
            .unwrap()
            .contains("Device is not usable")
    );
    assert!(
        status["action"]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("hl-smi -r -i {bad}"))
    );
    assert_eq!(on("habanalabs.reset_failed")["gpu"], 2);
    assert_eq!(on("habanalabs.ecc_derr")["gpu"], 2);
    assert_eq!(on("gaudi.hard_resets")["gpu"], 2);
    // One fault: the DERR, the reset it asked for, the reset's failure and the status it left.
    let incidents = h["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let i = &incidents[0];
    assert_eq!(
        (&i["code"], &i["gpu"], &i["severity"]),
        (
            &Value::from("gpu.memory"),
            &Value::from(2),
            &Value::from("critical")
        )
    );
    let signals: Vec<&str> = i["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap())
        .collect();
    for want in [
        "habanalabs.ecc_derr",
        "habanalabs.reset",
        "habanalabs.reset_failed",
        "gaudi.status",
    ] {
        assert!(signals.contains(&want), "{want} not in {signals:?}");
    }
    assert_eq!(h["verdict"], "unhealthy");
    // Nothing critical or warning about the healthy devices.
    for f in &findings {
        if f["severity"] != "info" {
            assert_eq!(
                f["gpu"], 2,
                "a finding on another device or the node: {f:#}"
            );
        }
    }
}

/// A watch on a Gaudi host with no NVIDIA library samples the habanalabs devices from sysfs each interval
/// (before, a node without NVML and without AMD GPUs refused to watch), and a driver line that arrives
/// during the window is an episode on its device.
#[test]
fn a_watch_samples_gaudi_devices_and_follows_the_drivers_lines() {
    let devs: Vec<Device> = (0..4).map(Device::gaudi2).collect();
    let hot = devs[2].clone();
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "gaudi-node-3\n")
        .file("dev/kmsg", "6,1,100,-;Linux version 6.12.0\n");
    Node::new(devs.clone()).write(root.path());
    let kmsg = root.path().join("dev/kmsg");
    let bdf = hot.bdf.clone();
    // The line is appended every 300 ms until the probe exits: the probe follows the log from when it
    // opened it, which a loaded machine may delay past any one fixed moment.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let later = std::thread::spawn(move || {
        use std::io::Write;
        let mut seq = 2;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && seq < 200 {
            std::thread::sleep(std::time::Duration::from_millis(300));
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&kmsg)
                .unwrap();
            writeln!(
                f,
                "4,{seq},9000000,-;habanalabs {bdf}: Going to reset device"
            )
            .unwrap();
            seq += 1;
        }
    });
    let run = NodeProbe::new()
        .args([
            "--nvml-lib",
            NO_NVML,
            "watch",
            "--seconds",
            "3",
            "--interval-ms",
            "500",
        ])
        .host_root(root.path())
        .document();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    later.join().unwrap();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    let w = &run.doc["watch"];
    let gpus = w["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 4, "{w:#}");
    for (g, d) in gpus.iter().zip(&devs) {
        assert_eq!(g["vendor"], "intel");
        assert_eq!(g["pci_bus_id"], d.bdf.as_str());
        // hwmon's temp1_input, millidegrees, as the tree wrote it, in every sample.
        let t = (d.temp_millic / 1000) as f64;
        assert_eq!(g["temp_c"]["max"].as_f64(), Some(t), "{g:#}");
        assert_eq!(g["unreadable_samples"].as_u64().unwrap_or(0), 0, "{g:#}");
    }
    let episodes = w["episodes"].as_array().unwrap();
    assert!(
        episodes
            .iter()
            .any(|e| e["code"] == "habanalabs.reset" && e["gpu"] == 2),
        "{w:#}"
    );
}

// libhlml (node-probe/src/gaudi/hlml.rs): the stand-in of tests/fake-hlml under the host root.

/// A Gaudi host tree of `devs`, the stand-in installed with `conf` when `conf` is given; `None` without a
/// C compiler.
fn hlml_host(devs: &[Device], conf: Option<&str>) -> Option<HostRoot> {
    let root = HostRoot::new();
    root.file("proc/uptime", "3600.0 7000.0\n")
        .file("etc/hostname", "gaudi-node-1\n");
    Node::new(devs.to_vec()).write(root.path());
    if let Some(c) = conf {
        fake_hlml::install(root.path(), c)?;
    }
    Some(root)
}

fn probe_facts(root: &HostRoot, extra: &[&str]) -> (Value, String, std::time::Duration) {
    let t = std::time::Instant::now();
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML])
        .args(extra)
        .arg("facts")
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("GAUDI_DUMP").is_some() {
        eprintln!("{:#}", run.doc);
    }
    (run.doc["facts"].clone(), run.stderr, t.elapsed())
}

/// The bus id as a library may spell it: upper case, an 8-digit domain (pyhlml 1.21+'s
/// `PCI_DOMAIN_LEN` 9 leaves room for it), to be joined to sysfs's `0000:1a:00.0`.
fn spelled(bdf: &str, i: usize) -> String {
    match i % 3 {
        0 => bdf.to_string(),
        1 => bdf.to_ascii_uppercase(),
        _ => format!("0000{bdf}"),
    }
}

fn serial_of(i: usize) -> String {
    format!("AN{:08}", 420 + i)
}

#[test]
fn hlml_serials_land_on_their_devices_by_pci_address() {
    let devs: Vec<Device> = (0..4).map(Device::gaudi2).collect();
    // The library lists them in another order than sysfs (PCI order): an index join would mismatch all.
    let order = [2usize, 0, 3, 1];
    let mut conf = "hlml_version 1.24.2-fake\ndriver_version 1.24.2-abc123\n".to_string();
    for &i in &order {
        conf += &fake_hlml::device(
            &spelled(&devs[i].bdf, i),
            &serial_of(i),
            devs[i].module_id,
            [10 + i as u64, i as u64, 100 + i as u64, 2 * i as u64],
            i == 3,
        );
    }
    // Device 1's ports 0-2, port 2 external and down.
    conf += &format!("nic {} 7 4 4\n", spelled(&devs[1].bdf, 1));
    let Some(root) = hlml_host(&devs, Some(&conf)) else {
        return;
    };
    let (f, stderr, _) = probe_facts(&root, &[]);
    let got = gpus(&f);
    assert_eq!(got.len(), 4);
    for (i, d) in devs.iter().enumerate() {
        assert_eq!(got[i]["pci_bus_id"], d.bdf.as_str());
        assert_eq!(got[i]["serial"], serial_of(i), "{:#}", got[i]);
        // The sysfs reading is untouched.
        assert_eq!(got[i]["gaudi"]["module_id"], d.module_id);
        assert_eq!(got[i]["name"], "Intel Gaudi 2");
    }
    let h = &f["hlml"];
    assert_eq!(h["path"], "/usr/lib/habanalabs/libhlml.so", "{h:#}");
    assert_eq!(h["version"], "1.24.2-fake");
    assert_eq!(h["driver_version"], "1.24.2-abc123");
    let libdevs = h["devices"].as_array().unwrap();
    assert_eq!(libdevs.len(), 4);
    for (k, &i) in order.iter().enumerate() {
        let d = &libdevs[k];
        assert_eq!(d["index"], k as u64);
        assert_eq!(
            d["bus_id"],
            devs[i].bdf.as_str(),
            "normalised as sysfs names it"
        );
        assert_eq!(d["serial"], serial_of(i));
        assert_eq!(d["module_id"], devs[i].module_id);
        assert_eq!(
            d["ecc"],
            serde_json::json!({
                "corrected_volatile": 10 + i as u64,
                "uncorrected_volatile": i as u64,
                "corrected_aggregate": 100 + i as u64,
                "uncorrected_aggregate": 2 * i as u64,
            })
        );
        assert_eq!(d["replaced_rows_pending"], i == 3);
        let ports = d["nic_ports"].as_array().unwrap();
        assert_eq!(ports.len(), if i == 1 { 3 } else { 0 }, "{d}");
    }
    assert_eq!(
        libdevs[3]["nic_ports"][2],
        serde_json::json!({"port": 2, "external": true, "up": false})
    );
    assert_eq!(libdevs[3]["nic_ports"][0]["up"], true);
    assert!(!stderr.contains("hlml"), "{stderr}");

    // A module id that disagrees with sysfs's: that device gets no serial (the join is doubted), the
    // others do; a device the library does not list says so.
    let mut conf = String::new();
    for (i, d) in devs.iter().enumerate().take(3) {
        let module = if i == 1 { 99 } else { d.module_id };
        conf += &fake_hlml::device(&d.bdf, &serial_of(i), module, [0; 4], false);
    }
    let root = hlml_host(&devs, Some(&conf)).unwrap();
    let (f, _, _) = probe_facts(&root, &[]);
    let got = gpus(&f);
    assert_eq!(got[0]["serial"], serial_of(0));
    assert_eq!(got[2]["serial"], serial_of(2));
    let m = got[1]["serial"]["message"].as_str().unwrap();
    assert!(m.contains("module id 99, sysfs's 6"), "{m}");
    assert_eq!(got[3]["serial"]["error"], "not_found");
    assert!(
        got[3]["serial"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("lists no device at {}", devs[3].bdf))
    );
}

#[test]
fn hlml_absent_old_hostile_or_failing_never_stops_the_probe() {
    let devs: Vec<Device> = (0..2).map(Device::gaudi2).collect();
    let line = |i: usize| {
        fake_hlml::device(
            &devs[i].bdf,
            &serial_of(i),
            devs[i].module_id,
            [0; 4],
            false,
        )
    };
    // No library: facts as before, no `hlml` and nothing about it on stderr.
    let root = hlml_host(&devs, None).unwrap();
    let (f, stderr, _) = probe_facts(&root, &[]);
    assert!(f.get("hlml").is_none(), "{f:#}");
    assert!(!stderr.contains("hlml"), "{stderr}");
    assert_eq!(gpus(&f)[0]["serial"]["error"], "not_supported");

    // An older library without hlml_get_driver_version and the pending-rows call: those fields say so,
    // the rest is read.
    let Some(old) = fake_hlml::fake_old_lib() else {
        return;
    };
    let root = hlml_host(&devs, None).unwrap();
    fake_hlml::install_lib(root.path(), fake_hlml::DIR, &old, &(line(0) + &line(1)));
    let (f, _, _) = probe_facts(&root, &[]);
    let h = &f["hlml"];
    assert_eq!(h["driver_version"]["error"], "not_supported", "{h:#}");
    assert_eq!(
        h["driver_version"]["message"],
        "hlml_get_driver_version is not in this libhlml version"
    );
    assert_eq!(
        h["devices"][0]["replaced_rows_pending"]["error"],
        "not_supported"
    );
    assert_eq!(gpus(&f)[1]["serial"], serial_of(1));

    // A library that prints on its stdout: the reading is still the child's one line.
    let root = hlml_host(&devs, Some(&format!("chatty 1\n{}", line(0)))).unwrap();
    let (f, _, _) = probe_facts(&root, &[]);
    assert_eq!(gpus(&f)[0]["serial"], serial_of(0), "{:#}", f["hlml"]);

    // A serial that fills its buffer with no NUL: refused, not read past.
    let root = hlml_host(&devs, Some(&format!("long_serial 1\n{}", line(0)))).unwrap();
    let (f, _, _) = probe_facts(&root, &[]);
    let s = &gpus(&f)[0]["serial"];
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("no NUL within its 32 bytes"),
        "{s}"
    );

    // A library that fails, aborts or hangs in hlml_init: an inline error within the deadline, the sysfs
    // reading intact.
    for (mode, kind, words) in [
        (
            "init_fail",
            "not_found",
            "hlml_init returned hlml status 9 (DRIVER_NOT_LOADED)",
        ),
        ("abort", "unknown", "killed by signal 6"),
        ("hang", "timeout", "did not answer in time"),
    ] {
        let root = hlml_host(&devs, Some(&format!("mode {mode}\n{}", line(0)))).unwrap();
        let (f, _, took) = probe_facts(&root, &["--nvml-timeout", "2"]);
        let h = &f["hlml"];
        assert_eq!(h["error"], kind, "{mode}: {h}");
        assert!(
            h["message"].as_str().unwrap().contains(words),
            "{mode}: {h}"
        );
        let got = gpus(&f);
        assert_eq!(got.len(), 2, "{mode}");
        for (i, d) in devs.iter().enumerate() {
            assert_device(
                &got[i],
                d,
                i as u64,
                "Intel Gaudi 2",
                &format!("accel{}", d.minor),
            );
        }
        assert!(
            took < std::time::Duration::from_secs(10),
            "{mode}: the deadline bounds it ({took:?})"
        );
    }
}

/// node-probe/src/host/lib_trust.rs: the library and every directory on the way to it must be root's
/// and not group/world-writable; a refused library never runs (the stand-in marks each load with
/// `fake_hlml.loaded` beside its real file) and the serials stay unread.
#[test]
fn hlml_untrusted_is_refused_with_the_reason_and_never_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let devs: Vec<Device> = (0..2).map(Device::gaudi2).collect();
    let conf = fake_hlml::device(
        &devs[0].bdf,
        &serial_of(0),
        devs[0].module_id,
        [0; 4],
        false,
    );
    let mode = |root: &HostRoot, rel: &str, m: u32| {
        std::fs::set_permissions(root.path().join(rel), std::fs::Permissions::from_mode(m)).unwrap()
    };
    let loaded = |root: &HostRoot| {
        root.path()
            .join("usr/lib/habanalabs/fake_hlml.loaded")
            .exists()
    };
    for (rel, m, words) in [
        (
            "usr/lib/habanalabs",
            0o775,
            "directory /usr/lib/habanalabs is writable by group or others (mode 775)",
        ),
        (
            "usr",
            0o777,
            "directory /usr is writable by group or others (mode 777)",
        ),
        (
            "usr/lib/habanalabs/libhlml.so",
            0o666,
            "/usr/lib/habanalabs/libhlml.so is writable by group or others (mode 666)",
        ),
    ] {
        let Some(root) = hlml_host(&devs, Some(&conf)) else {
            return;
        };
        mode(&root, rel, m);
        let (f, _, _) = probe_facts(&root, &[]);
        let h = &f["hlml"];
        assert_eq!(h["error"], "no_permission", "{h}");
        let msg = h["message"].as_str().unwrap();
        assert!(
            msg.starts_with("/usr/lib/habanalabs/libhlml.so: not loaded, "),
            "{msg}"
        );
        assert!(msg.contains(words), "{words:?} in {msg}");
        assert!(!loaded(&root), "a refused library never runs: {msg}");
        assert_eq!(gpus(&f)[0]["serial"]["error"], "not_supported");
    }
    // A link out of the host root names the root's own path, which has no library: absent.
    let outside = tempfile::tempdir().unwrap();
    let lib = fake_hlml::install(outside.path(), &conf).unwrap();
    let root = hlml_host(&devs, None).unwrap();
    fake_hlml::plain_dirs(root.path(), fake_hlml::DIR);
    root.symlink("usr/lib/habanalabs/libhlml.so", &lib);
    let (f, _, _) = probe_facts(&root, &[]);
    assert!(f.get("hlml").is_none(), "{f:#}");
    assert!(
        !outside
            .path()
            .join("usr/lib/habanalabs/fake_hlml.loaded")
            .exists()
    );
    // The trusted library: loaded, through /proc/self/fd.
    let root = hlml_host(&devs, Some(&conf)).unwrap();
    let (f, _, _) = probe_facts(&root, &[]);
    assert_eq!(gpus(&f)[0]["serial"], serial_of(0));
    assert!(loaded(&root));
}
