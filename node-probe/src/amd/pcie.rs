//! The GPU's PCIe link as the PCI core prints it (`current_link_speed` `32.0 GT/s PCIe`, or `32 GT/s`
//! before Linux 5.7; `current_link_width` `16`; the `max_` pair; `pci_speed_string` in
//! `drivers/pci/probe.c`) and amdgpu's `pcie_replay_count` (`%llu`).

use gpu_diag::facts::{FieldError, FieldErrorKind, PcieFacts, Reading};

use crate::host::files::HostFiles;

/// PCIe generation of a link speed in GT/s.
fn generation(gts: f64) -> Option<u32> {
    [
        (2.5, 1),
        (5.0, 2),
        (8.0, 3),
        (16.0, 4),
        (32.0, 5),
        (64.0, 6),
        (128.0, 7),
    ]
    .iter()
    .find(|(s, _)| (gts - s).abs() < 0.01)
    .map(|(_, g)| *g)
}

fn speed_gen(files: HostFiles<'_>, dir: &str, file: &str) -> Reading<u32> {
    match files.line(format!("{dir}/{file}")) {
        Ok(t) => t
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<f64>().ok())
            .and_then(generation)
            .map(Reading::Ok)
            .unwrap_or_else(|| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!("{file} `{}` is no PCIe speed", crate::host::shown(&t)),
                ))
            }),
        Err(e) => Reading::Err(e),
    }
}

pub fn read(files: HostFiles<'_>, dir: &str) -> PcieFacts {
    let max_gen = speed_gen(files, dir, "max_link_speed");
    PcieFacts {
        // The function's own capability: the slot's is not in sysfs.
        max_link_gen: max_gen.clone(),
        gpu_max_link_gen: max_gen,
        max_link_width: files.parse(format!("{dir}/max_link_width")),
        current_link_gen: speed_gen(files, dir, "current_link_speed"),
        current_link_width: files.parse(format!("{dir}/current_link_width")),
        replay_counter: files.parse(format!("{dir}/pcie_replay_count")),
        // Read by the host readers, as for every GPU.
        aer: Reading::default(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn speeds_old_and_new() {
        assert_eq!(super::generation(32.0), Some(5));
        assert_eq!(super::generation(2.5), Some(1));
        assert_eq!(super::generation(3.0), None);
    }
}
