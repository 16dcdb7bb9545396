//! Operator-mode calls to the API server: cordon/uncordon a node (`patch` on nodes), the audit Event on
//! the Node (`create` on core/v1 events), and who the kubeconfig user is (SelfSubjectReview, allowed to
//! every authenticated user).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, NodeCondition, ObjectReference, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::cluster::labels::{label_value, launcher_host};
use crate::cluster::{AuditEvent, ClusterError, CordonResult, MarkRequest, MarkResult, NodeMark};

/// Annotation on a cordoned node: why, as given to `cordon_gpu_node`.
pub const CORDON_REASON_ANNOTATION: &str = "k8s-gpu-mcp.io/cordon-reason";
/// Labels on audit Events, so they can be listed by action and result.
pub const EVENT_ACTION_LABEL: &str = "k8s-gpu-mcp.io/action";
pub const EVENT_RESULT_LABEL: &str = "k8s-gpu-mcp.io/result";
/// Annotations carrying the structured audit fields (a user name is not a valid label value).
pub const EVENT_USER_ANNOTATION: &str = "k8s-gpu-mcp.io/user";
pub const EVENT_TARGET_ANNOTATION: &str = "k8s-gpu-mcp.io/target";
/// Node events live in `default`, where kubelet puts its own.
pub const EVENT_NAMESPACE: &str = "default";
pub const COMPONENT: &str = "k8s-gpu-mcp";

pub(crate) fn api_err(action: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) if s.is_forbidden() => ClusterError::Forbidden(format!(
            "{action}: {} (operator actions need the k8s-gpu-mcp-operator ClusterRole, see deploy/rbac.yaml)",
            s.message
        )),
        e => ClusterError::Api(format!("{action}: {e}")),
    }
}

/// The merge patch that cordons (with the reason annotation) or uncordons (removing it).
pub fn cordon_patch(reason: &str, on: bool) -> serde_json::Value {
    let annotation = if on {
        serde_json::Value::String(reason.to_string())
    } else {
        serde_json::Value::Null
    };
    serde_json::json!({
        "spec": {"unschedulable": on},
        "metadata": {"annotations": {CORDON_REASON_ANNOTATION: annotation}},
    })
}

pub async fn cordon(
    client: Client,
    node: &str,
    reason: &str,
    on: bool,
) -> Result<CordonResult, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let before = nodes
        .get_opt(node)
        .await
        .map_err(|e| api_err(&format!("get node {node}"), e))?
        .ok_or_else(|| ClusterError::NodeNotFound(node.to_string()))?;
    let was = before
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    // Patched even when already in the wanted state: the answer then reflects the caller's permission.
    let after = nodes
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(cordon_patch(reason, on)),
        )
        .await
        .map_err(|e| {
            api_err(
                &format!("{} node {node}", if on { "cordon" } else { "uncordon" }),
                e,
            )
        })?;
    Ok(CordonResult {
        node: node.to_string(),
        unschedulable_before: was,
        unschedulable: after
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false),
        reason: after
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CORDON_REASON_ANNOTATION))
            .cloned(),
    })
}

/// The scheduler signal of `mark_gpu_node`: one key for the taint and the label (a domain of ours, so no
/// other controller's taint or label is touched), and a custom node condition type.
pub const MARK_KEY: &str = "gpu-diag.k8s-gpu-mcp.io/unhealthy";
pub const MARK_CONDITION: &str = "GpuDiagUnhealthy";
/// The condition's reason once the mark is cleared (status False, as Node Problem Detector leaves a
/// resolved problem's condition).
pub const MARK_CLEARED_REASON: &str = "GpuDiagMarkCleared";
/// Field manager of our node and node-status patches.
pub const FIELD_MANAGER: &str = "k8s-gpu-mcp";

