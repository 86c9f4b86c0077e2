//! What a hostile or broken sender can put in front of the verifier: any header bytes are
//! refused with a failure class and never panic, and no single changed byte of a genuine
//! webhook verifies.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use rampart_webhook::{SchemeKind, Verifier, VerifyConfig};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_700_000_000;

/// The schemes, each with the headers it reads: the signed ones first, then the ones it only
/// keys replays on (GitHub's delivery id, which anyone may rewrite).
fn schemes() -> [(SchemeKind, &'static [&'static str], &'static [&'static str]); 3] {
    [
        (
            SchemeKind::Standard,
            &["webhook-id", "webhook-timestamp", "webhook-signature"],
            &[],
        ),
        (SchemeKind::Timestamped, &["x-webhook-signature"], &[]),
        (
            SchemeKind::Github,
            &["x-hub-signature-256"],
            &["x-github-delivery"],
        ),
    ]
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn verifier(scheme: SchemeKind) -> Verifier {
    Verifier::new(&VerifyConfig {
        scheme,
        secrets: vec![SECRET.into()],
        ..VerifyConfig::default()
    })
    .unwrap()
}

/// A byte a header value may hold: visible ASCII, space, tab, or obs-text.
fn value_byte() -> impl Strategy<Value = u8> {
    prop_oneof![0x20u8..=0x7e, Just(b'\t'), 0x80u8..=0xff]
}

/// Header values from pure noise to near misses of each scheme's syntax, so that the parsers
/// are reached past their first check.
fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
    let noise = proptest::collection::vec(value_byte(), 0..120);
    let base64 = proptest::collection::vec(
        prop_oneof![
            b'A'..=b'Z',
            b'a'..=b'z',
            b'0'..=b'9',
            Just(b'+'),
            Just(b'/'),
            Just(b'=')
        ],
        0..100,
    );
    let hex = proptest::collection::vec(prop_oneof![b'0'..=b'9', b'a'..=b'f', b'A'..=b'G'], 0..80);
    let digits = proptest::collection::vec(b'0'..=b'9', 0..14);
    prop_oneof![
        noise,
        base64
            .clone()
            .prop_map(|b64| [b"v1,".as_slice(), &b64].concat()),
        base64.prop_map(|b64| [b"v1a,".as_slice(), &b64].concat()),
        (digits.clone(), hex.clone())
            .prop_map(|(t, hex)| [b"t=".as_slice(), &t, b",v1=", &hex].concat()),
        hex.prop_map(|hex| [b"sha256=".as_slice(), &hex].concat()),
        digits,
        Just(NOW.to_string().into_bytes()),
    ]
}

proptest! {
    #[test]
    fn any_header_values_are_refused_with_a_class_and_no_panic(
        scheme in 0usize..3,
        values in proptest::collection::vec(hostile_value(), 4),
        repeat in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (kind, signed, unsigned) = schemes()[scheme];
        let mut headers = HeaderMap::new();
        for (name, value) in signed.iter().chain(unsigned).zip(&values) {
            let value = HeaderValue::from_bytes(value).unwrap();
            let name = HeaderName::from_static(name);
            // Sometimes twice, which a sender must not do either.
            if repeat {
                headers.append(name.clone(), value.clone());
            }
            headers.append(name, value);
        }

        let refused = verifier(kind).verify(&headers, &body, now());
        let err = refused.expect_err("noise never verifies");
        prop_assert!(err.outcome().is_some(), "{err}");
    }

    #[test]
    fn no_single_changed_byte_of_a_genuine_webhook_verifies(
        scheme in 0usize..3,
        body in proptest::collection::vec(any::<u8>(), 1..64),
        target in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        replacement in value_byte(),
    ) {
        let (kind, signed, _) = schemes()[scheme];
        let verifier = verifier(kind);
        let mut headers = common::signed(kind, SECRET, "msg_2ZbPBjUYKfFgJzV4", NOW, &body);
        prop_assert!(verifier.verify(&headers, &body, now()).is_ok());

        // One byte of one signed header, or of the body, changed.
        let mut body = body;
        let choice = target.index(signed.len() + 1);
        if let Some(name) = signed.get(choice) {
            let mut value = headers[*name].as_bytes().to_vec();
            let at = at.index(value.len());
            // Hex is read in either case, so a change of case alone is the same signature.
            let hex_header = kind != SchemeKind::Standard;
            prop_assume!(if hex_header {
                !value[at].eq_ignore_ascii_case(&replacement)
            } else {
                value[at] != replacement
            });
            value[at] = replacement;
            headers.insert(*name, HeaderValue::from_bytes(&value).unwrap());
        } else {
            let at = at.index(body.len());
            prop_assume!(body[at] != replacement);
            body[at] = replacement;
        }

        prop_assert!(verifier.verify(&headers, &body, now()).is_err());
    }
}
