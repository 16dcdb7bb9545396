//! AMD Instinct hosts written here from the public formats, independently of `tests/support/amdgpu_tree.rs`
//! (a reviewer's trees, not the builder the reader was written against), read by the real node-probe with
//! `--host-root` and judged by `health`: the right GPU (index and PCI address), the right incident, its
//! severity and action in AMD's vocabulary, and healthy trees healthy in one line.
//!
//! What varies from the builder's trees, as real nodes vary: GPUs behind PCIe switches (the sysfs device
//! path is several bridges deep, `sys/bus/pci/devices/<bdf>` a relative link to it), hwmon numbers unrelated
//! to card numbers, a display card (`card0`, an ASPEED BMC) before the GPUs, KFD node ids that are not the
//! GPU index, `/dev/kmsg` records with the faults' real line formats.
//!
//! Formats and their sources (each fixture below cites its own):
//! - `ras/features` `feature mask: 0x%x`; `ras/<block>_err_count` `ue: %lu\nce: %lu\n` (UMC adds `de: %lu`
//!   on newer kernels); `ras/aca_<block>` `ue: %llu\nce: %llu\nde: %llu\n`; `ras/gpu_vram_bad_pages`
//!   `0x%08x : 0x%08x : %1s` with R/P/F: Linux `drivers/gpu/drm/amd/amdgpu/amdgpu_ras.c` and `amdgpu_aca.c`
//!   (ROCm/amdgpu), as /work/shared/reference/amd-gpus.md section 3.1 quotes them.
//! - `gpu_metrics` v1.7 (2208 bytes) and v1.8 (3872 bytes) offsets: `kgd_pp_interface.h`
//!   (`gpu_metrics_v1_7`: temperatures at 4/6, socket power at 10, residencies at 40..64, PCIe replay at 112,
//!   `xgmi_link_status[8]` at 264), as cc lays the upstream declarations out (tests/truth/gpu_metrics.rs,
//!   `tests/truth/gpu_metrics_layouts.txt`).
//! - hwmon `temp2_input` junction / `temp3_input` mem in millidegrees, no `temp1` (edge) on MI300-class,
//!   `power1_average` in microwatts: `pm/amdgpu_pm.c` "DOC: hwmon".
//! - KFD `properties` keys and `location_id = (bus << 8) | devfn` (partition index ORed in): `kfd_topology.c`;
//!   ROCm/k8s-device-plugin `testdata/topo-mi300-cpx` (CPX partitions of one GPU: `simd_count 152`,
//!   `num_xcc 1`, `location_id` 1280..1287 for bus 0x05).
//! - Kernel lines: `amdgpu_ras.c` (`socket: %d, die: %d, %lld new uncorrectable hardware errors detected in
//!   %s block`, `{%llu}` RAS event numbers, `Saved bad pages %d reaches threshold value %d`,
//!   `RAS records:%d exceed threshold:%d`), `kfd_int_process_v9.c` (`poison is consumed by client %d, kick
//!   off gpu reset flow`), Linux 6.8 `amdgpu_job.c` (`DRM_ERROR("ring %s timeout, signaled seq=%u, emitted
//!   seq=%u")`, then `amdgpu_device_gpu_recover`'s `GPU reset begin!`), `amdgpu_xgmi.c` (`%s detected`),
//!   `smu_v13_0_6_ppt.c` (`WARN: GPU is throttled, expect performance decrease. %s.`).

#[path = "../support/host_root.rs"]
mod host_root;
#[path = "../support/node_probe.rs"]
mod node_probe;

use host_root::HostRoot;
use node_probe::NodeProbe;
use serde_json::Value;

const NO_NVML: &str = "/nonexistent/libnvidia-ml.so.1";
/// `btime` of the fake host (2026-11-26T00:00:00Z): kernel records get wall-clock times.
const BTIME: u64 = 1_795_651_200;
const MI300_BUSES: [u8; 8] = [0x05, 0x26, 0x46, 0x65, 0x85, 0xa5, 0xc5, 0xe5];
const HIVE: u64 = 0x6f3a_9b2c_11d0_4e57;

