//! Long tools as MCP tasks (the `io.modelcontextprotocol/tasks` extension, SEP-2663) on the real API server,
//! through rmcp's client: a scan started as a task and polled to its result, a task cancelled mid-scan (no
//! probe pod left, none started after), the session's end (stdin closed, SIGTERM) deleting a running
//! task's pods, and a client without the extension getting the plain call.

use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolResponse, CancelTaskParams, GetTaskParams, GetTaskResult, Task, TaskPayload, TaskStatus,
};
use serde_json::{Value, json};

use crate::mcp::{self, Launcher, harness};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// Start `tool` as a task; a plain answer fails the test.
pub(crate) async fn start_task(l: &Launcher, tool: &str, args: Value) -> Task {
    match l
        .client
        .call_tool_once(harness::request(tool, args.clone()))
        .await
    {
        Ok(CallToolResponse::Task(t)) => t.task,
        other => panic!(
            "{tool} {args}: expected a task, got {other:?}\n{}",
            l.stderr()
        ),
    }
}

pub(crate) async fn get(l: &Launcher, id: &str) -> GetTaskResult {
    l.client
        .get_task(GetTaskParams::new(id))
        .await
        .unwrap_or_else(|e| panic!("tasks/get {id}: {e}\n{}", l.stderr()))
}

