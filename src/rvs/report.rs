//! The report of one RVS run: which GPUs were left alone and why, how rvs ended, and its results per GPU
//! and action, mapped back from KFD `gpu_id` to the node's GPU index and PCI address. A run that did not
//! happen (no rvs, every GPU held, a partitioned GPU), was stopped or timed out, or left no readable
//! result is never `failed`: only a GPU's own action result fails, and the report says which of these it
//! was.

use serde::{Deserialize, Serialize};

use super::parse::Results;
use super::request::{GpuSel, RvsRun};
use crate::dcgm::report::{Execution, GpuOutcome, RunOutcome, StopCause};
use crate::dcgm::select::{Selection, Skipped};

/// A tested GPU as rvs knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tested {
    pub index: u32,
    pub gpu_id: u32,
    pub pci_bus_id: Option<String>,
}

/// Everything [`assemble`] reads.
pub struct RvsInput<'a> {
    pub run: &'a RvsRun,
    pub requested: &'a [GpuSel],
    pub selection: &'a Selection,
    /// The GPUs passed to rvs, in order.
    pub tested: &'a [Tested],
    /// `None`: rvs was not started, for `not_started`'s reason.
    pub execution: Option<&'a Execution>,
    pub not_started: Option<String>,
    /// The result file read, or why it could not be.
    pub results: Option<Result<Results, String>>,
    /// The conf file rvs ran.
    pub conf: Option<String>,
    pub started_at: Option<String>,
}

/// How rvs ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsExec {
    pub rvs: String,
    pub argv: Vec<String>,
    /// RVS's version, as its result file gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub deadline_secs: u64,
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<StopCause>,
    /// The process group was killed after the stop's grace period.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub killed: bool,
    /// Why rvs could not be started, or why its result file could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Result records past the bounds, or unreadable.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub results_dropped: usize,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
}

/// One action of a recipe on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsTest {
    /// RVS's module (`gpup`, `peqt`, `gst`, `babel`, `pebb`, ...).
    pub module: String,
    /// The action's name in the recipe.
    pub action: String,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsGpu {
    pub index: u32,
    /// KFD's `gpu_id`, what rvs names the GPU by.
    pub gpu_id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    pub outcome: GpuOutcome,
    pub tests: Vec<RvsTest>,
}

/// `node-probe rvs-diag`: one ROCm Validation Suite run on the idle AMD GPUs of a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsDiagReport {
    pub outcome: RunOutcome,
    /// One sentence: what ran, on which GPUs, and what came of it.
    pub summary: String,
    /// Why nothing ran, where nothing did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_run_reason: Option<String>,
    /// `level 1 (gpup_single)` or `recipe gst_single`.
    pub run: String,
    /// The DCGM-style level the run counts as: 1 reads only, 2-3 load the GPUs.
    pub level: u8,
    /// The RVS recipe (`gpup_single`, `levels/rvs_level_2`).
    pub recipe: String,
    /// The conf file rvs ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<String>,
    pub requested_gpus: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// How rvs ran; absent when it did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rvs: Option<RvsExec>,
    /// The tested GPUs.
    pub gpus: Vec<RvsGpu>,
    /// Requested GPUs left alone: held, partitioned, of the other vendor, or unknown.
    pub not_tested: Vec<Skipped>,
    /// Results in rvs's file for GPUs this run did not pass to rvs (ignored: a result is believed only for
    /// a GPU the run tested).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_results: Vec<String>,
    /// rvs's result file, up to 256 KiB (node-probe fills it): the launcher keeps it in the report resource
    /// and leaves it out of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

const MAX_IGNORED: usize = 16;

