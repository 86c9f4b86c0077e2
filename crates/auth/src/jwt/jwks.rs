//! JSON Web Key Sets: parsed from a file, or fetched from a URL and refreshed in the background.
//!
//! A remote set is fetched once at start-up (failing start-up if it cannot be had), then again
//! after the response's `Cache-Control: max-age`, kept between `min_refresh_interval` and
//! `max_refresh_interval` (or `refresh_interval` without one). When a fetch fails the last good
//! set stays in use and the background refresh tries again sooner: after
//! `min_refresh_interval`, doubling with each failure in a row up to the usual wait. A token
//! naming a `kid` the set lacks triggers one refresh, shared by every request that waits for it
//! and at most one per `min_refresh_interval`, so a flood of tokens with made-up `kid`s cannot
//! turn into a flood of fetches.

use std::fmt;
use std::path::PathBuf;
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

/// Fetches a JWKS document. The built-in `HttpFetcher` speaks `https://` and `http://`
/// through hyper and rustls; supply your own to go through a client you already run (one
/// with a proxy or a client certificate, say).
pub trait JwksFetcher: fmt::Debug + Send + Sync + 'static {
    /// GETs `url` and returns the body of a 2xx answer.
    fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwksResponse, String>>;

    /// A fetcher like this one that also trusts the CA certificates in `pem` (`CERTIFICATE`
    /// blocks), used for a set whose configuration names a `ca_file`.
    ///
    /// The default refuses, so that a `ca_file` is never silently ignored by a fetcher that
    /// cannot honour it: start-up fails with this message instead.
    fn with_extra_roots(&self, pem: &[u8]) -> Result<Arc<dyn JwksFetcher>, String> {
        let _ = pem;
        Err(
            "this JWKS fetcher cannot take extra CA certificates; trust them in its own client \
             and leave ca_file out"
                .to_owned(),
        )
    }
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
/// url = "https://idp.internal/.well-known/jwks.json"
/// algorithms = ["RS256"]
/// ca_file = "/etc/rampart/idp-ca.pem"   # optional: a private CA, trusted besides the system's
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
    /// A PEM file of CA certificates trusted for this `https://` URL on top of the platform's
    /// roots: a private CA of your identity provider, or a test CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
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
            ca_file: None,
        }
    }

    /// The wait after a good fetch: its `max-age`, else `refresh_interval`, within bounds.
    fn next_wait(&self, max_age: Option<Duration>) -> Duration {
        max_age
            .unwrap_or(self.refresh_interval)
            .clamp(self.min_refresh_interval, self.max_refresh_interval)
    }

    /// How long the background refresh waits after `failures` failed fetches in a row:
    /// `min_refresh_interval`, doubled per further failure, never past the usual wait.
    fn retry_wait(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.min_refresh_interval
            .saturating_mul(1 << doublings)
            .min(self.next_wait(None))
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
        if self.ca_file.is_some()
            && !self
                .url
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
        {
            return Err(AuthError::config(
                "jwks_url.ca_file",
                "only applies to an https:// url",
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
        if config
            .url
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
        {
            // Keys fetched in the clear can be swapped by anyone on the path: fine on loopback
            // or a sidecar, worth a word anywhere else.
            tracing::warn!(
                jwks.url = %config.url,
                "JWKS fetched over plain http://; use https:// unless the path is trusted"
            );
        }
        let fetcher = match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|source| AuthError::Read {
                    path: path.clone(),
                    source,
                })?;
                fetcher.with_extra_roots(&pem).map_err(|reason| {
                    AuthError::config("jwks_url.ca_file", format!("{}: {reason}", path.display()))
                })?
            }
            None => fetcher,
        };
        let (keys, max_age) = fetch_keys(&config, fetcher.as_ref()).await?;
        let remote = Arc::new(Self {
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_fetch: Instant::now(),
            }),
            keys: RwLock::new(Arc::new(keys)),
            fetcher,
            config,
        });
        let first_wait = remote.config.next_wait(max_age);
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

    /// Fetches now, keeping the last good set on failure. Returns the `max-age` seen, or
    /// `Err` when the fetch failed.
    async fn refresh_now(&self, state: &mut RefreshState) -> Result<Option<Duration>, ()> {
        state.last_fetch = Instant::now();
        match fetch_keys(&self.config, self.fetcher.as_ref()).await {
            Ok((keys, max_age)) => {
                *self.keys.write() = Arc::new(keys);
                tracing::debug!(jwks.url = %self.config.url, "jwks refreshed");
                Ok(max_age)
            }
            Err(err) => {
                tracing::warn!(jwks.url = %self.config.url, error = %err, "jwks refresh failed, keeping the last good set");
                Err(())
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
        // A failure is logged inside; the background loop owns the retry schedule.
        let _ = self.refresh_now(&mut state).await;
    }
}

async fn refresh_loop(remote: Weak<RemoteJwks>, mut wait: Duration) {
    let mut failures = 0;
    loop {
        tokio::time::sleep(wait).await;
        let Some(remote) = remote.upgrade() else {
            return;
        };
        let mut state = remote.refresh.lock().await;
        wait = if let Ok(max_age) = remote.refresh_now(&mut state).await {
            failures = 0;
            remote.config.next_wait(max_age)
        } else {
            failures += 1;
            remote.config.retry_wait(failures)
        };
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
    use std::sync::{Arc, LazyLock};

    use super::{BoxFuture, Bytes, JwksFetcher, JwksResponse, cache_control_max_age};
    use futures_util::FutureExt;
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use rustls::RootCertStore;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    const MAX_JWKS_BYTES: usize = 1 << 20;

    // The platform's roots (rustls-native-certs) rather than a list compiled in
    // (webpki-roots): the operator keeps trust current with the OS's CA bundle, a company CA
    // installed system-wide is trusted as it is by every other tool on the host, and
    // SSL_CERT_FILE / SSL_CERT_DIR are honoured. An image without a CA bundle (scratch,
    // distroless static) gets none and needs `ca_file`. Read once per process.
    static PLATFORM_ROOTS: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(error = %error, "cannot read some platform CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(found.certs);
        if ignored > 0 {
            tracing::debug!(
                tls.roots_ignored = ignored,
                "skipped unparsable platform CA certificates"
            );
        }
        if added == 0 {
            tracing::warn!("no platform CA certificates found; https JWKS URLs need ca_file");
        }
        Arc::new(roots)
    });

    /// Fetches JWKS documents over `https://` (rustls on aws-lc-rs, TLS 1.2 and 1.3, the
    /// platform's trusted roots) or plain `http://` with hyper.
    ///
    /// Extra CAs for one URL come through [`JwksFetcher::with_extra_roots`], which
    /// [`RemoteJwks::start`](super::RemoteJwks::start) calls for a config's `ca_file`.
    #[derive(Debug, Clone)]
    pub struct HttpFetcher {
        client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
        roots: Arc<RootCertStore>,
    }

    impl Default for HttpFetcher {
        fn default() -> Self {
            Self::with_roots(PLATFORM_ROOTS.clone())
        }
    }

    impl HttpFetcher {
        fn with_roots(roots: Arc<RootCertStore>) -> Self {
            // An explicit provider, not the process default: rustls's default panics when the
            // application also enables its `ring` backend.
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("aws-lc-rs provides TLS 1.2 and 1.3 cipher suites")
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            let https = HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Self {
                client: Client::builder(TokioExecutor::new()).build(https),
                roots,
            }
        }
    }

    /// The error and its causes, `: `-joined: hyper's own message ("client error
    /// (Connect)") hides why, such as an untrusted certificate.
    fn describe(error: &(dyn std::error::Error + 'static)) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let more = cause.to_string();
            if !text.ends_with(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = cause.source();
        }
        text
    }

    impl JwksFetcher for HttpFetcher {
        fn fetch<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<JwksResponse, String>> {
            async move {
                let uri: http::Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
                if !matches!(uri.scheme_str(), Some("https" | "http")) {
                    return Err("the built-in fetcher speaks https:// and http:// only".to_owned());
                }
                let request = http::Request::get(uri)
                    .header(http::header::ACCEPT, "application/json")
                    .body(Empty::new())
                    .map_err(|e| e.to_string())?;
                let response = self
                    .client
                    .request(request)
                    .await
                    .map_err(|e| describe(&e))?;
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
                    .map_err(|e| format!("reading body: {}", describe(e.as_ref())))?
                    .to_bytes();
                Ok(JwksResponse { body, max_age })
            }
            .boxed()
        }

        fn with_extra_roots(&self, pem: &[u8]) -> Result<Arc<dyn JwksFetcher>, String> {
            let mut roots = RootCertStore::clone(&self.roots);
            let mut count = 0usize;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
                count += 1;
                roots
                    .add(cert)
                    .map_err(|e| format!("certificate {count} refused: {e}"))?;
            }
            if count == 0 {
                return Err("no CERTIFICATE block in the file".to_owned());
            }
            Ok(Arc::new(Self::with_roots(Arc::new(roots))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_refreshes_are_retried_sooner_then_less_often() {
        let config = JwksUrlConfig {
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
            ..JwksUrlConfig::new("https://idp.example/jwks", vec![Algorithm::RS256])
        };
        let waits: Vec<u64> = (1..=6)
            .map(|failures| config.retry_wait(failures).as_secs())
            .collect();
        // The floor, doubled per failure, capped at the usual wait.
        assert_eq!(waits, [30, 60, 120, 240, 300, 300]);
        assert_eq!(config.retry_wait(u32::MAX), Duration::from_secs(300));
    }

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
