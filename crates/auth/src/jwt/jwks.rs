//! JSON Web Key Sets: parsed from a file, or fetched from a URL and refreshed in the background.
//!
//! A remote set is fetched once at start-up (failing start-up if it cannot be had), then again
//! after the response's `Cache-Control: max-age`, kept between `min_refresh_interval` and
//! `max_refresh_interval` (or `refresh_interval` without one). When a fetch fails the last good
//! set stays in use. A token naming a `kid` the set lacks triggers one refresh, shared by every
//! request that waits for it and at most one per `min_refresh_interval`, so a flood of tokens
//! with made-up `kid`s cannot turn into a flood of fetches.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use parking_lot::RwLock;
use serde::Deserialize;
use tokio::time::Instant;

use super::key::{Algorithm, VerifyKey};
use crate::AuthError;

/// Parses a JWKS document into keys, each bound to one of `allowed`.
///
/// Keys that cannot be used (an encryption key, a type no allowed algorithm fits) are skipped
/// with a `warn` event; a set that yields no key at all is an error.
pub fn parse_jwks(
    source: &str,
    json: &[u8],
    allowed: &[Algorithm],
) -> Result<Vec<Arc<VerifyKey>>, AuthError> {
    let set: JwkSet = serde_json::from_slice(json).map_err(|e| AuthError::Jwks {
        url: source.to_owned(),
        reason: format!("not a JWK set: {e}"),
    })?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        match VerifyKey::from_jwk(jwk, allowed) {
            Ok(key) => keys.push(Arc::new(key)),
            Err(err) => tracing::warn!(jwks.source = source, error = %err, "skipping unusable JWK"),
        }
    }
    if keys.is_empty() {
        return Err(AuthError::Jwks {
            url: source.to_owned(),
            reason: "no usable key in the set".to_owned(),
        });
    }
    Ok(keys)
}

/// A fetched JWKS document.
#[derive(Debug, Clone)]
pub struct JwksResponse {
    /// The body.
    pub body: Bytes,
    /// `Cache-Control: max-age`, or zero for `no-cache`/`no-store`; `None` without either.
    pub max_age: Option<Duration>,
}

/// Fetches a JWKS document. The built-in one speaks plain HTTP through hyper; supply your own
/// (on reqwest, say) to fetch over HTTPS.
pub trait JwksFetcher: fmt::Debug + Send + Sync + 'static {
    /// GETs `url` and returns the body of a 2xx answer.
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwksResponse, String>>;
}

/// Reads `max-age` (and `no-cache`/`no-store`, as zero) from a `Cache-Control` value.
pub fn cache_control_max_age(value: &str) -> Option<Duration> {
    let mut found = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            found = seconds
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

/// Where and how often to fetch a remote JWKS.
///
/// ```toml
/// url = "http://idp.internal/.well-known/jwks.json"
/// algorithms = ["RS256"]
/// refresh_interval = "5m"
/// min_refresh_interval = "30s"
/// max_refresh_interval = "1h"
/// timeout = "5s"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksUrlConfig {
    /// The JWKS URL.
    pub url: String,
    /// Algorithms the set's keys may be bound to.
    pub algorithms: Vec<Algorithm>,
    /// Refresh period when the response carries no `Cache-Control: max-age`.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// Floor of the refresh period, and the least time between two refreshes caused by
    /// unknown `kid`s.
    #[serde(default = "default_min_refresh", with = "humantime_serde")]
    pub min_refresh_interval: Duration,
    /// Ceiling of the refresh period, whatever `max-age` says.
    #[serde(default = "default_max_refresh", with = "humantime_serde")]
    pub max_refresh_interval: Duration,
    /// Deadline of one fetch.
    #[serde(default = "default_fetch_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_secs(300)
}
fn default_min_refresh() -> Duration {
    Duration::from_secs(30)
}
fn default_max_refresh() -> Duration {
    Duration::from_secs(3600)
}
fn default_fetch_timeout() -> Duration {
    Duration::from_secs(5)
}

impl JwksUrlConfig {
    /// A configuration with default intervals.
    pub fn new(url: impl Into<String>, algorithms: Vec<Algorithm>) -> Self {
        Self {
            url: url.into(),
            algorithms,
            refresh_interval: default_refresh(),
            min_refresh_interval: default_min_refresh(),
            max_refresh_interval: default_max_refresh(),
            timeout: default_fetch_timeout(),
        }
    }

