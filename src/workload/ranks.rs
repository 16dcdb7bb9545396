//! What the ranks' own logs say: each rank's first own fault, the rank the others wait for, the peer NCCL
//! lost, and a rank on sockets among InfiniBand peers; the collateral timeouts become consequences.

use std::collections::BTreeMap;

use super::answer::{Suspect, SuspectKind};
use super::holders::{HeldGpus, gpu_of_pod};
use super::input::{WorkloadInput, WorkloadPod};
use super::merge::Candidate;
use super::time::{cmp_times, earliest};
use crate::finding::{Judged, Severity};
use crate::workload::joblog::{
    CudaErrorKind, LogEvent, NcclProblem, PodLogScan, Signature, Transport,
};

/// What the ranks' logs give the diagnosis.
#[derive(Debug, Default)]
pub(super) struct RankFindings {
    pub candidates: Vec<Candidate>,
    /// What the rest of the job did (timeouts, lost peers, hang notices, aborts after a timeout).
    pub consequences: Vec<String>,
}

/// A pod whose log was read, with its scan.
#[derive(Clone, Copy)]
struct RankLog<'a> {
    pod: &'a WorkloadPod,
    scan: &'a PodLogScan,
}

impl RankLog<'_> {
    /// `rank 8 (pod train-1)`, or `pod train-1` where the log names no rank.
    fn label(&self) -> String {
        match self.scan.ranks.first() {
            Some(r) => format!("rank {r} (pod {})", self.pod.name),
            None => format!("pod {}", self.pod.name),
        }
    }
}

/// The logs read, and what places a rank on its node's GPUs.
struct RankLogs<'a> {
    input: &'a WorkloadInput,
    helds: &'a BTreeMap<String, HeldGpus>,
    read: Vec<RankLog<'a>>,
}

/// A rank's own fault as the diagnosis names it.
struct OwnFault {
    code: String,
    kind: SuspectKind,
    weight: u32,
    /// What the rank did, after its label.
    what: String,
}

/// The ranks' own evidence: each pod's first own fault, the rank the others wait for (its collective
/// sequence number lags, or it logged no timeout while the others did), the peer NCCL lost, and a rank on
/// sockets where its peers use InfiniBand; the collateral timeouts become consequences.
pub(super) fn rank_suspects(
    input: &WorkloadInput,
    helds: &BTreeMap<String, HeldGpus>,
) -> RankFindings {
    let mut found = RankFindings::default();
    let Some(logs) = &input.logs else {
        return found;
    };
    let ranks = RankLogs {
        input,
        helds,
        read: input
            .pods
            .iter()
            .filter_map(|p| match logs.get(&p.name) {
                Some(Ok(s)) => Some(RankLog { pod: p, scan: s }),
                _ => None,
            })
            .collect(),
    };
    let aborted_after_timeout = ranks.own_faults(&mut found.candidates);
    ranks.lagging_ranks(&mut found);
    ranks.lost_peers(&mut found);
    ranks.socket_fallback(&mut found.candidates);
    ranks.hang_notices(&mut found.consequences);
    if !aborted_after_timeout.is_empty() {
        found.consequences.push(format!(
            "{} torch elastic root cause(s) are a rank's own abort after its watchdog timed out (PyTorch takes \
             the process down, SIGABRT): {}{}",
            aborted_after_timeout.len(),
            aborted_after_timeout
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if aborted_after_timeout.len() > 3 { ", ..." } else { "" }
        ));
    }
    found
}

