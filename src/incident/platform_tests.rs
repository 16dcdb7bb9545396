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
        // The agent's Neuron reasons (aws/eks-node-monitoring-agent pkg/reasons/reasons.go:31-46).
        (
            "AcceleratedHardwareReady",
            Some("NeuronHBMUncorrectableError"),
            Eks,
            F::UncorrectableMemory,
        ),
        (
            "AcceleratedHardwareReady",
            Some("NeuronSRAMUncorrectableError"),
            Eks,
            F::UncorrectableMemory,
        ),
        (
            "AcceleratedHardwareReady",
            Some("NeuronNCUncorrectableError"),
            Eks,
            F::GpuUnhealthy,
        ),
        (
            "AcceleratedHardwareReady",
            Some("NeuronDMAError"),
            Eks,
            F::GpuUnhealthy,
        ),
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

fn taint<'a>(key: &'a str, value: Option<&'a str>, effect: &'a str) -> DeviceTaint<'a> {
    DeviceTaint {
        driver: "gpu.nvidia.com",
        pool: "node-a",
        device: "gpu-3",
        key,
        value,
        effect,
        time_added: Some("2026-11-20T10:00:00Z"),
        gpu_uuid: Some("GPU-3333"),
    }
}

fn with_uuid(mut inc: Incident, uuid: &str) -> Incident {
    inc.gpu_uuid = Some(uuid.into());
    for s in &mut inc.signals {
        s.gpu_uuid = Some(uuid.into());
    }
    inc
}

#[test]
fn nvidia_dra_taints_of_every_shape() {
    let x = classify_taint(&taint(TAINT_XID, Some("79"), "NoSchedule"));
    assert_eq!(x.source, PlatformSource::DraDriverTaint);
    assert_eq!(x.fault, PlatformFault::Xid { code: Some(79) });
    assert_eq!(x.severity, Severity::Critical);
    assert_eq!(x.device.as_deref(), Some("gpu.nvidia.com/node-a/gpu-3"));
    assert_eq!(x.gpu_uuid.as_deref(), Some("GPU-3333"));
    assert_eq!(
        x.line(),
        "NVIDIA DRA driver (ResourceSlice taint): gpu.nvidia.com/xid=79:NoSchedule on gpu.nvidia.com/node-a/gpu-3 (GPU-3333) since 2026-11-20T10:00:00Z"
    );
    // An ignored Xid is published with effect None: informational.
    let ignored = classify_taint(&taint(TAINT_XID, Some("13"), "None"));
    assert_eq!(ignored.severity, Severity::Info);
    assert_eq!(ignored.fault, PlatformFault::Xid { code: Some(13) });
    let lost = classify_taint(&taint(TAINT_GPU_LOST, None, "NoSchedule"));
    assert_eq!(
        (lost.fault, lost.severity, lost.condition.as_str()),
        (
            PlatformFault::GpuMissing,
            Severity::Critical,
            "gpu.nvidia.com/gpu-lost:NoSchedule"
        )
    );
    let unmon = classify_taint(&taint(TAINT_UNMONITORED, None, "None"));
    assert_eq!(
        (unmon.fault, unmon.severity),
        (PlatformFault::Unmonitored, Severity::Info)
    );
    assert_eq!(unmon.incident().action.kind, ActionKind::None);
    // Unknown effects are read as None (KEP-5055), and the mark says so.
    let odd = classify_taint(&taint(TAINT_XID, Some("79"), "PreferNoSchedule"));
    assert_eq!(odd.severity, Severity::Info);
    assert!(odd.reason.as_deref().unwrap().contains("read as None"));
    // Another driver's key: a GPU fault not named further; NoExecute is enforced.
    let other = classify_taint(&taint("example.com/broken", Some("yes"), "NoExecute"));
    assert_eq!(
        (other.fault, other.severity),
        (PlatformFault::GpuUnhealthy, Severity::Critical)
    );
    // A non-numeric or over-long Xid value names no code.
    let bad = classify_taint(&taint(TAINT_XID, Some("79999"), "NoSchedule"));
    assert_eq!(bad.fault, PlatformFault::Xid { code: None });
    // A lone taint is an incident of its own, on the device, with its source and time.
    let inc = x.incident();
    assert_eq!(
        inc.component,
        "device gpu.nvidia.com/node-a/gpu-3 (GPU-3333)"
    );
    assert_eq!(inc.gpu_uuid.as_deref(), Some("GPU-3333"));
    assert_eq!(inc.first_seen.as_deref(), Some("2026-11-20T10:00:00Z"));
    assert!(inc.rule.unwrap().reason.contains("ResourceSlice"));
}

