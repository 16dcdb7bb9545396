//! `describe_gpu_node`: everything about one node in one probe run (`node-probe describe`, the node's
//! reading kept for the next questions), beside what the API server says about the node and the pods
//! holding its GPUs.

use std::fmt::Write;

use gpu_diag::command::Command;
use gpu_diag::analysis::describe::DescribeReport;
use gpu_diag::facts::GpuVendor;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cluster::{GpuNode, PodGpuUse};
use crate::mcp::render::details::{self, Entry, Fields};
use crate::mcp::render::text::{header, serialized_details};
use crate::mcp::render::{gpus, incidents, nic};
use crate::mcp::render::topology::{self, alike};
use crate::mcp::framework::readings::{MAX_ASKED_AGE_SECS, MaxAge};
use crate::mcp::framework::target::MAX_GPU_INDEX;
use crate::mcp::framework::{Cx, Detail, Hints, Node, ProbeRun, Tool, ToolError, beside};

pub struct DescribeGpuNode;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeArgs {
    /// `summary` (default): findings with evidence, a few lines a part; `full`: the whole report.
    #[serde(default)]
    pub detail: Detail,
    /// Only this GPU's entries and findings (index), plus the node's.
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_GPU_INDEX))]
    pub gpu: Option<u32>,
    /// Oldest kept reading to answer from, in seconds (0: read now).
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

/// XID events a summarised description still lists one by one (all are counted per GPU and code).
const XID_EVENTS_LISTED: usize = 20;

/// The Kubernetes side of a node: its GPU accounting and the pods using GPUs there.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KubeNodeView {
    pub node: GpuNode,
    pub pods: Vec<PodGpuUse>,
}

/// `describe_gpu_node` result: the probe's full report plus what Kubernetes says about the node.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DescribeOutput {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub run: ProbeRun,
    pub report: DescribeReport,
    /// `summary` or `full`, as asked.
    pub detail: Detail,
    /// What the API server says (absent in local mode or when it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubeNodeView>,
    /// Why `kubernetes` is missing, when it should be there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_error: Option<String>,
}

impl Tool for DescribeGpuNode {
    type Args = Node<DescribeArgs>;
    type Output = DescribeOutput;
    const NAME: &'static str = "describe_gpu_node";
    const TITLE: &'static str = "Describe a GPU node (everything)";
    const DESCRIPTION: &'static str = "Everything about one node at once: health verdict, inventory, \
telemetry, topology, ECC, processes, Xids, Kubernetes GPU accounting, taints and GPU pods. Use it for a full \
picture before acting on a node.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let t = a.target;
        cx.check_target(&t)?;
        let age = MaxAge {
            max_age_s: a.args.max_age_s,
        };
        let probe = cx.read(Self::NAME, &t, Command::Describe, age, DescribeReport::clone);
        // The API-server half runs alongside the probe; it is cheap and independent.
        let kube = async {
            match &cx.env.cluster {
                None => None,
                Some(c) => Some(
                    c.node_and_gpu_pods(t.context.as_deref(), &t.node_name)
                        .await
                        .map(|(n, pods)| KubeNodeView { node: n, pods }),
                ),
            }
        };
        let ((mut report, mut run), kube) =
            beside::probe_and_read(probe, kube, beside::AFTER_PROBE).await?;
        if cx.env.cluster.is_some() {
            run.after_probe_millis = Some(kube.waited_millis);
        }
        let slow = kube
            .read
            .is_none()
            .then(|| beside::too_slow("the node's Kubernetes view (API server)"));
        let kube = kube.read.flatten();
        if let Some(g) = a.args.gpu {
            only_gpu(&mut report, g).map_err(ToolError::Invalid)?;
        }
        if a.args.detail == Detail::Summary {
            summarize(&mut report);
        }
        if let Some(Ok(k)) = &kube {
            gpu_diag::analysis::health::join_platform(
                &mut report.health,
                &k.node.platform,
                k.node.device_taints_unreadable.as_deref(),
            );
        }
        let (kubernetes, kubernetes_error) = match kube {
            None => (None, slow),
            Some(Ok(v)) => (Some(v), None),
            Some(Err(e)) => (None, Some(ToolError::Cluster(e).to_string())),
        };
        Ok(DescribeOutput {
            node: t.node_name,
            context: t.context,
            run,
            report,
            detail: a.args.detail,
            kubernetes,
            kubernetes_error,
        })
    }

    fn render(d: &Self::Output) -> String {
        let mut out = header("Node description", &d.node, d.context.as_deref(), &d.run);
        if d.detail == Detail::Full {
            // The NICs are rendered compactly between the findings and the details, not twice.
            let mut nics = String::new();
            if let Some(n) = &d.report.topology.nics {
                nic::render(n, &mut nics);
            }
            incidents::verdict_and_incidents(&d.report.health, &mut out);
            out.push_str(&nics);
            let mut body = String::new();
            details::write_entry(&full_details(&d.report), 0, &mut body);
            out.push_str("details:\n");
            for line in body.lines() {
                let _ = writeln!(out, "  {line}");
            }
        } else {
            summary_text(&d.report, &mut out);
        }
        match (&d.kubernetes, &d.kubernetes_error) {
            (Some(k), _) => {
                out.push_str("\nKubernetes:\n");
                details::write_entry(&serialized_details(k), 1, &mut out);
            }
            (None, Some(e)) => {
                let _ = writeln!(out, "\nKubernetes: could not read the node: {e}");
            }
            (None, None) => {}
        }
        out
    }
}

