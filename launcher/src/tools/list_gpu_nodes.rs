//! `list_gpu_nodes`: the GPU nodes from the API server, or in local mode the single node `local` found by an
//! inventory probe.

use std::collections::BTreeMap;
use std::fmt::Write;

use gpu_diag::contract::Report;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::GpuNode;
use crate::tool::{Cx, Hints, NodeTarget, ProbeRun, Tool, ToolError, text};

pub struct ListGpuNodes;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNodesArgs {
    /// Kubeconfig context of the cluster. Omit for the launcher's default context.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 253))]
    pub context: Option<String>,
    /// Kubernetes label selector to narrow the nodes, e.g. `nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3`.
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 1024))]
    pub label_selector: Option<String>,
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
    pub count: usize,
    pub nodes: Vec<GpuNode>,
    /// In local mode: the inventory probe run that found the local GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_probe: Option<ProbeRun>,
}

impl Tool for ListGpuNodes {
    type Args = ListNodesArgs;
    type Output = NodeList;
    const NAME: &'static str = "list_gpu_nodes";
    const TITLE: &'static str = "List GPU nodes";
    const DESCRIPTION: &'static str = "List the nodes that carry NVIDIA GPUs, with GPU capacity/allocatable/allocated \
counts, MIG resources, readiness, problem conditions, taints and cordon state. Use it first to find node \
names for the other tools, or to spot nodes that are NotReady, cordoned or have fewer allocatable GPUs \
than capacity. In local mode it returns the single node `local` found by an inventory probe.";
    const HINTS: Hints = Hints::READ_IDEMPOTENT;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        if let Some(cluster) = &cx.env.cluster {
            cx.check_context(a.context.as_deref())?;
            cx.progress
                .report(1.0, Some(2.0), "listing nodes from the API server");
            let nodes = tokio::select! {
                r = cluster.list_gpu_nodes(a.context.as_deref(), a.label_selector.as_deref()) => r?,
                _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
            };
            cx.progress.report(2.0, Some(2.0), "done");
            return Ok(NodeList {
                mode: "cluster".into(),
                context: a.context,
                label_selector: a.label_selector,
                count: nodes.len(),
                nodes,
                local_probe: None,
            });
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
            .probe(Self::NAME, &local, vec!["inventory".into()])
            .await?;
        let gpus = match &res.report {
            Report::Inventory(inv) => text::gpu_count(inv),
            _ => None,
        }
        .unwrap_or(0);
        let node = GpuNode {
            name: "local".into(),
            gpu_capacity: gpus,
            gpu_allocatable: gpus,
            gpu_allocated: 0,
            mig_resources: BTreeMap::new(),
            gpu_labels: BTreeMap::new(),
            ready: true,
            problem_conditions: vec![],
            taints: vec![],
            unschedulable: false,
            architecture: Some(std::env::consts::ARCH.to_string()),
            kubelet_version: None,
        };
        Ok(NodeList {
            mode: "local".into(),
            context: None,
            label_selector: None,
            count: 1,
            nodes: vec![node],
            local_probe: Some(res.run),
        })
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
            "{} GPU node(s){scope}, {} mode",
            l.count,
            if l.mode == "local" {
                "local"
            } else {
                "cluster"
            }
        );
        if let Some(run) = &l.local_probe
            && let Some(p) = &run.probe
        {
            let _ = writeln!(out, "source: {}", p.source);
        }
        for n in &l.nodes {
            let mut flags = Vec::new();
            if !n.ready {
                flags.push("NotReady".to_string());
            }
            if n.unschedulable {
                flags.push("cordoned".to_string());
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
        }
        out
    }
}
