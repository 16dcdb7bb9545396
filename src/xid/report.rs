//! The `xid` report: events in log order, decoded details, per-GPU summaries with bursts, and a node
//! verdict, plus the findings `health` merges.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::catalog;
use super::correlate::{self, Class};
use super::grammar::{self, Clock, Decoded, Line, Record};
use crate::AnalysisOptions;
use crate::facts::{FieldError, NodeFacts};
use crate::finding::{Action, ActionKind, Finding, Severity, Verdict};
use crate::pci::normalize_bus_id;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DecodedDetail {
    GraphicsException {
        gpc: u32,
        tpc: u32,
        sm: Option<u32>,
    },
    NvLinkRegisters {
        link: u32,
        registers: Vec<String>,
    },
    Containment {
        contained: Option<bool>,
        reset_required: Option<bool>,
        drain_and_reset_required: Option<bool>,
    },
    RecoveryAction {
        from: u32,
        from_name: String,
        to: u32,
        to_name: String,
    },
    NvLink5 {
        unit: String,
        fatal: bool,
        link: i32,
        intr_info: String,
        error_status: String,
    },
    Sxid {
        device: Option<String>,
        fatal: Option<bool>,
        link: Option<u32>,
    },
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
    /// `nvml` or `kernel_log` (identity line).
    pub uuid_source: Option<String>,
    /// NVML field 230; null when not read.
    pub recovery_action: Option<RecoveryAction>,
    /// Last `Xid 154` transition in the log: what the driver said it needs.
    pub last_recovery_transition: Option<RecoveryAction>,
    pub events: usize,
    pub xids: Vec<CodeCount>,
    pub bursts: Vec<Burst>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidReport {
    pub log: LogSummary,
    /// In log order; NVML events last.
    pub events: Vec<XidEvent>,
    /// One per event, same order.
    pub event_details: Vec<EventDetail>,
    pub gpus: Vec<GpuXidSummary>,
    pub node: NodeXidVerdict,
    /// Kernel-log findings, merged into `health` by the health analysis.
    pub findings: Vec<Finding>,
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
        }
    }
}

/// An event before the report is assembled: the public event plus what correlation needs.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub event: XidEvent,
    pub detail: EventDetail,
    pub ts: Option<f64>,
    pub decoded: Decoded,
    pub sxid_fatal: Option<bool>,
    /// Key of the GPU summary the event belongs to (normalised PCI), if any.
    pub gpu_key: Option<String>,
}

struct GpuRow {
    pci: Option<String>,
    index: Option<u32>,
    uuid: Option<String>,
    uuid_source: Option<&'static str>,
    recovery_action: Option<u32>,
    sram_threshold_exceeded: Option<bool>,
    mig: Vec<(Option<u32>, Option<u32>, Option<String>)>,
}

