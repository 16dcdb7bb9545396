//! `k8s-gpu-mcp top TARGET`: a live view of a node's GPUs, or of a workload's across its nodes, refreshed as
//! the samples arrive. Each node runs `node-probe watch --stream` in a probe pod (the same request as
//! `watch_gpus`) and its lines reach the screen as they are read; nothing else stands in the cluster.
//!
//! A probe pod lives one window (`--renew-seconds`, 60 s by default) and the next window's pod starts a few
//! seconds before the last one ends, on the same sampling grid: a launcher killed outright leaves pods that
//! end at their own deadline, never later than one window. Quitting any other way (q, Ctrl-C, SIGTERM,
//! SIGHUP) cancels every run, and the runners delete their pods before the process exits.
//! The screen itself is `top_view`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use gpu_diag::command::Request;
use gpu_diag::watch::live;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::top_view::{Key, Update, View};
use crate::cli::TopArgs;
use crate::cluster::WorkloadRef;
use crate::mcp::framework::Env;
use crate::mcp::server::Launcher;
use crate::probe::runner::{Batch, Lines};

/// The tool name the view's probes carry in their labels and the audit.
const TOOL: &str = "top";
/// The next window's probe starts this long before the last one ends (time for its pod to come up).
const OVERLAP: Duration = Duration::from_secs(5);
/// After a window failed, the next try waits this long.
const RETRY: Duration = Duration::from_secs(5);
/// A plain frame waits at most this long for every node's first sample.
const ONCE_WAIT: Duration = Duration::from_secs(60);
/// Nodes viewed at once (each holds a probe pod).
const MAX_NODES: usize = 128;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What to view: its nodes, its pods' ranks, and its title.
struct Target {
    title: String,
    nodes: Vec<String>,
    ranks: BTreeMap<String, String>,
}

/// KIND/NAME as the tools read a workload (the same kinds as `watch` and `diagnose`, the name checked as an
/// object name before it reaches an API path); none: every pod of the namespace.
fn workload_ref(target: Option<&str>) -> Result<WorkloadRef, String> {
    let Some(t) = target else {
        return Ok(WorkloadRef::Selector(String::new()));
    };
    let (kind, name) = t.split_once('/').ok_or_else(|| {
        format!("`{t}` is a node; -n names a workload's namespace (give KIND/NAME)")
    })?;
    let kind = kind.to_ascii_lowercase();
    if !super::people::KINDS.contains(&kind.as_str()) {
        return Err(format!(
            "`{t}`: a workload is KIND/NAME with KIND one of {}",
            super::people::KINDS.join(", ")
        ));
    }
    crate::mcp::framework::target::workload_ref(&[(kind.as_str(), &Some(name.to_string()))])
        .map_err(|e| format!("`{t}`: {e}"))
}

async fn resolve(env: &Env, a: &TopArgs) -> Result<Target, String> {
    let Some(ns) = &a.workload_namespace else {
        let Some(node) = &a.target else {
            return Err(
                "name what to view: a node, or KIND/NAME with -n NAMESPACE, or -n NAMESPACE".into(),
            );
        };
        if node.contains('/') {
            return Err(format!("`{node}` needs its namespace: -n NAMESPACE"));
        }
        return Ok(Target {
            title: node.clone(),
            nodes: vec![node.clone()],
            ranks: BTreeMap::new(),
        });
    };
    let what = workload_ref(a.target.as_deref())?;
    let cluster = env.cluster.clone().ok_or(
        "a workload's pods come from a cluster: local mode views node `local`".to_string(),
    )?;
    let pods = cluster
        .workload_pods(None, ns, &what)
        .await
        .map_err(|e| e.to_string())?;
    // A whole namespace: the pods that asked for accelerators.
    let pods: Vec<_> = match &what {
        WorkloadRef::Selector(s) if s.is_empty() => {
            pods.into_iter().filter(|p| p.gpus_requested > 0).collect()
        }
        _ => pods,
    };
    let label = match &what {
        WorkloadRef::Selector(s) if s.is_empty() => "the accelerator pods".to_string(),
        w => crate::cluster::workload::label(w),
    };
    let mut nodes: Vec<String> = pods.iter().filter_map(|p| p.node.clone()).collect();
    nodes.sort();
    nodes.dedup();
    if nodes.is_empty() {
        return Err(format!(
            "{label} in namespace {ns}: {} pod(s), none on a node: nothing to view",
            pods.len()
        ));
    }
    if nodes.len() > MAX_NODES {
        return Err(format!(
            "{label} runs on {} nodes; top views at most {MAX_NODES} at once (each holds a probe pod)",
            nodes.len()
        ));
    }
    let ranks = pods
        .iter()
        .filter_map(|p| Some((format!("{ns}/{}", p.name), p.rank.clone()?)))
        .collect();
    Ok(Target {
        title: format!("{label} in {ns}"),
        nodes,
        ranks,
    })
}

