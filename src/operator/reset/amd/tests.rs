//! The AMD preflight and verification on the built-in MI300X scenario (eight GPUs in one XGMI hive) with
//! the holder scan and kubelet answers each test sets.

use super::*;
use crate::facts::{DeviceHoldersFacts, FieldError, KfdProcessFacts, PodResourcesFacts, Reading};
use crate::operator::reset::request::GpuSelector;

pub(in crate::operator::reset) fn mi300x() -> NodeFacts {
    let mut f: NodeFacts =
        serde_json::from_str(include_str!("../../../scenarios/mi300x-healthy.json")).unwrap();
    // The kubelet answers with no pod; no DRA driver on the node.
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

fn gpu_id(f: &NodeFacts, i: u32) -> u32 {
    f.gpus[i as usize]
        .amd
        .as_ref()
        .unwrap()
        .kfd_nodes
        .ok()
        .unwrap()[0]
        .gpu_id
}

pub(in crate::operator::reset) fn holder(
    pid: u32,
    name: &str,
    devs: &[&str],
    kfd: Option<Vec<u32>>,
) -> DeviceHolderFacts {
    DeviceHolderFacts {
        pid,
        name: Reading::Ok(name.into()),
        devices: devs.iter().map(|d| d.to_string()).collect(),
        kfd: kfd.map(|gpu_ids| KfdProcessFacts { gpu_ids, queues: 2 }),
    }
}

pub(in crate::operator::reset) fn with_holders(f: &mut NodeFacts, holders: Vec<DeviceHolderFacts>) {
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders,
        ..Default::default()
    }));
}

pub(in crate::operator::reset) fn req(gpu: u32, overridden: bool) -> ResetRequest {
    ResetRequest {
        gpu: GpuSelector::Index(gpu),
        self_pid: Some(4000),
        tool: Some(Ok("chroot /host /opt/rocm/bin/amd-smi".into())),
        override_unknown: overridden,
        pin: None,
        seen_unknown: None,
    }
}

pub(in crate::operator::reset) fn check<'a>(cs: &'a [Check], name: &str) -> &'a Check {
    cs.iter()
        .find(|c| c.check == name)
        .unwrap_or_else(|| panic!("no {name} in {cs:#?}"))
}

/// The preflight; `overridden`: by a person who saw the unknowns of the preflight without it.
fn run(f: &NodeFacts, gpu: u32, overridden: bool) -> crate::operator::Preflight {
    let mut r = req(gpu, overridden);
    if overridden {
        let saw = preflight(f, &f.gpus[gpu as usize], &req(gpu, false));
        r.seen_unknown = Some(digests(&crate::operator::unknown_items(&saw)));
    }
    crate::operator::Preflight::from_checks(preflight(f, &f.gpus[gpu as usize], &r))
}

#[test]
fn an_idle_hive_is_allowed_and_the_plan_names_amd_smi_and_the_hive() {
    let mut f = mi300x();
    // The probe itself, and an NVIDIA-only holder, are nobody's holders here.
    with_holders(
        &mut f,
        vec![
            holder(4000, "node-probe", &["/dev/kfd"], None),
            holder(77, "Xorg", &["/dev/nvidiactl"], None),
        ],
    );
    let pf = run(&f, 3, false);
    assert!(pf.allowed, "{pf:#?}");
    let h = check(&pf.checks, "hive_device_holders");
    assert_eq!(h.status, CheckStatus::Pass);
    assert!(
        h.evidence.starts_with("GPU 0-7: no process"),
        "{}",
        h.evidence
    );
    let a = check(&pf.checks, "hive_not_assigned");
    assert!(a.evidence.contains("GPU 0-7"), "{}", a.evidence);
    let t = check(&pf.checks, "reset_tool");
    assert_eq!(
        t.evidence,
        "will run `chroot /host /opt/rocm/bin/amd-smi reset -G -g 0000:5c:00.0`"
    );
    let plan = steps(&f, &f.gpus[3]);
    assert_eq!(plan[0].action, "reset");
    assert!(plan[0].detail.contains("XGMI hive"), "{}", plan[0].detail);
}

