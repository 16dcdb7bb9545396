//! The `xid` analysis: kernel-log lines in, the bounded report out. Lines stream through the grammar,
//! extraction and correlation one at a time, so time is linear and memory is bounded whatever the log's
//! size: counts, bursts and findings are exact; the per-event list is complete for a small log and
//! holds a few samples per GPU and code for a large one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::catalog;
use super::correlate::{self, BurstCodes, Class, GpuHistory, Needs};
use super::event::Pending;
use super::extract::{self, Extractor};
use super::grammar::{Clock, Envelope, Record, RecordSplitter};
use super::history::{History, Route};
use crate::facts::{FieldError, NodeFacts, Reading};
use crate::finding::{Action, ActionKind, Finding, Severity, Verdict};
use crate::options::AnalysisOptions;
use crate::pci::normalize_bus_id;

use super::contract::HistorySource;
pub use super::contract::{
    Burst, CatalogStatus, CodeCount, DecodedDetail, EventDetail, EventKind, GpuXidSummary,
    LogSummary, NodeXidVerdict, RecoveryAction, XidEvent, XidReport,
};

/// Up to this many events the report lists every one; beyond it, `SAMPLES_PER_GROUP` first ones and
/// the last one of each GPU, kind and code (a storm is thousands of the same line).
pub const MAX_LISTED_EVENTS: usize = 500;
pub const SAMPLES_PER_GROUP: usize = 3;
/// The most distinct (PCI id, event kind, code) groups one analysis follows. A node's log names a few
/// GPUs and a few dozen codes; a log naming more (hostile or corrupt: random PCI ids or codes) would
/// otherwise make the per-GPU state, the listed samples and the report grow with it, and the GPU lookup
/// quadratic. Events of further groups are counted in `log.events_not_analyzed`.
pub const MAX_EVENT_GROUPS: usize = 256;
/// Evidence lines quoted per finding.
const EVIDENCE_LINES: usize = 5;

struct GpuRow {
    pci: Option<String>,
    index: Option<u32>,
    uuid: Option<String>,
    uuid_source: Option<&'static str>,
    recovery_action: Option<u32>,
    sram_threshold_exceeded: Option<bool>,
    mig: Vec<(Option<u32>, Option<u32>, Option<String>)>,
}

/// Interpret the kernel log (and NVML XID events) of one node.
pub fn analyze(facts: &NodeFacts, opts: &AnalysisOptions) -> XidReport {
    let mut a = XidAnalyzer::new(facts, opts);
    match &facts.kernel_log {
        Reading::Ok(k) => {
            a.set_origin(&k.origin);
            for l in &k.lines {
                a.push_line(l);
            }
            a.finish(LogEnd::Read {
                truncated: k.truncated,
            })
        }
        Reading::Err(e) => a.finish(LogEnd::Unreadable(e.clone())),
    }
}

/// How the kernel-log input ended.
#[derive(Debug, Clone)]
pub enum LogEnd {
    /// Read to the end; `truncated` when the reader dropped records (overwritten, or over its cap).
    Read { truncated: bool },
    /// Could not be read at all.
    Unreadable(FieldError),
}

/// A finding in the making: counts and the first evidence, with the classification's candidates.
struct Agg {
    count: usize,
    first_seq: usize,
    first: Pending,
    /// The first `EVIDENCE_LINES` evidence lines, with their sequence numbers (for merging).
    samples: Vec<(usize, String)>,
    /// Per (severity, action): the first event's sequence number and the reason. The finding takes
    /// the worst, and among equals the earliest (what a pass in log order would keep).
    best: BTreeMap<(Severity, ActionKind), (usize, String)>,
}

impl Agg {
    fn new(seq: usize, p: &Pending) -> Self {
        Agg {
            count: 0,
            first_seq: seq,
            first: p.clone(),
            samples: Vec::new(),
            best: BTreeMap::new(),
        }
    }

    fn add(&mut self, seq: usize, line: impl FnOnce() -> String) {
        self.count += 1;
        if self.samples.len() < EVIDENCE_LINES {
            self.samples.push((seq, line()));
        }
    }

    fn candidate(&mut self, seq: usize, c: Class) {
        let slot = self
            .best
            .entry((c.severity, c.action))
            .or_insert((seq, c.detail.clone()));
        if seq < slot.0 {
            *slot = (seq, c.detail);
        }
    }

