//! Which base images copy delivery tries, by repository name, and in what order: the ranking table, with
//! the provenance of its NVIDIA component images.

/// Repository patterns (matched against the last path elements of the repository, without tag or digest) and
/// their rank; lower is better. Order matters: the first match decides.
///
/// NVIDIA's component images on GPU nodes, judged from their public Dockerfiles (the runtime stage):
/// - `nvidia/k8s/dcgm-exporter`: ranked (45, beside the driver image). Its `-ubuntu22.04`/`-ubi9` images are
///   the full CUDA base (NVIDIA/dcgm-exporter `docker/Dockerfile.ubuntu22.04` and `Dockerfile.ubi9` at
///   3.3.9-3.6.1: `FROM nvcr.io/nvidia/cuda:12.6.2-base-ubuntu22.04`; `docker/Dockerfile.ubuntu`/`.ubi` at
///   4.2.3-4.1.3: `nvcr.io/nvidia/cuda:12.8.1-base-ubuntu22.04`), and the tag names that base, so
///   [`super::glibc_of`] knows its glibc. Since 4.4.2-4.7.0 there is also a `-distroless` tag (`docker/Dockerfile`,
///   target `runtime-distroless`: `nvcr.io/nvidia/distroless/cc` with only `sh`, `bash`, `env` copied in, no
///   coreutils); the repository name cannot tell it apart, so such an image would be tried and fail on its
///   missing `head`/`tee` with a clear reason, and the next one is tried.
/// - Not listed (not tried, "not a known base"), because their base changed between versions and neither the
///   repository nor, from some version on, the tag tells which: `k8s-device-plugin` (also GPU feature
///   discovery since v0.15) is the CUDA UBI 8 base up to v0.16.x (`deployments/container/Dockerfile.ubi8`),
///   the CUDA UBI 9 base stripped to UBI 9 minimal's packages in v0.17.x (`deployments/container/Dockerfile`
///   and `cleanup/cleanup.sh`, which this table refuses as `ubi9-minimal`), and distroless from v0.18.0
///   (`FROM nvcr.io/nvidia/distroless/go:v3.1.13-dev`); `k8s/container-toolkit` is the CUDA Ubuntu 20.04 or
///   UBI 8 base up to v1.17.x (tags `-ubuntu20.04`/`-ubi8`, NVIDIA/nvidia-container-toolkit
///   `deployments/container/Dockerfile.ubuntu`) and distroless from v1.18.0 (`nvcr.io/nvidia/distroless/go`,
///   untagged base); `cloud-native/gpu-operator-validator` is the CUDA UBI base up to v25.3.x
///   (NVIDIA/gpu-operator `validator/Dockerfile` at v22.9.1 and v24.9.2: `cuda:…-base-ubi8`/`-ubi9`) and
///   distroless from v25.10.0 (`docker/Dockerfile`: `nvcr.io/nvidia/distroless/cc:v3.1.13-dev`). A wrong guess
///   costs a pod start, so these are left out rather than marked known-broken (most versions in use work).
const KNOWN: &[(&str, u8)] = &[
    // Never: no shell or no glibc.
    ("distroless", u8::MAX),
    ("busybox", u8::MAX),
    ("alpine", u8::MAX),
    ("ubi-micro", u8::MAX),
    ("ubi8-micro", u8::MAX),
    ("ubi9-micro", u8::MAX),
    ("ubi-minimal", u8::MAX),
    ("ubi8-minimal", u8::MAX),
    ("ubi9-minimal", u8::MAX),
    ("pause", u8::MAX),
    // Plain distribution bases.
    ("library/debian", 10),
    ("library/ubuntu", 10),
    ("debian", 11),
    ("ubuntu", 11),
    ("ubi8/ubi", 20),
    ("ubi9/ubi", 20),
    ("ubi10/ubi", 20),
    ("ubi8", 21),
    ("ubi9", 21),
    ("rockylinux", 22),
    ("almalinux", 22),
    ("fedora", 22),
    ("amazonlinux", 22),
    ("centos", 23),
    // NVIDIA's CUDA images (Ubuntu or UBI), then the GPU Operator's driver image (Ubuntu or RHEL).
    ("nvidia/cuda", 30),
    ("nvidia/driver", 40),
    // NVIDIA's DCGM exporter (CUDA base Ubuntu 22.04 or UBI 9, named in the tag; see above).
    ("nvidia/k8s/dcgm-exporter", 45),
    // Framework images on GPU nodes (Ubuntu based).
    ("nvidia/pytorch", 50),
    ("pytorch/pytorch", 50),
    ("nvidia/tensorflow", 50),
    ("tensorflow/tensorflow", 50),
    ("nvidia/tritonserver", 55),
    ("nvidia/nemo", 55),
    // AMD's ROCm development images: the Ubuntu release's own image with ROCm's packages added, named in the
    // repository (ROCm/ROCm-docker `dev/Dockerfile-ubuntu-22.04` line 1 `FROM ubuntu:22.04`, likewise 20.04
    // and 24.04; tagged `rocm/dev-ubuntu-22.04:<ROCm version>` by its `build_all.sh`).
    ("rocm/dev-ubuntu-20.04", 35),
    ("rocm/dev-ubuntu-22.04", 35),
    ("rocm/dev-ubuntu-24.04", 35),
];

