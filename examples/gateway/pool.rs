//! Connections to one upstream, kept open between requests.
//!
//! A gateway knows its upstreams in advance, so each gets a pool of its own. An HTTP/1.1
//! connection, spoken by our own client (`http1::client`), goes back to the pool when the
//! response body has been read to its end; an h2c upstream shares one multiplexed connection,
//! driven by hyper.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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
}

impl SendError {
    /// Whether the client's own request body is what failed, rather than the upstream.
    pub(crate) fn is_client_body(&self) -> bool {
        matches!(self, Self::Exchange(ExchangeError::ClientBody(_)))
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
}

#[derive(Debug)]
struct IdleConnection {
    connection: UpstreamConnection,
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
    /// A pooled HTTP/1.1 connection that the upstream turns out to have closed, before it
    /// answered a byte, is given up and a request that can be sent twice is tried on the next
    /// one, so an upstream closing idle connections does not turn into errors.
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
        request: Request<GatewayBody>,
    ) -> Result<Response<GatewayBody>, SendError> {
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(header::HOST) {
            parts.headers.insert(header::HOST, self.host_header.clone());
        }
        let mut outgoing = Outgoing::new(parts, body);

        loop {
            let (mut connection, reused) = match self.checkout() {
                Some(connection) => (connection, true),
                // Boxed: connecting is rare, and its state would otherwise make every
                // request's future larger, and so slower to move.
                None => (Box::pin(self.connect_http1()).await?, false),
            };
            match client::exchange(&mut connection, &mut outgoing).await {
                Ok(head) => return Ok(client::response(head, connection, outgoing, self)),
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

    /// The most recently used idle connection that is still fresh and open.
    fn checkout(&self) -> Option<UpstreamConnection> {
        let mut idle = lock(&self.idle);
        while let Some(idle) = idle.pop() {
            if idle.since.elapsed() < self.idle_timeout && !idle.connection.is_stale() {
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
                lock(&pool.idle)
                    .retain(|idle| idle.since.elapsed() < timeout && !idle.connection.is_stale());
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