    fn merge(&mut self, o: Agg) {
        self.count += o.count;
        if o.first_seq < self.first_seq {
            self.first_seq = o.first_seq;
            self.first = o.first;
        }
        self.samples.extend(o.samples);
        self.samples.sort_by_key(|(s, _)| *s);
        self.samples.truncate(EVIDENCE_LINES);
        for ((sev, act), (seq, detail)) in o.best {
            self.candidate(
                seq,
                Class {
                    severity: sev,
                    action: act,
                    detail,
                },
            );
        }
    }

    fn class(&self) -> Class {
        let ((severity, action), (_, detail)) = self
            .best
            .iter()
            .next_back()
            .map(|(k, v)| (*k, v.clone()))
            .unwrap_or((
                (Severity::Warning, ActionKind::Investigate),
                (0, String::new()),
            ));
        Class {
            severity,
            action,
            detail,
        }
    }

    fn evidence(&self) -> Vec<String> {
        let mut out: Vec<String> = self.samples.iter().map(|(_, s)| s.clone()).collect();
        if self.count > self.samples.len() {
            out.push(format!("… and {} more", self.count - self.samples.len()));
        }
        out
    }
}

/// Events of one burst whose class waits for the burst to close, grouped by what decides it.
struct Deferred {
    finding: String,
    code: Option<u32>,
    caused_by: Option<u32>,
    first_seq: usize,
    rep: Pending,
}

/// What the analysis keeps per GPU key (None: events tied to no GPU).
#[derive(Default)]
struct KeyState {
    hist: GpuHistory,
    /// Finding code -> aggregate (per GPU); node-level ones are keyed by code@pci and kept in
    /// first-seen order in `order`.
    aggs: BTreeMap<String, Agg>,
    order: Vec<String>,
    events: usize,
    counts: BTreeMap<u32, CodeCount>,
    last_transition: Option<RecoveryAction>,
    fallen: bool,
    has_79: bool,
    deferred: Vec<Deferred>,
    /// First Xid 13 and 31 (their class is the GPU's, known at the end).
    first_13: Option<(usize, Pending)>,
    first_31: Option<(usize, Pending)>,
    /// First and last Xid 154 with a readable transition.
    first_154: Option<(usize, Pending)>,
    last_154: Option<(usize, Pending)>,
}

struct Listed {
    p: Pending,
    codes: Option<BurstCodes>,
    burst: Option<usize>,
}

#[derive(Default)]
struct SampleGroup {
    first: usize,
    last: Option<usize>,
}

/// The streaming analysis: `push_line` each raw line in order, then `finish`.
pub struct XidAnalyzer {
    since: Option<f64>,
    log: LogSummary,
    split: RecordSplitter,
    extract: Extractor,
    rows: Vec<GpuRow>,
    nvml: Vec<Pending>,
    nvml_in_log: Vec<bool>,
    seq: usize,
    keys: HashMap<Option<String>, KeyState>,
    listed: BTreeMap<usize, Listed>,
    groups: HashMap<(Option<String>, EventKind, Option<u32>), SampleGroup>,
    /// Every (PCI id, kind, code) group admitted so far, at most [`MAX_EVENT_GROUPS`].
    tracked: HashSet<(Option<String>, EventKind, Option<u32>)>,
    capped: bool,
    history: History,
    /// The lines now arriving come from a history source (journal, text log).
    from_history: bool,
}

impl XidAnalyzer {
    /// Set up with the node's GPU inventory, NVML events and clock (the kernel log is pushed after).
    pub fn new(facts: &NodeFacts, opts: &AnalysisOptions) -> Self {
        let clock = Clock {
            boot_time_unix: facts.host.boot_time_unix.get(),
            now_unix: facts.host.now_unix.get(),
        };
        let mut log = LogSummary {
            since: opts.since_unix.and_then(super::time::rfc3339),
            ..LogSummary::default()
        };
        let nvml: Vec<Pending> = match facts.nvml_xid_events.ok() {
            Some(n) => {
                log.nvml_events = Some(n.len());
                n.iter().map(extract::nvml_event).collect()
            }
            None => Vec::new(),
        };
        XidAnalyzer {
            since: opts.since_unix,
            log,
            split: RecordSplitter::new(clock),
            extract: Extractor::default(),
            rows: gpu_table(facts),
            nvml_in_log: vec![false; nvml.len()],
            nvml,
            seq: 0,
            keys: HashMap::new(),
            listed: BTreeMap::new(),
            groups: HashMap::new(),
            tracked: HashSet::new(),
            capped: false,
            history: History::new(
                facts.host.boot_id.ok().map(String::as_str),
                clock.boot_time_unix,
                opts.since_unix,
            ),
            from_history: false,
        }
    }

