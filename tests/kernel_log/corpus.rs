//! The kernel-log corpus (one file per format and driver era) through the whole analysis: each file's
//! report is a reviewed snapshot, plus assertions on what must (and must not) come out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::finding::{ActionKind, Severity, Verdict};
use gpu_diag::kernel_log::report::{EventKind, XidReport, analyze};
use gpu_diag::options::AnalysisOptions;

mod envelopes;

const EVENT_FIELDS: &[&str] = &[
    "kind",
    "code",
    "pci_bus_id",
    "pid",
    "process_name",
    "gpu_instance_id",
    "compute_instance_id",
    "gpu_uuid",
    "message",
    "timestamp",
    "line",
    "mnemonic",
    "immediate_action",
    "investigatory_action",
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/corpus")
}

fn read_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(corpus_dir().join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn facts(name: &str, inventory: bool) -> NodeFacts {
    let mut f: NodeFacts = if inventory {
        serde_json::from_str(&std::fs::read_to_string(corpus_dir().join("inventory.json")).unwrap())
            .unwrap()
    } else {
        let mut f = NodeFacts::default();
        f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
        f.host.now_unix = Reading::Ok(1_795_262_400.0);
        f
    };
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: origin(name),
        lines: read_lines(name),
        truncated: false,
    });
    f
}

/// The kmsg and dmesg files stand for the node's own ring buffer, read live (their uptimes take the
/// node's boot time); the syslog files are log files (their dates are their own).
fn origin(name: &str) -> String {
    if name.starts_with("dmesg") || name.starts_with("kmsg") {
        "kmsg".into()
    } else {
        format!("file:{name}")
    }
}

fn run(name: &str) -> XidReport {
    analyze(&facts(name, true), &AnalysisOptions::default())
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/kernel_log"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Every event serialises with exactly the contract's fields.
fn assert_event_shape(r: &XidReport) {
    let v = serde_json::to_value(r).unwrap();
    for e in v["events"].as_array().unwrap() {
        let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, EVENT_FIELDS.iter().copied().collect(), "{e}");
    }
    assert_eq!(r.events.len(), r.event_details.len());
}

fn event_lines(r: &XidReport) -> Vec<usize> {
    r.events.iter().filter_map(|e| e.line).collect()
}

fn finding<'a>(r: &'a XidReport, code: &str, gpu: Option<u32>) -> &'a gpu_diag::finding::Finding {
    r.findings
        .iter()
        .find(|f| f.code == code && f.gpu == gpu)
        .unwrap_or_else(|| panic!("no finding {code} on {gpu:?}: {:#?}", r.findings))
}

#[test]
fn corpus_snapshots() {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "corpus files: {names:?}");
    for name in names {
        let r = run(&name);
        assert_event_shape(&r);
        let bare = analyze(&facts(&name, false), &AnalysisOptions::default());
        assert_event_shape(&bare);
        // Without an inventory the same events come out; only the GPU mapping is thinner.
        assert_eq!(r.events.len(), bare.events.len(), "{name}");
        settings().bind(|| {
            insta::assert_json_snapshot!(format!("corpus-{}", name.trim_end_matches(".log")), r);
        });
    }
}

