//! rvs's JSON result file (`rvs ... -j <path>`), as RVS's logger writes it (ROCm/ROCmValidationSuite
//! `src/rvsliblogger.cpp` @21584e1):
//! `{"version": "1.0", "<module>": {"<action>": [record, ...], "<action>": [...]}}`. The module key is
//! written once, by the first action (`JsonActionStartNodeCreate`, lines 409-425, `initModule`), so in a
//! recipe of several modules every action sits under the first action's module: a record's action is
//! its key, its module is the recipe's, never the file's label. The file is written as it goes
//! (`ToFile` per record) and closed at the run's end (`rvs/src/rvsexec_do_yaml.cpp:920-922`): an rvs that
//! dies mid-run (babel's `failed()` is `abort()`, `babel.so/include/rvs_memworker.h:77-98`) leaves it
//! cut, and what it holds up to the cut is read ([`Results::cut_in`]).
//!
//! What a record says, per module (values are strings, `rvslognodestring.cpp:61-66`):
//! - `pass`: `"true"`/`"false"` beside `gpu_id`/`gpu_index` (gpup `gpup.so/src/action.cpp:485-505`, peqt
//!   `peqt.so/src/action.cpp:199-210,323-327`, gst `gst.so/src/gst_worker.cpp:376-381`, iet
//!   `iet.so/src/iet_worker.cpp:277-281`, mem).
//! - `err`: gst's record of a GPU that could not run (`gst.so/src/gst_worker.cpp:610-616,638-644`, via
//!   `include/rvs_util.h:180-201` `log_to_json`): no `pass`; a failure.
//! - babel: one record per GPU whose `pass` sits in a nested `results` list, one per subtest, and is only
//!   ever `"true"` (`babel.so/src/rvs_stress.cpp:215-230,287-311,442-528`); a failing GPU has no record.
//! - pbqt: `srcgpu`/`dstgpu` (KFD gpu_ids), no `gpu_id`, `pass` only ever `"true"`
//!   (`pbqt.so/src/action.cpp:355-369`), even for a pair whose transfer never completed, which then has
//!   `throughput: "(not measured)"` (lines 873-882, 941-942).
//! - pebb: `srccpu` (a NUMA node, no GPU) and `dstgpu`, likewise (`pebb.so/src/action.cpp:456-467,
//!   590-601,645`).
//!
//! Records without any of these are progress. ROCm/device-metrics-exporter `pkg/testrunner/rvs.go` strips
//! the stray trailing `}` RVS of ROCm 7.1.1 writes; so does this.
//!
//! The file is the runner's words in a pod this probe started, but a tenant's image can put any `rvs` on
//! a node: every name is clipped and made printable, and the counts are bounded.

use serde_json::Value;

/// At most this many result records are read (8 GPUs x ~20 actions of the longest recipe, and pbqt's
/// 56 GPU pairs per action, with room).
pub const MAX_RECORDS: usize = 4096;
/// The file is read up to this size.
pub const MAX_FILE_BYTES: usize = 8 << 20;
/// Module and action names are clipped to this many characters.
pub const MAX_NAME: usize = 64;

/// What one record says of its GPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// An `err` record: the GPU could not run the action (RVS's words).
    Error(String),
    /// `pass: "true"` of a transfer with no bandwidth measured: the transfer never completed.
    NotMeasured,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        *self == Verdict::Pass
    }
}

