use super::*;
use crate::facts::{
    ClockFacts, FieldError, FieldErrorKind, GpuFacts, Reading, ThermalFacts, UtilizationFacts,
};
use crate::finding::{ActionKind, Finding, Severity};

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
        verdict(&gpu(Reading::Ok(0), 55, 97, 1755)).starts_with("Clocks unrestricted (healthy)")
    );
}
