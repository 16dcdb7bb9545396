//! Per-GPU readings as text, grouped for alike GPUs as the topology and ECC are: telemetry (one line for
//! the GPUs whose clocks verdict is the same, each reading as a range over them) and processes (one line
//! for the GPUs that run the same kind of process for the same pod). A GPU that deviates gets its own
//! line; a lost GPU is said once, in words.

use std::collections::BTreeSet;
use std::fmt::Write;

use gpu_diag::analysis::GpuRef;
use gpu_diag::analysis::health::HealthReport;
use gpu_diag::analysis::inventory::{GpuInventory, InventoryReport, MigDeviceInventory};
use gpu_diag::analysis::processes::{GpuProcesses, ProcessReport, ProcessesReport};
use gpu_diag::analysis::telemetry::{ClocksEvents, GpuTelemetry, TelemetryReport};
use gpu_diag::facts::{FieldErrorKind, Reading};

use super::details::{Entry, Fields, failed, serde_name};
use super::reading::{on_off, value_or_unknown as show};
use super::topology::{alike, gpu_set};

/// Kinds of process named per GPU line (a GPU may run hundreds of processes: they are counted).
const KINDS_SHOWN: usize = 4;

/// The GPUs health found lost or without an NVML handle: their readings all fail alike.
pub fn lost(h: &HealthReport) -> BTreeSet<u32> {
    h.gpus
        .iter()
        .filter(|g| {
            g.findings
                .iter()
                .any(|f| f.code == "gpu.lost" || f.code == "gpu.handle_failed")
        })
        .map(|g| g.gpu.index)
        .collect()
}

/// The GPUs whose telemetry NVML answered with GPU_IS_LOST (for a report without a health verdict).
pub fn lost_in_telemetry(gpus: &[GpuTelemetry]) -> BTreeSet<u32> {
    let is_lost = |e: Option<&gpu_diag::facts::FieldError>| {
        e.is_some_and(|e| e.error == FieldErrorKind::GpuIsLost)
    };
    gpus.iter()
        .filter(|t| is_lost(t.utilization.err()) || is_lost(t.clocks.sm_mhz.err()))
        .map(|t| t.gpu.index)
        .collect()
}

/// The inventory: the GPU count and driver in one line, then one line per group of alike GPUs (model,
/// memory, VBIOS, persistence and MIG mode); a `lost` GPU says so in words.
pub fn inventory(inv: &InventoryReport, lost: &BTreeSet<u32>, out: &mut String) {
    let _ = writeln!(
        out,
        "GPUs: {} enumerated; driver {}, CUDA {}",
        show(&inv.device_count),
        show(&inv.driver.driver_version),
        show(&inv.driver.cuda_driver_version)
    );
    let lines = inv.gpus.iter().map(|g| {
        let line = if lost.contains(&g.index) {
            format!(
                "{}, lost: NVML answers GPU_IS_LOST, so its telemetry, links, ECC and processes \
                 cannot be read (see the findings)",
                show(&g.name)
            )
        } else {
            format!(
                "{}, {} MiB, VBIOS {}, persistence {}, MIG {}",
                show(&g.name),
                show(&g.memory_total_mib),
                show(&g.vbios_version),
                on_off(g.persistence_mode.get()),
                on_off(g.mig_mode.ok().map(|m| m.current))
            )
        };
        (g.index, line)
    });
    alike(lines.collect(), out);
}

/// The inventory's details: every identity, version, mode and link capability of every GPU.
pub fn inventory_details(inv: &InventoryReport) -> Entry {
    let mut node = Fields::default();
    node.reading("hostname", &inv.node.hostname)
        .reading("boot_id", &inv.node.boot_id)
        .reading("kernel_release", &inv.node.kernel_release);
    let mut driver = Fields::default();
    driver
        .reading("driver_version", &inv.driver.driver_version)
        .reading("cuda_driver_version", &inv.driver.cuda_driver_version)
        .reading("nvml_version", &inv.driver.nvml_version);
    let mut f = Fields::default();
    f.nested("node", node)
        .nested("driver", driver)
        .reading("device_count", &inv.device_count)
        .list("gpus", inv.gpus.iter().map(gpu_inventory));
    Entry::Fields(f)
}

