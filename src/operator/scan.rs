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
//! `nvidia-smi -r` refuses an open device node; what the scan did not see ([`gaps`]) is unknown there too.

use crate::facts::{DeviceHoldersFacts, GpuFacts};

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
    crate::analysis::processes::gap_words(&scan.gaps())
}

/// The device nodes the scan answers for, as the answers name them.
pub fn nodes_of(g: &GpuFacts) -> &'static str {
    g.vendor.info().scanned_nodes
}
