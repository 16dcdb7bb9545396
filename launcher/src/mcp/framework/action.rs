//! What the operator tools share: confirmation (see `confirm`), the audit trail, and the
//! preflight-confirm-act sequence of the probe-run actions.
//!
//! Before acting each operator tool asks a person: through an input request on 2026-07-28 clients,
//! through elicitation on older ones, where the client declares it; otherwise the call must carry
//! `confirm` repeating the target exactly (`gpu-node-5/pid/12345`, `gpu-node-5/gpu/3`, `gpu-node-5`), and
//! the answer and the audit record say that no person was asked. The preflight itself is the probe's
//! (`node-probe kill|reset`), judged by `gpu_diag::operator`; a person sees it before approving.
//!
//! Audit: every action, allowed or refused, is a JSON line on stderr and (cluster mode) a Kubernetes Event
//! on the Node with the action, the target, the kubeconfig user (SelfSubjectReview), how it was confirmed
//! and the result.

use std::sync::Arc;

use gpu_diag::command;
use gpu_diag::contract::Report;
use gpu_diag::operator::{ActionReport, ActionResult, CheckStatus};
use schemars::JsonSchema;
use serde::Serialize;

use super::confirm::{Confirmed, confirm, human_confirmed};
use super::target::check_node_name;
use super::{Cx, NodeTarget, ProbeRun, ToolError};
use crate::cluster::{AuditEvent, ClusterBackend, ClusterError};

/// The result of an operator tool: what was done, how it was confirmed, and its audit trail.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OperatorOutput<R> {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `kill_gpu_process`, `reset_gpu`, `cordon_gpu_node`, `uncordon_gpu_node`.
    pub action: String,
    /// What was acted on: `gpu-node-5/pid/12345`, `gpu-node-5/gpu/3`, `gpu-node-5`.
    pub target: String,
    /// `done`, `refused`, `dry_run`, `simulated`, `failed`.
    pub result: String,
    /// How the action was confirmed: `input_request` (2026-07-28) or `elicitation` (older protocols),
    /// where a person approved; `confirm_argument`, where the client can ask no one; `not_needed` (a dry
    /// run, or a preflight that refused).
    pub confirmed_by: String,
    /// True when a person approved the action (`input_request`, `elicitation`); false when only the
    /// `confirm` argument did, which the model may have filled itself.
    pub human_confirmed: bool,
    /// True when the person who confirmed also overrode the refusal of a GPU whose holders no source
    /// could vouch for (the preflight's warning names those sources); the audit records it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub overrode_unknown_holders: bool,
    pub audit: AuditRecord,
    /// The evidence archive collected before acting (destructive actions, unless skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<super::evidence::Evidence>,
    /// True when the caller skipped the evidence (`skip_evidence`); the audit record says so.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub evidence_skipped: bool,
    /// The probe run (absent for cordon, answered by the API server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<ProbeRun>,
    /// A dry run's `confirm` value for a client that can ask no one: the target and, after `@`, the GPU
    /// the preflight showed (PCI address, unique id, partition mode). An act given it resets that GPU or
    /// nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm_with: Option<String>,
    pub report: R,
}

/// Where the audit record went.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditRecord {
    /// The kubeconfig user as the API server knows it (`local:<user>` in local mode).
    pub user: String,
    /// Name of the Event created on the Node (cluster mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why no Event could be created, when that failed (e.g. RBAC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_error: Option<String>,
}

pub fn result_name(r: ActionResult) -> &'static str {
    match r {
        ActionResult::Refused => "refused",
        ActionResult::DryRun => "dry_run",
        ActionResult::Simulated => "simulated",
        ActionResult::Done => "done",
        ActionResult::Failed => "failed",
    }
}

/// Who acts, for the audit trail.
async fn audit_user(cx: &Cx, context: Option<&str>) -> String {
    match &cx.env.cluster {
        Some(c) => match c.whoami(context).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the kubeconfig user for the audit trail");
                "unknown".into()
            }
        },
        None => format!(
            "local:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
    }
}

