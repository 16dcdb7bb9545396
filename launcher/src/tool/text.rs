//! Building blocks of the text renderings of tool results (each tool's own rendering is in its file): what a person or a model reads first. They show the probe's verdict and
//! findings (most severe first, with evidence and action), then the rest of the report compactly.
//!
//! Report shapes grow as the probe learns more, so the body is rendered from the serialized report
//! generically: new fields appear without a change here, and nothing is re-interpreted. No timings or
//! clock values are printed, so renderings are stable for the same facts.

use std::fmt::Write;

use gpu_diag::analysis::inventory::InventoryReport;
use gpu_diag::finding::{Finding, Severity, Verdict};
use serde::Serialize;
use serde_json::Value;

use super::{NodeReport, ProbeRun};

const MAX_ITEMS: usize = 64;
const MAX_SCALARS: usize = 32;
const LINE: usize = 110;

// --- building blocks -------------------------------------------------------------------------------

pub fn node_report<R: Serialize>(title: &str, r: &NodeReport<R>) -> String {
    let report = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let mut out = header(title, &r.node, r.context.as_deref(), &r.run);
    report_body(&report, &mut out);
    out
}

pub fn header(title: &str, node: &str, context: Option<&str>, run: &ProbeRun) -> String {
    let mut out = format!("{title} of node {node}");
    if let Some(c) = context {
        let _ = write!(out, " (context {c})");
    }
    if let Some(p) = &run.probe {
        let _ = write!(out, " · source {}", p.source);
    }
    out.push('\n');
    if let Some(u) = &run.report_uri {
        let _ = writeln!(out, "full report: {u} (MCP resource)");
    }
    out
}

/// Verdict, findings, then everything else in the report.
pub fn report_body(report: &Value, out: &mut String) {
    report_body_with(report, &[], "", out);
}

/// [`report_body`] with findings from outside the report (a join's) and a section between the findings
/// and the details.
pub fn report_body_with(report: &Value, extra: &[Finding], middle: &str, out: &mut String) {
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
pub fn render_findings(mut findings: Vec<Finding>, extra: &[Finding], out: &mut String) {
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

pub fn sev_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "info",
    }
}

pub fn verdict_label(v: Verdict) -> &'static str {
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
pub fn render_value(v: &Value, indent: usize, out: &mut String) {
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

/// The NIC section out of a topology report (top level or under `topology`), rendered compactly: it
/// then stays out of the generic details.
pub fn take_nics(report: &mut Value) -> String {
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
            super::nic_text::render(&nics, &mut out);
            out
        }
        Err(_) => {
            obj.insert("nics".into(), n);
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