/// Intel's Gaudi software images, which carry their base in the repository path
/// (`vault.habana.ai/gaudi-docker/<release>/<os>/habanalabs/<image>-installer-<version>`,
/// HabanaAI/Setup_and_Install `dockerfiles/common.mk` and the health screen's `config.yaml`). The base
/// installer is the OS image with Habana's packages added, the PyTorch installer is built on it
/// (`dockerfiles/pytorch/Dockerfile.ubuntu`: `FROM ${BASE_NAME}:...`). Only the OS images whose base this
/// delivery knows are tried: `ubuntu22.04` and `ubuntu24.04` (`dockerfiles/base/Dockerfile.ubuntu22.04`:
/// `FROM ubuntu:jammy`, `.ubuntu24.04`: `FROM ubuntu:noble`) and `rhel9.<minor>`
/// (`FROM registry.access.redhat.com/ubi9/ubi:9.4`); TencentOS, OpenCloudOS and Navix start from minimal
/// images of their own and are not tried.
fn gaudi_rank(repo: &str) -> Option<u8> {
    let path: Vec<&str> = repo.split('/').collect();
    let [_, "gaudi-docker", _, os, "habanalabs", image] = path.as_slice() else {
        return None;
    };
    let os_known = ["ubuntu22.04", "ubuntu24.04"].contains(os)
        || os
            .strip_prefix("rhel9.")
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
    if !os_known {
        return None;
    }
    if image.starts_with("base-installer-") {
        Some(36)
    } else if image.starts_with("pytorch-installer-") {
        Some(52)
    } else {
        None
    }
}

