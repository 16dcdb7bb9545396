//! An AMD GPU's links and clocks as `gpu_metrics` and the XGMI sysfs show them [K5]: XGMI link state
//! (`xgmi_link_status[]`, 1 = up) and the error count (`xgmi_error`, cleared on read), the SMU's throttle
//! residency accumulators (a residency that grew between the probe's two reads is a throttle active now,
//! named as the driver's `GPU is throttled` line names it: Prochot, PPT, SOC, VR, HBM) and the PCIe
//! link's recoveries from L0.

use crate::analysis::{finding, gpu_label};
use crate::facts::{AmdGpuFacts, AmdThrottleSampleFacts, GpuFacts};
use crate::finding::{ActionKind, Finding, Severity};

/// PCIe L0 -> recovery transitions per hour, averaged over the SMU's accumulation, from which the link
/// is called marginal: this project's line (a healthy link recovers rarely, if ever, outside resets).
pub const RECOVERIES_WARN_PER_HOUR: f64 = 1.0;

/// One throttle residency: its name in the driver's log line, code, what it is and what to do.
struct Residency {
    name: &'static str,
    code: &'static str,
    what: &'static str,
    get: fn(&AmdThrottleSampleFacts) -> Option<u64>,
    severity: Severity,
    kind: ActionKind,
    detail: &'static str,
}

const RESIDENCIES: &[Residency] = &[
    Residency {
        name: "Prochot",
        code: "amd.throttle.prochot",
        what: "the processor-hot signal",
        get: |s| s.prochot,
        severity: Severity::Warning,
        kind: ActionKind::CheckCooling,
        detail: "check the GPU's cooling and the platform's power and thermal alerts (BMC log): PROCHOT is asserted from outside the GPU",
    },
    Residency {
        name: "PPT",
        code: "amd.throttle.ppt",
        what: "its power cap (package power tracking)",
        get: |s| s.ppt,
        // Running at the power cap under a full load is the GPU working as designed.
        severity: Severity::Info,
        kind: ActionKind::None,
        detail: "nothing to do unless the cap was lowered on purpose (`amd-smi static --limit` shows it)",
    },
    Residency {
        name: "SOC",
        code: "amd.throttle.soc",
        what: "the socket's thermal limit",
        get: |s| s.socket_thermal,
        severity: Severity::Warning,
        kind: ActionKind::CheckCooling,
        detail: "check the chassis fans, airflow and inlet temperature at this GPU's OAM slot and its heatsink seating",
    },
    Residency {
        name: "VR",
        code: "amd.throttle.vr",
        what: "its voltage regulators' thermal limit",
        get: |s| s.vr_thermal,
        severity: Severity::Warning,
        kind: ActionKind::CheckCooling,
        detail: "check the airflow over the board's voltage regulators; if only this GPU's VRs run hot, have the board serviced",
    },
    Residency {
        name: "HBM",
        code: "amd.throttle.hbm",
        what: "its HBM's thermal limit",
        get: |s| s.hbm_thermal,
        severity: Severity::Warning,
        kind: ActionKind::CheckCooling,
        detail: "check the chassis fans, airflow and inlet temperature at this GPU's OAM slot",
    },
];

pub fn judge(g: &GpuFacts, amd: &AmdGpuFacts, uptime_s: Option<f64>) -> Vec<Finding> {
    let mut out = Vec::new();
    let who = gpu_label(g);
    if let Some(x) = amd.xgmi.ok() {
        let down: Vec<String> = x
            .links
            .iter()
            .filter(|l| l.active.get() == Some(false))
            .map(|l| l.link.to_string())
            .collect();
        if !down.is_empty() {
            let up = x.links.len() - down.len();
            out.push(finding(
                "amd.xgmi.link_down",
                Severity::Critical,
                Some(g),
                format!(
                    "{who} XGMI link {} {} down ({up} of {} up): traffic to its peers in the hive is slower and collective jobs may stall.",
                    down.join(", "),
                    if down.len() == 1 { "is" } else { "are" },
                    x.links.len()
                ),
                vec![format!(
                    "gpu_metrics xgmi_link_status: link {} = 0",
                    down.join(", ")
                )],
                ActionKind::ResetGpu,
                format!(
                    "drain the hive and retrain the link with a reset: {}; if it stays down, reseat the GPU or have the baseboard serviced",
                    super::gpus::reset_step(g, amd)
                ),
            ));
        }
        if let Some(n) = x.error_count.get().filter(|&n| n > 0) {
            out.push(finding(
                "amd.xgmi.errors",
                Severity::Warning,
                Some(g),
                format!("{who} counted {n} XGMI error(s) since the last read: a marginal link."),
                vec![format!("xgmi_error = {n} (cleared on read)")],
                ActionKind::Monitor,
                "read it again (get_gpu_health); errors that keep coming with a link down mean the link needs service".into(),
            ));
        }
    }
    if let Some(m) = amd.metrics.ok() {
        if let [first, .., last] = m.throttle_samples.as_slice() {
            let ticks = match (first.accumulation_counter, last.accumulation_counter) {
                (Some(a), Some(b)) if b > a => Some(b - a),
                _ => None,
            };
            for r in RESIDENCIES {
                let (Some(a), Some(b)) = ((r.get)(first), (r.get)(last)) else {
                    continue;
                };
                if b <= a {
                    continue;
                }
                let share = ticks.map(|t| (b - a) as f64 * 100.0 / t as f64);
                out.push(finding(
                    r.code,
                    r.severity,
                    Some(g),
                    format!(
                        "{who} is throttled now by {} ({}){}.",
                        r.what,
                        r.name,
                        share.map_or(String::new(), |p| format!(
                            ", {:.0} % of the time between the probe's two reads",
                            p.min(100.0)
                        ))
                    ),
                    vec![
                        format!(
                            "gpu_metrics {}_residency_acc: {a} -> {b}",
                            r.name.to_ascii_lowercase()
                        ),
                        format!(
                            "accumulation_counter: {} -> {}",
                            opt(first.accumulation_counter),
                            opt(last.accumulation_counter)
                        ),
                        format!(
                            "gfx clock {} of {} MHz, hotspot {} C",
                            crate::analysis::show(&g.clocks.graphics_mhz),
                            crate::analysis::show(&g.clocks.graphics_max_mhz),
                            crate::analysis::show(&g.thermal.gpu_temp_c)
                        ),
                    ],
                    r.kind,
                    r.detail.into(),
                ));
            }
        }
        // The SMU accumulates since it started (the driver's load at boot): a rate over the uptime.
        if let Some(n) = m.pcie_l0_to_recov_count_acc.filter(|&n| n > 0)
            && let Some(hours) = uptime_s.filter(|&s| s > 0.0).map(|s| s / 3600.0)
            && n as f64 / hours >= RECOVERIES_WARN_PER_HOUR
        {
            out.push(recoveries(g, &who, n, n as f64 / hours));
        }
    }
    out
}

fn recoveries(g: &GpuFacts, who: &str, n: u64, per_hour: f64) -> Finding {
    finding(
        "amd.pcie.recoveries",
        Severity::Warning,
        Some(g),
        format!(
            "{who} PCIe link fell from L0 into recovery {n} times, {per_hour:.1} an hour since boot: the link is marginal."
        ),
        vec![
            format!("gpu_metrics pcie_l0_to_recov_count_acc = {n}"),
            format!("warning from {RECOVERIES_WARN_PER_HOUR:.0} an hour"),
        ],
        ActionKind::CheckMechanicals,
        "reseat the GPU; if recoveries continue, have the slot or baseboard serviced".into(),
    )
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "?".into(), |v| v.to_string())
}
