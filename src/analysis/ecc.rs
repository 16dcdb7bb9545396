//! `ecc`: ECC mode and counters, page retirement (pre-Ampere) and row remapping (Ampere+), and what they
//! require: a pending remap means "reset when drained", a remap failure means the RMA path, retirement
//! limits follow DCGM. Volatile counters come with the persistence-mode caveat.

use serde::{Deserialize, Serialize};

use crate::facts::{FieldError, FieldErrorKind, GpuFacts, NodeFacts, Reading, RemappedRowsFacts};
use crate::finding::{ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;

use super::vendor::EccEntry;
use super::{GpuRef, finding, gpu_label, show};

pub use super::ecc_entry::{EccCounts, GpuEcc};
pub use super::nvidia::PERSISTENCE_CAVEAT;

/// DCGM: retired pages (single + double bit) at or above this is RETIRED_PAGES_LIMIT.
const RETIRED_PAGES_LIMIT: u32 = 63;
/// DCGM: more than this many DBE retirements (and still rising) is RETIRED_PAGES_DBE_LIMIT.
const RETIRED_DBE_LIMIT: u32 = 15;
/// NVIDIA: at most 512 uncorrectable remaps; DCGM's UNCORRECTABLE_ROW_REMAP_LIMIT.
const REMAP_UNCORRECTABLE_LIMIT: u32 = 512;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EccReport {
    pub persistence_caveat: String,
    pub gpus: Vec<GpuEcc>,
    pub findings: Vec<Finding>,
}

impl Judged for EccReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

fn persistenced_running(facts: &NodeFacts) -> Option<bool> {
    facts
        .services
        .iter()
        .find(|s| s.name == "nvidia-persistenced")
        .and_then(|s| s.running.get())
}

/// Whether volatile counters span the driver's whole life since boot.
fn volatile_reliable(g: &GpuFacts, persistenced: Option<bool>) -> Reading<bool> {
    match (g.persistence_mode.get(), persistenced) {
        (Some(true), _) | (_, Some(true)) => Reading::Ok(true),
        (Some(false), _) => Reading::Ok(false),
        (None, _) => g.persistence_mode.clone(),
    }
}

/// The remapped-rows reading, with the reason NVML refuses it under MIG spelled out.
fn remapped_rows(g: &GpuFacts) -> Reading<RemappedRowsFacts> {
    let mig_on = g.mig_mode.ok().is_some_and(|m| m.current);
    match &g.ecc.remapped_rows {
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported && mig_on => {
            Reading::Err(FieldError::with_message(
                FieldErrorKind::NotSupported,
                "NVML does not report remapped rows while MIG is enabled with active instances; pending remaps and remap failures are invisible until MIG is disabled (aggregate ECC counters and Xid 63/64 in the kernel log still apply)",
            ))
        }
        other => other.clone(),
    }
}

/// The caveat for the node's vendors, each in its words (an NVIDIA one where no GPU answered: the
/// persistence note is what an empty NVML node's counters need).
fn counter_caveat(facts: &NodeFacts) -> String {
    let mut parts: Vec<&str> = present(facts).map(|v| v.ecc_caveat()).collect();
    if facts.gpus.is_empty() {
        parts.push(PERSISTENCE_CAVEAT);
    }
    parts.join(" ")
}

/// The vendors with a GPU on the node, in the vendors' table's order.
fn present(facts: &NodeFacts) -> impl Iterator<Item = &'static dyn super::vendor::VendorAnalysis> {
    super::vendors::all().filter(|v| facts.gpus.iter().any(|g| g.vendor == v.vendor()))
}

pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> EccReport {
    let persistenced = persistenced_running(facts);
    let mut report = EccReport {
        persistence_caveat: counter_caveat(facts),
        ..Default::default()
    };
    let mut entries = Vec::new();
    for v in present(facts) {
        let gpus: Vec<&GpuFacts> = facts
            .gpus
            .iter()
            .filter(|g| g.vendor == v.vendor())
            .collect();
        let ve = v.ecc(facts, opts, &gpus);
        for (g, e) in gpus.iter().zip(ve.entries) {
            match e {
                EccEntry::NvmlShaped { line } => {
                    let (entry, mut f) = nvml_shaped(g, persistenced, line);
                    entries.push(entry);
                    report.findings.append(&mut f);
                }
                EccEntry::Own(entry) => entries.push(*entry),
            }
        }
        report.findings.extend(ve.findings);
    }
    // In the node's GPU order, whoever made them.
    let at = |e: &GpuEcc| facts.gpus.iter().position(|g| g.index == e.gpu.index);
    entries.sort_by_key(at);
    report.gpus = entries;
    report
}

/// The ECC entry of a GPU read through NVML's fields (NVIDIA's; AMD's fill the same fields, with its own
/// memory line), and its findings.
pub fn nvml_shaped(
    g: &GpuFacts,
    persistenced: Option<bool>,
    line: Option<String>,
) -> (GpuEcc, Vec<Finding>) {
    let f = judge(g, persistenced);
    let e = &g.ecc;
    let entry = GpuEcc {
        gpu: GpuRef::of(g),
        mode: e.mode.clone(),
        volatile: EccCounts {
            corrected: e.volatile_corrected.clone(),
            uncorrected: e.volatile_uncorrected.clone(),
        },
        aggregate: EccCounts {
            corrected: e.aggregate_corrected.clone(),
            uncorrected: e.aggregate_uncorrected.clone(),
        },
        by_location: e.by_location.clone(),
        retired_pages: e.retired_pages.clone(),
        remapped_rows: remapped_rows(g),
        row_remapper_histogram: e.row_remapper_histogram.clone(),
        sram_threshold_exceeded: e.sram_threshold_exceeded.clone(),
        volatile_counters_reliable: volatile_reliable(g, persistenced),
        verdict: line.unwrap_or_else(|| verdict(g)),
    };
    (entry, f)
}

/// The one-line memory verdict of a GPU.
pub fn verdict(g: &GpuFacts) -> String {
    let e = &g.ecc;
    let rows = e.remapped_rows.ok();
    let vu = e.volatile_uncorrected.get().unwrap_or(0);
    if let Some(err) = e.mode.err()
        && err.error != FieldErrorKind::NotSupported
    {
        return format!(
            "Unknown: ECC state unreadable ({}).",
            super::error_name(err.error)
        );
    }
    if rows.is_some_and(|r| r.failure) {
        return "Row-remapping failure: the GPU cannot repair further memory errors; take the RMA path (validate with NVIDIA field diagnostics).".into();
    }
    if e.sram_threshold_exceeded.get() == Some(true) {
        return "SRAM uncorrectable-error threshold exceeded: take the RMA path (run field diagnostics).".into();
    }
    if rows.is_some_and(|r| r.uncorrectable >= REMAP_UNCORRECTABLE_LIMIT) {
        return "Uncorrectable row remaps at NVIDIA's 512 limit: take the RMA path.".into();
    }
    if let Some(p) = e.retired_pages.ok()
        && p.single_bit + p.double_bit >= RETIRED_PAGES_LIMIT
    {
        return "Page retirement limit reached: take the RMA path.".into();
    }
    let pending = rows.is_some_and(|r| r.pending);
    if vu > 0 && pending {
        return format!(
            "{vu} uncorrectable memory error(s) since the driver loaded and a row remap pending: drain the GPU, then reset it to apply the remap."
        );
    }
    if vu > 0 {
        return format!(
            "{vu} uncorrectable memory error(s) since the driver loaded: drain the GPU and reset it."
        );
    }
    if pending {
        return "Row remap pending: the GPU stays usable (the bad row is contained), reset it when drained to apply the remap and regain capacity.".into();
    }
    if e.retired_pages.ok().is_some_and(|p| p.pending) {
        return "Page retirement pending: reset the GPU (or reboot) when drained to retire the pages.".into();
    }
    if e.mode.ok().is_some_and(|m| !m.current) {
        return "ECC is disabled: memory errors go undetected.".into();
    }
    if e.mode.err().is_some() {
        return "ECC not supported on this GPU.".into();
    }
    let remap = match &e.remapped_rows {
        Reading::Ok(_) => "no row remap pending".to_string(),
        Reading::Err(err) if err.error == FieldErrorKind::NotSupported => {
            if g.mig_mode.ok().is_some_and(|m| m.current) {
                "row-remap state cannot be read while MIG instances are active".to_string()
            } else if e.retired_pages.is_ok() {
                "no page retirement pending".to_string()
            } else {
                "no remap or retirement state on this GPU".to_string()
            }
        }
        Reading::Err(err) => format!(
            "row-remap state unreadable ({})",
            super::error_name(err.error)
        ),
    };
    format!("No uncorrectable errors since the driver loaded; {remap}.")
}

