//! `get_pod_gpu_allocation`: which pod holds which GPU on one node. The API server's request view and
//! `node-probe allocation` (the kubelet's exact assignment) run concurrently and are joined pod by pod.

use std::collections::BTreeMap;
use std::fmt::Write;

use gpu_diag::command::Request;
use gpu_diag::attribution::join::{ApiContainer, ApiPod, PodAssignment, SeenBy};
use gpu_diag::attribution::{AllocatedDevice, AllocationReport, AttributedProcess};
use gpu_diag::facts::Reading;
use gpu_diag::finding::Finding;
use schemars::JsonSchema;
use serde::Serialize;

use crate::cluster::PodGpuUse;
use crate::mcp::render::text::render_findings;
use crate::mcp::framework::{Cx, Hints, Node, ProbeRun, Tool, ToolError, target::NoArgs, pick};

pub struct GetPodGpuAllocation;

/// `get_pod_gpu_allocation` result: the API server's request-based view and, when the probe could ask the
/// kubelet, its exact device assignment, joined pod by pod.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PodAllocation {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// True when the device ids and GPU indices are the kubelet's own assignment (PodResources API, read
    /// by the probe on the node); false when only the pods' requests are known.
    pub exact: bool,
    /// Why the assignment is not exact: the probe's reason (kubelet socket missing, ...), or
    /// `probe failed: ...` when the probe itself could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// `status.capacity["nvidia.com/gpu"]` (absent in local mode: no API server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_allocatable: Option<u64>,
    /// Sum of the GPU requests of the node's active pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_allocated: Option<u64>,
    /// Requested count per GPU resource name over all listed pods.
    pub requested_by_resource: BTreeMap<String, u64>,
    /// Pods bound to the node that request GPUs, per the API server (the request-based view; empty in
    /// local mode).
    pub pods: Vec<PodGpuUse>,
    /// Why the API server's view is missing (local mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_why: Option<String>,
    /// Why the API server's ResourceClaims on the node were not read: `not served: ...` (the cluster serves
    /// no DRA API, so no claim exists) or `not readable: ...` (forbidden, failed, too many: where the
    /// kubelet names no DRA claim, attribution then rests on the node's own evidence).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims_why: Option<String>,
    /// Both views joined per pod: requests beside the kubelet's device ids with their GPU index, UUID and
    /// MIG instance. Pods only one side knows are listed too (`seen_by`). Empty unless `exact` and in a
    /// cluster (in local mode `report.pods` holds the kubelet's assignment alone).
    pub assignment: Vec<PodAssignment>,
    /// Findings of the join (pods assigned GPUs the API server does not know, running pods without their
    /// devices); the probe's own findings are in `report.findings`.
    pub join_findings: Vec<Finding>,
    /// The probe run (absent when it failed; `why` says how).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<ProbeRun>,
    /// node-probe's `allocation` report: per GPU the holders the kubelet assigned and the processes on it
    /// attributed through their cgroups, with the probe's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<AllocationReport>,
}

impl Tool for GetPodGpuAllocation {
    type Args = Node<NoArgs>;
    type Output = PodAllocation;
    const NAME: &'static str = "get_pod_gpu_allocation";
    const TITLE: &'static str = "Pods holding GPUs on a node";
    const DESCRIPTION: &'static str = "Which pod holds which GPU on a node: the kubelet's device assignment \
(device plugin, DRA claims) by GPU index, UUID and MIG instance, else the pods' requests. Use it for 'which \
pod is using GPU 3?' or GPU pods stuck Pending.";
    const HINTS: Hints = Hints::READ_LIVE;

