//! Webhook routes: verifying inbound webhooks, signing calls to subscribers, and the
//! `gateway webhook ...` commands for debugging an integration.
//!
//! ```toml
//! [[routes]]
//! name = "hooks"
//! prefix = "/hooks"
//! upstream = "agents"
//!
//! [routes.webhook]
//! replay_store = "redis"            # or "memory" (the default); "redis" needs [redis]
//!
//! [routes.webhook.verify]           # inbound: refuse what is not signed
//! scheme = "standard"
//! secrets = ["whsec_..."]
//!
//! [routes.webhook.sign]             # outbound: sign what goes to the upstream
//! secrets = ["whsec_..."]
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::Full;
use rampart::webhook::{
    ManualClock, RedisReplayStore, SchemeKind, SecretString, SignConfig, SignWebhookLayer, Signer,
    Verifier, VerifyConfig, VerifyWebhookLayer,
};
use serde::Deserialize;
use tower::{Layer, ServiceExt};

use crate::config::RouteConfig;
use crate::stack::{RouteService, Shared};
use crate::{GatewayBody, box_body};

/// `[routes.webhook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct WebhookRouteConfig {
    /// Verify inbound webhooks with these settings.
    pub(crate) verify: Option<VerifyConfig>,
    /// Sign requests forwarded upstream (the route's upstream subscribes to our webhooks).
    pub(crate) sign: Option<SignConfig>,
    /// Where seen webhook ids are kept.
    pub(crate) replay_store: ReplayStoreKind,
}

/// Where a route keeps seen webhook ids.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ReplayStoreKind {
    /// This gateway's memory: replays sent to another instance are not caught.
    #[default]
    Memory,
    /// The shared `[redis]`: every gateway of the fleet catches a replay.
    Redis,
}

impl WebhookRouteConfig {
    /// Checks the tables at load time, so `check-config` catches a bad secret.
    pub(crate) fn validate(&self, route: &str, has_redis: bool) -> anyhow::Result<()> {
        if self.verify.is_none() && self.sign.is_none() {
            bail!("routes.{route}.webhook needs a `verify` or a `sign` table");
        }
        if let Some(verify) = &self.verify {
            VerifyWebhookLayer::new(&namespaced(verify, route))
                .with_context(|| format!("routes.{route}.webhook.verify"))?;
            if self.replay_store == ReplayStoreKind::Redis && !has_redis {
                bail!("routes.{route}.webhook.replay_store is \"redis\" but [redis] is missing");
            }
        }
        if let Some(sign) = &self.sign {
            SignWebhookLayer::new(sign).with_context(|| format!("routes.{route}.webhook.sign"))?;
        }
        Ok(())
    }
}

/// Replay ids are kept apart per route unless the operator chose a namespace.
fn namespaced(verify: &VerifyConfig, route: &str) -> VerifyConfig {
    let mut config = verify.clone();
    if config.replay.namespace == rampart::webhook::ReplayConfig::default().namespace {
        route.clone_into(&mut config.replay.namespace);
    }
    config
}

/// Wraps `service` in the route's webhook layers: verification outside, signing inside, so a
/// route may check a provider's signature and re-sign for its upstream with its own secret.
pub(crate) fn wrap(
    service: RouteService,
    route: &RouteConfig,
    shared: &Shared,
) -> anyhow::Result<RouteService> {
    let Some(webhook) = &route.webhook else {
        return Ok(service);
    };
    let mut service = service;

    if let Some(sign) = &webhook.sign {
        let layer = SignWebhookLayer::new(sign)?;
        let inner = service.map_request(|request: Request<Full<Bytes>>| request.map(box_body));
        service = RouteService::new(ServiceExt::<Request<GatewayBody>>::map_response(
            layer.layer(inner),
            |response| response.map(box_body),
        ));
    }

    if let Some(verify) = &webhook.verify {
        let mut layer = VerifyWebhookLayer::new(&namespaced(verify, &route.name))?;
        if webhook.replay_store == ReplayStoreKind::Redis {
            let pool = shared
                .redis
                .clone()
                .context("replay_store = \"redis\" needs a [redis] table")?;
            layer = layer.with_store(RedisReplayStore::new(pool));
        }
        let inner = service.map_request(|request: Request<Full<Bytes>>| request.map(box_body));
        service = RouteService::new(ServiceExt::<Request<GatewayBody>>::map_response(
            layer.layer(inner),
            |response| response.map(box_body),
        ));
    }
    Ok(service)
}

