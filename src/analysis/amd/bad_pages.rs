//! Retired VRAM pages (`ras/gpu_vram_bad_pages`: `R` reserved, `P` pending, `F` could not be reserved)
//! against the driver's bad-page threshold. The threshold is debugfs's where the probe could read it,
//! else the running kernel's rule worked out in [`threshold`] (it changed between kernel eras and is
//! keyed on the MP0 IP version, not the GFX version):
//! - the default (`amdgpu.bad_page_threshold=-1`) and `-2` warn when reached and keep the GPU running
//!   (up to Linux 6.14 `-2` also retired the GPU);
//! - a user threshold (`> 0`) marks the GPU RMA (EEPROM header BAD) when reached and it fails init;
//! - `0` turns retirement off.
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

pub mod threshold;

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

/// The threshold of this GPU in pages and, in words, its basis and what reaching it does; `None` when
/// retirement is off or no threshold can be known.
pub fn rma_threshold(g: &GpuFacts, amd: &AmdGpuFacts, facts: &NodeFacts) -> Option<(u32, String)> {
    threshold_of(g, amd, amd.bad_pages.ok()?, facts)
}

pub(super) fn threshold_of(
    g: &GpuFacts,
    amd: &AmdGpuFacts,
    bp: &AmdBadPagesFacts,
    facts: &NodeFacts,
) -> Option<(u32, String)> {
    threshold_and_other(g, amd, bp, facts).map(|(t, words, _)| (t, words))
}

/// [`threshold_of`] with the other era's count where the era was assumed (see
/// `threshold::Threshold::other_era`); never where debugfs gave the threshold.
fn threshold_and_other(
    g: &GpuFacts,
    amd: &AmdGpuFacts,
    bp: &AmdBadPagesFacts,
    facts: &NodeFacts,
) -> Option<(u32, String, Option<u32>)> {
    let driver = facts.amd_driver.as_ref();
    let param = driver.and_then(|d| d.bad_page_threshold_param.get());
    let mode = match param {
        Some(p) if p > 0 => format!(
            "user threshold (amdgpu.bad_page_threshold={p}): the GPU is retired (RMA) when it is reached"
        ),
        Some(-1) | None => "default threshold (amdgpu.bad_page_threshold=-1): the driver warns and keeps the GPU running".to_string(),
        Some(p) => format!("amdgpu.bad_page_threshold={p}"),
    };
    // What the driver shows beats any model of it.
    if let (Some(t), Some("debugfs")) = (bp.threshold, bp.threshold_source.as_deref()) {
        return Some((
            t,
            format!("threshold {t} pages from debugfs ras/bad_page_cnt_threshold; {mode}"),
            None,
        ));
    }
    let inputs = threshold::Inputs {
        param,
        vram_bytes: g.memory.ok().map(|m| m.total_bytes),
        kernel_release: facts.host.kernel_release.ok().map(String::as_str),
        out_of_tree: driver.and_then(|d| d.version.ok()).map(String::as_str),
        mp0: amd.mp0_version.ok().and_then(|v| threshold::ip(v)),
        umc: amd.umc_version.ok().and_then(|v| threshold::ip(v)),
        eeprom_max_records: bp.eeprom_max_records,
        gfx_target_version: amd
            .kfd_nodes
            .ok()
            .and_then(|k| k.iter().find_map(|k| k.gfx_target_version)),
    };
    let t = threshold::compute(&inputs)?;
    let p = param.unwrap_or(-1);
    let mode = match (p, t.rma) {
        (p, _) if p > 0 => mode,
        (-1, false) => mode,
        (p, true) => format!(
            "amdgpu.bad_page_threshold={p}: this kernel retires the GPU (RMA) when it is reached"
        ),
        (p, false) => {
            format!("amdgpu.bad_page_threshold={p}: the driver warns and keeps the GPU running")
        }
    };
    (t.pages > 0).then(|| {
        (
            t.pages,
            format!("threshold {} pages: {}; {mode}", t.pages, t.basis),
            t.other_era,
        )
    })
}

/// The threshold the driver printed for this GPU in the kernel log (its bad-page threshold lines), if any.
fn logged_threshold(g: &GpuFacts, facts: &NodeFacts) -> Option<u64> {
    use crate::kernel_log::contract::DecodedDetail;
    let bus = crate::analysis::canonical_bus_id(&g.pci_bus_id)
        .ok()
        .cloned()?;
    let r = crate::kernel_log::report::analyze(facts, &crate::options::AnalysisOptions::default());
    r.events
        .iter()
        .zip(&r.event_details)
        .filter(|(e, _)| e.pci_bus_id.as_deref() == Some(bus.as_str()))
        .filter_map(|(_, d)| match &d.decoded {
            Some(DecodedDetail::Amdgpu {
                event, threshold, ..
            }) if event.starts_with("bad_page_threshold") => *threshold,
            _ => None,
        })
        .next_back()
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
    let limit = threshold_and_other(g, amd, &bp, facts);
    if let Some((threshold, source, other)) = &limit
        && *threshold > 0
    {
        let threshold = *threshold;
        // Past the assumed era's count only: the driver's own line (`RAS records:%u exceed
        // threshold:%d`, amdgpu_ras_eeprom.c), where the log has it, settles which count applies.
        let unsettled =
            other
                .filter(|o| bp.reserved < *o)
                .and_then(|o| match logged_threshold(g, facts) {
                    Some(l) if l == u64::from(threshold) => None,
                    Some(l) if l == u64::from(o) => Some(None),
                    _ => Some(Some(o)),
                });
        if bp.reserved >= threshold && unsettled == Some(None) {
            // The driver applies the other era's count, which the GPU has not reached.
        } else if bp.reserved >= threshold
            && let Some(Some(other)) = unsettled
        {
            // Past the count of the assumed era's rule only: an RMA is not called on an assumption.
            out.push(finding(
                "amd.bad_pages.threshold_assumed",
                Severity::Warning,
                Some(g),
                format!(
                    "{who} has retired {} VRAM pages: past the threshold of {threshold} that Linux 6.15's rule gives, short of the {other} that the older rule gives; which one this driver applies is not known here, so the GPU is not called due for RMA on that alone.",
                    bp.reserved
                ),
                vec![counts.clone(), source.clone()],
                ActionKind::Investigate,
                format!(
                    "read the driver's own threshold on the node (debugfs `/sys/kernel/debug/dri/<minor>/ras/bad_page_cnt_threshold`, or `amd-smi bad-pages`) to know whether GPU {i} is due for RMA; mount debugfs for the probe to read it next time"
                ),
            ));
        } else if bp.reserved >= threshold {
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