    async fn run(cx: &Cx, a: Self::Args) -> Result<Self::Output, ToolError> {
        let t = a.target;
        cx.check_target(&t)?;
        // Both halves at once: the API server's request view (two requests) and node-probe asking the
        // kubelet. The probe's failure costs exactness, never the request view.
        let api = async {
            match &cx.env.cluster {
                None => Ok(None),
                Some(cluster) => cluster
                    .node_and_gpu_pods(t.context.as_deref(), &t.node_name)
                    .await
                    .map(Some),
            }
        };
        // The API server's claims on the node go to the probe first: where the kubelet names no DRA claim
        // they name the holders (two small requests before the probe pod starts).
        let claims = cx.dra_claims(&t).await;
        let request = Request::Allocation {
            api_claims: claims.arg(),
        };
        let probe = cx.probe_report(Self::NAME, &t, request, pick!(Allocation));
        let (api, probe) = tokio::select! {
            r = async { tokio::join!(api, probe) } => r,
            // The probe also sees the token and deletes its pod; the API requests are simply dropped.
            _ = cx.cancel.cancelled() => return Err(ToolError::Cancelled),
        };
        if cx.cancel.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let api = api?;
        let (run, report, probe_error) = match probe {
            Ok((r, run)) => (Some(run), Some(r), None),
            Err(e) => (None, None, Some(e.to_string())),
        };
        let exact = report.as_ref().is_some_and(|r| r.exact);
        let why = match (&report, &probe_error) {
            (_, Some(e)) => Some(format!("probe failed: {e}")),
            (Some(r), None) if !r.exact => Some(
                r.why
                    .clone()
                    .unwrap_or_else(|| "the probe could not ask the kubelet".into()),
            ),
            _ => None,
        };
        let has_api = api.is_some();
        let (n, pods) = match api {
            Some((n, pods)) => (Some(n), pods),
            None => (None, Vec::new()),
        };
        let mut requested_by_resource = BTreeMap::new();
        for p in &pods {
            for c in &p.containers {
                for (k, v) in &c.requests {
                    *requested_by_resource.entry(k.clone()).or_insert(0) += v;
                }
            }
        }
        // Without an API server there is nothing to join: the report's own pods are the whole answer.
        let (assignment, join_findings) = match report.as_ref().filter(|r| r.exact && has_api) {
            Some(r) => {
                let api_pods: Vec<ApiPod> = pods.iter().map(api_pod_of).collect();
                let j = gpu_diag::attribution::join::join_allocation(r, &api_pods);
                (j.pods, j.findings)
            }
            None => (Vec::new(), Vec::new()),
        };
        Ok(PodAllocation {
            node: t.node_name,
            context: t.context,
            exact,
            why,
            gpu_capacity: n.as_ref().map(|n| n.gpu_capacity),
            gpu_allocatable: n.as_ref().map(|n| n.gpu_allocatable),
            gpu_allocated: n.as_ref().map(|n| n.gpu_allocated),
            requested_by_resource,
            pods,
            api_why: cx.is_local().then(|| {
                "local mode: no API server, so pods' requests are not known; the kubelet's view is \
                 shown alone"
                    .to_string()
            }),
            claims_why: claims.why_not(),
            assignment,
            join_findings,
            run,
            report,
        })
    }