    fn validate(&self) -> Result<(), AuthError> {
        if self.algorithms.is_empty() {
            return Err(AuthError::config(
                "jwks_url.algorithms",
                "list at least one algorithm",
            ));
        }
        if self.min_refresh_interval.is_zero() {
            return Err(AuthError::config(
                "jwks_url.min_refresh_interval",
                "must be above zero",
            ));
        }
        if self.max_refresh_interval < self.min_refresh_interval {
            return Err(AuthError::config(
                "jwks_url.max_refresh_interval",
                "must not be below min_refresh_interval",
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct RefreshState {
    last_fetch: Instant,
}

/// A remote JWKS with its last good keys and its refresh machinery.
pub struct RemoteJwks {
    config: JwksUrlConfig,
    fetcher: Arc<dyn JwksFetcher>,
    keys: RwLock<Arc<Vec<Arc<VerifyKey>>>>,
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.config.url)
            .field("keys", &self.keys.read().len())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// Fetches the set once and starts refreshing it in the background. The task ends when the
    /// returned handle and every clone of it are dropped.
    pub async fn start(
        config: JwksUrlConfig,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Result<Arc<Self>, AuthError> {
        config.validate()?;
        let (keys, max_age) = fetch_keys(&config, fetcher.as_ref()).await?;
        let remote = Arc::new(Self {
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_fetch: Instant::now(),
            }),
            keys: RwLock::new(Arc::new(keys)),
            fetcher,
            config,
        });
        let first_wait = remote.next_wait(max_age);
        tokio::spawn(refresh_loop(Arc::downgrade(&remote), first_wait));
        Ok(remote)
    }

    /// The current keys.
    pub fn keys(&self) -> Arc<Vec<Arc<VerifyKey>>> {
        self.keys.read().clone()
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    fn next_wait(&self, max_age: Option<Duration>) -> Duration {
        max_age.unwrap_or(self.config.refresh_interval).clamp(
            self.config.min_refresh_interval,
            self.config.max_refresh_interval,
        )
    }

    /// Fetches now, keeping the last good set on failure. Returns the `max-age` seen.
    async fn refresh_now(&self, state: &mut RefreshState) -> Option<Duration> {
        state.last_fetch = Instant::now();
        match fetch_keys(&self.config, self.fetcher.as_ref()).await {
            Ok((keys, max_age)) => {
                *self.keys.write() = Arc::new(keys);
                tracing::debug!(jwks.url = %self.config.url, "jwks refreshed");
                max_age
            }
            Err(err) => {
                tracing::warn!(jwks.url = %self.config.url, error = %err, "jwks refresh failed, keeping the last good set");
                None
            }
        }
    }

    /// Called when a token names a `kid` the set lacks: refreshes unless a fetch started less
    /// than `min_refresh_interval` ago. Concurrent callers share one fetch.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut state = self.refresh.lock().await;
        if state.last_fetch.elapsed() < self.config.min_refresh_interval {
            return;
        }
        self.refresh_now(&mut state).await;
    }
}

async fn refresh_loop(remote: Weak<RemoteJwks>, mut wait: Duration) {
    loop {
        tokio::time::sleep(wait).await;
        let Some(remote) = remote.upgrade() else {
            return;
        };
        let mut state = remote.refresh.lock().await;
        let max_age = remote.refresh_now(&mut state).await;
        wait = remote.next_wait(max_age);
    }
}

async fn fetch_keys(
    config: &JwksUrlConfig,
    fetcher: &dyn JwksFetcher,
) -> Result<(Vec<Arc<VerifyKey>>, Option<Duration>), AuthError> {
    let response = tokio::time::timeout(config.timeout, fetcher.fetch(&config.url))
        .await
        .map_err(|_| AuthError::Jwks {
            url: config.url.clone(),
            reason: format!("no answer within {:?}", config.timeout),
        })?
        .map_err(|reason| AuthError::Jwks {
            url: config.url.clone(),
            reason,
        })?;
    let keys = parse_jwks(&config.url, &response.body, &config.algorithms)?;
    Ok((keys, response.max_age))
}

#[cfg(feature = "jwks-url")]
pub use http_fetcher::HttpFetcher;

#[cfg(feature = "jwks-url")]
mod http_fetcher {
    use super::{BoxFuture, Bytes, JwksFetcher, JwksResponse, cache_control_max_age};
    use futures_util::FutureExt;
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    const MAX_JWKS_BYTES: usize = 1 << 20;

    /// Fetches JWKS documents over plain HTTP with hyper.
    ///
    /// Limitation: no TLS. For an `https://` URL, implement [`JwksFetcher`] on a client that
    /// has it.
    #[derive(Debug, Clone)]
    pub struct HttpFetcher {
        client: Client<HttpConnector, Empty<Bytes>>,
    }

    impl Default for HttpFetcher {
        fn default() -> Self {
            Self {
                client: Client::builder(TokioExecutor::new()).build_http(),
            }
        }
    }

    impl JwksFetcher for HttpFetcher {
        fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwksResponse, String>> {
            async move {
                let uri: http::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
                if uri.scheme_str() != Some("http") {
                    return Err("the built-in fetcher speaks http:// only".to_owned());
                }
                let request = http::Request::get(uri)
                    .header(http::header::ACCEPT, "application/json")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("status {}", response.status()));
                }
                let max_age = response
                    .headers()
                    .get(http::header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok())
                    .and_then(cache_control_max_age);
                let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                    .collect()
                    .await
                    .map_err(|e| format!("reading body: {e}"))?
                    .to_bytes();
                Ok(JwksResponse { body, max_age })
            }
            .boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_read() {
        assert_eq!(
            cache_control_max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(cache_control_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(cache_control_max_age("public"), None);
        assert_eq!(cache_control_max_age("max-age=abc"), None);
    }
}
