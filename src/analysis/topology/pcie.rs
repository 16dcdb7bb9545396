//! A GPU's PCIe link judged against its capability (generation, width) and DCGM's replay budget, with its
//! AER counters: the link's verdict and its findings.

use serde::{Deserialize, Serialize};

use crate::analysis::{finding, gpu_label, show};
use crate::facts::{AerFacts, GpuFacts, PcieFacts, Reading};
use crate::finding::{ActionKind, Finding, Severity};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PcieLink {
    pub current_gen: Reading<u32>,
    pub max_gen: Reading<u32>,
    pub gpu_max_gen: Reading<u32>,
    pub current_width: Reading<u32>,
    pub max_width: Reading<u32>,
    /// Link-level replays since the driver loaded.
    pub replay_counter: Reading<u64>,
    /// `replay_counter` averaged over the uptime, per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_rate_per_min: Option<f64>,
    /// DCGM's budget for this generation and width (10^-12 BER), per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_budget_per_min: Option<u32>,
    pub aer: Reading<AerFacts>,
    pub verdict: String,
}

/// DCGM's PCIe replay budget per minute: ceil(10^-12 BER x line rate x 60 per lane x lanes).
pub fn replay_budget_per_min(generation: u32, width: u32) -> Option<u32> {
    let per_lane = match generation {
        1 => 0.15,
        2 => 0.3,
        3 => 0.48,
        4 => 0.96,
        5 => 1.92,
        6 => 3.84,
        _ => return None,
    };
    Some((per_lane * f64::from(width)).ceil() as u32)
}

/// Utilization at or above which a lowered PCIe generation is a fault rather than power saving.
const LOADED_PCT: u32 = 50;

/// What the rules read from the link: its generation and width now and at most, how busy the GPU is, and
/// the replay rate against DCGM's budget.
struct LinkReading {
    current_gen: Option<u32>,
    max_gen: Option<u32>,
    current_width: Option<u32>,
    max_width: Option<u32>,
    gpu_util_pct: Option<u32>,
    replay_budget_per_min: Option<u32>,
    replay_rate_per_min: Option<f64>,
}

impl LinkReading {
    fn of(g: &GpuFacts, uptime_s: Option<f64>) -> Self {
        let p = &g.pcie;
        let (current_gen, current_width) = (p.current_link_gen.get(), p.current_link_width.get());
        LinkReading {
            current_gen,
            max_gen: p.max_link_gen.get(),
            current_width,
            max_width: p.max_link_width.get(),
            gpu_util_pct: g.utilization.ok().map(|u| u.gpu_pct),
            replay_budget_per_min: match (current_gen, current_width) {
                (Some(generation), Some(w)) => replay_budget_per_min(generation, w),
                _ => None,
            },
            replay_rate_per_min: match (p.replay_counter.get(), uptime_s) {
                (Some(r), Some(up)) if up > 0.0 => {
                    Some((r as f64 / (up / 60.0) * 10.0).round() / 10.0)
                }
                _ => None,
            },
        }
    }

    fn loaded(&self) -> bool {
        self.gpu_util_pct.is_some_and(|u| u >= LOADED_PCT)
    }
}

/// The evidence lines the findings quote: the link, its replays, its AER counters.
struct LinkEvidence {
    link: String,
    replay: String,
    aer: String,
}

impl LinkEvidence {
    fn of(p: &PcieFacts, r: &LinkReading) -> Self {
        LinkEvidence {
            link: format!(
                "link = Gen{} x{} (max Gen{} x{})",
                show(&p.current_link_gen),
                show(&p.current_link_width),
                show(&p.max_link_gen),
                show(&p.max_link_width)
            ),
            replay: format!(
                "replay_counter = {}{}",
                show(&p.replay_counter),
                match (r.replay_rate_per_min, r.replay_budget_per_min) {
                    (Some(r), Some(b)) => {
                        format!(" ({r}/min averaged since boot; DCGM budget {b}/min)")
                    }
                    _ => String::new(),
                }
            ),
            aer: format!(
                "aer = {}",
                match p.aer.ok() {
                    Some(a) => format!(
                        "correctable {}, nonfatal {}, fatal {}",
                        a.correctable, a.nonfatal, a.fatal
                    ),
                    None => show(&p.aer.map(|_| "")),
                }
            ),
        }
    }
}