    /// Also summarise earlier boots from history sources (`begin_source(true)`, `push_record`).
    pub fn enable_history(&mut self) {
        self.history.enable();
    }

    /// The lines that follow come from a history source (journal, text log) or not (`/dev/kmsg`, a
    /// `--log-file`); a record in progress is finished first.
    pub fn begin_source(&mut self, history: bool) {
        if let Some(r) = self.split.finish() {
            self.record(r);
        }
        self.from_history = history;
    }

    /// Report a history source (read or not) in the history section.
    pub fn add_history_source(&mut self, s: HistorySource) {
        self.history.add_source(s);
    }

    /// History records from this time on are skipped: a later source has them (`/dev/kmsg` for the
    /// current boot, the journal for a text log).
    pub fn history_until(&mut self, ts: Option<f64>) {
        self.history.kmsg_from(ts);
    }

    /// Kernel messages taken since the last call (history sources only), with the oldest and newest
    /// time: how far back the source goes.
    pub fn take_source_stats(&mut self) -> (usize, Option<f64>, Option<f64>) {
        if let Some(r) = self.split.finish() {
            self.record(r);
        }
        self.history.take_stats()
    }

    /// The following records belong to this boot (the journal's `_BOOT_ID`).
    pub fn set_boot(&mut self, id: Option<&str>) {
        self.history.set_boot(id);
    }

    /// The following records are the current boot's (`/dev/kmsg`).
    pub fn set_current_boot(&mut self) {
        self.history.set_current();
    }

    /// One kernel message that arrives as a record already (a journal entry): its time and text.
    pub fn push_record(&mut self, ts: Option<f64>, text: &str) {
        let line = self.split.count_line();
        self.record(Record {
            line,
            envelope: Envelope::Plain,
            ts,
            text: text.to_string(),
            kernel: true,
        });
    }

    fn record(&mut self, r: Record) {
        let route = self.history.route(r.ts, &r.text, self.from_history);
        if route == Route::Skip {
            return;
        }
        if let Some(p) = self.extract.push(&r) {
            let group = (p.event.pci_bus_id.clone(), p.event.kind, p.event.code);
            if !self.tracked.contains(&group) {
                if self.tracked.len() >= MAX_EVENT_GROUPS {
                    self.log.events_not_analyzed += 1;
                    return;
                }
                self.tracked.insert(group);
            }
            let earlier = route == Route::Earlier;
            self.history.event(&p, earlier);
            if !earlier {
                self.log_event(p);
            }
        }
    }

    /// Where the lines come from: `kmsg`, `file:<path>`, `simulated`.
    pub fn set_origin(&mut self, origin: &str) {
        self.log.origin = Some(origin.to_string());
    }

    /// Feed the next raw line of the kernel log.
    pub fn push_line(&mut self, line: &str) {
        if let Some(r) = self.split.push(line) {
            self.record(r);
        }
    }

    fn log_event(&mut self, p: Pending) {
        // The log is read after the watch, so an Xid NVML delivered is usually in it too.
        if p.event.kind == EventKind::Xid {
            for (n, seen) in self.nvml.iter().zip(self.nvml_in_log.iter_mut()) {
                *seen |= same_xid(n, &p);
            }
        }
        // Identity lines are printed once per boot, so they count even outside the --since window.
        if p.event.kind == EventKind::GpuIdentity
            && let (Some(pci), Some(uuid)) = (&p.event.pci_bus_id, &p.event.gpu_uuid)
        {
            learn_identity(&mut self.rows, pci, uuid);
        }
        self.admit(p);
    }

