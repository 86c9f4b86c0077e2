//! GCRA state in Redis, shared by every gateway that points at the same server or cluster.
//!
//! One decision is one script call (`EVALSHA`, with `EVAL` after a script flush): the script
//! reads the server clock with `TIME`, so gateway clocks do not matter, and decides every quota
//! of the request atomically. The keys of one decision share a hash tag, `{<key>}`, so they
//! live in one Cluster slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use rampart_core::redis::{RedisPool, SharedConnection};
use serde::Deserialize;
use tokio::time::Instant;

use super::memory::{MemoryConfig, MemoryStore};
use super::over_limit::OverLimitCache;
use crate::decision::{Decision, Evaluation};
use crate::{Quota, RateLimitError};

/// The GCRA script. Time is in microseconds, the resolution of `TIME`; Lua numbers are
/// doubles, exact for integers below 2^53 (about 285 years of microseconds).
///
/// KEYS: one per quota. ARGV: cost, then per quota its interval, its capacity (burst times
/// interval) and 1 if it is enforced. Returns, per quota, how far its TAT lies ahead of now
/// before this request; the caller recomputes the verdicts from that with the same arithmetic.
const SCRIPT: &str = include_str!("gcra.lua");

/// What to do when Redis does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Let the request through unlimited.
    Open,
    /// Refuse it with 503 and `Retry-After`.
    Closed,
    /// Decide it with an in-memory store and the same quotas: each gateway then limits on its
    /// own, so a fleet of `n` admits up to `n` times the quota while Redis is away.
    #[default]
    Local,
}

/// Settings of the Redis backend.
///
/// ```toml
/// prefix = "rampart:rl:"
/// deadline = "50ms"
/// on_failure = "local"   # or "open", "closed"
/// retry_interval = "1s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisBackendConfig {
    /// Prepended to every key, so several deployments can share a server.
    pub prefix: String,
    /// How long one decision may take, connection checkout included.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// What happens to requests while Redis is away.
    pub on_failure: FailurePolicy,
    /// After a failure, how long requests skip Redis before one tries it again.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// Bounds of the in-memory store used by [`FailurePolicy::Local`].
    pub fallback: MemoryConfig,
    /// How many refused keys are remembered locally until they could pass again, so that a
    /// flood from one key does not reach Redis; 0 turns this off.
    pub over_limit_cache: usize,
}

impl RedisBackendConfig {
    /// Checks the settings without connecting anywhere.
    pub fn validate(&self) -> Result<(), RateLimitError> {
        if self.deadline.is_zero() {
            return Err(RateLimitError::Config {
                field: "deadline",
                reason: "must be longer than zero".into(),
            });
        }
        if self.prefix.contains(['{', '}']) {
            return Err(RateLimitError::Config {
                field: "prefix",
                reason: "must not contain `{` or `}`, which would change the Cluster hash tag"
                    .into(),
            });
        }
        Ok(())
    }
}

impl Default for RedisBackendConfig {
    fn default() -> Self {
        Self {
            prefix: "rampart:rl:".to_owned(),
            deadline: Duration::from_millis(50),
            on_failure: FailurePolicy::Local,
            retry_interval: Duration::from_secs(1),
            fallback: MemoryConfig::default(),
            over_limit_cache: 100_000,
        }
    }
}

/// How a decision was reached when Redis could not be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
// The large variant is the common one; boxing it would allocate for every decision.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Fallback {
    /// By the local store.
    Local(Decision),
    /// Not at all: the request passes.
    Open,
    /// Not at all: the request is refused with 503.
    Closed,
}

/// The Redis backend. Clones share the pool and the health state.
#[derive(Debug, Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    pool: RedisPool,
    /// One multiplexed connection that every decision clones: concurrent scripts share a
    /// socket, so Redis reads many per system call. Replaced from the pool after an error.
    shared: RwLock<Option<SharedConnection>>,
    script: redis::Script,
    config: RedisBackendConfig,
    local: MemoryStore,
    over_limit: Option<OverLimitCache>,
    epoch: Instant,
    /// Nanoseconds since `epoch` before which requests skip Redis.
    skip_until: AtomicU64,
    healthy: AtomicBool,
}

