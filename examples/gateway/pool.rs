//! Connections to one upstream, kept open between requests.
//!
//! A gateway knows its upstreams in advance, so each gets a pool of its own. An HTTP/1.1
//! connection, spoken by our own client (`http1::client`), goes back to the pool when the
//! response body has been read to its end; an h2c upstream shares one multiplexed connection,
//! driven by hyper.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::Either;
use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Request, Response};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::GatewayBody;
use crate::config::{UpstreamConfig, UpstreamProtocol};
use crate::http1::client::{self, ExchangeError, Outgoing, UpstreamConnection};
use crate::proxy::AddedFields;

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
    /// The connection was made but the HTTP/2 exchange failed.
    #[error("exchanging with the upstream")]
    Http(#[from] hyper::Error),
    /// The connection was made but the HTTP/1.1 exchange failed.
    #[error("exchanging with the upstream")]
    Exchange(#[from] ExchangeError),
    /// No response head within the request timeout.
    #[error("no response within the request timeout")]
    TimedOut,
}

impl SendError {
    /// Whether the client's own request body is what failed, rather than the upstream.
    pub(crate) fn is_client_body(&self) -> bool {
        matches!(self, Self::Exchange(ExchangeError::ClientBody(_)))
    }

    /// Whether the upstream took longer than the request timeout.
    pub(crate) fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::TimedOut | Self::Exchange(ExchangeError::TimedOut)
        )
    }
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
    /// Ticks of the sweeper, a quarter of the idle timeout apart: the pool's clock, so that
    /// checking a connection in and out reads no system clock.
    epoch: AtomicU64,
}

/// How many sweeper ticks an idle connection lives: it is closed after three quarters of the
/// idle timeout at the least and the whole of it at the most.
const IDLE_EPOCHS: u32 = 4;

#[derive(Debug)]
struct IdleConnection {
    connection: UpstreamConnection,
    /// The pool's epoch when the connection became idle.
    since: u64,
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
            epoch: AtomicU64::new(0),
        })
    }

    /// The upstream's host and port.
    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Sends `request` (its URI in origin form) and returns the upstream's response head.
    ///
    /// A pooled HTTP/1.1 connection that the upstream turns out to have closed, before it
    /// answered a byte, is given up and a request that can be sent twice is tried on the next
    /// one, so an upstream closing idle connections does not turn into errors.
    ///
    /// `timeout` bounds the time until the response head, connecting included.
    ///
    /// The HTTP/1.1 head is encoded here, before the future is made, so that the future holds
    /// the encoded request rather than its parts: it is boxed once per request, and copying
    /// and touching a larger one costs more than the encoding.
    pub(crate) fn send(
        self: Arc<Self>,
        mut request: Request<GatewayBody>,
        added: &AddedFields,
        timeout: Duration,
    ) -> impl Future<Output = Result<Response<GatewayBody>, SendError>> + Send + 'static {
        let deadline = Instant::now() + timeout;
        match self.protocol {
            UpstreamProtocol::Http1 => {
                let (mut parts, body) = request.into_parts();
                parts
                    .headers
                    .entry(header::HOST)
                    .or_insert_with(|| self.host_header.clone());
                let outgoing = Outgoing::new(parts, added, body);
                Either::Left(self.send_http1(outgoing, deadline))
            }
            UpstreamProtocol::H2c => {
                added.append_to(request.headers_mut());
                // Boxed: hyper's HTTP/2 state would otherwise make every HTTP/1.1 request's
                // future larger too.
                Either::Right(Box::pin(async move {
                    tokio::time::timeout_at(deadline, self.send_h2c(request))
                        .await
                        .map_err(|_| SendError::TimedOut)?
                }))
            }
        }
    }

    async fn send_http1(
        self: Arc<Self>,
        mut outgoing: Outgoing,
        deadline: Instant,
    ) -> Result<Response<GatewayBody>, SendError> {
        loop {
            let (mut connection, reused) = if let Some(connection) = self.checkout() {
                (connection, true)
            } else {
                // Boxed: connecting is rare, and its state would otherwise make every
                // request's future larger, and so slower to move.
                let connecting = tokio::time::timeout_at(deadline, self.connect_http1());
                let connection = Box::pin(connecting)
                    .await
                    .map_err(|_| SendError::TimedOut)??;
                (connection, false)
            };
            match client::exchange(&mut connection, &mut outgoing, deadline).await {
                Ok(head) => return Ok(client::response(head, connection, outgoing, &self)),
                Err(err) if reused && err.answered_nothing() && outgoing.replayable() => {
                    outgoing.rewind();
                }
                Err(err) => return Err(err.into()),
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

    /// The most recently used idle connection that is still open; the sweeper has closed
    /// those idle for too long.
    fn checkout(&self) -> Option<UpstreamConnection> {
        let mut idle = lock(&self.idle);
        while let Some(idle) = idle.pop() {
            if !idle.connection.is_stale() {
                return Some(idle.connection);
            }
        }
        None
    }

    /// Keeps a connection whose last response has been read, if there is room.
    pub(crate) fn checkin(self: &Arc<Self>, connection: UpstreamConnection) {
        self.sweeper_started.call_once(|| self.start_sweeper());
        let mut idle = lock(&self.idle);
        if idle.len() < self.max_idle {
            idle.push(IdleConnection {
                connection,
                since: self.epoch.load(Ordering::Relaxed),
            });
        }
    }

    /// Closes idle connections past the idle timeout, also when no request comes to find
    /// them; ends with the pool.
    fn start_sweeper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let period = (self.idle_timeout / IDLE_EPOCHS).max(Duration::from_millis(25));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                let now = pool.epoch.fetch_add(1, Ordering::Relaxed) + 1;
                lock(&pool.idle).retain(|idle| {
                    now - idle.since < u64::from(IDLE_EPOCHS) && !idle.connection.is_stale()
                });
            }
        });
    }

    async fn connect_http1(&self) -> Result<UpstreamConnection, SendError> {
        Ok(UpstreamConnection::new(self.connect_tcp().await?))
    }

    async fn connect_h2c(&self) -> Result<http2::SendRequest<GatewayBody>, SendError> {
        let io = TokioIo::new(self.connect_tcp().await?);
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await?;
        drive(connection, "upstream h2c connection ended with an error");
        Ok(sender)
    }

    async fn connect_tcp(&self) -> Result<TcpStream, SendError> {
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
        Ok(stream)
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
