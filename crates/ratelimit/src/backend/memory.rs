//! GCRA state in this process: sharded, bounded, swept.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use hashbrown::HashTable;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use smallvec::SmallVec;
use tokio::time::Instant;

use crate::decision::{Decision, Evaluation};
use crate::{Quota, RateLimitError};

/// Limits of the in-memory store.
///
/// ```toml
/// max_keys = 1000000
/// sweep_interval = "60s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// The most keys held at once. When a shard is full, expired keys go first, then the
    /// keys closest to a full budget (those that lose least by being forgotten).
    pub max_keys: usize,
    /// How often a shard that receives a new key drops the keys whose budget is full again.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Independent locks the keys are spread over (rounded up to a power of two).
    pub shards: usize,
    /// Where the store reads the time.
    pub clock: ClockSource,
}

/// Where a [`MemoryStore`] reads the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// `tokio::time::Instant`: follows `tokio::time::pause` and `advance`, so tests of code
    /// using the limiter can move time by hand.
    #[default]
    Tokio,
    /// The CPU's time-stamp counter (through `quanta`), several times cheaper to read than the
    /// system clock on most virtual machines; ignores tokio's paused time.
    Tsc,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_keys: 1_000_000,
            sweep_interval: Duration::from_secs(60),
            shards: 64,
            clock: ClockSource::Tokio,
        }
    }
}

/// The in-memory GCRA store: one theoretical arrival time per key and quota.
///
/// Keys are spread over independent shards, each behind its own short lock, so there is no
/// global lock on the hot path. The number of keys is bounded by [`MemoryConfig::max_keys`]:
/// an attacker rotating client addresses makes the store forget the keys that lose least by
/// it, rather than grow. Clones share the same state, so several routes' limiters can draw on
/// one budget.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Unique in the process: names the store in threads' hot-key caches.
    id: u64,
    shards: Box<[Padded]>,
    hasher: foldhash::fast::RandomState,
    /// A second, independently seeded hash: with the first it forms the key's fingerprint.
    fingerprint: foldhash::quality::RandomState,
    epoch: Instant,
    /// Set for [`ClockSource::Tsc`], with its reading at `epoch`.
    tsc: Option<(quanta::Clock, u64)>,
    shard_capacity: usize,
    sweep_every: u64,
    /// Quota names by id; entries store the id, four bytes, instead of the name.
    quota_names: Mutex<Vec<Arc<str>>>,
}

/// A shard on its own cache lines, so two cores locking neighbouring shards do not contend.
///
/// A decision on one quota of a known key takes the lock shared and updates the TAT with a
/// compare-and-swap; new keys and decisions over several quotas (which must be all or nothing)
/// take it exclusively. A key that a thread decides twice in a row skips the lock altogether
/// (see [`hot`]): on one hot key, two cores writing the lock word cost more than the decision.
#[derive(Debug)]
#[repr(align(128))]
struct Padded(RwLock<Shard>);

