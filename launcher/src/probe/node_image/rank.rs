//! A node's usable base images, best first, for a node-probe build and its glibc; and the fallback base
//! where the node lists none.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;

use super::assess::{Candidate, assess, clip};
use super::glibc::glibc_of;
use crate::probe::trust::TrustPolicy;

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

/// The fallback base for `node` as a candidate; None where the build needs a newer glibc than it has.
pub fn fallback(node: &Node, needs: Option<(u32, u32)>) -> Option<Candidate> {
    let f = crate::probe::fallback_base::for_node(node);
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::probe::node_image::NodeImages;
    use crate::probe::node_image::test_support::{digest_of, node};

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
}
