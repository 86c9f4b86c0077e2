//! The limiter: settings plus a backend, usable with or without the tower layer.

use std::sync::Arc;
use std::time::Duration;

use crate::backend::memory::{MemoryConfig, MemoryStore, QuotaIds};
#[cfg(feature = "redis")]
use crate::backend::redis::{Fallback, RedisBackend};
use crate::config::{HeaderStyle, Settings};
use crate::{Decision, Quota, RateLimitConfig, RateLimitError};

/// Where the GCRA state lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Backend {
    /// In this process.
    Memory(MemoryStore),
    /// In Redis, shared by every gateway using it.
    #[cfg(feature = "redis")]
    Redis(RedisBackend),
}

impl From<MemoryStore> for Backend {
    fn from(store: MemoryStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "redis")]
impl From<RedisBackend> for Backend {
    fn from(backend: RedisBackend) -> Self {
        Self::Redis(backend)
    }
}

/// A per-request cost, set by an earlier layer or handler to make an expensive call weigh
/// more than the configured [`RateLimitConfig::cost`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCost(pub u32);

/// The result of asking the limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
// The large variant is the common one; boxing it would allocate for every decision.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// The backend (or the local fallback) decided.
    Decided(Decision),
    /// The backend could not be asked and the policy lets requests through.
    FailedOpen,
    /// The backend could not be asked and the policy refuses requests: answer 503.
    FailedClosed {
        /// When the backend will be tried again.
        retry_after: Duration,
    },
}

/// Quotas, a key rule and a backend: everything needed to decide a request.
///
/// Cheap to clone; clones share the state.
///
/// ```
/// use rampart_ratelimit::{Outcome, RateLimitConfig, RateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limiter = RateLimiter::memory(&RateLimitConfig::with_quotas(["2/minute"])).unwrap();
/// let first = limiter.check("client-a", 1).await;
/// assert!(matches!(first, Outcome::Decided(d) if d.is_allowed()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    backend: Backend,
    /// The quotas' ids in the memory store, resolved once.
    memory_ids: QuotaIds,
}

impl RateLimiter {
    /// Checks `config` and builds a limiter on `backend`.
    pub fn new(
        config: &RateLimitConfig,
        backend: impl Into<Backend>,
    ) -> Result<Self, RateLimitError> {
        let settings = config.validate()?;
        let backend = backend.into();
        let memory_ids = match &backend {
            Backend::Memory(store) => store.resolve(&settings.quotas),
            #[cfg(feature = "redis")]
            Backend::Redis(_) => QuotaIds::new(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                backend,
                memory_ids,
            }),
        })
    }

    /// A limiter with its own in-memory store of default bounds.
    pub fn memory(config: &RateLimitConfig) -> Result<Self, RateLimitError> {
        Self::new(config, MemoryStore::new(&MemoryConfig::default())?)
    }

    /// The quotas, in configuration order.
    pub fn quotas(&self) -> &[Quota] {
        &self.inner.settings.quotas
    }

    /// The backend.
    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// The key a request draws from, under the configured key rule.
    pub fn key_of<B>(&self, request: &http::Request<B>) -> String {
        self.inner.settings.keys.key_of(request)
    }

    /// The cost of a request: its [`RequestCost`] or the configured default. A cost of zero
    /// counts as one, so no request passes without spending anything.
    pub fn cost_of<B>(&self, request: &http::Request<B>) -> u32 {
        request
            .extensions()
            .get::<RequestCost>()
            .map_or(self.inner.settings.cost, |cost| cost.0.max(1))
    }

    pub(crate) fn header_style(&self) -> HeaderStyle {
        self.inner.settings.headers
    }

    /// Decides a request of `cost` for `key` against every quota.
    // Without the `redis` feature nothing awaits, but the signature stays the same.
    #[cfg_attr(not(feature = "redis"), allow(clippy::unused_async))]
    pub async fn check(&self, key: &str, cost: u32) -> Outcome {
        match &self.inner.backend {
            Backend::Memory(store) => Outcome::Decided(store.decide_resolved(
                key,
                self.quotas(),
                &self.inner.memory_ids,
                cost,
            )),
            #[cfg(feature = "redis")]
            Backend::Redis(redis) => match redis.decide_or_fallback(key, self.quotas(), cost).await
            {
                Ok(decision) | Err(Fallback::Local(decision)) => Outcome::Decided(decision),
                Err(Fallback::Open) => Outcome::FailedOpen,
                Err(Fallback::Closed) => Outcome::FailedClosed {
                    retry_after: redis.retry_interval(),
                },
            },
        }
    }

    /// Decides at once when the backend is in memory; `None` means [`Self::check`] must be
    /// awaited.
    pub fn check_now(&self, key: &str, cost: u32) -> Option<Decision> {
        match &self.inner.backend {
            Backend::Memory(store) => {
                Some(store.decide_resolved(key, self.quotas(), &self.inner.memory_ids, cost))
            }
            #[cfg(feature = "redis")]
            Backend::Redis(_) => None,
        }
    }
}
