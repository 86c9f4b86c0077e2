//! The verification and signing decisions, without a layer: published vectors, every
//! failure class, tolerance edges, rotation and non-UTF-8 bodies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use rampart_webhook::{
    Outcome, ReplayConfig, SchemeKind, SignConfig, Signer, Verifier, VerifyConfig, WebhookError,
};

// The Standard Webhooks reference libraries' sign tests (Python, JavaScript, Go, Rust).
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: u64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
// The Go library's asymmetric sign test: a `whsk_` seed and its `v1a` signature.
const SPEC_ED25519_SEED: &str = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
const SPEC_V1A: &str =
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn verifier(scheme: SchemeKind, secrets: &[&str]) -> Verifier {
    Verifier::new(&VerifyConfig {
        scheme,
        secrets: secrets.iter().map(|s| (*s).into()).collect(),
        ..VerifyConfig::default()
    })
    .unwrap()
}

fn signer(scheme: SchemeKind, secrets: &[&str]) -> Signer {
    Signer::new(&SignConfig {
        scheme,
        secrets: secrets.iter().map(|s| (*s).into()).collect(),
        ..SignConfig::default()
    })
    .unwrap()
}

fn standard_headers(id: &str, ts: &str, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("webhook-timestamp", ts.parse().unwrap());
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers
}

fn spec_headers(signature: &str) -> HeaderMap {
    standard_headers(SPEC_ID, &SPEC_TS.to_string(), signature)
}

fn outcome(result: Result<impl Sized, WebhookError>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(err) => err.outcome().unwrap(),
    }
}

#[test]
fn spec_vector_signs_and_verifies() {
    // Our signature for the spec's inputs is the published one.
    let signed = signer(SchemeKind::Standard, &[SPEC_SECRET])
        .sign_with(SPEC_ID, SPEC_TS, SPEC_BODY)
        .unwrap();
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    assert_eq!(headers["webhook-signature"], SPEC_SIGNATURE);
    assert_eq!(headers["webhook-id"], SPEC_ID);
    assert_eq!(headers["webhook-timestamp"], "1614265330");

    // The published signature verifies, with and without the whsec_ prefix.
    for secret in [SPEC_SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        let verified = verifier(SchemeKind::Standard, &[secret])
            .verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, at(SPEC_TS))
            .unwrap();
        assert_eq!(verified.id(), Some(SPEC_ID));
        assert_eq!(verified.timestamp(), Some(SPEC_TS));
    }
}

#[test]
fn second_spec_vector_signs_and_verifies() {
    // The Rust reference library's vector.
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let id = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    let expected = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    let signed = signer(SchemeKind::Standard, &[secret])
        .sign_with(id, 1_649_367_553, body)
        .unwrap();
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    assert_eq!(headers["webhook-signature"], expected);

    let headers = standard_headers(id, "1649367553", expected);
    verifier(SchemeKind::Standard, &[secret])
        .verify(&headers, body, at(1_649_367_553))
        .unwrap();
}

#[test]
fn spec_tampered_signatures_are_refused() {
    let verifier = verifier(SchemeKind::Standard, &[SPEC_SECRET]);
    // The Python reference tests' invalid signature: one character off.
    let off_by_one = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=";
    assert_eq!(
        outcome(verifier.verify(&spec_headers(off_by_one), SPEC_BODY, at(SPEC_TS))),
        Outcome::Mismatch
    );
    // The right signature over a body with one byte changed.
    assert_eq!(
        outcome(verifier.verify(
            &spec_headers(SPEC_SIGNATURE),
            br#"{"test": 2432232315}"#,
            at(SPEC_TS)
        )),
        Outcome::Mismatch
    );
    // A truncated entry has nothing readable.
    assert_eq!(
        outcome(verifier.verify(&spec_headers("v1,"), SPEC_BODY, at(SPEC_TS))),
        Outcome::Malformed
    );
}

#[test]
fn spec_multi_signature_header_matches_any_entry() {
    // The reference tests' list: garbage, an unknown version, the valid one, garbage.
    let header = format!(
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {SPEC_SIGNATURE} v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    );
    verifier(SchemeKind::Standard, &[SPEC_SECRET])
        .verify(&spec_headers(&header), SPEC_BODY, at(SPEC_TS))
        .unwrap();
}

