//! Operator commands: `kill` and `reset`. They gather the facts their preflight needs, let the shared
//! library judge them (`gpu_diag::operator`), and only then act. A refusal is a normal document with
//! `allowed: false`. With a simulated source nothing is ever signalled or run: the report says what would
//! be done (`simulated: true`).
//!
//! Reset runs the host's own `nvidia-smi`, found through the driver roots table (`crate::driver_roots`:
//! the GPU Operator's driver root, the host's distribution, GKE's, Bottlerocket's, Talos's directories)
//! and chrooted into that row's root, with its library directories on `LD_LIBRARY_PATH`: the host's binary is linked against the host's libc and loads the
//! host's `libnvidia-ml`, which must match the kernel module; running it with the probe image's loader
//! would mix libraries. The chroot is done in the child with `chroot(2)` (privileged pods have
//! CAP_SYS_CHROOT), so the probe image needs no `chroot` binary. `--nvidia-smi PATH` runs a given binary
//! as is instead.
//!
//! An AMD GPU is reset with the host's `amd-smi reset -G -g <BDF>` (`gpu_diag::operator::reset::amd`),
//! found under the host root where ROCm installs it and chrooted the same way (it is a Python program
//! that loads the host's `libamd_smi`), bounded by a timeout; `--amd-smi PATH` runs a given one as is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError, Report};
use gpu_diag::facts::{NodeFacts, Reading, Sections};
use gpu_diag::operator::kill::{self, KillOutcome, KillRequest};
use gpu_diag::operator::reset::{self, CommandRun, GpuSelector, ResetOutcome, ResetRequest};
use gpu_diag::operator::{ActionResult, CheckStatus, memory_use};

use crate::options::{GlobalArgs, KernelLogArgs};
use crate::source::{self, SourceSpec};

