//! Webhook routes through the real gateway binary: verification with replay protection shared
//! by two gateways through one redis-server, signing for subscriber routes, and the
//! `gateway webhook` commands.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use rampart::webhook::{SchemeKind, SignConfig, Signer, Verifier, VerifyConfig};
use rampart_test_support::{Behavior, RedisServer, Upstream};
use support::{Gateway, body_bytes, body_json, client, gateway_command};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A gateway config with one upstream and a `/hooks` route verifying Standard Webhooks.
fn hooks_config(upstream: &str, redis: Option<&str>, max_body_bytes: usize) -> String {
    let (redis_table, store) = match redis {
        Some(url) => (format!("[redis]\nurl = \"{url}\"\n\n"), "redis"),
        None => (String::new(), "memory"),
    };
    format!(
        "{redis_table}[upstreams.agent]\nurl = \"{upstream}\"\n\n\
         [[routes]]\nname = \"hooks\"\nprefix = \"/hooks\"\nupstream = \"agent\"\n\n\
         [routes.webhook]\nreplay_store = \"{store}\"\n\n\
         [routes.webhook.verify]\nscheme = \"standard\"\nsecrets = [\"{SECRET}\"]\n\
         max_body_bytes = {max_body_bytes}\n"
    )
}

fn signed(id: &str, body: &[u8]) -> HeaderMap {
    let signer = Signer::new(&SignConfig {
        secrets: vec![SECRET.into()],
        ..SignConfig::default()
    })
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut headers = HeaderMap::new();
    signer
        .sign_with(id, now, body)
        .unwrap()
        .apply_to(&mut headers);
    headers
}

