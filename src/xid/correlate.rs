//! Correlation: bursts, the catalog's workflows (45, 48, 13, 31, 74, 94/95, 144–150, 154), the
//! project's policy for blank-action, driver-only and unknown codes, and the action text.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use super::catalog::{self, CatalogEntry};
use super::contract::{Burst, DecodedDetail, EventKind};
use super::event::Pending;
use super::time::rfc3339;
use crate::finding::{ActionKind, Severity};

/// Silence that ends a burst (NVIDIA Fleet Intelligence: "grouped until there has been more than
/// three minutes of silence").
pub const BURST_GAP_SECS: f64 = 180.0;
/// A sticky code keeps its burst open this long.
pub const STICKY_GAP_SECS: f64 = 3.0 * 3600.0;
/// Codes whose effects persist (NVSentinel's analyzer: 74, 79, 95, 109, 119).
pub const STICKY_CODES: &[u32] = &[74, 79, 95, 109, 119];

/// A classification: how bad, what to do, and why (one sentence).
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub severity: Severity,
    pub action: ActionKind,
    pub detail: String,
}

fn class(severity: Severity, action: ActionKind, detail: impl Into<String>) -> Class {
    Class {
        severity,
        action,
        detail: detail.into(),
    }
}

/// What correlation needs to know about a GPU.
#[derive(Debug, Clone)]
pub struct GpuView {
    pub key: Option<String>,
    pub index: Option<u32>,
    pub recovery_action: Option<u32>,
    pub sram_threshold_exceeded: Option<bool>,
}

/// Context of one event within its GPU's history.
#[derive(Debug, Clone, Default)]
pub struct EventCtx {
    /// Xid codes of the other events in the same burst on the same GPU.
    pub burst_codes: BTreeSet<u32>,
    /// Xid 13 on this GPU at the same (GPC, TPC), this event included.
    pub same_gpc_tpc: usize,
    /// Some (GPC, TPC) of this GPU has repeated Xid 13s.
    pub gpc_tpc_repeated_on_gpu: bool,
    /// Xid 31 events on this GPU, and in how many bursts.
    pub xid31_here: usize,
    pub xid31_bursts_here: usize,
    /// GPUs other than this one with Xid 31.
    pub xid31_other_gpus: usize,
    /// This is the last Xid 154 on the GPU.
    pub last_154: bool,
    pub nvml_recovery_action: Option<u32>,
    pub sram_threshold_exceeded: Option<bool>,
}

/// Bursts listed in a GPU's summary: the first ones and the latest ones; those between are counted.
pub const LISTED_FIRST_BURSTS: usize = 16;
pub const LISTED_LAST_BURSTS: usize = 16;

/// Xid codes of one burst with how often each occurred. Shared (`Rc`) between the open burst and the
/// listed events in it, so an event's burst context is complete once the burst closes without the
/// burst keeping its events.
pub(crate) type BurstCodes = Rc<RefCell<BTreeMap<u32, usize>>>;

/// Where an Xid landed in its GPU's history.
pub(crate) struct Placement {
    /// Index of its burst among all of the GPU's bursts.
    pub burst: usize,
    pub codes: BurstCodes,
    /// The burst this event closed (it came after more than the gap), if any.
    pub closed: Option<BurstCodes>,
}

struct OpenBurst {
    burst: Burst,
    codes: BurstCodes,
}

/// One GPU's Xid history, built one event at a time in constant memory: bursts (the first and latest
/// listed, the rest counted) and the GPU-wide facts the workflows need (GPC/TPC repeats, Xid 31 runs,
/// the last Xid 154).
#[derive(Default)]
pub(crate) struct GpuHistory {
    first: Vec<Burst>,
    latest: VecDeque<Burst>,
    total: usize,
    open: Option<OpenBurst>,
    last_ts: Option<f64>,
    gpc_tpc: HashMap<(u32, u32), usize>,
    xid31: usize,
    xid31_bursts: usize,
    last_31_burst: Option<usize>,
    /// Sequence number of the last Xid 154 (any form).
    pub last_154: Option<usize>,
}

