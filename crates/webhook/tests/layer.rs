//! The verification and signing layers behind a real hyper server on loopback.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{
    App, counted_verifications, counts_by, expected_counts, post, post_paced, serve, signed as sign,
};
use http::{HeaderMap, StatusCode};
use rampart_core::PROBLEM_JSON;
use rampart_test_support::{Behavior, Upstream};
use rampart_webhook::{
    ManualClock, SchemeKind, SignConfig, SignWebhookLayer, Verifier, VerifyConfig,
    VerifyWebhookLayer,
};
use tower::Layer;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_700_000_000;

fn config(scheme: SchemeKind, secret: &str, max_body_bytes: usize) -> VerifyConfig {
    VerifyConfig {
        scheme,
        secrets: vec![secret.into()],
        max_body_bytes,
        ..VerifyConfig::default()
    }
}

/// A receiver behind the verification layer, its clock standing at `NOW`.
async fn receiver(config: &VerifyConfig) -> (App, Upstream, ManualClock) {
    let clock = ManualClock::at_unix(NOW);
    let layer = VerifyWebhookLayer::new(config)
        .unwrap()
        .with_clock(clock.clone());
    let app = App::default();
    let server = serve(layer.layer(app.service())).await;
    (app, server, clock)
}

fn not_utf8(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| [0xff, 0xfe, 0x00, 0xc3, b'.'][i % 5])
        .collect()
}

#[tokio::test]
async fn verified_webhooks_reach_the_inner_service_with_the_same_bytes() {
    let (app, server, _) = receiver(&config(SchemeKind::Standard, SECRET, 1 << 20)).await;
    let body = not_utf8(10_000);

    // In one piece with Content-Length, then as many chunks without it.
    for (chunks, id) in [(1, "msg_one"), (7, "msg_chunked")] {
        let headers = sign(SchemeKind::Standard, SECRET, id, NOW, &body);
        let answer = post(&server.url(), &headers, &body, chunks).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            Bytes::from(body.clone()),
            "the body arrives unchanged"
        );
        assert_eq!(
            answer.headers["x-seen-id"], id,
            "the inner service sees the verified id"
        );
    }
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn each_failure_is_a_401_problem_naming_its_class() {
    let (app, server, _) = receiver(&config(SchemeKind::Standard, SECRET, 1 << 20)).await;
    let good = sign(SchemeKind::Standard, SECRET, "msg_x", NOW, b"payload");
    let signature = good["webhook-signature"].to_str().unwrap().to_owned();

    let mut missing = good.clone();
    missing.remove("webhook-id");
    let mut malformed = good.clone();
    malformed.insert("webhook-timestamp", "yesterday".parse().unwrap());
    let expired = sign(SchemeKind::Standard, SECRET, "msg_x", NOW - 301, b"payload");
    let other = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let mismatch = sign(SchemeKind::Standard, other, "msg_x", NOW, b"payload");

    for (headers, class) in [
        (missing, "missing"),
        (malformed, "malformed"),
        (expired, "expired"),
        (mismatch, "mismatch"),
    ] {
        let answer = post(&server.url(), &headers, b"payload", 1).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{class}");
        assert_eq!(answer.headers["content-type"], PROBLEM_JSON);
        let problem = answer.json();
        assert_eq!(problem["type"], format!("urn:rampart:webhook:{class}"));
        assert_eq!(problem["status"], 401);

        // Neither the expected signature nor the secret leaks into the answer.
        let text = String::from_utf8_lossy(&answer.body);
        assert!(!text.contains(&signature[3..]), "{text}");
        assert!(!text.contains("MfKQ9r8"), "{text}");
    }

    // The body was modified after signing: mismatch too.
    let answer = post(&server.url(), &good, b"payload, edited", 1).await;
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:mismatch");
    assert_eq!(app.calls(), 0, "the inner service saw none of them");
}

