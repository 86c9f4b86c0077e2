//! API keys through the bare layer, with the in-memory and static stores.

mod common;

use std::sync::Arc;

use common::*;
use rampart_auth::backend::KeyStore;
use rampart_auth::backend::memory::MemoryKeyStore;
use rampart_auth::{ApiKeyConfig, AuthConfig, AuthLayer, Authenticator, KeyHasher, KeyRecord};
use serde_json::json;

fn key_layer(store: Arc<dyn KeyStore>, hasher: KeyHasher) -> AuthLayer {
    let config = AuthConfig {
        api_keys: Some(ApiKeyConfig::default()),
        ..AuthConfig::default()
    };
    layer(Authenticator::new(&config, hasher, Some(store), None).expect("authenticator"))
}

fn issue(hasher: &KeyHasher, owner: &str, roles: &[&str]) -> (String, KeyRecord) {
    let mut new = hasher.generate("rk", owner).expect("key");
    new.record.roles = roles.iter().map(|r| (*r).to_owned()).collect();
    new.record.scopes = ["orders:read".to_owned()].into();
    (new.key, new.record)
}

#[tokio::test]
async fn a_valid_key_sets_the_identity_in_either_header() {
    let hasher = KeyHasher::sha256();
    let (key, record) = issue(&hasher, "alice", &["admin"]);
    let id = record.id.clone();
    let layer = key_layer(Arc::new(MemoryKeyStore::from_records([record])), hasher);

    for request in [
        request_with("x-api-key", &key),
        request_with("authorization", &format!("ApiKey {key}")),
    ] {
        let outcome = send_through(&layer, request).await;
        assert_eq!(outcome.status, 200, "{}", outcome.body);
        assert_eq!(outcome.body["subject"], "alice");
        assert_eq!(outcome.body["kind"], "api_key");
        assert_eq!(outcome.body["credential_id"], json!(id));
        assert_eq!(outcome.body["roles"], json!(["admin"]));
        assert_eq!(outcome.body["scopes"], json!(["orders:read"]));
    }
}

#[tokio::test]
async fn revoked_expired_unknown_and_mistyped_keys_are_refused_alike() {
    let hasher = KeyHasher::with_pepper(&[42u8; 32]).expect("pepper");
    let store = Arc::new(MemoryKeyStore::new());
    let layer = key_layer(store.clone(), hasher.clone());

    let (good, record) = issue(&hasher, "alice", &[]);
    store.insert(record.clone()).await.expect("insert");
    assert_eq!(
        send_through(&layer, request_with("x-api-key", &good))
            .await
            .status,
        200
    );

    // Revoked.
    assert!(store.revoke(&record.id).await.expect("revoke"));
    assert_refused(&send_through(&layer, request_with("x-api-key", &good)).await);
    assert!(!store.revoke("nosuchkeyid23456").await.expect("revoke"));

    // Expired a second ago.
    let (expired, mut record) = issue(&hasher, "bob", &[]);
    record.expires_at = Some(now() - 1);
    store.insert(record).await.expect("insert");
    assert_refused(&send_through(&layer, request_with("x-api-key", &expired)).await);

    // Never stored.
    let (unknown, _) = issue(&hasher, "carol", &[]);
    assert_refused(&send_through(&layer, request_with("x-api-key", &unknown)).await);

    // A typo: the checksum catches it.
    let (good, record) = issue(&hasher, "dave", &[]);
    store.insert(record.clone()).await.expect("insert");
    let mut typo = good.clone().into_bytes();
    let at = good.len() - 12;
    typo[at] = if typo[at] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    assert_refused(&send_through(&layer, request_with("x-api-key", &typo)).await);

    // The right id with another secret, checksum recomputed by a forger who knows the format.
    let (body, check) = good.rsplit_once('_').expect("four parts");
    assert_eq!(independent_checksum(body), check, "the documented checksum");
    let (other, _) = issue(&hasher, "dave", &[]);
    let other_secret = other.split('_').nth(2).expect("secret part");
    let body = format!("rk_{}_{other_secret}", record.id);
    let forged = format!("{body}_{}", independent_checksum(&body));
    assert_refused(&send_through(&layer, request_with("x-api-key", &forged)).await);

    // Other prefixes, empty and oversized values, non-ASCII bytes, two keys at once.
    for value in ["", "sk_live_abc", "rk_", &"a".repeat(16 * 1024)] {
        assert_refused(&send_through(&layer, request_with("x-api-key", value)).await);
    }
    let mut request = request_with("x-api-key", &good);
    request.headers_mut().insert(
        "x-api-key",
        http::HeaderValue::from_bytes("rk_ключ".as_bytes()).expect("opaque bytes"),
    );
    assert_refused(&send_through(&layer, request).await);
    let mut request = request_with("x-api-key", &good);
    request.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_str(&format!("ApiKey {good}")).expect("ascii"),
    );
    assert_refused(&send_through(&layer, request).await);
    assert_refused(
        &send_through(
            &layer,
            request_with("authorization", &format!("ApiKey  {good}")),
        )
        .await,
    );
}

/// SHA-256 over the body, first five bytes in lowercase base32, seven characters: the format
/// as documented, computed here without the crate.
fn independent_checksum(body: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    let bits: u64 = digest.as_ref()[..5]
        .iter()
        .fold(0, |acc, b| (acc << 8) | u64::from(*b));
    let alphabet = b"abcdefghijklmnopqrstuvwxyz234567";
    (0..7)
        .map(|i| char::from(alphabet[((bits >> (35 - 5 * i)) & 31) as usize]))
        .collect::<String>()
        .chars()
        .take(7)
        .collect()
}

#[tokio::test]
async fn static_keys_from_the_config_file_hold_hashes_only() {
    let hasher = KeyHasher::sha256();
    let (key, record) = issue(&hasher, "ci", &["deploy"]);
    let toml_text = format!(
        "[api_keys]\nprefix = \"rk\"\nstatic = [{{ id = \"{}\", hash = \"{}\", owner = \"ci\", roles = [\"deploy\"] }}]\n",
        record.id, record.hash
    );
    let config: AuthConfig = toml::from_str(&toml_text).expect("config parses");
    config.validate().expect("config is valid");
    let store =
        MemoryKeyStore::from_records(config.api_keys.clone().expect("api keys").static_keys);
    let layer =
        layer(Authenticator::new(&config, hasher, Some(Arc::new(store)), None).expect("auth"));

    let outcome = send_through(&layer, request_with("x-api-key", &key)).await;
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.body["roles"], json!(["deploy"]));
    assert!(!toml_text.contains(key.split('_').nth(2).expect("secret")));
}

#[test]
fn bad_configuration_is_named() {
    let err = toml::from_str::<AuthConfig>("[api_keys]\nprefix = \"has_underscore\"\n")
        .expect("parses")
        .validate()
        .expect_err("prefix with an underscore");
    assert!(err.to_string().contains("api_keys.prefix"), "{err}");

    let err = AuthConfig::default()
        .validate()
        .expect_err("nothing enabled");
    assert!(err.to_string().contains("auth"), "{err}");

    assert!(toml::from_str::<AuthConfig>("api_key_headr = \"x\"\n").is_err());
}