fn params(dry_run: bool) -> PatchParams {
    PatchParams {
        dry_run,
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

fn taint_text(t: &Taint) -> String {
    match &t.value {
        Some(v) if !v.is_empty() => format!("{}={}:{}", t.key, v, t.effect),
        _ => format!("{}:{}", t.key, t.effect),
    }
}

fn our_taint(n: &Node) -> Option<&Taint> {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .find(|t| t.key == MARK_KEY)
}

fn our_label(n: &Node) -> Option<&String> {
    n.metadata.labels.as_ref().and_then(|l| l.get(MARK_KEY))
}

fn our_condition(n: &Node) -> Option<&NodeCondition> {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == MARK_CONDITION)
}

/// The mark on a node, for the list and scan tools: our condition True, or our taint or label left.
pub fn node_mark(n: &Node) -> Option<NodeMark> {
    let cond = our_condition(n).filter(|c| c.status == "True");
    let taint = our_taint(n);
    let label = our_label(n);
    if cond.is_none() && taint.is_none() && label.is_none() {
        return None;
    }
    let mut parts = Vec::new();
    if taint.is_some() {
        parts.push("taint".to_string());
    }
    if label.is_some() {
        parts.push("label".to_string());
    }
    if cond.is_some() {
        parts.push("condition".to_string());
    }
    let reason = cond
        .and_then(|c| c.reason.clone())
        .or_else(|| taint.and_then(|t| t.value.clone()))
        .or_else(|| label.cloned())
        .unwrap_or_default();
    Some(NodeMark {
        reason,
        since: cond.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0.to_string())),
        message: cond.and_then(|c| c.message.clone()),
        parts,
    })
}

fn result_of(n: &Node, dry_run: bool, changed: Vec<String>) -> MarkResult {
    let cond = our_condition(n);
    MarkResult {
        node: n.metadata.name.clone().unwrap_or_default(),
        dry_run,
        taint: our_taint(n).map(taint_text),
        label: our_label(n).map(|v| format!("{MARK_KEY}={v}")),
        condition: cond.map(|c| {
            format!(
                "{}={}{}",
                c.type_,
                c.status,
                c.reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        }),
        since: cond.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0.to_string())),
        changed,
    }
}

/// The taints with ours replaced by `ours` (or removed); every other taint kept as it is.
fn with_taint(n: &Node, ours: Option<Taint>) -> Vec<Taint> {
    let mut out: Vec<Taint> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != MARK_KEY)
        .collect();
    out.extend(ours);
    out
}

/// The merge patch of a node's taints and our label. Taints are one list without a merge key, so the
/// patch carries the whole list and the node's resourceVersion: a concurrent change (another controller's
/// taint) makes it fail with a conflict instead of being lost, and it is read and tried again.
fn node_patch(
    n: &Node,
    taints: Option<Vec<Taint>>,
    label: Option<Option<&str>>,
) -> serde_json::Value {
    let mut p = serde_json::json!({"metadata": {"resourceVersion": n.metadata.resource_version}});
    if let Some(t) = taints {
        p["spec"] = serde_json::json!({ "taints": t });
    }
    if let Some(l) = label {
        p["metadata"]["labels"] = serde_json::json!({ MARK_KEY: l });
    }
    p
}

/// The strategic merge patch of `nodes/status` with our condition: conditions merge by type, so the
/// kubelet's own (Ready, MemoryPressure, ...) are untouched.
fn condition_patch(
    status: &str,
    reason: &str,
    message: &str,
    since: jiff::Timestamp,
    now: jiff::Timestamp,
) -> serde_json::Value {
    serde_json::json!({"status": {"conditions": [{
        "type": MARK_CONDITION,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since.to_string(),
        "lastHeartbeatTime": now.to_string(),
    }]}})
}

pub(crate) async fn get(nodes: &Api<Node>, node: &str) -> Result<Node, ClusterError> {
    nodes
        .get_opt(node)
        .await
        .map_err(|e| api_err(&format!("get node {node}"), e))?
        .ok_or_else(|| ClusterError::NodeNotFound(node.to_string()))
}

