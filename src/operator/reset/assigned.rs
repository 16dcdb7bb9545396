//! Whether the kubelet gave the GPU to a pod, through the device plugin or a DRA claim. A job that holds a
//! GPU but runs nothing on it at this moment (between steps, loading data) has no process and no open
//! device node, yet a reset under it breaks the job: the assignment blocks too.

use crate::analysis::error_name;
use crate::attribution::{self, AllocationReport};
use crate::facts::{NodeFacts, Reading};
use crate::operator::Check;
use crate::options::AnalysisOptions;

const NAME: &str = "not_assigned_to_a_pod";

/// `None` where the kubelet was not asked (a scenario without its facts).
pub fn check_assignment(facts: &NodeFacts, gpu: u32) -> Option<Check> {
    if let Reading::Err(e) = &facts.pod_resources
        && e.error == crate::facts::FieldErrorKind::NotCollected
    {
        return None;
    }
    let report = attribution::analyze(facts, &AnalysisOptions::default());
    // A registered GPU DRA driver whose claims nothing names may hold this GPU, idle or not: blocked, with
    // the kubelet's silence as the reason (also when the kubelet did not answer at all).
    if let Some(u) = report.dra.as_ref().and_then(|d| d.unnamed.as_ref()) {
        return Some(Check::block(
            NAME,
            format!(
                "a DRA claim may hold this GPU and nothing on the node says which: {u}. Fix: {}",
                crate::attribution::dra::UNNAMED_FIX
            ),
        ));
    }
    if let Reading::Err(e) = &facts.pod_resources {
        // The kind only: the full error names host paths, and the allocation tool says more.
        return Some(Check::warn(
            NAME,
            format!(
                "cannot ask the kubelet which pods hold the GPU (PodResources: {}): a pod that holds it without running on it now is not seen",
                error_name(e.error)
            ),
        ));
    }
    let mut blocks = Vec::new();
    if let Some(g) = report.gpus.iter().find(|g| g.gpu.index == gpu) {
        for h in &g.allocated_to {
            blocks.push(match &h.claim {
                Some(c) if h.container.is_empty() => format!(
                    "{}/{} holds it through DRA claim {c} ({} device {}; named by the API server, the kubelet \
                     reports no DRA claims)",
                    h.namespace, h.pod, h.resource_name, h.device_id
                ),
                Some(c) => format!(
                    "{}/{} (container {}) holds it through DRA claim {c} ({} device {})",
                    h.namespace, h.pod, h.container, h.resource_name, h.device_id
                ),
                None => format!(
                    "{}/{} (container {}) holds it through {} {}",
                    h.namespace, h.pod, h.container, h.resource_name, h.device_id
                ),
            });
        }
        for uid in &g.unreported_claims {
            blocks.push(format!(
                "DRA claim {uid} was prepared for it, and the kubelet does not say which pod uses the claim"
            ));
        }
    }
    blocks.extend(unlocated_claims(&report, gpu));
    if blocks.is_empty() {
        return Some(Check::pass(
            NAME,
            "the kubelet assigned the GPU to no pod (device plugin or DRA claim)",
        ));
    }
    Some(Check::block(
        NAME,
        format!(
            "{}. Delete or drain the pod first (cordon_gpu_node keeps new pods off)",
            blocks.join("; ")
        ),
    ))
}

/// A GPU passed through to a VM is bound to vfio-pci: none of the GPUs NVML sees, so its claim holds none of them.
fn passthrough(d: &crate::attribution::AllocatedDevice) -> bool {
    d.form == Some(crate::attribution::device::DeviceIdForm::DraPassthrough)
}

