//! The GPU's own state before a reset: on the bus, what the driver's recovery action asks for, MIG,
//! persistence mode and pending repairs.

use crate::analysis::error_name;
use crate::facts::{FieldErrorKind, GpuFacts, Reading};
use crate::operator::{Check, gpu_name};

fn lost(g: &GpuFacts) -> Option<String> {
    if let Some(e) = &g.handle_error {
        return Some(error_name(e.error).to_string());
    }
    let fields: &[(&str, Option<FieldErrorKind>)] = &[
        ("uuid", g.uuid.err().map(|e| e.error)),
        ("memory", g.memory.err().map(|e| e.error)),
        ("processes", g.processes.err().map(|e| e.error)),
        ("pci_bus_id", g.pci_bus_id.err().map(|e| e.error)),
    ];
    fields
        .iter()
        .find(|(_, e)| *e == Some(FieldErrorKind::GpuIsLost))
        .map(|(f, _)| format!("{f}: gpu_is_lost"))
}

pub fn check_on_bus(g: &GpuFacts) -> Check {
    const NAME: &str = "gpu_on_bus";
    match (lost(g), &g.handle_error) {
        (Some(why), _) if why.contains("gpu_is_lost") => Check::block(
            NAME,
            format!(
                "{} is lost to the driver ({why}): it fell off the bus (Xid 79 class); an in-band reset \
                 cannot recover it. Drain the node and reboot or power-cycle it",
                gpu_name(g)
            ),
        ),
        (_, Some(e)) => Check::block(
            NAME,
            format!(
                "NVML has no handle for GPU {} ({}): its state cannot be verified",
                g.index,
                error_name(e.error)
            ),
        ),
        _ => Check::pass(NAME, "the GPU answers NVML"),
    }
}

/// NVML field 230: what the driver itself says the GPU needs.
pub fn check_recovery_action(g: &GpuFacts) -> Check {
    const NAME: &str = "recovery_action";
    match &g.recovery_action {
        Reading::Ok(v) => {
            let Some(a) = crate::facts::recovery_action(*v) else {
                return Check::warn(NAME, format!("unknown recovery action {v}"));
            };
            if *v == 0 {
                return Check::pass(NAME, "none: the driver does not ask for a reset");
            }
            let said = format!("the driver asks: {} (recovery action {v})", a.name);
            match a.reset {
                None => Check::pass(NAME, said),
                Some((true, why)) => Check::block(NAME, format!("{said}: {why}")),
                Some((false, why)) => Check::warn(NAME, format!("{said}: {why}")),
            }
        }
        Reading::Err(e) => Check::pass(
            NAME,
            format!(
                "not reported ({}): older driver or GPU",
                error_name(e.error)
            ),
        ),
    }
}
pub fn check_mig(g: &GpuFacts) -> Check {
    const NAME: &str = "mig";
    match &g.mig_mode {
        Reading::Ok(m) if m.current != m.pending => Check::warn(
            NAME,
            format!(
                "MIG mode change pending ({} -> {}): the reset applies it",
                on_off(m.current),
                on_off(m.pending)
            ),
        ),
        Reading::Ok(m) if m.current => Check::warn(
            NAME,
            format!(
                "MIG enabled with {} instance(s): the reset destroys GPU and compute instances; the MIG \
                 manager (or an operator) must recreate them",
                g.mig_devices.len()
            ),
        ),
        Reading::Ok(_) => Check::pass(NAME, "MIG disabled"),
        Reading::Err(e) if e.error == FieldErrorKind::NotSupported => {
            Check::pass(NAME, "MIG not supported on this GPU")
        }
        Reading::Err(e) => Check::warn(NAME, format!("MIG mode unknown ({})", error_name(e.error))),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "enabled" } else { "disabled" }
}

pub fn check_persistence(g: &GpuFacts) -> Check {
    const NAME: &str = "persistence_mode";
    match &g.persistence_mode {
        Reading::Ok(true) => Check::warn(
            NAME,
            "persistence mode is enabled: it is turned off before the reset and on again after",
        ),
        Reading::Ok(false) => Check::pass(NAME, "persistence mode disabled"),
        Reading::Err(e) => Check::warn(
            NAME,
            format!("persistence mode unknown ({})", error_name(e.error)),
        ),
    }
}

