//! Fake Intel Gaudi hosts: the habanalabs driver's sysfs as Linux 6.12 prints it, written under a host
//! root for node-probe's `--host-root`. Included with `#[path = "…/support/gaudi_tree.rs"] mod gaudi_tree;`.
//!
//! Every file is written the way its printer in Linux 6.12 `drivers/accel/habanalabs` prints it (file:line
//! beside each), not from node-probe's reader:
//! - The attributes live on the PCI device: `hl_sysfs_init` adds its groups to `hdev->dev`
//!   (`common/sysfs.c:528`), which is the PCI device (`common/habanalabs_drv.c:462`); the ABI document
//!   (`Documentation/ABI/testing/sysfs-driver-habanalabs`) names them `/sys/class/accel/accel<n>/device/<attr>`.
//!   The class device `accel<n>` is DRM's (`drivers/accel/drm_accel.c`, a child of the PCI device).
//! - `hwmon/hwmon<N>` is registered on the PCI device with the firmware's card name as its name
//!   (`common/hwmon.c:883-884`); its channels follow the hwmon ABI (`temp1_input` in millidegrees Celsius,
//!   `power1_input` in microwatts, Documentation/hwmon/sysfs-interface.rst).
//! - Before Linux 6.2 (drivers/misc/habanalabs) the same attributes sat on the `hl<n>` char device of class
//!   `habanalabs`: `/sys/class/habanalabs/hl<n>/<attr>`, its `device` link the PCI device (`legacy`).
//!
//! Gaudi 3 is not in Linux 6.12: Intel's out-of-tree habanalabs driver runs it with the same common
//! `sysfs.c`. Its `device_type` string (`GAUDI3`) and PCI device id (`0x1060`) here are NOT checked against
//! any source this project holds; the 6.12 printer would answer `-EINVAL` for an ASIC it does not know
//! (`common/sysfs.c:277-280`). Each value a tree writes is unique to its field, so a reader that reads the
//! wrong file fails. The BDFs, counts and versions are invented.
#![allow(dead_code)] // each suite uses some of these

use std::path::Path;

#[derive(Clone, Debug)]
pub struct Device {
    pub bdf: String,
    /// The accel minor (`accel<n>`, `hl<n>` in the legacy layout).
    pub minor: u32,
    /// PCI device id (`PCI_IDS_GAUDI2` 0x1020, `common/habanalabs_drv.c:66`).
    pub device_id: &'static str,
    /// `device_type_show`'s string (`common/sysfs.c:249-283`: "GAUDI2", "GAUDI2B", …).
    pub device_type: &'static str,
    /// `hdev->status[]` as `status_show` prints it: first letter upper-cased (`common/sysfs.c:305-309`;
    /// the strings at `common/habanalabs_drv.c:468-475`: "operational", "in reset", "disabled", …).
    pub status: &'static str,
    pub hard_reset_cnt: u32,
    /// `soft_reset_cnt` exists only where `allow_inference_soft_reset` (`common/sysfs.c:533`), which no
    /// Gaudi sets: `None` writes no file.
    pub soft_reset_cnt: Option<u32>,
    /// `module_id_show`: `cpucp_info.card_location`, `%u` (`common/sysfs.c:414`).
    pub module_id: u32,
    pub security_enabled: bool,
    /// `max_power_show`: `%lu`, milliwatts (`common/sysfs.c:341`; ABI: "in milliwatts").
    pub max_power_mw: u64,
    /// `clk_max_freq_mhz` and `clk_cur_freq_mhz`: `%lu` of Hz / 1000 / 1000 (`common/sysfs.c:27`, `:68`).
    pub clk_max_mhz: u64,
    pub clk_cur_mhz: u64,
    pub cpucp_ver: &'static str,
    pub cpucp_kernel_ver: &'static str,
    pub uboot_ver: &'static str,
    pub preboot_btl_ver: &'static str,
    pub fuse_ver: &'static str,
    pub thermal_ver: &'static str,
    pub fw_os_ver: &'static str,
    /// `cpld_ver_show`: `0x%08x%08x` of the CPLD timestamp and version (`common/sysfs.c:145`).
    pub cpld: (u32, u32),
    /// `vrm_ver_show` (`common/sysfs.c:100`, `:106`): `%#04x` of the Infineon version.
    pub vrm: u32,
    /// hwmon's `name`: the firmware's card name (`common/hwmon.c:884`).
    pub card_name: &'static str,
    pub temp_millic: i64,
    pub power_uw: u64,
    pub numa: i32,
    /// `None`: bound to no driver.
    pub driver: Option<&'static str>,
}

