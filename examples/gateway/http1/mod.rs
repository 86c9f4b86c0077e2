//! HTTP/1.1 spoken by the gateway itself, on both sides of the proxy.
//!
//! A reverse proxy in front of small agent calls spends most of its own time on the HTTP/1.1
//! machinery around each request. hyper is general: a server and a client that each run a
//! connection task, hand requests and responses to it through channels, and drive several
//! layers of boxed futures. Here one task serves a client connection and makes its requests'
//! upstream exchanges itself, with a codec that parses heads with `httparse` and frames bodies
//! strictly (see `framing`). HTTP/2 stays with hyper on both sides.

pub(crate) mod client;
pub(crate) mod framing;
pub(crate) mod server;
