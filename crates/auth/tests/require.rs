//! Roles and scopes: RequireRoleLayer and RequireScopeLayer behind the auth layer.

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm as Jwt;
use rampart_auth::jwt::{Algorithm, Issuer, JwtConfig, JwtVerifier, VerifyKey};
use rampart_auth::{
    AuthConfig, AuthLayer, Authenticator, KeyHasher, RequireRoleLayer, RequireScopeLayer,
};
use serde_json::json;
use tower::{Layer, ServiceBuilder, ServiceExt};

fn auth() -> AuthLayer {
    let issuer = Issuer::new(None)
        .with_key(VerifyKey::hmac(None, Algorithm::HS256, HS_SECRET).expect("key"));
    let verifier = JwtVerifier::new(&JwtConfig::default(), vec![issuer]).expect("verifier");
    AuthLayer::new(Arc::new(
        Authenticator::new(
            &AuthConfig::default(),
            KeyHasher::sha256(),
            None,
            Some(verifier),
        )
        .expect("auth"),
    ))
}

fn token(roles: &[&str], scope: &str) -> String {
    let mut c = claims("alice");
    c["roles"] = json!(roles);
    c["scope"] = json!(scope);
    hs(Jwt::HS256, None, &c)
}

async fn send<L>(auth: &AuthLayer, require: L, request: Request<Full<Bytes>>) -> Outcome
where
    L: Layer<
        tower::util::ServiceFn<
            fn(
                Request<Full<Bytes>>,
            ) -> std::future::Ready<Result<http::Response<Full<Bytes>>, Infallible>>,
        >,
    >,
    L::Service: tower::Service<
            Request<Full<Bytes>>,
            Response = http::Response<rampart_core::ResponseBody<Full<Bytes>>>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<Request<Full<Bytes>>>>::Future: Send,
{
    fn ok(
        _: Request<Full<Bytes>>,
    ) -> std::future::Ready<Result<http::Response<Full<Bytes>>, Infallible>> {
        std::future::ready(Ok(http::Response::new(Full::new(Bytes::from_static(
            b"{\"ok\":true}",
        )))))
    }
    let handler: fn(Request<Full<Bytes>>) -> _ = ok;
    let service = ServiceBuilder::new()
        .layer(auth.clone())
        .layer(require)
        .service(tower::service_fn(handler));
    read(service.oneshot(request).await.expect("infallible")).await
}

#[tokio::test]
async fn roles_any_of_and_all_of() {
    let auth = auth();
    let any = RequireRoleLayer::any_of(["admin", "ops"]).expect("layer");
    let all = RequireRoleLayer::all_of(["admin", "ops"]).expect("layer");

    assert_eq!(
        send(&auth, any.clone(), bearer(&token(&["ops"], "")))
            .await
            .status,
        200
    );
    assert_eq!(
        send(&auth, all.clone(), bearer(&token(&["admin", "ops"], "")))
            .await
            .status,
        200
    );

    let outcome = send(&auth, all, bearer(&token(&["ops"], ""))).await;
    assert_eq!(outcome.status, 403);
    assert_eq!(outcome.body["status"], 403);
    assert_eq!(outcome.challenge, None);

    let outcome = send(&auth, any, bearer(&token(&["viewer"], ""))).await;
    assert_eq!(outcome.status, 403);
}

#[tokio::test]
async fn a_missing_scope_gets_an_insufficient_scope_challenge() {
    let auth = auth();
    let layer = RequireScopeLayer::all_of(["orders:write", "orders:read"]).expect("layer");

    assert_eq!(
        send(
            &auth,
            layer.clone(),
            bearer(&token(&[], "orders:read orders:write"))
        )
        .await
        .status,
        200
    );
    let outcome = send(&auth, layer, bearer(&token(&[], "orders:read"))).await;
    assert_eq!(outcome.status, 403);
    assert_eq!(
        outcome.challenge.as_deref(),
        Some(
            "Bearer realm=\"rampart\", error=\"insufficient_scope\", scope=\"orders:read orders:write\""
        )
    );
}

#[tokio::test]
async fn without_an_identity_the_answer_is_401() {
    // An anonymous route with a role requirement: no credential means 401, not 403.
    let auth = auth().allow_anonymous(true);
    let layer = RequireRoleLayer::any_of(["admin"]).expect("layer");
    let request = Request::get("/").body(Full::default()).expect("request");
    let outcome = send(&auth, layer, request).await;
    assert_eq!(outcome.status, 401);
    assert_eq!(
        outcome.challenge.as_deref(),
        Some("Bearer realm=\"rampart\"")
    );
}

#[test]
fn empty_or_unquotable_requirements_are_refused() {
    assert!(RequireRoleLayer::any_of(Vec::<String>::new()).is_err());
    assert!(RequireScopeLayer::all_of(["has space"]).is_err());
    assert!(RequireScopeLayer::all_of(["quo\"te"]).is_err());
    let layer = RequireRoleLayer::any_of(["admin"]).expect("layer");
    assert!(layer.clone().with_realm("bad\"realm").is_err());
    assert!(layer.with_realm("orders").is_ok());
}
