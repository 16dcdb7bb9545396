//! Leftover probe pods: a launcher killed mid-call (SIGKILL, laptop lid) cannot delete its pod. Such pods
//! stop at `activeDeadlineSeconds` but stay as Failed objects; the startup sweep and `k8s-gpu-mcp gc`
//! delete them, selected by label and judged by age against the deadline annotation they carry.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde::Serialize;

use super::lifecycle::delete_pod;
use super::pod::{ANN_DEADLINE, probe_selector};

/// Slack past a pod's own deadline before a running probe counts as leftover (its call may be finishing).
const SLACK_SECS: i64 = 30;

#[derive(Debug, Default, Clone, Serialize)]
pub struct SweepReport {
    pub namespace: String,
    /// Probe pods deleted (or already gone).
    pub deleted: Vec<String>,
    /// Probe pods left alone (still within their deadline: another call may be using them).
    pub kept: Vec<String>,
    /// Probe pods that could not be deleted.
    pub failed: Vec<String>,
}

/// Why a probe pod is leftover, or None when it may still be in use.
pub fn leftover_reason(p: &Pod, now: jiff::Timestamp, all: bool) -> Option<String> {
    if all {
        return Some("gc --all".into());
    }
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if let Some(ph @ ("Succeeded" | "Failed")) = phase {
        return Some(format!("phase {ph}"));
    }
    let deadline: i64 = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_DEADLINE))
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let created = p.metadata.creation_timestamp.as_ref()?.0;
    let age = now.as_second() - created.as_second();
    (age > deadline + SLACK_SECS).then(|| format!("age {age} s > deadline {deadline} s"))
}

/// Delete the leftover probe pods of `pods`' namespace (every probe pod when `all`).
pub async fn sweep(
    pods: &Api<Pod>,
    namespace: &str,
    all: bool,
) -> Result<SweepReport, kube::Error> {
    let list = pods
        .list(&ListParams::default().labels(&probe_selector()))
        .await?;
    let now = jiff::Timestamp::now();
    let mut report = SweepReport {
        namespace: namespace.to_string(),
        ..Default::default()
    };
    for p in &list.items {
        let name = p.metadata.name.clone().unwrap_or_default();
        match leftover_reason(p, now, all) {
            None => report.kept.push(name),
            Some(why) => {
                tracing::info!(pod = %name, reason = %why, "deleting leftover probe pod");
                if delete_pod(pods.clone(), name.clone(), Duration::from_secs(10)).await {
                    report.deleted.push(name);
                } else {
                    report.failed.push(name);
                }
            }
        }
    }
    Ok(report)
}
