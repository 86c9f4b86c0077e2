//! Where API key records live: in memory (also fed from the config file), or in Redis.

use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::AuthError;
use crate::apikey::KeyRecord;

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// A store of API key records, looked up by key id.
///
/// Lookups sit on the request path; an implementation that goes over the network must bound
/// each call with a deadline and keep a local cache (see [`redis::RedisKeyStore`]).
pub trait KeyStore: fmt::Debug + Send + Sync + 'static {
    /// The record of key `id`, or `None` when there is no such key.
    fn lookup<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<KeyRecord>>, AuthError>>;

    /// Adds or replaces a record.
    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, Result<(), AuthError>>;

    /// Marks key `id` revoked; `false` when there is no such key.
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, AuthError>>;

    /// Every record, in no particular order.
    fn list(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, AuthError>>;
}

/// The static keys of the configuration file in front of an optional run-time store: a
/// lookup tries the static set first. Writes go to the run-time store.
#[derive(Debug)]
pub struct LayeredStore {
    fixed: memory::MemoryKeyStore,
    runtime: Option<Arc<dyn KeyStore>>,
}

impl LayeredStore {
    /// `fixed` records first, then `runtime`.
    pub fn new(fixed: Vec<KeyRecord>, runtime: Option<Arc<dyn KeyStore>>) -> Self {
        Self {
            fixed: memory::MemoryKeyStore::from_records(fixed),
            runtime,
        }
    }
}

impl KeyStore for LayeredStore {
    fn lookup<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<KeyRecord>>, AuthError>> {
        Box::pin(async move {
            if let Some(found) = self.fixed.lookup(id).await? {
                return Ok(Some(found));
            }
            match &self.runtime {
                Some(runtime) => runtime.lookup(id).await,
                None => Ok(None),
            }
        })
    }

    fn insert(&self, record: KeyRecord) -> BoxFuture<'_, Result<(), AuthError>> {
        match &self.runtime {
            Some(runtime) => runtime.insert(record),
            None => self.fixed.insert(record),
        }
    }

    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, AuthError>> {
        // Static keys are revoked by deleting them from the file; with a run-time store,
        // only its keys can be revoked here.
        match &self.runtime {
            Some(runtime) => runtime.revoke(id),
            None => self.fixed.revoke(id),
        }
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, AuthError>> {
        Box::pin(async move {
            let mut all = self.fixed.list().await?;
            if let Some(runtime) = &self.runtime {
                all.extend(runtime.list().await?);
            }
            Ok(all)
        })
    }
}
