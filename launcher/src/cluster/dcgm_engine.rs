//! The GPU Operator's standalone DCGM host engine on a node, where it runs (`dcgm.enabled`, off by default):
//! DaemonSet `nvidia-dcgm` in the operator's namespace, label `app: nvidia-dcgm`, container port 5555
//! named `dcgm` (NVIDIA/gpu-operator `assets/state-dcgm/0400_dcgm.yml`). A diagnostic then runs on that
//! engine (`dcgmi diag --host POD_IP:5555`) instead of starting a second engine in the probe pod
//! (../shared/reference/dcgm.md section 6, route A).
//!
//! Trust: what answers there decides pass or fail, and a tenant can label a pod of its own
//! `app: nvidia-dcgm`. So only a pod in the operator's namespace (`gpu-operator`, OpenShift's
//! `nvidia-gpu-operator`), controlled by the DaemonSet `nvidia-dcgm`, running and ready, is used, and only
//! its IP address is passed on: never a name.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use gpu_diag::dcgm::request::Engine;

/// Namespaces the GPU Operator is installed in by its Helm chart's and OpenShift's documented defaults.
pub const OPERATOR_NAMESPACES: &[&str] = &["gpu-operator", "nvidia-gpu-operator"];
const DAEMONSET: &str = "nvidia-dcgm";
const DEFAULT_PORT: u16 = 5555;

/// The engine a run uses, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEngine {
    pub engine: Engine,
    /// `namespace/pod`.
    pub pod: String,
    /// The DCGM version of its image tag (`4.5.2-1-ubuntu22.04` -> `4.5.2`), where the tag says.
    pub version: Option<String>,
}

impl NodeEngine {
    /// One line for the answer.
    pub fn describe(&self) -> String {
        format!(
            "the GPU Operator's DCGM host engine {} at {} (DCGM {}){}",
            self.pod,
            self.engine.addr,
            self.version
                .as_deref()
                .unwrap_or("version not in its image tag"),
            if self.engine.heartbeat {
                ", with heartbeat: the engine stops the run if the probe goes away"
            } else {
                ", without heartbeat (before DCGM 4.5): a probe killed hard leaves the run to its end"
            }
        )
    }
}

/// DCGM's version from an image tag: `4.5.2-1-ubuntu22.04` -> (4, 5, "4.5.2").
fn version_of(image: &str) -> Option<(u32, u32, String)> {
    let tag = image.split('@').next()?.rsplit_once(':')?.1;
    if tag.contains('/') {
        return None;
    }
    let v = tag.split('-').next()?;
    let mut parts = v.split('.');
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor, v.to_string()))
}

fn is_ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Running")
        && st
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn controlled_by_the_daemonset(p: &Pod) -> bool {
    p.metadata.owner_references.as_ref().is_some_and(|o| {
        o.iter().any(|r| {
            r.controller == Some(true)
                && r.kind == "DaemonSet"
                && r.api_version == "apps/v1"
                && r.name == DAEMONSET
        })
    })
}

/// The engine among `pods` (those on one node), by the rules in the module comment; None where none
/// qualifies.
pub fn pick(pods: &[Pod], node: &str) -> Option<NodeEngine> {
    pods.iter().find_map(|p| {
        let ns = p.metadata.namespace.as_deref()?;
        if !OPERATOR_NAMESPACES.contains(&ns)
            || p.metadata.deletion_timestamp.is_some()
            || p.spec.as_ref()?.node_name.as_deref() != Some(node)
            || !controlled_by_the_daemonset(p)
            || !is_ready(p)
        {
            return None;
        }
        let ip: std::net::IpAddr = p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
        let containers = &p.spec.as_ref()?.containers;
        let (container, port) = containers.iter().find_map(|c| {
            let port = c.ports.as_ref()?.iter().find(|q| {
                q.name.as_deref() == Some("dcgm") || q.container_port == i32::from(DEFAULT_PORT)
            })?;
            Some((c, u16::try_from(port.container_port).ok()?))
        })?;
        if port == 0 {
            return None;
        }
        let version = container.image.as_deref().and_then(version_of);
        let heartbeat = version
            .as_ref()
            .is_some_and(|(ma, mi, _)| (*ma, *mi) >= (4, 5));
        Some(NodeEngine {
            engine: Engine {
                addr: std::net::SocketAddr::new(ip, port),
                heartbeat,
            },
            pod: format!("{ns}/{}", p.metadata.name.as_deref().unwrap_or("?")),
            version: version.map(|v| v.2),
        })
    })
}

/// The engine on `node`: one list of the operator namespaces' `app=nvidia-dcgm` pods bound to it. Err:
/// why it could not be looked for (the run then uses an engine of its own, and says so).
pub async fn on_node(client: kube::Client, node: &str) -> Result<Option<NodeEngine>, String> {
    let lp = ListParams::default()
        .labels("app=nvidia-dcgm")
        .fields(&format!("spec.nodeName={node}"));
    let mut pods = Vec::new();
    for ns in OPERATOR_NAMESPACES {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        match api.list(&lp).await {
            Ok(l) => pods.extend(l.items),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(gpu_diag::incident::platform::clean(&e.to_string(), 200));
            }
        }
    }
    Ok(pick(&pods, node))
}

