//! Verification keys, parsed once when they are loaded.
//!
//! `jsonwebtoken::decode` turns its `DecodingKey` into a fresh verifier on every call, parsing
//! the RSA or EC public key again each time. Here each key is parsed when it is loaded (from a
//! secret, a PEM file or a JWK) into the verifier of the one algorithm configured for it, so
//! the per-request cost is the signature check alone.

use std::fmt;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use p521::ecdsa::signature::Verifier as _;
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// A JWS signature algorithm. Which one a key accepts is fixed when the key is configured,
/// never read from the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512 (verified with the RustCrypto `p521` crate).
    ES512,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// The name used in a JWS header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Parses a JWS header name; `none` and unknown names give `None`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::HS256,
            "HS384" => Self::HS384,
            "HS512" => Self::HS512,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "ES512" => Self::ES512,
            "EdDSA" => Self::EdDSA,
            _ => return None,
        })
    }

    /// Whether the algorithm uses a shared secret.
    pub fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    fn public_algorithm(self) -> Option<&'static dyn VerificationAlgorithm> {
        Some(match self {
            Self::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
            Self::RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
            Self::RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            Self::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
            Self::PS384 => &sig::RSA_PSS_2048_8192_SHA384,
            Self::PS512 => &sig::RSA_PSS_2048_8192_SHA512,
            Self::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
            Self::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
            Self::EdDSA => &sig::ED25519,
            Self::HS256 | Self::HS384 | Self::HS512 | Self::ES512 => return None,
        })
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Check {
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
    P521(Box<p521::ecdsa::VerifyingKey>),
}

