//! `run_gpu_diagnostic`: NVIDIA DCGM's active diagnostic (`node-probe dcgm-diag`) on named GPUs of one node,
//! only those no pod, DRA claim or process holds; on an AMD node (the API server's word: AMD's labels or
//! `amd.com/gpu` capacity and nothing of NVIDIA's), AMD's ROCm Validation Suite instead (`node-probe
//! rvs-diag`, in AMD's test runner image). Level 1 (DCGM's software checks, RVS's `gpup_single`; seconds) in
//! every mode; levels 2-3, named tests and recipes that load the GPUs (minutes) only in operator mode, after
//! a person's confirmation, audited. The whole report stays a resource (`run.report_uri`).

use gpu_diag::contract::Report;
use gpu_diag::dcgm::report::DcgmDiagReport;
use gpu_diag::dcgm::request::{self, DiagRun};
use gpu_diag::facts::GpuVendor;
use gpu_diag::rvs::report::RvsDiagReport;
use gpu_diag::rvs::request::RvsRun;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::run_mark;
use crate::config::Mode;
use crate::mcp::framework::action::audit;
use crate::mcp::framework::confirm::{Confirmed, confirm};
use crate::mcp::framework::held_mark::RunMarkHold;
use crate::mcp::framework::{Cx, Hints, Node, ProbeRun, Tool, ToolError};
use crate::probe::runner::RunError;

pub struct RunGpuDiagnostic;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagArgs {
    /// GPU indices or UUIDs, comma-separated (AMD: indices); level 1 default: every idle GPU; needed for
    /// levels 2-3 and tests.
    #[serde(default)]
    #[schemars(
        with = "String",
        length(min = 1, max = 700),
        regex(
            pattern = r"^((0|[1-9][0-9]{0,2})|GPU-[0-9a-fA-F-]{36})(,((0|[1-9][0-9]{0,2})|GPU-[0-9a-fA-F-]{36})){0,15}$"
        )
    )]
    pub gpus: Option<String>,
    /// 1: software checks, seconds (default); 2: + PCIe and memory, minutes; 3: + stress and bandwidth, ~15
    /// min. AMD: RVS gpup_single, rvs_level_2, rvs_level_3.
    #[serde(default)]
    #[schemars(with = "u8", range(min = 1, max = 3))]
    pub level: Option<u8>,
    /// Tests instead of a level: DCGM's software, context_create, pcie, memory, diagnostic, targeted_stress,
    /// targeted_power, memory_bandwidth, sm_stress, nvbandwidth; or one RVS recipe (gpup_single, peqt_single,
    /// gst_single, iet_single, pebb_single, pbqt_single, babel, mem).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 200), regex(pattern = r"^[a-z_]{1,20}(,[a-z_]{1,20}){0,9}$"))]
    pub tests: Option<String>,
    /// Levels 2-3 with no client to ask a person: `<node_name>/gpus/<gpus>/<run>`, e.g. `n5/gpus/0,1/level-2`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 1000))]
    pub confirm: Option<String>,
    /// Levels 2-3: keep new pods off the node during the run with a NoSchedule taint of its own.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub keep_pods_off: Option<bool>,
}

/// What `keep_pods_off` set and lifted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KeptPodsOff {
    /// The run's own taint, `key=value:NoSchedule`; the value is when it was set and its deadline (UTC).
    pub taint: String,
    /// What became of it after the run: lifted (and what was left as it is), or left and why.
    pub after: String,
    /// What was on the node already and left as it is: a cordon (`spec.unschedulable`), other runs' marks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<String>,
    /// Marks of gone runs (deadline passed) on this node, lifted before this run's was set; or why the
    /// node could not be swept.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub swept: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DiagOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// How a run that loads the GPUs (levels 2-3, named tests) was confirmed; absent for level 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    /// With `keep_pods_off`: the run's taint, and what became of it after the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_pods_off: Option<KeptPodsOff>,
    /// The host engine the run used where it was not one of its own in the probe pod (the GPU Operator's
    /// standalone DCGM), or why it was not used: it could not be looked for, or the caller does not hold the
    /// operator role, which alone may direct a run at a host engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    pub run: ProbeRun,
    /// DCGM's report on an NVIDIA node, RVS's on an AMD node (it has `recipe` and `rvs`); both have
    /// `outcome`, `summary`, `gpus` and `not_tested`.
    pub report: DiagReport,
}

