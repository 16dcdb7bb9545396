//! The amdgpu driver's line grammar inside a record: RAS error lines (both layouts, with and without the
//! `{N}` event number), the fatal ATHUB event, poison, bad-page retirement and its threshold, GPU resets,
//! ring timeouts, VM page faults (head and continuation lines), ACA bank registers, SMU, init and boot
//! faults, XGMI errors and throttling. Formats from the ROCm amdgpu driver (see `kernel_log/amdgpu_catalog.rs`
//! for the source of each); what each means lives in that catalog, not here.
//!
//! Prefixes: `dev_*` messages read `amdgpu dddd:bb:dd.f: amdgpu: <msg>`; `RAS_EVENT_LOG` messages
//! `amdgpu dddd:bb:dd.f: {N}<msg>` (no `amdgpu: `); `DRM_ERROR` `[drm:fn [amdgpu]] *ERROR* <msg>` and
//! `[drm] <msg>` carry no PCI address. Total like the NVIDIA grammar: any input yields "not an amdgpu
//! line" rather than a panic, and the driver's own wording must be present.

use std::sync::LazyLock;

use regex::Regex;

use super::nvidia_lines::{MAX_FIELD_CHARS, clip, clip_to};
use crate::pci::normalize_bus_id;

/// The class of a RAS error line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RasClass {
    Uncorrectable,
    Deferred,
    Correctable,
}

impl RasClass {
    /// `ue`, `de`, `ce`: the finding codes' and the catalog ids' infix.
    pub fn short(self) -> &'static str {
        match self {
            RasClass::Uncorrectable => "ue",
            RasClass::Deferred => "de",
            RasClass::Correctable => "ce",
        }
    }
}

/// The RAS blocks the driver names (`ras_block_string` and the MCA sub-blocks); any other name is `other`,
/// so a line cannot mint finding codes without end.
const RAS_BLOCKS: &[&str] = &[
    "umc",
    "sdma",
    "gfx",
    "mmhub",
    "athub",
    "pcie_bif",
    "hdp",
    "xgmi_wafl",
    "df",
    "smn",
    "sem",
    "mp0",
    "mp1",
    "fuse",
    "mca",
    "vcn",
    "jpeg",
    "ih",
    "mpio",
    "mca_mp0",
    "mca_mp1",
    "mca_mpio",
    "mca_iohc",
];

/// A RAS block name as finding codes spell it: lowercase, one of the driver's, else `other`.
pub fn ras_block(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    RAS_BLOCKS
        .iter()
        .find(|b| **b == lower)
        .copied()
        .unwrap_or("other")
}

/// What one amdgpu record says.
#[derive(Debug, Clone, PartialEq)]
pub enum AmdKind {
    /// `[socket: S, die: D,] N [new] <class> hardware errors detected [in total] in <block> block`.
    Ras {
        class: RasClass,
        block: &'static str,
        count: u64,
        socket: Option<u32>,
        die: Option<u32>,
        total: bool,
    },
    /// Per-instance detail (`…, instance: I, memory_id: M`, `Uncorrectable error detected in UMC inst: …`).
    RasInstance {
        class: Option<RasClass>,
        block: &'static str,
        count: Option<u64>,
    },
    /// `uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!`
    Fatal,
    PoisonConsumed,
    PoisonCreated,
    /// `Saved %d pages to EEPROM table.`
    PagesSaved {
        pages: u64,
    },
    /// `Error Address(PA):0x… Row:… Col:… Bank:… Channel:…`
    ErrorAddress {
        address: String,
    },
    /// `Saved bad pages %d reaches threshold value %d`, `RAS records:%d exceed threshold:%d` (`near`: the
    /// boot-time `exceeds 90% of threshold`).
    BadPageThreshold {
        count: u64,
        threshold: u64,
        near: bool,
    },
    ResetBegin,
    /// `MODE1 reset`, `BACO reset`, `GPU psp mode1 reset`, …
    ResetMethod {
        method: String,
    },
    ResetSucceeded,
    ResetFailed,
    /// `GPU reset end with ret = %d` (`amdgpu_device_gpu_recover`, printed only when ret != 0).
    ResetEnd {
        ret: i64,
    },
    VramLost,
    /// `ring X timeout, signaled seq=…` (`soft`: `ring X timeout, but soft recovered`).
    RingTimeout {
        ring: String,
        soft: bool,
    },
    /// `Ring X reset succeeded|failed` (Linux 6.13 to 6.15 printed `failure` for `failed`).
    RingReset {
        ring: String,
        ok: bool,
    },
    /// `[gfxhub] [no-]retry page fault (src_id:… pasid:N[, for process P pid N thread …])`: the head.
    VmFault {
        hub: String,
        pasid: Option<u32>,
        process: Option<(String, Option<u32>)>,
    },
    /// A fault's or a ring timeout's process line (` for process`, ` in process`, ` Process`,
    /// `Process information: process`).
    ProcessInfo {
        name: String,
        pid: Option<u32>,
    },
    /// GMC v6 to v8's (SI, CIK, VI) VM protection fault head, `GPU fault detected: %d 0x%08x`
    /// (gmc_v6_0.c, gmc_v7_0.c, gmc_v8_0.c): its address, status and decode lines follow as detail.
    GmcFault,
    /// A fault's `in page starting at address 0x… from …` line.
    FaultAddress {
        address: String,
    },
    /// A fault's status lines (`VM_L2_PROTECTION_FAULT_STATUS:…`, `Faulty UTCL2 client ID`, `RW: …`).
    FaultStatus,
    /// `[Hardware Error]: Accelerator Check Architecture events logged` (and the scrubber note).
    AcaHeader,
    /// `[Hardware Error]: ACA[NN/MM].REG=0x…` or the ROCm 6.2 `aca entry[NN].REG=0x…`.
    AcaRegister {
        bank: u32,
        reg: String,
        value: u64,
    },
    SmuHang,
    /// A compute queue the CP (or the HWS behind KFD) did not preempt in time.
    QueuePreempt,
    /// KFD's `qcm fence wait loop timeout expired`: the HWS did not answer a queue-map request.
    QcmFenceTimeout,
    /// The MES firmware did not answer (`MES failed to respond to msg=…`) or refused a queue.
    MesFailure {
        queue: bool,
    },
    /// `Illegal register access|instruction in [SDMA ]command stream` (a privileged-register or
    /// illegal-opcode interrupt).
    IllegalCommand {
        register: bool,
    },
    InitFailed,
    BootFault,
    XgmiError,
    /// `WARN: GPU is throttled, expect performance decrease. <reasons>.`
    Throttle {
        reasons: String,
    },
}

