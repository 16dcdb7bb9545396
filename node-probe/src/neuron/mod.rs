//! The AWS Neuron source: Trainium and Inferentia devices the neuron driver runs, read from the host's
//! sysfs. The driver (aws-neuron/aws-neuron-driver, commit fca19f7d) creates one class device per device,
//! `neuron<N>` of class `neuron_device` (neuron_cdev.c:3109, :3262), with no parent device
//! (neuron_cdev.c:3069: `device_create(neuron_dev_class, NULL, …)`), so the kernel puts it under
//! `/sys/devices/virtual/neuron_device/` and it has no `device` link to its PCI function. `<N>` is the
//! driver's device index, which the firmware's routing id sets (`neuron_pci_get_device_id_v3`,
//! v3/neuron_dhal_v3.c:1349), not the PCI order: a device's PCI address is therefore known here only on a
//! node with one device, and `neuron-ls` shows the pairing elsewhere.
//!
//! Attributes: `reset`, `core_count`, `connected_devices` (neuron_cdev.c:2973-3037) and the metrics tree
//! (`info/`, `stats/hardware/`, `neuron_core<n>/stats/…`, neuron_sysfs_metrics.c). Reading `stats/hardware/*`
//! and `info/serial_number` asks the device's firmware (`fw_io_ecc_read`, `fw_io_serial_number_read`), which
//! can block while it hangs: the devices are read on their own thread under the probe's deadline, and a
//! device not read in time is one with a `timeout` handle error. What cannot be read is an inline error on
//! its field.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_diag::contract::ProbeError;
use gpu_diag::facts::{
    FieldError, FieldErrorKind, GpuFacts, GpuProcessFacts, GpuVendor, NeuronCoreFacts,
    NeuronGpuFacts, NeuronHardwareFacts, Reading, ScanGapsFacts, neuron_product,
};

use crate::host::files::HostFiles;
use crate::vendor::{Ask, NodeWide, Share, Vendor};

/// AMZN_VENDOR_ID (neuron_device.h:35).
const AMAZON_VENDOR: u32 = 0x1d0f;
/// The class the driver creates (neuron_cdev.c:3262).
const CLASS: &str = "sys/class/neuron_device";
/// The driver's PCI driver name (neuron_pci.c:370), the directory of its bound functions.
const PCI_DRIVER: &str = "sys/bus/pci/drivers/neuron-driver";

/// A class device name `neuron<N>`: its index.
fn index_of(name: &str) -> Option<u32> {
    let d = name.strip_prefix("neuron")?;
    (!d.is_empty() && d.len() <= 4 && d.bytes().all(|b| b.is_ascii_digit()))
        .then(|| d.parse().ok())
        .flatten()
}

/// The host's Neuron class devices in the driver's index order (the class's own attributes, `node_id`,
/// `server_id`, `ultraserver_mode`, are not devices).
fn discover(files: HostFiles<'_>) -> Vec<(u32, String)> {
    let mut found: Vec<(u32, String)> = files
        .names(CLASS)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| Some((index_of(&n)?, n)))
        .collect();
    found.sort();
    found
}

/// The PCI functions bound to the driver, with their device ids.
fn bound_functions(files: HostFiles<'_>) -> Vec<(String, Option<u16>)> {
    let mut out: Vec<(String, Option<u16>)> = files
        .names(PCI_DRIVER)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| gpu_diag::pci::normalize_bus_id(&n))
        .map(|bdf| {
            let id = files
                .line(format!("sys/bus/pci/devices/{bdf}/device"))
                .ok()
                .and_then(|t| u16::from_str_radix(t.trim_start_matches("0x"), 16).ok());
            (bdf, id)
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// What the node's PCI functions say of every device: the address where the node has exactly one, the
/// device id where they all carry one (the driver runs one architecture per host: `ndhal` is global,
/// neuron_dhal.c).
struct PciView {
    only_bdf: Option<String>,
    device_id: Reading<u32>,
    functions: usize,
}

fn pci_view(files: HostFiles<'_>) -> PciView {
    let f = bound_functions(files);
    let ids: std::collections::BTreeSet<Option<u16>> = f.iter().map(|(_, id)| *id).collect();
    let device_id = match ids.iter().next() {
        Some(Some(id)) if ids.len() == 1 => Reading::Ok((u32::from(*id) << 16) | AMAZON_VENDOR),
        _ if f.is_empty() => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "no PCI function is bound to neuron-driver",
        )),
        _ => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            "the PCI functions bound to neuron-driver do not all carry one readable device id",
        )),
    };
    PciView {
        only_bdf: (f.len() == 1).then(|| f[0].0.clone()),
        device_id,
        functions: f.len(),
    }
}

/// AWS Neuron devices, from the neuron driver's sysfs: after NVIDIA's, AMD's and Gaudi's in the index.
pub struct Neuron;

impl Vendor for Neuron {
    /// `/dev/neuron<N>` (neuron_cdev.c:3109: `"neuron%d"` of the device index).
    fn device_node(&self, path: &str) -> bool {
        path.strip_prefix("/dev/").and_then(index_of).is_some()
    }

