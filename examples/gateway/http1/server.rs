//! The client side of the gateway: HTTP/1.1 connections served by our own codec, and HTTP/2
//! (prior knowledge) connections handed to hyper.
//!
//! One task serves one connection and runs each request's whole way through the gateway, the
//! upstream exchange included, so a request costs no hand-over between tasks. The read half
//! of the socket is shared, behind an uncontended lock, between the connection (which reads
//! request heads) and the request body of the moment (which reads what follows its head).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use rampart_core::Problem;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::framing::{self, BodyError, Decoded, Decoder, Encoder, Framing, HeadError, RequestHead};
use super::{LazyDeadline, READ_CHUNK, WRITE_BUFFER};
use crate::server::{Gateway, RouteServices};
use crate::{GatewayBody, problem_response};

/// How the first bytes of an HTTP/2 connection with prior knowledge begin.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0";
/// Most of an unread request body discarded after its response, so that the connection can
/// carry the next request; a larger rest closes the connection instead.
const MAX_DISCARD: u64 = 256 * 1024;

/// How long, and for how many bytes, a closing connection keeps reading (see `linger`).
const LINGER: Duration = Duration::from_secs(2);
const MAX_LINGER_BYTES: usize = 1024 * 1024;

/// One client connection, closed gracefully by [`Self::graceful_shutdown`].
pub(crate) struct ClientConnection {
    closing: Arc<AtomicBool>,
    serving: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl std::fmt::Debug for ClientConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConnection")
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}

impl ClientConnection {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        gateway: Arc<Gateway>,
        header_read_timeout: Duration,
    ) -> Self {
        let closing = Arc::new(AtomicBool::new(false));
        let serving = Box::pin(serve(
            stream,
            peer,
            gateway,
            header_read_timeout,
            closing.clone(),
        ));
        Self { closing, serving }
    }

    /// Lets the request in flight finish, then closes; an idle connection closes at once.
    pub(crate) fn graceful_shutdown(self: Pin<&mut Self>) {
        self.closing.store(true, Ordering::Release);
    }
}

impl Future for ClientConnection {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.serving.as_mut().poll(cx)
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    header_read_timeout: Duration,
    closing: Arc<AtomicBool>,
) {
    match speaks_http2(&stream, header_read_timeout).await {
        // Boxed: hyper's HTTP/2 connection state would otherwise sit in every HTTP/1.1
        // connection's future too.
        Ok(true) => Box::pin(serve_http2(stream, peer, gateway, &closing)).await,
        Ok(false) => {
            let mut connection = Http1Connection::new(stream, peer, header_read_timeout, closing);
            connection.serve(&gateway).await;
        }
        Err(err) => {
            tracing::debug!(client.addr = %peer, error = %err, "connection ended before its first request");
        }
    }
}

/// Whether the client opens with the HTTP/2 preface. Peeking leaves the bytes in the socket
/// for whichever protocol reads them.
async fn speaks_http2(stream: &TcpStream, timeout: Duration) -> std::io::Result<bool> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    let peek = async {
        let mut pause = Duration::from_millis(1);
        loop {
            let seen = stream.peek(&mut first).await?;
            if seen == 0 || seen == first.len() || !HTTP2_PREFACE.starts_with(&first[..seen]) {
                return Ok(seen == first.len() && first == HTTP2_PREFACE);
            }
            // A prefix of the preface: the socket stays readable while those bytes wait, so
            // poll again after a pause rather than on readiness.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    };
    tokio::time::timeout(timeout, peek)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

async fn serve_http2(
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Arc<Gateway>,
    closing: &AtomicBool,
) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let gateway = gateway.clone();
        async move {
            // Streams of one connection run concurrently, so each has its own clones.
            let mut services = RouteServices::default();
            let handled = gateway
                .handle(peer, request.map(crate::box_body), &mut services)
                .await;
            Ok::<_, std::convert::Infallible>(handled.into_response())
        }
    });
    let builder = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .clone();
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(connection);
    let shutdown = poll_fn(|_| {
        if closing.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = shutdown => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = ended {
        tracing::debug!(client.addr = %peer, error = %err, "connection ended with an error");
    }
}

/// The read half of a connection and what has been read from it but not yet used.
#[derive(Debug)]
struct ReadSide {
    reader: OwnedReadHalf,
    buf: BytesMut,
    /// The body of the request being served, as far as it has been read.
    body: Decoder,
    eof: bool,
    /// Set when the last parse found the head incomplete: how much of `buf` it saw. A head
    /// trickling in byte by byte is then parsed again only once an empty line has arrived,
    /// not from its start on every byte.
    partial: Option<usize>,
}

impl ReadSide {
    /// Whether parsing `buf` could find a whole head: it was not tried yet, or an empty line
    /// arrived since it was.
    fn worth_parsing(&mut self) -> bool {
        let Some(seen) = self.partial else {
            return true;
        };
        let fresh = self.buf.get(seen.saturating_sub(2)..).unwrap_or(&self.buf);
        let found = has_empty_line(fresh);
        self.partial = if found { None } else { Some(self.buf.len()) };
        found
    }

    /// Reads more bytes into `buf`; `Ready(Ok(false))` at the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        super::poll_fill(&mut self.reader, &mut self.buf, &mut self.eof, cx)
    }

    /// The next piece of the current request body.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Result<Decoded, BodyError>> {
        super::poll_decode(
            &mut self.body,
            &mut self.reader,
            &mut self.buf,
            &mut self.eof,
            cx,
        )
    }
}

