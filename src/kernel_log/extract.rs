//! Extraction: kernel-log records (and NVML events) into `Pending` events, one record at a time.
//! Depends on the grammar and the event model only.

use super::amdgpu_extract::AmdExtractor;
use super::contract::{CatalogStatus, DecodedDetail, EventKind};
use super::event::{Pending, blank_event};
use super::grammar::{self, Line, Record};
use super::nvidia_catalog;
use super::{amdgpu_catalog, habanalabs_catalog};
use crate::pci::normalize_bus_id;

fn catalog_fields(
    code: Option<u32>,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    CatalogStatus,
) {
    match code.and_then(nvidia_catalog::lookup) {
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

/// Records to events, streaming. Form 3 of fallen-off-the-bus arrives as three records in
/// dmesg/syslog: its head waits here for the last line (at most two records later) and only then
/// becomes one event, so a record yields at most one event from `push`. amdgpu lines go to
/// `AmdExtractor`, whose multi-record events (VM faults, ring timeouts) can also complete when an
/// unrelated record ends them: take those with `take_flushed` after each `push`, and `finish` at the end.
#[derive(Debug, Default)]
pub(crate) struct Extractor {
    /// NVRM/SXid lines that matched no known form.
    pub unrecognized: usize,
    head: Option<(Pending, usize)>,
    records: usize,
    amd: AmdExtractor,
}

impl Extractor {
    /// Records seen so far.
    pub fn records(&self) -> usize {
        self.records
    }

    /// An amdgpu event the last record ended (it comes before that record's own event).
    pub fn take_flushed(&mut self) -> Option<Pending> {
        self.amd.take_flushed()
    }

    /// The input ended: an amdgpu event still waiting for its continuation lines.
    pub fn finish(&mut self) -> Option<Pending> {
        self.amd.finish()
    }

    /// The event this record completes, if any (in log order).
    pub fn push(&mut self, r: &Record) -> Option<Pending> {
        let ri = self.records;
        self.records += 1;
        if !r.kernel {
            return None;
        }
        if !grammar::may_be_nvidia(&r.text) {
            if self.amd.waiting() || grammar::may_be_amdgpu(&r.text) {
                return self.amd.push(r);
            }
            if grammar::may_be_habanalabs(&r.text) {
                return grammar::parse_habanalabs(&r.text).map(|l| habanalabs_event(r, l));
            }
            if grammar::may_be_neuron(&r.text) {
                return grammar::parse_neuron(&r.text).map(|l| super::neuron_extract::event(r, l));
            }
            return None;
        }
        self.amd.flush();
        if let Some((_, at)) = &self.head
            && ri > at + 3
        {
            self.head = None;
        }
        let Some(line) = grammar::parse_line(&r.text) else {
            self.unrecognized += 1;
            return None;
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
                p.detail.decoded = x.decoded;
                Some(p)
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
                Some(p)
            }
            Line::Identity { pci, uuid } => {
                let mut p = blank_event(EventKind::GpuIdentity, r.line, r.ts, flatten(&r.text));
                p.event.pci_bus_id = pci;
                p.event.gpu_uuid = Some(uuid);
                Some(p)
            }
            Line::FallenOffBus { pci, text } => Some(fallen(r, pci, flatten(&text))),
            Line::FallenOffBusHead { pci } => {
                self.head = Some((fallen(r, pci, flatten(&r.text)), ri));
                None
            }
            Line::FallenOffBusMiddle => {
                if let Some((h, _)) = &mut self.head {
                    h.event.message =
                        grammar::clip(&format!("{} {}", h.event.message, flatten(&r.text)));
                } else {
                    self.unrecognized += 1;
                }
                None
            }
            Line::FallenOffBusTail => match self.head.take() {
                Some((mut h, _)) => {
                    h.event.message =
                        grammar::clip(&format!("{} {}", h.event.message, flatten(&r.text)));
                    Some(h)
                }
                None => Some(fallen(r, None, flatten(&r.text))),
            },
            Line::InitFailure { pci } => {
                let mut p = blank_event(EventKind::InitFailure, r.line, r.ts, flatten(&r.text));
                p.event.pci_bus_id = pci;
                Some(p)
            }
            Line::CrashDump => Some(blank_event(
                EventKind::CrashDump,
                r.line,
                r.ts,
                flatten(&r.text),
            )),
        }
    }
}

/// A habanalabs line as an event: its catalog entry's mnemonic, the action as its class reads it.
fn habanalabs_event(r: &Record, l: grammar::HlLine) -> Pending {
    let entry = habanalabs_catalog::lookup(l.event);
    let mut p = blank_event(EventKind::Habanalabs, r.line, r.ts, l.text);
    p.event.pci_bus_id = l.pci;
    p.event.mnemonic = entry.map(|e| e.mnemonic.to_string());
    p.event.immediate_action = entry.map(|e| amdgpu_catalog::bucket(e.action).to_string());
    p.detail.catalog_status = if entry.is_some() {
        CatalogStatus::Catalog
    } else {
        CatalogStatus::Unknown
    };
    p.detail.decoded = Some(DecodedDetail::Habanalabs {
        event: l.event.to_string(),
        source_event: l.source_event,
        device: l.device,
        what: l.what,
        address: l.address,
    });
    p
}

fn fallen(r: &Record, pci: Option<String>, message: String) -> Pending {
    let mut p = blank_event(EventKind::FallenOffBus, r.line, r.ts, message);
    p.event.pci_bus_id = pci;
    // The same condition as Xid 79: carry its catalog buckets so consumers see the action.
    if let Some(e) = nvidia_catalog::lookup(79) {
        p.event.immediate_action = e.immediate_action.clone();
        p.event.investigatory_action = e.investigatory_action.clone();
    }
    p
}

pub(crate) fn nvml_event(e: &crate::facts::NvmlXidEventFacts) -> Pending {
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
