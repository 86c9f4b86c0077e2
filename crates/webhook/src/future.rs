//! The response futures of the two services.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use rampart_core::{BoxError, Problem, RequestId, ResponseBody};
use tokio::time::Timeout;
use tower_service::Service;

use crate::backend::StoreFuture;
use crate::body::Collect;
use crate::config::StoreErrorPolicy;
use crate::error::{Outcome, WebhookError};
use crate::layer::{Shared, SignWebhookLayer};
use crate::problem::problem_for;
use crate::verify::{Pending, VerifiedWebhook};

pin_project! {
    #[project = StateProj]
    enum State<B, F> {
        // Answered without the inner service.
        Refused { problem: Option<Problem> },
        // Reading the body.
        Collecting { #[pin] collect: Collect<B> },
        // Asking the replay store whether the id is new.
        Storing { #[pin] lookup: Timeout<StoreFuture<bool>> },
        // Waiting for the inner service.
        Calling { #[pin] future: F },
        // The inner service failed: forgetting the id so the sender's retry is not a replay.
        Forgetting { #[pin] forget: Timeout<StoreFuture<()>> },
    }
}

impl<B, F> State<B, F> {
    fn name(&self) -> &'static str {
        match self {
            Self::Refused { .. } => "refused",
            Self::Collecting { .. } => "collecting",
            Self::Storing { .. } => "storing",
            Self::Calling { .. } => "calling",
            Self::Forgetting { .. } => "forgetting",
        }
    }
}

pin_project! {
    /// The response future of [`crate::VerifyWebhook`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        #[pin]
        state: State<B, S::Future>,
        ctx: Ctx<S>,
    }
}

/// Everything the verification future carries besides its state.
struct Ctx<S>
where
    S: Service<Request<Full<Bytes>>>,
{
    inner: Option<S>,
    parts: Option<Parts>,
    pending: Option<Pending>,
    body: Option<Bytes>,
    verified: Option<VerifiedWebhook>,
    replay_key: Option<String>,
    result: Option<Result<S::Response, S::Error>>,
    shared: Arc<Shared>,
    route: Arc<str>,
    request_id: Option<RequestId>,
    now: u64,
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("state", &self.state.name())
            .field("route", &self.ctx.route)
            .finish_non_exhaustive()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn collecting(
        collect: Collect<B>,
        pending: Pending,
        inner: S,
        parts: Parts,
        shared: Arc<Shared>,
        route: Arc<str>,
        request_id: Option<RequestId>,
        now: u64,
    ) -> Self {
        Self {
            state: State::Collecting { collect },
            ctx: Ctx {
                inner: Some(inner),
                parts: Some(parts),
                pending: Some(pending),
                body: None,
                verified: None,
                replay_key: None,
                result: None,
                shared,
                route,
                request_id,
                now,
            },
        }
    }

    pub(crate) fn refused(
        err: &WebhookError,
        shared: Arc<Shared>,
        route: Arc<str>,
        request_id: Option<RequestId>,
    ) -> Self {
        let mut ctx = Ctx {
            inner: None,
            parts: None,
            pending: None,
            body: None,
            verified: None,
            replay_key: None,
            result: None,
            shared,
            route,
            request_id,
            now: 0,
        };
        let problem = ctx.refuse(err);
        Self {
            state: State::Refused {
                problem: Some(problem),
            },
            ctx,
        }
    }
}

impl<S> Ctx<S>
where
    S: Service<Request<Full<Bytes>>>,
{
    /// Counts, logs and renders a refusal.
    fn refuse(&mut self, err: &WebhookError) -> Problem {
        let outcome = err.outcome().unwrap_or(Outcome::Malformed);
        self.shared.record(&self.route, outcome);
        tracing::debug!(
            route = %self.route,
            request.id = self.request_id.as_ref().map(RequestId::as_str),
            webhook.scheme = self.shared.verifier.scheme().as_str(),
            webhook.outcome = outcome.as_str(),
            error = %err,
            "webhook refused"
        );
        problem_for(err).with_request_id(self.request_id.as_ref())
    }

    /// Hands the verified request to the inner service, counted under `outcome`.
    fn call<B>(&mut self, outcome: Outcome) -> State<B, S::Future> {
        let (Some(mut inner), Some(mut parts), Some(body)) =
            (self.inner.take(), self.parts.take(), self.body.take())
        else {
            unreachable!("the inner service is called once per request");
        };
        if let Some(verified) = self.verified.take() {
            parts.extensions.insert(verified);
        }
        self.shared.record(&self.route, outcome);
        let future = inner.call(Request::from_parts(parts, Full::new(body)));
        State::Calling { future }
    }

    /// How long the id must be remembered: until its timestamp leaves the tolerance window,
    /// or for the replay window when the scheme signs no timestamp.
    fn replay_ttl(&self, timestamp: Option<u64>, window: Duration, past: u64) -> Duration {
        match timestamp {
            Some(ts) => {
                let until = ts.saturating_add(past).saturating_add(1);
                Duration::from_secs(until.saturating_sub(self.now).max(1))
            }
            None => window,
        }
    }

    fn verified<B>(&mut self, body: Bytes, verified: VerifiedWebhook) -> State<B, S::Future> {
        self.body = Some(body);
        // Fields are borrowed one by one rather than through a clone of `shared`: one
        // reference count change less per request on an `Arc` every request of the route
        // shares.
        let lookup = match (&self.shared.replay, verified.replay_key()) {
            (Some(replay), Some(key)) => {
                let key = format!("{}:{key}", replay.namespace);
                let ttl =
                    self.replay_ttl(verified.timestamp(), replay.window, replay.tolerance_past);
                self.replay_key = Some(key.clone());
                Some(tokio::time::timeout(
                    replay.timeout,
                    replay.store.insert_new(key, ttl),
                ))
            }
            _ => None,
        };
        self.verified = Some(verified);
        match lookup {
            Some(lookup) => State::Storing { lookup },
            None => self.call(Outcome::Ok),
        }
    }

    fn stored<B>(&mut self, answer: Result<bool, WebhookError>) -> State<B, S::Future> {
        let shared = Arc::clone(&self.shared);
        let Some(replay) = &shared.replay else {
            return self.call(Outcome::Ok);
        };
        match answer {
            Ok(fresh) => {
                if replay.mark_up() {
                    tracing::info!(route = %self.route, "webhook replay store is answering again");
                }
                if fresh {
                    self.call(Outcome::Ok)
                } else {
                    // A replay must not release the id held by the first delivery.
                    self.replay_key = None;
                    let problem = self.refuse(&WebhookError::Replay);
                    State::Refused {
                        problem: Some(problem),
                    }
                }
            }
            Err(err) => {
                if replay.mark_down() {
                    tracing::warn!(
                        route = %self.route,
                        policy = ?replay.policy,
                        error = %err,
                        "webhook replay store is failing"
                    );
                }
                self.replay_key = None;
                match replay.policy {
                    StoreErrorPolicy::Accept => {
                        tracing::debug!(
                            route = %self.route,
                            request.id = self.request_id.as_ref().map(RequestId::as_str),
                            "webhook accepted without a replay check"
                        );
                        self.call(Outcome::Unchecked)
                    }
                    StoreErrorPolicy::Reject => {
                        let problem = self.refuse(&err);
                        State::Refused {
                            problem: Some(problem),
                        }
                    }
                }
            }
        }
    }
}

impl<S, B, R> Future for ResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<R>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let ctx = &mut *this.ctx;
            let next = match this.state.as_mut().project() {
                StateProj::Refused { problem } => {
                    let problem = problem.take().expect("polled after completion");
                    return Poll::Ready(Ok(ResponseBody::problem(problem)));
                }
                StateProj::Collecting { collect } => {
                    let checked = ready!(collect.poll_collect(cx)).and_then(|body| {
                        let pending = ctx.pending.take().expect("headers checked once");
                        let verified = ctx.shared.verifier.check_body(pending, &body)?;
                        Ok((body, verified))
                    });
                    match checked {
                        Ok((body, verified)) => ctx.verified(body, verified),
                        Err(err) => State::Refused {
                            problem: Some(ctx.refuse(&err)),
                        },
                    }
                }
                StateProj::Storing { lookup } => {
                    let answer = ready!(lookup.poll(cx)).unwrap_or_else(|_| {
                        Err(WebhookError::Store("replay store call timed out".into()))
                    });
                    ctx.stored(answer)
                }
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let failed = result
                        .as_ref()
                        .map_or(true, |response| !response.status().is_success());
                    match (failed, ctx.replay_key.take(), &ctx.shared.replay) {
                        (true, Some(key), Some(replay)) => {
                            ctx.result = Some(result);
                            State::Forgetting {
                                forget: tokio::time::timeout(
                                    replay.timeout,
                                    replay.store.forget(key),
                                ),
                            }
                        }
                        _ => return Poll::Ready(result.map(|r| r.map(ResponseBody::inner))),
                    }
                }
                StateProj::Forgetting { forget } => {
                    if !matches!(ready!(forget.poll(cx)), Ok(Ok(()))) {
                        // Limitation: the sender's retry of this delivery is then refused as
                        // a replay until the id expires.
                        tracing::debug!(
                            route = %ctx.route,
                            "could not forget the id of a failed webhook delivery"
                        );
                    }
                    let result = ctx.result.take().expect("the inner result is kept");
                    return Poll::Ready(result.map(|r| r.map(ResponseBody::inner)));
                }
            };
            this.state.set(next);
        }
    }
}

