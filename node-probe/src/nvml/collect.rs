//! Fills [`NodeFacts`] from an initialised NVML, section by section. Collectors never judge: every value is
//! kept as NVML returned it, and every failure becomes an inline error on its own field.

use std::cell::Cell;

use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, MemoryLocation, RetirementCause, TemperatureSensor,
    TemperatureThreshold,
};
use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::struct_wrappers::device::ProcessInfo;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::sys_exports::field_id::*;
use nvml_wrapper::{Device, Nvml};
use nvml_wrapper_sys::bindings::nvmlDevice_t;

use gpu_diag::facts::{
    ClockEventDurations, EccLocationFacts, EccModeFacts, FieldError, FieldErrorKind, GpuFacts,
    GpuPairFacts, GpuProcessFacts, MemoryFacts, MigDeviceFacts, MigModeFacts, NodeFacts,
    NvLinkFacts, P2pFacts, Reading, RetiredPagesFacts, Sections, UtilizationFacts,
};

use super::errors::{field_error, reading};
use super::raw;

/// NVML's P2P capability indexes: read, write, nvlink, atomics.
const P2P_READ: u32 = 0;
const P2P_WRITE: u32 = 1;
const P2P_NVLINK: u32 = 2;
const P2P_ATOMICS: u32 = 3;

/// More links than any GPU has (18 on H100, 18 on B200): a stop for a driver that never says "no more".
const MAX_LINKS: u32 = 64;

/// CPU (or NUMA node) set words asked of `nvmlDeviceGet{Cpu,Memory}Affinity` (64 each): room for 4096.
const AFFINITY_WORDS: usize = 64;

/// `NVML_AFFINITY_SCOPE_NODE`: affinity by NUMA node.
const AFFINITY_SCOPE_NODE: u32 = 0;

/// One GPU being collected. Once NVML says the GPU is lost, the remaining queries are not made: they
/// would all fail the same way, and on a wedged GPU each can take seconds.
struct Gpu<'n> {
    nvml: &'n Nvml,
    dev: Device<'n>,
    lost: Cell<bool>,
}

