//! Events as read: the kernel log's records and what NVML's event API delivered (Xid events, and the
//! events of a watch).

use serde::{Deserialize, Serialize};

use super::reading::{FieldError, Reading};

/// The kernel ring buffer (or a log file) as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelLogFacts {
    /// `kmsg`, `file:<path>` or `simulated`.
    pub origin: String,
    /// Records in read order: raw kmsg records (`pri,seq,usec,flags;text`), dmesg lines or syslog lines.
    pub lines: Vec<String>,
    /// True when the reader stopped early (size cap) or records were overwritten while reading.
    #[serde(default)]
    pub truncated: bool,
}

/// One `nvmlEventTypeXidCriticalError` event as NVML delivered it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlXidEventFacts {
    /// Index of the GPU whose handle the event came from.
    pub gpu_index: u32,
    #[serde(default)]
    pub gpu_uuid: Option<String>,
    /// PCI bus id as NVML prints it.
    #[serde(default)]
    pub pci_bus_id: Option<String>,
    /// The event data: the Xid code.
    pub code: u64,
    /// MIG attribution (0xFFFFFFFF from NVML, meaning none, is stored as absent).
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
    /// Wall clock when the probe received it (unix seconds).
    #[serde(default)]
    pub received_unix: Option<f64>,
}

/// What an NVML event watch saw. NVML only reports events that happen while registered: history comes
/// from the kernel log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventsFacts {
    pub watched_seconds: u32,
    /// Per GPU: the event-type mask registered, or why registration failed.
    #[serde(default)]
    pub registered: Vec<NvmlEventRegistration>,
    /// In arrival order.
    #[serde(default)]
    pub events: Vec<NvmlEventFacts>,
    /// Why the wait ended before `watched_seconds` (e.g. gpu_is_lost), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_early: Option<FieldError>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventRegistration {
    pub gpu: u32,
    /// nvmlEventType bits registered (0x8 XID critical error, 0x8000 GPU recovery action, ...).
    pub event_types: Reading<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NvmlEventFacts {
    /// Index of the GPU the event names, when it is one of the enumerated GPUs.
    #[serde(default)]
    pub gpu: Option<u32>,
    /// The nvmlEventType bit: 0x8 XID critical error, 0x8000 GPU recovery action, 0x2 double-bit ECC, ...
    pub event_type: u64,
    /// For 0x8 the XID number; for 0x8000 the recovery action (as field 230).
    pub event_data: u64,
    #[serde(default)]
    pub gpu_instance_id: Option<u32>,
    #[serde(default)]
    pub compute_instance_id: Option<u32>,
    /// Wall clock when the probe received it (unix seconds).
    pub received_unix: f64,
}
