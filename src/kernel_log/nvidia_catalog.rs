//! NVIDIA's XID catalog as data: `xid-catalog.csv` (172 catalog codes plus the four driver-only codes
//! 173–176) is embedded at build time and parsed once, on first use.

use std::sync::LazyLock;

/// The CSV exactly as shipped next to this file (a byte-identical copy of the project's reference).
pub const CSV: &str = include_str!("xid-catalog.csv");

/// One row of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub code: u32,
    pub mnemonic: String,
    pub description: String,
    /// Applies to A100 / H100 / B100 / GB200 (`None` where the catalog says nothing: driver-only codes).
    pub applies: [Option<bool>; 4],
    /// Resolution bucket (immediate action), `None` where the catalog leaves it blank.
    pub immediate_action: Option<String>,
    /// Resolution bucket (investigatory action), `None` where blank.
    pub investigatory_action: Option<String>,
    /// Driver release from which the code also raises Xid 154, where stated.
    pub xid154_linkage: Option<String>,
}

impl CatalogEntry {
    /// Codes 173–176 are defined by the driver (`nverror.h`) but not by the published catalog.
    pub fn is_driver_only(&self) -> bool {
        self.applies.iter().all(Option::is_none)
    }

    /// Codes 162–172: in the catalog, but with blank resolution buckets.
    pub fn has_blank_actions(&self) -> bool {
        !self.is_driver_only()
            && self.immediate_action.is_none()
            && self.investigatory_action.is_none()
    }

    /// "Unused" codes: deprecated, or Volta-and-earlier only; seeing one on a current GPU is anomalous.
    pub fn is_unused(&self) -> bool {
        self.description == "Unused"
    }
}

/// Why the embedded catalog could not be parsed (only possible if the CSV file is edited badly; a test
/// guards it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("xid-catalog.csv line {line}: {reason}")]
pub struct CatalogError {
    pub line: usize,
    pub reason: String,
}

static CATALOG: LazyLock<Vec<CatalogEntry>> = LazyLock::new(|| {
    // A broken embedded table is a build defect caught by the unit tests; at run time degrade to "every
    // code unknown" rather than panic inside a diagnostic tool.
    parse_csv(CSV).unwrap_or_default()
});

/// All entries, ascending by code.
pub fn entries() -> &'static [CatalogEntry] {
    &CATALOG
}

/// The entry for one code, if the catalog (or the driver-only extension) knows it.
pub fn lookup(code: u32) -> Option<&'static CatalogEntry> {
    let all = entries();
    all.binary_search_by_key(&code, |e| e.code)
        .ok()
        .map(|i| &all[i])
}

