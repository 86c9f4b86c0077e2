//! Rampart: tower middleware for a service mesh in front of agent services.
//!
//! This umbrella crate re-exports the layer crates behind cargo features of the same name.
//! Each layer also works alone: depend on `rampart-<layer>` directly if you want only one.
//!
//! - [`core`]: the types every layer agrees on (identity, client IP, problem responses, Redis).
//! - `auth` (feature `auth`): API keys, JWT bearer tokens, roles and scopes.
//! - `webhook` (feature `webhook`): signing and verifying webhook requests.
//! - `ratelimit` (feature `ratelimit`): GCRA quotas, in memory or shared through Redis.

pub use rampart_core as core;

#[cfg(feature = "auth")]
pub use rampart_auth as auth;
#[cfg(feature = "ratelimit")]
pub use rampart_ratelimit as ratelimit;
#[cfg(feature = "webhook")]
pub use rampart_webhook as webhook;
