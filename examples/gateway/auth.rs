//! Authentication and authorization on routes, and the `gateway keys` and `gateway token`
//! commands.
//!
//! ```toml
//! [auth]                          # one authenticator for the whole gateway
//! realm = "rampart"
//!
//! [auth.api_keys]
//! prefix = "rk"
//! store = "redis"                 # keys made by `gateway keys create`; needs [redis]
//!
//! [auth.jwt]
//! leeway = "30s"
//! [[auth.jwt.issuers]]
//! issuer = "dev"
//! keys = [{ kid = "dev-1", algorithm = "HS256", secret_env = "RAMPART_JWT_SECRET" }]
//! [auth.jwt.signing]              # only for `gateway token`
//! algorithm = "HS256"
//! kid = "dev-1"
//! secret_env = "RAMPART_JWT_SECRET"
//! issuer = "dev"
//!
//! [[routes]]
//! name = "admin"
//! prefix = "/admin"
//! upstream = "agents"
//! [routes.auth]                   # without this table a route still authenticates
//! any_role = ["admin"]
//! all_scopes = ["orders:write"]
//! # anonymous = true              # let requests without a credential through
//! ```
//!
//! With `[auth]` present every route authenticates; a route opts into anonymous access with
//! `anonymous = true`, and a credential it does get is still checked.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use http::Request;
use rampart::auth::jwt::TokenSigner;
use rampart::auth::jwt::jwks::HttpFetcher;
use rampart::auth::{
    AuthConfig, AuthLayer, Authenticator, KeyRecord, RequireRoleLayer, RequireScopeLayer,
};
use serde::Deserialize;
use tower::{Layer, ServiceExt};

use crate::config::{GatewayConfig, RouteConfig};
use crate::stack::{RouteService, Shared};
use crate::{GatewayBody, box_body};

/// `[routes.auth]`: who may use the route.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RouteAuthConfig {
    /// Let requests without any credential through, with no identity.
    pub(crate) anonymous: bool,
    /// The identity needs at least one of these roles.
    pub(crate) any_role: Vec<String>,
    /// The identity needs every one of these roles.
    pub(crate) all_roles: Vec<String>,
    /// The identity needs at least one of these scopes.
    pub(crate) any_scope: Vec<String>,
    /// The identity needs every one of these scopes.
    pub(crate) all_scopes: Vec<String>,
}

/// Checks `[auth]` and every `[routes.auth]` at load time.
pub(crate) fn validate(config: &GatewayConfig) -> anyhow::Result<()> {
    if let Some(auth) = &config.auth {
        auth.validate().context("[auth]")?;
        let wants_redis = auth
            .api_keys
            .as_ref()
            .is_some_and(|keys| keys.store == rampart::auth::StoreKind::Redis);
        if wants_redis && config.redis.is_none() {
            bail!("auth.api_keys.store is \"redis\" but [redis] is missing");
        }
    }
    for route in &config.routes {
        let Some(rules) = &route.auth else { continue };
        if config.auth.is_none() {
            bail!("routes.{}.auth needs an [auth] table", route.name);
        }
        authorization_layers(rules).with_context(|| format!("routes.{}.auth", route.name))?;
    }
    Ok(())
}

/// Builds the gateway's authenticator once at start-up (fetching JWKS URLs) and keeps it in
/// the shared state.
pub(crate) async fn attach(mut shared: Shared, config: &GatewayConfig) -> anyhow::Result<Shared> {
    if let Some(auth) = &config.auth {
        shared.auth = Some(Arc::new(build(auth, &shared).await?));
    }
    Ok(shared)
}

async fn build(auth: &AuthConfig, shared: &Shared) -> anyhow::Result<Authenticator> {
    Authenticator::from_config(auth, shared.redis.clone(), Arc::new(HttpFetcher::default()))
        .await
        .context("setting up [auth]")
}

type Requirements = (Vec<RequireRoleLayer>, Vec<RequireScopeLayer>);

fn authorization_layers(rules: &RouteAuthConfig) -> anyhow::Result<Requirements> {
    let mut roles = Vec::new();
    let mut scopes = Vec::new();
    if !rules.any_role.is_empty() {
        roles.push(RequireRoleLayer::any_of(rules.any_role.iter().cloned())?);
    }
    if !rules.all_roles.is_empty() {
        roles.push(RequireRoleLayer::all_of(rules.all_roles.iter().cloned())?);
    }
    if !rules.any_scope.is_empty() {
        scopes.push(RequireScopeLayer::any_of(rules.any_scope.iter().cloned())?);
    }
    if !rules.all_scopes.is_empty() {
        scopes.push(RequireScopeLayer::all_of(rules.all_scopes.iter().cloned())?);
    }
    Ok((roles, scopes))
}

/// Wraps the route in its role and scope checks (inside authentication).
pub(crate) fn wrap_authorization(
    service: RouteService,
    route: &RouteConfig,
    shared: &Shared,
) -> anyhow::Result<RouteService> {
    let (Some(authenticator), Some(rules)) = (&shared.auth, &route.auth) else {
        return Ok(service);
    };
    let realm = authenticator.realm();
    let (roles, scopes) = authorization_layers(rules)?;
    let mut service = service;
    for layer in scopes {
        let layer = layer.with_realm(realm)?;
        service = RouteService::new(ServiceExt::<Request<GatewayBody>>::map_response(
            layer.layer(service),
            |response| response.map(box_body),
        ));
    }
    for layer in roles {
        let layer = layer.with_realm(realm)?;
        service = RouteService::new(ServiceExt::<Request<GatewayBody>>::map_response(
            layer.layer(service),
            |response| response.map(box_body),
        ));
    }
    Ok(service)
}

