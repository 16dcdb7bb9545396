//! `reset`: reset one GPU with the host's `nvidia-smi -r -i <index>`. Preflight from nvidia-smi's manual (`-r`)
//! and NVIDIA's GPU reset documentation: nothing may use the GPU (NVML processes, and every
//! holder of its `/dev/nvidia<minor>`: device plugin, DCGM, exporters, GFD, persistenced), the GPU must be
//! on the bus (a lost GPU needs a reboot), Ampere NVSwitch systems need Fabric Manager (Hopper+ do not),
//! pre-Ampere NVLink GPUs reset only together with their peers. MIG, persistence and pending repairs
//! change what the reset does and are reported. After the reset, [`verify()`] judges the re-read GPU.
//!
//! One file per step: `request.rs` (which GPU is asked for), the preflight's checks (`gpu_state.rs`, the
//! GPU's own state; `in_use.rs`, what uses it; `assigned.rs`, which pod the kubelet gave it to; `nvlink.rs`, whether it resets without its NVLink peers),
//! `plan.rs` (the preflight in order, the report before execution and its steps), `verify.rs` (the GPU as
//! re-read after the reset) and `report.rs` (the report's types). An AMD GPU has its own preflight, reset
//! and verification (`amd.rs`: `amd-smi reset -G`, which takes the whole XGMI hive), and so has an Intel Gaudi (`gaudi.rs`:
//! the habanalabs driver's `hard_reset` file) and an AWS Neuron device (`neuron.rs`: the neuron driver's
//! `reset` file); both are one write to sysfs (`vendor::SysfsReset`), and `device_node.rs` says who holds
//! the device node such a driver resets.

/// Its `node-probe` subcommand.
pub const COMMAND: &str = "reset";

pub mod amd;
mod assigned;
mod device_node;
pub mod gaudi;
mod gpu_state;
mod in_use;
mod kernel_lines;
mod neuron;
mod nvidia;
mod nvlink;
mod plan;
mod report;
mod request;
#[cfg(test)]
mod test_support;
mod vendor;
mod vendors;
mod verify;

pub use assigned::check_assignment;
pub use gpu_state::{
    check_mig, check_on_bus, check_pending_repairs, check_persistence, check_recovery_action,
};
pub use in_use::{check_device_holders, check_processes, holder_hint};
pub use nvidia::{persistence_was_on, steps};
pub use nvlink::check_nvswitch_fabric_manager;
pub use plan::{plan, preflight};
pub use report::{CommandRun, ResetOutcome, ResetReport, ResetTarget};
pub use request::{
    GpuSelector, NO_POD, ProcessPin, ResetPin, ResetRequest, Seen, parse_approved, parse_bdf,
    same_bdf, unknown_digest,
};
pub use vendor::{ResetVendor, SysfsReset, sysfs_argv, sysfs_verified};
pub use vendors::of as vendor;
pub use verify::verify;

use crate::facts::{GpuFacts, NodeFacts, Reading};
use crate::operator::scan;

/// The holder scan's answer on GPU `g` (`crate::operator::scan`), as its vendor's reset reads it: an AMD
/// GPU or a Gaudi; an NVIDIA GPU is `None` (see `scan`'s docs). `Some(Err)` where the scan was not made or
/// failed: nothing is vouched for then. Here, not in `scan`: the scan is the resets' input, never their
/// caller.
pub fn holders_on_gpu(
    facts: &NodeFacts,
    g: &GpuFacts,
    self_pid: Option<u32>,
) -> Option<Result<scan::Said, String>> {
    let reset = vendor(g.vendor);
    if !reset.reads_the_scan() {
        return None;
    }
    let scan = match &facts.device_holders {
        None => {
            return Some(Err(format!(
                "the holders of {} were not collected",
                scan::nodes_of(g)
            )));
        }
        Some(Reading::Err(e)) => {
            return Some(Err(format!(
                "cannot scan /proc for holders of {} ({})",
                scan::nodes_of(g),
                crate::analysis::error_name(e.error)
            )));
        }
        Some(Reading::Ok(s)) => s,
    };
    reset.holders(facts, scan, g, self_pid).map(Ok)
}
