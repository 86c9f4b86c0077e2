//! Bearer token verification.
//!
//! Signatures are checked with keys parsed once at start-up (see [`VerifyKey`]); the token's
//! header only selects among the keys configured for its issuer and may never pick the
//! algorithm: `alg: none` is unknown here, and a token whose `alg` differs from its key's (an
//! HS256 token presented against an RSA key, say) is refused. Claims are deserialized once.

mod claims;
mod config;
pub mod jwks;
mod key;
mod sign;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claims::{ClaimNames, Claims};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rampart_core::{CredentialKind, Identity};
use serde::Deserialize;
use serde::de::DeserializeSeed;
use serde_json::Value;

pub use config::{IssuerConfig, JwtConfig, KeyConfig};
pub use jwks::{JwksFetcher, JwksResponse, JwksUrlConfig, RemoteJwks};
pub use key::{Algorithm, VerifyKey};
pub use sign::{SigningConfig, TokenSigner};

use crate::AuthError;

/// Where a verifier reads the current time, in seconds since the Unix epoch.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> u64 + Send + Sync>);

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self(Arc::new(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        }))
    }

    /// A clock of your own (tests pin time with it).
    pub fn from_fn(now: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    fn now(&self) -> u64 {
        (self.0)()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Clock")
    }
}

/// Why a token was refused. For logs and metrics only: clients are told no more than
/// "invalid" or "expired".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtRejection {
    /// Not three base64url parts of JSON, or longer than allowed.
    Malformed,
    /// `alg` is `none`, unknown, or not the algorithm of any candidate key.
    Algorithm,
    /// The header carries `crit` extensions this verifier does not implement.
    Critical,
    /// No configured issuer takes this `iss`.
    Issuer,
    /// No key of the issuer matches the token's `kid` and `alg`.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `nbf` is still ahead (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// The token is valid for longer than `max_lifetime`.
    TooLongLived,
    /// `aud` is missing or names none of the configured audiences.
    Audience,
    /// A required claim is missing or has the wrong type.
    Claims,
}

impl JwtRejection {
    /// A short phrase for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed token",
            Self::Algorithm => "algorithm not allowed",
            Self::Critical => "unsupported critical header",
            Self::Issuer => "unknown issuer",
            Self::UnknownKey => "unknown key",
            Self::Signature => "bad signature",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::IssuedInFuture => "token issued in the future",
            Self::TooLongLived => "token lifetime too long",
            Self::Audience => "audience mismatch",
            Self::Claims => "missing or invalid claim",
        }
    }
}

/// A trusted issuer and its keys.
#[derive(Debug, Default)]
pub struct Issuer {
    name: Option<String>,
    audiences: Vec<String>,
    keys: Vec<Arc<VerifyKey>>,
    remote: Vec<Arc<RemoteJwks>>,
}

