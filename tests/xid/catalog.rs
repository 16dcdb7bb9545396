//! The embedded catalog is exactly `src/xid/xid-catalog.csv`, which is a byte-identical copy of the
//! project reference; every row is compared field by field with an independent reading of the file.

use std::path::Path;

use gpu_diag::xid::catalog;

fn repo_copy() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/xid/xid-catalog.csv"))
        .expect("src/xid/xid-catalog.csv")
}

#[test]
fn embedded_bytes_equal_the_repo_copy() {
    assert_eq!(catalog::CSV, repo_copy());
}

#[test]
fn repo_copy_equals_the_reference_where_present() {
    // The shared reference exists in the development workspace, not in CI checkouts.
    let reference = Path::new("/work/shared/reference/xid-catalog.csv");
    if let Ok(want) = std::fs::read(reference) {
        assert_eq!(
            repo_copy().as_bytes(),
            want.as_slice(),
            "copy drifted from {}",
            reference.display()
        );
    }
}

/// A second, deliberately naive reading of the CSV (the one quoted field is handled by hand).
fn naive_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut out = Vec::new();
            let mut rest = l;
            while !rest.is_empty() || out.len() < 10 {
                if let Some(q) = rest.strip_prefix('"') {
                    let end = q.find('"').expect("closing quote");
                    out.push(q[..end].to_string());
                    rest = q[end + 1..].strip_prefix(',').unwrap_or("");
                } else {
                    let (f, r) = rest.split_once(',').unwrap_or((rest, ""));
                    out.push(f.to_string());
                    rest = r;
                }
                if out.len() == 10 {
                    break;
                }
            }
            out
        })
        .collect()
}

#[test]
fn every_row_matches_field_by_field() {
    let rows = naive_rows(&repo_copy());
    let entries = catalog::entries();
    assert!(!rows.is_empty());
    assert_eq!(entries.len(), rows.len());
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let yes = |s: &str| match s {
        "YES" => Some(true),
        "NO" => Some(false),
        _ => None,
    };
    for (row, e) in rows.iter().zip(entries) {
        assert_eq!(row.len(), 10, "{row:?}");
        assert_eq!(row[0].parse::<u32>().unwrap(), e.code);
        assert_eq!(row[1], e.mnemonic);
        assert_eq!(row[2], e.description);
        assert_eq!(
            [yes(&row[3]), yes(&row[4]), yes(&row[5]), yes(&row[6])],
            e.applies,
            "code {}",
            e.code
        );
        assert_eq!(opt(&row[7]), e.immediate_action, "code {}", e.code);
        assert_eq!(opt(&row[8]), e.investigatory_action, "code {}", e.code);
        assert_eq!(opt(&row[9]), e.xid154_linkage, "code {}", e.code);
        assert_eq!(catalog::lookup(e.code), Some(e));
    }
}

#[test]
fn policy_classes_of_the_catalog() {
    let blank: Vec<u32> = catalog::entries()
        .iter()
        .filter(|e| e.has_blank_actions())
        .map(|e| e.code)
        .collect();
    assert_eq!(blank, (162..=172).collect::<Vec<_>>());
    let driver_only: Vec<u32> = catalog::entries()
        .iter()
        .filter(|e| e.is_driver_only())
        .map(|e| e.code)
        .collect();
    assert_eq!(driver_only, vec![173, 174, 175, 176]);
}
