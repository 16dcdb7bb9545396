//! The text of a diagnostic run (`run_gpu_diagnostic`): each tested GPU in a line with what failed, the
//! GPUs left out grouped by reason, and what happened during the run, for DCGM's and RVS's reports alike.

use gpu_diag::dcgm::report::{DcgmDiagReport, GpuOutcome};
use gpu_diag::rvs::report::RvsDiagReport;

fn word(o: GpuOutcome) -> &'static str {
    match o {
        GpuOutcome::Passed => "passed",
        GpuOutcome::Warnings => "warnings",
        GpuOutcome::Failed => "FAILED",
        GpuOutcome::Skipped => "skipped",
        GpuOutcome::Incomplete => "incomplete",
        GpuOutcome::NotRun => "not run",
    }
}

pub fn dcgm_gpus(r: &DcgmDiagReport, s: &mut String) {
    for g in &r.gpus {
        let bad: Vec<String> = g
            .tests
            .iter()
            .filter(|t| t.outcome >= gpu_diag::dcgm::interpret::Outcome::Warn)
            .map(|t| {
                let m = t.messages.first();
                format!(
                    "{} {} {}{}",
                    t.test,
                    t.outcome.word(),
                    m.and_then(|m| m.code.as_deref()).unwrap_or(""),
                    m.map(|m| format!(" ({}): {}", m.severity.name(), m.text))
                        .unwrap_or_default()
                )
            })
            .collect();
        s.push_str(&format!("GPU {}: {}", g.index, word(g.outcome)));
        if !bad.is_empty() {
            s.push_str(&format!(": {}", bad.join("; ")));
        }
        s.push('\n');
    }
}

/// Each tested GPU in one line: its outcome, the RVS actions it failed (`module/action` and why), and
/// those without a result (not run, never passed); then the recipe's actions left out.
pub fn rvs_gpus(r: &RvsDiagReport, s: &mut String) {
    use gpu_diag::rvs::report::RvsTestResult;
    for g in &r.gpus {
        s.push_str(&format!("GPU {}", g.index));
        if let Some(p) = &g.pci_bus_id {
            s.push_str(&format!(" ({p})"));
        }
        s.push_str(&format!(": {}", word(g.outcome)));
        let bad: Vec<String> = g
            .tests
            .iter()
            .filter(|t| t.result == RvsTestResult::Failed)
            .map(|t| match &t.detail {
                Some(d) => format!("{}/{} failed ({d})", t.module, t.action),
                None => format!("{}/{} failed", t.module, t.action),
            })
            .collect();
        let missing: Vec<String> = g
            .tests
            .iter()
            .filter(|t| t.result == RvsTestResult::NotRun)
            .map(|t| format!("{}/{}", t.module, t.action))
            .collect();
        if !bad.is_empty() {
            s.push_str(&format!(": {}", bad.join("; ")));
        } else if g.outcome == GpuOutcome::Passed {
            s.push_str(&format!(" ({} actions)", g.tests.len()));
        }
        if !missing.is_empty() {
            s.push_str(&format!("; no result (not run): {}", missing.join(", ")));
        }
        s.push('\n');
    }
    for l in &r.actions_left_out {
        s.push_str(&format!("left out: {l}\n"));
    }
}

pub fn not_tested(not_tested: &[gpu_diag::dcgm::select::Skipped], s: &mut String) {
    // GPUs left out for the same reason read as one line: each distinct holder once with its GPUs, at
    // most three (eight busy GPUs of a training node stay one line; the report resource keeps each).
    type Group<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, Vec<&'a str>)>);
    let mut groups: Vec<Group> = Vec::new();
    for n in not_tested {
        let i = match groups.iter().position(|g| g.0 == n.why) {
            Some(i) => i,
            None => {
                groups.push((&n.why, vec![], vec![]));
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.1.push(&n.requested);
        match g.2.iter_mut().find(|(d, _)| *d == n.detail) {
            Some((_, gpus)) => gpus.push(&n.requested),
            None => g.2.push((&n.detail, vec![&n.requested])),
        }
    }
    for (why, gpus, details) in groups {
        let shown: Vec<String> = details
            .iter()
            .take(3)
            .map(|(d, g)| match details.len() {
                1 => d.to_string(),
                _ => format!("GPU {}: {d}", g.join(", ")),
            })
            .collect();
        let more = details.len().saturating_sub(3);
        s.push_str(&format!(
            "GPU {} not tested ({why}): {}{}\n",
            gpus.join(", "),
            shown.join("; "),
            if more > 0 {
                format!("; {more} more (the report resource lists each GPU)")
            } else {
                String::new()
            }
        ));
    }
}

pub fn dcgm_tail(r: &DcgmDiagReport, s: &mut String) {
    for c in &r.changes {
        s.push_str(&format!(
            "during the run: GPU {} {} {} -> {}\n",
            c.gpu, c.what, c.before, c.after
        ));
    }
    for x in &r.xids {
        s.push_str(&format!("during the run: Xid {} {}\n", x.code, x.message));
    }
    if let Some(d) = &r.dcgm {
        s.push_str(&format!(
            "dcgmi {} (DCGM {}): exit {} in {:.1} s\n",
            d.argv.join(" "),
            d.dcgm_version.as_deref().unwrap_or("?"),
            d.exit_status.map_or("-".into(), |x| x.to_string()),
            d.elapsed_ms as f64 / 1000.0
        ));
    }
}

pub fn rvs_tail(r: &RvsDiagReport, s: &mut String) {
    if !r.ignored_results.is_empty() {
        s.push_str(&format!(
            "ignored: {} result(s) for GPUs this run did not give rvs or actions its recipe did not have: {}\n",
            r.ignored_results.len(),
            r.ignored_results.join("; ")
        ));
    }
    if let Some(x) = &r.rvs {
        s.push_str(&format!(
            "rvs {} (RVS {}): exit {} in {:.1} s\n",
            x.argv.join(" "),
            x.version.as_deref().unwrap_or("?"),
            x.exit_status.map_or("-".into(), |e| e.to_string()),
            x.elapsed_ms as f64 / 1000.0
        ));
        if let Some(e) = &x.error {
            s.push_str(&format!("rvs: {e}\n"));
        }
    }
}
