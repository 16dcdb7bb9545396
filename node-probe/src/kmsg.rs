//! Kernel log readers: `{host-root}/dev/kmsg` (non-blocking, up to EAGAIN) or a log file.
//!
//! Both only gather lines; the grammar in `gpu_diag::kernel_log` interprets them.

use std::path::Path;

use gpu_diag::contract::{ErrorKind, ProbeError, Report};
use gpu_diag::facts::{FieldError, FieldErrorKind, KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::report::{LogEnd, XidAnalyzer};
use gpu_diag::options::AnalysisOptions;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::lines::stream_lines;

/// Upper bound on what one run keeps (the kernel ring buffer is at most a few MiB; a log file can be
/// anything): beyond it the oldest lines are dropped and the result is marked truncated.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// One kmsg record never exceeds this (the kernel's limit is 8 KiB of text plus escaping/dictionary).
const RECORD_BUF: usize = 16 * 1024;

/// Read a log file of kmsg records, dmesg or syslog lines. Invalid UTF-8 is replaced, not fatal.
pub fn read_log_file(path: &Path) -> Result<Reading<KernelLogFacts>, ProbeError> {
    let mut keep = Newest::new(MAX_BYTES);
    let truncated = stream_log_file(path, &mut |l| keep.push(l))?;
    Ok(Reading::Ok(KernelLogFacts {
        origin: format!("file:{}", path.display()),
        lines: keep.lines.into(),
        truncated: truncated || keep.dropped,
    }))
}

/// Hand every line of a log file to `sink`, holding one line at a time (a log of any size). Returns
/// whether the input was cut short (never, for a file read to its end).
pub fn stream_log_file(path: &Path, sink: &mut dyn FnMut(&str)) -> Result<bool, ProbeError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ProbeError::new(
            ErrorKind::Io,
            format!("cannot read log file {}: {e}", path.display()),
        )
        .hint("pass a readable file with --log-file")
    })?;
    stream_lines(file, sink).map_err(|e| {
        ProbeError::new(
            ErrorKind::Io,
            format!("cannot read log file {}: {e}", path.display()),
        )
    })?;
    Ok(false)
}

/// The newest lines up to a byte budget: older ones are dropped first.
struct Newest {
    lines: std::collections::VecDeque<String>,
    total: usize,
    max: usize,
    dropped: bool,
}

impl Newest {
    fn new(max: usize) -> Self {
        Newest {
            lines: std::collections::VecDeque::new(),
            total: 0,
            max,
            dropped: false,
        }
    }

    fn push(&mut self, line: &str) {
        self.total += line.len();
        self.lines.push_back(line.to_string());
        while self.total > self.max {
            match self.lines.pop_front() {
                Some(old) => self.total -= old.len(),
                None => break,
            }
            self.dropped = true;
        }
    }
}

/// Read the whole kernel ring buffer from `{host_root}/dev/kmsg`.
pub fn read_kmsg(host_root: &Path) -> Reading<KernelLogFacts> {
    let mut keep = Newest::new(MAX_BYTES);
    match stream_kmsg(host_root, &mut |l| keep.push(l)) {
        Ok(truncated) => Reading::Ok(KernelLogFacts {
            origin: "kmsg".into(),
            lines: keep.lines.into(),
            truncated: truncated || keep.dropped,
        }),
        Err(e) => Reading::Err(e),
    }
}

/// Hand every record of `{host_root}/dev/kmsg` to `sink`; returns whether records were lost.
///
/// `/dev/kmsg` hands out one record per `read()` and, opened non-blocking, answers EAGAIN once the
/// reader has caught up; EPIPE means records were overwritten under us (skip on, mark truncated).
pub fn stream_kmsg(host_root: &Path, sink: &mut dyn FnMut(&str)) -> Result<bool, FieldError> {
    let path = host_root.join("dev/kmsg");
    let fd = rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_error(e, &path))?;
    // A regular file standing in for kmsg (tests, a copied ring buffer) holds many records per read.
    let is_char_device = rustix::fs::fstat(&fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
        })
        .unwrap_or(false);
    if !is_char_device {
        let file = std::fs::File::from(fd);
        return stream_lines(file, sink).map(|()| false).map_err(|e| {
            FieldError::with_message(FieldErrorKind::Unknown, format!("{}: {e}", path.display()))
        });
    }
    let mut buf = vec![0u8; RECORD_BUF];
    let mut truncated = false;
    let mut any = false;
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                // Keep the `pri,seq,usec,flags;text` line; dictionary lines (` KEY=value`) are dropped.
                sink(rec.lines().next().unwrap_or(""));
                any = true;
            }
            Err(Errno::AGAIN) => break,
            Err(Errno::PIPE) => truncated = true,
            Err(Errno::INTR) => continue,
            Err(e) => {
                if !any {
                    return Err(errno_error(e, &path));
                }
                truncated = true;
                break;
            }
        }
    }
    Ok(truncated)
}

