//! Record envelopes: which form a kernel-log line came in (raw kmsg, dmesg in its layouts, syslog in
//! RFC 3164 and 5424, the journal's short and JSON outputs, Talos's `talosctl dmesg`), whether the kernel
//! wrote it, its timestamp as wall-clock time, and the joining of continuation lines into records
//! (`RecordSplitter`).
//!
//! Only the kernel's own records can be kernel events. Each envelope says who wrote the line: the kmsg
//! and syslog facility (a userspace write into `/dev/kmsg` is never facility 0: the kernel forces
//! LOG_USER, `devkmsg_write` in kernel/printk/printk.c), the syslog tag or journal identifier `kernel`,
//! Talos's facility name. A line of another program that merely quotes a kernel line (a JSON log field,
//! a Go log line, another tag's syslog line) is read as that program's, not as the kernel's.
//!
//! A bare line with no envelope at all is what `journalctl -k -o cat` and `dmesg --notime` print: it is
//! taken as a kernel message with no time, and the line grammar only recognises it when the driver's
//! own prefix starts the line (so `kernel says NVRM: Xid …` or `{"msg":"NVRM: Xid …"}` is no event).
//!
//! Times: the seconds since boot that kmsg and dmesg print are placed on the wall clock with this
//! machine's boot time only for this boot's live `/dev/kmsg` ([`RecordSplitter::set_live`]). In a log
//! from another machine (a `--log-file`, the history of earlier boots) they stay relative
//! ([`Record::uptime`]) unless the same log ties them to its own wall clock: a kernel syslog line that
//! prints both its date and its `[uptime]` anchors the uptimes after it, until a reboot.

use crate::kernel_log::time;

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
    /// One entry of `journalctl -o json`.
    Journal,
    /// `talosctl dmesg`: `[node: ]facility: priority: [RFC 3339 time]: text`.
    Talos,
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
    /// Seconds since the logging machine's boot, as the line prints them (kmsg, dmesg, a kernel syslog
    /// line's own `[uptime]`).
    pub uptime: Option<f64>,
    /// The message text, with embedded newlines as `\n`.
    pub text: String,
    /// False for lines another program wrote (another syslog tag or facility, a userspace write into
    /// kmsg, a structured log line): they never produce events.
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

/// How far past "now" an anchored time may land before it is dropped (clock steps, rounding).
const FUTURE_SLACK_SECS: f64 = 300.0;

/// `records` one line at a time, so a log of any size is parsed holding one record: a record is
/// handed out when the line that starts the next one arrives (continuation lines join it first).
#[derive(Debug)]
pub struct RecordSplitter {
    clock: Clock,
    /// The lines are this boot's `/dev/kmsg`: uptimes are placed with this machine's boot time.
    live: bool,
    /// Wall-clock time of uptime 0 in the log being read, learnt from its own lines.
    anchor: Option<f64>,
    last_uptime: Option<f64>,
    current: Option<Record>,
    lines: usize,
}

impl RecordSplitter {
    pub fn new(clock: Clock) -> Self {
        RecordSplitter {
            clock,
            live: true,
            anchor: None,
            last_uptime: None,
            current: None,
            lines: 0,
        }
    }

    /// Whether the lines that follow are this boot's live `/dev/kmsg` (the default): only then is this
    /// machine's boot time used to place uptimes on the wall clock.
    pub fn set_live(&mut self, live: bool) {
        if live != self.live {
            self.anchor = None;
            self.last_uptime = None;
        }
        self.live = live;
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
        let clock = if self.live {
            self.clock
        } else {
            Clock {
                boot_time_unix: None,
                ..self.clock
            }
        };
        let mut rec = parse_envelope(line.trim_start(), self.lines, clock);
        if !self.live {
            self.place(&mut rec);
        }
        self.current.replace(rec)
    }

