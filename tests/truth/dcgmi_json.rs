//! Truth test for the fake dcgmi's outputs (`tests/fixtures/dcgm/v{3,4}-*.json`, what `tests/fake-dcgm/dcgmi`
//! prints): every JSON path in them is one that DCGM's own `dcgmi diag -j` writes, by its source
//! (`tests/fixtures/dcgm/dcgmi-json-v4.6.0.tsv` and `-v3.3.9.tsv`, NVIDIA/DCGM dcgmi/Diag.cpp at those
//! tags, each path with its line). No package registry serves DCGM's source, so the paths are kept as data.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const V4_PATHS: &str = include_str!("../fixtures/dcgm/dcgmi-json-v4.6.0.tsv");
const V3_PATHS: &str = include_str!("../fixtures/dcgm/dcgmi-json-v3.3.9.tsv");

fn walk(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                // GPU Device Serials is keyed by GPU index (v3).
                let key = if k.bytes().all(|b| b.is_ascii_digit()) {
                    "<n>"
                } else {
                    k
                };
                let p = format!("{at}/{key}");
                // A value's path; an object or array is named by what it holds.
                if !v.is_object() && !v.is_array() {
                    out.insert(p.clone());
                }
                walk(v, &p, out);
            }
        }
        Value::Array(a) => {
            let p = format!("{at}[]");
            for v in a {
                out.insert(p.clone());
                // A run of --iterations holds a whole output: its paths are the root's again.
                let inner = if p == "/iterations[]" { "" } else { &p };
                walk(v, inner, out);
            }
        }
        _ => {}
    }
}

fn check(prefix: &str, paths: &str, min_files: usize) {
    let upstream: BTreeSet<&str> = paths
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dcgm");
    let mut files = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with(prefix) && name.ends_with(".json")) {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut paths = BTreeSet::new();
        walk(&doc, "", &mut paths);
        for p in paths.iter().filter(|p| !upstream.contains(p.as_str())) {
            failures.push(format!(
                "{name}: {p} is written nowhere in dcgmi/Diag.cpp v4.6.0"
            ));
        }
        files += 1;
    }
    assert!(
        files >= min_files,
        "{files} {prefix}* outputs under {}",
        dir.display()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fake_dcgmi_v4_outputs_use_only_paths_dcgmi_4_6_writes() {
    check("v4-", V4_PATHS, 10);
}

#[test]
fn fake_dcgmi_v3_outputs_use_only_paths_dcgmi_3_3_writes() {
    check("v3-", V3_PATHS, 4);
}
