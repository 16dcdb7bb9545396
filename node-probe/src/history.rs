//! Kernel messages of earlier boots from the host root, streamed into the `xid` analysis:
//! the systemd journal (persistent `/var/log/journal`, volatile `/run/log/journal`) and the kernel text
//! logs (`/var/log/kern.log*`, else `messages*`, else `syslog*`; rotated and `.gz` ones too).
//!
//! The journal is read by `journalctl`, not by a Rust reader: systemd's own tool knows every journal
//! format version, compression (zstd, xz, lz4), compact mode and how to stop cleanly at a corrupt
//! tail, and its output is a stream this process reads one entry at a time (bounded memory; the journal
//! itself is only mapped by `journalctl`). The pure-Rust readers on crates.io are young (0.x, a few
//! months old, one maintainer each). The host's own `journalctl` runs inside the host root (so it
//! matches the host's journal format); without one there, a `journalctl` on `PATH` reads the folder.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gpu_diag::kernel_log::contract::{HistorySource, SourceStatus};
use gpu_diag::kernel_log::grammar::{JournalEntry, journal_entry};
use gpu_diag::kernel_log::history::unread_source;
use gpu_diag::kernel_log::report::XidAnalyzer;
use gpu_diag::kernel_log::time::rfc3339;

/// History may take this long in all; what is not read by then is reported as partial. The launcher
/// gives a probe run 120 s from pod start to cleanup by default.
pub const BUDGET: Duration = Duration::from_secs(40);

/// Feed every history source under `host_root` to `a`, oldest first: text logs up to where the journal
/// starts, then the journal, each up to `until` (where `/dev/kmsg` starts).
pub fn feed(host_root: &Path, a: &mut XidAnalyzer, since: Option<f64>, until: Option<f64>) {
    let deadline = Instant::now() + BUDGET;
    let mut journals = Vec::new();
    for (kind, rel) in [
        ("journal", "var/log/journal"),
        ("journal_volatile", "run/log/journal"),
    ] {
        for j in Journal::open_all(host_root, kind, rel, since) {
            match j {
                Ok(j) => journals.push(j),
                Err(s) => a.add_history_source(*s),
            }
        }
    }
    // The journal's first entry decides where the text logs stop (rsyslog copies the same messages).
    let journal_start = journals
        .iter_mut()
        .filter_map(|j| j.peek_ts())
        .reduce(f64::min);
    let text_until = match (journal_start, until) {
        (Some(j), Some(k)) => Some(j.min(k)),
        (j, k) => j.or(k),
    };
    read_text_logs(host_root, a, text_until, deadline);
    for j in journals {
        j.feed(a, until, deadline);
    }
}

fn status_of(e: &std::io::Error) -> SourceStatus {
    match e.kind() {
        std::io::ErrorKind::NotFound => SourceStatus::Missing,
        std::io::ErrorKind::PermissionDenied => SourceStatus::NoPermission,
        _ => SourceStatus::Unavailable,
    }
}

fn source(
    kind: &str,
    path: &str,
    status: SourceStatus,
    message: Option<String>,
    stats: (usize, Option<f64>, Option<f64>),
) -> HistorySource {
    HistorySource {
        kind: kind.into(),
        path: path.into(),
        status,
        message,
        entries: stats.0,
        first: stats.1.and_then(rfc3339),
        last: stats.2.and_then(rfc3339),
    }
}

/// One journal directory being read by `journalctl`.
struct Journal {
    kind: &'static str,
    path: String,
    child: Child,
    lines: BufReader<std::process::ChildStdout>,
    peeked: Option<JournalEntry>,
    how: String,
}

