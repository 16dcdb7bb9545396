//! The run's findings, and how they join the GPUs' incidents.
//!
//! A test a GPU failed is a signal of the fault it tests: a `memory` failure (or any message DCGM files
//! under `hardware_memory`) joins the GPU's uncorrectable-memory incident (`gpu.memory`), a `pcie`
//! failure (`hardware_pcie`) its PCIe link incident (`pcie.link_fault`), an NVLink message its NVLink
//! incident, `DCGM_FR_FALLEN_OFF_BUS` its off-the-bus incident, thermal messages its overheating one
//! (the rules of `incident::rules`). Where the GPU has no such incident, the failure is an incident of its
//! own (`dcgm.<test>`), as a platform mark is (`incident::platform::join`). A pass is history:
//! "GPU 0 passed DCGM level 2 at 10:41". A change during the run (a new uncorrectable error, a lost GPU, an
//! Xid) is a finding of the GPU too. Every text is bounded.

use super::codes::DcgmSeverity;
use super::interpret::Outcome;
use super::limits::clip;
use super::report::{DcgmDiagReport, GpuDiag, RunOutcome, TestOutcome};
use crate::finding::{Action, ActionKind, Finding, Incident, IncidentRule, Incidents, Severity};

/// Evidence lines per finding.
const MAX_EVIDENCE: usize = 6;

/// The incident a failed test joins, by its test and its messages' categories.
fn target(t: &TestOutcome) -> Option<&'static str> {
    let cat = |c: &str| t.messages.iter().any(|m| m.category == c);
    if t.messages.iter().any(|m| m.id == Some(120)) {
        Some("gpu.off_bus")
    } else if t.test == "memory" || t.test == "memtest" || cat("hardware_memory") {
        Some("gpu.memory")
    } else if t.test == "pcie" || cat("hardware_pcie") {
        Some("pcie.link_fault")
    } else if cat("hardware_nvlink") || cat("hardware_nvswitch") {
        Some("nvlink.fault")
    } else if cat("hardware_thermal") {
        Some("gpu.thermal")
    } else {
        None
    }
}

/// What DCGM's severity asks for, in this project's actions.
fn action(t: &TestOutcome) -> Action {
    let worst = t
        .messages
        .iter()
        .map(|m| m.severity)
        .max_by_key(|s| match s {
            DcgmSeverity::Isolate => 5,
            DcgmSeverity::Reset => 4,
            DcgmSeverity::Triage | DcgmSeverity::Unknown => 3,
            DcgmSeverity::Monitor => 2,
            DcgmSeverity::Config => 1,
            DcgmSeverity::None => 0,
        });
    let (kind, detail) = match worst {
        Some(DcgmSeverity::Isolate) => (
            ActionKind::DrainAndResetGpu,
            "DCGM says isolate: drain the GPU's work; if a reset and a second run fail again, RMA it",
        ),
        Some(DcgmSeverity::Reset) => (
            ActionKind::DrainAndResetGpu,
            "DCGM says drain and reset the GPU, then run the diagnostic again",
        ),
        Some(DcgmSeverity::Monitor) => (
            ActionKind::Monitor,
            "DCGM says the GPU can run work and should be watched",
        ),
        Some(DcgmSeverity::Config) => (
            ActionKind::Investigate,
            "DCGM says this is configuration (persistence mode, a test the SKU does not enable)",
        ),
        _ => (
            ActionKind::Investigate,
            "DCGM says triage: read the message, collect_evidence, and run the diagnostic again",
        ),
    };
    Action {
        kind,
        detail: detail.into(),
    }
}

fn test_name(t: &TestOutcome) -> String {
    match &t.check {
        Some(c) => format!("{} ({c})", t.test),
        None => t.test.clone(),
    }
}

fn test_finding(r: &DcgmDiagReport, g: &GpuDiag, t: &TestOutcome) -> Finding {
    let lead = t.messages.first();
    let mut evidence = vec![format!(
        "dcgm {} {} = {}",
        r.run,
        test_name(t),
        t.outcome.word()
    )];
    for m in &t.messages {
        if evidence.len() >= MAX_EVIDENCE {
            break;
        }
        evidence.push(clip(
            &format!(
                "{} ({}) = {}",
                m.code.as_deref().unwrap_or("no DCGM_FR code"),
                m.severity.name(),
                m.text
            ),
            300,
        ));
    }
    let target = target(t);
    Finding {
        code: format!("dcgm.{}", t.test),
        severity: if t.outcome == Outcome::Fail {
            Severity::Critical
        } else {
            Severity::Warning
        },
        gpu: Some(g.index),
        gpu_uuid: g.uuid.clone(),
        summary: clip(
            &format!(
                "GPU {} {} DCGM's {} test{}{}",
                g.index,
                if t.outcome == Outcome::Fail {
                    "failed"
                } else {
                    "warned in"
                },
                test_name(t),
                lead.and_then(|m| m.code.as_deref())
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                lead.map(|m| format!(": {}", m.text)).unwrap_or_default()
            ),
            400,
        ),
        evidence,
        action: action(t),
        about: target
            .map(|c| vec![format!("incident:{c}")])
            .unwrap_or_default(),
        first_seen: r.started_at.clone(),
    }
}

