//! Test fixtures shared by the steps' tests: a job of built-in scenario nodes, ranks' log lines in the
//! public formats (NCCL, PyTorch's watchdog, torch elastic) and the jobs built from them.

use std::collections::BTreeMap;

use super::*;
use crate::options::AnalysisOptions;
use crate::workload::joblog::PodLogScan;

pub(super) fn node_report(scenario: &str) -> Box<WorkloadNodeReport> {
    let s = crate::scenarios::find(scenario).expect("built-in scenario");
    let facts = crate::scenarios::parse(&s.json()).expect("scenario parses");
    Box::new(analyze_node(&facts, &AnalysisOptions::default()))
}

/// One 8-GPU pod per node (rank = its index), nodes named `n0..`, each node simulated by `scenario`.
pub(super) fn job(scenarios: &[&str]) -> WorkloadInput {
    let mut input = WorkloadInput {
        workload: "job/train".into(),
        ..Default::default()
    };
    for (i, sc) in scenarios.iter().enumerate() {
        let node = format!("n{i}");
        input.pods.push(WorkloadPod {
            name: format!("train-{i}"),
            uid: format!("uid-{i}"),
            phase: "Running".into(),
            node: Some(node.clone()),
            started: Some("2025-01-01T00:00:00Z".into()),
            rank: Some(format!("replica-index={i}")),
            gpus_requested: 8,
            ..Default::default()
        });
        input.nodes.push(WorkloadNode {
            name: node.clone(),
            ready: true,
            gpu_capacity: 8,
            gpu_allocatable: 8,
            ..Default::default()
        });
        input.probes.insert(node, Ok(node_report(sc)));
    }
    input
}

pub(super) fn scan_of(lines: &[String]) -> PodLogScan {
    let mut s = PodLogScan::default();
    for l in lines {
        s.feed(l, None);
    }
    s
}

pub(super) fn init_line(rank: u32, n: u32, dev: u32) -> String {
    format!(
        "2026-11-22T09:00:00.000000000Z host-{rank}:100:120 [{dev}] NCCL INFO comm 0x55aa rank {rank} nranks {n} \
         cudaDev {dev} nvmlDev {dev} busId {}000 commId 0x77 - Init COMPLETE",
        18 + dev
    )
}

pub(super) fn timeout_line(rank: u32, seq: u64, at: &str) -> String {
    format!(
        "{at} [rank{rank}]:[E1122 10:10:00.000000 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID 0(default_pg) \
         Rank {rank}] Watchdog caught collective operation timeout: WorkNCCL(SeqNum={seq}, OpType=ALLREDUCE, \
         NumelIn=1024, NumelOut=1024, Timeout(ms)=600000) ran for 600031 milliseconds before timing out."
    )
}

/// `n` one-rank pods over `n` nodes; every rank but `hung` times out at SeqNum 100.
pub(super) fn hung_job(n: usize, hung: usize) -> WorkloadInput {
    let mut input = job(&vec!["dgx-h100-healthy"; n]);
    let mut logs = BTreeMap::new();
    for (i, p) in input.pods.iter().enumerate() {
        let mut lines = vec![init_line(i as u32 * 8, n as u32 * 8, 0)];
        if i != hung {
            lines.push(timeout_line(
                i as u32 * 8,
                100,
                "2026-11-22T10:10:00.000000000Z",
            ));
        }
        logs.insert(p.name.clone(), Ok(scan_of(&lines)));
    }
    input.logs = Some(logs);
    input
}

// ---- Cases built like the judged ones. Log lines in the public formats: PyTorch's caching allocator
// (`torch.OutOfMemoryError: CUDA out of memory. Tried to allocate … GPU N has a total capacity of …`,
// c10/cuda/CUDACachingAllocator.cpp), ProcessGroupNCCL's watchdog (`Watchdog caught collective operation
// timeout: WorkNCCL(SeqNum=…)` then `To avoid data inconsistency, we are taking the entire process
// down.`), torch elastic's ChildFailedError table (torch/distributed/elastic/multiprocessing/errors),
// NCCL's init lines (`ncclCommInitRank comm %p rank %d nranks %d cudaDev %d nvmlDev %d busId %lx commId
// 0x%llx - Init START`, NVIDIA/nccl src/init.cc) and `NET/IB : Got completion from peer … with status=…
// vendor err …` (src/transport/net_ib.cc).