/// Interpret the kernel log (and NVML XID events) of one node.
pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> XidReport {
    let clock = Clock {
        boot_time_unix: facts.host.boot_time_unix.get(),
        now_unix: facts.host.now_unix.get(),
    };
    let mut log = LogSummary {
        since: opts.since_unix.and_then(super::time::rfc3339),
        ..LogSummary::default()
    };
    let records: Vec<Record> = match &facts.kernel_log {
        crate::facts::Reading::Ok(k) => {
            log.origin = Some(k.origin.clone());
            log.lines = k.lines.len();
            log.truncated = k.truncated;
            grammar::records(&k.lines, clock)
        }
        crate::facts::Reading::Err(e) => {
            log.error = Some(e.clone());
            Vec::new()
        }
    };
    log.records = records.len();

    let mut gpus = gpu_table(facts);
    let (mut pending, unrecognized) = events_from_records(&records);
    log.unrecognized_nvidia_lines = unrecognized;
    if let Some(n) = facts.nvml_xid_events.ok() {
        log.nvml_events = Some(n.len());
        for e in n {
            let ev = nvml_event(e);
            // The log is read after the watch, so an Xid NVML delivered is usually in it too.
            let in_log = pending.iter().any(|p| {
                p.event.kind == EventKind::Xid
                    && p.event.code == ev.event.code
                    && p.event.pci_bus_id == ev.event.pci_bus_id
                    && match (p.ts, ev.ts) {
                        (Some(a), Some(b)) => (a - b).abs() <= 10.0,
                        _ => true,
                    }
            });
            if !in_log {
                pending.push(ev);
            }
        }
    }

    // Identity lines are printed once per boot, so they count even outside the --since window.
    for p in &pending {
        if p.event.kind == EventKind::GpuIdentity
            && let (Some(pci), Some(uuid)) = (&p.event.pci_bus_id, &p.event.gpu_uuid)
        {
            learn_identity(&mut gpus, pci, uuid);
        }
    }
    if let Some(since) = opts.since_unix {
        let before = pending.len();
        pending.retain(|p| p.ts.is_none_or(|t| t >= since));
        log.events_before_since = before - pending.len();
    }
    for (i, p) in pending.iter_mut().enumerate() {
        p.detail.event = i;
        attribute(p, &mut gpus);
    }

    let mut findings: Vec<Finding> = Vec::new();
    let mut summaries: Vec<GpuXidSummary> = Vec::new();
    correlate::classify_all(&mut pending, &gpus_view(&gpus));
    for row in &gpus {
        let key = row.pci.clone();
        let mine: Vec<&Pending> = pending
            .iter()
            .filter(|p| p.gpu_key.is_some() && p.gpu_key == key)
            .collect();
        let (summary, mut f) = summarize_gpu(row, &mine, &pending);
        findings.append(&mut f);
        summaries.push(summary);
    }
    findings.extend(node_level_findings(&pending));
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.gpu.cmp(&b.gpu))
            .then(a.code.cmp(&b.code))
    });

    let complete = facts.kernel_log.is_ok();
    let node = node_verdict(&findings, complete, &log);
    XidReport {
        log,
        events: pending.iter().map(|p| p.event.clone()).collect(),
        event_details: pending.iter().map(|p| p.detail.clone()).collect(),
        gpus: summaries,
        node,
        findings,
    }
}

fn gpu_table(facts: &NodeFacts) -> Vec<GpuRow> {
    facts
        .gpus
        .iter()
        .map(|g| GpuRow {
            pci: g.pci_bus_id.ok().and_then(|p| normalize_bus_id(p)),
            index: Some(g.index),
            uuid: g
                .uuid
                .ok()
                .map(|u| u.to_ascii_lowercase().replacen("gpu-", "GPU-", 1)),
            uuid_source: g.uuid.is_ok().then_some("nvml"),
            recovery_action: g.recovery_action.get(),
            sram_threshold_exceeded: g.ecc.sram_threshold_exceeded.get(),
            mig: g
                .mig_devices
                .iter()
                .map(|m| {
                    (
                        m.gpu_instance_id.get(),
                        m.compute_instance_id.get(),
                        m.uuid.ok().cloned(),
                    )
                })
                .collect(),
        })
        .collect()
}

fn gpus_view(rows: &[GpuRow]) -> Vec<correlate::GpuView> {
    rows.iter()
        .map(|r| correlate::GpuView {
            key: r.pci.clone(),
            index: r.index,
            recovery_action: r.recovery_action,
            sram_threshold_exceeded: r.sram_threshold_exceeded,
        })
        .collect()
}

fn learn_identity(rows: &mut Vec<GpuRow>, pci: &str, uuid: &str) {
    if let Some(r) = rows.iter_mut().find(|r| r.pci.as_deref() == Some(pci)) {
        if r.uuid.is_none() {
            r.uuid = Some(uuid.to_string());
            r.uuid_source = Some("kernel_log");
        }
        return;
    }
    // The inventory may know the UUID under another PCI form only if normalisation failed; match by UUID.
    if let Some(r) = rows.iter_mut().find(|r| {
        r.uuid
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
    }) {
        if r.pci.is_none() {
            r.pci = Some(pci.to_string());
        }
        return;
    }
    rows.push(GpuRow {
        pci: Some(pci.to_string()),
        index: None,
        uuid: Some(uuid.to_string()),
        uuid_source: Some("kernel_log"),
        recovery_action: None,
        sram_threshold_exceeded: None,
        mig: Vec::new(),
    });
}

