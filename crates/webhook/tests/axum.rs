//! The layer on an axum router, served over a real socket, as the README shows it.

mod common;

use std::time::SystemTime;

use axum::routing::post;
use axum::{Extension, Router};
use bytes::Bytes;
use common::post as send;
use http::{HeaderMap, StatusCode};
use rampart_webhook::{SignConfig, Signer, VerifiedWebhook, VerifyConfig, VerifyWebhookLayer};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn on_webhook(Extension(hook): Extension<VerifiedWebhook>, body: Bytes) -> String {
    format!("{} {}", hook.id().unwrap_or_default(), body.len())
}

#[tokio::test]
async fn route_layer_verifies_webhooks_for_an_axum_handler() {
    let layer = VerifyWebhookLayer::new(&VerifyConfig {
        secrets: vec![SECRET.into()],
        ..VerifyConfig::default()
    })
    .unwrap();
    let app = Router::new()
        .route("/hooks/billing", post(on_webhook))
        .route_layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/billing", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A signed webhook reaches the handler with its id and its bytes.
    let signer = Signer::new(&SignConfig {
        secrets: vec![SECRET.into()],
        ..SignConfig::default()
    })
    .unwrap();
    let body = [0xffu8; 300];
    let signed = signer.sign(&body, SystemTime::now());
    let mut headers = HeaderMap::new();
    signed.apply_to(&mut headers);
    let answer = send(&url, &headers, &body, 3).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, format!("{} 300", signed.id.unwrap()));

    // An unsigned one gets the layer's 401 problem, not the handler.
    let answer = send(&url, &HeaderMap::new(), &body, 1).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["type"], "urn:rampart:webhook:missing");
}
