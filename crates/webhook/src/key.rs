//! Secrets and keys: parsing the configured forms, generating new ones.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::config::{SchemeKind, SecretString};
use crate::error::WebhookError;
use crate::mac::HmacKey;

/// Prefix of a Standard Webhooks HMAC secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Prefix of a Standard Webhooks Ed25519 private key.
pub const PRIVATE_KEY_PREFIX: &str = "whsk_";
/// Prefix of a Standard Webhooks Ed25519 public key.
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// A secret's bytes as an HMAC key; any length but none.
fn hmac_key(field: &str, key: &[u8]) -> Result<HmacKey, WebhookError> {
    if key.is_empty() {
        return Err(WebhookError::config(field, "secret is empty"));
    }
    Ok(HmacKey::new(key))
}

/// A key that checks signatures.
#[derive(Debug, Clone)]
pub(crate) enum VerifyKey {
    Hmac(HmacKey),
    Ed25519(VerifyingKey),
}

/// A key that makes signatures.
#[derive(Clone)]
pub(crate) enum SignKey {
    Hmac(HmacKey),
    Ed25519(Box<SigningKey>),
}

impl fmt::Debug for SignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hmac(_) => f.write_str("SignKey::Hmac(<redacted>)"),
            Self::Ed25519(_) => f.write_str("SignKey::Ed25519(<redacted>)"),
        }
    }
}

pub(crate) fn verify_key(
    scheme: SchemeKind,
    field: &str,
    secret: &SecretString,
) -> Result<VerifyKey, WebhookError> {
    let secret = secret.expose().trim();
    if scheme != SchemeKind::Standard {
        return raw_hmac(scheme, field, secret).map(VerifyKey::Hmac);
    }
    if let Some(public) = secret.strip_prefix(PUBLIC_KEY_PREFIX) {
        let bytes: [u8; 32] = decode_fixed(field, public, "a whpk_ key must hold 32 bytes")?;
        return VerifyingKey::from_bytes(&bytes)
            .map(VerifyKey::Ed25519)
            .map_err(|_| WebhookError::config(field, "not a valid Ed25519 public key"));
    }
    if let Some(private) = secret.strip_prefix(PRIVATE_KEY_PREFIX) {
        let key = signing_key(field, private)?;
        return Ok(VerifyKey::Ed25519(key.verifying_key()));
    }
    standard_hmac(field, secret).map(VerifyKey::Hmac)
}

pub(crate) fn sign_key(
    scheme: SchemeKind,
    field: &str,
    secret: &SecretString,
) -> Result<SignKey, WebhookError> {
    let secret = secret.expose().trim();
    if scheme != SchemeKind::Standard {
        return raw_hmac(scheme, field, secret).map(SignKey::Hmac);
    }
    if secret.starts_with(PUBLIC_KEY_PREFIX) {
        return Err(WebhookError::config(
            field,
            "a whpk_ public key cannot sign; configure the whsk_ private key",
        ));
    }
    if let Some(private) = secret.strip_prefix(PRIVATE_KEY_PREFIX) {
        return signing_key(field, private).map(|key| SignKey::Ed25519(Box::new(key)));
    }
    standard_hmac(field, secret).map(SignKey::Hmac)
}

/// `whsec_<base64>`, or the bare base64 as the reference libraries also accept.
fn standard_hmac(field: &str, secret: &str) -> Result<HmacKey, WebhookError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let bytes = BASE64.decode(encoded).map_err(|_| {
        WebhookError::config(
            field,
            "expected whsec_<base64>, whpk_<base64> or whsk_<base64>",
        )
    })?;
    hmac_key(field, &bytes)
}

/// The secret's own bytes, as GitHub and timestamped-hex senders use them.
fn raw_hmac(scheme: SchemeKind, field: &str, secret: &str) -> Result<HmacKey, WebhookError> {
    if secret.starts_with(PUBLIC_KEY_PREFIX) || secret.starts_with(PRIVATE_KEY_PREFIX) {
        return Err(WebhookError::config(
            field,
            format!(
                "Ed25519 keys work with the standard scheme only, not {}",
                scheme.as_str()
            ),
        ));
    }
    hmac_key(field, secret.as_bytes())
}

