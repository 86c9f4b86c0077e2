//! Checking a webhook's signature: the pure part, with no I/O and no replay store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, VerifyingKey};
use http::{HeaderMap, HeaderName};
use subtle::{Choice, ConstantTimeEq};

use crate::config::{SchemeKind, VerifyConfig};
use crate::error::WebhookError;
use crate::key::{self, HmacKey, VerifyKey};
use crate::scheme::{MAX_ID_LEN, Scheme};

/// The most signatures one header may list. Senders list one per active secret, so a
/// handful is plenty; the cap bounds the work a hostile header can cause.
const MAX_SIGNATURES: usize = 16;

/// HMAC tags kept inline in [`Candidates`]; senders list one per active secret, so more than
/// two is rare and goes to the heap.
const INLINE_MACS: usize = 2;

/// Checks webhook signatures against a route's secrets.
///
/// This is the layer's decision without the layer: use it directly when the body is already
/// in hand (a handler, a queue consumer, the gateway's `webhook verify` command). It does not
/// remember ids; replay protection lives in [`crate::VerifyWebhookLayer`].
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::HeaderMap;
/// use rampart_webhook::{Verifier, VerifyConfig};
///
/// let config = VerifyConfig {
///     secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
///     ..VerifyConfig::default()
/// };
/// let verifier = Verifier::new(&config)?;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".parse()?);
/// headers.insert("webhook-timestamp", "1614265330".parse()?);
/// headers.insert("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".parse()?);
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_614_265_330);
/// let verified = verifier.verify(&headers, br#"{"test": 2432232314}"#, now)?;
/// assert_eq!(verified.id.as_deref(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Verifier {
    scheme: Scheme,
    hmac: Vec<HmacKey>,
    ed25519: Vec<VerifyingKey>,
    tolerance_past: u64,
    tolerance_future: u64,
    require_id: bool,
}

/// What a verified webhook carried, inserted into the request's extensions for the inner
/// service (the id makes a good idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedWebhook {
    /// The scheme that verified it.
    pub scheme: SchemeKind,
    /// `webhook-id` (standard) or `X-GitHub-Delivery` (github); `None` for timestamped.
    pub id: Option<String>,
    /// The signed timestamp, seconds since the Unix epoch; `None` for github.
    pub timestamp: Option<u64>,
    /// The replay key of schemes that sign no id (timestamped, github); standard uses `id`.
    pub(crate) replay_key: Option<String>,
}

impl VerifiedWebhook {
    /// What identifies this delivery for replay protection.
    pub(crate) fn replay_key(&self) -> Option<&str> {
        self.replay_key.as_deref().or(self.id.as_deref())
    }
}

/// The headers of a webhook, read and checked, waiting for the body.
#[derive(Debug)]
pub(crate) struct Pending {
    id: Option<String>,
    timestamp: Option<Stamp>,
    candidates: Candidates,
}

/// The signatures a header offers. The usual one or two HMAC tags stay inline, so a request
/// costs no allocation for them.
#[derive(Debug, Default)]
struct Candidates {
    inline: [[u8; 32]; INLINE_MACS],
    inline_len: usize,
    more_macs: Vec<[u8; 32]>,
    ed25519: Vec<Signature>,
}

impl Candidates {
    fn push_mac(&mut self, mac: [u8; 32]) {
        if self.inline_len < INLINE_MACS {
            self.inline[self.inline_len] = mac;
            self.inline_len += 1;
        } else {
            self.more_macs.push(mac);
        }
    }

    fn macs(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.inline[..self.inline_len].iter().chain(&self.more_macs)
    }

    fn is_empty(&self) -> bool {
        self.inline_len == 0 && self.ed25519.is_empty()
    }
}

impl Verifier {
    /// Checks the configuration and parses the secrets.
    pub fn new(config: &VerifyConfig) -> Result<Self, WebhookError> {
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

        let mut hmac = Vec::new();
        let mut ed25519 = Vec::new();
        for (i, secret) in config.secrets.iter().enumerate() {
            match key::verify_key(config.scheme, &format!("secrets[{i}]"), secret)? {
                VerifyKey::Hmac(key) => hmac.push(key),
                VerifyKey::Ed25519(key) => ed25519.push(key),
            }
        }

        Ok(Self {
            scheme,
            hmac,
            ed25519,
            tolerance_past: whole_seconds("tolerance_past", config.tolerance_past)?,
            tolerance_future: whole_seconds("tolerance_future", config.tolerance_future)?,
            // The Standard scheme signs the id, so it is required whatever replay does; the
            // others need it only as the replay key.
            require_id: config.replay.enabled || config.scheme == SchemeKind::Standard,
        })
    }

