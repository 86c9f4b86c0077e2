//! Signing outbound webhooks: the pure part, usable without the layer.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{SchemeKind, SignConfig};
use crate::error::WebhookError;
use crate::key::{self, SignKey};
use crate::scheme::{MAX_ID_LEN, Scheme};

/// Signs webhook bodies with a route's secrets.
///
/// Every configured secret adds a signature (`standard` and `timestamped` carry a list), so
/// while a secret rotates, receivers holding either the old or the new secret accept.
///
/// ```
/// use std::time::SystemTime;
/// use rampart_webhook::{SignConfig, Signer};
///
/// let signer = Signer::new(&SignConfig {
///     secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
///     ..SignConfig::default()
/// })?;
/// let signed = signer.sign(b"{\"type\":\"run.finished\"}", SystemTime::now());
/// let mut headers = http::HeaderMap::new();
/// signed.apply_to(&mut headers);
/// assert!(headers["webhook-signature"].to_str()?.starts_with("v1,"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Signer {
    scheme: Scheme,
    keys: Vec<SignKey>,
}

/// The headers that sign one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The webhook id sent (`webhook-id` or `X-GitHub-Delivery`); `None` for timestamped.
    pub id: Option<String>,
    /// The signed time, seconds since the Unix epoch.
    pub timestamp: u64,
}

impl SignedHeaders {
    /// The header pairs, in the order they are written.
    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers.iter().map(|(name, value)| (name, value))
    }

    /// Writes the headers, replacing any of the same names.
    pub fn apply_to(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
    }
}

impl Signer {
    /// Checks the configuration and parses the secrets.
    pub fn new(config: &SignConfig) -> Result<Self, WebhookError> {
        let scheme = Scheme::new(
            config.scheme,
            &config.header_prefix,
            &config.signature_header,
        )?;
        if config.secrets.is_empty() {
            return Err(WebhookError::config(
                "secrets",
                "at least one secret is needed",
            ));
        }
        if config.scheme == SchemeKind::Github && config.secrets.len() > 1 {
            return Err(WebhookError::config(
                "secrets",
                "GitHub's header carries one signature: configure one secret",
            ));
        }
        let keys = config
            .secrets
            .iter()
            .enumerate()
            .map(|(i, secret)| key::sign_key(config.scheme, &format!("secrets[{i}]"), secret))
            .collect::<Result<_, _>>()?;
        Ok(Self { scheme, keys })
    }

    /// The scheme this signer writes.
    pub fn scheme(&self) -> SchemeKind {
        self.scheme.kind
    }

    /// Signs `body` at time `now` under a fresh id (`msg_` and 32 hex digits).
    pub fn sign(&self, body: &[u8], now: SystemTime) -> SignedHeaders {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        // A fresh id is valid by construction, so this cannot fail.
        self.sign_with(&id, timestamp, body)
            .unwrap_or_else(|_| unreachable!("generated webhook ids are valid header values"))
    }

    /// Signs `body` with a given id and timestamp: for a retry, which keeps the id of the
    /// first attempt, and for reproducing a signature while debugging. The timestamped
    /// scheme has no id and ignores it.
    pub fn sign_with(
        &self,
        id: &str,
        timestamp: u64,
        body: &[u8],
    ) -> Result<SignedHeaders, WebhookError> {
        let ts = timestamp.to_string();
        let mut headers = Vec::with_capacity(3);
        let id_value = || -> Result<HeaderValue, WebhookError> {
            if id.is_empty() || id.len() > MAX_ID_LEN || id.contains('.') {
                return Err(WebhookError::config(
                    "id",
                    "a webhook id is 1 to 256 bytes without a '.'",
                ));
            }
            HeaderValue::from_str(id)
                .map_err(|_| WebhookError::config("id", "not a valid header value"))
        };

        let sent_id = match self.scheme.kind {
            SchemeKind::Standard => {
                let signatures: Vec<String> = self
                    .keys
                    .iter()
                    .map(|key| match key {
                        SignKey::Hmac(key) => {
                            let mac = key.mac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                            format!("v1,{}", BASE64.encode(mac))
                        }
                        SignKey::Ed25519(key) => {
                            let message = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
                            format!("v1a,{}", BASE64.encode(key.sign(&message).to_bytes()))
                        }
                    })
                    .collect();
                push(&mut headers, self.scheme.id.as_ref(), id_value()?);
                push(&mut headers, self.scheme.timestamp.as_ref(), value(&ts));
                headers.push((self.scheme.signature.clone(), value(&signatures.join(" "))));
                Some(id.to_owned())
            }
            SchemeKind::Timestamped => {
                let mut header = format!("t={ts}");
                for key in &self.keys {
                    if let SignKey::Hmac(key) = key {
                        header.push_str(",v1=");
                        header.push_str(&key::hex(&key.mac(&[ts.as_bytes(), b".", body])));
                    }
                }
                headers.push((self.scheme.signature.clone(), value(&header)));
                None
            }
            SchemeKind::Github => {
                for key in &self.keys {
                    if let SignKey::Hmac(key) = key {
                        let header = format!("sha256={}", key::hex(&key.mac(&[body])));
                        headers.push((self.scheme.signature.clone(), value(&header)));
                    }
                }
                push(&mut headers, self.scheme.id.as_ref(), id_value()?);
                Some(id.to_owned())
            }
        };

        Ok(SignedHeaders {
            headers,
            id: sent_id,
            timestamp,
        })
    }

    /// Signs a request whose body is in memory, writing the headers into it.
    pub fn sign_request<B: AsRef<[u8]>>(&self, request: &mut http::Request<B>, now: SystemTime) {
        let signed = self.sign(request.body().as_ref(), now);
        signed.apply_to(request.headers_mut());
    }
}

fn push(headers: &mut Vec<(HeaderName, HeaderValue)>, name: Option<&HeaderName>, v: HeaderValue) {
    if let Some(name) = name {
        headers.push((name.clone(), v));
    }
}

/// Digits, base64, hex, `t=`, `v1,`: always a valid header value.
fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| unreachable!("signature headers are built from visible ASCII"))
}
