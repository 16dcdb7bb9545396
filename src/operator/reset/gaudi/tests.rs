//! The Gaudi preflight and verification on the built-in Gaudi 2 scenario (GPU 6, `accel6` at
//! 0000:b3:00.0, a malfunction) with the holder scan and kubelet answers each test sets. Kernel lines are
//! the driver's own format strings (`common/device.c:1461`, `:1741`, `:1974`, `:2015`, `common/sysfs.c`
//! `hard_reset_store`) with `dev_info`'s `habanalabs <BDF>: ` prefix.

use super::*;
use crate::facts::{
    ContainerDevicesFacts, DeviceHoldersFacts, PodResourcesContainerFacts, PodResourcesFacts,
    PodResourcesPodFacts,
};
use crate::operator::CheckStatus;
use crate::operator::reset::ResetOutcome;
use crate::operator::reset::request::GpuSelector;
use crate::operator::reset::test_support::{holder, req};
use crate::operator::reset::vendor::sysfs_verified as verified;

/// The Gaudi preflight as the plan runs it after `gpu_found` (the plan's own checks are tested there).
fn preflight(f: &NodeFacts, r: &ResetRequest) -> crate::operator::Preflight {
    let g = r.gpu.find(f).expect("the GPU");
    crate::operator::Preflight::from_checks(super::preflight(f, g, r))
}

fn gaudi2() -> NodeFacts {
    let mut f: NodeFacts =
        serde_json::from_str(include_str!("../../../scenarios/gaudi2-malfunction.json")).unwrap();
    f.pod_resources = Reading::Ok(PodResourcesFacts {
        socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
        dra_gate: Some(crate::facts::KubeletGateFacts {
            enabled: true,
            from: "test".into(),
        }),
        ..Default::default()
    });
    f.dra = Reading::Ok(Default::default());
    f.api_claims = Some(vec![]);
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts::default()));
    f
}

fn check<'a>(c: &'a [Check], name: &str) -> &'a Check {
    c.iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no {name} in {c:#?}"))
}

fn kmsg(lines: &[&str]) -> KernelLogFacts {
    KernelLogFacts {
        origin: "kmsg".into(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        truncated: false,
    }
}

#[test]
fn the_reset_file_is_named_from_the_class_device_only() {
    assert_eq!(
        hard_reset_file("accel3").as_deref(),
        Some("sys/class/accel/accel3/device/hard_reset")
    );
    assert_eq!(
        hard_reset_file("hl0").as_deref(),
        Some("sys/class/habanalabs/hl0/hard_reset")
    );
    for bad in [
        "accel",
        "accel../../x",
        "hl",
        "accel_controlD64",
        "renderD128",
        "accel12345",
    ] {
        assert_eq!(hard_reset_file(bad), None, "{bad}");
    }
}

#[test]
fn an_idle_unassigned_gaudi_is_allowed_and_the_write_is_planned() {
    let f = gaudi2();
    let mut r = req(GpuSelector::Index(6));
    r.tool = Some(Ok(
        reset_argv("sys/class/accel/accel6/device/hard_reset").join(" ")
    ));
    let p = preflight(&f, &r);
    assert!(p.allowed, "{:#?}", p.checks);
    assert_eq!(
        check(&p.checks, "reset_tool").evidence,
        "will run `echo 1 > /sys/class/accel/accel6/device/hard_reset`"
    );
    assert_eq!(
        check(&p.checks, "device_node_holders").evidence,
        "no process holds /dev/accel/accel6"
    );
    assert_eq!(
        check(&p.checks, "not_assigned_to_a_pod").status,
        CheckStatus::Pass
    );
    let steps = steps(&f.gpus[6]);
    assert_eq!(steps.len(), 2);
    assert!(
        steps[0]
            .detail
            .starts_with("echo 1 > /sys/class/accel/accel6/device/hard_reset (the habanalabs"),
        "{steps:?}"
    );
}

#[test]
fn a_holder_of_the_accel_node_blocks_and_another_devices_holder_does_not() {
    let mut f = gaudi2();
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders: vec![
            holder(4242, "python3", &["/dev/accel/accel6"]),
            holder(4343, "python3", &["/dev/accel/accel5"]),
            holder(4444, "hl-smi", &["/dev/accel/accel60"]),
        ],
        ..Default::default()
    }));
    let c = preflight(&f, &req(GpuSelector::Index(6))).checks;
    let h = check(&c, "device_node_holders");
    assert_eq!(h.status, CheckStatus::Block);
    assert_eq!(
        h.evidence,
        "1 process(es) hold /dev/accel/accel6 of GPU 6: pid 4242 (python3). The driver's hard reset kills \
         them: stop them first (kill_gpu_process, or drain the pods)"
    );
    // GPU 5's holder alone: GPU 6 is free.
    let mut g = gaudi2();
    g.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders: vec![holder(4343, "python3", &["/dev/accel/accel5"])],
        ..Default::default()
    }));
    let c = preflight(&g, &req(GpuSelector::Index(6))).checks;
    assert_eq!(check(&c, "device_node_holders").status, CheckStatus::Pass);
}

