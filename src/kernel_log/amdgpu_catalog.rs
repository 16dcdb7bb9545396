//! The amdgpu driver's kernel-log events as data: what each means, how bad it is, and what to do in AMD's
//! own vocabulary (`amd-smi reset -G`, reboot, RMA past the bad-page threshold, restart the application),
//! each row with the public source of its wording. The counterpart of NVIDIA's Xid catalog
//! (`xid-catalog.csv`) for the lines `grammar/amdgpu_lines.rs` recognises.
//!
//! Sources (keys as in the project's AMD reference): the ROCm `amdgpu` driver, `amdgpu_ras.c` (RAS lines,
//! fatal ERREVENT, poison), `amdgpu_ras_eeprom.c` and `umc_v12_0.c` (bad pages and the threshold),
//! `amdgpu_aca.c`/`amdgpu_aca.h` (ACA banks), `amdgpu_job.c` (ring timeouts and ring resets),
//! `amdgpu_device.c` and `soc15.c` (GPU reset, init), `gmc_v9_0.c` (VM faults), `pm/swsmu/smu_cmn.c` (SMU),
//! `smu_v13_0_6_ppt.c` (throttling), `amdgpu_xgmi.c` (XGMI); the kernel's `drivers/base/dd.c` (probe
//! failures); docs.kernel.org `gpu/amdgpu/ras.html`; and ROCm issue #3766 (a failed reset after an
//! uncorrectable error leaves the GPU unusable until reboot).

use crate::finding::{ActionKind, Severity};

/// One kind of amdgpu kernel-log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdCatalogEntry {
    /// Stable id, also the decoded detail's `event`.
    pub id: &'static str,
    /// The event's mnemonic in the report.
    pub mnemonic: &'static str,
    /// The finding code; RAS entries append `.<block>`.
    pub finding: &'static str,
    /// Whether the event counts towards its finding; detail lines (totals, instances, the reset's method)
    /// are listed as events but do not count again what their head line counted.
    pub counts: bool,
    /// What the event is, in a few words (finding summaries start with it).
    pub title: &'static str,
    pub severity: Severity,
    pub action: ActionKind,
    /// What it means and what to do, in AMD's vocabulary.
    pub meaning: &'static str,
    /// Where the wording and the meaning come from.
    pub source: &'static str,
}

const RAS: &str = "amdgpu_ras.c; docs.kernel.org gpu/amdgpu/ras.html";

macro_rules! entry {
    ($id:literal, $mn:literal, $finding:literal, $counts:literal, $title:literal, $sev:ident, $act:ident, $meaning:literal, $source:expr) => {
        AmdCatalogEntry {
            id: $id,
            mnemonic: $mn,
            finding: $finding,
            counts: $counts,
            title: $title,
            severity: Severity::$sev,
            action: ActionKind::$act,
            meaning: $meaning,
            source: $source,
        }
    };
}