/// The audit's words on how an action was confirmed; "no person was asked" where only `confirm` did.
pub fn confirmation_note(confirmed_by: &str) -> Option<&'static str> {
    match confirmed_by {
        "input_request" => Some("confirmed by a person (input request)"),
        "elicitation" => Some("confirmed by a person (elicitation)"),
        "confirm_argument" => Some(
            "confirmed by the confirm argument only: the client declares neither elicitation nor input \
             requests, so no person was asked",
        ),
        _ => None,
    }
}

/// Record one operator action: a JSON line on stderr, and an Event on the Node in cluster mode.
/// `confirmed_by` is how it was confirmed, once it was (`None` for a refusal before that).
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    cx: &Cx,
    context: Option<&str>,
    node: &str,
    action: &str,
    target: &str,
    result: &str,
    message: &str,
    confirmed_by: Option<&str>,
) -> AuditRecord {
    let user = audit_user(cx, context).await;
    // The Event has no fields of its own for it: the confirmation is said in its message too.
    let mut message = message.to_string();
    if let Some(note) = confirmed_by.and_then(confirmation_note) {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(note);
    }
    let ev = AuditEvent {
        node: node.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        user: user.clone(),
        result: result.to_string(),
        message: message.clone(),
    };
    let (event, event_error) = match &cx.env.cluster {
        Some(c) => match c.record_event(context, &ev).await {
            Ok(name) => (Some(name), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, None),
    };
    let line = serde_json::json!({
        "audit": {
            "ts": jiff::Timestamp::now().to_string(),
            "action": action,
            "node": node,
            "target": target,
            "user": user,
            "result": result,
            "message": message,
            "confirmed_by": confirmed_by,
            "human_confirmed": confirmed_by.map(human_confirmed),
            "context": context,
            "event": event,
            "event_error": event_error,
        }
    });
    // Always JSON, whatever --log-format says: audit lines are for machines.
    eprintln!("{line}");
    AuditRecord {
        user,
        event,
        event_error,
    }
}

/// A refusal before anything ran: audited, and an error result with the reason.
pub async fn refuse_early(
    cx: &Cx,
    context: Option<&str>,
    node: &str,
    action: &str,
    target: &str,
    why: String,
) -> ToolError {
    audit(cx, context, node, action, target, "refused", &why, None).await;
    ToolError::Invalid(why)
}

/// One probe-run operator action (kill or reset): preflight, confirmation, action, audit.
pub struct ProbeAction<'a, R> {
    /// The tool name, which is also the audited action.
    pub action: &'a str,
    pub node: NodeTarget,
    /// What is acted on, as `confirm` must repeat it.
    pub target: String,
    /// What node-probe is asked to do (its preflight is the same request, `preflight()`).
    pub request: command::Request,
    pub dry_run: bool,
    pub confirm: Option<String>,
    /// Act without collecting the evidence archive first (`skip_evidence`).
    pub skip_evidence: bool,
    pub pick: fn(Report) -> Option<R>,
    /// How the plan ended, in words for the audit, when it ran (`killed with SIGKILL`, ...).
    pub outcome_of: fn(&R) -> Option<String>,
    /// What a person sees in the preflight that the act is bound to (reset: the GPU's identity and the
    /// unknowns an override covers); `None` binds nothing.
    pub seen_of: fn(&R) -> Option<super::confirm::Seen>,
}

