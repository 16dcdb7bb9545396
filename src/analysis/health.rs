//! `health`: one verdict per GPU and for the node (healthy / degraded / unhealthy / unknown), made of the
//! findings of every other analysis plus the kernel-log findings, each with a stable code, its evidence
//! and an action. The driver's own GPU recovery action and "GPU missing" are judged here. Explained,
//! never an opaque score.

use serde::{Deserialize, Serialize};

use crate::facts::{FieldErrorKind, GpuFacts, NodeFacts, Reading};
use crate::finding::{Action, ActionKind, Finding, Incidents, Judged, Severity, Verdict, distinct};
use crate::incident::platform::PlatformMark;
use crate::options::AnalysisOptions;

use super::{GpuRef, finding, gpu_label};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HealthReport {
    pub verdict: Verdict,
    /// One line: the verdict, the counts and the most urgent finding.
    pub summary: String,
    /// What to do first: the most disruptive action any of the worst findings asks for.
    pub action: Action,
    /// `--expect-gpus`, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_expected: Option<u32>,
    /// What NVML enumerated.
    pub gpus_enumerated: Reading<u32>,
    /// GPUs whose handle opened and that are not lost.
    pub gpus_answering: u32,
    /// The node's faults, each once, worst first, with every finding as a signal; and the history
    /// (what is only informational or was cleared).
    #[serde(flatten)]
    pub incidents: Incidents,
    pub gpus: Vec<GpuHealth>,
    /// Findings about the node rather than one GPU (missing GPUs, services, unattributed log lines).
    pub node_findings: Vec<Finding>,
    /// Facts that could not be read (permission, timeout, lost GPU), which keep a verdict from being
    /// stated as healthy. `not_supported` and `not_collected` are not listed.
    pub unreadable: Vec<String>,
    /// The multi-node NVLink domain (an NVL72 rack) the GPUs registered in, `<cluster uuid>.<clique>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_domain: Option<String>,
    /// The node's IMEX daemon and its domain, where one runs (a ComputeDomain's, or the host's service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imex: Option<crate::facts::ImexFacts>,
}