impl RedisBackend {
    /// A backend on `pool`.
    pub fn new(pool: RedisPool, config: RedisBackendConfig) -> Result<Self, RateLimitError> {
        config.validate()?;
        let local = MemoryStore::new(&config.fallback)?;
        let over_limit =
            (config.over_limit_cache > 0).then(|| OverLimitCache::new(config.over_limit_cache));
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                shared: RwLock::new(None),
                script: redis::Script::new(SCRIPT),
                config,
                local,
                over_limit,
                epoch: Instant::now(),
                skip_until: AtomicU64::new(0),
                healthy: AtomicBool::new(true),
            }),
        })
    }

    /// Decides in Redis, within the deadline, without any failure policy.
    pub async fn decide(
        &self,
        key: &str,
        quotas: &[Quota],
        cost: u32,
    ) -> Result<Decision, RateLimitError> {
        let deadline = self.inner.config.deadline;
        let started = Instant::now();
        let attempt = tokio::time::timeout(deadline, self.call(key, quotas, cost)).await;
        let result = attempt.unwrap_or_else(|_| {
            // A connection that went silent is not trusted again.
            self.inner.shared.write().take();
            Err(RateLimitError::Timeout(deadline))
        });
        metrics::histogram!("rampart_ratelimit_backend_duration_seconds", "backend" => "redis")
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn call(
        &self,
        key: &str,
        quotas: &[Quota],
        cost: u32,
    ) -> Result<Decision, RateLimitError> {
        let prefix = &self.inner.config.prefix;
        let mut invocation = self.inner.script.prepare_invoke();
        for quota in quotas {
            invocation.key(format!("{prefix}{{{key}}}:{}", quota.name()));
        }
        invocation.arg(cost);
        for quota in quotas {
            let params = quota.params_micros();
            invocation
                .arg(params.interval)
                .arg(params.capacity)
                .arg(u8::from(!quota.is_shadow()));
        }

        let mut conn = self.connection().await?;
        let mut reply = invocation.invoke_async(&mut conn).await;
        if reply
            .as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_connection_dropped())
        {
            // The shared socket broke (Redis restarted, say): one more try on a fresh one, so
            // that the first decision after Redis returns does not fail.
            // Limitation: if the socket broke after Redis ran the script, the retry charges the
            // request twice; that errs towards refusing, never towards admitting.
            self.inner.shared.write().take();
            conn = self.connection().await?;
            reply = invocation.invoke_async(&mut conn).await;
        }
        let ahead: Vec<u64> = match reply {
            Ok(ahead) => ahead,
            Err(err) => {
                self.inner.shared.write().take();
                return Err(rampart_core::redis::RedisError::from(err).into());
            }
        };
        if ahead.len() != quotas.len() {
            return Err(RateLimitError::UnexpectedReply);
        }

        // The script already stored the result; this recomputes what it decided.
        let eval = Evaluation::new(
            quotas,
            ahead.into_iter().map(Some),
            0,
            cost,
            Quota::params_micros,
            1_000,
        );
        Ok(eval.decision)
    }

    /// The shared connection, taken from the pool when there is none.
    async fn connection(&self) -> Result<SharedConnection, RateLimitError> {
        if let Some(conn) = self.inner.shared.read().clone() {
            return Ok(conn);
        }
        let conn = self.inner.pool.get().await?.share();
        *self.inner.shared.write() = Some(conn.clone());
        Ok(conn)
    }

    /// Decides in Redis, or by the failure policy while Redis is away.
    pub(crate) async fn decide_or_fallback(
        &self,
        key: &str,
        quotas: &[Quota],
        cost: u32,
    ) -> Result<Decision, Fallback> {
        let inner = &*self.inner;
        let now = self.now();
        if let Some(refusal) = inner
            .over_limit
            .as_ref()
            .and_then(|c| c.check(key, quotas, cost, now))
        {
            metrics::counter!("rampart_ratelimit_cached_refusals_total").increment(1);
            return Ok(refusal);
        }
        let skip_until = inner.skip_until.load(Ordering::Relaxed);
        if now < skip_until {
            return Err(self.fallback(key, quotas, cost));
        }
        // While Redis is known to be away, one request at a time probes it; the others stay on
        // the failure policy, so a blackholed Redis costs one deadline per interval, not one
        // per request.
        if !inner.healthy.load(Ordering::Relaxed)
            && inner
                .skip_until
                .compare_exchange(
                    skip_until,
                    self.retry_at(now),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return Err(self.fallback(key, quotas, cost));
        }

        match self.decide(key, quotas, cost).await {
            Ok(decision) => {
                if !inner.healthy.swap(true, Ordering::Relaxed) {
                    inner.skip_until.store(0, Ordering::Relaxed);
                    tracing::info!(backend = "redis", "rate limit backend answers again");
                }
                if let (false, Some(cache)) = (decision.is_allowed(), &inner.over_limit) {
                    // `now` predates the call, so the remembered TATs err early, never late.
                    cache.remember(key, quotas, &decision, now);
                }
                Ok(decision)
            }
            Err(err) => {
                let kind = if matches!(err, RateLimitError::Timeout(_)) {
                    "timeout"
                } else {
                    "error"
                };
                metrics::counter!(
                    "rampart_ratelimit_backend_errors_total",
                    "backend" => "redis",
                    "kind" => kind
                )
                .increment(1);
                inner
                    .skip_until
                    .store(self.retry_at(self.now()), Ordering::Relaxed);
                if inner.healthy.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        backend = "redis",
                        error = %err,
                        policy = ?inner.config.on_failure,
                        "rate limit backend unavailable, applying the failure policy"
                    );
                }
                Err(self.fallback(key, quotas, cost))
            }
        }
    }

    /// When Redis is next tried after a failure at `now`.
    fn retry_at(&self, now: u64) -> u64 {
        let retry = u64::try_from(self.inner.config.retry_interval.as_nanos()).unwrap_or(u64::MAX);
        now.saturating_add(retry)
    }

    fn fallback(&self, key: &str, quotas: &[Quota], cost: u32) -> Fallback {
        match self.inner.config.on_failure {
            FailurePolicy::Open => Fallback::Open,
            FailurePolicy::Closed => Fallback::Closed,
            FailurePolicy::Local => Fallback::Local(self.inner.local.decide(key, quotas, cost)),
        }
    }

    /// How long a client refused by [`FailurePolicy::Closed`] should wait.
    pub(crate) fn retry_interval(&self) -> Duration {
        self.inner.config.retry_interval
    }

    fn now(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.inner.epoch);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("pool", &self.pool)
            .field("over_limit", &self.over_limit.is_some())
            .field("config", &self.config)
            .field("healthy", &self.healthy)
            .finish_non_exhaustive()
    }
}