#[test]
fn hostile_taint_and_health_text_is_bounded() {
    let long = "k".repeat(5000);
    let evil = format!("gpu.nvidia.com/xid\u{202E}\u{0007}\n{long}");
    let t = DeviceTaint {
        driver: &evil,
        pool: &evil,
        device: &evil,
        key: &evil,
        value: Some(&evil),
        effect: &evil,
        time_added: Some(&evil),
        gpu_uuid: Some(&evil),
    };
    let m = classify_taint(&t);
    assert_eq!(
        m.severity,
        Severity::Info,
        "an unknown effect is never enforced"
    );
    for text in [
        m.condition.as_str(),
        m.device.as_deref().unwrap(),
        m.since.as_deref().unwrap(),
        m.gpu_uuid.as_deref().unwrap(),
        m.reason.as_deref().unwrap(),
    ] {
        assert!(text.chars().count() <= 3 * MAX_NAME + 40, "{}", text.len());
        assert!(!text.chars().any(|c| c.is_control() || c == '\u{202E}'));
    }
    let h = classify_resource_health(&ResourceHealth {
        pod: "ns/p",
        name: "claim:c/gpu",
        resource_id: &evil,
        health: "Unhealthy",
        message: Some(&format!("bad\u{202E}\u{0000}{long}")),
        gpu_uuid: None,
    })
    .unwrap();
    assert!(h.message.as_deref().unwrap().chars().count() <= MAX_MESSAGE);
    assert!(!h.message.unwrap().chars().any(|c| c.is_control()));
    assert!(h.device.unwrap().chars().count() <= MAX_NAME);
}

#[test]
fn kubelet_device_health() {
    let r = |health| ResourceHealth {
        pod: "team-a/train-0",
        name: "claim:gpu-claim/gpu",
        resource_id: "gpu.nvidia.com/node-a/gpu-3",
        health,
        message: Some("Xid 79"),
        gpu_uuid: Some("GPU-3333"),
    };
    assert!(classify_resource_health(&r("Healthy")).is_none());
    assert!(classify_resource_health(&r("Unknown")).is_none());
    let m = classify_resource_health(&r("Unhealthy")).unwrap();
    assert_eq!(m.source, PlatformSource::KubeletDeviceHealth);
    assert_eq!(m.severity, Severity::Critical);
    assert_eq!(
        m.line(),
        "kubelet device health (allocatedResourcesStatus): team-a/train-0 claim:gpu-claim/gpu=Unhealthy on gpu.nvidia.com/node-a/gpu-3 (GPU-3333)"
    );
    // Unnamed fault on a known GPU: joins that GPU's incident, not another GPU's.
    let mut inc = Incidents {
        incidents: vec![
            with_uuid(probe_incident("gpu.memory", &["ecc.dbe"]), "GPU-1111"),
            with_uuid(probe_incident("gpu.off_bus", &["xid.79"]), "GPU-3333"),
        ],
        history: vec![],
    };
    join(&mut inc, &[m]);
    assert_eq!(inc.incidents.len(), 2);
    let off = inc
        .incidents
        .iter()
        .find(|i| i.code == "gpu.off_bus")
        .unwrap();
    assert_eq!(off.signals.len(), 2);
    let mem = inc
        .incidents
        .iter()
        .find(|i| i.code == "gpu.memory")
        .unwrap();
    assert_eq!(mem.signals.len(), 1);
}