fn gpu_inventory(g: &GpuInventory) -> Fields {
    let mut pcie = Fields::default();
    pcie.reading("max_link_gen", &g.pcie.max_link_gen)
        .reading("gpu_max_link_gen", &g.pcie.gpu_max_link_gen)
        .reading("max_link_width", &g.pcie.max_link_width);
    let mig_mode = Entry::of_reading(&g.mig_mode, |m| {
        let mut f = Fields::default();
        f.text("current", m.current).text("pending", m.pending);
        Entry::Fields(f)
    });
    let mut f = Fields::default();
    f.text("index", g.index)
        .optional("handle_error", g.handle_error.as_ref().map(failed))
        .reading("name", &g.name)
        .reading("uuid", &g.uuid)
        .reading("serial", &g.serial)
        .reading("board_part_number", &g.board_part_number)
        .reading("pci_bus_id", &g.pci_bus_id)
        .reading("pci_device_id", &g.pci_device_id)
        .reading("vbios_version", &g.vbios_version)
        .reading("architecture", &g.architecture)
        .reading("cuda_compute_capability", &g.cuda_compute_capability)
        .reading("memory_total_mib", &g.memory_total_mib)
        .entry("mig_mode", mig_mode)
        .list("mig_devices", g.mig_devices.iter().map(mig_device))
        .reading("persistence_mode", &g.persistence_mode)
        .reading("compute_mode", &g.compute_mode)
        .nested("pcie", pcie)
        .text("nvlink_count", g.nvlink_count)
        .text("nvlink_active", g.nvlink_active);
    f
}

fn mig_device(m: &MigDeviceInventory) -> Fields {
    let mut f = Fields::default();
    f.text("index", m.index)
        .reading("uuid", &m.uuid)
        .reading("gpu_instance_id", &m.gpu_instance_id)
        .reading("compute_instance_id", &m.compute_instance_id)
        .reading("profile", &m.profile)
        .reading("memory_total_mib", &m.memory_total_mib);
    f
}

/// Which GPU an entry is about, as every part of the details names it.
fn gpu_ref(f: &mut Fields, g: &GpuRef) {
    f.text("index", g.index)
        .reading("uuid", &g.uuid)
        .reading("pci_bus_id", &g.pci_bus_id);
}

/// The processes' details: every process of every GPU with its command line, state, memory, MIG device
/// and the pod and container its cgroup names.
pub fn processes_details(r: &ProcessesReport) -> Entry {
    let gpus = r.gpus.iter().map(|g| {
        let mut f = Fields::default();
        gpu_ref(&mut f, &g.gpu);
        f.reading("memory_used_mib", &g.memory_used_mib).entry(
            "processes",
            Entry::of_reading(&g.processes, |ps| {
                Entry::List(ps.iter().map(|p| Entry::Fields(process(p))).collect())
            }),
        );
        f
    });
    let mut f = Fields::default();
    f.list("gpus", gpus);
    Entry::Fields(f)
}

fn process(p: &ProcessReport) -> Fields {
    let mut f = Fields::default();
    f.text("pid", p.pid)
        .text("kind", &p.kind)
        .reading("name", &p.name)
        .reading("cmdline", &p.cmdline)
        .reading("state", &p.state)
        .optional("used_memory_mib", p.used_memory_mib)
        .optional("gpu_instance_id", p.gpu_instance_id)
        .optional("compute_instance_id", p.compute_instance_id)
        .optional("mig_device_uuid", p.mig_device_uuid.as_ref())
        .optional("pod_uid", p.pod_uid.as_ref())
        .optional("container_id", p.container_id.as_ref())
        .reading("age_seconds", &p.age_seconds);
    f
}

/// The telemetry's details: every reading of every GPU, thresholds and clock-event times included.
pub fn telemetry_details(r: &TelemetryReport) -> Entry {
    let mut f = Fields::default();
    f.list("gpus", r.gpus.iter().map(gpu_telemetry));
    Entry::Fields(f)
}

