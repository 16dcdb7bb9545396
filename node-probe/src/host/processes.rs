//! `proc/<pid>` of the processes NVML reported (and of an operator's target): name, command line, cgroup,
//! state, age, parent and kernel task flags.

use std::path::Path;

use gpu_diag::facts::{FieldError, FieldErrorKind, HostProcessFacts, NodeFacts, Reading};

use super::capped::{io_error, read_capped, read_line, read_text, read_text_max};

/// What is kept of a process's `cmdline`: enough to recognise the program and its main arguments.
/// A process can make its own `cmdline` megabytes long, and every GPU process's lands in the document.
pub const MAX_CMDLINE: usize = 4096;
/// The most of `proc/<pid>/cgroup` that is read (a workload can nest cgroups deeply under its own).
pub const MAX_CGROUP: usize = 64 * 1024;

/// `/proc` facts of every process NVML reported on a GPU, and of `extra` (an operator's target).
pub fn fill_processes(facts: &mut NodeFacts, host_root: &Path, extra: Option<u32>) {
    let mut pids: Vec<u32> = facts
        .gpus
        .iter()
        .filter_map(|g| g.processes.ok())
        .flatten()
        .map(|p| p.pid)
        .chain(extra)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let uptime = read_uptime(host_root);
    facts.host_processes = pids
        .into_iter()
        .map(|pid| read_process(host_root, pid, uptime))
        .collect();
}

/// Seconds since boot (`proc/uptime`), to age processes.
pub fn read_uptime(root: &Path) -> Option<f64> {
    read_text(&root.join("proc/uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What `proc/<pid>` says about a process NVML reported.
pub fn read_process(root: &Path, pid: u32, uptime: Option<f64>) -> HostProcessFacts {
    let dir = root.join("proc").join(pid.to_string());
    let cmdline = read_cmdline(&dir.join("cmdline"));
    let (state, age_seconds, ppid, stat_flags, start_ticks) = match read_text(&dir.join("stat")) {
        Ok(stat) => {
            let (state, age) = parse_stat(&stat, uptime, clock_ticks());
            let (ppid, flags) = parse_stat_ids(&stat);
            (state, age, ppid, flags, parse_stat_start(&stat))
        }
        Err(e) => (Reading::Err(e.clone()), Reading::Err(e), None, None, None),
    };
    HostProcessFacts {
        pid,
        ppid,
        stat_flags,
        start_ticks,
        name: read_line(&dir.join("comm")),
        cmdline,
        cgroup: match read_text_max(&dir.join("cgroup"), MAX_CGROUP) {
            Ok(t) => Reading::Ok(t.trim_end().to_string()),
            Err(e) => Reading::Err(e),
        },
        state,
        age_seconds,
    }
}

pub(super) fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// State letter and age from `proc/<pid>/stat`. The command name may contain spaces and parentheses, so
/// fields are counted after the last `)`: state is field 3, start time (clock ticks after boot) field 22.
pub fn parse_stat(
    stat: &str,
    uptime: Option<f64>,
    ticks_per_sec: u64,
) -> (Reading<String>, Reading<u64>) {
    fn bad<T>(what: &str) -> Reading<T> {
        Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("cannot parse {what} from proc stat"),
        ))
    }
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (bad("state"), bad("start time"));
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = match fields.first() {
        Some(s) => Reading::Ok(s.to_string()),
        None => bad("state"),
    };
    let start: Option<u64> = fields.get(19).and_then(|s| s.parse().ok());
    let age = match (start, uptime) {
        (Some(start), Some(up)) if ticks_per_sec > 0 => {
            let started = start as f64 / ticks_per_sec as f64;
            Reading::Ok((up - started).max(0.0) as u64)
        }
        (None, _) => bad("start time"),
        _ => Reading::Err(FieldError::with_message(
            FieldErrorKind::NotFound,
            "proc/uptime is unreadable",
        )),
    };
    (state, age)
}

/// Parent pid (field 4) and kernel task flags (field 9, where `PF_KTHREAD` lives) from `proc/<pid>/stat`,
/// counted after the last `)` like [`parse_stat`].
pub fn parse_stat_ids(stat: &str) -> (Option<u32>, Option<u64>) {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (None, None);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    (
        fields.get(1).and_then(|s| s.parse().ok()),
        fields.get(6).and_then(|s| s.parse().ok()),
    )
}

/// Start time in clock ticks after boot (field 22 of `proc/<pid>/stat`), counted after the last `)` like
/// [`parse_stat`].
pub fn parse_stat_start(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `proc/<pid>/cmdline`: NUL-separated arguments joined with spaces, invalid UTF-8 replaced, cut at
/// [`MAX_CMDLINE`] bytes (marked with a trailing ` …`).
pub fn read_cmdline(path: &Path) -> Reading<String> {
    match read_capped(path, MAX_CMDLINE) {
        Ok((bytes, cut)) => {
            let args: Vec<String> = bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let mut s = args.join(" ");
            if cut {
                s.push_str(" …");
            }
            Reading::Ok(s)
        }
        Err(e) => Reading::Err(io_error(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name() {
        let stat = "4242 (python3 (train) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 3 0 150000 1 1";
        let (state, age) = parse_stat(stat, Some(2000.0), 100);
        assert_eq!(state, Reading::Ok("S".to_string()));
        // Started 1500 s after boot, now 2000 s after boot.
        assert_eq!(age, Reading::Ok(500));
        let (state, age) = parse_stat("garbage", Some(1.0), 100);
        assert!(state.err().is_some() && age.err().is_some());
        let (_, age) = parse_stat(stat, None, 100);
        assert_eq!(age.err().unwrap().error, FieldErrorKind::NotFound);
    }

    #[test]
    fn stat_ids_and_kernel_thread_flags() {
        // kthreadd child: ppid 2, flags 0x208040 (PF_KTHREAD set).
        let stat = "57 (kworker/3:1-events) I 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 120 0 0";
        assert_eq!(parse_stat_ids(stat), (Some(2), Some(0x208040)));
        assert_eq!(parse_stat_ids("garbage"), (None, None));
    }
}
