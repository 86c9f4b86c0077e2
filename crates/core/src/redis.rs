//! One Redis pool for standalone servers and Redis Cluster, on `deadpool-redis`.
//!
//! Layers that share state across gateways (rate limits, replay ids, API keys) take a
//! [`RedisPool`] and run commands through [`RedisConnection`], which speaks to either kind of
//! deployment. Every wait is bounded: a layer on the request path must never hang on Redis.
//!
//! deadpool-redis checks each connection with a `PING` when it comes back out of the pool, so a
//! connection broken while idle (Redis restarted, a proxy timed it out) is replaced rather than
//! handed to a request; `recycle_timeout` bounds that check.

use std::time::Duration;

use deadpool_redis::{PoolConfig, Runtime, Timeouts};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use serde::Deserialize;

/// Where Redis is and how to pool connections to it.
///
/// ```toml
/// [redis]
/// url = "redis://127.0.0.1:6379"
/// # or, for Redis Cluster, the seed nodes:
/// # cluster = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]
/// max_size = 32
/// wait_timeout = "200ms"
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// A standalone server, `redis://[user:pass@]host:port[/db]`.
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster. Set this or `url`, not both.
    pub cluster: Vec<String>,
    /// The most connections the pool opens.
    pub max_size: usize,
    /// How long a caller waits for a free connection.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
    /// How long opening a new connection may take.
    #[serde(with = "humantime_serde")]
    pub create_timeout: Duration,
    /// How long the health check of a pooled connection may take.
    #[serde(with = "humantime_serde")]
    pub recycle_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster: Vec::new(),
            max_size: 32,
            wait_timeout: Duration::from_millis(200),
            create_timeout: Duration::from_millis(500),
            recycle_timeout: Duration::from_millis(200),
        }
    }
}

impl RedisConfig {
    /// A standalone configuration with default pool settings.
    pub fn standalone(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            ..Self::default()
        }
    }

    /// A cluster configuration with default pool settings.
    pub fn cluster(seeds: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            cluster: seeds.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            max_size: self.max_size,
            timeouts: Timeouts {
                wait: Some(self.wait_timeout),
                create: Some(self.create_timeout),
                recycle: Some(self.recycle_timeout),
            },
            ..PoolConfig::default()
        }
    }
}

/// Why a pool could not be built or a connection not had.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Neither `url` nor `cluster` was set, or both were.
    #[error("redis config needs exactly one of `url` or `cluster`")]
    Ambiguous,
    /// `max_size` was zero.
    #[error("redis `max_size` must be at least 1")]
    EmptyPool,
    /// The URL or pool settings were refused.
    #[error("invalid redis config: {0}")]
    Config(String),
    /// No connection could be had in time.
    #[error("redis pool: {0}")]
    Pool(String),
    /// A command failed or timed out.
    #[error("redis command: {0}")]
    Command(#[from] redis::RedisError),
    /// A call did not finish within its deadline.
    #[error("redis call exceeded its {0:?} deadline")]
    Timeout(Duration),
}

/// A pool of connections to a standalone Redis or to a Redis Cluster.
#[derive(Clone)]
pub enum RedisPool {
    /// Connections to one server.
    Standalone(deadpool_redis::Pool),
    /// Cluster-aware connections that route each command to its slot's node.
    Cluster(deadpool_redis::cluster::Pool),
}

impl std::fmt::Debug for RedisPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = match self {
            Self::Standalone(pool) => ("standalone", pool.status()),
            Self::Cluster(pool) => ("cluster", pool.status()),
        };
        f.debug_struct("RedisPool")
            .field("kind", &status.0)
            .field("size", &status.1.size)
            .field("available", &status.1.available)
            .finish()
    }
}

impl RedisPool {
    /// Builds the pool. No connection is opened until the first [`Self::get`].
    pub fn new(config: &RedisConfig) -> Result<Self, RedisError> {
        if config.max_size == 0 {
            return Err(RedisError::EmptyPool);
        }
        match (&config.url, config.cluster.is_empty()) {
            (Some(url), true) => {
                let mut cfg = deadpool_redis::Config::from_url(url.clone());
                cfg.pool = Some(config.pool_config());
                cfg.create_pool(Some(Runtime::Tokio1))
                    .map(Self::Standalone)
                    .map_err(|e| RedisError::Config(e.to_string()))
            }
            (None, false) => {
                let mut cfg = deadpool_redis::cluster::Config::from_urls(config.cluster.clone());
                cfg.pool = Some(config.pool_config());
                cfg.create_pool(Some(Runtime::Tokio1))
                    .map(Self::Cluster)
                    .map_err(|e| RedisError::Config(e.to_string()))
            }
            _ => Err(RedisError::Ambiguous),
        }
    }

    /// A connection from the pool, waiting at most the configured `wait_timeout`.
    pub async fn get(&self) -> Result<RedisConnection, RedisError> {
        match self {
            Self::Standalone(pool) => pool
                .get()
                .await
                .map(Connection::Standalone)
                .map_err(|e| RedisError::Pool(e.to_string())),
            Self::Cluster(pool) => pool
                .get()
                .await
                .map(Connection::Cluster)
                .map_err(|e| RedisError::Pool(e.to_string())),
        }
    }

    /// Sends `PING` and waits for the answer, all within `deadline`.
    ///
    /// Readiness checks use this: it fails while Redis is unreachable.
    pub async fn ping(&self, deadline: Duration) -> Result<(), RedisError> {
        let attempt = async {
            let mut conn = self.get().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map_err(RedisError::from)
        };
        match tokio::time::timeout(deadline, attempt).await {
            Ok(result) => result.map(drop),
            Err(_) => Err(RedisError::Timeout(deadline)),
        }
    }
}

/// A connection to either kind of deployment; it runs commands, pipelines and scripts alike.
pub enum Connection<S, C> {
    /// To a standalone server.
    Standalone(S),
    /// To a cluster.
    Cluster(C),
}

/// A connection checked out of a [`RedisPool`]; it returns to the pool when dropped.
pub type RedisConnection =
    Connection<deadpool_redis::Connection, deadpool_redis::cluster::Connection>;

/// A clonable handle on one connection's socket: concurrent callers pipeline their commands
/// over it instead of each holding a pooled connection. Made by [`RedisConnection::share`].
pub type SharedConnection = Connection<MultiplexedConnection, ClusterConnection>;

impl RedisConnection {
    /// A handle that shares this connection's socket and outlives the checkout.
    pub fn share(&self) -> SharedConnection {
        match self {
            Self::Standalone(conn) => Connection::Standalone((**conn).clone()),
            Self::Cluster(conn) => Connection::Cluster((**conn).clone()),
        }
    }
}

impl<S: Clone, C: Clone> Clone for Connection<S, C> {
    fn clone(&self) -> Self {
        match self {
            Self::Standalone(conn) => Self::Standalone(conn.clone()),
            Self::Cluster(conn) => Self::Cluster(conn.clone()),
        }
    }
}

impl<S, C> std::fmt::Debug for Connection<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Standalone(_) => "Connection::Standalone",
            Self::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl<S, C> ConnectionLike for Connection<S, C>
where
    S: ConnectionLike + Send,
    C: ConnectionLike + Send,
{
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}
