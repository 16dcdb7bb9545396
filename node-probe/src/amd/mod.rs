//! The AMD source: AMD Instinct GPUs read from the host's amdgpu sysfs, KFD topology, debugfs and
//! `/proc`; then `libamd_smi` where the node has it (`smi.rs`, read in a child process by
//! `smi_child.rs`). One file per subject: `discover.rs` (the PCI functions, bound or not),
//! `identity.rs`, `kfd.rs`, `partitions.rs`, `hwmon.rs`, `gpu_metrics.rs` (the SMU's binary table),
//! `pcie.rs`, `ras.rs`, `bad_pages.rs`, `xgmi.rs`, `processes.rs`; `gpu.rs` assembles one GPU. Every
//! file is named from the host's `/` and resolved inside the host root ([`HostFiles`]), read capped;
//! whatever cannot be read is an inline error on its field. Formats and sources: the project's AMD
//! reference (`amdgpu_*.c`, `kfd_topology.c`, `kgd_pp_interface.h`, ROCm's device plugin).
//!
//! Reading a GPU's SMU-backed files (`gpu_metrics`, hwmon) can block while its firmware hangs, so the
//! GPUs are read on their own thread under the same deadline as NVML: a GPU not read in time is one
//! with a `timeout` handle error, and the rest of the node still answers.

mod bad_pages;
mod discover;
mod gpu;
mod gpu_metrics;
mod hwmon;
mod identity;
mod kfd;
mod partitions;
mod pcie;
mod processes;
mod ras;
pub mod smi;
pub mod smi_child;
mod xgmi;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gpu_diag::contract::ProbeError;
use gpu_diag::facts::{
    AmdDriverFacts, AmdThrottleSampleFacts, FieldError, FieldErrorKind, GpuFacts, GpuVendor,
    Reading, ScanGapsFacts, Sections,
};

use crate::host::files::HostFiles;
use crate::vendor::{Ask, NodeWide, Share, Vendor};

/// Between the two reads of the throttle residencies: long enough for the SMU to accumulate (it
/// refreshes its table every millisecond or so), short enough not to slow a probe.
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);

/// What the AMD source read.
struct AmdNode {
    driver: AmdDriverFacts,
    /// In PCI address order, indexed from `first_index`.
    gpus: Vec<GpuFacts>,
    /// What the walk the processes came from did not see (where read).
    process_scan: Option<ScanGapsFacts>,
}

/// AMD Instinct GPUs, from amdgpu's sysfs: after NVIDIA's in the probe's index.
pub struct Amd;

impl Vendor for Amd {
    /// `/dev/kfd` and `/dev/dri/{renderD,card}<N>` (where the device plugin and CDI specs mount them).
    fn device_node(&self, path: &str) -> bool {
        path == "/dev/kfd"
            || path
                .strip_prefix("/dev/dri/")
                .is_some_and(|n| n.starts_with("renderD") || n.starts_with("card"))
    }

    fn name(&self) -> &'static str {
        "amdgpu"
    }

    /// The host has amdgpu PCI functions (an AMD node, or one with AMD GPUs beside NVIDIA's).
    fn present(&self, host_root: &Path) -> Option<bool> {
        Some(!discover::discover(HostFiles::new(host_root)).is_empty())
    }

    /// A node with AMD GPU functions but none bound to amdgpu still shares its driver's facts.
    fn read(&self, ask: &Ask<'_>) -> Result<Option<Share>, ProbeError> {
        Ok(
            read(ask.host_root, ask.sections, ask.first_index, ask.limit).map(|a| Share {
                gpus: a.gpus,
                node: NodeWide::Amd(Box::new(a.driver)),
                process_scan: a.process_scan,
            }),
        )
    }
}

/// The host's AMD GPUs, or `None` where it has no AMD GPU function and no amdgpu module (a node that
/// answers as before AMD support).
fn read(root: &Path, sections: Sections, first_index: u32, limit: Duration) -> Option<AmdNode> {
    let files = HostFiles::new(root);
    let found = discover::discover(files);
    if found.is_empty() {
        return None;
    }
    let mut driver = driver(files, found.functions);
    // Read beside sysfs, under the same deadline; not in a watch's samples (one reading per probe).
    let start = Instant::now();
    let smi = if sections.watch {
        smi::Started::None
    } else {
        smi::start(root)
    };
    let (gpus, process_scan) = read_gpus(root, &found.bound, sections, first_index, limit, &driver);
    driver.amd_smi = match smi {
        smi::Started::None => None,
        smi::Started::Failed(r) => Some(r),
        smi::Started::Running(p) => Some(p.finish(start + limit)),
    };
    Some(AmdNode {
        driver,
        gpus,
        process_scan,
    })
}

