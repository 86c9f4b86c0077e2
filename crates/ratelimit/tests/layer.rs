//! The layer as a client sees it, on paused time with the in-memory backend.
// A test that meets something unexpected should fail loudly.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use rampart_core::{CredentialKind, Identity, PeerAddr, RequestId, RouteName};
use rampart_ratelimit::{RateLimit, RateLimitConfig, RateLimitLayer, RateLimiter, RequestCost};
use tower::{Layer, Service, ServiceExt};

type Svc = RateLimit<tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>>;

fn service(config: &str) -> Svc {
    let config: RateLimitConfig = toml::from_str(config).unwrap();
    let limiter = RateLimiter::memory(&config).unwrap();
    let echo = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    });
    RateLimitLayer::new(limiter).layer(tower::util::BoxCloneService::new(echo))
}

fn from(peer: &str) -> Request<String> {
    let mut request = Request::new(String::new());
    let addr: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(PeerAddr(addr));
    request
}

async fn send(
    svc: &mut Svc,
    request: Request<String>,
) -> Response<rampart_core::ResponseBody<String>> {
    svc.ready().await.unwrap().call(request).await.unwrap()
}

fn header<B>(response: &Response<B>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(start_paused = true)]
async fn burst_then_429_with_exact_retry_after_then_refill() {
    let mut svc = service(r#"quotas = ["5/minute"]"#);

    // The burst of five passes, each response counting down.
    for left in (0..5).rev() {
        let response = send(&mut svc, from("203.0.113.9:1000")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "ratelimit-policy"),
            r#""5/minute";q=5;w=60"#
        );
        assert_eq!(
            header(&response, "ratelimit"),
            format!(r#""5/minute";r={left};t={}"#, 60 - 12 * left)
        );
    }

    // The sixth is refused, told to come back in exactly one emission interval.
    let mut request = from("203.0.113.9:1000");
    request.extensions_mut().insert(RequestId::new("req-42"));
    let refused = send(&mut svc, request).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "12");
    assert_eq!(header(&refused, "content-type"), "application/problem+json");
    assert_eq!(header(&refused, "ratelimit"), r#""5/minute";r=0;t=60"#);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["request_id"], "req-42");
    assert!(problem["detail"].as_str().unwrap().contains("5/minute"));

    // A second short of the wait is still too early.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(send(&mut svc, from("203.0.113.9:1000")).await.status(), 429);

    // After it, exactly one more request passes.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(send(&mut svc, from("203.0.113.9:1000")).await.status(), 200);
    assert_eq!(send(&mut svc, from("203.0.113.9:1000")).await.status(), 429);
}

#[tokio::test(start_paused = true)]
async fn every_quota_applies_and_refusals_consume_none() {
    let mut svc = service(r#"quotas = ["3/minute", "4/hour"]"#);

    // Three pass, the fourth hits the minute quota.
    for _ in 0..3 {
        assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 200);
    }
    let refused = send(&mut svc, from("203.0.113.9:1")).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "20");
    // The hourly quota was not charged for the refusal.
    assert_eq!(
        header(&refused, "ratelimit"),
        r#""3/minute";r=0;t=60, "4/hour";r=1;t=2700"#
    );

    // A minute later the minute quota has room, but the hour has one request left.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 200);
    let refused = send(&mut svc, from("203.0.113.9:1")).await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .starts_with(b"{")
    );
}

#[tokio::test(start_paused = true)]
async fn cost_weighs_more() {
    let mut svc = service(r#"quotas = ["10/minute"]"#);

    // A request of cost 7 leaves 3.
    let mut heavy = from("203.0.113.9:1");
    heavy.extensions_mut().insert(RequestCost(7));
    let response = send(&mut svc, heavy).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "ratelimit"), r#""10/minute";r=3;t=42"#);

    // Another of cost 7 is refused until four more intervals (6 s each) have passed.
    let mut heavy = from("203.0.113.9:1");
    heavy.extensions_mut().insert(RequestCost(7));
    let refused = send(&mut svc, heavy).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "24");

    // A request costing more than the whole burst is refused without a Retry-After.
    let mut huge = from("203.0.113.9:2");
    huge.extensions_mut().insert(RequestCost(11));
    let refused = send(&mut svc, huge).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_none());

    // A cost of zero still spends one.
    let mut free = from("203.0.113.10:1");
    free.extensions_mut().insert(RequestCost(0));
    let response = send(&mut svc, free).await;
    assert_eq!(header(&response, "ratelimit"), r#""10/minute";r=9;t=6"#);
}