impl<R: Serialize + ActionReport> ProbeAction<'_, R> {
    pub async fn run(self, cx: &Cx) -> Result<OperatorOutput<R>, ToolError> {
        let ProbeAction {
            action,
            node: t,
            target,
            request,
            dry_run,
            confirm: confirm_arg,
            skip_evidence,
            pick,
            outcome_of,
            seen_of,
        } = self;
        let summary_of = |r: &R| summary(r, outcome_of(r));
        cx.check_target(&t)?;
        let ctx_ref = t.context.as_deref();
        let node = t.node_name.as_str();
        let run = |preflight: bool| {
            let r = if preflight {
                request.clone().preflight()
            } else {
                request.clone()
            };
            cx.probe_report(action, &t, r, pick)
        };
        // A reset is bound to a GPU's identity, a kill to its process (`start=`): a pin elsewhere, or of
        // the other kind, would be silently ignored.
        if let Some(c) = confirm_arg.as_deref()
            && let Some(pin) = super::confirm::split_confirm(c).1
            && !match request {
                command::Request::Reset { .. } => !pin.starts_with("start="),
                command::Request::Kill { .. } => pin.starts_with("start="),
                _ => false,
            }
        {
            let why = format!(
                "{action}: `confirm` carries a pin after `@` that does not bind this action (a GPU reset's \
                 names the GPU, a kill's the process: `start=`); repeat the `confirm_with` of the dry run \
                 or the target `{target}` alone. Nothing was done."
            );
            return Err(refuse_early(cx, ctx_ref, node, action, &target, why).await);
        }
        let confirmed_by;
        let mut overrode = false;
        let mut seen: Option<super::confirm::Seen> = None;
        let mut evidence = None;
        let outcome = if dry_run {
            confirmed_by = "not_needed";
            run(true).await
        } else {
            // Where a person is asked, they see the preflight before approving; a refusal needs no
            // approval, except one for unknown GPU holders alone, which the person is offered to
            // override. A retry answering an input request saw it in the first round.
            let wrong_confirm = confirm_arg
                .as_deref()
                .is_some_and(|c| super::confirm::split_confirm(c).0 != target);
            let mut offer: Option<Vec<String>> = None;
            let mut shown: Option<super::confirm::Seen> = None;
            let summary =
                if cx.confirm.channel.asks_a_person() && !cx.confirm.is_retry() && !wrong_confirm {
                    let pre = match run(true).await {
                        Ok(p) => p,
                        Err(e) => {
                            audit(
                                cx,
                                ctx_ref,
                                node,
                                action,
                                &target,
                                "error",
                                &e.to_string(),
                                None,
                            )
                            .await;
                            return Err(e);
                        }
                    };
                    shown = seen_of(&pre.0);
                    if pre.0.result() != ActionResult::Refused {
                        Ok(summary_of(&pre.0))
                    } else if let Some(sources) = pre.0.unknown_holders() {
                        offer = Some(sources);
                        Ok(summary_of(&pre.0))
                    } else {
                        Err(pre)
                    }
                } else {
                    Ok(String::new())
                };
            match summary {
                // Refused by the preflight: that is the answer, and it needs no approval.
                Err(pre) => {
                    confirmed_by = "not_needed";
                    Ok(pre)
                }
                Ok(summary) => {
                    let (asked, saw) = confirm(
                        &cx.peer,
                        &cx.confirm,
                        action,
                        &target,
                        confirm_arg.as_deref(),
                        &summary,
                        offer.as_deref(),
                        shown.as_ref(),
                    )
                    .await;
                    seen = saw;
                    let approved = match asked {
                        Confirmed::Yes(how) => Some((how, false)),
                        Confirmed::YesOverriding(how) => Some((how, true)),
                        Confirmed::No(why) => {
                            return Err(refuse_early(cx, ctx_ref, node, action, &target, why).await);
                        }
                        Confirmed::Ask(ask) => return Err(ToolError::InputRequired(ask)),
                    };
                    match approved {
                        Some((how, over)) => {
                            confirmed_by = how;
                            overrode = over;
                            // Evidence first: the action may destroy the state support asks for. A
                            // failed collection stops the action; only an explicit skip acts without.
                            if !skip_evidence {
                                match super::evidence::collect(cx, &t, None).await {
                                    Ok((e, _)) => evidence = Some(e),
                                    Err(e) => {
                                        let why = format!(
                                            "evidence collection failed, so nothing was done: {e}\n\
                                             (call again with skip_evidence=true to act without it)"
                                        );
                                        audit(
                                            cx,
                                            ctx_ref,
                                            node,
                                            action,
                                            &target,
                                            "refused",
                                            &why,
                                            Some(how),
                                        )
                                        .await;
                                        return Err(ToolError::Invalid(why));
                                    }
                                }
                            }
                            // The act resets the GPU the person saw, and an override covers the
                            // unknowns they saw, nothing found since.
                            let act = match &seen {
                                Some(s) => request.clone().bound(s),
                                None => request.clone(),
                            };
                            let act = if over { act.overridden() } else { act };
                            cx.probe_report(action, &t, act, pick).await
                        }
                        None => unreachable!("every other answer returned above"),
                    }
                }
            }
        };
        let (report, run) = match outcome {
            Ok(x) => x,
            Err(e) => {
                let e_text = e.to_string();
                audit(
                    cx,
                    ctx_ref,
                    node,
                    action,
                    &target,
                    "error",
                    &e_text,
                    Some(confirmed_by),
                )
                .await;
                return Err(e);
            }
        };
        let result = result_name(report.result());
        // What a later `confirm` repeats to bind the act to what this dry run showed: a reset's GPU, a
        // kill's process.
        let confirm_with = (dry_run && report.result() != ActionResult::Refused)
            .then(|| seen_of(&report))
            .flatten()
            .map(|s| super::confirm::Seen {
                pin: s.pin.filter(|p| !p.is_empty()),
                unknown: Vec::new(),
                process: s.process,
            })
            .filter(|s| s.pin.is_some() || s.process.is_some())
            .map(|s| format!("{target}@{}", s.arg(false)));
        let mut message = summary_of(&report);
        if confirmed_by == "confirm_argument"
            && let Some(s) = seen
                .as_ref()
                .filter(|s| s.pin.is_some() || s.process.is_some())
        {
            // Said in the audit: the act was bound to the GPU (or process) a dry run showed, not only to
            // an index (or a pid).
            let pin = super::confirm::Seen {
                pin: s.pin.clone(),
                unknown: Vec::new(),
                process: s.process.clone(),
            };
            message.insert_str(0, &format!("bound by confirm to {}; ", pin.arg(false)));
        }
        if overrode {
            // The Event names the override and both lists: what the person saw when they overrode, and
            // what the act found (an act that found more refused).
            let saw = seen.as_ref().map(|s| s.unknown.clone()).unwrap_or_default();
            let found = gpu_diag::operator::unknown_items(report.checks());
            message.insert_str(
                0,
                &format!(
                    "OVERRIDE of unknown GPU holders by the person who confirmed; unknowns the person saw: \
                     [{}]; unknowns at the act: [{}]; ",
                    saw.join(" | "),
                    found.join(" | ")
                ),
            );
        }
        if let Some(n) = evidence_note(evidence.as_ref(), skip_evidence && !dry_run) {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&n);
        }
        let audit = audit(
            cx,
            ctx_ref,
            node,
            action,
            &target,
            result,
            &message,
            Some(confirmed_by),
        )
        .await;
        Ok(OperatorOutput {
            node: t.node_name.clone(),
            context: t.context.clone(),
            action: action.to_string(),
            target,
            result: result.to_string(),
            confirmed_by: confirmed_by.to_string(),
            human_confirmed: human_confirmed(confirmed_by),
            overrode_unknown_holders: overrode,
            audit,
            evidence,
            evidence_skipped: skip_evidence && !dry_run,
            run: Some(run),
            confirm_with,
            report,
        })
    }
}

