//! The AMD rules on the built-in AMD scenarios (the same facts the probe and launcher answer from), and on
//! facts changed from them where a scenario does not hold the case.

use super::amd::*;
use super::health;
use crate::facts::NodeFacts;
use crate::facts::{AmdBadPagesFacts, AmdPciFunctionFacts, Reading};
use crate::finding::Finding;
use crate::finding::{ActionKind, Severity, Verdict};
use crate::options::AnalysisOptions;

fn scenario(name: &str) -> NodeFacts {
    let s = crate::scenarios::find(name).unwrap_or_else(|| panic!("scenario {name}"));
    crate::scenarios::parse(&s.json()).expect("scenario parses")
}

fn codes(f: &[Finding]) -> Vec<(String, Option<u32>, Severity)> {
    f.iter()
        .map(|f| (f.code.clone(), f.gpu, f.severity))
        .collect()
}

#[test]
fn healthy_amd_nodes_have_no_findings_and_read_healthy() {
    for name in [
        "mi300x-healthy",
        "mi325x-healthy",
        "mi355x-healthy",
        "mi300x-cpx",
    ] {
        let facts = scenario(name);
        assert_eq!(judge(&facts), [], "{name}");
        let h = health::analyze(&facts, &AnalysisOptions::default());
        assert_eq!(h.verdict, Verdict::Healthy, "{name}: {:#?}", h.incidents);
        assert_eq!(h.action.kind, ActionKind::None, "{name}");
    }
}

#[test]
fn an_uncorrectable_umc_error_with_poison_and_its_retired_page_is_one_memory_incident() {
    let facts = scenario("mi300x-umc-ue-poison");
    let f = judge(&facts);
    assert_eq!(
        codes(&f),
        [
            ("amd.ras_ue.umc".into(), Some(3), Severity::Critical),
            ("amd.ras_de.umc".into(), Some(3), Severity::Warning),
            ("amd.poison_consumed".into(), Some(3), Severity::Critical),
            ("amd.poison_created".into(), Some(3), Severity::Warning),
        ]
    );
    assert_eq!(f[0].evidence, ["ras/aca_umc: ue 1"]);
    assert!(
        f[0].action
            .detail
            .contains("amd-smi reset -G -g 0000:5c:00.0")
            && f[0].action.detail.contains("XGMI hive 0x"),
        "{}",
        f[0].action.detail
    );
    let h = health::analyze(&facts, &AnalysisOptions::default());
    assert_eq!(h.verdict, Verdict::Unhealthy);
    assert_eq!(h.incidents.incidents.len(), 1, "{:#?}", h.incidents);
    let inc = &h.incidents.incidents[0];
    assert_eq!((inc.code.as_str(), inc.gpu), ("gpu.memory", Some(3)));
    assert_eq!(
        inc.title,
        "uncorrectable memory error, poisoned data consumed"
    );
    // Causal order, each step as the counters and the kernel log show it: deferred, poison created,
    // uncorrectable, poison consumed, the page retired, the reset that followed.
    let order: Vec<&str> = inc.signals.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(
        order,
        [
            "amd.ras_de.umc",
            "amdgpu.ras_de.umc",
            "amd.poison_created",
            "amdgpu.poison_created",
            "amd.ras_ue.umc",
            "amdgpu.ras_ue.umc",
            "amd.poison_consumed",
            "amdgpu.poison_consumed",
            "amdgpu.page_retired",
            "amdgpu.reset"
        ]
    );
    assert_eq!(h.action.kind, ActionKind::DrainAndResetGpu);
    assert!(inc.rule.as_ref().unwrap().source.contains("amdgpu_ras.c"));
}

