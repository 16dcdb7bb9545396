//! The resets' registry: which `super::vendor::ResetVendor` resets a vendor's GPUs (a file of its own, so
//! a vendor's reset and the trait it implements never import the list that names it).

use super::vendor::ResetVendor;
use crate::facts::GpuVendor;

/// The one place a reset is chosen by vendor.
pub fn of(v: GpuVendor) -> &'static dyn ResetVendor {
    match v {
        GpuVendor::Nvidia => &super::nvidia::Nvidia,
        GpuVendor::Amd => &super::amd::Amd,
        GpuVendor::Intel => &super::gaudi::Gaudi,
        GpuVendor::Neuron => &super::neuron::Neuron,
    }
}
