//! What only Intel Gaudi devices show, judged: the habanalabs driver's device status and its count of
//! hard resets. Temperatures, power and clocks go through the shared rules, which read the shared fields
//! the probe fills. Codes are `gaudi.*` (the kernel log's are `habanalabs.*`); actions in Intel's words
//! (`hl-smi -r -i <pci>`).
//!
//! Meanings: the status strings as the driver defines them (Linux 6.12 `common/habanalabs_drv.c:468-475`,
//! printed with the first letter upper-cased by `common/sysfs.c:298-309`) and as its ABI document explains
//! them (`Documentation/ABI/testing/sysfs-driver-habanalabs`, `status`: "operational - Device is available
//! for work", "in reset - Device is going through reset, will be available shortly", "disabled - Device is
//! not usable", "needs reset - Device is not usable until a hard reset is initiated", "in device creation -
//! Device is not available yet, as it is still initializing").

use crate::facts::{FieldError, FieldErrorKind, Reading};
use crate::facts::{
    GaudiGpuFacts, GpuFacts, HLML_THROTTLE_POWER, HLML_THROTTLE_THERMAL, HlmlDeviceFacts, NodeFacts,
};
use crate::finding::{ActionKind, Finding, Severity};
use crate::kernel_log::habanalabs_catalog::action_detail;

use super::{canonical_bus_id, finding, gpu_label};

/// The node's Gaudi devices with their Gaudi-only facts.
pub fn gaudi_devices(facts: &NodeFacts) -> impl Iterator<Item = (&GpuFacts, &GaudiGpuFacts)> {
    facts
        .gpus
        .iter()
        .filter_map(|g| Some((g, g.gaudi.as_ref()?)))
}

/// A Gaudi's one-line telemetry verdict in the driver's words: the habanalabs sysfs has no clocks-event
/// reasons (its throttling is a kernel-log line, `Clock throttling due to overheating`,
/// `common/device.c:2948`); libhlml, where read (`hlml`), has the current ones. A device not operational
/// answers no clock, power or temperature (`-ENODEV`, `common/sysfs.c:18-19`, `common/hwmon.c:251-252`).
/// Shaped as every verdict is, `<class>: <figures>`: the text groups devices by what precedes the colon.
pub fn clocks_line(g: &GpuFacts, hlml: Option<&HlmlDeviceFacts>) -> Option<String> {
    let h = g.gaudi.as_ref()?;
    let status = match &h.status {
        crate::facts::Reading::Ok(s) => s.trim().to_string(),
        crate::facts::Reading::Err(e) => format!("unreadable ({:?})", e.error),
    };
    let clocks = match (g.clocks.sm_mhz.ok(), g.clocks.sm_max_mhz.ok()) {
        (Some(c), Some(m)) => format!("clock {c} of {m} MHz"),
        _ => "clock unreadable".to_string(),
    };
    let reasons = match hlml.map(|d| &d.clocks_throttle_reasons) {
        Some(crate::facts::Reading::Ok(m)) => match throttle_words(*m).as_slice() {
            [] => "no throttle reason (libhlml)".to_string(),
            w => format!("throttled for {} (libhlml)", w.join(" and ")),
        },
        _ => "no throttle reasons in the habanalabs sysfs (its overheating lines are in the kernel log)"
            .to_string(),
    };
    Some(format!("Gaudi status {status}, {reasons}: {clocks}."))
}

/// HLML's throttle reasons as words; bits HLML does not define are named as such.
fn throttle_words(mask: u64) -> Vec<String> {
    let mut out = Vec::new();
    if mask & HLML_THROTTLE_THERMAL != 0 {
        out.push("heat (THERMAL)".to_string());
    }
    if mask & HLML_THROTTLE_POWER != 0 {
        out.push("its power limit (POWER)".to_string());
    }
    let other = mask & !(HLML_THROTTLE_THERMAL | HLML_THROTTLE_POWER);
    if other != 0 {
        out.push(format!("reasons {other:#x} HLML does not name"));
    }
    out
}

