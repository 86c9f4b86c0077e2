//! In-memory limiter against `governor`'s keyed limiter, per decision, on two threads.
//!
//! Both limiters get the same quota (a million per second, so almost every decision admits),
//! the same `String` keys, and the same two threads hammering them. One key shows contention
//! on a single entry; 100k keys show the cost of a large map.
#![allow(missing_docs, clippy::unwrap_used)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_ratelimit::{ClockSource, MemoryConfig, MemoryStore, RateLimitConfig, RateLimiter};

const THREADS: u64 = 2;

fn keys(count: usize) -> Arc<Vec<String>> {
    Arc::new(
        (0..count)
            .map(|i| format!("ip:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
            .collect(),
    )
}

/// Runs `iters` decisions split over two threads and returns the wall time.
fn on_two_threads(
    iters: u64,
    keys: &Arc<Vec<String>>,
    decide: impl Fn(&String) + Send + Sync + Clone + 'static,
) -> Duration {
    let per_thread = iters / THREADS + 1;
    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let keys = keys.clone();
            let decide = decide.clone();
            std::thread::spawn(move || {
                let offset = usize::try_from(t).unwrap() * keys.len() / 2;
                for i in 0..per_thread {
                    let key = &keys[(offset + usize::try_from(i).unwrap()) % keys.len()];
                    decide(key);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    for count in [1usize, 100_000] {
        let keys = keys(count);
        let mut group = c.benchmark_group(format!("memory_{count}_keys_2_threads"));
        group.throughput(Throughput::Elements(1));

        // The default clock (tokio's, which tests can pause) and the time-stamp counter, which
        // is what governor reads through quanta.
        for (name, clock) in [
            ("rampart", ClockSource::Tokio),
            ("rampart_tsc", ClockSource::Tsc),
        ] {
            let store = MemoryStore::new(&MemoryConfig {
                clock,
                ..MemoryConfig::default()
            })
            .unwrap();
            let config = RateLimitConfig::with_quotas(["1000000/s"]);
            let ours = Arc::new(RateLimiter::new(&config, store).unwrap());
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let ours = ours.clone();
                    on_two_threads(iters, &keys, move |key: &String| {
                        std::hint::black_box(ours.check_now(key, 1));
                    })
                });
            });
        }

        let quota = governor::Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
        let theirs = Arc::new(governor::RateLimiter::<String, _, _>::keyed(quota));
        group.bench_function("governor", |b| {
            b.iter_custom(|iters| {
                let theirs = theirs.clone();
                on_two_threads(iters, &keys, move |key: &String| {
                    std::hint::black_box(theirs.check_key(key).is_ok());
                })
            });
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench
}
criterion_main!(benches);