#[test]
fn unreadable_fd_tables_are_named_unknowns_a_person_may_override() {
    let mut f = gaudi2();
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        denied_pids: vec![777],
        unreadable_pids: 1,
        ..Default::default()
    }));
    let c = preflight(&f, &req(GpuSelector::Index(6))).checks;
    let h = check(&c, "device_node_holders");
    assert_eq!(h.status, CheckStatus::Block);
    assert_eq!(
        h.unknown_holders,
        vec![
            "the open files of pid 777 could not be read (permission denied: an LSM or ptrace restriction), so \
             what they hold is not known"
        ]
    );
    // A table read in part, or processes left unread: unknown too, never free.
    for scan in [
        DeviceHoldersFacts {
            fd_tables_cut: vec![88],
            ..Default::default()
        },
        DeviceHoldersFacts {
            pids_not_scanned: 3,
            ..Default::default()
        },
    ] {
        let mut g = gaudi2();
        g.device_holders = Some(Reading::Ok(scan));
        let c = preflight(&g, &req(GpuSelector::Index(6))).checks;
        assert_eq!(check(&c, "device_node_holders").status, CheckStatus::Block);
    }
    // A process that exited meanwhile (unreadable, not denied) holds nothing.
    let mut g = gaudi2();
    g.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        unreadable_pids: 2,
        ..Default::default()
    }));
    let exited = preflight(&g, &req(GpuSelector::Index(6))).checks;
    assert_eq!(
        check(&exited, "device_node_holders").status,
        CheckStatus::Pass
    );
    assert!(!h.unknown_sources.is_empty());
    let mut r = req(GpuSelector::Index(6));
    // The plan then checks the override covers what the person saw (`plan.rs`, `with_seen_unknowns`).
    r.override_unknown = true;
    let p = preflight(&f, &r);
    assert!(p.allowed, "{:#?}", p.checks);
    assert_eq!(
        check(&p.checks, "device_node_holders").status,
        CheckStatus::Warn
    );
}

/// Habana's plugin names a device by HLML's serial, which sysfs lacks: any `habana.ai/gaudi` assignment
/// is unknown for every Gaudi of the node (never "free"), and names the pod.
#[test]
fn a_gaudi_assigned_by_serial_the_probe_cannot_place_is_unknown_not_free() {
    let mut f = gaudi2();
    f.pod_resources = Reading::Ok(PodResourcesFacts {
        socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
        pods: vec![PodResourcesPodFacts {
            name: "train-0".into(),
            namespace: "ml".into(),
            containers: vec![PodResourcesContainerFacts {
                name: "main".into(),
                devices: vec![ContainerDevicesFacts {
                    resource_name: "habana.ai/gaudi".into(),
                    device_ids: vec!["AM12345678".into()],
                    numa_nodes: vec![],
                }],
                claims: vec![],
            }],
        }],
        dra_gate: Some(crate::facts::KubeletGateFacts {
            enabled: true,
            from: "test".into(),
        }),
        ..Default::default()
    });
    let c = preflight(&f, &req(GpuSelector::Index(6))).checks;
    let a = check(&c, "not_assigned_to_a_pod");
    assert_eq!(a.status, CheckStatus::Block, "{a:?}");
    assert!(
        a.evidence
            .contains("ml/train-0 (container main) holds habana.ai/gaudi AM12345678")
            && a.evidence.contains("Intel Gaudi"),
        "{}",
        a.evidence
    );
    assert!(
        !a.evidence.contains("AMD") && !a.evidence.contains("NVML"),
        "{}",
        a.evidence
    );
}

#[test]
fn a_device_in_reset_is_left_to_the_driver() {
    let mut f = gaudi2();
    f.gpus[6].gaudi.as_mut().unwrap().status = Reading::Ok("In reset".into());
    let c = preflight(&f, &req(GpuSelector::Index(6))).checks;
    assert_eq!(check(&c, "gaudi_status").status, CheckStatus::Block);
}

fn after_reset(status: &str, count: u64) -> NodeFacts {
    let mut f = gaudi2();
    let g = f.gpus[6].gaudi.as_mut().unwrap();
    g.status = Reading::Ok(status.into());
    g.hard_reset_count = Reading::Ok(count);
    f
}

