//! `diagnose_workload` on the real node reads what the job's ranks printed: the real kubelet serves the
//! containers' logs (the current run and, for a restarted container, the previous one) through the API
//! server, and the diagnosis joins them into its suspects.
//!
//! The lines are written here from the public formats (PyTorch's ProcessGroupNCCL watchdog, NCCL's INFO
//! init line, the CUDA runtime's error string); see `src/analysis/joblog.rs`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::testbed::unique;
use crate::{Ctx, node};

/// A rank's pod in the job `job` (no GPU: which fake GPU the device plugin would give is not ours to pick,
/// and the log evidence is what this case is about). `script` runs under `sh -c`; `/state` survives
/// container restarts.
fn rank_pod(c: &Ctx, name: &str, job: &str, script: &str) {
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    c.tb.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {wl}, labels: {{rn-job: {job}}}}}
spec:
  nodeName: {node}
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  restartPolicy: Always
  containers:
  - name: trainer
    image: {image}
    imagePullPolicy: Never
    command: [sh, -c, "{script}"]
    volumeMounts: [{{name: state, mountPath: /state}}]
  volumes: [{{name: state, emptyDir: {{}}}}]
"#,
        wl = c.wl,
        node = c.name(),
        image = node::BASE_IMAGE,
    ));
}

/// The pod's container status, waiting (with a generous deadline: a busy machine) until `ok` holds.
fn wait_status(c: &Ctx, pod: &str, what: &str, ok: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out =
            c.tb.kubectl(&["-n", &c.wl, "get", "pod", pod, "-o", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
        let st = &v["status"]["containerStatuses"][0];
        if ok(st) {
            return;
        }
        assert!(Instant::now() < deadline, "{pod}: not {what}: {v:#}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn nccl_init(rank: u32) -> String {
    format!(
        "echo 'rn-host:1:1 [0] NCCL INFO comm 0x5{rank} rank {rank} nranks 2 cudaDev 0 nvmlDev {rank} busId \
         {rank}b000 commId 0xabc - Init COMPLETE'"
    )
}

pub async fn diagnose_workload_reads_the_ranks_logs_and_a_restarted_rank_previous_run(c: &Ctx) {
    let job = unique("rnjob");
    // Rank 1 fails first: a CUDA ECC error, then it exits; restarted, it prints nothing useful. Its error
    // is only in the previous run's log.
    rank_pod(
        c,
        "rank1",
        &job,
        &format!(
            "if [ -e /state/ran ]; then echo 'restarted, waiting for the job'; exec sleep 3600; fi; \
             touch /state/ran; {}; \
             echo 'RuntimeError: CUDA error: uncorrectable ECC error encountered'; exit 1",
            nccl_init(1)
        ),
    );
    wait_status(c, "rank1", "restarted and running", |st| {
        st["restartCount"].as_u64().is_some_and(|n| n >= 1) && st["state"]["running"].is_object()
    });
    // Rank 0, later: its collective times out waiting for rank 1.
    rank_pod(
        c,
        "rank0",
        &job,
        &format!(
            "{}; echo '[rank0]:[E1123 00:10:00.000000 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID 0(default_pg) \
             Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=42, OpType=ALLREDUCE, \
             NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600123 milliseconds before timing out.'; \
             exec sleep 3600",
            nccl_init(0)
        ),
    );
    wait_status(c, "rank0", "running", |st| {
        st["state"]["running"].is_object()
    });
    // The kubelet writes the log as the container prints: wait until the API server serves the timeout.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c
        .tb
        .kubectl(&["-n", &c.wl, "logs", "rank0"])
        .contains("Watchdog caught")
    {
        assert!(Instant::now() < deadline, "rank0's log never had its line");
        std::thread::sleep(Duration::from_millis(300));
    }

    let l = c.image_launcher().await;
    let t = Instant::now();
    let v = l
        .ok(
            "diagnose_workload",
            json!({"namespace": c.wl, "label_selector": format!("rn-job={job}")}),
        )
        .await;
    eprintln!(
        "diagnose_workload with logs on the real node: {} ms",
        t.elapsed().as_millis()
    );
    l.stop().await;
    let d = &v["diagnosis"];
    assert_eq!(d["pods"], 2, "{v:#}");
    assert_eq!(d["logs_read"], 2, "both pods' logs read: {v:#}");
    assert!(d["log_bytes"].as_u64().is_some_and(|n| n > 0), "{v:#}");
    let suspects = d["suspects"].as_array().expect("suspects");
    let first = &suspects[0];
    let names = first["pods"].to_string();
    assert!(
        names.contains("rank1") && !names.contains("rank0"),
        "rank 1 is not the first suspect: {v:#}"
    );
    let evidence = first["evidence"].to_string();
    assert!(
        evidence.contains("[previous] log:")
            && evidence.contains("uncorrectable ECC error encountered"),
        "the previous run's error is not the evidence: {first:#}"
    );
    // Rank 1 is one suspect, not one per line about it: its restart, its error and the collective it
    // stalled are merged (node-wide findings list every pod of the node and stay apart).
    let about_rank1 = suspects
        .iter()
        .filter(|s| s["pods"] == json!(["rank1"]))
        .count();
    assert_eq!(about_rank1, 1, "{v:#}");
    let codes = format!("{} {}", first["code"], first["also"]);
    assert!(
        codes.contains("cuda.ecc_uncorrectable") && codes.contains("pod.restarting"),
        "{first:#}"
    );
    // Rank 0's timeout is a consequence, not a suspect of its own.
    assert!(
        !suspects.iter().any(|s| s["pods"] == json!(["rank0"])),
        "rank 0 (collateral) is a suspect: {v:#}"
    );
    assert!(
        d["consequences"].to_string().contains("rank0")
            || d["consequences"].to_string().contains("timed out"),
        "{v:#}"
    );
    c.delete_workload("rank0");
    c.delete_workload("rank1");
    c.assert_no_probe_pods();
}
