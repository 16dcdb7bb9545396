//! `node-probe dcgm-diag`: NVIDIA's DCGM diagnostic (`dcgmi diag -r <level|tests> -j -i <gpus>`) on the
//! idle GPUs of a request, with a deadline, and the GPUs' state read before and after.
//!
//! - **Idle first.** The holders are read before anything runs (the kubelet's PodResources with the DRA
//!   facts, NVML's processes, as `allocation` and `reset` read them) and `gpu_diag::dcgm::select::select`
//!   decides: a held GPU is never passed to dcgmi.
//! - **dcgmi from this pod's image.** In the real design the probe pod's base is NVIDIA's DCGM image
//!   (`nvcr.io/nvidia/cloud-native/dcgm`), which carries dcgmi, nvvs and the CUDA plugins; dcgmi without
//!   `--host` starts an embedded host engine in its own process when nothing answers on localhost:5555
//!   (NVIDIA/DCGM `dcgmi/Diag.cpp` v4.6.0). It is looked up on `PATH`, then `/usr/bin/dcgmi`;
//!   `--dcgmi PATH` runs a given one (tests replay outputs with `tests/fake-dcgm/dcgmi`). No dcgmi is a
//!   clear "not run", never a crash.
//! - **The host driver's libraries, no NVIDIA runtime.** The probe pod is not started through the NVIDIA
//!   container runtime, so the image has no `libnvidia-ml.so.1`/`libcuda.so.1`. The engine and nvvs dlopen
//!   them: `LD_LIBRARY_PATH` names a private directory of links to the host driver's `libcuda*` and
//!   `libnvidia-*` files alone, found under the host root through the driver roots table
//!   (`crate::driver_roots`, the same search that finds NVML for the probe itself), never the host's library
//!   directory itself, whose libc would break an image of another glibc. This is what the NVIDIA runtime
//!   does by bind-mounting those files; EKS's agent notes that without them the engine starts but reports
//!   zero GPUs.
//! - **Time and cancellation.** Each level has a deadline (`gpu_diag::dcgm::request::deadline_secs`,
//!   `--timeout-secs` only shortens it). On the deadline, or when node-probe gets SIGTERM or SIGINT (a
//!   cancelled task, a deleted pod), dcgmi gets SIGTERM, which it turns into `dcgmStopDiagnostic` (the
//!   engine stops nvvs: SIGTERM up to 10 times 4 s apart, then SIGKILL; dcgmi waits up to 25 s). After
//!   `--stop-grace-secs` (default 30 s, past dcgmi's 25 s) the whole process group is killed; it is
//!   killed on every path once dcgmi has ended, so nothing keeps loading a GPU after the answer.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError, Report};
use gpu_diag::dcgm::limits::MAX_OUTPUT_BYTES;
use gpu_diag::dcgm::request;
use gpu_diag::dcgm::{self, DiagInput, Execution, StopCause, select, state};
use gpu_diag::facts::{NodeFacts, Sections};
use gpu_diag::options::AnalysisOptions;

use crate::options::{GlobalArgs, KernelLogArgs};
use crate::source::{self, SourceSpec};

#[derive(Debug, Args, Clone)]
pub struct DcgmDiagArgs {
    /// DCGM level: 1 (software checks, seconds), 2 (+ pcie, memory; minutes), 3 (+ stress; ~15 min).
    #[arg(
        long,
        value_name = "1|2|3",
        required_unless_present = "tests",
        conflicts_with = "tests"
    )]
    pub level: Option<String>,
    /// Named tests instead of a level, comma-separated (software, pcie, memory, diagnostic, ...).
    #[arg(long, value_name = "TEST,...")]
    pub tests: Option<String>,
    /// The GPUs to test, comma-separated indices or GPU- UUIDs (`all`: every GPU, level 1 only); held GPUs
    /// are left out.
    #[arg(long, value_name = "INDEX|UUID,...")]
    pub gpus: String,
    /// Run this dcgmi instead of the one on PATH or /usr/bin/dcgmi.
    #[arg(long, value_name = "PATH")]
    pub dcgmi: Option<PathBuf>,
    /// Stop the run after this many seconds (at most the level's deadline: 120, 900, 2700).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=2700))]
    pub timeout_secs: Option<u64>,
    /// Run on the node's own host engine at ADDRESS:PORT (an IP address; `,heartbeat` for DCGM 4.5+, which
    /// stops the run if this probe goes away) instead of an engine embedded in this process's dcgmi.
    #[arg(long, value_name = "ADDRESS:PORT[,heartbeat]")]
    pub engine: Option<String>,
    /// Seconds between dcgmi's SIGTERM (its orderly stop) and the kill of its process group.
    #[arg(long, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    pub stop_grace_secs: u64,
    /// Write this process's PID and start time here while it runs (removed at its end), for the launcher's
    /// orderly stop of a cancelled run: SIGTERM to this process, which stops dcgmi through DCGM's own stop.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
}

