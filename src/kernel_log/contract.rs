//! The `xid` report contract: what `node-probe xid` prints and the launcher reads. Pure data, no logic
//! beyond defaults, so the grammar, the event model and the correlation can all depend on it.

use serde::{Deserialize, Serialize};

use crate::facts::{FieldError, GpuVendor};
use crate::finding::{Action, ActionKind, Finding, Judged, Severity, Verdict, distinct};

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Xid,
    Sxid,
    FallenOffBus,
    GpuIdentity,
    InitFailure,
    CrashDump,
    /// An amdgpu driver line (RAS, reset, ring timeout, VM fault, …): `mnemonic` says which.
    Amdgpu,
    /// A habanalabs (Intel Gaudi) driver line (ECC, reset, RAZWI, page fault, heartbeat, …): `mnemonic`
    /// says which.
    Habanalabs,
    /// A neuron (AWS Trainium, Inferentia) driver line or AWS's `NEURON_HW_ERR` line.
    Neuron,
}

/// One kernel-log (or NVML) event. Every field is always present (null where unknown), so consumers
/// can rely on the shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidEvent {
    pub kind: EventKind,
    /// The Xid or SXid number; null for other kinds (and for a number too large to be real).
    pub code: Option<u32>,
    /// Normalised `dddd:bb:dd.f` (Xid lines carry no function: `.0`).
    pub pci_bus_id: Option<String>,
    pub pid: Option<u32>,
    pub process_name: Option<String>,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    /// From the line itself, or the GPU the PCI id maps to (NVML inventory or identity lines).
    pub gpu_uuid: Option<String>,
    pub message: String,
    /// RFC 3339 UTC, where derivable.
    pub timestamp: Option<String>,
    /// 1-based line of the log input where the event starts; null for NVML events.
    pub line: Option<usize>,
    pub mnemonic: Option<String>,
    /// The catalog's resolution bucket names; null where the catalog gives none.
    pub immediate_action: Option<String>,
    pub investigatory_action: Option<String>,
}

/// Where a code stands in NVIDIA's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatalogStatus {
    /// In the catalog with resolution buckets.
    Catalog,
    /// In the catalog with blank buckets (162–172): the project's policy applies.
    BlankActions,
    /// Defined by the driver only (173–176).
    DriverOnly,
    /// Not known to the catalog or the driver headers this project read.
    Unknown,
    /// Not an Xid.
    NotApplicable,
}

/// What the grammar decoded beyond the common fields, per event (same order as `events`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventDetail {
    /// Index into `events`.
    pub event: usize,
    /// `kernel_log` or `nvml_event`.
    pub source: String,
    /// Seconds since the logging machine's boot, where the log gives the event no wall-clock time: a
    /// log from another machine keeps its own uptimes, never placed on this machine's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<f64>,
    pub gpu_index: Option<u32>,
    /// The MIG device the GPU-I/GPU-CI attribution names, where the inventory knows it.
    pub mig_device_uuid: Option<String>,
    pub catalog_status: CatalogStatus,
    /// Index into the GPU summary's `bursts`.
    pub burst: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caused_by_xid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<DecodedDetail>,
    /// How this event was classified after correlation.
    pub severity: Option<Severity>,
    pub action: Option<ActionKind>,
    pub reason: Option<String>,
}

// Structured facts the grammar pulled from an Xid's (or SXid's) free text: the event model carries them
// through correlation as they are, and the report prints them. Registers are numbers here and `0x%08x`
// strings on the wire. (Plain comments: doc comments would enter the published JSON schema.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DecodedDetail {
    // Xid 13: `(GPC g, TPC t, SM s)`.
    GraphicsException {
        gpc: u32,
        tpc: u32,
        sm: Option<u32>,
    },
    // Xid 74: `NVLink: fatal error detected on link N(0x…, … ×7)`.
    NvLinkRegisters {
        link: u32,
        #[serde(with = "hex32_list")]
        #[schemars(with = "Vec<String>")]
        registers: Vec<u32>,
    },
    // Xid 94/95: `Contained|Uncontained: … RST: Yes|No, D-RST: Yes|No`.
    Containment {
        contained: Option<bool>,
        reset_required: Option<bool>,
        drain_and_reset_required: Option<bool>,
    },
    // Xid 154: `GPU recovery action changed from 0xA (…) to 0xB (…)`.
    RecoveryAction {
        from: u32,
        from_name: String,
        to: u32,
        to_name: String,
    },
    // Xid 144–150: `<unit> <Fatal|Nonfatal> <XCn> <iN> Link <n> (<intrInfo> <errorStatus> …)`.
    NvLink5 {
        unit: String,
        fatal: bool,
        link: i32,
        #[serde(with = "hex32")]
        #[schemars(with = "String")]
        intr_info: u32,
        #[serde(with = "hex32")]
        #[schemars(with = "String")]
        error_status: u32,
    },
    Sxid {
        device: Option<String>,
        fatal: Option<bool>,
        link: Option<u32>,
    },
    // A habanalabs (Intel Gaudi) line: `event` is its id in the habanalabs catalog
    // (`kernel_log/habanalabs_catalog.rs`); `source_event` the firmware event's name where the line gave one
    // (`TPC0_ECC_DERR`), `device` the device the prefix named where it named no PCI address (`hl0`).
    Habanalabs {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_event: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        what: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    // A neuron line: `event` is its id in the neuron catalog, `device` the class device the driver's `nd<N>`
    // names.
    Neuron {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
    },
    // An amdgpu line: `event` is its id in the AMD catalog (`kernel_log/amdgpu_catalog.rs`); the rest is what
    // the line said, where it said it.
    Amdgpu {
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        socket: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        die: Option<u32>,
        // Errors on a RAS line, pages on a retirement or threshold line.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<u64>,
        // The `{N}` RAS event number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_id: Option<u64>,
        // The ring, the reset method, the VM hub or the throttle reasons.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        what: Option<String>,
        // A fault's or a bad page's address (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aca: Option<AcaBank>,
    },
}

