//! A GPU's identity as amdgpu's sysfs prints it (`drivers/gpu/drm/amd/amdgpu`, documented in the kernel's
//! `gpu/amdgpu/driver-misc.rst`): the FRU's product name, number and serial, the VBIOS part number, the
//! 64-bit `unique_id` (`%016llx`), `board_info` (`type : oam|cem|unknown`), and VRAM and busy counters.

use gpu_diag::facts::{FieldError, FieldErrorKind, MemoryFacts, Reading, UtilizationFacts};

use crate::host::files::HostFiles;

/// Instinct device ids (vendor 0x1002) and their names, from the GPU Operator's node-feature rule
/// (`helm-charts-k8s/templates/gpu-nfd-default-rule.yaml`): the name when the FRU has none.
const NAMES: &[(&str, &str)] = &[
    ("74a0", "AMD Instinct MI300A"),
    ("74a1", "AMD Instinct MI300X"),
    ("74a2", "AMD Instinct MI308X"),
    ("74a5", "AMD Instinct MI325X"),
    ("74a8", "AMD Instinct MI308X HF"),
    ("74a9", "AMD Instinct MI300X HF"),
    ("74b5", "AMD Instinct MI300X VF"),
    ("74b9", "AMD Instinct MI325X VF"),
    ("75a0", "AMD Instinct MI350X"),
    ("75a3", "AMD Instinct MI355X"),
    ("75a8", "AMD Instinct MI350P"),
    ("7408", "AMD Instinct MI250X"),
    ("740c", "AMD Instinct MI250X/MI250"),
    ("740f", "AMD Instinct MI210"),
];

pub fn name_for_device(device_id: &str) -> Option<&'static str> {
    NAMES
        .iter()
        .find(|(id, _)| *id == device_id)
        .map(|(_, n)| *n)
}

/// A text attribute, where an empty one (a FRU the SMU could not read prints nothing) is `not_found`.
pub fn text(files: HostFiles<'_>, dir: &str, file: &str) -> Reading<String> {
    match files.line(format!("{dir}/{file}")) {
        Ok(t) if t.is_empty() => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            format!("{file} is empty"),
        )),
        r => r.into(),
    }
}

/// The product name: the FRU's, else the name of the device id.
pub fn name(files: HostFiles<'_>, dir: &str, device_id: &str) -> Reading<String> {
    match text(files, dir, "product_name") {
        Reading::Err(e) => name_for_device(device_id)
            .map(|n| Reading::Ok(n.to_string()))
            .unwrap_or(Reading::Err(e)),
        ok => ok,
    }
}

/// `board_info`'s `type : oam` (MI300X's form factor) as `oam`.
pub fn board_type(files: HostFiles<'_>, dir: &str) -> Reading<String> {
    match files.text(format!("{dir}/board_info"), crate::host::MAX_ATTR) {
        Ok(t) => t
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "type").then(|| v.trim().to_string())
            })
            .map(Reading::Ok)
            .unwrap_or_else(|| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    "board_info has no `type :` line",
                ))
            }),
        Err(e) => Reading::Err(e),
    }
}

/// `unique_id`: 16 hex digits (kept as printed, lowercase).
pub fn unique_id(files: HostFiles<'_>, dir: &str) -> Reading<String> {
    match files.line(format!("{dir}/unique_id")) {
        Ok(t) if !t.is_empty() && t.len() <= 16 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Reading::Ok(t.to_ascii_lowercase())
        }
        Ok(t) => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("unique_id `{}` is not a hex number", crate::host::shown(&t)),
        )),
        Err(e) => Reading::Err(e),
    }
}

/// `mem_info_vram_total` and `mem_info_vram_used` (bytes).
pub fn memory(files: HostFiles<'_>, dir: &str) -> Reading<MemoryFacts> {
    let total = files.parse::<u64>(format!("{dir}/mem_info_vram_total"));
    let used = files.parse::<u64>(format!("{dir}/mem_info_vram_used"));
    match (total, used) {
        (Reading::Ok(total), Reading::Ok(used)) => Reading::Ok(MemoryFacts {
            total_bytes: total,
            used_bytes: used,
            free_bytes: total.saturating_sub(used),
        }),
        (Reading::Err(e), _) | (_, Reading::Err(e)) => Reading::Err(e),
    }
}

