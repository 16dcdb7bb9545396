//! A node's faults as text: each incident once (its component, the fault, the one action, and its signals
//! in causal order), then the history in one line each, then the GPUs in one line. What an incident says is
//! not said again below it.

use std::fmt::Write;

use gpu_diag::analysis::health::HealthReport;
use gpu_diag::finding::{Finding, Incident, Incidents, Verdict};

use super::details;
use super::text::{sev_label, verdict_label};
use super::topology::gpu_set;

/// The incidents, worst first, and the history.
pub fn render(inc: &Incidents, out: &mut String) {
    if inc.incidents.is_empty() {
        out.push_str("incidents: none\n");
    } else {
        let _ = writeln!(out, "incidents ({}):", inc.incidents.len());
        for (n, i) in inc.incidents.iter().enumerate() {
            incident(n + 1, i, out);
        }
    }
    history(&inc.history, out);
}

fn incident(n: usize, i: &Incident, out: &mut String) {
    let since = i
        .first_seen
        .as_deref()
        .map_or(String::new(), |t| format!(" · since {t}"));
    let kind = details::serde_name(&i.action.kind);
    if i.signals.len() == 1 {
        // One signal: said as the finding it is, under the incident's code.
        let f = &i.signals[0];
        let code = if i.code == f.code {
            f.code.clone()
        } else {
            format!("{} ({})", i.code, f.code)
        };
        let _ = writeln!(
            out,
            "{n}. [{}] {code}: {}{since}",
            sev_label(i.severity),
            f.summary
        );
        if !f.evidence.is_empty() {
            let _ = writeln!(out, "   evidence: {}", f.evidence.join("; "));
        }
        let _ = writeln!(out, "   action ({kind}): {}", i.action.detail);
        return;
    }
    let _ = writeln!(
        out,
        "{n}. [{}] {}: {}: {}, one fault seen as {} signals{since}",
        sev_label(i.severity),
        i.code,
        i.component,
        i.title,
        i.signals.len()
    );
    let _ = writeln!(out, "   action ({kind}): {}", i.action.detail);
    let _ = writeln!(out, "   signals, in causal order:");
    for (k, s) in i.signals.iter().enumerate() {
        let _ = writeln!(
            out,
            "   - [{}] {}: {}",
            sev_label(s.severity),
            s.code,
            s.summary
        );
        // The first signal is what happened: its evidence is the incident's.
        if k == 0 && !s.evidence.is_empty() {
            let _ = writeln!(out, "     evidence: {}", s.evidence.join("; "));
        }
    }
}

fn history(h: &[Finding], out: &mut String) {
    if h.is_empty() {
        return;
    }
    let _ = writeln!(out, "history, informational or cleared ({}):", h.len());
    for f in h {
        let when = f
            .first_seen
            .as_deref()
            .map_or(String::new(), |t| format!("{t} "));
        let _ = writeln!(out, "- {when}{}: {}", f.code, f.summary);
    }
}

/// The GPUs in one line: how many answer, which are healthy, and how each other one stands; then what
/// could not be read.
pub fn gpus_line(h: &HealthReport, out: &mut String) {
    let enumerated = h
        .gpus_enumerated
        .ok()
        .map_or_else(|| "?".to_string(), u32::to_string);
    let _ = write!(
        out,
        "GPUs: {enumerated} enumerated, {} answering",
        h.gpus_answering
    );
    if let Some(want) = h.gpus_expected {
        let _ = write!(out, ", {want} expected");
    }
    // Alike GPUs in one entry: the same model and verdict.
    let mut by: Vec<(Verdict, String, Vec<u32>)> = Vec::new();
    for g in &h.gpus {
        let name = g.name.ok().cloned().unwrap_or_else(|| "?".into());
        match by
            .iter_mut()
            .find(|(v, n, _)| *v == g.verdict && *n == name)
        {
            Some((_, _, list)) => list.push(g.gpu.index),
            None => by.push((g.verdict, name, vec![g.gpu.index])),
        }
    }
    by.sort_by_key(|(v, _, _)| std::cmp::Reverse(*v));
    for (v, name, list) in by {
        let _ = write!(out, "; {} {name}: {}", gpu_set(&list), verdict_label(v));
    }
    out.push('\n');
    if let Some(imex) = &h.imex {
        imex_line(imex, out);
    }
    if !h.unreadable.is_empty() {
        let _ = writeln!(out, "unreadable: {}", h.unreadable.join("; "));
    }
}

/// `get_gpu_health`'s body: the verdict, the action, the incidents, the GPUs.
pub fn health_body(h: &HealthReport, out: &mut String) {
    verdict_and_incidents(h, out);
    gpus_line(h, out);
}

/// The verdict with its counts, the node's first action where several incidents compete, the incidents.
pub fn verdict_and_incidents(h: &HealthReport, out: &mut String) {
    // The summary's counts; its "most urgent" part is the first incident, listed below.
    let counts = h
        .summary
        .split(". Most urgent: ")
        .next()
        .unwrap_or(&h.summary);
    let _ = writeln!(out, "verdict: {} - {counts}", verdict_label(h.verdict));
    // With one incident its action is the node's; with several, the node's comes first.
    if h.action.kind != gpu_diag::finding::ActionKind::None && h.incidents.incidents.len() != 1 {
        let _ = writeln!(
            out,
            "first action ({}): {}",
            details::serde_name(&h.action.kind),
            h.action.detail
        );
    }
    render(&h.incidents, out);
}

/// The node's IMEX daemon in one line (only where one runs): its state and its domain's, or why they
/// could not be asked.
pub fn imex_line(imex: &gpu_diag::facts::ImexFacts, out: &mut String) {
    use gpu_diag::facts::Reading;
    let shown = |r: Result<String, &gpu_diag::facts::FieldError>| match r {
        Ok(s) => s,
        Err(e) => format!(
            "not read ({})",
            e.message
                .clone()
                .unwrap_or_else(|| details::serde_name(&e.error))
        ),
    };
    let daemon = shown(match &imex.daemon {
        Reading::Ok(s) => Ok(s.clone()),
        Reading::Err(e) => Err(e),
    });
    let domain = shown(match &imex.domain {
        Reading::Ok(d) => {
            let ready = d.nodes.iter().filter(|n| n.status == "READY").count();
            Ok(format!(
                "{}, {ready} of {} member(s) READY",
                d.status,
                d.nodes.len()
            ))
        }
        Reading::Err(e) => Err(e),
    });
    let _ = writeln!(
        out,
        "IMEX: daemon {daemon}; domain {domain} (command service {})",
        imex.command_service
    );
}
