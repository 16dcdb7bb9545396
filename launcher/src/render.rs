//! Text renderings of tool results: what a person or a model reads first. They show the probe's verdict and
//! findings (most severe first, with evidence and action), then the rest of the report compactly.
//!
//! Report shapes grow as the probe learns more, so the body is rendered from the serialized report
//! generically: new fields appear without a change here, and nothing is re-interpreted. No timings or
//! clock values are printed, so renderings are stable for the same facts.

use std::fmt::Write;

use gpu_diag::analysis::inventory::InventoryReport;
use gpu_diag::attribution::join::{ProcessOwner, ProcessOwnerKind, SeenBy};
use gpu_diag::attribution::{AllocatedDevice, AttributedProcess};
use gpu_diag::facts::Reading;
use gpu_diag::finding::{Finding, Severity, Verdict};
use serde::Serialize;
use serde_json::Value;

use crate::scan::{ScanOutput, ScanStatus};
use crate::server::ProbeRun;
use crate::tools::{DescribeOutput, NodeList, NodeReport, PodAllocation, ProcessesOutput};

const MAX_ITEMS: usize = 64;
const MAX_SCALARS: usize = 32;
const LINE: usize = 110;

// --- per-tool entry points ---------------------------------------------------------------------------

pub fn inventory<R: Serialize>(r: &NodeReport<R>) -> String {
    node_report("GPU inventory", r)
}
pub fn telemetry<R: Serialize>(r: &NodeReport<R>) -> String {
    node_report("GPU telemetry", r)
}
pub fn topology<R: Serialize>(r: &NodeReport<R>) -> String {
    let mut report = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let mut out = header("GPU topology", &r.node, r.context.as_deref(), &r.run);
    let nics = take_nics(&mut report);
    report_body_with(&report, &[], &nics, &mut out);
    out
}

/// The NIC section out of a topology report (top level or under `topology`), rendered compactly: it
/// then stays out of the generic details.
fn take_nics(report: &mut Value) -> String {
    let holder = if report.get("nics").is_some() {
        Some(report)
    } else {
        report.get_mut("topology")
    };
    let Some(obj) = holder.and_then(Value::as_object_mut) else {
        return String::new();
    };
    let Some(n) = obj.remove("nics") else {
        return String::new();
    };
    match serde_json::from_value::<gpu_diag::analysis::nic::NicReport>(n.clone()) {
        Ok(nics) => {
            let mut out = String::new();
            crate::nic_text::render(&nics, &mut out);
            out
        }
        Err(_) => {
            obj.insert("nics".into(), n);
            String::new()
        }
    }
}
pub fn xid<R: Serialize>(r: &NodeReport<R>) -> String {
    node_report("XID analysis", r)
}
pub fn ecc<R: Serialize>(r: &NodeReport<R>) -> String {
    node_report("ECC snapshot", r)
}
pub fn health<R: Serialize>(r: &NodeReport<R>) -> String {
    node_report("GPU health", r)
}
pub fn processes(p: &ProcessesOutput) -> String {
    let report = serde_json::to_value(&p.report).unwrap_or(Value::Null);
    let mut out = header("GPU processes", &p.node, p.context.as_deref(), &p.run);
    let mut owners = String::new();
    if !p.owners.is_empty() {
        match (&p.names_why, p.pods_listed) {
            (Some(why), _) => {
                let _ = writeln!(owners, "owners (pods not named: {why}):");
            }
            (None, Some(n)) => {
                let _ = writeln!(
                    owners,
                    "owners (pods named from the API server, {n} pod(s) on the node):"
                );
            }
            (None, None) => owners.push_str("owners:\n"),
        }
        for o in &p.owners {
            owners.push_str(&owner_line(o));
        }
    }
    report_body_with(&report, &p.join_findings, &owners, &mut out);
    out
}

fn owner_line(o: &ProcessOwner) -> String {
    let mut who = format!("- GPU {} PID {}", o.gpu, o.pid);
    if let Some(n) = &o.process_name {
        let _ = write!(who, " ({n})");
    }
    if let Some(m) = o.used_memory_mib {
        let _ = write!(who, " {m} MiB");
    }
    let uid = o.pod_uid.as_deref().unwrap_or_default();
    let owner = match o.owner {
        ProcessOwnerKind::Pod => {
            let mut s = format!(
                "{}/{}",
                o.namespace.as_deref().unwrap_or_default(),
                o.pod.as_deref().unwrap_or_default()
            );
            match &o.container {
                Some(c) => {
                    let _ = write!(s, ", container {c}");
                }
                None => s.push_str(", container not named"),
            }
            if let Some(ph) = &o.pod_phase {
                let _ = write!(s, " ({ph})");
            }
            s
        }
        ProcessOwnerKind::PodNotInApi => {
            format!("pod UID {uid}: NOT in the API server on this node")
        }
        ProcessOwnerKind::PodUnnamed => format!("pod UID {uid}"),
        ProcessOwnerKind::OutsidePod => "outside any pod".into(),
        ProcessOwnerKind::Unknown => "unknown (no /proc entry)".into(),
    };
    format!("{who} -> {owner}\n")
}