#[test]
fn a_hive_peer_held_through_kfd_refuses_naming_the_peer_and_its_holder() {
    let mut f = mi300x();
    let peer = gpu_id(&f, 6);
    with_holders(
        &mut f,
        vec![holder(4242, "python3", &["/dev/kfd"], Some(vec![peer]))],
    );
    let pf = run(&f, 3, true);
    assert!(!pf.allowed);
    let h = check(&pf.checks, "hive_device_holders");
    assert_eq!(h.status, CheckStatus::Block);
    let bdf6 = bdf(&f.gpus[6]).unwrap();
    assert!(
        h.evidence.starts_with(&format!(
            "GPU 6 ({bdf6}): yes: pid 4242 (python3): KFD state on gpu_id {peer}, 2 KFD queue(s)"
        )),
        "{}",
        h.evidence
    );
    assert!(h.evidence.contains("GPU 0-5,7: no"), "{}", h.evidence);
    // A named holder is never overridable.
    assert!(h.unknown_sources.is_empty());
    assert_eq!(crate::operator::overridable(&pf.checks), None);
    // The same process on a render node of the peer holds it too.
    let render = f.gpus[6].amd.as_ref().unwrap().render_minor.get().unwrap();
    with_holders(
        &mut f,
        vec![holder(
            4242,
            "python3",
            &[&format!("/dev/dri/renderD{render}")],
            None,
        )],
    );
    let h = check(&run(&f, 3, false).checks, "hive_device_holders").clone();
    assert!(
        h.evidence.contains(&format!(
            "yes: pid 4242 (python3): /dev/dri/renderD{render}"
        )),
        "{}",
        h.evidence
    );
}

#[test]
fn an_open_kfd_whose_gpu_is_unknown_refuses_as_unknown_until_a_person_overrides() {
    let mut f = mi300x();
    // Not in KFD's list, and in it with no GPU named: both unknown, on every GPU of the hive.
    with_holders(
        &mut f,
        vec![
            holder(5000, "python3", &["/dev/kfd"], None),
            holder(5001, "rocminfo", &[], Some(vec![])),
        ],
    );
    let pf = run(&f, 0, false);
    assert!(!pf.allowed);
    let h = check(&pf.checks, "hive_device_holders");
    assert_eq!(h.status, CheckStatus::Block);
    assert!(h.evidence.contains("GPU 7 (0000:"), "{}", h.evidence);
    assert!(
        h.evidence
            .contains("pid 5000 (python3) has /dev/kfd open and is not in KFD's process list"),
        "{}",
        h.evidence
    );
    assert!(
        h.evidence
            .contains("pid 5001 (rocminfo) has /dev/kfd open and KFD names no GPU it uses"),
        "{}",
        h.evidence
    );
    assert_eq!(
        crate::operator::overridable(&pf.checks),
        Some(vec![DEVICE_FILES_SOURCE.to_string()])
    );
    let pf = run(&f, 0, true);
    assert!(pf.allowed, "{pf:#?}");
    assert!(
        check(&pf.checks, "hive_device_holders")
            .evidence
            .starts_with("OVERRIDDEN")
    );
}

#[test]
fn a_known_process_on_another_gpu_and_a_display_node_are_not_holders() {
    let mut f = mi300x();
    // A GPU outside this node's AMD GPUs (a BMC's VGA card0) and a KFD id of no GPU here.
    with_holders(
        &mut f,
        vec![holder(
            6000,
            "Xorg",
            &["/dev/dri/card0", "/dev/kfd"],
            Some(vec![999_999]),
        )],
    );
    assert!(run(&f, 2, false).allowed);
}

