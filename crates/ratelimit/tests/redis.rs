//! The Redis backend against real redis-server processes.
// A test that meets something unexpected should fail loudly.
#![allow(clippy::unwrap_used)]
#![cfg(feature = "redis")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use rampart_core::PeerAddr;
use rampart_core::redis::{RedisConfig, RedisPool};
use rampart_ratelimit::{
    FailurePolicy, Outcome, RateLimit, RateLimitConfig, RateLimitLayer, RateLimiter, RedisBackend,
    RedisBackendConfig,
};
use rampart_test_support::{RedisCluster, RedisServer};
use tower::{Layer, ServiceExt};

type Svc = RateLimit<tower::util::BoxCloneService<Request<String>, Response<String>, Infallible>>;

/// A gateway instance of its own: its own pool, backend and limiter.
fn instance(redis: &RedisConfig, quotas: &[&str], backend: RedisBackendConfig) -> Svc {
    let pool = RedisPool::new(redis).unwrap();
    let backend = RedisBackend::new(pool, backend).unwrap();
    let limiter = RateLimiter::new(&RateLimitConfig::with_quotas(quotas), backend).unwrap();
    let echo = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::from("ok")))
    });
    RateLimitLayer::new(limiter).layer(tower::util::BoxCloneService::new(echo))
}

/// Generous deadlines: the machine running the tests is shared, and a timeout here would be
/// the failure policy at work, not the shared budget.
/// A generous deadline, and failures answered 503 so that a broken script or connection can
/// never pass for a decision the in-memory fallback made.
fn patient() -> RedisBackendConfig {
    RedisBackendConfig {
        deadline: Duration::from_secs(5),
        on_failure: FailurePolicy::Closed,
        ..RedisBackendConfig::default()
    }
}

fn from(peer: &str) -> Request<String> {
    let mut request = Request::new(String::new());
    let addr: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(PeerAddr(addr));
    request
}

async fn status(svc: &Svc, peer: &str) -> StatusCode {
    svc.clone().oneshot(from(peer)).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_one_budget_exactly() {
    let server = RedisServer::start();
    let a = instance(
        &RedisConfig::standalone(server.url()),
        &["25/hour"],
        patient(),
    );
    let b = instance(
        &RedisConfig::standalone(server.url()),
        &["25/hour"],
        patient(),
    );

    // 100 concurrent requests from one client, spread over both gateways.
    let mut tasks = Vec::new();
    for i in 0..100 {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            svc.oneshot(from("203.0.113.9:1")).await.unwrap().status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }

    // Exactly the quota passes, the rest are 429, none is an error.
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((ok, limited), (25, 75));

    // The budget is keyed: another client still has its own.
    assert_eq!(status(&b, "198.51.100.1:1").await, StatusCode::OK);
}

#[tokio::test]
async fn retry_after_and_headers_come_from_server_time() {
    let server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["2/minute"],
        patient(),
    );

    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    let refused = svc.clone().oneshot(from("203.0.113.9:1")).await.unwrap();
    assert_eq!(refused.status(), 429);

    // The wait is one interval (30 s) less the little time the requests took.
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((29..=30).contains(&wait), "retry-after {wait}");
    let state = refused.headers()["ratelimit"].to_str().unwrap();
    assert!(state.starts_with("\"2/minute\";r=0;t="), "{state}");

    // The keys carry a TTL, so Redis forgets idle clients by itself.
    let keys = server.command(&["KEYS", "rampart:rl:*"]);
    assert!(
        keys.contains("rampart:rl:{ip:203.0.113.9}:2/minute"),
        "{keys}"
    );
    let ttl = server.command(&["PTTL", "rampart:rl:{ip:203.0.113.9}:2/minute"]);
    let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!(ttl > 0 && ttl <= 60_001, "pttl {ttl}");
}

