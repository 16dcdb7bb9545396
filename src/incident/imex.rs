//! IMEX where it matters: the ComputeDomains of NVIDIA's DRA driver (`resource.nvidia.com/v1beta1`,
//! NVIDIA/k8s-dra-driver-gpu `api/nvidia.com/resource/v1beta1/computedomain.go`). A ComputeDomain runs one
//! IMEX daemon on each node of a multi-node NVLink job; the driver writes the domain's status and, per node,
//! whether that node's daemon is ready to broker GPU memory. IMEX is judged only on the nodes a
//! ComputeDomain lists: an idle node, or a single-node NVSwitch system, runs no IMEX and says nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::finding::{Action, ActionKind, Finding, Severity};

/// The driver's status words (`ComputeDomainStatusReady`, `ComputeDomainStatusNotReady`).
const READY: &str = "Ready";

/// Names and statuses are the driver's; bounded as any text a cluster object holds.
const MAX_TEXT: usize = 253;
/// A domain lists at most an NVL72 rack's trays, a few hundred across racks.
const MAX_NODES: usize = 1024;

/// One ComputeDomain as the API server lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputeDomain {
    pub namespace: String,
    pub name: String,
    /// `Ready`, `NotReady` or empty (not yet judged).
    pub status: String,
    pub nodes: Vec<ComputeDomainNode>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComputeDomainNode {
    pub name: String,
    pub clique: String,
    /// Its IMEX daemon: `Ready`, `NotReady`, or empty (a driver before per-node status).
    pub status: String,
}

/// A node's place in a ComputeDomain, as `list_gpu_nodes` and `scan_gpu_nodes` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImexMembership {
    /// `namespace/name` of the ComputeDomain.
    pub compute_domain: String,
    pub domain_status: String,
    /// This node's IMEX daemon status.
    pub daemon_status: String,
}

fn text(v: &Value) -> String {
    let s: String = v
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect();
    s
}

/// A ComputeDomain object (JSON as listed); `None` when it has no name.
pub fn parse(obj: &Value) -> Option<ComputeDomain> {
    let name = text(&obj["metadata"]["name"]);
    if name.is_empty() {
        return None;
    }
    Some(ComputeDomain {
        namespace: text(&obj["metadata"]["namespace"]),
        name,
        status: text(&obj["status"]["status"]),
        nodes: obj["status"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .take(MAX_NODES)
            .map(|n| ComputeDomainNode {
                name: text(&n["name"]),
                clique: text(&n["cliqueID"]),
                status: text(&n["status"]),
            })
            .filter(|n| !n.name.is_empty())
            .collect(),
    })
}

/// The ComputeDomains `node` is in.
pub fn memberships(domains: &[ComputeDomain], node: &str) -> Vec<ImexMembership> {
    domains
        .iter()
        .filter_map(|d| {
            let n = d.nodes.iter().find(|n| n.name == node)?;
            Some(ImexMembership {
                compute_domain: format!("{}/{}", d.namespace, d.name),
                domain_status: d.status.clone(),
                daemon_status: n.status.clone(),
            })
        })
        .collect()
}

/// A node whose IMEX daemon its ComputeDomain reports not ready: the job's GPUs on it cannot share memory
/// with their peers over NVLink. Nothing for a ready daemon, or one whose driver reports no per-node status.
pub fn findings(memberships: &[ImexMembership]) -> Vec<Finding> {
    memberships
        .iter()
        .filter(|m| !m.daemon_status.is_empty() && m.daemon_status != READY)
        .map(|m| Finding {
            code: "imex.daemon_not_ready".into(),
            severity: Severity::Warning,
            gpu: None,
            gpu_uuid: None,
            summary: format!(
                "The IMEX daemon of ComputeDomain {} on this node is {} (domain {}): the job's GPUs here cannot \
                 import their peers' memory over NVLink.",
                m.compute_domain,
                m.daemon_status,
                if m.domain_status.is_empty() {
                    "status not set"
                } else {
                    &m.domain_status
                }
            ),
            evidence: vec![
                format!("compute_domain = {}", m.compute_domain),
                format!("daemon_status = {}", m.daemon_status),
                format!("domain_status = {}", m.domain_status),
                "source = ComputeDomain status (NVIDIA DRA driver)".into(),
            ],
            action: Action {
                kind: ActionKind::Investigate,
                detail: "read the ComputeDomain's IMEX daemon pod log on this node (namespace of the DRA \
                         driver) and its fabric state (get_gpu_health); the daemon restarts with its pod"
                    .into(),
            },
            about: Vec::new(),
            first_seen: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn domain() -> ComputeDomain {
        parse(&json!({
            "apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomain",
            "metadata": {"name": "train-cd", "namespace": "ml"},
            "spec": {"numNodes": 0, "channel": {"resourceClaimTemplate": {"name": "train-cd-channel"}}},
            "status": {"status": "NotReady", "nodes": [
                {"name": "tray01", "ipAddress": "10.0.0.1", "cliqueID": "6e3b.1", "index": 0, "status": "Ready"},
                {"name": "tray02", "ipAddress": "10.0.0.2", "cliqueID": "6e3b.1", "index": 1, "status": "NotReady"},
                {"name": "tray03\u{1b}[31m", "ipAddress": "10.0.0.3", "cliqueID": "6e3b.1", "index": 2}
            ]}
        }))
        .unwrap()
    }

    #[test]
    fn only_a_member_whose_daemon_is_not_ready_has_a_finding() {
        let d = [domain()];
        assert!(findings(&memberships(&d, "tray01")).is_empty());
        let f = findings(&memberships(&d, "tray02"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "imex.daemon_not_ready");
        assert!(
            f[0].summary
                .contains("ComputeDomain ml/train-cd on this node is NotReady (domain NotReady)")
        );
        // A node in no ComputeDomain runs no IMEX: nothing to say.
        assert!(memberships(&d, "idle-tray").is_empty());
        // Control characters a node could have smuggled in are gone; no per-node status is no judgement.
        let m = memberships(&d, "tray03[31m");
        assert_eq!(m.len(), 1);
        assert!(findings(&m).is_empty());
    }
}
