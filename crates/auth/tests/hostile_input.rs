//! Whatever bytes a client sends as a credential, the answer is a 401, never a panic.

mod common;

use std::sync::Arc;

use common::*;
use proptest::prelude::*;
use rampart_auth::backend::memory::MemoryKeyStore;
use rampart_auth::jwt::{Algorithm, Issuer, JwtConfig, JwtVerifier, VerifyKey};
use rampart_auth::{ApiKeyConfig, AuthConfig, AuthLayer, Authenticator, KeyHasher, apikey};

fn both() -> AuthLayer {
    let issuer = Issuer::new(None)
        .with_key(VerifyKey::hmac(None, Algorithm::HS256, HS_SECRET).expect("key"))
        .with_key(
            VerifyKey::from_pem(None, Algorithm::RS256, &fixture("rsa.pub.pem")).expect("key"),
        );
    let verifier = JwtVerifier::new(&JwtConfig::default(), vec![issuer]).expect("verifier");
    let config = AuthConfig {
        api_keys: Some(ApiKeyConfig::default()),
        ..AuthConfig::default()
    };
    let store = Arc::new(MemoryKeyStore::new());
    layer(
        Authenticator::new(&config, KeyHasher::sha256(), Some(store), Some(verifier))
            .expect("auth"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_header_bytes_are_refused_cleanly(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        header in prop_oneof![Just("authorization"), Just("x-api-key")],
        prefix in prop_oneof![Just(&b""[..]), Just(&b"Bearer "[..]), Just(&b"ApiKey "[..]), Just(&b"Bearer e30."[..])],
    ) {
        let value = [prefix, &bytes].concat();
        // Header values cannot hold control bytes; hyper refuses those before any layer.
        let Ok(value) = http::HeaderValue::from_bytes(&value) else { return Ok(()) };
        let mut request = request_with("x-unused", "1");
        request.headers_mut().insert(header, value);
        let outcome = runtime().block_on(send_through(&both(), request));
        prop_assert_eq!(outcome.status, 401);
    }

    #[test]
    fn token_shaped_garbage_is_refused_cleanly(
        parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 1..5),
    ) {
        let token = parts.join(".");
        let outcome = runtime().block_on(send_through(&both(), bearer(&token)));
        prop_assert_eq!(outcome.status, 401);
    }

    #[test]
    fn key_parsing_never_panics(key in "\\PC{0,120}", prefix in "[a-z]{1,4}") {
        let _ = apikey::parse(&prefix, &key);
    }
}