fn driver(
    files: HostFiles<'_>,
    functions: Reading<Vec<gpu_diag::facts::AmdPciFunctionFacts>>,
) -> AmdDriverFacts {
    let p = "sys/module/amdgpu/parameters";
    AmdDriverFacts {
        version: files.line("sys/module/amdgpu/version").into(),
        ras_enable: files.parse(format!("{p}/ras_enable")),
        ras_mask: files.parse(format!("{p}/ras_mask")),
        bad_page_threshold_param: files.parse(format!("{p}/bad_page_threshold")),
        pci_functions: functions,
        amd_smi: None,
        rocm_version: files.line("opt/rocm/.info/version").into(),
    }
}

enum Msg {
    Gpu(usize, Box<GpuFacts>),
    Sample(usize, AmdThrottleSampleFacts),
    Gaps(ScanGapsFacts),
}

fn read_gpus(
    root: &Path,
    bound: &[String],
    sections: Sections,
    first_index: u32,
    limit: Duration,
    driver: &AmdDriverFacts,
) -> (Vec<GpuFacts>, Option<ScanGapsFacts>) {
    let (tx, rx) = mpsc::channel();
    let (root_owned, bdfs, param): (PathBuf, Vec<String>, Option<i64>) = (
        root.to_path_buf(),
        bound.to_vec(),
        driver.bad_page_threshold_param.get(),
    );
    let spawned = std::thread::Builder::new()
        .name("amdgpu".into())
        .spawn(move || {
            let files = HostFiles::new(&root_owned);
            let kfd = kfd::read(files);
            let xcps = partitions::xcps(files);
            let uses = sections.processes.then(|| {
                let (uses, gaps) = processes::scan(files);
                // Sent first: the walk is done before any GPU is read.
                let _ = tx.send(Msg::Gaps(gaps));
                uses
            });
            let node = gpu::NodeView {
                kfd: &kfd,
                xcps: &xcps,
                uses: uses.as_deref(),
                bad_page_threshold_param: param,
            };
            for (i, bdf) in bdfs.iter().enumerate() {
                let g = gpu::read(files, bdf, first_index + i as u32, sections, &node);
                if tx.send(Msg::Gpu(i, Box::new(g))).is_err() {
                    return;
                }
            }
            if sections.telemetry && !sections.watch {
                // A residency that grew between two reads is a throttle active now.
                std::thread::sleep(SAMPLE_INTERVAL);
                for (i, bdf) in bdfs.iter().enumerate() {
                    let dir = format!("sys/bus/pci/devices/{bdf}");
                    if let Some(s) = gpu_metrics::sample(files, &dir)
                        && tx.send(Msg::Sample(i, s)).is_err()
                    {
                        return;
                    }
                }
            }
        });
    let mut gpus: Vec<Option<GpuFacts>> = vec![None; bound.len()];
    let mut gaps = None;
    let mut why_missing = FieldError::with_message(
        FieldErrorKind::Timeout,
        format!(
            "amdgpu's sysfs did not answer within {} s: the GPU's firmware (SMU) or the driver is hung",
            limit.as_secs()
        ),
    );
    if let Err(e) = spawned {
        why_missing = FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("cannot start the amdgpu thread: {e}"),
        );
    } else {
        let deadline = Instant::now() + limit;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Msg::Gpu(i, g)) => gpus[i] = Some(*g),
                Ok(Msg::Gaps(g)) => gaps = Some(g),
                Ok(Msg::Sample(i, s)) => {
                    if let Some(Reading::Ok(m)) = gpus[i]
                        .as_mut()
                        .and_then(|g| g.amd.as_mut())
                        .map(|a| &mut a.metrics)
                    {
                        m.throttle_samples.push(s);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    why_missing = FieldError::with_message(
                        FieldErrorKind::Unknown,
                        "the amdgpu reader stopped unexpectedly (see stderr)",
                    );
                    break;
                }
            }
        }
    }
    let gpus = gpus
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            g.unwrap_or_else(|| GpuFacts {
                index: first_index + i as u32,
                vendor: GpuVendor::Amd,
                handle_error: Some(why_missing.clone()),
                pci_bus_id: Reading::Ok(bound[i].clone()),
                ..GpuFacts::default()
            })
        })
        .collect();
    (gpus, gaps)
}
