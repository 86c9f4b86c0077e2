//! Settings of the authentication layer.

use serde::Deserialize;

use crate::AuthError;
use crate::apikey::{KeyRecord, validate_prefix};
use crate::jwt::JwtConfig;

/// Where credentials are read from and how API keys look.
///
/// ```toml
/// api_key_header = "x-api-key"
/// realm = "rampart"
///
/// [api_keys]
/// prefix = "rk"
/// pepper_env = "RAMPART_KEY_PEPPER"
/// static = [{ id = "abcdefghijklmnop", hash = "sha256:…", owner = "ci", roles = ["deploy"] }]
///
/// [jwt]
/// leeway = "30s"
/// # issuers: see `JwtConfig`
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The header carrying an API key. `Authorization: ApiKey <key>` is accepted too.
    pub api_key_header: String,
    /// The header carrying `Bearer <token>` (and `ApiKey <key>`).
    pub authorization_header: String,
    /// The `realm` of `WWW-Authenticate` challenges.
    pub realm: String,
    /// API key settings; `None` turns API keys off.
    pub api_keys: Option<ApiKeyConfig>,
    /// JWT settings; `None` turns bearer tokens off.
    pub jwt: Option<JwtConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_key_header: "x-api-key".to_owned(),
            authorization_header: "authorization".to_owned(),
            realm: "rampart".to_owned(),
            api_keys: None,
            jwt: None,
        }
    }
}

/// API key settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The key prefix, 1 to 16 ASCII letters or digits.
    pub prefix: String,
    /// An environment variable holding the pepper (32 bytes or more) for HMAC-SHA-256 hashes;
    /// without it, secrets are hashed with plain SHA-256.
    pub pepper_env: Option<String>,
    /// Keys listed in the configuration file, by hash.
    #[serde(rename = "static")]
    pub static_keys: Vec<KeyRecord>,
    /// Where keys created at run time (`gateway keys create`) live.
    pub store: StoreKind,
    /// Settings of the Redis store, when `store = "redis"`.
    #[cfg(feature = "redis")]
    pub redis: crate::backend::redis::RedisKeyStoreConfig,
}

/// Where API keys created at run time are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// Only the `static` keys of the configuration file, in memory.
    #[default]
    Memory,
    /// Redis, shared by every gateway (the `static` keys are still honoured first).
    Redis,
}

impl Default for ApiKeyConfig {
    fn default() -> Self {
        Self {
            prefix: "rk".to_owned(),
            pepper_env: None,
            static_keys: Vec::new(),
            store: StoreKind::Memory,
            #[cfg(feature = "redis")]
            redis: crate::backend::redis::RedisKeyStoreConfig::default(),
        }
    }
}

impl AuthConfig {
    /// Checks the settings that need no file or network access.
    pub fn validate(&self) -> Result<(), AuthError> {
        for (field, name) in [
            ("api_key_header", &self.api_key_header),
            ("authorization_header", &self.authorization_header),
        ] {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(AuthError::config(field, "not a valid header name"));
            }
        }
        if self.realm.contains('"') || self.realm.contains('\\') || !self.realm.is_ascii() {
            return Err(AuthError::config(
                "realm",
                "must be ASCII without quotes or backslashes",
            ));
        }
        if let Some(keys) = &self.api_keys {
            validate_prefix(&keys.prefix)?;
            #[cfg(feature = "redis")]
            keys.redis.validate()?;
            #[cfg(not(feature = "redis"))]
            if keys.store == StoreKind::Redis {
                return Err(AuthError::config(
                    "api_keys.store",
                    "built without the `redis` feature",
                ));
            }
        }
        if let Some(jwt) = &self.jwt {
            jwt.validate()?;
        }
        if self.api_keys.is_none() && self.jwt.is_none() {
            return Err(AuthError::config(
                "auth",
                "enable `api_keys`, `jwt` or both",
            ));
        }
        Ok(())
    }
}

impl ApiKeyConfig {
    /// The key store: the `static` keys, then Redis on `redis` when `store = "redis"`.
    pub fn store(
        &self,
        #[cfg(feature = "redis")] redis: Option<rampart_core::redis::RedisPool>,
    ) -> Result<std::sync::Arc<dyn crate::backend::KeyStore>, AuthError> {
        let runtime: Option<std::sync::Arc<dyn crate::backend::KeyStore>> = match self.store {
            StoreKind::Memory => None,
            #[cfg(feature = "redis")]
            StoreKind::Redis => {
                let pool = redis.ok_or_else(|| {
                    AuthError::config("api_keys.store", "\"redis\" needs a Redis pool")
                })?;
                let store = crate::backend::redis::RedisKeyStore::new(pool, self.redis.clone())?;
                Some(std::sync::Arc::new(store))
            }
            #[cfg(not(feature = "redis"))]
            StoreKind::Redis => {
                return Err(AuthError::config(
                    "api_keys.store",
                    "built without the `redis` feature",
                ));
            }
        };
        Ok(std::sync::Arc::new(crate::backend::LayeredStore::new(
            self.static_keys.clone(),
            runtime,
        )))
    }

    /// The hasher: HMAC-SHA-256 with the pepper from `pepper_env`, or plain SHA-256.
    pub fn hasher(&self) -> Result<crate::KeyHasher, AuthError> {
        match &self.pepper_env {
            None => Ok(crate::KeyHasher::sha256()),
            Some(var) => {
                let pepper = std::env::var(var)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| AuthError::MissingEnv(var.clone()))?;
                crate::KeyHasher::with_pepper(pepper.as_bytes())
            }
        }
    }
}
