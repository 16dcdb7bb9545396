//! The reset's vendor seam: each vendor's preflight, steps and reading of the holder scan behind one
//! interface, so the shared preflight never reads "not NVIDIA" as "AMD". A vendor without a reset the
//! node can verify registers none: its preflight refuses and says so.

use super::request::ResetRequest;
use crate::facts::{DeviceHoldersFacts, GpuFacts, NodeFacts};
use crate::operator::scan::Said;
use crate::operator::{Check, PlanStep};

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
}
