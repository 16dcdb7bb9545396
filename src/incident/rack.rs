//! Faults of a multi-node NVLink domain (a GB200/GB300 NVL72 rack: 18 compute trays, one NVLink fabric).
//! A switch tray or the fabric's management going wrong shows on the GPUs of many nodes at once; each node's
//! probe sees only its own GPUs. The same fabric incident on two or more nodes of one domain is one fault
//! of the rack, named with the domain and its nodes, so nobody drains 18 nodes one by one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::finding::{Action, ActionKind, Severity};

/// Node incidents that are the fabric's, not the node's, when several nodes of a domain show them.
pub const RACK_CODES: &[(&str, &str)] = &[
    ("fabric.degraded", "NVLink fabric degraded"),
    (
        "fabric.not_registered",
        "GPUs not registered with the NVLink fabric",
    ),
    (
        "fabric.registration_failed",
        "NVLink fabric registration failed",
    ),
];

/// What one node contributes: its domain and the codes and severities of its incidents.
#[derive(Debug, Clone)]
pub struct NodeInDomain<'a> {
    pub node: &'a str,
    pub domain: Option<&'a str>,
    pub incidents: Vec<(&'a str, Severity)>,
}

/// One fault of a domain, seen on several of its nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RackIncident {
    /// `<cluster uuid>.<clique id>`, as GPU Feature Discovery's `nvidia.com/gpu.clique` label.
    pub domain: String,
    /// The node incident's code (`fabric.degraded`).
    pub code: String,
    pub severity: Severity,
    pub summary: String,
    /// The nodes that show it, by name.
    pub nodes: Vec<String>,
    /// Nodes of the domain that were looked at.
    pub domain_nodes: usize,
    pub action: Action,
}

/// The rack incidents among `nodes`, worst first, then by domain.
pub fn rack_incidents(nodes: &[NodeInDomain<'_>]) -> Vec<RackIncident> {
    let mut per_domain: BTreeMap<&str, usize> = BTreeMap::new();
    for n in nodes {
        if let Some(d) = n.domain {
            *per_domain.entry(d).or_default() += 1;
        }
    }
    let mut seen: BTreeMap<(&str, &str), (Severity, Vec<String>)> = BTreeMap::new();
    for n in nodes {
        let Some(d) = n.domain else { continue };
        for (code, sev) in &n.incidents {
            if !RACK_CODES.iter().any(|(c, _)| c == code) {
                continue;
            }
            let e = seen.entry((d, code)).or_insert_with(|| (*sev, Vec::new()));
            e.0 = e.0.max(*sev);
            if !e.1.iter().any(|x| x == n.node) {
                e.1.push(n.node.to_string());
            }
        }
    }
    let mut out: Vec<RackIncident> = seen
        .into_iter()
        .filter(|(_, (_, nodes))| nodes.len() >= 2)
        .map(|((domain, code), (severity, mut nodes))| {
            nodes.sort();
            let of = per_domain.get(domain).copied().unwrap_or(nodes.len());
            let title = RACK_CODES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, t)| *t)
                .unwrap_or(code);
            RackIncident {
                summary: format!(
                    "{title} on {} of {of} node(s) of NVLink domain {domain}: one fault of the rack's fabric (a switch \
                     tray, its cables, or the fabric's management), not of each node",
                    nodes.len()
                ),
                domain: domain.to_string(),
                code: code.to_string(),
                severity,
                domain_nodes: of,
                action: Action {
                    kind: ActionKind::Investigate,
                    detail: "check the rack's NVLink switch trays and the fabric's management (NMX or \
                             nvidia-fabricmanager, IMEX) before draining nodes: the nodes are the symptom"
                        .into(),
                },
                nodes,
            }
        })
        .collect();
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.domain.cmp(&b.domain)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RACK: &str = "6e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a14.1";

    fn node<'a>(name: &'a str, domain: Option<&'a str>, codes: &[&'a str]) -> NodeInDomain<'a> {
        NodeInDomain {
            node: name,
            domain,
            incidents: codes.iter().map(|c| (*c, Severity::Warning)).collect(),
        }
    }

    #[test]
    fn one_fabric_fault_on_several_nodes_of_a_domain_is_one_rack_incident() {
        let names: Vec<String> = (1..=18).map(|i| format!("tray{i:02}")).collect();
        let mut nodes: Vec<NodeInDomain> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let codes: &[&str] = if (4..8).contains(&i) {
                    &["fabric.degraded"]
                } else {
                    &[]
                };
                node(n, Some(RACK), codes)
            })
            .collect();
        // A node of another rack with the same fault, and an Xid on a node of this rack: neither joins.
        nodes.push(node(
            "other-rack",
            Some("ffffffff-0000-4000-8000-000000000001.1"),
            &["fabric.degraded"],
        ));
        nodes.push(node("tray01-xid", Some(RACK), &["xid.79"]));
        let r = rack_incidents(&nodes);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].domain, RACK);
        assert_eq!(r[0].nodes, vec!["tray05", "tray06", "tray07", "tray08"]);
        assert_eq!(r[0].domain_nodes, 19);
        assert!(
            r[0].summary
                .starts_with("NVLink fabric degraded on 4 of 19 node(s)"),
            "{}",
            r[0].summary
        );
    }

    #[test]
    fn one_node_or_no_domain_is_not_a_rack_fault() {
        let nodes = [
            node("a", Some(RACK), &["fabric.degraded"]),
            node("b", Some(RACK), &[]),
            node("c", None, &["fabric.degraded"]),
            node("d", None, &["fabric.degraded"]),
        ];
        assert!(rack_incidents(&nodes).is_empty());
    }
}
