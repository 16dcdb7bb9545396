use super::*;
use crate::finding::{Action, ActionKind};

fn cond<'a>(kind: &'a str, status: &'a str, reason: Option<&'a str>) -> NodeCondition<'a> {
    NodeCondition {
        kind,
        status,
        reason,
        message: None,
        since: Some("2026-11-20T10:00:00Z"),
    }
}

#[test]
fn each_source_is_recognised_in_its_fault_state_only() {
    // (type, reason, source, fault). The Ready-like conditions are faults when False, the others when
    // True; the other state, and Unknown, give no mark.
    let cases = [
        (
            "AcceleratedHardwareReady",
            Some("NvidiaXID79Error"),
            Eks,
            F::Xid { code: Some(79) },
        ),
        (
            "AcceleratedHardwareReady",
            Some("NvidiaDoubleBitError"),
            Eks,
            F::UncorrectableMemory,
        ),
        (
            "AcceleratedHardwareReady",
            Some("NvidiaNVLinkError"),
            Eks,
            F::NvLink,
        ),
        (
            "AcceleratedHardwareReady",
            Some("NvidiaDeviceCountMismatch"),
            Eks,
            F::GpuMissing,
        ),
        (
            "AcceleratedHardwareReady",
            Some("DCGMDiagnosticFailure"),
            Eks,
            F::GpuUnhealthy,
        ),
        ("AcceleratedHardwareReady", None, Eks, F::GpuUnhealthy),
        ("KernelReady", Some("SoftLockup"), Eks, F::Node),
        ("GPUMissing", None, Aks, F::GpuMissing),
        ("NVLinkStatusInactive", None, Aks, F::NvLink),
        ("XIDErrors", None, Aks, F::Xid { code: None }),
        ("IBLinkFlapping", None, Aks, F::IbLinkFlapping),
        (
            "GpuNvlinkWatch",
            Some("GpuNvlinkWatchIsNotHealthy"),
            Nvs,
            F::NvLink,
        ),
        ("GpuMemWatch", None, Nvs, F::UncorrectableMemory),
        ("SysLogsGPUFallenOff", None, Nvs, F::Xid { code: Some(79) }),
        ("KernelDeadlock", Some("DockerHung"), Npd, F::Node),
        ("ReadonlyFilesystem", None, Npd, F::Node),
    ];
    for (kind, reason, source, fault) in cases {
        let (bad, good) = if kind.ends_with("Ready") {
            ("False", "True")
        } else {
            ("True", "False")
        };
        let m = classify(&cond(kind, bad, reason)).unwrap_or_else(|| panic!("{kind}={bad}"));
        assert_eq!(
            (m.source, m.fault),
            (source, fault),
            "{kind}={bad} {reason:?}"
        );
        assert_eq!(m.since.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert!(
            classify(&cond(kind, good, reason)).is_none(),
            "{kind}={good}"
        );
        assert!(
            classify(&cond(kind, "Unknown", reason)).is_none(),
            "{kind}=Unknown"
        );
    }
    assert!(classify(&cond("Ready", "False", None)).is_none());
    assert!(classify(&cond("SomeVendorCondition", "True", None)).is_none());
}

#[test]
fn the_line_names_source_condition_reason_and_time() {
    let m = classify(&cond(
        "AcceleratedHardwareReady",
        "False",
        Some("NvidiaXID79Error"),
    ))
    .unwrap();
    assert_eq!(
        m.line(),
        "EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since 2026-11-20T10:00:00Z"
    );
    assert_eq!(m.severity, Severity::Critical);
    assert_eq!(m.code(), "platform.xid.79");
}

#[test]
fn xid_codes_are_read_from_messages() {
    for (msg, code) in [
        (
            "ErrorCode:79 GPU has fallen off the bus. Recommended Action=RESTART_VM;",
            Some(79),
        ),
        ("detected XID-48 on the instance", Some(48)),
        ("XID errors present in kernel log", None),
        ("Xid 999999999999 overflow", None),
    ] {
        let c = NodeCondition {
            message: Some(msg),
            ..cond("SysLogsXIDError", "True", None)
        };
        assert_eq!(classify(&c).unwrap().fault, F::Xid { code }, "{msg}");
    }
}

#[test]
fn hostile_text_is_bounded_and_stripped() {
    let long = "A".repeat(100_000);
    let evil = format!("ok\u{1b}[31mred\u{0}\r\nnext\u{202e}gnp.exe\u{7}{long}");
    let c = NodeCondition {
        kind: "AcceleratedHardwareReady",
        status: "False",
        reason: Some(&evil),
        message: Some(&evil),
        since: Some(&evil),
    };
    let m = classify(&c).unwrap();
    for s in [
        m.reason.as_deref().unwrap(),
        m.message.as_deref().unwrap(),
        m.since.as_deref().unwrap(),
    ] {
        assert!(
            s.chars().count() <= MAX_MESSAGE,
            "{} chars",
            s.chars().count()
        );
        assert!(
            !s.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{s:?}"
        );
        assert!(s.starts_with("ok[31mred next"), "{s:?}");
        assert!(s.ends_with('…'), "{s:?}");
    }
    assert!(m.reason.unwrap().chars().count() <= MAX_NAME);
    // A hostile reason is no Xid.
    assert_eq!(m.fault, F::GpuUnhealthy);
    assert_eq!(clean("  a \t b  ", 10), "a b");
    assert_eq!(clean("", 10), "");
    assert_eq!(clean("ééééé", 3), "éé…");
    // Non-ASCII and odd reasons never panic.
    for r in [
        "NvidiaXIDError",
        "NvidiaXID-1Error",
        "NvidiaXID99999999999Error",
        "NvidiaXIDé9Error",
    ] {
        assert_eq!(eks_reason(r), F::GpuUnhealthy, "{r}");
    }
}

#[test]
fn nvsentinel_quarantine_annotation() {
    let m = classify_annotation(NVSENTINEL_CORDONED, "True").unwrap();
    assert_eq!((m.source, m.fault), (Nvs, F::Quarantined));
    assert!(classify_annotation(NVSENTINEL_CORDONED, "False").is_none());
    assert!(classify_annotation("other", "True").is_none());
}

fn probe_incident(code: &str, signals: &[&str]) -> Incident {
    let f = |c: &str| Finding {
        code: c.into(),
        severity: Severity::Critical,
        gpu: Some(3),
        gpu_uuid: None,
        summary: c.into(),
        evidence: vec![],
        action: Action {
            kind: ActionKind::Rma,
            detail: String::new(),
        },
        about: vec![],
        first_seen: None,
    };
    Incident {
        code: code.into(),
        severity: Severity::Critical,
        gpu: Some(3),
        gpu_uuid: None,
        component: "GPU 3".into(),
        title: "GPU fell off the bus".into(),
        summary: "GPU 3 fell off the bus (2 signals).".into(),
        action: f(code).action,
        first_seen: None,
        rule: None,
        signals: signals.iter().map(|s| f(s)).collect(),
    }
}

#[test]
fn a_mark_about_the_probes_fault_joins_its_incident() {
    let xid79 = classify(&cond(
        "AcceleratedHardwareReady",
        "False",
        Some("NvidiaXID79Error"),
    ))
    .unwrap();
    let aks_xid = classify(&cond("XIDErrors", "True", None)).unwrap();
    let nvlink = classify(&cond("NVLinkStatusInactive", "True", None)).unwrap();
    let mut inc = Incidents {
        incidents: vec![probe_incident("gpu.off_bus", &["xid.79", "gpu.lost"])],
        history: vec![],
    };
    join(&mut inc, &[xid79, aks_xid, nvlink.clone()]);
    // The two Xid marks are the off-bus incident's; the NVLink mark, with no NVLink incident, is its own.
    assert_eq!(inc.incidents.len(), 2, "{inc:#?}");
    let off = &inc.incidents[0];
    assert_eq!(off.code, "gpu.off_bus");
    assert_eq!(off.signals.len(), 4);
    assert!(
        off.summary.contains("Also reported by EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since 2026-11-20T10:00:00Z"),
        "{}",
        off.summary
    );
    assert!(
        off.summary
            .contains("AKS node problem detector: XIDErrors=True"),
        "{}",
        off.summary
    );
    let own = &inc.incidents[1];
    assert_eq!(
        (own.code.as_str(), own.severity),
        ("platform.nvlink", Severity::Critical)
    );
    assert_eq!(own.first_seen.as_deref(), Some("2026-11-20T10:00:00Z"));

    // An NVLink incident of the probe takes the NVLink mark; an Xid 48 mark is not about Xid 79.
    let mut inc = Incidents {
        incidents: vec![probe_incident("nvlink.fault", &["nvlink.down"])],
        history: vec![],
    };
    let xid48 = classify(&cond(
        "AcceleratedHardwareReady",
        "False",
        Some("NvidiaXID48Error"),
    ))
    .unwrap();
    assert!(!xid48.is_about(&probe_incident("gpu.off_bus", &["xid.79"])));
    join(&mut inc, &[nvlink, xid48]);
    assert_eq!(inc.incidents.len(), 2);
    assert_eq!(inc.incidents[0].signals.len(), 2);
    assert_eq!(inc.incidents[1].code, "platform.xid.48");
}

#[test]
fn gfd_labels_old_and_new() {
    let new = GfdFacts::from_labels([
        ("nvidia.com/gpu.product", "NVIDIA-GB200"),
        ("nvidia.com/cuda.driver-version.full", "570.133.20"),
        ("nvidia.com/cuda.driver.major", "570"),
        (
            "nvidia.com/gpu.clique",
            "7b3c0f1e-1d2a-4c58-9b1a-0e6f6c3d2a11.1",
        ),
        ("nvidia.com/mig.strategy", "none"),
    ]);
    assert_eq!(new.driver.as_deref(), Some("570.133.20"));
    assert_eq!(
        new.brief(),
        "driver 570.133.20, clique 7b3c0f1e-1d2a-4c58-9b1a-0e6f6c3d2a11.1"
    );
    let old = GfdFacts::from_labels([
        ("nvidia.com/cuda.driver.major", "535"),
        ("nvidia.com/cuda.driver.minor", "104"),
        ("nvidia.com/cuda.driver.rev", "12"),
        ("nvidia.com/mig.strategy", "mixed"),
    ]);
    assert_eq!(old.brief(), "driver 535.104.12, MIG mixed");
    assert_eq!(GfdFacts::from_labels([]).brief(), "");
}
