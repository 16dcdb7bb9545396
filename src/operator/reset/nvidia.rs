//! NVIDIA's reset: `nvidia-smi -r -i <index>` after the checks of NVML's state, the GPU's holders, its
//! pod, its NVLink peers, MIG, persistence and pending repairs (see the module's docs).

use super::assigned::check_assignment;
use super::gpu_state::{
    check_mig, check_on_bus, check_pending_repairs, check_persistence, check_recovery_action,
};
use super::in_use::{check_device_holders, check_processes};
use super::nvlink::check_nvswitch_fabric_manager;
use super::request::ResetRequest;
use super::vendor::ResetVendor;
use crate::facts::{DeviceHoldersFacts, GpuFacts, NodeFacts};
use crate::operator::scan::Said;
use crate::operator::{Check, PlanStep};

/// NVIDIA behind the reset's seam.
pub struct Nvidia;

impl ResetVendor for Nvidia {
    fn preflight(&self, facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
        let mut checks = vec![check_on_bus(g)];
        if g.handle_error.is_some() {
            // Without a handle nothing else about the GPU is known: further checks would only be noise.
            return checks;
        }
        checks.push(check_recovery_action(g));
        checks.push(check_processes(facts, g));
        checks.extend(check_device_holders(facts, g, req));
        checks.extend(check_assignment(facts, g.index, req.override_unknown));
        checks.push(check_nvswitch_fabric_manager(facts, g));
        checks.push(check_mig(g));
        checks.push(check_persistence(g));
        checks.push(check_pending_repairs(g));
        if let Some(tool) = &req.tool {
            checks.push(match tool {
                Ok(t) => Check::pass("reset_tool", format!("will run `{t}`")),
                Err(why) => Check::block("reset_tool", why.clone()),
            });
        }
        checks
    }

    fn steps(&self, _: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep> {
        steps(g)
    }

    /// NVML's process list and the holders of `/dev/nvidia<minor>` are read by the preflight itself
    /// (`check_processes`, `check_device_holders`).
    fn reads_the_scan(&self) -> bool {
        false
    }

    fn holders(
        &self,
        _: &NodeFacts,
        _: &DeviceHoldersFacts,
        _: &GpuFacts,
        _: Option<u32>,
    ) -> Option<Said> {
        None
    }
}

/// Persistence mode is turned off around the reset when it is on (NVIDIA's documented sequence).
pub fn persistence_was_on(g: &GpuFacts) -> bool {
    g.persistence_mode.get() == Some(true)
}

pub fn steps(g: &GpuFacts) -> Vec<PlanStep> {
    let i = g.index;
    let mut out = Vec::new();
    if persistence_was_on(g) {
        out.push(PlanStep::new(
            "persistence_off",
            format!("nvidia-smi -i {i} -pm 0"),
        ));
    }
    out.push(PlanStep::new(
        "reset",
        format!("nvidia-smi -r -i {i} (function-level reset of this GPU only)"),
    ));
    out.push(PlanStep::new(
        "verify",
        "re-read the GPU from NVML: it answers, recovery action none, no pending MIG change or remap",
    ));
    if persistence_was_on(g) {
        out.push(PlanStep::new(
            "persistence_on",
            format!("nvidia-smi -i {i} -pm 1"),
        ));
    }
    out
}