    fn name(&self) -> &'static str {
        "neuron"
    }

    fn present(&self, host_root: &Path) -> Option<bool> {
        Some(!discover(HostFiles::new(host_root)).is_empty())
    }

    fn read(&self, ask: &Ask<'_>) -> Result<Option<Share>, ProbeError> {
        let (gpus, process_scan) = read(
            ask.host_root,
            ask.first_index,
            ask.limit,
            ask.sections.processes,
        );
        Ok((!gpus.is_empty()).then_some(Share {
            gpus,
            node: NodeWide::Nothing,
            process_scan,
        }))
    }
}

/// The host's Neuron devices, and what the walk their processes came from did not see (where read).
fn read(
    root: &Path,
    first_index: u32,
    limit: Duration,
    processes: bool,
) -> (Vec<GpuFacts>, Option<ScanGapsFacts>) {
    let files = HostFiles::new(root);
    let found = discover(files);
    if found.is_empty() {
        return (Vec::new(), None);
    }
    let pci = pci_view(files);
    let mut gpus = read_devices(root, &found, first_index, limit, &pci);
    let mut gaps = None;
    if processes {
        let (held, walked) = holders(files);
        gaps = Some(walked);
        for (g, (_, name)) in gpus.iter_mut().zip(&found) {
            if g.handle_error.is_some() {
                continue;
            }
            let node = format!("/dev/{name}");
            g.processes = Reading::Ok(
                held.iter()
                    .filter(|(_, n)| *n == node)
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
    (gpus, gaps)
}

/// Every (pid, device node) where a process holds `/dev/neuron<N>` open, from the host's `proc/<pid>/fd`
/// links (read, never followed), within the holder scan's bounds. The driver counts a device's opens
/// (`open_count`, neuron_cdev.c:2985) and shows no memory per process in sysfs.
fn holders(files: HostFiles<'_>) -> (Vec<(u32, String)>, ScanGapsFacts) {
    let is_node = |t: &str| t.strip_prefix("/dev/").and_then(index_of).is_some();
    let mut out = Vec::new();
    let walked = crate::host::held_fds(files, is_node, |pid, held| {
        let mine: std::collections::BTreeSet<String> = held.into_iter().map(|(_, t)| t).collect();
        out.extend(mine.into_iter().map(|n| (pid, n)));
    });
    (out, walked.gaps)
}

fn read_devices(
    root: &Path,
    found: &[(u32, String)],
    first_index: u32,
    limit: Duration,
    pci: &PciView,
) -> Vec<GpuFacts> {
    let (tx, rx) = mpsc::channel();
    let (root_owned, list): (PathBuf, Vec<(u32, String)>) = (root.to_path_buf(), found.to_vec());
    let spawned = std::thread::Builder::new()
        .name("neuron".into())
        .spawn(move || {
            let files = HostFiles::new(&root_owned);
            for (i, (_, name)) in list.iter().enumerate() {
                if tx.send((i, Box::new(device(files, name)))).is_err() {
                    return;
                }
            }
        });
    let mut out: Vec<Option<DeviceRead>> = vec![None; found.len()];
    let mut why = FieldError::with_message(
        FieldErrorKind::Timeout,
        format!(
            "the neuron driver's sysfs did not answer within {} s: the device's firmware or the driver is hung",
            limit.as_secs()
        ),
    );
    match spawned {
        Err(e) => {
            why = FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("cannot start the neuron thread: {e}"),
            );
        }
        Ok(_) => {
            let deadline = Instant::now() + limit;
            while out.iter().any(Option::is_none) {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok((i, d)) => out[i] = Some(*d),
                    Err(_) => break,
                }
            }
        }
    }
    let pci_bus_id = || match &pci.only_bdf {
        Some(b) if found.len() == 1 => Reading::Ok(b.clone()),
        _ => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            format!(
                "the neuron driver's class device has no PCI parent and numbers devices by the firmware's \
                 routing id ({} PCI function(s) bound to neuron-driver): `neuron-ls` shows each device's address",
                pci.functions
            ),
        )),
    };
    out.into_iter()
        .enumerate()
        .map(|(i, d)| {
            let index = first_index + i as u32;
            let Some(DeviceRead {
                device_name,
                neuron,
                serial,
            }) = d
            else {
                return GpuFacts {
                    index,
                    vendor: GpuVendor::Neuron,
                    handle_error: Some(why.clone()),
                    pci_bus_id: pci_bus_id(),
                    pci_device_id: pci.device_id.clone(),
                    ..GpuFacts::default()
                };
            };
            let name = match (&device_name, pci.device_id.ok()) {
                (Reading::Ok(n), _) => Reading::Ok(format!("AWS {n}")),
                (Reading::Err(_), Some(id)) => match neuron_product((id >> 16) as u16) {
                    Some(p) => Reading::Ok(p.to_string()),
                    None => device_name.clone(),
                },
                (Reading::Err(_), None) => device_name.clone(),
            };
            let not_in_sysfs = |what: &str| {
                FieldError::with_message(
                    FieldErrorKind::NotSupported,
                    format!("the neuron driver shows no {what} in sysfs (`neuron-ls` and `neuron-monitor` read it)"),
                )
            };
            GpuFacts {
                index,
                vendor: GpuVendor::Neuron,
                name,
                serial,
                uuid: Reading::Err(not_in_sysfs("UUID")),
                memory: Reading::Err(not_in_sysfs("device memory size")),
                pci_bus_id: pci_bus_id(),
                pci_device_id: pci.device_id.clone(),
                neuron: Some(neuron),
                ..GpuFacts::default()
            }
        })
        .collect()
}

