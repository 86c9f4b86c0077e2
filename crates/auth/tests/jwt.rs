//! Bearer tokens through the bare layer, minted with `jsonwebtoken` and `aws-lc-rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use jsonwebtoken::Algorithm as Jwt;
use rampart_auth::jwt::{
    Algorithm, Clock, Issuer, IssuerConfig, JwksFetcher, JwtConfig, JwtVerifier, KeyConfig,
    VerifyKey,
};
use rampart_auth::{AuthConfig, AuthLayer, Authenticator, KeyHasher};
use serde_json::json;

fn jwt_layer(config: &JwtConfig, issuers: Vec<Issuer>) -> AuthLayer {
    let verifier = JwtVerifier::new(config, issuers).expect("verifier");
    layer(
        Authenticator::new(
            &AuthConfig::default(),
            KeyHasher::sha256(),
            None,
            Some(verifier),
        )
        .expect("authenticator"),
    )
}

fn pem_key(kid: &str, alg: Algorithm, file: &str) -> VerifyKey {
    VerifyKey::from_pem(Some(kid.to_owned()), alg, &fixture(file)).expect("fixture key")
}

fn any_issuer() -> Issuer {
    Issuer::new(None)
        .with_key(VerifyKey::hmac(Some("hs256".into()), Algorithm::HS256, HS_SECRET).expect("key"))
        .with_key(VerifyKey::hmac(Some("hs384".into()), Algorithm::HS384, HS_SECRET).expect("key"))
        .with_key(VerifyKey::hmac(Some("hs512".into()), Algorithm::HS512, HS_SECRET).expect("key"))
        .with_key(pem_key("rs256", Algorithm::RS256, "rsa.pub.pem"))
        .with_key(pem_key("rs384", Algorithm::RS384, "rsa.pub.pem"))
        .with_key(pem_key("rs512", Algorithm::RS512, "rsa.pub.pem"))
        .with_key(pem_key("ps256", Algorithm::PS256, "rsa.pub.pem"))
        .with_key(pem_key("ps384", Algorithm::PS384, "rsa.pub.pem"))
        .with_key(pem_key("ps512", Algorithm::PS512, "rsa.pub.pem"))
        .with_key(pem_key("es256", Algorithm::ES256, "p256.pub.pem"))
        .with_key(pem_key("es384", Algorithm::ES384, "p384.pub.pem"))
        .with_key(pem_key("es512", Algorithm::ES512, "p521.pub.pem"))
        .with_key(pem_key("eddsa", Algorithm::EdDSA, "ed25519.pub.pem"))
}

fn signed_by_every_algorithm(claims: &serde_json::Value) -> Vec<(&'static str, String)> {
    let ec = |file| jsonwebtoken::EncodingKey::from_ec_pem(&fixture(file)).expect("ec fixture");
    let ed =
        jsonwebtoken::EncodingKey::from_ed_pem(&fixture("ed25519.key.pem")).expect("ed fixture");
    vec![
        ("hs256", hs(Jwt::HS256, Some("hs256"), claims)),
        ("hs384", hs(Jwt::HS384, Some("hs384"), claims)),
        ("hs512", hs(Jwt::HS512, Some("hs512"), claims)),
        ("rs256", rsa(Jwt::RS256, Some("rs256"), claims)),
        ("rs384", rsa(Jwt::RS384, Some("rs384"), claims)),
        ("rs512", rsa(Jwt::RS512, Some("rs512"), claims)),
        ("ps256", rsa(Jwt::PS256, Some("ps256"), claims)),
        ("ps384", rsa(Jwt::PS384, Some("ps384"), claims)),
        ("ps512", rsa(Jwt::PS512, Some("ps512"), claims)),
        (
            "es256",
            mint(Jwt::ES256, &ec("p256.key.pem"), Some("es256"), claims),
        ),
        (
            "es384",
            mint(Jwt::ES384, &ec("p384.key.pem"), Some("es384"), claims),
        ),
        ("es512", es512(Some("es512"), claims)),
        ("eddsa", mint(Jwt::EdDSA, &ed, Some("eddsa"), claims)),
    ]
}