#[derive(Debug, Args, Clone)]
pub struct KillArgs {
    /// Host pid of the GPU process to end.
    #[arg(long, value_name = "PID", value_parser = clap::value_parser!(u32).range(0..=i32::MAX as i64))]
    pub pid: u32,
    /// Seconds between SIGTERM and SIGKILL.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub grace_seconds: u32,
    /// Run the preflight only.
    #[arg(long)]
    pub dry_run: bool,
    /// A person overrode, in the confirmation, the refusal of a GPU whose holders no source can vouch
    /// for (a source that names a holder still refuses).
    #[arg(long, conflicts_with = "dry_run")]
    pub override_unknown_holders: bool,
    /// The process the person saw in the preflight they approved, `start=<TICKS>;pod=<UID|->` (its start
    /// time, /proc/PID/stat field 22, and its pod; another refuses) and, with
    /// --override-unknown-holders, `;seen=<DIGEST>,...`: the unknowns the override covers.
    #[arg(long, value_name = "SPEC", conflicts_with = "dry_run")]
    pub approved: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ResetArgs {
    /// GPU index, UUID (`GPU-...`) or AMD unique id (16 hex digits), or PCI address (`0000:65:00.0`).
    #[arg(long, value_name = "INDEX|UUID|UNIQUE_ID|BDF")]
    pub gpu: String,
    /// What the person saw in the preflight they approved, `pci=<BDF>;uuid=<ID>;partition=<MODE>` (a GPU
    /// found with another refuses) and, with --override-unknown-holders, `;seen=<DIGEST>,...`: the
    /// unknowns the override covers (an unknown found now that is not among them refuses; none covers
    /// nothing).
    #[arg(long, value_name = "SPEC", conflicts_with = "dry_run")]
    pub approved: Option<String>,
    /// Run the preflight only.
    #[arg(long)]
    pub dry_run: bool,
    /// Run this nvidia-smi as is instead of the host's (chrooted) one.
    #[arg(long, value_name = "PATH")]
    pub nvidia_smi: Option<PathBuf>,
    /// Run this amd-smi as is instead of the host's (chrooted) one (an AMD GPU).
    #[arg(long, value_name = "PATH")]
    pub amd_smi: Option<PathBuf>,
    /// A person overrode, in the confirmation, the refusal of a GPU whose holders no source can vouch
    /// for (a source that names a holder still refuses).
    #[arg(long, conflicts_with = "dry_run")]
    pub override_unknown_holders: bool,
}

const KILL_SECTIONS: Sections = Sections {
    identity: true,
    processes: true,
    telemetry: false,
    topology: false,
    ecc: false,
    kernel_log: false,
    nics: false,
    kubelet: false,
    watch: false,
};

const RESET_SECTIONS: Sections = Sections {
    identity: true,
    processes: true,
    topology: true,
    ecc: true,
    telemetry: false,
    kernel_log: false,
    nics: false,
    kubelet: false,
    watch: false,
};

fn host_root_of(spec: &SourceSpec) -> &Path {
    match spec {
        SourceSpec::Nvml { host_root, .. } | SourceSpec::Simulated { host_root, .. } => host_root,
    }
}

/// Whether signals sent by this process reach the pids of `{host-root}/proc`: true when that procfs
/// names this process by our own pid (same pid namespace, e.g. a hostPID pod or the host itself).
fn pid_namespace_check(root: &Path) -> Result<String, String> {
    let ours = std::process::id();
    let proc_dir = root.join("proc");
    let proc = proc_dir.display();
    match std::fs::read_link(root.join("proc/self")) {
        Ok(t) if t.to_str() == Some(ours.to_string().as_str()) => {
            Ok(format!("{proc} is this process's pid namespace"))
        }
        Ok(t) => Err(format!(
            "{proc}/self is {} but this process is {ours}: the probe does not share the host's pid \
             namespace (hostPID), so a signal would reach a different process",
            t.display()
        )),
        Err(e) => Err(format!(
            "{proc}/self is unreadable ({e}): cannot tell whether signals reach the host's processes"
        )),
    }
}

pub fn run_kill(global: &GlobalArgs, args: &KillArgs) -> Result<ProbeDocument, ProbeError> {
    let (pin, seen) = match args.approved.as_deref().map(kill::parse_approved) {
        None => (None, Vec::new()),
        Some(Ok((pin, seen))) => (Some(pin), seen),
        Some(Err(e)) => {
            return Err(ProbeError::new(
                ErrorKind::Usage,
                format!("invalid --approved: {e}"),
            ));
        }
    };
    let spec = SourceSpec::from_args(global)?;
    let simulated = matches!(spec, SourceSpec::Simulated { .. });
    let root = host_root_of(&spec).to_path_buf();
    let mut facts = source::collect(&spec, KILL_SECTIONS, &KernelLogArgs::default())?;
    // Simulated: the scenario's own /proc facts, unless a fake host root was given to read them from.
    if !simulated || global.host_root.is_some() {
        crate::host::fill_processes(&mut facts, &root, Some(args.pid));
        // Who holds the GPUs the process uses: the same sources as the reset's.
        crate::host::fill_minor_numbers(&mut facts, &root);
        fill_holder_facts(&mut facts, &root);
    }
    global.add_api_facts(&mut facts);
    let req = KillRequest {
        pid: args.pid,
        grace_seconds: args.grace_seconds,
        self_pid: (!simulated).then(std::process::id),
        override_unknown: args.override_unknown_holders,
        pin,
        seen_unknown: args.override_unknown_holders.then_some(seen),
    };
    let mut report = kill::plan(&facts, &req, args.dry_run, simulated);
    if !simulated {
        let ns = pid_namespace_check(&root);
        let check = match &ns {
            Ok(e) => gpu_diag::operator::Check::pass("same_pid_namespace", e.clone()),
            Err(e) => gpu_diag::operator::Check::block("same_pid_namespace", e.clone()),
        };
        if check.status == CheckStatus::Block {
            report.allowed = false;
            report.result = ActionResult::Refused;
            report
                .reasons
                .push(format!("{}: {}", check.check, check.evidence));
        }
        report.checks.push(check);
    }
    if report.allowed && !args.dry_run && !simulated {
        let outcome = execute_kill(&spec, &facts, args);
        report.result = if outcome.exited && outcome.error.is_none() {
            ActionResult::Done
        } else {
            ActionResult::Failed
        };
        report.outcome = Some(outcome);
    }
    Ok(ProbeDocument::success(
        Some(source::meta(&facts, global)),
        Report::Kill(Box::new(report)),
    ))
}

/// The start time of `pid` now (`/proc/<pid>/stat` field 22), `None` where it is gone or unreadable.
fn start_ticks(root: &Path, pid: u32) -> Option<u64> {
    crate::host::read_process(root, pid, None).start_ticks
}

/// Gone, a zombie (its address space and GPU context are already released), or its pid already another
/// process's (`started` is the start time of the one signalled).
fn exited(root: &Path, pid: u32, started: Option<u64>) -> bool {
    let p = crate::host::read_process(root, pid, None);
    match p.state {
        Reading::Ok(s) => s == "Z" || s == "X" || (started.is_some() && p.start_ticks != started),
        Reading::Err(_) => true,
    }
}

/// The process `pid` names now, held by a pidfd (pidfd_open(2)): a signal sent through it reaches that
/// process or none, never one that got the pid after it exited. `Ok(None)`: it is gone already.
fn open_pidfd(pid: u32) -> Result<Option<rustix::fd::OwnedFd>, String> {
    // Defence in depth: the preflight already refuses these, and a non-positive pid would address a
    // process group or every process.
    let Some(p) = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Err(format!("refusing to signal pid {pid}"));
    };
    match rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::SRCH) => Ok(None),
        Err(e) => Err(format!("pidfd_open({pid}): {e}")),
    }
}