#[derive(Debug, Default)]
struct Shard {
    /// Moves the table's header off the lock's cache line: readers of a hot key keep
    /// writing the lock word, and the header would go with it on every lookup.
    _apart: CacheLine,
    table: HashTable<Entry>,
    last_sweep: u64,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct CacheLine;

/// One key in 40 bytes, so that a lookup touches one cache line and the table stays small.
///
/// The key text is not kept: two independently seeded 64-bit hashes identify it. Two keys would
/// have to agree on both, 128 bits chosen by seeds a client never sees, to share a budget.
#[derive(Debug)]
struct Entry {
    hash: u64,
    fingerprint: u64,
    slots: SmallVec<[Slot; 1]>,
}

/// The TAT of one key and quota.
#[derive(Debug)]
enum Slot {
    /// Reached only through the table, under the shard's lock.
    Local { quota: u32, tat: AtomicU64 },
    /// Also held by threads' hot-key caches, which update it without the lock. Writers under
    /// the exclusive lock first swap in [`BUSY`], so that no lock-free update lands between
    /// their read and their write; a slot removed from the table keeps `BUSY` for good.
    Shared { quota: u32, tat: Arc<AtomicU64> },
}

/// Marks a shared TAT as taken by a writer holding the exclusive lock, or as removed. Never a
/// real TAT: those are clamped below it.
const BUSY: u64 = u64::MAX;

/// Quota ids of one store, resolved once per limiter.
pub(crate) type QuotaIds = SmallVec<[u32; 4]>;

/// Gives each store its id; 0 is never used, so empty caches match no store.
static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

impl MemoryStore {
    /// Builds an empty store.
    pub fn new(config: &MemoryConfig) -> Result<Self, RateLimitError> {
        if config.max_keys == 0 {
            return Err(RateLimitError::Config {
                field: "max_keys",
                reason: "must be at least 1".into(),
            });
        }
        if config.shards == 0 || config.shards > 4096 {
            return Err(RateLimitError::Config {
                field: "shards",
                reason: format!("must be between 1 and 4096, not {}", config.shards),
            });
        }
        let count = config.shards.next_power_of_two();
        let shards = (0..count)
            .map(|_| Padded(RwLock::new(Shard::default())))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
                shards,
                hasher: foldhash::fast::RandomState::default(),
                fingerprint: foldhash::quality::RandomState::default(),
                epoch: Instant::now(),
                tsc: match config.clock {
                    ClockSource::Tokio => None,
                    ClockSource::Tsc => {
                        let clock = quanta::Clock::new();
                        let start = clock.raw();
                        Some((clock, start))
                    }
                },
                shard_capacity: config.max_keys.div_ceil(count),
                sweep_every: u64::try_from(config.sweep_interval.as_nanos()).unwrap_or(u64::MAX),
                quota_names: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Decides a request of `cost` for `key` against every quota at once.
    pub fn decide(&self, key: &str, quotas: &[Quota], cost: u32) -> Decision {
        let ids = self.resolve(quotas);
        self.decide_resolved(key, quotas, &ids, cost)
    }

    /// The ids of `quotas` in this store, registering new names.
    pub(crate) fn resolve(&self, quotas: &[Quota]) -> QuotaIds {
        let mut names = self.inner.quota_names.lock();
        quotas
            .iter()
            .map(|quota| {
                let position = names.iter().position(|n| **n == *quota.name());
                let index = position.unwrap_or_else(|| {
                    names.push(quota.name_arc().clone());
                    names.len() - 1
                });
                u32::try_from(index).unwrap_or(u32::MAX)
            })
            .collect()
    }

    /// [`Self::decide`] with ids from [`Self::resolve`].
    pub(crate) fn decide_resolved(
        &self,
        key: &str,
        quotas: &[Quota],
        ids: &[u32],
        cost: u32,
    ) -> Decision {
        let inner = &*self.inner;
        let hash = inner.hasher.hash_one(key.as_bytes());
        let now = self.now();

        // A key this thread decides twice in a row goes into its hot-key cache.
        let mut repeated = false;
        if let [id] = ids {
            let spend = |tat: &AtomicU64| spend_one(tat, quotas, now, cost);
            match hot::spend(inner.id, *id, key, hash, spend) {
                Ok(tat) => return describe_one(quotas, tat, now, cost),
                Err(again) => repeated = again,
            }
        }

        let fingerprint = inner.fingerprint.hash_one(key.as_bytes());
        // The table uses the low bits for the bucket and the top seven as a tag; the shard
        // takes bits in between, so that neither loses entropy within a shard.
        let index = usize::try_from(hash >> 40).unwrap_or(0) & (inner.shards.len() - 1);
        let lock = &inner.shards[index].0;
        let matches = |e: &Entry| e.hash == hash && e.fingerprint == fingerprint;

        let mut promote = None;
        if let [id] = ids {
            let shard = lock.read();
            let slot = shard.table.find(hash, matches).and_then(|e| e.slot(*id));
            match slot {
                Some(Slot::Local { tat, .. }) if !repeated => {
                    if let Some(tat) = spend_one(tat, quotas, now, cost) {
                        return describe_one(quotas, tat, now, cost);
                    }
                }
                Some(Slot::Shared { tat, .. }) => {
                    if repeated {
                        hot::install(inner.id, *id, key, hash, tat);
                    }
                    if let Some(tat) = spend_one(tat, quotas, now, cost) {
                        return describe_one(quotas, tat, now, cost);
                    }
                }
                // Only the exclusive lock may turn a local slot into a shared one.
                Some(Slot::Local { .. }) => promote = Some(*id),
                None => {}
            }
        }

        let mut shard = lock.write();
        if let Some(entry) = shard.table.find_mut(hash, matches) {
            if let Some(tat) = promote.and_then(|id| entry.share(id)) {
                hot::install(inner.id, ids[0], key, hash, &tat);
            }
            // Claimed first: from here to the write-back, lock-free updates wait for the lock.
            let mut tats: SmallVec<[u64; 4]> = entry.slots.iter().map(Slot::claim).collect();
            let read = ids.iter().map(|&id| entry.position(id).map(|p| tats[p]));
            let eval = Evaluation::new(quotas, read, now, cost, Quota::params_nanos, 1);
            for (i, &id) in ids.iter().enumerate() {
                if let Some(tat) = eval.commit(i) {
                    match entry.position(id) {
                        Some(p) if p < tats.len() => tats[p] = tat,
                        // A slot pushed just above, for a quota listed twice.
                        Some(p) => entry.slots[p].release(tat),
                        None => entry.slots.push(Slot::Local {
                            quota: id,
                            tat: AtomicU64::new(tat),
                        }),
                    }
                }
            }
            for (slot, &tat) in entry.slots.iter_mut().zip(&tats) {
                slot.release(tat);
            }
            return eval.decision;
        }

        let fresh = ids.iter().map(|_| None);
        let eval = Evaluation::new(quotas, fresh, now, cost, Quota::params_nanos, 1);
        let slots: SmallVec<[Slot; 1]> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, &quota)| {
                Some(Slot::Local {
                    quota,
                    tat: AtomicU64::new(eval.commit(i)?),
                })
            })
            .collect();
        if !slots.is_empty() {
            inner.make_room(&mut shard, now);
            let entry = Entry {
                hash,
                fingerprint,
                slots,
            };
            shard.table.insert_unique(hash, entry, |e| e.hash);
        }
        eval.decision
    }

