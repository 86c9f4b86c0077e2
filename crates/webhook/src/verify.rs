//! Checking a webhook's signature: the pure part, with no I/O and no replay store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signature, VerifyingKey};
use http::{HeaderMap, HeaderName, HeaderValue};
use subtle::{Choice, ConstantTimeEq};

use crate::config::{SchemeKind, VerifyConfig};
use crate::error::WebhookError;
use crate::key::{self, VerifyKey};
use crate::mac::HmacKey;
use crate::scheme::{MAX_ID_LEN, Scheme, Sent};

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
/// assert_eq!(verified.id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
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
    scheme: SchemeKind,
    /// The id header's value, checked to be visible ASCII; kept as the header's shared bytes
    /// rather than copied into a `String` for every request.
    id: Option<HeaderValue>,
    timestamp: Option<u64>,
    /// The replay key of schemes that sign no id (timestamped, github); standard uses `id`.
    replay_key: Option<String>,
}

impl VerifiedWebhook {
    /// The scheme that verified it.
    pub fn scheme(&self) -> SchemeKind {
        self.scheme
    }

    /// `webhook-id` (standard) or `X-GitHub-Delivery` (github); `None` for timestamped, and
    /// for github when the header was not sent.
    pub fn id(&self) -> Option<&str> {
        self.id.as_ref().and_then(|id| id.to_str().ok())
    }

    /// The signed timestamp, seconds since the Unix epoch; `None` for github.
    pub fn timestamp(&self) -> Option<u64> {
        self.timestamp
    }

    /// What identifies this delivery for replay protection.
    pub(crate) fn replay_key(&self) -> Option<&str> {
        self.replay_key.as_deref().or_else(|| self.id())
    }
}