pub fn describe(d: &DescribeOutput) -> String {
    let mut report = serde_json::to_value(&d.report).unwrap_or(Value::Null);
    let mut out = header("Node description", &d.node, d.context.as_deref(), &d.run);
    let nics = take_nics(&mut report);
    report_body_with(&report, &[], &nics, &mut out);
    match (&d.kubernetes, &d.kubernetes_error) {
        (Some(k), _) => {
            out.push_str("\nKubernetes:\n");
            let v = serde_json::to_value(k).unwrap_or(Value::Null);
            render_value(&v, 1, &mut out);
        }
        (None, Some(e)) => {
            let _ = writeln!(out, "\nKubernetes: could not read the node: {e}");
        }
        (None, None) => {}
    }
    out
}

pub fn node_list(l: &NodeList) -> String {
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

pub fn pod_allocation(p: &PodAllocation) -> String {
    let mut out = String::new();
    let _ = write!(out, "GPU pods on node {}", p.node);
    if let Some(c) = &p.context {
        let _ = write!(out, " (context {c})");
    }
    match (p.gpu_capacity, p.gpu_allocatable, p.gpu_allocated) {
        (Some(c), Some(a), Some(u)) => {
            let _ = writeln!(out, ": capacity {c}, allocatable {a}, allocated {u}");
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
                let _ = writeln!(out, "    {}:", c.name);
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
                let req: Vec<String> = c.requests.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let req = if req.is_empty() {
                    "no GPU request".to_string()
                } else {
                    format!("requests {}", req.join(", "))
                };
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
                let req: Vec<String> = c.requests.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(out, "    {}: {}", c.name, req.join(", "));
            }
        }
    }
    if let Some(r) = &p.report
        && !r.gpus.is_empty()
    {
        out.push_str("GPUs:\n");
        for g in &r.gpus {
            let holders: Vec<String> = g
                .allocated_to
                .iter()
                .map(|h| format!("{}/{} ({})", h.namespace, h.pod, h.container))
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
        let _ = write!(s, " {} MiB", b / (1024 * 1024));
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

pub fn scan(s: &ScanOutput) -> String {
    let mut out = String::new();
    let check = serde_json::to_value(s.check)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Scan ({check}) of {} node(s): {} answered, {} failed; {} need attention",
        s.nodes_total,
        s.nodes_ok,
        s.nodes_failed,
        s.needs_attention.len()
    );
    for a in &s.needs_attention {
        let sev = a.worst_severity.map(sev_label).unwrap_or("FAILED");
        let sev = if s
            .results
            .iter()
            .any(|r| r.node == a.node && r.status == ScanStatus::Failed)
        {
            "FAILED"
        } else {
            sev
        };
        let _ = writeln!(out, "{}. {} [{}] {}", a.rank, a.node, sev, a.reason);
    }
    let fine: Vec<&str> = s
        .results
        .iter()
        .filter(|r| !s.needs_attention.iter().any(|a| a.node == r.node))
        .map(|r| r.node.as_str())
        .collect();
    if !fine.is_empty() {
        let _ = writeln!(out, "no attention needed: {}", fine.join(", "));
    }
    out
}

// --- building blocks -------------------------------------------------------------------------------

fn node_report<R: Serialize>(title: &str, r: &NodeReport<R>) -> String {
    let report = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let mut out = header(title, &r.node, r.context.as_deref(), &r.run);
    report_body(&report, &mut out);
    out
}

fn header(title: &str, node: &str, context: Option<&str>, run: &ProbeRun) -> String {
    let mut out = format!("{title} of node {node}");
    if let Some(c) = context {
        let _ = write!(out, " (context {c})");
    }
    if let Some(p) = &run.probe {
        let _ = write!(out, " · source {}", p.source);
    }
    out.push('\n');
    out
}

/// Verdict, findings, then everything else in the report.
fn report_body(report: &Value, out: &mut String) {
    report_body_with(report, &[], "", out);
}

/// [`report_body`] with findings from outside the report (a join's) and a section between the findings
/// and the details.
fn report_body_with(report: &Value, extra: &[Finding], middle: &str, out: &mut String) {
    if let Some(v) = verdict_in(report) {
        let _ = writeln!(out, "verdict: {}", verdict_label(v));
    }
    render_findings(findings_in(report), extra, out);
    out.push_str(middle);
    let mut body = String::new();
    render_value(&strip(report), 0, &mut body);
    if !body.trim().is_empty() {
        out.push_str("details:\n");
        for line in body.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
}

/// `findings` plus those of `extra` not already there, most severe first.
fn render_findings(mut findings: Vec<Finding>, extra: &[Finding], out: &mut String) {
    for f in extra {
        if !findings.contains(f) {
            findings.push(f.clone());
        }
    }
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.gpu.cmp(&b.gpu)));
    if findings.is_empty() {
        out.push_str("findings: none\n");
    } else {
        let _ = writeln!(out, "findings ({}):", findings.len());
        for f in &findings {
            render_finding(f, out);
        }
    }
}

fn render_finding(f: &Finding, out: &mut String) {
    let gpu = match (f.gpu, &f.gpu_uuid) {
        (Some(i), _) => format!("GPU {i} "),
        (None, Some(u)) => format!("{u} "),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "- [{}] {gpu}{}: {}",
        sev_label(f.severity),
        f.code,
        f.summary
    );
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "    evidence: {}", f.evidence.join("; "));
    }
    let kind = serde_json::to_value(f.action.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let _ = writeln!(out, "    action ({kind}): {}", f.action.detail);
}