/// `gateway webhook ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhookCommand {
    /// Sign a body and print the headers to send with it.
    Sign {
        #[command(flatten)]
        scheme: SchemeArgs,
        /// The file holding the body, sent byte for byte.
        #[arg(long)]
        body: PathBuf,
        /// The webhook id; a fresh one when absent.
        #[arg(long)]
        id: Option<String>,
        /// Unix seconds to sign with; now when absent.
        #[arg(long)]
        timestamp: Option<u64>,
    },
    /// Check a captured request: its headers and its body.
    Verify {
        #[command(flatten)]
        scheme: SchemeArgs,
        /// The file holding the body, byte for byte.
        #[arg(long)]
        body: PathBuf,
        /// A header as `name: value`; repeat for each.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// A file of `name: value` lines (a request line and other lines are skipped).
        #[arg(long)]
        headers_file: Option<PathBuf>,
        /// Check as of these unix seconds instead of now, for a request captured earlier.
        #[arg(long)]
        now: Option<u64>,
        /// How many seconds the timestamp may be off, either way.
        #[arg(long, default_value_t = 300)]
        tolerance_secs: u64,
    },
    /// Print a new `whsec_` secret.
    GenerateSecret,
    /// Print a new Ed25519 key pair for `v1a` signatures.
    GenerateKeypair,
}

/// The scheme and secrets, shared by `sign` and `verify`.
#[derive(Debug, Args)]
pub(crate) struct SchemeArgs {
    /// standard, timestamped or github.
    #[arg(long, default_value = "standard", value_parser = parse_scheme)]
    scheme: SchemeKind,
    /// A secret; repeat for several (rotation). Prefer --secret-file: arguments are visible
    /// to other users of the machine.
    #[arg(long = "secret")]
    secrets: Vec<String>,
    /// A file whose lines are secrets.
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// The timestamped scheme's header.
    #[arg(long, default_value = "x-webhook-signature")]
    signature_header: String,
    /// The standard scheme's header prefix.
    #[arg(long, default_value = "webhook")]
    header_prefix: String,
}

fn parse_scheme(text: &str) -> Result<SchemeKind, String> {
    match text {
        "standard" => Ok(SchemeKind::Standard),
        "timestamped" => Ok(SchemeKind::Timestamped),
        "github" => Ok(SchemeKind::Github),
        other => Err(format!(
            "unknown scheme {other:?}: standard, timestamped or github"
        )),
    }
}

impl SchemeArgs {
    fn secrets(&self) -> anyhow::Result<Vec<SecretString>> {
        let mut secrets: Vec<SecretString> =
            self.secrets.iter().map(|s| s.as_str().into()).collect();
        if let Some(path) = &self.secret_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            secrets.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(Into::into),
            );
        }
        if secrets.is_empty() {
            bail!("give --secret or --secret-file");
        }
        Ok(secrets)
    }
}

/// Runs a `gateway webhook ...` command.
pub(crate) fn run_cli(command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Sign {
            scheme,
            body,
            id,
            timestamp,
        } => {
            let signer = Signer::new(&SignConfig {
                scheme: scheme.scheme,
                secrets: scheme.secrets()?,
                header_prefix: scheme.header_prefix.clone(),
                signature_header: scheme.signature_header.clone(),
                ..SignConfig::default()
            })?;
            let body = read(&body)?;
            let signed = match (id, timestamp) {
                (None, None) => signer.sign(&body, SystemTime::now()),
                (id, timestamp) => {
                    let id = id.unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
                    let timestamp = timestamp.unwrap_or_else(unix_now);
                    signer.sign_with(&id, timestamp, &body)?
                }
            };
            for (name, value) in signed.iter() {
                println!("{name}: {}", value.to_str().unwrap_or_default());
            }
            Ok(())
        }
        WebhookCommand::Verify {
            scheme,
            body,
            headers,
            headers_file,
            now,
            tolerance_secs,
        } => {
            let tolerance = Duration::from_secs(tolerance_secs);
            let verifier = Verifier::new(&VerifyConfig {
                scheme: scheme.scheme,
                secrets: scheme.secrets()?,
                header_prefix: scheme.header_prefix.clone(),
                signature_header: scheme.signature_header.clone(),
                tolerance_past: tolerance,
                tolerance_future: tolerance,
                ..VerifyConfig::default()
            })?;
            let mut lines = headers;
            if let Some(path) = headers_file {
                let text = String::from_utf8(read(&path)?)
                    .with_context(|| format!("{} is not text", path.display()))?;
                lines.extend(text.lines().map(str::to_owned));
            }
            let headers = header_map(&lines);
            let clock = ManualClock::at_unix(now.unwrap_or_else(unix_now));
            let verified = verifier
                .verify(
                    &headers,
                    &read(&body)?,
                    rampart::webhook::Clock::now(&clock),
                )
                .context("verification failed")?;
            println!(
                "ok: {} webhook verified (id {}, timestamp {})",
                scheme.scheme.as_str(),
                verified.id().unwrap_or("-"),
                verified
                    .timestamp()
                    .map_or_else(|| "-".to_owned(), |t| t.to_string()),
            );
            Ok(())
        }
        WebhookCommand::GenerateSecret => {
            println!("{}", rampart::webhook::generate_secret()?.expose());
            Ok(())
        }
        WebhookCommand::GenerateKeypair => {
            let (private, public) = rampart::webhook::generate_keypair()?;
            println!("private (sender, keep secret): {}", private.expose());
            println!("public (receivers): {public}");
            Ok(())
        }
    }
}

fn read(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `name: value` lines; anything else (a request line, a blank line) is skipped.
fn header_map(lines: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value.trim()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    headers
}
