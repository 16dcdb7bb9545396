use super::*;

fn f(code: &str, sev: Severity, gpu: Option<u32>, kind: ActionKind) -> Finding {
    Finding {
        code: code.into(),
        severity: sev,
        gpu,
        gpu_uuid: None,
        summary: format!("{code} summary"),
        evidence: vec![],
        action: Action {
            kind,
            detail: format!("{kind:?}"),
        },
        about: vec![],
        first_seen: None,
    }
}

#[test]
fn faults_of_two_gpus_stay_two_incidents_and_a_verdict_alone_is_its_own() {
    let name = |i: u32| format!("GPU {i}");
    let r = group(
        &[
            f(
                "xid.48",
                Severity::Critical,
                Some(0),
                ActionKind::DrainAndResetGpu,
            ),
            f(
                "xid.48",
                Severity::Critical,
                Some(1),
                ActionKind::DrainAndResetGpu,
            ),
            f(
                "gpu.recovery_action",
                Severity::Critical,
                Some(1),
                ActionKind::DrainAndResetGpu,
            ),
            f(
                "gpu.recovery_action",
                Severity::Critical,
                Some(2),
                ActionKind::ResetGpu,
            ),
            f("xid.154", Severity::Critical, Some(2), ActionKind::ResetGpu),
        ],
        &name,
    );
    let got: Vec<(&str, Option<u32>, usize)> = r
        .incidents
        .iter()
        .map(|i| (i.code.as_str(), i.gpu, i.signals.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("gpu.memory", Some(0), 1),
            ("gpu.memory", Some(1), 2),
            ("gpu.recovery", Some(2), 2),
        ]
    );
}

#[test]
fn a_rule_is_never_stated_from_the_drivers_conclusion_alone_nor_an_unrelated_switch() {
    let name = |i: u32| format!("GPU {i}");
    let mut sx = f("sxid.fatal", Severity::Critical, None, ActionKind::ResetGpu);
    sx.about = vec!["nvswitch:0000:07:00.0".into()];
    let mut down = f(
        "nvlink.link_down",
        Severity::Critical,
        Some(3),
        ActionKind::ResetGpu,
    );
    down.about = vec!["nvlink:3/7".into(), "nvswitch:0000:06:00.0".into()];
    let r = group(&[sx, down], &name);
    let got: Vec<(&str, usize)> = r
        .incidents
        .iter()
        .map(|i| (i.code.as_str(), i.signals.len()))
        .collect();
    assert_eq!(got, [("nvlink.fault", 1), ("sxid.fatal", 1)]);
    assert_eq!(r.incidents[1].component, "nvswitch 0000:07:00.0");
}

#[test]
fn informational_and_cleared_findings_are_history_oldest_first() {
    let name = |i: u32| format!("GPU {i}");
    let mut a = f("xid.154", Severity::Info, Some(0), ActionKind::None);
    a.first_seen = Some("2026-11-25T10:00:00Z".into());
    let mut b = f("xid.43", Severity::Info, Some(1), ActionKind::None);
    b.first_seen = Some("2026-11-25T09:00:00Z".into());
    let r = group(&[a, b], &name);
    assert!(r.incidents.is_empty());
    let got: Vec<&str> = r.history.iter().map(|h| h.code.as_str()).collect();
    assert_eq!(got, ["xid.43", "xid.154"]);
}

#[test]
fn every_rule_is_stated_by_its_own_signals_and_explained() {
    for r in rules::RULES {
        assert!(!r.reason.is_empty() && !r.source.is_empty(), "{}", r.code);
        for a in r.followers {
            assert!(
                r.signals.contains(a),
                "{}: follower {a} is not a signal",
                r.code
            );
        }
        // A rule is never stated from its followers alone.
        assert!(r.signals.iter().any(|s| r.is_anchor(s)), "{}", r.code);
    }
}