    fn render(p: &Self::Output) -> String {
        let mut out = String::new();
        let _ = write!(out, "GPU pods on node {}", p.node);
        if let Some(c) = &p.context {
            let _ = write!(out, " (context {c})");
        }
        // The node's `nvidia.com/gpu` counts are the device plugin's; GPUs held through DRA claims are
        // the kubelet's to tell.
        let claimed: std::collections::BTreeSet<u32> = p
            .report
            .iter()
            .flat_map(|r| &r.pods)
            .flat_map(|pod| &pod.containers)
            .flat_map(|c| &c.devices)
            .filter(|d| d.claim.is_some())
            .filter_map(|d| d.gpu_index)
            .collect();
        let dra = if claimed.is_empty() {
            String::new()
        } else {
            format!(" (device plugin); {} through DRA claims", claimed.len())
        };
        match (p.gpu_capacity, p.gpu_allocatable, p.gpu_allocated) {
            (Some(c), Some(a), Some(u)) => {
                let _ = writeln!(out, ": capacity {c}, allocatable {a}, allocated {u}{dra}");
            }
            _ if !dra.is_empty() => {
                let _ = writeln!(out, ": {} GPU(s) through DRA claims", claimed.len());
            }
            _ => out.push('\n'),
        }
        if let Some(src) = p.run.as_ref().and_then(|r| r.probe.as_ref()) {
            let _ = writeln!(out, "source: {}", src.source);
        }
        if p.exact {
            out.push_str("assignment: exact (the kubelet's PodResources API)\n");
        } else {
            let _ = writeln!(
                out,
                "assignment: NOT exact: {}",
                p.why.as_deref().unwrap_or("unknown")
            );
        }
        if let Some(w) = &p.api_why {
            let _ = writeln!(out, "requests: {w}");
        }
        if let Some(n) = p
            .report
            .as_ref()
            .and_then(|r| r.dra.as_ref())
            .and_then(|d| d.claims_from_api_server)
        {
            let _ = writeln!(
                out,
                "DRA claims: the kubelet reports none; the API server's {n} ResourceClaim(s) allocated on \
                 this node name the pods (not their containers)"
            );
        }
        if let Some(w) = &p.claims_why {
            let _ = writeln!(out, "DRA claims: {w}");
        }
        let probe_findings = p.report.as_ref().map_or(&[][..], |r| &r.findings[..]);
        render_findings(p.join_findings.clone(), probe_findings, &mut out);
        let kubelet_alone = p.exact && p.api_why.is_some();
        if kubelet_alone {
            let pods = p
                .report
                .as_ref()
                .map(|r| r.pods.as_slice())
                .unwrap_or_default();
            if pods.is_empty() {
                out.push_str("the kubelet assigned no GPU to any pod on this node\n");
            } else {
                out.push_str("pods (the kubelet's assignment):\n");
            }
            for pod in pods {
                let _ = writeln!(out, "- {}/{}", pod.namespace, pod.name);
                for c in &pod.containers {
                    if c.name.is_empty() {
                        out.push_str("    (a container; the API server names the pod's claim):\n");
                    } else {
                        let _ = writeln!(out, "    {}:", c.name);
                    }
                    for d in &c.devices {
                        let _ = writeln!(out, "      {}", device_line(d));
                    }
                }
            }
        } else if p.exact {
            if p.assignment.is_empty() {
                out.push_str("no pod holds or requests GPUs on this node\n");
            } else {
                out.push_str("pods (GPU requests per the API server, devices per the kubelet):\n");
            }
            for a in &p.assignment {
                let seen = match a.seen_by {
                    SeenBy::Both => "",
                    SeenBy::ApiOnly => " [API server only]",
                    SeenBy::KubeletOnly => " [kubelet only]",
                };
                let phase = a
                    .phase
                    .as_deref()
                    .map(|ph| format!(" ({ph})"))
                    .unwrap_or_default();
                let _ = writeln!(out, "- {}/{}{phase}{seen}", a.namespace, a.name);
                if let Some(n) = &a.note {
                    let _ = writeln!(out, "    note: {n}");
                }
                for c in &a.containers {
                    let req: Vec<String> =
                        c.requests.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    let mut req = if req.is_empty() {
                        "no GPU request".to_string()
                    } else {
                        format!("requests {}", req.join(", "))
                    };
                    if !c.claims.is_empty() {
                        let _ = write!(req, "; claims {}", c.claims.join(", "));
                        if c.requests.is_empty() {
                            req = format!("claims {}", c.claims.join(", "));
                        }
                    }
                    let _ = writeln!(out, "    {}: {req}", c.name);
                    for d in &c.devices {
                        let _ = writeln!(out, "      {}", device_line(d));
                    }
                }
            }
        } else {
            if p.api_why.is_none() {
                if p.pods.is_empty() {
                    out.push_str("no pod requests GPUs on this node\n");
                } else {
                    out.push_str("pods (GPU requests per the API server):\n");
                }
            }
            for pod in &p.pods {
                let _ = writeln!(out, "- {}/{} ({})", pod.namespace, pod.name, pod.phase);
                for c in &pod.containers {
                    let req: Vec<String> = c
                        .requests
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .chain(c.claims.iter().map(|n| format!("claim {n}")))
                        .collect();
                    let _ = writeln!(out, "    {}: {}", c.name, req.join(", "));
                }
            }
        }
        if let Some(partial) = p
            .report
            .as_ref()
            .and_then(|r| r.dra.as_ref())
            .and_then(|d| d.partial.as_ref())
        {
            let _ = writeln!(out, "DRA: {partial}");
        }
        if let Some(r) = &p.report
            && !r.gpus.is_empty()
        {
            out.push_str("GPUs:\n");
            for g in &r.gpus {
                let holders: Vec<String> = g
                    .allocated_to
                    .iter()
                    .map(|h| match &h.claim {
                        Some(c) => format!("{}/{} ({}, claim {c})", h.namespace, h.pod, h.container),
                        None => format!("{}/{} ({})", h.namespace, h.pod, h.container),
                    })
                    .chain(
                        g.unreported_claims
                            .iter()
                            .map(|u| format!("DRA claim {u} (pod not reported by the kubelet)")),
                    )
                    .collect();
                let held = if !p.exact {
                    String::new()
                } else if holders.is_empty() {
                    " assigned to nobody".to_string()
                } else {
                    format!(" assigned to {}", holders.join(", "))
                };
                let _ = write!(out, "- GPU {}{held}", g.gpu.index);
                match &g.processes {
                    Reading::Ok(ps) if ps.is_empty() => out.push_str("; no process\n"),
                    Reading::Ok(ps) => {
                        let list: Vec<String> = ps.iter().map(attributed).collect();
                        let _ = writeln!(out, "; processes: {}", list.join("; "));
                    }
                    Reading::Err(e) => {
                        let _ = writeln!(
                            out,
                            "; processes: <{}>",
                            serde_json::to_value(e.error)
                                .ok()
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default()
                        );
                    }
                }
            }
        }
        out
    }
}

