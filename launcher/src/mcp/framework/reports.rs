//! The full probe reports, kept so an answer can stay short: every probe's whole report is stored here and
//! offered as an MCP resource (`probe://<n>/<node>/<tool>`), whose URI the answer carries in
//! `run.report_uri`. Bounded in count and bytes, per person and in all; the oldest go first.
//!
//! Over stdio there is one person and one store. A shared server (`serve --http`) gives each person a
//! [`ReportStore`] on one [`Pool`]: a person's reports are theirs alone (another's URI reads as unknown),
//! at most [`PER_PERSON`] of them, and all people's together at most [`IN_ALL`], so many people cannot
//! hold more memory than one server may spend. An evicted report's memory is freed when it goes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Reports kept at most (each person's over HTTP), and their total size.
pub const MAX_REPORTS: usize = 64;
pub const MAX_BYTES: usize = 32 << 20;
pub const SCHEME: &str = "probe://";

/// How many reports, and how many bytes of them, a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub reports: usize,
    pub bytes: usize,
}

/// One person's bound (stdio's one person too).
pub const PER_PERSON: Bound = Bound {
    reports: MAX_REPORTS,
    bytes: MAX_BYTES,
};

/// Every person's together on a shared server: eight people's worth.
pub const IN_ALL: Bound = Bound {
    reports: 8 * MAX_REPORTS,
    bytes: 8 * MAX_BYTES,
};

struct Stored {
    owner: String,
    uri: String,
    node: String,
    tool: String,
    json: String,
}

/// Reports of every person of one server, oldest first.
pub struct Pool {
    per_person: Bound,
    in_all: Bound,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    bytes: usize,
    reports: VecDeque<Stored>,
    /// Per person: reports kept and their bytes.
    kept: HashMap<String, (usize, usize)>,
}

impl Inner {
    /// Drop the oldest report (of `owner` only, where given); false where there was none.
    fn evict_oldest(&mut self, owner: Option<&str>) -> bool {
        let at = match owner {
            Some(o) => self.reports.iter().position(|r| r.owner == o),
            None => (!self.reports.is_empty()).then_some(0),
        };
        let Some(old) = at.and_then(|i| self.reports.remove(i)) else {
            return false;
        };
        self.bytes -= old.json.len();
        if let Some(k) = self.kept.get_mut(&old.owner) {
            k.0 -= 1;
            k.1 -= old.json.len();
            if k.0 == 0 {
                self.kept.remove(&old.owner);
            }
        }
        // The report's text is freed here; the queue's own room shrinks once mostly empty.
        if self.reports.capacity() > 64 && self.reports.len() < self.reports.capacity() / 4 {
            self.reports.shrink_to_fit();
        }
        true
    }
}

