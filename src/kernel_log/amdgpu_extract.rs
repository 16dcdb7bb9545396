//! Extraction of amdgpu records into `Pending` events, one record at a time, in bounded state.
//!
//! Some amdgpu events span records: a VM fault's head line is followed by its process and address lines,
//! a ring timeout by its process line, an ACA bank by one line per register. The head waits here for
//! them; any other record ends the wait and the head is handed on as it is ([`AmdExtractor::take_flushed`]),
//! so nothing is lost and at most one head, one bank and one event are held. Repeats of one fatal event
//! (every GPU of an XGMI hive logs it with the same `{N}`) are one event.

use std::collections::HashSet;

use super::amdgpu_catalog;
use super::contract::{AcaBank, CatalogStatus, DecodedDetail, EventKind};
use super::correlate::{EventCtx, classify_event};
use super::event::{Pending, blank_event};
use super::grammar::{AcaDecode, AmdKind, AmdLine, RasClass, Record, parse_amdgpu};

/// Distinct (GPU, class, block) RAS keys remembered to tell a first `in total` line from a repeat: a
/// node has a few GPUs and a few dozen blocks; a log naming more is hostile and the rest count as new.
const MAX_RAS_KEYS: usize = 256;
/// Fatal lines this close together (seconds) with the same event number, or with none, are one event.
const HIVE_FATAL_WINDOW_SECS: f64 = 60.0;

/// A head waiting for its continuation lines.
#[derive(Debug)]
struct Head {
    p: Pending,
    /// A VM fault waits for its address line; a ring timeout only for its process line.
    wants_address: bool,
    /// A ring timeout logged with `DRM_ERROR` names no device (Linux 6.8's `amdgpu_job_timedout`): it
    /// waits for the next device line too, since the same call goes on into `amdgpu_device_gpu_recover`,
    /// whose `GPU reset begin!` names the device that hung.
    wants_device: bool,
}

/// How far (seconds) the reset that names a deviceless ring timeout's GPU may follow it.
const RING_RESET_WINDOW_SECS: f64 = 10.0;

