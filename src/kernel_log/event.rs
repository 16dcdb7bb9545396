//! The event model between the grammar and the report: what one recognised kernel-log line (or NVML
//! event) carries while it is attributed and classified. The grammar decodes into the contract's
//! `DecodedDetail`; extraction turns lines into `Pending`; correlation classifies them; none of those three
//! imports another.

use super::contract::{CatalogStatus, EventDetail, EventKind, XidEvent};

/// An event before the report is assembled: the public event plus what correlation needs.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub event: XidEvent,
    /// Carries what the grammar decoded (`detail.decoded`), which correlation reads too.
    pub detail: EventDetail,
    pub ts: Option<f64>,
    pub sxid_fatal: Option<bool>,
    /// Key of the GPU summary the event belongs to (normalised PCI), if any.
    pub gpu_key: Option<String>,
}

impl Pending {
    /// The time bursts are measured on: the wall clock, else the log's own uptime (a log from another
    /// machine), so events a minute apart stay a minute apart without a wall-clock time.
    pub fn gap_clock(&self) -> Option<f64> {
        self.ts.or(self.detail.uptime_s)
    }
}

/// An event with every optional field empty, ready to be filled by extraction.
pub(crate) fn blank_event(
    kind: EventKind,
    line: usize,
    ts: Option<f64>,
    message: String,
) -> Pending {
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
            uptime_s: None,
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
        sxid_fatal: None,
        gpu_key: None,
    }
}
