//! From an [`Outcome`] to headers, refusals, metrics and log events.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;
use rampart_core::telemetry::{LABEL_OUTCOME, LABEL_ROUTE};
use rampart_core::{Problem, RequestId};

use crate::config::HeaderStyle;
use crate::{Decision, Outcome, RateLimiter};

/// What the service does with the request.
#[derive(Debug)]
pub(crate) enum Action {
    /// Call the inner service and add these headers to its response.
    Pass(HeaderMap),
    /// Answer this instead.
    Refuse(Response<Full<Bytes>>),
}

const METRIC_DECISIONS: &str = "rampart_ratelimit_decisions_total";

/// Turns the limiter's outcome into an action, counting and logging it on the way.
pub(crate) fn conclude(
    limiter: &RateLimiter,
    outcome: Outcome,
    route: &Arc<str>,
    request_id: Option<&RequestId>,
) -> Action {
    match outcome {
        Outcome::Decided(decision) => decided(limiter, &decision, route, request_id),
        Outcome::FailedOpen => {
            count_all(limiter, route, "error");
            Action::Pass(HeaderMap::new())
        }
        Outcome::FailedClosed { retry_after } => {
            count_all(limiter, route, "error");
            tracing::debug!(
                route = %route,
                request.id = request_id.map(RequestId::as_str),
                "rate limit backend unavailable, request refused"
            );
            let mut response = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_detail("the rate limiter cannot decide at the moment; retry shortly")
                .with_request_id(request_id)
                .into_response();
            response.headers_mut().insert(
                RETRY_AFTER,
                HeaderValue::from(ceil_secs(retry_after).max(1)),
            );
            Action::Refuse(response)
        }
    }
}

fn decided(
    limiter: &RateLimiter,
    decision: &Decision,
    route: &Arc<str>,
    request_id: Option<&RequestId>,
) -> Action {
    let quotas = limiter.quotas();
    for status in decision.quotas() {
        let quota = &quotas[status.index()];
        let outcome = if status.allowed() {
            "allowed"
        } else {
            "limited"
        };
        metrics::counter!(
            METRIC_DECISIONS,
            LABEL_ROUTE => route.clone(),
            "quota" => quota.name_arc().clone(),
            LABEL_OUTCOME => outcome
        )
        .increment(1);
        if !status.allowed() && status.is_shadow() {
            tracing::debug!(
                route = %route,
                quota = quota.name(),
                request.id = request_id.map(RequestId::as_str),
                "shadow quota would have limited the request"
            );
        }
    }

    let headers = headers(limiter, decision);
    if decision.is_allowed() {
        return Action::Pass(headers);
    }

    // The quota that refused with the longest wait names the problem.
    let refusing = decision
        .quotas()
        .iter()
        .filter(|s| !s.allowed() && !s.is_shadow())
        .max_by_key(|s| s.retry_after().unwrap_or(Duration::MAX));
    let name = refusing.map_or("", |s| quotas[s.index()].name());
    let retry_after = decision.retry_after();
    tracing::debug!(
        route = %route,
        quota = name,
        request.id = request_id.map(RequestId::as_str),
        retry_after.secs = retry_after.map(ceil_secs),
        "request rate limited"
    );

    let detail = match retry_after {
        Some(wait) => format!(
            "quota {name:?} is exhausted; retry in {} s",
            ceil_secs(wait)
        ),
        None => format!("the request costs more than quota {name:?} ever admits at once"),
    };
    let mut response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
        .with_detail(detail)
        .with_request_id(request_id)
        .into_response();
    response.headers_mut().extend(headers);
    if let Some(wait) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(ceil_secs(wait)));
    }
    Action::Refuse(response)
}

fn count_all(limiter: &RateLimiter, route: &Arc<str>, outcome: &'static str) {
    for quota in limiter.quotas() {
        metrics::counter!(
            METRIC_DECISIONS,
            LABEL_ROUTE => route.clone(),
            "quota" => quota.name_arc().clone(),
            LABEL_OUTCOME => outcome
        )
        .increment(1);
    }
}

/// The quota headers for a decision, in the configured style; shadow quotas are not shown.
pub(crate) fn headers(limiter: &RateLimiter, decision: &Decision) -> HeaderMap {
    let mut map = HeaderMap::new();
    let quotas = limiter.quotas();
    let shown = decision.quotas().iter().filter(|s| !s.is_shadow());

    match limiter.header_style() {
        HeaderStyle::None => {}
        HeaderStyle::Draft => {
            let (mut policy, mut state) = (String::new(), String::new());
            for status in shown {
                let quota = &quotas[status.index()];
                let sep = if policy.is_empty() { "" } else { ", " };
                // Quota names are checked to hold no `"` or `\`, so they need no escaping.
                let _ = write!(
                    policy,
                    "{sep}\"{}\";q={};w={}",
                    quota.name(),
                    quota.limit(),
                    ceil_secs(quota.period()).max(1)
                );
                let _ = write!(
                    state,
                    "{sep}\"{}\";r={};t={}",
                    quota.name(),
                    status.remaining(),
                    ceil_secs(status.reset())
                );
            }
            insert(&mut map, "ratelimit-policy", &policy);
            insert(&mut map, "ratelimit", &state);
        }
        HeaderStyle::Legacy => {
            // The most constrained quota: fewest left, then the longest until full.
            if let Some(status) =
                shown.min_by_key(|s| (s.remaining(), std::cmp::Reverse(s.reset())))
            {
                let quota = &quotas[status.index()];
                map.insert("x-ratelimit-limit", HeaderValue::from(quota.limit()));
                map.insert(
                    "x-ratelimit-remaining",
                    HeaderValue::from(status.remaining()),
                );
                map.insert(
                    "x-ratelimit-reset",
                    HeaderValue::from(ceil_secs(status.reset())),
                );
            }
        }
    }
    map
}

fn insert(map: &mut HeaderMap, name: &'static str, value: &str) {
    if value.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(value) {
        map.insert(HeaderName::from_static(name), value);
    }
}

/// Whole seconds, rounded up: a client that waits this long is never early.
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
