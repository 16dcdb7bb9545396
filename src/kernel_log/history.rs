//! Earlier boots: kernel messages the host kept (journal, text logs) grouped per boot, with the
//! findings only history makes possible (how the previous boot ended, a GPU that faults again after a
//! reboot, how often the node rebooted). Bounded like the rest: a fixed number of boots listed, counts
//! per GPU and code, one evidence line per boot.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::contract::{
    BootSummary, BootXidCount, EventKind, HistorySource, SourceStatus, XidHistory,
};
use super::correlate;
use super::event::Pending;
use super::time::rfc3339;
use crate::facts::GpuVendor;
use crate::finding::{Action, ActionKind, Finding, Severity};

/// Boots listed in the report (the latest ones); older boots in the window are counted.
pub const MAX_LISTED_BOOTS: usize = 16;

/// Where a record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Into the current boot's analysis.
    Current,
    /// Into an earlier boot's summary.
    Earlier,
    /// Dropped: outside the window, or `/dev/kmsg` has it too.
    Skip,
}

struct Boot {
    id: Option<String>,
    current: bool,
    first: Option<f64>,
    last: Option<f64>,
    started: bool,
    /// No record yet: the next `Linux version` banner belongs to this boot, not to a new one.
    fresh: bool,
    events: usize,
    xids: BTreeMap<(Option<String>, u32), usize>,
    last_serious: Option<(String, Option<String>, String, GpuVendor)>,
}

impl Boot {
    fn new(id: Option<String>, current: bool) -> Self {
        Boot {
            id,
            current,
            first: None,
            last: None,
            started: false,
            fresh: true,
            events: 0,
            xids: BTreeMap::new(),
            last_serious: None,
        }
    }
}

/// Per GPU: the earlier boots in which it had a serious event, and what.
#[derive(Default)]
struct GpuPast {
    boots: BTreeSet<usize>,
    codes: BTreeSet<String>,
}

/// Boot grouping and the history summary, fed one record at a time.
pub(crate) struct History {
    enabled: bool,
    current_id: Option<String>,
    boot_time: Option<f64>,
    since: Option<f64>,
    /// History records at or after this time are in `/dev/kmsg` too.
    kmsg_from: Option<f64>,
    boots: VecDeque<(usize, Boot)>,
    ordinal: usize,
    dropped: usize,
    reboots: usize,
    events: usize,
    /// Serious events per GPU (PCI), across earlier boots and the current one.
    gpus: HashMap<String, GpuPast>,
    sources: Vec<HistorySource>,
    /// Records taken from the source being read, and their time span.
    stats: (usize, Option<f64>, Option<f64>),
}

/// A boot id as the journal writes it: 32 lowercase hex digits, no dashes.
pub fn normalize_boot_id(id: &str) -> String {
    id.trim().replace('-', "").to_ascii_lowercase()
}

impl History {
    pub fn new(current_id: Option<&str>, boot_time: Option<f64>, since: Option<f64>) -> Self {
        History {
            enabled: false,
            current_id: current_id.map(normalize_boot_id),
            boot_time,
            since,
            kmsg_from: None,
            boots: VecDeque::new(),
            ordinal: 0,
            dropped: 0,
            reboots: 0,
            events: 0,
            gpus: HashMap::new(),
            sources: Vec::new(),
            stats: (0, None, None),
        }
    }

    pub fn enable(&mut self) {
        self.enabled = true;
    }

    pub fn take_stats(&mut self) -> (usize, Option<f64>, Option<f64>) {
        std::mem::take(&mut self.stats)
    }

    pub fn kmsg_from(&mut self, ts: Option<f64>) {
        self.kmsg_from = ts;
    }

    pub fn add_source(&mut self, s: HistorySource) {
        self.sources.push(s);
    }

    fn open(&mut self, id: Option<String>) {
        let current = id.is_some() && id == self.current_id;
        self.ordinal += 1;
        self.boots.push_back((self.ordinal, Boot::new(id, current)));
        if self.boots.len() > MAX_LISTED_BOOTS {
            self.boots.pop_front();
            self.dropped += 1;
        }
    }

    /// The following records belong to this boot (the journal's `_BOOT_ID`; the current boot for
    /// `/dev/kmsg`).
    pub fn set_boot(&mut self, id: Option<&str>) {
        let id = id.map(normalize_boot_id);
        if let Some((_, b)) = self.boots.back_mut()
            && (b.id == id || (b.id.is_none() && b.fresh))
        {
            if b.id.is_none() {
                b.current = id.is_some() && id == self.current_id;
                b.id = id;
            }
            return;
        }
        self.open(id);
    }

