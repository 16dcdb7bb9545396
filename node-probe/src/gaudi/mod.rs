//! The Intel Gaudi source: devices the habanalabs driver runs, read from the host's sysfs. Discovery
//! walks `/sys/class/accel/accel<n>` (Linux 6.2+: the driver's attributes on the PCI device, `device/`)
//! and, where the accel class names none, the older `/sys/class/habanalabs/hl<n>` (attributes on the
//! char device itself); a class device counts only when its PCI device is bound to `habanalabs` (the
//! accel class also holds other drivers' devices and each device's `accel_controlD<n>`).
//!
//! Attributes and their formats: Linux 6.12 `drivers/accel/habanalabs/common/sysfs.c` and
//! `Documentation/ABI/testing/sysfs-driver-habanalabs`; temperature and power from the device's hwmon
//! (`common/hwmon.c`, hwmon's units). Files are named from the host's `/` and resolved inside the host root
//! ([`HostFiles`]), read capped; what cannot be read is an inline error on its field.
//!
//! Reading `clk_*` and `max_power` sends a packet to the device's firmware (`hl_fw_get_frequency`,
//! `hl_fw_get_max_power`), which can block while the firmware hangs: the devices are read on their own
//! thread under the NVML deadline, and a device not read in time is one with a `timeout` handle error.
//!
//! Beside sysfs, under the same deadline, Intel's `libhlml.so` where the node has it (`hlml.rs`, read in a
//! child process by `hlml_child.rs`): the devices' serial numbers, which sysfs does not show.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_diag::contract::ProbeError;
use gpu_diag::facts::{
    ClockFacts, FieldError, FieldErrorKind, GaudiFirmwareFacts, GaudiGpuFacts, GpuFacts,
    GpuProcessFacts, GpuVendor, HlmlFacts, PowerFacts, Reading, ScanGapsFacts, Sections,
    ThermalFacts,
};

use crate::host::files::HostFiles;
use crate::vendor::{Ask, NodeWide, Share, Vendor};

pub mod hlml;
pub mod hlml_child;

/// `PCI_VENDOR_ID_HABANALABS`.
const HABANA_VENDOR: u32 = 0x1da3;
const DRIVER: &str = "habanalabs";

/// One device found: its class device, where its attributes are, its PCI address and device dir.
#[derive(Debug, Clone)]
struct Found {
    /// `accel0` or `hl0`.
    name: String,
    /// The driver's attribute directory, from the host's `/`.
    attrs: String,
    /// The PCI device's directory, from the host's `/`.
    pci_dir: String,
    bdf: String,
}

/// The host's habanalabs devices in PCI address order.
fn discover(files: HostFiles<'_>) -> Vec<Found> {
    let mut found = class(files, "sys/class/accel", "accel", "device");
    if found.is_empty() {
        found = class(files, "sys/class/habanalabs", "hl", "");
    }
    found.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    found.dedup_by(|a, b| a.bdf == b.bdf);
    found
}

/// The class devices `<prefix><n>` under `dir` bound to habanalabs; `attrs_sub` is where the driver's
/// attributes are below the class device (`device`: the PCI device; empty: the class device itself).
fn class(files: HostFiles<'_>, dir: &str, prefix: &str, attrs_sub: &str) -> Vec<Found> {
    let Ok(names) = files.names(dir) else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter(|n| {
            n.strip_prefix(prefix).is_some_and(|d| {
                !d.is_empty() && d.len() <= 4 && d.bytes().all(|b| b.is_ascii_digit())
            })
        })
        .filter_map(|n| {
            let pci_dir = format!("{dir}/{n}/device");
            // The PCI device's name is its address: the `device` link's last component.
            let bdf = files
                .link(&pci_dir)
                .and_then(|t| t.file_name().map(|f| f.to_string_lossy().into_owned()))
                .and_then(|b| gpu_diag::pci::normalize_bus_id(&b))?;
            let driver = files.link(format!("{pci_dir}/driver"))?;
            if driver.file_name()?.to_str()? != DRIVER {
                return None;
            }
            let attrs = if attrs_sub.is_empty() {
                format!("{dir}/{n}")
            } else {
                format!("{dir}/{n}/{attrs_sub}")
            };
            Some(Found {
                name: n,
                attrs,
                pci_dir,
                bdf,
            })
        })
        .collect()
}

