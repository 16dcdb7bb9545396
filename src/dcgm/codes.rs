//! DCGM's failure reasons (`DCGM_FR_*`) as data: `dcgm-fr.csv` holds ids 0–132 with their names (without the
//! `DCGM_FR_` prefix), severity and category, read from NVIDIA/DCGM `dcgmlib/dcgm_errors.h` (the enum) and
//! `dcgmlib/src/dcgm_errors.c` (`dcgmErrorMeta`, one `DCGM_ERROR_TABLE_ENTRY(code, severity, category)` per
//! id) at tag v4.6.0 (72fa3fe). An id at or past the table's end (a newer DCGM) has severity UNKNOWN, as
//! DCGM's own `dcgmErrorGetPriorityByCode` answers for ids past its sentinel.

use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The table exactly as shipped next to this file.
pub const CSV: &str = include_str!("dcgm-fr.csv");

/// Where the table comes from, for answers that cite it.
pub const SOURCE: &str =
    "NVIDIA/DCGM dcgmlib/dcgm_errors.h and dcgmlib/src/dcgm_errors.c (dcgmErrorMeta), v4.6.0";

/// `dcgmErrorSeverity_t` (dcgm_errors.h): what DCGM says a finding asks of the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DcgmSeverity {
    /// 0: no error.
    None,
    /// 1: the GPU can run work, but should be watched.
    Monitor,
    /// 2: the GPU cannot run work and should be isolated.
    Isolate,
    /// 3: the code is not recognized (also every id DCGM's table does not know).
    Unknown,
    /// 4: should be triaged.
    Triage,
    /// 5: can be configured away (persistence mode, a disabled test).
    Config,
    /// 6: drain and reset the GPU.
    Reset,
}

impl DcgmSeverity {
    /// The enum's number as dcgmi prints it in `error_severity`.
    pub fn from_number(n: i64) -> DcgmSeverity {
        match n {
            0 => DcgmSeverity::None,
            1 => DcgmSeverity::Monitor,
            2 => DcgmSeverity::Isolate,
            4 => DcgmSeverity::Triage,
            5 => DcgmSeverity::Config,
            6 => DcgmSeverity::Reset,
            _ => DcgmSeverity::Unknown,
        }
    }

    fn from_name(s: &str) -> DcgmSeverity {
        match s {
            "NONE" => DcgmSeverity::None,
            "MONITOR" => DcgmSeverity::Monitor,
            "ISOLATE" => DcgmSeverity::Isolate,
            "TRIAGE" => DcgmSeverity::Triage,
            "CONFIG" => DcgmSeverity::Config,
            "RESET" => DcgmSeverity::Reset,
            _ => DcgmSeverity::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DcgmSeverity::None => "none",
            DcgmSeverity::Monitor => "monitor",
            DcgmSeverity::Isolate => "isolate",
            DcgmSeverity::Unknown => "unknown",
            DcgmSeverity::Triage => "triage",
            DcgmSeverity::Config => "config",
            DcgmSeverity::Reset => "reset",
        }
    }
}

/// `dcgmErrorCategory_t` names (`DCGM_FR_EC_*` without the prefix, lower case): `hardware_memory`,
/// `hardware_pcie`, `software_config`, ...
pub fn category_name(n: i64) -> &'static str {
    const NAMES: [&str; 17] = [
        "none",
        "perf_threshold",
        "perf_violation",
        "software_config",
        "software_library",
        "software_xid",
        "software_cuda",
        "software_eud",
        "software_other",
        "hardware_thermal",
        "hardware_memory",
        "hardware_nvlink",
        "hardware_nvswitch",
        "hardware_pcie",
        "hardware_power",
        "hardware_other",
        "internal_other",
    ];
    usize::try_from(n)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("unknown")
}

/// One `DCGM_FR_*` id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReason {
    pub id: u32,
    /// `FAULTY_MEMORY` (the enum's name without `DCGM_FR_`).
    pub name: String,
    pub severity: DcgmSeverity,
    /// `hardware_memory`, ...
    pub category: String,
}

static TABLE: LazyLock<Vec<FailureReason>> = LazyLock::new(|| {
    CSV.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            FailureReason {
                id: f[0].parse().expect("dcgm-fr.csv: id"),
                name: f[1].to_string(),
                severity: DcgmSeverity::from_name(f[2]),
                category: f[3].to_ascii_lowercase(),
            }
        })
        .collect()
});

/// The reason with this id, `None` for an id past the table (a DCGM newer than 4.6).
pub fn reason(id: u32) -> Option<&'static FailureReason> {
    TABLE.get(id as usize).filter(|r| r.id == id)
}

/// Its severity by DCGM's table; UNKNOWN for an id the table does not know.
pub fn severity(id: u32) -> DcgmSeverity {
    reason(id).map_or(DcgmSeverity::Unknown, |r| r.severity)
}

/// `DCGM_FR_FAULTY_MEMORY`, or `DCGM_FR_<id>` for an id the table does not know.
pub fn full_name(id: u32) -> String {
    match reason(id) {
        Some(r) => format!("DCGM_FR_{}", r.name),
        None => format!("DCGM_FR_{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_id_of_dcgm_4_6_in_order() {
        assert_eq!(TABLE.len(), 133);
        for (i, r) in TABLE.iter().enumerate() {
            assert_eq!(r.id as usize, i, "{r:?}");
            assert!(
                !r.name.is_empty()
                    && r.name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }

    #[test]
    fn severities_as_the_reference_lists_them() {
        // ../shared/reference/dcgm.md, section 4 (read from dcgm_errors.c v4.6.0).
        for (id, name, sev) in [
            (3, "PCI_REPLAY_RATE", DcgmSeverity::Isolate),
            (5, "VOLATILE_SBE_DETECTED", DcgmSeverity::Monitor),
            (6, "PENDING_PAGE_RETIREMENTS", DcgmSeverity::Reset),
            (25, "GRAPHICS_PROCESSES", DcgmSeverity::Reset),
            (29, "PERSISTENCE_MODE", DcgmSeverity::Config),
            (30, "LOW_BANDWIDTH", DcgmSeverity::Triage),
            (46, "PCIE_WIDTH", DcgmSeverity::Config),
            (48, "TEST_DISABLED", DcgmSeverity::Config),
            (52, "FAULTY_MEMORY", DcgmSeverity::Isolate),
            (80, "ROW_REMAP_FAILURE", DcgmSeverity::Reset),
            (120, "FALLEN_OFF_BUS", DcgmSeverity::Isolate),
            (132, "UNCORRECTABLE_ROW_REMAP_LIMIT", DcgmSeverity::Triage),
        ] {
            let r = reason(id).unwrap();
            assert_eq!((r.name.as_str(), r.severity), (name, sev));
        }
        assert_eq!(reason(52).unwrap().category, "hardware_memory");
        assert_eq!(reason(30).unwrap().category, "hardware_pcie");
    }

    #[test]
    fn an_id_past_the_table_is_unknown() {
        assert_eq!(reason(133), None);
        assert_eq!(severity(4000), DcgmSeverity::Unknown);
        assert_eq!(full_name(200), "DCGM_FR_200");
        assert_eq!(full_name(52), "DCGM_FR_FAULTY_MEMORY");
        assert_eq!(DcgmSeverity::from_number(9), DcgmSeverity::Unknown);
        assert_eq!(category_name(-1), "unknown");
        assert_eq!(category_name(13), "hardware_pcie");
    }
}
