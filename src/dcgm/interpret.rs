//! One result judged: pass, warn, fail or skip, with its `DCGM_FR_*` messages.
//!
//! dcgmi's JSON never prints "Warn": a WARN result is printed `"Fail"`, in 3.x and 4.x alike (NVIDIA/DCGM
//! `dcgmi/Diag.cpp`, asserted by `dcgmi/tests/DiagTests.cpp`, v4.6.0; ../shared/reference/dcgm.md section 3).
//! What tells them apart is each message's DCGM severity (`error_severity`, else DCGM's table by
//! `error_id`, `codes.rs`): the rule here is
//! - a "Fail" whose messages are all MONITOR ("can run, watch") or CONFIG ("can be configured away":
//!   persistence mode off, a test disabled for the SKU) is a **warn**;
//! - a "Fail" with any ISOLATE, RESET or TRIAGE message, or one whose severity is unknown (an id newer than
//!   the table and no severity printed), or with no message at all, is a **fail**;
//! - "Skip" (and a result DCGM did not run) is a **skip**, "Pass" a **pass**.
//!
//! DCGM's own exit status follows the same line for ISOLATE (any ISOLATE error exits −51, `Diag::
//! GetFailureResult`), and NVIDIA describes MONITOR as "can perform workload" and CONFIG as "can be
//! configured" (`dcgmErrorSeverity_t`, `dcgmlib/dcgm_errors.h`).

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::codes::{self, DcgmSeverity};
use super::parse::{PrintedStatus, PrintedWarning};

/// A test's outcome on one GPU.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Skip,
    Pass,
    Warn,
    Fail,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Skip => "skip",
            Outcome::Pass => "pass",
            Outcome::Warn => "warn",
            Outcome::Fail => "fail",
        }
    }
}

/// One DCGM message, with its failure reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiagMessage {
    /// `DCGM_FR_FAULTY_MEMORY`; absent where DCGM gave no id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    pub severity: DcgmSeverity,
    /// DCGM's category (`hardware_memory`, `hardware_pcie`, ...).
    pub category: String,
    pub text: String,
    /// Measured figures the text gives (`9.8 GB/s`, `231 W`), at most four.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<String>,
}

impl DiagMessage {
    pub fn from_printed(w: &PrintedWarning) -> DiagMessage {
        let table = w.error_id.and_then(codes::reason);
        let severity = match w.error_severity {
            Some(n) if DcgmSeverity::from_number(n) != DcgmSeverity::Unknown => {
                DcgmSeverity::from_number(n)
            }
            _ => w.error_id.map_or(DcgmSeverity::Unknown, codes::severity),
        };
        let category = match w.error_category {
            Some(n) => codes::category_name(n).to_string(),
            None => table.map_or("unknown".into(), |r| r.category.clone()),
        };
        DiagMessage {
            code: w.error_id.map(codes::full_name),
            id: w.error_id,
            severity,
            category,
            text: w.text.clone(),
            figures: figures(&w.text),
        }
    }

    /// Whether this message makes a "Fail" a failure (rather than a warning).
    pub fn fails(&self) -> bool {
        !matches!(
            self.severity,
            DcgmSeverity::Monitor | DcgmSeverity::Config | DcgmSeverity::None
        )
    }
}

static FIGURE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(-?\d+(?:\.\d+)?)\s*°?((?:GB/s|GiB/s|MB/s|MiB/s|Gbps|GFLOPS|TFLOPS|MHz|MiB|GiB|MB|GB|ms|us|µs|W|C)\b|%)",
    )
    .expect("figure pattern")
});

/// Measured figures in a message: numbers with a unit, at most four.
pub fn figures(text: &str) -> Vec<String> {
    FIGURE
        .captures_iter(text)
        .take(4)
        .map(|c| format!("{} {}", &c[1], &c[2]))
        .collect()
}

/// Judge one result: the rule of this module.
pub fn judge(status: &PrintedStatus, warnings: &[PrintedWarning]) -> (Outcome, Vec<DiagMessage>) {
    let messages: Vec<DiagMessage> = warnings.iter().map(DiagMessage::from_printed).collect();
    let outcome = match status {
        PrintedStatus::Pass => Outcome::Pass,
        PrintedStatus::Skip | PrintedStatus::NotRun => Outcome::Skip,
        PrintedStatus::Warn if messages.iter().all(|m| !m.fails()) => Outcome::Warn,
        PrintedStatus::Fail | PrintedStatus::Warn | PrintedStatus::Other(_) => {
            if !messages.is_empty() && messages.iter().all(|m| !m.fails()) {
                Outcome::Warn
            } else {
                Outcome::Fail
            }
        }
    };
    (outcome, messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: Option<u32>, sev: Option<i64>) -> PrintedWarning {
        PrintedWarning {
            text: "Memory bandwidth 1250.4 GB/s is below the 1600 GB/s floor".into(),
            error_id: id,
            error_category: None,
            error_severity: sev,
        }
    }

    #[test]
    fn a_fail_of_monitor_or_config_severity_is_a_warning() {
        // Persistence mode off: DCGM_FR_PERSISTENCE_MODE, CONFIG.
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(29), Some(5))]).0,
            Outcome::Warn
        );
        // Without error_severity, the table says CONFIG.
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(29), None)]).0,
            Outcome::Warn
        );
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(10), Some(1))]).0,
            Outcome::Warn
        );
    }

    #[test]
    fn isolate_reset_triage_unknown_or_silent_fails() {
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(52), Some(2))]).0,
            Outcome::Fail
        );
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(6), None)]).0,
            Outcome::Fail
        );
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(30), Some(4))]).0,
            Outcome::Fail
        );
        assert_eq!(
            judge(&PrintedStatus::Fail, &[w(Some(900), None)]).0,
            Outcome::Fail
        );
        assert_eq!(judge(&PrintedStatus::Fail, &[]).0, Outcome::Fail);
        // A warning beside a failure: the failure wins.
        assert_eq!(
            judge(
                &PrintedStatus::Fail,
                &[w(Some(29), Some(5)), w(Some(52), Some(2))]
            )
            .0,
            Outcome::Fail
        );
        assert_eq!(
            judge(&PrintedStatus::Skip, &[w(Some(48), None)]).0,
            Outcome::Skip
        );
        assert_eq!(judge(&PrintedStatus::Pass, &[]).0, Outcome::Pass);
    }

    #[test]
    fn messages_carry_the_code_its_severity_and_figures() {
        let (_, m) = judge(&PrintedStatus::Fail, &[w(Some(62), None)]);
        assert_eq!(m[0].code.as_deref(), Some("DCGM_FR_MEMORY_BANDWIDTH"));
        assert_eq!(m[0].severity, DcgmSeverity::Triage);
        assert_eq!(m[0].figures, ["1250.4 GB/s", "1600 GB/s"]);
        assert_eq!(
            figures("GPU 0 drew 231 W, 87°C, 12.5% with 2 waits"),
            ["231 W", "87 C", "12.5 %"]
        );
    }
}
