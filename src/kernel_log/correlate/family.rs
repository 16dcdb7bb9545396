//! The kernel-log families behind one interface (the trait here; `mod.rs`'s `of` registers each): NVIDIA's (Xid, SXid and the driver's other lines), amdgpu's
//! and habanalabs'. Each says, for an event of its own, its class (severity, action, why), its title, its
//! finding code, whether it counts and whether it is serious; every tool that names an event (analyze,
//! health, describe, watch, the boots' history, the exporter's history) asks here, so one event reads alike
//! everywhere. A new family is one implementation and one arm of `correlate::of`.

use super::class::{Class, EventCtx};
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
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