/// Pending row remaps and page retirements are applied by a reset; a remap failure is not fixed by it.
pub fn check_pending_repairs(g: &GpuFacts) -> Check {
    const NAME: &str = "pending_repairs";
    let mut notes = Vec::new();
    let mut warn = false;
    if let Some(r) = g.ecc.remapped_rows.ok() {
        if r.pending {
            notes.push("row remapping pending: the reset applies it".to_string());
        }
        if r.failure {
            warn = true;
            notes.push(
                "row remapping FAILED: a reset does not fix it; the GPU needs field diagnostics / RMA"
                    .to_string(),
            );
        }
    }
    if g.ecc.retired_pages.ok().is_some_and(|p| p.pending) {
        notes.push("page retirement pending: the reset applies it".to_string());
    }
    match (notes.is_empty(), warn) {
        (true, _) => Check::pass(NAME, "no pending row remap or page retirement"),
        (false, true) => Check::warn(NAME, notes.join("; ")),
        (false, false) => Check::pass(NAME, notes.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FieldError, MigModeFacts, RemappedRowsFacts};
    use crate::operator::CheckStatus;
    use crate::operator::reset::steps;
    use crate::operator::reset::test_support::gpu;

    #[test]
    fn lost_gpu_needs_a_reboot() {
        let mut g = gpu(0, "Hopper");
        g.memory = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        let c = check_on_bus(&g);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("reboot"));
        let mut g = gpu(0, "Hopper");
        g.handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        assert!(check_on_bus(&g).evidence.contains("fell off the bus"));
        g.handle_error = Some(FieldError::new(FieldErrorKind::Unknown));
        assert!(check_on_bus(&g).evidence.contains("no handle"));
        let mut g = gpu(0, "Hopper");
        g.recovery_action = Reading::Ok(2);
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Block);
        g.recovery_action = Reading::Ok(3);
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Warn);
        // The IMEX recovery is named, not "unknown", and is not what a reset does.
        g.recovery_action = Reading::Ok(5);
        let c = check_recovery_action(&g);
        assert_eq!(c.status, CheckStatus::Warn);
        assert!(c.evidence.contains("Recover IMEX Domain"), "{}", c.evidence);
        g.recovery_action = Reading::Ok(9);
        assert!(
            check_recovery_action(&g)
                .evidence
                .contains("unknown recovery action 9")
        );
        g.recovery_action = Reading::not_supported();
        assert_eq!(check_recovery_action(&g).status, CheckStatus::Pass);
    }

    #[test]
    fn mig_persistence_and_repairs_warn() {
        let mut g = gpu(0, "Ampere");
        g.mig_mode = Reading::Ok(MigModeFacts {
            current: false,
            pending: true,
        });
        let c = check_mig(&g);
        assert_eq!(c.status, CheckStatus::Warn);
        assert!(c.evidence.contains("disabled -> enabled"));
        g.mig_mode = Reading::Ok(MigModeFacts {
            current: true,
            pending: true,
        });
        assert!(check_mig(&g).evidence.contains("destroys"));
        g.mig_mode = Reading::not_supported();
        assert_eq!(check_mig(&g).status, CheckStatus::Pass);

        g.persistence_mode = Reading::Ok(true);
        assert_eq!(check_persistence(&g).status, CheckStatus::Warn);
        let acts: Vec<String> = steps(&g).into_iter().map(|s| s.action).collect();
        assert_eq!(
            acts,
            ["persistence_off", "reset", "verify", "persistence_on"]
        );

        g.ecc.remapped_rows = Reading::Ok(RemappedRowsFacts {
            pending: true,
            ..Default::default()
        });
        let c = check_pending_repairs(&g);
        assert_eq!(c.status, CheckStatus::Pass);
        assert!(c.evidence.contains("applies it"));
        g.ecc.remapped_rows = Reading::Ok(RemappedRowsFacts {
            failure: true,
            ..Default::default()
        });
        assert_eq!(check_pending_repairs(&g).status, CheckStatus::Warn);
    }
}
