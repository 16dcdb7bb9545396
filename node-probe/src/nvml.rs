//! NVML collector (placeholder until the NVML source lands).

use std::path::Path;

use gpu_diag::contract::{ErrorKind, ProbeError};
use gpu_diag::facts::{NodeFacts, Sections};

use crate::cli::XidArgs;

pub fn collect(
    _host_root: &Path,
    _lib: Option<&Path>,
    _sections: Sections,
    _xid: &XidArgs,
) -> Result<NodeFacts, ProbeError> {
    Err(ProbeError::new(
        ErrorKind::NvmlUnavailable,
        "NVML collection is not implemented yet",
    )
    .hint("use --simulate dgx-h100-healthy to run on a simulated node"))
}