impl GpuHistory {
    /// Add the next Xid (in log order). Events without a timestamp join the burst in progress.
    pub fn push_xid(&mut self, p: &Pending, seq: usize) -> Placement {
        let sticky_now = self.open.as_ref().is_some_and(|b| b.burst.sticky);
        let gap = if sticky_now {
            STICKY_GAP_SECS
        } else {
            BURST_GAP_SECS
        };
        let new = match (&self.open, self.last_ts, p.ts) {
            (None, _, _) => true,
            (Some(_), Some(a), Some(b)) => (b - a).abs() > gap,
            _ => false,
        };
        let mut closed = None;
        if new {
            closed = self.close();
            self.open = Some(OpenBurst {
                burst: Burst {
                    start: p.ts.and_then(rfc3339),
                    end: None,
                    events: 0,
                    codes: Vec::new(),
                    sticky: false,
                },
                codes: BurstCodes::default(),
            });
            self.total += 1;
        }
        let burst = self.total - 1;
        let Some(open) = self.open.as_mut() else {
            unreachable!("a burst was opened above")
        };
        let b = &mut open.burst;
        b.events += 1;
        if let Some(c) = p.event.code {
            if let Err(at) = b.codes.binary_search(&c) {
                b.codes.insert(at, c);
            }
            if STICKY_CODES.contains(&c) {
                b.sticky = true;
            }
            *open.codes.borrow_mut().entry(c).or_default() += 1;
            if c == 31 {
                self.xid31 += 1;
                if self.last_31_burst != Some(burst) {
                    self.xid31_bursts += 1;
                    self.last_31_burst = Some(burst);
                }
            }
            if c == 154 {
                self.last_154 = Some(seq);
            }
        }
        if let Some(t) = p.ts {
            if b.start.is_none() {
                b.start = rfc3339(t);
            }
            b.end = rfc3339(t);
            self.last_ts = Some(t);
        }
        if let Some(DecodedDetail::GraphicsException { gpc, tpc, .. }) = p.detail.decoded {
            *self.gpc_tpc.entry((gpc, tpc)).or_default() += 1;
        }
        Placement {
            burst,
            codes: open.codes.clone(),
            closed,
        }
    }

    /// Close the burst in progress (at the end of the input, or when the next one starts).
    pub fn close(&mut self) -> Option<BurstCodes> {
        let open = self.open.take()?;
        if self.first.len() < LISTED_FIRST_BURSTS {
            self.first.push(open.burst);
        } else {
            self.latest.push_back(open.burst);
            if self.latest.len() > LISTED_LAST_BURSTS {
                self.latest.pop_front();
            }
        }
        Some(open.codes)
    }

    pub fn has_31(&self) -> bool {
        self.xid31 > 0
    }

    /// The listed bursts (call after `close`) and how many were left out between them.
    pub fn bursts(&self) -> (Vec<Burst>, usize) {
        let listed: Vec<Burst> = self.first.iter().chain(&self.latest).cloned().collect();
        let left_out = self.total - listed.len() - usize::from(self.open.is_some());
        (listed, left_out)
    }

    /// Position of burst `abs` among the listed ones.
    pub fn listed_index(&self, abs: usize) -> Option<usize> {
        if abs < self.first.len() {
            return Some(abs);
        }
        let latest_from = self.total - self.latest.len();
        (abs >= latest_from).then(|| self.first.len() + abs - latest_from)
    }