/// One result record of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The module key the record sits under: the logger's label, the first action's module.
    pub module: String,
    /// The action's name (its key in the file).
    pub action: String,
    /// The KFD gpu_ids the record names: `gpu_id`, or a transfer's `srcgpu` and `dstgpu`.
    pub gpus: Vec<u32>,
    pub gpu_index: Option<u32>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Results {
    pub version: Option<String>,
    pub records: Vec<Record>,
    /// Records past [`MAX_RECORDS`], or with a `pass` that is neither true nor false.
    pub dropped: usize,
    /// The file was cut (rvs ended before closing it): `Some(action)` when it was cut inside that
    /// action's list, `Some(None)` when between actions.
    pub cut_in: Option<Option<String>>,
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

fn pass(v: &Value) -> Option<bool> {
    match v {
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// What a record says: `None` for progress, `Some(None)` for a `pass` that is no verdict.
fn verdict(r: &Value) -> Option<Option<Verdict>> {
    if let Some(e) = r.get("err") {
        let text = e.as_str().map_or_else(|| e.to_string(), str::to_string);
        return Some(Some(Verdict::Error(
            crate::dcgm::limits::clip(&clean(&text), 200).to_string(),
        )));
    }
    if let Some(p) = r.get("pass") {
        return Some(pass(p).map(|ok| {
            let unmeasured = r
                .get("throughput")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("not measured"));
            match (ok, unmeasured) {
                (true, true) => Verdict::NotMeasured,
                (true, false) => Verdict::Pass,
                (false, _) => Verdict::Fail,
            }
        }));
    }
    // babel: the verdicts of the record's subtests.
    let subs = r.get("results")?.as_array()?;
    let mut all = Vec::new();
    for s in subs {
        match s.get("pass").map(pass) {
            Some(Some(p)) => all.push(p),
            Some(None) => return Some(None),
            None => {}
        }
    }
    if all.is_empty() {
        return None;
    }
    Some(Some(if all.iter().all(|p| *p) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }))
}

/// The file as JSON, tolerating up to 10 stray trailing `}` (RVS of ROCm 7.1.1).
fn load(text: &str) -> Result<Value, (String, bool)> {
    let mut t = text.trim_end();
    let mut first = None;
    for _ in 0..=10 {
        match serde_json::from_str::<Value>(t) {
            Ok(v) => return Ok(v),
            Err(e) => {
                first.get_or_insert_with(|| (e.to_string(), e.is_eof()));
                match t.strip_suffix('}') {
                    Some(rest) if e.is_syntax() => t = rest.trim_end(),
                    _ => break,
                }
            }
        }
    }
    Err(first.unwrap_or_default())
}

/// A file rvs left cut: its text up to the last complete record, closed; and the action whose list was
/// open at the cut. `None` when the cut is not inside the logger's shape (then the file is unreadable).
fn salvage(text: &str) -> Option<(String, Option<String>)> {
    let b = text.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let (mut in_str, mut esc) = (false, false);
    let mut str_start = 0;
    let mut last_key: Option<(usize, usize)> = None;
    let mut open_action: Option<(usize, usize)> = None;
    // (where to cut, the brackets open there, the action list open there)
    type Span = Option<(usize, usize)>;
    let mut safe: Option<(usize, Vec<u8>, Span)> = None;
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
                last_key = Some((str_start, i));
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                str_start = i + 1;
            }
            b'{' | b'[' => {
                if stack.len() == 2 && c == b'[' {
                    open_action = last_key;
                }
                stack.push(c);
                if stack.len() > 64 {
                    return None;
                }
            }
            b'}' | b']' => {
                let open = stack.pop()?;
                if (open == b'{') != (c == b'}') {
                    return None;
                }
                if stack.len() == 2 && c == b']' {
                    open_action = None;
                }
            }
            _ => continue,
        }
        // A point the file can be closed at: the top object, a module object or an action list open,
        // nothing half-written inside a record.
        let shape_ok = matches!(stack.as_slice(), [b'{'] | [b'{', b'{'] | [b'{', b'{', b'[']);
        if shape_ok {
            safe = Some((i + 1, stack.clone(), open_action));
        }
    }
    let (at, stack, open) = safe?;
    let mut out = text[..at].to_string();
    for c in stack.iter().rev() {
        out.push(if *c == b'{' { '}' } else { ']' });
    }
    Some((out, open.map(|(s, e)| clean(&text[s..e]))))
}

