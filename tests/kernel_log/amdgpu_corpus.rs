//! amdgpu kernel logs people posted publicly (`tests/kernel_log/amdgpu/`, sources in its `SOURCES.md`) through the
//! whole `xid` analysis, on a node whose inventory holds AMD GPUs: the right GPU (by PCI address, through
//! the same identity table NVIDIA events use), the right event and the right finding. Plus storms: bounded
//! memory and a linear pass, whatever the log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use gpu_diag::facts::{GpuFacts, GpuVendor, KernelLogFacts, NodeFacts, Reading};
use gpu_diag::finding::{ActionKind, Finding, Severity, Verdict};
use gpu_diag::kernel_log::grammar::parse_amdgpu;
use gpu_diag::kernel_log::report::{
    DecodedDetail, EventKind, MAX_EVENT_GROUPS, MAX_LISTED_EVENTS, XidReport, analyze,
};
use gpu_diag::options::AnalysisOptions;
use proptest::prelude::*;

#[path = "../support/gate.rs"]
mod gate;
#[path = "amdgpu_kernel_formats.rs"]
mod kernel_formats;

const BOOT: f64 = 1_795_247_940.0;
const NOW: f64 = 1_795_862_400.0;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/amdgpu")
}

/// A node with AMD GPUs at these PCI addresses, index in order.
fn node(bdfs: &[&str], lines: Vec<String>) -> NodeFacts {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(BOOT);
    f.host.now_unix = Reading::Ok(NOW);
    f.gpus = bdfs
        .iter()
        .enumerate()
        .map(|(i, b)| GpuFacts {
            index: i as u32,
            vendor: GpuVendor::Amd,
            name: Reading::Ok("AMD Instinct MI300X".into()),
            pci_bus_id: Reading::Ok((*b).to_string()),
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

fn run(name: &str, bdfs: &[&str]) -> XidReport {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    let r = analyze(
        &node(bdfs, text.lines().map(str::to_string).collect()),
        &AnalysisOptions::default(),
    );
    assert_eq!(r.events.len(), r.event_details.len());
    r
}

fn finding<'a>(r: &'a XidReport, code: &str, gpu: Option<u32>) -> &'a Finding {
    r.findings
        .iter()
        .find(|f| f.code == code && f.gpu == gpu)
        .unwrap_or_else(|| panic!("no finding {code} on {gpu:?}: {:#?}", r.findings))
}

fn mnemonics(r: &XidReport) -> Vec<&str> {
    r.events
        .iter()
        .filter_map(|e| e.mnemonic.as_deref())
        .collect()
}

#[test]
fn every_fixture_has_its_source() {
    let sources = std::fs::read_to_string(dir().join("SOURCES.md")).unwrap();
    for e in std::fs::read_dir(dir()).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") {
            assert!(
                sources.contains(&format!("`{name}`")),
                "{name} has no source"
            );
        }
    }
}

#[test]
fn mi300x_hive_fatal_with_aca_banks() {
    let gpus = ["0000:1c:00.0", "0000:42:00.0", "0000:55:00.0"];
    let r = run("mi300x-hive-fatal-aca.log", &gpus);
    assert_eq!(
        mnemonics(&r),
        ["ERREVENT_ATHUB_INTERRUPT", "ACA_BANK", "ACA_BANK"]
    );
    assert!(r.events.iter().all(|e| e.kind == EventKind::Amdgpu));
    let fatal = finding(&r, "amdgpu.fatal", Some(0));
    assert_eq!(
        (fatal.severity, fatal.action.kind),
        (Severity::Critical, ActionKind::ResetGpu)
    );
    assert!(
        fatal
            .action
            .detail
            .contains("amd-smi reset -G -g 0000:1c:00.0`"),
        "{}",
        fatal.action.detail
    );
    // The ROCm 6.2 bank dump decodes to an SMU bank with poison, on the GPU that printed it.
    let bank = finding(&r, "amdgpu.aca_bank", Some(2));
    assert_eq!(bank.severity, Severity::Warning);
    assert!(bank.summary.contains("smu"), "{}", bank.summary);
    let d = &r.event_details[2];
    assert_eq!(d.gpu_index, Some(2));
    match &d.decoded {
        Some(DecodedDetail::Amdgpu {
            aca: Some(a),
            event_id,
            ..
        }) => {
            assert_eq!(
                (a.unit.as_str(), a.poison, a.uncorrectable),
                ("smu", true, false)
            );
            assert_eq!((a.socket, a.die), (3, 0));
            assert_eq!(*event_id, Some(1));
        }
        other => panic!("{other:?}"),
    }
    // The event starts at the bank's first register line, with the dmesg time on the boot clock.
    assert_eq!(r.events[1].line, Some(3));
    assert_eq!(r.events[0].pci_bus_id.as_deref(), Some("0000:1c:00.0"));
    assert_eq!(r.node.verdict, Verdict::Unhealthy);
    settings().bind(|| insta::assert_json_snapshot!("amdgpu-mi300x-hive-fatal-aca", r));
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/kernel_log"));
    s.set_prepend_module_to_snapshot(false);
    s
}

