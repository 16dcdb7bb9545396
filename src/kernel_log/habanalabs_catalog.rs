//! The habanalabs driver's (Intel Gaudi) kernel-log events as data: what each means, how bad it is and
//! what to do in Intel's own vocabulary (`hl-smi -r -i <pci>` resets an accelerator; the driver's own
//! words "Device is NOT usable"), each row with the public source of its wording. The counterpart of
//! `amdgpu_catalog.rs` for the lines `grammar/habanalabs_lines.rs` recognises.
//!
//! Sources: Linux 6.12 `drivers/accel/habanalabs` (`common/device.c`: resets, heartbeat, init, thermal;
//! `common/firmware_if.c`: boot and security errors, the EQ fault; `gaudi2/gaudi2.c`: ECC, HBM, RAZWI, MMU
//! faults, PCIe, CPLD; `include/gaudi2/gaudi2_async_ids_map_extended.h`: each firmware event's name and the
//! reset it asks for), and Intel's hl-smi guide (docs.habana.ai, Management_and_Monitoring/
//! Embedded_System_Tools_Guide/System_Management_Interface_Tool: `-r, --reset-aip` "Triggers a reset of the
//! Intel Gaudi AIP. Requires root. Requires -i", `-d ROW_REPLACEMENT`, `--fw-versions`).
//!
//! The 6.12 driver prints no line for HBM row replacement or pending rows: it answers them only through its
//! INFO ioctl (`HL_INFO_DRAM_REPLACED_ROWS`, `HL_INFO_DRAM_PENDING_ROWS`, `habanalabs_ioctl.c:1125`),
//! which HLML and `hl-smi -d ROW_REPLACEMENT` read; the catalog claims no such line.

use crate::finding::{ActionKind, Severity};

/// One kind of habanalabs kernel-log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HlCatalogEntry {
    /// Stable id, also the decoded detail's `event`.
    pub id: &'static str,
    pub mnemonic: &'static str,
    /// The finding code (`habanalabs.*`).
    pub finding: &'static str,
    /// Whether the event counts towards its finding (detail lines do not count again).
    pub counts: bool,
    pub title: &'static str,
    pub severity: Severity,
    pub action: ActionKind,
    /// What it means and what to do, in Intel's and the driver's words.
    pub meaning: &'static str,
    pub source: &'static str,
}

