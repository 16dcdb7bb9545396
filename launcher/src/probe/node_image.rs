//! The default delivery's base image: one the node already has (its `status.images`), so nothing is
//! published; where it has none, the fallback base pulled once by digest ([`super::fallback_base`]). node-probe is then copied in over exec (copy delivery), which needs a glibc image with
//! `sh`, `sleep`, `head`, `tee`, `sha256sum`, `wc`, `chmod`, `mktemp` and `rm`.
//!
//! Two questions, in this order, for every image the node lists:
//! 1. May it run as root here? Only from a trusted source ([`super::trust`]) and listed by digest; the pod
//!    then runs that digest (`repo@sha256:…`, pull policy Never), never the tag.
//! 2. Will it work? Ranked by repository name: plain distribution bases first (small, and their tools are
//!    known), then NVIDIA's CUDA and driver images and the common framework images (Ubuntu or UBI based, and
//!    on GPU nodes anyway). Names known not to work are never tried: distroless, busybox/Alpine (musl), UBI
//!    micro/minimal, pause; NVIDIA's component images only where their Dockerfiles say (see [`KNOWN`]).
//!    A ranked image can still lack a tool:
//!    the copy then fails with a clear reason, the runner tries the next one, and the node remembers what
//!    worked.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;

use super::trust::{ImageRef, TrustPolicy};

/// A base image to try, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The digest reference exactly as the node lists it (`repo@sha256:…`): what the pod runs.
    pub image: String,
    /// A tagged name of the same image, for messages (the digest alone says little to a reader).
    pub label: String,
    pub rank: u8,
    /// Not on the node: the fallback base ([`super::fallback_base`]), pulled by digest (IfNotPresent).
    pub pull: bool,
}

/// Why an image the node lists is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its repository is not from a trusted source (built-in or `--trust-image`).
    Untrusted,
    /// From a trusted source, but the node lists no digest for it: a tag alone can be re-pointed.
    NoDigest,
    /// Known not to work (no shell or no glibc).
    KnownNotToWork,
    /// Not a name this delivery knows as a base (a guess costs a pod start, so it is not tried).
    NotABase,
    /// A name outside the image reference grammar.
    Malformed,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Untrusted => "untrusted source",
            Refusal::NoDigest => "no digest listed",
            Refusal::KnownNotToWork => "known not to work (no shell or no glibc)",
            Refusal::NotABase => "not a known base image",
            Refusal::Malformed => "malformed name",
        }
    }
}

/// One image of the node, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessed {
    /// The name shown to people (a tag where the node lists one).
    pub label: String,
    pub size: i64,
    pub verdict: Result<Candidate, Refusal>,
}

/// Repository patterns (matched against the last path elements of the repository, without tag or digest) and
/// their rank; lower is better. Order matters: the first match decides.
///
/// NVIDIA's component images on GPU nodes, judged from their public Dockerfiles (the runtime stage):
/// - `nvidia/k8s/dcgm-exporter`: ranked (45, beside the driver image). Its `-ubuntu22.04`/`-ubi9` images are
///   the full CUDA base (NVIDIA/dcgm-exporter `docker/Dockerfile.ubuntu22.04` and `Dockerfile.ubi9` at
///   3.3.9-3.6.1: `FROM nvcr.io/nvidia/cuda:12.6.2-base-ubuntu22.04`; `docker/Dockerfile.ubuntu`/`.ubi` at
///   4.2.3-4.1.3: `nvcr.io/nvidia/cuda:12.8.1-base-ubuntu22.04`), and the tag names that base, so
///   [`glibc_of`] knows its glibc. Since 4.4.2-4.7.0 there is also a `-distroless` tag (`docker/Dockerfile`,
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
];