#[tokio::test]
async fn a_body_at_the_limit_passes_and_one_byte_more_is_413() {
    let (app, server, _) = receiver(&config(SchemeKind::Standard, SECRET, 1024)).await;

    // Exactly at the limit, both with Content-Length and streamed.
    for (chunks, id) in [(1, "msg_at_1"), (4, "msg_at_4")] {
        let body = not_utf8(1024);
        let headers = sign(SchemeKind::Standard, SECRET, id, NOW, &body);
        assert_eq!(
            post(&server.url(), &headers, &body, chunks).await.status,
            StatusCode::OK
        );
    }

    // One byte past it: refused from Content-Length, and while streaming.
    for (chunks, id) in [(1, "msg_past_1"), (4, "msg_past_4")] {
        let body = not_utf8(1025);
        let headers = sign(SchemeKind::Standard, SECRET, id, NOW, &body);
        let answer = post(&server.url(), &headers, &body, chunks).await;
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{chunks} chunks"
        );
        assert_eq!(answer.json()["type"], "urn:rampart:webhook:too-large");
    }
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_replay_within_the_window_is_refused() {
    let (app, server, clock) = receiver(&config(SchemeKind::Standard, SECRET, 1 << 20)).await;
    let headers = sign(SchemeKind::Standard, SECRET, "msg_once", NOW, b"{}");

    // The first delivery passes; the same request again is a replay.
    assert_eq!(
        post(&server.url(), &headers, b"{}", 1).await.status,
        StatusCode::OK
    );
    let answer = post(&server.url(), &headers, b"{}", 1).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:replay");

    // Re-signed with a later timestamp, the same id is still a replay.
    clock.advance(Duration::from_secs(120));
    let resigned = sign(SchemeKind::Standard, SECRET, "msg_once", NOW + 120, b"{}");
    assert_eq!(
        post(&server.url(), &resigned, b"{}", 1).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Another id passes.
    let other = sign(SchemeKind::Standard, SECRET, "msg_twice", NOW + 120, b"{}");
    assert_eq!(
        post(&server.url(), &other, b"{}", 1).await.status,
        StatusCode::OK
    );
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn the_hex_scheme_keys_replays_on_the_signature() {
    let config = config(SchemeKind::Timestamped, "hex-secret", 1 << 20);
    let (app, server, _) = receiver(&config).await;
    let headers = sign(SchemeKind::Timestamped, "hex-secret", "", NOW, b"a");

    assert_eq!(
        post(&server.url(), &headers, b"a", 1).await.status,
        StatusCode::OK
    );
    assert_eq!(
        post(&server.url(), &headers, b"a", 1).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The same header with a duplicated v1 entry is still the same delivery.
    let value = headers["x-webhook-signature"].to_str().unwrap();
    let v1 = value.split(',').nth(1).unwrap();
    let mut padded = HeaderMap::new();
    padded.insert(
        "x-webhook-signature",
        format!("{value},{v1}").parse().unwrap(),
    );
    assert_eq!(
        post(&server.url(), &padded, b"a", 1).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Another body signed at the same second is a different delivery.
    let headers = sign(SchemeKind::Timestamped, "hex-secret", "", NOW, b"b");
    assert_eq!(
        post(&server.url(), &headers, b"b", 1).await.status,
        StatusCode::OK
    );
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn a_delivery_the_inner_service_failed_can_be_retried() {
    let (app, server, clock) = receiver(&config(SchemeKind::Standard, SECRET, 1 << 20)).await;
    app.fail_next.store(1, std::sync::atomic::Ordering::SeqCst);

    // The first attempt reaches the inner service, which fails.
    let first = sign(SchemeKind::Standard, SECRET, "msg_retry", NOW, b"{}");
    assert_eq!(
        post(&server.url(), &first, b"{}", 1).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // The sender's retry keeps the id with a new timestamp: it is not taken for a replay.
    clock.advance(Duration::from_secs(5));
    let retry = sign(SchemeKind::Standard, SECRET, "msg_retry", NOW + 5, b"{}");
    assert_eq!(
        post(&server.url(), &retry, b"{}", 1).await.status,
        StatusCode::OK
    );

    // Once it succeeded, a further copy is a replay.
    assert_eq!(
        post(&server.url(), &retry, b"{}", 1).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.calls(), 2);
}

#[tokio::test]
async fn github_replays_are_refused_even_under_a_new_delivery_id() {
    let (app, server, _) = receiver(&config(SchemeKind::Github, "gh-secret", 1 << 20)).await;
    let headers = sign(
        SchemeKind::Github,
        "gh-secret",
        "7e1a6b0c-delivery",
        0,
        b"{\"zen\":1}",
    );

    let answer = post(&server.url(), &headers, b"{\"zen\":1}", 1).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-seen-id"], "7e1a6b0c-delivery");
    assert_eq!(
        post(&server.url(), &headers, b"{\"zen\":1}", 1)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // GitHub does not sign the delivery id, so a new one does not make a captured delivery new.
    let renamed = sign(
        SchemeKind::Github,
        "gh-secret",
        "another-delivery",
        0,
        b"{\"zen\":1}",
    );
    assert_eq!(
        post(&server.url(), &renamed, b"{\"zen\":1}", 1)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.calls(), 1);
}

#[test]
fn every_outcome_is_counted_with_route_scheme_and_outcome() {
    let counted = counted_verifications(async {
        let (_, server, _) = receiver(&config(SchemeKind::Standard, SECRET, 64)).await;
        let ok = sign(SchemeKind::Standard, SECRET, "msg_m", NOW, b"{}");
        post(&server.url(), &ok, b"{}", 1).await;
        post(&server.url(), &ok, b"{}", 1).await;
        post(&server.url(), &HeaderMap::new(), b"{}", 1).await;
        let big = sign(SchemeKind::Standard, SECRET, "msg_big", NOW, &[0; 65]);
        post(&server.url(), &big, &[0; 65], 1).await;
        let old = sign(SchemeKind::Standard, SECRET, "msg_old", NOW - 3600, b"{}");
        post(&server.url(), &old, b"{}", 1).await;
        let mut garbled = sign(SchemeKind::Standard, SECRET, "msg_g", NOW, b"{}");
        garbled.insert("webhook-timestamp", "soon".parse().unwrap());
        post(&server.url(), &garbled, b"{}", 1).await;
        let other = sign(SchemeKind::Standard, SECRET, "msg_o", NOW, b"{}");
        post(&server.url(), &other, b"{\"changed\":1}", 1).await;
    });

    for (labels, _) in &counted {
        assert_eq!(labels["scheme"], "standard");
        assert_eq!(labels["route"], "unknown");
    }
    let expected = expected_counts(&[
        ("ok", 1),
        ("replay", 1),
        ("missing", 1),
        ("too_large", 1),
        ("expired", 1),
        ("malformed", 1),
        ("mismatch", 1),
    ]);
    assert_eq!(counts_by(&counted, "outcome"), expected);
}

#[test]
fn verified_requests_are_counted_under_their_own_route() {
    use tower::ServiceExt;

    // One layer in front of two routes, the first seen twice, around an inner service that
    // accepts everything.
    let mut config = config(SchemeKind::Standard, SECRET, 64);
    config.replay.enabled = false;
    let layer = VerifyWebhookLayer::new(&config)
        .unwrap()
        .with_clock(ManualClock::at_unix(NOW));
    let service = layer.layer(tower::service_fn(
        |_: http::Request<http_body_util::Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(
                http_body_util::Empty::<Bytes>::new(),
            ))
        },
    ));
    let headers = sign(SchemeKind::Standard, SECRET, "msg_r", NOW, b"{}");
    let counted = counted_verifications(async {
        for route in ["orders", "billing", "orders"] {
            let mut request = http::Request::post("/hook")
                .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
                .unwrap();
            *request.headers_mut() = headers.clone();
            request
                .extensions_mut()
                .insert(rampart_core::RouteName::new(route));
            let response = service.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    });

    for (labels, _) in &counted {
        assert_eq!(labels["outcome"], "ok");
    }
    let expected = expected_counts(&[("orders", 2), ("billing", 1)]);
    assert_eq!(counts_by(&counted, "route"), expected);
}

#[tokio::test]
async fn the_sign_layer_signs_outbound_requests_verifiably() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let clock = ManualClock::at_unix(NOW);
    let sign_config = SignConfig {
        scheme: SchemeKind::Standard,
        secrets: vec![SECRET.into()],
        max_body_bytes: 4096,
        ..SignConfig::default()
    };
    let layer = SignWebhookLayer::new(&sign_config)
        .unwrap()
        .with_clock(clock);
    // The signing layer sits in front of a plain HTTP client.
    let client = common::client();
    let outbound = layer.layer(tower::service_fn(
        move |request: http::Request<http_body_util::Full<Bytes>>| {
            let client = client.clone();
            async move {
                let request = request.map(http_body_util::BodyExt::boxed);
                client.request(request).await
            }
        },
    ));

    let body = not_utf8(3000);
    let request = http::Request::post(upstream.url())
        .body(http_body_util::Full::new(Bytes::from(body.clone())))
        .unwrap();
    let response = tower::ServiceExt::oneshot(outbound.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The upstream received headers that verify over the bytes it echoed back.
    let echoed = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(echoed, Bytes::from(body));
    let seen = upstream.requests().pop().unwrap();
    let verifier = Verifier::new(&config(SchemeKind::Standard, SECRET, 4096)).unwrap();
    let now = std::time::UNIX_EPOCH + Duration::from_secs(NOW);
    let verified = verifier.verify(&seen.headers, &echoed, now).unwrap();
    assert!(verified.id().unwrap().starts_with("msg_"));

    // A body past the signing limit is refused before anything is sent.
    let request = http::Request::post(upstream.url())
        .body(http_body_util::Full::new(Bytes::from(vec![0u8; 4097])))
        .unwrap();
    let response = tower::ServiceExt::oneshot(outbound, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upstream.request_count(), 1);
}

#[tokio::test]
async fn readiness_is_the_inner_services() {
    type Incoming = http::Request<http_body_util::Full<Bytes>>;
    // The layer adds no readiness of its own: a pending inner service keeps it pending.
    let layer = VerifyWebhookLayer::new(&config(SchemeKind::Standard, SECRET, 1024)).unwrap();
    let (inner, mut handle) = tower_test::mock::pair::<
        http::Request<http_body_util::Full<Bytes>>,
        http::Response<http_body_util::Full<Bytes>>,
    >();
    let mut service = tower_test::mock::Spawn::new(layer.layer(inner));

    handle.allow(0);
    assert!(service.poll_ready::<Incoming>().is_pending());
    handle.allow(1);
    assert!(service.poll_ready::<Incoming>().is_ready());
}

#[tokio::test]
async fn a_body_that_stops_coming_is_answered_408() {
    let mut config = config(SchemeKind::Standard, SECRET, 1024);
    config.body_timeout = Duration::from_millis(300);
    let (app, server, _) = receiver(&config).await;
    let body: &'static [u8] = br#"{"event":"paid","amount":42}"#;
    let headers = sign(SchemeKind::Standard, SECRET, "msg_slow", NOW, body);

    // Half the body, then nothing more: refused once the body timeout passes.
    let frames = vec![(Duration::ZERO, &body[..10])];
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        post_paced(&server.url(), &headers, frames, true),
    )
    .await
    .expect("answered without waiting for the body to end");
    assert_eq!(answer.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:body-timeout");
    assert_eq!(app.calls(), 0);

    // The same body in two frames with a pause shorter than the timeout goes through whole.
    let frames = vec![
        (Duration::ZERO, &body[..10]),
        (Duration::from_millis(100), &body[10..]),
    ];
    let answer = post_paced(&server.url(), &headers, frames, false).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(&answer.body[..], body);
    assert_eq!(app.calls(), 1);
}

#[tokio::test]
async fn the_sign_layer_also_bounds_the_time_it_waits_for_a_body() {
    use futures_util::StreamExt;

    let sign_config = SignConfig {
        secrets: vec![SECRET.into()],
        body_timeout: Duration::from_millis(300),
        ..SignConfig::default()
    };
    let outbound = SignWebhookLayer::new(&sign_config)
        .unwrap()
        .layer(tower::service_fn(
            |_: http::Request<http_body_util::Full<Bytes>>| async {
                Ok::<_, std::convert::Infallible>(http::Response::new(
                    http_body_util::Empty::<Bytes>::new(),
                ))
            },
        ));

    // The first frame of a body comes, the rest never does.
    let first = Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from_static(
        b"{\"half\":",
    )));
    let stalled = futures_util::stream::iter([first]).chain(futures_util::stream::pending());
    let request = http::Request::post("http://subscriber.invalid/hook")
        .body(http_body_util::StreamBody::new(stalled))
        .unwrap();
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        tower::ServiceExt::oneshot(outbound, request),
    )
    .await
    .expect("answered without waiting for the body to end")
    .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
}

#[test]
fn a_zero_body_timeout_is_refused_at_construction() {
    let mut config = config(SchemeKind::Standard, SECRET, 1024);
    config.body_timeout = Duration::ZERO;
    let err = VerifyWebhookLayer::new(&config).unwrap_err();
    assert!(err.to_string().contains("body_timeout"), "{err}");
}
