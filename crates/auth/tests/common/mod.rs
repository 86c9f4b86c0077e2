//! Shared test helpers: fixture keys, tokens minted with `jsonwebtoken` and `aws-lc-rs` (not
//! with the crate under test), and a small service behind the auth layer.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::{EncodingKey, Header};
use rampart_auth::{AuthLayer, Authenticator};
use rampart_core::{Identity, ResponseBody};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt};

pub const HS_SECRET: &[u8] = b"an-hmac-secret-of-sixty-four-bytes-for-hs512-tests-0123456789abcdef";

pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims valid for five minutes.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "sub": sub, "iat": now, "exp": now + 300 })
}

/// Signs with `jsonwebtoken` (any algorithm it supports).
pub fn mint(
    alg: jsonwebtoken::Algorithm,
    key: &EncodingKey,
    kid: Option<&str>,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("minting a test token")
}

pub fn hs(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: &Value) -> String {
    mint(alg, &secret_key(HS_SECRET), kid, claims)
}

pub fn rsa(alg: jsonwebtoken::Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")).expect("rsa fixture");
    mint(alg, &key, kid, claims)
}

/// Signs ES512 with aws-lc-rs, since jsonwebtoken cannot.
pub fn es512(kid: Option<&str>, claims: &Value) -> String {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, &fixture("p521.key.der"))
        .expect("p521 fixture");
    let mut header = json!({ "alg": "ES512", "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .expect("signing");
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

/// The P-521 public key as JWK coordinates (x, y), base64url.
pub fn p521_jwk_xy() -> (String, String) {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P521_SHA512_FIXED_SIGNING, &fixture("p521.key.der"))
        .expect("p521 fixture");
    let point = pair.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 133);
    (
        URL_SAFE_NO_PAD.encode(&point[1..67]),
        URL_SAFE_NO_PAD.encode(&point[67..]),
    )
}

/// A token with an arbitrary header and payload and the given raw signature.
pub fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

pub type TestResponse = Response<ResponseBody<Full<Bytes>>>;

/// What the handler saw, plus the raw response.
#[derive(Debug)]
pub struct Outcome {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub content_type: Option<String>,
    pub body: Value,
}

/// Sends one request through `layer` to a handler that echoes the identity as JSON.
pub async fn send_through(layer: &AuthLayer, request: Request<Full<Bytes>>) -> Outcome {
    let inner = tower::service_fn(|request: Request<Full<Bytes>>| async move {
        let body = match request.extensions().get::<Identity>() {
            Some(identity) => json!({
                "subject": identity.subject,
                "roles": identity.roles,
                "scopes": identity.scopes,
                "kind": identity.kind.as_str(),
                "credential_id": identity.credential_id,
            }),
            None => json!({ "anonymous": true }),
        };
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body.to_string()))))
    });
    let response: TestResponse = layer
        .layer(inner)
        .oneshot(request)
        .await
        .expect("infallible");
    read(response).await
}

pub async fn read<B>(response: Response<B>) -> Outcome
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let status = response.status();
    let challenge = response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().expect("ascii challenge").to_owned());
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii content type").to_owned());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Outcome {
        status,
        challenge,
        content_type,
        body,
    }
}

pub fn request_with(header: &str, value: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .uri("/orders")
        .header(header, value)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

pub fn bearer(token: &str) -> Request<Full<Bytes>> {
    request_with("authorization", &format!("Bearer {token}"))
}

pub fn layer(authenticator: Authenticator) -> AuthLayer {
    AuthLayer::new(Arc::new(authenticator))
}

/// Asserts a 401 that names no detail beyond "invalid or expired".
pub fn assert_refused(outcome: &Outcome) {
    assert_eq!(
        outcome.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        outcome.body
    );
    let challenge = outcome
        .challenge
        .as_deref()
        .expect("a WWW-Authenticate challenge");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(
        outcome.content_type.as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(outcome.body["status"], 401);
    assert_eq!(
        outcome.body["detail"],
        "the credentials are invalid or expired"
    );
}

pub fn secret_key(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret).expect("hmac secret")
}
