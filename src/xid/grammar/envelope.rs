//! Record envelopes: which form a kernel-log line came in (raw kmsg, dmesg, syslog/journal), its timestamp
//! as wall-clock time, and the joining of continuation lines into records (`RecordSplitter`).

use crate::xid::time;

/// Clock facts needed to turn log timestamps into wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub boot_time_unix: Option<f64>,
    pub now_unix: Option<f64>,
}

/// Which envelope a line came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    Kmsg,
    Dmesg,
    Syslog,
    Plain,
}

/// One log record: a kmsg record, a dmesg line or a syslog entry, with continuation lines joined.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line number of the record's first line.
    pub line: usize,
    pub envelope: Envelope,
    /// Wall-clock unix time, where derivable.
    pub ts: Option<f64>,
    /// The message text, with embedded newlines as `\n`.
    pub text: String,
    /// False for syslog lines from another program than the kernel: they never produce events.
    pub kernel: bool,
}

/// Split raw lines into records (the first pass of parsing).
pub fn records<S: AsRef<str>>(lines: &[S], clock: Clock) -> Vec<Record> {
    let mut split = RecordSplitter::new(clock);
    let mut out: Vec<Record> = Vec::with_capacity(lines.len());
    for raw in lines {
        out.extend(split.push(raw.as_ref()));
    }
    out.extend(split.finish());
    out
}

/// `records` one line at a time, so a log of any size is parsed holding one record: a record is
/// handed out when the line that starts the next one arrives (continuation lines join it first).
#[derive(Debug)]
pub struct RecordSplitter {
    clock: Clock,
    current: Option<Record>,
    lines: usize,
}

impl RecordSplitter {
    pub fn new(clock: Clock) -> Self {
        RecordSplitter {
            clock,
            current: None,
            lines: 0,
        }
    }

    /// Lines fed so far (blank ones included).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Feed the next raw line; returns the record it completed, if any.
    pub fn push(&mut self, raw: &str) -> Option<Record> {
        self.lines += 1;
        let line = raw.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return None;
        }
        if line.starts_with([' ', '\t'])
            && let Some(prev) = self.current.as_mut()
            && !starts_own_record(line.trim())
        {
            let t = line.trim();
            // kmsg dictionary properties (` SUBSYSTEM=pci`) describe the record, they are not text.
            if prev.envelope == Envelope::Kmsg && is_dict_prop(t) {
                return None;
            }
            if !t.is_empty() && prev.text.len() < 64 * 1024 {
                prev.text.push('\n');
                prev.text.push_str(t);
            }
            return None;
        }
        self.current
            .replace(parse_envelope(line.trim_start(), self.lines, self.clock))
    }

    /// The last record, once the input has ended (or before input of another kind).
    pub fn finish(&mut self) -> Option<Record> {
        self.current.take()
    }

    /// Count one line that arrived as a record of its own (a journal entry); returns its number.
    pub fn count_line(&mut self) -> usize {
        self.lines += 1;
        self.lines
    }
}

fn is_dict_prop(t: &str) -> bool {
    match t.split_once('=') {
        Some((k, _)) => {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }
        None => false,
    }
}

/// Detect the envelope of one line and extract its timestamp and text.
pub fn parse_envelope(line: &str, lineno: usize, clock: Clock) -> Record {
    let line = strip_level_prefix(line);
    let rec = |envelope, ts, text: &str, kernel| Record {
        line: lineno,
        envelope,
        ts,
        text: text.to_string(),
        kernel,
    };
    if let Some((usec, text)) = kmsg_envelope(line) {
        let ts = clock
            .boot_time_unix
            .map(|b| b + usec as f64 / 1e6)
            .filter(|t| t.is_finite());
        let mut r = rec(Envelope::Kmsg, ts, "", true);
        r.text = unescape_kmsg(text);
        return r;
    }
    if let Some((ts, text)) = dmesg_envelope(line, clock) {
        return rec(Envelope::Dmesg, ts, text, true);
    }
    if let Some((ts, tag, text)) = syslog_envelope(line, clock) {
        let kernel = tag == "kernel";
        // A kernel line may carry its own `[ 123.456]` after `kernel:`; the syslog date wins.
        let text = if kernel {
            strip_bracket_ts(text).map_or(text, |(_, t)| t)
        } else {
            text
        };
        return rec(Envelope::Syslog, ts, text, kernel);
    }
    rec(Envelope::Plain, None, line, true)
}

