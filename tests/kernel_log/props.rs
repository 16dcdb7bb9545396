//! Properties of the grammar and classification: every catalog code in every line form parses and
//! carries the catalog's actions; arbitrary, truncated and huge input never panics.

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::finding::{ActionKind, Severity};
use gpu_diag::kernel_log::grammar;
use gpu_diag::kernel_log::nvidia_catalog;
use gpu_diag::kernel_log::report::{EventKind, XidReport, analyze};
use gpu_diag::options::AnalysisOptions;
use proptest::prelude::*;

#[path = "../../fuzz/fuzz_targets/xid_lines_body.rs"]
mod fuzz_body;

const BOOT: f64 = 1_795_247_940.0;
const NOW: f64 = 1_795_262_400.0;

fn report(lines: Vec<String>) -> XidReport {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(BOOT);
    f.host.now_unix = Reading::Ok(NOW);
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "test".into(),
        lines,
        truncated: false,
    });
    analyze(&f, &AnalysisOptions::default())
}

#[derive(Debug, Clone, Copy)]
enum Envelope {
    Kmsg,
    Dmesg,
    Syslog,
    SyslogBracket,
    Iso,
    Plain,
}
const ENVELOPES: &[Envelope] = &[
    Envelope::Kmsg,
    Envelope::Dmesg,
    Envelope::Syslog,
    Envelope::SyslogBracket,
    Envelope::Iso,
    Envelope::Plain,
];