    fn admit(&mut self, mut p: Pending) {
        if let Some(since) = self.since
            && p.ts.is_some_and(|t| t < since)
        {
            self.log.events_before_since += 1;
            return;
        }
        let seq = self.seq;
        self.seq += 1;
        attribute(&mut p, &mut self.rows);
        let view = self.view(&p.gpu_key);
        let key = p.gpu_key.clone();
        let node_level = key.is_none();
        let st = self.keys.entry(key.clone()).or_default();
        st.events += 1;

        let mut placement = None;
        if p.event.kind == EventKind::Xid {
            let pl = st.hist.push_xid(&p, seq);
            if let Some(closed) = &pl.closed {
                resolve_burst(st, &closed.borrow(), view.as_ref());
            }
            placement = Some((pl.burst, pl.codes));
            if let Some(code) = p.event.code {
                let c = st.counts.entry(code).or_insert_with(|| CodeCount {
                    code,
                    mnemonic: p.event.mnemonic.clone(),
                    count: 0,
                    first: p.event.timestamp.clone(),
                    last: None,
                });
                c.count += 1;
                c.last = p.event.timestamp.clone();
            }
            if let Some(DecodedDetail::RecoveryAction { to, to_name, .. }) = &p.detail.decoded {
                st.last_transition = Some(RecoveryAction {
                    value: *to,
                    name: to_name.clone(),
                });
            }
            st.has_79 |= p.event.code == Some(79);
        }
        st.fallen |= p.event.kind == EventKind::FallenOffBus || p.event.code == Some(79);

        // The finding this event counts towards, and its classification (now or when known).
        if p.event.kind != EventKind::GpuIdentity {
            let mut finding = correlate::finding_code(&p, false);
            if node_level
                && p.event.kind == EventKind::Sxid
                && let Some(pci) = &p.event.pci_bus_id
            {
                finding = format!("{finding}@{pci}");
            }
            let agg = st.aggs.entry(finding.clone()).or_insert_with(|| {
                st.order.push(finding.clone());
                Agg::new(seq, &p)
            });
            agg.add(seq, || evidence_line(&p, node_level));
            match correlate::needs(&p) {
                Needs::Event => {
                    let ctx = st.hist.ctx(&p, None, seq, 0, view.as_ref());
                    if let Some(c) = correlate::classify_event(&p, &ctx) {
                        agg.candidate(seq, c);
                    }
                }
                Needs::Burst => {
                    let (code, caused_by) = (p.event.code, p.detail.caused_by_xid);
                    // `caused_by` comes from the line: a hostile log could vary it without end.
                    if st.deferred.len() < MAX_EVENT_GROUPS
                        && !st.deferred.iter().any(|d| {
                            d.finding == finding && d.code == code && d.caused_by == caused_by
                        })
                    {
                        st.deferred.push(Deferred {
                            finding,
                            code,
                            caused_by,
                            first_seq: seq,
                            rep: p.clone(),
                        });
                    }
                }
                Needs::History => {
                    let slot = match p.event.code {
                        Some(13) => &mut st.first_13,
                        Some(31) => &mut st.first_31,
                        _ => &mut st.first_154,
                    };
                    if slot.is_none() {
                        *slot = Some((seq, p.clone()));
                    }
                    if p.event.code == Some(154) {
                        st.last_154 = Some((seq, p.clone()));
                    }
                }
            }
        }

        self.list(seq, p, placement);
    }

    /// Keep the event for the per-event list: all of them until the cap, then samples per group.
    fn list(&mut self, seq: usize, p: Pending, placement: Option<(usize, BurstCodes)>) {
        let g = self
            .groups
            .entry((p.gpu_key.clone(), p.event.kind, p.event.code))
            .or_default();
        let (burst, codes) = match placement {
            Some((b, c)) => (Some(b), Some(c)),
            None => (None, None),
        };
        let entry = Listed { p, codes, burst };
        if g.first < SAMPLES_PER_GROUP {
            g.first += 1;
            self.listed.insert(seq, entry);
        } else {
            let old = g.last.replace(seq);
            if self.capped
                && let Some(old) = old
            {
                self.listed.remove(&old);
            }
            self.listed.insert(seq, entry);
        }
        if !self.capped && self.listed.len() > MAX_LISTED_EVENTS {
            self.capped = true;
            let keep: BTreeSet<usize> = self.groups.values().filter_map(|g| g.last).collect();
            // Firsts are the lowest sequence numbers of their group: keep the group's first ones.
            let mut taken: HashMap<(Option<String>, EventKind, Option<u32>), usize> =
                HashMap::new();
            self.listed.retain(|seq, l| {
                let k = (l.p.gpu_key.clone(), l.p.event.kind, l.p.event.code);
                let n = taken.entry(k).or_default();
                *n += 1;
                *n <= SAMPLES_PER_GROUP || keep.contains(seq)
            });
        }
    }

    fn view(&self, key: &Option<String>) -> Option<correlate::GpuView> {
        let key = key.as_ref()?;
        self.rows
            .iter()
            .find(|r| r.pci.as_ref() == Some(key))
            .map(|r| correlate::GpuView {
                key: r.pci.clone(),
                index: r.index,
                recovery_action: r.recovery_action,
                sram_threshold_exceeded: r.sram_threshold_exceeded,
            })
    }