/// The `--pid-file` of a run, removed when the run ends if it is still this run's (not after a SIGKILL: the
/// file then names a process that is gone, or one of another start time, which the stop tells apart).
pub(crate) struct PidFile {
    path: PathBuf,
    line: String,
}

impl PidFile {
    pub(crate) fn write(path: &Path) -> std::io::Result<PidFile> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let start = start_time(&stat)
            .ok_or_else(|| std::io::Error::other("no start time in /proc/self/stat"))?;
        let _ = std::fs::remove_file(path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let line = format!("{} {start}\n", std::process::id());
        f.write_all(line.as_bytes())?;
        Ok(PidFile {
            path: path.to_path_buf(),
            line,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Another run on this host (local mode) may have written it since: leave that one's.
        if std::fs::read_to_string(&self.path).is_ok_and(|l| l == self.line) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (the start time in clock ticks since boot): after the command, which is
/// in parentheses and may hold spaces, so counted from the last `)`.
fn start_time(stat: &str) -> Option<&str> {
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)
}

pub(crate) const BEFORE: Sections = Sections {
    identity: true,
    processes: true,
    ecc: true,
    topology: false,
    telemetry: false,
    kernel_log: false,
    nics: false,
    kubelet: false,
    watch: false,
};

const AFTER: Sections = Sections {
    identity: true,
    processes: false,
    ecc: true,
    topology: false,
    telemetry: false,
    kernel_log: true,
    nics: false,
    kubelet: false,
    watch: false,
};

/// The signal node-probe got (0: none), set by the handler.
static GOT_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    GOT_SIGNAL.store(sig, Ordering::SeqCst);
}

/// SIGTERM and SIGINT set [`GOT_SIGNAL`] instead of ending node-probe, so the run is stopped in order.
fn catch_stop_signals() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores into an atomic, which is async-signal-safe; the sigaction
        // struct is zeroed and then filled as sigaction(2) documents.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn usage(flag: &str, e: impl std::fmt::Display) -> ProbeError {
    ProbeError::new(ErrorKind::Usage, format!("invalid {flag}: {e}"))
        .hint("node-probe dcgm-diag --level 1|2|3 (or --tests pcie,memory) --gpus 0,1")
}

pub(crate) fn host_root_of(spec: &SourceSpec) -> &Path {
    match spec {
        SourceSpec::Nvml { host_root, .. } | SourceSpec::Simulated { host_root, .. } => host_root,
    }
}

/// The kubelet's and the DRA driver's word on who holds which GPU (as `reset` reads it).
pub(crate) fn fill_holders(facts: &mut NodeFacts, root: &Path) {
    crate::host::fill_minor_numbers(facts, root);
    let kubelet = crate::podresources::kubelet_root(root);
    facts.pod_resources = crate::podresources::collect(root, &kubelet);
    facts.dra = crate::dra::read(root, &kubelet.dir);
}

/// dcgmi: the given path, else on `PATH`, else `/usr/bin/dcgmi`.
fn find_dcgmi(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return p
            .is_file()
            .then(|| std::path::absolute(p).unwrap_or(p.to_path_buf()));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("dcgmi"))
        .chain(std::iter::once(PathBuf::from("/usr/bin/dcgmi")))
        .find(|p| p.is_file())
}