/// The PCIe link against its capability and DCGM's replay budget.
pub fn pcie_link(g: &GpuFacts, uptime_s: Option<f64>) -> (PcieLink, Vec<Finding>) {
    let p = &g.pcie;
    let reading = LinkReading::of(g, uptime_s);
    let evidence = LinkEvidence::of(p, &reading);
    let who = gpu_label(g);
    let mut verdict = link_verdict(&reading);
    let mut out = Vec::new();
    out.extend(width_finding(g, &who, &reading, &evidence));
    out.extend(generation_finding(g, &who, &reading, &evidence));
    if let Some(f) = replay_finding(g, &who, &reading, &evidence) {
        verdict.push_str("; replay rate above DCGM's budget");
        out.push(f);
    }
    out.extend(aer_finding(g, &who, &evidence));
    out.extend(platform_finding(g, &who, &reading));
    let link = PcieLink {
        current_gen: p.current_link_gen.clone(),
        max_gen: p.max_link_gen.clone(),
        gpu_max_gen: p.gpu_max_link_gen.clone(),
        current_width: p.current_link_width.clone(),
        max_width: p.max_link_width.clone(),
        replay_counter: p.replay_counter.clone(),
        replay_rate_per_min: reading.replay_rate_per_min,
        replay_budget_per_min: reading.replay_budget_per_min,
        aer: p.aer.clone(),
        verdict,
    };
    (link, out)
}

/// One line: what the link runs at against its maximum, and whether that is a fault or power saving.
fn link_verdict(r: &LinkReading) -> String {
    match (r.current_gen, r.max_gen, r.current_width, r.max_width) {
        (Some(cg), Some(mg), Some(cw), Some(mw)) => {
            if cw < mw {
                format!("Gen{cg} x{cw} of Gen{mg} x{mw}: width degraded (lanes lost; never normal)")
            } else if cg < mg && r.loaded() {
                format!("Gen{cg} x{cw} of Gen{mg} x{mw}: generation lowered under load")
            } else if cg < mg {
                format!(
                    "Gen{cg} x{cw} of Gen{mg} x{mw}: generation lowered while idle (normal power saving)"
                )
            } else {
                format!("Gen{cg} x{cw}: full speed")
            }
        }
        _ => "link state unreadable".to_string(),
    }
}

/// Lanes lost: never power saving.
fn width_finding(g: &GpuFacts, who: &str, r: &LinkReading, ev: &LinkEvidence) -> Option<Finding> {
    let (cw, mw) = (r.current_width?, r.max_width?);
    (cw < mw).then(|| finding(
        "pcie.width_degraded",
        Severity::Warning,
        Some(g),
        format!(
            "{who} PCIe link trained at x{cw} of x{mw}: host transfers run at {}% of their bandwidth.",
            cw * 100 / mw
        ),
        vec![ev.link.clone(), ev.replay.clone(), ev.aer.clone()],
        ActionKind::CheckMechanicals,
        "drain the node, then reseat the GPU (and its riser/cable) and check the slot; a width drop is never power saving".into(),
    ))
}

/// A lowered generation is a fault only while the GPU is busy (idle, it is power saving).
fn generation_finding(
    g: &GpuFacts,
    who: &str,
    r: &LinkReading,
    ev: &LinkEvidence,
) -> Option<Finding> {
    let (cg, mg) = (r.current_gen?, r.max_gen?);
    (cg < mg && r.loaded()).then(|| {
        finding(
            "pcie.gen_degraded",
            Severity::Warning,
            Some(g),
            format!("{who} PCIe link runs at Gen{cg} of Gen{mg} while the GPU is busy."),
            vec![
                ev.link.clone(),
                format!("gpu_utilization_pct = {}", r.gpu_util_pct.unwrap_or(0)),
            ],
            ActionKind::CheckMechanicals,
            "check the slot and the platform's PCIe settings; reseat if it persists".into(),
        )
    })
}

/// Replays at or above DCGM's budget for the link's generation and width: a marginal link.
fn replay_finding(g: &GpuFacts, who: &str, r: &LinkReading, ev: &LinkEvidence) -> Option<Finding> {
    let (rate, budget) = (r.replay_rate_per_min?, r.replay_budget_per_min?);
    (rate >= f64::from(budget)).then(|| finding(
        "pcie.replay_rate",
        Severity::Warning,
        Some(g),
        format!(
            "{who} PCIe link replays {rate}/min on average since boot, above DCGM's {budget}/min budget for this link: the link is marginal."
        ),
        vec![ev.replay.clone(), ev.link.clone(), ev.aer.clone()],
        ActionKind::CheckMechanicals,
        "reseat the GPU and its riser/cable; if replays continue, have the slot or GPU serviced".into(),
    ))
}

