//! Operator tools, listed only with `--mode operator`: `kill_gpu_process`, `reset_gpu`,
//! `cordon_gpu_node`. All carry `destructiveHint`. Before acting each asks for confirmation: through MCP
//! elicitation when the client declared it (a person answers in the host's UI), otherwise the call must
//! carry `confirm` repeating the target exactly (`gpu-node-5/pid/12345`, `gpu-node-5/gpu/3`,
//! `gpu-node-5`). Protocol 2026-07-28 forbids server-to-client requests, so there `confirm` is the only
//! way. The preflight itself is the probe's (`node-probe kill|reset`), judged by `gpu_diag::operator`.
//!
//! Audit: every action, allowed or refused, is a JSON line on stderr and (cluster mode) a Kubernetes Event
//! on the Node with the action, the target, the kubeconfig user (SelfSubjectReview) and the result.

use gpu_diag::contract::Report;
use gpu_diag::operator::kill::KillReport;
use gpu_diag::operator::reset::ResetReport;
use gpu_diag::operator::{ActionResult, CheckStatus};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ClientResult, ElicitRequestParams, ElicitationAction, ElicitationSchema,
    ProtocolVersion, Request, RequestMetaObject, ServerRequest,
};
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cluster::{AuditEvent, CordonResult};
use crate::server::{Launcher, ProbeRun, error_result, structured_result};
use crate::tools::CallCtx;

/// The operator tool router, added to the server only in operator mode.
pub fn router() -> ToolRouter<Launcher> {
    Launcher::operator_router()
}

/// Longest grace period a kill may ask for (the probe refuses more).
const MAX_GRACE: u32 = gpu_diag::operator::kill::MAX_GRACE_SECONDS;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KillArgs {
    /// Kubernetes node name as `list_gpu_nodes` prints it; `local` in local mode.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// Host pid of the GPU process, as `get_gpu_processes` reports it.
    #[schemars(range(min = 2, max = 4194304))]
    pub pid: u32,
    /// Seconds between SIGTERM and SIGKILL (default 10, at most 300).
    #[serde(default)]
    #[schemars(with = "u32", range(min = 0, max = 300))]
    pub grace_seconds: Option<u32>,
    /// Run the preflight only: nothing is signalled and no confirmation is needed.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Confirmation: the target repeated exactly, `<node_name>/pid/<pid>` (e.g. `gpu-node-5/pid/12345`).
    /// Required unless the client supports elicitation, in which case the user is asked instead.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Kubeconfig context of the cluster the node is in. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetArgs {
    /// Kubernetes node name as `list_gpu_nodes` prints it; `local` in local mode.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// GPU index (`3`) or UUID (`GPU-...`), as `get_gpu_inventory` reports it.
    #[serde(deserialize_with = "string_or_index")]
    #[schemars(
        length(min = 1, max = 100),
        regex(pattern = r"^([0-9]{1,4}|[Gg][Pp][Uu]-[0-9A-Za-z-]{1,96})$")
    )]
    pub gpu: String,
    /// Run the preflight only (who holds the GPU, MIG, Fabric Manager, ...): no reset, no confirmation.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub dry_run: Option<bool>,
    /// Confirmation: the target repeated exactly, `<node_name>/gpu/<gpu>` (e.g. `gpu-node-5/gpu/3`).
    /// Required unless the client supports elicitation, in which case the user is asked instead.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Kubeconfig context of the cluster the node is in. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
}

