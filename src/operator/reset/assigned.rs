//! Whether the kubelet gave the GPU to a pod, through the device plugin or a DRA claim. A job that holds a
//! GPU but runs nothing on it at this moment (between steps, loading data) has no process and no open
//! device node, yet a reset under it breaks the job: the assignment blocks too, and so does not knowing it.

use crate::facts::NodeFacts;
use crate::operator::Check;
use crate::operator::holders;

const NAME: &str = "not_assigned_to_a_pod";

/// `None` where the kubelet was not asked (a scenario without its facts). Every source is asked (see
/// [`holders`]); a GPU no source vouches for blocks unless `overridden` by a person.
pub fn check_assignment(facts: &NodeFacts, gpu: u32, overridden: bool) -> Option<Check> {
    let h = holders::ask(facts, gpu)?;
    Some(holders::check(
        NAME,
        gpu,
        &h,
        overridden,
        "Delete or drain the pod first (cordon_gpu_node keeps new pods off)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Reading;
    use crate::facts::{
        CdiClaimSpecFacts, ClaimDeviceFacts, ClaimFacts, ContainerDevicesFacts, DraHostFacts,
        FieldError, FieldErrorKind, PodResourcesContainerFacts, PodResourcesFacts,
        PodResourcesPodFacts,
    };
    use crate::operator::CheckStatus;
    use crate::operator::reset::test_support::{gpu, node};

    const UID: &str = "dab5ab50-d59a-42a6-af16-cfd4628c0f7a";

    fn kubelet(containers: Vec<PodResourcesContainerFacts>) -> Reading<PodResourcesFacts> {
        Reading::Ok(PodResourcesFacts {
            socket: "var/lib/kubelet/pod-resources/kubelet.sock".into(),
            pods: vec![PodResourcesPodFacts {
                name: "train-0".into(),
                namespace: "ml".into(),
                containers,
            }],
            allocatable: Reading::Ok(vec![]),
            get_served: None,
            dra_gate: None,
        })
    }

    fn claimed(device: &str) -> PodResourcesContainerFacts {
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
                    cdi_ids: vec![format!("k8s.gpu.nvidia.com/claim={UID}-{device}")],
                }],
            }],
        }
    }

    fn facts() -> NodeFacts {
        let mut gpus = vec![gpu(0, "Hopper"), gpu(1, "Hopper")];
        // The minor is the device node's, not the NVML index.
        gpus[0].minor_number = Some(Reading::Ok(1));
        gpus[1].minor_number = Some(Reading::Ok(0));
        for g in &mut gpus {
            g.uuid = Reading::Ok(format!(
                "GPU-5f1c1a5e-0000-4000-8000-00000000000{}",
                g.index
            ));
        }
        let mut f = node(gpus, vec![]);
        // No GPU DRA driver on the node unless a test registers one.
        f.dra = Reading::Ok(DraHostFacts::default());
        f
    }

    #[test]
    fn a_dra_claim_blocks_the_reset_of_its_gpu_only() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        let c = check_assignment(&f, 1, false).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains("ml/train-0 (container main) holds gpu.nvidia.com device gpu-0 through DRA claim ml/gpus"), "{}", c.evidence);
        assert!(c.unknown_sources.is_empty());
        // A named holder is never overridden.
        assert_eq!(
            check_assignment(&f, 1, true).unwrap().status,
            CheckStatus::Block
        );
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn a_device_plugin_assignment_blocks_too() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![PodResourcesContainerFacts {
            name: "main".into(),
            devices: vec![ContainerDevicesFacts {
                resource_name: "nvidia.com/gpu".into(),
                device_ids: vec!["GPU-5f1c1a5e-0000-4000-8000-000000000000".into()],
                numa_nodes: vec![],
            }],
            claims: vec![],
        }]);
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Block
        );
        assert_eq!(
            check_assignment(&f, 1, false).unwrap().status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn unknown_minors_block_every_gpu() {
        let mut f = facts();
        for g in &mut f.gpus {
            g.minor_number = None;
        }
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        for i in 0..2 {
            let c = check_assignment(&f, i, false).unwrap();
            assert_eq!(c.status, CheckStatus::Block);
            assert!(
                c.evidence.contains("minor numbers are unknown"),
                "{}",
                c.evidence
            );
        }
    }

    #[test]
    fn a_claim_the_kubelet_did_not_report_blocks_from_its_cdi_spec() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![]);
        f.dra = Reading::Ok(DraHostFacts {
            registered: vec!["gpu.nvidia.com".into()],
            claim_specs: vec![CdiClaimSpecFacts {
                file: format!("var/run/cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml"),
                kind: "k8s.gpu.nvidia.com/claim".into(),
                claim_uid: UID.into(),
                devices: vec!["gpu-1".into()],
            }],
        });
        let c = check_assignment(&f, 0, false).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains(UID));
        assert_eq!(
            check_assignment(&f, 1, false).unwrap().status,
            CheckStatus::Pass
        );
        // Reported by the kubelet too: each source that names it says so.
        f.pod_resources = kubelet(vec![claimed("gpu-1")]);
        let c = check_assignment(&f, 0, false).unwrap();
        assert!(
            c.evidence
                .contains("kubelet PodResources (DRA claims): ml/train-0")
                && c.evidence
                    .contains("node DRA driver state and CDI claim specs: DRA claim"),
            "{}",
            c.evidence
        );
    }

    #[test]
    fn no_kubelet_blocks_unless_overridden_and_a_scenario_without_it_is_not_judged() {
        let mut f = facts();
        assert!(check_assignment(&f, 0, false).is_none());
        f.pod_resources = Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "no socket",
        ));
        let c = check_assignment(&f, 0, false).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert_eq!(c.unknown_sources, ["kubelet PodResources (device plugins)"]);
        assert!(c.evidence.contains("restart the kubelet"), "{}", c.evidence);
        let c = check_assignment(&f, 0, true).unwrap();
        assert_eq!(c.status, CheckStatus::Warn);
        assert!(c.evidence.starts_with("OVERRIDDEN"), "{}", c.evidence);
    }
    fn registered_only() -> Reading<DraHostFacts> {
        Reading::Ok(DraHostFacts {
            registered: vec!["gpu.nvidia.com".into()],
            claim_specs: vec![],
        })
    }

    #[test]
    fn a_gpu_driver_whose_claims_nothing_names_blocks_every_reset_with_the_fix() {
        // The kubelet answers with no DRA claim (gate off) and the driver wrote no per-claim spec.
        let mut f = facts();
        f.pod_resources = kubelet(vec![]);
        f.dra = registered_only();
        for i in 0..2 {
            let c = check_assignment(&f, i, false).unwrap();
            assert_eq!(c.status, CheckStatus::Block, "{c:?}");
            assert!(
                c.evidence.contains("gpu.nvidia.com is registered"),
                "{}",
                c.evidence
            );
            assert!(
                c.evidence.contains("KubeletPodResourcesDynamicResources"),
                "{}",
                c.evidence
            );
        }
        // A kubelet that does not answer does not hide the registered driver: still blocked.
        f.pod_resources = Reading::Err(FieldError::with_message(FieldErrorKind::Timeout, "slow"));
        let c = check_assignment(&f, 0, false).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains("did not answer"), "{}", c.evidence);
        // Serving Get is another gate: it does not make an empty answer "none".
        let mut k = kubelet(vec![]);
        if let Reading::Ok(p) = &mut k {
            p.get_served = Some(true);
        }
        f.pod_resources = k.clone();
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Block
        );
        // A kubelet whose DRA gate is on reports claims: its empty answer is "none".
        if let Reading::Ok(p) = &mut k {
            p.dra_gate = Some(crate::facts::KubeletGateFacts {
                enabled: true,
                from: "--feature-gates of host pid 812".into(),
            });
        }
        f.pod_resources = k;
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Pass
        );
        // Once the kubelet names a claim, only that claim's GPU is held.
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        assert_eq!(
            check_assignment(&f, 1, false).unwrap().status,
            CheckStatus::Block
        );
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn a_passthrough_claim_holds_no_gpu_nvml_sees() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![claimed("gpu-vfio-0")]);
        f.dra = registered_only();
        for i in 0..2 {
            let c = check_assignment(&f, i, false).unwrap();
            assert_eq!(c.status, CheckStatus::Pass, "{c:?}");
        }
    }

    #[test]
    fn a_kubelet_of_1_27_to_1_30_names_claim_devices_by_cdi_id_only() {
        let mut f = facts();
        let mut c = claimed("gpu-0");
        for (ids, held) in [
            (vec!["k8s.gpu.nvidia.com/device=gpu-0".to_string()], Some(1)),
            (
                vec![format!("k8s.gpu.nvidia.com/claim={UID}-gpu-1")],
                Some(0),
            ),
            // An NVIDIA id of no known shape still holds a GPU: which one is not known.
            (vec!["k8s.gpu.nvidia.com/other=x".to_string()], None),
        ] {
            let d = &mut c.claims[0].devices[0];
            (d.driver, d.pool, d.device, d.cdi_ids) =
                (String::new(), String::new(), String::new(), ids);
            f.pod_resources = kubelet(vec![c.clone()]);
            for i in 0..2 {
                let want = if held.is_none_or(|h| h == i) {
                    CheckStatus::Block
                } else {
                    CheckStatus::Pass
                };
                assert_eq!(
                    check_assignment(&f, i, false).unwrap().status,
                    want,
                    "GPU {i} {:?}",
                    c.claims
                );
            }
        }
        // Another vendor's CDI id is not a GPU of this driver.
        c.claims[0].devices[0].cdi_ids = vec!["vendor.example/nic=port0".into()];
        f.pod_resources = kubelet(vec![c]);
        assert_eq!(
            check_assignment(&f, 0, false).unwrap().status,
            CheckStatus::Pass
        );
    }
}
