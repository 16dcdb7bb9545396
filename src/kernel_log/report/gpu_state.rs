//! What the analysis keeps per GPU while lines stream: its burst history, counts, one tally per finding, and
//! the events whose class waits for their burst to close or for the GPU's whole history; and how those
//! waiting events are classified when that is known.

use std::collections::BTreeMap;

use crate::finding::{ActionKind, Severity};
use crate::kernel_log::contract::{CodeCount, RecoveryAction};
use crate::kernel_log::correlate::{self, Class, GpuHistory, GpuView};
use crate::kernel_log::event::Pending;

/// Evidence lines quoted per finding.
const EVIDENCE_LINES: usize = 5;

/// A finding in the making: counts and the first evidence, with the classification's candidates.
pub(super) struct FindingTally {
    pub count: usize,
    first_seq: usize,
    pub first: Pending,
    /// The first `EVIDENCE_LINES` evidence lines, with their sequence numbers (for merging).
    samples: Vec<(usize, String)>,
    /// Per (severity, action): the first event's sequence number and the reason. The finding takes
    /// the worst, and among equals the earliest (what a pass in log order would keep).
    best: BTreeMap<(Severity, ActionKind), (usize, String)>,
}

impl FindingTally {
    pub(super) fn new(seq: usize, p: &Pending) -> Self {
        FindingTally {
            count: 0,
            first_seq: seq,
            first: p.clone(),
            samples: Vec::new(),
            best: BTreeMap::new(),
        }
    }

    pub(super) fn add_event(&mut self, seq: usize, line: impl FnOnce() -> String) {
        self.count += 1;
        if self.samples.len() < EVIDENCE_LINES {
            self.samples.push((seq, line()));
        }
    }

    pub(super) fn offer(&mut self, seq: usize, c: Class) {
        let slot = self
            .best
            .entry((c.severity, c.action))
            .or_insert((seq, c.detail.clone()));
        if seq < slot.0 {
            *slot = (seq, c.detail);
        }
    }

    pub(super) fn merge(&mut self, o: FindingTally) {
        self.count += o.count;
        if o.first_seq < self.first_seq {
            self.first_seq = o.first_seq;
            self.first = o.first;
        }
        self.samples.extend(o.samples);
        self.samples.sort_by_key(|(s, _)| *s);
        self.samples.truncate(EVIDENCE_LINES);
        for ((sev, act), (seq, detail)) in o.best {
            self.offer(
                seq,
                Class {
                    severity: sev,
                    action: act,
                    detail,
                },
            );
        }
    }

    pub(super) fn class(&self) -> Class {
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

    pub(super) fn evidence(&self) -> Vec<String> {
        let mut out: Vec<String> = self.samples.iter().map(|(_, s)| s.clone()).collect();
        if self.count > self.samples.len() {
            out.push(format!("… and {} more", self.count - self.samples.len()));
        }
        out
    }
}

/// Events of one burst whose class waits for the burst to close, grouped by what decides it.
pub(super) struct AwaitingBurst {
    pub finding: String,
    pub code: Option<u32>,
    pub caused_by: Option<u32>,
    pub first_seq: usize,
    pub representative: Pending,
}

/// An event with its sequence number in the analysis (what "earliest" compares).
pub(super) struct NumberedEvent {
    pub seq: usize,
    pub event: Pending,
}

/// What the analysis keeps per GPU key (None: events tied to no GPU).
#[derive(Default)]
pub(super) struct GpuEventState {
    pub history: GpuHistory,
    /// Finding code -> its tally (per GPU); node-level ones are keyed by code@pci and kept in first-seen
    /// order in `tally_order`.
    pub tallies: BTreeMap<String, FindingTally>,
    pub tally_order: Vec<String>,
    pub events: usize,
    pub counts: BTreeMap<u32, CodeCount>,
    pub last_transition: Option<RecoveryAction>,
    pub fallen: bool,
    pub has_79: bool,
    pub awaiting_burst: Vec<AwaitingBurst>,
    /// First Xid 13 and 31 (their class is the GPU's, known at the end).
    pub first_13: Option<NumberedEvent>,
    pub first_31: Option<NumberedEvent>,
    /// First and last Xid 154 with a readable transition.
    pub first_154: Option<NumberedEvent>,
    pub last_154: Option<NumberedEvent>,
}

impl GpuEventState {
    /// Classify the events that waited for their burst to close.
    pub(super) fn resolve_burst(&mut self, codes: &BTreeMap<u32, usize>, view: Option<&GpuView>) {
        for d in std::mem::take(&mut self.awaiting_burst) {
            let ctx = self
                .history
                .ctx(&d.representative, Some(codes), d.first_seq, 0, view);
            if let (Some(c), Some(tally)) = (
                correlate::classify_event(&d.representative, &ctx),
                self.tallies.get_mut(&d.finding),
            ) {
                tally.offer(d.first_seq, c);
            }
        }
    }

    /// Classify the events whose class is the GPU's (Xid 13, 31) or depends on being the last (154).
    pub(super) fn resolve_history(&mut self, xid31_other_gpus: usize, view: Option<&GpuView>) {
        let last_154 = self.history.last_154;
        let mut reps: Vec<NumberedEvent> = Vec::new();
        reps.extend(self.first_13.take());
        reps.extend(self.first_31.take());
        let first_154 = self.first_154.take();
        let latest_154 = self.last_154.take();
        // The earliest superseded 154 speaks for all superseded ones (same severity, earliest wins).
        if let Some(e) = first_154
            && Some(e.seq) != last_154
        {
            reps.push(e);
        }
        if let Some(e) = latest_154
            && Some(e.seq) == last_154
        {
            reps.push(e);
        }
        for NumberedEvent { seq, event: p } in reps {
            let ctx = self.history.ctx(&p, None, seq, xid31_other_gpus, view);
            let finding = correlate::finding_code(&p, false);
            if let (Some(c), Some(tally)) = (
                correlate::classify_event(&p, &ctx),
                self.tallies.get_mut(&finding),
            ) {
                tally.offer(seq, c);
            }
        }
    }
}
