//! The pattern across the GPUs in use — one node's, or a job's across its nodes: all busy (progress), all
//! idle (a hang, most likely in a collective), one busy while the others wait (a straggler or a deadlock),
//! one idle while the others run, one slower than its peers.

use super::report::{Episode, EpisodeKind, GpuWindow, Pattern, PatternKind, Window, bounded, secs};
use crate::finding::Severity;

/// Mean utilization under which a GPU in use counts as idle for the window, and over which as busy.
const IDLE_MEAN_PCT: f64 = 10.0;
const BUSY_MEAN_PCT: f64 = 50.0;
/// A GPU pegged at high utilization under this share of its power limit runs a kernel that spins (NCCL
/// polling in a collective: an H100 waiting there draws 110–150 W of 700) rather than computing.
const SPIN_POWER_SHARE: f64 = 0.30;
/// A busy GPU whose mean SM clock is under this share of its busy peers' median runs slower.
const SLOWER_SHARE: f64 = 0.85;
/// Utilization samples a GPU needs before its window says anything about a pattern: one or two idle
/// samples are as likely a pause between steps (a checkpoint, the data loader) as a hang.
pub const MIN_SAMPLES: u32 = 3;
/// Windows of a job's nodes that coincide for less than this share of the longest are said to overlap
/// only in part.
const OVERLAP_SHARE: f64 = 0.9;

/// What a GPU did over the window, by its utilization and its power against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// Utilization pegged while power stays near idle: a kernel polling, waiting on peers.
    Spinning,
    Computing,
    /// Between idle and busy.
    Partial,
}

/// A GPU of the pattern, with the node it is on when the pattern spans nodes.
pub struct GpuInUse<'a> {
    pub node: Option<&'a str>,
    pub gpu: &'a GpuWindow,
}

impl<'a> GpuInUse<'a> {
    pub fn new(node: Option<&'a str>, gpu: &'a GpuWindow) -> Self {
        GpuInUse { node, gpu }
    }

    fn label(&self) -> String {
        match self.node {
            Some(n) => format!("{n} GPU {}", self.gpu.identity.index),
            None => format!("GPU {}", self.gpu.identity.index),
        }
    }

    fn util(&self) -> Option<f64> {
        self.gpu.util_pct.map(|u| u.mean)
    }

    /// Its utilization samples, where they are too few to read ([`MIN_SAMPLES`]).
    fn too_few(&self) -> Option<u32> {
        self.gpu
            .util_samples
            .filter(|n| self.util().is_some() && *n < MIN_SAMPLES)
    }

    fn state(&self) -> State {
        let Some(u) = self.util() else {
            return State::Partial;
        };
        if u < IDLE_MEAN_PCT {
            return State::Idle;
        }
        if u < BUSY_MEAN_PCT {
            return State::Partial;
        }
        match (self.gpu.power_w, self.gpu.identity.power_limit_w) {
            (Some(p), Some(l)) if l > 0.0 && p.mean > 0.0 && p.mean < l * SPIN_POWER_SHARE => {
                State::Spinning
            }
            _ => State::Computing,
        }
    }

    fn waiting(&self) -> bool {
        matches!(self.state(), State::Idle | State::Spinning)
    }

    fn computing(&self) -> bool {
        self.state() == State::Computing
    }

    fn power_text(&self) -> String {
        match (self.gpu.power_w, self.gpu.identity.power_limit_w) {
            (Some(p), Some(l)) => format!(" at {:.0} W of {l:.0}", p.mean),
            _ => String::new(),
        }
    }

    /// Held by a pod, used by a process, or loaded at some point of the window.
    fn in_use(&self) -> bool {
        !self.gpu.held_by.is_empty()
            || self.gpu.processes.is_some_and(|p| p > 0)
            || self.gpu.util_pct.is_some_and(|u| u.max >= 10.0)
    }
}

