//! The judgement on synthetic windows: a GPU throttled 40 % of the window, an Xid mid-window, ECC counters
//! climbing, steady GPUs in one line, an exporter gap said as a gap, AMD's residencies, hostile labels.

use std::collections::BTreeMap;

use super::*;
use crate::finding::{Severity, Verdict};

const START: i64 = 1_800_000_000;
const STEP: i64 = 30;
const HOURS: i64 = 6;
const STEPS: usize = (HOURS * 3600 / STEP) as usize + 1;

fn series(name: &str, labels: &[(&str, &str)], value: impl Fn(usize) -> Option<f64>) -> RawSeries {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("__name__".into(), name.into());
    RawSeries {
        labels: l,
        points: (0..STEPS)
            .filter_map(|k| value(k).map(|v| ((START + k as i64 * STEP) as f64, v)))
            .collect(),
    }
}

fn input(series: Vec<RawSeries>) -> HistoryInput {
    HistoryInput {
        node: "gpu-node-5".into(),
        source: "http://prometheus:9090".into(),
        matched_label: "Hostname".into(),
        start: START,
        end: START + HOURS * 3600,
        step: STEP,
        series,
        left_out: Vec::new(),
    }
}

/// One H100 of dcgm-exporter: busy, 650 W of 700 W, 70 °C, no throttle, no Xid, counters flat; `gap`
/// steps have no data.
fn dcgm_gpu(gpu: u32, gap: impl Fn(usize) -> bool + Copy) -> Vec<RawSeries> {
    let g = gpu.to_string();
    let uuid = format!("GPU-0000000{gpu}");
    let l = [
        ("gpu", g.as_str()),
        ("UUID", uuid.as_str()),
        ("modelName", "NVIDIA H100 80GB HBM3"),
        ("Hostname", "gpu-node-5"),
    ];
    let on = move |v: f64| move |k: usize| (!gap(k)).then_some(v);
    vec![
        series("DCGM_FI_DEV_GPU_UTIL", &l, on(97.0)),
        series("DCGM_FI_DEV_POWER_USAGE", &l, on(650.0)),
        series("DCGM_FI_DEV_POWER_MGMT_LIMIT", &l, on(700.0)),
        series("DCGM_FI_DEV_GPU_TEMP", &l, on(70.0)),
        series("DCGM_FI_DEV_SM_CLOCK", &l, on(1980.0)),
        series("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", &l, on(0.0)),
        series("DCGM_FI_DEV_XID_ERRORS", &l, on(0.0)),
        series("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", &l, on(0.0)),
        series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", &l, on(0.0)),
        series("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", &l, on(0.0)),
        series("DCGM_FI_DEV_ROW_REMAP_FAILURE", &l, on(0.0)),
    ]
}

fn replace(all: &mut Vec<RawSeries>, gpu: &str, s: RawSeries) {
    let name = s.labels["__name__"].clone();
    all.retain(|x| {
        !(x.labels["__name__"] == name && x.labels.get("gpu").map(String::as_str) == Some(gpu))
    });
    all.push(s);
}

fn labels(gpu: &str) -> Vec<(&str, &str)> {
    vec![
        ("gpu", gpu),
        ("Hostname", "gpu-node-5"),
        ("modelName", "NVIDIA H100 80GB HBM3"),
    ]
}

/// The node of the issue: GPU 3 throttles (HW thermal) 40 % of the window in two bursts, GPU 5 reports
/// Xid 79 at 3 h, GPU 6's uncorrectable ECC climbs, the exporter is down for the last 20 min of the first
/// hour on every GPU.
fn the_node() -> HistoryInput {
    let gap = |k: usize| (80..120).contains(&k);
    let mut all = Vec::new();
    for g in 0..8 {
        all.extend(dcgm_gpu(g, gap));
    }
    // 40 % of 721 steps = 288: steps 200-343 and 500-643.
    let throttled = |k: usize| (200..344).contains(&k) || (500..644).contains(&k);
    replace(
        &mut all,
        "3",
        series("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", &labels("3"), move |k| {
            (!gap(k)).then_some(if throttled(k) {
                (0x40 | 0x8) as f64
            } else {
                0.0
            })
        }),
    );
    replace(
        &mut all,
        "5",
        series("DCGM_FI_DEV_XID_ERRORS", &labels("5"), move |k| {
            (!gap(k)).then_some(if k >= 360 { 79.0 } else { 0.0 })
        }),
    );
    replace(
        &mut all,
        "6",
        series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", &labels("6"), move |k| {
            (!gap(k)).then_some(if k >= 400 {
                ((k - 400) / 100 + 1) as f64
            } else {
                0.0
            })
        }),
    );
    input(all)
}

