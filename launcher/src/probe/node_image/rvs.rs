//! The base of a run that needs AMD's ROCm Validation Suite in its image (`run_gpu_diagnostic` on an AMD
//! node, node-probe's `rvs-diag`): `rvs` and its recipes ship in AMD's test runner image, the one AMD's GPU
//! Operator runs its health checks in (`rocm/test-runner`; its public image carries RVS only:
//! ../shared/reference/amd-gpus.md section 6, ROCm/gpu-operator's test runner docs). node-probe is copied into
//! it like into any base. Only an image the node already lists by digest is used: nothing is pulled, and a
//! node without one answers "not available" before any pod exists.

use k8s_openapi::api::core::v1::Node;

use super::assess::{Candidate, clip};
use crate::probe::trust::{ImageRef, TrustPolicy};

/// AMD's test runner image on Docker Hub. The `rocm` namespace is AMD's own (only AMD publishes there): this
/// one repository is a built-in trusted source (`crate::probe::trust::BUILT_IN`), by digest only.
pub const REPOSITORY: &str = "docker.io/rocm/test-runner";

/// The test runner image for a run on `node`: one the node lists by digest, AMD's own repository or a
/// `.../test-runner` repository of a trusted source (a mirror trusted with `--trust-image`). Err: the
/// "not available" sentence, naming what the node lacks.
pub fn choose(node_name: &str, node: &Node, policy: &TrustPolicy) -> Result<Candidate, String> {
    let wanted = |r: &ImageRef| {
        r.digest.is_some()
            && (r.repository == REPOSITORY || r.repository.ends_with("/test-runner"))
            && policy.source_of(r).is_some()
    };
    let images = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed = images.iter().find_map(|img| {
        let names = img.names.as_deref().unwrap_or_default();
        let image = names
            .iter()
            .find(|n| ImageRef::parse(n).is_ok_and(|r| wanted(&r)))?;
        let label = names.iter().find(|n| !n.contains('@')).unwrap_or(image);
        Some(Candidate {
            image: image.clone(),
            label: clip(label),
            rank: 0,
            pull: false,
        })
    });
    listed.ok_or_else(|| {
        format!(
            "not available: node {} has no AMD test runner image (rocm/test-runner) by digest; the diagnostic \
             runs AMD's ROCm Validation Suite (rvs) from that image, with node-probe copied into it, and pulls \
             nothing. Enable AMD GPU Operator's test runner on the node (its DaemonSet pulls the image), or \
             pull {REPOSITORY} there (a mirror's .../test-runner trusted with --trust-image); no pod was started",
            clip(node_name)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeStatus};

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn node(images: &[&[&str]]) -> Node {
        Node {
            status: Some(NodeStatus {
                images: Some(
                    images
                        .iter()
                        .map(|names| ContainerImage {
                            names: Some(names.iter().map(|n| n.to_string()).collect()),
                            size_bytes: Some(1),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn policy(extra: &[&str]) -> TrustPolicy {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        TrustPolicy::with(&extra, None).unwrap()
    }

    #[test]
    fn the_nodes_test_runner_by_digest_is_used() {
        let by_digest = format!("{REPOSITORY}@{DIGEST}");
        let n = node(&[
            &[
                "docker.io/library/debian@sha256:2222222222222222222222222222222222222222222222222222222222222222",
            ],
            &["docker.io/rocm/test-runner:v1.4.0", &by_digest],
        ]);
        let c = choose("n", &n, &policy(&[])).unwrap();
        assert_eq!(c.image, by_digest);
        assert_eq!(c.label, "docker.io/rocm/test-runner:v1.4.0");
        assert!(!c.pull);
        // Docker Hub's short form names the same repository.
        let short = format!("rocm/test-runner@{DIGEST}");
        assert_eq!(
            choose("n", &node(&[&[&short]]), &policy(&[]))
                .unwrap()
                .image,
            short
        );
    }

    #[test]
    fn a_tag_alone_another_namespace_or_an_untrusted_mirror_is_not_available() {
        for names in [
            vec!["docker.io/rocm/test-runner:v1.4.0".to_string()],
            vec![format!("docker.io/someone/test-runner@{DIGEST}")],
            vec![format!("docker.io/rocm/device-metrics-exporter@{DIGEST}")],
            vec![format!("docker.io/rocm/test-runner-x@{DIGEST}")],
            vec![format!("registry.example.com/amd/test-runner@{DIGEST}")],
            vec!["docker.io/rocm/test-runner@sha256:1;rm -rf /".to_string()],
        ] {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let e = choose("gpu-7", &node(&[&names]), &policy(&[])).unwrap_err();
            assert!(
                e.starts_with(
                    "not available: node gpu-7 has no AMD test runner image (rocm/test-runner)"
                ),
                "{names:?}: {e}"
            );
            assert!(e.contains("no pod was started"), "{e}");
        }
        let e = choose("n", &node(&[]), &policy(&[])).unwrap_err();
        assert!(e.contains("not available"), "{e}");
    }

    #[test]
    fn a_trusted_mirror_is_used() {
        let mirror = format!("registry.example.com/amd/test-runner@{DIGEST}");
        let c = choose(
            "n",
            &node(&[&[&mirror]]),
            &policy(&["registry.example.com/amd/"]),
        )
        .unwrap();
        assert_eq!(c.image, mirror);
    }

    #[test]
    fn a_hostile_node_name_is_clipped_in_the_answer() {
        let name = format!("n\u{1b}[2J{}", "x".repeat(400));
        let e = choose(&name, &node(&[]), &policy(&[])).unwrap_err();
        assert!(!e.contains('\u{1b}') && e.len() < 900, "{e}");
    }
}
