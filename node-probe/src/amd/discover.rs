//! Which AMD GPUs the host has: every PCI function of vendor 0x1002 with a GPU class, bound or not
//! (`sys/bus/pci/devices/<bdf>/{vendor,class,device,driver}`), and the functions amdgpu took
//! (`sys/module/amdgpu/drivers/pci:amdgpu/<bdf>`, as ROCm's device plugin enumerates them,
//! `internal/pkg/amdgpu/amdgpu.go`), in PCI address order.

use gpu_diag::facts::{AmdPciFunctionFacts, FieldError, Reading};

use crate::host::files::HostFiles;

pub const AMD_VENDOR: &str = "0x1002";
const PCI_DEVICES: &str = "sys/bus/pci/devices";
const AMDGPU_BOUND: &str = "sys/module/amdgpu/drivers/pci:amdgpu";

/// What discovery found.
pub struct Discovery {
    /// AMD GPU functions as sysfs lists them (an error where `sys/bus/pci/devices` cannot be listed).
    pub functions: Reading<Vec<AmdPciFunctionFacts>>,
    /// Canonical BDFs amdgpu is bound to, sorted: the GPUs that are read.
    pub bound: Vec<String>,
}

impl Discovery {
    /// No AMD GPU on this host, bound or not (a loaded module alone, e.g. for an APU's display, is
    /// none): the node answers as before AMD support.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty() && self.functions.ok().is_none_or(Vec::is_empty)
    }
}

pub fn discover(files: HostFiles<'_>) -> Discovery {
    let functions: Reading<Vec<AmdPciFunctionFacts>> = files
        .names(PCI_DEVICES)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| gpu_function(files, n))
                .collect()
        })
        .into();
    let mut bound: Vec<String> = functions
        .ok()
        .into_iter()
        .flatten()
        .filter(|f| f.driver.as_deref() == Some("amdgpu"))
        .map(|f| f.bdf.clone())
        .collect();
    // The driver's own list, for a host whose PCI listing is unreadable or lags.
    for n in files.names(AMDGPU_BOUND).unwrap_or_default() {
        if let Some(bdf) = gpu_diag::pci::normalize_bus_id(&n)
            && n.contains(':')
        {
            bound.push(bdf);
        }
    }
    bound.sort();
    bound.dedup();
    Discovery { functions, bound }
}

/// One PCI function, when it is an AMD GPU: vendor 0x1002, class display (0x03xxxx) or processing
/// accelerator (0x12xxxx; MI300X shows as one, per the GPU Operator's docs).
fn gpu_function(files: HostFiles<'_>, name: &str) -> Option<AmdPciFunctionFacts> {
    let bdf = gpu_diag::pci::normalize_bus_id(name)?;
    let dir = format!("{PCI_DEVICES}/{name}");
    if files
        .line(format!("{dir}/vendor"))
        .ok()?
        .to_ascii_lowercase()
        != AMD_VENDOR
    {
        return None;
    }
    let class = files
        .line(format!("{dir}/class"))
        .ok()?
        .to_ascii_lowercase();
    if !(class.starts_with("0x03") || class.starts_with("0x12")) {
        return None;
    }
    let device_id = files
        .line(format!("{dir}/device"))
        .map(|d| d.trim_start_matches("0x").to_ascii_lowercase())
        .unwrap_or_default();
    Some(AmdPciFunctionFacts {
        bdf,
        device_id,
        driver: driver_name(files, &dir),
    })
}

/// The bound driver's name: the last component of the `driver` link (never followed).
pub fn driver_name(files: HostFiles<'_>, dir: &str) -> Option<String> {
    files
        .link(format!("{dir}/driver"))
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// `numa_node` of a PCI function (-1: none).
pub fn numa_node(files: HostFiles<'_>, bdf: &str) -> Reading<i32> {
    files.parse(format!("{PCI_DEVICES}/{bdf}/numa_node"))
}

/// The first DRM node whose name starts with `prefix` under `<dir>/drm` (`card1`, `renderD128`).
pub fn drm_node(files: HostFiles<'_>, dir: &str, prefix: &str) -> Result<String, FieldError> {
    files
        .names(format!("{dir}/drm"))?
        .into_iter()
        .filter(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .min_by_key(|n| n[prefix.len()..].parse::<u32>().unwrap_or(u32::MAX))
        .ok_or_else(|| {
            FieldError::with_message(
                gpu_diag::facts::FieldErrorKind::NotFound,
                format!("no {prefix}* under {dir}/drm"),
            )
        })
}
