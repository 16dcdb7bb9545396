//! Incidents: the faults of a node, each once. One fault (of a GPU, an NVLink path, an RDMA port, the
//! node) often shows through several findings: an uncorrectable memory error is an Xid 48, a volatile ECC
//! count, a row remap and the driver's recovery action. [`group`] joins the findings of one fault into
//! one [`Incident`] by the data of [`rules`], with its signals in causal order, one severity, one action
//! and the earliest time. A finding that fits no rule is an incident of its own; what is only
//! informational (the catalog's IGNORE codes, a recovery action the driver set back to none) is history,
//! and so is a fault the driver has since cleared (its last Xid 154 back to none, nothing live left).
//! Nothing is dropped: every finding is a signal of one incident or an entry of the history.

pub mod fleet;
pub mod imex;
pub mod platform;
pub mod rack;
pub mod rules;

use crate::finding::{Action, ActionKind, Finding, Incident, IncidentRule, Incidents, Severity};
use rules::{BURST_S, BURST_SIGNALS, RULES, Rule, Scope};

/// Groups `findings` into incidents. `gpu_name` names a GPU in prose (`GPU 1 (0000:ca:00.0)`).
pub fn group(findings: &[Finding], gpu_name: &dyn Fn(u32) -> String) -> Incidents {
    let mut claimed = vec![false; findings.len()];
    let mut out: Vec<Incident> = Vec::new();
    let mut gpus: Vec<u32> = findings.iter().filter_map(|f| f.gpu).collect();
    gpus.sort_unstable();
    gpus.dedup();
    for rule in RULES {
        match rule.scope {
            Scope::Gpu => {
                for &g in &gpus {
                    let mine: Vec<usize> = (0..findings.len())
                        .filter(|&i| {
                            !claimed[i]
                                && findings[i].gpu == Some(g)
                                && rule.has_signal(&findings[i].code)
                        })
                        .collect();
                    if !mine.iter().any(|&i| rule.is_anchor(&findings[i].code)) {
                        continue;
                    }
                    let mut members = mine;
                    // Node-level signals about a component one of these signals names (an NVSwitch).
                    let own = format!("gpu:{g}");
                    let mut keys: Vec<&String> =
                        members.iter().flat_map(|&i| &findings[i].about).collect();
                    keys.push(&own);
                    for (i, f) in findings.iter().enumerate() {
                        if !claimed[i]
                            && f.gpu.is_none()
                            && rule.has_signal(&f.code)
                            && f.about.iter().any(|k| keys.contains(&k))
                        {
                            members.push(i);
                        }
                    }
                    for &i in &members {
                        claimed[i] = true;
                    }
                    out.push(build(rule, &members, findings, gpu_name));
                }
            }
            Scope::Node => {
                let members: Vec<usize> = (0..findings.len())
                    .filter(|&i| !claimed[i] && rule.admits(&findings[i]))
                    .collect();
                if members.iter().any(|&i| rule.is_anchor(&findings[i].code)) {
                    for &i in &members {
                        claimed[i] = true;
                    }
                    out.push(build(rule, &members, findings, gpu_name));
                }
            }
            Scope::Port => {
                // Ports joined by the findings that name them together.
                let mut pending: Vec<usize> = (0..findings.len())
                    .filter(|&i| {
                        !claimed[i]
                            && findings[i].gpu.is_none()
                            && rule.has_signal(&findings[i].code)
                    })
                    .collect();
                while let Some(first) = pending.first().copied() {
                    let mut members = vec![first];
                    let mut keys: Vec<String> = findings[first].about.clone();
                    let mut grew = true;
                    while grew {
                        grew = false;
                        for &i in &pending {
                            if !members.contains(&i)
                                && findings[i].about.iter().any(|k| keys.contains(k))
                            {
                                members.push(i);
                                keys.extend(findings[i].about.iter().cloned());
                                grew = true;
                            }
                        }
                    }
                    pending.retain(|i| !members.contains(i));
                    if !members.iter().any(|&i| rule.is_anchor(&findings[i].code)) {
                        continue;
                    }
                    for &i in &members {
                        claimed[i] = true;
                    }
                    out.push(build(rule, &members, findings, gpu_name));
                }
            }
        }
    }
    // A crash dump (or another node-level line) of the same burst as a GPU incident is part of it.
    for (i, f) in findings.iter().enumerate() {
        if claimed[i] || f.gpu.is_some() || !BURST_SIGNALS.contains(&f.code.as_str()) {
            continue;
        }
        let Some(t) = f.first_seen.as_deref().and_then(unix) else {
            continue;
        };
        let owner = out
            .iter_mut()
            .filter(|inc| {
                inc.gpu.is_some() && rules::find(&inc.code).is_some_and(|r| r.has_signal(&f.code))
            })
            .filter_map(|inc| {
                let start = inc.first_seen.as_deref().and_then(unix)?;
                (start <= t && t - start <= BURST_S).then_some((t - start, inc))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, inc)| inc);
        if let Some(inc) = owner {
            claimed[i] = true;
            let rule = rules::find(&inc.code).expect("checked above");
            inc.signals.push(f.clone());
            inc.signals.sort_by_key(|s| rule.rank(&s.code));
            let joined = assemble(
                inc.code.clone(),
                inc.component.clone(),
                inc.signals.clone(),
                inc.gpu,
            );
            *inc = describe(rule, joined);
        }
    }
    for (i, f) in findings.iter().enumerate() {
        if !claimed[i] {
            out.push(lone(f, gpu_name));
        }
    }
    let (mut incidents, past): (Vec<Incident>, Vec<Incident>) = out
        .into_iter()
        .partition(|i| i.severity > Severity::Info && !cleared(i));
    // Worst first, then the most disruptive action, then by GPU; stable for equal ones.
    incidents.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.action.kind.cmp(&a.action.kind))
            // A GPU's fault before the node's (switch, port) of equal weight.
            .then(a.gpu.is_none().cmp(&b.gpu.is_none()))
            .then(a.gpu.cmp(&b.gpu))
    });
    let mut history: Vec<Finding> = past.into_iter().flat_map(|i| i.signals).collect();
    history.sort_by(|a, b| a.first_seen.cmp(&b.first_seen).then(a.gpu.cmp(&b.gpu)));
    Incidents { incidents, history }
}