#[test]
fn a_throttling_gpu_an_xid_and_ecc_lead_and_the_steady_gpus_are_one_line() {
    let h = analyze(&the_node());
    assert_eq!(h.gpus.len(), 8);
    assert_eq!(h.verdict, Verdict::Unhealthy, "{h:#?}");
    let g3 = &h.gpus[3];
    assert_eq!(g3.verdict, Verdict::Degraded);
    let thermal = g3
        .throttle
        .iter()
        .find(|s| s.reason == "HwThermalSlowdown")
        .unwrap();
    // 288 of the 681 steps with data.
    assert!(
        (thermal.fraction - 288.0 / 681.0).abs() < 1e-9,
        "{}",
        thermal.fraction
    );
    assert_eq!(g3.throttle_episodes.len(), 2);
    assert_eq!(g3.throttle_episodes[0].seconds, 144 * 30);
    assert!(
        g3.line
            .starts_with("GPU 3 (NVIDIA H100 80GB HBM3): throttled 42% of"),
        "{}",
        g3.line
    );
    assert!(
        g3.line.contains("HwSlowdown, HwThermalSlowdown"),
        "{}",
        g3.line
    );

    let g5 = &h.gpus[5];
    assert_eq!(g5.verdict, Verdict::Unhealthy);
    assert_eq!(g5.xids.len(), 1);
    assert_eq!(g5.xids[0].code, 79);
    assert!(!g5.xids[0].before_window);
    assert_eq!(g5.xids[0].first_seen, "11:00");
    assert!(g5.line.contains("Xid 79"), "{}", g5.line);

    let g6 = &h.gpus[6];
    assert_eq!(g6.verdict, Verdict::Unhealthy);
    assert_eq!(g6.counters[0].counter, "uncorrectable ECC errors");
    assert_eq!(g6.counters[0].increase, 4.0);
    assert_eq!(g6.counters[0].severity, Severity::Critical);

    // The exporter's gap is the node's, said once, and no GPU is called healthy past it.
    assert_eq!(h.gaps.len(), 1);
    assert_eq!(h.gaps[0].seconds, 40 * 30);
    assert!(h.headline.contains("no data for 20 m"), "{}", h.headline);
    assert!(h.gpus.iter().all(|g| g.gaps.is_empty()));
    assert_eq!(
        h.uniform.as_deref(),
        Some(
            "GPU 0-2, 4, 7: steady — no harmful throttling, no Xid, error counters flat; util 97% avg, 650 W avg, max 70 °C"
        )
    );
    assert!(h.headline.starts_with("gpu-node-5: unhealthy over the last 6 h (times UTC) — GPU 5: Xid 79 (GPU has fallen off the bus) at 11:00"), "{}", h.headline);
    assert!(h.not_exported.is_empty(), "{:?}", h.not_exported);
}

#[test]
fn a_steady_node_is_one_line_and_a_silent_exporter_is_never_healthy() {
    let mut all = Vec::new();
    for g in 0..8 {
        all.extend(dcgm_gpu(g, |_| false));
    }
    let h = analyze(&input(all));
    assert_eq!(h.verdict, Verdict::Healthy);
    assert_eq!(
        h.headline,
        "gpu-node-5: healthy over the last 6 h — 8 GPUs steady"
    );
    assert!(h.uniform.as_deref().unwrap().starts_with("GPU 0-7: steady"));

    // Data for only the first two hours: unknown, never healthy, and the gap said.
    let mut all = Vec::new();
    for g in 0..8 {
        all.extend(dcgm_gpu(g, |k| k > 240));
    }
    let h = analyze(&input(all));
    assert_eq!(h.verdict, Verdict::Unknown);
    assert!(h.gpus.iter().all(|g| g.verdict == Verdict::Unknown));
    assert!(h.headline.contains("no data for 4 h"), "{}", h.headline);
    assert!(h.uniform.is_none());
}