    /// A record of a log from elsewhere: learn the log's own uptime-to-wall-clock offset from a line
    /// that prints both, and place uptimes with it (never past now).
    fn place(&mut self, r: &mut Record) {
        let Some(up) = r.uptime else {
            return;
        };
        // Uptime going back means the machine rebooted: the offset learnt before is another boot's.
        if self.last_uptime.is_some_and(|last| up + 1.0 < last) {
            self.anchor = None;
        }
        self.last_uptime = Some(up);
        match r.ts {
            Some(t) => self.anchor = Some(t - up),
            None => {
                r.ts = self.anchor.map(|a| a + up).filter(|t| {
                    t.is_finite()
                        && self
                            .clock
                            .now_unix
                            .is_none_or(|n| *t <= n + FUTURE_SLACK_SECS)
                });
            }
        }
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

/// Detect the envelope of one line and extract its timestamp, text and writer.
pub fn parse_envelope(line: &str, lineno: usize, clock: Clock) -> Record {
    let rec = |envelope, ts, text: &str, kernel| Record {
        line: lineno,
        envelope,
        ts,
        uptime: None,
        text: text.to_string(),
        kernel,
    };
    if line.starts_with('{') {
        // A structured log line: a journal entry says who wrote it; anything else is a program's log.
        return match journal_entry(line) {
            Some(e) => rec(Envelope::Journal, e.ts, &e.message, e.kernel),
            None => rec(Envelope::Plain, None, line, false),
        };
    }
    if let Some((ts, kernel, text)) = talos_envelope(line) {
        return rec(Envelope::Talos, Some(ts), text, kernel);
    }
    let (writer, line) = strip_level_prefix(line);
    let by_kernel = |k: bool| k && writer != Some(false);
    if let Some((pri, usec, text)) = kmsg_envelope(line) {
        let up = usec as f64 / 1e6;
        let ts = clock
            .boot_time_unix
            .map(|b| b + up)
            .filter(|t| t.is_finite());
        let mut r = rec(Envelope::Kmsg, ts, "", by_kernel(pri >> 3 == 0));
        r.text = unescape_kmsg(text);
        r.uptime = Some(up);
        return r;
    }
    if writer.is_some()
        && let Some((ts, tag, text)) = rfc5424_envelope(line)
    {
        return rec(Envelope::Syslog, ts, text, by_kernel(tag == "kernel"));
    }
    if let Some(d) = dmesg_envelope(line, clock) {
        let mut r = rec(Envelope::Dmesg, d.ts, d.text, by_kernel(d.kernel));
        r.uptime = d.uptime;
        return r;
    }
    if let Some((ts, tag, text)) = syslog_envelope(line, clock) {
        let kernel = tag == "kernel";
        let mut r = rec(Envelope::Syslog, ts, text, by_kernel(kernel));
        // A kernel line may carry its own `[ 123.456]` after `kernel:`; the syslog date wins, the
        // uptime is kept (it ties the log's uptimes to its clock).
        if kernel && let Some((stamp, t)) = strip_bracket_ts(text) {
            r.text = strip_caller_id(t).to_string();
            if let BracketTs::Monotonic(s) = stamp {
                r.uptime = Some(s);
            }
        }
        return r;
    }
    if let Some((tag, text)) = host_and_tag(line) {
        let kernel = tag == "kernel";
        let mut r = rec(Envelope::Syslog, None, text, by_kernel(kernel));
        // `kernel: [  123.456789] text`: the syslog line's date and host cut, its kernel stamp kept.
        if kernel && let Some((stamp, t)) = strip_bracket_ts(text) {
            r.text = strip_caller_id(t).to_string();
            r.uptime = stamp.uptime();
            if let BracketTs::Wall(w) = stamp {
                r.ts = Some(w);
            }
        }
        return r;
    }
    // A line that starts with a date this grammar knows but is in no envelope is a program's own log.
    let stamped = line
        .split_once(' ')
        .is_some_and(|(w, _)| parse_iso(w).is_some());
    rec(Envelope::Plain, None, line, by_kernel(!stamped))
}

/// `kernel: text` (a syslog line whose date and host were cut, as people paste them) or
/// `name[pid]: text` (another program's): the tag alone says who wrote it. Any other `word: ` start is
/// the message itself (`NVRM: …`, `nvidia-nvswitch0: …`).
fn bare_tag(line: &str) -> Option<(&str, &str)> {
    if let Some(text) = line.strip_prefix("kernel: ") {
        return Some(("kernel", text));
    }
    let (head, text) = line.split_once(": ")?;
    let (name, pid) = head.strip_suffix(']')?.split_once('[')?;
    let ok = !name.is_empty()
        && !name.contains(' ')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit());
    ok.then_some((name, text))
}

/// A syslog or journal line with only its date cut: `host kernel: text`, `host name[pid]: text` (every
/// writer puts the host between the date and the tag: rsyslog's templates `%TIMESTAMP% %HOSTNAME%
/// %syslogtag%`, syslog-ng's `$DATE $HOST $MSGHDR`, journalctl's short modes), or the tag alone
/// ([`bare_tag`]).
fn host_and_tag(line: &str) -> Option<(&str, &str)> {
    if let Some(t) = bare_tag(line) {
        return Some(t);
    }
    let (host, rest) = line.split_once(' ')?;
    let hostname = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !hostname {
        return None;
    }
    bare_tag(rest)
}

/// Facility names as dmesg, syslog and Talos print them (`syslog(3)`).
const FACILITIES: &[&str] = &[
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
/// Level names: dmesg's (`warn`) and Go's kmsg package, which Talos prints (`warning`).
const LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "err", "warn", "warning", "notice", "info", "debug",
];

/// `talosctl dmesg`: machined formats each kernel message as `%s: %7s: [%s]: %s` (facility, priority
/// right-aligned to 7, time in RFC 3339 with nanoseconds, text) and talosctl puts `<node>: ` in front
/// (siderolabs/talos, internal/app/machined/internal/server/v1alpha1/v1alpha1_server.go `Dmesg`,
/// cmd/talosctl/cmd/talos/dmesg.go). Returns (time, whether the kernel wrote it, text).
fn talos_envelope(line: &str) -> Option<(f64, bool, &str)> {
    talos_message(line)
        .or_else(|| {
            // talosctl's `<node>: ` is the node's name or address: one word.
            let (node, rest) = line.split_once(": ")?;
            let one_word = !node.is_empty()
                && node
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
            one_word.then(|| talos_message(rest))?
        })
        .or_else(|| talos_level(line.trim_start()).map(|(t, text)| (t, true, text)))
}

/// machined's layout with its facility cut: `%7s: [%s]: text` (the writer unsaid, as in a dmesg line
/// without `-x`).
fn talos_level(s: &str) -> Option<(f64, &str)> {
    let (level, rest) = s.split_once(": ")?;
    if !LEVELS.contains(&level) {
        return None;
    }
    let (stamp, text) = rest.strip_prefix('[')?.split_once("]: ")?;
    Some((parse_iso(stamp)?, text))
}

/// machined's own layout, without talosctl's node.
fn talos_message(s: &str) -> Option<(f64, bool, &str)> {
    let (fac, rest) = s.split_once(": ")?;
    if !FACILITIES.contains(&fac) {
        return None;
    }
    let (level, rest) = rest.trim_start().split_once(": ")?;
    if !LEVELS.contains(&level) {
        return None;
    }
    let (stamp, text) = rest.strip_prefix('[')?.split_once("]: ")?;
    Some((parse_iso(stamp)?, fac == "kern", text))
}

/// `dmesg -r` prints the syslog priority first (`<4>[  12.3] text`; facility × 8 + level), `dmesg -x`
/// the facility and level (`kern  :warn  : [  12.3] text`), a raw syslog line its `<PRI>`: all are
/// dropped before the envelope is detected. Returns whether they name the kernel as the writer.
fn strip_level_prefix(line: &str) -> (Option<bool>, &str) {
    if let Some(rest) = line.strip_prefix('<')
        && let Some((n, text)) = rest.split_once('>')
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|b| b.is_ascii_digit())
        && let Ok(pri) = n.parse::<u32>()
    {
        return (Some(pri >> 3 == 0), text);
    }
    let mut parts = line.splitn(3, ':');
    if let (Some(fac), Some(level), Some(text)) = (parts.next(), parts.next(), parts.next())
        && FACILITIES.contains(&fac.trim_end())
        && LEVELS.contains(&level.trim())
        && text.starts_with(' ')
    {
        return (Some(fac.trim_end() == "kern"), &text[1..]);
    }
    (None, line)
}

