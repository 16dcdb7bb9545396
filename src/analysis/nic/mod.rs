//! NICs: the node's RDMA ports (InfiniBand and RoCE) judged by state, by rate against their peers of the
//! same model, and by their error counters, both as lifetime totals and as what rose during the probe's
//! sampling window; and the GPU ↔ NIC affinity from PCI paths and NUMA nodes, in the terms of
//! `nvidia-smi topo -m` (PIX, PXB, PHB, NODE, SYS).
//!
//! A faulty port stalls every rank of a multi-node job without any Xid, so each finding names the port,
//! its counters and the GPUs that port serves. Findings are node-level (the GPUs themselves are fine) and
//! one per code, listing every port it applies to.
//!
//! This file assembles the section; each part has its own file: `contract.rs` (the types), `port_rules.rs`
//! (a port's state, rate and counters judged, with `counters.rs` and `thresholds.rs`), `peers.rs` (ports
//! compared with their peers of the same model and link layer), `affinity.rs` (GPU <-> NIC), `findings.rs`
//! (one node-level finding per rule) and `summary.rs` (the one-line summary).

mod affinity;
mod contract;
mod counters;
mod findings;
mod peers;
mod port_rules;
mod summary;
mod thresholds;

use std::collections::BTreeMap;

use crate::facts::{NodeFacts, Reading};
use crate::finding::Finding;

use super::{canonical_bus_id, show};

use affinity::{affinity, far_gpus_finding};
use counters::error_lines;
use findings::{PortFinding, describe_port, rule_findings};
use peers::{PeerGroup, PeerRates, model};
use port_rules::{RuleTripped, is_up, judge_port, rate_gbps, state_word};
use summary::summarize;

pub use contract::{NicAffinity, NicAffinityRow, NicPort, NicReport};
pub use port_rules::parse_rate_gbps;
pub use thresholds::{
    CARRIER_CHANGES_LIFETIME, CARRIER_CHANGES_WINDOW, ERRORS_PER_HOUR_BUDGET, FLAPS_LIFETIME,
    SYMBOL_ERRORS_PER_S, XMIT_WAIT_PER_WORD,
};

