//! A topology report as text, compact: the GPU × GPU matrix with CPU and NUMA affinity (as `nvidia-smi topo
//! -m` prints it), then NVLink, PCIe and fabric state in one line where every GPU is alike and a line per GPU
//! that deviates, then the NICs. Findings come before it (the caller renders them).

use std::fmt::Write;

use gpu_diag::analysis::index_ranges;
use gpu_diag::analysis::topology::{GpuTopology, NvLinkState, TopologyReport};

use super::nic;

pub fn render(t: &TopologyReport, out: &mut String) {
    matrix(t, out);
    nvlinks(&t.gpus, out);
    pcie(&t.gpus, out);
    fabric(&t.gpus, out);
    if !t.pairs.is_empty() {
        // A summarised report keeps only the pairs that lack some peer-to-peer support.
        let all = t.gpus.iter().all(|g| g.nvlink_summary.is_none());
        out.push_str(if all {
            "P2P:\n"
        } else {
            "P2P not fully supported:\n"
        });
    }
    for p in &t.pairs {
        let _ = writeln!(
            out,
            "  GPU{}-GPU{} ({}): read {}, write {}, nvlink {}, atomics {}",
            p.a,
            p.b,
            p.connection,
            p.p2p.read.as_deref().unwrap_or("?"),
            p.p2p.write.as_deref().unwrap_or("?"),
            p.p2p.nvlink.as_deref().unwrap_or("?"),
            p.p2p.atomics.as_deref().unwrap_or("?")
        );
    }
    if let Some(n) = &t.nics {
        nic::render(n, out);
    }
    gaudi_nic(&t.gaudi_nic, out);
    if let Some(o) = &t.omitted {
        let _ = writeln!(out, "not listed: {o}");
    }
}