/// The report of one run.
pub fn assemble(input: &RvsInput) -> RvsDiagReport {
    let run = input.run;
    let requested_gpus: Vec<String> = if input.requested.is_empty() {
        vec![crate::dcgm::request::ALL.to_string()]
    } else {
        input.requested.iter().map(ToString::to_string).collect()
    };
    let mut r = RvsDiagReport {
        outcome: RunOutcome::NotRun,
        summary: String::new(),
        not_run_reason: None,
        run: run.to_string(),
        level: run.level(),
        recipe: run.recipe().to_string(),
        conf: input.conf.clone(),
        requested_gpus,
        started_at: input.started_at.clone(),
        rvs: None,
        gpus: Vec::new(),
        not_tested: input.selection.skipped.clone(),
        ignored_results: Vec::new(),
        raw_output: None,
    };
    let Some(ex) = input.execution else {
        let why = input
            .not_started
            .clone()
            .unwrap_or_else(|| "rvs was not started".into());
        r.summary = format!("RVS {run} not run: {why}");
        r.not_run_reason = Some(why);
        return r;
    };
    let mut exec = RvsExec {
        rvs: ex.dcgmi.clone(),
        argv: ex.argv.clone(),
        version: None,
        exit_status: ex.exit_status,
        signal: ex.signal,
        deadline_secs: ex.deadline_secs,
        elapsed_ms: ex.elapsed_ms,
        stopped_by: ex.stopped_by,
        killed: ex.killed,
        error: ex.spawn_error.clone(),
        results_dropped: 0,
        stderr_tail: ex.stderr_tail.clone(),
    };
    r.gpus = input
        .tested
        .iter()
        .map(|t| RvsGpu {
            index: t.index,
            gpu_id: t.gpu_id,
            pci_bus_id: t.pci_bus_id.clone(),
            outcome: GpuOutcome::Incomplete,
            tests: Vec::new(),
        })
        .collect();
    let mut results_error = None;
    match &input.results {
        Some(Ok(res)) => {
            exec.version = res.version.clone();
            exec.results_dropped = res.dropped;
            for rec in &res.records {
                let gpu = rec
                    .gpu_id
                    .and_then(|id| r.gpus.iter_mut().find(|g| g.gpu_id == id));
                let Some(gpu) = gpu else {
                    if r.ignored_results.len() < MAX_IGNORED {
                        r.ignored_results.push(format!(
                            "{}/{} on {}: {}",
                            rec.module,
                            rec.action,
                            rec.gpu_id
                                .map_or("a record without gpu_id".into(), |i| format!(
                                    "gpu_id {i}"
                                )),
                            if rec.pass { "pass" } else { "fail" }
                        ));
                    }
                    continue;
                };
                match gpu
                    .tests
                    .iter_mut()
                    .find(|t| t.module == rec.module && t.action == rec.action)
                {
                    // An action repeated (iterations): any failure fails it.
                    Some(t) => t.passed &= rec.pass,
                    None => gpu.tests.push(RvsTest {
                        module: rec.module.clone(),
                        action: rec.action.clone(),
                        passed: rec.pass,
                    }),
                }
            }
        }
        Some(Err(e)) => results_error = Some(e.clone()),
        None => {}
    }
    if exec.error.is_none() {
        exec.error = results_error.clone();
    }
    for g in &mut r.gpus {
        g.outcome = if g.tests.is_empty() {
            GpuOutcome::Incomplete
        } else if g.tests.iter().any(|t| !t.passed) {
            GpuOutcome::Failed
        } else {
            GpuOutcome::Passed
        };
    }
    let failed: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.outcome == GpuOutcome::Failed)
        .map(|g| {
            let bad: Vec<String> = g
                .tests
                .iter()
                .filter(|t| !t.passed)
                .map(|t| format!("{}/{}", t.module, t.action))
                .collect();
            format!("GPU {} failed {}", g.index, bad.join(", "))
        })
        .collect();
    let incomplete: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.outcome == GpuOutcome::Incomplete)
        .map(|g| g.index.to_string())
        .collect();
    let on = r
        .gpus
        .iter()
        .map(|g| g.index.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (outcome, what) = if ex.spawn_error.is_some() {
        (
            RunOutcome::Error,
            format!(
                "error: {}",
                ex.spawn_error.as_deref().unwrap_or("rvs could not start")
            ),
        )
    } else if !failed.is_empty() {
        let mut w = format!("FAILED: {}", failed.join("; "));
        if let Some(c) = ex.stopped_by {
            w.push_str(&format!(
                " (then {}; other results are incomplete)",
                stopped_word(c)
            ));
        }
        (RunOutcome::Failed, w)
    } else if let Some(c) = ex.stopped_by {
        let o = match c {
            StopCause::Deadline => RunOutcome::TimedOut,
            StopCause::Cancelled => RunOutcome::Stopped,
        };
        (
            o,
            format!(
                "{} after {:.0} s{}: not a failure; no GPU failed before it",
                stopped_word(c),
                ex.elapsed_ms as f64 / 1000.0,
                if ex.killed {
                    ", its process group killed"
                } else {
                    ""
                }
            ),
        )
    } else if let Some(e) = &results_error {
        (
            RunOutcome::Error,
            format!(
                "rvs ended (exit {}) without a readable result: {e}; not a failure of any GPU",
                exit_word(ex)
            ),
        )
    } else if incomplete.len() == r.gpus.len() {
        (
            RunOutcome::NotRun,
            format!(
                "rvs (exit {}) gave no result for any tested GPU: not a failure",
                exit_word(ex)
            ),
        )
    } else if ex.exit_status != Some(0) {
        (
            RunOutcome::Error,
            format!(
                "every result passed but rvs exited {}: see its stderr",
                exit_word(ex)
            ),
        )
    } else if !incomplete.is_empty() {
        (
            RunOutcome::Warnings,
            format!(
                "passed, but rvs gave no result for GPU {} (not run, not failed)",
                incomplete.join(", ")
            ),
        )
    } else {
        (RunOutcome::Passed, "passed".to_string())
    };
    r.outcome = outcome;
    r.summary = format!("RVS {run} on GPU {on}: {what}");
    if !r.not_tested.is_empty() {
        r.summary.push_str(&format!(
            "; {} requested GPU(s) not tested (see not_tested)",
            r.not_tested.len()
        ));
    }
    if matches!(r.outcome, RunOutcome::NotRun | RunOutcome::Error) {
        r.not_run_reason = Some(what);
    }
    r.rvs = Some(exec);
    r
}

