//! The command line, as clap reads it. One variant per command; each
//! command's arguments live next to its module in `commands/`.

use crate::commands;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Manage a keyward deployment's tokens from its configuration file.
#[derive(Debug, Parser)]
#[command(
    name = "keyward",
    version,
    long_about = None,
    after_help = "Every change is made and audited as the operator cli:<OS user>.\n\
                  Exit codes: 0 success; 1 refused or not found (verify: the token was refused); \
                  2 usage, configuration or store error (the store did not answer)."
)]
pub(crate) struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "KEYWARD_CONFIG",
        default_value = "keyward.toml",
        value_name = "PATH"
    )]
    pub(crate) config: PathBuf,

    /// Print JSON (a stable shape, documented in docs/cli.md) instead of tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create or upgrade keyward's tables in the configured store.
    Migrate,
    /// Issue a token: printed once on stdout, never again.
    Issue(commands::issue::Args),
    /// One page of keys (an owner's, or every owner's), newest first.
    List(commands::list::Args),
    /// One key's details.
    Show(commands::KeyArg),
    /// Revoke a key: final, effective on the next verify.
    Revoke(commands::RevokeArgs),
    /// Disable a key until it is enabled again.
    Disable(commands::KeyArg),
    /// Enable a disabled key.
    Enable(commands::KeyArg),
    /// Issue a successor; the old token keeps working for the overlap.
    Rotate(commands::rotate::Args),
    /// Read and edit an owner's roles.
    #[command(subcommand)]
    Roles(commands::roles::Command),
    /// Audit events, newest first.
    Audit(commands::audit::Args),
    /// Live keys of every owner expiring soon, soonest first.
    Expiring(commands::expiring::Args),
    /// Delete keys revoked or expired before a time, and old audit events.
    Prune(commands::prune::Args),
    /// Check a token: prints the outcome or why it is refused, never the secret.
    Verify(commands::verify::Args),
    /// Print a shell completion script.
    Completions(commands::completions::Args),
}