impl Journal {
    /// One `journalctl` per folder holding journal files (a machine-id folder, or `remote/`).
    fn open_all(
        host_root: &Path,
        kind: &'static str,
        rel: &str,
        since: Option<f64>,
    ) -> Vec<Result<Journal, Box<HistorySource>>> {
        // Resolved as the host would (`/var/log` may be a link to a data disk).
        let dir = crate::host::root::path(host_root, rel);
        let path = format!("/{rel}");
        let unread = |st, m: String| Box::new(unread_source(kind, &path, st, m));
        let files = match journal_files(&dir) {
            Ok(f) => f,
            Err(e) => {
                return vec![Err(unread(
                    status_of(&e),
                    format!("{}: {e}", dir.display()),
                ))];
            }
        };
        if files.is_empty() {
            return vec![Err(unread(
                SourceStatus::Missing,
                "no journal files".into(),
            ))];
        }
        if let Some(e) = files
            .iter()
            .map(std::fs::File::open)
            .filter_map(Result::err)
            .find(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
            && files.iter().all(|f| std::fs::File::open(f).is_err())
        {
            return vec![Err(unread(SourceStatus::NoPermission, e.to_string()))];
        }
        let mut dirs: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs.iter()
            .map(|d| Journal::spawn(host_root, kind, d, since))
            .collect()
    }

    fn spawn(
        host_root: &Path,
        kind: &'static str,
        dir: &Path,
        since: Option<f64>,
    ) -> Result<Journal, Box<HistorySource>> {
        let path = format!("/{}", dir.strip_prefix(host_root).unwrap_or(dir).display());
        let unread = |st, m: String| Box::new(unread_source(kind, &path, st, m));
        let mut args: Vec<String> = vec![
            "--output=json".into(),
            // The writer's fields too: journald files a userspace write into /dev/kmsg under
            // `_TRANSPORT=kernel` as well, with that program's identifier and facility.
            "--output-fields=MESSAGE,_BOOT_ID,_TRANSPORT,SYSLOG_IDENTIFIER,SYSLOG_FACILITY".into(),
            "--no-pager".into(),
            "--quiet".into(),
        ];
        if let Some(s) = since {
            args.push(format!("--since=@{}", s.floor() as i64));
        }
        args.push("_TRANSPORT=kernel".into());
        let (mut cmd, how) = journalctl(host_root, dir);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            unread(
                SourceStatus::Unavailable,
                format!("cannot run journalctl ({how}): {e}"),
            )
        })?;
        let Some(out) = child.stdout.take() else {
            let _ = child.kill();
            return Err(unread(
                SourceStatus::Unavailable,
                "journalctl has no stdout".into(),
            ));
        };
        Ok(Journal {
            kind,
            path,
            child,
            lines: BufReader::with_capacity(256 * 1024, out),
            peeked: None,
            how,
        })
    }

    fn next(&mut self) -> Option<JournalEntry> {
        if let Some(e) = self.peeked.take() {
            return Some(e);
        }
        let mut line = Vec::new();
        loop {
            match crate::lines::next_line(&mut self.lines, &mut line, crate::lines::MAX_LINE) {
                Ok(None) | Err(_) => return None,
                // A cut line is not a whole JSON object: skipped like any entry that does not parse.
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    if let Some(e) = std::str::from_utf8(&line).ok().and_then(journal_entry) {
                        return Some(e);
                    }
                }
            }
        }
    }

    fn peek_ts(&mut self) -> Option<f64> {
        if self.peeked.is_none() {
            self.peeked = self.next();
        }
        self.peeked.as_ref().and_then(|e| e.ts)
    }

    fn feed(mut self, a: &mut XidAnalyzer, until: Option<f64>, deadline: Instant) {
        a.take_source_stats();
        a.history_until(until);
        a.begin_source(true);
        let mut stopped = false;
        while let Some(e) = self.next() {
            if !e.kernel {
                continue;
            }
            a.set_boot(e.boot.as_deref());
            a.push_record(e.ts, &e.message);
            if Instant::now() > deadline {
                stopped = true;
                let _ = self.child.kill();
                break;
            }
        }
        let stats = a.take_source_stats();
        // Drain what is left so journalctl is not blocked on a full pipe, then collect its verdict.
        let _ = std::io::copy(&mut self.lines, &mut std::io::sink());
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.by_ref().take(4096).read_to_string(&mut err);
        }
        let status = self.child.wait().ok();
        let complaint = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string);
        let (st, msg) = if stopped {
            (
                SourceStatus::Partial,
                Some(format!(
                    "stopped after {} s (time budget); older entries were read",
                    BUDGET.as_secs()
                )),
            )
        } else if !status.is_some_and(|s| s.success()) || complaint.is_some() {
            let m = complaint.unwrap_or_else(|| format!("journalctl exited with {status:?}"));
            if stats.0 == 0 {
                (SourceStatus::Corrupt, Some(m))
            } else {
                (SourceStatus::Partial, Some(m))
            }
        } else {
            (SourceStatus::Read, Some(format!("read with {}", self.how)))
        };
        a.add_history_source(source(self.kind, &self.path, st, msg, stats));
    }
}