    /// Close the input and assemble the report.
    pub fn finish(mut self, end: LogEnd) -> XidReport {
        let complete = match end {
            LogEnd::Read { truncated } => {
                self.log.truncated = truncated;
                true
            }
            LogEnd::Unreadable(e) => {
                self.log.error = Some(e);
                false
            }
        };
        if let Some(r) = self.split.finish() {
            self.record(r);
        }
        self.log.lines = self.split.lines();
        self.log.records = self.extract.records();
        self.log.unrecognized_nvidia_lines = self.extract.unrecognized;
        let nvml = std::mem::take(&mut self.nvml);
        let in_log = std::mem::take(&mut self.nvml_in_log);
        let mut admitted: Vec<Pending> = Vec::new();
        for (p, seen) in nvml.into_iter().zip(in_log) {
            // A repeat of an NVML event already taken counts once, like one already in the log.
            if !seen && !admitted.iter().any(|a| same_xid(a, &p)) {
                admitted.push(p.clone());
                self.admit(p);
            }
        }

        // Close every burst, then resolve what waited for it and for the GPU's whole history.
        let keys_with_31: BTreeSet<Option<String>> = self
            .keys
            .iter()
            .filter(|(_, s)| s.hist.has_31())
            .map(|(k, _)| k.clone())
            .collect();
        let views: HashMap<Option<String>, Option<correlate::GpuView>> = self
            .keys
            .keys()
            .map(|k| (k.clone(), self.view(k)))
            .collect();
        for (key, st) in self.keys.iter_mut() {
            let view = views.get(key).cloned().flatten();
            if let Some(codes) = st.hist.close() {
                resolve_burst(st, &codes.borrow(), view.as_ref());
            }
            let others = keys_with_31.iter().filter(|k| *k != key).count();
            resolve_history(st, others, view.as_ref());
        }

        // The listed events, classified with their final context.
        self.log.events_not_listed = self.seq - self.listed.len();
        let mut events = Vec::with_capacity(self.listed.len());
        let mut details = Vec::with_capacity(self.listed.len());
        for (i, (seq, l)) in std::mem::take(&mut self.listed).into_iter().enumerate() {
            let mut p = l.p;
            let st = &self.keys[&p.gpu_key];
            let view = views.get(&p.gpu_key).cloned().flatten();
            let others = keys_with_31.iter().filter(|k| **k != p.gpu_key).count();
            let codes = l.codes.as_ref().map(|c| c.borrow().clone());
            let ctx = st.hist.ctx(&p, codes.as_ref(), seq, others, view.as_ref());
            if let Some(c) = correlate::classify_event(&p, &ctx) {
                p.detail.severity = Some(c.severity);
                p.detail.action = Some(c.action);
                p.detail.reason = Some(c.detail);
            }
            p.detail.burst = match (&p.gpu_key, l.burst) {
                (Some(_), Some(b)) => st.hist.listed_index(b),
                _ => None,
            };
            if let Some(key) = &p.gpu_key
                && p.event.gpu_uuid.is_none()
            {
                p.event.gpu_uuid = self
                    .rows
                    .iter()
                    .find(|r| r.pci.as_ref() == Some(key))
                    .and_then(|r| r.uuid.clone());
            }
            p.detail.event = i;
            events.push(p.event);
            details.push(p.detail);
        }

        let mut findings: Vec<Finding> = Vec::new();
        let mut summaries: Vec<GpuXidSummary> = Vec::new();
        for row in &self.rows {
            let st = match &row.pci {
                Some(k) => self.keys.remove(&Some(k.clone())),
                None => None,
            };
            let (summary, mut f) = summarize_gpu(row, st.unwrap_or_default());
            findings.append(&mut f);
            summaries.push(summary);
        }
        if let Some(st) = self.keys.remove(&None) {
            findings.extend(node_level_findings(st));
        }
        let rows = &self.rows;
        let history = self.history.finish(|pci| {
            rows.iter()
                .find(|r| r.pci.as_deref() == Some(pci))
                .map_or((None, None), |r| (r.index, r.uuid.clone()))
        });
        let history = history.map(|(h, f)| {
            findings.extend(f);
            h
        });
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.gpu.cmp(&b.gpu))
                .then(a.code.cmp(&b.code))
        });

        let node = node_verdict(&findings, complete, &self.log);
        XidReport {
            log: self.log,
            events,
            event_details: details,
            gpus: summaries,
            node,
            findings,
            history,
        }
    }
}

