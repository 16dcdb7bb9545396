//! The catalog's workflows, one function per code or family (13, 31, 45, 48, 74, 94/95, 144–150,
//! 154 and its recovery actions): what the event's context changes in its classification.

use super::class::{Class, EventCtx, class};
use super::policy::{bucket, join};
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::DecodedDetail;
use crate::kernel_log::event::Pending;
use crate::kernel_log::nvidia_catalog::CatalogEntry;

pub(super) fn xid13(ctx: &EventCtx) -> Class {
    if ctx.same_gpc_tpc >= 2 || ctx.gpc_tpc_repeated_on_gpu {
        class(
            Severity::Warning,
            ActionKind::Investigate,
            "Graphics Engine Exceptions repeat on the same GPC/TPC of this GPU (WORKFLOW_XID_13): suspect hardware; run DCGM diagnostics (dcgmi diag -r 3/EUD) on the GPU, then field diagnostics if they fail",
        )
    } else {
        class(
            Severity::Warning,
            ActionKind::RestartApplication,
            "Graphics Engine Exception not repeating on the same GPC/TPC (WORKFLOW_XID_13): an application fault (e.g. out-of-bounds access); restart and debug the application (compute-sanitizer)",
        )
    }
}

pub(super) fn xid31(ctx: &EventCtx) -> Class {
    let repeated = ctx.xid31_here >= 2 && ctx.xid31_bursts_here >= 2;
    if repeated && ctx.xid31_other_gpus == 0 {
        class(
            Severity::Warning,
            ActionKind::Investigate,
            format!(
                "GPU memory page faults repeated across {} runs on this GPU only (WORKFLOW_XID_31): suspect hardware; run DCGM diagnostics (EUD), then field diagnostics",
                ctx.xid31_bursts_here
            ),
        )
    } else if ctx.xid31_other_gpus > 0 {
        class(
            Severity::Warning,
            ActionKind::RestartApplication,
            "GPU memory page faults also on other GPUs (WORKFLOW_XID_31): an application fault; debug the application (CHECK_APP/CUDA)",
        )
    } else {
        class(
            Severity::Warning,
            ActionKind::RestartApplication,
            "GPU memory page fault, not repeated across runs (WORKFLOW_XID_31): most likely an application fault (illegal address); restart and debug the application",
        )
    }
}

pub(super) fn xid45(p: &Pending, ctx: &EventCtx) -> Class {
    let others: Vec<u32> = ctx
        .burst_codes
        .iter()
        .copied()
        .filter(|c| *c != 45)
        .collect();
    if let Some(prev) = p.detail.caused_by_xid {
        return class(
            Severity::Info,
            ActionKind::None,
            format!(
                "preemptive cleanup caused by Xid {prev} (driver says so): follow Xid {prev}'s guidance (WORKFLOW_XID_45, not solo)"
            ),
        );
    }
    if others.is_empty() {
        class(
            Severity::Warning,
            ActionKind::RestartFabricManager,
            "preemptive cleanup with no other Xid in its burst (WORKFLOW_XID_45 solo): restart Fabric Manager",
        )
    } else {
        class(
            Severity::Info,
            ActionKind::None,
            format!(
                "preemptive cleanup accompanying Xid {} in the same burst (WORKFLOW_XID_45, not solo): follow the other Xid",
                join(&others)
            ),
        )
    }
}

pub(super) fn xid48(ctx: &EventCtx) -> Class {
    let with: Vec<u32> = ctx
        .burst_codes
        .iter()
        .copied()
        .filter(|c| *c == 63 || *c == 64)
        .collect();
    let sram = match ctx.sram_threshold_exceeded {
        Some(true) => {
            "; NVML reports the SRAM uncorrectable threshold exceeded: run field diagnostics (RMA flow)"
        }
        Some(false) => "; SRAM threshold not exceeded",
        None => "",
    };
    if with.is_empty() {
        class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!(
                "double-bit ECC error without a row-remap event (WORKFLOW_XID_48 solo): reset the GPU, then run field diagnostics{sram}"
            ),
        )
    } else {
        class(
            Severity::Critical,
            ActionKind::DrainAndResetGpu,
            format!(
                "double-bit ECC error with Xid {} in the same burst (WORKFLOW_XID_48): drain and reset the GPU so the row remap takes effect{sram}",
                join(&with)
            ),
        )
    }
}

