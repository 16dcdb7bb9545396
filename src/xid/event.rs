//! The event model between the grammar and the report: what one recognised kernel-log line (or NVML
//! event) carries while it is attributed and classified. The grammar produces `Decoded`; extraction
//! turns lines into `Pending`; correlation classifies them; none of those three imports another.

use super::contract::{CatalogStatus, EventDetail, EventKind, XidEvent};

/// Structured facts pulled from an Xid's free text.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Decoded {
    #[default]
    None,
    /// Xid 13: `(GPC g, TPC t, SM s)`.
    GraphicsException { gpc: u32, tpc: u32, sm: Option<u32> },
    /// Xid 74: `NVLink: fatal error detected on link N(0x…, … ×7)`.
    NvLink { link: u32, registers: Vec<u32> },
    /// Xid 94/95: `Contained|Uncontained: … RST: Yes|No, D-RST: Yes|No`.
    Containment {
        contained: Option<bool>,
        reset_required: Option<bool>,
        drain_and_reset_required: Option<bool>,
    },
    /// Xid 154: `GPU recovery action changed from 0xA (…) to 0xB (…)`.
    RecoveryAction {
        from: u32,
        from_name: String,
        to: u32,
        to_name: String,
    },
    /// Xid 144–150: `<unit> <Fatal|Nonfatal> <XCn> <iN> Link <n> (<intrInfo> <errorStatus> …)`.
    NvLink5 {
        unit: String,
        fatal: bool,
        link: i32,
        intr_info: u32,
        error_status: u32,
    },
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
