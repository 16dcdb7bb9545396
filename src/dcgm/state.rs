//! What the run may have changed on a GPU: NVML's memory-error state and whether the GPU still answers,
//! read before and after, and the Xid events the kernel logged during the run. A memory test that passes
//! while the driver counts a new uncorrectable error, or a GPU that falls off the bus under load, is part
//! of the result.

use serde::{Deserialize, Serialize};

use crate::facts::{FieldErrorKind, GpuFacts, NodeFacts, Reading};

/// One GPU's state as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuState {
    pub index: u32,
    /// NVML answered GPU_IS_LOST: the GPU fell off the bus.
    pub lost: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_volatile_corrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_volatile_uncorrected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_sbe: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_pages_dbe: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirement_pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_correctable: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remapped_rows_uncorrectable: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_pending: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remap_failure: Option<bool>,
}

fn is_lost<T>(r: &Reading<T>) -> bool {
    matches!(r, Reading::Err(e) if e.error == FieldErrorKind::GpuIsLost)
}

fn state(g: &GpuFacts) -> GpuState {
    let e = &g.ecc;
    let pages = e.retired_pages.ok();
    let rows = e.remapped_rows.ok();
    GpuState {
        index: g.index,
        lost: g
            .handle_error
            .as_ref()
            .is_some_and(|e| e.error == FieldErrorKind::GpuIsLost)
            || is_lost(&g.uuid)
            || is_lost(&g.name)
            || is_lost(&e.volatile_uncorrected),
        ecc_volatile_corrected: e.volatile_corrected.get(),
        ecc_volatile_uncorrected: e.volatile_uncorrected.get(),
        retired_pages_sbe: pages.map(|p| p.single_bit),
        retired_pages_dbe: pages.map(|p| p.double_bit),
        retirement_pending: pages.map(|p| p.pending),
        remapped_rows_correctable: rows.map(|r| r.correctable),
        remapped_rows_uncorrectable: rows.map(|r| r.uncorrectable),
        remap_pending: rows.map(|r| r.pending),
        remap_failure: rows.map(|r| r.failure),
    }
}

/// The state of the GPUs `indices` names.
pub fn snapshot(facts: &NodeFacts, indices: &[u32]) -> Vec<GpuState> {
    facts
        .gpus
        .iter()
        .filter(|g| indices.contains(&g.index))
        .map(state)
        .collect()
}

/// One reading that changed during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StateChange {
    pub gpu: u32,
    /// `lost`, `ecc_volatile_uncorrected`, `remap_pending`, ... (a [`GpuState`] field), or `xid`.
    pub what: String,
    pub before: String,
    pub after: String,
    /// Whether the change is a fault (a new uncorrectable error, a pending remap, a lost GPU, an Xid)
    /// rather than a count worth knowing (corrected errors).
    pub fault: bool,
}

fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or("?".into(), T::to_string)
}

/// What differs between `before` and `after`, GPU by GPU. A GPU absent after (NVML lists fewer GPUs) is
/// lost.
pub fn changes(before: &[GpuState], after: &[GpuState]) -> Vec<StateChange> {
    let mut out = Vec::new();
    for b in before {
        let a = after
            .iter()
            .find(|a| a.index == b.index)
            .cloned()
            .unwrap_or(GpuState {
                index: b.index,
                lost: true,
                ..GpuState::default()
            });
        let mut push = |what: &str, before: String, after: String, fault: bool| {
            if before != after {
                out.push(StateChange {
                    gpu: b.index,
                    what: what.into(),
                    before,
                    after,
                    fault,
                });
            }
        };
        push("lost", b.lost.to_string(), a.lost.to_string(), a.lost);
        if a.lost {
            continue;
        }
        macro_rules! field {
            ($f:ident, $fault:expr) => {
                if a.$f.is_some() {
                    push(stringify!($f), show(&b.$f), show(&a.$f), $fault);
                }
            };
        }
        field!(ecc_volatile_uncorrected, true);
        field!(retired_pages_dbe, true);
        field!(retirement_pending, a.retirement_pending == Some(true));
        field!(remapped_rows_uncorrectable, true);
        field!(remap_pending, a.remap_pending == Some(true));
        field!(remap_failure, a.remap_failure == Some(true));
        field!(ecc_volatile_corrected, false);
        field!(retired_pages_sbe, false);
        field!(remapped_rows_correctable, false);
    }
    out
}

/// An Xid the kernel logged while the run lasted, on one of the tested GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct XidDuring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    pub code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnemonic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub message: String,
}

/// At most this many Xid events of the run are listed (the rest counted).
pub const MAX_XIDS: usize = 16;

/// The Xid events of `facts`' kernel log at or after `since_unix`, on the GPUs `indices` names (or
/// naming no GPU), bounded; and how many more there were.
pub fn xids_during(facts: &NodeFacts, since_unix: f64, indices: &[u32]) -> (Vec<XidDuring>, usize) {
    let opts = crate::options::AnalysisOptions {
        expect_gpus: None,
        since_unix: Some(since_unix),
    };
    let report = crate::kernel_log::report::analyze(facts, &opts);
    let bus = |g: &GpuFacts| {
        crate::analysis::canonical_bus_id(&g.pci_bus_id)
            .ok()
            .cloned()
    };
    let mut out = Vec::new();
    let mut more = 0;
    for e in report
        .events
        .iter()
        .filter(|e| e.kind == crate::kernel_log::contract::EventKind::Xid)
    {
        let Some(code) = e.code else { continue };
        let gpu = facts
            .gpus
            .iter()
            .find(|g| {
                e.pci_bus_id
                    .as_deref()
                    .is_some_and(|p| bus(g).is_some_and(|b| b.eq_ignore_ascii_case(p)))
                    || e.gpu_uuid
                        .as_deref()
                        .is_some_and(|u| g.uuid.ok().is_some_and(|x| x.eq_ignore_ascii_case(u)))
            })
            .map(|g| g.index);
        if gpu.is_some_and(|g| !indices.contains(&g)) {
            continue;
        }
        if out.len() >= MAX_XIDS {
            more += 1;
            continue;
        }
        out.push(XidDuring {
            gpu,
            code,
            mnemonic: e.mnemonic.clone(),
            timestamp: e.timestamp.clone(),
            message: super::limits::clip(&e.message, 200),
        });
    }
    (out, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_uncorrectable_error_and_a_lost_gpu_are_faults() {
        let b = vec![
            GpuState {
                index: 0,
                ecc_volatile_uncorrected: Some(0),
                ecc_volatile_corrected: Some(3),
                remap_pending: Some(false),
                ..GpuState::default()
            },
            GpuState {
                index: 1,
                ..GpuState::default()
            },
        ];
        let a = vec![GpuState {
            index: 0,
            ecc_volatile_uncorrected: Some(2),
            ecc_volatile_corrected: Some(5),
            remap_pending: Some(true),
            ..GpuState::default()
        }];
        let c = changes(&b, &a);
        let what: Vec<(&str, bool)> = c.iter().map(|c| (c.what.as_str(), c.fault)).collect();
        assert_eq!(
            what,
            [
                ("ecc_volatile_uncorrected", true),
                ("remap_pending", true),
                ("ecc_volatile_corrected", false),
                ("lost", true)
            ]
        );
        assert!(changes(&b, &b).is_empty());
    }
}