/// Intel Gaudi devices, from habanalabs' sysfs: after NVIDIA's and AMD's in the probe's index.
pub struct Gaudi;

impl Vendor for Gaudi {
    /// `/dev/accel/accel<N>` (DRM's accel class, `drivers/accel/drm_accel.c`) and, before Linux 6.2,
    /// `/dev/hl<N>`.
    fn device_node(&self, path: &str) -> bool {
        path.starts_with("/dev/accel/accel")
            || path
                .strip_prefix("/dev/hl")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    fn name(&self) -> &'static str {
        "habanalabs"
    }

    fn present(&self, host_root: &Path) -> Option<bool> {
        Some(!discover(HostFiles::new(host_root)).is_empty())
    }

    fn read(&self, ask: &Ask<'_>) -> Result<Option<Share>, ProbeError> {
        let (gpus, hlml, process_scan) =
            read(ask.host_root, ask.first_index, ask.limit, ask.sections);
        Ok((!gpus.is_empty()).then_some(Share {
            gpus,
            node: match hlml {
                Some(r) => NodeWide::Hlml(Box::new(r)),
                None => NodeWide::Nothing,
            },
            process_scan,
        }))
    }
}

/// The host's Gaudi devices, indexed from `first_index` in PCI address order (empty where it has none),
/// libhlml's reading where the node has the library, and what the walk their processes came from did
/// not see (where read).
fn read(
    root: &Path,
    first_index: u32,
    limit: Duration,
    sections: Sections,
) -> (
    Vec<GpuFacts>,
    Option<Reading<HlmlFacts>>,
    Option<ScanGapsFacts>,
) {
    let found = discover(HostFiles::new(root));
    if found.is_empty() {
        return (Vec::new(), None, None);
    }
    // Read beside sysfs, under the same deadline; not in a watch's samples (one reading per probe).
    let start = Instant::now();
    let lib = if sections.watch {
        hlml::Started::None
    } else {
        hlml::start(root)
    };
    let mut gpus = read_devices(root, &found, first_index, limit);
    let mut gaps = None;
    if sections.processes {
        let (held, walked) = holders(HostFiles::new(root));
        gaps = Some(walked);
        for (g, f) in gpus.iter_mut().zip(&found) {
            if g.handle_error.is_some() {
                continue;
            }
            let node = device_node(&f.name);
            g.processes = Reading::Ok(
                held.iter()
                    .filter(|(_, n)| Some(n.as_str()) == node.as_deref())
                    .map(|(pid, _)| GpuProcessFacts {
                        pid: *pid,
                        kind: "compute".into(),
                        used_memory_bytes: None,
                        gpu_instance_id: None,
                        compute_instance_id: None,
                    })
                    .collect(),
            );
        }
    }
    let lib = match lib {
        hlml::Started::None => None,
        hlml::Started::Failed(r) => Some(r),
        hlml::Started::Running(p) => Some(p.finish(start + limit)),
    };
    if let Some(r) = &lib {
        hlml::join(&mut gpus, r);
    }
    (gpus, lib, gaps)
}

/// The device node a class device is opened through: `/dev/accel/accel<n>` (DRM's accel class,
/// `drivers/accel/drm_accel.c`: `accel/accel%d`), or `/dev/hl<n>` before Linux 6.2.
fn device_node(class_dev: &str) -> Option<String> {
    if let Some(n) = class_dev.strip_prefix("accel") {
        return Some(format!("/dev/accel/accel{n}"));
    }
    class_dev.strip_prefix("hl").map(|n| format!("/dev/hl{n}"))
}

