//! The crate's error type: what can go wrong while building the layer or managing keys.
//!
//! A refused request is not an error: the layer answers it with a 401, 403 or 503 response.

use std::path::PathBuf;

/// Why an authenticator, a key store or a key could not be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A configuration field holds a value the layer cannot work with.
    #[error("invalid auth config `{field}`: {reason}")]
    Config {
        /// The field, as named in the configuration file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A key or secret file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An environment variable that should hold a secret is unset or empty.
    #[error("environment variable `{0}` is unset or empty")]
    MissingEnv(String),
    /// Key material was refused (bad PEM, wrong curve, too short a secret).
    #[error("invalid key{}: {reason}", kid.as_deref().map(|k| format!(" `{k}`")).unwrap_or_default())]
    Key {
        /// The key id, when the key has one.
        kid: Option<String>,
        /// Why the key was refused.
        reason: String,
    },
    /// A JWKS document could not be fetched or parsed.
    #[error("jwks {url}: {reason}")]
    Jwks {
        /// Where the set comes from.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The API key store could not answer.
    #[error("api key store: {0}")]
    Store(String),
    /// A token could not be signed (development minting only).
    #[error("cannot sign token: {0}")]
    Sign(String),
}

impl AuthError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Config {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn key(kid: Option<&str>, reason: impl std::fmt::Display) -> Self {
        Self::Key {
            kid: kid.map(str::to_owned),
            reason: reason.to_string(),
        }
    }
}
