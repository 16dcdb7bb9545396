//! What the operator tools share: confirmation (MCP elicitation, or a `confirm` argument repeating the
//! target), the audit trail, and the preflight-confirm-act sequence of the probe-run actions.
//!
//! Before acting each operator tool asks for confirmation: through MCP elicitation when the client
//! declared it (a person answers in the host's UI), otherwise the call must carry `confirm` repeating the
//! target exactly (`gpu-node-5/pid/12345`, `gpu-node-5/gpu/3`, `gpu-node-5`). Protocol 2026-07-28 forbids
//! server-to-client requests, so there `confirm` is the only way. The preflight itself is the probe's
//! (`node-probe kill|reset`), judged by `gpu_diag::operator`.
//!
//! Audit: every action, allowed or refused, is a JSON line on stderr and (cluster mode) a Kubernetes Event
//! on the Node with the action, the target, the kubeconfig user (SelfSubjectReview) and the result.

use std::sync::Arc;

use gpu_diag::command;
use gpu_diag::contract::Report;
use gpu_diag::operator::{ActionReport, ActionResult, CheckStatus};
use rmcp::model::{
    ClientResult, ElicitRequestParams, ElicitationAction, ElicitationSchema, ProtocolVersion,
    Request, ServerRequest,
};
use rmcp::{Peer, RoleServer};
use schemars::JsonSchema;
use serde::Serialize;

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
    /// How the action was confirmed: `elicitation`, `confirm_argument`, or `not_needed` (dry run).
    pub confirmed_by: String,
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