/// The rank of one repository (normalised); None: unknown (not tried, since a wrong guess costs a pod start).
fn rank_of(repo: &str) -> Option<u8> {
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
    ];
    let path = r.repository.split('/').skip(1).collect::<Vec<_>>();
    for (key, v) in IN_NAME {
        // A whole tag element (`-ubuntu22.04`, `ubi8-`) or a whole path element (`ubi8/ubi`).
        let in_tag = tag.split(['-', '_']).any(|e| {
            e == *key
                || e.strip_prefix(*key)
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        if in_tag || path.iter().any(|e| e == key) {
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

/// Judge every image the node lists (`status.images`), in the node's order.
pub fn assess(node: &Node, policy: &TrustPolicy) -> Vec<Assessed> {
    let images = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    images
        .iter()
        .filter_map(|img| {
            let names = img.names.as_deref().unwrap_or_default();
            let label = display_name(names)?;
            let parsed: Vec<(&String, ImageRef)> = names
                .iter()
                .filter_map(|n| Some((n, ImageRef::parse(n).ok()?)))
                .collect();
            let size = img.size_bytes.unwrap_or(i64::MAX);
            let verdict = judge(&parsed, policy).map(|(image, rank)| Candidate {
                image,
                label: label.clone(),
                rank,
                pull: false,
            });
            Some(Assessed {
                label: clip(&label),
                size,
                verdict,
            })
        })
        .collect()
}

/// A trusted digest name of one image and its rank, or why there is none.
fn judge(names: &[(&String, ImageRef)], policy: &TrustPolicy) -> Result<(String, u8), Refusal> {
    if names.is_empty() {
        return Err(Refusal::Malformed);
    }
    // What it is (by any of its names): an image known not to work is refused whoever publishes it.
    let ranks: Vec<u8> = names
        .iter()
        .filter_map(|(_, r)| rank_of(&r.repository))
        .collect();
    if ranks.contains(&u8::MAX) {
        return Err(Refusal::KnownNotToWork);
    }
    if ranks.is_empty() {
        return Err(Refusal::NotABase);
    }
    // Who vouches for it: a trusted repository, by digest; ranked on that repository's own name.
    let trusted = names
        .iter()
        .filter(|(_, r)| policy.source_of(r).is_some())
        .collect::<Vec<_>>();
    if trusted.is_empty() {
        return Err(Refusal::Untrusted);
    }
    trusted
        .iter()
        .filter(|(_, r)| r.digest.is_some())
        .filter_map(|(n, r)| Some(((*n).clone(), rank_of(&r.repository)?)))
        .min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)))
        .ok_or(Refusal::NoDigest)
}

/// A tagged name reads better in messages; a digest-only image is named by its digest.
fn display_name(names: &[String]) -> Option<String> {
    names
        .iter()
        .find(|n| !n.contains('@'))
        .or_else(|| names.first())
        .cloned()
}

/// Names from the node go into messages: bounded, and only the reference grammar's characters.
fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(160)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if s.chars().count() > 160 {
        out.push('…');
    }
    out
}

/// The node's usable images for copy delivery, best first; `skip` are images already found unusable there.
pub fn rank(node: &Node, skip: &BTreeSet<String>, policy: &TrustPolicy) -> Vec<Candidate> {
    let mut out: Vec<(Candidate, i64)> = assess(node, policy)
        .into_iter()
        .filter_map(|a| Some((a.verdict.ok()?, a.size)))
        .filter(|(c, _)| !skip.contains(&c.image))
        .collect();
    // Smaller images first within a rank: a plain base rather than a big one built on it.
    out.sort_by(|a, b| (a.0.rank, a.1, &a.0.image).cmp(&(b.0.rank, b.1, &b.0.image)));
    out.dedup_by(|a, b| a.0.image == b.0.image);
    out.into_iter().map(|(c, _)| c).collect()
}

