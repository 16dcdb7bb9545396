//! The window's reading on played scripts: each built-in time script gives its pattern on its GPU, the steady
//! nodes give nothing, and a timeline's mistakes are refused in words.

use super::*;
use crate::facts::{Segment, Timeline};
use crate::scenarios::{BUILTIN, WATCH_SCRIPTS, find, parse, parse_script};

/// A window of `seconds` sampled every `interval_ms`, played without waiting.
fn play(facts: &NodeFacts, seconds: u32, interval_ms: u32) -> WatchReport {
    let input = played(facts, seconds, interval_ms);
    analyze(&input, facts, None, &AnalysisOptions::default())
}

/// The samples of [`play`], not yet read.
fn played(facts: &NodeFacts, seconds: u32, interval_ms: u32) -> WatchInput {
    let n = seconds * 1000 / interval_ms + 1;
    let mut input = WatchInput {
        started_unix: 1_795_600_000.0,
        seconds,
        interval_ms,
        ..WatchInput::default()
    };
    for k in 0..n {
        let t = f64::from(k * interval_ms) / 1000.0;
        let f = script::facts_at(facts, t);
        if k == 0 {
            input.identities = f.gpus.iter().map(sample::identity_of).collect();
            input.processes = f
                .gpus
                .iter()
                .filter_map(|g| g.processes.ok().map(|p| (g.index, p.len())))
                .collect();
        }
        input.ticks.push(Tick {
            t_s: t,
            gpus: f.gpus.iter().map(sample::sample_of).collect(),
        });
    }
    if let Some(tl) = &facts.timeline {
        input.kernel = script::lines_between(tl, 0.0, f64::from(seconds) + 1e-9)
            .map(|(t, l)| (t, l.to_string()))
            .collect();
    }
    input
}

fn script_facts(name: &str) -> NodeFacts {
    crate::scenarios::find_script(name)
        .unwrap_or_else(|| panic!("no script {name}"))
        .facts()
        .unwrap()
}

fn warnings(r: &WatchReport) -> Vec<&Episode> {
    r.episodes
        .iter()
        .filter(|e| e.severity >= Severity::Warning)
        .collect()
}

#[test]
fn every_script_is_valid_over_its_scenario() {
    for s in WATCH_SCRIPTS {
        let f = s.facts().unwrap_or_else(|e| panic!("{}: {e}", s.name));
        script::validate(f.timeline.as_ref().unwrap(), &f)
            .unwrap_or_else(|e| panic!("{}: {e}", s.name));
        assert!(!s.description().is_empty(), "{}", s.name);
    }
}

#[test]
fn a_hang_in_a_collective_is_no_progress_on_every_gpu() {
    let r = play(&script_facts("dgx-h100-watch-hang"), 20, 500);
    assert_eq!(r.pattern.kind, PatternKind::AllIdle, "{}", r.headline);
    assert_eq!(r.pattern.gpus_in_use, 8);
    assert!(r.headline.contains("spinning"), "{}", r.headline);
    assert_eq!(r.verdict, Verdict::Degraded);
}

#[test]
fn the_straggler_is_the_one_gpu_computing() {
    let r = play(&script_facts("dgx-h100-watch-straggler"), 20, 500);
    assert_eq!(r.pattern.kind, PatternKind::BusyWhileOthersWait);
    assert_eq!(r.pattern.suspects, vec!["GPU 5".to_string()]);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].gpu, Some(5));
}

#[test]
fn throttling_in_bursts_is_timed_and_counted_on_its_gpu() {
    let r = play(&script_facts("dgx-h100-watch-throttle-bursts"), 20, 500);
    let t = r
        .episodes
        .iter()
        .find(|e| e.kind == EpisodeKind::Throttled)
        .expect("a throttle episode");
    assert_eq!(t.gpu, Some(3));
    // On 2 s of every 5 from 1 s: 1–3, 6–8, 11–13, 16–18.
    assert!(
        t.text
            .contains("throttled 8 s of 20 s (HW slowdown), in 4 bursts"),
        "{}",
        t.text
    );
    let g3 = &r.gpus[3];
    assert_eq!(g3.throttled.len(), 1);
    assert!((g3.throttled[0].seconds - 8.0).abs() < 0.01);
    assert!(
        r.gpus
            .iter()
            .filter(|g| g.identity.index != 3)
            .all(|g| g.throttled.iter().all(|t| !t.reason.harmful()))
    );
    assert_eq!(r.pattern.kind, PatternKind::SlowerPeer);
    assert_eq!(r.pattern.suspects, vec!["GPU 3".to_string()]);
    assert!(g3.timeline.throttled_pct.iter().any(|p| *p >= 50));
}

