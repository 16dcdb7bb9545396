//! Calls nvml-wrapper does not wrap (or wraps lossily), made through the library's symbol table.
//!
//! `NvmlLib`'s methods panic when the driver lacks a symbol, so every call here goes through the `Result`
//! field of the symbol (`nvml.lib().nvmlXxx.as_ref()`): an old driver yields `FailedToLoadSymbol`, which the
//! collector reports inline as `function_not_found`.

use std::os::raw::{c_uint, c_ulonglong};

use nvml_wrapper::Nvml;
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_t, nvmlEccSramErrorStatus_v1_t, nvmlGpuFabricInfo_t, nvmlGpuFabricInfo_v2_t,
    nvmlGpuFabricInfoV_t, nvmlMemory_t, nvmlRowRemapperHistogramValues_t,
};

use gpu_diag::facts::{FabricFacts, MemoryFacts, RemappedRowsFacts, RowRemapHistogram};

/// `NVML_ERROR_ARGUMENT_VERSION_MISMATCH`: the driver does not know this struct version.
const ARGUMENT_VERSION_MISMATCH: u32 = 25;

/// Call a symbol from the loaded library's table, or fail with `FailedToLoadSymbol` if it is absent.
macro_rules! raw_call {
    ($nvml:expr, $sym:ident ( $($arg:expr),* $(,)? )) => {{
        match $nvml.lib().$sym.as_ref() {
            // SAFETY: the symbol was resolved from the loaded NVML library with the bindgen signature;
            // every pointer argument points at a live, correctly typed local.
            Ok(f) => nvml_try(unsafe { f($($arg),*) }),
            Err(e) => Err(NvmlError::FailedToLoadSymbol(e.to_string())),
        }
    }};
}

/// `NVML_STRUCT_VERSION(name, ver)`: the struct's size with the version in the top byte.
fn struct_version<T>(ver: u32) -> c_uint {
    (std::mem::size_of::<T>() as u32) | (ver << 24)
}

pub fn remapped_rows(nvml: &Nvml, h: nvmlDevice_t) -> Result<RemappedRowsFacts, NvmlError> {
    let (mut c, mut u, mut p, mut f): (c_uint, c_uint, c_uint, c_uint) = (0, 0, 0, 0);
    raw_call!(
        nvml,
        nvmlDeviceGetRemappedRows(h, &mut c, &mut u, &mut p, &mut f)
    )?;
    Ok(RemappedRowsFacts {
        correctable: c,
        uncorrectable: u,
        pending: p != 0,
        failure: f != 0,
    })
}

pub fn row_remapper_histogram(
    nvml: &Nvml,
    h: nvmlDevice_t,
) -> Result<RowRemapHistogram, NvmlError> {
    let mut v = nvmlRowRemapperHistogramValues_t {
        max: 0,
        high: 0,
        partial: 0,
        low: 0,
        none: 0,
    };
    raw_call!(nvml, nvmlDeviceGetRowRemapperHistogram(h, &mut v))?;
    Ok(RowRemapHistogram {
        max: v.max,
        high: v.high,
        partial: v.partial,
        low: v.low,
        none: v.none,
    })
}

