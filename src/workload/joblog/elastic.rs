//! torch elastic's `ChildFailedError` table: the `Root Cause (first observed failure):` block, read row by
//! row across lines.

use super::line::digits_after;
use super::signature::Signature;

/// torch elastic's `Root Cause (first observed failure):` block, read row by row.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ElasticBlock {
    /// Rows left to read after the header (0 = not inside a block).
    left: u8,
    rank: Option<u32>,
    host: Option<String>,
    exitcode: Option<i32>,
    time: Option<String>,
}

impl ElasticBlock {
    /// Feed one line; returns the root cause when its block ends.
    pub fn feed(&mut self, s: &str) -> Option<Signature> {
        if s.contains("Root Cause (first observed failure)") {
            *self = ElasticBlock {
                left: 12,
                ..Default::default()
            };
            return None;
        }
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let row = |key: &str| -> Option<&str> {
            let t = s.trim_start();
            let rest = t.strip_prefix(key)?.trim_start().strip_prefix(':')?;
            Some(rest.trim())
        };
        if let Some(v) = row("time") {
            self.time = Some(v.chars().take(40).collect());
        } else if let Some(v) = row("host") {
            self.host = Some(v.chars().take(253).collect());
        } else if let Some(v) = row("rank") {
            self.rank = digits_after(v, "");
        } else if let Some(v) = row("exitcode") {
            self.exitcode = digits_after(v, "");
        }
        let done = s.trim_start().starts_with("=====") || s.trim_start().starts_with("traceback");
        if done || self.left == 0 {
            self.left = 0;
            return Some(Signature::ElasticRootCause {
                rank: self.rank,
                host: self.host.take(),
                exitcode: self.exitcode,
                time: self.time.take(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::joblog::{PodLogScan, scan};

    #[test]
    fn elastic_root_cause_block() {
        let text = "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n\
            ============================================================\n\
            train.py FAILED\n\
            ------------------------------------------------------------\n\
            Root Cause (first observed failure):\n\
            [0]:\n\
            \x20 time      : 2026-11-22_10:04:55\n\
            \x20 host      : trainer-worker-5\n\
            \x20 rank      : 41 (local_rank: 1)\n\
            \x20 exitcode  : -6 (pid: 2210)\n\
            \x20 error_file: <N/A>\n\
            \x20 traceback : Signal 6 (SIGABRT) received by PID 2210\n\
            ============================================================\n";
        let mut scan_ = PodLogScan::default();
        scan(text, None, &mut scan_);
        let f = scan_.first_fault.expect("root cause");
        assert_eq!(
            f.signature,
            Signature::ElasticRootCause {
                rank: Some(41),
                host: Some("trainer-worker-5".into()),
                exitcode: Some(-6),
                time: Some("2026-11-22_10:04:55".into())
            }
        );
    }
}
