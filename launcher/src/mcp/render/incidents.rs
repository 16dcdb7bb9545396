//! A node's faults as text: each incident once (its component, the fault, the one action, and its signals
//! in causal order), then the history in one line each, then the GPUs in one line. What an incident says is
//! not said again below it.

use std::fmt::Write;

use gpu_diag::analysis::health::HealthReport;
use gpu_diag::finding::{Finding, Incident, Incidents, Verdict};
use gpu_diag::incident::platform::clean;

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
        let ev = adding(&f.evidence, &[&f.summary, &i.action.detail], &[]);
        evidence("   ", &ev, FIRST_EVIDENCE_CHARS, out);
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
    // Each signal's evidence less what its own sentence or the incident's action already says (see
    // [`adding`]); the share below is of what is left to say.
    let evs: Vec<Vec<String>> = i
        .signals
        .iter()
        .map(|s| adding(&s.evidence, &[&s.summary, &i.title, &i.action.detail], &[]))
        .collect();
    // What an earlier signal showed of the same GPU is not shown again (two GPUs' equal readings are two
    // facts, and an item cut from a line was not said).
    let mut said: Vec<(Option<u32>, String)> = Vec::new();
    let later = evs.iter().skip(1).filter(|e| !e.is_empty()).count();
    let share = (LATER_EVIDENCE_CHARS / later.max(1)).clamp(LATER_MIN, LATER_MAX);
    // An AMD fault is seen twice per step (the RAS counter and the driver's line): its later sentences are
    // cut so that ten signals fit; NVIDIA's signals each say something the others do not, and stay whole.
    let twinned = i.signals.iter().any(|s| s.code.starts_with("amdgpu."))
        && i.signals.iter().any(|s| s.code.starts_with("amd."));
    // The header names the incident's GPU with its bus (`GPU 1 (0000:2a:00.0)`): its signals say just
    // `GPU 1`. A signal about another GPU keeps its whole name; the structured report keeps every sentence
    // whole.
    let named = i.gpu.and_then(|g| {
        let short = format!("GPU {g}");
        i.component
            .starts_with(&format!("{short} ("))
            .then_some((i.component.as_str(), short))
    });
    for (k, s) in i.signals.iter().enumerate() {
        // The first signal says the fault whole; a later one's sentence is cut to its head: an AMD fault is
        // seen twice per step (a counter and the driver's line), and ten whole sentences would not fit.
        let summary = if k == 0 || !twinned || i.signals.len() <= WHOLE_SUMMARIES_UP_TO {
            s.summary.clone()
        } else {
            let h = head(&s.summary, LATER_SUMMARY_CHARS);
            match s.gpu {
                // The cut must not lose which GPU the signal is about.
                Some(g) if !h.contains(&format!("GPU {g}")) => format!("GPU {g}: {h}"),
                _ => h,
            }
        };
        let summary = match &named {
            Some((full, short)) => summary.replace(full, short),
            None => summary,
        };
        let _ = writeln!(
            out,
            "   - [{}] {}: {}",
            sev_label(s.severity),
            s.code,
            summary
        );
        // Every signal's evidence: a later one (the remap failure after the Xid) says what the first does not.
        let max = if k == 0 { FIRST_EVIDENCE_CHARS } else { share };
        let same: Vec<String> = said
            .iter()
            .filter(|(g, _)| *g == s.gpu)
            .map(|(_, e)| e.clone())
            .collect();
        let ev: Vec<String> = evs[k]
            .iter()
            .filter(|e| !same.contains(e))
            .cloned()
            .collect();
        let shown = evidence("     ", &ev, max, out);
        said.extend(ev.into_iter().take(shown).map(|e| (s.gpu, e)));
    }
}

/// An AMD incident of at most this many signals says each whole.
const WHOLE_SUMMARIES_UP_TO: usize = 8;
/// Characters of a later signal's summary in a longer incident (the structured report has it whole).
const LATER_SUMMARY_CHARS: usize = 100;