/// `dmesg -r` prints the syslog priority first (`<4>[  12.3] text`), `dmesg -x` the facility and level
/// (`kern  :warn  : [  12.3] text`): both are dropped before the envelope is detected.
fn strip_level_prefix(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix('<')
        && let Some((n, text)) = rest.split_once('>')
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        return text;
    }
    if line.starts_with("kern ") || line.starts_with("kern:") {
        let mut parts = line.splitn(3, ':');
        if let (Some(_), Some(level), Some(text)) = (parts.next(), parts.next(), parts.next())
            && level.trim().bytes().all(|b| b.is_ascii_lowercase())
        {
            return text.strip_prefix(' ').unwrap_or(text);
        }
    }
    line
}

/// Whether a whitespace-led line starts a record of its own rather than continuing the previous one.
fn starts_own_record(t: &str) -> bool {
    t.starts_with('[')
        || t.contains("NVRM: Xid (")
        || t.contains("SXid (")
        || t.starts_with("NVRM: GPU at ")
        || kmsg_envelope(t).is_some()
}

/// `pri,seq,usec,flags[,...];text` -> (usec, text).
fn kmsg_envelope(line: &str) -> Option<(u64, &str)> {
    let (head, text) = line.split_once(';')?;
    let mut parts = head.split(',');
    let pri = parts.next()?;
    let seq = parts.next()?;
    let usec = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pri) || !digits(seq) || !digits(usec) {
        return None;
    }
    Some((usec.parse().ok()?, text))
}

/// Undo kmsg's `\xNN` escaping (non-printable bytes, including embedded newlines).
pub fn unescape_kmsg(text: &str) -> String {
    if !text.contains("\\x") {
        return text.to_string();
    }
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3])) {
                out.push((h * 16 + l) as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `[  123.456789] text` (monotonic) or `[Sat Nov 21 10:00:00 2026] text` (`dmesg -T`).
fn dmesg_envelope(line: &str, clock: Clock) -> Option<(Option<f64>, &str)> {
    if !line.starts_with('[') {
        return None;
    }
    let (secs, text) = strip_bracket_ts(line)?;
    match secs {
        BracketTs::Monotonic(s) => Some((
            clock
                .boot_time_unix
                .map(|b| b + s)
                .filter(|t| t.is_finite()),
            text,
        )),
        BracketTs::Wall(t) => Some((Some(t), text)),
    }
}

enum BracketTs {
    Monotonic(f64),
    Wall(f64),
}

fn strip_bracket_ts(s: &str) -> Option<(BracketTs, &str)> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = rest[..close].trim();
    let text = rest[close + 1..]
        .strip_prefix(' ')
        .unwrap_or(&rest[close + 1..]);
    if let Some((a, b)) = inner.split_once('.')
        && !a.is_empty()
        && a.len() <= 12
        && a.bytes().all(|c| c.is_ascii_digit())
        && !b.is_empty()
        && b.len() <= 9
        && b.bytes().all(|c| c.is_ascii_digit())
    {
        return Some((BracketTs::Monotonic(inner.parse().ok()?), text));
    }
    // dmesg -T: `Sat Nov 21 10:00:00 2026`
    let f: Vec<&str> = inner.split_whitespace().collect();
    if let [_, mon, day, hms, year] = f.as_slice() {
        let t = civil_time(mon, day, hms, year.parse().ok()?)?;
        return Some((BracketTs::Wall(t), text));
    }
    None
}

fn civil_time(mon: &str, day: &str, hms: &str, year: i64) -> Option<f64> {
    let month = time::month_from_abbrev(mon)?;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let (h, m, s, frac) = parse_hms(hms)?;
    Some(time::unix_from_civil(year, month, day, h, m, s)? as f64 + frac)
}

fn parse_hms(hms: &str) -> Option<(u32, u32, u32, f64)> {
    let (whole, frac) = match hms.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            (w, format!("0.{f}").parse::<f64>().ok()?)
        }
        Some(_) => return None,
        None => (hms, 0.0),
    };
    let mut it = whole.split(':');
    let mut num = |max: u32| -> Option<u32> {
        let t = it.next()?;
        if t.len() != 2 {
            return None;
        }
        t.parse().ok().filter(|v| *v <= max)
    };
    let (h, m, s) = (num(23)?, num(59)?, num(60)?);
    if it.next().is_some() {
        return None;
    }
    Some((h, m, s, frac))
}