/// Whether a whitespace-led line starts a record of its own rather than continuing the previous one.
fn starts_own_record(t: &str) -> bool {
    t.starts_with('[')
        || talos_level(t).is_some()
        || t.contains("NVRM: Xid (")
        || t.contains("SXid (")
        || t.starts_with("NVRM: GPU at ")
        || kmsg_envelope(t).is_some()
}

/// `pri,seq,usec,flags[,...];text` -> (pri, usec, text).
fn kmsg_envelope(line: &str) -> Option<(u64, u64, &str)> {
    let (head, text) = line.split_once(';')?;
    let mut parts = head.split(',');
    let pri = parts.next()?;
    let seq = parts.next()?;
    let usec = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pri) || !digits(seq) || !digits(usec) {
        return None;
    }
    Some((pri.parse().ok()?, usec.parse().ok()?, text))
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

/// What a dmesg line says.
struct Dmesg<'a> {
    ts: Option<f64>,
    uptime: Option<f64>,
    text: &'a str,
    kernel: bool,
}

/// `[  123.456789] text` (uptime), `[Sat Nov 21 10:00:00 2026] text` (`dmesg -T`),
/// `2026-11-21T10:00:00,123456+00:00 text` (`dmesg --time-format iso`: util-linux writes the fraction
/// after a comma, which no syslog writer does), and `journalctl -o short-monotonic`'s
/// `[  123.456789] host kernel: text`.
fn dmesg_envelope(line: &str, clock: Clock) -> Option<Dmesg<'_>> {
    if !line.starts_with('[') {
        let (stamp, text) = line.split_once(' ')?;
        if !stamp.contains(',') {
            return None;
        }
        return Some(Dmesg {
            ts: Some(parse_iso(stamp)?),
            uptime: None,
            text,
            kernel: true,
        });
    }
    let (secs, text) = strip_bracket_ts(line)?;
    let text = strip_caller_id(text);
    let (text, kernel) = match short_monotonic_tag(text) {
        Some((tag, rest)) => (rest, tag == "kernel"),
        None => (text, true),
    };
    Some(match secs {
        BracketTs::Monotonic(s) => Dmesg {
            ts: clock
                .boot_time_unix
                .map(|b| b + s)
                .filter(|t| t.is_finite()),
            uptime: Some(s),
            text,
            kernel,
        },
        BracketTs::Wall(t) => Dmesg {
            ts: Some(t),
            uptime: None,
            text,
            kernel,
        },
        BracketTs::Unplaced => Dmesg {
            ts: None,
            uptime: None,
            text,
            kernel,
        },
    })
}