#[tokio::test]
async fn a_script_flush_falls_back_to_eval() {
    let server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["3/minute"],
        patient(),
    );
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);

    // The server forgets the script; the next call loads it again and counts on.
    assert!(server.command(&["SCRIPT", "FLUSH"]).starts_with("+OK"));
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 429);
}

#[tokio::test]
async fn several_quotas_are_decided_in_one_call() {
    let server = RedisServer::start();
    let pool = RedisPool::new(&RedisConfig::standalone(server.url())).unwrap();
    let backend = RedisBackend::new(pool, patient()).unwrap();
    let limiter = RateLimiter::new(
        &RateLimitConfig::with_quotas(["10/minute", "2/hour"]),
        backend,
    )
    .unwrap();

    assert!(matches!(limiter.check("k", 1).await, Outcome::Decided(d) if d.is_allowed()));
    assert!(matches!(limiter.check("k", 1).await, Outcome::Decided(d) if d.is_allowed()));
    let Outcome::Decided(refused) = limiter.check("k", 1).await else {
        panic!("redis did not decide");
    };
    assert!(!refused.is_allowed());

    // The refusal by the hourly quota left the minute quota as it was: 8 left.
    assert_eq!(refused.quotas()[0].remaining(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_on_a_three_node_cluster() {
    let mut cluster = RedisCluster::start();
    let a = instance(
        &RedisConfig::cluster(cluster.urls()),
        &["10/hour", "8/minute"],
        patient(),
    );
    let b = instance(
        &RedisConfig::cluster(cluster.urls()),
        &["10/hour", "8/minute"],
        patient(),
    );

    // Many clients, so their keys land on every node; each sends its twelve requests at
    // once over both instances, and each gets exactly its budget.
    for client in 0..12 {
        let peer = format!("198.51.100.{client}:1");
        let mut calls = Vec::new();
        for i in 0..12 {
            let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
            let peer = peer.clone();
            calls.push(tokio::spawn(async move {
                svc.oneshot(from(&peer)).await.unwrap().status()
            }));
        }
        let mut ok = 0;
        for call in calls {
            if call.await.unwrap() == StatusCode::OK {
                ok += 1;
            }
        }
        assert_eq!(ok, 8, "client {client}");
    }

    // Every node holds some of the clients' state: the keys really spread over the slots.
    for node in cluster.nodes_mut() {
        let reply = node.command(&["DBSIZE"]);
        let keys: u64 = reply.trim().trim_start_matches(':').parse().unwrap();
        assert!(keys > 0, "node {} holds no keys", node.port());
    }
}

#[tokio::test]
async fn redis_down_fail_closed_answers_503_then_recovers() {
    let mut server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["2/hour"],
        RedisBackendConfig {
            on_failure: FailurePolicy::Closed,
            retry_interval: Duration::from_millis(100),
            deadline: Duration::from_secs(2),
            ..RedisBackendConfig::default()
        },
    );
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);

    // Redis dies: requests are refused with 503, never a 500 or a hang.
    server.stop();
    let refused = svc.clone().oneshot(from("203.0.113.9:1")).await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));

    // Redis returns (empty: it kept nothing on disk); the same limiter uses it again.
    server.restart();
    let recovered = wait_for(&svc, "203.0.113.9:1", StatusCode::OK).await;
    assert!(
        recovered,
        "the limiter did not use redis again after it came back"
    );
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 429);
}

#[tokio::test]
async fn redis_down_fail_open_lets_requests_through() {
    let mut server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["1/hour"],
        RedisBackendConfig {
            on_failure: FailurePolicy::Open,
            ..patient()
        },
    );
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 429);

    server.stop();
    for _ in 0..5 {
        assert_eq!(status(&svc, "198.51.100.4:1").await, 200);
    }
    // The client Redis refused before is still known to be over its limit.
    assert_eq!(status(&svc, "203.0.113.9:1").await, 429);
}

