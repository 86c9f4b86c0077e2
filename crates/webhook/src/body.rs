//! Buffering a request body up to a size and a time limit.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;
use rampart_core::BoxError;
use tokio::time::Sleep;

use crate::error::WebhookError;

/// How much of a body a layer buffers, and how long it waits for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}

impl BodyLimits {
    pub(crate) fn new(max_bytes: usize, timeout: Duration) -> Result<Self, WebhookError> {
        if max_bytes == 0 {
            return Err(WebhookError::config("max_body_bytes", "must be at least 1"));
        }
        if timeout.is_zero() {
            return Err(WebhookError::config("body_timeout", "must be positive"));
        }
        Ok(Self { max_bytes, timeout })
    }

    /// Refuses at once a body that announces (by `Content-Length`) more than the limit,
    /// before a byte of it is read.
    pub(crate) fn check_announced<B: Body>(&self, body: &B) -> Result<(), WebhookError> {
        let announced = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
        if announced > self.max_bytes {
            return Err(WebhookError::TooLarge {
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

pin_project! {
    /// Reads a body to its end, failing as soon as it passes the size limit, or when the
    /// rest of it has not come within the time limit.
    ///
    /// A body that arrives in one frame is kept as that frame's `Bytes`, without a copy, and
    /// costs no timer: the deadline is armed the first time the body makes us wait, so it
    /// runs from then (and needs tokio's timer, as the replay store's deadlines do).
    /// Limitation: trailers are dropped; webhook senders do not send them.
    #[derive(Debug)]
    pub(crate) struct Collect<B> {
        #[pin]
        body: B,
        first: Option<Bytes>,
        rest: BytesMut,
        len: usize,
        limits: BodyLimits,
        // Boxed: rarely armed, and it would otherwise make every request's future larger.
        deadline: Option<Pin<Box<Sleep>>>,
    }
}

impl<B> Collect<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B, limits: BodyLimits) -> Self {
        Self {
            body,
            first: None,
            rest: BytesMut::new(),
            len: 0,
            limits,
            deadline: None,
        }
    }

    pub(crate) fn poll_collect(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, WebhookError>> {
        let mut this = self.project();
        loop {
            let frame = match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    let timeout = this.limits.timeout;
                    let deadline = this
                        .deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    ready!(deadline.as_mut().poll(cx));
                    return Poll::Ready(Err(WebhookError::BodyTimeout { after: timeout }));
                }
            };
            let Some(frame) = frame else {
                let body = match this.first.take() {
                    Some(first) => first,
                    None => std::mem::take(this.rest).freeze(),
                };
                return Poll::Ready(Ok(body));
            };
            let frame = frame.map_err(|err| WebhookError::Body(err.into()))?;
            let Ok(mut data) = frame.into_data() else {
                continue;
            };

            let size = data.remaining();
            let limit = this.limits.max_bytes;
            if size > limit - *this.len {
                return Poll::Ready(Err(WebhookError::TooLarge { limit }));
            }
            *this.len += size;
            let chunk = data.copy_to_bytes(size);
            if this.first.is_none() && this.rest.is_empty() {
                *this.first = Some(chunk);
            } else {
                if let Some(first) = this.first.take() {
                    this.rest.reserve(*this.len);
                    this.rest.extend_from_slice(&first);
                }
                this.rest.extend_from_slice(&chunk);
            }
        }
    }
}
