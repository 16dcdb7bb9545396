//! What only AWS Neuron devices (Trainium, Inferentia) have: the neuron driver's view of a device (its
//! class device, state, NeuronCore count, the devices it is wired to, the driver's architecture strings,
//! its hardware error counters per device and per NeuronCore). What every vendor shares (identity, serial)
//! stays in [`GpuFacts`](super::GpuFacts)'s common fields, each valid or absent on its own. The vendor's
//! entry is `super::vendor::AWS_NEURON`.
//!
//! Formats: `aws-neuron/aws-neuron-driver` at commit fca19f7df31b44cbbffaf121230a66df6f59d118, its sysfs
//! printers `neuron_cdev.c` (`reset`, `core_count`, `connected_devices`) and `neuron_sysfs_metrics.c` (the
//! `info/`, `stats/` and `neuron_core<n>/` trees), file:line beside each writer in
//! `tests/support/neuron_tree.rs`.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// `reset`'s value (`device_reset_show`, neuron_cdev.c:2973-2977: `device_state`, `%d`): the driver's
/// `enum neuron_device_state` (neuron_device.h:59-63).
pub const NEURON_DEVICE_STATE_RESET: u32 = 0;
pub const NEURON_DEVICE_STATE_READY: u32 = 1;
/// The driver gave the device up: its last reset failed (neuron_reset.c:168-172) or its reset thread
/// stopped (neuron_reset.c:218).
pub const NEURON_DEVICE_STATE_INVALID: u32 = 2;

/// One Neuron device as the neuron driver shows it under `/sys/class/neuron_device/neuron<N>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeuronGpuFacts {
    /// The class device: `neuron0` (its device node is `/dev/neuron0`).
    #[serde(default)]
    pub device: String,
    /// `reset` read back: the driver's device state (0 in reset, 1 ready, 2 invalid: see
    /// [`NEURON_DEVICE_STATE_INVALID`]).
    #[serde(default)]
    pub device_state: Reading<u32>,
    /// `core_count`: NeuronCores per device (Trainium2: 8, Trainium1 and Inferentia2: 2).
    #[serde(default)]
    pub core_count: Reading<u32>,
    /// `connected_devices`: the device indexes this one is wired to (its NeuronLink peers), as the
    /// firmware's topology answers.
    #[serde(default)]
    pub connected_devices: Reading<Vec<u32>>,
    /// `info/architecture/arch_type` (`NDv3` on Trainium2).
    #[serde(default)]
    pub arch_type: Reading<String>,
    /// `info/architecture/instance_type` (`Trn2`, `Trn1`, `Inf2`).
    #[serde(default)]
    pub instance_type: Reading<String>,
    /// `info/architecture/device_name` (`Trainium2`, `Trainium1`, `Inferentia2`).
    #[serde(default)]
    pub device_name: Reading<String>,
    /// `stats/hardware/`: the firmware's uncorrected ECC counts for the device.
    #[serde(default)]
    pub hardware: NeuronHardwareFacts,
    /// `neuron_core<n>/`, in core order.
    #[serde(default)]
    pub cores: Vec<NeuronCoreFacts>,
}

/// `stats/hardware/` (neuron_sysfs_metrics.c:146-150; added by the v2 and v3 HALs only, v3/neuron_dhal_v3.c:1062).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeuronHardwareFacts {
    /// `sram_ecc_uncorrected`: on-chip SRAM errors the ECC could not correct.
    #[serde(default)]
    pub sram_ecc_uncorrected: Reading<u64>,
    /// `mem_ecc_uncorrected`: HBM errors the ECC could not correct, not repairable.
    #[serde(default)]
    pub mem_ecc_uncorrected: Reading<u64>,
    /// `mem_ecc_repairable_uncorrected`: HBM uncorrected errors whose repair is pending (a reset repairs).
    #[serde(default)]
    pub mem_ecc_repairable_uncorrected: Reading<u64>,
}

/// One NeuronCore's error counters: each `neuron_core<n>/stats/status/<name>/total`, the runtime's count
/// since the driver loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NeuronCoreFacts {
    pub core: u32,
    /// `hw_error`.
    #[serde(default)]
    pub hw_error: Reading<u64>,
    /// `hw_hbm_ue_error`: executions ended by an HBM uncorrectable error.
    #[serde(default)]
    pub hbm_ue_error: Reading<u64>,
    /// `hw_nc_ue_error`: executions ended by a NeuronCore uncorrectable error.
    #[serde(default)]
    pub nc_ue_error: Reading<u64>,
    /// `hw_dma_abort_error`.
    #[serde(default)]
    pub dma_abort_error: Reading<u64>,
    /// `hw_repairable_hbm_ue_error`.
    #[serde(default)]
    pub repairable_hbm_ue_error: Reading<u64>,
    /// `stats/other_info/reset_fail_count/total`.
    #[serde(default)]
    pub reset_fail_count: Reading<u64>,
    /// `stats/other_info/reset_req_count/total`: the reset requests of the core's device, each counted
    /// as the driver queues it (neuron_reset.c:278): a reset asked through sysfs that the driver ignored
    /// (the device was open) leaves it unchanged.
    #[serde(default)]
    pub reset_req_count: Reading<u64>,
}

/// The product as AWS names it, from the PCI device id (neuron_device.h:36-42).
pub fn neuron_product(pci_device: u16) -> Option<&'static str> {
    Some(match pci_device {
        0x7064..=0x7067 => "AWS Inferentia",
        0x7164 => "AWS Trainium",
        0x7264 => "AWS Inferentia2",
        0x7364 => "AWS Trainium2",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neuron_resources_and_products() {
        use super::super::vendor::{GpuResource, GpuVendor, gpu_resource};
        assert_eq!(
            gpu_resource("aws.amazon.com/neuron"),
            Some((GpuVendor::Neuron, GpuResource::Whole))
        );
        assert_eq!(
            gpu_resource("aws.amazon.com/neurondevice"),
            Some((GpuVendor::Neuron, GpuResource::Whole))
        );
        assert_eq!(
            gpu_resource("aws.amazon.com/neuroncore"),
            Some((GpuVendor::Neuron, GpuResource::Partition("neuroncore")))
        );
        assert_eq!(gpu_resource("aws.amazon.com/efa"), None);
        assert_eq!(gpu_resource("vpc.amazonaws.com/efa"), None);
        assert_eq!(neuron_product(0x7364), Some("AWS Trainium2"));
        assert_eq!(neuron_product(0x7264), Some("AWS Inferentia2"));
        assert_eq!(neuron_product(0x7164), Some("AWS Trainium"));
        assert_eq!(neuron_product(0x0ec2), None);
    }
}
