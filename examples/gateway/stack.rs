//! Composes each route's tower service from the configuration.
//!
//! The order is the one in ARCHITECTURE.md: rejections that cost least run first, the rate
//! limiter sees the identity auth established, and each retry attempt goes down through the
//! breaker again. Layers are wrapped innermost first, so read this file bottom-up to follow a
//! request.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tower::util::BoxCloneSyncService;

use crate::GatewayBody;
use crate::config::{GatewayConfig, RouteConfig};
use crate::proxy::{Forwarding, Proxy, Upstream};

/// A route's whole stack, type-erased so that layers can be added per route from config.
pub(crate) type RouteService =
    BoxCloneSyncService<Request<GatewayBody>, Response<GatewayBody>, Infallible>;

/// State built once per gateway and shared by every route (pools, stores, limiters).
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    pub(crate) redis: Option<rampart_core::redis::RedisPool>,
    /// The authenticator of `[auth]`, built at start-up by `auth::attach`.
    pub(crate) auth: Option<Arc<rampart::auth::Authenticator>>,
    /// Rate-limit state shared by every route, so default quotas are one budget per client.
    pub(crate) ratelimit: Option<rampart::ratelimit::Backend>,
}

impl Shared {
    pub(crate) fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let redis = config
            .redis
            .as_ref()
            .map(rampart_core::redis::RedisPool::new)
            .transpose()?;
        let ratelimit = crate::ratelimit::backend(config, redis.as_ref())?;
        Ok(Self {
            redis,
            auth: None,
            ratelimit,
        })
    }
}

/// Builds the service for one route.
pub(crate) fn route_service(
    config: &GatewayConfig,
    route: &RouteConfig,
    upstreams: &std::collections::BTreeMap<String, Upstream>,
    shared: &Shared,
) -> anyhow::Result<RouteService> {
    let _ = shared;
    let upstream = upstreams
        .get(&route.upstream)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("route {} names an unknown upstream", route.name))?;
    let forwarding = Forwarding {
        strip_prefix: route
            .strip_prefix
            .then(|| Arc::from(route.prefix.trim_end_matches('/'))),
        preserve_host: route.preserve_host,
    };

    // Innermost: the pooled upstream client, with the per-attempt timeout.
    let service = RouteService::new(Proxy::new(upstream, forwarding));

    // layer: circuit breaker, one per upstream, with fallbacks (lands with its issue)
    // layer: retry (lands with its issue)
    // layer: dead letters (lands with its issue)
    // layer: cache (lands with its issue)
    // layer: rate limit
    let service = crate::ratelimit::wrap(service, config, route, shared.ratelimit.as_ref())?;
    // layer: authorization (role / scope)
    let service = crate::auth::wrap_authorization(service, route, shared)?;
    // layer: webhook verification (and signing for subscriber routes)
    let service = crate::webhook::wrap(service, route, shared)?;
    // layer: authentication
    let service = crate::auth::wrap_authentication(service, route, shared);
    let _ = config;
    Ok(service)
}