/// One node's windows, one after another on one sampling grid, each line to `tx`, until `cancel`.
async fn feed(
    env: Arc<Env>,
    node: String,
    interval_ms: u32,
    window_s: u32,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<Update>,
) {
    let mut runs = JoinSet::new();
    let mut seq = 0u64;
    // The first window starts when its probe does (its start line says when); each next one where the
    // last one ends, on the same grid.
    let mut start: Option<u64> = None;
    'windows: loop {
        seq += 1;
        let request = Request::Watch {
            seconds: window_s,
            interval_ms,
            start_at_ms: start,
            gpus: Vec::new(),
        };
        let (sink_tx, sink_node) = (tx.clone(), node.clone());
        let window = seq;
        let began = Arc::new(std::sync::Mutex::new(start));
        let began_here = began.clone();
        let lines = Lines::new(move |l| {
            if let Ok(line) = live::parse_line(l) {
                if let live::Live::Start { started_unix, .. } = &line {
                    *began_here.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some((started_unix * 1000.0) as u64);
                }
                let _ = sink_tx.send(Update::Line {
                    node: sink_node.clone(),
                    window,
                    line,
                });
            }
        });
        let (env2, node2, cancel2, tx2) =
            (env.clone(), node.clone(), cancel.child_token(), tx.clone());
        runs.spawn(async move {
            let r = env2
                .probe_lines(
                    TOOL,
                    &node2,
                    None,
                    &request,
                    crate::mcp::progress::null_sink(),
                    cancel2.clone(),
                    Batch::default(),
                    Some(lines),
                )
                .await;
            match r {
                Ok(res) => {
                    if let gpu_diag::contract::Report::Watch(w) = res.report {
                        let _ = tx2.send(Update::Window {
                            node: node2,
                            started_unix: w.window.started_unix,
                            episodes: w.episodes,
                        });
                    }
                    (window, true)
                }
                Err(e) => {
                    if !cancel2.is_cancelled() {
                        let _ = tx2.send(Update::Failed {
                            node: node2,
                            why: e.to_string(),
                        });
                    }
                    (window, false)
                }
            }
        });
        // Until the start line comes, the window is taken to start about now.
        let started_by = start.unwrap_or_else(now_ms);
        let end_of = move || {
            began
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or(started_by)
                + u64::from(window_s) * 1000
        };
        // Wait for the next window's time, or for this one to fail (the one before ending is no news).
        let failed = loop {
            let next_at = end_of().saturating_sub(OVERLAP.as_millis() as u64);
            let due = tokio::time::Instant::now()
                + Duration::from_millis(next_at.saturating_sub(now_ms()).min(1000));
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {
                    if now_ms() >= next_at {
                        break false;
                    }
                }
                Some(j) = runs.join_next() => {
                    if let Ok((w, false)) = j && w == seq {
                        break true;
                    }
                }
                _ = cancel.cancelled() => break 'windows,
            }
        };
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = cancel.cancelled() => break 'windows,
            }
            start = None;
        } else {
            start = Some(end_of());
        }
    }
    // Every run ends (its pod deleted) before the view exits.
    while runs.join_next().await.is_some() {}
}