/// Every Gaudi finding of the node.
pub fn judge(facts: &NodeFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    for (g, h) in gaudi_devices(facts) {
        out.extend(status(g, h));
        out.extend(resets(g, h));
        if let Some(d) = hlml_device(facts, g) {
            out.extend(hlml_memory(g, d));
            out.extend(hlml_throttle(g, d));
            if !rdma_covers(facts, g) {
                out.extend(hlml_nic(g, d));
            }
        }
    }
    out
}

/// The device as libhlml read it, joined by PCI address (node-probe joined them the same way).
pub(crate) fn hlml_device<'a>(facts: &'a NodeFacts, g: &GpuFacts) -> Option<&'a HlmlDeviceFacts> {
    let bus = pci(g)?;
    let devices = facts.hlml.as_ref()?.ok()?.devices.ok()?;
    devices
        .iter()
        .find(|d| crate::pci::normalize_bus_id(&d.bus_id).as_deref() == Some(bus.as_str()))
}

/// What libhlml tells of the device's memory that sysfs does not: HBM rows with ECC errors waiting for a
/// hard reset to be replaced (`hlml_device_get_replaced_rows_pending_status`), and uncorrected ECC errors
/// since the driver loaded (`hlml_device_get_total_ecc_errors`, volatile).
pub(crate) fn hlml_memory(g: &GpuFacts, d: &HlmlDeviceFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let target = pci(g);
    let ue = d.ecc.uncorrected_volatile.get();
    if let Some(n) = ue.filter(|n| *n > 0) {
        out.push(finding(
            "gaudi.ecc_uncorrected",
            Severity::Warning,
            Some(g),
            format!(
                "{} had {n} uncorrected (double-bit) ECC error{} since the habanalabs driver loaded (libhlml).",
                gpu_label(g),
                if n == 1 { "" } else { "s" }
            ),
            vec![format!("hlml total ECC errors, uncorrected, volatile = {n}")],
            ActionKind::Investigate,
            format!(
                "the kernel log says where (`node-probe xid`); check rows pending replacement \
                 (`hl-smi -d ROW_REPLACEMENT -i {}`); errors that recur on one device are an RMA case",
                target.as_deref().unwrap_or("<pci>")
            ),
        ));
    }
    if d.replaced_rows_pending.get() == Some(true) {
        out.push(finding(
            "gaudi.rows_pending",
            Severity::Warning,
            Some(g),
            format!(
                "{} has HBM rows with ECC errors pending replacement (libhlml): the device's next hard reset \
                 replaces them; until then those rows may fail again.",
                gpu_label(g)
            ),
            vec!["hlml replaced rows pending status = pending".into()],
            ActionKind::DrainAndResetGpu,
            action_detail(ActionKind::DrainAndResetGpu, target.as_deref()),
        ));
    }
    out
}

/// The clocks throttle reasons libhlml reports now (`hlml_device_get_current_clocks_throttle_reasons`):
/// heat costs throughput and says the cooling is short (a warning, as the driver's own overheating line
/// is); the power limit is where a device at full load is expected to run (information).
pub(crate) fn hlml_throttle(g: &GpuFacts, d: &HlmlDeviceFacts) -> Vec<Finding> {
    let Some(mask) = d.clocks_throttle_reasons.get() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let evidence = vec![format!("hlml current clocks throttle reasons = {mask:#x}")];
    if mask & HLML_THROTTLE_THERMAL != 0 {
        let temp = g
            .thermal
            .gpu_temp_c
            .get()
            .map(|t| format!(" at {t} C"))
            .unwrap_or_default();
        out.push(finding(
            "gaudi.throttle.thermal",
            Severity::Warning,
            Some(g),
            format!(
                "{} is throttling its clocks for heat{temp} (libhlml: THERMAL): it runs slower than its peers.",
                gpu_label(g)
            ),
            evidence.clone(),
            ActionKind::CheckCooling,
            // `hl-smi -d` takes one type (docs.habana.ai, System Management Interface Tool: "Displays only
            // one of the following").
            format!(
                "check the node's airflow, fans and inlet temperature, and this device's heatsink; \
                 `hl-smi -q -d TEMPERATURE -i {pci}` and `hl-smi -q -d CLOCK -i {pci}` show them",
                pci = pci(g).as_deref().unwrap_or("<pci>")
            ),
        ));
    }
    if mask & HLML_THROTTLE_POWER != 0 {
        out.push(finding(
            "gaudi.throttle.power",
            Severity::Info,
            Some(g),
            format!(
                "{} is holding its clocks at its power limit (libhlml: POWER): expected at full load.",
                gpu_label(g)
            ),
            evidence,
            ActionKind::None,
            "none while the device is busy; a power limit below the default (`hl-smi -q -d POWER`) costs throughput"
                .to_string(),
        ));
    }
    out
}

