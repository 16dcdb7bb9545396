//! `dcgmi diag`'s exit status read as what happened to the run.
//!
//! dcgmi's `main()` returns the `dcgmReturn_t`, so the shell sees it truncated to 8 bits, `(256 + code) mod
//! 256` (NVIDIA/DCGM `dcgmi/main_dcgmi.cpp`, `dcgmlib/dcgm_structs.h` v4.6.0; a maintainer confirmed 226 =
//! −30 in NVIDIA/DCGM issue #158). A signal outside a diagnostic ends it with 128 + the signal, an argument
//! error with 254. A run DCGM refused (another diagnostic holds the host engine, an unsupported GPU set) is
//! "not run", never a failure of the GPU (NVSentinel cordoned nodes on `DCGM_ST_IN_USE`, NVIDIA/NVSentinel
//! issue #1363).

use serde::{Deserialize, Serialize};

/// How the run ended, as the exit status says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ExitClass {
    /// 0: every test ran and nothing was found.
    Ok,
    /// −30 `DCGM_ST_NVVS_ERROR` (226) or −51 `DCGM_ST_NVVS_ISOLATE_ERROR` (205): tests ran and found
    /// something (−51: at least one finding of ISOLATE severity). A warning alone also exits 226 in 4.x.
    Findings { isolate: bool },
    /// DCGM did not run the tests; `reason` says why in words.
    Refused { reason: String },
    /// −11 `DCGM_ST_TIMEOUT` (245): dcgmi's own wait ran out.
    Timeout,
    /// −53 `DCGM_ST_NVVS_KILLED` (203) or −66 `DCGM_ST_DIAG_STOPPED` (190): the run was stopped.
    Stopped,
    /// dcgmi ended by a signal (128 + n, or a signal the OS reports).
    Signal { signal: i32 },
    /// −2/−1 (254/255): dcgmi rejected its arguments.
    BadArguments,
    /// Any other `dcgmReturn_t`.
    Error { code: i32, name: String },
}

/// `dcgmReturn_t` names of the codes dcgmi diag returns (dcgm_structs.h v4.6.0).
pub fn return_name(code: i32) -> &'static str {
    match code {
        0 => "DCGM_ST_OK",
        -1 => "DCGM_ST_BADPARAM",
        -2 => "bad arguments",
        -3 => "DCGM_ST_GENERIC_ERROR",
        -5 => "DCGM_ST_NOT_CONFIGURED",
        -6 => "DCGM_ST_NOT_SUPPORTED",
        -7 => "DCGM_ST_INIT_ERROR",
        -8 => "DCGM_ST_NVML_ERROR",
        -11 => "DCGM_ST_TIMEOUT",
        -12 => "DCGM_ST_VER_MISMATCH",
        -14 => "DCGM_ST_NO_DATA",
        -17 => "DCGM_ST_NO_PERMISSION",
        -18 => "DCGM_ST_GPU_IS_LOST",
        -19 => "DCGM_ST_RESET_REQUIRED",
        -21 => "DCGM_ST_CONNECTION_NOT_VALID",
        -22 => "DCGM_ST_GPU_NOT_SUPPORTED",
        -23 => "DCGM_ST_GROUP_INCOMPATIBLE",
        -25 => "DCGM_ST_LIBRARY_NOT_FOUND",
        -29 => "DCGM_ST_REQUIRES_ROOT",
        -30 => "DCGM_ST_NVVS_ERROR",
        -33 => "DCGM_ST_MODULE_NOT_LOADED",
        -34 => "DCGM_ST_IN_USE",
        -35 => "DCGM_ST_GROUP_IS_EMPTY",
        -39 => "DCGM_ST_DIAG_ALREADY_RUNNING",
        -41 => "DCGM_ST_DIAG_BAD_LAUNCH",
        -44 => "DCGM_ST_INSUFFICIENT_DRIVER_VERSION",
        -51 => "DCGM_ST_NVVS_ISOLATE_ERROR",
        -52 => "DCGM_ST_NVVS_BINARY_NOT_FOUND",
        -53 => "DCGM_ST_NVVS_KILLED",
        -54 => "DCGM_ST_PAUSED",
        -56 => "DCGM_ST_NVML_NOT_LOADED",
        -57 => "DCGM_ST_NVML_DRIVER_TIMEOUT",
        -58 => "DCGM_ST_NVVS_NO_AVAILABLE_TEST",
        -66 => "DCGM_ST_DIAG_STOPPED",
        -67 => "DCGM_ST_GPUS_DETACHED",
        _ => "unknown dcgmReturn_t",
    }
}

/// The `dcgmReturn_t` an exit status stands for (254 -> −2).
pub fn return_code(status: u8) -> i32 {
    i32::from(status as i8)
}

