//! The GPU's XGMI hive (`amdgpu_xgmi.c`): `xgmi_hive_info/xgmi_hive_id` (`%llu`, also KFD's `hive_id`),
//! `xgmi_device_id` (`%llu`), `xgmi_physical_id` (`%u`), `xgmi_error` (`%u`, cleared by the read, so read
//! once per run); the links' state and traffic come from `gpu_metrics` (`xgmi_link_status[]`, 1 active).

use gpu_diag::facts::{AmdXgmiFacts, FieldError, FieldErrorKind, Reading};

use super::gpu_metrics::Decoded;
use crate::host::files::HostFiles;

pub fn read(files: HostFiles<'_>, dir: &str, metrics: Option<&Decoded>) -> Reading<AmdXgmiFacts> {
    let hive_id = files
        .parse::<u64>(format!("{dir}/xgmi_hive_info/xgmi_hive_id"))
        .get();
    let device_id = files.parse::<u64>(format!("{dir}/xgmi_device_id")).get();
    if hive_id.is_none() && device_id.is_none() {
        return Reading::Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "no xgmi_hive_info or xgmi_device_id: a PCIe-only GPU",
        ));
    }
    Reading::Ok(AmdXgmiFacts {
        hive_id,
        device_id,
        physical_id: files.parse::<u32>(format!("{dir}/xgmi_physical_id")).get(),
        links: metrics.map(|m| m.xgmi_links.clone()).unwrap_or_default(),
        link_width: metrics.and_then(|m| m.xgmi_width),
        link_speed_gbps: metrics.and_then(|m| m.xgmi_speed_gbps),
        error_count: files.parse(format!("{dir}/xgmi_error")),
    })
}
