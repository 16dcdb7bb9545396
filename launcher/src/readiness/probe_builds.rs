//! Copy delivery's node-probe builds: one per node architecture, and whether the base image it goes into
//! has a glibc new enough to run it (`probe/<node>` rows).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Node;
use kube::Client;

use super::nodes::{delivery, gpu_nodes};
use super::{CheckOptions, ReadinessCheck};
use crate::probe::delivery::{self, Delivery, DeliveryError, ProbeBinaries};
use crate::probe::node_image;
use crate::probe::trust::TrustPolicy;

/// A node-probe build as copy delivery would send it: where it is and the oldest glibc it runs on.
#[derive(Debug, Clone)]
pub struct ProbeBuild {
    pub path: PathBuf,
    pub glibc: Option<(u32, u32)>,
}

/// Look up and read the build for `arch` as the launcher would ([`ProbeBinaries`]'s directory and names).
pub fn probe_build(bins: &ProbeBinaries, node: &str, arch: &str) -> Result<ProbeBuild, String> {
    let no_build = |looked: String| {
        format!("no node-probe for linux/{arch} (node {node}): looked for {looked}")
    };
    let path = match delivery::find_binary(&bins.dir, node, arch, &bins.launcher_arch) {
        Ok(p) => p,
        Err(DeliveryError::NoBinary { looked, .. }) => return Err(no_build(looked)),
        Err(e) => return Err(e.to_string()),
    };
    let data =
        std::fs::read(&path).map_err(|e| format!("node-probe build {}: {e}", path.display()))?;
    let payload = delivery::Payload::build(arch, &path, &data).map_err(|e| e.to_string())?;
    Ok(ProbeBuild {
        path,
        glibc: payload.glibc,
    })
}

/// Copy delivery (the default): for each GPU node, the node-probe build for its architecture
/// (`status.nodeInfo.architecture`) and whether the base image node-probe goes into can run it: its glibc
/// as far as the image's name tells ([`node_image::glibc_of`]). A base known to be older is not tried by the
/// delivery; the row says which image is used instead, or that none is left. One row per node
/// (`probe/<node>`); none with image delivery (node-probe is in the probe image).
pub(super) async fn probe_checks(client: &Client, opts: &CheckOptions) -> Vec<ReadinessCheck> {
    if delivery(&opts.k8s) != Delivery::Copy {
        return Vec::new();
    }
    let Some(nodes) = gpu_nodes(client, opts).await else {
        return Vec::new();
    };
    let bins = ProbeBinaries::from_flag(opts.k8s.probe_bin_dir.as_deref());
    let mut builds: std::collections::HashMap<String, Result<ProbeBuild, String>> =
        Default::default();
    nodes
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let arch = crate::probe::delivery::node_arch(n).to_string();
            let build = builds
                .entry(arch.clone())
                .or_insert_with(|| probe_build(&bins, &name, &arch));
            probe_check(
                n,
                &arch,
                build,
                &bins.dir,
                opts.k8s.probe_image.as_deref(),
                &opts.k8s.trust,
                opts.k8s.pull_fallback,
            )
        })
        .collect()
}

/// One node's `probe/<node>` row (see [`probe_checks`]).
pub fn probe_check(
    node: &Node,
    arch: &str,
    build: &Result<ProbeBuild, String>,
    dir: &Path,
    configured: Option<&str>,
    policy: &TrustPolicy,
    pull: bool,
) -> ReadinessCheck {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let name = format!("probe/{node_name}");
    let release =
        "the release archive's probes/ (built for glibc 2.28 by packaging/build-probes.sh)";
    let b = match build {
        Ok(b) => b,
        Err(e) => {
            // The cached error names the first node of this architecture; name this one.
            let e = match e.split_once("): ") {
                Some((head, rest)) if head.starts_with("no node-probe for linux/") => {
                    format!("no node-probe for linux/{arch} (node {node_name}): {rest}")
                }
                _ => e.clone(),
            };
            let fix = if arch.is_empty() {
                "the node reports no status.nodeInfo.architecture; use --probe-image with the probe image (deploy/probe-image)".to_string()
            } else {
                format!(
                    "put node-probe-linux-{arch} in {} (or name its directory with --probe-bin-dir DIR), or download the release archive, which holds the amd64 and arm64 builds",
                    dir.display()
                )
            };
            return ReadinessCheck::fail(name, e, fix);
        }
    };
    let Some(need) = b.glibc else {
        return ReadinessCheck::ok(
            name,
            format!(
                "node-probe {} for linux/{arch} (no glibc version needed)",
                b.path.display()
            ),
        );
    };
    let needs = format!("needs glibc {}.{} or newer", need.0, need.1);
    let build_text = format!("node-probe {} for linux/{arch} {needs}", b.path.display());
    let fix_old =
        format!("use a node-probe built for an older glibc: {release}, with --probe-bin-dir DIR");
    let judge = |image: &str, extra: String| match node_image::glibc_of(image) {
        Some((has, why)) if has < need => ReadinessCheck::fail(
            name.clone(),
            format!(
                "{build_text}; {image} has glibc {}.{} ({why}){extra}",
                has.0, has.1
            ),
            fix_old.clone(),
        ),
        Some((has, why)) => ReadinessCheck::ok(
            name.clone(),
            format!(
                "{build_text}; {image} has glibc {}.{} ({why}){extra}",
                has.0, has.1
            ),
        ),
        None => ReadinessCheck::warn(
            name.clone(),
            format!("{build_text}; the glibc of {image} cannot be told from its name{extra}"),
            format!(
                "if a call fails with `GLIBC_{}.{}' not found`, {fix_old}",
                need.0, need.1
            ),
        ),
    };
    if let Some(image) = configured {
        return judge(image, String::new());
    }
    let (usable, too_old) = node_image::rank_for(node, &BTreeSet::new(), policy, Some(need));
    let skipped = if too_old.is_empty() {
        String::new()
    } else {
        format!("; not tried, too old: {}", too_old.join(", "))
    };
    let fallback = pull
        .then(|| node_image::fallback(node, Some(need)))
        .flatten();
    match (usable.first(), fallback) {
        (Some(c), _) => judge(&c.label, skipped),
        (None, Some(f)) => judge(
            &f.label,
            format!("{skipped}; the fallback base, pulled once (see image/{node_name})"),
        ),
        (None, None) if !too_old.is_empty() => ReadinessCheck::fail(
            name,
            format!("{build_text}; every trusted base the node lists is older{skipped}"),
            fix_old,
        ),
        // No base at all: the image/ row says so and how to fix it.
        (None, None) => ReadinessCheck::ok(name, build_text),
    }
}