/// `Nov 21 10:00:00[.ffffff] host tag: text` or `2026-11-21T10:00:00[.ffffff](Z|+hh:mm|+hhmm) host tag:
/// text`; returns (time, tag without `[pid]`, text).
fn syslog_envelope(line: &str, clock: Clock) -> Option<(Option<f64>, &str, &str)> {
    let first = line.as_bytes().first()?;
    let (ts, rest) = if first.is_ascii_uppercase() {
        let mon = line.get(..3)?;
        time::month_from_abbrev(mon)?;
        let rest = line[3..].trim_start_matches(' ');
        let (day, rest) = rest.split_once(' ')?;
        let (hms, rest) = rest.split_once(' ')?;
        let ts = clock.now_unix.and_then(|now| {
            let year = time::year_of(now)?;
            let t = civil_time(mon, day, hms, year)?;
            // Syslog has no year: a date after "now" belongs to the previous year.
            if t > now + 86_400.0 {
                civil_time(mon, day, hms, year - 1)
            } else {
                Some(t)
            }
        });
        // A well-formed date is required even when there is no clock to place it.
        civil_time(mon, day, hms, 2000)?;
        (ts, rest)
    } else if first.is_ascii_digit() {
        let (stamp, rest) = line.split_once(' ')?;
        (Some(parse_iso(stamp)?), rest)
    } else {
        return None;
    };
    let (host, after_host) = rest.split_once(' ')?;
    // Some writers omit the hostname: `Nov 21 09:00:00 kernel: text`.
    let rest = if host.ends_with(':') {
        rest
    } else {
        after_host
    };
    let (tag, text) = rest
        .split_once(": ")
        .or_else(|| rest.strip_suffix(':').map(|t| (t, "")))?;
    if tag.is_empty() || tag.contains(' ') {
        return None;
    }
    let tag = tag.split_once('[').map_or(tag, |(t, _)| t);
    Some((ts, tag, text))
}