/// The whole report, section by section: inventory, telemetry and processes by their typed renderers,
/// the other sections serialized; the topology without its NICs (shown above).
fn full_details(r: &DescribeReport) -> Entry {
    let mut topology = r.topology.clone();
    topology.nics = None;
    let mut f = Fields::default();
    f.entry("ecc", serialized_details(&r.ecc))
        .entry("health", {
            // Its incidents are rendered above, and its findings are their signals.
            let mut h = r.health.clone();
            h.incidents = Default::default();
            serialized_details(&h)
        })
        .entry("inventory", gpus::inventory::details(&r.inventory))
        .entry("processes", gpus::processes::details(&r.processes))
        .entry("telemetry", gpus::telemetry::details(&r.telemetry))
        .entry("topology", serialized_details(&topology))
        .entry("xid", serialized_details(&r.xid));
    Entry::Fields(f)
}

/// Leave out what is alike or repeated: the topology's healthy NVLinks and fully supported GPU pairs, and
/// XID events beyond the first few (every event stays counted per GPU and code).
fn summarize(r: &mut DescribeReport) {
    gpu_diag::analysis::topology::summarize(&mut r.topology);
    let extra = r.xid.events.len().saturating_sub(XID_EVENTS_LISTED);
    if extra > 0 {
        r.xid.events.truncate(XID_EVENTS_LISTED);
        r.xid.log.events_not_listed += extra;
    }
}

/// Narrow the report to GPU `g`: each part's per-GPU entries and the findings about another GPU go; the
/// node's own findings (fabric, NICs, driver) stay.
fn only_gpu(r: &mut DescribeReport, g: u32) -> Result<(), String> {
    if !r.inventory.gpus.iter().any(|x| x.index == g) {
        let known: Vec<String> = r.inventory.gpus.iter().map(|x| x.index.to_string()).collect();
        return Err(format!(
            "this node has no GPU {g}; its GPUs are {} (omit `gpu` for all of them)",
            known.join(", ")
        ));
    }
    let keep = |f: &gpu_diag::finding::Finding| f.gpu.is_none_or(|i| i == g);
    r.inventory.gpus.retain(|x| x.index == g);
    r.health.gpus.retain(|x| x.gpu.index == g);
    r.health.node_findings.retain(keep);
    r.telemetry.gpus.retain(|x| x.gpu.index == g);
    r.telemetry.findings.retain(keep);
    r.topology.gpus.retain(|x| x.gpu.index == g);
    r.topology.pairs.retain(|p| p.a == g || p.b == g);
    let row = format!("GPU{g}");
    r.topology.matrix.rows.retain(|x| x.gpu == row);
    r.topology.findings.retain(keep);
    r.ecc.gpus.retain(|x| x.gpu.index == g);
    r.ecc.findings.retain(keep);
    r.processes.gpus.retain(|x| x.gpu.index == g);
    r.processes.findings.retain(keep);
    r.xid.gpus.retain(|x| x.index.is_none_or(|i| i == g));
    r.xid.findings.retain(keep);
    Ok(())
}