fn stopped_word(c: StopCause) -> &'static str {
    match c {
        StopCause::Deadline => "timed out at its deadline",
        StopCause::Cancelled => "cancelled",
    }
}

fn exit_word(ex: &Execution) -> String {
    match (ex.exit_status, ex.signal) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("by signal {s}"),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rvs::parse;

    fn input<'a>(
        run: &'a RvsRun,
        sel: &'a Selection,
        tested: &'a [Tested],
        ex: Option<&'a Execution>,
        results: Option<Result<parse::Results, String>>,
    ) -> RvsInput<'a> {
        RvsInput {
            run,
            requested: &[],
            selection: sel,
            tested,
            execution: ex,
            not_started: Some("no rvs".into()),
            results,
            conf: None,
            started_at: None,
        }
    }

    fn two() -> Vec<Tested> {
        vec![
            Tested {
                index: 0,
                gpu_id: 42924,
                pci_bus_id: Some("0000:05:00.0".into()),
            },
            Tested {
                index: 1,
                gpu_id: 1337,
                pci_bus_id: None,
            },
        ]
    }

    fn exited(code: u8) -> Execution {
        Execution {
            dcgmi: "/opt/rocm/bin/rvs".into(),
            exit_status: Some(code),
            ..Execution::default()
        }
    }

    #[test]
    fn a_failure_lands_on_the_gpu_of_its_gpu_id() {
        let run = RvsRun::Recipe("gst_single");
        let sel = Selection::default();
        let t = two();
        let ex = exited(1);
        let res = parse::parse(
            r#"{"gst":{"a":[{"gpu_id":"42924","pass":"true"},{"gpu_id":"1337","pass":"false"},
               {"gpu_id":"777","pass":"false"}]}}"#,
        );
        let r = assemble(&input(&run, &sel, &t, Some(&ex), Some(res)));
        assert_eq!(r.outcome, RunOutcome::Failed, "{r:?}");
        assert_eq!(r.gpus[0].outcome, GpuOutcome::Passed);
        assert_eq!(r.gpus[1].outcome, GpuOutcome::Failed);
        assert!(r.summary.contains("GPU 1 failed gst/a"), "{}", r.summary);
        assert_eq!(r.ignored_results, ["gst/a on gpu_id 777: fail"]);
    }

    #[test]
    fn not_run_stopped_and_unreadable_are_never_failed() {
        let run = RvsRun::Level(1);
        let sel = Selection::default();
        let t = two();
        let r = assemble(&input(&run, &sel, &t, None, None));
        assert_eq!(r.outcome, RunOutcome::NotRun);
        assert_eq!(r.not_run_reason.as_deref(), Some("no rvs"));

        let mut ex = exited(0);
        ex.exit_status = None;
        ex.signal = Some(9);
        ex.stopped_by = Some(StopCause::Deadline);
        ex.killed = true;
        let r = assemble(&input(&run, &sel, &t, Some(&ex), Some(Err("empty".into()))));
        assert_eq!(r.outcome, RunOutcome::TimedOut);
        assert!(r.gpus.iter().all(|g| g.outcome == GpuOutcome::Incomplete));

        ex.stopped_by = Some(StopCause::Cancelled);
        let r = assemble(&input(&run, &sel, &t, Some(&ex), None));
        assert_eq!(r.outcome, RunOutcome::Stopped);

        let ex = exited(0);
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            Some(&ex),
            Some(Err("not JSON".into())),
        ));
        assert_eq!(r.outcome, RunOutcome::Error);
        assert!(r.summary.contains("not a failure"), "{}", r.summary);

        let r = assemble(&input(&run, &sel, &t, Some(&ex), Some(parse::parse("{}"))));
        assert_eq!(r.outcome, RunOutcome::NotRun);
    }

    #[test]
    fn passes_need_every_gpu_and_a_clean_exit() {
        let run = RvsRun::Level(1);
        let sel = Selection::default();
        let t = two();
        let both =
            r#"{"gpup":{"p":[{"gpu_id":42924,"pass":"true"},{"gpu_id":1337,"pass":"true"}]}}"#;
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            Some(&exited(0)),
            Some(parse::parse(both)),
        ));
        assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            Some(&exited(3)),
            Some(parse::parse(both)),
        ));
        assert_eq!(r.outcome, RunOutcome::Error);
        let one = r#"{"gpup":{"p":[{"gpu_id":42924,"pass":"true"}]}}"#;
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            Some(&exited(0)),
            Some(parse::parse(one)),
        ));
        assert_eq!(r.outcome, RunOutcome::Warnings);
        assert_eq!(r.gpus[1].outcome, GpuOutcome::Incomplete);
    }
}
