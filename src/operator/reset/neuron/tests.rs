use super::*;
use crate::facts::neuron::NeuronCoreFacts;
use crate::facts::{DeviceHolderFacts, FieldError, FieldErrorKind};
use crate::operator::CheckStatus;
use crate::operator::reset::GpuSelector;
use crate::operator::reset::test_support::req;

/// What the plan answers for the GPU `r` asks (the plan itself is tested in `plan.rs`, which this file
/// may not import: the plan names the vendors' registry, which names this vendor).
struct Plan {
    allowed: bool,
    checks: Vec<Check>,
    plan: Vec<PlanStep>,
}

fn plan(f: &NodeFacts, r: &ResetRequest, _dry_run: bool, _simulated: bool) -> Plan {
    let g = r.gpu.find(f).expect("the GPU");
    let checks = crate::operator::override_as_confirmed(
        Neuron.preflight(f, g, r),
        r.override_unknown,
        r.seen_unknown.as_deref(),
    );
    let pf = crate::operator::Preflight::from_checks(checks);
    Plan {
        allowed: pf.allowed,
        checks: pf.checks,
        plan: Neuron.steps(f, g),
    }
}

/// Trainium2 device 9 (`neuron9`) with 8 NeuronCores whose driver counted `req` reset requests each.
fn device(state: u32, req: u64, fail: u64) -> GpuFacts {
    GpuFacts {
        index: 9,
        vendor: GpuVendor::Neuron,
        serial: Reading::Ok("2a5f000010090009".into()),
        neuron: Some(NeuronGpuFacts {
            device: "neuron9".into(),
            device_state: Reading::Ok(state),
            cores: (0..8)
                .map(|core| NeuronCoreFacts {
                    core,
                    reset_req_count: Reading::Ok(req),
                    reset_fail_count: Reading::Ok(fail),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(g: GpuFacts, holders: Vec<DeviceHolderFacts>) -> NodeFacts {
    NodeFacts {
        gpus: vec![g],
        device_holders: Some(Reading::Ok(DeviceHoldersFacts {
            holders,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn holder(pid: u32, dev: &str) -> DeviceHolderFacts {
    DeviceHolderFacts {
        pid,
        name: Reading::Ok("python3".into()),
        devices: vec![dev.into()],
        kfd: None,
    }
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
}

fn log(lines: &[&str]) -> KernelLogFacts {
    KernelLogFacts {
        origin: "test".into(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        truncated: false,
    }
}

#[test]
fn an_idle_device_is_reset_through_its_reset_file() {
    let r = plan(
        &node(device(1, 2, 0), vec![]),
        &req(GpuSelector::Index(9)),
        false,
        false,
    );
    assert!(r.allowed, "{:#?}", r.checks);
    assert_eq!(r.plan[0].action, "reset", "{:#?}", r.plan);
    assert!(
        r.plan[0]
            .detail
            .starts_with("echo 1 > /sys/class/neuron_device/neuron9/reset"),
        "{:#?}",
        r.plan
    );
    assert_eq!(
        check(&r.checks, "reset_verifiable").status,
        CheckStatus::Pass
    );
    assert_eq!(
        check(&r.checks, "device_node_holders").evidence,
        "no process holds /dev/neuron9"
    );
}

/// The driver ignores a write while the device is open, so a holder refuses; another device's holder
/// does not; a scan that could not see a process is unknown, which only a person may override.
#[test]
fn a_holder_refuses_and_an_incomplete_scan_is_unknown() {
    let r = plan(
        &node(
            device(1, 2, 0),
            vec![holder(4242, "/dev/neuron9"), holder(77, "/dev/neuron1")],
        ),
        &req(GpuSelector::Index(9)),
        false,
        false,
    );
    assert!(!r.allowed);
    let h = check(&r.checks, "device_node_holders");
    assert_eq!(h.status, CheckStatus::Block);
    assert!(
        h.evidence
            .starts_with("1 process(es) hold /dev/neuron9 of GPU 9: pid 4242 (python3). The neuron driver ignores a reset of a device that is open"),
        "{}",
        h.evidence
    );

    let mut f = node(device(1, 2, 0), vec![]);
    if let Some(Reading::Ok(s)) = &mut f.device_holders {
        s.denied_pids = vec![31337];
    }
    let r = plan(&f, &req(GpuSelector::Index(9)), false, false);
    assert!(!r.allowed);
    assert_eq!(
        check(&r.checks, "device_node_holders").status,
        CheckStatus::Block
    );
    let saw = crate::operator::unknown_items(&r.checks);
    assert_eq!(saw.len(), 1, "{saw:?}");
    let mut over = req(GpuSelector::Index(9));
    over.override_unknown = true;
    // The override covers what the person saw, and only that.
    over.seen_unknown = Some(crate::operator::reset::amd::tests::digests(&saw));
    let r = plan(&f, &over, false, false);
    assert!(r.allowed, "{:#?}", r.checks);
    assert_eq!(
        check(&r.checks, "device_node_holders").status,
        CheckStatus::Warn
    );
}

/// Without the request count the reset cannot be told from an ignored write: none is run. A device
/// the driver is resetting already is left to it.
#[test]
fn no_count_or_a_device_in_reset_refuses() {
    let mut g = device(1, 2, 0);
    g.neuron.as_mut().unwrap().cores[3].reset_req_count =
        Reading::Err(FieldError::new(FieldErrorKind::NotFound));
    let r = plan(&node(g, vec![]), &req(GpuSelector::Index(9)), false, false);
    assert!(!r.allowed);
    assert_eq!(
        check(&r.checks, "reset_verifiable").status,
        CheckStatus::Block
    );

    let r = plan(
        &node(device(0, 2, 0), vec![]),
        &req(GpuSelector::Index(9)),
        false,
        false,
    );
    assert!(!r.allowed);
    assert_eq!(check(&r.checks, "neuron_state").status, CheckStatus::Block);

    // Invalid: the reset is the driver's way back.
    let r = plan(
        &node(device(2, 3, 1), vec![]),
        &req(GpuSelector::Index(9)),
        false,
        false,
    );
    assert!(r.allowed, "{:#?}", r.checks);
}

#[test]
fn a_reset_taken_and_completed_is_verified() {
    let before = device(1, 2, 0);
    let after = node(device(1, 3, 0), vec![]);
    let now = Duration::ZERO;
    assert!(Neuron.settled(&before, &after, now));
    assert!(!Neuron.settled(&before, &node(device(0, 3, 0), vec![]), now));
    let v = Neuron.verify(
        &before,
        &after,
        Some(&log(&["6,10,100,-;Linux version"])),
        &Reading::Ok(log(&[
            "6,10,100,-;Linux version",
            "6,11,200,-;neuron:nr_reset_thread_fn: nd9: initiating device reset request 4294967295",
            "6,12,300,-;neuron:nr_reset_thread_fn: nd1: reset request 4294967295 failed",
            "6,13,900,-;neuron:nr_reset_thread_fn: nd9: reset request 4294967295 completed",
        ])),
    );
    assert!(v.iter().all(|c| c.status == CheckStatus::Pass), "{v:#?}");
    assert_eq!(
        check(&v, "reset_taken").evidence,
        "the driver queued the reset: reset_req_count 16 -> 24"
    );
    assert_eq!(
        check(&v, "kernel_log_reset").evidence,
        "the kernel logged: \"initiating device reset request 4294967295\", \"reset request 4294967295 completed\""
    );
}

/// A write the driver ignored (the device opened after the scan) leaves the device ready and the count
/// as it was: settled at once, and not verified. A failed reset: invalid, counted, logged.
#[test]
fn an_ignored_write_and_a_failed_reset_are_not_verified() {
    let before = device(1, 2, 0);
    let after = node(device(1, 2, 0), vec![]);
    assert!(!Neuron.settled(&before, &after, Duration::from_millis(300)));
    assert!(Neuron.settled(&before, &after, IGNORED_AFTER));
    let v = Neuron.verify(&before, &after, None, &Reading::Ok(log(&[])));
    let taken = check(&v, "reset_taken");
    assert_eq!(taken.status, CheckStatus::Block);
    assert!(taken.evidence.contains("still 16"), "{}", taken.evidence);

    let after = node(device(2, 3, 1), vec![]);
    let v = Neuron.verify(
        &before,
        &after,
        None,
        &Reading::Ok(log(&[
            "6,11,200,-;neuron:nr_reset_thread_fn: nd9: reset request 4294967295 was initiated, but failed to complete",
        ])),
    );
    let blocked: Vec<&str> = v
        .iter()
        .filter(|c| c.status == CheckStatus::Block)
        .map(|c| c.check.as_str())
        .collect();
    assert_eq!(
        blocked,
        ["gpu_back", "reset_failed_count", "kernel_log_reset"],
        "{v:#?}"
    );
    assert!(check(&v, "gpu_back").evidence.contains("reboot it"));
}

/// A line that only looks like the driver's (no `neuron:` prefix: a program's own output), or the
/// driver's words written into /dev/kmsg from user space, is not quoted and proves nothing.
#[test]
fn a_look_alike_line_is_not_the_drivers() {
    for line in [
        "6,11,200,-;trainer: nd9: reset request 4294967295 completed",
        "12,11,200,-;neuron:nr_reset_thread_fn: nd9: reset request 4294967295 completed",
    ] {
        let c = check_kernel_log("neuron9", None, &Reading::Ok(log(&[line])));
        assert_eq!(c.status, CheckStatus::Warn, "{line}: {c:?}");
    }
    let c = check_kernel_log(
        "neuron9",
        None,
        &Reading::Ok(log(&[
            "6,11,200,-;neuron:nr_reset_thread_fn: nd9: reset request 4294967295 completed",
        ])),
    );
    assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
}
