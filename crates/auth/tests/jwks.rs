//! JWKS served by a real hyper server on loopback: start-up fetch, rotation while serving,
//! failures, `Cache-Control`, and floods of unknown `kid`s.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm as Jwt;
use jsonwebtoken::jwk::Jwk;
use parking_lot::Mutex;
use rampart_auth::jwt::jwks::HttpFetcher;
use rampart_auth::jwt::{Algorithm, Issuer, JwksUrlConfig, JwtConfig, JwtVerifier, RemoteJwks};
use rampart_auth::{AuthConfig, AuthLayer, Authenticator, KeyHasher};
use rampart_test_support::{Upstream, UpstreamBody};
use serde_json::json;

#[derive(Clone)]
struct Served {
    status: StatusCode,
    body: String,
    cache_control: Option<&'static str>,
}

fn jwk(private_pem: &str, kid: &str) -> serde_json::Value {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(private_pem)).expect("fixture");
    let mut jwk = Jwk::from_encoding_key(&key, Jwt::RS256).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("json")
}

fn set(keys: &[serde_json::Value]) -> String {
    json!({ "keys": keys }).to_string()
}

async fn jwks_server(initial: Served) -> (Upstream, Arc<Mutex<Served>>) {
    let served = Arc::new(Mutex::new(initial));
    let state = served.clone();
    let upstream = Upstream::start_fn(move |_request| {
        let now = state.lock().clone();
        async move {
            let mut response = Response::new(
                Full::new(Bytes::from(now.body))
                    .map_err(|never| match never {})
                    .boxed(),
            );
            *response.status_mut() = now.status;
            if let Some(cc) = now.cache_control {
                response.headers_mut().insert(
                    http::header::CACHE_CONTROL,
                    http::HeaderValue::from_static(cc),
                );
            }
            let response: Response<UpstreamBody> = response;
            response
        }
    })
    .await;
    (upstream, served)
}

fn config(url: String) -> JwksUrlConfig {
    config_with_floor(url, Duration::from_millis(300))
}

fn config_with_floor(url: String, floor: Duration) -> JwksUrlConfig {
    JwksUrlConfig {
        min_refresh_interval: floor,
        refresh_interval: Duration::from_secs(3600),
        ..JwksUrlConfig::new(url, vec![Algorithm::RS256])
    }
}

async fn remote_layer(url: String) -> (AuthLayer, Arc<RemoteJwks>) {
    remote_layer_with(config(url)).await
}

async fn remote_layer_with(config: JwksUrlConfig) -> (AuthLayer, Arc<RemoteJwks>) {
    let remote = RemoteJwks::start(config, Arc::new(HttpFetcher::default()))
        .await
        .expect("start-up fetch");
    let issuer = Issuer::new(None).with_jwks(remote.clone());
    let verifier = JwtVerifier::new(&JwtConfig::default(), vec![issuer]).expect("verifier");
    let authenticator = Authenticator::new(
        &AuthConfig::default(),
        KeyHasher::sha256(),
        None,
        Some(verifier),
    )
    .expect("auth");
    (layer(authenticator), remote)
}

fn ok(body: String) -> Served {
    Served {
        status: StatusCode::OK,
        body,
        cache_control: None,
    }
}

fn signed(private_pem: &str, kid: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(private_pem)).expect("fixture");
    mint(Jwt::RS256, &key, Some(kid), &claims("alice"))
}

