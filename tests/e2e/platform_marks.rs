//! What the platform's own health agents already say about a node, read from the Node object through the
//! real API server: conditions set on kwok nodes the way the agents set them (a strategic merge patch of
//! `nodes/status`, conditions merging by type), then `list_gpu_nodes` and `scan_gpu_nodes` as a user calls
//! them. The condition and reason names are the agents' own: EKS's node monitoring agent
//! (docs.aws.amazon.com/eks/latest/userguide/node-health.html), AKS's node problem detector
//! (learn.microsoft.com/azure/aks/gpu-health-monitoring).

use std::time::Duration;

use serde_json::{Value, json};

use crate::mcp::{self, has_str};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

const SINCE: &str = "2026-11-20T10:00:00Z";

/// Set one condition on `node` as an agent with node credentials does.
pub(crate) fn set_condition(
    tb: &Testbed,
    node: &str,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    let patch = json!({"status": {"conditions": [{
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": SINCE, "lastTransitionTime": SINCE,
    }]}});
    tb.kubectl(&[
        "patch",
        "node",
        node,
        "--subresource=status",
        "--type=strategic",
        "-p",
        &patch.to_string(),
    ]);
}

/// The entry of `name` (by `name` or `node`) in the answer's array `key`.
pub(crate) fn node<'a>(v: &'a Value, key: &str, name: &str) -> &'a Value {
    v[key]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name || n["node"] == name))
        .unwrap_or_else(|| panic!("{name} not in {key}: {v:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_marks_are_listed_scanned_and_joined_with_the_probes_incident() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-platform-marks");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("marks");
    // xid79: the probe finds Xid 79 and EKS's agent says so too (one incident); nvlink: the probe finds
    // nothing, AKS says the NVLinks are inactive (the platform's own incident); broken: the probe cannot
    // answer, EKS says a double-bit error; healthy: nothing anywhere.
    let [xid79, nvlink, broken, healthy] =
        ["xid79", "nvlink", "broken", "healthy"].map(|n| unique(&format!("mark-{n}")));
    tb.add_nodes(&[
        FakeNode::gpu(&xid79, "dgx-h100-xid79").label("e2e-group", &group),
        FakeNode::gpu(&nvlink, "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::garbage(&broken).label("e2e-group", &group),
        FakeNode::gpu(&healthy, "dgx-h100-healthy")
            .label("e2e-group", &group)
            .label("nvidia.com/cuda.driver-version.full", "550.54.15"),
    ]);
    set_condition(
        tb,
        &xid79,
        "AcceleratedHardwareReady",
        "False",
        "NvidiaXID79Error",
        "detected XID-79 on the instance, review kernel logs for additional information.",
    );
    set_condition(
        tb,
        &nvlink,
        "NVLinkStatusInactive",
        "True",
        "NVLinkStatusInactive",
        "NVLink status inactive\u{1b}[31m on GPU 2",
    );
    set_condition(
        tb,
        &broken,
        "AcceleratedHardwareReady",
        "False",
        "NvidiaDoubleBitError",
        "detected 2 Nvidia Double Bit error(s) on location DEVICE",
    );
    // kwok's heartbeat patches its own conditions and leaves the agents' alone: wait until it has run
    // once more and ours are still there, so the answers below read what the agents set.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = tb.kubectl(&[
        "get",
        "node",
        &xid79,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"AcceleratedHardwareReady\")].reason}",
    ]);
    assert_eq!(got.trim(), "NvidiaXID79Error");

    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let selector = format!("e2e-group={group}");

    // list_gpu_nodes: each marked node says so in one line with source and time; the healthy node stays
    // one line, with GPU Feature Discovery's driver.
    let r = l
        .call("list_gpu_nodes", json!({"label_selector": selector}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert!(
        t.contains(&format!(
            "  CRITICAL EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since {SINCE}\n"
        )),
        "{t}"
    );
    assert!(
        t.contains(&format!(
            "  CRITICAL AKS node problem detector: NVLinkStatusInactive=True (NVLinkStatusInactive) since {SINCE}\n"
        )),
        "{t}"
    );
    assert_eq!(v["problems"], 3, "{t}");
    let h = t
        .lines()
        .find(|l| l.contains(&healthy))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(h.contains(", driver 550.54.15"), "{h}");
    let after = t.split(h).nth(1).unwrap_or_default();
    assert!(
        !after.starts_with("\n  "),
        "a healthy node is one line: {t}"
    );
    let n = node(&v, "nodes", &nvlink);
    assert_eq!(
        n["platform"][0]["source"], "aks_node_problem_detector",
        "{n}"
    );
    assert_eq!(n["platform"][0]["fault"]["kind"], "nvlink", "{n}");
    assert_eq!(n["platform"][0]["since"], SINCE, "{n}");
    // The message is the agent's, stripped of the control characters a node could write.
    assert_eq!(
        n["platform"][0]["message"], "NVLink status inactive[31m on GPU 2",
        "{n}"
    );
    assert!(node(&v, "nodes", &healthy)["platform"].is_null(), "{v:#}");

    // scan_gpu_nodes: the EKS mark of Xid 79 is part of the probe's incident, not a second one.
    let r = l
        .call(
            "scan_gpu_nodes",
            json!({"label_selector": selector, "show_healthy": true}),
        )
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    let sick = node(&v, "needs_attention", &xid79);
    let off_bus: Vec<&Value> = sick["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "gpu.off_bus")
        .collect();
    assert_eq!(off_bus.len(), 1, "{sick:#}");
    assert!(
        off_bus[0]["summary"].as_str().unwrap().contains(&format!(
            "Also reported by EKS node monitoring agent: AcceleratedHardwareReady=False (NvidiaXID79Error) since {SINCE}"
        )),
        "{sick:#}"
    );
    // The mark is a signal of the probe's incident (kept in the scan's result), not a finding of its own.
    assert!(
        sick["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["code"] != "platform.xid.79"),
        "{sick:#}"
    );
    assert!(
        has_str(&off_bus[0]["signals"], "platform.xid.79"),
        "{sick:#}"
    );
    // The AKS mark with no probe counterpart is its own incident, critical for NVLinks.
    let nv = node(&v, "needs_attention", &nvlink);
    assert_eq!(nv["status"], "ok", "{nv:#}");
    assert_eq!(nv["findings"][0]["code"], "platform.nvlink", "{nv:#}");
    assert_eq!(nv["worst_severity"], "critical", "{nv:#}");
    // The probe failed on `broken`; its platform's mark still shows, and makes it critical.
    let b = node(&v, "needs_attention", &broken);
    assert_eq!(b["status"], "failed", "{b:#}");
    assert_eq!(b["findings"][0]["code"], "platform.memory", "{b:#}");
    let line = t
        .lines()
        .find(|l| l.contains(&broken))
        .unwrap_or_else(|| panic!("{t}"));
    assert!(line.contains("[CRITICAL] platform.memory"), "{line}");
    assert!(line.contains("probe failed"), "{line}");
    assert_eq!(v["healthy_nodes"], json!([healthy]), "{t}");
    l.stop().await;
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(120)) {
        panic!("probe pods left in {ns}: {left:?}");
    }
}