#[test]
fn spec_ed25519_vector_signs_and_verifies() {
    // Signing with the Go library's seed gives its published v1a signature.
    let signed = signer(SchemeKind::Standard, &[SPEC_ED25519_SEED])
        .sign_with(SPEC_ID, SPEC_TS, SPEC_BODY)
        .unwrap();
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    assert_eq!(headers["webhook-signature"], SPEC_V1A);

    // The published signature verifies against the public key of that seed.
    let (_, public) = public_of(SPEC_ED25519_SEED);
    verifier(SchemeKind::Standard, &[&public])
        .verify(&spec_headers(SPEC_V1A), SPEC_BODY, at(SPEC_TS))
        .unwrap();

    // A v1 HMAC secret does not accept a v1a signature, nor the other way round.
    assert_eq!(
        outcome(verifier(SchemeKind::Standard, &[SPEC_SECRET]).verify(
            &spec_headers(SPEC_V1A),
            SPEC_BODY,
            at(SPEC_TS)
        )),
        Outcome::Mismatch
    );
    assert_eq!(
        outcome(verifier(SchemeKind::Standard, &[&public]).verify(
            &spec_headers(SPEC_SIGNATURE),
            SPEC_BODY,
            at(SPEC_TS)
        )),
        Outcome::Mismatch
    );
}

/// The `whpk_` key of a `whsk_` seed, computed by signing and checking with the seed-derived
/// verifier (the public crate API has no "public key of" helper, and needs none).
fn public_of(private: &str) -> (String, String) {
    use base64::Engine;
    let seed = base64::engine::general_purpose::STANDARD
        .decode(private.trim_start_matches("whsk_"))
        .unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&seed.try_into().unwrap());
    let public = base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
    (private.to_owned(), format!("whpk_{public}"))
}

#[test]
fn generated_keypair_round_trips_v1a_and_mixed_lists() {
    let (private, public) = rampart_webhook::generate_keypair().unwrap();
    let hmac = rampart_webhook::generate_secret().unwrap();
    let now = SystemTime::now();

    // A sender signing with both an HMAC secret and an Ed25519 key...
    let signed = signer(SchemeKind::Standard, &[hmac.expose(), private.expose()]).sign(b"x", now);
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    let list = headers["webhook-signature"].to_str().unwrap().to_owned();
    assert!(list.starts_with("v1,") && list.contains(" v1a,"), "{list}");

    // ...is accepted by a receiver holding either.
    verifier(SchemeKind::Standard, &[&public])
        .verify(&headers, b"x", now)
        .unwrap();
    verifier(SchemeKind::Standard, &[hmac.expose()])
        .verify(&headers, b"x", now)
        .unwrap();
}

#[test]
fn each_failure_class_is_named() {
    let verifier = verifier(SchemeKind::Standard, &[SPEC_SECRET]);
    let now = at(SPEC_TS);

    // Each header missing in turn.
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut headers = spec_headers(SPEC_SIGNATURE);
        headers.remove(name);
        let err = verifier.verify(&headers, SPEC_BODY, now).unwrap_err();
        assert_eq!(err.outcome(), Some(Outcome::Missing));
        assert!(err.to_string().contains(name), "{err}");
    }

    // Unreadable values.
    let cases = [
        ("webhook-timestamp", "hello"),
        ("webhook-timestamp", "-5"),
        ("webhook-timestamp", "1614265330.5"),
        ("webhook-signature", "garbage"),
        ("webhook-signature", "v1,not-base64!"),
        // A tag is exactly 44 characters of base64: one more or one fewer is unreadable.
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=A",
        ),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        ),
        ("webhook-id", ""),
    ];
    for (name, value) in cases {
        let mut headers = spec_headers(SPEC_SIGNATURE);
        headers.insert(name, value.parse().unwrap());
        assert_eq!(
            outcome(verifier.verify(&headers, SPEC_BODY, now)),
            Outcome::Malformed,
            "{name}: {value}"
        );
    }

    // An id that is not text.
    let mut headers = spec_headers(SPEC_SIGNATURE);
    headers.insert(
        "webhook-id",
        http::HeaderValue::from_bytes(b"msg_\xff").unwrap(),
    );
    assert_eq!(
        outcome(verifier.verify(&headers, SPEC_BODY, now)),
        Outcome::Malformed
    );

    // A header sent twice is ambiguous.
    let mut headers = spec_headers(SPEC_SIGNATURE);
    headers.append("webhook-timestamp", "1614265330".parse().unwrap());
    assert_eq!(
        outcome(verifier.verify(&headers, SPEC_BODY, now)),
        Outcome::Malformed
    );

    // Only versions we do not know: well-formed, but nothing matches.
    let headers = spec_headers("v9,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=");
    assert_eq!(
        outcome(verifier.verify(&headers, SPEC_BODY, now)),
        Outcome::Mismatch
    );

    // Expired, and the error says by how much without any signature in it.
    let err = verifier
        .verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, at(SPEC_TS + 3600))
        .unwrap_err();
    assert_eq!(err.outcome(), Some(Outcome::Expired));
    assert!(err.to_string().contains("-3600"), "{err}");
    assert!(!err.to_string().contains("g0hM9SsE"), "{err}");
}

