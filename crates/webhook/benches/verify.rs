//! Verification per request against raw HMAC-SHA256 of the same bytes, in the same run.
//!
//! - `raw_hmac`: keying HMAC-SHA256 and hashing the body, nothing else, as a hand-written
//!   verifier does per request; the target (within 10%) is measured against this;
//! - `raw_hmac_prekeyed`: the same from a state keyed once, as the verifier keys its secrets
//!   (it keeps the two compression states rather than the `hmac` crate's hasher): the
//!   stricter floor, two compressions per message cheaper;
//! - `verifier`: `Verifier::verify` on a Standard Webhooks request (headers parsed, timestamp
//!   checked, MAC of `id.timestamp.body`, constant-time compare);
//! - `layer`: the whole `VerifyWebhook` service (body buffered from a `Full`, verified, passed
//!   on to an inner service that drops it), replay protection off so that one signed request
//!   can be sent again and again.
//!
//! The empty body shows the fixed cost per request, which is what separates the verifier
//! from raw HMAC at small sizes; 1 KiB and 1 MiB are the sizes the figures are quoted for.

use std::convert::Infallible;
use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, Request, Response};
use http_body_util::Full;
use rampart_webhook::{
    ManualClock, ReplayConfig, SignConfig, Signer, Verifier, VerifyConfig, VerifyWebhookLayer,
};
use sha2::Sha256;
use tower::{Layer, Service, ServiceExt};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW: u64 = 1_700_000_000;

fn bench(c: &mut Criterion) {
    let key = b"\x31\xf2\x90\xf6\xbf\x06\x18\xaa\xab\x4f\x08\xd4\x3c\xf2\x08\x2c\xf6\x48\xa2\xda\x2d\xa5\xa4\xb0";
    let config = VerifyConfig {
        secrets: vec![SECRET.into()],
        max_body_bytes: 2 << 20,
        replay: ReplayConfig {
            enabled: false,
            ..ReplayConfig::default()
        },
        ..VerifyConfig::default()
    };
    let verifier = Verifier::new(&config).unwrap();
    let signer = Signer::new(&SignConfig {
        secrets: vec![SECRET.into()],
        ..SignConfig::default()
    })
    .unwrap();
    let layer = VerifyWebhookLayer::new(&config)
        .unwrap()
        .with_clock(ManualClock::at_unix(NOW));
    let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
    });
    let mut service = layer.layer(inner);
    let now = UNIX_EPOCH + Duration::from_secs(NOW);

    let mut group = c.benchmark_group("webhook_verify");
    for (label, size) in [("0B", 0usize), ("1KiB", 1024usize), ("1MiB", 1 << 20)] {
        let body = Bytes::from(
            (0..size)
                .map(|i| u8::try_from(i % 251).unwrap_or(0))
                .collect::<Vec<u8>>(),
        );
        let mut headers = HeaderMap::new();
        signer
            .sign_with("msg_bench", NOW, &body)
            .unwrap()
            .apply_to(&mut headers);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_with_input(BenchmarkId::new("raw_hmac", label), &body, |b, body| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
                mac.update(black_box(body));
                black_box(mac.finalize().into_bytes())
            });
        });
        let keyed = Hmac::<Sha256>::new_from_slice(key).unwrap();
        group.bench_with_input(
            BenchmarkId::new("raw_hmac_prekeyed", label),
            &body,
            |b, body| {
                b.iter(|| {
                    let mut mac = keyed.clone();
                    mac.update(black_box(body));
                    black_box(mac.finalize().into_bytes())
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("verifier", label), &body, |b, body| {
            b.iter(|| {
                black_box(verifier.verify(black_box(&headers), black_box(body), now)).unwrap()
            });
        });
        group.bench_with_input(BenchmarkId::new("layer", label), &body, |b, body| {
            // Building the request is the server's work, not the layer's: it is left untimed.
            let request = || {
                let mut request = Request::post("/hook")
                    .body(Full::new(body.clone()))
                    .unwrap();
                *request.headers_mut() = headers.clone();
                request
            };
            b.iter_batched(
                request,
                |request| {
                    let ready = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
                        .now_or_never()
                        .unwrap()
                        .unwrap();
                    let response = ready.call(request).now_or_never().unwrap().unwrap();
                    assert_eq!(response.status(), 200);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
