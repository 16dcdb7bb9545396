//! The kernel-log grammar: record envelopes (raw kmsg, dmesg, syslog/journal), then the NVIDIA lines
//! inside them (Xid, SXid, identity, fallen-off-the-bus, init failure, crash dump).
//!
//! Every function here is total: any input (garbage, truncated, huge) yields "not an NVIDIA line"
//! rather than a panic, and nothing is ever an event unless the driver's own wording is present.

use std::sync::LazyLock;

use regex::Regex;

use super::contract::DecodedDetail;
use super::time;
use crate::pci::normalize_bus_id;

/// Longest message kept per event; longer payloads are cut (at a char boundary) and marked.
pub const MAX_MESSAGE_CHARS: usize = 1024;

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

// ---------------------------------------------------------------------------------------------------
// NVIDIA lines
// ---------------------------------------------------------------------------------------------------

/// What one record says, if it is an NVIDIA line this grammar knows.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Xid(XidLine),
    Sxid(SxidLine),
    /// `NVRM: GPU at PCI:…: GPU-<uuid>`.
    Identity {
        pci: Option<String>,
        uuid: String,
    },
    /// Form 2 (`NVRM: GPU dddd:bb:dd.f: GPU has fallen off the bus.`), a one-record form 3, or any
    /// other NVRM wording of it.
    FallenOffBus {
        pci: Option<String>,
        text: String,
    },
    /// First line of the three-line form 3, whose last line has not been seen yet.
    FallenOffBusHead {
        pci: Option<String>,
    },
    /// Middle line of form 3 (`NVRM: (PCI ID: 10de:2330) installed in this system has`).
    FallenOffBusMiddle,
    /// Last line of form 3 on its own.
    FallenOffBusTail,
    InitFailure {
        pci: Option<String>,
    },
    CrashDump,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct XidLine {
    /// Normalised `dddd:bb:dd.f`.
    pub pci: Option<String>,
    /// None when the number does not fit (never a real driver line, but never dropped either).
    pub code: Option<u32>,
    pub pid: Option<u32>,
    pub process_name: Option<String>,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    /// The Xid-specific free text after `pid=…, name=…,`.
    pub message: String,
    pub caused_by_xid: Option<u32>,
    pub decoded: Option<DecodedDetail>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SxidLine {
    /// `nvidia-nvswitch3`, where printed.
    pub device: Option<String>,
    pub pci: Option<String>,
    pub code: Option<u32>,
    /// `Some(true)` Fatal, `Some(false)` Non-fatal, None when the payload states no severity.
    pub fatal: Option<bool>,
    pub link: Option<u32>,
    pub message: String,
}

static PCI_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:PCI:)?\b([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)\b")
        .expect("static regex")
});
static GPC_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\(GPC\s+(\d{1,9}),\s*TPC\s+(\d{1,9})(?:,\s*SM\s+(\d{1,9}))?\)")
        .expect("static regex")
});
static NVLINK_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)link\s+(\d{1,9})\s*\(\s*((?:0x[0-9a-f]{1,8}\s*,?\s*){1,7})\)")
        .expect("static regex")
});
static RST_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(D-)?RST:\s*(Yes|No)\b").expect("static regex"));
static RECOVERY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)from\s+0x([0-9a-f]{1,8})\s*\(([^)]*)\)\s*to\s+0x([0-9a-f]{1,8})\s*\(([^)]*)\)")
        .expect("static regex")
});
static NVL5_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^([A-Z0-9_/]+)\s+(Fatal|Non-?fatal)\s+(\S+)\s+(\S+)\s+Link\s+(-?\d{1,9})\s*\(\s*0x([0-9a-f]{1,8})[\s,]+0x([0-9a-f]{1,8})",
    )
    .expect("static regex")
});
static CAUSED_BY_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"caused by previous Xid (\d{1,9})").expect("static regex"));
static UUID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b",
    )
    .expect("static regex")
});

/// Cheap test that a record could be an NVIDIA line at all; everything else skips the regexes.
#[inline]
pub fn may_be_nvidia(text: &str) -> bool {
    text.contains("NVRM") || text.contains("SXid")
}

