//! Pure interpretation of [`crate::facts::NodeFacts`]: the analyses of most probe commands, one module each.
//! Each command's analysis function is named in its row of the `commands!` table ([`crate::command`]);
//! `xid`'s lives in [`crate::kernel_log`], `allocation`'s in [`crate::attribution`] and `workload`'s in
//! [`crate::workload`]. No I/O.
//!
//! Every report keeps per-field failures inline (a [`Reading`] error stays an error in the report), and
//! every judgement is a [`Finding`] with a stable code, the evidence that drove it and an action, so
//! `health` can collect them all and state a verdict that is explained rather than scored.

pub mod amd;
pub mod describe;
pub mod ecc;
pub mod gaudi;
pub mod health;
pub mod inventory;
pub mod neuron;
pub mod nic;
pub mod pci_relation;
pub mod processes;
pub mod telemetry;
pub mod topology;

use serde::{Deserialize, Serialize};

use crate::facts::{FieldError, FieldErrorKind, GpuFacts, Reading};
use crate::finding::{Action, ActionKind, Finding, Severity};

/// Which GPU a report entry is about: index plus the identifiers an SRE or the launcher matches on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuRef {
    pub index: u32,
    pub uuid: Reading<String>,
    /// Canonical `dddd:bb:dd.f`.
    pub pci_bus_id: Reading<String>,
}

impl GpuRef {
    pub fn of(g: &GpuFacts) -> Self {
        GpuRef {
            index: g.index,
            uuid: g.uuid.clone(),
            pci_bus_id: canonical_bus_id(&g.pci_bus_id),
        }
    }
}

/// NVML's bus id in the canonical form; an unparsable id becomes an inline error that quotes it.
pub fn canonical_bus_id(raw: &Reading<String>) -> Reading<String> {
    match raw {
        Reading::Ok(s) => match crate::pci::normalize_bus_id(s) {
            Some(n) => Reading::Ok(n),
            None => Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("unparsable PCI bus id `{s}`"),
            )),
        },
        Reading::Err(e) => Reading::Err(e.clone()),
    }
}

/// Builds a finding about one GPU (or the node when `gpu` is None).
pub(crate) fn finding(
    code: &str,
    severity: Severity,
    gpu: Option<&GpuFacts>,
    summary: String,
    evidence: Vec<String>,
    kind: ActionKind,
    detail: String,
) -> Finding {
    Finding {
        code: code.to_string(),
        severity,
        gpu: gpu.map(|g| g.index),
        gpu_uuid: gpu.and_then(|g| g.uuid.ok().cloned()),
        summary,
        evidence,
        action: Action { kind, detail },
        about: Vec::new(),
        first_seen: None,
    }
}

/// `GPU 3 (0000:5d:00.0)`: how findings name a GPU of the inventory in prose (the one label of
/// [`crate::kernel_log::report::gpu_label`], with the canonical PCI id when it is readable).
pub(crate) fn gpu_label(g: &GpuFacts) -> String {
    let bus = canonical_bus_id(&g.pci_bus_id);
    crate::kernel_log::report::gpu_label(Some(g.index), bus.ok().map(String::as_str))
}

/// A reading for evidence lines: the value, or `<error kind>`.
pub(crate) fn show<T: std::fmt::Display>(r: &Reading<T>) -> String {
    match r {
        Reading::Ok(v) => v.to_string(),
        Reading::Err(e) => format!("<{}>", error_name(e.error)),
    }
}

pub(crate) fn error_name(k: FieldErrorKind) -> &'static str {
    match k {
        FieldErrorKind::NotSupported => "not_supported",
        FieldErrorKind::NoPermission => "no_permission",
        FieldErrorKind::GpuIsLost => "gpu_is_lost",
        FieldErrorKind::FunctionNotFound => "function_not_found",
        FieldErrorKind::NotFound => "not_found",
        FieldErrorKind::Timeout => "timeout",
        FieldErrorKind::NotCollected => "not_collected",
        FieldErrorKind::Unknown => "unknown",
    }
}

