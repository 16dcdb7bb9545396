//! One pod's log fed through the grammar a line at a time: counts, the ranks and their devices, the
//! transport, the lowest timed-out collective and the first few events, in bounded memory.

use serde::{Deserialize, Serialize};

use super::classify;
use super::elastic::ElasticBlock;
use super::line::{bounded, split_timestamp};
use super::nccl::nccl_bus_id;
use super::pytorch::line_rank;
use super::signature::{NcclProblem, Signature, Transport};

/// Events kept per pod (the first ones; the rest are counted).
pub const EVENTS_KEPT: usize = 6;
/// Characters of a log line kept as evidence.
pub const EXCERPT: usize = 200;

/// A rank's device as NCCL's init line names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RankDevice {
    pub rank: u32,
    /// NVML's index inside the container (the host's index only when the container sees every GPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_dev: Option<u32>,
    /// The PCI address (`dddd:bb:dd.f`), which names the GPU on the host whatever the container sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
}

/// One recognised line with its time and an excerpt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `previous` when the line is from the container's previous run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub signature: Signature,
    pub line: String,
}

impl LogEvent {
    /// A root cause rather than a consequence: this rank's own failure, not waiting on or losing a peer.
    pub fn is_own_fault(&self) -> bool {
        matches!(
            self.signature,
            Signature::CudaError { .. }
                | Signature::ElasticRootCause { .. }
                | Signature::Nccl {
                    problem: NcclProblem::IbCompletion { .. } | NcclProblem::SystemError
                }
        )
    }
}

/// What one pod's log says, bounded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PodLogScan {
    pub lines: u64,
    pub bytes: u64,
    /// The ranks this pod's processes hold (from NCCL's init lines or PyTorch's `[Rank N]`), up to 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<u32>,
    /// Each rank's device, from NCCL's init lines (up to 16).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_devices: Vec<RankDevice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nics: Option<String>,
    /// The lowest collective sequence number this pod's ranks timed out on, with op, timeout and time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out_at: Option<String>,
    /// The lowest `last completed NCCL work` reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<u64>,
    /// The first recognised events (the own faults first kept, up to [`EVENTS_KEPT`]).
    pub events: Vec<LogEvent>,
    pub events_not_kept: u64,
    /// The first of this pod's own faults (see [`LogEvent::is_own_fault`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fault: Option<LogEvent>,
    /// PyTorch's watchdog said it takes the process down (`To avoid data inconsistency, we are taking the
    /// entire process down.`, ProcessGroupNCCL.cpp): the SIGABRT that follows is its own doing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub watchdog_abort: bool,
    #[serde(skip)]
    elastic: ElasticBlock,
}

impl PodLogScan {
    /// Feed one raw line (with or without the API server's timestamp); `source` labels where it came from.
    pub fn feed(&mut self, raw: &str, source: Option<&str>) {
        self.lines += 1;
        self.bytes += raw.len() as u64 + 1;
        let (time, s) = split_timestamp(bounded(raw));
        if s.contains("taking the entire process down") {
            self.watchdog_abort = true;
        }
        let sig = self.elastic.feed(s).or_else(|| classify(s));
        if let Some(r) = line_rank(s) {
            self.add_rank(r);
        }
        let Some(sig) = sig else { return };
        match &sig {
            Signature::WatchdogTimeout {
                seq,
                op,
                timeout_ms,
                ..
            } if self.timed_out_seq.is_none_or(|s| *seq < s) => {
                self.timed_out_seq = Some(*seq);
                self.timed_out_op = Some(op.clone());
                self.timeout_ms = *timeout_ms;
                self.timed_out_at = time.map(String::from);
            }
            Signature::WorkProgress {
                last_completed: Some(c),
                ..
            } => {
                self.last_completed = Some(self.last_completed.map_or(*c, |x| x.min(*c)));
            }
            Signature::NcclTransport { transport, nics } => {
                // `Using network` is the choice; a device list only fills in when no choice was seen.
                if nics.is_none() || self.transport.is_none() {
                    self.transport = Some(*transport);
                }
                if nics.is_some() && self.nics.is_none() {
                    self.nics = nics.clone();
                }
                return;
            }
            Signature::NcclRankDevice {
                rank,
                nvml_dev,
                bus_id,
                ..
            } => {
                self.add_rank(*rank);
                if self.rank_devices.len() < 16
                    && !self.rank_devices.iter().any(|d| d.rank == *rank)
                {
                    self.rank_devices.push(RankDevice {
                        rank: *rank,
                        nvml_dev: *nvml_dev,
                        pci_bus_id: bus_id.as_deref().and_then(nccl_bus_id),
                    });
                }
                return;
            }
            _ => {}
        }
        let event = LogEvent {
            time: time.map(String::from),
            source: source.map(String::from),
            signature: sig,
            line: s.trim().chars().take(EXCERPT).collect(),
        };
        if event.is_own_fault() && self.first_fault.is_none() {
            self.first_fault = Some(event.clone());
        }
        if self.events.len() < EVENTS_KEPT {
            self.events.push(event);
        } else {
            self.events_not_kept += 1;
        }
    }

