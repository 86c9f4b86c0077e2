//! Connections to one upstream, kept open between requests.
//!
//! hyper-util's general-purpose client keys its pool by host, spawns a task per HTTP/1
//! request to notice when the connection is free again, and retries through layers of
//! generic connectors. A gateway knows its upstreams in advance, so each gets a pool of its
//! own: an HTTP/1.1 connection goes back to the pool when the response body has been read to
//! its end, and an h2c upstream shares one multiplexed connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::GatewayBody;
use crate::config::{UpstreamConfig, UpstreamProtocol};

/// Why a request could not be handed to the upstream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No TCP connection could be made.
    #[error("connecting to {addr}")]
    Connect {
        /// The upstream's host and port.
        addr: Authority,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The connection was made but the HTTP exchange failed.
    #[error("exchanging with the upstream")]
    Http(#[from] hyper::Error),
}

/// One upstream's connections.
#[derive(Debug)]
pub(crate) struct ConnectionPool {
    authority: Authority,
    /// `Host` sent to HTTP/1.1 upstreams, made once.
    host_header: HeaderValue,
    protocol: UpstreamProtocol,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    /// HTTP/1.1 connections waiting for a request, most recently used last.
    idle: Mutex<Vec<IdleConnection>>,
    /// The shared h2c connection, once made.
    multiplexed: Mutex<Option<http2::SendRequest<GatewayBody>>>,
    /// Held while an h2c connection is being made, so concurrent requests make only one.
    connecting: tokio::sync::Mutex<()>,
    /// Whether the task that closes expired idle connections runs yet.
    sweeper_started: std::sync::Once,
}

#[derive(Debug)]
struct IdleConnection {
    sender: http1::SendRequest<GatewayBody>,
    since: Instant,
}

impl ConnectionPool {
    pub(crate) fn new(config: &UpstreamConfig) -> Arc<Self> {
        let authority = config
            .url
            .authority()
            .cloned()
            .unwrap_or_else(|| Authority::from_static("localhost"));
        let host_header = HeaderValue::from_str(authority.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Arc::new(Self {
            authority,
            host_header,
            protocol: config.protocol,
            connect_timeout: config.connect_timeout,
            idle_timeout: config.idle_timeout,
            max_idle: config.max_idle,
            idle: Mutex::new(Vec::new()),
            multiplexed: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            sweeper_started: std::sync::Once::new(),
        })
    }

    /// The upstream's host and port.
    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends `request` (its URI in origin form) and returns the upstream's response head.
    ///
    /// A pooled HTTP/1.1 connection that turns out to be closed before the request was
    /// written is skipped and the request tried on the next one, so an upstream closing idle
    /// connections does not turn into errors.
    pub(crate) async fn send(
        self: &Arc<Self>,
        request: Request<GatewayBody>,
    ) -> Result<Response<GatewayBody>, SendError> {
        match self.protocol {
            UpstreamProtocol::Http1 => self.send_http1(request).await,
            UpstreamProtocol::H2c => self.send_h2c(request).await,
        }
    }

    async fn send_http1(
        self: &Arc<Self>,
        mut request: Request<GatewayBody>,
    ) -> Result<Response<GatewayBody>, SendError> {
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, self.host_header.clone());
        }

        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                // Boxed: connecting is rare, and its state would otherwise make every
                // request's future larger, and so slower to move.
                None => (Box::pin(self.connect_http1()).await?, false),
            };

            // A connection checked in at the end of a body may need its task to run once
            // before it takes the next request.
            if let Err(err) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(err.into());
            }

            match sender.try_send_request(request).await {
                Ok(response) => {
                    return Ok(response.map(|body| {
                        let body = ReturnOnEnd {
                            inner: body,
                            connection: Some((sender, Arc::downgrade(self))),
                            ended: false,
                        };
                        crate::box_body(body)
                    }));
                }
                Err(mut err) => match err.take_message() {
                    // Not a byte was written: safe to try elsewhere.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(err.into_error().into()),
                },
            }
        }
    }

    async fn send_h2c(
        &self,
        mut request: Request<GatewayBody>,
    ) -> Result<Response<GatewayBody>, SendError> {
        // HTTP/2 carries the target as `:scheme` and `:authority`, taken from the URI.
        let mut target = request.uri().clone().into_parts();
        target.scheme = Some(http::uri::Scheme::HTTP);
        target.authority = Some(self.authority.clone());
        if let Ok(uri) = http::Uri::from_parts(target) {
            *request.uri_mut() = uri;
        }

        let mut sender = if let Some(sender) = self.shared_http2() {
            sender
        } else {
            let _one_at_a_time = self.connecting.lock().await;
            if let Some(sender) = self.shared_http2() {
                sender
            } else {
                let sender = self.connect_h2c().await?;
                *lock(&self.multiplexed) = Some(sender.clone());
                sender
            }
        };
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        Ok(response.map(crate::box_body))
    }

    fn shared_http2(&self) -> Option<http2::SendRequest<GatewayBody>> {
        lock(&self.multiplexed)
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    /// The most recently used idle connection that is still open and fresh.
    fn checkout(&self) -> Option<http1::SendRequest<GatewayBody>> {
        let mut idle = lock(&self.idle);
        while let Some(connection) = idle.pop() {
            if !connection.sender.is_closed() && connection.since.elapsed() < self.idle_timeout {
                return Some(connection.sender);
            }
        }
        None
    }

    /// Keeps a connection whose last response has been read, if there is room.
    fn checkin(self: &Arc<Self>, sender: http1::SendRequest<GatewayBody>) {
        if sender.is_closed() {
            return;
        }
        self.sweeper_started.call_once(|| self.start_sweeper());
        let mut idle = lock(&self.idle);
        if idle.len() < self.max_idle {
            idle.push(IdleConnection {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections past the idle timeout, also when no request comes to find
    /// them; ends with the pool.
    fn start_sweeper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let period = (self.idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                let timeout = pool.idle_timeout;
                lock(&pool.idle).retain(|connection| {
                    !connection.sender.is_closed() && connection.since.elapsed() < timeout
                });
            }
        });
    }

    async fn connect_http1(&self) -> Result<http1::SendRequest<GatewayBody>, SendError> {
        let io = self.connect_tcp().await?;
        let (sender, connection) = http1::Builder::new()
            // Flattened writes, for the reason the server gives (see `server::serve`).
            .writev(false)
            .handshake(io)
            .await?;
        drive(connection, "upstream connection ended with an error");
        Ok(sender)
    }

    async fn connect_h2c(&self) -> Result<http2::SendRequest<GatewayBody>, SendError> {
        let io = self.connect_tcp().await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await?;
        drive(connection, "upstream h2c connection ended with an error");
        Ok(sender)
    }

    async fn connect_tcp(&self) -> Result<TokioIo<TcpStream>, SendError> {
        let connect_error = |source| SendError::Connect {
            addr: self.authority.clone(),
            source,
        };
        // `Authority::host` keeps the brackets of an IPv6 literal; the resolver wants none.
        let host = self.authority.host().trim_start_matches('[');
        let host = host.trim_end_matches(']');
        let port = self.authority.port_u16().unwrap_or(80);

        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| {
                connect_error(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {:?}", self.connect_timeout),
                ))
            })?
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        Ok(TokioIo::new(stream))
    }
}

/// Runs a connection's I/O in a task of its own until it closes; how it ended is only worth
/// a debug event, since the requests on it report their own failures.
fn drive<C>(connection: C, ending: &'static str)
where
    C: Future<Output = Result<(), hyper::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "{ending}");
        }
    });
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded data stays consistent whatever panicked: a vector of connections.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pin_project_lite::pin_project! {
    /// An HTTP/1.1 response body that returns its connection to the pool once read to the
    /// end; a body dropped earlier takes its connection with it, since the rest of the
    /// response would still be on the wire.
    struct ReturnOnEnd {
        #[pin]
        inner: Incoming,
        connection: Option<(http1::SendRequest<GatewayBody>, Weak<ConnectionPool>)>,
        ended: bool,
    }

    impl PinnedDrop for ReturnOnEnd {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if (*this.ended || this.inner.is_end_stream())
                && let Some((sender, pool)) = this.connection.take()
                && let Some(pool) = pool.upgrade()
            {
                pool.checkin(sender);
            }
        }
    }
}

impl Body for ReturnOnEnd {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(None) = frame {
            *this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