fn summary_text(r: &DescribeReport, out: &mut String) {
    incidents::verdict_and_incidents(&r.health, out);
    if let Some(imex) = &r.health.imex {
        incidents::imex_line(imex, out);
    }
    // A lost GPU is said once, in the inventory; the sections below list the GPUs that answer.
    let lost = gpus::lost(&r.health);
    let answering = |i: &u32| !lost.contains(i);

    gpus::inventory::summary(&r.inventory, &lost, out);

    out.push_str("Telemetry:\n");
    let tel: Vec<_> = r
        .telemetry
        .gpus
        .iter()
        .filter(|t| answering(&t.gpu.index))
        .cloned()
        .collect();
    gpus::telemetry::summary(&tel, &lost, out);

    out.push_str("Topology:\n");
    if lost.is_empty() {
        topology::render(&r.topology, out);
    } else {
        let mut t = r.topology.clone();
        t.gpus.retain(|g| answering(&g.gpu.index));
        topology::render(&t, out);
    }

    out.push_str("ECC:\n");
    alike(
        r.ecc
            .gpus
            .iter()
            .filter(|g| answering(&g.gpu.index))
            .map(|g| (g.gpu.index, g.verdict.clone()))
            .collect(),
        out,
    );

    let procs: usize = r
        .processes
        .gpus
        .iter()
        .map(|g| g.processes.ok().map_or(0, Vec::len))
        .sum();
    let _ = writeln!(out, "Processes: {procs}");
    let procs_of: Vec<_> = r
        .processes
        .gpus
        .iter()
        .filter(|g| answering(&g.gpu.index))
        .cloned()
        .collect();
    gpus::processes::summary(&procs_of, &lost, out);

    let x = &r.xid;
    let events = x.events.len() + x.log.events_not_listed;
    // Each vendor's kernel-log events in its own words (a Gaudi's are habanalabs', not Xids): the vendors
    // of the node's GPUs (by PCI vendor id) and of the events' kernel-log families.
    let counted = gpu_diag::kernel_log::correlate::events_by_vendor(x);
    let mut vendors: Vec<GpuVendor> = r
        .inventory
        .gpus
        .iter()
        .filter_map(|g| g.pci_device_id.ok().and_then(|d| GpuVendor::of_pci_device_id(d)))
        .chain(counted.iter().map(|(v, _)| *v))
        .collect();
    vendors.sort_by_key(|v| GpuVendor::ALL.iter().position(|a| a == v));
    vendors.dedup();
    match vendors.as_slice() {
        [] => {
            let _ = writeln!(out, "kernel log: {events} event(s) in the window");
        }
        [one] => {
            let _ = writeln!(
                out,
                "{}: {events} event(s) in the kernel log window",
                one.info().kernel_log_label
            );
        }
        several => {
            let mut parts: Vec<String> = several
                .iter()
                .map(|v| {
                    let n = counted.iter().find(|(c, _)| c == v).map_or(0, |(_, n)| *n);
                    format!("{n} {}(s)", v.info().kernel_event)
                })
                .collect();
            if x.log.events_not_listed > 0 {
                parts.push(format!("{} not listed", x.log.events_not_listed));
            }
            let _ = writeln!(
                out,
                "kernel log: {events} event(s) in the window ({})",
                parts.join(", ")
            );
        }
    }
    for g in &x.gpus {
        let codes: Vec<String> = g
            .xids
            .iter()
            .map(|c| {
                format!(
                    "Xid {} x{}{}",
                    c.code,
                    c.count,
                    c.first
                        .as_deref()
                        .map(|f| format!(" (first {f})"))
                        .unwrap_or_default()
                )
            })
            .collect();
        if codes.is_empty() {
            continue;
        }
        let who = g
            .index
            .map(|i| format!("GPU {i}"))
            .or_else(|| g.pci_bus_id.clone())
            .unwrap_or_else(|| "unattributed".into());
        let _ = writeln!(out, "  {who}: {}", codes.join(", "));
    }
    if events > 0 {
        out.push_str("  (analyze_xid_errors lists each event with its decoding)\n");
    }
    out.push_str(
        "More: the narrower tools (get_gpu_telemetry, inspect_topology, snapshot_ecc, get_gpu_processes, \
         analyze_xid_errors) or detail=\"full\" for the whole report.\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full description's details, section by section, are the whole report's as serialized
    /// (a section added to the report and not here fails this).
    #[test]
    fn full_details_hold_every_section() {
        for s in gpu_diag::scenarios::BUILTIN {
            let facts = gpu_diag::scenarios::parse(&s.json()).unwrap();
            let mut r = gpu_diag::analysis::describe::analyze(&facts, &Default::default());
            let mut typed = String::new();
            details::write_entry(&full_details(&r), 0, &mut typed);
            r.topology.nics = None;
            // The incidents are rendered above the details, not in them.
            r.health.incidents = Default::default();
            let mut shown = serde_json::to_value(&r).unwrap();
            gpus::inventory::as_rendered(&mut shown["inventory"]);
            gpus::processes::as_rendered(&mut shown["processes"]);
            let mut serialized = String::new();
            details::write_entry(&serialized_details(&shown), 0, &mut serialized);
            assert_eq!(typed, serialized, "{}", s.name);
        }
    }
}
