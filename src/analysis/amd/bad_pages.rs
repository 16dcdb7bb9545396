//! Retired VRAM pages (`ras/gpu_vram_bad_pages`: `R` reserved, `P` pending, `F` could not be reserved)
//! against the driver's bad-page threshold [K1][K2]:
//! - `amdgpu.bad_page_threshold=-1` (default): 128 pages (256 on MP0 13.0.14); reaching it the driver logs
//!   and points at AMD's Service Action Guide but keeps the GPU running.
//! - `> 0` (user threshold): reaching it marks the GPU RMA (EEPROM header BAD) and it fails init.
//! - `0`: retirement disabled.
//!
//! At boot the driver warns from 90 % of the threshold (`RAS records:%u exceeds 90%% of threshold`): the
//! same line here makes a warning.

//!
//! `libamd_smi` (where the node has it) reads the same driver list (`amdsmi_get_gpu_bad_page_info`, its
//! status RESERVED / PENDING / UNRESERVABLE = `R`/`P`/`F`), so it is used only for a GPU whose sysfs list
//! could not be read: one source per GPU, never both added up.

use std::borrow::Cow;

use crate::analysis::{finding, gpu_label};
use crate::facts::{AmdBadPagesFacts, AmdGpuFacts, GpuFacts, NodeFacts};
use crate::finding::{ActionKind, Finding, Severity};

/// The GPU's bad-page counts and, in words, where they were read: sysfs `ras/gpu_vram_bad_pages`, else
/// `libamd_smi`'s records of the GPU of the same PCI address; `None` when neither was read.
pub fn bad_pages<'a>(
    g: &GpuFacts,
    amd: &'a AmdGpuFacts,
    facts: &NodeFacts,
) -> Option<(Cow<'a, AmdBadPagesFacts>, String)> {
    if let Some(bp) = amd.bad_pages.ok() {
        return Some((Cow::Borrowed(bp), "ras/gpu_vram_bad_pages".to_string()));
    }
    let bdf = g.pci_bus_id.ok()?;
    let lib = facts.amd_driver.as_ref()?.amd_smi.as_ref()?.ok()?;
    let smi = lib
        .gpus
        .ok()?
        .iter()
        .find(|s| s.bdf.eq_ignore_ascii_case(bdf))?;
    let c = smi.bad_pages.ok()?;
    Some((
        Cow::Owned(AmdBadPagesFacts {
            reserved: c.reserved,
            pending: c.pending,
            unreservable: c.unreservable,
            ..AmdBadPagesFacts::default()
        }),
        format!(
            "libamd_smi {} amdsmi_get_gpu_bad_page_info (sysfs's list unreadable)",
            lib.version
        ),
    ))
}

/// Where the threshold of this GPU comes from, in words, and its value; `None` when unknown.
pub fn rma_threshold(amd: &AmdGpuFacts, facts: &NodeFacts) -> Option<(u32, String)> {
    threshold_of(amd.bad_pages.ok()?, facts)
}

pub(super) fn threshold_of(bp: &AmdBadPagesFacts, facts: &NodeFacts) -> Option<(u32, String)> {
    let param = facts
        .amd_driver
        .as_ref()
        .and_then(|d| d.bad_page_threshold_param.get());
    let user = param.is_some_and(|p| p > 0);
    let threshold = bp
        .threshold
        .or_else(|| param.filter(|&p| p > 0).and_then(|p| u32::try_from(p).ok()))?;
    let from = match bp.threshold_source.as_deref() {
        Some("debugfs") => "debugfs ras/bad_page_cnt_threshold",
        Some("parameter") => "the amdgpu.bad_page_threshold parameter",
        Some("default_for_generation") => "the driver's default for this GPU generation",
        Some(other) => other,
        None if user => "the amdgpu.bad_page_threshold parameter",
        None => "unknown source",
    };
    let mode = match param {
        Some(p) if p > 0 => format!("user threshold (amdgpu.bad_page_threshold={p}): the GPU is retired (RMA) when it is reached"),
        Some(-1) | None => "default threshold (amdgpu.bad_page_threshold=-1): the driver warns and keeps the GPU running".to_string(),
        Some(p) => format!("amdgpu.bad_page_threshold={p}"),
    };
    Some((
        threshold,
        format!("threshold {threshold} pages from {from}; {mode}"),
    ))
}

pub fn judge(g: &GpuFacts, amd: &AmdGpuFacts, facts: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some((bp, source)) = bad_pages(g, amd, facts) else {
        return out;
    };
    let who = gpu_label(g);
    let i = g.index;
    let counts = format!(
        "{source}: {} retired (R), {} pending (P), {} unreservable (F)",
        bp.reserved, bp.pending, bp.unreservable
    );
    let limit = threshold_of(&bp, facts);
    if let Some((threshold, source)) = &limit
        && *threshold > 0
    {
        let threshold = *threshold;
        if bp.reserved >= threshold {
            out.push(finding(
                "amd.bad_pages.threshold",
                Severity::Critical,
                Some(g),
                format!(
                    "{who} has retired {} VRAM pages, at or past its threshold of {threshold}: by AMD's Service Action Guide the GPU is due for RMA.",
                    bp.reserved
                ),
                vec![counts.clone(), source.clone()],
                ActionKind::Rma,
                format!(
                    "take GPU {i} out of service (cordon the node or exclude the GPU), and open an RMA with AMD citing the bad-page count; `amd-smi bad-pages` lists them"
                ),
            ));
        } else if u64::from(bp.reserved) * 10 >= u64::from(threshold) * 9 {
            out.push(finding(
                "amd.bad_pages.near_threshold",
                Severity::Warning,
                Some(g),
                format!(
                    "{who} has retired {} of its {threshold} allowed VRAM pages (90 % or more): a few more and it is due for RMA.",
                    bp.reserved
                ),
                vec![counts.clone(), source.clone()],
                ActionKind::Monitor,
                format!("plan GPU {i}'s replacement; watch its uncorrectable and deferred UMC counts"),
            ));
        }
    }
    if bp.pending > 0 {
        out.push(finding(
            "amd.bad_pages.pending",
            Severity::Warning,
            Some(g),
            format!(
                "{who} has {} bad VRAM page{} pending retirement: until retired they can still be handed to work.",
                bp.pending,
                if bp.pending == 1 { "" } else { "s" }
            ),
            vec![counts.clone()],
            ActionKind::ResetGpuWhenDrained,
            format!(
                "when GPU {i} is drained, reset it so the driver reserves them: {}",
                super::gpus::reset_step(g, amd)
            ),
        ));
    }
    if bp.unreservable > 0 {
        out.push(finding(
            "amd.bad_pages.unreservable",
            Severity::Warning,
            Some(g),
            format!(
                "{who} has {} bad VRAM page{} the driver could not reserve: memory known bad may still be in use.",
                bp.unreservable,
                if bp.unreservable == 1 { "" } else { "s" }
            ),
            vec![counts],
            ActionKind::ResetGpuWhenDrained,
            format!(
                "drain GPU {i} and reset it ({}), then check the list again; if pages stay unreservable, take it out of service",
                super::gpus::reset_step(g, amd)
            ),
        ));
    }
    out
}
