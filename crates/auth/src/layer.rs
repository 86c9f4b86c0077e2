//! The authentication layer.

use std::sync::Arc;

use tower_layer::Layer;

use crate::authenticator::Authenticator;
use crate::service::Auth;

/// Authenticates every request and inserts its [`rampart_core::Identity`].
///
/// Requests with a bad credential, and (unless [`Self::allow_anonymous`]) requests with none,
/// are answered with 401 here and never reach the inner service.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    allow_anonymous: bool,
}

impl AuthLayer {
    /// A layer sharing `authenticator` (clone the `Arc` to use one on several routes).
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self {
            authenticator,
            allow_anonymous: false,
        }
    }

    /// Lets requests without any credential through, with no `Identity`. A credential that
    /// is present but invalid is still refused.
    #[must_use]
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, self.authenticator.clone(), self.allow_anonymous)
    }
}