/// One recognised amdgpu record.
#[derive(Debug, Clone, PartialEq)]
pub struct AmdLine {
    /// Normalised `dddd:bb:dd.f`; None for `[drm…]` lines, which name no device.
    pub pci: Option<String>,
    /// The `{N}` RAS event number, where printed.
    pub event_id: Option<u64>,
    pub kind: AmdKind,
    /// The message after the prefixes, clipped.
    pub text: String,
}

/// Cheap test that a record could be an amdgpu line at all; everything else skips the parser.
#[inline]
pub fn may_be_amdgpu(text: &str) -> bool {
    // `DRM_WARN` prints `[drm] ` and no device or driver name; the MES queue failure is amdgpu's own
    // wording (amdgpu_mes.c).
    text.contains("amdgpu")
        || text.starts_with("drmn")
        || text.contains("[drm] VRAM is lost")
        || text.contains("[drm] failed to remove hardware queue")
}

// Repetitions stay unbounded (`\S+`, `.*?`) and ASCII digits stay `[0-9]`: a bounded Unicode class
// compiles into thousands of automaton states, milliseconds per probe run; lengths are checked after.
const MAX_RING_NAME: usize = 64;

static DEV_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^amdgpu ([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]):")
        .expect("static regex")
});
static RAS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:socket: ([0-9]{1,9}), die: ([0-9]{1,9}),? )?([0-9]{1,19}) (new )?(uncorrectable|correctable|deferred) hardware errors detected in (total in )?([A-Za-z0-9_]{1,32})(,? block(?:, instance: )?|, instance: )",
    )
    .expect("static regex")
});
static UMC_INST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Uncorrectable error detected in UMC inst: [0-9]{1,9}, chan_idx: [0-9]{1,9}")
        .expect("static regex")
});
static RING_TIMEOUT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^ring (\S+) timeout, (signaled seq=|but soft recovered)").expect("static regex")
});
static RING_RESET_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Ring (\S+) reset (succeeded|failed|failure)$").expect("static regex")
});
static VM_FAULT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\[([A-Za-z0-9_]{1,16})\] (?:(?:no-)?retry )?page fault \(src_id:[0-9]{1,9} ring:[0-9]{1,9} vmid:[0-9]{1,9} pasid:([0-9]{1,9})(?:, for process (.*?) pid ([0-9]{1,9}) thread .*? pid [0-9]{1,9})?\)",
    )
    .expect("static regex")
});
static PROCESS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:for process|in process|Process information: process|Process) (.*?) pid ([0-9]{1,9})\b")
        .expect("static regex")
});
static ADDRESS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^in page starting at address (0x[0-9a-fA-F]{1,16})").expect("static regex")
});
static ACA_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:ACA\[([0-9]{1,4})/[0-9]{1,4}\]|aca entry\[([0-9]{1,4})\])\.([A-Z_0-9]{1,16})=0x([0-9a-fA-F]{1,16})\b")
        .expect("static regex")
});
/// The SMU message mailbox's failures in the powerplay managers (`smu7_smumgr.c`, `ci_smumgr.c`,
/// `smu9_smumgr.c`, `smu10_smumgr.c`, `vega20_smumgr.c`): each spells it differently.
static SMU_SEND_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:Failed to send message 0x[0-9a-fA-F]+, response 0x|Failed to send message: 0x[0-9a-fA-F]+, ret value: 0x|Failed to send Message [0-9a-fA-F]+\.$|failed to send message [0-9a-fA-F]+ ret is -?[0-9]+)",
    )
    .expect("static regex")
});
/// KFD's per-queue preemption failures (`amdgpu_amdkfd_gfx_v10_3.c`, `_v11.c`; `kfd_mqd_manager.c`).
static QUEUE_PREEMPT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:cp queue pipe [0-9]+ queue [0-9]+ preemption failed$|(?:XCC [0-9]+: )?Queue preemption failed for queue with doorbell_id: [0-9a-fA-F]+$)",
    )
    .expect("static regex")
});
/// `mes_v11_0.c`/`mes_v12_0.c` (6.12: `MES[(N)] failed to respond to msg=…`; 6.1: `MES failed to
/// response msg=%d`).
static MES_RESPOND_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^MES(?:\([0-9]+\))? failed to (?:respond to|response) msg=\S")
        .expect("static regex")
});
static THRESHOLD_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:Saved bad pages ([0-9]{1,19}) reaches threshold value ([0-9]{1,19})|RAS records:([0-9]{1,19}) exceeds? (90% of )?threshold:([0-9]{1,19}))",
    )
    .expect("static regex")
});

