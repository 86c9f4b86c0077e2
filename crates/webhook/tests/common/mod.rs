//! Serving a layered service on a real loopback socket and calling it over HTTP.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use rampart_core::{BoxError, ResponseBody};
use rampart_test_support::Upstream;
use rampart_webhook::{SchemeKind, SignConfig, Signer, VerifiedWebhook};
use tower::{Service, ServiceExt};

pub type ClientBody = BoxBody<Bytes, Infallible>;

/// The headers `secret` signs a webhook with under `scheme`, for a fixed id and timestamp.
pub fn signed(scheme: SchemeKind, secret: &str, id: &str, ts: u64, body: &[u8]) -> HeaderMap {
    let signer = Signer::new(&SignConfig {
        scheme,
        secrets: vec![secret.into()],
        ..SignConfig::default()
    })
    .unwrap();
    let mut headers = HeaderMap::new();
    signer
        .sign_with(id, ts, body)
        .unwrap()
        .apply_to(&mut headers);
    headers
}

/// A receiver application: echoes the body it was given, reports the verified id in
/// `x-seen-id`, and answers 500 while `fail_next` is above zero.
#[derive(Clone, Default)]
pub struct App {
    pub calls: Arc<AtomicUsize>,
    pub fail_next: Arc<AtomicUsize>,
}

impl App {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn service(&self) -> App {
        self.clone()
    }
}

impl Service<Request<Full<Bytes>>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Full<Bytes>>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move {
            app.calls.fetch_add(1, Ordering::SeqCst);
            let seen = request
                .extensions()
                .get::<VerifiedWebhook>()
                .and_then(|verified| verified.id().map(str::to_owned))
                .unwrap_or_default();
            let body = request.into_body().collect().await?.to_bytes();
            let failing = app
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let mut response = Response::new(Full::new(body));
            response
                .headers_mut()
                .insert("x-seen-id", seen.parse().unwrap());
            if failing {
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            Ok(response)
        })
    }
}

/// Serves `service` on a loopback port with hyper.
pub async fn serve<S>(service: S) -> Upstream
where
    S: Service<Request<Incoming>, Response = Response<ResponseBody<Full<Bytes>>>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: std::fmt::Debug,
    S::Future: Send,
{
    Upstream::start_fn(move |request| {
        let service = service.clone();
        async move {
            let response = service.oneshot(request).await.expect("the layer answers");
            response.map(|body| body.map_err(|never| -> BoxError { match never {} }).boxed())
        }
    })
    .await
}

pub fn client() -> Client<HttpConnector, ClientBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// POSTs a body sent as `frames`, each after its delay; with `stall`, the body then never
/// ends, as a sender that stopped mid-body.
pub async fn post_paced(
    url: &str,
    headers: &HeaderMap,
    frames: Vec<(std::time::Duration, &'static [u8])>,
    stall: bool,
) -> Answer {
    use futures_util::StreamExt;

    let paced = futures_util::stream::iter(frames).then(|(delay, chunk)| async move {
        tokio::time::sleep(delay).await;
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(chunk)))
    });
    let body: ClientBody = if stall {
        BodyExt::boxed(StreamBody::new(
            paced.chain(futures_util::stream::pending()),
        ))
    } else {
        BodyExt::boxed(StreamBody::new(paced))
    };
    let mut request = Request::post(url).body(body).unwrap();
    request.headers_mut().extend(headers.clone());
    answer(client().request(request).await.expect("the server answers")).await
}

async fn answer(response: Response<Incoming>) -> Answer {
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

/// POSTs `body` with `headers`; `chunks` > 1 sends it in that many frames with no
/// `Content-Length` (chunked transfer encoding).
pub async fn post(url: &str, headers: &HeaderMap, body: &[u8], chunks: usize) -> Answer {
    let body: ClientBody = if chunks > 1 {
        let size = body.len().div_ceil(chunks).max(1);
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = body
            .chunks(size)
            .map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    } else {
        Full::new(Bytes::copy_from_slice(body)).boxed()
    };
    let mut request = Request::post(url).body(body).unwrap();
    request.headers_mut().extend(headers.clone());
    answer(client().request(request).await.expect("the server answers")).await
}

/// One `rampart_webhook_verifications_total` counter: its labels by name, and its count.
pub type Counted = (std::collections::BTreeMap<String, String>, u64);

/// Runs `scenario` on one thread with a metrics recorder of its own (servers, clients and
/// the recorder alike), then returns every verification counter it left.
pub fn counted_verifications(scenario: impl Future<Output = ()>) -> Vec<Counted> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(scenario);

    let mut counted = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if key.name() != "rampart_webhook_verifications_total" {
            continue;
        }
        let DebugValue::Counter(count) = value else {
            panic!("{} is a counter", key.name())
        };
        let labels = key
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()))
            .collect();
        counted.push((labels, count));
    }
    counted
}

/// The counts by the value of one label.
pub fn counts_by(counted: &[Counted], label: &str) -> std::collections::BTreeMap<String, u64> {
    counted
        .iter()
        .map(|(labels, count)| (labels[label].clone(), *count))
        .collect()
}

/// The map a test expects, from string literals.
pub fn expected_counts(pairs: &[(&str, u64)]) -> std::collections::BTreeMap<String, u64> {
    pairs
        .iter()
        .map(|(name, count)| ((*name).to_owned(), *count))
        .collect()
}
