//! The report of one diagnostic run, assembled from what node-probe saw: which GPUs were left alone and
//! why, how `dcgmi` ended, its results judged per GPU and test, what changed on the GPUs during the run,
//! and the run's findings joined to the GPUs' incidents.

use serde::{Deserialize, Serialize};

use super::exit::{self, ExitClass};
use super::interpret::{self, DiagMessage, Outcome};
use super::limits::{MAX_TEXT, clip};
use super::parse::{self, DcgmFormat, PrintedDiag};
use super::request::{DiagRun, GpuSel};
use super::select::{Selection, Skipped};
use super::state::{GpuState, StateChange, XidDuring};
use crate::facts::NodeFacts;
use crate::finding::{Finding, Incidents, Judged, Verdict, distinct};

/// The run as a whole. A refused or stopped run is never `failed`: only a GPU's own test result fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every tested GPU passed every test (skips aside).
    Passed,
    /// Nothing failed, something warned (persistence mode off, a monitor-class finding).
    Warnings,
    /// At least one GPU failed a test.
    Failed,
    /// No test ran: every GPU was held, DCGM refused the run, this pod has no dcgmi, or every test was
    /// skipped (or left without a result) on every GPU.
    NotRun,
    /// The probe's deadline (or dcgmi's) ran out; the run was stopped.
    TimedOut,
    /// The run was cancelled (the probe was told to stop) or DCGM stopped it.
    Stopped,
    /// dcgmi did not work (bad arguments, a crash, output that is no diagnostic).
    Error,
}

impl RunOutcome {
    pub fn word(self) -> &'static str {
        match self {
            RunOutcome::Passed => "passed",
            RunOutcome::Warnings => "passed with warnings",
            RunOutcome::Failed => "failed",
            RunOutcome::NotRun => "not run",
            RunOutcome::TimedOut => "timed out",
            RunOutcome::Stopped => "stopped",
            RunOutcome::Error => "error",
        }
    }
}

/// Why the probe stopped `dcgmi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The level's deadline passed.
    Deadline,
    /// node-probe got SIGTERM or SIGINT (a cancelled task, a deleted pod).
    Cancelled,
}

/// What node-probe did with `dcgmi`, as plain data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Execution {
    pub dcgmi: String,
    pub argv: Vec<String>,
    /// Exit status (0–255); `None` when dcgmi ended by a signal or could not be started.
    pub exit_status: Option<u8>,
    pub signal: Option<i32>,
    pub stdout: String,
    /// stdout was longer than the probe reads (`limits::MAX_OUTPUT_BYTES`).
    pub stdout_cut: bool,
    pub stderr_tail: String,
    pub elapsed_ms: u64,
    pub deadline_secs: u64,
    pub stopped_by: Option<StopCause>,
    /// The process group had to be killed after the stop's grace period.
    pub killed: bool,
    pub spawn_error: Option<String>,
}

/// Everything [`analyze`] reads.
pub struct DiagInput<'a> {
    pub run: &'a DiagRun,
    pub requested: &'a [GpuSel],
    pub selection: &'a Selection,
    /// `None`: dcgmi was not started, for `not_started`'s reason (no dcgmi in the image, nothing to test).
    pub execution: Option<&'a Execution>,
    pub not_started: Option<String>,
    pub before: Vec<GpuState>,
    pub after: Vec<GpuState>,
    pub xids: Vec<XidDuring>,
    pub xids_not_listed: usize,
    /// RFC 3339 UTC time the run started.
    pub started_at: Option<String>,
    /// The GPUs' incidents after the run (health of the re-read node), which the run's findings join.
    pub incidents_after: Incidents,
}

/// How dcgmi ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DcgmRun {
    pub dcgmi: String,
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DcgmFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcgm_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    /// `dcgmReturn_t` of the exit status, with its name (`-30 DCGM_ST_NVVS_ERROR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_code: Option<String>,
    pub exit: ExitClass,
    pub deadline_secs: u64,
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<StopCause>,
    /// The process group was killed after the stop's grace period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_error: Option<String>,
    /// Why the output could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
}

/// One test on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TestOutcome {
    pub test: String,
    /// The level-1 check, where DCGM 3.x names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<DiagMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub info: Vec<String>,
}

/// A tested GPU's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GpuOutcome {
    Passed,
    Warnings,
    Failed,
    /// Only skips (the SKU is not in DCGM's list for these tests, ECC off for memory).
    Skipped,
    /// The run ended before this GPU had a result (stopped, timed out), or DCGM printed none for it.
    Incomplete,
    /// DCGM refused the run; the reason is the run's.
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuDiag {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    pub outcome: GpuOutcome,
    pub tests: Vec<TestOutcome>,
}