#[test]
fn bad_pages_near_the_threshold_warn_and_past_it_call_for_rma() {
    let near = scenario("mi300x-bad-pages-near");
    let h = health::analyze(&near, &AnalysisOptions::default());
    assert_eq!(h.verdict, Verdict::Degraded);
    let inc = &h.incidents.incidents[0];
    assert_eq!((inc.code.as_str(), inc.gpu), ("gpu.memory", Some(2)));
    assert_eq!(inc.title, "bad pages near the RMA threshold");
    let near_f = inc
        .signals
        .iter()
        .find(|s| s.code == "amd.bad_pages.near_threshold")
        .expect("near threshold");
    assert!(
        near_f.evidence[1].starts_with(
            "threshold 128 pages: 16 MiB reserved for retired pages on MP0 13.0.6, rule of Linux 6.15+, \
             assumed for the out-of-tree amdgpu 6.12.12; default threshold"
        ),
        "{:?}",
        near_f.evidence
    );
    // 412 corrected in 9 days is under the warning rate: an informational signal of the same fault.
    assert!(
        inc.signals
            .iter()
            .any(|f| f.code == "amd.ras_ce.umc" && f.severity == Severity::Info)
    );

    let rma = scenario("mi300x-bad-pages-rma");
    let h = health::analyze(&rma, &AnalysisOptions::default());
    assert_eq!(h.verdict, Verdict::Unhealthy);
    assert_eq!(h.incidents.incidents.len(), 1, "{:#?}", h.incidents);
    let inc = &h.incidents.incidents[0];
    assert_eq!((inc.code.as_str(), inc.gpu), ("gpu.memory", Some(5)));
    assert_eq!(inc.title, "bad pages past the RMA threshold");
    assert_eq!(h.action.kind, ActionKind::Rma);
    assert!(
        h.summary.starts_with("Unhealthy: 1 incident"),
        "{}",
        h.summary
    );
}

/// The same GPU and pages under the in-tree driver of Linux 6.12: its default threshold is one page per
/// 100 MiB of VRAM (amdgpu_ras.c:2837-2842), 196608 MiB / 100 = 1966, so 118 retired pages are far from it.
#[test]
fn the_threshold_follows_the_running_kernel() {
    let mut facts = scenario("mi300x-bad-pages-near");
    facts.amd_driver.as_mut().unwrap().version = Reading::Err(crate::facts::FieldError::new(
        crate::facts::FieldErrorKind::NotFound,
    ));
    facts.host.kernel_release = Reading::Ok("6.12.12+bpo-amd64".into());
    let f = judge(&facts);
    assert!(
        !f.iter()
            .any(|f| f.code.starts_with("amd.bad_pages.") && f.code.contains("threshold")),
        "{f:#?}"
    );
    let g = &facts.gpus[2];
    let (t, words) = rma_threshold(g, g.amd.as_ref().unwrap(), &facts).unwrap();
    assert_eq!(t, 1966);
    assert!(
        words.starts_with("threshold 1966 pages: 1 per 100 MiB of 192 GiB VRAM, Linux 6.12 rule"),
        "{words}"
    );
}

/// An MI355-like part (GFX 9.5.0) whose MP0 is 13.0.12: the 6.15+ default reserves 16 MiB, so 128
/// pages. The former GFX-keyed model gave 256 and called 240 retired pages only "near" the threshold.
#[test]
fn an_mi355_like_part_is_judged_by_its_mp0() {
    let mut facts = scenario("mi355x-healthy");
    // The in-tree driver of Linux 6.15: the era is known (an out-of-tree one would only assume it).
    facts.amd_driver.as_mut().unwrap().version = Reading::Err(crate::facts::FieldError::new(
        crate::facts::FieldErrorKind::NotFound,
    ));
    facts.host.kernel_release = Reading::Ok("6.15.2-amd64".into());
    let amd = facts.gpus[0].amd.as_mut().unwrap();
    amd.mp0_version = Reading::Ok("13.0.12".into());
    let bp = amd.bad_pages.ok().cloned().unwrap();
    amd.bad_pages = Reading::Ok(AmdBadPagesFacts {
        reserved: 240,
        ..bp
    });
    let f = judge(&facts);
    let hit = f
        .iter()
        .find(|f| f.code == "amd.bad_pages.threshold")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!((hit.gpu, hit.severity), (Some(0), Severity::Critical));
    assert!(
        hit.evidence[1].contains("16 MiB reserved for retired pages on MP0 13.0.12"),
        "{:?}",
        hit.evidence
    );
}