/// Whether the client's user holds the operator role (`hold` on `k8s-gpu-mcp.io/operator-role`, the grant
/// deploy/policies.yaml's exec policy asks the authorizer about): only they may direct node-probe at a host
/// engine (`--engine`), since what answers there decides pass or fail.
pub async fn holds_operator_role(client: kube::Client) -> Result<bool, String> {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("k8s-gpu-mcp.io".into()),
                resource: Some("operator-role".into()),
                verb: Some("hold".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client);
    api.create(&kube::api::PostParams::default(), &review)
        .await
        .map(|r| r.status.is_some_and(|s| s.allowed))
        .map_err(|e| gpu_diag::incident::platform::clean(&e.to_string(), 200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn engine_pod(ns: &str, owner: &str, image: &str, ip: &str, ready: bool) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(format!("{owner}-x7k2p"));
        p.metadata.namespace = Some(ns.into());
        p.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "DaemonSet".into(),
            name: owner.into(),
            uid: "u".into(),
            controller: Some(true),
            ..Default::default()
        }]);
        p.spec = Some(PodSpec {
            node_name: Some("gpu-node-5".into()),
            containers: vec![Container {
                name: "nvidia-dcgm-ctr".into(),
                image: Some(image.into()),
                ports: Some(vec![ContainerPort {
                    name: Some("dcgm".into()),
                    container_port: 5555,
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        });
        p.status = Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: Some(ip.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        p
    }

    const IMG45: &str = "nvcr.io/nvidia/cloud-native/dcgm:4.5.2-1-ubuntu22.04";

    #[test]
    fn the_operators_engine_with_heartbeat_from_4_5() {
        let e = pick(
            &[engine_pod(
                "gpu-operator",
                "nvidia-dcgm",
                IMG45,
                "10.244.1.7",
                true,
            )],
            "gpu-node-5",
        )
        .unwrap();
        assert_eq!(e.engine.arg(), "10.244.1.7:5555,heartbeat");
        assert_eq!(e.pod, "gpu-operator/nvidia-dcgm-x7k2p");
        assert_eq!(e.version.as_deref(), Some("4.5.2"));
        let old = pick(
            &[engine_pod(
                "nvidia-gpu-operator",
                "nvidia-dcgm",
                "nvcr.io/nvidia/cloud-native/dcgm:4.4.2-1-ubuntu22.04",
                "fd00::12",
                true,
            )],
            "gpu-node-5",
        )
        .unwrap();
        assert_eq!(old.engine.arg(), "[fd00::12]:5555");
        assert!(old.describe().contains("without heartbeat"));
        // By digest only: no version, so no heartbeat (a 4.4 engine refuses the flag).
        let by_digest = pick(
            &[engine_pod(
                "gpu-operator",
                "nvidia-dcgm",
                "nvcr.io/nvidia/cloud-native/dcgm@sha256:1111111111111111111111111111111111111111111111111111111111111111",
                "10.0.0.9",
                true,
            )],
            "gpu-node-5",
        )
        .unwrap();
        assert!(!by_digest.engine.heartbeat && by_digest.version.is_none());
    }

    /// A tenant's look-alike (its own namespace, its own DaemonSet name, a bare pod), a pod not ready, one
    /// on another node or with no IP: none is an engine.
    #[test]
    fn look_alikes_are_not_engines() {
        let tenant = engine_pod("team-a", "nvidia-dcgm", IMG45, "10.244.1.8", true);
        let renamed = engine_pod("gpu-operator", "my-dcgm", IMG45, "10.244.1.9", true);
        let mut bare = engine_pod("gpu-operator", "nvidia-dcgm", IMG45, "10.244.1.10", true);
        bare.metadata.owner_references = None;
        let mut not_controller =
            engine_pod("gpu-operator", "nvidia-dcgm", IMG45, "10.244.1.11", true);
        not_controller.metadata.owner_references.as_mut().unwrap()[0].controller = None;
        let unready = engine_pod("gpu-operator", "nvidia-dcgm", IMG45, "10.244.1.12", false);
        let mut elsewhere = engine_pod("gpu-operator", "nvidia-dcgm", IMG45, "10.244.1.13", true);
        elsewhere.spec.as_mut().unwrap().node_name = Some("gpu-node-6".into());
        let mut named = engine_pod(
            "gpu-operator",
            "nvidia-dcgm",
            IMG45,
            "evil.example.com",
            true,
        );
        named.status.as_mut().unwrap().pod_ip = Some("evil.example.com".into());
        let mut leaving = engine_pod("gpu-operator", "nvidia-dcgm", IMG45, "10.244.1.14", true);
        leaving.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Default::default()),
        );
        for (p, what) in [
            (tenant, "a tenant's namespace"),
            (renamed, "another DaemonSet"),
            (bare, "a bare pod"),
            (not_controller, "not the controller"),
            (unready, "not ready"),
            (elsewhere, "another node"),
            (named, "a name for an IP"),
            (leaving, "being deleted"),
        ] {
            assert_eq!(pick(&[p], "gpu-node-5"), None, "{what}");
        }
    }

    #[test]
    fn versions_from_tags() {
        assert_eq!(version_of(IMG45).map(|v| v.2), Some("4.5.2".into()));
        assert_eq!(
            version_of("registry.example.com:5000/gpu/dcgm:3.3.9-1-ubuntu22.04")
                .map(|v| (v.0, v.1)),
            Some((3, 3))
        );
        assert_eq!(version_of("registry.example.com:5000/gpu/dcgm"), None);
        assert_eq!(version_of("nvcr.io/nvidia/cloud-native/dcgm:latest"), None);
    }
}