fn signal(
    pidfd: &rustix::fd::OwnedFd,
    pid: u32,
    sig: rustix::process::Signal,
) -> Result<bool, String> {
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) => Ok(true),
        // Already gone.
        Err(rustix::io::Errno::SRCH) => Ok(false),
        Err(e) => Err(format!("pidfd_send_signal({pid}, {sig:?}): {e}")),
    }
}

fn wait_exit(
    root: &Path,
    pid: u32,
    started_ticks: Option<u64>,
    limit: Duration,
    started: Instant,
) -> bool {
    let until = Instant::now() + limit;
    loop {
        if exited(root, pid, started_ticks) {
            return true;
        }
        if Instant::now() >= until || started.elapsed() > Duration::from_secs(600) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn execute_kill(spec: &SourceSpec, before: &NodeFacts, args: &KillArgs) -> KillOutcome {
    let root = host_root_of(spec);
    let pid = args.pid;
    let started = Instant::now();
    let mut out = KillOutcome {
        sigterm_sent: false,
        exited_after_sigterm: false,
        sigkill_sent: false,
        exited: false,
        waited_ms: 0,
        memory_before: memory_use(before, Some(pid)),
        memory_after: Vec::new(),
        still_on_gpu: false,
        error: None,
    };
    // The pidfd first, then the check: the process the pidfd holds is the one whose start time is
    // compared with the preflight's, so the signals reach the process judged (and, where bound, the one
    // the person approved) or none.
    let checked = kill::pin_of(before, pid).map(|p| p.start_ticks);
    let pidfd = match open_pidfd(pid) {
        Ok(Some(fd)) => match (checked, start_ticks(root, pid)) {
            (Some(want), Some(now)) if want == now => Some(fd),
            (Some(want), now) => {
                out.error = Some(format!(
                    "pid {pid} is no longer the process the preflight judged (started at tick {want}, now {}): \
                     it exited and the pid was given to another. Nothing was signalled",
                    now.map_or("gone".to_string(), |t| t.to_string())
                ));
                None
            }
            (None, _) => {
                out.error = Some(format!(
                    "the start time of pid {pid} was not read in the preflight, so the process signalled \
                     could not be told to be the one judged. Nothing was signalled"
                ));
                None
            }
        },
        // Gone before it was signalled.
        Ok(None) => {
            out.exited = true;
            None
        }
        Err(e) => {
            out.error = Some(e);
            None
        }
    };
    if let Some(fd) = &pidfd {
        match signal(fd, pid, rustix::process::Signal::TERM) {
            Ok(sent) => out.sigterm_sent = sent,
            Err(e) => out.error = Some(e),
        }
        if out.error.is_none() {
            out.exited_after_sigterm = wait_exit(
                root,
                pid,
                checked,
                Duration::from_secs(args.grace_seconds.into()),
                started,
            );
            out.exited = out.exited_after_sigterm;
            if !out.exited {
                match signal(fd, pid, rustix::process::Signal::KILL) {
                    Ok(sent) => out.sigkill_sent = sent,
                    Err(e) => out.error = Some(e),
                }
                out.exited = wait_exit(root, pid, checked, Duration::from_secs(5), started);
            }
        }
    }
    out.waited_ms = started.elapsed().as_millis() as u64;
    // The driver frees the context as the process exits; NVML shows the memory shortly after.
    match source::collect(spec, KILL_SECTIONS, &KernelLogArgs::default()) {
        Ok(after) => {
            out.memory_after = memory_use(&after, Some(pid));
            out.still_on_gpu = !kill::gpus_of(&after, pid).is_empty();
        }
        Err(e) => {
            out.error.get_or_insert(format!(
                "re-reading NVML after the kill failed: {}",
                e.message
            ));
        }
    }
    out
}

pub fn run_reset(global: &GlobalArgs, args: &ResetArgs) -> Result<ProbeDocument, ProbeError> {
    let gpu = GpuSelector::parse(&args.gpu).ok_or_else(|| {
        ProbeError::new(ErrorKind::Usage, format!("invalid --gpu `{}`", args.gpu))
            .hint(
                "give a GPU index (0, 1, ...), a UUID (GPU-...), an AMD unique id (16 hex digits) or a PCI \
                 address (0000:65:00.0)",
            )
    })?;
    let (pin, seen) = match args.approved.as_deref().map(reset::parse_approved) {
        None => (reset::ResetPin::default(), Vec::new()),
        Some(Ok(x)) => x,
        Some(Err(e)) => {
            return Err(ProbeError::new(
                ErrorKind::Usage,
                format!("invalid --approved: {e}"),
            ));
        }
    };
    let spec = SourceSpec::from_args(global)?;
    let simulated = matches!(spec, SourceSpec::Simulated { .. });
    let root = host_root_of(&spec).to_path_buf();
    // NVML is shut down inside collect, so the probe holds no device node when holders are scanned.
    let mut facts = source::collect(&spec, RESET_SECTIONS, &KernelLogArgs::default())?;
    let self_pid = (!simulated).then(std::process::id);
    if !simulated || global.host_root.is_some() {
        crate::host::fill_processes(&mut facts, &root, None);
        fill_reset_facts(&mut facts, &root, self_pid);
    }
    global.add_api_facts(&mut facts);
    let vendor = gpu.find(&facts).map(|g| g.vendor);
    let amd = vendor == Some(gpu_diag::facts::GpuVendor::Amd);
    let resets = vendor.map(reset::vendor);
    if resets.is_some_and(|r| r.reads_the_scan()) && (!simulated || global.host_root.is_some()) {
        add_holder_processes(&mut facts, &root);
    }
    // A Gaudi or a Neuron device is reset through its driver's sysfs file, no program.
    let sysfs = resets.and_then(|r| r.sysfs());
    let sysfs_file = gpu
        .find(&facts)
        .zip(sysfs)
        .filter(|_| !simulated)
        .map(|(g, v)| find_sysfs_reset(&root, v, g));
    let tool = (!simulated && sysfs.is_none()).then(|| {
        if amd {
            find_amd_smi(&root, args.amd_smi.as_deref())
        } else {
            find_nvidia_smi(
                &root,
                global.driver_root.as_deref(),
                args.nvidia_smi.as_deref(),
            )
        }
    });
    let req = ResetRequest {
        gpu: gpu.clone(),
        self_pid,
        override_unknown: args.override_unknown_holders,
        pin: (!pin.is_empty()).then_some(pin),
        seen_unknown: args.override_unknown_holders.then_some(seen),
        tool: match &sysfs_file {
            Some(f) => Some(
                f.as_ref()
                    .map(|(shown, _)| shown.clone())
                    .map_err(Clone::clone),
            ),
            None => tool
                .as_ref()
                .map(|t| t.as_ref().map(|t| t.display()).map_err(Clone::clone)),
        },
    };
    let mut report = reset::plan(&facts, &req, args.dry_run, simulated);
    if report.allowed
        && !args.dry_run
        && let (Some(Ok((shown, file))), Some(g), Some(v)) = (&sysfs_file, gpu.find(&facts), sysfs)
    {
        let outcome = execute_sysfs_reset(&spec, &root, v, shown, file, g);
        report.result = if outcome.verified {
            ActionResult::Done
        } else {
            ActionResult::Failed
        };
        report.outcome = Some(outcome);
    } else if report.allowed
        && !args.dry_run
        && !simulated
        && let (Some(Ok(tool)), Some(g)) = (tool, gpu.find(&facts))
    {
        // A sysfs reset never gets here: it has no tool, only its driver's file (above).
        let outcome = if amd {
            execute_amd_reset(&spec, &root, &tool, &facts, g)
        } else if !g.vendor.is_nvidia() {
            ResetOutcome {
                commands: Vec::new(),
                verification: Vec::new(),
                verified: false,
                error: Some("no reset for this vendor's devices".into()),
            }
        } else {
            execute_reset(&spec, &root, &tool, g, self_pid)
        };
        report.result = if outcome.verified {
            ActionResult::Done
        } else {
            ActionResult::Failed
        };
        report.outcome = Some(outcome);
    }
    Ok(ProbeDocument::success(
        Some(source::meta(&facts, global)),
        Report::Reset(Box::new(report)),
    ))
}

fn fill_reset_facts(facts: &mut NodeFacts, root: &Path, self_pid: Option<u32>) {
    crate::host::fill_minor_numbers(facts, root);
    // Which pods the kubelet (device plugin or DRA claim) gave the GPU: a reset must not hit a job that holds it.
    fill_holder_facts(facts, root);
    facts.device_holders = Some(crate::host::read_device_holders(
        root,
        self_pid,
        crate::source::is_device_node,
    ));
    facts.services = crate::host::read_services(root);
}

/// `/proc/<pid>` of every device holder not read yet (an AMD holder may hold only a card node, or be
/// listed by KFD alone): its cgroup names its pod in the preflight. The holders are already bounded by
/// the scan.
pub(crate) fn add_holder_processes(facts: &mut NodeFacts, root: &Path) {
    let Some(Reading::Ok(scan)) = &facts.device_holders else {
        return;
    };
    let missing: Vec<u32> = scan
        .holders
        .iter()
        .map(|h| h.pid)
        .filter(|p| !facts.host_processes.iter().any(|h| h.pid == *p))
        .collect();
    for pid in missing {
        facts
            .host_processes
            .push(crate::host::read_process(root, pid, None));
    }
}

/// What the kubelet and the node say of the GPUs' holders (`gpu_diag::operator::holders`).
fn fill_holder_facts(facts: &mut NodeFacts, root: &Path) {
    let kubelet = crate::podresources::kubelet_root(root);
    facts.pod_resources = crate::podresources::collect(root, &kubelet);
    facts.dra = crate::dra::read(root, &kubelet.dir);
}

/// How nvidia-smi is run.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Directory to chroot into first, if any.
    chroot: Option<PathBuf>,
    program: PathBuf,
    /// `LD_LIBRARY_PATH` inside the chroot (GKE's and Talos's driver directories are not on the loader's).
    ld_library_path: Option<String>,
}

impl Tool {
    fn display(&self) -> String {
        match &self.chroot {
            Some(dir) => format!("chroot {} {}", dir.display(), self.program.display()),
            None => self.program.display().to_string(),
        }
    }

    fn run(&self, args: &[String]) -> CommandRun {
        let mut argv: Vec<String> = self.display().split(' ').map(str::to_string).collect();
        argv.extend(args.iter().cloned());
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(std::process::Stdio::null());
        if let Some(l) = &self.ld_library_path {
            cmd.env("LD_LIBRARY_PATH", l);
        }
        if let Some(dir) = self.chroot.clone() {
            crate::hostexec::chroot(&mut cmd, dir);
        }
        match cmd.output() {
            Ok(o) => CommandRun {
                argv,
                exit_code: o.status.code(),
                stdout: cap(&o.stdout),
                stderr: cap(&o.stderr),
            },
            Err(e) => CommandRun {
                argv,
                exit_code: None,
                stdout: String::new(),
                stderr: format!("cannot run: {e}"),
            },
        }
    }
}

impl Tool {
    /// Run it, killed after `limit`: what it printed, capped, and its exit code (`None` when it timed
    /// out or died of a signal).
    fn run_bounded(&self, args: &[String], limit: Duration) -> CommandRun {
        use std::io::Read;
        let mut argv: Vec<String> = self.display().split(' ').map(str::to_string).collect();
        argv.extend(args.iter().cloned());
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(l) = &self.ld_library_path {
            cmd.env("LD_LIBRARY_PATH", l);
        }
        if let Some(dir) = self.chroot.clone() {
            crate::hostexec::chroot(&mut cmd, dir);
        }
        let failed = |argv: Vec<String>, why: String| CommandRun {
            argv,
            exit_code: None,
            stdout: String::new(),
            stderr: why,
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return failed(argv, format!("cannot run: {e}")),
        };
        // Read both pipes on their own threads, bounded, so a chatty tool never blocks on a full pipe.
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                if let Some(p) = pipe {
                    let _ = p.take(MAX_OUTPUT).read_to_end(&mut kept);
                }
                kept
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let until = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) if Instant::now() >= until => break Err(()),
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return failed(argv, format!("waiting for it failed: {e}")),
            }
        };
        match status {
            Ok(st) => CommandRun {
                argv,
                exit_code: st.code(),
                stdout: cap(&out.join().unwrap_or_default()),
                stderr: cap(&err.join().unwrap_or_default()),
            },
            Err(()) => {
                // A reset in progress holds it in the kernel: SIGKILL takes effect when that returns.
                let _ = child.kill();
                failed(
                    argv,
                    format!(
                        "timed out after {} s and was killed; the driver may still be resetting the hive \
                         (read its kernel log)",
                        limit.as_secs()
                    ),
                )
            }
        }
    }
}

