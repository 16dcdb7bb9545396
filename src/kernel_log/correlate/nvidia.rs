//! NVIDIA's kernel-log family: Xids (the catalog, its workflows and the project's policy, in `mod.rs`,
//! `workflows.rs` and `policy.rs`), SXids, and the driver's other lines (off the bus, init failure, crash
//! dump); and an Xid known only by its code ([`xid_by_code`]), as an exporter's last-Xid gauge or a
//! boot's tally gives it.

use std::collections::BTreeSet;

use super::class::{Class, EventCtx, class};
use super::family::Family;
use super::policy::{blank_policy, bucket};
use super::workflows::{nvlink5, xid13, xid31, xid45, xid48, xid74, xid94_95, xid154};
use crate::facts::GpuVendor;
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::{DecodedDetail, EventKind};
use crate::kernel_log::event::{Pending, blank_event};
use crate::kernel_log::nvidia_catalog;

pub(crate) struct Nvidia;

impl Family for Nvidia {
    fn vendor(&self) -> GpuVendor {
        GpuVendor::Nvidia
    }

    fn classify(&self, p: &Pending, ctx: &EventCtx) -> Option<Class> {
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
            EventKind::GpuIdentity
            | EventKind::Amdgpu
            | EventKind::Habanalabs
            | EventKind::Neuron => {
                return None;
            }
        })
    }

    fn title(&self, p: &Pending) -> String {
        match p.event.kind {
            EventKind::Xid => match (p.event.code, &p.event.mnemonic) {
                (Some(c), Some(_)) => xid_title(c),
                (Some(c), None) => format!("Xid {c} (not in NVIDIA's catalog)"),
                (None, _) => "Xid with an unreadable code".into(),
            },
            EventKind::FallenOffBus => "GPU fallen off the bus".into(),
            EventKind::InitFailure => "GPU initialisation failure".into(),
            EventKind::Sxid => "SXid".into(),
            EventKind::CrashDump => "GPU crash dump".into(),
            _ => "GPU identity".into(),
        }
    }

    fn step(&self, kind: ActionKind, index: Option<u32>, pci: Option<&str>) -> String {
        super::policy::action_detail(kind, index, pci)
    }

    fn finding_code(&self, p: &Pending, gpu_has_79: bool) -> String {
        match p.event.kind {
            EventKind::Xid => match p.event.code.and_then(nvidia_catalog::lookup) {
                Some(e) => format!("xid.{}", e.code),
                None => "xid.unknown_code".into(),
            },
            EventKind::FallenOffBus if gpu_has_79 => "xid.79".into(),
            EventKind::FallenOffBus => "gpu.fallen_off_bus".into(),
            EventKind::InitFailure => "gpu.init_failed".into(),
            EventKind::CrashDump => "driver.crash_dump".into(),
            EventKind::Sxid => match p.sxid_fatal {
                Some(true) => "sxid.fatal".into(),
                Some(false) => "sxid.non_fatal".into(),
                None => "sxid.unclassified".into(),
            },
            _ => "gpu.identity".into(),
        }
    }
}

/// An Xid as findings name it: `Xid 48 ROBUST_CHANNEL_GPU_ECC_DBE (Double Bit ECC Error)`, the catalog's
/// mnemonic and description; `Xid 9999 (not in NVIDIA's catalog)`.
pub fn xid_title(code: u32) -> String {
    match nvidia_catalog::lookup(code) {
        Some(e) if e.description.is_empty() || e.description.starts_with('(') => {
            format!("Xid {code} {}", e.mnemonic)
        }
        Some(e) => format!("Xid {code} {} ({})", e.mnemonic, e.description),
        None => format!("Xid {code} (not in NVIDIA's catalog)"),
    }
}

/// An Xid line carrying only its code, as the grammar would hand it on.
fn line_of(code: u32, decoded: Option<DecodedDetail>) -> Pending {
    let mut p = blank_event(EventKind::Xid, 0, None, format!("Xid {code}"));
    p.event.code = Some(code);
    p.event.mnemonic = nvidia_catalog::lookup(code).map(|e| e.mnemonic.clone());
    p.detail.decoded = decoded;
    p
}