impl Device {
    /// A Gaudi 2 (HL-225) at `0000:<bus>:00.0`, values distinct per index and per field.
    pub fn gaudi2(i: u32) -> Device {
        let bus = [0x19u32, 0x1a, 0x33, 0x34, 0x9a, 0x9b, 0xb3, 0xb4][i as usize % 8];
        Device {
            bdf: format!("0000:{bus:02x}:00.0"),
            minor: i,
            device_id: "1020",
            device_type: "GAUDI2",
            status: "Operational",
            hard_reset_cnt: 3 + i,
            soft_reset_cnt: None,
            module_id: 7 - i % 8,
            security_enabled: true,
            max_power_mw: 600_000 - u64::from(i) * 1_000,
            clk_max_mhz: 1650 + u64::from(i),
            clk_cur_mhz: 1400 + u64::from(i),
            cpucp_ver: "1.17.0-fw-51.2.0-sec-9",
            cpucp_kernel_ver: "Linux gaudi2 5.10.18-hl-gaudi2-1.17.0-fw-51.2.0-sec-9",
            uboot_ver: "U-Boot 2021.04-hl-gaudi2-1.17.0-fw-51.2.0-sec-9",
            preboot_btl_ver: "Preboot version hl-gaudi2-1.17.0-fw-51.2.0-sec-9 (Aug 01 2024 - 10:11:12)",
            fuse_ver: "fuse-gaudi2-0x5a",
            thermal_ver: "thermal-gaudi2-3.2.1",
            fw_os_ver: "fwos-gaudi2-2.1.0",
            cpld: (0x6601_2e3f, 0x0000_0010),
            vrm: 0x45,
            card_name: "HL-225",
            temp_millic: 41_000 + i64::from(i) * 1_000,
            power_uw: 95_000_000 + u64::from(i) * 1_000_000,
            numa: if i < 4 { 0 } else { 1 },
            driver: Some("habanalabs"),
        }
    }

    /// A Gaudi 3 (HL-325L), written with the same common printers (see the module note on what is not
    /// checked).
    pub fn gaudi3(i: u32) -> Device {
        let bus = [0x21u32, 0x22, 0x43, 0x44, 0xa1, 0xa2, 0xc3, 0xc4][i as usize % 8];
        Device {
            bdf: format!("0000:{bus:02x}:00.0"),
            device_id: "1060",
            device_type: "GAUDI3",
            cpucp_ver: "1.21.0-fw-59.1.1-sec-3",
            cpucp_kernel_ver: "Linux gaudi3 6.1.41-hl-gaudi3-1.21.0-fw-59.1.1-sec-3",
            uboot_ver: "U-Boot 2023.01-hl-gaudi3-1.21.0-fw-59.1.1-sec-3",
            preboot_btl_ver: "Preboot version hl-gaudi3-1.21.0-fw-59.1.1-sec-3 (Mar 02 2025 - 08:09:10)",
            fuse_ver: "fuse-gaudi3-0x61",
            thermal_ver: "thermal-gaudi3-4.0.2",
            fw_os_ver: "fwos-gaudi3-3.0.0",
            cpld: (0x6790_aa01, 0x0000_0021),
            vrm: 0x52,
            card_name: "HL-325L",
            max_power_mw: 900_000 - u64::from(i) * 1_000,
            clk_max_mhz: 1900 + u64::from(i),
            clk_cur_mhz: 1600 + u64::from(i),
            temp_millic: 52_000 + i64::from(i) * 1_000,
            power_uw: 210_000_000 + u64::from(i) * 1_000_000,
            hard_reset_cnt: 11 + i,
            module_id: 15 - i % 8,
            ..Device::gaudi2(i)
        }
    }