/// Where `xid` reads the kernel log from when it streams it.
#[derive(Debug, Clone)]
pub enum LogInput {
    File(std::path::PathBuf),
    /// `{host_root}/dev/kmsg`.
    Kmsg(std::path::PathBuf),
}

/// The analysis of a command whose kernel log streams (`KernelLogInput::Streamed`): the XID analysis
/// over a log of any size. Lines go straight into the analysis, one at a time, so memory stays bounded
/// however long the log is (`facts` supplies the GPUs, NVML events and clock). With `history`, the
/// host's journal and kernel text logs of earlier boots come first (oldest first), then `/dev/kmsg`,
/// which has the current boot's messages from its oldest record on.
pub fn analyze_streamed(
    input: &LogInput,
    facts: &NodeFacts,
    opts: &AnalysisOptions,
    history: bool,
) -> Result<Report, ProbeError> {
    let mut a = XidAnalyzer::new(facts, opts);
    let end = match input {
        LogInput::File(path) => {
            a.set_origin(&format!("file:{}", path.display()));
            let truncated = stream_log_file(path, &mut |l| a.push_line(l))?;
            LogEnd::Read { truncated }
        }
        LogInput::Kmsg(root) if history => {
            a.set_origin("kmsg");
            a.enable_history();
            // kmsg first into memory (the ring buffer is small): where it starts decides what the
            // history sources must still supply for the current boot.
            let kmsg = read_kmsg(root);
            let clock = gpu_diag::kernel_log::grammar::Clock {
                boot_time_unix: facts.host.boot_time_unix.get(),
                now_unix: facts.host.now_unix.get(),
            };
            let kmsg_start = kmsg.ok().and_then(|k| {
                k.lines
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .and_then(|l| gpu_diag::kernel_log::grammar::parse_envelope(l, 1, clock).ts)
            });
            crate::history::feed(root, &mut a, opts.since_unix, kmsg_start);
            a.history_until(None);
            a.begin_source(false);
            a.set_current_boot();
            match kmsg {
                Reading::Ok(k) => {
                    for l in &k.lines {
                        a.push_line(l);
                    }
                    LogEnd::Read {
                        truncated: k.truncated,
                    }
                }
                Reading::Err(e) => LogEnd::Unreadable(e),
            }
        }
        LogInput::Kmsg(root) => {
            a.set_origin("kmsg");
            match stream_kmsg(root, &mut |l| a.push_line(l)) {
                Ok(truncated) => LogEnd::Read { truncated },
                Err(e) => LogEnd::Unreadable(e),
            }
        }
    };
    Ok(Report::Xid(Box::new(a.finish(end))))
}

fn errno_error(e: Errno, path: &Path) -> FieldError {
    let kind = match e {
        Errno::ACCESS | Errno::PERM => FieldErrorKind::NoPermission,
        Errno::NOENT => FieldErrorKind::NotFound,
        _ => FieldErrorKind::Unknown,
    };
    FieldError::with_message(kind, format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reader_keeps_newest_lines_and_replaces_bad_utf8() {
        let data = b"one\ntwo\r\nth\xffree\nfour";
        let mut keep = Newest::new(1024);
        stream_lines(&data[..], &mut |l| keep.push(l)).unwrap();
        assert_eq!(keep.lines, vec!["one", "two", "th\u{fffd}ree", "four"]);
        assert!(!keep.dropped);
        let mut keep = Newest::new(10);
        stream_lines(&data[..], &mut |l| keep.push(l)).unwrap();
        assert!(keep.dropped);
        assert_eq!(keep.lines.back().map(String::as_str), Some("four"));
        assert!(keep.lines.iter().map(String::len).sum::<usize>() <= 10);
    }

    #[test]
    fn kmsg_from_a_fake_host_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dev")).unwrap();
        std::fs::write(
            dir.path().join("dev/kmsg"),
            "6,1,100,-;hello\n4,2,200,-;NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.\n",
        )
        .unwrap();
        let r = read_kmsg(dir.path());
        let k = r.ok().expect("read");
        assert_eq!(k.origin, "kmsg");
        assert_eq!(k.lines.len(), 2);
        assert!(!k.truncated);
    }

    #[test]
    fn missing_kmsg_is_a_field_error() {
        let dir = tempfile::tempdir().unwrap();
        let r = read_kmsg(dir.path());
        assert_eq!(r.err().map(|e| e.error), Some(FieldErrorKind::NotFound));
    }

    #[test]
    fn real_dev_kmsg_reads_until_eagain() {
        // Where the test may read the real ring buffer, it must come back (EAGAIN), not block.
        if std::fs::File::open("/dev/kmsg").is_err() {
            return;
        }
        let r = read_kmsg(Path::new("/"));
        if let Some(k) = r.ok() {
            assert_eq!(k.origin, "kmsg");
        }
    }
}
