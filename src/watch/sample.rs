//! One reading of one GPU during a watch, the same shape for both vendors: what a window's analysis compares
//! from one sample to the next. Made from the facts a collector gathered ([`sample_of`]), so a simulated node
//! and a real one go through the same analysis.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::telemetry::{
    HW_POWER_BRAKE_SLOWDOWN, HW_SLOWDOWN, HW_THERMAL_SLOWDOWN, SW_POWER_CAP, SW_THERMAL_SLOWDOWN,
};
pub use crate::facts::Throttle;
use crate::facts::{FieldErrorKind, GpuFacts, GpuVendor, Reading};

/// NVIDIA's clocks-event bits that map to a [`Throttle`] (the others, idle and settings, are not throttling).
const NVIDIA_BITS: [(u64, Throttle); 5] = [
    (SW_POWER_CAP, Throttle::PowerCap),
    (HW_SLOWDOWN, Throttle::HwSlowdown),
    (HW_THERMAL_SLOWDOWN, Throttle::HwThermal),
    (SW_THERMAL_SLOWDOWN, Throttle::SwThermal),
    (HW_POWER_BRAKE_SLOWDOWN, Throttle::PowerBrake),
];

/// One GPU's reading at one instant. Counters are cumulative as the device reports them; the analysis takes
/// their differences between samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    pub index: u32,
    pub util_pct: Option<u32>,
    pub sm_mhz: Option<u32>,
    pub power_w: Option<f64>,
    pub temp_c: Option<u32>,
    pub mem_used_mib: Option<u64>,
    /// The throttles active at this instant (NVIDIA's current mask); AMD reports residencies only.
    pub active: Vec<Throttle>,
    /// Cumulative time per throttle in the unit of `throttle_clock` (NVIDIA: ns, with no clock of its own;
    /// AMD: the SMU's residency accumulators).
    pub throttle_counters: BTreeMap<Throttle, u64>,
    /// AMD's `accumulation_counter`: the residencies' denominator. `None` for NVIDIA (nanoseconds).
    pub throttle_clock: Option<u64>,
    /// Cumulative error counters by key (`ecc_corrected`, `nvlink_replay:4`, `ras_ue:umc`, ...).
    pub counters: BTreeMap<String, u64>,
    /// Cumulative traffic in KiB by key (`xgmi:3`).
    pub traffic_kib: BTreeMap<String, u64>,
    /// The GPU could not be read at all at this instant (lost, or its handle failed).
    pub unreadable: Option<String>,
}

/// The static side of a GPU: what does not change during a window, taken from its first readable sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuIdentity {
    pub index: u32,
    pub vendor: GpuVendor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sm_max_mhz: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_limit_w: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowdown_c: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_total_mib: Option<u64>,
}

pub fn identity_of(g: &GpuFacts) -> GpuIdentity {
    let amd_name = || g.amd.as_ref().and_then(|a| a.unique_id.ok().cloned());
    GpuIdentity {
        index: g.index,
        vendor: g.vendor,
        name: g.name.ok().cloned(),
        uuid: g.uuid.ok().cloned().or_else(amd_name),
        pci_bus_id: g.pci_bus_id.ok().cloned(),
        sm_max_mhz: g.clocks.sm_max_mhz.ok().copied().filter(|&m| m > 0),
        power_limit_w: g
            .power
            .enforced_limit_mw
            .ok()
            .copied()
            .filter(|&m| m > 0)
            .map(|m| f64::from(m) / 1000.0),
        slowdown_c: g
            .thermal
            .slowdown_threshold_c
            .ok()
            .copied()
            .filter(|&c| c > 0),
        mem_total_mib: g
            .memory
            .ok()
            .map(|m| m.total_bytes / (1024 * 1024))
            .filter(|&m| m > 0),
    }
}

fn field_error_text(e: &crate::facts::FieldError) -> String {
    e.message.clone().unwrap_or_else(|| {
        serde_json::to_value(e.error)
            .ok()
            .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
            .unwrap_or_default()
    })
}

fn ok<T: Copy>(r: &Reading<T>) -> Option<T> {
    r.ok().copied()
}

