//! Accepting connections, routing requests and shutting down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{Entry, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use rampart_core::{ClientIp, PeerAddr, Problem, RequestId, RouteName, TrustedProxies};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower::{Service, ServiceExt};

use crate::admin::Admin;
use crate::config::RouteConfig;
use crate::drain::Drain;
use crate::http1::server::ClientConnection;
use crate::stack::{RouteService, Shared};
use crate::telemetry::RouteMetrics;
use crate::{GatewayBody, problem_response};

/// A constant name, so that no request parses the string again.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-supplied request id kept; longer ones are replaced by a fresh id.
const MAX_REQUEST_ID_LEN: usize = 128;

/// One configured route, ready to serve.
#[derive(Debug)]
pub(crate) struct Route {
    name: RouteName,
    metrics: RouteMetrics,
    prefix: String,
    methods: Vec<http::Method>,
    service: RouteService,
}

impl Route {
    pub(crate) fn new(config: &RouteConfig, service: RouteService) -> Self {
        let name = RouteName::new(config.name.as_str());
        Self {
            metrics: RouteMetrics::new(name.clone()),
            name,
            prefix: config.prefix.clone(),
            methods: config.methods.clone(),
            service,
        }
    }

    fn matches(&self, method: &http::Method, path: &str) -> bool {
        let prefix_matches = match path.strip_prefix(self.prefix.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || self.prefix.ends_with('/'),
            None => false,
        };
        prefix_matches && (self.methods.is_empty() || self.methods.contains(method))
    }
}

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub(crate) struct Gateway {
    routes: Vec<Route>,
    admin: Admin,
    shared: Shared,
    trusted_proxies: TrustedProxies,
    admin_metrics: RouteMetrics,
    unmatched_metrics: RouteMetrics,
}

impl Gateway {
    pub(crate) fn new(
        mut routes: Vec<Route>,
        admin: Admin,
        shared: Shared,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        // Longest prefix first, so `/api/agents/execute` wins over `/api`.
        routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Self {
            routes,
            admin,
            shared,
            trusted_proxies,
            admin_metrics: RouteMetrics::new(RouteName::new("admin")),
            unmatched_metrics: RouteMetrics::new(RouteName::new("none")),
        }
    }

    /// Handles one request from `peer`, whatever happens: errors become problem responses.
    /// `services` holds the connection's own clones of the route services.
    pub(crate) async fn handle(
        self: Arc<Self>,
        peer: SocketAddr,
        mut request: Request<GatewayBody>,
        services: &mut RouteServices,
    ) -> Handled {
        let started = Instant::now();
        let request_id = request_id(request.headers_mut());
        // A client behind a trusted proxy is recorded as such. Any other peer is the client:
        // its forwarding claims are dropped, and layers reading `TrustedProxies::client_ip_of`
        // get the peer address from `PeerAddr`, so no `ClientIp` is stored for it (one
        // extension less keeps the request's extension map from growing a second time).
        let forwarded_client = if self.trusted_proxies.is_trusted(peer.ip()) {
            Some(self.trusted_proxies.client_ip(request.headers(), peer.ip()))
        } else {
            crate::proxy::remove_forwarding_claims(request.headers_mut());
            None
        };

        // Room for the fields the gateway may still insert on the way up (forwarding fields
        // and `Via` for an h2c upstream) in one step: a map parsed by hyper is sized to what
        // arrived, and growing it field by field reallocates. Maps from our HTTP/1.1 codec
        // have the room already, which makes this a comparison.
        request.headers_mut().reserve(5);
        let extensions = request.extensions_mut();
        extensions.insert(PeerAddr(peer));
        if let Some(client_ip) = forwarded_client {
            extensions.insert(ClientIp(client_ip));
        }
        extensions.insert(request_id.clone());

        let path = request.uri().path();
        let (metrics, response) = if self.admin.is_admin_path(path) {
            // Boxed: the readiness check's Redis round trip would otherwise make every
            // request's future larger, and it is moved and touched on every request.
            let respond = self
                .admin
                .respond(request.method(), path, &self.shared, &request_id);
            let response = Box::pin(respond).await;
            (&self.admin_metrics, response)
        } else if let Some((index, route)) = self
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(request.method(), path))
        {
            request.extensions_mut().insert(route.name.clone());
            let service = services.of(index, &route.service);
            let response = match service.ready().await {
                Ok(service) => service.call(request).await,
                Err(never) => match never {},
            };
            let response = match response {
                Ok(response) => response,
                Err(never) => match never {},
            };
            (&route.metrics, response)
        } else {
            tracing::debug!(request.id = %request_id, path, "no route matches");
            let problem = Problem::new(StatusCode::NOT_FOUND)
                .with_detail("no route matches this path and method")
                .with_request_id(Some(&request_id));
            (&self.unmatched_metrics, problem_response(problem))
        };