/// One verification key: its id, the single algorithm it accepts, and the parsed key.
pub struct VerifyKey {
    kid: Option<String>,
    algorithm: Algorithm,
    check: Check,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl VerifyKey {
    /// An HMAC key. The secret must be at least as long as the hash output (32 bytes for
    /// HS256), as RFC 7518 requires.
    pub fn hmac(
        kid: Option<String>,
        algorithm: Algorithm,
        secret: &[u8],
    ) -> Result<Self, AuthError> {
        let (hmac_alg, min) = match algorithm {
            Algorithm::HS256 => (hmac::HMAC_SHA256, 32),
            Algorithm::HS384 => (hmac::HMAC_SHA384, 48),
            Algorithm::HS512 => (hmac::HMAC_SHA512, 64),
            other => {
                return Err(AuthError::key(
                    kid.as_deref(),
                    format!("{other} does not take a secret"),
                ));
            }
        };
        if secret.len() < min {
            return Err(AuthError::key(
                kid.as_deref(),
                format!("a {algorithm} secret needs at least {min} bytes"),
            ));
        }
        Ok(Self {
            kid,
            algorithm,
            check: Check::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))),
        })
    }

    /// A public key from PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`), for a non-HMAC algorithm.
    pub fn from_pem(
        kid: Option<String>,
        algorithm: Algorithm,
        pem: &[u8],
    ) -> Result<Self, AuthError> {
        let bad = |e: &dyn fmt::Display| AuthError::key(kid.as_deref(), e);
        let decoding = match algorithm {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(bad(&"an HMAC algorithm takes a secret, not a PEM key"));
            }
        }
        .map_err(|e| bad(&e))?;
        let bytes = decoding.try_get_as_bytes().map_err(|e| bad(&e))?;
        Self::from_public_bytes(kid, algorithm, bytes)
    }

    /// A public key from its raw form: PKCS#1 `RSAPublicKey` DER, an uncompressed EC point,
    /// or the 32 bytes of an Ed25519 key.
    fn from_public_bytes(
        kid: Option<String>,
        algorithm: Algorithm,
        bytes: &[u8],
    ) -> Result<Self, AuthError> {
        let check = if algorithm == Algorithm::ES512 {
            let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
                .map_err(|_| AuthError::key(kid.as_deref(), "not a P-521 public key"))?;
            Check::P521(Box::new(key))
        } else {
            let alg = algorithm
                .public_algorithm()
                .ok_or_else(|| AuthError::key(kid.as_deref(), "not a public key algorithm"))?;
            let parsed = ParsedPublicKey::new(alg, bytes).map_err(|e| {
                AuthError::key(kid.as_deref(), format!("not a {algorithm} public key: {e}"))
            })?;
            Check::Public(parsed)
        };
        Ok(Self {
            kid,
            algorithm,
            check,
        })
    }

    /// A key from a JWK. Its algorithm is the JWK's `alg` when set, and must be one of
    /// `allowed`; without `alg`, the only allowed algorithm that fits the key type.
    pub fn from_jwk(jwk: &Jwk, allowed: &[Algorithm]) -> Result<Self, AuthError> {
        let kid = jwk.common.key_id.clone();
        let bad = |reason: &str| AuthError::key(kid.as_deref(), reason);
        let declared = match jwk.common.key_algorithm {
            // jsonwebtoken knows no ES512; a P-521 key that names it lands in UNKNOWN.
            None | Some(KeyAlgorithm::UNKNOWN_ALGORITHM) => None,
            Some(alg) => Some(
                Algorithm::from_name(&alg.to_string())
                    .ok_or_else(|| bad("the JWK's `alg` is not a signature algorithm"))?,
            ),
        };
        let fits = |alg: Algorithm| -> bool {
            match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => matches!(
                    alg,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ),
                AlgorithmParameters::EllipticCurve(ec) => matches!(
                    (&ec.curve, alg),
                    (EllipticCurve::P256, Algorithm::ES256)
                        | (EllipticCurve::P384, Algorithm::ES384)
                        | (EllipticCurve::P521, Algorithm::ES512)
                ),
                AlgorithmParameters::OctetKeyPair(okp) => {
                    okp.curve == EllipticCurve::Ed25519 && alg == Algorithm::EdDSA
                }
                AlgorithmParameters::OctetKey(_) => alg.is_hmac(),
                _ => false,
            }
        };
        let algorithm = match declared {
            Some(alg) if allowed.contains(&alg) && fits(alg) => alg,
            Some(_) => return Err(bad("the JWK's `alg` is not allowed for this key source")),
            None => {
                let mut candidates = allowed.iter().copied().filter(|a| fits(*a));
                match (candidates.next(), candidates.next()) {
                    (Some(alg), None) => alg,
                    _ => {
                        return Err(bad(
                            "the JWK has no `alg` and its type fits no single allowed algorithm",
                        ));
                    }
                }
            }
        };

        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part.trim_end_matches('='))
                .map_err(|_| bad("a JWK member is not base64url"))
        };
        match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let der = rsa_public_key_der(&decode(&rsa.n)?, &decode(&rsa.e)?);
                Self::from_public_bytes(kid.clone(), algorithm, &der)
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                let mut point = vec![0x04];
                point.extend(decode(&ec.x)?);
                point.extend(decode(&ec.y)?);
                Self::from_public_bytes(kid.clone(), algorithm, &point)
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                Self::from_public_bytes(kid.clone(), algorithm, &decode(&okp.x)?)
            }
            AlgorithmParameters::OctetKey(oct) => {
                Self::hmac(kid.clone(), algorithm, &decode(&oct.value)?)
            }
            _ => Err(bad("unsupported JWK key type")),
        }
    }

    /// The key id, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key accepts.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Whether `signature` is a valid signature of `message` under this key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.check {
            Check::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Check::Public(key) => key.verify_sig(message, signature).is_ok(),
            Check::P521(key) => p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify(message, &signature).is_ok()),
        }
    }
}

/// DER of PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let n = der_integer(n);
    let e = der_integer(e);
    let mut body = n;
    body.extend(e);
    let mut out = vec![0x30];
    der_length(&mut out, body.len());
    out.extend(body);
    out
}

fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed = match bytes.iter().position(|&b| b != 0) {
        Some(start) => &bytes[start..],
        None => &[0u8][..],
    };
    let pad = trimmed.first().is_some_and(|&b| b & 0x80 != 0);
    let mut out = vec![0x02];
    der_length(&mut out, trimmed.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
    out
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        // Fits in one byte by the branch condition.
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | u8::try_from(bytes.len() - skip).unwrap_or(0));
        out.extend_from_slice(&bytes[skip..]);
    }
}