    fn add_rank(&mut self, r: u32) {
        if self.ranks.len() < 16 && !self.ranks.contains(&r) {
            self.ranks.push(r);
        }
    }

    /// This pod's ranks timed out waiting in a collective (or their watchdog took the process down).
    pub fn waited(&self) -> bool {
        self.timed_out_seq.is_some() || self.watchdog_abort
    }

    /// The device of the rank that faulted (the elastic root cause's rank, or the pod's only rank).
    pub fn device_of_faulting_rank(&self) -> Option<&RankDevice> {
        let rank = self.first_fault.as_ref().and_then(|e| match &e.signature {
            Signature::ElasticRootCause { rank, .. } => *rank,
            _ => None,
        });
        match rank {
            Some(r) => self.rank_devices.iter().find(|d| d.rank == r),
            None if self.rank_devices.len() == 1 => self.rank_devices.first(),
            None => None,
        }
    }
}

/// Scan a whole log text.
pub fn scan(text: &str, source: Option<&str>, into: &mut PodLogScan) {
    for line in text.lines() {
        into.feed(line, source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::joblog::MAX_LINE;

    #[test]
    fn a_scan_keeps_the_lowest_timeout_the_transport_and_the_first_fault() {
        let mut s = PodLogScan::default();
        let lines = [
            "2026-11-22T10:00:00.000000001Z gpu-1:42:42 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB ; OOB eth0:10.4.0.2<0>",
            "2026-11-22T10:00:00.100000000Z gpu-1:42:97 [1] NCCL INFO comm 0x55 rank 9 nranks 16 cudaDev 1 nvmlDev 1 busId 1b000 commId 0x1 - Init COMPLETE",
            "2026-11-22T10:02:00.000000000Z RuntimeError: CUDA error: uncorrectable ECC error encountered",
            "2026-11-22T10:12:00.000000000Z [rank9]:[E] [Rank 9] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=12, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600100 milliseconds before timing out.",
            "2026-11-22T10:12:01.000000000Z [rank9]:[E] [Rank 9] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=11, OpType=ALLGATHER, Timeout(ms)=600000) ran for 600300 milliseconds before timing out.",
        ];
        for l in lines {
            s.feed(l, Some("previous"));
        }
        assert_eq!(s.transport, Some(Transport::Ib));
        assert_eq!(s.ranks, [9]);
        let dev = RankDevice {
            rank: 9,
            nvml_dev: Some(1),
            pci_bus_id: Some("0000:1b:00.0".into()),
        };
        assert_eq!(s.rank_devices, std::slice::from_ref(&dev));
        assert_eq!(s.device_of_faulting_rank(), Some(&dev));
        assert_eq!(
            nccl_bus_id("1b000"),
            crate::pci::normalize_bus_id("00000000:1B:00.0")
        );
        assert_eq!(
            (s.timed_out_seq, s.timed_out_op.as_deref()),
            (Some(11), Some("ALLGATHER"))
        );
        let f = s.first_fault.as_ref().unwrap();
        assert_eq!(f.time.as_deref(), Some("2026-11-22T10:02:00.000000000Z"));
        assert_eq!(f.source.as_deref(), Some("previous"));
        assert_eq!(s.events.len(), 3);
        assert_eq!(s.lines, 5);
        assert!(s.waited() && !s.watchdog_abort);
        s.feed(
            "[rank9]:[E1122 10:12:01.000000 ProcessGroupNCCL.cpp:1837] [PG ID 0 PG GUID 0(default_pg) Rank 9] To \
             avoid data inconsistency, we are taking the entire process down.",
            None,
        );
        assert!(s.watchdog_abort);
    }

    #[test]
    fn hostile_lines_are_bounded_and_linear() {
        // 4 MiB on one line of repeated near-matches: cut to MAX_LINE, read once.
        let hostile = "SeqNum=9".repeat(512 * 1024) + "collective operation timeout";
        let t = std::time::Instant::now();
        let mut s = PodLogScan::default();
        for _ in 0..64 {
            s.feed(&hostile, None);
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            s.timed_out_seq, None,
            "the cut line no longer holds the match"
        );
        let many = "[rank1]: NCCL WARN x\n".repeat(100_000);
        scan(&many, None, &mut s);
        assert_eq!(s.events.len(), EVENTS_KEPT);
        assert!(s.events_not_kept > 90_000);
        assert!(bounded(&"é".repeat(5000)).len() <= MAX_LINE);
    }
}
