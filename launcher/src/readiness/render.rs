//! The checklist as text, as `k8s-gpu-mcp check` prints it and `check_cluster` answers it.

use super::{CheckReport, Status};

/// The checklist as text: one line per check, the fix indented below failures and warnings.
pub fn render_text(r: &CheckReport) -> String {
    let mut out = format!(
        "k8s-gpu-mcp check: context {}, namespace {}, mode {}{}\n",
        r.context.as_deref().unwrap_or("(in-cluster)"),
        r.namespace,
        r.mode,
        r.user
            .as_deref()
            .map(|u| format!(", user {u}"))
            .unwrap_or_default()
    );
    for c in &r.checks {
        let mark = match c.status {
            Status::Ok => "[ok]  ",
            Status::Warn => "[warn]",
            Status::Fail => "[FAIL]",
        };
        out.push_str(&format!("{mark} {}: {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("       fix: {fix}\n"));
        }
    }
    let count = |s: Status| r.checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} checks: {} ok, {} warnings, {} failed\n",
        r.checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}
