//! `dcgmi diag -j` output read into plain data, for DCGM 3.x and 4.x alike.
//!
//! Shapes (NVIDIA/DCGM `dcgmi/Diag.cpp` `HelperJsonBuildOutput`, keys in `nvvs/include/NvvsJsonStrings.h`,
//! `testing/python3/dcgm_diag_schema.json`, v3.3.9 and v4.6.0; ../shared/reference/dcgm.md section 3):
//! - 3.x: root `"DCGM GPU Diagnostic"`, top-level `version`, `Driver Version Detected`, `GPU Device IDs`;
//!   display test names ("GPU Memory", "PCIe"), one test per level-1 check in category `Deployment`;
//!   `gpu_id` a string in plugin results and an integer (only when an error exists) in Deployment
//!   results; Deployment warning entries spell their text `warnings`; warning arrays may hold `null`
//!   holes; `info` a string.
//! - 4.x: root `"DCGM Diagnostic"`, `metadata.version`, `entity_groups`; canonical test names
//!   (`software`, `memory`, `pcie`, ...); `entity_group`/`entity_group_id`/`entity_id`; `info` an array;
//!   `test_summary` per test.
//! - Both: a start failure prints only `{<root>: {"version": .., "runtime_error": ".."}}`; `--iterations`
//!   wraps the runs as `{"iterations": [..], "Overall Result": ..}`.
//!
//! Unknown fields are ignored. Everything kept is bounded (runs, tests, results, messages, text), so a
//! hostile document costs bounded memory once parsed and a bounded answer; what was left out is counted.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limits::{MAX_INFO, MAX_RESULTS, MAX_RUNS, MAX_TESTS, MAX_TEXT, MAX_WARNINGS, clip};

/// Which DCGM's JSON a run was printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DcgmFormat {
    /// Root `"DCGM GPU Diagnostic"` (DCGM 3.x).
    V3,
    /// Root `"DCGM Diagnostic"` (DCGM 4.x).
    V4,
}

/// A result's status as dcgmi printed it. dcgmi's JSON prints a WARN as `"Fail"` (section 3 of the
/// reference); `Warn` is kept for the human table's word, should a wrapper print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrintedStatus {
    Pass,
    Skip,
    Warn,
    Fail,
    NotRun,
    /// Any other word, clipped.
    Other(String),
}

impl PrintedStatus {
    fn read(v: Option<&Value>) -> PrintedStatus {
        let s = v.and_then(Value::as_str).unwrap_or("");
        match s.trim().to_ascii_lowercase().as_str() {
            "pass" | "passed" => PrintedStatus::Pass,
            "skip" | "skipped" => PrintedStatus::Skip,
            "warn" | "warning" => PrintedStatus::Warn,
            "fail" | "failed" => PrintedStatus::Fail,
            "not run" | "not_run" | "notrun" => PrintedStatus::NotRun,
            _ => PrintedStatus::Other(clip(s, 32)),
        }
    }
}

/// One warning or error entry (`warning`/`warnings` text, `error_id`, `error_category`, `error_severity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintedWarning {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_category: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_severity: Option<i64>,
}

/// One entity's result of one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintedResult {
    /// The GPU (DCGM's GPU id: the NVML index in an embedded engine); absent where the result names no
    /// GPU (a 3.x Deployment check that passed: it holds for every GPU of the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// A non-GPU entity (`CPU 0`) the result is about instead; such results are kept but judge no GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_entity: Option<String>,
    pub status: PrintedStatus,
    pub warnings: Vec<PrintedWarning>,
    pub info: Vec<String>,
}

/// One test of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintedTest {
    /// Canonical name (4.x's plugin name; 3.x display names mapped: "GPU Memory" -> `memory`; every 3.x
    /// Deployment check -> `software`).
    pub name: String,
    /// The level-1 check a 3.x Deployment test is ("Persistence Mode"); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    pub category: String,
    pub results: Vec<PrintedResult>,
    /// 4.x `test_summary.status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_status: Option<PrintedStatus>,
    /// 4.x `test_summary.warnings` that name no entity (a global error of the test).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary_warnings: Vec<PrintedWarning>,
}

/// One run of `dcgmi diag` (one iteration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintedRun {
    pub format: DcgmFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dcgm_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// Why DCGM could not start the run (the only content of a start failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_error: Option<String>,
    pub tests: Vec<PrintedTest>,
}

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PrintedDiag {
    pub runs: Vec<PrintedRun>,
    /// `--iterations`' `"Overall Result"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_result: Option<String>,
    /// Runs, tests, results, messages or characters left out by the bounds.
    pub left_out: u64,
}

