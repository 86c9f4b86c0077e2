//! GCRA rate limiting as a tower layer, in memory or shared across gateways through Redis.
//!
//! Quotas are written as operators write them (`"200/day"`, `"50 per hour"`, `"10/s burst
//! 20"`); a request passes only if every quota admits it, and a refusal consumes none of them.
//! Each key and quota keeps one timestamp (the generic cell rate algorithm), so limits are
//! exact at every instant: there is no fixed window whose edge admits a double burst, which is
//! what separates this crate from counters in Redis or nginx's `limit_req` zones per window.
//!
//! Compared with `tower_governor`, the limiter here keys by the authenticated identity as well
//! as the client address (through [`rampart_core::TrustedProxies`]), applies several named
//! quotas at once with per-request costs, can share one budget across a fleet through Redis
//! with a stated policy for when Redis is away, and answers in the IETF `RateLimit` header
//! form with a problem+json body.
//!
//! ```
//! use rampart_ratelimit::{MemoryConfig, MemoryStore, RateLimitConfig, RateLimitLayer, RateLimiter};
//! use tower::ServiceBuilder;
//!
//! // One store shared by every route keeps one budget per client across routes.
//! let store = MemoryStore::new(&MemoryConfig::default()).unwrap();
//! let config: RateLimitConfig = toml::from_str(r#"
//!     quotas = ["200/day", "50/hour"]
//!     key = ["subject"]
//! "#).unwrap();
//! let limiter = RateLimiter::new(&config, store).unwrap();
//!
//! let service = ServiceBuilder::new()
//!     .layer(RateLimitLayer::new(limiter))
//!     .service_fn(|_request: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     });
//! # drop(service);
//! ```
//!
//! - [`Quota`], [`RateLimitConfig`]: what is limited, by which [`KeyPart`]s, with which headers.
//! - [`RateLimiter`]: quotas plus a [`Backend`]; usable without tower through
//!   [`RateLimiter::check`].
//! - [`MemoryStore`]: sharded, bounded in-memory state.
//! - `RedisBackend` (feature `redis`): one script call per decision, with a
//!   `FailurePolicy` for when Redis is away.
//! - [`RateLimitLayer`] / [`RateLimit`]: the tower layer and service.

pub mod backend;
mod config;
mod decision;
mod error;
mod future;
mod gcra;
mod key;
mod layer;
mod limiter;
mod quota;
mod response;
mod service;

pub use backend::memory::{ClockSource, MemoryConfig, MemoryStore};
#[cfg(feature = "redis")]
pub use backend::redis::{FailurePolicy, RedisBackend, RedisBackendConfig};
pub use config::{HeaderStyle, RateLimitConfig, Settings};
pub use decision::{Decision, QuotaStatus};
pub use error::RateLimitError;
pub use future::ResponseFuture;
pub use key::KeyPart;
pub use layer::RateLimitLayer;
pub use limiter::{Backend, Outcome, RateLimiter, RequestCost};
pub use quota::{Quota, QuotaConfig};
pub use service::RateLimit;
