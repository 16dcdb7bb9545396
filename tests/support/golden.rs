//! Golden answers: what varies from run to run is redacted, then the whole `tools/call` result is an insta
//! snapshot under snapshots/golden/. Shared by the local-mode goldens (tests/launcher/golden.rs) and the
//! testbed goldens (tests/e2e/golden.rs) with `#[path]`. Regenerate after a deliberate change with
//! `INSTA_UPDATE=always cargo test -p k8s-gpu-mcp --test <launcher_golden|e2e> golden` and read the diff.
#![allow(dead_code)]

use serde_json::{Value, json};

/// insta settings: snapshots in snapshots/golden, named by the test's own name.
pub fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/golden"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// What a run's answers hold that the next run's do not, besides what [`redact`] always zeroes.
#[derive(Default)]
pub struct Volatile<'a> {
    /// `(literal, placeholder)`: paths, generated node and namespace names.
    pub literals: Vec<(String, &'a str)>,
    /// Kubernetes object uids (a fresh cluster's objects); a GPU's `GPU-…`/`MIG-…` UUID stays.
    pub object_uids: bool,
    /// `(regex, placeholder)`, applied after the literals: names the API server or the launcher generates.
    pub patterns: Vec<(&'a str, &'a str)>,
}

/// Zero what differs from run to run, everywhere in `v`: wall-clock durations, collection timestamps, the
/// evidence archive's size; in strings, `vol`'s literals, then durations, RFC 3339 times, evidence archive
/// names, digests, byte counts (and object uids where asked).
pub fn redact(v: &mut Value, vol: &Volatile) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                let timing = k.ends_with("millis") || k.ends_with("_ms");
                let stamp = k == "collected_at" || k == "ts" || k == "started_at";
                // The evidence archive holds its collection time: its size and digest vary.
                let varies = k == "bytes";
                // A chart's PNG (watch_gpus): its bytes follow the deflate implementation, not the answer.
                let png = k == "data" && x.as_str().is_some_and(|d| d.starts_with("iVBORw0KGgo"));
                if png {
                    *x = json!("<png>");
                } else if (timing || varies) && x.is_number() {
                    *x = json!(0);
                } else if stamp && x.is_string() {
                    *x = json!("<time>");
                } else {
                    redact(x, vol);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| redact(x, vol)),
        Value::String(s) => *s = redact_text(s, vol),
        _ => {}
    }
}

pub fn redact_text(s: &str, vol: &Volatile) -> String {
    let mut s = s.to_string();
    // Longest first: a generated name may contain a shorter one.
    let mut lits: Vec<&(String, &str)> =
        vol.literals.iter().filter(|(l, _)| !l.is_empty()).collect();
    lits.sort_by_key(|(l, _)| std::cmp::Reverse(l.len()));
    for (l, p) in lits {
        s = s.replace(l.as_str(), p);
    }
    for (re, p) in &vol.patterns {
        let re = regex::Regex::new(re).unwrap_or_else(|e| panic!("redaction pattern {re}: {e}"));
        s = re.replace_all(&s, *p).into_owned();
    }
    static RE: std::sync::OnceLock<Vec<(regex::Regex, &str)>> = std::sync::OnceLock::new();
    let res = RE.get_or_init(|| {
        [
            (r"\b\d+(\.\d+)? ?(ms|s)\b", "<dur>"),
            (
                r#"evidence-[^\s"/]+-\d{8}T\d{6}Z-[0-9a-f]{12}\.tar\.gz"#,
                "<evidence-file>",
            ),
            (r"\b[0-9a-f]{64}\b", "<sha256>"),
            (r"\b\d+ bytes\b", "<n> bytes"),
            (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>"),
        ]
        .into_iter()
        .map(|(r, p)| (regex::Regex::new(r).unwrap(), p))
        .collect()
    });
    for (re, p) in res {
        s = re.replace_all(&s, *p).into_owned();
    }
    if vol.object_uids {
        static UID: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
        let uid = UID.get_or_init(|| {
            regex::Regex::new(
                r"(GPU-|MIG-)?\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            )
            .unwrap()
        });
        s = uid
            .replace_all(&s, |c: &regex::Captures| {
                if c.get(1).is_some() {
                    c[0].to_string()
                } else {
                    "<uid>".to_string()
                }
            })
            .into_owned();
    }
    s
}
