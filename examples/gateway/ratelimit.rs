//! Rate limits: default quotas for every route, more per route, in memory or in Redis.
//!
//! ```toml
//! [ratelimit]                          # applies to every route
//! quotas = ["200/day", "50/hour"]
//! key = ["subject"]                    # per identity; anonymous requests per client IP
//! backend = "redis"                    # or "memory" (the default); "redis" needs [redis]
//! headers = "draft"                    # or "legacy", "none"
//!
//! [ratelimit.redis]
//! deadline = "50ms"
//! on_failure = "local"                 # or "open", "closed"
//!
//! [[routes]]
//! name = "execute"
//! prefix = "/api/agents/execute"
//! methods = ["POST"]
//! upstream = "agents"
//!
//! [routes.ratelimit]                   # added to the defaults on this route
//! quotas = ["5/minute"]
//! ```
//!
//! Default quotas keep one budget per client across all routes; a route's own quotas are
//! named after the route (`"execute:5/minute"`) unless given a `name`, so two routes never
//! share one by accident.

use anyhow::{Context, bail};
use http::Request;
use rampart::ratelimit::{
    Backend, HeaderStyle, KeyPart, MemoryConfig, MemoryStore, QuotaConfig, RateLimitConfig,
    RateLimitLayer, RateLimiter, RedisBackend, RedisBackendConfig,
};
use serde::Deserialize;
use tower::{Layer, ServiceExt};

use crate::config::{GatewayConfig, RouteConfig};
use crate::stack::RouteService;
use crate::{GatewayBody, box_body};

/// `[ratelimit]`: the defaults and the backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RateLimitDefaults {
    /// Quotas every route applies unless it sets `inherit = false`.
    pub(crate) quotas: Vec<QuotaConfig>,
    /// The key of every route unless the route sets its own.
    pub(crate) key: Vec<KeyPart>,
    /// Headers on responses.
    pub(crate) headers: HeaderStyle,
    /// IPv6 clients are keyed by this prefix length.
    pub(crate) ipv6_prefix: u8,
    /// Where the state lives.
    pub(crate) backend: BackendKind,
    /// The in-memory store's bounds (also used by `on_failure = "local"`).
    pub(crate) memory: MemoryConfig,
    /// The Redis backend's settings.
    pub(crate) redis: RedisBackendConfig,
}

impl Default for RateLimitDefaults {
    fn default() -> Self {
        let library = RateLimitConfig::default();
        Self {
            quotas: Vec::new(),
            key: library.key,
            headers: library.headers,
            ipv6_prefix: library.ipv6_prefix,
            backend: BackendKind::Memory,
            memory: MemoryConfig::default(),
            redis: RedisBackendConfig::default(),
        }
    }
}

/// Where rate-limit state lives.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendKind {
    /// This gateway's memory: each instance has its own budget.
    #[default]
    Memory,
    /// The shared `[redis]`: one budget across the fleet.
    Redis,
}

/// `[routes.ratelimit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RouteRateLimit {
    /// Quotas of this route, on top of the defaults.
    pub(crate) quotas: Vec<QuotaConfig>,
    /// Whether the default quotas apply here too.
    pub(crate) inherit: bool,
    /// This route's key, instead of the default one.
    pub(crate) key: Option<Vec<KeyPart>>,
    /// What one request of this route costs.
    pub(crate) cost: u32,
    /// `false` exempts the route from every quota.
    pub(crate) enabled: bool,
}

impl Default for RouteRateLimit {
    fn default() -> Self {
        Self {
            quotas: Vec::new(),
            inherit: true,
            key: None,
            cost: 1,
            enabled: true,
        }
    }
}

/// Builds the backend shared by every route, if any route is limited.
pub(crate) fn backend(
    config: &GatewayConfig,
    redis: Option<&rampart_core::redis::RedisPool>,
) -> anyhow::Result<Option<Backend>> {
    let Some(defaults) = &config.ratelimit else {
        if config.routes.iter().any(|r| r.ratelimit.is_some()) {
            return Ok(Some(MemoryStore::new(&MemoryConfig::default())?.into()));
        }
        return Ok(None);
    };
    Ok(Some(match defaults.backend {
        BackendKind::Memory => MemoryStore::new(&defaults.memory)?.into(),
        BackendKind::Redis => {
            let pool = redis
                .cloned()
                .context("[ratelimit] backend = \"redis\" needs a [redis] table")?;
            let mut settings = defaults.redis.clone();
            settings.fallback = defaults.memory.clone();
            RedisBackend::new(pool, settings)?.into()
        }
    }))
}

/// The limiter configuration of one route, or `None` when the route is not limited.
fn route_config(
    config: &GatewayConfig,
    route: &RouteConfig,
) -> anyhow::Result<Option<RateLimitConfig>> {
    let defaults = config.ratelimit.clone().unwrap_or_default();
    let own = route.ratelimit.clone().unwrap_or_default();
    if !own.enabled {
        return Ok(None);
    }

    let mut quotas = if own.inherit {
        defaults.quotas.clone()
    } else {
        Vec::new()
    };
    for quota in &own.quotas {
        // A route's quota is its own budget unless the operator names it otherwise.
        let own_name = format!("{}:{}", route.name, quota.to_quota()?.name());
        let named = match quota.clone() {
            QuotaConfig::Rate(rate) => QuotaConfig::Table {
                name: Some(own_name),
                rate,
                burst: None,
                shadow: false,
            },
            QuotaConfig::Table {
                name,
                rate,
                burst,
                shadow,
            } => QuotaConfig::Table {
                name: name.or(Some(own_name)),
                rate,
                burst,
                shadow,
            },
        };
        quotas.push(named);
    }
    if quotas.is_empty() {
        return Ok(None);
    }

    Ok(Some(RateLimitConfig {
        quotas,
        key: own.key.unwrap_or(defaults.key),
        cost: own.cost,
        headers: defaults.headers,
        // The server already resolved the client address with the gateway's trusted proxies.
        trusted_proxies: rampart_core::TrustedProxies::none(),
        ipv6_prefix: defaults.ipv6_prefix,
    }))
}

/// Checks `[ratelimit]` and every `[routes.ratelimit]` at load time.
pub(crate) fn validate(config: &GatewayConfig) -> anyhow::Result<()> {
    if let Some(defaults) = &config.ratelimit {
        if defaults.backend == BackendKind::Redis && config.redis.is_none() {
            bail!("[ratelimit] backend = \"redis\" needs a [redis] table");
        }
        MemoryStore::new(&defaults.memory).context("in [ratelimit.memory]")?;
        defaults.redis.validate().context("in [ratelimit.redis]")?;
    }
    for route in &config.routes {
        if let Some(limits) = route_config(config, route)? {
            limits
                .validate()
                .with_context(|| format!("in the rate limits of route {:?}", route.name))?;
        }
    }
    Ok(())
}

/// Wraps `service` in the route's rate limiter, if the route has quotas.
pub(crate) fn wrap(
    service: RouteService,
    config: &GatewayConfig,
    route: &RouteConfig,
    backend: Option<&Backend>,
) -> anyhow::Result<RouteService> {
    let (Some(limits), Some(backend)) = (route_config(config, route)?, backend) else {
        return Ok(service);
    };
    let limiter = RateLimiter::new(&limits, backend.clone())
        .with_context(|| format!("in the rate limits of route {:?}", route.name))?;
    let limited = RateLimitLayer::new(limiter).layer(service);
    Ok(RouteService::new(
        ServiceExt::<Request<GatewayBody>>::map_response(limited, |response| {
            response.map(box_body)
        }),
    ))
}