#[test]
fn a_counter_that_climbs_under_load_says_so() {
    let r = play(&script_facts("dgx-h100-watch-nvlink-under-load"), 20, 500);
    let c = r
        .episodes
        .iter()
        .find(|e| e.kind == EpisodeKind::Counter)
        .expect("a counter episode");
    assert_eq!(c.gpu, Some(2));
    assert_eq!(c.code, "counter.nvlink_replay:4");
    assert!(
        c.text.contains("NVLink replays on link 4 under load"),
        "{}",
        c.text
    );
    assert_eq!(r.gpus[2].counters[0].under_load_pct, 100);
    // Bursts on every GPU together are one node-level note, not eight.
    let bursts: Vec<_> = r
        .episodes
        .iter()
        .filter(|e| e.kind == EpisodeKind::Bursty)
        .collect();
    assert_eq!(bursts.len(), 1);
    assert_eq!(bursts[0].gpu, None);
    assert_eq!(warnings(&r).len(), 1, "{:?}", r.episodes);
}

#[test]
fn an_xid_mid_window_is_timed_on_its_gpu_and_the_stall_after_it_shows() {
    let r = play(&script_facts("dgx-h100-watch-xid79"), 20, 500);
    assert_eq!(r.verdict, Verdict::Unhealthy);
    let x = r
        .episodes
        .iter()
        .find(|e| e.code == "xid.79")
        .expect("Xid 79");
    assert_eq!(
        (x.gpu, x.from_s, x.severity),
        (Some(4), 8.0, Severity::Critical)
    );
    let lost = r
        .episodes
        .iter()
        .find(|e| e.kind == EpisodeKind::Unreadable)
        .expect("lost");
    assert_eq!((lost.gpu, lost.from_s), (Some(4), 8.0));
    assert!(
        r.episodes.iter().any(|e| e.kind == EpisodeKind::Onset),
        "{:?}",
        r.episodes
    );
}

#[test]
fn an_amd_gpu_at_its_hbm_limit_is_the_slower_peer() {
    let r = play(&script_facts("mi300x-watch-hbm-thermal"), 20, 500);
    let t = r
        .episodes
        .iter()
        .find(|e| e.kind == EpisodeKind::Throttled)
        .expect("throttle");
    assert_eq!(t.gpu, Some(6));
    assert!(t.text.contains("HBM thermal limit"), "{}", t.text);
    assert_eq!(r.pattern.kind, PatternKind::SlowerPeer);
    assert_eq!(r.pattern.suspects, vec!["GPU 6".to_string()]);
}

/// A Gaudi whose firmware heartbeat is lost: the habanalabs line is the episode (Intel's code, on that
/// device, when it came), the device is unreadable while the driver resets it, and nothing says Xid.
#[test]
fn a_gaudi_heartbeat_loss_is_the_devices_episode_in_intels_words() {
    let r = play(&script_facts("gaudi2-watch-heartbeat-reset"), 20, 500);
    assert_eq!(r.verdict, Verdict::Unhealthy, "{}", r.headline);
    let hb = r
        .episodes
        .iter()
        .find(|e| e.code == "habanalabs.heartbeat")
        .unwrap_or_else(|| panic!("the heartbeat episode: {:?}", r.episodes));
    assert_eq!(
        (hb.gpu, hb.from_s, hb.severity),
        (Some(5), 8.0, Severity::Critical),
        "{hb:?}"
    );
    assert!(hb.text.contains("Device heartbeat failed"), "{}", hb.text);
    let reset = r
        .episodes
        .iter()
        .find(|e| e.code == "habanalabs.reset")
        .expect("the reset episode");
    assert_eq!(reset.gpu, Some(5));
    let lost = r
        .episodes
        .iter()
        .find(|e| e.kind == EpisodeKind::Unreadable)
        .expect("the device in reset is unreadable");
    assert_eq!(lost.gpu, Some(5));
    assert!(
        r.episodes.iter().all(|e| !e.code.starts_with("xid.")),
        "{:?}",
        r.episodes
    );
}