/// How a confirmation went.
pub enum Confirmed {
    Yes(&'static str),
    /// Refused: the message for the caller.
    No(String),
}

/// Whether this client can be asked through elicitation (declared the capability on a protocol that still
/// allows server-to-client requests).
pub fn can_elicit(peer: &Peer<RoleServer>) -> bool {
    let Some(info) = peer.peer_info() else {
        return false;
    };
    info.protocol_version < ProtocolVersion::V_2026_07_28
        && info
            .capabilities
            .elicitation
            .as_ref()
            .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// Ask the user through elicitation to approve `target`.
async fn elicit(peer: &Peer<RoleServer>, target: &str, summary: &str) -> Confirmed {
    let schema = match ElicitationSchema::builder()
        .required_bool("approve")
        .description("Set approve to true to perform the action.")
        .build()
    {
        Ok(s) => s,
        Err(e) => return Confirmed::No(format!("cannot build the confirmation form: {e}")),
    };
    let req =
        ServerRequest::ElicitRequest(Request::new(ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: format!("Approve this operator action on {target}?\n{summary}"),
            requested_schema: schema,
        }));
    match peer.send_request(req).await {
        Ok(ClientResult::ElicitResult(r)) => match r.action {
            ElicitationAction::Accept
                if r.content
                    .as_ref()
                    .and_then(|c| c.get("approve"))
                    .and_then(|v| v.as_bool())
                    == Some(true) =>
            {
                Confirmed::Yes("elicitation")
            }
            ElicitationAction::Accept => {
                Confirmed::No(format!("the user did not approve the action on `{target}`"))
            }
            ElicitationAction::Decline => {
                Confirmed::No(format!("the user declined the action on `{target}`"))
            }
            _ => Confirmed::No(format!("the user cancelled the action on `{target}`")),
        },
        Ok(other) => Confirmed::No(format!(
            "the client answered the confirmation request with {other:?}"
        )),
        Err(e) => Confirmed::No(format!("the confirmation request failed: {e}")),
    }
}

/// The `confirm` argument check: given and equal to the target, else why not.
fn check_confirm(tool: &str, target: &str, confirm: Option<&str>) -> Result<(), String> {
    match confirm {
        Some(c) if c == target => Ok(()),
        Some(c) => Err(format!(
            "confirmation mismatch: `confirm` must repeat the target exactly, expected `{target}`, got \
             `{c}`. Nothing was done."
        )),
        None => Err(format!(
            "{tool} acts on `{target}` and needs confirmation: this client does not support elicitation, \
             so call again with confirm=\"{target}\" once the user has approved it. Nothing was done."
        )),
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

/// Record one operator action: a JSON line on stderr, and an Event on the Node in cluster mode.
pub async fn audit(
    cx: &Cx,
    context: Option<&str>,
    node: &str,
    action: &str,
    target: &str,
    result: &str,
    message: &str,
) -> AuditRecord {
    let user = audit_user(cx, context).await;
    let ev = AuditEvent {
        node: node.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        user: user.clone(),
        result: result.to_string(),
        message: message.to_string(),
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
    audit(cx, context, node, action, target, "refused", &why).await;
    ToolError::Invalid(why)
}

/// Confirmation: elicitation when the client can, else the `confirm` argument.
pub async fn confirm(
    peer: &Peer<RoleServer>,
    tool: &str,
    target: &str,
    confirm: Option<&str>,
    summary: &str,
) -> Confirmed {
    // A wrong `confirm` is refused even when elicitation is possible: it names another target.
    if let Some(c) = confirm
        && c != target
    {
        return match check_confirm(tool, target, Some(c)) {
            Err(e) => Confirmed::No(e),
            Ok(()) => Confirmed::Yes("confirm_argument"),
        };
    }
    if can_elicit(peer) {
        return elicit(peer, target, summary).await;
    }
    match check_confirm(tool, target, confirm) {
        Ok(()) => Confirmed::Yes("confirm_argument"),
        Err(e) => Confirmed::No(e),
    }
}

/// What every destructive probe-run action's description says of the evidence kept before it acts.
macro_rules! evidence_first_doc {
    () => {
        " Before acting it keeps the node's evidence archive (as collect_evidence; the audit names it and \
its SHA-256); skip_evidence=true acts without it, and a failed collection stops the action."
    };
}
pub(crate) use evidence_first_doc;

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
        let confirmed_by;
        let mut evidence = None;
        let outcome = if dry_run {
            confirmed_by = "not_needed";
            run(true).await
        } else {
            // With elicitation the user sees the preflight before approving; a refusal needs no approval.
            let wrong_confirm = confirm_arg.as_deref().is_some_and(|c| c != target);
            let summary = if can_elicit(&cx.peer) && !wrong_confirm {
                let pre = match run(true).await {
                    Ok(p) => p,
                    Err(e) => {
                        audit(cx, ctx_ref, node, action, &target, "error", &e.to_string()).await;
                        return Err(e);
                    }
                };
                if pre.0.result() == ActionResult::Refused {
                    Err(pre)
                } else {
                    Ok(summary_of(&pre.0))
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
                    match confirm(&cx.peer, action, &target, confirm_arg.as_deref(), &summary).await
                    {
                        Confirmed::Yes(how) => {
                            confirmed_by = how;
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
                                        audit(cx, ctx_ref, node, action, &target, "refused", &why)
                                            .await;
                                        return Err(ToolError::Invalid(why));
                                    }
                                }
                            }
                            run(false).await
                        }
                        Confirmed::No(why) => {
                            return Err(refuse_early(cx, ctx_ref, node, action, &target, why).await);
                        }
                    }
                }
            }
        };
        let (report, run) = match outcome {
            Ok(x) => x,
            Err(e) => {
                audit(cx, ctx_ref, node, action, &target, "error", &e.to_string()).await;
                return Err(e);
            }
        };
        let result = result_name(report.result());
        let mut message = summary_of(&report);
        if let Some(n) = evidence_note(evidence.as_ref(), skip_evidence && !dry_run) {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&n);
        }
        let audit = audit(cx, ctx_ref, node, action, &target, result, &message).await;
        Ok(OperatorOutput {
            node: t.node_name.clone(),
            context: t.context.clone(),
            action: action.to_string(),
            target,
            result: result.to_string(),
            confirmed_by: confirmed_by.to_string(),
            audit,
            evidence,
            evidence_skipped: skip_evidence && !dry_run,
            run: Some(run),
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
        match confirm(&self.cx.peer, self.tool, target, confirm_arg, summary).await {
            Confirmed::Yes(how) => Ok(how),
            Confirmed::No(why) => {
                Err(refuse_early(self.cx, self.context(), self.node(), action, target, why).await)
            }
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
                let audit = audit(cx, ctx, node, action, &target, result, &message).await;
                Ok(OperatorOutput {
                    node: node.to_string(),
                    context: self.node.context.clone(),
                    action: action.to_string(),
                    target,
                    result: result.into(),
                    confirmed_by: confirmed_by.to_string(),
                    audit,
                    // Evidence is kept before the probe-run (destructive) actions only.
                    evidence: None,
                    evidence_skipped: false,
                    run: None,
                    report,
                })
            }
            Err(e) => {
                let result = if matches!(e, ClusterError::Forbidden(_)) {
                    "refused"
                } else {
                    "failed"
                };
                audit(cx, ctx, node, action, &target, result, &e.to_string()).await;
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
    format!(
        "{} {}: {what}{}\nconfirmed by: {}; audit: user {}{}\n{evidence}",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_must_repeat_the_target() {
        assert!(check_confirm("kill_gpu_process", "n/pid/5", Some("n/pid/5")).is_ok());
        let e = check_confirm("kill_gpu_process", "n/pid/5", Some("n/pid/6")).unwrap_err();
        assert!(e.contains("expected `n/pid/5`, got `n/pid/6`"), "{e}");
        let e = check_confirm("reset_gpu", "n/gpu/3", None).unwrap_err();
        assert!(e.contains("confirm=\"n/gpu/3\""), "{e}");
    }
}
