//! A minimal HTTP upstream for the load harness (`bench/load.py`): answers every request with
//! a short fixed body, on one runtime thread, so the proxies in front of it are what differ.
//!
//! `cargo run --release --example bench_upstream -- 127.0.0.1:9100`

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9100".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(b"Hello, agent\n")));
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
