//! The published DCGM outputs (tests/fixtures/dcgm, README there) through the whole interpretation, on the
//! two-GPU H100 node of the operator tests, snapshot-tested.

use super::report::{Execution, GpuOutcome, RunOutcome, StopCause};
use super::request::{DiagRun, GpuSel, parse_gpus};
use super::select::{Selection, select};
use super::*;
use crate::facts::{GpuVendor, NodeFacts, Reading};
use crate::finding::Incidents;

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!("../../tests/fixtures/dcgm/", $name)),
        )
    };
}

const FIXTURES: &[(&str, &str)] = &[
    fixture!("v3-level2-pass.0.json"),
    fixture!("v3-memory-fail.205.json"),
    fixture!("v3-persistence-warn.0.json"),
    fixture!("v3-runtime-error.226.json"),
    fixture!("v4-level1-pass.0.json"),
    fixture!("v4-level2-pass.0.json"),
    fixture!("v4-memory-fail.205.json"),
    fixture!("v4-pcie-fail.226.json"),
    fixture!("v4-persistence-warn.226.json"),
    fixture!("v4-in-use.222.json"),
    fixture!("v4-already-running.217.json"),
    fixture!("v4-timeout.245.json"),
    fixture!("v4-killed.203.json"),
    fixture!("v4-mig-refused.226.json"),
    fixture!("v4-iterations-fail.205.json"),
];

/// The H100 node of tests/operator, with no process on its GPUs.
fn idle_node() -> NodeFacts {
    let mut f: NodeFacts =
        serde_json::from_str(include_str!("../../tests/operator/fixtures/h100-hgx.json")).unwrap();
    for g in &mut f.gpus {
        g.processes = Reading::Ok(vec![]);
    }
    f
}

