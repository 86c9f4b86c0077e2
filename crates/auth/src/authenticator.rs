//! Reads the credential from the request headers and checks it.

use std::fmt;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rampart_core::{CredentialKind, Identity};
use tokio::time::Instant;

use crate::AuthError;
use crate::apikey::{self, KeyHasher};
use crate::backend::KeyStore;
use crate::config::AuthConfig;
use crate::jwt::{JwtRejection, JwtVerifier};

/// How a request tried to authenticate, as the `method` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An API key.
    ApiKey,
    /// A bearer token.
    Jwt,
    /// No credential at all.
    None,
}

impl Method {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Jwt => "jwt",
            Self::None => "none",
        }
    }
}

/// The class of a refusal, as the `outcome` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No credential was presented.
    Missing,
    /// The credential is malformed, unknown, revoked or badly signed.
    Invalid,
    /// The credential was good but has expired.
    Expired,
    /// The key store could not answer in time.
    Unavailable,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Invalid => "invalid",
            Self::Expired => "expired",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Why a request was not authenticated. `reason` is for logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The credential kind tried.
    pub method: Method,
    /// The class of refusal.
    pub outcome: Outcome,
    /// A short phrase for logs; never shown to the client, never holding the credential.
    pub reason: &'static str,
}

impl Rejection {
    fn new(method: Method, outcome: Outcome, reason: &'static str) -> Self {
        Self {
            method,
            outcome,
            reason,
        }
    }
}