/// `node-probe dcgm-diag`: one DCGM diagnostic run on the idle GPUs of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DcgmDiagReport {
    pub outcome: RunOutcome,
    /// One sentence: what ran, on which GPUs, and what came of it.
    pub summary: String,
    /// Why nothing ran, where nothing did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run_reason: Option<String>,
    /// `level 2` or `tests pcie, memory`.
    pub run: String,
    pub level: u8,
    pub requested_gpus: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How dcgmi ran; absent when it did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcgm: Option<DcgmRun>,
    /// The tested GPUs.
    pub gpus: Vec<GpuDiag>,
    /// Requested GPUs left alone: held by a pod, a claim or a process, or unknown.
    pub not_tested: Vec<Skipped>,
    /// Readings that changed on the tested GPUs during the run.
    pub changes: Vec<StateChange>,
    /// Xid events the kernel logged during the run.
    pub xids: Vec<XidDuring>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub xids_not_listed: usize,
    pub findings: Vec<Finding>,
    /// The tested GPUs' incidents after the run, with the run's findings joined (a memory test failure is a
    /// signal of the GPU's memory incident), and the passes in history.
    pub incidents: Incidents,
    /// What the bounds left out of DCGM's output (tests, results, messages, characters).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub left_out: u64,
    /// dcgmi's stdout as printed, up to 256 KiB (`limits::MAX_RAW_BYTES`; node-probe fills it): the launcher
    /// keeps it in the report resource and leaves it out of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

impl Judged for DcgmDiagReport {
    fn verdict(&self) -> Option<Verdict> {
        match self.outcome {
            RunOutcome::Passed | RunOutcome::Warnings | RunOutcome::Failed => {
                Some(Verdict::from_findings(&self.findings, true))
            }
            _ => None,
        }
    }
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
    fn incidents(&self) -> Option<&Incidents> {
        Some(&self.incidents)
    }
}

/// Results of one GPU gathered across iterations and results: one entry per (test, check), the worst
/// outcome kept with its messages.
fn gather(diag: &PrintedDiag, tested: &[u32]) -> Vec<(u32, Vec<TestOutcome>)> {
    let mut per: Vec<(u32, Vec<TestOutcome>)> = tested.iter().map(|&g| (g, Vec::new())).collect();
    let mut add = |gpu: u32, t: TestOutcome| {
        let Some((_, tests)) = per.iter_mut().find(|(g, _)| *g == gpu) else {
            return;
        };
        match tests
            .iter_mut()
            .find(|x| x.test == t.test && x.check == t.check)
        {
            Some(x) if t.outcome > x.outcome => *x = t,
            Some(_) => {}
            None => tests.push(t),
        }
    };
    for run in &diag.runs {
        for test in &run.tests {
            let gpu_results: Vec<_> = test
                .results
                .iter()
                .filter(|r| r.other_entity.is_none())
                .collect();
            for r in &gpu_results {
                let (outcome, messages) = interpret::judge(&r.status, &r.warnings);
                let t = TestOutcome {
                    test: test.name.clone(),
                    check: test.check.clone(),
                    outcome,
                    messages,
                    info: r.info.iter().take(2).cloned().collect(),
                };
                match r.gpu {
                    Some(g) => add(g, t),
                    // A 3.x Deployment check that names no GPU holds for every GPU of the run.
                    None => tested.iter().for_each(|&g| add(g, t.clone())),
                }
            }
            // A 4.x test whose only word is its summary (a global error of the test): every GPU.
            if gpu_results.is_empty()
                && let Some(s) = &test.summary_status
            {
                let (outcome, messages) = interpret::judge(s, &test.summary_warnings);
                for &g in tested {
                    add(
                        g,
                        TestOutcome {
                            test: test.name.clone(),
                            check: None,
                            outcome,
                            messages: messages.clone(),
                            info: vec![],
                        },
                    );
                }
            }
        }
    }
    per
}

fn gpu_outcome(tests: &[TestOutcome], finished: bool) -> GpuOutcome {
    match tests.iter().map(|t| t.outcome).max() {
        Some(Outcome::Fail) => GpuOutcome::Failed,
        _ if !finished => GpuOutcome::Incomplete,
        Some(Outcome::Warn) => GpuOutcome::Warnings,
        Some(Outcome::Pass) => GpuOutcome::Passed,
        Some(Outcome::Skip) => GpuOutcome::Skipped,
        None => GpuOutcome::Incomplete,
    }
}

