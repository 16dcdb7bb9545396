//! The grammar of what a distributed training job's ranks print when they fail or hang: PyTorch's
//! `ProcessGroupNCCL` watchdog, NCCL's `WARN` and init lines, `torch.distributed.elastic`'s root cause, CUDA
//! runtime errors and the common hang notices. One pure function per signature; [`PodLogScan`] feeds a pod's
//! log through them one line at a time and keeps only counts and the first few events, so a log of any size
//! costs linear time and bounded memory.
//!
//! The formats are the public ones: PyTorch's `torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp` (the
//! watchdog's `Watchdog caught collective operation timeout: WorkNCCL(SeqNum=…, OpType=…, …, Timeout(ms)=…)
//! ran for … milliseconds before timing out.` and `Timeout at NCCL work: …, last enqueued NCCL work: …, last
//! completed NCCL work: …`), NCCL's debug lines (`host:pid:tid [cudaDev] NCCL WARN|INFO …`, `NCCL_DEBUG=INFO`
//! init lines `NET/IB : Using [0]mlx5_0:1/IB …`, `Using network IB|Socket`, `comm 0x… rank R nranks N cudaDev
//! C nvmlDev D busId B … Init COMPLETE`), the error strings of `ncclGetErrorString` (`unhandled system error`,
//! `remote process exited or there was a network error`), torch elastic's `ChildFailedError` table
//! (`Root Cause (first observed failure):` then `time`, `host`, `rank`, `exitcode` rows) and the CUDA runtime's
//! `cudaGetErrorString` texts.

use serde::{Deserialize, Serialize};

/// Longer lines are cut here before they are read: a hostile or broken log line cannot cost more.
pub const MAX_LINE: usize = 2048;
/// Events kept per pod (the first ones; the rest are counted).
pub const EVENTS_KEPT: usize = 6;
/// Characters of a log line kept as evidence.
pub const EXCERPT: usize = 200;

/// The collective transport NCCL chose.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Ib,
    Socket,
    Other,
}

/// A CUDA runtime error class.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CudaErrorKind {
    IllegalAddress,
    EccUncorrectable,
    LaunchFailure,
    OutOfMemory,
}

/// What an NCCL warning or error says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NcclProblem {
    /// `remote process exited or there was a network error`: a peer died; this rank is collateral.
    RemoteExited,
    /// `Connection closed by remote peer <addr>`: names the peer.
    ConnectionClosed { peer: Option<String> },
    /// `unhandled system error`.
    SystemError,
    /// `NET/IB : Got completion from peer <addr> with status=N … vendor err V`.
    IbCompletion {
        peer: Option<String>,
        status: Option<u32>,
        vendor_err: Option<u32>,
        /// The rank's own HCA, which NCCL names at the end of the line (` hca mlx5_3`, NCCL 2.19 and
        /// later: `net_ib.cc`), to join with the port the probe read on that rank's node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hca: Option<String>,
    },
    /// Any other `NCCL WARN`.
    Other,
}

/// One recognised line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "signature")]
pub enum Signature {
    /// The PyTorch NCCL watchdog gave up on a collective.
    WatchdogTimeout {
        rank: Option<u32>,
        op: String,
        seq: u64,
        timeout_ms: Option<u64>,
        elapsed_ms: Option<u64>,
    },
    /// Where a rank's collectives stood when it timed out.
    WorkProgress {
        rank: Option<u32>,
        last_enqueued: Option<u64>,
        last_completed: Option<u64>,
    },
    Nccl {
        problem: NcclProblem,
    },
    /// NCCL's network choice (`Using network X`, or the `NET/X : Using …` device list).
    NcclTransport {
        transport: Transport,
        nics: Option<String>,
    },
    /// A communicator's rank on this process and its device.
    NcclRankDevice {
        rank: u32,
        nranks: Option<u32>,
        nvml_dev: Option<u32>,
        bus_id: Option<String>,
    },
    /// torch elastic's root cause: the first failed rank.
    ElasticRootCause {
        rank: Option<u32>,
        host: Option<String>,
        exitcode: Option<i32>,
        time: Option<String>,
    },
    CudaError {
        error: CudaErrorKind,
    },
    /// A launcher or framework notice that something waits too long (heartbeat monitor, rendezvous, store).
    Hang,
}

