//! Bursts: one GPU's Xid history built one event at a time in constant memory, and the context
//! (`EventCtx`) each event is classified in.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use super::class::{EventCtx, GpuView};
use crate::kernel_log::contract::{Burst, DecodedDetail};
use crate::kernel_log::event::Pending;
use crate::kernel_log::time::rfc3339;

/// Silence that ends a burst (NVIDIA Fleet Intelligence: "grouped until there has been more than
/// three minutes of silence").
pub const BURST_GAP_SECS: f64 = 180.0;
/// A sticky code keeps its burst open this long.
pub const STICKY_GAP_SECS: f64 = 3.0 * 3600.0;
/// Codes whose effects persist (NVSentinel's analyzer: 74, 79, 95, 109, 119).
pub const STICKY_CODES: &[u32] = &[74, 79, 95, 109, 119];

/// Bursts listed in a GPU's summary: the first ones and the latest ones; those between are counted.
pub const LISTED_FIRST_BURSTS: usize = 16;
pub const LISTED_LAST_BURSTS: usize = 16;

/// Xid codes of one burst with how often each occurred. Shared (`Rc`) between the open burst and the
/// listed events in it, so an event's burst context is complete once the burst closes without the
/// burst keeping its events.
pub(crate) type BurstCodes = Rc<RefCell<BTreeMap<u32, usize>>>;

/// Where an Xid landed in its GPU's history.
pub(crate) struct Placement {
    /// Index of its burst among all of the GPU's bursts.
    pub burst: usize,
    pub codes: BurstCodes,
    /// The burst this event closed (it came after more than the gap), if any.
    pub closed: Option<BurstCodes>,
}

struct OpenBurst {
    burst: Burst,
    codes: BurstCodes,
}

/// One GPU's Xid history, built one event at a time in constant memory: bursts (the first and latest
/// listed, the rest counted) and the GPU-wide facts the workflows need (GPC/TPC repeats, Xid 31 runs,
/// the last Xid 154).
#[derive(Default)]
pub(crate) struct GpuHistory {
    first: Vec<Burst>,
    latest: VecDeque<Burst>,
    total: usize,
    open: Option<OpenBurst>,
    last_ts: Option<f64>,
    gpc_tpc: HashMap<(u32, u32), usize>,
    xid31: usize,
    xid31_bursts: usize,
    last_31_burst: Option<usize>,
    /// Sequence number of the last Xid 154 (any form).
    pub last_154: Option<usize>,
}

impl GpuHistory {
    /// Add the next Xid (in log order). Events without a timestamp join the burst in progress.
    pub fn push_xid(&mut self, p: &Pending, seq: usize) -> Placement {
        let sticky_now = self.open.as_ref().is_some_and(|b| b.burst.sticky);
        let gap = if sticky_now {
            STICKY_GAP_SECS
        } else {
            BURST_GAP_SECS
        };
        let new = match (&self.open, self.last_ts, p.gap_clock()) {
            (None, _, _) => true,
            (Some(_), Some(a), Some(b)) => (b - a).abs() > gap,
            _ => false,
        };
        let mut closed = None;
        if new {
            closed = self.close();
            self.open = Some(OpenBurst {
                burst: Burst {
                    start: p.ts.and_then(rfc3339),
                    end: None,
                    events: 0,
                    codes: Vec::new(),
                    sticky: false,
                },
                codes: BurstCodes::default(),
            });
            self.total += 1;
        }
        let burst = self.total - 1;
        let Some(open) = self.open.as_mut() else {
            unreachable!("a burst was opened above")
        };
        let b = &mut open.burst;
        b.events += 1;
        if let Some(c) = p.event.code {
            if let Err(at) = b.codes.binary_search(&c) {
                b.codes.insert(at, c);
            }
            if STICKY_CODES.contains(&c) {
                b.sticky = true;
            }
            *open.codes.borrow_mut().entry(c).or_default() += 1;
            if c == 31 {
                self.xid31 += 1;
                if self.last_31_burst != Some(burst) {
                    self.xid31_bursts += 1;
                    self.last_31_burst = Some(burst);
                }
            }
            if c == 154 {
                self.last_154 = Some(seq);
            }
        }
        if let Some(t) = p.ts {
            if b.start.is_none() {
                b.start = rfc3339(t);
            }
            b.end = rfc3339(t);
        }
        if let Some(t) = p.gap_clock() {
            self.last_ts = Some(t);
        }
        if let Some(DecodedDetail::GraphicsException { gpc, tpc, .. }) = p.detail.decoded {
            *self.gpc_tpc.entry((gpc, tpc)).or_default() += 1;
        }
        Placement {
            burst,
            codes: open.codes.clone(),
            closed,
        }
    }

    /// Close the burst in progress (at the end of the input, or when the next one starts).
    pub fn close(&mut self) -> Option<BurstCodes> {
        let open = self.open.take()?;
        if self.first.len() < LISTED_FIRST_BURSTS {
            self.first.push(open.burst);
        } else {
            self.latest.push_back(open.burst);
            if self.latest.len() > LISTED_LAST_BURSTS {
                self.latest.pop_front();
            }
        }
        Some(open.codes)
    }

    pub fn has_31(&self) -> bool {
        self.xid31 > 0
    }

    /// The listed bursts (call after `close`) and how many were left out between them.
    pub fn bursts(&self) -> (Vec<Burst>, usize) {
        let listed: Vec<Burst> = self.first.iter().chain(&self.latest).cloned().collect();
        let left_out = self.total - listed.len() - usize::from(self.open.is_some());
        (listed, left_out)
    }

    /// Position of burst `abs` among the listed ones.
    pub fn listed_index(&self, abs: usize) -> Option<usize> {
        if abs < self.first.len() {
            return Some(abs);
        }
        let latest_from = self.total - self.latest.len();
        (abs >= latest_from).then(|| self.first.len() + abs - latest_from)
    }

    /// The context of one event: its burst's other codes plus this GPU's history.
    pub fn ctx(
        &self,
        p: &Pending,
        codes: Option<&BTreeMap<u32, usize>>,
        seq: usize,
        xid31_other_gpus: usize,
        view: Option<&GpuView>,
    ) -> EventCtx {
        let own = p.event.code;
        let burst_codes = codes
            .map(|m| {
                m.iter()
                    .filter(|(c, n)| **n > usize::from(Some(**c) == own))
                    .map(|(c, _)| *c)
                    .collect()
            })
            .unwrap_or_default();
        let same_gpc_tpc = match p.detail.decoded {
            Some(DecodedDetail::GraphicsException { gpc, tpc, .. }) => {
                self.gpc_tpc.get(&(gpc, tpc)).copied().unwrap_or(0)
            }
            _ => 0,
        };
        EventCtx {
            burst_codes,
            same_gpc_tpc,
            gpc_tpc_repeated_on_gpu: self.gpc_tpc.values().any(|n| *n >= 2),
            xid31_here: self.xid31,
            xid31_bursts_here: self.xid31_bursts,
            xid31_other_gpus,
            last_154: self.last_154 == Some(seq),
            nvml_recovery_action: view.and_then(|v| v.recovery_action),
            sram_threshold_exceeded: view.and_then(|v| v.sram_threshold_exceeded),
        }
    }
}