fn exit_of(name: &str) -> u8 {
    name.trim_end_matches(".json")
        .rsplit('.')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn execution(stdout: &str, status: Option<u8>) -> Execution {
    Execution {
        dcgmi: "/usr/bin/dcgmi".into(),
        argv: vec![
            "diag".into(),
            "-r".into(),
            "2".into(),
            "-j".into(),
            "-i".into(),
            "0,1".into(),
        ],
        exit_status: status,
        stdout: stdout.into(),
        elapsed_ms: 95_000,
        deadline_secs: 900,
        ..Execution::default()
    }
}

fn run(facts: &NodeFacts, sel: &Selection, ex: Option<&Execution>) -> DcgmDiagReport {
    let requested = parse_gpus("0,1").unwrap();
    let before = state::snapshot(facts, &sel.to_test);
    analyze(
        facts,
        &DiagInput {
            run: &DiagRun::Level(2),
            requested: &requested,
            selection: sel,
            execution: ex,
            not_started: Some("every requested GPU is held".into()),
            after: before.clone(),
            before,
            xids: vec![],
            xids_not_listed: 0,
            started_at: Some("2026-11-25T10:41:00Z".into()),
            incidents_after: Incidents::default(),
        },
    )
}

fn both() -> Selection {
    Selection {
        to_test: vec![0, 1],
        skipped: vec![],
        runner: GpuVendor::Nvidia,
    }
}

#[test]
fn every_fixture_reads_as_its_name_says() {
    let facts = idle_node();
    for (name, text) in FIXTURES {
        let r = run(&facts, &both(), Some(&execution(text, Some(exit_of(name)))));
        let want = match *name {
            n if n.contains("pass") => RunOutcome::Passed,
            n if n.contains("fail") => RunOutcome::Failed,
            n if n.contains("warn") => RunOutcome::Warnings,
            n if n.contains("in-use") || n.contains("already") || n.contains("mig") => {
                RunOutcome::NotRun
            }
            n if n.contains("timeout") => RunOutcome::TimedOut,
            n if n.contains("killed") => RunOutcome::Stopped,
            _ => RunOutcome::Error,
        };
        assert_eq!(r.outcome, want, "{name}: {}", r.summary);
        // A refused, stopped or broken run never fails a GPU.
        if want != RunOutcome::Failed {
            assert!(
                r.gpus.iter().all(|g| g.outcome != GpuOutcome::Failed),
                "{name}"
            );
        }
        insta::with_settings!({
            snapshot_path => "../../snapshots/dcgm",
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_json_snapshot!(name.trim_end_matches(".json"), r);
        });
    }
}

#[test]
fn the_failing_gpu_and_its_code() {
    let facts = idle_node();
    let (_, text) = FIXTURES
        .iter()
        .find(|f| f.0.starts_with("v4-memory"))
        .unwrap();
    let r = run(&facts, &both(), Some(&execution(text, Some(205))));
    assert_eq!(r.gpus[0].outcome, GpuOutcome::Passed);
    assert_eq!(r.gpus[1].outcome, GpuOutcome::Failed);
    let m = &r.gpus[1]
        .tests
        .iter()
        .find(|t| t.test == "memory")
        .unwrap()
        .messages[0];
    assert_eq!(m.code.as_deref(), Some("DCGM_FR_FAULTY_MEMORY"));
    assert_eq!(m.severity, codes::DcgmSeverity::Isolate);
    // The failure is an incident of GPU 1's memory; GPU 0's pass is history.
    assert_eq!(r.incidents.incidents.len(), 1);
    assert_eq!(r.incidents.incidents[0].code, "gpu.memory");
    assert_eq!(r.incidents.incidents[0].gpu, Some(1));
    assert!(r.incidents.history.iter().any(|f| f.code == "dcgm.passed"
        && f.summary == "GPU 0 passed DCGM level 2 at 2026-11-25T10:41:00Z"));
}

#[test]
fn a_failure_joins_the_memory_incident_the_gpu_already_has() {
    let facts = idle_node();
    let (_, text) = FIXTURES
        .iter()
        .find(|f| f.0.starts_with("v4-memory"))
        .unwrap();
    let requested = parse_gpus("0,1").unwrap();
    let sel = both();
    let existing = crate::finding::Incident {
        code: "gpu.memory".into(),
        severity: crate::finding::Severity::Critical,
        gpu: Some(1),
        gpu_uuid: None,
        component: "GPU 1".into(),
        title: "uncorrectable memory error".into(),
        summary: "GPU 1: uncorrectable memory error (Xid 48).".into(),
        action: crate::finding::Action {
            kind: crate::finding::ActionKind::ResetGpu,
            detail: "reset".into(),
        },
        first_seen: None,
        rule: None,
        signals: vec![],
    };
    let r = analyze(
        &facts,
        &DiagInput {
            run: &DiagRun::Level(2),
            requested: &requested,
            selection: &sel,
            execution: Some(&execution(text, Some(205))),
            not_started: None,
            before: vec![],
            after: vec![],
            xids: vec![],
            xids_not_listed: 0,
            started_at: None,
            incidents_after: Incidents {
                incidents: vec![existing],
                history: vec![],
            },
        },
    );
    assert_eq!(r.incidents.incidents.len(), 1, "{:#?}", r.incidents);
    let inc = &r.incidents.incidents[0];
    assert_eq!(inc.signals.len(), 1);
    assert_eq!(inc.signals[0].code, "dcgm.memory");
    assert!(
        inc.summary
            .contains("DCGM: GPU 1 failed DCGM's memory test")
    );
    assert_eq!(
        inc.action.kind,
        crate::finding::ActionKind::DrainAndResetGpu
    );
}

#[test]
fn stopped_by_the_deadline_or_a_cancel() {
    let facts = idle_node();
    let mut ex = execution("", Some(203));
    ex.stopped_by = Some(StopCause::Deadline);
    let r = run(&facts, &both(), Some(&ex));
    assert_eq!(r.outcome, RunOutcome::TimedOut);
    assert!(r.gpus.iter().all(|g| g.outcome == GpuOutcome::Incomplete));
    ex.stopped_by = Some(StopCause::Cancelled);
    assert_eq!(run(&facts, &both(), Some(&ex)).outcome, RunOutcome::Stopped);
    // Killed after the grace period: no exit status, the signal.
    let mut ex = execution("", None);
    ex.signal = Some(9);
    ex.killed = true;
    ex.stopped_by = Some(StopCause::Cancelled);
    assert_eq!(run(&facts, &both(), Some(&ex)).outcome, RunOutcome::Stopped);
}

#[test]
fn a_timeout_names_whose_deadline_ran_out() {
    let facts = idle_node();
    let mut ex = execution("", Some(203));
    ex.stopped_by = Some(StopCause::Deadline);
    let r = run(&facts, &both(), Some(&ex));
    assert!(
        r.summary
            .contains("the probe's 900 s deadline and was stopped"),
        "{}",
        r.summary
    );
    // DCGM's own limit: dcgmi returned DCGM_ST_TIMEOUT (exit 245) long before the probe's deadline.
    let (name, text) = FIXTURES
        .iter()
        .find(|(n, _)| n.contains("timeout"))
        .unwrap();
    let r = run(&facts, &both(), Some(&execution(text, Some(exit_of(name)))));
    assert_eq!(r.outcome, RunOutcome::TimedOut);
    assert!(
        r.summary
            .contains("DCGM's own time limit ran out after 95 s"),
        "{}",
        r.summary
    );
    assert!(
        r.summary.contains("inside the probe's 900 s deadline"),
        "{}",
        r.summary
    );
}

/// The level-1 pass of both GPUs with `edit` applied to each result (entity id, result object).
fn level1_with(edit: impl Fn(u64, &mut serde_json::Value) -> bool) -> String {
    let (_, text) = FIXTURES
        .iter()
        .find(|(n, _)| *n == "v4-level1-pass.0.json")
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    for cat in v["DCGM Diagnostic"]["test_categories"]
        .as_array_mut()
        .unwrap()
    {
        for t in cat["tests"].as_array_mut().unwrap() {
            let results = t["results"].as_array_mut().unwrap();
            results.retain_mut(|r| {
                let id = r["entity_id"].as_u64().unwrap();
                edit(id, r)
            });
        }
    }
    v.to_string()
}

#[test]
fn a_run_of_skips_or_no_results_is_not_a_pass() {
    let facts = idle_node();
    // Every test skipped on both GPUs (a SKU DCGM does not list): nothing was tested.
    let all_skipped = level1_with(|_, r| {
        r["status"] = "Skip".into();
        true
    });
    let r = run(&facts, &both(), Some(&execution(&all_skipped, Some(0))));
    assert_eq!(r.outcome, RunOutcome::NotRun, "{}", r.summary);
    assert!(
        r.summary
            .contains("no GPU was tested: GPU 0-1 every test skipped")
            || r.summary
                .contains("no GPU was tested: GPU 0, 1 every test skipped"),
        "{}",
        r.summary
    );
    assert!(crate::finding::Judged::verdict(&r).is_none());
    // GPU 1 has no result at all, GPU 0 passed: a pass of GPU 0 only, GPU 1 named as not tested.
    let one_missing = level1_with(|id, _| id == 0);
    let r = run(&facts, &both(), Some(&execution(&one_missing, Some(0))));
    assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
    assert!(r.summary.starts_with("GPU 0 passed DCGM"), "{}", r.summary);
    assert!(
        r.summary.contains("not tested: GPU 1 no result from DCGM"),
        "{}",
        r.summary
    );
    // GPU 1 skipped everything: the same, in its words.
    let one_skipped = level1_with(|id, r| {
        if id == 1 {
            r["status"] = "Skip".into();
        }
        true
    });
    let r = run(&facts, &both(), Some(&execution(&one_skipped, Some(0))));
    assert_eq!(r.outcome, RunOutcome::Passed, "{}", r.summary);
    assert!(
        r.summary.contains("not tested: GPU 1 every test skipped"),
        "{}",
        r.summary
    );
}

#[test]
fn broken_output_is_an_error_never_a_pass() {
    let facts = idle_node();
    for (out, status) in [
        ("", Some(0)),
        ("Segmentation fault", Some(139)),
        ("{\"DCGM Diagnostic\": {", Some(226)),
        ("", Some(254)),
        ("{}", Some(0)),
    ] {
        let r = run(&facts, &both(), Some(&execution(out, status)));
        assert_eq!(
            r.outcome,
            RunOutcome::Error,
            "{out:?} {status:?}: {}",
            r.summary
        );
        assert!(r.gpus.iter().all(|g| g.outcome != GpuOutcome::Failed));
    }
    // Exit 205 (ISOLATE) with only a warning: not read as warnings.
    let (_, text) = FIXTURES
        .iter()
        .find(|f| f.0.starts_with("v4-persistence"))
        .unwrap();
    assert_eq!(
        run(&facts, &both(), Some(&execution(text, Some(205)))).outcome,
        RunOutcome::Error
    );
    // Exit 226 and only passes: dcgmi's word is not dropped.
    let (_, text) = FIXTURES
        .iter()
        .find(|f| f.0.starts_with("v4-level2-pass"))
        .unwrap();
    assert_eq!(
        run(&facts, &both(), Some(&execution(text, Some(226)))).outcome,
        RunOutcome::Error
    );
}

#[test]
fn nothing_started_is_not_run() {
    let facts = idle_node();
    let r = run(&facts, &Selection::default(), None);
    assert_eq!(r.outcome, RunOutcome::NotRun);
    assert!(
        r.summary.contains("every requested GPU is held"),
        "{}",
        r.summary
    );
    assert!(r.findings.is_empty());
}

#[test]
fn busy_gpus_of_every_holder_kind_are_never_tested() {
    use crate::facts::{FieldError, FieldErrorKind, PodResourcesFacts};
    let mut facts = idle_node();
    let all = parse_gpus("0,1").unwrap();
    assert_eq!(select(&facts, &all).to_test, [0, 1]);

    // A process on GPU 0.
    facts.gpus[0].processes = Reading::Ok(vec![
        serde_json::from_value(serde_json::json!({"pid": 4242, "kind": "compute"})).unwrap(),
    ]);
    let s = select(&facts, &all);
    assert_eq!(s.to_test, [1]);
    assert_eq!(s.skipped[0].why, "held");
    assert!(
        s.skipped[0].detail.contains("4242"),
        "{}",
        s.skipped[0].detail
    );
    facts.gpus[0].processes = Reading::Ok(vec![]);

    // A device-plugin pod holding GPU 0 and a DRA claim holding GPU 1, as the kubelet names them.
    let uuid0 = facts.gpus[0].uuid.ok().unwrap().clone();
    let minor1 = facts.gpus[1].minor_number.as_ref().unwrap().get().unwrap();
    let kubelet = serde_json::json!({
        "socket": "var/lib/kubelet/pod-resources/kubelet.sock",
        "pods": [
            {"name": "train-0", "namespace": "ml", "containers": [
                {"name": "main", "devices": [{"resource_name": "nvidia.com/gpu", "device_ids": [uuid0]}]}]},
            {"name": "infer-0", "namespace": "serve", "containers": [
                {"name": "main", "claims": [{"name": "gpu-claim", "namespace": "serve", "devices": [
                    {"driver": "gpu.nvidia.com", "pool": "gpu-node-5", "device": format!("gpu-{minor1}")}]}]}]}
        ],
        "allocatable": []
    });
    facts.pod_resources =
        Reading::Ok(serde_json::from_value::<PodResourcesFacts>(kubelet).unwrap());
    let s = select(&facts, &all);
    assert!(s.to_test.is_empty(), "{s:?}");
    assert!(
        s.skipped[0].detail.contains("ml/train-0"),
        "{}",
        s.skipped[0].detail
    );
    assert!(
        s.skipped[1].detail.contains("DRA claim"),
        "{}",
        s.skipped[1].detail
    );
    assert!(s.skipped.iter().all(|k| k.why == "held"));

    // The kubelet unreachable: nothing is tested on its silence.
    facts.pod_resources = Reading::Err(FieldError::new(FieldErrorKind::NotFound));
    let s = select(&facts, &all);
    assert!(s.to_test.is_empty());
    assert!(s.skipped.iter().all(|k| k.why == "unverified"), "{s:?}");

    // NVML cannot list a GPU's processes.
    facts.pod_resources = Reading::Err(FieldError::new(FieldErrorKind::NotCollected));
    facts.gpus[1].processes = Reading::Err(FieldError::new(FieldErrorKind::Unknown));
    let s = select(&facts, &all);
    assert_eq!(s.to_test, [0]);
    assert_eq!(s.skipped[0].why, "unverified");

    // An unknown GPU.
    let s = select(&facts, &[GpuSel::Index(7)]);
    assert_eq!(s.skipped[0].why, "unknown_gpu");
}

#[test]
fn amd_gpus_are_never_handed_to_dcgm() {
    let mixed: NodeFacts =
        serde_json::from_str(include_str!("../scenarios/mixed-h100-mi210.json")).unwrap();
    let sel = select(&mixed, &[]);
    let amd = sel
        .skipped
        .iter()
        .find(|s| s.index == Some(1))
        .expect("GPU 1 skipped");
    assert_eq!(amd.why, "other_vendor");
    assert!(
        amd.detail.contains("ROCm Validation Suite"),
        "{}",
        amd.detail
    );
    assert!(!sel.to_test.contains(&1));
    assert!(
        sel.skipped
            .iter()
            .all(|s| s.index != Some(0) || s.why != "other_vendor")
    );
    // Named by index too.
    let sel = select(&mixed, &parse_gpus("1").unwrap());
    assert!(sel.to_test.is_empty() && sel.skipped[0].why == "other_vendor");
    let mi300x: NodeFacts =
        serde_json::from_str(include_str!("../scenarios/mi300x-healthy.json")).unwrap();
    let sel = select(&mi300x, &[]);
    assert!(sel.to_test.is_empty());
    assert_eq!(sel.skipped.len(), 8);
    assert!(sel.skipped.iter().all(|s| s.why == "other_vendor"));
    let why = sel.nothing_to_test().unwrap();
    assert!(
        why.contains("every requested device is an AMD GPU")
            && why.contains("run_gpu_diagnostic runs on AMD nodes"),
        "{why}"
    );
}

/// Each vendor's devices are left out in its own words: a Neuron node's never read as AMD GPUs (they did,
/// when every vendor but Intel's was AMD's here), nor a Gaudi's.
#[test]
fn every_other_vendors_device_is_left_out_in_its_own_words() {
    for (scenario, device, diag) in [
        (
            include_str!("../scenarios/trn2-healthy.json"),
            "an AWS Neuron device",
            "AWS Neuron's diagnostic is `nccom-test` (aws-neuronx-tools), which run_gpu_diagnostic does \
             not run yet",
        ),
        (
            include_str!("../scenarios/gaudi2-healthy.json"),
            "an Intel Gaudi",
            "Intel Gaudi's diagnostic is `hl_qual`, which run_gpu_diagnostic does not run yet",
        ),
    ] {
        let facts: NodeFacts = serde_json::from_str(scenario).unwrap();
        for runner in [GpuVendor::Nvidia, GpuVendor::Amd] {
            let sel = crate::dcgm::select::select_for(&facts, &[], runner);
            assert!(sel.to_test.is_empty());
            for s in &sel.skipped {
                assert_eq!(s.why, "other_vendor");
                assert!(
                    s.detail.starts_with(&format!("{device}: "))
                        && s.detail.ends_with(&format!("({diag})")),
                    "{}",
                    s.detail
                );
            }
            let why = sel.nothing_to_test().unwrap();
            assert!(
                why.contains(&format!("every requested device is {device} ({diag})")),
                "{why}"
            );
            assert!(
                !why.contains("AMD GPU") || runner == GpuVendor::Amd,
                "{why}"
            );
        }
    }
}

/// The twin for RVS: a run of AMD's runner on NVIDIA GPUs names NVIDIA GPUs and DCGM, never DCGM's refusal.
#[test]
fn nvidia_gpus_are_never_handed_to_rvs_and_the_reason_says_so() {
    let h100: NodeFacts =
        serde_json::from_str(include_str!("../scenarios/dgx-h100-healthy.json")).unwrap();
    let sel = crate::dcgm::select::select_for(
        &h100,
        &parse_gpus("0,1").unwrap(),
        crate::facts::GpuVendor::Amd,
    );
    assert!(sel.to_test.is_empty());
    assert!(sel.skipped.iter().all(|s| {
        s.why == "other_vendor"
            && s.detail
                .starts_with("an NVIDIA GPU: the ROCm Validation Suite")
    }));
    let why = sel.nothing_to_test().unwrap();
    assert!(
        why.starts_with(
            "the ROCm Validation Suite tests AMD GPUs only and every requested device is an NVIDIA GPU"
        ),
        "{why}"
    );
    assert!(!why.contains("DCGM tests"), "{why}");
}

/// RVS loads only GPUs whose holders the scan could vouch for, as the reset judges them
/// (`operator::scan`): an fd table the kernel refused (an LSM, ptrace rules), one cut at the scan's bounds,
/// and a `/dev/kfd` holder whose GPU KFD does not name each leave the GPU unverified, named with why; a
/// complete scan with no holder lets it be tested.
#[test]
fn rvs_tests_no_gpu_the_holder_scan_could_not_vouch_for() {
    use crate::facts::{DeviceHolderFacts, DeviceHoldersFacts, GpuVendor};
    let mut mi300x: NodeFacts =
        serde_json::from_str(include_str!("../scenarios/mi300x-healthy.json")).unwrap();
    // No process listed on any GPU (the scenario's jobs gone): only the scan can tell.
    for g in &mut mi300x.gpus {
        g.processes = Reading::Ok(Vec::new());
    }
    let idle: Vec<GpuSel> = mi300x.gpus.iter().map(|g| GpuSel::Index(g.index)).collect();
    let scan = |s: DeviceHoldersFacts| Some(Reading::Ok(s));
    mi300x.device_holders = scan(DeviceHoldersFacts::default());
    let sel = crate::dcgm::select::select_for(&mi300x, &idle, GpuVendor::Amd);
    assert_eq!(sel.to_test.len(), idle.len(), "{sel:?}");
    let cases = [
        (
            DeviceHoldersFacts {
                unreadable_pids: 1,
                denied_pids: vec![6100],
                ..Default::default()
            },
            "the open files of pid 6100 could not be read (permission denied",
        ),
        (
            DeviceHoldersFacts {
                fd_tables_cut: vec![6200],
                ..Default::default()
            },
            "the open files of pid 6200 were read only in part",
        ),
        (
            DeviceHoldersFacts {
                pids_not_scanned: 3,
                ..Default::default()
            },
            "3 process(es) were not scanned",
        ),
        (
            DeviceHoldersFacts {
                holders: vec![DeviceHolderFacts {
                    pid: 6300,
                    name: Reading::Ok("python3".into()),
                    devices: vec!["/dev/kfd".into()],
                    kfd: None,
                }],
                ..Default::default()
            },
            "pid 6300 (python3) has /dev/kfd open and is not in KFD's process list",
        ),
    ];
    for (s, why) in cases {
        mi300x.device_holders = scan(s);
        let sel = crate::dcgm::select::select_for(&mi300x, &idle, GpuVendor::Amd);
        assert!(sel.to_test.is_empty(), "{why}: {sel:?}");
        assert_eq!(sel.skipped.len(), idle.len());
        for s in &sel.skipped {
            assert_eq!(s.why, "unverified", "{s:?}");
            assert!(
                s.detail
                    .starts_with("the holder scan of /dev/kfd and /dev/dri is incomplete: ")
                    && s.detail.contains(why),
                "{s:?}"
            );
        }
    }
    // A scan that failed vouches for nothing either.
    mi300x.device_holders = Some(Reading::Err(crate::facts::FieldError::new(
        crate::facts::FieldErrorKind::NoPermission,
    )));
    let sel = crate::dcgm::select::select_for(&mi300x, &idle, GpuVendor::Amd);
    assert!(sel.to_test.is_empty() && sel.skipped.iter().all(|s| s.why == "unverified"));
}