#[test]
fn dmesg_r535_era() {
    let r = run("dmesg-r535.log");
    // Exactly the NVIDIA event lines: no event from the loader, AER, peermem, mlx5, serial or
    // "GPU is lost" lines, and the three crash-dump lines are one event.
    assert_eq!(
        event_lines(&r),
        vec![
            9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 29, 30
        ]
    );
    let kinds: Vec<EventKind> = r.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == EventKind::CrashDump).count(),
        1
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::FallenOffBus)
            .count(),
        1
    );

    // pid='<unknown>' is no pid, not a parse failure.
    let e63 = r.events.iter().find(|e| e.code == Some(63)).unwrap();
    assert_eq!((e63.pid, e63.process_name.as_deref()), (None, None));
    assert_eq!(e63.pci_bus_id.as_deref(), Some("0000:af:00.0"));
    assert_eq!(
        e63.gpu_uuid.as_deref(),
        Some("GPU-cafebabe-0000-1111-2222-333344445555")
    );
    assert_eq!(
        e63.timestamp.as_deref(),
        Some("2026-11-21T09:22:20.000002Z")
    );

    // Repeated 13 on GPC 1/TPC 3 of GPU 0 -> suspect hardware; a single 13 on GPU 1 -> application.
    assert_eq!(
        finding(&r, "xid.13", Some(0)).action.kind,
        ActionKind::Investigate
    );
    assert_eq!(
        finding(&r, "xid.13", Some(1)).action.kind,
        ActionKind::RestartApplication
    );
    // 45 alone in its burst -> restart Fabric Manager.
    assert_eq!(
        finding(&r, "xid.45", Some(1)).action.kind,
        ActionKind::RestartFabricManager
    );
    // 31 twice, in two runs, on one GPU only -> suspect hardware.
    assert_eq!(
        finding(&r, "xid.31", Some(2)).action.kind,
        ActionKind::Investigate
    );
    // 48 with 63 in the same burst -> drain and reset; 45 beside it follows the other Xid.
    let f48 = finding(&r, "xid.48", Some(3));
    assert_eq!(
        (f48.severity, f48.action.kind),
        (Severity::Critical, ActionKind::DrainAndResetGpu)
    );
    assert_eq!(finding(&r, "xid.45", Some(3)).severity, Severity::Info);
    // Xid 79 and the device line for the same GPU (0000:d8:00 vs 0000:d8:00.0) are one finding.
    assert!(r.findings.iter().all(|f| f.code != "gpu.fallen_off_bus"));
    let f79 = r.findings.iter().find(|f| f.code == "xid.79").unwrap();
    assert_eq!(f79.action.kind, ActionKind::RebootNode);
    assert!(f79.summary.contains("3×"), "{}", f79.summary);
    // 79 is sticky: the second one, 50 minutes later, is still the same burst.
    let d8 = r
        .gpus
        .iter()
        .find(|g| g.pci_bus_id.as_deref() == Some("0000:d8:00.0"))
        .unwrap();
    assert_eq!(d8.index, None, "a GPU that fell off is missing from NVML");
    assert_eq!(d8.bursts.len(), 1);
    assert!(d8.bursts[0].sticky);
    assert!(d8.fallen_off_bus);
    // Bursts split after three minutes of silence.
    let g0 = r.gpus.iter().find(|g| g.index == Some(0)).unwrap();
    assert_eq!(g0.bursts.len(), 2);
    assert_eq!(g0.bursts[0].codes, vec![13, 43]);
    assert_eq!(r.node.verdict, Verdict::Unhealthy);
    assert_eq!(r.node.action.kind, ActionKind::RebootNode);
}

#[test]
fn kmsg_r570_era() {
    let r = run("kmsg-r570.log");
    assert_event_shape(&r);
    // Dictionary lines are not records, the escaped three-line form is one event.
    let fallen: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::FallenOffBus)
        .collect();
    assert_eq!(fallen.len(), 1);
    assert_eq!(fallen[0].pci_bus_id.as_deref(), Some("0000:e1:00.0"));
    assert!(fallen[0].message.contains("not responding to commands"));
    assert_eq!(fallen[0].line, Some(17));
    // MIG attribution.
    let e31 = r.events.iter().find(|e| e.code == Some(31)).unwrap();
    assert_eq!(
        (e31.gpu_instance_id, e31.compute_instance_id),
        (Some(5), Some(1))
    );
    let d31 = &r.event_details[r.events.iter().position(|e| e.code == Some(31)).unwrap()];
    assert_eq!(
        d31.mig_device_uuid.as_deref(),
        Some("MIG-5a5a5a5a-0000-5000-8000-000000000501")
    );
    let e13 = r.events.iter().find(|e| e.code == Some(13)).unwrap();
    assert_eq!(
        (e13.gpu_instance_id, e13.compute_instance_id),
        (Some(9), None)
    );
    // kmsg microseconds + boot time.
    assert_eq!(
        e31.timestamp.as_deref(),
        Some("2026-11-21T08:00:00.000002Z")
    );
    // 94 RST: No -> restart the app; 45 caused by it -> follow 94.
    assert_eq!(
        finding(&r, "xid.94", Some(5)).action.kind,
        ActionKind::RestartApplication
    );
    assert_eq!(finding(&r, "xid.45", Some(5)).severity, Severity::Info);
    // 95 RST: Yes -> reset; its 154 says the same and NVML field 230 agrees.
    assert_eq!(
        finding(&r, "xid.95", Some(6)).action.kind,
        ActionKind::ResetGpu
    );
    assert_eq!(
        finding(&r, "xid.154", Some(6)).action.kind,
        ActionKind::ResetGpu
    );
    // 154 transitions: the last one (reboot) is the driver's verdict; NVML agrees (2).
    let c1 = r.gpus.iter().find(|g| g.index == Some(7)).unwrap();
    assert_eq!(c1.last_recovery_transition.as_ref().unwrap().value, 2);
    assert_eq!(c1.action.kind, ActionKind::RebootNode);
    // 45 on the MIG GPU, in a later burst with no other Xid -> solo.
    assert_eq!(
        finding(&r, "xid.45", Some(4)).action.kind,
        ActionKind::RestartFabricManager
    );
    assert!(r.events.iter().any(|e| e.kind == EventKind::CrashDump));
}