/// Every (pid, device node) where a process holds a Gaudi device node open, from the host's
/// `proc/<pid>/fd` links (read, never followed), within the holder scan's bounds. The driver lets one
/// process at a time open a device for compute (`common/habanalabs_drv.c:232-236`: a second open is
/// `-EBUSY`), so the holder is the device's one compute process; the driver shows no memory per process.
fn holders(files: HostFiles<'_>) -> (Vec<(u32, String)>, ScanGapsFacts) {
    let is_node = |t: &str| {
        t.strip_prefix("/dev/accel/accel")
            .or_else(|| t.strip_prefix("/dev/hl"))
            .is_some_and(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut out = Vec::new();
    let walked = crate::host::held_fds(files, is_node, |pid, held| {
        let mine: std::collections::BTreeSet<String> = held.into_iter().map(|(_, t)| t).collect();
        out.extend(mine.into_iter().map(|n| (pid, n)));
    });
    (out, walked.gaps)
}

fn read_devices(root: &Path, found: &[Found], first_index: u32, limit: Duration) -> Vec<GpuFacts> {
    read_devices_with(root, found, first_index, limit, device)
}

/// [`read_devices`] with the reading of one device given (a test's one that never answers stands for
/// a hung firmware, which no file under a test's root can: the probe opens files non-blocking).
fn read_devices_with(
    root: &Path,
    found: &[Found],
    first_index: u32,
    limit: Duration,
    device: fn(HostFiles<'_>, &Found, u32) -> GpuFacts,
) -> Vec<GpuFacts> {
    let (tx, rx) = mpsc::channel();
    let (root_owned, list): (PathBuf, Vec<Found>) = (root.to_path_buf(), found.to_vec());
    let spawned = std::thread::Builder::new()
        .name("habanalabs".into())
        .spawn(move || {
            let files = HostFiles::new(&root_owned);
            for (i, f) in list.iter().enumerate() {
                if tx
                    .send((i, Box::new(device(files, f, first_index + i as u32))))
                    .is_err()
                {
                    return;
                }
            }
        });
    let mut out: Vec<Option<GpuFacts>> = vec![None; found.len()];
    let mut why = FieldError::with_message(
        FieldErrorKind::Timeout,
        format!(
            "the habanalabs sysfs did not answer within {} s: the device's firmware (CPU-CP) or the driver is hung",
            limit.as_secs()
        ),
    );
    match spawned {
        Err(e) => {
            why = FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("cannot start the habanalabs thread: {e}"),
            );
        }
        Ok(_) => {
            let deadline = Instant::now() + limit;
            while out.iter().any(Option::is_none) {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok((i, g)) => out[i] = Some(*g),
                    Err(_) => break,
                }
            }
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, g)| {
            // Discovery's identity stays (the class device, its PCI address): hung firmware is what
            // Intel's hard reset is for, and the reset is named by it.
            g.unwrap_or_else(|| GpuFacts {
                index: first_index + i as u32,
                vendor: GpuVendor::Intel,
                handle_error: Some(why.clone()),
                pci_bus_id: Reading::Ok(found[i].bdf.clone()),
                gaudi: Some(GaudiGpuFacts {
                    device: found[i].name.clone(),
                    device_type: Reading::Err(why.clone()),
                    status: Reading::Err(why.clone()),
                    hard_reset_count: Reading::Err(why.clone()),
                    ..GaudiGpuFacts::default()
                }),
                ..GpuFacts::default()
            })
        })
        .collect()
}

/// Longest text attribute kept: the firmware's version strings are at most a few dozen characters
/// (`cpucp_info`'s fields are fixed arrays), so more is a damaged or hostile file, cut.
const MAX_TEXT: usize = 256;

fn text(files: HostFiles<'_>, dir: &str, name: &str) -> Reading<String> {
    files
        .line(format!("{dir}/{name}"))
        .map(|t| gpu_diag::kernel_log::grammar::clip_to(&t, MAX_TEXT))
        .into()
}

/// The first of `names` that exists (an older kernel's name for the same attribute second).
fn text_any(files: HostFiles<'_>, dir: &str, names: &[&str]) -> Reading<String> {
    let mut last = Reading::Err(FieldError::with_message(
        FieldErrorKind::NotFound,
        "no file",
    ));
    for n in names {
        last = text(files, dir, n);
        if last.ok().is_some() {
            return last;
        }
    }
    last
}

/// A value that must fit a u32 (MHz, °C, mW), its text quoted in the error otherwise.
fn fit(r: Reading<u64>, what: &str) -> Reading<u32> {
    match r {
        Reading::Ok(v) => u32::try_from(v).map(Reading::Ok).unwrap_or_else(|_| {
            Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("{what}: {v} is out of range"),
            ))
        }),
        Reading::Err(e) => Reading::Err(e),
    }
}

