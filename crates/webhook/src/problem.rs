//! How a refusal reads: an `application/problem+json` document per class of failure.

use http::StatusCode;
use rampart_core::Problem;

use crate::error::WebhookError;

/// The problem document for a refusal: the class of failure, never a signature.
pub(crate) fn problem_for(err: &WebhookError) -> Problem {
    let (status, kind, title, detail) = match err {
        WebhookError::MissingHeader(_) => (
            StatusCode::UNAUTHORIZED,
            "missing",
            "Webhook header missing",
            err.to_string(),
        ),
        WebhookError::MalformedHeader { .. } => (
            StatusCode::UNAUTHORIZED,
            "malformed",
            "Webhook header malformed",
            err.to_string(),
        ),
        WebhookError::Expired { .. } => (
            StatusCode::UNAUTHORIZED,
            "expired",
            "Webhook timestamp outside tolerance",
            err.to_string(),
        ),
        WebhookError::Mismatch => (
            StatusCode::UNAUTHORIZED,
            "mismatch",
            "Webhook signature mismatch",
            "no signature matches a configured secret".to_owned(),
        ),
        WebhookError::Replay => (
            StatusCode::UNAUTHORIZED,
            "replay",
            "Webhook replayed",
            "this webhook was already received".to_owned(),
        ),
        WebhookError::TooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Webhook body too large",
            err.to_string(),
        ),
        WebhookError::BodyTimeout { .. } => (
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Webhook body too slow",
            err.to_string(),
        ),
        WebhookError::Body(_) => (
            StatusCode::BAD_REQUEST,
            "body-error",
            "Unreadable request body",
            "the request body could not be read".to_owned(),
        ),
        WebhookError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "store-error",
            "Replay check unavailable",
            "the replay store did not answer; retry later".to_owned(),
        ),
        WebhookError::Config { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "config",
            "Webhook configuration error",
            "the webhook layer is misconfigured".to_owned(),
        ),
    };
    Problem::new(status)
        .with_type(format!("urn:rampart:webhook:{kind}"))
        .with_title(title)
        .with_detail(detail)
}