/// Cut a line to [`MAX_LINE`] bytes on a character boundary.
pub fn bounded(line: &str) -> &str {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// The RFC 3339 timestamp the API server puts before each line (`timestamps=true`), and the rest.
pub fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    let b = line.as_bytes();
    if b.len() > 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && let Some(sp) = line.find(' ')
        && sp <= 40
    {
        return (Some(&line[..sp]), &line[sp + 1..]);
    }
    (None, line)
}

fn digits_after<T: std::str::FromStr>(s: &str, key: &str) -> Option<T> {
    let at = s.find(key)? + key.len();
    let rest = s[at..].trim_start();
    let end = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

fn word_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let at = s.find(key)? + key.len();
    let rest = s[at..].trim_start();
    let w = rest
        .split(|c: char| c.is_whitespace() || c == ',' || c == ')')
        .next()?;
    (!w.is_empty()).then_some(w)
}

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

/// A `NCCL WARN` line or NCCL's error strings as PyTorch re-raises them (`NCCL error in: …, <string>`).
pub fn nccl_problem(s: &str) -> Option<Signature> {
    let warn = s.find("NCCL WARN").map(|i| &s[i + "NCCL WARN".len()..]);
    let body = warn.unwrap_or(s);
    let problem = if let Some(i) = body.find("Got completion from peer") {
        let rest = &body[i..];
        NcclProblem::IbCompletion {
            peer: word_after(rest, "from peer").map(String::from),
            status: digits_after(rest, "status=").or_else(|| digits_after(rest, "with error ")),
            vendor_err: digits_after(rest, "vendor err"),
            hca: word_after(rest, " hca ").map(String::from),
        }
    } else if let Some(i) = body.find("Connection closed by remote peer") {
        NcclProblem::ConnectionClosed {
            peer: word_after(&body[i..], "remote peer").map(String::from),
        }
    } else if body.contains("remote process exited") {
        NcclProblem::RemoteExited
    } else if body.contains("unhandled system error") {
        NcclProblem::SystemError
    } else if warn.is_some() {
        NcclProblem::Other
    } else {
        return None;
    };
    Some(Signature::Nccl { problem })
}

/// NCCL's init lines naming the network: `NCCL INFO Using network IB` or `NCCL INFO NET/IB : Using [0]mlx5_0:1/IB
/// …` (and `NET/Socket : Using [0]eth0:…`).
pub fn nccl_transport(s: &str) -> Option<Signature> {
    let of = |name: &str| match name {
        n if n.starts_with("IB") => Transport::Ib,
        n if n.starts_with("Socket") => Transport::Socket,
        _ => Transport::Other,
    };
    if !s.contains("NCCL INFO") {
        return None;
    }
    if let Some(n) = word_after(s, "Using network") {
        return Some(Signature::NcclTransport {
            transport: of(n),
            nics: None,
        });
    }
    let i = s.find("NET/")?;
    let rest = &s[i + 4..];
    let (name, after) = rest.split_once(" : Using")?;
    if name.contains(' ') {
        return None;
    }
    let nics = after.split(" ; ").next().unwrap_or("").trim();
    Some(Signature::NcclTransport {
        transport: of(name),
        nics: (!nics.is_empty()).then(|| nics.chars().take(120).collect()),
    })
}

/// `NCCL INFO … comm 0x… rank R nranks N cudaDev C nvmlDev D busId B … Init COMPLETE`, and the same fields
/// on the `… - Init START` line NCCL prints when a communicator begins (NVIDIA/nccl `src/init.cc`: `"%s comm
/// %p rank %d nranks %d cudaDev %d nvmlDev %d busId %lx commId 0x%llx - Init START"`), so a rank that died
/// during init still names its GPU. Older NCCL prints no `nvmlDev` (`comm %p rank %d nranks %d cudaDev %d
/// busId %lx … - Init COMPLETE`).
pub fn nccl_rank_device(s: &str) -> Option<Signature> {
    if !s.contains("NCCL INFO") || !(s.contains("Init COMPLETE") || s.contains("Init START")) {
        return None;
    }
    Some(Signature::NcclRankDevice {
        rank: digits_after(s, " rank ")?,
        nranks: digits_after(s, " nranks "),
        nvml_dev: digits_after(s, " nvmlDev "),
        bus_id: word_after(s, " busId ").map(String::from),
    })
}