#[test]
fn a_hostile_holder_name_and_a_cut_scan_never_pass() {
    let mut f = mi300x();
    let peer = gpu_id(&f, 1);
    // Named like the probe and the device plugin, with control characters: still a holder, cleaned.
    with_holders(
        &mut f,
        vec![holder(
            31337,
            "node-probe\n\u{202e}allowed: true",
            &["/dev/kfd"],
            Some(vec![peer]),
        )],
    );
    let h = check(&run(&f, 0, true).checks, "hive_device_holders").clone();
    assert_eq!(h.status, CheckStatus::Block);
    assert!(
        h.evidence.contains("pid 31337 (node-probe allowed: true)"),
        "{}",
        h.evidence
    );
    assert!(!h.evidence.contains('\n') && !h.evidence.contains('\u{202e}'));
    // A process whose fd table was read only in part may hold anything: unknown on every GPU.
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        fd_tables_cut: vec![666],
        ..Default::default()
    }));
    let pf = run(&f, 0, false);
    assert!(!pf.allowed);
    assert!(
        check(&pf.checks, "hive_device_holders")
            .evidence
            .contains("pid 666 were read only in part"),
        "{pf:#?}"
    );
    // No scan at all: refused.
    f.device_holders = Some(Reading::Err(FieldError::new(FieldErrorKind::NoPermission)));
    assert!(!run(&f, 0, true).allowed);
}

#[test]
fn a_pod_assigned_a_peer_refuses_and_an_unknown_hive_takes_every_amd_gpu() {
    let mut f = mi300x();
    let bdf5 = bdf(&f.gpus[5]).unwrap().to_string();
    if let Reading::Ok(p) = &mut f.pod_resources {
        p.pods = vec![crate::facts::PodResourcesPodFacts {
            name: "train-0".into(),
            namespace: "ml".into(),
            containers: vec![crate::facts::PodResourcesContainerFacts {
                name: "main".into(),
                devices: vec![crate::facts::ContainerDevicesFacts {
                    resource_name: "amd.com/gpu".into(),
                    device_ids: vec![bdf5.clone()],
                    numa_nodes: vec![],
                }],
                claims: vec![],
            }],
        }];
    }
    let pf = run(&f, 3, true);
    let a = check(&pf.checks, "hive_not_assigned");
    assert_eq!(a.status, CheckStatus::Block);
    assert!(
        a.evidence
            .starts_with("GPU 5: yes: kubelet PodResources (device plugins): ml/train-0"),
        "{}",
        a.evidence
    );
    // GPU 3's hive unreadable (and KFD's too): every AMD GPU of the node counts.
    let mut f = mi300x();
    let a = f.gpus[3].amd.as_mut().unwrap();
    a.xgmi = Reading::Err(FieldError::new(FieldErrorKind::Unknown));
    a.kfd_nodes = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
    let s = check(&run(&f, 3, false).checks, "reset_scope").clone();
    assert_eq!(s.status, CheckStatus::Warn);
    assert!(
        s.evidence
            .contains("every AMD GPU of the node counts, GPU 0-7"),
        "{}",
        s.evidence
    );
}

#[test]
fn a_partitioned_gpu_is_said_and_its_partitions_count_as_it() {
    let mut f: NodeFacts =
        serde_json::from_str(include_str!("../../../scenarios/mi300x-cpx.json")).unwrap();
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts::default()));
    let pf = run(&f, 0, false);
    let p = check(&pf.checks, "partitions");
    assert_eq!(p.status, CheckStatus::Warn);
    assert!(p.evidence.contains("GPU 0 in CPX/NPS4"), "{}", p.evidence);
    // A holder of a partition's render node holds its GPU.
    let xcp = f.gpus[2].amd.as_ref().unwrap().partition.ok().unwrap().xcps[0].clone();
    let render = xcp.render_minor.unwrap();
    with_holders(
        &mut f,
        vec![holder(
            7000,
            "python3",
            &[&format!("/dev/dri/renderD{render}")],
            None,
        )],
    );
    let h = check(&run(&f, 0, false).checks, "hive_device_holders").clone();
    assert!(
        h.evidence.contains("GPU 2 (") && h.evidence.contains("yes: pid 7000"),
        "{}",
        h.evidence
    );
}

fn log(lines: &[&str]) -> KernelLogFacts {
    KernelLogFacts {
        origin: "kmsg".into(),
        lines: lines.iter().map(|l| l.to_string()).collect(),
        truncated: false,
    }
}