pin_project! {
    #[project = SignStateProj]
    enum SignState<B, F> {
        Refused { problem: Option<Problem> },
        Collecting { #[pin] collect: Collect<B> },
        Calling { #[pin] future: F },
    }
}

pin_project! {
    /// The response future of [`crate::SignWebhook`].
    pub struct SignResponseFuture<S, B>
    where
        S: Service<Request<Full<Bytes>>>,
    {
        #[pin]
        state: SignState<B, S::Future>,
        inner: Option<S>,
        parts: Option<Parts>,
        layer: Option<SignWebhookLayer>,
    }
}

impl<S, B> fmt::Debug for SignResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            SignState::Refused { .. } => "refused",
            SignState::Collecting { .. } => "collecting",
            SignState::Calling { .. } => "calling",
        };
        f.debug_struct("SignResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S, B> SignResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>>,
{
    pub(crate) fn collecting(
        collect: Collect<B>,
        inner: S,
        parts: Parts,
        layer: SignWebhookLayer,
    ) -> Self {
        Self {
            state: SignState::Collecting { collect },
            inner: Some(inner),
            parts: Some(parts),
            layer: Some(layer),
        }
    }

    pub(crate) fn refused(err: &WebhookError) -> Self {
        Self {
            state: SignState::Refused {
                problem: Some(sign_refusal(err)),
            },
            inner: None,
            parts: None,
            layer: None,
        }
    }
}

fn sign_refusal(err: &WebhookError) -> Problem {
    tracing::debug!(error = %err, "outbound webhook not signed");
    problem_for(err)
}

impl<S, B, R> Future for SignResponseFuture<S, B>
where
    S: Service<Request<Full<Bytes>>, Response = Response<R>>,
    B: Body,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<R>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                SignStateProj::Refused { problem } => {
                    let problem = problem.take().expect("polled after completion");
                    return Poll::Ready(Ok(ResponseBody::problem(problem)));
                }
                SignStateProj::Collecting { collect } => match ready!(collect.poll_collect(cx)) {
                    Err(err) => SignState::Refused {
                        problem: Some(sign_refusal(&err)),
                    },
                    Ok(body) => {
                        let (Some(mut inner), Some(mut parts), Some(layer)) =
                            (this.inner.take(), this.parts.take(), this.layer.take())
                        else {
                            unreachable!("the inner service is called once per request");
                        };
                        let signed = layer.signer.sign(&body, layer.clock.now());
                        signed.apply_to(&mut parts.headers);
                        let future = inner.call(Request::from_parts(parts, Full::new(body)));
                        SignState::Calling { future }
                    }
                },
                SignStateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            };
            this.state.set(next);
        }
    }
}
