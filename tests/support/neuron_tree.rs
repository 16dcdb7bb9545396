//! Fake AWS Neuron hosts: the neuron driver's sysfs as aws-neuron/aws-neuron-driver prints it, written under
//! a host root for node-probe's `--host-root`. Included with
//! `#[path = "…/support/neuron_tree.rs"] mod neuron_tree;`.
//!
//! Every file is written the way its printer in the driver prints it (aws-neuron/aws-neuron-driver, commit
//! fca19f7df31b44cbbffaf121230a66df6f59d118, file:line beside each), not from node-probe's reader:
//! - The class device `neuron<N>` (neuron_cdev.c:3109 `"neuron%d"`) of class `neuron_device`
//!   (neuron_cdev.c:3262) is created with no parent (neuron_cdev.c:3069-3071), so the kernel places it under
//!   `/sys/devices/virtual/neuron_device/neuron<N>` and links `/sys/class/neuron_device/neuron<N>` to it; it
//!   has no `device` link to its PCI function.
//! - Its attributes `reset`, `core_count`, `connected_devices` (neuron_cdev.c:3039-3043) and the metrics tree
//!   the driver hangs on the same kobject (`nsysfsmetric_register`, neuron_sysfs_metrics.c:906-975).
//! - The PCI functions are bound to the PCI driver `neuron-driver` (neuron_pci.c:370); their ids are
//!   `AMZN_VENDOR_ID` 0x1D0F and `TRN2_DEVICE_ID0` 0x7364 (neuron_device.h:35, :42), printed by the PCI core
//!   as `0x%04x` (drivers/pci/pci-sysfs.c).
//!
//! Each value a tree writes is unique to its field, so a reader that reads the wrong file fails. The BDFs,
//! serials and counts are invented; the architecture strings are the v3 HAL's (v3/neuron_dhal_v3.c:223-226).
#![allow(dead_code)] // each suite uses some of these

use std::path::Path;

#[derive(Clone, Debug)]
pub struct Core {
    /// `neuron_core<n>/stats/status/<name>/total` (neuron_sysfs_metrics.c:80, :91-93, :99; printed
    /// `"%llu\n"`, :279).
    pub hw_error: u64,
    pub hw_hbm_ue_error: u64,
    pub hw_nc_ue_error: u64,
    pub hw_dma_abort_error: u64,
    pub hw_repairable_hbm_ue_error: u64,
    /// `neuron_core<n>/stats/other_info/reset_fail_count/total` (neuron_sysfs_metrics.c:134).
    pub reset_fail_count: u64,
    /// `neuron_core<n>/stats/other_info/reset_req_count/total` (neuron_sysfs_metrics.c:133): every
    /// reset request of the core's device counts here (neuron_reset.c:278).
    pub reset_req_count: u64,
}

#[derive(Clone, Debug)]
pub struct Device {
    /// The driver's device index, `neuron<N>`.
    pub index: u32,
    /// `reset` read back: `device_state`, `"%d\n"` (neuron_cdev.c:2976; 0 reset, 1 ready, 2 invalid,
    /// neuron_device.h:59-63).
    pub device_state: u32,
    /// `core_count`: `"%d"` with no newline (neuron_cdev.c:2998).
    pub core_count: u32,
    /// `connected_devices` (neuron_cdev.c:3018-3028).
    pub connected: Vec<u32>,
    /// `info/serial_number`: `"%016llx\n"`, or `"\n"` when the firmware did not answer
    /// (neuron_sysfs_metrics.c:365-376): `None` writes the empty line.
    pub serial: Option<u64>,
    /// `stats/hardware/*`: `"%u\n"` (neuron_sysfs_metrics.c:356, :363; the SRAM count masked to 16 bits).
    pub sram_ecc_uncorrected: u32,
    pub mem_ecc_uncorrected: u32,
    pub mem_ecc_repairable_uncorrected: u32,
    pub cores: Vec<Core>,
}