fn bits(v: u32, set: &[u32]) -> bool {
    set.iter().any(|b| v & (1 << b) != 0)
}

/// Xid 74: the WORKFLOW_NVLINK_ERR register table (registers 0, 2, 3, 4 are the meaningful ones).
pub(super) fn xid74(d: Option<&DecodedDetail>) -> Class {
    let Some(DecodedDetail::NvLinkRegisters { link, registers }) = d else {
        return class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "NVLink error whose registers could not be read (WORKFLOW_NVLINK_ERR): treat as fatal; reset the GPU and check the link",
        );
    };
    let r = |i: usize| registers.get(i).copied().unwrap_or(0);
    let (r0, r2, r3, r4) = (r(0), r(2), r(3), r(4));
    if bits(r0, &[8, 9, 12, 16, 17, 24, 28]) {
        return class(
            Severity::Critical,
            ActionKind::CheckMechanicals,
            format!(
                "NVLink error on link {link} with hardware-class bits (WORKFLOW_NVLINK_ERR): check link mechanics, re-seat, run field diagnostics"
            ),
        );
    }
    if bits(r2, &[16, 19]) {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            format!(
                "NVLink error on link {link} (WORKFLOW_NVLINK_ERR reg2 bit 16/19): run field diagnostics if it repeats"
            ),
        );
    }
    if bits(r3, &[18]) {
        return class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!(
                "NVLink error on link {link}: sympathetic, but a fabric reset is required (WORKFLOW_NVLINK_ERR reg3 bit 18)"
            ),
        );
    }
    if bits(r0, &[4, 5, 27, 29])
        || bits(r2, &[0, 1, 2, 6, 13, 17, 18])
        || bits(r4, &[18, 19, 21, 22, 24, 25, 27, 28])
    {
        return class(
            Severity::Warning,
            ActionKind::Monitor,
            format!(
                "NVLink ECC/parity error on link {link} (WORKFLOW_NVLINK_ERR): report to support if it repeats more than twice on the same link"
            ),
        );
    }
    if bits(r0, &[21, 22]) {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            format!(
                "NVLink error on link {link} from marginal signal integrity (WORKFLOW_NVLINK_ERR): investigate the link"
            ),
        );
    }
    if bits(r4, &[20, 23, 26, 29]) {
        return class(
            Severity::Info,
            ActionKind::None,
            format!(
                "NVLink ECC threshold exceeded on link {link} with no uncorrectable error (WORKFLOW_NVLINK_ERR): continue operation"
            ),
        );
    }
    if bits(r0, &[0, 1, 20, 23, 30]) || bits(r3, &[16, 17]) {
        return class(
            Severity::Info,
            ActionKind::None,
            format!(
                "NVLink error on link {link} that is ignorable or sympathetic to another error (WORKFLOW_NVLINK_ERR)"
            ),
        );
    }
    class(
        Severity::Warning,
        ActionKind::Investigate,
        format!(
            "NVLink error on link {link} with no recognised register bits (WORKFLOW_NVLINK_ERR): investigate"
        ),
    )
}

pub(super) fn xid94_95(code: u32, d: Option<&DecodedDetail>, entry: &CatalogEntry) -> Class {
    let (reset, drain) = match d {
        Some(DecodedDetail::Containment {
            reset_required,
            drain_and_reset_required,
            ..
        }) => (*reset_required, *drain_and_reset_required),
        _ => (None, None),
    };
    match (reset, drain) {
        (_, Some(true)) => class(
            Severity::Critical,
            ActionKind::DrainAndResetGpu,
            format!(
                "{}: the driver says D-RST: Yes: drain the GPU, then reset it",
                entry.description
            ),
        ),
        (Some(true), _) => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!(
                "{}: the driver says RST: Yes: the GPU must be reset",
                entry.description
            ),
        ),
        (Some(false), _) => class(
            Severity::Warning,
            if code == 94 {
                ActionKind::RestartApplication
            } else {
                ActionKind::ResetGpuWhenDrained
            },
            format!(
                "{}: the driver says RST: No: restart the affected application; other work is unaffected; reset the GPU when convenient",
                entry.description
            ),
        ),
        (None, _) => bucket(entry),
    }
}

