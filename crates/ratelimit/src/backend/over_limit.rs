//! Keys Redis recently refused, remembered locally until they could pass again.
//!
//! A TAT in Redis only moves forward (other gateways add to it, nothing takes away), so the
//! TAT a refusal reported is a lower bound of the real one until it is reached. Refusing
//! locally while that bound still refuses is therefore always what Redis would say, and a
//! flood from one key stops costing a round trip per request.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashMap;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::Quota;
use crate::decision::{Decision, Evaluation};

const SHARDS: usize = 16;

/// Per key: quota name and local TAT, in nanoseconds of the backend's clock.
type Tats = SmallVec<[(Arc<str>, u64); 2]>;
type Shard = Mutex<HashMap<Box<str>, Tats>>;

#[derive(Debug)]
pub(crate) struct OverLimitCache {
    shards: Box<[Shard]>,
    hasher: foldhash::fast::RandomState,
    shard_capacity: usize,
}

impl OverLimitCache {
    pub(crate) fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            shard_capacity: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &str) -> &Shard {
        let hash = self.hasher.hash_one(key);
        &self.shards[usize::try_from(hash >> 60).unwrap_or(0) % SHARDS]
    }

    /// A refusal, if a remembered TAT still refuses this request at `now`.
    pub(crate) fn check(
        &self,
        key: &str,
        quotas: &[Quota],
        cost: u32,
        now: u64,
    ) -> Option<Decision> {
        let shard = self.shard(key).lock();
        let tats = shard.get(key)?;
        let known = quotas.iter().map(|quota| {
            let tat = tats.iter().find(|(name, _)| **name == *quota.name());
            tat.map(|(_, tat)| *tat)
        });
        let eval = Evaluation::new(quotas, known, now, cost, Quota::params_nanos, 1);
        if eval.decision.allowed {
            return None;
        }

        // Only the refusing quotas are known for sure; the others stay out of the headers.
        let mut decision = eval.decision;
        decision
            .quotas
            .retain(|status| !status.allowed() && !status.is_shadow());
        Some(decision)
    }

    /// Remembers the quotas that refused, with their TATs moved to the local clock.
    pub(crate) fn remember(&self, key: &str, quotas: &[Quota], decision: &Decision, now: u64) {
        let refusing = decision
            .quotas()
            .iter()
            .filter(|s| !s.allowed() && !s.is_shadow() && s.retry_after().is_some());
        let mut fresh: Tats = SmallVec::new();
        for status in refusing {
            let ahead = u64::try_from(status.reset().as_nanos()).unwrap_or(u64::MAX);
            let name = quotas[status.index()].name_arc().clone();
            fresh.push((name, now.saturating_add(ahead)));
        }
        if fresh.is_empty() {
            return;
        }

        let mut shard = self.shard(key).lock();
        if shard.len() >= self.shard_capacity && !shard.contains_key(key) {
            shard.retain(|_, tats| tats.iter().any(|(_, tat)| *tat > now));
            if shard.len() >= self.shard_capacity {
                // Full of keys still refused: this one is simply asked about in Redis.
                return;
            }
        }
        let entry = shard.entry(key.into()).or_default();
        for (name, tat) in fresh {
            match entry.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = slot.1.max(tat),
                None => entry.push((name, tat)),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn remembers_a_refusal_per_quota_until_it_would_pass() {
        let cache = OverLimitCache::new(100);
        let minute = [Quota::parse("2/minute").unwrap()];
        let other = [Quota::parse("100/hour").unwrap()];

        // Redis said: the minute quota is full, its TAT 60 s ahead.
        let tats = std::iter::once(Some(60 * SEC));
        let refused = Evaluation::new(&minute, tats, 0, 1, Quota::params_nanos, 1).decision;
        assert!(!refused.is_allowed());
        cache.remember("k", &minute, &refused, 0);

        // Refused locally until one interval has freed, with the same wait.
        let local = cache.check("k", &minute, 1, 10 * SEC).unwrap();
        assert_eq!(
            local.retry_after(),
            Some(std::time::Duration::from_secs(20))
        );
        assert!(cache.check("k", &minute, 1, 30 * SEC).is_none());

        // Another quota or another key is not affected.
        assert!(cache.check("k", &other, 1, SEC).is_none());
        assert!(cache.check("j", &minute, 1, SEC).is_none());
    }
}