#[test]
fn a_fault_the_driver_cleared_is_history_unless_nvml_still_shows_it() {
    let name = |i: u32| format!("GPU {i}");
    let mut dbe = f(
        "xid.48",
        Severity::Critical,
        Some(0),
        ActionKind::DrainAndResetGpu,
    );
    dbe.first_seen = Some("2026-11-25T09:00:00Z".into());
    let mut back = f("xid.154", Severity::Info, Some(0), ActionKind::None);
    back.first_seen = Some("2026-11-25T09:05:00Z".into());
    let r = group(&[dbe.clone(), back.clone()], &name);
    assert!(r.incidents.is_empty(), "{:#?}", r.incidents);
    let got: Vec<&str> = r.history.iter().map(|h| h.code.as_str()).collect();
    assert_eq!(got, ["xid.48", "xid.154"]);
    // NVML still counts the uncorrected error: the fault is live.
    let live = f(
        "ecc.volatile_uncorrected",
        Severity::Critical,
        Some(0),
        ActionKind::DrainAndResetGpu,
    );
    let r = group(&[dbe.clone(), back.clone(), live], &name);
    assert_eq!(r.incidents.len(), 1);
    // Or NVML still asks for a recovery action.
    let asks = f(
        "gpu.recovery_action",
        Severity::Critical,
        Some(0),
        ActionKind::ResetGpu,
    );
    let r = group(&[dbe, back, asks], &name);
    assert_eq!(r.incidents.len(), 1);
}

#[test]
fn a_gpu_nvml_cannot_open_and_the_missing_count_are_one_fault() {
    let name = |i: u32| format!("GPU {i}");
    let failed = f(
        "gpu.handle_failed",
        Severity::Critical,
        Some(4),
        ActionKind::RebootNode,
    );
    let mut missing = f(
        "gpu.missing",
        Severity::Critical,
        None,
        ActionKind::RebootNode,
    );
    missing.about = vec!["gpu:4".into()];
    let r = group(&[failed.clone(), missing.clone()], &name);
    assert_eq!(r.incidents.len(), 1, "{:#?}", r.incidents);
    assert_eq!(r.incidents[0].code, "gpu.off_bus");
    assert_eq!(r.incidents[0].title, "GPU not answering");
    // A GPU missing without a GPU to tie it to stays its own incident.
    missing.about.clear();
    let r = group(&[failed, missing], &name);
    assert_eq!(r.incidents.len(), 2);
}

/// Every GPU of a tray unregistered from the fabric (its management down) is one fault of the node, not
/// four; a rack of such trays is then one rack incident of that code (`rack::RACK_CODES`).
#[test]
fn gpus_unregistered_from_the_fabric_are_one_fault_of_the_node() {
    let name = |i: u32| format!("GPU {i}");
    let findings: Vec<Finding> = (0..4)
        .map(|g| {
            f(
                "fabric.not_registered",
                Severity::Critical,
                Some(g),
                ActionKind::RestartFabricManager,
            )
        })
        .collect();
    let r = group(&findings, &name);
    assert_eq!(r.incidents.len(), 1, "{r:?}");
    let i = &r.incidents[0];
    assert_eq!(
        (i.code.as_str(), i.title.as_str(), i.gpu, i.signals.len()),
        (
            "fabric.registration",
            "GPUs not registered with the NVLink fabric",
            None,
            4
        )
    );
    assert_eq!(i.component, "the node (GPU 0, 1, 2, 3)");
    assert!(rack::RACK_CODES.iter().any(|(c, _)| *c == i.code));
}

