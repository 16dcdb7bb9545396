//! The base of a run that needs NVIDIA's DCGM in its image (`run_gpu_diagnostic`, node-probe's
//! `dcgm-diag`): `dcgmi`, nvvs and the CUDA diagnostic plugins ship in NVIDIA's DCGM image
//! (`nvcr.io/nvidia/cloud-native/dcgm`, its public Dockerfile installs `datacenter-gpu-manager-4-cuda12/13`);
//! dcgm-exporter's image has no diagnostic plugins (NVIDIA/dcgm-exporter issue #324). node-probe is copied
//! into it like into any base, so it is chosen as bases are: by digest, from a trusted source, from what the
//! node lists; else the one the owner configured (`--dcgm-image`), pulled by its digest.

use k8s_openapi::api::core::v1::Node;

use super::assess::{Candidate, clip};
use crate::probe::trust::{ImageRef, TrustPolicy};

/// NVIDIA's DCGM image (the GPU Operator's `dcgm.repository`/`dcgm.image`).
pub const REPOSITORY: &str = "nvcr.io/nvidia/cloud-native/dcgm";

/// The DCGM image for a run on `node`: one the node lists by digest, from NVIDIA's DCGM repository or the
/// repository of `configured` (a mirror), from a trusted source; else `configured` itself, pulled by its
/// digest. Err: why there is none and what to set.
pub fn choose(
    node_name: &str,
    node: &Node,
    policy: &TrustPolicy,
    configured: Option<&str>,
) -> Result<Candidate, String> {
    let mirror = configured.and_then(|c| ImageRef::parse(c).ok());
    let wanted = |r: &ImageRef| {
        r.repository == REPOSITORY
            || mirror
                .as_ref()
                .is_some_and(|m| m.repository == r.repository)
    };
    let images = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let listed = images.iter().find_map(|img| {
        let names = img.names.as_deref().unwrap_or_default();
        let image = names.iter().find(|n| {
            ImageRef::parse(n)
                .is_ok_and(|r| r.digest.is_some() && wanted(&r) && policy.source_of(&r).is_some())
        })?;
        let label = names.iter().find(|n| !n.contains('@')).unwrap_or(image);
        Some(Candidate {
            image: image.clone(),
            label: clip(label),
            rank: 0,
            pull: false,
        })
    });
    if let Some(c) = listed {
        return Ok(c);
    }
    if let Some(c) = configured {
        return Ok(Candidate {
            image: c.to_string(),
            label: c.to_string(),
            rank: 0,
            pull: true,
        });
    }
    Err(format!(
        "node {node_name} lists no NVIDIA DCGM image ({REPOSITORY}) by digest, and none is configured: the \
         diagnostic runs DCGM's dcgmi from that image (node-probe is copied into it). Set \
         --dcgm-image {REPOSITORY}@sha256:DIGEST, or for an air-gapped node your mirror of it \
         (REGISTRY/PATH/dcgm@sha256:DIGEST, trusted with --trust-image REGISTRY/PATH/), and the node pulls it \
         by that digest"
    ))
}

/// Check `--dcgm-image`: a digest reference from a trusted source (the pod runs it as root on the node).
pub fn check_configured(image: &str, policy: &TrustPolicy) -> Result<(), String> {
    let r = ImageRef::parse(image).map_err(|e| format!("--dcgm-image: {e}"))?;
    if r.digest.is_none() {
        return Err(format!(
            "--dcgm-image {image}: name it by digest ({}@sha256:...): a tag can be re-pointed",
            r.repository
        ));
    }
    if policy.source_of(&r).is_none() {
        return Err(format!(
            "--dcgm-image {image}: {} is not from a trusted source; add it with --trust-image",
            r.repository
        ));
    }
    Ok(())
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
    fn the_nodes_own_dcgm_image_by_digest_first() {
        let by_digest = format!("{REPOSITORY}@{DIGEST}");
        let n = node(&[
            &[
                "docker.io/library/debian@sha256:2222222222222222222222222222222222222222222222222222222222222222",
            ],
            &[&format!("{REPOSITORY}:4.6.0-1-ubuntu24.04"), &by_digest],
        ]);
        let c = choose("n", &n, &policy(&[]), None).unwrap();
        assert_eq!(c.image, by_digest);
        assert_eq!(c.label, format!("{REPOSITORY}:4.6.0-1-ubuntu24.04"));
        assert!(!c.pull);
    }

    #[test]
    fn a_tag_alone_an_untrusted_copy_and_the_exporter_are_not_used() {
        let n = node(&[
            &[&format!("{REPOSITORY}:4.6.0-1-ubuntu24.04")],
            &[&format!("docker.io/someone/dcgm@{DIGEST}")],
            &[&format!("nvcr.io/nvidia/k8s/dcgm-exporter@{DIGEST}")],
        ]);
        let e = choose("n", &n, &policy(&[]), None).unwrap_err();
        assert!(e.contains("--dcgm-image") && e.contains("mirror"), "{e}");
    }

    #[test]
    fn the_configured_mirror_is_listed_or_pulled() {
        let mirror = format!("registry.example.com/gpu/dcgm@{DIGEST}");
        let p = policy(&["registry.example.com/gpu/"]);
        let c = choose("n", &node(&[]), &p, Some(&mirror)).unwrap();
        assert!(c.pull && c.image == mirror);
        let other = "registry.example.com/gpu/dcgm@sha256:3333333333333333333333333333333333333333333333333333333333333333";
        let c = choose("n", &node(&[&[other]]), &p, Some(&mirror)).unwrap();
        assert!(!c.pull && c.image == other, "{c:?}");
    }

    #[test]
    fn the_configured_image_is_a_trusted_digest() {
        let p = policy(&[]);
        assert!(check_configured(&format!("{REPOSITORY}@{DIGEST}"), &p).is_ok());
        let e = check_configured(&format!("{REPOSITORY}:4.6.0-1-ubuntu24.04"), &p).unwrap_err();
        assert!(e.contains("by digest"), "{e}");
        let e = check_configured(&format!("docker.io/someone/dcgm@{DIGEST}"), &p).unwrap_err();
        assert!(e.contains("--trust-image"), "{e}");
    }
}