/// The run's report, of the suite the node's vendor runs.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DiagReport {
    Dcgm(DcgmDiagReport),
    Rvs(RvsDiagReport),
}

/// What was asked for, of the suite the node's vendor runs.
enum Plan {
    Dcgm(DiagRun),
    Rvs(RvsRun),
}

impl Plan {
    fn suite(&self) -> &'static str {
        match self {
            Plan::Dcgm(_) => "DCGM",
            Plan::Rvs(_) => "RVS",
        }
    }
    fn loads(&self) -> bool {
        match self {
            Plan::Dcgm(r) => !matches!(r, DiagRun::Level(1)),
            Plan::Rvs(r) => r.loads(),
        }
    }
    fn deadline(&self) -> u64 {
        match self {
            Plan::Dcgm(r) => request::deadline_secs(r.level()),
            Plan::Rvs(r) => r.deadline_secs(),
        }
    }
    /// The run's word in a confirmation target: `level-2`, `pcie,memory`, `gst_single`.
    fn what(&self) -> String {
        match self {
            Plan::Dcgm(DiagRun::Level(l)) | Plan::Rvs(RvsRun::Level(l)) => format!("level-{l}"),
            Plan::Dcgm(DiagRun::Tests(t)) => t.join(","),
            Plan::Rvs(RvsRun::Recipe(r)) => r.to_string(),
        }
    }
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Plan::Dcgm(r) => write!(f, "{r}"),
            Plan::Rvs(r) => write!(f, "{r}"),
        }
    }
}

/// The vendor of `node`'s GPUs as the API server tells it (labels, capacity: `cluster::node_vendor`; a
/// node with GPUs of NVIDIA and another vendor reads NVIDIA's, and DCGM leaves the others out). Without an
/// API server (local mode), or where the node cannot be read, `None`: the run is DCGM's as before, and the
/// probe then says what it finds.
async fn node_vendor(cx: &Cx, context: Option<&str>, node: &str) -> Option<GpuVendor> {
    let c = cx.env.cluster.as_ref()?;
    match c.get_node(context, node).await {
        Ok(n) => Some(n.vendor),
        Err(e) => {
            tracing::info!(%node, error = %e, "run_gpu_diagnostic: the node's vendor could not be read; DCGM's run");
            None
        }
    }
}

impl Tool for RunGpuDiagnostic {
    type Args = Node<DiagArgs>;
    type Output = DiagOutput;
    const NAME: &'static str = "run_gpu_diagnostic";
    const TITLE: &'static str = "Run NVIDIA DCGM's or AMD RVS's diagnostic on idle GPUs";
    const DESCRIPTION: &'static str = "Is this GPU really bad? Runs NVIDIA DCGM's active diagnostic (dcgmi \
diag) or AMD's ROCm Validation Suite (RVS) on a node's idle GPUs: pass, warn or fail per GPU and test. \
Levels 2-3 load GPUs for minutes and need operator mode and a person's confirmation.";
    // Level 1 reads (DCGM's software checks); levels 2-3, which load the GPUs, refuse outside operator
    // mode and ask a person: the read-only surface stays read-only.
    const HINTS: Hints = Hints::READ_LIVE;
    // Level 2 takes minutes: a task where the client can take one; cancelling it stops dcgmi.
    const TASK: bool = true;