/// `s` within `max` characters, cut at a word where one is near, with `…` where cut.
fn head(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max).collect();
    let at = cut.rfind(' ').filter(|&i| i > max / 2).unwrap_or(cut.len());
    format!("{}…", cut[..at].trim_end_matches([',', ';', ':', ' ']))
}

/// The evidence items that add to what the text already says: an item said by an earlier signal of the
/// same incident about the same GPU (AMD's RAS event state, seen by the counter and the driver's line
/// alike; `said` holds those) is left out, and
/// so is a `name = value` item (or several, joined by `, `) whose every value the signal's sentence or its
/// incident's action already says in so many words: `catalog immediate_action = WORKFLOW_XID_48,
/// investigatory_action = WORKFLOW_XID_48` under a sentence that cites `(WORKFLOW_XID_48)`. Only values
/// with a letter in them are matched (catalog cells, state words): a number may be in the sentence by
/// chance (`GPU 1`), so an item with a value, a source, a count or a time stays. The structured report
/// keeps every item.
fn adding(ev: &[String], text: &[&str], said: &[String]) -> Vec<String> {
    ev.iter()
        .filter(|item| !said.contains(item) && !restated(item, text))
        .cloned()
        .collect()
}

/// Whether `item` is `name = value[, name = value]…` with every value a word or phrase of `text`.
fn restated(item: &str, text: &[&str]) -> bool {
    let mut pairs = 0;
    for part in item.split(", ") {
        let Some((_, value)) = part.split_once(" = ") else {
            return false;
        };
        let value = value.trim();
        if !value.chars().any(char::is_alphabetic) || !text.iter().any(|t| has_phrase(t, value)) {
            return false;
        }
        pairs += 1;
    }
    pairs > 0
}

/// Whether `phrase` is in `text` on word boundaries (`IGNORE` is in `(catalog IGNORE)`, not in
/// `IGNORED`).
fn has_phrase(text: &str, phrase: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(phrase).any(|(at, _)| {
        !word(text[..at].chars().next_back()) && !word(text[at + phrase.len()..].chars().next())
    })
}

/// Characters of evidence shown for an incident's first signal (what happened), or its only one.
const FIRST_EVIDENCE_CHARS: usize = 1200;
/// Characters of evidence shared by an incident's later signals, each getting an equal part of at least
/// [`LATER_MIN`] and at most [`LATER_MAX`]: `get_gpu_health` stays within its 3 KiB on an incident of eight
/// signals. The structured report has every item whole.
const LATER_EVIDENCE_CHARS: usize = 480;
const LATER_MIN: usize = 60;
const LATER_MAX: usize = 240;
/// Characters of one evidence item (node text).
const ITEM_CHARS: usize = 300;