    /// The scheme this verifier speaks.
    pub fn scheme(&self) -> SchemeKind {
        self.scheme.kind
    }

    /// Verifies a complete webhook at time `now`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedWebhook, WebhookError> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let pending = self.check_headers(headers, now)?;
        self.check_body(pending, body)
    }

    /// Everything that can be checked before the body arrives: presence and syntax of the
    /// headers, and the timestamp.
    pub(crate) fn check_headers(
        &self,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Pending, WebhookError> {
        let id = match &self.scheme.id {
            Some(name) => read_id(headers, name, self.require_id)?,
            None => None,
        };
        let signature = required(headers, &self.scheme.signature)?;

        let (timestamp, candidates) = match self.scheme.kind {
            SchemeKind::Standard => {
                let name = self
                    .scheme
                    .timestamp
                    .as_ref()
                    .unwrap_or(&self.scheme.signature);
                let text = required(headers, name)?;
                let stamp = Stamp::parse(text)
                    .ok_or_else(|| WebhookError::malformed(name, "expected unix seconds"))?;
                let candidates = standard_candidates(&self.scheme.signature, signature)?;
                (Some(stamp), candidates)
            }
            SchemeKind::Timestamped => {
                let (stamp, candidates) =
                    timestamped_candidates(&self.scheme.signature, signature)?;
                (Some(stamp), candidates)
            }
            SchemeKind::Github => (None, github_candidate(&self.scheme.signature, signature)?),
        };

        if let Some(stamp) = &timestamp {
            self.check_window(stamp.seconds, now)?;
        }
        Ok(Pending {
            id,
            timestamp,
            candidates,
        })
    }

    fn check_window(&self, timestamp: u64, now: u64) -> Result<(), WebhookError> {
        let too_old = now.saturating_sub(timestamp) > self.tolerance_past;
        let too_new = timestamp.saturating_sub(now) > self.tolerance_future;
        if too_old || too_new {
            let skew_secs =
                i64::try_from(i128::from(timestamp) - i128::from(now)).unwrap_or(i64::MIN);
            return Err(WebhookError::Expired { skew_secs });
        }
        Ok(())
    }

    /// Computes the expected signatures over the body and compares them with the candidates.
    pub(crate) fn check_body(
        &self,
        pending: Pending,
        body: &[u8],
    ) -> Result<VerifiedWebhook, WebhookError> {
        let Pending {
            id,
            timestamp,
            candidates,
        } = pending;
        // Each secret's MAC is compared with every v1 candidate; the first secret's MAC is
        // kept as the timestamped scheme's replay key.
        let mut matched = false;
        let mut first_mac = None;
        for key in &self.hmac {
            let mac = match (&self.scheme.kind, &id, &timestamp) {
                (SchemeKind::Standard, Some(id), Some(ts)) => {
                    key.mac(&[id.as_bytes(), b".", ts.text(), b".", body])
                }
                (SchemeKind::Timestamped, _, Some(ts)) => key.mac(&[ts.text(), b".", body]),
                _ => key.mac(&[body]),
            };
            for given in candidates.macs() {
                matched |= bool::from(tags_equal(&mac, given));
            }
            first_mac.get_or_insert(mac);
        }

        if !matched && !candidates.ed25519.is_empty() && !self.ed25519.is_empty() {
            let message = standard_message(id.as_deref(), timestamp.as_ref(), body);
            matched = candidates.ed25519.iter().any(|signature| {
                self.ed25519
                    .iter()
                    .any(|key| key.verify_strict(&message, signature).is_ok())
            });
        }
        if !matched {
            return Err(WebhookError::Mismatch);
        }

        // Neither the timestamped scheme nor GitHub signs an id (GitHub's delivery header can
        // be rewritten at will), so the signature itself identifies the delivery. Ours,
        // computed with the first secret, is used rather than the one in the header, so
        // dropping or reordering entries of the header cannot make a new key.
        let replay_key = match self.scheme.kind {
            SchemeKind::Timestamped | SchemeKind::Github => {
                first_mac.map(|mac| key::hex(&mac[..16]))
            }
            SchemeKind::Standard => None,
        };
        Ok(VerifiedWebhook {
            scheme: self.scheme.kind,
            id,
            timestamp: timestamp.map(|stamp| stamp.seconds),
            replay_key,
        })
    }
}