/// [`rank`], less the images whose glibc (as their name tells, [`glibc_of`]) is older than `needs`, the
/// oldest glibc the node-probe build runs on: those could only fail. Returns the usable ones and, for
/// messages, the ones left out with why.
pub fn rank_for(
    node: &Node,
    skip: &BTreeSet<String>,
    policy: &TrustPolicy,
    needs: Option<(u32, u32)>,
) -> (Vec<Candidate>, Vec<String>) {
    let mut too_old = Vec::new();
    let usable = rank(node, skip, policy)
        .into_iter()
        .filter(|c| match (needs, glibc_of(&c.label)) {
            (Some(need), Some((has, why))) if has < need => {
                too_old.push(format!(
                    "{} (glibc {}.{} from {why}; node-probe needs {}.{})",
                    clip(&c.label),
                    has.0,
                    has.1,
                    need.0,
                    need.1
                ));
                false
            }
            _ => true,
        })
        .collect();
    (usable, too_old)
}

/// The images refused for the default delivery that would have been tried by name (refusals other than
/// "not a known base"), for the messages of `check` and of a node with no usable image; `max` at most.
pub fn refused(node: &Node, policy: &TrustPolicy, max: usize) -> Vec<String> {
    assess(node, policy)
        .into_iter()
        .filter_map(|a| match a.verdict {
            Err(Refusal::NotABase) | Ok(_) => None,
            Err(r) => Some(format!("{} ({})", a.label, r.reason())),
        })
        .take(max)
        .collect()
}

/// Whether the node lists `image` under any of its names ([`ImageRef::same_image`]).
pub fn lists(node: &Node, image: &str) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|i| i.names.iter().flatten())
        .any(|n| ImageRef::same_image(n, image))
}

/// Every image name the node lists, for the error that says what it has (at most `max`).
pub fn listed(node: &Node, max: usize) -> Vec<String> {
    node.status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(|v| {
            v.iter()
                .filter_map(|i| display_name(i.names.as_deref().unwrap_or_default()))
                .map(|n| clip(&n))
                .take(max)
                .collect()
        })
        .unwrap_or_default()
}

/// The fallback base for `node` as a candidate; None where the build needs a newer glibc than it has.
pub fn fallback(node: &Node, needs: Option<(u32, u32)>) -> Option<Candidate> {
    let f = super::fallback_base::for_node(node);
    if let (Some(need), Some((has, _))) = (needs, glibc_of(&f.label))
        && has < need
    {
        return None;
    }
    Some(Candidate {
        image: f.image,
        label: f.label,
        rank: u8::MAX - 1,
        pull: true,
    })
}

