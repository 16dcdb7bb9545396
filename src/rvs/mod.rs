//! Active diagnostics on idle AMD GPUs through AMD's own test runner, the ROCm Validation Suite (`rvs`):
//! what a run asks for (`request.rs`: levels and named recipes, deadlines, rvs's argv), the run's own
//! recipe narrowed to the approved GPUs (`recipe.rs`), how rvs's JSON result file reads (`parse.rs`), and
//! the run's report (`report.rs`: a GPU passes only when every action ran on it passed). The idle-first selection is DCGM's
//! (`crate::dcgm::select::select_for` with the AMD vendor): a GPU a pod, a DRA claim or a process holds is
//! never passed to rvs. node-probe's `rvs-diag` runs rvs and reads the node; all it decides is here, pure.
//!
//! Facts and sources: ../shared/reference/amd-gpus.md section 6 ("Test runner"); ROCm/ROCmValidationSuite
//! `docs/cli.md` (`-c`, `-j [path]`), `src/gpu_util.cpp:824-834` (`-i` is read as indexes when every
//! value is below the GPU count: never used here, `recipe.rs`), `src/rvsliblogger.cpp` and each
//! module's JSON records (`parse.rs`); ROCm/device-metrics-exporter
//! `pkg/testrunner/rvs.go` (AMD's runner: `rvs -c <dir>/<recipe>.conf [-i ids] -j`, results per module,
//! action and GPU, `"pass": "true"|"false"`; RVS of ROCm 7.1.1 appends stray `}` to the file).

pub mod parse;
pub mod recipe;
pub mod report;
pub mod request;

pub use report::{RvsDiagReport, RvsInput};

/// The `node-probe` subcommand.
pub const COMMAND: &str = "rvs-diag";