/// Whether `bytes` hold an empty line: LF followed by LF, or by CR LF.
fn has_empty_line(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'\n') {
        rest = &rest[at + 1..];
        if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
            return true;
        }
    }
    false
}

fn lock(read: &Mutex<ReadSide>) -> MutexGuard<'_, ReadSide> {
    // The read side holds bytes and a decoder, consistent whatever panicked while it was held.
    read.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How waiting for a request head ended.
// The head is moved once per request; boxing it would cost an allocation instead.
#[allow(clippy::large_enum_variant)]
enum NextHead {
    Head(RequestHead),
    /// The client closed, the gateway is shutting down, or the head did not come in time.
    Closed,
    Refused(HeadError),
}

struct Http1Connection {
    peer: SocketAddr,
    read: Arc<Mutex<ReadSide>>,
    writer: OwnedWriteHalf,
    /// Response bytes not yet written.
    out: Vec<u8>,
    header_read_timeout: Duration,
    /// The deadline of the request head being waited for.
    head_deadline: LazyDeadline,
    closing: Arc<AtomicBool>,
}

impl Http1Connection {
    fn new(
        stream: TcpStream,
        peer: SocketAddr,
        header_read_timeout: Duration,
        closing: Arc<AtomicBool>,
    ) -> Self {
        let (reader, writer) = stream.into_split();
        Self {
            peer,
            read: Arc::new(Mutex::new(ReadSide {
                reader,
                buf: BytesMut::with_capacity(READ_CHUNK),
                body: Decoder::new(Framing::Empty),
                eof: false,
                partial: None,
            })),
            writer,
            out: Vec::with_capacity(WRITE_BUFFER),
            header_read_timeout,
            head_deadline: LazyDeadline::default(),
            closing,
        }
    }

    async fn serve(&mut self, gateway: &Arc<Gateway>) {
        let mut services = RouteServices::default();
        loop {
            let head = match self.next_head().await {
                NextHead::Head(head) => head,
                NextHead::Closed => return,
                NextHead::Refused(err) => {
                    tracing::debug!(client.addr = %self.peer, error = %err, "refused a malformed request head");
                    let problem = Problem::new(err.status()).with_detail(err.to_string());
                    let exchange = Exchange {
                        head_request: false,
                        version: Version::HTTP_11,
                        keep_alive: false,
                    };
                    if self
                        .respond(problem_response(problem), exchange, None)
                        .await
                        .is_ok()
                    {
                        self.linger().await;
                    }
                    return;
                }
            };

            let RequestHead {
                parts,
                framing,
                keep_alive,
                expects_continue,
            } = head;
            let exchange = Exchange {
                head_request: parts.method == Method::HEAD,
                version: parts.version,
                keep_alive,
            };
            let body = if framing == Framing::Empty {
                GatewayBody::default()
            } else {
                lock(&self.read).body = Decoder::new(framing);
                if expects_continue
                    && self
                        .writer
                        .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                        .await
                        .is_err()
                {
                    return;
                }
                crate::box_body(RequestBody {
                    read: self.read.clone(),
                    remaining: match framing {
                        Framing::Length(length) => Some(length),
                        _ => None,
                    },
                    done: false,
                })
            };

            let handled = gateway
                .clone()
                .handle(self.peer, Request::from_parts(parts, body), &mut services)
                .await;
            let answer = self.respond(handled.response, exchange, Some(&handled.request_id));
            let keep_alive = match answer.await {
                Ok(keep_alive) => keep_alive,
                Err(err) => {
                    tracing::debug!(client.addr = %self.peer, error = %err, "connection ended while answering");
                    return;
                }
            };
            let body_read = framing == Framing::Empty || self.discard_unread_body().await;
            if !(keep_alive && body_read) {
                self.linger().await;
                return;
            }
        }
    }

    /// Waits for the next request head, for at most the header read timeout.
    async fn next_head(&mut self) -> NextHead {
        let deadline = Instant::now() + self.header_read_timeout;
        poll_fn(|cx| self.poll_next_head(cx, deadline)).await
    }