#[test]
fn verification_quotes_the_kernels_reset_lines_and_compares_ras() {
    let before = mi300x();
    let members: Vec<u32> = (0..8).collect();
    let old = log(&["6,100,1000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(1) failed"]);
    let new = Reading::Ok(log(&[
        "6,100,1000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(1) failed",
        "4,101,2000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset begin!",
        "6,102,2001,-;amdgpu 0000:5c:00.0: amdgpu: MODE1 reset",
        "6,103,2002,-;amdgpu 0000:99:00.0: amdgpu: GPU reset(9) failed",
        "6,104,3000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(2) succeeded!",
    ]));
    let v = verify(&before, T, &members, &before, Some(&old), &new);
    assert!(v.iter().all(|c| c.status == CheckStatus::Pass), "{v:#?}");
    assert!(check(&v, "gpus_back").evidence.starts_with("GPU 0-7 back"));
    let k = check(&v, "kernel_log_reset");
    assert_eq!(
        k.evidence,
        "the kernel logged: \"0000:5c:00.0: GPU reset begin!\", \"0000:5c:00.0: MODE1 reset\", \
         \"0000:5c:00.0: GPU reset(2) succeeded!\""
    );
    // A failed line of the hive since the reset blocks.
    let failed = Reading::Ok(log(&[
        "3,105,4000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(3) failed",
    ]));
    let v = verify(&before, T, &members, &before, Some(&old), &failed);
    assert_eq!(check(&v, "kernel_log_reset").status, CheckStatus::Block);
    // So does a reset that ended with an error and no per-GPU line.
    let ended = Reading::Ok(log(&[
        "6,105,4000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset end with ret = -110",
    ]));
    let v = verify(&before, T, &members, &before, Some(&old), &ended);
    assert_eq!(check(&v, "kernel_log_reset").status, CheckStatus::Block);
    // A GPU gone, one back as another device, a new UE: each said.
    let mut after = mi300x();
    after.gpus.remove(7);
    after.gpus[2].amd.as_mut().unwrap().unique_id = Reading::Ok("ffff".into());
    if let Reading::Ok(r) = &mut after.gpus[1].amd.as_mut().unwrap().ras {
        r.blocks[0].ue = Some(r.blocks[0].ue.unwrap_or(0) + 1);
    }
    let v = verify(&before, T, &members, &after, Some(&old), &new);
    let back = check(&v, "gpus_back");
    assert_eq!(back.status, CheckStatus::Block);
    assert!(
        back.evidence.contains("GPU 7 (") && back.evidence.contains("not in sysfs"),
        "{}",
        back.evidence
    );
    assert!(
        back.evidence.contains("unique_id ffff"),
        "{}",
        back.evidence
    );
    let ras = check(&v, "ras_read_back");
    assert_eq!(ras.status, CheckStatus::Warn, "{ras:?}");
    assert!(ras.evidence.contains("GPU 1: RAS ue 1"), "{}", ras.evidence);
    // No kernel log: said, not blocking.
    // No kernel log: the reset is not verified.
    let v = verify(
        &before,
        T,
        &members,
        &before,
        None,
        &Reading::Err(FieldError::new(FieldErrorKind::NoPermission)),
    );
    let k = check(&v, "kernel_log_reset");
    assert_eq!(k.status, CheckStatus::Block);
    assert!(k.evidence.contains("not verified"), "{}", k.evidence);
}

/// The GPU whose reset these tests verify.
const T: &str = "0000:5c:00.0";