/// The NIC section and its findings; `None` when the facts hold no NIC collection.
pub fn analyze(facts: &NodeFacts) -> (Option<NicReport>, Vec<Finding>) {
    let Some(rdma) = &facts.rdma else {
        return (None, Vec::new());
    };
    let rdma = match rdma {
        Reading::Ok(r) => r,
        Reading::Err(e) => {
            return (
                Some(NicReport {
                    summary: format!(
                        "RDMA devices unreadable: {}{}",
                        super::error_name(e.error),
                        e.message
                            .as_deref()
                            .map_or(String::new(), |m| format!(" ({m})"))
                    ),
                    ..Default::default()
                }),
                Vec::new(),
            );
        }
    };
    if rdma.devices.is_empty() {
        return (
            Some(NicReport {
                summary: "none: this node has no RDMA device (no InfiniBand or RoCE NIC under /sys/class/infiniband)".into(),
                ..Default::default()
            }),
            Vec::new(),
        );
    }
    let window_s = rdma.sample_interval_ms.map(|ms| ms as f64 / 1000.0);
    let uptime = super::uptime_s(facts);
    let aff = affinity(&facts.gpus, &rdma.devices);
    let serves = |dev: &str| -> Vec<u32> {
        aff.rows
            .iter()
            .filter(|r| r.nearest_nics.iter().any(|n| n == dev))
            .map(|r| r.gpu)
            .collect()
    };

    let peers = PeerRates::of(&rdma.devices);

    let mut ports = Vec::new();
    let mut hits: BTreeMap<&'static str, Vec<PortFinding>> = BTreeMap::new();
    for d in &rdma.devices {
        let nd = d.netdevs.first();
        let gpus = serves(&d.name);
        for p in &d.ports {
            let label = format!("{}/{}", d.name, p.port);
            let up = is_up(p, nd);
            let k = PeerGroup::of(d, p);
            let peers_up = peers.others_up(&k, up);
            let mut judged = judge_port(p, nd, peers_up, window_s, uptime);
            let rate = rate_gbps(p, nd);
            judged.extend(peers.rate_degraded(&k, p, rate, up));
            let who = describe_port(&label, d, &gpus);
            let mut judgement: Vec<String> = Vec::new();
            for RuleTripped {
                rule,
                severity,
                evidence,
            } in judged
            {
                judgement.push(rule.word.to_string());
                hits.entry(rule.code).or_default().push(PortFinding {
                    severity,
                    port: who.clone(),
                    label: label.clone(),
                    evidence,
                    ethernet: p.link_layer.ok().is_some_and(|l| l == "Ethernet"),
                });
            }
            if judgement.is_empty() {
                judgement.push("ok".into());
            }
            ports.push(NicPort {
                port: label,
                device: d.name.clone(),
                pci_bus_id: canonical_bus_id(&d.pci_bus_id),
                numa_node: d.numa_node.clone(),
                model: model(d),
                link_layer: p.link_layer.clone(),
                state: format!(
                    "{}/{}{}",
                    state_word(&p.state),
                    state_word(&p.phys_state),
                    nd.map_or(String::new(), |n| format!(
                        ", {} {}",
                        n.name,
                        show(&n.operstate)
                    ))
                ),
                rate_gbps: rate,
                netdev: nd.map(|n| n.name.clone()),
                errors: error_lines(p, nd, window_s),
                serves_gpus: gpus.clone(),
                judgement,
            });
        }
    }

    let mut findings = rule_findings(&hits);
    findings.extend(far_gpus_finding(&aff));

    let summary = summarize(&ports);
    (
        Some(NicReport {
            summary,
            sample_interval_ms: rdma.sample_interval_ms,
            ports,
            affinity: aff,
        }),
        findings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{GpuFacts, NetdevFacts, RdmaDeviceFacts, RdmaFacts, RdmaPortFacts};
    use crate::finding::Severity;

    fn path(s: &str) -> Vec<String> {
        s.split('/').map(str::to_string).collect()
    }

    fn counters(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn ib_port(
        state: &str,
        phys: &str,
        rate: &str,
        c: &[(&str, u64)],
        later: &[(&str, u64)],
    ) -> RdmaPortFacts {
        let mut all = counters(&[
            ("symbol_error", 0),
            ("link_downed", 0),
            ("link_error_recovery", 0),
            ("port_rcv_errors", 0),
            ("local_link_integrity_errors", 0),
            ("excessive_buffer_overrun_errors", 0),
            ("port_xmit_wait", 1000),
            ("port_xmit_data", 1_000_000),
        ]);
        all.extend(counters(c));
        let mut l = all.clone();
        l.retain(|k, _| crate::facts::RESAMPLED_PORT_COUNTERS.contains(&k.as_str()));
        l.extend(counters(later));
        RdmaPortFacts {
            port: 1,
            state: Reading::Ok(state.into()),
            phys_state: Reading::Ok(phys.into()),
            rate: Reading::Ok(rate.into()),
            link_layer: Reading::Ok("InfiniBand".into()),
            counters: Reading::Ok(all),
            hw_counters: Reading::not_supported(),
            counters_later: l,
        }
    }

    fn dev(i: u32, port: RdmaPortFacts) -> RdmaDeviceFacts {
        RdmaDeviceFacts {
            name: format!("mlx5_{i}"),
            hca_type: Reading::Ok("MT4129".into()),
            pci_bus_id: Reading::Ok(format!("0000:{:02x}:00.0", 0x20 + i)),
            pci_path: Reading::Ok(path(&format!(
                "pci0000:{0:02x}/0000:{0:02x}:01.0/0000:{1:02x}:00.0/0000:{2:02x}:04.0/0000:{3:02x}:00.0",
                0x10 * i,
                0x10 * i + 1,
                0x10 * i + 2,
                0x20 + i
            ))),
            numa_node: Reading::Ok(if i < 2 { 0 } else { 1 }),
            ports: vec![port],
            ..Default::default()
        }
    }

    fn ok_port() -> RdmaPortFacts {
        ib_port("4: ACTIVE", "5: LinkUp", "400 Gb/sec (4X NDR)", &[], &[])
    }

    fn node(devices: Vec<RdmaDeviceFacts>) -> NodeFacts {
        NodeFacts {
            rdma: Some(Reading::Ok(RdmaFacts {
                sample_interval_ms: Some(1000),
                devices,
            })),
            ..Default::default()
        }
    }

    fn codes(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.code.as_str(), f.severity)).collect()
    }

    #[test]
    fn healthy_ports_have_no_findings_and_one_line() {
        let (r, f) = analyze(&node((0..4).map(|i| dev(i, ok_port())).collect()));
        assert!(f.is_empty(), "{f:?}");
        let r = r.unwrap();
        assert_eq!(
            r.summary,
            "4 port(s): 4 x InfiniBand 400 Gb/s (MT4129); all up, no error counts"
        );
        assert!(r.ports.iter().all(|p| p.judgement == ["ok"]));
    }

    #[test]
    fn no_rdma_says_so_and_not_collected_says_nothing() {
        let (r, f) = analyze(&node(vec![]));
        assert!(
            r.unwrap()
                .summary
                .starts_with("none: this node has no RDMA device")
        );
        assert!(f.is_empty());
        assert_eq!(analyze(&NodeFacts::default()), (None, Vec::new()));
    }

    #[test]
    fn down_slow_flapping_and_errors() {
        let down = ib_port("1: DOWN", "2: Polling", "10 Gb/sec (4X SDR)", &[], &[]);
        let slow = ib_port("4: ACTIVE", "5: LinkUp", "200 Gb/sec (4X HDR)", &[], &[]);
        let flapping = ib_port(
            "4: ACTIVE",
            "5: LinkUp",
            "400 Gb/sec (4X NDR)",
            &[("link_downed", 14), ("symbol_error", 40_000)],
            &[("link_downed", 15), ("symbol_error", 40_100)],
        );
        let (r, f) = analyze(&node(vec![
            dev(0, ok_port()),
            dev(1, down),
            dev(2, slow),
            dev(3, flapping),
        ]));
        assert_eq!(
            codes(&f),
            [
                ("nic.port_down", Severity::Critical),
                ("nic.link_flapping", Severity::Critical),
                ("nic.rate_degraded", Severity::Warning),
                ("nic.symbol_errors", Severity::Warning),
            ]
        );
        assert!(
            f[0].summary.contains("mlx5_1/1 (0000:21:00.0)"),
            "{}",
            f[0].summary
        );
        assert!(
            f[1].evidence
                .iter()
                .any(|e| e == "link_downed = 14 (+1 in 1.0 s)"),
            "{:?}",
            f[1].evidence
        );
        assert!(
            f[3].evidence
                .iter()
                .any(|e| e.contains("symbol_error = 40000 (+100 in 1.0 s)"))
        );
        let r = r.unwrap();
        assert!(
            r.summary.contains(
                "not fine: mlx5_1/1 down, mlx5_2/1 rate_degraded, mlx5_3/1 flapping+symbol_errors"
            ),
            "{}",
            r.summary
        );
    }

    #[test]
    fn several_ports_make_one_finding_per_code() {
        let down = || ib_port("1: DOWN", "2: Polling", "10 Gb/sec (4X SDR)", &[], &[]);
        let (_, f) = analyze(&node(vec![
            dev(0, ok_port()),
            dev(1, down()),
            dev(2, down()),
        ]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Critical)]);
        assert!(
            f[0].summary.starts_with(
                "RDMA ports mlx5_1/1 (0000:21:00.0); mlx5_2/1 (0000:22:00.0): not ACTIVE"
            ),
            "{}",
            f[0].summary
        );
        assert_eq!(
            f[0].evidence[0],
            "mlx5_1/1: state = 1: DOWN, phys_state = 2: Polling"
        );
        assert!(f[0].evidence.last().unwrap().starts_with("threshold: "));
        assert_eq!(
            f[0].evidence
                .iter()
                .filter(|e| e.contains("threshold"))
                .count(),
            1
        );
    }

    #[test]
    fn a_port_that_never_carried_traffic_is_only_info() {
        let spare = ib_port(
            "1: DOWN",
            "3: Disabled",
            "10 Gb/sec (4X SDR)",
            &[("port_xmit_data", 0), ("port_rcv_data", 0)],
            &[],
        );
        let (_, f) = analyze(&node(vec![dev(0, ok_port()), dev(1, spare)]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Info)]);
    }

    #[test]
    fn a_lone_down_port_is_only_a_warning() {
        let down = ib_port("1: DOWN", "3: Disabled", "10 Gb/sec (4X SDR)", &[], &[]);
        let (_, f) = analyze(&node(vec![dev(0, down)]));
        assert_eq!(codes(&f), [("nic.port_down", Severity::Warning)]);
    }

    #[test]
    fn integrity_overrun_and_congestion() {
        let p = ib_port(
            "4: ACTIVE",
            "5: LinkUp",
            "400 Gb/sec (4X NDR)",
            &[
                ("local_link_integrity_errors", 15),
                ("excessive_buffer_overrun_errors", 2),
            ],
            &[
                ("local_link_integrity_errors", 15),
                ("excessive_buffer_overrun_errors", 3),
                ("port_xmit_wait", 9_000_000),
                ("port_xmit_data", 3_000_000),
            ],
        );
        let (_, f) = analyze(&node(vec![dev(0, p), dev(1, ok_port())]));
        assert_eq!(
            codes(&f),
            [
                ("nic.link_integrity", Severity::Warning),
                ("nic.buffer_overrun", Severity::Critical),
                ("nic.congestion", Severity::Warning),
            ]
        );
        assert!(
            f[0].evidence[0].contains("(saturated: at least)"),
            "{:?}",
            f[0].evidence
        );
    }

    #[test]
    fn roce_carrier_changes_flap() {
        let mut p = ok_port();
        p.link_layer = Reading::Ok("Ethernet".into());
        let mut d = dev(0, p);
        d.netdevs = vec![NetdevFacts {
            name: "ens1f0np0".into(),
            operstate: Reading::Ok("up".into()),
            speed_mbps: Reading::Ok(400_000),
            carrier_changes: Reading::Ok(9),
            statistics: Reading::Ok(counters(&[("rx_errors", 0), ("rx_crc_errors", 0)])),
            later: counters(&[
                ("carrier_changes", 11),
                ("rx_errors", 0),
                ("rx_crc_errors", 0),
            ]),
        }];
        let (r, f) = analyze(&node(vec![d.clone()]));
        assert_eq!(codes(&f), [("nic.link_flapping", Severity::Critical)]);
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e == "ens1f0np0.carrier_changes = 9 (+2 in 1.0 s)")
        );
        assert_eq!(r.unwrap().ports[0].netdev.as_deref(), Some("ens1f0np0"));
        // Lifetime only, below the threshold: nothing.
        d.netdevs[0].carrier_changes = Reading::Ok(2);
        d.netdevs[0].later.insert("carrier_changes".into(), 2);
        assert!(analyze(&node(vec![d.clone()])).1.is_empty());
        // Operstate down makes the port down whatever the RDMA state says.
        d.netdevs[0].operstate = Reading::Ok("down".into());
        assert_eq!(
            codes(&analyze(&node(vec![d])).1),
            [("nic.port_down", Severity::Warning)]
        );
    }

    #[test]
    fn gpus_far_from_every_nic_are_flagged() {
        let mut facts = node(vec![dev(0, ok_port()), dev(1, ok_port())]);
        let gpu = |i: u32, p: &str, numa: i32| GpuFacts {
            index: i,
            numa_node: Reading::Ok(numa),
            pci_path: Some(Reading::Ok(path(p))),
            ..Default::default()
        };
        facts.gpus = vec![
            gpu(
                0,
                "pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0",
                0,
            ),
            gpu(
                1,
                "pci0000:10/0000:10:01.0/0000:11:00.0/0000:12:08.0/0000:14:00.0/0000:15:00.0/0000:16:00.0",
                0,
            ),
            gpu(2, "pci0000:a0/0000:a0:01.0/0000:a1:00.0", 1),
        ];
        let (r, f) = analyze(&facts);
        let r = r.unwrap();
        assert_eq!(r.affinity.columns, ["mlx5_0", "mlx5_1"]);
        assert_eq!(r.affinity.rows[0].cells, ["PIX", "NODE"]);
        assert_eq!(r.affinity.rows[1].cells, ["NODE", "PXB"]);
        assert_eq!(r.affinity.rows[2].cells, ["SYS", "SYS"]);
        // GPU 2 is equally far from both.
        assert_eq!(r.ports[0].serves_gpus, [0, 2]);
        assert_eq!(r.ports[1].serves_gpus, [1, 2]);
        assert_eq!(codes(&f), [("nic.gpu_far", Severity::Warning)]);
        assert!(f[0].summary.starts_with("GPU 2 reaches the nearest"));
        // A NIC whose relation is unknown might be nearer: no claim, no finding.
        facts.gpus[2].pci_path = None;
        facts.gpus[2].numa_node = Reading::not_supported();
        let (r, f) = analyze(&facts);
        assert_eq!(r.unwrap().affinity.rows[2].nearest, "?");
        assert!(f.is_empty(), "{f:?}");
    }
}
