//! Forwarding one request to an upstream and its answer back.
//!
//! Bodies stream both ways: the client's body is handed to the upstream connection as it
//! arrives and the upstream's body to the client, so memory does not grow with body size.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri, Version};
use rampart_core::{PeerAddr, Problem, RequestId};

use crate::config::UpstreamConfig;
use crate::pool::{ConnectionPool, SendError};
use crate::{GatewayBody, problem_response};

/// One upstream: its connections, base path and timeout.
#[derive(Clone, Debug)]
pub(crate) struct Upstream {
    name: Arc<str>,
    base_path: Arc<str>,
    request_timeout: Duration,
    connections: Arc<ConnectionPool>,
}

impl Upstream {
    pub(crate) fn new(name: &str, config: &UpstreamConfig) -> Self {
        let base_path = config.url.path().trim_end_matches('/');
        Self {
            name: name.into(),
            base_path: base_path.into(),
            request_timeout: config.request_timeout,
            connections: ConnectionPool::new(config),
        }
    }
}

/// How a route rewrites requests before they leave.
#[derive(Clone, Debug)]
pub(crate) struct Forwarding {
    pub(crate) strip_prefix: Option<Arc<str>>,
    pub(crate) preserve_host: bool,
}

/// The innermost service of every route: sends the request to the upstream.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    // Shared, so that each request clones one pointer rather than the client's many.
    upstream: Arc<Upstream>,
    forwarding: Forwarding,
}

impl Proxy {
    pub(crate) fn new(upstream: Upstream, forwarding: Forwarding) -> Self {
        Self {
            upstream: Arc::new(upstream),
            forwarding,
        }
    }
}

impl tower::Service<Request<GatewayBody>> for Proxy {
    type Response = Response<GatewayBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The pooled client has no readiness of its own; connections are made per request.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<GatewayBody>) -> Self::Future {
        let upstream = self.upstream.clone();
        let request_id = request.extensions().get::<RequestId>().cloned();
        let (outbound, added) = match self.prepare(request) {
            Ok(prepared) => prepared,
            Err(problem) => return Box::pin(async move { Ok(problem_response(problem)) }),
        };

        // The exchange's future is made here and mapped, not awaited inside an async block:
        // a block would hold it twice (as the value it captures and as the future it awaits),
        // and this future is boxed and so copied whole on every request.
        let sent =
            Arc::clone(&upstream.connections).send(outbound, &added, upstream.request_timeout);
        Box::pin(sent.map(move |sent| Ok(answer(sent, &upstream, request_id.as_ref()))))
    }
}

/// The response to send back: the upstream's, with this hop's fields, or a problem response
/// saying why there is none.
fn answer(
    sent: Result<Response<GatewayBody>, SendError>,
    upstream: &Upstream,
    request_id: Option<&RequestId>,
) -> Response<GatewayBody> {
    let response = match sent {
        Ok(response) => response,
        Err(err) if err.is_client_body() => {
            tracing::debug!(
                request.id = %display_id(request_id),
                upstream = %upstream.name,
                error = %error_chain(&err),
                "the client's request body failed on its way upstream"
            );
            let problem = Problem::new(StatusCode::BAD_REQUEST)
                .with_detail("the request body is malformed or ended early")
                .with_request_id(request_id);
            return problem_response(problem);
        }
        Err(err) if !err.is_timeout() => {
            tracing::warn!(
                request.id = %display_id(request_id),
                upstream = %upstream.name,
                upstream.addr = %upstream.connections.authority(),
                error = %error_chain(&err),
                "upstream unreachable"
            );
            let problem = Problem::new(StatusCode::BAD_GATEWAY)
                .with_detail(format!("upstream {} could not be reached", upstream.name))
                .with_request_id(request_id);
            return problem_response(problem);
        }
        Err(_) => {
            tracing::warn!(
                request.id = %display_id(request_id),
                upstream = %upstream.name,
                upstream.addr = %upstream.connections.authority(),
                timeout = ?upstream.request_timeout,
                "upstream timed out"
            );
            let problem = Problem::new(StatusCode::GATEWAY_TIMEOUT)
                .with_detail(format!(
                    "upstream {} did not answer within {:?}",
                    upstream.name, upstream.request_timeout
                ))
                .with_request_id(request_id);
            return problem_response(problem);
        }
    };

    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    // Room for `Via` and the server's `X-Request-Id` in one step: a map parsed by hyper (h2c)
    // is sized to what arrived, and growing it field by field reallocates.
    parts.headers.reserve(2);
    append_via(&mut parts.headers, parts.version);
    Response::from_parts(parts, body)
}