/// `*.journal` and `*.journal~` files under a journal directory (one level of machine-id folders).
fn journal_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            for f in std::fs::read_dir(&p)? {
                let f = f?.path();
                if is_journal(&f) {
                    out.push(f);
                }
            }
        } else if is_journal(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

fn is_journal(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".journal") || n.ends_with(".journal~"))
}

/// The `journalctl` to run and how, over one folder: the host's own, run inside the host root (it
/// reads every journal format the host writes), else one on `PATH` (tests, a probe at `/`). A folder
/// each (not `--file` per file): a file it cannot open then costs only that file, and `--directory`
/// on the journal root would only look into folders named like a machine id.
fn journalctl(host_root: &Path, dir: &Path) -> (Command, String) {
    let inside = dir.strip_prefix(host_root).unwrap_or(dir);
    let host_own = ["usr/bin/journalctl", "bin/journalctl"]
        .into_iter()
        .find(|p| host_root.join(p).is_file());
    if let Some(program) = host_own.filter(|_| host_root != Path::new("/")) {
        let mut c = Command::new(format!("/{program}"));
        crate::hostexec::chroot(&mut c, host_root.to_path_buf());
        c.arg(format!("--directory=/{}", inside.display()));
        return (c, "the host's journalctl (in the host root)".into());
    }
    let mut c = Command::new("journalctl");
    c.arg(format!("--directory={}", dir.display()));
    (c, "journalctl --directory".into())
}

/// Kernel text logs, one family (the first of kern.log, messages, syslog present), oldest file first.
fn read_text_logs(host_root: &Path, a: &mut XidAnalyzer, until: Option<f64>, deadline: Instant) {
    let dir = crate::host::root::path(host_root, "var/log");
    let names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect(),
        Err(e) => {
            a.add_history_source(unread_source(
                "text_log",
                "/var/log",
                status_of(&e),
                format!("{}: {e}", dir.display()),
            ));
            return;
        }
    };
    let mut chosen: Option<&str> = None;
    for family in ["kern.log", "messages", "syslog"] {
        let mut files: Vec<(u32, &String)> = names
            .iter()
            .filter_map(|n| rotation(n, family).map(|r| (r, n)))
            .collect();
        if files.is_empty() {
            continue;
        }
        if let Some(c) = chosen {
            for (_, n) in files {
                a.add_history_source(unread_source(
                    "text_log",
                    &format!("/var/log/{n}"),
                    SourceStatus::Skipped,
                    format!("{c}* already holds the kernel messages"),
                ));
            }
            continue;
        }
        chosen = Some(family);
        // Oldest first: the highest rotation number, the live file (0) last.
        files.sort_by_key(|f| std::cmp::Reverse(f.0));
        for (_, n) in files {
            let path = crate::host::root::path(host_root, Path::new("var/log").join(n));
            let shown = format!("/var/log/{n}");
            if Instant::now() > deadline {
                a.add_history_source(unread_source(
                    "text_log",
                    &shown,
                    SourceStatus::Partial,
                    format!("not read: time budget of {} s spent", BUDGET.as_secs()),
                ));
                continue;
            }
            let s = read_text_log(a, &path, &shown, until, deadline);
            a.add_history_source(s);
        }
    }
    if chosen.is_none() {
        a.add_history_source(unread_source(
            "text_log",
            "/var/log/kern.log",
            SourceStatus::Missing,
            "no kern.log, messages or syslog files".into(),
        ));
    }
}