/// FreeBSD's drm-kmod port prints the device by its newbus name, `drmn<unit>: ` (its linuxkpi
/// `dev_printk` is `device_printf`), never a PCI address: the event stands, on no known GPU.
fn drmkmod_device(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("drmn")?;
    let (unit, msg) = rest.split_once(": ")?;
    (!unit.is_empty() && unit.len() <= 4 && unit.bytes().all(|b| b.is_ascii_digit())).then_some(msg)
}

/// The record's device and message: after `amdgpu BDF:`, `amdgpu: ` and `{N}`, or after a `[drm…]`
/// prefix.
fn split(text: &str) -> Option<(Option<String>, Option<u64>, &str)> {
    let (pci, mut body) = if let Some(c) = DEV_RE.captures(text) {
        let end = c.get(0).map_or(0, |m| m.end());
        (normalize_bus_id(&c[1]), &text[end..])
    } else if let Some(rest) = text.strip_prefix("amdgpu: ") {
        (None, rest)
    } else if let Some(rest) = text.strip_prefix("[drm] ") {
        (None, rest)
    } else if text.starts_with("[drm:") && text.contains("[amdgpu]]") {
        (None, text)
    } else if let Some(rest) = drmkmod_device(text) {
        (None, rest)
    } else {
        // The driver's prefix starts the message: a line that quotes it further in is another's.
        return None;
    };
    body = body.trim_start();
    if let Some(rest) = body.strip_prefix("amdgpu: ") {
        body = rest;
    }
    // `drm_info`/`drm_warn`/`drm_err(adev_to_drm(adev), …)` print through dev_printk with `[drm] ` (and
    // `*ERROR* `) before the message (include/drm/drm_print.h `__drm_printk`): the device stays.
    if let Some(rest) = body.strip_prefix("[drm] ") {
        body = rest.strip_prefix("*ERROR* ").unwrap_or(rest);
    } else if body.starts_with("[drm") {
        // `[drm:fn [amdgpu]] *ERROR* msg` (DRM_ERROR, DRM_DEV_ERROR), with or without a device before it.
        let p = body.find("] *ERROR* ")?;
        body = &body[p + "] *ERROR* ".len()..];
    }
    let mut event_id = None;
    if let Some(rest) = body.strip_prefix('{')
        && let Some(close) = rest.find('}')
        && close <= 20
    {
        event_id = rest[..close].parse().ok();
        if event_id.is_some() {
            body = &rest[close + 1..];
        }
    }
    Some((pci, event_id, body))
}

/// Classify one record's text. None: not an amdgpu line this grammar reports.
pub fn parse_amdgpu(text: &str) -> Option<AmdLine> {
    if !may_be_amdgpu(text) {
        return None;
    }
    let (mut pci, event_id, body) = split(text)?;
    let b = body.trim();
    let kind = classify(b, &mut pci)?;
    Some(AmdLine {
        pci,
        event_id,
        kind,
        text: clip(b),
    })
}

fn num<T: std::str::FromStr>(s: &str) -> Option<T> {
    s.parse().ok()
}