impl Issuer {
    /// An issuer matched by exact `iss`; `None` takes tokens no named issuer claims.
    pub fn new(name: Option<String>) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Requires `aud` to name one of `audiences`.
    #[must_use]
    pub fn with_audiences(
        mut self,
        audiences: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a key.
    #[must_use]
    pub fn with_key(mut self, key: VerifyKey) -> Self {
        self.keys.push(Arc::new(key));
        self
    }

    /// Adds a remote JWKS.
    #[must_use]
    pub fn with_jwks(mut self, remote: Arc<RemoteJwks>) -> Self {
        self.remote.push(remote);
        self
    }

    /// The keys a token with `kid` and `alg` may be signed with: the one named by `kid`, or
    /// without a `kid` every key of that algorithm (during a rotation there may be two).
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<Vec<Arc<VerifyKey>>, JwtRejection> {
        let mut kid_seen = false;
        let mut found = Vec::new();
        let remote_sets: Vec<_> = self.remote.iter().map(|r| r.keys()).collect();
        let all = self
            .keys
            .iter()
            .chain(remote_sets.iter().flat_map(|set| set.iter()));
        for key in all {
            if kid.is_some() && key.kid() != kid {
                continue;
            }
            kid_seen = true;
            if key.algorithm() == alg {
                found.push(key.clone());
            }
        }
        if !found.is_empty() {
            return Ok(found);
        }
        Err(if kid_seen {
            JwtRejection::Algorithm
        } else {
            JwtRejection::UnknownKey
        })
    }
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    crit: Option<Value>,
}

/// Verifies bearer tokens against the configured issuers.
#[derive(Debug)]
pub struct JwtVerifier {
    leeway: u64,
    max_lifetime: Option<u64>,
    roles_claim: String,
    scope_claims: Vec<String>,
    required_claims: Vec<String>,
    max_token_bytes: usize,
    issuers: Vec<Issuer>,
    clock: Clock,
}

impl JwtVerifier {
    /// A verifier with `config`'s validation settings and the given issuers (the issuers
    /// listed in `config` are ignored; use [`Self::from_config`] to load them).
    pub fn new(config: &JwtConfig, issuers: Vec<Issuer>) -> Result<Self, AuthError> {
        config.validate_limits()?;
        if issuers.is_empty() {
            return Err(AuthError::config(
                "jwt.issuers",
                "configure at least one issuer",
            ));
        }
        Ok(Self {
            leeway: config.leeway.as_secs(),
            max_lifetime: config.max_lifetime.map(|d| d.as_secs()),
            roles_claim: config.roles_claim.clone(),
            scope_claims: config.scope_claims.clone(),
            required_claims: config.required_claims.clone(),
            max_token_bytes: config.max_token_bytes,
            issuers,
            clock: Clock::system(),
        })
    }

    /// Loads every issuer's keys (reading files and environment variables, fetching JWKS
    /// URLs with `fetcher`) and builds the verifier. Fails when any key cannot be had.
    pub async fn from_config(
        config: &JwtConfig,
        fetcher: Arc<dyn JwksFetcher>,
    ) -> Result<Self, AuthError> {
        config.validate()?;
        let mut issuers = Vec::with_capacity(config.issuers.len());
        for issuer_config in &config.issuers {
            let mut issuer = Issuer::new(issuer_config.issuer.clone())
                .with_audiences(issuer_config.audiences.iter().cloned());
            for key in &issuer_config.keys {
                load_key(&mut issuer, key, fetcher.clone()).await?;
            }
            issuers.push(issuer);
        }
        Self::new(config, issuers)
    }

    /// Replaces the clock (tests pin time with it).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn issuer_for(&self, iss: Option<&str>) -> Option<&Issuer> {
        if let Some(iss) = iss
            && let Some(found) = self.issuers.iter().find(|i| i.name.as_deref() == Some(iss))
        {
            return Some(found);
        }
        self.issuers.iter().find(|i| i.name.is_none())
    }

    /// Verifies `token` and returns the caller's identity.
    pub async fn verify(&self, token: &str) -> Result<Identity, JwtRejection> {
        if token.len() > self.max_token_bytes {
            return Err(JwtRejection::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtRejection::Malformed);
        };

        let header_json = URL_SAFE_NO_PAD
            .decode(header_b64)
            .map_err(|_| JwtRejection::Malformed)?;
        let header: Header<'_> =
            serde_json::from_slice(&header_json).map_err(|_| JwtRejection::Malformed)?;
        if header.crit.is_some() {
            return Err(JwtRejection::Critical);
        }
        let alg = Algorithm::from_name(&header.alg).ok_or(JwtRejection::Algorithm)?;
        let kid = header.kid.as_deref();

        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| JwtRejection::Malformed)?;
        let names = ClaimNames {
            roles: &self.roles_claim,
            scopes: &self.scope_claims,
            required: &self.required_claims,
        };
        let claims = names
            .deserialize(&mut serde_json::Deserializer::from_slice(&payload))
            .map_err(|_| JwtRejection::Claims)?;
        let issuer = self
            .issuer_for(claims.iss.as_deref())
            .ok_or(JwtRejection::Issuer)?;