/// Longest text attribute kept: the driver's strings are at most `NEURON_ARCH_MAX_LEN` (20) characters
/// (neuron_sysfs_metrics.c:20) and the serial 16 hex digits; more is a damaged or hostile file, cut.
const MAX_TEXT: usize = 64;

fn text(files: HostFiles<'_>, rel: String) -> Reading<String> {
    files
        .line(rel)
        .map(|t| gpu_diag::kernel_log::grammar::clip_to(&t, MAX_TEXT))
        .into()
}

/// `connected_devices`: `"%d, "` per peer but the last, `"%d\n"` for the last, `"\n"` for none
/// (neuron_cdev.c:3018-3028).
fn connected(files: HostFiles<'_>, rel: String) -> Reading<Vec<u32>> {
    match files.line(rel) {
        Err(e) => Reading::Err(e),
        Ok(t) if t.is_empty() => Reading::Ok(Vec::new()),
        Ok(t) => t
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<Vec<_>, _>>()
            .map(Reading::Ok)
            .unwrap_or_else(|_| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!(
                        "connected_devices: `{}` is not a list of device indexes",
                        t.chars().take(32).collect::<String>()
                    ),
                ))
            }),
    }
}

/// One device's class directory, read.
#[derive(Clone)]
struct DeviceRead {
    /// `info/architecture/device_name` (`Trainium2`): the product, in the driver's word.
    device_name: Reading<String>,
    neuron: NeuronGpuFacts,
    /// `info/serial_number`.
    serial: Reading<String>,
}

fn device(files: HostFiles<'_>, name: &str) -> DeviceRead {
    let d = format!("{CLASS}/{name}");
    let arch = format!("{d}/info/architecture");
    let hw = format!("{d}/stats/hardware");
    // `serial_number`: `%016llx`, or an empty line when the firmware did not answer
    // (neuron_sysfs_metrics.c:365-376).
    let serial = match text(files, format!("{d}/info/serial_number")) {
        Reading::Ok(s) if s.is_empty() => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            "the driver printed no serial number (its firmware did not answer)",
        )),
        r => r,
    };
    let mut cores: Vec<u32> = files
        .names(&d)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.strip_prefix("neuron_core")?.parse().ok())
        .collect();
    cores.sort_unstable();
    let device_name = text(files, format!("{arch}/device_name"));
    let facts = NeuronGpuFacts {
        device: name.to_string(),
        device_state: files.parse(format!("{d}/reset")),
        core_count: files.parse(format!("{d}/core_count")),
        connected_devices: connected(files, format!("{d}/connected_devices")),
        arch_type: text(files, format!("{arch}/arch_type")),
        instance_type: text(files, format!("{arch}/instance_type")),
        device_name: device_name.clone(),
        hardware: NeuronHardwareFacts {
            sram_ecc_uncorrected: files.parse(format!("{hw}/sram_ecc_uncorrected")),
            mem_ecc_uncorrected: files.parse(format!("{hw}/mem_ecc_uncorrected")),
            mem_ecc_repairable_uncorrected: files
                .parse(format!("{hw}/mem_ecc_repairable_uncorrected")),
        },
        cores: cores
            .into_iter()
            .map(|c| {
                let status = format!("{d}/neuron_core{c}/stats/status");
                let total = |n: &str| files.parse(format!("{status}/{n}/total"));
                NeuronCoreFacts {
                    core: c,
                    hw_error: total("hw_error"),
                    hbm_ue_error: total("hw_hbm_ue_error"),
                    nc_ue_error: total("hw_nc_ue_error"),
                    dma_abort_error: total("hw_dma_abort_error"),
                    repairable_hbm_ue_error: total("hw_repairable_hbm_ue_error"),
                    reset_fail_count: files.parse(format!(
                        "{d}/neuron_core{c}/stats/other_info/reset_fail_count/total"
                    )),
                    reset_req_count: files.parse(format!(
                        "{d}/neuron_core{c}/stats/other_info/reset_req_count/total"
                    )),
                }
            })
            .collect(),
    };
    DeviceRead {
        device_name,
        neuron: facts,
        serial,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_device_names() {
        assert_eq!(index_of("neuron0"), Some(0));
        assert_eq!(index_of("neuron15"), Some(15));
        assert_eq!(index_of("node_id"), None);
        assert_eq!(index_of("neuron"), None);
        assert_eq!(index_of("neuron_core0"), None);
    }
}
