//! habanalabs (Intel Gaudi) events: their class and finding code from the habanalabs catalog
//! (`kernel_log/habanalabs_catalog.rs`). A line is judged by itself: the driver's reset that follows an error is
//! an event of its own, which the report lists beside it.

use super::class::{Class, EventCtx, class};
use super::family::Family;
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::DecodedDetail;
use crate::kernel_log::event::Pending;
use crate::kernel_log::habanalabs_catalog::{self, HlCatalogEntry};

fn entry(p: &Pending) -> Option<&'static HlCatalogEntry> {
    match &p.detail.decoded {
        Some(DecodedDetail::Habanalabs { event, .. }) => habanalabs_catalog::lookup(event),
        _ => None,
    }
}

/// The finding a habanalabs event counts towards.
pub(crate) fn finding_code(p: &Pending) -> String {
    entry(p).map_or_else(|| "habanalabs.unknown".into(), |e| e.finding.to_string())
}

/// Whether the event counts towards its finding (detail lines do not count again).
pub(crate) fn counts(p: &Pending) -> bool {
    entry(p).is_none_or(|e| e.counts)
}

/// What the event's title reads in a finding: the catalog's, with the firmware event's name.
pub(crate) fn title(p: &Pending) -> String {
    let source = match &p.detail.decoded {
        Some(DecodedDetail::Habanalabs {
            source_event: Some(s),
            ..
        }) => Some(s.as_str()),
        _ => None,
    };
    match (entry(p), source) {
        (Some(e), Some(s)) => format!("habanalabs {} ({s})", e.title),
        (Some(e), None) => format!("habanalabs {}", e.title),
        (None, _) => "habanalabs event".into(),
    }
}

/// The event's class.
pub(crate) fn classify(p: &Pending) -> Class {
    let Some(e) = entry(p) else {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            "a habanalabs line this project does not know: investigate",
        );
    };
    // A heartbeat lost with the PCI link broken is the device off the bus, not firmware alone.
    if e.id == "heartbeat_failed"
        && matches!(&p.detail.decoded, Some(DecodedDetail::Habanalabs { what: Some(w), .. }) if w.ends_with("broken"))
    {
        return class(
            Severity::Critical,
            ActionKind::CheckMechanicals,
            "the device's heartbeat failed and its PCI link is broken: the device fell off the bus; the driver's reset cannot reach it. Drain the node, check the accelerator's seating and power, reboot",
        );
    }
    class(e.severity, e.action, e.meaning)
}

pub(crate) struct Habanalabs;

impl Family for Habanalabs {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Intel
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
        habanalabs_catalog::action_detail(kind, pci)
    }
    fn catalog_source(&self, p: &Pending) -> Option<String> {
        entry(p).map(|e| {
            format!(
                "habanalabs catalog {} (source: Linux 6.12 drivers/accel/habanalabs/{})",
                e.mnemonic, e.source
            )
        })
    }
}