/// What an exit status (0–255) says. `signal` is the signal the OS reports when dcgmi itself was killed.
pub fn classify(status: Option<u8>, signal: Option<i32>) -> ExitClass {
    let Some(status) = status else {
        return ExitClass::Signal {
            signal: signal.unwrap_or(0),
        };
    };
    let code = return_code(status);
    let refused = |why: &str| ExitClass::Refused {
        reason: format!("{why} ({}, exit {status})", return_name(code)),
    };
    match status {
        0 => ExitClass::Ok,
        // dcgmReturn_t stops near −70; 129–159 are 128 + a signal as a shell reports it.
        129..=159 => ExitClass::Signal {
            signal: i32::from(status) - 128,
        },
        _ => match code {
            -30 => ExitClass::Findings { isolate: false },
            -51 => ExitClass::Findings { isolate: true },
            -34 | -39 => refused(
                "another diagnostic holds the DCGM host engine; run it again when that one ends",
            ),
            -6 | -22 => refused("DCGM does not support a diagnostic on these GPUs"),
            -23 => refused("the GPUs are not one model; DCGM diagnoses one model per run"),
            -35 => refused("DCGM found none of the requested GPUs"),
            -54 => refused("the DCGM host engine is paused"),
            -52 => refused("DCGM's nvvs binary is missing from this image"),
            -58 => refused("none of the requested tests is available for these GPUs"),
            -14 => refused("DCGM ran no test and returned no results"),
            -17 | -29 => refused("DCGM needs root for the diagnostic"),
            -21 => refused("dcgmi could not reach a DCGM host engine"),
            -44 => refused("the driver is older than this DCGM supports"),
            -11 => ExitClass::Timeout,
            -53 | -66 => ExitClass::Stopped,
            -1 | -2 => ExitClass::BadArguments,
            _ => ExitClass::Error {
                code,
                name: return_name(code).to_string(),
            },
        },
    }
}

/// A start failure's `runtime_error` that is a refusal of the GPU set rather than a broken DCGM: a MIG
/// layout DCGM cannot test (NVIDIA/DCGM `nvvs/src/Gpu.cpp` `IsMigModeDiagCompatible` v4.6.0), no GPU found,
/// GPUs of several models, another diagnostic running. Returns the reason in words.
pub fn refusal_in(runtime_error: &str) -> Option<String> {
    let l = runtime_error.to_ascii_lowercase();
    let table: &[(&str, &str)] = &[
        (
            "mig configuration is incompatible",
            "the GPU's MIG layout cannot be diagnosed (DCGM needs one instance spanning the whole GPU, one GPU per run)",
        ),
        ("mig mode", "DCGM refused the GPUs' MIG configuration"),
        (
            "already running",
            "another diagnostic holds the DCGM host engine",
        ),
        ("in use", "another diagnostic holds the DCGM host engine"),
        ("no gpus", "DCGM found no GPU to test"),
        ("no supported gpus", "DCGM found no GPU it supports"),
        ("not supported", "DCGM does not support these GPUs"),
        (
            "persistence mode",
            "DCGM requires persistence mode on the GPUs",
        ),
        (
            "homogeneous",
            "the GPUs are not one model; DCGM diagnoses one model per run",
        ),
        ("incompatible", "DCGM refused the GPU set as incompatible"),
    ];
    table
        .iter()
        .find(|(k, _)| l.contains(k))
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_statuses_of_the_reference() {
        assert_eq!(classify(Some(0), None), ExitClass::Ok);
        assert_eq!(
            classify(Some(226), None),
            ExitClass::Findings { isolate: false }
        );
        assert_eq!(
            classify(Some(205), None),
            ExitClass::Findings { isolate: true }
        );
        assert!(
            matches!(classify(Some(222), None), ExitClass::Refused { reason } if reason.contains("another diagnostic") && reason.contains("DCGM_ST_IN_USE"))
        );
        assert!(
            matches!(classify(Some(217), None), ExitClass::Refused { reason } if reason.contains("DIAG_ALREADY_RUNNING"))
        );
        assert_eq!(classify(Some(245), None), ExitClass::Timeout);
        assert_eq!(classify(Some(203), None), ExitClass::Stopped);
        assert_eq!(classify(Some(190), None), ExitClass::Stopped);
        assert_eq!(classify(Some(254), None), ExitClass::BadArguments);
        assert_eq!(classify(Some(143), None), ExitClass::Signal { signal: 15 });
        assert_eq!(classify(None, Some(9)), ExitClass::Signal { signal: 9 });
        assert!(matches!(
            classify(Some(204), None),
            ExitClass::Refused { .. }
        ));
        assert!(matches!(
            classify(Some(1), None),
            ExitClass::Error { code: 1, .. }
        ));
        assert_eq!(return_code(226), -30);
    }

    #[test]
    fn refusals_in_runtime_errors() {
        assert!(refusal_in("MIG configuration is incompatible with the diagnostic because it prevents access to the entire GPU.").unwrap().contains("MIG layout"));
        assert!(refusal_in("Error: No GPUs found").is_some());
        assert_eq!(refusal_in("Error: cannot open libcuda.so"), None);
    }
}
