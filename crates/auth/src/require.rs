//! Authorization by role or scope, after [`crate::AuthLayer`] has set the `Identity`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use rampart_core::{Identity, RequestId, ResponseBody, RouteName};
use tower_layer::Layer;
use tower_service::Service;

use crate::AuthError;
use crate::authenticator::Outcome;
use crate::future::RequireFuture;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Any,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    Role,
    Scope,
}

#[derive(Debug, Clone)]
struct Requirement {
    grant: Grant,
    mode: Match,
    names: BTreeSet<String>,
    /// The scope list for the `insufficient_scope` challenge.
    challenge: String,
    realm: String,
}

impl Requirement {
    fn new(
        grant: Grant,
        mode: Match,
        names: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, AuthError> {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        let field = match grant {
            Grant::Role => "require_roles",
            Grant::Scope => "require_scopes",
        };
        if names.is_empty() {
            return Err(AuthError::config(field, "list at least one name"));
        }
        if names.iter().any(|n| {
            n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(AuthError::config(
                field,
                "names are printable ASCII without spaces or quotes",
            ));
        }
        let challenge = names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Self {
            grant,
            mode,
            names,
            challenge,
            realm: "rampart".to_owned(),
        })
    }

    fn allows(&self, identity: &Identity) -> bool {
        let held = match self.grant {
            Grant::Role => &identity.roles,
            Grant::Scope => &identity.scopes,
        };
        match self.mode {
            Match::Any => self.names.iter().any(|n| held.contains(n)),
            Match::All => self.names.iter().all(|n| held.contains(n)),
        }
    }
}

macro_rules! requirement_layer {
    ($(#[$doc:meta])* $name:ident, $grant:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name {
            requirement: Arc<Requirement>,
        }

        impl $name {
            #[doc = concat!("Passes requests whose identity holds at least one of `names` as ", $what, ".")]
            pub fn any_of(names: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, AuthError> {
                Ok(Self {
                    requirement: Arc::new(Requirement::new($grant, Match::Any, names)?),
                })
            }

            #[doc = concat!("Passes requests whose identity holds every one of `names` as ", $what, ".")]
            pub fn all_of(names: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, AuthError> {
                Ok(Self {
                    requirement: Arc::new(Requirement::new($grant, Match::All, names)?),
                })
            }

            /// The `realm` of the challenges this layer sends (default `rampart`): ASCII
            /// without quotes or backslashes.
            pub fn with_realm(self, realm: &str) -> Result<Self, AuthError> {
                if realm.contains(['"', '\\']) || !realm.is_ascii() {
                    return Err(AuthError::config("realm", "must be ASCII without quotes or backslashes"));
                }
                let mut requirement = (*self.requirement).clone();
                requirement.realm = realm.to_owned();
                Ok(Self {
                    requirement: Arc::new(requirement),
                })
            }
        }

        impl<S> Layer<S> for $name {
            type Service = Require<S>;

            fn layer(&self, inner: S) -> Require<S> {
                Require {
                    inner,
                    requirement: self.requirement.clone(),
                }
            }
        }
    };
}

requirement_layer!(
    /// Refuses, with 403, requests whose identity lacks the required roles (401 without an
    /// identity). Place it inside [`crate::AuthLayer`].
    RequireRoleLayer,
    Grant::Role,
    "roles"
);

requirement_layer!(
    /// Refuses, with 403 and `WWW-Authenticate: Bearer error="insufficient_scope"`, requests
    /// whose identity lacks the required scopes (401 without an identity). Place it inside
    /// [`crate::AuthLayer`].
    RequireScopeLayer,
    Grant::Scope,
    "scopes"
);

/// The service of [`RequireRoleLayer`] and [`RequireScopeLayer`]. It decides in `call` and
/// answers refusals itself; readiness is the inner service's.
#[derive(Debug, Clone)]
pub struct Require<S> {
    inner: S,
    requirement: Arc<Requirement>,
}

impl<S> Require<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Require<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RequireFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let requirement = &self.requirement;
        let request_id = request.extensions().get::<RequestId>();
        let log = |outcome: &'static str, method: &'static str| {
            metrics::counter!("rampart_auth_requests_total", "method" => method, "outcome" => outcome)
                .increment(1);
            tracing::debug!(
                request.id = request_id.map(RequestId::as_str),
                route = %RouteName::label_of(&request),
                auth.outcome = outcome,
                auth.required = %requirement.challenge,
                "request not authorized"
            );
        };
        match request.extensions().get::<Identity>() {
            None => {
                log(Outcome::Missing.as_str(), "none");
                RequireFuture::refused(crate::response::unauthenticated(
                    &requirement.realm,
                    Outcome::Missing,
                    request_id,
                ))
            }
            Some(identity) if !requirement.allows(identity) => {
                log("forbidden", identity.kind.as_str());
                let scopes =
                    (requirement.grant == Grant::Scope).then_some(requirement.challenge.as_str());
                RequireFuture::refused(crate::response::forbidden(
                    &requirement.realm,
                    scopes,
                    request_id,
                ))
            }
            Some(_) => RequireFuture::called(self.inner.call(request)),
        }
    }
}
