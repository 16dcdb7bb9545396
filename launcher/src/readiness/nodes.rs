//! The GPU nodes: each one's readiness (`node/<name>`) and whether the delivery has an image to use there
//! (`image/<name>`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{Api, ListParams};

use super::{CheckOptions, CheckReport, ReadinessCheck, Status};
use crate::cluster::backend::{gpu_node, is_gpu_node};
use crate::probe::delivery::Delivery;
use crate::probe::kube::K8sConfig;
use crate::probe::trust::{ImageRef, TrustPolicy};
use crate::probe::{fallback_base, node_image};

/// A GPU node and the image a probe would use there (None: the delivery has none for it yet).
#[derive(Debug, Clone)]
pub struct GpuNodeImage {
    pub node: String,
    pub image: Option<String>,
}

/// The `image/<node>` row and the image it found (see [`image_check`]).
#[derive(Debug, Clone)]
pub struct ImageChoice {
    pub check: ReadinessCheck,
    pub image: Option<String>,
}

/// GPU nodes, their readiness and, per node, whether the delivery has an image to use. Returns the GPU
/// nodes with the image a probe would use there, Ready ones first (the admission dry run uses the first).
pub(super) async fn node_checks(
    client: &Client,
    opts: &CheckOptions,
    report: &mut CheckReport,
) -> Vec<GpuNodeImage> {
    let api: Api<Node> = Api::all(client.clone());
    let mut lp = ListParams::default();
    if let Some(s) = &opts.selector {
        lp = lp.labels(s);
    }
    let nodes = match api.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            report.checks.push(ReadinessCheck::fail(
                "gpu-nodes",
                format!("list nodes: {e}"),
                "see permissions/k8s-gpu-mcp-reader",
            ));
            return Vec::new();
        }
    };
    let gpu: Vec<&Node> = nodes.iter().filter(|n| is_gpu_node(n)).collect();
    let within = opts
        .selector
        .as_deref()
        .map(|s| format!(" matching {s}"))
        .unwrap_or_default();
    if gpu.is_empty() {
        report.checks.push(ReadinessCheck::fail(
            "gpu-nodes",
            format!(
                "no GPU nodes{within} among {} nodes (none has nvidia.com/*, amd.com/gpu or habana.ai/gaudi \
                 capacity, nvidia.com/gpu.present=true, AMD's labeller labels, feature.node.kubernetes.io/amd-gpu=true \
                 or feature.node.kubernetes.io/pci-1da3.present=true)",
                nodes.len()
            ),
            "install the NVIDIA device plugin or GPU Operator, or for AMD GPUs AMD's device plugin and node labeller \
             (ROCm/k8s-device-plugin) or AMD GPU Operator, or for Intel Gaudi Habana's device plugin or the Gaudi \
             base operator; check with: kubectl get nodes -L nvidia.com/gpu.present -L amd.com/gpu.product-name \
             -L feature.node.kubernetes.io/pci-1da3.present",
        ));
        return Vec::new();
    }
    report.checks.push(ReadinessCheck::ok(
        "gpu-nodes",
        format!("{} GPU nodes{within}", gpu.len()),
    ));
    let delivery = delivery(&opts.k8s);
    let configured = opts.k8s.probe_image.as_deref();
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for n in gpu {
        let g = gpu_node(n, &[]);
        let arch = g.architecture.as_deref().unwrap_or("unknown arch");
        let mut check = if g.ready {
            ReadinessCheck::ok(
                format!("node/{}", g.name),
                format!("Ready, {} GPUs, {arch}", g.gpu_capacity),
            )
        } else {
            ReadinessCheck::fail(
                format!("node/{}", g.name),
                format!("not Ready ({})", g.problem_conditions.join(", ")),
                format!("kubectl describe node {}", g.name),
            )
        };
        if g.ready && g.unschedulable {
            // Probe pods bind by nodeName and tolerate everything, so cordoned nodes still work.
            check.detail.push_str(", cordoned (probes still run there)");
        }
        report.checks.push(check);
        let ImageChoice { check, image } = image_check(
            n,
            delivery,
            configured,
            &opts.k8s.trust,
            opts.k8s.pull_fallback,
        );
        report.checks.push(check);
        let found = GpuNodeImage {
            node: g.name,
            image,
        };
        if g.ready {
            ready.push(found);
        } else {
            not_ready.push(found);
        }
    }
    ready.extend(not_ready);
    ready
}

/// The delivery this configuration resolves to (copy unless only --probe-image is given).
pub(super) fn delivery(k: &K8sConfig) -> Delivery {
    k.probe_delivery
        .resolve(k.probe_bin_dir.is_some(), k.probe_image.is_some())
}

