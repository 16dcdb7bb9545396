//! The GPU as re-read after the reset: back on the bus, no recovery action left, nothing still pending.

use super::gpu_state::check_on_bus;
use crate::analysis::error_name;
use crate::facts::{GpuFacts, NodeFacts, Reading};
use crate::operator::{Check, CheckStatus, gpu_name};

/// Judge the GPU as re-read after the reset (matched by UUID, else by index).
pub fn verify(before: &GpuFacts, after: &NodeFacts) -> Vec<Check> {
    let found = match before.uuid.ok() {
        Some(u) => after
            .gpus
            .iter()
            .find(|g| g.uuid.ok().is_some_and(|x| x == u)),
        None => after.gpus.iter().find(|g| g.index == before.index),
    };
    let Some(g) = found else {
        return vec![Check::block(
            "gpu_back",
            format!(
                "{} is not enumerated after the reset: drain the node and power-cycle it",
                gpu_name(before)
            ),
        )];
    };
    let mut out = vec![match check_on_bus(g) {
        c if c.status == CheckStatus::Pass => {
            Check::pass("gpu_back", format!("{} answers NVML again", gpu_name(g)))
        }
        c => Check::block("gpu_back", c.evidence),
    }];
    out.push(match &g.recovery_action {
        Reading::Ok(0) => Check::pass("recovery_action_none", "recovery action none"),
        Reading::Ok(n) => Check::block(
            "recovery_action_none",
            format!("the driver still asks for recovery action {n} after the reset"),
        ),
        Reading::Err(e) => Check::warn(
            "recovery_action_none",
            format!("recovery action not reported ({})", error_name(e.error)),
        ),
    });
    if let Reading::Ok(m) = &g.mig_mode
        && m.current != m.pending
    {
        out.push(Check::warn(
            "mig_applied",
            "a MIG mode change is still pending after the reset",
        ));
    }
    if g.ecc.remapped_rows.ok().is_some_and(|r| r.pending) {
        out.push(Check::warn(
            "remap_applied",
            "row remapping still pending after the reset",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FieldError, FieldErrorKind};
    use crate::operator::reset::test_support::{gpu, node};

    #[test]
    fn verification_after_reset() {
        let before = gpu(2, "Hopper");
        let mut after = node(vec![gpu(2, "Hopper")], vec![]);
        after.gpus[0].recovery_action = Reading::Ok(0);
        let v = verify(&before, &after);
        assert!(v.iter().all(|c| c.status == CheckStatus::Pass), "{v:?}");
        after.gpus[0].recovery_action = Reading::Ok(1);
        assert_eq!(verify(&before, &after)[1].status, CheckStatus::Block);
        after.gpus[0].handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        assert_eq!(verify(&before, &after)[0].status, CheckStatus::Block);
        after.gpus.clear();
        let v = verify(&before, &after);
        assert_eq!(v[0].check, "gpu_back");
        assert!(v[0].evidence.contains("power-cycle"));
    }
}