impl Pool {
    pub fn new(per_person: Bound, in_all: Bound) -> Arc<Pool> {
        Arc::new(Pool {
            per_person,
            in_all,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reports kept and their bytes, in all.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let g = self.lock();
        (g.reports.len(), g.bytes)
    }

    /// One person's store on this pool.
    pub fn store(self: &Arc<Self>, owner: &str) -> ReportStore {
        ReportStore {
            pool: self.clone(),
            owner: owner.to_string(),
        }
    }
}

/// One person's reports.
pub struct ReportStore {
    pool: Arc<Pool>,
    owner: String,
}

impl Default for ReportStore {
    /// The one person of stdio: their bound is the whole store's.
    fn default() -> Self {
        Pool::new(PER_PERSON, PER_PERSON).store("")
    }
}

impl ReportStore {
    /// Keep a report; returns its URI. The person's oldest go first past their bound, then anyone's oldest
    /// past the pool's. A report bigger than a person's whole budget is not kept.
    pub fn put(&self, node: &str, tool: &str, json: String) -> Option<String> {
        let (per, all) = (self.pool.per_person, self.pool.in_all);
        if json.len() > per.bytes.min(all.bytes) {
            return None;
        }
        let mut g = self.pool.lock();
        g.next += 1;
        let uri = format!("{SCHEME}{}/{node}/{tool}", g.next);
        loop {
            let (n, b) = g.kept.get(&self.owner).copied().unwrap_or_default();
            if (n < per.reports && b + json.len() <= per.bytes)
                || !g.evict_oldest(Some(&self.owner))
            {
                break;
            }
        }
        while (g.reports.len() >= all.reports || g.bytes + json.len() > all.bytes)
            && g.evict_oldest(None)
        {}
        g.bytes += json.len();
        let k = g.kept.entry(self.owner.clone()).or_default();
        k.0 += 1;
        k.1 += json.len();
        g.reports.push_back(Stored {
            owner: self.owner.clone(),
            uri: uri.clone(),
            node: node.to_string(),
            tool: tool.to_string(),
            json,
        });
        Some(uri)
    }

    /// A kept report's JSON, if it is this person's.
    pub fn get(&self, uri: &str) -> Option<String> {
        let g = self.pool.lock();
        g.reports
            .iter()
            .find(|r| r.uri == uri && r.owner == self.owner)
            .map(|r| r.json.clone())
    }

    /// URI, node, tool and size of every report of this person's kept, oldest first.
    pub fn list(&self) -> Vec<(String, String, String, usize)> {
        let g = self.pool.lock();
        g.reports
            .iter()
            .filter(|r| r.owner == self.owner)
            .map(|r| (r.uri.clone(), r.node.clone(), r.tool.clone(), r.json.len()))
            .collect()
    }

    /// Why a report URI reads as unknown, in words for the answer.
    pub fn why_unknown(&self, uri: &str) -> String {
        let (per, all) = (self.pool.per_person, self.pool.in_all);
        let mut s = format!(
            "no report `{uri}` of yours: reports are kept at most {} ({} MiB) per person",
            per.reports,
            per.bytes >> 20
        );
        if all != per {
            s.push_str(&format!(
                " and {} ({} MiB) for everyone on this server",
                all.reports,
                all.bytes >> 20
            ));
        }
        s.push_str(
            ", the oldest dropped first, and a server keeps them only while it runs; it was dropped, or \
             was never yours: call the tool again for a fresh one",
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_count_and_bytes_oldest_first() {
        let s = ReportStore::default();
        let first = s.put("n", "t", "{}".into()).unwrap();
        for _ in 0..MAX_REPORTS {
            s.put("n", "t", "{}".into());
        }
        assert!(s.get(&first).is_none(), "the oldest went first");
        assert_eq!(s.list().len(), MAX_REPORTS);
        let big = "x".repeat(MAX_BYTES / 2 + 1);
        let a = s.put("n", "t", big.clone()).unwrap();
        let b = s.put("n", "t", big).unwrap();
        assert!(s.get(&a).is_none() && s.get(&b).is_some(), "bytes bound");
        assert!(s.put("n", "t", "x".repeat(MAX_BYTES + 1)).is_none());
        assert!(s.why_unknown(&first).contains("dropped"));
    }

    /// Many people on one pool: each is held to their own bound (their own oldest go), all together to the
    /// pool's (anyone's oldest go), and what goes is freed: the pool's bytes fall back.
    #[test]
    fn per_person_and_in_all_with_memory_released() {
        let per = Bound {
            reports: 4,
            bytes: 1000,
        };
        let all = Bound {
            reports: 10,
            bytes: 2500,
        };
        let pool = Pool::new(per, all);
        let alice = pool.store("alice");
        let bob = pool.store("bob");
        let a0 = alice.put("n", "t", "a".repeat(100)).unwrap();
        for _ in 0..4 {
            alice.put("n", "t", "a".repeat(100));
        }
        // Alice's fifth pushed out her first; Bob's store sees none of hers.
        assert!(alice.get(&a0).is_none());
        assert_eq!(alice.list().len(), 4);
        assert!(bob.list().is_empty());
        let a1 = alice.list()[0].0.clone();
        assert!(bob.get(&a1).is_none(), "another person's report");
        assert!(bob.why_unknown(&a1).contains("never yours"));
        // Alice's bytes: 4 x 300 would pass her 1000, so her oldest go to make room.
        for _ in 0..4 {
            alice.put("n", "t", "a".repeat(300));
        }
        assert_eq!(alice.list().len(), 3);
        assert_eq!(pool.usage(), (3, 900));
        // Eight people's floods: the pool never holds more than its bound, and the oldest (anyone's) go.
        let people: Vec<ReportStore> = (0..8).map(|i| pool.store(&format!("p{i}"))).collect();
        for p in &people {
            for _ in 0..4 {
                p.put("n", "t", "p".repeat(200));
                let (n, b) = pool.usage();
                assert!(n <= all.reports && b <= all.bytes, "{n} reports, {b} bytes");
            }
        }
        assert!(alice.list().is_empty(), "the oldest, Alice's, went first");
        let full = pool.usage();
        assert_eq!(full, (10, 2000));
        // A person's big report takes room from the oldest, and the bytes freed are counted back.
        let big = people[0].put("n", "t", "b".repeat(1000)).unwrap();
        let (n, b) = pool.usage();
        assert!(
            b <= all.bytes && n < full.0,
            "{n} reports, {b} bytes after the big one"
        );
        assert!(people[0].get(&big).is_some());
        assert!(people[0].put("n", "t", "x".repeat(1001)).is_none());
    }
}
