//! The header names each scheme reads and writes.

use http::{HeaderMap, HeaderName, HeaderValue};

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

/// How often the request carried one of the scheme's headers.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) enum Sent<'h> {
    #[default]
    Absent,
    Once(&'h HeaderValue),
    Repeated,
}

/// The scheme's headers as the request carried them.
#[derive(Debug, Default)]
pub(crate) struct Found<'h> {
    pub(crate) id: Sent<'h>,
    pub(crate) timestamp: Sent<'h>,
    pub(crate) signature: Sent<'h>,
}

impl Scheme {
    /// Finds the scheme's headers in one pass over the request's headers.
    ///
    /// The names are custom, so each hashed lookup would hash the whole name; comparing
    /// names while walking a request's dozen headers is cheaper than three such lookups, and
    /// it sees a repeated header on the way.
    pub(crate) fn find<'h>(&self, headers: &'h HeaderMap) -> Found<'h> {
        let mut found = Found::default();
        for (name, value) in headers {
            let slot = if *name == self.signature {
                &mut found.signature
            } else if self.id.as_ref() == Some(name) {
                &mut found.id
            } else if self.timestamp.as_ref() == Some(name) {
                &mut found.timestamp
            } else {
                continue;
            };
            *slot = match slot {
                Sent::Absent => Sent::Once(value),
                Sent::Once(_) | Sent::Repeated => Sent::Repeated,
            };
        }
        found
    }
}
