//! `application/problem+json` responses (RFC 9457).
//!
//! Every refusal a Rampart layer makes (401, 403, 413, 429, 502, 503, 504) answers with the
//! same shape, so a client parses one format whatever layer said no.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document, ready to turn into a response.
///
/// ```
/// use http::StatusCode;
/// use rampart_core::Problem;
///
/// let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
///     .with_detail("quota \"hourly\" is exhausted")
///     .into_response();
/// assert_eq!(response.status(), 429);
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip)]
    status_code: StatusCode,
}

impl Problem {
    /// A problem whose title is the status's reason phrase and whose type is `about:blank`.
    pub fn new(status: StatusCode) -> Self {
        Self {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: None,
            request_id: None,
            status_code: status,
        }
    }

    /// A URI naming the class of problem, for clients that dispatch on it.
    #[must_use]
    pub fn with_type(mut self, uri: impl Into<String>) -> Self {
        self.kind = uri.into();
        self
    }

    /// A short human summary of the class of problem.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// An explanation of this occurrence. Never put a credential or a secret here.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The request id, so a client can quote it to an operator.
    #[must_use]
    pub fn with_request_id(mut self, request_id: Option<&crate::RequestId>) -> Self {
        self.request_id = request_id.map(|id| id.as_str().to_owned());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status_code
    }

    /// The serialized JSON document.
    pub fn to_json(&self) -> Bytes {
        // Serializing strings and integers into a Vec cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The response: status, `Content-Type: application/problem+json` and the document.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.to_json()));
        *response.status_mut() = self.status_code;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_rfc_9457_fields() {
        let response = Problem::new(StatusCode::FORBIDDEN)
            .with_detail("missing role")
            .with_request_id(Some(&crate::RequestId::new("abc")))
            .into_response();

        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Forbidden");
        assert_eq!(json["status"], 403);
        assert_eq!(json["detail"], "missing role");
        assert_eq!(json["request_id"], "abc");
    }
}