#[test]
fn mi300x_uncorrectable_banks() {
    let r = run(
        "mi300x-hive-fatal-uc-banks.log",
        &["0000:4e:00.0", "0000:dd:00.0"],
    );
    assert_eq!(
        mnemonics(&r),
        ["ERREVENT_ATHUB_INTERRUPT", "ACA_BANK", "ACA_BANK"]
    );
    finding(&r, "amdgpu.fatal", Some(1));
    let bank = finding(&r, "amdgpu.aca_bank", Some(0));
    assert_eq!(
        (bank.severity, bank.action.kind),
        (Severity::Critical, ActionKind::ResetGpu)
    );
    assert!(bank.summary.contains("2×"), "{}", bank.summary);
}

#[test]
fn mi50_fatal_without_event_number() {
    let r = run("mi50-athub-reset.log", &["0000:e3:00.0"]);
    // The UVD note that names the same interrupt and the powerplay follow-ups are not events; the SMU
    // not answering during the reset is (vega20_smumgr.c `Failed to send message 0x%x, response 0x%x`).
    assert_eq!(
        mnemonics(&r),
        [
            "ERREVENT_ATHUB_INTERRUPT",
            "GPU_RESET",
            "SMU_HANG",
            "SMU_HANG"
        ]
    );
    finding(&r, "amdgpu.fatal", Some(0));
    assert!(
        finding(&r, "amdgpu.smu_hang", Some(0))
            .summary
            .contains("2×")
    );
    assert_eq!(
        finding(&r, "amdgpu.reset", Some(0)).severity,
        Severity::Warning
    );
}

#[test]
fn vm_faults_carry_process_and_address() {
    for (name, bdf, process, pid, addr) in [
        (
            "vm-fault-noretry.log",
            "0000:c6:00.0",
            "pt_main_thread",
            12924,
            "0x0000ae8570611000",
        ),
        (
            "vm-fault-inline-process.log",
            "0000:88:00.0",
            "ipython3",
            846049,
            "0x00007fe99dff7000",
        ),
    ] {
        let r = run(name, &[bdf]);
        // Two faults, each one event however many lines it spans; status lines are not events.
        assert_eq!(mnemonics(&r), ["VM_FAULT", "VM_FAULT"], "{name}");
        let e = &r.events[0];
        assert_eq!(
            (e.process_name.as_deref(), e.pid),
            (Some(process), Some(pid)),
            "{name}"
        );
        assert_eq!(e.line, Some(1));
        match &r.event_details[0].decoded {
            Some(DecodedDetail::Amdgpu { address, .. }) => {
                assert_eq!(address.as_deref(), Some(addr), "{name}")
            }
            other => panic!("{other:?}"),
        }
        let f = finding(&r, "amdgpu.vm_fault", Some(0));
        assert_eq!(
            (f.severity, f.action.kind),
            (Severity::Warning, ActionKind::RestartApplication)
        );
        assert_eq!(r.log.unrecognized_nvidia_lines, 0);
    }
}

