//! The tower layer.

use tower_layer::Layer;

use crate::{RateLimit, RateLimiter};

/// Applies a [`RateLimiter`] to every request of the wrapped service.
///
/// The layer sheds load rather than pushing back: `poll_ready` only forwards to the inner
/// service, and a request over its quota is answered at once with 429, never queued.
///
/// ```
/// use rampart_ratelimit::{RateLimitConfig, RateLimitLayer, RateLimiter};
/// use tower::ServiceBuilder;
///
/// let limiter = RateLimiter::memory(&RateLimitConfig::with_quotas(["200/day", "50/hour"]))
///     .unwrap();
/// let service = ServiceBuilder::new()
///     .layer(RateLimitLayer::new(limiter))
///     .service_fn(|_request: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
///     });
/// # drop(service);
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer deciding with `limiter`; build the limiter with [`RateLimiter::new`], which
    /// checks the configuration.
    pub fn new(limiter: RateLimiter) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.limiter.clone())
    }
}
