//! Buffering a request body up to a limit.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;
use rampart_core::BoxError;

use crate::error::WebhookError;

pin_project! {
    /// Reads a body to its end, failing as soon as it passes `limit` bytes.
    ///
    /// A body that arrives in one frame is kept as that frame's `Bytes`, without a copy.
    /// Limitation: trailers are dropped; webhook senders do not send them. The read has no
    /// deadline of its own: the server's read timeout bounds a body that trickles in.
    #[derive(Debug)]
    pub(crate) struct Collect<B> {
        #[pin]
        body: B,
        first: Option<Bytes>,
        rest: BytesMut,
        len: usize,
        limit: usize,
    }
}

impl<B> Collect<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B, limit: usize) -> Self {
        Self {
            body,
            first: None,
            rest: BytesMut::new(),
            len: 0,
            limit,
        }
    }

    pub(crate) fn poll_collect(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, WebhookError>> {
        let mut this = self.project();
        loop {
            let Some(frame) = ready!(this.body.as_mut().poll_frame(cx)) else {
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
            if size > *this.limit - *this.len {
                return Poll::Ready(Err(WebhookError::TooLarge { limit: *this.limit }));
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

/// Whether the body announces (by `Content-Length`) more than `limit` bytes.
pub(crate) fn announced_too_large<B: Body>(body: &B, limit: usize) -> bool {
    usize::try_from(body.size_hint().lower()).map_or(true, |lower| lower > limit)
}