#[tokio::test]
async fn every_algorithm_verifies_and_sets_the_identity() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);
    let mut claims = claims("alice");
    claims["roles"] = json!(["admin", "ops"]);
    claims["scope"] = json!("orders:read orders:write");
    claims["scp"] = json!(["billing:read"]);
    claims["jti"] = json!("token-1");

    for (name, token) in signed_by_every_algorithm(&claims) {
        let outcome = send_through(&layer, bearer(&token)).await;
        assert_eq!(outcome.status, 200, "{name}: {}", outcome.body);
        assert_eq!(outcome.body["subject"], "alice", "{name}");
        assert_eq!(outcome.body["kind"], "jwt");
        assert_eq!(outcome.body["roles"], json!(["admin", "ops"]));
        assert_eq!(
            outcome.body["scopes"],
            json!(["billing:read", "orders:read", "orders:write"])
        );
        assert_eq!(outcome.body["credential_id"], "token-1");
    }
}

#[tokio::test]
async fn a_tampered_payload_fails_for_every_algorithm() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims("mallory").to_string(),
    );
    for (name, token) in signed_by_every_algorithm(&claims("alice")) {
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        let outcome = send_through(&layer, bearer(&tampered)).await;
        assert_refused(&outcome);
        assert!(!outcome.body.to_string().contains("mallory"), "{name}");
    }
}

#[tokio::test]
async fn expiry_not_before_and_leeway() {
    let now = now();
    let pinned = Clock::from_fn(move || now);
    let strict = JwtConfig::default();
    let lenient = JwtConfig {
        leeway: Duration::from_secs(60),
        ..JwtConfig::default()
    };
    let strict = jwt_layer_with_clock(&strict, pinned.clone());
    let lenient = jwt_layer_with_clock(&lenient, pinned);

    // Expired 30 s ago: refused without leeway, accepted with 60 s of it.
    let expired = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "exp": now - 30 }),
    );
    assert_refused(&send_through(&strict, bearer(&expired)).await);
    assert_eq!(send_through(&lenient, bearer(&expired)).await.status, 200);

    // Expired two minutes ago: refused by both.
    let long_expired = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "exp": now - 120 }),
    );
    assert_refused(&send_through(&lenient, bearer(&long_expired)).await);

    // Not valid for another 30 s: refused strictly, accepted with leeway.
    let early = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "exp": now + 300, "nbf": now + 30 }),
    );
    assert_refused(&send_through(&strict, bearer(&early)).await);
    assert_eq!(send_through(&lenient, bearer(&early)).await.status, 200);

    // Issued in the future beyond the leeway.
    let future = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "exp": now + 900, "iat": now + 600 }),
    );
    assert_refused(&send_through(&lenient, bearer(&future)).await);

    // No `exp` at all.
    let forever = hs(Jwt::HS256, Some("hs256"), &json!({ "sub": "a" }));
    assert_refused(&send_through(&lenient, bearer(&forever)).await);
}

fn jwt_layer_with_clock(config: &JwtConfig, clock: Clock) -> AuthLayer {
    let verifier = JwtVerifier::new(config, vec![any_issuer()])
        .expect("verifier")
        .with_clock(clock);
    layer(
        Authenticator::new(
            &AuthConfig::default(),
            KeyHasher::sha256(),
            None,
            Some(verifier),
        )
        .expect("authenticator"),
    )
}

#[tokio::test]
async fn maximum_lifetime_and_required_claims() {
    let config = JwtConfig {
        max_lifetime: Some(Duration::from_secs(3600)),
        required_claims: vec!["jti".into()],
        ..JwtConfig::default()
    };
    let layer = jwt_layer(&config, vec![any_issuer()]);
    let now = now();

    let day_long = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "iat": now, "exp": now + 86_400, "jti": "x" }),
    );
    assert_refused(&send_through(&layer, bearer(&day_long)).await);

    let no_jti = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "iat": now, "exp": now + 60 }),
    );
    assert_refused(&send_through(&layer, bearer(&no_jti)).await);

    let fine = hs(
        Jwt::HS256,
        Some("hs256"),
        &json!({ "sub": "a", "iat": now, "exp": now + 60, "jti": "x" }),
    );
    assert_eq!(send_through(&layer, bearer(&fine)).await.status, 200);
}

