//! The runner abstraction: "run `node-probe <argv>` on node X and give me its JSON".
//!
//! Tools never know which runner they use. The local runner starts node-probe as a child process; the
//! Kubernetes runner (`crate::probe::kube`) starts a probe pod on the node and execs node-probe in it.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gpu_diag::contract::{ContractError, ProbeDocument};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use super::exec_result::Lines;
use crate::cluster::pressure::Pressure;

/// One probe run.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// Target node name (`local` in local mode).
    pub node: String,
    /// Arguments after the `node-probe` program name, e.g. `["health"]`, ending with the launcher's
    /// `--driver-root DIR` when it has one (`Config::probe_args_suffix`). The runner adds
    /// `--node-name <node>` and whatever its environment needs (`--simulate` in local mode).
    pub args: Vec<String>,
    /// The MCP tool that asked, for labels, logs and audit.
    pub tool: String,
    /// Kubeconfig context to use (None: the launcher's default).
    pub context: Option<String>,
    /// Deadline for the whole run, start to cleanup.
    pub timeout: Duration,
    /// The many-node call this run belongs to ([`Runner::batch`]); default: none.
    pub batch: Batch,
    /// What the probe's image must carry besides node-probe.
    pub image: ImageNeed,
    /// A streamed run (`watch --stream`): each line of stdout before the document, as it arrives. The
    /// runner then reads stdout as lines, the last the document (`contract::parse_streamed`).
    pub lines: Option<Lines>,
}

/// What a run needs in the probe's image besides node-probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ImageNeed {
    /// Any base node-probe runs in.
    #[default]
    Any,
    /// NVIDIA's DCGM (`dcgmi`, nvvs and the diagnostic plugins): node-probe's `dcgm-diag`. The pod runner
    /// copies node-probe into NVIDIA's DCGM image; the local runner finds `dcgmi` on the host.
    Dcgm,
    /// AMD's ROCm Validation Suite (`rvs` and its recipes): node-probe's `rvs-diag`. The pod runner copies
    /// node-probe into AMD's test runner image (`rocm/test-runner`) where the node lists it by digest, and
    /// starts no pod where it does not; the local runner finds `rvs` on the host.
    Rvs,
}

impl ImageNeed {
    /// A diagnostic run (DCGM's or RVS's): minutes long, its pod lives to the run's own deadline, and a
    /// cancelled one stops in order before its pod goes. The file where node-probe keeps its PID for that
    /// stop (`--pid-file`, the one path the exec admission policy admits for each).
    pub fn diagnostic_pid_file(self) -> Option<&'static str> {
        match self {
            ImageNeed::Any => None,
            ImageNeed::Dcgm => Some(super::stop_first::PID_FILE),
            ImageNeed::Rvs => Some(super::stop_first::RVS_PID_FILE),
        }
    }
}

/// The runs of one call on many nodes, sharing what they can: the pod runner watches all of their pods with
/// one watch and reads their nodes with one list. Opaque to tools; the default shares nothing.
#[derive(Clone, Default)]
pub struct Batch {
    shared: Option<Arc<dyn Any + Send + Sync>>,
    pressure: Option<Arc<Pressure>>,
}

impl Batch {
    pub fn new(shared: Arc<dyn Any + Send + Sync>, pressure: Option<Arc<Pressure>>) -> Self {
        Batch {
            shared: Some(shared),
            pressure,
        }
    }

    /// The runner's own shared state, when this batch is that runner's.
    pub fn shared<T: Any>(&self) -> Option<&T> {
        self.shared.as_deref()?.downcast_ref()
    }

    /// The push-back of the API server the batch talks to: a fan-out starts fewer runs while it lasts.
    pub fn pressure(&self) -> Option<Arc<Pressure>> {
        self.pressure.clone()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.shared.is_some() {
            "Batch(shared)"
        } else {
            "Batch(none)"
        })
    }
}

/// The phases a run reports through [`ProgressSink`] and in its timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Creating the probe (pod create, or child spawn).
    StartingProbe,
    /// Waiting for the probe pod to run.
    WaitingForProbe,
    /// node-probe is running.
    Probing,
    /// Removing the probe.
    CleaningUp,
    Done,
}

/// How long one phase took.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct PhaseTiming {
    pub phase: Phase,
    pub millis: u64,
}

/// A successful run: the parsed contract document (which may itself be a probe-side failure document).
#[derive(Debug, Clone)]
pub struct ProbeOutput {
    pub document: ProbeDocument,
    /// Exit status of node-probe.
    pub exit_code: i32,
    pub timings: Vec<PhaseTiming>,
    /// Where it ran: `local`, or the probe pod's namespace/name.
    pub ran_in: String,
}

/// Why no document came back. Every variant says what happened in words an SRE can act on.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("node `{0}` does not exist in the cluster")]
    NodeNotFound(String),
    #[error("node `{node}` is not ready ({reason}); a probe cannot run there")]
    NodeNotReady { node: String, reason: String },
    #[error("probe pod on `{node}` never started: {reason}")]
    ProbeNotStarted { node: String, reason: String },
    #[error("could not run node-probe: {0}")]
    Exec(String),
    #[error("node-probe on `{node}` did not finish within {secs} s")]
    Timeout { node: String, secs: u64 },
    #[error("the call was cancelled")]
    Cancelled,
    /// Cancelled, and the run node-probe had started (DCGM's diagnostic) could not be seen to stop before
    /// its pod went: an engine outside the pod may still run it.
    #[error(
        "the call was cancelled; node-probe's run on `{node}` could not be seen to stop: {why}"
    )]
    CancelledUnstopped { node: String, why: String },
    #[error(
        "node-probe on `{node}` exited with status {exit_code} and unusable output ({error}); stderr: {stderr_tail}"
    )]
    BadOutput {
        node: String,
        exit_code: i32,
        error: ContractError,
        stderr_tail: String,
    },
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// Admission (Pod Security) refused the probe; the message names the namespace and the fix.
    #[error("refused by admission: {0}")]
    PolicyDenied(String),
    #[error("{0}")]
    Other(String),
}

/// Receives phase changes of a run (to turn into MCP progress notifications).
pub type ProgressSink = Arc<dyn Fn(Phase) + Send + Sync>;

pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<ProbeOutput, RunError>> + Send + 'a>>;

/// Runs node-probe somewhere. Implementations must clean up (kill the child, delete the pod) on every
/// path, including when `cancel` fires, before their future completes.
pub trait Runner: Send + Sync {
    fn run<'a>(
        &'a self,
        req: ProbeRequest,
        progress: ProgressSink,
        cancel: CancellationToken,
    ) -> RunFuture<'a>;

    /// What the runs of one call on `nodes` (in `context`) may share; pass it in each [`ProbeRequest`] and
    /// drop it when the call ends. Default: nothing.
    fn batch(&self, _context: Option<&str>, _nodes: &[String]) -> Batch {
        Batch::default()
    }

    /// Wait for cleanups that outlived their calls (e.g. a pod delete after cancellation) to finish.
    /// Called before the process exits.
    fn shutdown<'a>(&'a self) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
}