/// `host kernel: text` or `host name[pid]: text` after a short-monotonic journal stamp: (tag, text).
/// Only those two shapes: `pcieport 0000:00:01.0: AER: …` is a kernel message, not a host and a tag.
fn short_monotonic_tag(text: &str) -> Option<(&str, &str)> {
    let (host, rest) = text.split_once(' ')?;
    if host.is_empty() || host.ends_with(':') {
        return None;
    }
    if let Some(t) = rest.strip_prefix("kernel: ") {
        return Some(("kernel", t));
    }
    bare_tag(rest)
}

/// A kernel built with CONFIG_PRINTK_CALLER prints the caller after the time: `[  T1234] text`
/// (thread) or `[    C3] text` (CPU).
fn strip_caller_id(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix('[')
        && let Some((id, after)) = rest.split_once(']')
        && let Some(n) = id.trim_start().strip_prefix(['T', 'C'])
        && !n.is_empty()
        && n.len() <= 10
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        return after.strip_prefix(' ').unwrap_or(after);
    }
    text
}

/// RFC 5424 after its `<PRI>`: `1 TIMESTAMP HOST APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`;
/// returns (time, app name, message).
fn rfc5424_envelope(line: &str) -> Option<(Option<f64>, &str, &str)> {
    let mut f = line.strip_prefix("1 ")?.splitn(6, ' ');
    let (stamp, _host, app, _procid, _msgid) =
        (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let ts = match stamp {
        "-" => None,
        s => Some(parse_iso(s)?),
    };
    let msg = skip_structured_data(f.next().unwrap_or(""))?;
    // MSG may start with a UTF-8 byte order mark (RFC 5424 §6.4).
    Some((ts, app, msg.strip_prefix('\u{feff}').unwrap_or(msg)))
}

/// Past RFC 5424's STRUCTURED-DATA (`-` or `[id k="v" …]…`, `\]` and `\"` escaped inside values).
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let mut quoted = false;
        i += 1;
        loop {
            match *b.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let rest = s.get(i..)?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// One entry of `journalctl -o json` (one JSON object a line).
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// `__REALTIME_TIMESTAMP` (wall clock, microseconds in the journal).
    pub ts: Option<f64>,
    pub boot: Option<String>,
    pub message: String,
    /// The kernel wrote it: `_TRANSPORT=kernel` or `SYSLOG_IDENTIFIER=kernel`, and no field naming
    /// another writer. journald files a userspace write into `/dev/kmsg` under `_TRANSPORT=kernel` too,
    /// but with the writer's identifier and facility (systemd, src/journal/journald-kmsg.c).
    pub kernel: bool,
}

/// Parse one `journalctl -o json` line; None when it is not a JSON object with a `MESSAGE`.
pub fn journal_entry(line: &str) -> Option<JournalEntry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = v.get("MESSAGE").and_then(journal_text)?;
    let field = |k: &str| v.get(k).and_then(journal_text);
    let transport = field("_TRANSPORT");
    let ident = field("SYSLOG_IDENTIFIER");
    let facility = field("SYSLOG_FACILITY");
    let kernel = (transport.as_deref() == Some("kernel") || ident.as_deref() == Some("kernel"))
        && ident.as_deref().is_none_or(|i| i == "kernel")
        && facility.as_deref().is_none_or(|f| f == "0");
    let ts = v
        .get("__REALTIME_TIMESTAMP")
        .and_then(|t| t.as_str())
        .and_then(|t| t.parse::<u64>().ok())
        .map(|us| us as f64 / 1e6);
    Some(JournalEntry {
        ts,
        boot: field("_BOOT_ID"),
        message,
        kernel,
    })
}