impl RankLogs<'_> {
    /// A suspect about rank `r`'s pod, on the GPU its faulting rank ran on where that is known.
    fn suspect(
        &self,
        r: RankLog,
        kind: SuspectKind,
        severity: Severity,
        code: &str,
        summary: String,
    ) -> Suspect {
        let (p, s) = (r.pod, r.scan);
        let mut ranks: Vec<String> = p.rank.iter().cloned().collect();
        ranks.extend(s.ranks.iter().take(4).map(|r| format!("rank {r}")));
        let gpu = gpu_of_pod(self.input, p, s, self.helds);
        Suspect {
            rank: 0,
            kind,
            severity,
            code: code.to_string(),
            node: p.node.clone(),
            gpu: gpu.as_ref().map(|g| g.index),
            gpu_uuid: gpu.and_then(|g| g.uuid),
            pods: vec![p.name.clone()],
            ranks,
            summary,
            evidence: vec![],
            also: vec![],
            first_seen: None,
        }
    }

    /// Each rank's own fault; returns the torch elastic root causes that were a rank's own abort after its
    /// watchdog timed out (a consequence, not a cause).
    fn own_faults(&self, out: &mut Vec<Candidate>) -> Vec<String> {
        let mut aborted_after_timeout: Vec<String> = Vec::new();
        for r in &self.read {
            let Some(f) = &r.scan.first_fault else {
                continue;
            };
            let fault = own_fault(&f.signature);
            // torch elastic's agent may name a rank on another pod: the suspect is the pod named as host.
            let named = match &f.signature {
                Signature::ElasticRootCause { host: Some(h), .. } => self
                    .read
                    .iter()
                    .find(|q| &q.pod.name == h || h.starts_with(&format!("{}.", q.pod.name)))
                    .copied()
                    .unwrap_or(*r),
                _ => *r,
            };
            // torch elastic names the first rank to exit; when that rank's own watchdog had timed out (and
            // took the process down: SIGABRT, exit -6), the exit is the wait ending, not a cause.
            if matches!(f.signature, Signature::ElasticRootCause { .. }) && named.scan.waited() {
                aborted_after_timeout.push(named.label());
                continue;
            }
            let mut sus = self.suspect(
                named,
                fault.kind,
                Severity::Critical,
                &fault.code,
                format!("{} {}", named.label(), fault.what),
            );
            sus.evidence.push(describe_event(f));
            if fault.kind == SuspectKind::Fabric {
                sus.gpu = None;
                sus.gpu_uuid = None;
            }
            let mut peer_node = None;
            if let Signature::Nccl {
                problem: NcclProblem::IbCompletion { peer, hca, .. },
            } = &f.signature
            {
                // Both ends before the log line: a suspect merged into another keeps its first lines.
                let ends = link_ends(self.input, named.pod, peer.as_deref(), hca.as_deref());
                sus.evidence.splice(0..0, ends);
                peer_node = peer
                    .as_deref()
                    .and_then(|a| node_of_addr(self.input, a))
                    .filter(|n| Some(n) != named.pod.node.as_ref());
            }
            out.push(Candidate {
                weight: fault.weight,
                first: f.time.clone(),
                suspect: sus,
                peer_node,
            });
        }
        aborted_after_timeout
    }

    /// The rank everyone waits for: its collective sequence number lags the others' timeouts.
    fn lagging_ranks(&self, found: &mut RankFindings) {
        let timed_out: Vec<(RankLog, u64)> = self
            .read
            .iter()
            .filter_map(|r| r.scan.timed_out_seq.map(|q| (*r, q)))
            .collect();
        let Some(max_seq) = timed_out.iter().map(|t| t.1).max() else {
            return;
        };
        let at_max: Vec<&PodLogScan> = timed_out
            .iter()
            .filter(|t| t.1 == max_seq)
            .map(|t| t.0.scan)
            .collect();
        let op = at_max
            .iter()
            .find_map(|s| s.timed_out_op.clone())
            .unwrap_or_else(|| "a collective".into());
        let timeout = at_max.iter().find_map(|s| s.timeout_ms);
        let first_at = earliest(at_max.iter().filter_map(|s| s.timed_out_at.as_deref()));
        let lagging: Vec<RankLog> = self
            .read
            .iter()
            .filter(|r| {
                r.pod.phase != "Pending" && r.scan.timed_out_seq.is_none_or(|q| q < max_seq)
            })
            .copied()
            .collect();
        found.consequences.push(format!(
            "{} of {} pod(s) timed out waiting in {op} SeqNum={max_seq}{}{}",
            at_max.len(),
            self.input.pods.len(),
            timeout
                .map(|t| format!(" after {t} ms"))
                .unwrap_or_default(),
            first_at
                .map(|t| format!(", the first at {t}"))
                .unwrap_or_default()
        ));
        // A lagging minority is who the rest waits for; when most lag, the comparison names nobody.
        if lagging.is_empty() || lagging.len() * 4 > self.read.len().max(4) {
            return;
        }
        for r in lagging {
            let s = r.scan;
            let (what, ev) = match s.timed_out_seq {
                Some(q) => (
                    format!("timed out earlier, at SeqNum={q}"),
                    format!("its own watchdog timed out at SeqNum={q} < {max_seq}"),
                ),
                None => (
                    "logged no timeout: it never reached that collective".to_string(),
                    format!(
                        "no watchdog timeout in its log while {} rank(s) time out at SeqNum={max_seq}",
                        at_max.len()
                    ),
                ),
            };
            let mut sus = self.suspect(
                r,
                SuspectKind::Rank,
                Severity::Critical,
                "collective.lagging_rank",
                format!(
                    "{} is the rank the others wait for: {} pod(s) timed out in {op} SeqNum={max_seq}; it {what}",
                    r.label(),
                    at_max.len()
                ),
            );
            sus.evidence.push(ev);
            // Keyed as the rank's own fabric error is (a node's ports, not a GPU), so the two are one.
            if s.first_fault.as_ref().is_some_and(|f| {
                matches!(
                    f.signature,
                    Signature::Nccl {
                        problem: NcclProblem::IbCompletion { .. }
                    }
                )
            }) {
                sus.gpu = None;
                sus.gpu_uuid = None;
            }
            if let Some(c) = s.last_completed {
                sus.evidence
                    .push(format!("its last completed collective: {c}"));
            }
            found.candidates.push(Candidate {
                weight: 95,
                first: None,
                suspect: sus,
                peer_node: None,
            });
        }
    }

    /// Peers NCCL lost: the peer named by address, and the ranks that only lost a peer.
    fn lost_peers(&self, found: &mut RankFindings) {
        /// How often a pod was named as the peer that closed the connection, and when first.
        #[derive(Default)]
        struct LostPeer<'a> {
            lines: usize,
            first: Option<&'a str>,
        }
        let mut lost: BTreeMap<&str, LostPeer> = BTreeMap::new();
        let mut remote_exited = 0;
        for r in &self.read {
            for e in &r.scan.events {
                match &e.signature {
                    Signature::Nccl {
                        problem: NcclProblem::ConnectionClosed { peer: Some(peer) },
                    } => {
                        if let Some(q) = pod_of_ip(self.input, peer) {
                            let en = lost.entry(q.name.as_str()).or_default();
                            en.lines += 1;
                            if cmp_times(e.time.as_deref(), en.first).is_lt() {
                                en.first = e.time.as_deref();
                            }
                        }
                    }
                    Signature::Nccl {
                        problem: NcclProblem::RemoteExited,
                    } => remote_exited += 1,
                    _ => {}
                }
            }
        }
        for (name, peer) in lost {
            let Some(r) = self.read.iter().find(|r| r.pod.name == name) else {
                continue;
            };
            let mut sus = self.suspect(
                *r,
                SuspectKind::Rank,
                Severity::Critical,
                "nccl.peer_lost",
                format!(
                    "{} went away: {} log line(s) of its peers say NCCL's connection to it closed",
                    r.label(),
                    peer.lines
                ),
            );
            sus.evidence.push(format!(
                "NCCL: connection closed by remote peer {} (its pod IP){}",
                r.pod.ip.as_deref().unwrap_or("?"),
                peer.first
                    .map(|t| format!(", first at {t}"))
                    .unwrap_or_default()
            ));
            found.candidates.push(Candidate {
                weight: 89,
                first: peer.first.map(String::from),
                suspect: sus,
                peer_node: None,
            });
        }
        if remote_exited > 0 {
            let pods = self
                .read
                .iter()
                .filter(|r| {
                    r.scan.events.iter().any(|e| {
                        matches!(
                            e.signature,
                            Signature::Nccl {
                                problem: NcclProblem::RemoteExited
                            }
                        )
                    })
                })
                .count();
            found.consequences.push(format!(
                "{pods} pod(s) report NCCL `remote process exited or there was a network error`: they lost a peer"
            ));
        }
    }

    /// A rank on sockets where its peers use InfiniBand.
    fn socket_fallback(&self, out: &mut Vec<Candidate>) {
        let ib = self
            .read
            .iter()
            .filter(|r| r.scan.transport == Some(Transport::Ib))
            .count();
        if ib == 0 {
            return;
        }
        for r in self
            .read
            .iter()
            .filter(|r| r.scan.transport == Some(Transport::Socket))
        {
            let mut sus = self.suspect(
                *r,
                SuspectKind::Configuration,
                Severity::Warning,
                "nccl.socket_fallback",
                format!(
                    "{} runs NCCL over NET/Socket while {ib} of its peers use NET/IB: every collective runs at \
                     TCP speed (no RDMA device in the pod, or NCCL_IB_DISABLE / NCCL_NET set)",
                    r.label()
                ),
            );
            if let Some(n) = &r.scan.nics {
                sus.evidence.push(format!("NCCL: NET/Socket : Using {n}"));
            }
            sus.gpu = None;
            sus.gpu_uuid = None;
            out.push(Candidate {
                weight: 72,
                first: None,
                suspect: sus,
                peer_node: None,
            });
        }
    }

    /// Hang notices (heartbeat monitor, rendezvous or store timeout): how a stop showed, counted.
    fn hang_notices(&self, consequences: &mut Vec<String>) {
        let hangs = self
            .read
            .iter()
            .filter(|r| r.scan.events.iter().any(|e| e.signature == Signature::Hang))
            .count();
        if hangs > 0 {
            consequences.push(format!(
                "{hangs} pod(s) print a hang notice (heartbeat monitor, rendezvous or store timeout)"
            ));
        }
    }
}