#[test]
fn ring_timeouts_and_their_recovery() {
    // A ring reset that succeeded is not a dead GPU: a warning to investigate, no reset asked.
    let r = run("ring-timeout-ring-reset.log", &["0000:03:00.0"]);
    assert_eq!(
        mnemonics(&r),
        ["RING_TIMEOUT", "RING_RESET_SUCCEEDED", "VM_FAULT"]
    );
    assert_eq!(r.events[0].process_name.as_deref(), Some("gst-plugin-scan"));
    assert_eq!(r.events[0].pid, Some(4087));
    let f = finding(&r, "amdgpu.ring_timeout", Some(0));
    assert_eq!(
        (f.severity, f.action.kind),
        (Severity::Warning, ActionKind::Investigate)
    );
    assert!(f.summary.contains("1×"), "{}", f.summary);
    // The page fault's head is the last line: it is taken as it is at the end of the log.
    assert_eq!(r.events[2].line, Some(14));
    assert!(r.findings.iter().all(|f| f.code != "amdgpu.reset_failed"));

    // The DRM_ERROR form names no device; the reset the same timeout handler starts right after it
    // (`amdgpu_job_timedout` -> `amdgpu_device_gpu_recover`) names the GPU that hung.
    let r = run("ring-timeout-gpu-reset.log", &["0000:08:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "GPU_RESET",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED",
            "VRAM_LOST",
            "GPU_RESET_SUCCEEDED"
        ]
    );
    assert_eq!(r.events[0].process_name.as_deref(), Some("cosmic-comp"));
    assert_eq!(r.events[0].pci_bus_id.as_deref(), Some("0000:08:00.0"));
    finding(&r, "amdgpu.ring_timeout", Some(0));
    let reset = finding(&r, "amdgpu.reset", Some(0));
    assert!(reset.summary.contains("1×"), "{}", reset.summary);
    // `[drm] VRAM is lost` has no device: it is the GPU being reset.
    assert_eq!(r.events[4].pci_bus_id.as_deref(), Some("0000:08:00.0"));
    assert_eq!(
        r.events[0].timestamp.as_deref().map(|t| &t[5..19]),
        Some("07-24T12:26:16")
    );

    let r = run("ring-reset-failed-baco.log", &["0000:28:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "RING_RESET_FAILED",
            "GPU_RESET",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED",
            "VRAM_LOST"
        ]
    );
    assert_eq!(r.events[0].process_name.as_deref(), Some("cosmic-comp"));
    finding(&r, "amdgpu.reset", Some(0));
    assert_eq!(r.node.verdict, Verdict::Degraded);
}

