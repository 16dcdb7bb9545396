//! The kernel-log families behind one interface: NVIDIA's (Xid, SXid and the driver's other lines), amdgpu's
//! and habanalabs'. Each says, for an event of its own, its class (severity, action, why), its title, its
//! finding code, whether it counts and whether it is serious; every tool that names an event (analyze,
//! health, describe, watch, the boots' history, the exporter's history) asks here, so one event reads alike
//! everywhere. A new family is one implementation and one arm of [`of`].

use super::class::{Class, EventCtx};
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::{EventKind, XidReport};
use crate::kernel_log::event::Pending;

/// One kernel driver's lines, judged.
pub(crate) trait Family: Sync {
    /// Whose GPUs write these lines.
    fn vendor(&self) -> GpuVendor;
    /// The event's class in its context; `None` for lines that ask nothing (identity lines).
    fn classify(&self, p: &Pending, ctx: &EventCtx) -> Option<Class>;
    /// What the event is called in a finding.
    fn title(&self, p: &Pending) -> String;
    /// The finding the event counts towards (`gpu_has_79`: its GPU also logged Xid 79).
    fn finding_code(&self, p: &Pending, gpu_has_79: bool) -> String;
    /// The concrete step for an action, in the vendor's own tools (`index`, `pci`: the GPU's).
    fn step(&self, kind: ActionKind, index: Option<u32>, pci: Option<&str>) -> String;
    /// Where the event's meaning comes from, as an evidence line, where the family's catalog says.
    fn catalog_source(&self, _p: &Pending) -> Option<String> {
        None
    }
    /// Whether the event counts towards its finding (a detail line does not count its head line again).
    fn counts(&self, _p: &Pending) -> bool {
        true
    }
    /// An event that needs a reset, a reboot or a hardware check: critical when judged alone (the boots'
    /// history sees no burst), and counted.
    fn is_serious(&self, p: &Pending) -> bool {
        self.counts(p)
            && self
                .classify(p, &EventCtx::alone())
                .is_some_and(|c| c.severity == Severity::Critical)
    }
}

/// The family an event's kind belongs to.
pub(crate) fn of(kind: EventKind) -> &'static dyn Family {
    match kind {
        EventKind::Xid
        | EventKind::Sxid
        | EventKind::FallenOffBus
        | EventKind::GpuIdentity
        | EventKind::InitFailure
        | EventKind::CrashDump => &super::nvidia::Nvidia,
        EventKind::Amdgpu => &super::amdgpu::Amdgpu,
        EventKind::Habanalabs => &super::habanalabs::Habanalabs,
    }
}

/// The vendor whose driver wrote an event of this kind.
pub fn vendor_of(kind: EventKind) -> GpuVendor {
    of(kind).vendor()
}

/// A report's listed events counted by the vendor whose driver wrote them, in the vendors' order; vendors
/// without a listed event are left out.
pub fn events_by_vendor(r: &XidReport) -> Vec<(GpuVendor, usize)> {
    GpuVendor::ALL
        .iter()
        .map(|v| {
            let n = r.events.iter().filter(|e| vendor_of(e.kind) == *v).count();
            (*v, n)
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}
