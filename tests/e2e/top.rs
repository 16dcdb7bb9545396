//! `k8s-gpu-mcp top` on the real API server with kwok GPU nodes whose node-probe plays time scripts (issue 92):
//! a 3-node job viewed in tmux through probe pods, one node's Xid on screen when it comes, the windows renewed
//! by new pods on the same grid, each pod no older than its window allows, and none left after q or SIGTERM.

#[path = "../support/tmux.rs"]
mod tmux;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::mcp::{E2E_PROBE_IMAGE, LAUNCHER};
use crate::tasks::pods_gone_within;
use crate::testbed::{User, skipped};
use crate::workload::{Setup, setup};
use tmux::Tmux;

/// Seconds each probe pod samples before the next takes over.
const RENEW: u32 = 12;

fn view(s: &Setup) -> Tmux {
    let kc = s.tb.kubeconfig(User::Reader);
    Tmux::start(
        140,
        36,
        &format!(
            "env -u KUBECONFIG {LAUNCHER} top job/train -n {} --kubeconfig {} --namespace {} --probe-image {E2E_PROBE_IMAGE} --renew-seconds {RENEW}",
            s.wl,
            kc.display(),
            s.ns
        ),
        &[("RUST_LOG", "info,k8s_gpu_mcp=debug")],
    )
}

/// The probe pods in the probe namespace, with each one's activeDeadlineSeconds.
fn pods(s: &Setup) -> Vec<(String, i64)> {
    s.tb.kubectl(&[
        "-n",
        &s.ns,
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.activeDeadlineSeconds}{\"\\n\"}{end}",
    ])
    .lines()
    .filter_map(|l| {
        let (n, d) = l.split_once(' ')?;
        Some((n.to_string(), d.parse().ok()?))
    })
    .collect()
}

fn gpu_rows(screen: &str, nodes: &[String]) -> usize {
    screen
        .lines()
        .filter(|l| nodes.iter().any(|n| l.starts_with(n.as_str())) && l.contains('%'))
        .count()
}

#[test]
fn top_on_a_kwok_job_follows_its_nodes_renews_its_pods_and_leaves_none() {
    if skipped() {
        return;
    }
    let s = setup(
        "top",
        &[
            "dgx-h100-watch-xid79",
            "dgx-h100-healthy",
            "dgx-h100-healthy",
        ],
    );
    s.job("train");
    let tm = view(&s);
    let t = Instant::now();
    let screen = tm.until("the job's 24 GPUs", 90, |sc| {
        gpu_rows(sc, &s.nodes) == 24 && sc.contains("3 node(s) 24 GPU(s)")
    });
    eprintln!(
        "top on 3 kwok nodes: first full screen after {:?}",
        t.elapsed()
    );
    assert!(
        screen.contains(&format!("top job/train in {}", s.wl)),
        "{screen}"
    );
    // The node whose script loses GPU 4 says so when it happens, in NVIDIA's words.
    let screen = tm.until("the Xid", 40, |sc| sc.contains("Xid 79 on GPU 4"));
    assert!(screen.contains("CRITICAL"), "{screen}");
    assert!(
        screen.contains(&format!("{} GPU 4: NVML: GPU is lost", s.nodes[0])),
        "{screen}"
    );
    // One window's pod per node, two while the next starts; none lives past its window and the probe's
    // own deadline (120 s by default).
    let first: BTreeSet<String> = pods(&s).into_iter().map(|(n, _)| n).collect();
    let deadline = Instant::now() + Duration::from_secs(u64::from(RENEW) + 20);
    let mut renewed = false;
    while Instant::now() < deadline && !renewed {
        let now = pods(&s);
        assert!(now.len() <= 6, "more than two pods per node: {now:?}");
        for (n, d) in &now {
            assert!(*d <= 120 + i64::from(RENEW) + 6, "{n} lives {d} s");
        }
        renewed = now.iter().any(|(n, _)| !first.contains(n));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        renewed,
        "no new window's pod within {} s: {first:?}",
        RENEW + 20
    );
    // The rows keep coming across the renewal.
    tm.until("rows after the renewal", 30, |sc| {
        gpu_rows(sc, &s.nodes) == 24
    });
    tm.keys(&["q"]);
    assert_eq!(
        tm.exited(30),
        Some(0),
        "q did not end the view:\n{}",
        tm.screen()
    );
    match pods_gone_within(s.tb, &s.ns, Duration::from_secs(15)) {
        Ok(d) => eprintln!("top: pods gone {d:?} after q"),
        Err(left) => panic!("pods left after q: {left:?}"),
    }
    drop(tm);
    // SIGTERM, as a service manager stops it.
    let tm = view(&s);
    tm.until("the job's 24 GPUs", 90, |sc| gpu_rows(sc, &s.nodes) == 24);
    let pid = tm.launcher_pid();
    tmux::kill(pid, "TERM");
    assert_eq!(tm.exited(30), Some(0), "SIGTERM did not end the view");
    match pods_gone_within(s.tb, &s.ns, Duration::from_secs(15)) {
        Ok(d) => eprintln!("top: pods gone {d:?} after SIGTERM"),
        Err(left) => panic!("pods left after SIGTERM: {left:?}"),
    }
}
