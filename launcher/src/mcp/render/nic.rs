//! The NIC part of a topology answer, compact: the probe's one-line summary, the GPU → nearest NIC map in
//! one line, and a line for each port that deviates (its state, rate, PCI address, the GPUs it serves and
//! its non-zero error counters). Healthy ports get no line of their own; the structured content keeps all.

use std::fmt::Write;

use gpu_diag::analysis::nic::{NicAffinity, NicPort, NicReport};
use gpu_diag::facts::Reading;

pub fn render(n: &NicReport, out: &mut String) {
    let _ = write!(out, "NICs: {}", n.summary);
    if let Some(ms) = n.sample_interval_ms {
        let _ = write!(out, " · counters sampled {:.1} s apart", ms as f64 / 1000.0);
    }
    out.push('\n');
    if let Some(line) = affinity_line(&n.affinity) {
        let _ = writeln!(out, "  GPU → nearest NIC: {line}");
    }
    for p in n.ports.iter().filter(|p| p.judgement != ["ok"]) {
        let _ = writeln!(out, "  {}", port_line(p));
    }
}

/// `0 mlx5_0, 1 mlx5_1, ... (all PIX)`, or each GPU's relation when they differ.
fn affinity_line(a: &NicAffinity) -> Option<String> {
    if a.rows.is_empty() {
        return None;
    }
    let uniform = a.rows.windows(2).all(|w| w[0].nearest == w[1].nearest);
    let cells: Vec<String> = a
        .rows
        .iter()
        .map(|r| {
            let nics = if r.nearest_nics.is_empty() {
                "?".to_string()
            } else {
                r.nearest_nics.join("/")
            };
            if uniform {
                format!("{} {nics}", r.gpu)
            } else {
                format!("{} {nics} {}", r.gpu, r.nearest)
            }
        })
        .collect();
    let mut line = cells.join(", ");
    if uniform {
        let _ = write!(line, " (all {})", a.rows[0].nearest);
    }
    Some(line)
}

/// `mlx5_5/1 flapping+symbol_errors: ACTIVE/LinkUp, 400 Gb/s, 0000:ac:00.0, serves GPU 5; link_downed = 37 (+1 in 1.0 s)`.
fn port_line(p: &NicPort) -> String {
    let mut parts = vec![p.state.clone()];
    if let Some(r) = p.rate_gbps {
        parts.push(format!("{r} Gb/s"));
    }
    if let Reading::Ok(b) = &p.pci_bus_id {
        parts.push(b.clone());
    }
    if !p.serves_gpus.is_empty() {
        let gpus: Vec<String> = p.serves_gpus.iter().map(u32::to_string).collect();
        parts.push(format!("serves GPU {}", gpus.join(", ")));
    }
    let mut line = format!("{} {}: {}", p.port, p.judgement.join("+"), parts.join(", "));
    if !p.errors.is_empty() {
        let _ = write!(line, "; {}", p.errors.join("; "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: &str) -> NicReport {
        let facts =
            gpu_diag::scenarios::parse(&gpu_diag::scenarios::find(scenario).unwrap().json())
                .unwrap();
        gpu_diag::analysis::nic::analyze(&facts).0.unwrap()
    }

    #[test]
    fn healthy_rails_take_two_lines() {
        let mut out = String::new();
        render(&report("dgx-h100-healthy"), &mut out);
        assert_eq!(
            out,
            "NICs: 8 port(s): 8 x InfiniBand 400 Gb/s (MT4129); all up, no error counts · counters sampled 1.0 s apart\n  GPU → nearest NIC: 0 mlx5_0, 1 mlx5_1, 2 mlx5_2, 3 mlx5_3, 4 mlx5_4, 5 mlx5_5, 6 mlx5_6, 7 mlx5_7 (all PIX)\n"
        );
    }

    #[test]
    fn deviating_ports_get_a_line_with_their_counters() {
        let mut out = String::new();
        render(&report("dgx-h100-ib-flapping"), &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[2].starts_with(
                "  mlx5_5/1 flapping+symbol_errors+receive_errors: ACTIVE/LinkUp, 400 Gb/s, 0000:ac:00.0, serves GPU 5; "
            ),
            "{out}"
        );
        assert!(lines[2].contains("link_downed = 37 (+1 in 1.0 s)"), "{out}");
        let mut out = String::new();
        render(&report("h100-roce-carrier-flaps"), &mut out);
        assert!(
            out.contains("GPU → nearest NIC: 0 mlx5_0/mlx5_1 PHB, 1 mlx5_0/mlx5_1 SYS"),
            "{out}"
        );
    }

    #[test]
    fn no_rdma_device_is_one_line() {
        let mut out = String::new();
        render(
            &NicReport {
                summary: "none: this node has no RDMA device".into(),
                ..Default::default()
            },
            &mut out,
        );
        assert_eq!(out, "NICs: none: this node has no RDMA device\n");
    }
}