pub async fn run(launcher: Launcher, a: TopArgs) -> ExitCode {
    if !(250..=60_000).contains(&a.interval_ms) || a.interval_ms > a.renew_seconds * 1000 {
        eprintln!(
            "k8s-gpu-mcp top: --interval-ms must be between 250 and 60000 and at most --renew-seconds"
        );
        return ExitCode::from(2);
    }
    if !(10..=600).contains(&a.renew_seconds) {
        eprintln!("k8s-gpu-mcp top: --renew-seconds must be between 10 and 600");
        return ExitCode::from(2);
    }
    let env = launcher.env.clone();
    let target = match resolve(&env, &a).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("k8s-gpu-mcp top: {e}");
            return ExitCode::from(2);
        }
    };
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut feeders = JoinSet::new();
    for node in &target.nodes {
        feeders.spawn(feed(
            env.clone(),
            node.clone(),
            a.interval_ms,
            a.renew_seconds,
            cancel.clone(),
            tx.clone(),
        ));
    }
    drop(tx);
    let mut view = View::new(
        target.title.clone(),
        a.interval_ms,
        &target.nodes,
        target.ranks.clone(),
    );
    let screen = !a.once && std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    let aside = screen.then(LogAside::enter).flatten();
    let mut stats = Stats {
        started: Some(std::time::Instant::now()),
        ..Stats::default()
    };
    let code = if screen {
        interactive(&mut view, &mut rx, &mut stats).await
    } else {
        once(&mut view, &mut rx).await
    };
    cancel.cancel();
    while feeders.join_next().await.is_some() {}
    launcher.runner().shutdown().await;
    drop(aside);
    if let Some(p) = &a.stats {
        stats.write(p, target.nodes.len(), view.gpus());
    }
    code
}

/// What a run of the view cost, for `--stats` (docs/performance.md): written when the view ends.
#[derive(Default)]
struct Stats {
    started: Option<std::time::Instant>,
    lines: u64,
    frames: u64,
    /// From a sample's instant on the node to the end of the draw that showed it, in ms.
    to_screen_ms: Vec<f64>,
    draw_ms: Vec<f64>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

impl Stats {
    /// The figures as JSON: the view's own CPU and peak memory (from /proc), the delays' p50/p95/max.
    fn write(mut self, path: &std::path::Path, nodes: usize, gpus: usize) {
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let ticks: f64 = stat
            .rsplit_once(") ")
            .map(|(_, r)| {
                r.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|x| x.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0);
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let rss_kib: f64 = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        let cpu_s = ticks / hz;
        let v = serde_json::json!({
            "nodes": nodes,
            "gpus": gpus,
            "seconds": secs,
            "lines": self.lines,
            "frames": self.frames,
            "cpu_s": cpu_s,
            "cpu_pct": if secs > 0.0 { 100.0 * cpu_s / secs } else { 0.0 },
            "max_rss_mib": rss_kib / 1024.0,
            "sample_to_screen_ms": {
                "p50": pct(&mut self.to_screen_ms, 0.5),
                "p95": pct(&mut self.to_screen_ms, 0.95),
                "max": pct(&mut self.to_screen_ms, 1.0),
            },
            "draw_ms": {"p50": pct(&mut self.draw_ms, 0.5), "p95": pct(&mut self.draw_ms, 0.95)},
        });
        if let Err(e) = std::fs::write(path, v.to_string()) {
            eprintln!("k8s-gpu-mcp top: cannot write {}: {e}", path.display());
        }
    }
}

/// One plain frame once every node has sampled or said why not (or after [`ONCE_WAIT`]).
async fn once(view: &mut View, rx: &mut mpsc::UnboundedReceiver<Update>) -> ExitCode {
    let deadline = tokio::time::sleep(ONCE_WAIT);
    tokio::pin!(deadline);
    let stop = stop_signal();
    tokio::pin!(stop);
    while !view.complete() {
        tokio::select! {
            u = rx.recv() => match u {
                Some(u) => {
                    view.apply(u);
                }
                None => break,
            },
            _ = &mut deadline => break,
            _ = &mut stop => return ExitCode::from(130),
        }
    }
    let width = if std::io::stdout().is_terminal() {
        crossterm::terminal::size().map_or(160, |(w, _)| w.max(80))
    } else {
        160
    };
    print!("{}", view.plain(width));
    ExitCode::SUCCESS
}

/// SIGTERM, SIGHUP (the terminal closed) or SIGINT.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = hup.recv() => "SIGHUP",
        _ = int.recv() => "SIGINT",
    }
}

/// While the screen is drawn the launcher's log goes to a file of its own: on the terminal it would tear the
/// view. Put back when the view ends; the file is named then, or removed when nothing was logged.
struct LogAside {
    saved: std::os::fd::OwnedFd,
    path: std::path::PathBuf,
}

impl LogAside {
    fn enter() -> Option<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = std::env::temp_dir().join(format!(
            "k8s-gpu-mcp-top-{}-{}.log",
            std::process::id(),
            now_ms()
        ));
        // A new file only (never one a link points to), readable by its owner alone.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .ok()?;
        let saved = rustix::io::dup(std::io::stderr()).ok()?;
        rustix::stdio::dup2_stderr(&file).ok()?;
        Some(LogAside { saved, path })
    }
}

