//! `list_gpu_nodes`: the GPU nodes from the API server, or in local mode the single node `local` found by an
//! inventory probe.

use std::collections::BTreeMap;
use std::fmt::Write;

use gpu_diag::command::Command;
use gpu_diag::contract::Report;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::GpuNode;
use gpu_diag::facts::GpuVendor;
use crate::mcp::framework::node_mark::mark_flag;
use crate::mcp::render::text::sev_label;
use crate::mcp::framework::schema::MAX_LABEL_SELECTOR_LEN;
use crate::mcp::framework::target::MAX_CONTEXT_LEN;
use crate::mcp::framework::{Cx, Hints, NodeTarget, ProbeRun, Tool, ToolError};

pub struct ListGpuNodes;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNodesArgs {
    // The kubeconfig context (the server's instructions say so once for every tool).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_CONTEXT_LEN))]
    pub context: Option<String>,
    /// Label selector, e.g. `nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = MAX_LABEL_SELECTOR_LEN))]
    pub label_selector: Option<String>,
    /// Nodes listed (default 50), problems first.
    #[serde(default)]
    #[schemars(with = "u32", range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// Position to start the page at.
    #[serde(default)]
    #[schemars(with = "u32")]
    pub offset: Option<u32>,
}

pub const DEFAULT_LIMIT: u32 = 50;

/// GPU Feature Discovery labels kept in the listing (the rest are one `kubectl get node` away).
const LISTED_LABELS: &[&str] = &[
    "nvidia.com/gpu.product",
    "nvidia.com/gpu.memory",
    "nvidia.com/gpu.count",
    "nvidia.com/cuda.driver-version.full",
    "nvidia.com/mig.strategy",
];

/// Nodes alike in what matters for placing work: GPU vendor, model and count, MIG resources and taints.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeGroup {
    /// `amd` for AMD's GPUs (left out for NVIDIA's).
    #[serde(skip_serializing_if = "GpuVendor::is_nvidia")]
    pub vendor: GpuVendor,
    /// `nvidia.com/gpu.product` when GPU Feature Discovery labels the nodes; AMD's
    /// `amd.com/gpu.product-name` (or its DRA devices' `productName`) for AMD's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub gpu_capacity: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
    pub nodes_count: usize,
    /// Ready, schedulable, no problem condition and every GPU allocatable.
    pub nodes_healthy: usize,
    pub gpus_allocatable: u64,
    pub gpus_allocated: u64,
}

/// `list_gpu_nodes` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct NodeList {
    /// `local` (one host, no cluster) or `cluster`.
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Every matching node (the list below may be one page of them).
    pub count: usize,
    /// Nodes NotReady, cordoned, marked by their platform's health agent, with a problem condition or fewer
    /// allocatable GPUs than capacity.
    pub problems: usize,
    /// Every matching node, grouped.
    pub groups: Vec<NodeGroup>,
    /// Nodes per multi-node NVLink domain (an NVL72 rack), from GFD's `nvidia.com/gpu.clique`: a job that
    /// needs NVLink across nodes must stay within one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nvlink_domains: BTreeMap<String, usize>,
    /// Positions `offset`.. of the list (problem nodes first, then by name), at most `limit` of them.
    pub nodes: Vec<GpuNode>,
    pub offset: usize,
    /// Call again with this `offset` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<usize>,
    /// In local mode: the inventory probe run that found the local GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_probe: Option<ProbeRun>,
}

