//! Small request extensions that the server (or the gateway) sets and layers read.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The address of the TCP peer that sent the request.
///
/// Servers insert it when they accept a connection; [`crate::TrustedProxies`] starts from it.
/// axum users can copy it from `ConnectInfo<SocketAddr>` with a one-line `map_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The request's correlation id, as received in `X-Request-Id` or generated at the edge.
///
/// Layers include it in every `tracing` event about a refused request so that an operator can
/// find the client's report in the logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// Wraps an id received from a client or generated locally.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of the configured route that matched the request.
///
/// Used as the `route` label of metrics: a bounded set chosen by the operator, unlike the raw
/// path, which a client controls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteName(Arc<str>);

impl RouteName {
    /// Wraps a configured route name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The route label for a request: its [`RouteName`] extension, or `"unknown"`.
    pub fn label_of<B>(request: &http::Request<B>) -> Arc<str> {
        request
            .extensions()
            .get::<RouteName>()
            .map_or_else(|| Arc::from("unknown"), |route| route.0.clone())
    }
}

impl fmt::Display for RouteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
