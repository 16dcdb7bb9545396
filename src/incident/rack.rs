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
        "fabric.registration",
        "GPUs not registered with the NVLink fabric",
    ),
    (
        "fabric.not_registered",
        "GPUs not registered with the NVLink fabric",
    ),
    (
        "fabric.registration_failed",
        "NVLink fabric registration failed",
    ),
];

/// What named a node's rack, most authoritative first. NVML's cluster UUID and clique are the rack's own
/// word, but only once the GPUs registered with the fabric (`nvmlDeviceGetGpuFabricInfo`: state completed):
/// a rack whose switch trays or fabric management failed before that has none, and its trays are grouped by
/// what else names the rack.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RackSource {
    /// NVML's cluster UUID and clique of the node's GPUs, read by the probe now.
    Nvml,
    /// GPU Feature Discovery's `nvidia.com/gpu.clique` label: NVML's as of GFD's last run (a label stays
    /// when the fabric later fails).
    GfdClique,
    /// A ComputeDomain of NVIDIA's DRA driver that lists the node (`status.nodes[]`): its `cliqueID` where
    /// it names one, else the ComputeDomain itself (one IMEX domain spans one NVLink domain).
    ComputeDomain,
    /// The platform's topology label: NVIDIA Topograph's `network.topology.nvidia.com/accelerator`, GKE's
    /// `cloud.google.com/gce-topology-subblock`, or EKS's nearest `topology.k8s.aws/network-node-layer-N`.
    TopologyLabel,
}

impl RackSource {
    /// In prose.
    pub fn words(self) -> &'static str {
        match self {
            RackSource::Nvml => "NVML's cluster UUID and clique",
            RackSource::GfdClique => "GFD's clique label",
            RackSource::ComputeDomain => "a ComputeDomain's node list",
            RackSource::TopologyLabel => "the platform's topology label",
        }
    }
}

/// Node labels that name a rack (one NVLink domain, or the nearest thing the platform names), best first.
/// `topology.kubernetes.io/zone` is not among them: a zone holds many racks.
pub const TOPOLOGY_LABELS: &[&str] = &[
    // NVIDIA Topograph: the accelerated (NVLink) interconnect domain (docs.nvidia.com/topograph, node labels).
    "network.topology.nvidia.com/accelerator",
    // GKE: the sub-block; on A4X (GB200) one sub-block is one NVL72 domain (cloud.google.com, GKE
    // topology-aware scheduling; `gce-topology-block` is many sub-blocks).
    "cloud.google.com/gce-topology-subblock",
    // EKS: the network node nearest the instance (docs.aws.amazon.com, EKS ml-workload-topology; layer 4 only
    // on four-layer instance types). Nodes under one may span more than a rack: it groups only where nothing
    // above names the rack, and the answer says so.
    "topology.k8s.aws/network-node-layer-4",
    "topology.k8s.aws/network-node-layer-3",
];

/// What the API server says of a node's rack besides the probe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RackHints {
    /// GFD's `nvidia.com/gpu.clique` label.
    pub gfd_clique: Option<String>,
    /// ComputeDomains listing the node: `namespace/name` and the `cliqueID` it gives the node.
    pub compute_domains: Vec<(String, String)>,
    /// The first of [`TOPOLOGY_LABELS`] the node has: label and value.
    pub topology: Option<(String, String)>,
}

/// Longest rack name kept from a label or a ComputeDomain (label values are at most 63 characters).
const MAX_NAME: usize = 128;

impl RackHints {
    /// The hints of a node's labels (GFD's clique, the topology labels).
    pub fn from_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let labels: Vec<(&str, &str)> = labels.into_iter().collect();
        let get = |k: &str| {
            labels
                .iter()
                .find(|(l, v)| *l == k && !v.trim().is_empty())
                .map(|(_, v)| super::platform::clean(v, MAX_NAME))
        };
        RackHints {
            gfd_clique: get("nvidia.com/gpu.clique"),
            compute_domains: Vec::new(),
            topology: TOPOLOGY_LABELS
                .iter()
                .find_map(|l| get(l).map(|v| (l.to_string(), v))),
        }
    }
}

