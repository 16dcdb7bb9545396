//! Host facts read under the host root (`/` on the host, `/host` in a probe pod, a temporary directory in
//! tests): identity of the node and boot, `/proc` entries of the processes NVML reported, PCIe AER counters,
//! and which GPU services run. Every failure is reported inline on its field.
//!
//! One file per kind of fact: `identity.rs` (the node and its boot), `processes.rs` (`proc/<pid>` of the
//! GPU processes), `device_nodes.rs` (who holds `/dev/nvidia*`, a GPU's minor), `pci.rs` (a GPU's PCI
//! device in sysfs), `services.rs` (the GPU services that run), all read through `capped.rs`, the one
//! capped, non-blocking reader of every file.

use std::path::Path;

use gpu_diag::facts::{FieldErrorKind, NodeFacts, Reading, Sections};

mod capped;
mod device_nodes;
pub mod files;
mod identity;
pub mod lib_child;
pub mod lib_trust;
mod pci;
mod processes;
pub mod root;
mod services;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub(crate) use capped::{MAX_ATTR, MAX_TEXT, io_error, read_line, read_text, read_text_max, shown};
pub use device_nodes::{fill_minor_numbers, held_fds, read_device_holders};
use identity::read_host;
use pci::{read_aer, read_numa_node};
pub use processes::{fill_processes, read_process};
pub use services::read_services;

/// Fill the host parts of `facts`. Runs after the GPU source, so it knows the GPUs' PCI ids and processes.
pub fn fill(facts: &mut NodeFacts, host_root: &Path, sections: Sections) {
    facts.host = read_host(host_root);
    if sections.processes {
        fill_processes(facts, host_root, None);
    }
    if sections.telemetry || sections.topology {
        for gpu in &mut facts.gpus {
            if let Some(bus_id) = gpu.pci_bus_id.ok() {
                gpu.pcie.aer = read_aer(host_root, bus_id);
            }
        }
    }
    if sections.topology {
        // NVML's memory affinity is missing from old drivers and unsupported on some platforms; the
        // kernel knows the PCI device's node too.
        for gpu in &mut facts.gpus {
            if let (Reading::Err(e), Some(bus_id)) = (&gpu.numa_node, gpu.pci_bus_id.ok())
                && matches!(
                    e.error,
                    FieldErrorKind::NotSupported | FieldErrorKind::FunctionNotFound
                )
            {
                gpu.numa_node = read_numa_node(host_root, bus_id);
            }
        }
    }
    if sections.ecc || sections.topology {
        facts.services = read_services(host_root);
    }
}
