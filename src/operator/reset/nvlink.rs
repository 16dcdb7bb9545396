//! Whether the GPU resets without its NVLink peers: by generation, and on Ampere NVSwitch systems
//! whether Fabric Manager runs.

use crate::analysis::error_name;
use crate::facts::{GpuFacts, NodeFacts, Reading};
use crate::operator::Check;

fn service_running(facts: &NodeFacts, name: &str) -> Reading<bool> {
    facts
        .services
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.running.clone())
        .unwrap_or_default()
}

fn arch_generation(arch: &str) -> Option<u32> {
    // Ordered by generation: reset rules changed at Ampere and again at Hopper.
    let a = arch.to_ascii_lowercase();
    let table = [
        ("kepler", 3),
        ("maxwell", 5),
        ("pascal", 6),
        ("volta", 7),
        ("turing", 7),
        ("ampere", 8),
        ("ada", 8),
        ("hopper", 9),
        ("blackwell", 10),
    ];
    table
        .iter()
        .find(|(k, _)| a.starts_with(k))
        .map(|(_, g)| *g)
}

pub fn check_nvswitch_fabric_manager(facts: &NodeFacts, g: &GpuFacts) -> Check {
    const NAME: &str = "nvswitch_fabric_manager";
    let active: Vec<_> = g
        .nvlinks
        .iter()
        .filter(|l| l.active.get() == Some(true))
        .collect();
    let switch = active
        .iter()
        .any(|l| l.remote_device_type.ok().map(String::as_str) == Some("switch"));
    let arch = g.architecture.ok().cloned();
    let generation = arch.as_deref().and_then(arch_generation);
    let arch_name = arch.clone().unwrap_or_else(|| "unknown".into());
    let fm = service_running(facts, "nvidia-fabricmanager");
    if active.is_empty() {
        return Check::pass(NAME, "no active NVLink: the GPU resets on its own");
    }
    match (switch, generation) {
        (true, Some(9..)) => Check::pass(
            NAME,
            format!("{arch_name} NVSwitch system: reset does not depend on Fabric Manager"),
        ),
        (true, Some(8)) => match fm {
            Reading::Ok(true) => Check::pass(
                NAME,
                "Ampere NVSwitch system and nvidia-fabricmanager runs: it facilitates the reset",
            ),
            Reading::Ok(false) => Check::block(
                NAME,
                "Ampere NVSwitch system without a running nvidia-fabricmanager: Fabric Manager is \
                 required to reset one GPU; start it (or reset every NVLink peer together)",
            ),
            Reading::Err(e) => Check::block(
                NAME,
                format!(
                    "Ampere NVSwitch system and whether nvidia-fabricmanager runs is unknown ({}): it is \
                     required to reset one GPU",
                    error_name(e.error)
                ),
            ),
        },
        (_, Some(..=7)) => Check::block(
            NAME,
            format!(
                "{arch_name} GPU with {} active NVLink(s): pre-Ampere NVLink GPUs reset only together with \
                 all their peers, and this tool resets one GPU",
                active.len()
            ),
        ),
        (false, Some(8..)) => Check::pass(
            NAME,
            format!("{arch_name} GPU with direct NVLink (no NVSwitch): resets individually"),
        ),
        (_, None) => Check::warn(
            NAME,
            format!(
                "architecture {arch_name} unknown with {} active NVLink(s){}: whether it resets alone is \
                 unknown; nvidia-smi names missing peers if not",
                active.len(),
                if switch { " to an NVSwitch" } else { "" }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::CheckStatus;
    use crate::operator::reset::test_support::{gpu, node, switch_links};

    #[test]
    fn fabric_manager_rules_by_generation() {
        let mut a100 = gpu(0, "Ampere");
        a100.nvlinks = switch_links(12);
        let mut f = node(vec![a100.clone()], vec![]);
        let c = check_nvswitch_fabric_manager(&f, &a100);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("Fabric Manager is required"));
        f.services[0].running = Reading::Ok(true);
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &a100).status,
            CheckStatus::Pass
        );
        f.services.clear();
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &a100).status,
            CheckStatus::Block
        );

        let mut h100 = gpu(0, "Hopper");
        h100.nvlinks = switch_links(18);
        let f = node(vec![h100.clone()], vec![]);
        let c = check_nvswitch_fabric_manager(&f, &h100);
        assert_eq!(c.status, CheckStatus::Pass);
        assert!(c.evidence.contains("does not depend on Fabric Manager"));

        let mut v100 = gpu(0, "Volta");
        v100.nvlinks = switch_links(2);
        v100.nvlinks[0].remote_device_type = Reading::Ok("gpu".into());
        v100.nvlinks[1].remote_device_type = Reading::Ok("gpu".into());
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &v100).status,
            CheckStatus::Block
        );

        let mut direct = gpu(0, "Ampere");
        direct.nvlinks = v100.nvlinks.clone();
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &direct).status,
            CheckStatus::Pass
        );

        let mut unknown = gpu(0, "Mystery");
        unknown.nvlinks = switch_links(1);
        assert_eq!(
            check_nvswitch_fabric_manager(&f, &unknown).status,
            CheckStatus::Warn
        );

        let pcie = gpu(0, "Ampere");
        assert!(
            check_nvswitch_fabric_manager(&f, &pcie)
                .evidence
                .contains("no active NVLink")
        );
    }
}