/// Read rvs's result file.
pub fn parse(text: &str) -> Result<Results, String> {
    if text.trim().is_empty() {
        return Err("rvs's result file is empty".into());
    }
    let mut cut_in = None;
    let v = match load(text) {
        Ok(v) => v,
        Err((e, eof)) => {
            let salvaged = eof
                .then(|| salvage(text))
                .flatten()
                .and_then(|(t, open)| Some((serde_json::from_str::<Value>(&t).ok()?, open)));
            match salvaged {
                Some((v, open)) => {
                    cut_in = Some(open);
                    v
                }
                None => return Err(format!("rvs's result file is not JSON: {e}")),
            }
        }
    };
    let Value::Object(top) = v else {
        return Err(
            "rvs's result file is no object of modules (an RVS older than the module/action JSON)"
                .into(),
        );
    };
    let mut out = Results {
        cut_in,
        ..Results::default()
    };
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
                let Some(v) = verdict(r) else {
                    continue;
                };
                let Some(v) = v else {
                    out.dropped += 1;
                    continue;
                };
                if out.records.len() >= MAX_RECORDS {
                    out.dropped += 1;
                    continue;
                }
                let mut gpus = Vec::new();
                for k in ["gpu_id", "srcgpu", "dstgpu"] {
                    if let Some(id) = number(r.get(k))
                        && !gpus.contains(&id)
                    {
                        gpus.push(id);
                    }
                }
                out.records.push(Record {
                    module: clean(module),
                    action: clean(action),
                    gpus,
                    gpu_index: number(r.get("gpu_index")),
                    verdict: v,
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
    /// `gpu_id` gst writes beside `gpu_index` (`include/rvs_util.h:180-201`).
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
        assert_eq!(r.cut_in, None);
        let failed: Vec<_> = r.records.iter().filter(|x| !x.verdict.passed()).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].gpus, [1337]);
        assert_eq!(failed[0].verdict, Verdict::Fail);
        assert_eq!(failed[0].action, "gst-1215Tflops-4K4K8K-rand-fp8");
        assert!(
            r.records
                .iter()
                .any(|x| x.module == "gpup" && x.gpu_index == Some(0))
        );
    }

    /// A level-2 file as RVS's logger writes it: the module key once, from the first action (peqt), every
    /// later action under it (`src/rvsliblogger.cpp:394-425`); babel's pass nested in `results`
    /// (`babel.so/src/rvs_stress.cpp:442-528`); pbqt's `srcgpu`/`dstgpu` (`pbqt.so/src/action.cpp:355-369`)
    /// with a pair never measured (873-882); pebb's `srccpu`/`dstgpu` (`pebb.so/src/action.cpp:456-467`);
    /// a gst `err` record (`gst.so/src/gst_worker.cpp:610-616`).
    const LEVEL_2: &str = r#"{