/// One operator action answered by the API server (cordon, mark, clear): the checks each makes first,
/// confirmation unless it is a dry run, and the audit of what the API server answered.
pub struct ClusterAction<'a> {
    cx: &'a Cx,
    pub cluster: Arc<dyn ClusterBackend>,
    tool: &'static str,
    node: NodeTarget,
}

impl<'a> ClusterAction<'a> {
    /// A cluster to act on (`what` says what local mode lacks: `to cordon`), a valid node name and a
    /// known context, checked in that order.
    pub fn start(
        cx: &'a Cx,
        tool: &'static str,
        what: &str,
        node: NodeTarget,
    ) -> Result<Self, ToolError> {
        let cluster = cx.cluster_for(tool, what)?;
        check_node_name(&node.node_name)?;
        cx.check_context(node.context.as_deref())?;
        Ok(Self {
            cx,
            cluster,
            tool,
            node,
        })
    }

    pub fn node(&self) -> &str {
        &self.node.node_name
    }

    pub fn context(&self) -> Option<&str> {
        self.node.context.as_deref()
    }

    /// How `action` on `target` was confirmed (`not_needed` for a dry run), or the audited refusal.
    pub async fn confirm(
        &self,
        action: &str,
        target: &str,
        dry_run: bool,
        confirm_arg: Option<&str>,
        summary: &str,
    ) -> Result<&'static str, ToolError> {
        if dry_run {
            return Ok("not_needed");
        }
        let cx = self.cx;
        if let Some(c) = confirm_arg
            && super::confirm::split_confirm(c).1.is_some()
        {
            let why = format!(
                "{}: `confirm` carries a pin after `@`, which only binds a GPU reset; repeat the target \
                 `{target}` alone. Nothing was done.",
                self.tool
            );
            return Err(refuse_early(cx, self.context(), self.node(), action, target, why).await);
        }
        match confirm(
            &cx.peer,
            &cx.confirm,
            self.tool,
            target,
            confirm_arg,
            summary,
            None,
            None,
        )
        .await
        .0
        {
            // Nothing is offered to override here: an override cannot come back.
            Confirmed::Yes(how) | Confirmed::YesOverriding(how) => Ok(how),
            Confirmed::No(why) => {
                Err(refuse_early(cx, self.context(), self.node(), action, target, why).await)
            }
            Confirmed::Ask(ask) => Err(ToolError::InputRequired(ask)),
        }
    }

    /// Audit what the API server answered and build the answer; `judge` gives a success's result
    /// (`done`, `dry_run`) and audit message. A refusal by RBAC is audited `refused`, any other error
    /// `failed`.
    pub async fn finish<R>(
        self,
        action: &str,
        target: String,
        confirmed_by: &str,
        outcome: Result<R, ClusterError>,
        judge: impl FnOnce(&R) -> (&'static str, String),
    ) -> Result<OperatorOutput<R>, ToolError> {
        let (cx, ctx, node) = (self.cx, self.context(), self.node());
        match outcome {
            Ok(report) => {
                let (result, message) = judge(&report);
                let audit = audit(
                    cx,
                    ctx,
                    node,
                    action,
                    &target,
                    result,
                    &message,
                    Some(confirmed_by),
                )
                .await;
                Ok(OperatorOutput {
                    node: node.to_string(),
                    context: self.node.context.clone(),
                    action: action.to_string(),
                    target,
                    result: result.into(),
                    confirmed_by: confirmed_by.to_string(),
                    human_confirmed: human_confirmed(confirmed_by),
                    overrode_unknown_holders: false,
                    audit,
                    // Evidence is kept before the probe-run (destructive) actions only.
                    evidence: None,
                    evidence_skipped: false,
                    run: None,
                    confirm_with: None,
                    report,
                })
            }
            Err(e) => {
                let result = if matches!(e, ClusterError::Forbidden(_)) {
                    "refused"
                } else {
                    "failed"
                };
                let e_text = e.to_string();
                audit(
                    cx,
                    ctx,
                    node,
                    action,
                    &target,
                    result,
                    &e_text,
                    Some(confirmed_by),
                )
                .await;
                Err(ToolError::ClusterWrite(e))
            }
        }
    }
}