/// Three more posted logs: the `DRM_ERROR` ring timeout (no device) takes the GPU its reset names, a
/// task-less timeout names no process, and kernel 7.0's device lines (no `amdgpu: ` prefix, `GPU reset
/// begin!. Source:  1`) read as before.
#[test]
fn posted_ring_timeouts_name_their_gpu() {
    let r = run("picom-ring-timeout-mode2.log", &["0000:0c:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "GPU_RESET",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED"
        ]
    );
    assert_eq!(r.events[0].pci_bus_id.as_deref(), Some("0000:0c:00.0"));
    assert_eq!(
        (r.events[0].process_name.as_deref(), r.events[0].pid),
        (Some("picom"), Some(37593))
    );
    let f = finding(&r, "amdgpu.ring_timeout", Some(0));
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        r.findings.iter().all(|f| f.gpu == Some(0)),
        "{:#?}",
        r.findings
    );

    let r = run("sdma-timeout-mes.log", &["0000:0a:00.0"]);
    // The MES failures in the reset (a DRM_ERROR and a pr_err, no device) are the resetting GPU's.
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "GPU_RESET",
            "MES_NO_RESPONSE",
            "MES_QUEUE_FAILED"
        ]
    );
    assert!(
        r.events
            .iter()
            .all(|e| e.pci_bus_id.as_deref() == Some("0000:0a:00.0"))
    );
    let mes = finding(&r, "amdgpu.mes_failure", Some(0));
    assert_eq!(
        (mes.severity, mes.action.kind),
        (Severity::Critical, ActionKind::ResetGpu)
    );
    assert_eq!(r.events[0].pci_bus_id.as_deref(), Some("0000:0a:00.0"));
    assert_eq!(r.events[0].pid, None, "pid 0 is no process");
    assert_eq!(r.events[0].process_name, None);
    finding(&r, "amdgpu.ring_timeout", Some(0));

    let r = run("kernel7-ring-reset-failed.log", &["0000:28:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "RING_RESET_FAILED",
            "GPU_RESET",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED",
            "VRAM_LOST"
        ]
    );
    assert_eq!(r.events[0].process_name.as_deref(), Some("cosmic-comp"));
    assert!(
        r.events
            .iter()
            .all(|e| e.pci_bus_id.as_deref() == Some("0000:28:00.0"))
    );
    finding(&r, "amdgpu.reset", Some(0));
    assert_eq!(r.node.verdict, Verdict::Degraded);

    // A reset of another GPU that comes later is no evidence: the timeout stays the node's.
    let lines = [
        "[  10.000000] [drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring gfx_0.0.0 timeout, signaled seq=1, emitted seq=3",
        "[  10.000001] [drm:amdgpu_job_timedout [amdgpu]] *ERROR* Process information: process a pid 7 thread a pid 7",
        "[  10.000002] amdgpu 0000:0c:00.0: amdgpu: GPU reset(1) succeeded!",
        "[  10.000003] amdgpu 0000:0d:00.0: amdgpu: GPU reset begin!",
    ];
    let r = analyze(
        &node(
            &["0000:0c:00.0", "0000:0d:00.0"],
            lines.iter().map(|l| l.to_string()).collect(),
        ),
        &AnalysisOptions::default(),
    );
    assert_eq!(r.events[0].pci_bus_id, None, "{:#?}", r.events[0]);
}