    /// How many keys the store holds, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.0.read().table.len())
            .sum()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nanoseconds since the store was built.
    fn now(&self) -> u64 {
        if let Some((clock, start)) = &self.inner.tsc {
            return clock.delta_as_nanos(*start, clock.raw());
        }
        let elapsed = Instant::now().saturating_duration_since(self.inner.epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Inner {
    /// Called before inserting a key: sweeps now and then, and evicts when full.
    fn make_room(&self, shard: &mut Shard, now: u64) {
        let full = shard.table.len() >= self.shard_capacity;
        if full || now.saturating_sub(shard.last_sweep) >= self.sweep_every {
            shard.last_sweep = now;
            shard.table.retain(|e| !e.retire(now));
        }
        if shard.table.len() < self.shard_capacity {
            return;
        }

        // Still full of live keys: forget the tenth closest to a full budget, in one pass, so
        // that the cost is paid once per many insertions rather than on each.
        let mut expiries: Vec<u64> = shard.table.iter().map(Entry::expires).collect();
        let cut = (expiries.len() / 10).max(1);
        let (_, threshold, _) = expiries.select_nth_unstable(cut - 1);
        let threshold = *threshold;
        let before = shard.table.len();
        shard.table.retain(|e| !e.retire(threshold));
        let evicted = before - shard.table.len();
        metrics::counter!("rampart_ratelimit_memory_evictions_total").increment(evicted as u64);
        tracing::debug!(
            evicted,
            "rate limit store full, forgot the keys closest to a full budget"
        );
    }
}

impl Entry {
    /// After this instant every quota of the key is full again: the entry is as good as absent.
    fn expires(&self) -> u64 {
        let tats = self.slots.iter().map(|s| s.tat().load(Ordering::Relaxed));
        tats.max().unwrap_or(0)
    }

    fn slot(&self, quota: u32) -> Option<&Slot> {
        self.slots.iter().find(|s| s.quota() == quota)
    }

    fn position(&self, quota: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.quota() == quota)
    }

    /// Under the exclusive lock: makes the slot of `quota` reachable without the lock.
    fn share(&mut self, quota: u32) -> Option<Arc<AtomicU64>> {
        let slot = self.slots.iter_mut().find(|s| s.quota() == quota)?;
        let tat = match slot {
            Slot::Shared { tat, .. } => return Some(tat.clone()),
            Slot::Local { tat, .. } => Arc::new(AtomicU64::new(*tat.get_mut())),
        };
        *slot = Slot::Shared {
            quota,
            tat: tat.clone(),
        };
        Some(tat)
    }

    /// Under the exclusive lock: whether every TAT of the entry is at most `bound`, in which
    /// case its shared slots are retired (left [`BUSY`]) and the entry must leave the table.
    /// All of them are retired, or none.
    fn retire(&self, bound: u64) -> bool {
        let mut taken: SmallVec<[(&AtomicU64, u64); 2]> = SmallVec::new();
        for slot in &self.slots {
            let retired = match slot {
                Slot::Local { tat, .. } => tat.load(Ordering::Relaxed) <= bound,
                Slot::Shared { tat, .. } => {
                    let current = tat.load(Ordering::Acquire);
                    let swapped = current <= bound
                        && tat
                            .compare_exchange(current, BUSY, Ordering::AcqRel, Ordering::Acquire)
                            .is_ok();
                    if swapped {
                        taken.push((&**tat, current));
                    }
                    swapped
                }
            };
            if !retired {
                // A lock-free update may have made the key live again: hand back what was
                // taken. Only this thread changes a cell holding BUSY, so the old values stand.
                for (tat, value) in taken {
                    tat.store(value, Ordering::Release);
                }
                return false;
            }
        }
        true
    }
}

impl Slot {
    fn quota(&self) -> u32 {
        match self {
            Self::Local { quota, .. } | Self::Shared { quota, .. } => *quota,
        }
    }

    fn tat(&self) -> &AtomicU64 {
        match self {
            Self::Local { tat, .. } => tat,
            Self::Shared { tat, .. } => tat,
        }
    }

    /// Under the exclusive lock: the TAT, with lock-free updates held off until [`Self::release`].
    fn claim(&self) -> u64 {
        match self {
            Self::Local { tat, .. } => tat.load(Ordering::Relaxed),
            Self::Shared { tat, .. } => tat.swap(BUSY, Ordering::AcqRel),
        }
    }

    /// Ends a [`Self::claim`] with the TAT to keep.
    fn release(&mut self, value: u64) {
        match self {
            Self::Local { tat, .. } => *tat.get_mut() = value,
            Self::Shared { tat, .. } => tat.store(value.min(BUSY - 1), Ordering::Release),
        }
    }
}

/// One quota of a known key, under the shared lock or from a hot-key cache: retry until the
/// TAT this decision read is still the one it replaces, and return that TAT. A refusal writes
/// nothing. The loop holds only the arithmetic, so that racing threads rarely see their swap
/// fail. `None` when a writer holding the exclusive lock has the slot, or it was removed: the
/// caller must go through the lock.
fn spend_one(tat: &AtomicU64, quotas: &[Quota], now: u64, cost: u32) -> Option<u64> {
    let params = quotas[0].params_nanos();
    let mut current = tat.load(Ordering::Acquire);
    loop {
        if current == BUSY {
            return None;
        }
        let verdict = crate::gcra::decide(Some(current), now, cost, params);
        if !verdict.allowed {
            return Some(current);
        }
        // Limitation: a TAT more than 584 years ahead is stored one nanosecond short of
        // saturation, since the saturated value marks a busy slot.
        let next = verdict.new_tat.min(BUSY - 1);
        match tat.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(current),
            Err(actual) => current = actual,
        }
    }
}

/// The decision [`spend_one`] took from the TAT it read.
fn describe_one(quotas: &[Quota], tat: u64, now: u64, cost: u32) -> Decision {
    Evaluation::single(&quotas[0], Some(tat), now, cost)
}

/// Each thread's hot key: the one key and quota it last decided twice in a row, with that
/// TAT's cell, so that the next decisions on it take no lock.
///
/// One entry per thread whatever the number of stores, so the memory it holds is bounded by
/// the number of threads. A cell whose key left the table holds [`BUSY`], so a cache never
/// decides on a forgotten key.
mod hot {
    use super::{Arc, AtomicU64, RefCell};

