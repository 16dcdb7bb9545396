//! The catalog's immediate-action buckets as severity and action, the project's policy for the codes
//! the catalog leaves blank, the stable finding codes and the action text.

use super::class::{Class, EventCtx, class};
use crate::finding::{ActionKind, Severity};
use crate::kernel_log::nvidia_catalog::CatalogEntry;

/// The catalog's immediate-action bucket as severity and action.
pub fn bucket(entry: &CatalogEntry) -> Class {
    let b = entry.immediate_action.as_deref().unwrap_or("");
    let d = &entry.description;
    match b {
        "RESTART_APP" => class(
            Severity::Warning,
            ActionKind::RestartApplication,
            format!("{d}: restart the application (catalog RESTART_APP); the GPU needs no reset"),
        ),
        "IGNORE" => class(
            Severity::Info,
            ActionKind::None,
            format!("{d}: no action required (catalog IGNORE)"),
        ),
        "RESET_GPU" => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            format!("{d}: the GPU must be reset (catalog RESET_GPU)"),
        ),
        "RESTART_BM" => class(
            Severity::Critical,
            ActionKind::RebootNode,
            format!(
                "{d}: the node must be rebooted (catalog RESTART_BM); check kernel PCI/AER logs for the cause"
            ),
        ),
        "RESTART_VM" => class(
            Severity::Critical,
            ActionKind::RebootNode,
            format!("{d}: restart the VM that owns the GPU (catalog RESTART_VM)"),
        ),
        "CHECK_MECHANICALS" => class(
            Severity::Critical,
            ActionKind::CheckMechanicals,
            format!("{d}: check seating and power connections (catalog CHECK_MECHANICALS)"),
        ),
        "UPDATE_SWFW" => class(
            Severity::Warning,
            ActionKind::UpdateSoftware,
            format!("{d}: update driver/firmware (catalog UPDATE_SWFW)"),
        ),
        "CHECK_UVM" => class(
            Severity::Warning,
            ActionKind::ResetGpuWhenDrained,
            format!(
                "{d}: if UVM or vGPU is in use, reset the GPU; otherwise no action (catalog CHECK_UVM)"
            ),
        ),
        "CONTACT_SUPPORT" if entry.is_unused() => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            "a code the catalog marks Unused on current GPUs: unexpected on Ampere or newer (old GPU, wrong catalog, or a driver issue); contact support (catalog CONTACT_SUPPORT)",
        ),
        "CONTACT_SUPPORT" => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            format!("{d}: contact support (catalog CONTACT_SUPPORT)"),
        ),
        other => class(
            Severity::Warning,
            ActionKind::Investigate,
            format!("{d}: catalog bucket {other}: investigate"),
        ),
    }
}

/// Codes 162–172 have blank resolution buckets in the catalog; this is the project's explicit policy.
pub(super) fn blank_policy(code: u32, ctx: &EventCtx) -> Class {
    let c = match code {
        162 => class(
            Severity::Info,
            ActionKind::None,
            "power-smoothing circuitry re-engaged: informational",
        ),
        163 => class(
            Severity::Warning,
            ActionKind::Monitor,
            "power-smoothing circuitry disengaged: the GPU runs without it; check the power-smoothing configuration",
        ),
        164 => class(
            Severity::Warning,
            ActionKind::Monitor,
            "power-smoothing circuitry is near the end of its lifetime: plan maintenance",
        ),
        165 => class(
            Severity::Warning,
            ActionKind::ContactSupport,
            "power-smoothing circuitry lifetime exhausted: plan a replacement with support",
        ),
        166 | 170 => class(
            Severity::Warning,
            ActionKind::Investigate,
            "confidential-computing NVLink event: check the CC/NVLE configuration",
        ),
        167 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "PCIe fatal timeout: treated as severe as the Xid 48 family: reset the GPU",
        ),
        168 => class(
            Severity::Warning,
            ActionKind::Investigate,
            "errors in the write-protected region reduced usable memory: enable ECC (row remapping) or reboot to shift the WPR",
        ),
        169 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "SEC2 micro-controller halt: reset the GPU",
        ),
        171 | 172 if ctx.burst_codes.contains(&48) => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "uncorrectable memory error detail accompanying Xid 48: follow Xid 48's guidance",
        ),
        171 | 172 => class(
            Severity::Critical,
            ActionKind::ResetGpu,
            "uncorrectable memory error (Xid 48 family): reset the GPU",
        ),
        _ => class(
            Severity::Warning,
            ActionKind::Investigate,
            "no catalog action: investigate",
        ),
    };
    Class {
        detail: format!(
            "catalog gives no action for this code; project policy: {}",
            c.detail
        ),
        ..c
    }
}

pub(super) fn join(codes: &[u32]) -> String {
    codes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The concrete step for an action kind.
pub fn action_detail(kind: ActionKind, index: Option<u32>, pci: Option<&str>) -> String {
    let target = match (index, pci) {
        (Some(i), _) => format!("-i {i}"),
        (None, Some(p)) => format!("-i {p}"),
        (None, None) => "-i <gpu>".into(),
    };
    match kind {
        ActionKind::None => "no action needed".into(),
        ActionKind::Monitor => "keep watching: re-run `node-probe xid --since 1h` and act if it repeats".into(),
        ActionKind::Investigate => "investigate: collect `nvidia-bug-report.sh` and the lines above; escalate to NVIDIA support if it repeats".into(),
        ActionKind::RestartApplication => "restart the affected application or pod; the GPU needs no reset".into(),
        ActionKind::CheckCooling => "check airflow and cooling".into(),
        ActionKind::CheckPower => "check power delivery".into(),
        ActionKind::UpdateSoftware => "update the driver/firmware (and vGPU guest/host drivers to a compatible pair)".into(),
        ActionKind::RestartFabricManager => "restart Fabric Manager: `systemctl restart nvidia-fabricmanager`".into(),
        ActionKind::ResetGpuWhenDrained => format!("when the GPU's work has drained, reset it: `nvidia-smi -r {target}`"),
        ActionKind::ResetGpu => format!("stop the GPU's workloads (cordon the node, evict pods using the GPU), then `nvidia-smi -r {target}`; reboot if the reset fails"),
        ActionKind::DrainAndResetGpu => format!("cordon the node, let running work finish (no new work), then `nvidia-smi -r {target}`"),
        ActionKind::CheckMechanicals => "cordon and drain the node, then check the GPU's seating, power cables and NVLink/PCIe connections".into(),
        ActionKind::RebootNode => "cordon and drain the node, then reboot it".into(),
        ActionKind::Rma => "cordon the node and start the RMA process for the GPU".into(),
        ActionKind::ContactSupport => "collect `nvidia-bug-report.sh` and contact NVIDIA support".into(),
    }
}
