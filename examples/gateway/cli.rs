//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Rampart's example gateway: a reverse proxy wrapping upstreams in Rampart's layers.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
pub(crate) struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, default_value = "examples/gateway.toml")]
    pub(crate) config: PathBuf,

    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway (the default).
    Run,
    /// Load and check a configuration file, then exit.
    CheckConfig {
        /// The file to check.
        path: PathBuf,
    },
    /// Create, list and revoke API keys.
    Keys {
        #[command(subcommand)]
        command: crate::auth::KeysCommand,
    },
    /// Mint a development token with `[auth.jwt.signing]`.
    Token(crate::auth::TokenArgs),
    /// Sign a webhook body, or check a captured webhook request.
    Webhook {
        #[command(subcommand)]
        command: crate::webhook::WebhookCommand,
    },
}