#[test]
fn syslog_r575_era() {
    let r = run("syslog-r575.log");
    // No event from the non-kernel program echoing an Xid, the unsupported-GPU notice, the
    // probe-routine notice or AER.
    assert!(
        r.events
            .iter()
            .all(|e| e.line != Some(20) && e.line != Some(24))
    );
    assert!(
        r.events
            .iter()
            .all(|e| e.line.is_none_or(|l| !(24..=28).contains(&l))),
        "{:#?}",
        event_lines(&r)
    );
    // Journal multi-line entry -> one fallen-off-bus event.
    let fallen: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::FallenOffBus)
        .collect();
    assert_eq!(fallen.len(), 1);
    assert_eq!(fallen[0].line, Some(21));
    // Syslog dates take the year from "now"; ISO timestamps keep their own.
    let e149 = r.events.iter().find(|e| e.code == Some(149)).unwrap();
    assert_eq!(e149.timestamp.as_deref(), Some("2026-11-21T08:10:00Z"));
    assert_eq!(e149.pci_bus_id.as_deref(), Some("0018:01:00.0"));
    assert_eq!(
        finding(&r, "xid.149", Some(8)).action.kind,
        ActionKind::ResetGpu
    );
    assert_eq!(
        finding(&r, "xid.154", Some(8)).action.kind,
        ActionKind::DrainAndResetGpu
    );
    assert_eq!(finding(&r, "xid.145", Some(9)).severity, Severity::Warning);
    // 74 register decode: hw bits, ECC threshold only, sympathetic.
    assert_eq!(
        finding(&r, "xid.74", Some(10)).action.kind,
        ActionKind::Investigate
    );
    assert_eq!(
        finding(&r, "xid.74", Some(11)).action.kind,
        ActionKind::CheckMechanicals
    );
    assert_eq!(finding(&r, "xid.74", Some(12)).severity, Severity::Info);
    // SXids with and without severity, keyed per switch.
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.kind == EventKind::Sxid)
            .count(),
        4
    );
    assert_eq!(
        finding(&r, "sxid.fatal", None).action.kind,
        ActionKind::ResetGpu
    );
    assert_eq!(
        finding(&r, "sxid.non_fatal", None).severity,
        Severity::Warning
    );
    assert!(
        finding(&r, "sxid.unclassified", None)
            .summary
            .contains("2×")
    );
    // Both init-failure lines of the missing GPU.
    assert_eq!(
        r.events
            .iter()
            .filter(|e| e.kind == EventKind::InitFailure)
            .count(),
        2
    );
    // Unknown and driver-only codes are reported, never dropped, never cordon-class.
    let unknown = finding(&r, "xid.unknown_code", Some(9));
    assert_eq!(
        (unknown.severity, unknown.action.kind),
        (Severity::Warning, ActionKind::Investigate)
    );
    let e199 = r.events.iter().find(|e| e.code == Some(199)).unwrap();
    assert_eq!(
        (e199.mnemonic.as_deref(), e199.immediate_action.as_deref()),
        (None, None)
    );
    let f174 = finding(&r, "xid.174", Some(9));
    assert_eq!(f174.action.kind, ActionKind::Investigate);
    let e174 = r.events.iter().find(|e| e.code == Some(174)).unwrap();
    assert_eq!(
        e174.mnemonic.as_deref(),
        Some("ROBUST_CHANNEL_RESETCHANNEL_KILL_PROCESS_SILENT")
    );
    assert_eq!(e174.immediate_action, None);
    // Blank-action codes follow the project's policy.
    assert_eq!(
        finding(&r, "xid.165", Some(9)).action.kind,
        ActionKind::ContactSupport
    );
    assert_eq!(
        finding(&r, "xid.167", Some(9)).action.kind,
        ActionKind::ResetGpu
    );
    assert_eq!(finding(&r, "xid.162", Some(9)).severity, Severity::Info);
    let e162 = r.events.iter().find(|e| e.code == Some(162)).unwrap();
    assert_eq!(
        e162.timestamp.as_deref(),
        Some("2026-11-21T09:10:00.250000Z")
    );
}

