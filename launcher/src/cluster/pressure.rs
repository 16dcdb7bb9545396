//! The API server's push-back, seen by one client: how many of its requests were answered 429 Too Many
//! Requests (API Priority and Fairness) and until when it asked to wait (Retry-After, bounded). The retry
//! policy (`retry.rs`) records it; fan-outs read it through [`AdaptiveLimit`] to start fewer probes at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The longest wait a Retry-After may impose on one request or on new probes: a server asking for more is
/// asked again after this (its queues may have drained sooner), and calls keep their own deadlines.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Pressure {
    throttled: AtomicU64,
    last: Mutex<Option<Throttled>>,
}

#[derive(Debug, Clone, Copy)]
struct Throttled {
    at: Instant,
    hold_until: Instant,
}

impl Pressure {
    /// The server answered 429 (or 503) and asked to wait `retry_after` (already bounded).
    pub fn record(&self, retry_after: Duration) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let hold_until = (now + retry_after).max(last.map_or(now, |l| l.hold_until));
        *last = Some(Throttled {
            at: now,
            hold_until,
        });
    }

    /// Requests answered 429/503 so far.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Until when the server asked to hold back (None: it never did).
    fn hold_until(&self) -> Option<Instant> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|l| l.hold_until)
    }

    /// When the last 429 came (None: never).
    fn last_at(&self) -> Option<Instant> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|l| l.at)
    }
}

/// Wait at least this long between two cuts: the 429s of one burst are one signal, not many.
const CUT_EVERY: Duration = Duration::from_secs(1);
/// Grow again only after this long without a 429.
const CALM: Duration = Duration::from_secs(1);
/// How often a waiter looks at the pressure again when nothing finishes (a hold ending, a calm returning).
const RECHECK: Duration = Duration::from_millis(100);

/// A concurrency limit that halves while the API server answers 429 and grows by one per finished probe
/// once it stops (additive increase, multiplicative decrease, as TCP does), between 1 and `max`; new
/// starts also wait out the server's Retry-After.
pub struct AdaptiveLimit {
    max: usize,
    pressure: Option<std::sync::Arc<Pressure>>,
    state: Mutex<LimitState>,
    freed: Notify,
}

struct LimitState {
    limit: usize,
    in_flight: usize,
    seen: u64,
    last_cut: Option<Instant>,
    lowest: usize,
}

impl AdaptiveLimit {
    /// `pressure` None: a fixed limit of `max`.
    pub fn new(max: usize, pressure: Option<std::sync::Arc<Pressure>>) -> Self {
        let max = max.max(1);
        let seen = pressure.as_ref().map_or(0, |p| p.throttled());
        AdaptiveLimit {
            max,
            pressure,
            state: Mutex::new(LimitState {
                limit: max,
                in_flight: 0,
                seen,
                last_cut: None,
                lowest: max,
            }),
            freed: Notify::new(),
        }
    }

    /// Wait for a slot: below the current limit and past the server's Retry-After. Meant for one waiter at
    /// a time (the fan-out's loop): a freed slot wakes every waiter.
    pub async fn acquire_owned(self: &std::sync::Arc<Self>) -> LimitPermit {
        loop {
            let wait = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                self.follow_pressure(&mut st, false);
                let hold = self
                    .pressure
                    .as_ref()
                    .and_then(|p| p.hold_until())
                    .filter(|h| *h > Instant::now());
                match hold {
                    None if st.in_flight < st.limit => {
                        st.in_flight += 1;
                        return LimitPermit {
                            limit: self.clone(),
                        };
                    }
                    Some(h) => h.min(Instant::now() + RECHECK),
                    None => Instant::now() + RECHECK,
                }
            };
            let freed = self.freed.notified();
            tokio::select! {
                _ = freed => {}
                _ = tokio::time::sleep_until(wait) => {}
            }
        }
    }

    /// The lowest limit this fan-out came down to (its `max` when the server never pushed back).
    pub fn lowest(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).lowest
    }

    /// New 429s since the last look halve the limit (once per [`CUT_EVERY`]); a probe finished after
    /// [`CALM`] without one adds one.
    fn follow_pressure(&self, st: &mut LimitState, finished: bool) {
        let Some(p) = &self.pressure else { return };
        let now = Instant::now();
        let n = p.throttled();
        if n > st.seen {
            st.seen = n;
            if st
                .last_cut
                .is_none_or(|t| now.duration_since(t) >= CUT_EVERY)
            {
                st.limit = (st.limit / 2).max(1);
                st.lowest = st.lowest.min(st.limit);
                st.last_cut = Some(now);
                tracing::info!(
                    limit = st.limit,
                    throttled = n,
                    "the API server answers 429: fewer probes at once"
                );
            }
        } else if finished
            && st.limit < self.max
            && p.last_at().is_none_or(|t| now.duration_since(t) >= CALM)
        {
            st.limit += 1;
        }
    }
}

/// One started probe; dropping it frees the slot.
pub struct LimitPermit {
    limit: std::sync::Arc<AdaptiveLimit>,
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        let mut st = self.limit.state.lock().unwrap_or_else(|e| e.into_inner());
        st.in_flight = st.in_flight.saturating_sub(1);
        self.limit.follow_pressure(&mut st, true);
        drop(st);
        self.limit.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_fixed_limit_without_pressure() {
        let l = Arc::new(AdaptiveLimit::new(2, None));
        let a = l.acquire_owned().await;
        let _b = l.acquire_owned().await;
        let third = tokio::time::timeout(Duration::from_secs(10), l.acquire_owned()).await;
        assert!(third.is_err(), "a third slot under a limit of 2");
        drop(a);
        let _c = l.acquire_owned().await;
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_limit_and_calm_brings_it_back() {
        let p = Arc::new(Pressure::default());
        let l = Arc::new(AdaptiveLimit::new(8, Some(p.clone())));
        let first = l.acquire_owned().await;
        p.record(Duration::from_millis(500));
        // The hold: nothing starts before the server's Retry-After.
        let t = Instant::now();
        let second = l.acquire_owned().await;
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(l.lowest(), 4);
        // Four in flight fill the halved limit.
        let _more = [l.acquire_owned().await, l.acquire_owned().await];
        assert!(
            tokio::time::timeout(Duration::from_millis(50), l.acquire_owned())
                .await
                .is_err(),
            "a fifth slot under a limit of 4"
        );
        // Another 429 within the same second is the same burst: no second cut.
        p.record(Duration::ZERO);
        drop(first);
        assert_eq!(l.lowest(), 4);
        // After a calm second, each finished probe adds one.
        tokio::time::sleep(CALM).await;
        drop(second);
        let st = l.state.lock().unwrap();
        assert_eq!(st.limit, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_never_goes_below_one() {
        let p = Arc::new(Pressure::default());
        let l = Arc::new(AdaptiveLimit::new(2, Some(p.clone())));
        for _ in 0..5 {
            p.record(Duration::ZERO);
            drop(l.acquire_owned().await);
            tokio::time::sleep(CUT_EVERY).await;
        }
        assert_eq!(l.lowest(), 1);
        let _one = l.acquire_owned().await;
    }
}