fn classify(b: &str, pci: &mut Option<String>) -> Option<AmdKind> {
    if let Some(rest) = b.strip_prefix("[Hardware Error]:") {
        let rest = rest.trim_start();
        if rest.starts_with("Accelerator Check Architecture events logged")
            || rest.starts_with("hardware error logged by the scrubber")
        {
            return Some(AmdKind::AcaHeader);
        }
        let c = ACA_RE.captures(rest)?;
        let bank = c.get(1).or(c.get(2)).and_then(|m| num(m.as_str()))?;
        return Some(AmdKind::AcaRegister {
            bank,
            reg: c[3].to_string(),
            value: u64::from_str_radix(&c[4], 16).ok()?,
        });
    }
    let first = b.as_bytes().first().copied().unwrap_or(0);
    if (first.is_ascii_digit() || first == b's')
        && let Some(c) = RAS_RE.captures(b)
    {
        let class = match &c[5] {
            "uncorrectable" => RasClass::Uncorrectable,
            "deferred" => RasClass::Deferred,
            _ => RasClass::Correctable,
        };
        let block = ras_block(&c[7]);
        let count = num(&c[3])?;
        if c[8].contains("instance") {
            return Some(AmdKind::RasInstance {
                class: Some(class),
                block,
                count: Some(count),
            });
        }
        return Some(AmdKind::Ras {
            class,
            block,
            count,
            socket: c.get(1).and_then(|m| num(m.as_str())),
            die: c.get(2).and_then(|m| num(m.as_str())),
            total: c.get(6).is_some(),
        });
    }
    if UMC_INST_RE.is_match(b) {
        return Some(AmdKind::RasInstance {
            class: Some(RasClass::Uncorrectable),
            block: "umc",
            count: None,
        });
    }
    if b.starts_with("uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected") {
        return Some(AmdKind::Fatal);
    }
    if b.contains("RAS poison consumption is issued")
        || b.starts_with("poison is consumed by client")
    {
        return Some(AmdKind::PoisonConsumed);
    }
    if b.starts_with("Poison is created") || b.starts_with("poison is created") {
        return Some(AmdKind::PoisonCreated);
    }
    if let Some(rest) = b.strip_prefix("Saved ")
        && let Some((n, tail)) = rest.split_once(' ')
        && tail.starts_with("pages to EEPROM table")
    {
        return Some(AmdKind::PagesSaved { pages: num(n)? });
    }
    if let Some(c) = THRESHOLD_RE.captures(b) {
        return Some(if let (Some(n), Some(t)) = (c.get(1), c.get(2)) {
            AmdKind::BadPageThreshold {
                count: num(n.as_str())?,
                threshold: num(t.as_str())?,
                near: false,
            }
        } else {
            AmdKind::BadPageThreshold {
                count: num(c.get(3)?.as_str())?,
                threshold: num(c.get(5)?.as_str())?,
                near: c.get(4).is_some(),
            }
        });
    }
    if let Some(rest) = b.strip_prefix("Error Address(PA):") {
        let addr: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .take(18)
            .collect();
        return Some(AmdKind::ErrorAddress { address: addr });
    }
    if b.starts_with("GPU reset begin!") {
        return Some(AmdKind::ResetBegin);
    }
    if matches!(
        b,
        "MODE1 reset"
            | "MODE2 reset"
            | "BACO reset"
            | "PCI reset"
            | "GPU mode1 reset"
            | "GPU smu mode1 reset"
            | "GPU psp mode1 reset"
            | "GPU BACO reset"
    ) {
        return Some(AmdKind::ResetMethod {
            method: b.to_string(),
        });
    }
    if b.starts_with("GPU reset succeeded")
        || (b.starts_with("GPU reset(") && b.contains(") succeeded"))
    {
        return Some(AmdKind::ResetSucceeded);
    }
    if (b.starts_with("GPU reset(") && b.contains(") failed"))
        || b.starts_with("GPU mode1 reset failed")
        || b.starts_with("Mode2 reset failed")
        || b.starts_with("GPU Recovery Failed")
        || b.starts_with("ASIC reset failed with error")
    {
        return Some(AmdKind::ResetFailed);
    }
    if let Some(rest) = b.strip_prefix("GPU reset end with ret = ") {
        return Some(AmdKind::ResetEnd { ret: num(rest)? });
    }
    if b.starts_with("VRAM is lost due to GPU reset") {
        return Some(AmdKind::VramLost);
    }
    if let Some(c) = RING_TIMEOUT_RE
        .captures(b)
        .filter(|c| c[1].len() <= MAX_RING_NAME)
    {
        return Some(AmdKind::RingTimeout {
            ring: c[1].to_string(),
            soft: c[2].starts_with("but"),
        });
    }
    if let Some(c) = RING_RESET_RE
        .captures(b)
        .filter(|c| c[1].len() <= MAX_RING_NAME)
    {
        return Some(AmdKind::RingReset {
            ring: c[1].to_string(),
            ok: &c[2] == "succeeded",
        });
    }
    if let Some(c) = VM_FAULT_RE.captures(b) {
        return Some(AmdKind::VmFault {
            hub: c[1].to_string(),
            pasid: num(&c[2]),
            process: c.get(3).map(|m| {
                (
                    clip_to(m.as_str().trim(), MAX_FIELD_CHARS),
                    c.get(4).and_then(|p| num(p.as_str())),
                )
            }),
        });
    }
    if let Some(c) = ADDRESS_RE.captures(b) {
        return Some(AmdKind::FaultAddress {
            address: c[1].to_ascii_lowercase(),
        });
    }
    if let Some(c) = PROCESS_RE.captures(b) {
        return Some(AmdKind::ProcessInfo {
            name: clip_to(c[1].trim(), MAX_FIELD_CHARS),
            pid: num(&c[2]),
        });
    }
    if let Some(rest) = b.strip_prefix("GPU fault detected: ")
        && let Some((src, data)) = rest.split_once(' ')
        && num::<u32>(src).is_some()
        && data.starts_with("0x")
    {
        return Some(AmdKind::GmcFault);
    }
    if b.contains("L2_PROTECTION_FAULT_STATUS:")
        || b.starts_with("VM_CONTEXT1_PROTECTION_FAULT_")
        || b.starts_with("VM fault (0x")
        || b.starts_with("Faulty UTCL2 client ID")
        || [
            "MORE_FAULTS: ",
            "WALKER_ERROR: ",
            "PERMISSION_FAULTS: ",
            "MAPPING_ERROR: ",
            "RW: ",
        ]
        .iter()
        .any(|p| b.starts_with(p))
    {
        return Some(AmdKind::FaultStatus);
    }
    if b.starts_with("SMU: I'm not done with your previous command")
        || b.starts_with("SMU: I'm very busy for your command")
        || b.starts_with("SMU: response:")
        || b.starts_with("SMU is in hanged state")
        || SMU_SEND_RE.is_match(b)
    {
        return Some(AmdKind::SmuHang);
    }
    if b == "cp queue preemption time out"
        || b == "cp queue preemption time out."
        || QUEUE_PREEMPT_RE.is_match(b)
        || b == "The cp might be in an unrecoverable state due to an unsuccessful queues preemption"
        || b == "HIQ MQD's queue_doorbell_id0 is not 0, Queue preemption time out"
    {
        return Some(AmdKind::QueuePreempt);
    }
    if b == "qcm fence wait loop timeout expired" {
        return Some(AmdKind::QcmFenceTimeout);
    }
    if MES_RESPOND_RE.is_match(b) {
        return Some(AmdKind::MesFailure { queue: false });
    }
    if b.starts_with("failed to add hardware queue to MES, doorbell=0x")
        || b.starts_with("failed to remove hardware queue from MES, doorbell=0x")
        || b.starts_with("failed to remove hardware queue, queue id = ")
        || b == "failed to remove hardware queue"
    {
        return Some(AmdKind::MesFailure { queue: true });
    }
    if b == "Illegal register access in command stream" {
        return Some(AmdKind::IllegalCommand { register: true });
    }
    if b == "Illegal instruction in command stream"
        || b == "Illegal instruction in SDMA command stream"
    {
        return Some(AmdKind::IllegalCommand { register: false });
    }
    if (["hw_init", "sw_init", "early_init"].iter().any(|s| {
        b.strip_prefix(s)
            .is_some_and(|r| r.starts_with(" of IP block <"))
    }) && b.contains("> failed"))
        || b.starts_with("Fatal error during GPU init")
        || matches!(
            b,
            "amdgpu_device_ip_init failed"
                | "asic reset on init failed"
                | "no vBIOS found"
                | "gpu post error!"
                | "PSP firmware loading failed"
        )
        || b.starts_with("probe with driver amdgpu failed with error")
        || is_discovery_failure(b)
    {
        return Some(AmdKind::InitFailed);
    }
    if let Some(rest) = b.strip_prefix("probe of ")
        && let Some((dev, tail)) = rest.split_once(' ')
        && tail.starts_with("failed with error")
    {
        if pci.is_none() {
            *pci = normalize_bus_id(dev);
        }
        return Some(AmdKind::InitFailed);
    }
    if b.starts_with("socket: ")
        && b.contains("fw_status: 0x")
        && [
            "memory training failed",
            "firmware load failed at boot time",
            "link training failed",
            "hbm memory test failed",
            "hbm bist test failed",
            "data abort exception",
            "Boot Controller Generic Error",
        ]
        .iter()
        .any(|w| b.contains(w))
    {
        return Some(AmdKind::BootFault);
    }
    if (b.starts_with("XGMI ") || b.starts_with("WAFL ")) && b.ends_with(" detected") {
        return Some(AmdKind::XgmiError);
    }
    for head in [
        "WARN: GPU is throttled, expect performance decrease.",
        "WARN: GPU thermal throttling temperature reached, expect performance decrease.",
    ] {
        if let Some(rest) = b.strip_prefix(head) {
            return Some(AmdKind::Throttle {
                reasons: clip_to(rest.trim().trim_end_matches('.'), MAX_FIELD_CHARS),
            });
        }
    }
    None
}