/// The run's findings: a failed or warning test per GPU, a fault that appeared during the run, and a
/// pass (informational) per GPU that passed.
pub fn findings(r: &DcgmDiagReport) -> Vec<Finding> {
    let mut out = Vec::new();
    for g in &r.gpus {
        for t in g
            .tests
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Fail | Outcome::Warn))
        {
            out.push(test_finding(r, g, t));
        }
        if matches!(
            r.outcome,
            RunOutcome::Passed | RunOutcome::Warnings | RunOutcome::Failed
        ) && matches!(g.outcome, super::report::GpuOutcome::Passed)
        {
            out.push(Finding {
                code: "dcgm.passed".into(),
                severity: Severity::Info,
                gpu: Some(g.index),
                gpu_uuid: g.uuid.clone(),
                summary: format!(
                    "GPU {} passed DCGM {}{}",
                    g.index,
                    r.run,
                    r.started_at
                        .as_deref()
                        .map(|t| format!(" at {t}"))
                        .unwrap_or_default()
                ),
                evidence: g
                    .tests
                    .iter()
                    .map(|t| format!("{} = {}", test_name(t), t.outcome.word()))
                    .take(MAX_EVIDENCE)
                    .collect(),
                action: Action {
                    kind: ActionKind::None,
                    detail: String::new(),
                },
                about: vec![],
                first_seen: r.started_at.clone(),
            });
        }
    }
    for c in r.changes.iter().filter(|c| c.fault) {
        out.push(Finding {
            code: format!("dcgm.during_run.{}", c.what),
            severity: Severity::Critical,
            gpu: Some(c.gpu),
            gpu_uuid: r
                .gpus
                .iter()
                .find(|g| g.index == c.gpu)
                .and_then(|g| g.uuid.clone()),
            summary: format!(
                "GPU {}'s {} changed from {} to {} during the DCGM run",
                c.gpu, c.what, c.before, c.after
            ),
            evidence: vec![format!("{} = {} -> {}", c.what, c.before, c.after)],
            action: Action {
                kind: ActionKind::Investigate,
                detail:
                    "the diagnostic's load brought it out: read the GPU's health (get_gpu_health)"
                        .into(),
            },
            about: vec![
                if c.what == "lost" {
                    "incident:gpu.off_bus"
                } else {
                    "incident:gpu.memory"
                }
                .to_string(),
            ],
            first_seen: r.started_at.clone(),
        });
    }
    for x in &r.xids {
        out.push(Finding {
            code: format!("dcgm.during_run.xid.{}", x.code),
            severity: Severity::Critical,
            gpu: x.gpu,
            gpu_uuid: None,
            summary: clip(
                &format!(
                    "Xid {}{} during the DCGM run{}: {}",
                    x.code,
                    x.mnemonic
                        .as_deref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default(),
                    x.gpu.map(|g| format!(" on GPU {g}")).unwrap_or_default(),
                    x.message
                ),
                400,
            ),
            evidence: vec![format!("xid = {}", x.code)],
            action: Action {
                kind: ActionKind::Investigate,
                detail: "read the XID analysis (analyze_xid_errors) for what it asks".into(),
            },
            about: vec![],
            first_seen: x.timestamp.clone(),
        });
    }
    out
}

/// Join the run's findings to the incidents of the tested GPUs (health after the run): a finding about the
/// fault of an incident becomes one of its signals, any other an incident of its own; passes go to history.
/// Incidents of GPUs the run did not test are left out.
pub fn join(mut base: Incidents, r: &DcgmDiagReport) -> Incidents {
    let tested: Vec<u32> = r.gpus.iter().map(|g| g.index).collect();
    base.incidents
        .retain(|i| i.gpu.is_some_and(|g| tested.contains(&g)));
    base.history
        .retain(|f| f.gpu.is_some_and(|g| tested.contains(&g)));
    let mut own: Vec<Incident> = Vec::new();
    for f in &r.findings {
        if f.severity == Severity::Info {
            base.history.push(f.clone());
            continue;
        }
        let wanted = f
            .about
            .iter()
            .find_map(|a| a.strip_prefix("incident:"))
            .map(str::to_string);
        let found = base.incidents.iter_mut().chain(own.iter_mut()).find(|i| {
            i.gpu == f.gpu
                && match &wanted {
                    Some(c) => &i.code == c,
                    None => i.code == f.code,
                }
        });
        match found {
            Some(inc) => {
                inc.summary = clip(
                    &format!("{} DCGM: {}", inc.summary.trim_end(), f.summary),
                    600,
                );
                inc.severity = inc.severity.max(f.severity);
                if f.action.kind > inc.action.kind {
                    inc.action = f.action.clone();
                }
                inc.signals.push(f.clone());
            }
            None => own.push(Incident {
                code: wanted.clone().unwrap_or_else(|| f.code.clone()),
                severity: f.severity,
                gpu: f.gpu,
                gpu_uuid: f.gpu_uuid.clone(),
                component: f.gpu.map_or("node".into(), |g| format!("GPU {g}")),
                title: match wanted.as_deref() {
                    Some("gpu.memory") => "GPU memory fault".into(),
                    Some("pcie.link_fault") => "PCIe link fault".into(),
                    Some("nvlink.fault") => "NVLink fault".into(),
                    Some("gpu.off_bus") => "GPU fell off the bus".into(),
                    Some("gpu.thermal") => "overheating".into(),
                    _ => f.code.clone(),
                },
                summary: f.summary.clone(),
                action: f.action.clone(),
                first_seen: f.first_seen.clone(),
                rule: wanted.as_ref().map(|_| IncidentRule {
                    reason: "a DCGM test of this component failed on the GPU; the test exercises the same \
                             hardware the incident is about"
                        .into(),
                    source: "NVIDIA/DCGM dcgmlib/dcgm_errors.h (DCGM_FR_* categories), v4.6.0".into(),
                }),
                signals: vec![f.clone()],
            }),
        }
    }
    base.incidents.extend(own);
    base.incidents.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.action.kind.cmp(&a.action.kind))
    });
    base
}