/// One signal's evidence on one line within `max` characters: whole items while they fit (control and
/// bidirectional characters removed, each cut at [`ITEM_CHARS`]), the first one cut to fit where none
/// does, and how many items were left out. Returns how many items it showed.
fn evidence(indent: &str, ev: &[String], max: usize, out: &mut String) -> usize {
    if ev.is_empty() {
        return 0;
    }
    let mut line = String::new();
    let mut shown = 0;
    for item in ev {
        let item = clean(item, ITEM_CHARS);
        let sep = if shown == 0 { "" } else { "; " };
        let have = line.chars().count();
        if have + sep.len() + item.chars().count() > max {
            if shown == 0 {
                line = clean(&item, max);
                shown = 1;
            }
            break;
        }
        line.push_str(sep);
        line.push_str(&item);
        shown += 1;
    }
    let _ = write!(out, "{indent}evidence: {line}");
    if ev.len() > shown {
        let _ = write!(out, " (+{} more)", ev.len() - shown);
    }
    out.push('\n');
    shown
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

/// The verdict with its counts, the node's first action where several incidents compete and it is not the
/// first incident's, the incidents.
pub fn verdict_and_incidents(h: &HealthReport, out: &mut String) {
    // The summary's counts; its "most urgent" part is the first incident, listed below.
    let counts = h
        .summary
        .split(". Most urgent: ")
        .next()
        .unwrap_or(&h.summary);
    let _ = writeln!(out, "verdict: {} - {counts}", verdict_label(h.verdict));
    // With one incident its action is the node's; with several, the node's comes first, unless it is the
    // first incident's, which says it just below.
    if h.action.kind != gpu_diag::finding::ActionKind::None
        && h.incidents.incidents.len() != 1
        && h.incidents.incidents.first().map(|i| &i.action) != Some(&h.action)
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use gpu_diag::finding::{Action, ActionKind, Severity};

    fn signal(code: &str, evidence: Vec<String>) -> Finding {
        Finding {
            code: code.into(),
            severity: Severity::Critical,
            gpu: Some(5),
            gpu_uuid: None,
            summary: format!("{code} on GPU 5"),
            evidence,
            action: Action {
                kind: ActionKind::Rma,
                detail: "rma".into(),
            },
            about: vec![],
            first_seen: None,
        }
    }

    /// Every signal's evidence is in the text, the later one's too; a hostile node's evidence (escape and
    /// bidi characters, long, many items) is one clean line, cut, and says how many items were left out.
    #[test]
    fn every_signal_says_its_evidence_bounded_and_clean() {
        let hostile: Vec<String> = std::iter::once("remapped_rows = failure true".to_string())
            .chain((0..50).map(|i| format!("\u{1b}[2J\u{202E}row {i} {}", "x".repeat(400))))
            .collect();
        let inc = Incidents {
            incidents: vec![Incident {
                code: "gpu.memory".into(),
                severity: Severity::Critical,
                gpu: Some(5),
                gpu_uuid: None,
                component: "GPU 5".into(),
                title: "row remap failed".into(),
                summary: String::new(),
                action: Action {
                    kind: ActionKind::Rma,
                    detail: "rma".into(),
                },
                first_seen: None,
                rule: None,
                signals: vec![
                    signal("xid.48", vec!["line 15: DBE".into()]),
                    signal("ecc.remap_failure", hostile),
                ],
            }],
            history: vec![],
        };
        let mut out = String::new();
        render(&inc, &mut out);
        assert!(out.contains("     evidence: line 15: DBE\n"), "{out}");
        let line = out
            .lines()
            .find(|l| l.contains("remapped_rows"))
            .unwrap_or_else(|| panic!("the later signal's evidence is gone: {out}"));
        assert!(line.ends_with(" (+50 more)"), "{line}");
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{202E}'),
            "{line}"
        );
        assert!(line.chars().count() <= 5 + 10 + LATER_MAX + 12, "{line}");
        assert!(out.len() < 1024, "{} bytes: {out}", out.len());
    }

    /// An item is left out only where the text says it: catalog cells the sentence cites (both), an item
    /// an earlier signal showed; a cell the sentence does not cite, a number, a longer line all stay.
    #[test]
    fn evidence_says_only_what_the_text_does_not() {
        let summary = "double-bit ECC error (WORKFLOW_XID_48): drain and reset; no action (catalog IGNORE) on GPU 1";
        let text = [summary];
        assert!(restated(
            "catalog immediate_action = WORKFLOW_XID_48, investigatory_action = WORKFLOW_XID_48",
            &text
        ));
        assert!(restated("catalog immediate_action = IGNORE", &text));
        // One cell the sentence does not say keeps the item whole.
        assert!(!restated(
            "catalog immediate_action = RESTART_APP, investigatory_action = IGNORE",
            &text
        ));
        // A word inside another word is not said.
        assert!(!restated("state = IGNOR", &text));
        assert!(!restated("state = ECC", &["no ECCs"]));
        // Numbers stay, even where the sentence happens to hold them.
        assert!(!restated("recovery_action = 1", &text));
        assert!(!restated("line 15: DBE, then WORKFLOW_XID_48", &text));
        let ev: Vec<String> = vec![
            "catalog immediate_action = IGNORE, investigatory_action = IGNORE".into(),
            "ras/event_state: poison 1".into(),
            "line 16: row remap".into(),
        ];
        assert_eq!(
            adding(&ev, &text, &["ras/event_state: poison 1".to_string()]),
            vec!["line 16: row remap".to_string()]
        );
    }

    /// Signals about the GPU the header names say just `GPU 5`; one about another GPU keeps its bus.
    #[test]
    fn signals_say_the_headers_gpu_short() {
        let mut a = signal("xid.48", vec![]);
        a.summary = "Xid 48 seen 1× on GPU 5 (0000:2a:00.0): reset".into();
        let mut b = signal("ecc.volatile_uncorrected", vec![]);
        b.summary =
            "GPU 5 (0000:2a:00.0) had 2 uncorrectable ECC errors; GPU 6 (0000:3d:00.0) too".into();
        let inc = Incidents {
            incidents: vec![Incident {
                code: "gpu.memory".into(),
                severity: Severity::Critical,
                gpu: Some(5),
                gpu_uuid: None,
                component: "GPU 5 (0000:2a:00.0)".into(),
                title: "uncorrectable memory error".into(),
                summary: String::new(),
                action: Action {
                    kind: ActionKind::Rma,
                    detail: "rma".into(),
                },
                first_seen: None,
                rule: None,
                signals: vec![a, b],
            }],
            history: vec![],
        };
        let mut out = String::new();
        render(&inc, &mut out);
        assert_eq!(out.matches("0000:2a:00.0").count(), 1, "{out}");
        assert!(out.contains("seen 1× on GPU 5: reset"), "{out}");
        assert!(
            out.contains(": GPU 5 had 2 uncorrectable ECC errors; GPU 6 (0000:3d:00.0) too"),
            "{out}"
        );
    }

    /// The node's first action is said once: not where the first incident says it just below.
    #[test]
    fn the_first_action_is_said_once() {
        let one = |code: &str, kind: ActionKind, detail: &str| Incident {
            code: code.into(),
            severity: Severity::Critical,
            gpu: Some(1),
            gpu_uuid: None,
            component: "GPU 1".into(),
            title: code.into(),
            summary: String::new(),
            action: Action {
                kind,
                detail: detail.into(),
            },
            first_seen: None,
            rule: None,
            signals: vec![signal(code, vec![])],
        };
        let incidents = vec![
            one("gpu.memory", ActionKind::ResetGpu, "reset GPU 1"),
            one("gpu.thermal", ActionKind::CheckCooling, "check the fans"),
        ];
        let mut h = HealthReport {
            verdict: Verdict::Unhealthy,
            summary: "Unhealthy: 2 incidents".into(),
            action: incidents[0].action.clone(),
            gpus_expected: None,
            gpus_enumerated: gpu_diag::facts::Reading::Ok(8),
            gpus_answering: 8,
            incidents: Incidents {
                incidents,
                history: vec![],
            },
            gpus: vec![],
            node_findings: vec![],
            unreadable: vec![],
            nvlink_domain: None,
            imex: None,
        };
        let mut out = String::new();
        verdict_and_incidents(&h, &mut out);
        assert!(!out.contains("first action"), "{out}");
        assert_eq!(out.matches("reset GPU 1").count(), 1, "{out}");
        // A node action that is not the first incident's is still said first.
        h.action = Action {
            kind: ActionKind::RebootNode,
            detail: "reboot the node".into(),
        };
        let mut out = String::new();
        verdict_and_incidents(&h, &mut out);
        assert!(
            out.contains("first action (reboot_node): reboot the node\n"),
            "{out}"
        );
    }
}