#[test]
fn a_reset_is_verified_by_the_drivers_status_count_and_lines() {
    let before = gaudi2();
    let was = before.gpus[6]
        .gaudi
        .as_ref()
        .unwrap()
        .hard_reset_count
        .get()
        .unwrap();
    let after = after_reset("Operational", was + 1);
    assert!(settled(&before.gpus[6], &after));
    let log0 = kmsg(&["6,900,100,-;Linux version 6.12.0"]);
    let log1 = kmsg(&[
        "6,900,100,-;Linux version 6.12.0",
        "4,901,200,-;habanalabs 0000:b3:00.0: Hard-Reset requested through sysfs",
        "6,902,210,-;habanalabs 0000:b3:00.0: Going to reset device",
        "6,903,220,-;habanalabs 0000:19:00.0: Successfully finished resetting the 0000:19:00.0 device",
        "6,904,9000,-;habanalabs 0000:b3:00.0: Successfully finished resetting the 0000:b3:00.0 device",
    ]);
    let v = verify(&before.gpus[6], &after, Some(&log0), &Reading::Ok(log1));
    assert!(v.iter().all(|c| c.status == CheckStatus::Pass), "{v:#?}");
    assert_eq!(
        check(&v, "reset_counted").evidence,
        format!(
            "the driver counted the hard reset: hard_reset_cnt {was} -> {}",
            was + 1
        )
    );
    assert!(
        check(&v, "same_device").evidence.contains("module id")
            && check(&v, "same_device").evidence.contains("ASIC GAUDI2")
            && check(&v, "same_device")
                .evidence
                .contains("serial was not read"),
        "{v:#?}"
    );
    // Another device's success line is not this one's.
    let k = &check(&v, "kernel_log_reset").evidence;
    assert!(!k.contains("0000:19:00.0"), "{k}");
    assert!(
        k.ends_with("\"Successfully finished resetting the 0000:b3:00.0 device\""),
        "{k}"
    );
}

/// A Gaudi whose firmware-backed sysfs reads timed out keeps discovery's identity (class device, PCI
/// address): the hard reset is allowed where no holder and no pod are (still refused for either, or an
/// incomplete scan), and verified by the status read back `Operational` and the kernel's line, its count
/// not read before.
#[test]
fn a_hung_firmware_gaudi_is_reset_from_discoverys_identity() {
    let mut f = gaudi2();
    let hung = crate::facts::FieldError::with_message(
        crate::facts::FieldErrorKind::Timeout,
        "the habanalabs sysfs did not answer within 5 s",
    );
    let g = &mut f.gpus[6];
    g.handle_error = Some(hung.clone());
    g.gaudi = Some(crate::facts::GaudiGpuFacts {
        device: "accel6".into(),
        status: Reading::Err(hung.clone()),
        hard_reset_count: Reading::Err(hung),
        ..Default::default()
    });
    g.serial = Reading::default();
    let p = preflight(&f, &req(GpuSelector::Index(6)));
    assert!(p.allowed, "{p:#?}");
    assert_eq!(check(&p.checks, "gaudi_status").status, CheckStatus::Warn);
    // A holder, or a scan that could not see, still refuses.
    let mut held = f.clone();
    held.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders: vec![holder(4242, "python3", &["/dev/accel/accel6"])],
        ..Default::default()
    }));
    assert!(!preflight(&held, &req(GpuSelector::Index(6))).allowed);
    let mut blind = f.clone();
    blind.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        denied_pids: vec![777],
        unreadable_pids: 1,
        ..Default::default()
    }));
    assert!(!preflight(&blind, &req(GpuSelector::Index(6))).allowed);
    // Back Operational with a count: settled and verified (the count said, not required).
    let after = after_reset("Operational", 1);
    assert!(settled(&f.gpus[6], &after));
    let log0 = kmsg(&["6,900,100,-;Linux version 6.12.0"]);
    let log1 = kmsg(&[
        "6,900,100,-;Linux version 6.12.0",
        "6,904,9000,-;habanalabs 0000:b3:00.0: Successfully finished resetting the 0000:b3:00.0 device",
    ]);
    let v = verify(&f.gpus[6], &after, Some(&log0), &Reading::Ok(log1.clone()));
    assert!(v.iter().all(|c| c.status != CheckStatus::Block), "{v:#?}");
    assert_eq!(check(&v, "reset_counted").status, CheckStatus::Warn);
    // Still not Operational after it: not verified.
    let v = verify(
        &f.gpus[6],
        &after_reset("Disabled", 1),
        Some(&log0),
        &Reading::Ok(log1),
    );
    assert_eq!(check(&v, "gpu_back").status, CheckStatus::Block);
}