/// Output kept of a bounded run, per stream.
const MAX_OUTPUT: u64 = 64 * 1024;

fn cap(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    match t.char_indices().nth(4000) {
        Some((i, _)) => format!("{}...", &t[..i]),
        None => t.to_string(),
    }
}

/// A tool its flag names, run as it is (no chroot).
fn given_tool(flag: &str, p: &Path) -> Result<Tool, String> {
    if p.is_file() {
        Ok(Tool {
            chroot: None,
            program: p.to_path_buf(),
            ld_library_path: None,
        })
    } else {
        Err(format!("{flag} {} is not a file", p.display()))
    }
}

/// `--nvidia-smi` as given; else the first driver root of the table that has one (on the host itself,
/// root `/`, run as is; else chrooted into that root).
pub fn find_nvidia_smi(
    root: &Path,
    driver_root: Option<&Path>,
    explicit: Option<&Path>,
) -> Result<Tool, String> {
    if let Some(p) = explicit {
        return given_tool("--nvidia-smi", p);
    }
    let search = crate::driver_roots::Search::new(root, driver_root);
    let arch = std::env::consts::ARCH;
    match search.program("nvidia-smi", arch) {
        Some(p) => Ok(Tool {
            chroot: p.chroot,
            program: p.program,
            ld_library_path: p.ld_library_path,
        }),
        None => Err(format!(
            "no {}: name the driver root with {} DIR or the binary with --nvidia-smi PATH",
            search.described("nvidia-smi", arch, false),
            crate::driver_roots::DRIVER_ROOT_FLAG
        )),
    }
}

