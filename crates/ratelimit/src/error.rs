//! The crate's error type.

use std::time::Duration;

/// Why a rate limiter could not be built, or why a backend could not decide.
///
/// Refused requests are not errors: they are 429 responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimitError {
    /// A quota could not be parsed or is out of range.
    #[error("invalid quota {spec:?}: {reason}")]
    Quota {
        /// The quota as written.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configuration field is out of range.
    #[error("invalid rate limit config: `{field}` {reason}")]
    Config {
        /// The field, as named in the configuration file.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The Redis backend failed.
    #[cfg(feature = "redis")]
    #[error("rate limit backend: {0}")]
    Redis(#[from] rampart_core::redis::RedisError),
    /// The Redis script answered something other than what it returns.
    #[error("rate limit backend returned an unexpected reply")]
    UnexpectedReply,
    /// The backend did not answer within its deadline.
    #[error("rate limit backend exceeded its {0:?} deadline")]
    Timeout(Duration),
}