/// Nothing is invented on a node that does not change: no built-in scenario played without a timeline shows
/// a pattern, a counter or a throttle it does not already carry.
#[test]
fn a_steady_node_shows_nothing_new() {
    for s in BUILTIN {
        let f = parse(&s.json()).unwrap();
        let r = play(&f, 5, 500);
        let lost: Vec<u32> = f
            .gpus
            .iter()
            .filter(|g| sample::sample_of(g).unreadable.is_some())
            .map(|g| g.index)
            .collect();
        for e in r.episodes.iter().filter(|e| {
            !(e.kind == EpisodeKind::Unreadable && e.gpu.is_some_and(|g| lost.contains(&g)))
        }) {
            assert!(
                !matches!(
                    e.kind,
                    EpisodeKind::Counter
                        | EpisodeKind::Onset
                        | EpisodeKind::BusyAmongIdle
                        | EpisodeKind::IdleAmongBusy
                        | EpisodeKind::Bursty
                        | EpisodeKind::Unreadable
                        | EpisodeKind::KernelEvent
                ),
                "{}: {e:?}",
                s.name
            );
        }
        // The habanalabs and neuron drivers' sysfs show no utilization: such a node's watch cannot tell
        // busy from idle and says unknown, never healthy (issue 78: HLML at run time would give it).
        let no_utilization = f.gpus.iter().all(|g| g.utilization.ok().is_none());
        if s.name.ends_with("-healthy") && no_utilization {
            assert_eq!(r.verdict, Verdict::Unknown, "{}: {:?}", s.name, r.episodes);
        } else if s.name.ends_with("-healthy") {
            assert_eq!(r.verdict, Verdict::Healthy, "{}: {:?}", s.name, r.episodes);
        }
    }
}

#[test]
fn an_idle_node_with_nothing_on_it_is_not_a_hang() {
    let mut f = parse(&find("dgx-h100-healthy").unwrap().json()).unwrap();
    for g in &mut f.gpus {
        g.processes = Reading::Ok(Vec::new());
    }
    f.timeline = Some(Timeline {
        segments: vec![Segment {
            util_pct: Some(0),
            power_w: Some(70.0),
            ..Segment::default()
        }],
        kernel_log: Vec::new(),
    });
    let r = play(&f, 5, 500);
    assert_eq!(
        r.pattern.kind,
        PatternKind::NothingRunning,
        "{}",
        r.headline
    );
    assert_eq!(r.verdict, Verdict::Healthy);
}

