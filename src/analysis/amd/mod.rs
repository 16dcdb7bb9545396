//! What only AMD Instinct GPUs show, judged: RAS counters per block (`ras.rs`), retired bad pages against
//! the driver's threshold (`bad_pages.rs`), XGMI links, the `gpu_metrics` throttle residencies and PCIe
//! recoveries (`links.rs`), and AMD GPU PCI functions that no driver bound or KFD does not list
//! (`presence.rs`). Temperatures, power, clocks and memory go through the shared telemetry rules, which
//! read the shared fields the probe fills for both vendors. Codes are `amd.*` (the kernel log's are
//! `amdgpu.*`); actions are in AMD's vocabulary (`amd-smi reset -G -g <bdf>`, the Service Action Guide).
//!
//! Formats and meanings: the project's AMD reference (`amdgpu_ras.c`, `amdgpu_ras_eeprom.c`,
//! `amdgpu_xgmi.c`, `smu_v13_0_6_ppt.c`, `kgd_pp_interface.h`).

mod bad_pages;
mod gpus;
mod links;
mod presence;
mod ras;

use crate::facts::{GpuFacts, NodeFacts};
use crate::finding::Finding;

pub use bad_pages::rma_threshold;
pub use gpus::amd_gpus;

/// Every AMD finding of the node: per AMD GPU, then the node's PCI functions.
pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let uptime = super::uptime_s(facts);
    for (g, amd) in amd_gpus(facts) {
        out.extend(ras::judge(g, amd, uptime));
        out.extend(bad_pages::judge(g, amd, facts));
        out.extend(links::judge(g, amd, uptime));
    }
    out.extend(presence::judge(facts));
    out
}

/// The one-line memory verdict of an AMD GPU (the ECC report's): RAS counts of the memory block and the
/// retired pages against the threshold, where NVML's ECC fields mean nothing.
pub fn memory_line(g: &GpuFacts, facts: &NodeFacts) -> Option<String> {
    let amd = g.amd.as_ref()?;
    let umc = amd
        .ras
        .ok()
        .and_then(|r| r.blocks.iter().find(|b| b.block == "umc"));
    let ras = umc.map_or_else(
        || "UMC RAS counters unreadable".to_string(),
        |b| {
            let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            format!(
                "HBM (UMC) errors: {} uncorrectable, {} deferred, {} corrected",
                n(b.ue),
                n(b.de),
                n(b.ce)
            )
        },
    );
    let pages = bad_pages::bad_pages(g, amd, facts).map_or_else(
        || "bad pages unreadable".to_string(),
        |(bp, source)| {
            let limit = bad_pages::threshold_of(g, amd, &bp, facts)
                .map_or(String::new(), |(t, _)| format!(" of {t} allowed"));
            // Only the library's reading is named: sysfs is what every other line reads.
            let from = if amd.bad_pages.ok().is_some() {
                String::new()
            } else {
                format!(" ({source})")
            };
            format!(
                "{} pages retired{limit}, {} pending{from}",
                bp.reserved, bp.pending
            )
        },
    );
    Some(format!(
        "AMD RAS (NVML ECC does not apply): {ras}; {pages}."
    ))
}

/// The one-line clock verdict of an AMD GPU (the telemetry report's): the throttles active now by the
/// SMU's residencies, where NVML's clocks-event reasons mean nothing. Shaped as every verdict is,
/// `<class>: <figures>`: the text groups GPUs by what precedes the colon, so a throttled GPU is a line of
/// its own.
pub fn clocks_line(g: &GpuFacts) -> Option<String> {
    let amd = g.amd.as_ref()?;
    let now: Vec<String> = links::judge(g, amd, None)
        .into_iter()
        .filter(|f| f.code.starts_with("amd.throttle."))
        .map(|f| {
            f.code
                .trim_start_matches("amd.throttle.")
                .to_ascii_uppercase()
        })
        .collect();
    let clock = format!(
        "gfx {} of {} MHz",
        super::show(&g.clocks.graphics_mhz),
        super::show(&g.clocks.graphics_max_mhz)
    );
    Some(match amd.metrics.ok() {
        Some(m) if m.throttle_samples.len() >= 2 => {
            if now.is_empty() {
                format!("AMD, no throttling between the probe's two gpu_metrics reads: {clock}.")
            } else {
                format!(
                    "AMD, throttled now by {} (gpu_metrics residencies): {clock}.",
                    now.join(" and ")
                )
            }
        }
        Some(m) => format!(
            "AMD, gpu_metrics {} has no two residency reads to tell throttling now (NVML's clocks-event reasons do not apply): {clock}.",
            m.version
        ),
        None => format!(
            "AMD, gpu_metrics unreadable (NVML's clocks-event reasons do not apply): {clock}."
        ),
    })
}

/// What AMD's counters cover: the RAS counts are the driver's, accumulated since it loaded (`amdgpu_ras.c`);
/// retired pages are kept in the GPU's EEPROM table across reboots (`amdgpu_ras_eeprom.c`).
pub const AMD_COUNTER_CAVEAT: &str = "AMD: RAS error counts (ras/aca_<block>, ras/<block>_err_count) are the amdgpu driver's, counted since it loaded; retired pages (ras/gpu_vram_bad_pages) are kept in the GPU's EEPROM and survive reboots.";

/// AMD behind the analysis's seam.
pub struct Amd;

impl super::vendor::VendorAnalysis for Amd {
    fn vendor(&self) -> crate::facts::GpuVendor {
        crate::facts::GpuVendor::Amd
    }

    fn judge(&self, facts: &NodeFacts) -> Vec<Finding> {
        judge(facts)
    }

    fn clocks_line(&self, _facts: &NodeFacts, g: &GpuFacts) -> Option<String> {
        clocks_line(g)
    }

    /// NVML-shaped fields (the probe fills them from sysfs) with AMD's memory line; its memory findings
    /// (UMC RAS, bad pages, poison) are the ECC report's too.
    fn ecc(
        &self,
        facts: &NodeFacts,
        _opts: &crate::options::AnalysisOptions,
        gpus: &[&GpuFacts],
    ) -> super::vendor::VendorEcc {
        super::vendor::VendorEcc {
            entries: gpus
                .iter()
                .map(|g| super::vendor::EccEntry::NvmlShaped {
                    line: memory_line(g, facts),
                })
                .collect(),
            findings: judge(facts)
                .into_iter()
                .filter(|f| {
                    f.code.contains("umc")
                        || f.code.starts_with("amd.bad_pages")
                        || f.code.starts_with("amd.poison")
                })
                .collect(),
        }
    }

    fn ecc_caveat(&self) -> &'static str {
        AMD_COUNTER_CAVEAT
    }
}