/// Classify the events that waited for their burst to close.
fn resolve_burst(
    st: &mut KeyState,
    codes: &BTreeMap<u32, usize>,
    view: Option<&correlate::GpuView>,
) {
    for d in std::mem::take(&mut st.deferred) {
        let ctx = st.hist.ctx(&d.rep, Some(codes), d.first_seq, 0, view);
        if let (Some(c), Some(agg)) = (
            correlate::classify_event(&d.rep, &ctx),
            st.aggs.get_mut(&d.finding),
        ) {
            agg.candidate(d.first_seq, c);
        }
    }
}

/// Classify the events whose class is the GPU's (Xid 13, 31) or depends on being the last (154).
fn resolve_history(st: &mut KeyState, xid31_other_gpus: usize, view: Option<&correlate::GpuView>) {
    let last_154 = st.hist.last_154;
    let mut reps: Vec<(usize, Pending)> = Vec::new();
    reps.extend(st.first_13.take());
    reps.extend(st.first_31.take());
    let first_154 = st.first_154.take();
    let latest_154 = st.last_154.take();
    // The earliest superseded 154 speaks for all superseded ones (same severity, earliest wins).
    if let Some((s, p)) = first_154
        && Some(s) != last_154
    {
        reps.push((s, p));
    }
    if let Some((s, p)) = latest_154
        && Some(s) == last_154
    {
        reps.push((s, p));
    }
    for (seq, p) in reps {
        let ctx = st.hist.ctx(&p, None, seq, xid31_other_gpus, view);
        let finding = correlate::finding_code(&p, false);
        if let (Some(c), Some(agg)) = (
            correlate::classify_event(&p, &ctx),
            st.aggs.get_mut(&finding),
        ) {
            agg.candidate(seq, c);
        }
    }
}

/// The same Xid reported twice (NVML and the log): same code and GPU, within ten seconds.
fn same_xid(a: &Pending, b: &Pending) -> bool {
    a.event.code == b.event.code
        && a.event.pci_bus_id == b.event.pci_bus_id
        && match (a.ts, b.ts) {
            (Some(x), Some(y)) => (x - y).abs() <= 10.0,
            _ => true,
        }
}

fn evidence_line(p: &Pending, node_level: bool) -> String {
    let ts = p.event.timestamp.as_deref().unwrap_or("(no timestamp)");
    if node_level {
        let code = match (p.event.kind, p.event.code) {
            (EventKind::Sxid, Some(c)) => format!("{c:05} "),
            _ => String::new(),
        };
        format!(
            "line {} {ts}: {code}{}",
            p.event.line.unwrap_or(0),
            p.event.message
        )
    } else {
        format!(
            "{} {ts}: {}",
            p.event
                .line
                .map_or_else(|| "nvml event".to_string(), |l| format!("line {l}")),
            p.event.message
        )
    }
}

fn gpu_table(facts: &NodeFacts) -> Vec<GpuRow> {
    facts
        .gpus
        .iter()
        .map(|g| GpuRow {
            pci: g.pci_bus_id.ok().and_then(|p| normalize_bus_id(p)),
            index: Some(g.index),
            uuid: g
                .uuid
                .ok()
                .map(|u| u.to_ascii_lowercase().replacen("gpu-", "GPU-", 1)),
            uuid_source: g.uuid.is_ok().then_some("nvml"),
            recovery_action: g.recovery_action.get(),
            sram_threshold_exceeded: g.ecc.sram_threshold_exceeded.get(),
            mig: g
                .mig_devices
                .iter()
                .map(|m| {
                    (
                        m.gpu_instance_id.get(),
                        m.compute_instance_id.get(),
                        m.uuid.ok().cloned(),
                    )
                })
                .collect(),
        })
        .collect()
}

fn learn_identity(rows: &mut Vec<GpuRow>, pci: &str, uuid: &str) {
    if let Some(r) = rows.iter_mut().find(|r| r.pci.as_deref() == Some(pci)) {
        if r.uuid.is_none() {
            r.uuid = Some(uuid.to_string());
            r.uuid_source = Some("kernel_log");
        }
        return;
    }
    // The inventory may know the UUID under another PCI form only if normalisation failed; match by UUID.
    if let Some(r) = rows.iter_mut().find(|r| {
        r.uuid
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(uuid))
    }) {
        if r.pci.is_none() {
            r.pci = Some(pci.to_string());
        }
        return;
    }
    rows.push(GpuRow {
        pci: Some(pci.to_string()),
        index: None,
        uuid: Some(uuid.to_string()),
        uuid_source: Some("kernel_log"),
        recovery_action: None,
        sram_threshold_exceeded: None,
        mig: Vec::new(),
    });
}