fn wrap(env: Envelope, text: &str) -> String {
    match env {
        Envelope::Kmsg => format!("4,1234,61500000,-;{text}"),
        Envelope::Dmesg => format!("[   61.500000] {text}"),
        Envelope::Syslog => format!("Nov 21 09:00:00 gpu-node-5 kernel: {text}"),
        Envelope::SyslogBracket => {
            format!("Nov 21 09:00:00 gpu-node-5 kernel: [   61.500000] {text}")
        }
        Envelope::Iso => format!("2026-11-21T09:00:00.000000+00:00 gpu-node-5 kernel: {text}"),
        Envelope::Plain => text.to_string(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Proc {
    Known,
    UnknownQuoted,
    Absent,
}
const PROCS: &[Proc] = &[Proc::Known, Proc::UnknownQuoted, Proc::Absent];

#[derive(Debug, Clone, Copy)]
enum Mig {
    None,
    Gi,
    GiCi,
}
const MIGS: &[Mig] = &[Mig::None, Mig::Gi, Mig::GiCi];

fn xid_text(
    code: u32,
    pci: &str,
    proc_: Proc,
    mig: Mig,
    pid: u32,
    name: &str,
    msg: &str,
) -> String {
    let mig = match mig {
        Mig::None => String::new(),
        Mig::Gi => " GPU-I:03".into(),
        Mig::GiCi => " GPU-I:03 GPU-CI:01".into(),
    };
    let proc_ = match proc_ {
        Proc::Known => format!("pid={pid}, name={name}, "),
        Proc::UnknownQuoted => "pid='<unknown>', name=<unknown>, ".into(),
        Proc::Absent => String::new(),
    };
    format!("NVRM: Xid (PCI:{pci}{mig}): {code}, {proc_}{msg}")
}

fn check_event(r: &XidReport, code: u32, proc_: Proc, mig: Mig, pid: u32, name: &str) {
    assert_eq!(r.events.len(), 1, "{:#?}", r.events);
    let e = &r.events[0];
    assert_eq!(e.kind, EventKind::Xid);
    assert_eq!(e.code, Some(code));
    assert_eq!(e.pci_bus_id.as_deref(), Some("0000:3b:00.0"));
    match proc_ {
        Proc::Known => {
            assert_eq!(e.pid, Some(pid));
            assert_eq!(e.process_name.as_deref(), Some(name));
        }
        _ => assert_eq!((e.pid, e.process_name.as_deref()), (None, None)),
    }
    let (gi, ci) = match mig {
        Mig::None => (None, None),
        Mig::Gi => (Some(3), None),
        Mig::GiCi => (Some(3), Some(1)),
    };
    assert_eq!((e.gpu_instance_id, e.compute_instance_id), (gi, ci));
    let entry = nvidia_catalog::lookup(code).expect("catalog code");
    assert_eq!(e.mnemonic.as_deref(), Some(entry.mnemonic.as_str()));
    assert_eq!(e.immediate_action, entry.immediate_action);
    assert_eq!(e.investigatory_action, entry.investigatory_action);
    // The finding follows the bucket wherever no workflow or message token refines it.
    let f = r
        .findings
        .iter()
        .find(|f| f.code == format!("xid.{code}"))
        .expect("finding");
    let plain_bucket =
        !matches!(code, 13 | 31 | 45 | 48 | 74 | 94 | 95 | 144..=150 | 154 | 162..=176);
    if plain_bucket {
        let (sev, kind) = match entry.immediate_action.as_deref() {
            Some("RESTART_APP") => (Severity::Warning, ActionKind::RestartApplication),
            Some("IGNORE") => (Severity::Info, ActionKind::None),
            Some("RESET_GPU") => (Severity::Critical, ActionKind::ResetGpu),
            Some("RESTART_BM") | Some("RESTART_VM") => (Severity::Critical, ActionKind::RebootNode),
            Some("CHECK_MECHANICALS") => (Severity::Critical, ActionKind::CheckMechanicals),
            Some("UPDATE_SWFW") => (Severity::Warning, ActionKind::UpdateSoftware),
            Some("CHECK_UVM") => (Severity::Warning, ActionKind::ResetGpuWhenDrained),
            Some("CONTACT_SUPPORT") => (Severity::Warning, ActionKind::ContactSupport),
            other => panic!("unexpected bucket {other:?} for {code}"),
        };
        assert_eq!((f.severity, f.action.kind), (sev, kind), "code {code}");
    }
    if entry.is_driver_only() {
        assert_eq!(
            (f.severity, f.action.kind),
            (Severity::Warning, ActionKind::Investigate)
        );
    }
}

/// Exhaustive: every catalog code in every envelope, process form, MIG form and hex case.
#[test]
fn every_catalog_code_in_every_line_form() {
    let mut n = 0;
    let pcis = ["0000:3b:00", "0000:3B:00"];
    for e in nvidia_catalog::entries() {
        for &env in ENVELOPES {
            for &proc_ in PROCS {
                for &mig in MIGS {
                    for pci in pcis {
                        let text =
                            xid_text(e.code, pci, proc_, mig, 4242, "python3", "some driver text");
                        let r = report(vec![wrap(env, &text)]);
                        check_event(&r, e.code, proc_, mig, 4242, "python3");
                        if !matches!(env, Envelope::Plain) {
                            assert!(r.events[0].timestamp.is_some(), "{env:?}");
                        }
                        n += 1;
                    }
                }
            }
        }
    }
    let forms = ENVELOPES.len() * PROCS.len() * MIGS.len() * pcis.len();
    assert_eq!(n, nvidia_catalog::entries().len() * forms);
}

#[test]
fn unknown_codes_are_reported_never_cordon_class() {
    let past_the_catalog = nvidia_catalog::entries().len() as u32 + 1;
    for code in [0u32, past_the_catalog, 200, 999, 65_535, 4_000_000_000] {
        for &env in ENVELOPES {
            let r = report(vec![wrap(
                env,
                &format!("NVRM: Xid (PCI:0000:3b:00): {code}, whatever"),
            )]);
            assert_eq!(r.events.len(), 1);
            assert_eq!(r.events[0].code, Some(code));
            assert_eq!(r.events[0].mnemonic, None);
            let f = r
                .findings
                .iter()
                .find(|f| f.code == "xid.unknown_code")
                .unwrap();
            assert_eq!(
                (f.severity, f.action.kind),
                (Severity::Warning, ActionKind::Investigate)
            );
        }
    }
}

fn any_envelope() -> impl Strategy<Value = Envelope> {
    prop::sample::select(ENVELOPES.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_fields_round_trip(
        e in prop::sample::select(nvidia_catalog::entries().to_vec()),
        env in any_envelope(),
        proc_ in prop::sample::select(PROCS.to_vec()),
        mig in prop::sample::select(MIGS.to_vec()),
        pid in 1u32..4_000_000,
        name in "[A-Za-z0-9_.-]{1,15}",
        msg in "[A-Za-z0-9 .:()_=-]{0,120}",
    ) {
        let text = xid_text(e.code, "0000:3b:00", proc_, mig, pid, &name, &msg);
        let r = report(vec![wrap(env, &text)]);
        check_event(&r, e.code, proc_, mig, pid, &name);
    }

    #[test]
    fn pci_ids_normalise(domain in 0u32..0x10000, bus in 0u32..0x100, dev in 0u32..0x20, upper in any::<bool>()) {
        let pci = format!("{domain:04x}:{bus:02x}:{dev:02x}");
        let pci = if upper { pci.to_uppercase() } else { pci };
        let r = report(vec![format!("NVRM: Xid (PCI:{pci}): 79, GPU has fallen off the bus.")]);
        prop_assert_eq!(r.events[0].pci_bus_id.clone(), Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.0")));
    }

    /// The fuzz target's own body on random bytes (any encoding, any line breaks).
    #[test]
    fn fuzz_target_body_on_random_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        fuzz_body::check(&data);
    }

    #[test]
    fn arbitrary_text_never_panics(lines in prop::collection::vec(".{0,300}", 0..20)) {
        let r = report(lines);
        prop_assert_eq!(r.events.len(), r.event_details.len());
    }

    #[test]
    fn arbitrary_nvidia_shaped_text_never_panics(
        prefix in prop::sample::select(vec!["NVRM: Xid (", "NVRM: Xid (PCI:", "nvidia-nvswitch0: SXid (PCI:", "NVRM: GPU at PCI:", "NVRM: The NVIDIA GPU ", "NVRM: GPU ", "4,1,2,-;NVRM: Xid (", "[ 1.0] NVRM: Xid (", "Nov 21 09:00:00 h kernel: NVRM: Xid ("]),
        tail in "[0-9a-fA-F:.()GPUIC -x,;=\\\\]{0,80}",
    ) {
        let r = report(vec![format!("{prefix}{tail}")]);
        prop_assert_eq!(r.events.len(), r.event_details.len());
    }
}

/// The fuzz target's body replays the kernel-log corpus, and a local `cargo fuzz` corpus where one exists
/// (fuzz/corpus/xid_lines, not committed): whole files, and every file cut at every line.
#[test]
fn fuzz_target_body_replays_the_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::new();
    for (dir, required) in [
        (root.join("tests/kernel_log/corpus"), true),
        (root.join("fuzz/corpus/xid_lines"), false),
    ] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if !required => {
                eprintln!("{}: {e} (no local fuzz corpus)", dir.display());
                continue;
            }
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_file() && (!required || p.extension().is_some_and(|e| e == "log")) {
                inputs.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let logs = inputs
        .iter()
        .filter(|(p, _)| p.starts_with(root.join("tests/kernel_log/corpus")))
        .count();
    assert!(
        logs >= 5,
        "the kernel-log corpus went missing: {logs} files"
    );
    let mut events = 0;
    for (p, data) in &inputs {
        let r = fuzz_body::check(data);
        events += r.events.len();
        for (i, _) in data.iter().enumerate().filter(|(_, b)| **b == b'\n') {
            fuzz_body::check(&data[..i]);
        }
        eprintln!("{}: {} events", p.display(), r.events.len());
    }
    // The replay reaches the analysis: the corpus's XID lines come out as events.
    assert!(
        events > 0,
        "no input gave an event: the body no longer analyses"
    );
}

/// A stable-toolchain stand-in for the fuzzer: every truncation of every corpus line, random bytes
/// and huge lines go through the whole analysis without panicking.
#[test]
fn truncated_random_and_huge_lines_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/corpus");
    let mut lines: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "log") {
            lines.extend(
                std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    for l in &lines {
        for (i, _) in l.char_indices() {
            let _ = grammar::parse_line(&l[..i]);
            let _ = grammar::parse_envelope(&l[..i], 1, grammar::Clock::default());
        }
        let _ = report(vec![
            l[..l.len() / 2].to_string(),
            l[l.len() / 3..].to_string(),
        ]);
    }
    // Pseudo-random bytes (xorshift: deterministic, no extra dependency).
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..2000 {
        let len = (next() % 400) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        let _ = report(vec![String::from_utf8_lossy(&bytes).into_owned()]);
    }
    // Huge lines: a 4 MiB Xid payload, a line of nothing but opening parens, deep nesting of prefixes.
    let huge = format!(
        "NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=x, {}",
        "A".repeat(4 << 20)
    );
    let r = report(vec![huge]);
    assert_eq!(r.events.len(), 1);
    assert!(r.events[0].message.chars().count() <= grammar::MAX_MESSAGE_CHARS + 1);
    let _ = report(vec!["NVRM: Xid (".repeat(100_000)]);
    let _ = report(vec![format!(
        "4,1,{},-;{}",
        "9".repeat(5000),
        "\\x0a".repeat(100_000)
    )]);
    let _ = report(vec!["[".repeat(100_000), "Nov 21 ".repeat(50_000)]);
    let mut cont = vec!["[ 1.0] NVRM: The NVIDIA GPU 0000:3b:00.0".to_string()];
    cont.extend(std::iter::repeat_n(
        " NVRM: (PCI ID: 10de:2330) installed in this system has".to_string(),
        10_000,
    ));
    let _ = report(cont);
}
