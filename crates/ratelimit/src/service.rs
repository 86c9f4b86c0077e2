//! The tower service.

use std::task::{Context, Poll};

use http::{Request, Response};
use rampart_core::{RequestId, ResponseBody, RouteName};
use tower_service::Service;

use crate::future::ResponseFuture;
use crate::response::{Action, conclude};
use crate::{Outcome, RateLimiter};

/// Decides each request against the limiter's quotas before calling the inner service.
///
/// Allowed requests go to the inner service and its response gains the quota headers;
/// refused ones are answered with 429, `Retry-After` and a problem+json body. With an
/// in-memory backend the decision is made inside `call`; with Redis it is awaited in the
/// response future. See [`RateLimitLayer`](crate::RateLimitLayer).
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        Self { inner, limiter }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RateLimit<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    ReqB: Send + 'static,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let key = self.limiter.key_of(&request);
        let cost = self.limiter.cost_of(&request);
        let route = RouteName::label_of(&request);
        let request_id = request.extensions().get::<RequestId>().cloned();

        // In memory: decide here and now, with no allocation for a future.
        if let Some(decision) = self.limiter.check_now(&key, cost) {
            let outcome = Outcome::Decided(decision);
            return match conclude(&self.limiter, outcome, &route, request_id.as_ref()) {
                Action::Pass(headers) => ResponseFuture::calling(self.inner.call(request), headers),
                Action::Refuse(response) => ResponseFuture::refused(response),
            };
        }

        // The ready service is the one that must be called; the clone stays for later calls.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        let decide = Box::pin(async move {
            let outcome = limiter.check(&key, cost).await;
            conclude(&limiter, outcome, &route, request_id.as_ref())
        });
        ResponseFuture::deciding(decide, inner, request)
    }
}