impl DecodedDetail {
    /// The device a line names in its driver's own words where it carries no PCI address (`neuron3`).
    pub fn device_name(&self) -> Option<&str> {
        match self {
            DecodedDetail::Neuron { device, .. } => device.as_deref(),
            _ => None,
        }
    }
}

// An ACA bank as the driver dumped it, decoded (`amdgpu_aca.h`): registers as `0x%016x`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AcaBank {
    pub bank: u32,
    pub status: String,
    pub ipid: String,
    // `umc`, `smu`, `pcs_xgmi`, or the raw hardware and MCA type ids.
    pub unit: String,
    pub uncorrectable: bool,
    pub deferred: bool,
    pub poison: bool,
    pub socket: u32,
    pub die: u32,
}

/// A register as the report prints it: `0x` and eight lowercase hex digits.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn text(v: u32) -> String {
        format!("0x{v:08x}")
    }

    pub fn parse<E: Error>(s: &str) -> Result<u32, E> {
        s.strip_prefix("0x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| E::custom(format!("`{s}` is not a 0x-prefixed 32-bit hex register")))
    }

    pub fn serialize<S: Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        parse(&String::deserialize(d)?)
    }
}

/// A list of registers, each as [`hex32`] prints it.
mod hex32_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|r| super::hex32::text(*r)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| super::hex32::parse(s))
            .collect()
    }
}

/// A group of Xids on one GPU with no more than three minutes of silence between them (three hours
/// once a sticky code is in it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Burst {
    pub start: Option<String>,
    pub end: Option<String>,
    pub events: usize,
    pub codes: Vec<u32>,
    /// Contains one of the sticky codes 74, 79, 95, 109, 119.
    pub sticky: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CodeCount {
    pub code: u32,
    pub mnemonic: Option<String>,
    pub count: usize,
    pub first: Option<String>,
    pub last: Option<String>,
}