    #[derive(Debug)]
    struct Cache {
        /// The store and key hash this thread last looked up in a table.
        last: (u64, u64),
        hot: Option<HotKey>,
    }

    #[derive(Debug)]
    struct HotKey {
        store: u64,
        quota: u32,
        hash: u64,
        key: String,
        tat: Arc<AtomicU64>,
    }

    thread_local! {
        static CACHE: RefCell<Cache> = const {
            RefCell::new(Cache { last: (0, 0), hot: None })
        };
    }

    /// Spends from this thread's hot key if it is `key` and `quota` of `store`, returning what
    /// `spend` returns. Otherwise (or if the cell is busy or removed) `Err`, saying whether the
    /// previous table lookup of this thread was for the same key.
    pub(super) fn spend(
        store: u64,
        quota: u32,
        key: &str,
        hash: u64,
        spend: impl FnOnce(&AtomicU64) -> Option<u64>,
    ) -> Result<u64, bool> {
        CACHE
            .try_with(|cache| {
                let Ok(mut cache) = cache.try_borrow_mut() else {
                    return Err(false);
                };
                if let Some(hot) = &cache.hot
                    && hot.hash == hash
                    && hot.store == store
                    && hot.quota == quota
                    && hot.key == key
                {
                    match spend(&hot.tat) {
                        Some(tat) => return Ok(tat),
                        // Busy or removed: dropped, the lock will say which.
                        None => cache.hot = None,
                    }
                }
                let repeated = cache.last == (store, hash);
                cache.last = (store, hash);
                Err(repeated)
            })
            .unwrap_or(Err(false))
    }

