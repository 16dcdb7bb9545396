//! What this launcher learned per node (the image that worked, the ones that did not, with why) and the
//! choice it makes from it, or the error that says why there is none.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Node;

use super::assess::{Candidate, listed, refused};
use super::rank::{fallback, rank_for};
use crate::probe::trust::TrustPolicy;

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
                    crate::probe::fallback_base::for_node(node).describe()
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
    use crate::probe::node_image::test_support::{digest_of, node};

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
    fn a_node_without_images_says_so() {
        let err = NodeImages::default()
            .choose("bare", &Node::default())
            .unwrap_err();
        assert!(err.contains("it has: no images"), "{err}");
    }
}