/// Map an event to its GPU row (creating one for a GPU only the log knows) and fill UUID and MIG device.
fn attribute(p: &mut Pending, rows: &mut Vec<GpuRow>) {
    if matches!(p.event.kind, EventKind::Sxid | EventKind::CrashDump) {
        return;
    }
    let Some(pci) = p.event.pci_bus_id.clone() else {
        return;
    };
    let pos = match rows
        .iter()
        .position(|r| r.pci.as_deref() == Some(pci.as_str()))
    {
        Some(i) => i,
        None => {
            rows.push(GpuRow {
                pci: Some(pci.clone()),
                index: None,
                uuid: None,
                uuid_source: None,
                recovery_action: None,
                sram_threshold_exceeded: None,
                mig: Vec::new(),
            });
            rows.len() - 1
        }
    };
    let row = &rows[pos];
    p.gpu_key = Some(pci);
    p.detail.gpu_index = row.index;
    if p.event.gpu_uuid.is_none() {
        p.event.gpu_uuid = row.uuid.clone();
    }
    if let Some(gi) = p.event.gpu_instance_id {
        let ci = p.event.compute_instance_id;
        p.detail.mig_device_uuid = row
            .mig
            .iter()
            .find(|(g, c, _)| *g == Some(gi) && (ci.is_none() || *c == ci))
            .and_then(|(_, _, u)| u.clone());
    }
}

fn catalog_fields(
    code: Option<u32>,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    CatalogStatus,
) {
    match code.and_then(catalog::lookup) {
        Some(e) => (
            Some(e.mnemonic.clone()),
            e.immediate_action.clone(),
            e.investigatory_action.clone(),
            if e.is_driver_only() {
                CatalogStatus::DriverOnly
            } else if e.has_blank_actions() {
                CatalogStatus::BlankActions
            } else {
                CatalogStatus::Catalog
            },
        ),
        None => (None, None, None, CatalogStatus::Unknown),
    }
}

fn blank_event(kind: EventKind, line: usize, ts: Option<f64>, message: String) -> Pending {
    Pending {
        event: XidEvent {
            kind,
            code: None,
            pci_bus_id: None,
            pid: None,
            process_name: None,
            gpu_instance_id: None,
            compute_instance_id: None,
            gpu_uuid: None,
            message,
            timestamp: ts.and_then(super::time::rfc3339),
            line: Some(line),
            mnemonic: None,
            immediate_action: None,
            investigatory_action: None,
        },
        detail: EventDetail {
            event: 0,
            source: "kernel_log".into(),
            gpu_index: None,
            mig_device_uuid: None,
            catalog_status: CatalogStatus::NotApplicable,
            burst: None,
            caused_by_xid: None,
            decoded: None,
            severity: None,
            action: None,
            reason: None,
        },
        ts,
        decoded: Decoded::None,
        sxid_fatal: None,
        gpu_key: None,
    }
}

/// Human text of a (possibly multi-line) NVRM record: `NVRM: ` prefixes dropped, lines joined.
fn flatten(text: &str) -> String {
    let joined = text
        .lines()
        .map(|l| {
            let l = l.trim();
            l.find("NVRM: ").map_or(l, |p| &l[p + 6..]).trim()
        })
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    grammar::clip(&joined)
}