#[test]
fn the_default_counters_leave_out_throttle_reasons_and_ecc_and_the_answer_says_how_to_add_them() {
    let mut all = Vec::new();
    for g in 0..2 {
        all.extend(dcgm_gpu(g, |_| false).into_iter().filter(|s| {
            !matches!(
                s.labels["__name__"].as_str(),
                "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
                    | "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
                    | "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"
                    | "DCGM_FI_DEV_POWER_MGMT_LIMIT"
            )
        }));
    }
    let h = analyze(&input(all));
    assert_eq!(h.not_exported.len(), 3, "{:?}", h.not_exported);
    assert!(h.not_exported[0].contains("DCGM_FI_DEV_CLOCKS_EVENT_REASONS"));
    let u = h.uniform.unwrap();
    assert!(!u.contains("no harmful throttling"), "{u}");
    assert!(u.contains("no Xid"), "{u}");
}

#[test]
fn the_older_throttle_name_is_read_and_the_newer_wins_where_both_are() {
    let l = labels("0");
    let old = series("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", &l, |_| {
        Some(0x40 as f64)
    });
    let h = analyze(&input(vec![old.clone()]));
    assert_eq!(h.gpus[0].throttle[0].reason, "HwThermalSlowdown");
    assert_eq!(h.gpus[0].throttle[0].fraction, 1.0);
    let new = series("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", &l, |_| Some(0.0));
    let h = analyze(&input(vec![old, new]));
    assert!(h.gpus[0].throttle.is_empty());
}

#[test]
fn an_xid_held_from_before_the_window_is_history_and_a_counter_reset_is_not_a_drop() {
    let l = labels("0");
    let h = analyze(&input(vec![
        series("DCGM_FI_DEV_XID_ERRORS", &l, |_| Some(31.0)),
        series("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", &l, |k| {
            Some(
                if k < 300 {
                    10.0 + k as f64 / 100.0
                } else {
                    (k - 300) as f64 / 100.0
                }
                .floor(),
            )
        }),
    ]));
    let g = &h.gpus[0];
    assert!(g.xids[0].before_window);
    assert_eq!(g.xids[0].severity, Severity::Info);
    // 10 -> 12 before the reload, 0 -> 4 after: 2 + 4.
    assert_eq!(g.counters[0].increase, 6.0);
    assert_eq!(g.counters[0].severity, Severity::Info);
    assert_eq!(g.verdict, Verdict::Healthy);
}

#[test]
fn amd_residencies_read_as_throttling_and_ppt_is_not_harmful() {
    let l = [
        ("gpu_id", "2"),
        ("hostname", "mi300x-node-1"),
        ("card_model", "AMD Instinct MI300X"),
        ("serial_number", "PHX1234"),
    ];
    let h = analyze(&input(vec![
        series("gpu_gfx_activity", &l, |_| Some(90.0)),
        series("gpu_package_power", &l, |_| Some(700.0)),
        series("gpu_junction_temperature", &l, |_| Some(95.0)),
        series(
            "gpu_violation_socket_thermal_residency_percentage",
            &l,
            |k| Some(if k % 2 == 0 { 100.0 } else { 0.0 }),
        ),
        series("gpu_violation_ppt_residency_percentage", &l, |_| Some(30.0)),
        series("gpu_ecc_uncorrect_total", &l, |k| {
            Some(if k > 600 { 1.0 } else { 0.0 })
        }),
    ]));
    let g = &h.gpus[0];
    assert_eq!(g.exporter, Exporter::Amd);
    assert_eq!(g.model.as_deref(), Some("AMD Instinct MI300X"));
    let thermal = &g.throttle[0];
    assert_eq!(thermal.reason, "SocketThermal");
    assert!(thermal.harmful);
    assert!((thermal.fraction - 361.0 / 721.0).abs() < 1e-9);
    let ppt = g
        .throttle
        .iter()
        .find(|s| s.reason == "PackagePowerTracking")
        .unwrap();
    assert!(!ppt.harmful);
    assert_eq!(g.verdict, Verdict::Unhealthy);
    assert!(g.line.contains("+1 uncorrectable ECC errors"), "{}", g.line);
    assert!(h.not_exported.is_empty(), "{:?}", h.not_exported);
}

