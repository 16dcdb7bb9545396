//! Idle first: of the requested GPUs, which the run may load and which it must leave alone.
//!
//! DCGM does not refuse a busy GPU: level 1 only warns on graphics processes, and compute load shows up as
//! stress or bandwidth failures (NVIDIA/DCGM `nvvs/src/Software.cpp` v4.6.0; ../shared/reference/dcgm.md
//! section 5). Who holds a GPU is the caller's to establish, with the same rules as the reset preflight
//! (`operator::reset`): a pod the kubelet assigned it to through the device plugin or a DRA claim (also a
//! claim the kubelet does not name; `operator::holders`), and any process NVML lists on it. A GPU whose
//! holders no source can vouch for (the kubelet unreachable or not reporting DRA claims with nothing else
//! naming them, NVML unable to list processes) is not tested either: a diagnostic
//! under a job breaks the job, and the job's load would read as a GPU failure.

use serde::{Deserialize, Serialize};

use super::request::GpuSel;
use crate::facts::{GpuFacts, GpuVendor, NodeFacts, Reading};
use crate::operator::holders::{self, Verdict};
use crate::operator::reset::check_processes;
use crate::operator::scan::{self, Said};

/// A requested GPU the run leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Skipped {
    /// As requested (index or UUID).
    pub requested: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// `held` (a pod, a claim or a process holds it), `unverified` (its holders could not be read),
    /// `unknown_gpu` (the node has no such GPU), `unreadable` (NVML cannot open it), `other_vendor` (an
    /// AMD GPU, which DCGM does not test).
    pub why: String,
    /// What holds it, or what could not be read, in words.
    pub detail: String,
    /// The device's vendor, where that is why it is skipped (`other_vendor`).
    #[serde(skip)]
    pub vendor: Option<GpuVendor>,
}

/// The requested GPUs split.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Idle GPUs to test (NVML indices, in the order requested).
    pub to_test: Vec<u32>,
    pub skipped: Vec<Skipped>,
    /// Whose diagnostic runs (DCGM: NVIDIA's; RVS: AMD's).
    pub runner: GpuVendor,
}

impl Selection {
    /// Why nothing runs where no requested GPU can be tested; None: some GPU will be.
    pub fn nothing_to_test(&self) -> Option<String> {
        if !self.to_test.is_empty() {
            return None;
        }
        let runner = self.runner.info();
        let others: Vec<Option<GpuVendor>> = self
            .skipped
            .iter()
            .filter(|s| s.why == "other_vendor")
            .map(|s| s.vendor)
            .collect();
        // Non-empty: a node with no GPU at all has no other vendor's either.
        Some(
            if !self.skipped.is_empty() && others.len() == self.skipped.len() {
                match others[0].filter(|v| others.iter().all(|o| *o == Some(*v))) {
                    Some(v) => format!(
                        "{} tests {}s only and every requested device is {} ({})",
                        runner.diagnostic,
                        runner.device_word,
                        with_article(v.info().device_word),
                        v.info().diagnostic_said()
                    ),
                    None => format!(
                        "{} tests {}s only and no requested device is one (see not_tested)",
                        runner.diagnostic, runner.device_word
                    ),
                }
            } else if self.skipped.iter().any(|s| s.why == "held") {
                "no requested GPU is idle: a pod, a DRA claim or a process holds it, or its holders could not be \
             read (see not_tested); a diagnostic never runs under a workload"
                .to_string()
            } else {
                "no requested GPU can be tested (see not_tested)".to_string()
            },
        )
    }
}

/// `an AMD GPU`: every vendor's device word begins with a vowel sound, so the article is said once here.
fn with_article(word: &str) -> String {
    format!("an {word}")
}

/// Why `runner`'s diagnostic leaves `g`, another vendor's device, out.
fn other_vendor(runner: GpuVendor, g: &GpuFacts) -> String {
    let (r, them) = (runner.info(), g.vendor.info());
    format!(
        "{}: {} tests {}s only ({})",
        with_article(them.device_word),
        r.diagnostic,
        r.device_word,
        them.diagnostic_said()
    )
}

fn uuid_of(g: &GpuFacts) -> Option<String> {
    g.uuid.ok().cloned()
}

/// Split `requested` into the GPUs to test and those left alone, from the node's facts (inventory,
/// processes and the kubelet's PodResources answer with the DRA facts).
pub fn select(facts: &NodeFacts, requested: &[GpuSel]) -> Selection {
    select_for(facts, requested, GpuVendor::Nvidia)
}

