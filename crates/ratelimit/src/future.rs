//! The response future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use pin_project_lite::pin_project;
use rampart_core::ResponseBody;
use tower_service::Service;

use crate::response::Action;

type Deciding = Pin<Box<dyn Future<Output = Action> + Send>>;

pin_project! {
    /// The future of [`RateLimit`](crate::RateLimit): a decision (for remote backends), then
    /// the inner call or a refusal.
    pub struct ResponseFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        Deciding {
            decide: Deciding,
            inner: Option<S>,
            request: Option<Request<ReqB>>,
        },
        Calling {
            #[pin]
            future: S::Future,
            headers: HeaderMap,
        },
        Refused {
            response: Option<Response<Full<Bytes>>>,
        },
    }
}

impl<S, ReqB> std::fmt::Debug for ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, ReqB> ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(crate) fn deciding(decide: Deciding, inner: S, request: Request<ReqB>) -> Self {
        Self {
            state: State::Deciding {
                decide,
                inner: Some(inner),
                request: Some(request),
            },
        }
    }

    pub(crate) fn calling(future: S::Future, headers: HeaderMap) -> Self {
        Self {
            state: State::Calling { future, headers },
        }
    }

    pub(crate) fn refused(response: Response<Full<Bytes>>) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Output = Result<Response<ResponseBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Deciding {
                    decide,
                    inner,
                    request,
                } => {
                    let action = ready!(decide.as_mut().poll(cx));
                    let next = match (action, inner.take(), request.take()) {
                        (Action::Pass(headers), Some(mut inner), Some(request)) => State::Calling {
                            future: inner.call(request),
                            headers,
                        },
                        (Action::Refuse(response), _, _) => State::Refused {
                            response: Some(response),
                        },
                        // Polled again after the decision was taken: nothing is left to do.
                        _ => panic!("rate limit future polled after completion"),
                    };
                    state.set(next);
                }
                StateProj::Calling { future, headers } => {
                    let mut response = ready!(future.poll(cx))?;
                    response.headers_mut().extend(headers.drain());
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("rate limit future polled after completion");
                    return Poll::Ready(Ok(response.map(|body| ResponseBody::Local { body })));
                }
            }
        }
    }
}