#[tokio::test]
async fn issuers_and_audiences() {
    // Two issuers, each with its own RSA key; one demands an audience.
    let a = Issuer::new(Some("https://a.example".into()))
        .with_audiences(["orders"])
        .with_key(pem_key("a", Algorithm::RS256, "rsa.pub.pem"));
    let b = Issuer::new(Some("https://b.example".into())).with_key(pem_key(
        "b",
        Algorithm::RS256,
        "rsa2.pub.pem",
    ));
    let layer = jwt_layer(&JwtConfig::default(), vec![a, b]);
    let key_b = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture("rsa2.key.pem")).expect("fixture");

    let with = |iss: &str, aud: Option<serde_json::Value>| {
        let mut c = claims("alice");
        c["iss"] = json!(iss);
        if let Some(aud) = aud {
            c["aud"] = aud;
        }
        c
    };

    // Issuer A with its audience, as a string or in a list.
    let ok = rsa(
        Jwt::RS256,
        Some("a"),
        &with("https://a.example", Some(json!("orders"))),
    );
    assert_eq!(send_through(&layer, bearer(&ok)).await.status, 200);
    let ok = rsa(
        Jwt::RS256,
        Some("a"),
        &with("https://a.example", Some(json!(["x", "orders"]))),
    );
    assert_eq!(send_through(&layer, bearer(&ok)).await.status, 200);

    // Wrong audience, and no audience at all.
    let wrong = rsa(
        Jwt::RS256,
        Some("a"),
        &with("https://a.example", Some(json!("billing"))),
    );
    assert_refused(&send_through(&layer, bearer(&wrong)).await);
    let none = rsa(Jwt::RS256, Some("a"), &with("https://a.example", None));
    assert_refused(&send_through(&layer, bearer(&none)).await);

    // Unknown issuer.
    let stranger = rsa(
        Jwt::RS256,
        Some("a"),
        &with("https://evil.example", Some(json!("orders"))),
    );
    assert_refused(&send_through(&layer, bearer(&stranger)).await);

    // Issuer B's key cannot vouch for a token claiming issuer A, even naming A's kid.
    let cross = mint(
        Jwt::RS256,
        &key_b,
        Some("a"),
        &with("https://a.example", Some(json!("orders"))),
    );
    assert_refused(&send_through(&layer, bearer(&cross)).await);
    let cross = mint(
        Jwt::RS256,
        &key_b,
        Some("b"),
        &with("https://a.example", Some(json!("orders"))),
    );
    assert_refused(&send_through(&layer, bearer(&cross)).await);

    // Issuer B's own token is fine.
    let own = mint(
        Jwt::RS256,
        &key_b,
        Some("b"),
        &with("https://b.example", None),
    );
    assert_eq!(send_through(&layer, bearer(&own)).await.status, 200);
}

#[tokio::test]
async fn wrong_key_and_unknown_kid() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);
    let other = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture("rsa2.key.pem")).expect("fixture");

    let wrong_key = mint(Jwt::RS256, &other, Some("rs256"), &claims("alice"));
    assert_refused(&send_through(&layer, bearer(&wrong_key)).await);

    let unknown_kid = rsa(Jwt::RS256, Some("nope"), &claims("alice"));
    assert_refused(&send_through(&layer, bearer(&unknown_kid)).await);

    let wrong_secret = mint(
        Jwt::HS256,
        &secret_key(b"another-secret-that-is-32-bytes-long!!"),
        Some("hs256"),
        &claims("alice"),
    );
    assert_refused(&send_through(&layer, bearer(&wrong_secret)).await);
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);

    // `alg: none`, with and without a signature part.
    let none = forge(
        &json!({ "alg": "none", "kid": "rs256" }),
        &claims("alice"),
        b"",
    );
    assert_refused(&send_through(&layer, bearer(&none)).await);
    let none = forge(&json!({ "alg": "none" }), &claims("alice"), b"");
    assert_refused(&send_through(&layer, bearer(none.trim_end_matches('.'))).await);

    // HS256 signed with the RSA public key's PEM text, naming the RSA key's kid.
    let public_pem = fixture("rsa.pub.pem");
    let confused = mint(
        Jwt::HS256,
        &secret_key(&public_pem),
        Some("rs256"),
        &claims("alice"),
    );
    assert_refused(&send_through(&layer, bearer(&confused)).await);
    // The same without a kid, so every key is a candidate.
    let confused = mint(Jwt::HS256, &secret_key(&public_pem), None, &claims("alice"));
    assert_refused(&send_through(&layer, bearer(&confused)).await);

    // RS256 header against an ES256 key id.
    let swapped = rsa(Jwt::RS256, Some("es256"), &claims("alice"));
    assert_refused(&send_through(&layer, bearer(&swapped)).await);

    // A `crit` header we do not understand.
    let header = json!({ "alg": "HS256", "kid": "hs256", "crit": ["exp"] });
    let signing_input = format!(
        "{}.{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            header.to_string()
        ),
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims("alice").to_string()
        )
    );
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, HS_SECRET),
        signing_input.as_bytes(),
    );
    let crit = format!(
        "{signing_input}.{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            tag.as_ref()
        )
    );
    assert_refused(&send_through(&layer, bearer(&crit)).await);
}