impl Drop for LogAside {
    fn drop(&mut self) {
        let _ = rustix::stdio::dup2_stderr(&self.saved);
        // Named where it holds a warning or an error; the info lines of a normal run are not worth a file.
        let worth = std::fs::read_to_string(&self.path).is_ok_and(|t| {
            t.lines()
                .any(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        });
        if worth {
            eprintln!(
                "k8s-gpu-mcp top: the view's log is in {}",
                self.path.display()
            );
        } else {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Puts the terminal back however the view ends (a panic included).
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::EnterAlternateScreen,
            crossterm::cursor::Hide
        )?;
        Ok(Screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = crossterm::execute!(
            std::io::stdout(),
            crossterm::terminal::LeaveAlternateScreen,
            crossterm::cursor::Show
        );
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

async fn interactive(
    view: &mut View,
    rx: &mut mpsc::UnboundedReceiver<Update>,
    stats: &mut Stats,
) -> ExitCode {
    let screen = match Screen::enter() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("k8s-gpu-mcp top: cannot use the terminal ({e}); printing one frame");
            return once(view, rx).await;
        }
    };
    let mut terminal =
        match ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(std::io::stdout())) {
            Ok(t) => t,
            Err(e) => {
                drop(screen);
                eprintln!("k8s-gpu-mcp top: cannot draw on the terminal: {e}");
                return ExitCode::from(1);
            }
        };
    let mut keys = crossterm::event::EventStream::new();
    let stop = stop_signal();
    tokio::pin!(stop);
    // Redraws are coalesced: at most one per frame time, and only when something changed.
    let mut frame = tokio::time::interval(Duration::from_millis(50));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    // The samples taken but not yet drawn (their instants on the node).
    let mut undrawn: Vec<f64> = Vec::new();
    let code = loop {
        tokio::select! {
            u = rx.recv() => match u {
                Some(u) => {
                    undrawn.extend(view.apply(u));
                    // Every update that came together, then one redraw.
                    while let Ok(u) = rx.try_recv() {
                        undrawn.extend(view.apply(u));
                    }
                    dirty = true;
                }
                None => break ExitCode::SUCCESS,
            },
            k = keys.next() => match k {
                Some(Ok(crossterm::event::Event::Key(k)))
                    if k.kind != crossterm::event::KeyEventKind::Release =>
                {
                    match view.key(k) {
                        Key::Quit => break ExitCode::SUCCESS,
                        Key::Redraw => dirty = true,
                        Key::Ignored => {}
                    }
                }
                Some(Ok(crossterm::event::Event::Resize(..))) => {
                    let _ = terminal.autoresize();
                    dirty = true;
                }
                Some(Ok(_)) => {}
                // The terminal is gone (closed, or its input failed): as a quit.
                Some(Err(_)) | None => break ExitCode::SUCCESS,
            },
            s = &mut stop => {
                tracing::info!(signal = s, "stopping the view");
                break ExitCode::SUCCESS;
            }
            _ = frame.tick() => {
                if dirty {
                    let t = std::time::Instant::now();
                    if terminal.draw(|f| view.draw(f)).is_err() {
                        break ExitCode::SUCCESS;
                    }
                    let now = unix_now();
                    stats.frames += 1;
                    stats.draw_ms.push(t.elapsed().as_secs_f64() * 1000.0);
                    stats.lines += undrawn.len() as u64;
                    stats.to_screen_ms.extend(undrawn.drain(..).map(|at| (now - at) * 1000.0));
                    dirty = false;
                }
            }
        }
    };
    drop(terminal);
    drop(screen);
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_read_as_the_tools_read_a_workload() {
        assert!(matches!(workload_ref(Some("job/train")), Ok(WorkloadRef::Job(n)) if n == "train"));
        assert!(matches!(workload_ref(None), Ok(WorkloadRef::Selector(s)) if s.is_empty()));
        assert!(
            workload_ref(Some("deployment/x"))
                .unwrap_err()
                .contains("KIND one of")
        );
        assert!(
            workload_ref(Some("gpu-node-5"))
                .unwrap_err()
                .contains("is a node")
        );
        // A name that is no object name never reaches an API path.
        assert!(workload_ref(Some("job/../../secrets")).is_err());
    }
}
