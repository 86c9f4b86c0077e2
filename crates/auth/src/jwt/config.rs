//! JWT validation settings and where each issuer's keys come from.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::jwks::JwksUrlConfig;
use super::key::Algorithm;
use crate::AuthError;

/// How bearer tokens are validated.
///
/// ```toml
/// leeway = "30s"            # clock skew allowed on exp, nbf and iat; 0s when left out
/// max_lifetime = "24h"      # refuse tokens valid for longer than this
/// roles_claim = "roles"
/// scope_claims = ["scope", "scp"]
/// required_claims = ["jti"]
///
/// [[issuers]]
/// issuer = "https://idp.example.com/"
/// audiences = ["orders-api"]
/// keys = [{ jwks_url = { url = "https://idp.example.com/.well-known/jwks.json", algorithms = ["RS256"] } }]
///
/// [[issuers]]
/// issuer = "dev"
/// keys = [{ kid = "dev-1", algorithm = "HS256", secret_env = "RAMPART_JWT_SECRET" }]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// The longest validity a token may carry (`exp` minus `iat`, or minus now without `iat`).
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Option<Duration>,
    /// The claim holding roles: an array of strings or a space-separated string.
    pub roles_claim: String,
    /// The claims holding scopes, each an array or a space-separated string; all are merged.
    pub scope_claims: Vec<String>,
    /// Claims that must be present besides `exp` and `sub`, which always are.
    pub required_claims: Vec<String>,
    /// The longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// Trusted issuers, each with its own keys.
    pub issuers: Vec<IssuerConfig>,
    /// The key `gateway token` mints development tokens with; verification never uses it.
    pub signing: Option<super::SigningConfig>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            leeway: Duration::ZERO,
            max_lifetime: None,
            roles_claim: "roles".to_owned(),
            scope_claims: vec!["scope".to_owned(), "scp".to_owned()],
            required_claims: Vec::new(),
            max_token_bytes: 8192,
            issuers: Vec::new(),
            signing: None,
        }
    }
}

/// One trusted issuer: tokens whose `iss` equals `issuer` are checked against these keys
/// only, so one issuer's key can never vouch for another issuer's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// The exact `iss` value. Left out, the entry takes tokens without `iss` or whose `iss`
    /// no other entry names.
    pub issuer: Option<String>,
    /// Accepted audiences; when set, a token without a matching `aud` is refused.
    pub audiences: Vec<String>,
    /// The issuer's keys.
    pub keys: Vec<KeyConfig>,
}

/// One key source. Set exactly one of `secret_env`, `secret_file`, `pem_file`, `jwks_file`,
/// `jwks_url`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeyConfig {
    /// The key id tokens name in their `kid` header (not used for JWKS, whose keys carry
    /// their own).
    pub kid: Option<String>,
    /// The algorithm of a secret or PEM key.
    pub algorithm: Option<Algorithm>,
    /// The algorithms a JWKS file's keys may use.
    pub algorithms: Vec<Algorithm>,
    /// An environment variable holding an HMAC secret.
    pub secret_env: Option<String>,
    /// A file holding an HMAC secret (trailing newline ignored).
    pub secret_file: Option<PathBuf>,
    /// A PEM public key file.
    pub pem_file: Option<PathBuf>,
    /// A JWKS file.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, refreshed in the background.
    pub jwks_url: Option<JwksUrlConfig>,
}

impl JwtConfig {
    /// The settings that hold whatever the issuers are: the token size bound and the number
    /// of required claims (tracked in a 64-bit mask).
    pub(crate) fn validate_limits(&self) -> Result<(), AuthError> {
        if self.max_token_bytes < 64 {
            return Err(AuthError::config(
                "jwt.max_token_bytes",
                "must be at least 64",
            ));
        }
        if self.required_claims.len() > 63 {
            return Err(AuthError::config(
                "jwt.required_claims",
                "at most 63 claims",
            ));
        }
        Ok(())
    }

    /// Checks the settings that need no file or network access.
    pub fn validate(&self) -> Result<(), AuthError> {
        if self.issuers.is_empty() {
            return Err(AuthError::config(
                "jwt.issuers",
                "configure at least one issuer",
            ));
        }
        self.validate_limits()?;
        let unnamed = self.issuers.iter().filter(|i| i.issuer.is_none()).count();
        if unnamed > 1 {
            return Err(AuthError::config(
                "jwt.issuers",
                "at most one issuer may leave out `issuer`",
            ));
        }
        for issuer in &self.issuers {
            if issuer.keys.is_empty() {
                return Err(AuthError::config(
                    "jwt.issuers.keys",
                    "every issuer needs a key",
                ));
            }
            for key in &issuer.keys {
                key.validate()?;
            }
        }
        Ok(())
    }
}

impl KeyConfig {
    fn validate(&self) -> Result<(), AuthError> {
        let sources = [
            self.secret_env.is_some(),
            self.secret_file.is_some(),
            self.pem_file.is_some(),
            self.jwks_file.is_some(),
            self.jwks_url.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            return Err(AuthError::config(
                "jwt.issuers.keys",
                "set exactly one of secret_env, secret_file, pem_file, jwks_file, jwks_url",
            ));
        }
        let single =
            self.secret_env.is_some() || self.secret_file.is_some() || self.pem_file.is_some();
        if single && self.algorithm.is_none() {
            return Err(AuthError::config(
                "jwt.issuers.keys.algorithm",
                "a secret or PEM key needs its algorithm",
            ));
        }
        if self.jwks_file.is_some() && self.algorithms.is_empty() {
            return Err(AuthError::config(
                "jwt.issuers.keys.algorithms",
                "a JWKS file needs its allowed algorithms",
            ));
        }
        Ok(())
    }
}