/// As [`select`], for a runner of `vendor`'s GPUs (DCGM: NVIDIA; the ROCm Validation Suite: AMD): a GPU
/// of the other vendor is `other_vendor`, never passed to the runner.
pub fn select_for(facts: &NodeFacts, requested: &[GpuSel], vendor: GpuVendor) -> Selection {
    let mut out = Selection {
        runner: vendor,
        ..Selection::default()
    };
    // `all`: every GPU the probe read.
    let every: Vec<GpuSel>;
    let requested = if requested.is_empty() {
        every = facts.gpus.iter().map(|g| GpuSel::Index(g.index)).collect();
        &every[..]
    } else {
        requested
    };
    for r in requested {
        let gpu = facts.gpus.iter().find(|g| match r {
            GpuSel::Index(i) => g.index == *i,
            GpuSel::Uuid(u) => g.uuid.ok().is_some_and(|x| x.eq_ignore_ascii_case(u)),
        });
        let skip = |why: &str, detail: String, g: Option<&GpuFacts>| Skipped {
            requested: r.to_string(),
            index: g.map(|g| g.index),
            uuid: g.and_then(uuid_of),
            why: why.into(),
            detail,
            vendor: None,
        };
        let Some(g) = gpu else {
            out.skipped.push(skip(
                "unknown_gpu",
                format!(
                    "the node has no GPU {r} (it has {})",
                    match facts.gpus.len() {
                        0 => "none the probe read".to_string(),
                        n => format!("indices 0-{}", n - 1),
                    }
                ),
                None,
            ));
            continue;
        };
        if out.to_test.contains(&g.index) {
            continue;
        }
        if let Some(e) = &g.handle_error {
            out.skipped.push(skip(
                "unreadable",
                format!(
                    "{} cannot open the GPU ({}): its health answer says why; {} cannot test it either",
                    g.vendor.info().reader,
                    crate::analysis::error_name(e.error),
                    vendor.info().diagnostic
                ),
                Some(g),
            ));
            continue;
        }
        if g.vendor != vendor {
            // The runner's GPU ids are its own vendor's: another vendor's index is no GPU of its, or
            // another one.
            out.skipped.push(Skipped {
                vendor: Some(g.vendor),
                ..skip("other_vendor", other_vendor(vendor, g), Some(g))
            });
            continue;
        }
        let mut held = Vec::new();
        let mut unverified = Vec::new();
        // The reset preflight's sources and rule: a GPU no source vouches for is not idle.
        let pods = holders::ask(facts, g.index);
        if let Some(h) = &pods {
            match &h.verdict {
                Verdict::Free => {}
                Verdict::Held(who) => held.push(who.join("; ")),
                Verdict::Unvouched(u) => unverified.push(format!(
                    "no source can vouch that no pod holds it: {}",
                    u.iter()
                        .map(|u| format!("{}: {} (fix: {})", u.source.name(), u.why, u.fix))
                        .collect::<Vec<_>>()
                        .join("; ")
                )),
            }
        }
        // The holder scan, as the reset reads it (`operator::scan`; it leaves the probe out itself): an fd
        // table refused or cut, a process not scanned, a `/dev/kfd` holder KFD does not place leave the
        // GPU unknown, never idle.
        // A scenario without the node's facts (no kubelet asked, no scan made) is not judged, as above.
        let scanned = pods.is_some() || facts.device_holders.is_some();
        match crate::operator::reset::holders_on_gpu(facts, g, None).filter(|_| scanned) {
            None | Some(Ok(Said::No)) => {}
            Some(Ok(Said::Yes(who))) => held.push(format!(
                "holders of {}: {}",
                scan::nodes_of(g),
                who.join("; ")
            )),
            Some(Ok(Said::Unknown(why))) => unverified.push(format!(
                "the holder scan of {} is incomplete: {}",
                scan::nodes_of(g),
                why.join("; ")
            )),
            Some(Err(why)) => unverified.push(format!("{why}: cannot verify the GPU is idle")),
        }
        match &g.processes {
            Reading::Ok(ps) if ps.is_empty() => {}
            Reading::Ok(_) => {
                let c = check_processes(facts, g);
                held.push(
                    c.evidence
                        .split(". Stop them first")
                        .next()
                        .unwrap_or(&c.evidence)
                        .to_string(),
                );
            }
            Reading::Err(_) => unverified.push(check_processes(facts, g).evidence),
        }
        if !held.is_empty() {
            out.skipped.push(skip("held", held.join("; "), Some(g)));
        } else if !unverified.is_empty() {
            out.skipped
                .push(skip("unverified", unverified.join("; "), Some(g)));
        } else {
            out.to_test.push(g.index);
        }
    }
    out
}