/// The request view's pod in the join's shape (no container ids: the allocation join matches by name).
fn api_pod_of(p: &PodGpuUse) -> ApiPod {
    ApiPod {
        namespace: p.namespace.clone(),
        name: p.name.clone(),
        uid: p.uid.clone(),
        mirror_uid: None,
        phase: Some(p.phase.clone()),
        containers: p
            .containers
            .iter()
            .map(|c| ApiContainer {
                name: c.name.clone(),
                container_id: None,
                gpu_requests: c.requests.clone(),
                claims: c.claims.clone(),
            })
            .collect(),
    }
}

/// `GPU-… -> GPU 1 (GPU-…)`, `MIG-… -> GPU 0 MIG 2 (gi 3, ci 0)`, or why it matches no GPU.
fn device_line(d: &AllocatedDevice) -> String {
    let mut s = format!("{} {}", d.resource_name, d.device_id);
    match (d.gpu_index, &d.error) {
        (Some(i), _) => {
            let _ = write!(s, " -> GPU {i}");
            if let Some(m) = &d.mig {
                let idx = m.index.map(|x| format!(" {x}")).unwrap_or_default();
                let _ = write!(s, " MIG{idx}");
                if let (Some(gi), Some(ci)) = (m.gpu_instance_id, m.compute_instance_id) {
                    let _ = write!(s, " (gi {gi}, ci {ci})");
                } else if let Some(gi) = m.gpu_instance_id {
                    let _ = write!(s, " (gi {gi})");
                }
                if let Some(u) = &m.uuid
                    && u != &d.device_id
                {
                    let _ = write!(s, " {u}");
                }
            }
            if let Some(u) = &d.gpu_uuid
                && u != &d.device_id
            {
                let _ = write!(s, " [{u}]");
            }
            if let Some(r) = d.replica {
                let _ = write!(s, ", shared replica {r}");
            }
            if let Some(c) = &d.claim {
                let _ = write!(s, " (claim {}/{})", c.namespace, c.name);
            }
        }
        (None, Some(e)) => {
            let _ = write!(s, " -> no GPU here: {e}");
        }
        (None, None) => s.push_str(" -> not located"),
    }
    s
}

