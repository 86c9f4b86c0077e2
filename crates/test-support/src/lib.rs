//! Real services for tests, cheap enough to start one per test.
//!
//! Rampart's tests talk to real servers over real sockets, never to mocks:
//!
//! - [`RedisServer`]: a private `redis-server` on a free loopback port, which a test can stop
//!   and restart to see how a layer behaves while Redis is away;
//! - [`RedisCluster`]: three `redis-server` nodes joined into a Redis Cluster;
//! - [`TestDatabase`]: a PostgreSQL database of the test's own, dropped afterwards;
//! - [`Upstream`]: a hyper server on loopback with scripted behaviour (echo, fixed status,
//!   delay, fail N times, cut the connection mid-response, slow or huge bodies).
//!
//! A service that cannot be found is a test failure whose message says how to install it.

mod postgres;
mod redis;
mod upstream;

pub use crate::postgres::TestDatabase;
pub use crate::redis::{RedisCluster, RedisServer};
pub use crate::upstream::{Behavior, SeenRequest, Upstream, UpstreamBody, fixed};

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("binding an ephemeral loopback port")
}
