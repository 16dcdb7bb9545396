//! `node-probe xid --watch SECONDS`: wait on NVML's XID event stream for a while. NVML reports only
//! events that happen after registration, so this complements the kernel log, which holds the past.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gpu_diag::facts::{FieldError, FieldErrorKind, NvmlXidEventFacts, Reading};
use nvml_wrapper::Nvml;
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;

/// The value NVML's event data carries when the Xid is unknown (`XidError::Unknown`).
const NVML_UNKNOWN_XID: u64 = 999;

/// Register every GPU that supports XID events and collect what arrives within `seconds`.
pub fn watch(nvml: &Nvml, seconds: u32) -> Reading<Vec<NvmlXidEventFacts>> {
    match watch_inner(nvml, Duration::from_secs(u64::from(seconds))) {
        Ok(v) => Reading::Ok(v),
        Err(e) => Reading::Err(e),
    }
}

fn field_error(what: &str, e: NvmlError) -> FieldError {
    let kind = match e {
        NvmlError::NotSupported => FieldErrorKind::NotSupported,
        NvmlError::NoPermission => FieldErrorKind::NoPermission,
        NvmlError::GpuLost => FieldErrorKind::GpuIsLost,
        NvmlError::FailedToLoadSymbol(_) => FieldErrorKind::FunctionNotFound,
        NvmlError::Timeout => FieldErrorKind::Timeout,
        _ => FieldErrorKind::Unknown,
    };
    FieldError::with_message(kind, format!("{what}: {e}"))
}

fn watch_inner(nvml: &Nvml, dur: Duration) -> Result<Vec<NvmlXidEventFacts>, FieldError> {
    let count = nvml
        .device_count()
        .map_err(|e| field_error("nvmlDeviceGetCount", e))?;
    let mut set = nvml
        .create_event_set()
        .map_err(|e| field_error("nvmlEventSetCreate", e))?;
    let mut registered = 0;
    for i in 0..count {
        let Ok(dev) = nvml.device_by_index(i) else {
            continue;
        };
        let supported = dev
            .supported_event_types()
            .is_ok_and(|t| t.contains(EventTypes::CRITICAL_XID_ERROR));
        if !supported {
            continue;
        }
        set = dev
            .register_events(EventTypes::CRITICAL_XID_ERROR, set)
            .map_err(|e| field_error(&format!("nvmlDeviceRegisterEvents (GPU {i})"), e.error))?;
        registered += 1;
    }
    if registered == 0 {
        return Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "no GPU supports NVML XID events",
        ));
    }
    let deadline = Instant::now() + dur;
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
        match set.wait(ms) {
            Ok(ev) => {
                let code = match ev.event_data {
                    Some(XidError::Value(v)) => v,
                    Some(XidError::Unknown) => NVML_UNKNOWN_XID,
                    None => continue,
                };
                out.push(NvmlXidEventFacts {
                    gpu_index: ev.device.index().unwrap_or(u32::MAX),
                    gpu_uuid: ev.device.uuid().ok(),
                    pci_bus_id: ev.device.pci_info().ok().map(|p| p.bus_id),
                    code,
                    // nvml-wrapper 0.13 does not expose the event's MIG instance ids.
                    gpu_instance_id: None,
                    compute_instance_id: None,
                    received_unix: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs_f64()),
                });
            }
            Err(NvmlError::Timeout) => break,
            // A GPU that falls off the bus mid-watch ends the wait; what arrived so far is kept.
            Err(e) if !out.is_empty() => {
                eprintln!("node-probe: NVML event wait ended early: {e}");
                break;
            }
            Err(e) => return Err(field_error("nvmlEventSetWait", e)),
        }
    }
    let _ = set.release_events();
    Ok(out)
}