/// One Gaudi's NIC ports as libhlml reads them (the topology report's), for a node where the RDMA core does
/// not show them.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct GaudiNicLinks {
    pub gpu: u32,
    /// Ports in the device's mask, and how many of them are external (scale-out).
    pub ports: u32,
    pub external: u32,
    /// Ports whose link is down, each with whether it is external.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub down: Vec<GaudiNicPort>,
    /// Ports whose link libhlml could not read.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unread: u32,
}

#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct GaudiNicPort {
    pub port: u32,
    pub external: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every Gaudi's NIC ports as libhlml read them, where the RDMA core does not show that device's NIC (it
/// is the fabric view's there) and libhlml read the ports.
pub fn nic_links(facts: &NodeFacts) -> Vec<GaudiNicLinks> {
    hlml_nic_devices(facts)
        .filter_map(|(g, d)| {
            let ports = d.nic_ports.ok()?;
            (!ports.is_empty()).then(|| GaudiNicLinks {
                gpu: g.index,
                ports: ports.len() as u32,
                external: ports.iter().filter(|p| p.external).count() as u32,
                down: down_ports(ports)
                    .map(|p| GaudiNicPort {
                        port: p.port,
                        external: p.external,
                    })
                    .collect(),
                unread: ports.iter().filter(|p| p.up.get().is_none()).count() as u32,
            })
        })
        .collect()
}

/// The `gaudi.nic_port_down` findings alone ([`hlml_nic`] of each device [`nic_links`] lists), for the
/// topology view.
pub fn nic_findings(facts: &NodeFacts) -> Vec<Finding> {
    hlml_nic_devices(facts)
        .flat_map(|(g, d)| hlml_nic(g, d))
        .collect()
}

/// The Gaudis whose NIC libhlml read and the RDMA core does not show, with libhlml's device.
fn hlml_nic_devices(facts: &NodeFacts) -> impl Iterator<Item = (&GpuFacts, &HlmlDeviceFacts)> {
    gaudi_devices(facts)
        .filter(|(g, _)| !rdma_covers(facts, g))
        .filter_map(|(g, _)| Some((g, hlml_device(facts, g)?)))
}

/// The ports whose link libhlml reads down.
fn down_ports(
    ports: &[crate::facts::HlmlNicPortFacts],
) -> impl Iterator<Item = &crate::facts::HlmlNicPortFacts> {
    ports.iter().filter(|p| p.up.get() == Some(false))
}

/// Whether the RDMA core shows this Gaudi's own NIC (an RDMA device on the same PCI function, Intel's
/// `habanalabs_ib`): its ports are then judged by the fabric view, port by port, and libhlml's links are not
/// said a second time.
fn rdma_covers(facts: &NodeFacts, g: &GpuFacts) -> bool {
    let Some(bus) = pci(g) else {
        return false;
    };
    facts.rdma.as_ref().and_then(|r| r.ok()).is_some_and(|r| {
        r.devices
            .iter()
            .any(|d| canonical_bus_id(&d.pci_bus_id).ok() == Some(&bus))
    })
}

/// The device's NIC ports whose link libhlml reads down (`hlml_nic_get_link`), where the RDMA core does not
/// show them: one finding per device. An external port is a scale-out link (its cable, transceiver or switch
/// port); an internal one links this Gaudi to another on the board (scale-up), so every collective over the
/// board loses a path. Both stall or slow the job's communication.
pub(crate) fn hlml_nic(g: &GpuFacts, d: &HlmlDeviceFacts) -> Vec<Finding> {
    let Some(ports) = d.nic_ports.ok() else {
        return Vec::new();
    };
    let down: Vec<&crate::facts::HlmlNicPortFacts> = down_ports(ports).collect();
    if down.is_empty() {
        return Vec::new();
    }
    let list = |external: bool| -> Vec<String> {
        down.iter()
            .filter(|p| p.external == external)
            .map(|p| p.port.to_string())
            .collect()
    };
    let (ext, int) = (list(true), list(false));
    let mut parts = Vec::new();
    if !ext.is_empty() {
        parts.push(format!("external (scale-out) port {}", ext.join(", ")));
    }
    if !int.is_empty() {
        parts.push(format!(
            "internal (scale-up, to another Gaudi on the board) port {}",
            int.join(", ")
        ));
    }
    let up = ports.iter().filter(|p| p.up.get() == Some(true)).count();
    let (kind, detail) = if int.is_empty() {
        (
            ActionKind::CheckMechanicals,
            // Intel's own health screen reads the links this way (HabanaAI/Setup_and_Install
            // utils/intel_gaudi_health_screen/IGNodes.py:232).
            format!(
                "check the cable, transceiver and switch port of each external port down; \
                 `hl-smi -n link -i {}` shows the links",
                pci(g).as_deref().unwrap_or("<pci>")
            ),
        )
    } else {
        (
            ActionKind::DrainAndResetGpu,
            format!(
                "drain the node and hard-reset the device (`hl-smi -r -i {}`), which retrains its links; a board \
                 link that stays down needs the board serviced",
                pci(g).as_deref().unwrap_or("<pci>")
            ),
        )
    };
    vec![finding(
        "gaudi.nic_port_down",
        Severity::Warning,
        Some(g),
        format!(
            "{}: NIC links down (libhlml; {up} of {} ports up): {}. Collectives over them stall or slow down.",
            gpu_label(g),
            ports.len(),
            parts.join("; ")
        ),
        down.iter()
            .map(|p| {
                format!(
                    "hlml nic port {} ({}) link = down",
                    p.port,
                    if p.external { "external" } else { "internal" }
                )
            })
            .collect(),
        kind,
        detail,
    )]
}

fn pci(g: &GpuFacts) -> Option<String> {
    canonical_bus_id(&g.pci_bus_id).ok().cloned()
}

/// The device's status against the driver's meanings.
fn status(g: &GpuFacts, h: &GaudiGpuFacts) -> Option<Finding> {
    let raw = h.status.ok()?;
    let s = raw.trim().to_ascii_lowercase();
    let (severity, kind, meaning) = match s.as_str() {
        "operational" => return None,
        "in reset" | "in reset after device release" => (
            Severity::Warning,
            ActionKind::Monitor,
            "the driver is resetting it (\"Device is going through reset, will be available shortly\"); its work was lost",
        ),
        "disabled" => (
            Severity::Critical,
            ActionKind::RebootNode,
            "the driver disabled it: \"Device is not usable\" (a malfunction, typically a failed reset)",
        ),
        "needs reset" => (
            Severity::Critical,
            ActionKind::ResetGpu,
            "\"Device is not usable until a hard reset is initiated\"",
        ),
        "in device creation" => (
            Severity::Warning,
            ActionKind::Monitor,
            "\"Device is not available yet, as it is still initializing\"",
        ),
        _ => (
            Severity::Warning,
            ActionKind::Investigate,
            "the driver reports a status this probe does not know",
        ),
    };
    let detail = match kind {
        ActionKind::Monitor => "re-check in a minute: the status should return to `Operational`; if it stays, treat it as disabled and reset it with `hl-smi -r -i <pci>`".replace("<pci>", pci(g).as_deref().unwrap_or("<pci>")),
        _ => action_detail(kind, pci(g).as_deref()),
    };
    Some(finding(
        "gaudi.status",
        severity,
        Some(g),
        format!("{} is `{}`: {meaning}.", gpu_label(g), raw.trim()),
        vec![format!("habanalabs status = {}", raw.trim())],
        kind,
        detail,
    ))
}

/// Hard resets since the driver loaded: each one killed the work on the device. History, not a fault
/// now: the cause is in the kernel log (`habanalabs.*`).
fn resets(g: &GpuFacts, h: &GaudiGpuFacts) -> Option<Finding> {
    let n = *h.hard_reset_count.ok()?;
    if n == 0 {
        return None;
    }
    Some(finding(
        "gaudi.hard_resets",
        Severity::Info,
        Some(g),
        format!(
            "{} was hard-reset {n} time{} since the habanalabs driver loaded; each reset killed the work on it.",
            gpu_label(g),
            if n == 1 { "" } else { "s" }
        ),
        vec![format!("habanalabs hard_reset_cnt = {n}")],
        ActionKind::Monitor,
        "read the kernel log for the cause (`node-probe xid`); a count that keeps rising under load points at the device: collect `hl-smi -q` and contact Intel support".into(),
    ))
}

/// What a Gaudi's memory state is read from: the habanalabs driver (Linux 6.12 `common/sysfs.c`) has no ECC
/// counter or row-replacement file; its ECC and HBM errors are kernel-log lines (`gaudi2/gaudi2.c`
/// `gaudi2_print_event`, `gaudi2_hbm_sei_handle_read_err`) and rows replaced or pending only answer its INFO
/// ioctl (`common/habanalabs_ioctl.c:1125-1128`, `HL_INFO_DRAM_REPLACED_ROWS` / `HL_INFO_DRAM_PENDING_ROWS`).
pub const GAUDI_COUNTER_CAVEAT: &str = "Intel Gaudi: the habanalabs driver shows no ECC counters or HBM row replacement in sysfs; its ECC and HBM errors are kernel-log events (analyze_xid_errors, counted below per device), and rows replaced or pending replacement are read by `hl-smi -d ROW_REPLACEMENT` (HLML), which this probe does not call.";

/// A Gaudi's NVML-shaped ECC field: not in the habanalabs sysfs, said so (never `not_collected`, as if
/// the probe had skipped it).
fn gaudi_none<T: Clone>(r: &Reading<T>) -> Reading<T> {
    match r {
        Reading::Err(e) if e.error == FieldErrorKind::NotCollected => Reading::Err(
            FieldError::with_message(FieldErrorKind::NotSupported, "not in habanalabs sysfs"),
        ),
        other => other.clone(),
    }
}

/// A Gaudi's one-line memory verdict from its kernel-log ECC and HBM events and, where libhlml was read
/// (`hlml`), its counters and rows pending replacement.
fn gaudi_memory_line(g: &GpuFacts, hl_memory: &[Finding], hlml: bool) -> String {
    let (log, lib): (Vec<&str>, Vec<&str>) = hl_memory
        .iter()
        .filter(|f| f.gpu == Some(g.index))
        .map(|f| f.code.as_str())
        .partition(|c| c.starts_with("habanalabs."));
    let pci = super::canonical_bus_id(&g.pci_bus_id)
        .ok()
        .cloned()
        .unwrap_or_else(|| "<pci>".into());
    let mut parts = Vec::new();
    if !log.is_empty() {
        parts.push(format!(
            "ECC/HBM errors in the kernel log ({})",
            log.join(", ")
        ));
    }
    if !lib.is_empty() {
        parts.push(format!("libhlml reads {}", lib.join(", ")));
    }
    match (parts.is_empty(), hlml) {
        (true, true) => {
            "Gaudi: no ECC or HBM error in the kernel log, no uncorrected error or row pending replacement in libhlml".into()
        }
        (true, false) => "Gaudi: no ECC or HBM error in the kernel log (the habanalabs driver shows no ECC counters in sysfs)".into(),
        (false, true) => format!("Gaudi: {}: see the findings", parts.join("; ")),
        (false, false) => format!(
            "Gaudi: {}: see the findings; rows pending replacement are read by `hl-smi -d ROW_REPLACEMENT -i {pci}`",
            parts.join("; ")
        ),
    }
}

/// Intel Gaudi behind the analysis's seam.
pub struct Gaudi;

impl super::vendor::VendorAnalysis for Gaudi {
    fn vendor(&self) -> crate::facts::GpuVendor {
        crate::facts::GpuVendor::Intel
    }

    fn judge(&self, facts: &NodeFacts) -> Vec<Finding> {
        judge(facts)
    }

    /// libhlml's throttle reasons where it was read, else the driver's sysfs words.
    fn clocks_line(&self, facts: &NodeFacts, g: &GpuFacts) -> Option<String> {
        clocks_line(g, hlml_device(facts, g))
    }

    /// A Gaudi's memory errors are the kernel log's and, where read, libhlml's (see
    /// [`GAUDI_COUNTER_CAVEAT`]); NVML's fields are said not to be in its sysfs.
    fn ecc(
        &self,
        facts: &NodeFacts,
        opts: &crate::options::AnalysisOptions,
        gpus: &[&GpuFacts],
    ) -> super::vendor::VendorEcc {
        use super::ecc_entry::{EccCounts, GpuEcc};
        use super::vendor::{EccEntry, VendorEcc};
        let mut hl_memory: Vec<Finding> = crate::kernel_log::report::analyze(facts, opts)
            .findings
            .into_iter()
            .filter(|f| {
                f.code.starts_with("habanalabs.")
                    && (f.code.contains("hbm") || f.code.contains("ecc"))
            })
            .collect();
        let mut entries = Vec::new();
        for g in gpus {
            let e = &g.ecc;
            // Where libhlml was read, its ECC totals are the device's counters; sysfs has none.
            let hlml = hlml_device(facts, g);
            if let Some(d) = hlml {
                hl_memory.extend(hlml_memory(g, d));
            }
            let count = |sysfs: &Reading<u64>, lib: Option<&Reading<u64>>| match lib {
                Some(r) => r.clone(),
                None => gaudi_none(sysfs),
            };
            entries.push(EccEntry::Own(Box::new(GpuEcc {
                gpu: super::GpuRef::of(g),
                mode: gaudi_none(&e.mode),
                volatile: EccCounts {
                    corrected: count(
                        &e.volatile_corrected,
                        hlml.map(|d| &d.ecc.corrected_volatile),
                    ),
                    uncorrected: count(
                        &e.volatile_uncorrected,
                        hlml.map(|d| &d.ecc.uncorrected_volatile),
                    ),
                },
                aggregate: EccCounts {
                    corrected: count(
                        &e.aggregate_corrected,
                        hlml.map(|d| &d.ecc.corrected_aggregate),
                    ),
                    uncorrected: count(
                        &e.aggregate_uncorrected,
                        hlml.map(|d| &d.ecc.uncorrected_aggregate),
                    ),
                },
                by_location: Vec::new(),
                retired_pages: gaudi_none(&e.retired_pages),
                remapped_rows: gaudi_none(&e.remapped_rows),
                row_remapper_histogram: gaudi_none(&e.row_remapper_histogram),
                sram_threshold_exceeded: gaudi_none(&e.sram_threshold_exceeded),
                volatile_counters_reliable: gaudi_none(&Reading::default()),
                verdict: gaudi_memory_line(g, &hl_memory, hlml.is_some()),
            })));
        }
        VendorEcc {
            entries,
            findings: hl_memory,
        }
    }

    fn ecc_caveat(&self) -> &'static str {
        GAUDI_COUNTER_CAVEAT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GpuVendor, Reading};

    fn node(statuses: &[(&str, u64)]) -> NodeFacts {
        NodeFacts {
            gpus: statuses
                .iter()
                .enumerate()
                .map(|(i, (s, resets))| GpuFacts {
                    index: i as u32,
                    vendor: GpuVendor::Intel,
                    pci_bus_id: Reading::Ok(format!("0000:{:02x}:00.0", 0x19 + i)),
                    gaudi: Some(GaudiGpuFacts {
                        status: Reading::Ok((*s).to_string()),
                        hard_reset_count: Reading::Ok(*resets),
                        ..GaudiGpuFacts::default()
                    }),
                    ..GpuFacts::default()
                })
                .collect(),
            ..NodeFacts::default()
        }
    }

    #[test]
    fn statuses_in_the_drivers_words() {
        let f = judge(&node(&[
            ("Operational", 0),
            ("Disabled", 0),
            ("In reset", 0),
            ("Needs reset", 0),
            ("Sideways", 0),
        ]));
        let by = |gpu: u32| {
            f.iter()
                .find(|x| x.gpu == Some(gpu) && x.code == "gaudi.status")
        };
        assert!(by(0).is_none());
        let d = by(1).unwrap();
        assert_eq!(
            (d.severity, d.action.kind),
            (Severity::Critical, ActionKind::RebootNode)
        );
        assert!(d.summary.contains("Device is not usable"), "{}", d.summary);
        assert!(
            d.action.detail.contains("hl-smi -r -i 0000:1a:00.0"),
            "{}",
            d.action.detail
        );
        assert_eq!(by(2).unwrap().severity, Severity::Warning);
        assert_eq!(by(3).unwrap().action.kind, ActionKind::ResetGpu);
        assert_eq!(by(4).unwrap().action.kind, ActionKind::Investigate);
    }

    /// libhlml's throttle reasons (pyhlml's POWER `1 << 0`, THERMAL `1 << 1`): heat is a cooling warning
    /// with the temperature, the power limit information, an unread mask nothing; the telemetry line says
    /// the reasons in words, and names a bit HLML does not define.
    #[test]
    fn hlml_throttle_reasons_in_the_libraries_words() {
        let mut facts = node(&[("Operational", 0), ("Operational", 0), ("Operational", 0)]);
        facts.gpus[0].thermal.gpu_temp_c = Reading::Ok(93);
        let dev = |i: u32, r: Reading<u64>| HlmlDeviceFacts {
            index: i,
            bus_id: format!("0000:{:02x}:00.0", 0x19 + i),
            clocks_throttle_reasons: r,
            ..HlmlDeviceFacts::default()
        };
        facts.hlml = Some(Reading::Ok(crate::facts::HlmlFacts {
            devices: Reading::Ok(vec![
                dev(0, Reading::Ok(HLML_THROTTLE_THERMAL | HLML_THROTTLE_POWER)),
                dev(1, Reading::Ok(HLML_THROTTLE_POWER | 0x10)),
                dev(2, Reading::not_supported()),
            ]),
            ..crate::facts::HlmlFacts::default()
        }));
        let f = judge(&facts);
        let codes: Vec<(&str, Option<u32>, Severity)> = f
            .iter()
            .map(|x| (x.code.as_str(), x.gpu, x.severity))
            .collect();
        assert_eq!(
            codes,
            [
                ("gaudi.throttle.thermal", Some(0), Severity::Warning),
                ("gaudi.throttle.power", Some(0), Severity::Info),
                ("gaudi.throttle.power", Some(1), Severity::Info),
            ]
        );
        assert!(
            f[0].summary.contains("for heat at 93 C"),
            "{}",
            f[0].summary
        );
        assert_eq!(f[0].action.kind, ActionKind::CheckCooling);
        assert_eq!(
            f[0].evidence,
            ["hlml current clocks throttle reasons = 0x3"]
        );
        let line = |i: usize| clocks_line(&facts.gpus[i], hlml_device(&facts, &facts.gpus[i]));
        assert_eq!(
            line(0).unwrap(),
            "Gaudi status Operational, throttled for heat (THERMAL) and its power limit (POWER) (libhlml): \
             clock unreadable."
        );
        assert!(
            line(1).unwrap().contains("reasons 0x10 HLML does not name"),
            "{:?}",
            line(1)
        );
        assert!(
            line(2)
                .unwrap()
                .contains("no throttle reasons in the habanalabs sysfs")
        );
    }

    /// libhlml's links down are one finding per device, external and internal ports told apart, with the
    /// board-link action where an internal one is down; a device whose NIC the RDMA core shows is left to the
    /// fabric view; an unread link is no port down.
    #[test]
    fn hlml_nic_links_down_where_the_rdma_core_does_not_show_them() {
        use crate::facts::{HlmlFacts, HlmlNicPortFacts, RdmaDeviceFacts, RdmaFacts};
        let port =
            |port: u32, external: bool, up: Reading<bool>| HlmlNicPortFacts { port, external, up };
        let mut facts = node(&[("Operational", 0), ("Operational", 0), ("Operational", 0)]);
        let dev = |i: u32, ports: Vec<HlmlNicPortFacts>| HlmlDeviceFacts {
            index: i,
            bus_id: format!("0000:{:02x}:00.0", 0x19 + i),
            nic_ports: Reading::Ok(ports),
            ..HlmlDeviceFacts::default()
        };
        facts.hlml = Some(Reading::Ok(HlmlFacts {
            devices: Reading::Ok(vec![
                dev(
                    0,
                    vec![
                        port(7, false, Reading::Ok(false)),
                        port(21, true, Reading::Ok(false)),
                        port(22, true, Reading::Ok(true)),
                        port(23, true, Reading::not_supported()),
                    ],
                ),
                dev(1, vec![port(21, true, Reading::Ok(false))]),
                dev(2, vec![port(21, true, Reading::Ok(false))]),
            ]),
            ..HlmlFacts::default()
        }));
        // Device 2's NIC is an RDMA device too (`hbl_2` on its PCI function).
        facts.rdma = Some(Reading::Ok(RdmaFacts {
            devices: vec![RdmaDeviceFacts {
                name: "hbl_2".into(),
                pci_bus_id: Reading::Ok("0000:1B:00.0".into()),
                ..RdmaDeviceFacts::default()
            }],
            ..RdmaFacts::default()
        }));
        let f: Vec<Finding> = judge(&facts)
            .into_iter()
            .filter(|x| x.code == "gaudi.nic_port_down")
            .collect();
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(f[0].gpu, Some(0));
        assert_eq!(
            f[0].summary,
            "GPU 0 (0000:19:00.0): NIC links down (libhlml; 1 of 4 ports up): external (scale-out) port 21; \
             internal (scale-up, to another Gaudi on the board) port 7. Collectives over them stall or slow down."
        );
        assert_eq!(
            f[0].evidence,
            [
                "hlml nic port 7 (internal) link = down",
                "hlml nic port 21 (external) link = down"
            ]
        );
        assert_eq!(f[0].action.kind, ActionKind::DrainAndResetGpu);
        assert!(f[0].action.detail.contains("hl-smi -r -i 0000:19:00.0"));
        assert_eq!(f[1].gpu, Some(1));
        assert_eq!(f[1].action.kind, ActionKind::CheckMechanicals);
    }

    #[test]
    fn hard_resets_are_history_with_their_count() {
        let f = judge(&node(&[("Operational", 0), ("Operational", 3)]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "gaudi.hard_resets");
        assert_eq!(f[0].gpu, Some(1));
        assert_eq!(f[0].severity, Severity::Info);
        assert!(f[0].summary.contains("3 times"));
    }
}