pub(super) fn elastic_table(
    rank: u32,
    host: &str,
    exitcode: i32,
    signal: Option<&str>,
) -> Vec<String> {
    let tb = match signal {
        Some(sig) => format!("  traceback : Signal 6 ({sig}) received by PID 2210"),
        None => "  traceback : To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html".into(),
    };
    vec![
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:".into(),
        "============================================================".into(),
        "train.py FAILED".into(),
        "------------------------------------------------------------".into(),
        "Root Cause (first observed failure):".into(),
        "[0]:".into(),
        "  time      : 2026-11-22_10:10:01".into(),
        format!("  host      : {host}"),
        format!("  rank      : {rank} (local_rank: 0)"),
        format!("  exitcode  : {exitcode} (pid: 2210)"),
        "  error_file: <N/A>".into(),
        tb,
        "============================================================".into(),
    ]
}

pub(super) fn oom_job() -> WorkloadInput {
    // 16 one-pod ranks; rank 11 dies of an out-of-memory error and its container restarts; the 15 others
    // time out waiting for it in the next all-reduce, their watchdogs take their processes down (rank
    // 0's torch elastic then names rank 0, exit -6), and their containers restart too.
    let mut input = job(&vec!["dgx-h100-healthy"; 16]);
    let mut logs = BTreeMap::new();
    for (i, p) in input.pods.iter_mut().enumerate() {
        p.restarts = 1;
        let why = if i == 11 {
            "Error (exit 1)"
        } else {
            "Error (exit 134)"
        };
        p.last_termination = Some(why.to_string());
        let r = i as u32;
        let mut lines = vec![init_line(r, 16, 0)];
        if i == 11 {
            lines.push(
                "2026-11-22T10:00:05.000000000Z [rank11]: torch.OutOfMemoryError: CUDA out of memory. Tried to \
                 allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.06 GiB is free."
                    .into(),
            );
            lines.extend(elastic_table(11, "train-11", 1, None));
        } else {
            lines.push(timeout_line(r, 100, "2026-11-22T10:10:00.000000000Z"));
            lines.push(format!(
                "2026-11-22T10:10:00.100000000Z [rank{r}]:[E1122 10:10:00.100000 ProcessGroupNCCL.cpp:1837] \
                 [PG ID 0 PG GUID 0(default_pg) Rank {r}] To avoid data inconsistency, we are taking the \
                 entire process down."
            ));
            if i == 0 {
                lines.extend(elastic_table(0, "train-0", -6, Some("SIGABRT")));
            }
        }
        logs.insert(p.name.clone(), Ok(scan_of(&lines)));
    }
    input.logs = Some(logs);
    input
}

/// The dgx-h100 scenarios' GPUs by index, as NCCL writes their PCI addresses (`busId`).
pub(super) const DGX_BUS: [&str; 8] = [
    "18000", "2a000", "3a000", "5d000", "9a000", "ab000", "ba000", "db000",
];

/// Eight one-GPU pods on one node of `scenario`: no kubelet assignment, so the requests say the pods
/// hold all its GPUs, and only the ranks' logs (when given) say which.
pub(super) fn one_gpu_pods(scenario: &str, with_init: bool) -> WorkloadInput {
    let mut input = job(&[scenario]);
    input.pods.clear();
    let mut logs = BTreeMap::new();
    for g in 0..8u32 {
        let name = format!("train-{g}");
        input.pods.push(WorkloadPod {
            name: name.clone(),
            uid: format!("uid-{g}"),
            phase: "Running".into(),
            node: Some("n0".into()),
            started: Some("2020-01-01T00:00:00Z".into()),
            gpus_requested: 1,
            ..Default::default()
        });
        let mut lines = vec![];
        if with_init {
            // The container sees its one GPU as cudaDev 0; the PCI address names it on the host.
            lines.push(format!(
                "2026-11-25T08:00:00.000000000Z {name}:41:41 [0] NCCL INFO ncclCommInitRank comm 0x55d0{g}000 \
                 rank {g} nranks 8 cudaDev 0 nvmlDev 0 busId {} commId 0x3f6a91c0d25e7b14 - Init START",
                DGX_BUS[g as usize]
            ));
        }
        if g != 4 {
            lines.push(timeout_line(g, 310, "2026-11-25T08:26:40.000000000Z"));
        }
        logs.insert(name, Ok(scan_of(&lines)));
    }
    input.logs = Some(logs);
    input
}