/// A GPU given as `"3"`, `3` or `"GPU-..."`: clients send an index as a number as often as a string.
fn string_or_index<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Gpu {
        S(String),
        N(u32),
    }
    Ok(match Gpu::deserialize(d)? {
        Gpu::S(s) => s,
        Gpu::N(n) => n.to_string(),
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CordonArgs {
    /// Kubernetes node name as `list_gpu_nodes` prints it.
    #[schemars(length(min = 1, max = 253), regex(pattern = crate::server::NODE_NAME_PATTERN))]
    pub node_name: String,
    /// Why (recorded on the node and in the audit Event), e.g. `XID 79 on GPU 3`.
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
    /// True to uncordon (make the node schedulable again) instead.
    #[serde(default)]
    #[schemars(with = "bool")]
    pub uncordon: Option<bool>,
    /// Confirmation: the node name repeated exactly. Required unless the client supports elicitation.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 300))]
    pub confirm: Option<String>,
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
}

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

fn result_name(r: ActionResult) -> &'static str {
    match r {
        ActionResult::Refused => "refused",
        ActionResult::DryRun => "dry_run",
        ActionResult::Simulated => "simulated",
        ActionResult::Done => "done",
        ActionResult::Failed => "failed",
    }
}

/// How a confirmation went.
enum Confirmed {
    Yes(&'static str),
    /// Refused: the message for the caller.
    No(String),
}

/// Whether this client can be asked through elicitation (declared the capability on a protocol that still
/// allows server-to-client requests).
fn can_elicit(peer: &Peer<RoleServer>) -> bool {
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

impl Launcher {
    /// Who acts, for the audit trail.
    async fn audit_user(&self, context: Option<&str>) -> String {
        match &self.inner.cluster {
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
    async fn audit(
        &self,
        context: Option<&str>,
        node: &str,
        action: &str,
        target: &str,
        result: &str,
        message: &str,
    ) -> AuditRecord {
        let user = self.audit_user(context).await;
        let ev = AuditEvent {
            node: node.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            user: user.clone(),
            result: result.to_string(),
            message: message.to_string(),
        };
        let (event, event_error) = match &self.inner.cluster {
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
    async fn refuse_early(
        &self,
        context: Option<&str>,
        node: &str,
        action: &str,
        target: &str,
        why: String,
    ) -> CallToolResult {
        self.audit(context, node, action, target, "refused", &why)
            .await;
        error_result(why)
    }

    /// Confirmation: elicitation when the client can, else the `confirm` argument.
    async fn confirm(
        &self,
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

    /// One probe-run operator tool (kill or reset): preflight, confirmation, action, audit.
    #[allow(clippy::too_many_arguments)]
    async fn probe_action<R: Serialize>(
        &self,
        action: &str,
        node: String,
        context: Option<String>,
        target: String,
        args: Vec<String>,
        dry_run: bool,
        confirm: Option<String>,
        peer: &Peer<RoleServer>,
        ctx: &CallCtx,
        pick: impl Fn(Report) -> Option<R>,
        result_of: impl Fn(&R) -> ActionResult,
        summary_of: impl Fn(&R) -> String,
        render: impl Fn(&OperatorOutput<R>) -> String,
    ) -> CallToolResult {
        if let Err(e) = self.check_target(&node, context.as_deref()) {
            return error_result(e);
        }
        let ctx_ref = context.as_deref();
        let pick = &pick;
        let run = |extra: Option<&str>| {
            let mut a = args.clone();
            if let Some(x) = extra {
                a.push(x.to_string());
            }
            let node = node.clone();
            let context = context.clone();
            async move {
                let res = self
                    .probe(action, &node, context, a, &ctx.progress, ctx.cancel.clone())
                    .await?;
                match pick(res.report) {
                    Some(r) => Ok((r, res.run)),
                    None => Err(format!(
                        "node-probe on `{node}` answered with a different report than `{action}` asked \
                         for; the probe and launcher versions probably differ"
                    )),
                }
            }
        };
        let confirmed_by;
        let outcome = if dry_run {
            confirmed_by = "not_needed";
            run(Some("--dry-run")).await
        } else {
            // With elicitation the user sees the preflight before approving; a refusal needs no approval.
            let wrong_confirm = confirm.as_deref().is_some_and(|c| c != target);
            if can_elicit(peer) && !wrong_confirm {
                let pre = match run(Some("--dry-run")).await {
                    Ok(p) => p,
                    Err(e) => {
                        self.audit(ctx_ref, &node, action, &target, "error", &e)
                            .await;
                        return error_result(e);
                    }
                };
                if result_of(&pre.0) == ActionResult::Refused {
                    confirmed_by = "not_needed";
                    Ok(pre)
                } else {
                    match self
                        .confirm(
                            peer,
                            action,
                            &target,
                            confirm.as_deref(),
                            &summary_of(&pre.0),
                        )
                        .await
                    {
                        Confirmed::Yes(how) => {
                            confirmed_by = how;
                            run(None).await
                        }
                        Confirmed::No(why) => {
                            return self
                                .refuse_early(ctx_ref, &node, action, &target, why)
                                .await;
                        }
                    }
                }
            } else {
                match self
                    .confirm(peer, action, &target, confirm.as_deref(), "")
                    .await
                {
                    Confirmed::Yes(how) => {
                        confirmed_by = how;
                        run(None).await
                    }
                    Confirmed::No(why) => {
                        return self
                            .refuse_early(ctx_ref, &node, action, &target, why)
                            .await;
                    }
                }
            }
        };
        let (report, run) = match outcome {
            Ok(x) => x,
            Err(e) => {
                self.audit(ctx_ref, &node, action, &target, "error", &e)
                    .await;
                return error_result(e);
            }
        };
        let result = result_name(result_of(&report));
        let audit = self
            .audit(
                ctx_ref,
                &node,
                action,
                &target,
                result,
                &summary_of(&report),
            )
            .await;
        let out = OperatorOutput {
            node: node.clone(),
            context: context.clone(),
            action: action.to_string(),
            target,
            result: result.to_string(),
            confirmed_by: confirmed_by.to_string(),
            audit,
            run: Some(run),
            report,
        };
        let text = render(&out);
        structured_result(&out, text)
    }
}

/// One line per blocking or warning check, then the outcome.
fn summary(
    result: ActionResult,
    reasons: &[String],
    checks: &[gpu_diag::operator::Check],
) -> String {
    let mut parts: Vec<String> = Vec::new();
    if result == ActionResult::Refused {
        parts.extend(reasons.iter().cloned());
    } else {
        parts.extend(
            checks
                .iter()
                .filter(|c| c.status == CheckStatus::Warn)
                .map(|c| format!("warn {}: {}", c.check, c.evidence)),
        );
    }
    parts.join("; ")
}

fn kill_summary(r: &KillReport) -> String {
    let mut s = summary(r.result, &r.reasons, &r.checks);
    if let Some(o) = &r.outcome {
        let how = if o.exited_after_sigterm {
            "exited after SIGTERM".to_string()
        } else if o.sigkill_sent && o.exited {
            "killed with SIGKILL".to_string()
        } else {
            "still running".to_string()
        };
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&how);
        if let Some(e) = &o.error {
            s.push_str(&format!("; error: {e}"));
        }
    }
    s
}

fn reset_summary(r: &ResetReport) -> String {
    let mut s = summary(r.result, &r.reasons, &r.checks);
    if let Some(o) = &r.outcome {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(if o.verified {
            "reset and verified"
        } else {
            "reset not verified"
        });
        if let Some(e) = &o.error {
            s.push_str(&format!("; error: {e}"));
        }
    }
    s
}

fn cordon_error_text(e: &crate::cluster::ClusterError) -> String {
    use crate::cluster::ClusterError as E;
    let hint = match e {
        E::NodeNotFound(_) => "call list_gpu_nodes to see the node names",
        E::Forbidden(_) => {
            "cordon needs `patch` on nodes: bind the user to the k8s-gpu-mcp-operator ClusterRole \
             (deploy/rbac.yaml)"
        }
        _ => "check that the API server is reachable (`kubectl get nodes`)",
    };
    format!("{e}. Nothing was changed.\nhint: {hint}")
}

fn render_checks(out: &mut String, checks: &[gpu_diag::operator::Check]) {
    for c in checks {
        let mark = match c.status {
            CheckStatus::Pass => "ok   ",
            CheckStatus::Warn => "WARN ",
            CheckStatus::Block => "BLOCK",
        };
        out.push_str(&format!("  {mark} {}: {}\n", c.check, c.evidence));
    }
}

fn headline<R>(o: &OperatorOutput<R>, simulated: bool) -> String {
    let what = match o.result.as_str() {
        "refused" => "REFUSED (nothing was done)",
        "dry_run" => "preflight only (dry run, nothing was done)",
        "simulated" => "allowed; simulated node, so nothing was done",
        "done" => "DONE",
        _ => "FAILED",
    };
    format!(
        "{} {}: {what}{}\nconfirmed by: {}; audit: user {}{}\n",
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

fn render_kill(o: &OperatorOutput<KillReport>) -> String {
    let r = &o.report;
    let mut s = headline(o, r.simulated);
    if let Some(name) = &r.process_name {
        s.push_str(&format!(
            "process: pid {} {name} `{}` on GPU(s) {:?}\n",
            r.pid,
            r.cmdline.as_deref().unwrap_or(""),
            r.gpus
        ));
    }
    s.push_str("checks:\n");
    render_checks(&mut s, &r.checks);
    if r.result != ActionResult::Refused {
        s.push_str("plan:\n");
        for p in &r.plan {
            s.push_str(&format!("  {}: {}\n", p.action, p.detail));
        }
    }
    if let Some(oc) = &r.outcome {
        s.push_str(&format!(
            "outcome: SIGTERM sent {}, exited after SIGTERM {}, SIGKILL sent {}, exited {}, waited {} ms, \
             still on a GPU {}\n",
            oc.sigterm_sent,
            oc.exited_after_sigterm,
            oc.sigkill_sent,
            oc.exited,
            oc.waited_ms,
            oc.still_on_gpu
        ));
        for (b, a) in oc.memory_before.iter().zip(&oc.memory_after) {
            let mib = |v: Option<u64>| v.map_or("?".to_string(), |b| format!("{} MiB", b >> 20));
            s.push_str(&format!(
                "  GPU {}: used {} -> {}\n",
                b.gpu,
                mib(b.used_bytes),
                mib(a.used_bytes)
            ));
        }
        if let Some(e) = &oc.error {
            s.push_str(&format!("error: {e}\n"));
        }
    }
    s
}

fn render_reset(o: &OperatorOutput<ResetReport>) -> String {
    let r = &o.report;
    let mut s = headline(o, r.simulated);
    if let Some(t) = &r.target {
        s.push_str(&format!(
            "GPU {} {} {} {}\n",
            t.index,
            t.name.as_deref().unwrap_or(""),
            t.uuid.as_deref().unwrap_or(""),
            t.pci_bus_id.as_deref().unwrap_or("")
        ));
    }
    s.push_str("checks:\n");
    render_checks(&mut s, &r.checks);
    if r.result != ActionResult::Refused {
        s.push_str("plan:\n");
        for p in &r.plan {
            s.push_str(&format!("  {}: {}\n", p.action, p.detail));
        }
    }
    if let Some(oc) = &r.outcome {
        for c in &oc.commands {
            s.push_str(&format!(
                "ran `{}`: exit {:?}\n",
                c.argv.join(" "),
                c.exit_code
            ));
        }
        s.push_str(&format!("verified: {}\n", oc.verified));
        render_checks(&mut s, &oc.verification);
        if let Some(e) = &oc.error {
            s.push_str(&format!("error: {e}\n"));
        }
    }
    s
}

fn render_cordon(o: &OperatorOutput<CordonResult>) -> String {
    let r = &o.report;
    let mut s = headline(o, false);
    s.push_str(&format!(
        "node {}: unschedulable {} -> {}{}\n",
        r.node,
        r.unschedulable_before,
        r.unschedulable,
        r.reason
            .as_deref()
            .map(|x| format!(" (reason: {x})"))
            .unwrap_or_default()
    ));
    s
}

#[tool_router(router = operator_router, vis = "pub(crate)")]
impl Launcher {
    #[tool(
        name = "kill_gpu_process",
        title = "Kill a GPU process on a node",
        description = "OPERATOR ACTION. End one process that uses a GPU on the node: the probe checks that \
NVML lists the pid on a GPU of that node, that it is not pid 1, the probe, a kernel thread or a zombie, \
then sends SIGTERM, waits grace_seconds, sends SIGKILL if needed, and reports GPU memory before and \
after. Anything else is refused with the reason. Needs confirmation: elicitation when the client supports \
it, otherwise `confirm` = `<node_name>/pid/<pid>`. dry_run=true returns the preflight only. Every call is \
audited (Kubernetes Event on the Node + JSON log line).",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<OperatorOutput<KillReport>>(),
        input_schema = crate::server::input_schema::<KillArgs>()
    )]
    async fn kill_gpu_process(
        &self,
        Parameters(a): Parameters<KillArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let grace = a.grace_seconds.unwrap_or(10);
        let r = if grace > MAX_GRACE {
            error_result(format!(
                "grace_seconds {grace} is more than {MAX_GRACE}; nothing was done"
            ))
        } else if u64::from(grace) + 30 > self.inner.cfg.probe_timeout.as_secs() {
            error_result(format!(
                "grace_seconds {grace} does not fit in the probe deadline ({} s, --probe-timeout): use at \
                 most {} or restart the launcher with a longer --probe-timeout; nothing was done",
                self.inner.cfg.probe_timeout.as_secs(),
                self.inner.cfg.probe_timeout.as_secs().saturating_sub(30)
            ))
        } else {
            let target = format!("{}/pid/{}", a.node_name, a.pid);
            self.probe_action(
                "kill_gpu_process",
                a.node_name,
                a.context,
                target,
                vec![
                    "kill".into(),
                    "--pid".into(),
                    a.pid.to_string(),
                    "--grace-seconds".into(),
                    grace.to_string(),
                ],
                a.dry_run.unwrap_or(false),
                a.confirm,
                &peer,
                &ctx,
                |r| match r {
                    Report::Kill(k) => Some(*k),
                    _ => None,
                },
                |k: &KillReport| k.result,
                kill_summary,
                render_kill,
            )
            .await
        };
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "reset_gpu",
        title = "Reset a GPU on a node",
        description = "OPERATOR ACTION. Reset one GPU with the host's `nvidia-smi -r` after a preflight: no \
process on the GPU and no holder of its /dev/nvidia* node (device plugin, DCGM, dcgm-exporter, GFD, \
persistenced), the GPU still on the bus (a lost GPU needs a reboot), Fabric Manager running on Ampere \
NVSwitch systems (Hopper+ do not need it), pre-Ampere NVLink GPUs refused; MIG, persistence and pending \
row remaps are reported. Then verifies the GPU answers with recovery action none. dry_run=true returns \
the preflight only. Needs confirmation: elicitation, or `confirm` = `<node_name>/gpu/<gpu>`. Audited.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = true),
        output_schema = crate::server::output_schema::<OperatorOutput<ResetReport>>(),
        input_schema = crate::server::input_schema::<ResetArgs>()
    )]
    async fn reset_gpu(
        &self,
        Parameters(a): Parameters<ResetArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let target = format!("{}/gpu/{}", a.node_name, a.gpu);
        let r = self
            .probe_action(
                "reset_gpu",
                a.node_name,
                a.context,
                target,
                vec!["reset".into(), "--gpu".into(), a.gpu.clone()],
                a.dry_run.unwrap_or(false),
                a.confirm,
                &peer,
                &ctx,
                |r| match r {
                    Report::Reset(x) => Some(*x),
                    _ => None,
                },
                |x: &ResetReport| x.result,
                reset_summary,
                render_reset,
            )
            .await;
        ctx.progress.finish().await;
        r
    }

    #[tool(
        name = "cordon_gpu_node",
        title = "Cordon or uncordon a GPU node",
        description = "OPERATOR ACTION. Cordon a node (no new pods are scheduled on it; running pods stay) \
with a recorded reason, or uncordon it with uncordon=true. Answered by the API server (needs `patch` on \
nodes: the k8s-gpu-mcp-operator ClusterRole). Needs confirmation: elicitation, or `confirm` = \
`<node_name>`. Audited with a Kubernetes Event on the Node.",
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true),
        output_schema = crate::server::output_schema::<OperatorOutput<CordonResult>>(),
        input_schema = crate::server::input_schema::<CordonArgs>()
    )]
    async fn cordon_gpu_node(
        &self,
        Parameters(a): Parameters<CordonArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> CallToolResult {
        let ctx = CallCtx::new(&meta, &peer, ct);
        let r = self.do_cordon(a, &peer).await;
        ctx.progress.finish().await;
        r
    }
}

impl Launcher {
    async fn do_cordon(&self, a: CordonArgs, peer: &Peer<RoleServer>) -> CallToolResult {
        let Some(cluster) = self.inner.cluster.clone() else {
            return error_result(
                "cordon_gpu_node needs a cluster: this server runs in local mode, where there is no node \
                 to cordon",
            );
        };
        if let Err(e) = crate::server::check_node_name(&a.node_name) {
            return error_result(e);
        }
        if let Err(e) = self.check_context(a.context.as_deref()) {
            return error_result(e);
        }
        let on = !a.uncordon.unwrap_or(false);
        let action = if on {
            "cordon_gpu_node"
        } else {
            "uncordon_gpu_node"
        };
        let node = a.node_name.clone();
        let target = node.clone();
        let ctx = a.context.as_deref();
        let summary = format!(
            "{} node {node}: {}",
            if on { "cordon" } else { "uncordon" },
            a.reason
        );
        let confirmed_by = match self
            .confirm(
                peer,
                "cordon_gpu_node",
                &target,
                a.confirm.as_deref(),
                &summary,
            )
            .await
        {
            Confirmed::Yes(how) => how,
            Confirmed::No(why) => return self.refuse_early(ctx, &node, action, &target, why).await,
        };
        match cluster.cordon(ctx, &node, &a.reason, on).await {
            Ok(res) => {
                let audit = self
                    .audit(ctx, &node, action, &target, "done", &a.reason)
                    .await;
                let out = OperatorOutput {
                    node: node.clone(),
                    context: a.context.clone(),
                    action: action.to_string(),
                    target,
                    result: "done".into(),
                    confirmed_by: confirmed_by.to_string(),
                    audit,
                    run: None,
                    report: res,
                };
                let text = render_cordon(&out);
                structured_result(&out, text)
            }
            Err(e) => {
                let result = if matches!(e, crate::cluster::ClusterError::Forbidden(_)) {
                    "refused"
                } else {
                    "failed"
                };
                let msg = e.to_string();
                self.audit(ctx, &node, action, &target, result, &msg).await;
                error_result(cordon_error_text(&e))
            }
        }
    }
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