/// One GPU of a tree, as the driver would show it.
#[derive(Clone)]
struct G {
    bus: u8,
    device_id: &'static str,
    name: &'static str,
    gfx: u32,
    simd: u32,
    xcc: u32,
    unique_id: u64,
    hive: Option<u64>,
    /// (block, ue, ce, de); `aca` picks `aca_<block>` over `<block>_err_count`.
    ras: Vec<(&'static str, u64, u64, u64)>,
    aca: bool,
    /// A kernel without `de` in `umc_err_count` (before deferred errors were counted there).
    legacy_without_de: bool,
    bad_pages: Vec<(u32, char)>,
    partition: Option<(&'static str, &'static str)>,
    /// KFD nodes (compute partitions) of this GPU.
    partitions: u32,
    hotspot_c: u32,
    mem_c: u32,
    edge_c: Option<u32>,
    power_uw: Option<u64>,
    metrics: Option<Vec<u8>>,
    xgmi_error: u32,
    numa: i32,
}

impl G {
    fn mi300x(i: usize) -> G {
        G {
            bus: MI300_BUSES[i],
            device_id: "74a1",
            name: "AMD Instinct MI300X OAM",
            gfx: 90402,
            simd: 1216,
            xcc: 8,
            unique_id: 0x1f2e_3d4c_5b6a_7900 + i as u64,
            hive: Some(HIVE),
            ras: [
                "umc",
                "gfx",
                "sdma",
                "mmhub",
                "xgmi_wafl",
                "pcie_bif",
                "hdp",
            ]
            .into_iter()
            .map(|b| (b, 0, 0, 0))
            .collect(),
            aca: true,
            legacy_without_de: false,
            bad_pages: Vec::new(),
            partition: Some(("SPX", "NPS1")),
            partitions: 1,
            hotspot_c: 45,
            mem_c: 40,
            edge_c: None,
            power_uw: Some(250_000_000),
            metrics: Some(metrics_v17(45, 40, [1, 1, 1, 1, 1, 1, 1, 0xffff])),
            xgmi_error: 0,
            numa: if i < 4 { 0 } else { 1 },
        }
    }

    /// An MI250X GCD (two per package, each its own PCI function and KFD node): `<block>_err_count`,
    /// an edge sensor, gpu_metrics v1.3 left out (the reader must do without), and the package's second
    /// GCD reporting 0 W (the package's power is read on the first).
    fn mi250x(i: usize) -> G {
        G {
            bus: [0x29, 0x2c, 0x2f, 0x32, 0xb0, 0xb3, 0xb6, 0xb9][i],
            device_id: "740c",
            name: "AMD Instinct MI250X",
            gfx: 90010,
            simd: 440,
            xcc: 1,
            unique_id: 0x5a1e_0000_0000_0000 + i as u64,
            hive: Some(0x3e2d_1c0b_0a09_0807),
            ras: [
                "umc",
                "gfx",
                "sdma",
                "mmhub",
                "xgmi_wafl",
                "pcie_bif",
                "hdp",
            ]
            .into_iter()
            .map(|b| (b, 0, 0, 0))
            .collect(),
            aca: false,
            legacy_without_de: true,
            bad_pages: Vec::new(),
            partition: None,
            partitions: 1,
            hotspot_c: 44,
            mem_c: 40,
            edge_c: Some(38),
            power_uw: Some(if i % 2 == 1 { 0 } else { 190_000_000 }),
            metrics: None,
            xgmi_error: 0,
            numa: if i < 4 { 0 } else { 1 },
        }
    }

    fn bdf(&self) -> String {
        format!("0000:{:02x}:00.0", self.bus)
    }
}

/// `gpu_metrics` v1.7: 2208 bytes, 0xFF (unreported) but for what a test reads.
fn metrics_v17(hotspot: u16, mem: u16, links: [u16; 8]) -> Vec<u8> {
    let mut b = vec![0xFFu8; 2208];
    b[0..2].copy_from_slice(&2208u16.to_le_bytes());
    (b[2], b[3]) = (1, 7);
    let put16 = |b: &mut Vec<u8>, o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    put16(&mut b, 4, hotspot);
    put16(&mut b, 6, mem);
    put16(&mut b, 10, 250);
    // Residencies (accumulation counter and the five throttlers) all zero; PCIe replays zero.
    for o in (40..64).step_by(4) {
        b[o..o + 4].copy_from_slice(&0u32.to_le_bytes());
    }
    b[112..120].copy_from_slice(&0u64.to_le_bytes());
    for (k, l) in links.iter().enumerate() {
        put16(&mut b, 264 + 2 * k, *l);
    }
    b
}

/// `gpu_metrics` v1.8 (MI355X): 3872 bytes (`xcp_stats[8]` of `amdgpu_xcp_metrics_v1_2`), v1.7's prefix.
fn metrics_v18(hotspot: u16, mem: u16) -> Vec<u8> {
    let mut b = metrics_v17(hotspot, mem, [1, 1, 1, 1, 1, 1, 1, 0xffff]);
    b.resize(3872, 0xFF);
    b[0..2].copy_from_slice(&3872u16.to_le_bytes());
    b[3] = 8;
    b
}

struct Tree {
    root: HostRoot,
    gpus: Vec<G>,
    kmsg: Vec<(u8, u64, String)>,
    bad_page_threshold: i64,
}

impl Tree {
    fn new(gpus: Vec<G>) -> Tree {
        Tree {
            root: HostRoot::new(),
            gpus,
            kmsg: vec![(
                6,
                0,
                "Linux version 6.8.0-52-generic (buildd@lcy02-amd64-046) #53-Ubuntu SMP".into(),
            )],
            bad_page_threshold: -1,
        }
    }