impl Device {
    /// A Trainium2 device of a trn2.48xlarge (16 devices, 8 NeuronCores each: V3_NC_PER_DEVICE,
    /// v3/address_map.h:46-53), values distinct per index and per field.
    pub fn trn2(i: u32) -> Device {
        let n = u64::from(i);
        Device {
            index: i,
            device_state: 1,
            core_count: 8,
            // A 4x4 torus: the devices to the left, right, above and below.
            connected: {
                let (r, c) = (i / 4, i % 4);
                vec![
                    r * 4 + (c + 3) % 4,
                    r * 4 + (c + 1) % 4,
                    ((r + 3) % 4) * 4 + c,
                    ((r + 1) % 4) * 4 + c,
                ]
            },
            serial: Some(0x2a5f_0000_1000_0000 + n * 0x1_0001),
            sram_ecc_uncorrected: 0,
            mem_ecc_uncorrected: 0,
            mem_ecc_repairable_uncorrected: 0,
            cores: (0..8u64)
                .map(|c| {
                    Core {
                        hw_error: 0,
                        hw_hbm_ue_error: 0,
                        hw_nc_ue_error: 0,
                        hw_dma_abort_error: 0,
                        hw_repairable_hbm_ue_error: 0,
                        reset_fail_count: 0,
                        reset_req_count: 2,
                    }
                    .numbered(n * 100 + c)
                })
                .collect(),
        }
    }

    pub fn class_dir(&self) -> String {
        format!("sys/devices/virtual/neuron_device/neuron{}", self.index)
    }
}

impl Core {
    /// Distinct values per field where `seed` is not zero (a test of every field); zero stays zero.
    pub fn numbered(self, seed: u64) -> Core {
        if seed == 0 {
            return self;
        }
        Core {
            hw_error: seed * 10 + 1,
            hw_hbm_ue_error: seed * 10 + 2,
            hw_nc_ue_error: seed * 10 + 3,
            hw_dma_abort_error: seed * 10 + 4,
            hw_repairable_hbm_ue_error: seed * 10 + 5,
            reset_fail_count: seed * 10 + 6,
            reset_req_count: seed * 10 + 7,
        }
    }