/// What this launcher learned per node: the image that worked, and the ones that did not (with why).
#[derive(Default)]
pub struct NodeImages {
    policy: Arc<TrustPolicy>,
    /// Pull the fallback base where the node lists no usable base (off with `--no-pull`).
    pull: bool,
    worked: Mutex<HashMap<String, String>>,
    failed: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl NodeImages {
    pub fn new(policy: Arc<TrustPolicy>) -> Self {
        NodeImages {
            policy,
            pull: true,
            ..Default::default()
        }
    }

    /// `--no-pull`: never pull the fallback base; a node without a usable base is an error naming the flags.
    pub fn without_pull(mut self) -> Self {
        self.pull = false;
        self
    }

    /// The image to use on `node`: the one that worked before if the node still has it, else the best
    /// ranked one not yet found unusable. Err: why there is none.
    #[cfg(test)]
    pub fn choose(&self, node_name: &str, node: &Node) -> Result<Candidate, String> {
        self.choose_for(node_name, node, None)
    }

    /// [`NodeImages::choose`] for a node-probe build that needs glibc `needs` or newer: a base known to be
    /// older is not tried (it would cost a pod start and fail).
    pub fn choose_for(
        &self,
        node_name: &str,
        node: &Node,
        needs: Option<(u32, u32)>,
    ) -> Result<Candidate, String> {
        let failed: BTreeSet<String> = self
            .failed
            .lock()
            .unwrap()
            .get(node_name)
            .map(|v| v.iter().map(|(i, _)| i.clone()).collect())
            .unwrap_or_default();
        let (ranked, too_old) = rank_for(node, &failed, &self.policy, needs);
        if let Some(w) = self.worked.lock().unwrap().get(node_name)
            && let Some(c) = ranked.iter().find(|c| &c.image == w)
        {
            return Ok(c.clone());
        }
        if let Some(c) = ranked.first() {
            return Ok(c.clone());
        }
        // Nothing usable listed: the fallback base, pulled once by digest, unless it failed here already or
        // the build needs a newer glibc than it has.
        if self.pull
            && let Some(c) = fallback(node, needs)
            && !failed.contains(&c.image)
        {
            return Ok(c);
        }
        let tried = self.tried(node_name);
        let mut refused = refused(node, &self.policy, 8);
        refused.extend(too_old.into_iter().take(4));
        let has = listed(node, 12);
        Err(format!(
            "node {node_name} has no image node-probe can be copied into (a glibc base with sh, sleep, head, \
             tee, sha256sum, wc, chmod, mktemp and rm, such as debian, ubuntu, ubi, nvidia/cuda or nvidia/driver, from a \
             trusted source and listed by digest){}{}; it has: {}. Pass --probe-image IMAGE@sha256:DIGEST: the \
             probe image (deploy/probe-image/build.sh, pushed where the node can pull it), or with \
             --probe-delivery copy any such base the node can pull; or, for a base from your own registry, \
             --trust-image REGISTRY/NAMESPACE/{}",
            if tried.is_empty() {
                String::new()
            } else {
                format!("; tried: {tried}")
            },
            if refused.is_empty() {
                String::new()
            } else {
                format!("; refused: {}", refused.join(", "))
            },
            if has.is_empty() {
                "no images".to_string()
            } else {
                has.join(", ")
            },
            if self.pull {
                String::new()
            } else {
                format!(
                    ". --no-pull is set: without it the node pulls {} once",
                    super::fallback_base::for_node(node).describe()
                )
            }
        ))
    }

    pub fn worked(&self, node: &str, c: &Candidate) {
        self.worked
            .lock()
            .unwrap()
            .insert(node.to_string(), c.image.clone());
    }

    pub fn failed(&self, node: &str, c: &Candidate, why: &str) {
        let mut w = self.worked.lock().unwrap();
        if w.get(node).is_some_and(|i| *i == c.image) {
            w.remove(node);
        }
        self.failed
            .lock()
            .unwrap()
            .entry(node.to_string())
            .or_default()
            .push((c.image.clone(), format!("{} ({why})", c.label)));
    }

    fn tried(&self, node: &str) -> String {
        self.failed
            .lock()
            .unwrap()
            .get(node)
            .map(|v| {
                v.iter()
                    .map(|(_, said)| said.as_str())
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

    /// The digest name a pull records beside the tag (a stand-in digest derived from the name).
    fn digest_of(tagged: &str) -> String {
        let repo = ImageRef::parse(tagged).unwrap().repository;
        let raw = tagged.rsplit_once(':').map_or(tagged, |(r, _)| r);
        let raw = if raw.contains('/') { raw } else { &repo };
        format!(
            "{raw}@sha256:{}",
            super::super::delivery::sha256_hex(tagged.as_bytes())
        )
    }

    fn ranked(n: &Node) -> Vec<String> {
        rank(n, &BTreeSet::new(), &TrustPolicy::default())
            .into_iter()
            .map(|c| c.label)
            .collect()
    }

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
        let refs: Vec<(Vec<&str>, i64)> = imgs
            .iter()
            .map(|(n, s)| (n.iter().map(String::as_str).collect(), *s))
            .collect();
        let slices: Vec<(&[&str], i64)> = refs.iter().map(|(n, s)| (n.as_slice(), *s)).collect();
        let n = node(&slices);
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

    /// A tenant's image named like a trusted base, from another registry or namespace, is never chosen,
    /// whatever its size or rank; the refusal says why.
    #[test]
    fn an_image_named_like_a_base_from_an_untrusted_source_is_refused() {
        let genuine = "docker.io/library/debian:bookworm";
        let planted = [
            "registry.example.com/library/debian:bookworm",
            "registry.example.com/team/debian:bookworm",
            "docker.io/team/debian:bookworm",
        ];
        let mut imgs: Vec<Vec<String>> = planted
            .iter()
            .map(|p| vec![digest_of(p), p.to_string()])
            .collect();
        let only_planted = imgs.clone();
        imgs.push(vec![digest_of(genuine), genuine.to_string()]);
        let build = |v: &[Vec<String>], sizes: &[i64]| {
            let refs: Vec<Vec<&str>> = v
                .iter()
                .map(|n| n.iter().map(String::as_str).collect())
                .collect();
            let slices: Vec<(&[&str], i64)> = refs
                .iter()
                .zip(sizes)
                .map(|(n, s)| (n.as_slice(), *s))
                .collect();
            node(&slices)
        };
        // The planted images are smaller (they would have won the size tie-break).
        let n = build(&imgs, &[1, 2, 3, 100_000_000]);
        let c = NodeImages::default().choose("n1", &n).unwrap();
        assert_eq!(c.image, digest_of(genuine));
        let n = build(&only_planted, &[1, 2, 3]);
        let e = NodeImages::default().choose("n1", &n).unwrap_err();
        for p in planted {
            assert!(e.contains(&format!("{p} (untrusted source)")), "{e}");
        }
        assert!(e.contains("--trust-image"), "{e}");
        // The owner can vouch for its own registry.
        let owner = TrustPolicy::with(&["registry.example.com/library/".into()], None).unwrap();
        let c = NodeImages::new(Arc::new(owner)).choose("n1", &n).unwrap();
        assert_eq!(c.label, "registry.example.com/library/debian:bookworm");
    }

    /// A trusted name without a digest is refused: the tag may have been re-pointed on the node. With the
    /// tag moved to other content, the genuine image is still chosen by its digest.
    #[test]
    fn a_trusted_tag_without_a_digest_is_refused_and_a_re_pointed_tag_does_not_matter() {
        let tag = "docker.io/library/debian:bookworm";
        let n = node(&[(&[tag], 100)]);
        let e = NodeImages::default().choose("n1", &n).unwrap_err();
        assert!(e.contains(&format!("{tag} (no digest listed)")), "{e}");
        // The tag now names the other image; the genuine one keeps only its digest name.
        let genuine = digest_of(tag);
        let n = node(&[(&[tag], 5), (&[&genuine], 100)]);
        let c = NodeImages::default().choose("n1", &n).unwrap();
        assert_eq!(c.image, genuine);
    }

    #[test]
    fn hostile_names_in_node_status_are_skipped_and_clipped_in_messages() {
        let long = format!("registry.example.com/{}/debian:1", "a".repeat(5000));
        let n = node(&[
            (&["docker.io/library/debian:bookworm;touch /tmp/x"], 1),
            (&[&long], 1),
            (&["\u{1b}[2Jdebian"], 1),
        ]);
        let e = NodeImages::default().choose("n1", &n).unwrap_err();
        assert!(e.len() < 4000, "{} bytes", e.len());
        assert!(!e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn remembers_what_worked_and_skips_what_failed_then_says_what_it_tried() {
        let debian = "docker.io/library/debian:bookworm";
        let ubuntu = "docker.io/library/ubuntu:24.04";
        let (dd, ud) = (digest_of(debian), digest_of(ubuntu));
        let n = node(&[
            (&[&dd, debian], 100),
            (&[&ud, ubuntu], 200),
            (&["gcr.io/distroless/static:nonroot"], 5),
        ]);
        let ni = NodeImages::default();
        let c = ni.choose("n1", &n).unwrap();
        assert_eq!(c.image, dd);
        ni.failed("n1", &c, "no `tee`");
        let c = ni.choose("n1", &n).unwrap();
        assert_eq!(c.image, ud);
        ni.worked("n1", &c);
        assert_eq!(ni.choose("n1", &n).unwrap().image, ud);
        // Another node is judged on its own.
        assert_eq!(ni.choose("n2", &n).unwrap().image, dd);
        ni.failed("n1", &c, "no glibc");
        let err = ni.choose("n1", &n).unwrap_err();
        assert!(
            err.contains(&format!("tried: {debian} (no `tee`)")),
            "{err}"
        );
        assert!(err.contains("gcr.io/distroless/static:nonroot"), "{err}");
        assert!(err.contains("--probe-image"), "{err}");
    }

    #[test]
    fn the_node_lists_an_image_under_any_of_its_names() {
        let n = node(&[(
            &["docker.io/library/busybox:1.36", "nvcr.io/nvidia/cuda:12.4"],
            1,
        )]);
        assert!(lists(&n, "busybox:1.36"));
        assert!(lists(&n, "index.docker.io/library/busybox:1.36"));
        assert!(!lists(&n, "busybox"), "no tag is latest");
        assert!(!lists(&n, "nvidia/cuda:12.4"), "another registry");
    }

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

    /// A base known to be older than the build's glibc is never tried: the next one is, and with none left
    /// the error names it with both versions.
    #[test]
    fn a_base_with_an_older_glibc_than_node_probe_needs_is_not_tried() {
        let old = "nvcr.io/nvidia/driver:525.60.13-ubuntu20.04";
        let new = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04";
        let (od, nd) = (digest_of(old), digest_of(new));
        let n = node(&[(&[od.as_str(), old], 10), (&[nd.as_str(), new], 20)]);
        let ni = NodeImages::default();
        // Without a requirement the driver image ranks after CUDA anyway; make it the only candidate left.
        let c = ni.choose_for("n1", &n, Some((2, 34))).unwrap();
        assert_eq!(c.image, nd);
        ni.failed("n1", &c, "no `tee`");
        let e = ni.choose_for("n1", &n, Some((2, 34))).unwrap_err();
        assert!(
            e.contains(&format!(
                "{old} (glibc 2.31 from ubuntu20.04 in its name; node-probe needs 2.34)"
            )),
            "{e}"
        );
        // A build for glibc 2.28 runs there.
        assert_eq!(ni.choose_for("n1", &n, Some((2, 28))).unwrap().image, od);
        let (usable, too_old) =
            rank_for(&n, &BTreeSet::new(), &TrustPolicy::default(), Some((2, 36)));
        assert!(usable.is_empty(), "{usable:?}");
        assert_eq!(too_old.len(), 2, "{too_old:?}");
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
        let refs: Vec<(Vec<&str>, i64)> = imgs
            .iter()
            .map(|(n, s)| (n.iter().map(String::as_str).collect(), *s))
            .collect();
        let slices: Vec<(&[&str], i64)> = refs.iter().map(|(n, s)| (n.as_slice(), *s)).collect();
        let n = node(&slices);
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

    /// The exporter is used only as any base is: by digest, from NVIDIA's registry.
    #[test]
    fn the_dcgm_exporter_needs_a_digest_and_a_trusted_source() {
        let tag_only = "nvcr.io/nvidia/k8s/dcgm-exporter:3.1.3-3.1.2-ubuntu20.04";
        let copy = "registry.example.com/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04";
        let cd = digest_of(copy);
        let n = node(&[(&[tag_only], 10), (&[cd.as_str(), copy], 10)]);
        assert!(ranked(&n).is_empty());
        assert_eq!(
            refused(&n, &TrustPolicy::default(), 8),
            [
                format!("{tag_only} (no digest listed)"),
                format!("{copy} (untrusted source)"),
            ]
        );
    }

    #[test]
    fn a_node_without_images_says_so() {
        let err = NodeImages::default()
            .choose("bare", &Node::default())
            .unwrap_err();
        assert!(err.contains("it has: no images"), "{err}");
    }
}
