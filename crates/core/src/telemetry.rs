//! Metric and tracing naming conventions shared by every layer.
//!
//! Metrics go through the [`metrics`](https://docs.rs/metrics) facade so the application picks
//! the exporter. Names are `rampart_<crate>_<thing>_<unit>`: `_total` for counters and
//! `_seconds` for latency histograms. Labels come from bounded sets only (the configured route
//! name, an outcome word); never a client address, a key or a path.
//!
//! `tracing` events use dotted field names: `route`, `request.id`, `upstream.addr`,
//! `retry.attempt`. State changes (a breaker opening, Redis going away) are `info` or `warn`;
//! a single refused request is `debug`, so a flood does not become a log flood.

/// The label naming the configured route.
pub const LABEL_ROUTE: &str = "route";
/// The label naming what happened (`ok`, `limited`, `invalid`...).
pub const LABEL_OUTCOME: &str = "outcome";
/// The label carrying an HTTP status code.
pub const LABEL_STATUS: &str = "status";

/// Histogram buckets, in seconds, for latencies from microseconds (a local check) to tens of
/// seconds (an upstream call). Exporters that need explicit buckets should use these for every
/// metric ending in `_seconds`.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