/// Wraps the route in authentication (outside everything but the body limit).
pub(crate) fn wrap_authentication(
    service: RouteService,
    route: &RouteConfig,
    shared: &Shared,
) -> RouteService {
    let Some(authenticator) = &shared.auth else {
        return service;
    };
    let anonymous = route.auth.as_ref().is_some_and(|rules| rules.anonymous);
    let layer = AuthLayer::new(authenticator.clone()).allow_anonymous(anonymous);
    RouteService::new(ServiceExt::<Request<GatewayBody>>::map_response(
        layer.layer(service),
        |response| response.map(box_body),
    ))
}

/// `gateway keys ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key, print it once and store its hash.
    Create {
        /// Who the key belongs to.
        #[arg(long)]
        owner: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Scopes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime, such as `30d`; never expires when absent.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys: id, owner, roles, scopes, expiry, revoked.
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id (the part after the prefix).
        id: String,
    },
}

/// `gateway token ...`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The subject.
    #[arg(long)]
    sub: String,
    /// Roles, comma-separated.
    #[arg(long, value_delimiter = ',')]
    roles: Vec<String>,
    /// Scopes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    scopes: Vec<String>,
    /// Lifetime, such as `1h`.
    #[arg(long, default_value = "1h")]
    ttl: String,
}

fn duration(text: &str) -> anyhow::Result<Duration> {
    humantime_serde::re::humantime::parse_duration(text)
        .with_context(|| format!("not a duration: {text:?}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `gateway keys ...` against the configured store.
pub(crate) fn run_keys(config: &GatewayConfig, command: KeysCommand) -> anyhow::Result<()> {
    let auth = config
        .auth
        .as_ref()
        .context("the config has no [auth] table")?;
    let keys = auth
        .api_keys
        .as_ref()
        .context("the config has no [auth.api_keys] table")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Only the key store: `keys` needs neither JWT keys nor a JWKS fetch.
        validate(config)?;
        let shared = Shared::new(config)?;
        let store = keys.store(shared.redis.clone())?;
        let hasher = keys.hasher()?;
        match command {
            KeysCommand::Create {
                owner,
                roles,
                scopes,
                expires,
            } => {
                let mut new = hasher.generate(&keys.prefix, &owner)?;
                new.record.roles = roles.into_iter().collect();
                new.record.scopes = scopes.into_iter().collect();
                if let Some(expires) = expires {
                    new.record.expires_at =
                        Some(unix_now().saturating_add(duration(&expires)?.as_secs()));
                }
                println!("{}", new.key);
                eprintln!("This key is shown once; only a hash of its secret is kept.");
                if keys.store == rampart::auth::StoreKind::Redis {
                    store.insert(new.record.clone()).await?;
                    eprintln!("Stored as id {} in Redis.", new.record.id);
                } else {
                    eprintln!("Add it to the config file under [auth.api_keys]:\n");
                    eprintln!("{}", static_entry(&new.record)?);
                }
            }
            KeysCommand::List => {
                let mut all = store.list().await?;
                all.sort_by(|a, b| a.id.cmp(&b.id));
                for record in all {
                    println!(
                        "{}\towner={}\troles={}\tscopes={}\texpires_at={}\t{}",
                        record.id,
                        record.owner,
                        record.roles.iter().cloned().collect::<Vec<_>>().join(","),
                        record.scopes.iter().cloned().collect::<Vec<_>>().join(","),
                        record
                            .expires_at
                            .map_or_else(|| "never".to_owned(), |at| at.to_string()),
                        if record.revoked { "revoked" } else { "active" },
                    );
                }
            }
            KeysCommand::Revoke { id } => {
                if keys.store != rampart::auth::StoreKind::Redis {
                    bail!("keys in the config file are revoked by deleting them from the file");
                }
                if !store.revoke(&id).await? {
                    bail!("no key with id {id}");
                }
                println!("revoked {id}");
            }
        }
        Ok(())
    })
}

fn static_entry(record: &KeyRecord) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        #[serde(rename = "static")]
        entries: [&'a KeyRecord; 1],
    }
    let text = toml::to_string(&Entry { entries: [record] })?;
    Ok(text.replace("[[static]]", "[[auth.api_keys.static]]"))
}

/// Runs `gateway token ...` with `[auth.jwt.signing]`.
pub(crate) fn run_token(config: &GatewayConfig, args: &TokenArgs) -> anyhow::Result<()> {
    let signing = config
        .auth
        .as_ref()
        .and_then(|auth| auth.jwt.as_ref())
        .and_then(|jwt| jwt.signing.clone())
        .context("the config has no [auth.jwt.signing] table")?;
    let signer = TokenSigner::new(signing)?;
    let token = signer.mint(
        &args.sub,
        &args.roles,
        &args.scopes,
        duration(&args.ttl)?,
        unix_now(),
    )?;
    println!("{token}");
    Ok(())
}
