//! Correlation: bursts, the catalog's workflows (45, 48, 13, 31, 74, 94/95, 144–150, 154), the
//! project's policy for blank-action, driver-only and unknown codes, and the action text; amdgpu events
//! from the AMD catalog (`amdgpu.rs`), habanalabs (Intel Gaudi) events from theirs (`habanalabs.rs`).
//!
//! The steps, one file each: `class.rs` (what is handed on), `bursts.rs` (each GPU's history),
//! `workflows.rs` (the catalog's workflows) and `policy.rs` (buckets, blank codes, finding codes, action text).

mod amdgpu;
mod bursts;
mod class;
mod habanalabs;
mod policy;
mod workflows;

pub(crate) use amdgpu::{is_serious as amdgpu_is_serious, title as amdgpu_title};
pub use bursts::{
    BURST_GAP_SECS, LISTED_FIRST_BURSTS, LISTED_LAST_BURSTS, STICKY_CODES, STICKY_GAP_SECS,
};
pub(crate) use bursts::{BurstCodes, GpuHistory, Placement};
pub use class::{Class, EventCtx, GpuView};
pub(crate) use habanalabs::{is_serious as habanalabs_is_serious, title as habanalabs_title};
pub(crate) use policy::finding_code;
pub use policy::{action_detail, bucket};
pub use workflows::{recovery_action_name, recovery_class};

use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::{DecodedDetail, EventKind};
use crate::kernel_log::event::Pending;
use crate::kernel_log::nvidia_catalog;
use class::class;
use policy::blank_policy;
use workflows::{nvlink5, xid13, xid31, xid45, xid48, xid74, xid94_95, xid154};

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
    match p.event.kind {
        EventKind::Amdgpu => amdgpu::counts(p),
        EventKind::Habanalabs => habanalabs::counts(p),
        _ => true,
    }
}

/// Classify any event with its context; None for events that ask nothing (identity lines).
pub(crate) fn classify_event(p: &Pending, ctx: &EventCtx) -> Option<Class> {
    Some(match p.event.kind {
        EventKind::Xid => classify_xid(p, ctx),
        EventKind::FallenOffBus => class(
            Severity::Critical,
            ActionKind::RebootNode,
            "the GPU stopped answering on PCIe (same condition as Xid 79, RESTART_BM); check kernel PCI/AER logs and the BMC event log",
        ),
        EventKind::InitFailure => class(
            Severity::Critical,
            ActionKind::RebootNode,
            "the driver could not initialise the GPU, so it is missing from NVML; reboot, and if it persists check seating/power and contact support",
        ),
        EventKind::CrashDump => class(
            Severity::Warning,
            ActionKind::Investigate,
            "the driver wrote a GPU crash dump: collect it with nvidia-bug-report.sh before the NVIDIA module is unloaded",
        ),
        EventKind::Sxid => match p.sxid_fatal {
            Some(true) => class(
                Severity::Critical,
                ActionKind::ResetGpu,
                "fatal NVSwitch error: the fabric must be reset (all GPUs and NVSwitches, then Fabric Manager) before NVLink traffic is trusted",
            ),
            Some(false) => class(
                Severity::Warning,
                ActionKind::Monitor,
                "non-fatal NVSwitch error: traffic continues; watch for repeats on the same link",
            ),
            None => class(
                Severity::Warning,
                ActionKind::Investigate,
                "NVSwitch error without a stated severity (e.g. SOE halt/watchdog): check Fabric Manager logs and the switch state",
            ),
        },
        EventKind::Amdgpu => amdgpu::classify(p),
        EventKind::Habanalabs => habanalabs::classify(p),
        EventKind::GpuIdentity => return None,
    })
}

/// Classify one Xid with its context.
pub(crate) fn classify_xid(p: &Pending, ctx: &EventCtx) -> Class {
    let Some(code) = p.event.code else {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            "an Xid line whose number could not be read: investigate the raw line; not a reason to cordon by itself",
        );
    };
    let Some(entry) = nvidia_catalog::lookup(code) else {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            format!(
                "Xid {code} is not in NVIDIA's catalog (nor in driver 595.45.04's headers): a newer driver's code; read the driver release notes and investigate; not a reason to cordon by itself"
            ),
        );
    };
    if entry.is_driver_only() {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            format!(
                "{} is defined by the driver (595.45.04) but not yet by NVIDIA's published catalog, which gives no action: investigate (nvidia-bug-report.sh, support if it repeats); not a reason to cordon by itself",
                entry.mnemonic
            ),
        );
    }
    match code {
        13 => xid13(ctx),
        31 => xid31(ctx),
        45 => xid45(p, ctx),
        48 => xid48(ctx),
        74 => xid74(p.detail.decoded.as_ref()),
        94 | 95 => xid94_95(code, p.detail.decoded.as_ref(), entry),
        144..=150 => nvlink5(p.detail.decoded.as_ref()),
        154 => xid154(p.detail.decoded.as_ref(), ctx),
        162..=172 => blank_policy(code, ctx),
        _ => bucket(entry),
    }
}
