//! Correlation: bursts, the catalog's workflows (45, 48, 13, 31, 74, 94/95, 144–150, 154), the
//! project's policy for blank-action, driver-only and unknown codes, and the action text; amdgpu events
//! from the AMD catalog (`amdgpu.rs`), habanalabs (Intel Gaudi) events from theirs (`habanalabs.rs`).
//!
//! The steps, one file each: `class.rs` (what is handed on), `bursts.rs` (each GPU's history),
//! `workflows.rs` (the catalog's workflows) and `policy.rs` (buckets, blank codes, finding codes, action text).

mod amdgpu;
mod bursts;
mod class;
pub mod family;
mod habanalabs;
mod neuron;
mod nvidia;
mod policy;
mod workflows;

pub use bursts::{
    BURST_GAP_SECS, LISTED_FIRST_BURSTS, LISTED_LAST_BURSTS, STICKY_CODES, STICKY_GAP_SECS,
};
pub(crate) use bursts::{BurstCodes, GpuHistory, Placement};
pub use class::{Class, EventCtx, GpuView};
pub use nvidia::{xid_by_code, xid_title};
pub use policy::{action_detail, bucket};
pub use workflows::{recovery_action_name, recovery_class};

use crate::facts::GpuVendor;
use crate::kernel_log::contract::{DecodedDetail, EventKind, XidReport};
use crate::kernel_log::event::Pending;

/// What an event's classification depends on besides the event itself: this decides when the
/// streaming analysis can classify it. Keep in step with `classify_xid`: a workflow that starts
/// reading another `EventCtx` field must be listed here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Only the event (and the GPU's NVML facts, known up front).
    Event,
    /// The other codes of its burst (`burst_codes`): Xid 45, 48, 171, 172.
    Burst,
    /// The whole GPU's history: Xid 13 (GPC/TPC repeats), 31 (runs, other GPUs), a decoded 154
    /// (whether it is the last).
    History,
}

pub(crate) fn needs(p: &Pending) -> Needs {
    if p.event.kind != EventKind::Xid {
        return Needs::Event;
    }
    match p.event.code {
        Some(45 | 48 | 171 | 172) => Needs::Burst,
        Some(13 | 31) => Needs::History,
        Some(154) if matches!(p.detail.decoded, Some(DecodedDetail::RecoveryAction { .. })) => {
            Needs::History
        }
        _ => Needs::Event,
    }
}

/// Whether the event counts towards its finding: detail lines of amdgpu and habanalabs events do not
/// count again what their head line counted.
pub(crate) fn counts(p: &Pending) -> bool {
    of(p.event.kind).counts(p)
}

/// Classify any event with its context; None for events that ask nothing (identity lines).
pub(crate) fn classify_event(p: &Pending, ctx: &EventCtx) -> Option<Class> {
    of(p.event.kind).classify(p, ctx)
}

/// What an event is called in a finding (`Xid 48 ROBUST_CHANNEL_GPU_ECC_DBE (Double Bit ECC Error)`).
pub(crate) fn title(p: &Pending) -> String {
    of(p.event.kind).title(p)
}

/// Stable finding code of an event (`gpu_has_79`: the GPU also logged Xid 79, which names its fall off the
/// bus).
pub(crate) fn finding_code(p: &Pending, gpu_has_79: bool) -> String {
    of(p.event.kind).finding_code(p, gpu_has_79)
}

/// An event that needs a reset, a reboot or a hardware check: what makes a boot end badly.
pub(crate) fn is_serious(p: &Pending) -> bool {
    of(p.event.kind).is_serious(p)
}

/// The family an event's kind belongs to.
pub(crate) fn of(kind: EventKind) -> &'static dyn family::Family {
    match kind {
        EventKind::Xid
        | EventKind::Sxid
        | EventKind::FallenOffBus
        | EventKind::GpuIdentity
        | EventKind::InitFailure
        | EventKind::CrashDump => &nvidia::Nvidia,
        EventKind::Amdgpu => &amdgpu::Amdgpu,
        EventKind::Habanalabs => &habanalabs::Habanalabs,
        EventKind::Neuron => &neuron::Neuron,
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