    async fn run(cx: &Cx, Node { target, args: a }: Self::Args) -> Result<Self::Output, ToolError> {
        cx.check_target(&target)?;
        let vendor = node_vendor(cx, target.context.as_deref(), &target.node_name).await;
        if let Some(v) = vendor.map(|v| v.info()).filter(|v| !v.diagnostic_runs_here) {
            // No pod for a run that cannot happen: said before anything starts.
            return Err(ToolError::Invalid(format!(
                "node {} has {}s: {}. get_gpu_health and describe_gpu_node read its devices' state",
                target.node_name,
                v.device_word,
                v.diagnostic_said()
            )));
        }
        let amd = vendor == Some(GpuVendor::Amd);
        let plan = match (&a.tests, a.level, amd) {
            (Some(_), Some(_), _) => {
                return Err(ToolError::Invalid("give `level` or `tests`, not both".into()));
            }
            (Some(t), None, false) => Plan::Dcgm(
                request::parse_tests(t).map_err(|e| ToolError::Invalid(format!("tests: {e}")))?,
            ),
            (None, l, false) => Plan::Dcgm(
                request::parse_level(&l.unwrap_or(1).to_string())
                    .map_err(|e| ToolError::Invalid(format!("level: {e}")))?,
            ),
            (Some(t), None, true) => Plan::Rvs(
                gpu_diag::rvs::request::parse_recipe(t).map_err(|e| {
                    ToolError::Invalid(format!("tests: node {} is an AMD node (RVS): {e}", target.node_name))
                })?,
            ),
            (None, l, true) => Plan::Rvs(
                gpu_diag::rvs::request::parse_level(&l.unwrap_or(1).to_string())
                    .map_err(|e| ToolError::Invalid(format!("level: {e}")))?,
            ),
        };
        let gpus = match &a.gpus {
            Some(g) => request::parse_gpus(g).map_err(|e| ToolError::Invalid(format!("gpus: {e}")))?,
            None => Vec::new(),
        };
        match &plan {
            Plan::Dcgm(run) => request::check_all(run, &gpus),
            Plan::Rvs(run) => gpu_diag::rvs::request::check_all(run, &gpus),
        }
        .map_err(|e| ToolError::Invalid(format!("gpus: {e}")))?;
        // RVS names GPUs by KFD gpu_id, which node-probe maps from the node's indices; a UUID is NVIDIA's
        // word (and the exec policy admits indices only for rvs-diag).
        if matches!(plan, Plan::Rvs(_)) && gpus.iter().any(|g| matches!(g, request::GpuSel::Uuid(_))) {
            return Err(ToolError::Invalid(format!(
                "gpus: node {} is an AMD node: name its GPUs by index (as get_gpu_inventory lists them), not \
                 by UUID",
                target.node_name
            )));
        }
        let loads = plan.loads();
        let deadline = plan.deadline();
        let suite = plan.suite();
        // The run keeps its level's own deadline: the launcher gives a DCGM or RVS run that long and its pod
        // lives as long (`Env::deadline`, `probe::pod::apply_dcgm`), whatever --probe-timeout says for other
        // tools.
        let timeout_secs = None;
        let shown: Vec<String> = if gpus.is_empty() {
            vec![request::ALL.to_string()]
        } else {
            gpus.iter().map(ToString::to_string).collect()
        };
        let what = plan.what();
        let target_text = format!("{}/gpus/{}/{what}", target.node_name, shown.join(","));
        let mut confirmed_by = None;
        if loads {
            if cx.env.cfg.mode != Mode::Operator {
                return Err(ToolError::Invalid(format!(
                    "{suite} {plan} loads the GPUs for minutes: only in operator mode (--mode operator); level 1 \
                     runs in every mode"
                )));
            }
            let summary = format!(
                "{suite} {plan} on GPU {} of {}: full load for up to {} min; GPUs a pod or process holds are left out",
                shown.join(", "),
                target.node_name,
                deadline / 60
            );
            match confirm(&cx.peer, &cx.confirm, Self::NAME, &target_text, a.confirm.as_deref(), &summary, None, None)
                .await
                .0
            {
                // Nothing is offered to override: a diagnostic run leaves a GPU of unknown holders alone.
                Confirmed::Yes(how) | Confirmed::YesOverriding(how) => confirmed_by = Some(how.to_string()),
                Confirmed::No(why) => {
                    audit(cx, target.context.as_deref(), &target.node_name, Self::NAME, &target_text, "refused", &why, None)
                        .await;
                    return Err(ToolError::Invalid(why));
                }
                Confirmed::Ask(ask) => return Err(ToolError::InputRequired(ask)),
            }
        }
        let keep_off = a.keep_pods_off.unwrap_or(false);
        if keep_off && !loads {
            return Err(ToolError::Invalid(
                "keep_pods_off is for levels 2-3 and named tests (level 1 loads no GPU)".into(),
            ));
        }
        let mut kept = None;
        let hold = if keep_off {
            let cluster = cx.cluster_for(Self::NAME, "to keep pods off")?;
            let ctx = target.context.as_deref();
            let node = &target.node_name;
            // Marks of runs that are gone (a crashed launcher's) go first, as the person setting this one.
            let swept = match cluster.sweep_run_marks(ctx, Some(node), &run_mark::live()).await {
                Ok(s) => s.lifted.into_iter().chain(s.failed).collect(),
                Err(e) => vec![format!("the node's marks of gone runs could not be swept: {e}")],
            };
            let budget = cx.env.cfg.probe_timeout.as_secs().max(deadline + 90);
            let mark = run_mark::RunMark::new(jiff::Timestamp::now(), budget)
                .map_err(|e| ToolError::Invalid(format!("keep_pods_off: {e}")))?;
            // Held before it is set: no sweep of this process lifts it from now on.
            let live = run_mark::Live::hold(&mark.id);
            let set = cluster
                .set_run_mark(ctx, node, &mark)
                .await
                .map_err(|e| ToolError::Invalid(format!("keep_pods_off: the run's taint could not be set: {e}")))?;
            let mut left_alone = Vec::new();
            if set.cordoned_before {
                left_alone.push("the node's cordon (spec.unschedulable): not the run's, kept after it".into());
            }
            left_alone.extend(set.other_runs.iter().map(|k| format!("another run's mark {k}")));
            kept = Some(KeptPodsOff { taint: set.taint, after: String::new(), left_alone, swept });
            Some(RunMarkHold::new(
                cluster,
                target.context.clone(),
                node.clone(),
                mark.key(),
                live,
            ))
        } else {
            None
        };
        let claims = cx.dra_claims(&target).await;
        let (probed, engine_runs_on, engine_note) = match &plan {
            Plan::Dcgm(run) => {
                // The GPU Operator's own engine where it runs on the node: a second engine beside it would
                // contend for the same GPUs, and the operator's is the one its users' tools see. Directing the
                // probe at an engine is the operator role's alone (what answers there decides pass or fail;
                // the exec policy refuses `--engine` to anyone else), so a reader's run uses an engine of its
                // own.
                let (engine, engine_note) = dcgm_engine(cx, &target).await;
                // Such an engine runs on if node-probe goes without stopping it (DCGM 4.5+'s heartbeat stops
                // it).
                let engine_runs_on = engine.as_ref().is_some_and(|e| !e.heartbeat);
                let req = gpu_diag::command::Request::DcgmDiag {
                    run: run.clone(),
                    gpus,
                    timeout_secs,
                    api_claims: claims.arg(),
                    engine,
                };
                let probe = cx.probe_report(Self::NAME, &target, req, |r| match r {
                    Report::DcgmDiag(x) => Some(DiagReport::Dcgm(*x)),
                    _ => None,
                });
                let running = running_message(run, &shown, &target.node_name, engine.is_some());
                (with_ticks(cx, probe, deadline, &running).await, engine_runs_on, engine_note)
            }
            Plan::Rvs(run) => {
                // rvs runs inside the probe pod only (no engine outside it): a cancelled run ends with its pod.
                let req = gpu_diag::command::Request::RvsDiag {
                    run: run.clone(),
                    gpus,
                    timeout_secs,
                    api_claims: claims.arg(),
                };
                let probe = cx.probe_report(Self::NAME, &target, req, |r| match r {
                    Report::RvsDiag(x) => Some(DiagReport::Rvs(*x)),
                    _ => None,
                });
                let running = format!(
                    "RVS {run} on GPU {} of {} in AMD's test runner image",
                    shown.join(", "),
                    target.node_name
                );
                (with_ticks(cx, probe, deadline, &running).await, false, None)
            }
        };
        if let (Some(h), Some(k)) = (hold, kept.as_mut()) {
            k.after = match &probed {
                Err(ToolError::Run {
                    err: RunError::CancelledUnstopped { why, .. },
                    ..
                }) if engine_runs_on => h.keep_until_deadline(why),
                _ => h.finish().await,
            };
        }
        let (mut report, probe_run) = probed?;
        // dcgmi's output and rvs's result file stay in the report resource (`run.report_uri`), out of the
        // answer.
        match &mut report {
            DiagReport::Dcgm(r) => r.raw_output = None,
            DiagReport::Rvs(r) => r.raw_output = None,
        }
        if let Some(how) = confirmed_by.as_deref() {
            audit(
                cx,
                target.context.as_deref(),
                &target.node_name,
                Self::NAME,
                &target_text,
                // The run's outcome as the report names it: passed, warnings, failed, not_run, ...
                serde_json::to_value(report.outcome())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .as_deref()
                    .unwrap_or("done"),
                report.summary(),
                Some(how),
            )
            .await;
        }
        Ok(DiagOutput {
            node: target.node_name,
            context: target.context,
            confirmed_by,
            kept_pods_off: kept,
            engine: engine_note,
            run: probe_run,
            report,
        })
    }

