//! Per-request cost of the API key check and of JWT verification, against bare
//! `jsonwebtoken::decode` in the same run.
//!
//! The baseline gets every advantage it can: its `DecodingKey` and `Validation` are built
//! once, outside the loop. What remains per call is what `decode` itself does: it builds a
//! verifier from the key (parsing RSA and EC keys again) and deserializes the claims twice.
#![allow(missing_docs)]

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::HeaderMap;
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rampart_auth::backend::KeyStore;
use rampart_auth::backend::memory::MemoryKeyStore;
use rampart_auth::backend::redis::{RedisKeyStore, RedisKeyStoreConfig};
use rampart_auth::jwt::{Algorithm, Issuer, JwtConfig, JwtVerifier, VerifyKey};
use rampart_auth::{ApiKeyConfig, AuthConfig, Authenticator, KeyHasher};
use serde::Deserialize;
use serde_json::json;

const SECRET: &[u8] = b"a-benchmark-hmac-secret-that-is-long-enough-0123";

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    exp: u64,
    iat: u64,
    roles: Vec<String>,
    scope: String,
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn claims() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    json!({ "sub": "alice", "iat": now, "exp": now + 3600, "roles": ["admin"], "scope": "orders:read orders:write" })
}

fn authenticator_with(store: Option<Arc<dyn KeyStore>>, jwt: Option<JwtVerifier>) -> Authenticator {
    let config = AuthConfig {
        api_keys: Some(ApiKeyConfig::default()),
        ..AuthConfig::default()
    };
    Authenticator::new(&config, KeyHasher::sha256(), store, jwt).expect("authenticator")
}

fn headers(name: &'static str, value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, value.parse().expect("header"));
    headers
}

fn api_keys(c: &mut Criterion) {
    let hasher = KeyHasher::sha256();
    let new = hasher.generate("rk", "alice").expect("key");
    let memory = authenticator_with(
        Some(Arc::new(MemoryKeyStore::from_records([new.record.clone()]))),
        None,
    );
    let request = headers("x-api-key", &new.key);

    let mut group = c.benchmark_group("api_key");
    group.bench_function("memory_store", |b| {
        b.iter(|| {
            let identity = memory
                .authenticate(black_box(&request))
                .now_or_never()
                .expect("ready");
            black_box(identity.expect("valid"))
        });
    });

    // The Redis store on its hot path: the record is in the local cache.
    let server = rampart_test_support::RedisServer::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let redis = runtime.block_on(async {
        let pool = rampart_core::redis::RedisPool::new(
            &rampart_core::redis::RedisConfig::standalone(server.url()),
        )
        .expect("pool");
        let config = RedisKeyStoreConfig {
            cache_ttl: Duration::from_secs(3600),
            ..RedisKeyStoreConfig::default()
        };
        let store = Arc::new(RedisKeyStore::new(pool, config).expect("store"));
        store.insert(new.record.clone()).await.expect("insert");
        let authenticator = authenticator_with(Some(store), None);
        authenticator
            .authenticate(&request)
            .await
            .expect("warm-up lookup");
        authenticator
    });
    group.bench_function("redis_store_cached", |b| {
        b.iter(|| {
            let identity = redis
                .authenticate(black_box(&request))
                .now_or_never()
                .expect("cached");
            black_box(identity.expect("valid"))
        });
    });
    group.finish();
}

fn jwt(c: &mut Criterion) {
    let claims = claims();
    let cases = [
        (
            "HS256",
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET).expect("secret"),
            VerifyKey::hmac(None, Algorithm::HS256, SECRET).expect("key"),
            DecodingKey::from_secret(SECRET).expect("secret"),
        ),
        (
            "RS256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&fixture("rsa.key.pem")).expect("rsa"),
            VerifyKey::from_pem(None, Algorithm::RS256, &fixture("rsa.pub.pem")).expect("rsa"),
            DecodingKey::from_rsa_pem(&fixture("rsa.pub.pem")).expect("rsa"),
        ),
        (
            "ES256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&fixture("p256.key.pem")).expect("ec"),
            VerifyKey::from_pem(None, Algorithm::ES256, &fixture("p256.pub.pem")).expect("ec"),
            DecodingKey::from_ec_pem(&fixture("p256.pub.pem")).expect("ec"),
        ),
    ];

    for (name, alg, encoding, ours, theirs) in cases {
        let jwt_alg: jsonwebtoken::Algorithm = alg.as_str().parse().expect("alg");
        let token = jsonwebtoken::encode(&Header::new(jwt_alg), &claims, &encoding).expect("token");
        let verifier = JwtVerifier::new(
            &JwtConfig::default(),
            vec![Issuer::new(None).with_key(ours)],
        )
        .expect("verifier");
        let authenticator = authenticator_with(None, Some(verifier));
        let request = headers("authorization", &format!("Bearer {token}"));
        let mut validation = Validation::new(jwt_alg);
        validation.required_spec_claims = HashSet::from(["exp".to_owned(), "sub".to_owned()]);
        validation.validate_aud = false;

        let mut group = c.benchmark_group(format!("jwt_{name}"));
        group.bench_function("rampart_authenticate", |b| {
            b.iter(|| {
                let identity = authenticator
                    .authenticate(black_box(&request))
                    .now_or_never()
                    .expect("ready");
                black_box(identity.expect("valid"))
            });
        });
        group.bench_function("jsonwebtoken_decode", |b| {
            b.iter(|| {
                black_box(
                    jsonwebtoken::decode::<Claims>(black_box(&token), &theirs, &validation)
                        .expect("valid"),
                )
            });
        });
        group.finish();
    }
}

criterion_group!(benches, api_keys, jwt);
criterion_main!(benches);
