//! One AMD GPU's facts, assembled from its subjects: the shared fields of [`GpuFacts`] where amdgpu has
//! an equivalent (an inline `not_supported` where it has none: MIG, CUDA capability, NVML's throttle
//! reasons), and [`AmdGpuFacts`] for what only AMD has.

use std::collections::BTreeSet;

use gpu_diag::facts::{
    AmdGpuFacts, ClockEventDurations, ClockFacts, EccFacts, FieldError, FieldErrorKind, GpuFacts,
    GpuVendor, Reading, Sections,
};

use super::gpu_metrics::Decoded;
use super::kfd::KfdNode;
use super::partitions::Xcp;
use super::processes::Use;
use super::{bad_pages, discover, gpu_metrics, hwmon, identity, partitions, pcie, ras, xgmi};
use crate::host::files::HostFiles;

/// What every GPU of the node shares: read once.
pub struct NodeView<'a> {
    pub kfd: &'a Result<Vec<KfdNode>, FieldError>,
    pub xcps: &'a [Xcp],
    pub uses: Option<&'a [Use]>,
    pub bad_page_threshold_param: Option<i64>,
}

pub fn read(
    files: HostFiles<'_>,
    bdf: &str,
    index: u32,
    sections: Sections,
    node: &NodeView<'_>,
) -> GpuFacts {
    let dir = format!("sys/bus/pci/devices/{bdf}");
    let device_id = files
        .line(format!("{dir}/device"))
        .map(|d| d.trim_start_matches("0x").to_ascii_lowercase())
        .unwrap_or_default();
    let unique_id = identity::unique_id(files, &dir);
    let unique_num = unique_id.ok().and_then(|u| u64::from_str_radix(u, 16).ok());
    let kfd_nodes: Reading<Vec<_>> = match node.kfd {
        Ok(all) => Reading::Ok(
            all.iter()
                .filter(|k| k.is_of(bdf, unique_num))
                .cloned()
                .collect(),
        ),
        Err(e) => Reading::Err(e.clone()),
    };
    let mine: &[KfdNode] = kfd_nodes.ok().map(Vec::as_slice).unwrap_or_default();
    let gfx_target_version = mine.iter().find_map(|k| k.facts.gfx_target_version);
    let card = discover::drm_node(files, &dir, "card");
    let render_minor = discover::drm_node(files, &dir, "renderD").and_then(|r| {
        r["renderD".len()..].parse::<u32>().map_err(|_| {
            FieldError::with_message(FieldErrorKind::Unknown, format!("`{r}` has no minor"))
        })
    });
    let memory = identity::memory(files, &dir);
    let telemetry = sections.telemetry;
    let metrics: Option<Result<Decoded, FieldError>> =
        (telemetry || sections.topology).then(|| gpu_metrics::read(files, &dir));
    let decoded = metrics.as_ref().and_then(|m| m.as_ref().ok());
    let partition = partitions::read(files, &dir, mine, node.xcps);

    let mut g = GpuFacts {
        index,
        vendor: GpuVendor::Amd,
        name: identity::name(files, &dir, &device_id),
        uuid: unique_id.clone(),
        serial: identity::text(files, &dir, "serial_number"),
        board_part_number: identity::text(files, &dir, "product_number"),
        pci_bus_id: Reading::Ok(bdf.to_string()),
        pci_device_id: u32::from_str_radix(&device_id, 16)
            .map(|d| Reading::Ok((d << 16) | 0x1002))
            .unwrap_or_else(|_| {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    "no PCI device id",
                ))
            }),
        vbios_version: identity::text(files, &dir, "vbios_version"),
        architecture: identity::architecture(gfx_target_version),
        cuda_compute_capability: Reading::not_supported(),
        memory: memory.clone(),
        mig_mode: Reading::not_supported(),
        persistence_mode: Reading::not_supported(),
        compute_mode: Reading::not_supported(),
        fan_speed_pct: Reading::not_supported(),
        performance_state: Reading::not_supported(),
        clocks_event_reasons: Reading::not_supported(),
        clocks_event_durations_ns: not_supported_durations(),
        ecc: not_supported_ecc(),
        recovery_action: Reading::not_supported(),
        fabric: Reading::not_supported(),
        numa_node: discover::numa_node(files, bdf),
        cpu_affinity: cpu_list(files, &dir),
        ..GpuFacts::default()
    };
    let mut amd = AmdGpuFacts {
        card: card.clone().into(),
        render_minor: render_minor.clone().into(),
        unique_id,
        board_type: identity::board_type(files, &dir),
        mp0_version: identity::ip_version(files, &dir, "MP0"),
        umc_version: identity::ip_version(files, &dir, "UMC"),
        kfd_nodes: kfd_nodes.map(|v| v.iter().map(|k| k.facts.clone()).collect()),
        partition: partition.clone(),
        ..AmdGpuFacts::default()
    };
    if telemetry {
        g.utilization = identity::utilization(files, &dir);
        let hw = hwmon::read(files, &dir);
        g.thermal = hw.thermal;
        g.power = hw.power;
        amd.edge_temp_c = hw.edge_temp_c;
        g.clocks = ClockFacts {
            sm_mhz: hw.gfx_mhz.clone(),
            graphics_mhz: hw.gfx_mhz,
            memory_mhz: hw.mem_mhz,
            ..ClockFacts::default()
        };
        // MI300-class hwmon may lack what the SMU's table has.
        if let Some(d) = decoded {
            fill_from_metrics(&mut g, &mut amd, d);
        }
    }
    if let Some(m) = &metrics {
        amd.metrics = m.clone().map(|d| d.facts).into();
    }
    if telemetry || sections.topology {
        g.pcie = pcie::read(files, &dir);
    }
    if sections.topology || sections.ecc {
        amd.xgmi = xgmi::read(files, &dir, decoded);
    }
    if sections.ecc {
        amd.ras = ras::read(files, &dir);
        let ctx = bad_pages::Context {
            card_minor: card
                .as_ref()
                .ok()
                .and_then(|c| c["card".len()..].parse().ok()),
            param: node.bad_page_threshold_param,
        };
        amd.bad_pages = bad_pages::read(files, &dir, &ctx);
    }
    if let (true, Some(uses)) = (sections.processes, node.uses) {
        let mut minors: BTreeSet<u32> = render_minor.ok().into_iter().collect();
        let mut gpu_ids = BTreeSet::new();
        for k in mine {
            minors.extend(k.facts.drm_render_minor);
            gpu_ids.insert(k.facts.gpu_id);
        }
        if let Some(p) = partition.ok() {
            minors.extend(p.xcps.iter().filter_map(|x| x.render_minor));
        }
        g.processes = Reading::Ok(super::processes::on_gpu(uses, bdf, &minors, &gpu_ids));
    }
    g.amd = Some(amd);
    g
}

