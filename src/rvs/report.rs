//! The report of one RVS run: which GPUs were left alone and why, which of the recipe's actions were left
//! out (pbqt with one GPU), how rvs ended, and each tested GPU's result for every action the recipe ran
//! on it, mapped back from KFD `gpu_id` to the node's GPU index and PCI address.
//!
//! A GPU passes only when every action of the recipe has a passing record for it. RVS writes no record
//! for a GPU that fails babel (it aborts) and only `"pass": "true"` for babel, pbqt and pebb
//! (`parse.rs`): a missing record is "not run" (never passed), an `err` record, `"pass": "false"` or a
//! transfer with nothing measured is failed. Records are attributed by action name, with the module the
//! recipe gives it (the file's module key is the first action's), and a transfer's record by both of its
//! GPUs (`srcgpu`, `dstgpu`). A run that did not happen (no rvs, every GPU held, a partitioned GPU), was
//! stopped or timed out, or left no readable result is never `failed`: only a GPU's own result fails.

use serde::{Deserialize, Serialize};

use super::parse::{Results, Verdict};
use super::recipe::Action;
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
    /// The actions of the recipe rvs ran, each on every tested GPU.
    pub plan: &'a [Action],
    /// The recipe's actions left out, each with why.
    pub left_out: &'a [String],
    /// `None`: rvs was not started, for `not_started`'s reason.
    pub execution: Option<&'a Execution>,
    pub not_started: Option<String>,
    /// The result file read, or why it could not be.
    pub results: Option<Result<Results, String>>,
    /// RVS's recipe the run's was made from.
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
    /// rvs ended before closing its result file: the records up to the cut were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_cut: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
}

/// One action's result on one GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RvsTestResult {
    Passed,
    Failed,
    /// RVS wrote no result of this action for this GPU: never a pass.
    NotRun,
}

/// One action of the recipe on one GPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsTest {
    /// RVS's module, as the recipe names it (`gpup`, `peqt`, `gst`, `babel`, `pbqt`, `pebb`, ...).
    pub module: String,
    /// The action's name in the recipe.
    pub action: String,
    pub result: RvsTestResult,
    /// Why it failed or has no result, in RVS's words where it has some.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RvsGpu {
    pub index: u32,
    /// KFD's `gpu_id`, what rvs names the GPU by.
    pub gpu_id: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    pub outcome: GpuOutcome,
    /// Every action the recipe ran on this GPU.
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
    /// RVS's recipe file the run's own was made from (its `device` and `peers` set to the tested GPUs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<String>,
    /// The recipe's actions that were not run, each with why (pbqt's transfers between GPUs with one GPU).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_left_out: Vec<String>,
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
    /// Results in rvs's file that are not believed: for GPUs this run did not pass to rvs, or for actions
    /// its recipe did not have.
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