/// One XGMI hive reset, as `amdgpu_device_gpu_recover` (Linux 6.12 amdgpu_device.c:5928, 6107, 6111, 6148)
/// prints it: `GPU reset begin!` on the GPU that asked, then each GPU of the hive its own outcome, then
/// `GPU reset end with ret = %d` on the asking GPU with the hive's result. Each GPU's failure is its own;
/// the successes are not failures, and the end line does not move a failure onto the asking GPU.
#[test]
fn a_hive_reset_reports_each_gpus_outcome() {
    let gpus = [
        "0000:05:00.0",
        "0000:15:00.0",
        "0000:25:00.0",
        "0000:35:00.0",
    ];
    let lines = [
        "[  500.000000] amdgpu 0000:05:00.0: amdgpu: GPU reset begin!",
        "[  500.000001] amdgpu 0000:05:00.0: amdgpu: MODE1 reset",
        "[  503.000000] amdgpu 0000:05:00.0: amdgpu: GPU reset(3) succeeded!",
        "[  503.000001] amdgpu 0000:15:00.0: amdgpu: GPU reset(3) failed",
        "[  503.000002] amdgpu 0000:25:00.0: amdgpu: GPU reset(3) succeeded!",
        "[  503.000003] amdgpu 0000:35:00.0: amdgpu: GPU reset(3) failed",
        "[  503.000004] amdgpu 0000:05:00.0: amdgpu: GPU reset end with ret = -5",
        // A reset that stops before the per-GPU lines prints only its end: that GPU's reset failed.
        "[  600.000000] amdgpu 0000:25:00.0: amdgpu: GPU reset begin!",
        "[  600.500000] amdgpu 0000:25:00.0: amdgpu: GPU reset end with ret = -110",
        // The timeout handler that asked for it repeats the result (amdgpu_job.c): not a second failure.
        "[  600.500001] amdgpu 0000:25:00.0: amdgpu: GPU Recovery Failed: -110",
    ];
    let r = analyze(
        &node(&gpus, lines.iter().map(|l| l.to_string()).collect()),
        &AnalysisOptions::default(),
    );
    let outcome: Vec<(&str, &str)> = r
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.mnemonic.as_deref(),
                Some("GPU_RESET_SUCCEEDED" | "GPU_RESET_FAILED")
            )
        })
        .map(|e| {
            (
                e.pci_bus_id.as_deref().unwrap_or("-"),
                e.mnemonic.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcome,
        [
            ("0000:05:00.0", "GPU_RESET_SUCCEEDED"),
            ("0000:15:00.0", "GPU_RESET_FAILED"),
            ("0000:25:00.0", "GPU_RESET_SUCCEEDED"),
            ("0000:35:00.0", "GPU_RESET_FAILED"),
            ("0000:25:00.0", "GPU_RESET_FAILED"),
        ]
    );
    for gpu in [1, 2, 3] {
        let f = finding(&r, "amdgpu.reset_failed", Some(gpu));
        assert_eq!(
            (f.severity, f.action.kind),
            (Severity::Critical, ActionKind::RebootNode)
        );
        assert!(f.summary.contains("1×"), "{}", f.summary);
    }
    assert!(
        r.findings
            .iter()
            .all(|f| !(f.code == "amdgpu.reset_failed" && f.gpu == Some(0))),
        "{:#?}",
        r.findings
    );
}

/// Three posted logs of MES (the scheduler firmware of RDNA3 GPUs) failing: each failure is reported on its
/// GPU, in both the 6.12 (`MES failed to respond to msg=REMOVE_QUEUE`) and the older (`MES failed to
/// response msg=3`, a DRM_ERROR with no device) wording; AMD's own follow-up line is not counted again.
#[test]
fn posted_mes_failures() {
    let r = run("mes-remove-queue-780m.log", &["0000:c5:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "MES_NO_RESPONSE",
            "MES_QUEUE_FAILED",
            "GPU_RESET",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED"
        ]
    );
    assert!(
        r.events
            .iter()
            .all(|e| e.pci_bus_id.as_deref() == Some("0000:c5:00.0"))
    );
    let f = finding(&r, "amdgpu.mes_failure", Some(0));
    assert!(f.summary.contains("2×"), "{}", f.summary);
    assert_eq!(f.action.kind, ActionKind::ResetGpu);

    let r = run("mes-response-7900xtx.log", &["0000:03:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "MES_NO_RESPONSE",
            "MES_QUEUE_FAILED",
            "GPU_RESET",
            "VM_FAULT"
        ]
    );
    // The DRM_ERROR names no device and no reset is under way yet: it stays the node's.
    assert_eq!(r.events[0].pci_bus_id, None);
    assert!(
        r.events[1..]
            .iter()
            .all(|e| e.pci_bus_id.as_deref() == Some("0000:03:00.0"))
    );

    let r = run("ring-reset-failed-mes-780m.log", &["0000:c5:00.0"]);
    assert_eq!(
        mnemonics(&r),
        [
            "RING_TIMEOUT",
            "RING_RESET_FAILED",
            "GPU_RESET",
            "MES_NO_RESPONSE",
            "GPU_RESET_METHOD",
            "GPU_RESET_SUCCEEDED"
        ]
    );
    assert_eq!(
        (r.events[0].process_name.as_deref(), r.events[0].pid),
        (Some("code"), Some(1048641))
    );
    assert!(
        r.findings.iter().all(|f| f.gpu == Some(0)),
        "{:#?}",
        r.findings
    );
    assert!(r.findings.iter().all(|f| f.code != "amdgpu.reset_failed"));
}

#[test]
fn a_failed_reset_needs_a_reboot() {
    let r = run("reset-failed-psp.log", &["0000:0b:00.0"]);
    let f = finding(&r, "amdgpu.reset_failed", Some(0));
    assert_eq!(
        (f.severity, f.action.kind),
        (Severity::Critical, ActionKind::RebootNode)
    );
    // A VRAM-lost line with no reset in sight stays tied to no GPU.
    let lost = r
        .events
        .iter()
        .find(|e| e.mnemonic.as_deref() == Some("VRAM_LOST"))
        .unwrap();
    assert_eq!(lost.pci_bus_id, None);
    assert_eq!(r.node.action.kind, ActionKind::RebootNode);
}

#[test]
fn init_failures_name_each_gpu() {
    let r = run("mi210-init-failed.log", &["0000:83:00.0", "0000:c3:00.0"]);
    assert_eq!(mnemonics(&r), ["INIT_FAILED"; 4]);
    for gpu in [0, 1] {
        let f = finding(&r, "amdgpu.init_failed", Some(gpu));
        assert_eq!(f.action.kind, ActionKind::RebootNode);
        assert!(f.summary.contains("2×"), "{}", f.summary);
    }
}

#[test]
fn smu_not_responding() {
    let r = run("smu-not-done.log", &["0000:03:00.0"]);
    assert_eq!(mnemonics(&r), ["GPU_RESET", "SMU_HANG"]);
    assert_eq!(
        finding(&r, "amdgpu.smu_hang", Some(0)).severity,
        Severity::Critical
    );
}

#[test]
fn mi300x_ras_formats() {
    let gpus = [
        "0000:05:00.0",
        "0000:15:00.0",
        "0000:25:00.0",
        "0000:35:00.0",
        "0000:45:00.0",
        "0000:55:00.0",
        "0000:65:00.0",
        "0000:75:00.0",
    ];
    let r = run("mi300x-ras-formats.log", &gpus);
    let at = |gpu: u32, code: &str| finding(&r, code, Some(gpu));
    assert_eq!(at(7, "amdgpu.boot_fault").action.kind, ActionKind::Rma);
    // CE: new line counted once; its total is a detail; the 0 total is nothing.
    let ce = at(0, "amdgpu.ras_ce.umc");
    assert_eq!(
        (ce.severity, ce.action.kind),
        (Severity::Info, ActionKind::Monitor)
    );
    assert!(ce.summary.contains("1×"), "{}", ce.summary);
    at(0, "amdgpu.ras_ce.gfx");
    // UE with poison consumption, page retirement and the reset after it: all on GPU 1.
    let ue = at(1, "amdgpu.ras_ue.umc");
    assert_eq!(
        (ue.severity, ue.action.kind),
        (Severity::Critical, ActionKind::ResetGpu)
    );
    assert!(ue.summary.contains("1×"), "{}", ue.summary);
    at(1, "amdgpu.poison_consumed");
    at(1, "amdgpu.page_retired");
    at(1, "amdgpu.reset");
    assert_eq!(at(2, "amdgpu.ras_de.umc").severity, Severity::Warning);
    at(2, "amdgpu.poison_created");
    let t = at(3, "amdgpu.bad_page_threshold");
    assert_eq!(
        (t.severity, t.action.kind),
        (Severity::Critical, ActionKind::Rma)
    );
    assert_eq!(
        at(4, "amdgpu.thermal_throttle").action.kind,
        ActionKind::CheckCooling
    );
    // Only the power cap: expected under load.
    assert_eq!(at(5, "amdgpu.thermal_throttle").severity, Severity::Info);
    at(6, "amdgpu.xgmi_error");
    at(6, "amdgpu.smu_hang");
    // One fatal event for the hive, though three GPUs logged it.
    let fatal: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.code == "amdgpu.fatal")
        .collect();
    assert_eq!(fatal.len(), 1);
    assert_eq!(fatal[0].gpu, Some(0));
    let f = at(0, "amdgpu.reset_failed");
    assert_eq!(f.action.kind, ActionKind::RebootNode);
    // Zero "in total" lines and informational lines are not events.
    assert!(
        r.events.iter().all(|e| !e.message.contains(" 0 ")),
        "{:#?}",
        r.events
    );
    assert_eq!(r.node.action.kind, ActionKind::Rma);
    // The UE's event carries what the line said.
    let i = r
        .events
        .iter()
        .position(|e| e.mnemonic.as_deref() == Some("RAS_UE"))
        .unwrap();
    match &r.event_details[i].decoded {
        Some(DecodedDetail::Amdgpu {
            block,
            socket,
            die,
            count,
            event_id,
            ..
        }) => assert_eq!(
            (block.as_deref(), *socket, *die, *count, *event_id),
            (Some("umc"), Some(1), Some(0), Some(1), Some(2))
        ),
        other => panic!("{other:?}"),
    }
}

