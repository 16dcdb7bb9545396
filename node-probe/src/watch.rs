//! `node-probe watch`: the node's GPUs sampled every interval for a window, the kernel log followed meanwhile,
//! and the node read once more at the end; `gpu_diag::watch` reads it all as episodes.
//!
//! NVML is loaded once for the window (an `nvmlInit` per sample would cost more than the sample). Sampling
//! runs on its own thread and each sample is awaited with a deadline: a GPU or driver that hangs mid-window
//! ends the window with what came, saying so, instead of holding the probe. With `--start-at-ms`, samples fall
//! on the grid `start + k × interval`, so the nodes of one job sample the same instants.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use gpu_diag::command::Command;
use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError, Report};
use gpu_diag::facts::{NodeFacts, Reading, Sections};
use gpu_diag::options::AnalysisOptions;
use gpu_diag::watch::{self, GpuSample, Tick, WatchInput, live};
use gpu_diag::workload::WorkloadNodeReport;
use rustix::fs::{Mode, OFlags};

use crate::options::{GlobalArgs, KernelLogArgs};
use crate::source::{self, SourceSpec};
use crate::vendor::{Ask, Vendor};

#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// How long to watch, in seconds (1-600).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=600))]
    pub seconds: u32,
    /// Milliseconds between samples (100-60000).
    #[arg(long = "interval-ms", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(100..=60000))]
    pub interval_ms: u32,
    /// Unix time in milliseconds of the first sample (0: now); at most 60 s ahead.
    #[arg(long = "start-at-ms", default_value_t = 0)]
    pub start_at_ms: u64,
    /// GPU indices, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub gpus: String,
    /// Print each interval's samples as a line of JSON as they are taken, the document as the last line.
    #[arg(long)]
    pub stream: bool,
}

/// How far ahead a start may be: the launcher starts a job's probes a few seconds ahead, never minutes.
const MAX_START_AHEAD: Duration = Duration::from_secs(60);

fn usage(m: String) -> ProbeError {
    ProbeError::new(ErrorKind::Usage, m)
}

fn parse_gpus(s: &str) -> Result<Vec<u32>, ProbeError> {
    if s == "all" {
        return Ok(Vec::new());
    }
    let v: Result<Vec<u32>, _> = s.split(',').map(|p| p.trim().parse::<u32>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.len() <= 64 => Ok(v),
        _ => Err(usage(format!(
            "--gpus takes GPU indices separated by commas, or `all` (got `{s}`)"
        ))),
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What samples a node: NVML (and amdgpu's and habanalabs' sysfs beside it), or a simulated node's timeline.
enum Sampler {
    Host {
        nvml: Option<Box<crate::nvml::Session>>,
        host_root: PathBuf,
        sysfs_limit: Duration,
    },
    Simulated(Box<NodeFacts>),
}

const SAMPLE: Sections = Sections {
    identity: true,
    telemetry: true,
    ecc: true,
    watch: true,
    topology: false,
    processes: false,
    kernel_log: false,
    nics: false,
    kubelet: false,
};

impl Sampler {
    fn facts(&self, t_s: f64, processes: bool) -> NodeFacts {
        let sections = Sections {
            processes,
            ..SAMPLE
        };
        match self {
            Sampler::Simulated(base) => watch::script::facts_at(base, t_s),
            Sampler::Host {
                nvml,
                host_root,
                sysfs_limit,
            } => {
                let mut f = match nvml {
                    Some(s) => s.sample(sections),
                    None => NodeFacts::default(),
                };
                // The other vendors' whole sysfs read again per sample (AMD's SMI skipped in a watch),
                // numbered after the GPUs before them, as a one-shot read numbers them.
                for vendor in sysfs_vendors() {
                    let ask = Ask {
                        host_root,
                        driver_root: None,
                        nvml_lib: None,
                        sections,
                        log: &KernelLogArgs::default(),
                        first_index: f.gpus.len() as u32,
                        limit: *sysfs_limit,
                    };
                    if let Ok(Some(share)) = vendor.read(&ask) {
                        f.gpus.extend(share.gpus);
                    }
                }
                f
            }
        }
    }
}

/// Every vendor the probe reads but NVIDIA, whose NVML session the window holds open.
fn sysfs_vendors() -> impl Iterator<Item = &'static dyn Vendor> {
    let nvidia = crate::nvml::Nvidia.name();
    source::VENDORS
        .iter()
        .copied()
        .filter(move |v| v.name() != nvidia)
}

/// Follows the kernel log from the window's start: `/dev/kmsg` opened at its end, read up to EAGAIN at
/// each sample. Records are timed by the sample that read them (within one interval).
struct KernelFollow {
    fd: Option<rustix::fd::OwnedFd>,
    unreadable: Option<String>,
}

impl KernelFollow {
    fn open(host_root: &std::path::Path) -> Self {
        let path = host_root.join("dev/kmsg");
        match rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                // SEEK_END on /dev/kmsg moves past the newest record: only what arrives from now on.
                let _ = rustix::fs::seek(&fd, rustix::fs::SeekFrom::End(0));
                KernelFollow {
                    fd: Some(fd),
                    unreadable: None,
                }
            }
            Err(e) => KernelFollow {
                fd: None,
                unreadable: Some(format!("{}: {e}", path.display())),
            },
        }
    }

    fn drain(&mut self, t_s: f64, out: &mut Vec<(f64, String)>, dropped: &mut u64) {
        let Some(fd) = &self.fd else { return };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match rustix::io::read(fd, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let line = rec.lines().next().unwrap_or("").to_string();
                    if out.len() < watch::MAX_KERNEL_LINES {
                        out.push((t_s, line));
                    } else {
                        *dropped += 1;
                    }
                }
                Err(rustix::io::Errno::PIPE) => *dropped += 1,
                Err(rustix::io::Errno::INTR) => continue,
                // EAGAIN: caught up. Anything else: stop following, keep what came.
                Err(_) => break,
            }
        }
    }
}