fn gpu_telemetry(t: &GpuTelemetry) -> Fields {
    let c = &t.temperature;
    let mut temperature = Fields::default();
    temperature
        .reading("gpu_c", &c.gpu_c)
        .reading("memory_c", &c.memory_c)
        .reading("slowdown_c", &c.slowdown_c)
        .reading("shutdown_c", &c.shutdown_c)
        .reading("gpu_max_operating_c", &c.gpu_max_operating_c)
        .reading("memory_max_operating_c", &c.memory_max_operating_c)
        .reading("headroom_to_slowdown_c", &c.headroom_to_slowdown_c);
    let p = &t.power;
    let mut power = Fields::default();
    power
        .decimal("draw_w", &p.draw_w)
        .decimal("limit_w", &p.limit_w)
        .decimal("default_limit_w", &p.default_limit_w)
        .decimal("max_limit_w", &p.max_limit_w);
    let utilization = Entry::of_reading(&t.utilization, |u| {
        let mut f = Fields::default();
        f.text("gpu_pct", u.gpu_pct)
            .text("memory_pct", u.memory_pct);
        Entry::Fields(f)
    });
    let memory = Entry::of_reading(&t.memory, |m| {
        let mut f = Fields::default();
        f.text("total_mib", m.total_mib)
            .text("used_mib", m.used_mib)
            .text("free_mib", m.free_mib)
            .text("used_pct", m.used_pct);
        Entry::Fields(f)
    });
    let k = &t.clocks;
    let mut clocks = Fields::default();
    clocks
        .reading("sm_mhz", &k.sm_mhz)
        .reading("sm_max_mhz", &k.sm_max_mhz)
        .reading("sm_pct_of_max", &k.sm_pct_of_max)
        .reading("graphics_mhz", &k.graphics_mhz)
        .reading("graphics_max_mhz", &k.graphics_max_mhz)
        .reading("memory_mhz", &k.memory_mhz)
        .reading("memory_max_mhz", &k.memory_max_mhz);
    let e = &t.clocks_event_time_s;
    let mut event_time = Fields::default();
    event_time
        .decimal("sw_power_cap", &e.sw_power_cap)
        .decimal("sw_thermal_slowdown", &e.sw_thermal_slowdown)
        .decimal("hw_thermal_slowdown", &e.hw_thermal_slowdown)
        .decimal("hw_power_brake_slowdown", &e.hw_power_brake_slowdown)
        .decimal("sync_boost", &e.sync_boost);
    // The verdict is left out, as the header's verdict is: the summary line shows it.
    let mut f = Fields::default();
    gpu_ref(&mut f, &t.gpu);
    f.nested("temperature", temperature)
        .values("fan_speed_pct", &t.fan_speed_pct)
        .nested("power", power)
        .entry("utilization", utilization)
        .entry("memory", memory)
        .nested("clocks", clocks)
        .reading("performance_state", &t.performance_state)
        .entry(
            "clocks_event_reasons",
            Entry::of_reading(&t.clocks_event_reasons, clocks_events),
        )
        .nested("clocks_event_time_s", event_time);
    f
}

fn clocks_events(c: &ClocksEvents) -> Entry {
    let reasons = c.reasons.iter().map(|r| {
        let mut f = Fields::default();
        f.text("name", &r.name)
            .text("bit", &r.bit)
            .text("class", serde_name(&r.class))
            .text("meaning", &r.meaning);
        f
    });
    let mut f = Fields::default();
    f.text("mask", &c.mask)
        .list("reasons", reasons)
        .optional("worst", c.worst.as_ref().map(serde_name));
    Entry::Fields(f)
}

/// `a` or `a-b` over the values read; `?` when none was.
fn span(values: impl Iterator<Item = Option<u64>>) -> String {
    let read: Vec<u64> = values.flatten().collect();
    match (read.iter().min(), read.iter().max()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "?".to_string(),
    }
}

fn int<T: Copy + Into<u64>>(r: &Reading<T>) -> Option<u64> {
    r.get().map(Into::into)
}

/// The part of a clocks verdict before its figures (`Clocks unrestricted (healthy)`).
fn verdict_class(v: &str) -> &str {
    v.split_once(": ").map_or(v, |(c, _)| c)
}

