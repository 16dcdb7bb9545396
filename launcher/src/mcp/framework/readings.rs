//! Node readings kept for a conversation's next questions. An AI host diagnosing a node asks in a row
//! (health, then processes, then topology...): the first read-only node tool runs `node-probe describe`
//! once, whose report holds every part those tools answer (health, inventory, telemetry, topology, ECC,
//! processes), and later tools on the same node answer from that reading with no probe pod, for at most
//! `--reading-max-age` seconds (default 20, `crate::config::DEFAULT_READING_MAX_AGE_SECS`; 0 keeps
//! nothing) or less where the call asks (`max_age_s`, 0 reads afresh). Every answer says how old its
//! reading is.
//!
//! A reading is a person's: made with their rights (over HTTP every request impersonates its caller), kept
//! under their name and never served to anyone else. Bounded per person and in all, the least recently
//! used first out, its memory freed when it goes. A failed reading is never kept (a fact the probe could
//! not read, such as a GPU off the bus, is part of a reading and kept with it); an act on a
//! node (kill, reset, an active diagnostic, a watch window) drops everyone's readings of it before and
//! after it runs ([`crate::mcp::framework::Env::probe`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gpu_diag::analysis::describe::DescribeReport;
use schemars::JsonSchema;
use serde::Deserialize;

use gpu_diag::contract::ProbeMeta;
/// The largest `max_age_s` a call may ask (the server's own setting caps it anyway).
pub const MAX_ASKED_AGE_SECS: u32 = 3600;

/// How many readings, and how many bytes of them, a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub readings: usize,
    pub bytes: usize,
}

/// One person's bound (stdio's one person too): a describe report is tens of KiB on an 8-GPU node.
pub const PER_PERSON: Bound = Bound {
    readings: 32,
    bytes: 16 << 20,
};

/// Every person's together on a shared server.
pub const IN_ALL: Bound = Bound {
    readings: 512,
    bytes: 128 << 20,
};

/// A read-only node tool's freshness argument.
#[derive(Debug, Default, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxAge {
    /// Oldest kept reading to answer from, in seconds (0: read now).
    #[serde(default)]
    #[schemars(with = "u32", range(max = MAX_ASKED_AGE_SECS))]
    pub max_age_s: Option<u32>,
}

/// One kept reading: the node's `describe` report and what an answer from it says of the run that made it.
pub struct Reading {
    pub report: DescribeReport,
    /// The probe pod (namespace/name) or `local`.
    pub ran_in: String,
    /// node-probe's exit status.
    pub exit_code: i32,
    /// The probe's own metadata (source, host, boot id, collection time).
    pub probe: Option<ProbeMeta>,
    pub taken: Instant,
}

impl Reading {
    /// Whether a reading may be kept: node-probe ended well. A probe that failed (a non-zero exit, or no
    /// report at all, which never gets here) is never kept. Facts the probe could not read
    /// (`health.unreadable`: a GPU off the bus, a field NVML refuses) are part of what it read and are kept
    /// with it: each answer says them with the reading's age, and `max_age_s: 0` reads again. Not keeping
    /// such readings made every question on a sick node (the one a conversation is about) start its own
    /// pod: on the real-node testbed, whose fake NVML has a lost GPU, five questions cost five pods.
    pub fn keepable(&self) -> bool {
        self.exit_code == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    owner: String,
    context: Option<String>,
    node: String,
}

struct Kept {
    reading: Arc<Reading>,
    bytes: usize,
    /// Last use, for least-recently-used eviction.
    used: u64,
}

#[derive(Default)]
struct Inner {
    tick: u64,
    bytes: usize,
    kept: HashMap<Key, Kept>,
    /// Per person: readings kept and their bytes.
    per: HashMap<String, (usize, usize)>,
    /// Per node: how many times an act began or ended on it ([`Pool::forget_node`]). A read takes the
    /// node's generation as it starts and its reading is kept only if no act began or ended since: a read
    /// that overlapped an act is from before it, or from its middle.
    generation: HashMap<String, u64>,
}

impl Inner {
    fn remove(&mut self, key: &Key) -> bool {
        let Some(old) = self.kept.remove(key) else {
            return false;
        };
        self.bytes -= old.bytes;
        if let Some(p) = self.per.get_mut(&key.owner) {
            p.0 -= 1;
            p.1 -= old.bytes;
            if p.0 == 0 {
                self.per.remove(&key.owner);
            }
        }
        if self.kept.capacity() > 64 && self.kept.len() < self.kept.capacity() / 4 {
            self.kept.shrink_to_fit();
        }
        true
    }