impl Tool for ListGpuNodes {
    type Args = ListNodesArgs;
    type Output = NodeList;
    const NAME: &'static str = "list_gpu_nodes";
    const TITLE: &'static str = "List GPU nodes";
    const DESCRIPTION: &'static str = "List the cluster's GPU nodes (NVIDIA, AMD, Intel Gaudi, AWS Neuron) \
with model, GPU capacity and allocation, readiness, taints and health agents' marks, problems first. Use it \
to find node names or nodes NotReady, cordoned or short of GPUs.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let limit = a.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=500).contains(&limit) {
            return Err(ToolError::Invalid(format!(
                "`limit` must be between 1 and 500 (got {limit}); omit it for the default of {DEFAULT_LIMIT}"
            )));
        }
        let offset = a.offset.unwrap_or(0) as usize;
        if let Some(cluster) = &cx.env.cluster {
            cx.check_context(a.context.as_deref())?;
            cx.progress
                .report(1.0, Some(2.0), "listing nodes from the API server");
            let nodes = tokio::select! {
                r = cluster.list_gpu_nodes(a.context.as_deref(), a.label_selector.as_deref()) => r?,
                _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            cx.progress.report(2.0, Some(2.0), "done");
            return Ok(NodeList::paged(
                "cluster",
                a.context,
                a.label_selector,
                nodes,
                offset,
                limit as usize,
                None,
            ));
        }
        if a.context.is_some() {
            return Err(ToolError::Invalid(
                "`context` selects a kubeconfig context, which local mode does not use; call again \
                 without `context`"
                    .into(),
            ));
        }
        if a.label_selector.is_some() {
            return Err(ToolError::Invalid(
                "`label_selector` filters cluster nodes; local mode has the single node `local`. Call \
                 again without `label_selector`"
                    .into(),
            ));
        }
        let local = NodeTarget {
            node_name: "local".into(),
            context: None,
        };
        let res = cx
            .probe(Self::NAME, &local, Command::Inventory)
            .await?;
        // A GPU's vendor from its PCI vendor id (`1002:74a1`), as the library's vendors' table says; the
        // node's is the one every GPU shares (NVIDIA's when none is read or they differ).
        let (gpus, vendor) = match &res.report {
            Report::Inventory(inv) => {
                let mut of = inv.gpus.iter().map(|g| {
                    g.pci_device_id
                        .ok()
                        .and_then(|d| GpuVendor::of_pci_device_id(d))
                });
                let first = of.next().flatten();
                let shared = first.filter(|v| of.all(|o| o == Some(*v)));
                (inv.gpus.len() as u64, shared.unwrap_or_default())
            }
            _ => (0, GpuVendor::default()),
        };
        let node = GpuNode {
            name: "local".into(),
            gpu_capacity: gpus,
            gpu_allocatable: gpus,
            gpu_allocated: 0,
            mig_resources: BTreeMap::new(),
            gpu_labels: BTreeMap::new(),
            ready: true,
            problem_conditions: vec![],
            platform: vec![],
            device_taints_unreadable: None,
            dra_devices: Default::default(),
            gfd: Default::default(),
            vendor,
            amd: None,
            imex: vec![],
            taints: vec![],
            unschedulable: false,
            mark: None,
            architecture: Some(std::env::consts::ARCH.to_string()),
            kubelet_version: None,
            addresses: vec![],
            rack_hints: Default::default(),
        };
        Ok(NodeList::paged(
            "local",
            None,
            None,
            vec![node],
            offset,
            limit as usize,
            Some(res.run),
        ))
    }

    fn render(l: &Self::Output) -> String {
        let mut out = String::new();
        let scope = match (&l.context, &l.label_selector) {
            (Some(c), Some(s)) => format!(" (context {c}, selector {s})"),
            (Some(c), None) => format!(" (context {c})"),
            (None, Some(s)) => format!(" (selector {s})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "{} GPU node(s){scope}, {} mode; {} with problems",
            l.count,
            if l.mode == "local" {
                "local"
            } else {
                "cluster"
            },
            l.problems
        );
        // Groups say what the cluster is made of when the list is long; for a few nodes the list says it.
        if l.count > l.nodes.len() || l.groups.len() > 1 {
            for g in &l.groups {
                let _ = write!(
                    out,
                    "  {} x {} GPU(s) {}: {} healthy; GPUs allocatable {}, allocated {}",
                    g.nodes_count,
                    g.gpu_capacity,
                    g.vendor.info().product_label(g.product.as_deref()),
                    g.nodes_healthy,
                    g.gpus_allocatable,
                    g.gpus_allocated
                );
                if !g.taints.is_empty() {
                    let _ = write!(out, "; taints {}", g.taints.join(", "));
                }
                out.push('\n');
            }
        }
        if !l.nvlink_domains.is_empty() {
            let list: Vec<String> = l
                .nvlink_domains
                .iter()
                .map(|(d, n)| format!("{d} ({n} nodes)"))
                .collect();
            let _ = writeln!(out, "NVLink domains (GFD clique): {}", list.join(", "));
        }
        if let Some(run) = &l.local_probe
            && let Some(p) = &run.probe
        {
            let _ = writeln!(out, "source: {}", p.source);
        }
        // The same reason for every node of the call: said once.
        if let Some(why) = l.nodes.iter().find_map(|n| n.device_taints_unreadable.as_deref()) {
            let _ = writeln!(out, "device taints: {why}");
        }
        for n in &l.nodes {
            let mut flags = Vec::new();
            if !n.ready {
                flags.push("NotReady".to_string());
            }
            if n.unschedulable {
                flags.push("cordoned".to_string());
            }
            if let Some(m) = &n.mark {
                flags.push(mark_flag(m));
            }
            flags.extend(n.problem_conditions.iter().cloned());
            let _ = write!(
                out,
                "- {}: GPUs capacity {} / allocatable {} / allocated {}",
                n.name, n.gpu_capacity, n.gpu_allocatable, n.gpu_allocated
            );
            if let Some(p) = n.gpu_labels.get("nvidia.com/gpu.product") {
                let _ = write!(out, ", {p}");
            }
            if !n.dra_devices.is_empty() {
                let d: Vec<String> = n
                    .dra_devices
                    .iter()
                    .map(|(driver, count)| format!("{count} by {driver}"))
                    .collect();
                let _ = write!(out, ", DRA devices {}", d.join(", "));
            }
            if let Some(a) = &n.amd {
                let _ = write!(out, ", {}", a.brief());
            }
            let gfd = n.gfd.brief();
            if !gfd.is_empty() {
                let _ = write!(out, ", {gfd}");
            }
            if !n.mig_resources.is_empty() {
                let mig: Vec<String> = n
                    .mig_resources
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = write!(out, ", MIG {}", mig.join(" "));
            }
            if !flags.is_empty() {
                let _ = write!(out, " [{}]", flags.join(", "));
            }
            if !n.taints.is_empty() {
                let _ = write!(out, " taints: {}", n.taints.join(", "));
            }
            out.push('\n');
            // What the platform's own agents already say, before any probe: one line each.
            for m in &n.platform {
                let _ = writeln!(out, "  {} {}", sev_label(m.severity), m.line());
            }
            for f in gpu_diag::incident::imex::findings(&n.imex) {
                let _ = writeln!(out, "  {} {}: {}", sev_label(f.severity), f.code, f.summary);
            }
        }
        if let Some(n) = l.next_offset {
            let _ = writeln!(
                out,
                "Listed {}-{} of {}; call again with offset={n} for more.",
                l.offset + 1,
                l.offset + l.nodes.len(),
                l.count
            );
        }
        out
    }
}