#[tokio::test]
async fn malformed_authorization_headers() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);
    let good = hs(Jwt::HS256, Some("hs256"), &claims("alice"));

    for value in [
        "Bearer ".to_owned(),
        format!("Bearer  {good}"),
        format!("Bearer {good} "),
        "Bearer a.b".to_owned(),
        "Bearer a.b.c.d".to_owned(),
        "Bearer !!!.???.***".to_owned(),
        format!("Bearer {}", "a".repeat(16 * 1024)),
        format!("Bearer {}.{}.{}", "e30", "a".repeat(16 * 1024), "c2ln"),
    ] {
        let outcome = send_through(&layer, request_with("authorization", &value)).await;
        assert_refused(&outcome);
    }

    // Non-ASCII bytes in the header value.
    let mut request = bearer(&good);
    request.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_bytes("Bearer tökén".as_bytes()).expect("opaque bytes are allowed"),
    );
    assert_refused(&send_through(&layer, request).await);

    // Two Authorization headers.
    let mut request = bearer(&good);
    request.headers_mut().append(
        "authorization",
        http::HeaderValue::from_str(&format!("Bearer {good}")).expect("ascii"),
    );
    assert_refused(&send_through(&layer, request).await);

    // Empty header: no usable credential, so the plain challenge.
    let outcome = send_through(&layer, request_with("authorization", "")).await;
    assert_eq!(outcome.status, 401);
    assert_eq!(
        outcome.challenge.as_deref(),
        Some("Bearer realm=\"rampart\"")
    );

    // The scheme is case-insensitive.
    let outcome = send_through(
        &layer,
        request_with("authorization", &format!("bearer {good}")),
    )
    .await;
    assert_eq!(outcome.status, 200);
}

#[tokio::test]
async fn no_credential_gets_a_bare_challenge_unless_anonymous_is_allowed() {
    let layer = jwt_layer(&JwtConfig::default(), vec![any_issuer()]);
    let request = http::Request::get("/")
        .body(http_body_util::Full::default())
        .expect("request");
    let outcome = send_through(&layer, request).await;
    assert_eq!(outcome.status, 401);
    assert_eq!(
        outcome.challenge.as_deref(),
        Some("Bearer realm=\"rampart\"")
    );
    assert_eq!(outcome.body["detail"], "credentials are required");

    let anonymous = layer.clone().allow_anonymous(true);
    let request = http::Request::get("/")
        .body(http_body_util::Full::default())
        .expect("request");
    let outcome = send_through(&anonymous, request).await;
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.body["anonymous"], true);

    // A bad token is still refused on an anonymous route.
    assert_refused(&send_through(&anonymous, bearer("a.b.c")).await);
}

