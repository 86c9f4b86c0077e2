//! The header names each scheme reads and writes.

use http::HeaderName;

use crate::config::SchemeKind;
use crate::error::WebhookError;

/// GitHub's signature header.
pub const GITHUB_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature-256");
/// GitHub's delivery id header, the replay key of the `github` scheme.
pub const GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");

/// Longest webhook id accepted; ids become store keys, so they are kept short.
pub(crate) const MAX_ID_LEN: usize = 256;

/// A scheme with its header names resolved.
#[derive(Debug, Clone)]
pub(crate) struct Scheme {
    pub(crate) kind: SchemeKind,
    /// The header carrying the signature(s).
    pub(crate) signature: HeaderName,
    /// The header carrying the webhook id, for schemes that have one.
    pub(crate) id: Option<HeaderName>,
    /// The header carrying the timestamp, for `standard`.
    pub(crate) timestamp: Option<HeaderName>,
}

impl Scheme {
    pub(crate) fn new(
        kind: SchemeKind,
        header_prefix: &str,
        signature_header: &str,
    ) -> Result<Self, WebhookError> {
        match kind {
            SchemeKind::Standard => {
                let prefix = header_prefix.trim().to_ascii_lowercase();
                let name = |suffix: &str| {
                    HeaderName::try_from(format!("{prefix}-{suffix}")).map_err(|_| {
                        WebhookError::config("header_prefix", "not a valid header name prefix")
                    })
                };
                if prefix.is_empty() {
                    return Err(WebhookError::config("header_prefix", "must not be empty"));
                }
                Ok(Self {
                    kind,
                    signature: name("signature")?,
                    id: Some(name("id")?),
                    timestamp: Some(name("timestamp")?),
                })
            }
            SchemeKind::Timestamped => {
                let signature = HeaderName::try_from(signature_header.trim()).map_err(|_| {
                    WebhookError::config("signature_header", "not a valid header name")
                })?;
                Ok(Self {
                    kind,
                    signature,
                    id: None,
                    timestamp: None,
                })
            }
            SchemeKind::Github => Ok(Self {
                kind,
                signature: GITHUB_SIGNATURE,
                id: Some(GITHUB_DELIVERY),
                timestamp: None,
            }),
        }
    }
}