/// Every entry. Order is only for reading.
pub static ENTRIES: &[AmdCatalogEntry] = &[
    entry!(
        "ras_ue",
        "RAS_UE",
        "amdgpu.ras_ue",
        true,
        "uncorrectable RAS error",
        Critical,
        ResetGpu,
        "an uncorrectable hardware error: the driver resets the GPU (the whole XGMI hive) and, for UMC, retires the page; work on the GPU was lost. Confirm the reset succeeded (`amd-smi reset -G` if it did not recover by itself), watch the bad-page count",
        RAS
    ),
    entry!(
        "ras_de",
        "RAS_DE",
        "amdgpu.ras_de",
        true,
        "deferred RAS error",
        Warning,
        Monitor,
        "a deferred (poisoned) error: the data is marked poisoned and the page is retired; a consumer of it faults. Watch for poison consumption and the bad-page count",
        RAS
    ),
    entry!(
        "ras_ce",
        "RAS_CE",
        "amdgpu.ras_ce",
        true,
        "correctable RAS error",
        Info,
        Monitor,
        "corrected by hardware, no user action is needed; watch the rate (a rising rate precedes uncorrectable errors)",
        RAS
    ),
    entry!(
        "ras_ue_total",
        "RAS_UE_TOTAL",
        "amdgpu.ras_ue",
        false,
        "uncorrectable RAS errors in total",
        Critical,
        ResetGpu,
        "the driver's running total of uncorrectable errors on this block (printed after each new one)",
        RAS
    ),
    entry!(
        "ras_de_total",
        "RAS_DE_TOTAL",
        "amdgpu.ras_de",
        false,
        "deferred RAS errors in total",
        Warning,
        Monitor,
        "the driver's running total of deferred errors on this block",
        RAS
    ),
    entry!(
        "ras_ce_total",
        "RAS_CE_TOTAL",
        "amdgpu.ras_ce",
        false,
        "correctable RAS errors in total",
        Info,
        Monitor,
        "the driver's running total of correctable errors on this block",
        RAS
    ),
    entry!(
        "ras_instance",
        "RAS_INSTANCE",
        "amdgpu.ras",
        false,
        "RAS error detail",
        Info,
        None,
        "where an error counted on its block's line sits (instance, memory id, UMC channel)",
        "amdgpu_ras.c, umc_v12_0.c"
    ),
    entry!(
        "fatal",
        "ERREVENT_ATHUB_INTERRUPT",
        "amdgpu.fatal",
        true,
        "fatal uncorrectable hardware error",
        Critical,
        ResetGpu,
        "a fatal error (ATHUB interrupt): the driver mode-1 resets every GPU of the XGMI hive, and every GPU of the hive logs the same event; all work on the hive was lost. If the GPUs do not come back (a failed reset), reboot the node",
        "amdgpu_ras.c; ROCm issues #4021, #3766"
    ),
    entry!(
        "poison_consumed",
        "POISON_CONSUMED",
        "amdgpu.poison_consumed",
        true,
        "poisoned data consumed",
        Critical,
        ResetGpu,
        "a client read poisoned data: the driver kills the consumer and resets the GPU (or retires the page); restart the application, confirm the reset, watch the bad-page count",
        "amdgpu_ras.c; amdkfd kfd_int_process_v9.c"
    ),
    entry!(
        "poison_created",
        "POISON_CREATED",
        "amdgpu.poison_created",
        true,
        "poison created",
        Warning,
        Monitor,
        "memory was marked poisoned after a deferred error; the page will be retired, a reader of it will fault",
        "amdgpu_ras.c"
    ),
    entry!(
        "page_retired",
        "PAGE_RETIRED",
        "amdgpu.page_retired",
        true,
        "bad VRAM pages retired",
        Warning,
        Monitor,
        "VRAM pages were retired to the EEPROM table after memory errors: the GPU keeps running with less memory; compare the count with the threshold (`amd-smi bad-pages`)",
        "amdgpu_ras_eeprom.c, umc_v12_0.c"
    ),
    entry!(
        "error_address",
        "ERROR_ADDRESS",
        "amdgpu.page_retired",
        false,
        "bad page address",
        Warning,
        Monitor,
        "the physical address (row, column, bank, channel) of a page being retired",
        "umc_v12_0.c"
    ),
    entry!(
        "bad_page_threshold",
        "BAD_PAGE_THRESHOLD",
        "amdgpu.bad_page_threshold",
        true,
        "bad-page threshold reached",
        Critical,
        Rma,
        "the retired pages reached the RMA threshold: follow AMD's Service Action Guide and RMA the GPU (with a user-set threshold the driver marks it RMA and it fails init)",
        "amdgpu_ras_eeprom.c, amdgpu_ras.c"
    ),
    entry!(
        "bad_page_threshold_near",
        "BAD_PAGE_THRESHOLD_NEAR",
        // Its own code: near the threshold is a warning to plan for, not the RMA that reaching it is.
        "amdgpu.bad_page_threshold_near",
        true,
        "bad-page count near the threshold",
        Warning,
        Monitor,
        "the retired pages exceed 90% of the RMA threshold: plan the GPU's replacement",
        "amdgpu_ras_eeprom.c"
    ),
    entry!(
        "reset",
        "GPU_RESET",
        "amdgpu.reset",
        true,
        "GPU reset",
        Warning,
        Investigate,
        "the driver reset the GPU (the whole XGMI hive): every job on it was lost; find the cause in the lines before it (RAS error, ring timeout) and restart the jobs",
        "amdgpu_device.c"
    ),
    entry!(
        "reset_method",
        "GPU_RESET_METHOD",
        "amdgpu.reset",
        false,
        "GPU reset method",
        Warning,
        Investigate,
        "how the driver resets the GPU (mode-1, mode-2, BACO, PCI)",
        "amdgpu_device.c, soc15.c"
    ),
    entry!(
        "reset_succeeded",
        "GPU_RESET_SUCCEEDED",
        "amdgpu.reset",
        false,
        "GPU reset succeeded",
        Info,
        None,
        "the reset completed and the GPU resumed",
        "amdgpu_device.c"
    ),
    entry!(
        "vram_lost",
        "VRAM_LOST",
        "amdgpu.reset",
        false,
        "VRAM lost in a GPU reset",
        Warning,
        Investigate,
        "the reset cleared VRAM: every buffer on the GPU was lost",
        "amdgpu_device.c"
    ),
    entry!(
        "reset_failed",
        "GPU_RESET_FAILED",
        "amdgpu.reset_failed",
        true,
        "GPU reset failed",
        Critical,
        RebootNode,
        "the driver could not reset the GPU (`GPU reset(N) failed` on this GPU, or the reset ended with a nonzero `ret`): it is unusable until the node is rebooted",
        "amdgpu_device.c; ROCm issue #3766"
    ),
    entry!(
        "ring_timeout",
        "RING_TIMEOUT",
        "amdgpu.ring_timeout",
        true,
        "ring timeout",
        Warning,
        Investigate,
        "a job hung a GPU ring and was killed; the driver recovers with a ring reset or a GPU reset (see what follows). Repeats point at the application, the firmware or the GPU",
        "amdgpu_job.c"
    ),
    entry!(
        "ring_soft_recovered",
        "RING_SOFT_RECOVERED",
        "amdgpu.ring_timeout",
        true,
        "ring timeout, soft recovered",
        Info,
        Monitor,
        "a ring timed out but the driver recovered it without a reset: the GPU is fine; the job may have failed",
        "amdgpu_job.c"
    ),
    entry!(
        "ring_reset_succeeded",
        "RING_RESET_SUCCEEDED",
        "amdgpu.ring_timeout",
        false,
        "ring reset succeeded",
        Info,
        Monitor,
        "the hung ring was reset on its own: no GPU reset, the GPU is fine",
        "amdgpu_job.c"
    ),
    entry!(
        "ring_reset_failed",
        "RING_RESET_FAILED",
        "amdgpu.ring_timeout",
        false,
        "ring reset failed",
        Warning,
        Investigate,
        "the per-ring reset failed (`Ring X reset failed`, Linux 6.13 to 6.15 `Ring X reset failure`); the driver escalates to a GPU reset",
        "amdgpu_job.c"
    ),
    entry!(
        "queue_preempt_failed",
        "CP_PREEMPT_TIMEOUT",
        "amdgpu.queue_preempt_failed",
        true,
        "compute queue preemption timed out",
        Warning,
        Investigate,
        "the command processor did not preempt a compute queue in time (\"The cp might be in an unrecoverable state due to an unsuccessful queues preemption\"): KFD treats the hardware scheduler as hung and resets the GPU, losing the queues' work; see the reset's outcome after it. Repeats point at the application's kernels, the firmware or the GPU",
        "amdkfd kfd_device_queue_manager.c, kfd_mqd_manager.c; amdgpu_amdkfd_gfx_v9.c, _v10_3.c, _v11.c"
    ),
    entry!(
        "qcm_fence_timeout",
        "QCM_FENCE_TIMEOUT",
        "amdgpu.queue_preempt_failed",
        true,
        "HWS queue-map fence timed out",
        Warning,
        Investigate,
        "the hardware scheduler (HWS) did not answer a queue-map request (\"qcm fence wait loop timeout expired\"): KFD treats it as hung and resets the GPU, losing the queues' work; see the reset's outcome after it",
        "amdkfd kfd_device_queue_manager.c"
    ),
    entry!(
        "mes_no_response",
        "MES_NO_RESPONSE",
        "amdgpu.mes_failure",
        true,
        "MES firmware not responding",
        Critical,
        ResetGpu,
        "the micro engine scheduler (MES) firmware did not answer the driver: in AMD's words \"MES might be in unrecoverable state, issue a GPU reset\"; KFD schedules that reset itself. Confirm it succeeded (`amd-smi reset -G` if not), reboot the node if the reset fails",
        "mes_v11_0.c, mes_v12_0.c; amdkfd kfd_device_queue_manager.c"
    ),
    entry!(
        "mes_queue_failed",
        "MES_QUEUE_FAILED",
        "amdgpu.mes_failure",
        true,
        "MES failed to add or remove a hardware queue",
        Critical,
        ResetGpu,
        "the MES firmware failed to add or remove a hardware queue: in AMD's words \"MES might be in unrecoverable state, issue a GPU reset\"; KFD schedules that reset itself. Confirm it succeeded (`amd-smi reset -G` if not), reboot the node if the reset fails",
        "amdgpu_mes.c; amdkfd kfd_device_queue_manager.c"
    ),
    entry!(
        "illegal_register_access",
        "ILLEGAL_REGISTER_ACCESS",
        "amdgpu.illegal_command",
        true,
        "illegal register access in a command stream",
        Warning,
        Investigate,
        "a command stream wrote a privileged register (\"Illegal register access in command stream\"): the driver treats the ring as hung (the job is killed, a ring or GPU reset follows); a bug in the user-mode driver or the application, or corrupted command buffers. Find the process in the ring timeout that follows",
        "gfx_v9_0.c, gfx_v10_0.c, gfx_v11_0.c, gfx_v12_0.c, gfx_v9_4_3.c (priv_reg_irq)"
    ),
    entry!(
        "illegal_instruction",
        "ILLEGAL_INSTRUCTION",
        "amdgpu.illegal_command",
        true,
        "illegal instruction in a command stream",
        Warning,
        Investigate,
        "a command stream held an opcode the engine rejects (\"Illegal instruction in command stream\"): the driver treats the ring as hung (the job is killed, a ring or GPU reset follows); a bug in the user-mode driver or the application, or corrupted command buffers",
        "gfx_v9_0.c, gfx_v10_0.c, gfx_v11_0.c, sdma_v4_0.c (priv_inst_irq, illegal_inst_irq)"
    ),
    entry!(
        "vm_fault",
        "VM_FAULT",
        "amdgpu.vm_fault",
        true,
        "GPU page fault",
        Warning,
        RestartApplication,
        "an application accessed GPU memory it does not map (a bug in the application or its libraries): restart the application; the GPU needs no reset",
        "gmc_v9_0.c; gmc_v6_0.c, gmc_v7_0.c, gmc_v8_0.c (`GPU fault detected`, SI/CIK/VI)"
    ),
    entry!(
        "aca_bank",
        "ACA_BANK",
        "amdgpu.aca_bank",
        true,
        "ACA error bank",
        Warning,
        Investigate,
        "a machine-check bank the driver dumped: its STATUS says whether the error was uncorrectable, deferred or poisoned, its IPID which unit, socket and die",
        "amdgpu_aca.c, amdgpu_aca.h"
    ),
    entry!(
        "smu_hang",
        "SMU_HANG",
        "amdgpu.smu_hang",
        true,
        "SMU firmware not responding",
        Critical,
        ResetGpu,
        "the power-management firmware (SMU) stopped answering the driver (\"SMU: I'm not done with your previous command\", \"Failed to send message\"): reset the GPU (`amd-smi reset -G`); reboot the node if it stays hung",
        "pm/swsmu/smu_cmn.c; pm/powerplay/smumgr/smu7_smumgr.c, smu9_smumgr.c, smu10_smumgr.c, vega20_smumgr.c"
    ),
    entry!(
        "init_failed",
        "INIT_FAILED",
        "amdgpu.init_failed",
        true,
        "GPU initialisation failure",
        Critical,
        RebootNode,
        "the driver could not initialise the GPU, so it is missing from KFD and the device plugin: reboot; if it persists, check the firmware, the bad-page RMA state and the hardware",
        "amdgpu_device.c, amdgpu_kms.c, amdgpu_discovery.c (IP discovery); drivers/base/dd.c"
    ),
    entry!(
        "boot_fault",
        "BOOT_FAULT",
        "amdgpu.boot_fault",
        true,
        "hardware fault at boot",
        Critical,
        Rma,
        "the GPU's boot firmware reported a hardware fault (memory training, HBM test, link training, firmware load): a hardware defect; RMA the GPU",
        "amdgpu_ras.c"
    ),
    entry!(
        "xgmi_error",
        "XGMI_ERROR",
        "amdgpu.xgmi_error",
        true,
        "XGMI link error",
        Warning,
        Investigate,
        "an XGMI (GPU-to-GPU link) error: check the link state (`amd-smi xgmi`) and whether it repeats; the hive's collective traffic may slow or fail",
        "amdgpu_xgmi.c"
    ),
    entry!(
        "thermal_throttle",
        "THERMAL_THROTTLE",
        "amdgpu.thermal_throttle",
        true,
        "GPU throttled",
        Warning,
        CheckCooling,
        "the GPU lowered its clocks for temperature or power (Prochot, PPT, SOC, VR, HBM): performance drops; check airflow and cooling, or the power cap when only PPT is named",
        "smu_v13_0_6_ppt.c, aldebaran_ppt.c"
    ),
];

