//! Where seen webhook ids are remembered.
//!
//! [`MemoryReplayStore`] serves one process; [`RedisReplayStore`] (feature `redis`) is shared
//! by every gateway that points at the same Redis, so a webhook replayed to a different
//! instance is caught too.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::WebhookError;

mod memory;
#[cfg(feature = "redis")]
mod redis;

#[cfg(feature = "redis")]
pub use self::redis::RedisReplayStore;
pub use memory::MemoryReplayStore;

/// The future a [`ReplayStore`] call returns.
pub type StoreFuture<T> = Pin<Box<dyn Future<Output = Result<T, WebhookError>> + Send>>;

/// Remembers webhook ids for a while.
///
/// Keys arrive already namespaced (`<namespace>:<id>`). A store must bound every call in
/// time itself or leave it to the layer, which wraps each call in the configured
/// `store_timeout`.
pub trait ReplayStore: fmt::Debug + Send + Sync + 'static {
    /// Records `key` for `ttl` unless it is already there. Resolves to `true` the first time
    /// a key is seen within its TTL, `false` for a replay.
    fn insert_new(&self, key: String, ttl: Duration) -> StoreFuture<bool>;

    /// Forgets `key`, so that the sender's retry of a delivery the inner service failed is
    /// not taken for a replay.
    fn forget(&self, key: String) -> StoreFuture<()>;
}
