//! hwmon of an amdgpu GPU (`<pci dev>/hwmon/hwmon*/`, `pm/amdgpu_pm.c` "DOC: hwmon"): temperatures in
//! millidegrees, named by `temp<N>_label` (`edge`, `junction`, `mem`; MI300-class GPUs have no edge),
//! with `_crit` (the slowdown point) and `_emergency` (shutdown); power in microwatts (`power1_average`
//! or `power1_input`) and its cap (`power1_cap`, `_cap_default`, `_cap_max`); clocks in Hz
//! (`freq1_input` gfx, `freq2_input` memory).

use gpu_diag::facts::{FieldError, FieldErrorKind, PowerFacts, Reading, ThermalFacts};

use crate::host::files::HostFiles;

pub struct Hwmon {
    pub thermal: ThermalFacts,
    pub power: PowerFacts,
    pub edge_temp_c: Reading<u32>,
    pub gfx_mhz: Reading<u32>,
    pub mem_mhz: Reading<u32>,
}

pub fn read(files: HostFiles<'_>, dir: &str) -> Hwmon {
    let hw = match files.names(format!("{dir}/hwmon")).map(|names| {
        names
            .into_iter()
            .find(|n| n.starts_with("hwmon"))
            .map(|n| format!("{dir}/hwmon/{n}"))
    }) {
        Ok(Some(hw)) => hw,
        Ok(None) => {
            return none(FieldError::with_message(
                FieldErrorKind::NotFound,
                "no hwmon",
            ));
        }
        Err(e) => return none(e),
    };
    // Which temp<N> is which: by label, else the driver's fixed order (1 edge, 2 junction, 3 mem).
    let sensor = |label: &str, default: u32| -> u32 {
        (1..=3)
            .find(|i| {
                files
                    .line(format!("{hw}/temp{i}_label"))
                    .is_ok_and(|l| l == label)
            })
            .unwrap_or(default)
    };
    let milli = |file: String, div: u64| -> Reading<u32> {
        match files.parse::<i64>(&file) {
            Reading::Ok(v) => u32::try_from(v.max(0) as u64 / div)
                .map(Reading::Ok)
                .unwrap_or_else(|_| {
                    Reading::Err(FieldError::with_message(
                        FieldErrorKind::Unknown,
                        format!("{file}: {v} is out of range"),
                    ))
                }),
            Reading::Err(e) => Reading::Err(e),
        }
    };
    let (edge, junction, mem) = (sensor("edge", 1), sensor("junction", 2), sensor("mem", 3));
    let temp = |i: u32, what: &str| milli(format!("{hw}/temp{i}_{what}"), 1000);
    let power_now = match milli(format!("{hw}/power1_average"), 1000) {
        Reading::Err(e) if e.error == FieldErrorKind::NotFound => {
            milli(format!("{hw}/power1_input"), 1000)
        }
        r => r,
    };
    Hwmon {
        thermal: ThermalFacts {
            gpu_temp_c: temp(junction, "input"),
            memory_temp_c: temp(mem, "input"),
            shutdown_threshold_c: temp(junction, "emergency"),
            slowdown_threshold_c: temp(junction, "crit"),
            gpu_max_threshold_c: Reading::not_supported(),
            memory_max_threshold_c: temp(mem, "crit"),
        },
        power: PowerFacts {
            usage_mw: power_now,
            enforced_limit_mw: milli(format!("{hw}/power1_cap"), 1000),
            default_limit_mw: milli(format!("{hw}/power1_cap_default"), 1000),
            max_limit_mw: milli(format!("{hw}/power1_cap_max"), 1000),
        },
        edge_temp_c: temp(edge, "input"),
        gfx_mhz: milli(format!("{hw}/freq1_input"), 1_000_000),
        mem_mhz: milli(format!("{hw}/freq2_input"), 1_000_000),
    }
}

fn none(e: FieldError) -> Hwmon {
    let r = || Reading::Err(e.clone());
    Hwmon {
        thermal: ThermalFacts {
            gpu_temp_c: r(),
            memory_temp_c: r(),
            shutdown_threshold_c: r(),
            slowdown_threshold_c: r(),
            gpu_max_threshold_c: r(),
            memory_max_threshold_c: r(),
        },
        power: PowerFacts {
            usage_mw: r(),
            enforced_limit_mw: r(),
            default_limit_mw: r(),
            max_limit_mw: r(),
        },
        edge_temp_c: r(),
        gfx_mhz: r(),
        mem_mhz: r(),
    }
}