fn execute_reset(
    spec: &SourceSpec,
    root: &Path,
    tool: &Tool,
    before: &gpu_diag::facts::GpuFacts,
    self_pid: Option<u32>,
) -> ResetOutcome {
    let i = before.index.to_string();
    let pm_was_on = reset::persistence_was_on(before);
    let mut commands = Vec::new();
    let mut error = None;
    if pm_was_on {
        let r = tool.run(&["-i".into(), i.clone(), "-pm".into(), "0".into()]);
        if r.exit_code != Some(0) {
            error = Some(format!(
                "disabling persistence mode failed (exit {:?})",
                r.exit_code
            ));
        }
        commands.push(r);
    }
    let mut reset_ok = false;
    if error.is_none() {
        let r = tool.run(&["-r".into(), "-i".into(), i.clone()]);
        reset_ok = r.exit_code == Some(0);
        if !reset_ok {
            error = Some(match r.exit_code {
                Some(15) => {
                    "nvidia-smi exit 15: the GPU fell off the bus; reboot the node".to_string()
                }
                c => format!("nvidia-smi -r failed (exit {c:?})"),
            });
        }
        commands.push(r);
    }
    let verification = match source::collect(spec, RESET_SECTIONS, &KernelLogArgs::default()) {
        Ok(mut after) => {
            fill_reset_facts(&mut after, root, self_pid);
            reset::verify(before, &after)
        }
        Err(e) => vec![gpu_diag::operator::Check::block(
            "gpu_back",
            format!("NVML could not be read after the reset: {}", e.message),
        )],
    };
    if pm_was_on {
        let r = tool.run(&["-i".into(), i, "-pm".into(), "1".into()]);
        if r.exit_code != Some(0) && error.is_none() {
            error = Some(format!(
                "re-enabling persistence mode failed (exit {:?})",
                r.exit_code
            ));
        }
        commands.push(r);
    }
    let verified =
        reset_ok && error.is_none() && verification.iter().all(|c| c.status != CheckStatus::Block);
    ResetOutcome {
        commands,
        verification,
        verified,
        error,
    }
}

