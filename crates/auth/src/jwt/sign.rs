//! Minting tokens for development and tests (`gateway token`).

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::key::Algorithm;
use crate::AuthError;

/// The key `gateway token` signs with.
///
/// ```toml
/// algorithm = "HS256"
/// kid = "dev-1"
/// secret_env = "RAMPART_JWT_SECRET"
/// issuer = "dev"
/// audience = "orders-api"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// The signature algorithm.
    pub algorithm: Algorithm,
    /// The `kid` header to set.
    #[serde(default)]
    pub kid: Option<String>,
    /// An environment variable holding the HMAC secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// A file holding the HMAC secret.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// A PKCS#8 PEM private key file (RSA, EC or Ed25519).
    #[serde(default)]
    pub private_pem_file: Option<PathBuf>,
    /// The `iss` claim to set.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The `aud` claim to set.
    #[serde(default)]
    pub audience: Option<String>,
}

/// Signs tokens with one configured key.
pub struct TokenSigner {
    config: SigningConfig,
    key: EncodingKey,
    algorithm: jsonwebtoken::Algorithm,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("algorithm", &self.config.algorithm)
            .field("kid", &self.config.kid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Loads the key.
    pub fn new(config: SigningConfig) -> Result<Self, AuthError> {
        let algorithm =
            jsonwebtoken::Algorithm::from_str_opt(config.algorithm).ok_or_else(|| {
                AuthError::Sign(format!("minting {} is not supported", config.algorithm))
            })?;
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|source| AuthError::Read {
                path: path.clone(),
                source,
            })
        };
        let key = if let Some(var) = &config.secret_env {
            let secret = std::env::var(var)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| AuthError::MissingEnv(var.clone()))?;
            EncodingKey::from_secret(secret.as_bytes())
        } else if let Some(path) = &config.secret_file {
            let mut secret = read(path)?;
            while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                secret.pop();
            }
            EncodingKey::from_secret(&secret)
        } else if let Some(path) = &config.private_pem_file {
            let pem = read(path)?;
            match config.algorithm {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
                Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
                _ => EncodingKey::from_rsa_pem(&pem),
            }
        } else {
            return Err(AuthError::config(
                "jwt.signing",
                "set one of secret_env, secret_file, private_pem_file",
            ));
        }
        .map_err(|e| AuthError::Sign(e.to_string()))?;
        Ok(Self {
            config,
            key,
            algorithm,
        })
    }

    /// A token for `subject` with `roles` and `scopes`, valid for `ttl` from `now` (seconds
    /// since the Unix epoch).
    pub fn mint(
        &self,
        subject: &str,
        roles: &[String],
        scopes: &[String],
        ttl: Duration,
        now: u64,
    ) -> Result<String, AuthError> {
        let mut header = Header::new(self.algorithm);
        header.kid.clone_from(&self.config.kid);
        let mut claims = json!({
            "sub": subject,
            "iat": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "roles": roles,
            "scope": scopes.join(" "),
        });
        if let Some(map) = claims.as_object_mut() {
            if let Some(iss) = &self.config.issuer {
                map.insert("iss".to_owned(), Value::String(iss.clone()));
            }
            if let Some(aud) = &self.config.audience {
                map.insert("aud".to_owned(), Value::String(aud.clone()));
            }
        }
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Sign(e.to_string()))
    }
}

trait FromOurs: Sized {
    fn from_str_opt(alg: Algorithm) -> Option<Self>;
}

impl FromOurs for jsonwebtoken::Algorithm {
    fn from_str_opt(alg: Algorithm) -> Option<Self> {
        // Limitation: jsonwebtoken cannot sign ES512, so neither can the minting helper.
        alg.as_str().parse().ok()
    }
}