#[test]
fn a_timelines_mistakes_are_refused_in_words() {
    let base = parse(&find("dgx-h100-healthy").unwrap().json()).unwrap();
    let bad = [
        (r#"{"segments":[{"gpus":[9],"util_pct":5}]}"#, "no GPU 9"),
        (
            r#"{"segments":[{"from_s":5,"to_s":2}]}"#,
            "to_s must be after from_s",
        ),
        (
            r#"{"segments":[{"every_s":2}]}"#,
            "every_s and on_s go together",
        ),
        (
            r#"{"segments":[{"counters":{"fan_speed":1}}]}"#,
            "unknown counter `fan_speed`",
        ),
        (r#"{"segments":[{"util_pct":130}]}"#, "percentage"),
    ];
    for (json, want) in bad {
        let t: Timeline = serde_json::from_str(json).unwrap();
        let e = script::validate(&t, &base).unwrap_err();
        assert!(e.contains(want), "{json}: {e}");
    }
    assert!(serde_json::from_str::<Timeline>(r#"{"segments":[{"utilization":5}]}"#).is_err());
    assert!(
        parse_script(r#"{"scenario":"nope","timeline":{}}"#)
            .unwrap_err()
            .contains("not a built-in scenario")
    );
}

/// One idle sample is not a stuck job: a hung collective sampled twice (a pause between steps reads the
/// same) gives an unknown pattern that says why in words, and no "no progress" verdict.
#[test]
fn two_samples_of_idle_gpus_are_too_few_to_call_a_hang() {
    let r = play(&script_facts("dgx-h100-watch-hang"), 1, 1000);
    assert_eq!(r.window.samples, 2);
    assert_eq!(r.pattern.kind, PatternKind::Unknown, "{}", r.headline);
    assert!(
        r.pattern.summary.contains("too few samples")
            && r.pattern.summary.contains("GPU 0 2 sample(s)")
            && r.pattern.summary.contains("at least 3 per GPU"),
        "{}",
        r.pattern.summary
    );
    assert!(!r.headline.contains("no progress"), "{}", r.headline);
    assert_eq!(r.verdict, Verdict::Unknown);
    assert!(r.gpus.iter().all(|g| g.util_samples == Some(2)));
    // Three samples are enough to read it.
    let r = play(&script_facts("dgx-h100-watch-hang"), 2, 1000);
    assert_eq!(r.pattern.kind, PatternKind::AllIdle, "{}", r.headline);
}

/// A window with gaps: one GPU answered in only two of forty samples (read failures between), so its
/// state is a guess and the node's pattern is not read from it.
#[test]
fn a_gpu_read_in_too_few_samples_makes_the_pattern_unknown() {
    let facts = script_facts("dgx-h100-watch-hang");
    let mut input = played(&facts, 20, 500);
    let ticks = input.ticks.len();
    for (k, t) in input.ticks.iter_mut().enumerate() {
        if k != 0 && k != ticks - 1 {
            t.gpus.retain(|g| g.index != 3);
        }
    }
    let r = analyze(&input, &facts, None, &AnalysisOptions::default());
    assert_eq!(r.pattern.kind, PatternKind::Unknown, "{}", r.headline);
    assert!(
        r.pattern.summary.contains("GPU 3 2 sample(s)"),
        "{}",
        r.pattern.summary
    );
    let g3 = r.gpus.iter().find(|g| g.identity.index == 3).unwrap();
    assert_eq!(g3.util_samples, Some(2));
    // The others were read in every sample.
    assert!(
        r.gpus
            .iter()
            .filter(|g| g.identity.index != 3)
            .all(|g| g.util_samples == Some(ticks as u32))
    );
}

/// A GPU of a job's node with `util` mean utilization, held by the job's pod, read in 40 samples.
fn job_gpu(template: &GpuWindow, index: u32, util: f64) -> GpuWindow {
    let mut g = template.clone();
    g.identity.index = index;
    g.held_by = vec!["ml/job-0".into()];
    g.util_pct = Some(Stat {
        min: util,
        mean: util,
        max: util.max(12.0),
    });
    g.util_samples = Some(40);
    g.power_w = None;
    g.sm_mhz = None;
    g
}

fn window_at(start: f64, covered: f64, samples: u32) -> Window {
    Window {
        started_unix: 1_795_600_000.0 + start,
        seconds: 20,
        covered_s: covered,
        interval_ms: 500,
        samples,
        missed: 0,
        stopped_early: false,
    }
}

/// Windows of our own with a late probe and nodes that fail: a node whose window does not overlap the
/// others' is left out by name and why (compared with them, its idle GPUs read as a rank that stopped);
/// a failed node and one with no sample are named; the pattern reads the rest.
#[test]
fn a_jobs_pattern_names_missing_nodes_and_never_joins_windows_that_do_not_overlap() {
    let template = play(&script_facts("dgx-h100-watch-hang"), 5, 500).gpus[0].clone();
    let gpus: Vec<(&str, GpuWindow)> = vec![
        ("node-a", job_gpu(&template, 0, 97.0)),
        ("node-a", job_gpu(&template, 1, 96.0)),
        ("node-b", job_gpu(&template, 0, 98.0)),
        ("node-b", job_gpu(&template, 1, 97.0)),
        // node-c's probe started 30 s late: its GPUs idled after the job's step, in another stretch.
        ("node-c", job_gpu(&template, 0, 2.0)),
        ("node-c", job_gpu(&template, 1, 1.0)),
    ];
    let in_use: Vec<GpuInUse<'_>> = gpus
        .iter()
        .map(|(n, g)| GpuInUse::new(Some(n), g))
        .collect();
    // Without the join: node-c reads as the rank that stopped.
    let naive = pattern::classify(&in_use, 20.0);
    assert_eq!(naive.kind, PatternKind::IdleWhileOthersRun);
    let (a, b, c, empty) = (
        window_at(0.0, 20.0, 41),
        window_at(0.2, 20.0, 41),
        window_at(30.0, 20.0, 41),
        window_at(0.0, 0.0, 0),
    );
    let spans = [
        pattern::NodeSpan {
            node: "node-a",
            window: Ok(&a),
        },
        pattern::NodeSpan {
            node: "node-b",
            window: Ok(&b),
        },
        pattern::NodeSpan {
            node: "node-c",
            window: Ok(&c),
        },
        pattern::NodeSpan {
            node: "node-d",
            window: Err("the probe pod was not scheduled in 60 s"),
        },
        pattern::NodeSpan {
            node: "node-e",
            window: Ok(&empty),
        },
    ];
    let joined = pattern::join_windows(&spans);
    assert_eq!(joined.nodes, ["node-a", "node-b"]);
    assert_eq!(joined.partial, None, "0.2 s apart is the same window");
    assert_eq!(joined.left_out.len(), 3, "{:?}", joined.left_out);
    assert!(joined.left_out[0].starts_with("node-d: no window (the probe pod was not scheduled"));
    assert_eq!(joined.left_out[1], "node-e: its probe took no sample");
    assert!(
        joined.left_out[2]
            .starts_with("node-c: its window (30 s–50 s after the first start) does not overlap"),
        "{}",
        joined.left_out[2]
    );
    let p = pattern::classify_joined(&in_use, 20.0, &joined);
    assert_eq!(p.kind, PatternKind::Progressing, "{}", p.summary);
    assert_eq!(p.gpus_in_use, 4);
    assert!(
        p.summary
            .ends_with("read on 2 of 5 node(s), without node-d, node-e, node-c"),
        "{}",
        p.summary
    );
    assert_eq!(p.left_out, joined.left_out);
}

/// Windows that overlap in part are joined, and the pattern says how much of them coincides and who
/// started late; the most windows sharing an instant win over an earlier lone one.
#[test]
fn windows_that_overlap_in_part_are_said_to() {
    let (a, b, c) = (
        window_at(0.0, 20.0, 41),
        window_at(8.0, 20.0, 41),
        window_at(9.0, 20.0, 41),
    );
    let spans = [
        pattern::NodeSpan {
            node: "node-a",
            window: Ok(&a),
        },
        pattern::NodeSpan {
            node: "node-b",
            window: Ok(&b),
        },
        pattern::NodeSpan {
            node: "node-c",
            window: Ok(&c),
        },
    ];
    let j = pattern::join_windows(&spans);
    assert_eq!(j.nodes, ["node-a", "node-b", "node-c"]);
    assert!(j.left_out.is_empty());
    assert_eq!(
        j.partial.as_deref(),
        Some(
            "the nodes' windows coincide for only 11 s of 20 s (node-b started 8 s late, node-c started 9 s \
             late): the pattern compares whole windows that only partly overlap"
        )
    );
    // node-a alone early, node-b and node-c together later: the pair is the job's window.
    let (a, b, c) = (
        window_at(0.0, 5.0, 11),
        window_at(10.0, 20.0, 41),
        window_at(10.5, 20.0, 41),
    );
    let spans = [
        pattern::NodeSpan {
            node: "node-a",
            window: Ok(&a),
        },
        pattern::NodeSpan {
            node: "node-b",
            window: Ok(&b),
        },
        pattern::NodeSpan {
            node: "node-c",
            window: Ok(&c),
        },
    ];
    let j = pattern::join_windows(&spans);
    assert_eq!(j.nodes, ["node-b", "node-c"]);
    assert_eq!(j.left_out.len(), 1);
    assert!(
        j.left_out[0].starts_with("node-a: its window"),
        "{:?}",
        j.left_out
    );
    // No node answered: nothing to read, said so.
    let j = pattern::join_windows(&[pattern::NodeSpan {
        node: "node-a",
        window: Err("gone"),
    }]);
    let p = pattern::classify_joined(&[], 20.0, &j);
    assert_eq!(p.kind, PatternKind::Unknown);
    assert!(
        p.summary.contains("no node's window could be read")
            && p.summary.contains("without node-a")
    );
}

/// One node's answer is its window as it stands: every episode on that node, its GPUs, its verdict.
#[test]
fn one_nodes_answer_keeps_its_window() {
    let w = play(&script_facts("dgx-h100-watch-straggler"), 20, 500);
    let o = join::of_node(
        "gpu-1",
        Some("prod".into()),
        20,
        500,
        &w,
        Some("probe://1/gpu-1/watch".into()),
    );
    assert_eq!(o.target, "node gpu-1");
    assert_eq!(
        (o.verdict, o.headline.as_str()),
        (w.verdict, w.headline.as_str())
    );
    assert_eq!(o.episodes.len() + o.episodes_not_listed, w.episodes.len());
    assert!(
        o.episodes.iter().all(|e| e.node == "gpu-1"),
        "{:?}",
        o.episodes
    );
    assert_eq!(o.nodes.len(), 1);
    assert_eq!(o.nodes[0].gpus.len(), w.gpus.len());
    assert_eq!(
        o.nodes[0].report_uri.as_deref(),
        Some("probe://1/gpu-1/watch")
    );
    assert!(o.started_at.starts_with("2026-"), "{}", o.started_at);
    assert!(o.workload.is_none() && o.history.is_none());
}

/// A job's windows on two nodes, one of which did not answer: the nodes in name order, the failure said,
/// the straggler named with its node, and the failed node counted in the headline.
#[test]
fn a_workloads_windows_join_into_one_answer() {
    let w = play(&script_facts("dgx-h100-watch-straggler"), 20, 500);
    let o = join::of_workload(join::WorkloadWindows {
        label: "job/train".into(),
        namespace: "ml".into(),
        context: None,
        seconds: 20,
        interval_ms: 500,
        start_at_ms: 1_795_600_000_000,
        pods: Vec::new(),
        nodes: Vec::new(),
        logs: None,
        log_limits: "last 2000 lines".into(),
        windows: vec![
            ("node-b".into(), Err("the probe pod never started".into())),
            ("node-a".into(), Ok((w.clone(), None))),
        ],
    });
    assert_eq!(o.target, "job/train in namespace ml");
    let names: Vec<&str> = o.nodes.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(names, ["node-a", "node-b"]);
    assert_eq!(o.nodes_failed, 1);
    assert_eq!(
        o.nodes[1].error.as_deref(),
        Some("the probe pod never started")
    );
    // No pod named as a holder: every GPU of the node is the workload's, and said so.
    assert_eq!(o.nodes[0].gpus.len(), w.gpus.len());
    assert!(
        o.nodes[0]
            .held
            .as_deref()
            .is_some_and(|h| h.contains("every GPU of the node")),
        "{:?}",
        o.nodes[0].held
    );
    assert_eq!(
        join::first_suspect_node(&o.pattern).as_deref(),
        Some("node-a"),
        "{:?}",
        o.pattern
    );
    assert!(
        o.episodes.iter().all(|e| e.node == "node-a"),
        "{:?}",
        o.episodes
    );
    assert!(
        o.headline
            .ends_with("(20 s watched on 1 node(s); 1 failed)"),
        "{}",
        o.headline
    );
    assert_ne!(o.verdict, Verdict::Healthy);
    assert_eq!(
        o.workload.as_ref().map(|j| j.logs.as_str()),
        Some("last 2000 lines")
    );
    assert!(o.started_at.starts_with("2026-"), "{}", o.started_at);
}

/// The structured result lists the first episodes and counts the rest.
#[test]
fn a_long_list_of_episodes_is_bounded_and_counted() {
    let w = play(&script_facts("dgx-h100-watch-straggler"), 20, 500);
    let e = w.episodes.first().expect("an episode").clone();
    let many: Vec<NodeEpisode> = (0..EPISODES_LISTED + 5)
        .map(|_| NodeEpisode {
            node: "n".into(),
            episode: e.clone(),
        })
        .collect();
    let (kept, more) = listed(many);
    assert_eq!((kept.len(), more), (EPISODES_LISTED, 5));
    let (kept, more) = listed(kept[..3].to_vec());
    assert_eq!((kept.len(), more), (3, 0));
}

/// Steady GPUs in one line: each reading's range, or its one value.
#[test]
fn steady_gpus_are_summed_up_in_one_line() {
    let w = play(&script_facts("dgx-h100-watch-straggler"), 20, 500);
    let line = join::uniform_line(&w.gpus);
    assert!(
        line.starts_with(&format!("{} GPU(s), ", w.gpus.len())),
        "{line}"
    );
    assert!(line.contains(" W"), "{line}");
    assert_eq!(join::uniform_line(&[]), "0 GPU(s), no readings");
}