fn names(gs: &[&GpuInUse<'_>]) -> String {
    let v: Vec<String> = gs.iter().take(4).map(|g| g.label()).collect();
    let more = gs.len().saturating_sub(4);
    if more > 0 {
        format!("{} (+{more})", v.join(", "))
    } else {
        v.join(", ")
    }
}

fn mean_of(gs: &[&GpuInUse<'_>], f: impl Fn(&GpuInUse<'_>) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = gs.iter().filter_map(|g| f(g)).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Every GPU in use is held by a different pod (and the kubelet said who holds them).
fn separate_pods(used: &[&GpuInUse<'_>]) -> bool {
    let held: Vec<&Vec<String>> = used
        .iter()
        .map(|g| &g.gpu.held_by)
        .filter(|h| !h.is_empty())
        .collect();
    if held.len() < 2 {
        return false;
    }
    let mut pods: Vec<&String> = held.iter().flat_map(|h| h.iter()).collect();
    pods.sort();
    pods.dedup();
    pods.len() == held.len()
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn episode(kind: EpisodeKind, g: &GpuInUse<'_>, window: f64, text: String, code: &str) -> Episode {
    Episode {
        kind,
        severity: Severity::Warning,
        // A job's pattern names the node in the text; the index alone would be ambiguous there.
        gpu: g.node.is_none().then_some(g.gpu.identity.index),
        from_s: 0.0,
        to_s: window,
        text,
        code: code.into(),
    }
}

/// The pattern of `gpus` over a window of `window` seconds.
pub fn classify(gpus: &[GpuInUse<'_>], window: f64) -> Pattern {
    let used: Vec<&GpuInUse<'_>> = gpus
        .iter()
        .filter(|g| g.in_use() && g.util().is_some())
        .collect();
    let n = used.len() as u32;
    let mut p = Pattern {
        kind: PatternKind::Mixed,
        summary: String::new(),
        gpus_in_use: n,
        suspects: Vec::new(),
        episodes: Vec::new(),
        left_out: Vec::new(),
    };
    // Too few samples of any GPU and its state is a guess: no pattern is read from a guess.
    let few: Vec<String> = gpus
        .iter()
        .filter_map(|g| g.too_few().map(|k| format!("{} {k}", g.label())))
        .collect();
    if !few.is_empty() {
        p.kind = PatternKind::Unknown;
        let more = few.len().saturating_sub(4);
        let more = if more > 0 {
            format!(" (+{more})")
        } else {
            String::new()
        };
        p.summary = format!(
            "pattern unknown: too few samples to tell idle from a pause between steps ({}{more}; at least \
             {MIN_SAMPLES} per GPU needed): watch longer or at a shorter interval",
            few.iter()
                .take(4)
                .map(|f| format!("{f} sample(s)"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return p;
    }
    if used.is_empty() {
        let unread = gpus.iter().filter(|g| g.util().is_none()).count();
        p.kind = if unread > 0 && unread == gpus.len() {
            PatternKind::Unknown
        } else {
            PatternKind::NothingRunning
        };
        p.summary = if p.kind == PatternKind::Unknown {
            "no GPU's utilization could be read".into()
        } else {
            format!(
                "no GPU in use: {} GPU(s) idle with no process or pod on them",
                gpus.len()
            )
        };
        return p;
    }
    let idle: Vec<&GpuInUse<'_>> = used.iter().copied().filter(|g| g.waiting()).collect();
    let busy: Vec<&GpuInUse<'_>> = used.iter().copied().filter(|g| g.computing()).collect();
    let spinning = idle.iter().filter(|g| g.state() == State::Spinning).count();
    let procs: usize = used.iter().filter_map(|g| g.gpu.processes).sum();
    let holding = if procs > 0 {
        format!(" while {procs} process(es) hold them")
    } else {
        String::new()
    };
    if idle.len() == used.len() {
        p.kind = PatternKind::AllIdle;
        p.summary = if spinning > 0 {
            let w = mean_of(&idle, |g| g.gpu.power_w.map(|p| p.mean)).unwrap_or(0.0);
            format!(
                "no progress: all {n} GPU(s) in use sat pegged at 100% utilization drawing only {w:.0} W{holding}: \
                 kernels spinning, not computing — a hang in a collective (NCCL/RCCL), every rank waiting"
            )
        } else {
            let peak = used
                .iter()
                .filter_map(|g| g.gpu.util_pct.map(|u| u.max))
                .fold(0.0, f64::max);
            format!(
                "no progress: all {n} GPU(s) in use idled the whole window (utilization at most {peak:.0}%){holding}: \
                 the job is stuck outside the GPUs (input, a host-side deadlock, a rank that never launched)"
            )
        };
        p.suspects = used.iter().map(|g| g.label()).collect();
        p.episodes.push(Episode {
            kind: EpisodeKind::NoProgress,
            severity: Severity::Warning,
            gpu: None,
            from_s: 0.0,
            to_s: window,
            text: p.summary.clone(),
            code: "pattern.no_progress".into(),
        });
        return p;
    }
    // One busy and one idle GPU, or GPUs each held by a pod of its own, are separate work, not one job's
    // ranks waiting for each other.
    let one_job = used.len() >= 3 && !separate_pods(&used);
    if one_job && !busy.is_empty() && !idle.is_empty() && busy.len() + idle.len() == used.len() {
        let peers_busy = mean_of(&busy, |g| g.util()).unwrap_or(0.0);
        let how = |gs: &[&GpuInUse<'_>]| {
            if gs.iter().all(|g| g.state() == State::Spinning) {
                let w = mean_of(gs, |g| g.gpu.power_w.map(|p| p.mean)).unwrap_or(0.0);
                format!("spinning at {w:.0} W (pegged utilization, no compute)")
            } else {
                format!("idle ({:.0}%)", mean_of(gs, |g| g.util()).unwrap_or(0.0))
            }
        };
        if busy.len() < idle.len() {
            p.kind = PatternKind::BusyWhileOthersWait;
            p.summary = format!(
                "{} computing{} while the other {} waited, {}: they wait for it — a straggler, or a deadlock \
                 where one rank runs on alone",
                names(&busy),
                busy[0].power_text(),
                idle.len(),
                how(&idle)
            );
            for g in &busy {
                p.episodes.push(episode(
                    EpisodeKind::BusyAmongIdle,
                    g,
                    window,
                    format!(
                        "{} computing{} while its {} peers waited",
                        g.label(),
                        g.power_text(),
                        idle.len()
                    ),
                    "pattern.busy_while_others_wait",
                ));
            }
            p.suspects = busy.iter().map(|g| g.label()).collect();
        } else {
            p.kind = PatternKind::IdleWhileOthersRun;
            p.summary = format!(
                "{} {} while the other {} computed at {peers_busy:.0}%: its rank is not computing (crashed, hung \
                 or starved) — the others will block at the next collective",
                names(&idle),
                how(&idle),
                busy.len()
            );
            for g in &idle {
                p.episodes.push(episode(
                    EpisodeKind::IdleAmongBusy,
                    g,
                    window,
                    format!(
                        "{} {} while its {} peers computed at {peers_busy:.0}%",
                        g.label(),
                        how(&[*g]),
                        busy.len()
                    ),
                    "pattern.idle_while_others_run",
                ));
            }
            p.suspects = idle.iter().map(|g| g.label()).collect();
        }
        return p;
    }
    if busy.len() == used.len() {
        // All busy: one that runs at lower clocks than the rest holds every step back.
        let clocks: Vec<(&&GpuInUse<'_>, f64)> = busy
            .iter()
            .filter_map(|g| g.gpu.sm_mhz.map(|s| (g, s.mean)))
            .collect();
        let mut slower = Vec::new();
        if clocks.len() >= 2 {
            for (g, c) in &clocks {
                let others: Vec<f64> = clocks
                    .iter()
                    .filter(|(o, _)| !std::ptr::eq(**o, **g))
                    .map(|(_, c)| *c)
                    .collect();
                if let Some(m) = median(others)
                    && *c < m * SLOWER_SHARE
                {
                    slower.push((*g, *c, m));
                }
            }
        }
        if !slower.is_empty() && slower.len() * 2 < clocks.len() {
            p.kind = PatternKind::SlowerPeer;
            let (g0, c0, m0) = slower[0];
            let why = g0
                .gpu
                .throttled
                .iter()
                .filter(|t| t.reason.harmful())
                .max_by(|a, b| a.seconds.total_cmp(&b.seconds))
                .map(|t| format!(" (throttled {}: {})", secs(t.seconds), t.reason.label()))
                .unwrap_or_default();
            p.summary = format!(
                "all {n} GPU(s) in use busy, but {} ran at {c0:.0} MHz while its peers ran at {m0:.0} MHz{why}: \
                 every synchronous step waits for it",
                names(&slower.iter().map(|s| *s.0).collect::<Vec<_>>())
            );
            for (g, c, m) in &slower {
                p.episodes.push(episode(
                    EpisodeKind::Slower,
                    g,
                    window,
                    format!(
                        "{} ran at {c:.0} MHz while its peers ran at {m:.0} MHz",
                        g.label()
                    ),
                    "pattern.slower_peer",
                ));
            }
            p.suspects = slower.iter().map(|s| s.0.label()).collect();
            return p;
        }
        let u = mean_of(&busy, |g| g.util()).unwrap_or(0.0);
        p.kind = PatternKind::Progressing;
        p.summary = format!(
            "all {n} GPU(s) in use busy (mean utilization {u:.0}%), none lagging: the work is progressing"
        );
        return p;
    }
    let lo = used
        .iter()
        .filter_map(|g| g.util())
        .fold(f64::INFINITY, f64::min);
    let hi = used.iter().filter_map(|g| g.util()).fold(0.0, f64::max);
    p.summary =
        format!("{n} GPU(s) in use at {lo:.0}–{hi:.0}% mean utilization, in no clear pattern");
    p
}

/// A job's node for [`join_windows`]: its window, or why it has none.
pub struct NodeSpan<'a> {
    pub node: &'a str,
    pub window: Result<&'a Window, &'a str>,
}

/// Which nodes' windows a pattern across nodes may join, and what it must say about the others.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Joined {
    /// Nodes whose windows coincide: the pattern reads their GPUs.
    pub nodes: Vec<String>,
    /// Nodes left out, each as `node: why`.
    pub left_out: Vec<String>,
    /// Where the joined windows coincide only in part: the span they share, said in words.
    pub partial: Option<String>,
}

/// The nodes whose windows one pattern may compare. A node whose probe failed or took no sample is left
/// out by name; so is one whose window does not overlap the others' (a probe that started late sampled
/// another stretch of time: its idle GPUs are not the others' peers waiting). Of windows that do not all
/// overlap, the most that share one instant are joined (ties: the earliest). Joined windows that share
/// less than [`OVERLAP_SHARE`] of the longest are said to overlap in part.
pub fn join_windows(nodes: &[NodeSpan<'_>]) -> Joined {
    let mut j = Joined::default();
    let mut spans: Vec<(&str, f64, f64)> = Vec::new();
    for n in nodes {
        match n.window {
            Err(why) => j
                .left_out
                .push(format!("{}: no window ({})", n.node, bounded(why, 160))),
            Ok(w) if w.samples == 0 => j
                .left_out
                .push(format!("{}: its probe took no sample", n.node)),
            Ok(w) => spans.push((
                n.node,
                w.started_unix,
                w.started_unix + w.covered_s.max(0.0),
            )),
        }
    }
    // The instant most windows share: each window's start is a candidate.
    let covering = |t: f64| spans.iter().filter(|(_, a, b)| *a <= t && t <= *b).count();
    let best = spans
        .iter()
        .map(|(_, a, _)| *a)
        .max_by(|x, y| covering(*x).cmp(&covering(*y)).then(y.total_cmp(x)));
    let Some(at) = best else {
        return j;
    };
    let (inside, apart): (Vec<&(&str, f64, f64)>, Vec<_>) =
        spans.iter().partition(|(_, a, b)| *a <= at && at <= *b);
    let from = inside.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
    let to = inside.iter().map(|s| s.2).fold(f64::INFINITY, f64::min);
    let t0 = spans.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    for (node, a, b) in &apart {
        j.left_out.push(format!(
            "{node}: its window ({}–{} after the first start) does not overlap the others' ({}–{}): another \
             stretch of time, read on its own",
            secs((a - t0).max(0.0)),
            secs((b - t0).max(0.0)),
            secs(from - t0),
            secs(to - t0)
        ));
    }
    let longest = inside.iter().map(|s| s.2 - s.1).fold(0.0, f64::max);
    let shared = (to - from).max(0.0);
    if inside.len() > 1 && longest > 0.0 && shared < longest * OVERLAP_SHARE {
        let why = inside
            .iter()
            .filter(|s| s.1 - t0 >= 0.5)
            .map(|s| format!("{} started {} late", s.0, secs(s.1 - t0)))
            .collect::<Vec<_>>()
            .join(", ");
        j.partial = Some(format!(
            "the nodes' windows coincide for only {} of {}{}: the pattern compares whole windows that \
             only partly overlap",
            secs(shared),
            secs(longest),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({why})")
            }
        ));
    }
    j.nodes = inside.iter().map(|s| s.0.to_string()).collect();
    j
}

/// The pattern of a job's GPUs (`gpus`, each naming its node) over the nodes [`join_windows`] joined:
/// GPUs of nodes left out are not read, and the summary names those nodes and says how far the joined
/// windows coincide.
pub fn classify_joined(gpus: &[GpuInUse<'_>], window: f64, joined: &Joined) -> Pattern {
    let read: Vec<GpuInUse<'_>> = gpus
        .iter()
        .filter(|g| g.node.is_some_and(|n| joined.nodes.iter().any(|j| j == n)))
        .map(|g| GpuInUse::new(g.node, g.gpu))
        .collect();
    let mut p = if joined.nodes.is_empty() {
        Pattern {
            kind: PatternKind::Unknown,
            summary: "pattern unknown: no node's window could be read".into(),
            gpus_in_use: 0,
            suspects: Vec::new(),
            episodes: Vec::new(),
            left_out: Vec::new(),
        }
    } else {
        classify(&read, window)
    };
    if let Some(partial) = &joined.partial {
        p.summary = format!("{}; {partial}", p.summary);
    }
    if !joined.left_out.is_empty() {
        let names: Vec<&str> = joined
            .left_out
            .iter()
            .map(|l| l.split(':').next().unwrap_or_default())
            .collect();
        p.summary = format!(
            "{}; read on {} of {} node(s), without {}",
            p.summary,
            joined.nodes.len(),
            joined.nodes.len() + joined.left_out.len(),
            names.join(", ")
        );
        p.left_out = joined.left_out.clone();
    }
    p
}
