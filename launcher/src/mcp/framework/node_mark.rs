//! The scheduler mark of `mark_gpu_node`, as the tools that set, clear or list it show it: the result and
//! audit line of a stored (or dry-run) mark, its rendering, and the compact flag `list_gpu_nodes` and
//! `scan_gpu_nodes` print.

use super::action::{OperatorOutput, headline};
use crate::cluster::{MarkResult, NodeMark};

/// A stored (or dry-run) mark's result and audit message: `message` and what changed (`mark_gpu_node`
/// and `clear_gpu_node_mark`).
pub fn judge_mark(message: &str) -> impl FnOnce(&MarkResult) -> (&'static str, String) + '_ {
    move |res| {
        let result = if res.dry_run { "dry_run" } else { "done" };
        let detail = if res.changed.is_empty() {
            format!("{message} (nothing to change)")
        } else {
            format!("{message} ({})", res.changed.join(", "))
        };
        (result, detail)
    }
}

/// The answer of `mark_gpu_node` and `clear_gpu_node_mark`: the headline, then the node's mark as it is now.
pub fn render_mark(o: &OperatorOutput<MarkResult>) -> String {
    let r = &o.report;
    let mut s = headline(o, false);
    let or_none = |x: &Option<String>| x.clone().unwrap_or_else(|| "none".into());
    s.push_str(&format!(
        "node {}{}: {}\n  taint {}; label {}; condition {}{}\n",
        r.node,
        if r.dry_run { " (dry run)" } else { "" },
        if r.changed.is_empty() {
            "nothing to change".to_string()
        } else {
            r.changed.join(", ")
        },
        or_none(&r.taint),
        or_none(&r.label),
        or_none(&r.condition),
        r.since
            .as_deref()
            .map(|t| format!(" since {t}"))
            .unwrap_or_default()
    ));
    s
}

/// `marked XidError79 since 2026-05-01T10:00:00Z` (the mark of `mark_gpu_node`), compactly.
pub fn mark_flag(m: &NodeMark) -> String {
    format!(
        "marked {}{}",
        m.reason,
        m.since
            .as_deref()
            .map(|t| format!(" since {t}"))
            .unwrap_or_default()
    )
}