/// Turn records into events (log order). Returns the events and the count of NVIDIA lines that
/// matched no known form.
pub(crate) fn events_from_records(records: &[Record]) -> (Vec<Pending>, usize) {
    let mut out: Vec<Pending> = Vec::new();
    let mut unrecognized = 0usize;
    // Form 3 of fallen-off-the-bus arrives as three records in dmesg/syslog: the head waits here for
    // its last line (at most two records later) and only then becomes one event.
    let mut head: Option<(Pending, usize)> = None;
    for (ri, r) in records.iter().enumerate() {
        if !r.kernel || !grammar::may_be_nvidia(&r.text) {
            continue;
        }
        if let Some((_, at)) = &head
            && ri > at + 3
        {
            head = None;
        }
        let Some(line) = grammar::parse_line(&r.text) else {
            unrecognized += 1;
            continue;
        };
        match line {
            Line::Xid(x) => {
                let (mnemonic, imm, inv, status) = catalog_fields(x.code);
                let mut p = blank_event(EventKind::Xid, r.line, r.ts, x.message.clone());
                p.event.code = x.code;
                p.event.pci_bus_id = x.pci.clone();
                p.event.pid = x.pid;
                p.event.process_name = x.process_name.clone();
                p.event.gpu_instance_id = x.gpu_instance_id;
                p.event.compute_instance_id = x.compute_instance_id;
                p.event.mnemonic = mnemonic;
                p.event.immediate_action = imm;
                p.event.investigatory_action = inv;
                p.detail.catalog_status = status;
                p.detail.caused_by_xid = x.caused_by_xid;
                p.detail.decoded = decoded_detail(&x.decoded);
                p.decoded = x.decoded;
                out.push(p);
            }
            Line::Sxid(s) => {
                let mut p = blank_event(EventKind::Sxid, r.line, r.ts, s.message.clone());
                p.event.code = s.code;
                p.event.pci_bus_id = s.pci.clone();
                p.sxid_fatal = s.fatal;
                p.detail.decoded = Some(DecodedDetail::Sxid {
                    device: s.device.clone(),
                    fatal: s.fatal,
                    link: s.link,
                });
                out.push(p);
            }
            Line::Identity { pci, uuid } => {
                let mut p = blank_event(EventKind::GpuIdentity, r.line, r.ts, flatten(&r.text));
                p.event.pci_bus_id = pci;
                p.event.gpu_uuid = Some(uuid);
                out.push(p);
            }
            Line::FallenOffBus { pci, text } => {
                out.push(fallen(r, pci, flatten(&text)));
            }
            Line::FallenOffBusHead { pci } => {
                head = Some((fallen(r, pci, flatten(&r.text)), ri));
            }
            Line::FallenOffBusMiddle => {
                if let Some((h, _)) = &mut head {
                    h.event.message =
                        grammar::clip(&format!("{} {}", h.event.message, flatten(&r.text)));
                } else {
                    unrecognized += 1;
                }
            }
            Line::FallenOffBusTail => match head.take() {
                Some((mut h, _)) => {
                    h.event.message =
                        grammar::clip(&format!("{} {}", h.event.message, flatten(&r.text)));
                    out.push(h);
                }
                None => out.push(fallen(r, None, flatten(&r.text))),
            },
            Line::InitFailure { pci } => {
                let mut p = blank_event(EventKind::InitFailure, r.line, r.ts, flatten(&r.text));
                p.event.pci_bus_id = pci;
                out.push(p);
            }
            Line::CrashDump => {
                out.push(blank_event(
                    EventKind::CrashDump,
                    r.line,
                    r.ts,
                    flatten(&r.text),
                ));
            }
        }
    }
    (out, unrecognized)
}

fn fallen(r: &Record, pci: Option<String>, message: String) -> Pending {
    let mut p = blank_event(EventKind::FallenOffBus, r.line, r.ts, message);
    p.event.pci_bus_id = pci;
    // The same condition as Xid 79: carry its catalog buckets so consumers see the action.
    if let Some(e) = catalog::lookup(79) {
        p.event.immediate_action = e.immediate_action.clone();
        p.event.investigatory_action = e.investigatory_action.clone();
    }
    p
}

fn decoded_detail(d: &Decoded) -> Option<DecodedDetail> {
    Some(match d {
        Decoded::None => return None,
        Decoded::GraphicsException { gpc, tpc, sm } => DecodedDetail::GraphicsException {
            gpc: *gpc,
            tpc: *tpc,
            sm: *sm,
        },
        Decoded::NvLink { link, registers } => DecodedDetail::NvLinkRegisters {
            link: *link,
            registers: registers.iter().map(|r| format!("0x{r:08x}")).collect(),
        },
        Decoded::Containment {
            contained,
            reset_required,
            drain_and_reset_required,
        } => DecodedDetail::Containment {
            contained: *contained,
            reset_required: *reset_required,
            drain_and_reset_required: *drain_and_reset_required,
        },
        Decoded::RecoveryAction {
            from,
            from_name,
            to,
            to_name,
        } => DecodedDetail::RecoveryAction {
            from: *from,
            from_name: from_name.clone(),
            to: *to,
            to_name: to_name.clone(),
        },
        Decoded::NvLink5 {
            unit,
            fatal,
            link,
            intr_info,
            error_status,
        } => DecodedDetail::NvLink5 {
            unit: unit.clone(),
            fatal: *fatal,
            link: *link,
            intr_info: format!("0x{intr_info:08x}"),
            error_status: format!("0x{error_status:08x}"),
        },
    })
}