/// DRA devices of a GPU driver that could not be tied to a GPU: any of them may be this one.
fn unlocated_claims(report: &AllocationReport, gpu: u32) -> Vec<String> {
    let claimed = report
        .pods
        .iter()
        .flat_map(|p| p.containers.iter().map(move |c| (p, c)))
        .flat_map(|(p, c)| c.devices.iter().map(move |d| (p, c, d)))
        .filter(|(_, _, d)| d.claim.is_some() && d.gpu_index.is_none() && !passthrough(d))
        .map(|(p, c, d)| {
            format!(
                "{}/{} (container {}) holds {} device {} through a DRA claim, which could not be tied to a GPU ({}): it may be GPU {gpu}",
                p.namespace,
                p.name,
                c.name,
                d.resource_name,
                d.device_id,
                d.error.as_deref().unwrap_or("unknown")
            )
        });
    let unreported = report
        .dra
        .iter()
        .flat_map(|d| &d.unreported_claims)
        .flat_map(|c| c.devices.iter().map(move |d| (c, d)))
        .filter(|(_, d)| d.gpu_index.is_none() && !passthrough(d))
        .map(|(c, d)| {
            format!(
                "DRA claim {} holds device {}, which could not be tied to a GPU ({}): it may be GPU {gpu}",
                c.claim_uid,
                d.device_id,
                d.error.as_deref().unwrap_or("unknown")
            )
        });
    claimed.chain(unreported).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
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
        node(gpus, vec![])
    }

    #[test]
    fn a_dra_claim_blocks_the_reset_of_its_gpu_only() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        let c = check_assignment(&f, 1).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains("ml/train-0 (container main) holds it through DRA claim ml/gpus (gpu.nvidia.com device gpu-0)"), "{}", c.evidence);
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Pass);
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
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Block);
        assert_eq!(check_assignment(&f, 1).unwrap().status, CheckStatus::Pass);
    }

    #[test]
    fn unknown_minors_block_every_gpu() {
        let mut f = facts();
        for g in &mut f.gpus {
            g.minor_number = None;
        }
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        for i in 0..2 {
            let c = check_assignment(&f, i).unwrap();
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
        let c = check_assignment(&f, 0).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains(UID));
        assert_eq!(check_assignment(&f, 1).unwrap().status, CheckStatus::Pass);
        // Reported by the kubelet (its CDI id names the claim): counted once, through the pod.
        f.pod_resources = kubelet(vec![claimed("gpu-1")]);
        let c = check_assignment(&f, 0).unwrap();
        assert!(
            c.evidence.contains("ml/train-0") && !c.evidence.contains("was prepared"),
            "{}",
            c.evidence
        );
    }

    #[test]
    fn no_kubelet_warns_and_a_scenario_without_it_is_not_judged() {
        let mut f = facts();
        assert!(check_assignment(&f, 0).is_none());
        f.pod_resources = Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "no socket",
        ));
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Warn);
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
            let c = check_assignment(&f, i).unwrap();
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
        let c = check_assignment(&f, 0).unwrap();
        assert_eq!(c.status, CheckStatus::Block, "{c:?}");
        assert!(c.evidence.contains("did not answer"), "{}", c.evidence);
        // A kubelet with the 1.34+ gates (Get served) reports claims: its empty answer is "none".
        let mut k = kubelet(vec![]);
        if let Reading::Ok(p) = &mut k {
            p.get_served = Some(true);
        }
        f.pod_resources = k;
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Pass);
        // Once the kubelet names a claim, only that claim's GPU is held.
        f.pod_resources = kubelet(vec![claimed("gpu-0")]);
        assert_eq!(check_assignment(&f, 1).unwrap().status, CheckStatus::Block);
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Pass);
    }

    #[test]
    fn a_passthrough_claim_holds_no_gpu_nvml_sees() {
        let mut f = facts();
        f.pod_resources = kubelet(vec![claimed("gpu-vfio-0")]);
        f.dra = registered_only();
        for i in 0..2 {
            let c = check_assignment(&f, i).unwrap();
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
                    check_assignment(&f, i).unwrap().status,
                    want,
                    "GPU {i} {:?}",
                    c.claims
                );
            }
        }
        // Another vendor's CDI id is not a GPU of this driver.
        c.claims[0].devices[0].cdi_ids = vec!["vendor.example/nic=port0".into()];
        f.pod_resources = kubelet(vec![c]);
        assert_eq!(check_assignment(&f, 0).unwrap().status, CheckStatus::Pass);
    }
}