macro_rules! entry {
    ($id:literal, $mn:literal, $finding:literal, $counts:literal, $title:literal, $sev:ident, $act:ident, $meaning:literal, $source:literal) => {
        HlCatalogEntry {
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
pub static ENTRIES: &[HlCatalogEntry] = &[
    entry!(
        "reset_start",
        "HARD_RESET",
        "habanalabs.reset",
        true,
        "hard reset started",
        Warning,
        Monitor,
        "the driver is hard-resetting the device (device status `in reset`): every user process on it is killed and its work is lost. Confirm the reset finishes (`Successfully finished resetting`) and the device reads `operational` again",
        "common/device.c hl_device_reset"
    ),
    entry!(
        "reset_done",
        "RESET_DONE",
        "habanalabs.reset_done",
        true,
        "reset finished",
        Info,
        Monitor,
        "the driver finished resetting the device and it is operational again; the reset's cause is in the lines before it",
        "common/device.c hl_device_reset"
    ),
    entry!(
        "reset_failed",
        "RESET_FAILED",
        "habanalabs.reset_failed",
        true,
        "reset failed, device NOT usable",
        Critical,
        RebootNode,
        "the driver's hard reset failed: \"Device is NOT usable\" (device status `disabled`, a malfunction) until the device is reset again. Drain the node, try `hl-smi -r -i <pci>`, and reboot the node if the device does not come back operational",
        "common/device.c hl_device_reset"
    ),
    entry!(
        "reset_stopped",
        "RESET_STOPPED",
        "habanalabs.reset_failed",
        true,
        "hard reset stopped",
        Critical,
        RebootNode,
        "the driver stopped a hard reset (open processes it could not kill, or consecutive fatal errors): the device stays unusable. Find and stop the processes holding /dev/accel/accel*, then reset with `hl-smi -r -i <pci>`; reboot the node if it does not come back operational",
        "common/device.c hl_device_reset"
    ),
    entry!(
        "compute_reset_failed",
        "COMPUTE_RESET_FAILED",
        "habanalabs.reset",
        true,
        "compute (soft) reset failed",
        Warning,
        Monitor,
        "the compute reset failed and the driver escalates to a hard reset of the device; confirm that one finishes",
        "common/device.c hl_device_reset"
    ),
    entry!(
        "process_killed",
        "PROCESS_KILLED",
        "habanalabs.reset",
        false,
        "user process killed for a reset",
        Info,
        RestartApplication,
        "the driver killed a process using the device before resetting it: that workload must be restarted",
        "common/device.c device_kill_open_processes"
    ),
    entry!(
        "init_failed",
        "INIT_FAILED",
        "habanalabs.init_failed",
        true,
        "device initialisation failed",
        Critical,
        RebootNode,
        "the driver could not initialise the device: \"Device is NOT usable\". Check the firmware (`hl-smi --fw-versions`) and the boot errors before it; reboot or reload the driver, and contact Intel support if it repeats",
        "common/device.c hl_device_init"
    ),
    entry!(
        "device_added",
        "DEVICE_ADDED",
        "habanalabs.device_added",
        false,
        "device added",
        Info,
        None,
        "the driver initialised the device (status `operational`)",
        "common/device.c hl_device_init"
    ),
    entry!(
        "heartbeat_failed",
        "HEARTBEAT_FAILED",
        "habanalabs.heartbeat",
        true,
        "device heartbeat failed",
        Critical,
        ResetGpu,
        "the device's firmware (CPU-CP) stopped answering the driver's heartbeat: the driver hard-resets the device and its work is lost. With \"PCI link is broken\" the device is off the bus: check its seating and power. Confirm the reset finishes; reboot if it fails",
        "common/device.c hl_device_heartbeat"
    ),
    entry!(
        "eq_heartbeat_missed",
        "EQ_HEARTBEAT_MISSED",
        "habanalabs.heartbeat",
        false,
        "event-queue heartbeat missed",
        Warning,
        Monitor,
        "the firmware's event-queue heartbeat did not arrive: the heartbeat check fails next (see `Device heartbeat failed`)",
        "common/device.c hl_device_eq_heartbeat_received"
    ),
    entry!(
        "fw_eq_fault",
        "FW_EQ_FAULT",
        "habanalabs.heartbeat",
        true,
        "firmware reported an event-queue fault",
        Warning,
        Monitor,
        "the firmware reported an event-queue fault in its heartbeat answer: the heartbeat counts as failed and the driver resets the device",
        "common/firmware_if.c hl_fw_send_heartbeat"
    ),
    entry!(
        "fw_boot_error",
        "FW_BOOT_ERROR",
        "habanalabs.fw_boot_error",
        true,
        "firmware boot error",
        Critical,
        UpdateSoftware,
        "the device's preboot firmware reported a boot error (DRAM, thermal sensor, PLL, eFuse, EEPROM, NIC firmware, …): the device may not be usable. Check and upgrade the firmware per Intel's Firmware Upgrade guide (`hl-smi --fw-versions`), contact Intel support if it repeats",
        "common/firmware_if.c fw_report_boot_dev0"
    ),
    entry!(
        "fw_boot_warning",
        "FW_BOOT_WARNING",
        "habanalabs.fw_boot_warning",
        true,
        "firmware boot warning",
        Warning,
        Monitor,
        "the device's preboot firmware reported a boot warning (a skipped step, a TPM failure, the primary image not loaded): the device came up; check the firmware version (`hl-smi --fw-versions`) if it repeats",
        "common/firmware_if.c fw_report_boot_dev0"
    ),
    entry!(
        "fw_security_error",
        "FW_SECURITY_ERROR",
        "habanalabs.fw_security",
        true,
        "firmware security failure",
        Critical,
        ContactSupport,
        "the device's firmware reported a security failure at boot: the device is not trusted to run work; contact Intel support",
        "common/firmware_if.c fw_report_boot_dev0"
    ),
    entry!(
        "fw_security_not_ready",
        "FW_SECURITY_NOT_READY",
        "habanalabs.fw_security",
        true,
        "firmware security not ready",
        Warning,
        Monitor,
        "the firmware reported at boot that security was not ready (a boot warning); watch the device's status",
        "common/firmware_if.c fw_report_boot_dev0"
    ),
    entry!(
        "ecc_derr",
        "ECC_DERR",
        "habanalabs.ecc_derr",
        true,
        "uncorrectable (DERR) ECC error",
        Critical,
        ResetGpu,
        "a double-bit (DERR) ECC error the hardware could not correct: the firmware event asks for a hard reset and the device's work is lost. Confirm the reset finished; a DERR in HBM may leave rows pending replacement (`hl-smi -d ROW_REPLACEMENT`)",
        "gaudi2/gaudi2.c gaudi2_handle_ecc_event; include/gaudi2/gaudi2_async_ids_map_extended.h"
    ),
    entry!(
        "ecc_serr",
        "ECC_SERR",
        "habanalabs.ecc_serr",
        true,
        "corrected (SERR) ECC error",
        Info,
        Monitor,
        "a single-bit (SERR) ECC error the hardware corrected: no action; watch the rate",
        "gaudi2/gaudi2.c gaudi2_handle_ecc_event; include/gaudi2/gaudi2_async_ids_map_extended.h"
    ),
    entry!(
        "hbm_ecc_derr",
        "HBM_ECC_DERR",
        "habanalabs.hbm_derr",
        true,
        "HBM read error with uncorrectable ECC",
        Critical,
        ResetGpu,
        "an HBM read had uncorrectable (DERR) ECC errors: the driver requires a hard reset. After it, check rows pending replacement (`hl-smi -d ROW_REPLACEMENT`); pending rows are replaced at the next reset",
        "gaudi2/gaudi2.c gaudi2_hbm_sei_handle_read_err"
    ),
    entry!(
        "hbm_ecc_serr",
        "HBM_ECC_SERR",
        "habanalabs.hbm_serr",
        true,
        "HBM read error with corrected ECC",
        Info,
        Monitor,
        "an HBM read had corrected (SERR) ECC errors; watch the rate and the replaced rows (`hl-smi -d ROW_REPLACEMENT`)",
        "gaudi2/gaudi2.c gaudi2_hbm_sei_handle_read_err"
    ),
    entry!(
        "hbm_read_error",
        "HBM_READ_ERROR",
        "habanalabs.hbm_serr",
        true,
        "HBM read error",
        Warning,
        Monitor,
        "an HBM read error without ECC counts (read parity): watch the rate",
        "gaudi2/gaudi2.c gaudi2_hbm_sei_handle_read_err"
    ),
    entry!(
        "hbm_beat_derr",
        "HBM_BEAT_DERR",
        "habanalabs.hbm_derr",
        false,
        "HBM read beat with uncorrectable ECC",
        Critical,
        ResetGpu,
        "detail of an HBM read error: the beat with a DERR (the driver requires a hard reset)",
        "gaudi2/gaudi2.c gaudi2_hbm_sei_handle_read_err"
    ),
    entry!(
        "hbm_beat_serr",
        "HBM_BEAT_SERR",
        "habanalabs.hbm_serr",
        false,
        "HBM read beat with corrected ECC",
        Info,
        Monitor,
        "detail of an HBM read error: the beat with a corrected SERR",
        "gaudi2/gaudi2.c gaudi2_hbm_sei_handle_read_err"
    ),
    entry!(
        "hbm_sei_critical",
        "HBM_SEI_CRITICAL",
        "habanalabs.hbm_sei",
        true,
        "critical HBM system error interrupt",
        Critical,
        ResetGpu,
        "the HBM memory controller raised a critical system error interrupt (its cause follows `Error cause:`): the device is hard-reset; if it repeats on the same HBM, contact Intel support",
        "gaudi2/gaudi2.c gaudi2_handle_hbm_mc_sei_err"
    ),
    entry!(
        "hbm_sei",
        "HBM_SEI",
        "habanalabs.hbm_sei",
        true,
        "HBM system error interrupt",
        Warning,
        Monitor,
        "the HBM memory controller raised a non-critical system error interrupt; watch for repeats on the same HBM",
        "gaudi2/gaudi2.c gaudi2_handle_hbm_mc_sei_err"
    ),
    entry!(
        "razwi",
        "RAZWI",
        "habanalabs.razwi",
        true,
        "RAZWI (illegal access)",
        Warning,
        RestartApplication,
        "an engine made an illegal (Read As Zero, Write Ignored) access, usually a bug in the workload's program: the user process is notified; restart the application, investigate if it repeats across workloads",
        "gaudi2/gaudi2.c gaudi2_razwi_rr_*_shared_printf_info, gaudi2_handle_psoc_razwi_happened, gaudi2_ack_psoc_razwi_event_handler; common/device.c hl_handle_razwi"
    ),
    entry!(
        "mmu_page_fault",
        "MMU_PAGE_FAULT",
        "habanalabs.page_fault",
        true,
        "MMU page fault",
        Warning,
        RestartApplication,
        "the device's MMU (PMMU for host memory, HMMU for HBM) faulted on a virtual address the workload did not map: the user process is notified; restart the application",
        "gaudi2/gaudi2.c gaudi2_handle_page_error, gaudi2_handle_access_error; common/device.c hl_handle_page_fault"
    ),
    entry!(
        "pcie_error",
        "PCIE_ERROR",
        "habanalabs.pcie",
        true,
        "PCIe error",
        Warning,
        Investigate,
        "the device's PCIe block reported an error (a peer-to-peer transaction stopped for security, or an MSI-X denied): check the PCIe topology and the host's AER counters",
        "gaudi2/gaudi2.c gaudi2_handle_pcie_p2p_msix"
    ),
    entry!(
        "cpld_shutdown",
        "CPLD_SHUTDOWN",
        "habanalabs.cpld_shutdown",
        true,
        "CPLD shutdown",
        Critical,
        CheckMechanicals,
        "the board's CPLD shut the device down (its reset reason follows): the device is off until it is reset; check the board's power and cooling, contact Intel support with the reason",
        "gaudi2/gaudi2.c gaudi2_handle_eqe"
    ),
    entry!(
        "cpld_shutdown_cause",
        "CPLD_SHUTDOWN_CAUSE",
        "habanalabs.cpld_shutdown",
        false,
        "cause of an earlier CPLD shutdown",
        Warning,
        Investigate,
        "at start the firmware reported why the CPLD shut the device down before: a past event, check its reason",
        "gaudi2/gaudi2.c gaudi2_handle_eqe"
    ),
    entry!(
        "thermal_throttle",
        "THERMAL_THROTTLE",
        "habanalabs.thermal",
        true,
        "clock throttling for overheating",
        Warning,
        CheckCooling,
        "the device lowered its clocks because it overheated: check airflow and cooling",
        "common/device.c hl_handle_clk_change_event"
    ),
    entry!(
        "thermal_safe",
        "THERMAL_SAFE",
        "habanalabs.thermal",
        false,
        "back to optimal clock",
        Info,
        None,
        "the thermal envelope is safe again and the clocks are back to optimal",
        "common/device.c hl_handle_clk_change_event"
    ),
];

/// The entry of an id (the grammar's ids are all in the table; a test guards it).
pub fn lookup(id: &str) -> Option<&'static HlCatalogEntry> {
    ENTRIES.iter().find(|e| e.id == id)
}

/// The concrete step for an action on a Gaudi device, in Intel's tools, naming it by PCI address
/// (`hl-smi -i` takes the PCI address).
pub fn action_detail(kind: ActionKind, pci: Option<&str>) -> String {
    let target = pci.unwrap_or("<pci>");
    match kind {
        ActionKind::None => "no action needed".into(),
        ActionKind::Monitor => "keep watching: re-run `node-probe xid --since 1h` and act if it repeats or grows".into(),
        ActionKind::Investigate => "investigate: collect `hl-smi -q -i <pci>` and the kernel log lines above; escalate to Intel support if it repeats".replace("<pci>", target),
        ActionKind::RestartApplication => "restart the affected application or pod; the device needs no reset".into(),
        ActionKind::CheckCooling => "check airflow and cooling of the accelerator".into(),
        ActionKind::CheckPower => "check power delivery".into(),
        ActionKind::UpdateSoftware => "update the habanalabs driver and the device firmware (Intel's Firmware Upgrade guide; `hl-smi --fw-versions` shows them)".into(),
        ActionKind::RestartFabricManager => "restart the accelerator's management services".into(),
        ActionKind::ResetGpuWhenDrained => format!("when the device's work has drained, reset it: `hl-smi -r -i {target}`"),
        ActionKind::ResetGpu => format!("confirm the driver's reset finished (device status `operational`); if not, stop the device's workloads (cordon, evict the pods holding it) and `hl-smi -r -i {target}`; reboot if the reset fails"),
        ActionKind::DrainAndResetGpu => format!("cordon the node, let running work finish, then `hl-smi -r -i {target}`"),
        ActionKind::CheckMechanicals => "cordon and drain the node, then check the accelerator's seating, power and cooling".into(),
        ActionKind::RebootNode => format!("cordon and drain the node; try `hl-smi -r -i {target}`, then reboot the node if the device does not come back operational"),
        ActionKind::Rma => "cordon the node and start Intel's RMA process for the device".into(),
        ActionKind::ContactSupport => format!("collect `hl-smi -q -i {target}` and the kernel log and contact Intel support"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_findings_use_the_driver_prefix() {
        let mut ids: Vec<&str> = ENTRIES.iter().map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len());
        for e in ENTRIES {
            assert!(e.finding.starts_with("habanalabs."), "{}", e.id);
            assert!(!e.meaning.is_empty() && !e.source.is_empty(), "{}", e.id);
        }
        assert!(
            action_detail(ActionKind::ResetGpu, Some("0000:19:00.0"))
                .contains("`hl-smi -r -i 0000:19:00.0`")
        );
    }
}
