//! What a recognised line says: the [`Signature`] of each family of lines, with the kinds an NCCL problem,
//! a transport and a CUDA error come in.

use serde::{Deserialize, Serialize};

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
