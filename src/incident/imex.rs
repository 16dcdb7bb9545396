//! IMEX where it matters: the ComputeDomains of NVIDIA's DRA driver (`resource.nvidia.com/v1beta1`,
//! NVIDIA/k8s-dra-driver-gpu `api/nvidia.com/resource/v1beta1/computedomain.go`). A ComputeDomain runs one
//! IMEX daemon on each node of a multi-node NVLink job; the driver writes the domain's status and, per node,
//! whether that node's daemon is ready to broker GPU memory. IMEX is judged only on the nodes a
//! ComputeDomain lists: an idle node, or a single-node NVSwitch system, runs no IMEX and says nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::facts::{FieldErrorKind, ImexFacts, Reading};
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

pub use crate::finding::IMEX_KEY;

/// The daemon state that lets the GPUs share memory (`nvidia-imex-ctl -q`).
const DAEMON_READY: &str = "READY";
/// How many members or links an answer names before it counts the rest.
const SHOWN: usize = 6;

fn imex_finding(code: &str, severity: Severity, summary: String, evidence: Vec<String>) -> Finding {
    Finding {
        code: code.into(),
        severity,
        gpu: None,
        gpu_uuid: None,
        summary,
        evidence,
        action: Action {
            kind: ActionKind::Investigate,
            detail: "the daemons must reach each other on the IMEX port (50000) of every member: check the \
                     members named here (their IMEX daemon pod or service, its log, the node network); a \
                     ComputeDomain's daemons restart with their pods"
                .into(),
        },
        about: vec![IMEX_KEY.into()],
        first_seen: None,
    }
}

fn listed(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}