pub(super) fn nvlink5(d: Option<&DecodedDetail>) -> Class {
    match d {
        Some(DecodedDetail::NvLink5 {
            unit,
            fatal: true,
            link,
            ..
        }) => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!(
                "fatal NVLink5 error in {unit} on link {link} (WORKFLOW_NVLINK5_ERR): reset the GPU (follow the accompanying Xid 154)"
            ),
        ),
        Some(DecodedDetail::NvLink5 { unit, link, .. }) => class(
            Severity::Warning,
            ActionKind::Monitor,
            format!(
                "non-fatal NVLink5 error in {unit} on link {link} (WORKFLOW_NVLINK5_ERR): traffic continues; watch for promotion to fatal or an Xid 154"
            ),
        ),
        _ => class(
            Severity::Warning,
            ActionKind::Investigate,
            "NVLink5 error whose fields could not be decoded (WORKFLOW_NVLINK5_ERR): decode IntrInfo/ErrorStatus against the catalog's Xid 144-150 sheet",
        ),
    }
}

pub fn recovery_action_name(v: u32) -> &'static str {
    crate::facts::recovery_action(v).map_or("Unknown", |a| a.name)
}

/// The driver's recovery action (NVML field 230 or an Xid 154's target) as a classification: the one table
/// of NVML's `nvmlDeviceGpuRecoveryAction_t` (nvml.h: 0 NONE, 1 GPU_RESET, 2 NODE_REBOOT, 3 DRAIN_P2P,
/// 4 DRAIN_AND_RESET, 5 RECOVER_IMEX_DOMAIN), which health and the kernel log both read.
pub fn recovery_class(v: u32) -> Option<Class> {
    Some(match v {
        0 => class(
            Severity::Info,
            ActionKind::None,
            "the driver needs no recovery",
        ),
        1 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "the driver requires a GPU reset",
        ),
        2 => class(
            Severity::Critical,
            ActionKind::RebootNode,
            "the driver requires a node reboot",
        ),
        3 => class(
            Severity::Warning,
            ActionKind::ResetGpuWhenDrained,
            "stop peer-to-peer applications and UVM persistence, re-query, and reset the GPU if it is still asked",
        ),
        4 => class(
            Severity::Critical,
            ActionKind::DrainAndResetGpu,
            "schedule no new work, let running work finish, then reset the GPU",
        ),
        5 => class(
            Severity::Warning,
            ActionKind::Investigate,
            "the driver asks to recover the IMEX domain: read the node's IMEX daemon and domain (get_gpu_health: imex; list_gpu_nodes: its ComputeDomain) and bring back the members that are not ready",
        ),
        _ => class(
            Severity::Warning,
            ActionKind::Investigate,
            "unknown recovery action value",
        ),
    })
}

pub(super) fn xid154(d: Option<&DecodedDetail>, ctx: &EventCtx) -> Class {
    let Some(DecodedDetail::RecoveryAction { to, to_name, .. }) = d else {
        return class(
            Severity::Warning,
            ActionKind::Investigate,
            "GPU recovery action changed, but the transition could not be read (XID_154)",
        );
    };
    if !ctx.last_154 {
        return class(
            Severity::Info,
            ActionKind::None,
            format!("recovery action changed to {to_name}; superseded by a later Xid 154"),
        );
    }
    if let Some(now) = ctx.nvml_recovery_action
        && now != *to
    {
        return class(
            Severity::Info,
            ActionKind::None,
            format!(
                "the log's last recovery action was {to_name}, but NVML now reports {} ({}): the current value wins",
                now,
                recovery_action_name(now)
            ),
        );
    }
    let mut c = recovery_class(*to)
        .unwrap_or_else(|| class(Severity::Warning, ActionKind::Investigate, ""));
    c.detail = format!(
        "the driver's own verdict (XID_154, now {to_name}): {}",
        c.detail
    );
    c
}