/// The host driver's libraries dcgmi and nvvs load (`libcuda.so.1`, `libnvidia-ml.so.1` and the
/// `libcuda*`/`libnvidia-*` files beside them, which libcuda opens itself: the JIT, nvvm, gpucomp), as paths
/// this process can open (under the host root), each resolved to its file inside the host root.
fn driver_libraries(root: &Path, driver_root: Option<&Path>) -> Vec<(String, PathBuf)> {
    let search = crate::driver_roots::Search::new(root, driver_root);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for lib in ["libcuda.so.1", "libnvidia-ml.so.1"] {
        if let Some((p, _)) = search.libraries(lib, std::env::consts::ARCH).first()
            && let Some(d) = p.parent()
            && !dirs.iter().any(|x| x == d)
        {
            dirs.push(d.to_path_buf());
        }
    }
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for d in &dirs {
        let Ok(entries) = std::fs::read_dir(d) else {
            continue;
        };
        // Bounded: a driver directory holds a few dozen of these; a hostile tree cannot make this walk long.
        for e in entries.flatten().take(MAX_DIR_ENTRIES) {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_driver_library(&name) || out.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let Ok(rel) = e.path().strip_prefix(root).map(Path::to_path_buf) else {
                continue;
            };
            if let Some(file) = crate::host::root::resolve_file(root, Path::new("/").join(rel)) {
                out.push((name, file));
            }
            if out.len() >= MAX_LIBRARY_LINKS {
                return out;
            }
        }
    }
    out
}

const MAX_DIR_ENTRIES: usize = 20_000;
const MAX_LIBRARY_LINKS: usize = 256;

/// A driver library dcgmi may load: never the C library or anything else of the host's system directory,
/// which on Ubuntu and Debian hosts is the same directory as the driver's.
fn is_driver_library(name: &str) -> bool {
    (name.starts_with("libcuda") || name.starts_with("libnvidia-"))
        && name.contains(".so")
        && !name.contains('/')
}

/// A directory of links to `libs` only, for dcgmi's `LD_LIBRARY_PATH`: the host's whole library directory
/// would also hand dcgmi the host's libc and libstdc++, which break a DCGM image of another glibc (the
/// loader of one glibc cannot run another's libc). The NVIDIA container runtime mounts these files alone
/// for the same reason.
fn link_libraries(dir: &Path, libs: &[(String, PathBuf)]) -> std::io::Result<Option<PathBuf>> {
    if libs.is_empty() {
        return Ok(None);
    }
    let lib = dir.join("lib");
    std::fs::DirBuilder::new().mode(0o700).create(&lib)?;
    for (name, file) in libs {
        std::os::unix::fs::symlink(file, lib.join(name))?;
    }
    Ok(Some(lib))
}

