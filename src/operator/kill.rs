//! `kill`: end one process that uses a GPU on this node. Preflight: the pid is on a GPU of this node
//! according to NVML, it is not pid 1, not the probe, not a kernel thread, and not already a zombie, and
//! who holds the GPUs it uses is known (`super::holders`; a person may override an unknown). Plan:
//! SIGTERM, wait up to the grace period, SIGKILL if it still runs.

/// Its `node-probe` subcommand.
pub const COMMAND: &str = "kill";

use serde::{Deserialize, Serialize};

use super::{
    ActionResult, Check, CheckStatus, GpuMemoryUse, PlanStep, Preflight, gpu_name, host_process,
    process_label,
};
use crate::analysis::{error_name, mib};
use crate::facts::{FieldErrorKind, NodeFacts, Reading};

/// Linux `PF_KTHREAD` in `task->flags`: the task is a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// Longest grace period accepted: a stuck job should not hold a probe pod for long.
pub const MAX_GRACE_SECONDS: u32 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillRequest {
    pub pid: u32,
    pub grace_seconds: u32,
    /// The probe's own pid, when it shares the host's pid namespace (never killed).
    pub self_pid: Option<u32>,
    /// A person overrode, in the confirmation, the block of a GPU whose holders no source can vouch for
    /// (`--override-unknown-holders`).
    pub override_unknown: bool,
    /// The process as the preflight the person approved showed it (`--approved start=..;pod=..`): another
    /// start time (the pid reused) or another pod refuses.
    pub pin: Option<ProcessPin>,
    /// With `override_unknown`: the digests of the unknowns the person saw (`--approved ...;seen=`), as
    /// for a reset (`super::override_as_confirmed`).
    pub seen_unknown: Option<Vec<String>>,
}

pub use super::reset::{NO_POD, ProcessPin};

/// `--approved`'s value back: the process and the digests of the unknowns the person saw. Both `start`
/// and `pod` are needed: a half pin would bind half.
pub fn parse_approved(text: &str) -> Result<(ProcessPin, Vec<String>), String> {
    let (mut start, mut pod, mut seen) = (None, None, Vec::new());
    for field in text.split(';').filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("`{field}` is not key=value"))?;
        match k {
            "start" => {
                start = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("start `{v}` is not a number of clock ticks"))?,
                )
            }
            "pod" if v == NO_POD => pod = Some(None),
            "pod" if crate::attribution::cgroup::pod_uid_like(v) => pod = Some(Some(v.to_string())),
            "pod" => return Err(format!("pod `{v}` is not a pod UID")),
            "seen" => seen.extend(v.split(',').filter(|d| !d.is_empty()).map(str::to_string)),
            other => return Err(format!("unknown field `{other}`")),
        }
    }
    match (start, pod) {
        (Some(start_ticks), Some(pod)) => Ok((ProcessPin { start_ticks, pod }, seen)),
        _ => Err("give both start=<ticks> and pod=<uid|->".into()),
    }
}

/// The process `pid` as read now: its start time and pod, `None` where the start time was not read.
pub fn pin_of(facts: &NodeFacts, pid: u32) -> Option<ProcessPin> {
    let p = host_process(facts, pid)?;
    Some(ProcessPin {
        start_ticks: p.start_ticks?,
        pod: pod_of(facts, pid),
    })
}

/// The pod UID the process's cgroup names (the kubelet's path, which a tenant does not choose).
fn pod_of(facts: &NodeFacts, pid: u32) -> Option<String> {
    host_process(facts, pid)
        .and_then(|p| p.cgroup.ok())
        .and_then(|c| crate::attribution::cgroup::parse_proc_cgroup(c).ok())
        .and_then(|a| a.pod_uid)
}

/// The process found now against the one the person approved: another start time is another process
/// (the pid reused), another pod another job's.
pub fn check_same_process(facts: &NodeFacts, pid: u32, pin: &ProcessPin) -> Check {
    const NAME: &str = "same_process_as_approved";
    let Some(now) = pin_of(facts, pid) else {
        return Check::block(
            NAME,
            format!(
                "the start time of pid {pid} could not be read, so it cannot be told to be the process the \
                 person approved"
            ),
        );
    };
    let pod = |p: &Option<String>| p.clone().unwrap_or_else(|| "no pod".into());
    if now.start_ticks != pin.start_ticks {
        return Check::block(
            NAME,
            format!(
                "pid {pid} started at tick {} after boot, not at tick {} as in the preflight the person \
                 approved: the pid now names another process. Nothing was signalled; call again to see it",
                now.start_ticks, pin.start_ticks
            ),
        );
    }
    if now.pod != pin.pod {
        return Check::block(
            NAME,
            format!(
                "pid {pid} is in {} now, not in {} as in the preflight the person approved. Nothing was \
                 signalled; call again to see it",
                pod(&now.pod),
                pod(&pin.pod)
            ),
        );
    }
    Check::pass(
        NAME,
        format!(
            "pid {pid} is the process the person approved (started at tick {}, {})",
            now.start_ticks,
            pod(&now.pod)
        ),
    )
}

