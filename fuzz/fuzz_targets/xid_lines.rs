//! Fuzz the kernel-log grammar and the whole `xid` analysis: any bytes, split into lines, must give a
//! report (never a panic) whose events and details stay in step.
#![no_main]

use gpu_diag::options::AnalysisOptions;
use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::xid::{grammar, report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for l in &lines {
        let _ = grammar::parse_line(l);
    }
    let mut facts = NodeFacts::default();
    facts.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    facts.host.now_unix = Reading::Ok(1_795_262_400.0);
    facts.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "fuzz".into(),
        lines,
        truncated: false,
    });
    let opts = AnalysisOptions {
        since_unix: Some(1_795_250_000.0),
        ..AnalysisOptions::default()
    };
    let r = report::analyze(&facts, &opts);
    assert_eq!(r.events.len(), r.event_details.len());
    let _ = serde_json::to_string(&r);
});
