use super::*;
use crate::finding::Action;
use crate::incident::platform;

fn finding(code: &str, sev: Severity) -> ScanFinding {
    ScanFinding {
        code: code.into(),
        severity: sev,
        gpu: Some(0),
        summary: format!("{code} seen"),
        action: ActionKind::Investigate,
        evidence: vec![],
        signals: vec![],
        cut: 0,
    }
}

fn ok(node: &str, f: Vec<ScanFinding>) -> NodeScanResult {
    let mut counts = SeverityCounts::default();
    for x in &f {
        count(&mut counts, x.severity);
    }
    NodeScanResult {
        node: node.into(),
        status: ScanStatus::Ok,
        verdict: None,
        worst_severity: f.iter().map(|x| x.severity).max(),
        counts,
        findings: f,
        error: None,
        nvlink_domain: None,
        rack_source: None,
        millis: 1,
    }
}

/// Four trays of one NVL72 rack (two with the fabric degraded), and a tray of another rack with the same
/// fault: one rack incident, named with its two nodes, first in the text; the other rack's single node
/// stays a node's fault.
#[test]
fn a_fabric_fault_on_several_trays_of_a_rack_is_one_rack_incident() {
    let rack = "6e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a14.1";
    let tray = |n: &str, d: &str, bad: bool| NodeScanResult {
        nvlink_domain: Some(d.into()),
        ..ok(
            n,
            if bad {
                vec![finding("fabric.degraded", Severity::Warning)]
            } else {
                vec![]
            },
        )
    };
    let results = vec![
        tray("tray01", rack, false),
        tray("tray02", rack, true),
        tray("tray03", rack, true),
        tray("tray04", rack, false),
        tray("other-tray", "0e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a15.1", true),
    ];
    let r = racks(&results);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        (r[0].domain.as_str(), r[0].nodes.clone()),
        (rack, vec!["tray02".to_string(), "tray03".into()])
    );
    assert_eq!(r[0].domain_nodes, 4);
}

#[test]
fn ranks_critical_then_failed_then_warning_and_skips_healthy() {
    let failed = NodeScanResult {
        status: ScanStatus::Failed,
        error: Some("probe of `n3` failed: timeout".into()),
        ..ok("n3", vec![])
    };
    let results = vec![
        ok("n1", vec![finding("thermal.slowdown", Severity::Warning)]),
        ok("n2", vec![]),
        failed,
        ok("n4", vec![finding("xid.79", Severity::Critical)]),
        ok(
            "n5",
            vec![
                finding("xid.79", Severity::Critical),
                finding("ecc.remap_pending", Severity::Critical),
            ],
        ),
    ];
    let r = rank(results);
    let order: Vec<&str> = r.iter().map(|e| e.result.node.as_str()).collect();
    assert_eq!(order, ["n5", "n4", "n3", "n1"]);
    assert_eq!(r[0].rank, 1);
    assert!(r[0].reason.contains("+1 more"), "{}", r[0].reason);
    assert!(r[2].reason.starts_with("probe failed"), "{}", r[2].reason);
    // n4 and n5 share their top finding; the one-node causes are not groups.
    let g = groups(&r);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!((g[0].cause.as_str(), g[0].nodes_count), ("xid.79", 2));
    assert_eq!(g[0].nodes, ["n5", "n4"]);
}

#[test]
fn one_probe_error_on_many_nodes_is_one_cause() {
    let failed = |n: &str| NodeScanResult {
        status: ScanStatus::Failed,
        error: Some(format!(
            "probe of `{n}` failed: pods is forbidden on {n}\nhint: bind the RBAC rules"
        )),
        ..ok(n, vec![])
    };
    let r = rank((0..40).map(|i| failed(&format!("gpu-{i:02}"))).collect());
    let g = groups(&r);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0].cause, "probe failed: pods is forbidden on <node>");
    assert_eq!(g[0].nodes_count, 40);
    assert_eq!(g[0].nodes.len(), GROUP_NAMES);
}