/// What the node's own IMEX daemon says (`facts.imex`, present only where one runs): its state and its
/// domain's. A daemon whose state could not be asked (no `nvidia-imex-ctl` on the host, the command
/// service off) is no finding; one that does not answer is.
pub fn node_findings(imex: Option<&ImexFacts>) -> Vec<Finding> {
    let Some(f) = imex else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let at = format!(
        "command service {} (config {})",
        f.command_service, f.config
    );
    match &f.daemon {
        Reading::Ok(state) if state != DAEMON_READY => out.push(imex_finding(
            "imex.daemon_not_ready",
            Severity::Warning,
            format!(
                "This node's IMEX daemon is {state}, not READY: its GPUs cannot import their peers' memory \
                 over NVLink, and a multi-node job waits or fails."
            ),
            vec![format!("nvidia-imex-ctl -q = {state}"), at.clone()],
        )),
        Reading::Err(e) if e.error == FieldErrorKind::Timeout => out.push(imex_finding(
            "imex.daemon_unresponsive",
            Severity::Warning,
            "This node's IMEX daemon does not answer its command service: it hangs or is restarting."
                .into(),
            vec![
                format!("nvidia-imex-ctl -q: {}", e.message.as_deref().unwrap_or("timeout")),
                at.clone(),
            ],
        )),
        _ => {}
    }
    if let Reading::Ok(d) = &f.domain
        && d.status != "UP"
    {
        let not_ready: Vec<String> = d
            .nodes
            .iter()
            .filter(|n| n.status != DAEMON_READY)
            .map(|n| {
                format!(
                    "{} {}",
                    peer_name(n),
                    if n.status.is_empty() { "?" } else { &n.status }
                )
            })
            .collect();
        // Each broken link is reported from both ends; the member in most of them is the one to look at.
        let name_of = |host: &str| {
            d.nodes
                .iter()
                .find(|n| n.host == host)
                .map_or_else(|| host.to_string(), peer_name)
        };
        let mut per_member: std::collections::BTreeMap<String, usize> = Default::default();
        let mut broken = 0;
        for n in &d.nodes {
            for c in &n.not_connected {
                broken += 1;
                *per_member.entry(peer_name(n)).or_default() += 1;
                let host = c.split(' ').next().unwrap_or_default();
                *per_member.entry(name_of(host)).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, usize)> = per_member.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        // The members in at least half as many broken links as the worst: the far ends of one bad
        // member's links are not named each.
        let worst = ranked.first().map_or(0, |r| r.1);
        let links: Vec<String> = ranked
            .iter()
            .filter(|(_, k)| k * 2 >= worst)
            .map(|(name, k)| format!("{name} in {k}"))
            .collect();
        let mut evidence = vec![format!(
            "nvidia-imex-ctl -N = {} ({} member(s))",
            d.status,
            d.nodes.len()
        )];
        if !not_ready.is_empty() {
            evidence.push(format!("members not READY: {}", listed(&not_ready)));
        }
        if broken > 0 {
            evidence.push(format!(
                "links not CONNECTED: {broken}, by member: {}",
                listed(&links)
            ));
        }
        evidence.push(at);
        let (code, severity, what) = if d.status == "DOWN" {
            (
                "imex.domain_down",
                Severity::Critical,
                "no GPU of the domain can import memory from another node: multi-node NVLink jobs fail at start or hang",
            )
        } else {
            (
                "imex.domain_degraded",
                Severity::Warning,
                "members that are not ready or not connected cannot share GPU memory with the rest",
            )
        };
        out.push(imex_finding(
            code,
            severity,
            format!(
                "The IMEX domain of this node is {} ({} of {} member(s) not READY): {what}.",
                d.status,
                not_ready.len(),
                d.nodes.len()
            ),
            evidence,
        ));
    }
    out
}

fn peer_name(n: &crate::facts::ImexPeerFacts) -> String {
    if n.host_name.is_empty() {
        n.host.clone()
    } else {
        format!("{} ({})", n.host_name, n.host)
    }
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

    fn daemon(state: Reading<String>, domain: Reading<crate::facts::ImexDomainFacts>) -> ImexFacts {
        ImexFacts {
            command_service: "10.0.3.5:50005".into(),
            config: "/imexd/imexd.cfg".into(),
            daemon: state,
            domain,
        }
    }

    fn domain_of(status: &str, members: &[(&str, &str, &[&str])]) -> crate::facts::ImexDomainFacts {
        crate::facts::ImexDomainFacts {
            status: status.into(),
            nodes: members
                .iter()
                .enumerate()
                .map(|(i, (host, st, bad))| crate::facts::ImexPeerFacts {
                    index: i.to_string(),
                    host: (*host).into(),
                    status: (*st).into(),
                    not_connected: bad.iter().map(|b| format!("{b} DISCONNECTED")).collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn a_node_without_an_imex_daemon_or_whose_daemon_cannot_be_asked_says_nothing() {
        assert!(node_findings(None).is_empty());
        let not_found =
            crate::facts::FieldError::with_message(FieldErrorKind::NotFound, "no nvidia-imex-ctl");
        let f = daemon(Reading::Err(not_found.clone()), Reading::Err(not_found));
        assert!(node_findings(Some(&f)).is_empty());
        let up = daemon(
            Reading::Ok("READY".into()),
            Reading::Ok(domain_of("UP", &[("10.0.3.1", "READY", &[])])),
        );
        assert!(node_findings(Some(&up)).is_empty());
    }

    #[test]
    fn a_domain_down_is_critical_and_names_the_member_in_most_broken_links() {
        let f = daemon(
            Reading::Ok("WAITING_FOR_PEERS".into()),
            Reading::Ok(domain_of(
                "DOWN",
                &[
                    ("10.0.3.1", "READY", &["10.0.3.2"]),
                    ("10.0.3.2", "WAITING_FOR_PEERS", &["10.0.3.1", "10.0.3.3"]),
                    ("10.0.3.3", "READY", &["10.0.3.2"]),
                ],
            )),
        );
        let out = node_findings(Some(&f));
        let codes: Vec<&str> = out.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["imex.daemon_not_ready", "imex.domain_down"]);
        assert_eq!(out[1].severity, Severity::Critical);
        assert!(
            out[1].evidence[2].starts_with("links not CONNECTED: 4, by member: 10.0.3.2 in 4,"),
            "{:?}",
            out[1].evidence
        );
        // One fault of the node: the incident holds both, and the driver's IMEX recovery request.
        let mut all = out.clone();
        all.push(Finding {
            code: "xid.154".into(),
            severity: Severity::Warning,
            gpu: Some(2),
            about: vec![IMEX_KEY.into()],
            ..out[0].clone()
        });
        // A recovery request that is not about IMEX stays the GPU's.
        all.push(Finding {
            code: "gpu.recovery_action".into(),
            severity: Severity::Critical,
            gpu: Some(1),
            about: Vec::new(),
            ..out[0].clone()
        });
        let inc = crate::incident::group(&all, &|g| format!("GPU {g}"));
        assert_eq!(inc.incidents.len(), 2, "{:#?}", inc.incidents);
        let imex = inc
            .incidents
            .iter()
            .find(|i| i.code == "imex.domain")
            .unwrap();
        assert_eq!(imex.component, "the node's IMEX domain");
        assert_eq!(imex.severity, Severity::Critical);
        assert_eq!(imex.signals.len(), 3);
        assert!(
            inc.incidents
                .iter()
                .any(|i| i.code == "gpu.recovery" && i.gpu == Some(1))
        );
    }

    #[test]
    fn a_daemon_that_does_not_answer_is_a_finding() {
        let t = crate::facts::FieldError::with_message(FieldErrorKind::Timeout, "no answer in 5 s");
        let f = daemon(Reading::Err(t.clone()), Reading::Err(t));
        let out = node_findings(Some(&f));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].code, "imex.daemon_unresponsive");
    }
}