/// Classify one record's text. None: not an NVIDIA line this grammar reports.
pub fn parse_line(text: &str) -> Option<Line> {
    if !may_be_nvidia(text) {
        return None;
    }
    if let Some(x) = parse_xid(text) {
        return Some(Line::Xid(x));
    }
    if let Some(s) = parse_sxid(text) {
        return Some(Line::Sxid(s));
    }
    let nvrm = text.find("NVRM:")?;
    let body = &text[nvrm..];
    if let Some(rest) = body.strip_prefix("NVRM: GPU at ") {
        let uuid = UUID_RE.captures(rest).map(|c| c[1].to_string());
        if let Some(uuid) = uuid {
            let pci = first_pci(rest);
            return Some(Line::Identity {
                pci,
                uuid: format!("GPU-{}", uuid[4..].to_ascii_lowercase()),
            });
        }
    }
    if body.contains("fallen off the bus") {
        if let Some(pos) = body.find("The NVIDIA GPU ") {
            return Some(Line::FallenOffBus {
                pci: first_pci(&body[pos..]),
                text: body.to_string(),
            });
        }
        if body.starts_with("NVRM: fallen off the bus") {
            return Some(Line::FallenOffBusTail);
        }
        return Some(Line::FallenOffBus {
            pci: first_pci(body),
            text: body.to_string(),
        });
    }
    if let Some(pos) = body.find("NVRM: The NVIDIA GPU ") {
        let after = &body[pos + "NVRM: The NVIDIA GPU ".len()..];
        // Only the address form starts form 3; `The NVIDIA GPU 10de:1234 (PCI ID …) … not supported` does not.
        if let Some(m) = PCI_RE.captures(after)
            && after.starts_with(&m[1])
        {
            return Some(Line::FallenOffBusHead {
                pci: normalize_bus_id(&m[1]),
            });
        }
        return None;
    }
    if body.starts_with("NVRM: (PCI ID:") && body.contains("installed in this system has") {
        return Some(Line::FallenOffBusMiddle);
    }
    if body.contains("RmInitAdapter failed")
        || body.contains("rm_init_adapter failed")
        || body.contains("probe routine failed")
    {
        return Some(Line::InitFailure {
            pci: first_pci(body),
        });
    }
    if body.contains("A GPU crash dump has been created") {
        return Some(Line::CrashDump);
    }
    None
}

fn first_pci(s: &str) -> Option<String> {
    PCI_RE
        .captures_iter(s)
        .find_map(|c| normalize_bus_id(&c[1]))
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Leading ASCII digits of `s` and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(n)
}

/// `NVRM: Xid (PCI:dddd:bb:dd[ GPU-I:nn[ GPU-CI:nn]]): N, [pid=…, name=…, ]msg`.
pub fn parse_xid(text: &str) -> Option<XidLine> {
    let start = text.find("NVRM: Xid (")?;
    let rest = &text[start + "NVRM: Xid (".len()..];
    let close = rest.find(')')?;
    let inside = &rest[..close];
    let after = rest[close + 1..].strip_prefix(':')?.trim_start();
    let (digits, tail) = split_digits(after);
    if digits.is_empty() {
        return None;
    }
    let mut x = XidLine {
        code: parse_u32(digits),
        ..XidLine::default()
    };
    let mut toks = inside.split_whitespace();
    x.pci = toks.next().and_then(normalize_bus_id);
    for t in toks {
        if let Some(v) = t.strip_prefix("GPU-I:") {
            x.gpu_instance_id = parse_u32(v);
        } else if let Some(v) = t.strip_prefix("GPU-CI:") {
            x.compute_instance_id = parse_u32(v);
        }
    }
    let mut msg = tail.trim_start_matches([',', ' ']);
    if let Some(v) = msg.strip_prefix("pid=") {
        let (pid, r) = v.split_once(',').unwrap_or((v, ""));
        x.pid = parse_u32(pid.trim());
        msg = r.trim_start();
    }
    if let Some(v) = msg.strip_prefix("name=") {
        let (name, r) = v.split_once(", ").unwrap_or((v.trim_end_matches(','), ""));
        let name = name.trim();
        if !name.is_empty() && name != "<unknown>" {
            // The driver prints the task's comm (15 bytes); a longer name is not the driver's.
            x.process_name = Some(clip_to(name, MAX_FIELD_CHARS));
        }
        msg = r.trim_start();
    }
    x.caused_by_xid = CAUSED_BY_RE.captures(msg).and_then(|c| parse_u32(&c[1]));
    x.decoded = decode(x.code, msg);
    x.message = clip(msg.trim());
    Some(x)
}

fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()
}

fn decode(code: Option<u32>, msg: &str) -> Option<DecodedDetail> {
    match code {
        Some(13) => GPC_RE
            .captures(msg)
            .and_then(|c| match (parse_u32(&c[1]), parse_u32(&c[2])) {
                (Some(gpc), Some(tpc)) => Some(DecodedDetail::GraphicsException {
                    gpc,
                    tpc,
                    sm: c.get(3).and_then(|m| parse_u32(m.as_str())),
                }),
                _ => None,
            }),
        Some(74) => NVLINK_RE.captures(msg).and_then(|c| {
            let registers: Vec<u32> = c[2]
                .split(|ch: char| ch == ',' || ch.is_whitespace())
                .filter(|t| !t.is_empty())
                .filter_map(hex_u32)
                .collect();
            let link = parse_u32(&c[1])?;
            Some(DecodedDetail::NvLinkRegisters { link, registers })
        }),
        Some(94 | 95) => {
            let mut reset = None;
            let mut drain = None;
            for c in RST_RE.captures_iter(msg) {
                let yes = c[2].eq_ignore_ascii_case("yes");
                if c.get(1).is_some() {
                    drain = Some(yes);
                } else {
                    reset = Some(yes);
                }
            }
            let contained = if msg.contains("Uncontained") {
                Some(false)
            } else if msg.contains("Contained") {
                Some(true)
            } else {
                None
            };
            Some(DecodedDetail::Containment {
                contained,
                reset_required: reset,
                drain_and_reset_required: drain,
            })
        }
        Some(154) => {
            RECOVERY_RE
                .captures(msg)
                .and_then(|c| match (hex_u32(&c[1]), hex_u32(&c[3])) {
                    (Some(from), Some(to)) => Some(DecodedDetail::RecoveryAction {
                        from,
                        from_name: clip_to(c[2].trim(), MAX_FIELD_CHARS),
                        to,
                        to_name: clip_to(c[4].trim(), MAX_FIELD_CHARS),
                    }),
                    _ => None,
                })
        }
        Some(144..=150) => NVL5_RE.captures(msg).and_then(|c| {
            let link = c[5].parse::<i32>().ok();
            match (link, hex_u32(&c[6]), hex_u32(&c[7])) {
                (Some(link), Some(intr_info), Some(error_status)) => Some(DecodedDetail::NvLink5 {
                    unit: c[1].to_string(),
                    fatal: c[2].eq_ignore_ascii_case("fatal"),
                    link,
                    intr_info,
                    error_status,
                }),
                _ => None,
            }
        }),
        _ => None,
    }
}

/// `nvidia-nvswitchN: SXid (PCI:dddd:bb:dd.f): NNNNN, [Fatal|Non-fatal, Link N ]msg`.
pub fn parse_sxid(text: &str) -> Option<SxidLine> {
    let start = text.find("SXid (")?;
    let device = text[..start]
        .trim_end()
        .strip_suffix(':')
        .and_then(|d| d.rsplit(|c: char| c.is_whitespace()).next())
        .filter(|d| d.starts_with("nvidia-"))
        .map(str::to_string);
    let rest = &text[start + "SXid (".len()..];
    let close = rest.find(')')?;
    let after = rest[close + 1..].strip_prefix(':')?.trim_start();
    let (digits, tail) = split_digits(after);
    if digits.is_empty() {
        return None;
    }
    let mut s = SxidLine {
        device,
        pci: normalize_bus_id(rest[..close].trim()),
        code: parse_u32(digits),
        ..SxidLine::default()
    };
    let msg = tail.trim_start_matches([',', ' ']);
    for (word, fatal) in [("Fatal", true), ("Non-fatal", false), ("Nonfatal", false)] {
        if let Some(r) = msg.strip_prefix(word)
            && let Some(r) = r.strip_prefix(',')
        {
            s.fatal = Some(fatal);
            let r = r.trim_start();
            if let Some(l) = r.strip_prefix("Link ") {
                let (d, _) = split_digits(l);
                s.link = parse_u32(d);
            }
            break;
        }
    }
    s.message = clip(msg.trim());
    Some(s)
}