/// The sample a collector's facts give for one GPU.
pub fn sample_of(g: &GpuFacts) -> GpuSample {
    let mut s = GpuSample {
        index: g.index,
        ..GpuSample::default()
    };
    if let Some(e) = &g.handle_error {
        s.unreadable = Some(field_error_text(e));
        return s;
    }
    s.util_pct = g.utilization.ok().map(|u| u.gpu_pct);
    s.sm_mhz = ok(&g.clocks.sm_mhz).or_else(|| ok(&g.clocks.graphics_mhz));
    // The second GCD of an MI250X module reads 0 W: the package's one sensor reports on the first.
    s.power_w = ok(&g.power.usage_mw)
        .filter(|&m| m > 0 || g.vendor.is_nvidia())
        .map(|m| f64::from(m) / 1000.0);
    s.temp_c =
        ok(&g.thermal.gpu_temp_c).or_else(|| g.amd.as_ref().and_then(|a| ok(&a.edge_temp_c)));
    s.mem_used_mib = g.memory.ok().map(|m| m.used_bytes / (1024 * 1024));
    // A GPU that stopped answering (lost, hung): not one whose readings were not collected or not supported.
    let failing = [
        g.utilization.err(),
        g.power.usage_mw.err(),
        g.thermal.gpu_temp_c.err(),
    ]
    .into_iter()
    .flatten()
    .find(|e| matches!(e.error, FieldErrorKind::GpuIsLost | FieldErrorKind::Timeout));
    if s.util_pct.is_none()
        && s.power_w.is_none()
        && s.sm_mhz.is_none()
        && s.temp_c.is_none()
        && let Some(e) = failing
    {
        s.unreadable = Some(field_error_text(e));
    }
    if let Some(mask) = ok(&g.clocks_event_reasons) {
        s.active = NVIDIA_BITS
            .iter()
            .filter(|(bit, _)| mask & bit != 0)
            .map(|&(_, t)| t)
            .collect();
    }
    let d = &g.clocks_event_durations_ns;
    for (t, r) in [
        (Throttle::PowerCap, &d.sw_power_cap),
        (Throttle::SwThermal, &d.sw_thermal_slowdown),
        (Throttle::HwThermal, &d.hw_thermal_slowdown),
        (Throttle::PowerBrake, &d.hw_power_brake_slowdown),
    ] {
        if let Some(v) = ok(r) {
            s.throttle_counters.insert(t, v);
        }
    }
    if let Some(v) = ok(&g.ecc.volatile_corrected) {
        s.counters.insert("ecc_corrected".into(), v);
    }
    if let Some(v) = ok(&g.ecc.volatile_uncorrected) {
        s.counters.insert("ecc_uncorrected".into(), v);
    }
    if let Some(v) = ok(&g.pcie.replay_counter) {
        s.counters.insert("pcie_replay".into(), v);
    }
    for l in &g.nvlinks {
        for (name, r) in [
            ("nvlink_replay", &l.replay_errors),
            ("nvlink_recovery", &l.recovery_errors),
            ("nvlink_crc", &l.crc_flit_errors),
            ("nvlink_crc_data", &l.crc_data_errors),
        ] {
            if let Some(v) = ok(r) {
                s.counters.insert(format!("{name}:{}", l.link), v);
            }
        }
    }
    if let Some(a) = &g.amd {
        amd(a, &mut s);
    }
    s
}

fn amd(a: &crate::facts::AmdGpuFacts, s: &mut GpuSample) {
    if let Some(ras) = a.ras.ok() {
        for b in &ras.blocks {
            if let Some(ue) = b.ue {
                s.counters.insert(format!("ras_ue:{}", b.block), ue);
            }
            if let Some(ce) = b.ce {
                s.counters.insert(format!("ras_ce:{}", b.block), ce);
            }
            if let Some(de) = b.de {
                s.counters.insert(format!("ras_de:{}", b.block), de);
            }
        }
    }
    if let Some(x) = a.xgmi.ok() {
        if let Some(n) = ok(&x.error_count) {
            s.counters.insert("xgmi_errors".into(), n);
        }
        for l in &x.links {
            let kib = l.read_kb.unwrap_or(0) + l.write_kb.unwrap_or(0);
            if l.read_kb.is_some() || l.write_kb.is_some() {
                s.traffic_kib.insert(format!("xgmi:{}", l.link), kib);
            }
        }
    }
    if let Some(m) = a.metrics.ok() {
        if let Some(v) = m.pcie_replay_count_acc {
            s.counters.insert("pcie_replay".into(), v);
        }
        if let Some(v) = m.pcie_l0_to_recov_count_acc {
            s.counters.insert("pcie_recovery".into(), v);
        }
        if let Some(t) = m.throttle_samples.last() {
            s.throttle_clock = t.accumulation_counter;
            for (k, v) in [
                (Throttle::Prochot, t.prochot),
                (Throttle::PowerCap, t.ppt),
                (Throttle::SocketThermal, t.socket_thermal),
                (Throttle::VrThermal, t.vr_thermal),
                (Throttle::HbmThermal, t.hbm_thermal),
            ] {
                if let Some(v) = v {
                    s.throttle_counters.insert(k, v);
                }
            }
        }
    }
}

/// What a counter key means, for an answer: `nvlink_replay:4` → "NVLink replays on link 4".
pub fn counter_label(key: &str) -> String {
    let (kind, part) = key
        .split_once(':')
        .map_or((key, None), |(k, p)| (k, Some(p)));
    let base = match kind {
        "ecc_corrected" => "corrected ECC errors",
        "ecc_uncorrected" => "uncorrected ECC errors",
        "pcie_replay" => "PCIe replays",
        "pcie_recovery" => "PCIe link recoveries",
        "nvlink_replay" => "NVLink replays",
        "nvlink_recovery" => "NVLink recoveries",
        "nvlink_crc" => "NVLink CRC (flit) errors",
        "nvlink_crc_data" => "NVLink CRC (data) errors",
        "ras_ue" => "uncorrectable RAS errors",
        "ras_ce" => "correctable RAS errors",
        "ras_de" => "deferred RAS errors",
        "xgmi_errors" => "XGMI errors",
        other => other,
    };
    match (kind, part) {
        ("nvlink_replay" | "nvlink_recovery" | "nvlink_crc" | "nvlink_crc_data", Some(p)) => {
            format!("{base} on link {p}")
        }
        (_, Some(p)) => format!("{base} in {}", p.to_uppercase()),
        _ => base.to_string(),
    }
}

/// A counter whose increase is an error that needs attention (not only worth knowing).
pub fn counter_is_critical(key: &str) -> bool {
    key.starts_with("ecc_uncorrected") || key.starts_with("ras_ue")
}
