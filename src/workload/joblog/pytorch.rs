//! PyTorch's lines: the global rank a line names, and `ProcessGroupNCCL`'s watchdog timeout and work
//! progress (`torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp`).

use super::line::{digits_after, word_after};
use super::signature::Signature;

/// The global rank a PyTorch line names: `[Rank 3]`, `[PG ID 0 PG GUID 0(default_pg) Rank 3]` or the
/// `[rank3]:` prefix PyTorch puts before its C++ log lines.
pub fn line_rank(s: &str) -> Option<u32> {
    if let Some(i) = s.find("[rank")
        && let Some(r) = digits_after::<u32>(&s[i..], "[rank")
    {
        return Some(r);
    }
    let i = s.find(" Rank ").or_else(|| s.find("[Rank "))?;
    digits_after(&s[i..], "Rank ")
}

/// `Watchdog caught collective operation timeout: WorkNCCL(SeqNum=…, OpType=…, …, Timeout(ms)=…) ran for …
/// milliseconds before timing out.`
pub fn watchdog_timeout(s: &str) -> Option<Signature> {
    let at = s.find("collective operation timeout")?;
    let work = &s[at..];
    Some(Signature::WatchdogTimeout {
        rank: line_rank(&s[..at]),
        op: word_after(work, "OpType=").unwrap_or("unknown").to_string(),
        seq: digits_after(work, "SeqNum=")?,
        timeout_ms: digits_after(work, "Timeout(ms)="),
        elapsed_ms: digits_after(work, "ran for "),
    })
}

/// `Timeout at NCCL work: N, last enqueued NCCL work: N, last completed NCCL work: N.`
pub fn work_progress(s: &str) -> Option<Signature> {
    let at = s.find("last enqueued NCCL work:")?;
    Some(Signature::WorkProgress {
        rank: line_rank(&s[..at]),
        last_enqueued: digits_after(&s[at..], "last enqueued NCCL work:"),
        last_completed: digits_after(&s[at..], "last completed NCCL work:"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_timeout_reads_rank_op_seq_and_times() {
        let l = "[rank12]:[E1122 10:03:11.123456 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID 0(default_pg) Rank 12] \
                 Watchdog caught collective operation timeout: WorkNCCL(SeqNum=4711, OpType=ALLREDUCE, \
                 NumelIn=1048576, NumelOut=1048576, Timeout(ms)=600000) ran for 600042 milliseconds before timing out.";
        assert_eq!(
            watchdog_timeout(l),
            Some(Signature::WatchdogTimeout {
                rank: Some(12),
                op: "ALLREDUCE".into(),
                seq: 4711,
                timeout_ms: Some(600000),
                elapsed_ms: Some(600042),
            })
        );
        let old = "[Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=BROADCAST, \
                   Timeout(ms)=1800000) ran for 1800510 milliseconds before timing out.";
        let Some(Signature::WatchdogTimeout { rank, op, seq, .. }) = watchdog_timeout(old) else {
            panic!()
        };
        assert_eq!((rank, op.as_str(), seq), (Some(3), "BROADCAST", 9));
        assert_eq!(
            watchdog_timeout("collective operation timeout: no work"),
            None
        );
    }

    #[test]
    fn work_progress_reads_enqueued_and_completed() {
        let l = "[rank5]:[E ProcessGroupNCCL.cpp:1600] [PG 0 Rank 5] Timeout at NCCL work: 88, last enqueued \
                 NCCL work: 88, last completed NCCL work: 87.";
        assert_eq!(
            work_progress(l),
            Some(Signature::WorkProgress {
                rank: Some(5),
                last_enqueued: Some(88),
                last_completed: Some(87)
            })
        );
    }
}