/// An out-of-tree (DKMS) amdgpu whose debugfs threshold was not read: Linux 6.15's rule (128 pages on MP0
/// 13.0.6) is assumed, and the older one gives 1966 for 192 GiB (amdgpu_ras.c:2837-2842 in 6.12). 131
/// retired pages pass only the assumed count: a warning that says which count applies is unknown, never
/// "due for RMA" on the assumption; past both counts it is the RMA finding again. The scenario's driver
/// line `RAS records:131 exceed threshold:128` settles it where the log has it (the scenario itself).
#[test]
fn an_assumed_threshold_alone_is_not_an_rma() {
    let mut facts = scenario("mi300x-bad-pages-rma");
    let h = health::analyze(&facts, &AnalysisOptions::default());
    assert_eq!(
        h.action.kind,
        ActionKind::Rma,
        "the driver's line settles it"
    );
    // Without the driver's line: the era is only assumed.
    if let Reading::Ok(k) = &mut facts.kernel_log {
        k.lines.retain(|l| !l.contains("threshold:"));
    }
    assert!(
        facts.amd_driver.as_ref().unwrap().version.ok().is_some(),
        "the scenario's driver is out-of-tree"
    );
    let g = &mut facts.gpus[5];
    let bp = g.amd.as_mut().unwrap().bad_pages.ok().cloned().unwrap();
    g.amd.as_mut().unwrap().bad_pages = Reading::Ok(AmdBadPagesFacts {
        threshold: None,
        threshold_source: None,
        reserved: 131,
        ..bp.clone()
    });
    let f = judge(&facts);
    assert!(
        !f.iter().any(|f| f.code == "amd.bad_pages.threshold"),
        "{f:#?}"
    );
    let hit = f
        .iter()
        .find(|f| f.code == "amd.bad_pages.threshold_assumed")
        .unwrap_or_else(|| panic!("{f:#?}"));
    assert_eq!((hit.gpu, hit.severity), (Some(5), Severity::Warning));
    assert!(
        hit.summary.contains("128") && hit.summary.contains("1966"),
        "{}",
        hit.summary
    );
    // Past both eras' counts: due for RMA whichever rule the driver applies.
    facts.gpus[5].amd.as_mut().unwrap().bad_pages = Reading::Ok(AmdBadPagesFacts {
        threshold: None,
        threshold_source: None,
        reserved: 2000,
        ..bp
    });
    let f = judge(&facts);
    assert!(
        f.iter()
            .any(|f| f.code == "amd.bad_pages.threshold" && f.severity == Severity::Critical),
        "{f:#?}"
    );
}

#[test]
fn a_user_threshold_is_named_and_zero_disables_the_rule() {
    let mut facts = scenario("mi300x-bad-pages-rma");
    let d = facts.amd_driver.as_mut().unwrap();
    d.bad_page_threshold_param = Reading::Ok(200);
    let g = &mut facts.gpus[5];
    let bp = g.amd.as_mut().unwrap().bad_pages.ok().cloned().unwrap();
    g.amd.as_mut().unwrap().bad_pages = Reading::Ok(AmdBadPagesFacts {
        threshold: None,
        threshold_source: None,
        ..bp
    });
    let f = judge(&facts);
    // 131 of a user threshold of 200: under 90 %, nothing about the threshold.
    assert!(
        !f.iter().any(|f| f.code.starts_with("amd.bad_pages")),
        "{f:#?}"
    );
    let (t, words) =
        rma_threshold(&facts.gpus[5], facts.gpus[5].amd.as_ref().unwrap(), &facts).unwrap();
    assert_eq!(t, 200);
    assert!(
        words.contains("user threshold (amdgpu.bad_page_threshold=200)"),
        "{words}"
    );
}

