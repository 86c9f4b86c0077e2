//! Redis limiter decisions/s at 64 concurrent callers, against `redis-benchmark` running an
//! `EVAL` of the same script with the same key and argument shape on the same private server.
//!
//! The reference figure is printed first, then criterion measures the limiter, then a fixed
//! run of the limiter prints its decisions/s and the ratio.
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rampart_core::redis::{RedisConfig, RedisPool};
use rampart_ratelimit::{
    FailurePolicy, Outcome, RateLimitConfig, RateLimiter, RedisBackend, RedisBackendConfig,
};
use rampart_test_support::RedisServer;

const CALLERS: usize = 64;
const KEYS: u64 = 100_000;
/// The script the backend sends.
const SCRIPT: &str = include_str!("../src/backend/gcra.lua");

fn limiter(server: &RedisServer, runtime: &tokio::runtime::Runtime) -> RateLimiter {
    let _guard = runtime.enter();
    let pool = RedisPool::new(&RedisConfig {
        max_size: CALLERS,
        ..RedisConfig::standalone(server.url())
    })
    .unwrap();
    let backend = RedisBackend::new(
        pool,
        RedisBackendConfig {
            deadline: Duration::from_secs(5),
            // A failure must show as a failure, not as a fast local decision.
            on_failure: FailurePolicy::Closed,
            ..RedisBackendConfig::default()
        },
    )
    .unwrap();
    RateLimiter::new(&RateLimitConfig::with_quotas(["1000000/s"]), backend).unwrap()
}

/// `total` decisions over 64 tasks, on random keys among 100k; returns the wall time.
fn run(runtime: &tokio::runtime::Runtime, limiter: &RateLimiter, total: u64) -> Duration {
    let per_caller = total / CALLERS as u64 + 1;
    runtime.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..CALLERS as u64)
            .map(|caller| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    for i in 0..per_caller {
                        let key = format!("ip:{}", (caller * 7919 + i * 104_729) % KEYS);
                        let outcome = limiter.check(&key, 1).await;
                        assert!(
                            matches!(outcome, Outcome::Decided(_)),
                            "redis failed: {outcome:?}"
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        start.elapsed()
    })
}

/// `redis-benchmark` sending the same EVALSHA (one key, four arguments) from 64 clients.
fn reference(server: &RedisServer) -> f64 {
    let sha = server.command(&["SCRIPT", "LOAD", SCRIPT]);
    let sha = sha.lines().nth(1).unwrap().to_owned();
    let output = Command::new("redis-benchmark")
        .args([
            "-p",
            &server.port().to_string(),
            "-c",
            "64",
            "-n",
            "200000",
            "-r",
            "100000",
        ])
        .args([
            "--csv",
            "EVALSHA",
            &sha,
            "1",
            "rampart:rl:{ip:__rand_int__}:1000000/second",
        ])
        .args(["1", "1", "1000000", "1"])
        .output()
        .expect("redis-benchmark must be installed next to redis-server");
    let text = String::from_utf8_lossy(&output.stdout);
    // CSV: a header line, then "name","rps",...
    let line = text.lines().last().unwrap_or_default();
    line.split(',')
        .nth(1)
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {text}"))
}

fn bench(c: &mut Criterion) {
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let limiter = limiter(&server, &runtime);

    let reference_rps = reference(&server);
    println!("redis-benchmark EVALSHA, 64 clients: {reference_rps:.0} decisions/s");

    let mut group = c.benchmark_group("redis_64_callers");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.bench_function("rampart", |b| {
        b.iter_custom(|iters| run(&runtime, &limiter, iters.max(CALLERS as u64)));
    });
    group.finish();

    let total = 200_000;
    let elapsed = run(&runtime, &limiter, total);
    #[allow(clippy::cast_precision_loss)]
    let ours = total as f64 / elapsed.as_secs_f64();
    println!(
        "rampart redis limiter, 64 callers: {ours:.0} decisions/s = {:.0}% of redis-benchmark",
        100.0 * ours / reference_rps
    );
    drop(server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