/// NVML's recovery action (field 230): the driver's own verdict on what the GPU needs now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecoveryAction {
    pub value: u32,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuXidSummary {
    pub pci_bus_id: Option<String>,
    /// NVML index; null for a GPU only the log knows (e.g. one that fell off the bus).
    pub index: Option<u32>,
    pub uuid: Option<String>,
    /// `nvml`, `amdgpu` (an AMD GPU's sysfs) or `kernel_log` (identity line).
    pub uuid_source: Option<String>,
    /// NVML field 230; null when not read.
    pub recovery_action: Option<RecoveryAction>,
    /// Last `Xid 154` transition in the log: what the driver said it needs.
    pub last_recovery_transition: Option<RecoveryAction>,
    pub events: usize,
    pub xids: Vec<CodeCount>,
    /// The first and the latest bursts; the ones between are only counted in `bursts_not_listed`.
    pub bursts: Vec<Burst>,
    /// Bursts between the listed first and latest ones (absent when all are listed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bursts_not_listed: usize,
    pub fallen_off_bus: bool,
    pub verdict: Verdict,
    pub action: Action,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeXidVerdict {
    pub verdict: Verdict,
    /// What the SRE should do, the most disruptive step the worst findings ask for.
    pub action: Action,
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogSummary {
    /// `kmsg`, `file:<path>`, `simulated`.
    pub origin: Option<String>,
    pub lines: usize,
    pub records: usize,
    /// The reader stopped early or records were overwritten while reading.
    pub truncated: bool,
    /// Why the kernel log could not be read.
    pub error: Option<FieldError>,
    /// RFC 3339 start of the `--since` window.
    pub since: Option<String>,
    /// Events left out because they are older than `--since`.
    pub events_before_since: usize,
    /// NVRM/SXid lines that matched no known form (not events; shown so nothing is silently lost).
    pub unrecognized_nvidia_lines: usize,
    /// NVML XID events read with `--watch` (null when no watch ran).
    pub nvml_events: Option<usize>,
    /// Events in the window that `events` does not list one by one (a storm): they are all in the
    /// per-GPU counts, bursts and findings. Absent when every event is listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_not_listed: usize,
    /// Events left out of the analysis because the log names more distinct GPU, kind and code groups
    /// than one node can have (`MAX_EVENT_GROUPS`): a hostile or corrupt log. Absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub events_not_analyzed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidReport {
    pub log: LogSummary,
    /// In log order; NVML events last. Every event of a small log; for a large one (more than
    /// `MAX_LISTED_EVENTS`) the first few and the last of each GPU and code, the rest counted in
    /// `log.events_not_listed`.
    pub events: Vec<XidEvent>,
    /// One per event, same order.
    pub event_details: Vec<EventDetail>,
    pub gpus: Vec<GpuXidSummary>,
    pub node: NodeXidVerdict,
    /// Kernel-log findings, merged into `health` by the health analysis.
    pub findings: Vec<Finding>,
    /// Kernel messages of earlier boots (journal, text logs), when the window reaches before this
    /// boot or history was asked for. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<XidHistory>,
    /// Whose kernel-log families the analysis read: the vendors of the node's devices and of every event
    /// it found, in the vendors' order (NVIDIA's where it knows of none). Answers are named by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub families: Vec<GpuVendor>,
}

impl XidReport {
    /// `XID analysis`, `neuron kernel log analysis`, `XID and habanalabs kernel log analysis`: the
    /// analysis named in each family's own words.
    pub fn title(&self) -> String {
        let labels: Vec<&str> = if self.families.is_empty() {
            vec![GpuVendor::Nvidia.info().kernel_log_label]
        } else {
            self.families
                .iter()
                .map(|v| v.info().kernel_log_label)
                .collect()
        };
        format!("{} analysis", labels.join(" and "))
    }
}

impl Judged for XidReport {
    fn verdict(&self) -> Option<Verdict> {
        Some(self.node.verdict)
    }
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

/// What the host kept of earlier boots. Events of earlier boots are summarised here, per boot; the
/// report's `events`, `gpus` and per-code findings stay about the current boot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidHistory {
    /// Every place looked at, read or not, and how far back each goes.
    pub sources: Vec<HistorySource>,
    /// Boots seen in the window, oldest first (the current one last, when its start is seen).
    pub boots: Vec<BootSummary>,
    /// Older boots in the window not listed one by one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub boots_not_listed: usize,
    /// Boot starts (`Linux version …`) inside the window.
    pub reboots_in_window: usize,
    /// NVIDIA events of earlier boots (all counted in `boots`).
    pub events: usize,
    /// Set when no source held any kernel message of an earlier boot.
    pub note: Option<String>,
}

/// One history source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistorySource {
    /// `journal` (`/var/log/journal`), `journal_volatile` (`/run/log/journal`) or `text_log`.
    pub kind: String,
    /// Path on the host (relative to the host root).
    pub path: String,
    pub status: SourceStatus,
    /// Why it was not (fully) read, or how it was read.
    pub message: Option<String>,
    /// Kernel messages taken from it.
    pub entries: usize,
    /// RFC 3339 of its oldest and newest kernel message read.
    pub first: Option<String>,
    pub last: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    Read,
    /// Read up to a damaged part (a corrupt or truncated file); what came before it counts.
    Partial,
    Missing,
    NoPermission,
    Corrupt,
    /// Another source already covers it (e.g. `syslog` when `kern.log` exists).
    Skipped,
    /// Could not be read for another reason (e.g. no `journalctl` to read a journal with).
    Unavailable,
}

/// One boot as its kernel messages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootSummary {
    /// The journal's `_BOOT_ID` (32 hex digits); null for a boot only text logs show.
    pub boot_id: Option<String>,
    pub current: bool,
    /// RFC 3339 of its first and last kernel message seen.
    pub first: Option<String>,
    pub last: Option<String>,
    /// Its first message is the kernel's `Linux version` banner (the boot's start is in the window).
    pub started_in_window: bool,
    /// NVIDIA events of this boot.
    pub events: usize,
    /// Xid counts per GPU in this boot (earlier boots only; the current one is in `gpus`).
    pub xids: Vec<BootXidCount>,
    /// The boot's last event that needs a reset, reboot or hardware check, as evidence.
    pub last_serious_event: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BootXidCount {
    pub pci_bus_id: Option<String>,
    pub code: u32,
    pub count: usize,
}

impl Default for XidReport {
    fn default() -> Self {
        XidReport {
            log: LogSummary::default(),
            events: Vec::new(),
            event_details: Vec::new(),
            gpus: Vec::new(),
            node: NodeXidVerdict {
                verdict: Verdict::Unknown,
                action: Action {
                    kind: ActionKind::None,
                    detail: String::new(),
                },
                evidence: Vec::new(),
            },
            findings: Vec::new(),
            history: None,
            families: Vec::new(),
        }
    }
}