    /// The context of one event: its burst's other codes plus this GPU's history.
    pub fn ctx(
        &self,
        p: &Pending,
        codes: Option<&BTreeMap<u32, usize>>,
        seq: usize,
        xid31_other_gpus: usize,
        view: Option<&GpuView>,
    ) -> EventCtx {
        let own = p.event.code;
        let burst_codes = codes
            .map(|m| {
                m.iter()
                    .filter(|(c, n)| **n > usize::from(Some(**c) == own))
                    .map(|(c, _)| *c)
                    .collect()
            })
            .unwrap_or_default();
        let same_gpc_tpc = match p.detail.decoded {
            Some(DecodedDetail::GraphicsException { gpc, tpc, .. }) => {
                self.gpc_tpc.get(&(gpc, tpc)).copied().unwrap_or(0)
            }
            _ => 0,
        };
        EventCtx {
            burst_codes,
            same_gpc_tpc,
            gpc_tpc_repeated_on_gpu: self.gpc_tpc.values().any(|n| *n >= 2),
            xid31_here: self.xid31,
            xid31_bursts_here: self.xid31_bursts,
            xid31_other_gpus,
            last_154: self.last_154 == Some(seq),
            nvml_recovery_action: view.and_then(|v| v.recovery_action),
            sram_threshold_exceeded: view.and_then(|v| v.sram_threshold_exceeded),
        }
    }
}

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
    let Some(entry) = catalog::lookup(code) else {
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

/// The catalog's immediate-action bucket as severity and action.
pub fn bucket(entry: &CatalogEntry) -> Class {
    let b = entry.immediate_action.as_deref().unwrap_or("");
    let d = &entry.description;
    match b {
        "RESTART_APP" => class(
            Severity::Warning,
            ActionKind::RestartApplication,
            format!("{d}: restart the application (catalog RESTART_APP); the GPU needs no reset"),
        ),
        "IGNORE" => class(
            Severity::Info,
            ActionKind::None,
            format!("{d}: no action required (catalog IGNORE)"),
        ),
        "RESET_GPU" => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!("{d}: the GPU must be reset (catalog RESET_GPU)"),
        ),
        "RESTART_BM" => class(
            Severity::Critical,
            ActionKind::RebootNode,
            format!(
                "{d}: the node must be rebooted (catalog RESTART_BM); check kernel PCI/AER logs for the cause"
            ),
        ),
        "RESTART_VM" => class(
            Severity::Critical,
            ActionKind::RebootNode,
            format!("{d}: restart the VM that owns the GPU (catalog RESTART_VM)"),
        ),
        "CHECK_MECHANICALS" => class(
            Severity::Critical,
            ActionKind::CheckMechanicals,
            format!("{d}: check seating and power connections (catalog CHECK_MECHANICALS)"),
        ),
        "UPDATE_SWFW" => class(
            Severity::Warning,
            ActionKind::UpdateSoftware,
            format!("{d}: update driver/firmware (catalog UPDATE_SWFW)"),
        ),
        "CHECK_UVM" => class(
            Severity::Warning,
            ActionKind::ResetGpuWhenDrained,
            format!(
                "{d}: if UVM or vGPU is in use, reset the GPU; otherwise no action (catalog CHECK_UVM)"
            ),
        ),
        "CONTACT_SUPPORT" if entry.is_unused() => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            "a code the catalog marks Unused on current GPUs: unexpected on Ampere or newer (old GPU, wrong catalog, or a driver issue); contact support (catalog CONTACT_SUPPORT)",
        ),
        "CONTACT_SUPPORT" => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            format!("{d}: contact support (catalog CONTACT_SUPPORT)"),
        ),
        other => class(
            Severity::Warning,
            ActionKind::Investigate,
            format!("{d}: catalog bucket {other}: investigate"),
        ),
    }
}