/// The entry of an id (the grammar's ids are all in the table; a test guards it).
pub fn lookup(id: &str) -> Option<&'static AmdCatalogEntry> {
    ENTRIES.iter().find(|e| e.id == id)
}

/// The action's short name, as an event's `immediate_action` carries it.
pub fn bucket(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::None => "NONE",
        ActionKind::Monitor => "MONITOR",
        ActionKind::Investigate => "INVESTIGATE",
        ActionKind::RestartApplication => "RESTART_APP",
        ActionKind::CheckCooling => "CHECK_COOLING",
        ActionKind::CheckPower => "CHECK_POWER",
        ActionKind::UpdateSoftware => "UPDATE_SWFW",
        ActionKind::RestartFabricManager => "RESTART_SERVICES",
        ActionKind::ResetGpuWhenDrained => "RESET_GPU_WHEN_DRAINED",
        ActionKind::ResetGpu => "RESET_GPU",
        ActionKind::DrainAndResetGpu => "DRAIN_AND_RESET_GPU",
        ActionKind::CheckMechanicals => "CHECK_MECHANICALS",
        ActionKind::RebootNode => "REBOOT",
        ActionKind::Rma => "RMA",
        ActionKind::ContactSupport => "CONTACT_SUPPORT",
    }
}

/// The concrete step for an action on an AMD GPU, in AMD's tools, naming the GPU by its PCI address:
/// `amd-smi -g` also takes an index, but amd-smi's own (its partitions count as GPUs with `list -e`, and
/// a node with NVIDIA GPUs numbers its AMD GPUs after them here), so an index would name another GPU.
pub fn action_detail(kind: ActionKind, pci: Option<&str>) -> String {
    let target = pci.unwrap_or("<bdf>");
    match kind {
        ActionKind::None => "no action needed".into(),
        ActionKind::Monitor => "keep watching: re-run `node-probe xid --since 1h` and act if it repeats or grows".into(),
        ActionKind::Investigate => "investigate: collect `amd-smi ras --cper` and the kernel log lines above; escalate to AMD support if it repeats".into(),
        ActionKind::RestartApplication => "restart the affected application or pod; the GPU needs no reset".into(),
        ActionKind::CheckCooling => "check airflow and cooling (and the power cap when only PPT throttles)".into(),
        ActionKind::CheckPower => "check power delivery".into(),
        ActionKind::UpdateSoftware => "update the amdgpu driver and the GPU firmware".into(),
        ActionKind::RestartFabricManager => "restart the GPU's management services".into(),
        ActionKind::ResetGpuWhenDrained => format!("when the GPU's work has drained, reset it: `amd-smi reset -G -g {target}` (resets the whole XGMI hive)"),
        ActionKind::ResetGpu => format!("stop the GPU's workloads (cordon the node, evict pods using the GPU and its XGMI hive), then `amd-smi reset -G -g {target}`; reboot if the reset fails"),
        ActionKind::DrainAndResetGpu => format!("cordon the node, let running work finish (no new work), then `amd-smi reset -G -g {target}`"),
        ActionKind::CheckMechanicals => "cordon and drain the node, then check the GPU's seating and power".into(),
        ActionKind::RebootNode => "cordon and drain the node, then reboot it".into(),
        ActionKind::Rma => "cordon the node and start the RMA process for the GPU (AMD Service Action Guide); `amd-smi bad-pages` lists the retired pages".into(),
        ActionKind::ContactSupport => "collect `amd-smi ras --cper` output and contact AMD support".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_findings_use_the_agreed_prefix() {
        let mut ids: Vec<&str> = ENTRIES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len());
        for e in ENTRIES {
            assert!(e.finding.starts_with("amdgpu."), "{}", e.id);
            assert!(!e.meaning.is_empty() && !e.source.is_empty(), "{}", e.id);
        }
        assert!(
            action_detail(ActionKind::ResetGpu, Some("0000:65:00.0"))
                .contains("amd-smi reset -G -g 0000:65:00.0`")
        );
        assert!(action_detail(ActionKind::ResetGpu, None).contains("-g <bdf>"));
    }
}