#[test]
fn a_node_its_platform_marks_critical_ranks_critical_even_when_its_probe_failed() {
    let mark = platform::classify(&platform::NodeCondition {
        kind: "GPUMissing",
        status: "True",
        reason: Some("GPUMissing"),
        message: None,
        since: Some("2026-11-20T10:00:00Z"),
    })
    .expect("AKS GPUMissing");
    let failed = NodeScanResult {
        error: Some("probe of `n2` failed: timeout".into()),
        status: ScanStatus::Failed,
        ..counted("n2".into(), own_incidents(&[mark]), 1)
    };
    let plain_failure = NodeScanResult {
        status: ScanStatus::Failed,
        error: Some("probe of `n3` failed: timeout".into()),
        ..ok("n3", vec![])
    };
    let r = rank(vec![
        plain_failure,
        ok("n1", vec![finding("thermal.slowdown", Severity::Warning)]),
        failed,
    ]);
    let order: Vec<&str> = r.iter().map(|e| e.result.node.as_str()).collect();
    assert_eq!(order, ["n2", "n3", "n1"]);
    assert!(
        r[0].reason.starts_with("platform.gpu_missing: AKS node problem detector reports GPU missing: GPUMissing=True (GPUMissing) since 2026-11-20T10:00:00Z"),
        "{}",
        r[0].reason
    );
    assert!(
        r[0].reason.ends_with("probe failed: timeout"),
        "{}",
        r[0].reason
    );
}

fn signal(code: &str, sev: Severity, evidence: &[&str]) -> Finding {
    Finding {
        code: code.into(),
        severity: sev,
        gpu: Some(2),
        gpu_uuid: None,
        summary: format!("{code} on GPU 2"),
        evidence: evidence.iter().map(|e| e.to_string()).collect(),
        action: Action {
            kind: ActionKind::ResetGpu,
            detail: "reset".into(),
        },
        about: vec![],
        first_seen: None,
    }
}

fn incident(signals: Vec<Finding>) -> Incident {
    Incident {
        code: "gpu.memory".into(),
        severity: Severity::Critical,
        gpu: Some(2),
        gpu_uuid: None,
        component: "GPU 2".into(),
        title: "uncorrectable memory error".into(),
        summary: "GPU 2: uncorrectable memory error".into(),
        action: signals[0].action.clone(),
        first_seen: None,
        rule: None,
        signals,
    }
}

/// An incident of several signals keeps each signal's evidence, the later ones too (the remap failure
/// after the Xid); evidence is cut per signal, counted, and node text is made one clean line.
#[test]
fn the_scan_keeps_every_signal_and_its_evidence_bounded() {
    let inc = incident(vec![
        signal("xid.48", Severity::Critical, &["xid 48 at 10:00:01"]),
        signal(
            "ecc.remap_failure",
            Severity::Critical,
            &[
                "remapping_failure = true",
                "bank 3: 0 spare rows\u{202E}evil\u{1b}[31m",
                "uncorrectable rows = 12",
                "correctable rows = 40",
                "line five",
            ],
        ),
    ]);
    let r = counted("n1".into(), vec![incident_entry(&inc)], 1);
    let f = &r.findings[0];
    assert_eq!(f.signals.len(), 2);
    assert_eq!(f.signals[0].evidence, ["xid 48 at 10:00:01"]);
    assert_eq!(f.signals[1].code, "ecc.remap_failure");
    assert_eq!(
        f.signals[1].evidence,
        [
            "remapping_failure = true",
            "bank 3: 0 spare rowsevil[31m",
            "uncorrectable rows = 12"
        ]
    );
    assert_eq!(f.cut, 2, "two evidence lines of the remap failure cut");
    // A lone finding's own evidence is kept once, not as a signal of itself.
    let lone = counted(
        "n2".into(),
        vec![Counted::from(signal(
            "xid.79",
            Severity::Critical,
            &["a"; 1],
        ))],
        1,
    );
    assert_eq!(
        (
            lone.findings[0].evidence.clone(),
            lone.findings[0].signals.len()
        ),
        (vec!["a".to_string()], 0)
    );
    let long = "x".repeat(5000);
    let one = counted(
        "n3".into(),
        vec![incident_entry(&incident(vec![signal(
            "xid.48",
            Severity::Critical,
            &[&long],
        )]))],
        1,
    );
    assert_eq!(one.findings[0].evidence[0].chars().count(), EVIDENCE_CHARS);
    assert!(one.findings[0].signals.is_empty());
}

