//! Test fixtures shared by the steps' tests: a node listing images, the digest name a pull records, and the
//! labels a node's images rank in.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ContainerImage, Node, NodeStatus};

use super::rank;
use crate::probe::trust::{ImageRef, TrustPolicy};

pub(super) fn node(images: &[(&[&str], i64)]) -> Node {
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

/// [`node`] for images named by owned strings (a test's tag and digest names) with their sizes.
pub(super) fn node_of(images: &[(Vec<String>, i64)]) -> Node {
    let names: Vec<Vec<&str>> = images
        .iter()
        .map(|(n, _)| n.iter().map(String::as_str).collect())
        .collect();
    let slices: Vec<(&[&str], i64)> = names
        .iter()
        .zip(images)
        .map(|(n, (_, size))| (n.as_slice(), *size))
        .collect();
    node(&slices)
}

/// The digest name a pull records beside the tag (a stand-in digest derived from the name).
pub(super) fn digest_of(tagged: &str) -> String {
    let repo = ImageRef::parse(tagged).unwrap().repository;
    let raw = tagged.rsplit_once(':').map_or(tagged, |(r, _)| r);
    let raw = if raw.contains('/') { raw } else { &repo };
    format!(
        "{raw}@sha256:{}",
        crate::probe::delivery::sha256_hex(tagged.as_bytes())
    )
}

pub(super) fn ranked(n: &Node) -> Vec<String> {
    rank(n, &BTreeSet::new(), &TrustPolicy::default())
        .into_iter()
        .map(|c| c.label)
        .collect()
}