enum Msg {
    Tick(Tick, Option<Vec<(u32, usize)>>),
    First(Box<NodeFacts>),
    Missed,
}

fn keep(g: &GpuSample, want: &[u32]) -> bool {
    want.is_empty() || want.contains(&g.index)
}

fn processes_of(f: &NodeFacts) -> Vec<(u32, usize)> {
    f.gpus
        .iter()
        .filter_map(|g| match &g.processes {
            Reading::Ok(p) => Some((g.index, p.len())),
            _ => None,
        })
        .collect()
}

pub fn run(g: &GlobalArgs, a: &WatchArgs) -> Result<ProbeDocument, ProbeError> {
    let want = parse_gpus(&a.gpus)?;
    let interval = Duration::from_millis(u64::from(a.interval_ms));
    let samples = (u64::from(a.seconds) * 1000 / u64::from(a.interval_ms) + 1)
        .min(u64::from(watch::MAX_SAMPLES)) as u32;
    let spec = SourceSpec::from_args(g)?;
    let (sampler, host_root, simulated) = match &spec {
        SourceSpec::Simulated { facts, host_root } => {
            if let Some(t) = &facts.timeline {
                watch::script::validate(t, facts).map_err(|e| {
                    ProbeError::new(
                        ErrorKind::InvalidScenario,
                        format!("the scenario's timeline: {e}"),
                    )
                })?;
            }
            (Sampler::Simulated(facts.clone()), host_root.clone(), true)
        }
        SourceSpec::Nvml {
            host_root,
            driver_root,
            nvml_lib,
            nvml_timeout,
            ..
        } => {
            let search = crate::driver_roots::Search::new(host_root, driver_root.as_deref());
            let nvml = match crate::nvml::Session::open(&search, nvml_lib.as_deref()) {
                Ok(s) => Some(Box::new(s)),
                // A node of another vendor has no NVML: its devices come from sysfs alone.
                Err(e) if sysfs_vendors().any(|v| v.present(host_root) == Some(true)) => {
                    eprintln!(
                        "node-probe: no NVML ({}); the other vendors' devices only",
                        e.message
                    );
                    None
                }
                Err(e) => return Err(e),
            };
            let sampler = Sampler::Host {
                nvml,
                host_root: host_root.clone(),
                sysfs_limit: *nvml_timeout,
            };
            (sampler, host_root.clone(), false)
        }
    };
    // The first sample on the grid: at the start given, or now.
    let now_ms = (now_unix() * 1000.0) as u64;
    // No start, or one further back than the window itself (nothing of the window is left): now.
    let stale = a.start_at_ms + u64::from(a.seconds) * 1000 < now_ms;
    let start_ms = if a.start_at_ms == 0 || stale {
        now_ms
    } else {
        a.start_at_ms
    };
    if start_ms > now_ms + MAX_START_AHEAD.as_millis() as u64 {
        return Err(usage(format!(
            "--start-at-ms is {} s ahead of this node's clock; at most {} s are allowed",
            (start_ms - now_ms) / 1000,
            MAX_START_AHEAD.as_secs()
        )));
    }
    let started_unix = start_ms as f64 / 1000.0;
    let mut follow = (!simulated).then(|| KernelFollow::open(&host_root));
    let timeline = match &sampler {
        Sampler::Simulated(f) => f.timeline.clone(),
        _ => None,
    };
    let interval_ms = a.interval_ms;
    let (tx, rx) = mpsc::sync_channel::<Msg>(4);
    let nvml_limit = match &spec {
        SourceSpec::Nvml { nvml_timeout, .. } => *nvml_timeout,
        SourceSpec::Simulated { .. } => Duration::from_secs(10),
    };
    let worker = std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            // A start already past (this probe came up late): the next instant of the same grid, so this
            // node's samples still fall on the others'; its times stay counted from the common start.
            let late_ms = now_ms.saturating_sub(start_ms);
            let skip = late_ms.div_ceil(u64::from(interval_ms)) as u32;
            let t0 = Instant::now() + Duration::from_millis(start_ms.saturating_sub(now_ms))
                - Duration::from_millis(late_ms);
            for k in skip..skip + samples {
                let due = t0 + interval * k;
                let now = Instant::now();
                if now > due + interval / 2 {
                    // The last read outlasted its interval: this instant is gone.
                    if tx.send(Msg::Missed).is_err() {
                        return;
                    }
                    continue;
                }
                std::thread::sleep(due.saturating_duration_since(now));
                let nominal = f64::from(k) * interval.as_secs_f64();
                let procs = k == skip || k + 1 == skip + samples;
                let facts = sampler.facts(nominal, procs);
                // A simulated node is on its script's clock; a real one on the time its read ended.
                let t_s = if simulated {
                    nominal
                } else {
                    (Instant::now() - t0).as_secs_f64().max(0.0)
                };
                let tick = Tick {
                    t_s,
                    gpus: facts.gpus.iter().map(watch::sample::sample_of).collect(),
                };
                let p = procs.then(|| processes_of(&facts));
                if k == skip && tx.send(Msg::First(Box::new(facts))).is_err() {
                    return;
                }
                if tx.send(Msg::Tick(tick, p)).is_err() {
                    return;
                }
            }
            if let Sampler::Host { nvml: Some(s), .. } = sampler {
                s.close();
            }
        });
    if let Err(e) = worker {
        return Err(ProbeError::new(
            ErrorKind::Internal,
            format!("cannot start the sampling thread: {e}"),
        ));
    }
    let mut input = WatchInput {
        started_unix,
        seconds: a.seconds,
        interval_ms: a.interval_ms,
        ..WatchInput::default()
    };
    let mut first: Option<Box<NodeFacts>> = None;
    let mut processes: Vec<(u32, usize)> = Vec::new();
    let deadline_of = |k: usize| {
        Duration::from_millis(start_ms.saturating_sub(now_ms))
            + interval * (k as u32 + 2)
            + nvml_limit
    };
    let begun = Instant::now();
    let mut hung = false;
    let mut stream = a.stream.then(Stream::default);
    loop {
        let wait =
            deadline_of(input.ticks.len() + input.missed as usize).saturating_sub(begun.elapsed());
        match rx.recv_timeout(wait) {
            Ok(Msg::First(f)) => {
                if let Some(st) = stream.as_mut() {
                    st.emit(&live::Live::Start {
                        started_unix,
                        interval_ms: a.interval_ms,
                        seconds: a.seconds,
                        gpus: f
                            .gpus
                            .iter()
                            .filter(|g| want.is_empty() || want.contains(&g.index))
                            .map(watch::sample::identity_of)
                            .collect(),
                        holders: holders_at_start(g, &spec, &f),
                    });
                }
                first = Some(f);
            }
            Ok(Msg::Missed) => {
                input.missed += 1;
                if let Some(st) = stream.as_mut() {
                    let t_s =
                        f64::from(input.ticks.len() as u32 + input.missed) * interval.as_secs_f64();
                    st.emit(&live::Live::Missed { t_s });
                }
            }
            Ok(Msg::Tick(mut tick, p)) => {
                tick.gpus.retain(|s| keep(s, &want));
                if let Some(f) = follow.as_mut() {
                    f.drain(tick.t_s, &mut input.kernel, &mut input.kernel_dropped);
                }
                if let Some(tl) = &timeline {
                    let prev = input.ticks.last().map_or(-1.0, |t: &Tick| t.t_s);
                    let from = if prev < 0.0 { 0.0 } else { prev + 1e-9 };
                    for (at, line) in watch::script::lines_between(tl, from, tick.t_s + 1e-9) {
                        if input.kernel.len() < watch::MAX_KERNEL_LINES {
                            input.kernel.push((at, line.to_string()));
                        } else {
                            input.kernel_dropped += 1;
                        }
                    }
                }
                for (i, n) in p.unwrap_or_default() {
                    match processes.iter_mut().find(|(j, _)| *j == i) {
                        Some(e) => e.1 = e.1.max(n),
                        None => processes.push((i, n)),
                    }
                }
                if let (Some(st), Some(f)) = (stream.as_mut(), first.as_deref()) {
                    let (events, events_dropped) =
                        live::events_of(&input.kernel[st.kernel_sent..], f);
                    st.kernel_sent = input.kernel.len();
                    st.emit(&live::Live::Sample {
                        t_s: tick.t_s,
                        gpus: tick.gpus.clone(),
                        events,
                        events_dropped,
                    });
                }
                input.ticks.push(tick);
                if stream.as_ref().is_some_and(|st| st.closed) {
                    // Whoever read the stream is gone: nothing will read the rest of the window.
                    eprintln!("node-probe: the stream's reader closed it; the window ends early");
                    input.stopped_early = true;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hung = true;
                break;
            }
        }
    }
    input.processes = processes;
    input.kernel_unreadable = follow.and_then(|f| f.unreadable);
    let Some(first) = first else {
        return Err(ProbeError::new(
            ErrorKind::Internal,
            format!(
                "no sample within {} s: NVML or amdgpu's sysfs did not answer (a GPU or the driver is hung)",
                nvml_limit.as_secs()
            ),
        ));
    };
    let identities: Vec<watch::GpuIdentity> = first
        .gpus
        .iter()
        .filter(|g| want.is_empty() || want.contains(&g.index))
        .map(watch::sample::identity_of)
        .collect();
    for w in &want {
        if !first.gpus.iter().any(|g| g.index == *w) {
            return Err(usage(format!(
                "this node has no GPU {w} (GPUs: {})",
                first
                    .gpus
                    .iter()
                    .map(|g| g.index.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    input.identities = identities;
    if hung {
        eprintln!("node-probe: a sample did not come within its deadline; the window ends early");
        input.stopped_early = true;
    }
    let end = (!hung).then(|| end_of_window(g, &spec, &input, &first));
    let opts = AnalysisOptions::default();
    let report = watch::analyze(&input, &first, end.flatten(), &opts);
    let mut meta_facts = (*first).clone();
    meta_facts.host.now_unix = Reading::Ok(now_unix());
    if let SourceSpec::Simulated { facts, .. } = &spec {
        meta_facts.source = facts.source.clone();
    }
    crate::host::fill(
        &mut meta_facts,
        &host_root,
        Sections {
            identity: true,
            ..Sections::default()
        },
    );
    Ok(ProbeDocument::success(
        Some(source::meta(&meta_facts, g)),
        Report::Watch(Box::new(report)),
    ))
}

/// Who holds each GPU as the window starts: the node's allocation of the first sample's GPUs.
fn holders_at_start(g: &GlobalArgs, spec: &SourceSpec, first: &NodeFacts) -> Vec<live::Holder> {
    let mut f = first.clone();
    crate::podresources::fill(&mut f, spec, g.host_root.is_some());
    g.add_api_facts(&mut f);
    live::holders_of(&gpu_diag::attribution::analyze(
        &f,
        &AnalysisOptions::default(),
    ))
}

/// Streamed lines go to stdout as they are made; a reader that closed the pipe ends the window.
#[derive(Default)]
struct Stream {
    kernel_sent: usize,
    closed: bool,
}

impl Stream {
    fn emit(&mut self, line: &live::Live) {
        use std::io::Write;
        if self.closed {
            return;
        }
        let mut out = std::io::stdout().lock();
        let wrote = out
            .write_all(line.to_line().as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if wrote.is_err() {
            self.closed = true;
        }
    }
}

/// The node at the window's end, as `workload` reads it: its incidents and who holds which GPU.
fn end_of_window(
    g: &GlobalArgs,
    spec: &SourceSpec,
    input: &WatchInput,
    _first: &NodeFacts,
) -> Option<WorkloadNodeReport> {
    let log = KernelLogArgs::default();
    let mut facts = match spec {
        SourceSpec::Simulated { facts, .. } => {
            let end = input.ticks.last().map_or(0.0, |t| t.t_s);
            let mut f = watch::script::facts_at(facts, end);
            // The script's kernel lines are in the node's log by the end of the window.
            if let (Reading::Ok(k), Some(tl)) = (&mut f.kernel_log, &facts.timeline) {
                k.lines.extend(
                    watch::script::lines_between(tl, 0.0, end + 1e-9).map(|(_, l)| l.to_string()),
                );
            }
            f
        }
        _ => match source::collect(spec, Command::Workload.sections(), &log) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("node-probe: the end-of-window read failed: {}", e.message);
                return None;
            }
        },
    };
    crate::podresources::fill(&mut facts, spec, g.host_root.is_some());
    g.add_api_facts(&mut facts);
    match Command::Workload.analyze(&facts, &AnalysisOptions::default()) {
        Report::Workload(w) => Some(*w),
        _ => None,
    }
}
