//! The neuron (AWS Trainium, Inferentia) grammar against the driver's own format strings: each format in
//! [`FORMATS`] must stand verbatim in the driver line held at its cite (`neuron/driver-lines.tsv`,
//! aws-neuron/aws-neuron-driver at fca19f7d, held because CI cannot fetch GitHub); rendered as the kernel
//! prints it (`pr_fmt` `"neuron:<func>: "`, neuron_reset.c:9) behind a dmesg timestamp, the analysis must
//! report the listed event on the listed device. AWS's `NEURON_HW_ERR` lines are taken from AWS's own agent's
//! tests (`neuron/eks-agent-lines.tsv`), and a user-space write of one into `/dev/kmsg`, or a look-alike,
//! yields nothing.

use std::path::{Path, PathBuf};

use gpu_diag::facts::{GpuFacts, GpuVendor, KernelLogFacts, NodeFacts, Reading};
use gpu_diag::finding::Severity;
use gpu_diag::kernel_log::report::{DecodedDetail, EventKind, XidReport, analyze};
use gpu_diag::options::AnalysisOptions;

#[path = "../support/kernel_formats.rs"]
mod harness;

use harness::{Misread, dmesg, printf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/neuron")
}

/// (cite in driver-lines.tsv, the function `pr_fmt` names, the format, its arguments, the event, the device).
type Format = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

const FORMATS: &[Format] = &[
    (
        "neuron_reset.c:111",
        "nr_reset_thread_fn",
        "nd%d: initiating %s reset request %u\\n",
        &["3", "device", "7"],
        "reset_start",
        "neuron3",
    ),
    (
        "neuron_reset.c:111",
        "nr_reset_thread_fn",
        "nd%d: initiating %s reset request %u\\n",
        &["12", "TPB", "8"],
        "reset_start",
        "neuron12",
    ),
    (
        "neuron_reset.c:119",
        "nr_reset_thread_fn",
        "nd%d: reset request %u failed\\n",
        &["3", "7"],
        "reset_failed",
        "neuron3",
    ),
    (
        "neuron_reset.c:129",
        "nr_reset_thread_fn",
        "nd%d: reset request %u was initiated, but failed to complete\\n",
        &["5", "9"],
        "reset_incomplete",
        "neuron5",
    ),
    (
        "neuron_reset.c:137",
        "nr_reset_thread_fn",
        "nd%d: failed to initialize dma after reset\\n",
        &["6"],
        "reset_dma_failed",
        "neuron6",
    ),
    (
        "neuron_reset.c:144",
        "nr_reset_thread_fn",
        "nd%d: failed to complete post reset configuration\\n",
        &["7"],
        "reset_config_failed",
        "neuron7",
    ),
    (
        "neuron_reset.c:148",
        "nr_reset_thread_fn",
        "nd%d: reset request %u completed\\n",
        &["3", "7"],
        "reset_done",
        "neuron3",
    ),
    (
        "neuron_dma.c:270",
        "ndma_memcpy_wait_for_completion",
        "DMA completion timeout on nd%02d for %s q%d desc count %u\\n",
        &["4", "UDMA_ENG_33", "0", "16"],
        "dma_timeout",
        "neuron4",
    ),
    (
        "neuron_cdev.c:2397",
        "ncdev_hbm_scrub_wait_for_cmpl",
        "Scrub failed for nd%d HBM %d\\n",
        &["9", "2"],
        "hbm_scrub_failed",
        "neuron9",
    ),
];

fn held(file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    harness::rows(&text, 2)
        .into_iter()
        .map(|c| (c[0].to_string(), c[1].to_string()))
        .collect()
}

fn node(lines: Vec<String>) -> NodeFacts {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_862_400.0);
    f.gpus = (0..16)
        .map(|i| GpuFacts {
            index: i,
            vendor: GpuVendor::Neuron,
            name: Reading::Ok("AWS Trainium2".into()),
            ..GpuFacts::default()
        })
        .collect();
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "test".into(),
        lines,
        truncated: false,
    });
    f
}

/// What the analysis made of one line: (catalog id, device).
fn read(line: &str) -> (Vec<(String, Option<String>)>, XidReport) {
    let rep = analyze(&node(vec![line.to_string()]), &AnalysisOptions::default());
    let got = rep
        .events
        .iter()
        .zip(&rep.event_details)
        .filter(|(e, _)| e.kind == EventKind::Neuron)
        .map(|(_, d)| match &d.decoded {
            Some(DecodedDetail::Neuron { event, device }) => (event.clone(), device.clone()),
            other => panic!("a neuron event decoded as {other:?}"),
        })
        .collect();
    (got, rep)
}