    pub fn clean() -> Core {
        Core {
            hw_error: 0,
            hw_hbm_ue_error: 0,
            hw_nc_ue_error: 0,
            hw_dma_abort_error: 0,
            hw_repairable_hbm_ue_error: 0,
            reset_fail_count: 0,
            reset_req_count: 2,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub devices: Vec<Device>,
    /// The PCI functions bound to `neuron-driver`: (BDF, device id).
    pub functions: Vec<(String, &'static str)>,
}

impl Node {
    /// A trn2.48xlarge: 16 Trainium2 devices, their PCI functions on invented buses.
    pub fn trn2(devices: u32) -> Node {
        Node {
            devices: (0..devices).map(Device::trn2).collect(),
            functions: (0..devices)
                .map(|i| (format!("0000:{:02x}:00.0", 0x10 + i * 8), "7364"))
                .collect(),
        }
    }

    pub fn write(&self, root: &Path) {
        let w = |rel: &str, data: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        let ln = |rel: &str, target: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        for (bdf, id) in &self.functions {
            let pci = format!("sys/devices/pci0000:00/{bdf}");
            ln(
                &format!("sys/bus/pci/devices/{bdf}"),
                &format!("../../../devices/pci0000:00/{bdf}"),
            );
            w(&format!("{pci}/vendor"), "0x1d0f\n");
            w(&format!("{pci}/device"), &format!("0x{id}\n"));
            ln(
                &format!("{pci}/driver"),
                "../../../bus/pci/drivers/neuron-driver",
            );
            ln(
                &format!("sys/bus/pci/drivers/neuron-driver/{bdf}"),
                &format!("../../../../devices/pci0000:00/{bdf}"),
            );
        }
        // The class's own attributes (neuron_cdev.c:3218-3225), which are not devices.
        w("sys/class/neuron_device/node_id", "0\n");
        w("sys/class/neuron_device/server_id", "0\n");
        w("sys/class/neuron_device/ultraserver_mode", "0\n");
        for d in &self.devices {
            let dir = d.class_dir();
            ln(
                &format!("sys/class/neuron_device/neuron{}", d.index),
                &format!("../../devices/virtual/neuron_device/neuron{}", d.index),
            );
            w(&format!("{dir}/dev"), &format!("245:{}\n", d.index));
            w(&format!("{dir}/reset"), &format!("{}\n", d.device_state));
            w(&format!("{dir}/core_count"), &format!("{}", d.core_count));
            // `"%d, "` for every peer but the last, `"%d\n"` for the last, `"\n"` for none.
            let connected = match d.connected.split_last() {
                None => "\n".to_string(),
                Some((last, rest)) => {
                    let mut s: String = rest.iter().map(|p| format!("{p}, ")).collect();
                    s.push_str(&format!("{last}\n"));
                    s
                }
            };
            w(&format!("{dir}/connected_devices"), &connected);
            // info/ (neuron_sysfs_metrics.c:915; the v3 HAL's attributes, v3/neuron_dhal_v3.c:1040-1043).
            w(&format!("{dir}/info/notify_delay"), "-1\n");
            w(
                &format!("{dir}/info/serial_number"),
                &d.serial.map_or("\n".to_string(), |s| format!("{s:016x}\n")),
            );
            // info/architecture/ (neuron_sysfs_metrics.c:921, :154-156): `"%s\n"` (:339) of the prefix
            // "ND" and the HAL's suffixes (:236-258; v3/neuron_dhal_v3.c:223-226).
            let arch = format!("{dir}/info/architecture");
            w(&format!("{arch}/arch_type"), "NDv3\n");
            w(&format!("{arch}/instance_type"), "Trn2\n");
            w(&format!("{arch}/device_name"), "Trainium2\n");
            // stats/hardware/ (v3/neuron_dhal_v3.c:1062; neuron_sysfs_metrics.c:146-150).
            let hw = format!("{dir}/stats/hardware");
            w(
                &format!("{hw}/sram_ecc_uncorrected"),
                &format!("{}\n", d.sram_ecc_uncorrected),
            );
            w(
                &format!("{hw}/mem_ecc_uncorrected"),
                &format!("{}\n", d.mem_ecc_uncorrected),
            );
            w(
                &format!("{hw}/mem_ecc_repairable_uncorrected"),
                &format!("{}\n", d.mem_ecc_repairable_uncorrected),
            );
            // neuron_core<n>/ (neuron_sysfs_metrics.c:646), its stats/status/<counter>/{total,present}
            // (:661, :24-41) and stats/other_info/<counter>/ (:697), info/architecture/arch_type (:721).
            for (c, core) in d.cores.iter().enumerate() {
                let nc = format!("{dir}/neuron_core{c}");
                let counter = |sub: &str, name: &str, v: u64| {
                    w(&format!("{nc}/stats/{sub}/{name}/total"), &format!("{v}\n"));
                    w(&format!("{nc}/stats/{sub}/{name}/present"), "0\n");
                };
                counter("status", "success", 900_000 + c as u64);
                counter("status", "hw_error", core.hw_error);
                counter("status", "hw_hbm_ue_error", core.hw_hbm_ue_error);
                counter("status", "hw_nc_ue_error", core.hw_nc_ue_error);
                counter("status", "hw_dma_abort_error", core.hw_dma_abort_error);
                counter(
                    "status",
                    "hw_repairable_hbm_ue_error",
                    core.hw_repairable_hbm_ue_error,
                );
                counter("other_info", "reset_req_count", core.reset_req_count);
                counter("other_info", "reset_fail_count", core.reset_fail_count);
                w(&format!("{nc}/info/architecture/arch_type"), "NCv3\n");
            }
        }
    }
}