#[tokio::test(start_paused = true)]
async fn configured_cost_applies_to_every_request() {
    let mut svc = service("quotas = [\"10/minute\"]\ncost = 5");
    assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 200);
    assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 200);
    assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 429);
}

#[tokio::test(start_paused = true)]
async fn clients_are_keyed_by_ip() {
    let mut svc = service(r#"quotas = ["1/minute"]"#);
    assert_eq!(send(&mut svc, from("203.0.113.9:1")).await.status(), 200);
    // Another port of the same address is the same client.
    assert_eq!(send(&mut svc, from("203.0.113.9:2")).await.status(), 429);
    // Another address has its own budget.
    assert_eq!(send(&mut svc, from("198.51.100.1:1")).await.status(), 200);
    // An IPv6 neighbour in the same /64 shares it; another /64 does not.
    assert_eq!(
        send(&mut svc, from("[2001:db8:0:1::1]:1")).await.status(),
        200
    );
    assert_eq!(
        send(&mut svc, from("[2001:db8:0:1::2]:1")).await.status(),
        429
    );
    assert_eq!(
        send(&mut svc, from("[2001:db8:0:2::1]:1")).await.status(),
        200
    );
}

#[tokio::test(start_paused = true)]
async fn identities_are_keyed_by_subject_and_anonymous_by_ip() {
    let mut svc = service("quotas = [\"1/minute\"]\nkey = [\"subject\"]");
    let as_user = |subject: &str, peer: &str| {
        let mut request = from(peer);
        request
            .extensions_mut()
            .insert(Identity::new(subject, CredentialKind::ApiKey));
        request
    };

    // Alice from two addresses has one budget.
    assert_eq!(
        send(&mut svc, as_user("alice", "203.0.113.1:1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&mut svc, as_user("alice", "203.0.113.2:1"))
            .await
            .status(),
        429
    );
    // Bob from Alice's address has his own.
    assert_eq!(
        send(&mut svc, as_user("bob", "203.0.113.1:1"))
            .await
            .status(),
        200
    );
    // Anonymous requests fall back to their address.
    assert_eq!(send(&mut svc, from("203.0.113.1:1")).await.status(), 200);
    assert_eq!(send(&mut svc, from("203.0.113.1:1")).await.status(), 429);
    assert_eq!(send(&mut svc, from("203.0.113.3:1")).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn api_key_ids_are_keys_too() {
    let mut svc = service("quotas = [\"1/minute\"]\nkey = [\"api_key\"]");
    let with_key = |id: &str| {
        let mut identity = Identity::new("same-owner", CredentialKind::ApiKey);
        identity.credential_id = Some(id.to_owned());
        let mut request = from("203.0.113.1:1");
        request.extensions_mut().insert(identity);
        request
    };
    assert_eq!(send(&mut svc, with_key("key-1")).await.status(), 200);
    assert_eq!(send(&mut svc, with_key("key-1")).await.status(), 429);
    assert_eq!(send(&mut svc, with_key("key-2")).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn routes_are_keyed_separately_when_asked() {
    let mut svc = service("quotas = [\"1/minute\"]\nkey = [\"ip\", \"route\"]");
    let on = |route: &str| {
        let mut request = from("203.0.113.1:1");
        request.extensions_mut().insert(RouteName::new(route));
        request
    };
    assert_eq!(send(&mut svc, on("execute")).await.status(), 200);
    assert_eq!(send(&mut svc, on("execute")).await.status(), 429);
    assert_eq!(send(&mut svc, on("status")).await.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn x_forwarded_for_counts_only_through_trusted_proxies() {
    let mut svc = service("quotas = [\"1/minute\"]\ntrusted_proxies = [\"10.0.0.0/8\"]");
    let forwarded = |peer: &str, xff: &str| {
        let mut request = from(peer);
        request
            .headers_mut()
            .insert("x-forwarded-for", xff.parse().unwrap());
        request
    };

    // Through the trusted proxy, two clients are told apart by the header.
    assert_eq!(
        send(&mut svc, forwarded("10.0.0.5:1", "198.51.100.1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&mut svc, forwarded("10.0.0.5:1", "198.51.100.2"))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&mut svc, forwarded("10.0.0.6:1", "198.51.100.1"))
            .await
            .status(),
        429
    );

    // A direct client cannot escape its budget by forging the header.
    assert_eq!(
        send(&mut svc, forwarded("203.0.113.7:1", "1.1.1.1"))
            .await
            .status(),
        200
    );
    assert_eq!(
        send(&mut svc, forwarded("203.0.113.7:1", "2.2.2.2"))
            .await
            .status(),
        429
    );
}

#[tokio::test(start_paused = true)]
async fn shadow_quotas_observe_but_never_refuse() {
    let mut svc =
        service(r#"quotas = ["10/minute", { name = "trial", rate = "1/minute", shadow = true }]"#);
    for _ in 0..10 {
        let response = send(&mut svc, from("203.0.113.1:1")).await;
        assert_eq!(response.status(), 200);
        // Shadow quotas stay out of the client's headers.
        assert!(!header(&response, "ratelimit-policy").contains("trial"));
    }
    assert_eq!(send(&mut svc, from("203.0.113.1:1")).await.status(), 429);
}

#[tokio::test(start_paused = true)]
async fn legacy_headers_describe_the_tightest_quota() {
    let mut svc = service("quotas = [\"100/hour\", \"2/minute\"]\nheaders = \"legacy\"");
    let response = send(&mut svc, from("203.0.113.1:1")).await;
    assert_eq!(header(&response, "x-ratelimit-limit"), "2");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "1");
    assert_eq!(header(&response, "x-ratelimit-reset"), "30");
    assert!(response.headers().get("ratelimit").is_none());
}

#[tokio::test(start_paused = true)]
async fn no_headers_when_asked_but_still_retry_after() {
    let mut svc = service("quotas = [\"1/minute\"]\nheaders = \"none\"");
    let response = send(&mut svc, from("203.0.113.1:1")).await;
    assert!(response.headers().get("ratelimit").is_none());
    let refused = send(&mut svc, from("203.0.113.1:1")).await;
    assert_eq!(header(&refused, "retry-after"), "60");
}

#[tokio::test(start_paused = true)]
async fn counts_decisions_per_route_quota_and_outcome() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut svc = service(r#"quotas = ["1/minute"]"#);

    // The memory backend decides inside `call`, so a local recorder sees it.
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..3 {
            let mut request = from("203.0.113.1:1");
            request.extensions_mut().insert(RouteName::new("execute"));
            drop(svc.call(request));
        }
    });

    let mut counts = std::collections::BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        if key.name() != "rampart_ratelimit_decisions_total" {
            continue;
        }
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        if let DebugValue::Counter(n) = value {
            counts.insert(labels.join(","), n);
        }
    }
    assert_eq!(
        counts.get("route=execute,quota=1/minute,outcome=allowed"),
        Some(&1)
    );
    assert_eq!(
        counts.get("route=execute,quota=1/minute,outcome=limited"),
        Some(&2)
    );
}

#[tokio::test(start_paused = true)]
async fn readiness_is_the_inner_services() {
    let limiter = RateLimiter::memory(&RateLimitConfig::with_quotas(["1/minute"])).unwrap();
    let (inner, mut handle) = tower_test::mock::pair::<Request<String>, Response<String>>();
    let mut svc = tower_test::mock::Spawn::new(RateLimitLayer::new(limiter).layer(inner));

    // The inner service is not ready, so neither is the limiter: it never queues requests.
    handle.allow(0);
    assert!(svc.poll_ready().is_pending());

    // Once the inner service is ready, the request goes through to it.
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let future = svc.call(from("203.0.113.1:1"));
    let (request, respond) = handle.next_request().await.unwrap();
    assert!(request.extensions().get::<PeerAddr>().is_some());
    respond.send_response(Response::new(String::from("done")));
    assert_eq!(future.await.unwrap().status(), 200);
}