/// Intel's exporter, as its Go source's `Collect` writes it: milliwatts, `Serial`/`UUID`/`id` labels, rows
/// pending replacement as gauges. Read in watts, named by its serial, and never judged healthy on power
/// and utilization alone (it publishes no throttle reasons or errors).
#[test]
fn gaudi_series_read_in_watts_by_serial_and_pending_rows_warn() {
    let l = [
        ("Serial", "AM23145678"),
        ("UUID", "01P0-HL2080A0-15-TNA3B3-20-07-04"),
        ("id", "3"),
        ("device", "AM23145678"),
        ("node", "gaudi-node-1"),
    ];
    let h = analyze(&input(vec![
        series("habanalabs_utilization", &l, |_| Some(88.0)),
        series("habanalabs_power_mW", &l, |_| Some(450_000.0)),
        series("habanalabs_power_default_limit_mW", &l, |_| Some(600_000.0)),
        series("habanalabs_temperature_onchip", &l, |_| Some(61.0)),
        series("habanalabs_pcie_replay_count", &l, |_| Some(0.0)),
        series(
            "habanalabs_pending_rows_with_double_bit_ecc_errors",
            &l,
            |k| Some(if k > 400 { 2.0 } else { 0.0 }),
        ),
        series(
            "habanalabs_pending_rows_with_single_bit_ecc_errors",
            &l,
            |_| Some(0.0),
        ),
    ]));
    let g = &h.gpus[0];
    assert_eq!(g.exporter, Exporter::Gaudi);
    assert_eq!(g.gpu, "3");
    assert_eq!(g.uuid.as_deref(), Some("AM23145678"));
    let p = g.power.as_ref().unwrap();
    assert!((p.mean_watts - 450.0).abs() < 1e-6, "{p:?}");
    assert_eq!(p.limit_watts, Some(600.0));
    assert_eq!(g.verdict, Verdict::Degraded, "{}", g.line);
    assert!(
        g.line.contains(
            "2 HBM row(s) with double-bit ECC errors pending replacement (the device's next reset replaces them)"
        ) && g.line.contains("450 W avg of 600 W limit"),
        "{}",
        g.line
    );
    assert!(!g.line.contains("single-bit"), "{}", g.line);
    assert!(g.read.contains(&"pending_rows".to_string()), "{:?}", g.read);
    // Nothing pending: utilization and power alone judge nothing.
    let h = analyze(&input(vec![
        series("habanalabs_utilization", &l, |_| Some(88.0)),
        series("habanalabs_power_mW", &l, |_| Some(450_000.0)),
        series(
            "habanalabs_pending_rows_with_double_bit_ecc_errors",
            &l,
            |_| Some(0.0),
        ),
    ]));
    assert_eq!(h.gpus[0].verdict, Verdict::Unknown, "{}", h.gpus[0].line);
}