/// The `kill` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KillReport {
    pub pid: u32,
    pub grace_seconds: u32,
    pub dry_run: bool,
    /// True when the facts come from a simulated scenario: nothing is ever signalled.
    pub simulated: bool,
    pub result: ActionResult,
    pub allowed: bool,
    /// Why it was refused (the blocking checks), empty when allowed.
    pub reasons: Vec<String>,
    pub checks: Vec<Check>,
    /// `comm` and `cmdline` of the target, as read on the host.
    #[serde(default)]
    pub process_name: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    /// The process as read (start time and pod), which the act is bound to; `None` where its start time
    /// was not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessPin>,
    /// GPUs the target uses, by index.
    pub gpus: Vec<u32>,
    pub plan: Vec<PlanStep>,
    /// What happened, when the plan ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<KillOutcome>,
}

super::action_report!(KillReport);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KillOutcome {
    pub sigterm_sent: bool,
    /// The process was gone before the grace period ended.
    pub exited_after_sigterm: bool,
    pub sigkill_sent: bool,
    /// The process is gone (or a zombie, which holds no GPU context) at the end.
    pub exited: bool,
    pub waited_ms: u64,
    pub memory_before: Vec<GpuMemoryUse>,
    pub memory_after: Vec<GpuMemoryUse>,
    /// NVML still lists the pid on a GPU after the kill.
    pub still_on_gpu: bool,
    /// A signal or re-collection that failed, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Judge a kill request against the facts. `dry_run`/`simulated` only shape the result.
pub fn preflight(facts: &NodeFacts, req: &KillRequest) -> Preflight {
    let mut checks = vec![
        check_not_init(req.pid),
        check_not_self(req.pid, req.self_pid),
        check_grace(req.grace_seconds),
        check_exists(facts, req.pid),
        check_not_kernel_thread(facts, req.pid),
        check_state(facts, req.pid),
    ];
    if let Some(pin) = &req.pin {
        checks.push(check_same_process(facts, req.pid, pin));
    }
    checks.push(check_uses_gpu(facts, req.pid));
    checks.extend(check_holders_known(facts, req.pid, req.override_unknown));
    Preflight::from_checks(super::override_as_confirmed(
        checks,
        req.override_unknown,
        req.seen_unknown.as_deref(),
    ))
}

/// The whole report before execution: preflight, plan, and the result it leads to.
pub fn plan(facts: &NodeFacts, req: &KillRequest, dry_run: bool, simulated: bool) -> KillReport {
    let pf = preflight(facts, req);
    let result = pf.result(dry_run, simulated);
    let proc_facts = host_process(facts, req.pid);
    KillReport {
        pid: req.pid,
        grace_seconds: req.grace_seconds,
        dry_run,
        simulated,
        result,
        allowed: pf.allowed,
        reasons: pf.reasons,
        checks: pf.checks,
        process_name: proc_facts.and_then(|p| p.name.ok().cloned()),
        cmdline: proc_facts.and_then(|p| p.cmdline.ok().cloned()),
        process: pin_of(facts, req.pid),
        gpus: gpus_of(facts, req.pid),
        plan: steps(facts, req),
        outcome: None,
    }
}

pub fn steps(facts: &NodeFacts, req: &KillRequest) -> Vec<PlanStep> {
    vec![
        PlanStep::new("sigterm", format!("send SIGTERM to pid {}", req.pid)),
        PlanStep::new(
            "wait",
            format!(
                "wait up to {} s for it to exit (checked every 100 ms)",
                req.grace_seconds
            ),
        ),
        PlanStep::new(
            "sigkill",
            format!("send SIGKILL to pid {} if it still runs", req.pid),
        ),
        PlanStep::new(
            "verify",
            match process_sources(facts).as_str() {
                "NVML" => {
                    "re-read GPU memory and processes from NVML; report before and after".into()
                }
                from => format!("re-read the GPUs' processes from {from}; report before and after"),
            },
        ),
    ]
}

/// GPU indices NVML lists the pid on.
pub fn gpus_of(facts: &NodeFacts, pid: u32) -> Vec<u32> {
    facts
        .gpus
        .iter()
        .filter(|g| {
            g.processes
                .ok()
                .is_some_and(|ps| ps.iter().any(|p| p.pid == pid))
        })
        .map(|g| g.index)
        .collect()
}

pub fn check_not_init(pid: u32) -> Check {
    match pid {
        0 => Check::block(
            "not_init",
            "pid 0 is not a process (the kernel's idle task)",
        ),
        1 => Check::block(
            "not_init",
            "pid 1 is the host's init: killing it panics the kernel and takes the node down",
        ),
        _ => Check::pass("not_init", format!("pid {pid} is not init")),
    }
}

pub fn check_not_self(pid: u32, self_pid: Option<u32>) -> Check {
    if Some(pid) == self_pid {
        Check::block("not_self", format!("pid {pid} is this probe"))
    } else {
        Check::pass("not_self", format!("pid {pid} is not the probe"))
    }
}

pub fn check_grace(grace: u32) -> Check {
    if grace > MAX_GRACE_SECONDS {
        Check::block(
            "grace_period",
            format!("grace period {grace} s exceeds the maximum of {MAX_GRACE_SECONDS} s"),
        )
    } else if grace == 0 {
        Check::warn(
            "grace_period",
            "grace period 0 s: SIGKILL follows SIGTERM at once, the process cannot checkpoint",
        )
    } else {
        Check::pass(
            "grace_period",
            format!("SIGTERM, then SIGKILL after {grace} s"),
        )
    }
}

pub fn check_exists(facts: &NodeFacts, pid: u32) -> Check {
    let Some(p) = host_process(facts, pid) else {
        return Check::block(
            "process_exists",
            format!("pid {pid} was not read from the host's /proc"),
        );
    };
    match &p.state {
        Reading::Ok(_) => Check::pass(
            "process_exists",
            format!("{} exists on the host", process_label(facts, pid)),
        ),
        Reading::Err(e) if e.error == FieldErrorKind::NotFound => Check::block(
            "process_exists",
            format!("no /proc/{pid} on the host: the process has exited or the pid is wrong"),
        ),
        Reading::Err(e) => Check::block(
            "process_exists",
            format!(
                "/proc/{pid}/stat is unreadable ({}): cannot verify the target",
                error_name(e.error)
            ),
        ),
    }
}

pub fn check_not_kernel_thread(facts: &NodeFacts, pid: u32) -> Check {
    const NAME: &str = "not_kernel_thread";
    let Some(p) = host_process(facts, pid) else {
        return Check::block(NAME, format!("pid {pid}: no /proc facts to tell"));
    };
    if let Some(flags) = p.stat_flags {
        return if flags & PF_KTHREAD != 0 {
            Check::block(
                NAME,
                format!("pid {pid} is a kernel thread (PF_KTHREAD set in stat flags {flags:#x})"),
            )
        } else {
            Check::pass(NAME, format!("PF_KTHREAD clear in stat flags {flags:#x}"))
        };
    }
    // Without the flags, an empty cmdline is what kernel threads (and zombies) show.
    match &p.cmdline {
        Reading::Ok(c) if !c.is_empty() => Check::warn(
            NAME,
            format!("stat flags unread; cmdline `{c}` is not a kernel thread's"),
        ),
        Reading::Ok(_) => Check::block(
            NAME,
            format!(
                "pid {pid} has an empty cmdline and unread stat flags: possibly a kernel thread"
            ),
        ),
        Reading::Err(e) => Check::block(
            NAME,
            format!(
                "neither stat flags nor cmdline of pid {pid} could be read ({})",
                error_name(e.error)
            ),
        ),
    }
}

pub fn check_state(facts: &NodeFacts, pid: u32) -> Check {
    const NAME: &str = "process_state";
    let Some(state) = host_process(facts, pid).and_then(|p| p.state.ok()) else {
        return Check::block(NAME, format!("state of pid {pid} unknown"));
    };
    match state.as_str() {
        "Z" => {
            let parent = host_process(facts, pid)
                .and_then(|p| p.ppid)
                .map(|pp| format!(" (pid {pp})"))
                .unwrap_or_default();
            Check::block(
                NAME,
                format!(
                    "pid {pid} is a zombie: it has already exited and signals have no effect; its \
                     parent{parent} must reap it, or the GPU context is held by a thread or child \
                     still running"
                ),
            )
        }
        "X" | "x" => Check::block(NAME, format!("pid {pid} is dead (state {state})")),
        "D" => Check::warn(
            NAME,
            format!(
                "pid {pid} is in uninterruptible sleep (D): it may not die until its I/O completes; \
                 if it survives SIGKILL the node likely needs a reboot"
            ),
        ),
        "T" | "t" => Check::warn(
            NAME,
            format!("pid {pid} is stopped ({state}): SIGTERM is only delivered once it resumes"),
        ),
        _ => Check::pass(NAME, format!("state {state}")),
    }
}

/// Who holds each GPU the process is on, by the reset's sources and rule (`super::holders`): the kill
/// ends a job's work, so a GPU no source can vouch for is refused unless a person overrides. A pod a
/// source names is said (the person sees whose job the process may be), not refused: ending a process
/// on a GPU a pod holds is what this tool is for, and its preflight has already named the process.
/// `None` where the kubelet was not asked (a scenario without its facts).
pub fn check_holders_known(facts: &NodeFacts, pid: u32, overridden: bool) -> Option<Check> {
    const NAME: &str = "gpu_holders_known";
    let gpus = gpus_of(facts, pid);
    let mut judged = Vec::new();
    for g in &gpus {
        judged.push(super::holders::check(
            NAME,
            *g,
            &super::holders::ask(facts, *g)?,
            overridden,
            "",
        ));
    }
    if let Some(c) = judged
        .iter()
        .find(|c| c.status == CheckStatus::Block && !c.unknown_sources.is_empty())
    {
        return Some(c.clone());
    }
    let held: Vec<String> = judged
        .iter()
        .filter(|c| c.status == CheckStatus::Block)
        .map(|c| c.evidence.trim_end_matches(". ").to_string())
        .collect();
    if !held.is_empty() {
        return Some(Check::warn(
            NAME,
            format!(
                "the GPU(s) pid {pid} uses are held by pods: {}. Killing the process ends that job's work \
                 there; its controller may start it again",
                held.join("; ")
            ),
        ));
    }
    judged
        .into_iter()
        .find(|c| c.status == CheckStatus::Warn)
        .or_else(|| {
            (!gpus.is_empty()).then(|| {
                Check::pass(
                    NAME,
                    format!("no source names a pod holding GPU(s) {gpus:?}, and every way of holding one is vouched for"),
                )
            })
        })
}

/// Who lists the GPUs' processes: NVML for NVIDIA GPUs, the amdgpu driver's KFD for AMD ones, the holders
/// of `/dev/accel` for Intel Gaudi (the habanalabs driver lets one process open a device).
fn process_sources(facts: &NodeFacts) -> String {
    let mut names: Vec<&str> = crate::facts::VENDORS
        .iter()
        .filter(|v| facts.gpus.iter().any(|g| g.vendor == v.vendor))
        .map(|v| v.process_source)
        .collect();
    if names.is_empty() {
        names.push(crate::facts::vendor::NVIDIA.process_source);
    }
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub fn check_uses_gpu(facts: &NodeFacts, pid: u32) -> Check {
    const NAME: &str = "uses_gpu_on_node";
    let mut on = Vec::new();
    let mut unreadable = Vec::new();
    for g in &facts.gpus {
        match &g.processes {
            Reading::Ok(ps) => {
                for p in ps.iter().filter(|p| p.pid == pid) {
                    let mem = p
                        .used_memory_bytes
                        .map(|b| format!(", {} MiB", mib(b)))
                        .unwrap_or_default();
                    on.push(format!("{} ({}{mem})", gpu_name(g), p.kind));
                }
            }
            Reading::Err(e) => {
                unreadable.push(format!("GPU {} ({})", g.index, error_name(e.error)))
            }
        }
    }
    if !on.is_empty() {
        return Check::pass(
            NAME,
            format!(
                "{} lists {} on {}",
                process_sources(facts),
                process_label(facts, pid),
                on.join("; ")
            ),
        );
    }
    if facts.gpus.is_empty() {
        return Check::block(NAME, "no GPU was found on this node");
    }
    if unreadable.is_empty() {
        Check::block(
            NAME,
            format!(
                "{} lists no process {pid} on any of the {} GPUs of this node: only GPU processes \
                 can be killed with this tool",
                process_sources(facts),
                facts.gpus.len()
            ),
        )
    } else {
        Check::block(
            NAME,
            format!(
                "pid {pid} is not among the GPU processes {} could list, and the process lists of {} \
                 are unreadable: cannot confirm it uses a GPU",
                process_sources(facts),
                unreadable.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{FieldError, GpuFacts, GpuProcessFacts, HostProcessFacts};
    use crate::operator::CheckStatus;

    fn node(pid: u32, state: &str, flags: Option<u64>, cmdline: &str) -> NodeFacts {
        NodeFacts {
            gpus: vec![
                GpuFacts {
                    index: 0,
                    uuid: Reading::Ok("GPU-aaaa".into()),
                    processes: Reading::Ok(vec![GpuProcessFacts {
                        pid,
                        kind: "compute".into(),
                        used_memory_bytes: Some(2 << 30),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                GpuFacts {
                    index: 1,
                    processes: Reading::Ok(vec![]),
                    ..Default::default()
                },
            ],
            host_processes: vec![HostProcessFacts {
                pid,
                name: Reading::Ok("python3".into()),
                cmdline: Reading::Ok(cmdline.into()),
                state: Reading::Ok(state.into()),
                ppid: Some(77),
                stat_flags: flags,
                start_ticks: Some(880_000),
                cgroup: Reading::Ok(
                    "0::/kubepods.slice/kubepods-pod0b7e2c1a_5f3d_4e2b_9c1d_2a3b4c5d6e7f.slice/cri-containerd-ab12.scope"
                        .into(),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn req(pid: u32) -> KillRequest {
        KillRequest {
            pid,
            grace_seconds: 10,
            self_pid: Some(999),
            override_unknown: false,
            pin: None,
            seen_unknown: None,
        }
    }

    fn status(pf: &Preflight, name: &str) -> CheckStatus {
        pf.get(name).unwrap_or_else(|| panic!("{name}")).status
    }

    #[test]
    fn a_gpu_process_is_allowed() {
        let f = node(4242, "S", Some(0x400100), "python3 train.py");
        let pf = preflight(&f, &req(4242));
        assert!(pf.allowed, "{pf:?}");
        assert!(pf.reasons.is_empty());
        assert!(
            pf.get("uses_gpu_on_node")
                .unwrap()
                .evidence
                .contains("GPU 0 GPU-aaaa (compute, 2048 MiB)")
        );
        let r = plan(&f, &req(4242), false, true);
        assert_eq!(r.result, ActionResult::Simulated);
        assert_eq!(r.gpus, vec![0]);
        assert_eq!(r.plan[0].action, "sigterm");
        assert_eq!(
            plan(&f, &req(4242), true, false).result,
            ActionResult::DryRun
        );
    }

    #[test]
    fn init_and_pid_zero_are_refused() {
        for pid in [0, 1] {
            let f = node(pid, "S", Some(0x400100), "/sbin/init");
            let pf = preflight(&f, &req(pid));
            assert!(!pf.allowed);
            assert_eq!(status(&pf, "not_init"), CheckStatus::Block);
            assert!(pf.reasons[0].starts_with("not_init:"));
        }
        assert_eq!(check_not_init(2).status, CheckStatus::Pass);
    }

    #[test]
    fn the_probe_itself_is_refused() {
        let f = node(999, "R", Some(0), "node-probe kill");
        let pf = preflight(&f, &req(999));
        assert_eq!(status(&pf, "not_self"), CheckStatus::Block);
        assert_eq!(check_not_self(5, None).status, CheckStatus::Pass);
    }

    #[test]
    fn kernel_threads_are_refused() {
        let f = node(4242, "S", Some(0x0020_8040), "");
        let pf = preflight(&f, &req(4242));
        assert_eq!(status(&pf, "not_kernel_thread"), CheckStatus::Block);
        assert!(
            pf.get("not_kernel_thread")
                .unwrap()
                .evidence
                .contains("0x208040")
        );
        // Flags unread: an empty cmdline blocks, a real one only warns.
        let f = node(4242, "S", None, "");
        assert_eq!(check_not_kernel_thread(&f, 4242).status, CheckStatus::Block);
        let f = node(4242, "S", None, "python3 x.py");
        assert_eq!(check_not_kernel_thread(&f, 4242).status, CheckStatus::Warn);
        let mut f = node(4242, "S", None, "");
        f.host_processes[0].cmdline = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
        let c = check_not_kernel_thread(&f, 4242);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("no_permission"));
    }

    #[test]
    fn a_pid_not_on_any_gpu_is_refused() {
        let mut f = node(4242, "S", Some(0), "python3");
        f.host_processes[0].pid = 5000;
        let pf = preflight(&f, &req(5000));
        assert!(!pf.allowed);
        assert_eq!(status(&pf, "uses_gpu_on_node"), CheckStatus::Block);
        assert!(
            pf.get("uses_gpu_on_node")
                .unwrap()
                .evidence
                .contains("on any of the 2 GPUs")
        );
        // An unreadable process list is named, and still refuses.
        f.gpus[1].processes = Reading::Err(FieldError::new(FieldErrorKind::NoPermission));
        let c = check_uses_gpu(&f, 5000);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(
            c.evidence.contains("GPU 1 (no_permission)"),
            "{}",
            c.evidence
        );
        // No GPUs at all.
        f.gpus.clear();
        assert!(
            check_uses_gpu(&f, 5000)
                .evidence
                .contains("no GPU was found")
        );
    }

    #[test]
    fn a_vanished_process_is_refused() {
        let mut f = node(4242, "S", Some(0), "python3");
        f.host_processes[0].state = Reading::Err(FieldError::new(FieldErrorKind::NotFound));
        let c = check_exists(&f, 4242);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("has exited"));
        f.host_processes.clear();
        assert_eq!(check_exists(&f, 4242).status, CheckStatus::Block);
    }

    #[test]
    fn zombies_are_refused_and_d_state_warns() {
        let f = node(4242, "Z", Some(0x400104), "");
        let c = check_state(&f, 4242);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(c.evidence.contains("parent (pid 77)"), "{}", c.evidence);
        let f = node(4242, "D", Some(0), "python3");
        assert_eq!(check_state(&f, 4242).status, CheckStatus::Warn);
        let f = node(4242, "T", Some(0), "python3");
        assert_eq!(check_state(&f, 4242).status, CheckStatus::Warn);
        assert!(preflight(&f, &req(4242)).allowed);
    }

    #[test]
    fn grace_period_bounds() {
        assert_eq!(check_grace(0).status, CheckStatus::Warn);
        assert_eq!(check_grace(30).status, CheckStatus::Pass);
        assert_eq!(
            check_grace(MAX_GRACE_SECONDS + 1).status,
            CheckStatus::Block
        );
    }

    #[test]
    fn an_amd_gpu_process_is_named_by_kfd_not_nvml() {
        let f: NodeFacts =
            serde_json::from_str(include_str!("../scenarios/mi300x-healthy.json")).unwrap();
        let c = check_uses_gpu(&f, 52110);
        assert_eq!(c.status, CheckStatus::Pass, "{}", c.evidence);
        assert!(
            c.evidence.starts_with("KFD (amdgpu) lists pid 52110"),
            "{}",
            c.evidence
        );
        assert!(
            check_uses_gpu(&f, 1)
                .evidence
                .starts_with("KFD (amdgpu) lists no process 1")
        );
    }

    /// A Gaudi's process is the holder of its `/dev/accel` node, and the kill is verified from there.
    #[test]
    fn a_gaudi_process_is_named_by_its_device_node_not_kfd_or_nvml() {
        let f: NodeFacts =
            serde_json::from_str(include_str!("../scenarios/gaudi2-healthy.json")).unwrap();
        let c = check_uses_gpu(&f, 61211);
        assert_eq!(c.status, CheckStatus::Pass, "{}", c.evidence);
        assert!(
            c.evidence
                .starts_with("/dev/accel holders (habanalabs) lists pid 61211"),
            "{}",
            c.evidence
        );
        let req = KillRequest {
            pid: 61211,
            grace_seconds: 10,
            self_pid: None,
            override_unknown: false,
            pin: None,
            seen_unknown: None,
        };
        let verify = steps(&f, &req).pop().unwrap();
        assert_eq!(
            verify.detail,
            "re-read the GPUs' processes from /dev/accel holders (habanalabs); report before and after"
        );
    }

    const POD: &str = "0b7e2c1a-5f3d-4e2b-9c1d-2a3b4c5d6e7f";

    /// The act is bound to the process the person approved: the same pid with another start time is
    /// another process (the pid reused between approval and act), refused; so is another pod.
    #[test]
    fn a_pid_reused_since_the_approval_is_refused() {
        let f = node(4242, "S", Some(0x400100), "python3 train.py");
        let seen = pin_of(&f, 4242).unwrap();
        assert_eq!(
            seen,
            ProcessPin {
                start_ticks: 880_000,
                pod: Some(POD.into())
            }
        );
        let r = plan(&f, &req(4242), true, false);
        assert_eq!(r.process.as_ref(), Some(&seen));
        let bound = |pin: ProcessPin| KillRequest {
            pin: Some(pin),
            ..req(4242)
        };
        let pf = preflight(&f, &bound(seen.clone()));
        assert!(pf.allowed, "{pf:?}");
        assert_eq!(status(&pf, "same_process_as_approved"), CheckStatus::Pass);
        // The pid now names a process that started later.
        let mut reused = f.clone();
        reused.host_processes[0].start_ticks = Some(990_000);
        let pf = preflight(&reused, &bound(seen.clone()));
        assert!(!pf.allowed);
        let c = pf.get("same_process_as_approved").unwrap();
        assert_eq!(c.status, CheckStatus::Block);
        assert!(
            c.evidence.contains("started at tick 990000")
                && c.evidence.contains("not at tick 880000")
                && c.evidence.contains("another process"),
            "{}",
            c.evidence
        );
        // Another pod's process.
        let other = ProcessPin {
            pod: Some("11111111-2222-3333-4444-555555555555".into()),
            ..seen.clone()
        };
        let c = check_same_process(&f, 4242, &other);
        assert_eq!(c.status, CheckStatus::Block);
        assert!(
            c.evidence.contains(&format!("is in {POD} now")),
            "{}",
            c.evidence
        );
        // A start time not read now cannot be told to be the same.
        let mut unread = f.clone();
        unread.host_processes[0].start_ticks = None;
        assert_eq!(
            check_same_process(&unread, 4242, &seen).status,
            CheckStatus::Block
        );
    }

    #[test]
    fn approved_round_trips_and_bad_specs_are_refused() {
        let pin = ProcessPin {
            start_ticks: 42,
            pod: None,
        };
        assert_eq!(pin.arg(), "start=42;pod=-");
        assert_eq!(parse_approved(&pin.arg()).unwrap(), (pin, vec![]));
        let (p, seen) = parse_approved(&format!(
            "start=7;pod={POD};seen=00aa11bb22cc33dd,ffeeddccbbaa9988"
        ))
        .unwrap();
        assert_eq!((p.start_ticks, p.pod.as_deref()), (7, Some(POD)));
        assert_eq!(seen, ["00aa11bb22cc33dd", "ffeeddccbbaa9988"]);
        for bad in [
            "start=7",
            "pod=-",
            "start=x;pod=-",
            "start=7;pod=../../etc",
            "start=7;pod=-;gpu=0",
            "start",
        ] {
            assert!(parse_approved(bad).is_err(), "{bad}");
        }
    }

    /// An override covers the unknowns the person saw, as a reset's does: one found since refuses.
    #[test]
    fn a_kill_override_covers_only_the_unknowns_seen() {
        let mut f = node(4242, "S", Some(0x400100), "python3 train.py");
        // The kubelet does not answer: who holds GPU 0 is unknown.
        f.pod_resources = Reading::Err(FieldError::new(FieldErrorKind::Timeout));
        let pf = preflight(&f, &req(4242));
        assert!(!pf.allowed);
        let saw = crate::operator::unknown_items(&pf.checks);
        assert!(!saw.is_empty(), "{pf:?}");
        let digests = |v: &[String]| {
            v.iter()
                .map(|i| crate::operator::reset::unknown_digest(i))
                .collect::<Vec<_>>()
        };
        let over = |seen: Vec<String>| KillRequest {
            override_unknown: true,
            seen_unknown: Some(seen),
            ..req(4242)
        };
        let pf = preflight(&f, &over(digests(&saw)));
        assert!(pf.allowed, "{pf:?}");
        assert_eq!(status(&pf, "override_as_confirmed"), CheckStatus::Pass);
        // An override that carries nothing it saw covers nothing.
        let pf = preflight(&f, &over(Vec::new()));
        assert!(!pf.allowed);
        assert_eq!(status(&pf, "override_as_confirmed"), CheckStatus::Block);
    }
}