/// Telemetry, one line per group of GPUs with the same clocks verdict and model limits; `lost` GPUs (NVML
/// answers GPU_IS_LOST or has no handle) in one line of words.
pub fn telemetry(gpus: &[GpuTelemetry], lost: &BTreeSet<u32>, out: &mut String) {
    let mut groups: Vec<(String, Vec<&GpuTelemetry>)> = Vec::new();
    for t in gpus.iter().filter(|t| !lost.contains(&t.gpu.index)) {
        let key = format!(
            "{}|{:?}|{:?}|{:?}",
            verdict_class(&t.verdict),
            t.clocks.sm_max_mhz.get(),
            t.power.limit_w.get().map(|w| w.round() as u64),
            t.memory.ok().map(|m| m.total_mib)
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(t),
            None => groups.push((key, vec![t])),
        }
    }
    for (_, g) in &groups {
        let idx: Vec<u32> = g.iter().map(|t| t.gpu.index).collect();
        let first = g[0];
        let draw = span(
            g.iter()
                .map(|t| t.power.draw_w.get().map(|w| w.round() as u64)),
        );
        let limit = span(
            g.iter()
                .map(|t| t.power.limit_w.get().map(|w| w.round() as u64)),
        );
        let mem = match first.memory.ok() {
            Some(m) => format!(
                "mem {}/{} MiB",
                span(g.iter().map(|t| t.memory.ok().map(|m| m.used_mib))),
                m.total_mib
            ),
            None => "mem ?".to_string(),
        };
        let verdict = if g.len() == 1 {
            first.verdict.clone()
        } else {
            verdict_class(&first.verdict).to_string()
        };
        let _ = writeln!(
            out,
            "  {}: {} C, {draw}/{limit} W, SM {}/{} MHz, util {}%, {mem}; {verdict}",
            gpu_set(&idx),
            span(g.iter().map(|t| int(&t.temperature.gpu_c))),
            span(g.iter().map(|t| int(&t.clocks.sm_mhz))),
            span(g.iter().map(|t| int(&t.clocks.sm_max_mhz))),
            span(
                g.iter()
                    .map(|t| t.utilization.ok().map(|u| u64::from(u.gpu_pct)))
            ),
        );
    }
    let gone: Vec<u32> = gpus
        .iter()
        .map(|t| t.gpu.index)
        .filter(|i| lost.contains(i))
        .collect();
    if !gone.is_empty() {
        let _ = writeln!(
            out,
            "  {}: lost (NVML answers GPU_IS_LOST): no readings",
            gpu_set(&gone)
        );
    }
}

/// Processes, one line per group of GPUs whose processes are alike (name, kind, memory, pod), with their
/// PIDs counted; a GPU whose processes could not be read says why.
pub fn processes(gpus: &[GpuProcesses], lost: &BTreeSet<u32>, out: &mut String) {
    let mut items: Vec<(u32, String)> = Vec::new();
    let mut pids: Vec<(u32, Vec<u32>)> = Vec::new();
    for g in gpus {
        let i = g.gpu.index;
        let d = match g.processes.ok() {
            _ if lost.contains(&i) => {
                "lost (NVML answers GPU_IS_LOST): processes unreadable".to_string()
            }
            None => "processes unreadable".to_string(),
            Some(ps) if ps.is_empty() => continue,
            Some(ps) => {
                pids.push((i, ps.iter().map(|p| p.pid).collect()));
                let mut kinds: Vec<String> = ps
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({}){}{}",
                            p.name.ok().map(String::as_str).unwrap_or("?"),
                            p.kind,
                            p.used_memory_mib
                                .map(|m| format!(", {m} MiB"))
                                .unwrap_or_default(),
                            p.pod_uid
                                .as_deref()
                                .map(|u| format!(", pod uid {u}"))
                                .unwrap_or_default()
                        )
                    })
                    .collect();
                kinds.sort();
                let mut counted: Vec<(String, usize)> = Vec::new();
                for k in kinds {
                    match counted.last_mut() {
                        Some((last, n)) if *last == k => *n += 1,
                        _ => counted.push((k, 1)),
                    }
                }
                let more = counted.len().saturating_sub(KINDS_SHOWN);
                let mut line = counted
                    .into_iter()
                    .take(KINDS_SHOWN)
                    .map(|(k, n)| if n > 1 { format!("{n}x {k}") } else { k })
                    .collect::<Vec<_>>()
                    .join("; ");
                if more > 0 {
                    let _ = write!(line, "; (+{more} more kinds: get_gpu_processes lists them)");
                }
                line
            }
        };
        items.push((i, d));
    }
    let mut groups: Vec<(Vec<u32>, String)> = Vec::new();
    for (i, d) in items {
        match groups.iter_mut().find(|(_, x)| *x == d) {
            Some((v, _)) => v.push(i),
            None => groups.push((vec![i], d)),
        }
    }
    for (idx, d) in groups {
        let mine: Vec<u32> = pids
            .iter()
            .filter(|(i, _)| idx.contains(i))
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        let who = match mine.as_slice() {
            [] => String::new(),
            [p] => format!("pid {p} "),
            _ if idx.len() > 1 && mine.len() == idx.len() => {
                format!("1 process each (pids {}): ", pid_list(&mine))
            }
            _ if mine.len() <= 4 => format!(
                "pids {} ",
                mine.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("{} processes: ", mine.len()),
        };
        let _ = writeln!(out, "  {}: {who}{d}", gpu_set(&idx));
    }
}

