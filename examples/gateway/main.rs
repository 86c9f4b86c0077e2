//! Rampart's example gateway: a reverse proxy that wraps each route's upstream in Rampart's
//! layers, configured by a TOML file.
//!
//! `cargo run --release --example gateway` loads `examples/gateway.toml`, which also starts
//! a small demo agent so the README's `curl` lines answer at once.
//!
//! The gateway reads configuration and composes layers; everything a library user would also
//! need lives in the crates.

mod admin;
mod cli;
mod config;
mod demo;
mod proxy;
mod server;
mod stack;
mod telemetry;

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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();

    let outcome = match cli.command {
        None | Some(Command::Run) => run(&cli).await,
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

async fn run(cli: &Cli) -> anyhow::Result<()> {
    let config = GatewayConfig::load(&cli.config)?;
    let metrics = telemetry::init_metrics()?;

    if let Some(demo) = &config.demo {
        demo::spawn(demo.listen)
            .await
            .context("starting the demo agent")?;
    }

    let shared = stack::Shared::new(&config)?;
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
    server::serve(listener, gateway, config.shutdown_grace).await
}
