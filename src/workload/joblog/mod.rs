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
//!
//! One file per family of lines: `signature.rs` (what a recognised line says: [`Signature`] and its kinds),
//! `line.rs` (a raw line bounded, the API server's timestamp split off, the field readers), `pytorch.rs`
//! (`ProcessGroupNCCL`'s rank prefix, watchdog timeout and work progress), `nccl.rs` (NCCL's warnings, error
//! strings and init lines, and its `busId`), `cuda.rs` (the CUDA runtime's errors), `hang.rs` (the hang
//! notices), `elastic.rs` (torch elastic's root-cause block, read row by row) and `scan.rs` (one pod's log
//! through them all, bounded: [`PodLogScan`]). This file puts the single-line signatures in order
//! ([`classify`]).

mod cuda;
mod elastic;
mod hang;
mod line;
mod nccl;
mod pytorch;
mod scan;
mod signature;

pub use cuda::cuda_error;
pub use elastic::ElasticBlock;
pub use hang::hang_notice;
pub use line::{MAX_LINE, bounded, split_timestamp};
pub use nccl::{nccl_bus_id, nccl_problem, nccl_rank_device, nccl_transport};
pub use pytorch::{line_rank, watchdog_timeout, work_progress};
pub use scan::{EVENTS_KEPT, EXCERPT, LogEvent, PodLogScan, RankDevice, scan};
pub use signature::{CudaErrorKind, NcclProblem, Signature, Transport};

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