fn verdict_word(v: &Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Error(_) => "err",
        Verdict::NotMeasured => "not measured",
    }
}

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
        actions_left_out: input.left_out.to_vec(),
        requested_gpus,
        started_at: input.started_at.clone(),
        rvs: None,
        gpus: Vec::new(),
        not_tested: input.selection.skipped.clone(),
        ignored_results: Vec::new(),
        raw_output: None,
    };
    let left_out_note = if r.actions_left_out.is_empty() {
        String::new()
    } else {
        format!("; left out: {}", r.actions_left_out.join("; "))
    };
    let Some(ex) = input.execution else {
        let why = input
            .not_started
            .clone()
            .unwrap_or_else(|| "rvs was not started".into());
        r.summary = format!("RVS {run} not run: {why}{left_out_note}");
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
        results_cut: None,
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
            tests: input
                .plan
                .iter()
                .map(|a| RvsTest {
                    module: a.module.clone(),
                    action: a.name.clone(),
                    result: RvsTestResult::NotRun,
                    detail: None,
                })
                .collect(),
        })
        .collect();
    let index_of = |gpus: &[RvsGpu], id: u32| gpus.iter().find(|g| g.gpu_id == id).map(|g| g.index);
    let mut results_error = None;
    // rvs died by a signal of its own (not our stop) with its file cut inside an action.
    let mut crashed_in: Option<String> = None;
    match &input.results {
        Some(Ok(res)) => {
            exec.version = res.version.clone();
            exec.results_dropped = res.dropped;
            if let Some(cut) = &res.cut_in {
                exec.results_cut = Some(match cut {
                    Some(a) => {
                        format!("rvs ended inside action {a} before closing its result file")
                    }
                    None => "rvs ended before closing its result file".into(),
                });
                if ex.signal.is_some() && ex.stopped_by.is_none() {
                    crashed_in = cut.clone();
                }
            }
            for rec in &res.records {
                let why_ignored = if !input.plan.iter().any(|a| a.name == rec.action) {
                    Some("not an action of this run's recipe".to_string())
                } else if rec.gpus.is_empty() {
                    Some("a record without a GPU".to_string())
                } else {
                    rec.gpus
                        .iter()
                        .find(|id| index_of(&r.gpus, **id).is_none())
                        .map(|id| format!("gpu_id {id}, not given to rvs"))
                };
                if let Some(why) = why_ignored {
                    if r.ignored_results.len() < MAX_IGNORED {
                        r.ignored_results.push(format!(
                            "{} on {why}: {}",
                            rec.action,
                            verdict_word(&rec.verdict)
                        ));
                    }
                    continue;
                }
                let pair = (rec.gpus.len() == 2).then(|| {
                    format!(
                        "transfer GPU {} -> GPU {}",
                        index_of(&r.gpus, rec.gpus[0]).unwrap_or_default(),
                        index_of(&r.gpus, rec.gpus[1]).unwrap_or_default()
                    )
                });
                let detail = match &rec.verdict {
                    Verdict::Pass => None,
                    Verdict::Fail => Some("RVS: pass false".to_string()),
                    Verdict::Error(e) => Some(format!("RVS: err {e}")),
                    Verdict::NotMeasured => Some(
                        "no bandwidth measured (RVS writes pass true with throughput \"(not measured)\" \
                         for a transfer that never completed)"
                            .to_string(),
                    ),
                };
                let detail = match (detail, &pair) {
                    (Some(d), Some(p)) => Some(format!("{p}: {d}")),
                    (d, _) => d,
                };
                for id in &rec.gpus {
                    let Some(g) = r.gpus.iter_mut().find(|g| g.gpu_id == *id) else {
                        continue;
                    };
                    let Some(t) = g.tests.iter_mut().find(|t| t.action == rec.action) else {
                        continue;
                    };
                    match (&rec.verdict, t.result) {
                        // Any failure fails the action (iterations, pairs); it keeps its first reason.
                        (Verdict::Pass, RvsTestResult::NotRun) => t.result = RvsTestResult::Passed,
                        (Verdict::Pass, _) => {}
                        (_, RvsTestResult::Failed) => {}
                        (_, _) => {
                            t.result = RvsTestResult::Failed;
                            t.detail = detail.clone();
                        }
                    }
                }
            }
        }
        Some(Err(e)) => results_error = Some(e.clone()),
        None => {}
    }
    if exec.error.is_none() {
        exec.error = results_error.clone();
    }
    // Where rvs died inside an action: the GPU of that action without a record is the one that failed it
    // when it is the only one (babel's `failed()` aborts rvs, babel.so/include/rvs_memworker.h:77-98);
    // with several, RVS does not say which.
    let mut unfinished: Vec<u32> = Vec::new();
    if let Some(action) = &crashed_in {
        unfinished = r
            .gpus
            .iter()
            .filter(|g| {
                g.tests
                    .iter()
                    .any(|t| &t.action == action && t.result == RvsTestResult::NotRun)
            })
            .map(|g| g.index)
            .collect();
        let sig = ex.signal.unwrap_or_default();
        let many = unfinished.len() > 1;
        let list = unfinished
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        for g in &mut r.gpus {
            for t in &mut g.tests {
                if &t.action != action || t.result != RvsTestResult::NotRun {
                    continue;
                }
                if many {
                    t.detail = Some(format!(
                        "rvs died (signal {sig}) inside this action before a result for GPUs {list}: one of \
                         them may have failed it, RVS does not say which; run it on each GPU alone"
                    ));
                } else {
                    t.result = RvsTestResult::Failed;
                    t.detail = Some(format!(
                        "rvs died (signal {sig}) inside this action before this GPU's result, every other \
                         GPU's written: RVS aborts on a GPU error here (babel's failed() is abort())"
                    ));
                }
            }
        }
    }
    let ended_early = ex.stopped_by.is_some() || ex.signal.is_some();
    for g in &mut r.gpus {
        for t in &mut g.tests {
            if t.result == RvsTestResult::NotRun && t.detail.is_none() {
                t.detail = Some(if ended_early {
                    "rvs ended before a result of this action for this GPU".into()
                } else {
                    "RVS wrote no result of this action for this GPU (it writes none for a GPU that \
                     fails babel, or that has no peer for pbqt): not run, not passed"
                        .into()
                });
            }
        }
        g.outcome = if g.tests.iter().any(|t| t.result == RvsTestResult::Failed) {
            GpuOutcome::Failed
        } else if !g.tests.is_empty() && g.tests.iter().all(|t| t.result == RvsTestResult::Passed) {
            GpuOutcome::Passed
        } else {
            GpuOutcome::Incomplete
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
                .filter(|t| t.result == RvsTestResult::Failed)
                .map(|t| format!("{}/{}", t.module, t.action))
                .collect();
            format!("GPU {} failed {}", g.index, bad.join(", "))
        })
        .collect();
    let incomplete: Vec<String> = r
        .gpus
        .iter()
        .filter(|g| g.outcome == GpuOutcome::Incomplete)
        .map(|g| {
            let missing: Vec<String> = g
                .tests
                .iter()
                .filter(|t| t.result == RvsTestResult::NotRun)
                .map(|t| format!("{}/{}", t.module, t.action))
                .collect();
            format!("GPU {} ({})", g.index, missing.join(", "))
        })
        .collect();
    let any_pass = r
        .gpus
        .iter()
        .any(|g| g.tests.iter().any(|t| t.result == RvsTestResult::Passed));
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
    } else if let (Some(action), true) = (&crashed_in, unfinished.len() > 1) {
        (
            RunOutcome::Error,
            format!(
                "rvs died (exit {}) inside action {action} before a result for GPU {}: one of them may \
                 have failed it, RVS does not say which; run it on each GPU alone. Not passed",
                exit_word(ex),
                unfinished
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else if !any_pass {
        (
            RunOutcome::NotRun,
            format!(
                "rvs (exit {}) gave no result for any tested GPU: not a failure, not a pass",
                exit_word(ex)
            ),
        )
    } else if !incomplete.is_empty() {
        (
            if ex.exit_status == Some(0) {
                RunOutcome::Warnings
            } else {
                RunOutcome::Error
            },
            format!(
                "incomplete, not passed: no result for {} (not run, not failed){}",
                incomplete.join("; "),
                if ex.exit_status == Some(0) {
                    String::new()
                } else {
                    format!("; rvs exited {}", exit_word(ex))
                }
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
    } else {
        (
            RunOutcome::Passed,
            format!("passed every action ({})", input.plan.len()),
        )
    };
    r.outcome = outcome;
    r.summary = format!("RVS {run} on GPU {on}: {what}{left_out_note}");
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
    use crate::rvs::{parse, recipe};

    fn input<'a>(
        run: &'a RvsRun,
        sel: &'a Selection,
        tested: &'a [Tested],
        plan: &'a [Action],
        ex: Option<&'a Execution>,
        results: Option<Result<parse::Results, String>>,
    ) -> RvsInput<'a> {
        RvsInput {
            run,
            requested: &[],
            selection: sel,
            tested,
            plan,
            left_out: &[],
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

    fn plan(actions: &[(&str, &str)]) -> Vec<Action> {
        actions
            .iter()
            .map(|(m, a)| Action {
                module: m.to_string(),
                name: a.to_string(),
            })
            .collect()
    }

    /// RVS's MI300X `levels/rvs_level_2.conf` actions.
    fn level_2() -> Vec<Action> {
        plan(&[
            ("peqt", "pcie_capability"),
            ("babel", "hbm_basic"),
            ("pbqt", "xgmi_interface"),
            ("pebb", "pcie_interface"),
        ])
    }

    fn exited(code: u8) -> Execution {
        Execution {
            dcgmi: "/opt/rocm/bin/rvs".into(),
            exit_status: Some(code),
            ..Execution::default()
        }
    }

    /// Records of a level-2 run as RVS writes them, all under the first action's module `peqt`
    /// (`src/rvsliblogger.cpp:409-425`), for `gpus`; `skip` leaves out the records naming a GPU for an
    /// action (RVS writes none for a GPU that fails babel, babel.so/src/rvs_stress.cpp:287-311, 524-528).
    fn level_2_file(gpus: &[u32], skip: &[(&str, u32)]) -> String {
        let keep = |a: &str, ids: &[u32]| !skip.iter().any(|(sa, si)| *sa == a && ids.contains(si));
        let mut actions = Vec::new();
        let recs: Vec<String> = gpus
            .iter()
            .filter(|g| keep("pcie_capability", &[**g]))
            .map(|g| format!(r#"{{"gpu_id":"{g}","gpu_index":"0","pass":"true"}}"#))
            .collect();
        actions.push(format!(r#""pcie_capability":[{}]"#, recs.join(",")));
        let recs: Vec<String> = gpus
            .iter()
            .filter(|g| keep("hbm_basic", &[**g]))
            .map(|g| {
                format!(
                    r#"{{"gpu_id":"{g}","gpu_index":"0","results":[{{"subtest":"Copy","pass":"true"}}]}}"#
                )
            })
            .collect();
        actions.push(format!(r#""hbm_basic":[{}]"#, recs.join(",")));
        let mut recs = Vec::new();
        for s in gpus {
            for d in gpus {
                if s != d && keep("xgmi_interface", &[*s, *d]) {
                    recs.push(format!(
                        r#"{{"srcgpu":"{s}","dstgpu":"{d}","intf":"XGMI","throughput":"48.000 GBps","pass":"true"}}"#
                    ));
                }
            }
        }
        actions.push(format!(r#""xgmi_interface":[{}]"#, recs.join(",")));
        let recs: Vec<String> = gpus
            .iter()
            .filter(|g| keep("pcie_interface", &[**g]))
            .map(|g| {
                format!(
                    r#"{{"srccpu":"0","dstgpu":"{g}","intf":"PCIe","throughput":"50 GBps","pass":"true"}}"#
                )
            })
            .collect();
        actions.push(format!(r#""pcie_interface":[{}]"#, recs.join(",")));
        format!(r#"{{"version":"1.0","peqt":{{{}}}}}"#, actions.join(","))
    }

    fn level_2_report(file: &str, ex: &Execution) -> RvsDiagReport {
        let run = RvsRun::Level(2);
        let sel = Selection::default();
        let t = two();
        let p = level_2();
        assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(ex),
            Some(parse::parse(file)),
        ))
    }

    fn result_of(r: &RvsDiagReport, gpu: usize, action: &str) -> RvsTestResult {
        r.gpus[gpu]
            .tests
            .iter()
            .find(|t| t.action == action)
            .unwrap()
            .result
    }

    #[test]
    fn a_level_2_pass_needs_every_action_on_every_gpu_by_action_name() {
        let r = level_2_report(&level_2_file(&[42924, 1337], &[]), &exited(0));
        assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
        for g in &r.gpus {
            assert_eq!(g.outcome, GpuOutcome::Passed);
            // Each test carries the recipe's module, not the file's `peqt` label.
            let mods: Vec<&str> = g.tests.iter().map(|t| t.module.as_str()).collect();
            assert_eq!(mods, ["peqt", "babel", "pbqt", "pebb"]);
        }
        assert!(r.ignored_results.is_empty(), "{:?}", r.ignored_results);
    }

    #[test]
    fn a_gpu_without_a_babel_record_is_never_passed() {
        // Before: any passing record and no failing one read "passed".
        let r = level_2_report(
            &level_2_file(&[42924, 1337], &[("hbm_basic", 1337)]),
            &exited(0),
        );
        assert_eq!(r.gpus[0].outcome, GpuOutcome::Passed);
        assert_eq!(r.gpus[1].outcome, GpuOutcome::Incomplete);
        assert_eq!(result_of(&r, 1, "hbm_basic"), RvsTestResult::NotRun);
        assert_ne!(r.outcome, RunOutcome::Passed);
        assert!(
            r.summary
                .contains("incomplete, not passed: no result for GPU 1 (babel/hbm_basic)"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn a_missing_transfer_pair_and_an_unmeasured_one() {
        // No pbqt record for GPU 1 (as source or destination): pbqt not run on it; GPU 0 has its other
        // pair? None either: both GPUs have no xgmi result.
        let r = level_2_report(
            &level_2_file(&[42924, 1337], &[("xgmi_interface", 1337)]),
            &exited(0),
        );
        assert_eq!(result_of(&r, 0, "xgmi_interface"), RvsTestResult::NotRun);
        assert_eq!(result_of(&r, 1, "xgmi_interface"), RvsTestResult::NotRun);
        assert!(r.gpus.iter().all(|g| g.outcome == GpuOutcome::Incomplete));
        assert_eq!(r.outcome, RunOutcome::Warnings, "{}", r.summary);
        // A transfer that measured nothing fails both of its ends.
        let file = level_2_file(&[42924, 1337], &[]).replacen("48.000 GBps", "(not measured)", 1);
        let r = level_2_report(&file, &exited(0));
        assert_eq!(r.outcome, RunOutcome::Failed, "{}", r.summary);
        for g in 0..2 {
            assert_eq!(result_of(&r, g, "xgmi_interface"), RvsTestResult::Failed);
        }
        let d = r.gpus[1].tests[2].detail.as_deref().unwrap();
        assert!(
            d.contains("transfer GPU 0 -> GPU 1: no bandwidth measured"),
            "{d}"
        );
    }

    #[test]
    fn an_err_record_fails_its_gpu() {
        let run = RvsRun::Recipe("gst_single");
        let sel = Selection::default();
        let t = two();
        let p = plan(&[("gst", "a")]);
        let res = parse::parse(
            r#"{"version":"1.0","gst":{"a":[{"gpu_id":"42924","gpu_index":"0","pass":"true"},
               {"gpu_id":"1337","gpu_index":"1","err":"rocBLAS error"}]}}"#,
        );
        let r = assemble(&input(&run, &sel, &t, &p, Some(&exited(0)), Some(res)));
        assert_eq!(r.outcome, RunOutcome::Failed, "{}", r.summary);
        assert_eq!(r.gpus[1].outcome, GpuOutcome::Failed);
        assert_eq!(
            r.gpus[1].tests[0].detail.as_deref(),
            Some("RVS: err rocBLAS error")
        );
        assert!(r.summary.contains("GPU 1 failed gst/a"), "{}", r.summary);
    }

    #[test]
    fn rvs_dying_inside_babel_fails_the_one_gpu_without_its_record() {
        // babel's failed() is abort(): the file is cut inside hbm_basic, GPU 1's record never written.
        let full = level_2_file(&[42924, 1337], &[("hbm_basic", 1337)]);
        let cut = &full[..full.find(r#","xgmi_interface""#).unwrap() - 1];
        let mut ex = exited(0);
        ex.exit_status = None;
        ex.signal = Some(6);
        let r = level_2_report(cut, &ex);
        assert_eq!(r.outcome, RunOutcome::Failed, "{}", r.summary);
        assert_eq!(result_of(&r, 1, "hbm_basic"), RvsTestResult::Failed);
        assert_eq!(result_of(&r, 0, "hbm_basic"), RvsTestResult::Passed);
        // The actions after the cut never ran: not run, not failed.
        assert_eq!(result_of(&r, 0, "xgmi_interface"), RvsTestResult::NotRun);
        assert_eq!(r.gpus[0].outcome, GpuOutcome::Incomplete);
        assert!(r.rvs.as_ref().unwrap().results_cut.is_some());
        // Two GPUs unfinished: RVS does not say which failed; neither is blamed, the run is no pass.
        let full = level_2_file(&[42924, 1337], &[("hbm_basic", 1337), ("hbm_basic", 42924)]);
        let cut = &full[..full.find(r#","xgmi_interface""#).unwrap() - 1];
        let r = level_2_report(cut, &ex);
        assert_eq!(r.outcome, RunOutcome::Error, "{}", r.summary);
        assert!(r.gpus.iter().all(|g| g.outcome == GpuOutcome::Incomplete));
        assert!(r.summary.contains("does not say which"), "{}", r.summary);
    }

    #[test]
    fn results_for_other_gpus_or_actions_are_ignored_and_listed() {
        let run = RvsRun::Recipe("gst_single");
        let sel = Selection::default();
        let t = two();
        let p = plan(&[("gst", "a")]);
        let res = parse::parse(
            r#"{"gst":{"a":[{"gpu_id":"42924","pass":"true"},{"gpu_id":"1337","pass":"true"},
               {"gpu_id":"777","pass":"false"},{"srcgpu":"1337","dstgpu":"777","pass":"true"}],
               "z":[{"gpu_id":"1337","pass":"false"}]}}"#,
        );
        let r = assemble(&input(&run, &sel, &t, &p, Some(&exited(0)), Some(res)));
        assert_eq!(r.outcome, RunOutcome::Passed, "{r:?}");
        assert_eq!(
            r.ignored_results,
            [
                "a on gpu_id 777, not given to rvs: fail",
                "a on gpu_id 777, not given to rvs: pass",
                "z on not an action of this run's recipe: fail"
            ]
        );
    }

    #[test]
    fn not_run_stopped_and_unreadable_are_never_failed() {
        let run = RvsRun::Level(1);
        let sel = Selection::default();
        let t = two();
        let p = plan(&[("gpup", "p")]);
        let r = assemble(&input(&run, &sel, &t, &p, None, None));
        assert_eq!(r.outcome, RunOutcome::NotRun);
        assert_eq!(r.not_run_reason.as_deref(), Some("no rvs"));

        let mut ex = exited(0);
        ex.exit_status = None;
        ex.signal = Some(9);
        ex.stopped_by = Some(StopCause::Deadline);
        ex.killed = true;
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&ex),
            Some(Err("empty".into())),
        ));
        assert_eq!(r.outcome, RunOutcome::TimedOut);
        assert!(r.gpus.iter().all(|g| g.outcome == GpuOutcome::Incomplete));

        ex.stopped_by = Some(StopCause::Cancelled);
        let r = assemble(&input(&run, &sel, &t, &p, Some(&ex), None));
        assert_eq!(r.outcome, RunOutcome::Stopped);

        let ex = exited(0);
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&ex),
            Some(Err("not JSON".into())),
        ));
        assert_eq!(r.outcome, RunOutcome::Error);
        assert!(r.summary.contains("not a failure"), "{}", r.summary);

        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&ex),
            Some(parse::parse("{}")),
        ));
        assert_eq!(r.outcome, RunOutcome::NotRun);
    }

    #[test]
    fn passes_need_every_gpu_and_a_clean_exit() {
        let run = RvsRun::Level(1);
        let sel = Selection::default();
        let t = two();
        let p = plan(&[("gpup", "p")]);
        let both =
            r#"{"gpup":{"p":[{"gpu_id":42924,"pass":"true"},{"gpu_id":1337,"pass":"true"}]}}"#;
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&exited(0)),
            Some(parse::parse(both)),
        ));
        assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&exited(3)),
            Some(parse::parse(both)),
        ));
        assert_eq!(r.outcome, RunOutcome::Error);
        let one = r#"{"gpup":{"p":[{"gpu_id":42924,"pass":"true"}]}}"#;
        let r = assemble(&input(
            &run,
            &sel,
            &t,
            &p,
            Some(&exited(0)),
            Some(parse::parse(one)),
        ));
        assert_eq!(r.outcome, RunOutcome::Warnings);
        assert_eq!(r.gpus[1].outcome, GpuOutcome::Incomplete);
    }

    #[test]
    fn actions_left_out_are_in_the_summary() {
        let run = RvsRun::Level(2);
        let sel = Selection::default();
        let t = &two()[..1];
        let n = recipe::narrow(
            "actions:\n- name: hbm\n  module: babel\n- name: xgmi\n  module: pbqt\n  peers: all\n",
            &[42924],
        )
        .unwrap();
        let ex = exited(0);
        let mut i = input(
            &run,
            &sel,
            t,
            &n.actions,
            Some(&ex),
            Some(parse::parse(
                r#"{"babel":{"hbm":[{"gpu_id":"42924","results":[{"pass":"true"}]}]}}"#,
            )),
        );
        i.left_out = &n.left_out;
        let r = assemble(&i);
        assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
        assert!(
            r.summary
                .contains("left out: xgmi (pbqt): transfers between GPUs need two or more"),
            "{}",
            r.summary
        );
        assert_eq!(r.actions_left_out.len(), 1);
    }
}