/// Poll until the task settles; every status message seen on the way, in order.
pub(crate) async fn settle(
    l: &Launcher,
    id: &str,
    timeout: Duration,
) -> (GetTaskResult, Vec<String>) {
    let deadline = Instant::now() + timeout;
    let mut seen: Vec<String> = Vec::new();
    loop {
        let t = get(l, id).await;
        if let Some(m) = &t.task.task.status_message
            && seen.last() != Some(m)
        {
            seen.push(m.clone());
        }
        if t.task.status().is_terminal() {
            return (t, seen);
        }
        assert!(
            Instant::now() < deadline,
            "task {id} still {:?} after {timeout:?}: {seen:?}\n{}",
            t.task.status(),
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` from a status message `n of total nodes answered; …`.
fn answered(message: &str) -> Option<usize> {
    message.split_once(" of ")?.0.parse().ok()
}

pub(crate) fn pods_gone_within(
    tb: &Testbed,
    ns: &str,
    timeout: Duration,
) -> Result<Duration, Vec<String>> {
    let t = Instant::now();
    tb.wait_no_pods(ns, timeout).map(|()| t.elapsed())
}

fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// A namespace for the probes and `n` fake nodes of one group, `stuck` ones with no kubelet (their probe pods
/// stay pending until deleted).
fn fleet(
    tag: &str,
    healthy: usize,
    sick: &[&str],
    stuck: usize,
) -> (&'static Testbed, String, String) {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-{tag}"));
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique(tag);
    let mut nodes: Vec<FakeNode> = (0..healthy)
        .map(|i| FakeNode::gpu(&unique(&format!("{tag}-{i}")), "dgx-h100-healthy"))
        .collect();
    nodes.extend(
        sick.iter()
            .map(|s| FakeNode::gpu(&unique(&format!("{tag}-sick")), s)),
    );
    nodes.extend(
        (0..stuck).map(|i| FakeNode::without_kubelet(&unique(&format!("{tag}-stuck-{i}")), true)),
    );
    let nodes: Vec<FakeNode> = nodes
        .into_iter()
        .map(|n| n.label("e2e-group", &group))
        .collect();
    tb.add_nodes(&nodes);
    (tb, ns, format!("e2e-group={group}"))
}

/// A scan as a task: the handle at once (ttl, poll interval), `tasks/get` showing the nodes answered rising
/// and what was found, then the result inline; short tools stay plain calls; a client without the extension
/// gets the plain result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_runs_as_a_task_polled_to_its_result() {
    if skipped() {
        return;
    }
    let (tb, ns, selector) = fleet("task-scan", 40, &["dgx-h100-xid79"], 0);
    let l = mcp::start_with_tasks(tb, User::Reader, &ns, &[]).await;

    // A short tool stays a plain call.
    match l
        .client
        .call_tool_once(harness::request(
            "list_gpu_nodes",
            json!({"label_selector": selector}),
        ))
        .await
    {
        Ok(CallToolResponse::Complete(r)) => assert_ne!(r.is_error, Some(true)),
        other => panic!("list_gpu_nodes: expected a plain result, got {other:?}"),
    }

    let t0 = Instant::now();
    let task = start_task(
        &l,
        "scan_gpu_nodes",
        json!({"label_selector": selector, "concurrency": 2}),
    )
    .await;
    let handle_ms = t0.elapsed();
    assert_eq!(task.status, TaskStatus::Working);
    assert_eq!(task.ttl_ms, Some(3_600_000));
    assert_eq!(task.poll_interval_ms, Some(500));
    assert!(task.task_id.len() >= 32, "task id {}", task.task_id);

    let (done, seen) = settle(&l, &task.task_id, Duration::from_secs(120)).await;
    assert_eq!(done.task.status(), TaskStatus::Completed, "{seen:?}");
    let counts: Vec<usize> = seen.iter().filter_map(|m| answered(m)).collect();
    assert!(
        counts.len() >= 3 && counts.windows(2).all(|w| w[0] < w[1]),
        "progress did not advance while polled: {seen:?}"
    );
    let last = seen.last().expect("a status message");
    assert!(
        last.starts_with("41 of 41 nodes answered; 1 with findings"),
        "{seen:?}"
    );
    let TaskPayload::Completed { result } = &done.task.payload else {
        panic!("no result: {:?}", done.task.payload)
    };
    let v = &result["structuredContent"];
    assert_eq!(v["nodes_total"], 41, "{result:?}");
    assert_eq!(v["nodes_ok"], 41, "{result:?}");
    assert_eq!(v["needs_attention_total"], 1, "{result:?}");
    // The result stays readable (kept for the ttl).
    let again = get(&l, &task.task_id).await;
    assert_eq!(again.task.status(), TaskStatus::Completed);
    // An id that is not this session's task is an error, not a result.
    assert!(
        l.client
            .get_task(GetTaskParams::new(format!("{}x", task.task_id)))
            .await
            .is_err()
    );
    eprintln!(
        "task handle in {handle_ms:?}; {} status messages seen; done in {:?}",
        seen.len(),
        t0.elapsed()
    );
    l.stop().await;

    // A client without the tasks extension: today's call, the result in the answer.
    let plain = mcp::start(tb, User::Reader, &ns, &[]).await;
    match plain
        .client
        .call_tool_once(harness::request(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "concurrency": 16}),
        ))
        .await
    {
        Ok(CallToolResponse::Complete(r)) => {
            let v = r.structured_content.expect("structuredContent");
            assert_eq!(v["nodes_total"], 41);
        }
        other => panic!("plain client: expected the result, got {other:?}"),
    }
    plain.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(30)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}

/// tasks/cancel mid-scan of 200 nodes whose probes hang (64 running at once): every running probe's pod is
/// deleted within seconds, no new probe starts, the task settles `cancelled`, and the launcher serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_deletes_its_probe_pods_and_starts_no_more() {
    if skipped() {
        return;
    }
    // E2E_TASK_CANCEL_NODES / _CONCURRENCY measure larger fleets (at most 128 at once, the tool's bound).
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let nodes = env("E2E_TASK_CANCEL_NODES", 200);
    let concurrency = env("E2E_TASK_CANCEL_CONCURRENCY", 64).min(nodes);
    let (tb, ns, selector) = fleet("task-cancel", 0, &[], nodes);
    let l = mcp::start_with_tasks(tb, User::Reader, &ns, &["--probe-timeout", "120"]).await;
    let task = start_task(
        &l,
        "scan_gpu_nodes",
        json!({"label_selector": selector, "concurrency": concurrency}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut running = 0;
    while running < concurrency {
        assert!(
            Instant::now() < deadline,
            "only {running} probe pods after 60 s\n{}",
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        running = tb.pods(&ns).len();
    }
    assert_eq!(
        get(&l, &task.task_id).await.task.status(),
        TaskStatus::Working
    );

    let t0 = Instant::now();
    l.client
        .cancel_task(CancelTaskParams::new(task.task_id.clone()))
        .await
        .expect("tasks/cancel");
    let acked = t0.elapsed();
    let gone = pods_gone_within(tb, &ns, Duration::from_secs(10)).unwrap_or_else(|left| {
        panic!(
            "{} probe pods still there 10 s after tasks/cancel: {left:?}\n{}",
            left.len(),
            l.stderr()
        )
    });
    let (done, seen) = settle(&l, &task.task_id, Duration::from_secs(30)).await;
    let settled = t0.elapsed();
    assert_eq!(done.task.status(), TaskStatus::Cancelled, "{seen:?}");
    assert!(
        seen.last().is_some_and(|m| m.starts_with("cancelling")),
        "the stopped nodes were counted as answered: {seen:?}"
    );
    // No new probe after the cancel.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        tb.pods(&ns),
        Vec::<String>::new(),
        "a probe started after the cancel"
    );
    eprintln!(
        "tasks/cancel with {running} probe pods running ({nodes} nodes): acked in {acked:?}, 0 pods after \
         {:?}, task cancelled after {settled:?}",
        acked + gone
    );
    // The session goes on: a short tool still answers.
    let v = l
        .ok("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    assert!(v.is_object());
    l.stop().await;
}

/// The session's end while a task runs: stdin closed, or SIGTERM from the host; either way the task's probe
/// pods are deleted before the launcher exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_end_deletes_a_running_tasks_probe_pods() {
    if skipped() {
        return;
    }
    const NODES: usize = 24;
    let (tb, ns, selector) = fleet("task-end", 0, &[], NODES);
    for how in ["stdin closed", "SIGTERM"] {
        let l = mcp::start_with_tasks(tb, User::Reader, &ns, &["--probe-timeout", "120"]).await;
        start_task(
            &l,
            "scan_gpu_nodes",
            json!({"label_selector": selector, "concurrency": NODES}),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while tb.pods(&ns).len() < NODES {
            assert!(
                Instant::now() < deadline,
                "{how}: probes did not start\n{}",
                l.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let t0 = Instant::now();
        let pid = l.pid;
        let log = l.log.clone();
        if how == "SIGTERM" {
            let ok = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .expect("kill")
                .success();
            assert!(ok);
            while !exited(pid) {
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "serve still running 20 s after SIGTERM\n{}",
                    l.stderr()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } else {
            // Closes stdin and waits for the exit (rmcp's client sends SIGTERM only after 3 s).
            let _ = tokio::time::timeout(Duration::from_secs(20), l.client.cancel()).await;
            let stderr = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                exited(pid),
                "serve did not exit after stdin closed\n{stderr}"
            );
            assert!(
                !stderr.contains("stopping: no new probes"),
                "serve needed a signal to exit after stdin closed\n{stderr}"
            );
        }
        let exit = t0.elapsed();
        let left = tb.pods(&ns);
        assert!(
            left.is_empty(),
            "{how}: serve exited leaving {} probe pods: {left:?}\n{}",
            left.len(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            stderr.contains("session ended: cancelling the running tasks"),
            "{stderr}"
        );
        eprintln!("{how} with a task of {NODES} running probes: pods deleted and exit in {exit:?}");
    }
}

/// `run_gpu_diagnostic` as a task (issue 56) on a node whose probe never starts (no kubelet): the task's
/// status says what runs where, `tasks/cancel` deletes the probe pod within seconds, and the task settles
/// cancelled. (The real node cancels a running dcgmi: tests/realnode/dcgm.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_diagnostic_task_deletes_its_probe_pod() {
    if skipped() {
        return;
    }
    let (tb, ns, selector) = fleet("task-diag", 0, &[], 1);
    let node = tb
        .kubectl(&[
            "get",
            "nodes",
            "-l",
            &selector,
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .trim()
        .to_string();
    let l = mcp::start_with_tasks(tb, User::Reader, &ns, &[]).await;
    let task = start_task(
        &l,
        "run_gpu_diagnostic",
        json!({"node_name": node, "gpus": "3", "level": 1}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Working);
    let deadline = Instant::now() + Duration::from_secs(60);
    while tb.pods(&ns).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no probe pod after 60 s\n{}",
            l.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = get(&l, &task.task_id).await;
    assert_eq!(status.task.status(), TaskStatus::Working);
    l.client
        .cancel_task(CancelTaskParams::new(task.task_id.clone()))
        .await
        .expect("tasks/cancel");
    let gone = pods_gone_within(tb, &ns, Duration::from_secs(10)).unwrap_or_else(|left| {
        panic!(
            "probe pods still there 10 s after tasks/cancel: {left:?}\n{}",
            l.stderr()
        )
    });
    let (done, seen) = settle(&l, &task.task_id, Duration::from_secs(30)).await;
    assert_eq!(done.task.status(), TaskStatus::Cancelled, "{seen:?}");
    assert!(
        seen.iter().any(|m| m.contains(&node)),
        "the task's status never named the node: {seen:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        tb.pods(&ns),
        Vec::<String>::new(),
        "a probe started after the cancel"
    );
    eprintln!("run_gpu_diagnostic task cancelled: 0 probe pods after {gone:?} (status: {seen:?})");
    l.stop().await;
}