    /// A kernel record `secs` after boot.
    fn log(mut self, pri: u8, secs: f64, line: &str) -> Tree {
        self.kmsg.push((pri, (secs * 1e6) as u64, line.to_string()));
        self
    }

    fn write(self) -> HostRoot {
        let r = &self.root;
        r.file("proc/uptime", "86400.00 1000000.00\n")
            .file("proc/stat", format!("cpu  1 2 3 4\nbtime {BTIME}\n"))
            .file("etc/hostname", "amd-unseen-1\n")
            .file(
                "sys/module/amdgpu/parameters/bad_page_threshold",
                format!("{}\n", self.bad_page_threshold),
            )
            .file("sys/module/amdgpu/parameters/ras_enable", "-1\n");
        std::fs::create_dir_all(r.path().join("sys/bus/pci/drivers/amdgpu")).unwrap();
        r.symlink(
            "sys/module/amdgpu/drivers/pci:amdgpu",
            "../../../bus/pci/drivers/amdgpu",
        );
        // The BMC's display (ASPEED, vendor 0x1a03) is card0; KFD lists the CPU sockets first.
        let bmc = "sys/devices/pci0000:00/0000:00:1c.0/0000:02:00.0";
        r.file(&format!("{bmc}/vendor"), "0x1a03\n")
            .file(&format!("{bmc}/class"), "0x030000\n")
            .symlink(
                "sys/bus/pci/devices/0000:02:00.0",
                "../../../devices/pci0000:00/0000:00:1c.0/0000:02:00.0",
            );
        std::fs::create_dir_all(r.path().join(format!("{bmc}/drm/card0"))).unwrap();
        for n in 0..2 {
            r.file(
                &format!("sys/class/kfd/kfd/topology/nodes/{n}/gpu_id"),
                "0\n",
            )
            .file(
                &format!("sys/class/kfd/kfd/topology/nodes/{n}/properties"),
                "cpu_cores_count 96\nsimd_count 0\n",
            );
        }
        let mut kfd_node = 2;
        let mut xcp = 0;
        let n = self.gpus.len() as u32;
        let (mut next_card, mut next_render) = (1 + n, 128 + n);
        for (i, g) in self.gpus.iter().enumerate() {
            let i = i as u32;
            let bdf = g.bdf();
            // Behind a switch: root port, switch upstream and downstream ports.
            let up = format!(
                "pci0000:{0:02x}/0000:{0:02x}:01.1/0000:{1:02x}:00.0/0000:{2:02x}:00.0",
                g.bus & 0xc0,
                g.bus - 2,
                g.bus - 1
            );
            let d = format!("sys/devices/{up}/{bdf}");
            r.symlink(
                &format!("sys/bus/pci/devices/{bdf}"),
                format!("../../../devices/{up}/{bdf}"),
            )
            .symlink(
                &format!("{d}/driver"),
                "../../../../../../bus/pci/drivers/amdgpu",
            )
            .symlink(
                &format!("sys/bus/pci/drivers/amdgpu/{bdf}"),
                format!("../../../../devices/{up}/{bdf}"),
            );
            let (card, render) = (1 + i, 128 + i);
            std::fs::create_dir_all(r.path().join(format!("{d}/drm/card{card}"))).unwrap();
            std::fs::create_dir_all(r.path().join(format!("{d}/drm/renderD{render}"))).unwrap();
            r.symlink(
                &format!("sys/class/drm/card{card}"),
                format!("../../devices/{up}/{bdf}/drm/card{card}"),
            );
            let f = |rel: &str, v: String| {
                r.file(&format!("{d}/{rel}"), v);
            };
            f("vendor", "0x1002\n".into());
            f("device", format!("0x{}\n", g.device_id));
            f("class", "0x120000\n".into());
            f("numa_node", format!("{}\n", g.numa));
            f(
                "local_cpulist",
                if g.numa == 0 { "0-47\n" } else { "48-95\n" }.into(),
            );
            f("unique_id", format!("{:016x}\n", g.unique_id));
            f("serial_number", format!("PQ{:010}\n", 1000 + i));
            f("product_name", format!("{}\n", g.name));
            f("vbios_version", "113-M3000100-102\n".into());
            f("board_info", "type : oam\n".into());
            f("mem_info_vram_total", format!("{}\n", 192u64 << 30));
            f("mem_info_vram_used", format!("{}\n", 300u64 << 20));
            f("gpu_busy_percent", "0\n".into());
            f("current_link_speed", "32.0 GT/s PCIe\n".into());
            f("current_link_width", "16\n".into());
            f("max_link_speed", "32.0 GT/s PCIe\n".into());
            f("max_link_width", "16\n".into());
            f("pcie_replay_count", "0\n".into());
            // hwmon numbers follow probe order, not card numbers (hwmon0/1 are the CPU's).
            let hw = format!("hwmon/hwmon{}", 3 + 2 * i);
            f(&format!("{hw}/name"), "amdgpu\n".into());
            if let Some(e) = g.edge_c {
                f(&format!("{hw}/temp1_input"), format!("{}\n", e * 1000));
                f(&format!("{hw}/temp1_label"), "edge\n".into());
            }
            f(
                &format!("{hw}/temp2_input"),
                format!("{}\n", g.hotspot_c * 1000),
            );
            f(&format!("{hw}/temp2_label"), "junction\n".into());
            f(&format!("{hw}/temp2_crit"), "110000\n".into());
            f(&format!("{hw}/temp2_emergency"), "115000\n".into());
            f(
                &format!("{hw}/temp3_input"),
                format!("{}\n", g.mem_c * 1000),
            );
            f(&format!("{hw}/temp3_label"), "mem\n".into());
            f(&format!("{hw}/temp3_crit"), "95000\n".into());
            if let Some(p) = g.power_uw {
                f(&format!("{hw}/power1_average"), format!("{p}\n"));
            }
            f(&format!("{hw}/power1_cap"), "750000000\n".into());
            if let Some((cp, mp)) = g.partition {
                f("current_compute_partition", format!("{cp}\n"));
                f("current_memory_partition", format!("{mp}\n"));
                f("available_compute_partition", "SPX, DPX, QPX, CPX\n".into());
            }
            if let Some(h) = g.hive {
                f("xgmi_hive_info/xgmi_hive_id", format!("{h}\n"));
                f("xgmi_device_id", format!("{}\n", g.unique_id));
                f("xgmi_physical_id", format!("{i}\n"));
                f("xgmi_error", format!("{}\n", g.xgmi_error));
            }
            f("ras/features", "feature mask: 0x3fbfff\n".into());
            for (block, ue, ce, de) in &g.ras {
                let (name, text) = if g.aca {
                    (
                        format!("aca_{block}"),
                        format!("ue: {ue}\nce: {ce}\nde: {de}\n"),
                    )
                } else if *block == "umc" && !g.legacy_without_de {
                    (
                        format!("{block}_err_count"),
                        format!("ue: {ue}\nce: {ce}\nde: {de}\n"),
                    )
                } else {
                    (
                        format!("{block}_err_count"),
                        format!("ue: {ue}\nce: {ce}\n"),
                    )
                };
                f(&format!("ras/{name}"), text);
            }
            if self.bad_page_threshold != 0 {
                f(
                    "ras/gpu_vram_bad_pages",
                    g.bad_pages
                        .iter()
                        .map(|(pfn, flag)| format!("0x{pfn:08x} : 0x00001000 : {flag}\n"))
                        .collect(),
                );
            }
            if let Some(m) = &g.metrics {
                r.file(&format!("{d}/gpu_metrics"), m);
            }
            for part in 0..g.partitions {
                let render = if part == 0 {
                    render
                } else {
                    let x = format!("sys/devices/platform/amdgpu_xcp_{xcp}/drm");
                    std::fs::create_dir_all(r.path().join(format!("{x}/card{next_card}"))).unwrap();
                    std::fs::create_dir_all(r.path().join(format!("{x}/renderD{next_render}")))
                        .unwrap();
                    (next_card, xcp) = (next_card + 1, xcp + 1);
                    next_render += 1;
                    next_render - 1
                };
                let node = format!("sys/class/kfd/kfd/topology/nodes/{kfd_node}");
                r.file(&format!("{node}/gpu_id"), format!("{}\n", 41000 + kfd_node * 131))
                    .file(&format!("{node}/name"), "ip discovery\n")
                    .file(
                        &format!("{node}/properties"),
                        format!(
                            "cpu_cores_count 0\nsimd_count {simd}\nmem_banks_count 1\ncaches_count 0\n\
                             io_links_count 1\np2p_links_count 7\ncpu_core_id_base 0\n\
                             simd_id_base 2147488032\nmax_waves_per_simd 8\nlds_size_in_kb 64\n\
                             gds_size_in_kb 0\nnum_gws 64\nwave_front_size 64\narray_count 32\n\
                             simd_arrays_per_engine 1\ncu_per_simd_array 10\nsimd_per_cu 4\n\
                             max_slots_scratch_cu 32\ngfx_target_version {gfx}\nvendor_id 4098\n\
                             device_id {dev}\nlocation_id {loc}\ndomain 0\ndrm_render_minor {render}\n\
                             hive_id {hive}\nnum_sdma_engines 2\nnum_sdma_xgmi_engines 14\n\
                             num_sdma_queues_per_engine 8\nnum_cp_queues 64\n\
                             max_engine_clk_fcompute 2100\nlocal_mem_size 0\nfw_version 177\n\
                             capability 746286208\ndebug_prop 1495\nsdma_fw_version 19\n\
                             unique_id {uid}\nnum_xcc {xcc}\nmax_engine_clk_ccompute 3700\n",
                            simd = g.simd / g.partitions,
                            gfx = g.gfx,
                            dev = u32::from_str_radix(g.device_id, 16).unwrap(),
                            loc = (u32::from(g.bus) << 8) | part,
                            hive = g.hive.unwrap_or(0),
                            uid = g.unique_id,
                            xcc = g.xcc / g.partitions.min(g.xcc),
                        ),
                    );
                kfd_node += 1;
            }
        }
        let records: String = self
            .kmsg
            .iter()
            .enumerate()
            .map(|(seq, (pri, usec, text))| format!("{pri},{seq},{usec},-;{text}\n"))
            .collect();
        r.file("dev/kmsg", records);
        self.root
    }
}

fn command(root: &HostRoot, cmd: &str) -> Value {
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, cmd])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{cmd}: {}\n{}", run.doc, run.stderr);
    run.doc
}

