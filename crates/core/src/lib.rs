//! What the Rampart layers must agree on.
//!
//! Every Rampart layer is its own crate and depends on no other layer. When two layers need the
//! same notion (who is calling, from which address, how an error looks on the wire, how to reach
//! Redis) that notion lives here, so that `rampart-auth` can insert an [`Identity`] that
//! `rampart-ratelimit` reads without either knowing the other.
//!
//! - [`Identity`]: the authenticated caller, put into request extensions by the auth layer.
//! - [`TrustedProxies`]: the client address, believing `Forwarded` and `X-Forwarded-For` only
//!   when the peer is a proxy you configured.
//! - [`Problem`]: `application/problem+json` responses (RFC 9457) for every refusal.
//! - [`ResponseBody`]: the body type of a layer that either passes the inner response on or
//!   answers itself.
//! - [`RequestId`], [`RouteName`], [`PeerAddr`]: request extensions set by the server or gateway
//!   and read by layers for logs and metric labels.
//! - [`redis`]: one pool builder for standalone Redis and Redis Cluster (feature `redis`).
//! - [`telemetry`]: metric and tracing naming conventions.

mod body;
mod client_ip;
mod extensions;
mod identity;
mod problem;
#[cfg(feature = "redis")]
pub mod redis;
pub mod telemetry;

pub use body::ResponseBody;
pub use client_ip::{ClientIp, TrustedProxies, TrustedProxiesError};
pub use extensions::{PeerAddr, RequestId, RouteName};
pub use identity::{CredentialKind, Identity};
pub use problem::{PROBLEM_JSON, Problem};

/// The error type services and bodies pass along when they have several possible causes.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