/// A journal field as `journalctl -o json` prints it: a string, an array of bytes (not UTF-8) or an
/// array of values (a repeated field: the first).
fn journal_text(f: &serde_json::Value) -> Option<String> {
    match f {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_u64()) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|x| x.as_u64())
                .map(|b| b as u8)
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        serde_json::Value::Array(a) => a.first().and_then(|x| x.as_str()).map(str::to_string),
        _ => None,
    }
}

/// What a bracketed stamp says.
enum BracketTs {
    /// Seconds since boot.
    Monotonic(f64),
    /// Wall-clock time.
    Wall(f64),
    /// A stamp that places the line nowhere on its own: `dmesg -d`'s delta alone, `dmesg -e`'s deltas
    /// and its minute headers (`[Nov21 10:00]`, no year nor second).
    Unplaced,
}

impl BracketTs {
    fn uptime(&self) -> Option<f64> {
        match self {
            BracketTs::Monotonic(s) => Some(*s),
            _ => None,
        }
    }
}

/// A stamp in brackets at the start of `s`, as the tools print them, and the text after it:
/// - the kernel's own `[%5lu.%06lu]` (Linux kernel/printk/printk.c:1335 `print_time`; dmesg's default,
///   util-linux sys-utils/dmesg.c:1242; busybox dmesg passes the kernel's buffer through,
///   util-linux/dmesg.c:95-115 in mirror/busybox), and a bare integer `[123]` (hand-cut or from tools that
///   print whole seconds);
/// - `dmesg -T` `[%a %b %e %H:%M:%S %Y]` (dmesg.c:1076 `record_ctime`);
/// - the delta forms: `dmesg -d` `[<%12.06f>]` (dmesg.c:1218), with `-T` `[%s <%12.06f>]` (1213), with
///   the uptime `[%5ld.%06ld <%12.06f>]` (1247), journalctl `-o short-delta`
///   `[%5lu.%06lu <%5lu.%06lu >]` (systemd src/shared/logs-show.c:338-355 `output_timestamp_monotonic`);
/// - `dmesg -e` `[%b%e %H:%M]` then `[  %+8.06f]` (dmesg.c:1227-1236);
/// - an RFC 3339 time, Talos's `[%s]: ` with its facility and level cut.
fn strip_bracket_ts(s: &str) -> Option<(BracketTs, &str)> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = rest[..close].trim();
    let after = &rest[close + 1..];
    let text = after.strip_prefix(' ').unwrap_or(after);
    // A trailing delta `<…>` (with `*` or a space before `>` in the journal's) says nothing of its own.
    let head = match inner.strip_suffix('>').and_then(|i| i.rsplit_once('<')) {
        Some((head, delta)) if is_delta(delta) => head.trim(),
        _ => inner,
    };
    if head.is_empty() && inner.ends_with('>') {
        return Some((BracketTs::Unplaced, text));
    }
    // The caller field alone (`[  T1234] text`): the stamp before it was cut.
    if let Some(n) = head.strip_prefix(['T', 'C'])
        && !n.is_empty()
        && n.len() <= 10
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        return Some((BracketTs::Unplaced, text));
    }
    if let Some(secs) = uptime_secs(head) {
        return Some((BracketTs::Monotonic(secs), text));
    }
    if let Some(d) = head.strip_prefix(['+', '-'])
        && uptime_secs(d).is_some()
        && d.contains('.')
    {
        return Some((BracketTs::Unplaced, text));
    }
    let f: Vec<&str> = head.split_whitespace().collect();
    match f.as_slice() {
        // dmesg -T: `Sat Nov 21 10:00:00 2026`
        [_, mon, day, hms, year] => {
            let t = civil_time(mon, day, hms, year.parse().ok()?)?;
            Some((BracketTs::Wall(t), text))
        }
        // dmesg -e's minute header: `Nov21 10:00` or `Nov 1 10:00`.
        [md, hm] | [md, _, hm] if is_reltime_header(head) && hm.len() == 5 && md.len() >= 3 => {
            Some((BracketTs::Unplaced, text))
        }
        [stamp] => {
            let t = parse_iso(stamp)?;
            Some((BracketTs::Wall(t), after.strip_prefix(": ").unwrap_or(text)))
        }
        _ => None,
    }
}

