//! Reads a token's claims in one pass, keeping only what validation and the identity need.
//!
//! `jsonwebtoken::decode` deserializes the claims twice (once to validate, once for the
//! caller) into owned maps; this visitor borrows claim names from the payload, keeps the
//! registered claims and the configured role and scope claims, and skips everything else.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What the verifier needs from a claim set.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    pub(crate) exp: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) iss: Option<String>,
    pub(crate) sub: Option<String>,
    pub(crate) aud: Option<Vec<String>>,
    pub(crate) jti: Option<String>,
    pub(crate) roles: BTreeSet<String>,
    pub(crate) scopes: BTreeSet<String>,
    /// Bit `i` is set when `required_claims[i]` was present.
    pub(crate) required_seen: u64,
}

/// Which claims to keep; a `DeserializeSeed` over the payload object.
pub(crate) struct ClaimNames<'c> {
    pub(crate) roles: &'c str,
    pub(crate) scopes: &'c [String],
    pub(crate) required: &'c [String],
}

impl<'de> DeserializeSeed<'de> for ClaimNames<'_> {
    type Value = Claims;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Claims, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimNames<'_> {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let mut claims = Claims::default();
        // Claim names with escapes cannot be borrowed; such a token is refused as malformed.
        while let Some(name) = map.next_key::<&'de str>()? {
            if let Some(i) = self.required.iter().position(|r| r == name) {
                claims.required_seen |= 1u64 << i.min(63);
            }
            match name {
                "exp" => claims.exp = Some(map.next_value::<NumericDate>()?.0),
                "nbf" => claims.nbf = Some(map.next_value::<NumericDate>()?.0),
                "iat" => claims.iat = Some(map.next_value::<NumericDate>()?.0),
                "iss" => claims.iss = Some(map.next_value()?),
                "sub" => claims.sub = Some(map.next_value()?),
                "jti" => claims.jti = Some(map.next_value()?),
                "aud" => claims.aud = Some(map.next_value::<Audience>()?.0),
                _ if name == self.roles => {
                    let words = map.next_value::<Words>()?.0;
                    if self.scopes.iter().any(|s| s == name) {
                        claims.scopes.extend(words.iter().cloned());
                    }
                    claims.roles.extend(words);
                }
                _ if self.scopes.iter().any(|s| s == name) => {
                    claims.scopes.extend(map.next_value::<Words>()?.0);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(claims)
    }
}

/// Seconds since the epoch; a fraction is dropped, a negative or non-number value refused.
struct NumericDate(u64);

impl<'de> de::Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative NumericDate")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                u64::try_from(v)
                    .map(NumericDate)
                    .map_err(|_| E::custom("negative date"))
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_finite() && v >= 0.0 {
                    // Saturates past u64::MAX, which is far beyond any real date.
                    Ok(NumericDate(v as u64))
                } else {
                    Err(E::custom("negative or non-finite date"))
                }
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A space-separated string or an array of strings (`scope`, `scp`, `roles`, `aud`).
struct Words(Vec<String>);

impl<'de> de::Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Words;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Words, E> {
                Ok(Words(v.split_whitespace().map(str::to_owned).collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Words, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(word) = seq.next_element::<String>()? {
                    out.push(word);
                }
                Ok(Words(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `aud`: one string or an array of strings, never split.
struct Audience(Vec<String>);

impl<'de> de::Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut out = Vec::new();
                while let Some(aud) = seq.next_element::<String>()? {
                    out.push(aud);
                }
                Ok(Audience(out))
            }
        }
        deserializer.deserialize_any(V)
    }
}