pub(crate) fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub fn run(global: &GlobalArgs, args: &DcgmDiagArgs) -> Result<ProbeDocument, ProbeError> {
    let run = match (&args.level, &args.tests) {
        (Some(l), _) => request::parse_level(l).map_err(|e| usage("--level", e))?,
        (None, Some(t)) => request::parse_tests(t).map_err(|e| usage("--tests", e))?,
        (None, None) => return Err(usage("--level", "give --level or --tests")),
    };
    let requested = request::parse_gpus(&args.gpus).map_err(|e| usage("--gpus", e))?;
    request::check_all(&run, &requested).map_err(|e| usage("--gpus", e))?;
    let engine = args
        .engine
        .as_deref()
        .map(request::Engine::parse)
        .transpose()
        .map_err(|e| usage("--engine", e))?;
    let deadline = request::deadline_secs(run.level());
    let deadline = args.timeout_secs.map_or(deadline, |t| t.min(deadline));
    let _pid_file = match &args.pid_file {
        Some(p) => Some(PidFile::write(p).map_err(|e| {
            ProbeError::new(ErrorKind::Io, format!("--pid-file {}: {e}", p.display()))
        })?),
        None => None,
    };
    let spec = SourceSpec::from_args(global)?;
    let simulated = matches!(spec, SourceSpec::Simulated { .. });
    let root = host_root_of(&spec).to_path_buf();

    let mut before_facts = source::collect(&spec, BEFORE, &KernelLogArgs::default())?;
    if !simulated || global.host_root.is_some() {
        fill_holders(&mut before_facts, &root);
    }
    global.add_api_facts(&mut before_facts);
    let selection = select::select(&before_facts, &requested);
    let before = state::snapshot(&before_facts, &selection.to_test);

    let dcgmi = find_dcgmi(args.dcgmi.as_deref());
    let not_started = if let Some(why) = selection.nothing_to_test() {
        Some(why)
    } else if simulated && args.dcgmi.is_none() {
        Some(
            "a simulated node has no DCGM to run; give --dcgmi PATH to replay a dcgmi (tests/fake-dcgm)"
                .into(),
        )
    } else if dcgmi.is_none() {
        Some(match &args.dcgmi {
            Some(p) => format!("--dcgmi {} is not a file", p.display()),
            None => "this pod's image has no dcgmi (not on PATH, no /usr/bin/dcgmi): the launcher runs the \
                     diagnostic in NVIDIA's DCGM image (nvcr.io/nvidia/cloud-native/dcgm) where the node lists \
                     it by digest, else the one its --dcgm-image names (by digest; for an air-gapped node a \
                     mirror of it, with --trust-image), with copy delivery (not --probe-image alone)"
                .into(),
        })
    } else {
        None
    };

    // A simulated node keeps its own clock (its kernel log and collection time are the scenario's), so a
    // replay answers the same every time; a real one, this host's.
    let started_unix = match (simulated, before_facts.host.now_unix.get()) {
        (true, Some(t)) => t,
        _ => now_unix(),
    };
    let execution = match (&not_started, &dcgmi) {
        (None, Some(dcgmi)) => {
            let libs = if simulated {
                Vec::new()
            } else {
                driver_libraries(&root, global.driver_root.as_deref())
            };
            Some(execute(
                dcgmi,
                &request::dcgmi_args(&run, &selection.to_test, engine.as_ref()),
                &libs,
                Duration::from_secs(deadline),
                Duration::from_secs(args.stop_grace_secs),
            ))
        }
        _ => None,
    };
    let (after, xids, xids_not_listed, incidents_after) = if execution.is_some() {
        match source::collect(&spec, AFTER, &KernelLogArgs::default()) {
            Ok(f) => {
                let (x, more) = state::xids_during(&f, started_unix, &selection.to_test);
                let health = gpu_diag::analysis::health::analyze(&f, &AnalysisOptions::default());
                (
                    state::snapshot(&f, &selection.to_test),
                    x,
                    more,
                    health.incidents,
                )
            }
            // NVML gone after the run: every tested GPU reads as lost.
            Err(_) => (vec![], vec![], 0, Default::default()),
        }
    } else {
        (before.clone(), vec![], 0, Default::default())
    };
    let mut report = dcgm::analyze(
        &before_facts,
        &DiagInput {
            run: &run,
            requested: &requested,
            selection: &selection,
            execution: execution.as_ref(),
            not_started,
            before,
            after,
            xids,
            xids_not_listed,
            started_at: gpu_diag::kernel_log::time::rfc3339(started_unix),
            incidents_after,
        },
    );
    // dcgmi's own words, for the whole-output resource (bounded; the parse above is the answer).
    report.raw_output = execution
        .as_ref()
        .filter(|e| !e.stdout.is_empty())
        .map(|e| {
            gpu_diag::dcgm::limits::clip_bytes(&e.stdout, gpu_diag::dcgm::limits::MAX_RAW_BYTES)
        });
    Ok(ProbeDocument::success(
        Some(source::meta(&before_facts, global)),
        Report::DcgmDiag(Box::new(report)),
    ))
}

const PRIVATE_PREFIX: &str = "k8s-gpu-mcp-dcgm.";

/// Remove the working directories of earlier runs whose node-probe is gone (one killed with SIGKILL could
/// not remove its own). Only plain directories (never a link) named as [`private_dir`] names them, whose
/// process no longer exists in this PID namespace.
fn sweep_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PRIVATE_PREFIX))
            .and_then(|rest| rest.split('.').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.file_type().is_dir());
        if is_dir && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A private working directory: dcgmi writes `dcgmi.log`, the embedded engine `nvvs.log`, and level 1
