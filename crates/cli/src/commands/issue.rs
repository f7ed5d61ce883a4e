//! `keyward issue`: a new token, printed once.

use super::owner;
use crate::context::Context;
use crate::failure::Failure;
use crate::output::{Output, time};
use keyward::{IssueRequest, IssuedKey, Lifetime, Owner, PermissionSet, RoleName};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The kind (its prefix, as in the configuration file).
    #[arg(long)]
    kind: String,
    /// Whose key it is (`account:42`, `user:alice` …).
    #[arg(long, value_parser = owner)]
    owner: Owner,
    /// What it is for, shown in lists and audit events.
    #[arg(long)]
    name: String,
    /// A permission granted directly (repeat for more).
    #[arg(long = "scope", value_name = "PERMISSION")]
    scopes: Vec<String>,
    /// A role whose permissions the key carries (repeat for more).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// How long it lives: one of the kind's choices (`3 months`, `1 year`,
    /// `never` …); default: the kind's default.
    #[arg(long, value_name = "LIFETIME", value_parser = lifetime)]
    expires: Option<Lifetime>,
    /// Host data returned on verify (repeat for more).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = meta)]
    metadata: Vec<(String, String)>,
}

fn lifetime(text: &str) -> Result<Lifetime, String> {
    text.parse().map_err(|e: keyward::Error| e.to_string())
}

fn meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "expected KEY=VALUE".to_owned())
}

pub(crate) async fn run(context: &Context, args: Args) -> Result<(), Failure> {
    let scopes = PermissionSet::parse(&args.scopes)?;
    let roles = args
        .roles
        .iter()
        .map(|r| RoleName::new(r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = IssueRequest::new(&args.kind, args.owner, &args.name)
        .scopes(scopes)
        .roles(roles);
    if let Some(expires) = args.expires {
        request = request.expires(expires);
    }
    for (key, value) in &args.metadata {
        request = request.metadata(key, value);
    }
    let issued = context.keyward.issue(&context.actor, request).await?;
    show_token(&context.output, issued)
}

/// Prints a new token once: the token (or the JSON answer holding it) on
/// stdout, the warning and the key's id on stderr. Shared with `rotate`.
pub(crate) fn show_token(output: &Output, issued: IssuedKey) -> Result<(), Failure> {
    let summary = format!(
        "issued {} ({}, owner {}, expires {})",
        issued.key.id,
        issued.key.kind,
        issued.key.owner,
        time(issued.key.expires_at, "never")
    );
    output.note("Copy the token now: it is shown once and cannot be recovered.")?;
    output.note(&summary)?;
    if output.is_json() {
        output.json(&issued.show_once())
    } else {
        output.line(issued.token.expose_secret())
    }
}