fn attributed(p: &AttributedProcess) -> String {
    let mut s = format!("PID {}", p.pid);
    if let Some(n) = &p.name {
        let _ = write!(s, " ({n})");
    }
    if let Some(b) = p.used_memory_bytes {
        let _ = write!(s, " {} MiB", gpu_diag::analysis::mib(b));
    }
    match (&p.namespace, &p.pod) {
        (Some(ns), Some(pod)) => {
            let _ = write!(s, " in {ns}/{pod}");
        }
        _ => {
            if let Some(u) = p.cgroup.ok().and_then(|c| c.pod_uid.as_ref()) {
                let _ = write!(s, " in pod UID {u}");
            }
        }
    }
    let status = serde_json::to_value(p.status)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = write!(s, " [{status}]");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact cluster view: the zombie scenario's kubelet assignment joined with an API server that
    /// knows train-0 (Running, 1 GPU) and a pending pod, but not notebook-bob.
    #[test]
    fn exact_allocation_shows_devices_per_pod_and_both_sides() {
        use gpu_diag::attribution::join::{ApiContainer, ApiPod, join_allocation};
        use gpu_diag::contract::Report;
        let sc = gpu_diag::scenarios::find("h100-zombie-process").expect("scenario");
        let facts = gpu_diag::scenarios::parse(&sc.json()).unwrap();
        let Report::Allocation(report) =
            gpu_diag::command::Command::Allocation.analyze(&facts, &Default::default())
        else {
            panic!("not an allocation report")
        };
        let gpu = |n| std::collections::BTreeMap::from([("nvidia.com/gpu".to_string(), n)]);
        let api = [
            ApiPod {
                namespace: "ml".into(),
                name: "train-0".into(),
                uid: "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e".into(),
                phase: Some("Running".into()),
                containers: vec![ApiContainer {
                    name: "trainer".into(),
                    gpu_requests: gpu(1),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ApiPod {
                namespace: "ml".into(),
                name: "train-1".into(),
                uid: "u".into(),
                phase: Some("Pending".into()),
                containers: vec![ApiContainer {
                    name: "trainer".into(),
                    gpu_requests: gpu(2),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ];
        let j = join_allocation(&report, &api);
        let out = PodAllocation {
            node: "gpu-node-8".into(),
            context: None,
            exact: true,
            why: None,
            gpu_capacity: Some(2),
            gpu_allocatable: Some(2),
            gpu_allocated: Some(3),
            requested_by_resource: gpu(3),
            pods: vec![],
            api_why: None,
            claims_why: None,
            assignment: j.pods,
            join_findings: j.findings,
            run: None,
            report: Some(report),
        };
        let text = GetPodGpuAllocation::render(&out);
        for want in [
            "GPU pods on node gpu-node-8: capacity 2, allocatable 2, allocated 3\n",
            "assignment: exact (the kubelet's PodResources API)\n",
            "- [WARNING] GPU 0 alloc.assigned_not_in_api: The kubelet still assigns 1 GPU device(s) to research/notebook-bob",
            "pods (GPU requests per the API server, devices per the kubelet):\n- ml/train-0 (Running)\n    trainer: requests nvidia.com/gpu=1\n      nvidia.com/gpu GPU-0217384d-3e91-e914-50cc-8f24b1e8532c -> GPU 1\n",
            "- ml/train-1 (Pending) [API server only]\n    note: the pod is not running yet",
            "- research/notebook-bob [kubelet only]\n",
            "- GPU 1 assigned to ml/train-0 (trainer); processes: PID 51022 (python3) 57579 MiB in ml/train-0 [allocated]\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