#[tokio::test]
async fn keys_rotate_while_serving_and_the_last_good_set_survives_failures() {
    let (upstream, served) = jwks_server(ok(set(&[jwk("rsa.key.pem", "k1")]))).await;
    let (layer, _remote) = remote_layer(format!("{}/jwks.json", upstream.url())).await;

    // Fetched at start-up: k1 verifies at once.
    assert_eq!(upstream.request_count(), 1);
    assert_eq!(
        send_through(&layer, bearer(&signed("rsa.key.pem", "k1")))
            .await
            .status,
        200
    );

    // The issuer rotates to k2. Once the refresh floor has passed, a k2 token triggers a
    // refresh and verifies.
    *served.lock() = ok(set(&[jwk("rsa2.key.pem", "k2")]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        send_through(&layer, bearer(&signed("rsa2.key.pem", "k2")))
            .await
            .status,
        200
    );
    assert_eq!(upstream.request_count(), 2);

    // k1 is gone from the set now.
    assert_refused(&send_through(&layer, bearer(&signed("rsa.key.pem", "k1"))).await);

    // The endpoint fails: the last good set (k2) stays in use.
    *served.lock() = Served {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: "down".into(),
        cache_control: None,
    };
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_refused(&send_through(&layer, bearer(&signed("rsa.key.pem", "k9"))).await);
    assert_eq!(
        upstream.request_count(),
        3,
        "the unknown kid caused one (failed) fetch"
    );
    assert_eq!(
        send_through(&layer, bearer(&signed("rsa2.key.pem", "k2")))
            .await
            .status,
        200
    );

    // A set with garbage in it is refused the same way.
    *served.lock() = ok("{\"keys\": 12}".into());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_refused(&send_through(&layer, bearer(&signed("rsa.key.pem", "k8"))).await);
    assert_eq!(
        send_through(&layer, bearer(&signed("rsa2.key.pem", "k2")))
            .await
            .status,
        200
    );
}

// Two worker threads: tokens verify on both while the key set is replaced under them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_under_concurrent_load_refuses_no_valid_token() {
    let (upstream, served) = jwks_server(ok(set(&[jwk("rsa.key.pem", "k1")]))).await;
    let (layer, _remote) = remote_layer(format!("{}/jwks.json", upstream.url())).await;
    let old = signed("rsa.key.pem", "k1");
    let new = signed("rsa2.key.pem", "k2");

    // The issuer publishes k2 beside k1, as a rotation does, and starts signing with k2.
    *served.lock() = ok(set(&[jwk("rsa.key.pem", "k1"), jwk("rsa2.key.pem", "k2")]));
    tokio::time::sleep(Duration::from_millis(350)).await;

    // 400 requests at once, old and new tokens interleaved: every one passes, including
    // the new tokens that arrive while the set naming k2 is still being fetched.
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let layer = layer.clone();
            let token = if i % 2 == 0 { old.clone() } else { new.clone() };
            tokio::spawn(async move { send_through(&layer, bearer(&token)).await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("request task"), 200);
    }

    // One fetch at start-up, one for the whole burst of k2 tokens.
    assert_eq!(upstream.request_count(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_fetch() {
    let (upstream, _served) = jwks_server(ok(set(&[jwk("rsa.key.pem", "k1")]))).await;
    // A 2 s floor: the whole flood lands well within one interval even on a slow machine.
    let floor = Duration::from_secs(2);
    let (layer, _remote) = remote_layer_with(config_with_floor(
        format!("{}/jwks.json", upstream.url()),
        floor,
    ))
    .await;
    tokio::time::sleep(floor + Duration::from_millis(50)).await;

    // 200 concurrent tokens, each with its own made-up kid, minted before the flood starts.
    let tokens: Vec<String> = (0..200)
        .map(|i| signed("rsa.key.pem", &format!("random-{i}")))
        .collect();
    let requests = tokens.iter().map(|token| {
        let layer = layer.clone();
        async move { send_through(&layer, bearer(token)).await }
    });
    let outcomes = futures_util::future::join_all(requests).await;
    assert!(outcomes.iter().all(|o| o.status == 401));

    // One fetch at start-up, one for the whole flood.
    assert_eq!(upstream.request_count(), 2);
}

#[tokio::test]
async fn a_failed_refresh_is_retried_sooner_than_the_usual_interval() {
    let (upstream, served) = jwks_server(ok(set(&[jwk("rsa.key.pem", "k1")]))).await;
    let every = Duration::from_secs(3);
    let (layer, _remote) = remote_layer_with(JwksUrlConfig {
        refresh_interval: every,
        max_refresh_interval: every,
        ..config(format!("{}/jwks.json", upstream.url()))
    })
    .await;

    // The endpoint is down when the scheduled refresh comes.
    *served.lock() = Served {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: "down".into(),
        cache_control: None,
    };
    let deadline = tokio::time::Instant::now() + every * 2;
    while upstream.request_count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scheduled refresh"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // It is back moments later, with the issuer's new key.
    tokio::time::sleep(Duration::from_millis(50)).await;
    *served.lock() = ok(set(&[jwk("rsa2.key.pem", "k2")]));

    // The background refresh tries again after the floor, not after another full interval,
    // and without a token having to ask for it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(upstream.request_count(), 3);
    assert_eq!(
        send_through(&layer, bearer(&signed("rsa2.key.pem", "k2")))
            .await
            .status,
        200
    );
    assert_eq!(upstream.request_count(), 3, "the new key was already there");
}

#[tokio::test]
async fn cache_control_max_age_sets_the_refresh_period() {
    // refresh_interval is an hour, but the endpoint says max-age=0 (floored to 300 ms).
    let (upstream, _served) = jwks_server(Served {
        cache_control: Some("public, max-age=0"),
        ..ok(set(&[jwk("rsa.key.pem", "k1")]))
    })
    .await;
    let (_layer, _remote) = remote_layer(format!("{}/jwks.json", upstream.url())).await;

    // The background task fetches again on its own, well before the hour is out.
    for _ in 0..100 {
        if upstream.request_count() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        upstream.request_count() >= 3,
        "saw {} fetches",
        upstream.request_count()
    );
}

#[tokio::test]
async fn start_up_fails_when_the_set_cannot_be_fetched() {
    let (upstream, _served) = jwks_server(Served {
        status: StatusCode::NOT_FOUND,
        body: String::new(),
        cache_control: None,
    })
    .await;
    let result = RemoteJwks::start(
        config(format!("{}/jwks.json", upstream.url())),
        Arc::new(HttpFetcher::default()),
    )
    .await;
    assert!(result.is_err());

    let closed = format!(
        "http://127.0.0.1:{}/jwks.json",
        rampart_test_support::free_port()
    );
    assert!(
        RemoteJwks::start(config(closed), Arc::new(HttpFetcher::default()))
            .await
            .is_err()
    );
}
