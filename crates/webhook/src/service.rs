//! The services the layers build.

use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use rampart_core::{BoxError, RequestId, ResponseBody, RouteName};
use tower_service::Service;

use crate::body::Collect;
use crate::future::{ResponseFuture, SignResponseFuture};
use crate::layer::{Shared, SignWebhookLayer};

/// Verifies a webhook, then calls `inner` with its body buffered. Built by
/// [`crate::VerifyWebhookLayer`].
#[derive(Debug, Clone)]
pub struct VerifyWebhook<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> VerifyWebhook<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self { inner, shared }
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
}

impl<S, B, R> Service<Request<B>> for VerifyWebhook<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>> + Clone,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<R>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = route_label(&request);
        let request_id = request.extensions().get::<RequestId>().cloned();
        let now = self.shared.clock.unix_seconds();

        let (parts, body) = request.into_parts();
        let checked = self
            .shared
            .verifier
            .check_headers(&parts.headers, now)
            .and_then(|pending| {
                self.shared.body.check_announced(&body)?;
                Ok(pending)
            });

        match checked {
            Ok(pending) => {
                // The ready service goes into the future; a fresh clone stays for the next call.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let collect = Collect::new(body, self.shared.body);
                ResponseFuture::collecting(
                    collect,
                    pending,
                    inner,
                    parts,
                    self.shared.clone(),
                    route,
                    request_id,
                    now,
                )
            }
            Err(err) => ResponseFuture::refused(&err, self.shared.clone(), route, request_id),
        }
    }
}

/// The `route` label; a request outside the gateway has no [`RouteName`], and its label is
/// shared rather than allocated per request.
fn route_label<B>(request: &Request<B>) -> Arc<str> {
    static UNKNOWN: OnceLock<Arc<str>> = OnceLock::new();
    if request.extensions().get::<RouteName>().is_some() {
        return RouteName::label_of(request);
    }
    UNKNOWN.get_or_init(|| Arc::from("unknown")).clone()
}

/// Signs a request, then calls `inner` with its body buffered. Built by
/// [`crate::SignWebhookLayer`].
#[derive(Debug, Clone)]
pub struct SignWebhook<S> {
    inner: S,
    layer: SignWebhookLayer,
}

impl<S> SignWebhook<S> {
    pub(crate) fn new(inner: S, layer: SignWebhookLayer) -> Self {
        Self { inner, layer }
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
}

impl<S, B, R> Service<Request<B>> for SignWebhook<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>> + Clone,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<R>>;
    type Error = S::Error;
    type Future = SignResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limits = self.layer.body;
        let (parts, body) = request.into_parts();
        if let Err(err) = limits.check_announced(&body) {
            return SignResponseFuture::refused(&err);
        }
        // The ready service goes into the future; a fresh clone stays for the next call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        SignResponseFuture::collecting(Collect::new(body, limits), inner, parts, self.layer.clone())
    }
}
