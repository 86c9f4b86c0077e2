//! Rampart's example gateway: a reverse proxy that wraps each route's upstream in Rampart's
//! layers, configured by a TOML file.
//!
//! `cargo run --release --example gateway` loads `examples/gateway.toml`, which also starts
//! a small demo agent so the README's `curl` lines answer at once.
//!
//! The gateway reads configuration and composes layers; everything a library user would also
//! need lives in the crates.

mod admin;
mod auth;
mod cli;
mod config;
mod demo;
mod drain;
mod http1;
mod pool;
mod proxy;
mod ratelimit;
mod server;
mod stack;
mod telemetry;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http::Response;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use rampart_core::Problem;

use crate::cli::{Cli, Command};
use crate::config::GatewayConfig;

// A proxy allocates and frees small buffers on every request; mimalloc's thread-local free
// lists beat glibc's malloc there (about a tenth more requests/s in bench/load.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The body type of requests and responses inside the gateway.
pub(crate) type GatewayBody = UnsyncBoxBody<Bytes, rampart_core::BoxError>;

/// Boxes a body whose errors convert into [`rampart_core::BoxError`].
pub(crate) fn box_body<B>(body: B) -> GatewayBody
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<rampart_core::BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A problem+json response with the gateway's body type.
pub(crate) fn problem_response(problem: Problem) -> Response<GatewayBody> {
    problem
        .into_response()
        .map(|body| body.map_err(|never| match never {}).boxed_unsync())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();

    let outcome = match cli.command {
        None | Some(Command::Run) => GatewayConfig::load(&cli.config).and_then(run),
        Some(Command::Webhook { command }) => webhook::run_cli(command),
        Some(Command::Keys { command }) => {
            GatewayConfig::load(&cli.config).and_then(|config| auth::run_keys(&config, command))
        }
        Some(Command::Token(ref args)) => {
            GatewayConfig::load(&cli.config).and_then(|config| auth::run_token(&config, args))
        }
        Some(Command::CheckConfig { ref path }) => GatewayConfig::load(path).map(|config| {
            println!(
                "{}: ok ({} routes, {} upstreams)",
                path.display(),
                config.routes.len(),
                config.upstreams.len()
            );
        }),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves `config` on a runtime sized by its `workers` setting.
fn run(config: GatewayConfig) -> anyhow::Result<()> {
    // One worker needs no work stealing: the single-threaded scheduler does the same job
    // without cross-thread wake-ups.
    let mut runtime = match config.workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(workers) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(workers);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()?.block_on(serve(config))
}

async fn serve(config: GatewayConfig) -> anyhow::Result<()> {
    let metrics = telemetry::init_metrics()?;

    if let Some(demo) = &config.demo {
        demo::spawn(demo.listen)
            .await
            .context("starting the demo agent")?;
    }

    let shared = auth::attach(stack::Shared::new(&config)?, &config).await?;
    let upstreams: BTreeMap<String, proxy::Upstream> = config
        .upstreams
        .iter()
        .map(|(name, upstream)| (name.clone(), proxy::Upstream::new(name, upstream)))
        .collect();
    let routes = config
        .routes
        .iter()
        .map(|route| {
            let service = stack::route_service(&config, route, &upstreams, &shared)?;
            Ok(server::Route::new(route, service))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let admin = admin::Admin::new(config.admin.clone(), metrics);
    let gateway = Arc::new(server::Gateway::new(
        routes,
        admin,
        shared,
        config.trusted_proxies.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %listener.local_addr()?, routes = config.routes.len(), "gateway listening");
    server::serve(
        listener,
        gateway,
        config.shutdown_grace,
        config.header_read_timeout,
    )
    .await
}
