//! Seen ids in Redis, shared by a fleet of gateways.

use std::time::Duration;

use rampart_core::redis::RedisPool;

use super::{ReplayStore, StoreFuture};
use crate::error::WebhookError;

/// Seen ids as Redis keys written with `SET key 1 NX PX ttl`: the first writer wins, every
/// later one within the TTL sees a replay. One key per id, so it works on Redis Cluster
/// as well (each decision touches one slot).
///
/// Keys are `rampart:webhook:<namespace>:<id>`.
#[derive(Debug, Clone)]
pub struct RedisReplayStore {
    pool: RedisPool,
    prefix: String,
}

impl RedisReplayStore {
    /// A store on `pool` with keys under `rampart:webhook:`.
    pub fn new(pool: RedisPool) -> Self {
        Self {
            pool,
            prefix: "rampart:webhook:".to_owned(),
        }
    }

    /// Puts keys under another prefix, for deployments that share one Redis between
    /// unrelated fleets.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert_new(&self, key: String, ttl: Duration) -> StoreFuture<bool> {
        let pool = self.pool.clone();
        let key = format!("{}{key}", self.prefix);
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Box::pin(async move {
            let mut conn = pool.get().await.map_err(store_error)?;
            let reply: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            Ok(reply.is_some())
        })
    }

    fn forget(&self, key: String) -> StoreFuture<()> {
        let pool = self.pool.clone();
        let key = format!("{}{key}", self.prefix);
        Box::pin(async move {
            let mut conn = pool.get().await.map_err(store_error)?;
            redis::cmd("DEL")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }
}

fn store_error(err: impl std::error::Error + Send + Sync + 'static) -> WebhookError {
    WebhookError::Store(Box::new(err))
}
