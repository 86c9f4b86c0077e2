//! A tiny agent service started inside the gateway process, so the README's first `curl`
//! gets a proxied answer without anything else running.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The most the demo agent reads of a request body.
const MAX_INPUT: usize = 64 * 1024;

/// Binds the demo agent and serves it in the background.
pub(crate) async fn spawn(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "demo agent listening");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();

    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/api/agents") => (
            StatusCode::OK,
            serde_json::json!({
                "agents": [
                    {"id": "echo", "description": "repeats its input"},
                    {"id": "shout", "description": "repeats its input in capitals"}
                ]
            }),
        ),
        (&Method::POST, "/api/agents/execute") => execute(request, &seen_id).await,
        _ => (
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "no such agent endpoint"}),
        ),
    };

    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn execute(request: Request<Incoming>, request_id: &str) -> (StatusCode, serde_json::Value) {
    let Ok(collected) = Limited::new(request.into_body(), MAX_INPUT).collect().await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({"error": "input larger than 64 KiB"}),
        );
    };
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(&collected.to_bytes()) else {
        return (
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "expected a JSON body like {\"agent\": \"echo\", \"input\": \"hi\"}"}),
        );
    };

    let agent = input["agent"].as_str().unwrap_or("echo");
    let text = input["input"].as_str().unwrap_or_default();
    let output = match agent {
        "shout" => text.to_uppercase(),
        _ => text.to_owned(),
    };
    (
        StatusCode::OK,
        serde_json::json!({"agent": agent, "output": output, "request_id": request_id}),
    )
}
