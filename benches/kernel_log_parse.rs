//! Parse throughput: 100,000 mixed kernel-log lines (all three envelopes, NVIDIA lines and the
//! ordinary kernel noise around them) through the grammar alone and through the whole `xid` analysis.
//! Target: the full analysis of 100,000 lines in under 200 ms.
//!
//! Run: `cargo bench --bench kernel_log_parse`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::{grammar, report};
use gpu_diag::options::AnalysisOptions;

const LINES: usize = 100_000;

fn mixed_lines() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kernel_log/corpus");
    let mut nvidia: Vec<String> = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    for p in names {
        nvidia.extend(
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    // Real logs are mostly not NVIDIA lines: one corpus line for every three ordinary ones.
    let noise = [
        "[ 1234.567890] EXT4-fs (nvme0n1p2): re-mounted. Quota mode: none.",
        "6,99999,1234567890,-;audit: type=1400 audit(1732190000.123:456): apparmor=\"STATUS\" operation=\"profile_load\"",
        "Nov 21 09:00:00 gpu-node-5 kernel: [ 1234.567890] IPv6: ADDRCONF(NETDEV_CHANGE): enp12s0: link becomes ready",
    ];
    (0..LINES)
        .map(|i| {
            if i % 4 == 3 {
                nvidia[(i / 4) % nvidia.len()].clone()
            } else {
                noise[i % 3].to_string()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = mixed_lines();
    let mut facts = NodeFacts::default();
    facts.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    facts.host.now_unix = Reading::Ok(1_795_262_400.0);
    facts.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "bench".into(),
        lines: lines.clone(),
        truncated: false,
    });
    let opts = AnalysisOptions::default();
    let r = report::analyze(&facts, &opts);
    eprintln!(
        "kernel_log_parse: {} lines -> {} records, {} events",
        lines.len(),
        r.log.records,
        r.events.len()
    );

    let mut g = c.benchmark_group("kernel_log_parse");
    g.throughput(Throughput::Elements(LINES as u64));
    g.sample_size(20);
    g.bench_function("grammar_100k_lines", |b| {
        b.iter(|| {
            let recs = grammar::records(black_box(&lines), grammar::Clock::default());
            recs.iter()
                .filter_map(|r| grammar::parse_line(&r.text))
                .count()
        })
    });
    g.bench_function("analyze_100k_lines", |b| {
        b.iter(|| report::analyze(black_box(&facts), &opts).events.len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