/// The kernel log's `amdgpu.*` findings (their grammar lands separately) and the probe's `amd.*` ones of
/// one fault are one incident; the resets that follow join the fault before them and never state one.
#[test]
fn amd_signals_of_one_fault_are_one_incident() {
    let name = |i: u32| format!("GPU {i}");
    let at = |code: &str, sev: Severity, gpu: u32, kind: ActionKind, t: &str| {
        let mut x = f(code, sev, Some(gpu), kind);
        x.first_seen = Some(t.into());
        x
    };
    let r = group(
        &[
            at(
                "amdgpu.poison_consumed",
                Severity::Critical,
                3,
                ActionKind::DrainAndResetGpu,
                "2026-11-25T09:00:00Z",
            ),
            at(
                "amdgpu.reset",
                Severity::Warning,
                3,
                ActionKind::Monitor,
                "2026-11-25T09:00:01Z",
            ),
            at(
                "amdgpu.ras_ue.umc",
                Severity::Critical,
                3,
                ActionKind::DrainAndResetGpu,
                "2026-11-25T09:00:01Z",
            ),
            at(
                "amdgpu.page_retired",
                Severity::Warning,
                3,
                ActionKind::Monitor,
                "2026-11-25T09:00:01Z",
            ),
            f(
                "amd.ras_ue.umc",
                Severity::Critical,
                Some(3),
                ActionKind::DrainAndResetGpu,
            ),
            f(
                "amd.poison_consumed",
                Severity::Critical,
                Some(3),
                ActionKind::DrainAndResetGpu,
            ),
            // Another GPU's hang loop: timeouts and resets, one fault.
            at(
                "amdgpu.ring_timeout",
                Severity::Warning,
                6,
                ActionKind::Investigate,
                "2026-11-25T08:00:00Z",
            ),
            at(
                "amdgpu.reset",
                Severity::Warning,
                6,
                ActionKind::Monitor,
                "2026-11-25T08:00:01Z",
            ),
            at(
                "amdgpu.reset_failed",
                Severity::Critical,
                6,
                ActionKind::RebootNode,
                "2026-11-25T08:10:01Z",
            ),
            // An XGMI link: the driver's PCS line with the link state.
            f(
                "amdgpu.xgmi_error",
                Severity::Warning,
                Some(4),
                ActionKind::Monitor,
            ),
            f(
                "amd.xgmi.link_down",
                Severity::Critical,
                Some(4),
                ActionKind::ResetGpu,
            ),
            // A reset with nothing before it is no fault of a rule: a lone signal.
            f(
                "amdgpu.reset",
                Severity::Warning,
                Some(1),
                ActionKind::Monitor,
            ),
            // NVIDIA's memory fault on an NVIDIA GPU keeps NVIDIA's rule.
            f(
                "xid.48",
                Severity::Critical,
                Some(0),
                ActionKind::DrainAndResetGpu,
            ),
        ],
        &name,
    );
    let got: Vec<(&str, Option<u32>, usize)> = r
        .incidents
        .iter()
        .map(|i| (i.code.as_str(), i.gpu, i.signals.len()))
        .collect();
    assert_eq!(
        got,
        [
            ("gpu.hang", Some(6), 3),
            ("gpu.memory", Some(0), 1),
            ("gpu.memory", Some(3), 6),
            ("xgmi.fault", Some(4), 2),
            ("amdgpu.reset", Some(1), 1),
        ]
    );
    let mem = &r.incidents[2];
    let order: Vec<&str> = mem.signals.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(
        order,
        [
            "amd.ras_ue.umc",
            "amdgpu.ras_ue.umc",
            "amd.poison_consumed",
            "amdgpu.poison_consumed",
            "amdgpu.page_retired",
            "amdgpu.reset"
        ]
    );
    assert_eq!(
        mem.title,
        "uncorrectable memory error, poisoned data consumed"
    );
    assert!(mem.rule.as_ref().unwrap().source.contains("amdgpu_ras.c"));
    assert!(r.incidents[1].rule.as_ref().unwrap().source.contains("Xid"));
    assert_eq!(r.incidents[0].title, "GPU hang, reset failed");
    assert_eq!(
        r.incidents[0].first_seen.as_deref(),
        Some("2026-11-25T08:00:00Z")
    );
}

/// Two rules may state the same fault for two vendors (`gpu.memory`): a GPU is of one vendor, so their
/// signals must never overlap, or one finding could be read by both.
#[test]
fn rules_sharing_a_code_share_no_signal() {
    for (i, a) in rules::RULES.iter().enumerate() {
        for b in &rules::RULES[i + 1..] {
            if a.code != b.code {
                continue;
            }
            for s in a.signals {
                assert!(!b.has_signal(s), "{}: {s} in both", a.code);
            }
        }
    }
}
