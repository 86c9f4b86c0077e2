//! Logs and metrics of the gateway itself.

use std::time::Duration;

use http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rampart_core::RouteName;
use rampart_core::telemetry::{LABEL_ROUTE, LABEL_STATUS, LATENCY_BUCKETS};

/// Requests answered, by route and status.
pub(crate) const REQUESTS_TOTAL: &str = "rampart_gateway_requests_total";
/// Time from receiving a request to sending its response headers, by route and status.
pub(crate) const REQUEST_DURATION: &str = "rampart_gateway_request_duration_seconds";

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Installs the Prometheus recorder behind the `metrics` facade and keeps its histograms
/// drained in the background.
pub(crate) fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;

    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Counts one answered request and its latency.
pub(crate) fn record_request(route: &RouteName, status: StatusCode, elapsed: Duration) {
    let labels = [
        (LABEL_ROUTE, route.as_str().to_owned()),
        (LABEL_STATUS, status.as_str().to_owned()),
    ];
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(elapsed.as_secs_f64());
}
