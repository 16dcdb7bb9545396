//! AWS Neuron: no reset this tool can run and verify. The neuron driver resets a device when its runtime
//! asks (an ioctl of the process that holds it) or when the driver loads; `reset` in sysfs only shows the
//! device state (`crate::facts::neuron`). So the reset is refused, and the refusal names the fix.

use super::request::ResetRequest;
use super::vendor::ResetVendor;
use crate::facts::{DeviceHoldersFacts, GpuFacts, NodeFacts};
use crate::operator::scan::Said;
use crate::operator::{Check, PlanStep};

/// AWS Neuron behind the reset's seam.
pub struct Neuron;

impl ResetVendor for Neuron {
    fn preflight(&self, _: &NodeFacts, g: &GpuFacts, _: &ResetRequest) -> Vec<Check> {
        let dev = g
            .neuron
            .as_ref()
            .map_or("the device", |n| n.device.as_str());
        vec![Check::block(
            "reset_supported",
            format!(
                "no reset of an AWS Neuron device ({dev}) can be run and verified from here: the neuron driver resets a device when the Neuron runtime that holds it asks, or when the driver is reloaded. \
                 To recover it: stop the workloads on it (kill through the holders of /dev/neuron*), then restart them (the runtime resets the device as it loads), or reload the driver (`rmmod neuron && modprobe neuron`) or reboot the node when it is drained; `neuron-ls` shows the device afterwards"
            ),
        )]
    }

    fn steps(&self, _: &NodeFacts, _: &GpuFacts) -> Vec<PlanStep> {
        Vec::new()
    }

    /// Never asked: the preflight refuses first.
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

#[cfg(test)]
mod tests {
    use crate::facts::{GpuFacts, GpuVendor, NodeFacts};
    use crate::operator::CheckStatus;
    use crate::operator::reset::test_support::req;
    use crate::operator::reset::{GpuSelector, plan};

    /// No reset of a Neuron device is run: the preflight refuses and names the way to recover it.
    #[test]
    fn a_neuron_reset_is_refused_with_its_fix() {
        let facts = NodeFacts {
            gpus: vec![GpuFacts {
                index: 0,
                vendor: GpuVendor::Neuron,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = plan(&facts, &req(GpuSelector::Index(0)), false, false);
        assert!(!r.allowed);
        assert!(r.plan.is_empty());
        let c = r
            .checks
            .iter()
            .find(|c| c.check == "reset_supported")
            .expect("the refusal");
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("neuron-ls"), "{}", c.evidence);
    }
}
