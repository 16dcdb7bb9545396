//! rvs's JSON result file (`rvs ... -j <path>`): an object keyed by module (`gpup`, `gst`, `babel`, ...),
//! each an object keyed by the conf's action name, each a list of records; a record that closes a GPU's
//! action carries `gpu_id` (KFD's), `gpu_index` (rvs's own order) and `pass` (`"true"`/`"false"`), beside
//! module-specific readings; records without `pass` are progress and are not results. An optional
//! top-level `version` string. Sources: ROCm/ROCmValidationSuite `include/rvs_key_def.h`
//! (`RVS_JSON_LOG_GPU_ID_KEY`, `RVS_JSON_LOG_GPU_IDX_KEY`), `gpup.so/src/action.cpp` (a record per GPU
//! with `pass`); ROCm/device-metrics-exporter `pkg/testrunner/rvs.go` (`RvsTestResult`, and the stray
//! trailing `}` RVS of ROCm 7.1.1 writes, which AMD's runner strips and so does this).
//!
//! The file is the runner's words in a pod this probe started, but a tenant's image can put any `rvs` on
//! a node: every name is clipped and made printable, and the counts are bounded.

use serde_json::Value;

/// At most this many result records are read (8 GPUs x ~20 actions of the longest recipe, with room).
pub const MAX_RECORDS: usize = 2048;
/// The file is read up to this size.
pub const MAX_FILE_BYTES: usize = 8 << 20;
/// Module and action names are clipped to this many characters.
pub const MAX_NAME: usize = 64;

/// One GPU's result for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub module: String,
    pub action: String,
    pub gpu_id: Option<u32>,
    pub gpu_index: Option<u32>,
    pub pass: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    pub version: Option<String>,
    pub records: Vec<Record>,
    /// Records past [`MAX_RECORDS`], or with a `pass` that is neither true nor false.
    pub dropped: usize,
}

/// A name from the file: printable ASCII, clipped.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(MAX_NAME)
        .collect()
}

fn number(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
}

fn pass(v: Option<&Value>) -> Option<Option<bool>> {
    match v? {
        Value::String(s) if s == "true" => Some(Some(true)),
        Value::String(s) if s == "false" => Some(Some(false)),
        Value::Bool(b) => Some(Some(*b)),
        _ => Some(None),
    }
}

/// The file as JSON, tolerating up to 10 stray trailing `}` (RVS of ROCm 7.1.1).
fn load(text: &str) -> Result<Value, String> {
    let mut t = text.trim_end();
    let mut first = None;
    for _ in 0..=10 {
        match serde_json::from_str::<Value>(t) {
            Ok(v) => return Ok(v),
            Err(e) => {
                first.get_or_insert_with(|| e.to_string());
                match t.strip_suffix('}') {
                    Some(rest) if e.is_syntax() => t = rest.trim_end(),
                    _ => break,
                }
            }
        }
    }
    Err(format!(
        "rvs's result file is not JSON: {}",
        first.unwrap_or_default()
    ))
}

/// Read rvs's result file.
pub fn parse(text: &str) -> Result<Results, String> {
    if text.trim().is_empty() {
        return Err("rvs's result file is empty".into());
    }
    let v = load(text)?;
    let Value::Object(top) = v else {
        return Err(
            "rvs's result file is no object of modules (an RVS older than the module/action JSON)"
                .into(),
        );
    };
    let mut out = Results::default();
    for (module, actions) in &top {
        if module == "version" {
            out.version = actions.as_str().map(clean);
            continue;
        }
        let Value::Object(actions) = actions else {
            continue;
        };
        for (action, records) in actions {
            let Value::Array(records) = records else {
                continue;
            };
            for r in records {
                let Some(p) = pass(r.get("pass")) else {
                    continue;
                };
                let Some(p) = p else {
                    out.dropped += 1;
                    continue;
                };
                if out.records.len() >= MAX_RECORDS {
                    out.dropped += 1;
                    continue;
                }
                out.records.push(Record {
                    module: clean(module),
                    action: clean(action),
                    gpu_id: number(r.get("gpu_id")),
                    gpu_index: number(r.get("gpu_index")),
                    pass: p,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape AMD's runner reads (device-metrics-exporter `pkg/testrunner/rvs_test.go`) with the
    /// `gpu_id` every RVS module writes beside `gpu_index` (`gpup.so/src/action.cpp`).
    const TWO_GPUS: &str = r#"{
      "version": "1.2.0",
      "gst": {
        "gst-1215Tflops-4K4K8K-rand-fp8": [
          {"gpu_id": "42924", "gpu_index": "0", "target": "1215", "gflops": "1190"},
          {"gpu_id": "42924", "gpu_index": "0", "pass": "true"},
          {"gpu_id": "1337", "gpu_index": "1", "pass": "false"}
        ]
      },
      "gpup": {"RVS-GPUP-TC1": [{"gpu_id": 42924, "gpu_index": 0, "pass": true}]}
    }"#;

    #[test]
    fn records_with_pass_are_results() {
        let r = parse(TWO_GPUS).unwrap();
        assert_eq!(r.version.as_deref(), Some("1.2.0"));
        assert_eq!(r.records.len(), 3, "{r:?}");
        let failed: Vec<_> = r.records.iter().filter(|x| !x.pass).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].gpu_id, Some(1337));
        assert_eq!(failed[0].module, "gst");
        assert_eq!(failed[0].action, "gst-1215Tflops-4K4K8K-rand-fp8");
        assert!(
            r.records
                .iter()
                .any(|x| x.module == "gpup" && x.gpu_index == Some(0))
        );
    }

    #[test]
    fn stray_trailing_braces_are_stripped_and_junk_is_an_error() {
        let r = parse(&format!("{TWO_GPUS}}}\n}}")).unwrap();
        assert_eq!(r.records.len(), 3);
        for bad in ["", "   ", "not json", "[1,2]", "{\"gst\": ", "}}}}"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostile_names_and_counts_are_bounded() {
        let long = "A".repeat(10_000);
        let recs: Vec<String> = (0..MAX_RECORDS + 5)
            .map(|i| format!(r#"{{"gpu_id":"{i}","pass":"true"}}"#))
            .collect();
        let text = format!(
            r#"{{"gst\u001b[31m": {{"{long}": [{}, {{"gpu_id":"1","pass":"maybe"}}]}}}}"#,
            recs.join(",")
        );
        let r = parse(&text).unwrap();
        assert_eq!(r.records.len(), MAX_RECORDS);
        assert_eq!(r.dropped, 6);
        assert_eq!(r.records[0].action.len(), MAX_NAME);
        assert_eq!(r.records[0].module, "gst?[31m");
        // A gpu_id that is no number is none.
        let r = parse(r#"{"m":{"a":[{"gpu_id":"1; rm -rf /","pass":"false"}]}}"#).unwrap();
        assert_eq!(r.records[0].gpu_id, None);
    }
}
