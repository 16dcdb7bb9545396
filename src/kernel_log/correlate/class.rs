//! What correlation hands on: a classification (`Class`) and what it is judged from (`GpuView`, the
//! GPU's NVML facts; `EventCtx`, the event's place in its GPU's history).

use std::collections::BTreeSet;

use crate::finding::{ActionKind, Severity};

/// A classification: how bad, what to do, and why (one sentence).
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub severity: Severity,
    pub action: ActionKind,
    pub detail: String,
}

pub(super) fn class(severity: Severity, action: ActionKind, detail: impl Into<String>) -> Class {
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

impl EventCtx {
    /// An event seen alone: no other event in its burst or on its GPU, and its GPU's last Xid 154.
    pub fn alone() -> Self {
        EventCtx {
            last_154: true,
            ..EventCtx::default()
        }
    }
}