/// `123.456789` or a whole `123`: seconds since boot.
fn uptime_secs(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('.').unwrap_or((s, ""));
    let digits = |x: &str, max: usize| x.len() <= max && x.bytes().all(|c| c.is_ascii_digit());
    (!a.is_empty() && digits(a, 12) && digits(b, 9) && !(s.ends_with('.')))
        .then(|| s.parse().ok())?
}

/// A delta as dmesg and journalctl print it inside `<…>`: `    0.000123`, `    0.000123 `, `    0.000123*`.
fn is_delta(d: &str) -> bool {
    let d = d.trim().trim_end_matches('*').trim_end();
    uptime_secs(d).is_some()
}

/// `%b%e %H:%M`: a month, a day (space-padded), hours and minutes.
fn is_reltime_header(h: &str) -> bool {
    let Some(mon) = h.get(..3) else {
        return false;
    };
    if time::month_from_abbrev(mon).is_none() {
        return false;
    }
    let mut it = h[3..].split_whitespace();
    let (Some(day), Some(hm), None) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    let Some((hh, mm)) = hm.split_once(':') else {
        return false;
    };
    day.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
        && hh.len() == 2
        && mm.len() == 2
        && hh.parse::<u32>().is_ok_and(|v| v < 24)
        && mm.parse::<u32>().is_ok_and(|v| v < 60)
}

fn civil_time(mon: &str, day: &str, hms: &str, year: i64) -> Option<f64> {
    let month = time::month_from_abbrev(mon)?;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let (h, m, s, frac) = parse_hms(hms)?;
    Some(time::unix_from_civil(year, month, day, h, m, s)? as f64 + frac)
}