/// Why a text is no diagnostic document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("dcgmi printed nothing")]
    Empty,
    #[error("dcgmi's output is not JSON: {0}")]
    NotJson(String),
    #[error(
        "dcgmi's JSON has no \"DCGM GPU Diagnostic\" (3.x), \"DCGM Diagnostic\" (4.x) nor \"iterations\" key"
    )]
    NoDiagnostic,
}

const ROOT_V3: &str = "DCGM GPU Diagnostic";
const ROOT_V4: &str = "DCGM Diagnostic";

/// Read dcgmi's stdout. Text before the first `{` (a banner or a warning line) is skipped.
pub fn parse(text: &str) -> Result<PrintedDiag, ParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ParseError::Empty);
    }
    let start = t
        .find('{')
        .ok_or_else(|| ParseError::NotJson(clip(t, 120)))?;
    // Only the first document: a second (some wrappers print one per iteration) is ignored.
    let mut de = serde_json::Deserializer::from_str(&t[start..]).into_iter::<Value>();
    let v = match de.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(ParseError::NotJson(clip(&e.to_string(), 200))),
        None => return Err(ParseError::Empty),
    };
    let mut left_out = 0u64;
    let mut runs = Vec::new();
    let mut overall_result = None;
    if let Some(its) = v.get("iterations").and_then(Value::as_array) {
        overall_result = v
            .get("Overall Result")
            .and_then(Value::as_str)
            .map(|s| clip(s, 32));
        for (i, it) in its.iter().enumerate() {
            if i >= MAX_RUNS {
                left_out += 1;
                continue;
            }
            if let Some(r) = run(it, &mut left_out) {
                runs.push(r);
            }
        }
        if runs.is_empty() && its.is_empty() {
            return Err(ParseError::NoDiagnostic);
        }
    } else {
        runs.push(run(&v, &mut left_out).ok_or(ParseError::NoDiagnostic)?);
    }
    Ok(PrintedDiag {
        runs,
        overall_result,
        left_out,
    })
}

fn str_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(clip(s, 64)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn run(doc: &Value, left_out: &mut u64) -> Option<PrintedRun> {
    let (format, body) = if let Some(b) = doc.get(ROOT_V4) {
        (DcgmFormat::V4, b)
    } else {
        (DcgmFormat::V3, doc.get(ROOT_V3)?)
    };
    let meta = doc.get("metadata");
    let dcgm_version = str_of(meta.and_then(|m| m.get("version")))
        .or_else(|| str_of(doc.get("version")))
        .or_else(|| str_of(body.get("version")));
    let driver_version = str_of(meta.and_then(|m| m.get("Driver Version Detected")))
        .or_else(|| str_of(doc.get("Driver Version Detected")));
    let runtime_error = body
        .get("runtime_error")
        .and_then(Value::as_str)
        .map(|s| clip(s.trim(), MAX_TEXT));
    let mut tests = Vec::new();
    for cat in body
        .get("test_categories")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let category = cat
            .get("category")
            .and_then(Value::as_str)
            .map(|s| clip(s, 32))
            .unwrap_or_default();
        for t in cat
            .get("tests")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if tests.len() >= MAX_TESTS {
                *left_out += 1;
                continue;
            }
            tests.push(test(t, &category, format, left_out));
        }
    }
    Some(PrintedRun {
        format,
        dcgm_version,
        driver_version,
        runtime_error,
        tests,
    })
}

/// 3.x display names (`dcgmi/Diag.cpp` v3.3.9, `PluginStrings.h`) to 4.x's canonical plugin names.
fn canonical(display: &str, category: &str, format: DcgmFormat) -> (String, Option<String>) {
    let lower = display.trim().to_ascii_lowercase();
    let mapped = match lower.as_str() {
        "gpu memory" | "memory" => "memory",
        "pcie" => "pcie",
        "diagnostic" => "diagnostic",
        "sm stress" | "sm_stress" => "sm_stress",
        "targeted stress" | "targeted_stress" => "targeted_stress",
        "targeted power" | "targeted_power" => "targeted_power",
        "memory bandwidth" | "memory_bandwidth" => "memory_bandwidth",
        "memtest" => "memtest",
        "pulse test" | "pulse_test" => "pulse_test",
        "eud test" | "eud" => "eud",
        "cpu eud test" | "cpu_eud" => "cpu_eud",
        "context create" | "context_create" => "context_create",
        "nvbandwidth" => "nvbandwidth",
        "software" => "software",
        _ => "",
    };
    if !mapped.is_empty() {
        return (mapped.to_string(), None);
    }
    // 3.x prints one test per level-1 check in Deployment: all of them are 4.x's `software`.
    if format == DcgmFormat::V3 && category.eq_ignore_ascii_case("deployment") {
        return ("software".into(), Some(clip(display, 64)));
    }
    (clip(&lower.replace(' ', "_"), 64), None)
}