#[test]
fn a_failed_reset_is_counted_by_the_driver_yet_not_verified() {
    let before = gaudi2();
    let was = before.gpus[6]
        .gaudi
        .as_ref()
        .unwrap()
        .hard_reset_count
        .get()
        .unwrap();
    // The driver counts a failed hard reset too (common/device.c:2017) and leaves the device disabled.
    let after = after_reset("Disabled", was + 1);
    assert!(settled(&before.gpus[6], &after));
    let log = kmsg(&[
        "3,905,300,-;habanalabs 0000:b3:00.0: 0000:b3:00.0 Failed to reset! Device is NOT usable",
    ]);
    let v = verify(&before.gpus[6], &after, None, &Reading::Ok(log));
    assert_eq!(check(&v, "gpu_back").status, CheckStatus::Block);
    assert_eq!(check(&v, "reset_counted").status, CheckStatus::Pass);
    assert_eq!(check(&v, "kernel_log_reset").status, CheckStatus::Block);
    let o = ResetOutcome {
        commands: vec![],
        verification: v,
        verified: false,
        error: None,
    };
    assert!(!verified(&o, true));
}

#[test]
fn no_counted_reset_or_another_device_is_not_verified() {
    let before = gaudi2();
    let was = before.gpus[6]
        .gaudi
        .as_ref()
        .unwrap()
        .hard_reset_count
        .get()
        .unwrap();
    // Operational, but the driver counted nothing: the write reached no reset.
    let after = after_reset("Operational", was);
    assert!(!settled(&before.gpus[6], &after));
    let v = verify(&before.gpus[6], &after, None, &Reading::Ok(kmsg(&[])));
    assert_eq!(check(&v, "reset_counted").status, CheckStatus::Block);
    assert_eq!(check(&v, "kernel_log_reset").status, CheckStatus::Warn);
    // Another card in the slot: its module id differs.
    let mut other = after_reset("Operational", was + 1);
    let m = other.gpus[6]
        .gaudi
        .as_ref()
        .unwrap()
        .module_id
        .get()
        .unwrap();
    other.gpus[6].gaudi.as_mut().unwrap().module_id = Reading::Ok(m + 1);
    let v = verify(&before.gpus[6], &other, None, &Reading::Ok(kmsg(&[])));
    assert_eq!(
        check(&v, "same_device").status,
        CheckStatus::Block,
        "{v:#?}"
    );
    // The device gone from sysfs.
    let mut gone = gaudi2();
    gone.gpus.remove(6);
    let v = verify(&before.gpus[6], &gone, None, &Reading::Ok(kmsg(&[])));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].status, CheckStatus::Block);
}

/// A Gaudi whose firmware hung, as the reader leaves it (`node-probe/src/gaudi/mod.rs`
/// `a_hung_device_keeps_discoverys_identity`): only the class device and PCI address, the rest the
/// timeout. The hard reset is named from that identity and allowed (still refused for a holder), with a
/// warning that says why; before, the preflight refused a device whose class device it had lost.
#[test]
fn a_gaudi_with_hung_firmware_is_reset_from_discoverys_identity() {
    use crate::facts::{FieldError, FieldErrorKind, GaudiGpuFacts};
    let mut f = gaudi2();
    let why = FieldError::with_message(
        FieldErrorKind::Timeout,
        "the habanalabs sysfs did not answer within 10 s: the device's firmware (CPU-CP) or the driver is hung",
    );
    let g = f.gpus.iter_mut().find(|g| g.index == 6).unwrap();
    *g = GpuFacts {
        index: 6,
        vendor: crate::facts::GpuVendor::Intel,
        handle_error: Some(why.clone()),
        pci_bus_id: Reading::Ok("0000:b3:00.0".into()),
        gaudi: Some(GaudiGpuFacts {
            device: "accel6".into(),
            status: Reading::Err(why.clone()),
            hard_reset_count: Reading::Err(why.clone()),
            device_type: Reading::Err(why),
            ..Default::default()
        }),
        ..Default::default()
    };
    let p = preflight(&f, &req(GpuSelector::Index(6)));
    assert!(p.allowed, "{:#?}", p.checks);
    let hung = check(&p.checks, "gaudi_firmware");
    assert_eq!(hung.status, CheckStatus::Warn);
    assert!(
        hung.evidence.contains("did not answer within 10 s"),
        "{}",
        hung.evidence
    );
    assert_eq!(
        steps(&f.gpus[6])[0].detail.split(" (").next(),
        Some("echo 1 > /sys/class/accel/accel6/device/hard_reset")
    );
    // A holder still refuses.
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders: vec![holder(4242, "python3", &["/dev/accel/accel6"])],
        ..Default::default()
    }));
    let p = preflight(&f, &req(GpuSelector::Index(6)));
    assert!(!p.allowed);
    assert_eq!(
        check(&p.checks, "device_node_holders").status,
        CheckStatus::Block
    );
}