#[test]
fn hostile_labels_are_cleaned_and_bounded_and_too_many_gpus_are_counted() {
    let evil = format!("\u{1b}[31mGPU\n{}\u{202e}", "x".repeat(100_000));
    let l = [
        ("gpu", evil.as_str()),
        ("modelName", evil.as_str()),
        ("UUID", "GPU-\u{0}1"),
    ];
    let h = analyze(&input(vec![series("DCGM_FI_DEV_GPU_UTIL", &l, |_| {
        Some(f64::NAN)
    })]));
    assert!(h.gpus.is_empty(), "NaN is no reading");
    let h = analyze(&input(vec![series("DCGM_FI_DEV_GPU_UTIL", &l, |_| {
        Some(50.0)
    })]));
    let g = &h.gpus[0];
    for s in [
        &g.gpu,
        g.model.as_ref().unwrap(),
        g.uuid.as_ref().unwrap(),
        &g.line,
    ] {
        assert!(
            !s.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{s:?}"
        );
    }
    assert!(g.gpu.chars().count() <= input::MAX_LABEL_CHARS);
    assert!(g.line.len() < 400, "{}", g.line.len());

    let many: Vec<RawSeries> = (0..500)
        .map(|i| {
            series("DCGM_FI_DEV_GPU_UTIL", &[("gpu", &i.to_string())], |_| {
                Some(1.0)
            })
        })
        .collect();
    let h = analyze(&input(many));
    assert_eq!(h.gpus.len(), input::MAX_GPUS);
    assert!(h.left_out[0].starts_with("436 GPUs"), "{:?}", h.left_out);
    // Points outside the window, and a mask that is no integer, are dropped rather than misread.
    let mut s = series("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", &labels("0"), |_| {
        Some(0.5)
    });
    s.points.push((1e300, 64.0));
    s.points.push((-5.0, 64.0));
    let h = analyze(&input(vec![s]));
    assert!(h.gpus[0].throttle.is_empty());
}

#[test]
fn the_answer_does_not_grow_with_the_node_or_the_window() {
    // Bursty throttling on every GPU: episodes are bounded per GPU.
    let mut all = Vec::new();
    for g in 0..8u32 {
        let gs = g.to_string();
        all.push(series(
            "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
            &labels(&gs),
            |k| Some(if k % 4 == 0 { 8.0 } else { 0.0 }),
        ));
    }
    let h = analyze(&input(all));
    for g in &h.gpus {
        assert_eq!(g.throttle_episodes.len(), gpu::MAX_EPISODES);
        assert_eq!(
            g.throttle_episodes_left_out as usize,
            181 - gpu::MAX_EPISODES
        );
    }
    let json = serde_json::to_string(&h).unwrap();
    assert!(json.len() < 24_000, "{}", json.len());
}

/// Every catalog Xid read from the kernel log (the findings `analyze_xid_errors` lists and health, describe
/// and watch carry) and from dcgm-exporter's last-Xid gauge (`get_gpu_history`) gets one judgment: the same
/// title, and the same severity and action; where the gauge's code alone leaves the line's detail or burst
/// unknown, the history says so and is never softer (Xid 48 and 154 once read warning there).
#[test]
fn an_xid_reads_alike_from_the_kernel_log_and_the_exporters_gauge() {
    use crate::facts::{KernelLogFacts, NodeFacts, Reading};
    use crate::kernel_log::nvidia_catalog;
    for e in nvidia_catalog::entries() {
        let code = e.code;
        let facts = NodeFacts {
            kernel_log: Reading::Ok(KernelLogFacts {
                origin: "simulated".into(),
                lines: vec![format!(
                    "NVRM: Xid (PCI:0000:3b:00): {code}, pid=1234, name=python, Ch 00000008"
                )],
                truncated: false,
            }),
            ..Default::default()
        };
        let r = crate::kernel_log::report::analyze(&facts, &Default::default());
        let want = format!("xid.{code}");
        let Some(f) = r.findings.iter().find(|f| f.code == want) else {
            panic!("Xid {code}: no {want} finding in {:?}", r.findings);
        };
        let h = analyze(&input(vec![series(
            "DCGM_FI_DEV_XID_ERRORS",
            &labels("0"),
            move |k| Some(if k >= 10 { code as f64 } else { 0.0 }),
        )]));
        let x = &h.gpus[0].xids[0];
        assert!(!x.before_window);
        assert!(
            f.summary.starts_with(&x.title),
            "Xid {code}: the kernel log calls it {:?}, the history {:?}",
            f.summary,
            x.title
        );
        let (log, gauge) = ((f.severity, f.action.kind), (x.severity, x.action));
        assert!(
            gauge >= log,
            "Xid {code}: the history says {gauge:?}, softer than the kernel log's {log:?}"
        );
        if gauge != log {
            assert!(
                x.meaning.contains("does not tell"),
                "Xid {code}: the history says {gauge:?} where the kernel log says {log:?} without saying what it does not know: {}",
                x.meaning
            );
        }
    }
}