impl<'n> Gpu<'n> {
    fn q<T>(&self, f: impl FnOnce(&Device<'n>) -> Result<T, NvmlError>) -> Reading<T> {
        Reading::from(self.r(f))
    }

    /// The result form of [`Gpu::q`], for values built from several calls.
    fn r<T>(&self, f: impl FnOnce(&Device<'n>) -> Result<T, NvmlError>) -> Result<T, FieldError> {
        if self.lost.get() {
            return Err(FieldError::new(FieldErrorKind::GpuIsLost));
        }
        f(&self.dev).map_err(|e| {
            if matches!(e, NvmlError::GpuLost) {
                self.lost.set(true);
            }
            field_error(&e)
        })
    }

    /// A raw call taking this GPU's handle.
    fn raw<T>(&self, f: impl FnOnce(&Nvml, nvmlDevice_t) -> Result<T, NvmlError>) -> Reading<T> {
        // SAFETY: the handle is only passed to NVML calls while `self.dev` (and the Nvml) are alive.
        let h = unsafe { self.dev.handle() };
        self.q(|_| f(self.nvml, h))
    }
}

pub fn node(nvml: &Nvml, sections: Sections) -> NodeFacts {
    let mut facts = NodeFacts {
        source: "nvml".to_string(),
        ..NodeFacts::default()
    };
    facts.driver.driver_version = reading(nvml.sys_driver_version());
    facts.driver.cuda_driver_version = reading(nvml.sys_cuda_driver_version());
    facts.driver.nvml_version = reading(nvml.sys_nvml_version());
    let count = match nvml.device_count() {
        Ok(n) => n,
        Err(e) => {
            facts.device_count = Reading::Err(field_error(&e));
            return facts;
        }
    };
    facts.device_count = Reading::Ok(count);

    let mut handles: Vec<Option<Gpu<'_>>> = Vec::new();
    for index in 0..count {
        match nvml.device_by_index(index) {
            Ok(dev) => {
                let gpu = Gpu {
                    nvml,
                    dev,
                    lost: Cell::new(false),
                };
                facts.gpus.push(collect_gpu(&gpu, index, sections));
                handles.push(Some(gpu));
            }
            Err(e) => {
                facts.gpus.push(GpuFacts {
                    index,
                    handle_error: Some(field_error(&e)),
                    ..GpuFacts::default()
                });
                handles.push(None);
            }
        }
    }
    if sections.topology {
        facts.topology = pairs(nvml, &handles);
    }
    facts
}

fn collect_gpu(g: &Gpu<'_>, index: u32, s: Sections) -> GpuFacts {
    let mut f = GpuFacts {
        index,
        ..GpuFacts::default()
    };
    identity(g, &mut f);
    f.nvlinks = nvlinks(g, s.topology || s.watch);
    if s.telemetry || s.topology {
        f.pcie.current_link_gen = g.q(|d| d.current_pcie_link_gen());
        f.pcie.current_link_width = g.q(|d| d.current_pcie_link_width());
        f.pcie.replay_counter = g.q(|d| d.pcie_replay_counter().map(u64::from));
    }
    let fields = FieldValues::fetch(g, s);
    if s.telemetry {
        telemetry(g, &mut f, &fields);
    }
    if s.topology {
        f.numa_node = g.q(|d| {
            d.memory_affinity(AFFINITY_WORDS, AFFINITY_SCOPE_NODE)
                .map(|w| numa_of_mask(&w))
        });
        f.cpu_affinity = g.q(|d| d.cpu_affinity(AFFINITY_WORDS).map(|w| cpus_of_mask(&w)));
        f.fabric = g.raw(raw::fabric_info);
    }
    if s.ecc {
        ecc(g, &mut f, &fields);
        f.recovery_action = fields.u32(NVML_FI_DEV_GET_GPU_RECOVERY_ACTION);
    }
    if s.processes {
        f.processes = processes(g);
    }
    f
}

fn identity(g: &Gpu<'_>, f: &mut GpuFacts) {
    f.name = g.q(|d| d.name());
    f.uuid = g.q(|d| d.uuid());
    // DRA drivers name GPUs by it (NVIDIA's `gpu-<minor>`), and the reset preflight finds `/dev/nvidia<minor>`.
    f.minor_number = Some(g.q(|d| d.minor_number()));
    f.serial = g.q(|d| d.serial());
    f.board_part_number = g.q(|d| d.board_part_number());
    let pci = g.q(|d| d.pci_info());
    f.pci_bus_id = pci.map(|p| p.bus_id.clone());
    f.pci_device_id = pci.map(|p| p.pci_device_id);
    f.vbios_version = g.q(|d| d.vbios_version());
    f.architecture = g.raw(raw::architecture);
    f.cuda_compute_capability = g.q(|d| d.cuda_compute_capability().map(|c| (c.major, c.minor)));
    f.memory = memory(g);
    f.mig_mode = g.q(|d| {
        d.mig_mode().map(|m| MigModeFacts {
            current: m.current != 0,
            pending: m.pending != 0,
        })
    });
    if f.mig_mode.ok().is_some_and(|m| m.current) {
        f.mig_devices = mig_devices(g);
    }
    f.persistence_mode = g.q(|d| d.is_in_persistent_mode());
    f.compute_mode = g.raw(raw::compute_mode);
    f.pcie.max_link_gen = g.q(|d| d.max_pcie_link_gen());
    f.pcie.gpu_max_link_gen = g.raw(raw::gpu_max_pcie_link_gen);
    f.pcie.max_link_width = g.q(|d| d.max_pcie_link_width());
}

/// The wrapper asks for `nvmlDeviceGetMemoryInfo_v2`; drivers before it only have the v1 call.
fn memory(g: &Gpu<'_>) -> Reading<MemoryFacts> {
    g.q(|d| memory_of(g.nvml, d))
}

fn memory_of(nvml: &Nvml, d: &Device<'_>) -> Result<MemoryFacts, NvmlError> {
    match d.memory_info() {
        Ok(m) => Ok(MemoryFacts {
            total_bytes: m.total,
            used_bytes: m.used,
            free_bytes: m.free,
        }),
        // SAFETY: the handle is used while `d` is alive.
        Err(NvmlError::FailedToLoadSymbol(_)) => raw::memory_info_v1(nvml, unsafe { d.handle() }),
        Err(e) => Err(e),
    }
}

fn mig_devices(g: &Gpu<'_>) -> Vec<MigDeviceFacts> {
    let Ok(max) = g.r(|d| d.mig_device_count()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in 0..max {
        // Empty slots answer NOT_FOUND: they are not devices.
        let mig = match g.dev.mig_device_by_index(i) {
            Ok(m) => m,
            Err(NvmlError::NotFound) | Err(NvmlError::InvalidArg) => continue,
            Err(e) => {
                out.push(MigDeviceFacts {
                    index: i,
                    uuid: Reading::Err(field_error(&e)),
                    ..MigDeviceFacts::default()
                });
                continue;
            }
        };
        // SAFETY: the MIG handle lives as long as `mig`, which outlives these calls.
        let h = unsafe { mig.handle() };
        out.push(MigDeviceFacts {
            index: i,
            uuid: reading(mig.uuid()),
            gpu_instance_id: reading(raw::gpu_instance_id(g.nvml, h)),
            compute_instance_id: reading(raw::compute_instance_id(g.nvml, h)),
            name: reading(mig.name()),
            memory: reading(memory_of(g.nvml, &mig)),
        });
    }
    out
}

/// Links from 0 up until NVML says there are no more (`InvalidArg` past the last link, `NotSupported` on
/// GPUs without NVLink). With `detailed`, each link's version, remote end and error counters too.
fn nvlinks(g: &Gpu<'_>, detailed: bool) -> Vec<NvLinkFacts> {
    let mut out = Vec::new();
    for link in 0..MAX_LINKS {
        if g.lost.get() {
            break;
        }
        let active = match g.dev.link_wrapper_for(link).is_active() {
            Ok(a) => Reading::Ok(a),
            Err(
                NvmlError::InvalidArg
                | NvmlError::NotSupported
                | NvmlError::FailedToLoadSymbol(_)
                | NvmlError::FunctionNotFound,
            ) => break,
            Err(NvmlError::GpuLost) => {
                g.lost.set(true);
                break;
            }
            Err(e) => Reading::Err(field_error(&e)),
        };
        let mut l = NvLinkFacts {
            link,
            active,
            ..NvLinkFacts::default()
        };
        if detailed {
            l.version = g.q(|d| d.link_wrapper_for(link).version());
            l.remote_pci_bus_id =
                g.q(|d| d.link_wrapper_for(link).remote_pci_info().map(|p| p.bus_id));
            l.remote_device_type = g.raw(|n, h| raw::nvlink_remote_device_type(n, h, link));
            let counter = |c: ErrorCounter| g.q(|d| d.link_wrapper_for(link).error_counter(c));
            l.replay_errors = counter(ErrorCounter::DlReplay);
            l.recovery_errors = counter(ErrorCounter::DlRecovery);
            l.crc_flit_errors = counter(ErrorCounter::DlCrcFlit);
            l.crc_data_errors = counter(ErrorCounter::DlCrcData);
        }
        out.push(l);
    }
    out
}

fn telemetry(g: &Gpu<'_>, f: &mut GpuFacts, fields: &FieldValues) {
    f.thermal.gpu_temp_c = g.q(|d| d.temperature(TemperatureSensor::Gpu));
    f.thermal.memory_temp_c = fields.u32(NVML_FI_DEV_MEMORY_TEMP);
    f.thermal.shutdown_threshold_c =
        g.q(|d| d.temperature_threshold(TemperatureThreshold::Shutdown));
    f.thermal.slowdown_threshold_c =
        g.q(|d| d.temperature_threshold(TemperatureThreshold::Slowdown));
    f.thermal.gpu_max_threshold_c = g.q(|d| d.temperature_threshold(TemperatureThreshold::GpuMax));
    f.thermal.memory_max_threshold_c =
        g.q(|d| d.temperature_threshold(TemperatureThreshold::MemoryMax));
    f.fan_speed_pct = fans(g);
    f.power.usage_mw = g.q(|d| d.power_usage());
    f.power.enforced_limit_mw = g.q(|d| d.enforced_power_limit());
    f.power.default_limit_mw = g.q(|d| d.power_management_limit_default());
    f.power.max_limit_mw = g.q(|d| d.power_management_limit_constraints().map(|c| c.max_limit));
    f.utilization = g.q(|d| {
        d.utilization_rates().map(|u| UtilizationFacts {
            gpu_pct: u.gpu,
            memory_pct: u.memory,
        })
    });
    f.clocks.sm_mhz = g.q(|d| d.clock_info(Clock::SM));
    f.clocks.sm_max_mhz = g.q(|d| d.max_clock_info(Clock::SM));
    f.clocks.graphics_mhz = g.q(|d| d.clock_info(Clock::Graphics));
    f.clocks.graphics_max_mhz = g.q(|d| d.max_clock_info(Clock::Graphics));
    f.clocks.memory_mhz = g.q(|d| d.clock_info(Clock::Memory));
    f.clocks.memory_max_mhz = g.q(|d| d.max_clock_info(Clock::Memory));
    f.performance_state = g.raw(raw::performance_state);
    f.clocks_event_reasons = g.raw(raw::clocks_event_reasons);
    f.clocks_event_durations_ns = ClockEventDurations {
        sw_power_cap: fields.u64(NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_POWER_CAP),
        sw_thermal_slowdown: fields.u64(NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_THERM_SLOWDOWN),
        hw_thermal_slowdown: fields.u64(NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_THERM_SLOWDOWN),
        hw_power_brake_slowdown: fields
            .u64(NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN),
        sync_boost: fields.u64(NVML_FI_DEV_CLOCKS_EVENT_REASON_SYNC_BOOST),
    };
}

/// Per fan. A board without fans of its own (SXM modules, passively cooled PCIe cards) answers
/// `nvmlDeviceGetNumFans` with 0, and then any fan index is out of range: driver 580.159.04 answers
/// `nvmlDeviceGetFanSpeed_v2(0)` on an H100 SXM with INVALID_ARGUMENT, where nvidia-smi shows "N/A". That is
/// "not supported", not an unreadable fact. Only a library without the count falls back to the old
/// single-fan call.
fn fans(g: &Gpu<'_>) -> Reading<Vec<u32>> {
    match g.r(|d| d.num_fans()) {
        Ok(0) => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "no fans of its own (nvmlDeviceGetNumFans = 0)",
        )),
        Ok(n) => (0..n)
            .map(|i| g.r(|d| d.fan_speed(i)))
            .collect::<Result<Vec<u32>, FieldError>>()
            .into(),
        Err(e)
            if matches!(
                e.error,
                FieldErrorKind::FunctionNotFound | FieldErrorKind::NotSupported
            ) =>
        {
            g.raw(raw::fan_speed_legacy).map(|v| vec![*v])
        }
        Err(e) => Reading::Err(e),
    }
}

fn ecc(g: &Gpu<'_>, f: &mut GpuFacts, fields: &FieldValues) {
    let e = &mut f.ecc;
    e.mode = g.q(|d| {
        d.is_ecc_enabled().map(|m| EccModeFacts {
            current: m.currently_enabled,
            pending: m.pending_enabled,
        })
    });
    let total = |t: MemoryError, c: EccCounter| g.q(|d| d.total_ecc_errors(t, c));
    e.volatile_corrected = total(MemoryError::Corrected, EccCounter::Volatile);
    e.volatile_uncorrected = total(MemoryError::Uncorrected, EccCounter::Volatile);
    e.aggregate_corrected = total(MemoryError::Corrected, EccCounter::Aggregate);
    e.aggregate_uncorrected = total(MemoryError::Uncorrected, EccCounter::Aggregate);
    e.by_location = ecc_locations(g);
    e.retired_pages = g.q(|d| {
        Ok(RetiredPagesFacts {
            single_bit: d
                .retired_pages(RetirementCause::MultipleSingleBitEccErrors)?
                .len() as u32,
            double_bit: d.retired_pages(RetirementCause::DoubleBitEccError)?.len() as u32,
            pending: d.are_pages_pending_retired()?,
        })
    });
    e.remapped_rows = match g.raw(raw::remapped_rows) {
        // Drivers whose library lacks the call may still serve the same counters as field values.
        Reading::Err(err) if err.error == FieldErrorKind::FunctionNotFound => {
            remapped_from_fields(fields).unwrap_or(Reading::Err(err))
        }
        other => other,
    };
    e.row_remapper_histogram = g.raw(raw::row_remapper_histogram);
    e.sram_threshold_exceeded = g.raw(raw::sram_threshold_exceeded);
}

fn remapped_from_fields(
    fields: &FieldValues,
) -> Option<Reading<gpu_diag::facts::RemappedRowsFacts>> {
    let get = |id| fields.u64(id).get();
    Some(Reading::Ok(gpu_diag::facts::RemappedRowsFacts {
        correctable: get(NVML_FI_DEV_REMAPPED_COR)? as u32,
        uncorrectable: get(NVML_FI_DEV_REMAPPED_UNC)? as u32,
        pending: get(NVML_FI_DEV_REMAPPED_PENDING)? != 0,
        failure: get(NVML_FI_DEV_REMAPPED_FAILURE)? != 0,
    }))
}

/// Locations whose four counters are all not_supported are left out: most GPUs support only a few.
fn ecc_locations(g: &Gpu<'_>) -> Vec<EccLocationFacts> {
    const LOCATIONS: &[(MemoryLocation, &str)] = &[
        (MemoryLocation::L1Cache, "l1"),
        (MemoryLocation::L2Cache, "l2"),
        (MemoryLocation::Device, "dram"),
        (MemoryLocation::RegisterFile, "register_file"),
        (MemoryLocation::Texture, "texture"),
        (MemoryLocation::Shared, "texture_shm"),
        (MemoryLocation::Cbu, "cbu"),
        (MemoryLocation::SRAM, "sram"),
    ];
    let mut out = Vec::new();
    for &(loc, name) in LOCATIONS {
        let c = |t: MemoryError, k: EccCounter| g.q(|d| d.memory_error_counter(t, k, loc));
        let l = EccLocationFacts {
            location: name.to_string(),
            volatile_corrected: c(MemoryError::Corrected, EccCounter::Volatile),
            volatile_uncorrected: c(MemoryError::Uncorrected, EccCounter::Volatile),
            aggregate_corrected: c(MemoryError::Corrected, EccCounter::Aggregate),
            aggregate_uncorrected: c(MemoryError::Uncorrected, EccCounter::Aggregate),
        };
        let unsupported = |r: &Reading<u64>| {
            r.err()
                .is_some_and(|e| e.error == FieldErrorKind::NotSupported)
        };
        if [
            &l.volatile_corrected,
            &l.volatile_uncorrected,
            &l.aggregate_corrected,
            &l.aggregate_uncorrected,
        ]
        .iter()
        .all(|r| unsupported(r))
        {
            continue;
        }
        out.push(l);
    }
    out
}

/// Compute and graphics processes. Graphics being unsupported (or missing from an old library) leaves
/// the compute list standing; a compute failure is the answer.
fn processes(g: &Gpu<'_>) -> Reading<Vec<GpuProcessFacts>> {
    let compute = match g.r(|d| d.running_compute_processes()) {
        Ok(p) => p,
        Err(e) => return Reading::Err(e),
    };
    let graphics = match g.r(|d| d.running_graphics_processes()) {
        Ok(p) => p,
        Err(e)
            if matches!(
                e.error,
                FieldErrorKind::NotSupported | FieldErrorKind::FunctionNotFound
            ) =>
        {
            Vec::new()
        }
        Err(e) => return Reading::Err(e),
    };
    let conv = |p: ProcessInfo, kind: &str| GpuProcessFacts {
        pid: p.pid,
        kind: kind.to_string(),
        used_memory_bytes: match p.used_gpu_memory {
            UsedGpuMemory::Used(b) => Some(b),
            UsedGpuMemory::Unavailable => None,
        },
        gpu_instance_id: p.gpu_instance_id,
        compute_instance_id: p.compute_instance_id,
    };
    Reading::Ok(
        compute
            .into_iter()
            .map(|p| conv(p, "compute"))
            .chain(graphics.into_iter().map(|p| conv(p, "graphics")))
            .collect(),
    )
}

/// Common ancestor and P2P status for every pair of GPUs that have handles (a < b).
fn pairs(nvml: &Nvml, gpus: &[Option<Gpu<'_>>]) -> Vec<GpuPairFacts> {
    let mut out = Vec::new();
    for (i, a) in gpus.iter().enumerate() {
        for (j, b) in gpus.iter().enumerate().skip(i + 1) {
            let (Some(a), Some(b)) = (a, b) else { continue };
            // SAFETY: both handles outlive these calls (the Gpu values are borrowed here).
            let (ha, hb) = unsafe { (a.dev.handle(), b.dev.handle()) };
            let lost = a.lost.get() || b.lost.get();
            let p2p = |idx| {
                if lost {
                    None
                } else {
                    raw::p2p_status(nvml, ha, hb, idx).ok()
                }
            };
            out.push(GpuPairFacts {
                a: i as u32,
                b: j as u32,
                common_ancestor: if lost {
                    Reading::Err(FieldError::new(FieldErrorKind::GpuIsLost))
                } else {
                    reading(raw::common_ancestor(nvml, ha, hb))
                },
                p2p: P2pFacts {
                    read: p2p(P2P_READ),
                    write: p2p(P2P_WRITE),
                    nvlink: p2p(P2P_NVLINK),
                    atomics: p2p(P2P_ATOMICS),
                },
            });
        }
    }
    out
}

/// The NUMA node of a GPU: the lowest node in its memory affinity set (what `nvidia-smi topo -m` shows),
/// -1 when the set is empty (no NUMA).
pub fn numa_of_mask(words: &[std::os::raw::c_ulong]) -> i32 {
    cpus_of_mask(words).first().map_or(-1, |n| *n as i32)
}

/// CPU ids set in an NVML affinity mask (64 CPUs per word on 64-bit Linux).
pub fn cpus_of_mask(words: &[std::os::raw::c_ulong]) -> Vec<u32> {
    let bits = std::os::raw::c_ulong::BITS;
    let mut out = Vec::new();
    for (w, word) in words.iter().enumerate() {
        for b in 0..bits {
            if word & (1 << b) != 0 {
                out.push(w as u32 * bits + b);
            }
        }
    }
    out
}

/// One `nvmlDeviceGetFieldValues` call for every field value the sections need, answered by id.
struct FieldValues {
    ids: Vec<u32>,
    values: Vec<Result<u64, FieldError>>,
}

impl FieldValues {
    fn fetch(g: &Gpu<'_>, s: Sections) -> Self {
        let mut ids = Vec::new();
        if s.telemetry {
            ids.extend([
                NVML_FI_DEV_MEMORY_TEMP,
                NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_POWER_CAP,
                NVML_FI_DEV_CLOCKS_EVENT_REASON_SYNC_BOOST,
                // Ids 251-253 in the v12 numbering; nvml-wrapper renumbers them for drivers >= 580.82.
                NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_THERM_SLOWDOWN,
                NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_THERM_SLOWDOWN,
                NVML_FI_DEV_CLOCKS_EVENT_REASON_HW_POWER_BRAKE_SLOWDOWN,
            ]);
        }
        if s.ecc {
            ids.extend([
                NVML_FI_DEV_GET_GPU_RECOVERY_ACTION,
                NVML_FI_DEV_REMAPPED_COR,
                NVML_FI_DEV_REMAPPED_UNC,
                NVML_FI_DEV_REMAPPED_PENDING,
                NVML_FI_DEV_REMAPPED_FAILURE,
            ]);
        }
        if ids.is_empty() {
            return Self {
                ids,
                values: Vec::new(),
            };
        }
        let request: Vec<FieldId> = ids.iter().map(|i| FieldId(*i)).collect();
        let values = match g.r(|d| d.field_values_for(&request)) {
            // Results come back in request order; their ids are renumbered for new drivers.
            Ok(samples) => samples
                .into_iter()
                .zip(&ids)
                .map(|(s, id)| {
                    s.and_then(|s| s.value)
                        .map_err(|e| field_value_error(*id, &e))
                        .and_then(|v| sample_u64(*id, v))
                })
                .collect(),
            Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
        };
        Self { ids, values }
    }

    fn u64(&self, id: u32) -> Reading<u64> {
        match self.ids.iter().position(|i| *i == id) {
            Some(p) => self.values[p].clone().into(),
            None => Reading::default(),
        }
    }

    fn u32(&self, id: u32) -> Reading<u32> {
        match self.u64(id) {
            Reading::Ok(v) => u32::try_from(v)
                .map_err(|_| {
                    FieldError::with_message(
                        FieldErrorKind::Unknown,
                        format!("field {id} value {v} out of range"),
                    )
                })
                .into(),
            Reading::Err(e) => Reading::Err(e),
        }
    }
}

/// A field id the driver does not know is answered with INVALID_ARGUMENT: for the report that is the
/// field-value form of "this driver lacks the function".
fn field_value_error(id: u32, e: &NvmlError) -> FieldError {
    match e {
        NvmlError::InvalidArg => FieldError::with_message(
            FieldErrorKind::FunctionNotFound,
            format!("the driver does not know NVML field {id}"),
        ),
        other => field_error(other),
    }
}

fn sample_u64(id: u32, v: SampleValue) -> Result<u64, FieldError> {
    let bad = |what: String| {
        Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("field {id}: {what}"),
        ))
    };
    match v {
        SampleValue::U32(x) => Ok(u64::from(x)),
        SampleValue::U64(x) => Ok(x),
        SampleValue::I64(x) if x >= 0 => Ok(x as u64),
        SampleValue::F64(x) if x >= 0.0 && x.is_finite() => Ok(x as u64),
        other => bad(format!("unexpected value {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_masks() {
        assert_eq!(cpus_of_mask(&[0b1011, 0, 1]), vec![0, 1, 3, 128]);
        assert!(cpus_of_mask(&[0, 0]).is_empty());
        assert_eq!(numa_of_mask(&[0, 0]), -1);
        assert_eq!(numa_of_mask(&[0b110]), 1);
    }

    #[test]
    fn field_values_convert() {
        assert_eq!(sample_u64(1, SampleValue::I64(5)), Ok(5));
        assert!(sample_u64(1, SampleValue::I64(-1)).is_err());
        assert_eq!(
            field_value_error(230, &NvmlError::InvalidArg).error,
            FieldErrorKind::FunctionNotFound
        );
        assert_eq!(
            field_value_error(230, &NvmlError::NotSupported).error,
            FieldErrorKind::NotSupported
        );
    }
}
