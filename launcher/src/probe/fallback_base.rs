//! The base image pulled once, by digest, when a node lists no usable trusted base ([`super::node_image`]).
//!
//! Managed platforms' GPU nodes (EKS AL2023 and Bottlerocket, GKE COS, AKS Ubuntu) list only their own system
//! images: distroless or minimal add-ons from the provider's registry, pause, the device plugin. None is a
//! glibc base with a shell. Rather than send every user off to find an image and its digest, the default
//! delivery pulls one official glibc base, named by its multi-arch index digest (the same digest on Docker
//! Hub and on the clouds' copies of the Docker Official Images), from the registry the node's platform
//! reaches best. `--no-pull` keeps the older behaviour (an error naming the flags instead).
//!
//! The image: `debian:bookworm-20260918-slim` (Debian 12, glibc 2.36, with sh and coreutils), index digest
//! and per-platform sizes as the Docker Official Images program records them:
//! https://github.com/docker-library/repo-info/blob/master/repos/debian/remote/bookworm-20260918-slim.md
//! (amd64 28,238,443 bytes and arm64 28,123,680 bytes compressed, one layer each). A dated tag, so the
//! tag and the digest keep naming the same content.

use k8s_openapi::api::core::v1::Node;

/// The index digest of `debian:bookworm-20260918-slim` (see the module's source).
pub const DIGEST: &str = "sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251";
/// The tag the digest was published under, for messages.
pub const TAG: &str = "bookworm-20260918-slim";

/// Where a node runs, as its labels and `spec.providerID` tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Eks,
    Gke,
    Aks,
    Other,
}

/// The platform of `node`: `spec.providerID` (`aws://`, `gce://`, `azure://`, as each cloud provider's
/// kubelet sets it) or the platform's node labels (`eks.amazonaws.com/nodegroup`,
/// `cloud.google.com/gke-nodepool`, `kubernetes.azure.com/agentpool`).
pub fn platform_of(node: &Node) -> Platform {
    let provider = node
        .spec
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .unwrap_or_default();
    let labels = node.metadata.labels.as_ref();
    let has_label = |prefix: &str| labels.is_some_and(|l| l.keys().any(|k| k.starts_with(prefix)));
    if provider.starts_with("aws://") || has_label("eks.amazonaws.com/") {
        Platform::Eks
    } else if provider.starts_with("gce://") || has_label("cloud.google.com/gke-") {
        Platform::Gke
    } else if provider.starts_with("azure://") || has_label("kubernetes.azure.com/") {
        Platform::Aks
    } else {
        Platform::Other
    }
}

/// The fallback base for one node: what the pod names and where the node pulls it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackBase {
    /// `repository@sha256:…`: what the probe pod runs (pull policy IfNotPresent).
    pub image: String,
    /// A tagged name, for messages.
    pub label: String,
    /// The registry the node pulls from, in words.
    pub registry: &'static str,
    /// The compressed size of the node architecture's image, bytes (None: an architecture not published).
    pub size: Option<u64>,
}

/// The fallback base for `node`, from the registry its platform reaches best:
/// - EKS: ECR Public's copy of the Docker Official Images (`public.ecr.aws/docker/library/`), in AWS's
///   network and without Docker Hub's anonymous pull limits
///   (https://docs.aws.amazon.com/AmazonECR/latest/public/docker-pull-ecr-image.html, "Docker Official
///   Images on Amazon ECR Public").
/// - GKE: Docker Hub's name; GKE nodes look in Google's mirror (`mirror.gcr.io`) before Docker Hub
///   (https://cloud.google.com/artifact-registry/docs/pull-cached-dockerhub-images: "Google Kubernetes
///   Engine automatically check[s] for cached images before attempting to pull an image from Docker Hub"),
///   which a `mirror.gcr.io/` name would not fall back from.
/// - AKS and elsewhere: Docker Hub (one anonymous pull per node, far below its limits).
pub fn for_node(node: &Node) -> FallbackBase {
    let size = match super::delivery::node_arch(node) {
        "amd64" => Some(28_238_443),
        "arm64" => Some(28_123_680),
        _ => None,
    };
    let (repository, registry) = match platform_of(node) {
        Platform::Eks => (
            "public.ecr.aws/docker/library/debian",
            "ECR Public (public.ecr.aws, AWS's copy of the Docker Official Images)",
        ),
        Platform::Gke => (
            "docker.io/library/debian",
            "Google's Docker Hub mirror (mirror.gcr.io, which GKE nodes try first), else Docker Hub",
        ),
        Platform::Aks | Platform::Other => ("docker.io/library/debian", "Docker Hub (docker.io)"),
    };
    FallbackBase {
        image: format!("{repository}@{DIGEST}"),
        label: format!("debian:{TAG}"),
        registry,
        size,
    }
}