/// Whether the delivery has an image to use on `node`, and which. One function on purpose: the delivery
/// decides what "usable" means. `configured` is --probe-image: with image delivery the node pulls it if
/// needed; with copy delivery it must already be there. Without it (the default delivery) node-probe is
/// copied into a trusted image the node lists by digest, chosen as the runner chooses it
/// (`node_image::rank`); the others are named with why they were refused.
pub fn image_check(
    node: &Node,
    delivery: Delivery,
    configured: Option<&str>,
    policy: &TrustPolicy,
    pull: bool,
) -> ImageChoice {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let name = format!("image/{node_name}");
    let image_count = node
        .status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map_or(0, Vec::len);
    let listing = format!(
        "kubectl get node {node_name} -o jsonpath='{{range .status.images[*]}}{{.names}}{{\"\\n\"}}{{end}}'"
    );
    let Some(image) = configured else {
        let refused = node_image::refused(node, policy, 12);
        let refused_text = if refused.is_empty() {
            String::new()
        } else {
            format!("; refused: {}", refused.join(", "))
        };
        return match node_image::rank(node, &BTreeSet::new(), policy)
            .into_iter()
            .next()
        {
            Some(c) => ImageChoice {
                check: ReadinessCheck::ok(
                    name,
                    format!(
                        "node-probe is copied into {} ({}), a trusted image the node lists by digest{refused_text}",
                        c.label, c.image
                    ),
                ),
                image: Some(c.image),
            },
            // Nothing usable listed: the first call pulls the fallback base once, by digest.
            None if pull => {
                let f = fallback_base::for_node(node);
                ImageChoice {
                    check: ReadinessCheck::ok(
                        name,
                        format!(
                            "none of the node's {image_count} images is a trusted glibc base listed by digest{refused_text}; the first call pulls one: {} (--no-pull: never pull)",
                            f.describe()
                        ),
                    ),
                    image: Some(f.image),
                }
            }
            None => ImageChoice {
                check: ReadinessCheck::fail(
                    name,
                    format!(
                        "none of the node's {image_count} images is a glibc base with sh and tar from a trusted source, listed by digest{refused_text}"
                    ),
                    format!(
                        "leave out --no-pull (the node then pulls a trusted base once), pre-pull a trusted base (e.g. docker.io/library/debian:bookworm-slim) on the node, or trust your own registry's bases with --trust-image REGISTRY/NAMESPACE/, or name an image with --probe-image IMAGE@sha256:DIGEST (--probe-delivery copy, or the probe image of deploy/probe-image) (list the node's images: {listing})"
                    ),
                ),
                image: None,
            },
        };
    };
    let parsed = match ImageRef::parse(image) {
        Ok(r) => r,
        Err(e) => {
            return ImageChoice {
                check: ReadinessCheck::fail(
                    name,
                    format!("--probe-image: {e}"),
                    "give a reference such as registry.example.com/ns/node-probe@sha256:DIGEST",
                ),
                image: None,
            };
        }
    };
    let present = node_image::lists(node, image);
    let mut check = match (delivery, present) {
        (_, true) => ReadinessCheck::ok(name, format!("{image} is on the node")),
        (Delivery::Copy, false) => ReadinessCheck::fail(
            name,
            format!(
                "copy delivery streams node-probe into {image}, which the node does not have ({image_count} images listed); the pod would pull it"
            ),
            format!(
                "pick a glibc image with sh and tar that the node has (--probe-image IMAGE); list them with: {listing}"
            ),
        ),
        (Delivery::Image, false) => ReadinessCheck::warn(
            name,
            format!(
                "{image} is not on the node yet ({image_count} images listed): the first probe pulls it, which needs the registry reachable from the node"
            ),
            format!(
                "pre-pull {image} on the node, or leave out --probe-image: node-probe is then copied into an image the node has"
            ),
        ),
    };
    // A tag can be re-pointed (in the registry, or on the node): what runs as root should be named by digest.
    if parsed.digest.is_none() && check.status != Status::Fail {
        check = ReadinessCheck::warn(
            check.name,
            format!(
                "{}; --probe-image is given by tag, and a tag can be re-pointed to other content that then runs as root on the node",
                check.detail
            ),
            format!(
                "pin it by digest: --probe-image {}@sha256:DIGEST (the digest the registry or `crane digest` reports)",
                parsed.repository
            ),
        );
    }
    ImageChoice {
        check,
        image: Some(image.to_string()),
    }
}

/// The GPU nodes of the selection (for the checks that need the Node objects; None: the list failed, which
/// `node_checks` already reported).
pub(super) async fn gpu_nodes(client: &Client, opts: &CheckOptions) -> Option<Vec<Node>> {
    let mut lp = ListParams::default();
    if let Some(s) = &opts.selector {
        lp = lp.labels(s);
    }
    let api: Api<Node> = Api::all(client.clone());
    let nodes = api.list(&lp).await.ok()?.items;
    Some(nodes.into_iter().filter(is_gpu_node).collect())
}