#[test]
fn since_window_and_identity_lines() {
    let f = facts("dmesg-r535.log", false);
    // Boot 07:59:00; --since at boot + 5500 s keeps the 79s, the device line and the crash dump.
    let opts = AnalysisOptions {
        since_unix: Some(1_795_247_940.0 + 5500.0),
        ..AnalysisOptions::default()
    };
    let r = analyze(&f, &opts);
    assert_eq!(event_lines(&r), vec![25, 26, 29, 30]);
    assert_eq!(r.log.events_before_since, 15);
    // Without NVML the identity lines (outside the window) still map the PCI id to a UUID.
    let af = analyze(&f, &AnalysisOptions::default());
    let e48 = af.events.iter().find(|e| e.code == Some(48)).unwrap();
    assert_eq!(
        e48.gpu_uuid.as_deref(),
        Some("GPU-cafebabe-0000-1111-2222-333344445555")
    );
}

#[test]
fn unreadable_log_is_unknown_not_healthy() {
    let f = NodeFacts {
        kernel_log: Reading::Err(gpu_diag::facts::FieldError::new(
            gpu_diag::facts::FieldErrorKind::NoPermission,
        )),
        ..NodeFacts::default()
    };
    let r = analyze(&f, &AnalysisOptions::default());
    assert_eq!(r.node.verdict, Verdict::Unknown);
    assert!(r.events.is_empty());
    assert!(r.log.error.is_some());
}

/// A storm (an application faulting and restarting every 10 ms) appended to a corpus file: counts,
/// first/last times and findings stay exact, the event list is capped to samples, and whatever a
/// small log reports is unchanged by the storm's presence elsewhere.
#[test]
fn storm_is_counted_exactly_and_listed_in_samples() {
    use gpu_diag::kernel_log::report::{MAX_LISTED_EVENTS, SAMPLES_PER_GROUP};
    let base = facts("dmesg-r535.log", true);
    let small = analyze(&base, &AnalysisOptions::default());
    assert_eq!(small.log.events_not_listed, 0);
    let mut f = base.clone();
    let lines = match &mut f.kernel_log {
        Reading::Ok(k) => &mut k.lines,
        Reading::Err(_) => unreachable!(),
    };
    let n = 12_000usize;
    for i in 0..n {
        // dmesg seconds since boot, 10 ms apart, on a GPU the inventory knows (0000:3b:00).
        let t = 20_000.0 + i as f64 * 0.01;
        let pid = 50_000 + i / 2;
        lines.push(if i % 2 == 0 {
            format!("[{t:.6}] NVRM: Xid (PCI:0000:3b:00): 13, pid={pid}, name=python3, Graphics SM Warp Exception on (GPC 1, TPC 2, SM 0): Out Of Range Address")
        } else {
            format!("[{t:.6}] NVRM: Xid (PCI:0000:3b:00): 43, pid={pid}, name=python3, Ch 00000008")
        });
    }
    let r = analyze(&f, &AnalysisOptions::default());
    assert_event_shape(&r);
    let g = r
        .gpus
        .iter()
        .find(|g| g.pci_bus_id.as_deref() == Some("0000:3b:00.0"))
        .expect("GPU at 3b:00");
    let count = |code| g.xids.iter().find(|c| c.code == code).map(|c| c.count);
    let before = |code| {
        small
            .gpus
            .iter()
            .find(|g| g.pci_bus_id.as_deref() == Some("0000:3b:00.0"))
            .and_then(|g| g.xids.iter().find(|c| c.code == code))
            .map_or(0, |c| c.count)
    };
    assert_eq!(count(13), Some(before(13) + n / 2));
    assert_eq!(count(43), Some(before(43) + n / 2));
    let last43 = g.xids.iter().find(|c| c.code == 43).unwrap();
    assert_eq!(
        last43.last,
        r.events
            .iter()
            .rev()
            .find(|e| e.code == Some(43))
            .unwrap()
            .timestamp,
        "the last Xid 43 is listed"
    );
    // Listed: a few per GPU, kind and code; everything else counted.
    assert!(r.events.len() <= MAX_LISTED_EVENTS, "{}", r.events.len());
    let storm_listed = r
        .events
        .iter()
        .filter(|e| e.pci_bus_id.as_deref() == Some("0000:3b:00.0") && e.code == Some(13))
        .count();
    assert_eq!(storm_listed, SAMPLES_PER_GROUP + 1);
    let total = small.events.len() + n;
    assert_eq!(r.events.len() + r.log.events_not_listed, total);
    // Findings count every event and quote at most five lines plus the remainder.
    let f13 = finding(&r, "xid.13", g.index);
    assert!(
        f13.summary
            .contains(&format!("seen {}×", before(13) + n / 2)),
        "{}",
        f13.summary
    );
    assert!(f13.evidence.len() <= 7, "{:?}", f13.evidence);
    assert!(f13.evidence.iter().any(|e| e.starts_with("… and ")));
    // Same GPC/TPC over and over: the Xid 13 workflow calls it a hardware suspect.
    assert_eq!(f13.action.kind, ActionKind::Investigate);
    let json = serde_json::to_vec(&r).unwrap();
    assert!(json.len() < 400 * 1024, "report of {} bytes", json.len());
}

