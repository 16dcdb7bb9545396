//! Kernel log readers: `{host-root}/dev/kmsg` (non-blocking, up to EAGAIN) or a log file.
//!
//! Both only gather lines; the grammar in `gpu_diag::xid` interprets them.

use std::io::Read;
use std::path::Path;

use gpu_diag::contract::{ErrorKind, ProbeError};
use gpu_diag::facts::{FieldError, FieldErrorKind, KernelLogFacts, Reading};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Upper bound on what one run keeps (the kernel ring buffer is at most a few MiB; a log file can be
/// anything): beyond it the oldest lines are dropped and the result is marked truncated.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// One kmsg record never exceeds this (the kernel's limit is 8 KiB of text plus escaping/dictionary).
const RECORD_BUF: usize = 16 * 1024;

/// Read a log file of kmsg records, dmesg or syslog lines. Invalid UTF-8 is replaced, not fatal.
pub fn read_log_file(path: &Path) -> Result<Reading<KernelLogFacts>, ProbeError> {
    let file = std::fs::File::open(path).map_err(|e| {
        ProbeError::new(
            ErrorKind::Io,
            format!("cannot read log file {}: {e}", path.display()),
        )
        .hint("pass a readable file with --log-file")
    })?;
    let (lines, truncated) = read_lines_bounded(file, MAX_BYTES).map_err(|e| {
        ProbeError::new(
            ErrorKind::Io,
            format!("cannot read log file {}: {e}", path.display()),
        )
    })?;
    Ok(Reading::Ok(KernelLogFacts {
        origin: format!("file:{}", path.display()),
        lines,
        truncated,
    }))
}

/// Read `r` line by line keeping at most `max` bytes of the newest lines.
fn read_lines_bounded(r: impl Read, max: usize) -> std::io::Result<(Vec<String>, bool)> {
    let mut reader = std::io::BufReader::new(r);
    let mut lines = std::collections::VecDeque::new();
    let mut total = 0usize;
    let mut truncated = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = std::io::BufRead::read_until(&mut reader, b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        total += line.len();
        lines.push_back(line);
        while total > max {
            match lines.pop_front() {
                Some(old) => total -= old.len(),
                None => break,
            }
            truncated = true;
        }
    }
    Ok((lines.into(), truncated))
}

/// Read the whole kernel ring buffer from `{host_root}/dev/kmsg`.
///
/// `/dev/kmsg` hands out one record per `read()` and, opened non-blocking, answers EAGAIN once the
/// reader has caught up; EPIPE means records were overwritten under us (skip on, mark truncated).
pub fn read_kmsg(host_root: &Path) -> Reading<KernelLogFacts> {
    let path = host_root.join("dev/kmsg");
    let fd = match rustix::fs::open(
        &path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Reading::Err(errno_error(e, &path)),
    };
    // A regular file standing in for kmsg (tests, a copied ring buffer) holds many records per read.
    let is_char_device = rustix::fs::fstat(&fd)
        .map(|st| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
        })
        .unwrap_or(false);
    if !is_char_device {
        let file = std::fs::File::from(fd);
        return match read_lines_bounded(file, MAX_BYTES) {
            Ok((lines, truncated)) => Reading::Ok(KernelLogFacts {
                origin: "kmsg".into(),
                lines,
                truncated,
            }),
            Err(e) => Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("{}: {e}", path.display()),
            )),
        };
    }
    let mut buf = vec![0u8; RECORD_BUF];
    let mut lines: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut total = 0usize;
    let mut truncated = false;
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                // Keep the `pri,seq,usec,flags;text` line; dictionary lines (` KEY=value`) are dropped.
                let line = rec.lines().next().unwrap_or("").to_string();
                total += line.len();
                lines.push_back(line);
                while total > MAX_BYTES {
                    match lines.pop_front() {
                        Some(old) => total -= old.len(),
                        None => break,
                    }
                    truncated = true;
                }
            }
            Err(Errno::AGAIN) => break,
            Err(Errno::PIPE) => truncated = true,
            Err(Errno::INTR) => continue,
            Err(e) => {
                if lines.is_empty() {
                    return Reading::Err(errno_error(e, &path));
                }
                truncated = true;
                break;
            }
        }
    }
    Reading::Ok(KernelLogFacts {
        origin: "kmsg".into(),
        lines: lines.into(),
        truncated,
    })
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
        let (lines, truncated) = read_lines_bounded(&data[..], 1024).unwrap();
        assert_eq!(lines, vec!["one", "two", "th\u{fffd}ree", "four"]);
        assert!(!truncated);
        let (lines, truncated) = read_lines_bounded(&data[..], 10).unwrap();
        assert!(truncated);
        assert_eq!(lines.last().map(String::as_str), Some("four"));
        assert!(lines.iter().map(String::len).sum::<usize>() <= 10);
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