    fn render(o: &Self::Output) -> String {
        let (title, summary, not_tested) = match &o.report {
            DiagReport::Dcgm(r) => ("DCGM diagnostic", &r.summary, &r.not_tested),
            DiagReport::Rvs(r) => ("RVS diagnostic (AMD)", &r.summary, &r.not_tested),
        };
        let mut s = crate::mcp::render::text::header(title, &o.node, o.context.as_deref(), &o.run);
        s.push_str(summary);
        s.push('\n');
        if let Some(k) = &o.kept_pods_off {
            s.push_str(&format!("new pods kept off for the run by taint {}: {}\n", k.taint, k.after));
            for l in &k.left_alone {
                s.push_str(&format!("left as it is: {l}\n"));
            }
            for w in &k.swept {
                s.push_str(&format!("swept before the run: {w}\n"));
            }
        }
        if let Some(e) = &o.engine {
            s.push_str(e);
            s.push('\n');
        }
        use crate::mcp::render::diagnostic as text;
        match &o.report {
            DiagReport::Dcgm(r) => text::dcgm_gpus(r, &mut s),
            DiagReport::Rvs(r) => text::rvs_gpus(r, &mut s),
        }
        text::not_tested(not_tested, &mut s);
        match &o.report {
            DiagReport::Dcgm(r) => text::dcgm_tail(r, &mut s),
            DiagReport::Rvs(r) => text::rvs_tail(r, &mut s),
        }
        s
    }
}