fn sev_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "info",
    }
}

fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Healthy => "healthy",
        Verdict::Unknown => "unknown (some facts could not be read)",
        Verdict::Degraded => "DEGRADED",
        Verdict::Unhealthy => "UNHEALTHY",
    }
}

/// Every finding anywhere in a serialized report (reports nest them per GPU or per section), deduplicated.
pub fn findings_in(v: &Value) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    collect_findings(v, &mut out);
    out
}

fn collect_findings(v: &Value, out: &mut Vec<Finding>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("code")
                && m.contains_key("severity")
                && m.contains_key("action")
                && let Ok(f) = serde_json::from_value::<Finding>(v.clone())
            {
                if !out.contains(&f) {
                    out.push(f);
                }
                return;
            }
            for x in m.values() {
                collect_findings(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_findings(x, out)),
        _ => {}
    }
}

/// The node verdict of a report: a top-level `verdict` (or `node_verdict`), or one level down
/// (`{"node": {"verdict": ..}}`, `{"health": {"verdict": ..}}`).
pub fn verdict_in(v: &Value) -> Option<Verdict> {
    let direct = |o: &serde_json::Map<String, Value>| {
        ["verdict", "node_verdict"]
            .iter()
            .find_map(|k| o.get(*k))
            .and_then(|x| serde_json::from_value::<Verdict>(x.clone()).ok())
    };
    let o = v.as_object()?;
    direct(o).or_else(|| {
        ["node", "health", "summary"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|x| x.as_object()).and_then(direct))
    })
}

/// Number of GPUs in an inventory report (the length of its GPU list), when it has one.
pub fn gpu_count(inv: &InventoryReport) -> Option<u64> {
    let v = serde_json::to_value(inv).ok()?;
    let o = v.as_object()?;
    if let Some(a) = o.get("gpus").and_then(|g| g.as_array()) {
        return Some(a.len() as u64);
    }
    ["gpu_count", "device_count"]
        .iter()
        .find_map(|k| o.get(*k).and_then(|x| x.as_u64()))
}

