//! The crate's error type and the outcome words used as metric labels.

use std::fmt;

use http::HeaderName;
use rampart_core::BoxError;

/// Everything that can go wrong in this crate: a webhook that fails verification, a
/// configuration that cannot be used, or a replay store that does not answer.
///
/// Messages never contain a secret, a signature or a body: only header names, the class of
/// failure and numbers (limits, ages).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A header the scheme needs is absent.
    #[error("header `{0}` is missing")]
    MissingHeader(HeaderName),
    /// A header is present but cannot be read.
    #[error("header `{header}` is malformed: {reason}")]
    MalformedHeader {
        /// The header at fault.
        header: HeaderName,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signed timestamp is too old or too far in the future.
    #[error("timestamp is {skew_secs}s away from now, outside the tolerance window")]
    Expired {
        /// Seconds from now to the timestamp; negative when it is in the past.
        skew_secs: i64,
    },
    /// No signature in the request matches any configured key.
    #[error("no signature matches")]
    Mismatch,
    /// The webhook was already accepted within the replay window.
    #[error("webhook was already received")]
    Replay,
    /// The body is longer than the configured limit.
    #[error("body exceeds the {limit} byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("body not received within {after:?}")]
    BodyTimeout {
        /// The configured `body_timeout`.
        after: std::time::Duration,
    },
    /// Reading the request body failed (the client went away, a protocol error).
    #[error("reading the body failed: {0}")]
    Body(#[source] BoxError),
    /// The replay store failed or did not answer in time.
    #[error("replay store: {0}")]
    Store(#[source] BoxError),
    /// A configuration field is invalid.
    #[error("invalid webhook config `{field}`: {reason}")]
    Config {
        /// The field at fault, as named in the configuration (`secrets[1]`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl WebhookError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn malformed(header: &HeaderName, reason: &'static str) -> Self {
        Self::MalformedHeader {
            header: header.clone(),
            reason,
        }
    }

    /// The outcome this error stands for in metrics and logs; `None` for configuration errors.
    pub fn outcome(&self) -> Option<Outcome> {
        Some(match self {
            Self::MissingHeader(_) => Outcome::Missing,
            Self::MalformedHeader { .. } => Outcome::Malformed,
            Self::Expired { .. } => Outcome::Expired,
            Self::Mismatch => Outcome::Mismatch,
            Self::Replay => Outcome::Replay,
            Self::TooLarge { .. } => Outcome::TooLarge,
            Self::BodyTimeout { .. } => Outcome::BodyTimeout,
            Self::Body(_) => Outcome::BodyError,
            Self::Store(_) => Outcome::StoreError,
            Self::Config { .. } => return None,
        })
    }
}

/// What happened to one webhook, as the `outcome` label of
/// `rampart_webhook_verifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Verified and passed on.
    Ok,
    /// Verified and passed on without a replay check: the replay store failed and the
    /// policy is to accept. Counted apart from `ok`, so that a dashboard shows how many
    /// webhooks went through while replays could not be caught.
    Unchecked,
    /// A required header was absent.
    Missing,
    /// A header could not be parsed.
    Malformed,
    /// The timestamp was outside the tolerance window.
    Expired,
    /// No signature matched.
    Mismatch,
    /// The webhook id (or signature) was seen before within the window.
    Replay,
    /// The body was over the limit.
    TooLarge,
    /// The body did not arrive within `body_timeout`.
    BodyTimeout,
    /// The body could not be read.
    BodyError,
    /// The replay store failed and the policy is to reject.
    StoreError,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Unchecked => "unchecked",
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Expired => "expired",
            Self::Mismatch => "mismatch",
            Self::Replay => "replay",
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyError => "body_error",
            Self::StoreError => "store_error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