        metrics.record(response.status(), started.elapsed());
        Handled {
            response,
            request_id: request_id.header_value().clone(),
        }
    }
}

/// A response, and the `X-Request-Id` it still has to carry: the HTTP/1.1 encoder writes it
/// straight into the head (see [`Handled::into_response`] for other protocols), which spares
/// the response's header map an insertion.
#[derive(Debug)]
pub(crate) struct Handled {
    pub(crate) response: Response<GatewayBody>,
    pub(crate) request_id: HeaderValue,
}

impl Handled {
    /// The response with its `X-Request-Id` set.
    pub(crate) fn into_response(self) -> Response<GatewayBody> {
        let Self {
            mut response,
            request_id,
        } = self;
        response.headers_mut().insert(&REQUEST_ID, request_id);
        response
    }
}

/// A client connection's own clones of the route services, made on first use.
///
/// A tower service is called through `&mut self`, so a shared one is cloned per call; for the
/// boxed route stack that is an allocation and a reference count per layer. A keep-alive
/// connection clones each route it uses once instead.
#[derive(Default)]
pub(crate) struct RouteServices(Vec<Option<RouteService>>);

impl RouteServices {
    fn of(&mut self, index: usize, shared: &RouteService) -> &mut RouteService {
        if self.0.len() <= index {
            self.0.resize_with(index + 1, || None);
        }
        self.0[index].get_or_insert_with(|| shared.clone())
    }
}

/// The client's `X-Request-Id` when it is short visible ASCII, else a fresh UUID. The
/// request's header is left holding that id, found and set in one lookup; the id and the
/// header share their bytes.
fn request_id(headers: &mut HeaderMap) -> RequestId {
    let sane = |value: &HeaderValue| {
        let id = value.as_bytes();
        !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.iter().all(u8::is_ascii_graphic)
    };
    match headers.entry(&REQUEST_ID) {
        Entry::Occupied(mut entry) => {
            if sane(entry.get())
                && let Some(id) = RequestId::from_header(entry.get().clone())
            {
                return id;
            }
            let id = fresh_request_id();
            entry.insert(id.header_value().clone());
            id
        }
        Entry::Vacant(entry) => {
            let id = fresh_request_id();
            entry.insert(id.header_value().clone());
            id
        }
    }
}

/// A new random id, UUID v4 in its hyphenated form.
///
/// The bits come from a per-thread generator seeded from the operating system's randomness
/// (through std's `RandomState`): an id must be unique, not unguessable, and a cryptographic
/// generator costs several times as much per request. The text is made in one allocation
/// that the request's header, the response's and the `RequestId` all share.
fn fresh_request_id() -> RequestId {
    let uuid = uuid::Builder::from_random_bytes(id_bits::next().to_le_bytes()).into_uuid();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid.hyphenated().encode_lower(&mut text);
    HeaderValue::from_maybe_shared(Bytes::from_owner(text))
        .ok()
        .and_then(RequestId::from_header)
        // Unreachable: hex digits and hyphens are a valid header value.
        .unwrap_or_else(|| RequestId::new("-"))
}

/// 128 random bits at a time from two wyrand streams, one pair per thread.
mod id_bits {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};

    thread_local! {
        static STATE: Cell<[u64; 2]> = Cell::new(seed());
    }

    fn seed() -> [u64; 2] {
        let random = std::collections::hash_map::RandomState::new();
        let mut first = random.build_hasher();
        first.write_u8(1);
        let mut second = random.build_hasher();
        second.write_u8(2);
        [first.finish(), second.finish()]
    }

    fn wyrand(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0xa076_1d64_78bd_642f);
        let product = u128::from(*state) * u128::from(*state ^ 0xe703_7ed1_a0b4_28db);
        #[allow(clippy::cast_possible_truncation)] // folding the product's halves
        let folded = (product >> 64) as u64 ^ product as u64;
        folded
    }

    pub(super) fn next() -> u128 {
        STATE.with(|cell| {
            let mut state = cell.get();
            let high = wyrand(&mut state[0]);
            let low = wyrand(&mut state[1]);
            cell.set(state);
            u128::from(high) << 64 | u128::from(low)
        })
    }
}

/// Serves until SIGTERM or Ctrl-C, then drains in-flight requests for up to `grace`.
pub(crate) async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    grace: Duration,
    header_read_timeout: Duration,
) -> anyhow::Result<()> {
    let drain = Drain::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Usually the process ran out of file descriptors: back off briefly.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);

        let connection = ClientConnection::new(stream, peer, gateway.clone(), header_read_timeout);
        tokio::spawn(drain.watch(connection, ClientConnection::graceful_shutdown));
    }

    drop(listener);
    tracing::info!(grace = ?grace, "shutting down: no new connections, draining in-flight requests");
    tokio::select! {
        () = drain.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over, closing remaining connections"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
