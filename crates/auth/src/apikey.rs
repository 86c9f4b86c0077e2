//! The API key format, its generation and the hash that stores stand in for it.
//!
//! A key reads `<prefix>_<id>_<secret>_<check>`:
//!
//! - `prefix`: configurable letters and digits, so a secret scanner can recognise the key;
//! - `id`: 16 base32 characters (80 random bits), public, used to look the key up;
//! - `secret`: 52 base32 characters, 256 bits from the operating system's RNG;
//! - `check`: 7 base32 characters of SHA-256 over everything before it, so a typo or a guessed
//!   string is refused without a store lookup.
//!
//! Stores hold only the id and a hash of the secret: SHA-256, or HMAC-SHA-256 keyed by a server
//! pepper so that a leaked store alone does not allow an offline guess. Unlike a bearer token
//! compared with `==`, the hash comparison here runs in constant time.

use std::collections::BTreeSet;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac, rand};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::AuthError;

const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const ID_BYTES: usize = 10;
const SECRET_BYTES: usize = 32;
const ID_LEN: usize = 16;
const SECRET_LEN: usize = 52;
const CHECK_LEN: usize = 7;

/// The parts of a presented key, checked for shape and checksum but not yet for validity.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The public key id.
    pub id: &'a str,
    secret: &'a str,
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a presented key was refused before any lookup. Used in logs, never shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyShapeError {
    /// The prefix differs from the configured one.
    Prefix,
    /// The key does not split into four parts of the right lengths and alphabet.
    Shape,
    /// The checksum does not match: a typo, or a string that was never a key.
    Checksum,
}

impl KeyShapeError {
    /// A short word for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prefix => "wrong prefix",
            Self::Shape => "malformed key",
            Self::Checksum => "bad checksum",
        }
    }
}

/// Splits `key` and checks its shape and checksum.
pub fn parse<'a>(prefix: &str, key: &'a str) -> Result<ParsedKey<'a>, KeyShapeError> {
    let rest = key
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .ok_or(KeyShapeError::Prefix)?;
    let mut parts = rest.split('_');
    let (Some(id), Some(secret), Some(check), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyShapeError::Shape);
    };
    let well_formed = |part: &str, len: usize| part.len() == len && part.bytes().all(is_base32);
    if !(well_formed(id, ID_LEN)
        && well_formed(secret, SECRET_LEN)
        && well_formed(check, CHECK_LEN))
    {
        return Err(KeyShapeError::Shape);
    }

    let body = &key[..key.len() - CHECK_LEN - 1];
    if checksum_bytes(body) != check.as_bytes() {
        return Err(KeyShapeError::Checksum);
    }
    Ok(ParsedKey { id, secret })
}

impl ParsedKey<'_> {
    /// The secret part, for hashing.
    pub(crate) fn secret(&self) -> &str {
        self.secret
    }
}

fn is_base32(byte: u8) -> bool {
    byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte)
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The first 35 bits of SHA-256 over `body`, as seven base32 characters.
fn checksum_bytes(body: &str) -> [u8; CHECK_LEN] {
    let digest = digest::digest(&digest::SHA256, body.as_bytes());
    let bits = digest.as_ref()[..5]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = [0u8; CHECK_LEN];
    for (i, slot) in out.iter_mut().enumerate() {
        // Each index is masked to five bits, so it is always within the alphabet.
        *slot = ALPHABET[usize::try_from((bits >> (35 - 5 * i)) & 31).unwrap_or(0)];
    }
    out
}

fn checksum(body: &str) -> String {
    checksum_bytes(body)
        .iter()
        .map(|b| char::from(*b))
        .collect()
}

fn random_base32(len_bytes: usize) -> Result<String, AuthError> {
    let mut bytes = vec![0u8; len_bytes];
    rand::fill(&mut bytes).map_err(|_| AuthError::Store("the OS RNG failed".to_owned()))?;
    Ok(base32(&bytes))
}

/// A freshly generated key: the full text, shown to its owner once, and its record.
#[derive(Clone)]
pub struct NewKey {
    /// The key to hand to the client. Never store or log it.
    pub key: String,
    /// What a store keeps: the id, the hash of the secret and the grants.
    pub record: KeyRecord,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// What a store keeps about a key. It holds no secret, only a hash of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The public key id.
    pub id: String,
    /// Hex hash of the secret: `sha256:<hex>` or `hmac-sha256:<hex>`.
    pub hash: String,
    /// Who the key belongs to; becomes [`rampart_core::Identity::subject`].
    pub owner: String,
    /// Roles the key grants.
    #[serde(default)]
    pub roles: BTreeSet<String>,
    /// Scopes the key grants.
    #[serde(default)]
    pub scopes: BTreeSet<String>,
    /// Creation time, seconds since the Unix epoch.
    #[serde(default)]
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch; `None` never expires.
    #[serde(default)]
    pub expires_at: Option<u64>,
    /// Whether the key was revoked.
    #[serde(default)]
    pub revoked: bool,
}