/// Constant-time equality of two tags, compared a word at a time rather than a byte at a
/// time: the same guarantee with a quarter of the optimisation barriers.
fn tags_equal(computed: &[u8; 32], given: &[u8; 32]) -> Choice {
    let (computed, _) = computed.as_chunks::<8>();
    let (given, _) = given.as_chunks::<8>();
    computed
        .iter()
        .zip(given)
        .fold(Choice::from(1), |equal, (a, b)| {
            equal & u64::from_ne_bytes(*a).ct_eq(&u64::from_ne_bytes(*b))
        })
}

fn whole_seconds(field: &str, duration: Duration) -> Result<u64, WebhookError> {
    if duration.subsec_nanos() != 0 {
        return Err(WebhookError::config(
            field,
            "timestamps are whole seconds; so is this",
        ));
    }
    Ok(duration.as_secs())
}

fn standard_message(id: Option<&str>, timestamp: Option<&Stamp>, body: &[u8]) -> Vec<u8> {
    let id = id.unwrap_or_default().as_bytes();
    let ts = timestamp.map(Stamp::text).unwrap_or_default();
    let mut message = Vec::with_capacity(id.len() + ts.len() + body.len() + 2);
    message.extend_from_slice(id);
    message.push(b'.');
    message.extend_from_slice(ts);
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

fn required<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<&'h str, WebhookError> {
    optional(headers, name)?.ok_or_else(|| WebhookError::MissingHeader(name.clone()))
}

/// A header sent at most once, as trimmed text; one map lookup.
fn optional<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, WebhookError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(WebhookError::malformed(name, "sent more than once"));
    }
    // Visible ASCII leaves only spaces and tabs to trim, so the ASCII trim is the whole trim.
    value
        .to_str()
        .map(str::trim_ascii)
        .map(Some)
        .map_err(|_| WebhookError::malformed(name, "not visible ASCII"))
}

