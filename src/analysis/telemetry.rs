//! `telemetry`: temperatures against the GPU's own thresholds, power, utilization, memory, clocks, and the
//! clocks-event (throttle) reasons decoded by name and classed benign / informational / harmful, with a
//! one-line verdict per GPU that says why its clocks are where they are.

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, NodeFacts, Reading, UtilizationFacts};
use crate::finding::{ActionKind, Finding, Judged, Severity, distinct};
use crate::options::AnalysisOptions;

use super::{GpuRef, finding, gpu_label, show};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TelemetryReport {
    pub gpus: Vec<GpuTelemetry>,
    pub findings: Vec<Finding>,
}

impl Judged for TelemetryReport {
    fn findings(&self) -> Vec<&Finding> {
        distinct(&self.findings)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuTelemetry {
    #[serde(flatten)]
    pub gpu: GpuRef,
    pub temperature: Temperatures,
    pub fan_speed_pct: Reading<Vec<u32>>,
    pub power: Power,
    pub utilization: Reading<UtilizationFacts>,
    pub memory: Reading<MemoryUse>,
    pub clocks: Clocks,
    /// `P0` (max performance) .. `P12` (min).
    pub performance_state: Reading<String>,
    pub clocks_event_reasons: Reading<ClocksEvents>,
    /// Time spent in each reason since the driver loaded, in seconds (where the driver counts it).
    pub clocks_event_time_s: ClocksEventTime,
    /// One line: what limits the clocks now and why.
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Temperatures {
    pub gpu_c: Reading<u32>,
    pub memory_c: Reading<u32>,
    /// HW slowdown starts here.
    pub slowdown_c: Reading<u32>,
    /// HW protection shutdown.
    pub shutdown_c: Reading<u32>,
    /// Above it the GPU may run below base clock (SW thermal slowdown).
    pub gpu_max_operating_c: Reading<u32>,
    pub memory_max_operating_c: Reading<u32>,
    /// Degrees left before HW slowdown (negative: already past it).
    pub headroom_to_slowdown_c: Reading<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Power {
    pub draw_w: Reading<f64>,
    pub limit_w: Reading<f64>,
    pub default_limit_w: Reading<f64>,
    pub max_limit_w: Reading<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryUse {
    pub total_mib: u64,
    pub used_mib: u64,
    pub free_mib: u64,
    pub used_pct: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Clocks {
    pub sm_mhz: Reading<u32>,
    pub sm_max_mhz: Reading<u32>,
    pub sm_pct_of_max: Reading<u32>,
    pub graphics_mhz: Reading<u32>,
    pub graphics_max_mhz: Reading<u32>,
    pub memory_mhz: Reading<u32>,
    pub memory_max_mhz: Reading<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEventTime {
    pub sw_power_cap: Reading<f64>,
    pub sw_thermal_slowdown: Reading<f64>,
    pub hw_thermal_slowdown: Reading<f64>,
    pub hw_power_brake_slowdown: Reading<f64>,
    pub sync_boost: Reading<f64>,
}

/// The decoded `nvmlDeviceGetCurrentClocksEventReasons` bitmask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEvents {
    /// Raw mask, `0x0000000000000048`.
    pub mask: String,
    pub reasons: Vec<ClocksEventReason>,
    /// The worst class among `reasons`; absent when no reason is active (clocks unrestricted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<ReasonClass>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClocksEventReason {
    /// NVML constant name without prefix (`HwThermalSlowdown`), or `Unknown` for bits NVML 12 does not define.
    pub name: String,
    pub bit: String,
    pub class: ReasonClass,
    pub meaning: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReasonClass {
    /// Expected and harmless (idle, power-capped at full load).
    Benign,
    /// Worth knowing; a configuration or group effect rather than a fault.
    Informational,
    /// Costs performance because of heat, power delivery or hardware: act on it.
    Harmful,
}

pub const GPU_IDLE: u64 = 0x1;
pub const APPLICATIONS_CLOCKS_SETTING: u64 = 0x2;
pub const SW_POWER_CAP: u64 = 0x4;
pub const HW_SLOWDOWN: u64 = 0x8;
pub const SYNC_BOOST: u64 = 0x10;
pub const SW_THERMAL_SLOWDOWN: u64 = 0x20;
pub const HW_THERMAL_SLOWDOWN: u64 = 0x40;
pub const HW_POWER_BRAKE_SLOWDOWN: u64 = 0x80;
pub const DISPLAY_CLOCK_SETTING: u64 = 0x100;
const KNOWN: u64 = 0x1ff;

/// Utilization at or above which power capping is the expected state of a busy GPU.
const HEAVY_LOAD_PCT: u32 = 50;

/// Decode a clocks-event mask. `utilization` decides whether SwPowerCap is benign (busy GPU) or
/// informational (capped while mostly idle: a lowered power limit).
pub fn decode_reasons(mask: u64, utilization: Option<u32>) -> ClocksEvents {
    let table: &[(u64, &str, ReasonClass, &str)] = &[
        (
            GPU_IDLE,
            "GpuIdle",
            ReasonClass::Benign,
            "nothing is running; clocks drop to save power",
        ),
        (
            APPLICATIONS_CLOCKS_SETTING,
            "ApplicationsClocksSetting",
            ReasonClass::Informational,
            "clocks limited by the application-clocks setting (nvidia-smi -ac)",
        ),
        (
            SW_POWER_CAP,
            "SwPowerCap",
            if utilization.is_some_and(|u| u >= HEAVY_LOAD_PCT) {
                ReasonClass::Benign
            } else {
                ReasonClass::Informational
            },
            "software power scaling holds clocks to stay under the power limit",
        ),
        (
            HW_SLOWDOWN,
            "HwSlowdown",
            ReasonClass::Harmful,
            "hardware slowdown (clocks cut by half or more), set with HW thermal slowdown or HW power brake",
        ),
        (
            SYNC_BOOST,
            "SyncBoost",
            ReasonClass::Informational,
            "held to the slowest GPU of its sync-boost group",
        ),
        (
            SW_THERMAL_SLOWDOWN,
            "SwThermalSlowdown",
            ReasonClass::Harmful,
            "software thermal capping: GPU or memory above its max operating temperature",
        ),
        (
            HW_THERMAL_SLOWDOWN,
            "HwThermalSlowdown",
            ReasonClass::Harmful,
            "hardware thermal slowdown: the GPU is too hot, clocks cut by half or more",
        ),
        (
            HW_POWER_BRAKE_SLOWDOWN,
            "HwPowerBrakeSlowdown",
            ReasonClass::Harmful,
            "an external power-brake signal (power supply or platform) forces clocks down",
        ),
        (
            DISPLAY_CLOCK_SETTING,
            "DisplayClockSetting",
            ReasonClass::Benign,
            "display clock setting (Volta only)",
        ),
    ];
    let mut reasons: Vec<ClocksEventReason> = table
        .iter()
        .filter(|(bit, ..)| mask & bit != 0)
        .map(|(bit, name, class, meaning)| ClocksEventReason {
            name: (*name).to_string(),
            bit: format!("{bit:#06x}"),
            class: *class,
            meaning: (*meaning).to_string(),
        })
        .collect();
    let unknown = mask & !KNOWN;
    if unknown != 0 {
        reasons.push(ClocksEventReason {
            name: "Unknown".into(),
            bit: format!("{unknown:#x}"),
            class: ReasonClass::Informational,
            meaning: "bits this build does not know (newer driver?); not judged".into(),
        });
    }
    ClocksEvents {
        mask: format!("{mask:#018x}"),
        worst: reasons.iter().map(|r| r.class).max(),
        reasons,
    }
}

fn watts(mw: &Reading<u32>) -> Reading<f64> {
    mw.map(|v| f64::from(*v) / 1000.0)
}

fn seconds(ns: &Reading<u64>) -> Reading<f64> {
    ns.map(|v| (*v as f64 / 1e8).round() / 10.0)
}

fn pct(part: u32, whole: u32) -> Option<u32> {
    (whole > 0).then(|| ((u64::from(part) * 100 + u64::from(whole) / 2) / u64::from(whole)) as u32)
}

pub fn analyze(facts: &NodeFacts, _opts: &AnalysisOptions) -> TelemetryReport {
    let mut report = TelemetryReport::default();
    for g in &facts.gpus {
        let (entry, mut findings) = gpu_telemetry(g);
        report.gpus.push(entry);
        report.findings.append(&mut findings);
    }
    report
}

/// One GPU's telemetry and the findings its thermal, power and clock facts support.
pub fn gpu_telemetry(g: &GpuFacts) -> (GpuTelemetry, Vec<Finding>) {
    let t = &g.thermal;
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    let events = g.clocks_event_reasons.map(|m| decode_reasons(*m, util));
    let sm = g.clocks.sm_mhz.get();
    let sm_max = g.clocks.sm_max_mhz.get();
    let sm_pct = match (sm, sm_max) {
        (Some(a), Some(b)) => pct(a, b).map_or(Reading::not_supported(), Reading::Ok),
        _ => Reading::Err(
            g.clocks
                .sm_mhz
                .err()
                .or(g.clocks.sm_max_mhz.err())
                .cloned()
                .unwrap_or_else(|| {
                    crate::facts::FieldError::new(crate::facts::FieldErrorKind::Unknown)
                }),
        ),
    };
    let headroom = match (t.gpu_temp_c.get(), t.slowdown_threshold_c.get()) {
        (Some(temp), Some(slow)) => Reading::Ok(i64::from(slow) - i64::from(temp)),
        _ => Reading::Err(
            t.gpu_temp_c
                .err()
                .or(t.slowdown_threshold_c.err())
                .cloned()
                .unwrap_or_else(|| {
                    crate::facts::FieldError::new(crate::facts::FieldErrorKind::Unknown)
                }),
        ),
    };
    let findings = judge(g);
    let entry = GpuTelemetry {
        gpu: GpuRef::of(g),
        temperature: Temperatures {
            gpu_c: t.gpu_temp_c.clone(),
            memory_c: t.memory_temp_c.clone(),
            slowdown_c: t.slowdown_threshold_c.clone(),
            shutdown_c: t.shutdown_threshold_c.clone(),
            gpu_max_operating_c: t.gpu_max_threshold_c.clone(),
            memory_max_operating_c: t.memory_max_threshold_c.clone(),
            headroom_to_slowdown_c: headroom,
        },
        fan_speed_pct: g.fan_speed_pct.clone(),
        power: Power {
            draw_w: watts(&g.power.usage_mw),
            limit_w: watts(&g.power.enforced_limit_mw),
            default_limit_w: watts(&g.power.default_limit_mw),
            max_limit_w: watts(&g.power.max_limit_mw),
        },
        utilization: g.utilization.clone(),
        memory: g.memory.map(|m| MemoryUse {
            total_mib: super::mib(m.total_bytes),
            used_mib: super::mib(m.used_bytes),
            free_mib: super::mib(m.free_bytes),
            used_pct: pct(
                (m.used_bytes / 1024 / 1024) as u32,
                (m.total_bytes / 1024 / 1024) as u32,
            )
            .unwrap_or(0),
        }),
        clocks: Clocks {
            sm_mhz: g.clocks.sm_mhz.clone(),
            sm_max_mhz: g.clocks.sm_max_mhz.clone(),
            sm_pct_of_max: sm_pct,
            graphics_mhz: g.clocks.graphics_mhz.clone(),
            graphics_max_mhz: g.clocks.graphics_max_mhz.clone(),
            memory_mhz: g.clocks.memory_mhz.clone(),
            memory_max_mhz: g.clocks.memory_max_mhz.clone(),
        },
        performance_state: g.performance_state.map(|p| format!("P{p}")),
        clocks_event_time_s: ClocksEventTime {
            sw_power_cap: seconds(&g.clocks_event_durations_ns.sw_power_cap),
            sw_thermal_slowdown: seconds(&g.clocks_event_durations_ns.sw_thermal_slowdown),
            hw_thermal_slowdown: seconds(&g.clocks_event_durations_ns.hw_thermal_slowdown),
            hw_power_brake_slowdown: seconds(&g.clocks_event_durations_ns.hw_power_brake_slowdown),
            sync_boost: seconds(&g.clocks_event_durations_ns.sync_boost),
        },
        verdict: verdict(g),
        clocks_event_reasons: events,
    };
    (entry, findings)
}

/// `SM 825 of 1755 MHz (47%)`.
fn sm_text(g: &GpuFacts) -> String {
    match (g.clocks.sm_mhz.get(), g.clocks.sm_max_mhz.get()) {
        (Some(a), Some(b)) => match pct(a, b) {
            Some(p) => format!("SM {a} of {b} MHz ({p}%)"),
            None => format!("SM {a} MHz"),
        },
        (Some(a), None) => format!("SM {a} MHz"),
        _ => "SM clock unreadable".into(),
    }
}

fn temp_text(g: &GpuFacts) -> String {
    match g.thermal.gpu_temp_c.get() {
        Some(t) => format!("{t} C"),
        None => "an unreadable temperature".into(),
    }
}

fn power_text(g: &GpuFacts) -> String {
    match (g.power.usage_mw.get(), g.power.enforced_limit_mw.get()) {
        (Some(u), Some(l)) => format!("{} of {} W", u / 1000, l / 1000),
        (Some(u), None) => format!("{} W", u / 1000),
        _ => "unreadable power".into(),
    }
}

fn util_text(g: &GpuFacts) -> String {
    match g.utilization.ok() {
        Some(u) => format!("{}% utilization", u.gpu_pct),
        None => format!("utilization {}", show(&g.utilization.map(|u| u.gpu_pct))),
    }
}

/// The one-line answer to "why are this GPU's clocks where they are?".
pub fn verdict(g: &GpuFacts) -> String {
    let mask = match &g.clocks_event_reasons {
        Reading::Ok(m) => *m,
        Reading::Err(e) => {
            return format!(
                "Unknown: clocks-event reasons unreadable ({}).",
                super::error_name(e.error)
            );
        }
    };
    let temp = g.thermal.gpu_temp_c.get();
    let slowdown = g.thermal.slowdown_threshold_c.get();
    let hot = matches!((temp, slowdown), (Some(t), Some(s)) if t >= s);
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    if mask & HW_THERMAL_SLOWDOWN != 0
        || (mask & HW_SLOWDOWN != 0 && hot && mask & HW_POWER_BRAKE_SLOWDOWN == 0)
    {
        let threshold = match (temp, slowdown) {
            (Some(t), Some(s)) if t >= s => format!("at or above its {s} C slowdown threshold"),
            (_, Some(s)) => format!("slowdown threshold {s} C"),
            _ => "slowdown threshold unreadable".into(),
        };
        return format!(
            "HW thermal slowdown (harmful): {} at {}, {threshold}; the GPU is overheating and its clocks are cut.",
            sm_text(g),
            temp_text(g)
        );
    }
    if mask & HW_POWER_BRAKE_SLOWDOWN != 0 {
        return format!(
            "HW power brake slowdown (harmful): an external power-brake signal holds {} at {} and {}, so neither heat nor the GPU's own power limit is the cause; check the platform's power supplies.",
            sm_text(g),
            temp_text(g),
            power_text(g)
        );
    }
    if mask & HW_SLOWDOWN != 0 {
        return format!(
            "HW slowdown (harmful): {} with neither the thermal nor the power-brake bit set, at {} and {}.",
            sm_text(g),
            temp_text(g),
            power_text(g)
        );
    }
    if mask & SW_THERMAL_SLOWDOWN != 0 {
        return format!(
            "SW thermal slowdown (harmful): {} at {} (max operating {} C, memory {} of max {} C); cooling is marginal.",
            sm_text(g),
            temp_text(g),
            show(&g.thermal.gpu_max_threshold_c),
            show(&g.thermal.memory_temp_c),
            show(&g.thermal.memory_max_threshold_c)
        );
    }
    if mask & SW_POWER_CAP != 0 {
        return if util.is_some_and(|u| u >= HEAVY_LOAD_PCT) {
            format!(
                "Power-capped at full load (benign): drawing {} at {}, {}.",
                power_text(g),
                util_text(g),
                sm_text(g)
            )
        } else {
            format!(
                "Power-capped at low load (informational): drawing {} at {}, {}; the power limit may be set too low (default {} mW).",
                power_text(g),
                util_text(g),
                sm_text(g),
                show(&g.power.default_limit_mw)
            )
        };
    }
    if mask & SYNC_BOOST != 0 {
        return format!(
            "Held by sync boost (informational): {} follows the slowest GPU of its group.",
            sm_text(g)
        );
    }
    if mask & APPLICATIONS_CLOCKS_SETTING != 0 {
        return format!(
            "Limited by application clocks (informational): {}; reset with nvidia-smi -rac if unintended.",
            sm_text(g)
        );
    }
    if mask & (GPU_IDLE | DISPLAY_CLOCK_SETTING) != 0 {
        return format!(
            "Idle (benign): nothing running, clocks lowered to save power ({}).",
            sm_text(g)
        );
    }
    if mask & !KNOWN != 0 {
        return format!(
            "Only unknown clocks-event bits {:#x} set (informational): {}.",
            mask & !KNOWN,
            sm_text(g)
        );
    }
    format!(
        "Clocks unrestricted (healthy): {} at {}, {}.",
        sm_text(g),
        util_text(g),
        temp_text(g)
    )
}

fn reasons_evidence(mask: u64, util: Option<u32>) -> String {
    let names: Vec<String> = decode_reasons(mask, util)
        .reasons
        .into_iter()
        .map(|r| r.name)
        .collect();
    format!("clocks_event_reasons = {mask:#x} ({})", names.join("|"))
}

/// Thermal, power and clock findings for one GPU.
pub fn judge(g: &GpuFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    let t = &g.thermal;
    let temp = t.gpu_temp_c.get();
    let mask = g.clocks_event_reasons.get();
    let util = g.utilization.ok().map(|u| u.gpu_pct);
    let sm_ev = format!(
        "sm_clock_mhz = {} of max {}",
        show(&g.clocks.sm_mhz),
        show(&g.clocks.sm_max_mhz)
    );
    let temp_ev = format!("gpu_temp_c = {}", show(&t.gpu_temp_c));
    let d = &g.clocks_event_durations_ns;

    // Temperature against the GPU's own thresholds (never hard-coded: they differ per SKU).
    if let (Some(tc), Some(sd)) = (temp, t.shutdown_threshold_c.get())
        && tc >= sd
    {
        out.push(finding(
            "thermal.at_shutdown",
            Severity::Critical,
            Some(g),
            format!("{who} is at {tc} C, at or above its {sd} C HW shutdown threshold."),
            vec![temp_ev.clone(), format!("shutdown_threshold_c = {sd}")],
            ActionKind::CheckCooling,
            "stop work on this GPU now and fix cooling (fans, airflow, inlet temperature, heatsink seating)".into(),
        ));
    }
    let hot = matches!((temp, t.slowdown_threshold_c.get()), (Some(a), Some(b)) if a >= b);
    let brake = mask.is_some_and(|m| m & HW_POWER_BRAKE_SLOWDOWN != 0);
    let hw_thermal = mask
        .is_some_and(|m| m & HW_THERMAL_SLOWDOWN != 0 || (m & HW_SLOWDOWN != 0 && hot && !brake));
    if let Some(m) = mask
        && hw_thermal
    {
        let mut ev = vec![
            reasons_evidence(m, util),
            temp_ev.clone(),
            format!("slowdown_threshold_c = {}", show(&t.slowdown_threshold_c)),
            sm_ev.clone(),
        ];
        if let Some(ns) = d.hw_thermal_slowdown.get() {
            ev.push(format!(
                "hw_thermal_slowdown_time_s = {:.1}",
                ns as f64 / 1e9
            ));
        }
        if t.memory_temp_c.is_ok() {
            ev.push(format!(
                "memory_temp_c = {} (max operating {})",
                show(&t.memory_temp_c),
                show(&t.memory_max_threshold_c)
            ));
        }
        out.push(finding(
            "thermal.hw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is in HW thermal slowdown (harmful): {} at {}; work on it runs at a fraction of its speed.",
                sm_text(g),
                temp_text(g)
            ),
            ev,
            ActionKind::CheckCooling,
            "check the chassis fans, airflow and inlet temperature at this GPU's slot, and whether its heatsink is seated; the slowdown lifts when the temperature falls".into(),
        ));
    } else if hot {
        out.push(finding(
            "thermal.above_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is at {}, at or above its HW slowdown threshold, though no slowdown is reported yet.",
                temp_text(g)
            ),
            vec![temp_ev.clone(), format!("slowdown_threshold_c = {}", show(&t.slowdown_threshold_c))],
            ActionKind::CheckCooling,
            "check the chassis fans, airflow and inlet temperature at this GPU's slot".into(),
        ));
    } else if let Some(m) = mask
        && m & SW_THERMAL_SLOWDOWN != 0
    {
        out.push(finding(
            "thermal.sw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is in SW thermal slowdown: above its max operating temperature, clocks capped ({}).",
                sm_text(g)
            ),
            vec![
                reasons_evidence(m, util),
                temp_ev.clone(),
                format!("gpu_max_threshold_c = {}", show(&t.gpu_max_threshold_c)),
                format!(
                    "memory_temp_c = {} (max operating {})",
                    show(&t.memory_temp_c),
                    show(&t.memory_max_threshold_c)
                ),
            ],
            ActionKind::CheckCooling,
            "improve cooling for this GPU (airflow, inlet temperature)".into(),
        ));
    }
    if let (Some(mt), Some(mmax)) = (t.memory_temp_c.get(), t.memory_max_threshold_c.get())
        && mt >= mmax
        && !hw_thermal
    {
        out.push(finding(
            "thermal.memory_hot",
            Severity::Warning,
            Some(g),
            format!(
                "{who} memory is at {mt} C, at or above its {mmax} C max operating temperature."
            ),
            vec![
                format!("memory_temp_c = {mt}"),
                format!("memory_max_threshold_c = {mmax}"),
            ],
            ActionKind::CheckCooling,
            "check airflow over the GPU; HBM above its limit triggers SW thermal slowdown".into(),
        ));
    }
    let Some(m) = mask else {
        return out;
    };
    if m & HW_POWER_BRAKE_SLOWDOWN != 0 {
        let mut ev = vec![
            reasons_evidence(m, util),
            sm_ev.clone(),
            temp_ev.clone(),
            format!(
                "power_draw_w = {} of limit {}",
                show(&watts(&g.power.usage_mw)),
                show(&watts(&g.power.enforced_limit_mw))
            ),
        ];
        if let Some(ns) = d.hw_power_brake_slowdown.get() {
            ev.push(format!(
                "hw_power_brake_slowdown_time_s = {:.1}",
                ns as f64 / 1e9
            ));
        }
        out.push(finding(
            "power.hw_brake",
            Severity::Warning,
            Some(g),
            format!(
                "{who} is held down by the HW power-brake signal (harmful): {} at {} and {}.",
                sm_text(g),
                temp_text(g),
                power_text(g)
            ),
            ev,
            ActionKind::CheckPower,
            "check the node's power supplies (failed or missing PSU, lost redundancy), power cabling and the BMC's power-capping log; the brake is asserted by the platform, not the GPU".into(),
        ));
    } else if m & HW_SLOWDOWN != 0 && !hw_thermal {
        out.push(finding(
            "clocks.hw_slowdown",
            Severity::Warning,
            Some(g),
            format!(
                "{who} reports HW slowdown without the thermal or power-brake bit: {}.",
                sm_text(g)
            ),
            vec![reasons_evidence(m, util), sm_ev.clone(), temp_ev.clone()],
            ActionKind::Investigate,
            "sample again (HW slowdown can flicker during P-state changes); if it persists, check the BMC's thermal and power logs".into(),
        ));
    }
    if m & SW_POWER_CAP != 0 && util.is_some_and(|u| u < HEAVY_LOAD_PCT) {
        out.push(finding(
            "power.capped_at_low_load",
            Severity::Info,
            Some(g),
            format!(
                "{who} is power-capped at {}: the power limit may be set too low.",
                util_text(g)
            ),
            vec![
                reasons_evidence(m, util),
                format!(
                    "power_limit_w = {} (default {})",
                    show(&watts(&g.power.enforced_limit_mw)),
                    show(&watts(&g.power.default_limit_mw))
                ),
            ],
            ActionKind::Investigate,
            "compare the enforced power limit with the default (nvidia-smi -q -d POWER)".into(),
        ));
    }
    if m & !KNOWN != 0 {
        out.push(finding(
            "clocks.unknown_reason",
            Severity::Info,
            Some(g),
            format!(
                "{who} reports clocks-event bits {:#x} this build does not know; they are shown but not judged.",
                m & !KNOWN
            ),
            vec![format!("clocks_event_reasons = {m:#x}")],
            ActionKind::UpdateSoftware,
            "update node-probe to a release that knows the driver's newer clocks-event reasons".into(),
        ));
    }
    if let (Some(l), Some(dl)) = (
        g.power.enforced_limit_mw.get(),
        g.power.default_limit_mw.get(),
    ) && l < dl
    {
        out.push(finding(
            "power.limit_below_default",
            Severity::Info,
            Some(g),
            format!(
                "{who} runs with a power limit of {} W, below its default {} W.",
                l / 1000,
                dl / 1000
            ),
            vec![
                format!("enforced_limit_mw = {l}"),
                format!("default_limit_mw = {dl}"),
            ],
            ActionKind::Investigate,
            "confirm the lowered limit is intended (nvidia-smi -pl)".into(),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{ClockFacts, FieldError, FieldErrorKind, ThermalFacts};

    fn gpu(mask: Reading<u64>, temp: u32, util: u32, sm: u32) -> GpuFacts {
        GpuFacts {
            index: 1,
            pci_bus_id: Reading::Ok("00000000:CA:00.0".into()),
            clocks_event_reasons: mask,
            utilization: Reading::Ok(UtilizationFacts {
                gpu_pct: util,
                memory_pct: 10,
            }),
            thermal: ThermalFacts {
                gpu_temp_c: Reading::Ok(temp),
                slowdown_threshold_c: Reading::Ok(89),
                shutdown_threshold_c: Reading::Ok(92),
                gpu_max_threshold_c: Reading::Ok(87),
                memory_temp_c: Reading::not_supported(),
                memory_max_threshold_c: Reading::not_supported(),
            },
            clocks: ClockFacts {
                sm_mhz: Reading::Ok(sm),
                sm_max_mhz: Reading::Ok(1755),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn decodes_every_known_bit_and_keeps_unknown_ones() {
        let d = decode_reasons(0x1ff, Some(100));
        assert_eq!(d.reasons.len(), 9);
        assert_eq!(d.worst, Some(ReasonClass::Harmful));
        let d = decode_reasons(0x1 | 0x4000, None);
        assert_eq!(d.mask, "0x0000000000004001");
        assert_eq!(d.reasons[0].name, "GpuIdle");
        assert_eq!(d.reasons[1].name, "Unknown");
        assert_eq!(d.reasons[1].bit, "0x4000");
        assert_eq!(d.worst, Some(ReasonClass::Informational));
        assert_eq!(decode_reasons(0, None).worst, None);
        assert!(decode_reasons(0, None).reasons.is_empty());
    }

    #[test]
    fn sw_power_cap_is_benign_only_under_load() {
        assert_eq!(
            decode_reasons(SW_POWER_CAP, Some(98)).reasons[0].class,
            ReasonClass::Benign
        );
        assert_eq!(
            decode_reasons(SW_POWER_CAP, Some(5)).reasons[0].class,
            ReasonClass::Informational
        );
        assert_eq!(
            decode_reasons(SW_POWER_CAP, None).reasons[0].class,
            ReasonClass::Informational
        );
        let busy = gpu(Reading::Ok(SW_POWER_CAP), 60, 98, 1700);
        assert!(judge(&busy).is_empty());
        assert!(verdict(&busy).starts_with("Power-capped at full load (benign)"));
        let idle = gpu(Reading::Ok(SW_POWER_CAP), 40, 3, 900);
        assert_eq!(codes(&judge(&idle)), ["power.capped_at_low_load"]);
    }

    #[test]
    fn hw_thermal_slowdown_is_named_harmful_with_evidence() {
        let g = gpu(Reading::Ok(0x68), 90, 100, 825);
        let v = verdict(&g);
        assert!(v.starts_with("HW thermal slowdown (harmful)"), "{v}");
        assert!(
            v.contains("SM 825 of 1755 MHz (47%)") && v.contains("89 C"),
            "{v}"
        );
        let f = judge(&g);
        assert_eq!(codes(&f), ["thermal.hw_slowdown"]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].action.kind, ActionKind::CheckCooling);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e.contains("HwThermalSlowdown"))
        );
    }

    #[test]
    fn hw_slowdown_bit_alone_is_thermal_only_when_hot() {
        let hot = gpu(Reading::Ok(HW_SLOWDOWN), 91, 100, 800);
        assert_eq!(codes(&judge(&hot)), ["thermal.hw_slowdown"]);
        let cool = gpu(Reading::Ok(HW_SLOWDOWN), 50, 100, 800);
        assert_eq!(codes(&judge(&cool)), ["clocks.hw_slowdown"]);
        assert!(verdict(&cool).starts_with("HW slowdown (harmful)"));
    }

    #[test]
    fn power_brake_is_not_thermal() {
        let g = gpu(Reading::Ok(0x88), 39, 100, 345);
        let f = judge(&g);
        assert_eq!(codes(&f), ["power.hw_brake"]);
        assert_eq!(f[0].action.kind, ActionKind::CheckPower);
        assert!(verdict(&g).starts_with("HW power brake slowdown (harmful)"));
    }

    #[test]
    fn shutdown_threshold_is_critical() {
        let g = gpu(Reading::Ok(0x48), 93, 100, 600);
        let f = judge(&g);
        assert_eq!(codes(&f), ["thermal.at_shutdown", "thermal.hw_slowdown"]);
        assert_eq!(f[0].severity, Severity::Critical);
    }

    #[test]
    fn hot_without_slowdown_bit_still_warns() {
        let g = gpu(Reading::Ok(0), 89, 100, 1755);
        assert_eq!(codes(&judge(&g)), ["thermal.above_slowdown"]);
    }

    #[test]
    fn unknown_bits_are_reported_not_judged() {
        let g = gpu(Reading::Ok(0x1_0000), 40, 0, 1755);
        let f = judge(&g);
        assert_eq!(codes(&f), ["clocks.unknown_reason"]);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(verdict(&g).contains("unknown clocks-event bits 0x10000"));
    }

    #[test]
    fn unsupported_and_lost_fields_give_no_false_findings() {
        let lost = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        let mut g = gpu(lost.clone(), 40, 0, 0);
        g.thermal.gpu_temp_c = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        g.clocks.sm_mhz = Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost));
        assert!(judge(&g).is_empty());
        assert_eq!(
            verdict(&g),
            "Unknown: clocks-event reasons unreadable (gpu_is_lost)."
        );
        let (t, _) = gpu_telemetry(&g);
        assert_eq!(
            t.clocks.sm_pct_of_max.err().unwrap().error,
            FieldErrorKind::GpuIsLost
        );
        assert_eq!(
            t.temperature.headroom_to_slowdown_c.err().unwrap().error,
            FieldErrorKind::GpuIsLost
        );
        // Memory temperature not supported (GDDR boards): no memory finding, value stays inline.
        let g = gpu(Reading::Ok(0), 60, 50, 1755);
        assert!(judge(&g).is_empty());
        assert!(gpu_telemetry(&g).0.temperature.memory_c.err().is_some());
    }

    #[test]
    fn idle_and_unrestricted_verdicts() {
        assert!(verdict(&gpu(Reading::Ok(GPU_IDLE), 30, 0, 345)).starts_with("Idle (benign)"));
        assert!(
            verdict(&gpu(Reading::Ok(0), 55, 97, 1755))
                .starts_with("Clocks unrestricted (healthy)")
        );
    }
}
