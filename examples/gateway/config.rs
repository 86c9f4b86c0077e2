//! The gateway's TOML configuration.
//!
//! Every table is checked when the file loads (`gateway check-config PATH` runs the same
//! checks), so a typo fails at start-up with the field's name rather than at the first request.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use http::Method;
use rampart_core::TrustedProxies;
use rampart_core::redis::RedisConfig;
use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    /// Address the proxy listens on.
    pub(crate) listen: SocketAddr,
    /// Runtime worker threads; the number of CPUs when absent.
    pub(crate) workers: Option<usize>,
    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    #[serde(default = "default_grace", with = "humantime_serde")]
    pub(crate) shutdown_grace: Duration,
    /// How long a client may take to send a request's headers; slower connections are
    /// closed, so a trickle of bytes cannot hold a connection open forever.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub(crate) header_read_timeout: Duration,
    /// Peers whose `Forwarded` / `X-Forwarded-For` headers are believed.
    #[serde(default)]
    pub(crate) trusted_proxies: TrustedProxies,
    /// Paths answered by the gateway itself.
    #[serde(default)]
    pub(crate) admin: AdminConfig,
    /// Shared Redis for layers that keep state across gateways; `/readyz` fails while it is
    /// unreachable.
    pub(crate) redis: Option<RedisConfig>,
    /// The in-process demo agent started next to the gateway (for the README's first run).
    pub(crate) demo: Option<DemoConfig>,
    /// API keys and bearer tokens (`[auth]`); every route authenticates when it is set.
    pub(crate) auth: Option<rampart::auth::AuthConfig>,
    /// Default quotas for every route and the rate-limit backend (`[ratelimit]`).
    pub(crate) ratelimit: Option<crate::ratelimit::RateLimitDefaults>,
    /// Upstream services by name.
    pub(crate) upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routes, matched by longest path prefix, then by method.
    pub(crate) routes: Vec<RouteConfig>,
}

/// Paths the gateway answers itself; requests to them never reach an upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(clippy::struct_field_names)] // `health_path` reads better in TOML than `health`.
pub(crate) struct AdminConfig {
    pub(crate) health_path: String,
    pub(crate) ready_path: String,
    pub(crate) metrics_path: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            health_path: "/healthz".into(),
            ready_path: "/readyz".into(),
            metrics_path: "/metrics".into(),
        }
    }
}

/// The demo agent service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DemoConfig {
    pub(crate) listen: SocketAddr,
}

/// How the gateway speaks to an upstream.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (gRPC services, for example).
    H2c,
}

/// One upstream service and its connection pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpstreamConfig {
    /// `http://host:port`; a path here is prefixed to every forwarded path.
    #[serde(deserialize_with = "uri")]
    pub(crate) url: http::Uri,
    #[serde(default)]
    pub(crate) protocol: UpstreamProtocol,
    /// Idle connections kept per upstream host.
    #[serde(default = "default_max_idle")]
    pub(crate) max_idle: usize,
    /// How long an idle pooled connection is kept.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub(crate) idle_timeout: Duration,
    /// How long establishing a TCP connection may take.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub(crate) connect_timeout: Duration,
    /// How long the upstream may take to send response headers (504 past it).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub(crate) request_timeout: Duration,
}

/// A route: which requests go to which upstream, with which layers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteConfig {
    /// The route's name: the `route` label of metrics and logs.
    pub(crate) name: String,
    /// Path prefix, matched on whole segments (`/api` matches `/api/x`, not `/apix`).
    pub(crate) prefix: String,
    /// Methods the route accepts; empty means all.
    #[serde(default, deserialize_with = "methods")]
    pub(crate) methods: Vec<Method>,
    /// Name of the upstream in `[upstreams]`.
    pub(crate) upstream: String,
    /// Upstreams tried when the primary's circuit breaker is open, in order.
    ///
    /// Limitation: they are checked at load time but not used until the circuit breaker
    /// layer lands; today every request goes to the primary.
    #[serde(default)]
    pub(crate) fallbacks: Vec<String>,
    /// Remove the prefix from the path before forwarding.
    #[serde(default)]
    pub(crate) strip_prefix: bool,
    /// Send the client's `Host` instead of the upstream's authority.
    #[serde(default)]
    pub(crate) preserve_host: bool,
    /// Webhook verification and signing (`[routes.webhook]`).
    pub(crate) webhook: Option<crate::webhook::WebhookRouteConfig>,
    /// Anonymous access, roles and scopes (`[routes.auth]`).
    pub(crate) auth: Option<crate::auth::RouteAuthConfig>,
    /// This route's quotas (`[routes.ratelimit]`).
    pub(crate) ratelimit: Option<crate::ratelimit::RouteRateLimit>,
}

fn default_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_idle() -> usize {
    256
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(90)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn uri<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<http::Uri, D::Error> {
    String::deserialize(deserializer)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn methods<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Method>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

impl GatewayConfig {
    /// Reads and checks a configuration file.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses and checks a configuration text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.workers == Some(0) {
            bail!("workers must be at least 1");
        }
        for (name, upstream) in &self.upstreams {
            if upstream.url.scheme_str() != Some("http") || upstream.url.authority().is_none() {
                bail!(
                    "upstreams.{name}.url must be http://host:port, got {}",
                    upstream.url
                );
            }
        }

        let admin = [
            &self.admin.health_path,
            &self.admin.ready_path,
            &self.admin.metrics_path,
        ];
        if let Some(path) = admin.iter().find(|p| !p.starts_with('/')) {
            bail!("admin path {path:?} must start with '/'");
        }

        crate::auth::validate(self)?;
        crate::ratelimit::validate(self)?;
        let mut names = std::collections::BTreeSet::new();
        for route in &self.routes {
            let name = &route.name;
            if !names.insert(name.as_str()) {
                bail!("two routes are named {name:?}");
            }
            if !route.prefix.starts_with('/') {
                bail!("routes.{name}.prefix must start with '/'");
            }
            if let Some(webhook) = &route.webhook {
                webhook.validate(name, self.redis.is_some())?;
            }
            for upstream in std::iter::once(&route.upstream).chain(&route.fallbacks) {
                if !self.upstreams.contains_key(upstream) {
                    bail!("routes.{name} names upstream {upstream:?}, which [upstreams] lacks");
                }
            }
        }
        Ok(())
    }
}
