//! Embedding the layer in an axum application served on loopback, as the README shows.
// A test that meets something unexpected should fail loudly.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::routing::post;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rampart_core::PeerAddr;
use rampart_ratelimit::{MemoryConfig, MemoryStore, RateLimitConfig, RateLimitLayer, RateLimiter};

async fn execute() -> &'static str {
    "done"
}

#[tokio::test]
async fn an_axum_router_answers_429_past_the_quota() {
    let config: RateLimitConfig = toml::from_str(
        r#"
        quotas = ["2/minute", { name = "trial", rate = "1/minute", shadow = true }]
        key = ["subject"]
        "#,
    )
    .unwrap();
    let limiter =
        RateLimiter::new(&config, MemoryStore::new(&MemoryConfig::default()).unwrap()).unwrap();

    let app = Router::new()
        .route("/api/agents/execute", post(execute))
        .layer(RateLimitLayer::new(limiter))
        // The limiter reads the peer address from `PeerAddr`; axum keeps it in `ConnectInfo`.
        .layer(axum::middleware::map_request(
            |ConnectInfo(peer): ConnectInfo<SocketAddr>, mut request: Request| async move {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            },
        ));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let post = || {
        http::Request::post(format!("http://{addr}/api/agents/execute"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };

    // Two pass, with the draft headers naming only the enforced quota.
    for left in [1, 0] {
        let response = client.request(post()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"2/minute\";q=2;w=60"
        );
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            state.starts_with(&format!("\"2/minute\";r={left};")),
            "{state}"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "done");
    }

    // The third is refused by the limiter, not by the handler.
    let refused = client.request(post()).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert!(refused.headers().contains_key("retry-after"));
}
