//! The streaming analyzer: each kernel-log line (or journal record) goes through the grammar, extraction
//! and correlation as it arrives and is attributed to its GPU; only counts, bursts, finding tallies and
//! samples are kept, within fixed bounds, until `finish` assembles the report.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::gpu_identity::GpuTable;
use super::gpu_state::{AwaitingBurst, FindingTally, GpuEventState, NumberedEvent};
use super::verdicts::{GpuVerdict, node_level_findings, node_verdict, summarize_gpu};
use crate::facts::{FieldError, GpuVendor, NodeFacts};
use crate::finding::Finding;
use crate::kernel_log::contract::{
    CodeCount, DecodedDetail, EventKind, GpuXidSummary, HistorySource, LogSummary, RecoveryAction,
    XidReport,
};
use crate::kernel_log::correlate::{self, BurstCodes, GpuView, Needs, Placement};
use crate::kernel_log::event::Pending;
use crate::kernel_log::extract::{self, Extractor};
use crate::kernel_log::grammar::{Clock, Envelope, Record, RecordSplitter};
use crate::kernel_log::history::{History, Route};
use crate::options::AnalysisOptions;

/// Up to this many events the report lists every one; beyond it, `SAMPLES_PER_GROUP` first ones and
/// the last one of each GPU, kind and code (a storm is thousands of the same line).
pub const MAX_LISTED_EVENTS: usize = 500;
pub const SAMPLES_PER_GROUP: usize = 3;
/// The most distinct (PCI id, event kind, code) groups one analysis follows. A node's log names a few
/// GPUs and a few dozen codes; a log naming more (hostile or corrupt: random PCI ids or codes) would
/// otherwise make the per-GPU state, the listed samples and the report grow with it, and the GPU lookup
/// quadratic. Events of further groups are counted in `log.events_not_analyzed`.
pub const MAX_EVENT_GROUPS: usize = 256;

/// How the kernel-log input ended.
#[derive(Debug, Clone)]
pub enum LogEnd {
    /// Read to the end; `truncated` when the reader dropped records (overwritten, or over its cap).
    Read { truncated: bool },
    /// Could not be read at all.
    Unreadable(FieldError),
}

/// The events the list samples together: one GPU (PCI id), kind and code (for amdgpu events, which have
/// no code, their catalog id and RAS block).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventGroup {
    pci: Option<String>,
    kind: EventKind,
    code: Option<u32>,
    amd: Option<String>,
}

/// An amdgpu event's catalog id and block (bounded: both come from fixed lists, not from the line).
fn amd_group(p: &Pending) -> Option<String> {
    match &p.detail.decoded {
        Some(DecodedDetail::Amdgpu { event, block, .. }) => Some(match block {
            Some(b) => format!("{event}.{b}"),
            None => event.clone(),
        }),
        // The catalog id only: a habanalabs id comes from the catalog's fixed list.
        Some(DecodedDetail::Habanalabs { event, .. }) => Some(format!("hl.{event}")),
        Some(DecodedDetail::Neuron { event, device }) => Some(format!(
            "neuron.{event}.{}",
            device.as_deref().unwrap_or("node")
        )),
        _ => None,
    }
}

impl EventGroup {
    /// By the GPU the event was attributed to (the list's samples).
    fn of_gpu(p: &Pending) -> Self {
        EventGroup {
            pci: p.gpu_key.clone(),
            kind: p.event.kind,
            code: p.event.code,
            amd: amd_group(p),
        }
    }

    /// By the PCI id the line names, before attribution (the bound on what is analysed).
    fn of_line(p: &Pending) -> Self {
        EventGroup {
            pci: p.event.pci_bus_id.clone(),
            kind: p.event.kind,
            code: p.event.code,
            amd: amd_group(p),
        }
    }
}

/// An event kept for the per-event list, with where it landed among its GPU's bursts (Xids only).
struct ListedEvent {
    pending: Pending,
    burst_codes: Option<BurstCodes>,
    burst: Option<usize>,
}

/// How many of a group's first events are listed, and the latest one listed beyond them.
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
    gpus: GpuTable,
    nvml: Vec<Pending>,
    nvml_in_log: Vec<bool>,
    seq: usize,
    keys: HashMap<Option<String>, GpuEventState>,
    listed: BTreeMap<usize, ListedEvent>,
    groups: HashMap<EventGroup, SampleGroup>,
    /// Every (PCI id, kind, code) group admitted so far, at most [`MAX_EVENT_GROUPS`].
    tracked: HashSet<EventGroup>,
    capped: bool,
    history: History,
    /// The lines now arriving come from a history source (journal, text log).
    from_history: bool,
    /// The log is this boot's live `/dev/kmsg` (or a simulated node's, which is consistent with its own
    /// clock): only then do uptimes take this machine's boot time.
    live: bool,
    /// Where the last record went: an amdgpu event still waiting at the end goes there too.
    last_route: Route,
    /// The vendors of the node's devices.
    vendors: Vec<GpuVendor>,
}