impl Proxy {
    /// Rewrites the client's request into the one sent upstream, with the fields this hop
    /// adds that the request did not have kept apart (see [`AddedFields`]).
    fn prepare(
        &self,
        request: Request<GatewayBody>,
    ) -> Result<(Request<GatewayBody>, AddedFields), Problem> {
        let (mut parts, body) = request.into_parts();
        // Taken out here: the upstream gets either this Host back or its own (set by the pool).
        let original_host = parts.headers.remove(header::HOST).or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });

        parts.uri = self.upstream_uri(std::mem::take(&mut parts.uri))?;
        remove_hop_by_hop(&mut parts.headers);
        let added = forwarding_fields(&mut parts, original_host.as_ref());

        // Without it, the pool sets the upstream's own Host.
        if self.forwarding.preserve_host
            && let Some(host) = original_host
        {
            parts.headers.insert(header::HOST, host);
        }

        // Each hop negotiates its own protocol version.
        parts.version = Version::HTTP_11;
        Ok((Request::from_parts(parts, body), added))
    }

    /// The target in origin form (`/path?query`), as HTTP/1.1 sends it to an origin server.
    fn upstream_uri(&self, uri: Uri) -> Result<Uri, Problem> {
        let unchanged =
            self.forwarding.strip_prefix.is_none() && self.upstream.base_path.is_empty();
        if unchanged && uri.authority().is_none() {
            // The common case: the target goes upstream as it came, without re-parsing it.
            return Ok(uri);
        }
        let path_and_query = match uri.path_and_query() {
            Some(path_and_query) if unchanged => path_and_query.clone(),
            _ => self.rewritten_target(&uri)?,
        };
        Ok(Uri::from(path_and_query))
    }

    /// The target with the route's prefix stripped and the upstream's base path prepended.
    fn rewritten_target(&self, uri: &Uri) -> Result<PathAndQuery, Problem> {
        let path = uri.path();
        let path = match &self.forwarding.strip_prefix {
            Some(prefix) => path.strip_prefix(prefix.as_ref()).unwrap_or(path),
            None => path,
        };
        let separator = if path.starts_with('/') { "" } else { "/" };

        let mut target = format!("{}{separator}{path}", self.upstream.base_path);
        if let Some(query) = uri.query() {
            target.push('?');
            target.push_str(query);
        }
        PathAndQuery::try_from(target).map_err(|_| {
            Problem::new(StatusCode::BAD_REQUEST)
                .with_detail("the request target is not a valid path")
        })
    }
}

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub(crate) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    if !carries_any(headers, &HOP_BY_HOP) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Whether `headers` holds any of `names`.
///
/// Most messages carry none of the headers a proxy strips. Comparing each name the message
/// has against a short list is cheaper than a removal per listed name, which hashes the
/// whole of each custom name, so the removals run only when something is there to remove.
fn carries_any(headers: &HeaderMap, names: &[HeaderName]) -> bool {
    headers.keys().any(|name| names.contains(name))
}

/// Forwarding headers that describe where a request came from.
const FORWARDING: [HeaderName; 4] = [
    header::FORWARDED,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
    HeaderName::from_static("x-forwarded-host"),
];

/// Drops what a peer claims about the request's origin.
///
/// The server calls this for every peer outside the trusted proxies, so the forwarding
/// headers that reach the layers and the upstream were written by us or by a trusted proxy.
pub(crate) fn remove_forwarding_claims(headers: &mut HeaderMap) {
    if !carries_any(headers, &FORWARDING) {
        return;
    }
    for name in &FORWARDING {
        headers.remove(name);
    }
}