/// PIDs as written, the first few and the last when many (they are not a range).
fn pid_list(pids: &[u32]) -> String {
    let all: Vec<String> = pids.iter().map(u32::to_string).collect();
    if all.len() <= 8 {
        all.join(", ")
    } else {
        format!("{}, {}, ... {}", all[0], all[1], all[all.len() - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::render::details::write_entry;
    use crate::mcp::render::text::serialized_details;
    use gpu_diag::facts::{FieldError, FieldErrorKind};

    fn written(e: &Entry) -> String {
        let mut out = String::new();
        write_entry(e, 0, &mut out);
        out
    }

    fn facts(s: &gpu_diag::scenarios::Scenario) -> gpu_diag::facts::NodeFacts {
        gpu_diag::scenarios::parse(&s.json()).unwrap()
    }

    /// The typed details say what the serialized report says, in the same layout, on every built-in
    /// scenario, and where every reading failed.
    #[test]
    fn typed_details_match_the_serialized_report() {
        let opts = Default::default();
        for s in gpu_diag::scenarios::BUILTIN {
            let inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
            assert_eq!(
                written(&inventory_details(&inv)),
                written(&serialized_details(&inv)),
                "{}",
                s.name
            );
            let tel = gpu_diag::analysis::telemetry::analyze(&facts(s), &opts);
            assert_eq!(
                written(&telemetry_details(&tel)),
                written(&serialized_details(&tel)),
                "{}",
                s.name
            );
            let procs = gpu_diag::analysis::processes::analyze(&facts(s), &opts);
            assert_eq!(
                written(&processes_details(&procs)),
                written(&serialized_details(&procs)),
                "{}",
                s.name
            );
        }
        let s = gpu_diag::scenarios::find("a100-mig").unwrap();
        let mut inv = gpu_diag::analysis::inventory::analyze(&facts(s), &opts);
        let failed = FieldError::with_message(FieldErrorKind::Unknown, "boom");
        inv.device_count = Reading::Err(failed.clone());
        inv.node = Default::default();
        let g = &mut inv.gpus[0];
        g.handle_error = Some(FieldError::new(FieldErrorKind::GpuIsLost));
        g.name = Reading::Err(failed.clone());
        g.mig_mode = Reading::Err(FieldError::new(FieldErrorKind::NotSupported));
        g.pcie.max_link_gen = Reading::Err(failed.clone());
        g.mig_devices[0].profile = Reading::Err(failed.clone());
        let text = written(&inventory_details(&inv));
        assert!(text.contains("mig_mode=<not_supported>"), "{text}");
        assert_eq!(text, written(&serialized_details(&inv)));
        let mut tel = gpu_diag::analysis::telemetry::analyze(&facts(s), &opts);
        let t = &mut tel.gpus[0];
        t.power.draw_w = Reading::Err(failed.clone());
        t.power.limit_w = Reading::Ok(f64::NAN);
        t.power.max_limit_w = Reading::Ok(300.0);
        t.utilization = Reading::Err(FieldError::new(FieldErrorKind::NotSupported));
        t.clocks_event_reasons = Reading::Err(failed.clone());
        t.fan_speed_pct = Reading::Ok((0..40).collect());
        tel.gpus[1].fan_speed_pct = Reading::Ok(Vec::new());
        let text = written(&telemetry_details(&tel));
        assert!(text.contains("max_limit_w=300.0"), "{text}");
        assert_eq!(text, written(&serialized_details(&tel)));
        let mut procs = gpu_diag::analysis::processes::analyze(&facts(s), &opts);
        let mut p = procs.gpus[0]
            .processes
            .ok()
            .expect("a100-mig runs processes")
            .clone();
        p[0].used_memory_mib = None;
        p[0].name = Reading::Err(failed.clone());
        procs.gpus[0].processes = Reading::Ok(p);
        procs.gpus[1].processes = Reading::Err(failed);
        assert_eq!(
            written(&processes_details(&procs)),
            written(&serialized_details(&procs))
        );
    }

    #[test]
    fn spans_read_values_only() {
        assert_eq!(span([Some(58), Some(60), None].into_iter()), "58-60");
        assert_eq!(span([Some(7), Some(7)].into_iter()), "7");
        assert_eq!(span([None, None].into_iter()), "?");
        assert_eq!(
            verdict_class("Clocks unrestricted (healthy): SM 1980 of 1980 MHz"),
            "Clocks unrestricted (healthy)"
        );
    }
}
