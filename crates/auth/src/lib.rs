//! Authentication and authorization layers for tower: API keys, JWT bearer tokens, roles and
//! scopes.
//!
//! [`AuthLayer`] runs first and checks the request's credential, an API key (`X-API-Key: …` or
//! `Authorization: ApiKey …`) or a bearer token (`Authorization: Bearer …`). On success it
//! inserts the shared [`rampart_core::Identity`] into the request extensions, where the rate
//! limiter, the cache and your handler read it; otherwise it answers 401 with an RFC 6750
//! challenge and a problem+json body that never says which part of the credential was wrong.
//! [`RequireRoleLayer`] and [`RequireScopeLayer`] then authorize per route (403).
//!
//! Compared with `jwt-authorizer` or tower-http's bearer check: keys are parsed once at
//! start-up and bound to one algorithm each, several issuers can be trusted at once with their
//! own keys, JWKS URLs refresh in the background with single-flight, rate-limited refreshes on
//! unknown `kid`s, ES512 is supported, and API keys (checksummed, hashed, revocable, shared
//! through Redis) sit behind the same layer.
//!
//! ```
//! use std::sync::Arc;
//! use rampart_auth::{
//!     AuthConfig, AuthLayer, Authenticator, KeyHasher, RequireRoleLayer, backend::memory::MemoryKeyStore,
//! };
//! use tower::ServiceBuilder;
//!
//! let hasher = KeyHasher::sha256();
//! let store = Arc::new(MemoryKeyStore::new());
//! let authenticator = Authenticator::new(&AuthConfig::default(), hasher, Some(store), None)?;
//! let service = ServiceBuilder::new()
//!     .layer(AuthLayer::new(Arc::new(authenticator)))
//!     .layer(RequireRoleLayer::any_of(["admin"])?)
//!     .service_fn(|_request: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
//!     });
//! # drop(service);
//! # Ok::<(), rampart_auth::AuthError>(())
//! ```

pub mod apikey;
mod authenticator;
pub mod backend;
mod config;
mod error;
mod future;
pub mod jwt;
mod layer;
mod require;
mod response;
mod service;

pub use apikey::{KeyHasher, KeyRecord, NewKey};
pub use authenticator::{Authenticator, Method, Outcome, Rejection};
pub use config::{ApiKeyConfig, AuthConfig, StoreKind};
pub use error::AuthError;
pub use future::{RequireFuture, ResponseFuture};
pub use layer::AuthLayer;
pub use require::{Require, RequireRoleLayer, RequireScopeLayer};
pub use service::Auth;