/// Only the kernel's success line for the target's own PCI address verifies the reset: none (amd-smi
/// exited 0 after "Failed to reset GPU", nothing was reset), one for a peer only, or a line naming no
/// GPU reads "not verified"; `GPU reset end with ret = 0` for the target verifies, a non-zero ret blocks.
#[test]
fn only_the_targets_own_kernel_success_line_verifies_a_reset() {
    let before = mi300x();
    let members: Vec<u32> = (0..8).collect();
    let old = log(&["6,100,1000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(1) succeeded!"]);
    let status = |lines: &[&str]| {
        let mut all = vec!["6,100,1000,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset(1) succeeded!"];
        all.extend(lines);
        let v = verify(
            &before,
            T,
            &members,
            &before,
            Some(&old),
            &Reading::Ok(log(&all)),
        );
        check(&v, "kernel_log_reset").clone()
    };
    // Nothing since the act started: the old success line does not count.
    let k = status(&[]);
    assert_eq!(k.status, CheckStatus::Block, "{k:?}");
    assert!(k.evidence.contains("not verified"), "{}", k.evidence);
    // A peer's success only.
    let peer = "6,101,2000,-;amdgpu 0000:26:00.0: amdgpu: GPU reset(2) succeeded!";
    assert_eq!(status(&[peer]).status, CheckStatus::Block);
    // A success line that names no device.
    assert_eq!(
        status(&["6,101,2000,-;[drm] amdgpu: GPU reset(2) succeeded!"]).status,
        CheckStatus::Block
    );
    let end = "6,102,2100,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset end with ret = 0";
    let k = status(&[peer, end]);
    assert_eq!(k.status, CheckStatus::Pass, "{k:?}");
    assert!(
        k.evidence
            .contains("\"0000:5c:00.0: GPU reset end with ret = 0\""),
        "{}",
        k.evidence
    );
    let bad = "6,102,2100,-;amdgpu 0000:5c:00.0: amdgpu: GPU reset end with ret = -110";
    assert_eq!(status(&[bad]).status, CheckStatus::Block);
}

/// amd-smi's output, as `amdsmi_cli/amdsmi_commands.py:4283-4294` writes it: the success line alone is a
/// reset; its failure line (printed with exit 0) and no line are not.
#[test]
fn amd_smi_output_says_whether_it_reset() {
    assert_eq!(
        amd_smi_said("GPU: 0\n    GPU_RESET: Successfully reset GPU\n", ""),
        Ok(())
    );
    let e = amd_smi_said("GPU: 0\n    GPU_RESET: Failed to reset GPU\n", "").unwrap_err();
    assert!(e.contains("\"Failed to reset GPU\""), "{e}");
    let e = amd_smi_said("", "AMDSMI_STATUS_BUSY").unwrap_err();
    assert!(
        e.contains("no GPU_RESET result") && e.contains("BUSY"),
        "{e}"
    );
    let two =
        "GPU: 0\n GPU_RESET: Successfully reset GPU\nGPU: 1\n GPU_RESET: Successfully reset GPU\n";
    assert!(
        amd_smi_said(two, "")
            .unwrap_err()
            .contains("2 GPU_RESET results")
    );
}

/// An fd table the kernel refused (EACCES/EPERM: an LSM, ptrace rules) may hold any GPU of the hive:
/// unknown, which refuses the reset (a person may override), not a warning that lets it go ahead.
#[test]
fn a_refused_fd_table_makes_the_hive_unknown_not_a_warning() {
    let mut f = mi300x();
    f.device_holders = Some(Reading::Ok(DeviceHoldersFacts {
        holders: vec![],
        unreadable_pids: 2,
        denied_pids: vec![6100],
        ..Default::default()
    }));
    let pf = run(&f, 3, false);
    assert!(!pf.allowed, "{pf:#?}");
    let h = check(&pf.checks, "hive_device_holders");
    assert_eq!(h.status, CheckStatus::Block);
    assert!(
        h.evidence
            .contains("the open files of pid 6100 could not be read (permission denied"),
        "{}",
        h.evidence
    );
    assert_eq!(h.unknown_sources, [DEVICE_FILES_SOURCE]);
    // The other unreadable one (not refused) is still the warning.
    let w = check(&pf.checks, "holder_scan_complete");
    assert!(
        w.evidence.starts_with("the fd tables of 1 process(es)"),
        "{}",
        w.evidence
    );
}

pub(in crate::operator::reset) fn digests(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|i| crate::operator::reset::unknown_digest(i))
        .collect()
}