/// The headers of a webhook, read and checked, waiting for the body.
#[derive(Debug)]
pub(crate) struct Pending {
    id: Option<HeaderValue>,
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
    // Inlined, as is `check_body`, so that `verify` builds the checked headers in place
    // instead of moving them from one call to the next: a sixth of a 0-byte verification.
    #[inline]
    pub(crate) fn check_headers(
        &self,
        headers: &HeaderMap,
        now: u64,
    ) -> Result<Pending, WebhookError> {
        let found = self.scheme.find(headers);
        let id = match &self.scheme.id {
            Some(name) => read_id(found.id, name, self.require_id)?,
            None => None,
        };
        let signature = required(found.signature, &self.scheme.signature)?;

        let (timestamp, candidates) = match self.scheme.kind {
            SchemeKind::Standard => {
                let name = self
                    .scheme
                    .timestamp
                    .as_ref()
                    .unwrap_or(&self.scheme.signature);
                let text = required(found.timestamp, name)?;
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
    #[inline]
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
            let message = standard_message(id.as_ref(), timestamp.as_ref(), body);
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
/// time, with one optimisation barrier rather than one per byte.
fn tags_equal(computed: &[u8; 32], given: &[u8; 32]) -> Choice {
    let (computed, _) = computed.as_chunks::<8>();
    let (given, _) = given.as_chunks::<8>();
    // The differing bits of all four words, gathered without a branch, then one
    // constant-time test of the total.
    let difference = computed.iter().zip(given).fold(0u64, |difference, (a, b)| {
        difference | (u64::from_ne_bytes(*a) ^ u64::from_ne_bytes(*b))
    });
    difference.ct_eq(&0)
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

fn standard_message(id: Option<&HeaderValue>, timestamp: Option<&Stamp>, body: &[u8]) -> Vec<u8> {
    let id = id.map(HeaderValue::as_bytes).unwrap_or_default();
    let ts = timestamp.map(Stamp::text).unwrap_or_default();
    let mut message = Vec::with_capacity(id.len() + ts.len() + body.len() + 2);
    message.extend_from_slice(id);
    message.push(b'.');
    message.extend_from_slice(ts);
    message.push(b'.');
    message.extend_from_slice(body);
    message
}

fn required<'h>(sent: Sent<'h>, name: &HeaderName) -> Result<&'h [u8], WebhookError> {
    optional(sent, name)?.ok_or_else(|| WebhookError::MissingHeader(name.clone()))
}

/// A header sent at most once, its value with surrounding blanks trimmed. Its bytes are
/// checked by whoever parses them: digits, base64 or hex leave no room for anything else.
fn optional<'h>(sent: Sent<'h>, name: &HeaderName) -> Result<Option<&'h [u8]>, WebhookError> {
    match sent {
        Sent::Absent => Ok(None),
        Sent::Once(value) => Ok(Some(value.as_bytes().trim_ascii())),
        Sent::Repeated => Err(WebhookError::malformed(name, "sent more than once")),
    }
}

fn read_id(
    sent: Sent<'_>,
    name: &HeaderName,
    required_here: bool,
) -> Result<Option<HeaderValue>, WebhookError> {
    let id = if required_here {
        required(sent, name)?
    } else {
        match optional(sent, name)? {
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
    // The id is signed and handed on as text, so unlike the other headers it is checked
    // here, as `HeaderValue::to_str` reads text: visible ASCII, spaces and tabs.
    if !id.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(WebhookError::malformed(name, "not visible ASCII"));
    }
    match sent {
        // Servers trim header values as they parse them, so the value is usually the id.
        Sent::Once(value) if value.len() == id.len() => Ok(Some(value.clone())),
        _ => HeaderValue::from_bytes(id)
            .map(Some)
            .map_err(|_| WebhookError::malformed(name, "not visible ASCII")),
    }
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
    fn parse(digits: &[u8]) -> Option<Self> {
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
fn standard_candidates(name: &HeaderName, value: &[u8]) -> Result<Candidates, WebhookError> {
    let mut candidates = Candidates::default();
    let mut unreadable = false;
    let mut seen = 0;
    let mut rest = value;
    loop {
        while let [b' ', after @ ..] = rest {
            rest = after;
        }
        if rest.is_empty() {
            break;
        }
        seen += 1;
        if seen > MAX_SIGNATURES {
            return Err(WebhookError::malformed(name, "more than 16 signatures"));
        }

        // A known version's signature has a fixed length, so its entry ends there and the
        // base64 need not be searched for the next space.
        if let Some((mac, after)) = fixed_entry::<32>(rest, b"v1,") {
            rest = after;
            match mac {
                Some(mac) => candidates.push_mac(mac),
                None => unreadable = true,
            }
        } else if let Some((signature, after)) = fixed_entry::<64>(rest, b"v1a,") {
            rest = after;
            match signature {
                Some(bytes) => candidates.ed25519.push(Signature::from_bytes(&bytes)),
                None => unreadable = true,
            }
        } else {
            // Another version, skipped; or no version at all, unreadable.
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            unreadable |= !rest[..end].contains(&b',');
            rest = &rest[end..];
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

/// An entry `<version><base64 of N bytes>` at the start of `text`, with what follows it:
/// `None` when `text` starts with another version, `Some((None, _))` when the version
/// matches but the signature cannot be read.
#[allow(clippy::type_complexity)]
fn fixed_entry<'t, const N: usize>(
    text: &'t [u8],
    version: &[u8],
) -> Option<(Option<[u8; N]>, &'t [u8])> {
    let after = text.strip_prefix(version)?;
    let len = N.div_ceil(3) * 4;
    let ends_there = after.len() == len || after.get(len) == Some(&b' ');
    if ends_there {
        return Some((decode_base64::<N>(&after[..len]), &after[len..]));
    }
    let end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
    Some((None, &after[end..]))
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// The value of each base64 character, or `NOT_BASE64`.
const BASE64_VALUES: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut values = [NOT_BASE64; 256];
    let mut value = 0u8;
    while value < 64 {
        values[alphabet[value as usize] as usize] = value;
        value += 1;
    }
    values
};
const NOT_BASE64: u8 = 0xff;

/// Exactly `N` bytes from padded standard base64, canonical only (unused bits zero).
///
/// Written out rather than taken from the `base64` crate: for a 44-character tag its
/// general decoder costs about as much as everything else in the header check together,
/// and a signature is decoded on every request.
fn decode_base64<const N: usize>(encoded: &[u8]) -> Option<[u8; N]> {
    if encoded.len() != N.div_ceil(3) * 4 {
        return None;
    }
    let padding = (3 - N % 3) % 3;
    let (digits, pad) = encoded.split_at(encoded.len() - padding);
    if pad.iter().any(|&b| b != b'=') {
        return None;
    }

    // A digit outside the alphabet looks up `NOT_BASE64`, whose top bit no real value has:
    // collected over all digits and checked once, so the loop has no branch per digit.
    let mut seen = 0u8;
    let mut value = |digit: u8| {
        let value = BASE64_VALUES[usize::from(digit)];
        seen |= value;
        u32::from(value)
    };

    // Four digits make three bytes...
    let mut out = [0u8; N];
    let (whole, tail) = digits.split_at(digits.len() / 4 * 4);
    for (group, bytes) in whole.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
        let word = value(group[0]) << 18 | value(group[1]) << 12 | value(group[2]) << 6;
        let word = word | value(group[3]);
        bytes.copy_from_slice(&word.to_be_bytes()[1..]);
    }

    // ...and a short last group of two or three digits one or two, leaving bits unused that
    // must be zero, or two texts would decode to the same tag.
    let mut word = 0u32;
    for (i, &digit) in tail.iter().enumerate() {
        word |= value(digit) << (18 - 6 * i);
    }
    let word = word.to_be_bytes();
    let (used, unused) = word[1..].split_at(tail.len() * 6 / 8);
    out[whole.len() / 4 * 3..].copy_from_slice(used);

    if seen & 0x80 != 0 || unused.iter().any(|&b| b != 0) {
        return None;
    }
    Some(out)
}

/// `t=<seconds>,v1=<hex>[,v1=<hex>...]`; other keys (`v0`, a scheme's extensions) are
/// skipped.
fn timestamped_candidates(
    name: &HeaderName,
    value: &[u8],
) -> Result<(Stamp, Candidates), WebhookError> {
    let mut timestamp = None;
    let mut candidates = Candidates::default();
    let mut seen = 0;
    for item in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
        let Some((key, val)) = split_once(item, b'=') else {
            return Err(WebhookError::malformed(name, "expected key=value pairs"));
        };
        match key {
            b"t" if timestamp.is_some() => {
                return Err(WebhookError::malformed(name, "t= given more than once"));
            }
            b"t" => {
                let stamp = Stamp::parse(val)
                    .ok_or_else(|| WebhookError::malformed(name, "t= is not unix seconds"))?;
                timestamp = Some(stamp);
            }
            b"v1" => {
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

fn github_candidate(name: &HeaderName, value: &[u8]) -> Result<Candidates, WebhookError> {
    let hex = value
        .strip_prefix(b"sha256=")
        .ok_or_else(|| WebhookError::malformed(name, "expected sha256=<hex>"))?;
    let mac = key::unhex32(hex)
        .ok_or_else(|| WebhookError::malformed(name, "expected 64 hex digits after sha256="))?;
    let mut candidates = Candidates::default();
    candidates.push_mac(mac);
    Ok(candidates)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;

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

    #[test]
    fn base64_decodes_as_the_base64_crate_does() {
        for seed in 0..64u8 {
            let byte = |i: usize| u8::try_from(i).unwrap();
            let tag: [u8; 32] = std::array::from_fn(|i| seed.wrapping_mul(31) ^ byte(i * 7));
            let signature: [u8; 64] = std::array::from_fn(|i| seed ^ byte(i).wrapping_mul(13));
            assert_eq!(
                decode_base64::<32>(BASE64.encode(tag).as_bytes()),
                Some(tag)
            );
            assert_eq!(
                decode_base64::<64>(BASE64.encode(signature).as_bytes()),
                Some(signature)
            );
        }
    }

    #[test]
    fn base64_refuses_what_is_not_exactly_one_canonical_tag() {
        let text = BASE64.encode([0xa5u8; 32]);
        assert!(decode_base64::<32>(text.as_bytes()).is_some());

        // Unpadded, too short, too long, the wrong alphabet, padding inside.
        assert_eq!(
            decode_base64::<32>(text.trim_end_matches('=').as_bytes()),
            None
        );
        assert_eq!(decode_base64::<32>(&text.as_bytes()[4..]), None);
        assert_eq!(decode_base64::<32>(format!("AAAA{text}").as_bytes()), None);
        let urlsafe = text.replace('+', "-").replace('/', "_");
        if urlsafe != text {
            assert_eq!(decode_base64::<32>(urlsafe.as_bytes()), None);
        }
        let mut inner_pad = text.clone().into_bytes();
        inner_pad[10] = b'=';
        assert_eq!(decode_base64::<32>(&inner_pad), None);

        // The last digit of a 32-byte tag carries two unused bits: set, they are refused
        // (as the base64 crate refuses them), so one tag has one text.
        let mut loose = text.into_bytes();
        let last = loose.len() - 2;
        let value = BASE64_VALUES[usize::from(loose[last])];
        loose[last] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            [usize::from(value | 1)];
        assert_ne!(BASE64_VALUES[usize::from(loose[last])], value);
        assert_eq!(decode_base64::<32>(&loose), None);
        assert!(BASE64.decode(&loose).is_err());
    }
}