/// An ACA bank being read, register by register.
#[derive(Debug)]
struct AcaInProgress {
    pci: Option<String>,
    bank: u32,
    status: Option<u64>,
    ipid: Option<u64>,
    line: usize,
    ts: Option<f64>,
    event_id: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct AmdExtractor {
    head: Option<Head>,
    flushed: Option<Pending>,
    aca: Option<AcaInProgress>,
    /// The last fatal event: its number, time and GPU.
    last_fatal: Option<(Option<u64>, Option<f64>, Option<String>)>,
    /// RAS keys seen on a `new` (or legacy) line.
    ras_seen: HashSet<(Option<String>, RasClass, &'static str)>,
    /// The GPU whose reset is in progress: a `[drm] VRAM is lost` line (no device) belongs to it.
    resetting: Option<String>,
    /// GPUs that printed their own outcome (`GPU reset(N) succeeded!|failed`) since the last
    /// `GPU reset begin!`. `amdgpu_device_gpu_recover` prints one per GPU of the hive, then
    /// `GPU reset end with ret = %d` once, on the GPU that asked, with the hive's result: where that GPU
    /// printed its own outcome the end line adds nothing (a failure is on the GPU that printed it).
    reset_outcomes: Vec<Option<String>>,
}

/// GPUs remembered in `reset_outcomes`: a hive has up to 8; a log naming more is hostile.
const MAX_RESET_OUTCOMES: usize = 64;

impl AmdExtractor {
    /// Whether a record that is not an amdgpu line must still be shown to [`Self::push`] (it ends a head).
    pub fn waiting(&self) -> bool {
        self.head.is_some()
    }

    /// A head that an unrelated record ended, ready to be taken as it is.
    pub fn take_flushed(&mut self) -> Option<Pending> {
        self.flushed.take()
    }

    /// The input ended: the head still waiting, if any.
    pub fn finish(&mut self) -> Option<Pending> {
        self.flushed
            .take()
            .or_else(|| self.head.take().map(|h| h.p))
    }

    /// The event this record completes, if any (a head it ends is in [`Self::take_flushed`]).
    pub fn push(&mut self, r: &Record) -> Option<Pending> {
        let Some(line) = parse_amdgpu(&r.text) else {
            self.flush();
            return None;
        };
        if let Some(done) = self.continue_head(&line, r.ts) {
            return done;
        }
        self.event(r, line)
    }

    /// An unrelated record arrived (an NVIDIA line): the waiting head is complete as it is.
    pub fn flush(&mut self) {
        if let Some(h) = self.head.take() {
            // A second head before the first was taken is impossible (take_flushed follows every push).
            self.flushed = Some(h.p);
        }
    }

    /// A continuation of the waiting head: Some(completed event or nothing yet); None when the line is
    /// not one (the head, if any, is flushed).
    fn continue_head(&mut self, line: &AmdLine, ts: Option<f64>) -> Option<Option<Pending>> {
        let same = |h: &Head| {
            line.pci.is_none() || h.p.event.pci_bus_id.is_none() || h.p.event.pci_bus_id == line.pci
        };
        match &line.kind {
            AmdKind::ProcessInfo { name, pid } => {
                let h = self.head.as_mut().filter(|h| same(h))?;
                if h.p.event.process_name.is_none() && !name.is_empty() {
                    h.p.event.process_name = Some(name.clone());
                }
                // `process  pid 0 thread  pid 0`: the job had no task to name (amdgpu_vm_get_task_info),
                // not a process 0.
                h.p.event.pid = h.p.event.pid.or(pid.filter(|p| *p != 0));
                if h.wants_address || h.wants_device {
                    Some(None)
                } else {
                    Some(self.head.take().map(|h| h.p))
                }
            }
            AmdKind::FaultAddress { address } => {
                let h = self.head.as_mut().filter(|h| same(h) && h.wants_address)?;
                if let Some(DecodedDetail::Amdgpu { address: a, .. }) = &mut h.p.detail.decoded {
                    *a = Some(address.clone());
                }
                Some(self.head.take().map(|h| h.p))
            }
            AmdKind::FaultStatus => Some(None),
            _ => {
                // The reset the timeout started names its GPU (same call chain, so the very next
                // device line; a reset of another GPU later on is no evidence and is not taken).
                if let (Some(h), Some(pci), AmdKind::ResetBegin) =
                    (self.head.as_mut(), line.pci.as_ref(), &line.kind)
                    && h.wants_device
                    && h.p.event.pci_bus_id.is_none()
                    && match (h.p.ts, ts) {
                        (Some(a), Some(b)) => (0.0..=RING_RESET_WINDOW_SECS).contains(&(b - a)),
                        _ => true,
                    }
                {
                    h.p.event.pci_bus_id = Some(pci.clone());
                }
                self.flush();
                None
            }
        }
    }

    fn event(&mut self, r: &Record, line: AmdLine) -> Option<Pending> {
        let mut d = Decoded::default();
        let id: &str = match &line.kind {
            AmdKind::Ras {
                class,
                block,
                count,
                socket,
                die,
                total,
            } => {
                // An `in total` line of 0 is the driver listing every node, not an error.
                if *count == 0 {
                    return None;
                }
                let key = (line.pci.clone(), *class, *block);
                let seen = self.ras_seen.contains(&key);
                if !seen && self.ras_seen.len() < MAX_RAS_KEYS {
                    self.ras_seen.insert(key);
                }
                d.block = Some(block);
                d.count = Some(*count);
                d.socket = *socket;
                d.die = *die;
                // A total whose `new` line is outside the window stands for it.
                match (*class, *total && seen) {
                    (RasClass::Uncorrectable, false) => "ras_ue",
                    (RasClass::Deferred, false) => "ras_de",
                    (RasClass::Correctable, false) => "ras_ce",
                    (RasClass::Uncorrectable, true) => "ras_ue_total",
                    (RasClass::Deferred, true) => "ras_de_total",
                    (RasClass::Correctable, true) => "ras_ce_total",
                }
            }
            AmdKind::RasInstance { block, count, .. } => {
                d.block = Some(block);
                d.count = *count;
                "ras_instance"
            }
            AmdKind::Fatal => {
                let repeat = self.last_fatal.as_ref().is_some_and(|(id, ts, pci)| {
                    let close = match (ts, r.ts) {
                        (Some(a), Some(b)) => (a - b).abs() <= HIVE_FATAL_WINDOW_SECS,
                        _ => true,
                    };
                    close && *id == line.event_id && (line.event_id.is_some() || *pci != line.pci)
                });
                if repeat {
                    return None;
                }
                self.last_fatal = Some((line.event_id, r.ts, line.pci.clone()));
                "fatal"
            }
            AmdKind::PoisonConsumed => "poison_consumed",
            AmdKind::PoisonCreated => "poison_created",
            AmdKind::PagesSaved { pages } => {
                if *pages == 0 {
                    return None;
                }
                d.count = Some(*pages);
                "page_retired"
            }
            AmdKind::ErrorAddress { address } => {
                d.address = Some(address.clone());
                "error_address"
            }
            AmdKind::BadPageThreshold {
                count,
                threshold,
                near,
            } => {
                d.count = Some(*count);
                d.threshold = Some(*threshold);
                if *near {
                    "bad_page_threshold_near"
                } else {
                    "bad_page_threshold"
                }
            }
            AmdKind::ResetBegin => {
                self.reset_outcomes.clear();
                self.resetting = line.pci.clone();
                "reset"
            }
            AmdKind::ResetMethod { method } => {
                d.what = Some(method.clone());
                "reset_method"
            }
            AmdKind::ResetSucceeded => {
                // `GPU reset succeeded, trying to resume` comes before the resume (and its VRAM-lost
                // line); `GPU reset(N) succeeded!` ends the reset.
                if line.text.starts_with("GPU reset(") {
                    self.resetting = None;
                    self.outcome(&line.pci);
                }
                "reset_succeeded"
            }
            AmdKind::ResetFailed => {
                // Each GPU of a hive prints its own outcome: this one failed whatever the others say.
                if line.text.starts_with("GPU reset(") {
                    self.outcome(&line.pci);
                }
                // The timeout handler's `GPU Recovery Failed: %d` (amdgpu_job.c) repeats the result of
                // the reset it asked for, once that GPU's outcome or the reset's end was printed.
                if line.text.starts_with("GPU Recovery Failed")
                    && self.reset_outcomes.contains(&line.pci)
                {
                    return None;
                }
                self.resetting = None;
                "reset_failed"
            }
            AmdKind::ResetEnd { ret } => {
                // Printed only for a nonzero ret (amdgpu_device.c); without the GPU's own outcome line
                // (the reset stopped before the per-GPU loop) it is that GPU's failed reset.
                if *ret == 0 || self.reset_outcomes.contains(&line.pci) {
                    return None;
                }
                self.outcome(&line.pci);
                self.resetting = None;
                "reset_failed"
            }
            AmdKind::QueuePreempt => "queue_preempt_failed",
            AmdKind::QcmFenceTimeout => "qcm_fence_timeout",
            AmdKind::MesFailure { queue: false } => "mes_no_response",
            AmdKind::MesFailure { queue: true } => "mes_queue_failed",
            AmdKind::IllegalCommand { register: true } => "illegal_register_access",
            AmdKind::IllegalCommand { register: false } => "illegal_instruction",
            AmdKind::VramLost => "vram_lost",
            AmdKind::RingTimeout { ring, soft } => {
                d.what = Some(ring.clone());
                if *soft {
                    "ring_soft_recovered"
                } else {
                    let p = self.pending((r.line, r.ts), &line, "ring_timeout", d);
                    let wants_device = p.event.pci_bus_id.is_none();
                    self.head = Some(Head {
                        p,
                        wants_address: false,
                        wants_device,
                    });
                    return None;
                }
            }
            AmdKind::RingReset { ring, ok } => {
                d.what = Some(ring.clone());
                if *ok {
                    "ring_reset_succeeded"
                } else {
                    "ring_reset_failed"
                }
            }
            AmdKind::VmFault {
                hub,
                pasid: _,
                process,
            } => {
                d.what = Some(hub.clone());
                let mut p = self.pending((r.line, r.ts), &line, "vm_fault", d);
                if let Some((name, pid)) = process {
                    p.event.process_name = (!name.is_empty()).then(|| name.clone());
                    p.event.pid = *pid;
                }
                self.head = Some(Head {
                    p,
                    wants_address: true,
                    wants_device: false,
                });
                return None;
            }
            AmdKind::ProcessInfo { .. }
            | AmdKind::FaultAddress { .. }
            | AmdKind::FaultStatus
            | AmdKind::AcaHeader => return None,
            AmdKind::AcaRegister { bank, reg, value } => {
                return self.aca(r, &line, *bank, reg, *value);
            }
            // The older GMCs' fault prints no process and its address on a line of its own: the head
            // alone is the event.
            AmdKind::GmcFault => "vm_fault",
            AmdKind::SmuHang => "smu_hang",
            AmdKind::InitFailed => "init_failed",
            AmdKind::BootFault => "boot_fault",
            AmdKind::XgmiError => "xgmi_error",
            AmdKind::Throttle { reasons } => {
                d.what = Some(reasons.clone());
                "thermal_throttle"
            }
        };
        let mut p = self.pending((r.line, r.ts), &line, id, d);
        // `[drm] VRAM is lost` names no device: it is the GPU being reset, when one is. So are KFD's
        // and MES's `pr_err`/`DRM_ERROR` lines in a reset: its pre-reset suspends that GPU's queues.
        if matches!(
            id,
            "vram_lost"
                | "mes_no_response"
                | "mes_queue_failed"
                | "queue_preempt_failed"
                | "qcm_fence_timeout"
        ) && p.event.pci_bus_id.is_none()
        {
            p.event.pci_bus_id = self.resetting.clone();
        }
        Some(p)
    }

    /// Note that a GPU printed its own reset outcome.
    fn outcome(&mut self, pci: &Option<String>) {
        if self.reset_outcomes.len() < MAX_RESET_OUTCOMES && !self.reset_outcomes.contains(pci) {
            self.reset_outcomes.push(pci.clone());
        }
    }

    fn aca(
        &mut self,
        r: &Record,
        line: &AmdLine,
        bank: u32,
        reg: &str,
        value: u64,
    ) -> Option<Pending> {
        let same = self
            .aca
            .as_ref()
            .is_some_and(|a| a.pci == line.pci && a.bank == bank);
        if !same {
            self.aca = Some(AcaInProgress {
                pci: line.pci.clone(),
                bank,
                status: None,
                ipid: None,
                line: r.line,
                ts: r.ts,
                event_id: line.event_id,
            });
        }
        let a = self.aca.as_mut()?;
        match reg {
            "STATUS" => a.status = Some(value),
            "IPID" => a.ipid = Some(value),
            _ => {}
        }
        let (Some(status), Some(ipid)) = (a.status, a.ipid) else {
            return None;
        };
        let a = self.aca.take()?;
        let dec = AcaDecode::of(status, ipid);
        let bank_line = AmdLine {
            pci: a.pci.clone(),
            event_id: a.event_id,
            kind: line.kind.clone(),
            text: format!(
                "ACA bank {bank}: STATUS=0x{status:016x} IPID=0x{ipid:016x} ({}{}{}{}, socket {}, die {})",
                dec.bank_type(),
                if dec.uncorrectable {
                    ", uncorrectable"
                } else {
                    ""
                },
                if dec.deferred { ", deferred" } else { "" },
                if dec.poison { ", poison" } else { "" },
                dec.socket,
                dec.die
            ),
        };
        let d = Decoded {
            socket: Some(dec.socket),
            die: Some(dec.die),
            aca: Some(AcaBank {
                bank,
                status: format!("0x{status:016x}"),
                ipid: format!("0x{ipid:016x}"),
                unit: dec.bank_type(),
                uncorrectable: dec.uncorrectable,
                deferred: dec.deferred,
                poison: dec.poison,
                socket: dec.socket,
                die: dec.die,
            }),
            ..Decoded::default()
        };
        Some(self.pending((a.line, a.ts), &bank_line, "aca_bank", d))
    }

    fn pending(
        &self,
        (at, ts): (usize, Option<f64>),
        line: &AmdLine,
        id: &str,
        d: Decoded,
    ) -> Pending {
        let entry = amdgpu_catalog::lookup(id);
        let mut p = blank_event(EventKind::Amdgpu, at, ts, line.text.clone());
        p.event.pci_bus_id = line.pci.clone();
        p.event.mnemonic = entry.map(|e| e.mnemonic.to_string());

        p.detail.catalog_status = if entry.is_some() {
            CatalogStatus::Catalog
        } else {
            CatalogStatus::Unknown
        };
        p.detail.decoded = Some(DecodedDetail::Amdgpu {
            event: id.to_string(),
            block: d.block.map(str::to_string),
            socket: d.socket,
            die: d.die,
            count: d.count,
            threshold: d.threshold,
            event_id: line.event_id,
            what: d.what,
            address: d.address,
            aca: d.aca,
        });
        // The action as the class reads it (an ACA bank's STATUS, throttling by the power cap alone).
        p.event.immediate_action = classify_event(&p, &EventCtx::default())
            .map(|c| amdgpu_catalog::bucket(c.action).to_string());
        p
    }
}

/// What a line adds to its event's decoded detail.
#[derive(Default)]
struct Decoded {
    block: Option<&'static str>,
    socket: Option<u32>,
    die: Option<u32>,
    count: Option<u64>,
    threshold: Option<u64>,
    what: Option<String>,
    address: Option<String>,
    aca: Option<AcaBank>,
}