fn public(name: &str) -> XidReport {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/public");
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_262_400.0);
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: format!("file:{name}"),
        lines: std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect(),
        truncated: false,
    });
    analyze(&f, &AnalysisOptions::default())
}

/// Kernel lines people posted with other programs' output around them (tests/kernel_log/public/SOURCES.md):
/// exactly the kernel's own lines are events; a Go log, a test's output, JSON logs, an exporter's log,
/// another syslog tag and a fault injector's write into `/dev/kmsg` (facility `syslog`) are not.
#[test]
fn public_logs_other_programs_are_not_kernel_events() {
    let r = public("other-programs.log");
    assert_event_shape(&r);
    assert_eq!(event_lines(&r), vec![4, 9, 10, 12, 13, 14, 17]);
    let codes: Vec<Option<u32>> = r.events.iter().map(|e| e.code).collect();
    assert_eq!(
        codes,
        vec![
            Some(145),
            Some(45),
            Some(45),
            Some(120),
            Some(119),
            None,
            None
        ]
    );
    // Nothing from the quoted Xid 119 of 0002:00:00 or the injected Xid 79 of 0000:04:00.
    assert!(r.events.iter().all(|e| !matches!(
        e.pci_bus_id.as_deref(),
        Some("0002:00:00.0" | "0000:04:00.0")
    )));
    // `dmesg -T` times are that machine's wall clock, kept; a bare uptime of another machine is not
    // placed on this one's clock (1843 s after this node's boot would be a made-up time).
    assert_eq!(
        r.events[3].timestamp.as_deref(),
        Some("2022-07-25T16:46:04Z")
    );
    let fallen = &r.events[5];
    assert_eq!(fallen.kind, EventKind::FallenOffBus);
    assert_eq!(fallen.timestamp, None);
    assert_eq!(r.event_details[5].uptime_s, Some(1843.308145));
}

/// `talosctl dmesg` (tests/kernel_log/public/SOURCES.md): the kernel's line is an event at Talos's own time;
/// the same text written into kmsg by a program (facility `user`) is not.
#[test]
fn public_logs_talos_dmesg_keeps_its_time() {
    let r = public("talosctl-dmesg.log");
    assert_eq!(event_lines(&r), vec![4]);
    assert_eq!(r.events[0].code, Some(79));
    assert!(
        r.events[0]
            .timestamp
            .as_deref()
            .is_some_and(|t| t.starts_with("2025-03-10T11:52:01.104")),
        "{:?}",
        r.events[0].timestamp
    );
}

/// The same kernel logs read as files from another machine: the same events and bursts, but no uptime
/// is placed with this machine's boot time; each event keeps its uptime instead.
#[test]
fn a_log_file_keeps_its_uptimes() {
    for name in ["dmesg-r535.log", "kmsg-r570.log"] {
        let live = run(name);
        let mut f = facts(name, true);
        if let Reading::Ok(k) = &mut f.kernel_log {
            k.origin = format!("file:{name}");
        }
        let file = analyze(&f, &AnalysisOptions::default());
        assert_eq!(event_lines(&live), event_lines(&file), "{name}");
        let bursts =
            |r: &XidReport| -> Vec<usize> { r.gpus.iter().map(|g| g.bursts.len()).collect() };
        assert_eq!(bursts(&live), bursts(&file), "{name}");
        for (e, d) in file.events.iter().zip(&file.event_details) {
            if d.source == "kernel_log" {
                assert_eq!(e.timestamp, None, "{name}: {e:?}");
                assert!(d.uptime_s.is_some(), "{name}: {e:?}");
            }
        }
        assert!(live.event_details.iter().all(|d| d.uptime_s.is_none()));
    }
}