/// A rank's first own fault: its code, kind, weight (its place in the order) and what it says.
fn own_fault(signature: &Signature) -> OwnFault {
    let (code, kind, weight, what): (String, SuspectKind, u32, String) = match signature {
        Signature::CudaError { error } => {
            let (c, w, what) = match error {
                CudaErrorKind::EccUncorrectable => (
                    "ecc_uncorrectable",
                    96,
                    "hit an uncorrectable ECC error on its GPU (the GPU's memory, not the program)",
                ),
                CudaErrorKind::IllegalAddress => (
                    "illegal_address",
                    93,
                    "hit an illegal memory access (a program bug, or a GPU fault when an Xid 13/31/43 matches)",
                ),
                CudaErrorKind::LaunchFailure => (
                    "launch_failure",
                    94,
                    "hit an unspecified launch failure (often a GPU or driver fault: look for an Xid)",
                ),
                CudaErrorKind::OutOfMemory => (
                    "out_of_memory",
                    91,
                    "ran out of GPU memory (its batch, model or memory fragmentation: the program, not a hardware \
                     fault)",
                ),
            };
            (format!("cuda.{c}"), SuspectKind::Rank, w, what.to_string())
        }
        Signature::ElasticRootCause {
            rank,
            host,
            exitcode,
            ..
        } => (
            "elastic.root_cause".into(),
            SuspectKind::Rank,
            92,
            format!(
                "is torch elastic's first observed failure{}{}{}",
                rank.map(|r| format!(": rank {r}")).unwrap_or_default(),
                host.as_deref()
                    .map(|h| format!(" on host {h}"))
                    .unwrap_or_default(),
                exitcode
                    .map(|e| format!(", exit code {e}"))
                    .unwrap_or_default()
            ),
        ),
        Signature::Nccl {
            problem:
                NcclProblem::IbCompletion {
                    peer,
                    status,
                    vendor_err,
                    ..
                },
        } => (
            "nccl.ib_completion_error".into(),
            SuspectKind::Fabric,
            90,
            format!(
                "got an InfiniBand completion error{}{}{} (its node's NIC or link, or the peer's)",
                status.map(|s| format!(" status {s}")).unwrap_or_default(),
                vendor_err
                    .map(|v| format!(", vendor syndrome {v}"))
                    .unwrap_or_default(),
                peer.as_deref()
                    .map(|p| format!(" from peer {p}"))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            "nccl.system_error".into(),
            SuspectKind::Rank,
            86,
            "hit an NCCL unhandled system error (a socket, memory or driver call failed)".into(),
        ),
    };
    OwnFault {
        code,
        kind,
        weight,
        what,
    }
}

fn pod_of_ip<'a>(input: &'a WorkloadInput, peer: &str) -> Option<&'a WorkloadPod> {
    // NCCL writes `addr<port>`; IPv6 may come bracketed.
    let addr = peer
        .split('<')
        .next()?
        .trim_matches(|c| c == '[' || c == ']');
    input.pods.iter().find(|p| p.ip.as_deref() == Some(addr))
}

