//! The one mapping from NVML failures to inline field errors, and from init failures to whole-run errors.

use gpu_diag::contract::{ErrorKind, ProbeError};
use gpu_diag::facts::{FieldError, FieldErrorKind, Reading};
use nvml_wrapper::error::NvmlError;

/// An NVML failure as an inline field error. Every per-field and per-GPU failure goes through here.
pub fn field_error(e: &NvmlError) -> FieldError {
    use FieldErrorKind as K;
    match e {
        NvmlError::NotSupported => FieldError::new(K::NotSupported),
        NvmlError::NoPermission => FieldError::new(K::NoPermission),
        NvmlError::GpuLost => FieldError::new(K::GpuIsLost),
        // A symbol the driver's library lacks (older driver) and NVML's own "function not found".
        NvmlError::FailedToLoadSymbol(m) => {
            FieldError::with_message(K::FunctionNotFound, symbol_message(m))
        }
        NvmlError::FunctionNotFound => FieldError::new(K::FunctionNotFound),
        NvmlError::Timeout => FieldError::new(K::Timeout),
        NvmlError::NotFound => FieldError::with_message(K::NotFound, e.to_string()),
        NvmlError::UnexpectedVariant(code) => {
            FieldError::with_message(K::Unknown, format!("NVML returned unknown code {code}"))
        }
        other => FieldError::with_message(K::Unknown, other.to_string()),
    }
}

/// dlsym's "PATH: undefined symbol: NAME" without the path, which every missing field would repeat.
fn symbol_message(m: &str) -> String {
    match m.rsplit_once("undefined symbol: ") {
        Some((_, name)) => format!("{name} is not in this driver's NVML library"),
        None => m.to_string(),
    }
}

/// Shorthand: a wrapper result as a reading.
pub fn reading<T>(r: Result<T, NvmlError>) -> Reading<T> {
    match r {
        Ok(v) => Reading::Ok(v),
        Err(e) => Reading::Err(field_error(&e)),
    }
}

/// Where the collector looked for the library, for the hint of a whole-run failure.
pub struct LoadAttempt {
    pub path: String,
    pub error: String,
}

/// No library could be loaded at all.
pub fn library_not_found(attempts: &[LoadAttempt]) -> ProbeError {
    let tried: Vec<String> = attempts
        .iter()
        .map(|a| format!("{} ({})", a.path, a.error))
        .collect();
    ProbeError::new(
        ErrorKind::NvmlUnavailable,
        format!(
            "cannot load the NVIDIA management library (libnvidia-ml.so.1); tried: {}",
            tried.join("; ")
        ),
    )
    .hint(
        "run on a node with the NVIDIA driver installed: in a pod use runtimeClassName: nvidia (the \
         container toolkit injects the library) or mount the host root at /host; a driver root the \
         list above lacks is named with --driver-root DIR (a host path, e.g. the GPU Operator's \
         hostPaths.driverInstallDir), a single library with --nvml-lib PATH; use --simulate NAME for a \
         simulated node",
    )
}

/// `nvmlInit` failed with a library that did load.
pub fn init_failed(path: &str, e: &NvmlError) -> ProbeError {
    match e {
        NvmlError::NoPermission => ProbeError::new(
            ErrorKind::PermissionDenied,
            format!("NVML ({path}) refused to initialise: no permission to talk to the driver"),
        )
        .hint(
            "run as root or in a privileged pod with access to /dev/nvidiactl and /dev/nvidia*",
        ),
        NvmlError::DriverNotLoaded => ProbeError::new(
            ErrorKind::NvmlUnavailable,
            format!("NVML ({path}): the NVIDIA kernel driver is not loaded"),
        )
        .hint(
            "load the driver (`lsmod | grep nvidia`, `modprobe nvidia`) or check the GPU Operator's \
             driver pod; in a container, make /dev/nvidia* visible (privileged or runtimeClassName: nvidia)",
        ),
        NvmlError::LibRmVersionMismatch => ProbeError::new(
            ErrorKind::NvmlUnavailable,
            format!(
                "NVML ({path}): the library and the loaded kernel module are different driver versions"
            ),
        )
        .hint(
            "the driver was upgraded without a reboot: the running kernel module is the old version; \
             drain the node and reboot it (or reload the nvidia modules); if the probe loaded a \
             container's library, point --nvml-lib at the host driver's libnvidia-ml.so.1",
        ),
        NvmlError::FailedToLoadSymbol(m) => ProbeError::new(
            ErrorKind::NvmlUnavailable,
            format!("{path} is not a usable NVML library: {m}"),
        )
        .hint("point --nvml-lib at the driver's libnvidia-ml.so.1"),
        other => ProbeError::new(
            ErrorKind::NvmlUnavailable,
            format!("NVML ({path}) failed to initialise: {other}"),
        )
        .hint("check the driver with `nvidia-smi` on the node; `dmesg | grep NVRM` shows driver errors"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_kind() {
        use FieldErrorKind as K;
        let cases = [
            (NvmlError::NotSupported, K::NotSupported),
            (NvmlError::NoPermission, K::NoPermission),
            (NvmlError::GpuLost, K::GpuIsLost),
            (
                NvmlError::FailedToLoadSymbol("x".into()),
                K::FunctionNotFound,
            ),
            (NvmlError::FunctionNotFound, K::FunctionNotFound),
            (NvmlError::Timeout, K::Timeout),
            (NvmlError::Unknown, K::Unknown),
            (NvmlError::UnexpectedVariant(25), K::Unknown),
            (NvmlError::InvalidArg, K::Unknown),
        ];
        for (e, k) in cases {
            assert_eq!(field_error(&e).error, k, "{e:?}");
        }
        assert!(field_error(&NvmlError::Unknown).message.is_some());
        let missing = NvmlError::FailedToLoadSymbol(
            "/usr/lib64/libnvidia-ml.so.1: undefined symbol: nvmlDeviceGetRemappedRows".into(),
        );
        assert_eq!(
            field_error(&missing).message.as_deref(),
            Some("nvmlDeviceGetRemappedRows is not in this driver's NVML library")
        );
        assert!(field_error(&NvmlError::NotSupported).message.is_none());
    }

    #[test]
    fn init_errors_pick_the_exit_kind() {
        assert_eq!(
            init_failed("l", &NvmlError::NoPermission).kind,
            ErrorKind::PermissionDenied
        );
        let mismatch = init_failed("l", &NvmlError::LibRmVersionMismatch);
        assert_eq!(mismatch.kind, ErrorKind::NvmlUnavailable);
        assert!(mismatch.hint.unwrap().contains("without a reboot"));
        assert_eq!(
            init_failed("l", &NvmlError::DriverNotLoaded).kind,
            ErrorKind::NvmlUnavailable
        );
    }
}