fn nvml_event(e: &crate::facts::NvmlXidEventFacts) -> Pending {
    let code = u32::try_from(e.code).ok();
    let (mnemonic, imm, inv, status) = catalog_fields(code);
    let mut p = blank_event(
        EventKind::Xid,
        0,
        e.received_unix,
        "reported by NVML (nvmlEventTypeXidCriticalError) during --watch".into(),
    );
    p.event.line = None;
    p.event.code = code;
    p.event.pci_bus_id = e.pci_bus_id.as_deref().and_then(normalize_bus_id);
    p.event.gpu_uuid = e.gpu_uuid.clone();
    p.event.gpu_instance_id = e.gpu_instance_id;
    p.event.compute_instance_id = e.compute_instance_id;
    p.event.mnemonic = mnemonic;
    p.event.immediate_action = imm;
    p.event.investigatory_action = inv;
    p.detail.catalog_status = status;
    p.detail.source = "nvml_event".into();
    p.detail.gpu_index = Some(e.gpu_index);
    p
}

fn gpu_label(row_index: Option<u32>, pci: Option<&str>) -> String {
    match (row_index, pci) {
        (Some(i), Some(p)) => format!("GPU {i} ({p})"),
        (Some(i), None) => format!("GPU {i}"),
        (None, Some(p)) => format!("GPU at {p}"),
        (None, None) => "unknown GPU".into(),
    }
}

fn recovery_name(v: u32) -> String {
    correlate::recovery_action_name(v).to_string()
}

