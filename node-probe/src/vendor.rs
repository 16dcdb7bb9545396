//! The vendor seam: what every GPU vendor gives a node's reading, stated once. NVIDIA (`nvml/`), AMD
//! (`amd/`) and Intel Gaudi (`gaudi/`) each implement [`Vendor`] in their own module;
//! `source::VENDORS` lists them in index order and `source::collect` joins what they read, so a new
//! vendor is one impl and one line there. (The list lives in `source.rs`, not here: this file sits
//! below the vendors' modules in `tests/support/import_layers`, so they can name the trait.)
//!
//! What else a vendor provides, and where each piece goes (ARCHITECTURE.md, "A vendor", says more):
//! - its record: `GpuFacts` (`src/facts/gpu.rs`), a `GpuVendor` and only the fields it really reads;
//!   what only it has, its own section (`src/facts/amd.rs`, `src/facts/gaudi.rs`); a node-wide section
//!   is one [`NodeWide`] variant;
//! - host files only through `host/` (capped, under the host root); its processes, who holds its
//!   device files (`amd/processes.rs`, `host/device_nodes.rs`);
//! - sampling for `watch`: `Sampler::facts` in `watch.rs` (NVML through its session, AMD per sample);
//! - health and incidents: `src/analysis/` (`amd/`, `gaudi.rs`), `src/incident/rules.rs`;
//! - kernel log: a grammar (`src/kernel_log/grammar/`) and a catalog (`src/kernel_log/*_catalog.rs`);
//! - active diagnostic: the library's reader beside `src/dcgm/` and `src/rvs/`, run from `dcgm.rs` and
//!   `rvs.rs` here;
//! - reset: preflight and verification in `src/operator/reset/` (`amd.rs`), run from `operator.rs` here;
//! - Kubernetes: `launcher/src/cluster/` (`amd.rs`, `gaudi.rs`, `gpu_resources.rs`),
//!   `src/attribution/device.rs`, `src/history/signals.rs`;
//! - tests: a fake host tree (`tests/support/amdgpu_tree.rs`, `gaudi_tree.rs`) and scenarios.

use std::path::Path;
use std::time::Duration;

use gpu_diag::contract::ProbeError;
use gpu_diag::facts::{
    AmdDriverFacts, GpuFacts, HlmlFacts, NodeFacts, Reading, ScanGapsFacts, Sections,
};

use crate::options::KernelLogArgs;

/// One GPU vendor's reader. `Sync`: the list of vendors is a `static`.
pub trait Vendor: Sync {
    /// The node's `source` when this vendor's devices are the node's first (`nvml`, `amdgpu`,
    /// `habanalabs`); the base a vendor reads (NVML's) carries its own.
    fn name(&self) -> &'static str;

    /// Whether the host has this vendor's devices, from a cheap look at its files (no library loaded,
    /// no firmware asked); `None` where only a read can tell (NVML).
    fn present(&self, _host_root: &Path) -> Option<bool> {
        None
    }

    /// Its devices, numbered from `ask.first_index`, read within `ask.limit`: a device not read in
    /// time is one with a `timeout` handle error, never a probe that waits. `Ok(None)`: none on this
    /// node. `Err`: its library could not read the node (NVML missing or refusing); the node's
    /// `driver` says so when another vendor's devices answer, and it is the probe's error when none do.
    fn read(&self, ask: &Ask<'_>) -> Result<Option<Share>, ProbeError>;

    /// Whether `path`, a device node as a process's fd link names it (in the holder's own mount
    /// namespace), is one of this vendor's: the holder scan (`host::read_device_holders`) lists such
    /// processes as the devices' holders.
    fn device_node(&self, path: &str) -> bool;
}

/// What a reading asks of every vendor.
pub struct Ask<'a> {
    pub host_root: &'a Path,
    /// `--driver-root` (NVIDIA's library is looked for there first).
    pub driver_root: Option<&'a Path>,
    /// `--nvml-lib`.
    pub nvml_lib: Option<&'a Path>,
    pub sections: Sections,
    pub log: &'a KernelLogArgs,
    /// After every device of the vendors before it in the list.
    pub first_index: u32,
    /// `--nvml-timeout`: one deadline for every vendor's devices.
    pub limit: Duration,
}

/// A vendor's part of the node's reading.
pub struct Share {
    /// Its devices, in its own order, indexed from the first index it was given.
    pub gpus: Vec<GpuFacts>,
    pub node: NodeWide,
    /// What the walk of `/proc` its process list came from did not see (`host::held_fds`); `None` where
    /// no list was read so (NVML lists NVIDIA's processes).
    pub process_scan: Option<ScanGapsFacts>,
}

/// What a vendor fills of the node beside its devices.
pub enum NodeWide {
    /// Nothing (Gaudi without libhlml).
    Nothing,
    /// Intel's libhlml read on a Gaudi node (`NodeFacts::hlml`).
    Hlml(Box<Reading<HlmlFacts>>),
    /// The amdgpu module's facts (`NodeFacts::amd_driver`).
    Amd(Box<AmdDriverFacts>),
    /// The node's reading itself, its `gpus` moved into [`Share::gpus`] (NVML: the driver, CUDA, the
    /// device count, fabric); the other vendors' devices join it. At most one vendor gives it.
    Base(Box<NodeFacts>),
}