#[test]
fn xgmi_link_down_and_its_errors_are_one_link_fault() {
    let facts = scenario("mi300x-xgmi-link-down");
    let h = health::analyze(&facts, &AnalysisOptions::default());
    assert_eq!(h.incidents.incidents.len(), 1, "{:#?}", h.incidents);
    let inc = &h.incidents.incidents[0];
    assert_eq!((inc.code.as_str(), inc.gpu), ("xgmi.fault", Some(4)));
    assert_eq!(inc.title, "XGMI link down");
    let order: Vec<&str> = inc.signals.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(
        order,
        [
            // The driver's PCS error lines, then the link state and counters read after them.
            "amdgpu.xgmi_error",
            "amd.xgmi.link_down",
            "amd.xgmi.errors",
            "amd.ras_ce.xgmi_wafl"
        ]
    );
    assert!(
        inc.signals[1]
            .summary
            .contains("XGMI link 2 is down (6 of 7 up)")
    );
}

#[test]
fn residencies_that_grew_between_the_two_reads_are_throttling_now() {
    let facts = scenario("mi300x-thermal-throttle");
    let f = judge(&facts);
    assert_eq!(
        codes(&f),
        [
            ("amd.throttle.soc".into(), Some(6), Severity::Warning),
            ("amd.throttle.hbm".into(), Some(6), Severity::Warning),
        ]
    );
    assert!(
        f[0].summary.contains("100 % of the time"),
        "{}",
        f[0].summary
    );
    assert!(
        f[1].summary.contains("62 % of the time"),
        "{}",
        f[1].summary
    );
    let h = health::analyze(&facts, &AnalysisOptions::default());
    assert_eq!(h.incidents.incidents.len(), 1, "{:#?}", h.incidents);
    let inc = &h.incidents.incidents[0];
    assert_eq!((inc.code.as_str(), inc.gpu), ("gpu.thermal", Some(6)));
    // The shared temperature rule (hotspot at its 100 C limit) joins the AMD residencies.
    assert!(
        inc.signals
            .iter()
            .any(|s| s.code == "thermal.above_slowdown")
    );
    // One read only: nothing said about now.
    let mut one = facts.clone();
    let m = one.gpus[6]
        .amd
        .as_mut()
        .unwrap()
        .metrics
        .ok()
        .cloned()
        .unwrap();
    let mut m1 = m.clone();
    m1.throttle_samples.truncate(1);
    one.gpus[6].amd.as_mut().unwrap().metrics = Reading::Ok(m1);
    assert!(judge(&one).is_empty());
}

#[test]
fn legacy_ras_files_are_read_and_a_few_corrected_errors_are_history() {
    let facts = scenario("mi250x-legacy-ras");
    let f = judge(&facts);
    assert_eq!(
        codes(&f),
        [("amd.ras_ce.umc".into(), Some(3), Severity::Info)]
    );
    assert_eq!(f[0].evidence[0], "ras/umc_err_count: ce 7");
    assert_eq!(
        health::analyze(&facts, &AnalysisOptions::default()).verdict,
        Verdict::Healthy
    );
}

#[test]
fn a_mixed_node_reads_each_gpu_by_its_vendor() {
    let facts = scenario("mixed-h100-mi210");
    assert_eq!(
        amd_gpus(&facts).map(|(g, _)| g.index).collect::<Vec<_>>(),
        [1]
    );
    let h = health::analyze(&facts, &AnalysisOptions::default());
    assert_eq!(h.verdict, Verdict::Healthy, "{:#?}", h.incidents);
    assert_eq!(h.gpus.len(), 2);
}

#[test]
fn a_function_no_driver_bound_or_missing_from_kfd_is_a_missing_gpu() {
    let mut facts = scenario("mi300x-healthy");
    let d = facts.amd_driver.as_mut().unwrap();
    let mut fns = d.pci_functions.ok().cloned().unwrap();
    fns.push(AmdPciFunctionFacts {
        bdf: "0000:ef:00.0".into(),
        device_id: "74a1".into(),
        driver: None,
    });
    fns.push(AmdPciFunctionFacts {
        bdf: "0000:f1:00.0".into(),
        device_id: "74a1".into(),
        driver: Some("vfio-pci".into()),
    });
    d.pci_functions = Reading::Ok(fns);
    facts.gpus[1].amd.as_mut().unwrap().kfd_nodes = Reading::Ok(vec![]);
    let f = judge(&facts);
    assert_eq!(
        codes(&f),
        [
            ("gpu.missing".into(), None, Severity::Critical),
            ("gpu.missing".into(), Some(1), Severity::Critical),
        ]
    );
    assert_eq!(
        f[0].evidence,
        ["0000:ef:00.0 [1002:74a1]: bound to no driver"],
        "a function passed to a VM (vfio-pci) is not missing"
    );
}