fn health(root: &HostRoot) -> Value {
    let run = NodeProbe::new()
        .args(["--nvml-lib", NO_NVML, "health"])
        .host_root(root.path())
        .document();
    assert_eq!(run.code, 0, "{}\n{}", run.doc, run.stderr);
    if std::env::var_os("AMD_DUMP").is_some() {
        eprintln!("{:#}", run.doc["health"]);
    }
    run.doc["health"].clone()
}

/// The one incident on `gpu`, asserting it is the only one of the node.
fn only_incident(h: &Value, gpu: u32, bdf: &str) -> Value {
    let inc = h["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 1, "{inc:#?}");
    let i = &inc[0];
    assert_eq!(i["gpu"], gpu, "{i:#}");
    assert!(
        i["component"].as_str().unwrap().contains(bdf),
        "{}",
        i["component"]
    );
    i.clone()
}

fn codes(i: &Value) -> Vec<String> {
    i["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_str().unwrap().to_string())
        .collect()
}

/// No NVIDIA vocabulary in an AMD node's answer.
fn no_nvidia_words(h: &Value) {
    let text = h.to_string();
    for w in [
        "nvidia-smi",
        "Xid ",
        "NVML",
        "NVLink",
        "nvidia-persistenced",
    ] {
        assert!(!text.contains(w), "`{w}` in an AMD answer: {text}");
    }
}

fn healthy(h: &Value, gpus: u64) {
    assert_eq!(h["verdict"], "healthy", "{h:#}");
    assert_eq!(h["gpus_enumerated"], gpus);
    assert_eq!(h["action"]["kind"], "none");
    assert!(h["incidents"].as_array().unwrap().is_empty(), "{h:#}");
    assert!(h["unreadable"].as_array().unwrap().is_empty(), "{h:#}");
    assert!(
        h["summary"].as_str().unwrap().starts_with("Healthy"),
        "{}",
        h["summary"]
    );
}

#[test]
fn healthy_trees_of_each_generation_are_healthy() {
    // MI300X, SPX/NPS1, ACA layout, eight GPUs in one hive behind switches.
    let root = Tree::new((0..8).map(G::mi300x).collect()).write();
    let h = health(&root);
    healthy(&h, 8);
    no_nvidia_words(&h);
    // The hive is the topology (not `?` for want of NVML's pair facts), and the ECC caveat is AMD's.
    let topo = command(&root, "topology")["topology"].clone();
    let row0 = &topo["matrix"]["rows"][0]["cells"];
    assert_eq!(row0[0], "X");
    assert!((1..8).all(|i| row0[i] == "XGMI"), "{row0}");
    let ecc = command(&root, "ecc")["ecc"].clone();
    let caveat = ecc["persistence_caveat"].as_str().unwrap();
    assert!(caveat.starts_with("AMD: RAS"), "{caveat}");
    assert!(!caveat.contains("nvidia-persistenced"), "{caveat}");

    // MI300X in CPX/NPS4: 64 KFD nodes (8 per GPU, as k8s-device-plugin's topo-mi300-cpx records them)
    // on amdgpu_xcp platform devices; still 8 GPUs.
    let cpx = (0..8)
        .map(|i| G {
            partition: Some(("CPX", "NPS4")),
            partitions: 8,
            ..G::mi300x(i)
        })
        .collect();
    let h = health(&Tree::new(cpx).write());
    healthy(&h, 8);

    // MI250X: 4 packages, 8 GCDs; `<block>_err_count` without `de`, the second GCD of each at 0 W.
    let h = health(&Tree::new((0..8).map(G::mi250x).collect()).write());
    healthy(&h, 8);

    // MI210, a PCIe card alone: no hive (no xgmi files), an edge sensor, no power1_average, no
    // gpu_metrics; two corrected HBM errors are history, not an incident.
    let mi210 = G {
        bus: 0xc1,
        device_id: "740f",
        name: "AMD Instinct MI210",
        hive: None,
        ras: vec![("umc", 0, 2, 0), ("gfx", 0, 0, 0)],
        power_uw: None,
        ..G::mi250x(0)
    };
    let h = health(&Tree::new(vec![mi210]).write());
    healthy(&h, 1);

    // MI325X and MI355X (gpu_metrics v1.8): 200 retired pages on an MI355X are under its 256-page
    // default threshold (32 MiB reserved on MP0 13.0.14, amdgpu_ras_eeprom.c): not near it (90 %).
    let mi325 = G {
        device_id: "74a5",
        name: "AMD Instinct MI325X OAM",
        ..G::mi300x(0)
    };
    let mi355 = G {
        device_id: "75a3",
        name: "AMD Instinct MI355X OAM",
        gfx: 90500,
        simd: 1024,
        metrics: Some(metrics_v18(50, 45)),
        bad_pages: (0..200).map(|p| (0x4000 + p, 'R')).collect(),
        ..G::mi300x(1)
    };
    let h = health(&Tree::new(vec![mi325, mi355]).write());
    healthy(&h, 2);
}

#[test]
fn uncorrectable_umc_error_with_poison_consumed() {
    let mut gpus: Vec<G> = (0..8).map(G::mi300x).collect();
    gpus[3].ras[0] = ("umc", 1, 0, 1);
    gpus[3].bad_pages = vec![(0x0003_c1a2, 'R')];
    let bdf = "0000:65:00.0";
    let root = Tree::new(gpus)
        .log(6, 9.0, "amdgpu 0000:05:00.0: amdgpu: XGMI: Add node 0, hive 0x6f3a9b2c11d04e57.")
        .log(6, 50_000.0, &format!("amdgpu {bdf}: {{5}}socket: 3, die: 0, 1 new uncorrectable hardware errors detected in umc block"))
        .log(6, 50_000.000001, &format!("amdgpu {bdf}: {{5}}socket: 3, die: 0, 1 uncorrectable hardware errors detected in total in umc block"))
        .log(6, 50_000.000002, &format!("amdgpu {bdf}: amdgpu: Error Address(PA):0x3c1a2000  Row:0x3c1a Col:0x2  Bank:0x1 Channel:0x7"))
        .log(4, 50_000.000_1, &format!("amdgpu {bdf}: amdgpu: poison is consumed by client 12, kick off gpu reset flow"))
        .log(6, 50_000.000_3, &format!("amdgpu {bdf}: amdgpu: GPU reset begin!"))
        .log(6, 50_000.000_4, &format!("amdgpu {bdf}: amdgpu: GPU psp mode1 reset"))
        .log(6, 50_001.7, &format!("amdgpu {bdf}: amdgpu: Saved 1 pages to EEPROM table."))
        .log(6, 50_001.8, &format!("amdgpu {bdf}: amdgpu: GPU reset(1) succeeded!"))
        .write();
    let h = health(&root);
    assert_eq!(h["verdict"], "unhealthy");
    let i = only_incident(&h, 3, bdf);
    assert_eq!(i["severity"], "critical");
    assert_eq!(i["code"], "gpu.memory");
    let c = codes(&i);
    for want in [
        "amd.ras_ue.umc",
        "amdgpu.ras_ue.umc",
        "amdgpu.poison_consumed",
    ] {
        assert!(c.iter().any(|x| x == want), "{want} not in {c:?}");
    }
    assert_eq!(i["action"]["kind"], "drain_and_reset_gpu");
    let detail = i["action"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("amd-smi reset -G -g {bdf}")),
        "{detail}"
    );
    assert!(detail.contains("hive"), "{detail}");
    no_nvidia_words(&h);
}

#[test]
fn bad_pages_near_and_past_the_threshold() {
    let mut gpus: Vec<G> = (0..8).map(G::mi300x).collect();
    // 118 retired + 1 pending of 128 (>= 90 %); 130 retired, past it.
    gpus[5].bad_pages = (0..118)
        .map(|p| (0x1000 + p, 'R'))
        .chain([(0x9000, 'P')])
        .collect();
    gpus[6].bad_pages = (0..130).map(|p| (0x2000 + p, 'R')).collect();
    let root = Tree::new(gpus)
        .log(3, 8.0, "amdgpu 0000:c5:00.0: amdgpu: RAS records:130 exceed threshold:128")
        .log(3, 8.000001, "amdgpu 0000:c5:00.0: amdgpu: Please consult AMD Service Action Guide (SAG) for appropriate service procedures")
        .write();
    let h = health(&root);
    let inc = h["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 2, "{inc:#?}");
    let past = &inc[0];
    assert_eq!(
        (past["gpu"].as_u64(), past["severity"].as_str()),
        (Some(6), Some("critical"))
    );
    assert!(past["component"].as_str().unwrap().contains("0000:c5:00.0"));
    assert_eq!(past["action"]["kind"], "rma");
    assert!(codes(past).iter().any(|c| c == "amd.bad_pages.threshold"));
    let near = &inc[1];
    assert_eq!(
        (near["gpu"].as_u64(), near["severity"].as_str()),
        (Some(5), Some("warning"))
    );
    assert!(
        codes(near)
            .iter()
            .any(|c| c == "amd.bad_pages.near_threshold")
    );
    // The first action is the RMA, and it is AMD's.
    assert_eq!(h["action"]["kind"], "rma");
    no_nvidia_words(&h);
}

#[test]
fn an_xgmi_link_down() {
    let mut gpus: Vec<G> = (0..8).map(G::mi300x).collect();
    gpus[2].metrics = Some(metrics_v17(45, 40, [1, 1, 0, 1, 1, 1, 1, 0xffff]));
    gpus[2].xgmi_error = 3;
    let bdf = "0000:46:00.0";
    let root = Tree::new(gpus)
        .log(
            6,
            70_000.0,
            &format!("amdgpu {bdf}: amdgpu: XGMI PCS TrainingErr detected"),
        )
        .write();
    let h = health(&root);
    let i = only_incident(&h, 2, bdf);
    assert_eq!(i["severity"], "critical");
    assert!(codes(&i).iter().any(|c| c == "amd.xgmi.link_down"));
    assert_eq!(i["action"]["kind"], "reset_gpu");
    assert!(
        i["action"]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("amd-smi reset -G -g {bdf}"))
    );
}

/// Linux 6.8 (Ubuntu 24.04's kernel, the one ROCm 6 supports on MI300X) logs the ring timeout with
/// `DRM_ERROR`, which names no device; the reset the same handler starts names it. The timeout is the
/// GPU's, not a node-level mystery.
#[test]
fn ring_timeouts_and_a_reset_loop_name_the_gpu() {
    let bdf = "0000:85:00.0";
    let mut t = Tree::new((0..8).map(G::mi300x).collect());
    for k in 0..4u32 {
        let s = 40_000.0 + 600.0 * f64::from(k);
        t = t
            .log(3, s, &format!("[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring comp_1.0.0 timeout, signaled seq={}, emitted seq={}", 100 + k, 102 + k))
            .log(3, s + 0.000001, "[drm:amdgpu_job_timedout [amdgpu]] *ERROR* Process information: process python3 pid 4242 thread python3 pid 4242")
            .log(6, s + 0.000002, &format!("amdgpu {bdf}: amdgpu: GPU reset begin!"))
            .log(6, s + 0.000003, &format!("amdgpu {bdf}: amdgpu: GPU psp mode1 reset"))
            .log(6, s + 0.3, &format!("amdgpu {bdf}: amdgpu: GPU reset({}) succeeded!", k + 1));
    }
    let h = health(&t.write());
    assert_eq!(h["verdict"], "degraded", "{h:#}");
    let i = only_incident(&h, 4, bdf);
    let c = codes(&i);
    assert!(c.iter().any(|x| x == "amdgpu.ring_timeout"), "{c:?}");
    assert!(c.iter().any(|x| x == "amdgpu.reset"), "{c:?}");
    assert!(
        h["node_findings"].as_array().unwrap().is_empty(),
        "{:#}",
        h["node_findings"]
    );
}

#[test]
fn thermal_throttling_names_the_hot_gpu() {
    let mut gpus: Vec<G> = (0..8).map(G::mi300x).collect();
    gpus[1].hotspot_c = 108;
    gpus[1].mem_c = 96;
    gpus[1].metrics = Some(metrics_v17(108, 96, [1, 1, 1, 1, 1, 1, 1, 0xffff]));
    let bdf = "0000:26:00.0";
    let root = Tree::new(gpus)
        .log(4, 80_000.0, &format!("amdgpu {bdf}: amdgpu: WARN: GPU is throttled, expect performance decrease. PPT and HBM."))
        .write();
    let h = health(&root);
    let i = only_incident(&h, 1, bdf);
    assert_eq!(i["severity"], "warning");
    let c = codes(&i);
    assert!(c.iter().any(|x| x == "thermal.memory_hot"), "{c:?}");
    assert!(c.iter().any(|x| x == "amdgpu.thermal_throttle"), "{c:?}");
    assert_eq!(i["action"]["kind"], "check_cooling");
}

#[test]
fn mi250x_legacy_layout_uncorrectable_on_one_gcd() {
    let mut gpus: Vec<G> = (0..8).map(G::mi250x).collect();
    gpus[5].ras[0] = ("umc", 1, 0, 0);
    gpus[5].bad_pages = vec![(0x777, 'R')];
    let bdf = "0000:b3:00.0";
    let root = Tree::new(gpus)
        // Older kernels: no socket/die, no event number, the `amdgpu: ` prefix.
        .log(
            3,
            30_000.0,
            &format!("amdgpu {bdf}: amdgpu: 1 uncorrectable hardware errors detected in umc block"),
        )
        .log(
            6,
            30_000.000_1,
            &format!("amdgpu {bdf}: amdgpu: GPU reset begin!"),
        )
        .log(
            6,
            30_000.000_2,
            &format!("amdgpu {bdf}: amdgpu: MODE1 reset"),
        )
        .log(
            6,
            30_001.0,
            &format!("amdgpu {bdf}: amdgpu: GPU reset(1) succeeded!"),
        )
        .write();
    let h = health(&root);
    let i = only_incident(&h, 5, bdf);
    assert_eq!(i["severity"], "critical");
    assert!(codes(&i).iter().any(|c| c == "amd.ras_ue.umc"));
    let ev = i["signals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "amd.ras_ue.umc")
        .unwrap()["evidence"]
        .to_string();
    assert!(ev.contains("umc_err_count"), "{ev}");
    assert_eq!(i["action"]["kind"], "drain_and_reset_gpu");
    no_nvidia_words(&h);
}