impl Judged for HealthReport {
    fn verdict(&self) -> Option<Verdict> {
        Some(self.verdict)
    }
    fn findings(&self) -> Vec<&Finding> {
        let per_gpu = self.gpus.iter().flat_map(|g| &g.findings);
        distinct(per_gpu.chain(&self.node_findings))
    }
    fn incidents(&self) -> Option<&Incidents> {
        Some(&self.incidents)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuHealth {
    #[serde(flatten)]
    pub gpu: GpuRef,
    pub name: Reading<String>,
    pub verdict: Verdict,
    /// NVML's GPU recovery action (field 230): `none`, `gpu_reset`, `node_reboot`, `drain_p2p`,
    /// `drain_and_reset`, `recover_imex_domain`.
    pub recovery_action: Reading<String>,
    pub findings: Vec<Finding>,
}

pub fn recovery_action_name(v: u32) -> String {
    crate::facts::recovery_action(v).map_or_else(|| format!("unknown_{v}"), |a| a.key.to_string())
}

/// Every inline field error of a GPU, as `(path, kind)`, found by walking its serialized facts (so a
/// field added to the fact model later is covered without touching this function). The path is only
/// spelled out for the fields that failed: formatting one for every field was most of this walk's time.
pub fn field_errors(g: &GpuFacts) -> Vec<(String, FieldErrorKind)> {
    let at = std::ptr::from_ref(g) as usize;
    let slot = FIELD_ERRORS.with_borrow(|m| m.as_ref().and_then(|m| m.slot(at)));
    let Some(slot) = slot else {
        return walk_field_errors(g);
    };
    if let Some(errs) = FIELD_ERRORS.with_borrow(|m| m.as_ref().and_then(|m| m.errs[slot].clone()))
    {
        return errs;
    }
    let errs = walk_field_errors(g);
    FIELD_ERRORS.with_borrow_mut(|m| {
        if let Some(m) = m {
            m.errs[slot] = Some(errs.clone());
        }
    });
    errs
}

/// The memo of one node's GPUs: only the GPUs of the node being analysed are memoized (a GPU's facts
/// built for a moment during the analysis could reuse a dropped one's address).
struct FieldErrorMemo {
    first: usize,
    len: usize,
    errs: Vec<Option<Vec<(String, FieldErrorKind)>>>,
}

impl FieldErrorMemo {
    fn slot(&self, at: usize) -> Option<usize> {
        let size = std::mem::size_of::<GpuFacts>();
        let off = at.checked_sub(self.first)?;
        (size > 0 && off % size == 0 && off / size < self.len).then_some(off / size)
    }
}

thread_local! {
    /// Each GPU's field errors while one analysis of a node runs ([`memoized`]): health asks for them
    /// three times per GPU, and serializing a GPU's facts to walk them was a third of `node-probe health`.
    static FIELD_ERRORS: std::cell::RefCell<Option<FieldErrorMemo>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs one analysis of `facts` with each of its GPUs' field errors computed once. Keyed by the GPU's place
/// in `facts.gpus`, which is sound because `facts` stays borrowed, unchanged, for the whole of `f`; nested
/// calls share the outer memo.
pub(crate) fn memoized<R>(facts: &NodeFacts, f: impl FnOnce() -> R) -> R {
    let outer = FIELD_ERRORS.with_borrow_mut(|m| {
        if m.is_some() {
            true
        } else {
            *m = Some(FieldErrorMemo {
                first: facts.gpus.as_ptr() as usize,
                len: facts.gpus.len(),
                errs: vec![None; facts.gpus.len()],
            });
            false
        }
    });
    let r = f();
    if !outer {
        FIELD_ERRORS.with_borrow_mut(|m| *m = None);
    }
    r
}

fn walk_field_errors(g: &GpuFacts) -> Vec<(String, FieldErrorKind)> {
    enum Seg<'a> {
        Key(&'a str),
        Index(usize),
    }
    fn spell(path: &[Seg]) -> String {
        let mut s = String::new();
        for seg in path {
            match seg {
                Seg::Key(k) if s.is_empty() => s.push_str(k),
                Seg::Key(k) => {
                    s.push('.');
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
    fn walk<'a>(
        v: &'a serde_json::Value,
        path: &mut Vec<Seg<'a>>,
        out: &mut Vec<(String, FieldErrorKind)>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(kind)) = map.get("error")
                    && let Ok(kind) =
                        FieldErrorKind::deserialize(serde::de::value::StrDeserializer::<
                            serde::de::value::Error,
                        >::new(kind))
                {
                    out.push((spell(path), kind));
                    return;
                }
                for (k, v) in map {
                    path.push(Seg::Key(k));
                    walk(v, path, out);
                    path.pop();
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(g) {
        walk(&v, &mut Vec::new(), &mut out);
    }
    out
}

/// Field errors that mean "could not be read" rather than "does not exist here".
fn is_unreadable(k: FieldErrorKind) -> bool {
    matches!(
        k,
        FieldErrorKind::NoPermission
            | FieldErrorKind::Timeout
            | FieldErrorKind::Unknown
            | FieldErrorKind::GpuIsLost
    )
}

/// Health's own rules: lost or unopenable GPUs, missing GPUs, the driver's recovery action, MIG pending.
pub fn judge(facts: &NodeFacts, opts: &AnalysisOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in &facts.gpus {
        out.extend(judge_gpu(g));
    }
    if let Some(e) = facts.device_count.err()
        && e.error == FieldErrorKind::Timeout
    {
        // NVML blocking is itself the symptom: a GPU or GSP firmware not answering the driver.
        out.push(finding(
            "nvml.hung",
            Severity::Critical,
            None,
            "NVML did not answer: a GPU or the driver is hung, so no GPU on this node can be read and work on it is likely stuck.".into(),
            vec![format!(
                "device_count = timeout{}",
                e.message.as_deref().map_or(String::new(), |m| format!(" ({m})"))
            )],
            ActionKind::RebootNode,
            "read the kernel log (analyze_xid_errors) for Xid 79, 119, 120 or 154 to find the GPU, then drain the node and reboot it; an in-band GPU reset needs a responsive driver".into(),
        ));
    }
    let answering = facts
        .gpus
        .iter()
        .filter(|g| g.handle_error.is_none())
        .count() as u32;
    let enumerated = facts.device_count.get();
    let mut ev = vec![format!("gpus_answering = {answering}")];
    ev.push(format!(
        "nvml_device_count = {}",
        enumerated.map_or_else(|| super::show(&facts.device_count), |n| n.to_string())
    ));
    if let Some(want) = opts.expect_gpus {
        ev.insert(0, format!("expected = {want} (--expect-gpus)"));
    }
    let missing_vs_expected = opts.expect_gpus.is_some_and(|want| answering < want);
    let missing_vs_count = enumerated.is_some_and(|n| answering < n);
    if missing_vs_expected || missing_vs_count {
        let want = opts.expect_gpus.unwrap_or(0).max(enumerated.unwrap_or(0));
        let why = if enumerated.is_some_and(|n| answering < n) {
            "NVML enumerates more GPUs than it can open"
        } else {
            "the driver did not bring them up (failed init, or fell off the bus before the driver loaded)"
        };
        let mut f = finding(
            "gpu.missing",
            Severity::Critical,
            None,
            format!("{} GPU(s) missing: {answering} answer of {want} expected; {why}.", want - answering),
            ev,
            ActionKind::RebootNode,
            "drain the node, look in the kernel log for `RmInitAdapter failed`, `fallen off the bus` or Xid 79, and reboot; if a GPU stays missing, reseat it or open an RMA".into(),
        );
        // The GPUs NVML lists but cannot open: a fault on one of them (off the bus) is this one.
        f.about = facts
            .gpus
            .iter()
            .filter(|g| g.handle_error.is_some())
            .map(|g| format!("gpu:{}", g.index))
            .collect();
        out.push(f);
    }
    out.extend(crate::incident::imex::node_findings(facts.imex.as_ref()));
    out
}

fn judge_gpu(g: &GpuFacts) -> Vec<Finding> {
    let who = gpu_label(g);
    let i = g.index;
    let mut out = Vec::new();
    if let Some(e) = &g.handle_error {
        let lost = e.error == FieldErrorKind::GpuIsLost;
        out.push(finding(
            "gpu.handle_failed",
            Severity::Critical,
            Some(g),
            format!(
                "{} could not open GPU {i} ({}): nothing about it can be read and it cannot run work.",
                g.vendor.info().reader,
                super::error_name(e.error)
            ),
            vec![format!(
                "handle_error = {}{}",
                super::error_name(e.error),
                e.message.as_deref().map_or(String::new(), |m| format!(" ({m})"))
            )],
            if lost { ActionKind::RebootNode } else { ActionKind::Investigate },
            if lost {
                "drain and reboot the node: a GPU off the bus cannot be reset in-band".into()
            } else {
                "check the kernel log for this GPU and the probe's privileges; reboot the node if the GPU stays unreachable".into()
            },
        ));
        return out;
    }
    let lost: Vec<String> = field_errors(g)
        .into_iter()
        .filter(|(_, k)| *k == FieldErrorKind::GpuIsLost)
        .map(|(p, _)| p)
        .collect();
    if !lost.is_empty() {
        // Said once, in words: every reading of a lost GPU fails alike, so the fields are not listed; what
        // was still read (its identity, the host's PCIe AER counters) and the kernel's Xid are.
        let mut ev = vec![lost_words(g)];
        if let Some(aer) = g.pcie.aer.ok() {
            ev.push(format!(
                "PCIe AER counters (sysfs, still readable): {} fatal, {} non-fatal, {} correctable",
                aer.fatal, aer.nonfatal, aer.correctable
            ));
        }
        out.push(finding(
            "gpu.lost",
            Severity::Critical,
            Some(g),
            format!("{who} is lost: it stopped answering NVML (GPU_IS_LOST), the driver's sign that it has fallen off the bus; every job on it is dead."),
            ev,
            ActionKind::RebootNode,
            format!(
                "drain the node and reboot it (a GPU off the bus cannot be reset in-band); if GPU {i} falls off again, check its seating and power, then RMA"
            ),
        ));
    }
    // NVML's GPU recovery action judged once, where the kernel log judges it and an Xid 154's target: one
    // finding for a value, whoever reads it.
    if let Some(v) = g.recovery_action.get()
        && let Some(f) = crate::kernel_log::report::recovery_action_finding(
            v,
            Some(i),
            g.uuid.ok().cloned(),
            super::canonical_bus_id(&g.pci_bus_id)
                .ok()
                .map(String::as_str),
        )
    {
        out.push(f);
    }
    if let Some(m) = g.mig_mode.ok()
        && m.current != m.pending
    {
        out.push(finding(
            "mig.mode_pending",
            Severity::Warning,
            Some(g),
            format!(
                "{who} has a MIG mode change pending (current {}, pending {}): it applies only after a GPU reset, and until then the GPU is not in the mode it was configured for.",
                on_off(m.current),
                on_off(m.pending)
            ),
            vec![format!("mig_mode = current {}, pending {}", on_off(m.current), on_off(m.pending))],
            ActionKind::ResetGpuWhenDrained,
            format!("reset GPU {i} when drained (nvidia-smi -r -i {i}) to apply the MIG mode, then recreate instances"),
        ));
    }
    out
}

/// A lost GPU in one line: what still answered and that nothing else does.
fn lost_words(g: &GpuFacts) -> String {
    let mut known: Vec<String> = Vec::new();
    if let Some(n) = g.name.ok() {
        known.push(n.clone());
    }
    if let Some(u) = g.uuid.ok() {
        known.push(u.clone());
    }
    if let Some(s) = g.serial.ok() {
        known.push(format!("serial {s}"));
    }
    if let Some(b) = g.pci_bus_id.ok() {
        let b = crate::pci::normalize_bus_id(b).unwrap_or_else(|| b.clone());
        known.push(format!("PCI {b}"));
    }
    let link = match (
        g.pcie.current_link_gen.get(),
        g.pcie.current_link_width.get(),
    ) {
        (Some(gen_), Some(w)) => format!("PCIe link Gen{gen_} x{w}"),
        _ => "PCIe link state unreadable".to_string(),
    };
    format!(
        "NVML answers GPU_IS_LOST for every reading of it (telemetry, clocks, ECC, NVLinks, processes); \
         still read: {}; {link}",
        if known.is_empty() {
            "nothing".to_string()
        } else {
            known.join(", ")
        }
    )
}

/// A lost GPU's findings gain what the kernel log says about it (the Xid that took it off the bus).
fn lost_with_xids(findings: &mut [Finding]) {
    let xids: Vec<(Option<u32>, String)> = findings
        .iter()
        .filter(|f| f.code.starts_with("xid."))
        .map(|f| {
            let head = f.summary.split(" on GPU").next().unwrap_or(&f.summary);
            (f.gpu, head.to_string())
        })
        .collect();
    for f in findings.iter_mut().filter(|f| f.code == "gpu.lost") {
        let mine: Vec<&str> = xids
            .iter()
            .filter(|(g, _)| *g == f.gpu)
            .map(|(_, h)| h.as_str())
            .collect();
        if !mine.is_empty() {
            f.evidence.insert(
                1.min(f.evidence.len()),
                format!("kernel log: {}", mine.join("; ")),
            );
        }
    }
}

fn is_lost(g: &GpuFacts) -> bool {
    field_errors(g)
        .iter()
        .any(|(_, k)| *k == FieldErrorKind::GpuIsLost)
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

/// Every finding that feeds health: the other analyses', the kernel log's and health's own.
pub fn all_findings(facts: &NodeFacts, opts: &AnalysisOptions) -> Vec<Finding> {
    let mut f = judge(facts, opts);
    f.extend(super::telemetry::analyze(facts, opts).findings);
    f.extend(super::topology::analyze(facts, opts).findings);
    f.extend(super::ecc::analyze(facts, opts).findings);
    f.extend(super::processes::analyze(facts, opts).findings);
    f.extend(super::amd::judge(facts));
    f.extend(super::gaudi::judge(facts));
    f.extend(super::neuron::judge(facts));
    f.extend(crate::kernel_log::report::analyze(facts, opts).findings);
    f
}

pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> HealthReport {
    memoized(facts, || assemble(facts, opts, all_findings(facts, opts)))
}

/// The verdicts, action and summary that a set of findings implies for these facts.
pub fn assemble(
    facts: &NodeFacts,
    opts: &AnalysisOptions,
    mut findings: Vec<Finding>,
) -> HealthReport {
    // Two analyses may state the same thing (the kernel-log report also turns NVML's recovery action into
    // `gpu.recovery_action`): one finding per code and GPU, the first kept.
    let mut seen = std::collections::BTreeSet::new();
    findings.retain(|f| seen.insert((f.code.clone(), f.gpu)));
    lost_with_xids(&mut findings);
    // Worst first; stable so each analysis keeps its own order within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut unreadable = Vec::new();
    let mut gpus = Vec::new();
    for g in &facts.gpus {
        let all = field_errors(g);
        let lost = all
            .iter()
            .filter(|(_, k)| *k == FieldErrorKind::GpuIsLost)
            .count();
        let mut errs: Vec<String> = all
            .into_iter()
            .filter(|(_, k)| is_unreadable(*k) && *k != FieldErrorKind::GpuIsLost)
            .map(|(p, k)| format!("gpu[{}].{p} = {}", g.index, super::error_name(k)))
            .collect();
        if lost > 0 {
            // One entry for a lost GPU, not one per field it could not answer.
            errs.insert(
                0,
                format!(
                    "gpu[{}]: lost (gpu_is_lost): every reading but its identity",
                    g.index
                ),
            );
        }
        let complete = errs.is_empty() && g.handle_error.is_none();
        unreadable.extend(errs);
        let mine: Vec<Finding> = findings
            .iter()
            .filter(|f| f.gpu == Some(g.index))
            .cloned()
            .collect();
        gpus.push(GpuHealth {
            gpu: GpuRef::of(g),
            name: g.name.clone(),
            verdict: Verdict::from_findings(&mine, complete),
            recovery_action: g.recovery_action.map(|v| recovery_action_name(*v)),
            findings: mine,
        });
    }
    for (what, err) in [
        ("device_count", facts.device_count.err()),
        ("kernel_log", facts.kernel_log.err()),
        ("rdma", facts.rdma.as_ref().and_then(Reading::err)),
    ] {
        if let Some(e) = err
            && is_unreadable(e.error)
        {
            unreadable.push(format!("{what} = {}", super::error_name(e.error)));
        }
    }
    let total_unreadable = unreadable.len();
    if total_unreadable > 24 {
        unreadable.truncate(24);
        unreadable.push(format!("... and {} more", total_unreadable - 24));
    }
    let verdict = Verdict::from_findings(&findings, total_unreadable == 0);
    let by_gpu: std::collections::BTreeMap<u32, String> =
        facts.gpus.iter().map(|g| (g.index, gpu_label(g))).collect();
    let name = |i: u32| {
        by_gpu
            .get(&i)
            .cloned()
            .unwrap_or_else(|| format!("GPU {i}"))
    };
    let incidents = crate::incident::group(&findings, &name);
    // The incidents are ordered worst first, then by the most disruptive action.
    let lead = incidents.incidents.first();
    let action = match (lead, verdict) {
        (Some(f), _) => f.action.clone(),
        (None, Verdict::Unknown) => Action {
            kind: ActionKind::Investigate,
            detail: "some facts could not be read (see `unreadable`): run the probe with the privileges it needs, or check the GPUs that stopped answering".into(),
        },
        _ => Action {
            kind: ActionKind::None,
            detail: "nothing to do".into(),
        },
    };
    let count = |s: Severity| {
        incidents
            .incidents
            .iter()
            .filter(|f| f.severity == s)
            .count()
    };
    let affected = gpus
        .iter()
        .filter(|g| matches!(g.verdict, Verdict::Degraded | Verdict::Unhealthy))
        .count();
    let word = match verdict {
        Verdict::Healthy => "Healthy",
        Verdict::Unknown => "Unknown",
        Verdict::Degraded => "Degraded",
        Verdict::Unhealthy => "Unhealthy",
    };
    let n = incidents.incidents.len();
    let mut summary = if n == 0 {
        format!("{word}: no incidents on {} GPU(s)", facts.gpus.len())
    } else {
        format!(
            "{word}: {n} incident{} ({} critical, {} warning); {affected} of {} GPU(s) affected",
            if n == 1 { "" } else { "s" },
            count(Severity::Critical),
            count(Severity::Warning),
            facts.gpus.len()
        )
    };
    if let Some(f) = lead {
        summary.push_str(&format!(". Most urgent: {}", f.summary));
    } else if verdict == Verdict::Unknown {
        summary.push_str(&format!(". {total_unreadable} fact(s) unreadable."));
    } else {
        summary.push('.');
    }
    HealthReport {
        verdict,
        summary,
        action,
        gpus_expected: opts.expect_gpus,
        gpus_enumerated: facts.device_count.clone(),
        // A lost GPU opened its handle but answers nothing: it is not answering.
        gpus_answering: facts
            .gpus
            .iter()
            .filter(|g| g.handle_error.is_none() && !is_lost(g))
            .count() as u32,
        incidents,
        gpus,
        node_findings: findings
            .iter()
            .filter(|f| f.gpu.is_none())
            .cloned()
            .collect(),
        unreadable,
        nvlink_domain: super::topology::nvlink_domain(facts),
        imex: facts.imex.clone(),
    }
}

/// Joins what the platform says about the node into the probe's health: each mark about an incident's
/// fault becomes its signal (and may make it worse), the others incidents of their own; the verdict,
/// the node's first action and the summary's counts follow. A mark never softens the probe's verdict.
pub fn join_platform(h: &mut HealthReport, platform: &[PlatformMark], unreadable: Option<&str>) {
    if let Some(why) = unreadable {
        h.unreadable.push(why.to_string());
    }
    // Informational marks (a taint with effect None, an unmonitored device) are history, not incidents.
    let (marks, info): (Vec<_>, Vec<_>) = platform
        .iter()
        .cloned()
        .partition(|m| m.severity > Severity::Info);
    h.incidents.history.extend(info.iter().map(|m| m.finding()));
    if marks.is_empty() {
        return;
    }
    crate::incident::platform::join(&mut h.incidents, &marks);
    let worst = h.incidents.incidents.iter().map(|i| i.severity).max();
    let verdict = match worst {
        Some(Severity::Critical) => Verdict::Unhealthy,
        Some(Severity::Warning) => Verdict::Degraded,
        _ => h.verdict,
    };
    h.verdict = h.verdict.max(verdict);
    if let Some(first) = h.incidents.incidents.first()
        && first.action.kind > h.action.kind
    {
        h.action = first.action.clone();
    }
    let count = |s| {
        h.incidents
            .incidents
            .iter()
            .filter(|i| i.severity == s)
            .count()
    };
    let n = h.incidents.incidents.len();
    let word = match h.verdict {
        Verdict::Healthy => "Healthy",
        Verdict::Unknown => "Unknown",
        Verdict::Degraded => "Degraded",
        Verdict::Unhealthy => "Unhealthy",
    };
    h.summary = format!(
        "{word}: {n} incident{} ({} critical, {} warning), with {} platform mark{} joined",
        if n == 1 { "" } else { "s" },
        count(Severity::Critical),
        count(Severity::Warning),
        marks.len(),
        if marks.len() == 1 { "" } else { "s" },
    );
    if let Some(first) = h.incidents.incidents.first() {
        h.summary
            .push_str(&format!(". Most urgent: {}", first.summary));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FieldError, MigModeFacts, ThermalFacts};

    fn gpu(i: u32) -> GpuFacts {
        GpuFacts {
            index: i,
            pci_bus_id: Reading::Ok(format!("0000:{:02x}:00.0", 0x18 + i)),
            recovery_action: Reading::Ok(0),
            ..Default::default()
        }
    }

    fn node(gpus: Vec<GpuFacts>) -> NodeFacts {
        NodeFacts {
            device_count: Reading::Ok(gpus.len() as u32),
            gpus,
            ..Default::default()
        }
    }

    #[test]
    fn clean_node_is_healthy_with_no_action() {
        let r = analyze(&node(vec![gpu(0), gpu(1)]), &AnalysisOptions::default());
        assert_eq!(r.verdict, Verdict::Healthy);
        assert_eq!(r.action.kind, ActionKind::None);
        assert!(r.gpus.iter().all(|g| g.verdict == Verdict::Healthy));
        assert_eq!(r.gpus[0].recovery_action, Reading::Ok("none".into()));
    }

    #[test]
    fn gpu_that_errors_mid_collection_is_lost_and_needs_reboot() {
        let mut g = gpu(4);
        g.thermal = ThermalFacts {
            gpu_temp_c: Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost)),
            ..Default::default()
        };
        g.name = Reading::Ok("NVIDIA H100 80GB HBM3".into());
        let r = analyze(&node(vec![gpu(0), g]), &AnalysisOptions::default());
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.action.kind, ActionKind::RebootNode);
        assert_eq!(r.gpus[0].verdict, Verdict::Healthy);
        assert_eq!(r.gpus[1].verdict, Verdict::Unhealthy);
        assert_eq!(r.gpus[1].findings[0].code, "gpu.lost");
        // A lost GPU is not answering, and its one fault is one incident.
        assert_eq!(r.gpus_answering, 1);
        assert_eq!(r.incidents.incidents.len(), 1);
        assert!(
            r.summary.starts_with("Unhealthy: 1 incident"),
            "{}",
            r.summary
        );
        // Said in words, never field by field.
        let ev = &r.gpus[1].findings[0].evidence;
        assert!(
            ev[0].starts_with("NVML answers GPU_IS_LOST for every reading")
                && ev[0].contains("NVIDIA H100 80GB HBM3")
                && ev[0].contains("PCIe link state unreadable"),
            "{ev:?}"
        );
        assert!(!ev.iter().any(|e| e.contains("gpu_temp_c")), "{ev:?}");
        assert_eq!(
            r.unreadable,
            ["gpu[4]: lost (gpu_is_lost): every reading but its identity"]
        );
    }

    #[test]
    fn nvml_timeout_is_a_critical_hang_and_an_incomplete_verdict() {
        let facts = NodeFacts {
            source: "nvml".into(),
            device_count: Reading::Err(FieldError::with_message(
                FieldErrorKind::Timeout,
                "NVML did not answer within 30 s",
            )),
            ..NodeFacts::default()
        };
        let f = judge(&facts, &AnalysisOptions::default());
        let hung: Vec<_> = f.iter().filter(|f| f.code == "nvml.hung").collect();
        assert_eq!(hung.len(), 1, "{f:?}");
        assert_eq!(hung[0].severity, Severity::Critical);
        assert!(
            hung[0].evidence[0].contains("within 30 s"),
            "{:?}",
            hung[0].evidence
        );
        // Not a timeout: no hang finding.
        let ok = NodeFacts {
            device_count: Reading::Ok(0),
            ..NodeFacts::default()
        };
        assert!(
            judge(&ok, &AnalysisOptions::default())
                .iter()
                .all(|f| f.code != "nvml.hung")
        );
    }

    #[test]
    fn missing_gpus_against_expectation_and_device_count() {
        let r = analyze(
            &node(vec![gpu(0), gpu(1)]),
            &AnalysisOptions {
                expect_gpus: Some(8),
                ..Default::default()
            },
        );
        assert_eq!(r.verdict, Verdict::Unhealthy);
        assert_eq!(r.node_findings[0].code, "gpu.missing");
        assert!(r.node_findings[0].summary.starts_with("6 GPU(s) missing"));
        assert_eq!(r.gpus_expected, Some(8));
        let r = analyze(
            &node(vec![gpu(0), gpu(1)]),
            &AnalysisOptions {
                expect_gpus: Some(2),
                ..Default::default()
            },
        );
        assert_eq!(r.verdict, Verdict::Healthy);
        // NVML counts 2 but one handle failed: missing even without --expect-gpus.
        let mut bad = gpu(1);
        bad.handle_error = Some(FieldError::new(FieldErrorKind::Unknown));
        let r = analyze(&node(vec![gpu(0), bad]), &AnalysisOptions::default());
        let codes: Vec<_> = r.gpus[1].findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["gpu.handle_failed"]);
        assert!(r.node_findings.iter().any(|f| f.code == "gpu.missing"));
        assert_eq!(r.gpus[1].verdict, Verdict::Unhealthy);
    }

    #[test]
    fn duplicate_codes_for_one_gpu_are_merged() {
        let mut g = gpu(0);
        g.recovery_action = Reading::Ok(1);
        let facts = node(vec![g]);
        let mut f = judge(&facts, &AnalysisOptions::default());
        f.extend(f.clone());
        let r = assemble(&facts, &AnalysisOptions::default(), f);
        assert_eq!(r.gpus[0].findings.len(), 1);
    }

    /// NVML's recovery action read from field 230 and an Xid 154's target are one judgment: the same value
    /// gets the same severity and action from health and the kernel log (3, DRAIN_P2P, once differed).
    #[test]
    fn recovery_action_is_judged_once() {
        for v in 1..=7 {
            let mut g = gpu(0);
            g.recovery_action = Reading::Ok(v);
            let f = judge_gpu(&g);
            let c = crate::kernel_log::correlate::recovery_class(v).unwrap();
            assert_eq!(
                (f[0].severity, f[0].action.kind),
                (c.severity, c.action),
                "value {v}"
            );
        }
    }

    /// A GPU whose reader timed out is named with its own vendor's reader, never NVML for an AMD or Gaudi.
    #[test]
    fn an_unopened_gpu_names_its_vendors_reader() {
        for vendor in crate::facts::GpuVendor::ALL {
            let mut g = gpu(0);
            g.vendor = vendor;
            g.handle_error = Some(FieldError::with_message(FieldErrorKind::Timeout, "reader"));
            let f = judge_gpu(&g);
            assert_eq!(f[0].code, "gpu.handle_failed");
            assert!(
                f[0].summary.starts_with(vendor.info().reader),
                "{vendor:?}: {}",
                f[0].summary
            );
            assert_eq!(
                f[0].summary.contains("NVML"),
                vendor.is_nvidia(),
                "{vendor:?}: {}",
                f[0].summary
            );
        }
    }

    #[test]
    fn recovery_action_values() {
        for (v, kind, sev) in [
            (1, ActionKind::ResetGpu, Severity::Critical),
            (2, ActionKind::RebootNode, Severity::Critical),
            (3, ActionKind::ResetGpuWhenDrained, Severity::Warning),
            (4, ActionKind::DrainAndResetGpu, Severity::Critical),
            (9, ActionKind::Investigate, Severity::Warning),
        ] {
            let mut g = gpu(0);
            g.recovery_action = Reading::Ok(v);
            let f = judge_gpu(&g);
            assert_eq!((f[0].action.kind, f[0].severity), (kind, sev), "value {v}");
        }
        let mut g = gpu(0);
        g.recovery_action = Reading::not_supported();
        assert!(judge_gpu(&g).is_empty(), "older drivers lack field 230");
    }

    #[test]
    fn unreadable_facts_make_unknown_not_healthy() {
        let mut g = gpu(0);
        g.power.usage_mw = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
        let r = analyze(&node(vec![g]), &AnalysisOptions::default());
        assert_eq!(r.verdict, Verdict::Unknown);
        assert_eq!(r.action.kind, ActionKind::Investigate);
        assert_eq!(r.unreadable, ["gpu[0].power.usage_mw = no_permission"]);
        // Not supported is an answer, not a gap.
        let mut g = gpu(0);
        g.power.usage_mw = Reading::not_supported();
        assert_eq!(
            analyze(&node(vec![g]), &AnalysisOptions::default()).verdict,
            Verdict::Healthy
        );
    }

    #[test]
    fn node_action_is_the_most_disruptive_of_the_worst() {
        let mut a = gpu(0);
        a.recovery_action = Reading::Ok(1);
        let mut b = gpu(1);
        b.recovery_action = Reading::Ok(2);
        let mut c = gpu(2);
        c.mig_mode = Reading::Ok(MigModeFacts {
            current: false,
            pending: true,
        });
        let r = analyze(&node(vec![a, b, c]), &AnalysisOptions::default());
        assert_eq!(r.action.kind, ActionKind::RebootNode);
        assert_eq!(r.gpus[2].verdict, Verdict::Degraded);
        assert!(
            r.summary
                .starts_with("Unhealthy: 3 incidents (2 critical, 1 warning)"),
            "{}",
            r.summary
        );
    }
}