#[test]
fn ecc_and_clock_verdicts_of_an_amd_gpu_speak_of_ras_and_residencies() {
    let facts = scenario("mi300x-bad-pages-rma");
    assert_eq!(
        memory_line(&facts.gpus[5], &facts).unwrap(),
        "AMD RAS (NVML ECC does not apply): HBM (UMC) errors: 2 uncorrectable, 131 deferred, 977 corrected; 131 pages retired of 128 allowed, 0 pending."
    );
    let hot = scenario("mi300x-thermal-throttle");
    assert_eq!(
        clocks_line(&hot.gpus[6]).unwrap(),
        "AMD, throttled now by SOC and HBM (gpu_metrics residencies): gfx 1420 of 2100 MHz."
    );
    assert!(
        clocks_line(&hot.gpus[0])
            .unwrap()
            .starts_with("AMD, no throttling")
    );
    let mixed = scenario("mixed-h100-mi210");
    assert_eq!(
        clocks_line(&mixed.gpus[0]),
        None,
        "NVIDIA's GPU keeps NVML's verdict"
    );
}

#[test]
fn libamd_smi_bad_pages_stand_in_only_where_sysfs_was_not_read() {
    use crate::facts::{
        AmdSmiBadPagesFacts, AmdSmiGpuFacts, AmdSmiLibraryFacts, FieldError, FieldErrorKind,
    };
    let mut facts = scenario("mi300x-healthy");
    let bdf0 = facts.gpus[0].pci_bus_id.ok().cloned().unwrap();
    let bdf1 = facts.gpus[1].pci_bus_id.ok().cloned().unwrap();
    let lib = |pending: u32, bdf: &str| AmdSmiGpuFacts {
        bdf: bdf.to_ascii_uppercase(),
        bad_pages: Reading::Ok(AmdSmiBadPagesFacts {
            reserved: 0,
            pending,
            unreservable: 0,
        }),
    };
    facts.amd_driver.as_mut().unwrap().amd_smi = Some(Reading::Ok(AmdSmiLibraryFacts {
        path: "/opt/rocm/lib/libamd_smi.so.25".into(),
        version: "25.1.0".into(),
        gpus: Reading::Ok(vec![lib(3, &bdf1), lib(2, &bdf0)]),
    }));
    // GPU 0's sysfs list was read (no pages): the library's 2 pending are not added to it.
    // GPU 1's was not: the library's 3 pending stand in, joined by PCI address.
    facts.gpus[1].amd.as_mut().unwrap().bad_pages = Reading::Err(FieldError::with_message(
        FieldErrorKind::NoPermission,
        "denied",
    ));
    let f = judge(&facts);
    let pending: Vec<&Finding> = f
        .iter()
        .filter(|f| f.code == "amd.bad_pages.pending")
        .collect();
    assert_eq!(pending.len(), 1, "{f:#?}");
    assert_eq!(pending[0].gpu, Some(1));
    assert!(
        pending[0].evidence[0].starts_with(
            "libamd_smi 25.1.0 amdsmi_get_gpu_bad_page_info (sysfs's list unreadable): 0 retired (R), 3 pending"
        ),
        "{:?}",
        pending[0].evidence
    );
    let line = memory_line(&facts.gpus[1], &facts).unwrap();
    assert!(line.contains("3 pending (libamd_smi 25.1.0"), "{line}");
    // Without the library, GPU 1's pages are unreadable, as before.
    facts.amd_driver.as_mut().unwrap().amd_smi = None;
    assert!(
        !judge(&facts)
            .iter()
            .any(|f| f.code == "amd.bad_pages.pending")
    );
    let line = memory_line(&facts.gpus[1], &facts).unwrap();
    assert!(line.contains("bad pages unreadable"), "{line}");
}