fn test(t: &Value, category: &str, format: DcgmFormat, left_out: &mut u64) -> PrintedTest {
    let display = t.get("name").and_then(Value::as_str).unwrap_or("?");
    let (name, check) = canonical(display, category, format);
    let mut results = Vec::new();
    for r in t
        .get("results")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if results.len() >= MAX_RESULTS {
            *left_out += 1;
            continue;
        }
        if r.is_object() {
            results.push(result(r, left_out));
        }
    }
    let summary = t.get("test_summary");
    PrintedTest {
        name,
        check,
        category: category.to_string(),
        results,
        summary_status: summary.map(|s| PrintedStatus::read(s.get("status"))),
        summary_warnings: summary.map(|s| warnings(s, left_out)).unwrap_or_default(),
    }
}

/// A GPU id as 3.x (string or integer) and 4.x (`entity_id` with group GPU) print it.
fn gpu_of(r: &Value) -> (Option<u32>, Option<String>) {
    let group = r.get("entity_group").and_then(Value::as_str);
    let group_id = r.get("entity_group_id").and_then(Value::as_i64);
    let id = |v: Option<&Value>| -> Option<u32> {
        match v? {
            Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    if let Some(e) = id(r.get("entity_id")) {
        let is_gpu = match (group, group_id) {
            (Some(g), _) => g.eq_ignore_ascii_case("gpu"),
            (None, Some(gid)) => gid == 1,
            (None, None) => true,
        };
        return if is_gpu {
            (Some(e), None)
        } else {
            (
                None,
                Some(clip(&format!("{} {e}", group.unwrap_or("entity")), 32)),
            )
        };
    }
    (id(r.get("gpu_id")), None)
}

fn warnings(r: &Value, left_out: &mut u64) -> Vec<PrintedWarning> {
    let mut out = Vec::new();
    // 4.x `warnings`; 3.x too (with `null` holes), and 4.x's `errors` where a build prints them apart.
    for key in ["warnings", "errors"] {
        for w in r
            .get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if !w.is_object() {
                continue;
            }
            if out.len() >= MAX_WARNINGS {
                *left_out += 1;
                continue;
            }
            // 3.x Deployment entries spell the text key `warnings` (a source quirk).
            let text = ["warning", "warnings", "error", "message"]
                .iter()
                .find_map(|k| w.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            if text.chars().count() > MAX_TEXT {
                *left_out += 1;
            }
            let num = |k: &str| -> Option<i64> {
                match w.get(k)? {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
            };
            out.push(PrintedWarning {
                text: clip(text, MAX_TEXT),
                error_id: num("error_id").and_then(|n| u32::try_from(n).ok()),
                error_category: num("error_category"),
                error_severity: num("error_severity"),
            });
        }
    }
    out
}

fn result(r: &Value, left_out: &mut u64) -> PrintedResult {
    let (gpu, other_entity) = gpu_of(r);
    let mut info = Vec::new();
    match r.get("info") {
        Some(Value::String(s)) if !s.is_empty() => info.push(clip(s, MAX_TEXT)),
        Some(Value::Array(a)) => {
            for s in a.iter().filter_map(Value::as_str) {
                if info.len() >= MAX_INFO {
                    *left_out += 1;
                    continue;
                }
                info.push(clip(s, MAX_TEXT));
            }
        }
        _ => {}
    }
    PrintedResult {
        gpu,
        other_entity,
        status: PrintedStatus::read(r.get("status")),
        warnings: warnings(r, left_out),
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_3x_document_with_its_quirks() {
        let doc = r#"{ "version": "3.3.9", "Driver Version Detected": "550.54.15",
          "GPU Device IDs": ["2330","2330"],
          "DCGM GPU Diagnostic": { "test_categories": [
            { "category": "Deployment", "tests": [
              { "name": "Persistence Mode", "results": [ { "status": "Fail", "gpu_id": 0,
                  "warnings": [ null, { "warnings": "Persistence mode for GPU 0 is disabled.", "error_id": 29, "error_category": 8, "error_severity": 5 } ] } ] } ] },
            { "category": "Hardware", "tests": [
              { "name": "GPU Memory", "results": [
                { "gpu_id": "0", "status": "Pass", "info": "Allocated 79 GB" },
                { "gpu_id": "1", "status": "Fail",
                  "warnings": [ { "warning": "bad", "error_id": 52, "error_category": 10, "error_severity": 2 } ] } ] } ] } ] },
          "something_new": 1 }"#;
        let d = parse(doc).unwrap();
        let r = &d.runs[0];
        assert_eq!(r.format, DcgmFormat::V3);
        assert_eq!(r.dcgm_version.as_deref(), Some("3.3.9"));
        assert_eq!(r.driver_version.as_deref(), Some("550.54.15"));
        assert_eq!(r.tests[0].name, "software");
        assert_eq!(r.tests[0].check.as_deref(), Some("Persistence Mode"));
        assert_eq!(r.tests[0].results[0].gpu, Some(0));
        assert_eq!(r.tests[0].results[0].warnings.len(), 1);
        assert_eq!(r.tests[0].results[0].warnings[0].error_id, Some(29));
        assert_eq!(r.tests[1].name, "memory");
        assert_eq!(r.tests[1].results[0].gpu, Some(0));
        assert_eq!(r.tests[1].results[0].info, ["Allocated 79 GB"]);
        assert_eq!(r.tests[1].results[1].gpu, Some(1));
        assert_eq!(r.tests[1].results[1].status, PrintedStatus::Fail);
    }

    #[test]
    fn a_4x_document_with_entities_and_summaries() {
        let doc = r#"{ "DCGM Diagnostic": { "test_categories": [
            { "category": "Hardware", "tests": [ { "name": "memory",
              "results": [ { "entity_group": "GPU", "entity_group_id": 1, "entity_id": 3, "status": "Pass", "info": ["a", "b"] },
                           { "entity_group": "CPU", "entity_group_id": 7, "entity_id": 0, "status": "Pass" } ],
              "test_summary": { "status": "Pass" } } ] } ] },
          "entity_groups": [], "metadata": { "version": "4.6.0", "Driver Version Detected": "580.95.05" } }"#;
        let d = parse(doc).unwrap();
        let r = &d.runs[0];
        assert_eq!(r.format, DcgmFormat::V4);
        assert_eq!(r.dcgm_version.as_deref(), Some("4.6.0"));
        assert_eq!(r.tests[0].results[0].gpu, Some(3));
        assert_eq!(r.tests[0].results[0].info.len(), 2);
        assert_eq!(r.tests[0].results[1].gpu, None);
        assert_eq!(r.tests[0].results[1].other_entity.as_deref(), Some("CPU 0"));
        assert_eq!(r.tests[0].summary_status, Some(PrintedStatus::Pass));
    }

    #[test]
    fn runtime_errors_iterations_and_garbage() {
        let d = parse(r#"{"DCGM Diagnostic": {"version": "4.2.3", "runtime_error": "Error: unable to establish a connection"}}"#).unwrap();
        assert_eq!(d.runs[0].dcgm_version.as_deref(), Some("4.2.3"));
        assert!(
            d.runs[0]
                .runtime_error
                .as_deref()
                .unwrap()
                .starts_with("Error")
        );
        let d = parse(r#"{"iterations": [ {"DCGM GPU Diagnostic": {"test_categories": []}}, {"DCGM GPU Diagnostic": {"test_categories": []}} ], "Overall Result": "Pass"}"#).unwrap();
        assert_eq!(d.runs.len(), 2);
        assert_eq!(d.overall_result.as_deref(), Some("Pass"));
        assert_eq!(parse("  "), Err(ParseError::Empty));
        assert!(matches!(parse("Error: bad"), Err(ParseError::NotJson(_))));
        assert!(matches!(parse("{\"a\": "), Err(ParseError::NotJson(_))));
        assert_eq!(parse("{\"a\": 1}"), Err(ParseError::NoDiagnostic));
        // A banner line before the document is skipped.
        assert!(parse("Successfully ran diagnostic\n{\"DCGM Diagnostic\": {}}").is_ok());
    }

    #[test]
    fn a_hostile_document_is_bounded() {
        let result = r#"{"entity_group":"GPU","entity_id":0,"status":"Fail","warnings":[WS]}"#
            .replace(
                "WS",
                &vec![format!(r#"{{"warning":"{}","error_id":52}}"#, "x".repeat(5000)); 100]
                    .join(","),
            );
        let results = vec![result; 600].join(",");
        let tests = vec![format!(r#"{{"name":"memory","results":[{results}]}}"#); 3].join(",");
        let doc = format!(
            r#"{{"DCGM Diagnostic":{{"test_categories":[{{"category":"Hardware","tests":[{tests}]}}]}}}}"#
        );
        let d = parse(&doc).unwrap();
        let t = &d.runs[0].tests[0];
        assert_eq!(t.results.len(), MAX_RESULTS);
        assert_eq!(t.results[0].warnings.len(), MAX_WARNINGS);
        assert!(t.results[0].warnings[0].text.chars().count() <= MAX_TEXT + 1);
        assert!(d.left_out > 0);
    }
}