/// Per-GPU summary and findings from the events attributed to it.
fn summarize_gpu(
    row: &GpuRow,
    mine: &[&Pending],
    all: &[Pending],
) -> (GpuXidSummary, Vec<Finding>) {
    let label = gpu_label(row.index, row.pci.as_deref());
    let xids: Vec<&&Pending> = mine
        .iter()
        .filter(|p| p.event.kind == EventKind::Xid)
        .collect();

    // Code counts, in code order.
    let mut counts: BTreeMap<u32, CodeCount> = BTreeMap::new();
    for p in &xids {
        let Some(code) = p.event.code else { continue };
        let c = counts.entry(code).or_insert_with(|| CodeCount {
            code,
            mnemonic: p.event.mnemonic.clone(),
            count: 0,
            first: p.event.timestamp.clone(),
            last: None,
        });
        c.count += 1;
        c.last = p.event.timestamp.clone();
    }

    let bursts = correlate::bursts_of(&xids.iter().map(|p| **p).collect::<Vec<_>>());
    let last_154 = xids.iter().rev().find_map(|p| match &p.decoded {
        Decoded::RecoveryAction { to, to_name, .. } => Some(RecoveryAction {
            value: *to,
            name: to_name.clone(),
        }),
        _ => None,
    });

    // Findings: one per finding code, with the worst classification among its events.
    struct Agg<'a> {
        class: Class,
        events: Vec<&'a Pending>,
    }
    let mut aggs: BTreeMap<String, Agg> = BTreeMap::new();
    let has_79 = xids.iter().any(|p| p.event.code == Some(79));
    for p in mine {
        let (Some(sev), Some(kind)) = (p.detail.severity, p.detail.action) else {
            continue;
        };
        let code = correlate::finding_code(p, has_79);
        let class = Class {
            severity: sev,
            action: kind,
            detail: p.detail.reason.clone().unwrap_or_default(),
        };
        let a = aggs.entry(code).or_insert_with(|| Agg {
            class: class.clone(),
            events: Vec::new(),
        });
        if (class.severity, class.action) > (a.class.severity, a.class.action) {
            a.class = class;
        }
        a.events.push(p);
    }
    let mut findings = Vec::new();
    for (code, a) in &aggs {
        let first = a.events[0];
        let what = describe(first);
        let mut evidence: Vec<String> = Vec::new();
        if let (Some(i), Some(d)) = (
            &first.event.immediate_action,
            &first.event.investigatory_action,
        ) {
            evidence.push(format!(
                "catalog immediate_action = {i}, investigatory_action = {d}"
            ));
        } else if first.event.kind == EventKind::Xid {
            evidence
                .push(format!("catalog_status = {:?}", first.detail.catalog_status).to_lowercase());
        }
        for p in a.events.iter().take(5) {
            evidence.push(format!(
                "{} {}: {}",
                p.event
                    .line
                    .map_or_else(|| "nvml event".to_string(), |l| format!("line {l}")),
                p.event.timestamp.as_deref().unwrap_or("(no timestamp)"),
                p.event.message
            ));
        }
        if a.events.len() > 5 {
            evidence.push(format!("… and {} more", a.events.len() - 5));
        }
        findings.push(Finding {
            code: code.clone(),
            severity: a.class.severity,
            gpu: row.index,
            gpu_uuid: row.uuid.clone(),
            summary: format!(
                "{what} seen {}× on {label}: {}",
                a.events.len(),
                a.class.detail
            ),
            evidence,
            action: Action {
                kind: a.class.action,
                detail: correlate::action_detail(a.class.action, row.index, row.pci.as_deref()),
            },
        });
    }

    // The driver's own verdict (NVML field 230) drives a finding of its own.
    if let Some(v) = row.recovery_action
        && let Some(class) = correlate::recovery_class(v)
        && v != 0
    {
        findings.push(Finding {
            code: "gpu.recovery_action".into(),
            severity: class.severity,
            gpu: row.index,
            gpu_uuid: row.uuid.clone(),
            summary: format!(
                "the driver reports recovery action {} ({}) for {label}: {}",
                v,
                recovery_name(v),
                class.detail
            ),
            evidence: vec![format!("nvml field 230 (GPU_RECOVERY_ACTION) = {v}")],
            action: Action {
                kind: class.action,
                detail: correlate::action_detail(class.action, row.index, row.pci.as_deref()),
            },
        });
    }

    let verdict = Verdict::from_findings(&findings, true);
    let (action, evidence) = pick_action(&findings);
    let _ = all;
    let summary = GpuXidSummary {
        pci_bus_id: row.pci.clone(),
        index: row.index,
        uuid: row.uuid.clone(),
        uuid_source: row.uuid_source.map(str::to_string),
        recovery_action: row.recovery_action.map(|v| RecoveryAction {
            value: v,
            name: recovery_name(v),
        }),
        last_recovery_transition: last_154,
        events: mine.len(),
        xids: counts.into_values().collect(),
        bursts: bursts.bursts,
        fallen_off_bus: mine
            .iter()
            .any(|p| p.event.kind == EventKind::FallenOffBus || p.event.code == Some(79)),
        verdict,
        action,
        evidence,
    };
    (summary, findings)
}

fn describe(p: &Pending) -> String {
    match p.event.kind {
        EventKind::Xid => match (p.event.code, &p.event.mnemonic) {
            (Some(c), Some(m)) => {
                let desc = catalog::lookup(c)
                    .map(|e| e.description.as_str())
                    .unwrap_or("");
                if desc.is_empty() || desc.starts_with('(') {
                    format!("Xid {c} {m}")
                } else {
                    format!("Xid {c} {m} ({desc})")
                }
            }
            (Some(c), None) => format!("Xid {c} (not in NVIDIA's catalog)"),
            (None, _) => "Xid with an unreadable code".into(),
        },
        EventKind::FallenOffBus => "GPU fallen off the bus".into(),
        EventKind::InitFailure => "GPU initialisation failure".into(),
        EventKind::Sxid => "SXid".into(),
        EventKind::CrashDump => "GPU crash dump".into(),
        EventKind::GpuIdentity => "GPU identity".into(),
    }
}

