//! The tri-state rule over every combination of what the sources answer.

use super::*;
use crate::facts::{
    ApiClaimFacts, ApiClaimPodFacts, CdiClaimSpecFacts, ClaimDeviceFacts, ClaimFacts, DraHostFacts,
    FieldError, GpuFacts, KubeletGateFacts, PodResourcesContainerFacts, PodResourcesFacts,
    PodResourcesPodFacts,
};
use crate::operator::CheckStatus;

const UID: &str = "dab5ab50-d59a-42a6-af16-cfd4628c0f7a";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kubelet {
    /// Restarting: the socket does not answer.
    Down,
    /// Answers List, names no claim, and nothing says whether it would (gate not set, version unknown).
    HalfUnknownGate,
    /// Answers List with the DRA gate off (from its config): claims are left out.
    HalfGateOff,
    /// Answers List with the DRA gate on, naming no claim.
    FullNoClaim,
    /// Names a DRA claim on GPU 0.
    NamesClaim,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    NotRead,
    /// Read: claims on the node, none on GPU 0 (one on GPU 1).
    Absent,
    /// Read: a claim on GPU 0, reserved for a pod.
    Present,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cdi {
    Unreadable,
    /// No GPU DRA driver registered, no spec.
    NoDriver,
    /// The driver is registered and wrote no per-claim spec.
    NoSpecs,
    /// A spec for GPU 1 only.
    OtherGpu,
    /// A spec for GPU 0.
    ThisGpu,
}

fn gpus() -> Vec<GpuFacts> {
    (0..2)
        .map(|i| GpuFacts {
            index: i,
            uuid: Reading::Ok(format!("GPU-5f1c1a5e-0000-4000-8000-00000000000{i}")),
            minor_number: Some(Reading::Ok(i)),
            ..Default::default()
        })
        .collect()
}

fn claim_container(device: &str) -> PodResourcesContainerFacts {
    PodResourcesContainerFacts {
        name: "main".into(),
        devices: vec![],
        claims: vec![ClaimFacts {
            name: "gpus".into(),
            namespace: "ml".into(),
            devices: vec![ClaimDeviceFacts {
                driver: "gpu.nvidia.com".into(),
                pool: "node-a".into(),
                device: device.into(),
                cdi_ids: vec![],
            }],
        }],
    }
}

fn facts(k: Kubelet, a: Api, c: Cdi) -> NodeFacts {
    let mut f = NodeFacts {
        gpus: gpus(),
        ..Default::default()
    };
    let gate = |on: bool| {
        Some(KubeletGateFacts {
            enabled: on,
            from: "featureGates in var/lib/kubelet/config.yaml".into(),
        })
    };
    let answered = |containers: Vec<PodResourcesContainerFacts>, dra_gate| {
        Reading::Ok(PodResourcesFacts {
            socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
            pods: vec![PodResourcesPodFacts {
                name: "train-0".into(),
                namespace: "ml".into(),
                containers,
            }],
            allocatable: Reading::Ok(vec![]),
            // Serving Get says nothing of DRA: set everywhere, it must change no answer.
            get_served: Some(true),
            dra_gate,
        })
    };
    f.pod_resources = match k {
        Kubelet::Down => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "no socket",
        )),
        Kubelet::HalfUnknownGate => answered(vec![], None),
        Kubelet::HalfGateOff => answered(vec![], gate(false)),
        Kubelet::FullNoClaim => answered(vec![], gate(true)),
        Kubelet::NamesClaim => answered(vec![claim_container("gpu-0")], None),
    };
    let claim = |name: &str, dev: &str| ApiClaimFacts {
        namespace: "ml".into(),
        name: name.into(),
        devices: vec![format!("gpu.nvidia.com/{dev}")],
        pods: vec![ApiClaimPodFacts {
            name: "train-0".into(),
            uid: String::new(),
        }],
    };
    f.api_claims = match a {
        Api::NotRead => None,
        Api::Absent => Some(vec![claim("other", "gpu-1")]),
        Api::Present => Some(vec![claim("train-0-gpu", "gpu-0"), claim("other", "gpu-1")]),
    };
    let spec = |dev: &str| CdiClaimSpecFacts {
        file: format!("var/run/cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml"),
        kind: "k8s.gpu.nvidia.com/claim".into(),
        claim_uid: UID.into(),
        devices: vec![dev.into()],
    };
    let host = |registered: bool, specs: Vec<CdiClaimSpecFacts>| {
        Reading::Ok(DraHostFacts {
            registered: if registered {
                vec!["gpu.nvidia.com".into()]
            } else {
                vec![]
            },
            claim_specs: specs,
        })
    };
    f.dra = match c {
        Cdi::Unreadable => Reading::Err(FieldError::new(FieldErrorKind::NoPermission)),
        Cdi::NoDriver => host(false, vec![]),
        Cdi::NoSpecs => host(true, vec![]),
        Cdi::OtherGpu => host(true, vec![spec("gpu-1")]),
        Cdi::ThisGpu => host(true, vec![spec("gpu-0")]),
    };
    f
}