/// The product as Intel names it, from the driver's ASIC type (`device_type_show`).
fn product(device_type: &str) -> Option<&'static str> {
    let t = device_type.trim().to_ascii_uppercase();
    Some(if t.starts_with("GAUDI3") {
        "Intel Gaudi 3"
    } else if t.starts_with("GAUDI2") {
        "Intel Gaudi 2"
    } else if t.starts_with("GAUDI") {
        "Intel Gaudi"
    } else if t == "GOYA" {
        "Habana Goya"
    } else {
        return None;
    })
}

fn device(files: HostFiles<'_>, f: &Found, index: u32) -> GpuFacts {
    let a = f.attrs.as_str();
    let device_type = text(files, a, "device_type");
    let name = match &device_type {
        Reading::Ok(t) => match product(t) {
            Some(p) => Reading::Ok(p.to_string()),
            None => Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!(
                    "device_type `{}` is not a Gaudi this probe knows",
                    t.chars().take(32).collect::<String>()
                ),
            )),
        },
        Reading::Err(e) => Reading::Err(e.clone()),
    };
    let pci_device_id = match files.line(format!("{}/device", f.pci_dir)) {
        Ok(t) => u32::from_str_radix(t.trim_start_matches("0x"), 16)
            .ok()
            .filter(|d| *d <= 0xffff)
            .map(|d| Reading::Ok((d << 16) | HABANA_VENDOR))
            .unwrap_or_else(|| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    "the PCI device id is not a 16-bit hex number",
                ))
            }),
        Err(e) => Reading::Err(e),
    };
    let max_power_mw: Reading<u64> = files.parse(format!("{a}/max_power"));
    let hwmon = hwmon(files, &f.pci_dir);
    let not_in_sysfs = |what: &str| {
        FieldError::with_message(
            FieldErrorKind::NotSupported,
            format!(
                "the habanalabs driver shows no {what} in sysfs (HLML and hl-smi read it from the firmware)"
            ),
        )
    };
    GpuFacts {
        index,
        vendor: GpuVendor::Intel,
        name,
        uuid: Reading::Err(not_in_sysfs("UUID")),
        serial: Reading::Err(not_in_sysfs("serial number")),
        memory: Reading::Err(not_in_sysfs("memory size or use")),
        board_part_number: hwmon.card.clone(),
        pci_bus_id: Reading::Ok(f.bdf.clone()),
        pci_device_id,
        clocks: ClockFacts {
            sm_mhz: fit(
                files.parse(format!("{a}/clk_cur_freq_mhz")),
                "clk_cur_freq_mhz",
            ),
            sm_max_mhz: fit(
                files.parse(format!("{a}/clk_max_freq_mhz")),
                "clk_max_freq_mhz",
            ),
            ..ClockFacts::default()
        },
        power: PowerFacts {
            usage_mw: hwmon.power_mw,
            enforced_limit_mw: fit(max_power_mw.clone(), "max_power"),
            ..PowerFacts::default()
        },
        thermal: ThermalFacts {
            gpu_temp_c: hwmon.temp_c,
            ..ThermalFacts::default()
        },
        numa_node: files.parse(format!("{}/numa_node", f.pci_dir)),
        gaudi: Some(GaudiGpuFacts {
            device: f.name.clone(),
            device_type,
            status: text(files, a, "status"),
            hard_reset_count: files.parse(format!("{a}/hard_reset_cnt")),
            soft_reset_count: files.parse(format!("{a}/soft_reset_cnt")),
            module_id: files.parse(format!("{a}/module_id")),
            security_enabled: match files.parse::<u8>(format!("{a}/security_enabled")) {
                Reading::Ok(v) => Reading::Ok(v != 0),
                Reading::Err(e) => Reading::Err(e),
            },
            max_power_mw,
            firmware: GaudiFirmwareFacts {
                cpucp: text_any(files, a, &["cpucp_ver", "armcp_ver"]),
                cpucp_kernel: text_any(files, a, &["cpucp_kernel_ver", "armcp_kernel_ver"]),
                uboot: text(files, a, "uboot_ver"),
                preboot_btl: text(files, a, "preboot_btl_ver"),
                fuse: text(files, a, "fuse_ver"),
                thermal: text(files, a, "thermal_ver"),
                fw_os: text(files, a, "fw_os_ver"),
                cpld: text(files, a, "cpld_ver"),
                vrm: text(files, a, "vrm_ver"),
            },
        }),
        ..GpuFacts::default()
    }
}

