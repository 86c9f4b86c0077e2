//! Key records in Redis, shared by every gateway of a fleet, with a local cache in front.
//!
//! Each record is a JSON string under `<key_prefix>:<id>`; a set `<key_prefix>:ids` lists the
//! ids for `keys list`. Each key is its own hash slot, so the store works on Redis Cluster too.
//!
//! The hot path reads the local cache: a found record for `cache_ttl` (which bounds how long a
//! revocation takes to reach every gateway), an unknown id for `negative_ttl` (so a flood of
//! made-up ids costs one Redis call per id, not one per request). Every Redis call has a
//! deadline; when Redis cannot answer, [`OnUnavailable`] says whether to refuse or to serve
//! what the cache last saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt};
use parking_lot::Mutex;
use rampart_core::redis::RedisPool;
use serde::Deserialize;
use tokio::time::Instant;

use super::KeyStore;
use crate::AuthError;
use crate::apikey::KeyRecord;

/// What to do when Redis cannot be reached in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Refuse the request with 503 unless the cache entry is still fresh.
    #[default]
    Reject,
    /// Answer from the local cache however old the entry is; refuse ids never seen.
    ServeCached,
}

/// Settings of the Redis key store.
///
/// ```toml
/// key_prefix = "rampart:auth:key"
/// cache_ttl = "5s"
/// negative_ttl = "30s"
/// timeout = "100ms"
/// on_unavailable = "serve_cached"
/// max_cached = 100000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisKeyStoreConfig {
    /// Prefix of every Redis key the store writes.
    pub key_prefix: String,
    /// How long a found record is served from the local cache: the longest a revocation takes
    /// to reach every gateway.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How long an unknown id is remembered as unknown.
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    /// Deadline of each Redis call, connection wait included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// What to do when Redis cannot answer.
    pub on_unavailable: OnUnavailable,
    /// The most found records, and apart from them the most unknown ids, kept in the local
    /// cache; beyond it that side of the cache starts over.
    pub max_cached: usize,
}

impl Default for RedisKeyStoreConfig {
    fn default() -> Self {
        Self {
            key_prefix: "rampart:auth:key".to_owned(),
            cache_ttl: Duration::from_secs(5),
            negative_ttl: Duration::from_secs(30),
            timeout: Duration::from_millis(100),
            on_unavailable: OnUnavailable::Reject,
            max_cached: 100_000,
        }
    }
}