#[test]
fn blanks_around_values_and_between_signatures_are_not_part_of_them() {
    let verifier = verifier(SchemeKind::Standard, &[SPEC_SECRET]);
    let now = at(SPEC_TS);

    // Values set by code rather than parsed by a server may keep their blanks.
    let headers = standard_headers(
        &format!("  {SPEC_ID}\t"),
        &format!(" {SPEC_TS} "),
        &format!("  v9,whatever   {SPEC_SIGNATURE}  v1a,unreadable "),
    );
    let verified = verifier.verify(&headers, SPEC_BODY, now).unwrap();
    assert_eq!(verified.id(), Some(SPEC_ID));
    assert_eq!(verified.timestamp(), Some(SPEC_TS));
}

#[test]
fn the_standard_scheme_needs_its_id_even_without_replay_protection() {
    let verifier = Verifier::new(&VerifyConfig {
        scheme: SchemeKind::Standard,
        secrets: vec![SPEC_SECRET.into()],
        replay: ReplayConfig {
            enabled: false,
            ..ReplayConfig::default()
        },
        ..VerifyConfig::default()
    })
    .unwrap();

    // The id is part of what is signed: without it the signature covers nothing we can check.
    let mut headers = spec_headers(SPEC_SIGNATURE);
    headers.remove("webhook-id");
    assert_eq!(
        outcome(verifier.verify(&headers, SPEC_BODY, at(SPEC_TS))),
        Outcome::Missing
    );
    assert_eq!(
        outcome(verifier.verify(&spec_headers(SPEC_SIGNATURE), SPEC_BODY, at(SPEC_TS))),
        Outcome::Ok
    );
}

#[test]
fn tolerance_edges_are_inclusive_and_set_apart() {
    let config = VerifyConfig {
        secrets: vec![SPEC_SECRET.into()],
        tolerance_past: Duration::from_secs(300),
        tolerance_future: Duration::from_secs(60),
        ..VerifyConfig::default()
    };
    let verifier = Verifier::new(&config).unwrap();
    let headers = spec_headers(SPEC_SIGNATURE);
    let check = |now| outcome(verifier.verify(&headers, SPEC_BODY, at(now)));

    // Exactly 300 s old passes; 301 s does not.
    assert_eq!(check(SPEC_TS + 300), Outcome::Ok);
    assert_eq!(check(SPEC_TS + 301), Outcome::Expired);
    // Exactly 60 s ahead passes; 61 s does not (the future bound is separate).
    assert_eq!(check(SPEC_TS - 60), Outcome::Ok);
    assert_eq!(check(SPEC_TS - 61), Outcome::Expired);
}

#[test]
fn rotation_accepts_either_of_two_secrets() {
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let new = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let stranger = "whsec_c3RyYW5nZXJzdHJhbmdlcnN0cmFuZ2Vy";
    let receiver = verifier(SchemeKind::Standard, &[new, old]);
    let now = SystemTime::now();

    // Signed with the old secret only, with the new only, and with both.
    for secrets in [&[old][..], &[new][..], &[old, new][..]] {
        let mut headers = HeaderMap::new();
        signer(SchemeKind::Standard, secrets)
            .sign(b"body", now)
            .apply_to(&mut headers);
        receiver.verify(&headers, b"body", now).unwrap();
    }

    // A secret the receiver does not hold is refused.
    let mut headers = HeaderMap::new();
    signer(SchemeKind::Standard, &[stranger])
        .sign(b"body", now)
        .apply_to(&mut headers);
    assert_eq!(
        outcome(receiver.verify(&headers, b"body", now)),
        Outcome::Mismatch
    );

    // Rotation works for the hex scheme too.
    let receiver = verifier(SchemeKind::Timestamped, &["new-secret", "old-secret"]);
    let mut headers = HeaderMap::new();
    signer(SchemeKind::Timestamped, &["old-secret"])
        .sign(b"body", now)
        .apply_to(&mut headers);
    receiver.verify(&headers, b"body", now).unwrap();
}