enum Credential<'a> {
    ApiKey(&'a str),
    Bearer(&'a str),
}

/// Checks API keys and bearer tokens; shared by every clone of the auth layer.
pub struct Authenticator {
    api_key_header: HeaderName,
    authorization_header: HeaderName,
    pub(crate) realm: String,
    prefix: String,
    hasher: KeyHasher,
    store: Option<Arc<dyn KeyStore>>,
    jwt: Option<JwtVerifier>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_key_header", &self.api_key_header)
            .field("authorization_header", &self.authorization_header)
            .field("api_keys", &self.store.is_some())
            .field("jwt", &self.jwt.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator reading headers as `config` says, checking API keys against `store`
    /// (hashed with `hasher`) and tokens with `jwt`. Either may be `None` to turn it off.
    pub fn new(
        config: &AuthConfig,
        hasher: KeyHasher,
        store: Option<Arc<dyn KeyStore>>,
        jwt: Option<JwtVerifier>,
    ) -> Result<Self, AuthError> {
        let header = |field, name: &str| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| AuthError::config(field, "not a valid header name"))
        };
        if config.realm.contains(['"', '\\']) || !config.realm.is_ascii() {
            return Err(AuthError::config(
                "realm",
                "must be ASCII without quotes or backslashes",
            ));
        }
        if store.is_none() && jwt.is_none() {
            return Err(AuthError::config("auth", "enable API keys, JWT or both"));
        }
        let prefix = config
            .api_keys
            .as_ref()
            .map_or_else(|| "rk".to_owned(), |keys| keys.prefix.clone());
        apikey::validate_prefix(&prefix)?;
        Ok(Self {
            api_key_header: header("api_key_header", &config.api_key_header)?,
            authorization_header: header("authorization_header", &config.authorization_header)?,
            realm: config.realm.clone(),
            prefix,
            hasher,
            store,
            jwt,
        })
    }

    /// Builds everything `config` describes: the key store (the static keys, then Redis on
    /// `redis` when `api_keys.store = "redis"`), the JWT verifier (reading key files and
    /// fetching JWKS URLs with `fetcher`). Fails when a key, a secret or a JWKS cannot be had.
    pub async fn from_config(
        config: &AuthConfig,
        #[cfg(feature = "redis")] redis: Option<rampart_core::redis::RedisPool>,
        fetcher: Arc<dyn crate::jwt::JwksFetcher>,
    ) -> Result<Self, AuthError> {
        config.validate()?;
        let (hasher, store) = match &config.api_keys {
            None => (KeyHasher::sha256(), None),
            Some(keys) => (
                keys.hasher()?,
                Some(keys.store(
                    #[cfg(feature = "redis")]
                    redis,
                )?),
            ),
        };
        let jwt = match &config.jwt {
            None => None,
            Some(jwt) => Some(JwtVerifier::from_config(jwt, fetcher).await?),
        };
        Self::new(config, hasher, store, jwt)
    }

    /// The API key store, for administration (`keys list`, `keys revoke`).
    pub fn key_store(&self) -> Option<&Arc<dyn KeyStore>> {
        self.store.as_ref()
    }

    /// The hasher new keys must be hashed with.
    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    /// The `realm` of this authenticator's challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The configured key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn credential<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, Rejection> {
        let single = |name: &HeaderName, method| -> Result<Option<&'a HeaderValue>, Rejection> {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(None),
                (Some(value), None) => Ok(Some(value)),
                (Some(_), Some(_)) => Err(Rejection::new(
                    method,
                    Outcome::Invalid,
                    "repeated credential header",
                )),
            }
        };
        let text = |value: &'a HeaderValue, method| {
            value.to_str().map_err(|_| {
                Rejection::new(method, Outcome::Invalid, "non-ASCII credential header")
            })
        };

        let api_key = single(&self.api_key_header, Method::ApiKey)?
            .map(|value| text(value, Method::ApiKey))
            .transpose()?;
        let authorization = match single(&self.authorization_header, Method::Jwt)? {
            None => None,
            Some(value) => {
                let value = text(value, Method::Jwt)?;
                let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
                if scheme.eq_ignore_ascii_case("bearer") {
                    Some(Credential::Bearer(rest))
                } else if scheme.eq_ignore_ascii_case("apikey") {
                    Some(Credential::ApiKey(rest))
                } else {
                    // Another scheme (Basic, say) is not ours to judge.
                    None
                }
            }
        };

        match (api_key, authorization) {
            (Some(_), Some(_)) => Err(Rejection::new(
                Method::ApiKey,
                Outcome::Invalid,
                "two credentials",
            )),
            (Some(key), None) => Ok(Some(Credential::ApiKey(key))),
            (None, credential) => Ok(credential),
        }
    }

    /// Authenticates a request by its headers. `Ok(None)`: no credential was presented.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Identity>, Rejection> {
        let Some(credential) = self.credential(headers)? else {
            return Ok(None);
        };
        let started = Instant::now();
        let (method, result) = match credential {
            Credential::ApiKey(key) => (Method::ApiKey, self.check_api_key(key).await),
            Credential::Bearer(token) => (Method::Jwt, self.check_token(token).await),
        };
        metrics::histogram!("rampart_auth_verification_seconds", "method" => method.as_str())
            .record(started.elapsed().as_secs_f64());
        result.map(Some)
    }

    async fn check_api_key(&self, key: &str) -> Result<Identity, Rejection> {
        let invalid = |reason| Rejection::new(Method::ApiKey, Outcome::Invalid, reason);
        let Some(store) = &self.store else {
            return Err(invalid("api keys are not enabled"));
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(invalid("malformed key"));
        }
        let parsed = apikey::parse(&self.prefix, key).map_err(|e| invalid(e.as_str()))?;
        let record = match store.lookup(parsed.id).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(invalid("unknown key id")),
            Err(err) => {
                // The store logs the outage once; per request this is a debug event.
                tracing::debug!(error = %err, "api key store unavailable");
                return Err(Rejection::new(
                    Method::ApiKey,
                    Outcome::Unavailable,
                    "key store unavailable",
                ));
            }
        };
        if !self.hasher.matches(parsed.secret(), &record.hash) {
            return Err(invalid("wrong secret"));
        }
        if record.revoked {
            return Err(invalid("revoked key"));
        }
        if record.expires_at.is_some_and(|at| apikey::unix_now() >= at) {
            return Err(Rejection::new(
                Method::ApiKey,
                Outcome::Expired,
                "expired key",
            ));
        }

        let mut identity = Identity::new(record.owner.clone(), CredentialKind::ApiKey);
        identity.roles.clone_from(&record.roles);
        identity.scopes.clone_from(&record.scopes);
        identity.credential_id = Some(record.id.clone());
        identity.expires_at = record
            .expires_at
            .map(|at| std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
        Ok(identity)
    }

    async fn check_token(&self, token: &str) -> Result<Identity, Rejection> {
        let Some(jwt) = &self.jwt else {
            return Err(Rejection::new(
                Method::Jwt,
                Outcome::Invalid,
                "bearer tokens are not enabled",
            ));
        };
        if token.is_empty() || token.contains(' ') {
            return Err(Rejection::new(
                Method::Jwt,
                Outcome::Invalid,
                "malformed authorization header",
            ));
        }
        jwt.verify(token).await.map_err(|rejection| {
            let outcome = if rejection == JwtRejection::Expired {
                Outcome::Expired
            } else {
                Outcome::Invalid
            };
            Rejection::new(Method::Jwt, outcome, rejection.as_str())
        })
    }
}