    /// Makes `key` this thread's hot key.
    pub(super) fn install(store: u64, quota: u32, key: &str, hash: u64, tat: &Arc<AtomicU64>) {
        let _ = CACHE.try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else {
                return;
            };
            match &mut cache.hot {
                // Reuses the key's buffer: installing happens whenever a key repeats.
                Some(hot) => {
                    hot.store = store;
                    hot.quota = quota;
                    hot.hash = hash;
                    hot.key.clear();
                    hot.key.push_str(key);
                    if !Arc::ptr_eq(&hot.tat, tat) {
                        hot.tat = tat.clone();
                    }
                }
                None => {
                    cache.hot = Some(HotKey {
                        store,
                        quota,
                        hash,
                        key: key.to_owned(),
                        tat: tat.clone(),
                    });
                }
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn store(max_keys: usize) -> MemoryStore {
        MemoryStore::new(&MemoryConfig {
            max_keys,
            shards: 1,
            ..MemoryConfig::default()
        })
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_by_one_quota_consumes_none() {
        let store = store(100);
        let quotas = [
            Quota::parse("10/minute").unwrap(),
            Quota::parse("2/hour").unwrap(),
        ];

        // Two pass; the third is refused by the hourly quota only.
        assert!(store.decide("k", &quotas, 1).is_allowed());
        assert!(store.decide("k", &quotas, 1).is_allowed());
        let refused = store.decide("k", &quotas, 1);
        assert!(!refused.is_allowed());
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(1800)));

        // The minute quota was not charged for the refusal: 8 left, not 7.
        assert_eq!(refused.quotas()[0].remaining(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn rotating_keys_cannot_grow_the_store_past_its_bound() {
        let store = store(1_000);
        let quotas = [Quota::parse("5/day").unwrap()];
        for i in 0..20_000 {
            assert!(
                store
                    .decide(&format!("attacker-{i}"), &quotas, 1)
                    .is_allowed()
            );
        }
        assert!(store.len() <= 1_000, "{} keys held", store.len());
    }

    #[tokio::test(start_paused = true)]
    async fn keys_whose_budget_refilled_are_swept() {
        let store = MemoryStore::new(&MemoryConfig {
            sweep_interval: Duration::from_secs(10),
            ..MemoryConfig::default()
        })
        .unwrap();
        let quotas = [Quota::parse("1/s").unwrap()];
        for i in 0..1_000 {
            store.decide(&format!("k{i}"), &quotas, 1);
        }
        assert_eq!(store.len(), 1_000);

        // After the sweep interval, new keys arriving in each shard sweep out the old ones.
        tokio::time::advance(Duration::from_secs(11)).await;
        for i in 0..10_000 {
            store.decide(&format!("fresh{i}"), &quotas, 1);
        }
        assert_eq!(store.len(), 10_000);
    }

    /// Four threads race for one key: the budget is never overspent, on the shared-lock path
    /// (one quota) or the exclusive one (two quotas).
    #[test]
    fn racing_threads_never_overspend() {
        for (specs, budget) in [
            (&["1000/day"][..], 1000),
            (&["1000/day", "300/hour"][..], 300),
        ] {
            let store = MemoryStore::new(&MemoryConfig::default()).unwrap();
            let quotas: Vec<Quota> = specs.iter().map(|s| Quota::parse(s).unwrap()).collect();
            let admitted = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..1_000 {
                            if store.decide("hot", &quotas, 1).is_allowed() {
                                admitted.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            assert_eq!(admitted.into_inner(), budget, "{specs:?}");
        }
    }

    /// A one-quota limiter on the hot-key path and a two-quota limiter on the exclusive lock
    /// race for one budget: every unit of it is spent once, never twice and never lost.
    #[test]
    fn hot_keys_and_exclusive_decisions_share_one_budget_exactly() {
        let store = MemoryStore::new(&MemoryConfig::default()).unwrap();
        // Bursts far above the rates, so that nothing refills while the test runs.
        let daily = Quota::parse("1/day burst 100000").unwrap();
        let single = [daily.clone()];
        let double = [daily, Quota::parse("1/hour burst 30000").unwrap()];
        let (by_single, by_double) = (AtomicU64::new(0), AtomicU64::new(0));
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let (quotas, admitted) = if thread % 2 == 0 {
                    (&single[..], &by_single)
                } else {
                    (&double[..], &by_double)
                };
                let store = &store;
                scope.spawn(move || {
                    for _ in 0..50_000 {
                        if store.decide("hot", quotas, 1).is_allowed() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let (single, double) = (by_single.into_inner(), by_double.into_inner());
        assert!(double <= 30_000, "{double} past the hourly quota");
        assert_eq!(single + double, 100_000);
    }

    /// A key this thread keeps deciding is cached outside the table; once swept or evicted,
    /// it is decided afresh in the table, not on the forgotten state.
    #[tokio::test(start_paused = true)]
    async fn a_cached_hot_key_is_forgotten_with_its_entry() {
        let store = MemoryStore::new(&MemoryConfig {
            max_keys: 100,
            shards: 1,
            sweep_interval: Duration::from_secs(10),
            ..MemoryConfig::default()
        })
        .unwrap();
        let quotas = [Quota::parse("5/minute").unwrap()];
        for left in (0..5).rev() {
            let decision = store.decide("hot", &quotas, 1);
            assert_eq!(decision.quotas()[0].remaining(), left);
        }
        assert!(!store.decide("hot", &quotas, 1).is_allowed());

        // Refilled and swept out by newcomers.
        tokio::time::advance(Duration::from_secs(61)).await;
        for i in 0..50 {
            store.decide(&format!("new{i}"), &quotas, 1);
        }
        assert_eq!(store.len(), 50);

        // Back in the table with a fresh budget, and cached again.
        assert_eq!(store.decide("hot", &quotas, 1).quotas()[0].remaining(), 4);
        assert_eq!(store.len(), 51);
        assert_eq!(store.decide("hot", &quotas, 1).quotas()[0].remaining(), 3);
        assert_eq!(store.decide("hot", &quotas, 1).quotas()[0].remaining(), 2);

        // A flood of keys no closer to a full budget (36 s ahead, as it is) evicts it.
        for i in 0..1_000 {
            store.decide(&format!("flood{i}"), &quotas, 3);
        }
        assert_eq!(store.decide("hot", &quotas, 1).quotas()[0].remaining(), 4);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn an_entry_fits_in_40_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
    }

    #[test]
    fn refuses_a_zero_bound() {
        let err = MemoryStore::new(&MemoryConfig {
            max_keys: 0,
            ..MemoryConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("max_keys"));
    }
}
