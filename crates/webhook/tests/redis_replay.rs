//! Replay protection shared through a real redis-server (and a real Redis Cluster).

mod common;

use std::time::Duration;

use common::{App, counted_verifications, counts_by, expected_counts, post, serve};
use http::{HeaderMap, StatusCode};
use rampart_core::redis::{RedisConfig, RedisPool};
use rampart_test_support::{RedisCluster, RedisServer, Upstream};
use rampart_webhook::{
    ManualClock, RedisReplayStore, ReplayConfig, SchemeKind, StoreErrorPolicy, VerifyConfig,
    VerifyWebhookLayer,
};
use tower::Layer;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_700_000_000;

fn sign(id: &str, ts: u64, body: &[u8]) -> HeaderMap {
    common::signed(SchemeKind::Standard, SECRET, id, ts, body)
}

/// One receiver (think: one gateway) with its own pool to the shared Redis.
async fn receiver(redis: RedisConfig, policy: StoreErrorPolicy) -> (App, Upstream) {
    let config = VerifyConfig {
        secrets: vec![SECRET.into()],
        replay: ReplayConfig {
            namespace: "hooks".to_owned(),
            on_store_error: policy,
            ..ReplayConfig::default()
        },
        ..VerifyConfig::default()
    };
    let pool = RedisPool::new(&redis).unwrap();
    let layer = VerifyWebhookLayer::new(&config)
        .unwrap()
        .with_clock(ManualClock::at_unix(NOW))
        .with_store(RedisReplayStore::new(pool));
    let app = App::default();
    let server = serve(layer.layer(app.service())).await;
    (app, server)
}

#[tokio::test]
async fn a_replay_sent_to_another_receiver_is_refused() {
    let redis = RedisServer::start();
    let (first_app, first) = receiver(
        RedisConfig::standalone(redis.url()),
        StoreErrorPolicy::Reject,
    )
    .await;
    let (second_app, second) = receiver(
        RedisConfig::standalone(redis.url()),
        StoreErrorPolicy::Reject,
    )
    .await;

    // Delivered to the first receiver, replayed to the second.
    let headers = sign("msg_shared", NOW, b"{}");
    assert_eq!(
        post(&first.url(), &headers, b"{}", 1).await.status,
        StatusCode::OK
    );
    let answer = post(&second.url(), &headers, b"{}", 1).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:replay");
    assert_eq!((first_app.calls(), second_app.calls()), (1, 0));

    // The key lives until the timestamp leaves the 5-minute window, not forever.
    let ttl = redis.command(&["PTTL", "rampart:webhook:hooks:msg_shared"]);
    let millis: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
    assert!((299_000..=301_000).contains(&millis), "PTTL {ttl}");
}

#[tokio::test]
async fn a_failed_delivery_releases_its_id_in_redis() {
    let redis = RedisServer::start();
    let (app, server) = receiver(
        RedisConfig::standalone(redis.url()),
        StoreErrorPolicy::Reject,
    )
    .await;
    app.fail_next.store(1, std::sync::atomic::Ordering::SeqCst);

    // The inner service fails: the key is deleted so that the sender's retry can pass.
    let headers = sign("msg_failing", NOW, b"{}");
    assert_eq!(
        post(&server.url(), &headers, b"{}", 1).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        redis
            .command(&["EXISTS", "rampart:webhook:hooks:msg_failing"])
            .trim(),
        ":0"
    );
    assert_eq!(
        post(&server.url(), &headers, b"{}", 1).await.status,
        StatusCode::OK
    );
    assert_eq!(
        redis
            .command(&["EXISTS", "rampart:webhook:hooks:msg_failing"])
            .trim(),
        ":1"
    );
}

#[test]
fn redis_down_answers_503_or_accepts_as_configured() {
    let counted = counted_verifications(redis_down_scenario());

    // Each way through is counted: a webhook accepted without a replay check is not `ok`.
    let expected = expected_counts(&[
        ("store_error", 1),
        ("unchecked", 1),
        ("mismatch", 1),
        ("ok", 1),
        ("replay", 1),
    ]);
    assert_eq!(counts_by(&counted, "outcome"), expected);
}

async fn redis_down_scenario() {
    let mut redis = RedisServer::start();
    let mut config = RedisConfig::standalone(redis.url());
    config.wait_timeout = Duration::from_millis(100);
    config.create_timeout = Duration::from_millis(100);
    let (strict_app, strict) = receiver(config.clone(), StoreErrorPolicy::Reject).await;
    let (lenient_app, lenient) = receiver(config, StoreErrorPolicy::Accept).await;
    redis.stop();

    // Reject: 503 with a problem body, and the inner service is not called.
    let answer = post(&strict.url(), &sign("msg_down_1", NOW, b"{}"), b"{}", 1).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:store-error");
    assert_eq!(strict_app.calls(), 0);

    // Accept: the verified webhook goes through without a replay check.
    let answer = post(&lenient.url(), &sign("msg_down_2", NOW, b"{}"), b"{}", 1).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(lenient_app.calls(), 1);

    // Still, a bad signature is refused while Redis is down.
    let mut forged = sign("msg_down_3", NOW, b"{}");
    forged.insert(
        "webhook-signature",
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
            .parse()
            .unwrap(),
    );
    assert_eq!(
        post(&lenient.url(), &forged, b"{}", 1).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Redis back: replay protection resumes.
    redis.restart();
    let headers = sign("msg_back", NOW, b"{}");
    assert_eq!(
        post(&strict.url(), &headers, b"{}", 1).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&strict.url(), &headers, b"{}", 1).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn replays_are_caught_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let (_, first) = receiver(
        RedisConfig::cluster(cluster.urls()),
        StoreErrorPolicy::Reject,
    )
    .await;
    let (_, second) = receiver(
        RedisConfig::cluster(cluster.urls()),
        StoreErrorPolicy::Reject,
    )
    .await;

    // Ids spread over the slots of all three nodes.
    for i in 0..12 {
        let headers = sign(&format!("msg_cluster_{i}"), NOW, b"{}");
        assert_eq!(
            post(&first.url(), &headers, b"{}", 1).await.status,
            StatusCode::OK
        );
        assert_eq!(
            post(&second.url(), &headers, b"{}", 1).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}