/// Many signals: at most SIGNALS_KEPT, the rest counted.
#[test]
fn an_incident_of_many_signals_keeps_the_first_ones_and_counts_the_rest() {
    let sigs: Vec<Finding> = (0..20)
        .map(|i| signal(&format!("xid.{i}"), Severity::Warning, &[]))
        .collect();
    let r = counted("n".into(), vec![incident_entry(&incident(sigs))], 1);
    assert_eq!(r.findings[0].signals.len(), SIGNALS_KEPT);
    assert_eq!(r.findings[0].cut, 20 - SIGNALS_KEPT);
}

/// The most urgent nodes of a page keep their detail, the others keep what and where, and say what was cut.
#[test]
fn detail_is_kept_for_the_most_urgent_nodes_of_a_page() {
    let inc = incident(vec![
        signal("xid.48", Severity::Critical, &["e1"]),
        signal("ecc.remap_failure", Severity::Critical, &["e2", "e3"]),
    ]);
    let results: Vec<NodeScanResult> = (0..DETAILED_NODES + 3)
        .map(|i| counted(format!("n{i:02}"), vec![incident_entry(&inc)], 1))
        .collect();
    let mut page = rank(results);
    assert_eq!(bound_details(&mut page), 3);
    assert_eq!(page[0].result.findings[0].signals.len(), 2);
    let last = &page[DETAILED_NODES].result.findings[0];
    assert!(last.signals.is_empty() && last.evidence.is_empty());
    assert_eq!(last.cut, 2 + 3, "two signals and three evidence lines");
    assert_eq!(last.code, "gpu.memory", "what and where stay");
}

fn tray(name: &str, fabric_fault: bool) -> NodeScanResult {
    let mut f = finding("fabric.not_registered", Severity::Critical);
    f.action = ActionKind::RestartFabricManager;
    ok(name, if fabric_fault { vec![f] } else { vec![] })
}

fn hints(gfd: Option<&str>, cd: Option<(&str, &str)>, topo: Option<(&str, &str)>) -> RackHints {
    RackHints {
        gfd_clique: gfd.map(String::from),
        compute_domains: cd
            .map(|(n, c)| vec![(n.to_string(), c.to_string())])
            .unwrap_or_default(),
        topology: topo.map(|(l, v)| (l.to_string(), v.to_string())),
    }
}

/// Trays of a rack whose fabric never registered (no cluster UUID from NVML) and `hints` each: one rack
/// incident, grouped by the given source, over the faulty trays, counted against the group.
fn one_rack_by(h: impl Fn(usize) -> RackHints) -> (Vec<NodeScanResult>, Vec<RackIncident>) {
    let mut results: Vec<NodeScanResult> = (0..18)
        .map(|i| tray(&format!("tray{i:02}"), i != 0))
        .collect();
    // A node of another rack with the same fault, alone there.
    results.push(tray("other", true));
    let mut map: BTreeMap<String, RackHints> =
        (0..18).map(|i| (format!("tray{i:02}"), h(i))).collect();
    map.insert(
        "other".into(),
        hints(Some("ffffffff-0000-4000-8000-000000000001.1"), None, None),
    );
    place_in_racks(&mut results, &map);
    let r = racks(&results);
    (results, r)
}

