//! `--watch SECONDS`: register the GPUs for XID (and GPU recovery action) events and wait for them.
//!
//! Raw calls: the wrapper's event types stop at MIG_CONFIG_CHANGE and its event data drops unknown type
//! bits and the MIG instance ids.

use std::os::raw::c_ulonglong;
use std::time::{Duration, Instant};

use gpu_diag::facts::{
    FieldError, FieldErrorKind, NvmlEventFacts, NvmlEventRegistration, NvmlEventsFacts,
};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::{NvmlError, nvml_try};
use nvml_wrapper_sys::bindings::{nvmlDevice_t, nvmlEventData_t, nvmlEventSet_t};

use super::errors::field_error;

/// nvmlEventTypeXidCriticalError.
pub const XID_CRITICAL_ERROR: u64 = 0x8;
/// nvmlEventTypeGpuRecoveryAction (drivers that know it).
pub const GPU_RECOVERY_ACTION: u64 = 0x8000;
/// nvmlEventTypeDoubleBitEccError.
pub const DOUBLE_BIT_ECC: u64 = 0x2;

const WANTED: u64 = XID_CRITICAL_ERROR | GPU_RECOVERY_ACTION | DOUBLE_BIT_ECC;

/// "No instance" in MIG id fields.
const NO_ID: u32 = 0xFFFF_FFFF;

macro_rules! raw_call {
    ($nvml:expr, $sym:ident ( $($arg:expr),* $(,)? )) => {{
        match $nvml.lib().$sym.as_ref() {
            // SAFETY: symbol resolved from the loaded NVML with the bindgen signature; pointer arguments
            // point at live, correctly typed locals.
            Ok(f) => nvml_try(unsafe { f($($arg),*) }),
            Err(e) => Err(NvmlError::FailedToLoadSymbol(e.to_string())),
        }
    }};
}

/// Frees the set on every path.
struct Set<'n> {
    nvml: &'n Nvml,
    set: nvmlEventSet_t,
}

impl Drop for Set<'_> {
    fn drop(&mut self) {
        let _ = raw_call!(self.nvml, nvmlEventSetFree(self.set));
    }
}

pub fn watch(nvml: &Nvml, seconds: u32) -> NvmlEventsFacts {
    let mut out = NvmlEventsFacts {
        watched_seconds: seconds,
        ..NvmlEventsFacts::default()
    };
    let mut raw_set: nvmlEventSet_t = std::ptr::null_mut();
    if let Err(e) = raw_call!(nvml, nvmlEventSetCreate(&mut raw_set)) {
        out.stopped_early = Some(field_error(&e));
        return out;
    }
    let set = Set { nvml, set: raw_set };

    let count = nvml.device_count().unwrap_or(0);
    let mut handles: Vec<(u32, nvmlDevice_t)> = Vec::new();
    for index in 0..count {
        let reg = match nvml.device_by_index(index) {
            Ok(dev) => {
                // SAFETY: the handle stays valid while NVML is initialised (the whole watch).
                let h = unsafe { dev.handle() };
                let r = register(nvml, h, set.set);
                if r.is_ok() {
                    handles.push((index, h));
                }
                r
            }
            Err(e) => Err(field_error(&e)),
        };
        out.registered.push(NvmlEventRegistration {
            gpu: index,
            event_types: reg.into(),
        });
    }
    if handles.is_empty() {
        out.stopped_early = Some(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "no GPU could be registered for events",
        ));
        return out;
    }

    let deadline = Instant::now() + Duration::from_secs(u64::from(seconds));
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // SAFETY: plain C struct (a pointer and integers); all-zero is a valid value.
        let mut data: nvmlEventData_t = unsafe { std::mem::zeroed() };
        let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
        match raw_call!(nvml, nvmlEventSetWait_v2(set.set, &mut data, ms)) {
            Ok(()) => out.events.push(NvmlEventFacts {
                gpu: handles
                    .iter()
                    .find(|(_, h)| *h == data.device)
                    .map(|(i, _)| *i),
                event_type: data.eventType,
                event_data: data.eventData,
                gpu_instance_id: (data.gpuInstanceId != NO_ID).then_some(data.gpuInstanceId),
                compute_instance_id: (data.computeInstanceId != NO_ID)
                    .then_some(data.computeInstanceId),
                received_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0),
            }),
            Err(NvmlError::Timeout) => break,
            // The wait can return early on a signal; anything else ends the watch and says why.
            Err(e) => {
                out.stopped_early = Some(field_error(&e));
                break;
            }
        }
    }
    out
}

/// Register what the GPU supports of the wanted events; returns the mask registered.
fn register(nvml: &Nvml, h: nvmlDevice_t, set: nvmlEventSet_t) -> Result<u64, FieldError> {
    let mut supported: c_ulonglong = 0;
    let mask = match raw_call!(nvml, nvmlDeviceGetSupportedEventTypes(h, &mut supported)) {
        Ok(()) => supported & WANTED,
        Err(NvmlError::GpuLost) => return Err(field_error(&NvmlError::GpuLost)),
        // Without the query, XID alone is the safe ask.
        Err(_) => XID_CRITICAL_ERROR,
    };
    if mask == 0 {
        return Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "the GPU supports none of the XID, recovery-action or double-bit ECC events",
        ));
    }
    raw_call!(nvml, nvmlDeviceRegisterEvents(h, mask, set)).map_err(|e| field_error(&e))?;
    Ok(mask)
}
