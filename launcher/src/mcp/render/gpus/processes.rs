//! Processes as text: one line per group of GPUs that run the same kind of process for the same pod, their
//! PIDs counted ([`summary`]), and every process with its command line, state, memory, MIG device and
//! pod ([`details`]).

use std::collections::BTreeSet;
use std::fmt::Write;

use gpu_diag::analysis::processes::{GpuProcesses, ProcessReport, ProcessesReport};

use gpu_diag::facts::{FieldError, Reading};

use crate::mcp::render::details::{Entry, Fields, failed};
use crate::mcp::render::topology::gpu_set;

/// Kinds of process named per GPU line (a GPU may run hundreds of processes: they are counted).
const KINDS_SHOWN: usize = 4;

/// The processes' details: every process of every GPU with its command line, state, memory, MIG device
/// and the pod and container its cgroup names.
pub fn details(r: &ProcessesReport) -> Entry {
    // A reading every GPU failed alike (a driver that shows no UUID, no address, no memory use) is said
    // once for the node, not on each of sixteen devices.
    let once = |get: fn(&GpuProcesses) -> &Reading<_>| -> Option<FieldError> {
        let first = get(r.gpus.first()?).err()?.clone();
        (r.gpus.len() > 1 && r.gpus.iter().all(|g| get(g).err() == Some(&first))).then_some(first)
    };
    let uuid = once(|g| &g.gpu.uuid);
    let pci = once(|g| &g.gpu.pci_bus_id);
    let mem = r
        .gpus
        .first()
        .and_then(|g0| g0.memory_used_mib.err().cloned())
        .filter(|e| r.gpus.len() > 1 && r.gpus.iter().all(|g| g.memory_used_mib.err() == Some(e)));
    let gpus = r.gpus.iter().map(|g| {
        let mut f = Fields::default();
        f.text("index", g.gpu.index);
        if uuid.is_none() {
            f.reading("uuid", &g.gpu.uuid);
        }
        if pci.is_none() {
            f.reading("pci_bus_id", &g.gpu.pci_bus_id);
        }
        if mem.is_none() {
            f.reading("memory_used_mib", &g.memory_used_mib);
        }
        f.entry(
            "processes",
            Entry::of_reading(&g.processes, |ps| {
                Entry::List(ps.iter().map(|p| Entry::Fields(process(p))).collect())
            }),
        );
        f
    });
    let mut f = Fields::default();
    f.list("gpus", gpus);
    for (name, e) in [
        ("memory_used_mib", &mem),
        ("pci_bus_id", &pci),
        ("uuid", &uuid),
    ] {
        if let Some(e) = e {
            f.text(name, failed(e));
        }
    }
    Entry::Fields(f)
}

/// The serialized report as [`details`] renders it: a reading every GPU failed alike said once. What the
/// typed-details test compares with.
#[cfg(test)]
pub fn as_rendered(v: &mut serde_json::Value) {
    let Some(gpus) = v.get("gpus").and_then(|g| g.as_array()).cloned() else {
        return;
    };
    for key in ["memory_used_mib", "pci_bus_id", "uuid"] {
        let first = gpus.first().and_then(|g| g.get(key)).cloned();
        let Some(e) = first.filter(|e| e.get("error").is_some()) else {
            continue;
        };
        if gpus.len() < 2 || !gpus.iter().all(|g| g.get(key) == Some(&e)) {
            continue;
        }
        if let Some(list) = v.get_mut("gpus").and_then(|g| g.as_array_mut()) {
            for g in list.iter_mut().filter_map(|g| g.as_object_mut()) {
                g.remove(key);
            }
        }
        v[key] = e;
    }
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

/// Processes, one line per group of GPUs whose processes are alike (name, kind, memory, pod), with their
/// PIDs counted; a GPU whose processes could not be read says why.
pub fn summary(gpus: &[GpuProcesses], lost: &BTreeSet<u32>, out: &mut String) {
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
