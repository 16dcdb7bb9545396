//! The default delivery's base image: one the node already has (its `status.images`), so nothing is
//! published or pulled. node-probe is then copied in over exec (copy delivery), which needs a glibc image with
//! `sh`, `sleep`, `head`, `tar`, `sha256sum`, `mktemp` and `rm`.
//!
//! Images are ranked by name: plain distribution bases first (small, and their tools are known), then
//! NVIDIA's CUDA and driver images and the common framework images (Ubuntu or UBI based, and on GPU nodes
//! anyway). Names that are known not to work are never tried: distroless, busybox/Alpine (musl), UBI
//! micro/minimal, pause and the operators' own component images. A ranked image can still lack a tool: the
//! copy then fails with a clear reason, the runner tries the next one, and the node remembers what worked.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Node;

/// A base image to try, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The name exactly as the node lists it (so the kubelet finds it without pulling).
    pub image: String,
    pub rank: u8,
}

/// Repository patterns (matched against the last path elements of the repository, without tag or digest) and
/// their rank; lower is better. Order matters: the first match decides.
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
    // Framework images on GPU nodes (Ubuntu based).
    ("nvidia/pytorch", 50),
    ("pytorch/pytorch", 50),
    ("nvidia/tensorflow", 50),
    ("tensorflow/tensorflow", 50),
    ("nvidia/tritonserver", 55),
    ("nvidia/nemo", 55),
];