/// Where ROCm installs `amd-smi` (its packages link `/opt/rocm/bin/amd-smi`; distributions and pip
/// installs put it on the PATH), searched inside the host root in this order, then `/opt/rocm-<version>/bin`
/// newest first.
const AMD_SMI_DIRS: &[&str] = &["opt/rocm/bin", "usr/bin", "usr/local/bin", "usr/sbin"];

/// `--amd-smi` as given; else the host's, chrooted into the host root (not needed when the root is `/`),
/// with ROCm's library directories on `LD_LIBRARY_PATH` (where `libamd_smi` is).
pub fn find_amd_smi(root: &Path, explicit: Option<&Path>) -> Result<Tool, String> {
    use gpu_diag::operator::reset::amd::{AMD_SMI, INSTALL_HINT};
    if let Some(p) = explicit {
        return given_tool("--amd-smi", p);
    }
    // Through the host-root resolver: `/opt` may be a link (absolute on some hosts) that must resolve on the
    // host's side, not this container's.
    let opt = crate::host::root::path(root, "opt");
    let mut versioned: Vec<String> = std::fs::read_dir(opt)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("rocm-"))
                .take(64)
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by_key(|v| std::cmp::Reverse(version_key(v)));
    let dirs: Vec<String> = AMD_SMI_DIRS
        .iter()
        .map(|d| d.to_string())
        .chain(versioned.iter().map(|v| format!("opt/{v}/bin")))
        .collect();
    for dir in &dirs {
        let rel = format!("{dir}/{AMD_SMI}");
        let found = crate::host::root::resolve(root, &rel).is_some_and(|p| p.is_file());
        if !found {
            continue;
        }
        let mut libs: Vec<String> = Vec::new();
        let prefix = dir.strip_suffix("/bin").filter(|p| p.starts_with("opt/"));
        for lib in prefix
            .into_iter()
            .chain(["opt/rocm"])
            .flat_map(|p| [format!("{p}/lib"), format!("{p}/lib64")])
        {
            let d = format!("/{lib}");
            if crate::host::root::resolve(root, &lib).is_some_and(|p| p.is_dir())
                && !libs.contains(&d)
            {
                libs.push(d);
            }
        }
        return Ok(Tool {
            chroot: (root != Path::new("/")).then(|| root.to_path_buf()),
            program: Path::new("/").join(&rel),
            ld_library_path: (!libs.is_empty()).then(|| libs.join(":")),
        });
    }
    Err(format!(
        "{AMD_SMI} is not available on the node: none in {} under the host root {}. To reset AMD GPUs, \
         {INSTALL_HINT}, or name it with --amd-smi PATH",
        dirs.iter()
            .map(|d| format!("/{d}"))
            .collect::<Vec<_>>()
            .join(", "),
        root.display()
    ))
}