/// The CUDA runtime's error strings (`cudaGetErrorString`) and PyTorch's out-of-memory error.
pub fn cuda_error(s: &str) -> Option<Signature> {
    let error = if s.contains("uncorrectable ECC error encountered") {
        CudaErrorKind::EccUncorrectable
    } else if s.contains("an illegal memory access was encountered")
        || s.contains("an illegal instruction was encountered")
    {
        CudaErrorKind::IllegalAddress
    } else if s.contains("unspecified launch failure") {
        CudaErrorKind::LaunchFailure
    } else if s.contains("CUDA out of memory") || s.contains("CUDA error: out of memory") {
        CudaErrorKind::OutOfMemory
    } else {
        return None;
    };
    Some(Signature::CudaError { error })
}

/// Hang notices: PyTorch's heartbeat monitor, the elastic rendezvous and store timeouts, NCCL's own.
pub fn hang_notice(s: &str) -> Option<Signature> {
    const NOTICES: &[&str] = &[
        "Heartbeat monitor timed out",
        "RendezvousTimeoutError",
        "Socket Timeout",
        "Timed out waiting for",
        "watchdog thread terminated",
        "NCCL communicator was aborted",
    ];
    NOTICES
        .iter()
        .any(|n| s.contains(n))
        .then_some(Signature::Hang)
}

/// Every single-line signature, most specific first.
pub fn classify(s: &str) -> Option<Signature> {
    watchdog_timeout(s)
        .or_else(|| work_progress(s))
        .or_else(|| cuda_error(s))
        .or_else(|| nccl_rank_device(s))
        .or_else(|| nccl_transport(s))
        .or_else(|| nccl_problem(s))
        .or_else(|| hang_notice(s))
}

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