/// Patch the node's taints and label, retried on a conflict (someone else changed the node meanwhile).
pub(crate) async fn patch_node(
    nodes: &Api<Node>,
    node: &str,
    dry_run: bool,
    what: &str,
    build: impl Fn(&Node) -> Option<serde_json::Value>,
) -> Result<Option<Node>, ClusterError> {
    for attempt in 0.. {
        let n = get(nodes, node).await?;
        let Some(patch) = build(&n) else {
            return Ok(None);
        };
        match nodes
            .patch(node, &params(dry_run), &Patch::Merge(patch))
            .await
        {
            Ok(after) => return Ok(Some(after)),
            Err(kube::Error::Api(s)) if attempt < 4 && s.is_conflict() => continue,
            Err(e) => return Err(api_err(&format!("{what} (patch nodes) on node {node}"), e)),
        }
    }
    unreachable!()
}

async fn patch_condition(
    nodes: &Api<Node>,
    node: &str,
    dry_run: bool,
    what: &str,
    patch: serde_json::Value,
) -> Result<Node, ClusterError> {
    nodes
        .patch_status(node, &params(dry_run), &Patch::Strategic(patch))
        .await
        .map_err(|e| api_err(&format!("{what} (patch nodes/status) on node {node}"), e))
}

pub async fn mark(client: Client, req: &MarkRequest) -> Result<MarkResult, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let node = req.node.as_str();
    let now = jiff::Timestamp::now();
    let before = get(&nodes, node).await?;
    let taint = req.taint_effect.as_ref().map(|effect| Taint {
        key: MARK_KEY.into(),
        value: Some(req.reason.clone()),
        effect: effect.clone(),
        time_added: None,
    });
    // Still True: the mark is renewed, and lastTransitionTime keeps saying since when.
    let since = our_condition(&before)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .unwrap_or(now);
    let cond = condition_patch("True", &req.reason, &req.message, since, now);
    // Both patches are first tried as a server-side dry run, so a missing permission (RBAC names the
    // resource, `nodes` or `nodes/status`) refuses the whole mark before any part of it is stored.
    let runs: &[bool] = if req.dry_run { &[true] } else { &[true, false] };
    let mut last = before.clone();
    let mut changed = Vec::new();
    for &dry in runs {
        changed.clear();
        let after_node = patch_node(&nodes, node, dry, "mark", |n| {
            let wanted_taints = with_taint(n, taint.clone());
            let have_taints = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            let taints = (wanted_taints != have_taints).then_some(wanted_taints);
            let wanted_label = req.label.then_some(req.reason.as_str());
            let label = (our_label(n).map(String::as_str) != wanted_label).then_some(wanted_label);
            (taints.is_some() || label.is_some()).then(|| node_patch(n, taints, label))
        })
        .await?;
        if our_taint(&before).map(taint_text) != taint.as_ref().map(taint_text) {
            changed.push(
                if taint.is_some() {
                    "taint set"
                } else {
                    "taint removed"
                }
                .to_string(),
            );
        }
        if our_label(&before).map(String::as_str) != req.label.then_some(req.reason.as_str()) {
            changed.push(
                if req.label {
                    "label set"
                } else {
                    "label removed"
                }
                .to_string(),
            );
        }
        let after = patch_condition(&nodes, node, dry, "mark", cond.clone()).await?;
        changed.push("condition set True".to_string());
        // The status answer carries the whole node; in a dry run it reflects the dry-run node patch only
        // when that one changed nothing, so the node patch's answer is merged in.
        last = after;
        if let Some(n) = after_node {
            last.spec = n.spec;
            last.metadata.labels = n.metadata.labels;
        }
    }
    Ok(result_of(&last, req.dry_run, changed))
}