/// This hop's forwarding fields and `Via`.
///
/// An untrusted peer's claims are already gone (see [`remove_forwarding_claims`]), so any
/// forwarding field left came from a trusted proxy: its `X-Forwarded-For` chain is extended in
/// place, and the other fields are added only where the request lacks them.
fn forwarding_fields(
    parts: &mut http::request::Parts,
    original_host: Option<&HeaderValue>,
) -> AddedFields {
    let [_, xff, proto, host] = &FORWARDING;
    // Most requests carry none: one pass over the names spares them the lookups.
    let claims = carries_any(&parts.headers, &FORWARDING);
    let has_proto = claims && parts.headers.contains_key(proto);
    let has_host = claims && parts.headers.contains_key(host);

    let mut forwarded_for = peer_value(parts);
    if claims && let Some(peer) = forwarded_for.take() {
        match parts.headers.entry(xff) {
            Entry::Vacant(_) => forwarded_for = Some(peer),
            Entry::Occupied(mut entry) => {
                let chain = entry
                    .iter()
                    .chain(std::iter::once(&peer))
                    .filter_map(|v| v.to_str().ok())
                    .collect::<Vec<_>>()
                    .join(", ");
                if let Ok(value) = HeaderValue::from_str(&chain) {
                    entry.insert(value);
                }
            }
        }
    }

    AddedFields {
        forwarded_for,
        forwarded_proto: !has_proto,
        forwarded_host: original_host.filter(|_| !has_host).cloned(),
        via: via_value(parts.version),
    }
}

/// The peer's address as a header value.
///
/// The last address formatted is kept per thread: a connection's requests, and most of a busy
/// gateway's, come from a few addresses, and a kept value is shared rather than copied.
fn peer_value(parts: &http::request::Parts) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    let PeerAddr(peer) = parts.extensions.get::<PeerAddr>()?;
    let ip = peer.ip();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((known, value)) = last.as_ref()
            && *known == ip
        {
            return Some(value.clone());
        }
        let value = address_value(ip)?;
        *last = Some((ip, value.clone()));
        Some(value)
    })
}

/// Header fields this hop adds to a request that did not have them.
///
/// They are kept out of the request's header map: an HTTP/1.1 upstream gets them written
/// straight into the message head, which spares the map a hashed insertion and a removal
/// each. Only an h2c upstream has them inserted.
#[derive(Debug)]
pub(crate) struct AddedFields {
    forwarded_for: Option<HeaderValue>,
    /// `X-Forwarded-Proto: http`.
    forwarded_proto: bool,
    forwarded_host: Option<HeaderValue>,
    via: &'static HeaderValue,
}

static FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static VIA: HeaderName = header::VIA;
static HTTP: HeaderValue = HeaderValue::from_static("http");

impl AddedFields {
    /// The fields, in a fixed order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        let forwarded_for = self.forwarded_for.as_ref().map(|v| (&FORWARDED_FOR, v));
        let proto = self.forwarded_proto.then_some((&FORWARDED_PROTO, &HTTP));
        let host = self.forwarded_host.as_ref().map(|v| (&FORWARDED_HOST, v));
        [forwarded_for, proto, host, Some((&VIA, self.via))]
            .into_iter()
            .flatten()
    }

    /// Appends the fields to `headers`, for a protocol whose encoder only reads the map.
    pub(crate) fn append_to(&self, headers: &mut HeaderMap) {
        for (name, value) in self.iter() {
            headers.append(name, value.clone());
        }
    }
}

/// An address as a header value.
///
/// IPv4, the usual peer, is written digit by digit, which keeps the formatting machinery off
/// every request; IPv6 goes through `Display`.
fn address_value(address: IpAddr) -> Option<HeaderValue> {
    let IpAddr::V4(v4) = address else {
        return HeaderValue::from_str(&address.to_string()).ok();
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = match octet {
            0..=9 => 2,
            10..=99 => 1,
            _ => 0,
        };
        for digit in &digits[skip..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    HeaderValue::from_bytes(&text[..len]).ok()
}

fn append_via(headers: &mut HeaderMap, version: Version) {
    headers.append(header::VIA, via_value(version).clone());
}

/// This hop's `Via` entry for a message that arrived in `version`.
fn via_value(version: Version) -> &'static HeaderValue {
    static VIA_10: HeaderValue = HeaderValue::from_static("1.0 rampart");
    static VIA_11: HeaderValue = HeaderValue::from_static("1.1 rampart");
    static VIA_2: HeaderValue = HeaderValue::from_static("2 rampart");
    match version {
        Version::HTTP_10 => &VIA_10,
        Version::HTTP_2 => &VIA_2,
        _ => &VIA_11,
    }
}

fn display_id(id: Option<&RequestId>) -> &str {
    id.map_or("-", RequestId::as_str)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
