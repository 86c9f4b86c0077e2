//! The upstream side: HTTP/1.1 requests written and responses read by our own codec, inside
//! the task of the request that needs them.
//!
//! hyper's client drives each connection from a task of its own and passes every request and
//! response through channels to it. Here the request's task writes the request and reads the
//! response itself. While the response head is awaited the request body keeps flowing, and
//! what is left of it after the head flows while the response body is read, so an upstream
//! that answers as it reads (an echo, a stream) never waits on us.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::framing::{
    self, BodyError, Decoded, Decoder, Encoder, Framing, HeadError, ResponseHead,
};
use super::{LazyDeadline, READ_CHUNK, WRITE_BUFFER};
use crate::GatewayBody;
use crate::pool::ConnectionPool;
use crate::proxy::AddedFields;

/// One open HTTP/1.1 connection to an upstream, between requests.
#[derive(Debug)]
pub(crate) struct UpstreamConnection {
    stream: TcpStream,
    buf: BytesMut,
    eof: bool,
    /// The deadline of the response head being waited for.
    response_deadline: LazyDeadline,
}

impl UpstreamConnection {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            eof: false,
            response_deadline: LazyDeadline::default(),
        }
    }

    /// Whether the upstream has closed this idle connection, or sent bytes nobody asked for,
    /// as far as the event loop has seen. Upstreams close idle connections on timeouts of
    /// their own; a request sent on one would fail, and only some requests may be sent twice.
    pub(crate) fn is_stale(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            // Nothing arrived since the last response was read: the usual case, no syscall.
            Poll::Pending => false,
            Poll::Ready(Err(_)) => true,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                !matches!(
                    self.stream.try_read(&mut probe),
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock
                )
            }
        }
    }

    /// Reads more bytes into `buf`; `Ready(Ok(false))` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        super::poll_fill(&mut self.stream, &mut self.buf, &mut self.eof, cx)
    }

    /// The next piece of the response body that `decoder` reads.
    fn poll_body(
        &mut self,
        decoder: &mut Decoder,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Decoded, BodyError>> {
        super::poll_decode(decoder, &mut self.stream, &mut self.buf, &mut self.eof, cx)
    }
}