/// The most disruptive action among the findings of the highest severity, and their summaries.
fn pick_action(findings: &[Finding]) -> (Action, Vec<String>) {
    let Some(worst) = findings.iter().map(|f| f.severity).max() else {
        return (
            Action {
                kind: ActionKind::None,
                detail: "no kernel-log event asks for action".into(),
            },
            Vec::new(),
        );
    };
    let top: Vec<&Finding> = findings.iter().filter(|f| f.severity == worst).collect();
    let best = top
        .iter()
        .max_by_key(|f| f.action.kind)
        .map(|f| f.action.clone())
        .unwrap_or(Action {
            kind: ActionKind::None,
            detail: String::new(),
        });
    let evidence = top
        .iter()
        .map(|f| format!("{}: {}", f.code, f.summary))
        .collect();
    (best, evidence)
}

/// Findings not tied to one GPU: SXids (NVSwitch), crash dumps, init failures on unknown devices.
fn node_level_findings(pending: &[Pending]) -> Vec<Finding> {
    let mut groups: HashMap<String, (Class, Vec<&Pending>)> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for p in pending.iter().filter(|p| p.gpu_key.is_none()) {
        let (Some(sev), Some(kind)) = (p.detail.severity, p.detail.action) else {
            continue;
        };
        let mut code = correlate::finding_code(p, false);
        if p.event.kind == EventKind::Sxid
            && let Some(pci) = &p.event.pci_bus_id
        {
            code = format!("{code}@{pci}");
        }
        let class = Class {
            severity: sev,
            action: kind,
            detail: p.detail.reason.clone().unwrap_or_default(),
        };
        let g = groups.entry(code.clone()).or_insert_with(|| {
            order.push(code.clone());
            (class.clone(), Vec::new())
        });
        if (class.severity, class.action) > (g.0.severity, g.0.action) {
            g.0 = class;
        }
        g.1.push(p);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let (class, evs) = groups.remove(&key)?;
            let code = key.split('@').next().unwrap_or(&key).to_string();
            let first = evs[0];
            let mut evidence: Vec<String> = evs
                .iter()
                .take(5)
                .map(|p| {
                    let code = p.event.code.map(|c| format!("{c:05} ")).unwrap_or_default();
                    format!(
                        "line {} {}: {}{}",
                        p.event.line.unwrap_or(0),
                        p.event.timestamp.as_deref().unwrap_or("(no timestamp)"),
                        if p.event.kind == EventKind::Sxid {
                            code
                        } else {
                            String::new()
                        },
                        p.event.message
                    )
                })
                .collect();
            if evs.len() > 5 {
                evidence.push(format!("… and {} more", evs.len() - 5));
            }
            let whom = match (&first.event.kind, &first.event.pci_bus_id) {
                (EventKind::Sxid, Some(pci)) => match &first.detail.decoded {
                    Some(DecodedDetail::Sxid {
                        device: Some(d), ..
                    }) => format!(" on {d} ({pci})"),
                    _ => format!(" on the NVSwitch at {pci}"),
                },
                (_, Some(pci)) => format!(" on {pci}"),
                _ => String::new(),
            };
            Some(Finding {
                code,
                severity: class.severity,
                gpu: None,
                gpu_uuid: None,
                summary: format!(
                    "{}{whom} seen {}×: {}",
                    describe(first),
                    evs.len(),
                    class.detail
                ),
                evidence,
                action: Action {
                    kind: class.action,
                    detail: correlate::action_detail(class.action, None, None),
                },
            })
        })
        .collect()
}

fn node_verdict(findings: &[Finding], complete: bool, log: &LogSummary) -> NodeXidVerdict {
    let verdict = Verdict::from_findings(findings, complete);
    let (mut action, mut evidence) = pick_action(findings);
    if let Some(e) = &log.error {
        evidence.push(format!(
            "kernel log not read: {:?}{}",
            e.error,
            e.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
        if findings.is_empty() {
            action.detail =
                "the kernel log could not be read; nothing can be said about XIDs".into();
        }
    }
    if log.truncated {
        evidence
            .push("the kernel log was truncated while reading: older events may be missing".into());
    }
    NodeXidVerdict {
        verdict,
        action,
        evidence,
    }
}