/// Parse the catalog CSV (RFC 4180 quoting, header row first).
pub fn parse_csv(text: &str) -> Result<Vec<CatalogEntry>, CatalogError> {
    let mut rows = split_records(text);
    let header = rows.next().ok_or(CatalogError {
        line: 1,
        reason: "empty file".into(),
    })?;
    let want = [
        "xid",
        "mnemonic",
        "description",
        "a100",
        "h100",
        "b100",
        "gb200",
        "immediate_action",
        "investigatory_action",
        "xid154_linkage",
    ];
    if header.1 != want {
        return Err(CatalogError {
            line: header.0,
            reason: format!("unexpected header {:?}", header.1),
        });
    }
    let mut out: Vec<CatalogEntry> = Vec::with_capacity(180);
    for (line, f) in rows {
        if f.len() == 1 && f[0].is_empty() {
            continue;
        }
        if f.len() != want.len() {
            return Err(CatalogError {
                line,
                reason: format!("{} fields, want {}", f.len(), want.len()),
            });
        }
        let code: u32 = f[0].parse().map_err(|_| CatalogError {
            line,
            reason: format!("bad code {:?}", f[0]),
        })?;
        if out.last().is_some_and(|p| p.code >= code) {
            return Err(CatalogError {
                line,
                reason: format!("code {code} out of order"),
            });
        }
        let yes = |s: &str| -> Result<Option<bool>, CatalogError> {
            match s {
                "YES" => Ok(Some(true)),
                "NO" => Ok(Some(false)),
                "" => Ok(None),
                other => Err(CatalogError {
                    line,
                    reason: format!("bad applicability {other:?}"),
                }),
            }
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        out.push(CatalogEntry {
            code,
            mnemonic: f[1].clone(),
            description: f[2].clone(),
            applies: [yes(&f[3])?, yes(&f[4])?, yes(&f[5])?, yes(&f[6])?],
            immediate_action: opt(&f[7]),
            investigatory_action: opt(&f[8]),
            xid154_linkage: opt(&f[9]),
        });
    }
    Ok(out)
}

/// Records as (1-based line number, fields), honouring double-quoted fields with `""` escapes.
fn split_records(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    std::iter::from_fn(move || {
        chars.peek()?;
        let start_line = line;
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        cur.push('"');
                    } else {
                        quoted = false;
                    }
                }
                '"' if cur.is_empty() => quoted = true,
                ',' if !quoted => fields.push(std::mem::take(&mut cur)),
                '\n' if !quoted => {
                    line += 1;
                    break;
                }
                '\r' if !quoted => {}
                '\n' => {
                    line += 1;
                    cur.push(c);
                }
                _ => cur.push(c),
            }
        }
        fields.push(cur);
        Some((start_line, fields))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_parses_completely() {
        let all = parse_csv(CSV).expect("embedded catalog parses");
        assert!(!all.is_empty());
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.code as usize, i + 1, "codes start at 1, without gaps");
        }
        assert_eq!(entries().len(), all.len());
    }

    #[test]
    fn known_rows() {
        let e79 = lookup(79).unwrap();
        assert_eq!(e79.mnemonic, "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS");
        assert_eq!(e79.immediate_action.as_deref(), Some("RESTART_BM"));
        assert_eq!(e79.investigatory_action.as_deref(), Some("CONTACT_SUPPORT"));
        let e45 = lookup(45).unwrap();
        assert!(e45.description.contains(", due to previous errors"));
        assert_eq!(e45.immediate_action.as_deref(), Some("WORKFLOW_XID_45"));
        assert!(lookup(165).unwrap().has_blank_actions());
        assert!(!lookup(165).unwrap().is_driver_only());
        assert!(lookup(174).unwrap().is_driver_only());
        assert!(!lookup(174).unwrap().has_blank_actions());
        assert!(lookup(0).is_none());
        assert!(lookup(177).is_none());
        assert!(lookup(1).unwrap().is_unused());
    }

    #[test]
    fn bucket_distribution_matches_reference() {
        let count = |b: &str| {
            entries()
                .iter()
                .filter(|e| e.immediate_action.as_deref() == Some(b))
                .count()
        };
        assert_eq!(count("CONTACT_SUPPORT"), 62);
        assert_eq!(count("RESTART_APP"), 48);
        assert_eq!(count("IGNORE"), 21);
        assert_eq!(count("RESET_GPU"), 14);
        assert_eq!(count("WORKFLOW_NVLINK5_ERR"), 7);
        assert_eq!(count("RESTART_BM"), 1);
        let blank = entries().iter().filter(|e| e.has_blank_actions()).count();
        assert_eq!(blank, 11, "162-172");
    }

    #[test]
    fn malformed_csv_is_an_error_not_a_panic() {
        assert!(parse_csv("").is_err());
        assert!(parse_csv("nope\n1,2").is_err());
        let hdr = "xid,mnemonic,description,a100,h100,b100,gb200,immediate_action,investigatory_action,xid154_linkage\n";
        assert!(parse_csv(&format!("{hdr}1,A,B,YES")).is_err());
        assert!(parse_csv(&format!("{hdr}x,A,B,YES,NO,NO,NO,,,")).is_err());
        assert!(
            parse_csv(&format!(
                "{hdr}2,A,B,YES,NO,NO,NO,,,\n1,A,B,YES,NO,NO,NO,,,"
            ))
            .is_err()
        );
        assert!(parse_csv(&format!("{hdr}1,\"A,\"\"q\"\"\",B,MAYBE,NO,NO,NO,,,")).is_err());
        let ok = parse_csv(&format!("{hdr}1,\"A,\"\"q\"\"\",B,YES,NO,NO,NO,,,\n")).unwrap();
        assert_eq!(ok[0].mnemonic, "A,\"q\"");
    }
}