struct Hwmon {
    card: Reading<String>,
    temp_c: Reading<u32>,
    power_mw: Reading<u32>,
}

/// The device's hwmon (on the PCI device, named by the card): `temp1_input` in millidegrees,
/// `power1_input` in microwatts.
fn hwmon(files: HostFiles<'_>, pci_dir: &str) -> Hwmon {
    let dir = match files.names(format!("{pci_dir}/hwmon")).map(|names| {
        names
            .into_iter()
            .find(|n| n.starts_with("hwmon"))
            .map(|n| format!("{pci_dir}/hwmon/{n}"))
    }) {
        Ok(Some(d)) => d,
        Ok(None) | Err(_) => {
            let e = FieldError::with_message(FieldErrorKind::NotFound, "the device has no hwmon");
            return Hwmon {
                card: Reading::Err(e.clone()),
                temp_c: Reading::Err(e.clone()),
                power_mw: Reading::Err(e),
            };
        }
    };
    let scaled = |file: &str, div: i64| -> Reading<u32> {
        match files.parse::<i64>(format!("{dir}/{file}")) {
            Reading::Ok(v) => fit(Reading::Ok((v.max(0) / div) as u64), file),
            Reading::Err(e) => Reading::Err(e),
        }
    };
    Hwmon {
        card: text(files, &dir, "name"),
        temp_c: scaled("temp1_input", 1000),
        power_mw: scaled("power1_input", 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_by_asic_type() {
        assert_eq!(product("GAUDI2B\n"), Some("Intel Gaudi 2"));
        assert_eq!(product("GAUDI SEC"), Some("Intel Gaudi"));
        assert_eq!(product("GAUDI3"), Some("Intel Gaudi 3"));
        assert_eq!(product("NOPE"), None);
    }

    /// A device whose sysfs never answers (its firmware hung) past the deadline keeps discovery's
    /// identity, its class device and PCI address, with the timeout as its error; the one that answered
    /// is read.
    #[test]
    fn a_hung_device_keeps_discoverys_identity() {
        fn hangs_on_the_second(files: HostFiles<'_>, f: &Found, index: u32) -> GpuFacts {
            if f.name == "accel1" {
                loop {
                    std::thread::park();
                }
            }
            let _ = files;
            GpuFacts {
                index,
                vendor: GpuVendor::Intel,
                pci_bus_id: Reading::Ok(f.bdf.clone()),
                ..GpuFacts::default()
            }
        }
        let found: Vec<Found> = (0..2)
            .map(|i| Found {
                name: format!("accel{i}"),
                attrs: format!("sys/class/accel/accel{i}/device"),
                pci_dir: format!("sys/bus/pci/devices/0000:{:02x}:00.0", 0x19 + i),
                bdf: format!("0000:{:02x}:00.0", 0x19 + i),
            })
            .collect();
        let root = Path::new("/nonexistent");
        let got = read_devices_with(
            root,
            &found,
            4,
            Duration::from_millis(300),
            hangs_on_the_second,
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].handle_error.is_none());
        let hung = &got[1];
        assert_eq!(hung.index, 5);
        let e = hung.handle_error.as_ref().expect("a timeout");
        assert_eq!(e.error, FieldErrorKind::Timeout);
        assert_eq!(hung.pci_bus_id, Reading::Ok("0000:1a:00.0".to_string()));
        let g = hung.gaudi.as_ref().expect("the class device");
        assert_eq!(g.device, "accel1");
        assert_eq!(
            g.status.err().map(|e| e.error),
            Some(FieldErrorKind::Timeout)
        );
    }
}