impl FallbackBase {
    /// "about 28 MB" for messages; "an unknown size" for an architecture the image is not published for.
    pub fn size_text(&self) -> String {
        match self.size {
            Some(b) => format!("about {} MB", (b + 500_000) / 1_000_000),
            None => "an unknown size".into(),
        }
    }

    /// What a call will do on this node, in one clause (for `check` and logs).
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {}) is pulled once from {}",
            self.label,
            self.image,
            self.size_text(),
            self.registry
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::trust::{ImageRef, TrustPolicy};
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, NodeSystemInfo};
    use std::collections::BTreeMap;

    fn node(provider: Option<&str>, labels: &[&str], arch: &str) -> Node {
        let mut n = Node {
            spec: Some(NodeSpec {
                provider_id: provider.map(str::to_string),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                node_info: Some(NodeSystemInfo {
                    architecture: arch.into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|k| (k.to_string(), "x".to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        n
    }

    #[test]
    fn the_platform_comes_from_the_provider_id_or_the_labels() {
        let cases = [
            (Some("aws:///us-east-1a/i-0123"), &[][..], Platform::Eks),
            (None, &["eks.amazonaws.com/nodegroup"][..], Platform::Eks),
            (Some("gce://proj/us-central1-a/gke-n"), &[], Platform::Gke),
            (None, &["cloud.google.com/gke-nodepool"], Platform::Gke),
            (Some("azure:///subscriptions/x/vmss/0"), &[], Platform::Aks),
            (None, &["kubernetes.azure.com/agentpool"], Platform::Aks),
            (None, &["kubernetes.io/arch"], Platform::Other),
            (Some("kind://docker/kind/kind-worker"), &[], Platform::Other),
        ];
        for (provider, labels, want) in cases {
            assert_eq!(
                platform_of(&node(provider, labels, "amd64")),
                want,
                "{provider:?} {labels:?}"
            );
        }
    }

    #[test]
    fn every_fallback_is_a_trusted_digest_of_the_same_index() {
        let policy = TrustPolicy::default();
        for provider in ["aws:///x", "gce://x", "azure:///x", "kind://x"] {
            let f = for_node(&node(Some(provider), &[], "arm64"));
            let r = ImageRef::parse(&f.image).unwrap();
            assert_eq!(r.digest.as_deref(), Some(DIGEST), "{f:?}");
            assert!(policy.source_of(&r).is_some(), "untrusted: {f:?}");
            // What the admission policy's image rule requires (deploy/policies.yaml).
            assert!(
                f.image.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"._/:-@".contains(&b))
                    && !f.image.contains("..")
                    && !f.image.contains("//"),
                "{f:?}"
            );
            assert_eq!(f.size, Some(28_123_680));
        }
        assert!(
            for_node(&node(Some("aws:///x"), &[], "amd64"))
                .image
                .starts_with("public.ecr.aws/docker/library/debian@")
        );
        assert_eq!(for_node(&node(None, &[], "s390x")).size, None);
        assert_eq!(
            for_node(&node(None, &[], "amd64")).describe(),
            format!(
                "debian:{TAG} (docker.io/library/debian@{DIGEST}, about 28 MB) is pulled once from Docker Hub (docker.io)"
            )
        );
    }
}