impl RedisKeyStoreConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.key_prefix.is_empty() {
            return Err(AuthError::config("redis.key_prefix", "must not be empty"));
        }
        if self.timeout.is_zero() {
            return Err(AuthError::config("redis.timeout", "must be above zero"));
        }
        if self.max_cached == 0 {
            return Err(AuthError::config("redis.max_cached", "must be at least 1"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct CacheEntry {
    record: Option<Arc<KeyRecord>>,
    fetched: Instant,
}

/// Found records and unknown ids apart, so a flood of made-up ids (well-formed ones are cheap
/// to make: the checksum is no secret) can fill only the negative side and never push out
/// the keys of real callers.
#[derive(Debug, Default)]
struct LocalCache {
    found: HashMap<String, CacheEntry>,
    unknown: HashMap<String, CacheEntry>,
}

impl LocalCache {
    fn get(&self, id: &str) -> Option<&CacheEntry> {
        self.found.get(id).or_else(|| self.unknown.get(id))
    }

    fn remove(&mut self, id: &str) {
        self.found.remove(id);
        self.unknown.remove(id);
    }
}

/// API key records in Redis with a local positive and negative cache.
#[derive(Debug)]
pub struct RedisKeyStore {
    pool: RedisPool,
    config: RedisKeyStoreConfig,
    cache: Mutex<LocalCache>,
    reachable: AtomicBool,
}

impl RedisKeyStore {
    /// A store on `pool`. No connection is opened until the first lookup.
    pub fn new(pool: RedisPool, config: RedisKeyStoreConfig) -> Result<Self, AuthError> {
        config.validate()?;
        Ok(Self {
            pool,
            config,
            cache: Mutex::new(LocalCache::default()),
            reachable: AtomicBool::new(true),
        })
    }

    fn redis_key(&self, id: &str) -> String {
        format!("{}:{id}", self.config.key_prefix)
    }

    fn index_key(&self) -> String {
        format!("{}:ids", self.config.key_prefix)
    }

    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, AuthError>>,
    ) -> Result<T, AuthError> {
        match tokio::time::timeout(self.config.timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(AuthError::Store(format!(
                "redis call exceeded its {:?} deadline",
                self.config.timeout
            ))),
        }
    }

    async fn fetch(&self, id: &str) -> Result<Option<KeyRecord>, AuthError> {
        let key = self.redis_key(id);
        self.bounded(async {
            let mut conn = self.pool.get().await.map_err(store_error)?;
            let raw: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            raw.map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| AuthError::Store(format!("record under {key} is not valid: {e}")))
            })
            .transpose()
        })
        .await
    }

    async fn write(&self, record: &KeyRecord) -> Result<(), AuthError> {
        let json = serde_json::to_string(record).map_err(|e| AuthError::Store(e.to_string()))?;
        let key = self.redis_key(&record.id);
        let index = self.index_key();
        self.bounded(async {
            let mut conn = self.pool.get().await.map_err(store_error)?;
            redis::cmd("SET")
                .arg(&key)
                .arg(&json)
                .query_async::<()>(&mut conn)
                .await
                .map_err(store_error)?;
            redis::cmd("SADD")
                .arg(&index)
                .arg(&record.id)
                .query_async::<()>(&mut conn)
                .await
                .map_err(store_error)
        })
        .await
    }

    fn remember(&self, id: &str, record: Option<Arc<KeyRecord>>) {
        let mut cache = self.cache.lock();
        cache.remove(id);
        let side = if record.is_some() {
            &mut cache.found
        } else {
            &mut cache.unknown
        };
        if side.len() >= self.config.max_cached {
            // Limitation: a full side is dropped whole rather than evicting the oldest entry;
            // simple, and on the found side only more real keys than `max_cached` fill it.
            side.clear();
        }
        side.insert(
            id.to_owned(),
            CacheEntry {
                record,
                fetched: Instant::now(),
            },
        );
    }

    async fn lookup_inner(&self, id: &str) -> Result<Option<Arc<KeyRecord>>, AuthError> {
        let cached = self.cache.lock().get(id).cloned();
        if let Some(entry) = &cached {
            let ttl = if entry.record.is_some() {
                self.config.cache_ttl
            } else {
                self.config.negative_ttl
            };
            if entry.fetched.elapsed() < ttl {
                return Ok(entry.record.clone());
            }
        }

        let fetched = self.fetch(id).await;
        self.note_reachability(fetched.as_ref().err());
        match fetched {
            Ok(found) => {
                let found = found.map(Arc::new);
                self.remember(id, found.clone());
                Ok(found)
            }
            Err(err) => match (self.config.on_unavailable, cached) {
                (OnUnavailable::ServeCached, Some(entry)) => {
                    tracing::debug!(error = %err, "api key store unavailable, serving cached record");
                    Ok(entry.record)
                }
                _ => Err(err),
            },
        }
    }
}

impl RedisKeyStore {
    /// Logs a change between reachable and unreachable once, not on every request.
    fn note_reachability(&self, error: Option<&AuthError>) {
        let now_reachable = error.is_none();
        if self.reachable.swap(now_reachable, Ordering::Relaxed) != now_reachable {
            if let Some(err) = error {
                tracing::warn!(
                    error = %err,
                    policy = ?self.config.on_unavailable,
                    "api key store unreachable"
                );
            } else {
                tracing::info!("api key store reachable again");
            }
        }
    }
}

fn store_error(err: impl std::fmt::Display) -> AuthError {
    AuthError::Store(err.to_string())
}

impl KeyStore for RedisKeyStore {
    fn lookup<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<KeyRecord>>, AuthError>> {
        self.lookup_inner(id).boxed()
    }

    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, Result<(), AuthError>> {
        async move {
            self.write(&record).await?;
            self.cache.lock().remove(&record.id);
            Ok(())
        }
        .boxed()
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, AuthError>> {
        async move {
            let Some(mut record) = self.fetch(id).await? else {
                return Ok(false);
            };
            record.revoked = true;
            self.write(&record).await?;
            self.cache.lock().remove(id);
            Ok(true)
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, AuthError>> {
        async move {
            let index = self.index_key();
            let ids: Vec<String> = self
                .bounded(async {
                    let mut conn = self.pool.get().await.map_err(store_error)?;
                    redis::cmd("SMEMBERS")
                        .arg(&index)
                        .query_async(&mut conn)
                        .await
                        .map_err(store_error)
                })
                .await?;
            let mut records = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(record) = self.fetch(&id).await? {
                    records.push(record);
                }
            }
            Ok(records)
        }
        .boxed()
    }
}