/// `rocm-6.4.1` -> [6, 4, 1], for newest-first order.
fn version_key(name: &str) -> Vec<u32> {
    name.trim_start_matches("rocm-")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Reset an AMD GPU's hive with `amd-smi reset -G -g <BDF>`, then judge the hive as re-read and the
/// kernel's reset lines since just before it.
fn execute_amd_reset(
    spec: &SourceSpec,
    root: &Path,
    tool: &Tool,
    before: &NodeFacts,
    g: &gpu_diag::facts::GpuFacts,
) -> ResetOutcome {
    use gpu_diag::operator::reset::amd;
    let members = amd::hive(before, g).indexes();
    let Some(bdf) = amd::bdf(g) else {
        // The preflight refuses this; defence in depth.
        return ResetOutcome {
            commands: Vec::new(),
            verification: Vec::new(),
            verified: false,
            error: Some("the GPU's PCI address is not known".into()),
        };
    };
    let log_before = crate::kmsg::read_kmsg(root);
    let r = tool.run_bounded(
        &amd::reset_args(bdf),
        Duration::from_secs(amd::RESET_TIMEOUT_SECS),
    );
    // Exit 0 is not a reset: amd-smi prints "Failed to reset GPU" and still exits 0
    // (`gpu_diag::operator::reset::amd::amd_smi_said`). Only its success line for this GPU counts.
    let error = match r.exit_code {
        Some(0) => amd::amd_smi_said(&r.stdout, &r.stderr)
            .err()
            .map(|why| format!("amd-smi reset -G exited 0 but did not reset {bdf}: {why}")),
        Some(c) => Some(format!("amd-smi reset -G failed (exit {c})")),
        None => Some(format!("amd-smi reset -G did not finish: {}", r.stderr)),
    };
    let reset_ok = error.is_none();
    // The driver re-initialises the hive's GPUs after the reset: read again until each is back (a
    // few seconds at most), then judge.
    let mut verification = Vec::new();
    for attempt in 0..AMD_REREADS {
        if attempt > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        verification = match source::collect(spec, RESET_SECTIONS, &KernelLogArgs::default()) {
            // The GPUs alone are judged: no holder scan or kubelet question after the reset.
            Ok(after) => amd::verify(
                before,
                bdf,
                &members,
                &after,
                log_before.ok(),
                &crate::kmsg::read_kmsg(root),
            ),
            Err(e) => vec![gpu_diag::operator::Check::block(
                "gpus_back",
                format!("the GPUs could not be read after the reset: {}", e.message),
            )],
        };
        let back = verification
            .first()
            .is_some_and(|c| c.status != CheckStatus::Block);
        if back || !reset_ok {
            break;
        }
    }
    let mut outcome = ResetOutcome {
        commands: vec![r],
        verification,
        verified: false,
        error,
    };
    outcome.verified = amd::verified(&outcome, reset_ok);
    outcome
}

/// Reads of the hive after its reset, 2 s apart, until every GPU is back.
const AMD_REREADS: u32 = 5;

/// The vendor's reset attribute under the host root, resolved there (a link must not leave the root):
/// its shell form for the answers, and the path written.
fn find_sysfs_reset(
    root: &Path,
    v: &dyn reset::SysfsReset,
    g: &gpu_diag::facts::GpuFacts,
) -> Result<(String, PathBuf), String> {
    let rel = v.file(g)?;
    match crate::host::root::resolve_file(root, &rel) {
        Some(p) => Ok((reset::sysfs_argv(&rel).join(" "), p)),
        None => Err(format!(
            "the driver's /{rel} is not under the host root {}: {}",
            root.display(),
            v.missing()
        )),
    }
}

/// Reset through the driver's sysfs attribute (the write, bounded on its own thread: a driver may reset
/// inside it), then re-read the device until the vendor says the reset is over, and judge.
fn execute_sysfs_reset(
    spec: &SourceSpec,
    root: &Path,
    v: &dyn reset::SysfsReset,
    shown: &str,
    file: &Path,
    before: &gpu_diag::facts::GpuFacts,
) -> ResetOutcome {
    use std::io::Write;
    let secs = v.timeout_secs();
    let log_before = crate::kmsg::read_kmsg(root);
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let (tx, rx) = std::sync::mpsc::channel();
    let path = file.to_path_buf();
    std::thread::spawn(move || {
        // No create, no truncate: a sysfs attribute takes one write.
        let r = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(b"1\n"));
        let _ = tx.send(r);
    });
    let argv: Vec<String> = shown.split(' ').map(str::to_string).collect();
    let (run, error) = match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        Ok(Ok(())) => (
            CommandRun {
                argv,
                exit_code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
            },
            None,
        ),
        Ok(Err(e)) => (
            CommandRun {
                argv,
                exit_code: None,
                stdout: String::new(),
                stderr: format!("the write failed: {e}"),
            },
            Some(format!("writing the device's reset file failed: {e}")),
        ),
        Err(_) => (
            CommandRun {
                argv,
                exit_code: None,
                stdout: String::new(),
                stderr: format!(
                    "the write had not returned after {secs} s; the driver may still be resetting the device"
                ),
            },
            Some(format!("the reset had not returned after {secs} s")),
        ),
    };
    let write_ok = error.is_none();
    let written = Instant::now();
    // Read again, 1 s apart, until the driver says the reset is over.
    let mut after = source::collect(spec, RESET_SECTIONS, &KernelLogArgs::default());
    while write_ok
        && Instant::now() < until
        && !after
            .as_ref()
            .is_ok_and(|a| v.settled(before, a, written.elapsed()))
    {
        std::thread::sleep(Duration::from_secs(1));
        after = source::collect(spec, RESET_SECTIONS, &KernelLogArgs::default());
    }
    let verification = match after {
        Ok(a) => v.verify(before, &a, log_before.ok(), &crate::kmsg::read_kmsg(root)),
        Err(e) => vec![gpu_diag::operator::Check::block(
            "gpu_back",
            format!(
                "the device could not be read after the reset: {}",
                e.message
            ),
        )],
    };
    let mut outcome = ResetOutcome {
        commands: vec![run],
        verification,
        verified: false,
        error,
    };
    outcome.verified = reset::sysfs_verified(&outcome, write_ok);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> Tool {
        Tool {
            chroot: None,
            program: "/bin/sh".into(),
            ld_library_path: None,
        }
    }

    #[test]
    fn a_hung_tool_is_killed_at_its_timeout_and_said() {
        let started = Instant::now();
        let r = sh().run_bounded(&["-c".into(), "sleep 30".into()], Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(r.exit_code, None);
        assert!(r.stderr.starts_with("timed out after 1 s"), "{}", r.stderr);
    }

    #[test]
    fn a_chatty_tool_never_blocks_and_its_output_is_capped() {
        // Megabytes on both pipes: read as it comes, kept bounded.
        let r = sh().run_bounded(
            &[
                "-c".into(),
                "head -c 3000000 /dev/zero | tr '\\0' x; head -c 3000000 /dev/zero | tr '\\0' y >&2; exit 3"
                    .into(),
            ],
            Duration::from_secs(30),
        );
        assert_eq!(r.exit_code, Some(3));
        assert!(
            r.stdout.len() < 20_000 && r.stdout.ends_with("..."),
            "{}",
            r.stdout.len()
        );
        assert!(r.stderr.starts_with("yyy"));
    }

    #[test]
    fn amd_smi_is_found_where_rocm_installs_it_newest_first() {
        let d = tempfile::tempdir().unwrap();
        let put = |rel: &str| {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "#!/bin/sh\n").unwrap();
        };
        let err = find_amd_smi(d.path(), None).err().unwrap();
        assert!(
            err.starts_with("amd-smi is not available on the node"),
            "{err}"
        );
        assert!(err.contains("/opt/rocm/bin, /usr/bin"), "{err}");
        put("opt/rocm-6.4.1/bin/amd-smi");
        put("opt/rocm-6.10.0/bin/amd-smi");
        std::fs::create_dir_all(d.path().join("opt/rocm-6.10.0/lib")).unwrap();
        let t = find_amd_smi(d.path(), None).unwrap();
        assert_eq!(t.program, Path::new("/opt/rocm-6.10.0/bin/amd-smi"));
        assert_eq!(t.chroot.as_deref(), Some(d.path()));
        assert_eq!(t.ld_library_path.as_deref(), Some("/opt/rocm-6.10.0/lib"));
        // /opt/rocm (ROCm's own link) first.
        put("opt/rocm/bin/amd-smi");
        let t = find_amd_smi(d.path(), None).unwrap();
        assert_eq!(t.program, Path::new("/opt/rocm/bin/amd-smi"));
        assert!(find_amd_smi(d.path(), Some(Path::new("/nonexistent/amd-smi"))).is_err());
    }
}