/// Fabric registration (Hopper+ NVSwitch systems): the versioned call (v3, then v2 for older drivers),
/// then the unversioned one.
pub fn fabric_info(nvml: &Nvml, h: nvmlDevice_t) -> Result<FabricFacts, NvmlError> {
    if nvml.lib().nvmlDeviceGetGpuFabricInfoV.is_ok() {
        // SAFETY: plain C struct of integers and byte arrays; all-zero is a valid value.
        let mut v3: nvmlGpuFabricInfoV_t = unsafe { std::mem::zeroed() };
        v3.version = struct_version::<nvmlGpuFabricInfoV_t>(3);
        match raw_call!(nvml, nvmlDeviceGetGpuFabricInfoV(h, &mut v3)) {
            Ok(()) => {
                return Ok(fabric(
                    v3.state,
                    v3.status,
                    v3.cliqueId,
                    &v3.clusterUuid,
                    Some(v3.healthMask),
                ));
            }
            Err(NvmlError::UnexpectedVariant(ARGUMENT_VERSION_MISMATCH)) => {
                // The v2 struct is a prefix of v3: ask again with the v2 size and version.
                let mut v2: nvmlGpuFabricInfoV_t = unsafe { std::mem::zeroed() };
                v2.version = struct_version::<nvmlGpuFabricInfo_v2_t>(2);
                match raw_call!(nvml, nvmlDeviceGetGpuFabricInfoV(h, &mut v2)) {
                    Ok(()) => {
                        return Ok(fabric(
                            v2.state,
                            v2.status,
                            v2.cliqueId,
                            &v2.clusterUuid,
                            Some(v2.healthMask),
                        ));
                    }
                    Err(NvmlError::UnexpectedVariant(ARGUMENT_VERSION_MISMATCH)) => {}
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    let mut v1: nvmlGpuFabricInfo_t = unsafe { std::mem::zeroed() };
    raw_call!(nvml, nvmlDeviceGetGpuFabricInfo(h, &mut v1))?;
    Ok(fabric(
        v1.state,
        v1.status,
        v1.cliqueId,
        &v1.clusterUuid,
        None,
    ))
}

fn fabric(
    state: u8,
    status: u32,
    clique: u32,
    uuid: &[u8; 16],
    health: Option<u32>,
) -> FabricFacts {
    const COMPLETED: u8 = 3;
    let completed = state == COMPLETED;
    FabricFacts {
        state: u32::from(state),
        // NVML: status and the registration results "must be checked only if state returns complete".
        status: completed.then_some(status),
        clique_id: completed.then_some(clique),
        cluster_uuid: (completed && uuid.iter().any(|b| *b != 0)).then(|| format_uuid(uuid)),
        health_mask: health,
    }
}

fn format_uuid(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

pub fn gpu_max_pcie_link_gen(nvml: &Nvml, h: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetGpuMaxPcieLinkGeneration(h, &mut v))?;
    Ok(v)
}

/// The raw clocks-event bitmask, unknown bits included (the wrapper truncates to the bits it knows).
/// Older drivers only have the deprecated `…ThrottleReasons` name for the same call.
pub fn clocks_event_reasons(nvml: &Nvml, h: nvmlDevice_t) -> Result<u64, NvmlError> {
    let mut v: c_ulonglong = 0;
    if nvml.lib().nvmlDeviceGetCurrentClocksEventReasons.is_ok() {
        raw_call!(nvml, nvmlDeviceGetCurrentClocksEventReasons(h, &mut v))?;
    } else {
        raw_call!(nvml, nvmlDeviceGetCurrentClocksThrottleReasons(h, &mut v))?;
    }
    Ok(v)
}

/// Topology level as NVML numbers it (0, 10, 20, 30, 40, 50), unknown values kept.
pub fn common_ancestor(nvml: &Nvml, a: nvmlDevice_t, b: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetTopologyCommonAncestor(a, b, &mut v))?;
    Ok(v)
}

/// P2P status for one capability index (0 read, 1 write, 2 nvlink, 3 atomics).
pub fn p2p_status(
    nvml: &Nvml,
    a: nvmlDevice_t,
    b: nvmlDevice_t,
    index: u32,
) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetP2PStatus(a, b, index, &mut v))?;
    Ok(v)
}

/// `gpu`, `ibmnpu`, `switch` or `unknown` (nvmlIntNvLinkDeviceType_t 0, 1, 2, 0xFF).
pub fn nvlink_remote_device_type(
    nvml: &Nvml,
    h: nvmlDevice_t,
    link: u32,
) -> Result<String, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetNvLinkRemoteDeviceType(h, link, &mut v))?;
    Ok(match v {
        0 => "gpu",
        1 => "ibmnpu",
        2 => "switch",
        _ => "unknown",
    }
    .to_string())
}

/// `nvmlDeviceGetFanSpeed`: the first fan, for libraries that predate `nvmlDeviceGetNumFans`.
pub fn fan_speed_legacy(nvml: &Nvml, h: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetFanSpeed(h, &mut v))?;
    Ok(v)
}

pub fn architecture(nvml: &Nvml, h: nvmlDevice_t) -> Result<String, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetArchitecture(h, &mut v))?;
    Ok(architecture_name(v))
}

pub fn architecture_name(v: u32) -> String {
    match v {
        2 => "Kepler".into(),
        3 => "Maxwell".into(),
        4 => "Pascal".into(),
        5 => "Volta".into(),
        6 => "Turing".into(),
        7 => "Ampere".into(),
        8 => "Ada".into(),
        9 => "Hopper".into(),
        10 => "Blackwell".into(),
        other => format!("unknown({other})"),
    }
}