fn parse_hms(hms: &str) -> Option<(u32, u32, u32, f64)> {
    let (whole, frac) = match hms.split_once(['.', ',']) {
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
    let (ts, rest) = if let Some((ts, rest)) = journal_full_stamp(line) {
        (ts, rest)
    } else if first.is_ascii_uppercase() {
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
        (Some(parse_iso(stamp).or_else(|| unix_stamp(stamp))?), rest)
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

/// journalctl `-o short-unix`: `%10ld.%06ld` seconds since the epoch (systemd
/// src/shared/logs-show.c:400 in 252.39).
fn unix_stamp(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('.')?;
    let ok = (9..=11).contains(&a.len())
        && b.len() == 6
        && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit());
    ok.then(|| s.parse().ok())?
}

/// journalctl `-o short-full` and `-o with-unit`: `format_timestamp`'s `%a %Y-%m-%d %H:%M:%S %Z`
/// (systemd src/basic/time-util.c:369-392 and src/shared/logs-show.c:380-390 in 252.39), e.g.
/// `Sat 2026-11-21 10:00:00 UTC`. A zone other than UTC or GMT has an offset the line does not say: the
/// envelope stands, its time is unknown. Returns (time, the rest after the zone).
fn journal_full_stamp(line: &str) -> Option<(Option<f64>, &str)> {
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let mut f = line.splitn(5, ' ');
    let (wd, date, hms, zone, rest) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    if !WEEKDAYS.contains(&wd)
        || zone.is_empty()
        || !zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'/' | b'_'))
    {
        return None;
    }
    let t = parse_iso(&format!("{date}T{hms}Z"))?;
    Some((matches!(zone, "UTC" | "GMT").then_some(t), rest))
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
    pub(in crate::kernel_log::grammar) fn clock() -> Clock {
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

    fn at(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> f64 {
        time::unix_from_civil(y, mo, d, h, mi, s).unwrap() as f64
    }

    /// (envelope, time, text, kernel) of one line read on the test clock.
    fn read(line: &str) -> (Envelope, Option<f64>, String, bool) {
        let r = parse_envelope(line, 1, clock());
        (r.envelope, r.ts, r.text, r.kernel)
    }

    const XID: &str = "NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=a, GPU has fallen off the bus.";

    #[test]
    fn every_real_envelope_is_the_kernels() {
        let wall = at(2026, 11, 21, 10, 0, 0);
        let cases: Vec<(String, Envelope, Option<f64>)> = vec![
            // /dev/kmsg, with and without the caller field.
            (
                format!("3,1234,5000000,-;{XID}"),
                Envelope::Kmsg,
                Some(1_795_250_005.0),
            ),
            (
                format!("3,1234,5000000,-,caller=T42;{XID}"),
                Envelope::Kmsg,
                Some(1_795_250_005.0),
            ),
            // dmesg: plain, -r, -x, -T, --time-format iso (comma fraction), a caller id.
            (
                format!("[    5.000000] {XID}"),
                Envelope::Dmesg,
                Some(1_795_250_005.0),
            ),
            (
                format!("<3>[    5.000000] {XID}"),
                Envelope::Dmesg,
                Some(1_795_250_005.0),
            ),
            (
                format!("kern  :err   : [    5.000000] {XID}"),
                Envelope::Dmesg,
                Some(1_795_250_005.0),
            ),
            (
                format!("[Sat Nov 21 10:00:00 2026] {XID}"),
                Envelope::Dmesg,
                Some(wall),
            ),
            (
                format!("2026-11-21T10:00:00,500000+00:00 {XID}"),
                Envelope::Dmesg,
                Some(wall + 0.5),
            ),
            (
                format!("kern  :err   : 2026-11-21T11:00:00,000000+01:00 {XID}"),
                Envelope::Dmesg,
                Some(wall),
            ),
            (
                format!("[    5.000000] [  T1234] {XID}"),
                Envelope::Dmesg,
                Some(1_795_250_005.0),
            ),
            // syslog files: RFC 3164 (kern.log, messages), rsyslog's ISO, a raw <PRI>, RFC 5424.
            (
                format!("Nov 21 10:00:00 gpu-node-5 kernel: {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!("Nov 21 10:00:00 gpu-node-5 kernel: [ 5.000000] {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!("2026-11-21T10:00:00.000000+00:00 gpu-node-5 kernel: {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!("<3>Nov 21 10:00:00 gpu-node-5 kernel: {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!("<3>1 2026-11-21T10:00:00Z gpu-node-5 kernel - - - {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!(
                    "<3>1 2026-11-21T10:00:00Z gpu-node-5 kernel - - [origin x=\"a]b\"][m y=\"1\"] {XID}"
                ),
                Envelope::Syslog,
                Some(wall),
            ),
            // journalctl: short, short-iso, short-precise, short-monotonic, JSON.
            (
                format!("Nov 21 10:00:00.250000 gpu-node-5 kernel: {XID}"),
                Envelope::Syslog,
                Some(wall + 0.25),
            ),
            (
                format!("2026-11-21T10:00:00+0000 gpu-node-5 kernel: {XID}"),
                Envelope::Syslog,
                Some(wall),
            ),
            (
                format!("[    5.000000] gpu-node-5 kernel: {XID}"),
                Envelope::Dmesg,
                Some(1_795_250_005.0),
            ),
            (
                format!(
                    r#"{{"__REALTIME_TIMESTAMP":"{}","_TRANSPORT":"kernel","SYSLOG_IDENTIFIER":"kernel","SYSLOG_FACILITY":"0","MESSAGE":"{XID}"}}"#,
                    (wall * 1e6) as u64
                ),
                Envelope::Journal,
                Some(wall),
            ),
            // talosctl dmesg, with and without the node talosctl prints first.
            (
                format!("172.20.1.2: kern:    info: [2026-11-21T10:00:00.5Z]: {XID}"),
                Envelope::Talos,
                Some(wall + 0.5),
            ),
            (
                format!("kern:     err: [2026-11-21T10:00:00Z]: {XID}"),
                Envelope::Talos,
                Some(wall),
            ),
            // What people paste: the tag with date and host cut; `journalctl -k -o cat`, `dmesg -t`.
            (format!("kernel: {XID}"), Envelope::Syslog, None),
            (XID.to_string(), Envelope::Plain, None),
        ];
        for (line, envelope, ts) in cases {
            let (e, t, text, kernel) = read(&line);
            assert_eq!(
                (e, t, text.as_str(), kernel),
                (envelope, ts, XID, true),
                "{line}"
            );
        }
    }

    #[test]
    fn another_programs_line_is_not_the_kernels() {
        let hostile = [
            // A JSON log field, and a journal entry of another writer (a program's write into kmsg).
            format!(r#"{{"level":"info","msg":"{XID}"}}"#),
            format!(
                r#"{{"_TRANSPORT":"kernel","SYSLOG_IDENTIFIER":"inject","SYSLOG_FACILITY":"1","MESSAGE":"{XID}"}}"#
            ),
            format!(
                r#"{{"_TRANSPORT":"stdout","SYSLOG_IDENTIFIER":"dcgm-exporter","MESSAGE":"{XID}"}}"#
            ),
            // Another syslog tag, in every syslog layout.
            format!("Nov 21 10:00:00 gpu-node-5 myapp[123]: {XID}"),
            format!("2026-11-21T10:00:00.1+00:00 gpu-node-5 node-problem-detector[9]: {XID}"),
            format!("<14>1 2026-11-21T10:00:00Z gpu-node-5 myapp 123 - - {XID}"),
            format!("<3>1 2026-11-21T10:00:00Z gpu-node-5 myapp 123 - - {XID}"),
            format!("myapp[123]: {XID}"),
            format!("[    5.000000] gpu-node-5 myapp[123]: {XID}"),
            // Userspace writes into /dev/kmsg: facility user or syslog, in kmsg, dmesg -r, -x, Talos.
            format!("12,99,5000000,-;{XID}"),
            format!("<12>[    5.000000] {XID}"),
            format!("syslog:err   : 2026-11-21T10:00:00,089671+00:00 {XID}"),
            format!("user  :warn  : [    5.000000] {XID}"),
            format!("10.0.0.2: user: warning: [2026-11-21T10:00:00Z]: {XID}"),
            // A program's own timestamped log line.
            format!("2026-11-21T10:00:00Z level=info msg=\"{XID}\""),
            format!("2026-11-21T10:00:00Z {XID}"),
        ];
        for line in &hostile {
            let (_, _, _, kernel) = read(line);
            assert!(!kernel, "read as the kernel's: {line}");
        }
        // Lines with no envelope whose text quotes the driver: the envelope cannot tell, the line
        // grammar refuses them because the driver's prefix does not start the message.
        let quoted = [
            format!("2024/05/01 12:00:00 kernel says {XID}"),
            format!("msg: \"{XID}\""),
            format!("I0501 12:00:00.000000       1 log_monitor.go:160] New status: {XID}"),
        ];
        for line in &quoted {
            let r = parse_envelope(line, 1, clock());
            assert!(
                super::super::parse_line(&r.text).is_none()
                    && !super::super::may_be_nvidia(&r.text),
                "{line}"
            );
        }
    }

    #[test]
    fn a_foreign_logs_uptimes_stay_relative_or_take_the_logs_own_clock() {
        let mut s = RecordSplitter::new(clock());
        s.set_live(false);
        let recs: Vec<Record> = [
            "[  100.000000] NVRM: a",
            "Nov 21 10:00:00 h kernel: [  200.000000] NVRM: b",
            "[  260.500000] NVRM: c",
            // A reboot: uptime goes back, the anchor is the last boot's.
            "[    3.000000] NVRM: d",
        ]
        .iter()
        .filter_map(|l| s.push(l))
        .collect();
        let recs: Vec<Record> = recs.into_iter().chain(s.finish()).collect();
        let got: Vec<(Option<f64>, Option<f64>)> = recs.iter().map(|r| (r.ts, r.uptime)).collect();
        let wall = at(2026, 11, 21, 10, 0, 0);
        assert_eq!(
            got,
            vec![
                (None, Some(100.0)),
                (Some(wall), Some(200.0)),
                (Some(wall + 60.5), Some(260.5)),
                (None, Some(3.0)),
            ]
        );
        // This machine's boot time would have put uptime 1e6 s (11.6 days) after a 9,957 s old boot: in
        // the future. Relative, it stays unplaced; an anchor that would land in the future is refused.
        let mut s = RecordSplitter::new(clock());
        s.set_live(false);
        s.push("[1000000.000000] NVRM: far");
        let r = s.finish().unwrap();
        assert_eq!((r.ts, r.uptime), (None, Some(1_000_000.0)));
        let mut s = RecordSplitter::new(clock());
        s.set_live(false);
        s.push("Nov 21 10:00:00 h kernel: [    1.000000] NVRM: a");
        s.push("[9000000.000000] NVRM: b");
        let r = s.finish().unwrap();
        assert_eq!(r.ts, None);
        // Live kmsg: this boot's time places it.
        let mut s = RecordSplitter::new(clock());
        s.push("[  100.000000] NVRM: a");
        assert_eq!(s.finish().unwrap().ts, Some(1_795_250_100.0));
    }
}