/// Uncorrectable AER errors: fatal ones call for a reboot, non-fatal ones for a reseat.
fn aer_finding(g: &GpuFacts, who: &str, ev: &LinkEvidence) -> Option<Finding> {
    let a = g.pcie.aer.ok()?;
    if a.fatal > 0 {
        Some(finding(
            "pcie.aer_fatal",
            Severity::Critical,
            Some(g),
            format!("{who} logged {} fatal PCIe AER error(s).", a.fatal),
            vec![ev.aer.clone(), ev.link.clone()],
            ActionKind::RebootNode,
            "drain and reboot the node; if fatal errors recur, reseat or replace the GPU".into(),
        ))
    } else if a.nonfatal > 0 {
        Some(finding(
            "pcie.aer_nonfatal",
            Severity::Warning,
            Some(g),
            format!(
                "{who} logged {} uncorrectable non-fatal PCIe AER error(s).",
                a.nonfatal
            ),
            vec![ev.aer.clone(), ev.link.clone()],
            ActionKind::CheckMechanicals,
            "watch for Xid 79/fallen-off-bus; reseat the GPU at the next maintenance window".into(),
        ))
    } else {
        None
    }
}

/// The slot allows less than the GPU could do: expected on older platforms.
fn platform_finding(g: &GpuFacts, who: &str, r: &LinkReading) -> Option<Finding> {
    let (mg, gm) = (r.max_gen?, g.pcie.gpu_max_link_gen.get()?);
    (mg < gm).then(|| {
        finding(
            "pcie.platform_limited",
            Severity::Info,
            Some(g),
            format!("{who} supports PCIe Gen{gm} but this slot/platform allows Gen{mg}."),
            vec![
                format!("max_link_gen = {mg}"),
                format!("gpu_max_link_gen = {gm}"),
            ],
            ActionKind::None,
            "expected on older platforms; check BIOS PCIe settings if not".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::UtilizationFacts;

    #[test]
    fn replay_budgets() {
        assert_eq!(replay_budget_per_min(4, 16), Some(16));
        assert_eq!(replay_budget_per_min(5, 16), Some(31));
        assert_eq!(replay_budget_per_min(4, 8), Some(8));
        assert_eq!(replay_budget_per_min(9, 16), None);
    }

    fn pcie(cg: u32, cw: u32, replay: u64) -> GpuFacts {
        GpuFacts {
            index: 2,
            pci_bus_id: Reading::Ok("0000:c1:00.0".into()),
            utilization: Reading::Ok(UtilizationFacts {
                gpu_pct: 90,
                memory_pct: 10,
            }),
            pcie: PcieFacts {
                max_link_gen: Reading::Ok(4),
                gpu_max_link_gen: Reading::Ok(4),
                max_link_width: Reading::Ok(16),
                current_link_gen: Reading::Ok(cg),
                current_link_width: Reading::Ok(cw),
                replay_counter: Reading::Ok(replay),
                aer: Reading::not_supported(),
            },
            ..Default::default()
        }
    }

    #[test]
    fn pcie_width_gen_and_replay_rules() {
        let (l, f) = pcie_link(&pcie(4, 8, 52_140), Some(3.0 * 3600.0));
        let codes: Vec<_> = f.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["pcie.width_degraded", "pcie.replay_rate"]);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e == "link = Gen4 x8 (max Gen4 x16)")
        );
        assert_eq!(l.replay_budget_per_min, Some(8));
        assert!(l.verdict.contains("width degraded"));
        let (_, f) = pcie_link(&pcie(4, 16, 10), Some(3600.0));
        assert!(f.is_empty());
        let (_, f) = pcie_link(&pcie(1, 16, 0), None);
        assert_eq!(f[0].code, "pcie.gen_degraded", "Gen1 under load");
        let mut idle = pcie(1, 16, 0);
        idle.utilization = Reading::Ok(UtilizationFacts {
            gpu_pct: 0,
            memory_pct: 0,
        });
        let (l, f) = pcie_link(&idle, None);
        assert!(f.is_empty(), "Gen drop at idle is power saving");
        assert!(l.verdict.contains("normal power saving"));
    }
}
