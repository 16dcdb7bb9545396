//! Building blocks of the text renderings of tool results (each tool's own rendering is in its file): what a person or a model reads first. They show the probe's verdict and
//! findings (most severe first, with evidence and action), then the rest of the report compactly.
//!
//! The verdict and findings come from the report itself ([`Judged`]); the rest of its shape grows as the
//! probe learns more, so the details are rendered from the serialized report generically: new fields
//! appear without a change here, and nothing is re-interpreted. No timings or
//! clock values are printed, so renderings are stable for the same facts.

use std::fmt::Write;

use gpu_diag::analysis::nic::NicReport;
use gpu_diag::finding::{Finding, Judged, Severity, Verdict};
use serde::Serialize;
use serde_json::Value;

use crate::mcp::framework::{NodeReport, ProbeRun};

const MAX_ITEMS: usize = 64;
const MAX_SCALARS: usize = 32;
const LINE: usize = 110;

// --- building blocks -------------------------------------------------------------------------------

pub fn node_report<R: Serialize + Judged>(title: &str, r: &NodeReport<R>) -> String {
    let details = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let mut out = header(title, &r.node, r.context.as_deref(), &r.run);
    report_body(&r.report, &details, &mut out);
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

/// Verdict, findings, then everything else in the report (`details`, the report serialized).
pub fn report_body(report: &impl Judged, details: &Value, out: &mut String) {
    report_body_with(report, details, &[], "", out);
}

/// [`report_body`] with findings from outside the report (a join's) and a section between the findings
/// and the details.
pub fn report_body_with(
    report: &impl Judged,
    details: &Value,
    extra: &[Finding],
    middle: &str,
    out: &mut String,
) {
    if let Some(v) = report.verdict() {
        let _ = writeln!(out, "verdict: {}", verdict_label(v));
    }
    let findings = report.findings().into_iter().cloned().collect();
    render_findings(findings, extra, out);
    out.push_str(middle);
    let mut body = String::new();
    render_value(&strip(details), 0, &mut body);
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

/// The NIC section of a topology report, rendered compactly (the caller leaves it out of the details).
pub fn nics_text(nics: Option<&NicReport>) -> String {
    let mut out = String::new();
    if let Some(n) = nics {
        super::nic::render(n, &mut out);
    }
    out
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
    fn verdict_and_findings_come_first_most_severe_first() {
        let s = gpu_diag::scenarios::find("dgx-h100-xid79").unwrap();
        let facts = gpu_diag::scenarios::parse(&s.json()).unwrap();
        let health = gpu_diag::analysis::health::analyze(&facts, &Default::default());
        let details = serde_json::to_value(&health).unwrap();
        let mut out = String::new();
        report_body(&health, &details, &mut out);
        assert!(out.starts_with("verdict: UNHEALTHY\nfindings ("), "{out}");
        assert!(out.contains("- [CRITICAL] GPU 4 xid.79"), "{out}");
        // What the header showed is not repeated in the details.
        assert!(!out.contains("  findings:"), "{out}");
    }
}
