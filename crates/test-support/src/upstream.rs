//! Scripted hyper servers on loopback, standing in for agent services.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body type of scripted upstreams.
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<UpstreamBody>> + Send>>
        + Send
        + Sync,
>;

/// What a scripted upstream does with each request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// Streams the request body back as the response body, status 200.
    Echo,
    /// Answers every request with this status and a short body.
    Status(StatusCode),
    /// Waits, then answers 200.
    Delay(Duration),
    /// Answers `status` to the first `times` requests, then echoes.
    FailTimes {
        /// How many requests fail.
        times: usize,
        /// The status of a failed request.
        status: StatusCode,
    },
    /// Promises a body by `Content-Length`, sends part of it, then cuts the connection.
    CloseMidResponse,
    /// Sends `chunks` chunks of `chunk_size` bytes with `interval` between them.
    SlowBody {
        /// Bytes per chunk.
        chunk_size: usize,
        /// Number of chunks.
        chunks: usize,
        /// Pause before each chunk.
        interval: Duration,
    },
    /// Generates a body of `total` bytes on the fly, without holding it in memory.
    Stream {
        /// Body length in bytes.
        total: u64,
    },
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// The headers, as forwarded.
    pub headers: HeaderMap,
    /// The HTTP version.
    pub version: http::Version,
}

/// A real HTTP server on 127.0.0.1, serving HTTP/1.1 and HTTP/2 (prior knowledge) alike.
///
/// It records every request it receives, so a test can check what a proxy forwarded.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    accept_loop: JoinHandle<()>,
}

impl Upstream {
    /// Starts a server with one of the scripted behaviours.
    pub async fn start(behavior: Behavior) -> Self {
        let failures_left = Arc::new(AtomicUsize::new(match behavior {
            Behavior::FailTimes { times, .. } => times,
            _ => 0,
        }));
        Self::start_fn(move |request| {
            let behavior = behavior.clone();
            let failures_left = failures_left.clone();
            async move { respond(&behavior, &failures_left, request).await }
        })
        .await
    }

    /// Starts a server that answers with a handler of the test's own (a JWKS endpoint, say).
    pub async fn start_fn<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<UpstreamBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding an upstream port");
        let addr = listener.local_addr().expect("upstream local address");
        let seen = Arc::new(Mutex::new(Vec::new()));

        let accept_loop = tokio::spawn(accept(listener, handler, seen.clone()));
        Self {
            addr,
            seen,
            accept_loop,
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.seen.lock().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, handler: Handler, seen: Arc<Mutex<Vec<SeenRequest>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                seen.lock().push(SeenRequest {
                    method: request.method().clone(),
                    uri: request.uri().clone(),
                    headers: request.headers().clone(),
                    version: request.version(),
                });
                let response = handler(request);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn respond(
    behavior: &Behavior,
    failures_left: &AtomicUsize,
    request: Request<Incoming>,
) -> Response<UpstreamBody> {
    match behavior {
        Behavior::Echo => echo(request),
        Behavior::Status(status) => fixed(*status, "scripted status\n"),
        Behavior::Delay(delay) => {
            tokio::time::sleep(*delay).await;
            fixed(StatusCode::OK, "delayed\n")
        }
        Behavior::FailTimes { status, .. } => {
            let failed = failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failed {
                fixed(*status, "scripted failure\n")
            } else {
                echo(request)
            }
        }
        Behavior::CloseMidResponse => {
            // Send the head and a first chunk, give them time to reach the peer, then fail:
            // hyper aborts the connection when a body errors.
            let stream = futures_util::stream::unfold(0u8, |step| async move {
                match step {
                    0 => Some((Ok(Frame::data(Bytes::from(vec![b'a'; 100]))), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((
                            Err::<Frame<Bytes>, BoxError>("scripted connection cut".into()),
                            2,
                        ))
                    }
                    _ => None,
                }
            });
            let body = http_body_util::StreamBody::new(stream);
            Response::builder()
                .header(http::header::CONTENT_LENGTH, "1000")
                .body(body.boxed())
                .expect("static response parts")
        }
        Behavior::SlowBody {
            chunk_size,
            chunks,
            interval,
        } => {
            let chunk = Bytes::from(vec![b'.'; *chunk_size]);
            let interval = *interval;
            let stream = futures_util::stream::unfold(*chunks, move |left| {
                let chunk = chunk.clone();
                async move {
                    if left == 0 {
                        return None;
                    }
                    tokio::time::sleep(interval).await;
                    Some((Ok::<_, BoxError>(Frame::data(chunk)), left - 1))
                }
            });
            Response::new(http_body_util::StreamBody::new(stream).boxed())
        }
        Behavior::Stream { total } => {
            let body = Generated {
                left: *total,
                chunk: Bytes::from(vec![b'x'; 64 * 1024]),
            };
            Response::builder()
                .header(http::header::CONTENT_LENGTH, total.to_string())
                .body(body.boxed())
                .expect("static response parts")
        }
    }
}

fn echo(request: Request<Incoming>) -> Response<UpstreamBody> {
    let mut response = Response::new(request.into_body().map_err(BoxError::from).boxed());
    response
        .headers_mut()
        .insert("x-upstream", http::HeaderValue::from_static("echo"));
    response
}

/// A response with `status` and a short text body.
pub fn fixed(status: StatusCode, body: &'static str) -> Response<UpstreamBody> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// A body that yields `left` bytes in fixed chunks, generated as it is read.
struct Generated {
    left: u64,
    chunk: Bytes,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let len = usize::try_from(self.left.min(self.chunk.len() as u64)).unwrap_or(0);
        self.left -= len as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..len)))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}