fn xid13(ctx: &EventCtx) -> Class {
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

fn xid31(ctx: &EventCtx) -> Class {
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

fn xid45(p: &Pending, ctx: &EventCtx) -> Class {
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

fn xid48(ctx: &EventCtx) -> Class {
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
fn xid74(d: Option<&DecodedDetail>) -> Class {
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

fn xid94_95(code: u32, d: Option<&DecodedDetail>, entry: &CatalogEntry) -> Class {
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

fn nvlink5(d: Option<&DecodedDetail>) -> Class {
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
    match v {
        0 => "None",
        1 => "GPU Reset Required",
        2 => "Node Reboot Required",
        3 => "Drain P2P",
        4 => "Drain and Reset",
        5 => "Recover IMEX Domain",
        _ => "Unknown",
    }
}

/// The driver's recovery action (NVML field 230 or an Xid 154's target) as a classification.
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
            "the driver asks to recover the IMEX domain",
        ),
        _ => class(
            Severity::Warning,
            ActionKind::Investigate,
            "unknown recovery action value",
        ),
    })
}

fn xid154(d: Option<&DecodedDetail>, ctx: &EventCtx) -> Class {
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

/// Codes 162–172 have blank resolution buckets in the catalog; this is the project's explicit policy.
fn blank_policy(code: u32, ctx: &EventCtx) -> Class {
    let c = match code {
        162 => class(
            Severity::Info,
            ActionKind::None,
            "power-smoothing circuitry re-engaged: informational",
        ),
        163 => class(
            Severity::Warning,
            ActionKind::Monitor,
            "power-smoothing circuitry disengaged: the GPU runs without it; check the power-smoothing configuration",
        ),
        164 => class(
            Severity::Warning,
            ActionKind::Monitor,
            "power-smoothing circuitry is near the end of its lifetime: plan maintenance",
        ),
        165 => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            "power-smoothing circuitry lifetime exhausted: plan a replacement with support",
        ),
        166 | 170 => class(
            Severity::Warning,
            ActionKind::Investigate,
            "confidential-computing NVLink event: check the CC/NVLE configuration",
        ),
        167 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "PCIe fatal timeout: treated as severe as the Xid 48 family: reset the GPU",
        ),
        168 => class(
            Severity::Warning,
            ActionKind::Investigate,
            "errors in the write-protected region reduced usable memory: enable ECC (row remapping) or reboot to shift the WPR",
        ),
        169 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "SEC2 micro-controller halt: reset the GPU",
        ),
        171 | 172 if ctx.burst_codes.contains(&48) => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "uncorrectable memory error detail accompanying Xid 48: follow Xid 48's guidance",
        ),
        171 | 172 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "uncorrectable memory error (Xid 48 family): reset the GPU",
        ),
        _ => class(
            Severity::Warning,
            ActionKind::Investigate,
            "no catalog action: investigate",
        ),
    };
    Class {
        detail: format!(
            "catalog gives no action for this code; project policy: {}",
            c.detail
        ),
        ..c
    }
}

fn join(codes: &[u32]) -> String {
    codes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stable finding code of an event.
pub(crate) fn finding_code(p: &Pending, gpu_has_79: bool) -> String {
    match p.event.kind {
        EventKind::Xid => match p.event.code.and_then(catalog::lookup) {
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
        EventKind::GpuIdentity => "gpu.identity".into(),
    }
}

/// The concrete step for an action kind.
pub fn action_detail(kind: ActionKind, index: Option<u32>, pci: Option<&str>) -> String {
    let target = match (index, pci) {
        (Some(i), _) => format!("-i {i}"),
        (None, Some(p)) => format!("-i {p}"),
        (None, None) => "-i <gpu>".into(),
    };
    match kind {
        ActionKind::None => "no action needed".into(),
        ActionKind::Monitor => "keep watching: re-run `node-probe xid --since 1h` and act if it repeats".into(),
        ActionKind::Investigate => "investigate: collect `nvidia-bug-report.sh` and the lines above; escalate to NVIDIA support if it repeats".into(),
        ActionKind::RestartApplication => "restart the affected application or pod; the GPU needs no reset".into(),
        ActionKind::CheckCooling => "check airflow and cooling".into(),
        ActionKind::CheckPower => "check power delivery".into(),
        ActionKind::UpdateSoftware => "update the driver/firmware (and vGPU guest/host drivers to a compatible pair)".into(),
        ActionKind::RestartFabricManager => "restart Fabric Manager: `systemctl restart nvidia-fabricmanager`".into(),
        ActionKind::ResetGpuWhenDrained => format!("when the GPU's work has drained, reset it: `nvidia-smi -r {target}`"),
        ActionKind::ResetGpu => format!("stop the GPU's workloads (cordon the node, evict pods using the GPU), then `nvidia-smi -r {target}`; reboot if the reset fails"),
        ActionKind::DrainAndResetGpu => format!("cordon the node, let running work finish (no new work), then `nvidia-smi -r {target}`"),
        ActionKind::CheckMechanicals => "cordon and drain the node, then check the GPU's seating, power cables and NVLink/PCIe connections".into(),
        ActionKind::RebootNode => "cordon and drain the node, then reboot it".into(),
        ActionKind::Rma => "cordon the node and start the RMA process for the GPU".into(),
        ActionKind::ContactSupport => "collect `nvidia-bug-report.sh` and contact NVIDIA support".into(),
    }
}
