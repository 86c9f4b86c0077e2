//! Signing and verifying webhook requests, as tower layers.
//!
//! [`VerifyWebhookLayer`] sits in front of a webhook receiver: it checks the signature, the
//! timestamp and the replay store before the inner service sees anything, buffers the body
//! up to a limit, and hands the inner service the same bytes. [`SignWebhookLayer`] does the
//! sender's half for outbound calls. [`Verifier`] and [`Signer`] are the same decisions as
//! plain functions.
//!
//! Three schemes are spoken ([`SchemeKind`]):
//!
//! - [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`,
//!   `webhook-timestamp`, `webhook-signature` with `v1` (HMAC-SHA256) and `v1a` (Ed25519)
//!   signatures, checked against the specification's published vectors;
//! - timestamped hex: `<Name>-Signature: t=<unix seconds>,v1=<hex>`;
//! - GitHub's `X-Hub-Signature-256: sha256=<hex>`.
//!
//! Unlike a handler-level check (the reference libraries' `verify(payload, headers)`), the
//! layer refuses before the body is read when the headers alone settle it, answers every
//! refusal with an `application/problem+json` body naming the class of failure, remembers
//! ids in memory or in Redis so that a fleet of gateways rejects replays together, and
//! counts each outcome in `rampart_webhook_verifications_total{route, scheme, outcome}`.
//!
//! Time comes from a [`Clock`], so tests and the gateway's `webhook verify` command can check
//! a request as of any moment. Secrets are compared in constant time and never logged.
//!
//! ```
//! use std::time::SystemTime;
//! use rampart_webhook::{SignConfig, Signer, Verifier, VerifyConfig};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let signer = Signer::new(&SignConfig { secrets: vec![secret.into()], ..SignConfig::default() })?;
//! let verifier = Verifier::new(&VerifyConfig { secrets: vec![secret.into()], ..VerifyConfig::default() })?;
//!
//! let body = b"{\"type\":\"run.finished\"}";
//! let mut headers = http::HeaderMap::new();
//! signer.sign(body, SystemTime::now()).apply_to(&mut headers);
//! assert!(verifier.verify(&headers, body, SystemTime::now()).is_ok());
//! # Ok::<(), rampart_webhook::WebhookError>(())
//! ```

mod backend;
mod body;
mod clock;
mod config;
mod error;
mod future;
mod key;
mod layer;
mod mac;
mod problem;
mod scheme;
mod service;
mod sign;
mod verify;

#[cfg(feature = "redis")]
pub use backend::RedisReplayStore;
pub use backend::{MemoryReplayStore, ReplayStore, StoreFuture};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    ReplayConfig, SchemeKind, SecretString, SignConfig, StoreErrorPolicy, VerifyConfig,
};
pub use error::{Outcome, WebhookError};
pub use future::{ResponseFuture, SignResponseFuture};
pub use key::{
    PRIVATE_KEY_PREFIX, PUBLIC_KEY_PREFIX, SECRET_PREFIX, generate_keypair, generate_secret,
};
pub use layer::{SignWebhookLayer, VerifyWebhookLayer};
pub use scheme::{GITHUB_DELIVERY, GITHUB_SIGNATURE};
pub use service::{SignWebhook, VerifyWebhook};
pub use sign::{SignedHeaders, Signer};
pub use verify::{VerifiedWebhook, Verifier};
