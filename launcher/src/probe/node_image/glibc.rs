//! The glibc of a base image as far as its name tells, so that a base older than the node-probe build
//! needs is never tried.

use crate::probe::trust::ImageRef;

/// The glibc of a base image as far as its name tells (distribution and release in the repository or the tag),
/// with what told it; None: the name does not say (a digest alone, an unknown repository). Versions are the
/// distributions' own packages: Ubuntu 18.04/20.04/22.04/24.04 glibc 2.27/2.31/2.35/2.39
/// (https://packages.ubuntu.com/search?keywords=libc6), Debian 10/11/12/13 2.28/2.31/2.36/2.41
/// (https://packages.debian.org/search?keywords=libc6), RHEL/UBI/Rocky/Alma 8/9/10 2.28/2.34/2.39
/// (https://access.redhat.com/solutions/38634 and the UBI images' glibc package), CentOS 7 2.17, Amazon Linux
/// 2/2023 2.26/2.34 (https://docs.aws.amazon.com/linux/al2023/ug/compare-with-al2.html). NVIDIA's CUDA, driver,
/// DCGM and toolkit images name their base in the tag (`550.54.15-ubuntu22.04`, `12.4.1-base-ubi8`).
pub fn glibc_of(name: &str) -> Option<((u32, u32), String)> {
    let r = ImageRef::parse(name).ok()?;
    let tag = r.tag.as_deref().unwrap_or_default();
    let last = r.repository.rsplit('/').next().unwrap_or_default();
    // Base named in the tag (NVIDIA's images) or in the repository path (ubi8/ubi, rhel9/...).
    const IN_NAME: &[(&str, (u32, u32))] = &[
        ("ubuntu18.04", (2, 27)),
        ("ubuntu20.04", (2, 31)),
        ("ubuntu22.04", (2, 35)),
        ("ubuntu24.04", (2, 39)),
        ("ubi8", (2, 28)),
        ("rhel8", (2, 28)),
        ("rockylinux8", (2, 28)),
        ("centos8", (2, 28)),
        ("ubi9", (2, 34)),
        ("rhel9", (2, 34)),
        ("rockylinux9", (2, 34)),
        ("ubi10", (2, 39)),
        ("rhel10", (2, 39)),
        ("centos7", (2, 17)),
        ("debian10", (2, 28)),
        ("debian11", (2, 31)),
        ("debian12", (2, 36)),
        // AMD's ROCm development images (ROCm/ROCm-docker `dev/Dockerfile-ubuntu-*`: `FROM ubuntu:<release>`).
        ("dev-ubuntu-20.04", (2, 31)),
        ("dev-ubuntu-22.04", (2, 35)),
        ("dev-ubuntu-24.04", (2, 39)),
    ];
    let path = r.repository.split('/').skip(1).collect::<Vec<_>>();
    for (key, v) in IN_NAME {
        // A whole element or one with a minor release after it (`rhel9.4`): of the tag (`-ubuntu22.04`,
        // `ubi8-`) or of the path (`ubi8/ubi`, Habana's `gaudi-docker/1.22.0/ubuntu22.04/...`).
        let is_key = |e: &str| {
            e == *key
                || e.strip_prefix(*key)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        if tag.split(['-', '_']).any(is_key) || path.iter().any(|e| is_key(e)) {
            return Some((*v, format!("{key} in its name")));
        }
    }
    // The distributions' own images: the release is the tag's first element.
    let release = tag.split(['-', '_']).next().unwrap_or_default();
    let by_release: &[(&str, (u32, u32))] = match last {
        "ubuntu" => &[
            ("18.04", (2, 27)),
            ("bionic", (2, 27)),
            ("20.04", (2, 31)),
            ("focal", (2, 31)),
            ("22.04", (2, 35)),
            ("jammy", (2, 35)),
            ("24.04", (2, 39)),
            ("noble", (2, 39)),
        ],
        "debian" => &[
            ("10", (2, 28)),
            ("buster", (2, 28)),
            ("11", (2, 31)),
            ("bullseye", (2, 31)),
            ("12", (2, 36)),
            ("bookworm", (2, 36)),
            ("13", (2, 41)),
            ("trixie", (2, 41)),
        ],
        "rockylinux" | "almalinux" | "centos" => &[
            ("7", (2, 17)),
            ("8", (2, 28)),
            ("9", (2, 34)),
            ("10", (2, 39)),
        ],
        "amazonlinux" => &[("2", (2, 26)), ("2023", (2, 34))],
        _ => &[],
    };
    by_release
        .iter()
        .find(|(rel, _)| {
            release == *rel
                || release
                    .strip_prefix(*rel)
                    .is_some_and(|r| r.starts_with('.'))
        })
        .map(|(rel, v)| (*v, format!("{last} {rel}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_is_told_from_the_names_that_say_it_and_only_those() {
        let g = |n: &str| glibc_of(n).map(|(v, _)| v);
        for (name, want) in [
            ("nvcr.io/nvidia/driver:525.60.13-ubuntu20.04", Some((2, 31))),
            ("nvcr.io/nvidia/driver:550.90.07-rhel8.9", Some((2, 28))),
            ("nvcr.io/nvidia/cuda:12.4.1-base-ubi8", Some((2, 28))),
            ("nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", Some((2, 35))),
            (
                "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04",
                Some((2, 35)),
            ),
            ("registry.access.redhat.com/ubi9/ubi:9.4", Some((2, 34))),
            ("docker.io/library/debian:bookworm-slim", Some((2, 36))),
            ("debian:11", Some((2, 31))),
            ("ubuntu:24.04", Some((2, 39))),
            ("docker.io/library/ubuntu:focal-20240123", Some((2, 31))),
            ("rockylinux:8.9", Some((2, 28))),
            ("amazonlinux:2023", Some((2, 34))),
            ("amazonlinux:2", Some((2, 26))),
            // AMD's and Intel's images that name their base in the repository.
            ("docker.io/rocm/dev-ubuntu-24.04:6.4.4", Some((2, 39))),
            (
                "vault.habana.ai/gaudi-docker/1.22.0/ubuntu22.04/habanalabs/pytorch-installer-2.7.1:latest",
                Some((2, 35)),
            ),
            (
                "vault.habana.ai/gaudi-docker/1.22.0/rhel9.6/habanalabs/base-installer-rhel9.6:1.22.0-740",
                Some((2, 34)),
            ),
            (
                "vault.habana.ai/gaudi-docker/1.22.0/tencentos3.1/habanalabs/pytorch-installer-2.7.1:latest",
                None,
            ),
            // The name does not say: a digest alone, or a tag that names no release.
            (
                "nvcr.io/nvidia/driver@sha256:0ee0c585fa720f177734b3295a073f402d75986c1fe018ae68bd73fe9c21b8d8",
                None,
            ),
            ("docker.io/library/debian:latest", None),
            ("nvcr.io/nvidia/pytorch:24.05-py3", None),
            // Lookalikes of a release are not one.
            ("nvcr.io/nvidia/cuda:12.4.1-base-ubuntu20.041", None),
            ("docker.io/library/debian:120", None),
        ] {
            assert_eq!(g(name), want, "{name}");
        }
    }
}
