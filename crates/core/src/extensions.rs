//! Small request extensions that the server (or the gateway) sets and layers read.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;

/// The address of the TCP peer that sent the request.
///
/// Servers insert it when they accept a connection; [`crate::TrustedProxies`] starts from it.
/// axum users can copy it from `ConnectInfo<SocketAddr>` with a one-line `map_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The request's correlation id, as received in `X-Request-Id` or generated at the edge.
///
/// Layers include it in every `tracing` event about a refused request so that an operator can
/// find the client's report in the logs. It is kept as the header value it travels in, so
/// that a server can read it from a request and send it on (upstream, and back on the
/// response) without copying it: a clone shares the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// Wraps an id generated locally or taken from anywhere but a header field. Characters a
    /// header field cannot carry (control characters, non-ASCII) are replaced by `_`, since
    /// the id is meant to be sent on.
    pub fn new(id: &str) -> Self {
        let visible: String = id
            .chars()
            .map(|c| {
                if c == ' ' || c.is_ascii_graphic() {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        match HeaderValue::from_str(&visible) {
            Ok(value) => Self(value),
            // Unreachable: only visible ASCII and spaces are left.
            Err(_) => Self(HeaderValue::from_static("_")),
        }
    }

    /// The id a header field carries, sharing its bytes; `None` when the value is not
    /// visible ASCII (spaces included) and so cannot be read as text.
    pub fn from_header(value: HeaderValue) -> Option<Self> {
        value.to_str().is_ok().then_some(Self(value))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Both constructors admit only values that read as text.
        self.0.to_str().unwrap_or_default()
    }

    /// The id as the header value it is sent in.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_id_from_text_can_always_be_sent_in_a_header() {
        // Control characters and non-ASCII would make an invalid header value: replaced.
        let id = RequestId::new("job 7\r\nX-Evil: 1\u{e9}");
        assert_eq!(id.as_str(), "job 7__X-Evil: 1_");
        assert_eq!(id.header_value(), "job 7__X-Evil: 1_");
    }

    #[test]
    fn a_request_id_from_a_header_shares_its_bytes() {
        let value = HeaderValue::from_maybe_shared(bytes::Bytes::from_static(b"abc-123"))
            .expect("a valid header value");
        let id = RequestId::from_header(value.clone()).expect("visible ASCII");
        assert_eq!(id.as_str(), "abc-123");
        assert_eq!(id.to_string(), "abc-123");
        // The same bytes, not a copy.
        assert_eq!(
            id.header_value().as_bytes().as_ptr(),
            value.as_bytes().as_ptr()
        );
    }

    #[test]
    fn a_header_value_that_is_not_text_is_no_request_id() {
        let value = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value");
        assert!(RequestId::from_header(value).is_none());
    }
}