    /// Drop the least recently used reading (of `owner` only, where given); false where there was none.
    fn evict_lru(&mut self, owner: Option<&str>) -> bool {
        let victim = self
            .kept
            .iter()
            .filter(|(k, _)| owner.is_none_or(|o| k.owner == o))
            .min_by_key(|(_, v)| v.used)
            .map(|(k, _)| k.clone());
        victim.is_some_and(|k| self.remove(&k))
    }

    fn expire(&mut self, max_age: Duration, now: Instant) {
        let old: Vec<Key> = self
            .kept
            .iter()
            .filter(|(_, v)| now.duration_since(v.reading.taken) > max_age)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
        }
    }
}

/// The readings of every person of one server.
pub struct Pool {
    max_age: Duration,
    per_person: Bound,
    in_all: Bound,
    inner: Mutex<Inner>,
    /// One probe at a time per person and node: concurrent first questions share one reading.
    flights: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

impl Pool {
    pub fn new(max_age: Duration, per_person: Bound, in_all: Bound) -> Arc<Pool> {
        Arc::new(Pool {
            max_age,
            per_person,
            in_all,
            inner: Mutex::new(Inner::default()),
            flights: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Readings kept and their bytes, in all.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let g = self.lock();
        (g.kept.len(), g.bytes)
    }

    /// One person's store on this pool.
    pub fn store(self: &Arc<Self>, owner: &str) -> ReadingStore {
        ReadingStore {
            pool: self.clone(),
            owner: owner.to_string(),
        }
    }

    /// Drop every person's readings of `node` (in any context): it is about to change, or just did. The
    /// node's generation moves on, so a read running now keeps nothing ([`ReadingStore::put`]).
    pub fn forget_node(&self, node: &str) {
        let mut g = self.lock();
        *g.generation.entry(node.to_string()).or_default() += 1;
        let keys: Vec<Key> = g.kept.keys().filter(|k| k.node == node).cloned().collect();
        for k in keys {
            g.remove(&k);
        }
    }
}

/// One person's readings.
pub struct ReadingStore {
    pool: Arc<Pool>,
    owner: String,
}

impl ReadingStore {
    /// The one person of stdio: their bound is the whole store's.
    pub fn new(max_age: Duration) -> Self {
        Pool::new(max_age, PER_PERSON, PER_PERSON).store("")
    }

    /// The server's setting (`--reading-max-age`); zero keeps nothing.
    pub fn max_age(&self) -> Duration {
        self.pool.max_age
    }

    /// The oldest a reading may be for a call that asks `asked` (None: the server's setting).
    pub fn allowed(&self, asked: Option<u32>) -> Duration {
        let max = self.pool.max_age;
        asked.map_or(max, |s| max.min(Duration::from_secs(u64::from(s))))
    }

    fn key(&self, context: Option<&str>, node: &str) -> Key {
        Key {
            owner: self.owner.clone(),
            context: context.map(str::to_string),
            node: node.to_string(),
        }
    }

    /// This person's reading of the node, if one is at most `allowed` old, with its age.
    pub fn get(
        &self,
        context: Option<&str>,
        node: &str,
        allowed: Duration,
    ) -> Option<(Arc<Reading>, Duration)> {
        if allowed.is_zero() {
            return None;
        }
        let now = Instant::now();
        let key = self.key(context, node);
        let mut g = self.pool.lock();
        g.expire(self.pool.max_age, now);
        g.tick += 1;
        let tick = g.tick;
        let k = g.kept.get_mut(&key)?;
        let age = now.duration_since(k.reading.taken);
        if age > allowed {
            return None;
        }
        k.used = tick;
        Some((k.reading.clone(), age))
    }

    /// The node's generation now: taken as a read starts, given back to [`ReadingStore::put`].
    pub fn generation(&self, node: &str) -> u64 {
        self.pool
            .lock()
            .generation
            .get(node)
            .copied()
            .unwrap_or_default()
    }

    /// Keep a reading of the node (`bytes`: its size as JSON), replacing this person's earlier one. Not
    /// kept: with the setting at 0, a failed reading, one bigger than a person's budget, and one whose
    /// read began before an act on the node began or ended (`generation`, taken as the read started, is
    /// not the node's now). The person's least recently used go first past their bound, then anyone's
    /// past the pool's.
    pub fn put(
        &self,
        context: Option<&str>,
        node: &str,
        generation: u64,
        reading: Reading,
        bytes: usize,
    ) -> bool {
        let (per, all) = (self.pool.per_person, self.pool.in_all);
        if self.pool.max_age.is_zero() || !reading.keepable() || bytes > per.bytes.min(all.bytes) {
            return false;
        }
        let key = self.key(context, node);
        let mut g = self.pool.lock();
        if g.generation.get(node).copied().unwrap_or_default() != generation {
            return false;
        }
        g.expire(self.pool.max_age, Instant::now());
        g.remove(&key);
        loop {
            let (n, b) = g.per.get(&self.owner).copied().unwrap_or_default();
            if (n < per.readings && b + bytes <= per.bytes) || !g.evict_lru(Some(&self.owner)) {
                break;
            }
        }
        while (g.kept.len() >= all.readings || g.bytes + bytes > all.bytes) && g.evict_lru(None) {}
        g.tick += 1;
        let used = g.tick;
        g.bytes += bytes;
        let p = g.per.entry(self.owner.clone()).or_default();
        p.0 += 1;
        p.1 += bytes;
        g.kept.insert(
            key,
            Kept {
                reading: Arc::new(reading),
                bytes,
                used,
            },
        );
        true
    }

    /// Drop everyone's readings of `node`.
    pub fn forget_node(&self, node: &str) {
        self.pool.forget_node(node);
    }

    /// Wait for this person's probe of the node already running, if any: the one that holds the returned
    /// guard reads the node, the others then find its reading.
    pub async fn flight(
        &self,
        context: Option<&str>,
        node: &str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut f = self.pool.flights.lock().unwrap_or_else(|e| e.into_inner());
            // Only flights someone still holds or waits for stay: the map never outgrows the calls running.
            f.retain(|_, l| Arc::strong_count(l) > 1);
            f.entry(self.key(context, node)).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// A request that acts on the node or watches it change (kill, reset, an active diagnostic, a watch window):
/// it always probes, and everyone's readings of the node go before and after it.
pub fn changes_node(request: &gpu_diag::command::Request) -> bool {
    use gpu_diag::command::Request as R;
    matches!(
        request,
        R::Kill { .. } | R::Reset { .. } | R::DcgmDiag { .. } | R::RvsDiag { .. } | R::Watch { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(taken: Instant, exit_code: i32) -> Reading {
        let facts = gpu_diag::scenarios::parse(
            &gpu_diag::scenarios::BUILTIN
                .iter()
                .find(|s| s.name == "dgx-h100-healthy")
                .expect("built-in scenario")
                .json(),
        )
        .expect("scenario");
        Reading {
            report: gpu_diag::analysis::describe::analyze(&facts, &Default::default()),
            ran_in: "ns/pod".into(),
            exit_code,
            probe: None,
            taken,
        }
    }

    fn ago(secs: u64) -> Instant {
        Instant::now() - Duration::from_secs(secs)
    }

    #[test]
    fn a_reading_answers_within_its_age_and_the_callers() {
        let s = ReadingStore::new(Duration::from_secs(20));
        assert!(s.put(None, "n1", s.generation("n1"), reading(ago(7), 0), 100));
        let (_, age) = s.get(None, "n1", s.allowed(None)).expect("kept");
        assert_eq!(age.as_secs(), 7);
        // The caller asks for fresher than the reading: no answer from it (and it stays for others).
        assert!(s.get(None, "n1", s.allowed(Some(5))).is_none());
        assert!(s.get(None, "n1", s.allowed(Some(0))).is_none());
        assert!(s.get(None, "n1", s.allowed(Some(10))).is_some());
        // Asking for older than the server allows is capped by the server.
        assert_eq!(s.allowed(Some(3600)), Duration::from_secs(20));
        // Another node, another context: nothing.
        assert!(s.get(None, "n2", s.allowed(None)).is_none());
        assert!(s.get(Some("other"), "n1", s.allowed(None)).is_none());
    }

    #[test]
    fn an_expired_reading_is_dropped_and_freed() {
        let s = ReadingStore::new(Duration::from_secs(20));
        assert!(s.put(None, "n1", s.generation("n1"), reading(ago(21), 0), 100));
        assert!(s.get(None, "n1", Duration::from_secs(3600)).is_none());
        assert_eq!(s.pool.usage(), (0, 0), "expired and freed");
    }

    #[test]
    fn zero_keeps_nothing() {
        let s = ReadingStore::new(Duration::ZERO);
        assert!(!s.put(
            None,
            "n1",
            s.generation("n1"),
            reading(Instant::now(), 0),
            100
        ));
        assert!(s.get(None, "n1", Duration::from_secs(20)).is_none());
        assert_eq!(s.pool.usage(), (0, 0));
    }

    #[test]
    fn a_failed_reading_is_never_kept_and_a_partial_one_is_kept_as_read() {
        let s = ReadingStore::new(Duration::from_secs(20));
        assert!(
            !s.put(
                None,
                "n1",
                s.generation("n1"),
                reading(Instant::now(), 1),
                100
            ),
            "exit 1"
        );
        assert!(s.get(None, "n1", Duration::from_secs(20)).is_none());
        assert_eq!(s.pool.usage(), (0, 0));
        // A GPU off the bus is the node's state, not the probe's failure: kept, and said again from it.
        let mut partial = reading(Instant::now(), 0);
        partial
            .report
            .health
            .unreadable
            .push("gpu[1]: lost (gpu_is_lost): every reading but its identity".into());
        assert!(partial.keepable());
        assert!(
            s.put(None, "n1", s.generation("n1"), partial, 100),
            "a lost GPU's reading"
        );
        let (kept, _) = s.get(None, "n1", Duration::from_secs(20)).expect("kept");
        assert_eq!(
            kept.report.health.unreadable,
            ["gpu[1]: lost (gpu_is_lost): every reading but its identity"]
        );
    }

    #[test]
    fn an_act_drops_everyones_reading_of_the_node() {
        let pool = Pool::new(Duration::from_secs(20), PER_PERSON, IN_ALL);
        let (alice, bob) = (pool.store("alice"), pool.store("bob"));
        alice.put(
            None,
            "n1",
            alice.generation("n1"),
            reading(Instant::now(), 0),
            100,
        );
        bob.put(
            Some("ctx"),
            "n1",
            bob.generation("n1"),
            reading(Instant::now(), 0),
            100,
        );
        alice.put(
            None,
            "n2",
            alice.generation("n2"),
            reading(Instant::now(), 0),
            100,
        );
        alice.forget_node("n1");
        assert!(alice.get(None, "n1", Duration::from_secs(20)).is_none());
        assert!(
            bob.get(Some("ctx"), "n1", Duration::from_secs(20))
                .is_none()
        );
        assert!(alice.get(None, "n2", Duration::from_secs(20)).is_some());
        assert_eq!(pool.usage(), (1, 100));
    }

    /// Two people on one node: each finds only the reading made as them.
    #[test]
    fn a_reading_never_serves_another_person() {
        let pool = Pool::new(Duration::from_secs(20), PER_PERSON, IN_ALL);
        let (alice, bob) = (pool.store("alice"), pool.store("bob"));
        let mut a = reading(Instant::now(), 0);
        a.ran_in = "ns/alices-probe".into();
        alice.put(None, "n1", alice.generation("n1"), a, 100);
        assert!(bob.get(None, "n1", Duration::from_secs(20)).is_none());
        let mut b = reading(Instant::now(), 0);
        b.ran_in = "ns/bobs-probe".into();
        bob.put(None, "n1", bob.generation("n1"), b, 100);
        let got = |s: &ReadingStore| {
            s.get(None, "n1", Duration::from_secs(20))
                .unwrap()
                .0
                .ran_in
                .clone()
        };
        assert_eq!(got(&alice), "ns/alices-probe");
        assert_eq!(got(&bob), "ns/bobs-probe");
    }

    #[test]
    fn bounded_per_person_and_in_all_least_recently_used_first() {
        let per = Bound {
            readings: 3,
            bytes: 1000,
        };
        let all = Bound {
            readings: 5,
            bytes: 1500,
        };
        let pool = Pool::new(Duration::from_secs(20), per, all);
        let alice = pool.store("alice");
        for n in ["a", "b", "c"] {
            alice.put(
                None,
                n,
                alice.generation(n),
                reading(Instant::now(), 0),
                100,
            );
        }
        // `a` used last: `b` is the least recently used and goes for `d`.
        assert!(alice.get(None, "a", Duration::from_secs(20)).is_some());
        alice.put(
            None,
            "d",
            alice.generation("d"),
            reading(Instant::now(), 0),
            100,
        );
        assert!(alice.get(None, "b", Duration::from_secs(20)).is_none());
        assert!(alice.get(None, "a", Duration::from_secs(20)).is_some());
        assert_eq!(pool.usage(), (3, 300));
        // Bytes: a 900-byte reading leaves room for one 100-byte reading of hers, the most recently used (`a`).
        alice.put(
            None,
            "big",
            alice.generation("big"),
            reading(Instant::now(), 0),
            900,
        );
        assert_eq!(pool.usage(), (2, 1000));
        assert!(alice.get(None, "a", Duration::from_secs(20)).is_some());
        assert!(!alice.put(
            None,
            "huge",
            alice.generation("huge"),
            reading(Instant::now(), 0),
            1001
        ));
        // Others fill the pool: anyone's least recently used go, and the total never passes the bound.
        for i in 0..6 {
            let p = pool.store(&format!("p{i}"));
            p.put(
                None,
                "n",
                p.generation("n"),
                reading(Instant::now(), 0),
                300,
            );
            let (n, b) = pool.usage();
            assert!(
                n <= all.readings && b <= all.bytes,
                "{n} readings, {b} bytes"
            );
        }
        assert!(alice.get(None, "big", Duration::from_secs(20)).is_none());
    }

    #[tokio::test]
    async fn concurrent_first_questions_wait_for_one_probe() {
        let s = Arc::new(ReadingStore::new(Duration::from_secs(20)));
        let first = s.flight(None, "n1").await;
        let s2 = s.clone();
        let second = tokio::spawn(async move {
            let _g = s2.flight(None, "n1").await;
            s2.get(None, "n1", Duration::from_secs(20)).is_some()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "waits for the first probe");
        s.put(
            None,
            "n1",
            s.generation("n1"),
            reading(Instant::now(), 0),
            100,
        );
        drop(first);
        assert!(second.await.unwrap(), "then finds its reading");
        // Another node's flight does not wait.
        let _other = s.flight(None, "n2").await;
    }

    /// A read that began before an act and ended after it (even after the act's second drop) is from
    /// before the act: never kept, so no one is answered from it. A read begun after the act is kept.
    #[test]
    fn a_read_that_overlapped_an_act_is_not_kept() {
        let pool = Pool::new(Duration::from_secs(20), PER_PERSON, IN_ALL);
        let (alice, bob) = (pool.store("alice"), pool.store("bob"));
        // Alice's read starts; Bob's kill on the node drops readings before and after it runs.
        let started = alice.generation("n1");
        bob.forget_node("n1");
        bob.forget_node("n1");
        assert!(!alice.put(None, "n1", started, reading(Instant::now(), 0), 100));
        assert!(alice.get(None, "n1", Duration::from_secs(20)).is_none());
        // Only an act's start seen (the act still running): not kept either.
        let started = alice.generation("n1");
        bob.forget_node("n1");
        assert!(!alice.put(None, "n1", started, reading(Instant::now(), 0), 100));
        // Another node's act does not matter; a read begun after the act is kept.
        let started = alice.generation("n1");
        bob.forget_node("n2");
        assert!(alice.put(None, "n1", started, reading(Instant::now(), 0), 100));
        assert!(alice.get(None, "n1", Duration::from_secs(20)).is_some());
    }
}