#[test]
fn driver_formats_stand_verbatim_in_the_held_source_and_read_as_their_events() {
    let src = held("driver-lines.tsv");
    let line_at = |cite: &str| {
        src.iter()
            .find(|(c, _)| c == cite)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| panic!("{cite} is not held in driver-lines.tsv"))
    };
    // Every line goes through pr_fmt with KBUILD_MODNAME `neuron`.
    assert!(line_at("Kbuild:1").contains("obj-m += neuron.o"));
    for f in ["neuron_reset.c:9", "neuron_dma.c:6"] {
        assert!(
            line_at(f).contains(r#"#define pr_fmt(fmt) "%s:%s: " fmt, KBUILD_MODNAME, __func__"#),
            "{f}"
        );
    }
    let mut misread = Misread::default();
    for (cite, func, format, args, event, device) in FORMATS {
        assert!(
            line_at(cite).contains(&format!("\"{format}\"")),
            "{cite}: {format:?} is not in the held line {:?}",
            line_at(cite)
        );
        let msg = printf(
            format.trim_end_matches("\\n"),
            &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        let line = dmesg(&format!("neuron:{func}: {msg}"));
        misread.line();
        let (got, rep) = read(&line);
        // The same event is judged alike by every tool that reports it (kernel log, health, describe).
        if let Some(off) = harness::one_judgment(&node(vec![line.clone()])) {
            misread.push(format!("{cite}: {off}"));
        }
        for (e, d) in rep.events.iter().zip(&rep.event_details) {
            if e.mnemonic.is_none() || d.severity.is_none() || d.action.is_none() {
                misread.push(format!("{cite}: {line:?} has no catalog entry or class"));
            }
        }
        misread.compare(
            cite,
            &line,
            vec![(event.to_string(), Some(device.to_string()))],
            got,
        );
    }
    misread.assert_none();
}

#[test]
fn aws_hw_error_lines_are_critical_and_a_user_space_write_is_nothing() {
    let lines: Vec<String> = held("eks-agent-lines.tsv")
        .into_iter()
        .filter(|(c, _)| c.starts_with("monitors/neuron/monitor_test.go"))
        .filter_map(|(_, l)| {
            let start = l.find("kernel: NEURON_HW_ERR=")?;
            let rest = &l[start + "kernel: ".len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
        // The whole lines only (monitor_test.go:205 builds one from parts).
        .filter(|t| t.ends_with(" affecting neuron devices"))
        .collect();
    assert!(lines.len() >= 4, "{lines:?}");
    for text in &lines {
        // The kernel's own record (facility 0): an event, critical, drained and reset in AWS's words.
        let (got, rep) = read(&format!("3,100,5000000,-;{text}"));
        if let Some(off) = harness::one_judgment(&node(vec![format!("3,100,5000000,-;{text}")])) {
            panic!("{text}: {off}");
        }
        assert_eq!(got.len(), 1, "{text}: {:?}", rep.events);
        assert!(got[0].0.starts_with("hw_") && got[0].1.is_none(), "{got:?}");
        let f = rep
            .findings
            .iter()
            .find(|f| f.code.starts_with("neuron."))
            .unwrap_or_else(|| panic!("{:#?}", rep.findings));
        assert_eq!(f.severity, Severity::Critical, "{f:?}");
        assert!(
            f.action.detail.contains("/sys/class/neuron_device/"),
            "{f:?}"
        );
        // The same text written into /dev/kmsg from user space (facility user): not the kernel's.
        let (got, rep) = read(&format!("12,101,5000001,-;{text}"));
        assert!(
            got.is_empty() && rep.events.is_empty(),
            "{text}: {:?}",
            rep.events
        );
    }
}

#[test]
fn look_alike_lines_are_not_events() {
    for line in [
        "[ 1.0] neuron:nr_reset_thread_fn: nd3: reset request 7 failed, retrying",
        "[ 1.0] neuron: nd3: reset request 7 failed",
        "[ 1.0] mlx5_core 0000:19:00.0: nd3: reset request 7 failed",
        "[ 1.0] someuser: neuron:nr_reset_thread_fn: nd3: reset request 7 failed",
        "[ 1.0] NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR",
        "[ 1.0] neuron-monitor: NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR affecting neuron devices",
        "[ 1.0] neuron:ndma_memcpy_wait_for_completion: DMA completion timeout on ndx for a q1 desc count 2",
    ] {
        let (got, rep) = read(line);
        assert!(
            got.is_empty() && rep.events.is_empty(),
            "{line:?} read as {:?}",
            rep.events
        );
    }
}