/// A `whsk_` key: the 32-byte seed, or the 64-byte seed followed by the public key.
fn signing_key(field: &str, encoded: &str) -> Result<SigningKey, WebhookError> {
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| WebhookError::config(field, "a whsk_ key must be base64"))?;
    if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(SigningKey::from_bytes(&seed));
    }
    let pair = <[u8; 64]>::try_from(bytes.as_slice())
        .map_err(|_| WebhookError::config(field, "a whsk_ key must hold 32 or 64 bytes"))?;
    SigningKey::from_keypair_bytes(&pair)
        .map_err(|_| WebhookError::config(field, "the whsk_ key's public half does not match"))
}

fn decode_fixed<const N: usize>(
    field: &str,
    encoded: &str,
    wrong_length: &'static str,
) -> Result<[u8; N], WebhookError> {
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| WebhookError::config(field, "not base64"))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| WebhookError::config(field, wrong_length))
}

/// A new Standard Webhooks HMAC secret: `whsec_` and 32 random bytes in base64.
pub fn generate_secret() -> Result<SecretString, WebhookError> {
    let bytes = random_bytes()?;
    Ok(SecretString::new(format!(
        "{SECRET_PREFIX}{}",
        BASE64.encode(bytes)
    )))
}

/// A new Ed25519 key pair: the `whsk_` private key (keep it with the sender) and the `whpk_`
/// public key (give it to receivers).
pub fn generate_keypair() -> Result<(SecretString, String), WebhookError> {
    let seed = random_bytes()?;
    let key = SigningKey::from_bytes(&seed);
    let private = format!("{PRIVATE_KEY_PREFIX}{}", BASE64.encode(seed));
    let public = format!(
        "{PUBLIC_KEY_PREFIX}{}",
        BASE64.encode(key.verifying_key().to_bytes())
    );
    Ok((SecretString::new(private), public))
}

fn random_bytes() -> Result<[u8; 32], WebhookError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| WebhookError::config("secret", format!("no system randomness: {err}")))?;
    Ok(bytes)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Decodes exactly 32 bytes of hex, either case.
pub(crate) fn unhex32(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7).unwrap());
        assert_eq!(unhex32(hex(&bytes).as_bytes()), Some(bytes));
        assert_eq!(unhex32(hex(&bytes).to_uppercase().as_bytes()), Some(bytes));
        assert_eq!(unhex32(b"zz"), None);
        assert_eq!(unhex32("g".repeat(64).as_bytes()), None);
    }

    #[test]
    fn generated_keys_parse_back() {
        let secret = generate_secret().unwrap();
        assert!(secret.expose().starts_with("whsec_"));
        verify_key(SchemeKind::Standard, "s", &secret).unwrap();

        let (private, public) = generate_keypair().unwrap();
        assert!(matches!(
            sign_key(SchemeKind::Standard, "s", &private).unwrap(),
            SignKey::Ed25519(_)
        ));
        assert!(matches!(
            verify_key(SchemeKind::Standard, "s", &public.into()).unwrap(),
            VerifyKey::Ed25519(_)
        ));
    }

    #[test]
    fn bad_secrets_name_the_field() {
        let err = verify_key(SchemeKind::Standard, "secrets[2]", &"whsec_%%%".into()).unwrap_err();
        assert!(err.to_string().contains("secrets[2]"), "{err}");
        let err = sign_key(SchemeKind::Standard, "secrets[0]", &"whpk_AAAA".into()).unwrap_err();
        assert!(err.to_string().contains("cannot sign"), "{err}");
        let err = verify_key(SchemeKind::Github, "secrets[0]", &"whpk_AAAA".into()).unwrap_err();
        assert!(err.to_string().contains("standard scheme only"), "{err}");
        let err = verify_key(SchemeKind::Github, "secrets[0]", &"".into()).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
    }
}