/// The report without what the header already showed (findings, the top-level verdict).
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, x)| {
                    !(k.as_str() == "findings"
                        || (k.as_str() == "verdict" && x.is_string())
                        || k.as_str() == "collected_at_unix")
                })
                .map(|(k, x)| (k.clone(), strip(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty() || o.values().all(is_empty),
        _ => false,
    }
}

/// A field that failed to read: `{"error": "not_supported"}` → `<not_supported>`.
fn reading_error(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let kind = o.get("error")?.as_str()?;
    if o.keys().all(|k| k == "error" || k == "message") {
        Some(match o.get("message").and_then(|m| m.as_str()) {
            Some(m) => format!("<{kind}: {m}>"),
            None => format!("<{kind}>"),
        })
    } else {
        None
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(a) if a.iter().all(|x| scalar(x).is_some()) && !a.is_empty() => {
            let items: Vec<String> = a.iter().take(MAX_SCALARS).filter_map(scalar).collect();
            let more = if a.len() > MAX_SCALARS {
                format!(", … {} more", a.len() - MAX_SCALARS)
            } else {
                String::new()
            };
            Some(format!("[{}{more}]", items.join(", ")))
        }
        other => reading_error(other),
    }
}

/// Compact generic rendering: an object's scalar fields on wrapped `key=value` lines, then its nested
/// objects and lists, indented.
fn render_value(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(m) => {
            let mut line = String::new();
            for (k, x) in m {
                if is_empty(x) {
                    continue;
                }
                if let Some(s) = scalar(x) {
                    let item = format!("{k}={s}");
                    if !line.is_empty() && pad.len() + line.len() + item.len() + 2 > LINE {
                        let _ = writeln!(out, "{pad}{line}");
                        line.clear();
                    }
                    if !line.is_empty() {
                        line.push_str(", ");
                    }
                    line.push_str(&item);
                }
            }
            if !line.is_empty() {
                let _ = writeln!(out, "{pad}{line}");
            }
            for (k, x) in m {
                if is_empty(x) || scalar(x).is_some() {
                    continue;
                }
                let _ = writeln!(out, "{pad}{k}:");
                render_value(x, indent + 1, out);
            }
        }
        Value::Array(a) => {
            for x in a.iter().take(MAX_ITEMS) {
                if let Some(s) = scalar(x) {
                    let _ = writeln!(out, "{pad}- {s}");
                    continue;
                }
                let mut inner = String::new();
                render_value(x, indent + 1, &mut inner);
                // Put the first line of each element on its bullet.
                let trimmed = inner.trim_start_matches(' ');
                if !trimmed.is_empty() {
                    let _ = write!(out, "{pad}- {trimmed}");
                }
            }
            if a.len() > MAX_ITEMS {
                let _ = writeln!(out, "{pad}… {} more", a.len() - MAX_ITEMS);
            }
        }
        other => {
            if let Some(s) = scalar(other) {
                let _ = writeln!(out, "{pad}{s}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The exact cluster view: the zombie scenario's kubelet assignment joined with an API server that
    /// knows train-0 (Running, 1 GPU) and a pending pod, but not notebook-bob.
    #[test]
    fn exact_allocation_shows_devices_per_pod_and_both_sides() {
        use gpu_diag::attribution::join::{ApiContainer, ApiPod, join_allocation};
        use gpu_diag::contract::Report;
        let sc = gpu_diag::scenarios::find("h100-zombie-process").expect("scenario");
        let facts = gpu_diag::scenarios::parse(sc.json).unwrap();
        let Report::Allocation(report) =
            gpu_diag::analyze(gpu_diag::Command::Allocation, &facts, &Default::default())
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
            assignment: j.pods,
            join_findings: j.findings,
            run: None,
            report: Some(report),
        };
        let text = pod_allocation(&out);
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

    #[test]
    fn generic_body_is_compact_and_shows_reading_errors() {
        let v = json!({"gpus": [
            {"index": 0, "name": "H100", "temperature_c": 41, "ecc": {"error": "not_supported"}},
            {"index": 1, "name": "H100", "temperature_c": {"error": "gpu_is_lost"}, "nvlink": [{"link": 0, "state": "up"}]}
        ], "empty": [], "none": null});
        let mut out = String::new();
        render_value(&v, 0, &mut out);
        assert_eq!(
            out,
            "gpus:\n  - ecc=<not_supported>, index=0, name=H100, temperature_c=41\n  - index=1, name=H100, temperature_c=<gpu_is_lost>\n    nvlink:\n      - link=0, state=up\n"
        );
    }

    #[test]
    fn findings_are_found_anywhere_and_deduplicated() {
        let f = json!({"code": "xid.79", "severity": "critical", "gpu": 3, "summary": "GPU fell off the bus",
                       "evidence": ["xid = 79"], "action": {"kind": "reboot_node", "detail": "drain and reboot"}});
        let v =
            json!({"gpus": [{"findings": [f.clone()]}], "findings": [f], "verdict": "unhealthy"});
        let found = findings_in(&v);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, "xid.79");
        assert_eq!(verdict_in(&v), Some(Verdict::Unhealthy));
        let mut out = String::new();
        report_body(&v, &mut out);
        assert!(out.starts_with("verdict: UNHEALTHY\nfindings (1):\n- [CRITICAL] GPU 3 xid.79: GPU fell off the bus\n    evidence: xid = 79\n    action (reboot_node): drain and reboot\n"), "{out}");
    }
}
