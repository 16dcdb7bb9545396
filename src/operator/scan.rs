//! The holder scan's answer on one GPU, one judgment for every path that loads or acts on a GPU: the
//! resets of AMD GPUs and Gaudis, and the ROCm Validation Suite's choice of GPUs (`crate::dcgm::select`).
//! The scan (`/proc/*/fd` links to the GPUs' device nodes, with KFD's own process list) answers yes (a
//! process holds it), no (every process was read and none does) or unknown. Unknown, never no, is what a
//! process the scan did not see leaves: an fd table the kernel refused (EACCES/EPERM: an LSM, ptrace
//! access rules; proc(5)), one read only in part or a process not read at all (the scan's bounds), and
//! for an AMD GPU a `/dev/kfd` holder whose GPU KFD does not name.
//!
//! NVIDIA GPUs are not judged here: NVML lists every process with a context on a GPU from the driver
//! itself, whatever the scan can read, and a holder of `/dev/nvidia<N>` without a context (DCGM's own host
//! engine, an exporter) loads nothing. The NVIDIA reset reads the scan itself (`reset::in_use`), because
//! `nvidia-smi -r` refuses an open device node.

use crate::facts::{DeviceHoldersFacts, GpuFacts, GpuVendor};

/// What the scan says of one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// These processes hold it, in words.
    Yes(Vec<String>),
    /// Every process was read, and none holds it.
    No,
    /// No process the scan read holds it, but these were not seen (one item each).
    Unknown(Vec<String>),
}

/// What the scan did not see, one item each: such a process may hold any GPU, so it is unknown, never
/// free. A process that exited meanwhile holds nothing and is not counted.
pub fn gaps(scan: &DeviceHoldersFacts) -> Vec<String> {
    let pids = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let mut out = Vec::new();
    if !scan.denied_pids.is_empty() {
        out.push(format!(
            "the open files of pid {} could not be read (permission denied: an LSM or ptrace restriction), \
             so what they hold is not known",
            pids(&scan.denied_pids)
        ));
    }
    if !scan.fd_tables_cut.is_empty() {
        out.push(format!(
            "the open files of pid {} were read only in part (more than the scan reads)",
            pids(&scan.fd_tables_cut)
        ));
    }
    if scan.pids_not_scanned > 0 {
        out.push(format!(
            "{} process(es) were not scanned (more than the scan reads)",
            scan.pids_not_scanned
        ));
    }
    out
}

/// The device nodes the scan answers for, as the answers name them.
pub fn nodes_of(g: &GpuFacts) -> &'static str {
    match g.vendor {
        GpuVendor::Amd => "/dev/kfd and /dev/dri",
        GpuVendor::Intel => "/dev/accel",
        GpuVendor::Neuron => "/dev/neuron*",
        _ => "/dev/nvidia*",
    }
}
