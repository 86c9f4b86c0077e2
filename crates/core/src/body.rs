//! The body of a layer's response: the inner service's, or one the layer wrote itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use pin_project_lite::pin_project;

use crate::Problem;

pin_project! {
    /// Either the inner service's body or a small local one (a problem document).
    ///
    /// A layer that sometimes answers by itself (401, 429, 503) returns this instead of boxing
    /// every body, so the pass-through path costs nothing extra.
    #[project = ResponseBodyProj]
    #[derive(Debug)]
    // pin-project-lite accepts no doc comments on variant fields.
    #[allow(missing_docs)]
    pub enum ResponseBody<B> {
        /// The inner service's body, passed through.
        Inner {
            #[pin]
            body: B,
        },
        /// A body the layer produced.
        Local {
            #[pin]
            body: Full<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        Self::Inner { body }
    }

    /// A body of the given bytes.
    pub fn local(bytes: impl Into<Bytes>) -> Self {
        Self::Local {
            body: Full::new(bytes.into()),
        }
    }

    /// A problem response with this body type.
    pub fn problem(problem: Problem) -> http::Response<Self> {
        problem.into_response().map(|body| Self::Local { body })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
            ResponseBodyProj::Local { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Local { body } => body.size_hint(),
        }
    }
}