pub async fn clear(
    client: Client,
    node: &str,
    note: &str,
    dry_run: bool,
) -> Result<MarkResult, ClusterError> {
    let nodes: Api<Node> = Api::all(client);
    let now = jiff::Timestamp::now();
    let before = get(&nodes, node).await?;
    let runs: &[bool] = if dry_run { &[true] } else { &[true, false] };
    let mut last = before.clone();
    let mut changed = Vec::new();
    for &dry in runs {
        changed.clear();
        let after_node = patch_node(&nodes, node, dry, "clear mark", |n| {
            let taints = our_taint(n).is_some().then(|| with_taint(n, None));
            let label = our_label(n).is_some().then_some(None);
            (taints.is_some() || label.is_some()).then(|| node_patch(n, taints, label))
        })
        .await?;
        if our_taint(&before).is_some() {
            changed.push("taint removed".to_string());
        }
        if our_label(&before).is_some() {
            changed.push("label removed".to_string());
        }
        let mut after = match after_node {
            Some(n) => n,
            None => last.clone(),
        };
        if our_condition(&before).is_some_and(|c| c.status == "True") {
            let s = patch_condition(
                &nodes,
                node,
                dry,
                "clear mark",
                condition_patch("False", MARK_CLEARED_REASON, note, now, now),
            )
            .await?;
            after.status = s.status;
            changed.push("condition set False".to_string());
        }
        last = after;
    }
    Ok(result_of(&last, dry_run, changed))
}

/// The core/v1 Event recording one operator action on a Node.
pub fn audit_event(ev: &AuditEvent, node_uid: Option<String>, now: jiff::Timestamp) -> Event {
    let ok = matches!(ev.result.as_str(), "done" | "dry_run" | "simulated");
    let reason = ev
        .action
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<String>();
    let mut message = format!(
        "action={} target={} user={} result={}",
        ev.action, ev.target, ev.user, ev.result
    );
    if !ev.message.is_empty() {
        message.push_str(": ");
        message.push_str(&ev.message);
    }
    // The API server caps an Event message at 1 KiB in events.k8s.io; keep core events as short.
    if message.len() > 1024 {
        let cut = (0..=1020)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        message.truncate(cut);
        message.push_str("...");
    }
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.k8s-gpu-mcp.", ev.node)),
            namespace: Some(EVENT_NAMESPACE.into()),
            labels: Some(
                [
                    (EVENT_ACTION_LABEL.to_string(), label_value(&ev.action)),
                    (EVENT_RESULT_LABEL.to_string(), label_value(&ev.result)),
                ]
                .into(),
            ),
            annotations: Some(
                [
                    (EVENT_USER_ANNOTATION.to_string(), ev.user.clone()),
                    (EVENT_TARGET_ANNOTATION.to_string(), ev.target.clone()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(ev.node.clone()),
            uid: node_uid,
            ..ObjectReference::default()
        },
        reason: Some(reason),
        action: Some(ev.action.clone()),
        message: Some(message),
        type_: Some(if ok { "Normal" } else { "Warning" }.into()),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(launcher_host()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        ..Event::default()
    }
}

pub async fn record_event(client: Client, ev: &AuditEvent) -> Result<String, ClusterError> {
    // The node's uid makes `kubectl describe node` list the Event; a missing node or no `get` leaves it out.
    let uid = Api::<Node>::all(client.clone())
        .get_opt(&ev.node)
        .await
        .ok()
        .flatten()
        .and_then(|n| n.metadata.uid);
    let events: Api<Event> = Api::namespaced(client, EVENT_NAMESPACE);
    let created = events
        .create(
            &PostParams::default(),
            &audit_event(ev, uid, jiff::Timestamp::now()),
        )
        .await
        .map_err(|e| api_err(&format!("create Event on node {}", ev.node), e))?;
    Ok(created.metadata.name.unwrap_or_default())
}

pub async fn whoami(client: Client) -> Result<String, ClusterError> {
    let api: Api<SelfSubjectReview> = Api::all(client);
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|e| api_err("SelfSubjectReview", e))?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| ClusterError::Api("SelfSubjectReview returned no username".into()))
}
