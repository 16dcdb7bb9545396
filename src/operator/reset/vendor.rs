//! The reset's vendor seam: each vendor's preflight, steps and reading of the holder scan behind one
//! interface, so the shared preflight never reads "not NVIDIA" as "AMD". A vendor without a reset the
//! node can verify registers none: its preflight refuses and says so.

use super::report::ResetOutcome;
use super::request::ResetRequest;
use crate::facts::{DeviceHoldersFacts, GpuFacts, KernelLogFacts, NodeFacts, Reading};
use crate::operator::scan::Said;
use crate::operator::{Check, CheckStatus, PlanStep};

/// A reset its driver takes as one write to a sysfs attribute of the device, no program: where, how it
/// is shown, how long it may take, and how the device read again is judged.
pub trait SysfsReset: Sync {
    /// The attribute, relative to the host root; `Err`: why it cannot be named for `g`.
    fn file(&self, g: &GpuFacts) -> Result<String, String>;
    /// Why the attribute is missing where the driver should have it, and the vendor's own way instead.
    fn missing(&self) -> &'static str;
    /// How long the driver may take before the reset is judged.
    fn timeout_secs(&self) -> u64;
    /// Whether `after`, read `elapsed` after the write returned, shows the reset over (well or not);
    /// the prober reads again, 1 s apart, until it does or its time is up.
    fn settled(&self, before: &GpuFacts, after: &NodeFacts, elapsed: std::time::Duration) -> bool;
    /// The device as read again after the reset, and the kernel's lines since `log_before`, judged.
    fn verify(
        &self,
        before: &GpuFacts,
        after: &NodeFacts,
        log_before: Option<&KernelLogFacts>,
        log_after: &Reading<KernelLogFacts>,
    ) -> Vec<Check>;
}

/// How a sysfs reset's write is shown and recorded: its shell form.
pub fn sysfs_argv(file: &str) -> Vec<String> {
    vec!["echo 1 >".into(), format!("/{file}")]
}

/// Whether a sysfs reset is done: the write went through and nothing read after it blocks.
pub fn sysfs_verified(outcome: &ResetOutcome, write_ok: bool) -> bool {
    write_ok
        && outcome.error.is_none()
        && outcome
            .verification
            .iter()
            .all(|c| c.status != CheckStatus::Block)
}

/// What one vendor's reset provides.
pub trait ResetVendor: Sync {
    /// Its checks, after the GPU was found and matched the person's pin.
    fn preflight(&self, facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check>;
    /// What the reset will do, in order.
    fn steps(&self, facts: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep>;
    /// Whether the node-wide holder scan says who holds its GPUs; `false` where the vendor's preflight
    /// reads that itself (NVIDIA: NVML's process list beside the scan).
    fn reads_the_scan(&self) -> bool {
        true
    }
    /// What the node-wide holder scan says of `g` (asked only where [`Self::reads_the_scan`]).
    fn holders(
        &self,
        facts: &NodeFacts,
        scan: &DeviceHoldersFacts,
        g: &GpuFacts,
        self_pid: Option<u32>,
    ) -> Option<Said>;
    /// The reset as a write to the driver's sysfs attribute, for a vendor whose driver offers one;
    /// `None`: a program runs it (NVIDIA's `nvidia-smi`, AMD's `amd-smi`) or none exists.
    fn sysfs(&self) -> Option<&dyn SysfsReset> {
        None
    }
}