pub fn compute_mode(nvml: &Nvml, h: nvmlDevice_t) -> Result<String, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetComputeMode(h, &mut v))?;
    Ok(match v {
        0 => "default".into(),
        1 => "exclusive_thread".into(),
        2 => "prohibited".into(),
        3 => "exclusive_process".into(),
        other => format!("unknown({other})"),
    })
}

pub fn performance_state(nvml: &Nvml, h: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetPerformanceState(h, &mut v))?;
    Ok(v)
}

/// `nvmlDeviceGetMemoryInfo` (v1), for drivers that predate the `_v2` call the wrapper makes.
pub fn memory_info_v1(nvml: &Nvml, h: nvmlDevice_t) -> Result<MemoryFacts, NvmlError> {
    let mut m = nvmlMemory_t {
        total: 0,
        free: 0,
        used: 0,
    };
    raw_call!(nvml, nvmlDeviceGetMemoryInfo(h, &mut m))?;
    Ok(MemoryFacts {
        total_bytes: m.total,
        used_bytes: m.used,
        free_bytes: m.free,
    })
}

pub fn sram_threshold_exceeded(nvml: &Nvml, h: nvmlDevice_t) -> Result<bool, NvmlError> {
    // SAFETY: plain C struct of integers; all-zero is a valid value.
    let mut s: nvmlEccSramErrorStatus_v1_t = unsafe { std::mem::zeroed() };
    s.version = struct_version::<nvmlEccSramErrorStatus_v1_t>(1);
    raw_call!(nvml, nvmlDeviceGetSramEccErrorStatus(h, &mut s))?;
    Ok(s.bThresholdExceeded != 0)
}

pub fn gpu_instance_id(nvml: &Nvml, h: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetGpuInstanceId(h, &mut v))?;
    Ok(v)
}

pub fn compute_instance_id(nvml: &Nvml, h: nvmlDevice_t) -> Result<u32, NvmlError> {
    let mut v: c_uint = 0;
    raw_call!(nvml, nvmlDeviceGetComputeInstanceId(h, &mut v))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_versions_match_nvml_h() {
        // nvml.h: nvmlGpuFabricInfo_v3 = NVML_STRUCT_VERSION(GpuFabricInfo, 3), with the bindings' size.
        let v3 = struct_version::<nvmlGpuFabricInfoV_t>(3);
        assert_eq!(v3 >> 24, 3);
        assert_eq!(
            v3 & 0xff_ffff,
            std::mem::size_of::<nvmlGpuFabricInfoV_t>() as u32
        );
        // Layouts the fake library in tests/fake-nvml mirrors.
        assert_eq!(std::mem::size_of::<nvmlGpuFabricInfoV_t>(), 40);
        assert_eq!(std::mem::size_of::<nvmlGpuFabricInfo_v2_t>(), 36);
        assert_eq!(std::mem::size_of::<nvmlEccSramErrorStatus_v1_t>(), 104);
        // The same sizes are _Static_assert-ed in tests/fake-nvml/fake_nvml.c.
        use nvml_wrapper_sys::bindings as b;
        assert_eq!(std::mem::size_of::<b::nvmlPciInfo_t>(), 68);
        assert_eq!(std::mem::size_of::<b::nvmlProcessInfo_t>(), 24);
        assert_eq!(std::mem::size_of::<b::nvmlFieldValue_t>(), 40);
        assert_eq!(std::mem::offset_of!(b::nvmlFieldValue_t, value), 32);
        assert_eq!(std::mem::size_of::<b::nvmlEventData_t>(), 32);
        assert_eq!(std::mem::size_of::<b::nvmlMemory_t>(), 24);
    }

    #[test]
    fn fabric_fields_only_when_completed() {
        let uuid = [0xab; 16];
        let f = fabric(2, 0, 7, &uuid, Some(0));
        assert_eq!((f.state, f.status, f.clique_id), (2, None, None));
        let f = fabric(3, 0, 7, &uuid, Some(1));
        assert_eq!(
            (f.status, f.clique_id, f.health_mask),
            (Some(0), Some(7), Some(1))
        );
        assert_eq!(
            f.cluster_uuid.as_deref(),
            Some("abababab-abab-abab-abab-abababababab")
        );
    }
}