#[tokio::test]
async fn keys_load_from_files_and_environment() {
    let dir = std::env::temp_dir().join(format!("rampart-auth-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let secret_file = dir.join("secret");
    std::fs::write(&secret_file, [HS_SECRET, b"\n"].concat()).expect("write secret");
    let (x, y) = p521_jwk_xy();
    let jwks_file = dir.join("jwks.json");
    std::fs::write(
        &jwks_file,
        json!({ "keys": [{ "kty": "EC", "crv": "P-521", "kid": "p521", "x": x, "y": y, "alg": "ES512" }] }).to_string(),
    )
    .expect("write jwks");
    // Cargo sets CARGO_PKG_DESCRIPTION for test binaries; it serves as an environment secret
    // without the test touching the environment (set_var is unsafe, and unsafe is forbidden).
    let env_secret = std::env::var("CARGO_PKG_DESCRIPTION").expect("cargo sets it");

    let config = JwtConfig {
        leeway: Duration::from_secs(5),
        issuers: vec![IssuerConfig {
            issuer: None,
            audiences: vec![],
            keys: vec![
                KeyConfig {
                    kid: Some("env".into()),
                    algorithm: Some(Algorithm::HS256),
                    secret_env: Some("CARGO_PKG_DESCRIPTION".into()),
                    ..KeyConfig::default()
                },
                KeyConfig {
                    kid: Some("file".into()),
                    algorithm: Some(Algorithm::HS512),
                    secret_file: Some(secret_file.clone()),
                    ..KeyConfig::default()
                },
                KeyConfig {
                    kid: Some("pem".into()),
                    algorithm: Some(Algorithm::ES256),
                    pem_file: Some(
                        format!("{}/tests/fixtures/p256.pub.pem", env!("CARGO_MANIFEST_DIR"))
                            .into(),
                    ),
                    ..KeyConfig::default()
                },
                KeyConfig {
                    jwks_file: Some(jwks_file.clone()),
                    algorithms: vec![Algorithm::ES512],
                    ..KeyConfig::default()
                },
            ],
        }],
        ..JwtConfig::default()
    };
    let fetcher: Arc<dyn JwksFetcher> = Arc::new(rampart_auth::jwt::jwks::HttpFetcher::default());
    let verifier = JwtVerifier::from_config(&config, fetcher.clone())
        .await
        .expect("keys load");
    let layer = layer(
        Authenticator::new(
            &AuthConfig::default(),
            KeyHasher::sha256(),
            None,
            Some(verifier),
        )
        .expect("auth"),
    );

    let ec = jsonwebtoken::EncodingKey::from_ec_pem(&fixture("p256.key.pem")).expect("fixture");
    for token in [
        mint(
            Jwt::HS256,
            &secret_key(env_secret.as_bytes()),
            Some("env"),
            &claims("alice"),
        ),
        hs(Jwt::HS512, Some("file"), &claims("alice")),
        mint(Jwt::ES256, &ec, Some("pem"), &claims("alice")),
        es512(Some("p521"), &claims("alice")),
    ] {
        assert_eq!(send_through(&layer, bearer(&token)).await.status, 200);
    }

    // A missing environment variable, a short secret and a wrong-curve PEM fail start-up.
    let mut broken = config.clone();
    broken.issuers[0].keys.truncate(1);
    broken.issuers[0].keys[0].secret_env = Some("RAMPART_AUTH_TEST_UNSET".into());
    assert!(
        JwtVerifier::from_config(&broken, fetcher.clone())
            .await
            .is_err()
    );
    assert!(VerifyKey::hmac(None, Algorithm::HS256, b"short").is_err());
    assert!(VerifyKey::from_pem(None, Algorithm::ES256, &fixture("p384.pub.pem")).is_err());
    assert!(VerifyKey::from_pem(None, Algorithm::HS256, &fixture("rsa.pub.pem")).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_a_kid_every_key_of_the_algorithm_is_tried() {
    // Two HS256 secrets during a rotation, neither named by the tokens.
    let new_secret = b"the-next-hmac-secret-after-rotation-0123456789";
    let issuer = Issuer::new(None)
        .with_key(VerifyKey::hmac(None, Algorithm::HS256, HS_SECRET).expect("key"))
        .with_key(VerifyKey::hmac(None, Algorithm::HS256, new_secret).expect("key"));
    let layer = jwt_layer(&JwtConfig::default(), vec![issuer]);

    let old = hs(Jwt::HS256, None, &claims("alice"));
    let new = mint(Jwt::HS256, &secret_key(new_secret), None, &claims("alice"));
    assert_eq!(send_through(&layer, bearer(&old)).await.status, 200);
    assert_eq!(send_through(&layer, bearer(&new)).await.status, 200);

    let stranger = mint(
        Jwt::HS256,
        &secret_key(b"a-third-secret-nobody-configured-000000"),
        None,
        &claims("alice"),
    );
    assert_refused(&send_through(&layer, bearer(&stranger)).await);
}
