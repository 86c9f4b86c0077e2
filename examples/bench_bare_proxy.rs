//! The least a hyper reverse proxy can do, for the load harness (`bench/load.py`): it shows
//! how much of the gap between the gateway and nginx is the gateway's own work and how much
//! is hyper's.
//!
//! Each client connection gets one upstream connection of its own, driven by hyper's HTTP/1.1
//! client, and requests pass through untouched: no routing, no headers added or removed, no
//! metrics, no timeouts. It runs on one runtime thread and writes flattened buffers, as the
//! gateway does with one worker. Not a proxy to deploy: it forwards hop-by-hop headers and
//! trusts every client.
//!
//! `cargo run --release --example bench_bare_proxy -- 127.0.0.1:9200 127.0.0.1:9100`

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::client::conn::http1 as client;
use hyper::server::conn::http1 as server;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:9200".into());
    let upstream = args.next().unwrap_or_else(|| "127.0.0.1:9100".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                // wrk closes its connections mid-request when a run ends: not worth a line.
                match relay(stream, &upstream).await {
                    Err(err) if !err.is_incomplete_message() => {
                        eprintln!("bench_bare_proxy: connection ended: {err}");
                    }
                    _ => {}
                }
            });
        }
    })
}

/// Serves one client connection over one upstream connection until either closes.
async fn relay(client_stream: TcpStream, upstream: &str) -> Result<(), hyper::Error> {
    let upstream_stream = match TcpStream::connect(upstream).await {
        Ok(stream) => stream,
        Err(err) => {
            // The client's connection is dropped: it sees the refusal as a closed connection.
            eprintln!("bench_bare_proxy: cannot reach {upstream}: {err}");
            return Ok(());
        }
    };
    let _ = client_stream.set_nodelay(true);
    let _ = upstream_stream.set_nodelay(true);

    let (sender, connection) = client::Builder::new()
        .writev(false)
        .handshake::<_, Incoming>(TokioIo::new(upstream_stream))
        .await?;
    tokio::spawn(connection);

    // The server side asks for one response at a time on an HTTP/1.1 connection, so the lock
    // is never contended; it only lets the shared service reach the sender.
    let sender = Arc::new(tokio::sync::Mutex::new(sender));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let sender = sender.clone();
        async move {
            let mut sender = sender.lock().await;
            sender.ready().await?;
            sender.send_request(request).await
        }
    });
    server::Builder::new()
        .writev(false)
        .serve_connection(TokioIo::new(client_stream), service)
        .await
}