#[test]
fn a_taint_joins_its_own_gpus_incident_only() {
    let x = classify_taint(&taint(TAINT_XID, Some("79"), "NoSchedule"));
    // The probe's Xid 79 on another GPU: the taint is its own incident.
    let mut inc = Incidents {
        incidents: vec![with_uuid(
            probe_incident("gpu.off_bus", &["xid.79"]),
            "GPU-1111",
        )],
        history: vec![],
    };
    join(&mut inc, std::slice::from_ref(&x));
    assert_eq!(inc.incidents.len(), 2, "{inc:#?}");
    assert!(inc.incidents.iter().all(|i| i.signals.len() == 1));
    // On the same GPU (UUIDs compared without case): one fault, one incident.
    let mut inc = Incidents {
        incidents: vec![with_uuid(
            probe_incident("gpu.off_bus", &["xid.79"]),
            "gpu-3333",
        )],
        history: vec![],
    };
    join(&mut inc, std::slice::from_ref(&x));
    assert_eq!(inc.incidents.len(), 1);
    assert_eq!(inc.incidents[0].signals.len(), 2);
    assert!(
        inc.incidents[0]
            .summary
            .contains("gpu.nvidia.com/xid=79:NoSchedule")
    );
    // A port's incident is never a GPU's mark's.
    let mut port = probe_incident("nic.link_fault", &["nic.down"]);
    port.gpu = None;
    assert!(!x.is_about(&port));
}

#[test]
fn a_joined_mark_recomputes_severity_and_action() {
    // A warning incident of the probe, and a critical mark about the same fault: the incident becomes
    // critical, and the mark's stronger action wins.
    let mut weak = probe_incident("gpu.memory", &["ecc.sbe"]);
    weak.severity = Severity::Warning;
    weak.action = Action {
        kind: ActionKind::Monitor,
        detail: "watch it".into(),
    };
    let mut inc = Incidents {
        incidents: vec![weak],
        history: vec![],
    };
    let dbe = classify(&cond("GpuMemWatch", "True", None)).unwrap();
    assert_eq!(dbe.severity, Severity::Critical);
    join(&mut inc, &[dbe]);
    assert_eq!(inc.incidents.len(), 1);
    let i = &inc.incidents[0];
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.action.kind, ActionKind::DrainAndResetGpu);
    // A weaker mark never softens: the probe's RMA stays, critical stays.
    let mut inc = Incidents {
        incidents: vec![probe_incident("gpu.thermal", &["thermal.slowdown"])],
        history: vec![],
    };
    let warm = classify(&cond("GpuThermalWatch", "True", None)).unwrap();
    assert_eq!(warm.severity, Severity::Warning);
    join(&mut inc, &[warm]);
    assert_eq!(inc.incidents[0].severity, Severity::Critical);
    assert_eq!(inc.incidents[0].action.kind, ActionKind::Rma);
}

/// AMD's signals: the condition AMD's documented node-problem-detector rules set with `amdgpuhealth`
/// (`AMDGPUProblem`, reason `AMDGPUIsDown`: ROCm/device-metrics-exporter docs/integrations/npd) and the
/// GPU Operator's remediation taint (`amd-gpu-unhealthy:NoSchedule`, ROCm/gpu-operator docs). Other
/// taints make no mark; the marks are incidents of their own, named by source.
#[test]
fn amd_condition_and_remediation_taint() {
    let npd = classify(&NodeCondition {
        message: Some("GPU_ECC_UNCORRECT_UMC value 3 exceeds threshold 1"),
        ..cond("AMDGPUProblem", "True", Some("AMDGPUIsDown"))
    })
    .unwrap();
    assert_eq!(
        (npd.source, npd.fault, npd.severity),
        (
            PlatformSource::AmdGpuHealth,
            PlatformFault::GpuUnhealthy,
            Severity::Critical
        )
    );
    assert!(classify(&cond("AMDGPUProblem", "False", Some("AMDGPUIsUp"))).is_none());

    let taint = classify_node_taint(
        "amd-gpu-unhealthy",
        None,
        "NoSchedule",
        Some("2026-11-20T10:05:00Z"),
    )
    .unwrap();
    assert_eq!(
        taint.line(),
        "AMD GPU Operator (remediation taint): taint amd-gpu-unhealthy:NoSchedule since 2026-11-20T10:05:00Z"
    );
    assert!(classify_node_taint("nvidia.com/gpu", Some("present"), "NoSchedule", None).is_none());
    assert!(classify_node_taint("amd.com/gpu", None, "NoSchedule", None).is_none());

    let mut inc = Incidents {
        incidents: vec![],
        history: vec![],
    };
    join(&mut inc, &[npd, taint]);
    assert_eq!(inc.incidents.len(), 2);
    assert!(inc.incidents.iter().all(|i| i.code == "platform.gpu"));
    let own = &inc.incidents[1];
    assert!(
        own.rule
            .as_ref()
            .unwrap()
            .reason
            .contains("AMD GPU Operator tainted this node"),
        "{own:#?}"
    );
}