fn build(
    rule: &Rule,
    members: &[usize],
    findings: &[Finding],
    gpu_name: &dyn Fn(u32) -> String,
) -> Incident {
    let mut signals: Vec<Finding> = members.iter().map(|&i| findings[i].clone()).collect();
    signals.sort_by_key(|s| rule.rank(&s.code));
    let mut gpus: Vec<u32> = signals.iter().filter_map(|s| s.gpu).collect();
    gpus.sort_unstable();
    gpus.dedup();
    // The IMEX domain is the node's even when the driver named one GPU with it.
    let gpu = (gpus.len() == 1 && rule.code != rules::IMEX_RULE).then(|| gpus[0]);
    let component = match (rule.scope, gpu) {
        (Scope::Node, _) if rule.code == rules::IMEX_RULE => "the node's IMEX domain".to_string(),
        (Scope::Gpu, Some(g)) | (Scope::Node, Some(g)) => gpu_name(g),
        (Scope::Node, None) => {
            let list: Vec<String> = gpus.iter().map(u32::to_string).collect();
            format!("the node (GPU {})", list.join(", "))
        }
        _ => {
            let mut ports: Vec<&str> = signals
                .iter()
                .flat_map(|s| &s.about)
                .filter_map(|k| k.strip_prefix("nic:"))
                .collect();
            ports.sort_unstable();
            ports.dedup();
            format!(
                "RDMA port{} {}",
                if ports.len() == 1 { "" } else { "s" },
                ports.join(", ")
            )
        }
    };
    describe(
        rule,
        assemble(rule.code.to_string(), component, signals, gpu),
    )
}

/// The rule's words on an assembled incident.
fn describe(rule: &Rule, mut inc: Incident) -> Incident {
    let mut codes: Vec<&str> = Vec::new();
    for s in &inc.signals {
        if !codes.contains(&s.code.as_str()) {
            codes.push(&s.code);
        }
    }
    // The first title whose code is among the signals says what this instance of the fault is.
    inc.title = rule
        .titles
        .iter()
        .find(|(code, _)| inc.signals.iter().any(|s| s.code == *code))
        .map_or(rule.title, |(_, t)| t)
        .to_string();
    inc.summary = format!(
        "{}: {}, seen as {} signal{}: {}",
        inc.component,
        inc.title,
        inc.signals.len(),
        if inc.signals.len() == 1 { "" } else { "s" },
        codes.join(", ")
    );
    inc.rule = Some(IncidentRule {
        reason: rule.reason.to_string(),
        source: rule.source.to_string(),
    });
    inc
}

fn lone(f: &Finding, gpu_name: &dyn Fn(u32) -> String) -> Incident {
    let component = match (f.gpu, f.about.first()) {
        (Some(g), _) => gpu_name(g),
        (None, Some(k)) => k.replacen(':', " ", 1),
        (None, None) => "node".to_string(),
    };
    let mut inc = assemble(f.code.clone(), component, vec![f.clone()], f.gpu);
    inc.title = f.code.clone();
    inc.summary = f.summary.clone();
    inc
}

fn assemble(code: String, component: String, signals: Vec<Finding>, gpu: Option<u32>) -> Incident {
    let severity = signals
        .iter()
        .map(|s| s.severity)
        .max()
        .unwrap_or(Severity::Info);
    // The most disruptive action among the signals of the incident's severity; the first of equals.
    let action = signals
        .iter()
        .filter(|s| s.severity == severity)
        .fold(None::<&Finding>, |best, s| match best {
            Some(b) if b.action.kind >= s.action.kind => Some(b),
            _ => Some(s),
        })
        .map(|s| s.action.clone())
        .unwrap_or(Action {
            kind: ActionKind::None,
            detail: "no action needed".into(),
        });
    let first_seen = signals.iter().filter_map(|s| s.first_seen.clone()).min();
    Incident {
        code,
        severity,
        gpu,
        gpu_uuid: gpu.and_then(|g| {
            signals
                .iter()
                .find(|s| s.gpu == Some(g))
                .and_then(|s| s.gpu_uuid.clone())
        }),
        component,
        title: String::new(),
        summary: String::new(),
        action,
        first_seen,
        rule: None,
        signals,
    }
}

/// A fault the driver has since cleared: every signal is the kernel log's (nothing live from NVML says it
/// now) and the driver's last recovery action (Xid 154) is informational, i.e. back to none or superseded
/// by what NVML reports, with no recovery action NVML still asks for.
fn cleared(i: &Incident) -> bool {
    let from_log =
        |c: &str| c.starts_with("xid.") || c.starts_with("sxid.") || c == "driver.crash_dump";
    i.rule.is_some()
        && i.signals
            .iter()
            .any(|s| s.code == "xid.154" && s.severity == Severity::Info)
        && i.signals.iter().all(|s| from_log(&s.code))
}

/// Seconds since the epoch of an RFC 3339 time.
fn unix(t: &str) -> Option<f64> {
    let ts: jiff::Timestamp = t.parse().ok()?;
    Some(ts.as_microsecond() as f64 / 1e6)
}

#[cfg(test)]
mod tests;