/// Hashes key secrets, with or without a server pepper.
#[derive(Clone)]
pub struct KeyHasher {
    pepper: Option<hmac::Key>,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyHasher")
            .field("peppered", &self.pepper.is_some())
            .finish()
    }
}

impl KeyHasher {
    /// Plain SHA-256 hashes (`sha256:<hex>`).
    pub fn sha256() -> Self {
        Self { pepper: None }
    }

    /// HMAC-SHA-256 hashes keyed by `pepper` (`hmac-sha256:<hex>`); at least 32 bytes.
    pub fn with_pepper(pepper: &[u8]) -> Result<Self, AuthError> {
        if pepper.len() < 32 {
            return Err(AuthError::config("pepper", "must be at least 32 bytes"));
        }
        Ok(Self {
            pepper: Some(hmac::Key::new(hmac::HMAC_SHA256, pepper)),
        })
    }

    /// The stored form of a secret's hash.
    pub fn hash(&self, secret: &str) -> String {
        match &self.pepper {
            None => format!(
                "sha256:{}",
                hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
            ),
            Some(key) => format!(
                "hmac-sha256:{}",
                hex(hmac::sign(key, secret.as_bytes()).as_ref())
            ),
        }
    }

    /// Whether `secret` hashes to `stored`, compared in constant time.
    pub fn matches(&self, secret: &str, stored: &str) -> bool {
        // Hex-encode on the stack: this runs on every request.
        let mut computed = [0u8; 64];
        let expected = match &self.pepper {
            None => {
                let digest = digest::digest(&digest::SHA256, secret.as_bytes());
                hex_into(digest.as_ref(), &mut computed);
                stored.strip_prefix("sha256:")
            }
            Some(key) => {
                let tag = hmac::sign(key, secret.as_bytes());
                hex_into(tag.as_ref(), &mut computed);
                stored.strip_prefix("hmac-sha256:")
            }
        };
        // The hash kind and length are public; only the digest is compared in constant time.
        expected.is_some_and(|hex| hex.len() == 64 && bool::from(computed.ct_eq(hex.as_bytes())))
    }

    /// Generates a key under `prefix` for `owner`, with 256 bits from the OS RNG.
    pub fn generate(&self, prefix: &str, owner: &str) -> Result<NewKey, AuthError> {
        validate_prefix(prefix)?;
        let id = random_base32(ID_BYTES)?;
        let secret = random_base32(SECRET_BYTES)?;
        let body = format!("{prefix}_{id}_{secret}");
        let key = format!("{body}_{}", checksum(&body));
        let record = KeyRecord {
            hash: self.hash(&secret),
            id,
            owner: owner.to_owned(),
            roles: BTreeSet::new(),
            scopes: BTreeSet::new(),
            created_at: unix_now(),
            expires_at: None,
            revoked: false,
        };
        Ok(NewKey { key, record })
    }
}

/// Checks that a prefix is 1 to 16 ASCII letters or digits.
pub(crate) fn validate_prefix(prefix: &str) -> Result<(), AuthError> {
    if prefix.is_empty() || prefix.len() > 16 || !prefix.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(AuthError::config(
            "api_keys.prefix",
            "must be 1 to 16 ASCII letters or digits",
        ));
    }
    Ok(())
}

fn hex_into(bytes: &[u8], out: &mut [u8; 64]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in bytes.iter().take(32).enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_match_their_hash() {
        let hasher = KeyHasher::sha256();
        let new = hasher.generate("rk", "alice").expect("test setup");
        let parsed = parse("rk", &new.key).expect("test setup");
        assert_eq!(parsed.id, new.record.id);
        assert!(hasher.matches(parsed.secret(), &new.record.hash));
        assert!(!new.record.hash.contains(parsed.secret()));
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let new = KeyHasher::sha256()
            .generate("rk", "alice")
            .expect("test setup");
        let mut typo = new.key.clone().into_bytes();
        let at = 3 + ID_LEN + 5;
        typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).expect("test setup");
        assert_eq!(parse("rk", &typo), Err(KeyShapeError::Checksum));
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(parse("rk", "xx_abc"), Err(KeyShapeError::Prefix));
        assert_eq!(parse("rk", "rk_abc_def_ghi"), Err(KeyShapeError::Shape));
        assert_eq!(parse("rk", "rk_"), Err(KeyShapeError::Shape));
    }

    #[test]
    fn peppered_hashes_differ_from_plain_ones() {
        let plain = KeyHasher::sha256();
        let peppered = KeyHasher::with_pepper(&[7u8; 32]).expect("test setup");
        let new = peppered.generate("rk", "bob").expect("test setup");
        let parsed = parse("rk", &new.key).expect("test setup");
        assert!(peppered.matches(parsed.secret(), &new.record.hash));
        assert!(!plain.matches(parsed.secret(), &new.record.hash));
        assert!(KeyHasher::with_pepper(b"short").is_err());
    }
}