/// Map an event to its GPU row (creating one for a GPU only the log knows) and fill UUID and MIG device.
fn attribute(p: &mut Pending, rows: &mut Vec<GpuRow>) {
    if matches!(p.event.kind, EventKind::Sxid | EventKind::CrashDump) {
        return;
    }
    let Some(pci) = p.event.pci_bus_id.clone() else {
        return;
    };
    let pos = match rows
        .iter()
        .position(|r| r.pci.as_deref() == Some(pci.as_str()))
    {
        Some(i) => i,
        None => {
            rows.push(GpuRow {
                pci: Some(pci.clone()),
                index: None,
                uuid: None,
                uuid_source: None,
                recovery_action: None,
                sram_threshold_exceeded: None,
                mig: Vec::new(),
            });
            rows.len() - 1
        }
    };
    let row = &rows[pos];
    p.gpu_key = Some(pci);
    p.detail.gpu_index = row.index;
    if p.event.gpu_uuid.is_none() {
        p.event.gpu_uuid = row.uuid.clone();
    }
    if let Some(gi) = p.event.gpu_instance_id {
        let ci = p.event.compute_instance_id;
        p.detail.mig_device_uuid = row
            .mig
            .iter()
            .find(|(g, c, _)| *g == Some(gi) && (ci.is_none() || *c == ci))
            .and_then(|(_, _, u)| u.clone());
    }
}

fn gpu_label(row_index: Option<u32>, pci: Option<&str>) -> String {
    match (row_index, pci) {
        (Some(i), Some(p)) => format!("GPU {i} ({p})"),
        (Some(i), None) => format!("GPU {i}"),
        (None, Some(p)) => format!("GPU at {p}"),
        (None, None) => "unknown GPU".into(),
    }
}

fn recovery_name(v: u32) -> String {
    correlate::recovery_action_name(v).to_string()
}

/// Per-GPU summary and findings from what the analysis kept for it.
fn summarize_gpu(row: &GpuRow, mut st: KeyState) -> (GpuXidSummary, Vec<Finding>) {
    let label = gpu_label(row.index, row.pci.as_deref());
    // Fallen off the bus is Xid 79's condition: on a GPU that also logged a 79, one finding.
    if st.has_79
        && let Some(fallen) = st.aggs.remove("gpu.fallen_off_bus")
    {
        match st.aggs.get_mut("xid.79") {
            Some(a) => a.merge(fallen),
            None => {
                st.aggs.insert("xid.79".into(), fallen);
            }
        }
    }
    let mut findings = Vec::new();
    for (code, a) in &st.aggs {
        let first = &a.first;
        let what = describe(first);
        let class = a.class();
        let mut evidence: Vec<String> = Vec::new();
        if let (Some(i), Some(d)) = (
            &first.event.immediate_action,
            &first.event.investigatory_action,
        ) {
            evidence.push(format!(
                "catalog immediate_action = {i}, investigatory_action = {d}"
            ));
        } else if first.event.kind == EventKind::Xid {
            evidence
                .push(format!("catalog_status = {:?}", first.detail.catalog_status).to_lowercase());
        }
        evidence.extend(a.evidence());
        findings.push(Finding {
            code: code.clone(),
            severity: class.severity,
            gpu: row.index,
            gpu_uuid: row.uuid.clone(),
            summary: format!("{what} seen {}× on {label}: {}", a.count, class.detail),
            evidence,
            action: Action {
                kind: class.action,
                detail: correlate::action_detail(class.action, row.index, row.pci.as_deref()),
            },
        });
    }

    // The driver's own verdict (NVML field 230) drives a finding of its own.
    if let Some(v) = row.recovery_action
        && let Some(class) = correlate::recovery_class(v)
        && v != 0
    {
        findings.push(Finding {
            code: "gpu.recovery_action".into(),
            severity: class.severity,
            gpu: row.index,
            gpu_uuid: row.uuid.clone(),
            summary: format!(
                "the driver reports recovery action {} ({}) for {label}: {}",
                v,
                recovery_name(v),
                class.detail
            ),
            evidence: vec![format!("nvml field 230 (GPU_RECOVERY_ACTION) = {v}")],
            action: Action {
                kind: class.action,
                detail: correlate::action_detail(class.action, row.index, row.pci.as_deref()),
            },
        });
    }

    let verdict = Verdict::from_findings(&findings, true);
    let (action, evidence) = pick_action(&findings);
    let (bursts, bursts_not_listed) = st.hist.bursts();
    let summary = GpuXidSummary {
        pci_bus_id: row.pci.clone(),
        index: row.index,
        uuid: row.uuid.clone(),
        uuid_source: row.uuid_source.map(str::to_string),
        recovery_action: row.recovery_action.map(|v| RecoveryAction {
            value: v,
            name: recovery_name(v),
        }),
        last_recovery_transition: st.last_transition,
        events: st.events,
        xids: st.counts.into_values().collect(),
        bursts,
        bursts_not_listed,
        fallen_off_bus: st.fallen,
        verdict,
        action,
        evidence,
    };
    (summary, findings)
}

