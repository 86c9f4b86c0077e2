//! The authenticated caller.

use std::collections::BTreeSet;
use std::time::SystemTime;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An API key issued by this deployment.
    ApiKey,
    /// A signed JWT bearer token.
    Jwt,
}

impl CredentialKind {
    /// A short lowercase name, fit for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Jwt => "jwt",
        }
    }
}

/// Who is calling, as established by the auth layer.
///
/// The auth layer inserts it into the request extensions; the rate limiter keys quotas by
/// [`Identity::subject`] or [`Identity::credential_id`], the cache partitions by it, and dead
/// letters record it. A request without an `Identity` is anonymous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The principal: an API key's owner or a token's `sub`.
    pub subject: String,
    /// Roles granted to the caller.
    pub roles: BTreeSet<String>,
    /// OAuth-style scopes granted to the caller.
    pub scopes: BTreeSet<String>,
    /// How the caller authenticated.
    pub kind: CredentialKind,
    /// The API key id or the token's `jti`, when there is one: the handle to revoke.
    pub credential_id: Option<String>,
    /// When the credential stops being valid, if it expires.
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// An identity with no roles, scopes, id or expiry.
    pub fn new(subject: impl Into<String>, kind: CredentialKind) -> Self {
        Self {
            subject: subject.into(),
            roles: BTreeSet::new(),
            scopes: BTreeSet::new(),
            kind,
            credential_id: None,
            expires_at: None,
        }
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(role)
    }

    /// Whether the caller holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.contains(scope)
    }
}