#[test]
fn timestamped_scheme_round_trips_and_fails_by_class() {
    let sign = signer(SchemeKind::Timestamped, &["s3cret"]);
    let verify = verifier(SchemeKind::Timestamped, &["s3cret"]);
    let signed = sign.sign_with("unused", 1_700_000_000, b"payload").unwrap();
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    let header = headers["x-webhook-signature"].to_str().unwrap().to_owned();
    assert!(header.starts_with("t=1700000000,v1="), "{header}");

    // Round trip, and a second v1 entry (rotation) changes nothing.
    verify
        .verify(&headers, b"payload", at(1_700_000_000))
        .unwrap();
    let two = format!(
        "t=1700000000,v1={},{}",
        "0".repeat(64),
        &header["t=1700000000,".len()..]
    );
    headers.insert("x-webhook-signature", two.parse().unwrap());
    let verified = verify
        .verify(&headers, b"payload", at(1_700_000_000))
        .unwrap();
    assert_eq!(verified.timestamp(), Some(1_700_000_000));

    let check = |value: &str, body: &[u8], now: u64| {
        let mut headers = HeaderMap::new();
        headers.insert("x-webhook-signature", value.parse().unwrap());
        outcome(verify.verify(&headers, body, at(now)))
    };
    assert_eq!(
        check(&header, b"payload!", 1_700_000_000),
        Outcome::Mismatch
    );
    assert_eq!(check(&header, b"payload", 1_700_000_301), Outcome::Expired);
    assert_eq!(
        check("v1=abcd", b"payload", 1_700_000_000),
        Outcome::Malformed
    );
    assert_eq!(
        check("t=1700000000", b"payload", 1_700_000_000),
        Outcome::Malformed
    );
    assert_eq!(
        check("t=1700000000,t=1700000000,v1=00", b"", 1_700_000_000),
        Outcome::Malformed
    );
    assert_eq!(
        outcome(verify.verify(&HeaderMap::new(), b"", at(0))),
        Outcome::Missing
    );
}

#[test]
fn timestamped_header_name_is_configurable() {
    let config = |header: &str| VerifyConfig {
        scheme: SchemeKind::Timestamped,
        secrets: vec!["k".into()],
        signature_header: header.to_owned(),
        ..VerifyConfig::default()
    };
    let sign = Signer::new(&SignConfig {
        scheme: SchemeKind::Timestamped,
        secrets: vec!["k".into()],
        signature_header: "Stripe-Signature".to_owned(),
        ..SignConfig::default()
    })
    .unwrap();
    let mut headers = HeaderMap::new();
    sign.sign_with("x", 100, b"b")
        .unwrap()
        .apply_to(&mut headers);
    assert!(headers.contains_key("stripe-signature"));

    Verifier::new(&config("Stripe-Signature"))
        .unwrap()
        .verify(&headers, b"b", at(100))
        .unwrap();
    let err = Verifier::new(&config("Acme-Signature"))
        .unwrap()
        .verify(&headers, b"b", at(100));
    assert_eq!(outcome(err), Outcome::Missing);
    assert!(Verifier::new(&config("bad header")).is_err());
}