fn describe(p: &Pending) -> String {
    match p.event.kind {
        EventKind::Xid => match (p.event.code, &p.event.mnemonic) {
            (Some(c), Some(m)) => {
                let desc = catalog::lookup(c)
                    .map(|e| e.description.as_str())
                    .unwrap_or("");
                if desc.is_empty() || desc.starts_with('(') {
                    format!("Xid {c} {m}")
                } else {
                    format!("Xid {c} {m} ({desc})")
                }
            }
            (Some(c), None) => format!("Xid {c} (not in NVIDIA's catalog)"),
            (None, _) => "Xid with an unreadable code".into(),
        },
        EventKind::FallenOffBus => "GPU fallen off the bus".into(),
        EventKind::InitFailure => "GPU initialisation failure".into(),
        EventKind::Sxid => "SXid".into(),
        EventKind::CrashDump => "GPU crash dump".into(),
        EventKind::GpuIdentity => "GPU identity".into(),
    }
}

/// The most disruptive action among the findings of the highest severity, and their summaries.
fn pick_action(findings: &[Finding]) -> (Action, Vec<String>) {
    let Some(worst) = findings.iter().map(|f| f.severity).max() else {
        return (
            Action {
                kind: ActionKind::None,
                detail: "no kernel-log event asks for action".into(),
            },
            Vec::new(),
        );
    };
    let top: Vec<&Finding> = findings.iter().filter(|f| f.severity == worst).collect();
    let best = top
        .iter()
        .max_by_key(|f| f.action.kind)
        .map(|f| f.action.clone())
        .unwrap_or(Action {
            kind: ActionKind::None,
            detail: String::new(),
        });
    let evidence = top
        .iter()
        .map(|f| format!("{}: {}", f.code, f.summary))
        .collect();
    (best, evidence)
}

/// Findings not tied to one GPU: SXids (NVSwitch), crash dumps, init failures on unknown devices.
fn node_level_findings(mut st: KeyState) -> Vec<Finding> {
    st.order
        .iter()
        .filter_map(|key| {
            let a = st.aggs.remove(key)?;
            let code = key.split('@').next().unwrap_or(key).to_string();
            let first = &a.first;
            let class = a.class();
            let whom = match (&first.event.kind, &first.event.pci_bus_id) {
                (EventKind::Sxid, Some(pci)) => match &first.detail.decoded {
                    Some(DecodedDetail::Sxid {
                        device: Some(d), ..
                    }) => format!(" on {d} ({pci})"),
                    _ => format!(" on the NVSwitch at {pci}"),
                },
                (_, Some(pci)) => format!(" on {pci}"),
                _ => String::new(),
            };
            Some(Finding {
                code,
                severity: class.severity,
                gpu: None,
                gpu_uuid: None,
                summary: format!(
                    "{}{whom} seen {}×: {}",
                    describe(first),
                    a.count,
                    class.detail
                ),
                evidence: a.evidence(),
                action: Action {
                    kind: class.action,
                    detail: correlate::action_detail(class.action, None, None),
                },
            })
        })
        .collect()
}

fn node_verdict(findings: &[Finding], complete: bool, log: &LogSummary) -> NodeXidVerdict {
    let verdict = Verdict::from_findings(findings, complete);
    let (mut action, mut evidence) = pick_action(findings);
    if let Some(e) = &log.error {
        evidence.push(format!(
            "kernel log not read: {:?}{}",
            e.error,
            e.message
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ));
        if findings.is_empty() {
            action.detail =
                "the kernel log could not be read; nothing can be said about XIDs".into();
        }
    }
    if log.truncated {
        evidence
            .push("the kernel log was truncated while reading: older events may be missing".into());
    }
    NodeXidVerdict {
        verdict,
        action,
        evidence,
    }
}
