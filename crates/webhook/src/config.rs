//! Configuration of the verification and signing layers, as plain serde structs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which signature format a route speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemeKind {
    /// [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`,
    /// `webhook-timestamp` and `webhook-signature` headers; `v1` (HMAC-SHA256, `whsec_`
    /// secrets) and `v1a` (Ed25519, `whsk_`/`whpk_` keys) signatures in base64.
    #[default]
    Standard,
    /// One header `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, the hex HMAC-SHA256 of
    /// `"<t>.<body>"`, as Stripe and many others sign.
    Timestamped,
    /// GitHub's `X-Hub-Signature-256: sha256=<hex>` over the body alone; replays are keyed on
    /// `X-GitHub-Delivery`.
    Github,
}

impl SchemeKind {
    /// A short lowercase name, the `scheme` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Standard => "standard",
            Self::Timestamped => "timestamped",
            Self::Github => "github",
        }
    }
}

/// A secret or key as configured. Its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        Self::new(secret)
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

/// How a route verifies inbound webhooks.
///
/// ```toml
/// scheme = "standard"              # or "timestamped", "github"
/// secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
/// tolerance_past = "5m"
/// tolerance_future = "5m"
/// max_body_bytes = 1048576
/// body_timeout = "10s"
///
/// [replay]
/// enabled = true
/// on_store_error = "reject"        # or "accept"
/// ```
///
/// Secrets are read per scheme: for `standard`, `whsec_<base64>` (the prefix is optional) is
/// an HMAC secret and `whpk_<base64>` (or `whsk_<base64>`, whose public half is used) an
/// Ed25519 key; for `timestamped` and `github` the secret's UTF-8 bytes are the HMAC key, as
/// those senders use them. Several secrets are tried in turn, so a secret can be rotated
/// without downtime.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    /// The signature format.
    pub scheme: SchemeKind,
    /// The secrets or public keys a signature may match.
    pub secrets: Vec<SecretString>,
    /// `standard` only: the header prefix, `webhook` for `webhook-id` and friends. Senders
    /// that brand their headers (`svix-id`) need theirs here.
    pub header_prefix: String,
    /// `timestamped` only: the header carrying `t=...,v1=...`.
    pub signature_header: String,
    /// How old a signed timestamp may be.
    #[serde(with = "humantime_serde")]
    pub tolerance_past: Duration,
    /// How far in the future a signed timestamp may be (clock skew of the sender).
    #[serde(with = "humantime_serde")]
    pub tolerance_future: Duration,
    /// The largest body the layer buffers; longer bodies are answered 413.
    pub max_body_bytes: usize,
    /// How long the layer waits for the rest of a body that does not arrive at once; a body
    /// still incomplete then is answered 408, so a sender trickling bytes cannot hold a
    /// buffer open.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Replay protection.
    pub replay: ReplayConfig,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            scheme: SchemeKind::Standard,
            secrets: Vec::new(),
            header_prefix: "webhook".to_owned(),
            signature_header: "x-webhook-signature".to_owned(),
            tolerance_past: Duration::from_secs(300),
            tolerance_future: Duration::from_secs(300),
            max_body_bytes: 1024 * 1024,
            body_timeout: Duration::from_secs(10),
            replay: ReplayConfig::default(),
        }
    }
}

/// What to do when the replay store cannot be asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreErrorPolicy {
    /// Answer 503: the sender retries later. No replay can slip through.
    #[default]
    Reject,
    /// Pass the verified webhook on and log a warning: availability over replay protection.
    Accept,
}

/// Replay protection: each webhook id (or, for the `timestamped` scheme, each signature) is
/// accepted once while its timestamp is within the tolerance window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayConfig {
    /// Whether replays are rejected.
    pub enabled: bool,
    /// Keeps the ids of different senders apart in a shared store; the gateway uses the
    /// route name.
    pub namespace: String,
    /// How long an id is remembered when the scheme signs no timestamp (`github`). Defaults
    /// to `tolerance_past`.
    #[serde(with = "humantime_serde")]
    pub window: Option<Duration>,
    /// What to do when the store fails or is slow.
    pub on_store_error: StoreErrorPolicy,
    /// How long one store call may take before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub store_timeout: Duration,
    /// The most ids the in-memory store keeps; past it, new ids count as a store failure.
    pub max_entries: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: "default".to_owned(),
            window: None,
            on_store_error: StoreErrorPolicy::Reject,
            store_timeout: Duration::from_millis(250),
            max_entries: 1_000_000,
        }
    }
}

/// How outbound webhooks are signed.
///
/// Secrets follow the same rules as [`VerifyConfig::secrets`], except that a `standard`
/// scheme signs `v1a` with `whsk_` private keys (a `whpk_` public key cannot sign). Every
/// secret adds one signature, so during a rotation both the old and the new secret sign.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignConfig {
    /// The signature format.
    pub scheme: SchemeKind,
    /// The secrets that sign.
    pub secrets: Vec<SecretString>,
    /// `standard` only: the header prefix.
    pub header_prefix: String,
    /// `timestamped` only: the header that carries `t=...,v1=...`.
    pub signature_header: String,
    /// The largest body the signing layer buffers; longer bodies are answered 413.
    pub max_body_bytes: usize,
    /// How long the layer waits for the rest of a body that does not arrive at once (408
    /// past it).
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
}

impl Default for SignConfig {
    fn default() -> Self {
        let verify = VerifyConfig::default();
        Self {
            scheme: SchemeKind::Standard,
            secrets: Vec::new(),
            header_prefix: verify.header_prefix,
            signature_header: verify.signature_header,
            max_body_bytes: verify.max_body_bytes,
            body_timeout: verify.body_timeout,
        }
    }
}
