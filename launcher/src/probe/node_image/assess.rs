//! Each image a node lists, judged: may it run as root here (a trusted source, listed by digest) and is it
//! a base this delivery knows; and the names the node lists, bounded for messages.

use k8s_openapi::api::core::v1::Node;

use super::known::rank_of;
use crate::probe::trust::{ImageRef, TrustPolicy};

/// A base image to try, best first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The digest reference exactly as the node lists it (`repo@sha256:…`): what the pod runs.
    pub image: String,
    /// A tagged name of the same image, for messages (the digest alone says little to a reader).
    pub label: String,
    pub rank: u8,
    /// Not on the node: the fallback base ([`crate::probe::fallback_base`]), pulled by digest (IfNotPresent).
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
pub(super) fn clip(s: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::probe::node_image::NodeImages;
    use crate::probe::node_image::test_support::{digest_of, node, ranked};

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
}
