//! Rate limits through the real gateway binary: default and per-route quotas, one budget shared
//! by two gateways through one redis-server, and what happens while Redis is away.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use rampart_test_support::{Behavior, RedisServer, Upstream};
use support::{Gateway, body_json, client};

/// An upstream, default quotas, and a POST-only execute route with a quota of its own.
fn config(upstream: &str, defaults: &str, execute: &str, extra: &str) -> String {
    format!(
        "{extra}\n[ratelimit]\n{defaults}\n\n\
         [upstreams.agents]\nurl = \"{upstream}\"\n\n\
         [[routes]]\nname = \"execute\"\nprefix = \"/api/agents/execute\"\n\
         methods = [\"POST\"]\nupstream = \"agents\"\n\n\
         [routes.ratelimit]\n{execute}\n\n\
         [[routes]]\nname = \"agents\"\nprefix = \"/api/agents\"\nupstream = \"agents\"\n"
    )
}

async fn call(
    gateway: &Gateway,
    method: &str,
    path: &str,
    client_ip: &str,
) -> http::Response<hyper::body::Incoming> {
    let request = Request::builder()
        .method(method)
        .uri(gateway.uri(path))
        // The test client is loopback; this gateway trusts loopback as a proxy, so each test
        // client can present its own address.
        .header("x-forwarded-for", client_ip)
        .body(Full::new(Bytes::new()))
        .unwrap();
    client().request(request).await.unwrap()
}

/// The sum of a counter over the series that carry every one of `labels`.
fn counter(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn route_quota_and_default_quotas_apply_together() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&config(
        &upstream.url(),
        "quotas = [\"8/hour\"]",
        "quotas = [\"3/minute\"]",
        "trusted_proxies = [\"127.0.0.1\"]",
    ))
    .await;

    // The execute route admits its three, then refuses with the draft headers.
    for _ in 0..3 {
        let response = call(&gateway, "POST", "/api/agents/execute", "198.51.100.1").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = call(&gateway, "POST", "/api/agents/execute", "198.51.100.1").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "20");
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"8/hour\";q=8;w=3600, \"execute:3/minute\";q=3;w=60"
    );
    let problem = body_json(refused.into_body()).await;
    assert_eq!(problem["status"], 429);
    assert!(problem["request_id"].is_string());

    // Other routes still serve this client from what is left of the shared default budget.
    for _ in 0..5 {
        let response = call(&gateway, "GET", "/api/agents/status", "198.51.100.1").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = call(&gateway, "GET", "/api/agents/status", "198.51.100.1").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another client is untouched; the upstream saw only admitted requests.
    let response = call(&gateway, "GET", "/api/agents/status", "198.51.100.2").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(upstream.requests().len(), 9);
}

#[tokio::test]
async fn unnamed_quota_tables_of_two_routes_are_separate_budgets() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let route = |name: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nprefix = \"/{name}\"\nupstream = \"agents\"\n\
             [routes.ratelimit]\nquotas = [{{ rate = \"1/minute\" }}]\n\n"
        )
    };
    let config = format!(
        "[upstreams.agents]\nurl = \"{}\"\n\n{}{}",
        upstream.url(),
        route("a"),
        route("b")
    );
    let gateway = Gateway::start(&config).await;

    // Route a spends its one request; route b still has its own.
    assert_eq!(
        call(&gateway, "GET", "/a", "-").await.status(),
        StatusCode::OK
    );
    let refused = call(&gateway, "GET", "/a", "-").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["ratelimit-policy"],
        "\"a:1/minute\";q=1;w=60"
    );
    assert_eq!(
        call(&gateway, "GET", "/b", "-").await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_budget_and_survive_redis_restarts() {
    let mut redis = RedisServer::start();
    let upstream = Upstream::start(Behavior::Echo).await;
    let text = config(
        &upstream.url(),
        "quotas = [\"10/hour\"]\nbackend = \"redis\"\n\n[ratelimit.redis]\n\
         deadline = \"2s\"\non_failure = \"closed\"\nretry_interval = \"100ms\"",
        "",
        &format!(
            "trusted_proxies = [\"127.0.0.1\"]\n\n[redis]\nurl = \"{}\"",
            redis.url()
        ),
    );
    let a = Gateway::start(&text).await;
    let b = Gateway::start(&text).await;

    // 40 concurrent requests from one client over both gateways: exactly 10 pass.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let uri = if i % 2 == 0 {
            a.uri("/api/agents/x")
        } else {
            b.uri("/api/agents/x")
        };
        tasks.push(tokio::spawn(async move {
            let request = Request::get(uri)
                .header("x-forwarded-for", "203.0.113.50")
                .body(Full::new(Bytes::new()))
                .unwrap();
            client().request(request).await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, limited), (10, 30), "{statuses:?}");

    // Redis dies: the configured policy (closed) answers 503, never a 500.
    redis.stop();
    for gateway in [&a, &b] {
        let response = call(gateway, "GET", "/api/agents/x", "203.0.113.51").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }
    a.log_containing("rate limit backend unavailable").await;

    // Operators see the outage in the metrics: failed backend calls, and the refused
    // requests counted as decisions the limiter could not make.
    let metrics = a.metrics().await;
    let backend_errors = counter(
        &metrics,
        "rampart_ratelimit_backend_errors_total",
        &["backend=\"redis\""],
    );
    assert!(backend_errors >= 1.0, "{metrics}");
    let undecided = counter(
        &metrics,
        "rampart_ratelimit_decisions_total",
        &["route=\"agents\"", "outcome=\"error\""],
    );
    assert!(undecided >= 1.0, "{metrics}");

    // Redis returns; without restarting either gateway, they share one budget again.
    redis.restart();
    let mut recovered = false;
    for _ in 0..100 {
        let response = call(&a, "GET", "/api/agents/x", "203.0.113.52").await;
        if response.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "gateway a never used redis again:\n{}", a.log());
    let mut shared = 1;
    for gateway in [&b, &a].into_iter().cycle().take(20) {
        let response = call(gateway, "GET", "/api/agents/x", "203.0.113.52").await;
        if response.status() == StatusCode::OK {
            shared += 1;
        } else {
            assert_ne!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    assert_eq!(shared, 10);
}

#[tokio::test]
async fn a_bad_quota_stops_the_gateway_at_start() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let stderr = support::check_config_fails(&format!(
        "listen = \"127.0.0.1:1\"\n{}",
        config(&upstream.url(), "quotas = [\"50/fortnight\"]", "", "")
    ));
    assert!(stderr.contains("50/fortnight"), "{stderr}");
}

#[tokio::test]
async fn check_config_catches_a_zero_redis_deadline() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let defaults = "quotas = [\"5/minute\"]\n[ratelimit.redis]\ndeadline = \"0s\"";
    let stderr = support::check_config_fails(&format!(
        "listen = \"127.0.0.1:1\"\n{}",
        config(&upstream.url(), defaults, "", "")
    ));
    assert!(stderr.contains("[ratelimit.redis]"), "{stderr}");
    assert!(stderr.contains("deadline"), "{stderr}");
}
