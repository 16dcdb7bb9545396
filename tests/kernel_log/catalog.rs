//! The embedded catalog is a byte-identical copy of the project reference (checked by its digest, and
//! against the reference itself where it sits beside the checkout); every row is compared field by field
//! with an independent reading of the file.

use std::path::Path;

use gpu_diag::kernel_log::nvidia_catalog;

fn repo_copy() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/kernel_log/xid-catalog.csv"),
    )
    .expect("src/kernel_log/xid-catalog.csv")
}

/// SHA-256 of the project reference `xid-catalog.csv` (`../shared/reference/` beside the checkout), recorded
/// when the copy was taken. Compared with the compiled-in bytes everywhere, so a clone without the reference
/// still catches an edited copy; where the reference exists, it must still hash to this (a newer reference
/// means a new copy and a new digest, on purpose).
const REFERENCE_SHA256: &str = "e0a48e0cae8c168bf7b98b655fb460266d5172630b2de47f7245bee7f040609d";

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn compiled_in_catalog_has_the_reference_digest() {
    // `nvidia_catalog::CSV` is what entries() parses, so this pins what the code uses, not only the file.
    assert_eq!(
        sha256_hex(nvidia_catalog::CSV.as_bytes()),
        REFERENCE_SHA256,
        "src/kernel_log/xid-catalog.csv differs from the reference it was copied from"
    );
}

#[test]
fn recorded_digest_is_the_reference_where_it_sits_beside_the_checkout() {
    let reference =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/xid-catalog.csv");
    match std::fs::read(&reference) {
        Ok(want) => assert_eq!(
            sha256_hex(&want),
            REFERENCE_SHA256,
            "{} changed: copy it to src/kernel_log/xid-catalog.csv and record its digest",
            reference.display()
        ),
        // The digest test above still guards the copy; CI=true on a checkout without the reference is
        // allowed only because of it, and says so.
        Err(e) => eprintln!(
            "note: {} not readable ({e}); the copy is checked against the recorded digest only",
            reference.display()
        ),
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
    let entries = nvidia_catalog::entries();
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
        assert_eq!(nvidia_catalog::lookup(e.code), Some(e));
    }
}

#[test]
fn policy_classes_of_the_catalog() {
    let blank: Vec<u32> = nvidia_catalog::entries()
        .iter()
        .filter(|e| e.has_blank_actions())
        .map(|e| e.code)
        .collect();
    assert_eq!(blank, (162..=172).collect::<Vec<_>>());
    let driver_only: Vec<u32> = nvidia_catalog::entries()
        .iter()
        .filter(|e| e.is_driver_only())
        .map(|e| e.code)
        .collect();
    assert_eq!(driver_only, vec![173, 174, 175, 176]);
}
