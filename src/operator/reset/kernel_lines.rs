//! The kernel's own lines since a reset began, for every vendor's verification: the records of the log read
//! after the reset that the log read before it did not have, as text. A record a process wrote into
//! `/dev/kmsg` is no driver's line: the kernel stamps it with the writer's facility (user, 1, unless it
//! chose another), where the kernel's own records carry facility 0 (`pri = facility * 8 + level`,
//! Documentation/ABI/testing/dev-kmsg; kernel/printk/printk.c `devkmsg_write`). So anyone who can write
//! to `/dev/kmsg` cannot forge a "reset succeeded".

use std::collections::BTreeSet;

use crate::facts::KernelLogFacts;
use crate::kernel_log::grammar::unescape_kmsg;

/// A kmsg record's sequence number (`pri,seq,usec,flags;text`).
fn kmsg_seq(line: &str) -> Option<u64> {
    let (head, _) = line.split_once(';')?;
    head.split(',').nth(1)?.parse().ok()
}

/// The records of `after` that `before` did not have: by kmsg sequence number, else by content.
fn new_records<'a>(before: Option<&KernelLogFacts>, after: &'a KernelLogFacts) -> Vec<&'a str> {
    let last = before.and_then(|b| b.lines.iter().filter_map(|l| kmsg_seq(l)).max());
    let seen: BTreeSet<&str> = before
        .map(|b| b.lines.iter().map(String::as_str).collect())
        .unwrap_or_default();
    after
        .lines
        .iter()
        .map(String::as_str)
        .filter(|l| match (last, kmsg_seq(l)) {
            (Some(last), Some(s)) => s > last,
            _ => !seen.contains(l),
        })
        .collect()
}

/// The kernel's own lines new since `before`, unescaped: kmsg records of facility kernel (0) only; a line
/// that is no kmsg record (a log file's) as it is.
pub(super) fn since(before: Option<&KernelLogFacts>, after: &KernelLogFacts) -> Vec<String> {
    new_records(before, after)
        .into_iter()
        .filter_map(|raw| match raw.split_once(';') {
            Some((head, text)) if kmsg_seq(raw).is_some() => {
                let pri: u32 = head.split(',').next()?.parse().ok()?;
                (pri < 8).then(|| unescape_kmsg(text))
            }
            _ => Some(raw.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> KernelLogFacts {
        KernelLogFacts {
            origin: "kmsg".into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            truncated: false,
        }
    }

    /// Only what came after the last record read before, and of those only the kernel's: a record a
    /// process wrote (facility user: priority 14 for level 6; or any facility it set, here daemon's 30)
    /// is dropped; escapes are undone; a text log's lines are taken as they are.
    #[test]
    fn the_kernels_new_records_only() {
        let before = log(&["6,10,100,-;old line"]);
        let after = log(&[
            "6,10,100,-;old line",
            r"6,11,200,-;amdgpu 0000:0c:00.0: amdgpu: GPU reset\x20succeeded",
            "14,12,300,-;amdgpu 0000:0c:00.0: amdgpu: GPU reset(2) succeeded!",
            "30,13,400,-;habanalabs hl0: Successfully finished resetting the 0000:33:00.0 device",
            "3,14,500,c;neuron:nr_reset_thread_fn: nd3: reset request 4294967295 completed",
        ]);
        assert_eq!(
            since(Some(&before), &after),
            [
                "amdgpu 0000:0c:00.0: amdgpu: GPU reset succeeded",
                "neuron:nr_reset_thread_fn: nd3: reset request 4294967295 completed",
            ]
        );
        let text = log(&["[  5.0] old", "[  6.0] habanalabs hl0: new"]);
        assert_eq!(
            since(Some(&log(&["[  5.0] old"])), &text),
            ["[  6.0] habanalabs hl0: new"]
        );
    }
}