fn has_problem(n: &GpuNode) -> bool {
    !n.ready
        || n.unschedulable
        || n.mark.is_some()
        || !n.problem_conditions.is_empty()
        || n
            .platform
            .iter()
            .any(|m| m.severity > gpu_diag::finding::Severity::Info)
        || n.gpu_allocatable < n.gpu_capacity
        || !gpu_diag::incident::imex::findings(&n.imex).is_empty()
}

impl NodeList {
    /// Group every node, then keep one page: problem nodes first, the rest by name.
    fn paged(
        mode: &str,
        context: Option<String>,
        label_selector: Option<String>,
        mut nodes: Vec<GpuNode>,
        offset: usize,
        limit: usize,
        local_probe: Option<ProbeRun>,
    ) -> NodeList {
        let mut nvlink_domains: BTreeMap<String, usize> = BTreeMap::new();
        for c in nodes.iter().filter_map(|n| n.gfd.clique.clone()) {
            *nvlink_domains.entry(c).or_default() += 1;
        }
        let mut groups: Vec<NodeGroup> = Vec::new();
        for n in &nodes {
            let product = match n.vendor {
                GpuVendor::Amd => n.amd.as_ref().and_then(|a| a.product.clone()),
                GpuVendor::Nvidia => n.gpu_labels.get("nvidia.com/gpu.product").cloned(),
                // Intel's and AWS's device plugins and NFD label give no product name.
                GpuVendor::Intel | GpuVendor::Neuron => None,
            };
            let g = match groups.iter_mut().find(|g| {
                g.vendor == n.vendor
                    && g.product == product
                    && g.gpu_capacity == n.gpu_capacity
                    && g.taints == n.taints
            }) {
                Some(g) => g,
                None => {
                    groups.push(NodeGroup {
                        vendor: n.vendor,
                        product,
                        gpu_capacity: n.gpu_capacity,
                        taints: n.taints.clone(),
                        nodes_count: 0,
                        nodes_healthy: 0,
                        gpus_allocatable: 0,
                        gpus_allocated: 0,
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            g.nodes_count += 1;
            g.nodes_healthy += usize::from(!has_problem(n));
            g.gpus_allocatable += n.gpu_allocatable;
            g.gpus_allocated += n.gpu_allocated;
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.nodes_count));
        let count = nodes.len();
        let problems = nodes.iter().filter(|n| has_problem(n)).count();
        nodes.sort_by(|a, b| {
            has_problem(b)
                .cmp(&has_problem(a))
                .then_with(|| a.name.cmp(&b.name))
        });
        let next = offset.saturating_add(limit);
        let nodes = nodes
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|mut n| {
                n.gpu_labels
                    .retain(|k, _| LISTED_LABELS.contains(&k.as_str()));
                n
            })
            .collect();
        NodeList {
            mode: mode.into(),
            context,
            label_selector,
            count,
            problems,
            groups,
            nvlink_domains,
            nodes,
            offset,
            next_offset: (next < count).then_some(next),
            local_probe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::incident::platform::{self, GfdFacts, NodeCondition};

    fn node(name: &str) -> GpuNode {
        GpuNode {
            name: name.into(),
            gpu_capacity: 8,
            gpu_allocatable: 8,
            gpu_allocated: 0,
            mig_resources: BTreeMap::new(),
            gpu_labels: [(
                "nvidia.com/gpu.product".to_string(),
                "NVIDIA-H100-80GB-HBM3".to_string(),
            )]
            .into(),
            ready: true,
            problem_conditions: vec![],
            platform: vec![],
            device_taints_unreadable: None,
            dra_devices: Default::default(),
            imex: vec![],
            gfd: GfdFacts::from_labels([("nvidia.com/cuda.driver-version.full", "550.54.15")]),
            vendor: GpuVendor::Nvidia,
            amd: None,
            taints: vec![],
            unschedulable: false,
            mark: None,
            architecture: Some("amd64".into()),
            kubelet_version: None,
            addresses: vec![],
            rack_hints: Default::default(),
        }
    }

    /// A node its platform marks says so in one line each, with source and time, first; healthy nodes stay
    /// one line.
    #[test]
    fn platform_marks_render_one_line_each() {
        let mut sick = node("gpu-b");
        sick.platform.extend(platform::classify(&NodeCondition {
            kind: "AcceleratedHardwareReady",
            status: "False",
            reason: Some("NvidiaXID79Error"),
            message: Some("detected XID-79 on the instance"),
            since: Some("2026-11-20T10:00:00Z"),
        }));
        sick.platform.extend(platform::classify(&NodeCondition {
            kind: "KernelDeadlock",
            status: "True",
            reason: Some("DockerHung"),
            message: None,
            since: Some("2026-11-20T09:58:00Z"),
        }));
        let list = NodeList::paged(
            "cluster",
            None,
            None,
            vec![node("gpu-a"), sick, node("gpu-c")],
            0,
            50,
            None,
        );
        assert_eq!(list.problems, 1);
        let text = ListGpuNodes::render(&list);
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/launcher"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_snapshot!("list_gpu_nodes_platform_marks", text);
        });
    }
}

#[cfg(test)]
mod amd_tests {
    use super::*;
    use crate::cluster::amd::AmdNodeFacts;

    /// A fleet of both vendors: AMD's nodes group apart from NVIDIA's under their own product, and each
    /// AMD node line says vendor, product and partition mode.
    #[test]
    fn a_fleet_of_both_vendors_lists_both() {
        let nvidia = serde_json::from_value::<GpuNode>(serde_json::json!({
            "name": "h100-0", "gpu_capacity": 8, "gpu_allocatable": 8, "gpu_allocated": 0,
            "mig_resources": {}, "gpu_labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
            "ready": true, "problem_conditions": [], "taints": [], "unschedulable": false,
            "architecture": "amd64", "kubelet_version": null
        }))
        .unwrap();
        let amd = |name: &str, partition: Option<&str>| {
            let mut n = nvidia.clone();
            n.name = name.into();
            n.gpu_labels.clear();
            n.vendor = GpuVendor::Amd;
            n.amd = Some(AmdNodeFacts {
                product: Some("AMD_Instinct_MI300X_OAM".into()),
                partition: partition.map(str::to_string),
                ..Default::default()
            });
            n
        };
        let list = NodeList::paged(
            "cluster",
            None,
            None,
            vec![nvidia.clone(), amd("mi300x-0", None), amd("mi300x-1", Some("spx_nps1"))],
            0,
            50,
            None,
        );
        let groups: Vec<(GpuVendor, Option<&str>, usize)> = list
            .groups
            .iter()
            .map(|g| (g.vendor, g.product.as_deref(), g.nodes_count))
            .collect();
        assert_eq!(
            groups,
            [
                (GpuVendor::Amd, Some("AMD_Instinct_MI300X_OAM"), 2),
                (GpuVendor::Nvidia, Some("NVIDIA-H100-80GB-HBM3"), 1)
            ]
        );
        let text = ListGpuNodes::render(&list);
        assert!(
            text.contains("2 x 8 GPU(s) AMD_Instinct_MI300X_OAM: 2 healthy"),
            "{text}"
        );
        assert!(
            text.contains("- mi300x-1: GPUs capacity 8 / allocatable 8 / allocated 0, AMD_Instinct_MI300X_OAM, partition spx_nps1"),
            "{text}"
        );
        assert!(
            text.contains("- h100-0: GPUs capacity 8 / allocatable 8 / allocated 0, NVIDIA-H100-80GB-HBM3"),
            "{text}"
        );
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["nodes"][1]["vendor"], "amd");
        assert!(json["nodes"][0].get("vendor").is_none());
    }
}