/// The audit record's words on the evidence: the archive and its digest, or that it was skipped.
pub fn evidence_note(e: Option<&super::evidence::Evidence>, skipped: bool) -> Option<String> {
    match (e, skipped) {
        (Some(e), _) => Some(format!(
            "evidence {} sha256:{} (nvidia-bug-report.sh {})",
            e.name, e.sha256, e.bug_report.status
        )),
        (None, true) => Some("evidence skipped (skip_evidence=true)".into()),
        (None, false) => None,
    }
}

/// One line per blocking or warning check, then the outcome (`outcome`, and its error).
pub fn summary(r: &impl ActionReport, outcome: Option<String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    if r.result() == ActionResult::Refused {
        parts.extend(r.reasons().iter().cloned());
    } else {
        parts.extend(
            r.checks()
                .iter()
                .filter(|c| c.status == CheckStatus::Warn)
                .map(|c| format!("warn {}: {}", c.check, c.evidence)),
        );
    }
    let mut s = parts.join("; ");
    if let Some(how) = outcome {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&how);
        if let Some(e) = r.error() {
            s.push_str(&format!("; error: {e}"));
        }
    }
    s
}

pub fn render_checks(out: &mut String, checks: &[gpu_diag::operator::Check]) {
    for c in checks {
        let mark = match c.status {
            CheckStatus::Pass => "ok   ",
            CheckStatus::Warn => "WARN ",
            CheckStatus::Block => "BLOCK",
        };
        out.push_str(&format!("  {mark} {}: {}\n", c.check, c.evidence));
    }
}