/// Assemble the report, all but its findings and incidents (`incident.rs`, which reads it). Pure:
/// node-probe ran dcgmi and read the node before and after.
pub fn assemble(facts: &NodeFacts, input: &DiagInput) -> DcgmDiagReport {
    let tested = &input.selection.to_test;
    let uuid = |i: u32| {
        facts
            .gpus
            .iter()
            .find(|g| g.index == i)
            .and_then(|g| g.uuid.ok().cloned())
    };
    let mut report = DcgmDiagReport {
        outcome: RunOutcome::NotRun,
        summary: String::new(),
        not_run_reason: None,
        run: input.run.to_string(),
        level: input.run.level(),
        requested_gpus: if input.requested.is_empty() {
            vec![super::request::ALL.to_string()]
        } else {
            input.requested.iter().map(ToString::to_string).collect()
        },
        started_at: input.started_at.clone(),
        dcgm: None,
        gpus: vec![],
        not_tested: input.selection.skipped.clone(),
        changes: super::state::changes(&input.before, &input.after),
        xids: input.xids.clone(),
        xids_not_listed: input.xids_not_listed,
        findings: vec![],
        incidents: Incidents::default(),
        left_out: 0,
        raw_output: None,
    };
    let Some(ex) = input.execution else {
        report.not_run_reason = Some(
            input
                .not_started
                .clone()
                .unwrap_or_else(|| "dcgmi was not started".into()),
        );
        report.summary = summary(&report);
        return report;
    };
    let parsed = if ex.stdout.trim().is_empty() && ex.spawn_error.is_none() {
        Err(parse::ParseError::Empty)
    } else {
        parse::parse(&ex.stdout)
    };
    let mut class = match &ex.spawn_error {
        Some(e) => ExitClass::Error {
            code: 0,
            name: clip(e, MAX_TEXT),
        },
        None => exit::classify(ex.exit_status, ex.signal),
    };
    let first = parsed.as_ref().ok().and_then(|p| p.runs.first());
    let runtime_error = parsed
        .as_ref()
        .ok()
        .and_then(|p| p.runs.iter().find_map(|r| r.runtime_error.clone()));
    // A start failure that is a refusal of the GPU set (MIG, no GPU, another diagnostic) is a refusal
    // whatever the exit status says.
    if let Some(reason) = runtime_error.as_deref().and_then(exit::refusal_in)
        && !matches!(class, ExitClass::Refused { .. })
    {
        class = ExitClass::Refused { reason };
    }
    let mut run = DcgmRun {
        dcgmi: ex.dcgmi.clone(),
        argv: ex.argv.clone(),
        format: first.map(|r| r.format),
        dcgm_version: first.and_then(|r| r.dcgm_version.clone()),
        driver_version: first.and_then(|r| r.driver_version.clone()),
        exit_status: ex.exit_status,
        return_code: ex.exit_status.filter(|s| *s != 0).map(|s| {
            format!(
                "{} {}",
                exit::return_code(s),
                exit::return_name(exit::return_code(s))
            )
        }),
        exit: class.clone(),
        deadline_secs: ex.deadline_secs,
        elapsed_ms: ex.elapsed_ms,
        stopped_by: ex.stopped_by,
        killed: ex.killed,
        runtime_error: runtime_error.clone(),
        output_error: None,
        iterations: parsed
            .as_ref()
            .ok()
            .filter(|p| p.overall_result.is_some() || p.runs.len() > 1)
            .map(|p| p.runs.len()),
        stderr_tail: clip(&ex.stderr_tail, 1000),
    };
    if ex.stdout_cut {
        run.output_error = Some(format!(
            "dcgmi printed more than {} bytes; the rest was not read",
            super::limits::MAX_OUTPUT_BYTES
        ));
    }
    let empty = PrintedDiag {
        runs: vec![],
        overall_result: None,
        left_out: 0,
    };
    let diag = match &parsed {
        Ok(p) => p,
        Err(e) => {
            // Nothing printed is normal for a stop or a refusal; otherwise it is worth saying.
            if !matches!(e, parse::ParseError::Empty)
                || matches!(class, ExitClass::Ok | ExitClass::Findings { .. })
            {
                run.output_error
                    .get_or_insert_with(|| clip(&e.to_string(), MAX_TEXT));
            }
            &empty
        }
    };
    report.left_out = diag.left_out;
    let finished =
        matches!(class, ExitClass::Ok | ExitClass::Findings { .. }) && ex.stopped_by.is_none();
    report.gpus = gather(diag, tested)
        .into_iter()
        .map(|(index, tests)| GpuDiag {
            index,
            uuid: uuid(index),
            outcome: if matches!(class, ExitClass::Refused { .. }) {
                GpuOutcome::NotRun
            } else {
                gpu_outcome(&tests, finished)
            },
            tests,
        })
        .collect();
    let any = |o: GpuOutcome| report.gpus.iter().any(|g| g.outcome == o);
    report.outcome = match (&class, ex.stopped_by) {
        (ExitClass::Refused { reason }, _) => {
            report.not_run_reason = Some(match &runtime_error {
                Some(r) if !reason.contains(r.as_str()) => format!("{reason}: DCGM said \"{r}\""),
                _ => reason.clone(),
            });
            RunOutcome::NotRun
        }
        (_, Some(StopCause::Deadline)) | (ExitClass::Timeout, _) => RunOutcome::TimedOut,
        (_, Some(StopCause::Cancelled)) | (ExitClass::Stopped, _) => RunOutcome::Stopped,
        (ExitClass::Signal { .. } | ExitClass::BadArguments | ExitClass::Error { .. }, _) => {
            RunOutcome::Error
        }
        (ExitClass::Ok | ExitClass::Findings { .. }, None) => {
            if run.output_error.is_some() && diag.runs.is_empty() {
                RunOutcome::Error
            } else if let Some(r) = &runtime_error {
                run.output_error
                    .get_or_insert_with(|| format!("DCGM could not start the run: {r}"));
                RunOutcome::Error
            } else if any(GpuOutcome::Failed) {
                RunOutcome::Failed
            } else if matches!(class, ExitClass::Findings { isolate: true }) {
                // −51 means an ISOLATE finding: a result that does not show it was not read.
                run.output_error.get_or_insert_with(|| {
                    "dcgmi exited with an ISOLATE finding (-51) that no tested GPU's result shows".into()
                });
                RunOutcome::Error
            } else if any(GpuOutcome::Warnings) {
                RunOutcome::Warnings
            } else if matches!(class, ExitClass::Findings { .. }) {
                // dcgmi says it found something the results do not show: say so rather than pass.
                run.output_error.get_or_insert_with(|| {
                    "dcgmi exited with findings, yet no tested GPU has a failing or warning result"
                        .into()
                });
                RunOutcome::Error
            } else if !any(GpuOutcome::Passed) {
                // Nothing passed: every test skipped, or DCGM printed no result. Not a pass.
                report.not_run_reason = Some(format!(
                    "no GPU was tested: {}",
                    untested(&report.gpus).unwrap_or_else(|| "DCGM printed no result".into())
                ));
                RunOutcome::NotRun
            } else {
                RunOutcome::Passed
            }
        }
    };
    report.dcgm = Some(run);
    report.summary = summary(&report);
    report
}