/// The rank of one repository (normalised); None: unknown (not tried, since a wrong guess costs a pod start).
pub(super) fn rank_of(repo: &str) -> Option<u8> {
    if let Some(rank) = gaudi_rank(repo) {
        return Some(rank);
    }
    for (pattern, rank) in KNOWN {
        // Match whole path elements from the end: `docker.io/library/debian` ends with `library/debian` and
        // `debian`; `myorg/debian-tools` matches neither.
        if repo == *pattern || repo.ends_with(&format!("/{pattern}")) {
            return Some(*rank);
        }
        // UBI micro/minimal and distroless/busybox/alpine variants are rejected on any path element.
        if *rank == u8::MAX && repo.split('/').any(|e| e.starts_with(pattern)) {
            return Some(*rank);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::probe::node_image::test_support::{digest_of, node, node_of, ranked};
    use crate::probe::node_image::{rank, rank_for, refused};
    use crate::probe::trust::TrustPolicy;

    #[test]
    fn trusted_bases_by_digest_first_then_nvidia_then_frameworks_and_never_the_broken_kinds() {
        let pulled = |t: &str| vec![digest_of(t), t.to_string()];
        let imgs: Vec<(Vec<String>, i64)> = vec![
            (
                pulled("nvcr.io/nvidia/driver:550.54.15-ubuntu22.04"),
                900_000_000,
            ),
            (pulled("registry.k8s.io/pause:3.10"), 300_000),
            (pulled("gcr.io/distroless/base-debian12:latest"), 20_000_000),
            (pulled("docker.io/library/alpine:3.20"), 7_000_000),
            (pulled("nvcr.io/nvidia/pytorch:24.05-py3"), 9_000_000_000),
            (
                pulled("nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
                90_000_000,
            ),
            (pulled("docker.io/library/ubuntu:22.04"), 30_000_000),
            (
                pulled("registry.access.redhat.com/ubi9/ubi-minimal:9.4"),
                40_000_000,
            ),
            (
                pulled("nvcr.io/nvidia/k8s-device-plugin:v0.16.1"),
                50_000_000,
            ),
            (pulled("myorg/debian-tools:1"), 10_000_000),
            (pulled("docker.io/library/debian:bookworm-slim"), 28_000_000),
            // Framework images of a publisher not on the built-in list: refused, not ranked.
            (
                pulled("docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime"),
                5_000_000_000,
            ),
        ];
        let n = node_of(&imgs);
        assert_eq!(
            ranked(&n),
            [
                "docker.io/library/debian:bookworm-slim",
                "docker.io/library/ubuntu:22.04",
                "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
                "nvcr.io/nvidia/driver:550.54.15-ubuntu22.04",
                "nvcr.io/nvidia/pytorch:24.05-py3",
            ]
        );
        // The pod runs the digest, never the tag.
        let first = &rank(&n, &BTreeSet::new(), &TrustPolicy::default())[0];
        assert_eq!(
            first.image,
            digest_of("docker.io/library/debian:bookworm-slim")
        );
        let refused = refused(&n, &TrustPolicy::default(), 20);
        assert!(
            refused.contains(
                &"docker.io/pytorch/pytorch:2.3.0-cuda12.1-cudnn8-runtime (untrusted source)"
                    .to_string()
            ),
            "{refused:?}"
        );
        assert!(
            refused.contains(
                &"docker.io/library/alpine:3.20 (known not to work (no shell or no glibc))"
                    .to_string()
            ),
            "{refused:?}"
        );
    }

    /// An AMD node's ROCm development image and a Gaudi node's Habana images are bases (by digest, from AMD's
    /// exact repositories and Intel's registry); other ROCm repositories, Habana OS images whose base this
    /// delivery does not know, and lookalikes elsewhere are not.
    #[test]
    fn rocm_and_habana_bases_rank_and_their_lookalikes_do_not() {
        let pulled = |t: &str| vec![digest_of(t), t.to_string()];
        let hv = "vault.habana.ai/gaudi-docker/1.22.0";
        let imgs: Vec<(Vec<String>, i64)> = vec![
            (
                pulled(&format!(
                    "{hv}/ubuntu22.04/habanalabs/pytorch-installer-2.7.1:latest"
                )),
                9_000_000_000,
            ),
            (
                pulled(&format!(
                    "{hv}/rhel9.4/habanalabs/base-installer-rhel9.4:1.22.0-740"
                )),
                2_000_000_000,
            ),
            (
                pulled(&format!(
                    "{hv}/tencentos3.1/habanalabs/pytorch-installer-2.7.1:latest"
                )),
                9_000_000_000,
            ),
            (
                pulled(&format!(
                    "{hv}/ubuntu22.04/habanalabs/triton-installer-2.7.1:latest"
                )),
                9_000_000_000,
            ),
            (
                pulled("docker.io/rocm/dev-ubuntu-22.04:6.4.4"),
                3_000_000_000,
            ),
            (
                pulled("docker.io/rocm/pytorch:rocm6.4_ubuntu22.04_py3.10_pytorch_release_2.6.0"),
                20_000_000_000,
            ),
            (
                pulled("registry.example.com/rocm/dev-ubuntu-22.04:6.4.4"),
                3_000_000_000,
            ),
            (
                pulled(
                    "registry.example.com/gaudi-docker/1.22.0/ubuntu22.04/habanalabs/pytorch-installer-2.7.1:latest",
                ),
                9_000_000_000,
            ),
        ];
        let n = node_of(&imgs);
        assert_eq!(
            ranked(&n),
            [
                "docker.io/rocm/dev-ubuntu-22.04:6.4.4",
                "vault.habana.ai/gaudi-docker/1.22.0/rhel9.4/habanalabs/base-installer-rhel9.4:1.22.0-740",
                "vault.habana.ai/gaudi-docker/1.22.0/ubuntu22.04/habanalabs/pytorch-installer-2.7.1:latest",
            ]
        );
        let out = refused(&n, &TrustPolicy::default(), 20);
        for r in [
            "registry.example.com/rocm/dev-ubuntu-22.04:6.4.4 (untrusted source)",
            "registry.example.com/gaudi-docker/1.22.0/ubuntu22.04/habanalabs/pytorch-installer-2.7.1:latest (untrusted source)",
        ] {
            assert!(out.contains(&r.to_string()), "{r}: {out:?}");
        }
        // Not a known base, so not tried: ROCm's framework image and the Habana OS images with bases of their
        // own; none is listed as refused (refused lists only what was a candidate kind).
        for r in ["rocm/pytorch", "tencentos3.1", "triton-installer"] {
            assert!(!out.iter().any(|x| x.contains(r)), "{r}: {out:?}");
        }
        // A Habana image by tag alone is refused like any other.
        let tag_only = format!("{hv}/ubuntu24.04/habanalabs/base-installer-ubuntu24.04:1.22.0-740");
        let n = node(&[(&[tag_only.as_str()], 10)]);
        assert!(ranked(&n).is_empty());
        assert_eq!(
            refused(&n, &TrustPolicy::default(), 20),
            [format!("{tag_only} (no digest listed)")]
        );
        // Their glibc is told by the name: a build that needs 2.36 skips both.
        let n = node_of(&imgs);
        let (usable, too_old) =
            rank_for(&n, &BTreeSet::new(), &TrustPolicy::default(), Some((2, 36)));
        assert!(usable.is_empty(), "{usable:?}");
        assert_eq!(too_old.len(), 3, "{too_old:?}");
    }

    /// A GPU Operator node's own images: the CUDA base and the driver image first, then the DCGM exporter
    /// (CUDA base, named in its tag), then the frameworks; the components whose base changed between versions
    /// (device plugin, toolkit, validator) are not tried and not listed as refused; distroless is refused.
    #[test]
    fn gpu_operator_components_rank_after_cuda_and_the_driver_and_the_changing_ones_are_not_tried()
    {
        let pulled = |t: &str| vec![digest_of(t), t.to_string()];
        let imgs: Vec<(Vec<String>, i64)> = vec![
            (
                pulled("nvcr.io/nvidia/k8s-device-plugin:v0.17.0"),
                187_560_257,
            ),
            (
                pulled("nvcr.io/nvidia/cloud-native/gpu-operator-validator:v24.9.2"),
                183_351_646,
            ),
            (
                pulled("nvcr.io/nvidia/k8s/container-toolkit:v1.17.4-ubuntu20.04"),
                132_859_723,
            ),
            (
                pulled("nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"),
                127_723_011,
            ),
            (
                pulled("nvcr.io/nvidia/cloud-native/k8s-driver-manager:v0.7.0"),
                225_657_726,
            ),
            (pulled("nvcr.io/nvidia/pytorch:24.05-py3"), 9_000_000_000),
            (
                pulled("nvcr.io/nvidia/driver:550.144.03-ubuntu22.04"),
                1_200_000_000,
            ),
            (pulled("nvcr.io/nvidia/cuda:12.6.3-base-ubi9"), 250_000_000),
            (
                pulled("nvcr.io/nvidia/distroless/go:v3.1.13-dev"),
                30_000_000,
            ),
        ];
        let n = node_of(&imgs);
        assert_eq!(
            ranked(&n),
            [
                "nvcr.io/nvidia/cuda:12.6.3-base-ubi9",
                "nvcr.io/nvidia/driver:550.144.03-ubuntu22.04",
                "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04",
                "nvcr.io/nvidia/pytorch:24.05-py3",
            ]
        );
        let refused = refused(&n, &TrustPolicy::default(), 20);
        assert_eq!(
            refused,
            ["nvcr.io/nvidia/distroless/go:v3.1.13-dev (known not to work (no shell or no glibc))"],
            "{refused:?}"
        );
        // The exporter's glibc is told by its tag: an Ubuntu 20.04 one is never tried for a newer build.
        let old = "nvcr.io/nvidia/k8s/dcgm-exporter:3.1.3-3.1.2-ubuntu20.04";
        let od = digest_of(old);
        let n = node(&[(&[od.as_str(), old], 10)]);
        let (usable, too_old) =
            rank_for(&n, &BTreeSet::new(), &TrustPolicy::default(), Some((2, 34)));
        assert!(usable.is_empty(), "{usable:?}");
        assert_eq!(
            too_old,
            [format!(
                "{old} (glibc 2.31 from ubuntu20.04 in its name; node-probe needs 2.34)"
            )]
        );
        assert_eq!(
            rank_for(&n, &BTreeSet::new(), &TrustPolicy::default(), Some((2, 28)))
                .0
                .len(),
            1
        );
    }
}