/// The text of a probe-run action's answer: the headline, what it acts on (`subject`), the preflight
/// checks, the plan unless it was refused, what happened (`outcome` writes it) and the error.
pub fn render_action<R: ActionReport>(
    o: &OperatorOutput<R>,
    subject: Option<String>,
    outcome: impl FnOnce(&mut String),
) -> String {
    let r = &o.report;
    let mut out = headline(o, r.simulated());
    out.push_str(subject.as_deref().unwrap_or_default());
    out.push_str("checks:\n");
    render_checks(&mut out, r.checks());
    if r.result() != ActionResult::Refused {
        out.push_str("plan:\n");
        for p in r.plan() {
            out.push_str(&format!("  {}: {}\n", p.action, p.detail));
        }
    }
    outcome(&mut out);
    if let Some(e) = r.error() {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

pub fn headline<R>(o: &OperatorOutput<R>, simulated: bool) -> String {
    let what = match o.result.as_str() {
        "refused" => "REFUSED (nothing was done)",
        "dry_run" => "preflight only (dry run, nothing was done)",
        "simulated" => "allowed; simulated node, so nothing was done",
        "done" => "DONE",
        _ => "FAILED",
    };
    let evidence = match (&o.evidence, o.evidence_skipped) {
        (Some(e), _) => format!(
            "evidence first: {} ({} bytes, sha256 {}; nvidia-bug-report.sh {}) in {}\n",
            e.name, e.bytes, e.sha256, e.bug_report.status, e.dir
        ),
        (None, true) => "evidence: skipped (skip_evidence=true)\n".into(),
        (None, false) => String::new(),
    };
    // Where no person was asked, say so plainly: the model may have filled `confirm` itself.
    let nobody = if o.confirmed_by == "confirm_argument" {
        "NO PERSON WAS ASKED: this client declares neither elicitation nor input requests, so only the \
         `confirm` argument (which the model may fill itself) approved this action\n"
    } else {
        ""
    };
    let overrode = if o.overrode_unknown_holders {
        "OVERRIDE: the person who confirmed went ahead although no source could say who holds the GPU \
         (the warning below names the sources); the audit records it\n"
    } else {
        ""
    };
    let confirm_with = match &o.confirm_with {
        Some(c) => format!(
            "to act where no person can be asked: confirm=\"{c}\" (binds the act to this GPU)\n"
        ),
        None => String::new(),
    };
    format!(
        "{} {}: {what}{}\nconfirmed by: {}; audit: user {}{}\n{nobody}{overrode}{evidence}{confirm_with}",
        o.action,
        o.target,
        if simulated { " [simulated]" } else { "" },
        o.confirmed_by,
        o.audit.user,
        match (&o.audit.event, &o.audit.event_error) {
            (Some(e), _) => format!(", Event {e}"),
            (None, Some(err)) => format!(", no Event ({err})"),
            (None, None) => ", stderr log only (local mode)".into(),
        }
    )
}