const CLIQUE: &str = "6e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a14.1";

#[test]
fn a_rack_without_cluster_uuid_is_grouped_by_gfds_clique_label() {
    let (results, r) = one_rack_by(|_| hints(Some(CLIQUE), None, None));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].domain, CLIQUE);
    assert_eq!(r[0].grouped_by, [RackSource::GfdClique]);
    assert_eq!((r[0].nodes.len(), r[0].domain_nodes), (17, 18));
    assert!(
        r[0].summary
            .contains("(grouped by GFD's clique label: the GPUs name no cluster UUID"),
        "{}",
        r[0].summary
    );
    assert_eq!(results[3].rack_source, Some(RackSource::GfdClique));
}

#[test]
fn a_rack_without_cluster_uuid_or_label_is_grouped_by_its_compute_domain() {
    // The driver's clique ID of an unregistered fabric is empty: the ComputeDomain names the rack.
    let (_, r) = one_rack_by(|_| hints(None, Some(("train/cd-a", "")), None));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].domain, "ComputeDomain train/cd-a");
    assert_eq!(r[0].grouped_by, [RackSource::ComputeDomain]);
    assert!(
        r[0].summary
            .contains("grouped by a ComputeDomain's node list"),
        "{}",
        r[0].summary
    );
}

#[test]
fn a_rack_with_only_a_topology_label_is_grouped_by_it() {
    let sub = ("cloud.google.com/gce-topology-subblock", "sb-7f3a");
    let (_, r) = one_rack_by(|_| hints(None, None, Some(sub)));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        r[0].domain,
        "cloud.google.com/gce-topology-subblock=sb-7f3a"
    );
    assert_eq!(r[0].grouped_by, [RackSource::TopologyLabel]);
    // A healthy tray with the label alone is in no rack (nothing says it has an NVLink fabric), so the
    // group counts the 17 trays that show the fault.
    assert_eq!(r[0].domain_nodes, 17);
}

#[test]
fn labels_name_the_rack_by_the_best_source_and_never_by_zone() {
    let h = RackHints::from_labels([
        ("topology.kubernetes.io/zone", "us-east-1a"),
        ("topology.k8s.aws/network-node-layer-3", "nn-3"),
        ("topology.k8s.aws/network-node-layer-1", "nn-1"),
        ("cloud.google.com/gce-topology-block", "b"),
        ("nvidia.com/gpu.clique", " "),
    ]);
    assert_eq!(h.gfd_clique, None, "a blank label names nothing");
    assert_eq!(
        h.topology,
        Some((
            "topology.k8s.aws/network-node-layer-3".into(),
            "nn-3".into()
        ))
    );
    let zone_only = RackHints::from_labels([("topology.kubernetes.io/zone", "z")]);
    assert_eq!(zone_only, RackHints::default());
    // Hostile label text: one clean bounded line.
    let h = RackHints::from_labels([("nvidia.com/gpu.clique", "a\u{1b}[2J\u{202E}b")]);
    assert_eq!(h.gfd_clique.as_deref(), Some("a[2Jb"));
}