/// A storm: hundreds of thousands of amdgpu lines (faults, RAS lines, bank dumps), and a hostile variant
/// with random devices and blocks: the report stays within the analyzer's bounds and the pass is linear.
#[test]
fn storms_stay_bounded_and_linear() {
    fn storm(n: usize, hostile: bool) -> Vec<String> {
        let mut out = Vec::with_capacity(n * 4);
        for i in 0..n {
            let t = 100.0 + i as f64 * 0.001;
            let dev = if hostile {
                format!("{:04x}:{:02x}:{:02x}.0", i % 65_536, (i / 7) % 256, i % 32)
            } else {
                format!("0000:{:02x}:00.0", [0x05, 0x15][i % 2])
            };
            out.push(format!("[{t:>12.6}] amdgpu {dev}: amdgpu: [gfxhub0] no-retry page fault (src_id:0 ring:24 vmid:3 pasid:32769)"));
            out.push(format!(
                "[{t:>12.6}] amdgpu {dev}: amdgpu:  for process p{i} pid {i} thread p pid {i})"
            ));
            out.push(format!("[{t:>12.6}] amdgpu {dev}: amdgpu:   in page starting at address 0x{i:016x} from IH client 0x1b (UTCL2)"));
            let block = if hostile {
                format!("blk{i}")
            } else {
                "umc".into()
            };
            out.push(format!("[{t:>12.6}] amdgpu {dev}: {{{i}}}socket: 0, die: 0, 1 new correctable hardware errors detected in {block} block"));
        }
        out
    }
    let time = |lines: Vec<String>| {
        let facts = node(&["0000:05:00.0", "0000:15:00.0"], lines);
        let start = Instant::now();
        let r = analyze(&facts, &AnalysisOptions::default());
        (r, start.elapsed())
    };
    let (small, t1) = time(storm(25_000, false));
    let (big, t4) = time(storm(100_000, false));
    for r in [&small, &big] {
        assert!(r.events.len() <= MAX_LISTED_EVENTS, "{}", r.events.len());
        assert_eq!(r.findings.len(), 4, "{:#?}", r.findings);
    }
    assert!(
        finding(&big, "amdgpu.vm_fault", Some(0))
            .summary
            .contains("50000×")
    );
    assert_eq!(big.log.events_not_listed + big.events.len(), 200_000);
    eprintln!("amdgpu storm: 100k lines {t1:?}, 400k lines {t4:?}");
    // Linear: four times the log takes about four times as long (generous for a shared machine).
    assert!(t4 < t1 * 12, "{t1:?} -> {t4:?}");

    let (hostile, _) = time(storm(20_000, true));
    assert!(
        hostile.events.len() <= MAX_LISTED_EVENTS,
        "{}",
        hostile.events.len()
    );
    assert!(
        hostile.gpus.len() <= MAX_EVENT_GROUPS + 2,
        "{}",
        hostile.gpus.len()
    );
    assert!(
        hostile.findings.len() <= MAX_EVENT_GROUPS,
        "{}",
        hostile.findings.len()
    );
    assert!(hostile.log.events_not_analyzed > 0);
    // Unknown block names cannot mint finding codes.
    assert!(hostile.findings.iter().all(|f| !f.code.contains("blk")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any text after an amdgpu prefix parses or not, never panics, and keeps a bounded message.
    #[test]
    fn any_amdgpu_line_is_total(body in ".{0,3000}", prefix in 0usize..4) {
        let head = ["amdgpu 0000:1c:00.0: amdgpu: ", "amdgpu 0000:1c:00.0: {12}", "[drm:x [amdgpu]] *ERROR* ", "amdgpu: "][prefix];
        if let Some(l) = parse_amdgpu(&format!("{head}{body}")) {
            prop_assert!(l.text.chars().count() <= gpu_diag::kernel_log::grammar::MAX_MESSAGE_CHARS + 1);
        }
        let r = analyze(&node(&["0000:1c:00.0"], vec![format!("{head}{body}"), format!("{head}[gfxhub] page fault (src_id:0 ring:1 vmid:1 pasid:1, for process {body} pid 1 thread x pid 1)")]), &AnalysisOptions::default());
        for e in &r.events {
            prop_assert!(e.process_name.as_ref().is_none_or(|n| n.chars().count() <= 65));
        }
    }
}