    pub fn pci_dir(&self) -> String {
        format!("sys/devices/pci0000:00/{}", self.bdf)
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    pub devices: Vec<Device>,
    /// The pre-6.2 layout: attributes on `/sys/class/habanalabs/hl<n>`, no accel class.
    pub legacy: bool,
}

impl Node {
    pub fn new(devices: Vec<Device>) -> Node {
        Node {
            devices,
            legacy: false,
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
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/habanalabs")).unwrap();
        for (hw, d) in self.devices.iter().enumerate() {
            let pci = d.pci_dir();
            ln(
                &format!("sys/bus/pci/devices/{}", d.bdf),
                &format!("../../../devices/pci0000:00/{}", d.bdf),
            );
            // PCI core attributes (drivers/pci/pci-sysfs.c: `0x%04x`, class `0x%06x`).
            w(&format!("{pci}/vendor"), "0x1da3\n");
            w(&format!("{pci}/device"), &format!("0x{}\n", d.device_id));
            w(&format!("{pci}/class"), "0x120000\n");
            w(&format!("{pci}/numa_node"), &format!("{}\n", d.numa));
            if let Some(drv) = d.driver {
                ln(
                    &format!("{pci}/driver"),
                    &format!("../../../bus/pci/drivers/{drv}"),
                );
            }
            // The attribute directory: the PCI device (6.2+), or the hl<n> char device (legacy).
            let attrs = if self.legacy {
                let hl = format!("{pci}/habanalabs/hl{}", d.minor);
                ln(
                    &format!("sys/class/habanalabs/hl{}", d.minor),
                    &format!(
                        "../../devices/pci0000:00/{}/habanalabs/hl{}",
                        d.bdf, d.minor
                    ),
                );
                ln(&format!("{hl}/device"), &format!("../../../{}", d.bdf));
                hl
            } else {
                let accel = format!("{pci}/accel/accel{}", d.minor);
                ln(
                    &format!("sys/class/accel/accel{}", d.minor),
                    &format!("../../devices/pci0000:00/{}/accel/accel{}", d.bdf, d.minor),
                );
                ln(&format!("{accel}/device"), &format!("../../../{}", d.bdf));
                w(&format!("{accel}/dev"), &format!("261:{}\n", d.minor));
                pci.clone()
            };
            if d.driver.is_none() {
                continue;
            }
            // common/sysfs.c, each `sprintf` of its _show.
            w(
                &format!("{attrs}/device_type"),
                &format!("{}\n", d.device_type),
            ); // :283
            w(&format!("{attrs}/status"), &format!("{}\n", d.status)); // :309
            // `hard_reset`: write-only (DEVICE_ATTR_WO, :431), listed in hl_dev_attrs (:454); reads empty here.
            w(&format!("{attrs}/hard_reset"), "");
            w(
                &format!("{attrs}/hard_reset_cnt"),
                &format!("{}\n", d.hard_reset_cnt),
            ); // :325
            if let Some(s) = d.soft_reset_cnt {
                w(&format!("{attrs}/soft_reset_cnt"), &format!("{s}\n")); // :317
            }
            w(&format!("{attrs}/module_id"), &format!("{}\n", d.module_id)); // :414
            w(
                &format!("{attrs}/security_enabled"),
                &format!("{}\n", u8::from(d.security_enabled)),
            ); // :406
            w(
                &format!("{attrs}/max_power"),
                &format!("{}\n", d.max_power_mw),
            ); // :341
            w(
                &format!("{attrs}/clk_max_freq_mhz"),
                &format!("{}\n", d.clk_max_mhz),
            ); // :27
            w(
                &format!("{attrs}/clk_cur_freq_mhz"),
                &format!("{}\n", d.clk_cur_mhz),
            ); // :68
            // :291 `%04x:%02x:%02x.%x`, the same address the PCI core names the device by.
            w(&format!("{attrs}/pci_addr"), &format!("{}\n", d.bdf));
            w(&format!("{attrs}/parent_device"), &format!("{}\n", d.bdf)); // :421 HL_DEV_NAME
            // Versions: `%s\n` (armcp_ver/cpucp_ver :137/:163, uboot :121, preboot :195, fuse :171),
            // `%s` with no newline (the kernel versions :129/:155, thermal :179, fw_os :187).
            w(&format!("{attrs}/armcp_ver"), &format!("{}\n", d.cpucp_ver));
            w(&format!("{attrs}/cpucp_ver"), &format!("{}\n", d.cpucp_ver));
            w(&format!("{attrs}/armcp_kernel_ver"), d.cpucp_kernel_ver);
            w(&format!("{attrs}/cpucp_kernel_ver"), d.cpucp_kernel_ver);
            w(&format!("{attrs}/uboot_ver"), &format!("{}\n", d.uboot_ver));
            w(
                &format!("{attrs}/preboot_btl_ver"),
                &format!("{}\n", d.preboot_btl_ver),
            );
            w(&format!("{attrs}/fuse_ver"), &format!("{}\n", d.fuse_ver));
            w(&format!("{attrs}/thermal_ver"), d.thermal_ver);
            w(&format!("{attrs}/fw_os_ver"), d.fw_os_ver);
            w(
                &format!("{attrs}/cpld_ver"),
                &format!("0x{:08x}{:08x}\n", d.cpld.0, d.cpld.1),
            ); // :145
            w(&format!("{attrs}/vrm_ver"), &format!("{:#04x}\n", d.vrm)); // :106
            // hwmon on the PCI device (common/hwmon.c:883), named by the card.
            let hwmon = format!("{pci}/hwmon/hwmon{}", hw + 3);
            w(&format!("{hwmon}/name"), &format!("{}\n", d.card_name));
            w(
                &format!("{hwmon}/temp1_input"),
                &format!("{}\n", d.temp_millic),
            );
            w(
                &format!("{hwmon}/power1_input"),
                &format!("{}\n", d.power_uw),
            );
        }
    }
}
