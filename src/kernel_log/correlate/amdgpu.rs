//! amdgpu events: their class from the AMD catalog (`kernel_log/amdgpu_catalog.rs`), refined where the line
//! itself says more (an ACA bank's STATUS bits, throttling that names only the power cap), and their
//! finding codes (`amdgpu.<kind>`, RAS ones `amdgpu.ras_<ue|de|ce>.<block>`).

use super::class::{Class, EventCtx, class};
use super::family::Family;
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::amdgpu_catalog::{self, AmdCatalogEntry};
use crate::kernel_log::contract::DecodedDetail;
use crate::kernel_log::event::Pending;

fn entry(p: &Pending) -> Option<(&'static AmdCatalogEntry, Option<&str>)> {
    match &p.detail.decoded {
        Some(DecodedDetail::Amdgpu { event, block, .. }) => {
            amdgpu_catalog::lookup(event).map(|e| (e, block.as_deref()))
        }
        _ => None,
    }
}

/// The finding an amdgpu event counts towards.
pub(crate) fn finding_code(p: &Pending) -> String {
    match entry(p) {
        Some((e, Some(block))) if e.finding.starts_with("amdgpu.ras_") => {
            format!("{}.{block}", e.finding)
        }
        Some((e, _)) => e.finding.to_string(),
        None => "amdgpu.unknown".into(),
    }
}

/// Whether the event counts towards its finding (detail lines do not count again).
pub(crate) fn counts(p: &Pending) -> bool {
    entry(p).is_none_or(|(e, _)| e.counts)
}

/// What an amdgpu event title reads in a finding: the catalog's, with the block for RAS lines.
pub(crate) fn title(p: &Pending) -> String {
    match entry(p) {
        Some((e, Some(block))) => format!("amdgpu {} in {block}", e.title),
        Some((e, None)) => format!("amdgpu {}", e.title),
        None => "amdgpu event".into(),
    }
}

/// The event's class.
pub(crate) fn classify(p: &Pending) -> Class {
    let Some((e, _)) = entry(p) else {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            "an amdgpu line this project does not know: investigate",
        );
    };
    match &p.detail.decoded {
        Some(DecodedDetail::Amdgpu { aca: Some(a), .. }) => {
            let what = format!(
                "ACA bank of {} (socket {}, die {})",
                a.unit, a.socket, a.die
            );
            if a.uncorrectable {
                class(
                    Severity::Critical,
                    ActionKind::ResetGpu,
                    format!(
                        "{what} holds an uncorrectable error: the driver resets the GPU; confirm it recovered (`amd-smi reset -G` if not), reboot if the reset fails"
                    ),
                )
            } else if a.deferred || a.poison {
                class(
                    Severity::Warning,
                    ActionKind::Monitor,
                    format!(
                        "{what} holds a deferred or poisoned error: watch for poison consumption and retired pages"
                    ),
                )
            } else {
                class(
                    Severity::Info,
                    ActionKind::Monitor,
                    format!("{what} holds a corrected error: watch the rate"),
                )
            }
        }
        Some(DecodedDetail::Amdgpu {
            what: Some(reasons),
            ..
        }) if e.id == "thermal_throttle" && reasons.trim() == "PPT" => class(
            Severity::Info,
            ActionKind::Monitor,
            "the GPU runs at its power cap (PPT): expected under full load; check the power cap if performance matters",
        ),
        _ => class(e.severity, e.action, e.meaning),
    }
}

pub(crate) struct Amdgpu;

impl Family for Amdgpu {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Amd
    }
    fn classify(&self, p: &Pending, _ctx: &EventCtx) -> Option<Class> {
        Some(classify(p))
    }
    fn title(&self, p: &Pending) -> String {
        title(p)
    }
    fn finding_code(&self, p: &Pending, _gpu_has_79: bool) -> String {
        finding_code(p)
    }
    fn counts(&self, p: &Pending) -> bool {
        counts(p)
    }
    fn step(&self, kind: ActionKind, _index: Option<u32>, pci: Option<&str>) -> String {
        amdgpu_catalog::action_detail(kind, pci)
    }
    fn catalog_source(&self, p: &Pending) -> Option<String> {
        entry(p).map(|(e, _)| format!("amdgpu catalog {} (source: {})", e.mnemonic, e.source))
    }
}