#[test]
fn github_preset_round_trips() {
    // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
    let verify = verifier(SchemeKind::Github, &["It's a Secret to Everybody"]);
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "x-github-delivery",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap(),
    );
    let verified = verify.verify(&headers, b"Hello, World!", at(0)).unwrap();
    assert_eq!(verified.id(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
    assert_eq!(verified.timestamp(), None);

    // Our signer writes the same header.
    let signed = signer(SchemeKind::Github, &["It's a Secret to Everybody"])
        .sign_with("72d3162e-cc78-11e3-81ab-4c9367dc0958", 0, b"Hello, World!")
        .unwrap();
    let mut ours = HeaderMap::new();
    signed.apply_to(&mut ours);
    assert_eq!(ours, headers);

    // Failure classes: wrong body, no prefix, no delivery id (replay protection is on).
    assert_eq!(
        outcome(verify.verify(&headers, b"Hello, World?", at(0))),
        Outcome::Mismatch
    );
    let mut bad = headers.clone();
    bad.insert("x-hub-signature-256", "757107ea".parse().unwrap());
    assert_eq!(
        outcome(verify.verify(&bad, b"Hello, World!", at(0))),
        Outcome::Malformed
    );
    let mut bad = headers.clone();
    bad.remove("x-github-delivery");
    assert_eq!(
        outcome(verify.verify(&bad, b"Hello, World!", at(0))),
        Outcome::Missing
    );
}

#[test]
fn bodies_that_are_not_utf8_verify_in_every_scheme() {
    let body: Vec<u8> = (0..=255u8).rev().chain([0xff, 0xfe, 0x00, 0xc3]).collect();
    assert!(std::str::from_utf8(&body).is_err());
    let now = SystemTime::now();
    for (scheme, secret) in [
        (SchemeKind::Standard, SPEC_SECRET),
        (SchemeKind::Standard, SPEC_ED25519_SEED),
        (SchemeKind::Timestamped, "k"),
        (SchemeKind::Github, "k"),
    ] {
        let mut headers = HeaderMap::new();
        signer(scheme, &[secret])
            .sign(&body, now)
            .apply_to(&mut headers);
        verifier(scheme, &[secret])
            .verify(&headers, &body, now)
            .unwrap();

        // One flipped bit anywhere in the body breaks it.
        let mut flipped = body.clone();
        flipped[100] ^= 1;
        assert_eq!(
            outcome(verifier(scheme, &[secret]).verify(&headers, &flipped, now)),
            Outcome::Mismatch,
            "{scheme:?}"
        );
    }
}

#[test]
fn header_prefix_supports_branded_senders() {
    let config = VerifyConfig {
        secrets: vec![SPEC_SECRET.into()],
        header_prefix: "svix".to_owned(),
        ..VerifyConfig::default()
    };
    let mut headers = HeaderMap::new();
    headers.insert("svix-id", SPEC_ID.parse().unwrap());
    headers.insert("svix-timestamp", SPEC_TS.to_string().parse().unwrap());
    headers.insert("svix-signature", SPEC_SIGNATURE.parse().unwrap());
    Verifier::new(&config)
        .unwrap()
        .verify(&headers, SPEC_BODY, at(SPEC_TS))
        .unwrap();
}

#[test]
fn bad_configs_name_the_field() {
    let err = Verifier::new(&VerifyConfig::default()).unwrap_err();
    assert!(err.to_string().contains("`secrets`"), "{err}");

    let err = Verifier::new(&VerifyConfig {
        secrets: vec![SPEC_SECRET.into(), "whsec_***".into()],
        ..VerifyConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("secrets[1]"), "{err}");
    // The message names the field but never echoes the secret.
    assert!(!err.to_string().contains("***"), "{err}");

    let err = Verifier::new(&VerifyConfig {
        secrets: vec![SPEC_SECRET.into()],
        tolerance_past: Duration::from_millis(1500),
        ..VerifyConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("tolerance_past"), "{err}");

    let err = Signer::new(&SignConfig {
        scheme: SchemeKind::Github,
        secrets: vec!["a".into(), "b".into()],
        ..SignConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("one secret"), "{err}");

    // Debug output of a config hides the secrets.
    let config = VerifyConfig {
        secrets: vec![SPEC_SECRET.into()],
        ..VerifyConfig::default()
    };
    assert!(!format!("{config:?}").contains("MfKQ9r8"));
}

#[test]
fn config_reads_from_toml() {
    let config: VerifyConfig = toml::from_str(
        r#"
        scheme = "timestamped"
        secrets = ["a", "b"]
        signature_header = "Stripe-Signature"
        tolerance_past = "10m"
        tolerance_future = "30s"
        max_body_bytes = 4096
        [replay]
        on_store_error = "accept"
        window = "1h"
        "#,
    )
    .unwrap();
    assert_eq!(config.scheme, SchemeKind::Timestamped);
    assert_eq!(config.tolerance_past, Duration::from_secs(600));
    assert_eq!(config.tolerance_future, Duration::from_secs(30));
    assert_eq!(config.replay.window, Some(Duration::from_secs(3600)));
    assert_eq!(
        config.replay.on_store_error,
        rampart_webhook::StoreErrorPolicy::Accept
    );
    Verifier::new(&config).unwrap();

    // Unknown fields are refused rather than ignored.
    assert!(toml::from_str::<VerifyConfig>("secret = [\"a\"]").is_err());
}
