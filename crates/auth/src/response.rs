//! The refusals this crate answers with.

use http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{Response, StatusCode};
use rampart_core::{Problem, RequestId, ResponseBody};

use crate::authenticator::Outcome;

/// 401 (or 503 when the key store is down) with a challenge that never tells which part of
/// the credential was wrong.
pub(crate) fn unauthenticated<B>(
    realm: &str,
    outcome: Outcome,
    request_id: Option<&RequestId>,
) -> Response<ResponseBody<B>> {
    if outcome == Outcome::Unavailable {
        let mut response = ResponseBody::problem(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_detail("credentials cannot be checked right now")
                .with_request_id(request_id),
        );
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let (detail, challenge) = if outcome == Outcome::Missing {
        (
            "credentials are required",
            format!("Bearer realm=\"{realm}\""),
        )
    } else {
        (
            "the credentials are invalid or expired",
            format!(
                "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"invalid or expired credentials\""
            ),
        )
    };
    let mut response = ResponseBody::problem(
        Problem::new(StatusCode::UNAUTHORIZED)
            .with_detail(detail)
            .with_request_id(request_id),
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

/// 403 for a missing role, or for a missing scope with an `insufficient_scope` challenge.
pub(crate) fn forbidden<B>(
    realm: &str,
    scopes: Option<&str>,
    request_id: Option<&RequestId>,
) -> Response<ResponseBody<B>> {
    let detail = if scopes.is_some() {
        "the credentials lack a required scope"
    } else {
        "the credentials lack a required role"
    };
    let mut response = ResponseBody::problem(
        Problem::new(StatusCode::FORBIDDEN)
            .with_detail(detail)
            .with_request_id(request_id),
    );
    if let Some(scopes) = scopes {
        let challenge =
            format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scopes}\"");
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}
