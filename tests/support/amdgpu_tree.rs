//! Fake amdgpu hosts: the sysfs, KFD and `/proc` trees of AMD Instinct nodes, written under a host root
//! for node-probe's `--host-root` (ripgrep's `Dir` idea). Included with
//! `#[path = "…/support/amdgpu_tree.rs"] mod amdgpu_tree;` beside `host_root.rs`.
//!
//! The layouts follow the public sources the project's AMD reference names (no real node was recorded):
//! - PCI and driver links as sysfs makes them (relative links: `bus/pci/devices/<bdf>` to
//!   `devices/…/<bdf>`, `module/amdgpu/drivers/pci:amdgpu` to `bus/pci/drivers/amdgpu`), as ROCm's
//!   device plugin enumerates them (ROCm/k8s-device-plugin `internal/pkg/amdgpu/amdgpu.go`).
//! - Identity, memory, PCIe, hwmon, `ras/` and XGMI files in the formats of the amdgpu driver
//!   (`amdgpu_device.c`, `amdgpu_ras.c`, `amdgpu_xgmi.c`, `pm/amdgpu_pm.c`) and the kernel's
//!   `gpu/amdgpu/driver-misc.rst` and `ras.html`.
//! - KFD `properties` with the keys and values of AMD's recorded topologies (k8s-device-plugin
//!   `testdata/topo-mi300-cpx`: MI300X `device_id 29857`, `gfx_target_version 90402`, 152 SIMDs and one
//!   XCC per CPX partition, `location_id` with the partition ORed in; `topo-mi210-xgmi-pcie`).
//! - `gpu_metrics` tables, every revision 1.3 to 1.9: the fixed ones at the offsets cc computes from the
//!   kernel's declarations (`tests/truth/gpu_metrics_layouts.txt`, checked by `tests/truth/gpu_metrics.rs`,
//!   which also compares these bytes with a C struct filled with the same values); v1.9 as the attribute
//!   list of `tests/truth/gpu_metrics_v1_9.txt` (the SMU 13.0.6 list, encoded as `AMDGPU_METRICS_ENC_ATTR`).
//!
//! The BDFs, serials and counts are invented.
#![allow(dead_code)] // each suite uses some of these

use std::path::Path;

/// Which `gpu_metrics` revision a GPU writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metrics {
    V1_3,
    V1_4,
    V1_5,
    V1_6,
    V1_7,
    V1_8,
    V1_9,
    /// Bytes written as given (hostile cases).
    None,
}

/// RAS counters in one of the driver's two layouts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RasLayout {
    /// `ras/aca_<block>` (MI300-class, ACA on).
    Aca,
    /// `ras/<block>_err_count` (MI200 and older).
    Legacy,
}