/// IP discovery's failures that stop the GPU's init (amdgpu_discovery.c): the binary unreadable or
/// corrupt, no IP block for a hardware IP, the whole step failed. 6.1's `… signature from vram|file`
/// warnings are not here: the driver tries the other source next.
fn is_discovery_failure(b: &str) -> bool {
    matches!(
        b,
        "amdgpu_discovery_init failed"
            | "invalid ip discovery binary checksum"
            | "get invalid ip discovery binary signature"
            | "failed to read ip discovery binary from file"
    ) || b
        .strip_prefix("discovery failed: ")
        .is_some_and(|r| num::<i64>(r).is_some())
        || (b.starts_with("Failed to add ") && b.contains(" ip block("))
}

/// ACA bank decode (`amdgpu_aca.h`): what a bank's STATUS and IPID registers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcaDecode {
    pub valid: bool,
    pub uncorrectable: bool,
    /// Processor context corrupt: the error could not be contained.
    pub pcc: bool,
    pub deferred: bool,
    pub poison: bool,
    pub hwid: u16,
    pub mcatype: u16,
    pub socket: u32,
    pub die: u32,
}

impl AcaDecode {
    pub fn of(status: u64, ipid: u64) -> Self {
        let bit = |n: u32| status >> n & 1 == 1;
        let insthi = (ipid >> 44 & 0xf) as u32;
        let instlo = (ipid & 0xffff_ffff) as u32;
        AcaDecode {
            valid: bit(63),
            uncorrectable: bit(61),
            pcc: bit(57),
            deferred: bit(44),
            poison: bit(43),
            hwid: (ipid >> 32 & 0xfff) as u16,
            mcatype: (ipid >> 48 & 0xffff) as u16,
            socket: ((instlo & 1) << 2) | (insthi & 3),
            die: (insthi >> 2) & 3,
        }
    }