/// A device plugin's withdrawal: NVIDIA's (some GPUs, on Xid events) is about the probe's Xid incident and
/// joins it; all GPUs withdrawn (a stopped plugin too) and the other vendors' withdrawals are incidents of
/// their own; a whole resource or a source that is no device plugin makes no mark.
#[test]
fn device_plugin_withdrawals_join_the_xid_incident_only_where_the_plugin_means_an_xid() {
    let nv = devices_withdrawn(PlatformSource::NvidiaDevicePlugin, "nvidia.com/gpu", 8, 6).unwrap();
    assert_eq!(nv.fault, PlatformFault::Xid { code: None });
    assert!(nv.is_about(&probe_incident("gpu.off_bus", &["xid.79"])));
    assert!(!nv.is_about(&probe_incident("nvlink.fault", &["nvlink.down"])));
    let nv_all =
        devices_withdrawn(PlatformSource::NvidiaDevicePlugin, "nvidia.com/gpu", 8, 0).unwrap();
    assert_eq!(nv_all.fault, PlatformFault::GpuUnhealthy);
    assert!(!nv_all.is_about(&probe_incident("gpu.off_bus", &["xid.79"])));
    let amd = devices_withdrawn(PlatformSource::AmdDevicePlugin, "amd.com/gpu", 8, 7).unwrap();
    assert_eq!(amd.fault, PlatformFault::GpuUnhealthy);
    assert_eq!(amd.severity, Severity::Critical);
    let mut inc = Incidents {
        incidents: vec![probe_incident("gpu.off_bus", &["xid.79"])],
        history: vec![],
    };
    join(&mut inc, &[nv.clone(), amd]);
    assert_eq!(inc.incidents.len(), 2, "{inc:#?}");
    assert!(
        inc.incidents[0]
            .summary
            .contains("Also reported by NVIDIA device plugin: 2 of 8 nvidia.com/gpu withdrawn"),
        "{:#?}",
        inc.incidents[0]
    );
    assert!(
        devices_withdrawn(PlatformSource::NvidiaDevicePlugin, "nvidia.com/gpu", 8, 8).is_none()
    );
    assert!(devices_withdrawn(PlatformSource::AmdDevicePlugin, "amd.com/gpu", 0, 0).is_none());
    assert!(devices_withdrawn(PlatformSource::NvSentinel, "nvidia.com/gpu", 8, 6).is_none());
}

/// Habana's plugin (1.16.0) withdraws one Gaudi only when it could not register HLML's critical-error event
/// for it: a critical event about a device it finds withdraws nothing (its ids are serials, compared with
/// the UUID). So a partial withdrawal names the registration, never the probe's memory incident, and all
/// withdrawn names the unresolved event, every registration failing, or a stopped plugin.
#[test]
fn a_gaudi_withdrawal_names_habanas_own_causes_and_no_memory_incident() {
    let some =
        devices_withdrawn(PlatformSource::GaudiDevicePlugin, "habana.ai/gaudi", 8, 7).unwrap();
    assert_eq!(
        some.reason.as_deref(),
        Some("HLML event registration failed for the withdrawn devices")
    );
    assert!(
        some.message
            .as_deref()
            .unwrap()
            .contains("an event naming a device withdraws none"),
        "{some:?}"
    );
    assert_eq!(some.fault, PlatformFault::GpuUnhealthy);
    for probe in [
        probe_incident("gpu.memory", &["habanalabs.ecc_double"]),
        probe_incident("gpu.unusable", &["habanalabs.device_unusable"]),
    ] {
        assert!(!some.is_about(&probe), "{probe:?}");
    }
    let all =
        devices_withdrawn(PlatformSource::GaudiDevicePlugin, "habana.ai/gaudi", 8, 0).unwrap();
    let reason = all.reason.unwrap();
    for cause in [
        "could not name",
        "registration failed for every device",
        "plugin stopped",
    ] {
        assert!(reason.contains(cause), "{reason}");
    }
}
