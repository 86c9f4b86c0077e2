//! HTTP/1.1 spoken by the gateway itself, on both sides of the proxy.
//!
//! A reverse proxy in front of small agent calls spends most of its own time on the HTTP/1.1
//! machinery around each request. hyper is general: a server and a client that each run a
//! connection task, hand requests and responses to it through channels, and drive several
//! layers of boxed futures. Here one task serves a client connection and makes its requests'
//! upstream exchanges itself, with a codec that parses heads with `httparse` and frames bodies
//! strictly (see `framing`). HTTP/2 stays with hyper on both sides.

pub(crate) mod client;
pub(crate) mod framing;
pub(crate) mod server;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio::time::{Instant, Sleep};

use framing::{BodyError, Decoded, Decoder};

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Bytes gathered before they are written, so that small messages go out in one write.
const WRITE_BUFFER: usize = 16 * 1024;

/// Reads more bytes from `reader` into `buf`; `Ready(Ok(false))` at the end of the stream,
/// which `eof` then remembers.
fn poll_fill<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    eof: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<bool>> {
    if *eof {
        return Poll::Ready(Ok(false));
    }
    // Each head is split off the front of `buf` and shared by its header values, so without
    // this a keep-alive connection reads every message into fresh bytes further along, walking
    // its whole buffer: with many connections that is more memory than the caches hold, and
    // every read misses. Once everything read has been handed on (and no head still shares
    // the buffer), reading starts again at its front, in the same few cache lines. Without a
    // sole owner this does nothing; it never allocates.
    if buf.is_empty() {
        let _ = buf.try_reclaim(READ_CHUNK);
    }
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    match std::task::ready!(tokio_util::io::poll_read_buf(Pin::new(reader), cx, buf)) {
        Ok(0) => {
            *eof = true;
            Poll::Ready(Ok(false))
        }
        Ok(_) => Poll::Ready(Ok(true)),
        Err(err) => Poll::Ready(Err(err)),
    }
}

/// The next piece of a body, decoded from `buf` and read from `reader` as needed; never
/// `NeedMore`. A socket error ends the body as the peer's closing would.
fn poll_decode<R: AsyncRead + Unpin>(
    decoder: &mut Decoder,
    reader: &mut R,
    buf: &mut BytesMut,
    eof: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<Decoded, BodyError>> {
    loop {
        match decoder.decode(buf)? {
            Decoded::NeedMore => match std::task::ready!(poll_fill(reader, buf, eof, cx)) {
                Ok(true) => {}
                Ok(false) => return Poll::Ready(decoder.at_eof()),
                Err(_) => return Poll::Ready(Err(BodyError::Truncated)),
            },
            decoded => return Poll::Ready(Ok(decoded)),
        }
    }
}

/// A connection's timer for per-request deadlines that only move forward.
///
/// Arming a tokio timer per request takes the timer wheel's lock twice (to register, and to
/// deregister when the request ends early, as nearly all do). This timer stays armed for an
/// earlier deadline and is moved only when it fires before the current one, so a busy
/// connection touches the wheel about once per timeout period instead of once per request.
#[derive(Debug, Default)]
pub(crate) struct LazyDeadline {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl LazyDeadline {
    /// `Ready` once `deadline` has passed; otherwise arranges for a wake-up no later than it.
    /// Deadlines passed here must not go backwards between calls.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        loop {
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            sleep.as_mut().reset(deadline);
        }
    }
}