"version":"1.0",
"peqt":{
  "pcie_capability":[
{
  "gpu_id" : "42924",
  "gpu_index" : "0",
  "link_cap_max_speed" : "32 GT/s",
  "pass" : "true"
}],
  "hbm_basic":[
{
  "gpu_id" : "42924",
  "gpu_index" : "0",
  "array_size" : "268435456",
  "total_size" : "3072",
  "iterations" : "100",
  "results" : [
  {
    "subtest" : "Copy",
    "mibytes_per_sec" : "4000000",
    "pass" : "true"
  },
  {
    "subtest" : "Mul",
    "mibytes_per_sec" : "4000000",
    "pass" : "true"
  }]
}],
  "xgmi_interface":[
{
  "srcgpu" : "42924",
  "dstgpu" : "1337",
  "intf" : "XGMI",
  "throughput" : "48.100 GBps",
  "pass" : "true"
},
{
  "srcgpu" : "1337",
  "dstgpu" : "42924",
  "intf" : "XGMI",
  "throughput" : "(not measured)",
  "pass" : "true"
}],
  "pcie_interface":[
{
  "srccpu" : "0",
  "dstgpu" : "1337",
  "intf" : "PCIe",
  "throughput" : "50.000 GBps",
  "pass" : "true"
}],
  "compute":[
{
  "gpu_id" : "1337",
  "gpu_index" : "1",
  "err" : "hipMalloc failed"
}]
  }
}"#;

    #[test]
    fn each_modules_records_read_as_rvs_writes_them() {
        let r = parse(LEVEL_2).unwrap();
        assert_eq!(r.version.as_deref(), Some("1.0"));
        let mut got: Vec<(String, Vec<u32>, Verdict)> = r
            .records
            .iter()
            .map(|x| (x.action.clone(), x.gpus.clone(), x.verdict.clone()))
            .collect();
        // serde_json's map reads actions in name order.
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            [
                (
                    "compute".into(),
                    vec![1337],
                    Verdict::Error("hipMalloc failed".into())
                ),
                ("hbm_basic".into(), vec![42924], Verdict::Pass),
                ("pcie_capability".into(), vec![42924], Verdict::Pass),
                // pebb's source is a CPU node: only its GPU is named.
                ("pcie_interface".into(), vec![1337], Verdict::Pass),
                ("xgmi_interface".into(), vec![42924, 1337], Verdict::Pass),
                (
                    "xgmi_interface".into(),
                    vec![1337, 42924],
                    Verdict::NotMeasured
                ),
            ]
        );
        // Every record sits under the logger's one module label.
        assert!(r.records.iter().all(|x| x.module == "peqt"));
        // A babel subtest that is not true fails its record.
        let bad = LEVEL_2.replacen(
            "\"Mul\",\n    \"mibytes_per_sec\" : \"4000000\",\n    \"pass\" : \"true\"",
            "\"Mul\",\n    \"mibytes_per_sec\" : \"4000000\",\n    \"pass\" : \"false\"",
            1,
        );
        assert_ne!(bad, LEVEL_2);
        let r = parse(&bad).unwrap();
        let hbm = r.records.iter().find(|x| x.action == "hbm_basic").unwrap();
        assert_eq!(hbm.verdict, Verdict::Fail);
    }

    #[test]
    fn a_file_cut_by_rvs_dying_is_read_up_to_its_last_record() {
        // babel's failed() is abort() (babel.so/include/rvs_memworker.h:77-98): the file stops where
        // the logger last wrote, inside the open action's list.
        let at = LEVEL_2.find("],\n  \"xgmi_interface\"").unwrap();
        let cut = &LEVEL_2[..at];
        let r = parse(cut).unwrap();
        assert_eq!(r.records.len(), 2, "{r:?}");
        assert_eq!(r.cut_in, Some(Some("hbm_basic".into())));
        // Cut between two actions (the next not yet opened).
        let r = parse(&LEVEL_2[..at + 2]).unwrap();
        assert_eq!((r.records.len(), r.cut_in), (2, Some(None)));
        // Cut in the middle of a record: that record is not read.
        let at = LEVEL_2.find("\"intf\" : \"PCIe\"").unwrap();
        let r = parse(&LEVEL_2[..at]).unwrap();
        assert_eq!(r.cut_in, Some(Some("pcie_interface".into())));
        assert_eq!(r.records.len(), 4);
        // Right after an action opened its list.
        let r = parse("{\n\"version\":\"1.0\",\n\"babel\":{\n  \"hbm\":[\n").unwrap();
        assert_eq!((r.records.len(), r.cut_in), (0, Some(Some("hbm".into()))));
        // A syntax error is no cut file.
        assert!(parse("{\"a\":{\"b\":[{\"pass\":\"true\"}}}").is_err());
    }

    #[test]
    fn stray_trailing_braces_are_stripped_and_junk_is_an_error() {
        let r = parse(&format!("{TWO_GPUS}}}\n}}")).unwrap();
        assert_eq!(r.records.len(), 3);
        assert_eq!(r.cut_in, None);
        for bad in ["", "   ", "not json", "[1,2]", "}}}}", "{\"gst\" 1"] {
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
        assert!(r.records[0].gpus.is_empty());
        // Deep nesting in a cut file is refused, not recursed.
        let deep = format!("{{\"m\":{{\"a\":[{}", "[".repeat(100_000));
        assert!(parse(&deep).is_err());
    }
}