impl DiagReport {
    fn outcome(&self) -> gpu_diag::dcgm::report::RunOutcome {
        match self {
            DiagReport::Dcgm(r) => r.outcome,
            DiagReport::Rvs(r) => r.outcome,
        }
    }
    fn summary(&self) -> &str {
        match self {
            DiagReport::Dcgm(r) => &r.summary,
            DiagReport::Rvs(r) => &r.summary,
        }
    }
}

/// The GPU Operator's DCGM host engine to direct the run at (operator role only), and what to say of it.
async fn dcgm_engine(
    cx: &Cx,
    target: &crate::mcp::framework::NodeTarget,
) -> (Option<gpu_diag::dcgm::request::Engine>, Option<String>) {
    let ctx = target.context.as_deref();
    let Some(c) = &cx.env.cluster else {
        return (None, None);
    };
    match c.dcgm_engine_on(ctx, &target.node_name).await {
        Ok(Some(e)) => match c.holds_operator_role(ctx).await {
            Ok(true) => (Some(e.engine), Some(format!("run on {}", e.describe()))),
            Ok(false) => (
                None,
                Some(format!(
                    "not run on {} {}: directing the run at a host engine needs the operator role \
                     (k8s-gpu-mcp.io/operator-role), which you do not hold; the run used an engine of its own \
                     in the probe",
                    e.pod, e.engine.addr
                )),
            ),
            Err(why) => (
                None,
                Some(format!(
                    "not run on {}: whether you hold the operator role could not be asked ({why}); the run used \
                     an engine of its own in the probe",
                    e.pod
                )),
            ),
        },
        Ok(None) => (None, None),
        Err(e) => (
            None,
            Some(format!(
                "the GPU Operator's DCGM engine could not be looked for ({e}): the run used an engine of its \
                 own in the probe"
            )),
        ),
    }
}