fn read_text_log(
    a: &mut XidAnalyzer,
    path: &Path,
    shown: &str,
    until: Option<f64>,
    deadline: Instant,
) -> HistorySource {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return unread_source("text_log", shown, status_of(&e), e.to_string()),
    };
    a.take_source_stats();
    a.history_until(until);
    a.begin_source(true);
    let gz = shown.ends_with(".gz");
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    // The deadline is checked per line, not only per file: one small `.gz` can inflate to more lines
    // than the budget allows.
    let mut lines = 0u64;
    let res = crate::lines::stream_lines_until(r, &mut |l| a.push_line(l), &mut || {
        lines += 1;
        lines.is_multiple_of(4096) && Instant::now() > deadline
    });
    let stats = a.take_source_stats();
    match res {
        Ok(false) => source("text_log", shown, SourceStatus::Read, None, stats),
        Ok(true) => source(
            "text_log",
            shown,
            SourceStatus::Partial,
            Some(format!(
                "stopped after {} s (time budget); older lines were read",
                BUDGET.as_secs()
            )),
            stats,
        ),
        Err(e) => {
            let st = if stats.0 == 0 {
                SourceStatus::Corrupt
            } else {
                SourceStatus::Partial
            };
            source(
                "text_log",
                shown,
                st,
                Some(format!("read up to a damaged part: {e}")),
                stats,
            )
        }
    }
}

/// How old a file of `family` is, in rotations: 0 for the live file, N for `family.N` and
/// `family.N.gz`, decreasing with the date for `family-YYYYMMDD[.gz]`; None for other files.
fn rotation(name: &str, family: &str) -> Option<u32> {
    if name == family {
        return Some(0);
    }
    // `kern.log.3.gz` (logrotate's default) or `messages-20261101.gz` (its `dateext`).
    let rest = name.strip_prefix(family)?;
    if let Some(n) = rest.strip_prefix('.') {
        let n = n.strip_suffix(".gz").unwrap_or(n);
        return n.parse::<u32>().ok().filter(|n| *n > 0);
    }
    let date = rest.strip_prefix('-')?;
    let date = date.strip_suffix(".gz").unwrap_or(date);
    let d = date
        .parse::<u32>()
        .ok()
        .filter(|d| date.len() == 8 && *d > 0)?;
    // Later dates are newer: count down from a number above any date.
    Some(100_000_000 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_numbers() {
        assert_eq!(rotation("kern.log", "kern.log"), Some(0));
        assert_eq!(rotation("kern.log.1", "kern.log"), Some(1));
        assert_eq!(rotation("kern.log.12.gz", "kern.log"), Some(12));
        assert_eq!(rotation("kern.log.old", "kern.log"), None);
        assert_eq!(rotation("syslog", "kern.log"), None);
        assert_eq!(
            rotation("messages-20261101.gz", "messages"),
            Some(100_000_000 - 20261101)
        );
        assert_eq!(rotation("messages-old", "messages"), None);
    }

    #[test]
    fn journal_json_entries() {
        let e = journal_entry(
            r#"{"__REALTIME_TIMESTAMP":"1795000100000000","MESSAGE":"NVRM: Xid","_BOOT_ID":"ab","_TRANSPORT":"kernel"}"#,
        )
        .unwrap();
        assert_eq!(e.ts, Some(1_795_000_100.0));
        assert_eq!(e.message, "NVRM: Xid");
        assert_eq!(e.boot.as_deref(), Some("ab"));
        assert!(e.kernel);
        // Not UTF-8: the journal writes the bytes as an array.
        let e = journal_entry(r#"{"MESSAGE":[78,86,255],"_TRANSPORT":"kernel"}"#).unwrap();
        assert_eq!(e.message, "NV\u{fffd}");
        // A program's write into /dev/kmsg: kernel transport, the program's identifier and facility.
        let e = journal_entry(
            r#"{"MESSAGE":"NVRM: Xid (PCI:0000:04:00): 79, x","_TRANSPORT":"kernel","SYSLOG_IDENTIFIER":"inject","SYSLOG_FACILITY":"1"}"#,
        )
        .unwrap();
        assert!(!e.kernel);
        assert!(journal_entry("not json").is_none());
    }
}