#[tokio::test]
async fn a_flood_from_a_refused_key_stays_off_redis() {
    let server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["2/hour"],
        patient(),
    );
    let script_calls = || {
        let stats = server.command(&["INFO", "commandstats"]);
        let calls = |name: &str| -> u64 {
            stats
                .lines()
                .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
                .and_then(|rest| rest.split(',').next()?.parse().ok())
                .unwrap_or(0)
        };
        calls("evalsha") + calls("eval")
    };

    // Two pass and the third is refused, each asked of Redis.
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 200);
    assert_eq!(status(&svc, "203.0.113.9:1").await, 429);
    let before = script_calls();
    assert!(before >= 3, "{before} script calls");

    // The flood that follows is refused locally, with the same answer, and Redis sees none.
    for _ in 0..50 {
        let refused = svc.clone().oneshot(from("203.0.113.9:1")).await.unwrap();
        assert_eq!(refused.status(), 429);
        let wait: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1_700..=1_800).contains(&wait), "retry-after {wait}");
    }
    assert_eq!(script_calls(), before);

    // Another client still goes to Redis.
    assert_eq!(status(&svc, "198.51.100.4:1").await, 200);
    assert_eq!(script_calls(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_local_fallback_limits_then_shared_limiting_returns() {
    let mut server = RedisServer::start();
    let config = RedisBackendConfig {
        on_failure: FailurePolicy::Local,
        retry_interval: Duration::from_millis(100),
        deadline: Duration::from_secs(2),
        ..RedisBackendConfig::default()
    };
    let a = instance(
        &RedisConfig::standalone(server.url()),
        &["3/hour"],
        config.clone(),
    );
    let b = instance(&RedisConfig::standalone(server.url()), &["3/hour"], config);

    // Shared: three over both gateways, then refused on both.
    for svc in [&a, &b, &a] {
        assert_eq!(status(svc, "203.0.113.9:1").await, 200);
    }
    assert_eq!(status(&b, "203.0.113.9:1").await, 429);

    // Redis dies: each gateway limits on its own with the same quota, no 500s.
    server.stop();
    let mut local = Vec::new();
    for _ in 0..4 {
        local.push(status(&a, "203.0.113.9:1").await);
    }
    assert_eq!(local, [200, 200, 200, 429]);

    // Redis returns empty; once the retry interval passes, both gateways share it again.
    // (A fresh client: the old one is still remembered as over its limit by `b`, which is
    // right about every Redis that kept its data.)
    server.restart();
    // Let the retry interval after the last failure pass, so the next request asks Redis
    // rather than the local store.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut shared = Vec::new();
    for svc in [&a, &b, &a, &b] {
        shared.push(status(svc, "203.0.113.10:1").await);
    }
    assert_eq!(shared, [200, 200, 200, 429]);
}

#[tokio::test]
async fn redis_slower_than_the_deadline_triggers_the_policy() {
    let server = RedisServer::start();
    let svc = instance(
        &RedisConfig::standalone(server.url()),
        &["5/hour"],
        RedisBackendConfig {
            on_failure: FailurePolicy::Closed,
            deadline: Duration::from_millis(50),
            retry_interval: Duration::from_millis(100),
            ..RedisBackendConfig::default()
        },
    );
    // Warm the pool so that the pause below is the only slow part.
    assert!(wait_for(&svc, "203.0.113.9:1", StatusCode::OK).await);

    // Redis stops answering for two seconds: the request gives up after the deadline.
    assert!(
        server
            .command(&["CLIENT", "PAUSE", "2000", "ALL"])
            .starts_with("+OK")
    );
    assert_eq!(
        status(&svc, "203.0.113.9:1").await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // When the pause ends, the same limiter decides in Redis again.
    assert!(wait_for(&svc, "203.0.113.9:1", StatusCode::OK).await);
}

/// Polls until a request gets `expected`, for at most ten seconds.
async fn wait_for(svc: &Svc, peer: &str, expected: StatusCode) -> bool {
    for _ in 0..200 {
        if status(svc, peer).await == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