    /// The current boot, for `/dev/kmsg` records.
    pub fn set_current(&mut self) {
        let id = self.current_id.clone();
        match self.boots.back_mut() {
            Some((_, b)) if b.current || (b.id.is_none() && b.fresh) => b.current = true,
            _ => {
                self.open(id);
                if let Some((_, b)) = self.boots.back_mut() {
                    b.current = true;
                }
            }
        }
    }

    /// Place one record: which boot it belongs to, and whether it is the current boot's. Only
    /// history records can be an earlier boot's: `/dev/kmsg` and a `--log-file` are analysed as today.
    pub fn route(&mut self, ts: Option<f64>, text: &str, from_history: bool) -> Route {
        if !self.enabled {
            return Route::Current;
        }
        if from_history {
            if let (Some(t), Some(k)) = (ts, self.kmsg_from)
                && t >= k
            {
                return Route::Skip;
            }
            if let (Some(t), Some(s)) = (ts, self.since)
                && t < s
            {
                return Route::Skip;
            }
        }
        if from_history {
            self.stats.0 += 1;
            if let Some(t) = ts {
                self.stats.1 = Some(self.stats.1.map_or(t, |f: f64| f.min(t)));
                self.stats.2 = Some(self.stats.2.map_or(t, |l: f64| l.max(t)));
            }
        }
        // A text log's boot has no id: it is the current one if it starts after this boot did.
        let after_boot = match (ts, self.boot_time) {
            (Some(t), Some(b)) => t >= b - 1.0,
            _ => !from_history,
        };
        let banner = super::grammar::is_boot_start(text);
        let fresh = self.boots.back().is_some_and(|(_, b)| b.fresh);
        if self.boots.is_empty() || (banner && !fresh) {
            self.open(if after_boot {
                self.current_id.clone()
            } else {
                None
            });
            if let Some((_, b)) = self.boots.back_mut() {
                b.current = after_boot;
            }
        }
        if banner {
            if let Some((_, b)) = self.boots.back_mut() {
                b.started = true;
            }
            if ts.is_some_and(|t| self.since.is_none_or(|s| t >= s)) {
                self.reboots += 1;
            }
        }
        let Some((_, b)) = self.boots.back_mut() else {
            return Route::Current;
        };
        b.fresh = false;
        if let Some(t) = ts {
            b.first.get_or_insert(t);
            b.last = Some(t);
        }
        if !from_history || b.current || (b.id.is_none() && after_boot) {
            Route::Current
        } else {
            Route::Earlier
        }
    }

    /// An event of the boot in progress (earlier or current).
    pub fn event(&mut self, p: &Pending, earlier: bool) {
        if !self.enabled {
            return;
        }
        let Some((ord, b)) = self.boots.back_mut() else {
            return;
        };
        b.events += 1;
        if earlier {
            self.events += 1;
            if p.event.kind == EventKind::Xid
                && let Some(code) = p.event.code
            {
                *b.xids
                    .entry((p.event.pci_bus_id.clone(), code))
                    .or_default() += 1;
            }
        }
        // Serious and its title as every other tool judges the event (its kernel-log family).
        if !correlate::is_serious(p) {
            return;
        }
        let what = correlate::title(p);
        let vendor = correlate::vendor_of(p.event.kind);
        let line = format!(
            "{} {what} on {}: {}",
            p.event.timestamp.as_deref().unwrap_or("(no timestamp)"),
            p.event.pci_bus_id.as_deref().unwrap_or("an unknown GPU"),
            p.event.message
        );
        b.last_serious = Some((line, p.event.pci_bus_id.clone(), what.clone(), vendor));
        if let Some(pci) = &p.event.pci_bus_id {
            let g = self.gpus.entry(pci.clone()).or_default();
            g.boots.insert(*ord);
            g.codes.insert(what);
        }
    }

