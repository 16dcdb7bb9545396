//! `node-probe evidence`: what a node's evidence archive holds and how it travels.
//!
//! Wire format: the archive (a gzip'd tar whose first member is `index.json`) travels inside the one
//! JSON document node-probe prints, base64 in `archive_base64`, so stdout stays one unambiguous
//! document over every transport (local, exec, the early-exec stream) and a cut stream is a JSON
//! error, never a silently short archive. The raw archive is bounded by `MAX_ARCHIVE_BYTES`, which
//! base64 keeps under the launcher's 16 MiB stdout cap.

use serde::{Deserialize, Serialize};

/// The `node-probe` subcommand.
pub const COMMAND: &str = "evidence";

/// The archive's upper bound (raw bytes). 4/3 of it plus the report stays below the launcher's
/// 16 MiB stdout cap; `nvidia-bug-report.log.gz` is typically a few MB (less in safe mode).
pub const MAX_ARCHIVE_BYTES: usize = 11 << 20;

/// Default and bounds of `--time-limit` (seconds) for `nvidia-bug-report.sh`: the script takes tens
/// of seconds on a healthy node; the default leaves the rest of the launcher's 120 s probe deadline
/// for the probe's own collection and the transfer.
pub const DEFAULT_TIME_LIMIT_SECS: u64 = 60;
pub const MAX_TIME_LIMIT_SECS: u64 = 600;

/// The member name of the index inside the archive.
pub const INDEX_NAME: &str = "index.json";

/// `node-probe evidence`: the archive and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvidenceReport {
    /// What the archive holds (also its `index.json`).
    pub index: EvidenceIndex,
    /// The archive, `tar.gz`, base64 (standard alphabet, padded).
    pub archive_base64: String,
}

/// The archive's `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvidenceIndex {
    /// Format of this index (`k8s-gpu-mcp-evidence/1`).
    pub format: String,
    pub node: Option<String>,
    /// Unix time the collection started.
    pub collected_at_unix: f64,
    pub bug_report: BugReport,
    /// Every other member of the archive, in order.
    pub members: Vec<Member>,
    /// What could not be collected, one sentence each.
    pub notes: Vec<String>,
}

/// How `nvidia-bug-report.sh` went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BugReport {
    /// `collected`, `absent` (no script on the node), `timed_out`, `failed`, `too_large`.
    pub status: String,
    /// Where the script was found, as the host sees it (`/usr/bin/...`, or under the driver root).
    pub script: Option<String>,
    /// How it ran (argv, with the chroot when there was one).
    pub argv: Vec<String>,
    pub exit_code: Option<i32>,
    pub time_limit_secs: u64,
    pub elapsed_ms: u64,
    /// The member holding its output (`nvidia-bug-report.log.gz`, or `.log` without gzip), if any.
    pub member: Option<String>,
    /// The last lines of its stdout/stderr, for a failure or a cut.
    pub output_tail: String,
    /// One sentence: what happened.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    pub name: String,
    pub bytes: u64,
    pub description: String,
}

/// The status word for how the script ended.
pub fn bug_report_status(
    found: bool,
    timed_out: bool,
    exit_ok: bool,
    output: bool,
) -> &'static str {
    match (found, timed_out, exit_ok && output) {
        (false, _, _) => "absent",
        (true, true, _) => "timed_out",
        (true, false, true) => "collected",
        (true, false, false) => "failed",
    }
}

/// Keep the last `max` bytes of a text, cut at a char boundary.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        assert_eq!(bug_report_status(false, false, false, false), "absent");
        assert_eq!(bug_report_status(true, true, false, false), "timed_out");
        assert_eq!(bug_report_status(true, true, true, true), "timed_out");
        assert_eq!(bug_report_status(true, false, true, true), "collected");
        assert_eq!(bug_report_status(true, false, true, false), "failed");
        assert_eq!(bug_report_status(true, false, false, true), "failed");
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "...def");
        let t = tail("ééé", 3);
        assert!(t.ends_with('é') && t.len() <= 6, "{t}");
    }

    #[test]
    fn the_archive_bound_fits_the_launchers_stdout_cap_in_base64() {
        assert!(MAX_ARCHIVE_BYTES.div_ceil(3) * 4 + (1 << 20) < 16 << 20);
    }
}
