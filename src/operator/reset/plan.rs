//! The preflight (every check in order) and the report before execution, with its steps.

use super::report::{ResetReport, ResetTarget};
use super::request::{ResetRequest, partition_of, pin_mismatches};
use crate::facts::NodeFacts;
use crate::operator::{Check, Preflight, gpu_name};

/// Judge a reset request against the facts.
pub fn preflight(facts: &NodeFacts, req: &ResetRequest) -> Preflight {
    let Some(g) = req.gpu.find(facts) else {
        let known: Vec<String> = facts
            .gpus
            .iter()
            .map(|g| match g.uuid.ok() {
                Some(u) => format!("{} ({u})", g.index),
                None => g.index.to_string(),
            })
            .collect();
        return Preflight::from_checks(vec![Check::block(
            "gpu_found",
            format!(
                "no GPU {} on this node; GPUs: {}",
                req.gpu,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        )]);
    };
    let mut checks = vec![Check::pass("gpu_found", gpu_name(g))];
    if let Some(pin) = req.pin.as_ref().filter(|p| !p.is_empty()) {
        let off = pin_mismatches(pin, g);
        if !off.is_empty() {
            // Another GPU than the one approved: nothing about it was shown to anyone.
            checks.push(Check::block(
                "gpu_identity",
                format!(
                    "GPU {} is not the GPU the person approved: {}. GPU indexes shift when a vendor's \
                     library stops answering (AMD's GPUs are numbered after NVIDIA's): call again, naming \
                     the GPU by its PCI address or unique id",
                    req.gpu,
                    off.join(", ")
                ),
            ));
            return Preflight::from_checks(checks);
        }
        checks.push(Check::pass(
            "gpu_identity",
            format!(
                "the GPU approved: {}",
                [&pin.pci_bus_id, &pin.uuid, &pin.partition]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    checks.extend(super::vendors::of(g.vendor).preflight(facts, g, req));
    Preflight::from_checks(with_seen_unknowns(checks, req))
}

/// A person's override covers the unknowns they saw (`operator::override_as_confirmed`).
fn with_seen_unknowns(checks: Vec<Check>, req: &ResetRequest) -> Vec<Check> {
    crate::operator::override_as_confirmed(
        checks,
        req.override_unknown,
        req.seen_unknown.as_deref(),
    )
}

/// The whole report before execution.
pub fn plan(facts: &NodeFacts, req: &ResetRequest, dry_run: bool, simulated: bool) -> ResetReport {
    let pf = preflight(facts, req);
    let g = req.gpu.find(facts);
    let result = pf.result(dry_run, simulated);
    ResetReport {
        gpu: req.gpu.to_string(),
        target: g.map(|g| ResetTarget {
            index: g.index,
            uuid: g.uuid.ok().cloned(),
            pci_bus_id: g.pci_bus_id.ok().cloned(),
            name: g.name.ok().cloned(),
            partition: partition_of(g),
        }),
        dry_run,
        simulated,
        result,
        allowed: pf.allowed,
        reasons: pf.reasons,
        checks: pf.checks,
        plan: g.map_or_else(Vec::new, |g| super::vendors::of(g.vendor).steps(facts, g)),
        outcome: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::ActionResult;
    use crate::operator::reset::request::GpuSelector;
    use crate::operator::reset::test_support::{gpu, holder, node, req};

    #[test]
    fn an_idle_gpu_is_allowed() {
        let f = node(
            vec![gpu(0, "Hopper"), gpu(1, "Hopper")],
            // The probe itself and a holder of another GPU's node only.
            vec![
                holder(4000, "node-probe", &["/dev/nvidia1", "/dev/nvidiactl"]),
                holder(12, "python3", &["/dev/nvidia0", "/dev/nvidiactl"]),
            ],
        );
        let pf = preflight(&f, &req(GpuSelector::Index(1)));
        assert!(pf.allowed, "{:#?}", pf);
        let r = plan(&f, &req(GpuSelector::Index(1)), false, true);
        assert_eq!(r.result, ActionResult::Simulated);
        assert_eq!(r.target.unwrap().uuid.as_deref(), Some("GPU-0001"));
        assert_eq!(
            r.plan.iter().map(|s| s.action.as_str()).collect::<Vec<_>>(),
            ["reset", "verify"]
        );
    }

    #[test]
    fn unknown_gpu_is_refused_with_the_known_ones() {
        let f = node(vec![gpu(0, "Hopper")], vec![]);
        let pf = preflight(&f, &req(GpuSelector::Index(7)));
        assert!(!pf.allowed);
        assert!(pf.reasons[0].contains("no GPU 7"), "{:?}", pf.reasons);
        assert!(pf.reasons[0].contains("0 (GPU-0000)"));
        assert!(
            plan(&f, &req(GpuSelector::Index(7)), true, false)
                .plan
                .is_empty()
        );
    }

    #[test]
    fn tool_missing_blocks() {
        let f = node(vec![gpu(0, "Hopper")], vec![]);
        let mut r = req(GpuSelector::Index(0));
        r.tool = Some(Err("no nvidia-smi under /host".into()));
        let pf = preflight(&f, &r);
        assert!(!pf.allowed);
        assert_eq!(pf.reasons, ["reset_tool: no nvidia-smi under /host"]);
    }
}

#[cfg(test)]
mod amd_tests {
    use super::*;
    use crate::operator::reset::request::GpuSelector;

    fn scenario(json: &str) -> NodeFacts {
        serde_json::from_str(json).expect("scenario parses as facts")
    }

    fn checks(facts: &NodeFacts, index: u32) -> Vec<Check> {
        let req = ResetRequest {
            tool: Some(Ok("/usr/bin/nvidia-smi".into())),
            ..crate::operator::reset::test_support::req(GpuSelector::Index(index))
        };
        preflight(facts, &req).checks
    }

    #[test]
    fn an_amd_gpu_is_judged_with_its_whole_hive_and_nothing_nvidia() {
        let f = scenario(include_str!("../../scenarios/mi300x-healthy.json"));
        let c = checks(&f, 3);
        let v = &c[1];
        assert_eq!(v.check, "gpu_vendor");
        assert_eq!(v.status, crate::operator::CheckStatus::Pass);
        assert!(
            v.evidence.contains("amd-smi reset -G -g 0000:"),
            "{}",
            v.evidence
        );
        let scope = c.iter().find(|c| c.check == "reset_scope").unwrap();
        assert!(scope.evidence.contains("GPU 0-7"), "{}", scope.evidence);
        // The scenario has no holder scan: unknown, so refused.
        let h = c.iter().find(|c| c.check == "hive_device_holders").unwrap();
        assert_eq!(h.status, crate::operator::CheckStatus::Block, "{h:?}");
        // Nothing NVIDIA-shaped is asked of it (NVML processes, /dev/nvidia*, NVSwitch, MIG).
        assert!(c.iter().all(|c| !matches!(
            c.check.as_str(),
            "mig" | "no_gpu_processes" | "device_node_holders"
        )));
        let plan = plan(
            &f,
            &crate::operator::reset::test_support::req(GpuSelector::Index(3)),
            true,
            true,
        );
        assert!(
            plan.plan[0].detail.starts_with("amd-smi reset -G -g 0000:"),
            "{:?}",
            plan.plan
        );
    }

    /// An Intel Gaudi gets Intel's own preflight and steps (the driver's `hard_reset` file), with no AMD or
    /// NVIDIA word; a scenario without a holder scan refuses.
    #[test]
    fn a_gaudi_gets_the_drivers_own_reset_in_intels_words() {
        let f = scenario(include_str!("../../scenarios/gaudi2-malfunction.json"));
        let c = preflight(
            &f,
            &crate::operator::reset::test_support::req(GpuSelector::Index(6)),
        )
        .checks;
        let v = c.iter().find(|c| c.check == "gpu_vendor").unwrap();
        assert_eq!(v.status, crate::operator::CheckStatus::Pass, "{v:?}");
        assert!(
            v.evidence.contains("Intel Gaudi (accel6 at 0000:b3:00.0)"),
            "{}",
            v.evidence
        );
        let s = c.iter().find(|c| c.check == "gaudi_status").unwrap();
        assert!(s.evidence.contains("`Disabled`"), "{s:?}");
        let h = c.iter().find(|c| c.check == "device_node_holders").unwrap();
        assert_eq!(h.status, crate::operator::CheckStatus::Block, "{h:?}");
        assert!(h.evidence.contains("/dev/accel/accel6"), "{h:?}");
        for c in &c {
            assert!(
                !c.evidence.contains("amd-smi") && !c.evidence.contains("nvidia-smi"),
                "{c:?}"
            );
        }
        let p = plan(
            &f,
            &crate::operator::reset::test_support::req(GpuSelector::Index(6)),
            true,
            true,
        );
        assert!(!p.allowed);
        assert_eq!(
            p.plan[0].detail.split(" (").next(),
            Some("echo 1 > /sys/class/accel/accel6/device/hard_reset"),
            "{:?}",
            p.plan
        );
    }

    #[test]
    fn on_a_node_with_both_vendors_each_gpu_gets_its_own_vendors_preflight() {
        let f = scenario(include_str!("../../scenarios/mixed-h100-mi210.json"));
        let amd = checks(&f, 1);
        let v = amd
            .iter()
            .find(|c| c.check == "reset_scope")
            .expect("scope check");
        assert!(v.evidence.contains("GPU 1 alone"), "{}", v.evidence);
        let nvidia = checks(&f, 0);
        assert!(nvidia.iter().all(|c| c.check != "gpu_vendor"), "{nvidia:?}");
        assert!(nvidia.iter().any(|c| c.check == "reset_tool"));
    }
}

#[cfg(test)]
mod pin_tests {
    use super::*;
    use crate::operator::CheckStatus;
    use crate::operator::reset::request::{GpuSelector, ResetPin};
    use crate::operator::reset::test_support::req;

    fn mixed() -> NodeFacts {
        serde_json::from_str(include_str!("../../scenarios/mixed-h100-mi210.json")).unwrap()
    }

    /// NVML stops answering between the preflight and the act: the probe numbers the AMD GPUs from 0.
    fn nvml_silent(f: &NodeFacts) -> NodeFacts {
        let mut g = f.clone();
        g.gpus.retain(|g| !g.vendor.is_nvidia());
        for (i, x) in g.gpus.iter_mut().enumerate() {
            x.index = i as u32;
        }
        g
    }

    /// The act carries the approved GPU's identity: "GPU 0" that became the AMD GPU is refused, naming
    /// both; the same GPU named by PCI address or unique id is found whatever its index.
    #[test]
    fn an_act_resets_the_approved_gpu_or_nothing() {
        let before = mixed();
        let shown = plan(&before, &req(GpuSelector::Index(0)), true, false);
        let t = shown.target.clone().unwrap();
        let pin = t.pin();
        assert!(pin.uuid.as_deref().unwrap().starts_with("GPU-"), "{pin:?}");
        let after = nvml_silent(&before);
        let mut act = req(GpuSelector::Index(0));
        // Without the pin, "GPU 0" is now the AMD GPU.
        let unpinned = preflight(&after, &act);
        assert!(unpinned.checks.iter().any(|c| c.check == "reset_scope"));
        act.pin = Some(pin.clone());
        let pf = preflight(&after, &act);
        assert!(!pf.allowed);
        let id = pf
            .checks
            .iter()
            .find(|c| c.check == "gpu_identity")
            .unwrap();
        assert_eq!(id.status, CheckStatus::Block);
        assert!(
            id.evidence
                .contains(&format!("(approved: {})", t.pci_bus_id.as_deref().unwrap()))
                && id
                    .evidence
                    .contains("naming the GPU by its PCI address or unique id"),
            "{}",
            id.evidence
        );
        assert_eq!(pf.checks.len(), 2, "nothing else judged: {pf:#?}");
        // The same GPU, same index: the pin passes.
        let pf = preflight(&before, &act);
        assert_eq!(
            pf.checks
                .iter()
                .find(|c| c.check == "gpu_identity")
                .unwrap()
                .status,
            CheckStatus::Pass
        );
        // The AMD GPU by its PCI address (4-digit domain) and unique id, before and after NVML fell silent;
        // an NVIDIA GPU by NVML's 8-digit-domain address written short.
        let amd = before.gpus.iter().find(|g| !g.vendor.is_nvidia()).unwrap();
        let bdf = amd.pci_bus_id.ok().unwrap().clone();
        let uid = amd.uuid.ok().unwrap().clone();
        for f in [&before, &after] {
            for sel in [
                bdf.clone(),
                uid.clone(),
                format!("0x{}", uid.to_uppercase()),
            ] {
                let s = GpuSelector::parse(&sel).unwrap();
                assert_eq!(s.find(f).unwrap().pci_bus_id.ok(), Some(&bdf), "{sel}");
            }
        }
        let nv = before.gpus.iter().find(|g| g.vendor.is_nvidia()).unwrap();
        let short = nv
            .pci_bus_id
            .ok()
            .unwrap()
            .trim_start_matches('0')
            .to_string();
        let short = short.trim_start_matches(':');
        assert_eq!(
            GpuSelector::parse(short)
                .unwrap()
                .find(&before)
                .unwrap()
                .index,
            nv.index,
            "{short}"
        );
        assert!(GpuSelector::parse(short).unwrap().find(&after).is_none());
        // A partition mode that changed is another GPU too.
        let p = ResetPin {
            partition: Some("CPX/NPS4".into()),
            ..ResetPin::default()
        };
        act.pin = Some(p);
        act.gpu = GpuSelector::Bdf(bdf);
        let pf = preflight(&after, &act);
        assert!(
            pf.checks.iter().any(|c| c.check == "gpu_identity"
                && c.status == CheckStatus::Block
                && c.evidence.contains("partition mode")),
            "{pf:#?}"
        );
    }
}

#[cfg(test)]
mod override_tests {
    //! The whole preflight (not AMD's part alone) on the MI300X scenario: kept here, beside `preflight`, so
    //! AMD's own tests need nothing from this file.
    use super::*;
    use crate::operator::CheckStatus;
    use crate::operator::reset::amd::tests::{check, digests, holder, mi300x, req, with_holders};

    /// A person's override covers the unknowns they saw: a job started since (another open /dev/kfd whose
    /// GPU KFD does not name) refuses the act, naming it; without the list the override covers nothing.
    #[test]
    fn an_override_covers_only_the_unknowns_the_person_saw() {
        let mut f = mi300x();
        with_holders(&mut f, vec![holder(5000, "python3", &["/dev/kfd"], None)]);
        let whole = |f: &NodeFacts, r: &ResetRequest| preflight(f, r);
        let shown = whole(&f, &req(3, false));
        assert!(!shown.allowed);
        let saw = crate::operator::unknown_items(&shown.checks);
        assert!(
            saw.iter()
                .any(|i| i.contains("pid 5000 (python3) has /dev/kfd open")),
            "{saw:?}"
        );
        let mut act = req(3, true);
        act.seen_unknown = Some(digests(&saw));
        let pf = whole(&f, &act);
        assert!(pf.allowed, "{pf:#?}");
        assert_eq!(
            check(&pf.checks, "override_as_confirmed").status,
            CheckStatus::Pass
        );
        // A late job, started after the person looked.
        with_holders(
            &mut f,
            vec![
                holder(5000, "python3", &["/dev/kfd"], None),
                holder(6000, "torchrun", &["/dev/kfd"], None),
            ],
        );
        let pf = whole(&f, &act);
        assert!(!pf.allowed, "{pf:#?}");
        let c = check(&pf.checks, "override_as_confirmed");
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("pid 6000 (torchrun)"), "{}", c.evidence);
        assert!(!c.evidence.contains("pid 5000"), "{}", c.evidence);
        // The overridden warning still lists both, for the audit.
        let h = check(&pf.checks, "hive_device_holders");
        assert_eq!(h.status, CheckStatus::Warn);
        assert!(h.unknown_holders.iter().any(|i| i.contains("pid 6000")));
        // An override that carries no list covers nothing.
        act.seen_unknown = None;
        with_holders(&mut f, vec![holder(5000, "python3", &["/dev/kfd"], None)]);
        assert!(!whole(&f, &act).allowed);
    }
}