/// Bytes as MiB, the unit nvidia-smi uses, rounded up as it rounds: on an H100 with driver 580.159.04 it
/// showed used 1530.81 / 4278.38 / 7026.81 MiB as 1531 / 4279 / 7027 and free 79548.19 / 76800.63 / 74052.19
/// MiB as 79549 / 76801 / 74053 (tests/device). Truncating was a MiB below what the operator reads there.
pub fn mib(bytes: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    bytes / MIB + u64::from(!bytes.is_multiple_of(MIB))
}

/// Indices with runs of consecutive values collapsed, in the order given and joined by `separator`:
/// `[0, 1, 2, 3, 8, 10, 11]` is `0-3,8,10-11` with `","` (the kernel's CPU list form) and `0-3, 8, 10-11`
/// with `", "` (GPU sets in answers). It neither sorts nor removes repeats: callers that need a set sort it.
pub fn index_ranges(indices: &[u32], separator: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && end.checked_add(1) == Some(indices[i + 1]) {
            i += 1;
            end = indices[i];
        }
        if !out.is_empty() {
            out.push_str(separator);
        }
        let _ = if start == end {
            write!(out, "{start}")
        } else {
            write!(out, "{start}-{end}")
        };
        i += 1;
    }
    out
}

/// Seconds since boot from the collected clock, when both ends are known. Counters that reset at driver
/// load are averaged over this (the driver loads at boot on a GPU node).
pub(crate) fn uptime_s(facts: &crate::facts::NodeFacts) -> Option<f64> {
    let (boot, now) = (facts.host.boot_time_unix.get()?, facts.host.now_unix.get()?);
    (now > boot).then_some(now - boot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mib_rounds_as_nvidia_smi_does() {
        // NVML bytes and nvidia-smi's MiB for them, read together on an H100 (driver 580.159.04).
        for (bytes, shown) in [
            (1_605_173_248, 1531),
            (4_486_201_344, 4279),
            (7_368_146_944, 7027),
            (83_412_320_256, 79549),
            (80_531_292_160, 76801),
            (77_649_346_560, 74053),
            (85_520_809_984, 81559),
            (1_595_932_672, 1522),
        ] {
            assert_eq!(mib(bytes), shown, "{bytes} B");
        }
        assert_eq!(mib(0), 0);
        assert_eq!(mib(1), 1);
        assert_eq!(mib(u64::MAX), u64::MAX / 1048576 + 1);
    }

    #[test]
    fn index_ranges_collapse_runs_in_the_order_given() {
        assert_eq!(index_ranges(&[], ","), "");
        assert_eq!(index_ranges(&[3], ","), "3");
        assert_eq!(index_ranges(&[0, 1, 2, 3, 8, 10, 11], ","), "0-3,8,10-11");
        assert_eq!(index_ranges(&[0, 1, 2, 4, 5, 6, 7], ", "), "0-2, 4-7");
        // Unsorted input and repeats stay as given: the CPU list sorts first (`topology::cpu_ranges`
        // gives `4-6` here), a GPU set of an answer lists its GPUs in its own order.
        assert_eq!(index_ranges(&[5, 4, 4, 6], ","), "5,4,4,6");
        assert_eq!(index_ranges(&[2, 3, 0, 1], ", "), "2-3, 0-1");
        assert_eq!(
            index_ranges(&[u32::MAX - 1, u32::MAX, 0], ","),
            "4294967294-4294967295,0"
        );
    }

    #[test]
    fn bus_ids_are_canonical_or_inline_errors() {
        assert_eq!(
            canonical_bus_id(&Reading::Ok("00000000:9A:00.0".into())),
            Reading::Ok("0000:9a:00.0".into())
        );
        let bad = canonical_bus_id(&Reading::Ok("garbage".into()));
        assert_eq!(bad.err().unwrap().error, FieldErrorKind::Unknown);
        let lost: Reading<String> = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        assert_eq!(canonical_bus_id(&lost), lost);
    }
}

#[cfg(test)]
mod amd_tests;
#[cfg(test)]
mod incident_tests;
