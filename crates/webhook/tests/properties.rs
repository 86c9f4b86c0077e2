//! Properties over arbitrary input: any body round-trips, and no header a peer can send makes
//! the verifier panic or accept an unsigned request.

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use rampart_webhook::{SchemeKind, SignConfig, Signer, Verifier, VerifyConfig};

const NOW: u64 = 1_700_000_000;

fn pair(scheme: SchemeKind, secret: &str) -> (Signer, Verifier) {
    let signer = Signer::new(&SignConfig {
        scheme,
        secrets: vec![secret.into()],
        ..SignConfig::default()
    })
    .unwrap();
    let verifier = Verifier::new(&VerifyConfig {
        scheme,
        secrets: vec![secret.into()],
        ..VerifyConfig::default()
    })
    .unwrap();
    (signer, verifier)
}

fn scheme() -> impl Strategy<Value = (SchemeKind, &'static str)> {
    prop_oneof![
        Just((
            SchemeKind::Standard,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        )),
        Just((SchemeKind::Timestamped, "hex-secret")),
        Just((SchemeKind::Github, "gh-secret")),
    ]
}

proptest! {
    #[test]
    fn any_body_round_trips_and_any_change_is_caught(
        (kind, secret) in scheme(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        flip in any::<usize>(),
    ) {
        let (signer, verifier) = pair(kind, secret);
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        let mut headers = HeaderMap::new();
        signer.sign(&body, now).apply_to(&mut headers);
        prop_assert!(verifier.verify(&headers, &body, now).is_ok());

        let mut changed = body.clone();
        if changed.is_empty() {
            changed.push(0);
        } else {
            let at = flip % changed.len();
            changed[at] ^= 0x01;
        }
        prop_assert!(verifier.verify(&headers, &changed, now).is_err());
    }

    #[test]
    fn arbitrary_headers_are_refused_without_panicking(
        (kind, secret) in scheme(),
        values in proptest::collection::vec("[ -~]{0,120}", 5),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (_, verifier) = pair(kind, secret);
        let names = [
            "webhook-id", "webhook-timestamp", "webhook-signature",
            "x-webhook-signature", "x-hub-signature-256",
        ];
        let mut headers = HeaderMap::new();
        for (name, value) in names.iter().zip(&values) {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(*name, value);
            }
        }
        headers.insert("x-github-delivery", HeaderValue::from_static("d"));
        let now = UNIX_EPOCH + Duration::from_secs(NOW);
        let result = verifier.verify(&headers, &body, now);
        prop_assert!(result.is_err());
        prop_assert!(result.unwrap_err().outcome().is_some());
    }
}
