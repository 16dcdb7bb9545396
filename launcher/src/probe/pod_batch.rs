//! What the probe pods of one many-node call share ([`super::runner::Runner::batch`]): one watch of their
//! pods ([`PodWatch`]), selected by a label only this call's pods carry, and one list of their nodes instead
//! of a get per node. A scan then costs three requests per node: create, exec, delete.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::{Node, NodeSpec, NodeStatus};
use kube::Client;
use kube::api::{Api, ListParams, ObjectMeta};

use super::lifecycle::{node_not_ready, ready_node};
use super::pod::{LABEL_BATCH, random_id};
use super::pod_watch::PodWatch;
use super::runner::RunError;

/// Nodes per list page: a 10,000-node fleet is 20 requests, and no page holds a large answer in memory.
const NODE_PAGE: u32 = 500;

pub struct PodBatch {
    /// The value of [`LABEL_BATCH`] on this call's pods.
    pub id: String,
    namespace: String,
    wanted: HashSet<String>,
    /// Keep each node's images, labels and node info (copy and default delivery read them); else only
    /// whether it is Ready.
    details: bool,
    watch: OnceLock<PodWatch>,
    /// The wanted nodes as one list read them (None: the list failed; each node is then read alone).
    nodes: tokio::sync::OnceCell<Option<HashMap<String, Node>>>,
}

impl PodBatch {
    pub fn new(namespace: &str, nodes: &[String], details: bool) -> Self {
        PodBatch {
            id: random_id(),
            namespace: namespace.to_string(),
            wanted: nodes.iter().cloned().collect(),
            details,
            watch: OnceLock::new(),
            nodes: tokio::sync::OnceCell::new(),
        }
    }

    /// The batch's pod watch (started by its first subscriber).
    pub fn watch(&self, client: &Client) -> &PodWatch {
        self.watch.get_or_init(|| {
            PodWatch::new(
                Api::namespaced(client.clone(), &self.namespace),
                format!("{LABEL_BATCH}={}", self.id),
            )
        })
    }

    /// The node, Ready, from the batch's one list (read by the first run that asks).
    pub async fn ready_node(&self, client: &Client, name: &str) -> Result<Node, RunError> {
        let listed = self
            .nodes
            .get_or_init(|| list_nodes(client, &self.wanted, self.details))
            .await;
        let Some(listed) = listed else {
            return ready_node(client, name).await;
        };
        let n = listed
            .get(name)
            .ok_or_else(|| RunError::NodeNotFound(name.to_string()))?;
        match node_not_ready(n) {
            None => Ok(n.clone()),
            Some(reason) => Err(RunError::NodeNotReady {
                node: name.into(),
                reason,
            }),
        }
    }
}

/// Every node of `wanted`, page by page, each kept with only what a probe run reads.
async fn list_nodes(
    client: &Client,
    wanted: &HashSet<String>,
    details: bool,
) -> Option<HashMap<String, Node>> {
    let api: Api<Node> = Api::all(client.clone());
    let mut out = HashMap::with_capacity(wanted.len());
    let mut lp = ListParams::default().limit(NODE_PAGE);
    loop {
        let page = match api.list(&lp).await {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(error = %e, "cannot list the nodes; reading each node alone");
                return None;
            }
        };
        for n in page.items {
            if let Some(name) = n.metadata.name.as_deref()
                && wanted.contains(name)
            {
                out.insert(name.to_string(), slim(n, details));
            }
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => return Some(out),
        }
    }
}

/// What a probe run reads of a node: its name and Ready condition, and with `details` its labels and provider
/// (the platform), images (the default delivery's base) and node info (the architecture). A 10,000-node fleet
/// stays small in memory.
fn slim(n: Node, details: bool) -> Node {
    let status = n.status.unwrap_or_default();
    let ready = status
        .conditions
        .map(|cs| cs.into_iter().filter(|c| c.type_ == "Ready").collect());
    if !details {
        return Node {
            metadata: ObjectMeta {
                name: n.metadata.name,
                ..Default::default()
            },
            spec: None,
            status: Some(NodeStatus {
                conditions: ready,
                ..Default::default()
            }),
        };
    }
    Node {
        metadata: ObjectMeta {
            name: n.metadata.name,
            labels: n.metadata.labels,
            ..Default::default()
        },
        spec: Some(NodeSpec {
            provider_id: n.spec.and_then(|s| s.provider_id),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            conditions: ready,
            images: status.images,
            node_info: status.node_info,
            ..Default::default()
        }),
    }
}

/// The batch a pod runner's run belongs to, if it is this runner's.
pub fn of(batch: &super::runner::Batch) -> Option<&PodBatch> {
    batch.shared::<PodBatch>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeCondition, NodeSystemInfo};

    #[test]
    fn slim_keeps_what_a_run_reads() {
        let n = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                labels: Some([("kubernetes.io/arch".into(), "amd64".into())].into()),
                annotations: Some([("big".into(), "x".repeat(1000))].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                provider_id: Some("aws://x".into()),
                unschedulable: Some(true),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![
                    NodeCondition {
                        type_: "MemoryPressure".into(),
                        status: "False".into(),
                        ..Default::default()
                    },
                    NodeCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                ]),
                images: Some(vec![ContainerImage {
                    names: Some(vec!["debian@sha256:00".into()]),
                    ..Default::default()
                }]),
                node_info: Some(NodeSystemInfo {
                    architecture: "arm64".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let lean = slim(n.clone(), false);
        assert_eq!(node_not_ready(&lean), None);
        assert!(lean.metadata.labels.is_none() && lean.spec.is_none());
        let s = slim(n, true);
        assert!(s.metadata.annotations.is_none());
        assert_eq!(
            s.spec.as_ref().unwrap().provider_id.as_deref(),
            Some("aws://x")
        );
        assert_eq!(node_not_ready(&s), None);
        assert_eq!(super::super::delivery::node_arch(&s), "arm64");
        assert_eq!(s.status.as_ref().unwrap().images.as_ref().unwrap().len(), 1);
        assert_eq!(
            s.status
                .as_ref()
                .unwrap()
                .conditions
                .as_ref()
                .unwrap()
                .len(),
            1
        );
    }
}
