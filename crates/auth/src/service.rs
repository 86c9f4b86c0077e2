//! The authentication service.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{Request, Response};
use rampart_core::{RequestId, ResponseBody, RouteName};
use tower_service::Service;

use crate::authenticator::{Authenticator, Method, Outcome};
use crate::future::ResponseFuture;

/// Authenticates each request before the inner service sees it; see [`crate::AuthLayer`].
///
/// It pushes back in `poll_ready` only as far as the inner service does, and refuses in
/// `call` by answering 401 itself (503 if the API key store cannot answer).
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    allow_anonymous: bool,
}

impl<S> Auth<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, authenticator: Arc<Authenticator>, allow_anonymous: bool) -> Self {
        Self {
            inner,
            authenticator,
            allow_anonymous,
        }
    }

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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The ready service is the one called once authentication is done; keep a clone here.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let authenticator = self.authenticator.clone();
        let allow_anonymous = self.allow_anonymous;

        let check = async move {
            let result = authenticator.authenticate(request.headers()).await;
            match result {
                Ok(Some(identity)) => {
                    let method = match identity.kind {
                        rampart_core::CredentialKind::ApiKey => Method::ApiKey,
                        rampart_core::CredentialKind::Jwt => Method::Jwt,
                    };
                    count(method, "ok");
                    request.extensions_mut().insert(identity);
                    Ok(request)
                }
                Ok(None) if allow_anonymous => {
                    count(Method::None, "ok");
                    Ok(request)
                }
                Ok(None) => Err(refuse(
                    &authenticator,
                    &request,
                    Method::None,
                    Outcome::Missing,
                    "no credential",
                )),
                Err(rejection) => Err(refuse(
                    &authenticator,
                    &request,
                    rejection.method,
                    rejection.outcome,
                    rejection.reason,
                )),
            }
        }
        .boxed();
        ResponseFuture::new(check, inner)
    }
}

fn count(method: Method, outcome: &'static str) {
    metrics::counter!("rampart_auth_requests_total", "method" => method.as_str(), "outcome" => outcome)
        .increment(1);
}

fn refuse<B, ResBody>(
    authenticator: &Authenticator,
    request: &Request<B>,
    method: Method,
    outcome: Outcome,
    reason: &'static str,
) -> Response<ResponseBody<ResBody>> {
    count(method, outcome.as_str());
    let request_id = request.extensions().get::<RequestId>();
    tracing::debug!(
        request.id = request_id.map(RequestId::as_str),
        route = %RouteName::label_of(request),
        auth.method = method.as_str(),
        auth.outcome = outcome.as_str(),
        auth.reason = reason,
        "request not authenticated"
    );
    crate::response::unauthenticated(&authenticator.realm, outcome, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryKeyStore;
    use crate::{AuthConfig, KeyHasher};
    use tower_test::mock;

    fn authenticator(store: Arc<MemoryKeyStore>) -> Arc<Authenticator> {
        let config = AuthConfig {
            api_keys: Some(crate::ApiKeyConfig::default()),
            ..AuthConfig::default()
        };
        Arc::new(Authenticator::new(&config, KeyHasher::sha256(), Some(store), None).expect("auth"))
    }

    #[tokio::test]
    async fn readiness_is_the_inner_services_and_refusals_never_reach_it() {
        let hasher = KeyHasher::sha256();
        let new = hasher.generate("rk", "alice").expect("key");
        let store = Arc::new(MemoryKeyStore::from_records([new.record.clone()]));
        let (inner, mut handle) = mock::pair::<Request<()>, Response<()>>();
        let mut service =
            tower_test::mock::Spawn::new(Auth::new(inner, authenticator(store), false));

        // The inner service is not ready: neither is the layer.
        handle.allow(0);
        assert!(service.poll_ready().is_pending());

        // A refused request is answered without reaching the inner service.
        handle.allow(1);
        assert!(service.poll_ready().is_ready());
        let refused = service.call(Request::new(())).await.expect("a response");
        assert_eq!(refused.status(), 401);

        // An accepted one reaches it with the identity attached.
        assert!(service.poll_ready().is_ready());
        let request = Request::builder()
            .header("x-api-key", &new.key)
            .body(())
            .expect("request");
        let call = tokio::spawn(service.call(request));
        let (seen, reply) = handle.next_request().await.expect("forwarded");
        assert_eq!(
            seen.extensions()
                .get::<rampart_core::Identity>()
                .map(|i| i.subject.as_str()),
            Some("alice")
        );
        reply.send_response(Response::new(()));
        assert_eq!(call.await.expect("join").expect("response").status(), 200);
    }
}