/// Why an exchange with the upstream failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The upstream closed the connection before a whole response head.
    #[error("the upstream closed the connection before answering")]
    Closed { answered_nothing: bool },
    /// Reading or writing the socket failed.
    #[error("talking to the upstream failed")]
    Io {
        answered_nothing: bool,
        #[source]
        source: std::io::Error,
    },
    /// The upstream's answer is not one we can pass on.
    #[error("the upstream's response head is refused")]
    Malformed(#[source] HeadError),
    /// No response head by the request's deadline.
    #[error("the upstream did not answer in time")]
    TimedOut,
    /// The client's request body failed while it was being sent (malformed or cut short).
    #[error("the client's request body failed")]
    ClientBody(#[source] rampart_core::BoxError),
}

impl ExchangeError {
    /// Whether the upstream closed or reset the connection without a byte of an answer: on a
    /// reused connection, it had closed the idle connection as the request was sent.
    pub(crate) fn answered_nothing(&self) -> bool {
        matches!(
            self,
            Self::Closed {
                answered_nothing: true
            } | Self::Io {
                answered_nothing: true,
                ..
            }
        )
    }
}

/// A request on its way to the upstream: its head, encoded once, then its body as it comes.
pub(crate) struct Outgoing {
    method: Method,
    /// Encoded bytes not yet written, from `written` on.
    out: Vec<u8>,
    written: usize,
    body: GatewayBody,
    framing: Framing,
    encoder: Encoder,
    body_ended: bool,
    /// Set once writing failed: nothing more is sent, the response may still be read.
    failed: Option<std::io::Error>,
}

impl Outgoing {
    /// Encodes the head of `parts` (target in origin form) with the `added` fields after
    /// its own, and frames `body` for the wire.
    pub(crate) fn new(
        mut parts: http::request::Parts,
        added: &AddedFields,
        body: GatewayBody,
    ) -> Self {
        let framing = if body.is_end_stream() {
            Framing::Empty
        } else if let Some(length) = body.size_hint().exact() {
            parts.headers.insert(header::CONTENT_LENGTH, length.into());
            Framing::Length(length)
        } else {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
            Framing::Chunked
        };

        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |target| target.as_str());
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        framing::encode_fields(&parts.headers, &mut out);
        framing::encode_fields(added.iter(), &mut out);
        out.extend_from_slice(b"\r\n");
        Self {
            method: parts.method,
            out,
            written: 0,
            body,
            body_ended: framing == Framing::Empty,
            framing,
            encoder: Encoder::new(framing),
            failed: None,
        }
    }

    /// Whether the request can be sent again from the start on another connection: it has no
    /// body, so its bytes are all still here, and its method allows a second delivery.
    pub(crate) fn replayable(&self) -> bool {
        self.framing == Framing::Empty && self.method.is_idempotent()
    }

    /// Rewinds a [`Self::replayable`] request to its first byte.
    pub(crate) fn rewind(&mut self) {
        self.written = 0;
        self.failed = None;
    }

    fn is_sent(&self) -> bool {
        self.failed.is_some() || (self.body_ended && self.written == self.out.len())
    }

    /// Writes what can be written now; `Ready(Ok)` once the whole request is out or writing
    /// failed (see `failed`), `Err` only for a failing client body.
    fn poll_send(
        &mut self,
        stream: &mut TcpStream,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ExchangeError>> {
        loop {
            if self.is_sent() {
                return Poll::Ready(Ok(()));
            }
            let body_pending = self.gather(cx)?;
            if self.written == self.out.len() {
                if body_pending {
                    return Poll::Pending;
                }
                continue;
            }
            match Pin::new(&mut *stream).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    self.failed = Some(std::io::ErrorKind::WriteZero.into());
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    // A replayable request keeps its bytes; others free the room for more body.
                    if self.written == self.out.len() && self.framing != Framing::Empty {
                        self.out.clear();
                        self.written = 0;
                    }
                }
                Poll::Ready(Err(err)) => self.failed = Some(err),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Takes body frames that are ready into `out`, up to a write's worth; whether the body
    /// has more to give later.
    fn gather(&mut self, cx: &mut Context<'_>) -> Result<bool, ExchangeError> {
        while !self.body_ended && self.out.len() - self.written < WRITE_BUFFER {
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Ok(true),
                Poll::Ready(frame) => frame,
            };
            let Some(frame) = frame else {
                self.body_ended = true;
                self.encoder
                    .finish(&mut self.out)
                    .map_err(|mismatch| ExchangeError::ClientBody(mismatch.into()))?;
                break;
            };
            let frame = frame.map_err(ExchangeError::ClientBody)?;
            let Ok(data) = frame.into_data() else {
                // Trailers are not sent upstream.
                continue;
            };
            self.encoder
                .encode(&data, &mut self.out)
                .map_err(|mismatch| ExchangeError::ClientBody(mismatch.into()))?;
        }
        Ok(false)
    }
}

/// Sends `outgoing` on `connection` and reads the response head by `deadline`, sending the
/// request body meanwhile as far as the upstream takes it.
pub(crate) async fn exchange(
    connection: &mut UpstreamConnection,
    outgoing: &mut Outgoing,
    deadline: Instant,
) -> Result<ResponseHead, ExchangeError> {
    let mut received_any = !connection.buf.is_empty();
    poll_fn(|cx| {
        if let Poll::Ready(Err(err)) = outgoing.poll_send(&mut connection.stream, cx) {
            return Poll::Ready(Err(err));
        }
        loop {
            if received_any {
                match framing::parse_response(&mut connection.buf, &outgoing.method) {
                    Ok(Some(head)) => return Poll::Ready(Ok(head)),
                    Ok(None) => {}
                    Err(err) => return Poll::Ready(Err(ExchangeError::Malformed(err))),
                }
            }
            let answered_nothing = !received_any;
            let filled = match connection.poll_fill(cx) {
                Poll::Ready(filled) => filled,
                Poll::Pending => {
                    return match connection.response_deadline.poll_expired(cx, deadline) {
                        Poll::Ready(()) => Poll::Ready(Err(ExchangeError::TimedOut)),
                        Poll::Pending => Poll::Pending,
                    };
                }
            };
            match filled {
                Ok(true) => received_any = true,
                Ok(false) => {
                    return Poll::Ready(Err(match outgoing.failed.take() {
                        Some(source) => ExchangeError::Io {
                            answered_nothing,
                            source,
                        },
                        None => ExchangeError::Closed { answered_nothing },
                    }));
                }
                Err(source) => {
                    return Poll::Ready(Err(ExchangeError::Io {
                        answered_nothing,
                        source,
                    }));
                }
            }
        }
    })
    .await
}

/// The response whose head `exchange` read, its body still to come from `connection`.
pub(crate) fn response(
    head: ResponseHead,
    mut connection: UpstreamConnection,
    outgoing: Outgoing,
    pool: &Arc<ConnectionPool>,
) -> Response<GatewayBody> {
    let ResponseHead {
        parts,
        framing,
        reusable,
    } = head;
    let request_sent = outgoing.is_sent() && outgoing.failed.is_none();
    let reusable = reusable && outgoing.failed.is_none();

    // A small body is usually in the buffer with its head already: answer it whole and give
    // the connection back at once.
    let whole = match framing {
        _ if !request_sent => None,
        Framing::Empty => Some(Bytes::new()),
        Framing::Length(length) if length <= connection.buf.len() as u64 => usize::try_from(length)
            .ok()
            .map(|length| connection.buf.split_to(length).freeze()),
        _ => None,
    };
    if let Some(body) = whole {
        if reusable && connection.buf.is_empty() {
            pool.checkin(connection);
        }
        let body = if body.is_empty() {
            GatewayBody::default()
        } else {
            http_body_util::Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        };
        return Response::from_parts(parts, body);
    }

    let body = UpstreamBody {
        decoder: Decoder::new(framing),
        connection: Some(connection),
        outgoing: (!request_sent).then_some(outgoing),
        reusable,
        pool: Arc::downgrade(pool),
    };
    Response::from_parts(parts, crate::box_body(body))
}

/// An upstream response body being read from its connection, which goes back to the pool
/// once the body (and the request's) have been read to the end.
struct UpstreamBody {
    decoder: Decoder,
    connection: Option<UpstreamConnection>,
    /// The rest of the request, when the upstream answered before taking all of it.
    outgoing: Option<Outgoing>,
    reusable: bool,
    pool: Weak<ConnectionPool>,
}

impl UpstreamBody {
    /// The body is read: the connection goes back to the pool if it can carry another request.
    fn finish(&mut self) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.reusable
            && self.outgoing.is_none()
            && connection.buf.is_empty()
            && let Some(pool) = self.pool.upgrade()
        {
            pool.checkin(connection);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = rampart_core::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(connection) = this.connection.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(outgoing) = this.outgoing.as_mut() {
            match outgoing.poll_send(&mut connection.stream, cx) {
                Poll::Ready(Ok(())) if outgoing.failed.is_none() => this.outgoing = None,
                // The upstream stopped taking the request: its answer stands, the connection
                // does not.
                Poll::Ready(_) => {
                    this.reusable = false;
                    this.outgoing = None;
                }
                Poll::Pending => {}
            }
        }
        match std::task::ready!(connection.poll_body(&mut this.decoder, cx)) {
            Ok(Decoded::Data(data)) => {
                if this.decoder.is_done() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Ok(Decoded::End | Decoded::NeedMore) => {
                this.finish();
                Poll::Ready(None)
            }
            Err(err) => {
                this.connection = None;
                Poll::Ready(Some(Err(err.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.decoder
            .remaining()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
