//! The Redis key store against a real redis-server, including Redis going away and coming back.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use rampart_auth::backend::KeyStore;
use rampart_auth::backend::redis::{OnUnavailable, RedisKeyStore, RedisKeyStoreConfig};
use rampart_auth::{ApiKeyConfig, AuthConfig, AuthLayer, Authenticator, KeyHasher};
use rampart_core::redis::{RedisConfig, RedisPool};
use rampart_test_support::RedisServer;

fn store(server: &RedisServer, on_unavailable: OnUnavailable) -> Arc<RedisKeyStore> {
    let pool = RedisPool::new(&RedisConfig::standalone(server.url())).expect("pool");
    let config = RedisKeyStoreConfig {
        key_prefix: "test:key".into(),
        cache_ttl: Duration::from_millis(200),
        negative_ttl: Duration::from_millis(200),
        timeout: Duration::from_millis(300),
        on_unavailable,
        ..RedisKeyStoreConfig::default()
    };
    Arc::new(RedisKeyStore::new(pool, config).expect("store"))
}

fn key_layer(store: Arc<RedisKeyStore>) -> AuthLayer {
    let config = AuthConfig {
        api_keys: Some(ApiKeyConfig::default()),
        ..AuthConfig::default()
    };
    layer(Authenticator::new(&config, KeyHasher::sha256(), Some(store), None).expect("auth"))
}

async fn past_cache_ttl() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

#[tokio::test]
async fn keys_are_shared_and_revocation_reaches_other_gateways_within_the_cache_ttl() {
    let server = RedisServer::start();
    let gateway_a = store(&server, OnUnavailable::Reject);
    let gateway_b = store(&server, OnUnavailable::Reject);
    let layer_b = key_layer(gateway_b.clone());

    // Created through gateway A, used through gateway B.
    let new = KeyHasher::sha256().generate("rk", "alice").expect("key");
    gateway_a.insert(new.record.clone()).await.expect("insert");
    assert_eq!(
        send_through(&layer_b, request_with("x-api-key", &new.key))
            .await
            .status,
        200
    );

    // Only the hash is in Redis.
    let raw = server.command(&["GET", &format!("test:key:{}", new.record.id)]);
    assert!(raw.contains(&new.record.hash));
    assert!(!raw.contains(new.key.split('_').nth(2).expect("secret")));

    // Listed.
    let listed = gateway_b.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].owner, "alice");

    // Revoked through A: B still serves its cached record until the TTL passes, then refuses.
    assert!(gateway_a.revoke(&new.record.id).await.expect("revoke"));
    past_cache_ttl().await;
    assert_refused(&send_through(&layer_b, request_with("x-api-key", &new.key)).await);
}

#[tokio::test]
async fn unknown_ids_are_cached_as_unknown() {
    let server = RedisServer::start();
    let store = store(&server, OnUnavailable::Reject);
    let layer = key_layer(store.clone());

    // An unknown (well-formed) key is refused and remembered.
    let new = KeyHasher::sha256().generate("rk", "eve").expect("key");
    assert_refused(&send_through(&layer, request_with("x-api-key", &new.key)).await);

    // Written behind the store's back: the negative cache still answers "unknown"...
    let json = serde_json::to_string(&new.record).expect("json");
    server.command(&["SET", &format!("test:key:{}", new.record.id), &json]);
    assert_refused(&send_through(&layer, request_with("x-api-key", &new.key)).await);

    // ...until the negative TTL passes.
    past_cache_ttl().await;
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &new.key))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_flood_of_unknown_ids_does_not_push_real_keys_out_of_the_cache() {
    let server = RedisServer::start();
    let pool = RedisPool::new(&RedisConfig::standalone(server.url())).expect("pool");
    let store = Arc::new(
        RedisKeyStore::new(
            pool,
            RedisKeyStoreConfig {
                key_prefix: "test:key".into(),
                cache_ttl: Duration::from_secs(60),
                max_cached: 4,
                ..RedisKeyStoreConfig::default()
            },
        )
        .expect("store"),
    );
    let layer = key_layer(store.clone());

    // A real key is used once, so it is cached; then it vanishes from Redis.
    let real = KeyHasher::sha256().generate("rk", "alice").expect("key");
    store.insert(real.record.clone()).await.expect("insert");
    let ok = send_through(&layer, request_with("x-api-key", &real.key)).await;
    assert_eq!(ok.status, 200);
    server.command(&["DEL", &format!("test:key:{}", real.record.id)]);

    // Many more well-formed unknown keys than the cache holds.
    for _ in 0..20 {
        let made_up = KeyHasher::sha256().generate("rk", "mallory").expect("key");
        assert_refused(&send_through(&layer, request_with("x-api-key", &made_up.key)).await);
    }

    // The real key is still answered from the cache, so it never reached Redis again.
    let ok = send_through(&layer, request_with("x-api-key", &real.key)).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn redis_down_with_reject_policy_answers_503_then_recovers() {
    let mut server = RedisServer::start();
    let store = store(&server, OnUnavailable::Reject);
    let layer = key_layer(store.clone());
    let new = KeyHasher::sha256().generate("rk", "alice").expect("key");
    store.insert(new.record.clone()).await.expect("insert");
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &new.key))
            .await
            .status,
        200
    );

    // Redis goes away; once the cache entry is stale, requests get 503, not 401.
    server.stop();
    past_cache_ttl().await;
    let outcome = send_through(&layer, request_with("x-api-key", &new.key)).await;
    assert_eq!(outcome.status, 503, "{}", outcome.body);
    assert_eq!(outcome.body["status"], 503);

    // Redis comes back (empty: it kept nothing on disk); the key is re-created and works.
    server.restart();
    store
        .insert(new.record.clone())
        .await
        .expect("insert after restart");
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &new.key))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn redis_down_with_serve_cached_policy_uses_the_local_cache() {
    let mut server = RedisServer::start();
    let store = store(&server, OnUnavailable::ServeCached);
    let layer = key_layer(store.clone());
    let seen = KeyHasher::sha256().generate("rk", "alice").expect("key");
    let never_seen = KeyHasher::sha256().generate("rk", "bob").expect("key");
    store.insert(seen.record.clone()).await.expect("insert");
    store
        .insert(never_seen.record.clone())
        .await
        .expect("insert");
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &seen.key))
            .await
            .status,
        200
    );

    server.stop();
    past_cache_ttl().await;

    // A key this gateway has seen is still served; one it never looked up cannot be checked.
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &seen.key))
            .await
            .status,
        200
    );
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &never_seen.key))
            .await
            .status,
        503
    );

    // Back up: fresh lookups again.
    server.restart();
    store
        .insert(never_seen.record.clone())
        .await
        .expect("insert");
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &never_seen.key))
            .await
            .status,
        200
    );
}