pub fn judge(g: &GpuFacts, persistenced: Option<bool>) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    let e = &g.ecc;
    let i = g.index;
    let rows = e.remapped_rows.ok();
    let rows_ev = |r: &RemappedRowsFacts| {
        format!(
            "remapped_rows = correctable {}, uncorrectable {}, pending {}, failure {}",
            r.correctable, r.uncorrectable, r.pending, r.failure
        )
    };
    let hist_ev = e.row_remapper_histogram.ok().map(|h| {
        format!(
            "row_remapper_histogram = max {}, high {}, partial {}, low {}, none {}",
            h.max, h.high, h.partial, h.low, h.none
        )
    });
    let counts_ev = format!(
        "ecc = volatile corrected {} uncorrected {}, aggregate corrected {} uncorrected {}",
        show(&e.volatile_corrected),
        show(&e.volatile_uncorrected),
        show(&e.aggregate_corrected),
        show(&e.aggregate_uncorrected)
    );

    if let Some(m) = e.mode.ok() {
        if !m.current {
            out.push(finding(
                "ecc.disabled",
                Severity::Warning,
                Some(g),
                format!("{who} runs with ECC disabled: memory errors are neither corrected nor reported."),
                vec![format!("ecc_mode = current {}, pending {}", m.current, m.pending)],
                ActionKind::ResetGpuWhenDrained,
                format!("enable it (nvidia-smi -e 1 -i {i}); it takes effect after a GPU reset"),
            ));
        }
        if m.current != m.pending {
            out.push(finding(
                "ecc.mode_pending",
                Severity::Info,
                Some(g),
                format!(
                    "{who} has an ECC mode change pending (current {}, pending {}).",
                    m.current, m.pending
                ),
                vec![format!(
                    "ecc_mode = current {}, pending {}",
                    m.current, m.pending
                )],
                ActionKind::ResetGpuWhenDrained,
                format!("reset the GPU when drained (nvidia-smi -r -i {i}) to apply it"),
            ));
        }
    }

    if let Some(r) = rows
        && r.failure
    {
        let mut ev = vec![rows_ev(r), counts_ev.clone()];
        ev.extend(hist_ev.clone());
        out.push(finding(
            "ecc.remap_failure",
            Severity::Critical,
            Some(g),
            format!("{who} failed to remap a memory row: a bank ran out of spare rows or a remapped row failed again. The GPU can no longer repair memory errors; this is NVIDIA's RMA criterion."),
            ev,
            ActionKind::Rma,
            format!("drain the node and take GPU {i} out of service, run NVIDIA field diagnostics (fieldiag) to validate the failure, then open an RMA with the serial number"),
        ));
    } else if let Some(r) = rows
        && r.uncorrectable >= REMAP_UNCORRECTABLE_LIMIT
    {
        out.push(finding(
            "ecc.remap_uncorrectable_limit",
            Severity::Critical,
            Some(g),
            format!(
                "{who} has {} uncorrectable row remaps, NVIDIA's limit: the next one fails.",
                r.uncorrectable
            ),
            vec![rows_ev(r)],
            ActionKind::Rma,
            "take the GPU out of service, validate with field diagnostics and open an RMA".into(),
        ));
    } else if let (Some(r), Some(h)) = (rows, e.row_remapper_histogram.ok())
        && h.none > 0
    {
        out.push(finding(
            "ecc.remap_bank_exhausted",
            Severity::Warning,
            Some(g),
            format!("{who} has {} memory bank(s) with no spare rows left: the next uncorrectable error in such a bank fails remapping (RMA).", h.none),
            vec![rows_ev(r), hist_ev.clone().unwrap_or_default()],
            ActionKind::Monitor,
            "watch for Xid 64 / remap failure; plan a replacement".into(),
        ));
    }

    if e.sram_threshold_exceeded.get() == Some(true) {
        out.push(finding(
            "ecc.sram_threshold_exceeded",
            Severity::Critical,
            Some(g),
            format!(
                "{who} exceeded its SRAM uncorrectable-error threshold: NVIDIA's RMA flow applies."
            ),
            vec!["sram_threshold_exceeded = true".into(), counts_ev.clone()],
            ActionKind::Rma,
            "run NVIDIA field diagnostics, then open an RMA".into(),
        ));
    }

    let vu = e.volatile_uncorrected.get().unwrap_or(0);
    let pending = rows.is_some_and(|r| r.pending);
    if vu > 0 {
        let mut ev = vec![counts_ev.clone()];
        ev.extend(
            e.by_location
                .iter()
                .filter(|l| l.volatile_uncorrected.get().is_some_and(|v| v > 0))
                .map(|l| {
                    format!(
                        "ecc[{}].volatile_uncorrected = {}",
                        l.location,
                        show(&l.volatile_uncorrected)
                    )
                }),
        );
        ev.extend(rows.map(rows_ev));
        out.push(finding(
            "ecc.volatile_uncorrected",
            Severity::Critical,
            Some(g),
            format!("{who} had {vu} uncorrectable ECC error(s) since the driver loaded: work on it may have been corrupted or killed, and affected memory stays offlined until a reset."),
            ev,
            ActionKind::DrainAndResetGpu,
            format!(
                "stop scheduling work on GPU {i}, let running jobs finish (or stop them), then reset it (nvidia-smi -r -i {i}){}",
                if pending { " to apply the pending row remap" } else { "" }
            ),
        ));
    } else if let Some(au) = e.aggregate_uncorrected.get()
        && au > 0
    {
        out.push(finding(
            "ecc.aggregate_uncorrected",
            Severity::Info,
            Some(g),
            format!("{who} has {au} uncorrectable ECC error(s) in its lifetime, none since the driver loaded."),
            vec![counts_ev.clone()],
            ActionKind::Monitor,
            "history only; watch for new uncorrectable errors".into(),
        ));
    }
    if pending
        && vu == 0
        && let Some(r) = rows
    {
        let mut ev = vec![rows_ev(r), counts_ev.clone()];
        ev.extend(hist_ev.clone());
        out.push(finding(
            "ecc.remap_pending",
            Severity::Warning,
            Some(g),
            format!("{who} has a row remap pending: the GPU stays usable (the bad row is contained and its pages are blacklisted), but the remap only takes effect at the next GPU reset."),
            ev,
            ActionKind::ResetGpuWhenDrained,
            format!(
                "cordon the node or let GPU {i}'s jobs finish, then reset it when drained (nvidia-smi -r -i {i}){}",
                if g.architecture.ok().map(String::as_str) == Some("Ampere") {
                    "; on A100 NVSwitch systems nvidia-fabricmanager must be running for the reset"
                } else {
                    ""
                }
            ),
        ));
    }

    if let Some(p) = e.retired_pages.ok() {
        let ev = format!(
            "retired_pages = single_bit {}, double_bit {}, pending {}",
            p.single_bit, p.double_bit, p.pending
        );
        if p.single_bit + p.double_bit >= RETIRED_PAGES_LIMIT {
            out.push(finding(
                "ecc.retired_pages_limit",
                Severity::Critical,
                Some(g),
                format!("{who} retired {} pages, at DCGM's limit of {RETIRED_PAGES_LIMIT}: it cannot retire more.", p.single_bit + p.double_bit),
                vec![ev.clone()],
                ActionKind::Rma,
                "take the GPU out of service and open an RMA".into(),
            ));
        } else if p.double_bit > RETIRED_DBE_LIMIT {
            out.push(finding(
                "ecc.retired_pages_dbe",
                Severity::Warning,
                Some(g),
                format!("{who} retired {} pages for double-bit errors (DCGM's limit is {RETIRED_DBE_LIMIT} if still rising weekly).", p.double_bit),
                vec![ev.clone()],
                ActionKind::Monitor,
                "compare with last week's count; if still rising, plan an RMA".into(),
            ));
        }
        if p.pending {
            out.push(finding(
                "ecc.retired_pages_pending",
                Severity::Warning,
                Some(g),
                format!("{who} has page retirements pending: they take effect at the next GPU reset or reboot."),
                vec![ev],
                ActionKind::ResetGpuWhenDrained,
                format!("reset GPU {i} (or reboot) when drained"),
            ));
        }
    }

    if volatile_reliable(g, persistenced).get() == Some(false) {
        out.push(finding(
            "ecc.persistence_off",
            Severity::Info,
            Some(g),
            format!("{who} runs without persistence mode and nvidia-persistenced is not running: volatile ECC counters only cover the time since the current GPU client started."),
            vec![
                "persistence_mode = false".into(),
                format!(
                    "nvidia-persistenced running = {}",
                    persistenced.map_or("unknown".to_string(), |r| r.to_string())
                ),
            ],
            ActionKind::None,
            "enable nvidia-persistenced (or nvidia-smi -pm 1) so counters and driver state survive between jobs".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{
        EccFacts, EccModeFacts, MigModeFacts, RetiredPagesFacts, RowRemapHistogram, ServiceFacts,
    };

    fn gpu(rows: Reading<RemappedRowsFacts>, vu: u64) -> GpuFacts {
        GpuFacts {
            index: 2,
            pci_bus_id: Reading::Ok("0000:47:00.0".into()),
            architecture: Reading::Ok("Ampere".into()),
            persistence_mode: Reading::Ok(true),
            mig_mode: Reading::Ok(MigModeFacts {
                current: false,
                pending: false,
            }),
            ecc: EccFacts {
                mode: Reading::Ok(EccModeFacts {
                    current: true,
                    pending: true,
                }),
                volatile_corrected: Reading::Ok(0),
                volatile_uncorrected: Reading::Ok(vu),
                aggregate_corrected: Reading::Ok(0),
                aggregate_uncorrected: Reading::Ok(vu),
                remapped_rows: rows,
                retired_pages: Reading::not_supported(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn rows(unc: u32, pending: bool, failure: bool) -> Reading<RemappedRowsFacts> {
        Reading::Ok(RemappedRowsFacts {
            correctable: 0,
            uncorrectable: unc,
            pending,
            failure,
        })
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn pending_remap_says_reset_when_drained() {
        let g = gpu(rows(0, true, false), 0);
        let f = judge(&g, Some(true));
        assert_eq!(codes(&f), ["ecc.remap_pending"]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].action.kind, ActionKind::ResetGpuWhenDrained);
        assert!(
            f[0].action.detail.contains("fabricmanager"),
            "Ampere reset needs FM"
        );
        assert!(verdict(&g).contains("reset it when drained"));
    }

    #[test]
    fn remap_failure_is_the_rma_path() {
        let g = gpu(rows(8, false, true), 1);
        let f = judge(&g, Some(true));
        assert_eq!(codes(&f), ["ecc.remap_failure", "ecc.volatile_uncorrected"]);
        assert_eq!(f[0].action.kind, ActionKind::Rma);
        assert!(verdict(&g).contains("RMA"));
    }

    #[test]
    fn dbe_with_pending_remap_is_drain_and_reset() {
        let g = gpu(rows(2, true, false), 2);
        let f = judge(&g, Some(true));
        assert_eq!(codes(&f), ["ecc.volatile_uncorrected"]);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].action.kind, ActionKind::DrainAndResetGpu);
        assert!(f[0].action.detail.contains("pending row remap"));
    }

    #[test]
    fn remap_limit_and_bank_exhaustion() {
        let g = gpu(rows(512, false, false), 0);
        assert_eq!(codes(&judge(&g, None)), ["ecc.remap_uncorrectable_limit"]);
        let mut g = gpu(rows(3, false, false), 0);
        g.ecc.row_remapper_histogram = Reading::Ok(RowRemapHistogram {
            max: 630,
            high: 8,
            partial: 1,
            low: 0,
            none: 1,
        });
        assert!(codes(&judge(&g, None)).contains(&"ecc.remap_bank_exhausted"));
    }

    #[test]
    fn mig_active_remap_query_unsupported_is_explained_not_judged() {
        let mut g = gpu(Reading::not_supported(), 0);
        g.mig_mode = Reading::Ok(MigModeFacts {
            current: true,
            pending: true,
        });
        assert!(judge(&g, None).is_empty());
        let facts = NodeFacts {
            gpus: vec![g],
            ..Default::default()
        };
        let r = analyze(&facts, &AnalysisOptions::default());
        let err = r.gpus[0].remapped_rows.err().unwrap();
        assert_eq!(err.error, FieldErrorKind::NotSupported);
        assert!(err.message.as_deref().unwrap().contains("MIG"));
    }

    #[test]
    fn retired_pages_rules_pre_ampere() {
        let mut g = gpu(Reading::not_supported(), 0);
        g.ecc.retired_pages = Reading::Ok(RetiredPagesFacts {
            single_bit: 40,
            double_bit: 23,
            pending: true,
        });
        let f = judge(&g, Some(true));
        assert_eq!(
            codes(&f),
            ["ecc.retired_pages_limit", "ecc.retired_pages_pending"]
        );
        g.ecc.retired_pages = Reading::Ok(RetiredPagesFacts {
            single_bit: 0,
            double_bit: 16,
            pending: false,
        });
        assert_eq!(codes(&judge(&g, Some(true))), ["ecc.retired_pages_dbe"]);
    }

    #[test]
    fn persistence_caveat_and_disabled_ecc() {
        let mut g = gpu(rows(0, false, false), 0);
        g.persistence_mode = Reading::Ok(false);
        assert_eq!(codes(&judge(&g, Some(false))), ["ecc.persistence_off"]);
        assert!(judge(&g, Some(true)).is_empty(), "persistenced covers it");
        let facts = NodeFacts {
            gpus: vec![g.clone()],
            services: vec![ServiceFacts {
                name: "nvidia-persistenced".into(),
                running: Reading::Ok(false),
            }],
            ..Default::default()
        };
        assert_eq!(
            analyze(&facts, &AnalysisOptions::default()).gpus[0].volatile_counters_reliable,
            Reading::Ok(false)
        );
        g.ecc.mode = Reading::Ok(EccModeFacts {
            current: false,
            pending: true,
        });
        assert_eq!(
            codes(&judge(&g, Some(true))),
            ["ecc.disabled", "ecc.mode_pending"]
        );
    }

    #[test]
    fn lost_gpu_is_unknown_not_healthy() {
        let mut g = gpu(Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost)), 0);
        g.ecc.mode = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        g.ecc.volatile_uncorrected = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        g.ecc.aggregate_uncorrected = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        g.persistence_mode = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        assert!(judge(&g, None).is_empty());
        assert_eq!(verdict(&g), "Unknown: ECC state unreadable (gpu_is_lost).");
    }
}
