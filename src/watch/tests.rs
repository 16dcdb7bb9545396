//! The window's reading on played scripts: each built-in time script gives its pattern on its GPU, the steady
//! nodes give nothing, and a timeline's mistakes are refused in words.

use super::*;
use crate::facts::{Segment, Timeline};
use crate::scenarios::{BUILTIN, WATCH_SCRIPTS, find, parse, parse_script};

/// A window of `seconds` sampled every `interval_ms`, played without waiting.
fn play(facts: &NodeFacts, seconds: u32, interval_ms: u32) -> WatchReport {
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
    analyze(&input, facts, None, &AnalysisOptions::default())
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
        if s.name.ends_with("-healthy") {
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