    /// The history section and its findings (None when history was not asked for).
    pub fn finish(
        self,
        gpu_of: impl Fn(&str) -> (Option<u32>, Option<String>),
    ) -> Option<(XidHistory, Vec<Finding>)> {
        if !self.enabled {
            return None;
        }
        let in_window =
            |b: &Boot| b.last.is_some() && b.last.is_none_or(|l| self.since.is_none_or(|s| l >= s));
        let listed: Vec<&(usize, Boot)> = self.boots.iter().filter(|(_, b)| in_window(b)).collect();
        let mut findings = Vec::new();

        // How the previous boot ended: the last boot before the current one.
        let cur_pos = listed.iter().rposition(|(_, b)| b.current);
        let prev = match cur_pos {
            Some(i) => i.checked_sub(1).and_then(|j| listed.get(j)),
            None => listed.last(),
        };
        if let Some((_, b)) = prev
            && let Some((line, pci, what, vendor)) = &b.last_serious
        {
            let (index, uuid) = pci.as_deref().map_or((None, None), &gpu_of);
            let gpu = match (index, pci) {
                (Some(i), Some(p)) => format!("GPU {i} ({p})"),
                (None, Some(p)) => format!("the GPU at {p}"),
                _ => "an unknown GPU".into(),
            };
            findings.push(Finding {
                code: "history.previous_boot".into(),
                severity: Severity::Warning,
                gpu: index,
                gpu_uuid: uuid,
                summary: format!(
                    "the previous boot{} ended with {what} on {gpu} (its last serious {} event; last kernel message {})",
                    b.id.as_deref().map(|i| format!(" ({i})")).unwrap_or_default(),
                    vendor.name(),
                    b.last.and_then(rfc3339).unwrap_or_else(|| "unknown".into())
                ),
                evidence: vec![line.clone()],
                action: Action {
                    kind: ActionKind::Investigate,
                    detail: "check whether the GPU is healthy in this boot; if the same error returns, treat the GPU as faulty".into(),
                },
                about: Vec::new(),
                first_seen: None,
            });
        }

        // The same GPU faulting again after a reboot: a hardware suspect.
        let mut pcis: Vec<(&String, &GpuPast)> = self
            .gpus
            .iter()
            .filter(|(_, g)| g.boots.len() >= 2)
            .collect();
        pcis.sort_by(|a, b| a.0.cmp(b.0));
        for (pci, g) in pcis {
            let (index, uuid) = gpu_of(pci);
            let gpu = index.map_or_else(
                || format!("the GPU at {pci}"),
                |i| format!("GPU {i} ({pci})"),
            );
            findings.push(Finding {
                code: "history.repeat_offender".into(),
                severity: Severity::Critical,
                gpu: index,
                gpu_uuid: uuid,
                summary: format!(
                    "{gpu} had serious errors ({}) in {} different boots: it faults again after reboots; an RMA candidate",
                    g.codes.iter().cloned().collect::<Vec<_>>().join(", "),
                    g.boots.len()
                ),
                evidence: self
                    .boots
                    .iter()
                    .filter(|(o, _)| g.boots.contains(o))
                    .filter_map(|(_, b)| b.last_serious.as_ref().map(|(l, ..)| l.clone()))
                    .collect(),
                action: Action {
                    kind: ActionKind::Rma,
                    detail: "cordon the node, run field diagnostics on the GPU and start the RMA process if they fail".into(),
                },
                about: Vec::new(),
                first_seen: None,
            });
        }

        let earlier_seen = listed.iter().any(|(_, b)| !b.current);
        let read_any = self.sources.iter().any(|s| s.entries > 0);
        let note = (!earlier_seen).then(|| {
            if read_any {
                "no kernel message of an earlier boot in the window: no history found".to_string()
            } else {
                "no history found: no journal or kernel text log could be read (see sources)"
                    .to_string()
            }
        });
        let boots = listed
            .iter()
            .map(|(_, b)| BootSummary {
                boot_id: b.id.clone(),
                current: b.current,
                first: b.first.and_then(rfc3339),
                last: b.last.and_then(rfc3339),
                started_in_window: b.started,
                events: b.events,
                xids: b
                    .xids
                    .iter()
                    .map(|((pci, code), n)| BootXidCount {
                        pci_bus_id: pci.clone(),
                        code: *code,
                        count: *n,
                    })
                    .collect(),
                last_serious_event: b.last_serious.as_ref().map(|(l, ..)| l.clone()),
            })
            .collect();
        Some((
            XidHistory {
                sources: self.sources,
                boots,
                boots_not_listed: self.dropped,
                reboots_in_window: self.reboots,
                events: self.events,
                note,
            },
            findings,
        ))
    }
}

/// A source that could not be read, for the report.
pub fn unread_source(
    kind: &str,
    path: &str,
    status: SourceStatus,
    message: String,
) -> HistorySource {
    HistorySource {
        kind: kind.into(),
        path: path.into(),
        status,
        message: Some(message),
        entries: 0,
        first: None,
        last: None,
    }
}
