//! The gateway's own endpoints: liveness, readiness and Prometheus metrics.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use metrics_exporter_prometheus::PrometheusHandle;
use rampart_core::{Problem, RequestId};

use crate::config::AdminConfig;
use crate::stack::Shared;
use crate::{GatewayBody, problem_response};

/// How long `/readyz` waits for Redis to answer.
const READY_DEADLINE: Duration = Duration::from_millis(500);

/// Answers the admin paths; `None` means the path is not an admin path.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    paths: AdminConfig,
    metrics: PrometheusHandle,
}

impl Admin {
    pub(crate) fn new(paths: AdminConfig, metrics: PrometheusHandle) -> Self {
        Self { paths, metrics }
    }

    pub(crate) fn is_admin_path(&self, path: &str) -> bool {
        path == self.paths.health_path
            || path == self.paths.ready_path
            || path == self.paths.metrics_path
    }

    pub(crate) async fn respond(
        &self,
        method: &Method,
        path: &str,
        shared: &Shared,
        request_id: &RequestId,
    ) -> Response<GatewayBody> {
        if method != Method::GET && method != Method::HEAD {
            let problem = Problem::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_detail("admin endpoints answer GET and HEAD")
                .with_request_id(Some(request_id));
            let mut response = problem_response(problem);
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }

        if path == self.paths.health_path {
            return text(StatusCode::OK, "text/plain", "ok\n".into());
        }
        if path == self.paths.ready_path {
            return ready(shared, request_id).await;
        }
        text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            self.metrics.render().into(),
        )
    }
}

async fn ready(shared: &Shared, request_id: &RequestId) -> Response<GatewayBody> {
    if let Some(redis) = &shared.redis
        && let Err(err) = redis.ping(READY_DEADLINE).await
    {
        tracing::warn!(error = %err, "not ready: redis unreachable");
        let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_detail("redis is unreachable")
            .with_request_id(Some(request_id));
        return problem_response(problem);
    }
    text(StatusCode::OK, "text/plain", "ready\n".into())
}

fn text(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<GatewayBody> {
    let mut response = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