        let keys = match issuer.find(kid, alg) {
            Ok(keys) => keys,
            Err(JwtRejection::UnknownKey) if !issuer.remote.is_empty() && kid.is_some() => {
                for remote in &issuer.remote {
                    remote.refresh_for_unknown_kid().await;
                }
                issuer.find(kid, alg)?
            }
            Err(other) => return Err(other),
        };

        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtRejection::Malformed)?;
        let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
        if !keys.iter().any(|key| key.verify(signed, &signature)) {
            return Err(JwtRejection::Signature);
        }

        self.validate_claims(&claims, issuer)?;
        Ok(identity(claims))
    }

    fn validate_claims(&self, claims: &Claims, issuer: &Issuer) -> Result<(), JwtRejection> {
        let now = self.clock.now();
        let exp = claims.exp.ok_or(JwtRejection::Claims)?;
        if now > exp.saturating_add(self.leeway) {
            return Err(JwtRejection::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(self.leeway) < nbf)
        {
            return Err(JwtRejection::NotYetValid);
        }
        if claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway))
        {
            return Err(JwtRejection::IssuedInFuture);
        }
        if let Some(max) = self.max_lifetime
            && exp.saturating_sub(claims.iat.unwrap_or(now)) > max
        {
            return Err(JwtRejection::TooLongLived);
        }

        if claims.sub.is_none() {
            return Err(JwtRejection::Claims);
        }
        if !issuer.audiences.is_empty() {
            let matched = claims
                .aud
                .iter()
                .flatten()
                .any(|aud| issuer.audiences.iter().any(|a| a == aud));
            if !matched {
                return Err(JwtRejection::Audience);
            }
        }
        let all_required = (1u64 << self.required_claims.len()) - 1;
        if claims.required_seen & all_required != all_required {
            return Err(JwtRejection::Claims);
        }
        Ok(())
    }
}

fn identity(claims: Claims) -> Identity {
    let mut identity = Identity::new(claims.sub.unwrap_or_default(), CredentialKind::Jwt);
    identity.roles = claims.roles;
    identity.scopes = claims.scopes;
    identity.credential_id = claims.jti;
    identity.expires_at = claims.exp.map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
    identity
}

async fn load_key(
    issuer: &mut Issuer,
    key: &KeyConfig,
    fetcher: Arc<dyn JwksFetcher>,
) -> Result<(), AuthError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| AuthError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let alg = key.algorithm;
    let need_alg = || alg.ok_or_else(|| AuthError::config("jwt.issuers.keys.algorithm", "missing"));
    if let Some(var) = &key.secret_env {
        let secret = std::env::var(var)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::MissingEnv(var.clone()))?;
        issuer.keys.push(Arc::new(VerifyKey::hmac(
            key.kid.clone(),
            need_alg()?,
            secret.as_bytes(),
        )?));
    } else if let Some(path) = &key.secret_file {
        let mut secret = read(path)?;
        while secret.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            secret.pop();
        }
        issuer.keys.push(Arc::new(VerifyKey::hmac(
            key.kid.clone(),
            need_alg()?,
            &secret,
        )?));
    } else if let Some(path) = &key.pem_file {
        issuer.keys.push(Arc::new(VerifyKey::from_pem(
            key.kid.clone(),
            need_alg()?,
            &read(path)?,
        )?));
    } else if let Some(path) = &key.jwks_file {
        let source = path.display().to_string();
        issuer
            .keys
            .extend(jwks::parse_jwks(&source, &read(path)?, &key.algorithms)?);
    } else if let Some(url) = &key.jwks_url {
        issuer
            .remote
            .push(RemoteJwks::start(url.clone(), fetcher).await?);
    }
    Ok(())
}
