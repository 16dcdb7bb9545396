//! Kernel log readers: `{host-root}/dev/kmsg` (non-blocking, up to EAGAIN) or a log file.

use std::path::Path;

use gpu_diag::contract::{ErrorKind, ProbeError};
use gpu_diag::facts::{FieldError, FieldErrorKind, KernelLogFacts, Reading};

pub fn read_log_file(path: &Path) -> Result<Reading<KernelLogFacts>, ProbeError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ProbeError::new(
            ErrorKind::Io,
            format!("cannot read log file {}: {e}", path.display()),
        )
    })?;
    Ok(Reading::Ok(KernelLogFacts {
        origin: format!("file:{}", path.display()),
        lines: text.lines().map(str::to_string).collect(),
        truncated: false,
    }))
}

pub fn read_kmsg(_host_root: &Path) -> Reading<KernelLogFacts> {
    Reading::Err(FieldError::with_message(
        FieldErrorKind::NotCollected,
        "kmsg reader not implemented yet",
    ))
}
