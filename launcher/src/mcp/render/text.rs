//! Building blocks of the text renderings of tool results (each tool's own rendering is in its file): what a person or a model reads first. They show the probe's verdict and
//! findings (most severe first, with evidence and action), then the rest of the report compactly.
//!
//! The verdict and findings come from the report itself ([`Judged`]); the details below them come from a
//! typed renderer where the report has one, else from the serialized report ([`serialized_details`]), so
//! nothing is re-interpreted. No timings or clock values are printed, so renderings are stable for the
//! same facts.

use std::fmt::Write;

use gpu_diag::finding::{Finding, Judged, Severity, Verdict};
use serde::Serialize;
use serde_json::Value;

use super::details::{self, Entry};
use crate::mcp::framework::{NodeReport, ProbeRun};

// --- building blocks -------------------------------------------------------------------------------

/// A node report's text: its header, verdict and findings, then the serialized report as details, edited
/// first (a tool folding what would repeat on every GPU into one line).
pub fn node_report_edited<R: Serialize + Judged>(
    title: &str,
    r: &NodeReport<R>,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut out = header(title, &r.node, r.context.as_deref(), &r.run);
    let mut v = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    edit(&mut v);
    report_body(&r.report, &details::from_json(&strip(&v)), &mut out);
    out
}

/// The details of a report without a typed renderer: the report serialized, without what the header
/// showed.
pub fn serialized_details(report: &impl Serialize) -> Entry {
    let v = serde_json::to_value(report).unwrap_or(Value::Null);
    details::from_json(&strip(&v))
}

pub fn header(title: &str, node: &str, context: Option<&str>, run: &ProbeRun) -> String {
    let mut out = format!("{title} of node {node}");
    if let Some(c) = context {
        let _ = write!(out, " (context {c})");
    }
    if let Some(p) = &run.probe {
        let _ = write!(out, " · source {}", p.source);
    }
    // An answer from a kept reading says how old it is, and how to get a fresh one.
    if run.reading_reused {
        let _ = write!(
            out,
            " · read {} s ago (kept from an earlier call; max_age_s 0 reads the node now)",
            run.reading_age_s.unwrap_or_default()
        );
    }
    out.push('\n');
    if let Some(why) = &run.read_afresh_because {
        let _ = writeln!(out, "read afresh, not from the node's kept reading: {why}");
    }
    if let Some(u) = &run.report_uri {
        let _ = writeln!(out, "full report: {u} (MCP resource)");
    }
    out
}

/// Verdict, findings, then everything else in the report (`details`).
pub fn report_body(report: &impl Judged, details: &Entry, out: &mut String) {
    report_body_with(report, details, &[], "", out);
}

/// [`report_body`] with findings from outside the report (a join's) and a section between the findings
/// and the details.
pub fn report_body_with(
    report: &impl Judged,
    details: &Entry,
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
    details::write_entry(details, 0, &mut body);
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
    let kind = details::serde_name(&f.action.kind);
    let _ = writeln!(out, "    action ({kind}): {}", f.action.detail);
}

pub fn sev_label(s: Severity) -> &'static str {
    s.label()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_and_findings_come_first_most_severe_first() {
        let s = gpu_diag::scenarios::find("dgx-h100-xid79").unwrap();
        let facts = gpu_diag::scenarios::parse(&s.json()).unwrap();
        let health = gpu_diag::analysis::health::analyze(&facts, &Default::default());
        let mut out = String::new();
        report_body(&health, &serialized_details(&health), &mut out);
        assert!(out.starts_with("verdict: UNHEALTHY\nfindings ("), "{out}");
        assert!(out.contains("- [CRITICAL] GPU 4 xid.79"), "{out}");
        // What the header showed is not repeated in the details.
        assert!(!out.contains("  findings:"), "{out}");
    }
}