/// `gpu_busy_percent` and `mem_busy_percent`.
pub fn utilization(files: HostFiles<'_>, dir: &str) -> Reading<UtilizationFacts> {
    let gpu = files.parse::<u32>(format!("{dir}/gpu_busy_percent"));
    let mem = files.parse::<u32>(format!("{dir}/mem_busy_percent"));
    match (gpu, mem) {
        (Reading::Ok(gpu_pct), Reading::Ok(memory_pct)) => Reading::Ok(UtilizationFacts {
            gpu_pct,
            memory_pct,
        }),
        (Reading::Err(e), _) | (_, Reading::Err(e)) => Reading::Err(e),
    }
}

/// The architecture of a KFD `gfx_target_version` (GC 9.4.2 = `90010` MI200, GC 9.4.3/9.4.4 = `90402`
/// MI300-class, GC 9.5.0 = `90500` MI350-class; `kfd_device.c`).
pub fn architecture(gfx_target_version: Option<u32>) -> Reading<String> {
    match gfx_target_version {
        Some(90010) => Reading::Ok("CDNA2".into()),
        Some(90400..=90499) => Reading::Ok("CDNA3".into()),
        Some(90500..=90599) => Reading::Ok("CDNA4".into()),
        Some(v) => Reading::Ok(format!("gfx target {v}")),
        None => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "no KFD node for this GPU (gfx_target_version unknown)",
        )),
    }
}

/// An IP block's version from the IP discovery table as `major.minor.revision` (`13.0.6`):
/// `<device>/ip_discovery/die/<die id>/<hw id>/<instance>/{major,minor,revision}`, each `%d\n`, with a
/// link named after the block (`MP0`, `UMC`) beside the numeric hw id directory (Linux 6.12
/// amdgpu_discovery.c: 1216 `ip_discovery`, 1223 `die`, 1185 die id, 1079 hw id, 1088-1091 the named
/// link, 1131-1132 the instance, 802-815 the attributes). Die 0, instance 0: the first of the block.
pub fn ip_version(files: HostFiles<'_>, dir: &str, block: &str) -> Reading<String> {
    let base = format!("{dir}/ip_discovery/die/0/{block}/0");
    let part = |name: &str| files.parse::<u8>(format!("{base}/{name}"));
    match (part("major"), part("minor"), part("revision")) {
        (Reading::Ok(a), Reading::Ok(b), Reading::Ok(c)) => Reading::Ok(format!("{a}.{b}.{c}")),
        (Reading::Err(e), _, _) | (_, Reading::Err(e), _) | (_, _, Reading::Err(e)) => {
            Reading::Err(e)
        }
    }
}

#[cfg(test)]
mod ip_version_tests {
    use crate::host::files::HostFiles;

    #[test]
    fn the_discovery_tree_gives_major_minor_revision() {
        let t = tempfile::tempdir().unwrap();
        let d = t
            .path()
            .join("sys/bus/pci/devices/0000:0c:00.0/ip_discovery/die/0/MP0/0");
        std::fs::create_dir_all(&d).unwrap();
        for (f, v) in [("major", "13\n"), ("minor", "0\n"), ("revision", "14\n")] {
            std::fs::write(d.join(f), v).unwrap();
        }
        let files = HostFiles::new(t.path());
        let dir = "sys/bus/pci/devices/0000:0c:00.0";
        assert_eq!(
            super::ip_version(files, dir, "MP0")
                .ok()
                .map(String::as_str),
            Some("13.0.14")
        );
        assert!(super::ip_version(files, dir, "UMC").err().is_some());
        std::fs::write(d.join("revision"), "x\n").unwrap();
        assert!(super::ip_version(files, dir, "MP0").err().is_some());
    }
}