/// What the SMU's table says where hwmon did not.
fn fill_from_metrics(g: &mut GpuFacts, amd: &mut AmdGpuFacts, d: &Decoded) {
    let or = |r: &mut Reading<u32>, v: Option<u32>| {
        if let (false, Some(v)) = (r.is_ok(), v) {
            *r = Reading::Ok(v);
        }
    };
    or(&mut g.thermal.gpu_temp_c, d.hotspot_c);
    or(&mut g.thermal.memory_temp_c, d.mem_c);
    or(&mut g.power.usage_mw, d.socket_power_w.map(|w| w * 1000));
    or(&mut amd.edge_temp_c, d.edge_c);
}

/// `local_cpulist` (`0-47,96-143`).
fn cpu_list(files: HostFiles<'_>, dir: &str) -> Reading<Vec<u32>> {
    let text = match files.line(format!("{dir}/local_cpulist")) {
        Ok(t) => t,
        Err(e) => return Reading::Err(e),
    };
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let range = match part.split_once('-') {
            Some((a, b)) => a.parse::<u32>().ok().zip(b.parse::<u32>().ok()),
            None => part.parse::<u32>().ok().map(|a| (a, a)),
        };
        match range {
            // A host has at most a few thousand CPUs; a wider range is a damaged file.
            Some((a, b)) if a <= b && b - a < 65536 && out.len() < 65536 => out.extend(a..=b),
            _ => {
                return Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!(
                        "local_cpulist `{}` is not a CPU list",
                        crate::host::shown(&text)
                    ),
                ));
            }
        }
    }
    Reading::Ok(out)
}

fn not_supported_durations() -> ClockEventDurations {
    ClockEventDurations {
        sw_power_cap: Reading::not_supported(),
        sw_thermal_slowdown: Reading::not_supported(),
        hw_thermal_slowdown: Reading::not_supported(),
        hw_power_brake_slowdown: Reading::not_supported(),
        sync_boost: Reading::not_supported(),
    }
}

/// AMD's memory errors are RAS blocks (`amd.ras`, `amd.bad_pages`), not NVML's ECC counters.
fn not_supported_ecc() -> EccFacts {
    fn ns<T>() -> Reading<T> {
        Reading::Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "AMD: see amd.ras and amd.bad_pages",
        ))
    }
    EccFacts {
        mode: ns(),
        volatile_corrected: ns(),
        volatile_uncorrected: ns(),
        aggregate_corrected: ns(),
        aggregate_uncorrected: ns(),
        by_location: Vec::new(),
        retired_pages: ns(),
        remapped_rows: ns(),
        row_remapper_histogram: ns(),
        sram_threshold_exceeded: ns(),
    }
}