/// Mixed sources: most trays read their cluster UUID (NVML), three never registered and carry only GFD's
/// label or a ComputeDomain shared with registered trays: they join NVML's rack through it. Conflict: a
/// node whose GFD label says this rack but whose GPUs read another cluster UUID stays in NVML's (the label
/// is a past reading).
#[test]
fn mixed_sources_join_the_strongest_name_and_nvml_wins_a_conflict() {
    let other = "0e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a15.1";
    let mut results: Vec<NodeScanResult> = (0..6).map(|i| tray(&format!("t{i}"), i >= 3)).collect();
    for r in results.iter_mut().take(3) {
        r.nvlink_domain = Some(CLIQUE.into());
    }
    let mut moved = tray("moved", true);
    moved.nvlink_domain = Some(other.into());
    results.push(moved);
    let cd = Some(("ns/cd", ""));
    let map: BTreeMap<String, RackHints> = [
        ("t0", hints(Some(CLIQUE), cd, None)),
        ("t1", hints(Some(CLIQUE), None, None)),
        ("t2", hints(Some(CLIQUE), None, None)),
        // Unregistered: GFD's label from before.
        ("t3", hints(Some(CLIQUE), None, None)),
        // Unregistered, no label (GFD not yet run): in t0's ComputeDomain.
        ("t4", hints(None, cd, None)),
        // Unregistered, only a topology label shared with nobody stronger.
        (
            "t5",
            hints(
                None,
                None,
                Some(("cloud.google.com/gce-topology-subblock", "x")),
            ),
        ),
        ("moved", hints(Some(CLIQUE), None, None)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    place_in_racks(&mut results, &map);
    let by = |n: &str| {
        let r = results.iter().find(|r| r.node == n).unwrap();
        (r.rack_source, r.nvlink_domain.clone())
    };
    assert_eq!(by("t3"), (Some(RackSource::GfdClique), Some(CLIQUE.into())));
    assert_eq!(
        by("t4"),
        (Some(RackSource::ComputeDomain), Some(CLIQUE.into()))
    );
    assert_eq!(by("moved"), (Some(RackSource::Nvml), Some(other.into())));
    assert_eq!(by("t5").0, Some(RackSource::TopologyLabel));
    let r = racks(&results);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].nodes, ["t3", "t4"]);
    assert_eq!(
        r[0].grouped_by,
        [RackSource::GfdClique, RackSource::ComputeDomain]
    );
    assert_eq!(r[0].domain_nodes, 5);
}

/// Two groups of GFD-labelled trays that disagree bridge nothing: a tray sharing a ComputeDomain with
/// nodes of two different cluster UUIDs keeps its own name.
#[test]
fn a_weak_name_shared_with_two_racks_joins_neither() {
    let mut results = vec![tray("a", false), tray("b", false), tray("c", true)];
    results[0].nvlink_domain = Some(CLIQUE.into());
    results[1].nvlink_domain = Some("0e3b1f0a-9c2d-4e8f-a1b7-3c5d2e9f0a15.1".into());
    let cd = Some(("ns/cd", ""));
    let map: BTreeMap<String, RackHints> = ["a", "b", "c"]
        .iter()
        .map(|n| (n.to_string(), hints(None, cd, None)))
        .collect();
    place_in_racks(&mut results, &map);
    assert_eq!(
        (results[2].rack_source, results[2].nvlink_domain.as_deref()),
        (Some(RackSource::ComputeDomain), Some("ComputeDomain ns/cd"))
    );
}

/// However much detail the most urgent nodes carry, the page keeps at most DETAIL_BUDGET characters of it.
#[test]
fn the_detail_of_a_page_fits_its_budget() {
    let long = "e".repeat(EVIDENCE_CHARS * 2);
    let sigs: Vec<Finding> = (0..SIGNALS_KEPT)
        .map(|i| {
            signal(
                &format!("xid.{i}"),
                Severity::Critical,
                &[&long, &long, &long],
            )
        })
        .collect();
    let results: Vec<NodeScanResult> = (0..DETAILED_NODES)
        .map(|i| {
            let incs = (0..8)
                .map(|_| incident_entry(&incident(sigs.clone())))
                .collect();
            counted(format!("n{i:02}"), incs, 1)
        })
        .collect();
    let mut page = rank(results);
    let stripped = bound_details(&mut page);
    let json = serde_json::to_string(&page).unwrap();
    assert!(stripped > 0);
    assert!(json.len() < DETAIL_BUDGET + 40_000, "{} bytes", json.len());
    assert!(
        !page[0].result.findings[0].signals.is_empty(),
        "the most urgent keep theirs"
    );
    let last = page.last().unwrap().result.findings.last().unwrap();
    assert!(last.signals.is_empty() && last.cut > 0);
}