fn running_message(run: &DiagRun, gpus: &[String], node: &str, operator_engine: bool) -> String {
    format!(
        "DCGM {run} ({}) on GPU {} of {node}{}",
        run.tests_in_words(),
        gpus.join(", "),
        if operator_engine {
            " on the GPU Operator's host engine"
        } else {
            ""
        }
    )
}

/// Progress while dcgmi runs: dcgmi -j prints nothing until the end, so the run says what it tests, on
/// which GPUs, and how long it has run of its deadline, every 10 s once its probe runs (before that the
/// probe's own phases report).
async fn with_ticks<F: std::future::Future>(cx: &Cx, work: F, deadline: u64, what: &str) -> F::Output {
    const STEP: std::time::Duration = std::time::Duration::from_secs(10);
    let probing = crate::mcp::progress::phase_step(crate::probe::runner::Phase::Probing);
    let ticks = async {
        let mut since: Option<std::time::Instant> = None;
        loop {
            tokio::time::sleep(STEP).await;
            let at = cx.progress.current();
            if at < probing || at >= probing + 1.0 {
                continue;
            }
            let t = since.get_or_insert_with(std::time::Instant::now).elapsed();
            let frac = (t.as_secs_f64() / deadline as f64).min(0.95);
            cx.progress.report(
                probing + frac.max(0.001),
                Some(crate::mcp::progress::PHASES_TOTAL),
                format!(
                    "{what}: running for {} s of at most {} min; the per-GPU results come at the end \
                     (GPUs a pod or process holds are left out)",
                    t.as_secs(),
                    deadline / 60
                ),
            );
        }
    };
    tokio::select! {
        out = work => out,
        never = ticks => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::framework::Tool;
    use gpu_diag::dcgm::report::{Execution, RunOutcome};
    use gpu_diag::dcgm::select::{Selection, Skipped};
    use gpu_diag::rvs::report::{RvsInput, Tested, assemble};

    fn out(report: DiagReport) -> DiagOutput {
        DiagOutput {
            node: "mi300x-1".into(),
            context: None,
            confirmed_by: None,
            kept_pods_off: None,
            engine: None,
            run: ProbeRun {
                ran_in: "ns/pod".into(),
                exit_code: 0,
                probe: None,
                timings: vec![],
                total_millis: 1,
                after_probe_millis: None,
                report_uri: None,
                reading_age_s: None,
                reading_reused: false,
                read_afresh_because: None,
            },
            report,
        }
    }

    /// An RVS answer as node-probe's report gives it: the verdict first, the failed GPU (by the gpu_id rvs
    /// named it by) with its failed action, the held GPU left out with its holder, and a forged result
    /// for a GPU never given to rvs ignored.
    #[test]
    fn an_rvs_answer_names_the_failed_gpu_and_action_and_the_gpus_left_out() {
        let run = RvsRun::Recipe("gst_single");
        let requested = gpu_diag::dcgm::request::parse_gpus("0,1,2").unwrap();
        let selection = Selection {
            to_test: vec![0, 2],
            skipped: vec![Skipped {
                requested: "1".into(),
                index: Some(1),
                uuid: None,
                why: "held".into(),
                detail: "pid 52119 (python3) in pod ml/train-0".into(),
                vendor: None,
            }],
            runner: gpu_diag::facts::GpuVendor::Amd,
        };
        let tested = [
            Tested { index: 0, gpu_id: 3288, pci_bus_id: Some("0000:0c:00.0".into()) },
            Tested { index: 2, gpu_id: 23523, pci_bus_id: Some("0000:38:00.0".into()) },
        ];
        let plan: Vec<gpu_diag::rvs::recipe::Action> =
            ["gst-1215Tflops-4K4K8K-rand-fp8", "gst-1000Tflops-8KB-fp16"]
                .iter()
                .map(|a| gpu_diag::rvs::recipe::Action { name: a.to_string(), module: "gst".into() })
                .collect();
        let ex = Execution {
            dcgmi: "/opt/rocm/bin/rvs".into(),
            argv: vec!["-c".into(), "/opt/rocm/share/rocm-validation-suite/conf/gst_single.conf".into()],
            exit_status: Some(0),
            elapsed_ms: 61_000,
            ..Execution::default()
        };
        let results = gpu_diag::rvs::parse::parse(
            r#"{"gst":{"gst-1215Tflops-4K4K8K-rand-fp8":[{"gpu_id":"3288","pass":"true"},{"gpu_id":"23523","pass":"true"}],
                "gst-1000Tflops-8KB-fp16":[{"gpu_id":"3288","pass":"true"},{"gpu_id":"23523","pass":"false"},
                {"gpu_id":"20527","pass":"false"}]}}"#,
        );
        let report = assemble(&RvsInput {
            run: &run,
            requested: &requested,
            selection: &selection,
            tested: &tested,
            plan: &plan,
            left_out: &[],
            execution: Some(&ex),
            not_started: None,
            results: Some(results),
            conf: None,
            started_at: None,
        });
        assert_eq!(report.outcome, RunOutcome::Failed);
        let text = RunGpuDiagnostic::render(&out(DiagReport::Rvs(report)));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("RVS diagnostic (AMD) of node mi300x-1"), "{text}");
        assert!(text.contains("FAILED: GPU 2 failed gst/gst-1000Tflops-8KB-fp16"), "{text}");
        assert!(lines.contains(&"GPU 0 (0000:0c:00.0): passed (2 actions)"), "{text}");
        assert!(
            lines.contains(
                &"GPU 2 (0000:38:00.0): FAILED: gst/gst-1000Tflops-8KB-fp16 failed (RVS: pass false)"
            ),
            "{text}"
        );
        assert!(
            lines.contains(&"GPU 1 not tested (held): pid 52119 (python3) in pod ml/train-0"),
            "{text}"
        );
        // The held GPU 1 (gpu_id 20527) was never given to rvs: a failure rvs reports for it is ignored.
        assert!(!text.contains("GPU 1 (") && text.contains("ignored: 1 result(s)"), "{text}");
        assert!(text.contains("gpu_id 20527"), "{text}");
    }

    /// A run that did not happen is never failed, and says why.
    #[test]
    fn an_rvs_run_not_started_is_not_run() {
        let run = RvsRun::Level(1);
        let selection = Selection::default();
        let report = assemble(&RvsInput {
            run: &run,
            requested: &[],
            selection: &selection,
            tested: &[],
            plan: &[],
            left_out: &[],
            execution: None,
            not_started: Some("this pod's image has no rvs".into()),
            results: None,
            conf: None,
            started_at: None,
        });
        let text = RunGpuDiagnostic::render(&out(DiagReport::Rvs(report)));
        assert!(text.contains("not run: this pod's image has no rvs"), "{text}");
        assert!(!text.contains("FAILED"), "{text}");
    }

    #[test]
    fn plans_name_their_suite_load_and_confirmation_word() {
        let p = Plan::Rvs(RvsRun::Recipe("gst_single"));
        assert_eq!((p.suite(), p.loads(), p.what()), ("RVS", true, "gst_single".to_string()));
        assert_eq!(p.deadline(), 900);
        let p = Plan::Rvs(RvsRun::Level(1));
        assert_eq!((p.loads(), p.what()), (false, "level-1".to_string()));
        let p = Plan::Rvs(RvsRun::Recipe("peqt_single"));
        assert!(!p.loads());
        let p = Plan::Dcgm(DiagRun::Level(2));
        assert_eq!((p.suite(), p.loads(), p.what()), ("DCGM", true, "level-2".to_string()));
    }

    #[test]
    fn the_schemas_grammar_is_the_probes() {
        let schema = serde_json::to_string(&schemars::schema_for!(super::DiagArgs)).unwrap();
        assert!(schema.contains(&gpu_diag::dcgm::request::GPUS_PATTERN.replace('\\', "\\\\")));
        assert!(schema.contains(&gpu_diag::dcgm::request::TESTS_PATTERN.replace('\\', "\\\\")));
    }
}
