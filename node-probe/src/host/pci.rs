//! A GPU's PCI device in sysfs: its PCIe AER totals and its NUMA node.

use std::path::Path;

use gpu_diag::facts::{AerFacts, FieldError, FieldErrorKind, Reading};

use super::capped::{read_text, shown};

/// PCIe AER totals of a GPU from sysfs (`aer_dev_*`, Linux 4.19+).
pub fn read_aer(root: &Path, nvml_bus_id: &str) -> Reading<AerFacts> {
    let Some(bdf) = gpu_diag::pci::normalize_bus_id(nvml_bus_id) else {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        ));
    };
    let dir = root.join("sys/bus/pci/devices").join(&bdf);
    let total = |file: &str, key: &str| -> Result<u64, FieldError> {
        let text = read_text(&dir.join(file))?;
        text.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key))
                    .then(|| it.next().and_then(|v| v.parse::<u64>().ok()))
                    .flatten()
            })
            .ok_or_else(|| {
                FieldError::with_message(FieldErrorKind::Unknown, format!("no {key} in {file}"))
            })
    };
    let r = (|| {
        Ok(AerFacts {
            correctable: total("aer_dev_correctable", "TOTAL_ERR_COR")?,
            nonfatal: total("aer_dev_nonfatal", "TOTAL_ERR_NONFATAL")?,
            fatal: total("aer_dev_fatal", "TOTAL_ERR_FATAL")?,
        })
    })();
    r.into()
}

/// `sys/bus/pci/devices/<bdf>/numa_node` (-1: no NUMA affinity).
pub fn read_numa_node(root: &Path, nvml_bus_id: &str) -> Reading<i32> {
    let Some(bdf) = gpu_diag::pci::normalize_bus_id(nvml_bus_id) else {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        ));
    };
    match read_text(&root.join("sys/bus/pci/devices").join(bdf).join("numa_node")) {
        Ok(t) => t
            .trim()
            .parse::<i32>()
            .map_err(|e| {
                FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!("numa_node `{}`: {e}", shown(t.trim())),
                )
            })
            .into(),
        Err(e) => Reading::Err(e),
    }
}