async fn post(
    gateway: &Gateway,
    headers: &HeaderMap,
    body: &[u8],
) -> http::Response<hyper::body::Incoming> {
    let mut request = Request::post(gateway.uri("/hooks/run-finished"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    request.headers_mut().extend(headers.clone());
    client().request(request).await.unwrap()
}

#[tokio::test]
async fn a_replay_to_a_second_gateway_sharing_redis_is_refused() {
    let redis = RedisServer::start();
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = hooks_config(&upstream.url(), Some(&redis.url()), 1 << 20);
    let first = Gateway::start(&config).await;
    let second = Gateway::start(&config).await;

    // Delivered through the first gateway: the upstream gets the body unchanged.
    let body = b"{\"run\":7,\"bytes\":\"\xff\xfe\"}";
    let headers = signed("msg_fleet_1", body);
    let response = post(&first, &headers, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_bytes(response.into_body()).await,
        Bytes::from_static(body)
    );

    // The same request replayed to the second gateway is refused there.
    let response = post(&second, &headers, body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem = body_json(response.into_body()).await;
    assert_eq!(problem["type"], "urn:rampart:webhook:replay");
    assert!(problem["request_id"].is_string(), "{problem}");

    // A new delivery passes through the second gateway; the upstream saw two requests.
    let headers = signed("msg_fleet_2", body);
    assert_eq!(post(&second, &headers, body).await.status(), StatusCode::OK);
    assert_eq!(upstream.request_count(), 2);

    // The id is kept under the route's namespace, with a TTL.
    let ttl = redis.command(&["PTTL", "rampart:webhook:hooks:msg_fleet_1"]);
    assert!(ttl.starts_with(':') && !ttl.starts_with(":-"), "PTTL {ttl}");
}

#[tokio::test]
async fn unsigned_and_oversized_webhooks_never_reach_the_upstream() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let gateway = Gateway::start(&hooks_config(&upstream.url(), None, 1024)).await;

    // No signature headers: 401 naming the missing header.
    let response = post(&gateway, &HeaderMap::new(), b"{}").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let problem = body_json(response.into_body()).await;
    assert_eq!(problem["type"], "urn:rampart:webhook:missing");
    assert!(
        problem["detail"].as_str().unwrap().contains("webhook-"),
        "{problem}"
    );

    // Signed with another secret: 401 mismatch, and the answer holds no signature.
    let other = Signer::new(&SignConfig {
        secrets: vec!["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into()],
        ..SignConfig::default()
    })
    .unwrap();
    let mut headers = HeaderMap::new();
    other.sign(b"{}", SystemTime::now()).apply_to(&mut headers);
    let response = post(&gateway, &headers, b"{}").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let text = body_bytes(response.into_body()).await;
    assert!(String::from_utf8_lossy(&text).contains("mismatch"));
    assert!(!String::from_utf8_lossy(&text).contains("v1,"));

    // At the limit passes; one byte more is 413.
    let at_limit = vec![0xffu8; 1024];
    assert_eq!(
        post(&gateway, &signed("msg_at", &at_limit), &at_limit)
            .await
            .status(),
        StatusCode::OK
    );
    let past = vec![0xffu8; 1025];
    let response = post(&gateway, &signed("msg_past", &past), &past).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(upstream.request_count(), 1);

    // Each refusal is counted by outcome.
    let text = gateway.metrics().await;
    for outcome in ["missing", "mismatch", "ok", "too_large"] {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("rampart_webhook_verifications_total")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .unwrap_or_else(|| panic!("no {outcome} line in:\n{text}"));
        assert!(
            line.contains("route=\"hooks\"") && line.ends_with(" 1"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_webhook_whose_body_stalls_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let upstream = Upstream::start(Behavior::Echo).await;
    let config = hooks_config(&upstream.url(), None, 1024) + "body_timeout = \"300ms\"\n";
    let gateway = Gateway::start(&config).await;

    // A sender that announces the whole length, sends ten bytes and then nothing.
    let body = br#"{"run":7,"status":"done"}"#;
    let mut head = format!(
        "POST /hooks/run-finished HTTP/1.1\r\nhost: gateway\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in &signed("msg_stall", body) {
        let value = value.to_str().unwrap();
        head.extend([name.as_str(), ": ", value, "\r\n"]);
    }
    head.push_str("\r\n");
    let mut stream = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();

    // The gateway answers 408 without waiting for the rest, and the upstream sees nothing.
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered while the body is still incomplete")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("urn:rampart:webhook:body-timeout"),
        "{answer}"
    );
    assert_eq!(upstream.request_count(), 0);
}

#[tokio::test]
async fn subscriber_routes_get_signed_requests() {
    let upstream = Upstream::start(Behavior::Echo).await;
    let config = format!(
        "[upstreams.subscriber]\nurl = \"{}\"\n\n\
         [[routes]]\nname = \"outbound\"\nprefix = \"/\"\nupstream = \"subscriber\"\n\n\
         [routes.webhook.sign]\nscheme = \"timestamped\"\nsecrets = [\"sub-secret\"]\n\
         signature_header = \"Acme-Signature\"\n",
        upstream.url()
    );
    let gateway = Gateway::start(&config).await;

    // A plain request in; the upstream gets it signed.
    let body = b"event: run.failed";
    let response = post(&gateway, &HeaderMap::new(), body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = body_bytes(response.into_body()).await;

    let seen = upstream.requests().pop().unwrap();
    let verifier = Verifier::new(&VerifyConfig {
        scheme: SchemeKind::Timestamped,
        secrets: vec!["sub-secret".into()],
        signature_header: "Acme-Signature".to_owned(),
        ..VerifyConfig::default()
    })
    .unwrap();
    verifier
        .verify(&seen.headers, &echoed, SystemTime::now())
        .unwrap();
    assert_eq!(echoed, Bytes::from_static(body));
}

fn run_cli(args: &[&str]) -> (bool, String, String) {
    let output = gateway_command().args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn cli_signs_and_verifies_captured_requests() {
    let dir = std::env::temp_dir().join(format!("rampart-webhook-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = dir.join("body.json");
    let secret = dir.join("secret");
    std::fs::write(&body, br#"{"test": 2432232314}"#).unwrap();
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let (body, secret) = (body.to_str().unwrap(), secret.to_str().unwrap());

    // `sign` with the spec's id and timestamp prints the spec's signature.
    let (ok, stdout, stderr) = run_cli(&[
        "webhook",
        "sign",
        "--secret-file",
        secret,
        "--body",
        body,
        "--id",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "--timestamp",
        "1614265330",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        "{stdout}"
    );

    // `verify` checks the captured headers as of the capture time...
    let headers = dir.join("headers.txt");
    std::fs::write(&headers, format!("POST /hooks HTTP/1.1\n{stdout}")).unwrap();
    let headers = headers.to_str().unwrap();
    let (ok, stdout, stderr) = run_cli(&[
        "webhook",
        "verify",
        "--secret-file",
        secret,
        "--body",
        body,
        "--headers-file",
        headers,
        "--now",
        "1614265400",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("ok: standard webhook verified (id msg_p5jXN8AQM9LWM0D4loKWxJek"),
        "{stdout}"
    );

    // ...and says why it fails: today the capture is expired, and an edited body mismatches.
    let (ok, _, stderr) = run_cli(&[
        "webhook",
        "verify",
        "--secret-file",
        secret,
        "--body",
        body,
        "--headers-file",
        headers,
    ]);
    assert!(!ok);
    assert!(stderr.contains("outside the tolerance window"), "{stderr}");
    std::fs::write(dir.join("body.json"), br#"{"test": 2432232315}"#).unwrap();
    let (ok, _, stderr) = run_cli(&[
        "webhook",
        "verify",
        "--secret-file",
        secret,
        "--body",
        body,
        "--headers-file",
        headers,
        "--now",
        "1614265400",
    ]);
    assert!(!ok);
    assert!(stderr.contains("no signature matches"), "{stderr}");

    // New secrets come in the spec's formats.
    let (ok, stdout, _) = run_cli(&["webhook", "generate-secret"]);
    assert!(ok && stdout.starts_with("whsec_"), "{stdout}");
    let (ok, stdout, _) = run_cli(&["webhook", "generate-keypair"]);
    assert!(
        ok && stdout.contains("whsk_") && stdout.contains("whpk_"),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_config_names_a_bad_webhook_secret() {
    let path = std::env::temp_dir().join(format!("rampart-webhook-{}.toml", uuid::Uuid::new_v4()));
    let config = hooks_config("http://127.0.0.1:9", None, 1024).replace(SECRET, "whsec_not*base64");
    std::fs::write(&path, format!("listen = \"127.0.0.1:0\"\n{config}")).unwrap();

    let (ok, _, stderr) = run_cli(&["check-config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("routes.hooks.webhook.verify"), "{stderr}");
    assert!(stderr.contains("secrets[0]"), "{stderr}");
    assert!(
        !stderr.contains("not*base64"),
        "the secret is not echoed: {stderr}"
    );
    let _ = std::fs::remove_file(&path);
}