/// NCCL's `busId` (the PCI address's hex digits without separators, e.g. `1b000` for `0000:1b:00.0`) in the
/// canonical form of [`crate::pci::normalize_bus_id`].
pub fn nccl_bus_id(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 12 {
        return None;
    }
    let v = u64::from_str_radix(raw, 16).ok()?;
    Some(format!(
        "{:04x}:{:02x}:{:02x}.{:x}",
        v >> 20,
        (v >> 12) & 0xff,
        (v >> 4) & 0xff,
        v & 0xf
    ))
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

    #[test]
    fn nccl_warnings_are_told_apart() {
        let p = |l: &str| match nccl_problem(l) {
            Some(Signature::Nccl { problem }) => problem,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with status=12 \
               opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.9 remoteGid ::ffff:10.4.0.17"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(12),
                vendor_err: Some(129),
                hca: None,
            }
        );
        // NCCL 2.19 and later end the line with the rank's own HCA.
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with status=12 \
               opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.4.0.9 remoteGid ::ffff:10.4.0.17 hca mlx5_3"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(12),
                vendor_err: Some(129),
                hca: Some("mlx5_3".into()),
            }
        );
        assert_eq!(
            p(
                "gpu-7:211:305 [2] NCCL WARN NET/IB : Got completion from peer 10.4.0.17<50113> with error 5, \
               opcode 0, len 0, vendor err 249"
            ),
            NcclProblem::IbCompletion {
                peer: Some("10.4.0.17<50113>".into()),
                status: Some(5),
                vendor_err: Some(249),
                hca: None,
            }
        );
        assert_eq!(
            p("gpu-2:88:90 [0] NCCL WARN Net : Connection closed by remote peer 10.4.1.3<41862>"),
            NcclProblem::ConnectionClosed {
                peer: Some("10.4.1.3<41862>".into())
            }
        );
        assert_eq!(
            p(
                "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, remote process \
               exited or there was a network error, NCCL version 2.21.5"
            ),
            NcclProblem::RemoteExited
        );
        assert_eq!(
            p(
                "RuntimeError: NCCL error in: ../ProcessGroupNCCL.cpp:1269, unhandled system error (run with \
               NCCL_DEBUG=INFO for details), NCCL version 2.18.1"
            ),
            NcclProblem::SystemError
        );
        assert_eq!(
            p("h:1:2 [0] NCCL WARN Cuda failure 'invalid argument'"),
            NcclProblem::Other
        );
        assert_eq!(nccl_problem("NCCL INFO Bootstrap : Using eth0"), None);
    }

    #[test]
    fn transport_and_rank_device_from_init_lines() {
        assert_eq!(
            nccl_transport(
                "gpu-1:42:42 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_3:1/IB ; OOB eth0:10.4.0.2<0>"
            ),
            Some(Signature::NcclTransport {
                transport: Transport::Ib,
                nics: Some("[0]mlx5_0:1/IB [1]mlx5_3:1/IB".into())
            })
        );
        assert_eq!(
            nccl_transport("gpu-1:42:42 [0] NCCL INFO NET/Socket : Using [0]eth0:10.4.0.2<0>"),
            Some(Signature::NcclTransport {
                transport: Transport::Socket,
                nics: Some("[0]eth0:10.4.0.2<0>".into())
            })
        );
        assert_eq!(
            nccl_transport("gpu-1:42:42 [0] NCCL INFO Using network Socket"),
            Some(Signature::NcclTransport {
                transport: Transport::Socket,
                nics: None
            })
        );
        assert_eq!(
            nccl_rank_device(
                "gpu-1:42:97 [3] NCCL INFO comm 0x5581c0a0 rank 27 nranks 64 cudaDev 3 nvmlDev 3 busId 5d000 \
                 commId 0x9c1e2a4b7f00aa11 - Init COMPLETE"
            ),
            Some(Signature::NcclRankDevice {
                rank: 27,
                nranks: Some(64),
                nvml_dev: Some(3),
                bus_id: Some("5d000".into())
            })
        );
        assert_eq!(
            nccl_rank_device("NCCL INFO comm 0x1 rank 2 nranks 4 - Init START"),
            Some(Signature::NcclRankDevice {
                rank: 2,
                nranks: Some(4),
                nvml_dev: None,
                bus_id: None
            })
        );
        // The line a communicator starts with names the device too (NVIDIA/nccl src/init.cc), so a rank
        // that never completed init still names its GPU.
        assert_eq!(
            nccl_rank_device(
                "train-4:41:41 [0] NCCL INFO ncclCommInitRank comm 0x55d04000 rank 4 nranks 8 cudaDev 0 nvmlDev 0 \
                 busId 9a000 commId 0x3f6a91c0d25e7b14 - Init START"
            ),
            Some(Signature::NcclRankDevice {
                rank: 4,
                nranks: Some(8),
                nvml_dev: Some(0),
                bus_id: Some("9a000".into())
            })
        );
        assert_eq!(
            nccl_rank_device("h:1:2 [0] NCCL INFO Channel 00/02 :    0   1   2   3"),
            None
        );
    }

    #[test]
    fn cuda_errors_and_hangs() {
        let k = |l: &str| match cuda_error(l) {
            Some(Signature::CudaError { error }) => error,
            o => panic!("{o:?}"),
        };
        assert_eq!(
            k("RuntimeError: CUDA error: uncorrectable ECC error encountered"),
            CudaErrorKind::EccUncorrectable
        );
        assert_eq!(
            k("torch.AcceleratorError: CUDA error: an illegal memory access was encountered"),
            CudaErrorKind::IllegalAddress
        );
        assert_eq!(
            k("RuntimeError: CUDA error: unspecified launch failure"),
            CudaErrorKind::LaunchFailure
        );
        assert_eq!(
            k(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB"
            ),
            CudaErrorKind::OutOfMemory
        );
        assert_eq!(cuda_error("all good"), None);
        assert_eq!(
            hang_notice(
                "[rank0]:[E ProcessGroupNCCL.cpp:1400] [PG 0 Rank 0] Heartbeat monitor timed out! Process will be terminated after dumping debug info."
            ),
            Some(Signature::Hang)
        );
        assert_eq!(
            hang_notice("torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError"),
            Some(Signature::Hang)
        );
    }

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