    fn poll_next_head(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<NextHead> {
        {
            let mut read = lock(&self.read);
            loop {
                if !read.buf.is_empty() && read.worth_parsing() {
                    match framing::parse_request(&mut read.buf) {
                        Ok(Some(head)) => return Poll::Ready(NextHead::Head(head)),
                        Ok(None) => read.partial = Some(read.buf.len()),
                        Err(err) => return Poll::Ready(NextHead::Refused(err)),
                    }
                }
                if read.buf.len() > framing::MAX_HEAD {
                    return Poll::Ready(NextHead::Refused(HeadError::TooLarge));
                }
                if read.buf.is_empty() && self.closing.load(Ordering::Acquire) {
                    return Poll::Ready(NextHead::Closed);
                }
                match read.poll_fill(cx) {
                    Poll::Ready(Ok(true)) => {}
                    Poll::Ready(Ok(false) | Err(_)) => return Poll::Ready(NextHead::Closed),
                    Poll::Pending => break,
                }
            }
        }

        std::task::ready!(self.head_deadline.poll_expired(cx, deadline));
        tracing::debug!(client.addr = %self.peer, "no complete request head within the header read timeout");
        Poll::Ready(NextHead::Closed)
    }

    /// Writes `response`, with `request_id` as its `X-Request-Id`; whether the connection can
    /// carry another request afterwards.
    async fn respond(
        &mut self,
        response: Response<GatewayBody>,
        exchange: Exchange,
        request_id: Option<&HeaderValue>,
    ) -> std::io::Result<bool> {
        let (mut parts, mut body) = response.into_parts();
        let status = parts.status;
        let bodiless = exchange.head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let mut keep_alive = exchange.keep_alive && !self.closing.load(Ordering::Acquire);

        // Each hop frames the body itself: the length when it is known, chunks when it is not
        // and the client speaks HTTP/1.1, and the end of the connection for an HTTP/1.0 client.
        // One look at the names says which of the framing fields need changing at all.
        let present = FramingFields::of(&parts.headers);
        if present.transfer_encoding {
            parts.headers.remove(header::TRANSFER_ENCODING);
        }
        if present.request_id && request_id.is_some() {
            parts.headers.remove(crate::server::REQUEST_ID);
        }
        let framing = if bodiless {
            Framing::Empty
        } else if let Some(length) = body.size_hint().exact() {
            // An upstream's own Content-Length is the length its body reports: keep it.
            let announced = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
            if announced != Some(length) {
                parts.headers.insert(header::CONTENT_LENGTH, length.into());
            }
            Framing::Length(length)
        } else {
            if present.content_length {
                parts.headers.remove(header::CONTENT_LENGTH);
            }
            if exchange.version == Version::HTTP_11 {
                parts.headers.insert(
                    header::TRANSFER_ENCODING,
                    HeaderValue::from_static("chunked"),
                );
                Framing::Chunked
            } else {
                keep_alive = false;
                Framing::UntilClose
            }
        };
        if !keep_alive {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        } else if exchange.version == Version::HTTP_10 {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        }
        if !present.date {
            parts.headers.insert(header::DATE, date::now());
        }

        self.out.clear();
        self.out.extend_from_slice(b"HTTP/1.1 ");
        self.out.extend_from_slice(status.as_str().as_bytes());
        self.out.push(b' ');
        self.out
            .extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        self.out.extend_from_slice(b"\r\n");
        framing::encode_fields(&parts.headers, &mut self.out);
        if let Some(id) = request_id {
            framing::encode_fields([(&crate::server::REQUEST_ID, id)], &mut self.out);
        }
        self.out.extend_from_slice(b"\r\n");

        if framing != Framing::Empty {
            self.write_body(&mut body, framing).await?;
        }
        self.flush().await?;
        Ok(keep_alive)
    }

    /// Streams `body` in `framing`, gathering small frames into one write.
    async fn write_body(
        &mut self,
        body: &mut GatewayBody,
        framing: Framing,
    ) -> std::io::Result<()> {
        let mut encoder = Encoder::new(framing);
        loop {
            let frame = match poll_fn(|cx| Poll::Ready(Pin::new(&mut *body).poll_frame(cx))).await {
                Poll::Ready(frame) => frame,
                // Nothing more yet: send what is gathered, then wait.
                Poll::Pending => {
                    self.flush().await?;
                    poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
                }
            };
            let data = match frame {
                None => break,
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers: HTTP/1.1 responses from here carry none.
                    Err(_) => continue,
                },
                Some(Err(err)) => return Err(std::io::Error::other(err)),
            };
            if data.len() >= WRITE_BUFFER {
                // A large frame goes out as it is, not copied into the write buffer first.
                encoder
                    .start_data(data.len(), &mut self.out)
                    .map_err(std::io::Error::other)?;
                self.flush().await?;
                self.writer.write_all(&data).await?;
                encoder.end_data(data.len(), &mut self.out);
                continue;
            }
            encoder
                .encode(&data, &mut self.out)
                .map_err(std::io::Error::other)?;
            if self.out.len() >= WRITE_BUFFER {
                self.flush().await?;
            }
        }
        encoder.finish(&mut self.out).map_err(std::io::Error::other)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.writer.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads and drops what the request body still held after its response, up to a limit:
    /// closing with unread bytes would make the kernel reset the connection, and the client
    /// could lose the response. Whether the connection can go on.
    async fn discard_unread_body(&mut self) -> bool {
        let mut discarded: u64 = 0;
        let deadline = tokio::time::sleep(self.header_read_timeout);
        tokio::pin!(deadline);
        let read = self.read.clone();
        let drained = poll_fn(|cx| {
            let mut read = lock(&read);
            loop {
                if read.body.is_done() {
                    return Poll::Ready(true);
                }
                match read.poll_body(cx) {
                    Poll::Ready(Ok(Decoded::Data(data))) => {
                        discarded += data.len() as u64;
                        if discarded > MAX_DISCARD {
                            return Poll::Ready(false);
                        }
                    }
                    Poll::Ready(Ok(Decoded::End)) => return Poll::Ready(true),
                    Poll::Ready(Ok(Decoded::NeedMore) | Err(_)) => return Poll::Ready(false),
                    Poll::Pending => break,
                }
            }
            drop(read);
            deadline.as_mut().poll(cx).map(|()| false)
        })
        .await;
        drained && !self.closing.load(Ordering::Acquire)
    }
}

impl Http1Connection {
    /// Closes the sending side, then reads and drops what the client still sends for a short
    /// while: closing a socket with unread bytes makes the kernel send a reset, which can
    /// destroy the answer before the client has read it.
    async fn linger(&mut self) {
        if self.writer.shutdown().await.is_err() {
            return;
        }
        let mut discarded = 0;
        let read = self.read.clone();
        let until_eof = poll_fn(|cx| {
            let mut read = lock(&read);
            loop {
                read.buf.clear();
                match read.poll_fill(cx) {
                    Poll::Ready(Ok(true)) if discarded < MAX_LINGER_BYTES => {
                        discarded += read.buf.len();
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
        });
        let _ = tokio::time::timeout(LINGER, until_eof).await;
    }
}

/// Which of the fields the server sets or removes a response already carries.
// Independent flags, one per field: no state machine hides in them.
#[allow(clippy::struct_excessive_bools)]
struct FramingFields {
    transfer_encoding: bool,
    content_length: bool,
    date: bool,
    request_id: bool,
}

impl FramingFields {
    /// One pass over the names: comparing standard names is cheap, hashing one per field
    /// looked up is not.
    fn of(headers: &http::HeaderMap) -> Self {
        let mut present = Self {
            transfer_encoding: false,
            content_length: false,
            date: false,
            request_id: false,
        };
        for name in headers.keys() {
            present.transfer_encoding |= name == header::TRANSFER_ENCODING;
            present.content_length |= name == header::CONTENT_LENGTH;
            present.date |= name == header::DATE;
            present.request_id |= name == crate::server::REQUEST_ID;
        }
        present
    }
}

/// What the request said about how to answer it.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    head_request: bool,
    version: Version,
    keep_alive: bool,
}

/// A request body, read from the client connection as the gateway asks for it.
struct RequestBody {
    read: Arc<Mutex<ReadSide>>,
    /// Bytes still to come, when the length is known.
    remaining: Option<u64>,
    done: bool,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut read = lock(&self.read);
        let decoded = std::task::ready!(read.poll_body(cx));
        let remaining = read.body.remaining();
        let done = read.body.is_done();
        drop(read);

        self.remaining = remaining;
        match decoded {
            Ok(Decoded::Data(data)) => {
                self.done = done;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Ok(Decoded::End | Decoded::NeedMore) => {
                self.done = true;
                Poll::Ready(None)
            }
            Err(err) => {
                self.done = true;
                Poll::Ready(Some(Err(err)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        self.remaining
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

/// The `Date` header, formatted once a second.
mod date {
    use std::cell::RefCell;
    use std::time::{SystemTime, UNIX_EPOCH};

    use http::HeaderValue;

    thread_local! {
        static CACHED: RefCell<(u64, HeaderValue)> =
            const { RefCell::new((0, HeaderValue::from_static(""))) };
    }

    pub(super) fn now() -> HeaderValue {
        let now = SystemTime::now();
        let second = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        CACHED.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.0 != second {
                let text = httpdate::fmt_http_date(now);
                if let Ok(value) = HeaderValue::from_str(&text) {
                    *cached = (second, value);
                }
            }
            cached.1.clone()
        })
    }
}
