//! Seen ids in this process's memory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{ReplayStore, StoreFuture};
use crate::error::WebhookError;

/// Far enough ahead to outlive the process.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Seen ids in a map guarded by a mutex, expiring on tokio's clock.
///
/// Expired ids are swept when the map has doubled since the last sweep, so the cost is
/// amortised over inserts and memory stays within about twice the live ids.
///
/// Limitation: each process has its own map; a fleet of gateways needs
/// [`super::RedisReplayStore`] to catch a replay sent to a different instance.
#[derive(Debug, Clone)]
pub struct MemoryReplayStore {
    inner: Arc<Mutex<Seen>>,
}

#[derive(Debug)]
struct Seen {
    expiries: HashMap<String, Instant>,
    sweep_at: usize,
    max_entries: usize,
}

impl MemoryReplayStore {
    /// A store that holds at most `max_entries` live ids; past that, inserts fail and the
    /// layer applies its store-error policy.
    pub fn new(max_entries: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Seen {
                expiries: HashMap::new(),
                sweep_at: 1024,
                max_entries,
            })),
        }
    }

    /// The ids currently held, expired or not yet swept included.
    pub fn len(&self) -> usize {
        self.inner.lock().expiries.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_now(&self, key: String, ttl: Duration) -> Result<bool, WebhookError> {
        let now = Instant::now();
        let mut seen = self.inner.lock();
        if seen.expiries.get(&key).is_some_and(|expiry| *expiry > now) {
            return Ok(false);
        }
        if seen.expiries.len() >= seen.sweep_at {
            seen.expiries.retain(|_, expiry| *expiry > now);
            seen.sweep_at = (seen.expiries.len() * 2).max(1024);
        }
        if seen.expiries.len() >= seen.max_entries {
            return Err(WebhookError::Store("in-memory replay store is full".into()));
        }
        // A TTL too long for the clock to add is as good as forever.
        let expiry = now.checked_add(ttl).unwrap_or(now + FOREVER);
        seen.expiries.insert(key, expiry);
        Ok(true)
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new(crate::ReplayConfig::default().max_entries)
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert_new(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        Box::pin(std::future::ready(self.insert_now(key, ttl)))
    }

    fn forget(&self, key: String) -> StoreFuture<()> {
        self.inner.lock().expiries.remove(&key);
        Box::pin(std::future::ready(Ok(())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_id_is_new_once_per_ttl() {
        let store = MemoryReplayStore::new(10);
        let ttl = Duration::from_secs(60);

        // First sighting, then a replay.
        assert!(store.insert_new("a".into(), ttl).await.unwrap());
        assert!(!store.insert_new("a".into(), ttl).await.unwrap());

        // One second before expiry it is still a replay; at expiry it is new again.
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(!store.insert_new("a".into(), ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.insert_new("a".into(), ttl).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_ids_are_new_again() {
        let store = MemoryReplayStore::new(10);
        assert!(
            store
                .insert_new("a".into(), Duration::from_secs(60))
                .await
                .unwrap()
        );
        store.forget("a".into()).await.unwrap();
        assert!(
            store
                .insert_new("a".into(), Duration::from_secs(60))
                .await
                .unwrap()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_store_fails_instead_of_growing() {
        let store = MemoryReplayStore::new(2);
        let ttl = Duration::from_secs(60);
        store.insert_new("a".into(), ttl).await.unwrap();
        store.insert_new("b".into(), ttl).await.unwrap();
        assert!(matches!(
            store.insert_new("c".into(), ttl).await,
            Err(WebhookError::Store(_))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn sweeping_drops_expired_ids() {
        let store = MemoryReplayStore::new(100_000);
        for i in 0..1024 {
            store
                .insert_new(format!("old-{i}"), Duration::from_secs(1))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;

        // The insert that reaches the sweep threshold clears the expired ids.
        store
            .insert_new("fresh".into(), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(store.len(), 1);
    }
}
