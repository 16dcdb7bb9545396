//! RAS counters per block (`ras/aca_<block>` on MI300-class GPUs, `ras/<block>_err_count` before) and
//! `ras/event_state` (fatal errors, poison created and consumed) [K1].
//!
//! - Uncorrectable (`ue`): the driver resets the GPU (a mode-1 reset of the hive) and, for UMC, retires the
//!   page; AMD's exporter marks the GPU unhealthy on any (`gpuagent_health.go`, threshold 0) [P4]. Critical.
//! - Deferred (`de`): poisoned data the hardware could not correct but did not yet consume; the page is
//!   retired [K1]. A warning: it becomes critical when consumed (`event_state`), which is its own finding.
//! - Correctable (`ce`): corrected in place. The reference gives no AMD threshold; this project warns at a
//!   sustained rate ([`CE_WARN_PER_DAY`]) and records fewer as history.

use crate::analysis::{finding, gpu_label};
use crate::facts::{AmdGpuFacts, AmdRasBlockFacts, GpuFacts};
use crate::finding::{ActionKind, Finding, Severity};

/// Correctable errors per day, averaged since boot (the driver's count starts at load), from which they
/// are a warning: this project's line, a few an hour, not AMD's (none is published).
pub const CE_WARN_PER_DAY: f64 = 100.0;

/// What a block is, for answers.
fn block_words(block: &str) -> &'static str {
    match block {
        "umc" => "HBM memory (UMC)",
        "gfx" => "compute engine (GFX)",
        "sdma" => "DMA engine (SDMA)",
        "mmhub" | "athub" => "memory hub",
        "pcie_bif" => "PCIe interface (BIF)",
        "hdp" => "host data path (HDP)",
        "xgmi_wafl" => "XGMI/WAFL links",
        "df" => "data fabric",
        "mp0" | "mp1" | "smn" | "mca" => "management processor",
        "vcn" | "jpeg" => "media engine",
        _ => "hardware block",
    }
}

pub fn judge(g: &GpuFacts, amd: &AmdGpuFacts, uptime_s: Option<f64>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(ras) = amd.ras.ok() else {
        return out;
    };
    let who = gpu_label(g);
    let reset = super::gpus::reset_step(g, amd);
    for b in &ras.blocks {
        let what = block_words(&b.block);
        let file = file_of(b);
        if let Some(ue) = b.ue.filter(|&n| n > 0) {
            out.push(finding(
                &format!("amd.ras_ue.{}", b.block),
                Severity::Critical,
                Some(g),
                format!(
                    "{who} counted {ue} uncorrectable error{} in its {what}: the driver resets the GPU on each, and the work on it died or read bad data.",
                    plural(ue)
                ),
                vec![format!("{file}: ue {ue}")],
                ActionKind::DrainAndResetGpu,
                format!(
                    "drain GPU {}'s work, then reset it: {reset}; if uncorrectable errors come back, open an RMA with AMD",
                    g.index
                ),
            ));
        }
        if let Some(de) = b.de.filter(|&n| n > 0) {
            out.push(finding(
                &format!("amd.ras_de.{}", b.block),
                Severity::Warning,
                Some(g),
                format!(
                    "{who} counted {de} deferred (poisoned) error{} in its {what}: data the hardware could not correct, not yet consumed; the driver retires such pages.",
                    plural(de)
                ),
                vec![format!("{file}: de {de}")],
                ActionKind::Monitor,
                "watch the GPU's retired pages against the bad-page threshold and the event_state poison counts".into(),
            ));
        }
        if let Some(ce) = b.ce.filter(|&n| n > 0) {
            let per_day = uptime_s
                .filter(|&s| s > 0.0)
                .map(|s| ce as f64 * 86400.0 / s);
            let warn = per_day.is_some_and(|r| r >= CE_WARN_PER_DAY);
            let mut ev = vec![format!("{file}: ce {ce}")];
            if let Some(r) = per_day {
                ev.push(format!(
                    "{r:.0} per day since boot (warning from {CE_WARN_PER_DAY:.0})"
                ));
            }
            out.push(finding(
                &format!("amd.ras_ce.{}", b.block),
                if warn { Severity::Warning } else { Severity::Info },
                Some(g),
                format!(
                    "{who} corrected {ce} error{} in its {what}{}.",
                    plural(ce),
                    if warn {
                        ": a high rate, often ahead of uncorrectable errors"
                    } else {
                        ", at a low rate"
                    }
                ),
                ev,
                if warn { ActionKind::Monitor } else { ActionKind::None },
                if warn {
                    "watch the count and the retired pages; plan to take the GPU out of service if the rate keeps up or uncorrectable errors appear".into()
                } else {
                    "nothing to do".into()
                },
            ));
        }
    }
    if let Some(ev) = ras.event_state {
        let state = format!(
            "ras/event_state: fatal {}, poison creation {}, poison consumption {} (seqno {})",
            ev.fatal, ev.poison_creation, ev.poison_consumption, ev.seqno
        );
        if ev.fatal > 0 {
            out.push(finding(
                "amd.fatal",
                Severity::Critical,
                Some(g),
                format!(
                    "{who} raised {} fatal hardware error event{}: the driver resets the whole XGMI hive on one, and every job on the hive died.",
                    ev.fatal,
                    plural(ev.fatal)
                ),
                vec![state.clone()],
                ActionKind::DrainAndResetGpu,
                format!(
                    "read the kernel log for the block at fault (analyze_xid_errors); if the GPU did not come back, reboot the node; otherwise drain and {reset}"
                ),
            ));
        }
        if ev.poison_consumption > 0 {
            out.push(finding(
                "amd.poison_consumed",
                Severity::Critical,
                Some(g),
                format!(
                    "{who}: a kernel read poisoned data ({} time{}): the driver killed the work and reset the GPU.",
                    ev.poison_consumption,
                    plural(ev.poison_consumption)
                ),
                vec![state.clone()],
                ActionKind::DrainAndResetGpu,
                format!(
                    "restart the job from a checkpoint on other GPUs; drain GPU {} and {reset}; the poisoned page is retired",
                    g.index
                ),
            ));
        }
        if ev.poison_creation > 0 {
            out.push(finding(
                "amd.poison_created",
                Severity::Warning,
                Some(g),
                format!(
                    "{who} marked data as poisoned {} time{} (an error it could not correct).",
                    ev.poison_creation,
                    plural(ev.poison_creation)
                ),
                vec![state],
                ActionKind::Monitor,
                "watch the poison consumption count and the retired pages".into(),
            ));
        }
    }
    out
}

fn file_of(b: &AmdRasBlockFacts) -> String {
    if b.layout == "legacy" {
        format!("ras/{}_err_count", b.block)
    } else {
        format!("ras/aca_{}", b.block)
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
