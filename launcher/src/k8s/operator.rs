//! Operator-mode calls to the API server: cordon/uncordon a node (`patch` on nodes), the audit Event on
//! the Node (`create` on core/v1 events), and who the kubeconfig user is (SelfSubjectReview, allowed to
//! every authenticated user).

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::cluster::{AuditEvent, ClusterError, CordonResult};

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

fn api_err(action: &str, e: kube::Error) -> ClusterError {
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

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
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
        reporting_instance: Some(crate::k8s::pod::launcher_host()),
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