/// The repository part of an image reference: `registry/path/name` without `:tag` or `@digest`.
fn repository(name: &str) -> &str {
    let no_digest = name.split('@').next().unwrap_or(name);
    // A tag is after the last ':' that follows the last '/' (a registry port has a '/' after it).
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// The rank of one image name; None: unknown (not tried, since a wrong guess costs a pod start).
fn rank_of(name: &str) -> Option<u8> {
    let repo = repository(name).to_ascii_lowercase();
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

/// The node's images ranked for copy delivery, best first; `skip` are images already found unusable there.
pub fn rank(node: &Node, skip: &BTreeSet<String>) -> Vec<Candidate> {
    let images = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out: Vec<(Candidate, i64)> = Vec::new();
    for img in images {
        let names = img.names.as_deref().unwrap_or_default();
        // A tagged name reads better in messages; a digest-only image is named by its digest.
        let Some(name) = names
            .iter()
            .find(|n| !n.contains('@'))
            .or_else(|| names.first())
        else {
            continue;
        };
        if skip.contains(name) {
            continue;
        }
        match rank_of(name) {
            Some(rank) if rank < u8::MAX => out.push((
                Candidate {
                    image: name.clone(),
                    rank,
                },
                img.size_bytes.unwrap_or(i64::MAX),
            )),
            _ => {}
        }
    }
    // Smaller images first within a rank: a plain base rather than a big one built on it.
    out.sort_by(|a, b| (a.0.rank, a.1, &a.0.image).cmp(&(b.0.rank, b.1, &b.0.image)));
    out.into_iter().map(|(c, _)| c).collect()
}

/// Every image name the node lists, for the error that says what it has (at most `max`).
pub fn listed(node: &Node, max: usize) -> Vec<String> {
    node.status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(|v| {
            v.iter()
                .filter_map(|i| {
                    let names = i.names.as_deref().unwrap_or_default();
                    names
                        .iter()
                        .find(|n| !n.contains('@'))
                        .or_else(|| names.first())
                        .cloned()
                })
                .take(max)
                .collect()
        })
        .unwrap_or_default()
}

/// What this launcher learned per node: the image that worked, and the ones that did not (with why).
#[derive(Default)]
pub struct NodeImages {
    worked: Mutex<HashMap<String, String>>,
    failed: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl NodeImages {
    /// The image to use on `node`: the one that worked before if the node still has it, else the best
    /// ranked one not yet found unusable. Err: why there is none.
    pub fn choose(&self, node_name: &str, node: &Node) -> Result<String, String> {
        let failed: BTreeSet<String> = self
            .failed
            .lock()
            .unwrap()
            .get(node_name)
            .map(|v| v.iter().map(|(i, _)| i.clone()).collect())
            .unwrap_or_default();
        let ranked = rank(node, &failed);
        if let Some(w) = self.worked.lock().unwrap().get(node_name)
            && ranked.iter().any(|c| &c.image == w)
        {
            return Ok(w.clone());
        }
        if let Some(c) = ranked.first() {
            return Ok(c.image.clone());
        }
        let tried = self.tried(node_name);
        let has = listed(node, 12);
        Err(format!(
            "node {node_name} has no image node-probe can be copied into (a glibc base with sh, sleep, head, \
             tar, sha256sum, mktemp and rm, such as debian, ubuntu, ubi, nvidia/cuda or nvidia/driver){}; it has: \
             {}. Pass --probe-image IMAGE: the probe image (deploy/probe-image/build.sh, pushed where the node \
             can pull it), or with --probe-delivery copy any such base the node can pull",
            if tried.is_empty() {
                String::new()
            } else {
                format!("; tried: {tried}")
            },
            if has.is_empty() {
                "no images".to_string()
            } else {
                has.join(", ")
            }
        ))
    }

    pub fn worked(&self, node: &str, image: &str) {
        self.worked
            .lock()
            .unwrap()
            .insert(node.to_string(), image.to_string());
    }

    pub fn failed(&self, node: &str, image: &str, why: &str) {
        let mut w = self.worked.lock().unwrap();
        if w.get(node).is_some_and(|i| i == image) {
            w.remove(node);
        }
        self.failed
            .lock()
            .unwrap()
            .entry(node.to_string())
            .or_default()
            .push((image.to_string(), why.to_string()));
    }

    fn tried(&self, node: &str) -> String {
        self.failed
            .lock()
            .unwrap()
            .get(node)
            .map(|v| {
                v.iter()
                    .map(|(i, why)| format!("{i} ({why})"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerImage, NodeStatus};

    fn node(images: &[(&[&str], i64)]) -> Node {
        Node {
            status: Some(NodeStatus {
                images: Some(
                    images
                        .iter()
                        .map(|(names, size)| ContainerImage {
                            names: Some(names.iter().map(|s| s.to_string()).collect()),
                            size_bytes: Some(*size),
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn repositories_without_tags_digests_or_confusing_ports() {
        assert_eq!(
            repository("docker.io/library/debian:bookworm"),
            "docker.io/library/debian"
        );
        assert_eq!(repository("registry:5000/ubuntu"), "registry:5000/ubuntu");
        assert_eq!(
            repository("nvcr.io/nvidia/cuda@sha256:abcd"),
            "nvcr.io/nvidia/cuda"
        );
        assert_eq!(repository("localhost:5000/x/y:1.0"), "localhost:5000/x/y");
    }

    #[test]
    fn bases_first_then_nvidia_then_frameworks_and_never_the_broken_kinds() {
        let n = node(&[
            (
                &["nvcr.io/nvidia/driver:550.54.15-ubuntu22.04"],
                900_000_000,
            ),
            (&["registry.k8s.io/pause:3.10"], 300_000),
            (&["gcr.io/distroless/base-debian12:latest"], 20_000_000),
            (&["docker.io/library/alpine:3.20"], 7_000_000),
            (&["nvcr.io/nvidia/pytorch:24.05-py3"], 9_000_000_000),
            (&["nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"], 90_000_000),
            (
                &[
                    "docker.io/library/ubuntu@sha256:1234",
                    "docker.io/library/ubuntu:22.04",
                ],
                30_000_000,
            ),
            (
                &["registry.access.redhat.com/ubi9/ubi-minimal:9.4"],
                40_000_000,
            ),
            (&["nvcr.io/nvidia/k8s-device-plugin:v0.16.1"], 50_000_000),
            (&["myorg/debian-tools:1"], 10_000_000),
            (&["docker.io/library/debian:bookworm-slim"], 28_000_000),
        ]);
        let ranked: Vec<String> = rank(&n, &BTreeSet::new())
            .into_iter()
            .map(|c| c.image)
            .collect();
        assert_eq!(
            ranked,
            [
                "docker.io/library/debian:bookworm-slim",
                "docker.io/library/ubuntu:22.04",
                "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
                "nvcr.io/nvidia/driver:550.54.15-ubuntu22.04",
                "nvcr.io/nvidia/pytorch:24.05-py3",
            ]
        );
    }

    #[test]
    fn remembers_what_worked_and_skips_what_failed_then_says_what_it_tried() {
        let n = node(&[
            (&["docker.io/library/debian:bookworm"], 100),
            (&["docker.io/library/ubuntu:24.04"], 200),
            (&["gcr.io/distroless/static:nonroot"], 5),
        ]);
        let ni = NodeImages::default();
        assert_eq!(
            ni.choose("n1", &n).unwrap(),
            "docker.io/library/debian:bookworm"
        );
        ni.failed("n1", "docker.io/library/debian:bookworm", "no `tar`");
        assert_eq!(
            ni.choose("n1", &n).unwrap(),
            "docker.io/library/ubuntu:24.04"
        );
        ni.worked("n1", "docker.io/library/ubuntu:24.04");
        assert_eq!(
            ni.choose("n1", &n).unwrap(),
            "docker.io/library/ubuntu:24.04"
        );
        // Another node is judged on its own.
        assert_eq!(
            ni.choose("n2", &n).unwrap(),
            "docker.io/library/debian:bookworm"
        );
        ni.failed("n1", "docker.io/library/ubuntu:24.04", "no glibc");
        let err = ni.choose("n1", &n).unwrap_err();
        assert!(
            err.contains("tried: docker.io/library/debian:bookworm (no `tar`)"),
            "{err}"
        );
        assert!(err.contains("gcr.io/distroless/static:nonroot"), "{err}");
        assert!(err.contains("--probe-image"), "{err}");
    }

    #[test]
    fn a_node_without_images_says_so() {
        let err = NodeImages::default()
            .choose("bare", &Node::default())
            .unwrap_err();
        assert!(err.contains("it has: no images"), "{err}");
    }
}