#[derive(Debug, PartialEq)]
enum Want {
    Held,
    Free,
    Unvouched,
}

/// The rule, written plainly: any source naming GPU 0 holds it; else the device plugins need the kubelet,
/// and DRA claims need one source that is known to name every claim.
fn want(k: Kubelet, a: Api, c: Cdi) -> Want {
    if k == Kubelet::NamesClaim || a == Api::Present || c == Cdi::ThisGpu {
        return Want::Held;
    }
    let device_plugins = k != Kubelet::Down;
    let claims =
        k == Kubelet::FullNoClaim || a == Api::Absent || matches!(c, Cdi::NoDriver | Cdi::OtherGpu);
    if device_plugins && claims {
        Want::Free
    } else {
        Want::Unvouched
    }
}

#[test]
fn every_combination_follows_the_rule() {
    use Api as A;
    use Cdi as C;
    use Kubelet as K;
    let mut seen = 0;
    for k in [
        K::Down,
        K::HalfUnknownGate,
        K::HalfGateOff,
        K::FullNoClaim,
        K::NamesClaim,
    ] {
        for a in [A::NotRead, A::Absent, A::Present] {
            for c in [
                C::Unreadable,
                C::NoDriver,
                C::NoSpecs,
                C::OtherGpu,
                C::ThisGpu,
            ] {
                let f = facts(k, a, c);
                let h = ask(&f, 0).unwrap();
                let case = format!("{k:?} {a:?} {c:?}: {:?}", h.verdict);
                let w = want(k, a, c);
                match (&h.verdict, &w) {
                    (Verdict::Held(_), Want::Held)
                    | (Verdict::Free, Want::Free)
                    | (Verdict::Unvouched(_), Want::Unvouched) => {}
                    _ => panic!("{case}: want {w:?}"),
                }
                for overridden in [false, true] {
                    let ch = check("not_assigned_to_a_pod", 0, &h, overridden, "Drain the pod");
                    let status = match (&w, overridden) {
                        (Want::Held, _) => CheckStatus::Block,
                        (Want::Free, _) => CheckStatus::Pass,
                        (Want::Unvouched, false) => CheckStatus::Block,
                        (Want::Unvouched, true) => CheckStatus::Warn,
                    };
                    assert_eq!(ch.status, status, "{case} overridden={overridden}");
                    // Only an unvouched block may be overridden, and it says which sources and the fix.
                    let may_override = w == Want::Unvouched && !overridden;
                    assert_eq!(!ch.unknown_sources.is_empty(), may_override, "{case}");
                    if may_override {
                        assert!(ch.evidence.contains("Fix:"), "{}", ch.evidence);
                        assert!(ch.evidence.contains("override"), "{}", ch.evidence);
                    }
                    if w == Want::Held {
                        assert!(ch.evidence.ends_with("Drain the pod"), "{}", ch.evidence);
                    }
                }
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 75);
}

#[test]
fn a_restarting_kubelet_on_a_dra_node_hides_no_claim_and_blocks_the_rest() {
    // 8-GPU DRA node, kubelet restarting; the API server names claims on GPUs 0-5 (idle: no process).
    let mut f = facts(Kubelet::Down, Api::Absent, Cdi::NoSpecs);
    f.gpus = (0..8)
        .map(|i| GpuFacts {
            index: i,
            minor_number: Some(Reading::Ok(i)),
            ..Default::default()
        })
        .collect();
    f.api_claims = Some(vec![ApiClaimFacts {
        namespace: "ml".into(),
        name: "train".into(),
        devices: (0..6).map(|i| format!("gpu.nvidia.com/gpu-{i}")).collect(),
        pods: vec![ApiClaimPodFacts {
            name: "train-0".into(),
            uid: String::new(),
        }],
    }]);
    for g in 0..8 {
        let h = ask(&f, g).unwrap();
        let c = check("not_assigned_to_a_pod", g, &h, false, "Drain");
        assert_eq!(c.status, CheckStatus::Block, "GPU {g}: {c:?}");
        if g < 6 {
            assert!(
                c.evidence
                    .contains("DRA claim ml/train (reserved for ml/train-0)"),
                "{}",
                c.evidence
            );
            assert!(
                c.unknown_sources.is_empty(),
                "a named holder is never overridden"
            );
            assert_eq!(check("n", g, &h, true, "Drain").status, CheckStatus::Block);
        } else {
            assert_eq!(c.unknown_sources, ["kubelet PodResources (device plugins)"]);
            assert!(
                c.evidence.contains("did not answer (not_found)"),
                "{}",
                c.evidence
            );
            assert!(c.evidence.contains("restart the kubelet"), "{}", c.evidence);
        }
    }
}

#[test]
fn serving_get_is_not_reporting_claims() {
    // The kubelet serves Get (KubeletPodResourcesGet) and names no claim; the DRA gate is not known.
    let f = facts(Kubelet::HalfUnknownGate, Api::NotRead, Cdi::NoSpecs);
    let h = ask(&f, 0).unwrap();
    let Verdict::Unvouched(u) = &h.verdict else {
        panic!("{:?}", h.verdict)
    };
    let sources: Vec<Source> = u.iter().map(|u| u.source).collect();
    assert_eq!(
        sources,
        [
            Source::KubeletClaims,
            Source::ApiServerClaims,
            Source::NodeClaimSpecs
        ]
    );
    assert!(
        u[0].why.contains("KubeletPodResourcesDynamicResources"),
        "{}",
        u[0].why
    );
}

#[test]
fn a_device_plugin_assignment_is_a_yes() {
    let mut f = facts(Kubelet::FullNoClaim, Api::Absent, Cdi::NoDriver);
    if let Reading::Ok(p) = &mut f.pod_resources {
        p.pods[0].containers.push(PodResourcesContainerFacts {
            name: "main".into(),
            devices: vec![crate::facts::ContainerDevicesFacts {
                resource_name: "nvidia.com/gpu".into(),
                device_ids: vec!["GPU-5f1c1a5e-0000-4000-8000-000000000001".into()],
                numa_nodes: vec![],
            }],
            claims: vec![],
        });
    }
    assert!(matches!(ask(&f, 1).unwrap().verdict, Verdict::Held(_)));
    assert_eq!(ask(&f, 0).unwrap().verdict, Verdict::Free);
}

#[test]
fn a_claim_device_not_tied_to_a_gpu_holds_every_gpu() {
    // Minor numbers unknown: the API server's claim on `gpu-1` may be any GPU.
    let mut f = facts(Kubelet::FullNoClaim, Api::Absent, Cdi::NoDriver);
    for g in &mut f.gpus {
        g.minor_number = None;
    }
    for g in 0..2 {
        let Verdict::Held(h) = ask(&f, g).unwrap().verdict else {
            panic!("GPU {g}")
        };
        assert!(h[0].contains("may be this one"), "{h:?}");
    }
}

#[test]
fn a_scenario_without_the_kubelet_is_not_judged() {
    let f = NodeFacts {
        gpus: gpus(),
        ..Default::default()
    };
    assert!(ask(&f, 0).is_none());
}

/// GPU 2 is an AMD GPU (its partitions unreadable, so `amdgpu_xcp_*` devices cannot be placed).
fn with_amd_gpu(f: &mut NodeFacts) {
    f.gpus.push(GpuFacts {
        index: 2,
        vendor: crate::facts::GpuVendor::Amd,
        ..Default::default()
    });
}

fn plugin_container(resource: &str, id: &str) -> PodResourcesContainerFacts {
    PodResourcesContainerFacts {
        name: "main".into(),
        devices: vec![crate::facts::ContainerDevicesFacts {
            resource_name: resource.into(),
            device_ids: vec![id.into()],
            numa_nodes: vec![],
        }],
        claims: vec![],
    }
}

fn plugin_answer(f: &NodeFacts, gpu: u32) -> Answer {
    ask(f, gpu)
        .unwrap()
        .answers
        .into_iter()
        .find(|a| a.source == Source::KubeletDevicePlugins)
        .unwrap()
        .answer
}

/// A vendor's device the probe cannot place is unknown on every GPU of that vendor, never "not assigned",
/// and says nothing of the other vendor's GPUs.
#[test]
fn an_unplaceable_device_plugin_device_is_unknown_on_its_vendors_gpus() {
    let mut f = facts(Kubelet::FullNoClaim, Api::Absent, Cdi::NoDriver);
    with_amd_gpu(&mut f);
    if let Reading::Ok(p) = &mut f.pod_resources {
        p.pods[0]
            .containers
            .push(plugin_container("amd.com/gpu", "amdgpu_xcp_5"));
    }
    let Answer::Unknown { why, .. } = plugin_answer(&f, 2) else {
        panic!("{:?}", plugin_answer(&f, 2))
    };
    assert!(
        why.contains("amd.com/gpu amdgpu_xcp_5") && why.contains("any AMD GPU"),
        "{why}"
    );
    assert!(matches!(ask(&f, 2).unwrap().verdict, Verdict::Unvouched(_)));
    assert_eq!(ask(&f, 0).unwrap().verdict, Verdict::Free);
    // An NVIDIA id of no GPU here: unknown on the NVIDIA GPUs, not on the AMD one.
    if let Reading::Ok(p) = &mut f.pod_resources {
        p.pods[0].containers = vec![plugin_container(
            "nvidia.com/gpu",
            "GPU-5f1c1a5e-0000-4000-8000-0000000000ff",
        )];
    }
    assert!(matches!(plugin_answer(&f, 0), Answer::Unknown { .. }));
    assert!(matches!(plugin_answer(&f, 1), Answer::Unknown { .. }));
    assert!(matches!(plugin_answer(&f, 2), Answer::No(_)));
}

/// NVIDIA's per-claim specs show NVIDIA's claims only: with AMD's DRA driver registered too, the node
/// source vouches for the NVIDIA GPUs and is unknown on the AMD one.
#[test]
fn node_claim_specs_vouch_only_for_the_drivers_whose_claims_they_show() {
    let mut f = facts(Kubelet::HalfGateOff, Api::NotRead, Cdi::OtherGpu);
    with_amd_gpu(&mut f);
    let node = |f: &NodeFacts, gpu| {
        ask(f, gpu)
            .unwrap()
            .answers
            .into_iter()
            .find(|a| a.source == Source::NodeClaimSpecs)
            .unwrap()
            .answer
    };
    // AMD's driver not registered: no AMD claim can exist.
    assert!(matches!(node(&f, 2), Answer::No(_)), "{:?}", node(&f, 2));
    if let Reading::Ok(h) = &mut f.dra {
        h.registered.push(dra::AMD_DRIVER.into());
    }
    let Answer::Unknown { why, .. } = node(&f, 2) else {
        panic!("{:?}", node(&f, 2))
    };
    assert!(why.contains("gpu.amd.com"), "{why}");
    assert!(matches!(ask(&f, 2).unwrap().verdict, Verdict::Unvouched(_)));
    // The NVIDIA GPU the spec does not name: still vouched for by NVIDIA's specs.
    assert!(matches!(node(&f, 0), Answer::No(_)), "{:?}", node(&f, 0));
}