impl XidAnalyzer {
    /// Set up with the node's GPU inventory, NVML events and clock (the kernel log is pushed after).
    pub fn new(facts: &NodeFacts, opts: &AnalysisOptions) -> Self {
        let clock = Clock {
            boot_time_unix: facts.host.boot_time_unix.get(),
            now_unix: facts.host.now_unix.get(),
        };
        let mut log = LogSummary {
            since: opts.since_unix.and_then(crate::kernel_log::time::rfc3339),
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
            gpus: GpuTable::of(facts),
            vendors: facts.gpus.iter().map(|g| g.vendor).collect(),
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
            live: true,
            last_route: Route::Current,
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
        // Earlier boots' text logs are no more this boot's than another machine's log is.
        self.split.set_live(self.live && !history);
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
            envelope: Envelope::Journal,
            ts,
            uptime: None,
            text: text.to_string(),
            kernel: true,
        });
    }

    fn record(&mut self, r: Record) {
        let route = self.history.route(r.ts, &r.text, self.from_history);
        if route == Route::Skip {
            return;
        }
        self.last_route = route;
        let event = self.extract.push(&r);
        // An amdgpu event this record ended comes first: its lines came before.
        if let Some(p) = self.extract.take_flushed() {
            self.take(p, route);
        }
        if let Some(mut p) = event {
            // A log file's uptime stays its own where no wall-clock time could be given.
            if p.ts.is_none() {
                p.detail.uptime_s = r.uptime;
            }
            self.take(p, route);
        }
    }

    fn take(&mut self, p: Pending, route: Route) {
        let group = EventGroup::of_line(&p);
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

    /// Where the lines come from: `kmsg`, `file:<path>`, `simulated`.
    pub fn set_origin(&mut self, origin: &str) {
        self.log.origin = Some(origin.to_string());
        // A log file may come from any machine (a copied log, the launcher's local mode): its uptimes
        // are not this boot's.
        self.live = !origin.starts_with("file:");
        self.split.set_live(self.live && !self.from_history);
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
            self.gpus.learn(pci, uuid);
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
        self.gpus.attribute(&mut p);
        let view = self.gpus.view(&p.gpu_key);
        let key = p.gpu_key.clone();
        let node_level = key.is_none();
        let st = self.keys.entry(key.clone()).or_default();
        st.events += 1;

        let mut placement = None;
        if p.event.kind == EventKind::Xid {
            let pl = st.history.push_xid(&p, seq);
            if let Some(closed) = &pl.closed {
                st.resolve_burst(&closed.borrow(), view.as_ref());
            }
            placement = Some(pl);
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
        if p.event.kind != EventKind::GpuIdentity && correlate::counts(&p) {
            let mut finding = correlate::finding_code(&p, false);
            if node_level
                && p.event.kind == EventKind::Sxid
                && let Some(pci) = &p.event.pci_bus_id
            {
                finding = format!("{finding}@{pci}");
            }
            let tally = st.tallies.entry(finding.clone()).or_insert_with(|| {
                st.tally_order.push(finding.clone());
                FindingTally::new(seq, &p)
            });
            tally.add_event(seq, || evidence_line(&p, node_level));
            match correlate::needs(&p) {
                Needs::Event => {
                    let ctx = st.history.ctx(&p, None, seq, 0, view.as_ref());
                    if let Some(c) = correlate::classify_event(&p, &ctx) {
                        tally.offer(seq, c);
                    }
                }
                Needs::Burst => {
                    let (code, caused_by) = (p.event.code, p.detail.caused_by_xid);
                    // `caused_by` comes from the line: a hostile log could vary it without end.
                    if st.awaiting_burst.len() < MAX_EVENT_GROUPS
                        && !st.awaiting_burst.iter().any(|d| {
                            d.finding == finding && d.code == code && d.caused_by == caused_by
                        })
                    {
                        st.awaiting_burst.push(AwaitingBurst {
                            finding,
                            code,
                            caused_by,
                            first_seq: seq,
                            representative: p.clone(),
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
                        *slot = Some(NumberedEvent {
                            seq,
                            event: p.clone(),
                        });
                    }
                    if p.event.code == Some(154) {
                        st.last_154 = Some(NumberedEvent {
                            seq,
                            event: p.clone(),
                        });
                    }
                }
            }
        }

        self.list(seq, p, placement);
    }

    /// Keep the event for the per-event list: all of them until the cap, then samples per group.
    fn list(&mut self, seq: usize, p: Pending, placement: Option<Placement>) {
        let g = self.groups.entry(EventGroup::of_gpu(&p)).or_default();
        let (burst, burst_codes) = match placement {
            Some(pl) => (Some(pl.burst), Some(pl.codes)),
            None => (None, None),
        };
        let entry = ListedEvent {
            pending: p,
            burst_codes,
            burst,
        };
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
            let mut taken: HashMap<EventGroup, usize> = HashMap::new();
            self.listed.retain(|seq, l| {
                let n = taken.entry(EventGroup::of_gpu(&l.pending)).or_default();
                *n += 1;
                *n <= SAMPLES_PER_GROUP || keep.contains(seq)
            });
        }
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
        if let Some(p) = self.extract.finish() {
            self.take(p, self.last_route);
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
            .filter(|(_, s)| s.history.has_31())
            .map(|(k, _)| k.clone())
            .collect();
        let views: HashMap<Option<String>, Option<GpuView>> = self
            .keys
            .keys()
            .map(|k| (k.clone(), self.gpus.view(k)))
            .collect();
        for (key, st) in self.keys.iter_mut() {
            let view = views.get(key).cloned().flatten();
            if let Some(codes) = st.history.close() {
                st.resolve_burst(&codes.borrow(), view.as_ref());
            }
            let others = keys_with_31.iter().filter(|k| *k != key).count();
            st.resolve_history(others, view.as_ref());
        }

        // The listed events, classified with their final context.
        self.log.events_not_listed = self.seq - self.listed.len();
        let mut events = Vec::with_capacity(self.listed.len());
        let mut details = Vec::with_capacity(self.listed.len());
        for (i, (seq, l)) in std::mem::take(&mut self.listed).into_iter().enumerate() {
            let mut p = l.pending;
            let st = &self.keys[&p.gpu_key];
            let view = views.get(&p.gpu_key).cloned().flatten();
            let others = keys_with_31.iter().filter(|k| **k != p.gpu_key).count();
            let codes = l.burst_codes.as_ref().map(|c| c.borrow().clone());
            let ctx = st
                .history
                .ctx(&p, codes.as_ref(), seq, others, view.as_ref());
            if let Some(c) = correlate::classify_event(&p, &ctx) {
                p.detail.severity = Some(c.severity);
                p.detail.action = Some(c.action);
                p.detail.reason = Some(c.detail);
            }
            p.detail.burst = match (&p.gpu_key, l.burst) {
                (Some(_), Some(b)) => st.history.listed_index(b),
                _ => None,
            };
            if let Some(key) = &p.gpu_key
                && p.event.gpu_uuid.is_none()
            {
                p.event.gpu_uuid = self.gpus.find(key).and_then(|r| r.uuid.clone());
            }
            p.detail.event = i;
            events.push(p.event);
            details.push(p.detail);
        }

        let mut findings: Vec<Finding> = Vec::new();
        let mut summaries: Vec<GpuXidSummary> = Vec::new();
        for row in self.gpus.iter() {
            let st = match row.key() {
                Some(k) => self.keys.remove(&Some(k.to_string())),
                None => None,
            };
            let GpuVerdict {
                summary,
                findings: mut f,
            } = summarize_gpu(row, st.unwrap_or_default());
            findings.append(&mut f);
            summaries.push(summary);
        }
        if let Some(st) = self.keys.remove(&None) {
            findings.extend(node_level_findings(st));
        }
        let gpus = &self.gpus;
        let history = self.history.finish(|pci| {
            gpus.find(pci)
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
        // Every kind of event found is among those listed (the first of each GPU and code is).
        let mut families: Vec<GpuVendor> = GpuVendor::ALL
            .into_iter()
            .filter(|v| {
                self.vendors.contains(v)
                    || events
                        .iter()
                        .any(|e| crate::kernel_log::correlate::vendor_of(e.kind) == *v)
            })
            .collect();
        if families.is_empty() {
            families.push(GpuVendor::Nvidia);
        }
        XidReport {
            log: self.log,
            events,
            event_details: details,
            gpus: summaries,
            node,
            findings,
            history,
            families,
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