/// Longest short field kept from a line (a process name, a recovery action's name): what the driver
/// prints is far shorter, so only a hostile or damaged line is cut.
pub const MAX_FIELD_CHARS: usize = 64;

/// Cut a message to [`MAX_MESSAGE_CHARS`] at a char boundary.
pub fn clip(s: &str) -> String {
    clip_to(s, MAX_MESSAGE_CHARS)
}

/// Cut `s` to `max` characters, marking the cut with `…`.
pub fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The kernel's banner, its first message at every boot: `Linux version 6.8.0-… (…)`.
pub fn is_boot_start(text: &str) -> bool {
    text.trim_start().starts_with("Linux version ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Clock {
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

    #[test]
    fn kmsg_escapes_and_continuations() {
        let lines = [
            "3,10,100,-;NVRM: The NVIDIA GPU 0000:3b:00.0\\x0aNVRM: (PCI ID: 10de:2330) installed in this system has\\x0aNVRM: fallen off the bus and is not responding to commands.\\x0a",
            " SUBSYSTEM=pci",
            " DEVICE=+pci:0000:3b:00.0",
            "6,11,200,-;next",
        ];
        let recs = records(&lines, clock());
        assert_eq!(recs.len(), 2);
        assert!(recs[0].text.contains("\nNVRM: fallen off the bus"));
        assert!(!recs[0].text.contains("SUBSYSTEM"));
        assert_eq!(recs[1].line, 4);

        // An indented line that is itself an Xid is a record of its own, not a continuation.
        let xid_lines = [
            "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, x",
            "  [ 2.0] NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=a, y",
            "    NVRM: Xid (PCI:0000:3b:00): 43, pid=1, name=a, z",
        ];
        let own = records(&xid_lines, clock());
        assert_eq!(own.len(), 3);
        assert_eq!(own[1].ts, Some(1_795_250_002.0));
        assert!(matches!(
            parse_line(&recs[0].text),
            Some(Line::FallenOffBus { pci: Some(p), .. }) if p == "0000:3b:00.0"
        ));
    }

    #[test]
    fn xid_variants() {
        let x = parse_xid("NVRM: Xid (PCI:0000:3B:00): 13, pid=1234, name=python3, Graphics SM Warp Exception on (GPC 1, TPC 3, SM 0): Out Of Range Address").unwrap();
        assert_eq!(x.pci.as_deref(), Some("0000:3b:00.0"));
        assert_eq!(x.code, Some(13));
        assert_eq!(x.pid, Some(1234));
        assert_eq!(x.process_name.as_deref(), Some("python3"));
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::GraphicsException {
                gpc: 1,
                tpc: 3,
                sm: Some(0)
            })
        );

        let x = parse_xid("NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.").unwrap();
        assert_eq!((x.pid, x.process_name.as_deref()), (None, None));
        assert_eq!(x.message, "GPU has fallen off the bus.");

        let x = parse_xid("NVRM: Xid (PCI:0000:01:00 GPU-I:05 GPU-CI:01): 31, pid=7, name=a.out, Ch 00000007, intr 0").unwrap();
        assert_eq!(
            (x.gpu_instance_id, x.compute_instance_id),
            (Some(5), Some(1))
        );

        let x = parse_xid(
            "NVRM: Xid (PCI:0000:01:00): 45, pid=7, name=a, Ch 00000007 caused by previous Xid 48",
        )
        .unwrap();
        assert_eq!(x.caused_by_xid, Some(48));

        let x = parse_xid("NVRM: Xid (PCI:0000:01:00): 95, pid=7062, Uncontained: LTC TAG (0x2, 0x1). RST: Yes, D-RST: No").unwrap();
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::Containment {
                contained: Some(false),
                reset_required: Some(true),
                drain_and_reset_required: Some(false)
            })
        );

        let x = parse_xid("NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)").unwrap();
        assert!(matches!(
            x.decoded,
            Some(DecodedDetail::RecoveryAction { from: 0, to: 1, .. })
        ));

        let x = parse_xid("NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x0 0x0 0x0 0x0)").unwrap();
        assert!(matches!(
            x.decoded,
            Some(DecodedDetail::NvLink5 {
                fatal: true,
                link: 9,
                intr_info: 0x025525c6,
                ..
            })
        ));

        let x = parse_xid("NVRM: Xid (PCI:0000:06:00): 74, pid=1, name=x, NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)").unwrap();
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::NvLinkRegisters {
                link: 14,
                registers: vec![0, 0, 0x10000, 0, 0, 0, 0]
            })
        );

        let x = parse_xid("NVRM: Xid (0000:03:00): 14, Channel 00000001").unwrap();
        assert_eq!(x.pci.as_deref(), Some("0000:03:00.0"));

        let x = parse_xid("NVRM: Xid (PCI:0000:03:00): 99999999999999, huge").unwrap();
        assert_eq!(x.code, None);
    }

    #[test]
    fn other_lines() {
        let s = parse_sxid("nvidia-nvswitch3: SXid (PCI:0000:05:00.0): 28006, Non-fatal, Link 46 MC TS crumbstore MCTO (First)").unwrap();
        assert_eq!(s.device.as_deref(), Some("nvidia-nvswitch3"));
        assert_eq!(
            (s.code, s.fatal, s.link),
            (Some(28006), Some(false), Some(46))
        );
        let s = parse_sxid("nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 26006, SOE HALTED").unwrap();
        assert_eq!((s.code, s.fatal), (Some(26006), None));
        let s = parse_sxid("nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 01000, Fatal, Link 02 x")
            .unwrap();
        assert_eq!((s.code, s.fatal, s.link), (Some(1000), Some(true), Some(2)));

        assert!(matches!(
            parse_line("NVRM: GPU at PCI:0000:3b:00: GPU-ABCDEF01-2345-6789-abcd-ef0123456789"),
            Some(Line::Identity { uuid, .. }) if uuid == "GPU-abcdef01-2345-6789-abcd-ef0123456789"
        ));
        assert!(matches!(
            parse_line("NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus."),
            Some(Line::FallenOffBus { pci: Some(_), .. })
        ));
        assert!(matches!(
            parse_line("NVRM: The NVIDIA GPU 0000:3b:00.0"),
            Some(Line::FallenOffBusHead { .. })
        ));
        assert_eq!(
            parse_line("NVRM: The NVIDIA GPU 10de:1234 (PCI ID: 10de:1234)"),
            None
        );
        assert!(matches!(
            parse_line("NVRM: GPU 0000:3b:00.0: RmInitAdapter failed! (0x22:0x56:667)"),
            Some(Line::InitFailure { .. })
        ));
        assert_eq!(
            parse_line("NVRM: A GPU crash dump has been created. If possible, please run"),
            Some(Line::CrashDump)
        );
        for d in [
            "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.86.15",
            "nvidia-peermem nv_get_p2p_free_callback:125 ERROR detected invalid context",
            "pcieport 0000:00:01.0: AER: Corrected error received: 0000:3b:00.0",
            "NVRM: GPU 0000:3b:00.0: GPU serial number is 1234.",
            "NVRM: GPU Board Serial Number: 1234",
            "NVRM: Xid without parens",
            "NVRM: Xid (PCI:0000:3b:00): no code",
        ] {
            assert_eq!(parse_line(d), None, "{d}");
        }
    }
}