/// What a code alone cannot tell, for the codes whose class depends on more than the code.
fn unknown(code: u32) -> Option<&'static str> {
    Some(match code {
        13 => "whether it repeated on the same GPC/TPC",
        31 => "whether it repeated across runs on this GPU only",
        45 | 171 | 172 => "which other Xids came in its burst",
        48 => {
            "whether a row remap (Xid 63/64) came in its burst; if one did, drain before the reset"
        }
        74 => "the NVLink error registers",
        94 | 95 => "the driver's RST/D-RST verdict",
        144..=150 => "whether the NVLink5 error was fatal",
        154 => {
            "which recovery action the driver asked for (NVML's GPU recovery action says it now)"
        }
        _ => return None,
    })
}

/// The lines and contexts the kernel-log path can see for a code, so a code alone is judged as the
/// strongest of them.
fn cases(code: u32) -> Vec<(Pending, EventCtx)> {
    let alone = EventCtx::alone();
    let with = |codes: &[u32]| EventCtx {
        burst_codes: codes.iter().copied().collect::<BTreeSet<u32>>(),
        ..EventCtx::alone()
    };
    let mut out = vec![(line_of(code, None), alone.clone())];
    match code {
        13 => out.push((
            line_of(code, None),
            EventCtx {
                same_gpc_tpc: 2,
                ..EventCtx::alone()
            },
        )),
        31 => out.push((
            line_of(code, None),
            EventCtx {
                xid31_here: 2,
                xid31_bursts_here: 2,
                ..EventCtx::alone()
            },
        )),
        45 => out.push((line_of(code, None), with(&[45, 79]))),
        48 => out.push((line_of(code, None), with(&[48, 63]))),
        171 | 172 => out.push((line_of(code, None), with(&[48, code]))),
        74 => {
            for reg0 in [1u32 << 8, 1 << 4, 1 << 21, 1] {
                out.push((
                    line_of(
                        code,
                        Some(DecodedDetail::NvLinkRegisters {
                            link: 0,
                            registers: vec![reg0, 0, 0, 0, 0],
                        }),
                    ),
                    alone.clone(),
                ));
            }
        }
        94 | 95 => {
            for (rst, drst) in [
                (Some(true), Some(false)),
                (Some(false), Some(true)),
                (Some(false), Some(false)),
            ] {
                out.push((
                    line_of(
                        code,
                        Some(DecodedDetail::Containment {
                            contained: Some(code == 94),
                            reset_required: rst,
                            drain_and_reset_required: drst,
                        }),
                    ),
                    alone.clone(),
                ));
            }
        }
        144..=150 => {
            for fatal in [true, false] {
                out.push((
                    line_of(
                        code,
                        Some(DecodedDetail::NvLink5 {
                            unit: "unit".into(),
                            fatal,
                            link: 0,
                            intr_info: 0,
                            error_status: 0,
                        }),
                    ),
                    alone.clone(),
                ));
            }
        }
        154 => {
            for to in 0..=7 {
                out.push((
                    line_of(
                        code,
                        Some(DecodedDetail::RecoveryAction {
                            from: 0,
                            from_name: super::workflows::recovery_action_name(0).into(),
                            to,
                            to_name: super::workflows::recovery_action_name(to).into(),
                        }),
                    ),
                    alone.clone(),
                ));
            }
        }
        _ => {}
    }
    out
}

/// An Xid known only by its code (dcgm-exporter's last-Xid gauge, a boot's tally): the class the kernel
/// log gives its line, from the same classification; where the class depends on what the line or its
/// burst says, the strongest the kernel log could give (never a softer severity than it), with what the
/// code alone does not tell said.
pub fn xid_by_code(code: u32) -> Class {
    let strongest = cases(code)
        .iter()
        .map(|(p, ctx)| classify_xid(p, ctx))
        .max_by_key(|c| (c.severity, c.action))
        .expect("at least the line alone");
    match unknown(code) {
        Some(what) => Class {
            detail: format!(
                "{} (from the code alone, which does not tell {what}: the strongest the kernel log gives this code)",
                strongest.detail
            ),
            ..strongest
        },
        None => strongest,
    }
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