/// The tested GPUs that have no pass, warning or failure, by why: `GPU 3 every test skipped, GPU 5 no
/// result from DCGM`; None when every tested GPU has a result.
fn untested(gpus: &[GpuDiag]) -> Option<String> {
    let of = |o: GpuOutcome| -> Vec<u32> {
        gpus.iter()
            .filter(|g| g.outcome == o)
            .map(|g| g.index)
            .collect()
    };
    let parts: Vec<String> = [
        (of(GpuOutcome::Skipped), "every test skipped"),
        (of(GpuOutcome::Incomplete), "no result from DCGM"),
    ]
    .into_iter()
    .filter(|(g, _)| !g.is_empty())
    .map(|(g, why)| format!("GPU {} {why}", list(&g)))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `GPU 0, 2 and 3` style list.
fn list(indices: &[u32]) -> String {
    crate::analysis::index_ranges(indices, ", ")
}

fn summary(r: &DcgmDiagReport) -> String {
    let idx = |o: &dyn Fn(&GpuDiag) -> bool| -> Vec<u32> {
        r.gpus.iter().filter(|g| o(g)).map(|g| g.index).collect()
    };
    let tested: Vec<u32> = r.gpus.iter().map(|g| g.index).collect();
    let mut s = match r.outcome {
        RunOutcome::NotRun => format!(
            "DCGM {} not run: {}",
            r.run,
            r.not_run_reason
                .as_deref()
                .unwrap_or("no GPU could be tested")
        ),
        RunOutcome::Passed | RunOutcome::Warnings => {
            let passed = idx(&|g| matches!(g.outcome, GpuOutcome::Passed | GpuOutcome::Warnings));
            let mut s = format!("GPU {} passed DCGM {}", list(&passed), r.run);
            if r.outcome == RunOutcome::Warnings {
                s.push_str(&format!(
                    " with warnings on GPU {}",
                    list(&idx(&|g| g.outcome == GpuOutcome::Warnings))
                ));
            }
            if let Some(u) = untested(&r.gpus) {
                s.push_str(&format!("; not tested: {u}"));
            }
            s
        }
        RunOutcome::Failed => {
            let failed: Vec<String> = r
                .gpus
                .iter()
                .filter(|g| g.outcome == GpuOutcome::Failed)
                .take(4)
                .map(|g| {
                    let tests: Vec<String> = g
                        .tests
                        .iter()
                        .filter(|t| t.outcome == Outcome::Fail)
                        .take(3)
                        .map(|t| match t.messages.first() {
                            Some(m) => format!(
                                "{} ({}, {})",
                                t.test,
                                m.code.as_deref().unwrap_or("no code"),
                                m.severity.name()
                            ),
                            None => t.test.clone(),
                        })
                        .collect();
                    format!("GPU {} failed {}", g.index, tests.join(", "))
                })
                .collect();
            format!("DCGM {}: {}", r.run, failed.join("; "))
        }
        // Whose deadline: the probe's (it stopped dcgmi) or DCGM's own (dcgmi returned a timeout).
        RunOutcome::TimedOut => match &r.dcgm {
            Some(d)
                if d.stopped_by == Some(StopCause::Deadline) || d.exit != ExitClass::Timeout =>
            {
                format!(
                    "DCGM {} on GPU {} ran past the probe's {} s deadline and was stopped",
                    r.run,
                    list(&tested),
                    d.deadline_secs
                )
            }
            Some(d) => format!(
                "DCGM {} on GPU {}: DCGM's own time limit ran out after {} s ({}), inside the probe's {} s \
                 deadline",
                r.run,
                list(&tested),
                d.elapsed_ms / 1000,
                d.return_code.as_deref().unwrap_or("DCGM_ST_TIMEOUT"),
                d.deadline_secs
            ),
            None => format!("DCGM {} on GPU {} timed out", r.run, list(&tested)),
        },
        RunOutcome::Stopped => format!(
            "DCGM {} on GPU {} was stopped before it finished",
            r.run,
            list(&tested)
        ),
        RunOutcome::Error => format!(
            "DCGM {} on GPU {} did not give a result: {}",
            r.run,
            list(&tested),
            r.dcgm
                .as_ref()
                .and_then(|d| d.output_error.clone().or(match &d.exit {
                    ExitClass::Signal { signal } =>
                        Some(format!("dcgmi was killed by signal {signal}")),
                    ExitClass::BadArguments =>
                        Some("dcgmi rejected its arguments (exit 254)".into()),
                    ExitClass::Error { code, name } =>
                        Some(format!("dcgmi ended with {code} ({name})")),
                    _ => None,
                }))
                .unwrap_or_else(|| "unreadable output".into())
        ),
    };
    if !r.not_tested.is_empty() {
        // One group per reason, GPUs as ranges: a bigger node makes no longer sentence.
        let mut groups: Vec<(&str, Vec<u32>, Vec<&str>)> = Vec::new();
        for n in &r.not_tested {
            let i = match groups.iter().position(|g| g.0 == n.why) {
                Some(i) => i,
                None => {
                    groups.push((n.why.as_str(), vec![], vec![]));
                    groups.len() - 1
                }
            };
            match n.index {
                Some(x) => groups[i].1.push(x),
                None => groups[i].2.push(n.requested.as_str()),
            }
        }
        let parts: Vec<String> = groups
            .iter()
            .map(|(why, idx, other)| {
                let mut names = Vec::new();
                if !idx.is_empty() {
                    names.push(list(idx));
                }
                names.extend(other.iter().take(3).map(|o| o.to_string()));
                format!("GPU {} {}", names.join(", "), why.replace('_', " "))
            })
            .collect();
        s.push_str(&format!("; not tested: {}", parts.join("; ")));
    }
    let faults = r.changes.iter().filter(|c| c.fault).count() + r.xids.len();
    if faults > 0 {
        s.push_str(&format!(
            "; {faults} fault(s) appeared during the run (see changes and xids)"
        ));
    }
    s.push('.');
    s
}