fn matrix(t: &TopologyReport, out: &mut String) {
    let m = &t.matrix;
    if m.rows.is_empty() {
        return;
    }
    let w = m
        .columns
        .iter()
        .chain(m.rows.iter().flat_map(|r| r.cells.iter()))
        .map(|c| c.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = write!(out, "matrix:\n  {:<6}", "");
    for c in &m.columns {
        let _ = write!(out, " {c:>w$}");
    }
    let _ = writeln!(out, "  CPU affinity  NUMA");
    for r in &m.rows {
        let _ = write!(out, "  {:<6}", r.gpu);
        for c in &r.cells {
            let _ = write!(out, " {c:>w$}");
        }
        let _ = writeln!(out, "  {}  {}", r.cpu_affinity, r.numa_node);
    }
    // Only the legend entries the matrix uses.
    let used: Vec<&String> = m
        .legend
        .iter()
        .filter(|l| {
            let key = l.split(" = ").next().unwrap_or("");
            key != "X"
                && m.rows.iter().any(|r| {
                    r.cells
                        .iter()
                        .any(|c| c == key || (key == "NV#" && c.starts_with("NV")))
                })
        })
        .collect();
    if !used.is_empty() {
        let _ = writeln!(
            out,
            "  legend: {}",
            used.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
}

/// `GPU 0-7`, `GPU 0-2, 4-7`: indices with their runs collapsed, in the order given (callers list GPUs in
/// index order already; a CPU list, by contrast, is sorted first).
/// A Gaudi's own NIC ports as libhlml reads them: devices alike in one line, the ports down named.
fn gaudi_nic(links: &[gpu_diag::analysis::gaudi::GaudiNicLinks], out: &mut String) {
    if links.is_empty() {
        return;
    }
    out.push_str("Gaudi NIC ports (libhlml; the RDMA core does not show them):\n");
    alike(
        links
            .iter()
            .map(|l| {
                let mut d = format!("{} ports ({} external)", l.ports, l.external);
                if l.down.is_empty() {
                    d.push_str(", all up");
                } else {
                    let down: Vec<String> = l
                        .down
                        .iter()
                        .map(|p| {
                            format!(
                                "{} ({})",
                                p.port,
                                if p.external { "external" } else { "internal" }
                            )
                        })
                        .collect();
                    d.push_str(&format!(", down: {}", down.join(", ")));
                }
                if l.unread > 0 {
                    d.push_str(&format!(", {} unread", l.unread));
                }
                (l.gpu, d)
            })
            .collect(),
        out,
    );
}

pub fn gpu_set(idx: &[u32]) -> String {
    format!("GPU {}", index_ranges(idx, ", "))
}

/// One line per description, naming the GPUs that share it: `  GPU 0-2, 4-7: ...`.
pub fn alike(items: Vec<(u32, String)>, out: &mut String) {
    for (idx, d) in grouped(items) {
        let _ = writeln!(out, "  {}: {d}", gpu_set(&idx));
    }
}

/// Groups of GPUs with the same description, in index order of their first GPU.
fn grouped(items: Vec<(u32, String)>) -> Vec<(Vec<u32>, String)> {
    let mut groups: Vec<(Vec<u32>, String)> = Vec::new();
    for (i, d) in items {
        match groups.iter_mut().find(|(_, x)| *x == d) {
            Some((v, _)) => v.push(i),
            None => groups.push((vec![i], d)),
        }
    }
    groups
}

/// A link's state and counters, without its number (links alike are listed together).
fn link_line(l: &NvLinkState) -> String {
    let n = |r: &gpu_diag::facts::Reading<u64>| r.get().map_or("?".into(), |v| v.to_string());
    format!(
        "{} ({}): replay {}, recovery {}, CRC flit {}, CRC data {}",
        l.state.ok().map(String::as_str).unwrap_or("unreadable"),
        l.judgement,
        n(&l.replay_errors),
        n(&l.recovery_errors),
        n(&l.crc_flit_errors),
        n(&l.crc_data_errors)
    )
}

fn nvlinks(gpus: &[GpuTopology], out: &mut String) {
    let items: Vec<(u32, String)> = gpus
        .iter()
        .filter_map(|g| {
            let s = g.nvlink_summary.as_ref()?;
            let v = if s.versions.is_empty() {
                "version unknown".to_string()
            } else {
                s.versions
                    .iter()
                    .map(|v| format!("v{v}"))
                    .collect::<Vec<_>>()
                    .join("/")
            };
            let state = if s.active == s.links {
                "all active".to_string()
            } else {
                format!("{} active", s.active)
            };
            let errors = match s.counters_unreadable {
                0 => format!("{} errors", s.errors),
                n if n == s.links => "error counters unreadable".to_string(),
                n => format!("{} errors (counters unreadable on {n} links)", s.errors),
            };
            Some((
                g.gpu.index,
                format!("{} NVLinks each, {state}, {v}, {errors}", s.links),
            ))
        })
        .collect();
    let listed: Vec<&GpuTopology> = gpus.iter().filter(|g| !g.nvlinks.is_empty()).collect();
    if items.is_empty() && listed.is_empty() {
        return;
    }
    out.push_str("NVLink:\n");
    for (idx, d) in grouped(items) {
        let d = if idx.len() == 1 {
            d.replace("NVLinks each", "NVLinks")
        } else {
            d
        };
        let _ = writeln!(out, "  {}: {d}", gpu_set(&idx));
    }
    for g in listed {
        let lines: Vec<(u32, String)> = g.nvlinks.iter().map(|l| (l.link, link_line(l))).collect();
        for (links, d) in grouped(lines) {
            let set = index_ranges(&links, ", ");
            let noun = if links.len() > 1 { "links" } else { "link" };
            let _ = writeln!(out, "  GPU {} {noun} {set}: {d}", g.gpu.index);
        }
    }
}

fn pcie(gpus: &[GpuTopology], out: &mut String) {
    let items: Vec<(u32, String)> = gpus
        .iter()
        .map(|g| {
            let p = &g.pcie;
            let aer = p
                .aer
                .ok()
                .map(|a| {
                    if a.correctable + a.nonfatal + a.fatal == 0 {
                        "no AER errors".to_string()
                    } else {
                        format!(
                            "AER correctable {}, nonfatal {}, fatal {}",
                            a.correctable, a.nonfatal, a.fatal
                        )
                    }
                })
                .unwrap_or_else(|| "AER unreadable".into());
            let replays = p
                .replay_counter
                .get()
                .map_or("replays ?".into(), |r| format!("{r} replays"));
            (g.gpu.index, format!("{}; {replays}; {aer}", p.verdict))
        })
        .collect();
    if items.is_empty() {
        return;
    }
    out.push_str("PCIe:\n");
    alike(items, out);
}

fn fabric(gpus: &[GpuTopology], out: &mut String) {
    let items: Vec<(u32, String)> = gpus
        .iter()
        .filter_map(|g| {
            let f = g.fabric.ok()?;
            let unhealthy: Vec<&String> = f
                .health
                .iter()
                .filter(|h| !(h.ends_with("=false") || h.ends_with("=none")))
                .collect();
            Some((
                g.gpu.index,
                format!(
                    "{}{}{}",
                    f.state,
                    f.status
                        .as_deref()
                        .map(|s| format!(" ({s})"))
                        .unwrap_or_default(),
                    if unhealthy.is_empty() {
                        ", healthy".to_string()
                    } else {
                        format!(
                            ", {}",
                            unhealthy
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ),
            ))
        })
        .collect();
    if items.is_empty() {
        return;
    }
    out.push_str("NVSwitch fabric:\n");
    alike(items, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_sets_read_as_ranges_or_lists() {
        assert_eq!(gpu_set(&[0, 1, 2, 3, 4, 5, 6, 7]), "GPU 0-7");
        assert_eq!(gpu_set(&[0, 2, 3]), "GPU 0, 2-3");
        assert_eq!(gpu_set(&[0, 1, 2, 4, 5, 6, 7]), "GPU 0-2, 4-7");
        assert_eq!(gpu_set(&[5]), "GPU 5");
        // In the order given, unlike the kernel's CPU list (`0-3`): a group lists its GPUs as they came.
        assert_eq!(gpu_set(&[2, 3, 0, 1]), "GPU 2-3, 0-1");
    }
}