/// The node behind a peer address NCCL names: a pod's IP, else a node's own address (host-network pods).
fn node_of_addr(input: &WorkloadInput, peer: &str) -> Option<String> {
    if let Some(p) = pod_of_ip(input, peer) {
        return p.node.clone();
    }
    let addr = peer
        .split('<')
        .next()?
        .trim_matches(|c| c == '[' || c == ']');
    input
        .nodes
        .iter()
        .find(|n| n.addresses.iter().any(|a| a == addr))
        .map(|n| n.name.clone())
}

/// The two ends of a rank's InfiniBand error, each joined to what the probe read there: its own HCA's port
/// on its node, and the peer's pod and node with that node's faulty ports.
fn link_ends(
    input: &WorkloadInput,
    pod: &WorkloadPod,
    peer: Option<&str>,
    hca: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    let node = pod.node.as_deref().unwrap_or("?");
    if let Some(h) = hca {
        let faulty = faulty_ports(input, node, Some(h));
        out.push(if faulty.is_empty() {
            format!("this end: HCA {h} on {node}, which the probe found healthy")
        } else {
            format!(
                "this end: HCA {h} on {node}, which the probe found failing ({})",
                faulty.join("; ")
            )
        });
    }
    if let Some(peer) = peer {
        let who = pod_of_ip(input, peer).map(|p| format!("pod {}", p.name));
        match node_of_addr(input, peer) {
            Some(n) => {
                let faulty = faulty_ports(input, &n, None);
                out.push(format!(
                    "other end: {peer}{} on {n}{}",
                    who.map(|w| format!(" ({w})")).unwrap_or_default(),
                    if faulty.is_empty() {
                        ", whose RDMA ports the probe found healthy".to_string()
                    } else {
                        format!(", where the probe found {}", faulty.join("; "))
                    }
                ));
            }
            None => out.push(format!(
                "other end: {peer}, not an address of the workload's pods or nodes"
            )),
        }
    }
    out
}

