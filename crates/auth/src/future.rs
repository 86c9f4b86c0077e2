//! The response future of [`crate::Auth`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::future::BoxFuture;
use http::{Request, Response};
use pin_project_lite::pin_project;
use rampart_core::ResponseBody;
use tower_service::Service;

type Verdict<B, ResBody> = Result<Request<B>, Response<ResponseBody<ResBody>>>;

pin_project! {
    /// Authenticates, then calls the inner service or answers the refusal.
    pub struct ResponseFuture<S, B, ResBody>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, ResBody>
    where
        S: Service<Request<B>>,
    {
        Checking {
            check: BoxFuture<'static, Verdict<B, ResBody>>,
            inner: Option<S>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, B, ResBody> ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>>,
{
    pub(crate) fn new(check: BoxFuture<'static, Verdict<B, ResBody>>, inner: S) -> Self {
        Self {
            state: State::Checking {
                check,
                inner: Some(inner),
            },
        }
    }
}

impl<S, B, ResBody> std::fmt::Debug for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B, ResBody>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { check, inner } => {
                    let verdict = ready!(check.as_mut().poll(cx));
                    match verdict {
                        Ok(request) => {
                            let Some(mut inner) = inner.take() else {
                                // Polled again after the hand-over: cannot happen through `State`.
                                return Poll::Pending;
                            };
                            let future = inner.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(refusal) => return Poll::Ready(Ok(refusal)),
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
            }
        }
    }
}

pin_project! {
    /// The inner service's response, or a refusal decided in `call`.
    #[project = RequireProj]
    #[derive(Debug)]
    // pin-project-lite accepts no doc comments on variant fields.
    #[allow(missing_docs)]
    pub enum RequireFuture<F, ResBody> {
        /// The request was allowed.
        Called {
            #[pin]
            future: F,
        },
        /// The request was refused.
        Refused {
            response: Option<Response<ResponseBody<ResBody>>>,
        },
    }
}

impl<F, ResBody> RequireFuture<F, ResBody> {
    pub(crate) fn called(future: F) -> Self {
        Self::Called { future }
    }

    pub(crate) fn refused(response: Response<ResponseBody<ResBody>>) -> Self {
        Self::Refused {
            response: Some(response),
        }
    }
}

impl<F, ResBody, E> Future for RequireFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResponseBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RequireProj::Called { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(ResponseBody::inner)))
            }
            RequireProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                // Polled after completion; futures need not answer sensibly then.
                None => Poll::Pending,
            },
        }
    }
}