    /// The bank's unit, where (hwid, mcatype) is one the driver names.
    pub fn bank_type(&self) -> String {
        match (self.hwid, self.mcatype) {
            (0x01, 0x01) => "smu".into(),
            (0x50, 0x00) => "pcs_xgmi".into(),
            (0x96, 0x00) => "umc".into(),
            (h, m) => format!("hwid 0x{h:03x} mcatype 0x{m:04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<AmdKind> {
        parse_amdgpu(s).map(|l| l.kind)
    }

    #[test]
    fn ras_lines_in_every_layout() {
        let l = parse_amdgpu("amdgpu 0000:1c:00.0: {3}socket: 1, die: 0, 2 new uncorrectable hardware errors detected in umc block").unwrap();
        assert_eq!(l.pci.as_deref(), Some("0000:1c:00.0"));
        assert_eq!(l.event_id, Some(3));
        assert_eq!(
            l.kind,
            AmdKind::Ras {
                class: RasClass::Uncorrectable,
                block: "umc",
                count: 2,
                socket: Some(1),
                die: Some(0),
                total: false
            }
        );
        // `uncorrectable` contains `correctable`: the class is read as a word.
        assert!(matches!(
            kind(
                "amdgpu 0000:1c:00.0: socket: 0, die: 1, 0 uncorrectable hardware errors detected in total in gfx block"
            ),
            Some(AmdKind::Ras {
                class: RasClass::Uncorrectable,
                count: 0,
                total: true,
                block: "gfx",
                ..
            })
        ));
        assert!(matches!(
            kind(
                "amdgpu 0000:1c:00.0: amdgpu: socket: 0, die: 0 5 correctable hardware errors detected in mmhub block"
            ),
            Some(AmdKind::Ras {
                class: RasClass::Correctable,
                count: 5,
                die: Some(0),
                ..
            })
        ));
        assert!(matches!(
            kind(
                "amdgpu 0000:03:00.0: amdgpu: 1 correctable hardware errors detected in umc block, no user action is needed."
            ),
            Some(AmdKind::Ras {
                class: RasClass::Correctable,
                socket: None,
                block: "umc",
                ..
            })
        ));
        assert!(matches!(
            kind("amdgpu 0000:03:00.0: {7}3 deferred hardware errors detected in XGMI_WAFL block"),
            Some(AmdKind::Ras {
                class: RasClass::Deferred,
                block: "xgmi_wafl",
                ..
            })
        ));
        assert!(matches!(
            kind("amdgpu 0000:03:00.0: 1 uncorrectable hardware errors detected in banana block"),
            Some(AmdKind::Ras { block: "other", .. })
        ));
        assert!(matches!(
            kind(
                "amdgpu 0000:03:00.0: amdgpu: 1 correctable hardware errors detected in umc block, instance: 3, memory_id: 0"
            ),
            Some(AmdKind::RasInstance {
                block: "umc",
                count: Some(1),
                ..
            })
        ));
        assert!(matches!(
            kind(
                "amdgpu 0000:03:00.0: amdgpu: Uncorrectable error detected in UMC inst: 2, chan_idx: 5"
            ),
            Some(AmdKind::RasInstance { block: "umc", .. })
        ));
    }

    #[test]
    fn faults_resets_and_pages() {
        let l = parse_amdgpu("amdgpu 0000:1c:00.0: {1}uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!").unwrap();
        assert_eq!((l.kind, l.event_id), (AmdKind::Fatal, Some(1)));
        assert_eq!(
            kind(
                "amdgpu 0000:e3:00.0: amdgpu: uncorrectable hardware error(ERREVENT_ATHUB_INTERRUPT) detected!"
            ),
            Some(AmdKind::Fatal)
        );
        assert_eq!(
            kind(
                "amdgpu 0000:1c:00.0: amdgpu: GPU reset for umc RAS poison consumption is issued!"
            ),
            Some(AmdKind::PoisonConsumed)
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: {4}Poison is created"),
            Some(AmdKind::PoisonCreated)
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: amdgpu: Saved 2 pages to EEPROM table."),
            Some(AmdKind::PagesSaved { pages: 2 })
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: amdgpu: Saved bad pages 128 reaches threshold value 128"),
            Some(AmdKind::BadPageThreshold {
                count: 128,
                threshold: 128,
                near: false
            })
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: amdgpu: RAS records:120 exceeds 90% of threshold:128"),
            Some(AmdKind::BadPageThreshold {
                count: 120,
                threshold: 128,
                near: true
            })
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: amdgpu: RAS records:130 exceed threshold:128"),
            Some(AmdKind::BadPageThreshold {
                count: 130,
                threshold: 128,
                near: false
            })
        );
        assert_eq!(
            kind(
                "amdgpu 0000:1c:00.0: amdgpu: Error Address(PA):0x12345000 Row:0x1a2b Col:0x3 Bank:0x4 Channel:0x5"
            ),
            Some(AmdKind::ErrorAddress {
                address: "0x12345000".into()
            })
        );
        assert_eq!(
            kind("amdgpu 0000:28:00.0: GPU reset begin!. Source:  1"),
            Some(AmdKind::ResetBegin)
        );
        assert_eq!(
            kind("amdgpu 0000:08:00.0: amdgpu: BACO reset"),
            Some(AmdKind::ResetMethod {
                method: "BACO reset".into()
            })
        );
        assert_eq!(
            kind("amdgpu 0000:08:00.0: amdgpu: GPU reset(2) succeeded!"),
            Some(AmdKind::ResetSucceeded)
        );
        assert_eq!(
            kind("amdgpu 0000:0b:00.0: amdgpu: GPU reset(1) failed"),
            Some(AmdKind::ResetFailed)
        );
        assert_eq!(
            kind("[drm] VRAM is lost due to GPU reset!"),
            Some(AmdKind::VramLost)
        );
        assert_eq!(
            parse_amdgpu("[drm] VRAM is lost due to GPU reset!")
                .unwrap()
                .pci,
            None
        );
        assert_eq!(
            kind(
                "[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring gfx_0.0.0 timeout, signaled seq=5000163, emitted seq=5000165"
            ),
            Some(AmdKind::RingTimeout {
                ring: "gfx_0.0.0".into(),
                soft: false
            })
        );
        assert_eq!(
            kind("amdgpu 0000:03:00.0: amdgpu: ring sdma0 timeout, but soft recovered"),
            Some(AmdKind::RingTimeout {
                ring: "sdma0".into(),
                soft: true
            })
        );
        // A hostile ring name past 64 characters is not a ring.
        let long = "r".repeat(65);
        assert_ne!(
            kind(&format!(
                "amdgpu 0000:03:00.0: amdgpu: ring {long} timeout, but soft recovered"
            )),
            Some(AmdKind::RingTimeout {
                ring: long.clone(),
                soft: true
            })
        );
        assert_eq!(
            kind(&format!(
                "amdgpu 0000:03:00.0: amdgpu: ring {} timeout, but soft recovered",
                &long[1..]
            )),
            Some(AmdKind::RingTimeout {
                ring: long[1..].to_string(),
                soft: true
            })
        );
        assert_eq!(
            kind("amdgpu 0000:03:00.0: amdgpu: Ring comp_1.1.0 reset succeeded"),
            Some(AmdKind::RingReset {
                ring: "comp_1.1.0".into(),
                ok: true
            })
        );
        assert_eq!(
            kind(
                "amdgpu 0000:03:00.0: amdgpu: SMU: I'm not done with your previous command: SMN_C2PMSG_66:0x00000011 SMN_C2PMSG_82:0x00000002"
            ),
            Some(AmdKind::SmuHang)
        );
        assert_eq!(
            kind(
                "[drm:amdgpu_device_ip_init [amdgpu]] *ERROR* hw_init of IP block <psp> failed -22"
            ),
            Some(AmdKind::InitFailed)
        );
        let probe = parse_amdgpu("amdgpu: probe of 0000:03:00.0 failed with error -22").unwrap();
        assert_eq!(
            (probe.kind, probe.pci.as_deref()),
            (AmdKind::InitFailed, Some("0000:03:00.0"))
        );
        assert_eq!(
            kind(
                "amdgpu 0000:1c:00.0: amdgpu: socket: 2, aid: 1, hbm: 3, fw_status: 0x1, memory training failed"
            ),
            Some(AmdKind::BootFault)
        );
        assert_eq!(
            kind("amdgpu 0000:1c:00.0: amdgpu: XGMI PCS CRCErr detected"),
            Some(AmdKind::XgmiError)
        );
        assert_eq!(
            kind(
                "amdgpu 0000:1c:00.0: amdgpu: WARN: GPU is throttled, expect performance decrease. Prochot and PPT."
            ),
            Some(AmdKind::Throttle {
                reasons: "Prochot and PPT".into()
            })
        );
    }

    #[test]
    fn vm_faults_and_aca_banks() {
        assert_eq!(
            kind(
                "amdgpu 0000:c6:00.0: amdgpu: [gfxhub0] no-retry page fault (src_id:0 ring:24 vmid:3 pasid:32769)"
            ),
            Some(AmdKind::VmFault {
                hub: "gfxhub0".into(),
                pasid: Some(32769),
                process: None
            })
        );
        assert_eq!(
            kind(
                "amdgpu 0000:88:00.0: amdgpu: [mmhub0] no-retry page fault (src_id:0 ring:24 vmid:8 pasid:32768, for process ipython3 pid 846049 thread ipython3 pid 846049)"
            ),
            Some(AmdKind::VmFault {
                hub: "mmhub0".into(),
                pasid: Some(32768),
                process: Some(("ipython3".into(), Some(846049)))
            })
        );
        for l in [
            "amdgpu 0000:c6:00.0: amdgpu:  for process pt_main_thread pid 12924 thread pt_main_thread pid 12924)",
            "amdgpu 0000:0d:00.0: amdgpu:  in process cosmic-comp pid 4732 thread cosmic-com:cs0 pid 4753)",
            "amdgpu 0000:0e:00.0: amdgpu:  Process python3 pid 15615 thread python3 pid 15615",
            "[drm:amdgpu_job_timedout [amdgpu]] *ERROR* Process information: process blender pid 10728 thread blender:cs0 pid 10762",
        ] {
            assert!(
                matches!(kind(l), Some(AmdKind::ProcessInfo { pid: Some(_), .. })),
                "{l}"
            );
        }
        assert_eq!(
            kind(
                "amdgpu 0000:c6:00.0: amdgpu:   in page starting at address 0x0000AE8570611000 from IH client 0x1b (UTCL2)"
            ),
            Some(AmdKind::FaultAddress {
                address: "0x0000ae8570611000".into()
            })
        );
        assert_eq!(
            kind("amdgpu 0000:c6:00.0: amdgpu: \t MORE_FAULTS: 0x1"),
            Some(AmdKind::FaultStatus)
        );
        assert_eq!(
            kind(
                "amdgpu 0000:42:00.0: {1}[Hardware Error]: aca entry[00].STATUS=0x98000800003e0000"
            ),
            Some(AmdKind::AcaRegister {
                bank: 0,
                reg: "STATUS".into(),
                value: 0x98000800003e0000
            })
        );
        assert_eq!(
            kind("amdgpu 0000:42:00.0: {2}[Hardware Error]: ACA[01/04].IPID=0x0001000138430400"),
            Some(AmdKind::AcaRegister {
                bank: 1,
                reg: "IPID".into(),
                value: 0x0001000138430400
            })
        );
        // The reference's worked example: an SMU bank, poisoned, not uncorrectable.
        let d = AcaDecode::of(0x98000800003e0000, 0x0001000138430400);
        assert!(d.valid && d.poison && !d.uncorrectable);
        assert_eq!(d.bank_type(), "smu");
        let d = AcaDecode::of(0xfaa00000000d080b, 0x0002702e1f000300);
        assert!(d.uncorrectable && d.pcc);
        assert_eq!((d.socket, d.die), (3, 1));
    }

    #[test]
    fn queue_firmware_and_command_stream_failures() {
        for (l, want) in [
            (
                "amdgpu 0000:c5:00.0: amdgpu: MES failed to respond to msg=REMOVE_QUEUE",
                AmdKind::MesFailure { queue: false },
            ),
            (
                "amdgpu 0000:c5:00.0: amdgpu: MES(1) failed to respond to msg=SUSPEND (RESET)",
                AmdKind::MesFailure { queue: false },
            ),
            (
                "[drm:mes_v11_0_submit_pkt_and_poll_completion.constprop.0 [amdgpu]] *ERROR* MES failed to response msg=3",
                AmdKind::MesFailure { queue: false },
            ),
            (
                "amdgpu: failed to remove hardware queue from MES, doorbell=0x1002",
                AmdKind::MesFailure { queue: true },
            ),
            (
                "[drm] failed to remove hardware queue",
                AmdKind::MesFailure { queue: true },
            ),
            (
                "amdgpu 0000:03:00.0: amdgpu: qcm fence wait loop timeout expired",
                AmdKind::QcmFenceTimeout,
            ),
            (
                "amdgpu: The cp might be in an unrecoverable state due to an unsuccessful queues preemption",
                AmdKind::QueuePreempt,
            ),
            (
                "amdgpu: cp queue pipe 1 queue 2 preemption failed",
                AmdKind::QueuePreempt,
            ),
            (
                "amdgpu 0000:03:00.0: amdgpu: XCC 0: Queue preemption failed for queue with doorbell_id: 1002",
                AmdKind::QueuePreempt,
            ),
            (
                "[drm:gfx_v9_0_priv_reg_irq [amdgpu]] *ERROR* Illegal register access in command stream",
                AmdKind::IllegalCommand { register: true },
            ),
            (
                "amdgpu 0000:03:00.0: [drm] *ERROR* Illegal instruction in command stream",
                AmdKind::IllegalCommand { register: false },
            ),
            (
                "amdgpu 0000:e3:00.0: amdgpu: Failed to send message 0x26, response 0x0",
                AmdKind::SmuHang,
            ),
            (
                "amdgpu 0000:e3:00.0: amdgpu: Failed to send Message 3a.",
                AmdKind::SmuHang,
            ),
            (
                "amdgpu 0000:03:00.0: amdgpu: GPU reset end with ret = -110",
                AmdKind::ResetEnd { ret: -110 },
            ),
            (
                "amdgpu 0000:03:00.0: amdgpu: Ring gfx_0.0.0 reset failure",
                AmdKind::RingReset {
                    ring: "gfx_0.0.0".into(),
                    ok: false,
                },
            ),
            (
                "amdgpu 0000:03:00.0: amdgpu: amdgpu_device_ip_init failed",
                AmdKind::InitFailed,
            ),
        ] {
            assert_eq!(kind(l), Some(want), "{l}");
        }
        // drm_info through the device keeps the device.
        let l = parse_amdgpu("amdgpu 0000:05:00.0: [drm] GPU reset(3) failed").unwrap();
        assert_eq!(
            (l.kind, l.pci.as_deref()),
            (AmdKind::ResetFailed, Some("0000:05:00.0"))
        );
    }

    #[test]
    fn near_misses_are_not_events() {
        for l in [
            "amdgpu 0000:03:00.0: amdgpu: RAS: optional ras ta ucode is not available",
            "amdgpu 0000:03:00.0: amdgpu: ring gfx_0.0.0 uses VM inv eng 0 on hub 0",
            "amdgpu 0000:03:00.0: amdgpu: MEM ECC is active.",
            "[drm] UVD VCPU state may lost due to RAS ERREVENT_ATHUB_INTERRUPT",
            "amdgpu 0000:1c:00.0: amdgpu: XGMI: Add node 1, hive 0x1234.",
            "snd_hda_intel 0000:0b:00.1: bound 0000:0b:00.0 (ops amdgpu_dm_audio_component_bind_ops [amdgpu])",
            "amdgpu 0000:03:00.0: [drm:amdgpu_ring_test_helper [amdgpu]] *ERROR* ring kiq_2.1.0 test failed (-110)",
            "amdgpu: Topology: Add GPU node [0x1002:0x164e]",
            "amdgpu 0000:c5:00.0: amdgpu: MES might be in unrecoverable state, issue a GPU reset",
            "amdgpu 0000:c5:00.0: amdgpu: Starting gfx_0.0.0 ring reset",
            "amdgpu 0000:c5:00.0: amdgpu: [drm] AMDGPU device coredump file has been created",
            "amdgpu 0000:c5:00.0: amdgpu: soft reset failed, will fallback to full reset!",
            "[drm] RAS init harvest reset failure",
            "[drm] Fence fallback timer expired on ring gfx_0.0.0",
            "amdgpu 0000:c5:00.0: amdgpu: VPE queue reset failed",
            "amdgpu 0000:c5:00.0: amdgpu: Ring gfx_0.0.0 reset failure, retrying",
            "amdgpu 0000:c5:00.0: amdgpu: MES failed to respond to msg=",
            "[drm] failed to remove hardware queue in i915",
            "amdgpu: [powerplay] Failed to set soft min gfxclk !",
            "amdgpu 0000:03:00.0: amdgpu: no uncorrectable hardware errors detected in umc block",
            "user-app: 1 uncorrectable hardware errors detected in umc block",
            "amdgpu 0000:1c:00.0: amdgpu: socket: 0, aid: 0, fw_status: 0x0, all good",
            "NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=amdgpu, x",
            "amdgpu 0000:03:00.0: {99999999999999999999999}Poison is created",
            "amdgpu",
            "",
        ] {
            assert_eq!(kind(l), None, "{l}");
        }
    }
}