/// `code on port` for each NIC finding of `node`'s probe (on HCA `hca` only, when given).
fn faulty_ports(input: &WorkloadInput, node: &str, hca: Option<&str>) -> Vec<String> {
    let Some(Ok(r)) = input.probes.get(node) else {
        return Vec::new();
    };
    r.describe
        .health
        .findings()
        .into_iter()
        .filter(|f| f.code.starts_with("nic.") && f.severity >= Severity::Warning)
        .filter_map(|f| {
            let ports: Vec<&str> = f
                .about
                .iter()
                .filter_map(|k| k.strip_prefix("nic:"))
                .filter(|p| hca.is_none_or(|h| p.split('/').next() == Some(h)))
                .collect();
            (!ports.is_empty()).then(|| format!("{} on {}", f.code, ports.join(", ")))
        })
        .collect()
}

fn describe_event(e: &LogEvent) -> String {
    let when = e
        .time
        .as_deref()
        .map(|t| format!("{t} "))
        .unwrap_or_default();
    let src = e
        .source
        .as_deref()
        .map(|s| format!("[{s}] "))
        .unwrap_or_default();
    format!("{when}{src}log: {}", e.line)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::test_support::*;
    use super::super::*;

    #[test]
    fn the_rank_everyone_waits_for_leads_even_when_it_logged_nothing() {
        let d = diagnose(&hung_job(16, 9));
        let first = &d.suspects[0];
        assert_eq!(first.code, "collective.lagging_rank", "{d:#?}");
        assert_eq!(first.pods, ["train-9"]);
        assert_eq!(first.node.as_deref(), Some("n9"));
        assert!(first.ranks.contains(&"rank 72".to_string()), "{first:?}");
        assert!(
            first
                .summary
                .contains("15 pod(s) timed out in ALLREDUCE SeqNum=100"),
            "{first:?}"
        );
        assert_eq!(
            d.suspects
                .iter()
                .filter(|s| s.code == "collective.lagging_rank")
                .count(),
            1
        );
        assert!(
            d.consequences[0].starts_with("15 of 16 pod(s) timed out"),
            "{:?}",
            d.consequences
        );
        assert!(d.not_examined.is_empty(), "{:?}", d.not_examined);
        assert!(d.verdict.contains("train-9"), "{}", d.verdict);
    }

    #[test]
    fn a_rank_on_sockets_among_ib_peers_is_a_configuration_suspect() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let net = if i == 2 {
                "host:1:1 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.3<0>"
            } else {
                "host:1:1 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB [1]mlx5_1:1/IB ; OOB eth0:10.0.0.1<0>"
            };
            logs.insert(p.name.clone(), Ok(scan_of(&[net.to_string()])));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        let s = d
            .suspects
            .iter()
            .find(|s| s.kind == SuspectKind::Configuration)
            .expect("config suspect");
        assert_eq!(s.pods, ["train-2"], "{d:#?}");
        assert_eq!(s.code, "nccl.socket_fallback");
    }

    #[test]
    fn a_peer_named_by_address_is_the_suspect() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        for (i, p) in input.pods.iter_mut().enumerate() {
            p.ip = Some(format!("10.4.0.{i}"));
        }
        let mut logs = BTreeMap::new();
        for p in &input.pods {
            let l = if p.name == "train-3" {
                vec![]
            } else {
                vec!["2026-11-22T10:00:01Z host:1:2 [0] NCCL WARN Net : Connection closed by remote peer 10.4.0.3<4410>".to_string()]
            };
            logs.insert(p.name.clone(), Ok(scan_of(&l)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert_eq!(d.suspects[0].code, "nccl.peer_lost", "{d:#?}");
        assert_eq!(d.suspects[0].pods, ["train-3"]);
    }

    #[test]
    fn a_cuda_error_rank_leads_with_its_error() {
        let mut input = job(&["dgx-h100-healthy"; 4]);
        let mut logs = BTreeMap::new();
        for (i, p) in input.pods.iter().enumerate() {
            let r = i as u32 * 8;
            let mut lines = vec![init_line(r, 32, 0)];
            if i == 2 {
                lines.push(format!(
                    "2026-11-22T10:00:05.000000000Z [rank{r}]: torch.AcceleratorError: CUDA error: an illegal \
                     memory access was encountered"
                ));
            } else {
                lines.push(timeout_line(r, 77, "2026-11-22T10:10:05.000000000Z"));
            }
            logs.insert(p.name.clone(), Ok(scan_of(&lines)));
        }
        input.logs = Some(logs);
        let d = diagnose(&input);
        assert_eq!(d.suspects.len(), 1, "{d:#?}");
        let s = &d.suspects[0];
        assert_eq!(
            (s.code.as_str(), s.pods.as_slice()),
            ("cuda.illegal_address", &["train-2".to_string()][..])
        );
        assert!(
            s.summary.contains("illegal memory access")
                && s.summary.contains("then 3 pod(s) timed out"),
            "{}",
            s.summary
        );
        assert!(
            d.verdict.contains("first: cuda.illegal_address on n2"),
            "{}",
            d.verdict
        );
    }
}
