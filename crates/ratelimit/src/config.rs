//! What a rate limiter limits, by which key, and what it tells the client.

use rampart_core::TrustedProxies;
use serde::Deserialize;

use crate::key::{KeyBuilder, KeyPart};
use crate::{Quota, QuotaConfig, RateLimitError};

/// Which headers describe the quotas on responses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderStyle {
    /// `RateLimit-Policy` and `RateLimit` as structured-field lists, one item per quota, in the
    /// form of the IETF httpapi draft: `RateLimit-Policy: "50/hour";q=50;w=3600` and
    /// `RateLimit: "50/hour";r=12;t=1800`.
    #[default]
    Draft,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds until the
    /// budget is full again) for the most constrained quota.
    Legacy,
    /// No quota headers; a 429 still carries `Retry-After`.
    None,
}

/// The configuration of one rate limiter.
///
/// ```toml
/// quotas = ["200/day", "50/hour"]
/// key = ["subject"]          # per identity; anonymous requests per client IP
/// headers = "draft"          # or "legacy", "none"
/// trusted_proxies = ["10.0.0.0/8"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Every quota a request must pass; a refusal by one consumes none of the others.
    pub quotas: Vec<QuotaConfig>,
    /// The key parts; by default the client IP.
    pub key: Vec<KeyPart>,
    /// The cost of a request unless a [`RequestCost`](crate::RequestCost) extension says
    /// otherwise.
    pub cost: u32,
    /// Which headers to send.
    pub headers: HeaderStyle,
    /// Proxies whose `Forwarded` / `X-Forwarded-For` are believed. Ignored when an earlier
    /// layer already put a `ClientIp` in the request.
    pub trusted_proxies: TrustedProxies,
    /// IPv6 clients are keyed by this prefix length (64 by default; 128 keys each address).
    pub ipv6_prefix: u8,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            quotas: Vec::new(),
            key: vec![KeyPart::Ip],
            cost: 1,
            headers: HeaderStyle::Draft,
            trusted_proxies: TrustedProxies::none(),
            ipv6_prefix: 64,
        }
    }
}

impl RateLimitConfig {
    /// A configuration with these quotas and the defaults otherwise.
    pub fn with_quotas<S: AsRef<str>>(quotas: impl IntoIterator<Item = S>) -> Self {
        Self {
            quotas: quotas
                .into_iter()
                .map(|q| QuotaConfig::Rate(q.as_ref().to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    /// Checks every field and returns the settings a limiter runs on.
    pub fn validate(&self) -> Result<Settings, RateLimitError> {
        if self.quotas.is_empty() {
            return Err(RateLimitError::Config {
                field: "quotas",
                reason: "needs at least one quota such as \"50/hour\"".into(),
            });
        }
        let quotas: Vec<Quota> = self
            .quotas
            .iter()
            .map(QuotaConfig::to_quota)
            .collect::<Result<_, _>>()?;
        for (i, quota) in quotas.iter().enumerate() {
            if quotas[..i].iter().any(|q| q.name() == quota.name()) {
                return Err(RateLimitError::Config {
                    field: "quotas",
                    reason: format!("two quotas are named {:?}; give one a `name`", quota.name()),
                });
            }
        }
        if self.key.is_empty() {
            return Err(RateLimitError::Config {
                field: "key",
                reason: "needs at least one part, such as \"ip\"".into(),
            });
        }
        if self.cost == 0 {
            return Err(RateLimitError::Config {
                field: "cost",
                reason: "must be at least 1".into(),
            });
        }
        if self.ipv6_prefix == 0 || self.ipv6_prefix > 128 {
            return Err(RateLimitError::Config {
                field: "ipv6_prefix",
                reason: format!("must be between 1 and 128, not {}", self.ipv6_prefix),
            });
        }

        Ok(Settings {
            quotas,
            keys: KeyBuilder {
                parts: self.key.clone(),
                proxies: self.trusted_proxies.clone(),
                ipv6_prefix: self.ipv6_prefix,
            },
            cost: self.cost,
            headers: self.headers,
        })
    }
}

/// A checked [`RateLimitConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) quotas: Vec<Quota>,
    pub(crate) keys: KeyBuilder,
    pub(crate) cost: u32,
    pub(crate) headers: HeaderStyle,
}

impl Settings {
    /// The quotas, in configuration order.
    pub fn quotas(&self) -> &[Quota] {
        &self.quotas
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_gateway_table() {
        let config: RateLimitConfig = toml::from_str(
            r#"
            quotas = ["200/day", { name = "hourly", rate = "50/hour" }]
            key = ["subject", "header:x-tenant"]
            headers = "legacy"
            trusted_proxies = ["10.0.0.0/8"]
            "#,
        )
        .unwrap();
        let settings = config.validate().unwrap();
        let names: Vec<_> = settings.quotas().iter().map(Quota::name).collect();
        assert_eq!(names, ["200/day", "hourly"]);
        assert_eq!(settings.headers, HeaderStyle::Legacy);
    }

    #[test]
    fn names_the_wrong_field() {
        let cases = [
            ("quotas = []", "quotas"),
            ("quotas = [\"1/s\", \"1/s\"]", "quotas"),
            ("quotas = [\"1/s\"]\nkey = []", "key"),
            ("quotas = [\"1/s\"]\ncost = 0", "cost"),
            ("quotas = [\"1/s\"]\nipv6_prefix = 0", "ipv6_prefix"),
        ];
        for (text, field) in cases {
            let config: RateLimitConfig = toml::from_str(text).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{text}: {err}");
        }
        let err = toml::from_str::<RateLimitConfig>("quotas = [\"1/s\"]\nkey = [\"cookie\"]")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cookie"), "{err}");
    }
}