#[derive(Clone, Debug)]
pub struct Gpu {
    pub bdf: String,
    pub device_id: &'static str,
    pub product_name: &'static str,
    pub serial: String,
    pub unique_id: u64,
    pub card: u32,
    pub render: u32,
    pub numa: i32,
    /// `None`: bound to no driver (it failed init).
    pub driver: Option<&'static str>,
    pub gfx_target_version: u32,
    /// The MP0 (PSP) IP version the IP discovery table lists.
    pub mp0: (u8, u8, u8),
    pub simd_per_xcc: u32,
    pub xcc: u32,
    pub vram_bytes: u64,
    /// `SPX`…`CPX` and `NPS1`…; `None` before MI300.
    pub partition: Option<(&'static str, &'static str)>,
    pub hive_id: Option<u64>,
    pub physical_id: u32,
    pub xgmi_error: u64,
    pub ras_layout: RasLayout,
    /// (block, ue, ce, de).
    pub ras: Vec<(&'static str, u64, u64, u64)>,
    /// (pfn, flag).
    pub bad_pages: Vec<(u64, char)>,
    pub metrics: Metrics,
    /// `xgmi_link_status[8]` (1 active, 0 down).
    pub xgmi_links: [u16; 8],
    /// `accumulation_counter`, then prochot, ppt, socket, vr, hbm residencies.
    pub residency: [u32; 6],
    pub hotspot_c: u16,
    pub mem_c: u16,
    pub power_w: u16,
    /// `temperature_edge` (v1.3 only; MI300-class has no edge sensor).
    pub edge_c: u16,
    /// `xgmi_link_width`, `xgmi_link_speed` (Gbps).
    pub xgmi_width_speed: (u16, u16),
    pub l0_to_recov: u64,
    /// `pcie_nak_sent_count_acc`, `pcie_nak_rcvd_count_acc`.
    pub nak: (u32, u32),
    /// `xgmi_read_data_acc[8]` of the links that report (KB); `xgmi_write_data_acc` is twice each.
    pub xgmi_read_kb: [u64; 8],
    /// `current_link_speed`, `current_link_width`.
    pub link: (&'static str, u32),
    pub replays: u64,
}

impl Gpu {
    /// An MI300X in SPX/NPS1, its eight XGMI links up, no errors.
    pub fn mi300x(i: u32) -> Gpu {
        Gpu {
            bdf: format!(
                "0000:{:02x}:00.0",
                [0x05, 0x26, 0x46, 0x65, 0x85, 0xa6, 0xc6, 0xe5][i as usize % 8]
            ),
            device_id: "74a1",
            product_name: "AMD Instinct MI300X OAM",
            serial: format!("692335000{i:03}"),
            unique_id: 0xe3aa140f9a5f9e31 ^ u64::from(i),
            card: i + 1,
            render: 128 + i,
            numa: (i / 4) as i32,
            driver: Some("amdgpu"),
            gfx_target_version: 90402,
            mp0: (13, 0, 6),
            simd_per_xcc: 152,
            xcc: 8,
            vram_bytes: 192 << 30,
            partition: Some(("SPX", "NPS1")),
            hive_id: Some(0x1234_5678_9abc_def0),
            physical_id: i,
            xgmi_error: 0,
            ras_layout: RasLayout::Aca,
            ras: [
                "umc",
                "gfx",
                "sdma",
                "mmhub",
                "xgmi_wafl",
                "pcie_bif",
                "hdp",
            ]
            .iter()
            .map(|b| (*b, 0, 0, 0))
            .collect(),
            bad_pages: Vec::new(),
            metrics: Metrics::V1_7,
            xgmi_links: [1, 1, 1, 1, 1, 1, 1, 0xFFFF],
            residency: [1_000_000, 0, 0, 0, 0, 0],
            hotspot_c: 48,
            mem_c: 41,
            power_w: 260,
            edge_c: 39,
            xgmi_width_speed: (16, 32),
            l0_to_recov: 3,
            nak: (5, 6),
            xgmi_read_kb: [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000],
            link: ("32.0 GT/s PCIe", 16),
            replays: 0,
        }
    }

    pub fn mi325x(i: u32) -> Gpu {
        Gpu {
            device_id: "74a5",
            product_name: "AMD Instinct MI325X OAM",
            vram_bytes: 256 << 30,
            ..Gpu::mi300x(i)
        }
    }

    /// MI355X: gfx 9.5.0, written as gpu_metrics v1.8.
    pub fn mi355x(i: u32) -> Gpu {
        Gpu {
            device_id: "75a3",
            product_name: "AMD Instinct MI355X OAM",
            gfx_target_version: 90500,
            mp0: (13, 0, 14),
            simd_per_xcc: 128,
            vram_bytes: 288 << 30,
            metrics: Metrics::V1_8,
            ..Gpu::mi300x(i)
        }
    }

    /// MI250X (one GCD): no partitions, legacy RAS files, gpu_metrics v1.3.
    pub fn mi250x(i: u32) -> Gpu {
        Gpu {
            device_id: "740c",
            product_name: "AMD Instinct MI250X",
            gfx_target_version: 90010,
            mp0: (13, 0, 2),
            simd_per_xcc: 440,
            xcc: 1,
            vram_bytes: 64 << 30,
            partition: None,
            ras_layout: RasLayout::Legacy,
            ras: ["umc", "gfx", "sdma", "mmhub", "xgmi_wafl", "pcie_bif"]
                .iter()
                .map(|b| (*b, 0, 0, 0))
                .collect(),
            metrics: Metrics::V1_3,
            link: ("16.0 GT/s PCIe", 16),
            ..Gpu::mi300x(i)
        }
    }

    /// MI210: PCIe card, no hive.
    pub fn mi210(i: u32) -> Gpu {
        Gpu {
            device_id: "740f",
            product_name: "AMD Instinct MI210",
            simd_per_xcc: 416,
            hive_id: None,
            ..Gpu::mi250x(i)
        }
    }

    pub fn dir(&self) -> String {
        format!("sys/devices/pci0000:00/{}", self.bdf)
    }

    fn bus(&self) -> u32 {
        u32::from_str_radix(&self.bdf[5..7], 16).unwrap()
    }
}

/// A whole node: its GPUs, the amdgpu module's parameters, and the CPU nodes KFD lists first.
pub struct Node {
    pub gpus: Vec<Gpu>,
    pub bad_page_threshold: i64,
    /// Compute partitions per GPU (1 = SPX, 8 = CPX).
    pub partitions: u32,
    /// `<block>_err_count` of UMC with its `de:` line, as Linux 6.12 prints it (amdgpu_ras.c:636-638);
    /// `false`: Linux 6.1's two lines for every block (6.1 amdgpu_ras.c:567).
    pub umc_deferred_line: bool,
}

impl Node {
    pub fn new(gpus: Vec<Gpu>) -> Node {
        Node {
            gpus,
            bad_page_threshold: -1,
            partitions: 1,
            umc_deferred_line: true,
        }
    }

    /// Eight MI300X in CPX/NPS4: eight KFD nodes and seven `amdgpu_xcp_<n>` devices per GPU.
    pub fn mi300x_cpx() -> Node {
        let gpus = (0..8)
            .map(|i| Gpu {
                partition: Some(("CPX", "NPS4")),
                xcc: 1,
                ..Gpu::mi300x(i)
            })
            .collect();
        Node {
            partitions: 8,
            ..Node::new(gpus)
        }
    }

    /// Write the node under `root`.
    pub fn write(&self, root: &Path) {
        let w = |rel: &str, data: &[u8]| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        let ln = |rel: &str, target: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        let p = "sys/module/amdgpu/parameters";
        w(
            &format!("{p}/bad_page_threshold"),
            format!("{}\n", self.bad_page_threshold).as_bytes(),
        );
        w(&format!("{p}/ras_enable"), b"-1\n");
        w(&format!("{p}/ras_mask"), b"4294967295\n");
        // Every loaded module's state (kernel/module/main.c show_initstate: "%s\n" of "live"); ROCm SMI
        // reads it before anything else (rocm_smi.py driverInitialized, rocm-smi 5.2.3).
        w("sys/module/amdgpu/initstate", b"live\n");
        // The BMC's VGA (ASPEED, vendor 0x1a03) is card0 on Instinct servers, so amdgpu's cards start at
        // card1; its connector directory sits beside it in class/drm, as the DRM core names them
        // (drm_sysfs.c drm_sysfs_connector_add: "card%d-%s").
        let vga = "sys/devices/pci0000:00/0000:02:00.0";
        w(&format!("{vga}/vendor"), b"0x1a03\n");
        w(&format!("{vga}/device"), b"0x2000\n");
        w(&format!("{vga}/class"), b"0x030000\n");
        std::fs::create_dir_all(root.join(format!("{vga}/drm/card0/card0-VGA-1"))).unwrap();
        ln(&format!("{vga}/drm/card0/device"), "../../../0000:02:00.0");
        ln(
            "sys/class/drm/card0",
            "../../devices/pci0000:00/0000:02:00.0/drm/card0",
        );
        ln(
            "sys/class/drm/card0-VGA-1",
            "../../devices/pci0000:00/0000:02:00.0/drm/card0/card0-VGA-1",
        );
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/amdgpu")).unwrap();
        ln(
            "sys/module/amdgpu/drivers/pci:amdgpu",
            "../../../bus/pci/drivers/amdgpu",
        );
        // Two CPU nodes first, as KFD lists them. Every node has `io_links/` and `p2p_links/` directories,
        // empty or not (kfd_topology.c:686-692); ROCm SMI opens both (rocm_smi_io_link.cc:284-285, 5.2.3).
        let gpu_nodes: u32 =
            self.gpus.iter().filter(|g| g.driver.is_some()).count() as u32 * self.partitions;
        for n in 0..2 {
            std::fs::create_dir_all(
                root.join(format!("sys/class/kfd/kfd/topology/nodes/{n}/io_links")),
            )
            .unwrap();
            std::fs::create_dir_all(
                root.join(format!("sys/class/kfd/kfd/topology/nodes/{n}/p2p_links")),
            )
            .unwrap();
            w(
                &format!("sys/class/kfd/kfd/topology/nodes/{n}/gpu_id"),
                b"0\n",
            );
            w(
                &format!("sys/class/kfd/kfd/topology/nodes/{n}/properties"),
                b"cpu_cores_count 96\nsimd_count 0\n",
            );
        }
        let mut kfd_node = 2;
        let mut xcp = 0;
        let mut next_render = 128 + self.gpus.len() as u32;
        let mut next_card = 1 + self.gpus.len() as u32;
        for g in &self.gpus {
            let d = g.dir();
            ln(
                &format!("sys/bus/pci/devices/{}", g.bdf),
                &format!("../../../devices/pci0000:00/{}", g.bdf),
            );
            w(&format!("{d}/vendor"), b"0x1002\n");
            w(
                &format!("{d}/device"),
                format!("0x{}\n", g.device_id).as_bytes(),
            );
            w(&format!("{d}/class"), b"0x120000\n");
            w(
                &format!("{d}/numa_node"),
                format!("{}\n", g.numa).as_bytes(),
            );
            w(
                &format!("{d}/local_cpulist"),
                if g.numa == 0 { b"0-47\n" } else { b"48-95\n" },
            );
            if let Some(drv) = g.driver {
                ln(
                    &format!("{d}/driver"),
                    &format!("../../../bus/pci/drivers/{drv}"),
                );
                if drv == "amdgpu" {
                    ln(
                        &format!("sys/bus/pci/drivers/amdgpu/{}", g.bdf),
                        &format!("../../../../devices/pci0000:00/{}", g.bdf),
                    );
                }
            } else {
                // Unbound: the PCI core's files only.
                continue;
            }
            std::fs::create_dir_all(root.join(format!("{d}/drm/card{}", g.card))).unwrap();
            std::fs::create_dir_all(root.join(format!("{d}/drm/renderD{}", g.render))).unwrap();
            ln(
                &format!("sys/class/drm/card{}", g.card),
                &format!("../../devices/pci0000:00/{}/drm/card{}", g.bdf, g.card),
            );
            ln(
                &format!("sys/class/drm/renderD{}", g.render),
                &format!("../../devices/pci0000:00/{}/drm/renderD{}", g.bdf, g.render),
            );
            // A class device's link to its parent (drivers/base/core.c device_add_class_symlinks: "device"),
            // the way ROCm SMI reaches the PCI device from /sys/class/drm/cardN (rocm_smi_main.cc:472).
            for node in [format!("card{}", g.card), format!("renderD{}", g.render)] {
                ln(
                    &format!("{d}/drm/{node}/device"),
                    &format!("../../../{}", g.bdf),
                );
            }
            w(
                &format!("{d}/unique_id"),
                format!("{:016x}\n", g.unique_id).as_bytes(),
            );
            w(
                &format!("{d}/serial_number"),
                format!("{}\n", g.serial).as_bytes(),
            );
            w(
                &format!("{d}/product_name"),
                format!("{}\n", g.product_name).as_bytes(),
            );
            w(&format!("{d}/product_number"), b"102-G30211-0C\n");
            w(&format!("{d}/vbios_version"), b"113-M3000100-102\n");
            w(&format!("{d}/board_info"), b"type : oam\n");
            // IP discovery (Linux 6.12 amdgpu_discovery.c): `ip_discovery/die/<die id>/<hw id>/<instance>/`
            // with `major`, `minor`, `revision` as "%d\n" (802-815) and a link named after the block
            // beside the numeric hw id directory (1088-1091); MP0_HWID is 255 (include/soc15_hw_ip.h:102).
            let ipd = format!("{d}/ip_discovery/die/0");
            let (a, b, c) = g.mp0;
            for (f, v) in [("major", a), ("minor", b), ("revision", c)] {
                w(&format!("{ipd}/255/0/{f}"), format!("{v}\n").as_bytes());
            }
            ln(&format!("{ipd}/MP0"), "255");
            w(
                &format!("{d}/mem_info_vram_total"),
                format!("{}\n", g.vram_bytes).as_bytes(),
            );
            w(
                &format!("{d}/mem_info_vram_used"),
                format!("{}\n", 1u64 << 30).as_bytes(),
            );
            w(&format!("{d}/gpu_busy_percent"), b"3\n");
            w(&format!("{d}/mem_busy_percent"), b"1\n");
            w(
                &format!("{d}/current_link_speed"),
                format!("{}\n", g.link.0).as_bytes(),
            );
            w(
                &format!("{d}/current_link_width"),
                format!("{}\n", g.link.1).as_bytes(),
            );
            w(&format!("{d}/max_link_speed"), b"32.0 GT/s PCIe\n");
            w(&format!("{d}/max_link_width"), b"16\n");
            w(
                &format!("{d}/pcie_replay_count"),
                format!("{}\n", g.replays).as_bytes(),
            );
            let hw = format!("{d}/hwmon/hwmon{}", g.card);
            // The hwmon core's `name` (drivers/hwmon/hwmon.c name_show "%s\n"), amdgpu registering as
            // DRIVER_NAME (amdgpu_pm.c:4508, amdgpu_drv.h:41): how ROCm SMI picks amdgpu's hwmon
            // (rocm_smi_main.cc FindMonitor).
            w(&format!("{hw}/name"), b"amdgpu\n");
            let mi300 = g.gfx_target_version >= 90400;
            // vddgfx: hidden on GC 9.4.3/9.4.4 (amdgpu_pm.c:3712-3717), shown elsewhere
            // (amdgpu_hwmon_show_vddgfx_label, amdgpu_pm.c:3171: "vddgfx\n"; in0_input in millivolts).
            if !mi300 {
                w(&format!("{hw}/in0_label"), b"vddgfx\n");
                w(&format!("{hw}/in0_input"), b"806\n");
            }
            if !mi300 {
                w(&format!("{hw}/temp1_label"), b"edge\n");
                w(
                    &format!("{hw}/temp1_input"),
                    format!("{}000\n", g.edge_c).as_bytes(),
                );
            }
            w(&format!("{hw}/temp2_label"), b"junction\n");
            w(
                &format!("{hw}/temp2_input"),
                format!("{}000\n", g.hotspot_c).as_bytes(),
            );
            w(&format!("{hw}/temp2_crit"), b"110000\n");
            w(&format!("{hw}/temp2_emergency"), b"115000\n");
            w(&format!("{hw}/temp3_label"), b"mem\n");
            w(
                &format!("{hw}/temp3_input"),
                format!("{}000\n", g.mem_c).as_bytes(),
            );
            w(&format!("{hw}/temp3_crit"), b"95000\n");
            // Average power where the SMU reports it (aldebaran_ppt.c:1147 GPU_AVG_POWER), instantaneous on
            // SMU 13.0.6 (smu_v13_0_6_ppt.c:1463 GPU_INPUT_POWER; 1492 AVG_POWER is -EOPNOTSUPP): the other
            // file is hidden (amdgpu_pm.c:3688-3694).
            w(
                &format!(
                    "{hw}/{}",
                    if mi300 {
                        "power1_input"
                    } else {
                        "power1_average"
                    }
                ),
                format!("{}000000\n", g.power_w).as_bytes(),
            );
            w(&format!("{hw}/power1_cap"), b"750000000\n");
            w(&format!("{hw}/power1_cap_default"), b"750000000\n");
            w(&format!("{hw}/power1_cap_max"), b"750000000\n");
            w(&format!("{hw}/freq1_input"), b"2100000000\n");
            w(&format!("{hw}/freq2_input"), b"1300000000\n");
            if let Some((cp, mp)) = g.partition {
                w(
                    &format!("{d}/current_compute_partition"),
                    format!("{cp}\n").as_bytes(),
                );
                w(
                    &format!("{d}/current_memory_partition"),
                    format!("{mp}\n").as_bytes(),
                );
            }
            if let Some(h) = g.hive_id {
                w(
                    &format!("{d}/xgmi_hive_info/xgmi_hive_id"),
                    format!("{h}\n").as_bytes(),
                );
                w(
                    &format!("{d}/xgmi_device_id"),
                    format!("{}\n", g.unique_id).as_bytes(),
                );
                w(
                    &format!("{d}/xgmi_physical_id"),
                    format!("{}\n", g.physical_id).as_bytes(),
                );
                w(
                    &format!("{d}/xgmi_error"),
                    format!("{}\n", g.xgmi_error).as_bytes(),
                );
            }
            w(&format!("{d}/ras/features"), b"feature mask: 0x3fbfff\n");
            for (block, ue, ce, de) in &g.ras {
                match g.ras_layout {
                    RasLayout::Aca => w(
                        &format!("{d}/ras/aca_{block}"),
                        format!("ue: {ue}\nce: {ce}\nde: {de}\n").as_bytes(),
                    ),
                    RasLayout::Legacy if *block == "umc" && self.umc_deferred_line => w(
                        &format!("{d}/ras/{block}_err_count"),
                        format!("ue: {ue}\nce: {ce}\nde: {de}\n").as_bytes(),
                    ),
                    RasLayout::Legacy => w(
                        &format!("{d}/ras/{block}_err_count"),
                        format!("ue: {ue}\nce: {ce}\n").as_bytes(),
                    ),
                }
            }
            if self.bad_page_threshold != 0 {
                let pages: String = g
                    .bad_pages
                    .iter()
                    .map(|(pfn, flag)| format!("0x{pfn:08x} : 0x00001000 : {flag}\n"))
                    .collect();
                w(&format!("{d}/ras/gpu_vram_bad_pages"), pages.as_bytes());
            }
            if g.metrics != Metrics::None {
                w(&format!("{d}/gpu_metrics"), &gpu_metrics(g));
            }
            // KFD: one node per compute partition; partitions after the first on xcp platform devices.
            for part in 0..self.partitions {
                let render = if part == 0 {
                    g.render
                } else {
                    let r = next_render;
                    next_render += 1;
                    let x = format!("sys/devices/platform/amdgpu_xcp_{xcp}/drm");
                    std::fs::create_dir_all(root.join(format!("{x}/card{next_card}"))).unwrap();
                    std::fs::create_dir_all(root.join(format!("{x}/renderD{r}"))).unwrap();
                    next_card += 1;
                    xcp += 1;
                    r
                };
                let loc = (g.bus() << 8) | part;
                let props = format!(
                    "cpu_cores_count 0\nsimd_count {simd}\nmem_banks_count 1\ncaches_count 0\n\
                     io_links_count 1\np2p_links_count {p2p}\ncpu_core_id_base 0\nsimd_id_base 2147487744\n\
                     max_waves_per_simd 8\nlds_size_in_kb 64\ngds_size_in_kb 0\nnum_gws 64\n\
                     wave_front_size 64\narray_count 4\nsimd_arrays_per_engine 1\ncu_per_simd_array 10\n\
                     simd_per_cu 4\nmax_slots_scratch_cu 32\ngfx_target_version {gfx}\nvendor_id 4098\n\
                     device_id {dev}\nlocation_id {loc}\ndomain 0\ndrm_render_minor {render}\nhive_id {hive}\n\
                     num_sdma_engines 2\nnum_sdma_xgmi_engines 14\nnum_sdma_queues_per_engine 8\n\
                     num_cp_queues 64\nmax_engine_clk_fcompute 2100\nlocal_mem_size 0\nfw_version 177\n\
                     capability 746286208\ndebug_prop 1495\nsdma_fw_version 19\nunique_id {uid}\n\
                     num_xcc {xcc}\nmax_engine_clk_ccompute 3700\n",
                    simd = g.simd_per_xcc * g.xcc,
                    gfx = g.gfx_target_version,
                    dev = u32::from_str_radix(g.device_id, 16).unwrap(),
                    hive = g.hive_id.unwrap_or(0),
                    uid = g.unique_id,
                    xcc = g.xcc,
                    p2p = gpu_nodes - 1,
                );
                let n = format!("sys/class/kfd/kfd/topology/nodes/{kfd_node}");
                // A CRC in the driver; any distinct value per node and partition mode here.
                w(
                    &format!("{n}/gpu_id"),
                    format!("{}\n", 10000 + kfd_node * 7 + self.partitions).as_bytes(),
                );
                w(&format!("{n}/properties"), props.as_bytes());
                // Links as iolink_show prints them (kfd_topology.c:281-295, "%s %u\n" each): one PCIe link
                // (CRAT_IOLINK_TYPE_PCIEXPRESS 2, kfd_crat.h:245) to the CPU node of its NUMA domain, and a
                // peer link to every other GPU node, XGMI (type 11, kfd_crat.h:254) within a hive.
                let link = |ty: u32, from: u32, to: u32, weight: u32| {
                    format!(
                        "type {ty}\nversion_major 0\nversion_minor 0\nnode_from {from}\nnode_to {to}\n\
                         weight {weight}\nmin_latency 0\nmax_latency 0\nmin_bandwidth 0\n\
                         max_bandwidth 0\nrecommended_transfer_size 0\n\
                         recommended_sdma_engine_id_mask 0\nflags 1\n"
                    )
                };
                w(
                    &format!("{n}/io_links/0/properties"),
                    link(2, kfd_node, g.numa.max(0) as u32, 20).as_bytes(),
                );
                std::fs::create_dir_all(root.join(format!("{n}/p2p_links"))).unwrap();
                let (xgmi, first) = (g.hive_id.is_some(), 2);
                for (k, peer) in (first..first + gpu_nodes)
                    .filter(|p| *p != kfd_node)
                    .enumerate()
                {
                    let (ty, weight) = if xgmi { (11, 15) } else { (2, 40) };
                    w(
                        &format!("{n}/p2p_links/{k}/properties"),
                        link(ty, kfd_node, peer, weight).as_bytes(),
                    );
                }
                kfd_node += 1;
            }
        }
    }
}

/// `tests/truth/gpu_metrics_layouts.txt`: `REVISION MEMBER OFFSET BYTES`.
const LAYOUTS: &str = include_str!("../truth/gpu_metrics_layouts.txt");
/// `tests/truth/gpu_metrics_v1_9.txt`: the v1.9 encoding, ids and the SMU 13.0.6 attribute list.
const V1_9: &str = include_str!("../truth/gpu_metrics_v1_9.txt");

impl Metrics {
    /// `(format_revision, content_revision)`.
    pub fn revision(self) -> Option<(u8, u8)> {
        Some(match self {
            Metrics::V1_3 => (1, 3),
            Metrics::V1_4 => (1, 4),
            Metrics::V1_5 => (1, 5),
            Metrics::V1_6 => (1, 6),
            Metrics::V1_7 => (1, 7),
            Metrics::V1_8 => (1, 8),
            Metrics::V1_9 => (1, 9),
            Metrics::None => return None,
        })
    }
}

/// What `g` reports, by kernel member name: each member's values (one for a scalar), element width in bytes.
/// Members the SMU leaves unreported are absent (they stay 0xFF).
pub fn metric_values(g: &Gpu) -> Vec<(&'static str, usize, Vec<u64>)> {
    let links: Vec<u64> = g.xgmi_links.iter().map(|v| u64::from(*v)).collect();
    let read: Vec<u64> = (0..8)
        .map(|k| {
            if g.xgmi_links[k] == 0xFFFF {
                u64::MAX
            } else {
                g.xgmi_read_kb[k]
            }
        })
        .collect();
    let write: Vec<u64> = read
        .iter()
        .map(|v| if *v == u64::MAX { u64::MAX } else { v * 2 })
        .collect();
    let r = |k: usize| vec![u64::from(g.residency[k])];
    vec![
        ("temperature_edge", 2, vec![u64::from(g.edge_c)]),
        ("temperature_hotspot", 2, vec![u64::from(g.hotspot_c)]),
        ("temperature_mem", 2, vec![u64::from(g.mem_c)]),
        ("average_socket_power", 2, vec![u64::from(g.power_w)]),
        ("curr_socket_power", 2, vec![u64::from(g.power_w)]),
        ("xgmi_link_width", 2, vec![u64::from(g.xgmi_width_speed.0)]),
        ("xgmi_link_speed", 2, vec![u64::from(g.xgmi_width_speed.1)]),
        ("accumulation_counter", 4, r(0)),
        ("prochot_residency_acc", 4, r(1)),
        ("ppt_residency_acc", 4, r(2)),
        ("socket_thm_residency_acc", 4, r(3)),
        ("vr_thm_residency_acc", 4, r(4)),
        ("hbm_thm_residency_acc", 4, r(5)),
        ("pcie_l0_to_recov_count_acc", 8, vec![g.l0_to_recov]),
        ("pcie_replay_count_acc", 8, vec![g.replays]),
        ("pcie_nak_sent_count_acc", 4, vec![u64::from(g.nak.0)]),
        ("pcie_nak_rcvd_count_acc", 4, vec![u64::from(g.nak.1)]),
        ("xgmi_read_data_acc", 8, read),
        ("xgmi_write_data_acc", 8, write),
        ("xgmi_link_status", 2, links),
    ]
}

/// One fixed revision's rows of the layouts table: `(member, offset, bytes)`, and the struct's size.
pub fn layout(rev: &str) -> (usize, Vec<(String, usize, usize)>) {
    let mut size = 0;
    let mut rows = Vec::new();
    for l in LAYOUTS
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let p: Vec<&str> = l.split_whitespace().collect();
        if p[0] != rev {
            continue;
        }
        let (off, bytes) = (p[2].parse().unwrap(), p[3].parse().unwrap());
        if p[1] == "SIZE" {
            size = bytes;
        } else {
            rows.push((p[1].to_string(), off, bytes));
        }
    }
    (size, rows)
}

fn put(b: &mut [u8], o: usize, width: usize, v: u64) {
    b[o..o + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

/// The `gpu_metrics` table of `g` in its revision, 0xFF (unreported) wherever `g` reports nothing.
pub fn gpu_metrics(g: &Gpu) -> Vec<u8> {
    let Some((frev, crev)) = g.metrics.revision() else {
        return Vec::new();
    };
    if crev == 9 {
        return gpu_metrics_v1_9(g);
    }
    let (size, rows) = layout(&format!("{frev}.{crev}"));
    let mut b = vec![0xFF; size];
    put(&mut b, 0, 2, size as u64);
    (b[2], b[3]) = (frev, crev);
    for (member, width, values) in metric_values(g) {
        let Some((_, off, bytes)) = rows.iter().find(|(m, _, _)| m == member) else {
            continue;
        };
        assert_eq!(*bytes, width * values.len(), "{member} in {frev}.{crev}");
        for (i, v) in values.iter().enumerate() {
            put(&mut b, off + width * i, width, *v);
        }
    }
    b
}

/// v1.9: `header, int attr_count`, then per attribute of the SMU 13.0.6 list its u64 encoding and values,
/// packed (`DECLARE_SMU_METRICS_CLASS`); values `g` does not report stay 0xFF.
pub fn gpu_metrics_v1_9(g: &Gpu) -> Vec<u8> {
    let num = |kind: &str, name: &str| -> u64 {
        V1_9.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|p| p.len() >= 3 && p[0] == kind && p[1] == name)
            .unwrap_or_else(|| panic!("{kind} {name} not in gpu_metrics_v1_9.txt"))[2]
            .parse()
            .unwrap()
    };
    let shift = |field: &str| num("field", field);
    let values = metric_values(g);
    let mut b = vec![0u8, 0, 1, 9, 0, 0, 0, 0];
    let mut count = 0i32;
    for l in V1_9.lines().filter(|l| l.starts_with("smu_13_0_6 ")) {
        let p: Vec<&str> = l.split_whitespace().collect();
        let (attr, unit, ty, n) = (p[1], p[2], p[3], p[4].parse::<u64>().unwrap());
        let width = V1_9
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|q| q[0] == "type" && q[1] == ty)
            .unwrap()[3]
            .parse::<usize>()
            .unwrap();
        let enc = (num("unit", unit) << shift("unit"))
            | (num("type", ty) << shift("type"))
            | (num("attr", attr) << shift("id"))
            | (n << shift("inst"));
        b.extend_from_slice(&enc.to_le_bytes());
        let at = b.len();
        b.resize(at + width * n as usize, 0xFF);
        let member = attr.to_ascii_lowercase();
        if let Some((_, _, vals)) = values.iter().find(|(m, _, _)| *m == member) {
            for (i, v) in vals.iter().take(n as usize).enumerate() {
                put(&mut b, at + width * i, width, *v);
            }
        }
        count += 1;
    }
    let size = b.len() as u16;
    b[0..2].copy_from_slice(&size.to_le_bytes());
    b[4..8].copy_from_slice(&count.to_le_bytes());
    b
}