/// A node's rack names, most authoritative first: the probe's NVLink domain (NVML), GFD's clique label, its
/// ComputeDomains, its topology label.
pub fn candidates(probe: Option<&str>, h: &RackHints) -> Vec<(RackSource, String)> {
    let mut out = Vec::new();
    if let Some(d) = probe {
        out.push((RackSource::Nvml, d.to_string()));
    }
    if let Some(c) = &h.gfd_clique {
        out.push((RackSource::GfdClique, c.clone()));
    }
    let mut cds = h.compute_domains.clone();
    cds.sort();
    for (name, clique) in cds {
        // A clique ID of an unregistered fabric is empty or the nil UUID: the ComputeDomain names the rack.
        let nil = clique
            .split('.')
            .next()
            .is_none_or(|u| u.chars().all(|c| c == '0' || c == '-'));
        let key = if nil {
            format!("ComputeDomain {}", super::platform::clean(&name, MAX_NAME))
        } else {
            super::platform::clean(&clique, MAX_NAME)
        };
        out.push((RackSource::ComputeDomain, key));
    }
    if let Some((l, v)) = &h.topology {
        out.push((RackSource::TopologyLabel, format!("{l}={v}")));
    }
    out
}

/// Each node's rack and what named it, from its [`candidates`]. A node takes its most authoritative name;
/// a node whose best name is a weaker source joins the rack of the nodes it shares a name with when those
/// all agree on one stronger name (a tray without GFD's label, in the ComputeDomain of trays that have it,
/// is in their rack, grouped by the ComputeDomain). Where sources conflict the stronger wins: two nodes with
/// one GFD clique label whose GPUs read different cluster UUIDs are in two racks (the label is a past
/// reading; NVML's is now).
pub fn assign(nodes: &[Vec<(RackSource, String)>]) -> Vec<Option<(RackSource, String)>> {
    nodes
        .iter()
        .map(|cands| {
            let (best_source, best) = cands.first()?;
            if *best_source == RackSource::Nvml {
                return Some((*best_source, best.clone()));
            }
            for (source, key) in cands {
                let mut stronger: Vec<&(RackSource, String)> = nodes
                    .iter()
                    .filter(|o| o.iter().any(|(s, k)| s == source && k == key))
                    .filter_map(|o| o.first())
                    .filter(|(s, _)| s < best_source)
                    .collect();
                stronger.sort();
                stronger.dedup_by(|a, b| a.1 == b.1);
                if let [(_, name)] = stronger.as_slice() {
                    return Some((*source, name.clone()));
                }
            }
            Some((*best_source, best.clone()))
        })
        .collect()
}

/// What one node contributes: its domain, what named it, and the codes and severities of its incidents.
#[derive(Debug, Clone)]
pub struct NodeInDomain<'a> {
    pub node: &'a str,
    pub domain: Option<&'a str>,
    pub source: RackSource,
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
    /// What named the rack of the nodes that show it (`nvml` unless their GPUs never registered with the
    /// fabric), most authoritative first.
    pub grouped_by: Vec<RackSource>,
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
    type Seen = (Severity, Vec<String>, Vec<RackSource>);
    let mut seen: BTreeMap<(&str, &str), Seen> = BTreeMap::new();
    for n in nodes {
        let Some(d) = n.domain else { continue };
        for (code, sev) in &n.incidents {
            if !RACK_CODES.iter().any(|(c, _)| c == code) {
                continue;
            }
            let e = seen
                .entry((d, code))
                .or_insert_with(|| (*sev, Vec::new(), Vec::new()));
            e.0 = e.0.max(*sev);
            if !e.1.iter().any(|x| x == n.node) {
                e.1.push(n.node.to_string());
            }
            if !e.2.contains(&n.source) {
                e.2.push(n.source);
            }
        }
    }
    let mut out: Vec<RackIncident> = seen
        .into_iter()
        .filter(|(_, (_, nodes, _))| nodes.len() >= 2)
        .map(|((domain, code), (severity, mut nodes, mut grouped_by))| {
            nodes.sort();
            grouped_by.sort();
            // NVML's own name needs no word; any other source is said, so a reader can weigh it.
            let by = if grouped_by == [RackSource::Nvml] {
                String::new()
            } else {
                let words: Vec<&str> = grouped_by.iter().map(|s| s.words()).collect();
                format!(
                    " (grouped by {}: the GPUs name no cluster UUID, they never registered with the fabric)",
                    words.join(" and ")
                )
            };
            let of = per_domain.get(domain).copied().unwrap_or(nodes.len());
            let title = RACK_CODES
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, t)| *t)
                .unwrap_or(code);
            RackIncident {
                summary: format!(
                    "{title} on {} of {of} node(s) of NVLink domain {domain}{by}: one fault of the rack's fabric (a \
                     switch tray, its cables, or the fabric's management), not of each node",
                    nodes.len()
                ),
                grouped_by,
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
            source: RackSource::Nvml,
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