/// `2026-11-21T10:00:00.123456+00:00`, `...Z`, `...+0000`.
fn parse_iso(s: &str) -> Option<f64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-');
    let year: i64 = d.next().filter(|y| y.len() == 4)?.parse().ok()?;
    let month: u32 = d.next().filter(|m| m.len() == 2)?.parse().ok()?;
    let day: u32 = d.next().filter(|m| m.len() == 2)?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (hms, offset) = if let Some(h) = rest.strip_suffix('Z') {
        (h, 0i64)
    } else {
        let pos = rest.rfind(['+', '-'])?;
        let (h, off) = rest.split_at(pos);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let oh: i64 = digits[..2].parse().ok()?;
        let om: i64 = digits[2..].parse().ok()?;
        (h, sign * (oh * 3600 + om * 60))
    };
    let (h, m, sec, frac) = parse_hms(hms)?;
    Some((time::unix_from_civil(year, month, day, h, m, sec)? - offset) as f64 + frac)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A node booted 9,957 s before now: the clock every grammar test reads times against.
    pub(in crate::xid::grammar) fn clock() -> Clock {
        Clock {
            boot_time_unix: Some(1_795_250_000.0),
            now_unix: Some(1_795_259_957.0),
        }
    }

    #[test]
    fn envelopes() {
        let r = parse_envelope(
            "4,1234,5000000,-;NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.",
            1,
            clock(),
        );
        assert_eq!(r.envelope, Envelope::Kmsg);
        assert_eq!(r.ts, Some(1_795_250_005.0));
        assert!(r.text.starts_with("NVRM: Xid"));

        let r = parse_envelope("[   12.500000] NVRM: x", 2, clock());
        assert_eq!(r.envelope, Envelope::Dmesg);
        assert_eq!(r.ts, Some(1_795_250_012.5));
        assert_eq!(r.text, "NVRM: x");

        let r = parse_envelope(
            "Nov 21 10:00:00 gpu-node-5 kernel: [ 12.5] NVRM: y",
            3,
            clock(),
        );
        assert_eq!(r.envelope, Envelope::Syslog);
        assert_eq!(r.text, "NVRM: y");
        assert_eq!(
            r.ts,
            Some(time::unix_from_civil(2026, 11, 21, 10, 0, 0).unwrap() as f64)
        );
        assert!(r.kernel);

        // A date after "now" is last year's.
        let r = parse_envelope("Dec 31 23:00:00 h kernel: NVRM: y", 3, clock());
        assert_eq!(
            r.ts,
            Some(time::unix_from_civil(2025, 12, 31, 23, 0, 0).unwrap() as f64)
        );

        let r = parse_envelope(
            "Nov  1 01:02:03 h nvidia-persistenced[99]: NVRM: Xid fake",
            4,
            clock(),
        );
        assert_eq!(r.envelope, Envelope::Syslog);
        assert!(!r.kernel);

        let r = parse_envelope("2026-11-21T10:00:00.5+01:00 h kernel: NVRM: z", 5, clock());
        assert_eq!(
            r.ts,
            Some(time::unix_from_civil(2026, 11, 21, 9, 0, 0).unwrap() as f64 + 0.5)
        );

        let r = parse_envelope("[Sat Nov 21 10:00:00 2026] NVRM: t", 6, clock());
        assert_eq!(
            r.ts,
            Some(time::unix_from_civil(2026, 11, 21, 10, 0, 0).unwrap() as f64)
        );

        let r = parse_envelope("<4>[   12.500000] NVRM: x", 8, clock());
        assert_eq!((r.envelope, r.text.as_str()), (Envelope::Dmesg, "NVRM: x"));
        let r = parse_envelope("kern  :warn  : [   12.500000] NVRM: x", 8, clock());
        assert_eq!((r.envelope, r.text.as_str()), (Envelope::Dmesg, "NVRM: x"));
        let r = parse_envelope("Nov 21 10:00:00 kernel: NVRM: y", 9, clock());
        assert_eq!(
            (r.envelope, r.text.as_str(), r.kernel),
            (Envelope::Syslog, "NVRM: y", true)
        );

        let r = parse_envelope("NVRM: plain", 7, clock());
        assert_eq!(r.envelope, Envelope::Plain);
        assert_eq!(r.ts, None);

        // A date that names no day is no syslog envelope (the civil arithmetic before jiff rolled it over
        // into the next month); one with no year that exists only in leap years has no time this year.
        let r = parse_envelope("Nov 31 10:00:00 h kernel: NVRM: y", 10, clock());
        assert_eq!(r.envelope, Envelope::Plain);
        let r = parse_envelope("Feb 29 10:00:00 h kernel: NVRM: y", 11, clock());
        assert_eq!((r.envelope, r.ts), (Envelope::Syslog, None));
    }
}