/// checks that the working directory is writable.
pub(crate) fn private_dir() -> std::io::Result<PathBuf> {
    sweep_stale(&std::env::temp_dir());
    let dir = std::env::temp_dir().join(format!(
        "{PRIVATE_PREFIX}{}.{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

/// Read up to `cap` bytes of `r` and drain the rest (so the child never blocks on a full pipe).
fn read_capped(mut r: impl Read, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 16 << 10];
    let mut cut = false;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                if n > room {
                    cut = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, cut)
}

fn signal_pid(pid: i32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

fn kill_group(pgid: i32) {
    if let Some(p) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
    }
}

/// Run dcgmi in its own process group under `deadline`, forwarding a stop; the group is killed on every
/// path once it ends.
pub(crate) fn execute(
    dcgmi: &Path,
    argv: &[String],
    libs: &[(String, PathBuf)],
    deadline: Duration,
    grace: Duration,
) -> Execution {
    let mut ex = Execution {
        dcgmi: dcgmi.display().to_string(),
        argv: argv.to_vec(),
        deadline_secs: deadline.as_secs(),
        ..Execution::default()
    };
    catch_stop_signals();
    let dir = match private_dir() {
        Ok(d) => d,
        Err(e) => {
            ex.spawn_error = Some(format!("cannot make a private working directory: {e}"));
            return ex;
        }
    };
    let mut cmd = Command::new(dcgmi);
    cmd.args(argv)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: the kill reaches the embedded engine's nvvs and the plugins it started.
        .process_group(0);
    // If node-probe itself dies without stopping it (SIGKILL from a runner), dcgmi still gets SIGTERM, its
    // orderly stop: its own group would otherwise outlive the probe and keep loading the GPUs.
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    match link_libraries(&dir, libs) {
        Ok(Some(lib)) => {
            let ld = lib.display().to_string();
            let joined = match std::env::var("LD_LIBRARY_PATH") {
                Ok(old) if !old.is_empty() => format!("{ld}:{old}"),
                _ => ld,
            };
            cmd.env("LD_LIBRARY_PATH", joined);
        }
        Ok(None) => {}
        Err(e) => {
            ex.spawn_error = Some(format!(
                "cannot link the host driver's libraries for dcgmi: {e}"
            ));
            let _ = std::fs::remove_dir_all(&dir);
            return ex;
        }
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            ex.spawn_error = Some(format!("cannot run {}: {e}", dcgmi.display()));
            let _ = std::fs::remove_dir_all(&dir);
            return ex;
        }
    };
    let pid = child.id() as i32;
    let out = child
        .stdout
        .take()
        .map(|s| std::thread::spawn(move || read_capped(s, MAX_OUTPUT_BYTES)));
    let err = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || read_capped(s, 64 << 10)));
    let mut stop_sent: Option<Instant> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if stop_sent.is_none() {
            let cause = if GOT_SIGNAL.load(Ordering::SeqCst) != 0 {
                Some(StopCause::Cancelled)
            } else if started.elapsed() >= deadline {
                Some(StopCause::Deadline)
            } else {
                None
            };
            if let Some(c) = cause {
                ex.stopped_by = Some(c);
                // dcgmi's own handler turns this into dcgmStopDiagnostic.
                signal_pid(pid, rustix::process::Signal::TERM);
                stop_sent = Some(Instant::now());
            }
        } else if stop_sent.is_some_and(|t| t.elapsed() >= grace) && !ex.killed {
            ex.killed = true;
            kill_group(pid);
        } else if ex.killed
            && stop_sent.is_some_and(|t| t.elapsed() >= grace + Duration::from_secs(5))
        {
            // Stuck in the kernel (a hung GPU): leave it, and say so through `killed` without a status.
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever dcgmi left in its group (an nvvs, a plugin) goes too.
    kill_group(pid);
    ex.elapsed_ms = started.elapsed().as_millis() as u64;
    if let Some(st) = status {
        ex.exit_status = st.code().map(|c| c as u8);
        ex.signal = st.signal();
    }
    if let Some(h) = out
        && let Ok((bytes, cut)) = h.join()
    {
        ex.stdout = String::from_utf8_lossy(&bytes).into_owned();
        ex.stdout_cut = cut;
    }
    if let Some(h) = err
        && let Ok((bytes, _)) = h.join()
    {
        ex.stderr_tail = gpu_diag::evidence::tail(String::from_utf8_lossy(&bytes).trim_end(), 1000);
    }
    let _ = std::fs::remove_dir_all(&dir);
    ex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_capped_keeps_the_head_and_drains_the_rest() {
        let data = vec![b'x'; 100_000];
        let (kept, cut) = read_capped(&data[..], 1000);
        assert_eq!((kept.len(), cut), (1000, true));
        let (kept, cut) = read_capped(&b"abc"[..], 1000);
        assert_eq!((kept.as_slice(), cut), (&b"abc"[..], false));
    }

    #[test]
    fn a_killed_runs_directory_is_swept_and_nothing_else() {
        let t = tempfile::tempdir().unwrap();
        // pid 0x7fffffff is above any pid_max (4194304), so no such process exists.
        let stale = t.path().join(format!("{PRIVATE_PREFIX}2147483647.1f"));
        let mine = t
            .path()
            .join(format!("{PRIVATE_PREFIX}{}.2", std::process::id()));
        let other = t.path().join("k8s-gpu-mcp-dcgm-not-ours");
        for d in [&stale, &mine, &other] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(stale.join("dcgmi.log"), "x").unwrap();
        let target = t.path().join("kept");
        std::fs::create_dir(&target).unwrap();
        let link = t.path().join(format!("{PRIVATE_PREFIX}2147483646.3"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        sweep_stale(t.path());
        assert!(!stale.exists());
        assert!(mine.exists() && other.exists() && target.exists() && link.exists());
    }

    /// An Ubuntu-style host: the driver's libraries beside libc and libstdc++ in one directory, libcuda's
    /// soname a relative link and libnvidia-ml's an absolute one (which must resolve inside the host root).
    /// Only the driver's files are linked, each to its file inside the host root.
    #[test]
    fn only_the_drivers_libraries_reach_dcgmi() {
        let root = tempfile::tempdir().unwrap();
        let lib = root.path().join("usr/lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        for f in [
            "libc.so.6",
            "libstdc++.so.6",
            "libcuda.so.580.95.05",
            "libnvidia-ml.so.580.95.05",
            "libnvidia-ptxjitcompiler.so.580.95.05",
        ] {
            std::fs::write(lib.join(f), f).unwrap();
        }
        std::os::unix::fs::symlink("libcuda.so.580.95.05", lib.join("libcuda.so.1")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.95.05",
            lib.join("libnvidia-ml.so.1"),
        )
        .unwrap();
        // A link that leaves the driver's names: never followed into the list.
        std::os::unix::fs::symlink("/etc/shadow", lib.join("libnvidia-evil.so.1")).unwrap();
        let libs = driver_libraries(root.path(), None);
        let mut names: Vec<&str> = libs.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "libcuda.so.1",
                "libcuda.so.580.95.05",
                "libnvidia-ml.so.1",
                "libnvidia-ml.so.580.95.05",
                "libnvidia-ptxjitcompiler.so.580.95.05"
            ]
        );
        for (name, file) in &libs {
            assert!(
                file.starts_with(root.path()),
                "{name} -> {}",
                file.display()
            );
        }
        let work = tempfile::tempdir().unwrap();
        let dir = link_libraries(work.path(), &libs).unwrap().unwrap();
        let ml = std::fs::read_to_string(dir.join("libnvidia-ml.so.1")).unwrap();
        assert_eq!(ml, "libnvidia-ml.so.580.95.05");
        assert!(!dir.join("libc.so.6").exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 5);
        assert_eq!(link_libraries(work.path(), &[]).unwrap(), None);
    }

    #[test]
    fn the_start_time_is_read_past_a_command_with_spaces() {
        let stat = "4242 (node probe) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(start_time(stat), Some("987654"));
        assert_eq!(start_time("4242 (short"), None);
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(start_time(&own).is_some_and(|t| t.parse::<u64>().is_ok()));
    }

    #[test]
    fn dcgmi_is_found_on_the_path_or_given() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("dcgmi");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        assert_eq!(find_dcgmi(Some(&f)), Some(f.clone()));
        assert_eq!(find_dcgmi(Some(&d.path().join("nope"))), None);
    }
}