fn read_id(
    headers: &HeaderMap,
    name: &HeaderName,
    required_here: bool,
) -> Result<Option<String>, WebhookError> {
    let id = if required_here {
        required(headers, name)?
    } else {
        match optional(headers, name)? {
            Some(id) => id,
            None => return Ok(None),
        }
    };
    if id.is_empty() {
        return Err(WebhookError::malformed(name, "empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(WebhookError::malformed(name, "longer than 256 bytes"));
    }
    Ok(Some(id.to_owned()))
}

/// A signed timestamp: its value and its text as sent, which is what was signed (leading
/// zeros included). Kept inline: no allocation per request.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    seconds: u64,
    text: [u8; 12],
    len: usize,
}

impl Stamp {
    /// Unix seconds as ASCII digits, nothing else; 12 digits reach past the year 30000.
    fn parse(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.is_empty() || digits.len() > 12 {
            return None;
        }
        // Twelve digits stay far below `u64::MAX`, so the sum cannot overflow.
        let mut seconds = 0u64;
        for digit in digits {
            if !digit.is_ascii_digit() {
                return None;
            }
            seconds = seconds * 10 + u64::from(digit - b'0');
        }
        let mut stamp = Self {
            seconds,
            text: [0; 12],
            len: digits.len(),
        };
        stamp.text[..digits.len()].copy_from_slice(digits);
        Some(stamp)
    }

    fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

/// `v1,<base64> v1a,<base64> ...`: unknown versions are skipped, unreadable entries too,
/// but a header with nothing readable at all is malformed.
fn standard_candidates(name: &HeaderName, value: &str) -> Result<Candidates, WebhookError> {
    let mut candidates = Candidates::default();
    let mut unreadable = false;
    let mut seen = 0;
    for entry in value.split(' ').filter(|entry| !entry.is_empty()) {
        seen += 1;
        if seen > MAX_SIGNATURES {
            return Err(WebhookError::malformed(name, "more than 16 signatures"));
        }
        let Some((version, encoded)) = entry.split_once(',') else {
            unreadable = true;
            continue;
        };
        match version {
            "v1" => match decode_base64::<32>(encoded) {
                Some(mac) => candidates.push_mac(mac),
                None => unreadable = true,
            },
            "v1a" => match decode_base64::<64>(encoded) {
                Some(bytes) => candidates.ed25519.push(Signature::from_bytes(&bytes)),
                None => unreadable = true,
            },
            _ => {}
        }
    }
    if candidates.is_empty() && (unreadable || seen == 0) {
        return Err(WebhookError::malformed(
            name,
            "no readable v1 or v1a signature",
        ));
    }
    Ok(candidates)
}

fn decode_base64<const N: usize>(encoded: &str) -> Option<[u8; N]> {
    // Room for the decoder's length estimate, which rounds up to whole 3-byte groups.
    let mut buffer = [0u8; 72];
    let written = BASE64.decode_slice(encoded, &mut buffer).ok()?;
    if written != N {
        return None;
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&buffer[..N]);
    Some(out)
}

/// `t=<seconds>,v1=<hex>[,v1=<hex>...]`; other keys (`v0`, a scheme's extensions) are
/// skipped.
fn timestamped_candidates(
    name: &HeaderName,
    value: &str,
) -> Result<(Stamp, Candidates), WebhookError> {
    let mut timestamp = None;
    let mut candidates = Candidates::default();
    let mut seen = 0;
    for item in value.split(',').map(str::trim) {
        let Some((key, val)) = item.split_once('=') else {
            return Err(WebhookError::malformed(name, "expected key=value pairs"));
        };
        match key {
            "t" if timestamp.is_some() => {
                return Err(WebhookError::malformed(name, "t= given more than once"));
            }
            "t" => {
                let stamp = Stamp::parse(val)
                    .ok_or_else(|| WebhookError::malformed(name, "t= is not unix seconds"))?;
                timestamp = Some(stamp);
            }
            "v1" => {
                seen += 1;
                if seen > MAX_SIGNATURES {
                    return Err(WebhookError::malformed(name, "more than 16 signatures"));
                }
                if let Some(mac) = key::unhex32(val) {
                    candidates.push_mac(mac);
                }
            }
            _ => {}
        }
    }
    let stamp = timestamp.ok_or_else(|| WebhookError::malformed(name, "no t= timestamp"))?;
    if candidates.is_empty() {
        return Err(WebhookError::malformed(name, "no readable v1= signature"));
    }
    Ok((stamp, candidates))
}

fn github_candidate(name: &HeaderName, value: &str) -> Result<Candidates, WebhookError> {
    let hex = value
        .strip_prefix("sha256=")
        .ok_or_else(|| WebhookError::malformed(name, "expected sha256=<hex>"))?;
    let mac = key::unhex32(hex)
        .ok_or_else(|| WebhookError::malformed(name, "expected 64 hex digits after sha256="))?;
    let mut candidates = Candidates::default();
    candidates.push_mac(mac);
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier::new(&VerifyConfig {
            secrets: vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
            ..VerifyConfig::default()
        })
        .unwrap()
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1700000000".parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers
    }

    #[test]
    fn a_match_past_the_inline_tags_is_found() {
        let verifier = verifier();
        let body = b"payload";
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let good = verifier.hmac[0].mac(&[b"msg_1.1700000000.", body]);
        let wrong = BASE64.encode([7u8; 32]);

        // Five entries: the matching one is the last, past the inline ones.
        let listed = format!(
            "v1,{wrong} v1,{wrong} v1,{wrong} v1,{wrong} v1,{}",
            BASE64.encode(good)
        );
        assert!(verifier.verify(&headers(&listed), body, now).is_ok());

        // The same list without it is a mismatch.
        let listed = format!("v1,{wrong} v1,{wrong} v1,{wrong} v1,{wrong}");
        assert!(matches!(
            verifier.verify(&headers(&listed), body, now),
            Err(WebhookError::Mismatch)
        ));
    }

    #[test]
    fn tags_differing_in_any_byte_are_unequal() {
        let tag: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert!(bool::from(tags_equal(&tag, &tag)));
        for i in 0..32 {
            let mut other = tag;
            other[i] ^= 0x80;
            assert!(!bool::from(tags_equal(&tag, &other)), "byte {i}");
        }
    }
}
